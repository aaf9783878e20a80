"""Clinical tables: Table 1 (patient characteristics by outcome within each cohort, each with
the test that methods section E chooses) and the univariate and multivariate logistic
regressions of Table 3 that select the clinical-radiological (CR) model's factors."""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from .discrimination import UndefinedStatisticWarning
from .errors import InputError
from .logistic import fit_logistic

TEST_COLUMNS = ["variable", "scope", "test", "statistic", "p_value", "df", "n", "n_missing", "normality_p"]
SUMMARY_COLUMNS = ["variable", "level", "cohort", "group", "n", "percent", "mean", "sd", "median", "q1", "q3"]
LOGISTIC_COLUMNS = ["variable", "level", "reference", "odds_ratio", "ci_low", "ci_high", "p_value"]
FIT_COLUMNS = ["model", "n", "n_events", "n_missing", "status"]
SELECTION_COLUMNS = ["variable", "univariate_p", "entered", "multivariate_p", "selected"]

BETWEEN = "between_cohorts"
ALL = "all"
NOT_TESTABLE = "not testable"
CHI2_YATES = "chi-squared (Yates)"
CHI2 = "chi-squared"
FISHER = "Fisher exact"
CHI2_NO_FISHER = "chi-squared (expected < 5; r x c Fisher unavailable)"
MEAN_SD = "mean ± SD"
MEDIAN_IQR = "median (Q1, Q3)"
ID_COLUMN = "patient_id"

#: Partial tables the exact 2 x c Fisher enumeration may hold before giving up (memory bound).
FISHER_MAX_TABLES = 2_000_000
#: Expected counts below this send a categorical comparison to Fisher's exact test.
MIN_EXPECTED = 5.0
#: Shapiro-Wilk p above this in every group sends a continuous comparison to the t test.
NORMALITY_ALPHA = 0.05


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Table1Result:
    """Table 1: characteristics by outcome group within each cohort, with tests.

    Attributes
    ----------
    table : DataFrame
        The display table: ``variable``, ``level``, then one text column per cohort x outcome
        group, named ``"<cohort>: <outcome>=<value>"`` (``"<outcome>=<value>"`` without a cohort
        column). The first row (variable ``n``) holds the group sizes; categorical levels show
        ``"n (%)"`` (percent of the group's non-missing values); a continuous variable shows
        ``mean ± SD`` where its comparison used the t test and ``median (Q1, Q3)`` where it
        used Mann-Whitney (one row per format used in any scope, so both rows when cohorts
        differ); a ``missing`` row follows a variable with missing values.
    tests : DataFrame
        ``variable``, ``scope``, ``test``, ``statistic``, ``p_value`` (contract section 6), and
        ``df`` (chi-squared or t degrees of freedom; numerator df of an F test), ``n``
        (patients compared), ``n_missing`` (patients of the scope left out as missing),
        ``normality_p`` (smallest Shapiro-Wilk p over the groups; continuous only). ``scope``
        is a cohort name (outcome groups compared within it; ``all`` without a cohort column)
        or ``between_cohorts`` (cohorts compared over all patients, when there are 2+).
        ``statistic`` is X-squared, t, W (R's ``wilcox.test``: the Mann-Whitney U of the first
        group), F or the Kruskal-Wallis H; NaN for Fisher's exact test and untestable rows.
    summary : DataFrame
        The display table's numbers at full precision, long form: ``variable``, ``level``,
        ``cohort``, ``group`` (outcome value), ``n``, ``percent``, ``mean``, ``sd``,
        ``median``, ``q1``, ``q3`` (quartiles as R ``quantile(type = 7)``).
    """

    table: pd.DataFrame
    tests: pd.DataFrame
    summary: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.tests


@dataclass(frozen=True)
class GroupComparison:
    """One test comparing groups of patients on one variable.

    Attributes
    ----------
    test : str
        Name of the test chosen (``"not testable"`` when no comparison is possible).
    statistic, p_value, df : float
        NaN where the test has none (Fisher) or nothing was tested.
    normality_p : float
        Smallest Shapiro-Wilk p over the groups (continuous comparisons; NaN when a group has
        fewer than 3 values or no spread).
    """

    test: str
    statistic: float
    p_value: float
    df: float = float("nan")
    normality_p: float = float("nan")


@dataclass(frozen=True)
class LogisticResult:
    """Logistic regression(s) of the outcome: one row per model term.

    Attributes
    ----------
    table : DataFrame
        ``variable``, ``level``, ``reference``, ``odds_ratio``, ``ci_low``, ``ci_high``
        (Wald 95%), ``p_value`` (Wald z). A categorical variable has one row per non-reference
        level; a continuous one a single row (odds ratio per unit) with empty ``level`` and
        ``reference``. The intercept is not listed. NaN where the fit is undefined.
    fits : DataFrame
        One row per fitted model (``model``: the variable for univariate fits,
        ``multivariate`` otherwise): ``n`` (complete cases used), ``n_events``, ``n_missing``
        (patients left out for missing values), ``status`` (``ok``, ``separation``,
        ``singular design``, ``single outcome class``, ``constant variable``).
    variable_p : dict
        Variable -> Wald p of all its terms jointly (chi-squared with as many df as terms;
        for a binary or continuous variable the p of its single row).
    """

    table: pd.DataFrame
    fits: pd.DataFrame
    variable_p: dict

    def to_frame(self) -> pd.DataFrame:
        return self.table


