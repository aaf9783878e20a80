"""The reviewer package (contract section 7): `dlr package RUN --out FILE.zip` and `dlr verify FILE.zip`.

One small clinical-only run is built once for the module, by the stages `dlr run` calls
(synthetic study, `train`, `staging`, `analyze`), with one patient's portal-venous image imported
from the real DICOM series in tests/data/real/hcc048_pvp_dicom_subset/ (TCIA HCC-TACE-Seg
HCC_048, CC BY 4.0; ATTRIBUTION.md there), so that the study folder's own provenance records a
DICOM import. A run log and a report that name the run's, the study's and the home folder's
absolute paths stand in for those `dlr run` and `dlr report` write.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dlr.core.errors import InputError
from dlr import verbs
from dlr.package import Scrubber, compare_csv, compare_json, package_run, pseudonyms, verify_package
from dlr.stages import write_run_marker

from conftest import DATA

DICOM = DATA / "real" / "hcc048_pvp_dicom_subset"
CONTIGUOUS = ("00000040.dcm", "00000041.dcm", "00000048.dcm")  # z = -341, -338.5, -336 mm
#: header fields that identify a patient, a study, an institution or a date
IDENTIFYING_TAGS = {
    "0010|0010": "PatientName", "0010|0020": "PatientID", "0010|0030": "PatientBirthDate",
    "0010|1000": "OtherPatientIDs", "0008|0020": "StudyDate", "0008|0021": "SeriesDate",
    "0008|0022": "AcquisitionDate", "0008|0023": "ContentDate", "0008|0030": "StudyTime",
    "0008|0050": "AccessionNumber", "0008|0080": "InstitutionName", "0008|0081": "InstitutionAddress",
    "0008|0090": "ReferringPhysicianName", "0008|1010": "StationName", "0008|1030": "StudyDescription",
    "0008|103e": "SeriesDescription", "0008|0018": "SOPInstanceUID", "0020|000d": "StudyInstanceUID",
    "0020|000e": "SeriesInstanceUID", "0020|0052": "FrameOfReferenceUID", "0020|0010": "StudyID",
}
N_PATIENTS = 100  # the synthetic study's CR model needs about this many to select a factor


def _dicom_slices(dest: Path) -> list[Path]:
    """The three contiguous slices, decompressed, each checked against SHA256SUMS."""
    sums = dict(reversed(line.split(maxsplit=1)) for line in (DICOM / "SHA256SUMS").read_text().splitlines())
    dest.mkdir(parents=True)
    files = []
    for name in CONTIGUOUS:
        data = lzma.decompress((DICOM / f"{name}.xz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == sums[name]
        (dest / name).write_bytes(data)
        files.append(dest / name)
    return files


def _header_values(files) -> dict:
    values = {}
    for path in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        for tag, name in IDENTIFYING_TAGS.items():
            if reader.HasMetaDataKey(tag):
                value = reader.GetMetaData(tag).strip()
                if len(value) >= 4:
                    values[f"{name} {value}"] = value
    return values


def _members(zip_path: Path) -> dict:
    """{name: bytes} of every member, and of every member of a DOCX inside, as `name:inner`."""
    out = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            out[name] = data
            if name.endswith(".docx"):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    out.update({f"{name}:{n}": inner.read(n) for n in inner.namelist()})
    return out


def _rewrite(zip_path: Path, out: Path, name: str, edit) -> Path:
    """A copy of the zip with member ``name`` replaced by ``edit(its text)`` (MANIFEST.csv unchanged)."""
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == name:
                data = edit(data.decode()).encode()
            target.writestr(info, data)
    return out


def _fake_docx(path: Path, text: str) -> None:
    """A minimal DOCX (a zip of XML) whose body and author name ``text``."""
    with zipfile.ZipFile(path, "w") as docx:
        docx.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        docx.writestr("docProps/core.xml", f"<cp:coreProperties><dc:creator>{text}</dc:creator>"
                                           f"<cp:lastModifiedBy>someone</cp:lastModifiedBy></cp:coreProperties>")
        docx.writestr("word/document.xml", f"<w:document><w:body><w:t>{text}</w:t></w:body></w:document>")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A run of a 100-patient clinical-only study with one DICOM-imported image, and its package."""
    root = tmp_path_factory.mktemp("package")
    study, run, source = root / "study", root / "run", root / "dicom_source"
    verbs.synth(study, n=N_PATIENTS, images=False)
    text = (study / "study.yaml").read_text()
    (study / "study.yaml").write_text(re.sub(r"^phases:\n(- \w+\n)+", "phases: []\n", text, flags=re.M))
    slices = _dicom_slices(source / "HCC001" / "PVP")
    verbs.import_dicom(source, study, phases=["PVP"])
    assert (study / "images" / "HCC001" / "PVP.nii.gz").is_file()

    write_run_marker(run, {"study": str(study.resolve()), "profile": "quick", "arms": ["clinical"], "seed": 20240101})
    (run / "inputs").mkdir()
    shutil.copyfile(study / "study.yaml", run / "inputs" / "study.yaml")
    pd.DataFrame({"file": ["study.yaml", "clinical.csv", "images/HCC001/PVP.nii.gz"],
                  "sha256": [hashlib.sha256((study / f).read_bytes()).hexdigest()
                             for f in ("study.yaml", "clinical.csv", "images/HCC001/PVP.nii.gz")]}).to_csv(
        run / "inputs" / "checksums.csv", index=False)
    verbs.train(study, run, arms=["clinical"], jobs=1)
    verbs.staging(study / "clinical.csv", run / "staging", study_yaml=study / "study.yaml", outcome="early_recurrence")
    cwd = os.getcwd()
    os.chdir(root)  # as a user would: relative paths on the command line, recorded in the provenance
    try:
        verbs.analyze("run/predictions.csv", "run/results", strata=["scanner"], oof="run/predictions_oof.csv",
                      n_bootstrap=200, command=["dlr", "analyze", "run/predictions.csv", "--out", "run/results"])
    finally:
        os.chdir(cwd)
    home = str(Path.home())
    (run / "run.log").write_text(f"2026-01-01T00:00:00 dlr run {study.resolve()} -> {run.resolve()}\n"
                                 f"2026-01-01T00:00:01 cache in {home}/.cache/dlr; patient HCC001 imported from "
                                 f"{source / 'HCC001' / 'PVP'}\n")
    (run / "report").mkdir()
    (run / "report" / "index.html").write_text(
        f'<html><body><img src="file://{run.resolve()}/results/figures/roc_validation.png">'
        f'<p>Study {study.resolve()}, rendered in {home}/reports by {os.uname().nodename}.</p>'
        f'<p>AFP 400 ng/mL; NLR = neutrophils/lymphocytes; see https://doi.org/10.7937/TCIA.5FNA-0924</p>'
        f'<img src="data:image/png;base64,/9j/4AAQSkZJRgABAQ/tmp/AAA="></body></html>\n')
    _fake_docx(run / "report" / "index.docx", f"{run.resolve()}/results {home}")
    (run / "features").mkdir()
    (run / "features" / "cache").mkdir()
    (run / "features" / "cache" / "case.json").write_text("{}")

    result = package_run(run, root / "out" / "package.zip")
    return {"root": root, "study": study, "run": run, "source": source, "slices": slices, "result": result,
            "zip": result.path}


