"""`dlr train`: every model in predictions.csv, and nothing fitted sees a validation patient."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_dlr

sitk = pytest.importorskip("SimpleITK")
pytest.importorskip("radiomics")

from dlr.modeling.radiomics.extraction import extract_study  # noqa: E402
from dlr.core.output import file_sha256, read_provenance, record_provenance  # noqa: E402
from dlr.core.stats.roc import rank_auc  # noqa: E402
from dlr.modeling.splits import SplitError, load_or_make_split, make_split  # noqa: E402
from dlr.modeling.study import load_study  # noqa: E402
from dlr.modeling.synthetic import synthesize_study  # noqa: E402
from dlr.modeling.train import train_study  # noqa: E402

# one xdist worker runs this module, so the trained study below is built once
pytestmark = pytest.mark.xdist_group("train")

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"
MODELS = ["CR", "Radiomics-LR", "Radiomics-SVM", "Radiomics-KNN", "Radiomics-XGBoost", "Radiomics-MLP", "RCR",
          "BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR"]


def _fast_study(root: Path) -> Path:
    """The paper-sized synthetic study, extracted on its native grid with the light parameters."""
    synthesize_study(root, n=165)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["preprocessing"] = {"spacing": [3.0, 3.0, 5.0]}
    config["radiomics_params"] = str(LIGHT)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    root = _fast_study(base / "S")
    run = base / "run"
    extract_study(load_study(root), run, jobs=2)
    summary = train_study(load_study(root), run, oof=False)
    return root, run, summary


def test_predictions_hold_every_model_for_both_cohorts(trained):
    root, run, summary = trained
    pred = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    # the scanner (--strata) and the follow-up columns of study.yaml (--time, --event)
    assert list(pred.columns) == ["patient_id", "cohort", "model", "y_true", "y_score", "scanner",
                                  "months_to_recurrence", "recurrence"]
    exact = dict(dtype={"patient_id": str}, float_precision="round_trip")  # 17 digits read back as written
    carried = pd.read_csv(run / "predictions.csv", **exact)
    clinical_follow_up = pd.read_csv(root / "clinical.csv", **exact).set_index("patient_id")
    for column in ("months_to_recurrence", "recurrence"):
        assert (carried[column].to_numpy() == clinical_follow_up.loc[carried["patient_id"], column].to_numpy()).all()
    assert list(dict.fromkeys(pred["model"])) == MODELS
    counts = pred.groupby(["model", "cohort"]).size().unstack()
    assert (counts["training"] == 132).all() and (counts["validation"] == 33).all()
    probabilities = pred[pred["model"].isin(MODELS[:7])]["y_score"]
    assert probabilities.between(0, 1).all()
    # the same patients and outcomes as clinical.csv
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str}).set_index("patient_id")
    one = pred[pred["model"] == "CR"].set_index("patient_id")
    assert (one["y_true"] == clinical.loc[one.index, "early_recurrence"]).all()
    # the CR model is the paper's: AST and tumour diameter, as `dlr logistic` selects
    params = json.loads((run / "models/parameters.json").read_text())
    assert params["CR"]["factors"] == ["ast", "tumor_diameter"]
    # the reproducibility filter, the tests and LASSO each reduce the features
    counts = summary.selection_counts.set_index("step")["n_features"]
    assert counts.iloc[0] == 3 * 56 and counts.is_monotonic_decreasing and counts.iloc[-1] >= 1
    # RCR uses the classifier with the best development CV AUC
    models = summary.models.set_index("model")
    best = models.loc[models["best_classifier"]].index[0]
    cv = models.loc[[f"Radiomics-{c}" for c in ("LR", "SVM", "KNN", "XGBoost", "MLP")], "cv_auc"]
    assert cv[best] == cv.max() and models.loc["RCR", "classifier"] == best.split("-")[1]
    # the analysis reads the file as it is
    res = run_dlr("analyze", run / "predictions.csv", "--out", run / "results", "--strata", "scanner",
                  "--bootstrap", "0", "--no-figures")
    assert res.returncode == 0, res.stderr


def _flip_validation_outcomes(root, copy):
    """A copy of the study at ``root`` with every validation patient's outcome flipped."""
    shutil.copytree(root, copy, symlinks=True)
    clinical = pd.read_csv(copy / "clinical.csv", dtype={"patient_id": str})
    validation = clinical["cohort"] == "validation"
    clinical.loc[validation, "early_recurrence"] = 1 - clinical.loc[validation, "early_recurrence"]
    clinical.to_csv(copy / "clinical.csv", index=False)
    return clinical, validation


