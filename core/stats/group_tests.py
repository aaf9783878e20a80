"""Group tests: the one rule of methods section E for comparing groups of patients.

Categorical: chi-squared (Yates for 2 x 2) or Fisher's exact test when an expected count is
below 5 (exact also for 2 x c tables, as R's ``fisher.test``). Continuous: Shapiro-Wilk in
each group, then the t test (both normal) or Mann-Whitney U (R's ``wilcox.test`` rule for an
exact p); ANOVA or Kruskal-Wallis for three or more groups. :func:`compare_continuous` takes
one variable; :func:`compare_continuous_columns` applies the same rule to every column of two
groups at once (radiomics screening of thousands of features), with identical results.
Used by Table 1 (`analysis/table1.py`) and the radiomics univariate filter
(`modeling/radiomics/selection.py`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from dlr.core.errors import InputError

NOT_TESTABLE = "not testable"
CHI2_YATES = "chi-squared (Yates)"
CHI2 = "chi-squared"
FISHER = "Fisher exact"
CHI2_NO_FISHER = "chi-squared (expected < 5; r x c Fisher unavailable)"
MANN_WHITNEY = "Mann-Whitney U"

#: Partial tables the exact 2 x c Fisher enumeration may hold before giving up (memory bound).
FISHER_MAX_TABLES = 2_000_000
#: Expected counts below this send a categorical comparison to Fisher's exact test.
MIN_EXPECTED = 5.0
#: Shapiro-Wilk p above this in every group sends a continuous comparison to the t test.
NORMALITY_ALPHA = 0.05
#: Mann-Whitney's p is exact when both groups have fewer values than this and there are no ties (R).
EXACT_BELOW = 50


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
    exact = _exact_mann_whitney(x.size, y.size, np.unique(both).size == both.size)
    res = stats.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided",
                             method="exact" if exact else "asymptotic")
    return float(res.statistic), float(res.pvalue)


def _exact_mann_whitney(n_x, n_y, no_ties):
    """R ``wilcox.test``'s rule: the exact null distribution for small samples without ties."""
    return (n_x < EXACT_BELOW) & (n_y < EXACT_BELOW) & no_ties


def _normal(*normality_p):
    """Every group normal: Shapiro-Wilk p defined and above NORMALITY_ALPHA (elementwise)."""
    out = True
    for p in normality_p:
        out = out & np.isfinite(p) & (p > NORMALITY_ALPHA)
    return out


def _normality_p(values: np.ndarray) -> float:
    """Shapiro-Wilk p; NaN (counted not normal) with fewer than 3 values or no spread."""
    if values.size < 3 or np.ptp(values) == 0:
        return float("nan")
    return float(stats.shapiro(values).pvalue)


def _normality_p_columns(group: np.ndarray) -> np.ndarray:
    """:func:`_normality_p` of every column of a 2-D array (one scipy call)."""
    out = np.full(group.shape[1], np.nan)
    if group.shape[0] < 3:
        return out
    spread = np.ptp(group, axis=0) > 0
    if spread.any():
        out[spread] = stats.shapiro(group[:, spread], axis=0).pvalue
    return out


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
    normal = bool(_normal(*normality))
    lowest = float("nan") if any(np.isnan(normality)) else float(min(normality))
    kind = "Student" if equal_var else "Welch"
    if len(groups) == 2:
        if normal:
            res = stats.ttest_ind(groups[0], groups[1], equal_var=equal_var)
            return GroupComparison(f"{kind} t test", float(res.statistic), float(res.pvalue), float(res.df), lowest)
        w, p = mann_whitney(groups[0], groups[1])
        return GroupComparison(MANN_WHITNEY, w, p, float("nan"), lowest)
    k = float(len(groups) - 1)
    if normal and equal_var:
        res = stats.f_oneway(*groups)
        return GroupComparison("one-way ANOVA", float(res.statistic), float(res.pvalue), k, lowest)
    if normal:
        f, p = _welch_anova(groups)
        return GroupComparison("Welch one-way ANOVA", f, p, k, lowest)
    res = stats.kruskal(*groups)
    return GroupComparison("Kruskal-Wallis", float(res.statistic), float(res.pvalue), k, lowest)


