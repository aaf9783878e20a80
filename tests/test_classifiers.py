"""The five classifiers: tuning on predefined folds, determinism, nested out-of-fold
predictions without leakage of held-out labels, and the canonical fitted parameters."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from dlr.modeling.classifiers import (
    CLASSIFIERS,
    TunedModel,
    best_classifier,
    fitted_parameters,
    make_pipeline,
    out_of_fold,
    parameters_json,
    predict_risk,
    tune,
)

FAST = ("LR", "SVM", "KNN", "XGBoost")  # MLP's grid takes ~30 s here: marked slow


def make_problem(n=120, p=8, seed=0):
    """Two informative features of eight, a few missing values, stratified folds 1..5."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), index=[f"P{i:03d}" for i in range(n)],
                     columns=[f"x{j}" for j in range(p)])
    y = (2.0 * X["x0"] - 2.0 * X["x1"] + rng.logistic(size=n) > 0).astype(int).to_numpy()
    X.iloc[3, 2] = np.nan
    X.iloc[7, 5] = np.nan
    folds = np.zeros(n, dtype=int)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        folds[idx] = np.arange(idx.size) % 5 + 1
    return X, y, folds


@pytest.fixture(scope="module")
def problem():
    return make_problem()


@pytest.fixture(scope="module")
def tuned(problem):
    X, y, folds = problem
    return {name: tune(name, X, y, folds, seed=0) for name in FAST}


@pytest.mark.parametrize("name", FAST)
def test_every_classifier_discriminates_a_separable_problem(tuned, problem, name):
    X, y, _ = problem
    model = tuned[name]
    assert model.name == name
    assert model.cv_auc > 0.7
    risk = predict_risk(model, X)
    assert risk.shape == (len(X),) and np.all((risk >= 0) & (risk <= 1))
    table = model.cv_results
    assert list(table.columns) == ["params", "mean_log_loss", "sd_log_loss", "mean_auc", "sd_auc", "rank"]
    _, grid = make_pipeline(name, seed=0)
    assert set(model.grid) == set(grid) and all(set(grid[k]) <= set(model.grid[k]) for k in grid)
    assert len(table) == np.prod([len(v) for v in model.grid.values()])
    best = table[table["rank"] == 1].iloc[0]
    assert best["mean_log_loss"] == table["mean_log_loss"].min() == model.cv_log_loss  # the criterion
    assert best["mean_auc"] == model.cv_auc and best["sd_auc"] == model.cv_auc_sd
    frame = model.to_frame()
    assert frame.shape[0] == 1 and frame.loc[0, "model"] == name


@pytest.mark.slow
def test_mlp_discriminates_and_is_deterministic(problem):
    X, y, folds = problem
    model = tune("MLP", X, y, folds, seed=0)
    assert model.cv_auc > 0.7
    # refitting the chosen pipeline on the same rows reproduces every weight
    pipe, _ = make_pipeline("MLP", seed=0)
    pipe.set_params(**model.best_params).fit(X, y)
    twin = TunedModel("MLP", pipe, model.best_params, model.cv_auc, model.cv_auc_sd, model.cv_results)
    assert parameters_json(fitted_parameters(twin)) == parameters_json(fitted_parameters(model))
    assert len(fitted_parameters(model)["classifier"]["coefs"]) == len(model.best_params["clf__hidden_layer_sizes"]) + 1


@pytest.mark.parametrize("name", ["SVM", "XGBoost", "KNN"])
def test_tune_is_deterministic(tuned, problem, name):
    X, y, folds = problem
    again = tune(name, X, y, folds, seed=0)
    assert parameters_json(fitted_parameters(again)) == parameters_json(fitted_parameters(tuned[name]))