@dataclass(frozen=True)
class CRSelection:
    """The paper's two-step selection of the clinical-radiological model's factors.

    Attributes
    ----------
    univariate, multivariate : LogisticResult
        Every candidate alone; the candidates with univariate p < alpha together (empty
        when none entered).
    selected : tuple of str
        Variables with multivariate p < alpha, in the order given.
    variables : DataFrame
        ``variable``, ``univariate_p``, ``entered``, ``multivariate_p``, ``selected`` (joint Wald
        p of each variable's terms).
    alpha : float
    """

    univariate: LogisticResult
    multivariate: LogisticResult
    selected: tuple
    variables: pd.DataFrame
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        return self.variables


# --------------------------------------------------------------------------------------------
# Input checks and column parsing


def _missing(series: pd.Series) -> np.ndarray:
    """True for NaN/None and for empty or blank strings."""
    s = pd.Series(series)
    miss = s.isna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype("string").str.strip().fillna("")
        miss = miss | (text == "").to_numpy()
    return np.asarray(miss, dtype=bool)


def _patients(frame: pd.DataFrame, where: np.ndarray, limit: int = 5) -> str:
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else pd.Series(frame.index, index=frame.index)
    chosen = [str(v) for v in ids.to_numpy()[where][:limit]]
    more = int(where.sum()) - len(chosen)
    return ", ".join(chosen) + (f" and {more} more" if more > 0 else "")


def _require_columns(frame: pd.DataFrame, names, role: str) -> None:
    for name in names:
        if name not in frame.columns:
            raise InputError(f"{role} column {name!r} is not in the table; columns are: "
                             f"{', '.join(map(str, frame.columns))}")


