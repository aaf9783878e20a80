"""Image preprocessing before feature extraction: resampling to 1 mm, intensity normalisation,
and the checks that the mask still lies on the tumour afterwards.

The seed paper (Zhao et al. 2024, "Image segmentation and preprocessing") resampled every phase
to 1 x 1 x 1 mm by linear interpolation "to standardize the voxel spacing" and normalised
intensities "to correct the scanner effect". This module does both with SimpleITK, one phase
at a time, each phase with its own mask (phases may lie on different grids, as MR, CT and PET
do):

0. An image read from a file must have no NaN or infinite voxel (:mod:`dlr.modeling.nifti`:
   SimpleITK would read them as 0, which would enter the normalisation and the features); an
   in-memory image is checked the same way.
1. The mask is reduced to the tumour label (1, or study.yaml's ``mask_label``) on its own grid;
   it must hold at least ``min_voxels`` voxels there (a mask of a voxel or two has no texture
   to measure). Every other label is background from here on: the mask handed to PyRadiomics
   is binary, 1 = tumour, so PyRadiomics' ``label: 1`` setting stays right whatever the label
   in the study's masks.
2. Normalisation statistics come from the **whole image** on its native grid, as PyRadiomics'
   ``normalize`` setting does: ``x' = scale * (x - mean) / sd``, optionally clipped at
   ``clip_sd`` standard deviations. MR intensities have no absolute unit and differ between
   scanners and field strengths by a gain; a per-image z-score removes that gain and offset
   without using any other patient (so it cannot leak between cohorts). The default scale 100
   with ``binWidth: 5`` in the shipped PyRadiomics parameters gives a few tens of grey levels
   inside a tumour.
3. The output grid keeps the image's orientation, has ``spacing`` (1 mm) voxels and covers the
   tumour's bounding box plus ``margin_mm`` on every side (clipped to the image), so that the
   wavelet and LoG filters see real anatomy around the tumour and the filters run on a small
   volume (PyRadiomics filters whatever volume it is given before cropping to the mask).
4. The image is resampled with linear interpolation, the mask with nearest neighbour, onto that
   same grid, so image and mask share size, spacing, origin and direction by construction.
5. Alignment checks: the resampled mask is not empty, its physical centroid is within one
   native voxel (the largest native spacing) of the native mask's centroid, and its volume is
   within ``volume_tolerance`` (relative) of the native volume. Each failure is a
   :class:`PreprocessError` naming the quantity.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

TUMOUR_LABEL = 1


class PreprocessError(ValueError):
    """One image/mask pair cannot be preprocessed (empty or tiny mask, misaligned, flat image)."""


@dataclass(frozen=True)
class PreprocessSettings:
    """How each phase is prepared for PyRadiomics (study.yaml ``preprocessing:`` overrides these).

    Attributes
    ----------
    spacing : tuple of 3 floats
        Output voxel size in mm (x, y, z); the paper's 1 x 1 x 1 mm.
    normalization : {"zscore", "none"}
        Whole-image z-score (default) or none (CT in Hounsfield units may prefer none).
    scale : float
        Multiplier after the z-score (PyRadiomics' ``normalizeScale``).
    clip_sd : float or None
        Clip normalised values beyond this many SDs (PyRadiomics' ``removeOutliers``); None = no clip.
    margin_mm : float
        Anatomy kept around the tumour's bounding box, in mm.
    min_voxels : int
        Fewest tumour voxels accepted on the native grid.
    volume_tolerance : float
        Largest accepted relative change of the tumour volume through resampling.
    """

    spacing: tuple = (1.0, 1.0, 1.0)
    normalization: str = "zscore"
    scale: float = 100.0
    clip_sd: float | None = None
    margin_mm: float = 10.0
    min_voxels: int = 10
    volume_tolerance: float = 0.25

    def __post_init__(self):
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"preprocessing spacing must be three positive numbers (mm), got {self.spacing!r}")
        object.__setattr__(self, "spacing", spacing)
        if self.normalization not in ("zscore", "none"):
            raise ValueError(f"preprocessing normalization must be 'zscore' or 'none', got {self.normalization!r}")
        if self.margin_mm < 0 or self.min_voxels < 1 or not 0 < self.volume_tolerance < 1:
            raise ValueError("preprocessing: margin_mm >= 0, min_voxels >= 1 and 0 < volume_tolerance < 1 are "
                             f"required, got {self.margin_mm}, {self.min_voxels}, {self.volume_tolerance}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AlignmentCheck:
    """What resampling did to the tumour mask.

    Attributes
    ----------
    native_voxels, resampled_voxels : int
        Tumour voxels before and after.
    native_volume_mm3, resampled_volume_mm3 : float
    volume_change : float
        resampled / native - 1.
    centroid_shift_mm : float
        Distance between the physical centroids of the native and the resampled mask.
    max_native_spacing_mm : float
        The tolerance of the centroid check.
    image_mean, image_sd : float
        The whole-image normalisation statistics (native grid).
    grid_size : tuple
        Size (x, y, z) of the output grid.
    """

    native_voxels: int
    resampled_voxels: int
    native_volume_mm3: float
    resampled_volume_mm3: float
    volume_change: float
    centroid_shift_mm: float
    max_native_spacing_mm: float
    image_mean: float
    image_sd: float
    grid_size: tuple = field(default=())

    def to_frame(self) -> pd.DataFrame:
        row = asdict(self)
        row["grid_size"] = "x".join(str(s) for s in self.grid_size)
        return pd.DataFrame([row])


@dataclass(frozen=True)
class Preprocessed:
    """A phase ready for PyRadiomics: ``image`` (float32) and ``mask`` (uint8, 1 = tumour) on one grid."""

    image: object
    mask: object
    check: AlignmentCheck


def _tumour_points(mask, label: int = TUMOUR_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n, 3) in x, y, z order, physical points (n, 3)) of the voxels of ``label`` in a mask."""
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(mask)
    zyx = np.argwhere(array == label)
    index = zyx[:, ::-1].astype(float)
    direction = np.asarray(mask.GetDirection(), dtype=float).reshape(3, 3)
    points = np.asarray(mask.GetOrigin()) + (index * np.asarray(mask.GetSpacing())) @ direction.T
    return index, points


def _output_grid(image, mask, index: np.ndarray, settings: PreprocessSettings):
    """Origin, size and direction of the 1 mm grid around the tumour, in the image's orientation."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    m_dir = np.asarray(mask.GetDirection(), dtype=float).reshape(3, 3)
    m_spacing = np.asarray(mask.GetSpacing())
    lo, hi = index.min(axis=0) - 0.5, index.max(axis=0) + 0.5
    corners = np.array([[(lo, hi)[b >> k & 1][k] for k in range(3)] for b in range(8)])
    physical = np.asarray(mask.GetOrigin()) + (corners * m_spacing) @ m_dir.T
    origin = np.asarray(image.GetOrigin())
    local = (physical - origin) @ direction  # coordinates along the image's axes
    i_spacing = np.asarray(image.GetSpacing())
    extent_lo = -0.5 * i_spacing
    extent_hi = (np.asarray(image.GetSize()) - 0.5) * i_spacing
    tol = 0.5 * i_spacing
    if np.any(local.min(axis=0) < extent_lo - tol) or np.any(local.max(axis=0) > extent_hi + tol):
        raise PreprocessError("the tumour mask extends outside its image (image and mask are not aligned)")
    out_lo = np.maximum(local.min(axis=0) - settings.margin_mm, extent_lo)
    out_hi = np.minimum(local.max(axis=0) + settings.margin_mm, extent_hi)
    spacing = np.asarray(settings.spacing)
    size = np.maximum(np.ceil((out_hi - out_lo) / spacing - 1e-6).astype(int), 1)
    # voxel centres sit half a voxel inside the box
    out_origin = origin + direction @ (out_lo + 0.5 * spacing)
    return tuple(float(v) for v in out_origin), tuple(int(s) for s in size), tuple(direction.ravel())


def preprocess_phase(image, mask, settings: PreprocessSettings | None = None, *,
                     label: int = TUMOUR_LABEL) -> Preprocessed:
    """Resample one phase and its tumour mask to the 1 mm grid and normalise its intensities.

    Parameters
    ----------
    image, mask : SimpleITK.Image or path
        The phase image and its tumour mask (``label`` = tumour; other labels are ignored). The
        mask may lie on another grid than the image, provided it lies inside it.
    settings : PreprocessSettings, optional
    label : int, default 1
        The tumour's label in ``mask`` (study.yaml ``mask_label``); the returned mask is
        binary (1 = tumour) whatever it is.

    Returns
    -------
    Preprocessed

    Raises
    ------
    PreprocessError
        NaN or infinite voxels in the image, tumour smaller than ``min_voxels``, mask outside
        the image, a flat image, or a failed alignment check; the message names the quantity
        and its value.
    """
    import SimpleITK as sitk

    from ..nifti import NonFinite, nonfinite_voxels

    settings = settings or PreprocessSettings()
    if not isinstance(image, sitk.Image):
        bad = nonfinite_voxels(image)  # before SimpleITK, which reads them as 0
        if bad is not None and bad.count:
            raise PreprocessError(f"{bad.describe()} in the image {image}; replace them with real intensities "
                                  "(e.g. the background value) and extract again (`dlr validate` lists them all)")
        image = sitk.ReadImage(str(image))
    if not isinstance(mask, sitk.Image):
        mask = sitk.ReadImage(str(mask))
    if image.GetDimension() != 3 or mask.GetDimension() != 3:
        raise PreprocessError(f"expected 3D image and mask, got {image.GetDimension()}D and {mask.GetDimension()}D")
    image = sitk.Cast(image, sitk.sitkFloat32)
    values = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(values).all():  # an image built in memory
        bad = NonFinite(int(np.isnan(values).sum()), int(np.isinf(values).sum()), int(values.size))
        raise PreprocessError(f"{bad.describe()} in the image; replace them with real intensities "
                              "(e.g. the background value)")
    index, points = _tumour_points(mask, label)
    n_native = len(index)
    if n_native < settings.min_voxels:
        raise PreprocessError(f"the tumour mask has {n_native} voxel(s) with label {label} on its native grid "
                              f"(at least {settings.min_voxels} are needed for texture features)")
    mean = float(np.mean(values, dtype=np.float64))
    sd = float(np.std(values, dtype=np.float64))
    if not np.isfinite(mean) or not np.isfinite(sd) or sd == 0:
        raise PreprocessError(f"the image is flat or not finite (mean {mean}, SD {sd}); it cannot be normalised")

    origin, size, direction = _output_grid(image, mask, index, settings)
    reference = sitk.Image(size, sitk.sitkUInt8)
    reference.SetSpacing(settings.spacing)
    reference.SetOrigin(origin)
    reference.SetDirection(direction)
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, mean, sitk.sitkFloat32)
    tumour = sitk.Cast(sitk.BinaryThreshold(mask, label, label, TUMOUR_LABEL, 0), sitk.sitkUInt8)
    new_mask = sitk.Resample(tumour, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)

    if settings.normalization == "zscore":
        array = (sitk.GetArrayFromImage(resampled).astype(np.float64) - mean) / sd
        if settings.clip_sd is not None:
            array = np.clip(array, -settings.clip_sd, settings.clip_sd)
        normalised = sitk.GetImageFromArray((settings.scale * array).astype(np.float32))
        normalised.CopyInformation(resampled)
        resampled = normalised

    new_index, new_points = _tumour_points(new_mask)  # binary now: 1 = tumour
    n_new = len(new_index)
    native_volume = n_native * float(np.prod(mask.GetSpacing()))
    new_volume = n_new * float(np.prod(settings.spacing))
    max_spacing = float(max(mask.GetSpacing()))
    if n_new == 0:
        raise PreprocessError("the tumour mask is empty after resampling to "
                              f"{'x'.join(f'{s:g}' for s in settings.spacing)} mm")
    shift = float(np.linalg.norm(new_points.mean(axis=0) - points.mean(axis=0)))
    change = new_volume / native_volume - 1.0
    check = AlignmentCheck(n_native, n_new, native_volume, new_volume, change, shift, max_spacing, mean, sd, size)
    if shift > max_spacing:
        raise PreprocessError(f"resampling moved the tumour centroid by {shift:.2f} mm (more than one native voxel, "
                              f"{max_spacing:g} mm): image and mask no longer align")
    if abs(change) > settings.volume_tolerance:
        raise PreprocessError(f"resampling changed the tumour volume by {100 * change:+.1f}% "
                              f"({native_volume:.1f} -> {new_volume:.1f} mm3; tolerance "
                              f"{100 * settings.volume_tolerance:.0f}%)")
    return Preprocessed(resampled, new_mask, check)
