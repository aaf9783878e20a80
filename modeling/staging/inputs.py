"""The raw inputs of the staging systems: parsing and validation, once, at the boundary.

Holds :class:`_Inputs` (every input column parsed to float arrays, NaN = missing, and canonical
categories, None = missing; the Child-Pugh class every system uses resolved once), the missing
tokens, the numeric / binary / graded / categorical parsing, the patient identifiers, the
Child-Pugh points and the cut-offs that parsing and the rule engine share, and
:func:`map_staging_columns`, which puts a user's clinical table under the contract's names. The
"determined despite missing inputs" logic is in :mod:`dlr.modeling.staging.determined`.

The inputs are a pandas DataFrame with the contract's column names and units
(``spec/contract.md`` section 2):

=========================== ===========================================================
``patient_id``              patient identifier (the frame's index when absent)
``ecog_ps``                 ECOG performance status, integer 0-4
``child_pugh_class``        A, B or C
``child_pugh_score``        integer 5-15
``tbil``                    total bilirubin, umol/L
``alb``                     albumin, g/L
``tumor_number``            number of nodules, integer >= 1
``tumor_diameter``          diameter of the largest nodule, cm
``macrovascular_invasion``  0/1, imaging-seen tumour thrombus
``portal_vein_thrombosis``  0/1
``extrahepatic_spread``     0/1 (nodal or distant)
``tumor_extent_over_50pct`` 0/1, tumour occupies more than half of the liver
``afp``                     alpha-fetoprotein, ng/mL
``gender``                  Male/Female (M/F accepted)
``neutrophils`` ...         ``lymphocytes``, ``monocytes``, ``platelets``: 10^9/L
=========================== ===========================================================

Optional inputs, used when present: ``inr``; ``ascites`` and ``encephalopathy`` coded 0 / 1 / 2
(or ``none`` / ``mild`` / ``moderate-severe`` for ascites, ``none`` / ``grade 1-2`` /
``grade 3-4`` for encephalopathy), which give the Child-Pugh class when neither
``child_pugh_class`` nor ``child_pugh_score`` is recorded, and ``ascites`` (present when > 0)
for Okuda; ``tumor_multiple`` (0/1), which stands in for an unrecorded ``tumor_number``: 0 means a
single nodule, 1 means two or more of unknown count (datasets that record only
"uninodular/multinodular").

An empty cell is unknown, never "absent" or 0. Bad values (a Child-Pugh class "E", a negative
count, text in a numeric column, bilirubin that looks like mg/dL) raise
:class:`dlr.core.errors.InputError` naming the patient, the column and the fix, listing every problem
found.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping

import numpy as np
import pandas as pd

from dlr.core.errors import InputError

# Cut-offs in the input units, as literals: 2 and 3 mg/dL of bilirubin are 34.2 and 51.3 umol/L
# (x 17.1). Converting instead (51.3 / 17.1 = 2.9999999999999996, 3 * 17.1 = 51.300000000000004)
# moves a patient at exactly 51.3 umol/L across a cut-off. Shared with the systems and with the
# representative values of the rule engine (modeling.staging.determined).
_TBIL_2_MGDL = 34.2
_TBIL_3_MGDL = 51.3
_CLIP_AFP = 400.0
_MAX_LISTED = 20

# ----------------------------------------------------------------------------------------------
# Input parsing and validation (once, at the boundary)

_MISSING_TOKENS = {"", "na", "n/a", "nan", "null"}
_BINARY_COLUMNS = ("macrovascular_invasion", "portal_vein_thrombosis", "extrahepatic_spread",
                   "tumor_extent_over_50pct", "tumor_multiple")
# column: (integer, low, low_inclusive, high, what it is)
_NUMERIC_COLUMNS = {
    "ecog_ps": (True, 0, True, 4, "an ECOG performance status (integer 0-4)"),
    "child_pugh_score": (True, 5, True, 15, "a Child-Pugh score (integer 5-15)"),
    "tbil": (False, 0, False, None, "a bilirubin in umol/L (> 0)"),
    "alb": (False, 0, False, None, "an albumin in g/L (> 0)"),
    "inr": (False, 0, False, None, "an INR (> 0)"),
    "tumor_number": (True, 1, True, None, "a nodule count (integer >= 1)"),
    "tumor_diameter": (False, 0, False, None, "a largest-nodule diameter in cm (> 0)"),
    "afp": (False, 0, True, None, "an AFP in ng/mL (>= 0)"),
    "neutrophils": (False, 0, True, None, "a neutrophil count in 10^9/L (>= 0)"),
    "lymphocytes": (False, 0, True, None, "a lymphocyte count in 10^9/L (>= 0)"),
    "monocytes": (False, 0, True, None, "a monocyte count in 10^9/L (>= 0)"),
    "platelets": (False, 0, True, None, "a platelet count in 10^9/L (>= 0)"),
}
_GRADED = {  # Child-Pugh ascites / encephalopathy categories -> 0 none, 1 mild, 2 moderate-severe
    "ascites": {"0": 0, "1": 1, "2": 2, "none": 0, "absent": 0, "no": 0, "mild": 1, "slight": 1,
                "moderate": 2, "severe": 2, "moderate-severe": 2, "moderate/severe": 2, "tense": 2},
    "encephalopathy": {"0": 0, "1": 1, "2": 2, "none": 0, "absent": 0, "no": 0, "grade 1-2": 1,
                       "grade 1": 1, "grade 2": 1, "mild": 1, "grade 3-4": 2, "grade 3": 2, "grade 4": 2,
                       "severe": 2},
}
_GRADED_FIX = {
    "ascites": "use 0 (none), 1 (mild) or 2 (moderate-severe)",
    "encephalopathy": "use 0 (none), 1 (grade 1-2) or 2 (grade 3-4)",
}
_CATEGORIES = {
    "child_pugh_class": ({"a": "A", "b": "B", "c": "C"}, "use A, B or C"),
    "gender": ({"male": "Male", "m": "Male", "female": "Female", "f": "Female"}, "use Male or Female"),
}
_CP_COMPONENTS = ("tbil", "alb", "inr", "ascites", "encephalopathy")


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in _MISSING_TOKENS


def _text(value) -> str:
    return str(value).strip().lower()


def _patient_ids(frame: pd.DataFrame) -> np.ndarray:
    if "patient_id" in frame.columns:
        ids = frame["patient_id"].to_numpy(dtype=object)
        empty = [i for i, v in enumerate(ids) if _is_missing(v)]
        if empty:
            raise InputError(f"column 'patient_id' is empty on row(s) {', '.join(str(i + 1) for i in empty[:10])} "
                             "(counting data rows from 1); give every patient an identifier")
    else:
        ids = frame.index.to_numpy(dtype=object)
    seen, dup = set(), []
    for v in ids:
        if v in seen:
            dup.append(v)
        seen.add(v)
    if dup:
        raise InputError(f"column 'patient_id': patient(s) {', '.join(map(repr, dict.fromkeys(dup)))} appear on more "
                         "than one row; staging needs one row per patient")
    return ids


class _Bad(str):
    """Why a cell of an input column is not valid (the message after its patient and column)."""


class _Inputs:
    """Validated inputs: float arrays (NaN = missing) and canonical categories (None = missing)."""

    def __init__(self, frame: pd.DataFrame):
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"staging needs a pandas DataFrame of clinical inputs, got {type(frame).__name__}")
        self.ids = _patient_ids(frame)
        self.n = len(frame)
        self.num: dict[str, np.ndarray] = {}
        self.cat: dict[str, np.ndarray] = {}
        problems: list[str] = []

        def where(i, col):
            return f"patient {self.ids[i]!r}, column {col!r}"

        def cells(col, out, parse):
            """``out`` with each present cell of ``col`` parsed; a _Bad result is a problem, not a value."""
            if col in frame.columns:
                for i, v in enumerate(frame[col].to_numpy(dtype=object)):
                    if _is_missing(v):
                        continue
                    value = parse(v)
                    if isinstance(value, _Bad):
                        problems.append(f"{where(i, col)}: {value}")
                    else:
                        out[i] = value
            return out

        for col, (integer, low, low_incl, high, what) in _NUMERIC_COLUMNS.items():
            def number(v, integer=integer, low=low, low_incl=low_incl, high=high, what=what):
                x = _as_float(v)
                bad = (x is None or not math.isfinite(x) or (integer and x != round(x))
                       or (x < low if low_incl else x <= low) or (high is not None and x > high))
                return _Bad(f"{v!r} is not {what}; correct it, or leave the cell empty if unknown") if bad else x
            self.num[col] = cells(col, np.full(self.n, np.nan), number)
        for col in _BINARY_COLUMNS:
            def binary(v):
                x = _as_float(v)
                return x if x in (0.0, 1.0) else _Bad(f"{v!r} is not 0/1; use 1 (present) or 0 (absent), or leave "
                                                      "the cell empty if unknown")
            self.num[col] = cells(col, np.full(self.n, np.nan), binary)
        for col, table in _GRADED.items():
            def graded(v, col=col, table=table):
                x = _as_float(v)
                if x is None:
                    key = _text(v)
                else:
                    key = str(int(x)) if math.isfinite(x) and x == round(x) else "?"
                return table[key] if key in table else _Bad(f"{v!r} is not a valid {col} code; {_GRADED_FIX[col]}")
            self.num[col] = cells(col, np.full(self.n, np.nan), graded)
        for col, (table, fix) in _CATEGORIES.items():
            def category(v, table=table, fix=fix):
                return table[_text(v)] if _text(v) in table else _Bad(
                    f"{v!r} is not a valid value; {fix}, or leave the cell empty if unknown")
            self.cat[col] = cells(col, np.full(self.n, None, dtype=object), category)
        self.num["male"] = np.array([np.nan if g is None else float(g == "Male") for g in self.cat["gender"]])

        # units: a column whose typical value is impossible in the contract's unit
        for col, test, fix in (
            ("tbil", lambda m: m < 3.0, "bilirubin looks like mg/dL; multiply by 17.1 to give umol/L"),
            ("alb", lambda m: m < 10.0, "albumin looks like g/dL; multiply by 10 to give g/L"),
            ("tumor_diameter", lambda m: m > 30.0, "diameters look like mm; divide by 10 to give cm"),
        ):
            values = self.num[col][~np.isnan(self.num[col])]
            if values.size and test(float(np.median(values))):
                problems.append(f"column {col!r}: median {float(np.median(values)):g} across "
                                f"{values.size} patient(s); {fix}")

        # tumor_multiple stands in for an unrecorded tumor_number and must agree with a recorded one
        number, multiple = self.num["tumor_number"], self.num["tumor_multiple"]
        for i in range(self.n):
            if not np.isnan(number[i]) and not np.isnan(multiple[i]) and (number[i] >= 2) != (multiple[i] == 1):
                problems.append(f"{where(i, 'tumor_multiple')}: {int(multiple[i])} contradicts tumor_number "
                                f"{int(number[i])}; correct one of them")
        self.num["tumor_number"] = np.where(np.isnan(number) & (multiple == 0), 1.0, number)

        self._child_pugh(problems, where)
        if problems:
            shown = problems[:_MAX_LISTED]
            more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
            raise InputError(f"staging inputs: {len(problems)} problem(s):\n  " + "\n  ".join(shown) + more)

    def _child_pugh(self, problems, where):
        """Resolve each patient's Child-Pugh class: recorded class, else recorded score, else components."""
        self.cp_class = np.full(self.n, None, dtype=object)
        self.cp_candidates: list[tuple[str, ...]] = [("A", "B", "C")] * self.n
        self.cp_score = np.full(self.n, np.nan)
        self.cp_label = [""] * self.n
        recorded_class, recorded_score = self.cat["child_pugh_class"], self.num["child_pugh_score"]
        points = _child_pugh_component_points(self.num)
        for i in range(self.n):
            known = [p[i] for p in points.values() if not np.isnan(p[i])]
            absent = [c for c, p in points.items() if np.isnan(p[i])]
            from_components = _child_pugh_class_of(sum(known)) if not absent else None
            if recorded_class[i] is not None and not np.isnan(recorded_score[i]):
                if _child_pugh_class_of(recorded_score[i]) != recorded_class[i]:
                    problems.append(f"{where(i, 'child_pugh_class')}: class {recorded_class[i]} contradicts "
                                    f"child_pugh_score {int(recorded_score[i])} (A 5-6, B 7-9, C 10-15); correct "
                                    "one of them")
                    continue
            if recorded_class[i] is not None:
                cls = recorded_class[i]
                score = recorded_score[i] if not np.isnan(recorded_score[i]) else (
                    sum(known) if from_components == cls else np.nan)
            elif not np.isnan(recorded_score[i]):
                cls, score = _child_pugh_class_of(recorded_score[i]), recorded_score[i]
            elif not absent:
                cls, score = from_components, float(sum(known))
            else:
                low = _child_pugh_class_of(sum(known) + len(absent))
                high = _child_pugh_class_of(sum(known) + 3 * len(absent))
                span = tuple(c for c in "ABC" if low <= c <= high)
                self.cp_candidates[i] = span
                self.cp_class[i] = span[0] if len(span) == 1 else None
                self.cp_label[i] = ("child_pugh_class (no class, score or component recorded)"
                                    if len(absent) == len(_CP_COMPONENTS)
                                    else f"child_pugh_class (components missing: {', '.join(absent)})")
                continue
            self.cp_class[i], self.cp_score[i], self.cp_candidates[i] = cls, score, (cls,)

    # -- access for the rule engine
    def get(self, name: str, i: int):
        if name == "child_pugh":
            return self.cp_class[i]
        if name in self.cat:
            return self.cat[name][i]
        value = self.num[name][i]
        return None if np.isnan(value) else float(value)

    def domain(self, name: str, i: int, default):
        """Values a missing input could take, one representative per band of every rule."""
        if name == "child_pugh":
            return self.cp_candidates[i]
        if name == "tumor_number":
            return (2.0, 3.0, 4.0) if self.num["tumor_multiple"][i] == 1 else (1.0, 2.0, 3.0, 4.0)
        return default

    def label(self, name: str, i: int) -> str:
        if name == "child_pugh":
            return self.cp_label[i] or "child_pugh_class"
        if name == "tumor_number" and self.num["tumor_multiple"][i] == 1:
            return "tumor_number (multiple, count unknown)"
        return name


