"""Decision curves with bootstrap bands, paired differences against the reference model and
interventions avoided, against slow explicit recomputations (and the Python dcurves package)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dlr.analysis.decision_curve as dc
import dlr.analysis.discrimination as discrimination
from dlr.analysis.decision_curve import (THRESHOLDS, bootstrap_net_benefit, compare_decision_curves, decision_curve,
                                     fit_risk_mapping, interventions_avoided, net_benefit, net_benefit_difference,
                                     net_benefit_treat_all, threshold_range, treat_all_curve)
from dlr.analysis.discrimination import stratified_resamples
from dlr.analysis.pipeline import DCA_COLUMNS, DCA_DIFFERENCE_COLUMNS, analyze
from dlr.analysis.predictions import validate_predictions
from conftest import make_predictions
from dlr.cli import main


def risks(n, seed, *, signal=1.0, decimals=None):
    """Outcomes and predicted risks; rounded risks give ties at the thresholds themselves."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.35, n)
    p = 1 / (1 + np.exp(-(signal * y + rng.normal(0, 1, n) - 0.9)))
    return y, (np.round(p, decimals) if decimals is not None else p)


def slow_net_benefit(y, p, thresholds=THRESHOLDS):
    """Patient by patient: NB(t) = TP/n - FP/n * t/(1 - t), treated when p >= t."""
    out = []
    for t in thresholds:
        tp = fp = 0
        for yi, pi in zip(y, p):
            if pi >= t:
                tp += yi == 1
                fp += yi == 0
        n = len(y)
        out.append(tp / n - fp / n * t / (1 - t))
    return np.array(out)


def expand(y, p, counts_row):
    """The resample itself: each patient repeated as often as it was drawn."""
    idx = np.repeat(np.arange(len(y)), counts_row)
    return np.asarray(y)[idx], np.asarray(p)[idx]


def test_net_benefit_equals_the_explicit_loop_with_ties_at_the_thresholds():
    y, p = risks(300, seed=1, decimals=2)  # many risks equal to a threshold: p >= t treats them
    assert np.isin(p, THRESHOLDS).sum() > 50
    assert_allclose(net_benefit(y, p), slow_net_benefit(y, p), rtol=0, atol=1e-15)
    prevalence = y.mean()
    assert_allclose(net_benefit_treat_all(y), [prevalence - (1 - prevalence) * t / (1 - t) for t in THRESHOLDS],
                    rtol=0, atol=1e-15)


@pytest.mark.parametrize("small_blocks", [False, True])
def test_bands_equal_a_slow_recomputation_on_each_resample(monkeypatch, small_blocks):
    y, p = risks(150, seed=2, decimals=2)
    if small_blocks:  # resamples regenerated block by block, and patients taken a few at a time
        monkeypatch.setattr(discrimination, "BLOCK_CELLS", 150 * 7)
        monkeypatch.setattr(dc, "PATIENT_CHUNK", 11)
    resamples = stratified_resamples(y, 120, rng=np.random.default_rng(7))
    counts = resamples.counts
    slow = np.array([slow_net_benefit(*expand(y, p, row)) for row in counts])
    fast = bootstrap_net_benefit(p, resamples)
    assert fast.shape == (120, THRESHOLDS.size)
    assert_allclose(fast, slow, rtol=0, atol=1e-15)
    curve = decision_curve(y, p, resamples=resamples)
    assert_allclose(curve.net_benefit, slow_net_benefit(y, p), rtol=0, atol=1e-15)
    assert_allclose(curve.ci_low, np.quantile(slow, 0.025, axis=0), rtol=0, atol=1e-15)
    assert_allclose(curve.ci_high, np.quantile(slow, 0.975, axis=0), rtol=0, atol=1e-15)
    # treat all per resample: the resample's own prevalence (fixed by the stratified draw)
    slow_all = np.array([net_benefit_treat_all(expand(y, p, row)[0]) for row in counts])
    all_curve = treat_all_curve(y, resamples=resamples)
    assert_allclose(all_curve.replicates, slow_all, rtol=0, atol=1e-15)
    assert_allclose(all_curve.ci_low, all_curve.net_benefit, rtol=0, atol=1e-15)
    assert_allclose(all_curve.ci_high, all_curve.net_benefit, rtol=0, atol=1e-15)


