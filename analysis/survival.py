"""Survival extension of `dlr analyze` (contract section 5.1): Harrell's C, Kaplan-Meier curves of
the risk groups, the log-rank test, the Cox hazard ratio and the cumulative incidence at a horizon.

Times are any unit (time to recurrence or censoring); ``event`` is 1 = recurrence, 0 = censored.
Scores follow the predictions file's direction: a higher score means an earlier event. The risk
groups are ``high = score >= threshold`` with the development-cohort Youden threshold of
``performance.csv``, never re-chosen on the cohort analysed.

Every statistic matches R's survival package (checked to 1e-6 in tests/test_survival.py against
``tests/r/survival.R``):

- :func:`harrell_c`: ``concordance(Surv(time, event) ~ score, reverse = TRUE)`` (C and ``sqrt(var)``);
- :func:`kaplan_meier`: ``survfit(Surv(time, event) ~ 1)`` (``conf.type = "log"``, R's default);
- :func:`logrank_test`: ``survdiff(Surv(time, event) ~ group)``;
- :func:`cox_hazard_ratio`: ``coxph(Surv(time, event) ~ group)`` (``ties = "efron"``; Wald CI and p);
- the cumulative incidence: ``1 - summary(survfit(...), times = horizon)`` (surv, upper, lower).

As R does (``timefix = TRUE``), times closer than sqrt(machine epsilon), absolutely or relative to
their mean, are first made equal (:func:`aeq_times`, R's ``aeqSurv``).

Why not lifelines at run time: importing it costs about 0.55 s (scipy.stats, autograd, formulaic)
and one ``CoxPHFitter().fit`` about 0.19 s on 1,400 patients, which would nearly double a
2-second `dlr analyze`; the statistics here are a few vectorised lines each. lifelines'
``KaplanMeierFitter``, ``logrank_test`` and ``CoxPHFitter`` check them in the tests, beside R.
(lifelines' own KM band is the log-log one; R's default, used here, is the log band.)

``survival.csv`` has contract 5.1's columns (:data:`SURVIVAL_COLUMNS`), then these added ones:

- ``horizon``: the time at which the cumulative incidence is read (``--horizon``, default 24).
- ``cuminc_high``, ``cuminc_high_ci_low``, ``cuminc_high_ci_high``: 1 - KM(horizon) of the
  high-risk group with the complement of the KM log band (95%).
- ``cuminc_low``, ``cuminc_low_ci_low``, ``cuminc_low_ci_high``: the same for the low-risk group.

``km_curve.csv``: ``cohort, model, group`` (``high``/``low``), ``time`` (0, then every distinct
time of the group), ``survival``, ``ci_low``, ``ci_high`` (95% log band), ``at_risk`` (patients
with time >= ``time``).
"""
from __future__ import annotations

import bisect
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import UndefinedStatisticWarning

#: contract 5.1's columns of survival.csv, then the cumulative incidence at the horizon
SURVIVAL_COLUMNS = [
    "model", "cohort", "n", "n_events", "threshold", "n_high", "c_index", "c_index_se", "logrank_chi2",
    "logrank_p", "hr", "hr_ci_low", "hr_ci_high", "hr_p",
    "horizon", "cuminc_high", "cuminc_high_ci_low", "cuminc_high_ci_high", "cuminc_low", "cuminc_low_ci_low",
    "cuminc_low_ci_high",
]
KM_COLUMNS = ["cohort", "model", "group", "time", "survival", "ci_low", "ci_high", "at_risk", "n_events"]
#: the default horizon of the cumulative incidence (time units of the predictions file)
DEFAULT_HORIZON = 24.0

_NAN = float("nan")


def _z(level: float) -> float:
    return float(special.ndtri(0.5 + level / 2))


