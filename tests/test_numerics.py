"""The small numerical pieces written here for start-up speed, against the libraries they replace
(statsmodels, scipy.stats) and against brute force."""
from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from dlr.analysis.calibration import loess
from dlr.analysis.discrimination import (delong_test, delong_unpaired_test, percentile_interval, roc_curve,
                                     stratified_resamples)
from dlr.core.stats.logistic import fit_logistic
from dlr.analysis.multiplicity import holm_adjust
from dlr.analysis.thresholds import wilson_interval


def test_holm_equals_statsmodels_and_skips_nan():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2, 0.0004, 0.03])
    got = holm_adjust(p)
    finite = ~np.isnan(p)
    assert_allclose(got[finite], multipletests(p[finite], method="holm")[1], rtol=1e-14)
    assert np.isnan(got[2])
    assert np.isnan(holm_adjust([np.nan])).all()


@pytest.mark.parametrize("x,n", [(0, 10), (3, 4), (10, 10), (17, 61), (1, 1)])
def test_wilson_equals_statsmodels(x, n):
    _, low, high = wilson_interval(x, n)
    assert_allclose([low, high], proportion_confint(x, n, method="wilson"), rtol=1e-12, atol=1e-15)


def test_logistic_equals_statsmodels_glm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + x @ [1.0, -0.5]))))
    off = rng.normal(0, 0.3, 300)
    design = sm.add_constant(x)
    ref = sm.GLM(y, design, family=sm.families.Binomial(), offset=off).fit(tol=1e-14).params
    assert_allclose(fit_logistic(y, design, offset=off), ref, rtol=1e-9, atol=1e-12)


def test_logistic_separation_is_nan():
    y = np.array([0, 0, 0, 1, 1, 1])
    x = np.column_stack([np.ones(6), np.arange(6.0)])
    assert np.isnan(fit_logistic(y, x)).all()


def test_loess_equals_statsmodels_lowess():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 1, 150))
    y = rng.binomial(1, x).astype(float)
    grid = np.linspace(x.min(), x.max(), 40)
    ref = lowess(y, x, frac=0.75, it=0, xvals=grid)
    assert_allclose(loess(x, y, grid, span=0.75), ref, atol=1e-6)


def test_special_function_p_values_equal_scipy_stats():
    rng = np.random.default_rng(2)
    y = rng.binomial(1, 0.4, 70)
    a, b = rng.normal(size=70) + y, rng.normal(size=70) + 0.5 * y
    t = delong_test(y, a, b)
    assert_allclose(t.p_value, 2 * stats.norm.sf(abs(t.statistic)), rtol=1e-12)
    u = delong_unpaired_test(y[:40], a[:40], y[40:], a[40:])
    assert_allclose(u.p_value, 2 * stats.t.sf(abs(u.statistic), u.df), rtol=1e-12)
    half = (u.diff_ci_high - u.diff_ci_low) / 2
    assert_allclose(half / ((u.auc_a - u.auc_b) / u.statistic), stats.t.ppf(0.975, u.df), rtol=1e-12)


def test_roc_band_equals_brute_force_on_materialised_resamples():
    rng = np.random.default_rng(3)
    y = rng.binomial(1, 0.4, 60)
    s = np.round(rng.normal(size=60) + y, 1)
    res = stratified_resamples(y, 80, rng=np.random.default_rng(4))
    curve = roc_curve(y, s, resamples=res, n_grid=21)
    sens = np.empty((80, 21))
    for b in range(80):
        idx = np.repeat(np.arange(60), res.counts[b])
        yy, ss = y[idx], s[idx]
        cuts = np.concatenate([np.unique(ss), [np.inf]])
        tpr = np.array([np.mean(ss[yy == 1] >= c) for c in cuts])
        spec = np.array([np.mean(ss[yy == 0] < c) for c in cuts])
        for g, sp in enumerate(curve.band_specificity):
            sens[b, g] = tpr[spec >= sp - 1e-12].max()
    low, high = percentile_interval(sens)
    assert_allclose(curve.band_sensitivity_low, low, atol=1e-12)
    assert_allclose(curve.band_sensitivity_high, high, atol=1e-12)