# --------------------------------------------------------------------------------------------
# package and verify


def test_package_verifies_identical(built):
    result = built["result"]
    assert result.path.is_file() and result.size == result.path.stat().st_size
    assert result.pseudonymised == N_PATIENTS
    with zipfile.ZipFile(result.path) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(result.files) and result.n_files == len(names)
    for name in ("study.yaml", "split.csv", "predictions.csv", "predictions_oof.csv", "settings.json",
                 "environment.json", "requirements-lock.txt", "checksums.csv", "MANIFEST.csv", "REPRODUCE.md",
                 "results/results.json", "results/performance.csv", "results/figures/roc_validation.png",
                 "models/parameters.json", "staging/staging.csv", "report/index.html", "report/index.docx",
                 "provenance.json", "run.log"):
        assert name in names, name
    assert not any(n.endswith("clinical.csv") or "cache/" in n or n.endswith(".nii.gz") or "file_hashes" in n
                   for n in names)
    assert "features/cache/ (1 file)" in result.left_out

    check = verify_package(result.path)
    assert check.identical, check.lines()
    assert check.differences.empty and list(check.differences.columns)[:5] == ["file", "row", "column", "packaged",
                                                                               "recomputed"]
    assert "results/performance.csv" in check.checked and "results/results.json" in check.checked
    assert check.n_numbers == result.n_numbers > 5000
    assert check.settings == {"dev_cohort": "training", "strata": ["scanner"], "reference": None,
                              "n_bootstrap": 200, "seed": 20240101, "oof": True}