def _arrays(time, event, *others):
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    if t.ndim != 1 or e.shape != t.shape or any(np.shape(o) != t.shape for o in others):
        raise ValueError(f"time, event and the other arrays must be 1-D of equal length, got {t.shape}, "
                         f"{e.shape} and {[np.shape(o) for o in others]}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("time must hold finite values >= 0")
    labels = set(np.unique(e).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"event must hold only 0 and 1, found {sorted(labels)}")
    return t, e.astype(int)


def aeq_times(time) -> np.ndarray:
    """Times that differ by less than sqrt(machine epsilon), absolutely or relative to the mean of
    the distinct times, made equal (to the smallest of their run), as R's ``aeqSurv``.

    R's survival functions do this by default (``timefix = TRUE``) so that times computed by
    floating-point arithmetic (e.g. days / 30.4375) that should tie do tie.
    """
    t = np.asarray(time, dtype=float)
    y = np.unique(t[np.isfinite(t)])
    if y.size < 2:
        return t
    tol = np.sqrt(np.finfo(float).eps)
    dy = np.diff(y)
    tied = (dy <= tol) | (dy / np.mean(np.abs(y)) <= tol)
    if not tied.any():
        return t
    cuts = y[np.concatenate([[True], ~tied])]
    return cuts[np.searchsorted(cuts, t, side="right") - 1]  # R: cuts[findInterval(t, cuts)]


# --------------------------------------------------------------------------- Harrell's C


@dataclass(frozen=True)
class ConcordanceResult:
    """Harrell's C of a risk score (higher = earlier event) with its standard error.

    Attributes
    ----------
    estimate : float
        (concordant + tied_score / 2) / (concordant + discordant + tied_score).
    se : float
        Infinitesimal-jackknife standard error (R's ``sqrt(concordance(...)$var)``).
    concordant, discordant, tied_score : int
        Comparable pairs (the earlier time is an event) in which the earlier event has the higher,
        the lower or the same score.
    tied_time : int
        Pairs of events at the same time (not comparable).
    n, n_events : int
    """

    estimate: float
    se: float
    concordant: int
    discordant: int
    tied_score: int
    tied_time: int
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def harrell_c(time, event, score) -> ConcordanceResult:
    """Harrell's concordance index with the infinitesimal-jackknife standard error.

    Parameters
    ----------
    time : array of float >= 0
        Time to the event or to censoring.
    event : array of 0/1
        1 = event, 0 = censored.
    score : array of float
        Risk score, higher = earlier event expected.

    Returns
    -------
    ConcordanceResult
        NaN (with an ``UndefinedStatisticWarning``) when no pair is comparable (no event, or
        every event at the last time).

    Notes
    -----
    A pair (i, j) is comparable when i has an event and j is still at risk after it: t_j > t_i,
    or t_j = t_i with j censored (censoring tied with an event counts as later). It is
    concordant when s_i > s_j, discordant when s_i < s_j, tied on the score when s_i = s_j; two
    events at the same time are not comparable. With C_k, D_k and T_k the concordant,
    discordant and score-tied pairs that patient k belongs to, N = C + D + T pairs and Somers'
    d = (C - D) / N, the influence of patient k is

        dfbeta_k = (C_k - D_k) / N - d (C_k + D_k + T_k) / N,

    var(C) = sum_k dfbeta_k^2 / 4 and C = (d + 1) / 2. Counted in O(n log n) by sweeping the
    times with a sorted list of the scores. Matches R's survival
    ``concordance(Surv(time, event) ~ score, reverse = TRUE)`` (``timewt = "n"``, its default;
    the infinitesimal jackknife is R's ``var``), after :func:`aeq_times` as R's ``timefix``.

    References
    ----------
    Harrell FE, Califf RM, Pryor DB, Lee KL, Rosati RA. Evaluating the yield of medical tests.
    JAMA 1982;247:2543-2546.
    Therneau TM, Atkinson EJ. Concordance. Vignette of the R package survival (2023).
    """
    t, e = _arrays(time, event, score)
    s = np.asarray(score, dtype=float)
    t = aeq_times(t)
    n = t.size
    conc, disc, tie = (np.zeros(n) for _ in range(3))
    # ascending (time, censored): at one time, events before the censored, who count as later
    order = np.lexsort((1 - e, t))
    key_t, key_c = t[order], 1 - e[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(key_t) != 0) | (np.diff(key_c) != 0)])
    groups = np.split(order, starts[1:]) if n else []
    group_is_event = [bool(e[g[0]]) for g in groups]
    scores = s.tolist()

    # the earlier member: each event against everyone later (sweep from the last time back)
    later: list = []
    for g, is_event in zip(reversed(groups), reversed(group_is_event)):
        if is_event:
            for i in g:
                lo, hi = bisect.bisect_left(later, scores[i]), bisect.bisect_right(later, scores[i])
                conc[i] += lo
                tie[i] += hi - lo
                disc[i] += len(later) - hi
        for i in g:
            bisect.insort(later, scores[i])
    # the later member: each patient against the events before it (sweep forward)
    earlier_events: list = []
    for g, is_event in zip(groups, group_is_event):
        for j in g:
            lo, hi = bisect.bisect_left(earlier_events, scores[j]), bisect.bisect_right(earlier_events, scores[j])
            disc[j] += lo  # the earlier event scored lower
            tie[j] += hi - lo
            conc[j] += len(earlier_events) - hi
        if is_event:
            for j in g:
                bisect.insort(earlier_events, scores[j])

    n_events = int(e.sum())
    sizes = np.array([len(g) for g, ev in zip(groups, group_is_event) if ev], dtype=float)
    tied_time = int(np.sum(sizes * (sizes - 1) / 2))
    c, d, ts = (int(round(x.sum() / 2)) for x in (conc, disc, tie))
    pairs = c + d + ts
    if pairs == 0:
        warnings.warn(f"Harrell's C undefined: no comparable pair ({n_events} events in {n} patients)",
                      UndefinedStatisticWarning, stacklevel=2)
        return ConcordanceResult(_NAN, _NAN, c, d, ts, tied_time, n, n_events)
    somers = (c - d) / pairs
    dfbeta = (conc - disc) / pairs - somers / pairs * (conc + disc + tie)
    return ConcordanceResult((somers + 1) / 2, float(np.sqrt(np.sum(dfbeta**2) / 4)), c, d, ts, tied_time,
                             n, n_events)