def test_changing_validation_patients_leaves_every_fitted_parameter_identical(trained, tmp_path):
    root, run, _ = trained
    other = tmp_path / "S"
    clinical, validation = _flip_validation_outcomes(root, other)
    rng = np.random.default_rng(1)
    for pid in clinical.loc[validation, "patient_id"]:
        path = other / "images" / pid / "AP.nii.gz"
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image).astype(np.float64)
        array = array * rng.uniform(0.5, 1.5) + rng.normal(0, 40, array.shape)
        changed = sitk.GetImageFromArray(np.clip(array, 0, 32767).astype(np.int16))
        changed.CopyInformation(image)
        sitk.WriteImage(changed, str(path), True)
    run2 = tmp_path / "run"
    shutil.copytree(run / "features" / "cache", run2 / "features" / "cache")  # only changed cases recompute
    again = extract_study(load_study(other), run2, jobs=2)
    changed_cases = again.log[again.log["patient_id"].isin(set(clinical.loc[validation, "patient_id"]))
                              & (again.log["phase"] == "AP")]
    assert again.n_computed == len(changed_cases) >= int(validation.sum())  # the AP cases of both readers
    train_study(load_study(other), run2, oof=False)

    assert (run2 / "models/parameters.json").read_bytes() == (run / "models/parameters.json").read_bytes()
    # the model bundle (every fitted model, the thresholds, the risk maps, the development rows) too
    members = sorted(p.relative_to(run / "model") for p in (run / "model").rglob("*") if p.is_file())
    assert members and members == sorted(p.relative_to(run2 / "model") for p in (run2 / "model").rglob("*")
                                         if p.is_file())
    for member in members:
        assert (run2 / "model" / member).read_bytes() == (run / "model" / member).read_bytes(), member
    assert (run2 / "split.csv").read_bytes() == (run / "split.csv").read_bytes()
    # the LASSO figure is drawn from development patients only, and its SVG ids are salted: same bytes
    assert (run2 / "models/lasso.svg").read_bytes() == (run / "models/lasso.svg").read_bytes()
    before = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    after = pd.read_csv(run2 / "predictions.csv", dtype={"patient_id": str})
    dev = before["cohort"] == "training"
    pd.testing.assert_frame_equal(before[dev].reset_index(drop=True), after[dev].reset_index(drop=True))
    # and the validation patients did change: their images moved the radiomics scores
    changed = before[~dev & (before["model"] == "Radiomics-LR")]["y_score"].to_numpy()
    now = after[~dev & (after["model"] == "Radiomics-LR")]["y_score"].to_numpy()
    assert not np.allclose(changed, now)


def test_split_is_stratified_and_ignores_validation_patients():
    frame = pd.DataFrame({"id": [f"P{i}" for i in range(60)], "cohort": ["training"] * 50 + ["validation"] * 10,
                          "y": [i % 3 == 0 for i in range(60)]}).astype({"y": int})
    split = make_split(frame, id_column="id", cohort_column="cohort", outcome_column="y", dev_cohort="training",
                       seed=5)
    dev = split[split["cohort"] == "training"]
    assert set(dev["fold"]) == {1, 2, 3, 4, 5} and (split.loc[split["cohort"] == "validation", "fold"] == 0).all()
    per_fold = frame.iloc[:50].assign(fold=dev["fold"].to_numpy()).groupby("fold")["y"].sum()
    assert per_fold.max() - per_fold.min() <= 1
    frame.loc[frame["cohort"] == "validation", "y"] = 1
    again = make_split(frame, id_column="id", cohort_column="cohort", outcome_column="y", dev_cohort="training", seed=5)
    pd.testing.assert_frame_equal(split, again)
    tiny = frame.iloc[:8]
    with pytest.raises(SplitError, match="at least 5"):
        make_split(tiny, id_column="id", cohort_column="cohort", outcome_column="y", dev_cohort="training", seed=5)