def test_manifest_lists_every_member_with_its_sha256(built):
    members = _members(built["zip"])
    manifest = pd.read_csv(io.BytesIO(members["MANIFEST.csv"]))
    assert sorted(manifest["file"]) == sorted(n for n in members if ":" not in n and n != "MANIFEST.csv")
    for row in manifest.itertuples():
        assert hashlib.sha256(members[row.file]).hexdigest() == row.sha256
        assert len(members[row.file]) == row.bytes


def test_pseudonyms_keep_order_and_are_consistent(built):
    run, members = built["run"], _members(built["zip"])
    original = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    packaged = pd.read_csv(io.BytesIO(members["predictions.csv"]), dtype={"patient_id": str})
    mapping = dict(zip(sorted(set(pd.read_csv(run / "split.csv", dtype=str)["patient_id"])),
                       [f"P{k:04d}" for k in range(1, N_PATIENTS + 1)]))
    # the same rows in the same order; only the ids differ, mapped in sorted order
    assert packaged["patient_id"].tolist() == original["patient_id"].map(mapping).tolist()
    pd.testing.assert_frame_equal(packaged.drop(columns="patient_id"), original.drop(columns="patient_id"))
    # byte for byte, after the id, as the run wrote it
    assert members["predictions.csv"].split(b"\n")[1].split(b",", 1)[1] == \
        (run / "predictions.csv").read_bytes().split(b"\n")[1].split(b",", 1)[1]
    for name in ("split.csv", "predictions_oof.csv", "models/oof_predictions.csv", "staging/staging.csv"):
        frame = pd.read_csv(io.BytesIO(members[name]), dtype={"patient_id": str})
        source = pd.read_csv(run / name, dtype={"patient_id": str})
        assert frame["patient_id"].tolist() == source["patient_id"].map(mapping).tolist(), name
    folds = json.loads(members["models/parameters.json"])["folds"]
    original_folds = json.loads((run / "models" / "parameters.json").read_text())["folds"]
    assert folds == {mapping[k]: v for k, v in original_folds.items()}
    # no original id anywhere, in any member or member name; the mapping is not packaged
    for name, data in members.items():
        assert not re.search(rb"HCC\d{3}", name.encode() + data), name
    checksums = pd.read_csv(io.BytesIO(members["checksums.csv"]))
    assert "images/P0001/PVP.nii.gz" in set(checksums["file"])


def test_pseudonyms_follow_sorted_ids():
    assert pseudonyms(["b", "a10", "a9", "a10"]) == {"a10": "P0001", "a9": "P0002", "b": "P0003"}
    assert pseudonyms(map(str, range(10000)))["9999"] == "P10000"  # wider when there are more


