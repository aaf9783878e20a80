"""The preoperative ERASL model: coefficients, score, risk groups, and the development-cohort refit.

No coefficients are built in: the published ones come from study.yaml
(:meth:`ERASLCoefficients.from_mapping`), or :func:`erasl_refit` fits the same predictors on the
development cohort and labels the result ``ERASL (refit)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from dlr.core.errors import InputError
from dlr.core.stats.logistic import fit_logistic

from .inputs import _as_float, _inputs, _Inputs, _is_missing
from .results import SystemResult, _absent, _continuous_missing, _missing_frame, _table
from .systems import _albi_values, albi_grade

ERASL_GROUPS = ("low", "intermediate", "high")
REFIT_LABEL = "ERASL (refit)"

_ERASL_REQUIRED = ("male", "albi_grade", "log_afp", "tumor_size", "multiple_tumours", "cutoffs", "source")
_ERASL_OPTIONAL = ("intercept", "afp_log_base", "label")


@dataclass(frozen=True)
class ERASLCoefficients:
    """Coefficients and risk-group cut-offs of a preoperative ERASL model.

    The linear predictor is ``intercept + male * [male sex] + ALBI term + log_afp *
    log_base(AFP, ng/mL) + tumor_size * [largest diameter, cm] + multiple_tumours * [>= 2
    nodules]``, where the ALBI term is ``albi_grade * grade`` (grade 1-3) when ``albi_grade`` is a
    number, or ``b2 * [grade 2] + b3 * [grade 3]`` when it is a pair ``(b2, b3)``.

    Attributes
    ----------
    male, albi_grade, log_afp, tumor_size, multiple_tumours : float (albi_grade: float or pair)
    cutoffs : (float, float)
        Risk groups: low when score <= cutoffs[0], intermediate when cutoffs[0] < score <=
        cutoffs[1], high above.
    source : str
        Where the numbers come from: the published table or calculator actually read, or the
        refit that produced them. Required, so that no score appears without its provenance.
    intercept : float
    afp_log_base : float
        10 (default) or math.e.
    label : str
        How the score is named in tables and figures: ``ERASL``, or ``ERASL (refit)``.
    """

    male: float
    albi_grade: float | tuple[float, float]
    log_afp: float
    tumor_size: float
    multiple_tumours: float
    cutoffs: tuple[float, float]
    source: str
    intercept: float = 0.0
    afp_log_base: float = 10.0
    label: str = "ERASL"

    @classmethod
    def from_mapping(cls, mapping: Mapping, *, where: str = "study.yaml 'erasl'") -> "ERASLCoefficients":
        """Build from a mapping (the ``erasl`` block of study.yaml), naming any bad key."""
        if isinstance(mapping, cls):
            return mapping
        if not isinstance(mapping, Mapping):
            raise InputError(f"{where}: expected a mapping of ERASL coefficients, got {type(mapping).__name__}")
        unknown = sorted(set(mapping) - set(_ERASL_REQUIRED) - set(_ERASL_OPTIONAL))
        absent = [k for k in _ERASL_REQUIRED if k not in mapping]
        if unknown or absent:
            raise InputError(f"{where}: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing key(s) {', '.join(absent)}"] if absent else []))
                + f". Expected keys: {', '.join(_ERASL_REQUIRED)} (and optionally {', '.join(_ERASL_OPTIONAL)})")

        def number(key, value):
            x = None if isinstance(value, (str, bool)) else _as_float(value)
            if x is None or not math.isfinite(x):
                raise InputError(f"{where}: key {key!r} must be a finite number, got {value!r}")
            return x

        grade = mapping["albi_grade"]
        if isinstance(grade, (list, tuple)):
            if len(grade) != 2:
                raise InputError(f"{where}: key 'albi_grade' must be one number (per grade) or two "
                                 f"(grade 2, grade 3 vs grade 1), got {grade!r}")
            grade = (number("albi_grade", grade[0]), number("albi_grade", grade[1]))
        else:
            grade = number("albi_grade", grade)
        cut = mapping["cutoffs"]
        if not isinstance(cut, (list, tuple)) or len(cut) != 2:
            raise InputError(f"{where}: key 'cutoffs' must be two numbers [low/intermediate, "
                             f"intermediate/high], got {cut!r}")
        cut = (number("cutoffs", cut[0]), number("cutoffs", cut[1]))
        if not cut[0] <= cut[1]:
            raise InputError(f"{where}: key 'cutoffs' must be increasing, got {list(cut)}")
        source = mapping["source"]
        if not isinstance(source, str) or not source.strip():
            raise InputError(f"{where}: key 'source' must cite the table or calculator the coefficients were read "
                             "from")
        base = number("afp_log_base", mapping.get("afp_log_base", 10.0))
        if base <= 0 or base == 1:
            raise InputError(f"{where}: key 'afp_log_base' must be 10 or e, got {base!r}")
        return cls(male=number("male", mapping["male"]), albi_grade=grade,
                   log_afp=number("log_afp", mapping["log_afp"]), tumor_size=number("tumor_size", mapping["tumor_size"]),
                   multiple_tumours=number("multiple_tumours", mapping["multiple_tumours"]), cutoffs=cut,
                   source=source.strip(), intercept=number("intercept", mapping.get("intercept", 0.0)),
                   afp_log_base=base, label=str(mapping.get("label", "ERASL")))


def _erasl_design(inp: _Inputs) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Predictors (male, ALBI grade, AFP, size, multiple), completeness, and why each patient is incomplete."""
    number = inp.num["tumor_number"]
    multiple = np.where(np.isnan(number), inp.num["tumor_multiple"], (number >= 2).astype(float))
    x = {"male": inp.num["male"], "albi_grade": albi_grade(_albi_values(inp)), "afp": inp.num["afp"],
         "tumor_size": inp.num["tumor_diameter"], "multiple_tumours": multiple}
    zero_afp = inp.num["afp"] == 0
    complete = np.all([~np.isnan(v) for v in x.values()], axis=0) & ~zero_afp
    reasons = {"gender": np.isnan(x["male"]), **_absent(inp, "tbil", "alb", "afp"),
               "afp (0: log undefined)": zero_afp, "tumor_diameter": np.isnan(x["tumor_size"]),
               "tumor_number": np.isnan(x["multiple_tumours"])}
    return x, complete, reasons