def test_a_new_split_file_gets_its_provenance_entry(tmp_path):
    frame = pd.DataFrame({"id": [f"P{i}" for i in range(60)], "cohort": ["training"] * 50 + ["validation"] * 10,
                          "y": [i % 3 == 0 for i in range(60)]}).astype({"y": int})
    kwargs = {"id_column": "id", "cohort_column": "cohort", "outcome_column": "y", "dev_cohort": "training",
              "n_folds": 4, "seed": 5}
    load_or_make_split(tmp_path / "a", frame, **kwargs)
    entry = read_provenance(tmp_path / "a")["split.csv"]
    assert entry["sha256"] == file_sha256(tmp_path / "a" / "split.csv")
    assert list(entry["inputs"]) == ["patients"] and len(entry["inputs"]["patients"]) == 64
    assert entry["settings"] == {"n_folds": 4, "dev_cohort": "training", "outcome_column": "y"}
    assert entry["seed"] == 5
    frame.to_csv(tmp_path / "clinical.csv", index=False)
    load_or_make_split(tmp_path / "b", frame, clinical_path=tmp_path / "clinical.csv", **kwargs)
    entry = read_provenance(tmp_path / "b")["split.csv"]
    assert entry["inputs"] == {"clinical.csv": file_sha256(tmp_path / "clinical.csv")}
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["provenance.json", "split.csv"]  # no temporary


def test_train_records_provenance_beside_predictions_and_models(trained):
    root, run, _ = trained
    doc = read_provenance(run)
    assert {"predictions.csv", "split.csv"} <= set(doc)
    entry = doc["predictions.csv"]
    assert entry["sha256"] == file_sha256(run / "predictions.csv")
    assert entry["inputs"] == {"clinical.csv": file_sha256(root / "clinical.csv"),
                               "study.yaml": file_sha256(root / "study.yaml"),
                               "features/radiomics.csv": file_sha256(run / "features/radiomics.csv"),
                               "split.csv": file_sha256(run / "split.csv")}
    assert entry["settings"] == {"arms": ["clinical", "radiomics"], "n_folds": 5, "lasso_rule": "min",
                                 "icc_threshold": 0.9, "alpha": 0.05, "oof": False, "internal_validation_b": 200}
    assert entry["seed"] == yaml.safe_load((root / "study.yaml").read_text())["seed"]
    assert doc["split.csv"]["inputs"] == {"clinical.csv": file_sha256(root / "clinical.csv")}
    models = read_provenance(run / "models")
    files = sorted(p.relative_to(run / "models").as_posix() for p in (run / "models").rglob("*")
                   if p.is_file() and p.name != "provenance.json")
    assert sorted(models) == files and "parameters.json" in files
    for name, record in models.items():
        assert record["sha256"] == file_sha256(run / "models" / name), name
        assert record["inputs"] == entry["inputs"] and record["settings"] == entry["settings"]
    # the fitted parameters carry no provenance (their bytes depend on the fit alone)
    params = json.loads((run / "models/parameters.json").read_text())
    assert not {"inputs", "sha256", "versions", "git_sha"} & set(params)


def test_a_failure_while_writing_leaves_the_earlier_models_and_predictions(trained, tmp_path, monkeypatch):
    import dlr.modeling.train as train

    root, run, _ = trained
    run2 = tmp_path / "run"
    run2.mkdir()
    shutil.copy(run / "split.csv", run2 / "split.csv")
    train_study(load_study(root), run2, arms=("clinical",), oof=False)

    def snapshot():
        return {p.relative_to(run2).as_posix(): p.read_bytes() for p in sorted(run2.rglob("*")) if p.is_file()}

    # an out-of-fold file of an earlier run (with its provenance entry): a failed --no-oof run keeps
    # it with its predictions.csv, a successful one removes both file and entry
    stale = pd.read_csv(run2 / "predictions.csv", dtype={"patient_id": str}).query("cohort == 'training'")
    stale.to_csv(run2 / "predictions_oof.csv", index=False)
    record_provenance(run2, ["predictions_oof.csv"], {"stale": True})
    before = snapshot()
    assert {"predictions.csv", "provenance.json", "models/parameters.json", "models/provenance.json",
            "model/manifest.json", "model/models.json"} <= set(before)
    real = train._write_models

    def fail_after_writing(mdir, *args):
        real(mdir, *args)  # every file is written in the staging folder, then the write fails
        raise RuntimeError("disk full")

    monkeypatch.setattr(train, "_write_models", fail_after_writing)
    with pytest.raises(RuntimeError, match="disk full"):
        train_study(load_study(root), run2, arms=("clinical",), oof=False, alpha=0.2)
    assert snapshot() == before  # same files, same bytes, no temporary left (rglob sees hidden ones)
    assert sorted(p.name for p in run2.iterdir()) == ["model", "models", "predictions.csv", "predictions_oof.csv",
                                                      "provenance.json", "split.csv"]  # the bundle kept too
    monkeypatch.undo()
    train_study(load_study(root), run2, arms=("clinical",), oof=False, alpha=0.2)
    assert not (run2 / "predictions_oof.csv").exists() and "predictions_oof.csv" not in read_provenance(run2)
    after = read_provenance(run2)["predictions.csv"]
    assert after["settings"]["alpha"] == 0.2 and after["sha256"] == file_sha256(run2 / "predictions.csv")
    assert "features/radiomics.csv" not in after["inputs"]  # the clinical arm alone reads no features