def test_altered_prediction_is_found(built, tmp_path):
    def edit(text):
        lines = text.split("\n")
        header = lines[0].split(",")
        k = next(i for i, line in enumerate(lines[1:], 1) if ",validation,CR," in line)
        cells = lines[k].split(",")
        cells[header.index("y_score")] = "0.01" if float(cells[header.index("y_score")]) > 0.5 else "0.99"
        lines[k] = ",".join(cells)
        return "\n".join(lines)

    altered = _rewrite(built["zip"], tmp_path / "altered.zip", "predictions.csv", edit)
    check = verify_package(altered)
    assert not check.identical
    diffs = check.differences
    assert ((diffs["file"] == "predictions.csv") & (diffs["column"] == "<sha256>")).sum() == 1
    numbers = diffs[diffs["column"] != "<sha256>"]
    assert {"results/performance.csv", "results/results.json", "results/roc_curve.csv"} <= set(numbers["file"])
    auc = numbers[(numbers["file"] == "results/performance.csv") & (numbers["column"] == "auc")]
    assert len(auc) == 1 and auc["key"].iloc[0].startswith("model=CR, cohort=validation")


def test_altered_result_is_named_by_file_row_and_column(built, tmp_path):
    original = {}

    def edit(text):
        frame = list(csv.reader(io.StringIO(text)))
        header = frame[0]
        k = next(i for i, row in enumerate(frame) if row[:2] == ["CR", "validation"])
        original.update(line=k + 1, auc=frame[k][header.index("auc")])
        frame[k][header.index("auc")] = "0.123"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(frame)
        return out.getvalue()

    altered = _rewrite(built["zip"], tmp_path / "altered.zip", "results/performance.csv", edit)
    check = verify_package(altered)
    assert not check.identical
    diffs = check.differences
    assert len(diffs) == 2, check.lines()
    sha = diffs[diffs["column"] == "<sha256>"].iloc[0]
    assert sha["file"] == "results/performance.csv"
    cell = diffs[diffs["column"] != "<sha256>"].iloc[0]
    assert (cell["file"], cell["row"], cell["column"]) == ("results/performance.csv", original["line"], "auc")
    assert (cell["packaged"], cell["recomputed"]) == ("0.123", original["auc"])
    assert check.lines()[1] == \
        f"results/performance.csv, row {original['line']}, column auc: 0.123 -> {original['auc']}"


def test_corrupt_or_incomplete_zip_is_bad_input(built, tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(built["zip"].read_bytes()[:2000])
    with pytest.raises(InputError, match=re.escape(str(corrupt))):
        verify_package(corrupt)
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        verify_package(text)
    with pytest.raises(InputError, match="no such file"):
        verify_package(tmp_path / "absent.zip")
    partial = tmp_path / "partial.zip"
    with zipfile.ZipFile(built["zip"]) as source, zipfile.ZipFile(partial, "w") as target:
        for info in source.infolist():
            if info.filename != "MANIFEST.csv":
                target.writestr(info, source.read(info))
    with pytest.raises(InputError, match=f"{re.escape(str(partial))}.*MANIFEST.csv"):
        verify_package(partial)


def _copy_run(built, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(built["run"], copy)
    return copy


def test_a_folder_without_run_json_or_of_an_older_format_is_refused(built, tmp_path):
    run = _copy_run(built, tmp_path)
    (run / "run.json").unlink()
    with pytest.raises(InputError, match=re.escape(str(run / "run.json")) + ".*older"):
        package_run(run, tmp_path / "p.zip")
    (run / "run.json").write_text(json.dumps({"format": "dlr-run", "format_version": 0}))
    with pytest.raises(InputError, match="format version 0"):
        package_run(run, tmp_path / "p.zip")
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".*tmp*"))


def test_results_older_than_the_predictions_are_refused(built, tmp_path):
    run = _copy_run(built, tmp_path)
    lines = (run / "predictions.csv").read_text().split("\n")
    lines[1] = lines[1].rsplit(",", 1)[0] + ",1.5T" if not lines[1].endswith("1.5T") else lines[1][:-4] + "3.0T"
    (run / "predictions.csv").write_text("\n".join(lines))
    with pytest.raises(InputError, match="changed since the analysis"):
        package_run(run, tmp_path / "p.zip")
    (run / "results" / "results.json").unlink()
    with pytest.raises(InputError, match=re.escape(str(run / "results" / "results.json")) + ": missing"):
        package_run(run, tmp_path / "p.zip")
    assert not list(tmp_path.glob("*.zip"))


