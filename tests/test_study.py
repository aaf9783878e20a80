"""Study folder validation: a valid tiny study passes; each kind of damage is reported, naming
the check, the file and the patient, and several at once are all reported."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dlr.core.errors import InputError
from dlr.modeling.config import StudyConfig, dump_study_config
from dlr.modeling.study import (CHECKS, Problem, Study, StudyError, load_study, problems_frame, raise_if_problems,
                            validate_study)

PHASES = ("AP", "PVP")
SPACING = (0.8, 0.8, 2.5)
ORIGIN = (-10.0, 20.0, -30.0)
# the development cohort has two patients of each outcome: enough for the 2 folds of study.yaml
CLINICAL = pd.DataFrame({
    "patient_id": ["P001", "P002", "P003", "P004", "P005"],
    "cohort": ["training", "training", "training", "validation", "training"],
    "early_recurrence": [0, 1, 0, 1, 1],
    "afp": [12.0, 800.0, 30.0, 5.0, 45.0],
})


def _volume(values: np.ndarray, *, spacing=SPACING, origin=ORIGIN, direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _mask(label=1, **grid) -> sitk.Image:
    values = np.zeros((4, 5, 6), np.uint8)
    values[1:3, 1:4, 2:5] = label
    return _volume(values, **grid)


def write_study(root: Path, *, phases=PHASES) -> Path:
    config = StudyConfig(name="tiny", phases=list(phases), n_folds=2,
                         variables=[{"name": "afp", "type": "continuous", "cut_point": 400}])
    root.mkdir(parents=True, exist_ok=True)
    (root / "study.yaml").write_text(dump_study_config(config))
    CLINICAL.to_csv(root / "clinical.csv", index=False)
    rng = np.random.default_rng(0)
    for pid in CLINICAL["patient_id"]:
        for phase in phases:
            for folder in ("images", "masks"):
                (root / folder / pid).mkdir(parents=True, exist_ok=True)
            image = _volume(rng.integers(-100, 200, (4, 5, 6)).astype(np.int16))
            sitk.WriteImage(image, str(root / "images" / pid / f"{phase}.nii.gz"))
            sitk.WriteImage(_mask(), str(root / "masks" / pid / f"{phase}.nii.gz"))
    (root / "masks_reader2" / "P001").mkdir(parents=True)
    sitk.WriteImage(_mask(), str(root / "masks_reader2" / "P001" / "AP.nii.gz"))
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("template") / "study")


@pytest.fixture
def study(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "study"))


def test_valid_study_has_no_problem_and_loads(study):
    assert validate_study(study) == []
    loaded = load_study(study)
    assert isinstance(loaded, Study)
    assert loaded.patient_ids == ["P001", "P002", "P003", "P004", "P005"]
    assert loaded.images["P002"]["PVP"] == study / "images" / "P002" / "PVP.nii.gz"
    assert loaded.masks["P004"]["AP"].is_file()
    assert dict(loaded.masks_reader2) == {"P001": {"AP": study / "masks_reader2" / "P001" / "AP.nii.gz"}}
    assert loaded.clinical["early_recurrence"].tolist() == [0, 1, 0, 1, 1]
    assert loaded.config.phases == list(PHASES)


def test_mask_within_tolerance_is_accepted(study):
    jitter = tuple(s * (1 + 1e-5) for s in SPACING)
    sitk.WriteImage(_mask(spacing=jitter, origin=tuple(o + 1e-5 for o in ORIGIN)),
                    str(study / "masks" / "P002" / "AP.nii.gz"))
    assert validate_study(study) == []


def test_clinical_only_study_needs_no_image_folders(tmp_path):
    root = write_study(tmp_path / "clinical_only", phases=())
    for folder in ("images", "masks", "masks_reader2"):
        shutil.rmtree(root / folder, ignore_errors=True)
    assert validate_study(root) == []
    assert load_study(root).images == {}


# --------------------------------------------------------------------------------------------
# one kind of damage at a time: (mutation, check, file, patient)


def _write_yaml(root, **changes):
    import yaml

    data = yaml.safe_load((root / "study.yaml").read_text())
    data.update(changes)
    (root / "study.yaml").write_text(yaml.safe_dump(data))


def _edit_clinical(root, edit):
    frame = pd.read_csv(root / "clinical.csv", dtype={"patient_id": str})
    edit(frame)
    frame.to_csv(root / "clinical.csv", index=False)


def _put(image, root, rel):
    sitk.WriteImage(image, str(root / rel))


def _set(frame, pid, column, value):
    frame[column] = frame[column].astype(object)
    frame.loc[frame["patient_id"] == pid, column] = value


def _with_follow_up(root, pid, column, value):
    """study.yaml names follow-up columns (all valid) and patient ``pid``'s ``column`` gets ``value``."""
    _write_yaml(root, time_column="rfs_months", event_column="recurred")

    def edit(frame):
        frame["rfs_months"], frame["recurred"] = 12.5, 0
        _set(frame, pid, column, value)
    _edit_clinical(root, edit)


