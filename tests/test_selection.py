"""Radiomics feature selection: ICC filter, univariate tests, LASSO, the three steps chained."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402
from scipy import stats  # noqa: E402

from dlr.core.stats.agreement import icc  # noqa: E402
from dlr.core.stats.group_tests import compare_continuous  # noqa: E402
from dlr.modeling.radiomics.selection import (  # noqa: E402
    INTERCEPT_SCALING,
    PROB_MIN,
    SelectionError,
    icc_filter,
    lasso_select,
    plot_lasso,
    select_features,
    univariate_filter,
)

def stratified_folds(y, rng, k=5):
    folds = np.zeros(y.size, dtype=int)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        folds[idx] = np.arange(idx.size) % k + 1
    return folds


def make_study(n=120, p=60, n_reader2=30, seed=0):
    """Reader-1 features with 3 signal features, reader-2 copies of the first ``n_reader2``
    patients: the even-numbered features re-measured with small noise (ICC ~ 0.99), the odd
    ones with large noise (ICC ~ 0.3)."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    cols = [f"f{j:02d}" for j in range(p)]
    X = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=cols)
    logit = 2.0 * X["f00"] + 2.0 * X["f02"] - 2.0 * X["f04"]
    y = (logit + rng.logistic(size=n) > 0).astype(int).to_numpy()
    noise_sd = np.where(np.arange(p) % 2 == 0, 0.1, 1.5)
    reader2 = X.iloc[:n_reader2] + rng.normal(size=(n_reader2, p)) * noise_sd
    return X, y, stratified_folds(y, rng), reader2


SIGNAL = ("f00", "f02", "f04")


# --------------------------------------------------------------------------------------------
# ICC


def test_icc_filter_keeps_the_low_noise_features_and_matches_agreement_icc():
    X, _, _, reader2 = make_study()
    res = icc_filter(X, reader2)
    even = tuple(c for j, c in enumerate(X.columns) if j % 2 == 0)
    assert res.kept == even
    assert res.n_subjects == 30 and res.form == "ICC(2,1)" and res.threshold == 0.90
    shared = reader2.index
    for j, feature in enumerate(X.columns[:8]):
        ratings = np.column_stack([X.loc[shared, feature], reader2[feature]])
        one = icc(ratings, form="ICC(2,1)")
        row = res.table.iloc[j]
        assert row["feature"] == feature
        assert_allclose([row["icc"], row["ci_low"], row["ci_high"]],
                        [one.estimate[0], one.ci_low[0], one.ci_high[0]], rtol=1e-12)
    assert res.table["kept"].tolist() == [j % 2 == 0 for j in range(X.shape[1])]


def test_icc_filter_missing_values_use_each_features_complete_patients():
    X, _, _, reader2 = make_study()
    reader2 = reader2.copy()
    reader2.iloc[4, 0] = np.nan
    with pytest.warns(UserWarning, match="1 feature"):
        res = icc_filter(X, reader2)
    rows = reader2.index[reader2["f00"].notna()]
    one = icc(np.column_stack([X.loc[rows, "f00"], reader2.loc[rows, "f00"]]))
    assert_allclose(res.table.loc[0, "icc"], one.estimate[0], rtol=1e-12)
    assert res.table.loc[0, "n_subjects"] == 29 and res.table.loc[1, "n_subjects"] == 30
    # every other feature is unaffected
    clean = icc_filter(X.iloc[:, 1:], reader2.iloc[:, 1:])
    assert_allclose(res.table["icc"].to_numpy()[1:], clean.table["icc"].to_numpy(), rtol=1e-12)


