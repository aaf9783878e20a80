"""DICOM to NIfTI: geometry from the headers (not file names or InstanceNumber), rescaled values,
one series chosen among several, and no DICOM header field in the output.

Real data: 12 slices of TCIA HCC-TACE-Seg HCC_048, portal-venous CT (CC BY 4.0, Moawad et al.
2021, doi:10.7937/TCIA.5FNA-0924; see ATTRIBUTION.md beside the files). The 12 slices are not
contiguous (positions -381 to -188.5 mm with gaps of 2.5 to 45 mm), so the whole folder must be
refused; its contiguous 2.5 mm run (-341, -338.5, -336 mm) is converted.

The slices ship in tests/data/real/hcc048_pvp_dicom_subset/ (ATTRIBUTION.md there), each
xz-compressed to keep the repository small; the fixture `real` decompresses them and checks
each file's sha256 against SHA256SUMS (the original files'), so the tests read the original bytes.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import locale
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dlr.core.output import read_provenance
from dlr.core.errors import InputError
from dlr.modeling.dicom import DicomError, dicom_to_nifti, import_dicom_study, read_dicom_series, slice_positions

from conftest import DATA

REAL = DATA / "real" / "hcc048_pvp_dicom_subset"  # NAME.dcm.xz for each NAME.dcm in SHA256SUMS
CONTIGUOUS = ("00000040.dcm", "00000041.dcm", "00000048.dcm")  # z = -341, -338.5, -336 mm
IDENTIFIERS = (b"Patient_01", b"20010812", b"1.3.6.1.4.1.14519", b"HCC", b"Recon 3")


def _header(path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def _tag(path, key) -> str:
    return _header(path).GetMetaData(key).strip()


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """A folder holding only the 12 original slices, decompressed and checked against SHA256SUMS."""
    folder = tmp_path_factory.mktemp("hcc048_pvp_dicom_subset")
    for line in (REAL / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if not name.endswith(".dcm"):
            continue
        data = lzma.decompress((REAL / f"{name}.xz").read_bytes())
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"{REAL / name}.xz does not decompress to the original {name} (sha256 differs)")
        (folder / name).write_bytes(data)
    return folder


def _copy_renamed(files, dest: Path, names) -> Path:
    dest.mkdir(parents=True)
    for src, name in zip(files, names):
        shutil.copy(src, dest / name)
    return dest


# --------------------------------------------------------------------------------------------
# real series


def test_real_folder_with_missing_slices_is_refused(real, tmp_path):
    with pytest.raises(DicomError, match="not evenly spaced") as exc:
        dicom_to_nifti(real, tmp_path / "x.nii.gz")
    assert isinstance(exc.value, InputError)
    assert "smallest step 2.5 mm" in str(exc.value) and "15 mm between -381 and -366" in str(exc.value)
    assert not (tmp_path / "x.nii.gz").exists()


def test_real_slice_order_follows_positions_not_names_or_instance_numbers(real):
    ordered = slice_positions(real)
    assert len(ordered) == 12
    z = [p for _, p in ordered]
    assert z == sorted(z) and z[0] == -381.0 and z[-1] == -188.5
    for file, position in ordered:
        assert float(_tag(file, "0020|0032").split("\\")[2]) == position
    instance = [int(_tag(f, "0020|0013")) for f, _ in ordered]
    assert instance == sorted(instance, reverse=True)  # InstanceNumber runs the other way
    assert [Path(f).name for f, _ in ordered] != sorted(Path(f).name for f, _ in ordered)


def test_real_order_is_the_same_with_shuffled_file_names(real, tmp_path):
    files = sorted(real.glob("*.dcm"))
    names = [f"slice_{k:02d}.dcm" for k in np.random.default_rng(7).permutation(len(files))]
    shuffled = _copy_renamed(files, tmp_path / "dicom", names)
    renamed = dict(zip((tmp_path / "dicom" / n for n in names), files))
    original = slice_positions(real)
    again = slice_positions(shuffled)
    assert [p for _, p in again] == [p for _, p in original]
    assert [renamed[Path(f)] for f, _ in again] == [Path(f) for f, _ in original]


@pytest.fixture(scope="module")
def converted(real, tmp_path_factory):
    root = tmp_path_factory.mktemp("hcc048")
    series = _copy_renamed([real / n for n in CONTIGUOUS], root / "dicom", ["z9.dcm", "a1.dcm", "m5"])
    info = dicom_to_nifti(series, root / "PVP.nii.gz")
    return info, sitk.ReadImage(str(info.path))


def test_real_geometry(real, converted):
    info, image = converted
    assert info.size == image.GetSize() == (512, 512, 3) and info.n_files == 3
    np.testing.assert_allclose(image.GetSpacing(), (0.703125, 0.703125, 2.5), rtol=1e-6)
    np.testing.assert_allclose(image.GetSpacing(), (0.703, 0.703, 2.5), atol=1e-3)
    first = [float(v) for v in _tag(real / "00000040.dcm", "0020|0032").split("\\")]
    np.testing.assert_allclose(image.GetOrigin(), first, atol=1e-6)
    np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    z = [image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(3)]
    np.testing.assert_allclose(z, [-341.0, -338.5, -336.0], atol=1e-6)
    assert info.spacing == image.GetSpacing() and info.origin == image.GetOrigin()


def test_real_values_are_rescaled_hounsfield_units(real, converted):
    info, image = converted
    values = sitk.GetArrayFromImage(image)
    assert values.dtype == np.int16
    # uncompressed little-endian 16-bit pixel data ends the file: HU = stored * 1 + (-1024)
    assert _tag(real / "00000040.dcm", "0028|1053") == "1" and _tag(real / "00000040.dcm", "0028|1052") == "-1024"
    stored = np.frombuffer((real / "00000040.dcm").read_bytes()[-512 * 512 * 2:], "<i2").reshape(512, 512)
    np.testing.assert_array_equal(values[0], stored.astype(int) - 1024)
    inside = values[values > -1500]  # -2048 is the padding outside the reconstruction circle
    counts, edges = np.histogram(inside, bins=np.arange(-1500, 2000, 50))
    assert -1050 <= edges[np.argmax(counts)] <= -950  # air
    assert values.min() >= -2048 and 500 < values.max() < 3072
    assert (info.minimum, info.maximum) == (float(values.min()), float(values.max()))


def test_real_result_does_not_depend_on_file_names(real, converted, tmp_path):
    _, reference = converted
    again = _copy_renamed([real / n for n in reversed(CONTIGUOUS)], tmp_path / "dicom", ["1.dcm", "2.dcm", "3.dcm"])
    image = read_dicom_series(again)
    assert image.GetOrigin() == reference.GetOrigin() and image.GetSpacing() == reference.GetSpacing()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))


def test_real_output_has_no_dicom_identifier(converted):
    info, image = converted
    data = gzip.open(info.path).read()
    assert all(ident not in data for ident in IDENTIFIERS)
    header = _header(info.path)
    text_fields = {k: header.GetMetaData(k) for k in ("descrip", "aux_file", "intent_name", "ITK_FileNotes")
                   if header.HasMetaDataKey(k)}
    assert "descrip" in text_fields and set(text_fields.values()) == {""}
    assert int(header.GetMetaData("vox_offset")) == 352  # no NIfTI header extension
    assert not any(k.count("|") == 1 for k in image.GetMetaDataKeys())  # no DICOM tag
    # nor in the provenance record beside it
    record = (info.path.parent / "provenance.json").read_bytes()
    assert all(ident not in record for ident in IDENTIFIERS)


# --------------------------------------------------------------------------------------------
# synthetic series: oblique orientation, rescale slope 2, several series in one folder


def _rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


@contextlib.contextmanager
def keep_locale():
    """GDCM's DICOM writer can switch the process to the C locale; put it back, so that later
    tests in this process (text subprocess output, files with non-ASCII text) keep UTF-8."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def write_series(folder: Path, values: np.ndarray, *, uid="1.2.826.0.1.3680043.2.1125.1", step=3.0,
                 degrees=30.0, origin=(10.0, -20.0, 5.0), skip=(), names=None) -> np.ndarray:
    """values (z, y, x) as one DICOM file per slice, slope 2 intercept -1024; returns the axes."""
    folder.mkdir(parents=True, exist_ok=True)
    axes = _rotation(degrees)  # columns: row cosine, column cosine, normal
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    n = values.shape[0]
    names = names or [f"IMG{(n - k) * 7 % 11:04d}.dcm" for k in range(n)]
    for k in range(n):
        if k in skip:
            continue
        position = np.asarray(origin) + k * step * axes[:, 2]
        image = sitk.GetImageFromArray(values[k:k + 1].astype(np.int16))
        image.SetSpacing((0.75, 0.5, 1.0))  # the writer writes PixelSpacing (row, column) = 0.5, 0.75
        tags = {"0010|0010": "Doe^Jane", "0010|0020": "MRN-4711", "0010|0030": "19500101", "0008|0020": "20200315",
                "0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.9", "0020|000e": uid,
                "0008|0018": f"{uid}.{k + 1}", "0020|0013": str((k * 5) % n + 1),
                "0020|0032": "\\".join(f"{v:.6f}" for v in position),
                "0020|0037": "\\".join(f"{v:.6f}" for v in [*axes[:, 0], *axes[:, 1]]),
                "0028|1053": "2", "0028|1052": "-1024", "0008|103e": "synthetic"}
        for key, value in tags.items():
            image.SetMetaData(key, value)
        writer.SetFileName(str(folder / names[k]))
        with keep_locale():
            writer.Execute(image)
    return axes


