"""Riley et al. minimum sample size: each criterion against its defining property."""
from __future__ import annotations

import math

import pytest

from dlr.core.errors import InputError
from dlr.modeling.sample_size import SampleSizeWarning, minimum_sample_size


def expected_shrinkage(n, p, r2):
    """Van Houwelingen's heuristic shrinkage, solved for S: S = 1 + p / (n ln(1 - R2 / S))."""
    s = 0.9
    for _ in range(200):
        s = 1 + p / (n * math.log(1 - r2 / s))
    return s


def test_criteria_have_their_defining_properties():
    res = minimum_sample_size(parameters=10, prevalence=0.58, r2_nagelkerke=0.15)
    # (i) at n_shrinkage the expected shrinkage reaches 0.9, one patient fewer it does not
    assert expected_shrinkage(res.n_shrinkage, 10, res.r2_cs) >= 0.9
    assert expected_shrinkage(res.n_shrinkage - 1, 10, res.r2_cs) < 0.9
    # (iii) the overall risk within +/- 0.05: 1.96 sqrt(phi (1 - phi) / n) <= 0.05
    assert 1.96 * math.sqrt(0.58 * 0.42 / res.n_intercept) <= 0.05
    assert 1.96 * math.sqrt(0.58 * 0.42 / (res.n_intercept - 1)) > 0.05
    assert res.n_required == max(res.n_shrinkage, res.n_optimism, res.n_intercept)
    assert res.max_r2_cs == pytest.approx(1 - math.exp(2 * (0.58 * math.log(0.58) + 0.42 * math.log(0.42))))


def test_small_study_warns_and_more_parameters_need_more_patients():
    with pytest.warns(SampleSizeWarning, match="needs at least"):
        res = minimum_sample_size(parameters=20, prevalence=0.58, r2_cs=0.1, n_available=132, events_available=78)
    assert res.adequate is False
    bigger = minimum_sample_size(parameters=40, prevalence=0.58, r2_cs=0.1)
    assert bigger.n_required > res.n_required


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="exactly one"):
        minimum_sample_size(parameters=5, prevalence=0.3)
    with pytest.raises(InputError, match="maximum"):
        minimum_sample_size(parameters=5, prevalence=0.3, r2_cs=0.9)
    with pytest.raises(InputError, match="prevalence"):
        minimum_sample_size(parameters=5, prevalence=1.2, r2_cs=0.1)