def test_train_cli_prints_validation_auc_beside_the_true_risk_and_refuses_a_changed_split(trained, tmp_path):
    root, run, _ = trained
    res = run_dlr("train", root, "--out", run, "--no-oof", "--jobs", "1")
    assert res.returncode == 0, res.stderr
    header = res.stdout.splitlines()[0].split()
    assert header == ["AUC", "training", "apparent", "CV", "nested", "OOF", "validation"], header
    assert "true risk (best)" in res.stdout and "RCR" in res.stdout
    assert "chosen by development CV AUC, which is optimistic" in res.stderr  # --no-oof: no nested AUCs
    # a study whose cohorts changed no longer fits the run's split file
    other = tmp_path / "S"
    shutil.copytree(root, other, symlinks=True)
    clinical = pd.read_csv(other / "clinical.csv", dtype={"patient_id": str})
    clinical.loc[0, "cohort"] = "validation" if clinical.loc[0, "cohort"] == "training" else "training"
    clinical.to_csv(other / "clinical.csv", index=False)
    (tmp_path / "run2/features").mkdir(parents=True)
    shutil.copy(run / "split.csv", tmp_path / "run2/split.csv")
    shutil.copy(run / "features/radiomics.csv", tmp_path / "run2/features/radiomics.csv")
    res = run_dlr("train", other, "--out", tmp_path / "run2", "--no-oof")
    assert res.returncode == 2 and "HCC001" in res.stderr and "split" in res.stderr and "Traceback" not in res.stderr
    res = run_dlr("train", root, "--out", tmp_path / "run3", "--arms", "clinical,quantum")
    assert res.returncode == 2 and "quantum" in res.stderr and "clinical, radiomics, deep" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "run3" / "predictions.csv").exists()


