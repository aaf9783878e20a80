"""The clinical arm: the clinical-radiological (CR) model and the comparators.

CR model (the paper's "Clinical-radiological and combined models"): the factors selected by
univariate then multivariate logistic regression on the development cohort (exactly what
``dlr logistic --study`` reports: :func:`dlr.modeling.cr_factors.select_cr_factors` with study.yaml's
candidates and cut points), refitted as one unpenalised logistic regression on the development
cohort, then applied unchanged to every cohort.

Design coding: a variable with a cut point enters as the indicator ``value > cut`` (the paper's
"AST > 40 U/L"); a categorical variable as indicators of its non-reference levels (reference =
the first of study.yaml's ``levels``, else the first in sorted order); a binary 0/1 or a
continuous variable without a cut point as its number.

Comparators (contract section 3): BCLC, CNLC, ERASL, NLR, PLR, LMR from
:func:`dlr.modeling.staging.compute_staging` on the raw inputs, as ``dlr staging --study`` does;
ERASL uses study.yaml's published coefficients, or is refitted on the development cohort.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from dlr.core.errors import InputError
from dlr.core.stats.logistic import fit_logistic

from .cr_factors import CRSelection, select_cr_factors

COMPARATORS = ("BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR")


class CRModelError(InputError):
    """No CR model can be built from the development cohort (no factor selected, or no finite fit)."""


class NoCRFactorError(CRModelError):
    """The selection finds no factor with multivariate p < alpha (the other CRModelError: no finite fit)."""


@dataclass(frozen=True)
class Coding:
    """How one factor becomes design columns."""

    variable: str
    kind: str            # "cut", "levels" or "number"
    cut: float | None
    levels: tuple        # non-reference levels for kind "levels"
    reference: str | None

    def columns(self) -> list[str]:
        if self.kind == "cut":
            return [f"{self.variable}>{self.cut:g}"]
        if self.kind == "levels":
            return [f"{self.variable}={level}" for level in self.levels]
        return [self.variable]


def _coding(config, frame_dev: pd.DataFrame, name: str) -> Coding:
    variable = next((v for v in config.variables if v.name == name), None)
    if variable is not None and variable.cut_point is not None:
        return Coding(name, "cut", float(variable.cut_point), (), None)
    values = frame_dev[name]
    numeric = pd.to_numeric(values, errors="coerce")
    if variable is not None and variable.type == "categorical" or numeric.isna().sum() > values.isna().sum():
        seen = sorted({str(v) for v in values.dropna()})
        order = [lv for lv in (variable.levels or []) if lv in seen] + [lv for lv in seen
                                                                       if lv not in (variable.levels or [])]
        return Coding(name, "levels", None, tuple(order[1:]), order[0] if order else None)
    return Coding(name, "number", None, (), None)


def design(frame: pd.DataFrame, codings) -> pd.DataFrame:
    """Design columns of ``codings`` for the patients of ``frame`` (NaN where a value is missing)."""
    out = {}
    for c in codings:
        values = frame[c.variable]
        if c.kind == "cut":
            x = pd.to_numeric(values, errors="coerce")
            out[c.columns()[0]] = np.where(x.isna(), np.nan, (x > c.cut).astype(float))
        elif c.kind == "levels":
            text = values.astype(object).where(values.notna())
            for level, col in zip(c.levels, c.columns()):
                out[col] = np.where(text.isna(), np.nan, (text.astype(str) == level).astype(float))
        else:
            out[c.columns()[0]] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class CRModel:
    """The fitted CR model.

    Attributes
    ----------
    factors : tuple of str
        The selected variables (``dlr logistic``'s selected.txt).
    codings : tuple of Coding
    columns : tuple of str
        Design columns, in coefficient order after the intercept.
    coefficients : ndarray
        Intercept, then one per column (log odds).
    selection : CRSelection
        Univariate and multivariate tables of the selection.
    """

    factors: tuple
    codings: tuple
    columns: tuple
    coefficients: np.ndarray
    selection: CRSelection

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(outcome = 1) for each row of ``frame`` (NaN where a factor is missing)."""
        x = design(frame, self.codings).to_numpy(dtype=float)
        return special.expit(self.coefficients[0] + x @ self.coefficients[1:])

    def parameters(self) -> dict:
        return {"factors": list(self.factors), "columns": list(self.columns),
                "coefficients": [float(b) for b in self.coefficients]}


def _refit(frame: pd.DataFrame, config, codings, selection) -> CRModel:
    """The CR model on ``codings``: one unpenalised logistic regression on the rows of ``frame``."""
    factors = tuple(c.variable for c in codings)
    x = design(frame, codings)
    complete = x.notna().all(axis=1).to_numpy()
    y = frame[config.outcome_column].to_numpy(dtype=float)[complete]
    exog = np.column_stack([np.ones(int(complete.sum())), x.to_numpy(dtype=float)[complete]])
    beta = fit_logistic(y, exog)
    if not np.all(np.isfinite(beta)):
        raise CRModelError(f"the CR model on {', '.join(factors)} has no finite fit in the development "
                           "cohort (complete separation or a constant factor)")
    return CRModel(factors, tuple(codings), tuple(x.columns), beta, selection)


def refit_cr(clinical: pd.DataFrame, config, model: CRModel, *, dev_ids) -> CRModel:
    """``model``'s factors and coding, their coefficients refitted on the patients ``dev_ids``.

    The documented fallback of an out-of-fold refit whose own CR selection finds no factor:
    the development cohort's factors are kept (their choice saw the held-out fold; their
    coefficients do not). Raises CRModelError when the refit has no finite maximum.
    """
    frame = clinical[clinical[config.id_column].astype(str).isin(set(map(str, dev_ids)))]
    return _refit(frame, config, model.codings, model.selection)


def fit_cr(clinical: pd.DataFrame, config, *, dev_ids, alpha: float = 0.05) -> CRModel:
    """Select the CR factors and fit the CR model on the development patients ``dev_ids``.

    Raises
    ------
    CRModelError
        No factor is selected (its subclass NoCRFactorError), or the refit has no finite
        maximum (separation); the message names the factors.
    """
    frame = clinical[clinical[config.id_column].astype(str).isin(set(map(str, dev_ids)))]
    table, candidates, categorical = config.clinical_variables(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined univariate fits are NaN rows of the table, as dlr logistic shows
        selection = select_cr_factors(table, outcome=config.outcome_column, variables=candidates,
                                      categorical=categorical, alpha=alpha)
    if not selection.selected:
        raise NoCRFactorError(f"no clinical-radiological factor has multivariate p < {alpha:g} in the development "
                              f"cohort ({len(frame)} patients); the CR model cannot be built (see `dlr logistic "
                              "--study`)")
    return _refit(frame, config, tuple(_coding(config, frame, name) for name in selection.selected), selection)


def comparator_table(clinical: pd.DataFrame, config, *, bclc_version: str = "2022",
                     erasl=None) -> tuple[pd.DataFrame, str, object]:
    """(patient_id + COMPARATORS scores, ERASL label, ERASL coefficients) for every patient, as
    ``dlr staging --study``; ``erasl`` (a bundle's coefficients, `dlr predict`) replaces study.yaml's
    and any refit."""
    from .staging import comparator_scores, compute_staging, map_staging_columns

    frame = map_staging_columns(clinical, staging_columns=config.staging_columns, id_column=config.id_column,
                                require_mapped=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # systems left empty are reported by `dlr staging`
        result = compute_staging(frame, bclc_version=bclc_version, outcome=config.outcome_column,
                                 cohort_column=config.cohort_column, dev_cohort=config.dev_cohort,
                                 erasl_coefficients=config.erasl if erasl is None else erasl)
    return comparator_scores(result.table), result.erasl_label, result.erasl_coefficients
