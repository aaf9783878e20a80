"""Calibration of predicted probabilities: intercept, slope, Brier score, Hosmer-Lemeshow,
and the binned and LOESS calibration curves."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import UndefinedStatisticWarning
from dlr.core.stats.logistic import fit_logistic
from .thresholds import wilson_interval

#: probabilities are clipped to [EPS, 1 - EPS] before the logit
EPS = 1e-12


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class CalibrationResult:
    """Calibration summary of predicted probabilities.

    Attributes
    ----------
    brier : float
        mean (p - y)^2.
    intercept : float
        Calibration-in-the-large: a in logit P(y = 1) = a + logit p.
    slope : float
        b in logit P(y = 1) = a' + b logit p.
    hl_chi2, hl_df, hl_p : float
        Hosmer-Lemeshow statistic over groups by deciles of p, df = groups - 2.
    n, n_events : int
    """

    brier: float
    intercept: float
    slope: float
    hl_chi2: float
    hl_df: int
    hl_p: float
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def calibration_intercept_slope(y_true, y_prob) -> tuple[float, float]:
    """Calibration intercept and slope by logistic recalibration.

    Notes
    -----
    Intercept: ``glm(y ~ offset(qlogis(p)), family = binomial)``; slope: coefficient of
    ``qlogis(p)`` in ``glm(y ~ qlogis(p), family = binomial)`` (R stats). NaN with a warning
    for a single-class sample.

    References
    ----------
    Van Calster B et al. J Clin Epidemiol 2016;74:167-176. Cox DR. Biometrika 1958;45:562-565.
    """
    y = np.asarray(y_true, dtype=float)
    lp = logit(y_prob)
    if y.min() == y.max():
        warnings.warn("calibration intercept and slope undefined for a single-class sample",
                      UndefinedStatisticWarning, stacklevel=2)
        return float("nan"), float("nan")
    intercept = fit_logistic(y, np.ones((y.size, 1)), offset=lp)[0]
    slope = fit_logistic(y, np.column_stack([np.ones(y.size), lp]))[1]
    if not (np.isfinite(intercept) and np.isfinite(slope)):
        warnings.warn("calibration model did not converge (complete separation)", UndefinedStatisticWarning,
                      stacklevel=2)
    return float(intercept), float(slope)


def decile_groups(y_prob, n_groups: int = 10) -> np.ndarray:
    """Group index (0-based) of each prediction by quantiles of p.

    Breaks are the type-7 quantiles at 0, 1/g, ..., 1 with duplicate breaks dropped; groups
    are right-closed with the lowest included, as R's ``cut(p, quantile(p, 0:g/g),
    include.lowest = TRUE)`` used by ``ResourceSelection::hoslem.test``.
    """
    p = np.asarray(y_prob, dtype=float)
    breaks = np.unique(np.quantile(p, np.linspace(0, 1, n_groups + 1)))
    if breaks.size < 2:
        return np.zeros(p.size, dtype=int)
    return np.clip(np.searchsorted(breaks, p, side="left") - 1, 0, breaks.size - 2)


def hosmer_lemeshow(y_true, y_prob, *, n_groups: int = 10) -> tuple[float, int, float]:
    """Hosmer-Lemeshow goodness-of-fit statistic.

    Notes
    -----
    C = sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g)), groups by deciles of p
    (:func:`decile_groups`), df = groups - 2. Matches ``ResourceSelection::hoslem.test``.

    References
    ----------
    Hosmer DW, Lemeshow S. Commun Stat Theory Methods 1980;9:1043-1069.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    groups = decile_groups(p, n_groups)
    k = groups.max() + 1
    n_g = np.bincount(groups, minlength=k).astype(float)
    keep = n_g > 0
    obs = np.bincount(groups, weights=y, minlength=k)[keep]
    exp = np.bincount(groups, weights=p, minlength=k)[keep]
    n_g = n_g[keep]
    df = int(keep.sum()) - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((obs - exp) ** 2 / exp + ((n_g - obs) - (n_g - exp)) ** 2 / (n_g - exp)))
    if df < 1 or not np.isfinite(chi2):
        warnings.warn(f"Hosmer-Lemeshow test undefined ({int(keep.sum())} distinct risk groups)",
                      UndefinedStatisticWarning, stacklevel=2)
        return float("nan"), max(df, 0), float("nan")
    return chi2, df, float(special.chdtrc(df, chi2))


