"""Inputs that used to pass silently are loud: each test builds the bad input and checks the exit
status 2 (or the problem, or the failed case) and that the message names the patient, the file and
the fix (issue 10, scope item 5).

1. NaN or infinite voxels (SimpleITK reads them as 0);  2. masks with labels other than 0/1;
3. a clinical CSV separated by ';' or tabs;  4. several errors in study.yaml, each under its key;
5. RUN/split.csv drawn with another seed or number of folds;  6. a development cohort too small
for the folds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from dlr.core.errors import InputError
from dlr.core.output import read_provenance
from dlr.cli import main
from dlr.modeling.study import STAGE_CHECKS, load_study, validate_study
from test_study import write_study

sitk = pytest.importorskip("SimpleITK")

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("loud") / "study")


@pytest.fixture
def study(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "study"))


def _yaml(root: Path, **changes) -> None:
    data = yaml.safe_load((root / "study.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (root / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _validate(root: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["validate", str(root)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _with_nonfinite(path: Path, *, nan: int = 3, inf: int = 1) -> None:
    """Rewrite an image as float32 with ``nan`` NaN and ``inf`` infinite voxels (same grid)."""
    image = sitk.ReadImage(str(path))
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    flat = values.reshape(-1)
    flat[:nan] = np.nan
    flat[nan:nan + inf] = np.inf
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path), True)


# --------------------------------------------------------------------------------------------
# 1. NaN or infinite voxels


def test_nifti_reader_sees_the_voxels_simpleitk_zeroes(tmp_path):
    from dlr.modeling.nifti import nonfinite_voxels

    values = np.full((4, 5, 6), 7, np.float32)
    values[0, 0, :3], values[1, 1, 1] = np.nan, -np.inf
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / "x.nii.gz"))
    # the reason for reading the file ourselves: SimpleITK gives 0 where the file holds NaN
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nii.gz")))).all()
    found = nonfinite_voxels(tmp_path / "x.nii.gz")
    assert (found.nan, found.infinite, found.total) == (3, 1, 120)
    sitk.WriteImage(sitk.GetImageFromArray(values.astype(np.float64)), str(tmp_path / "x8.nii"))
    assert nonfinite_voxels(tmp_path / "x8.nii").count == 4
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16)), str(tmp_path / "i.nii.gz"))
    assert nonfinite_voxels(tmp_path / "i.nii.gz") is None  # integers cannot be NaN: header only
    (tmp_path / "bad.nii.gz").write_text("not an image")
    assert nonfinite_voxels(tmp_path / "bad.nii.gz") is None


def test_validate_reports_nonfinite_voxels_with_patient_file_count_and_fix(study, capsys):
    _with_nonfinite(study / "images/P002/AP.nii.gz", nan=3, inf=1)
    problems = [p for p in validate_study(study) if p.check == "image-not-finite"]
    assert [(p.file, p.patient_id) for p in problems] == [("images/P002/AP.nii.gz", "P002")]
    assert "4 of 120 voxel(s) are not finite (3 NaN, 1 infinite)" in problems[0].message
    assert "replace them" in problems[0].fix
    code, err = _validate(study, capsys)
    assert code == 2
    for needle in ("image-not-finite", "patient P002", "images/P002/AP.nii.gz", "3 NaN, 1 infinite", "Fix: replace"):
        assert needle in err, (needle, err)
    # a stage check: the study still loads, and extraction fails the case (below)
    assert "image-not-finite" in STAGE_CHECKS
    assert load_study(study).patient_ids[1] == "P002"


def test_preprocessing_refuses_nonfinite_voxels_from_a_file_or_in_memory(tmp_path):
    from dlr.modeling.radiomics.preprocess import PreprocessError, preprocess_phase

    values = np.random.default_rng(0).normal(100, 10, (12, 30, 30)).astype(np.float32)
    mask = np.zeros(values.shape, np.uint8)
    mask[4:8, 10:20, 10:20] = 1
    values[0, 0, :5] = np.nan
    image = sitk.GetImageFromArray(values)
    with pytest.raises(PreprocessError, match=r"5 of 10800 voxel\(s\) are not finite \(5 NaN, 0 infinite\)"):
        preprocess_phase(image, sitk.GetImageFromArray(mask))
    sitk.WriteImage(image, str(tmp_path / "AP.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / "mask.nii.gz"))
    with pytest.raises(PreprocessError, match=r"5 NaN, 0 infinite\) in the image .*AP.nii.gz; replace them"):
        preprocess_phase(tmp_path / "AP.nii.gz", tmp_path / "mask.nii.gz")


@pytest.fixture(scope="module")
def one_phase_study(tmp_path_factory) -> Path:
    """A synthetic study of 10 patients, one phase, native 3 x 3 x 5 mm grid (cheap to extract)."""
    pytest.importorskip("radiomics")
    from dlr.modeling.synthetic import synthesize_study

    root = tmp_path_factory.mktemp("synthetic") / "S"
    synthesize_study(root, n=10, seed=7)
    _yaml(root, phases=["AP"], preprocessing={"spacing": [3.0, 3.0, 5.0]})
    for phase in ("PVP", "DP"):
        for path in root.glob(f"*/*/{phase}.nii.gz"):
            path.unlink()
    assert validate_study(root) == []
    return root


def test_extraction_fails_the_nonfinite_case_naming_its_voxels(one_phase_study, tmp_path):
    from dlr.modeling.radiomics.extraction import extract_study

    root = Path(shutil.copytree(one_phase_study, tmp_path / "S"))
    _with_nonfinite(root / "images/HCC003/AP.nii.gz", nan=7, inf=2)
    study = load_study(root)  # a stage check: extraction deals with it
    with pytest.warns(UserWarning, match="HCC003 reader 1 AP: 9 of .* voxel.* are not finite"):
        summary = extract_study(study, tmp_path / "run", params_path=LIGHT)
    failed = summary.failures
    assert set(failed["patient_id"]) == {"HCC003"} and set(failed["phase"]) == {"AP"}
    reason = failed["reason"].iloc[0]
    assert "(7 NaN, 2 infinite)" in reason and "images/HCC003/AP.nii.gz" in reason and "replace them" in reason
    assert summary.n_failed == len(failed) and summary.n_cases - summary.n_failed >= 9


# --------------------------------------------------------------------------------------------
# 2. mask labels


def _relabel(path: Path, mapping: dict, *, extra_label: int | None = None) -> None:
    """Map the mask's labels (``{old: new}``); ``extra_label`` paints a block away from the tumour."""
    mask = sitk.ReadImage(str(path))
    values = sitk.GetArrayFromImage(mask)
    out = values.copy()
    for old, new in mapping.items():
        out[values == old] = new
    if extra_label is not None:
        out[0, 0, 0] = extra_label
    new = sitk.GetImageFromArray(out)
    new.CopyInformation(mask)
    sitk.WriteImage(new, str(path), True)


