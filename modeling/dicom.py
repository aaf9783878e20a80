"""DICOM to the study layout: one series to one NIfTI volume, with its geometry and without its header.

:func:`dicom_to_nifti` converts one series; :func:`import_dicom_study` converts a folder
``<src>/<patient_id>/<PHASE>/`` of series into ``images/<patient_id>/<PHASE>.nii.gz`` of a study
folder (contract section 2). Masks are not part of the DICOM import.

Geometry comes from the headers, not from file names or InstanceNumber: slices are ordered by
the projection of ImagePositionPatient on the slice normal (the cross product of the two
ImageOrientationPatient cosines), the slice spacing is the distance between consecutive
positions, the origin is the first slice's position and the direction matrix has the row
cosine, the column cosine and the normal as its columns. A series whose positions are not
evenly spaced (missing slices, overlapping acquisitions) is refused rather than stretched onto
a wrong grid. Voxel values are stored values times RescaleSlope plus RescaleIntercept (HU for
CT), as GDCM applies them per slice.

No DICOM header field reaches the output: the volume is rebuilt from its voxels and geometry
alone, so the NIfTI header carries no name, id, date or UID; its provenance record holds only
a digest of the DICOM files' names and bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import locale
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from dlr.core.errors import InputError
from dlr.core.output import file_sha256, provenance, record_provenance, staged_file

#: relative tolerance on the spacing between consecutive slices (a fraction of the spacing)
SLICE_SPACING_RTOL = 1e-2
#: absolute tolerance on the orientation cosines of the slices of one series
ORIENTATION_ATOL = 1e-4

_POSITION, _ORIENTATION, _UID, _DESCRIPTION = "0020|0032", "0020|0037", "0020|000e", "0008|103e"


class DicomError(InputError):
    """A DICOM folder that cannot be converted; the message names the folder and the fix."""


@dataclass(frozen=True)
class ImageInfo:
    """The volume written by :func:`dicom_to_nifti`.

    Attributes
    ----------
    path : Path
        The NIfTI file.
    size : tuple of int
        Voxels along x (columns), y (rows) and z (slices).
    spacing : tuple of float
        Column spacing, row spacing (PixelSpacing) and slice spacing from the positions, in mm.
    origin : tuple of float
        Position of the first voxel (the first slice's ImagePositionPatient), in mm (LPS).
    direction : tuple of float
        The 3 x 3 direction matrix, row-major, whose columns are the row cosine, the column
        cosine and the slice normal.
    minimum, maximum : float
        Range of the voxel values after rescaling (HU for CT).
    n_files : int
        DICOM files of the series.
    """

    path: Path
    size: tuple
    spacing: tuple
    origin: tuple
    direction: tuple
    minimum: float
    maximum: float
    n_files: int


def _series_ids(series_dir: Path) -> tuple:
    import SimpleITK as sitk

    return tuple(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(series_dir)))


def _header(path: str):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.LoadPrivateTagsOff()
    reader.ReadImageInformation()
    return reader


def _floats(reader, key: str, n: int, path: str, series_dir: Path) -> np.ndarray:
    text = reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""
    try:
        values = np.array([float(v) for v in text.split("\\")])
    except ValueError:
        values = np.array([])
    if values.size != n or not np.all(np.isfinite(values)):
        name = {_POSITION: "ImagePositionPatient", _ORIENTATION: "ImageOrientationPatient"}[key]
        raise DicomError(f"{series_dir}: {Path(path).name} has no valid {name} ({key.replace('|', ',')}): "
                         f"{text!r}; the geometry of the series cannot be known; re-export the series from the "
                         "scanner or PACS with its full headers")
    return values


def _choose_series(series_dir: Path, series_uid: Optional[str]) -> str:
    import SimpleITK as sitk

    ids = _series_ids(series_dir)
    if not ids:
        raise DicomError(f"{series_dir}: no DICOM series found; give the folder that holds the .dcm files of one "
                         "series")
    if series_uid is not None:
        if series_uid not in ids:
            raise DicomError(f"{series_dir}: no series with SeriesInstanceUID {series_uid}; the folder holds "
                             f"{', '.join(ids)}")
        return series_uid
    if len(ids) == 1:
        return ids[0]
    described = []
    for uid in ids:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir), uid)
        reader = _header(files[0])
        description = reader.GetMetaData(_DESCRIPTION).strip() if reader.HasMetaDataKey(_DESCRIPTION) else ""
        described.append(f"{uid} ({len(files)} files{', ' + repr(description) if description else ''})")
    raise DicomError(f"{series_dir}: {len(ids)} DICOM series in one folder: {'; '.join(described)}; choose one "
                     "with series_uid (`--series-uid`) or keep one series per folder")


def _sorted_slices(series_dir: Path, files) -> tuple:
    """Files ordered along the slice normal, with the row/column cosines, normal and positions."""
    rows = []
    orientation = None
    for path in files:
        reader = _header(path)
        size = reader.GetSize()
        if len(size) == 3 and size[2] != 1:
            raise DicomError(f"{series_dir}: {Path(path).name} holds {size[2]} frames; multi-frame (enhanced) "
                             "DICOM is not supported; export the series as one file per slice")
        iop = _floats(reader, _ORIENTATION, 6, path, series_dir)
        if orientation is None:
            orientation = iop
        elif not np.allclose(iop, orientation, atol=ORIENTATION_ATOL, rtol=0):
            raise DicomError(f"{series_dir}: the slices have different orientations ({Path(path).name}: "
                             f"{tuple(iop)} vs {tuple(orientation)}); the folder mixes acquisitions: keep one "
                             "series per folder")
        rows.append((path, _floats(reader, _POSITION, 3, path, series_dir), size, _rescale(reader)))
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    rows.sort(key=lambda r: float(r[1] @ normal))
    if len({r[2][:2] for r in rows}) > 1:
        raise DicomError(f"{series_dir}: the slices have different sizes {sorted({r[2][:2] for r in rows})}; "
                         "keep one series per folder")
    positions = np.array([r[1] for r in rows])
    integral = all(float(v).is_integer() for r in rows for v in r[3])
    return [r[0] for r in rows], row_cosine, column_cosine, normal, positions, integral


def _rescale(reader) -> tuple:
    """(RescaleSlope, RescaleIntercept) of one file, (1, 0) where absent or unreadable."""
    values = []
    for key, default in (("0028|1053", 1.0), ("0028|1052", 0.0)):
        try:
            values.append(float(reader.GetMetaData(key).strip()) if reader.HasMetaDataKey(key) else default)
        except ValueError:
            values.append(default)
    return tuple(values)


def _slice_spacing(series_dir: Path, positions: np.ndarray, normal: np.ndarray) -> float:
    if len(positions) < 2:
        raise DicomError(f"{series_dir}: the series has one slice; a 3D volume needs at least two")
    along = positions @ normal
    steps = np.diff(along)
    if np.any(steps < 1e-6):
        i = int(np.argmin(steps))
        raise DicomError(f"{series_dir}: two slices at the same position ({along[i]:.3f} mm along the normal); "
                         "the folder holds repeated or overlapping acquisitions: keep one series per folder")
    spacing = float(steps.min())
    uneven = np.flatnonzero(np.abs(steps - spacing) > SLICE_SPACING_RTOL * spacing)
    if uneven.size:
        shown = ", ".join(f"{steps[i]:g} mm between {along[i]:g} and {along[i + 1]:g}" for i in uneven[:5])
        more = f" and {uneven.size - 5} more" if uneven.size > 5 else ""
        raise DicomError(f"{series_dir}: slices are not evenly spaced (smallest step {spacing:g} mm; gaps of "
                         f"{shown}{more}): the series is missing slices or mixes acquisitions; convert the "
                         "complete series")
    # in-plane offsets of consecutive positions must be ~0 (no gantry tilt / shear)
    offsets = np.diff(positions, axis=0) - np.outer(steps, normal)
    if np.max(np.abs(offsets)) > SLICE_SPACING_RTOL * spacing:
        raise DicomError(f"{series_dir}: the slice positions are not along the slice normal (gantry tilt or "
                         "sheared acquisition); resample the series to an orthogonal grid first")
    return (along[-1] - along[0]) / (len(along) - 1)


def slice_positions(series_dir, *, series_uid: Optional[str] = None) -> list[tuple[str, float]]:
    """The files of one series in slice order, each with its position along the slice normal (mm).

    The order used by :func:`dicom_to_nifti`: ascending projection of ImagePositionPatient on
    the normal (row cosine x column cosine), whatever the file names or InstanceNumbers.
    """
    import SimpleITK as sitk

    series_dir = Path(series_dir)
    uid = _choose_series(series_dir, series_uid)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir), uid)
    files, _, _, normal, positions, _ = _sorted_slices(series_dir, files)
    return [(f, float(p @ normal)) for f, p in zip(files, positions)]


def read_dicom_series(series_dir, *, series_uid: Optional[str] = None):
    """One DICOM series as a SimpleITK image with the geometry of its headers and no metadata.

    Parameters
    ----------
    series_dir : str or Path
        Folder holding the series' files (any names, any order).
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series.

    Returns
    -------
    SimpleITK.Image
        Rescaled values (int16 when they fit; float32 when a slice has a fractional
        RescaleSlope or RescaleIntercept; else int32), spacing, origin and direction as
        described in the module notes, and an empty metadata dictionary.

    Raises
    ------
    DicomError
        No series, several series and no ``series_uid``, missing geometry tags, multi-frame
        files, mixed orientations or sizes, repeated positions, uneven slice spacing.
    """
    return _read(Path(series_dir), series_uid)[0]


def _read(series_dir: Path, series_uid: Optional[str]):
    """(image, the series' files in slice order) of one series."""
    import SimpleITK as sitk

    if not series_dir.is_dir():
        raise DicomError(f"{series_dir}: no such folder")
    uid = _choose_series(series_dir, series_uid)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir), uid)
    files, row_cosine, column_cosine, normal, positions, integral = _sorted_slices(series_dir, files)
    slice_spacing = _slice_spacing(series_dir, positions, normal)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    if not integral:
        # the output type follows the first slice: a later slice with a fractional slope or
        # intercept would be truncated to integers unless the output is floating point
        reader.SetOutputPixelType(sitk.sitkFloat32)
    saved_locale = locale.setlocale(locale.LC_ALL)
    try:
        volume = reader.Execute()
    except RuntimeError as exc:
        raise DicomError(f"{series_dir}: the series could not be read ({str(exc).strip().splitlines()[-1]})") from None
    finally:
        locale.setlocale(locale.LC_ALL, saved_locale)  # GDCM can leave the process in the C locale
    pixel_spacing = volume.GetSpacing()[:2]
    values = sitk.GetArrayFromImage(volume)  # (z, y, x), rescaled by GDCM
    if np.issubdtype(values.dtype, np.integer) and values.size and \
            np.iinfo(np.int16).min <= values.min() and values.max() <= np.iinfo(np.int16).max:
        values = values.astype(np.int16)
    elif not np.issubdtype(values.dtype, np.integer):
        values = values.astype(np.float32)
    clean = sitk.GetImageFromArray(values)  # a new image: no DICOM metadata travels with it
    clean.SetSpacing((float(pixel_spacing[0]), float(pixel_spacing[1]), float(slice_spacing)))
    clean.SetOrigin(tuple(float(v) for v in positions[0]))
    clean.SetDirection(tuple(float(v) for v in np.column_stack([row_cosine, column_cosine, normal]).ravel()))
    return clean, list(files)