def _as_float(value) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, numbers.Number):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _inputs(frame) -> _Inputs:
    return frame if isinstance(frame, _Inputs) else _Inputs(frame)


# ----------------------------------------------------------------------------------------------
# Child-Pugh points (the class every system uses is resolved above, from these)


def _child_pugh_class_of(score: float) -> str:
    return "A" if score <= 6 else ("B" if score <= 9 else "C")


def _banded(x: np.ndarray, low: float, high: float, *, higher_is_worse: bool) -> np.ndarray:
    """1/2/3 points for values below / within (inclusive) / above [low, high]; NaN stays NaN."""
    if higher_is_worse:
        pts = np.where(x < low, 1.0, np.where(x <= high, 2.0, 3.0))
    else:
        pts = np.where(x > high, 1.0, np.where(x >= low, 2.0, 3.0))
    return np.where(np.isnan(x), np.nan, pts)


def _child_pugh_component_points(num: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "tbil": _banded(num["tbil"], _TBIL_2_MGDL, _TBIL_3_MGDL, higher_is_worse=True),
        "alb": _banded(num["alb"], 28.0, 35.0, higher_is_worse=False),
        "inr": _banded(num["inr"], 1.7, 2.3, higher_is_worse=True),
        "ascites": num["ascites"] + 1.0,
        "encephalopathy": num["encephalopathy"] + 1.0,
    }


