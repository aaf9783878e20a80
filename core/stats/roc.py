"""Rank primitives of the ROC curve: midranks, the rank (Mann-Whitney) AUC and Youden's threshold.

Shared by `analysis/` (DeLong placements, operating points) and `modeling/` (development-cohort
AUCs and the thresholds recorded with the fitted models), so both compute them the same way.
"""
from __future__ import annotations

import warnings

import numpy as np

from dlr.core.errors import UndefinedStatisticWarning


def midranks(values: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties get the mean of their ranks) in O(n log n)."""
    n = values.shape[0]
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start of each run of equal values
    new_run = np.empty(n, dtype=bool)
    if n:
        new_run[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], n)
    run_midrank = (starts + ends + 1) / 2.0
    run_index = np.cumsum(new_run) - 1
    ranks = np.empty(n, dtype=float)
    ranks[order] = run_midrank[run_index]
    return ranks


def rank_auc(y_true, y_score) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted one half.

    Parameters
    ----------
    y_true : array of 0/1.
    y_score : array of float, higher = outcome 1 (no NaN).

    Returns
    -------
    float
        (R1 - n1 (n1 + 1) / 2) / (n1 n0), where R1 is the sum of the cases' midranks among all
        scores. NaN (no warning: callers tune over many folds) when a class is empty.

    Notes
    -----
    Equals pROC ``auc(roc(y, s, direction = "<"))`` and scikit-learn's ``roc_auc_score``;
    `analysis.discrimination.roc_auc_delong` adds the DeLong variance.

    References
    ----------
    Hanley JA, McNeil BJ. Radiology 1982;143:29-36.
    """
    y = np.asarray(y_true, dtype=int)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = midranks(np.asarray(y_score, dtype=float))
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def youden_threshold(y_true, y_score) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Parameters
    ----------
    y_true : array of 0/1 (the development cohort only).
    y_score : array of float, higher = outcome 1.

    Returns
    -------
    float
        Candidate thresholds are the midpoints between adjacent distinct scores, with -inf and
        +inf at the ends (pROC's convention); a patient is positive when score >= threshold.
        Ties in J are broken towards the higher sensitivity (the lowest threshold). NaN, with
        a warning, when a class is empty.

    Notes
    -----
    J is compared exactly, as the integer tp * n + tn * m, so mathematically tied thresholds
    are tied. Matches pROC ``coords(roc(y, s, direction = "<"), "best", best.method =
    "youden")``, taking the row with the highest sensitivity when several are returned.

    References
    ----------
    Youden WJ. Cancer 1950;3:32-35. Robin X et al. BMC Bioinformatics 2011;12:77.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    m, n = int(y.sum()), int(y.size - y.sum())
    if m == 0 or n == 0:
        warnings.warn(f"Youden threshold undefined: {m} cases and {n} controls", UndefinedStatisticWarning,
                      stacklevel=2)
        return float("nan")
    distinct = np.unique(s)
    candidates = np.concatenate([[-np.inf], (distinct[:-1] + distinct[1:]) / 2, [np.inf]])
    # counts of cases / controls at or above each candidate (positive: score >= threshold)
    cases_sorted = np.sort(s[y == 1])
    controls_sorted = np.sort(s[y == 0])
    tp = m - np.searchsorted(cases_sorted, candidates, side="left")
    fp = n - np.searchsorted(controls_sorted, candidates, side="left")
    tn = n - fp
    j = tp.astype(np.int64) * n + tn.astype(np.int64) * m
    best = np.flatnonzero(j == j.max())
    return float(candidates[best[np.argmax(tp[best])]])
