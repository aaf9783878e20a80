"""The paper's five machine-learning classifiers (LR, SVM, KNN, XGBoost, MLP), each tuned by
grid search over the study's predefined folds of the development cohort, by a proper scoring
rule (held-out log loss; the AUC is reported beside it).

Every fitted quantity (imputation medians, z-score means and SDs, hyperparameters, model
weights) comes from the rows passed to :func:`tune`, which the caller restricts to development
patients. :func:`fitted_parameters` writes all of them in one canonical JSON form, so that a
test can check they are byte-identical when only validation patients change.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from dlr.core.run_folder import RADIOMICS_CLASSIFIERS

from .splits import fold_array, outcome_array

CLASSIFIERS = RADIOMICS_CLASSIFIERS
CV_RESULT_COLUMNS = ["params", "mean_log_loss", "sd_log_loss", "mean_auc", "sd_auc", "rank"]
#: times a grid is extended past an edge where the CV log loss is best, before warning instead
MAX_EXTENSIONS = 3


class GridEdgeWarning(UserWarning):
    """A tuned hyperparameter's best value lies on the edge of its (extended) grid."""


@dataclass(frozen=True)
class TunedModel:
    """A classifier pipeline tuned by cross-validation and refitted on all rows given.

    Attributes
    ----------
    name : str
        One of ``CLASSIFIERS``.
    estimator : sklearn Pipeline
        Median imputer -> StandardScaler -> classifier, with the best hyperparameters, refitted
        on every row passed to :func:`tune`.
    best_params : dict
        The chosen grid point (scikit-learn parameter names, ``clf__...``).
    cv_auc : float
        Mean held-out AUC over the folds at the chosen grid point (reported; not the criterion).
    cv_auc_sd : float
        SD (n - 1 denominator) of the fold AUCs at the chosen grid point.
    cv_results : DataFrame
        One row per grid point: ``params`` (text), ``mean_log_loss``, ``sd_log_loss``,
        ``mean_auc``, ``sd_auc``, ``rank`` (1 = chosen, by the lowest mean log loss; ties keep
        the first grid point).
    cv_log_loss, cv_log_loss_sd : float
        Mean and SD of the held-out folds' log loss at the chosen grid point: the criterion.
    grid : dict or None
        The grid searched, after any extension past an edge.
    """

    name: str
    estimator: object
    best_params: dict
    cv_auc: float
    cv_auc_sd: float
    cv_results: pd.DataFrame
    cv_log_loss: float = float("nan")
    cv_log_loss_sd: float = float("nan")
    grid: dict | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": self.name, "cv_log_loss": self.cv_log_loss, "cv_auc": self.cv_auc,
                              "cv_auc_sd": self.cv_auc_sd, "best_params": _params_text(self.best_params)}])


# --------------------------------------------------------------------------------------------
# Pipelines and grids


