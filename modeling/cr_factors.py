"""Table 3: univariate and multivariate logistic regressions on the development cohort, and
the paper's two-step selection of the clinical-radiological (CR) model's factors from them
(`dlr logistic`, and the first step of the CR model in `modeling/clinical.py`)."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from dlr.core.errors import InputError, UndefinedStatisticWarning
from dlr.core.stats.logistic import fit_logistic
from dlr.core.tables import (candidate_variables, check_categorical, cohort_values, in_order, level_text, outcome_values,
                         parse_column)

LOGISTIC_COLUMNS = ["variable", "level", "reference", "odds_ratio", "ci_low", "ci_high", "p_value"]
FIT_COLUMNS = ["model", "n", "n_events", "n_missing", "status"]
SELECTION_COLUMNS = ["variable", "univariate_p", "entered", "multivariate_p", "selected"]


@dataclass(frozen=True)
class LogisticResult:
    """Logistic regression(s) of the outcome: one row per model term.

    Attributes
    ----------
    table : DataFrame
        ``variable``, ``level``, ``reference``, ``odds_ratio``, ``ci_low``, ``ci_high``
        (Wald 95%), ``p_value`` (Wald z). A categorical variable has one row per non-reference
        level; a continuous one a single row (odds ratio per unit) with empty ``level`` and
        ``reference``. The intercept is not listed. NaN where the fit is undefined.
    fits : DataFrame
        One row per fitted model (``model``: the variable for univariate fits,
        ``multivariate`` otherwise): ``n`` (complete cases used), ``n_events``, ``n_missing``
        (patients left out for missing values), ``status`` (``ok``, ``separation``,
        ``singular design``, ``single outcome class``, ``constant variable``).
    variable_p : dict
        Variable -> Wald p of all its terms jointly (chi-squared with as many df as terms;
        for a binary or continuous variable the p of its single row).
    """

    table: pd.DataFrame
    fits: pd.DataFrame
    variable_p: dict

    def to_frame(self) -> pd.DataFrame:
        return self.table



@dataclass(frozen=True)
class CRSelection:
    """The paper's two-step selection of the clinical-radiological model's factors.

    Attributes
    ----------
    univariate, multivariate : LogisticResult
        Every candidate alone; the candidates with univariate p < alpha together (empty
        when none entered).
    selected : tuple of str
        Variables with multivariate p < alpha, in the order given.
    variables : DataFrame
        ``variable``, ``univariate_p``, ``entered``, ``multivariate_p``, ``selected`` (joint Wald
        p of each variable's terms).
    alpha : float
    """

    univariate: LogisticResult
    multivariate: LogisticResult
    selected: tuple
    variables: pd.DataFrame
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        return self.variables



_Z95 = float(special.ndtri(0.975))


def _development_rows(frame: pd.DataFrame, cohort: str | None, dev_cohort: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"logistic regression needs a pandas DataFrame, got {type(frame).__name__}")
    if cohort is None:
        return frame
    cohorts = cohort_values(frame, cohort)
    inside = cohorts == str(dev_cohort)
    if not inside.any():
        raise InputError(f"development cohort {dev_cohort!r} has no patients in column {cohort!r}; cohorts are: "
                         f"{', '.join(map(str, in_order(cohorts)))}; choose one with dev_cohort (--dev-cohort)")
    return frame.loc[inside]


def _check_reference(reference, columns: dict) -> dict:
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise InputError(f"reference must map variable -> reference level, got {type(reference).__name__}")
    out = {}
    for name, level in reference.items():
        if name not in columns:
            raise InputError(f"reference level given for {name!r}, which is not one of the variables: "
                             f"{', '.join(columns)}")
        col = columns[name]
        if not col.categorical:
            raise InputError(f"reference level given for {name!r}, which is continuous; list it in "
                             "categorical= to dummy-code it")
        text = level_text(level)
        if text not in col.level_order:
            raise InputError(f"reference level {level!r} of variable {name!r} does not occur in the development "
                             f"cohort; its levels are: {', '.join(col.level_order)}")
        out[name] = text
    return out


@dataclass(frozen=True)
class _Fit:
    terms: list  # (variable, level, reference)
    beta: np.ndarray  # per term (no intercept)
    cov: np.ndarray
    status: str
    n: int
    n_events: int
    n_missing: int


def _fit_model(label: str, cols: list, y: np.ndarray, reference: dict) -> _Fit:
    complete = np.ones(y.size, dtype=bool)
    for col in cols:
        complete &= ~col.missing
    yc = y[complete]
    blocks, terms, status = [np.ones((int(complete.sum()), 1))], [], "ok"
    for col in cols:
        if col.categorical:
            values = col.levels[complete]
            seen = set(values.tolist())
            present = [lv for lv in col.level_order if lv in seen]  # R's glm drops unused levels
            ref = reference.get(col.name, present[0] if present else "")
            if len(present) < 2:
                status = "constant variable"
                terms.append((col.name, "", ref))
                continue
            if ref not in present:
                raise InputError(f"reference level {ref!r} of variable {col.name!r} has no patient with complete "
                                 f"data in model {label!r}; choose one of: {', '.join(present)}")
            for lv in present:
                if lv != ref:
                    terms.append((col.name, lv, ref))
                    blocks.append((values == lv).astype(float)[:, None])
        else:
            values = col.numbers[complete]
            terms.append((col.name, "", ""))
            if values.size == 0 or np.ptp(values) == 0:
                status = "constant variable"
                continue
            blocks.append(values[:, None])
    counts = (int(yc.size), int(yc.sum()), int((~complete).sum()))
    if status == "ok":
        status, beta, cov = _maximise(yc, np.hstack(blocks))
        if status == "ok":
            return _Fit(terms, beta[1:], cov[1:, 1:], status, *counts)
    warnings.warn(f"logistic model {label!r}: {status} ({counts[0]} patients, {counts[1]} events); "
                  "its odds ratios, CIs and p values are NaN", UndefinedStatisticWarning, stacklevel=3)
    k = len(terms)
    return _Fit(terms, np.full(k, np.nan), np.full((k, k), np.nan), status, *counts)


def _maximise(y: np.ndarray, x: np.ndarray) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """(status, beta, covariance) of a logistic fit; status names why it is undefined."""
    if y.sum() == 0 or y.sum() == y.size:
        return "single outcome class", None, None
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return "singular design", None, None
    beta = fit_logistic(y, x)
    if np.isnan(beta).any():
        return "separation", None, None
    p = special.expit(x @ beta)
    try:
        return "ok", beta, np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))
    except np.linalg.LinAlgError:
        return "singular design", None, None


def _exp(x: float) -> float:
    """e^x, infinite beyond the float range (a CI bound under near-separation, not a crash)."""
    with np.errstate(over="ignore"):
        return float(np.exp(x))


def _term_rows(fit: _Fit) -> list[dict]:
    se = np.sqrt(np.diag(fit.cov))
    rows = []
    for (name, level, ref), b, s in zip(fit.terms, fit.beta, se):
        rows.append({"variable": name, "level": level, "reference": ref, "odds_ratio": _exp(b),
                     "ci_low": _exp(b - _Z95 * s), "ci_high": _exp(b + _Z95 * s),
                     "p_value": float(2 * special.ndtr(-abs(b / s))) if np.isfinite(b) else float("nan")})
    return rows


def _variable_p(fit: _Fit) -> dict:
    out = {}
    for name in dict.fromkeys(t[0] for t in fit.terms):
        idx = [i for i, t in enumerate(fit.terms) if t[0] == name]
        b, v = fit.beta[idx], fit.cov[np.ix_(idx, idx)]
        if not np.isfinite(b).all() or not np.isfinite(v).all():
            out[name] = float("nan")
            continue
        wald = float(b @ np.linalg.solve(v, b))
        out[name] = float(stats.chi2.sf(wald, len(idx)))
    return out


def _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort):
    dev = _development_rows(frame, cohort, dev_cohort)
    y = outcome_values(dev, outcome)
    forced = check_categorical(frame, categorical)
    names = candidate_variables(frame, variables, exclude={outcome, cohort})
    columns = {name: parse_column(dev, name, name in forced) for name in names}
    return y, columns, _check_reference(reference, columns)


def _result(fits: list[tuple[str, _Fit]]) -> LogisticResult:
    rows, fit_rows, var_p = [], [], {}
    for label, fit in fits:
        rows.extend(_term_rows(fit))
        fit_rows.append({"model": label, "n": fit.n, "n_events": fit.n_events, "n_missing": fit.n_missing,
                         "status": fit.status})
        var_p.update(_variable_p(fit))
    return LogisticResult(pd.DataFrame(rows, columns=LOGISTIC_COLUMNS), pd.DataFrame(fit_rows, columns=FIT_COLUMNS),
                          var_p)


def univariate_logistic(frame: pd.DataFrame, *, outcome: str, variables=None, categorical=(), reference=None,
                        cohort: str | None = None, dev_cohort: str = "training") -> LogisticResult:
    """One logistic regression of the outcome per variable (Table 3, univariate columns).

    Parameters
    ----------
    frame : DataFrame
        One row per patient.
    outcome : str, keyword-only
        Column of 0/1 outcomes.
    variables : sequence of str, optional
        Candidate variables; default every column except outcome, cohort and ``patient_id``.
    categorical : sequence of str
        Numeric columns to dummy-code (text and pandas ``Categorical`` columns always are).
    reference : mapping, optional
        Variable -> reference level. Default: the first level, in the column's level order,
        that a patient of the model has (R's ``glm`` drops unused factor levels): a pandas
        ``Categorical``'s categories in order (study.yaml's ``levels``, which
        ``StudyConfig.clinical_variables`` declares so), as R's ``factor(x, levels = ...)``;
        otherwise levels that read as numbers by value (lowest first), then text by code point
        (R's ``factor()`` under ``LC_COLLATE=C``; :func:`dlr.core.tables.parse_column`).
    cohort : str, optional
        Cohort column. When given, only patients with ``cohort == dev_cohort`` are used;
        without it the caller has already selected the development cohort.
    dev_cohort : str
        Development cohort (default ``training``, as ``--dev-cohort``).

    Returns
    -------
    LogisticResult
        NaN rows, with an ``UndefinedStatisticWarning``, for a model with separation, a
        singular design, a single outcome class or a constant variable.

    Notes
    -----
    logit P(y = 1) = b0 + x'b by maximum likelihood (:func:`dlr.core.stats.logistic.fit_logistic`,
    Newton-Raphson); Var(b) = (X'WX)^{-1} at the maximum, W = diag(p(1 - p)). Odds ratio
    exp(b), Wald CI exp(b -/+ 1.96 SE), Wald p = 2 Phi(-|b / SE|). Complete cases of each
    model's variables. Matches R ``glm(y ~ x, family = binomial)`` with ``confint.default``
    and ``summary()$coefficients`` (and SPSS's logistic regression table); a categorical
    variable's terms are R's treatment contrasts, one per non-reference level in the level order.

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013.
    """
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    return _result([(name, _fit_model(name, [col], y, ref)) for name, col in columns.items()])


def multivariate_logistic(frame: pd.DataFrame, *, outcome: str, variables=None, categorical=(), reference=None,
                          cohort: str | None = None, dev_cohort: str = "training") -> LogisticResult:
    """One logistic regression of the outcome on all ``variables`` together.

    Parameters and returns as :func:`univariate_logistic`; the single model uses the patients
    complete in every variable (``fits.n_missing`` counts the others) and is labelled
    ``multivariate``. With no variables the table is empty.

    Notes
    -----
    Matches R ``glm(y ~ x1 + x2 + ..., family = binomial)`` with Wald CIs (``confint.default``).

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013.
    """
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    if not columns:
        return _result([])
    return _result([("multivariate", _fit_model("multivariate", list(columns.values()), y, ref))])


def select_cr_factors(frame: pd.DataFrame, *, outcome: str, variables=None, alpha: float = 0.05, categorical=(),
                      reference=None, cohort: str | None = None, dev_cohort: str = "training") -> CRSelection:
    """The paper's selection of clinical-radiological factors (Table 3).

    Variables with univariate p < ``alpha`` enter one multivariate model; those with
    multivariate p < ``alpha`` are selected. Other parameters as :func:`univariate_logistic`.

    Returns
    -------
    CRSelection

    Notes
    -----
    A variable's p is the joint Wald test of its terms (chi-squared, df = number of terms; the
    term's own p for binary and continuous variables), as SPSS prints for a categorical
    covariate and R ``car::Anova(fit, type = 3, test = "Wald")`` computes. A NaN p (an
    undefined fit) neither enters nor is selected.

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013,
    ch. 4 (purposeful selection).
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, got {alpha!r}")
    y, columns, ref = _prepare(frame, outcome, variables, categorical, reference, cohort, dev_cohort)
    uni = _result([(name, _fit_model(name, [col], y, ref)) for name, col in columns.items()])
    entered = [name for name in columns if uni.variable_p[name] < alpha]
    if entered:
        multi = _result([("multivariate", _fit_model("multivariate", [columns[n] for n in entered], y, ref))])
    else:
        multi = _result([])
    selected = tuple(name for name in entered if multi.variable_p[name] < alpha)
    rows = [{"variable": name, "univariate_p": uni.variable_p[name], "entered": name in entered,
             "multivariate_p": multi.variable_p.get(name, float("nan")), "selected": name in selected}
            for name in columns]
    return CRSelection(uni, multi, selected, pd.DataFrame(rows, columns=SELECTION_COLUMNS), alpha)
