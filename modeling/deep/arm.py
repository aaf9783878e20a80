"""The deep-learning arm of `dlr train`: DL-ResNet10/18/34 and DLRCR.

Patients and folds come from ``RUN/split.csv``. Every network is fitted twice over: once on the
whole development cohort (the model that scores every patient, validation included) and once
without each development fold k, scoring fold k (its nested out-of-fold predictions, contract
4.1). A fit runs a fixed budget of steps (:mod:`.fit`), so no patient outside its training set
is used to stop it; no validation patient is ever in a batch, a loss or a choice. The fits are
independent, seeded from ``--seed``, the network and the fold, and run in ``jobs`` processes
(on a GPU, one after the other on the device).

The best network is the one with the highest pooled out-of-fold AUC (the order of
``settings.networks`` on ties), as the classical arm chooses RCR's classifier.

DLRCR is a late fusion: a logistic model (slopes mildly ridge-penalised) of the outcome on the
best network's log-odds and RCR's log-odds (the radiomics features and the CR factors), fitted on their out-of-fold
development predictions, the only scores of development patients that no model of theirs was
fitted on. Its out-of-fold predictions refit that logistic model without fold k on the other
folds' out-of-fold scores (whose models saw fold k's outcomes: a second-order leak of two
coefficients, stated in the report's methods) and score fold k's. The paper trained its fusion
network jointly; on ~105 patients that fit lowered performance below RCR's (methods.md).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import torch
from scipy import special

from dlr.core.errors import InputError
from dlr.core.parallel import process_pool
from dlr.core.stats.roc import rank_auc, youden_threshold

from .fit import fit_network, log_odds, resolve_device, slice_samples
from .networks import MultiPhaseNet
from .settings import DeepSettings, model_name
from .slices import StudySlices, resegment

logger = logging.getLogger(__name__)

#: DLRCR's tabular partner: the model whose out-of-fold and development scores it fuses with
FUSION_PARTNER = "RCR"


@dataclass
class DeepResult:
    """What the arm adds to ``dlr train``'s outputs."""

    scores: dict                     # model name -> scores of every patient (slices.ids order)
    oof: Optional[pd.DataFrame]      # model, patient_id, fold, y_score (development patients, every deep model)
    networks: pd.DataFrame           # one row per network and DLRCR: OOF and apparent AUC, steps, seconds, best
    log: pd.DataFrame                # network, fit, epoch, step, train_loss, held_out_loss, held_out_auc, seconds
    checkpoints: dict                # network -> state dict (CPU tensors) of its development fit
    deep_features: pd.DataFrame      # patient_id + the best network's pooled features (mean over slices)
    best_network: str
    settings: dict
    device: str
    fusion: dict = field(default_factory=dict)     # DLRCR's logistic model: partner, coefficients
    cam_rows: list = field(default_factory=list)   # Score-CAM examples for models/deep/scorecam.png
    phases: tuple = ()


@dataclass(frozen=True)
class Partner:
    """DLRCR's partner model: its scores of every patient (slices.ids order) and its out-of-fold
    scores of the development patients (NaN elsewhere)."""

    name: str
    scores: np.ndarray
    oof: np.ndarray


# --------------------------------------------------------------------------------------------
# the fits


_WORKER_X: Optional[torch.Tensor] = None


def _init_worker(x: np.ndarray) -> None:
    global _WORKER_X
    torch.set_num_threads(1)  # one process per core
    _WORKER_X = torch.from_numpy(x)


def _fit_task(task: dict, x: Optional[torch.Tensor] = None) -> dict:
    """One fit: ``task`` names the network, its training and scored patients, the seed."""
    x = _WORKER_X if x is None else x
    settings: DeepSettings = task["settings"]
    device = torch.device(task["device"])

    def make():
        return make_network(task["network"], task["n_phases"], settings)

    # one thread on the CPU, in this process or a worker: a fit's bytes then do not depend on --jobs
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        fitted = fit_network(make, x, task["y"], task["train"], settings, seed=task["seed"], device=device,
                             held_out=task["held"] if task["monitor"] else None, name=task["label"], bar=task["bar"])
        z = log_odds(fitted.model, x[torch.as_tensor(np.asarray(task["scored"]))], tta=settings.tta)
    finally:
        torch.set_num_threads(threads)
    state = {k: v.detach().cpu().clone() for k, v in fitted.model.state_dict().items()}
    return {"key": task["key"], "state": state, "log": fitted.log, "z": z, "seconds": fitted.seconds,
            "n_steps": fitted.n_steps, "n_epochs": fitted.n_epochs,
            "n_parameters": sum(p.numel() for p in fitted.model.parameters())}