def _write_image(image, path: Path) -> None:
    import SimpleITK as sitk

    sitk.WriteImage(image, str(path), True)


def series_digest(series_dir, files) -> str:
    """One SHA-256 over the DICOM files read: their names relative to ``series_dir``, sorted,
    each with the SHA-256 of its bytes. Names and hashes only: no header field."""
    lines = sorted(f"{Path(os.path.relpath(f, series_dir)).as_posix()}\t{file_sha256(f)}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _provenance(series_dir: Path, files, series_uid: Optional[str], base: Optional[dict] = None) -> dict:
    """The provenance of one converted volume; ``base``: a :func:`dlr.core.output.provenance` record
    whose versions and git commit are reused (one per import, not one per volume)."""
    # the chosen SeriesInstanceUID is a header field: only whether one was given is recorded
    # (the digest of the files read already says which series it was)
    inputs = {"dicom_series": series_digest(series_dir, files)}
    settings = {"series_uid_given": series_uid is not None}
    if base is None:
        return provenance(inputs=inputs, settings=settings)
    return {**base, "inputs": inputs, "settings": settings}


def _info(image, path: Path, n_files: int) -> ImageInfo:
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)
    return ImageInfo(path=path, size=tuple(image.GetSize()), spacing=tuple(image.GetSpacing()),
                     origin=tuple(image.GetOrigin()), direction=tuple(image.GetDirection()),
                     minimum=float(values.min()), maximum=float(values.max()), n_files=n_files)