@pytest.fixture
def values() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.integers(-500, 500, (5, 3, 4)) * 2).astype(np.int16)  # even: exact under slope 2


def test_synthetic_oblique_series_geometry_and_rescale(tmp_path, values):
    axes = write_series(tmp_path / "s", values)
    info = dicom_to_nifti(tmp_path / "s", tmp_path / "out.nii.gz")
    image = sitk.ReadImage(str(info.path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), values)
    np.testing.assert_allclose(image.GetSpacing(), (0.75, 0.5, 3.0), rtol=1e-6)  # PixelSpacing is row\column
    np.testing.assert_allclose(image.GetOrigin(), (10.0, -20.0, 5.0), atol=1e-5)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), axes, atol=1e-5)
    # the stored values really are (HU + 1024) / 2: the reader applied slope and intercept
    first = min(slice_positions(tmp_path / "s"), key=lambda fp: fp[1])[0]
    stored = np.frombuffer(Path(first).read_bytes()[-values[0].size * 2:], "<i2").reshape(values[0].shape)
    np.testing.assert_array_equal(stored * 2 - 1024, values[0])
    assert [float(v) for v in _tag(first, "0028|0030").split("\\")] == [0.5, 0.75]
    assert b"Doe^Jane" not in gzip.open(info.path).read() and b"MRN-4711" not in gzip.open(info.path).read()


