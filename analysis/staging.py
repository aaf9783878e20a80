"""Staging systems and prognostic indexes of hepatocellular carcinoma, computed from raw inputs.

BCLC, CNLC, CLIP, Okuda, Child-Pugh, ALBI, NLR, PLR, LMR and the preoperative ERASL model, each
by one function that cites its source. Definitions and the project's decisions are those of
``spec/staging.md``; the inputs are a pandas DataFrame with the contract's column names and units
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

Missing inputs. An empty cell is unknown, never "absent" or 0. A stage is reported when the
inputs present determine it: every value the missing inputs could take gives the same stage
(a patient with ECOG PS 3 is BCLC D whatever the tumour size). Otherwise the system is empty for
that patient (None / NaN / <NA>) and ``missing`` names the inputs that were missing. With
``require_all_inputs=True`` a system is empty whenever any of its inputs is missing. Continuous
scores (ALBI, the ratios, ERASL) need all of their inputs.

Bad values (a Child-Pugh class "E", a negative count, text in a numeric column, bilirubin that
looks like mg/dL) raise :class:`analysis.errors.InputError` naming the patient, the column and the
fix, listing every problem found.
"""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from .errors import InputError
from .logistic import fit_logistic

BCLC_STAGES = ("0", "A", "B", "C", "D")
CNLC_STAGES = ("Ia", "Ib", "IIa", "IIb", "IIIa", "IIIb", "IV")
OKUDA_STAGES = ("I", "II", "III")
ERASL_GROUPS = ("low", "intermediate", "high")
BCLC_VERSIONS = ("2022", "2010")
REFIT_LABEL = "ERASL (refit)"
#: Systems in the order of the ``missing`` table.
SYSTEMS = ("BCLC", "CNLC", "ERASL", "ALBI", "CLIP", "Okuda", "Child_Pugh", "NLR", "PLR", "LMR")
#: Columns of :attr:`StagingResult.table`, in order.
TABLE_COLUMNS = ("patient_id", "BCLC", "BCLC_child_pugh_b_flag", "CNLC", "ERASL", "ERASL_group", "ERASL_label",
                 "ALBI", "ALBI_grade", "CLIP", "Okuda", "Child_Pugh", "Child_Pugh_score", "NLR", "PLR", "LMR")
MISSING_COLUMNS = ("patient_id", "system", "missing_inputs")

# Cut-offs in the input units, as literals: 2 and 3 mg/dL of bilirubin are 34.2 and 51.3 umol/L
# (x 17.1). Converting instead (51.3 / 17.1 = 2.9999999999999996, 3 * 17.1 = 51.300000000000004)
# moves a patient at exactly 51.3 umol/L across a cut-off.
_TBIL_2_MGDL = 34.2
_TBIL_3_MGDL = 51.3
_ALBI_GRADE_1_MAX = -2.60
_ALBI_GRADE_2_MAX = -1.39
_CLIP_AFP = 400.0
_MAX_LISTED = 20

# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SystemResult:
    """Per-patient result of one staging system or index.

    Attributes
    ----------
    system : str
        The system's name, as in :data:`SYSTEMS`.
    table : DataFrame
        ``patient_id`` and the system's columns, one row per input row, in input order.
    missing : DataFrame
        ``patient_id``, ``system``, ``missing_inputs``: one row per patient for whom the system
        is empty, naming the inputs that were missing (comma-separated).
    """

    system: str
    table: pd.DataFrame
    missing: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


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

        for col, (integer, low, low_incl, high, what) in _NUMERIC_COLUMNS.items():
            out = np.full(self.n, np.nan)
            if col in frame.columns:
                for i, v in enumerate(frame[col].to_numpy(dtype=object)):
                    if _is_missing(v):
                        continue
                    x = _as_float(v)
                    bad = (x is None or not math.isfinite(x) or (integer and x != round(x))
                           or (x < low if low_incl else x <= low) or (high is not None and x > high))
                    if bad:
                        problems.append(f"{where(i, col)}: {v!r} is not {what}; correct it, or leave the cell "
                                        "empty if unknown")
                    else:
                        out[i] = x
            self.num[col] = out
        for col in _BINARY_COLUMNS:
            out = np.full(self.n, np.nan)
            if col in frame.columns:
                for i, v in enumerate(frame[col].to_numpy(dtype=object)):
                    if _is_missing(v):
                        continue
                    x = _as_float(v)
                    if x not in (0.0, 1.0):
                        problems.append(f"{where(i, col)}: {v!r} is not 0/1; use 1 (present) or 0 (absent), "
                                        "or leave the cell empty if unknown")
                    else:
                        out[i] = x
            self.num[col] = out
        for col, table in _GRADED.items():
            out = np.full(self.n, np.nan)
            if col in frame.columns:
                for i, v in enumerate(frame[col].to_numpy(dtype=object)):
                    if _is_missing(v):
                        continue
                    x = _as_float(v)
                    if x is None:
                        key = _text(v)
                    else:
                        key = str(int(x)) if math.isfinite(x) and x == round(x) else "?"
                    if key not in table:
                        problems.append(f"{where(i, col)}: {v!r} is not a valid {col} code; {_GRADED_FIX[col]}")
                    else:
                        out[i] = table[key]
            self.num[col] = out
        for col, (table, fix) in _CATEGORIES.items():
            out = np.full(self.n, None, dtype=object)
            if col in frame.columns:
                for i, v in enumerate(frame[col].to_numpy(dtype=object)):
                    if _is_missing(v):
                        continue
                    if _text(v) not in table:
                        problems.append(f"{where(i, col)}: {v!r} is not a valid value; {fix}, or leave the cell "
                                        "empty if unknown")
                    else:
                        out[i] = table[_text(v)]
            self.cat[col] = out
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
# The rule engine: evaluate a scalar rule, or decide that the missing inputs leave it open

# Representative values of a missing input: one inside each interval between the cut-offs of every
# rule, and the cut-offs themselves (2, 3 and 5 cm; inclusive in one version, strict in the other).
# The rules are step functions of these inputs, so agreement over the representatives is agreement
# over every value (checked against complete data by a randomised test).
_DIAMETERS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
_DOMAINS = {
    "ecog_ps": (0.0, 1.0, 2.0, 3.0, 4.0),
    "macrovascular_invasion": (0.0, 1.0),
    "portal_vein_thrombosis": (0.0, 1.0),
    "extrahepatic_spread": (0.0, 1.0),
    "tumor_extent_over_50pct": (0.0, 1.0),
    "tumor_diameter": _DIAMETERS,
    "afp": (0.0, _CLIP_AFP),
    "ascites": (0.0, 1.0),
    "alb": (20.0, 30.0, 40.0),
    "tbil": (20.0, _TBIL_3_MGDL, 60.0),
}
_OPEN = object()  # "not determined by the inputs present"


def _staged(inp: _Inputs, system: str, names: tuple[str, ...], rule: Callable[..., object], *,
            require_all_inputs: bool) -> tuple[list, list[tuple]]:
    """Apply ``rule(**inputs)`` to every patient; (values, missing rows). None = empty."""
    values, missing, cache = [], [], {}
    for i in range(inp.n):
        known = {name: inp.get(name, i) for name in names}
        unknown = [name for name in names if known[name] is None]
        if not unknown:
            key = ("complete", *known.values())
            if key not in cache:
                cache[key] = rule(**known)
            values.append(cache[key])
            continue
        domains = [inp.domain(name, i, _DOMAINS.get(name)) for name in unknown]
        if require_all_inputs or any(d is None for d in domains):
            result = _OPEN
        else:
            key = ("open", tuple(known.values()), tuple(domains))
            if key not in cache:
                cache[key] = _determined(rule, known, unknown, domains)
            result = cache[key]
        if result is _OPEN:
            values.append(None)
            missing.append((inp.ids[i], system, ", ".join(inp.label(name, i) for name in unknown)))
        else:
            values.append(result)
    return values, missing


