"""`dlr validate` and `dlr import-dicom` from the command line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dlr.cli import main
from test_dicom import write_series
from test_study import write_study


def test_validate_good_and_broken_study(tmp_path, capsys):
    study = write_study(tmp_path / "study")
    assert main(["validate", str(study)]) == 0
    # break two things at once: a duplicate id and a missing mask; both are reported, exit 2
    clinical = pd.read_csv(study / "clinical.csv")
    pd.concat([clinical, clinical.iloc[[0]]]).to_csv(study / "clinical.csv", index=False)
    first = clinical.iloc[1]["patient_id"]
    victim = next((study / "masks" / str(first)).iterdir())
    victim.unlink()
    capsys.readouterr()
    code = main(["validate", str(study), "--report", str(tmp_path / "problems.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "duplicate-patient-id" in err and "mask-missing" in err and str(first) in err
    report = pd.read_csv(tmp_path / "problems.csv")
    assert {"duplicate-patient-id", "mask-missing"} <= set(report["check"])


def test_import_dicom_series_to_nifti(tmp_path, capsys):
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 3
    series = tmp_path / "series"
    write_series(series, values)
    out = tmp_path / "image.nii.gz"
    assert main(["import-dicom", str(series), str(out)]) == 0
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (6, 5, 4)
    assert main(["import-dicom", str(tmp_path / "nothing"), str(tmp_path / "x.nii.gz")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_synth_then_validate_table1_and_logistic(tmp_path, capsys):
    study = tmp_path / "S"
    assert main(["synth", "--out", str(study)]) == 0
    assert main(["validate", str(study)]) == 0
    clinical, config = study / "clinical.csv", study / "study.yaml"
    assert main(["logistic", str(clinical), "--outcome", "early_recurrence", "--cohort", "cohort", "--study",
                 str(config), "--out", str(tmp_path / "t3")]) == 0
    assert (tmp_path / "t3" / "selected.txt").read_text().split() == ["ast", "tumor_diameter"]
    assert main(["table1", str(clinical), "--outcome", "early_recurrence", "--cohort", "cohort", "--study",
                 str(config), "--out", str(tmp_path / "t1")]) == 0
    summary = pd.read_csv(tmp_path / "t1" / "table1_summary.csv")
    afp = summary[(summary["variable"] == "afp") & (summary["level"] == ">400") & (summary["cohort"] == "training")]
    # paper Table 1, training: AFP > 400 in 26.9% of ER and 11.1% of NER patients
    assert afp.set_index("group")["percent"].astype(float).round(1).to_dict() == {1: 26.9, 0: 11.1}
    # refuses to overwrite a study
    assert main(["synth", "--out", str(study), "--no-images"]) == 2


def _synthetic_damages():
    def edit(column, pid, value):
        def mutate(root):
            frame = pd.read_csv(root / "clinical.csv")
            frame[column] = frame[column].astype(object)
            frame.loc[frame["patient_id"] == pid, column] = value
            frame.to_csv(root / "clinical.csv", index=False)
        return mutate

    def put_mask(pid, phase, values=None, spacing=None):
        def mutate(root):
            path = root / "masks" / pid / f"{phase}.nii.gz"
            mask = sitk.ReadImage(str(path))
            new = sitk.GetImageFromArray(values(sitk.GetArrayFromImage(mask)) if values else
                                         sitk.GetArrayFromImage(mask))
            new.CopyInformation(mask)
            if spacing:
                new.SetSpacing(spacing)
            sitk.WriteImage(new, str(path))
        return mutate

    return {
        "duplicate id": (edit("patient_id", "HCC003", "HCC002"), ["HCC002", "clinical.csv"]),
        "outcome not 0/1": (edit("early_recurrence", "HCC004", 2), ["HCC004", "clinical.csv"]),
        "unknown cohort": (edit("cohort", "HCC005", "external"), ["HCC005", "external"]),
        "missing image": (lambda r: (r / "images/HCC006/PVP.nii.gz").unlink(), ["HCC006", "images/HCC006/PVP.nii.gz"]),
        "mask on another grid": (put_mask("HCC007", "AP", spacing=(2.0, 2.0, 2.0)),
                                 ["HCC007", "masks/HCC007/AP.nii.gz"]),
        "empty mask": (put_mask("HCC008", "DP", values=lambda a: a * 0), ["HCC008", "masks/HCC008/DP.nii.gz"]),
        "folder without clinical row": (edit("patient_id", "HCC009", "HCC999"), ["HCC009", "images/HCC009"]),
        "column named in study.yaml absent": (
            lambda r: pd.read_csv(r / "clinical.csv").drop(columns="ast").to_csv(r / "clinical.csv", index=False),
            ["ast", "clinical.csv"]),
    }


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory):
    from dlr.modeling.synthetic import synthesize_study

    root = tmp_path_factory.mktemp("synthetic") / "S"
    synthesize_study(root, n=12, seed=3)
    return root


@pytest.mark.parametrize("case", list(_synthetic_damages()))
def test_each_bad_synthetic_study_exits_2_naming_patient_and_file(synthetic_study, tmp_path, capsys, case):
    import shutil

    mutate, needles = _synthetic_damages()[case]
    study = Path(shutil.copytree(synthetic_study, tmp_path / "S"))
    assert main(["validate", str(study)]) == 0
    mutate(study)
    capsys.readouterr()
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_a_flood_of_problems_is_capped_per_check(tmp_path, capsys):
    """Issue 21.7: 100k junk rows gave 483,129 problems and 104 MB on stderr. Each check now shows
    its first PER_CHECK problems and counts the rest; --report keeps every one."""
    from dlr.modeling.study import PER_CHECK, StudyError, load_study

    study = write_study(tmp_path / "study")
    clinical = pd.read_csv(study / "clinical.csv", dtype=str)
    junk = pd.DataFrame({c: "junk" for c in clinical.columns}, index=range(3000))
    junk["patient_id"] = [f"J{i:05d}" for i in range(3000)]
    pd.concat([clinical, junk]).to_csv(study / "clinical.csv", index=False)
    capsys.readouterr()
    assert main(["validate", str(study), "--report", str(tmp_path / "all.csv")]) == 2
    err = capsys.readouterr().err
    every = pd.read_csv(tmp_path / "all.csv")
    assert len(every) > 6000  # each junk row breaks several checks
    assert len(err) < 40_000 and "more like it" in err
    per_check = every["check"].value_counts()
    for check, n in per_check[per_check > PER_CHECK].items():
        assert f"... and {n - PER_CHECK:,} more like it ({check})" in err
    with pytest.raises(StudyError) as caught:
        load_study(study)
    assert len(str(caught.value)) < 40_000 and len(caught.value.problems) >= len(every) // 2