def _run_fits(tasks: list[dict], x: torch.Tensor, *, jobs: int, device: torch.device) -> dict:
    """key -> result of every task; in ``jobs`` spawned processes on the CPU (spawn, not fork:
    XGBoost's OpenMP threads and torch's may have run in this process), else in this one."""
    out = {}
    if device.type == "cpu" and jobs > 1 and len(tasks) > 1:
        with process_pool(min(jobs, len(tasks)), initializer=_init_worker, initargs=(x.numpy(),)) as pool:
            for done, result in enumerate(pool.map(_fit_task, tasks), start=1):
                out[result["key"]] = result
                logger.info(f"deep: {tasks[done - 1]['label']} fitted ({done} of {len(tasks)}, "
                            f"{result['seconds']:.1f} s)")
        return out
    for done, task in enumerate(tasks, start=1):
        result = _fit_task(task, x)
        out[result["key"]] = result
        logger.info(f"deep: {task['label']} fitted ({done} of {len(tasks)}, {result['seconds']:.1f} s)")
    return out


def make_network(network: str, n_phases: int, settings: DeepSettings) -> MultiPhaseNet:
    """The network of ``settings`` for ``n_phases`` phases."""
    return MultiPhaseNet(network, n_phases, stem=settings.stem, width=settings.width, dropout=settings.dropout,
                         pool=settings.pool, zero_init=settings.zero_init, image_size=settings.image_size,
                         min_grid=settings.min_grid)


def network_input(slices: StudySlices, settings: DeepSettings) -> torch.Tensor:
    """The networks' input (N, C, S, H, W): the phases, and with ``pool = "tumour"`` the tumour
    mask (the union of the phases' registered masks) as the last channel.

    With ``settings.resegment`` > 0 the tumour is re-segmented by intensity outliers first
    (:func:`resegment`): its outlying pixels are set to the tumour's median and left out of
    the mask the last stage is pooled over."""
    images = slices.images.astype(np.float32, copy=False)
    mask = slices.masks.max(axis=1)
    if settings.resegment > 0:
        images, mask = resegment(images, mask, settings.resegment)
    if settings.pool == "tumour":
        images = np.concatenate([images, mask[:, None].astype(np.float32)], axis=1)
    return torch.from_numpy(np.ascontiguousarray(images))


def _logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1 (a partner's score of exactly 0 or 1)."""
    return special.logit(np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9))