def _erasl_linear(x: Mapping[str, np.ndarray], c: ERASLCoefficients) -> np.ndarray:
    if isinstance(c.albi_grade, tuple):
        albi_term = c.albi_grade[0] * (x["albi_grade"] == 2) + c.albi_grade[1] * (x["albi_grade"] == 3)
        albi_term = np.where(np.isnan(x["albi_grade"]), np.nan, albi_term)
    else:
        albi_term = c.albi_grade * x["albi_grade"]
    with np.errstate(invalid="ignore", divide="ignore"):
        log_afp = np.log10(x["afp"]) if c.afp_log_base == 10 else np.log(x["afp"]) / np.log(c.afp_log_base)
        log_afp = np.where(x["afp"] > 0, log_afp, np.nan)
    return (c.intercept + c.male * x["male"] + albi_term + c.log_afp * log_afp + c.tumor_size * x["tumor_size"]
            + c.multiple_tumours * x["multiple_tumours"])


def _erasl_groups(score: np.ndarray, cutoffs: tuple[float, float]) -> pd.Series:
    group = np.where(score <= cutoffs[0], ERASL_GROUPS[0], np.where(score <= cutoffs[1], ERASL_GROUPS[1],
                                                                    ERASL_GROUPS[2])).astype(object)
    group[np.isnan(score)] = None
    return pd.Series(group, dtype=object)


def _erasl_result(inp: _Inputs, c: ERASLCoefficients) -> SystemResult:
    x, complete, reasons = _erasl_design(inp)
    score = np.where(complete, _erasl_linear(x, c), np.nan)
    missing = _continuous_missing(inp, "ERASL", score, reasons)
    table = _table(inp, {"ERASL": score, "ERASL_group": _erasl_groups(score, c.cutoffs),
                         "ERASL_label": pd.Series([c.label] * inp.n, dtype=object)})
    return SystemResult("ERASL", table, _missing_frame(missing))


def erasl_score(frame: pd.DataFrame, *, coefficients: ERASLCoefficients | Mapping) -> SystemResult:
    """Preoperative ERASL risk score and risk group, with coefficients supplied by the caller.

    Parameters
    ----------
    frame : DataFrame
        ``gender``, ``tbil`` and ``alb`` (for the ALBI grade), ``afp`` (ng/mL, > 0),
        ``tumor_diameter`` (cm), ``tumor_number`` (or ``tumor_multiple``).
    coefficients : ERASLCoefficients or mapping
        The published coefficients and cut-offs with their ``source`` (the ``erasl`` block of
        study.yaml; see :meth:`ERASLCoefficients.from_mapping`). No coefficients are built in.

    Returns
    -------
    SystemResult
        ``table`` columns ``ERASL`` (linear predictor), ``ERASL_group`` (low, intermediate,
        high) and ``ERASL_label`` (``coefficients.label``).

    Notes
    -----
    Predictors: male sex, ALBI grade (graded unrounded, :func:`albi_grade`), log AFP, tumour size
    (largest diameter) and multiple tumours. This module does not carry the published numbers:
    they could not be read and verified from the paper here, and ``spec/staging.md`` forbids
    inventing them. Give them in study.yaml citing the table or calculator read, or use
    :func:`erasl_refit`. AFP = 0 leaves the score empty (log undefined).

    References
    ----------
    Chan AWH, Zhong J, Berhane S, et al. Development of pre and post-operative models to predict
    early recurrence of hepatocellular carcinoma after surgical resection. J Hepatol
    2018;69:1284-1293.
    """
    return _erasl_result(_inputs(frame), ERASLCoefficients.from_mapping(coefficients))