def test_results_that_do_not_recompute_stop_the_package(built, tmp_path):
    run = _copy_run(built, tmp_path)
    performance = run / "results" / "performance.csv"
    lines = performance.read_text().split("\n")
    lines[1] = lines[1].replace(",", ",edited ", 1)  # the cohort of the first row, edited by hand
    performance.write_text("\n".join(lines))
    (tmp_path / "p.zip").write_bytes(b"an earlier package")
    # bad input when the results may come from other code (local changes), a bug otherwise
    with pytest.raises((InputError, RuntimeError), match="(does not recompute|does not verify).*performance.csv, row 2"):
        package_run(run, tmp_path / "p.zip")
    assert (tmp_path / "p.zip").read_bytes() == b"an earlier package"  # never clobbered by a failed package
    assert not list(tmp_path.glob(".p.zip*"))


# --------------------------------------------------------------------------------------------
# de-identification


def test_no_path_of_this_machine_in_the_package(built):
    root, home = built["root"], str(Path.home())
    needles = {str(root), str(root.resolve()), str(built["run"].resolve()), str(built["study"].resolve()),
               str(built["source"])}
    home_pattern = re.compile(re.escape(home.encode()) + rb"(?![\w.-])")
    for name, data in _members(built["zip"]).items():
        for needle in needles:
            assert needle.encode() not in data, (name, needle)
        assert not home_pattern.search(data), name
        if not name.endswith(".png"):
            assert b"/tmp/" not in data.replace(b"/9j/4AAQSkZJRgABAQ/tmp/", b""), name
    members = _members(built["zip"])
    log = members["run.log"].decode()
    assert "dlr run <study> -> <run>" in log and "<home>/.cache/dlr" in log and "<path>/PVP" in log
    assert "patient P0001 imported" in log
    html = members["report/index.html"].decode()
    assert 'src="file://<run>/results/figures/roc_validation.png"' in html and "Study <study>," in html
    assert "ng/mL; NLR = neutrophils/lymphocytes; see https://doi.org/10.7937/TCIA.5FNA-0924" in html
    assert "base64,/9j/4AAQSkZJRgABAQ/tmp/AAA=" in html  # image data is not a path
    assert os.uname().nodename not in html or len(os.uname().nodename) < 4
    assert "<dc:creator>dlr</dc:creator>" in members["report/index.docx:docProps/core.xml"].decode()
    results = json.loads(members["results/results.json"])
    assert results["provenance"]["input"]["path"] == "<run>/predictions.csv"
    assert results["provenance"]["command"][2] == "<run>/predictions.csv"
    assert json.loads(members["settings.json"])["run"]["study"] == "<study>"


def test_a_path_left_in_a_binary_member_stops_the_package(built, tmp_path):
    run = _copy_run(built, tmp_path)
    png = run / "results" / "figures" / "roc_validation.png"
    png.write_bytes(png.read_bytes() + b"tEXtSource\0" + str(run.resolve()).encode())  # metadata scrubbing cannot reach
    with pytest.raises(RuntimeError, match="not be de-identified.*roc_validation.png: the path"):
        package_run(run, tmp_path / "p.zip")
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".p.zip*"))