# --------------------------------------------------------------------------- Kaplan-Meier


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier curve of one group with its log-transformed 95% band.

    Attributes
    ----------
    time : ndarray
        0 (unless a patient has time 0), then every distinct time (events and censorings), ascending.
    survival, ci_low, ci_high : ndarray
        S(t) just after each time and its band (NaN where S = 0).
    at_risk, n_events : ndarray
        Patients with time >= t, and events at t.
    n : int
    level : float
    """

    time: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    at_risk: np.ndarray
    n_events: np.ndarray
    n: int
    level: float = 0.95

    def at(self, t: float) -> tuple[float, float, float]:
        """(S, ci_low, ci_high) at time ``t``: the values of the last time <= t, as R's
        ``summary(fit, times = t)``; NaN after the last time (R drops such times)."""
        if self.n == 0 or t > self.time[-1] or t < 0:
            return _NAN, _NAN, _NAN
        k = int(np.searchsorted(self.time, t, side="right") - 1)
        return float(self.survival[k]), float(self.ci_low[k]), float(self.ci_high[k])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"time": self.time, "survival": self.survival, "ci_low": self.ci_low,
                             "ci_high": self.ci_high, "at_risk": self.at_risk, "n_events": self.n_events})


def kaplan_meier(time, event, *, level: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood's variance and the log-transformed confidence band.

    Parameters
    ----------
    time : array of float >= 0
    event : array of 0/1 (1 = event)
    level : float, keyword-only
        Confidence level of the band.

    Returns
    -------
    KaplanMeier
        With a row at time 0 (S = 1, band 1 to 1) before the distinct times.

    Notes
    -----
    S(t) = prod_{t_k <= t} (1 - d_k / n_k); se(log S) = sqrt(sum_{t_k <= t} d_k / (n_k (n_k - d_k)))
    (Greenwood); band exp(log S -/+ z se), the upper end capped at 1: R's
    ``survfit(Surv(time, event) ~ 1)`` with its default ``conf.type = "log"`` (lifelines'
    ``KaplanMeierFitter`` band is the log-log one). Where S = 0 the band is NaN, as R's NA.

    References
    ----------
    Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc
    1958;53:457-481. Greenwood M. Reports on Public Health and Medical Subjects 33, 1926.
    """
    t, e = _arrays(time, event)
    t = aeq_times(t)
    times, index = np.unique(t, return_inverse=True)
    removed = np.bincount(index, minlength=times.size).astype(float)
    deaths = np.bincount(index, weights=e, minlength=times.size)
    at_risk = t.size - np.concatenate([[0.0], np.cumsum(removed)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - deaths / at_risk)
        greenwood = np.cumsum(np.where(deaths > 0, deaths / (at_risk * (at_risk - deaths)), 0.0))
        se = np.sqrt(greenwood)
        z = _z(level)
        positive = survival > 0
        log_s = np.log(np.where(positive, survival, 1.0))
        low = np.where(positive, np.exp(log_s - z * se), np.nan)
        high = np.where(positive, np.minimum(np.exp(log_s + z * se), 1.0), np.nan)
    if times.size and times[0] == 0:  # events or censoring at time 0 already make the first row
        return KaplanMeier(times, survival, low, high, at_risk.astype(int), deaths.astype(int), int(t.size), level)
    return KaplanMeier(np.r_[0.0, times], np.r_[1.0, survival], np.r_[1.0, low], np.r_[1.0, high],
                       np.r_[float(t.size), at_risk].astype(int), np.r_[0.0, deaths].astype(int), int(t.size), level)


def _event_table(t: np.ndarray, e: np.ndarray, group: np.ndarray):
    """(n at risk, deaths, n at risk in group 1, deaths in group 1) at each distinct event time."""
    order = np.argsort(t, kind="mergesort")
    t, e, g = t[order], e[order], group[order]
    times, first = np.unique(t, return_index=True)
    index = np.searchsorted(times, t)
    deaths = np.bincount(index, weights=e, minlength=times.size)
    deaths1 = np.bincount(index, weights=e * g, minlength=times.size)
    n_risk = t.size - first  # sorted: patients from the first of this time on
    n_risk1 = np.cumsum(g[::-1])[::-1][first]
    keep = deaths > 0
    return n_risk[keep].astype(float), deaths[keep], n_risk1[keep].astype(float), deaths1[keep]


# --------------------------------------------------------------------------- log-rank


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank test of two groups.

    Attributes
    ----------
    statistic : float
        Chi-squared, (O - E)^2 / V of group 1.
    df : int
        1.
    p_value : float
    observed, expected : float
        Events in group 1 and their expectation under equal hazards.
    """

    statistic: float
    df: int
    p_value: float
    observed: float
    expected: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def logrank_test(time, event, group) -> LogRankResult:
    """Log-rank (Mantel-Haenszel) test of equal hazards in two groups.

    Parameters
    ----------
    time : array of float >= 0
    event : array of 0/1
    group : array of 0/1 or bool (1 = e.g. the high-risk group)

    Returns
    -------
    LogRankResult
        NaN (with an ``UndefinedStatisticWarning``) when a group is empty or the variance is 0
        (e.g. no event).

    Notes
    -----
    At each distinct event time k, with n_k at risk, d_k events, n_1k at risk in group 1:
    E = sum d_k n_1k / n_k, V = sum d_k (n_1k / n_k)(1 - n_1k / n_k)(n_k - d_k) / (n_k - 1);
    chi2 = (O_1 - E)^2 / V on 1 df. Matches R's ``survdiff(Surv(time, event) ~ group)``
    (``rho = 0``; ``$chisq``, and ``pchisq(chisq, 1, lower.tail = FALSE)``) and lifelines'
    ``logrank_test``.

    References
    ----------
    Mantel N. Evaluation of survival data and two new rank order statistics arising in its
    consideration. Cancer Chemother Rep 1966;50:163-170. Peto R, Peto J. J R Stat Soc A 1972;135:185-207.
    """
    t, e = _arrays(time, event, group)
    g = np.asarray(group).astype(int)
    t = aeq_times(t)
    if g.sum() == 0 or g.sum() == g.size:
        warnings.warn(f"log-rank test undefined: one group is empty ({int(g.sum())} of {g.size} patients in group 1)",
                      UndefinedStatisticWarning, stacklevel=2)
        return LogRankResult(_NAN, 1, _NAN, float(np.sum(e * g)), _NAN)
    n, d, n1, d1 = _event_table(t, e, g)
    expected = float(np.sum(d * n1 / n))
    with np.errstate(divide="ignore", invalid="ignore"):
        var = float(np.sum(np.where(n > 1, d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1), 0.0)))
    observed = float(d1.sum())
    if not var > 0:
        warnings.warn(f"log-rank test undefined: zero variance ({int(e.sum())} events)", UndefinedStatisticWarning,
                      stacklevel=2)
        return LogRankResult(_NAN, 1, _NAN, observed, expected)
    chi2 = (observed - expected) ** 2 / var
    return LogRankResult(chi2, 1, float(special.chdtrc(1, chi2)), observed, expected)


# --------------------------------------------------------------------------- Cox


@dataclass(frozen=True)
class HazardRatio:
    """Cox proportional-hazards model of one covariate.

    Attributes
    ----------
    estimate, ci_low, ci_high : float
        exp(beta) and its Wald CI exp(beta -/+ z se).
    p_value : float
        Wald two-sided p.
    coef, se : float
        beta and its standard error (inverse observed information).
    loglik : float
        Efron log partial likelihood at beta.
    iterations : int
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    coef: float
    se: float
    loglik: float
    iterations: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def _efron(beta: float, t_sorted_groups, x: np.ndarray):
    """Efron log partial likelihood, score and information of one covariate at ``beta``."""
    at_risk_index, death_rows, death_time_index, fraction = t_sorted_groups
    with np.errstate(over="ignore"):
        w = np.exp(beta * x)
    # risk-set sums at each distinct event time: patients with time >= t (reverse cumulative sums)
    s0 = np.cumsum((w)[::-1])[::-1][at_risk_index]
    s1 = np.cumsum((w * x)[::-1])[::-1][at_risk_index]
    s2 = np.cumsum((w * x * x)[::-1])[::-1][at_risk_index]
    xd, wd = x[death_rows], w[death_rows]
    d0 = np.bincount(death_time_index, weights=wd, minlength=s0.size)
    d1 = np.bincount(death_time_index, weights=wd * xd, minlength=s0.size)
    d2 = np.bincount(death_time_index, weights=wd * xd * xd, minlength=s0.size)
    k = death_time_index
    a0 = s0[k] - fraction * d0[k]
    a1 = s1[k] - fraction * d1[k]
    a2 = s2[k] - fraction * d2[k]
    mean = a1 / a0
    loglik = float(beta * xd.sum() - np.sum(np.log(a0)))
    score = float(xd.sum() - mean.sum())
    information = float(np.sum(a2 / a0 - mean**2))
    return loglik, score, information


def cox_hazard_ratio(time, event, x, *, level: float = 0.95, max_iter: int = 30) -> HazardRatio:
    """Hazard ratio of a Cox model with one covariate (e.g. high vs low risk), Efron's ties.

    Parameters
    ----------
    time : array of float >= 0
    event : array of 0/1
    x : array of float (0/1 for a group)
    level : float, keyword-only
        Confidence level of the Wald interval.
    max_iter : int, keyword-only
        Newton-Raphson iterations at most.

    Returns
    -------
    HazardRatio
        NaN (with an ``UndefinedStatisticWarning``) when ``x`` is constant, there is no event, or
        the estimate is infinite (monotone likelihood: every event has the largest, or every one
        the smallest, covariate of its risk set, e.g. a group without events; R then warns and
        reports a huge HR).

    Notes
    -----
    At an event time with d tied events D and risk set R, Efron's approximation gives the
    log partial likelihood sum_D beta x - sum_{l=0}^{d-1} log(S0_R - l/d S0_D), with
    S0 = sum exp(beta x); Newton-Raphson from beta = 0 with step halving, until the step is
    below 1e-12 (R's ``coxph`` stops at a relative log-likelihood change of 1e-9, a few Newton
    steps earlier; the estimates agree far beyond 1e-6). se = I(beta)^-1/2; Wald CI and p.
    Matches R's ``coxph(Surv(time, event) ~ x)`` (``ties = "efron"``, its default) and
    lifelines' ``CoxPHFitter``.

    References
    ----------
    Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187-220.
    Efron B. The efficiency of Cox's likelihood function for censored data. J Am Stat Assoc
    1977;72:557-565.
    """
    t, e = _arrays(time, event, x)
    x = np.asarray(x, dtype=float)
    t = aeq_times(t)

    def undefined(why):
        warnings.warn(f"hazard ratio undefined: {why}", UndefinedStatisticWarning, stacklevel=3)
        return HazardRatio(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0)

    if e.sum() == 0:
        return undefined("no event")
    if np.all(x == x[0]):
        return undefined(f"the covariate is constant ({x[0]:g} for all {x.size} patients)")
    order = np.argsort(t, kind="mergesort")
    t, e, x = t[order], e[order], x[order]
    times, first = np.unique(t, return_index=True)
    index = np.searchsorted(times, t)
    death_rows = np.flatnonzero(e == 1)
    event_times, death_time_index = np.unique(index[death_rows], return_inverse=True)
    # l / d for the l-th (0-based) of the d events tied at a time
    d_per_time = np.bincount(death_time_index)
    rank_in_tie = np.arange(death_rows.size) - np.r_[0, np.cumsum(d_per_time)[:-1]][death_time_index]
    fraction = rank_in_tie / d_per_time[death_time_index]
    groups = (first[event_times], death_rows, death_time_index, fraction)
    # monotone likelihood: every event has the largest (or every one the smallest) covariate of its
    # risk set, so the likelihood rises for ever towards beta = +inf (-inf); R warns and reports a
    # huge ratio, here it is undefined
    risk_max = np.maximum.accumulate(x[::-1])[::-1][first[index[death_rows]]]
    risk_min = np.minimum.accumulate(x[::-1])[::-1][first[index[death_rows]]]
    xd = x[death_rows]
    if np.all(xd == risk_max) or np.all(xd == risk_min):
        side = "largest" if np.all(xd == risk_max) else "smallest"
        return undefined(f"the estimate is infinite: every event has the {side} covariate of those at risk "
                         f"(e.g. no event in one group)")

    beta, iterations = 0.0, 0
    loglik, score, info = _efron(beta, groups, x)
    for iterations in range(1, max_iter + 1):
        if not info > 0:
            return undefined("the information is zero")
        step = score / info
        new = beta + step
        new_loglik, new_score, new_info = _efron(new, groups, x)
        halvings = 0
        while not new_loglik >= loglik - 1e-12 * abs(loglik) and halvings < 30:  # step halving
            step /= 2
            new = beta + step
            new_loglik, new_score, new_info = _efron(new, groups, x)
            halvings += 1
        beta, loglik, score, info = new, new_loglik, new_score, new_info
        if abs(step) < 1e-12 * max(1.0, abs(beta)):
            break
    se = 1.0 / np.sqrt(info)
    z = _z(level)
    p = float(2 * special.ndtr(-abs(beta / se)))
    return HazardRatio(float(np.exp(beta)), float(np.exp(beta - z * se)), float(np.exp(beta + z * se)), p,
                       float(beta), float(se), loglik, iterations)


# --------------------------------------------------------------------------- risk groups


@dataclass(frozen=True)
class RiskGroupSurvival:
    """Survival of the risk groups a development-cohort threshold makes in one cohort.

    Attributes
    ----------
    n, n_events, n_high : int
        Patients, events, patients with score >= threshold.
    threshold, horizon : float
    concordance : ConcordanceResult
        Harrell's C of the continuous score.
    logrank : LogRankResult
        High vs low risk.
    hazard_ratio : HazardRatio
        Of the high-risk group (Cox, Efron's ties, Wald CI).
    km_high, km_low : KaplanMeier
        The groups' curves (``n`` = 0 for an empty group).
    cuminc_high, cuminc_low : tuple (estimate, ci_low, ci_high)
        1 - S(horizon) with the complement of the KM band.
    """

    n: int
    n_events: int
    threshold: float
    n_high: int
    horizon: float
    concordance: ConcordanceResult
    logrank: LogRankResult
    hazard_ratio: HazardRatio
    km_high: KaplanMeier = field(repr=False)
    km_low: KaplanMeier = field(repr=False)
    cuminc_high: tuple = (_NAN, _NAN, _NAN)
    cuminc_low: tuple = (_NAN, _NAN, _NAN)

    def row(self) -> dict:
        """The statistics of one ``survival.csv`` row (without ``model`` and ``cohort``)."""
        c, lr, hr = self.concordance, self.logrank, self.hazard_ratio
        return {"n": self.n, "n_events": self.n_events, "threshold": self.threshold, "n_high": self.n_high,
                "c_index": c.estimate, "c_index_se": c.se, "logrank_chi2": lr.statistic, "logrank_p": lr.p_value,
                "hr": hr.estimate, "hr_ci_low": hr.ci_low, "hr_ci_high": hr.ci_high, "hr_p": hr.p_value,
                "horizon": self.horizon,
                "cuminc_high": self.cuminc_high[0], "cuminc_high_ci_low": self.cuminc_high[1],
                "cuminc_high_ci_high": self.cuminc_high[2],
                "cuminc_low": self.cuminc_low[0], "cuminc_low_ci_low": self.cuminc_low[1],
                "cuminc_low_ci_high": self.cuminc_low[2]}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.row()])

    def curve_frame(self) -> pd.DataFrame:
        """Both curves, ``group`` = ``high`` / ``low`` (the ``km_curve.csv`` rows without cohort, model)."""
        frames = [km.to_frame().assign(group=name) for name, km in (("high", self.km_high), ("low", self.km_low))
                  if km.n > 0]
        columns = ["group", "time", "survival", "ci_low", "ci_high", "at_risk", "n_events"]
        return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _cumulative_incidence(km: KaplanMeier, horizon: float, name: str) -> tuple:
    if km.n == 0:
        return (_NAN, _NAN, _NAN)
    s, low, high = km.at(horizon)
    if not np.isfinite(s):
        warnings.warn(f"cumulative incidence at {horizon:g} undefined for the {name}-risk group: its follow-up "
                      f"ends at {km.time[-1]:g}", UndefinedStatisticWarning, stacklevel=3)
    return (1.0 - s, 1.0 - high, 1.0 - low)