@pytest.mark.parametrize("name", ["LR", "KNN", "SVM"])
def test_cv_log_loss_and_auc_are_the_predefined_split_scores_of_the_best_params(tuned, problem, name):
    from sklearn.metrics import log_loss, roc_auc_score

    X, y, folds = problem
    model = tuned[name]
    aucs, losses = [], []
    for k in range(1, 6):
        pipe, _ = make_pipeline(name, seed=0)
        pipe.set_params(**model.best_params)
        train = folds != k
        pipe.fit(X[train], y[train])
        aucs.append(roc_auc_score(y[~train], pipe.predict_proba(X[~train])[:, 1]))
        losses.append(log_loss(y[~train], pipe.predict_proba(X[~train])[:, 1]))
    assert_allclose(model.cv_log_loss, np.mean(losses), rtol=1e-12)
    assert_allclose(model.cv_log_loss_sd, np.std(losses, ddof=1), rtol=1e-12)
    assert_allclose(model.cv_auc, np.mean(aucs), rtol=1e-12)
    assert_allclose(model.cv_auc_sd, np.std(aucs, ddof=1), rtol=1e-12)
    # and the refit used every row: same parameters as fitting the best pipeline on all of them
    pipe, _ = make_pipeline(name, seed=0)
    pipe.set_params(**model.best_params).fit(X, y)
    twin = TunedModel(name, pipe, model.best_params, model.cv_auc, model.cv_auc_sd, model.cv_results)
    assert parameters_json(fitted_parameters(twin)) == parameters_json(fitted_parameters(model))


def test_fitted_parameters_cover_the_pipeline_and_change_with_a_training_row(tuned, problem):
    X, y, folds = problem
    params = fitted_parameters(tuned["LR"])
    assert params["feature_names_in"] == list(X.columns)
    assert_allclose(params["imputer"]["statistics"], X.median().to_numpy(), rtol=1e-15)
    assert_allclose(params["scaler"]["mean"], X.fillna(X.median()).mean().to_numpy(), rtol=1e-12)
    json.loads(parameters_json(params))
    changed = X.copy()
    changed.iloc[10, 0] += 0.5
    other = tune("LR", changed, y, folds, seed=0)
    before, after = fitted_parameters(tuned["LR"]), fitted_parameters(other)
    assert before["classifier"]["coef"] != after["classifier"]["coef"]
    # KNN stores the training matrix and labels themselves
    knn = fitted_parameters(tuned["KNN"])
    assert len(knn["classifier"]["fit_X"]) == len(X) and knn["classifier"]["y"] == y.tolist()
    svm = fitted_parameters(tuned["SVM"])["classifier"]
    assert {"dual_coef", "support_vectors", "intercept", "platt"} <= set(svm)
    booster = fitted_parameters(tuned["XGBoost"])["classifier"]["booster"]
    assert "learner" in booster


def test_parameters_json_is_exact_and_handles_non_finite_values():
    value = 0.1 + 0.2
    text = parameters_json({"b": np.array([value, np.nan, np.inf, -np.inf]), "a": np.float32(1.5), "t": (1, 2)})
    back = json.loads(text)
    assert back["b"][0] == value and back["b"][1:] == ["nan", "inf", "-inf"]
    assert back["a"] == 1.5 and back["t"] == [1, 2]
    assert text.index('"a"') < text.index('"b"')


def test_out_of_fold_predictions_ignore_their_own_folds_labels(problem):
    X, y, folds = problem
    oof = out_of_fold("LR", X, y, folds, seed=0)
    assert np.all(np.isfinite(oof)) and oof.shape == (len(X),)
    flipped = y.copy()
    fold1 = folds == 1
    flipped[fold1] = 1 - flipped[fold1]
    oof_flipped = out_of_fold("LR", X, flipped, folds, seed=0)
    np.testing.assert_array_equal(oof_flipped[fold1], oof[fold1])
    # the flipped labels are training data for every other fold: those predictions move
    assert not np.array_equal(oof_flipped[~fold1], oof[~fold1])
    # fold 1's prediction is the model tuned on folds 2-5 only
    inner = tune("LR", X[~fold1], y[~fold1], folds[~fold1], seed=0)
    np.testing.assert_array_equal(predict_risk(inner, X[fold1]), oof[fold1])


