"""Internal validation corrected for optimism (Harrell's bootstrap) against rms::validate.lrm.

The case (``tests/r/cases/internal_validation/``): 200 generated patients (``_case_data``: x1, x2
continuous, x3 0/1, g a factor, y 0/1) and B = 200 resamples drawn by our
``draw_resamples(200, 200, seed=2024)`` (1-based rows, for R). ``tests/r/internal_validation.R``
read them and wrote ``tests/r/internal_validation.csv`` (long form, 17 significant digits):
rms's validate table on our resamples (rms's own code, its ``sample`` replaced by a reader of
the resample file) and on its own resamples (``set.seed(20240513)``), the CR two-step selection by
hand with glm Wald tests on each of our resamples (what the selection-repeated procedure redoes;
rms's ``bw = TRUE`` selects by fast backward elimination instead, so it is no reference for that
procedure's table), and the nomogram's values (tests/test_nomogram.py). Each assertion quotes the
R call it is checked against.

Tolerances: on the same resamples every index agrees to 1e-6 (absolute; rms's lrm.fit stops at
tol = 1e-7 on the training fits, ours at a step of 1e-12). On rms's own resamples the two are
independent Monte Carlo estimates of the same bootstrap expectation: their difference has
standard deviation sqrt(2) * SD_b(train_b - test_b) / sqrt(B), estimated from our resamples; the
test allows 4 of them (a false alarm about once in 16,000 per index).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from scipy import special

from conftest import read_long_csv
from dlr.modeling.internal_validation import (
    COLUMNS,
    FIXED,
    INDEXES,
    MEASURED,
    REPEATED,
    bootstrap_validation,
    draw_resamples,
    gini_md,
    logistic_indexes,
    validate_estimator,
    validate_logistic,
)

R_DIR = Path(__file__).parent / "r"
CASE_DIR = R_DIR / "cases" / "internal_validation"
DATA = CASE_DIR / "data.csv"
RESAMPLES = CASE_DIR / "resamples.csv"
VALUES = R_DIR / "internal_validation.csv"
N, B, DATA_SEED, RESAMPLE_SEED = 200, 200, 13, 2024
SAME_RESAMPLES_TOL = dict(rtol=0.0, atol=1e-6)

#: our index name -> rms's row name
RMS_NAME = {"Brier": "B"}
#: our columns -> rms's columns
RMS_COLUMN = {"apparent": "index.orig", "train_mean": "training", "test_mean": "test", "optimism": "optimism",
              "corrected": "index.corrected", "n_resamples": "n"}


# --------------------------------------------------------------------------- the case


def _case_data(n: int = N, seed: int = DATA_SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0.0, 1.0, n)
    x2 = np.exp(rng.normal(0.5, 0.5, n))
    x3 = (rng.random(n) < 0.4).astype(int)
    g = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.5, 0.3, 0.2])
    lp = -0.2 + 0.9 * x1 - 0.45 * x2 + 0.7 * x3 + np.select([g == "b", g == "c"], [0.5, -0.6], 0.0)
    y = (rng.random(n) < special.expit(lp)).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "g": g, "y": y})


def _case_resamples(n: int = N, b: int = B, seed: int = RESAMPLE_SEED) -> pd.DataFrame:
    rows = draw_resamples(n, b, seed=seed) + 1  # R's 1-based rows
    frame = pd.DataFrame(rows, columns=[f"r{i}" for i in range(1, n + 1)])
    frame.insert(0, "resample", np.arange(1, b + 1))
    return frame


def write_r_cases(cases_dir: Path) -> None:
    """Write the cases of internal_validation.R (tests/r/make_reference.py --write-cases); 17 significant digits."""
    folder = cases_dir / "internal_validation"
    folder.mkdir(parents=True, exist_ok=True)
    _case_data().to_csv(folder / DATA.name, index=False, float_format="%.17g", lineterminator="\n")
    _case_resamples().to_csv(folder / RESAMPLES.name, index=False, lineterminator="\n")


def _read_case() -> tuple[pd.DataFrame, np.ndarray]:
    data = pd.read_csv(DATA, converters={"x1": float, "x2": float})  # Python's float(): the doubles R read
    rows = pd.read_csv(RESAMPLES).drop(columns="resample").to_numpy() - 1
    return data, rows


def _rms(case: str) -> dict:
    values = read_long_csv(VALUES)[case]
    return {(key.split(":")[0], key.split(":")[1]): v for key, v in values.items()}


def test_committed_cases_are_the_generated_cases():
    """The committed case files that internal_validation.R read are what the generators write:
    the resamples exactly, the data to 1e-13 (numpy's vectorised exp differs between builds by an
    ulp, e.g. 2.3.5 against the build the cases were written with; the rms comparisons below
    read the committed files, so they do not depend on it)."""
    data, rows = _read_case()
    pd.testing.assert_frame_equal(data, _case_data(), check_exact=False, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(rows, draw_resamples(N, B, seed=RESAMPLE_SEED))


# --------------------------------------------------------------------------- against rms


def _ours_on_case(**kwargs):
    data, rows = _read_case()
    return validate_logistic(data[["x1", "x2", "x3"]].to_numpy(dtype=float), data["y"].to_numpy(), **kwargs)


def test_every_index_equals_rms_validate_on_the_same_resamples():
    result = _ours_on_case(resamples=_read_case()[1])
    table = result.to_frame().set_index("index")
    rms = _rms("validate_our_resamples")
    # fit <- lrm(y ~ x1 + x2 + x3, data = d, x = TRUE, y = TRUE)
    # validate(fit, B = 200), rms's validate.lrm and predab.resample unchanged, `sample` returning
    # the rows of resamples.csv (tests/r/internal_validation.R)
    for index in INDEXES:
        if index == "AUC":
            continue
        for ours, theirs in RMS_COLUMN.items():
            assert_allclose(table.loc[index, ours], rms[(RMS_NAME.get(index, index), theirs)], **SAME_RESAMPLES_TOL,
                            err_msg=f"{index} {ours}")
    # AUC = Dxy / 2 + 0.5 (somers2's C), its optimism Dxy's / 2
    for column in ("apparent", "train_mean", "test_mean", "corrected"):
        assert_allclose(table.loc["AUC", column], rms[("Dxy", RMS_COLUMN[column])] / 2 + 0.5, **SAME_RESAMPLES_TOL)
    assert_allclose(table.loc["AUC", "optimism"], rms[("Dxy", "optimism")] / 2, **SAME_RESAMPLES_TOL)
    assert (table["n_failed"] == 0).all() and (table["n_resamples"] == B).all()


def test_rms_own_resamples_agree_within_the_monte_carlo_error():
    """rms's own resamples (set.seed(20240513)) and ours are two Monte Carlo estimates of one
    bootstrap expectation: |difference| <= 4 sqrt(2) SD_b(train_b - test_b) / sqrt(B)."""
    table = _ours_on_case(resamples=_read_case()[1]).to_frame().set_index("index")
    rms = _rms("validate_rms_seed")
    # set.seed(20240513); validate(lrm(y ~ x1 + x2 + x3, x = TRUE, y = TRUE), B = 200)
    checked = 0
    for index in MEASURED:
        name = RMS_NAME.get(index, index)
        assert_allclose(table.loc[index, "apparent"], rms[(name, "index.orig")], **SAME_RESAMPLES_TOL)
        # the Monte Carlo SE of our optimism (for Intercept and Slope, whose training values are 0
        # and 1, that of the mean test value); the difference of two independent estimates: sqrt(2) x
        allowed = 4 * np.sqrt(2) * table.loc[index, "optimism_se"]
        for column in ("optimism", "corrected"):
            diff = abs(table.loc[index, column] - rms[(name, RMS_COLUMN[column])])
            assert diff <= allowed, f"{index} {column}: ours and rms's differ by {diff:.3g} > {allowed:.3g}"
            checked += 1
        assert table.loc[index, "optimism_se"] > 0
    assert checked == 2 * len(MEASURED)
    # and the two sets of resamples differ: the agreement above is not the same numbers twice
    assert table.loc["Dxy", "optimism"] != rms[("Dxy", "optimism")]


@pytest.mark.r_reference
def test_internal_validation_r_script_regenerates(tmp_path):
    """Rerun tests/r/internal_validation.R on the committed cases; every value must be the committed one
    (exactly with the R and rms versions of tests/r/versions.txt, else within the tests' tolerances)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not found on PATH")
    probe = subprocess.run([rscript, "-e", "library(rms)"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"R package rms missing: {probe.stderr.strip()[-200:]}")
    out = tmp_path / "internal_validation.csv"
    run = subprocess.run([rscript, str(R_DIR / "internal_validation.R"), str(DATA), str(RESAMPLES), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    committed, regenerated = read_long_csv(VALUES), read_long_csv(out)
    assert {c: set(k) for c, k in committed.items()} == {c: set(k) for c, k in regenerated.items()}
    versions = subprocess.run([rscript, "-e", 'cat(R.version.string, as.character(packageVersion("rms")))'],
                              capture_output=True, text=True, timeout=120).stdout
    same = "R version 4.2.2" in versions and "6.5.0" in versions
    for case, values in committed.items():
        for key, value in values.items():
            if same or key.endswith(":n") or case == "selection_resamples" or case.startswith("pretty_"):
                tol = dict(rtol=0.0, atol=0.0)
            else:
                tol = dict(rtol=1e-5, atol=0.0) if case == "selection_data" else dict(rtol=1e-6, atol=1e-6)
            assert_allclose(regenerated[case][key], value, **tol, err_msg=f"{case} {key}")


# --------------------------------------------------------------------------- the indexes


def test_gini_mean_difference_equals_the_pairwise_mean():
    """The O(n log n) formula against the O(n^2) mean of |x_i - x_j| over i != j."""
    x = np.random.default_rng(5).normal(size=37)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (x.size * (x.size - 1))
    assert_allclose(gini_md(x), pairwise, rtol=1e-12)
    assert np.isnan(gini_md([1.0]))


def test_an_mle_fit_recalibrated_on_its_own_data_has_intercept_0_slope_1():
    """own_fit=True (rms's evalfit) is the recalibration of a maximum-likelihood fit on its own sample."""
    data, _ = _read_case()
    from dlr.core.stats.logistic import fit_logistic

    exog = np.column_stack([np.ones(N), data[["x1", "x2", "x3"]].to_numpy(dtype=float)])
    y = data["y"].to_numpy(dtype=float)
    lp = exog @ fit_logistic(y, exog)
    own, recalibrated = logistic_indexes(lp, y, own_fit=True), logistic_indexes(lp, y, own_fit=False)
    for key in MEASURED:
        assert_allclose(recalibrated[key], own[key], rtol=0, atol=1e-9, err_msg=key)
    # a constant lp: calibration in the large, no discrimination
    flat = logistic_indexes(np.zeros(N), y, own_fit=False)
    assert flat["Dxy"] == 0 and flat["Slope"] == 1 and flat["R2"] == 0 and flat["g"] == 0
    assert_allclose(flat["Intercept"], special.logit(y.mean()), rtol=1e-12)


def test_a_penalised_pipeline_refit_matches_the_logistic_one_as_the_penalty_vanishes():
    """validate_estimator (RCR's path: impute, scale, LogisticRegression) with C = 1e10 gives the
    unpenalised validate_logistic's table, its training intercept and slope estimated, not set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data, rows = _read_case()
    X = data[["x1", "x2", "x3"]]
    rows = rows[:40]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1e10, tol=1e-12, max_iter=10000))
    pipeline.fit(X, data["y"])
    ours = validate_estimator(pipeline, X, data["y"].to_numpy(), model="LR", resamples=rows).to_frame()
    plain = _ours_on_case(resamples=rows).to_frame()
    assert_allclose(ours[["apparent", "optimism", "corrected"]].to_numpy(dtype=float),
                    plain[["apparent", "optimism", "corrected"]].to_numpy(dtype=float), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- failures


def test_failed_refits_are_counted_named_and_left_out():
    """A rare 0/1 column (one event, one non-event): a resample without both of its patients has a
    constant column or separation, no finite maximum; it is counted, named and left out (rms:
    "Divergence or singularity in k samples"), the others are used."""
    data, rows = _read_case()
    y = data["y"].to_numpy()
    rare_rows = [int(np.flatnonzero(y == 1)[0]), int(np.flatnonzero(y == 0)[0])]
    rare = np.zeros(N)
    rare[rare_rows] = 1.0
    X = np.column_stack([data[["x1", "x2"]].to_numpy(dtype=float), rare])
    rows = rows[:30]
    expected = [b + 1 for b, r in enumerate(rows) if not set(rare_rows) <= set(r.tolist())]
    assert 0 < len(expected) < 30
    table = validate_logistic(X, y, resamples=rows).to_frame()
    assert (table["n_failed"] == len(expected)).all() and (table["n_resamples"] == 30 - len(expected)).all()
    named = table["failures"].iloc[0]
    assert named.startswith(f"{len(expected)} x no finite maximum likelihood")
    assert ", ".join(map(str, expected[:10])) in named


def test_single_class_resample_fails_and_the_others_are_kept():
    y = np.r_[np.ones(3), np.zeros(37)]
    X = np.random.default_rng(2).normal(size=(40, 1)) + y[:, None]
    rows = draw_resamples(40, 50, seed=1)
    rows[7] = np.arange(3, 40) .tolist() + [3, 4, 5]  # no event
    table = validate_logistic(X, y, resamples=rows).to_frame().set_index("index")
    assert table.loc["Dxy", "n_failed"] >= 1 and "a single outcome class (resample" in table.loc["Dxy", "failures"]
    assert table.loc["Dxy", "n_resamples"] == 50 - table.loc["Dxy", "n_failed"]


def test_bootstrap_validation_checks_the_resamples():
    with pytest.raises(ValueError, match="resamples must be an integer array"):
        bootstrap_validation(np.r_[0, 1, 1], np.zeros(3), lambda rows: (np.zeros(3), False), model="m",
                             procedure=FIXED, resamples=np.zeros((2, 4), dtype=int))


# --------------------------------------------------------------------------- the CR model and train


@pytest.fixture(scope="module")
def clinical_study(tmp_path_factory):
    """The synthetic study's clinical data (no images) and its CR model on the development cohort."""
    from dlr.modeling.clinical import fit_cr
    from dlr.modeling.study import load_study
    from dlr.modeling.synthetic import synthesize_study

    root = tmp_path_factory.mktemp("iv") / "S"
    synthesize_study(root, n=165, images=False)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["phases"] = []  # a clinical-only study
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    study = load_study(root)
    config = study.config
    clinical = study.clinical.copy()
    clinical[config.id_column] = clinical[config.id_column].astype(str)
    dev = clinical[clinical[config.cohort_column] == config.dev_cohort].reset_index(drop=True)
    return root, config, dev, fit_cr(dev, config, dev_ids=dev[config.id_column])


def test_cr_fixed_factors_is_validate_logistic_on_its_design(clinical_study):
    from dlr.modeling.clinical import design
    from dlr.modeling.internal_validation import validate_cr

    _, config, dev, model = clinical_study
    fixed = validate_cr(dev, config, model, procedure=FIXED, n_resamples=40, seed=3).to_frame()
    plain = validate_logistic(design(dev, model.codings).to_numpy(dtype=float),
                              dev[config.outcome_column].to_numpy(), n_resamples=40, seed=3).to_frame()
    cols = ["apparent", "train_mean", "test_mean", "optimism", "corrected"]
    assert_allclose(fixed[cols].to_numpy(dtype=float), plain[cols].to_numpy(dtype=float), rtol=0, atol=1e-12)
    assert (fixed["procedure"] == FIXED).all() and (fixed["model"] == "CR").all()


def test_repeating_the_selection_costs_more_optimism_and_counts_null_models(clinical_study, monkeypatch):
    """The selection-repeated bootstrap: each resample reselects (its factors vary), a resample that
    selects nothing is the intercept-only model (Dxy 0 on the resample), kept and counted."""
    import dlr.modeling.internal_validation as iv
    from dlr.modeling.internal_validation import validate_cr

    _, config, dev, model = clinical_study
    fixed = validate_cr(dev, config, model, procedure=FIXED, n_resamples=40, seed=3).to_frame().set_index("index")
    seen = []
    real_fit_cr = iv.fit_cr

    def spy(*args, **kwargs):
        fitted = real_fit_cr(*args, **kwargs)
        seen.append(fitted.factors)
        return fitted

    monkeypatch.setattr(iv, "fit_cr", spy)
    result = validate_cr(dev, config, model, procedure=REPEATED, n_resamples=40, seed=3)
    repeated = result.to_frame().set_index("index")
    assert len(set(seen)) > 1  # the factors chosen vary between resamples
    assert_allclose(repeated["apparent"], fixed["apparent"], rtol=0, atol=0)  # the same original model
    assert repeated.loc["AUC", "optimism"] > fixed.loc["AUC", "optimism"]
    assert repeated.loc["AUC", "corrected"] < fixed.loc["AUC", "corrected"]

    # a stricter alpha: some resamples select nothing; they are counted and enter the means with Dxy 0
    strict = validate_cr(dev, config, model, procedure=REPEATED, alpha=0.002, n_resamples=40, seed=3)
    frame = strict.to_frame().set_index("index")
    nulls = np.array(strict.no_factor) - 1
    assert 0 < len(nulls) < 40 and frame.loc["Dxy", "n_no_factor"] == len(nulls)
    assert frame.loc["Dxy", "n_resamples"] == 40 and frame.loc["Dxy", "n_failed"] == 0
    assert (strict.train[nulls, MEASURED.index("Dxy")] == 0).all()
    assert (strict.test[nulls, MEASURED.index("Slope")] == 1).all()


def test_train_writes_the_table_and_never_uses_a_validation_patient(clinical_study, tmp_path, caplog):
    """`dlr train`'s internal_validation.csv (and nomograms) are byte-identical when every validation
    patient's outcome and clinical values change."""
    from dlr.modeling.study import load_study
    from dlr.modeling.train import train_study

    root, config, _, _ = clinical_study
    runs = []
    for k, change in enumerate((False, True)):
        study = tmp_path / f"S{k}"
        shutil.copytree(root, study)
        if change:
            clinical = pd.read_csv(study / "clinical.csv", dtype={"patient_id": str})
            validation = clinical["cohort"] == "validation"
            clinical.loc[validation, "early_recurrence"] = 1 - clinical.loc[validation, "early_recurrence"]
            clinical.loc[validation, "ast"] = clinical.loc[validation, "ast"][::-1].to_numpy()
            clinical.to_csv(study / "clinical.csv", index=False)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dlr"):
            train_study(load_study(study), tmp_path / f"run{k}", arms=("clinical",), oof=False,
                        internal_validation_b=30)
        messages = [r.getMessage() for r in caplog.records]
        runs.append(tmp_path / f"run{k}" / "models")
    table = pd.read_csv(runs[0] / "internal_validation.csv")
    assert list(table.columns) == COLUMNS
    assert set(table["procedure"]) == {FIXED, REPEATED} and set(table["model"]) == {"CR"}
    assert (table["n_requested"] == 30).all() and list(table["index"][:len(INDEXES)]) == list(INDEXES)
    assert any("internal validation of CR (selection repeated)" in m for m in messages)
    for name in ("internal_validation.csv", "nomogram.csv", "nomogram_axes.csv"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    # and the validation patients did change what train wrote for them
    assert (runs[0].parent / "predictions.csv").read_bytes() != (runs[1].parent / "predictions.csv").read_bytes()


def test_validate_b_zero_skips_the_table_and_a_negative_b_is_refused(clinical_study, tmp_path):
    from conftest import run_dlr
    from dlr.modeling.study import load_study
    from dlr.modeling.train import train_study

    root = clinical_study[0]
    train_study(load_study(root), tmp_path / "run", arms=("clinical",), oof=False, internal_validation_b=0)
    assert not (tmp_path / "run" / "models" / "internal_validation.csv").exists()
    assert (tmp_path / "run" / "models" / "nomogram.csv").is_file()  # the nomogram needs no resampling
    res = run_dlr("train", root, "--out", tmp_path / "run2", "--arms", "clinical", "--no-oof", "--validate-b", "-1")
    assert res.returncode == 2 and "--validate-b" in res.stderr and "Traceback" not in res.stderr


def test_the_repeated_selection_is_r_glm_wald_selection_on_each_resample():
    """The selection that the selection-repeated procedure redoes on each resample
    (modeling.cr_factors.select_cr_factors) picks, on each of our 200 resamples, the factors R's
    glm Wald tests pick (univariate p < 0.05, then multivariate p < 0.05, a factor's terms jointly)."""
    import warnings

    from dlr.modeling.cr_factors import select_cr_factors

    data, rows = _read_case()
    candidates = ["x1", "x2", "x3", "g"]
    r = read_long_csv(VALUES)
    original = select_cr_factors(data, outcome="y", variables=candidates, categorical=["g"]).variables
    for row in original.itertuples():
        # glm(reformulate(v, "y"), binomial, d, control = glm.control(epsilon = 1e-14)): joint Wald p of
        # v's terms; then of the entered ones together. rtol 1e-5: R's vcov comes from the weights of
        # its last IRLS iteration, one step before its final coefficients (SEs off by ~1e-7 relative)
        assert_allclose(row.univariate_p, r["selection_data"][f"univariate_p:{row.variable}"], rtol=1e-5)
        assert_allclose(row.multivariate_p, r["selection_data"][f"multivariate_p:{row.variable}"], rtol=1e-5)
    masks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b, sample in enumerate(rows, start=1):
            chosen = select_cr_factors(data.iloc[sample].reset_index(drop=True), outcome="y", variables=candidates,
                                       categorical=["g"]).selected
            mask = sum(2 ** candidates.index(v) for v in chosen)
            # select(d[resamples[b, ], ]) in tests/r/internal_validation.R, as a bit mask
            assert mask == r["selection_resamples"][f"resample:{b}"], f"resample {b}: {chosen}"
            masks.append(mask)
    assert len(set(masks)) >= 4  # the selection does vary between resamples