def dicom_to_nifti(series_dir, out_file, *, series_uid: Optional[str] = None) -> ImageInfo:
    """Convert one DICOM series to a NIfTI volume with its geometry and without its header.

    Parameters
    ----------
    series_dir : str or Path
        Folder holding the series' files (any names, any order).
    out_file : str or Path
        The NIfTI file to write (``.nii.gz``); written to a temporary name and moved into place
        when complete.
    series_uid : str, optional
        SeriesInstanceUID to convert when the folder holds several series; without it such a
        folder is an error naming the UIDs.

    Returns
    -------
    ImageInfo

    Notes
    -----
    Slice order, spacing, origin and direction come from ImagePositionPatient and
    ImageOrientationPatient (module notes); voxel values are rescaled (``stored * slope +
    intercept``) by GDCM. The written volume is rebuilt from voxels and geometry, so no DICOM
    field (patient name, id, dates, UIDs) is in the NIfTI header.

    ``provenance.json`` beside ``out_file`` gets its entry (:mod:`dlr.core.output`): as input one
    digest of the files read (:func:`series_digest`: their names relative to ``series_dir``
    and their SHA-256s), as setting whether a ``series_uid`` was given. No header field (not
    the UID either) is recorded.
    """
    out_file, series_dir = Path(out_file), Path(series_dir)
    image, files = _read(series_dir, series_uid)
    with staged_file(out_file) as tmp:
        _write_image(image, tmp)
    record_provenance(out_file.parent, [out_file.name], _provenance(series_dir, files, series_uid))
    return _info(image, out_file, len(files))