CASES = {
    "study.yaml missing": (lambda r: (r / "study.yaml").unlink(), "study-yaml", "study.yaml", None),
    "study.yaml not YAML": (lambda r: (r / "study.yaml").write_text("phases: [AP\n"), "study-yaml", "study.yaml", None),
    "study.yaml bad key": (lambda r: _write_yaml(r, profile="huge"), "study-yaml", "study.yaml", None),
    "clinical.csv missing": (lambda r: (r / "clinical.csv").unlink(), "clinical-csv", "clinical.csv", None),
    "clinical.csv empty file": (lambda r: (r / "clinical.csv").write_text(""), "clinical-csv", "clinical.csv", None),
    "clinical.csv header only": (lambda r: (r / "clinical.csv").write_text("patient_id,cohort,early_recurrence\n"),
                                 "clinical-csv", "clinical.csv", None),
    "clinical.csv unreadable": (lambda r: (r / "clinical.csv").write_bytes(b"patient_id,cohort\n\xff\xfe\x00,\x81\n"),
                                "clinical-csv", "clinical.csv", None),
    "column named in study.yaml absent": (lambda r: _edit_clinical(r, lambda f: f.pop("afp")),
                                          "column-missing", "clinical.csv", None),
    "patient id blank": (lambda r: _edit_clinical(r, lambda f: _set(f, "P003", "patient_id", "")),
                         "patient-id-missing", "clinical.csv", None),
    "duplicate patient id": (lambda r: _edit_clinical(r, lambda f: _set(f, "P003", "patient_id", "P001")),
                             "duplicate-patient-id", "clinical.csv", "P001"),
    "outcome not 0/1": (lambda r: _edit_clinical(r, lambda f: _set(f, "P002", "early_recurrence", 2)),
                        "outcome-value", "clinical.csv", "P002"),
    "outcome missing": (lambda r: _edit_clinical(r, lambda f: _set(f, "P004", "early_recurrence", None)),
                        "outcome-value", "clinical.csv", "P004"),
    "follow-up time negative": (lambda r: _with_follow_up(r, "P002", "rfs_months", -1.0),
                                "follow-up-value", "clinical.csv", "P002"),
    "follow-up time missing": (lambda r: _with_follow_up(r, "P003", "rfs_months", None),
                               "follow-up-value", "clinical.csv", "P003"),
    "follow-up event not 0/1": (lambda r: _with_follow_up(r, "P004", "recurred", 2),
                                "follow-up-value", "clinical.csv", "P004"),
    "unknown cohort": (lambda r: _edit_clinical(r, lambda f: _set(f, "P004", "cohort", "external")),
                       "unknown-cohort", "clinical.csv", "P004"),
    "development cohort one class": (
        lambda r: _edit_clinical(r, lambda f: (_set(f, "P002", "cohort", "validation"),
                                               _set(f, "P005", "cohort", "validation"))),
        "dev-cohort", "clinical.csv", None),
    "development cohort empty": (lambda r: _edit_clinical(r, lambda f: f.__setitem__("cohort", "validation")),
                                 "dev-cohort", "clinical.csv", None),
    "no images folder": (lambda r: shutil.rmtree(r / "images"), "images-folder", "images", None),
    "patient without image folder": (lambda r: shutil.rmtree(r / "images" / "P003"),
                                     "patient-without-images", "images/P003", "P003"),
    "patient without mask folder": (lambda r: shutil.rmtree(r / "masks" / "P003"),
                                    "patient-without-images", "masks/P003", "P003"),
    "image folder without clinical row": (lambda r: shutil.copytree(r / "images" / "P001", r / "images" / "P999"),
                                          "folder-without-clinical-row", "images/P999", "P999"),
    "image missing": (lambda r: (r / "images/P002/PVP.nii.gz").unlink(), "image-missing", "images/P002/PVP.nii.gz",
                      "P002"),
    "image unreadable": (lambda r: (r / "images/P002/AP.nii.gz").write_text("not an image"),
                         "image-unreadable", "images/P002/AP.nii.gz", "P002"),
    "image not 3D": (lambda r: _put(sitk.Image(4, 4, sitk.sitkInt16), r, "images/P002/AP.nii.gz"),
                     "image-unreadable", "images/P002/AP.nii.gz", "P002"),
    "mask missing": (lambda r: (r / "masks/P004/AP.nii.gz").unlink(), "mask-missing", "masks/P004/AP.nii.gz", "P004"),
    "mask unreadable": (lambda r: (r / "masks/P004/AP.nii.gz").write_bytes(b"\x00" * 10),
                        "mask-unreadable", "masks/P004/AP.nii.gz", "P004"),
    "mask size differs": (lambda r: _put(_volume(np.ones((4, 5, 7), np.uint8)), r, "masks/P001/PVP.nii.gz"),
                          "mask-grid", "masks/P001/PVP.nii.gz", "P001"),
    "mask spacing differs": (lambda r: _put(_mask(spacing=(0.8, 0.8, 2.51)), r, "masks/P001/PVP.nii.gz"),
                             "mask-grid", "masks/P001/PVP.nii.gz", "P001"),
    "mask origin differs": (lambda r: _put(_mask(origin=(-10.0, 20.0, -29.9)), r, "masks/P001/PVP.nii.gz"),
                            "mask-grid", "masks/P001/PVP.nii.gz", "P001"),
    "mask direction differs": (lambda r: _put(_mask(direction=(1, 0, 0, 0, -1, 0, 0, 0, -1)), r,
                                              "masks/P001/PVP.nii.gz"),
                               "mask-grid", "masks/P001/PVP.nii.gz", "P001"),
    "mask empty": (lambda r: _put(_mask(label=0), r, "masks/P003/AP.nii.gz"), "mask-empty", "masks/P003/AP.nii.gz",
                   "P003"),
    "mask without label 1": (lambda r: _put(_mask(label=2), r, "masks/P003/AP.nii.gz"),
                             "mask-no-label-1", "masks/P003/AP.nii.gz", "P003"),
    "reader-2 mask grid differs": (lambda r: _put(_mask(spacing=(1.0, 1.0, 2.5)), r, "masks_reader2/P001/AP.nii.gz"),
                                   "mask-grid", "masks_reader2/P001/AP.nii.gz", "P001"),
    "reader-2 mask empty": (lambda r: _put(_mask(label=0), r, "masks_reader2/P001/AP.nii.gz"),
                            "mask-empty", "masks_reader2/P001/AP.nii.gz", "P001"),
    "reader-2 mask unreadable": (lambda r: (r / "masks_reader2/P001/AP.nii.gz").write_text("x"),
                                 "mask-unreadable", "masks_reader2/P001/AP.nii.gz", "P001"),
    "reader-2 folder without clinical row": (
        lambda r: shutil.copytree(r / "masks_reader2" / "P001", r / "masks_reader2" / "P777"),
        "folder-without-clinical-row", "masks_reader2/P777", "P777"),
    "reader-2 folder without a phase mask": (
        lambda r: (r / "masks_reader2/P001/AP.nii.gz").rename(r / "masks_reader2/P001/ap_reader2.nii.gz"),
        "mask-missing", "masks_reader2/P001", "P001"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_problem_is_reported(study, name):
    mutate, check, file, patient = CASES[name]
    mutate(study)
    problems = validate_study(study)
    assert problems, name
    assert all(p.check in CHECKS for p in problems)
    matching = [p for p in problems if p.check == check and p.file == file and p.patient_id == patient]
    assert matching, f"{name}: expected ({check}, {file}, {patient}), got {problems}"
    problem = matching[0]
    assert problem.message and problem.fix
    text = str(problem)
    assert file in text and (patient is None or patient in text)
    with pytest.raises(StudyError) as exc:
        load_study(study)
    assert isinstance(exc.value, InputError) and file in str(exc.value)


def test_config_errors_are_one_problem_per_key(study):
    _write_yaml(study, profile="huge", colour="red", dev_cohort=5)
    keys = sorted(p.message.split(":")[0] for p in validate_study(study))
    assert keys == ["key colour", "key dev_cohort", "key profile"]


def test_every_problem_is_reported_in_one_pass(study):
    _edit_clinical(study, lambda f: (_set(f, "P003", "early_recurrence", 7), _set(f, "P004", "cohort", "external"),
                                     f.pop("afp")))
    (study / "images/P001/AP.nii.gz").unlink()
    _put(_mask(label=0), study, "masks/P003/PVP.nii.gz")
    _put(_mask(origin=(0.0, 0.0, 0.0)), study, "masks/P004/AP.nii.gz")
    shutil.copytree(study / "images" / "P001", study / "images" / "P999")
    found = {(p.check, p.file, p.patient_id) for p in validate_study(study)}
    assert found == {
        ("column-missing", "clinical.csv", None),
        ("outcome-value", "clinical.csv", "P003"),
        ("unknown-cohort", "clinical.csv", "P004"),
        ("image-missing", "images/P001/AP.nii.gz", "P001"),
        ("mask-empty", "masks/P003/PVP.nii.gz", "P003"),
        ("mask-grid", "masks/P004/AP.nii.gz", "P004"),
        ("folder-without-clinical-row", "images/P999", "P999"),
    }
    with pytest.raises(StudyError, match="7 problem") as exc:
        load_study(study)
    assert len(exc.value.problems) == 7
    assert len(problems_frame(exc.value.problems)) == 7


def test_check_images_false_only_checks_that_files_exist(study):
    _put(_mask(label=0), study, "masks/P003/PVP.nii.gz")
    (study / "masks/P004/AP.nii.gz").unlink()
    found = [(p.check, p.file) for p in validate_study(study, check_images=False)]
    assert found == [("mask-missing", "masks/P004/AP.nii.gz")]


def test_without_the_id_column_folders_are_not_reported(study):
    _edit_clinical(study, lambda f: f.pop("patient_id"))
    found = [(p.check, p.file, p.message) for p in validate_study(study)]
    assert found == [("column-missing", "clinical.csv",
                      "no column 'patient_id' (named by study.yaml key id_column)")]


def test_missing_study_folder(tmp_path):
    problems = validate_study(tmp_path / "nowhere")
    assert [p.check for p in problems] == ["study-yaml"] and "nowhere" in problems[0].file


def test_raise_if_problems():
    raise_if_problems([])
    problem = Problem("mask-empty", "masks/P1/AP.nii.gz", "P1", "the mask has no non-zero voxel", "segment it")
    with pytest.raises(StudyError, match=r"masks/P1/AP.nii.gz \[patient P1\] mask-empty") as exc:
        raise_if_problems([problem], root="STUDY")
    assert str(exc.value).startswith("STUDY: 1 problem(s)")


@pytest.mark.parametrize("bad", ["../evil", "a/b", "a\\b", " P1", "P1 ", "P\x071", ".."])
def test_an_id_that_cannot_name_a_folder_is_refused_by_name(tmp_path, capsys, bad):
    """Issue 21.5: an id `../evil` made `dlr validate` read masks/../evil/AP.nii.gz outside the
    study, and `a/b` was looked up in images/a/b/."""
    from dlr.cli import main

    study = write_study(tmp_path / "study")
    clinical = pd.read_csv(study / "clinical.csv", dtype=str)
    victim = clinical.loc[0, "patient_id"]
    clinical.loc[0, "patient_id"] = bad
    clinical.to_csv(study / "clinical.csv", index=False)
    (tmp_path / "evil").mkdir()  # what `../evil` would reach
    capsys.readouterr()
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "patient-id-unsafe" in err and repr(bad) in err and "rename the patient" in err, err
    assert "Traceback" not in err
    with pytest.raises(StudyError, match="patient-id-unsafe"):
        load_study(study)
    assert victim  # the other patients are still checked: the victim's folders are now without a row
    assert "folder-without-clinical-row" in err


def test_paths_built_from_ids_stay_inside_their_folder(tmp_path):
    from dlr.core.run_folder import patient_path

    assert patient_path(tmp_path, "HCC001", "AP.nii.gz") == tmp_path / "HCC001" / "AP.nii.gz"
    for bad in ("../evil", "a/b", "..", "x\ny", " x"):
        with pytest.raises(InputError, match="cannot name a file"):
            patient_path(tmp_path, bad, "AP.nii.gz")