def test_out_of_fold_custom_fit_sees_only_training_rows(problem):
    X, y, folds = problem
    seen = []

    def fit(X_train, y_train, folds_train):
        seen.append((set(X_train.index), set(np.unique(folds_train))))
        mean = float(np.mean(y_train))
        return lambda X_test: np.full(len(X_test), mean)

    oof = out_of_fold(None, X, y, folds, seed=0, fit=fit)
    assert len(seen) == 5
    for k, (ids, labels) in zip(range(1, 6), seen):
        assert ids.isdisjoint(X.index[folds == k]) and labels == set(range(1, 6)) - {k}
        assert_allclose(oof[folds == k], y[folds != k].mean())
    with pytest.raises(ValueError, match="returned 3 scores"):
        out_of_fold(None, X, y, folds, seed=0, fit=lambda *a: (lambda X_test: np.zeros(3)))


def test_best_classifier_uses_cv_auc_with_ties_in_classifier_order():
    def fake(name, auc):
        return TunedModel(name, None, {}, auc, 0.0, pd.DataFrame())

    models = {"MLP": fake("MLP", 0.80), "KNN": fake("KNN", 0.80), "LR": fake("LR", 0.75), "SVM": fake("SVM", np.nan)}
    assert best_classifier(models) == "KNN"
    assert CLASSIFIERS.index("KNN") < CLASSIFIERS.index("MLP")
    models["XGBoost"] = fake("XGBoost", 0.81)
    assert best_classifier(models) == "XGBoost"
    with pytest.raises(ValueError):
        best_classifier({})


def test_input_checks(problem):
    X, y, folds = problem
    with pytest.raises(ValueError, match="LR, SVM, KNN, XGBoost, MLP"):
        make_pipeline("RF", seed=0)
    with pytest.raises(ValueError, match="single outcome class"):
        bad = folds.copy()
        bad[(folds == 2) & (y == 1)] = 3
        tune("LR", X, y, bad, seed=0)
    with pytest.raises(ValueError, match="at least 3 distinct labels"):
        out_of_fold("LR", X, y, np.where(folds > 2, 2, 1), seed=0)
    with pytest.raises(ValueError, match="feature names"):
        tuned_on_frame = tune("KNN", X, y, folds, seed=0)
        predict_risk(tuned_on_frame, X[X.columns[::-1]])


def test_a_grid_is_extended_past_the_edge_where_the_log_loss_is_best_then_warns(problem, monkeypatch):
    """LR on a separable problem with a grid of tiny C (strong shrinkage, every risk near the
    prevalence): the best C sits on the upper edge, so the grid grows a decade at a time, and a
    GridEdgeWarning names the value still on the edge after MAX_EXTENSIONS."""
    import dlr.modeling.classifiers as clf

    original = clf.make_pipeline

    def tiny(name, *, seed):
        pipeline, _ = original(name, seed=seed)
        return pipeline, {"clf__C": [1e-7, 1e-6, 1e-5]}

    monkeypatch.setattr(clf, "make_pipeline", tiny)
    X, y, folds = problem
    with pytest.warns(clf.GridEdgeWarning, match=r"LR: the CV log loss is best at C=0\.01, the upper edge"):
        model = clf.tune("LR", X, y, folds, seed=0)
    assert model.grid["clf__C"] == [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
    assert model.best_params["clf__C"] == 1e-2


def test_grid_extension_steps_and_limits():
    import dlr.modeling.classifiers as clf

    grid = {"C": [0.1, 1, 10], "k": [5, 9, 15, 21], "depth": [2, 3], "weights": ["uniform", "distance"]}
    assert clf._edges(grid, {"C": 10, "k": 5, "depth": 3, "weights": "uniform"}) == {"C": "upper", "k": "lower"}
    wider = clf._extend(grid, {"C": "upper", "k": "lower"}, n_train=40)
    assert wider["C"] == [0.1, 1, 10, 100.0] and wider["k"] == [1, 5, 9, 15, 21] and wider["depth"] == [2, 3]
    assert clf._extend(grid, {"k": "upper"}, n_train=25)["k"] == [5, 9, 15, 21]  # 27 neighbours > 24 rows: none
    assert clf._extend({"a": [1e-3, 1e-2, 1e-1]}, {"a": "lower"}, n_train=10)["a"][0] == 1e-4
