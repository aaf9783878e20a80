"""The deep-learning arm of `dlr train`: DL-ResNet10/18/34 and the jointly trained DLRCR.

Patients and folds come from ``RUN/split.csv``. Every network is trained on the development
patients outside the inner fold (``settings.inner_fold``) and stopped early on the inner fold's
class-weighted loss; no validation patient is ever in a batch, a loss or a stopping rule. The
best ResNet is the one with the lowest inner-fold loss (a proper scoring rule on development
patients its weights never saw). DLRCR starts from that ResNet's weights and trains jointly the
backbone and one fully connected layer over [deep features of the phases | selected radiomics
features | CR factors' design columns], the tabular part z-scored with the training patients'
means and SDs.

Out-of-fold development predictions (contract 4.1) of the best ResNet and of DLRCR: for each
fold k the whole chain is refitted without fold k (the ResNet, then DLRCR on the tabular inputs
of the fold's own radiomics selection and CR factors, passed in ``oof_tabular``), stopped early on
the next fold, and fold k is scored.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np
import pandas as pd
import torch

from core.errors import InputError

from .fit import Fitted, fit_network, predict, resolve_device
from .networks import MultiPhaseNet
from .settings import DeepSettings, model_name
from .slices import StudySlices


@dataclass
class DeepResult:
    """What the arm adds to ``dlr train``'s outputs."""

    scores: dict                     # model name -> scores of every patient (slices.ids order)
    oof: Optional[pd.DataFrame]      # model, patient_id, fold, y_score (development patients)
    networks: pd.DataFrame           # one row per network: best epoch, epochs run, inner loss / AUC, seconds
    log: pd.DataFrame                # network, epoch, train_loss, inner_loss, inner_auc, seconds
    checkpoints: dict                # name -> state dict (CPU tensors)
    deep_features: pd.DataFrame      # patient_id + the best ResNet's pooled features
    best_network: str
    settings: dict
    device: str
    tabular_columns: tuple = ()
    cam_rows: list = field(default_factory=list)   # Score-CAM examples for models/deep/scorecam.png
    phases: tuple = ()


def _standardise(tab: pd.DataFrame, train: np.ndarray) -> torch.Tensor:
    values = tab.to_numpy(dtype=np.float64)
    mean = values[train].mean(axis=0)
    sd = values[train].std(axis=0, ddof=0)
    sd[~np.isfinite(sd) | (sd < 1e-12)] = 1.0
    return torch.from_numpy(((values - mean) / sd).astype(np.float32))


def _inner_and_train(dev: np.ndarray, fold: np.ndarray, inner_fold: int, exclude: Optional[int] = None):
    """Indices of the inner (early-stopping) patients and of the training patients."""
    usable = dev & (fold != exclude) if exclude is not None else dev
    inner = usable & (fold == inner_fold)
    train = usable & ~inner
    if not inner.any() or not train.any():
        raise InputError(f"the deep arm's inner split (fold {inner_fold} of RUN/split.csv) leaves no patient to "
                         "train on or to stop on")
    return np.nonzero(train)[0], np.nonzero(inner)[0]


def _state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _row(network: str, fitted: Fitted, device: torch.device) -> dict:
    best = fitted.log.loc[fitted.log["epoch"] == fitted.best_epoch].iloc[0]
    n_params = sum(p.numel() for p in fitted.model.parameters())
    return {"network": network, "best_epoch": fitted.best_epoch, "n_epochs": fitted.n_epochs,
            "inner_loss": float(best["inner_loss"]), "inner_auc": float(best["inner_auc"]),
            "seconds": fitted.seconds, "n_parameters": n_params, "device": device.type}


