"""Stratified (subgroup) AUCs, e.g. by scanner field strength, with the between-level test."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlr.core.errors import UndefinedStatisticWarning
from .discrimination import (auc_heterogeneity_test, delong_placements,
                             delong_unpaired_test, roc_auc_delong)

COLUMNS = ["level", "n", "n_events", "auc", "auc_ci_low", "auc_ci_high", "p_between", "test_between"]


@dataclass(frozen=True)
class SubgroupResult:
    """AUC per level of one stratifier.

    Attributes
    ----------
    levels : DataFrame
        ``level``, ``n``, ``n_events``, ``auc``, ``auc_ci_low``, ``auc_ci_high`` (DeLong),
        ``p_between`` (the same value on every level's row) and ``test_between``.
    p_between : float
        Two levels: unpaired DeLong test (pROC ``roc.test(paired = FALSE)``); more levels:
        chi-squared heterogeneity test of the AUCs (k - 1 df). NaN when fewer than two levels
        have a defined AUC.
    """

    levels: pd.DataFrame
    p_between: float

    def to_frame(self) -> pd.DataFrame:
        return self.levels


def stratified_auc(y_true, y_score, levels) -> SubgroupResult:
    """AUC with DeLong CI in each level of a stratifier, and a test that they are equal.

    Parameters
    ----------
    y_true, y_score : arrays for the same patients.
    levels : array of level labels; missing values ("" or NaN) are left out.

    Notes
    -----
    A level with a single outcome class has NaN AUC, its counts, and a warning.

    References
    ----------
    DeLong ER et al. Biometrics 1988;44:837-845. Cochran WG. Biometrics 1954;10:101-129.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    lv = pd.Series(levels).astype("string").fillna("").to_numpy(dtype=object)
    names = sorted(v for v in set(lv) if v != "")
    rows, groups = [], []
    for name in names:
        inside = lv == name
        yi, si = y[inside], s[inside]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedStatisticWarning)
            res = roc_auc_delong(yi, si)
        if not np.isfinite(res.estimate):
            warnings.warn(f"level {name!r}: AUC undefined ({res.n_events} events among {res.n} patients)",
                          UndefinedStatisticWarning, stacklevel=2)
        rows.append({"level": name, "n": res.n, "n_events": res.n_events, "auc": res.estimate,
                     "auc_ci_low": res.ci_low, "auc_ci_high": res.ci_high})
        groups.append((yi, si, res))
    defined = [g for g in groups if np.isfinite(g[2].estimate) and np.isfinite(g[2].se)]
    p, test = float("nan"), ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedStatisticWarning)
        if len(defined) == 2:
            (ya, sa, _), (yb, sb, _) = defined
            p, test = delong_unpaired_test(ya, sa, yb, sb).p_value, "DeLong unpaired"
        elif len(defined) > 2:
            variances = [delong_placements(yi, si).variance for yi, si, _ in defined]
            het = auc_heterogeneity_test([g[2].estimate for g in defined], variances)
            p, test = het.p_value, f"heterogeneity chi2 ({het.df} df)"
    frame = pd.DataFrame(rows, columns=COLUMNS[:-2])
    frame["p_between"] = p
    frame["test_between"] = test
    return SubgroupResult(frame, p)
