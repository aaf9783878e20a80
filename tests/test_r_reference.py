"""Comparison of our statistics with R (pROC 1.18, stats::glm, rms::val.prob) on generated cases.

The cases are generated here with fixed seeds (``_make_cases``) and committed as CSV files under
``tests/r/cases/reference/`` (``write_r_cases``); ``tests/r/reference.R`` read those files once and
wrote its results to the committed long CSV ``tests/r/reference_values.csv`` (case, key, value,
17 significant digits). The value tests read the committed case files and R values, so they
run without R, and compare with ``numpy.testing.assert_allclose``; each assertion quotes the R
call it is checked against. ``test_committed_cases_are_the_generated_cases`` checks that the
committed cases are exactly what the generators produce.

Every R ROC curve uses ``direction = "<", levels = c(0, 1)``: controls < cases, and pROC never
flips a curve whose cases score lower than its controls (our convention).

The one test that needs R (marked ``r_reference``, skipped when ``Rscript``, pROC, rms, psych or
survival is missing), ``test_r_reference_files_regenerate``, reruns every script of ``tests/r/`` with
``tests/r/make_reference.py --out TMP`` from the committed case files and checks the
regenerated values against the committed ones (see tests/r/README.md).

Tolerances: AUC rtol 1e-9 (atol 1e-12); SE, CIs, z, D, df and p rtol 1e-6; thresholds rtol
1e-12 (the same midpoint arithmetic); glm coefficients rtol 1e-6 / atol 1e-7 (R's IRLS stops
at a relative deviance change of 1e-8, statsmodels here at 1e-12).
"""
from __future__ import annotations

import csv
import itertools
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dlr.analysis.calibration import calibration_intercept_slope, calibration_summary
from dlr.analysis.decision_curve import fit_risk_mapping
from dlr.analysis.discrimination import (
    delong_test,
    delong_unpaired_test,
    roc_auc_delong,
)
from dlr.analysis.multiplicity import holm_adjust
from dlr.core.errors import UndefinedStatisticWarning
from dlr.analysis.thresholds import threshold_metrics, wilson_interval
from dlr.core.stats.roc import youden_threshold

from conftest import r_cell, read_long_csv

R_DIR = Path(__file__).parent / "r"
CASES_DIR = R_DIR / "cases"
REFERENCE_CASES = CASES_DIR / "reference"
REFERENCE_VALUES = R_DIR / "reference_values.csv"
MAKE_REFERENCE = R_DIR / "make_reference.py"