def test_bands_on_a_subset_of_the_resampled_patients():
    """A model scoring some of the cohort: the cohort's resamples restricted to its patients."""
    y, p = risks(140, seed=3)
    resamples = stratified_resamples(y, 80, rng=np.random.default_rng(1))
    keep = np.flatnonzero(np.random.default_rng(2).random(y.size) < 0.7)
    sub = resamples.subset(keep)
    slow = np.array([slow_net_benefit(*expand(y[keep], p[keep], row)) for row in resamples.counts[:, keep]])
    assert_allclose(bootstrap_net_benefit(p[keep], sub), slow, rtol=0, atol=1e-15)
    # the subset's prevalence varies from resample to resample: treat all gets a real band
    band = treat_all_curve(y[keep], resamples=sub)
    assert np.all(band.ci_high[:50] > band.ci_low[:50])


def test_the_difference_against_the_reference_is_paired():
    y, p_ref = risks(200, seed=4, signal=1.6)
    rng = np.random.default_rng(5)
    p_model = np.clip(p_ref + rng.normal(0, 0.03, y.size), 1e-6, 1 - 1e-6)  # close to the reference
    resamples = stratified_resamples(y, 150, rng=np.random.default_rng(6))
    counts = resamples.counts
    per_resample = np.array([slow_net_benefit(*expand(y, p_model, r)) - slow_net_benefit(*expand(y, p_ref, r))
                             for r in counts])
    d = net_benefit_difference(y, p_model, p_ref, resamples=resamples)
    assert_allclose(d.nb_diff, net_benefit(y, p_model) - net_benefit(y, p_ref), rtol=0, atol=1e-15)
    assert_allclose(d.nb_diff_ci_low, np.quantile(per_resample, 0.025, axis=0), rtol=0, atol=1e-15)
    assert_allclose(d.nb_diff_ci_high, np.quantile(per_resample, 0.975, axis=0), rtol=0, atol=1e-15)
    # pairing matters: the reference against itself differs by exactly 0 in every resample,
    # and two nearly identical models differ far less than their own bands are wide
    same = net_benefit_difference(y, p_ref, p_ref, resamples=resamples)
    assert (same.nb_diff_ci_low == 0).all() and (same.nb_diff_ci_high == 0).all()
    m, r = decision_curve(y, p_model, resamples=resamples), decision_curve(y, p_ref, resamples=resamples)
    mid = slice(9, 60)  # thresholds 0.10 to 0.60
    paired = d.nb_diff_ci_high[mid] - d.nb_diff_ci_low[mid]
    unpaired = np.hypot(m.ci_high[mid] - m.ci_low[mid], r.ci_high[mid] - r.ci_low[mid])
    assert (r.ci_high[mid] > r.ci_low[mid]).all() and np.median(paired / unpaired) < 0.5
    # curves over other resamples are refused rather than silently unpaired
    other = decision_curve(y, p_ref, resamples=stratified_resamples(y, 149, rng=np.random.default_rng(6)))
    with pytest.raises(ValueError, match="resamples"):
        compare_decision_curves(m, other, treat_all_curve(y, resamples=resamples))


def test_interventions_avoided_by_hand():
    # 10 patients, 4 cases. At t = 1/4 the model treats the 4 cases and 2 controls (6 of 10):
    # NB = 4/10 - 2/10 * 1/3 = 1/3; treat all NB = 4/10 - 6/10 * 1/3 = 1/5;
    # (1/3 - 1/5) / (1/3) * 100 = 40 interventions avoided per 100 patients, at no loss of
    # true positives: exactly the 4 of 10 untreated controls.
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.3, 0.2, 0.1, 0.1, 0.05])
    t = np.array([0.25])
    assert_allclose(net_benefit(y, p, t), [1 / 3], rtol=1e-15)
    assert_allclose(net_benefit_treat_all(y, t), [1 / 5], rtol=1e-15)
    assert_allclose(interventions_avoided(net_benefit(y, p, t), net_benefit_treat_all(y, t), t), [40.0], rtol=1e-12)
    # and on a grid, the formula (NB_model - NB_all) / (t / (1 - t)) * 100 term by term
    y2, p2 = risks(120, seed=8)
    d = net_benefit_difference(y2, p2, p2)
    expected = [(a - b) / (th / (1 - th)) * 100 for a, b, th in
                zip(slow_net_benefit(y2, p2), net_benefit_treat_all(y2), THRESHOLDS)]
    assert_allclose(d.interventions_avoided, expected, rtol=0, atol=1e-10)
    assert_array_equal(d.nb_diff, 0.0)
    assert np.isnan(d.nb_diff_ci_low).all()  # no resamples, no interval