def risk_group_survival(time, event, score, threshold: float, *, horizon: float = DEFAULT_HORIZON,
                        level: float = 0.95) -> RiskGroupSurvival:
    """Every survival statistic of one model in one cohort (one row of ``survival.csv``).

    Parameters
    ----------
    time, event : arrays
        Time to recurrence or censoring (>= 0) and 1 = recurrence, 0 = censored.
    score : array of float
        The model's score, higher = earlier recurrence.
    threshold : float
        The development-cohort threshold; high risk = ``score >= threshold``.
    horizon : float, keyword-only
        Time of the cumulative incidence (R: ``summary(survfit(...), times = horizon)``).
    level : float, keyword-only
        Confidence level of every interval.

    Returns
    -------
    RiskGroupSurvival
        Undefined statistics (one group empty, no event, a group without events for the hazard
        ratio, a horizon beyond a group's follow-up) are NaN with an ``UndefinedStatisticWarning``.

    Notes
    -----
    :func:`harrell_c` of the score; :func:`kaplan_meier` of each group; :func:`logrank_test` and
    :func:`cox_hazard_ratio` of ``high``; cumulative incidence 1 - S(horizon), CI (1 - upper,
    1 - lower) of the KM log band. R: ``concordance(..., reverse = TRUE)``, ``survfit``,
    ``survdiff``, ``coxph`` of ``Surv(time, event) ~ high``.

    References
    ----------
    Harrell FE et al. JAMA 1982;247:2543-2546. Kaplan EL, Meier P. JASA 1958;53:457-481.
    Mantel N. Cancer Chemother Rep 1966;50:163-170. Cox DR. J R Stat Soc B 1972;34:187-220.
    """
    t, e = _arrays(time, event, score)
    s = np.asarray(score, dtype=float)
    t = aeq_times(t)  # once, on the whole cohort, as R does on the data it is given
    high = s >= threshold
    n_high = int(high.sum())
    km_high, km_low = kaplan_meier(t[high], e[high], level=level), kaplan_meier(t[~high], e[~high], level=level)
    concordance = harrell_c(t, e, s)
    if n_high in (0, t.size):
        warnings.warn(f"risk groups undefined: {n_high} of {t.size} patients score >= the threshold {threshold:g}; "
                      f"no log-rank test or hazard ratio", UndefinedStatisticWarning, stacklevel=2)
        logrank = LogRankResult(_NAN, 1, _NAN, float(e[high].sum()), _NAN)
        hazard = HazardRatio(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0)
    else:
        logrank = logrank_test(t, e, high)
        hazard = cox_hazard_ratio(t, e, high.astype(float), level=level)
    return RiskGroupSurvival(int(t.size), int(e.sum()), float(threshold), n_high, float(horizon), concordance,
                             logrank, hazard, km_high, km_low, _cumulative_incidence(km_high, horizon, "high"),
                             _cumulative_incidence(km_low, horizon, "low"))


