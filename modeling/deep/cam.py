"""Score-CAM maps of the multi-phase network and the paper's overlay figure (Figure 4).

The backbone is shared by the phases, so a hook on its last stage would see every phase at once.
:func:`score_cam` therefore explains one phase at a time: the other phases' pooled features are
computed once and held fixed, and only the explained phase's slices enter the hooked model, so
the activations (and the masked inputs Score-CAM scores) belong to that phase alone.

The maps are coarse: the last stage has a cell per 8 pixels for ResNet-10 (4 x 4 at 32 pixels,
6 x 6 at the quick profile's 48, 32 x 32 at the paper's 256) and per 32 for ResNet-18/34.

References
----------
Wang H, Wang Z, Du M, et al. Score-CAM: score-weighted visual explanations for convolutional
neural networks. CVPR Workshops 2020:24-25.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .networks import MultiPhaseNet

#: the categories of :func:`choose_examples`, in the figure's order
CATEGORIES = ("true positive", "false negative", "true negative", "false positive")


class _OnePhase(nn.Module):
    """``model`` seen through one phase: that phase's slices (N, S, H, W) -> two-class logits,
    the other phases' features and the tabular input fixed to one patient's."""

    def __init__(self, model: MultiPhaseNet, x: torch.Tensor, phase: int, tabular: Optional[torch.Tensor]):
        super().__init__()
        self.model = model
        self.phase = phase
        with torch.no_grad():
            self.fixed = model.backbone(x)          # (P, F): the patient's phases as one batch
        self.tabular = tabular

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        n = slices.shape[0]
        fixed = self.fixed.unsqueeze(0).expand(n, -1, -1)
        own = self.model.backbone(slices).unsqueeze(1)
        joined = torch.cat([fixed[:, :self.phase], own, fixed[:, self.phase + 1:]], dim=1).reshape(n, -1)
        if self.model.n_tabular:
            joined = torch.cat([joined, self.tabular.to(joined.dtype).expand(n, -1)], dim=1)
        return self.model.fc(self.model.dropout(joined))


def upsample_centred(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A last-stage map (N, 1, h, w) upsampled bilinearly to ``size`` (H, W) with cell i on pixel
    stride * i.

    The backbones' stages halve the grid with centred ("same"-padded) kernels, so the receptive
    field of the last stage's cell i is centred on input pixel stride * i, stride = 2^k (8 for
    ResNet-10, 32 for ResNet-18/34). The usual resize (``align_corners=False``, torchcam's and
    PIL's) puts cell i on pixel stride * i + (stride - 1) / 2 instead, shifting the map by 3.5
    pixels down and right for ResNet-10 and by 15.5 for ResNet-18/34. Past the last cell the
    map is held at its border value.
    """
    def axis(n_out: int, n_in: int) -> torch.Tensor:
        if n_in == 1:
            return torch.zeros(n_out, device=cam.device)
        stride = 2 ** round(math.log2(n_out / n_in))
        return torch.arange(n_out, dtype=torch.float32, device=cam.device) / stride * (2 / (n_in - 1)) - 1

    rows, cols = torch.meshgrid(axis(size[0], cam.shape[-2]), axis(size[1], cam.shape[-1]), indexing="ij")
    grid = torch.stack([cols, rows], dim=-1).expand(cam.shape[0], -1, -1, -1)
    return F.grid_sample(cam.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def _unit_range(values: torch.Tensor) -> torch.Tensor:
    """``values`` shifted and scaled to [0, 1]; zeros where they are constant."""
    low, high = values.min(), values.max()
    if float(high - low) <= 0:
        return torch.zeros_like(values)
    return (values - low) / (high - low)


def score_cam(model: MultiPhaseNet, x: torch.Tensor, *, phase: int, tabular: Optional[torch.Tensor] = None,
              target: int = 1, batch_size: int = 32) -> np.ndarray:
    """Score-CAM of one patient's phase ``phase`` for class ``target``, on the backbone's last stage.

    Parameters
    ----------
    model : the trained network (put in eval mode for the computation, its modes restored after).
    x : one patient's slices (P, S, H, W).
    phase : the index of the phase to explain; the other phases are held at their own features.
    tabular : the patient's tabular input (n_tabular,) when ``model.n_tabular`` > 0.
    target : the class explained (1: the outcome); the masked inputs are scored on its log-odds.
    batch_size : masked inputs per forward pass.

    Returns
    -------
    float64 (H, W): the map upsampled bilinearly to the slices' size (:func:`upsample_centred`),
    scaled to [0, 1] (all zeros where it is constant, e.g. a last stage without activation).

    Notes
    -----
    With A_k the k-th activation map of the last stage, N the min-max normalisation, U the bilinear
    upsampling and Y(X) = z_target(X) - z_other(X) the target's log-odds,
    w_k = softmax_k(Y(U(N(A_k)) * X) - Y(X)) and the map is ReLU(sum_k w_k A_k) (torchcam's
    ``ScoreCAM`` with a target function; it upsamples the masks with the usual resize, the
    returned map is placed by :func:`upsample_centred`). The log-odds rather than the raw logit
    z_target: a softmax is unchanged when a constant is added to both logits, so z_target alone
    is not what the network predicts with.
    """
    from torchcam.methods import ScoreCAM

    if x.ndim != 4 or x.shape[0] != model.n_phases:
        raise ValueError(f"x: expected one patient's slices (P={model.n_phases}, S, H, W), got {tuple(x.shape)}")
    if not 0 <= phase < model.n_phases:
        raise ValueError(f"phase {phase}: the model has {model.n_phases} phases (0..{model.n_phases - 1})")
    if target not in (0, 1):
        raise ValueError(f"target {target}: the network has two classes (0, 1)")
    if model.n_tabular and tabular is None:
        raise ValueError(f"the model takes {model.n_tabular} tabular inputs; pass the patient's as tabular=")
    device = next(model.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    tab = tabular.to(device).reshape(1, -1) if model.n_tabular else None
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        wrapper = _OnePhase(model, x, phase, tab)
        with ScoreCAM(wrapper, target_layer=model.backbone.last_stage, batch_size=batch_size,
                      input_shape=tuple(x.shape[1:])) as extractor:
            with torch.no_grad():
                wrapper(x[phase:phase + 1])
            cam = extractor(targets=lambda logits: logits[target] - logits[1 - target])[0]   # (1, h, w)
    finally:
        for module, training in modes:
            module.training = training
    return _unit_range(upsample_centred(cam.unsqueeze(1), tuple(x.shape[-2:]))[0, 0]).double().cpu().numpy()


def cam_mass_inside(cam: np.ndarray, mask2d: np.ndarray, *, dilate: int = 2) -> float:
    """The fraction of the map's total mass inside the tumour mask dilated by ``dilate`` pixels
    (4-connected steps, scipy's default structure), so a map on the tumour's edge counts; NaN for
    a map without mass."""
    from scipy.ndimage import binary_dilation

    cam = np.asarray(cam, dtype=float)
    mask2d = np.asarray(mask2d) > 0
    if cam.shape != mask2d.shape:
        raise ValueError(f"cam {cam.shape} and mask {mask2d.shape} differ in shape")
    region = binary_dilation(mask2d, iterations=dilate) if dilate > 0 else mask2d
    total = float(cam.sum())
    return float(cam[region].sum()) / total if total > 0 else float("nan")


def overlay_figure(rows: list[dict], path, *, phases: list[str], dpi: int = 200) -> None:
    """The Score-CAM overlays (the paper's Figure 4) saved as a PNG at ``path``.

    One row per example, one column per phase: the middle slice in grey, the map over it (jet,
    alpha 0.4) and the tumour's contour in white; the row's title above it, the phase names above
    the panels and one colour bar for all.

    Parameters
    ----------
    rows : per example a dict with ``title`` (str), ``image`` and ``mask`` (P, S, H, W) and
        ``cams`` (P maps (H, W) in [0, 1]).
    path : the PNG to write.
    phases : the P phase names.
    dpi : resolution of the PNG.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure  # no pyplot: no global figure state, the Agg canvas for PNG

    if not rows:
        raise ValueError("overlay_figure: no rows to draw")
    n_phases = len(phases)
    for k, row in enumerate(rows):
        if len(row["cams"]) != n_phases or np.shape(row["image"])[0] != n_phases:
            raise ValueError(f"row {k} ({row['title']!r}): expected {n_phases} phases ({', '.join(phases)}), got "
                             f"an image of shape {np.shape(row['image'])} and {len(row['cams'])} maps")
    panel = 2.2
    fig = Figure(figsize=(panel * n_phases + 0.9, (panel + 0.45) * len(rows)), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[panel * n_phases, 0.9])
    for sub, row in zip(left.subfigures(len(rows), 1, squeeze=False)[:, 0], rows):
        sub.suptitle(row["title"], fontsize=9)
        image, mask = np.asarray(row["image"]), np.asarray(row["mask"])
        middle = image.shape[1] // 2
        for ax, name, img, msk, cam in zip(sub.subplots(1, n_phases, squeeze=False)[0], phases, image, mask,
                                           row["cams"]):
            ax.imshow(img[middle], cmap="gray", interpolation="nearest")
            ax.imshow(cam, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0, interpolation="bilinear")
            if np.any(msk[middle]) and not np.all(msk[middle]):
                ax.contour(msk[middle] > 0, levels=[0.5], colors="white", linewidths=1.0)
            ax.set_title(name, fontsize=9)
            ax.set_axis_off()
    cax = right.add_axes([0.15, 0.1, 0.25, 0.8])
    right.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap="jet"), cax=cax, label="Score-CAM")
    fig.savefig(Path(path), dpi=dpi)


def choose_examples(ids, y_true, y_score, threshold: float) -> dict:
    """The most confident patient (a position in ``ids``) of each category of :data:`CATEGORIES`,
    positive when ``y_score >= threshold``: the highest score among true and false positives, the
    lowest among true and false negatives; ties go to the smallest id; None for an empty category."""
    ids = np.asarray(ids, dtype=object)
    y_true = np.asarray(y_true, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    if not len(ids) == len(y_true) == len(y_score):
        raise ValueError(f"ids, y_true and y_score differ in length ({len(ids)}, {len(y_true)}, {len(y_score)})")
    positive = y_score >= threshold
    members = {"true positive": positive & (y_true == 1), "false negative": ~positive & (y_true == 1),
               "true negative": ~positive & (y_true == 0), "false positive": positive & (y_true == 0)}
    chosen = {}
    for category in CATEGORIES:
        index = np.flatnonzero(members[category])
        if not len(index):
            chosen[category] = None
            continue
        sign = -1.0 if category in ("true positive", "false positive") else 1.0
        chosen[category] = int(min(index, key=lambda i: (sign * y_score[i], str(ids[i]))))
    return chosen
