"""`dlr analyze` on pROC's aSAH case against the values R computed (tests/data/reference/asah).

R 4.2.2, pROC 1.18.0 (see tests/data/reference/SOURCE-README.md for each call):
  ci.auc(roc(y, s, direction = "<"), method = "delong")
  coords(roc, "best", best.method = "youden")            # ties: highest sensitivity
  glm(y ~ offset(qlogis(p)), binomial); glm(y ~ qlogis(p), binomial)
  roc.test(r1, r2, method = "delong", paired = TRUE)      # comparisons
  roc.test(r1, r2, method = "delong")                     # unpaired: cohort_tests, p_between
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from dlr.analysis.pipeline import analyze
from dlr.analysis.predictions import read_predictions
from conftest import run_dlr

TOL = {"auc": 1e-9, "brier": 1e-9, "sensitivity": 1e-9, "specificity": 1e-9, "accuracy": 1e-9,
       "net_benefit": 1e-9, "cal_intercept": 1e-4, "cal_slope": 1e-4, "df": 1e-6}


@pytest.fixture(scope="module")
def expected(asah_dir):
    return json.loads((asah_dir / "expected.json").read_text())


@pytest.fixture(scope="module")
def result(asah_dir):
    preds = read_predictions(asah_dir / "predictions.csv", dev_cohort="train", strata=["gender"])
    return analyze(preds, strata=["gender"], n_bootstrap=300, seed=7)


def _match(frame, expected_rows, keys, fields, absolute=()):
    checked = 0
    for e in expected_rows:
        sel = np.ones(len(frame), dtype=bool)
        for k in keys:
            sel &= frame[k].astype(str).to_numpy() == str(e[k])
        assert sel.sum() == 1, f"no unique row for {[e[k] for k in keys]}"
        row = frame[sel].iloc[0]
        for f in fields:
            if f not in e:
                continue
            got, want = float(row[f]), float(e[f])
            if f in absolute:
                got, want = abs(got), abs(want)
            # absolute tolerance as the contract states it (1e-9 AUC, 1e-6 CIs and p, 1e-4 calibration)
            assert_allclose(got, want, rtol=0, atol=TOL.get(f, 1e-6), err_msg=f"{f} {[e[k] for k in keys]}")
            checked += 1
    return checked


def test_performance_matches_proc_and_glm(result, expected):
    # ci.auc(..., method = "delong"); coords(..., "best", best.method = "youden"); glm(...)
    n = _match(result.performance, expected["performance"], ["model", "cohort"],
               ["n", "n_events", "auc", "auc_ci_low", "auc_ci_high", "threshold", "sensitivity", "specificity",
                "accuracy", "cal_intercept", "cal_slope", "brier"])
    assert n == 8 * 9 + 2 * 3


def test_threshold_is_carried_from_development_cohort(result):
    perf = result.performance.set_index(["model", "cohort"])
    for model in ("logit", "ndka", "s100b", "wfns"):
        assert perf.loc[(model, "validation"), "threshold"] == perf.loc[(model, "train"), "threshold"]


def test_paired_delong_matches_roc_test(result, expected):
    # roc.test(r1, r2, method = "delong", paired = TRUE): z and p
    n = _match(result.comparisons, expected["comparisons"], ["cohort", "model_a", "model_b"], ["z", "p_value"],
               absolute=("z",))
    assert n == 24
    holm = result.comparisons.groupby("cohort")["p_adjusted"].max()
    assert (holm <= 1).all()


def test_unpaired_delong_matches_roc_test(result, expected):
    # roc.test(r_train, r_validation, method = "delong"): D, Welch df, p (Student t)
    n = _match(result.cohort_tests, expected["cohort_tests"], ["model", "cohort_a", "cohort_b"],
               ["statistic", "df", "p_value"], absolute=("statistic",))
    assert n == 12


def test_subgroups_match(result, expected):
    n = _match(result.subgroups, expected["subgroups"], ["model", "cohort", "stratifier", "level"],
               ["n", "auc", "auc_ci_low", "auc_ci_high", "p_between"])
    assert n == 16 * 5


def test_net_benefit_matches(result, expected):
    dca = result.decision_curve.copy()
    dca["threshold"] = dca["threshold"].round(6)
    rows = [dict(e, threshold=round(float(e["threshold"]), 6)) for e in expected["net_benefit"]]
    assert _match(dca, rows, ["cohort", "model", "threshold"], ["net_benefit"]) == 32


def test_cli_writes_every_contract_file(asah_dir, tmp_path):
    out = tmp_path / "asah"
    proc = run_dlr("analyze", asah_dir / "predictions.csv", "--dev-cohort", "train", "--strata", "gender",
                   "--bootstrap", "200", "--seed", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    columns = {
        "performance.csv": ["model", "cohort", "n", "n_events", "auc", "auc_ci_low", "auc_ci_high", "auc_boot_low",
                            "auc_boot_high", "threshold"]
        + [f"{m}{s}" for m in ("sensitivity", "specificity", "accuracy", "ppv", "npv")
           for s in ("", "_ci_low", "_ci_high")] + ["brier", "cal_intercept", "cal_slope", "hl_chi2", "hl_p"],
        "comparisons.csv": ["cohort", "model_a", "model_b", "auc_a", "auc_b", "diff", "diff_ci_low", "diff_ci_high",
                            "z", "p_value", "p_adjusted"],
        "cohort_tests.csv": ["model", "cohort_a", "cohort_b", "auc_a", "auc_b", "statistic", "df", "p_value"],
        "subgroups.csv": ["model", "cohort", "stratifier", "level", "n", "n_events", "auc", "auc_ci_low",
                          "auc_ci_high", "p_between"],
        "decision_curve.csv": ["cohort", "model", "threshold", "net_benefit"],
        "calibration.csv": ["cohort", "model", "bin", "n", "mean_predicted", "observed", "observed_ci_low",
                            "observed_ci_high"],
    }
    for name, cols in columns.items():
        frame = pd.read_csv(out / name)
        assert set(cols) <= set(frame.columns), (name, set(cols) - set(frame.columns))
        assert len(frame) > 0, name
    dca = pd.read_csv(out / "decision_curve.csv")
    assert {"treat_all", "treat_none"} <= set(dca["model"])
    assert_allclose(np.sort(dca["threshold"].unique()), np.arange(1, 100) / 100)
    doc = json.loads((out / "results.json").read_text())
    assert doc["provenance"]["input"]["sha256"] == __import__("hashlib").sha256(
        (asah_dir / "predictions.csv").read_bytes()).hexdigest()
    assert doc["settings"]["seed"] == 1 and doc["settings"]["n_bootstrap"] == 200
    assert len(doc["performance"]) == 8 and len(doc["comparisons"]) == 12
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for stem in ("roc_train", "roc_validation", "calibration_train", "decision_curve_validation", "subgroups_gender"):
        for ext in ("png", "svg"):
            assert f"{stem}.{ext}" in figures
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 5000
    # the reference comparison script (tests/data/reference/compare_analysis.py) agrees too
    check = subprocess.run([sys.executable, str(asah_dir.parent / "compare_analysis.py"), str(asah_dir), str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert "226/226" in check.stdout