def make_pipeline(name: str, *, seed: int):
    """The pipeline and hyperparameter grid of one of the paper's classifiers.

    Parameters
    ----------
    name : str
        One of ``CLASSIFIERS``: ``"LR"``, ``"SVM"``, ``"KNN"``, ``"XGBoost"``, ``"MLP"``.
    seed : int, keyword-only
        ``random_state`` of the stochastic classifiers (SVM, XGBoost, MLP).

    Returns
    -------
    (Pipeline, dict)
        Steps ``impute`` (median), ``scale`` (z-score) and ``clf``; the grid for
        ``GridSearchCV`` (keys ``clf__...``).

    Notes
    -----
    LR: L2-penalised logistic regression, C in 10^-4..10^2. SVM: RBF kernel, C in
    {0.1, 1, 10}, gamma in {"scale", 0.01, 0.1}; its probabilities are Platt's sigmoid fitted
    on 5-fold out-of-fold decision values of the training rows, the final SVM fitted on all of
    them (``CalibratedClassifierCV(SVC(), ensemble=False)``, scikit-learn's replacement for
    ``SVC(probability=True)``, deprecated in 1.9; the same procedure as libsvm's but with
    unshuffled stratified folds, hence deterministic). KNN: k in {5, 9, 15, 21}, uniform or
    distance weights. XGBoost: hist trees, subsample and column subsample 0.8, 50 or 150
    trees, depth 2 or 3, learning rate 0.05 or 0.2, one thread (deterministic). MLP:
    L-BFGS (scikit-learn's advice for small data sets), one hidden layer of 16 or 32
    units, L2 alpha in {0.01, 0.1, 1, 10}, at most 2000 iterations. :func:`tune` extends a
    numeric grid of three or more values past an edge where the criterion is best.

    References
    ----------
    Platt J. Advances in Large Margin Classifiers 1999:61-74. Chen T, Guestrin C. KDD
    2016:785-794 (XGBoost). Cover T, Hart P. IEEE Trans Inf Theory 1967;13:21-27.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "LR":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=5000)
        grid = {"clf__C": [0.0001, 0.001, 0.01, 0.1, 1, 10, 100]}
    elif name == "SVM":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        clf = CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), method="sigmoid", cv=5, ensemble=False)
        grid = {"clf__estimator__C": [0.1, 1, 10], "clf__estimator__gamma": ["scale", 0.01, 0.1]}
    elif name == "KNN":
        from sklearn.neighbors import KNeighborsClassifier

        clf = KNeighborsClassifier()
        grid = {"clf__n_neighbors": [5, 9, 15, 21], "clf__weights": ["uniform", "distance"]}
    elif name == "XGBoost":
        from xgboost import XGBClassifier

        clf = XGBClassifier(n_jobs=1, random_state=seed, subsample=0.8, colsample_bytree=0.8, tree_method="hist",
                            eval_metric="logloss")
        grid = {"clf__n_estimators": [50, 150], "clf__max_depth": [2, 3], "clf__learning_rate": [0.05, 0.2]}
    elif name == "MLP":
        from sklearn.neural_network import MLPClassifier

        # L-BFGS: scikit-learn's advice for small data sets (faster and better than Adam there)
        clf = MLPClassifier(solver="lbfgs", max_iter=2000, random_state=seed)
        grid = {"clf__hidden_layer_sizes": [(16,), (32,)], "clf__alpha": [1e-2, 1e-1, 1.0, 10.0]}
    else:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler()),
             ("clf", clf)]
    return Pipeline(steps), grid


# --------------------------------------------------------------------------------------------
# Input checks


def _rows(X, mask: np.ndarray):
    return X.loc[mask] if isinstance(X, pd.DataFrame) else X[mask]


def _features(X):
    if isinstance(X, pd.DataFrame):
        if X.columns.has_duplicates:
            raise ValueError(f"X has duplicated columns: {X.columns[X.columns.duplicated()].unique().tolist()[:5]}")
        return X
    values = np.asarray(X, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-D (patients x features), got shape {values.shape}")
    return values


def _check_scorable(folds: np.ndarray, y: np.ndarray) -> None:
    for k in np.unique(folds):
        if np.unique(y[folds == k]).size < 2:
            raise ValueError(f"fold {k} holds a single outcome class; its AUC is undefined (check the split file)")
        if np.unique(y[folds != k]).size < 2:
            raise ValueError(f"the patients outside fold {k} hold a single outcome class")


def _params_text(params: dict) -> str:
    return ", ".join(f"{key.split('__')[-1]}={value!r}" for key, value in sorted(params.items()))


# --------------------------------------------------------------------------------------------
# Tuning and prediction


def tune(name: str, X, y, folds, *, seed: int) -> TunedModel:
    """Tune a classifier by CV log loss over predefined folds (AUC beside it); refit it on all rows.

    Parameters
    ----------
    name : str
        One of ``CLASSIFIERS``.
    X : DataFrame or 2-D array
        Development patients x features (missing values allowed: median-imputed inside the
        pipeline). A DataFrame's column names are kept and checked at prediction.
    y : array-like of 0/1
    folds : array-like of int
        Fold label per row (>= 2 distinct labels): the only split used
        (``PredefinedSplit``); each fold must hold both outcome classes.
    seed : int, keyword-only

    Returns
    -------
    TunedModel

    Notes
    -----
    ``GridSearchCV(pipeline, grid, cv=PredefinedSplit(folds), scoring={"log_loss":
    "neg_log_loss", "auc": "roc_auc"}, refit="log_loss")``: for every grid point and fold,
    imputer, scaler and classifier are fitted on the other folds and scored on the held-out
    fold; the grid point with the lowest mean held-out log loss (a proper scoring rule, which
    rewards calibrated probabilities as well as ranking; the first on ties) is refitted on all
    rows. The AUC is reported beside it. Tuning by AUC alone would pick, for instance, a
    ridge penalty so strong that every probability sits near the prevalence (an AUC unchanged
    by any monotone squeeze, a calibration slope of 10 or more).

    Where the best value of a numeric hyperparameter with three or more grid values is the
    smallest or largest of its grid, the grid is extended by one step beyond it (the grid's
    own ratio for geometric grids, its own difference for arithmetic ones; integers stay
    integers, counts stay below the training rows) and searched again, up to
    ``MAX_EXTENSIONS`` times; a best value still on the edge then gives a ``GridEdgeWarning``
    naming the value. One process, one BLAS thread, seeded estimators: the same inputs and
    seed give identical fitted parameters.

    References
    ----------
    Hastie T, Tibshirani R, Friedman J. The Elements of Statistical Learning, 2nd ed.
    Springer 2009, section 7.10 (cross-validation). Gneiting T, Raftery AE. JASA
    2007;102:359-378 (proper scoring rules).
    """
    pipeline, grid = make_pipeline(name, seed=seed)
    X = _features(X)
    y = outcome_array(y, X, purpose="a classifier")
    folds = fold_array(folds, y)
    _check_scorable(folds, y)
    n_train = int(min(np.sum(folds != k) for k in np.unique(folds)))
    for extensions in range(MAX_EXTENSIONS + 1):
        search = _search(name, pipeline, grid, X, y, folds)
        wider = _extend(grid, _edges(grid, search.best_params_), n_train) if extensions < MAX_EXTENSIONS else grid
        if wider == grid:
            break
        grid = wider
    for key, side in _edges(grid, search.best_params_).items():
        warnings.warn(f"{name}: the CV log loss is best at {key.split('__')[-1]}={search.best_params_[key]!r}, the "
                      f"{side} edge of its grid {grid[key]} (extended {MAX_EXTENSIONS} times at most); the optimum "
                      "may lie beyond it", GridEdgeWarning, stacklevel=2)
    res = search.cv_results_
    n_splits = search.n_splits_

    def per_split(metric: str, sign: float = 1.0):
        scores = sign * np.column_stack([res[f"split{i}_test_{metric}"] for i in range(n_splits)])
        sd = scores.std(axis=1, ddof=1) if n_splits > 1 else np.full(scores.shape[0], np.nan)
        return sign * res[f"mean_test_{metric}"], sd

    mean_loss, sd_loss = per_split("log_loss", -1.0)
    mean_auc, sd_auc = per_split("auc")
    table = pd.DataFrame({"params": [_params_text(p) for p in res["params"]], "mean_log_loss": mean_loss,
                          "sd_log_loss": sd_loss, "mean_auc": mean_auc, "sd_auc": sd_auc,
                          "rank": res["rank_test_log_loss"].astype(int)}, columns=CV_RESULT_COLUMNS)
    best = int(search.best_index_)
    return TunedModel(name, search.best_estimator_, dict(search.best_params_), float(mean_auc[best]),
                      float(sd_auc[best]), table, float(mean_loss[best]), float(sd_loss[best]), grid)


def _search(name: str, pipeline, grid: dict, X, y, folds):
    """The grid search of :func:`tune`, its convergence warnings summarised in one line."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from threadpoolctl import threadpool_limits

    search = GridSearchCV(clone(pipeline), grid, cv=PredefinedSplit(folds),
                          scoring={"log_loss": "neg_log_loss", "auc": "roc_auc"}, refit="log_loss", n_jobs=1)
    # one BLAS thread while fitting: these matrices are tiny, so threads only add overhead (3x
    # here), and results then do not depend on the machine's core count
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(X, y)
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if unconverged:
        warnings.warn(f"{name}: {unconverged} of the grid search's fits stopped at the iteration limit before "
                      "converging (their CV scores are still what they achieved)", ConvergenceWarning, stacklevel=3)
    return search


