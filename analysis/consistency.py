"""Whether statistics a paper reports are possible together (the reviewer's arithmetic).

Each function takes numbers as a paper prints them, each with the rounding its printed digits
imply (:class:`Printed`), and returns a frozen result with the verdict, what was expected and
the arithmetic in words. A check is *inconsistent* only when no set of true values that round
to the printed ones satisfies it; where the printed numbers cannot decide, it says *cannot
tell*. The checks are those of the GRIM family (Brown & Heathers 2017) carried over to
prediction-model statistics: AUCs with their CIs and standard errors, 2 x 2 tables, DeLong
tests, odds ratios, percentages.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from .discrimination import _upper_tail

CONSISTENT, INCONSISTENT, CANNOT_TELL = "consistent", "inconsistent", "cannot tell"

#: two-sided 95% normal quantile, the CIs' usual multiplier
Z95 = float(special.ndtri(0.975))

#: the exact search for the DeLong variance's extremes costs ~(cases x controls)^2 operations
MAX_EXACT_PAIRS = 40_000

_EPS = 1e-9


@dataclass(frozen=True)
class Printed:
    """A number as printed: its value and the half-unit of its last digit.

    ``Printed.parse("0.630")`` is 0.630 +- 0.0005: any true value in [0.6295, 0.6305] prints so.
    ``bound`` is ``"<"`` or ``">"`` for a printed inequality (``P < 0.001``).
    """

    value: float
    decimals: int
    bound: str = ""

    @classmethod
    def parse(cls, text, *, decimals: int | None = None) -> "Printed":
        """Read ``"0.630"``, ``"<0.001"``, ``"88.5%"`` (a percent, kept on its printed scale)."""
        raw = str(text).strip().replace("\u2212", "-").replace(" ", "")
        bound = ""
        if raw[:1] in "<>\u2264\u2265":
            bound = {"\u2264": "<", "\u2265": ">"}.get(raw[0], raw[0])
            raw = raw[1:].lstrip("=")
        raw = raw.rstrip("%")
        if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)", raw):
            raise ValueError(f"{text!r} is not a number")
        digits = len(raw.split(".")[1]) if "." in raw else 0
        return cls(float(raw), digits if decimals is None else int(decimals), bound)

    @property
    def half_unit(self) -> float:
        return 0.5 * 10.0 ** (-self.decimals)

    @property
    def low(self) -> float:
        """The smallest true value that prints as this (0 for ``< x``)."""
        if self.bound == "<":
            return -math.inf
        return self.value - self.half_unit - _EPS

    @property
    def high(self) -> float:
        if self.bound == ">":
            return math.inf
        return self.value + self.half_unit + _EPS

    def contains(self, x: float) -> bool:
        """Whether a true value ``x`` prints as this."""
        if self.bound == "<":
            return x < self.value + _EPS
        if self.bound == ">":
            return x > self.value - _EPS
        return self.low <= x <= self.high

    def overlaps(self, low: float, high: float) -> bool:
        """Whether some true value in [low, high] prints as this."""
        if self.bound == "<":
            return low < self.value + _EPS
        if self.bound == ">":
            return high > self.value - _EPS
        return low <= self.high and high >= self.low

    def __str__(self) -> str:
        return f"{self.bound}{self.value:.{self.decimals}f}"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``verdict`` with the ``expected`` value or range and ``reason``
    (the arithmetic, in words a referee can paste)."""

    check: str
    verdict: str
    expected: str
    reason: str


def _fmt(x: float, digits: int = 3) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


# -- an estimate and its confidence interval --------------------------------------------------

def check_within_ci(estimate: Printed, low: Printed, high: Printed) -> Check:
    """The estimate lies inside its own CI (and the CI's ends are in order)."""
    if low.value > high.value:
        return Check("estimate within its CI", INCONSISTENT, f"{low} <= {high}",
                     f"the CI's lower end {low} exceeds its upper end {high}")
    if estimate.high < low.low or estimate.low > high.high:
        return Check("estimate within its CI", INCONSISTENT, f"{low} <= estimate <= {high}",
                     f"{estimate} lies outside its own CI {low}-{high}")
    return Check("estimate within its CI", CONSISTENT, f"{low} <= estimate <= {high}", f"{low} <= {estimate} <= {high}")


