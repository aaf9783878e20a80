"""What one staging system or index returns: :class:`SystemResult`, and the frames it holds.

``table`` is ``patient_id`` and the system's columns, one row per input row; ``missing`` lists
the patients left empty with the inputs that were missing (:data:`MISSING_COLUMNS`). The helpers
build both frames, for the stages (from :func:`dlr.modeling.staging.determined._staged`) and for the
continuous scores (ALBI, the ratios, ERASL: empty whenever an input is missing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .inputs import _Inputs

MISSING_COLUMNS = ("patient_id", "system", "missing_inputs")


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
