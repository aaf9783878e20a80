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
    before = pd.read_csv(run / "models" / "models.csv")
    after = pd.read_csv(copy / "models" / "models.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "DLRCR" in done.stdout and "nested OOF" in done.stdout


def test_train_with_the_deep_arm_alone_needs_an_earlier_train(deep_run, tmp_path):
    study, _, _ = deep_run
    done = run_dlr("train", study, "--out", tmp_path / "empty", "--arms", "deep", "--device", "cpu")
    assert done.returncode == 2
    assert "--arms deep" in done.stderr and "Traceback" not in done.stderr
