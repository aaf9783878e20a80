"""Radiomics feature selection (methods section G): ICC > 0.90 between readers, then a t test
or Mann-Whitney U test between outcome groups, then LASSO logistic regression with 5-fold
cross-validation, as Zhao et al. (2024) did.

Every step is fitted on the rows it is given; the caller passes the development cohort only
(and, inside nested cross-validation, only the training part of a fold). The LASSO's
cross-validation uses the study's predefined fold array, never a fresh random split, so that
every model of the study shares one set of folds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlr.core.stats.agreement import icc
from dlr.core.stats.group_tests import NOT_TESTABLE, compare_continuous, compare_continuous_columns

from ..splits import fold_array, outcome_array

#: Probabilities are clipped to [PROB_MIN, 1 - PROB_MIN] before the deviance, as cv.glmnet does.
PROB_MIN = 1e-5
#: liblinear penalises the intercept as a feature of this constant value; at 100 its penalty is
#: 1/100 of a coefficient's, close to glmnet's unpenalised intercept.
INTERCEPT_SCALING = 100.0
LASSO_RULES = ("min", "1se")
#: liblinear's iteration cap per fit (a fit that reaches it is near separation; see lasso_select)
MAX_ITER = 20_000

UNIVARIATE_COLUMNS = ["feature", "test", "statistic", "p_value", "normality_p", "n", "kept"]
ICC_COLUMNS = ["feature", "icc", "ci_low", "ci_high", "n_subjects", "kept"]
CV_COLUMNS = ["C", "lambda", "log_lambda", "deviance_mean", "deviance_se", "n_nonzero", "chosen", "lambda_min",
              "lambda_1se"]
PATH_COLUMNS = ["C", "lambda", "log_lambda", "feature", "coefficient"]
COUNT_COLUMNS = ["step", "n_features", "note"]


class SelectionError(ValueError):
    """A selection step left no feature; the message names the step and the counts so far."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ICCFilterResult:
    """Inter-reader reproducibility filter.

    Attributes
    ----------
    table : DataFrame
        One row per feature in input order: ``feature``, ``icc`` (the estimate), ``ci_low``,
        ``ci_high`` (95% CI), ``n_subjects`` (patients with both readers' values of that
        feature), ``kept`` (``icc > threshold``; False where the ICC is NaN).
    kept : tuple of str
        Features kept, in input column order.
    n_subjects : int
        Patients rated by both readers (before per-feature removal of missing values).
    threshold : float
    form : str
        ICC form (Shrout & Fleiss notation), e.g. ``"ICC(2,1)"``.
    """

    table: pd.DataFrame
    kept: tuple
    n_subjects: int
    threshold: float
    form: str

    def to_frame(self) -> pd.DataFrame:
        return self.table


@dataclass(frozen=True)
class UnivariateResult:
    """Univariate comparison of every feature between the outcome groups.

    Attributes
    ----------
    table : DataFrame
        One row per feature in input order: ``feature``, ``test`` (``"Student t test"``,
        ``"Mann-Whitney U"`` or ``"not testable"``), ``statistic`` (t, or W = U of the
        outcome-0 group as R's ``wilcox.test(x0, x1)``), ``p_value``, ``normality_p``
        (smallest Shapiro-Wilk p of the two groups), ``n`` (non-missing values), ``kept``
        (``p_value < alpha``).
    kept : tuple of str
        Features kept, in input column order.
    alpha : float
    """

    table: pd.DataFrame
    kept: tuple
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        return self.table