def calibration_summary(y_true, y_prob) -> CalibrationResult:
    """Brier score, calibration intercept and slope, and Hosmer-Lemeshow test.

    References
    ----------
    Brier GW. Mon Weather Rev 1950;78:1-3. Van Calster B et al. J Clin Epidemiol 2016;74:167-176.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    brier = float(np.mean((p - y) ** 2))
    intercept, slope = calibration_intercept_slope(y, p)
    chi2, df, p_hl = hosmer_lemeshow(y, p)
    return CalibrationResult(brier, intercept, slope, chi2, df, p_hl, int(y.size), int(y.sum()))


#: the two-sided 95% normal quantile of the Wald intervals (R ``qnorm(0.975)``)
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class RecalibrationResult:
    """Calibration in the large and calibration slope of a frozen model in a new cohort, with
    Wald 95% CIs: what recalibration-in-the-large (and logistic recalibration) would change.

    Attributes
    ----------
    n, n_events : int
        Patients and events (y = 1).
    observed_expected : float
        Observed over expected events, sum(y) / sum(p): below 1 the model predicts more events
        than occurred, above 1 fewer.
    citl, citl_ci_low, citl_ci_high : float
        Calibration-in-the-large: the intercept a of logit P(y = 1) = a + logit(p) (the
        linear predictor as an offset), with its Wald 95% CI. a < 0: the predictions are too
        high on average; a > 0: too low. Recalibration-in-the-large adds a to every logit.
    slope, slope_ci_low, slope_ci_high : float
        The calibration slope b of logit P(y = 1) = a' + b logit(p), with its Wald 95% CI.
        b < 1: predictions too extreme; b > 1: too moderate.
    """

    n: int
    n_events: int
    observed_expected: float
    citl: float
    citl_ci_low: float
    citl_ci_high: float
    slope: float
    slope_ci_low: float
    slope_ci_high: float

    def to_frame(self) -> pd.DataFrame:
        """One row, the fields as columns (``recalibration.csv`` adds ``model`` and ``cohort``)."""
        return pd.DataFrame([asdict(self)])


def _wald(estimate: float, se: float) -> tuple[float, float]:
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return float("nan"), float("nan")
    return float(estimate - Z_95 * se), float(estimate + Z_95 * se)


def recalibration(y_true, y_prob) -> RecalibrationResult:
    """Calibration-in-the-large and calibration slope, with Wald 95% CIs, of probabilities
    applied unchanged to a new cohort (external validation).

    Parameters
    ----------
    y_true : array-like of 0/1
        The outcome of each patient of the new cohort.
    y_prob : array-like of float in [0, 1]
        The frozen model's predicted probabilities for the same patients.

    Returns
    -------
    RecalibrationResult
        n, events, observed/expected ratio, calibration-in-the-large and slope with their CIs.
        For a single-class cohort (no event, or only events) the intercept, the slope and their
        CIs are NaN with an :class:`~dlr.core.errors.UndefinedStatisticWarning` (the counts and
        the observed/expected ratio are still given); NaN with a warning too when the slope model
        has no finite maximum (complete separation).

    Raises
    ------
    ValueError
        Arrays of different lengths or empty, an outcome other than 0/1, or a probability
        outside [0, 1] or missing.

    Notes
    -----
    With lp = logit(p) (p clipped to [1e-12, 1 - 1e-12]):

    * observed/expected = sum(y) / sum(p);
    * calibration-in-the-large a: logit P(y = 1) = a + lp, lp an offset, by maximum
      likelihood; Var(a) = 1 / sum(pi (1 - pi)) with pi = expit(a + lp). R:
      ``glm(y ~ offset(qlogis(p)), family = binomial)``;
    * slope b: logit P(y = 1) = a' + b lp; Var from the inverse of the information matrix
      X' W X at the maximum, X = [1, lp]. R: ``glm(y ~ qlogis(p), family = binomial)``;
    * CIs: estimate +/- 1.959964 SE (Wald, R ``confint.default``).

    Recalibration-in-the-large (Steyerberg) updates a model for a new setting by adding a to
    every linear predictor, which makes the mean prediction equal the observed event rate; the
    slope says whether, beyond that, the predictions are too extreme (b < 1) or too moderate
    (b > 1). Van Calster et al. call a and b weak calibration.

    References
    ----------
    Van Calster B, Nieboer D, Vergouwe Y, De Cock B, Pencina MJ, Steyerberg EW. A calibration
    hierarchy for risk models was defined: from utopia to empirical data. J Clin Epidemiol
    2016;74:167-176.
    Steyerberg EW, Borsboom GJ, van Houwelingen HC, Eijkemans MJ, Habbema JD. Validation and
    updating of predictive logistic regression models: a study on sample size and shrinkage.
    Stat Med 2004;23:2567-2586 (recalibration-in-the-large).
    Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, ch. 20 (updating).
    """
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if y.size != p.size:
        raise ValueError(f"y_true has {y.size} values and y_prob {p.size}; they must be the same patients")
    if y.size == 0:
        raise ValueError("recalibration needs at least one patient, got none")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError(f"y_true must be 0/1, got {sorted(set(y[~np.isin(y, (0.0, 1.0))].tolist()))[:5]}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError(f"y_prob must be probabilities in [0, 1], got values from {np.nanmin(p)!r} to "
                         f"{np.nanmax(p)!r}{' and NaN' if np.isnan(p).any() else ''}")
    n, events = int(y.size), int(y.sum())
    expected = float(p.sum())
    ratio = float(events / expected) if expected > 0 else float("nan")
    nan = float("nan")
    if events in (0, n):
        warnings.warn(f"calibration-in-the-large and slope undefined for a single-class sample ({n} patients, "
                      f"{events} events)", UndefinedStatisticWarning, stacklevel=2)
        return RecalibrationResult(n, events, ratio, nan, nan, nan, nan, nan, nan)
    lp = logit(p)
    ones = np.ones((n, 1))
    citl = float(fit_logistic(y, ones, offset=lp)[0])
    design = np.column_stack([np.ones(n), lp])
    slope_fit = fit_logistic(y, design)
    citl_se = slope_se = nan
    if np.isfinite(citl):
        fitted = special.expit(citl + lp)
        citl_se = float(1.0 / np.sqrt(np.sum(fitted * (1 - fitted))))
    if np.all(np.isfinite(slope_fit)):
        fitted = special.expit(design @ slope_fit)
        information = design.T @ (design * (fitted * (1 - fitted))[:, None])
        try:
            slope_se = float(np.sqrt(np.linalg.inv(information)[1, 1]))
        except np.linalg.LinAlgError:
            slope_se = nan
    slope = float(slope_fit[1])
    if not (np.isfinite(citl) and np.isfinite(slope)):
        warnings.warn("recalibration model did not converge (complete separation)", UndefinedStatisticWarning,
                      stacklevel=2)
    return RecalibrationResult(n, events, ratio, citl, *_wald(citl, citl_se), slope, *_wald(slope, slope_se))


@dataclass(frozen=True)
class CalibrationCurve:
    """Binned and smoothed calibration curve.

    Attributes
    ----------
    bins : DataFrame
        ``bin``, ``n``, ``mean_predicted``, ``observed``, ``observed_ci_low``,
        ``observed_ci_high`` (Wilson), one row per decile group of p.
    smooth : DataFrame
        ``predicted``, ``observed`` of a LOESS fit of y on p (span 0.75, degree 1, no
        robustness iterations; :func:`loess`), at 100 points spanning the predictions; for a
        model with fewer than ``MIN_LOESS_LEVELS`` distinct predictions (a points score, a
        staging system), the observed proportion at each distinct prediction instead.
    """

    bins: pd.DataFrame
    smooth: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.bins


#: below this many distinct predictions the smooth curve is the observed proportion at each
MIN_LOESS_LEVELS = 10


def calibration_curve(y_true, y_prob, *, n_groups: int = 10, span: float = 0.75) -> CalibrationCurve:
    """Observed event rate against mean prediction by deciles, plus a LOESS curve.

    Notes
    -----
    A model with a handful of distinct predictions (a 4-level clinical score, a 5-stage
    system) leaves LOESS nothing to smooth between its levels: each local line is fitted to
    two or three clusters and extrapolated across the gaps, so the curve dips and overshoots
    where no patient is (a 4-level score in 33 patients drew 0 observed risk at 0.3). With
    fewer than ``MIN_LOESS_LEVELS`` distinct predictions the curve is the observed proportion
    at each level, which is the nonparametric estimate such a model allows.

    References
    ----------
    Austin PC, Steyerberg EW. Stat Med 2014;33:517-535 (LOESS calibration curves).
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    groups = decile_groups(p, n_groups)
    rows = []
    for g in np.unique(groups):
        inside = groups == g
        n = int(inside.sum())
        rate, low, high = wilson_interval(int(y[inside].sum()), n)
        rows.append({"bin": int(g) + 1, "n": n, "mean_predicted": float(p[inside].mean()), "observed": rate,
                     "observed_ci_low": low, "observed_ci_high": high})
    bins = pd.DataFrame(rows, columns=["bin", "n", "mean_predicted", "observed", "observed_ci_low",
                                       "observed_ci_high"])
    levels = np.unique(p)
    if levels.size >= MIN_LOESS_LEVELS:
        grid = np.linspace(p.min(), p.max(), 100)
        smooth = pd.DataFrame({"predicted": grid, "observed": np.clip(loess(p, y, grid, span=span), 0.0, 1.0)})
    else:
        at = np.searchsorted(levels, p)
        observed = np.bincount(at, weights=y, minlength=levels.size) / np.bincount(at, minlength=levels.size)
        smooth = pd.DataFrame({"predicted": levels, "observed": observed})
    return CalibrationCurve(bins, smooth)


