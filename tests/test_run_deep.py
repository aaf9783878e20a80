"""`dlr run` with the deep-learning arm: a small synthetic study from images to the report, the
deep models in predictions.csv (and the best ResNet and DLRCR out of fold), RUN/models/deep/,
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
#: a budget of seconds: tiny slices, few epochs, two networks
TINY = {"image_size": 16, "epochs": 3, "patience": 3, "fusion_epochs": 2, "batch_size": 32,
        "networks": ["ResNet10", "ResNet18"]}


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    from modeling.synthetic import synthesize_study

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
    assert {best, "DLRCR"} <= set(oof["model"])
    dev = pd.read_csv(run / "split.csv").query("cohort == 'training'")
    for model in (best, "DLRCR"):
        assert sorted(oof.loc[oof["model"] == model, "patient_id"]) == sorted(dev["patient_id"]), model
    table = pd.read_csv(run / "models" / "models.csv").set_index("model")
    assert table.loc["DLRCR", "threshold_source"] == "out-of-fold"
    other = "DL-ResNet18" if best == "DL-ResNet10" else "DL-ResNet10"
    assert table.loc[other, "threshold_source"] == "apparent"  # as `dlr analyze` chooses it (contract 4.1)
    nets = pd.read_csv(run / "models" / "deep" / "networks.csv")
    assert list(nets["network"]) == ["ResNet10", "ResNet18", "DLRCR"]
    log = pd.read_csv(run / "models" / "deep" / "training_log.csv")
    assert set(log["network"]) == {"DL-ResNet10", "DL-ResNet18", "DLRCR"}
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
    """`dlr train --arms deep` on the run folder: DLRCR's tabular inputs come from RUN/models/fusion/
    (left by the clinical and radiomics arms), the other models' rows and files are kept, and with
    the same seed every prediction comes back byte-identical."""
    import shutil

    study, run, _ = deep_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert (copy / "models" / "fusion" / "development.csv").is_file()
    assert len(list((copy / "models" / "fusion").glob("fold_*.csv"))) == 5
    done = run_dlr("train", study, "--out", copy, "--arms", "deep", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no DLRCR inputs" not in done.stderr
    for name in ("predictions.csv", "predictions_oof.csv"):
        assert (copy / name).read_bytes() == (run / name).read_bytes(), name
    for name in ("cr_selection.csv", "radiomics_selected.csv", "tuning.csv", "fusion/development.csv"):
        assert (copy / "models" / name).read_bytes() == (run / "models" / name).read_bytes(), name
    before = pd.read_csv(run / "models" / "models.csv")
    after = pd.read_csv(copy / "models" / "models.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "DLRCR" in done.stdout and "inner split" in done.stdout


def test_train_with_the_deep_arm_alone_needs_an_earlier_train(deep_run, tmp_path):
    study, _, _ = deep_run
    done = run_dlr("train", study, "--out", tmp_path / "empty", "--arms", "deep", "--device", "cpu")
    assert done.returncode == 2
    assert "--arms deep" in done.stderr and "Traceback" not in done.stderr