def test_per_slice_fractional_rescale_is_not_truncated(tmp_path):
    # slice 0: slope 1 (an integer image on its own); slice 1: slope 0.5, value 100.5
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k, (value, slope) in enumerate([(100.0, "1"), (100.5, "0.5")]):
        image = sitk.GetImageFromArray(np.full((1, 2, 2), value, np.float32))
        for key, tag in {"0020|000e": "1.2.3", "0008|0018": f"1.2.3.{k}", "0020|0032": f"0\\0\\{k}",
                         "0020|0037": "1\\0\\0\\0\\1\\0", "0028|1053": slope, "0028|1052": "-1024",
                         "0008|0060": "CT", "0028|0100": "16", "0028|0101": "16", "0028|0102": "15",
                         "0028|0103": "1"}.items():
            image.SetMetaData(key, tag)
        writer.SetFileName(str(tmp_path / f"{k}.dcm"))
        with keep_locale():
            writer.Execute(image)
    values = sitk.GetArrayFromImage(read_dicom_series(tmp_path))
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values[:, 0, 0], [100.0, 100.5])


def test_synthetic_missing_slice_is_refused(tmp_path, values):
    write_series(tmp_path / "s", values, skip=(2,))
    with pytest.raises(DicomError, match="6 mm between"):
        dicom_to_nifti(tmp_path / "s", tmp_path / "out.nii.gz")


def test_several_series_need_a_choice(tmp_path, values):
    write_series(tmp_path / "s", values, uid="1.2.3.100")
    write_series(tmp_path / "s", values[:, ::-1] + 2, uid="1.2.3.200", names=[f"B{k}.dcm" for k in range(5)])
    with pytest.raises(DicomError, match="2 DICOM series") as exc:
        dicom_to_nifti(tmp_path / "s", tmp_path / "out.nii.gz")
    assert "1.2.3.100" in str(exc.value) and "1.2.3.200" in str(exc.value)
    image = read_dicom_series(tmp_path / "s", series_uid="1.2.3.200")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), values[:, ::-1] + 2)
    with pytest.raises(DicomError, match="1.2.3.999"):
        read_dicom_series(tmp_path / "s", series_uid="1.2.3.999")


def test_no_series_and_failed_conversion_keeps_earlier_output(tmp_path, values):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.nii.gz"
    out.write_bytes(b"earlier good result")
    with pytest.raises(DicomError, match="no DICOM series"):
        dicom_to_nifti(tmp_path / "empty", out)
    assert out.read_bytes() == b"earlier good result"