@dataclass(frozen=True)
class ERASLRefit:
    """An ``ERASL (refit)`` model fitted on the development cohort, and its scores.

    Attributes
    ----------
    coefficients : ERASLCoefficients
        Fitted coefficients (linear ALBI grade, log10 AFP), intercept, and the tertile cut-offs
        of the development scores; ``label`` is ``ERASL (refit)``.
    result : SystemResult
        Scores and groups for every patient (development and other cohorts).
    n_dev : int
        Development patients in the fit (complete predictors and outcome).
    n_events : int
    """

    coefficients: ERASLCoefficients
    result: SystemResult
    n_dev: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        return self.result.to_frame()


class ERASLNoInputs(InputError):
    """No development patient has the inputs of an ERASL refit (then ERASL is left empty)."""


def erasl_refit(frame: pd.DataFrame, y, dev_mask) -> ERASLRefit:
    """Refit the preoperative ERASL predictors on the development cohort: ``ERASL (refit)``.

    Parameters
    ----------
    frame : DataFrame
        The inputs of :func:`erasl_score`, for all patients.
    y : array-like (n,)
        Outcome 0/1 (early recurrence), aligned with the rows of ``frame``; only development
        patients' values are read; missing values exclude the patient from the fit.
    dev_mask : array-like of bool (n,)
        True for the development cohort. Nothing about other patients enters the fit.

    Returns
    -------
    ERASLRefit
        Scores for every patient with complete predictors, labelled ``ERASL (refit)``.

    Notes
    -----
    logit P(y = 1) = b0 + b1 [male] + b2 ALBI grade (1-3, one linear term) + b3 log10 AFP +
    b4 diameter (cm) + b5 [>= 2 nodules], fitted by maximum likelihood
    (:func:`dlr.core.stats.logistic.fit_logistic`, as R's ``glm(family = binomial)``) on the
    development patients with complete predictors and outcome. The score is the linear predictor
    (the logit of the fitted risk). Risk groups: tertiles of the development patients' scores
    (``numpy.quantile`` at 1/3 and 2/3, linear interpolation, R's ``quantile(type = 7)``);
    low <= first tertile < intermediate <= second tertile < high. This is not the published
    model: the published coefficients could not be verified here (``spec/staging.md``), so the
    same five predictors are refitted and the result is labelled as such everywhere.

    References
    ----------
    Chan AWH, Zhong J, Berhane S, et al. J Hepatol 2018;69:1284-1293 (the predictors).
    """
    inp = _inputs(frame)
    y = np.asarray(y, dtype=object).ravel()
    dev = np.asarray(dev_mask, dtype=bool).ravel()
    if y.size != inp.n or dev.size != inp.n:
        raise InputError(f"ERASL refit: outcome ({y.size}) and development mask ({dev.size}) must have one value per "
                         f"patient ({inp.n})")
    outcome = np.full(inp.n, np.nan)
    for i in np.flatnonzero(dev):
        if _is_missing(y[i]):
            continue
        v = _as_float(y[i])
        if v not in (0.0, 1.0):
            raise InputError(f"ERASL refit: patient {inp.ids[i]!r}: outcome {y[i]!r} is not 0/1; code the outcome as "
                             "1 (event) / 0 (no event)")
        outcome[i] = v
    x, complete, _ = _erasl_design(inp)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_afp = np.log10(x["afp"])
    fit = dev & complete & ~np.isnan(outcome)
    exog = np.column_stack([np.ones(inp.n), x["male"], x["albi_grade"], log_afp, x["tumor_size"],
                            x["multiple_tumours"]])[fit]
    n_dev, n_events = int(fit.sum()), int(outcome[fit].sum())
    if n_dev == 0:
        raise ERASLNoInputs("ERASL refit: no development patient has every ERASL input (gender, ALBI grade from "
                            "bilirubin and albumin, AFP, tumour size and number), so ERASL cannot be refitted")
    beta = fit_logistic(outcome[fit], exog) if 0 < n_events < n_dev else np.full(6, np.nan)
    if not np.all(np.isfinite(beta)):
        raise InputError(f"ERASL refit: the logistic model cannot be fitted on the {n_dev} development patients with "
                         f"complete inputs ({n_events} events): too few patients or events, a predictor with no "
                         "variation, or complete separation. Give published coefficients in study.yaml instead")
    provisional = ERASLCoefficients(male=beta[1], albi_grade=beta[2], log_afp=beta[3], tumor_size=beta[4],
                                    multiple_tumours=beta[5], intercept=beta[0], cutoffs=(0.0, 0.0), source="",
                                    afp_log_base=10.0, label=REFIT_LABEL)
    dev_scores = _erasl_linear(x, provisional)[fit]
    low, high = np.quantile(dev_scores, [1 / 3, 2 / 3])
    coefficients = ERASLCoefficients(
        male=float(beta[1]), albi_grade=float(beta[2]), log_afp=float(beta[3]), tumor_size=float(beta[4]),
        multiple_tumours=float(beta[5]), intercept=float(beta[0]), cutoffs=(float(low), float(high)),
        source=(f"refit: logistic regression of the ERASL-pre predictors (Chan et al., J Hepatol 2018) on the "
                f"development cohort ({n_dev} patients, {n_events} events); groups by tertiles of the development "
                "scores"),
        afp_log_base=10.0, label=REFIT_LABEL)
    return ERASLRefit(coefficients, _erasl_result(inp, coefficients), n_dev, n_events)