AUC_TOL = dict(rtol=1e-9, atol=1e-12)
STAT_TOL = dict(rtol=1e-6, atol=0.0)
# p-values can be ~1e-300 or underflow to 0 at n = 5000; absolute slack far below any alpha
P_TOL = dict(rtol=1e-6, atol=1e-300)
THRESHOLD_TOL = dict(rtol=1e-12, atol=1e-12)
GLM_TOL = dict(rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- generated cases


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _labels(rng, n, prevalence):
    """0/1 labels with both classes present."""
    while True:
        y = (rng.random(n) < prevalence).astype(int)
        if 0 < y.sum() < n:
            return y


def _stage(rng, y):
    """Integer 0..4 score (like a stage), higher in cases: heavy ties within and across classes."""
    latent = 1.0 * y + rng.normal(size=y.size)
    return np.digitize(latent, [-0.5, 0.2, 0.8, 1.5]).astype(float)


def _two_models(rng, y, shift_a=1.0, shift_b=0.7, rho=0.6):
    """Two correlated continuous scores on the same patients."""
    z1, z2 = rng.normal(size=(2, y.size))
    a = shift_a * y + z1
    b = shift_b * y + rho * z1 + np.sqrt(1 - rho**2) * z2
    return a, b


#: paired case whose variance of the difference is 0; tested on its own (see below)
DEGENERATE_PAIRED = "paired_tiny_3v4_both_perfect"


def _make_cases() -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """case name -> (kind, columns)."""
    cases: dict[str, tuple[str, dict[str, np.ndarray]]] = {}

    # (1) heavy ties: integer scores 0..4, n = 60
    rng = np.random.default_rng(20240620)
    y = _labels(rng, 60, 0.4)
    stage = _stage(rng, y)
    cases["auc_stage_ties_n60"] = ("auc", {"y": y, "s": stage})
    cases["youden_stage_ties_n60"] = ("youden", {"y": y, "s": stage})
    cases["risk_stage_n60"] = ("logistic", {"y": y, "s": stage})

    # (2) tiny cohorts: 3 cases and 4 controls, continuous scores
    rng = np.random.default_rng(20240602)
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    s = rng.normal(size=7) + 0.8 * y
    cases["auc_tiny_3v4"] = ("auc", {"y": y, "s": s})
    # AUC 11/12 with a DeLong CI above 1 before clipping
    cases["auc_tiny_3v4_clipped"] = ("auc", {"y": y, "s": np.array([0.9, 2.1, 3.3, 0.1, 0.5, 1.2, -0.4])})
    a, b = _two_models(np.random.default_rng(20240612), y)
    cases["paired_tiny_3v4"] = ("paired", {"y": y, "a": a, "b": b})
    # degenerate: both models separate perfectly (AUC 1 and 1, variance of the difference 0)
    cases[DEGENERATE_PAIRED] = ("paired", {"y": y, "a": np.array([5.0, 6, 7, 1, 2, 3, 4]),
                                           "b": np.array([2.5, 3.5, 4.5, 0, 1, 2, 1.5])})

    # cases scoring lower than controls: AUC < 0.5, never flipped
    rng = np.random.default_rng(20240603)
    y = _labels(rng, 50, 0.5)
    cases["auc_inverted_n50"] = ("auc", {"y": y, "s": rng.normal(size=50) - 0.9 * y})

    # (3) tied scores across classes (one decimal), two correlated models, paired test
    rng = np.random.default_rng(20240604)
    y = _labels(rng, 120, 0.35)
    a, b = _two_models(rng, y)
    a, b = np.round(a, 1), np.round(b, 1)
    cases["auc_ties_across_n120"] = ("auc", {"y": y, "s": a})
    cases["paired_ties_n120"] = ("paired", {"y": y, "a": a, "b": b})
    # stage (heavy ties) against a continuous model on the same patients
    rng = np.random.default_rng(20240605)
    y = _labels(rng, 60, 0.4)
    cases["paired_stage_vs_continuous_n60"] = (
        "paired", {"y": y, "a": _stage(rng, y), "b": 0.9 * y + rng.normal(size=60)})

    # (4) large n: 5000 patients, two correlated continuous models
    rng = np.random.default_rng(20240606)
    y = _labels(rng, 5000, 0.3)
    a, b = _two_models(rng, y, shift_a=1.0, shift_b=0.9, rho=0.7)
    cases["auc_large_n5000"] = ("auc", {"y": y, "s": a})
    cases["paired_large_n5000"] = ("paired", {"y": y, "a": a, "b": b})
    y2 = _labels(rng, 3000, 0.2)
    a2, _ = _two_models(rng, y2, shift_a=0.8)
    cases["unpaired_large_5000_3000"] = ("unpaired", {
        "cohort": np.array(["a"] * y.size + ["b"] * y2.size),
        "y": np.concatenate([y, y2]), "s": np.concatenate([a, a2])})

    # (5) unpaired: two cohorts of different sizes (80 and 35), continuous and with ties
    rng = np.random.default_rng(20240607)
    ya, yb = _labels(rng, 80, 0.4), _labels(rng, 35, 0.4)
    sa, sb = 1.1 * ya + rng.normal(size=80), 0.6 * yb + rng.normal(size=35)
    cohort = np.array(["a"] * 80 + ["b"] * 35)
    cases["unpaired_80_35"] = ("unpaired", {"cohort": cohort, "y": np.concatenate([ya, yb]),
                                            "s": np.concatenate([sa, sb])})
    cases["unpaired_80_35_stage_ties"] = ("unpaired", {"cohort": cohort, "y": np.concatenate([ya, yb]),
                                                       "s": np.concatenate([_stage(rng, ya), _stage(rng, yb)])})

    # Youden: continuous, and an exact tie in J between two thresholds. With 8 cases and 8
    # controls every sensitivity and specificity is dyadic, so the tie is exact in floating
    # point too and pROC returns both rows: threshold 2.5 (se 6/8, sp 6/8) and 1.5 (se 7/8,
    # sp 5/8); the row with the higher sensitivity (1.5) is expected.
    rng = np.random.default_rng(20240608)
    y = _labels(rng, 200, 0.4)
    cases["youden_continuous_n200"] = ("youden", {"y": y, "s": 1.2 * y + rng.normal(size=200)})
    cases["youden_exact_tie_8v8"] = ("youden", {
        "y": np.array([1] * 8 + [0] * 8),
        "s": np.array([4, 4, 3, 3, 3, 3, 2, 1, 3, 3, 2, 1, 1, 1, 0, 0], dtype=float)})

    # calibration: p = expit(normal), y from a slightly miscalibrated model
    for seed, n in ((20240609, 400), (20240610, 60)):
        rng = np.random.default_rng(seed)
        lp = rng.normal(-0.5, 1.2, size=n)
        p = _expit(lp)
        y = (rng.random(n) < _expit(0.3 + 0.8 * lp)).astype(int)
        cases[f"calibration_n{n}"] = ("calibration", {"y": y, "p": p})

    # index-score-to-risk mapping: glm(y ~ s) on a continuous score
    rng = np.random.default_rng(20240611)
    s = rng.normal(size=300)
    cases["risk_continuous_n300"] = ("logistic", {"y": (rng.random(300) < _expit(-1 + 0.9 * s)).astype(int), "s": s})
    # Wilson intervals (including 0 and n successes) and Holm adjustment
    cases["wilson"] = ("proportions", {"x": np.array([0, 3, 10, 17, 1]), "n": np.array([10, 4, 10, 61, 1])})
    cases["holm"] = ("holm", {"p": np.array([0.01, 0.04, 0.03, 0.2, 0.0004, 0.03])})
    return cases


GENERATED = _make_cases()


def _names(kind: str) -> list[str]:
    return [name for name, (k, _) in GENERATED.items() if k == kind and name != DEGENERATE_PAIRED]


# --------------------------------------------------------------------------- committed case files


def write_r_cases(cases_dir: Path) -> None:
    """Write every generated case as cases_dir/reference/CASE.csv plus manifest.csv (case, kind, file)."""
    folder = cases_dir / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["case", "kind", "file"])
        for name, (kind, columns) in GENERATED.items():
            w.writerow([name, kind, f"{name}.csv"])
            with (folder / f"{name}.csv").open("w", newline="") as cf:
                cw = csv.writer(cf, lineterminator="\n")
                cw.writerow(list(columns))
                cw.writerows([r_cell(v) for v in row] for row in zip(*columns.values()))


