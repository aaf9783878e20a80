"""Training one network: slice samples, flips and quarter turns, AdamW with a one-cycle schedule
over a fixed budget of optimiser steps, class-weighted cross-entropy, seeded so that a CPU rerun
gives the same bytes.

Each slice position of a patient is a sample, its phases the channels (a patient of 3 slices is
3 samples): with ~105 training patients a batch of 16 is ~20 steps an epoch, where whole
patients at the paper's batch 64 were 2. A fit runs ``settings.steps`` steps whatever the
epochs: the learning rate warms up over the first ``warmup`` of them and decays to ~0 by a
cosine (``OneCycleLR``), so the last weights are the ones used, and no patient outside the
training set is needed to stop on.

Augmentation applies one of the eight flips and quarter turns (the dihedral group of the square)
to each sample: exact permutations of pixels, so the texture is untouched (an interpolating
affine blurs it: methods.md). A patient's score is the mean log-odds over its slices and, with
``tta``, over the eight transforms of each; its probability is the logistic of that mean.
The random numbers come from generators seeded from ``--seed``, not from global state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from dlr.core.stats.roc import rank_auc

from .settings import DeepSettings


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from dlr.core.errors import InputError

        raise InputError("--device cuda: no CUDA GPU is visible (torch.cuda.is_available() is False); use "
                         "--device cpu or auto")
    return torch.device(device)


def _bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` (0-7) of the dihedral group on the last two axes: ``k % 4`` quarter turns,
    then a left-right flip when ``k >= 4``; 0 is the identity."""
    out = torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random flip / quarter turn per sample of ``x`` (B, C, H, W), the same for its channels;
    batched: one call per transform drawn, never a Python loop over samples."""
    k = torch.randint(0, 8, (x.shape[0],), generator=generator).to(x.device)
    out = x.clone()
    for t in range(1, 8):
        chosen = k == t
        if bool(chosen.any()):
            out[chosen] = dihedral(x[chosen], t)
    return out


def slice_samples(x: torch.Tensor) -> torch.Tensor:
    """(N, P, S, H, W) patients -> (N * S, P, H, W) samples, patient-major (patient i's slices
    are rows i * S .. i * S + S - 1)."""
    n, p, s, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(n * s, p, h, w)


@dataclass
class Fitted:
    """A trained network (its last weights) and how the fit went."""

    model: torch.nn.Module
    log: pd.DataFrame        # epoch, step, lr, train_loss, held_out_loss, held_out_auc, seconds
    n_steps: int
    n_epochs: int
    seconds: float


def class_weights(y: np.ndarray) -> torch.Tensor:
    """n / (2 n_c) per class (balanced), from the training patients' outcomes."""
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2).astype(float)
    if (counts == 0).any():
        from dlr.core.errors import InputError

        raise InputError(f"the deep arm's training patients hold one outcome class only (counts {counts.tolist()})")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


@torch.no_grad()
def log_odds(model: torch.nn.Module, x: torch.Tensor, *, tta: bool = True, batch: int = 512) -> np.ndarray:
    """Each patient's mean log-odds (float64) over its slices of ``x`` (N, P, S, H, W) and, with
    ``tta``, the eight flips and quarter turns of each; in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    n, s = x.shape[0], x.shape[2]
    samples = slice_samples(x)
    transforms = range(8) if tta else range(1)
    total = torch.zeros(samples.shape[0], dtype=torch.float64)
    for start in range(0, samples.shape[0], batch):
        xb = samples[start:start + batch].to(device)
        for t in transforms:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=_bf16(device)):
                logits = model(dihedral(xb, t)).float()
            total[start:start + batch] += (logits[:, 1] - logits[:, 0]).double().cpu()
    return (total / len(transforms)).reshape(n, s).mean(dim=1).numpy()


def predict(model: torch.nn.Module, x: torch.Tensor, *, tta: bool = True) -> np.ndarray:
    """P(outcome = 1) of every patient of ``x`` (N, P, S, H, W): the logistic of :func:`log_odds`."""
    return 1.0 / (1.0 + np.exp(-log_odds(model, x, tta=tta)))


def fit_network(make_model: Callable[[], torch.nn.Module], x: torch.Tensor, y: np.ndarray, train: np.ndarray,
                settings: DeepSettings, *, seed: int, device: torch.device, held_out: Optional[np.ndarray] = None,
                name: str = "", bar: bool = False) -> Fitted:
    """Train ``make_model()`` on the slices of the patients ``train`` (indices into ``x``) for
    ``settings.steps`` steps.

    ``held_out``: patients scored after each epoch for the log only (the fold an out-of-fold
    refit leaves out); nothing in the fit depends on them. Every random number comes from
    ``seed``: the weights' initialisation and dropout from torch's generator, seeded inside
    ``fork_rng`` (the caller's random state is restored afterwards), the batches' order and the
    augmentation from generators of their own.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.manual_seed(seed)
        return _fit(make_model, x, y, train, settings, seed=seed, device=device, held_out=held_out, name=name,
                    bar=bar)


def _fit(make_model, x, y, train, settings: DeepSettings, *, seed: int, device: torch.device, held_out, name: str,
         bar: bool) -> Fitted:
    from tqdm.auto import tqdm

    deterministic = device.type == "cpu"
    bf16 = _bf16(device)  # asked once, not per batch
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    y = np.asarray(y, dtype=np.int64)
    train = np.asarray(train)
    n_slices = x.shape[2]
    model = make_model().to(device)
    samples = slice_samples(x[torch.as_tensor(train)]).to(device)
    targets = torch.as_tensor(np.repeat(y[train], n_slices), device=device)
    weights = class_weights(y[train]).to(device)
    batch = max(2, min(settings.batch_size, len(samples)))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.steps,
                                                   pct_start=settings.warmup, anneal_strategy="cos")
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    rows, step, epoch = [], 0, 0
    start = time.perf_counter()
    progress = tqdm(total=settings.steps, desc=name or "network", unit="step", leave=False, disable=not bar)
    try:
        while step < settings.steps:
            epoch += 1
            model.train()
            total, seen = 0.0, 0
            order = torch.randperm(len(samples), generator=order_gen)
            for part in torch.split(order, batch):
                if step >= settings.steps:
                    break
                if len(part) < 2:  # batch normalisation cannot train on one sample
                    continue
                idx = part.to(device)
                xb = augment(samples[idx], aug_gen) if settings.flip else samples[idx]
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), targets[idx], weight=weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                step += 1
                total += float(loss.detach()) * len(part)
                seen += len(part)
            progress.update(min(step, settings.steps) - progress.n)
            row = {"epoch": epoch, "step": step, "train_loss": total / max(seen, 1),
                   "held_out_loss": float("nan"), "held_out_auc": float("nan")}
            if held_out is not None and len(held_out):
                z = log_odds(model, x[torch.as_tensor(np.asarray(held_out))], tta=False)
                yh = y[np.asarray(held_out)]
                p = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-12, 1 - 1e-12)
                w = weights.cpu().numpy()[yh]
                row["held_out_loss"] = float(-(w * (yh * np.log(p) + (1 - yh) * np.log(1 - p))).sum() / w.sum())
                row["held_out_auc"] = rank_auc(yh, z) if 0 < yh.sum() < len(yh) else float("nan")
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            progress.set_postfix(loss=f"{row['train_loss']:.3f}")
    finally:
        progress.close()
        torch.use_deterministic_algorithms(previous)
    model.eval()
    return Fitted(model, pd.DataFrame(rows), step, epoch, time.perf_counter() - start)