def test_bands_contain_the_estimate_in_ordinary_data():
    y, p = risks(400, seed=9, signal=1.3)
    resamples = stratified_resamples(y, 500, rng=np.random.default_rng(10))
    curve = decision_curve(y, p, resamples=resamples)
    assert np.all(curve.ci_low <= curve.net_benefit) and np.all(curve.net_benefit <= curve.ci_high)
    assert np.all(curve.ci_high[9:60] - curve.ci_low[9:60] > 0)  # thresholds 0.10 to 0.60: real bands
    d = net_benefit_difference(y, p, np.clip(p + 0.05 * np.sin(np.arange(y.size)), 0, 1), resamples=resamples)
    assert np.all(d.nb_diff_ci_low <= d.nb_diff + 1e-15) and np.all(d.nb_diff <= d.nb_diff_ci_high + 1e-15)
    assert np.all((d.interventions_avoided_ci_low <= d.interventions_avoided + 1e-9)
                  & (d.interventions_avoided <= d.interventions_avoided_ci_high + 1e-9))


def test_matches_the_dcurves_package():
    """dcurves (PyPI, MSK's Python port of R's dcurves::dca):
    dca(data, outcome="y", modelnames=["m"], thresholds=0.01..0.99, nper=100)."""
    dcurves = pytest.importorskip("dcurves")
    y, p = risks(250, seed=11, decimals=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dcurves.dca(data=pd.DataFrame({"y": y, "m": p}), outcome="y", modelnames=["m"],
                          thresholds=list(THRESHOLDS), nper=100)
    model = ref[ref["model"] == "m"].sort_values("threshold")
    everyone = ref[ref["model"] == "all"].sort_values("threshold")
    assert_allclose(model["threshold"], THRESHOLDS)
    assert_allclose(net_benefit(y, p), model["net_benefit"], rtol=0, atol=1e-12)
    assert_allclose(net_benefit_treat_all(y), everyone["net_benefit"], rtol=0, atol=1e-12)
    ours = interventions_avoided(net_benefit(y, p), net_benefit_treat_all(y))
    assert_allclose(ours, model["net_intervention_avoided"], rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- in the analysis


def cohort_resamples(frame, n_bootstrap, seed):
    """The seed contract of analysis.pipeline.analyze: cohort k draws from child k."""
    patients = frame.drop_duplicates("patient_id").sort_values("patient_id")
    cohorts = list(dict.fromkeys(frame["cohort"]))
    children = np.random.SeedSequence(seed).spawn(len(cohorts))
    out = {}
    for k, cohort in enumerate(cohorts):
        y = patients.loc[patients["cohort"] == cohort, "y_true"].to_numpy()
        out[cohort] = (patients.loc[patients["cohort"] == cohort, "patient_id"].to_numpy(),
                       stratified_resamples(y, n_bootstrap, rng=np.random.default_rng(children[k])))
    return out


def model_rows(frame, cohort, model, ids):
    rows = frame[(frame["cohort"] == cohort) & (frame["model"] == model)].set_index("patient_id").loc[ids]
    return rows["y_true"].to_numpy(), rows["y_score"].to_numpy()


def test_analysis_bands_come_from_the_auc_bootstrap_resamples():
    frame = make_predictions(200, seed=3, models=("A", "B", "C"))
    result = analyze(validate_predictions(frame), n_bootstrap=300, seed=5)
    table = result.decision_curve
    assert list(table.columns) == DCA_COLUMNS
    resamples = cohort_resamples(frame, 300, 5)
    for cohort, (ids, r) in resamples.items():
        y, s = model_rows(frame, cohort, "B", ids)
        # the same resamples as the AUC bootstrap of performance.csv ...
        perf = result.performance.set_index(["model", "cohort"]).loc[("B", cohort)]
        lo, hi = discrimination.percentile_interval(discrimination.bootstrap_auc(s, r))
        assert (perf["auc_boot_low"], perf["auc_boot_high"]) == (lo, hi)
        # ... give the bands of decision_curve.csv
        got = table[(table["cohort"] == cohort) & (table["model"] == "B")]
        expect = decision_curve(y, s, resamples=r)
        assert_array_equal(got["net_benefit_ci_low"], expect.ci_low)
        assert_array_equal(got["net_benefit_ci_high"], expect.ci_high)
        none = table[(table["cohort"] == cohort) & (table["model"] == "treat_none")]
        assert (none[["net_benefit", "net_benefit_ci_low", "net_benefit_ci_high"]].to_numpy() == 0).all()
        everyone = table[(table["cohort"] == cohort) & (table["model"] == "treat_all")]
        assert_array_equal(everyone["net_benefit_ci_low"], everyone["net_benefit"])  # stratified: fixed prevalence


def test_analysis_differences_against_the_reference_model():
    frame = make_predictions(220, seed=4, models=("A", "B", "C"))
    # model A scores only some validation patients: its difference uses the common patients
    drop = frame[(frame["model"] == "A") & (frame["cohort"] == "validation")].index[::4]
    frame = frame.drop(drop)
    result = analyze(validate_predictions(frame), n_bootstrap=200, seed=2, reference="C")
    diffs = result.decision_curve_differences
    assert list(diffs.columns) == DCA_DIFFERENCE_COLUMNS
    assert set(diffs["reference"]) == {"C"} and set(diffs["model"]) == {"A", "B", "C"}
    assert len(diffs) == 2 * 3 * THRESHOLDS.size
    resamples = cohort_resamples(frame, 200, 2)
    for cohort, (ids, r) in resamples.items():
        for model in ("A", "B"):
            scored = frame[(frame["cohort"] == cohort) & (frame["model"] == model)]["patient_id"]
            keep = np.flatnonzero(np.isin(ids, scored))
            y, s = model_rows(frame, cohort, model, ids[keep])
            _, s_ref = model_rows(frame, cohort, "C", ids[keep])
            expect = net_benefit_difference(y, s, s_ref, resamples=r.subset(keep)).to_frame()
            got = diffs[(diffs["cohort"] == cohort) & (diffs["model"] == model)]
            for column in expect.columns:
                assert_array_equal(got[column].to_numpy(), expect[column].to_numpy(), err_msg=(cohort, model, column))
    own = diffs[diffs["model"] == "C"]
    assert (own[["nb_diff", "nb_diff_ci_low", "nb_diff_ci_high"]].to_numpy() == 0).all()


def test_index_scores_keep_the_development_map_in_every_resample():
    frame = make_predictions(200, seed=6, probability=False)
    result = analyze(validate_predictions(frame), n_bootstrap=150, seed=3)
    resamples = cohort_resamples(frame, 150, 3)
    dev_ids, dev_r = resamples["training"]
    y_dev, s_dev = model_rows(frame, "training", "A", dev_ids)
    mapping = fit_risk_mapping(y_dev, s_dev)  # fitted once, on all development patients
    for cohort, (ids, r) in resamples.items():
        y, s = model_rows(frame, cohort, "A", ids)
        expect = decision_curve(y, mapping.predict(s), resamples=r)
        got = result.decision_curve.query("cohort == @cohort and model == 'A'")
        assert_allclose(got["net_benefit_ci_low"], expect.ci_low, rtol=0, atol=1e-15)
        assert_allclose(got["net_benefit_ci_high"], expect.ci_high, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- --thresholds


def test_threshold_range_parsing():
    assert threshold_range("0.05:0.6") == (0.05, 0.6)
    assert threshold_range((0.1, 0.3)) == (0.1, 0.3)
    for bad in ("0:0.5", "0.5:0.4", "0.3:0.3", "0.1:1", "-0.1:0.5", "0.2", "a:b", "0.1:0.2:0.3", "nan:0.5"):
        with pytest.raises(ValueError):
            threshold_range(bad)


@pytest.mark.parametrize("value", ["0:0.5", "0.6:0.4", "0.1:1", "0.25", "low:high", "=0.1:0.5"])
def test_bad_thresholds_exit_2_naming_the_option(tmp_path, capsys, value):
    path = tmp_path / "p.csv"
    make_predictions(80, seed=1).to_csv(path, index=False)
    out = tmp_path / "o"
    code = main(["analyze", str(path), "--out", str(out), "--bootstrap", "0", "--no-figures", "--thresholds", value])
    err = capsys.readouterr().err
    assert code == 2
    assert "--thresholds" in err and "Traceback" not in err
    assert not out.exists()


def test_thresholds_reach_the_settings_the_figures_and_verify(tmp_path, capsys):
    from dlr.package import analysis_settings, analyze_command

    path = tmp_path / "p.csv"
    make_predictions(120, seed=2, models=("A", "B", "C")).to_csv(path, index=False)
    out = tmp_path / "o"
    assert main(["analyze", str(path), "--out", str(out), "--bootstrap", "50", "--thresholds", "0.05:0.6"]) == 0
    capsys.readouterr()
    doc = json.loads((out / "results.json").read_text())
    assert doc["settings"]["decision_curve_range"] == [0.05, 0.6]
    assert doc["provenance"]["settings"]["thresholds"] == "0.05:0.6"
    settings = analysis_settings(doc)
    assert settings["thresholds"] == "0.05:0.6" and "--thresholds 0.05:0.6" in analyze_command(settings)
    table = pd.read_csv(out / "decision_curve.csv")
    assert_allclose(np.sort(table["threshold"].unique()), THRESHOLDS)  # the table keeps every threshold
    differences = pd.read_csv(out / "decision_curve_differences.csv")
    assert list(differences.columns) == DCA_DIFFERENCE_COLUMNS and len(doc["decision_curve_differences"]) == len(
        differences)
    for stem in ("decision_curve_validation", "decision_curve_difference_validation"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 5000
