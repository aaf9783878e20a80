"""Reclassification: continuous net reclassification improvement (NRI) and integrated
discrimination improvement (IDI) of a new model over an old one on the same patients."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import UndefinedStatisticWarning
from .discrimination import BootstrapResamples, percentile_interval


@dataclass(frozen=True)
class ReclassificationResult:
    """NRI (continuous, "category-free") and IDI of a new model against an old one.

    Attributes
    ----------
    nri, nri_events, nri_nonevents : float
        NRI = NRI_events + NRI_nonevents; NRI_events = P(up | event) - P(down | event),
        NRI_nonevents = P(down | non-event) - P(up | non-event).
    nri_ci_low, nri_ci_high, nri_p_value : float
        Bootstrap percentile CI; asymptotic two-sided p (Pencina 2008).
    idi, idi_ci_low, idi_ci_high, idi_p_value : float
        IDI = (mean new - mean old | events) - (mean new - mean old | non-events); bootstrap
        CI; asymptotic p from the paired standard errors.
    n, n_events : int
    """

    nri: float
    nri_events: float
    nri_nonevents: float
    nri_ci_low: float
    nri_ci_high: float
    nri_p_value: float
    idi: float
    idi_ci_low: float
    idi_ci_high: float
    idi_p_value: float
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def reclassification(y_true, risk_new, risk_old, *, resamples: BootstrapResamples | None = None,
                     level: float = 0.95) -> ReclassificationResult:
    """Continuous NRI and IDI of ``risk_new`` over ``risk_old``.

    Parameters
    ----------
    y_true : array of 0/1
    risk_new, risk_old : predicted risks (probabilities) of the same patients.
    resamples : BootstrapResamples, keyword-only
        The cohort's shared stratified resamples, for percentile CIs; CIs are NaN without.

    Notes
    -----
    Up / down: risk_new > / < risk_old. Asymptotic SEs: NRI, sqrt((p_up,e + p_down,e) / n_e +
    (p_up,ne + p_down,ne) / n_ne); IDI, sqrt(SE_e^2 + SE_ne^2) with SE the standard error of
    the paired differences new - old within events and non-events.

    References
    ----------
    Pencina MJ, D'Agostino RB Sr, D'Agostino RB Jr, Vasan RS. Stat Med 2008;27:157-172.
    Pencina MJ, D'Agostino RB Sr, Steyerberg EW. Stat Med 2011;30:11-21.
    """
    y = np.asarray(y_true).astype(int)
    new = np.asarray(risk_new, dtype=float)
    old = np.asarray(risk_old, dtype=float)
    events, nonevents = y == 1, y == 0
    n_e, n_ne = int(events.sum()), int(nonevents.sum())
    nan = float("nan")
    if n_e < 2 or n_ne < 2:
        warnings.warn(f"NRI/IDI undefined: {n_e} events and {n_ne} non-events", UndefinedStatisticWarning,
                      stacklevel=2)
        return ReclassificationResult(*(nan,) * 10, int(y.size), n_e)
    up = (new > old).astype(float)
    down = (new < old).astype(float)
    diff = new - old
    # signed per-patient contributions: each statistic is a sum of per-class means
    nri_part = np.where(events, up - down, down - up)
    up_e, down_e = up[events].mean(), down[events].mean()
    up_ne, down_ne = up[nonevents].mean(), down[nonevents].mean()
    nri_e, nri_ne = up_e - down_e, down_ne - up_ne
    nri = nri_e + nri_ne
    idi = diff[events].mean() - diff[nonevents].mean()
    se_nri = np.sqrt((up_e + down_e) / n_e + (up_ne + down_ne) / n_ne)
    se_idi = np.sqrt(np.var(diff[events], ddof=1) / n_e + np.var(diff[nonevents], ddof=1) / n_ne)
    p_nri = float(2 * special.ndtr(-abs(nri / se_nri))) if se_nri > 0 else nan
    p_idi = float(2 * special.ndtr(-abs(idi / se_idi))) if se_idi > 0 else nan
    nri_ci = idi_ci = (nan, nan)
    if resamples is not None:
        # per-resample class means of the NRI and IDI contributions, in one product
        parts = np.column_stack([nri_part * events, nri_part * nonevents, diff * events, diff * nonevents,
                                 events, nonevents]).astype(float)
        sums = np.concatenate([counts @ parts for counts in resamples.blocks()])
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_nri = sums[:, 0] / sums[:, 4] + sums[:, 1] / sums[:, 5]
            boot_idi = sums[:, 2] / sums[:, 4] - sums[:, 3] / sums[:, 5]
        nri_ci = percentile_interval(boot_nri, level=level)
        idi_ci = percentile_interval(boot_idi, level=level)
    return ReclassificationResult(
        float(nri), float(nri_e), float(nri_ne), float(nri_ci[0]), float(nri_ci[1]), p_nri,
        float(idi), float(idi_ci[0]), float(idi_ci[1]), p_idi, int(y.size), n_e,
    )