def compare_continuous_columns(g0, g1, *, equal_var: bool = False) -> list[GroupComparison]:
    """:func:`compare_continuous` of every column of two groups without missing values, batched.

    Parameters
    ----------
    g0, g1 : 2-D arrays (patients x variables) of the two groups, same number of columns, no NaN.
    equal_var : bool, keyword-only
        As :func:`compare_continuous` (True: Student's t, the radiomics screen's test).

    Returns
    -------
    list of GroupComparison
        One per column, equal to ``compare_continuous([g0[:, j], g1[:, j]], equal_var=...)``.

    Notes
    -----
    The same rule and the same scipy calls, each run over all columns at once: Shapiro-Wilk per
    group (``shapiro(axis=0)``); the two-sample t test (``ttest_ind(axis=0)``) where both groups
    are normal; otherwise ``mannwhitneyu(axis=0)`` with continuity correction, exact when both
    groups have fewer than 50 values and the column has no ties (R's rule), asymptotic with tie
    correction otherwise. 3111 radiomics features take about a second. Tests check it against
    the one-at-a-time function column by column.
    """
    g0, g1 = np.asarray(g0, dtype=float), np.asarray(g1, dtype=float)
    if g0.ndim != 2 or g1.ndim != 2 or g0.shape[1] != g1.shape[1]:
        raise ValueError(f"compare_continuous_columns needs two 2-D arrays with the same columns, got "
                         f"{g0.shape} and {g1.shape}")
    n0, n1, p = g0.shape[0], g1.shape[0], g0.shape[1]
    nan = float("nan")
    if n0 == 0 or n1 == 0:
        return [compare_continuous([g0[:, j], g1[:, j]], equal_var=equal_var) for j in range(p)]
    both = np.vstack([g0, g1])
    testable = np.ptp(both, axis=0) > 0
    norm0, norm1 = _normality_p_columns(g0), _normality_p_columns(g1)
    normal = _normal(norm0, norm1)
    lowest = np.where(np.isnan(norm0) | np.isnan(norm1), nan, np.fmin(norm0, norm1))
    stat, pval, df = np.full(p, nan), np.full(p, nan), np.full(p, nan)
    t_cols = np.flatnonzero(testable & normal)
    if t_cols.size:
        res = stats.ttest_ind(g0[:, t_cols], g1[:, t_cols], equal_var=equal_var, axis=0)
        stat[t_cols], pval[t_cols], df[t_cols] = res.statistic, res.pvalue, res.df
    mw = testable & ~normal
    no_ties = ~np.any(np.diff(np.sort(both, axis=0), axis=0) == 0, axis=0)
    exact = mw & _exact_mann_whitney(n0, n1, no_ties)
    for method, mask in (("exact", exact), ("asymptotic", mw & ~exact)):
        cols = np.flatnonzero(mask)
        if cols.size:
            res = stats.mannwhitneyu(g0[:, cols], g1[:, cols], use_continuity=True, alternative="two-sided",
                                     method=method, axis=0)
            stat[cols], pval[cols] = res.statistic, res.pvalue
    t_name = f"{'Student' if equal_var else 'Welch'} t test"
    out = []
    for j in range(p):
        if not testable[j]:
            out.append(GroupComparison(NOT_TESTABLE, nan, nan))
        elif normal[j]:
            out.append(GroupComparison(t_name, float(stat[j]), float(pval[j]), float(df[j]), float(lowest[j])))
        else:
            out.append(GroupComparison(MANN_WHITNEY, float(stat[j]), float(pval[j]), nan, float(lowest[j])))
    return out
