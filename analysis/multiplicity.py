"""Adjustment of p values for multiple comparisons."""
from __future__ import annotations

import numpy as np


def holm_adjust(p_values) -> np.ndarray:
    """Holm step-down adjusted p values; NaN entries stay NaN and do not count as tests.

    Notes
    -----
    With the m finite p values sorted, p_(1) <= ... <= p_(m), the adjusted value is
    max_{j <= i} min(1, (m - j + 1) p_(j)). Equals R ``p.adjust(p, "holm")`` and statsmodels
    ``multipletests(p, method="holm")`` (checked in the tests).

    References
    ----------
    Holm S. Scand J Stat 1979;6:65-70.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="mergesort")]
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(stepped)
    return out
