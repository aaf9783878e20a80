"""Calibration, decision curves, reclassification and subgroups against direct computations."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from dlr.analysis.calibration import calibration_curve, calibration_summary, decile_groups, hosmer_lemeshow
from dlr.analysis.decision_curve import THRESHOLDS, fit_risk_mapping, net_benefit, net_benefit_treat_all
from dlr.analysis.discrimination import stratified_resamples
from dlr.core.errors import UndefinedStatisticWarning
from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import validate_predictions
from dlr.analysis.reclassification import reclassification
from dlr.analysis.subgroups import stratified_auc
from conftest import make_predictions


def probs(n, seed, miscalibration=1.0):
    rng = np.random.default_rng(seed)
    lp = rng.normal(-0.3, 1.2, n)
    y = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return y, 1 / (1 + np.exp(-lp * miscalibration))


def test_calibration_of_a_calibrated_model_on_its_own_fit():
    y, p = probs(400, 0)
    # a model refitted on the data it is evaluated on has intercept 0 and slope 1 exactly
    m = fit_risk_mapping(y, np.log(p / (1 - p)))
    p_fit = m.predict(np.log(p / (1 - p)))
    res = calibration_summary(y, p_fit)
    assert_allclose([res.intercept, res.slope], [0.0, 1.0], atol=1e-6)
    assert_allclose(res.brier, np.mean((p_fit - y) ** 2), rtol=1e-14)


def test_overconfident_model_has_slope_below_one():
    y, p = probs(3000, 1, miscalibration=2.0)
    assert calibration_summary(y, p).slope < 0.7


def test_hosmer_lemeshow_equals_direct_formula():
    y, p = probs(250, 2)
    groups = decile_groups(p)
    assert groups.max() == 9
    chi2 = 0.0
    for g in range(10):
        o, e, n = y[groups == g].sum(), p[groups == g].sum(), (groups == g).sum()
        chi2 += (o - e) ** 2 / (e * (1 - e / n))
    got, df, pval = hosmer_lemeshow(y, p)
    assert df == 8
    assert_allclose(got, chi2, rtol=1e-10)
    assert_allclose(pval, stats.chi2.sf(chi2, 8), rtol=1e-10)


def test_calibration_curve_bins():
    y, p = probs(200, 3)
    curve = calibration_curve(y, p)
    assert curve.bins["n"].sum() == 200 and len(curve.bins) == 10
    assert np.all(curve.bins["observed_ci_low"] <= curve.bins["observed"])
    assert len(curve.smooth) > 10 and curve.smooth["observed"].between(0, 1).all()


def test_calibration_curve_of_a_few_level_score_is_the_observed_proportion_at_each_level():
    # a 4-level score in 33 patients: LOESS would extrapolate local lines across the gaps
    levels = np.array([0.1, 0.3, 0.5, 0.8])
    p = np.repeat(levels, [12, 9, 7, 5])
    y = np.r_[np.zeros(11), 1, np.zeros(6), 1, 1, 1, np.zeros(3), np.ones(4), 0, np.ones(4)]
    smooth = calibration_curve(y, p).smooth
    assert_allclose(smooth["predicted"], levels)
    assert_allclose(smooth["observed"], [1 / 12, 3 / 9, 4 / 7, 4 / 5])
    # ten or more distinct predictions keep the LOESS curve
    y2, p2 = probs(200, 3)
    assert len(calibration_curve(y2, p2).smooth) == 100


def test_net_benefit_equals_loop():
    y, p = probs(150, 4)
    nb = net_benefit(y, p)
    for k in (0, 9, 49, 98):
        t = THRESHOLDS[k]
        treat = p >= t
        expect = np.sum(treat & (y == 1)) / y.size - np.sum(treat & (y == 0)) / y.size * t / (1 - t)
        assert_allclose(nb[k], expect, atol=1e-15)
    prev = y.mean()
    assert_allclose(net_benefit_treat_all(y), prev - (1 - prev) * THRESHOLDS / (1 - THRESHOLDS))


def test_index_models_are_mapped_to_risk_on_the_development_cohort_only():
    frame = make_predictions(160, seed=5, probability=False)
    base = analyze(validate_predictions(frame), n_bootstrap=0)
    # scramble every validation outcome: the development-fitted map and threshold must not move
    changed = frame.copy()
    val = changed["cohort"] == "validation"
    rng = np.random.default_rng(0)
    flips = {p: int(rng.integers(0, 2)) for p in changed.loc[val, "patient_id"].unique()}
    changed.loc[val, "y_true"] = changed.loc[val, "patient_id"].map(flips)
    other = analyze(validate_predictions(changed), n_bootstrap=0)
    pd.testing.assert_frame_equal(base.risk_mappings, other.risk_mappings)
    assert base.settings["thresholds"] == other.settings["thresholds"]
    # and the validation net benefit uses the training-fitted map
    dev = frame[(frame["cohort"] == "training") & (frame["model"] == "A")]
    m = fit_risk_mapping(dev["y_true"], dev["y_score"])
    v = frame[(frame["cohort"] == "validation") & (frame["model"] == "A")]
    expect = net_benefit(v["y_true"].to_numpy(), m.predict(v["y_score"]))
    got = base.decision_curve.query("cohort == 'validation' and model == 'A'")["net_benefit"].to_numpy()
    assert_allclose(got, expect, atol=1e-15)


def test_reclassification_equals_direct_formulas():
    y, old = probs(200, 6)
    new = np.clip(old + 0.15 * (y - 0.5) + np.random.default_rng(7).normal(0, 0.05, y.size), 0.001, 0.999)
    res = reclassification(y, new, old, resamples=stratified_resamples(y, 300, rng=np.random.default_rng(8)))
    e, ne = y == 1, y == 0
    nri = (np.mean(new[e] > old[e]) - np.mean(new[e] < old[e])) + (np.mean(new[ne] < old[ne])
                                                                    - np.mean(new[ne] > old[ne]))
    idi = (new[e].mean() - old[e].mean()) - (new[ne].mean() - old[ne].mean())
    assert_allclose([res.nri, res.idi], [nri, idi], rtol=1e-12)
    assert res.nri_ci_low < res.nri < res.nri_ci_high and res.idi_ci_low < res.idi < res.idi_ci_high
    assert res.idi > 0 and res.idi_p_value < 0.05
    # the bootstrap replicate of one resample equals the statistic on the materialised resample
    res1 = stratified_resamples(y, 1, rng=np.random.default_rng(9))
    idx = np.repeat(np.arange(y.size), res1.counts[0])
    one = reclassification(y[idx], new[idx], old[idx])
    boot = reclassification(y, new, old, resamples=res1)
    assert_allclose([boot.nri_ci_low, boot.idi_ci_low], [one.nri, one.idi], rtol=1e-12)


def test_single_class_subgroup_is_nan_with_counts_and_warning():
    y = np.array([1, 1, 1, 0, 1, 0, 1, 0])
    s = np.arange(8.0)
    levels = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    with pytest.warns(UndefinedStatisticWarning, match="'a'"):
        res = stratified_auc(y, s, levels)
    a = res.levels.set_index("level").loc["a"]
    assert np.isnan(a["auc"]) and a["n"] == 3 and a["n_events"] == 3
    assert np.isnan(res.p_between)


def test_three_levels_use_heterogeneity_test():
    rng = np.random.default_rng(10)
    y = rng.binomial(1, 0.5, 300)
    s = rng.normal(size=300) + y
    levels = rng.choice(["x", "y", "z"], 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = stratified_auc(y, s, levels)
    assert len(res.levels) == 3 and 0 < res.p_between < 1
    assert res.levels["test_between"].iloc[0].startswith("heterogeneity")


def test_calibration_group_count_follows_the_cohort_size():
    from dlr.analysis.calibration import calibration_group_count

    # floor(n / 10) clipped to [3, 10], never more groups than patients
    expected = {1: 1, 2: 2, 5: 3, 20: 3, 33: 3, 39: 3, 40: 4, 59: 5, 100: 10, 132: 10, 5000: 10}
    assert {n: calibration_group_count(n) for n in expected} == expected
    with pytest.raises(ValueError, match="at least one patient"):
        calibration_group_count(0)


def test_grouped_calibration_small_case_by_hand():
    from statsmodels.stats.proportion import proportion_confint

    from dlr.analysis.calibration import grouped_calibration

    # 33 distinct predictions 0.01, ..., 0.33: three groups of 11 (not deciles of 3 or 4);
    # events: 2 of the lowest 11, 5 of the middle 11, 9 of the top 11
    p = np.arange(1, 34) / 100
    y = np.zeros(33, dtype=int)
    y[[0, 5]] = 1
    y[[11, 13, 15, 17, 19]] = 1
    y[22:31] = 1
    res = grouped_calibration(y, p)
    table = res.to_frame()
    assert res.n_groups == 3 and (res.n, res.n_events) == (33, 16)
    assert table["group"].tolist() == [1, 2, 3] and table["n"].tolist() == [11, 11, 11]
    assert_allclose(table["mean_predicted"], [0.06, 0.17, 0.28], rtol=1e-12)
    assert_allclose(table["observed"], [2 / 11, 5 / 11, 9 / 11], rtol=1e-12)
    # statsmodels proportion_confint(count, 11, method="wilson") = R prop.test(count, 11, correct = FALSE)
    low, high = proportion_confint(np.array([2, 5, 9]), 11, alpha=0.05, method="wilson")
    assert_allclose(table["observed_ci_low"], low, rtol=1e-10)
    assert_allclose(table["observed_ci_high"], high, rtol=1e-10)
    # an explicit number of groups overrides the rule; tied predictions merge groups
    assert grouped_calibration(y, p, n_groups=5).to_frame()["n"].sum() == 33
    tied = grouped_calibration([0, 1, 0, 1, 1, 0], [0.2, 0.2, 0.2, 0.2, 0.7, 0.7], n_groups=3).to_frame()
    assert tied["group"].tolist() == [1, 2] and tied["n"].tolist() == [4, 2]


def test_grouped_calibration_rejects_bad_input():
    from dlr.analysis.calibration import grouped_calibration

    with pytest.raises(ValueError, match="same patients"):
        grouped_calibration([0, 1], [0.5])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        grouped_calibration([0, 1, 1], [0.2, 1.5, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        grouped_calibration([0, 2, 1], [0.2, 0.5, 0.3])
    with pytest.raises(ValueError, match="positive integer"):
        grouped_calibration([0, 1, 1], [0.2, 0.5, 0.3], n_groups=0)


def test_analysis_writes_calibration_groups_sized_to_each_cohort(tmp_path):
    from dlr.analysis.calibration import grouped_calibration
    from dlr.analysis.output import write_analysis

    rng = np.random.default_rng(7)
    rows = []
    for cohort, n in (("training", 120), ("validation", 33)):
        y = rng.binomial(1, 0.45, n)
        lp = 1.5 * (y - 0.5) + rng.normal(0, 1, n)
        for i in range(n):
            pid = f"{cohort[0]}{i:03d}"
            rows.append((pid, cohort, "A", y[i], 1 / (1 + np.exp(-lp[i]))))
            rows.append((pid, cohort, "Index", y[i], 3 * lp[i]))  # not a probability: no calibration
    frame = pd.DataFrame(rows, columns=["patient_id", "cohort", "model", "y_true", "y_score"])
    result = analyze(validate_predictions(frame), n_bootstrap=0)
    write_analysis(result, tmp_path / "results", figures=False)
    written = pd.read_csv(tmp_path / "results" / "calibration_groups.csv")
    assert list(written.columns) == ["cohort", "model", "group", "n", "mean_predicted", "observed",
                                     "observed_ci_low", "observed_ci_high"]
    assert set(written["model"]) == {"A"}
    counts = written.groupby("cohort")["group"].count().to_dict()
    assert counts == {"training": 10, "validation": 3}
    valid = frame[(frame["cohort"] == "validation") & (frame["model"] == "A")]
    direct = grouped_calibration(valid["y_true"], valid["y_score"]).to_frame()
    got = written[written["cohort"] == "validation"].drop(columns=["cohort", "model"]).reset_index(drop=True)
    assert_allclose(got.to_numpy(float), direct.to_numpy(float), rtol=1e-12)
