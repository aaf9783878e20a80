"""Decision curve analysis and the development-cohort mapping of index scores to risk.

Net benefit (Vickers & Elkin 2006) with percentile bootstrap bands over the stratified
resamples the AUC bootstrap draws (:func:`dlr.analysis.discrimination.stratified_resamples`), the
paired difference in net benefit between two models, and interventions avoided per 100
patients (Vickers et al. 2008; Kerr et al. 2016).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from dlr.core.errors import UndefinedStatisticWarning
from dlr.core.stats.logistic import fit_logistic

from .discrimination import BootstrapResamples, percentile_interval

#: threshold probabilities of the contract: 0.01 to 0.99 by 0.01 (k / 100, exact as floats)
THRESHOLDS = np.arange(1, 100) / 100.0
#: the threshold probabilities the figures show unless the user gives a range (`--thresholds`):
#: above 0.80 a false positive weighs more than four true positives, so the one or two patients
#: left above the threshold move the curves and their differences by tens of net true positives
#: per 100 patients, and that noise sets the axes; below 0.05 nobody would decline treatment.
#: The tables keep every threshold.
SHOWN_RANGE = (0.05, 0.80)


def net_benefit(y_true, y_prob, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of treating patients with predicted risk >= t, for each threshold t.

    Notes
    -----
    NB(t) = TP/n - FP/n * t / (1 - t); a patient is treated when p >= t.

    References
    ----------
    Vickers AJ, Elkin EB. Med Decis Making 2006;26:565-574.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(y_prob, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    n = y.size
    if n == 0:
        return np.full(t.size, np.nan)
    # number of cases / controls with p >= t, via sorted scores
    cases = np.sort(p[y == 1])
    controls = np.sort(p[y == 0])
    tp = cases.size - np.searchsorted(cases, t, side="left")
    fp = controls.size - np.searchsorted(controls, t, side="left")
    return tp / n - fp / n * t / (1 - t)


def net_benefit_treat_all(y_true, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of treating everyone: prevalence - (1 - prevalence) * t / (1 - t)."""
    y = np.asarray(y_true).astype(int)
    t = np.asarray(thresholds, dtype=float)
    if y.size == 0:
        return np.full(t.size, np.nan)
    prevalence = y.mean()
    return prevalence - (1 - prevalence) * t / (1 - t)


@dataclass(frozen=True)
class RiskMapping:
    """Logistic map from an index score to a risk, fitted on the development cohort only.

    risk = 1 / (1 + exp(-(intercept + slope * score))).
    """

    intercept: float
    slope: float
    n: int

    def predict(self, score) -> np.ndarray:
        lp = self.intercept + self.slope * np.asarray(score, dtype=float)
        return 1.0 / (1.0 + np.exp(-lp))


def fit_risk_mapping(y_true, y_score) -> RiskMapping:
    """Fit ``glm(y ~ score, family = binomial)`` on development-cohort patients.

    The mapping is then applied unchanged to every cohort (never refitted on the cohort being
    evaluated). NaN coefficients, with a warning, when the fit is undefined (single class).

    References
    ----------
    Vickers AJ, Elkin EB. Med Decis Making 2006;26:565-574 (risk scale for DCA).
    """
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    if y.size == 0 or y.min() == y.max() or np.unique(s).size < 2:
        warnings.warn("index-to-risk mapping undefined on the development cohort (single class or constant "
                      "score)", UndefinedStatisticWarning, stacklevel=2)
        return RiskMapping(float("nan"), float("nan"), int(y.size))
    intercept, slope = fit_logistic(y, np.column_stack([np.ones(y.size), s]))
    if not np.isfinite(slope):
        warnings.warn("index-to-risk mapping did not converge (complete separation)", UndefinedStatisticWarning,
                      stacklevel=2)
    return RiskMapping(float(intercept), float(slope), int(y.size))


# --------------------------------------------------------------------------- bootstrap bands


#: patients per matrix product in :func:`bootstrap_net_benefit`, bounding its indicator matrix
PATIENT_CHUNK = 1 << 15