def test_import_dicom_study(tmp_path, values):
    src, study = tmp_path / "src", tmp_path / "study"
    for pid in ("P01", "P02"):
        for phase in ("AP", "PVP"):
            write_series(src / pid / phase, values + (2 if phase == "PVP" else 0))
    result = import_dicom_study(src, study)
    assert sorted(result) == ["P01", "P02"] and sorted(result["P02"]) == ["AP", "PVP"]
    path = study / "images" / "P02" / "PVP.nii.gz"
    assert result["P02"]["PVP"].path == path
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), values + 2)
    assert sorted(p.name for p in study.iterdir()) == ["images"]  # no staging folder left behind
    with pytest.raises(DicomError, match="already exists"):
        import_dicom_study(src, study)
    assert import_dicom_study(src, study, phases=["AP"], overwrite=True)["P01"].keys() == {"AP"}


def _expected_digest(folder: Path) -> str:
    lines = sorted(f"{p.name}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in folder.iterdir())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_conversion_records_provenance_without_header_fields(tmp_path, values):
    write_series(tmp_path / "s", values, uid="1.2.3.100")
    write_series(tmp_path / "s", values[:, ::-1] + 2, uid="1.2.3.200", names=[f"B{k}.dcm" for k in range(5)])
    info = dicom_to_nifti(tmp_path / "s", tmp_path / "out" / "PVP.nii.gz", series_uid="1.2.3.200")
    text = (tmp_path / "out" / "provenance.json").read_text()
    entry = read_provenance(tmp_path / "out")["PVP.nii.gz"]
    assert entry["sha256"] == hashlib.sha256(info.path.read_bytes()).hexdigest()
    # one digest over the names and bytes of the files of the chosen series (B0..B4), nothing else
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    for k in range(5):
        shutil.copy(tmp_path / "s" / f"B{k}.dcm", chosen / f"B{k}.dcm")
    assert entry["inputs"] == {"dicom_series": _expected_digest(chosen)}
    assert entry["settings"] == {"series_uid_given": True}
    assert all(word not in text for word in ("1.2.3.", "Doe^Jane", "MRN-4711", "19500101", "20200315", "B0.dcm"))


def test_import_records_one_provenance_file_for_the_images(tmp_path, values):
    src, study = tmp_path / "src", tmp_path / "study"
    for pid in ("P01", "P02"):
        for phase in ("AP", "PVP"):
            write_series(src / pid / phase, values + (2 if phase == "PVP" else 0))
    import_dicom_study(src, study)
    entries = read_provenance(study / "images")
    assert sorted(entries) == ["P01/AP.nii.gz", "P01/PVP.nii.gz", "P02/AP.nii.gz", "P02/PVP.nii.gz"]
    for name, entry in entries.items():
        pid, phase = name.removesuffix(".nii.gz").split("/")
        assert entry["sha256"] == hashlib.sha256((study / "images" / name).read_bytes()).hexdigest()
        assert entry["inputs"] == {"dicom_series": _expected_digest(src / pid / phase)}
        assert entry["settings"] == {"series_uid_given": False}
    assert not list(study.glob("images/*/provenance.json"))  # one file, not one per patient
    text = (study / "images" / "provenance.json").read_text()
    assert all(word not in text for word in ("1.2.826", "Doe^Jane", "MRN-4711", "IMG"))
    # a later import of one phase replaces only that phase's entries
    import_dicom_study(src, study, phases=["AP"], overwrite=True)
    assert sorted(read_provenance(study / "images")) == \
        sorted(entries)


def test_import_reports_every_failure_and_writes_nothing(tmp_path, values):
    src, study = tmp_path / "src", tmp_path / "study"
    write_series(src / "P01" / "AP", values)
    write_series(src / "P02" / "AP", values, skip=(1,))
    write_series(src / "P03" / "AP", values, uid="1.2.3.1")
    write_series(src / "P03" / "AP", values, uid="1.2.3.2", names=[f"B{k}.dcm" for k in range(5)])
    (src / "P04").mkdir()
    with pytest.raises(DicomError) as exc:
        import_dicom_study(src, study, phases=["AP"])
    message = str(exc.value)
    assert "3 problem(s)" in message
    assert "patient P02, phase AP" in message and "patient P03, phase AP" in message and "P04" in message
    assert not (study / "images").exists() and not study.exists()  # nor an empty folder this call made
    (study / "images" / "P01").mkdir(parents=True)  # folders that were there stay
    with pytest.raises(DicomError):
        import_dicom_study(src, study, phases=["AP"])
    assert sorted(p.name for p in (study / "images").iterdir()) == ["P01"]
    assert not any((study / "images" / "P01").iterdir())
    shutil.rmtree(src / "P02")
    shutil.rmtree(src / "P04")
    result = import_dicom_study(src, study, phases=["AP"], series_uids={("P03", "AP"): "1.2.3.2"})
    assert sorted(result) == ["P01", "P03"] and (study / "images" / "P03" / "AP.nii.gz").is_file()