def _column(cells: list[str]) -> np.ndarray:
    """Integers, floats or strings, as written by ``conftest.r_cell``."""
    try:
        if all("." not in c and "e" not in c and "n" not in c for c in cells):
            return np.array([int(c) for c in cells])
        return np.array([float(c) for c in cells])
    except ValueError:
        return np.array(cells)


def _read_cases(folder: Path) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """case name -> (kind, columns), from the committed manifest and case files."""
    cases = {}
    with (folder / "manifest.csv").open(newline="") as fh:
        for entry in csv.DictReader(fh):
            with (folder / entry["file"]).open(newline="") as cf:
                header, *rows = list(csv.reader(cf))
            cases[entry["case"]] = (entry["kind"], {c: _column([r[j] for r in rows]) for j, c in enumerate(header)})
    return cases


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """The committed case files (tests/r/cases/reference/), which reference.R read."""
    return _read_cases(REFERENCE_CASES)


def test_committed_cases_are_the_generated_cases(cases):
    """The committed case files hold the generated cases (same seeds; the same doubles to 4 ulp)."""
    assert list(cases) == list(GENERATED)
    for name, (kind, columns) in GENERATED.items():
        assert cases[name][0] == kind, name
        assert list(cases[name][1]) == list(columns), name
        for col, values in columns.items():
            read = cases[name][1][col]
            assert read.dtype.kind == np.asarray(values).dtype.kind, (name, col)
            if read.dtype.kind == "f":
                # 17 significant digits round-trip exactly, but numpy's exp is vectorised per CPU
                # (AVX2 / AVX-512 paths differ in the last bit or two), so a case drawn through
                # _expit on another machine may differ by a few ulp; R reads the committed file.
                np.testing.assert_array_max_ulp(read, np.asarray(values, dtype=float), maxulp=4)
            else:
                assert np.array_equal(read, values), (name, col)


