"""Operating points: the metrics at a threshold (sensitivity, specificity, accuracy, PPV, NPV)
with Wilson CIs. The threshold itself (Youden, chosen on the development cohort) is
`core.stats.roc.youden_threshold`."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special


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
