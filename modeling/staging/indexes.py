"""Inflammation-based indexes: the NLR, PLR and LMR ratios of blood counts (10^9/L).

Continuous: empty when a count is missing, or when the denominator is 0 (ratio undefined).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import _inputs
from .results import SystemResult, _absent, _continuous_missing, _missing_frame, _table


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