def _outcome_values(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The outcome column as int 0/1; raises InputError naming patients with other values."""
    _require_columns(frame, [outcome], "outcome")
    col = frame[outcome]
    miss = _missing(col)
    if miss.any():
        raise InputError(f"outcome column {outcome!r} is empty for patient(s) {_patients(frame, miss)}; "
                         "fill in 0 or 1 or leave those patients out")
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy().astype(int)
    values = np.array(_to_numbers(col), dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        shown = sorted({str(v) for v in col.to_numpy()[bad]})[:5]
        raise InputError(f"outcome column {outcome!r} must be 0 or 1; found {', '.join(map(repr, shown))} "
                         f"(patient(s) {_patients(frame, bad)}); recode it as 0/1 (1 = event)")
    return values.astype(int)


def _cohort_values(frame: pd.DataFrame, cohort: str | None) -> np.ndarray:
    if cohort is None:
        return np.full(len(frame), ALL, dtype=object)
    _require_columns(frame, [cohort], "cohort")
    miss = _missing(frame[cohort])
    if miss.any():
        raise InputError(f"cohort column {cohort!r} is empty for patient(s) {_patients(frame, miss)}; "
                         "name each patient's cohort")
    return frame[cohort].astype("string").str.strip().to_numpy(dtype=object)


def _candidate_variables(frame: pd.DataFrame, variables, *, exclude) -> list[str]:
    if variables is None:
        return [c for c in frame.columns if c not in exclude and c != ID_COLUMN]
    variables = [variables] if isinstance(variables, str) else list(variables)
    _require_columns(frame, variables, "variable")
    for v in variables:
        if v in exclude:
            raise InputError(f"column {v!r} is the outcome or cohort column and cannot also be a variable")
    if len(set(variables)) != len(variables):
        raise InputError(f"variables are listed more than once: {variables}")
    return variables


def _to_numbers(series: pd.Series) -> pd.Series:
    """Numbers of a column, NaN where a value does not read as one (text is stripped first)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return pd.to_numeric(series, errors="coerce")
    return pd.to_numeric(series.astype("string").str.strip(), errors="coerce")


def _is_text(series: pd.Series, miss: np.ndarray) -> bool:
    """A column holds text when some non-missing value does not read as a number."""
    s = series[~miss]
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if pd.api.types.is_numeric_dtype(s.dtype):
        return False
    return bool(_to_numbers(s).isna().any())


def _level_text(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _level_key(level: str):
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)


@dataclass(frozen=True)
class _Column:
    """One variable parsed once: levels (categorical) or numbers (continuous)."""

    name: str
    categorical: bool
    missing: np.ndarray
    levels: np.ndarray | None  # object array of str, "" where missing
    numbers: np.ndarray | None  # float array, NaN where missing
    level_order: tuple


def _parse(frame: pd.DataFrame, name: str, forced_categorical: bool) -> _Column:
    col = frame[name]
    miss = _missing(col)
    if forced_categorical or _is_text(col, miss):
        text = np.array(["" if m else _level_text(v) for v, m in zip(col.to_numpy(), miss)], dtype=object)
        order = tuple(sorted(set(text[~miss]), key=_level_key))
        return _Column(name, True, miss, text, None, order)
    numbers = np.array(_to_numbers(col), dtype=float)  # a writable copy
    numbers[miss] = np.nan
    return _Column(name, False, miss, None, numbers, ())


def _check_categorical(frame: pd.DataFrame, categorical) -> set:
    categorical = [categorical] if isinstance(categorical, str) else list(categorical)
    _require_columns(frame, categorical, "categorical")
    return set(categorical)


# --------------------------------------------------------------------------------------------
# Tests


def fisher_exact_2xc(table) -> float:
    """Two-sided Fisher exact p for a 2 x c (or r x 2) contingency table by enumeration.

    Parameters
    ----------
    table : array of non-negative int, shape (2, c) or (r, 2).

    Returns
    -------
    float
        Sum of the probabilities of all tables with the observed margins that are no more
        probable than the observed one. NaN when more than ``FISHER_MAX_TABLES`` partial
        tables would have to be held (the caller then falls back to chi-squared).

    Notes
    -----
    With margins fixed, a 2 x c table is determined by its first row x, and
    P(x) = prod_j C(c_j, x_j) / C(N, r_1) (multivariate hypergeometric). Tables are built
    column by column, keeping only partial rows that can still sum to r_1. As R, tables with
    P <= P_obs (1 + 1e-7) count as at least as extreme. Matches R ``fisher.test(table)$p.value``
    (which uses the network algorithm for larger tables, to the same value) and
    ``scipy.stats.fisher_exact`` for 2 x 2 tables.

    References
    ----------
    Fisher RA. J R Stat Soc 1922;85:87-94. Mehta CR, Patel NR. JASA 1983;78:427-434.
    """
    t = np.asarray(table, dtype=np.int64)
    if t.ndim != 2 or 2 not in t.shape or (t < 0).any():
        raise InputError(f"fisher_exact_2xc needs a 2 x c table of non-negative counts, got shape {t.shape}")
    if t.shape[0] != 2:
        t = t.T
    row = int(t[0].sum())
    cols = t.sum(axis=0)
    n = int(cols.sum())

    def log_choose(a, b):
        return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)

    observed = float(np.sum(log_choose(cols, t[0])))
    sums = np.zeros(1, dtype=np.int64)
    logp = np.zeros(1)
    remaining = int(cols.sum())
    for c in cols:
        c = int(c)
        remaining -= c
        if sums.size * (c + 1) > FISHER_MAX_TABLES:
            return float("nan")
        k = np.arange(c + 1)
        new_sums = (sums[:, None] + k[None, :]).ravel()
        new_logp = (logp[:, None] + log_choose(c, k)[None, :]).ravel()
        keep = (new_sums <= row) & (new_sums + remaining >= row)
        sums, logp = new_sums[keep], new_logp[keep]
    total = float(log_choose(n, row))
    probs = np.exp(logp - total)
    p_obs = math.exp(observed - total)
    return float(min(1.0, probs[probs <= p_obs * (1 + 1e-7)].sum()))


def compare_categorical(table) -> GroupComparison:
    """Test of association in a contingency table by the rule of methods section E.

    Parameters
    ----------
    table : array of counts, shape (levels, groups); empty rows and columns are dropped.

    Returns
    -------
    GroupComparison
        ``not testable`` when fewer than two levels or two groups have patients.

    Notes
    -----
    Expected counts E_ij = r_i c_j / N. When every E_ij >= 5: Pearson's X^2 =
    sum (|O - E| - 0.5)^2 / E for 2 x 2 tables (Yates; the 0.5 capped at |O - E|) and
    sum (O - E)^2 / E otherwise, on (r - 1)(c - 1) df (R ``chisq.test(table)``, whose default
    ``correct = TRUE`` applies only to 2 x 2 tables). When some E_ij < 5: Fisher's exact test
    (R ``fisher.test``), computed exactly for 2 x c and r x 2 tables (:func:`fisher_exact_2xc`).
    For larger tables with small expected counts no exact test is computed and X^2 is reported
    under the name ``chi-squared (expected < 5; r x c Fisher unavailable)``.

    References
    ----------
    Yates F. J R Stat Soc Suppl 1934;1:217-235. Fisher RA. J R Stat Soc 1922;85:87-94.
    """
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0] if t.size else t.reshape(0, 0)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        return GroupComparison(NOT_TESTABLE, float("nan"), float("nan"))
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    chi = stats.chi2_contingency(t, correction=True)
    df = float((t.shape[0] - 1) * (t.shape[1] - 1))
    if (expected >= MIN_EXPECTED).all():
        name = CHI2_YATES if t.shape == (2, 2) else CHI2
        return GroupComparison(name, float(chi.statistic), float(chi.pvalue), df)
    if 2 in t.shape:
        p = fisher_exact_2xc(t.astype(np.int64))
        if np.isfinite(p):
            return GroupComparison(FISHER, float("nan"), p)
    return GroupComparison(CHI2_NO_FISHER, float(chi.statistic), float(chi.pvalue), df)


