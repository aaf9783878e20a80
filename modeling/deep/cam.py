"""Score-CAM maps of the multi-phase network and the paper's overlay figure (Figure 4).

The network takes one slice position of every phase as the channels of one image, so a map
explains that image as a whole: it is drawn over each phase's slice in the figure. The maps
are as fine as the last stage's grid: at the quick profile's 32 pixels a cell per 2 pixels for
ResNet-10 (16 x 16) and per 4 for ResNet-18/34 (8 x 8, ``min_grid``); at the paper profile's 256
pixels with the paper's stem per 8 (32 x 32) and per 32 (8 x 8).

References
----------
Wang H, Wang Z, Du M, et al. Score-CAM: score-weighted visual explanations for convolutional
neural networks. CVPR Workshops 2020:24-25.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .networks import MultiPhaseNet

#: the categories of :func:`choose_examples`, in the figure's order
CATEGORIES = ("true positive", "false negative", "true negative", "false positive")


def upsample_centred(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A last-stage map (N, 1, h, w) upsampled bilinearly to ``size`` (H, W) with cell i on pixel
    stride * i.

    The backbones' stages halve the grid with centred ("same"-padded) kernels, so the receptive
    field of the last stage's cell i is centred on input pixel stride * i, stride = 2^k (with
    the paper's stem 8 for ResNet-10 and 32 for ResNet-18/34). The usual resize
    (``align_corners=False``, torchcam's and PIL's) puts cell i on pixel
    stride * i + (stride - 1) / 2 instead, shifting the map by 3.5 pixels down and right for a
    stride of 8 and by 15.5 for 32. Past the last cell the map is held at its border value.
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


def score_cam(model: MultiPhaseNet, x: torch.Tensor, *, target: int = 1, batch_size: int = 32) -> np.ndarray:
    """Score-CAM of one patient's slice position (the phases as channels) for class ``target``,
    on the backbone's last stage.

    Parameters
    ----------
    model : the trained network (put in eval mode for the computation, its modes restored after).
    x : one slice position of every phase (P, H, W), and the tumour mask as one more channel when
        the model pools over it (``model.pool == "tumour"``).
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

    channels = model.n_phases + (1 if model.pool == "tumour" else 0)
    if x.ndim != 3 or x.shape[0] != channels:
        raise ValueError(f"x: expected one slice position of every phase{' and the mask' if channels > model.n_phases else ''}"
                         f" ({channels}, H, W), got {tuple(x.shape)}")
    if target not in (0, 1):
        raise ValueError(f"target {target}: the network has two classes (0, 1)")
    device = next(model.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with ScoreCAM(model, target_layer=model.backbone.last_stage, batch_size=batch_size,
                      input_shape=tuple(x.shape)) as extractor:
            with torch.no_grad():
                model(x[None])
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