def test_icc_filter_constant_feature_is_not_kept_and_few_subjects_raise():
    X, _, _, reader2 = make_study()
    X, reader2 = X.copy(), reader2.copy()
    X["f00"] = 1.0
    reader2["f00"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = icc_filter(X, reader2)
    assert np.isnan(res.table.loc[0, "icc"]) and not res.table.loc[0, "kept"]
    assert "f00" not in res.kept
    with pytest.raises(ValueError, match="at least 3 patients.*got 2"):
        icc_filter(X, reader2.iloc[:2])
    with pytest.raises(ValueError, match="lacks 1"):
        icc_filter(X, reader2.drop(columns="f05"))


# --------------------------------------------------------------------------------------------
# Univariate tests


def test_univariate_filter_matches_compare_continuous_and_scipy():
    rng = np.random.default_rng(3)
    n = 120
    y = np.repeat([0, 1], [70, 50])
    X = pd.DataFrame({
        "normal": rng.normal(size=n) + 0.6 * y,
        "skewed": np.exp(rng.normal(size=n) * 1.2 + 1.0 * y),
        "null": rng.normal(size=n),
        "constant": np.full(n, 2.0),
        "ties": rng.integers(0, 4, size=n).astype(float) + y,
        "with_nan": rng.normal(size=n) + 0.5 * y,
    })
    X.loc[[3, 60, 100], "with_nan"] = np.nan
    res = univariate_filter(X, y)
    table = res.table.set_index("feature")
    for feature in X.columns:
        v = X[feature].to_numpy()
        ok = np.isfinite(v)
        ref = compare_continuous([v[ok & (y == 0)], v[ok & (y == 1)]], equal_var=True)
        assert table.loc[feature, "test"] == ref.test, feature
        assert_allclose(table.loc[feature, ["statistic", "p_value", "normality_p"]].to_numpy(dtype=float),
                        [ref.statistic, ref.p_value, ref.normality_p], rtol=1e-10, equal_nan=True)
    assert table.loc["normal", "test"] == "Student t test"
    assert table.loc["skewed", "test"] == "Mann-Whitney U"
    assert table.loc["constant", "test"] == "not testable" and not table.loc["constant", "kept"]
    assert table.loc["with_nan", "n"] == n - 3
    # the paper's tests, straight from scipy (R: t.test(x0, x1, var.equal = TRUE); wilcox.test(x0, x1))
    x = X["normal"].to_numpy()
    t = stats.ttest_ind(x[y == 0], x[y == 1], equal_var=True)
    assert_allclose([table.loc["normal", "statistic"], table.loc["normal", "p_value"]], [t.statistic, t.pvalue],
                    rtol=1e-10)
    x = X["skewed"].to_numpy()
    u = stats.mannwhitneyu(x[y == 0], x[y == 1], use_continuity=True, method="asymptotic")
    assert_allclose([table.loc["skewed", "statistic"], table.loc["skewed", "p_value"]], [u.statistic, u.pvalue],
                    rtol=1e-10)
    assert res.kept == tuple(f for f in X.columns if table.loc[f, "p_value"] < 0.05)
    assert {"normal", "skewed"} <= set(res.kept)


def test_univariate_filter_small_groups_use_the_exact_mann_whitney():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], [20, 15])
    X = pd.DataFrame(np.exp(rng.normal(size=(35, 30)) * 1.5), columns=[f"g{j}" for j in range(30)])
    X.iloc[:, :10] += y[:, None]
    res = univariate_filter(X, pd.Series(y, index=X.index))
    for j, feature in enumerate(X.columns):
        v = X[feature].to_numpy()
        ref = compare_continuous([v[y == 0], v[y == 1]], equal_var=True)
        row = res.table.iloc[j]
        assert row["test"] == ref.test
        assert_allclose([row["statistic"], row["p_value"]], [ref.statistic, ref.p_value], rtol=1e-10)
    mw = res.table["test"] == "Mann-Whitney U"
    assert mw.sum() >= 10
    x = X["g0"].to_numpy()
    exact = stats.mannwhitneyu(x[y == 0], x[y == 1], method="exact")
    assert res.table.loc[0, "test"] == "Mann-Whitney U"
    assert_allclose(res.table.loc[0, "p_value"], exact.pvalue, rtol=1e-12)


def test_univariate_filter_checks_its_inputs():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="only 0 and 1"):
        univariate_filter(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="single class"):
        univariate_filter(X, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="one value per patient"):
        univariate_filter(X, [0, 1, 1])


# --------------------------------------------------------------------------------------------
# LASSO


@pytest.fixture(scope="module")
def lasso_data():
    X, y, folds, _ = make_study(n=120, p=40, seed=1)
    return X, y, folds, lasso_select(X, y, folds, seed=0)