def check_symmetric_ci(estimate: Printed, low: Printed, high: Printed, *, method: str, log: bool = False,
                       bounds: tuple = (0.0, 1.0)) -> Check:
    """A CI that its method makes symmetric is symmetric, within the printed rounding.

    A DeLong (Wald) CI of an AUC is estimate +- z SE, cut at 0 and 1 as pROC's ``ci.auc`` does;
    a Wald CI of an odds ratio is symmetric on the log scale (``log=True``). A cut side is
    not compared.

    Notes
    -----
    The difference (high - estimate) - (estimate - low) = high + low - 2 estimate is known to
    within the sum of the three numbers' rounding (2 half-units per end, 4 for the estimate).
    """
    name = "CI symmetric on the log scale" if log else "CI symmetric about the estimate"
    f = math.log if log else (lambda v: v)
    try:
        lo = f(high.low) + f(low.low) - 2 * f(estimate.high)
        hi = f(high.high) + f(low.high) - 2 * f(estimate.low)
    except ValueError:
        return Check(name, CANNOT_TELL, "", "a non-positive value has no logarithm")
    printed = f(high.value) + f(low.value) - 2 * f(estimate.value)
    if not log and (high.high >= bounds[1] or low.low <= bounds[0]):
        return Check(name, CONSISTENT, "", f"the CI is cut at {bounds[0]:g} or {bounds[1]:g}: its sides need not match")
    if lo <= 0 <= hi:
        return Check(name, CONSISTENT, "0 within rounding",
                     f"{'log ' if log else ''}upper minus lower half-width is {printed:+.4f}, within the rounding "
                     f"({lo:+.4f} to {hi:+.4f})")
    unit = "log units" if log else "units"
    return Check(name, INCONSISTENT, "0 within rounding",
                 f"a {method} CI is symmetric{' on the log scale' if log else ''}, but {high} - {estimate} and {estimate} - "
                 f"{low} differ by {printed:+.4f} {unit}, more than rounding allows ({lo:+.4f} to {hi:+.4f})")


# -- the AUC ----------------------------------------------------------------------------------

def hanley_mcneil_se(auc: float, n_cases: int, n_controls: int) -> float:
    """Standard error of an AUC from Hanley & McNeil (1982), Q1 = A/(2-A), Q2 = 2A^2/(1+A).

    The usual value for a binormal-like score; not a bound.

    References
    ----------
    Hanley JA, McNeil BJ. The meaning and use of the area under a ROC curve. Radiology 1982.
    """
    a = auc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_cases - 1) * (q1 - a * a) + (n_controls - 1) * (q2 - a * a)) / (n_cases * n_controls)
    return math.sqrt(max(var, 0.0))


