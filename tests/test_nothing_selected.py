"""A valid study on which CR selects no factor and the radiomics selection keeps no feature runs
to a report that says so, whatever the arms (issue 21.1: `dlr run --arms clinical` ended with
"internal error: KeyError: 'best_classifier'"; a selection that kept nothing stopped the run)."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO
from dlr.cli import main

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"
TINY = {"image_size": 16, "fov_mm": 48.0, "steps": 12, "batch_size": 16, "width": 4, "networks": ["ResNet10"]}
RADIOMICS = ["Radiomics-" + n for n in ("LR", "SVM", "KNN", "XGBoost", "MLP")]


@pytest.fixture(scope="module")
def flat_study(tmp_path_factory):
    """40 synthetic patients (seed 3: no CR factor reaches P < 0.05) whose images and masks are
    all the first patient's: every radiomics feature is the same for everyone."""
    from dlr.modeling.synthetic import synthesize_study

    root = tmp_path_factory.mktemp("flat") / "S"
    synthesize_study(root, n=40, seed=3)
    ids = sorted(p.name for p in (root / "images").iterdir())
    for sub in ("images", "masks"):
        for pid in ids[1:]:
            for f in (root / sub / ids[0]).iterdir():
                shutil.copyfile(f, root / sub / pid / f.name)
    shutil.rmtree(root / "masks_reader2")
    config = yaml.safe_load((root / "study.yaml").read_text())
    config.update({"preprocessing": {"spacing": [3.0, 3.0, 5.0]}, "radiomics_params": str(LIGHT), "deep": TINY})
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.mark.parametrize("arms", ["clinical", "clinical,radiomics", "clinical,deep", "radiomics,deep",
                                  "clinical,radiomics,deep"])
def test_every_arm_combination_ends_in_a_report_that_says_what_was_not_fitted(flat_study, tmp_path, capsys, arms):
    run = tmp_path / "run"
    code = main(["run", str(flat_study), "--out", str(run), "--arms", arms, "--bootstrap", "50", "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert "internal error" not in err and "Traceback" not in err
    models = set(pd.read_csv(run / "predictions.csv")["model"])
    left_out = pd.read_csv(run / "models" / "left_out.csv")
    said = " ".join(left_out["models"])
    assert not ({"CR", "RCR", "DLRCR", *RADIOMICS} & models)
    if "clinical" in arms:
        assert "CR" in said and {"BCLC", "CNLC"} <= models
    if "radiomics" in arms:
        assert all(m in said for m in RADIOMICS) and "left no feature" in " ".join(left_out["reason"])
    if "deep" in arms:
        assert "DL-ResNet10" in models and "DLRCR" in said
    html = " ".join((run / "report" / "index.html").read_text().split())  # as read, whatever pandoc's line wrapping
    assert "Not fitted:" in html and "left out of every table and figure" in html


def test_radiomics_alone_with_nothing_selected_is_bad_input_naming_the_step_and_the_fix(flat_study, tmp_path,
                                                                                          capsys):
    """No model is left to fit (no comparator without the clinical arm): exit 2, not a report of nothing."""
    code = main(["run", str(flat_study), "--out", str(tmp_path / "run"), "--arms", "radiomics", "--bootstrap", "50",
                 "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "left no feature" in err and "add the clinical arm" in err and "Traceback" not in err
