"""`recalibration`: calibration-in-the-large and slope of frozen probabilities in a new cohort,
with Wald 95% CIs, against statsmodels' GLM (the oracle R's glm() agrees with):

    R> glm(y ~ offset(qlogis(p)), family = binomial)   # calibration-in-the-large, confint.default()
    R> glm(y ~ qlogis(p), family = binomial)           # calibration slope, confint.default()

No R is needed: statsmodels fits the same binomial GLM by IRLS (with the offset) and gives the
same Wald intervals (estimate +/- qnorm(0.975) SE from the inverse Fisher information).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dlr.analysis.calibration import RecalibrationResult, logit, recalibration
from dlr.core.errors import UndefinedStatisticWarning

sm = pytest.importorskip("statsmodels.api")

TOL = 1e-8


def _cohort(n, seed, *, shift=0.0, scale=1.0):
    """Frozen predictions p and outcomes drawn from logit P(y = 1) = shift + scale * logit(p)."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-0.5, 1.2, n)))
    truth = 1 / (1 + np.exp(-(shift + scale * logit(p))))
    return rng.binomial(1, truth).astype(float), p


def _oracle(y, p):
    """statsmodels GLM (binomial, logit link): the offset model and the slope model."""
    lp = logit(p)
    citl = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-14, maxiter=200)
    slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-14, maxiter=200)
    return citl, slope


@pytest.mark.parametrize("n, seed, shift, scale", [(40, 1, 0.0, 1.0), (150, 2, -0.8, 1.0), (300, 3, 0.7, 0.6),
                                                   (90, 4, 0.2, 1.6)])
def test_recalibration_equals_statsmodels_glm_with_offset(n, seed, shift, scale):
    y, p = _cohort(n, seed, shift=shift, scale=scale)
    result = recalibration(y, p)
    citl, slope = _oracle(y, p)
    citl_ci, slope_ci = citl.conf_int(alpha=0.05), slope.conf_int(alpha=0.05)
    assert isinstance(result, RecalibrationResult)
    assert (result.n, result.n_events) == (n, int(y.sum()))
    assert_allclose(result.observed_expected, y.sum() / p.sum(), rtol=1e-14)
    assert_allclose([result.citl, result.citl_ci_low, result.citl_ci_high],
                    [citl.params[0], citl_ci[0, 0], citl_ci[0, 1]], rtol=0, atol=TOL)
    assert_allclose([result.slope, result.slope_ci_low, result.slope_ci_high],
                    [slope.params[1], slope_ci[1, 0], slope_ci[1, 1]], rtol=0, atol=TOL)


def test_recalibration_sign_follows_the_miscalibration():
    """Outcomes rarer than predicted (shift < 0): O/E < 1 and a negative intercept whose CI
    excludes 0; more frequent: the opposite."""
    y, p = _cohort(2000, 7, shift=-1.0)
    low = recalibration(y, p)
    assert low.observed_expected < 1 and low.citl_ci_high < 0
    y, p = _cohort(2000, 8, shift=1.0)
    high = recalibration(y, p)
    assert high.observed_expected > 1 and high.citl_ci_low > 0


def test_recalibration_to_frame_has_the_documented_columns():
    y, p = _cohort(60, 9)
    frame = recalibration(y, p).to_frame()
    assert list(frame.columns) == ["n", "n_events", "observed_expected", "citl", "citl_ci_low", "citl_ci_high",
                                   "slope", "slope_ci_low", "slope_ci_high"]
    assert len(frame) == 1


@pytest.mark.parametrize("outcome", [0.0, 1.0])
def test_single_class_cohort_is_nan_with_counts_and_a_warning(outcome):
    p = np.linspace(0.1, 0.8, 12)
    y = np.full(12, outcome)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = recalibration(y, p)
    assert any(issubclass(w.category, UndefinedStatisticWarning) for w in caught)
    assert (result.n, result.n_events) == (12, int(y.sum()))
    assert_allclose(result.observed_expected, y.sum() / p.sum())
    for field in ("citl", "citl_ci_low", "citl_ci_high", "slope", "slope_ci_low", "slope_ci_high"):
        assert np.isnan(getattr(result, field)), field


def test_recalibration_rejects_bad_input():
    with pytest.raises(ValueError, match="same patients"):
        recalibration([0, 1, 1], [0.2, 0.5])
    with pytest.raises(ValueError, match="0/1"):
        recalibration([0, 2], [0.2, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        recalibration([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="at least one"):
        recalibration([], [])
