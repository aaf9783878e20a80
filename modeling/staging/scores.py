"""Every system at once (the staging table of ``dlr staging``) and the comparator score coding.

:func:`compute_staging` validates the inputs once and runs every system and index into one
:class:`StagingResult`; :func:`comparator_scores` codes its table as the comparator scores of
contract section 3 (BCLC 0, A, B, C, D -> 0-4; CNLC Ia ... IV -> 1-7; ERASL, NLR, PLR as they
are; LMR negated), higher = more likely outcome.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from dlr.core.errors import InputError, UndefinedStatisticWarning

from .erasl import ERASLCoefficients, ERASLNoInputs, _erasl_result, erasl_refit
from .indexes import lmr, nlr, plr
from .inputs import _inputs, _is_missing
from .results import SystemResult, _missing_frame, _table
from .systems import (BCLC_STAGES, BCLC_VERSIONS, CNLC_STAGES, albi, bclc_stage, child_pugh, clip_score, cnlc_stage,
                      okuda_stage)

#: Systems in the order of the ``missing`` table.
SYSTEMS = ("BCLC", "CNLC", "ERASL", "ALBI", "CLIP", "Okuda", "Child_Pugh", "NLR", "PLR", "LMR")
#: Columns of :attr:`StagingResult.table`, in order.
TABLE_COLUMNS = ("patient_id", "BCLC", "BCLC_child_pugh_b_flag", "CNLC", "ERASL", "ERASL_group", "ERASL_label",
                 "ALBI", "ALBI_grade", "CLIP", "Okuda", "Child_Pugh", "Child_Pugh_score", "NLR", "PLR", "LMR")

# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class StagingResult:
    """Every system for every patient (contract section 6, ``dlr staging``).

    Attributes
    ----------
    table : DataFrame
        Columns :data:`TABLE_COLUMNS`: ``BCLC`` (0, A, B, C, D), ``BCLC_child_pugh_b_flag``
        (True where BCLC 2022 stages a Child-Pugh B patient 0-C; <NA> where the class is unknown
        but could be B; always False for version 2010), ``CNLC`` (Ia ... IV), ``ERASL`` (linear
        predictor) and ``ERASL_group`` (low, intermediate, high), ``ERASL_label`` (``ERASL`` with
        published coefficients, ``ERASL (refit)`` when fitted here), ``ALBI`` (score) and
        ``ALBI_grade`` (1-3), ``CLIP`` (0-6), ``Okuda`` (I-III), ``Child_Pugh`` (A-C, the class
        the other systems used) and ``Child_Pugh_score`` (5-15), ``NLR``, ``PLR``, ``LMR``.
    missing : DataFrame
        ``patient_id``, ``system``, ``missing_inputs`` for each (patient, system) left empty.
    bclc_version : str
    erasl_label : str or None
        ``"ERASL"``, ``"ERASL (refit)"``, or None when ERASL could not be computed.
    erasl_coefficients : ERASLCoefficients or None
        The coefficients used (fitted ones for a refit).
    """

    table: pd.DataFrame
    missing: pd.DataFrame
    bclc_version: str
    erasl_label: str | None = None
    erasl_coefficients: "ERASLCoefficients | None" = None

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


# ----------------------------------------------------------------------------------------------
# Everything at once, and the comparator codes


def compute_staging(frame: pd.DataFrame, *, bclc_version: str = "2022", okuda_inclusive: bool = False,
                    erasl_coefficients: ERASLCoefficients | Mapping | None = None, outcome: str | None = None,
                    cohort_column: str = "cohort", dev_cohort: str = "training",
                    require_all_inputs: bool = False) -> StagingResult:
    """Every staging system and index for every patient (``dlr staging``, contract section 6).

    Parameters
    ----------
    frame : DataFrame
        One row per patient with ``patient_id`` and the raw inputs
        (:mod:`dlr.modeling.staging.inputs`); columns that are absent are missing for every patient.
    bclc_version : {"2022", "2010"}
    okuda_inclusive : bool
        Okuda with <= / >= at the albumin and bilirubin cut-offs (:func:`okuda_stage`).
    erasl_coefficients : ERASLCoefficients or mapping, optional
        Published ERASL coefficients (study.yaml). When absent and ``outcome`` is given, ERASL is
        refitted on the development cohort and labelled ``ERASL (refit)``; when both are absent,
        ERASL is empty and ``missing`` says so.
    outcome : str, optional
        Column holding the 0/1 outcome, for the refit.
    cohort_column, dev_cohort : str
        The development cohort for the refit: rows where ``frame[cohort_column] == dev_cohort``.
    require_all_inputs : bool
        Leave a stage empty whenever any of its inputs is missing (default: only when the
        missing inputs could change it).

    Returns
    -------
    StagingResult

    Notes
    -----
    Each system is computed by its own function (:func:`bclc_stage`, :func:`cnlc_stage`,
    :func:`erasl_score` / :func:`erasl_refit`, :func:`albi`, :func:`clip_score`,
    :func:`okuda_stage`, :func:`child_pugh`, :func:`nlr`, :func:`plr`, :func:`lmr`); the inputs
    are validated once, and every problem is reported in one :class:`InputError`.

    References
    ----------
    ``spec/staging.md`` and the references of each function.
    """
    if bclc_version not in BCLC_VERSIONS:
        raise InputError(f"BCLC version {bclc_version!r} is not one of {', '.join(BCLC_VERSIONS)}")
    inp = _inputs(frame)
    erasl_label, coefficients, erasl = None, None, None
    empty_reason = "coefficients (none in study.yaml, and no outcome for an ERASL (refit))"
    if erasl_coefficients is not None:
        coefficients = ERASLCoefficients.from_mapping(erasl_coefficients)
        erasl = _erasl_result(inp, coefficients)
    elif outcome is not None:
        for col in (outcome, cohort_column):
            if col not in frame.columns:
                raise InputError(f"ERASL refit: column {col!r} not found; the refit needs the outcome and the cohort "
                                 f"columns (columns present: {', '.join(map(str, frame.columns))})")
        dev = (frame[cohort_column].astype(object) == dev_cohort).to_numpy()
        if not dev.any():
            raise InputError(f"ERASL refit: no patient of development cohort {dev_cohort!r} in column "
                             f"{cohort_column!r}")
        try:
            refit = erasl_refit(inp, frame[outcome].to_numpy(dtype=object), dev)
            coefficients, erasl = refit.coefficients, refit.result
        except ERASLNoInputs as exc:  # a study that records none of them: ERASL stays empty, the rest goes on
            warnings.warn(f"{exc}; ERASL is left empty", UndefinedStatisticWarning, stacklevel=2)
            empty_reason = "an ERASL refit (no development patient has every ERASL input)"
    if erasl is None:
        erasl = SystemResult("ERASL", _table(inp, {"ERASL": np.full(inp.n, np.nan),
                                                   "ERASL_group": pd.Series([None] * inp.n, dtype=object),
                                                   "ERASL_label": pd.Series([None] * inp.n, dtype=object)}),
                             _missing_frame([(pid, "ERASL", empty_reason) for pid in inp.ids]))
    if coefficients is not None:
        erasl_label = coefficients.label

    parts = [
        bclc_stage(inp, version=bclc_version, require_all_inputs=require_all_inputs),
        cnlc_stage(inp, require_all_inputs=require_all_inputs),
        erasl,
        albi(inp),
        clip_score(inp, require_all_inputs=require_all_inputs),
        okuda_stage(inp, inclusive=okuda_inclusive, require_all_inputs=require_all_inputs),
        child_pugh(inp),
        nlr(inp), plr(inp), lmr(inp),
    ]
    table = pd.concat([parts[0].table] + [p.table.drop(columns="patient_id") for p in parts[1:]], axis=1)
    table = table[list(TABLE_COLUMNS)]
    missing = pd.concat([p.missing for p in parts], ignore_index=True)
    if len(missing):
        order = {pid: k for k, pid in enumerate(inp.ids)}
        rank = missing["patient_id"].map(order) * len(SYSTEMS) + missing["system"].map(SYSTEMS.index)
        missing = missing.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
    return StagingResult(table, missing, bclc_version, erasl_label, coefficients)


_BCLC_CODES = {stage: k for k, stage in enumerate(BCLC_STAGES)}
_CNLC_CODES = {stage: k + 1 for k, stage in enumerate(CNLC_STAGES)}


def comparator_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Comparator scores of contract section 3: higher = more likely outcome.

    Parameters
    ----------
    table : DataFrame
        :attr:`StagingResult.table` (or the ``staging.csv`` written from it).

    Returns
    -------
    DataFrame
        ``patient_id``, ``BCLC`` (0, A, B, C, D -> 0-4), ``CNLC`` (Ia, Ib, IIa, IIb, IIIa, IIIb,
        IV -> 1-7), ``ERASL`` (the score), ``NLR``, ``PLR`` (the ratios), ``LMR`` (negated: lower
        LMR = higher risk); floats, NaN where the system is empty.
    """
    for col in ("patient_id", "BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR"):
        if col not in table.columns:
            raise InputError(f"comparator scores: column {col!r} not found in the staging table")
    out = {"patient_id": table["patient_id"].to_numpy(dtype=object)}
    for col, codes in (("BCLC", _BCLC_CODES), ("CNLC", _CNLC_CODES)):
        values = []
        for pid, v in zip(table["patient_id"], table[col]):
            if _is_missing(v):
                values.append(np.nan)
                continue
            key = str(int(v)) if isinstance(v, numbers.Number) and not isinstance(v, bool) and v == int(v) else str(v)
            if key not in codes:
                raise InputError(f"comparator scores: patient {pid!r}, column {col!r}: {v!r} is not a {col} stage "
                                 f"({', '.join(codes)})")
            values.append(float(codes[key]))
        out[col] = np.array(values, dtype=float)
    for col in ("ERASL", "NLR", "PLR"):
        out[col] = pd.to_numeric(table[col], errors="raise").to_numpy(dtype=float)
    out["LMR"] = -pd.to_numeric(table["LMR"], errors="raise").to_numpy(dtype=float)
    return pd.DataFrame(out)