def _numeric_grid(values) -> bool:
    return len(values) >= 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _edges(grid: dict, best: dict) -> dict:
    """Hyperparameter -> "lower" or "upper" where the best value is an edge of a numeric grid."""
    out = {}
    for key, values in grid.items():
        if _numeric_grid(values):
            ordered = sorted(values)
            if best[key] == ordered[0]:
                out[key] = "lower"
            elif best[key] == ordered[-1]:
                out[key] = "upper"
    return out


def _extend(grid: dict, edges: dict, n_train: int) -> dict:
    """The grid with one more value past each edge in ``edges`` (unchanged where none is valid)."""
    out = dict(grid)
    for key, side in edges.items():
        ordered = sorted(grid[key])
        a, b = (ordered[0], ordered[1]) if side == "lower" else (ordered[-1], ordered[-2])
        geometric = all(v > 0 for v in ordered) and not all(isinstance(v, int) for v in ordered)
        value = float(f"{a * (a / b):.12g}") if geometric else a + (a - b)  # 1e-05, not 9.999999999999999e-06
        if all(isinstance(v, int) for v in ordered):
            value = int(round(value))
            if value < 1 or value >= n_train:  # e.g. KNN's k: at least 1, fewer than the training rows
                continue
        elif value <= 0:
            continue
        out[key] = sorted([*ordered, float(value) if not isinstance(value, int) else value])
    return out


