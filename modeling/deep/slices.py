"""The networks' input: per phase, three consecutive axial slices around the tumour's largest
cross-section, cut as a square of a fixed field of view in mm centred on the tumour (resampled
only where the voxels are not the target size) and divided by the liver background around the
tumour (methods.md G; :func:`phase_slices`). A fixed field of view keeps the tumour's size and
its texture's scale, which resizing every tumour's box to one side (the paper's crop, still
available as ``fov_mm: 0``) discards; dividing by the background keeps the tumour's contrast and
heterogeneity relative to the liver, which z-scoring the crop mixes with how much liver it holds.

Later phases are registered rigidly to the first (ANTsPy ``QuickRigid``, as the paper did:
"PVP and DP registered to AP"); each registered mask is carried by the same transform
(nearest neighbour), and the transform is saved as
``RUN/deep/transforms/<patient_id>/<PHASE>_to_<FIRST>.mat`` beside the slices.

Every patient's slices are cached in ``RUN/deep/slices/<patient_id>.npz`` under a key hashing
the bytes of its images and masks and the settings that shape the slices, so a rerun
recomputes only a patient whose files or settings changed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from dlr.core.errors import InputError
from dlr.core.parallel import process_pool
from dlr.core.run_folder import patient_path
from dlr.core.output import file_sha256

from .settings import DeepSettings

logger = logging.getLogger(__name__)

# one ITK thread: registration is then reproducible to the byte (and cases run in processes)
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")

SLICES_DIR = Path("deep") / "slices"
TRANSFORMS_DIR = Path("deep") / "transforms"
#: bumped when the slices' computation changes, so old caches are not reused
SLICES_VERSION = 2


class SliceError(InputError):
    """A case whose slices cannot be made (no tumour voxel, unreadable file)."""


@dataclass(frozen=True)
class CaseSlices:
    """One patient's network input."""

    patient_id: str
    image: np.ndarray     # float32 (n_phases, n_slices, size, size), z-scored per phase
    mask: np.ndarray      # uint8, the same shape: the tumour in the crop
    slice_index: tuple    # per phase, the largest cross-section's axial index (after registration)
    crop: tuple           # per phase, (row0, col0, side) in voxels of the first phase's grid


def _read(path: Path):
    import ants

    try:
        return ants.image_read(str(path))
    except Exception as exc:  # ANTs raises bare exceptions for unreadable files
        raise SliceError(f"{path}: cannot be read ({exc})") from None


def register_rigid(fixed, moving, *, seed: int):
    """``moving`` registered rigidly onto ``fixed`` (ANTsPy QuickRigid): (warped image, transform
    file list for :func:`ants.apply_transforms`)."""
    import ants

    # QuickRigid samples the metric randomly; ANTs takes its seed from ANTS_RANDOM_SEED (the
    # random_seed argument alone leaves reruns differing), so it is set for the call
    previous = os.environ.get("ANTS_RANDOM_SEED")
    os.environ["ANTS_RANDOM_SEED"] = str(int(seed))
    try:
        reg = ants.registration(fixed=fixed, moving=moving, type_of_transform="QuickRigid", random_seed=int(seed))
    finally:
        if previous is None:
            os.environ.pop("ANTS_RANDOM_SEED", None)
        else:
            os.environ["ANTS_RANDOM_SEED"] = previous
    return reg["warpedmovout"], reg["fwdtransforms"]


def largest_cross_section(mask: np.ndarray) -> int:
    """The axial index (last axis, ANTs' x, y, z order) with the most tumour voxels; the first on ties."""
    areas = mask.reshape(-1, mask.shape[-1]).sum(axis=0)
    if areas.max() == 0:
        raise SliceError("the mask has no tumour voxel")
    return int(np.argmax(areas))


