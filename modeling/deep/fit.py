"""Training one network: batched on-device augmentation, class-weighted cross-entropy, SGD, early
stopping on an inner split of the development cohort, seeded so that a CPU rerun gives the same
bytes.

Augmentation draws one random rigid-plus-scale transform per patient (rotation, isotropic
scaling, shift, horizontal and vertical flips) and applies it to all the patient's phases and
slices at once with ``affine_grid`` / ``grid_sample`` on the whole batch, on the device where the
batch already is: the data path is two tensor operations per batch, never a per-sample Python
loop, so it cannot starve a GPU. The random numbers come from a generator seeded from
``--seed`` (and the epoch), not from global state.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core.stats.roc import rank_auc

from .settings import DeepSettings


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from core.errors import InputError

        raise InputError("--device cuda: no CUDA GPU is visible (torch.cuda.is_available() is False); use "
                         "--device cpu or auto")
    return torch.device(device)


def _bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def augment(x: torch.Tensor, generator: torch.Generator, settings: DeepSettings) -> torch.Tensor:
    """One random transform per patient of ``x`` (B, P, S, H, W), the same for its phases and slices."""
    b = x.shape[0]
    dev = x.device

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=generator, device=dev)

    angle = uniform(-1.0, 1.0) * math.radians(settings.rotate_deg)
    scale = uniform(1 - settings.scale, 1 + settings.scale)
    tx, ty = uniform(-2 * settings.shift, 2 * settings.shift), uniform(-2 * settings.shift, 2 * settings.shift)
    if settings.flip:
        fx = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
        fy = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    else:
        fx = fy = torch.ones(b, device=dev)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * fx, -sin * fy, tx], 1), torch.stack([sin * fx, cos * fy, ty], 1)], 1)
    flat = x.reshape(b, -1, *x.shape[-2:])
    grid = F.affine_grid(theta.to(flat.dtype), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(x.shape)


def _batches(n: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A permutation of 0..n-1 in batches of ``size``; a last batch of one patient (which batch
    normalisation cannot train on) joins the one before."""
    order = torch.randperm(n, generator=generator)
    parts = list(torch.split(order, size))
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


@dataclass
class Fitted:
    """A trained network, loaded with its best inner-split weights."""

    model: torch.nn.Module
    log: pd.DataFrame        # epoch, train_loss, inner_loss, inner_auc, seconds
    best_epoch: int
    n_epochs: int
    seconds: float


def class_weights(y: np.ndarray) -> torch.Tensor:
    """n / (2 n_c) per class (balanced), from the training patients' outcomes."""
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2).astype(float)
    if (counts == 0).any():
        from core.errors import InputError

        raise InputError(f"the deep arm's training patients hold one outcome class only (counts {counts.tolist()})")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, tabular: Optional[torch.Tensor] = None, *,
            batch: int = 256) -> np.ndarray:
    """P(outcome = 1) of every patient of ``x`` (float64), in eval mode, without augmentation."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, x.shape[0], batch):
        xb = x[start:start + batch].to(device)
        tb = tabular[start:start + batch].to(device) if tabular is not None else None
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=_bf16(device)):
            logits = model(xb, tb)
        out.append(torch.softmax(logits.float(), dim=1)[:, 1].double().cpu())
    return torch.cat(out).numpy()


def fit_network(make_model: Callable[[], torch.nn.Module], x: torch.Tensor, y: np.ndarray, train: np.ndarray,
                inner: np.ndarray, settings: DeepSettings, *, seed: int, device: torch.device,
                tabular: Optional[torch.Tensor] = None, epochs: Optional[int] = None, lr: Optional[float] = None,
                init: Optional[dict] = None, name: str = "", bar: bool = False) -> Fitted:
    """Train ``make_model()`` on the patients ``train`` (indices into ``x``), stopping early on the
    class-weighted loss of the patients ``inner``; returns it with the weights of its best epoch.

    ``init``: a state dict to start from (DLRCR starts its backbone from the best ResNet's).
    Every random number comes from ``seed``: the weights' initialisation and dropout from torch's
    generator, seeded inside ``fork_rng`` (the caller's random state is restored afterwards), the
    batches' order and the augmentation from generators of their own.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.manual_seed(seed)
        return _fit(make_model, x, y, train, inner, settings, seed=seed, device=device, tabular=tabular,
                    epochs=epochs, lr=lr, init=init, name=name, bar=bar)


def _fit(make_model, x, y, train, inner, settings: DeepSettings, *, seed: int, device: torch.device, tabular,
         epochs, lr, init, name: str, bar: bool) -> Fitted:
    from tqdm.auto import tqdm

    epochs = settings.epochs if epochs is None else epochs
    lr = settings.lr if lr is None else lr
    deterministic = device.type == "cpu"
    bf16 = _bf16(device)  # asked once, not per batch
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    model = make_model()
    if init is not None:
        model.load_state_dict(init, strict=False)
    model.to(device)
    x = x.to(device)
    tab = tabular.to(device) if tabular is not None else None
    y_t = torch.tensor(np.array(y, dtype=np.int64), device=device)
    weights = class_weights(np.asarray(y)[train]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    train_t = torch.as_tensor(np.asarray(train), device="cpu")
    inner_t = torch.as_tensor(np.asarray(inner), device=device)
    rows, best, best_loss, best_state = [], 0, math.inf, None
    start = time.perf_counter()
    progress = tqdm(total=epochs, desc=name or "network", unit="epoch", leave=False, disable=not bar)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            total, seen = 0.0, 0
            for batch in _batches(len(train_t), settings.batch_size, order_gen):
                idx = train_t[batch].to(device)
                xb = augment(x[idx], aug_gen, settings)
                tb = tab[idx] if tab is not None else None
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(xb, tb)
                loss = F.cross_entropy(logits.float(), y_t[idx], weight=weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch)
                seen += len(batch)
            model.eval()
            with torch.no_grad(), torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x[inner_t], tab[inner_t] if tab is not None else None).float()
            inner_loss = float(F.cross_entropy(logits, y_t[inner_t], weight=weights))
            p = torch.softmax(logits, 1)[:, 1].double().cpu().numpy()
            inner_auc = rank_auc(np.asarray(y)[inner], p)
            rows.append({"epoch": epoch, "train_loss": total / seen, "inner_loss": inner_loss, "inner_auc": inner_auc,
                         "seconds": time.perf_counter() - start})
            if inner_loss < best_loss:
                best, best_loss = epoch, inner_loss
                best_state = copy.deepcopy(model.state_dict())
            progress.update(1)
            progress.set_postfix(loss=f"{total / seen:.3f}", inner_auc=f"{inner_auc:.3f}", best=best)
            if epoch >= settings.min_epochs and epoch - best >= settings.patience:
                break
    finally:
        progress.close()
        torch.use_deterministic_algorithms(previous)
    model.load_state_dict(best_state)
    return Fitted(model, pd.DataFrame(rows), best, len(rows), time.perf_counter() - start)
