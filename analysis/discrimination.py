"""Discrimination: AUC, DeLong variance, DeLong tests and bootstrap confidence intervals.

All functions take outcome labels ``y_true`` (0/1) and scores where a higher score means the
outcome 1 is more likely (pROC's ``direction = "<"``: controls < cases).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import UndefinedStatisticWarning
from dlr.core.stats.roc import midranks as _midranks


def _upper_tail(stat, df=float("inf")):
    """P(T > stat) for Student t with ``df`` degrees of freedom (normal when df is infinite).

    scipy.special rather than scipy.stats: the same functions, without scipy.stats' import
    time, which would dominate a typical `dlr analyze` run.
    """
    return special.ndtr(-stat) if np.isinf(df) else special.stdtr(df, -stat)


def _quantile(q, df=float("inf")):
    return special.ndtri(q) if np.isinf(df) else special.stdtrit(df, q)


def _split(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D of equal length, got {y.shape} and {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score contains NaN or infinite values")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"y_true must hold only 0 and 1, found {sorted(labels)}")
    return s[y == 1], s[y == 0]


@dataclass(frozen=True)
class Placements:
    """DeLong structural components of one ROC curve.

    Attributes
    ----------
    auc : float
        Mann-Whitney AUC (ties count 1/2).
    cases : ndarray
        V10: for each case, the fraction of controls scored below it (ties 1/2).
    controls : ndarray
        V01: for each control, the fraction of cases scored above it (ties 1/2).
    """

    auc: float
    cases: np.ndarray
    controls: np.ndarray

    @property
    def variance(self) -> float:
        """DeLong variance of the AUC: var(V10)/m + var(V01)/n (n - 1 denominators)."""
        m, n = self.cases.size, self.controls.size
        if m < 2 or n < 2:
            return float("nan")
        return float(np.var(self.cases, ddof=1) / m + np.var(self.controls, ddof=1) / n)


def delong_placements(y_true, y_score) -> Placements:
    """DeLong placement values of one ROC curve by the midrank algorithm of Sun & Xu.

    Parameters
    ----------
    y_true : array of 0/1
    y_score : array of float, higher = outcome 1 more likely.

    Returns
    -------
    Placements
        AUC and the structural components V10 (cases) and V01 (controls). AUC is NaN when
        either class is empty.

    Notes
    -----
    With T the midranks in the pooled sample, T_X within the cases and T_Y within the
    controls, V10_i = (T_i - T_X,i) / n and V01_j = 1 - (T_j - T_Y,j) / m; the AUC is the mean
    of V10. O(N log N). Matches pROC's ``delongPlacements``.

    References
    ----------
    DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44:837-845.
    Sun X, Xu W. IEEE Signal Processing Letters 2014;21:1389-1393.
    """
    cases, controls = _split(y_true, y_score)
    return _placements(cases, controls)


def _placements(cases: np.ndarray, controls: np.ndarray) -> Placements:
    m, n = cases.size, controls.size
    if m == 0 or n == 0:
        return Placements(float("nan"), np.full(m, np.nan), np.full(n, np.nan))
    pooled = _midranks(np.concatenate([cases, controls]))
    v10 = (pooled[:m] - _midranks(cases)) / n
    v01 = 1.0 - (pooled[m:] - _midranks(controls)) / m
    return Placements(float(v10.mean()), v10, v01)


@dataclass(frozen=True)
class AUCResult:
    """AUC of one ROC curve with its DeLong standard error and 95% CI.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : float
        AUC, DeLong SE and the Wald CI estimate +/- z * se clipped to [0, 1].
    n, n_events : int
        Patients and cases (outcome 1).
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def roc_auc_delong(y_true, y_score, *, level: float = 0.95) -> AUCResult:
    """AUC with DeLong standard error and confidence interval.

    Parameters
    ----------
    y_true : array of 0/1
    y_score : array of float, higher = outcome 1 more likely.
    level : float, keyword-only
        Confidence level of the interval.

    Returns
    -------
    AUCResult
        NaN (with an ``UndefinedStatisticWarning``) when a class is empty; SE and CI are NaN
        when a class has fewer than two patients.

    Notes
    -----
    CI = AUC +/- z_{(1+level)/2} * sqrt(V), V the DeLong variance, clipped to [0, 1]; matches
    pROC ``ci.auc(roc(y, s, direction = "<"), method = "delong")``.

    References
    ----------
    DeLong ER et al. Biometrics 1988;44:837-845. Sun X, Xu W. IEEE SPL 2014;21:1389-1393.
    """
    cases, controls = _split(y_true, y_score)
    m, n = cases.size, controls.size
    if m == 0 or n == 0:
        warnings.warn(f"AUC undefined: {m} cases and {n} controls", UndefinedStatisticWarning, stacklevel=2)
    pl = _placements(cases, controls)
    se = float(np.sqrt(pl.variance)) if np.isfinite(pl.variance) else float("nan")
    z = _quantile(0.5 + level / 2)
    low = float(np.clip(pl.auc - z * se, 0.0, 1.0)) if np.isfinite(se) else float("nan")
    high = float(np.clip(pl.auc + z * se, 0.0, 1.0)) if np.isfinite(se) else float("nan")
    return AUCResult(pl.auc, se, low, high, m + n, m)