def import_dicom_study(src, study_dir, *, phases=None, series_uids: Optional[Mapping] = None,
                       overwrite: bool = False) -> dict:
    """Convert ``<src>/<patient_id>/<PHASE>/`` DICOM series into ``<study_dir>/images/<patient_id>/<PHASE>.nii.gz``.

    Parameters
    ----------
    src : str or Path
        Folder with one sub-folder per patient, each with one sub-folder per phase holding one
        DICOM series.
    study_dir : str or Path
        The study folder; its ``images/`` is written (study.yaml, clinical.csv and masks are
        the user's).
    phases : sequence of str, optional
        Phases to import (e.g. ``["AP", "PVP", "DP"]``); each must be present for every patient.
        Default: every phase folder found.
    series_uids : mapping (patient_id, phase) -> str, optional
        The SeriesInstanceUID to take where a phase folder holds several series.
    overwrite : bool, default False
        Replace images that already exist; without it they are an error.

    Returns
    -------
    dict
        patient_id -> phase -> :class:`ImageInfo`.

    Raises
    ------
    DicomError
        Listing every folder that could not be converted (all are tried). Nothing is written
        to ``images/`` unless every series converts (each volume is written under a hidden
        temporary name beside its final one, and all are renamed only at the end; on a failure
        they are removed, with the folders this call created).

    Notes
    -----
    ``images/provenance.json`` gets one entry per volume written (``P001/AP.nii.gz``), as
    :func:`dicom_to_nifti` records it.
    """
    src, study_dir = Path(src), Path(study_dir)
    if not src.is_dir():
        raise DicomError(f"{src}: no such folder; give the folder holding <patient_id>/<PHASE>/ DICOM series")
    series_uids = dict(series_uids or {})
    jobs, errors = [], []
    patients = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not patients:
        errors.append(f"{src}: no patient folders; the layout is <src>/<patient_id>/<PHASE>/*.dcm")
    for patient in patients:
        found = {p.name: p for p in patient.iterdir() if p.is_dir() and not p.name.startswith(".")}
        wanted = list(phases) if phases is not None else sorted(found)
        if not wanted:
            errors.append(f"{patient}: no phase folders; the layout is <src>/<patient_id>/<PHASE>/*.dcm")
        for phase in wanted:
            if phase not in found:
                errors.append(f"{patient / phase}: no such folder (patient {patient.name}, phase {phase}); "
                              f"the patient's folders are {sorted(found)}")
                continue
            out_file = study_dir / "images" / patient.name / f"{phase}.nii.gz"
            if out_file.exists() and not overwrite:
                errors.append(f"{out_file}: already exists; pass overwrite to replace it")
                continue
            jobs.append((patient.name, phase, found[phase], out_file))
    images = study_dir / "images"
    # folders this call creates, removed again when it fails (nothing is left in images/)
    created = [d for d in (study_dir, images, *dict.fromkeys(out.parent for *_, out in jobs)) if not d.exists()]
    results: dict = {}
    records: dict = {}
    base = provenance()
    try:
        with contextlib.ExitStack() as stack:
            # each volume goes to a temporary name beside its final one; the renames happen
            # only when the stack closes, after every series has converted
            for pid, phase, folder, out_file in jobs:
                tmp = stack.enter_context(staged_file(out_file))
                uid = series_uids.get((pid, phase))
                try:
                    image, files = _read(folder, uid)
                    if not errors:  # after a failure the others are only checked, not written
                        _write_image(image, tmp)
                except DicomError as exc:
                    errors.append(f"patient {pid}, phase {phase}: {exc}")
                    continue
                results.setdefault(pid, {})[phase] = _info(image, out_file, len(files))
                records[out_file.relative_to(images).as_posix()] = _provenance(folder, files, uid, base)
            if errors:
                raise DicomError(f"{len(errors)} problem(s) importing {src}:\n" + "\n".join(f"  {e}" for e in errors))
    except BaseException:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise
    # one provenance.json for the whole images/ folder, one entry per volume (P001/AP.nii.gz)
    for name, info in records.items():
        record_provenance(images, [name], info)
    return results