@dataclass(frozen=True)
class LassoResult:
    """L1-penalised logistic regression with the penalty chosen by cross-validation.

    Attributes
    ----------
    selected : DataFrame
        ``feature``, ``coefficient``: non-zero coefficients of the final fit (all rows, chosen
        penalty) on the z-scored scale, sorted by decreasing absolute value.
    features : tuple of str
        The selected features in input column order.
    path : DataFrame
        Long form ``C``, ``lambda``, ``log_lambda``, ``feature``, ``coefficient``: the
        coefficients of the all-rows fit at every penalty, for every feature non-zero at some
        penalty (zeros included, so each path is a line).
    cv : DataFrame
        One row per penalty, most penalised first: ``C``, ``lambda`` (= 1 / (C n), glmnet's
        scale), ``log_lambda`` (natural log), ``deviance_mean`` and ``deviance_se`` (glmnet's
        ``cvm`` and ``cvsd``), ``n_nonzero`` (of the all-rows fit), ``chosen``, and
        ``lambda_min`` / ``lambda_1se``: the rows of glmnet's ``lambda.min`` and ``lambda.1se``
        (whichever rule chose; the report's LASSO figure marks both and computes neither).
    chosen_C, chosen_lambda : float
        Penalty of the final fit.
    rule : str
        ``"min"`` (glmnet ``lambda.min``) or ``"1se"`` (``lambda.1se``).
    intercept : float
        Intercept of the final fit (z-scored features).
    """

    selected: pd.DataFrame
    features: tuple
    path: pd.DataFrame
    cv: pd.DataFrame
    chosen_C: float
    chosen_lambda: float
    rule: str
    intercept: float

    def to_frame(self) -> pd.DataFrame:
        return self.selected


@dataclass(frozen=True)
class SelectionResult:
    """The paper's three-step radiomics feature selection.

    Attributes
    ----------
    icc : ICCFilterResult or None
        None when no second reader's features were given for these patients.
    univariate : UnivariateResult
    lasso : LassoResult
    counts : DataFrame
        ``step``, ``n_features`` (features left after the step), ``note``: rows
        ``extracted``, ``ICC > 0.90`` (with the threshold used; ``note`` says when the step
        was skipped and ``n_features`` is then unchanged), ``t test / Mann-Whitney p < 0.05``,
        ``LASSO``.
    features : tuple of str
        The final features, in input column order.
    notes : tuple of str
        Anything the caller should report (a skipped step).
    """

    icc: ICCFilterResult | None
    univariate: UnivariateResult
    lasso: LassoResult
    counts: pd.DataFrame
    features: tuple
    notes: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        return self.counts


# --------------------------------------------------------------------------------------------
# Input checks


def _feature_frame(X, where: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"{where} must be a pandas DataFrame (patients x features), got {type(X).__name__}")
    if X.columns.has_duplicates:
        dup = X.columns[X.columns.duplicated()].unique().tolist()
        raise ValueError(f"{where} has duplicated feature columns: {dup[:5]}")
    if X.shape[1] == 0:
        raise ValueError(f"{where} has no feature columns")
    bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise ValueError(f"{where} has non-numeric feature columns: {bad[:5]}{' ...' if len(bad) > 5 else ''}")
    return X