@dataclass(frozen=True)
class DeLongTest:
    """Comparison of two AUCs by DeLong's method.

    Attributes
    ----------
    auc_a, auc_b : float
        The two AUCs.
    diff, diff_ci_low, diff_ci_high : float
        auc_a - auc_b and its 95% CI from the same variance as the test (normal quantile when
        paired, as pROC's ``conf.int``; Student t with the Welch df when unpaired).
    statistic : float
        z (paired) or D (unpaired).
    df : float
        Welch-Satterthwaite degrees of freedom (unpaired); NaN for the paired z test.
    p_value : float
        Two-sided p (normal for paired, Student t for unpaired).
    paired : bool
    """

    auc_a: float
    auc_b: float
    diff: float
    diff_ci_low: float
    diff_ci_high: float
    statistic: float
    df: float
    p_value: float
    paired: bool

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def delong_test(y_true, score_a, score_b, *, alternative: str = "two-sided") -> DeLongTest:
    """Paired DeLong test of two ROC curves measured on the same patients.

    Parameters
    ----------
    y_true : array of 0/1
    score_a, score_b : arrays of float for the same patients, higher = outcome 1.
    alternative : {"two-sided", "greater", "less"}, keyword-only
        "greater": AUC_a > AUC_b.

    Returns
    -------
    DeLongTest
        NaN statistic and p (with a warning) when the variance of the difference is zero or
        a class has fewer than two patients.

    Notes
    -----
    z = (A_a - A_b) / sqrt(V_a + V_b - 2 Cov_ab), with V and Cov from the covariance of the
    structural components, S = S10 / m + S01 / n. Matches pROC
    ``roc.test(r1, r2, method = "delong", paired = TRUE)``.

    References
    ----------
    DeLong ER et al. Biometrics 1988;44:837-845.
    """
    y = np.asarray(y_true)
    a = delong_placements(y, score_a)
    b = delong_placements(y, score_b)
    m, n = a.cases.size, a.controls.size
    diff = a.auc - b.auc
    if m < 2 or n < 2:
        var = float("nan")
    else:
        s10 = np.cov(np.vstack([a.cases, b.cases]), ddof=1)
        s01 = np.cov(np.vstack([a.controls, b.controls]), ddof=1)
        s = s10 / m + s01 / n
        var = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return _finish_test(a.auc, b.auc, diff, var, df=float("inf"), paired=True, alternative=alternative)