def predict_risk(model: TunedModel, X) -> np.ndarray:
    """Predicted probability of the outcome (class 1) for each row of ``X``.

    Parameters
    ----------
    model : TunedModel
    X : DataFrame or 2-D array
        The features the model was tuned on (a DataFrame with the same columns when it was
        tuned on a DataFrame).

    Returns
    -------
    ndarray of float, one per row.
    """
    estimator = model.estimator
    column = int(np.flatnonzero(np.asarray(estimator.classes_) == 1)[0])
    return np.asarray(estimator.predict_proba(X)[:, column], dtype=float)


def out_of_fold(name: str | None, X, y, folds, *, seed: int, fit=None) -> np.ndarray:
    """Nested cross-validated (out-of-fold) predictions for every development patient.

    Parameters
    ----------
    name : str or None
        Classifier for the default ``fit`` (ignored when ``fit`` is given).
    X : DataFrame or 2-D array
    y : array-like of 0/1
    folds : array-like of int
        Fold label per row (>= 3 distinct labels for the default ``fit``).
    seed : int, keyword-only
    fit : callable, optional, keyword-only
        ``fit(X_train, y_train, folds_train) -> predict`` where ``predict(X_test)`` returns
        one score per test row. It sees only the other folds' rows, outcomes and fold labels.
        Default: :func:`tune` on them (an inner ``PredefinedSplit`` over the remaining fold
        labels) and :func:`predict_risk`. A caller that also selects features passes its own.

    Returns
    -------
    ndarray of float
        For each row, the prediction of the model fitted without its fold.

    Notes
    -----
    Outer loop over the fold labels in sorted order; everything fitted in iteration k (the
    hyperparameters included) uses rows outside fold k only, so a patient's prediction never
    depends on its own fold's outcomes.

    References
    ----------
    Varma S, Simon R. BMC Bioinformatics 2006;7:91 (nested cross-validation).
    """
    X = _features(X)
    y = outcome_array(y, X, purpose="a classifier")
    folds = fold_array(folds, y, min_labels=2 if fit is not None else 3)
    if fit is None:
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")

        def fit(X_train, y_train, folds_train):
            return partial(predict_risk, tune(name, X_train, y_train, folds_train, seed=seed))
    elif not callable(fit):
        raise ValueError(f"fit must be a callable fit(X_train, y_train, folds_train) -> predict, got {fit!r}")
    out = np.full(y.size, np.nan)
    for k in np.unique(folds):
        test = folds == k
        predict = fit(_rows(X, ~test), y[~test], folds[~test])
        scores = np.asarray(predict(_rows(X, test)), dtype=float).ravel()
        if scores.size != int(test.sum()):
            raise ValueError(f"fold {k}: predict returned {scores.size} scores for {int(test.sum())} patients")
        out[test] = scores
    return out