@lru_cache(maxsize=32)
def delong_variance_extremes(n_cases: int, n_controls: int) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest DeLong variance any untied ranking can have, per AUC.

    Returns ``(lowest, highest)``, arrays indexed by K = 0 .. cases x controls: the extremes of
    pROC's DeLong variance over every ordering of ``n_cases`` cases and ``n_controls`` controls
    whose Mann-Whitney count is K (AUC = K / (cases x controls)).

    Notes
    -----
    An untied ranking is a lattice path through (controls seen, cases seen). A case stepped at
    x controls has placement V10 = x / n0; a control stepped after y cases has V01 =
    (n1 - y) / n1; K is the sum of the cases' x. DeLong's variance (DeLong et al. 1988, pROC's
    ``var(method = "delong")``) is var(V10)/n1 + var(V01)/n0 with n - 1 denominators, so for a
    fixed K it is a constant plus c1 sum x^2 + c0 sum (n1 - y)^2, which a dynamic programme over
    (x, y, K) minimises and maximises exactly in O(n0 n1 (n0 n1)) operations. Ties (a score
    with few levels) can give smaller variances than any untied ranking; in exhaustive
    enumeration of small cohorts none exceeds A(1 - A) / (min(n1, n0) - 1) (:func:`_largest_se`,
    tests).
    """
    n1, n0 = int(n_cases), int(n_controls)
    if n1 < 2 or n0 < 2:
        raise ValueError(f"DeLong's variance needs at least 2 cases and 2 controls, got {n1} and {n0}")
    kmax = n1 * n0
    c1 = 1.0 / (n0 * n0 * (n1 - 1) * n1)
    c0 = 1.0 / (n1 * n1 * (n0 - 1) * n0)
    found = []
    for sign in (1.0, -1.0):  # minimise sign * cost: the minimum, then the maximum
        previous = None
        for y in range(n1 + 1):
            row = np.full((n0 + 1, kmax + 1), np.inf)
            for x in range(n0 + 1):
                best = row[x]
                if x == 0 and y == 0:
                    best[0] = 0.0
                if x > 0:  # a control stepped here has n1 - y cases above it
                    np.minimum(best, row[x - 1] + sign * c0 * (n1 - y) ** 2, out=best)
                if y > 0:  # a case stepped here has x controls below it
                    np.minimum(best[x:], previous[x, : kmax + 1 - x] + sign * c1 * x * x, out=best[x:])
            previous = row
        found.append(sign * previous[n0])
    a = np.arange(kmax + 1) / kmax
    constant = -a * a / (n1 - 1) - a * a / (n0 - 1)
    return np.maximum(found[0] + constant, 0.0), np.maximum(found[1] + constant, 0.0)


def _auc_counts(auc: Printed, n_cases: int, n_controls: int) -> np.ndarray:
    """The Mann-Whitney counts K (untied) whose AUC K / (n1 n0) prints as ``auc``."""
    pairs = n_cases * n_controls
    return np.arange(max(0, math.ceil(auc.low * pairs)), min(pairs, math.floor(auc.high * pairs)) + 1)


def check_auc_granularity(auc: Printed, n_cases: int, n_controls: int) -> Check:
    """An AUC from n1 cases and n0 controls is a multiple of 1 / (2 n1 n0) (ties count 1/2).

    The AUC counterpart of GRIM (Brown & Heathers 2017): with few patients not every 3-decimal
    AUC is possible.
    """
    step = 2 * n_cases * n_controls
    lo, hi = math.ceil(auc.low * step), math.floor(auc.high * step)
    if lo <= hi:
        return Check("AUC possible for the counts", CONSISTENT, f"{lo}/{step}",
                     f"{auc} = {lo}/{step} half-pairs of {n_cases} x {n_controls} case-control pairs")
    near = [c / step for c in (hi, lo)]
    return Check("AUC possible for the counts", INCONSISTENT, f"{_fmt(near[0], 4)} or {_fmt(near[1], 4)}",
                 f"with {n_cases} events and {n_controls} non-events an AUC is a multiple of 1/{step}; the nearest "
                 f"to {auc} are {hi}/{step} = {near[0]:.4f} and {lo}/{step} = {near[1]:.4f}, neither of which "
                 f"prints as {auc}")


def se_from_ci(estimate: Printed, low: Printed, high: Printed, *, z: float = Z95,
               bounds: tuple = (0.0, 1.0)) -> tuple[float, float, float]:
    """The standard error a symmetric (Wald/DeLong) CI implies: (printed, lowest, highest).

    Uses the whole width, or the side that was not cut at ``bounds``; the range covers every
    true value the printed numbers allow.
    """
    cut_high, cut_low = high.high >= bounds[1], low.low <= bounds[0]
    if cut_high and cut_low:
        return math.nan, 0.0, math.inf
    if cut_high:
        width = (estimate.value - low.value, estimate.low - low.high, estimate.high - low.low)
        return tuple(max(w, 0.0) / z for w in width)
    if cut_low:
        width = (high.value - estimate.value, high.low - estimate.high, high.high - estimate.low)
        return tuple(max(w, 0.0) / z for w in width)
    width = (high.value - low.value, high.low - low.high, high.high - low.low)
    return tuple(max(w, 0.0) / (2 * z) for w in width)


def _largest_se(auc: Printed, n_cases: int, n_controls: int) -> float:
    """sqrt(A (1 - A) / (min(n1, n0) - 1)) at the A nearest 0.5 that prints as ``auc``: no
    ranking, tied or not, has a larger DeLong variance (Birnbaum & Klose 1957 for the variance
    itself; checked for DeLong's estimate by exhaustive enumeration in the tests)."""
    a = 0.5 if auc.low <= 0.5 <= auc.high else min((auc.low, auc.high), key=lambda v: abs(v - 0.5))
    a = min(max(a, 0.0), 1.0)
    return math.sqrt(a * (1 - a) / (min(n_cases, n_controls) - 1))


def check_auc_se(auc: Printed, low: Printed, high: Printed, n_cases: int, n_controls: int, *,
                 tied: bool = False) -> Check:
    """The AUC's standard error implied by its CI against the range DeLong's variance allows.

    The extremes come from :func:`delong_variance_extremes` over every AUC that prints as the
    reported one; a CI wider than the largest is impossible, one narrower than the smallest is
    impossible for a score without ties (a score of a few levels, ``tied=True``, can go lower,
    so there the verdict is *cannot tell*). The Hanley-McNeil SE is quoted beside as the usual
    value. A bootstrap CI's SE is close to DeLong's (DeLong's is the jackknife's), so the range
    applies to it too.

    References
    ----------
    DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44:837-45. Hanley JA, McNeil BJ.
    Radiology 1982;143:29-36. Birnbaum ZW, Klose OM. Ann Math Stat 1957;28:933-45 (the
    variance's upper bound A(1-A)/min(m, n)).
    """
    name = "AUC's CI width possible for the counts"
    if n_cases < 2 or n_controls < 2:
        return Check(name, CANNOT_TELL, "", f"{n_cases} events and {n_controls} non-events: DeLong's variance needs 2 of each")
    se, se_low, se_high = se_from_ci(auc, low, high)
    if math.isinf(se_high):
        return Check(name, CANNOT_TELL, "", "the CI is cut at both 0 and 1")
    pairs = n_cases * n_controls
    if pairs > MAX_EXACT_PAIRS:
        lowest, highest = 0.0, _largest_se(auc, n_cases, n_controls)
        exact = "(Birnbaum-Klose bound; too many pairs for the exact search)"
    else:
        var_low, var_high = delong_variance_extremes(n_cases, n_controls)
        ks = _auc_counts(auc, n_cases, n_controls)
        if ks.size == 0:  # only a tied ranking (a half-integer count) gives this AUC: its neighbours bound it
            near = int(math.floor(auc.value * pairs))
            ks, tied = np.array([near, min(near + 1, pairs)]), True
        lowest, highest = float(np.sqrt(var_low[ks].min())), float(np.sqrt(var_high[ks].max()))
        if tied:  # ties: the Birnbaum-Klose-type bound, which holds for them too (tests), caps the width
            highest = max(highest, _largest_se(auc, n_cases, n_controls))
        exact = f"(DeLong's extremes over every untied ranking of {n_cases} events and {n_controls} non-events)"
    hm = hanley_mcneil_se(min(max(auc.value, 1e-9), 1 - 1e-9), n_cases, n_controls)
    expected = f"SE {_fmt(lowest, 4)}-{_fmt(highest, 4)}"
    said = (f"the CI {low}-{high} implies SE {_fmt(se, 4)} (rounding: {_fmt(se_low, 4)}-{_fmt(se_high, 4)}); "
            f"possible for AUC {auc}: {_fmt(lowest, 4)}-{_fmt(highest, 4)} {exact}; Hanley-McNeil {hm:.4f}")
    if se_low > highest + _EPS:
        return Check(name, INCONSISTENT, expected, f"too wide: {said}")
    if se_high < lowest - _EPS:
        if tied:
            return Check(name, CANNOT_TELL, expected, f"narrower than any untied ranking allows, possible for a score "
                                                      f"with ties: {said}")
        return Check(name, INCONSISTENT, expected, f"too narrow for a score without ties: {said}")
    return Check(name, CONSISTENT, expected, said)


# -- tests between AUCs -----------------------------------------------------------------------

def _p_value(stat: float, df: float = math.inf) -> float:
    """Two-sided P of a z (``df`` infinite) or Student t statistic, as the DeLong tests compute it."""
    return float(2 * _upper_tail(abs(stat), df))


@dataclass(frozen=True)
class AUCReport:
    """A printed AUC with its CI and the cohort's size (for pROC's Welch degrees of freedom)."""

    auc: Printed
    low: Printed
    high: Printed
    n: int | None = None

    def se_range(self) -> tuple[float, float, float]:
        return se_from_ci(self.auc, self.low, self.high)


def _corners(a: AUCReport, b: AUCReport):
    """(difference, SE a, SE b) at the corners of the rounding box (and the printed point)."""
    sa, sb = a.se_range(), b.se_range()
    yield a.auc.value - b.auc.value, sa[0], sb[0]
    for da in (a.auc.low, a.auc.high):
        for db in (b.auc.low, b.auc.high):
            for va in sa[1:]:
                for vb in sb[1:]:
                    yield da - db, va, vb


def unpaired_p_range(a: AUCReport, b: AUCReport) -> dict:
    """The unpaired DeLong P that two printed AUCs and CIs allow: z test and pROC's Welch t.

    Notes
    -----
    pROC's ``roc.test(r1, r2, method = "delong")`` on unpaired curves: D = (A1 - A2) /
    sqrt(V1 + V2), df = (V1 + V2)^2 / (V1^2 / (N1 - 1) + V2^2 / (N2 - 1)), P from Student t.
    V is each AUC's variance recovered from its CI (SE = half-width / 1.96).
    """
    out = {"z": [math.inf, -math.inf, math.nan], "t": [math.inf, -math.inf, math.nan]}
    for i, (diff, sa, sb) in enumerate(_corners(a, b)):
        var = sa * sa + sb * sb
        if var <= 0:
            pz = pt = 0.0 if abs(diff) > _EPS else 1.0
        else:
            pz = _p_value(diff / math.sqrt(var))
            if a.n and b.n and a.n > 1 and b.n > 1:
                df = var * var / (sa**4 / (a.n - 1) + sb**4 / (b.n - 1))
                pt = _p_value(diff / math.sqrt(var), df)
            else:
                pt = math.nan
        for key, p in (("z", pz), ("t", pt)):
            if math.isnan(p):
                continue
            if i == 0:
                out[key][2] = p
            out[key][0], out[key][1] = min(out[key][0], p), max(out[key][1], p)
    return out


def check_unpaired_p(p: Printed, a: AUCReport, b: AUCReport) -> Check:
    """A reported P of two cohorts' AUCs (one model) against the unpaired DeLong test."""
    name = "P of an unpaired DeLong test"
    if p.value < 0 or p.value > 1:
        return Check(name, INCONSISTENT, "0 <= P <= 1", f"a P value of {p} is impossible")
    ranges = unpaired_p_range(a, b)
    z, t = ranges["z"], ranges["t"]
    said = (f"AUC {a.auc} (SE {_fmt(a.se_range()[0], 4)}) against {b.auc} (SE {_fmt(b.se_range()[0], 4)}): "
            f"D = {(a.auc.value - b.auc.value) / math.hypot(a.se_range()[0], b.se_range()[0]):.2f}" if
            math.hypot(a.se_range()[0], b.se_range()[0]) > 0 else f"AUC {a.auc} against {b.auc}")
    z_text = f"P {_fmt(z[2])} by the z test (rounding: {_fmt(z[0], 4)}-{_fmt(z[1], 4)})"
    t_text = (f"P {_fmt(t[2])} by pROC's Welch t (rounding: {_fmt(t[0], 4)}-{_fmt(t[1], 4)})"
              if not math.isnan(t[2]) else "")
    expected = _fmt(t[2] if not math.isnan(t[2]) else z[2])
    fits = [text for text, r in ((z_text, z), (t_text, t)) if text and p.overlaps(r[0], r[1])]
    if fits:
        return Check(name, CONSISTENT, expected, f"{said}; reported P {p}; {'; '.join(fits)}")
    return Check(name, INCONSISTENT, expected,
                 f"{said}; {z_text}{'; ' + t_text if t_text else ''}; the reported P {p} fits neither")


def paired_p_range(a: AUCReport, b: AUCReport) -> tuple[float, float]:
    """The paired DeLong P two printed AUCs and CIs allow over every correlation in [-1, 1].

    Notes
    -----
    Paired: z = (A1 - A2) / sqrt(V1 + V2 - 2 r SE1 SE2) (DeLong 1988; pROC's paired
    ``roc.test``); r, the correlation of the two AUC estimates, is not printed. r = -1 gives the
    largest P, r = 1 the smallest (0 when the SEs are equal).
    """
    low, high = math.inf, -math.inf
    for diff, sa, sb in _corners(a, b):
        sd_min, sd_max = abs(sa - sb), sa + sb
        p_small = 0.0 if sd_min <= _EPS and abs(diff) > _EPS else (_p_value(diff / sd_min) if sd_min > 0 else 1.0)
        p_large = _p_value(diff / sd_max) if sd_max > 0 else (0.0 if abs(diff) > _EPS else 1.0)
        low, high = min(low, p_small), max(high, p_large)
    return low, high


def check_paired_p(p: Printed, a: AUCReport, b: AUCReport) -> Check:
    """A reported P of two models on the same patients against the paired DeLong test's range."""
    name = "P of a paired DeLong test"
    if p.value < 0 or p.value > 1:
        return Check(name, INCONSISTENT, "0 <= P <= 1", f"a P value of {p} is impossible")
    low, high = paired_p_range(a, b)
    said = (f"AUC {a.auc} against {b.auc} with SEs {_fmt(a.se_range()[0], 4)} and {_fmt(b.se_range()[0], 4)}: "
            f"over every correlation of the two estimates the paired P lies in {_fmt(low, 4)}-{_fmt(high, 4)}")
    if p.overlaps(low, high):
        return Check(name, CONSISTENT, f"{_fmt(low, 4)}-{_fmt(high, 4)}", f"{said}; reported P {p}")
    return Check(name, INCONSISTENT, f"{_fmt(low, 4)}-{_fmt(high, 4)}", f"{said}; the reported P {p} is outside it")


# -- 2 x 2 tables -----------------------------------------------------------------------------

#: the proportions a 2 x 2 table gives, each as (numerator, denominator) of TP, FN, TN, FP
PROPORTIONS = ("sensitivity", "specificity", "accuracy", "ppv", "npv")


def _proportions(tp, fn, tn, fp):
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp),
                "accuracy": (tp + tn) / (tp + fn + tn + fp), "ppv": tp / (tp + fp), "npv": tn / (tn + fn)}


