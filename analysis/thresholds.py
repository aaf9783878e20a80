"""Operating points: the Youden threshold chosen on the development cohort and the
threshold metrics (sensitivity, specificity, accuracy, PPV, NPV) with Wilson CIs."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special

from .discrimination import UndefinedStatisticWarning


def youden_threshold(y_true, y_score) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Parameters
    ----------
    y_true : array of 0/1 (the development cohort only).
    y_score : array of float, higher = outcome 1.

    Returns
    -------
    float
        Candidate thresholds are the midpoints between adjacent distinct scores, with -inf and
        +inf at the ends (pROC's convention); a patient is positive when score >= threshold.
        Ties in J are broken towards the higher sensitivity (the lowest threshold). NaN, with
        a warning, when a class is empty.

    Notes
    -----
    J is compared exactly, as the integer tp * n + tn * m, so mathematically tied thresholds
    are tied. Matches pROC ``coords(roc(y, s, direction = "<"), "best", best.method =
    "youden")``, taking the row with the highest sensitivity when several are returned.

    References
    ----------
    Youden WJ. Cancer 1950;3:32-35. Robin X et al. BMC Bioinformatics 2011;12:77.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    m, n = int(y.sum()), int(y.size - y.sum())
    if m == 0 or n == 0:
        warnings.warn(f"Youden threshold undefined: {m} cases and {n} controls", UndefinedStatisticWarning,
                      stacklevel=2)
        return float("nan")
    distinct = np.unique(s)
    candidates = np.concatenate([[-np.inf], (distinct[:-1] + distinct[1:]) / 2, [np.inf]])
    # counts of cases / controls at or above each candidate (positive: score >= threshold)
    cases_sorted = np.sort(s[y == 1])
    controls_sorted = np.sort(s[y == 0])
    tp = m - np.searchsorted(cases_sorted, candidates, side="left")
    fp = n - np.searchsorted(controls_sorted, candidates, side="left")
    tn = n - fp
    j = tp.astype(np.int64) * n + tn.astype(np.int64) * m
    best = np.flatnonzero(j == j.max())
    return float(candidates[best[np.argmax(tp[best])]])


@dataclass(frozen=True)
class ThresholdMetrics:
    """Classification at a fixed threshold (positive when score >= threshold).

    Each proportion has a Wilson 95% CI (``*_ci_low``, ``*_ci_high``); a proportion whose
    denominator is zero is NaN.
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: float
    sensitivity_ci_low: float
    sensitivity_ci_high: float
    specificity: float
    specificity_ci_low: float
    specificity_ci_high: float
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    ppv: float
    ppv_ci_low: float
    ppv_ci_high: float
    npv: float
    npv_ci_low: float
    npv_ci_high: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def wilson_interval(successes, trials, *, level: float = 0.95) -> tuple[float, float, float]:
    """Proportion with its Wilson score interval (no continuity correction).

    Returns (estimate, ci_low, ci_high); all NaN when ``trials`` is 0.

    Notes
    -----
    (p + z^2 / 2n -/+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n). Equals statsmodels
    ``proportion_confint(method="wilson")`` and R ``prop.test(x, n, correct = FALSE)$conf.int``
    (checked in the tests).

    References
    ----------
    Wilson EB. JASA 1927;22:209-212.
    """
    if trials == 0:
        return float("nan"), float("nan"), float("nan")
    z = special.ndtri(0.5 + level / 2)
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2))
    low = 0.0 if successes == 0 else max(centre - half, 0.0)  # exact at the bounds, free of rounding
    high = 1.0 if successes == trials else min(centre + half, 1.0)
    return p, float(low), float(high)


def threshold_metrics(y_true, y_score, threshold: float) -> ThresholdMetrics:
    """Sensitivity, specificity, accuracy, PPV and NPV at a given threshold, with Wilson CIs.

    Parameters
    ----------
    y_true : array of 0/1
    y_score : array of float
    threshold : float
        Chosen elsewhere (on the development cohort); never re-chosen here.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    if np.isnan(threshold):
        positive = np.zeros(y.size, dtype=bool)
        counts = (0, 0, 0, 0)
    else:
        positive = s >= threshold
        counts = (
            int(np.sum(positive & (y == 1))), int(np.sum(positive & (y == 0))),
            int(np.sum(~positive & (y == 0))), int(np.sum(~positive & (y == 1))),
        )
    tp, fp, tn, fn = counts
    if np.isnan(threshold):
        nan3 = (float("nan"),) * 3
        parts = nan3 * 5
    else:
        parts = (
            *wilson_interval(tp, tp + fn), *wilson_interval(tn, tn + fp), *wilson_interval(tp + tn, y.size),
            *wilson_interval(tp, tp + fp), *wilson_interval(tn, tn + fn),
        )
    return ThresholdMetrics(float(threshold), tp, fp, tn, fn, *parts)
