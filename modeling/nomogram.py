"""Nomograms of the logistic models (CR, and RCR when its classifier is LR), as ``rms::nomogram``:
``RUN/models/nomogram.csv`` and ``RUN/models/nomogram_axes.csv``, computed from the fitted
coefficients at train time (the report draws them, :func:`dlr.report.figures.draw_nomogram`).

Construction (``rms::nomogram(fit, fun = plogis)``'s conventions)
-----------------------------------------------------------------
* One axis per predictor. A categorical factor (a CR factor dichotomised at its cut point, or
  with levels) has one value per level; a numeric one has its distinct values when there are
  10 or fewer (``datadist``'s ``n.unique``), else R's ``pretty(range, n = 10)`` over the
  development cohort's range (``value.chk(type.range = "full")``), which may extend a little
  beyond it.
* Each value's contribution to the linear predictor is beta * x (0 at a reference level). For
  predictor j, with m_j the smallest and M_j the largest contribution over its axis values,
  points = (beta x - m_j) * s, s = 100 / max_j (M_j - m_j): the predictor with the widest range
  of contributions spans 0..100, the others less.
* Total points T (the sum over predictors) maps to the linear predictor lp = L0 + T / s, with
  L0 = beta_0 + sum_j m_j, and to the predicted probability plogis(lp).
* Axes (``nomogram_axes.csv``): ``linear_predictor`` ticks ``pretty(range(lp of the development
  patients), 10)``; ``total_points`` ticks ``pretty(c(0, max(100, s * max(lp ticks - L0))), 10)``;
  ``probability`` ticks ``pretty(plogis(range(lp ticks)), 10)`` strictly between 0 and 1 and
  within that range, placed at (logit p - L0) * s (exactly; rms interpolates on a 1000-point
  grid, within 1e-4 points).

RCR (an L2-penalised logistic regression on z-scored inputs) gets its coefficients on the inputs'
own scale, beta_j / sd_j and beta_0 - sum_j beta_j mean_j / sd_j (the pipeline's StandardScaler;
its median imputer is ignored: the axes are for observed values).

References
----------
Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, section 10.9. rms's
``nomogram`` and ``datadist``. Iasonos A et al. How to build and interpret a nomogram for cancer
prognosis. J Clin Oncol 2008;26:1364-1370.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
from scipy import special

TABLE_COLUMNS = ["model", "variable", "level_or_value", "points", "value", "kind", "unit", "lp_term"]
AXES_COLUMNS = ["model", "axis", "total_points", "linear_predictor", "probability"]
FILE = "nomogram.csv"
AXES_FILE = "nomogram_axes.csv"
#: a numeric predictor with at most this many distinct values gets one tick per value (rms's n.unique)
N_UNIQUE = 10


def r_pretty(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """R's ``pretty(c(lo, hi), n)``: about n + 1 equally spaced round values covering [lo, hi].

    Notes
    -----
    A transcription of R 4.2's ``R_pretty`` (src/appl/pretty.c) with ``pretty.default``'s
    defaults (min.n = n %/% 3, shrink.sml = 0.75, high.u.bias = 1.5, u5.bias = 0.5 + 1.5 *
    high.u.bias, eps.correct = 0, f.min = 2^-20, bounds = TRUE) and its ``seq.int(l, u,
    length.out = n + 1)``; tests/r/internal_validation.R checks it against R.
    """
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    min_n = n // 3
    shrink, h = 0.75, 1.5
    h5 = 0.5 + 1.5 * h
    f_min = 2.0 ** -20
    eps = sys.float_info.epsilon
    dx = hi - lo
    if dx == 0 and hi == 0:
        cell, small = 1.0, True
    else:
        cell = max(abs(lo), abs(hi))
        u = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u *= max(1, n) * eps
        small = dx < cell * u * 3
    if small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= shrink
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx
        if n > 1:
            cell /= n
    cell = max(cell, f_min * sys.float_info.min)
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    ns = math.floor(lo / unit + 1e-10)
    nu = math.ceil(hi / unit - 1e-10)
    while ns * unit > lo + 1e-10 * unit:
        ns -= 1
    while nu * unit < hi - 1e-10 * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
        ndiv = min_n
    else:
        ndiv = k
    low = ns * unit if ns * unit < lo else lo
    high = nu * unit if nu * unit > hi else hi
    count = ndiv + 1
    out = np.empty(count)
    out[0] = low
    if count > 1:
        out[-1] = high
        step = (high - low) / ndiv
        out[1:-1] = low + np.arange(1, count - 1) * step  # R 4.2's seq.int(from, to, length.out)
        if ndiv:
            out[np.abs(out) < 1e-14 * ((high - low) / ndiv)] = 0.0
    return out


@dataclass(frozen=True)
class NomogramAxis:
    """One predictor's axis: its values (or levels) and their contributions to the linear predictor.

    Attributes
    ----------
    variable : str
    labels : tuple of str
        The text shown at each value: a level, ``<= cut``/``> cut``, or the number.
    values : tuple of float
        The numeric value at each tick (NaN for a level).
    terms : tuple of float
        beta * x at each value (0 at a reference level), on the log-odds scale.
    kind : {"continuous", "levels"}
    unit : str or None
    """

    variable: str
    labels: tuple
    values: tuple
    terms: tuple
    kind: str
    unit: Optional[str] = None


@dataclass(frozen=True)
class Nomogram:
    """A logistic model's nomogram.

    Attributes
    ----------
    model : str
    table : DataFrame
        ``TABLE_COLUMNS``: one row per axis value: ``variable``, ``level_or_value`` (text),
        ``points``, ``value`` (the number, empty for a level), ``kind``, ``unit``, ``lp_term``
        (beta * x).
    axes : DataFrame
        ``AXES_COLUMNS``: ticks of the ``total_points``, ``linear_predictor`` and
        ``probability`` axes, each with its total points, linear predictor and probability.
    scale : float
        Points per unit of linear predictor (s).
    lp_at_zero : float
        The linear predictor at 0 total points (L0).
    """

    model: str
    table: pd.DataFrame
    axes: pd.DataFrame
    scale: float
    lp_at_zero: float

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def probability(self, total_points) -> np.ndarray:
        """Predicted probability at ``total_points``: plogis(L0 + T / s)."""
        return special.expit(self.lp_at_zero + np.asarray(total_points, dtype=float) / self.scale)


def _number_text(x: float) -> str:
    return f"{x:.10g}"


def numeric_ticks(values) -> np.ndarray:
    """A numeric predictor's axis values: its distinct values when at most ``N_UNIQUE``, else
    ``r_pretty(min, max, 10)`` (``datadist`` then ``nomogram``)."""
    x = np.asarray(values, dtype=float)
    x = np.unique(x[np.isfinite(x)])
    if x.size == 0:
        raise ValueError("a nomogram axis needs at least one observed value")
    return x if x.size <= N_UNIQUE else r_pretty(x[0], x[-1], 10)


def numeric_axis(variable: str, beta: float, values, *, unit: Optional[str] = None) -> NomogramAxis:
    """The axis of a numeric predictor with coefficient ``beta`` observed at ``values``."""
    ticks = numeric_ticks(values)
    return NomogramAxis(variable, tuple(_number_text(t) for t in ticks), tuple(float(t) for t in ticks),
                        tuple(float(beta * t) for t in ticks), "continuous", unit)


def build_nomogram(axes, intercept: float, lp_development, *, model: str, maxscale: float = 100.0,
                   nint: int = 10) -> Nomogram:
    """Points of every axis value and the total points -> probability axes (``rms::nomogram``).

    Parameters
    ----------
    axes : list of NomogramAxis
    intercept : float
        beta_0: the linear predictor when every term is 0.
    lp_development : array
        The development patients' linear predictors (the range of the linear-predictor axis).
    model : str
    maxscale, nint :
        ``nomogram``'s arguments of the same names.

    Returns
    -------
    Nomogram
    """
    if not axes:
        raise ValueError("a nomogram needs at least one predictor")
    low = {a.variable: min(a.terms) for a in axes}
    widths = [max(a.terms) - min(a.terms) for a in axes]
    if max(widths) <= 0:
        raise ValueError(f"{model}: every predictor's contribution is constant; no nomogram")
    scale = maxscale / max(widths)
    lp0 = float(intercept + sum(low.values()))
    rows = []
    for a in axes:
        for label, value, term in zip(a.labels, a.values, a.terms):
            rows.append({"model": model, "variable": a.variable, "level_or_value": label,
                         "points": (term - low[a.variable]) * scale, "value": value, "kind": a.kind,
                         "unit": a.unit, "lp_term": term})
    lp = np.asarray(lp_development, dtype=float)
    lp = lp[np.isfinite(lp)]
    lp_at = r_pretty(lp.min(), lp.max(), nint)
    top = maxscale if len(axes) == 1 else max(maxscale, scale * float(np.max(lp_at - lp0)))
    totals = r_pretty(0.0, top, nint)
    lo_p, hi_p = special.expit(lp_at.min()), special.expit(lp_at.max())
    probabilities = [p for p in r_pretty(lo_p, hi_p, nint) if 0 < p < 1 and lo_p <= p <= hi_p]
    tick_rows = ([("total_points", t, lp0 + t / scale) for t in totals]
                 + [("linear_predictor", (v - lp0) * scale, v) for v in lp_at]
                 + [("probability", (special.logit(p) - lp0) * scale, special.logit(p)) for p in probabilities])
    axes_frame = pd.DataFrame([{"model": model, "axis": axis, "total_points": float(t), "linear_predictor": float(v),
                                "probability": float(special.expit(v))} for axis, t, v in tick_rows],
                              columns=AXES_COLUMNS)
    return Nomogram(model, pd.DataFrame(rows, columns=TABLE_COLUMNS), axes_frame, float(scale), lp0)


def _units(config) -> dict:
    return {v.name: v.unit for v in config.variables} if config is not None else {}


def _coding_axis(coding, betas, values: pd.Series, unit: Optional[str]) -> NomogramAxis:
    """The axis of a CR factor with coding ``coding`` (modeling.clinical.Coding), coefficients
    ``betas`` per design column, observed development values ``values``."""
    if coding.kind == "cut":
        cut = _number_text(coding.cut)
        return NomogramAxis(coding.variable, (f"<= {cut}", f"> {cut}"), (float("nan"),) * 2,
                            (0.0, float(betas[0])), "levels", unit)
    if coding.kind == "levels":
        labels = (coding.reference, *coding.levels)
        return NomogramAxis(coding.variable, tuple(map(str, labels)), (float("nan"),) * len(labels),
                            (0.0, *map(float, betas)), "levels", unit)
    return numeric_axis(coding.variable, float(betas[0]), pd.to_numeric(values, errors="coerce"), unit=unit)


def cr_nomogram(model, clinical: pd.DataFrame, config=None, *, name: str = "CR") -> Nomogram:
    """The nomogram of the CR model (:class:`dlr.modeling.clinical.CRModel`).

    Parameters
    ----------
    model : CRModel
    clinical : DataFrame
        The development patients' rows of clinical.csv (the axes' ranges and the linear
        predictor's).
    config : StudyConfig, optional
        For the variables' units.
    """
    from .clinical import design

    units = _units(config)
    beta = np.asarray(model.coefficients, dtype=float)
    axes, start = [], 1
    for coding in model.codings:
        width = len(coding.columns())
        axes.append(_coding_axis(coding, beta[start:start + width], clinical[coding.variable],
                                 units.get(coding.variable)))
        start += width
    lp = beta[0] + design(clinical, model.codings).to_numpy(dtype=float) @ beta[1:]
    return build_nomogram(axes, beta[0], lp, model=name)


def logistic_pipeline_coefficients(estimator) -> tuple[float, np.ndarray]:
    """(beta_0, beta) of a fitted ``impute -> scale -> LogisticRegression`` pipeline on its
    inputs' own scale: beta_j = b_j / sd_j, beta_0 = b_0 - sum_j b_j mean_j / sd_j."""
    clf = estimator.named_steps["clf"]
    scaler = estimator.named_steps.get("scale")
    b = np.asarray(clf.coef_, dtype=float).ravel()
    b0 = float(np.asarray(clf.intercept_, dtype=float).ravel()[0])
    if scaler is None:
        return b0, b
    mean = np.asarray(scaler.mean_, dtype=float) if scaler.with_mean else np.zeros(b.size)
    sd = np.asarray(scaler.scale_, dtype=float) if scaler.with_std else np.ones(b.size)
    return b0 - float(np.sum(b * mean / sd)), b / sd