def loess(x, y, xvals, *, span: float = 0.75) -> np.ndarray:
    """Local linear regression of y on x with tricube weights, evaluated at ``xvals``.

    Each fit uses the k = floor(span * n) nearest observations, weighted (1 - (d / h)^3)^3 with h
    the distance to the k-th nearest; no robustness iterations. Equals statsmodels
    ``lowess(y, x, frac=span, it=0, xvals=...)`` and R ``lowess(x, y, f = span, iter = 0)``
    (checked in the tests); numpy only, to keep `dlr analyze` quick to start.

    References
    ----------
    Cleveland WS. JASA 1979;74:829-836. Austin PC, Steyerberg EW. Stat Med 2014;33:517-535.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xv = np.asarray(xvals, dtype=float)
    k = min(max(int(np.floor(span * x.size + 1e-10)), 2), x.size)
    dist = np.abs(xv[:, None] - x[None, :])
    h = np.partition(dist, k - 1, axis=1)[:, k - 1]
    h = np.where(h > 0, h, np.finfo(float).tiny)
    u = np.clip(dist / h[:, None], 0.0, 1.0)
    w = (1 - u**3) ** 3
    sw, swx, swy = w.sum(1), w @ x, w @ y
    swxx, swxy = w @ (x * x), w @ (x * y)
    mean_x, mean_y = swx / sw, swy / sw
    var = swxx / sw - mean_x**2
    spread = np.sqrt(np.maximum(var, 0.0))
    # a local fit whose x spread is negligible against the window falls back to the weighted mean
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(spread > 1e-12 * np.maximum(h, 1e-300), (swxy / sw - mean_x * mean_y) / var, 0.0)
    return mean_y + slope * (xv - mean_x)


#: quantile groups of :func:`grouped_calibration`: about this many patients per group ...
PATIENTS_PER_GROUP = 10
#: ... with at least this many groups and at most this many (deciles)
MIN_GROUPS, MAX_GROUPS = 3, 10
GROUP_COLUMNS = ["group", "n", "mean_predicted", "observed", "observed_ci_low", "observed_ci_high"]


def calibration_group_count(n: int) -> int:
    """Default number of quantile groups for a cohort of ``n`` patients.

    Notes
    -----
    g = floor(n / 10), clipped to [3, 10] (and to at most n): groups of at least 10 patients
    wherever the cohort has 30 or more (10 to 20 per group up to 109 patients, e.g. 3 groups
    of 11 for 33 patients rather than deciles of 3), deciles from 100 patients on, and never
    fewer than 3 groups, the least that shows a curve's shape. Smaller groups are not used
    because their observed proportions are mostly noise: with 10 patients and half of them
    events the 95% Wilson interval is already 0.24-0.76.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"calibration groups need at least one patient, got n = {n}")
    return int(min(n, np.clip(n // PATIENTS_PER_GROUP, MIN_GROUPS, MAX_GROUPS)))


@dataclass(frozen=True)
class GroupedCalibration:
    """Observed event rate against mean prediction in quantile groups of the predictions.

    Attributes
    ----------
    groups : DataFrame
        ``group`` (1, 2, ... in increasing risk; groups left empty by ties are dropped and
        the rest numbered consecutively), ``n``, ``mean_predicted``, ``observed`` (event
        proportion), ``observed_ci_low``, ``observed_ci_high`` (95% Wilson interval).
    n_groups : int
        Groups requested (fewer are returned when tied predictions merge quantile breaks).
    n, n_events : int
    """

    groups: pd.DataFrame
    n_groups: int
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return self.groups


def grouped_calibration(y_true, y_prob, *, n_groups: int | None = None) -> GroupedCalibration:
    """Calibration curve in quantile groups whose number follows the cohort size.

    Parameters
    ----------
    y_true : array-like of 0/1
    y_prob : array-like of float in [0, 1]
    n_groups : int, optional, keyword-only
        Number of quantile groups; default :func:`calibration_group_count` of the cohort size
        (floor(n / 10) clipped to 3-10: a 33-patient cohort gets 3 groups of 11, a 132-patient
        one deciles).

    Returns
    -------
    GroupedCalibration

    Notes
    -----
    Groups by the type-7 quantiles of p at 0, 1/g, ..., 1 (duplicate breaks dropped,
    right-closed, lowest included: :func:`decile_groups`, R ``cut(p, quantile(p, 0:g/g),
    include.lowest = TRUE)``); in each group the mean prediction, the observed proportion
    O/n and its Wilson interval (R ``prop.test(O, n, correct = FALSE)$conf.int``), as
    :func:`calibration_curve` does for deciles.

    References
    ----------
    Van Calster B et al. J Clin Epidemiol 2016;74:167-176. Steyerberg EW. Clinical Prediction
    Models, 2nd ed. Springer 2019. Wilson EB. JASA 1927;22:209-212.
    """
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if y.size != p.size:
        raise ValueError(f"y_true has {y.size} values and y_prob {p.size}; they must be the same patients")
    if y.size == 0:
        raise ValueError("grouped_calibration needs at least one patient, got none")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError(f"y_true must be 0/1, got {sorted(set(y[~np.isin(y, (0.0, 1.0))].tolist()))[:5]}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError(f"y_prob must be probabilities in [0, 1], got values from {np.nanmin(p)!r} to "
                         f"{np.nanmax(p)!r}{' and NaN' if np.isnan(p).any() else ''}")
    if n_groups is None:
        n_groups = calibration_group_count(y.size)
    elif isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
        raise ValueError(f"n_groups must be a positive integer, got {n_groups!r}")
    groups = decile_groups(p, int(n_groups))
    rows = []
    for k, g in enumerate(np.unique(groups), start=1):
        inside = groups == g
        n = int(inside.sum())
        rate, low, high = wilson_interval(int(y[inside].sum()), n)
        rows.append({"group": k, "n": n, "mean_predicted": float(p[inside].mean()), "observed": rate,
                     "observed_ci_low": low, "observed_ci_high": high})
    return GroupedCalibration(pd.DataFrame(rows, columns=GROUP_COLUMNS), int(n_groups), int(y.size), int(y.sum()))
