"""The fast O(n log n) DeLong code against slow, obviously correct O(n^2) oracles."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from dlr.core.errors import UndefinedStatisticWarning
from dlr.analysis.discrimination import (auc_heterogeneity_test, bootstrap_auc,
                                     delong_placements, delong_test, delong_unpaired_test, percentile_interval,
                                     roc_auc_delong, roc_curve, stratified_resamples)


def psi(x, y):
    """Kernel of the Mann-Whitney statistic: 1 if case > control, 1/2 if tied."""
    return (x > y) + 0.5 * (x == y)


def oracle_placements(y, s):
    cases, controls = s[y == 1], s[y == 0]
    k = psi(cases[:, None], controls[None, :])
    return k.mean(), k.mean(axis=1), k.mean(axis=0)


def oracle_variance(y, s):
    auc, v10, v01 = oracle_placements(y, s)
    return auc, np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size


def sample(n, seed, *, ties=False, prevalence=0.4):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, prevalence, n)
    y[:2] = [0, 1]
    s = y * 0.9 + rng.normal(size=n)
    return y, (np.round(s) if ties else s)


@pytest.mark.parametrize("n,seed,ties", [(7, 1, False), (40, 2, True), (300, 3, False), (300, 4, True)])
def test_placements_equal_pairwise_oracle(n, seed, ties):
    y, s = sample(n, seed, ties=ties)
    pl = delong_placements(y, s)
    auc, v10, v01 = oracle_placements(y, s)
    assert_allclose(pl.auc, auc, rtol=0, atol=1e-13)
    assert_allclose(pl.cases, v10, atol=1e-13)
    assert_allclose(pl.controls, v01, atol=1e-13)
    assert_allclose(pl.variance, oracle_variance(y, s)[1], rtol=1e-12)


def test_auc_equals_mann_whitney_u():
    y, s = sample(200, 5, ties=True)
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert_allclose(roc_auc_delong(y, s).estimate, u / ((y == 1).sum() * (y == 0).sum()), atol=1e-14)


def test_ci_is_wald_and_clipped():
    y, s = sample(60, 6)
    r = roc_auc_delong(y, s)
    assert_allclose(r.ci_low, r.estimate - stats.norm.ppf(0.975) * r.se, atol=1e-14)
    # perfect separation: variance 0, CI collapses onto 1
    y = np.array([0, 0, 0, 1, 1, 1])
    r = roc_auc_delong(y, np.arange(6.0))
    assert (r.estimate, r.ci_low, r.ci_high) == (1.0, 1.0, 1.0)
    # near-perfect: the upper limit is clipped at 1
    y2 = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    assert roc_auc_delong(y2, np.arange(8.0)).ci_high == 1.0


def test_paired_test_equals_oracle_covariance():
    y, a = sample(150, 7, ties=True)
    b = a + np.random.default_rng(8).normal(0, 1, a.size)
    _, a10, a01 = oracle_placements(y, a)
    _, b10, b01 = oracle_placements(y, b)
    cov = np.cov(a10, b10)[0, 1] / a10.size + np.cov(a01, b01)[0, 1] / a01.size
    var = oracle_variance(y, a)[1] + oracle_variance(y, b)[1] - 2 * cov
    diff = oracle_placements(y, a)[0] - oracle_placements(y, b)[0]
    t = delong_test(y, a, b)
    assert_allclose(t.statistic, diff / np.sqrt(var), rtol=1e-10)
    assert_allclose(t.p_value, 2 * stats.norm.sf(abs(diff / np.sqrt(var))), rtol=1e-10)
    assert t.diff_ci_low < t.diff < t.diff_ci_high
    assert_allclose(delong_test(y, a, b, alternative="greater").p_value * 2, t.p_value, rtol=1e-10)


def test_unpaired_test_equals_formula():
    ya, sa = sample(80, 9)
    yb, sb = sample(35, 10, ties=True)
    auc_a, va = oracle_variance(ya, sa)
    auc_b, vb = oracle_variance(yb, sb)
    d = (auc_a - auc_b) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (ya.size - 1) + vb**2 / (yb.size - 1))
    t = delong_unpaired_test(ya, sa, yb, sb)
    assert_allclose([t.statistic, t.df, t.p_value], [d, df, 2 * stats.t.sf(abs(d), df)], rtol=1e-10)


def test_identical_models_give_p_one_with_warning():
    # pROC: roc.test(r, r, paired = TRUE) gives Z = 0, p = 1 when the difference and its variance are 0
    y, s = sample(50, 11)
    with pytest.warns(UndefinedStatisticWarning):
        t = delong_test(y, s, s)
    assert (t.statistic, t.p_value, t.diff) == (0.0, 1.0, 0.0)


def test_zero_variance_with_different_aucs_is_nan():
    # one case and one control: no variance, yet the AUCs differ -> undefined
    y = np.array([0, 1, 0, 1])
    with pytest.warns(UndefinedStatisticWarning):
        t = delong_test(y[:2], np.array([0.1, 0.9]), np.array([0.9, 0.1]))
    assert np.isnan(t.p_value) and t.diff == 1.0


def test_single_class_is_nan_with_warning():
    with pytest.warns(UndefinedStatisticWarning):
        r = roc_auc_delong(np.ones(5, dtype=int), np.arange(5.0))
    assert np.isnan(r.estimate) and r.n == 5 and r.n_events == 5


def test_one_case_gives_auc_but_no_variance():
    y = np.array([0, 0, 0, 1])
    r = roc_auc_delong(y, np.array([0.1, 0.2, 0.5, 0.4]))
    assert_allclose(r.estimate, 2 / 3)
    assert np.isnan(r.se)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="0 and 1"):
        roc_auc_delong([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc_delong([0, 1, 1], [0.1, np.nan, 0.3])


@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_auc_equals_auc_of_materialised_resamples(ties):
    y, s = sample(90, 12, ties=ties)
    res = stratified_resamples(y, 50, rng=np.random.default_rng(1))
    fast = bootstrap_auc(s, res)
    for b in range(50):
        idx = np.repeat(np.arange(y.size), res.counts[b])
        assert (y[idx] == 1).sum() == (y == 1).sum()  # stratified: class sizes fixed
        assert_allclose(fast[b], oracle_placements(y[idx], s[idx])[0], atol=1e-13)


def test_bootstrap_subset_and_shared_resamples():
    y, s = sample(60, 13)
    res = stratified_resamples(y, 40, rng=np.random.default_rng(2))
    keep = np.arange(0, 60, 2)
    sub = res.subset(keep)
    fast = bootstrap_auc(s[keep], sub)
    for b in range(40):
        idx = np.repeat(np.arange(keep.size), sub.counts[b])
        yy, ss = y[keep][idx], s[keep][idx]
        expect = oracle_placements(yy, ss)[0] if 0 < yy.sum() < yy.size else np.nan
        assert_allclose(fast[b], expect, atol=1e-13)


def test_bootstrap_is_seeded_and_ci_brackets_estimate():
    y, s = sample(120, 14)
    a = bootstrap_auc(s, stratified_resamples(y, 500, rng=np.random.default_rng(3)))
    b = bootstrap_auc(s, stratified_resamples(y, 500, rng=np.random.default_rng(3)))
    assert np.array_equal(a, b)
    low, high = percentile_interval(a)
    assert low < roc_auc_delong(y, s).estimate < high
    # same width as the DeLong interval, roughly (both estimate the same sampling variance)
    r = roc_auc_delong(y, s)
    assert 0.6 < (high - low) / (r.ci_high - r.ci_low) < 1.5


def test_roc_curve_points_and_band():
    y, s = sample(80, 15, ties=True)
    res = stratified_resamples(y, 200, rng=np.random.default_rng(4))
    c = roc_curve(y, s, resamples=res)
    assert (c.fpr[0], c.tpr[0], c.fpr[-1], c.tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(c.fpr) >= 0) and np.all(np.diff(c.tpr) >= 0)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    assert_allclose(trapezoid(c.tpr, c.fpr),
                    c.auc.estimate, atol=1e-12)
    assert np.all(c.band_sensitivity_low <= c.band_sensitivity_high)
    assert c.band_specificity.size == 101
    assert_allclose(c.auc_replicates, bootstrap_auc(s, res), atol=1e-15)


def test_heterogeneity_reduces_to_z_squared_for_two_groups():
    a, v = [0.7, 0.8], [0.002, 0.003]
    h = auc_heterogeneity_test(a, v)
    assert h.df == 1
    assert_allclose(h.statistic, (0.1) ** 2 / 0.005, rtol=1e-12)


def test_large_n_runs_and_matches_mann_whitney():
    rng = np.random.default_rng(16)
    y = rng.binomial(1, 0.3, 200_000)
    s = rng.normal(size=y.size) + y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = roc_auc_delong(y, s)
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert_allclose(r.estimate, u / ((y == 1).sum() * (y == 0).sum()), rtol=1e-12)
    assert 0 < r.se < 0.01


def test_blockwise_resamples_are_stable_and_match_the_oracle(monkeypatch):
    import dlr.analysis.discrimination as disc

    monkeypatch.setattr(disc, "BLOCK_CELLS", 7 * 90)  # 7 resamples of 90 patients per block
    y, s = sample(90, 17, ties=True)
    res = stratified_resamples(y, 30, rng=np.random.default_rng(5))
    first = [b.copy() for b in res.blocks()]
    assert len(first) == 5 and [b.shape[0] for b in first] == [7, 7, 7, 7, 2]
    assert all(np.array_equal(a, b) for a, b in zip(first, res.blocks()))  # regenerated identically
    counts = res.counts
    fast = bootstrap_auc(s, res)
    for b in range(30):
        idx = np.repeat(np.arange(y.size), counts[b])
        assert (y[idx] == 1).sum() == (y == 1).sum()
        assert_allclose(fast[b], oracle_placements(y[idx], s[idx])[0], atol=1e-13)
    keep = np.arange(1, 90, 3)
    sub = res.subset(keep)
    assert np.array_equal(sub.counts, counts[:, keep])
    assert_allclose(roc_curve(y[keep], s[keep], resamples=sub).auc_replicates, bootstrap_auc(s[keep], sub))