def mann_whitney(x, y) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test with R ``wilcox.test(x, y)`` defaults.

    Returns
    -------
    (W, p) : W = U of ``x`` = sum of the ranks of x - n_x (n_x + 1) / 2.

    Notes
    -----
    Exact null distribution when both samples have fewer than 50 values and there are no
    ties; otherwise the normal approximation with tie-corrected variance and continuity
    correction (R's rule; scipy's ``method="auto"`` switches to exact only up to 8 values).

    References
    ----------
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60. Hollander M, Wolfe DA. Nonparametric
    Statistical Methods, 1973 (R's reference).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    both = np.concatenate([x, y])
    exact = x.size < 50 and y.size < 50 and np.unique(both).size == both.size
    res = stats.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided",
                             method="exact" if exact else "asymptotic")
    return float(res.statistic), float(res.pvalue)


def _normality_p(values: np.ndarray) -> float:
    if values.size < 3 or np.ptp(values) == 0:
        return float("nan")
    return float(stats.shapiro(values).pvalue)


def _welch_anova(groups) -> tuple[float, float]:
    """Welch's F for k means with unequal variances (R ``oneway.test(var.equal = FALSE)``).

    F = [sum w_i (m_i - M)^2 / (k - 1)] / [1 + 2 (k - 2) L / (k^2 - 1)], w_i = n_i / s_i^2,
    M = sum w_i m_i / sum w_i, L = sum (1 - w_i / sum w)^2 / (n_i - 1); F ~ F(k - 1, (k^2 - 1) / (3 L)).
    """
    n = np.array([g.size for g in groups], dtype=float)
    means = np.array([g.mean() for g in groups])
    w = n / np.array([g.var(ddof=1) for g in groups])
    k = len(groups)
    grand = np.sum(w * means) / w.sum()
    lam = np.sum((1 - w / w.sum()) ** 2 / (n - 1))
    f = np.sum(w * (means - grand) ** 2) / (k - 1) / (1 + 2 * (k - 2) * lam / (k**2 - 1))
    return float(f), float(stats.f.sf(f, k - 1, (k**2 - 1) / (3 * lam)))


def compare_continuous(groups, *, equal_var: bool = False) -> GroupComparison:
    """Compare a continuous variable between groups by the rule of methods section E.

    Parameters
    ----------
    groups : sequence of 1-D arrays (NaN already removed); empty groups are ignored.
    equal_var : bool, keyword-only
        False (default): Welch's t test (R ``t.test`` default); True: Student's pooled t test
        (R ``t.test(var.equal = TRUE)``, SPSS's "equal variances assumed" row).

    Returns
    -------
    GroupComparison
        ``not testable`` when fewer than two groups have values or all values are equal.

    Notes
    -----
    Shapiro-Wilk (R ``shapiro.test``) in each group; a group with fewer than 3 values or no
    spread counts as not normal. Two groups: every p > 0.05 gives the two-sample t test
    (R ``t.test(x, y)``), otherwise Mann-Whitney U (:func:`mann_whitney`; R ``wilcox.test``).
    More groups (cohorts compared): one-way ANOVA (R ``oneway.test``, Welch's unless
    ``equal_var``) or Kruskal-Wallis (R ``kruskal.test``) by the same rule.

    References
    ----------
    Shapiro SS, Wilk MB. Biometrika 1965;52:591-611. Welch BL. Biometrika 1947;34:28-35.
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60. Kruskal WH, Wallis WA. JASA
    1952;47:583-621.
    """
    groups = [np.asarray(g, dtype=float) for g in groups]
    groups = [g for g in groups if g.size > 0]
    if len(groups) < 2 or np.ptp(np.concatenate(groups)) == 0:
        return GroupComparison(NOT_TESTABLE, float("nan"), float("nan"))
    normality = [_normality_p(g) for g in groups]
    normal = all(np.isfinite(p) and p > NORMALITY_ALPHA for p in normality)
    lowest = float("nan") if any(np.isnan(normality)) else float(min(normality))
    kind = "Student" if equal_var else "Welch"
    if len(groups) == 2:
        if normal:
            res = stats.ttest_ind(groups[0], groups[1], equal_var=equal_var)
            return GroupComparison(f"{kind} t test", float(res.statistic), float(res.pvalue), float(res.df), lowest)
        w, p = mann_whitney(groups[0], groups[1])
        return GroupComparison("Mann-Whitney U", w, p, float("nan"), lowest)
    k = float(len(groups) - 1)
    if normal and equal_var:
        res = stats.f_oneway(*groups)
        return GroupComparison("one-way ANOVA", float(res.statistic), float(res.pvalue), k, lowest)
    if normal:
        f, p = _welch_anova(groups)
        return GroupComparison("Welch one-way ANOVA", f, p, k, lowest)
    res = stats.kruskal(*groups)
    return GroupComparison("Kruskal-Wallis", float(res.statistic), float(res.pvalue), k, lowest)