def _matrix(X: pd.DataFrame) -> np.ndarray:
    values = np.array(X.to_numpy(dtype=float, na_value=np.nan), dtype=float, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def _fold_array(folds, y: np.ndarray) -> np.ndarray:
    values = fold_array(folds, y)
    for k in np.unique(values):
        train = y[values != k]
        if np.unique(train).size < 2:
            raise ValueError(f"fold {k}: the patients outside it have a single outcome class")
    return values


# --------------------------------------------------------------------------------------------
# Step 1: ICC


def icc_filter(reader1: pd.DataFrame, reader2: pd.DataFrame, *, threshold: float = 0.90,
               form: str = "ICC(2,1)") -> ICCFilterResult:
    """Keep the features reproducible between two readers' segmentations (ICC > threshold).

    Parameters
    ----------
    reader1, reader2 : DataFrame
        Indexed by patient id, one column per feature: the features from reader 1's and
        reader 2's masks. Patients in both are used; every column of ``reader1`` must be in
        ``reader2``.
    threshold : float, keyword-only
        Features with ICC strictly above it are kept (0.90, as the paper).
    form : str, keyword-only
        ICC form passed to :func:`dlr.core.stats.agreement.icc` (default ``"ICC(2,1)"``: two-way
        random effects, absolute agreement, single rater).

    Returns
    -------
    ICCFilterResult

    Raises
    ------
    ValueError
        Fewer than 3 patients rated by both readers, a missing column, duplicated patients.

    Notes
    -----
    The ICC of each feature is computed from the n x 2 ratings of the patients with both
    values of that feature (:func:`dlr.core.stats.agreement.icc`, vectorised over the features that
    share a pattern of missing values; equal to R ``psych::ICC``). A feature with fewer than
    3 such patients, or with no variance, has a NaN ICC and is not kept; a warning says how
    many features lost patients to missing values.

    References
    ----------
    Shrout PE, Fleiss JL. Psychol Bull 1979;86:420-428. Koo TK, Li MY. J Chiropr Med
    2016;15:155-163.
    """
    reader1 = _feature_frame(reader1, "reader1")
    if not isinstance(reader2, pd.DataFrame):
        raise ValueError(f"reader2 must be a pandas DataFrame (patients x features), got {type(reader2).__name__}")
    if not -1 <= threshold <= 1:
        raise ValueError(f"ICC threshold must lie in [-1, 1], got {threshold!r}")
    missing = [c for c in reader1.columns if c not in reader2.columns]
    if missing:
        raise ValueError(f"reader2 lacks {len(missing)} of reader1's feature columns, e.g. {missing[:3]}")
    reader2 = _feature_frame(reader2.loc[:, list(reader1.columns)], "reader2")
    for name, frame in (("reader1", reader1), ("reader2", reader2)):
        if frame.index.has_duplicates:
            raise ValueError(f"{name} has duplicated patient ids: {frame.index[frame.index.duplicated()][:5].tolist()}")
    features = list(reader1.columns)
    common = reader1.index[reader1.index.isin(reader2.index)]
    if len(common) < 3:
        raise ValueError(f"ICC needs at least 3 patients rated by both readers, got {len(common)}")
    a = _matrix(reader1.loc[common, features])
    b = _matrix(reader2.loc[common, features])
    complete = np.isfinite(a) & np.isfinite(b)  # (patients, features)
    p = len(features)
    est, low, high = np.full(p, np.nan), np.full(p, np.nan), np.full(p, np.nan)
    n_used = complete.sum(axis=0)
    # one vectorised ICC per distinct pattern of complete patients (usually a single one)
    patterns = {}
    for j in range(p):
        patterns.setdefault(complete[:, j].tobytes(), []).append(j)
    for key, cols in patterns.items():
        rows = np.frombuffer(key, dtype=bool)
        if rows.sum() < 3:
            continue
        ratings = np.stack([a[np.ix_(rows, cols)], b[np.ix_(rows, cols)]], axis=1)
        res = icc(ratings, form=form)
        est[cols], low[cols], high[cols] = res.estimate, res.ci_low, res.ci_high
    short = int(np.sum(n_used < len(common)))
    if short:
        warnings.warn(f"ICC: {short} feature(s) have missing values for some of the {len(common)} patients rated "
                      f"by both readers; their ICC uses the patients with both values ({int(np.sum(n_used < 3))} "
                      "with fewer than 3 such patients have a NaN ICC and are dropped)", UserWarning, stacklevel=2)
    kept_mask = np.isfinite(est) & (est > threshold)
    table = pd.DataFrame({"feature": features, "icc": est, "ci_low": low, "ci_high": high,
                          "n_subjects": n_used.astype(int), "kept": kept_mask}, columns=ICC_COLUMNS)
    return ICCFilterResult(table, tuple(f for f, k in zip(features, kept_mask) if k), int(len(common)),
                           float(threshold), form)


# --------------------------------------------------------------------------------------------
# Step 2: univariate tests


def univariate_filter(X: pd.DataFrame, y, *, alpha: float = 0.05) -> UnivariateResult:
    """Keep the features that differ between the outcome groups (p < alpha).

    Parameters
    ----------
    X : DataFrame
        Patients x features (development cohort only).
    y : array-like of 0/1
        Outcome per row of ``X`` (a Series indexed by X's patients is aligned on the index).
    alpha : float, keyword-only
        Significance level (0.05).

    Returns
    -------
    UnivariateResult

    Notes
    -----
    Per feature, the rule of methods section E through
    :func:`dlr.core.stats.group_tests.compare_continuous` with ``equal_var=True``: Shapiro-Wilk (R
    ``shapiro.test``) in each outcome group; both p > 0.05 gives Student's two-sample t test
    (R ``t.test(x0, x1, var.equal = TRUE)``, the paper's "independent sample t test"),
    otherwise the Mann-Whitney U test (R ``wilcox.test(x0, x1)`` defaults). Missing values are
    dropped per feature. A constant feature is ``not testable`` (NaN p) and is not kept.
    Features without missing values go through the same scipy tests batched over columns
    (:func:`dlr.core.stats.group_tests.compare_continuous_columns`, identical results), so 3111 features take about a second.

    References
    ----------
    Shapiro SS, Wilk MB. Biometrika 1965;52:591-611. Student. Biometrika 1908;6:1-25.
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60.
    """
    X = _feature_frame(X, "X")
    y = outcome_array(y, X, purpose="selection")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    values = _matrix(X)
    present = np.isfinite(values)
    complete = present.all(axis=0)
    rows = [None] * values.shape[1]
    if complete.any():
        cols = np.flatnonzero(complete)
        for j, res in zip(cols, compare_continuous_columns(values[y == 0][:, cols], values[y == 1][:, cols],
                                                          equal_var=True)):
            rows[j] = res
    for j in np.flatnonzero(~complete):  # missing values: one feature at a time
        v, ok = values[:, j], present[:, j]
        rows[j] = compare_continuous([v[ok & (y == 0)], v[ok & (y == 1)]], equal_var=True)
    n_present = present.sum(axis=0)
    rows = [{"feature": name, "test": res.test, "statistic": res.statistic, "p_value": res.p_value,
             "normality_p": res.normality_p, "n": int(n_present[j]),
             "kept": res.test != NOT_TESTABLE and bool(res.p_value < alpha)}
            for j, (name, res) in enumerate(zip(X.columns, rows))]
    table = pd.DataFrame(rows, columns=UNIVARIATE_COLUMNS)
    table["kept"] = table["kept"].astype(bool)
    return UnivariateResult(table, tuple(table.loc[table["kept"], "feature"]), float(alpha))


# --------------------------------------------------------------------------------------------
# Step 3: LASSO


def _lasso_model(C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", intercept_scaling=INTERCEPT_SCALING,
                              tol=1e-6, max_iter=MAX_ITER, random_state=seed)


def _preprocessor():
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler())])