def test_lasso_selects_the_signal_features(lasso_data):
    X, _, _, res = lasso_data
    assert set(SIGNAL) <= set(res.features)
    assert len(res.features) <= 15
    assert res.features == tuple(c for c in X.columns if c in set(res.features))
    assert set(res.selected["feature"]) == set(res.features)
    assert (np.diff(np.abs(res.selected["coefficient"].to_numpy())) <= 0).all()
    cv = res.cv
    # the grid starts where no feature enters (glmnet's lambda_max) and lambda = 1 / (C n)
    assert cv["n_nonzero"].iloc[0] == 0 and cv["n_nonzero"].iloc[-1] > 0
    assert_allclose(cv["lambda"], 1 / (cv["C"] * len(X)), rtol=1e-12)
    assert_allclose(cv["log_lambda"], np.log(cv["lambda"]), rtol=1e-12)
    assert cv["chosen"].sum() == 1 and cv.loc[cv["chosen"], "C"].item() == res.chosen_C
    assert cv.loc[cv["chosen"], "deviance_mean"].item() == cv["deviance_mean"].min()
    chosen_path = res.path[res.path["C"] == res.chosen_C].set_index("feature")["coefficient"]
    assert_allclose(chosen_path[list(res.selected["feature"])], res.selected["coefficient"], rtol=0, atol=0)
    # both rules' rows recorded (the report's LASSO figure marks them and computes neither)
    assert cv["lambda_min"].sum() == 1 and cv["lambda_1se"].sum() == 1
    assert cv.loc[cv["lambda_min"], "deviance_mean"].item() == cv["deviance_mean"].min()
    best = cv.loc[cv["lambda_min"]].iloc[0]
    within = cv[cv["deviance_mean"] <= best["deviance_mean"] + best["deviance_se"]]
    assert cv.loc[cv["lambda_1se"], "lambda"].item() == within["lambda"].max()


def test_lasso_cv_deviance_equals_a_manual_recomputation(lasso_data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y, folds, res = lasso_data
    row = res.cv[res.cv["chosen"]].iloc[0]
    values = X.to_numpy()
    devs, sizes = [], []
    for k in range(1, 6):
        train, test = folds != k, folds == k
        scaler = StandardScaler().fit(values[train])
        model = LogisticRegression(C=1 / (row["lambda"] * train.sum()), l1_ratio=1.0, solver="liblinear",
                                   intercept_scaling=INTERCEPT_SCALING, tol=1e-6, max_iter=100_000, random_state=0)
        model.fit(scaler.transform(values[train]), y[train])
        p = np.clip(model.predict_proba(scaler.transform(values[test]))[:, 1], PROB_MIN, 1 - PROB_MIN)
        devs.append(np.mean(-2 * (y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))))
        sizes.append(test.sum())
    w = np.array(sizes) / np.sum(sizes)
    mean = float(w @ np.array(devs))
    se = float(np.sqrt(w @ (np.array(devs) - mean) ** 2 / 4))
    assert_allclose([row["deviance_mean"], row["deviance_se"]], [mean, se], rtol=1e-9)


def test_lasso_1se_rule_is_sparser_than_min(lasso_data):
    X, y, folds, res_min = lasso_data
    res_1se = lasso_select(X, y, folds, rule="1se", seed=0)
    assert len(res_1se.features) <= len(res_min.features)
    assert res_1se.chosen_lambda >= res_min.chosen_lambda
    cv = res_1se.cv
    best = cv["deviance_mean"].idxmin()
    threshold = cv.loc[best, "deviance_mean"] + cv.loc[best, "deviance_se"]
    chosen = int(np.flatnonzero(cv["chosen"])[0])
    assert cv.loc[chosen, "deviance_mean"] <= threshold
    assert (cv.loc[: chosen - 1, "deviance_mean"] > threshold).all()
    assert_allclose(res_1se.cv["deviance_mean"], res_min.cv["deviance_mean"], rtol=0, atol=0)