def delong_unpaired_test(y_a, score_a, y_b, score_b, *, alternative: str = "two-sided") -> DeLongTest:
    """Unpaired DeLong test of two ROC curves from different patients.

    Parameters
    ----------
    y_a, score_a : labels and scores of the first curve (e.g. the development cohort).
    y_b, score_b : labels and scores of the second curve.
    alternative : {"two-sided", "greater", "less"}, keyword-only

    Returns
    -------
    DeLongTest
        ``statistic`` is D, ``df`` the Welch-Satterthwaite degrees of freedom.

    Notes
    -----
    D = (A_a - A_b) / sqrt(V_a + V_b); df = (V_a + V_b)^2 / (V_a^2 / (N_a - 1) + V_b^2 /
    (N_b - 1)), N the number of patients of each curve; p from Student's t. Matches pROC
    ``roc.test(r1, r2, method = "delong", paired = FALSE)``.

    References
    ----------
    DeLong ER et al. Biometrics 1988;44:837-845. Robin X et al. BMC Bioinformatics
    2011;12:77 (pROC).
    """
    a = delong_placements(y_a, score_a)
    b = delong_placements(y_b, score_b)
    va, vb = a.variance, b.variance
    na, nb = a.cases.size + a.controls.size, b.cases.size + b.controls.size
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if va + vb > 0 else float("nan")
    return _finish_test(a.auc, b.auc, a.auc - b.auc, va + vb, df=df, paired=False, alternative=alternative)


def _finish_test(auc_a, auc_b, diff, var, *, df, paired, alternative) -> DeLongTest:
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    nan = float("nan")
    if var == 0 and diff == 0:
        # equal AUCs without variance (e.g. both curves perfect): pROC reports Z = 0, p = 1
        warnings.warn(f"DeLong test: AUCs equal ({auc_a:.4g}) with zero variance of the difference; "
                      "p is 1 by convention (as pROC)", UndefinedStatisticWarning, stacklevel=3)
        return DeLongTest(float(auc_a), float(auc_b), 0.0, 0.0, 0.0, 0.0, nan if paired else df, 1.0, paired)
    if not (np.isfinite(var) and var > 0 and np.isfinite(diff)):
        warnings.warn(
            f"DeLong test undefined (AUCs {auc_a:.4g} vs {auc_b:.4g}, variance of the difference {var:.3g})",
            UndefinedStatisticWarning,
            stacklevel=3,
        )
        return DeLongTest(auc_a, auc_b, diff, nan, nan, nan, nan if paired else df, nan, paired)
    se = float(np.sqrt(var))
    stat = diff / se
    if alternative == "two-sided":
        p = 2 * _upper_tail(abs(stat), df)
    elif alternative == "greater":
        p = _upper_tail(stat, df)
    else:
        p = _upper_tail(-stat, df)
    q = _quantile(0.975, df)
    return DeLongTest(
        float(auc_a), float(auc_b), float(diff), float(diff - q * se), float(diff + q * se),
        float(stat), nan if paired else float(df), float(p), paired,
    )


@dataclass(frozen=True)
class HeterogeneityTest:
    """Test that k independent AUCs are equal (Cochran's Q with inverse-variance weights).

    Attributes
    ----------
    statistic : float
        Q = sum_i (A_i - A_w)^2 / V_i, A_w the inverse-variance weighted mean.
    df : int
        k - 1.
    p_value : float
        Upper tail of chi-squared(k - 1).
    """

    statistic: float
    df: int
    p_value: float


def auc_heterogeneity_test(aucs, variances) -> HeterogeneityTest:
    """Chi-squared test of equality of k independent AUCs (subgroup levels).

    Notes
    -----
    Q = sum_i w_i (A_i - A_w)^2, w_i = 1 / V_i (DeLong variances), A_w = sum w_i A_i / sum
    w_i, referred to chi-squared with k - 1 df. For two levels prefer
    :func:`delong_unpaired_test`, which matches pROC.

    References
    ----------
    Cochran WG. Biometrics 1954;10:101-129. DeLong ER et al. Biometrics 1988;44:837-845.
    """
    a = np.asarray(aucs, dtype=float)
    v = np.asarray(variances, dtype=float)
    keep = np.isfinite(a) & np.isfinite(v) & (v > 0)
    k = int(keep.sum())
    if k < 2:
        return HeterogeneityTest(float("nan"), max(k - 1, 0), float("nan"))
    w = 1.0 / v[keep]
    mean = float(np.sum(w * a[keep]) / np.sum(w))
    q = float(np.sum(w * (a[keep] - mean) ** 2))
    return HeterogeneityTest(q, k - 1, float(special.chdtrc(k - 1, q)))