def _binomial_deviance(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, PROB_MIN, 1 - PROB_MIN)
    return float(np.mean(-2.0 * (y * np.log(p) + (1 - y) * np.log1p(-p))))


def lasso_select(X: pd.DataFrame, y, folds, *, n_lambdas: int = 50, rule: str = "min", seed: int = 0) -> LassoResult:
    """LASSO logistic regression with the penalty chosen by cross-validated deviance.

    Parameters
    ----------
    X : DataFrame
        Patients x features (development cohort only). Missing values are replaced by the
        feature's median (fitted on the rows in use).
    y : array-like of 0/1
        Outcome per row of ``X``.
    folds : array-like of int
        Fold label per row (the split file's folds); the cross-validation uses exactly these
        folds (scikit-learn ``PredefinedSplit``).
    n_lambdas : int, keyword-only
        Penalties on the grid (50), log-spaced from the smallest penalty that leaves every
        coefficient at zero over three decades (more patients than features) or two (fewer).
    rule : {"min", "1se"}, keyword-only
        ``"min"``: the penalty with the lowest mean CV deviance (glmnet ``lambda.min``);
        ``"1se"``: the largest penalty whose mean deviance is within one standard error of
        that minimum (``lambda.1se``).
    seed : int, keyword-only
        ``random_state`` of liblinear's coordinate descent.

    Returns
    -------
    LassoResult

    Raises
    ------
    SelectionError
        No penalty on the grid selects any feature.

    Notes
    -----
    Minimises C sum_i logloss_i + ||beta||_1 over z-scored features (scikit-learn
    ``LogisticRegression(l1_ratio=1, solver="liblinear")``), i.e. glmnet's
    (1/n) sum_i logloss_i + lambda ||beta||_1 with lambda = 1 / (C n). The grid starts at
    ``sklearn.svm.l1_min_c`` of the z-scored features (for centred features glmnet's
    lambda_max = max_j |x_j'(y - ybar)| / n) and spans C_min * 10^[0, 3] when n > p, else
    C_min * 10^[0, 2] (glmnet: lambda.min.ratio 1e-4 and 1e-2). As cv.glmnet, each
    fold's training part is z-scored on its own and fitted at the same lambda (its C is
    1 / (lambda n_train)); the held-out deviance -2 [y log p + (1 - y) log(1 - p)], p clipped
    to [1e-5, 1 - 1e-5], is averaged within each fold; ``deviance_mean`` is the fold-size
    weighted mean of the fold means and ``deviance_se`` = sqrt(sum_k w_k (d_k - mean)^2 /
    (K - 1)) with w_k the fold's share of patients (cv.glmnet's ``cvm`` and ``cvsd``). Ties
    go to the larger penalty. If the chosen penalty selects no feature, the penalty is
    lowered along the grid to the first that selects one, with a warning. The intercept is
    penalised by liblinear with 1/100 of a coefficient's weight (glmnet leaves it free).

    References
    ----------
    Tibshirani R. J R Stat Soc B 1996;58:267-288. Friedman J, Hastie T, Tibshirani R. J Stat
    Softw 2010;33:1-22 (glmnet, ``cv.glmnet(family = "binomial", type.measure = "deviance")``).
    """
    from sklearn.base import clone
    from sklearn.svm import l1_min_c

    X = _feature_frame(X, "X")
    y = outcome_array(y, X, purpose="selection")
    folds = _fold_array(folds, y)
    if rule not in LASSO_RULES:
        raise ValueError(f"LASSO rule must be one of {LASSO_RULES}, got {rule!r}")
    if not isinstance(n_lambdas, (int, np.integer)) or n_lambdas < 2:
        raise ValueError(f"n_lambdas must be an integer >= 2, got {n_lambdas!r}")
    features = list(X.columns)
    values = _matrix(X)
    n = y.size
    prep = _preprocessor().fit(values)
    scaled = prep.transform(values)
    try:
        c_min = l1_min_c(scaled, y, loss="log", fit_intercept=False)
    except ValueError as exc:  # every feature constant
        raise SelectionError(f"LASSO: no feature varies among the {n} patients ({exc})") from None
    # the path spans 3 decades when patients outnumber features, 2 otherwise (glmnet's
    # lambda.min.ratio is 1e-4 and 1e-2; its last decade for n > p holds near-separated fits that
    # take liblinear minutes to converge and never minimise the CV deviance of radiomics data)
    decades = 3.0 if n > values.shape[1] else 2.0
    Cs = c_min * np.logspace(0, decades, int(n_lambdas))
    lambdas = 1.0 / (Cs * n)

    labels = np.unique(folds)
    dev = np.empty((labels.size, Cs.size))
    sizes = np.empty(labels.size)
    for i, k in enumerate(labels):
        train, test = folds != k, folds == k
        sizes[i] = test.sum()
        fold_prep = clone(prep).fit(values[train])
        x_train, x_test = fold_prep.transform(values[train]), fold_prep.transform(values[test])
        for j, lam in enumerate(lambdas):
            model = _lasso_model(1.0 / (lam * train.sum()), seed).fit(x_train, y[train])
            dev[i, j] = _binomial_deviance(y[test], model.predict_proba(x_test)[:, 1])
    w = sizes / sizes.sum()
    dev_mean = w @ dev
    dev_se = np.sqrt((w @ (dev - dev_mean) ** 2) / (labels.size - 1))

    coefs = np.empty((Cs.size, len(features)))
    intercepts = np.empty(Cs.size)
    for j, C in enumerate(Cs):
        model = _lasso_model(C, seed).fit(scaled, y)
        coefs[j], intercepts[j] = model.coef_.ravel(), model.intercept_[0]
    n_nonzero = (coefs != 0).sum(axis=1)

    best = int(np.flatnonzero(dev_mean <= np.min(dev_mean))[0])  # most penalised among ties
    one_se = int(np.flatnonzero(dev_mean <= dev_mean[best] + dev_se[best])[0])  # most penalised within 1 SE
    chosen = best if rule == "min" else one_se
    if n_nonzero[chosen] == 0:
        later = np.flatnonzero(n_nonzero[chosen:] > 0)
        if later.size == 0:
            raise SelectionError(f"LASSO selected no feature at any of the {Cs.size} penalties "
                                 f"(lambda {lambdas[-1]:.3g} to {lambdas[0]:.3g}) from {len(features)} features")
        moved = chosen + int(later[0])
        warnings.warn(f"LASSO: the penalty chosen by rule {rule!r} (lambda = {lambdas[chosen]:.4g}) selects no "
                      f"feature; moved to lambda = {lambdas[moved]:.4g}, the largest penalty that selects one",
                      UserWarning, stacklevel=2)
        chosen = moved

    cv = pd.DataFrame({"C": Cs, "lambda": lambdas, "log_lambda": np.log(lambdas), "deviance_mean": dev_mean,
                       "deviance_se": dev_se, "n_nonzero": n_nonzero.astype(int),
                       "chosen": np.arange(Cs.size) == chosen, "lambda_min": np.arange(Cs.size) == best,
                       "lambda_1se": np.arange(Cs.size) == one_se}, columns=CV_COLUMNS)
    ever = np.flatnonzero((coefs != 0).any(axis=0))
    path = pd.DataFrame({"C": np.repeat(Cs, ever.size), "lambda": np.repeat(lambdas, ever.size),
                         "log_lambda": np.repeat(np.log(lambdas), ever.size),
                         "feature": np.tile(np.asarray(features, dtype=object)[ever], Cs.size),
                         "coefficient": coefs[:, ever].ravel()}, columns=PATH_COLUMNS)
    final = coefs[chosen]
    nz = np.flatnonzero(final)
    order = nz[np.argsort(-np.abs(final[nz]), kind="stable")]
    selected = pd.DataFrame({"feature": [features[j] for j in order], "coefficient": final[order]},
                            columns=["feature", "coefficient"])
    return LassoResult(selected, tuple(features[j] for j in nz), path, cv, float(Cs[chosen]),
                       float(lambdas[chosen]), rule, float(intercepts[chosen]))