def test_no_dicom_header_value_in_the_package(built):
    values = _header_values(built["slices"])
    assert {"PatientName Patient_01", "StudyDate 20010812"} <= set(values)
    assert any(k.startswith("SeriesInstanceUID 1.3.6.1.4.1.14519") for k in values)
    patterns = {k: re.compile(rb"(?<![0-9A-Za-z.])" + re.escape(v.encode()) + rb"(?![0-9A-Za-z])")
                for k, v in values.items()}
    sources = [str(built["source"]), str(built["source"].resolve()), *map(str, built["slices"])]
    members = _members(built["zip"])
    for name, data in members.items():
        for label, pattern in patterns.items():
            assert not pattern.search(data), (name, label)
        for path in sources:
            assert path.encode() not in data, (name, path)
    # the import is recorded, pseudonymised: the image's and the DICOM series' digests
    checksums = pd.read_csv(io.BytesIO(members["checksums.csv"]))
    image = checksums[checksums["file"] == "images/P0001/PVP.nii.gz"]
    series = checksums[(checksums["file"] == "dicom_series") & (checksums["used_by"] == "images/P0001/PVP.nii.gz")]
    assert len(image) >= 1 and len(series) == 1 and series["recorded_in"].iloc[0] == "<study>/images/provenance.json"


def test_reproduce_md_and_environment_lock(built):
    members = _members(built["zip"])
    reproduce = members["REPRODUCE.md"].decode()
    assert "dlr verify package.zip" in reproduce
    assert ("dlr analyze predictions.csv --oof predictions_oof.csv --dev-cohort training --strata scanner "
            "--bootstrap 200 --seed 20240101 --out results_again --no-figures") in reproduce
    env = json.loads(members["environment.json"])
    assert env["python"]["version"] and env["cpu"]["count"] >= 1 and env["distributions"]["numpy"] == np.__version__
    lock = members["requirements-lock.txt"].decode()
    assert f"numpy=={np.__version__}" in lock and f"pandas=={pd.__version__}" in lock
    assert not re.search(r"^dlr==", lock, flags=re.M)
    settings = json.loads(members["settings.json"])
    assert settings["format"] == "dlr-package" and settings["seeds"]["analysis"] == 20240101
    assert settings["analysis"]["n_bootstrap"] == 200


# --------------------------------------------------------------------------------------------
# the pieces


def test_scrubber_replaces_paths_not_units_urls_or_data():
    scrub = Scrubber(roots=[("/data/alice/run1", "<run>"), ("/data/alice", "<home>")],
                     aliases=[("runs/run1", "<run>")], ids={"HCC001": "P0001", "7": "P0002"}, hostname="lab-ws-17")
    text = ("read /data/alice/run1/predictions.csv and /data/alice/run10/x, /opt/site/lib/file.py, "
            "runs/run1/split.csv; "
            "AFP ng/mL, 10^9/L, 1.5T/3.0T, </td>, https://doi.org/10.1/x on lab-ws-17 for HCC001 (not HCC0011), 7 of 9")
    assert scrub.text(text) == (
        "read <run>/predictions.csv and <home>/run10/x, <path>/file.py, <run>/split.csv; "
        "AFP ng/mL, 10^9/L, 1.5T/3.0T, </td>, https://doi.org/10.1/x on <host> for P0001 (not HCC0011), 7 of 9")
    assert scrub.json({"folds": {"HCC001": 1, "7": 2}, "patient_id": "7", "n": "7"}) == \
        {"folds": {"P0001": 1, "P0002": 2}, "patient_id": "P0002", "n": "7"}
    assert scrub.name("images/7/PVP.nii.gz") == "images/P0002/PVP.nii.gz"


def test_compare_csv_and_json_exact_with_nan_equal(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("model,auc,brier\nCR,0.75,\nX,1.0,0.2\n")
    b.write_text("model,auc,brier\nCR,0.75,\nX,1,0.20000000000000004\n")
    diffs, count = compare_csv(a, b, "t.csv")
    assert count == 3 and [(d["row"], d["column"]) for d in diffs] == [(3, "brier")]
    diffs, count = compare_json({"performance": [{"auc": 0.5, "x": None}], "provenance": {"seed": 1}},
                                {"performance": [{"auc": 0.6, "x": None}], "provenance": {"seed": 2}}, "r.json")
    assert count == 1 and [(d["row"], d["column"], d["packaged"], d["recomputed"]) for d in diffs] == \
        [("performance[0]", "auc", "0.5", "0.6")]
