"""`dlr run` with the deep-learning arm: a small synthetic study from images to the report, the
deep models in predictions.csv (every network and DLRCR out of fold), RUN/models/deep/,
the report's Table 4 rows, training curves and Score-CAM figure; a second run does no work."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_dlr

pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("ants")
pytest.importorskip("radiomics")

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"
#: a budget of seconds: tiny crops (16 px of the study's 3 mm voxels), few steps, narrow networks
TINY = {"image_size": 16, "fov_mm": 48.0, "steps": 12, "batch_size": 16, "width": 4,
        "networks": ["ResNet10", "ResNet18"]}


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    from dlr.modeling.synthetic import synthesize_study

    base = tmp_path_factory.mktemp("deep_run")
    study = base / "study"
    synthesize_study(study, n=100)  # at 100 patients the CR selection finds a factor: CR, RCR and DLRCR exist
    config = yaml.safe_load((study / "study.yaml").read_text())
    config.update({"preprocessing": {"spacing": [3.0, 3.0, 5.0]}, "radiomics_params": str(LIGHT), "deep": TINY})
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = base / "run"
    done = run_dlr("run", study, "--out", run, "--jobs", "2", "--bootstrap", "50", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    return study, run, done


def test_the_deep_models_reach_predictions_and_out_of_fold_files(deep_run):
    _, run, _ = deep_run
    models = set(pd.read_csv(run / "predictions.csv")["model"])
    assert {"DL-ResNet10", "DL-ResNet18", "DLRCR", "RCR", "CR"} <= models and "DL-ResNet34" not in models
    oof = pd.read_csv(run / "predictions_oof.csv")
    settings = json.loads((run / "models" / "deep" / "settings.json").read_text())
    best = f"DL-{settings['best_network']}"
    deep = ["DL-ResNet10", "DL-ResNet18", "DLRCR"]
    assert set(deep) <= set(oof["model"])
    dev = pd.read_csv(run / "split.csv").query("cohort == 'training'")
    for model in deep:   # every deep model out of fold for every development patient
        assert sorted(oof.loc[oof["model"] == model, "patient_id"]) == sorted(dev["patient_id"]), model
    table = pd.read_csv(run / "models" / "models.csv").set_index("model")
    assert (table.loc[deep, "threshold_source"] == "out-of-fold").all()
    nets = pd.read_csv(run / "models" / "deep" / "networks.csv")
    assert list(nets["network"]) == deep
    # the best network: the highest out-of-fold AUC of the networks
    assert best == nets.iloc[:2].sort_values("oof_auc", ascending=False, kind="stable")["network"].iloc[0]
    log = pd.read_csv(run / "models" / "deep" / "training_log.csv")
    assert set(log["network"]) == {"DL-ResNet10", "DL-ResNet18"}
    assert set(log["fit"]) == {"development", *(f"fold {k}" for k in range(1, 6))}
    assert (run / "models" / "deep" / "scorecam.png").stat().st_size > 10_000
    assert settings["image_size"] == 16 and settings["device"] == "cpu"


def test_the_report_shows_table_4_the_training_curves_and_score_cam(deep_run):
    _, run, _ = deep_run
    html = (run / "report" / "index.html").read_text()
    for needle in ("DL-ResNet10", "DLRCR", "Score-CAM", "Training of the deep-learning networks",
                   "QuickRigid", "DL-ResNet34"):
        assert needle in html, needle
    assert "The deep-learning arm (DL-ResNet10/18/34 and the DLRCR fusion) was not run" not in html
    assert (run / "report" / "figures" / "scorecam.png").is_file()
    assert (run / "report" / "figures" / "dl_training.svg").is_file()


def test_a_second_run_with_the_deep_arm_does_no_work(deep_run):
    study, run, _ = deep_run
    done = run_dlr("run", study, "--out", run, "--jobs", "2", "--bootstrap", "50", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("unchanged since the last run, skipped") == 8


def test_train_with_the_deep_arm_alone_reuses_the_other_arms_and_gives_the_same_files(deep_run, tmp_path):
    """`dlr train --arms deep` on the run folder: DLRCR fuses with RCR's scores in the earlier
    predictions.csv and predictions_oof.csv, the other models' rows and files are kept, and with
    the same seed every prediction comes back byte-identical (though this train runs its fits in
    one process and `dlr run --jobs 2` ran them in two)."""
    import shutil

    study, run, _ = deep_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    done = run_dlr("train", study, "--out", copy, "--arms", "deep", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DLRCR is left out" not in done.stderr
    for name in ("predictions.csv", "predictions_oof.csv"):
        assert (copy / name).read_bytes() == (run / name).read_bytes(), name
    for name in ("cr_selection.csv", "radiomics_selected.csv", "tuning.csv", "deep/deep_features.csv"):
        assert (copy / "models" / name).read_bytes() == (run / "models" / name).read_bytes(), name
    # the model bundle with its deep members replaced: the same networks, so the same bytes
    members = sorted(str(p.relative_to(run / "model")) for p in (run / "model").rglob("*") if p.is_file())
    assert any(m.startswith("networks/") for m in members)
    for name in members:
        assert (copy / "model" / name).read_bytes() == (run / "model" / name).read_bytes(), name
    before = pd.read_csv(run / "models" / "models.csv")
    after = pd.read_csv(copy / "models" / "models.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "DLRCR" in done.stdout and "nested OOF" in done.stdout


def test_train_with_the_deep_arm_alone_needs_an_earlier_train(deep_run, tmp_path):
    study, _, _ = deep_run
    done = run_dlr("train", study, "--out", tmp_path / "empty", "--arms", "deep", "--device", "cpu")
    assert done.returncode == 2
    assert "--arms deep" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------------------------
# the model bundle of a run with every arm (contract section 8)


def test_the_bundle_holds_every_arm_in_declared_formats_and_no_pickle(deep_run):
    from dlr.core.bundle import read_bundle
    from test_bundle import pickle_like

    _, run, _ = deep_run
    bundle = read_bundle(run / "model")
    names = set(bundle.members)
    assert {"xgboost/Radiomics-XGBoost.json", "networks/ResNet10.safetensors", "networks/ResNet18.safetensors",
            "radiomics/params.yaml", "radiomics/preprocessing.json", "development/predictions_oof.csv"} <= names
    for name, data in bundle.members.items():
        assert not pickle_like(data), name
    models = bundle.json("models.json")
    assert set(models["thresholds"]) == set(pd.read_csv(run / "predictions.csv")["model"])
    assert models["deep"]["fusion"]["partner"] == "RCR"


def test_predict_on_the_same_study_scores_every_model_as_the_run_did(deep_run, tmp_path):
    """The frozen chain (median fill, selection, scalers, the five classifiers, RCR, the networks
    on slices cut again with the bundle's settings, DLRCR) gives the run's scores."""
    import numpy as np

    study, run, _ = deep_run
    out = tmp_path / "predict"
    done = run_dlr("predict", run / "model", study, "--out", out, "--jobs", "2", "--bootstrap", "50")
    assert done.returncode == 0, done.stderr[-3000:]
    exact = dict(dtype={"patient_id": str}, float_precision="round_trip")
    before = pd.read_csv(run / "predictions.csv", **exact)
    after = pd.read_csv(out / "predictions.csv", **exact)
    assert list(before["model"].unique()) == list(after["model"].unique())
    merged = before.merge(after, on=["patient_id", "model"], suffixes=("", "_frozen"), validate="one_to_one")
    assert len(merged) == len(before)
    gap = (merged["y_score"] - merged["y_score_frozen"]).abs().groupby(merged["model"]).max()
    assert (gap <= 1e-12).all(), gap[gap > 1e-12]
    linear = merged["model"].isin(["CR", "Radiomics-LR"])
    assert (merged.loc[linear, "y_score"] == merged.loc[linear, "y_score_frozen"]).all()  # bit for bit
    ran = pd.read_csv(run / "results" / "performance.csv", float_precision="round_trip")
    now = pd.read_csv(out / "results" / "performance.csv", float_precision="round_trip")
    a = ran[ran["cohort"] == "validation"].drop(columns="threshold_source").reset_index(drop=True)
    b = now[now["cohort"] == "validation"].drop(columns="threshold_source").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-12)
    assert np.all(now["threshold_source"] == "bundle")


def test_predict_refuses_a_study_without_a_phase_the_bundle_reads(deep_run, tmp_path):
    import shutil

    study, run, _ = deep_run
    other = tmp_path / "study"
    shutil.copytree(study, other)
    config = yaml.safe_load((other / "study.yaml").read_text())
    config["phases"] = [p for p in config["phases"] if p != "DP"]
    (other / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = run_dlr("predict", run / "model", other, "--out", tmp_path / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "phase(s) DP missing" in done.stderr
    assert not (tmp_path / "out" / "predictions.csv").exists()