# --------------------------------------------------------------------------------------------
# The three steps


def select_features(X: pd.DataFrame, y, folds, *, reader2: pd.DataFrame | None = None, icc_threshold: float = 0.90,
                    alpha: float = 0.05, lasso_rule: str = "min", n_lambdas: int = 50,
                    seed: int = 0) -> SelectionResult:
    """The paper's radiomics feature selection: ICC, univariate tests, LASSO.

    Parameters
    ----------
    X : DataFrame
        Reader 1's features of the development patients, indexed by patient id.
    y : array-like of 0/1
        Outcome per row of ``X``.
    folds : array-like of int
        Fold label per row (the split file's inner folds), used by the LASSO's CV.
    reader2 : DataFrame, optional, keyword-only
        Reader 2's features (same columns), indexed by patient id. Only its patients that are
        in ``X`` are used, so validation patients in it are ignored. Without it, or without
        any of X's patients in it, the ICC step is skipped and the skip is recorded in
        ``notes`` and ``counts``.
    icc_threshold, alpha : float, keyword-only
        ICC > 0.90 and p < 0.05, as the paper.
    lasso_rule : {"min", "1se"}, keyword-only
    n_lambdas : int, keyword-only
    seed : int, keyword-only

    Returns
    -------
    SelectionResult

    Raises
    ------
    SelectionError
        A step leaves no feature (the message names the step and the counts so far).

    Notes
    -----
    :func:`icc_filter` on the patients of ``X`` read twice, then :func:`univariate_filter` on
    all rows of ``X`` for the features kept, then :func:`lasso_select` on those that pass.

    References
    ----------
    Zhao et al. 2024 (seed paper), "Feature selection". Koo TK, Li MY. J Chiropr Med
    2016;15:155-163. Tibshirani R. J R Stat Soc B 1996;58:267-288.
    """
    X = _feature_frame(X, "X")
    y = outcome_array(y, X, purpose="selection")
    folds = _fold_array(folds, y)
    icc_step = f"ICC > {icc_threshold:.2f}"
    uni_step = f"t test / Mann-Whitney p < {alpha:g}"
    counts = [("extracted", X.shape[1], "")]
    notes = []

    def check(step: str, n_left: int) -> None:
        if n_left == 0:
            chain = ", ".join(f"{s}: {c}" for s, c, _ in counts)
            raise SelectionError(f"feature selection: step {step!r} left no feature ({chain})")

    icc_result = None
    current = X
    shared = None if reader2 is None else X.index[X.index.isin(reader2.index)]
    if shared is None or len(shared) == 0:
        note = ("ICC step skipped: no second reader's features given" if reader2 is None else
                "ICC step skipped: none of the patients' features were extracted from a second reader's mask")
        notes.append(note)
        counts.append((icc_step, X.shape[1], note))
    else:
        icc_result = icc_filter(X.loc[shared], reader2, threshold=icc_threshold)
        counts.append((icc_step, len(icc_result.kept), ""))
        check(icc_step, len(icc_result.kept))
        current = X.loc[:, list(icc_result.kept)]
    uni = univariate_filter(current, y, alpha=alpha)
    counts.append((uni_step, len(uni.kept), ""))
    check(uni_step, len(uni.kept))
    try:
        lasso = lasso_select(current.loc[:, list(uni.kept)], y, folds, n_lambdas=n_lambdas, rule=lasso_rule,
                             seed=seed)
    except SelectionError as exc:
        chain = ", ".join(f"{s}: {c}" for s, c, _ in counts)
        raise SelectionError(f"feature selection: step 'LASSO' left no feature ({chain}): {exc}") from None
    counts.append(("LASSO", len(lasso.features), ""))
    return SelectionResult(icc_result, uni, lasso, pd.DataFrame(counts, columns=COUNT_COLUMNS), lasso.features,
                           tuple(notes))


