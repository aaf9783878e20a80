"""Decision curve analysis and the development-cohort mapping of index scores to risk."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from core.errors import UndefinedStatisticWarning
from core.stats.logistic import fit_logistic

#: threshold probabilities of the contract: 0.01 to 0.99 by 0.01 (k / 100, exact as floats)
THRESHOLDS = np.arange(1, 100) / 100.0


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


def decision_curve_frame(cohort: str, model: str, values: np.ndarray, thresholds=THRESHOLDS) -> pd.DataFrame:
    """Rows ``cohort, model, threshold, net_benefit`` of one curve."""
    return pd.DataFrame({"cohort": cohort, "model": model, "threshold": np.asarray(thresholds, dtype=float),
                         "net_benefit": values})