@pytest.mark.slow
def test_out_of_fold_predictions_cover_each_development_patient_once(trained, tmp_path):
    root, run, _ = trained
    run2 = tmp_path / "run"
    shutil.copytree(run / "features", run2 / "features")
    train_study(load_study(root), run2, jobs=2)
    oof = pd.read_csv(run2 / "models/oof_predictions.csv", dtype={"patient_id": str})
    split = pd.read_csv(run2 / "split.csv", dtype={"patient_id": str}).set_index("patient_id")
    dev = split.index[split["cohort"] == "training"]
    for model, group in oof.groupby("model"):
        assert not group["patient_id"].duplicated().any() and set(group["patient_id"]) <= set(dev), model
        assert (group["fold"].to_numpy() == split.loc[group["patient_id"], "fold"].to_numpy()).all()
        assert sorted(group["patient_id"]) == sorted(dev), model  # every model, every development patient
    # a fold whose own CR selection finds no factor refits the development cohort's factors on
    # its training part instead, and says so in models/oof_log.csv
    assert set(oof["model"]) == set(MODELS[:7])
    log = pd.read_csv(run2 / "models/oof_log.csv")
    assert list(log.columns) == ["fold", "note"]
    assert all("refitted on this fold's training patients" in n for n in log["note"] if n.startswith("CR:"))
    models = pd.read_csv(run2 / "models/models.csv").set_index("model")
    for model, group in oof.groupby("model"):  # the nested out-of-fold AUC of models.csv is that of these scores
        assert models.loc[model, "oof_auc"] == pytest.approx(
            rank_auc(group["y_true"].to_numpy(), group["y_score"].to_numpy()), rel=1e-9)
        assert models.loc[model, "threshold_source"] == "out-of-fold"
    best = models.loc[[f"Radiomics-{c}" for c in ("LR", "SVM", "KNN", "XGBoost", "MLP")], "oof_auc"].idxmax()
    assert models.loc[best, "best_classifier"] and models.loc["RCR", "classifier"] == best.split("-", 1)[1]
    # RUN/predictions_oof.csv (contract 4.1): the same scores in predictions.csv's columns, the
    # development cohort and scanner of each patient, recorded beside predictions.csv
    contract = pd.read_csv(run2 / "predictions_oof.csv", dtype={"patient_id": str})
    pred = pd.read_csv(run2 / "predictions.csv", dtype={"patient_id": str})
    assert list(contract.columns) == list(pred.columns) == ["patient_id", "cohort", "model", "y_true", "y_score",
                                                            "scanner", "months_to_recurrence", "recurrence"]
    assert (contract["cohort"] == "training").all() and len(contract) == len(oof)
    assert contract.groupby("model").size().to_dict() == oof.groupby("model").size().to_dict()
    assert not contract.duplicated(["patient_id", "model"]).any()
    merged = contract.merge(oof, on=["patient_id", "model"], suffixes=("", "_models"))
    assert len(merged) == len(oof) and (merged["y_score"] == merged["y_score_models"]).all()  # %.17g both
    assert (merged["y_true"] == merged["y_true_models"]).all()
    scanner = pred.drop_duplicates("patient_id").set_index("patient_id")["scanner"]
    assert (contract["scanner"].to_numpy() == scanner.loc[contract["patient_id"]].to_numpy()).all()
    assert read_provenance(run2)["predictions_oof.csv"]["sha256"] == file_sha256(run2 / "predictions_oof.csv")
    res = run_dlr("analyze", run2 / "predictions.csv", "--oof", run2 / "predictions_oof.csv", "--out",
                  run2 / "results", "--strata", "scanner", "--bootstrap", "50", "--no-figures")
    assert res.returncode == 0, res.stderr
    perf = pd.read_csv(run2 / "results" / "performance.csv")
    assert set(perf.loc[perf["cohort"] == "training (out-of-fold)", "model"]) == set(oof["model"])
    assert set(perf.loc[perf["threshold_source"] == "out-of-fold", "model"]) == set(oof["model"])
    # the leakage probe with out-of-fold refits: flipping every validation outcome leaves every
    # fitted value and every development prediction, apparent and out-of-fold, byte-identical
    flipped = tmp_path / "flipped"
    _flip_validation_outcomes(root, flipped)
    run3 = tmp_path / "run3"
    shutil.copytree(run / "features", run3 / "features")
    train_study(load_study(flipped), run3, jobs=2)
    for name in ("models/parameters.json", "predictions_oof.csv", "models/oof_predictions.csv", "models/models.csv"):
        assert (run3 / name).read_bytes() == (run2 / name).read_bytes(), name
    again = pd.read_csv(run3 / "predictions.csv", dtype={"patient_id": str})
    dev_rows = pred["cohort"] == "training"
    pd.testing.assert_frame_equal(again[dev_rows].reset_index(drop=True), pred[dev_rows].reset_index(drop=True))
    assert (again.loc[~dev_rows, "y_true"].to_numpy() != pred.loc[~dev_rows, "y_true"].to_numpy()).all()


def test_out_of_fold_refits_on_a_dask_cluster_equal_the_local_ones(tmp_path):
    """`--scheduler`: the folds' refits sent to a Dask cluster give the same out-of-fold file and
    fold log, to the byte, as the refits in local processes (the clinical-only real study: CR
    refitted per fold, one fold falling back to the development cohort's factors)."""
    distributed = pytest.importorskip("distributed")
    from real_clinical_study import write_study

    study = load_study(write_study(tmp_path / "study"), check_images=False)
    train_study(study, tmp_path / "local", arms=["clinical"], jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        train_study(study, tmp_path / "dask", arms=["clinical"], jobs=1, scheduler=cluster.scheduler_address)
    for rel in ("predictions_oof.csv", "models/oof_log.csv", "predictions.csv"):
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "dask" / rel).read_bytes(), rel
    oof = pd.read_csv(tmp_path / "dask" / "predictions_oof.csv")
    assert set(oof["model"]) == {"CR"} and oof["patient_id"].is_unique