def pipeline_nomogram(estimator, X: pd.DataFrame, *, name: str, codings=(), config=None) -> Nomogram:
    """The nomogram of a fitted logistic pipeline (RCR when its classifier is LR).

    Parameters
    ----------
    estimator : sklearn Pipeline (``impute``, ``scale``, ``clf`` = LogisticRegression)
    X : DataFrame
        Its inputs for the development patients (columns in the order it was fitted on).
    name : str
        The model's name.
    codings : tuple of modeling.clinical.Coding
        The CR factors among the columns (their design columns are grouped into one axis per
        factor); every other column is a numeric predictor.
    config : StudyConfig, optional
        For the CR variables' units.
    """
    b0, beta = logistic_pipeline_coefficients(estimator)
    columns = list(X.columns)
    if len(columns) != beta.size:
        raise ValueError(f"{name}: {beta.size} coefficients for {len(columns)} columns of X")
    position = {c: i for i, c in enumerate(columns)}
    units = _units(config)
    grouped = {}
    for coding in codings:
        for column in coding.columns():
            grouped[column] = coding
    axes, done = [], set()
    for column in columns:
        coding = grouped.get(column)
        if coding is None:
            axes.append(numeric_axis(column, float(beta[position[column]]), X[column]))
        elif coding.variable not in done:
            done.add(coding.variable)
            betas = [beta[position[c]] for c in coding.columns()]
            values = X[coding.columns()[0]] if coding.kind == "number" else pd.Series(dtype=float)
            axes.append(_coding_axis(coding, betas, values, units.get(coding.variable)))
    lp = np.asarray(estimator.decision_function(X), dtype=float)
    return build_nomogram(axes, b0, lp, model=name)