def _determined(rule, known: dict, unknown: list[str], domains: list) -> object:
    """The rule's value if every completion of the unknown inputs gives the same value, else _OPEN."""
    first = _OPEN
    for combo in itertools.product(*domains):
        value = rule(**{**known, **dict(zip(unknown, combo))})
        if first is _OPEN:
            first = value
        elif value != first:
            return _OPEN
    return first


def _missing_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(MISSING_COLUMNS)).astype({"system": object,
                                                                          "missing_inputs": object})


def _continuous_missing(inp: _Inputs, system: str, values: np.ndarray, reasons: Mapping[str, np.ndarray]) -> list:
    """Missing rows for a continuous score: for each empty patient, the reasons (labels) that apply."""
    return [(inp.ids[i], system, ", ".join(text for text, mask in reasons.items() if mask[i]))
            for i in np.flatnonzero(np.isnan(values))]


def _absent(inp: _Inputs, *names: str) -> dict[str, np.ndarray]:
    return {name: np.isnan(inp.num[name]) for name in names}


def _table(inp: _Inputs, columns: dict) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": inp.ids, **columns})


# ----------------------------------------------------------------------------------------------
# Child-Pugh


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


def child_pugh(frame: pd.DataFrame) -> SystemResult:
    """Child-Pugh class (A-C) and score (5-15), recorded or computed from its five components.

    Parameters
    ----------
    frame : DataFrame
        ``child_pugh_class`` and/or ``child_pugh_score`` when recorded; otherwise the components
        ``tbil`` (umol/L), ``alb`` (g/L), ``inr``, ``ascites`` and ``encephalopathy`` (0 none,
        1 mild / grade 1-2, 2 moderate-severe / grade 3-4).

    Returns
    -------
    SystemResult
        ``table`` columns ``Child_Pugh`` (A, B, C) and ``Child_Pugh_score`` (<NA> where only a
        class is recorded, or where missing components leave the score open but not the class).

    Notes
    -----
    Points 1/2/3 for bilirubin < 34.2 / 34.2-51.3 / > 51.3 umol/L (2 and 3 mg/dL), albumin
    > 35 / 28-35 / < 28 g/L, INR < 1.7 / 1.7-2.3 / > 2.3, ascites none / mild / moderate-severe,
    encephalopathy none / grade 1-2 / grade 3-4; middle bands inclusive. Class A 5-6, B 7-9,
    C 10-15. Bilirubin is compared in umol/L with the literal cut-offs: 51.3 umol/L / 17.1 is
    2.9999999999999996 mg/dL in floating point, so converting first would misplace a patient at
    the cut-off. A recorded class wins over the components; a recorded class and score that
    disagree are an error. With components missing, the class is still given when every value
    of the missing ones (1 to 3 points each) gives the same class.

    References
    ----------
    Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the oesophagus
    for bleeding oesophageal varices. Br J Surg 1973;60:646-649. (``spec/staging.md``.)
    """
    inp = _inputs(frame)
    missing = [(inp.ids[i], "Child_Pugh", inp.cp_label[i]) for i in range(inp.n) if inp.cp_class[i] is None]
    table = _table(inp, {"Child_Pugh": pd.Series(inp.cp_class, dtype=object),
                         "Child_Pugh_score": pd.array(np.where(np.isnan(inp.cp_score), None, inp.cp_score),
                                                      dtype="Int64")})
    return SystemResult("Child_Pugh", table, _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# BCLC


def _bclc_rule(ecog_ps, child_pugh, macrovascular_invasion, extrahepatic_spread, tumor_number, tumor_diameter, *,
               version):
    if ecog_ps >= 3 or child_pugh == "C":
        return "D"
    if macrovascular_invasion or extrahepatic_spread or ecog_ps >= 1:
        return "C"
    if version == "2022":
        if tumor_number == 1:
            return "0" if tumor_diameter <= 2.0 else "A"
        return "A" if tumor_number <= 3 and tumor_diameter <= 3.0 else "B"
    if tumor_number == 1:
        return "0" if tumor_diameter < 2.0 and child_pugh == "A" else "A"
    return "A" if tumor_number <= 3 and tumor_diameter < 3.0 else "B"


_BCLC_INPUTS = ("ecog_ps", "child_pugh", "macrovascular_invasion", "extrahepatic_spread", "tumor_number",
                "tumor_diameter")


def bclc_stage(frame: pd.DataFrame, *, version: str = "2022", require_all_inputs: bool = False) -> SystemResult:
    """Barcelona Clinic Liver Cancer stage (0, A, B, C, D).

    Parameters
    ----------
    frame : DataFrame
        ``ecog_ps``, Child-Pugh (``child_pugh_class``, ``child_pugh_score`` or its components),
        ``macrovascular_invasion``, ``extrahepatic_spread``, ``tumor_number`` (or
        ``tumor_multiple``), ``tumor_diameter`` (cm, largest nodule).
    version : {"2022", "2010"}
        "2022" (default): Reig et al. 2022. "2010": the EASL-EORTC 2012 figure, for datasets
        treated before 2022.
    require_all_inputs : bool
        Leave the stage empty when any input is missing, even one that cannot change it.

    Returns
    -------
    SystemResult
        ``table`` columns ``BCLC`` (str or None) and ``BCLC_child_pugh_b_flag`` (boolean
        <NA>-able): True where version 2022 stages a Child-Pugh B patient 0-C, the patients whose
        stage depends on not treating Child-Pugh B as end-stage; <NA> where the class is unknown
        but could be B; False otherwise, and always False in version 2010.

    Notes
    -----
    In order: **D** ECOG PS 3-4 or Child-Pugh C; **C** macrovascular invasion (imaging-seen
    tumour thrombus), extrahepatic spread, or ECOG PS 1-2; then, at PS 0, **0** a single nodule
    <= 2 cm; **A** a single nodule of any size, or 2-3 nodules with the largest <= 3 cm; **B**
    beyond A (>= 4 nodules, or 2-3 with one > 3 cm). Version 2010 uses strict < at 2 cm and 3 cm
    and requires Child-Pugh A for stage 0 (a Child-Pugh B single nodule < 2 cm is A).
    Child-Pugh B is staged by these rules in both versions (flagged in 2022, which asks for
    "preserved liver function" in 0-C without making B end-stage). Decisions: ``spec/staging.md``.

    References
    ----------
    Reig M, Forner A, Rimola J, et al. BCLC strategy for prognosis prediction and treatment
    recommendation: the 2022 update. J Hepatol 2022;76:681-693.
    European Association for the Study of the Liver, European Organisation for Research and
    Treatment of Cancer. EASL-EORTC clinical practice guidelines: management of hepatocellular
    carcinoma. J Hepatol 2012;56:908-943 (the BCLC figure; version "2010").
    """
    if version not in BCLC_VERSIONS:
        raise InputError(f"BCLC version {version!r} is not one of {', '.join(BCLC_VERSIONS)}")
    inp = _inputs(frame)

    def rule(**kw):
        return _bclc_rule(**kw, version=version)

    stages, missing = _staged(inp, "BCLC", _BCLC_INPUTS, rule, require_all_inputs=require_all_inputs)
    flags = []
    for i, stage in enumerate(stages):
        if stage is None:
            flags.append(pd.NA)
        elif version != "2022" or stage == "D":
            flags.append(False)
        elif inp.cp_class[i] is not None:
            flags.append(inp.cp_class[i] == "B")
        else:
            flags.append(pd.NA if "B" in inp.cp_candidates[i] else False)
    table = _table(inp, {"BCLC": pd.Series(stages, dtype=object),
                         "BCLC_child_pugh_b_flag": pd.array(flags, dtype="boolean")})
    return SystemResult("BCLC", table, _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# CNLC


def _cnlc_rule(ecog_ps, child_pugh, macrovascular_invasion, extrahepatic_spread, tumor_number, tumor_diameter):
    if ecog_ps >= 3 or child_pugh == "C":
        return "IV"
    if extrahepatic_spread:
        return "IIIb"
    if macrovascular_invasion:
        return "IIIa"
    if tumor_number == 1:
        return "Ia" if tumor_diameter <= 5.0 else "Ib"
    if tumor_number <= 3:
        return "Ib" if tumor_diameter <= 3.0 else "IIa"
    return "IIb"


def cnlc_stage(frame: pd.DataFrame, *, require_all_inputs: bool = False) -> SystemResult:
    """China Liver Cancer stage (Ia, Ib, IIa, IIb, IIIa, IIIb, IV).

    Parameters
    ----------
    frame : DataFrame
        The inputs of :func:`bclc_stage`.
    require_all_inputs : bool
        Leave the stage empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``CNLC`` (str or None).

    Notes
    -----
    In order: **IV** ECOG PS 3-4 or Child-Pugh C; **IIIb** extrahepatic metastasis; **IIIa**
    vascular invasion (tumour thrombus, the ``macrovascular_invasion`` input); then, with PS 0-2
    and Child-Pugh A/B: **Ia** single nodule <= 5 cm; **Ib** single > 5 cm, or 2-3 nodules with
    the largest <= 3 cm; **IIa** 2-3 nodules with the largest > 3 cm; **IIb** >= 4 nodules.
    ECOG PS 1-2 does not up-stage (unlike BCLC). The 2019 and 2022 editions agree on these rules.

    References
    ----------
    Zhou J, Sun H, Wang Z, et al. Guidelines for the diagnosis and treatment of primary liver
    cancer (2022 edition). Liver Cancer 2023;12:405-444.
    """
    inp = _inputs(frame)
    stages, missing = _staged(inp, "CNLC", _BCLC_INPUTS, _cnlc_rule, require_all_inputs=require_all_inputs)
    return SystemResult("CNLC", _table(inp, {"CNLC": pd.Series(stages, dtype=object)}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# CLIP


def _clip_rule(child_pugh, tumor_number, tumor_extent_over_50pct, afp, portal_vein_thrombosis):
    points = {"A": 0, "B": 1, "C": 2}[child_pugh]
    if tumor_extent_over_50pct:
        points += 2
    elif tumor_number >= 2:
        points += 1
    return points + int(afp >= _CLIP_AFP) + int(bool(portal_vein_thrombosis))


def clip_score(frame: pd.DataFrame, *, require_all_inputs: bool = False) -> SystemResult:
    """Cancer of the Liver Italian Program score (0-6).

    Parameters
    ----------
    frame : DataFrame
        Child-Pugh (class, score or components), ``tumor_number`` (or ``tumor_multiple``),
        ``tumor_extent_over_50pct``, ``afp`` (ng/mL), ``portal_vein_thrombosis``.
    require_all_inputs : bool
        Leave the score empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``CLIP`` (Int64, <NA> when empty).

    Notes
    -----
    Child-Pugh A/B/C: 0/1/2 points. Morphology: uninodular and extension <= 50%: 0;
    multinodular and extension <= 50%: 1; massive or extension > 50%: 2. AFP >= 400 ng/mL: 1.
    Portal vein thrombosis: 1. "Massive" is not among the contract's inputs: a massive tumour
    scores 2 through ``tumor_extent_over_50pct`` = 1 (it fills more than half of the liver).

    References
    ----------
    The Cancer of the Liver Italian Program (CLIP) Investigators. A new prognostic system for
    hepatocellular carcinoma: a retrospective study of 435 patients. Hepatology
    1998;28:751-755.
    """
    inp = _inputs(frame)
    scores, missing = _staged(inp, "CLIP", ("child_pugh", "tumor_number", "tumor_extent_over_50pct", "afp",
                                            "portal_vein_thrombosis"), _clip_rule,
                              require_all_inputs=require_all_inputs)
    return SystemResult("CLIP", _table(inp, {"CLIP": pd.array(scores, dtype="Int64")}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# Okuda


def okuda_stage(frame: pd.DataFrame, *, inclusive: bool = False, require_all_inputs: bool = False) -> SystemResult:
    """Okuda stage (I, II, III).

    Parameters
    ----------
    frame : DataFrame
        ``tumor_extent_over_50pct``, ``ascites`` (any ascites, > 0, scores), ``alb`` (g/L),
        ``tbil`` (umol/L).
    inclusive : bool
        False (default): albumin < 3 g/dL and bilirubin > 3 mg/dL score, as in Okuda 1985.
        True: <= and >=, as some later sources state them.
    require_all_inputs : bool
        Leave the stage empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``Okuda`` (str or None).

    Notes
    -----
    One point each: tumour > 50% of the liver, ascites, albumin < 3 g/dL (30 g/L), bilirubin
    > 3 mg/dL (51.3 umol/L, compared in umol/L). Stage I: 0 points; II: 1-2; III: 3-4.

    References
    ----------
    Okuda K, Ohtsuki T, Obata H, et al. Natural history of hepatocellular carcinoma and
    prognosis in relation to treatment: study of 850 patients. Cancer 1985;56:918-928.
    """
    inp = _inputs(frame)

    def rule(tumor_extent_over_50pct, ascites, alb, tbil):
        low_alb = alb <= 30.0 if inclusive else alb < 30.0
        high_tbil = tbil >= _TBIL_3_MGDL if inclusive else tbil > _TBIL_3_MGDL
        points = int(bool(tumor_extent_over_50pct)) + int(ascites > 0) + int(low_alb) + int(high_tbil)
        return OKUDA_STAGES[0] if points == 0 else (OKUDA_STAGES[1] if points <= 2 else OKUDA_STAGES[2])

    stages, missing = _staged(inp, "Okuda", ("tumor_extent_over_50pct", "ascites", "alb", "tbil"), rule,
                              require_all_inputs=require_all_inputs)
    return SystemResult("Okuda", _table(inp, {"Okuda": pd.Series(stages, dtype=object)}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# ALBI


def albi_grade(score) -> np.ndarray:
    """ALBI grade (1, 2, 3; NaN where the score is NaN) of unrounded ALBI scores.

    Notes
    -----
    Grade 1: score <= -2.60; grade 2: -2.60 < score <= -1.39; grade 3: score > -1.39. The
    unrounded score is graded: rounding first, or the -2.61 some calculators use, moves
    patients across the cut-offs.

    References
    ----------
    Johnson PJ, Berhane S, Kagebayashi C, et al. Assessment of liver function in patients with
    hepatocellular carcinoma: a new evidence-based approach - the ALBI grade. J Clin Oncol
    2015;33:550-558.
    """
    s = np.asarray(score, dtype=float)
    grade = np.where(s <= _ALBI_GRADE_1_MAX, 1.0, np.where(s <= _ALBI_GRADE_2_MAX, 2.0, 3.0))
    return np.where(np.isnan(s), np.nan, grade)


def albi(frame: pd.DataFrame) -> SystemResult:
    """Albumin-bilirubin (ALBI) score and grade.

    Parameters
    ----------
    frame : DataFrame
        ``tbil`` (umol/L, > 0) and ``alb`` (g/L).

    Returns
    -------
    SystemResult
        ``table`` columns ``ALBI`` (float, full precision) and ``ALBI_grade`` (Int64 1-3).

    Notes
    -----
    ALBI = 0.66 x log10(bilirubin, umol/L) - 0.085 x albumin (g/L), graded by
    :func:`albi_grade` without rounding. E.g. bilirubin 15, albumin 42: -2.79378..., grade 1.

    References
    ----------
    Johnson PJ, Berhane S, Kagebayashi C, et al. J Clin Oncol 2015;33:550-558.
    """
    inp = _inputs(frame)
    score = _albi_values(inp)
    missing = _continuous_missing(inp, "ALBI", score, _absent(inp, "tbil", "alb"))
    grade = albi_grade(score)
    table = _table(inp, {"ALBI": score, "ALBI_grade": pd.array(np.where(np.isnan(grade), None, grade),
                                                               dtype="Int64")})
    return SystemResult("ALBI", table, _missing_frame(missing))


def _albi_values(inp: _Inputs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.66 * np.log10(inp.num["tbil"]) - 0.085 * inp.num["alb"]


# ----------------------------------------------------------------------------------------------
# Inflammation-based ratios


def _ratio(frame, system: str, top: str, bottom: str) -> SystemResult:
    inp = _inputs(frame)
    a, b = inp.num[top], inp.num[bottom]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(b > 0, a / b, np.nan)
    missing = _continuous_missing(inp, system, value, {**_absent(inp, top, bottom),
                                                       f"{bottom} (0: ratio undefined)": b == 0})
    return SystemResult(system, _table(inp, {system: value}), _missing_frame(missing))


def nlr(frame: pd.DataFrame) -> SystemResult:
    """Neutrophil-to-lymphocyte ratio, ``neutrophils / lymphocytes`` (column ``NLR``).

    Notes
    -----
    Counts in 10^9/L; no universal cut-off (a cut-off, when used, is chosen on the development
    cohort). A zero lymphocyte count leaves the ratio empty (listed in ``missing``).

    References
    ----------
    ``spec/staging.md``; as compared in the reference study: She S, Shi J, Zhu J, et al. Impact
    of inflammation and the immune system on hepatocellular carcinoma recurrence after
    hepatectomy. Cancer Med 2024;13:e7018.
    """
    return _ratio(frame, "NLR", "neutrophils", "lymphocytes")


def plr(frame: pd.DataFrame) -> SystemResult:
    """Platelet-to-lymphocyte ratio, ``platelets / lymphocytes`` (column ``PLR``).

    Notes
    -----
    Counts in 10^9/L; no universal cut-off. A zero lymphocyte count leaves the ratio empty.

    References
    ----------
    ``spec/staging.md``; She S, et al. Cancer Med 2024;13:e7018.
    """
    return _ratio(frame, "PLR", "platelets", "lymphocytes")


def lmr(frame: pd.DataFrame) -> SystemResult:
    """Lymphocyte-to-monocyte ratio, ``lymphocytes / monocytes`` (column ``LMR``).

    Notes
    -----
    Counts in 10^9/L; no universal cut-off. A zero monocyte count leaves the ratio empty. Lower
    LMR means higher risk: :func:`comparator_scores` negates it.

    References
    ----------
    ``spec/staging.md``; She S, et al. Cancer Med 2024;13:e7018.
    """
    return _ratio(frame, "LMR", "lymphocytes", "monocytes")


# ----------------------------------------------------------------------------------------------
# ERASL-pre

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
    (:func:`analysis.logistic.fit_logistic`, as R's ``glm(family = binomial)``) on the
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
        One row per patient with ``patient_id`` and the raw inputs (module docstring); columns
        that are absent are missing for every patient.
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
    erasl_label, coefficients = None, None
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
        refit = erasl_refit(inp, frame[outcome].to_numpy(dtype=object), dev)
        coefficients, erasl = refit.coefficients, refit.result
    else:
        erasl = SystemResult("ERASL", _table(inp, {"ERASL": np.full(inp.n, np.nan),
                                                   "ERASL_group": pd.Series([None] * inp.n, dtype=object),
                                                   "ERASL_label": pd.Series([None] * inp.n, dtype=object)}),
                             _missing_frame([(pid, "ERASL", "coefficients (none in study.yaml, and no outcome "
                                                            "for an ERASL (refit))") for pid in inp.ids]))
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