def bootstrap_net_benefit(y_prob, resamples: BootstrapResamples, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of each bootstrap resample at each threshold, (B, T), from resample counts.

    Parameters
    ----------
    y_prob : array of predicted risks of the patients of ``resamples`` (in its order).
    resamples : BootstrapResamples
        From :func:`dlr.analysis.discrimination.stratified_resamples` (or its ``subset``); the same
        object as the AUC bootstrap's, so every statistic of a cohort uses the same resamples.
    thresholds : array of threshold probabilities in (0, 1).

    Notes
    -----
    With ``c[b, i]`` the number of times patient i occurs in resample b, TP_b(t) is the sum of
    ``c[b, i]`` over cases with p_i >= t, FP_b(t) the same over controls, and
    n_b = sum_i c[b, i]; NB_b(t) = TP_b/n_b - FP_b/n_b * t/(1 - t). TP and FP of every
    resample and threshold are one matrix product of the counts with the 0/1 matrix
    [case and p >= t | control and p >= t] (N x 2T), in float32, which is exact for integer
    sums below 2^24 (float64 beyond), patients taken :data:`PATIENT_CHUNK` at a time; no
    resample is materialised. O(B N T) multiply-adds in BLAS, faster here than the O(B N)
    cumulated counts, whose strided passes cost more. A resample without patients gives NaN.
    """
    p = np.asarray(y_prob, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    y = resamples.y_true
    if p.shape != y.shape:
        raise ValueError(f"y_prob has {p.size} values but the resamples cover {y.size} patients")
    dtype = np.float32 if y.size < 2**24 else np.float64
    chunks = []
    for start in range(0, y.size, PATIENT_CHUNK):
        part = slice(start, start + PATIENT_CHUNK)
        treated = p[part, None] >= t[None, :]
        case = (y[part] == 1)[:, None]
        chunks.append((part, np.concatenate([treated & case, treated & ~case], axis=1).astype(dtype)))
    out = []
    for counts in resamples.blocks():
        positive = np.zeros((counts.shape[0], 2 * t.size), dtype=np.int64)
        for part, indicator in chunks:
            positive += (counts[:, part].astype(dtype) @ indicator).astype(np.int64)
        tp, fp = positive[:, :t.size], positive[:, t.size:]
        n = counts.sum(axis=1, dtype=np.int64)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(tp / n - fp / n * t / (1 - t))  # the expression of net_benefit, term by term
    return np.concatenate(out) if out else np.empty((0, t.size))


def bootstrap_net_benefit_treat_all(resamples: BootstrapResamples, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of treating everyone in each bootstrap resample, (B, T).

    Notes
    -----
    NB_b(t) = pi_b - (1 - pi_b) t/(1 - t), with pi_b the resample's prevalence. Stratified
    resamples keep the numbers of cases and controls, so pi_b is the cohort's prevalence and
    the band of treat-all has no width when ``resamples`` covers the whole cohort.
    """
    t = np.asarray(thresholds, dtype=float)
    cases = resamples.y_true == 1
    out = []
    for counts in resamples.blocks():
        n = counts.sum(axis=1, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            prevalence = (counts[:, cases].sum(axis=1, dtype=np.int64) / n)[:, None]
        out.append(prevalence - (1 - prevalence) * t / (1 - t))
    return np.concatenate(out) if out else np.empty((0, t.size))


def _band(replicates: np.ndarray, size: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    if replicates.shape[0] == 0:
        return np.full(size, np.nan), np.full(size, np.nan)
    low, high = percentile_interval(replicates, level=level, axis=0)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


@dataclass(frozen=True)
class DecisionCurve:
    """Net benefit over threshold probabilities, with a pointwise percentile bootstrap band.

    Attributes
    ----------
    thresholds : ndarray (T,)
    net_benefit : ndarray (T,)
        On the patients given (:func:`net_benefit`, :func:`net_benefit_treat_all`).
    ci_low, ci_high : ndarray (T,)
        Percentile bootstrap interval at each threshold; NaN without resamples.
    replicates : ndarray (B, T)
        Net benefit of each resample ((0, T) without resamples), kept so that differences
        between curves over the same resamples stay paired.
    """

    thresholds: np.ndarray
    net_benefit: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    replicates: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Columns ``threshold``, ``net_benefit``, ``net_benefit_ci_low``, ``net_benefit_ci_high``."""
        return pd.DataFrame({"threshold": self.thresholds, "net_benefit": self.net_benefit,
                             "net_benefit_ci_low": self.ci_low, "net_benefit_ci_high": self.ci_high})


def decision_curve(y_true, y_prob, *, resamples: BootstrapResamples | None = None, thresholds=THRESHOLDS,
                   level: float = 0.95) -> DecisionCurve:
    """Net benefit of a risk model at each threshold, with a percentile bootstrap band.

    Parameters
    ----------
    y_true : array of 0/1.
    y_prob : array of predicted risks; index scores mapped to risk beforehand by the
        development-cohort map (:func:`fit_risk_mapping`), never refitted here.
    resamples : BootstrapResamples, keyword-only
        Resamples of exactly these patients (see ``BootstrapResamples.subset``); None: no band.
    thresholds : array of threshold probabilities in (0, 1).
    level : float, coverage of the band.

    Returns
    -------
    DecisionCurve

    Notes
    -----
    NB(t) = TP/n - FP/n * t/(1 - t), a patient being treated when p >= t; the band is the
    pointwise percentile interval (R's quantile type 7) of :func:`bootstrap_net_benefit`.
    Risks are held fixed across resamples: for the development cohort, an index score's
    logistic map stays as fitted on all its patients (it is not refitted per resample), so the
    band does not carry the map's own uncertainty.

    References
    ----------
    Vickers AJ, Elkin EB. Med Decis Making 2006;26:565-574.
    Vickers AJ et al. BMC Med Inform Decis Mak 2008;8:53 (bootstrap intervals of net benefit).
    """
    y = np.asarray(y_true).astype(int)
    t = np.asarray(thresholds, dtype=float)
    estimate = net_benefit(y, y_prob, t)
    replicates = (bootstrap_net_benefit(y_prob, resamples, t) if resamples is not None
                  else np.empty((0, t.size)))
    return DecisionCurve(t, estimate, *_band(replicates, t.size, level), replicates)


def treat_all_curve(y_true, *, resamples: BootstrapResamples | None = None, thresholds=THRESHOLDS,
                    level: float = 0.95) -> DecisionCurve:
    """Net benefit of treating everyone, with its percentile bootstrap band.

    Notes
    -----
    NB(t) = prevalence - (1 - prevalence) * t/(1 - t). Under the stratified resamples of the
    analysis the prevalence of a whole cohort is the same in every resample, so its band
    collapses onto the curve; on a subset of the cohort (patients scored by a model) it need not.
    """
    y = np.asarray(y_true).astype(int)
    t = np.asarray(thresholds, dtype=float)
    estimate = net_benefit_treat_all(y, t)
    replicates = (bootstrap_net_benefit_treat_all(resamples, t) if resamples is not None
                  else np.empty((0, t.size)))
    return DecisionCurve(t, estimate, *_band(replicates, t.size, level), replicates)


def treat_none_curve(thresholds=THRESHOLDS) -> DecisionCurve:
    """Net benefit of treating no one: 0 at every threshold and in every resample."""
    t = np.asarray(thresholds, dtype=float)
    zero = np.zeros(t.size)
    return DecisionCurve(t, zero, zero, zero, np.empty((0, t.size)))


def interventions_avoided(nb_model, nb_treat_all, thresholds=THRESHOLDS) -> np.ndarray:
    """Net reduction in interventions per 100 patients against treating everyone.

    Notes
    -----
    (NB_model(t) - NB_treat_all(t)) / (t / (1 - t)) * 100: the number of patients per 100
    spared an intervention at no loss of true positives. Broadcasts over leading axes
    (resamples).

    References
    ----------
    Vickers AJ, Cronin AM, Elkin EB, Gonen M. BMC Med Inform Decis Mak 2008;8:53.
    Vickers AJ, Van Calster B, Steyerberg EW. BMJ 2016;352:i6.
    Kerr KF, Brown MD, Zhu K, Janes H. J Clin Oncol 2016;34:2534-2540.
    """
    t = np.asarray(thresholds, dtype=float)
    return (np.asarray(nb_model, dtype=float) - np.asarray(nb_treat_all, dtype=float)) / (t / (1 - t)) * 100


#: columns of :meth:`NetBenefitDifference.to_frame` (``decision_curve_differences.csv`` adds
#: ``cohort``, ``model``, ``reference`` before them)
DIFFERENCE_COLUMNS = ["threshold", "nb_diff", "nb_diff_ci_low", "nb_diff_ci_high", "interventions_avoided",
                      "interventions_avoided_ci_low", "interventions_avoided_ci_high"]


@dataclass(frozen=True)
class NetBenefitDifference:
    """A model's net benefit against a reference model's, and its interventions avoided.

    Attributes
    ----------
    thresholds : ndarray (T,)
    nb_diff, nb_diff_ci_low, nb_diff_ci_high : ndarray (T,)
        NB_model - NB_reference with its paired percentile bootstrap interval (the
        difference is taken within each resample).
    interventions_avoided, interventions_avoided_ci_low, interventions_avoided_ci_high : ndarray (T,)
        The model's net reduction in interventions per 100 patients against treat all
        (:func:`interventions_avoided`), with its percentile interval.
    """

    thresholds: np.ndarray
    nb_diff: np.ndarray
    nb_diff_ci_low: np.ndarray
    nb_diff_ci_high: np.ndarray
    interventions_avoided: np.ndarray
    interventions_avoided_ci_low: np.ndarray
    interventions_avoided_ci_high: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: getattr(self, "thresholds" if c == "threshold" else c) for c in DIFFERENCE_COLUMNS})


def compare_decision_curves(model: DecisionCurve, reference: DecisionCurve, treat_all: DecisionCurve, *,
                            level: float = 0.95) -> NetBenefitDifference:
    """Paired difference in net benefit, and interventions avoided, from three curves computed on
    the same patients and the same resamples.

    Parameters
    ----------
    model, reference, treat_all : DecisionCurve
        From :func:`decision_curve` and :func:`treat_all_curve` with one ``resamples`` object
        (or all without).
    level : float, keyword-only

    Notes
    -----
    The interval of NB_model - NB_reference is the percentile interval of the per-resample
    differences, so it accounts for the correlation of the two models on the same patients.
    """
    t = model.thresholds
    for name, other in (("reference", reference), ("treat_all", treat_all)):
        if not np.array_equal(other.thresholds, t) or other.replicates.shape != model.replicates.shape:
            raise ValueError(f"the {name} curve has other thresholds or resamples than the model's "
                             f"({other.replicates.shape} vs {model.replicates.shape} replicates)")
    diff = model.replicates - reference.replicates
    avoided = interventions_avoided(model.replicates, treat_all.replicates, t)
    return NetBenefitDifference(t, model.net_benefit - reference.net_benefit, *_band(diff, t.size, level),
                                interventions_avoided(model.net_benefit, treat_all.net_benefit, t),
                                *_band(avoided, t.size, level))


def net_benefit_difference(y_true, y_prob, reference_prob, *, resamples: BootstrapResamples | None = None,
                           thresholds=THRESHOLDS, level: float = 0.95) -> NetBenefitDifference:
    """Difference in net benefit between a model and a reference model on the same patients,
    with a paired bootstrap interval, and the model's interventions avoided per 100 patients.

    Parameters
    ----------
    y_true : array of 0/1.
    y_prob, reference_prob : arrays of predicted risks of the same patients.
    resamples : BootstrapResamples of exactly these patients, keyword-only; None: no intervals.

    Notes
    -----
    nb_diff(t) = NB_model(t) - NB_reference(t); interventions avoided
    (NB_model(t) - NB_treat_all(t)) / (t/(1 - t)) * 100. Both intervals are percentile
    intervals over the same resamples (:func:`compare_decision_curves`).

    References
    ----------
    Vickers AJ, Elkin EB. Med Decis Making 2006;26:565-574.
    Vickers AJ et al. BMC Med Inform Decis Mak 2008;8:53.
    Kerr KF et al. J Clin Oncol 2016;34:2534-2540.
    """
    kwargs = dict(resamples=resamples, thresholds=thresholds, level=level)
    return compare_decision_curves(decision_curve(y_true, y_prob, **kwargs),
                                   decision_curve(y_true, reference_prob, **kwargs),
                                   treat_all_curve(y_true, **kwargs), level=level)


def threshold_range(value) -> tuple[float, float]:
    """The range LOW..HIGH of threshold probabilities a decision-curve figure shows.

    Parameters
    ----------
    value : ``"LOW:HIGH"`` (as ``dlr analyze --thresholds`` takes it) or a pair of numbers.

    Returns
    -------
    (low, high) floats with 0 < low < high < 1.

    Raises
    ------
    ValueError
        Naming the value given and what is allowed.
    """
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2:
            raise ValueError(f"{value!r} is not LOW:HIGH (two threshold probabilities, e.g. 0.05:0.60)")
    else:
        parts = list(value)
        if len(parts) != 2:
            raise ValueError(f"{value!r} is not a pair (low, high) of threshold probabilities")
    try:
        low, high = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not LOW:HIGH with two numbers, e.g. 0.05:0.60") from None
    if not (0 < low < high < 1):
        raise ValueError(f"{value!r}: need 0 < LOW < HIGH < 1 (threshold probabilities), got LOW {low:g}, "
                         f"HIGH {high:g}")
    return low, high