def two_by_two_tables(n: int, events: int, reported: dict) -> list[tuple[int, int]]:
    """Every (TP, TN) with ``events`` of ``n`` positive whose proportions print as ``reported``.

    ``reported`` maps names of :data:`PROPORTIONS` to :class:`Printed` values (proportions,
    0-1).
    """
    tp, tn = np.meshgrid(np.arange(events + 1), np.arange(n - events + 1), indexing="ij")
    fn, fp = events - tp, (n - events) - tn
    values = _proportions(tp.astype(float), fn, tn.astype(float), fp)
    ok = np.ones(tp.shape, dtype=bool)
    for name, printed in reported.items():
        v = values[name]
        ok &= np.isfinite(v) & (v >= printed.low) & (v <= printed.high)
    return [(int(a), int(b)) for a, b in zip(tp[ok], tn[ok])]


def check_two_by_two(n: int, events: int, reported: dict) -> Check:
    """Sensitivity, specificity, accuracy, PPV and NPV against every integer 2 x 2 table.

    With n patients of whom ``events`` had the outcome, each proportion is a count over a
    count; the printed values (within their rounding) must come from one table. When none does,
    the event counts that would allow one are listed.
    """
    name = "2 x 2 table behind the proportions"
    shown = ", ".join(f"{k} {v}" for k, v in reported.items())
    if not 0 <= events <= n:
        return Check(name, INCONSISTENT, f"0 <= events <= {n}", f"{events} events among {n} patients is impossible")
    tables = two_by_two_tables(n, events, reported)
    if tables:
        tp, tn = tables[0]
        also = f" ({len(tables)} tables fit)" if len(tables) > 1 else ""
        return Check(name, CONSISTENT, f"TP {tp}, FN {events - tp}, TN {tn}, FP {n - events - tn}",
                     f"{shown} with {events} events of {n}: TP {tp}/{events}, TN {tn}/{n - events}{also}")
    implied = [(e, two_by_two_tables(n, e, reported)) for e in range(n + 1)]
    implied = [(e, t[0]) for e, t in implied if t]
    if implied:
        ways = "; ".join(f"{e} events (TP {tp}/{e}, TN {tn}/{n - e})" for e, (tp, tn) in implied[:6])
        more = f" and {len(implied) - 6} more" if len(implied) > 6 else ""
        return Check(name, INCONSISTENT, f"{', '.join(str(e) for e, _ in implied[:6])} events",
                     f"no 2 x 2 table with {events} events of {n} gives {shown}; they fit {ways}{more}")
    return Check(name, INCONSISTENT, "no table", f"no 2 x 2 table of {n} patients, whatever its events, gives {shown}")