# --------------------------------------------------------------------------------------------
# Figure (Supplementary S4)


def plot_lasso(result: LassoResult, *, axes=None):
    """Draw the LASSO coefficient paths and the cross-validated deviance (Supplementary S4).

    Parameters
    ----------
    result : LassoResult
    axes : sequence of two matplotlib Axes, optional, keyword-only
        Left: coefficient paths; right: CV deviance. New ones in a 1 x 2 figure when None.

    Returns
    -------
    The two Axes.

    Notes
    -----
    As R ``plot(glmnet_fit, xvar = "lambda")`` and ``plot(cv.glmnet_fit)``: x is log(lambda);
    the right panel shows the mean CV deviance with +/- 1 SE bars. A dashed line marks the
    chosen lambda on both panels. Draws only; saving is the caller's job.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    if len(axes) != 2:
        raise ValueError(f"plot_lasso needs two axes, got {len(axes)}")
    left, right = axes[0], axes[1]
    chosen = float(np.log(result.chosen_lambda))
    for feature, part in result.path.groupby("feature", sort=False):
        left.plot(part["log_lambda"], part["coefficient"], linewidth=1)
    left.axhline(0.0, color="0.6", linewidth=0.6)
    left.axvline(chosen, color="k", linestyle="--", linewidth=1)
    left.set_xlabel("log(λ)")
    left.set_ylabel("Coefficient (z-scored features)")
    left.set_title("LASSO coefficient paths")
    cv = result.cv
    right.errorbar(cv["log_lambda"], cv["deviance_mean"], yerr=cv["deviance_se"], fmt="o", color="tab:red",
                   ecolor="0.6", markersize=3, capsize=2)
    right.axvline(chosen, color="k", linestyle="--", linewidth=1)
    right.set_xlabel("log(λ)")
    right.set_ylabel("Binomial deviance (CV)")
    right.set_title(f"{cv.shape[0]} penalties, λ chosen by rule {result.rule!r}")
    return axes