def test_validate_reports_a_mask_with_other_labels_unless_mask_label_is_given(study, capsys):
    _relabel(study / "masks/P003/PVP.nii.gz", {}, extra_label=2)
    problems = [p for p in validate_study(study) if p.check == "mask-other-labels"]
    assert [(p.file, p.patient_id) for p in problems] == [("masks/P003/PVP.nii.gz", "P003")]
    assert "label(s) 2 (1 voxel) besides 0 and the tumour label 1" in problems[0].message
    assert "mask_label" in problems[0].fix and "relabel" in problems[0].fix
    code, err = _validate(study, capsys)
    assert code == 2
    for needle in ("mask-other-labels", "patient P003", "masks/P003/PVP.nii.gz", "set `mask_label: N`"):
        assert needle in err, (needle, err)
    # naming the tumour's label (even 1) says the other labels are intended
    _yaml(study, mask_label=1)
    assert validate_study(study) == []
    # a mask_label that the masks do not hold: every mask is reported
    _yaml(study, mask_label=2)
    missing = [p for p in validate_study(study) if p.check == "mask-no-label-1"]
    assert len(missing) == 5 * 2 + 1 - 1  # every mask but P003's PVP, which holds a voxel of 2
    assert "no voxel has label 2, study.yaml's mask_label" in missing[0].message


