"""Settings of the deep-learning arm, per profile (methods.md section G, "DL training must learn").

The recipe both profiles share, chosen on development folds of the synthetic study (the
measurements are in methods.md and README "The deep-learning arm"):

- **inputs**: per phase, three axial slices around the tumour's largest cross-section, cut as a
  square of a fixed physical field of view (``fov_mm``) centred on the tumour, so the tumour's
  size and its texture's scale survive (the paper resized every tumour's box to 256 pixels),
  intensities divided by the liver background around the tumour (``normalise``), not z-scored
  within the crop; the tumour re-segmented by intensity outliers (``resegment``: a pixel more
  than 2.5 robust standard deviations from the tumour's median on any phase, such as necrosis or
  haemorrhage, is set to that median and left out of the tumour's pooling; IBSI's outlier
  filtering made robust, with Leys et al.'s recommended 2.5);
- **samples**: each slice position is a sample (the phases its channels), a patient's score the
  mean log-odds over its slices and the eight flips and quarter turns of each (test-time
  augmentation);
- **optimisation**: a fixed budget of ``steps`` optimiser steps (not epochs: 105 patients at
  batch 64 are 2 steps an epoch), batch ``batch_size``, AdamW with a one-cycle schedule
  (warm-up then cosine decay), class-weighted cross-entropy, no early stopping (an inner fold
  of ~26 patients is too small to stop on: its loss jitters more than it improves);
- **augmentation**: random flips and quarter turns only (no interpolation, which blurs texture);
- **networks**: ResNet-10/18/34 block structures with the small-image stem (3 x 3, stride 1,
  no max pooling) and widths from ``width`` for small crops, the paper's 7 x 7 stride-2 stem
  with max pooling and widths from 64 for the paper profile's 256 pixels; the last stage
  averaged over the tumour mask as well as over the whole crop (``pool``) on a grid of at least
  ``min_grid`` cells (a stage that would halve it below keeps stride 1: ResNet-18/34's last stage
  is 8 x 8 at 32 pixels, not 4 x 4), every residual block starting as the identity
  (``zero_init``, Goyal et al. 2017).

``paper`` keeps the paper's 256-pixel slices, stem and widths with the same optimisation (its
SGD at 1e-4 and batch 64 gave 2 steps an epoch, too few to learn: methods.md). ``quick`` fits a
2-core CPU: 32-pixel crops of 96 mm (the synthetic study's 3 mm voxels, no resampling).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from dlr.core.run_folder import DEEP_NETWORKS

#: the networks of the arm, in the order they are trained
NETWORKS = DEEP_NETWORKS

#: the paper's settings, stated beside the recipe that ran (the report's methods)
PAPER_SETTINGS = ("256 x 256 slices cropped to the tumour, SGD with learning rate 1e-4, momentum 0.9 and weight "
                  "decay 1e-4, batch 64, up to 200 epochs with early stopping, augmentation by rotation, scaling, "
                  "flipping and shifting")


def model_name(network: str) -> str:
    """``ResNet10`` -> ``DL-ResNet10`` (contract section 3)."""
    return f"DL-{network}"


@dataclass(frozen=True)
class DeepSettings:
    """Everything that decides the arm's slices and fits (hashed into the caches' keys)."""

    profile: str = "quick"
    # the slices
    image_size: int = 32          # in-plane pixels of each slice
    fov_mm: float = 96.0          # the crop's side in mm, the same for every tumour (0: the tumour's box, resized)
    normalise: str = "background"  # "background": divided by the liver around the tumour, minus 1; "crop": z-scored
    ring_mm: tuple = (3.0, 15.0)  # the background ring, mm outside the tumour on its largest cross-section
    n_slices: int = 3             # consecutive axial slices per phase
    margin: float = 0.25          # fov_mm = 0 only: the tumour's box grown by this fraction on each side
    min_crop: int = 8             # fov_mm = 0 only: crop side at least this many voxels
    register: bool = True         # later phases registered rigidly to the first (QuickRigid)
    resegment: float = 2.5        # tumour pixels beyond this many robust SDs of its median: filled, not pooled (0: off)
    # the networks
    stem: str = "small"           # "small": 3 x 3 stride 1, no max pooling; "paper": 7 x 7 stride 2 + max pooling
    width: int = 16               # channels of the first stage (doubled at each further stage)
    pool: str = "tumour"          # "tumour": the last stage averaged over the tumour mask and the crop; "global"
    min_grid: int = 8             # no stage halves its grid below this many cells (0: the usual strides)
    zero_init: bool = True        # each residual block's last batch normalisation starts at 0
    dropout: float = 0.2
    # the optimisation
    steps: int = 250              # optimiser steps of a fit (a fixed budget, no early stopping)
    batch_size: int = 16          # slice samples per step
    lr: float = 2e-3              # AdamW's peak learning rate (one-cycle)
    weight_decay: float = 0.05
    warmup: float = 0.3           # fraction of the steps spent warming up
    flip: bool = True             # random flips and quarter turns (the dihedral group), no interpolation
    tta: bool = True              # predictions averaged over the eight flips and quarter turns
    networks: tuple = NETWORKS

    def to_dict(self) -> dict:
        out = asdict(self)
        out["networks"] = list(self.networks)
        out["ring_mm"] = list(self.ring_mm)
        return out

    def recipe(self) -> str:
        """The recipe in words (the report's methods and ``dlr train``'s log)."""
        crop = (f"a {self.fov_mm:g} mm field of view centred on the tumour ({self.image_size} x {self.image_size} "
                f"pixels)" if self.fov_mm > 0 else f"the tumour's box resized to {self.image_size} x "
                f"{self.image_size} pixels")
        norm = ("divided by the liver background around the tumour" if self.normalise == "background"
                else "z-scored within the crop")
        stem = ("a small-image stem (3 x 3, stride 1, no max pooling)" if self.stem == "small"
                else "the paper's stem (7 x 7, stride 2, max pooling)")
        pool = ("the last stage averaged over the tumour mask beside the whole crop" if self.pool == "tumour"
                else "the last stage averaged over the crop")
        if self.resegment > 0:
            norm += (f"; the tumour re-segmented by intensity outliers (a pixel more than {self.resegment:g} robust "
                     "standard deviations, the median absolute deviation scaled to a normal one, from the tumour's "
                     "median on any phase, such as necrosis or haemorrhage, set to that median and left out of the "
                     "tumour's pooling)")
        if self.min_grid:
            pool += f", no stage halving its grid below {self.min_grid} x {self.min_grid} cells"
        if self.zero_init:
            pool += ", each residual block starting as the identity (zero-initialised last batch normalisation)"
        return (f"{self.n_slices} axial slices per phase cut as {crop}, intensities {norm}; each slice position a "
                f"sample with the phases as channels; {stem}, first-stage width {self.width}, {pool}; AdamW "
                f"(peak learning rate {self.lr:g}, weight decay {self.weight_decay:g}) with a one-cycle schedule, "
                f"batch {self.batch_size}, a fixed budget of {self.steps} steps without early stopping, "
                f"class-weighted cross-entropy; augmentation by {'flips and quarter turns only' if self.flip else 'none'}"
                f"{'; predictions averaged over the slices and their eight flips and quarter turns' if self.tta else '; predictions averaged over the slices'}")


def deep_settings(profile: str = "quick", **overrides) -> DeepSettings:
    """The settings of ``profile`` (``quick`` or ``paper``), with ``overrides``."""
    if profile == "paper":
        base = DeepSettings(profile="paper", image_size=256, fov_mm=128.0, stem="paper", width=64, steps=1000,
                            batch_size=32)
    elif profile == "quick":
        base = DeepSettings()
    else:
        raise ValueError(f"unknown profile {profile!r}; the profiles are quick and paper")
    if "networks" in overrides:
        overrides["networks"] = tuple(overrides["networks"])
        unknown = [n for n in overrides["networks"] if n not in NETWORKS]
        if unknown:
            raise ValueError(f"unknown network(s) {unknown}; the networks are {', '.join(NETWORKS)}")
    if "ring_mm" in overrides:
        overrides["ring_mm"] = tuple(float(v) for v in overrides["ring_mm"])
    for key, allowed in (("normalise", ("background", "crop")), ("stem", ("small", "paper")),
                         ("pool", ("tumour", "global"))):
        if key in overrides and overrides[key] not in allowed:
            raise ValueError(f"deep: {key} {overrides[key]!r}; use {' or '.join(allowed)}")
    if "resegment" in overrides:
        value = overrides["resegment"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"deep: resegment {value!r}; use a number of robust standard deviations (2.5), or 0 for "
                             "none")
        overrides["resegment"] = float(value)
    return replace(base, **overrides) if overrides else base