# ----------------------------------------------------------------------------------------------
# A user's clinical table under the contract's names


def map_staging_columns(frame: pd.DataFrame, *, staging_columns: Mapping[str, str], id_column: str = "patient_id",
                        source: str = "study.yaml", table: str = "clinical.csv",
                        require_mapped: bool = True) -> pd.DataFrame:
    """A user's clinical table with the contract's input names (study.yaml ``staging_columns``).

    Parameters
    ----------
    frame : DataFrame
        The clinical table as read; it is not modified.
    staging_columns : mapping
        Contract input name -> the user's column (study.yaml ``staging_columns``); may be empty.
    id_column : str
        The user's patient-identifier column (study.yaml ``id_column``), renamed ``patient_id``.
    source, table : str
        How the study.yaml and the clinical table are named in the error messages.
    require_mapped : bool
        True (default, as ``dlr staging --study``): a mapped column that ``frame`` lacks is an
        error. False (as :func:`dlr.modeling.clinical.comparator_table`): it is not checked, and the
        contract input it stands for is missing for every patient.

    Returns
    -------
    DataFrame
        A new frame: each mapped column under its contract name (a column of ``frame`` that
        already has a mapped contract name, and is not itself mapped, is dropped first; an
        identity entry or a swap of two names keeps both columns), ``id_column`` renamed
        ``patient_id``, ``patient_id`` converted to text (``astype(str)``), the other columns
        unchanged.

    Raises
    ------
    InputError
        With ``require_mapped``, a mapped column absent from ``frame`` (the message names
        ``source`` and ``table``); the result has no ``patient_id`` column (names ``table``).

    """
    if require_mapped:
        absent = sorted(c for c in staging_columns.values() if c not in frame.columns)
        if absent:
            raise InputError(f"{source}: staging_columns names column(s) {', '.join(absent)}, which "
                             f"{table} does not have")
    sources = set(staging_columns.values())
    # a column already named as a contract input gives way to the column mapped onto it, unless it
    # is itself mapped (an identity entry, or two names swapped)
    frame = frame.drop(columns=[k for k in staging_columns if k in frame.columns and k not in sources]).rename(
        columns={v: k for k, v in staging_columns.items()})
    if id_column != "patient_id" and id_column in frame.columns:
        frame = frame.rename(columns={id_column: "patient_id"})
    if "patient_id" not in frame.columns:
        raise InputError(f"{table}: no 'patient_id' column; the staging inputs are named as in contract "
                         f"section 2 (ecog_ps, child_pugh_class, tbil, alb, tumor_number, tumor_diameter, ...)")
    frame["patient_id"] = frame["patient_id"].astype(str)
    return frame