def train_deep_arm(slices: StudySlices, y: np.ndarray, fold: np.ndarray, dev: np.ndarray, settings: DeepSettings, *,
                   seed: int, device: str = "auto", tabular: Optional[pd.DataFrame] = None,
                   oof_tabular: Optional[Mapping[int, pd.DataFrame]] = None, oof: bool = True,
                   progress: Optional[Callable[[str], None]] = None, bar: bool = False) -> DeepResult:
    """Train the arm on ``slices`` (patients aligned with ``y``, ``fold`` and ``dev``).

    ``tabular``: DLRCR's radiomics + CR inputs of every patient (rows in slices.ids order, not
    standardised), None to leave DLRCR out. ``oof_tabular``: fold -> the same matrix from that
    fold's refit of the radiomics and CR chain, for DLRCR's out-of-fold predictions.
    """
    say = progress or (lambda message: None)
    dev = np.asarray(dev, dtype=bool)
    fold = np.asarray(fold, dtype=int)
    y = np.asarray(y, dtype=int)
    torch_device = resolve_device(device)
    x = torch.from_numpy(np.ascontiguousarray(slices.images))
    n_phases, n_slices = x.shape[1], x.shape[2]
    train, inner = _inner_and_train(dev, fold, settings.inner_fold)
    scores, rows, logs, checkpoints, fits = {}, [], [], {}, {}
    for k, network in enumerate(settings.networks):
        say(f"deep: training {model_name(network)} on {len(train)} development patients "
            f"(early stopping on the {len(inner)} of fold {settings.inner_fold}, {torch_device.type})")
        fitted = fit_network(lambda: MultiPhaseNet(network, n_phases, n_slices), x, y, train, inner, settings,
                             seed=seed + 101 * k, device=torch_device, name=model_name(network), bar=bar)
        fits[network] = fitted
        scores[model_name(network)] = predict(fitted.model, x)
        rows.append(_row(network, fitted, torch_device))
        logs.append(fitted.log.assign(network=model_name(network)))
        checkpoints[network] = _state(fitted.model)
        say(f"deep: {model_name(network)} stopped at epoch {fitted.n_epochs} (best {fitted.best_epoch}, inner AUC "
            f"{rows[-1]['inner_auc']:.3f}) in {fitted.seconds:.1f} s")
    table = pd.DataFrame(rows)
    best_network = str(table.sort_values(["inner_loss", "network"], kind="stable").iloc[0]["network"])
    best_fit = fits[best_network]
    with torch.no_grad():
        best_fit.model.eval()
        feats = torch.cat([best_fit.model.deep_features(x[i:i + 256].to(torch_device)).float().cpu()
                           for i in range(0, x.shape[0], 256)]).numpy()
    per_phase = feats.shape[1] // n_phases  # the blocks of deep_features, in phase order
    deep_features = pd.DataFrame(feats, columns=[f"{best_network}_{phase}_{j}" for phase in slices.phases
                                                 for j in range(per_phase)])
    deep_features.insert(0, "patient_id", list(slices.ids))
    tab_cols: tuple = ()
    if tabular is not None and tabular.shape[1]:
        tab_cols = tuple(tabular.columns)
        fusion = _fit_dlrcr(x, y, train, inner, settings, best_network, checkpoints[best_network], tabular,
                            seed=seed + 997, device=torch_device, bar=bar)
        scores["DLRCR"] = predict(fusion.model, x, _standardise(tabular, train))
        rows.append(_row("DLRCR", fusion, torch_device))
        table = pd.DataFrame(rows)
        logs.append(fusion.log.assign(network="DLRCR"))
        checkpoints["DLRCR"] = _state(fusion.model)
        say(f"deep: DLRCR ({best_network} + {len(tab_cols)} radiomics and CR columns) stopped at epoch "
            f"{fusion.n_epochs} (inner AUC {rows[-1]['inner_auc']:.3f})")
    cam_rows = _scorecam_rows(best_fit.model, x, slices, y, scores[model_name(best_network)], dev, inner, fold,
                              settings, say=say)
    oof_frame = None
    if oof:
        oof_frame = _out_of_fold(x, y, fold, dev, settings, best_network, tabular is not None and bool(tab_cols),
                                 oof_tabular, seed=seed, device=torch_device, ids=slices.ids, say=say)
    log = pd.concat(logs, ignore_index=True)
    log = log[["network"] + [c for c in log.columns if c != "network"]]
    return DeepResult(scores, oof_frame, table.assign(best=table["network"] == best_network), log, checkpoints,
                      deep_features, best_network, settings.to_dict(), torch_device.type, tab_cols,
                      cam_rows=cam_rows, phases=tuple(slices.phases))