def slice_window(center: int, n_total: int, n: int) -> list[int]:
    """``n`` consecutive indices around ``center`` inside ``0..n_total-1`` (edges repeated when the
    volume has fewer than ``n`` slices)."""
    if n_total >= n:
        start = min(max(center - n // 2, 0), n_total - n)
        return list(range(start, start + n))
    return [min(max(center - n // 2 + k, 0), n_total - 1) for k in range(n)]


def crop_box(mask2d: np.ndarray, *, margin: float, min_side: int) -> tuple[int, int, int]:
    """A square (row0, col0, side) around the tumour voxels of ``mask2d`` grown by ``margin`` of
    its larger extent on each side, at least ``min_side``."""
    rows, cols = np.nonzero(mask2d)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(int(np.ceil(max(r1 - r0, c1 - c0) * (1 + 2 * margin))), int(min_side))
    center_r, center_c = (r0 + r1) / 2, (c0 + c1) / 2
    return int(np.floor(center_r - side / 2)), int(np.floor(center_c - side / 2)), side


def _resize(stack: np.ndarray, size: int, *, nearest: bool) -> np.ndarray:
    """(slices, h, w) -> (slices, size, size); the stack unchanged where it already has that size
    (no interpolation: a crop at the volume's own resolution keeps its texture as acquired)."""
    import torch
    import torch.nn.functional as F

    if stack.shape[1] == size and stack.shape[2] == size:
        return np.ascontiguousarray(stack, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[None]
    if nearest:
        return F.interpolate(t, size=(size, size), mode="nearest")[0].numpy()
    shrink = stack.shape[1] > size or stack.shape[2] > size
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)[0].numpy()


def background_level(image2d: np.ndarray, mask2d: np.ndarray, spacing: tuple, ring_mm: tuple) -> float:
    """The median intensity of the ring ``ring_mm`` = (inner, outer) mm outside the tumour of
    ``mask2d`` on ``image2d`` (the liver around the tumour), the median of everything outside
    the tumour when the ring is empty or not positive."""
    from scipy.ndimage import distance_transform_edt

    outside = ~(mask2d > 0)
    distance = distance_transform_edt(outside, sampling=spacing)
    ring = outside & (distance > ring_mm[0]) & (distance <= ring_mm[1])
    level = float(np.median(image2d[ring])) if ring.any() else float("nan")
    if not np.isfinite(level) or level <= 0:
        level = float(np.median(image2d[outside])) if outside.any() else float("nan")
    return level


def _square_box(mask2d: np.ndarray, side: tuple[int, int]) -> tuple[int, int, int, int]:
    """(row0, col0, rows, cols) of a box of ``side`` voxels centred on the tumour's bounding box."""
    rows, cols = np.nonzero(mask2d)
    centre_r, centre_c = (rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2
    return (int(np.floor(centre_r - side[0] / 2)), int(np.floor(centre_c - side[1] / 2)), int(side[0]),
            int(side[1]))


def _cut_box(volume: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    """The box (row0, col0, rows, cols) of every slice of ``volume`` (slices first), padded with
    ``fill`` outside the volume."""
    r0, c0, nr, nc = box
    out = np.full((volume.shape[0], nr, nc), fill, dtype=volume.dtype)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + nr, volume.shape[1]), min(c0 + nc, volume.shape[2])
    if re > rs and ce > cs:
        out[:, rs - r0:re - r0, cs - c0:ce - c0] = volume[:, rs:re, cs:ce]
    return out


def phase_slices(image: np.ndarray, mask: np.ndarray, settings: DeepSettings,
                 spacing: tuple = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray, int, tuple]:
    """One phase (arrays in x, y, z order, in-plane ``spacing`` in mm): its slices (n_slices,
    size, size), the crop's mask, the largest cross-section's index and the crop box
    (row0, col0, side in voxels).

    With ``settings.fov_mm`` > 0 the crop is a square of that many mm centred on the tumour, the
    same physical field for every tumour (the tumour's size and the texture's scale are kept),
    resampled to ``image_size`` pixels only where the voxels are not already that size; with 0
    it is the tumour's box grown by ``margin`` and resized (the paper's crop). Intensities are
    divided by the liver background (:func:`background_level` on the largest cross-section)
    minus 1 with ``normalise = "background"`` (0 is the liver, 0.5 half as bright again), or
    z-scored within the crop with ``"crop"``.
    """
    z = largest_cross_section(mask)
    window = slice_window(z, mask.shape[-1], settings.n_slices)
    img = np.moveaxis(image[..., window], -1, 0).astype(np.float32)   # (slices, x, y)
    msk = np.moveaxis(mask[..., window], -1, 0)
    if settings.fov_mm > 0:
        side = tuple(max(int(round(settings.fov_mm / float(s))), 1) for s in spacing[:2])
        box = _square_box(msk.max(axis=0), side)
    else:
        r0, c0, sq = crop_box(msk.max(axis=0), margin=settings.margin, min_side=settings.min_crop)
        box = (r0, c0, sq, sq)
    fill = float(np.min(image))
    if settings.normalise == "background":
        level = background_level(image[..., z], mask[..., z], tuple(float(s) for s in spacing[:2]),
                                 settings.ring_mm)
        if not np.isfinite(level) or level <= 0:
            raise SliceError(f"no positive background intensity around the tumour (median {level}); use "
                             "normalise: crop")
    img = _resize(_cut_box(img, box, fill), settings.image_size, nearest=False)
    msk = _resize(_cut_box(msk.astype(np.float32), box, 0.0), settings.image_size, nearest=True).astype(np.uint8)
    if settings.normalise == "background":
        img = img / np.float32(level) - np.float32(1.0)
    else:
        sd = float(img.std())
        img = (img - float(img.mean())) / (sd if sd > 1e-6 else 1.0)
    return img.astype(np.float32), msk, z, (box[0], box[1], box[2])


def case_slices(patient_id: str, images: Mapping[str, Path], masks: Mapping[str, Path], phases: list,
                settings: DeepSettings, *, label: int = 1, seed: int = 0,
                transform_dir: Optional[Path] = None) -> CaseSlices:
    """One patient's slices for every phase; phases after the first registered onto it when
    ``settings.register`` (the transforms copied into ``transform_dir``)."""
    import ants

    first = _read(images[phases[0]])
    out_img, out_msk, zs, boxes = [], [], [], []
    for k, phase in enumerate(phases):
        image = first if k == 0 else _read(images[phase])
        mask = _read(masks[phase])
        if k > 0 and settings.register:
            image, transforms = register_rigid(first, image, seed=seed)
            mask = ants.apply_transforms(fixed=first, moving=mask, transformlist=transforms,
                                         interpolator="nearestNeighbor")
            if transform_dir is not None:
                transform_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(transforms[0], transform_dir / f"{phase}_to_{phases[0]}.mat")
        tumour = (np.asarray(mask.numpy()) == label).astype(np.uint8)
        try:
            img, msk, z, box = phase_slices(np.asarray(image.numpy()), tumour, settings, tuple(image.spacing))
        except SliceError as exc:
            raise SliceError(f"patient {patient_id}, phase {phase} ({masks[phase]}): {exc}") from None
        out_img.append(img)
        out_msk.append(msk)
        zs.append(z)
        boxes.append(box)
    return CaseSlices(patient_id, np.stack(out_img), np.stack(out_msk), tuple(zs), tuple(boxes))


# --------------------------------------------------------------------------------------------
# the study's slices, cached


def _shape_settings(settings: DeepSettings) -> dict:
    return {k: getattr(settings, k) for k in ("image_size", "n_slices", "margin", "min_crop", "register", "fov_mm",
                                              "normalise", "ring_mm")}


def case_key(images: Mapping[str, Path], masks: Mapping[str, Path], phases: list, settings: DeepSettings, *,
             label: int, seed: int) -> str:
    """SHA-256 of the case's files and of the settings that shape its slices."""
    payload = {"version": SLICES_VERSION, "phases": list(phases), "label": int(label), "seed": int(seed),
               "settings": _shape_settings(settings),
               "files": [[file_sha256(images[p]), file_sha256(masks[p])] for p in phases]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _compute(args) -> CaseSlices:
    pid, images, masks, phases, settings, label, seed, transform_dir = args
    return case_slices(pid, images, masks, phases, settings, label=label, seed=seed, transform_dir=transform_dir)


@dataclass(frozen=True)
class StudySlices:
    """Every patient's slices, in ``ids`` order."""

    ids: np.ndarray
    phases: tuple
    images: np.ndarray    # float32 (n_patients, n_phases, n_slices, size, size)
    masks: np.ndarray     # uint8, the same shape
    n_computed: int
    n_cached: int


def study_slices(study, run, settings: DeepSettings, ids, *, jobs: int = 1, seed: int = 0) -> StudySlices:
    """The slices of patients ``ids`` of ``study`` (cached in ``RUN/deep/slices/``)."""
    run = Path(run)
    phases = list(study.config.phases)
    if not phases:
        raise InputError(f"{study.root / 'study.yaml'} lists no phases: the deep arm needs images")
    label = int(getattr(study.config, "mask_label", None) or 1)
    folder = run / SLICES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    cases, todo = {}, []
    for pid in ids:
        key = case_key(study.images[pid], study.masks[pid], phases, settings, label=label, seed=seed)
        path = patient_path(folder, f"{pid}.npz")
        if path.is_file():
            with np.load(path) as cached:
                if str(cached["key"]) == key:
                    cases[pid] = CaseSlices(pid, cached["image"], cached["mask"], tuple(cached["z"]),
                                            tuple(map(tuple, cached["crop"])))
                    continue
        todo.append((key, (pid, dict(study.images[pid]), dict(study.masks[pid]), phases, settings, label, seed,
                           patient_path(run / TRANSFORMS_DIR, pid))))
    logger.info(f"deep: slices of {len(ids)} patients ({len(cases)} from the cache, {len(todo)} to prepare)")
    keys = {args[0]: key for key, args in todo}

    def keep(case: CaseSlices) -> None:  # cached as each case finishes, so an interrupted run resumes
        tmp = folder / f".{case.patient_id}.tmp.npz"
        np.savez(tmp, key=keys[case.patient_id], image=case.image, mask=case.mask, z=np.array(case.slice_index),
                 crop=np.array(case.crop))
        os.replace(tmp, patient_path(folder, f"{case.patient_id}.npz"))
        cases[case.patient_id] = case

    if jobs > 1 and len(todo) > 1:
        with process_pool(jobs) as pool:  # spawned: registration's ITK threads may have run here
            for case in pool.map(_compute, [a for _, a in todo], chunksize=4):
                keep(case)
    else:
        for _, args in todo:
            keep(_compute(args))
    order = list(ids)
    return StudySlices(np.array(order, dtype=object), tuple(phases),
                       np.stack([cases[p].image for p in order]), np.stack([cases[p].mask for p in order]),
                       len(todo), len(order) - len(todo))


# --------------------------------------------------------------------------------------------
# re-segmentation by intensity outliers

#: the MAD's factor to a normal standard deviation
MAD_TO_SD = 1.4826
#: a tumour keeps at least this many pixels after re-segmentation, else it is left whole
MIN_KEPT = 4


def resegment(images: np.ndarray, masks: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """The tumour re-segmented by intensity outliers: ``(images, kept)``.

    ``images`` (N, P, S, H, W): N patients' P phases of S slices; ``masks`` (N, S, H, W): each
    patient's tumour. A tumour pixel is an outlier when, on any phase, it lies more than ``k``
    robust standard deviations (1.4826 x the median absolute deviation) from the tumour's median
    on that phase, over the patient's S slices: necrosis, haemorrhage, a capsule or a vessel,
    whose intensities are not the tissue's texture. The outliers are set to the tumour's median
    on every phase (a network's filters then see no edge there) and dropped from the mask
    (``kept``), so the texture of the tumour's tissue is not mixed with theirs.

    This is IBSI's re-segmentation by outlier filtering (Zwanenburg et al., Radiology 2020:
    mean +- 3 SD) made robust, since the standard deviation is inflated by the very outliers it
    is meant to find (Leys et al., J Exp Soc Psychol 2013: median +- k MAD). A phase whose MAD
    is 0 removes nothing, and a tumour left with fewer than ``MIN_KEPT`` pixels is kept whole.
    Per patient, from its own pixels: no other patient and no outcome is used.
    """
    images = np.array(images, dtype=np.float32, copy=True)
    masks = np.asarray(masks) > 0
    kept = masks.copy()
    for i in range(images.shape[0]):
        inside = masks[i]
        if not inside.any():
            continue
        medians = []
        for p in range(images.shape[1]):
            values = images[i, p][inside]
            median = float(np.median(values))
            mad = float(np.median(np.abs(values - median)))
            medians.append(median)
            if mad > 0:
                kept[i] &= np.abs(images[i, p] - median) <= k * MAD_TO_SD * mad
        if int(kept[i].sum()) < MIN_KEPT:
            kept[i] = inside
            continue
        drop = inside & ~kept[i]
        for p, median in enumerate(medians):
            images[i, p][drop] = median
    return images, kept.astype(np.uint8)