def test_preprocessing_uses_mask_label_and_hands_pyradiomics_a_binary_mask():
    from dlr.modeling.radiomics.preprocess import preprocess_phase

    values = np.random.default_rng(1).normal(100, 10, (12, 30, 30)).astype(np.float32)
    tumour = np.zeros(values.shape, np.uint8)
    tumour[4:8, 10:20, 10:20] = 1
    other = tumour * 3
    other[1:3, 2:6, 2:6] = 1  # another structure labelled 1, the tumour labelled 3
    image = sitk.GetImageFromArray(values)
    plain = preprocess_phase(image, sitk.GetImageFromArray(tumour))
    labelled = preprocess_phase(image, sitk.GetImageFromArray(other), label=3)
    assert np.array_equal(sitk.GetArrayFromImage(labelled.mask), sitk.GetArrayFromImage(plain.mask))
    assert set(np.unique(sitk.GetArrayFromImage(labelled.mask))) == {0, 1}
    assert labelled.check == plain.check


def test_extraction_honours_mask_label(one_phase_study, tmp_path):
    from dlr.modeling.radiomics.extraction import extract_study

    relabelled = Path(shutil.copytree(one_phase_study, tmp_path / "S2"))
    for path in sorted(relabelled.glob("masks*/*/AP.nii.gz")):
        _relabel(path, {1: 4}, extra_label=1)  # tumour 4, a stray voxel of label 1
    assert {p.check for p in validate_study(relabelled)} == {"mask-other-labels"}
    _yaml(relabelled, mask_label=4)
    assert validate_study(relabelled) == []
    a = extract_study(load_study(one_phase_study), tmp_path / "a", params_path=LIGHT)
    b = extract_study(load_study(relabelled), tmp_path / "b", params_path=LIGHT)
    assert a.n_failed == 0 and b.n_failed == 0
    fa = pd.read_csv(tmp_path / "a/features/radiomics.csv", dtype={"patient_id": str})
    fb = pd.read_csv(tmp_path / "b/features/radiomics.csv", dtype={"patient_id": str})
    pd.testing.assert_frame_equal(fa, fb)
    assert read_provenance(tmp_path / "b/features")["radiomics.csv"]["settings"]["mask_label"] == 4
    assert "mask_label" not in read_provenance(tmp_path / "a/features")["radiomics.csv"]["settings"]


def test_a_parameter_file_naming_another_label_is_refused(one_phase_study, tmp_path):
    from dlr.modeling.radiomics.extraction import ParamsError, extract_study

    params = yaml.safe_load(LIGHT.read_text())
    params["setting"]["label"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"params.yaml: setting label is 2.*mask_label: 2"):
        extract_study(load_study(one_phase_study), tmp_path / "run", params_path=tmp_path / "params.yaml")


# --------------------------------------------------------------------------------------------
# 3. another separator