def _scorecam_rows(model, x, slices: StudySlices, y, scores, dev, inner, fold, settings, *, say) -> list:
    """Score-CAM of the best ResNet for the most confident correctly and wrongly classified
    patients of the other cohorts (the development cohort when there is none), at the network's
    Youden threshold on its inner split (never re-picked on the patients shown)."""
    from scipy.ndimage import binary_dilation

    from core.stats.roc import youden_threshold

    from .cam import CATEGORIES, cam_mass_inside, choose_examples, score_cam

    shown = np.nonzero(~dev)[0] if (~dev).any() else np.nonzero(dev)[0]
    threshold = youden_threshold(y[inner], scores[inner])
    chosen = choose_examples(slices.ids[shown], y[shown], scores[shown], threshold)
    labels = {"true positive": "Event, correctly classified", "false negative": "Event, missed",
              "true negative": "No event, correctly classified", "false positive": "No event, wrongly flagged"}
    rows = []
    for category in CATEGORIES:
        k = chosen.get(category)
        if k is None:
            continue
        i = shown[k]
        cams = [score_cam(model, x[i], phase=p) for p in range(x.shape[1])]
        middle = slices.masks.shape[2] // 2
        rows.append({"title": f"{labels[category]} ({slices.ids[i]}, p = {scores[i]:.2f})", "image": slices.images[i],
                     "mask": slices.masks[i], "cams": cams, "patient_id": str(slices.ids[i]), "category": category,
                     "y_true": int(y[i]), "y_score": float(scores[i]),
                     "mass_inside": [cam_mass_inside(c, slices.masks[i, p, middle], dilate=2)
                                     for p, c in enumerate(cams)],
                     "area": [float(binary_dilation(slices.masks[i, p, middle] > 0, iterations=2).mean())
                              for p in range(x.shape[1])]})
    say(f"deep: Score-CAM maps of {len(rows)} patients (threshold {threshold:.3f} from the inner split)")
    return rows


def scorecam_table(rows: list, phases) -> pd.DataFrame:
    """``models/deep/scorecam.csv``: per example and phase, the fraction of the Score-CAM map's
    mass inside the tumour mask dilated by 2 pixels (middle slice) and that region's share of
    the image (what a map spread evenly would put inside)."""
    return pd.DataFrame([{"patient_id": r["patient_id"], "category": r["category"], "y_true": r["y_true"],
                          "y_score": r["y_score"], "phase": phase, "mass_inside": r["mass_inside"][p],
                          "region_fraction": r["area"][p]}
                         for r in rows for p, phase in enumerate(phases)],
                        columns=["patient_id", "category", "y_true", "y_score", "phase", "mass_inside",
                                 "region_fraction"])


def _fit_dlrcr(x, y, train, inner, settings: DeepSettings, network: str, init: dict, tabular: pd.DataFrame, *,
               seed: int, device, bar: bool) -> Fitted:
    n_phases, n_slices = x.shape[1], x.shape[2]
    tab = _standardise(tabular, train)
    backbone_only = {k: v for k, v in init.items() if k.startswith("backbone.")}
    return fit_network(lambda: MultiPhaseNet(network, n_phases, n_slices, n_tabular=tab.shape[1]), x, y, train, inner,
                       settings, seed=seed, device=device, tabular=tab, epochs=settings.fusion_epochs,
                       lr=settings.fusion_lr, init=backbone_only, name="DLRCR", bar=bar)


def _out_of_fold(x, y, fold, dev, settings: DeepSettings, network: str, with_fusion: bool,
                 oof_tabular: Optional[Mapping[int, pd.DataFrame]], *, seed: int, device, ids, say) -> pd.DataFrame:
    """The best ResNet and DLRCR refitted without each development fold, scoring that fold."""
    n_phases, n_slices = x.shape[1], x.shape[2]
    folds = sorted(set(fold[dev].tolist()))
    rows = []
    for k in folds:
        stop_on = folds[(folds.index(k) + 1) % len(folds)]
        train, inner = _inner_and_train(dev, fold, stop_on, exclude=k)
        held = np.nonzero(dev & (fold == k))[0]
        say(f"deep: out-of-fold refit without fold {k} ({model_name(network)}"
            f"{' and DLRCR' if with_fusion else ''}; early stopping on fold {stop_on})")
        fitted = fit_network(lambda: MultiPhaseNet(network, n_phases, n_slices), x, y, train, inner, settings,
                             seed=seed + 7919 * k, device=device, name=f"{model_name(network)} fold {k}")
        p = predict(fitted.model, x[held])
        rows.append(pd.DataFrame({"model": model_name(network), "patient_id": ids[held], "fold": k, "y_score": p}))
        if with_fusion and oof_tabular is not None and k in oof_tabular:
            tab = oof_tabular[k]
            fusion = _fit_dlrcr(x, y, train, inner, settings, network, _state(fitted.model), tab,
                                seed=seed + 7919 * k + 997, device=device, bar=False)
            p = predict(fusion.model, x[held], _standardise(tab, train)[held])
            rows.append(pd.DataFrame({"model": "DLRCR", "patient_id": ids[held], "fold": k, "y_score": p}))
    return pd.concat(rows, ignore_index=True)


def save_checkpoint(state: dict) -> bytes:
    """A state dict as ``torch.save`` bytes (written under RUN/models/deep/)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