# --------------------------------------------------------------------------------------------
# Table 1


def _in_order(values: np.ndarray) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values.tolist()))


def _fmt(x: float, decimals: int) -> str:
    return "NA" if not np.isfinite(x) else f"{x:.{decimals}f}"


def table1(frame: pd.DataFrame, *, outcome: str, cohort: str | None = None, categorical=(), variables=None,
           equal_var: bool = False, decimals: int = 1) -> Table1Result:
    """Table 1: each variable by outcome group within each cohort, with the test of methods E.

    Parameters
    ----------
    frame : DataFrame
        One row per patient (e.g. ``clinical.csv`` read with ``dtype=str`` or plainly).
    outcome : str, keyword-only
        Column of 0/1 outcomes (text "0"/"1" is accepted); groups are compared within cohorts.
    cohort : str, optional
        Column naming each patient's cohort; without it every patient is in scope ``all``.
        Cohorts keep their order of first appearance.
    categorical : sequence of str
        Columns to treat as categorical although they hold numbers. Columns holding text
        (any non-missing value that does not read as a number) are categorical anyway.
    variables : sequence of str, optional
        Columns to tabulate, in this order; default every column except the outcome, the
        cohort and ``patient_id``.
    equal_var : bool
        t test variant (see :func:`compare_continuous`); default Welch.
    decimals : int
        Decimals of means, SDs, quartiles and percentages in the display table only.

    Returns
    -------
    Table1Result

    Raises
    ------
    InputError
        A column named that is not in ``frame``; an outcome that is missing or not 0/1; a
        patient without a cohort.

    Notes
    -----
    Missing values (NaN, empty or blank text) are left out per variable and counted per group
    (``missing`` rows) and per scope (``n_missing``). Within a cohort the outcome groups are
    compared (categorical: :func:`compare_categorical`; continuous: :func:`compare_continuous`);
    with two or more cohorts, ``between_cohorts`` compares the cohorts over all patients. A
    variable constant within a scope, or with values in only one group, is ``not testable``
    (NaN p). Matches, test by test, R ``chisq.test``, ``fisher.test``, ``shapiro.test``,
    ``t.test``, ``wilcox.test`` (and ``oneway.test``, ``kruskal.test`` for 3+ cohorts).

    References
    ----------
    Yates F. J R Stat Soc Suppl 1934;1:217-235. Fisher RA. J R Stat Soc 1922;85:87-94.
    Shapiro SS, Wilk MB. Biometrika 1965;52:591-611. Welch BL. Biometrika 1947;34:28-35.
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"table1 needs a pandas DataFrame, got {type(frame).__name__}")
    y = _outcome_values(frame, outcome)
    cohorts = _cohort_values(frame, cohort)
    forced = _check_categorical(frame, categorical)
    names = _candidate_variables(frame, variables, exclude={outcome, cohort})
    cohort_names = _in_order(cohorts)
    groups = (0, 1)
    label = (lambda c, g: f"{outcome}={g}") if cohort is None else (lambda c, g: f"{c}: {outcome}={g}")
    cells = [(c, g, label(c, g), (cohorts == c) & (y == g)) for c in cohort_names for g in groups]

    display = [{"variable": "n", "level": "", **{lab: str(int(m.sum())) for _, _, lab, m in cells}}]
    # (scope, its patients, the groups compared within it)
    scopes = [(c, cohorts == c, [(cohorts == c) & (y == g) for g in groups]) for c in cohort_names]
    if len(cohort_names) >= 2:
        if BETWEEN in cohort_names:
            raise InputError(f"cohort column {cohort!r} has a cohort named {BETWEEN!r}, the scope name of the "
                             "comparison between cohorts; rename that cohort")
        scopes.append((BETWEEN, np.ones(len(frame), dtype=bool), [cohorts == c for c in cohort_names]))
    tests, summary = [], []
    for name in names:
        col = _parse(frame, name, name in forced)
        formats = {}
        for scope, inside, parts in scopes:
            present = ~col.missing
            if col.categorical:
                counts = np.array([[np.sum(part & present & (col.levels == lv)) for part in parts]
                                   for lv in col.level_order]).reshape(len(col.level_order), len(parts))
                result = compare_categorical(counts)
            else:
                result = compare_continuous([col.numbers[part & present] for part in parts], equal_var=equal_var)
                if scope != BETWEEN and result.test != NOT_TESTABLE:
                    formats[scope] = MEAN_SD if result.test.endswith("t test") else MEDIAN_IQR
            tests.append({"variable": name, "scope": scope, "test": result.test, "statistic": result.statistic,
                          "p_value": result.p_value, "df": result.df, "n": int(np.sum(inside & present)),
                          "n_missing": int(np.sum(inside & col.missing)), "normality_p": result.normality_p})
        display.extend(_display_rows(col, cells, formats, decimals, summary))
    table = pd.DataFrame(display, columns=["variable", "level", *[lab for _, _, lab, _ in cells]])
    return Table1Result(table, pd.DataFrame(tests, columns=TEST_COLUMNS),
                        pd.DataFrame(summary, columns=SUMMARY_COLUMNS))


def _display_rows(col: _Column, cells, formats: dict, decimals: int, summary: list) -> list[dict]:
    rows = []
    present = ~col.missing
    if col.categorical:
        for lv in col.level_order:
            row = {"variable": col.name, "level": lv}
            for c, g, lab, m in cells:
                k, total = int(np.sum(m & (col.levels == lv))), int(np.sum(m & present))
                pct = 100.0 * k / total if total else float("nan")
                row[lab] = f"{k} ({_fmt(pct, decimals)}%)" if total else "0"
                summary.append({"variable": col.name, "level": lv, "cohort": c, "group": g, "n": k, "percent": pct})
            rows.append(row)
    else:
        used = [f for f in (MEAN_SD, MEDIAN_IQR) if f in formats.values()] or [MEDIAN_IQR]
        stats_by_cell = {}
        for c, g, lab, m in cells:
            v = col.numbers[m & present]
            if v.size:
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                sd = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
                stats_by_cell[lab] = (float(np.mean(v)), sd, float(med), float(q1), float(q3))
            else:
                stats_by_cell[lab] = (float("nan"),) * 5
            mean, sd, med, q1, q3 = stats_by_cell[lab]
            summary.append({"variable": col.name, "level": "", "cohort": c, "group": g, "n": int(v.size),
                            "mean": mean, "sd": sd, "median": med, "q1": q1, "q3": q3})
        for f in used:
            row = {"variable": col.name, "level": f}
            for _, _, lab, _ in cells:
                mean, sd, med, q1, q3 = stats_by_cell[lab]
                if f == MEAN_SD:
                    row[lab] = f"{_fmt(mean, decimals)} ± {_fmt(sd, decimals)}"
                else:
                    row[lab] = f"{_fmt(med, decimals)} ({_fmt(q1, decimals)}, {_fmt(q3, decimals)})"
            rows.append(row)
    if col.missing.any():
        rows.append({"variable": col.name, "level": "missing",
                     **{lab: str(int(np.sum(m & col.missing))) for _, _, lab, m in cells}})
    return rows


# --------------------------------------------------------------------------------------------
# Logistic regression (Table 3)

_Z95 = float(special.ndtri(0.975))


def _development_rows(frame: pd.DataFrame, cohort: str | None, dev_cohort: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"logistic regression needs a pandas DataFrame, got {type(frame).__name__}")
    if cohort is None:
        return frame
    cohorts = _cohort_values(frame, cohort)
    inside = cohorts == str(dev_cohort)
    if not inside.any():
        raise InputError(f"development cohort {dev_cohort!r} has no patients in column {cohort!r}; cohorts are: "
                         f"{', '.join(map(str, _in_order(cohorts)))}; choose one with dev_cohort (--dev-cohort)")
    return frame.loc[inside]


def _check_reference(reference, columns: dict) -> dict:
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise InputError(f"reference must map variable -> reference level, got {type(reference).__name__}")
    out = {}
    for name, level in reference.items():
        if name not in columns:
            raise InputError(f"reference level given for {name!r}, which is not one of the variables: "
                             f"{', '.join(columns)}")
        col = columns[name]
        if not col.categorical:
            raise InputError(f"reference level given for {name!r}, which is continuous; list it in "
                             "categorical= to dummy-code it")
        text = _level_text(level)
        if text not in col.level_order:
            raise InputError(f"reference level {level!r} of variable {name!r} does not occur in the development "
                             f"cohort; its levels are: {', '.join(col.level_order)}")
        out[name] = text
    return out


@dataclass(frozen=True)
class _Fit:
    terms: list  # (variable, level, reference)
    beta: np.ndarray  # per term (no intercept)
    cov: np.ndarray
    status: str
    n: int
    n_events: int
    n_missing: int


def _fit_model(label: str, cols: list, y: np.ndarray, reference: dict) -> _Fit:
    complete = np.ones(y.size, dtype=bool)
    for col in cols:
        complete &= ~col.missing
    yc = y[complete]
    blocks, terms, status = [np.ones((int(complete.sum()), 1))], [], "ok"
    for col in cols:
        if col.categorical:
            values = col.levels[complete]
            present = sorted(set(values.tolist()), key=_level_key)
            ref = reference.get(col.name, present[0] if present else "")
            if len(present) < 2:
                status = "constant variable"
                terms.append((col.name, "", ref))
                continue
            if ref not in present:
                raise InputError(f"reference level {ref!r} of variable {col.name!r} has no patient with complete "
                                 f"data in model {label!r}; choose one of: {', '.join(present)}")
            for lv in present:
                if lv != ref:
                    terms.append((col.name, lv, ref))
                    blocks.append((values == lv).astype(float)[:, None])
        else:
            values = col.numbers[complete]
            terms.append((col.name, "", ""))
            if values.size == 0 or np.ptp(values) == 0:
                status = "constant variable"
                continue
            blocks.append(values[:, None])
    counts = (int(yc.size), int(yc.sum()), int((~complete).sum()))
    if status == "ok":
        status, beta, cov = _maximise(yc, np.hstack(blocks))
        if status == "ok":
            return _Fit(terms, beta[1:], cov[1:, 1:], status, *counts)
    warnings.warn(f"logistic model {label!r}: {status} ({counts[0]} patients, {counts[1]} events); "
                  "its odds ratios, CIs and p values are NaN", UndefinedStatisticWarning, stacklevel=3)
    k = len(terms)
    return _Fit(terms, np.full(k, np.nan), np.full((k, k), np.nan), status, *counts)


def _maximise(y: np.ndarray, x: np.ndarray) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """(status, beta, covariance) of a logistic fit; status names why it is undefined."""
    if y.sum() == 0 or y.sum() == y.size:
        return "single outcome class", None, None
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return "singular design", None, None
    beta = fit_logistic(y, x)
    if np.isnan(beta).any():
        return "separation", None, None
    p = special.expit(x @ beta)
    try:
        return "ok", beta, np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))
    except np.linalg.LinAlgError:
        return "singular design", None, None


def _term_rows(fit: _Fit) -> list[dict]:
    se = np.sqrt(np.diag(fit.cov))
    rows = []
    for (name, level, ref), b, s in zip(fit.terms, fit.beta, se):
        rows.append({"variable": name, "level": level, "reference": ref, "odds_ratio": math.exp(b),
                     "ci_low": math.exp(b - _Z95 * s), "ci_high": math.exp(b + _Z95 * s),
                     "p_value": float(2 * special.ndtr(-abs(b / s))) if np.isfinite(b) else float("nan")})
    return rows


def _variable_p(fit: _Fit) -> dict:
    out = {}
    for name in dict.fromkeys(t[0] for t in fit.terms):
        idx = [i for i, t in enumerate(fit.terms) if t[0] == name]
        b, v = fit.beta[idx], fit.cov[np.ix_(idx, idx)]
        if not np.isfinite(b).all() or not np.isfinite(v).all():
            out[name] = float("nan")
            continue
        wald = float(b @ np.linalg.solve(v, b))
        out[name] = float(stats.chi2.sf(wald, len(idx)))
    return out


def _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort):
    dev = _development_rows(frame, cohort, dev_cohort)
    y = _outcome_values(dev, outcome)
    forced = _check_categorical(frame, categorical)
    names = _candidate_variables(frame, variables, exclude={outcome, cohort})
    columns = {name: _parse(dev, name, name in forced) for name in names}
    return y, columns, _check_reference(reference, columns)


def _result(fits: list[tuple[str, _Fit]]) -> LogisticResult:
    rows, fit_rows, var_p = [], [], {}
    for label, fit in fits:
        rows.extend(_term_rows(fit))
        fit_rows.append({"model": label, "n": fit.n, "n_events": fit.n_events, "n_missing": fit.n_missing,
                         "status": fit.status})
        var_p.update(_variable_p(fit))
    return LogisticResult(pd.DataFrame(rows, columns=LOGISTIC_COLUMNS), pd.DataFrame(fit_rows, columns=FIT_COLUMNS),
                          var_p)


def univariate_logistic(frame: pd.DataFrame, *, outcome: str, variables=None, categorical=(), reference=None,
                        cohort: str | None = None, dev_cohort: str = "training") -> LogisticResult:
    """One logistic regression of the outcome per variable (Table 3, univariate columns).

    Parameters
    ----------
    frame : DataFrame
        One row per patient.
    outcome : str, keyword-only
        Column of 0/1 outcomes.
    variables : sequence of str, optional
        Candidate variables; default every column except outcome, cohort and ``patient_id``.
    categorical : sequence of str
        Numeric columns to dummy-code (text columns always are).
    reference : mapping, optional
        Variable -> reference level. Default: the first level in sorted order (levels that
        read as numbers sorted by value, then text levels alphabetically).
    cohort : str, optional
        Cohort column. When given, only patients with ``cohort == dev_cohort`` are used;
        without it the caller has already selected the development cohort.
    dev_cohort : str
        Development cohort (default ``training``, as ``--dev-cohort``).

    Returns
    -------
    LogisticResult
        NaN rows, with an ``UndefinedStatisticWarning``, for a model with separation, a
        singular design, a single outcome class or a constant variable.

    Notes
    -----
    logit P(y = 1) = b0 + x'b by maximum likelihood (:func:`analysis.logistic.fit_logistic`,
    Newton-Raphson); Var(b) = (X'WX)^{-1} at the maximum, W = diag(p(1 - p)). Odds ratio
    exp(b), Wald CI exp(b -/+ 1.96 SE), Wald p = 2 Phi(-|b / SE|). Complete cases of each
    model's variables. Matches R ``glm(y ~ x, family = binomial)`` with ``confint.default``
    and ``summary()$coefficients`` (and SPSS's logistic regression table).

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013.
    """
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    return _result([(name, _fit_model(name, [col], y, ref)) for name, col in columns.items()])


def multivariate_logistic(frame: pd.DataFrame, *, outcome: str, variables=None, categorical=(), reference=None,
                          cohort: str | None = None, dev_cohort: str = "training") -> LogisticResult:
    """One logistic regression of the outcome on all ``variables`` together.

    Parameters and returns as :func:`univariate_logistic`; the single model uses the patients
    complete in every variable (``fits.n_missing`` counts the others) and is labelled
    ``multivariate``. With no variables the table is empty.

    Notes
    -----
    Matches R ``glm(y ~ x1 + x2 + ..., family = binomial)`` with Wald CIs (``confint.default``).

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013.
    """
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    if not columns:
        return _result([])
    return _result([("multivariate", _fit_model("multivariate", list(columns.values()), y, ref))])


def select_cr_factors(frame: pd.DataFrame, *, outcome: str, variables=None, alpha: float = 0.05, categorical=(),
                      reference=None, cohort: str | None = None, dev_cohort: str = "training") -> CRSelection:
    """The paper's selection of clinical-radiological factors (Table 3).

    Variables with univariate p < ``alpha`` enter one multivariate model; those with
    multivariate p < ``alpha`` are selected. Other parameters as :func:`univariate_logistic`.

    Returns
    -------
    CRSelection

    Notes
    -----
    A variable's p is the joint Wald test of its terms (chi-squared, df = number of terms; the
    term's own p for binary and continuous variables), as SPSS prints for a categorical
    covariate and R ``car::Anova(fit, type = 3, test = "Wald")`` computes. A NaN p (an
    undefined fit) neither enters nor is selected.

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013,
    ch. 4 (purposeful selection).
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, got {alpha!r}")
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    uni = _result([(name, _fit_model(name, [col], y, ref)) for name, col in columns.items()])
    entered = [name for name in columns if uni.variable_p[name] < alpha]
    if entered:
        multi = _result([("multivariate", _fit_model("multivariate", [columns[n] for n in entered], y, ref))])
    else:
        multi = _result([])
    selected = tuple(name for name in entered if multi.variable_p[name] < alpha)
    rows = [{"variable": name, "univariate_p": uni.variable_p[name], "entered": name in entered,
             "multivariate_p": multi.variable_p.get(name, float("nan")), "selected": name in selected}
            for name in columns]
    return CRSelection(uni, multi, selected, pd.DataFrame(rows, columns=SELECTION_COLUMNS), alpha)


def dichotomise(frame: pd.DataFrame, cut_points: dict) -> pd.DataFrame:
    """Replace raw continuous values by the paper's two levels at each cut point.

    Parameters
    ----------
    frame : DataFrame
    cut_points : mapping column -> cut point c
        Values > c become ``">c"``, values <= c ``"<=c"`` (c printed without a trailing .0, as
        the paper's ">400"); missing values stay missing.

    Returns
    -------
    DataFrame
        A copy with those columns replaced; raises InputError for a column that is absent or
        holds text.
    """
    out = frame.copy()
    for column, cut in cut_points.items():
        if column not in out.columns:
            raise InputError(f"cut point given for column {column!r}, which is not in the table")
        raw = out[column]
        values = pd.to_numeric(raw, errors="coerce")
        text = raw.notna() & values.isna() & (raw.astype(str).str.strip() != "")
        if text.any():
            first = raw[text].iloc[0]
            raise InputError(f"column {column!r} has a cut point but holds text ({first!r}); give raw numbers")
        label = f"{cut:g}"
        out[column] = pd.Series(np.where(values > cut, f">{label}", f"<={label}"), index=out.index).where(
            values.notna())
    return out