@pytest.mark.parametrize("sep,named", [(";", "';' (semicolons)"), ("\t", "tabs")])
def test_a_clinical_csv_with_another_separator_is_one_problem(study, capsys, sep, named):
    frame = pd.read_csv(study / "clinical.csv")
    frame.to_csv(study / "clinical.csv", index=False, sep=sep, decimal="," if sep == ";" else ".")
    problems = validate_study(study)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.check, problem.file) == ("clinical-csv", "clinical.csv")
    assert f"separated by {named}" in problem.message and "dlr reads comma-separated CSV" in problem.message
    assert "re-export it as comma-separated" in problem.fix
    code, err = _validate(study, capsys)
    assert code == 2 and "clinical.csv" in err and named in err
    # the same file given to table1 (core.tables.read_table)
    capsys.readouterr()
    code = main(["table1", str(study / "clinical.csv"), "--outcome", "early_recurrence", "--out",
                 str(study.parent / "t1")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "clinical.csv" in err and f"separated by {named}" in err and "re-export it as comma-separated" in err
    assert not (study.parent / "t1").exists()


def test_read_table_refuses_a_semicolon_file(tmp_path):
    from dlr.core.tables import read_table

    (tmp_path / "t.csv").write_text("patient_id;cohort;y\nP1;training;1\n")
    with pytest.raises(InputError, match=r"t.csv: the file seems to be separated by ';' \(semicolons\)"):
        read_table(tmp_path / "t.csv")
    (tmp_path / "one.csv").write_text("patient_id\nP1\n")  # a genuine one-column CSV is fine
    assert list(read_table(tmp_path / "one.csv").columns) == ["patient_id"]


# --------------------------------------------------------------------------------------------
# 4. study.yaml with several errors


def test_every_study_yaml_error_is_reported_at_once_under_its_key(study, capsys):
    from dlr.modeling.config import StudyConfigError, load_study_config

    _yaml(study, profile="huge", dev_cohort="train", n_folds=1, colour="red")
    keys = [p.message.split(":")[0] for p in validate_study(study)]
    assert keys == ["key dev_cohort", "key n_folds", "key profile", "key colour"]
    dev = next(p for p in validate_study(study) if p.message.startswith("key dev_cohort"))
    assert dev.message.startswith("key dev_cohort: 'train' is not one of cohorts ['training', 'validation']")
    assert dev.fix == "correct or remove the key dev_cohort"
    code, err = _validate(study, capsys)
    assert code == 2 and "(top level)" not in err and err.count("[study-yaml]") == 4
    with pytest.raises(StudyConfigError) as exc:
        load_study_config(study / "study.yaml")
    text = str(exc.value)
    assert "4 problem(s)" in text and "(top level)" not in text
    assert "\n  dev_cohort: 'train' is not one of cohorts ['training', 'validation']" in text
    # the command line reading study.yaml with --study: exit 2, every key
    capsys.readouterr()
    code = main(["table1", str(study / "clinical.csv"), "--outcome", "early_recurrence", "--study",
                 str(study / "study.yaml"), "--out", str(study.parent / "t1")])
    err = capsys.readouterr().err
    assert code == 2 and all(k in err for k in ("dev_cohort:", "n_folds:", "profile:", "colour:"))


def test_a_cross_key_check_is_skipped_when_a_key_it_reads_is_invalid():
    from dlr.modeling.config import StudyConfigError, parse_study_config

    with pytest.raises(StudyConfigError) as exc:
        parse_study_config({"cohorts": "training", "dev_cohort": "derivation",
                            "variables": [{"name": "a", "type": "binary", "cut_point": 1}, {"name": "a",
                                                                                            "type": "binary"}]})
    lines = str(exc.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == ["cohorts", "variables[0].cut_point"]


# --------------------------------------------------------------------------------------------
# 5. a split file from another seed


def _clinical_split_args(root: Path):
    from dlr.modeling.config import load_study_config

    config = load_study_config(root / "study.yaml")
    clinical = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    return clinical, {"id_column": config.id_column, "cohort_column": config.cohort_column,
                      "outcome_column": config.outcome_column, "dev_cohort": config.dev_cohort}


@pytest.fixture(scope="module")
def clinical_only(tmp_path_factory) -> Path:
    from dlr.modeling.synthetic import synthesize_study

    root = tmp_path_factory.mktemp("clinical") / "S"
    synthesize_study(root, n=30, seed=7, images=False)
    _yaml(root, phases=[])
    assert validate_study(root) == []
    return root


def test_a_split_drawn_with_another_seed_or_folds_is_refused(clinical_only, tmp_path):
    from dlr.modeling.splits import SplitError, load_or_make_split

    clinical, kwargs = _clinical_split_args(clinical_only)
    run = tmp_path / "run"
    first = load_or_make_split(run, clinical, **kwargs, n_folds=5, seed=1)
    assert read_provenance(run)["split.csv"]["seed"] == 1
    pd.testing.assert_frame_equal(load_or_make_split(run, clinical, **kwargs, n_folds=5, seed=1), first)
    with pytest.raises(SplitError) as exc:
        load_or_make_split(run, clinical, **kwargs, n_folds=5, seed=2)
    text = str(exc.value)
    assert f"{run / 'split.csv'} was drawn with seed 1" in text and "asks for seed 2" in text
    assert "pass --seed 1" in text and f"delete {run / 'split.csv'}" in text
    with pytest.raises(SplitError, match=r"drawn with 5 folds .* asks for 4 \(study.yaml n_folds\).*n_folds: 5"):
        load_or_make_split(run, clinical, **kwargs, n_folds=4, seed=1)


def test_a_hand_written_or_edited_split_is_used_as_it_is(clinical_only, tmp_path):
    from dlr.modeling.splits import load_or_make_split

    clinical, kwargs = _clinical_split_args(clinical_only)
    hand = tmp_path / "hand"
    hand.mkdir()
    split = pd.DataFrame({"patient_id": clinical["patient_id"], "cohort": clinical["cohort"],
                          "fold": np.where(clinical["cohort"] == "training", np.arange(len(clinical)) % 3 + 1, 0)})
    split.to_csv(hand / "split.csv", index=False)
    assert load_or_make_split(hand, clinical, **kwargs, n_folds=5, seed=99)["fold"].max() == 3
    edited = tmp_path / "edited"
    load_or_make_split(edited, clinical, **kwargs, n_folds=5, seed=1)
    split.to_csv(edited / "split.csv", index=False)  # the entry no longer describes these bytes
    assert load_or_make_split(edited, clinical, **kwargs, n_folds=5, seed=2)["fold"].max() == 3


def test_dlr_train_with_another_seed_exits_2(clinical_only, tmp_path, capsys):
    from dlr.modeling.splits import load_or_make_split

    clinical, kwargs = _clinical_split_args(clinical_only)
    run = tmp_path / "run"
    load_or_make_split(run, clinical, **kwargs, n_folds=5, seed=11, clinical_path=clinical_only / "clinical.csv")
    capsys.readouterr()
    code = main(["train", str(clinical_only), "--out", str(run), "--arms", "clinical", "--seed", "12"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "split.csv was drawn with seed 11" in err and "asks for seed 12" in err and "--seed 11" in err
    assert not (run / "predictions.csv").exists()


# --------------------------------------------------------------------------------------------
# 6. a development cohort too small for the folds


def test_validate_reports_a_development_cohort_too_small_for_the_folds(study, capsys):
    from dlr.modeling.splits import SplitError, make_split

    _yaml(study, n_folds=3)  # the development cohort has 2 patients of each outcome
    problems = [p for p in validate_study(study) if p.check == "dev-folds"]
    assert len(problems) == 1 and problems[0].file == "clinical.csv"
    assert ("the development cohort 'training' has 2 patient(s) with early_recurrence 1 and 2 with "
            "early_recurrence 0, but its 3 stratified folds (study.yaml n_folds) need at least 3 of each"
            in problems[0].message)
    assert problems[0].fix == "set `n_folds: 2` in study.yaml (fewer folds), or add development patients"
    code, err = _validate(study, capsys)
    assert code == 2 and "dev-folds" in err and "`dlr train` would refuse" in err
    # the rule is the split's own
    study_ = load_study(study)  # a stage check: the study loads for the other stages
    with pytest.raises(SplitError, match="3 stratified folds need at least 3"):
        make_split(study_.clinical, id_column="patient_id", cohort_column="cohort", outcome_column="early_recurrence",
                   dev_cohort="training", n_folds=3, seed=1)
    make_split(study_.clinical, id_column="patient_id", cohort_column="cohort", outcome_column="early_recurrence",
               dev_cohort="training", n_folds=2, seed=1)
    # the default, 5 folds
    _yaml(study, n_folds=None)
    problem = next(p for p in validate_study(study) if p.check == "dev-folds")
    assert "its 5 stratified folds (the default n_folds)" in problem.message
    _yaml(study, n_folds=2)
    assert validate_study(study) == []


def test_an_unknown_outcome_counts_either_way(study):
    # P003 (outcome 0) gets outcome 7: the folds would still fit if it is a 0, so only the outcome is reported
    frame = pd.read_csv(study / "clinical.csv")
    frame.loc[frame["patient_id"] == "P003", "early_recurrence"] = 7
    frame.to_csv(study / "clinical.csv", index=False)
    assert [p.check for p in validate_study(study)] == ["outcome-value"]
    # 3 folds do not fit whatever P003's outcome is (2 with outcome 1, 1 with 0, 1 unknown)
    _yaml(study, n_folds=3)
    problems = validate_study(study)
    assert [p.check for p in problems] == ["outcome-value", "dev-folds"]
    assert "2 patient(s) with early_recurrence 1 and 1 with early_recurrence 0" in problems[1].message
    assert problems[1].fix.startswith("set `n_folds: 2`")


def test_a_small_synthetic_study_names_the_folds_it_can_fill(tmp_path):
    from dlr.modeling.config import load_study_config
    from dlr.modeling.synthetic import synthesize_study

    synthesize_study(tmp_path / "small", n=10, images=False)
    assert load_study_config(tmp_path / "small/study.yaml").n_folds == 3
    synthesize_study(tmp_path / "full", images=False)
    text = (tmp_path / "full/study.yaml").read_text()
    assert "n_folds" not in text and "mask_label" not in text