# --------------------------------------------------------------------------- R's values


@pytest.fixture(scope="module")
def r_results() -> dict[str, dict[str, float]]:
    """tests/r/reference_values.csv (written by tests/r/reference.R); case -> key -> R value."""
    results = read_long_csv(REFERENCE_VALUES)
    assert set(results) == set(GENERATED), "reference_values.csv does not hold every case"
    return results


# --------------------------------------------------------------------------- AUC


@pytest.mark.parametrize("case", _names("auc"))
def test_auc_delong_ci(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    ours = roc_auc_delong(cols["y"], cols["s"])
    # r <- roc(y, s, direction = "<", levels = c(0, 1)); auc(r)
    assert_allclose(ours.estimate, r["auc"], **AUC_TOL)
    # sqrt(var(r, method = "delong"))
    assert_allclose(ours.se, r["se"], **STAT_TOL)
    # ci.auc(r, method = "delong")[c(1, 3)]  (pROC clips to [0, 1])
    assert_allclose([ours.ci_low, ours.ci_high], [r["ci_low"], r["ci_high"]], **STAT_TOL)
    # length(r$cases), length(r$controls)
    assert (ours.n_events, ours.n - ours.n_events) == (r["n_cases"], r["n_controls"])


def test_auc_cases_exercise_clipping_and_inversion(r_results):
    """Guard that the generated cases cover what they are meant to cover."""
    assert r_results["auc_tiny_3v4_clipped"]["ci_high"] == 1.0
    assert r_results["auc_inverted_n50"]["auc"] < 0.5


# --------------------------------------------------------------------------- DeLong tests


@pytest.mark.parametrize("case", _names("paired"))
def test_delong_paired(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    ours = delong_test(cols["y"], cols["a"], cols["b"])
    # t <- roc.test(r1, r2, method = "delong", paired = TRUE); t$estimate
    assert_allclose([ours.auc_a, ours.auc_b], [r["auc_a"], r["auc_b"]], **AUC_TOL)
    # t$statistic  (Z)
    assert_allclose(ours.statistic, r["statistic"], **STAT_TOL)
    # t$p.value
    assert_allclose(ours.p_value, r["p_value"], **P_TOL)
    # t$conf.int
    assert_allclose([ours.diff_ci_low, ours.diff_ci_high], [r["ci_low"], r["ci_high"]], **STAT_TOL)


def test_delong_paired_zero_variance(r_results, cases):
    cols = cases[DEGENERATE_PAIRED][1]
    r = r_results[DEGENERATE_PAIRED]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedStatisticWarning)
        ours = delong_test(cols["y"], cols["a"], cols["b"])
    # t <- roc.test(r1, r2, method = "delong", paired = TRUE); t$estimate  (1, 1)
    assert_allclose([ours.auc_a, ours.auc_b], [r["auc_a"], r["auc_b"]], **AUC_TOL)
    # t$statistic, t$p.value  (0 and 1: pROC sets Z = 0 when d = 0 and sig = 0)
    assert_allclose([ours.statistic, ours.p_value], [r["statistic"], r["p_value"]], **STAT_TOL)
    # t$conf.int  (0, 0)
    assert_allclose([ours.diff_ci_low, ours.diff_ci_high], [r["ci_low"], r["ci_high"]], **STAT_TOL)


@pytest.mark.parametrize("case", _names("unpaired"))
def test_delong_unpaired(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    a, b = cols["cohort"] == "a", cols["cohort"] == "b"
    ours = delong_unpaired_test(cols["y"][a], cols["s"][a], cols["y"][b], cols["s"][b])
    # t <- roc.test(r1, r2, method = "delong", paired = FALSE); t$estimate
    assert_allclose([ours.auc_a, ours.auc_b], [r["auc_a"], r["auc_b"]], **AUC_TOL)
    # t$statistic  (D)
    assert_allclose(ours.statistic, r["statistic"], **STAT_TOL)
    # t$parameter  (df)
    assert_allclose(ours.df, r["df"], **STAT_TOL)
    # t$p.value
    assert_allclose(ours.p_value, r["p_value"], **P_TOL)


# --------------------------------------------------------------------------- Youden threshold


@pytest.mark.parametrize("case", _names("youden"))
def test_youden_threshold(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    thr = youden_threshold(cols["y"], cols["s"])
    # b <- coords(r, "best", best.method = "youden",
    #             ret = c("threshold", "sensitivity", "specificity"), transpose = FALSE)
    # b$threshold[which.max(b$sensitivity)]
    assert_allclose(thr, r["threshold"], **THRESHOLD_TOL)
    m = threshold_metrics(cols["y"], cols["s"], thr)
    # b$sensitivity[which.max(b$sensitivity)], b$specificity[which.max(b$sensitivity)]
    assert_allclose([m.sensitivity, m.specificity], [r["sensitivity"], r["specificity"]], rtol=1e-12)


def test_youden_tie_case_has_several_best_rows(r_results):
    # nrow(coords(r, "best", best.method = "youden", ...)) on the constructed tie
    assert r_results["youden_exact_tie_8v8"]["n_best"] >= 2
    assert r_results["youden_exact_tie_8v8"]["threshold"] == 1.5


# --------------------------------------------------------------------------- glm fits


@pytest.mark.parametrize("case", _names("calibration"))
def test_calibration_intercept_slope(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    intercept, slope = calibration_intercept_slope(cols["y"], cols["p"])
    # coef(glm(y ~ offset(qlogis(p)), family = binomial))[1]
    assert_allclose(intercept, r["intercept"], **GLM_TOL)
    # coef(glm(y ~ qlogis(p), family = binomial))[2]
    assert_allclose(slope, r["slope"], **GLM_TOL)


@pytest.mark.parametrize("case", _names("logistic"))
def test_risk_mapping(r_results, cases, case):
    cols = cases[case][1]
    r = r_results[case]
    fit = fit_risk_mapping(cols["y"], cols["s"])
    # coef(glm(y ~ s, family = binomial))
    assert_allclose([fit.intercept, fit.slope], [r["intercept"], r["slope"]], **GLM_TOL)


@pytest.mark.parametrize("case", _names("calibration"))
def test_brier_and_slope_match_rms_val_prob(r_results, cases, case):
    r = r_results[case]
    cols = cases[case][1]
    res = calibration_summary(cols["y"], cols["p"])
    # v <- rms::val.prob(p, y, pl = FALSE); v[["Brier"]], v[["Slope"]]
    assert_allclose(res.brier, r["rms_brier"], rtol=1e-12)
    assert_allclose(res.slope, r["rms_slope"], **GLM_TOL)


def test_wilson_matches_prop_test(r_results, cases):
    cols, r = cases["wilson"][1], r_results["wilson"]
    for i, (x, n) in enumerate(zip(cols["x"], cols["n"]), start=1):
        _, low, high = wilson_interval(int(x), int(n))
        # prop.test(x, n, correct = FALSE)$conf.int
        assert_allclose([low, high], [r[f"low_{i}"], r[f"high_{i}"]], rtol=1e-9, atol=1e-12)


def test_holm_matches_p_adjust(r_results, cases):
    p, r = cases["holm"][1]["p"], r_results["holm"]
    # p.adjust(p, method = "holm")
    assert_allclose(holm_adjust(p), [r[f"adj_{i}"] for i in range(1, p.size + 1)], rtol=1e-12)


# --------------------------------------------------------------------------- regenerating the R files

EXACT = dict(rtol=0.0, atol=0.0)


def _reference_values_tol(case: str, key: str) -> dict:
    """Tolerance of the assertion above that uses reference_values.csv's (case, key)."""
    if key.startswith(("low_", "high_")):
        return dict(rtol=1e-9, atol=1e-12)  # test_wilson_matches_prop_test
    if key.startswith("adj_") or key in ("sensitivity", "specificity", "rms_brier"):
        return dict(rtol=1e-12, atol=0.0)
    return {"auc": AUC_TOL, "auc_a": AUC_TOL, "auc_b": AUC_TOL, "p_value": P_TOL, "threshold": THRESHOLD_TOL,
            "intercept": GLM_TOL, "slope": GLM_TOL, "rms_slope": GLM_TOL, "n_cases": EXACT, "n_controls": EXACT,
            "n_best": EXACT}.get(key, STAT_TOL)  # se, ci_low, ci_high, statistic, df


def _psych_tol(case: str, key: str) -> dict:
    """Tolerances of tests/test_agreement.py::test_kappa_and_icc_match_r_psych."""
    return dict(rtol=1e-10, atol=0.0) if key in ("kappa", "icc") else dict(rtol=1e-8, atol=0.0)


def _base_tol(case: str, key: str) -> dict:
    """Tolerances of tests/test_tables.py::test_against_r."""
    if case.startswith("glm_"):
        return dict(rtol=1e-6, atol=0.0)
    return dict(rtol=1e-7, atol=0.0) if case == "fisher_2x4" else dict(rtol=1e-9, atol=0.0)


def _survival_tol(case: str, key: str) -> dict:
    """Tolerances of tests/test_survival.py (counts exactly; thresholds as the Youden test)."""
    if key in ("n", "n_events", "n_high") or "_n_risk_" in key:
        return EXACT
    if key == "proc_threshold":
        return THRESHOLD_TOL
    return P_TOL if key.endswith("_p") else STAT_TOL


def _internal_validation_tol(case: str, key: str) -> dict:
    """Tolerances of tests/test_internal_validation.py and tests/test_nomogram.py (resample counts
    and pretty() ticks exactly; every other value 1e-6, absolute: indexes near 0 such as U)."""
    if key.endswith(":n") or case.startswith("pretty_") or case == "selection_resamples":
        return EXACT
    if case == "selection_data":
        return dict(rtol=1e-5, atol=0.0)
    return dict(rtol=1e-6, atol=1e-6)


#: the long CSVs of tests/r/ and the tolerance of the assertions that read each value
REFERENCE_FILES = {"reference_values.csv": _reference_values_tol, "psych_agreement.csv": _psych_tol,
                   "base_tests.csv": _base_tol, "survival.csv": _survival_tol,
                   "internal_validation.csv": _internal_validation_tol}


def _versions(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


@pytest.mark.r_reference
def test_r_reference_files_regenerate(tmp_path):
    """Rerun every R script of tests/r/ on the committed case files; the values must be the committed ones.

    R is deterministic here (no random numbers; glm, pROC, psych and the exact tests are plain
    arithmetic), so with the R, BLAS/LAPACK and package versions of tests/r/versions.txt every
    value must come back bit for bit (the same 17-digit text). With other versions a value may move
    in its last digits, and each is compared with the tolerance of the assertion that reads it.
    The driver also checks that R's read.csv parses every case cell to the double Python reads.
    """
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not found on PATH")
    probe = subprocess.run([rscript, str(R_DIR / "versions.R"), str(tmp_path / "probe.txt")],
                           capture_output=True, text=True, encoding="utf-8", timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"Rscript does not run: {probe.stderr.strip()[-300:]}")
    missing = [line for line in _versions(tmp_path / "probe.txt") if line.endswith(": MISSING")]
    if missing:
        pytest.skip(f"R packages missing: {', '.join(missing)}")

    out = tmp_path / "regenerated"
    run = subprocess.run([sys.executable, str(MAKE_REFERENCE), "--out", str(out)],
                         capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert run.returncode == 0, f"make_reference.py failed:\n{run.stdout}\n{run.stderr}"

    assert sorted(p.name for p in out.glob("*.csv")) == sorted(REFERENCE_FILES), "a reference file is not compared"
    same_versions = _versions(out / "versions.txt") == _versions(R_DIR / "versions.txt")
    for name, tolerance in REFERENCE_FILES.items():
        committed, regenerated = R_DIR / name, out / name
        if same_versions:
            with committed.open(newline="") as a, regenerated.open(newline="") as b:
                differ = [(x, y) for x, y in itertools.zip_longest(csv.reader(a), csv.reader(b)) if x != y]
            assert not differ, (f"{name}: R (same versions) now writes other values; committed vs regenerated: "
                                f"{differ[:5]}")
            continue
        ours, theirs = read_long_csv(committed), read_long_csv(regenerated)
        assert {c: set(k) for c, k in ours.items()} == {c: set(k) for c, k in theirs.items()}, name
        for case, values in ours.items():
            for key, value in values.items():
                assert_allclose(theirs[case][key], value, **tolerance(case, key), err_msg=f"{name}: {case} {key}")
