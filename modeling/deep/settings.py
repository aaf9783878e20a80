"""Settings of the deep-learning arm, per profile.

``paper`` is the paper's method (256 x 256 slices, SGD with learning rate 1e-4, momentum 0.9,
weight decay 1e-4, batch 64, up to 200 epochs with early stopping). ``quick`` keeps the method
but fits a 2-core CPU within minutes: 48 x 48 slices, at most 40 epochs, and a learning rate of
3e-3 (with 1e-4 a network barely moves in 40 epochs); the report states which ran.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

#: the networks of the arm, in the order they are trained (DLRCR uses the best of them)
NETWORKS = ("ResNet10", "ResNet18", "ResNet34")


def model_name(network: str) -> str:
    """``ResNet10`` -> ``DL-ResNet10`` (contract section 3)."""
    return f"DL-{network}"


@dataclass(frozen=True)
class DeepSettings:
    """Everything that decides the arm's slices and fits (hashed into the caches' keys)."""

    profile: str = "quick"
    image_size: int = 48          # in-plane pixels of each slice after the crop
    n_slices: int = 3             # consecutive axial slices per phase (the network's channels)
    margin: float = 0.25          # crop: the tumour's box grown by this fraction on each side
    min_crop: int = 8             # crop side at least this many voxels
    register: bool = True         # later phases registered rigidly to the first (QuickRigid)
    epochs: int = 40
    patience: int = 10            # epochs without a lower inner-split loss before stopping
    min_epochs: int = 5
    batch_size: int = 64
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # augmentation (applied to whole batches on the device)
    rotate_deg: float = 15.0
    scale: float = 0.10
    shift: float = 0.10
    flip: bool = True
    networks: tuple = NETWORKS
    fusion_epochs: int = 30
    fusion_lr: float = 3e-3
    inner_fold: int = 1           # the fold of RUN/split.csv held out of the development cohort for early stopping

    def to_dict(self) -> dict:
        out = asdict(self)
        out["networks"] = list(self.networks)
        return out


def deep_settings(profile: str = "quick", **overrides) -> DeepSettings:
    """The settings of ``profile`` (``quick`` or ``paper``), with ``overrides``."""
    if profile == "paper":
        base = DeepSettings(profile="paper", image_size=256, epochs=200, patience=20, lr=1e-4, fusion_epochs=100,
                            fusion_lr=1e-4)
    elif profile == "quick":
        base = DeepSettings()
    else:
        raise ValueError(f"unknown profile {profile!r}; the profiles are quick and paper")
    if "networks" in overrides:
        overrides["networks"] = tuple(overrides["networks"])
        unknown = [n for n in overrides["networks"] if n not in NETWORKS]
        if unknown:
            raise ValueError(f"unknown network(s) {unknown}; the networks are {', '.join(NETWORKS)}")
    return replace(base, **overrides) if overrides else base