def train_deep_arm(slices: StudySlices, y: np.ndarray, fold: np.ndarray, dev: np.ndarray, settings: DeepSettings, *,
                   seed: int, device: str = "auto", partner: Optional[Partner] = None, oof: bool = True,
                   jobs: int = 1, bar: bool = False) -> DeepResult:
    """Train the arm on ``slices`` (patients aligned with ``y``, ``fold`` and ``dev``).

    ``partner``: RCR's scores for DLRCR (None leaves DLRCR out). ``oof``: the out-of-fold
    refits (without them the best network is chosen on apparent AUC and DLRCR, which is fitted
    on out-of-fold scores, is left out).
    """
    dev = np.asarray(dev, dtype=bool)
    fold = np.asarray(fold, dtype=int)
    y = np.asarray(y, dtype=int)
    torch_device = resolve_device(device)
    x = network_input(slices, settings)
    n_phases = len(slices.phases)
    n = len(y)
    train_all = np.nonzero(dev)[0]
    if len(set(y[train_all].tolist())) < 2:
        raise InputError(f"the deep arm's development patients hold one outcome class only ({len(train_all)} patients)")
    folds = sorted(set(fold[dev].tolist())) if oof else []
    tasks = []
    for j, network in enumerate(settings.networks):
        for k in [0, *folds]:
            train = train_all if k == 0 else np.nonzero(dev & (fold != k))[0]
            held = np.arange(n) if k == 0 else np.nonzero(dev & (fold == k))[0]
            tasks.append({"key": (network, k), "network": network, "n_phases": n_phases, "settings": settings,
                          "device": str(torch_device),
                          "y": y, "train": train, "held": held, "scored": held, "monitor": k != 0,
                          "seed": int(seed) + 101 * j + 7919 * k, "bar": bar and jobs <= 1,
                          "label": f"{model_name(network)} {'development' if k == 0 else f'without fold {k}'}"})
    fits = "the development cohort" if not folds else f"the development cohort and {len(folds)} out-of-fold refits"
    where = f" in {jobs} processes" if torch_device.type == "cpu" and jobs > 1 else ""
    logger.info(f"deep: {len(tasks)} fits ({len(settings.networks)} networks x {fits}) of {settings.steps} steps, "
                f"on {torch_device.type}{where}")
    results = _run_fits(tasks, x, jobs=jobs, device=torch_device)

    scores, rows, logs, checkpoints, oof_rows, oof_z = {}, [], [], {}, [], {}
    for network in settings.networks:
        name = model_name(network)
        full = results[(network, 0)]
        scores[name] = special.expit(full["z"])
        checkpoints[network] = full["state"]
        z_oof = np.full(n, np.nan)
        for k in folds:
            part = results[(network, k)]
            held = np.nonzero(dev & (fold == k))[0]
            z_oof[held] = part["z"]
            oof_rows.append(pd.DataFrame({"model": name, "patient_id": slices.ids[held], "fold": k,
                                          "y_score": special.expit(part["z"])}))
        oof_z[network] = z_oof
        for k in [0, *folds]:
            logs.append(results[(network, k)]["log"].assign(network=name, fit="development" if k == 0 else f"fold {k}"))
        oof_auc = rank_auc(y[dev], z_oof[dev]) if folds else float("nan")
        rows.append({"network": name, "oof_auc": oof_auc, "apparent_auc": rank_auc(y[dev], full["z"][dev]),
                     "n_steps": full["n_steps"], "n_epochs": full["n_epochs"],
                     "seconds": sum(results[(network, k)]["seconds"] for k in [0, *folds]),
                     "n_fits": 1 + len(folds), "n_parameters": full["n_parameters"], "device": torch_device.type})
        logger.info(f"deep: {name} out-of-fold AUC {oof_auc:.3f}, apparent {rows[-1]['apparent_auc']:.3f}")
    table = pd.DataFrame(rows)
    chosen_on = "oof_auc" if folds else "apparent_auc"
    ranks = table[chosen_on].fillna(-np.inf).to_numpy()
    best_network = settings.networks[int(np.argmax(ranks))]

    model = make_network(best_network, n_phases, settings)
    model.load_state_dict(checkpoints[best_network])
    model.eval()
    deep_features = _deep_features(model, x, best_network, slices.ids)

    fusion = {}
    if partner is not None and folds:
        fused, fused_oof, fusion = _late_fusion(oof_z[best_network], _logit(partner.oof),
                                                results[(best_network, 0)]["z"], _logit(partner.scores), y, fold, dev,
                                                folds)
        fusion = {"partner": partner.name, "network": model_name(best_network), **fusion}
        scores["DLRCR"] = fused
        for k in folds:
            held = np.nonzero(dev & (fold == k))[0]
            oof_rows.append(pd.DataFrame({"model": "DLRCR", "patient_id": slices.ids[held], "fold": k,
                                          "y_score": fused_oof[held]}))
        rows.append({"network": "DLRCR", "oof_auc": rank_auc(y[dev], fused_oof[dev]),
                     "apparent_auc": rank_auc(y[dev], fused[dev]), "n_steps": 0, "n_epochs": 0, "seconds": 0.0,
                     "n_fits": 1 + len(folds), "n_parameters": 3, "device": "cpu"})
        table = pd.DataFrame(rows)
        logger.info(f"deep: DLRCR ({model_name(best_network)} + {partner.name}, logistic on out-of-fold log-odds) "
                    f"out-of-fold AUC {rows[-1]['oof_auc']:.3f}")
    elif partner is not None:
        logger.info("deep: DLRCR is fitted on out-of-fold scores; without them (--no-oof) it is left out")
    elif folds:
        logger.info(f"deep: DLRCR needs {FUSION_PARTNER}'s scores (the clinical and radiomics arms); left out")

    best_oof = oof_z[best_network]
    thr_scores = special.expit(best_oof) if folds else scores[model_name(best_network)]
    cam_rows = _scorecam_rows(model, x, slices, y, scores[model_name(best_network)], thr_scores, dev)
    oof_frame = pd.concat(oof_rows, ignore_index=True) if oof_rows else None
    log = pd.concat(logs, ignore_index=True)
    log = log[["network", "fit"] + [c for c in log.columns if c not in ("network", "fit")]]
    return DeepResult(scores, oof_frame, table.assign(best=table["network"] == model_name(best_network)), log,
                      checkpoints, deep_features, best_network, settings.to_dict(), torch_device.type, fusion=fusion,
                      cam_rows=cam_rows, phases=tuple(slices.phases))