def best_classifier(models: dict) -> str:
    """Name of the model with the highest development-cohort CV AUC.

    Parameters
    ----------
    models : mapping name -> TunedModel

    Returns
    -------
    str
        Ties are broken by the order of ``CLASSIFIERS`` (then by name); NaN AUCs never win.
    """
    if not models:
        raise ValueError("best_classifier needs at least one tuned model")
    scored = {name: m.cv_auc for name, m in models.items() if np.isfinite(m.cv_auc)}
    if not scored:
        raise ValueError(f"no model has a finite CV AUC: {', '.join(models)}")
    order = {name: i for i, name in enumerate(CLASSIFIERS)}
    return min(scored, key=lambda n: (-scored[n], order.get(n, len(CLASSIFIERS)), n))


# --------------------------------------------------------------------------------------------
# Fitted parameters, canonically


def _jsonable(obj):
    """Nested dicts/lists of str, int, bool, None and finite floats; non-finite floats as text."""
    if isinstance(obj, dict):
        return {str(key): _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_jsonable(value) for value in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    raise TypeError(f"cannot represent {type(obj).__name__} in the fitted parameters")


def parameters_json(obj) -> str:
    """Canonical JSON text: sorted keys, floats as Python's round-trip repr, NaN as ``"nan"``."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=1, allow_nan=False)


def _classifier_parameters(name: str, clf) -> dict:
    classes = np.asarray(clf.classes_)
    if name == "LR":
        return {"coef": clf.coef_, "intercept": clf.intercept_, "classes": classes, "n_iter": clf.n_iter_}
    if name == "SVM":
        fitted = clf.calibrated_classifiers_[0]
        svc = fitted.estimator
        return {"dual_coef": svc.dual_coef_, "support_vectors": svc.support_vectors_, "support": svc.support_,
                "n_support": svc.n_support_, "intercept": svc.intercept_, "classes": classes,
                "platt": [{"a": c.a_, "b": c.b_} for c in fitted.calibrators]}
    if name == "KNN":
        return {"n_neighbors": clf.n_neighbors, "weights": clf.weights, "metric": clf.effective_metric_,
                "fit_X": clf._fit_X, "y": clf._y, "classes": classes}
    if name == "XGBoost":
        raw = bytes(clf.get_booster().save_raw("json")).decode("utf-8")
        return {"booster": json.loads(raw), "classes": classes}
    if name == "MLP":
        return {"coefs": [w for w in clf.coefs_], "intercepts": [b for b in clf.intercepts_], "n_iter": clf.n_iter_,
                "out_activation": clf.out_activation_, "classes": classes}
    raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")


def fitted_parameters(model: TunedModel) -> dict:
    """Everything the tuned model learnt from its rows, as a canonical JSON-ready dict.

    Parameters
    ----------
    model : TunedModel

    Returns
    -------
    dict
        ``name``, ``best_params``, ``feature_names_in`` (None for array input),
        ``n_features_in``, ``imputer`` (median ``statistics``), ``scaler`` (``mean``,
        ``scale``, ``n_samples_seen``) and ``classifier``: LR ``coef``/``intercept``; SVM
        ``dual_coef``, ``support_vectors``, ``intercept`` and the Platt ``a``/``b``; KNN
        ``n_neighbors``, ``weights``, the stored training matrix ``fit_X`` and labels ``y``;
        XGBoost the booster's JSON model; MLP ``coefs``/``intercepts``. Arrays are nested
        lists of Python floats (exact through :func:`parameters_json`, whose repr
        round-trips), non-finite values the strings ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    pipe = model.estimator
    imputer, scaler, clf = pipe.named_steps["impute"], pipe.named_steps["scale"], pipe.named_steps["clf"]
    names = getattr(pipe, "feature_names_in_", None)
    out = {
        "name": model.name,
        "best_params": model.best_params,
        "feature_names_in": None if names is None else [str(n) for n in names],
        "n_features_in": int(pipe.n_features_in_),
        "imputer": {"statistics": imputer.statistics_},
        "scaler": {"mean": scaler.mean_, "scale": scaler.scale_, "n_samples_seen": scaler.n_samples_seen_},
        "classifier": _classifier_parameters(model.name, clf),
    }
    return _jsonable(out)