# -- odds ratios and percentages --------------------------------------------------------------

def check_odds_ratio_p(odds_ratio: Printed, low: Printed, high: Printed, p: Printed, *, z: float = Z95) -> Check:
    """An odds ratio's Wald P against the P its CI implies: SE = (ln high - ln low) / (2 z),
    P = 2 Phi(-|ln OR| / SE), over the rounding box."""
    name = "P of an odds ratio's Wald test"
    if min(odds_ratio.low, low.low) <= 0:
        return Check(name, CANNOT_TELL, "", "an odds ratio or CI end printed as 0 has no logarithm")
    ps = []
    for o in (odds_ratio.low, odds_ratio.high, odds_ratio.value):
        for lo in (low.low, low.high):
            for hi in (high.low, high.high):
                se = (math.log(hi) - math.log(lo)) / (2 * z)
                if se > 0:
                    ps.append(_p_value(math.log(o) / se))
    if not ps:
        return Check(name, CANNOT_TELL, "", "the CI has no width")
    se = (math.log(high.value) - math.log(low.value)) / (2 * z)
    centre = _p_value(math.log(odds_ratio.value) / se) if se > 0 else math.nan
    said = (f"ln {odds_ratio} = {math.log(odds_ratio.value):.3f}, SE (ln {high} - ln {low}) / 3.92 = {se:.3f}: "
            f"P {_fmt(centre)} (rounding: {_fmt(min(ps), 4)}-{_fmt(max(ps), 4)})")
    if p.value < 0 or p.value > 1:
        return Check(name, INCONSISTENT, _fmt(centre), f"a P value of {p} is impossible")
    if p.overlaps(min(ps), max(ps)):
        return Check(name, CONSISTENT, _fmt(centre), f"{said}; reported P {p}")
    return Check(name, INCONSISTENT, _fmt(centre), f"{said}; the reported P {p} is outside it")