@torch.no_grad()
def _deep_features(model: MultiPhaseNet, x: torch.Tensor, network: str, ids) -> pd.DataFrame:
    """The pooled features of the last stage, averaged over each patient's slices."""
    device = next(model.parameters()).device
    n, s = x.shape[0], x.shape[2]
    feats = torch.cat([model.deep_features(slice_samples(x[i:i + 128]).to(device)).float().cpu()
                       for i in range(0, n, 128)]).reshape(n, s, -1).mean(dim=1).numpy()
    frame = pd.DataFrame(feats, columns=[f"{network}_{j}" for j in range(feats.shape[1])])
    frame.insert(0, "patient_id", list(ids))
    return frame


#: the ridge penalty of DLRCR's two slopes (sklearn's C: 1 / lambda); mild, so that a separated
#: development cohort (a network that classifies it perfectly) still gives finite coefficients
FUSION_C = 1.0


def _late_fusion(z_oof: np.ndarray, partner_oof: np.ndarray, z_all: np.ndarray, partner_all: np.ndarray,
                 y: np.ndarray, fold: np.ndarray, dev: np.ndarray, folds: list) -> tuple[np.ndarray, np.ndarray, dict]:
    """DLRCR: logit P(y = 1) = b0 + b1 z_network + b2 z_partner fitted on the development
    patients' out-of-fold log-odds (slopes ridge-penalised, ``FUSION_C``); (scores of every
    patient, out-of-fold scores, coefficients).

    The out-of-fold score of fold k comes from the same model refitted without fold k's rows."""
    from sklearn.linear_model import LogisticRegression

    def fit(rows: np.ndarray):
        model = LogisticRegression(C=FUSION_C, solver="lbfgs", max_iter=1000)
        model.fit(np.column_stack([z_oof[rows], partner_oof[rows]]), y[rows])
        return float(model.intercept_[0]), float(model.coef_[0, 0]), float(model.coef_[0, 1])

    usable = dev & np.isfinite(z_oof) & np.isfinite(partner_oof)
    if len(set(y[usable].tolist())) < 2:
        raise InputError("DLRCR: the development patients with out-of-fold scores hold one outcome class only")
    b0, b1, b2 = fit(usable)
    fused = special.expit(b0 + b1 * z_all + b2 * partner_all)
    fused_oof = np.full(len(y), np.nan)
    for k in folds:
        held = usable & (fold == k)
        c0, c1, c2 = fit(usable & (fold != k))
        fused_oof[held] = special.expit(c0 + c1 * z_oof[held] + c2 * partner_oof[held])
    return fused, fused_oof, {"intercept": b0, "network_coefficient": b1, "partner_coefficient": b2,
                              "n": int(usable.sum()), "ridge_C": FUSION_C}


def _scorecam_rows(model, x, slices: StudySlices, y, scores, threshold_scores, dev) -> list:
    """Score-CAM of the best network for the most confident correctly and wrongly classified
    patients of the other cohorts (the development cohort when there is none), at the network's
    Youden threshold on its out-of-fold development predictions (never re-picked on the patients
    shown)."""
    from scipy.ndimage import binary_dilation

    from .cam import CATEGORIES, cam_mass_inside, choose_examples, score_cam

    shown = np.nonzero(~dev)[0] if (~dev).any() else np.nonzero(dev)[0]
    ok = dev & np.isfinite(threshold_scores)
    threshold = youden_threshold(y[ok], threshold_scores[ok])
    chosen = choose_examples(slices.ids[shown], y[shown], scores[shown], threshold)
    labels = {"true positive": "Event, correctly classified", "false negative": "Event, missed",
              "true negative": "No event, correctly classified", "false positive": "No event, wrongly flagged"}
    rows = []
    middle = x.shape[2] // 2
    for category in CATEGORIES:
        k = chosen.get(category)
        if k is None:
            continue
        i = shown[k]
        cam = score_cam(model, x[i, :, middle])
        n_phases = len(slices.phases)
        rows.append({"title": f"{labels[category]} ({slices.ids[i]}, p = {scores[i]:.2f})", "image": slices.images[i],
                     "mask": slices.masks[i], "cams": [cam] * n_phases, "patient_id": str(slices.ids[i]),
                     "category": category, "y_true": int(y[i]), "y_score": float(scores[i]),
                     "mass_inside": [cam_mass_inside(cam, slices.masks[i, p, middle], dilate=2)
                                     for p in range(n_phases)],
                     "area": [float(binary_dilation(slices.masks[i, p, middle] > 0, iterations=2).mean())
                              for p in range(n_phases)]})
    logger.info(f"deep: Score-CAM maps of {len(rows)} patients (threshold {threshold:.3f} from the out-of-fold "
                "development predictions)")
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


def save_checkpoint(state: dict) -> bytes:
    """A state dict as ``torch.save`` bytes (written under RUN/models/deep/; read back with
    ``torch.load(..., weights_only=True)``)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