# --------------------------------------------------------------------------- bootstrap


#: at most this many resample counts (resamples x patients) are held in memory at once
BLOCK_CELLS = 1 << 24


def _draw_counts(y: np.ndarray, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Counts (n_rows, N) of stratified resamples: cases and controls drawn separately."""
    counts = np.zeros((n_rows, y.size), dtype=np.int32)
    for label in (1, 0):
        members = np.flatnonzero(y == label)
        if members.size == 0:
            continue
        draws = rng.integers(0, members.size, size=(n_rows, members.size))
        # count the draws of each member, row by row, with one bincount over offset indexes
        offsets = (np.arange(n_rows) * members.size)[:, None]
        per_member = np.bincount((draws + offsets).ravel(), minlength=n_rows * members.size)
        counts[:, members] = per_member.reshape(n_rows, members.size)
    return counts


class _ResampleSource:
    """The resamples of one cohort: regenerated block by block from a seed, or kept whole
    when they fit in :data:`BLOCK_CELLS`."""

    def __init__(self, y: np.ndarray, n_resamples: int, seed: int):
        self.y, self.n_resamples, self.seed = y, n_resamples, seed
        self.rows = max(1, min(n_resamples, BLOCK_CELLS // max(y.size, 1)))
        self._whole = None

    def blocks(self):
        if self._whole is not None:
            yield self._whole
            return
        rng = np.random.default_rng(self.seed)
        for start in range(0, self.n_resamples, self.rows):
            block = _draw_counts(self.y, min(self.rows, self.n_resamples - start), rng)
            if self.rows == self.n_resamples:  # everything fits in one block: keep it
                self._whole = block
            yield block


class BootstrapResamples:
    """Stratified bootstrap resamples of one cohort, as counts per patient.

    Cases and controls are resampled separately with replacement (pROC's
    ``boot.stratified = TRUE``); in a block of :meth:`blocks`, ``counts[b, i]`` is how often
    patient i occurs in resample b. The same object serves every model of the cohort, so paired
    quantities stay paired; :meth:`subset` restricts it to the patients a model has scores for.
    Large cohorts are processed in blocks of resamples, regenerated identically on each pass,
    so memory stays bounded (:data:`BLOCK_CELLS`) whatever the number of patients.

    Attributes
    ----------
    y_true : ndarray
        Labels of the patients the counts refer to, in order.
    n_resamples : int
    """

    def __init__(self, source: _ResampleSource, columns=None):
        self._source = source
        self._columns = None if columns is None else np.asarray(columns)
        self.y_true = source.y if columns is None else source.y[self._columns]
        self.n_resamples = source.n_resamples

    def blocks(self):
        """Successive (rows, N) int32 count blocks covering all resamples, the same on every pass."""
        for block in self._source.blocks():
            yield block if self._columns is None else block[:, self._columns]

    @property
    def counts(self) -> np.ndarray:
        """All counts at once, (B, N): for small cohorts and for tests."""
        return np.concatenate(list(self.blocks()))

    def subset(self, index) -> "BootstrapResamples":
        """The same resamples restricted to the patients at ``index`` (positions)."""
        index = np.asarray(index)
        if index.size == self.y_true.size and np.array_equal(index, np.arange(index.size)):
            return self
        columns = index if self._columns is None else self._columns[index]
        return BootstrapResamples(self._source, columns)


def stratified_resamples(y_true, n_resamples: int, *, rng: np.random.Generator) -> BootstrapResamples:
    """Stratified bootstrap resamples of a cohort (as count vectors), seeded from ``rng``.

    Parameters
    ----------
    y_true : array of 0/1 for the cohort's patients.
    n_resamples : int
    rng : numpy Generator, keyword-only.

    Notes
    -----
    Cases and controls are drawn separately, each with replacement and its own size, as pROC's
    ``ci.auc(method = "bootstrap", boot.stratified = TRUE)``; the percentile interval of any
    statistic over the resamples is then taken with :func:`percentile_interval`.

    References
    ----------
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall 1993, ch. 13.
    Carpenter J, Bithell J. Stat Med 2000;19:1141-1164.
    """
    y = np.asarray(y_true).astype(int)
    return BootstrapResamples(_ResampleSource(y, int(n_resamples), int(rng.integers(2**63))))


@dataclass(frozen=True)
class _SortedResamples:
    """One curve's resample counts with cases and controls in ascending score order."""

    case_scores: np.ndarray
    ctrl_scores: np.ndarray
    case_counts: np.ndarray  # (B, m)
    cum_ctrl: np.ndarray  # (B, n + 1): resampled controls among the lowest j, j = 0..n


def _sorted_blocks(y_score, resamples: BootstrapResamples):
    """Each block of resamples with cases and controls in ascending score order; None when a
    class is empty."""
    s = np.asarray(y_score, dtype=float)
    y = resamples.y_true
    case_idx, ctrl_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if case_idx.size == 0 or ctrl_idx.size == 0:
        return None
    case_idx = case_idx[np.argsort(s[case_idx], kind="mergesort")]
    ctrl_idx = ctrl_idx[np.argsort(s[ctrl_idx], kind="mergesort")]

    def sorted_block(counts):
        cum_ctrl = np.zeros((counts.shape[0], ctrl_idx.size + 1), dtype=np.int64)
        np.cumsum(counts[:, ctrl_idx], axis=1, out=cum_ctrl[:, 1:])
        return _SortedResamples(s[case_idx], s[ctrl_idx], counts[:, case_idx], cum_ctrl)

    return (sorted_block(counts) for counts in resamples.blocks())


def _auc_replicates(r: _SortedResamples) -> np.ndarray:
    below = np.searchsorted(r.ctrl_scores, r.case_scores, side="left")
    upto = np.searchsorted(r.ctrl_scores, r.case_scores, side="right")
    lower_or_tied = r.cum_ctrl[:, below] + r.cum_ctrl[:, upto]  # = 2 * below + tied
    pairs = r.case_counts.sum(axis=1, dtype=float) * r.cum_ctrl[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("bi,bi->b", r.case_counts, lower_or_tied, dtype=float) / (2.0 * pairs)


def bootstrap_auc(y_score, resamples: BootstrapResamples) -> np.ndarray:
    """AUC of each bootstrap resample, computed from counts without materialising resamples.

    Notes
    -----
    With controls sorted by score and their resample counts cumulated, each case's number of
    lower-scored controls (ties 1/2) is read at its sorted position, so a resample's AUC is
    sum_i c_i (C_below,i + C_tied,i / 2) / (sum c_case * sum c_control). O(B N) after one sort.
    NaN for every resample when a class is empty.
    """
    blocks = _sorted_blocks(y_score, resamples)
    if blocks is None:
        return np.full(resamples.n_resamples, np.nan)
    return np.concatenate([_auc_replicates(r) for r in blocks])


def percentile_interval(values: np.ndarray, *, level: float = 0.95, axis: int = 0) -> tuple:
    """Percentile bootstrap interval (R's quantile type 7), ignoring NaN resamples."""
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    values = np.asarray(values, dtype=float)
    if not np.isnan(values).any():
        q = np.quantile(values, [lo, hi], axis=axis)
        return q[0], q[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(values, [lo, hi], axis=axis)
    return q[0], q[1]


# --------------------------------------------------------------------------- ROC curves


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC curve with an optional pointwise bootstrap band.

    Attributes
    ----------
    fpr, tpr, thresholds : ndarray
        One point per distinct score (positive when score >= threshold), from (0, 0) at
        +inf down to (1, 1).
    band_specificity, band_sensitivity_low, band_sensitivity_high : ndarray
        Percentile bootstrap CI of the sensitivity at fixed specificities (as pROC
        ``ci.se``); empty when no resamples were given.
    auc : AUCResult
    auc_replicates : ndarray
        AUC of each bootstrap resample (empty when no resamples were given).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    band_specificity: np.ndarray
    band_sensitivity_low: np.ndarray
    band_sensitivity_high: np.ndarray
    auc: AUCResult
    auc_replicates: np.ndarray = field(default_factory=lambda: np.array([]), repr=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"threshold": self.thresholds, "fpr": self.fpr, "tpr": self.tpr})

    def band_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"specificity": self.band_specificity, "sensitivity_ci_low": self.band_sensitivity_low,
                             "sensitivity_ci_high": self.band_sensitivity_high})