def saved_risk_groups(row, curves: pd.DataFrame) -> RiskGroupSurvival:
    """A :class:`RiskGroupSurvival` read back from its ``survival.csv`` row and its cohort's and
    model's ``km_curve.csv`` rows (``group`` high / low): the inverse of :meth:`RiskGroupSurvival.row`
    and :meth:`~RiskGroupSurvival.curve_frame`, for figures drawn from saved results.

    What the files do not hold is NaN (floats) or -1 (counts): the concordance's pair counts, the
    log-rank test's observed and expected events, the Cox model's coefficient, SE, log likelihood
    and iterations. A group without rows is an empty curve (``n`` = 0). Without an ``n_events``
    column (results written before it was) every drop of the number at risk is taken as events,
    so no patient is drawn as censored."""
    def curve(group: str, n: int) -> KaplanMeier:
        rows = curves[curves["group"] == group].sort_values("time", kind="stable")
        at_risk = rows["at_risk"].to_numpy(dtype=float)
        if "n_events" in rows and rows["n_events"].notna().all():
            events = rows["n_events"].to_numpy(dtype=float)
        else:
            events = at_risk - np.r_[at_risk[1:], 0.0][: at_risk.size]
        return KaplanMeier(rows["time"].to_numpy(dtype=float), rows["survival"].to_numpy(dtype=float),
                           rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float), at_risk,
                           events, int(n) if len(rows) else 0)

    def value(name: str) -> float:
        return float(row[name]) if name in row and row[name] is not None else _NAN

    n, n_high = int(row["n"]), int(row["n_high"])
    concordance = ConcordanceResult(value("c_index"), value("c_index_se"), -1, -1, -1, -1, n, int(row["n_events"]))
    logrank = LogRankResult(value("logrank_chi2"), 1, value("logrank_p"), _NAN, _NAN)
    hazard = HazardRatio(value("hr"), value("hr_ci_low"), value("hr_ci_high"), value("hr_p"), _NAN, _NAN, _NAN, -1)
    return RiskGroupSurvival(n, int(row["n_events"]), value("threshold"), n_high, value("horizon"), concordance,
                             logrank, hazard, curve("high", n_high), curve("low", n - n_high),
                             tuple(value(f"cuminc_high{s}") for s in ("", "_ci_low", "_ci_high")),
                             tuple(value(f"cuminc_low{s}") for s in ("", "_ci_low", "_ci_high")))