def test_lasso_moves_off_an_empty_model_with_a_warning():
    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(100, 20)), columns=[f"n{j}" for j in range(20)])
    y = rng.integers(0, 2, size=100)
    folds = stratified_folds(y, rng)
    with pytest.warns(UserWarning, match="selects no feature"):
        res = lasso_select(X, y, folds)
    chosen = int(np.flatnonzero(res.cv["chosen"])[0])
    assert len(res.features) >= 1
    assert (res.cv["n_nonzero"].iloc[:chosen] == 0).all() and res.cv["n_nonzero"].iloc[chosen] >= 1


def test_lasso_is_deterministic_and_checks_rule(lasso_data):
    X, y, folds, res = lasso_data
    again = lasso_select(X, y, folds, n_lambdas=15, seed=0)
    twice = lasso_select(X, y, folds, n_lambdas=15, seed=0)
    pd.testing.assert_frame_equal(twice.cv, again.cv)
    pd.testing.assert_frame_equal(twice.path, again.path)
    assert_allclose(again.cv["C"].iloc[[0, -1]], res.cv["C"].iloc[[0, -1]], rtol=1e-12)
    with pytest.raises(ValueError, match="rule"):
        lasso_select(X, y, folds, rule="max")
    with pytest.raises(ValueError, match="fold label per patient"):
        lasso_select(X, y, folds[:-1])


def test_plot_lasso_draws_paths_and_cv_curve(lasso_data):
    res = lasso_data[3]
    axes = plot_lasso(res)
    left, right = axes
    n_paths = res.path["feature"].nunique()
    assert len(left.get_lines()) == n_paths + 2  # paths, zero line, chosen lambda
    assert left.get_lines()[-1].get_xdata()[0] == pytest.approx(np.log(res.chosen_lambda))
    assert right.get_xlabel() == "log(λ)"
    plt.close("all")


# --------------------------------------------------------------------------------------------
# Three steps


def test_select_features_chains_the_steps():
    X, y, folds, reader2 = make_study(seed=2)
    res = select_features(X, y, folds, reader2=reader2, n_lambdas=20)
    assert res.icc is not None and res.icc.kept == tuple(X.columns[::2])
    assert res.univariate.table["feature"].tolist() == list(res.icc.kept)
    assert set(res.lasso.features) <= set(res.univariate.kept)
    assert res.features == res.lasso.features
    assert set(SIGNAL) <= set(res.features)
    assert res.counts["step"].tolist() == ["extracted", "ICC > 0.90", "t test / Mann-Whitney p < 0.05", "LASSO"]
    assert res.counts["n_features"].tolist() == [60, 30, len(res.univariate.kept), len(res.features)]
    # reader-2 rows of patients outside X (validation patients) change nothing
    outside = reader2.rename(index=lambda i: "V" + i)
    res2 = select_features(X, y, folds, reader2=pd.concat([reader2, outside]), n_lambdas=20)
    assert res2.features == res.features
    pd.testing.assert_frame_equal(res2.icc.table, res.icc.table)


def test_select_features_without_reader2_records_the_skipped_step():
    X, y, folds, reader2 = make_study(p=20, seed=2)
    res = select_features(X, y, folds, n_lambdas=20)
    assert res.icc is None and "skipped" in res.notes[0]
    assert res.counts.loc[1, "n_features"] == 20 and "skipped" in res.counts.loc[1, "note"]
    res2 = select_features(X, y, folds, reader2=reader2.rename(index=lambda i: "V" + i), n_lambdas=20)
    assert res2.icc is None and res2.features == res.features


def test_select_features_raises_when_a_step_leaves_nothing():
    X, y, folds, reader2 = make_study(p=10, seed=2)
    noisy = X.iloc[:30] + np.random.default_rng(0).normal(scale=3.0, size=(30, 10))
    with pytest.raises(SelectionError, match="ICC > 0.90.*extracted: 10, ICC > 0.90: 0"):
        select_features(X, y, folds, reader2=noisy)
    flat = pd.DataFrame(1.0, index=X.index, columns=["a", "b"])
    with pytest.raises(SelectionError, match="t test / Mann-Whitney"):
        select_features(flat, y, folds)
    assert issubclass(SelectionError, ValueError)