def check_percent(percent: Printed, n: int, count: int | None = None) -> Check:
    """A percentage of ``n`` against a whole count: ``count``/n x 100, or any count (GRIM)."""
    name = "percentage of a whole count"
    if n <= 0:
        return Check(name, CANNOT_TELL, "", f"a denominator of {n}")
    if count is not None:
        value = 100.0 * count / n
        if percent.contains(value):
            return Check(name, CONSISTENT, _fmt(value, percent.decimals + 1), f"{count}/{n} = {value:.3f}% prints as {percent}%")
        return Check(name, INCONSISTENT, _fmt(value, percent.decimals),
                     f"{count}/{n} = {value:.3f}%, which does not print as {percent}%")
    counts = [k for k in range(n + 1) if percent.contains(100.0 * k / n)]
    if counts:
        return Check(name, CONSISTENT, f"{counts[0]}/{n}", f"{counts[0]}/{n} = {100.0 * counts[0] / n:.3f}% prints as {percent}%")
    near = min(range(n + 1), key=lambda k: abs(100.0 * k / n - percent.value))
    return Check(name, INCONSISTENT, f"{near}/{n} = {100.0 * near / n:.{percent.decimals}f}%",
                 f"no whole count of {n} gives {percent}%: the nearest is {near}/{n} = {100.0 * near / n:.3f}%")
