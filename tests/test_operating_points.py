"""Youden thresholds (chosen on the development cohort only) and Wilson-interval metrics."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from dlr.analysis.thresholds import threshold_metrics, wilson_interval
from dlr.core.stats.roc import youden_threshold


def brute_force_youden(y, s):
    """Every midpoint between distinct scores plus +-inf; max J, then max sensitivity."""
    u = np.unique(s)
    cands = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    best, best_key = None, None
    for t in cands:
        sens = np.mean(s[y == 1] >= t)
        spec = np.mean(s[y == 0] < t)
        key = (round(sens + spec, 12), sens)
        if best_key is None or key > best_key:
            best, best_key = t, key
    return best


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True), (3, False)])
def test_youden_equals_brute_force(seed, ties):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.35, 70)
    s = rng.normal(size=70) + y
    s = np.round(s * 2) / 2 if ties else s
    assert youden_threshold(y, s) == brute_force_youden(y, s)


def test_youden_ties_go_to_higher_sensitivity():
    # thresholds 1.5 and 3.5 both give J = 0.5; the lower one has the higher sensitivity
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    s = np.array([1, 1, 2, 3, 4, 4, 5, 6], dtype=float)
    t = youden_threshold(y, s)
    assert t == brute_force_youden(y, s)
    m = threshold_metrics(y, s, t)
    assert m.sensitivity == 1.0


def test_threshold_metrics_counts_and_wilson():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.5])
    m = threshold_metrics(y, s, 0.5)  # positive when score >= 0.5
    assert (m.tp, m.fp, m.tn, m.fn) == (3, 1, 3, 1)
    assert m.sensitivity == 0.75 and m.specificity == 0.75 and m.accuracy == 0.75
    z = stats.norm.ppf(0.975)
    p, n = 0.75, 4
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert_allclose([m.sensitivity_ci_low, m.sensitivity_ci_high], [centre - half, centre + half], rtol=1e-12)


def test_wilson_of_empty_denominator_is_nan():
    assert all(np.isnan(v) for v in wilson_interval(0, 0))
    est, low, high = wilson_interval(0, 10)
    assert est == 0 and low == 0 and 0 < high < 0.35