def _sensitivity_replicates(r: _SortedResamples, specificities) -> np.ndarray:
    """Per resample, the largest sensitivity among cut points whose specificity is >= sp.

    The best cut for sp lies just above the control at which the cumulative control count
    first reaches ceil(sp * n); every resample and specificity is located by one search over the
    rows' cumulative counts laid end to end. O(B (N + G log N)).
    """
    n_b, n_ctrl = r.cum_ctrl.shape[0], r.ctrl_scores.size
    cum_case = np.zeros((n_b, r.case_scores.size + 1), dtype=np.int64)
    np.cumsum(r.case_counts, axis=1, out=cum_case[:, 1:])
    cum_ctrl = r.cum_ctrl[:, 1:]
    need = np.ceil(specificities[None, :] * cum_ctrl[:, -1:] - 1e-9).astype(np.int64)
    width = int(cum_ctrl[:, -1].max()) + 1
    shift = (np.arange(n_b, dtype=np.int64) * width)[:, None]
    j = np.searchsorted((cum_ctrl + shift).ravel(), (need + shift).ravel(), side="left").reshape(need.shape)
    j = np.clip(j - np.arange(n_b)[:, None] * n_ctrl, 0, n_ctrl - 1)
    cases_at_or_below = np.searchsorted(r.case_scores, r.ctrl_scores, side="right")  # per control position
    below = np.take_along_axis(cum_case, cases_at_or_below[j], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = 1.0 - below / cum_case[:, -1:].astype(float)
    return np.where(need <= 0, 1.0, sens)


def roc_curve(y_true, y_score, *, resamples: BootstrapResamples | None = None, n_grid: int = 101,
              level: float = 0.95) -> RocCurve:
    """Empirical ROC curve, AUC with DeLong CI, and a bootstrap band of sensitivity.

    Parameters
    ----------
    y_true, y_score : arrays
    resamples : BootstrapResamples, keyword-only
        Resamples of exactly these patients (see :meth:`BootstrapResamples.subset`).
    n_grid : int
        Number of specificities, evenly spaced on [0, 1], for the band.

    Notes
    -----
    For each resample, the sensitivity at specificity sp is the largest TPR among cut points
    with FPR <= 1 - sp; the band is its pointwise percentile interval.

    References
    ----------
    Fawcett T. Pattern Recognit Lett 2006;27:861-874. Robin X et al. BMC Bioinformatics 2011.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    auc = roc_auc_delong(y, s, level=level)
    cuts = np.concatenate([[np.inf], np.unique(s)[::-1]])
    cases, ctrls = np.sort(s[y == 1]), np.sort(s[y == 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (cases.size - np.searchsorted(cases, cuts, side="left")) / cases.size
        fpr = (ctrls.size - np.searchsorted(ctrls, cuts, side="left")) / ctrls.size
    spec_grid = low = high = replicates = np.array([])
    blocks = _sorted_blocks(s, resamples) if resamples is not None else None
    if blocks is not None:
        spec_grid = np.linspace(0.0, 1.0, n_grid)
        sens, aucs = [], []
        for r in blocks:
            sens.append(_sensitivity_replicates(r, spec_grid))
            aucs.append(_auc_replicates(r))
        low, high = percentile_interval(np.concatenate(sens), level=level, axis=0)
        replicates = np.concatenate(aucs)
    elif resamples is not None:
        replicates = np.full(resamples.n_resamples, np.nan)
    return RocCurve(fpr, tpr, cuts, spec_grid, np.asarray(low), np.asarray(high), auc, replicates)
