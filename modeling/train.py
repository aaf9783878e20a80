"""`dlr train`: the clinical and radiomics arms, from a study folder to ``RUN/predictions.csv``.

What is fitted, and on whom (methods.md G: everything on the development cohort only)
---------------------------------------------------------------------------------------
* ``RUN/split.csv`` (:mod:`dlr.modeling.splits`): development patients -> 5 stratified folds,
  written once per run and used by every cross-validation below.
* CR (:mod:`dlr.modeling.clinical`): univariate then multivariate logistic selection, then one
  logistic regression on the selected factors.
* Radiomics: reader-1 features of ``RUN/features/radiomics.csv`` (``dlr extract``); missing
  values (failed cases) are filled with development-cohort medians; ICC(2,1) > 0.90 between the
  readers on the development patients of the reproducibility subset; t test or Mann-Whitney
  p < 0.05; LASSO with 5-fold CV on the split's folds (:mod:`dlr.modeling.radiomics.selection`).
* Harmonisation (study.yaml ``harmonization``, :mod:`dlr.modeling.radiomics.harmonization`):
  after the median fill and before the ICC filter, ComBat fitted on the fit's training patients
  (reader 1) removes each batch's location and scale from every feature of readers 1 and 2; its
  parameters are applied unchanged to every other patient. As a sensitivity analysis the
  development chain is fitted once more without ComBat (the same patients, folds and seed, RCR in
  the harmonised fit's classifier, no out-of-fold refits) and scores every patient.
* Five classifiers (:mod:`dlr.modeling.classifiers`) on the selected features: z-score parameters
  from the development cohort, hyperparameters tuned by CV AUC on the split's folds.
* RCR: the selected features plus the CR factors' design columns in the classifier with the
  best development-cohort CV AUC (never chosen by validation AUC), tuned again by CV.
* Thresholds: Youden's J on each model's development-cohort predictions (recorded, with
  :func:`dlr.core.stats.roc.youden_threshold`, the function `dlr analyze` chooses them with).
* Out-of-fold predictions (contract 4.1) for honest development estimates and DLRCR's fusion:
  for each fold k, the whole chain above (CR selection and fit, median fill, ICC, tests, LASSO,
  tuning with the remaining folds, choice of the best classifier, RCR) is redone without fold k
  and predicts fold k; the deep arm (:mod:`dlr.modeling.deep.arm`) refits every network likewise.

Outputs
-------
``RUN/predictions.csv`` (contract section 4: every model, every cohort, with the scanner as a
stratifier); with the out-of-fold refits, ``RUN/predictions_oof.csv`` (contract 4.1: the same
columns, one row per development patient per fitted model with out-of-fold predictions, the
score of the chain refitted without the patient's fold; ``dlr analyze --oof`` reads it); and
``RUN/models/``: ``parameters.json`` (every fitted parameter, byte-stable),
``models.csv``, ``tuning.csv``, ``selection_counts.csv``, ``icc.csv``, ``univariate.csv``,
``lasso_cv.csv``, ``lasso_path.csv``, ``radiomics_selected.csv``, ``cr_selection.csv``,
``oof_predictions.csv``, ``oof_log.csv``, ``oof_selection.csv`` (what each fold's refit selected)
and ``lasso.png`` / ``lasso.svg`` (the paper's Supplementary S4); for the
logistic models (CR, and RCR when its classifier is LR), ``internal_validation.csv`` (Harrell's
optimism-corrected bootstrap on the development cohort, :mod:`dlr.modeling.internal_validation`) and
``nomogram.csv`` / ``nomogram_axes.csv`` (:mod:`dlr.modeling.nomogram`); with harmonisation,
``harmonization.csv`` (the batch's share of each feature's variance before and after ComBat) and
``unharmonised_predictions.csv`` (every patient scored by the radiomics models and RCR refitted
without ComBat; the columns of predictions.csv and the batch column).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from dlr.core import run_folder as rf
from dlr.core.csvsafe import read_back, write_csv
from dlr.core.errors import InputError
from dlr.core.output import provenance, record_provenance, staged_file, staged_folder
from dlr.core.stats.logistic import fit_logistic
from dlr.core.stats.roc import rank_auc, youden_threshold

from . import classifiers as clf
from .cluster import dask_results
from .clinical import COMPARATORS, CRModel, CRModelError, comparator_table, design, fit_cr, refit_cr
from .frozen import bundle_members, write_model_bundle
from .internal_validation import DEFAULT_RESAMPLES
from .radiomics.extraction import FEATURES_DIR, read_radiomics
from .radiomics.harmonization import ComBat, fit_combat
from .radiomics.selection import SelectionError, select_features
from .splits import SPLIT_FILE, load_or_make_split

logger = logging.getLogger(__name__)

ARMS = ("clinical", "radiomics", "deep")
MODELS_DIR = "models"


def radiomics_model_name(classifier: str) -> str:
    return f"Radiomics-{classifier}"


@dataclass(frozen=True)
class TrainSummary:
    """What :func:`train_study` fitted and wrote.

    Attributes
    ----------
    out : Path
        The run folder.
    models : DataFrame
        One row per fitted model: model, features, cv_log_loss (the tuning criterion), cv_auc, cv_auc_sd,
        best_params, threshold, best_classifier.
    performance : DataFrame
        model, cohort, n, n_events, auc (Mann-Whitney) of every model of predictions.csv.
    true_risk : DataFrame or None
        cohort, n, auc of truth.csv's true risk (synthetic studies): the best achievable AUC.
    selection_counts : DataFrame or None
        Features left after each selection step (radiomics arm).
    predictions : DataFrame
        ``RUN/predictions.csv``.
    dev_cohort : str
        The development cohort's name.
    """

    out: Path
    models: pd.DataFrame
    performance: pd.DataFrame
    true_risk: Optional[pd.DataFrame]
    selection_counts: Optional[pd.DataFrame]
    predictions: pd.DataFrame
    dev_cohort: str = "training"

    def to_frame(self) -> pd.DataFrame:
        return self.models


@dataclass
class _Data:
    """The study's patients, aligned: ids, cohorts, outcomes, folds, features."""

    ids: np.ndarray
    cohort: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    clinical: pd.DataFrame           # indexed by patient id
    features: Optional[pd.DataFrame]  # reader 1, indexed by patient id
    reader2: Optional[pd.DataFrame]   # reader 2, indexed by patient id
    batch: Optional[pd.Series] = None  # with study.yaml harmonization: each patient's batch level (text), by id


def _load_features(run: Path, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = read_radiomics(run / FEATURES_DIR / "radiomics.csv")
    frame["patient_id"] = frame["patient_id"].astype(str)
    reader1 = frame[frame["reader"] == 1].set_index("patient_id").drop(columns="reader")
    reader2 = frame[frame["reader"] == 2].set_index("patient_id").drop(columns="reader")
    absent = [p for p in ids if p not in reader1.index]
    if absent:
        raise InputError(f"{run / FEATURES_DIR / 'radiomics.csv'}: no reader-1 features for patient(s) "
                         f"{', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}; rerun `dlr extract`")
    empty = [c for c in reader1.columns if reader1[c].isna().all()]
    if len(empty) == reader1.shape[1]:
        raise InputError(f"{run / FEATURES_DIR / 'radiomics.csv'}: every feature is empty (every case failed; "
                         "see extraction_log.csv)")
    reader1 = reader1.loc[list(ids)]
    return reader1.drop(columns=empty), reader2.drop(columns=empty)


# --------------------------------------------------------------------------------------------
# one fit of the whole chain on a set of training patients


@dataclass
class _ArmFit:
    """The fitted chain on one training set; ``predict(ids)`` scores any patients."""

    cr: Optional[CRModel]
    medians: Optional[pd.Series]
    selection: object
    tuned: dict          # model name -> clf.TunedModel
    best: Optional[str]
    combat: Optional[ComBat] = None  # with harmonization: ComBat fitted on this fit's training patients
    #: a batch level this fit's ComBat did not see: "raise" (the development fit: `dlr validate`
    #: refuses such a level) or "identity" (an out-of-fold refit whose training folds lack it)
    unseen: str = "raise"


def _fill(data: _Data, medians: pd.Series, ids) -> pd.DataFrame:
    return data.features.loc[list(ids)].fillna(medians)


def _features(fit: _ArmFit, data: _Data, ids, *, reader2: bool = False) -> pd.DataFrame:
    """The radiomics features of ``ids`` as the fitted chain sees them (reader 1, or reader 2):
    missing values filled with the fit's medians, then, with harmonization, ComBat's transform
    fitted on the fit's training patients (each patient by its own batch level)."""
    ids = list(ids)
    x = (data.reader2 if reader2 else data.features).loc[ids].fillna(fit.medians)
    if fit.combat is None:
        return x
    return fit.combat.transform(x, data.batch.loc[ids].to_numpy(), unseen=fit.unseen)


@dataclass(frozen=True)
class _Kept:
    """The development cohort's selected features, standing in for a fold's failed selection."""

    features: tuple


CALIBRATION_SLOPE_RANGE = rf.CALIBRATION_SLOPE_RANGE


class NothingSelected(Exception):
    """The development cohort's radiomics selection kept no feature: the radiomics arm is left out."""


#: models/left_out.csv (core.run_folder.LEFT_OUT): the models a run asked for and could not fit, and why
LEFT_OUT_FILE = rf.LEFT_OUT.split("/")[-1]
OOF_SELECTION_FILE = rf.OOF_SELECTION.split("/")[-1]
#: models/harmonization.csv: the batch's share of each feature's variance before and after ComBat
HARMONIZATION_FILE = "harmonization.csv"
#: models/unharmonised_predictions.csv: the harmonisation's sensitivity analysis (:func:`_unharmonised_predictions`)
UNHARMONISED_FILE = rf.UNHARMONISED_PREDICTIONS.split("/")[-1]


def _fit_chain(data: _Data, config, train: np.ndarray, *, arms, seed: int, lasso_rule: str, icc_threshold: float,
               alpha: float, rcr=True, fallback: Optional[_ArmFit] = None,
               notes: Optional[list] = None) -> _ArmFit:
    """CR, selection, the five classifiers and RCR on the patients where ``train`` is True.

    ``rcr``: True to tune RCR in the classifier with the best CV AUC on these patients (an
    out-of-fold refit), a classifier name to use that one, False to leave RCR out (the
    development fit, whose RCR classifier is chosen afterwards on nested out-of-fold AUCs).
    ``fallback`` (the development fit, for an out-of-fold refit): where this refit's CR
    selection finds no factor, the development cohort's factors are refitted on these patients;
    where its radiomics selection fails, the development cohort's selected features are used,
    with medians and classifiers refitted here. Each fallback is appended to ``notes``.
    """
    ids = data.ids[train]
    folds = data.fold[train]
    y = data.y[train]
    note = notes.append if notes is not None else (lambda text: None)
    cr = None
    if "clinical" in arms:
        try:
            cr = fit_cr(data.clinical.reset_index(drop=True), config, dev_ids=ids, alpha=alpha)
        except CRModelError as exc:
            if fallback is None:
                warnings.warn(f"{exc}; CR and RCR are left out", stacklevel=2)
                if notes is not None:
                    note(f"CR, RCR\t{exc}")
            elif fallback.cr is not None:
                try:
                    cr = refit_cr(data.clinical.reset_index(drop=True), config, fallback.cr, dev_ids=ids)
                    note(f"CR: {exc}; the development cohort's factors ({', '.join(fallback.cr.factors)}) were "
                         "refitted on this fold's training patients instead")
                except CRModelError as again:
                    note(f"CR: {exc}; refitting the development cohort's factors failed too ({again}): no CR or "
                         "RCR score")
    if "radiomics" not in arms:
        return _ArmFit(cr, None, None, {}, None)
    medians = data.features.loc[list(ids)].median()
    prepared = _ArmFit(cr, medians, None, {}, None, unseen="raise" if fallback is None else "identity")
    if data.batch is not None:
        prepared.combat = _fit_harmonization(data, ids, medians, note=note, development=fallback is None)
    x = _features(prepared, data, ids)
    r2 = None
    if data.reader2 is not None and len(data.reader2):
        r2_ids = [p for p in ids if p in data.reader2.index]
        r2 = _features(prepared, data, r2_ids, reader2=True) if r2_ids else None
    try:
        selection = select_features(x, y, folds, reader2=r2, icc_threshold=icc_threshold, alpha=alpha,
                                    lasso_rule=lasso_rule, seed=seed)
    except SelectionError as exc:
        if fallback is None:
            raise NothingSelected(f"radiomics feature selection on {len(ids)} development patients: {exc}") from None
        if fallback.selection is None:
            raise InputError(f"radiomics feature selection on {len(ids)} development patients: {exc}") from None
        selection = _Kept(tuple(fallback.selection.features))
        note(f"radiomics selection: {exc}; the development cohort's {len(selection.features)} selected features "
             "were used instead (medians and classifiers refitted on this fold)")
    chosen = list(selection.features)
    tuned = {}
    for name in clf.CLASSIFIERS:
        logger.info(f"tuning {radiomics_model_name(name)} on {len(chosen)} features")
        tuned[radiomics_model_name(name)] = clf.tune(name, x[chosen], y, folds, seed=seed)
    fit = _ArmFit(cr, medians, selection, tuned, None, prepared.combat, prepared.unseen)
    if rcr is True:
        _fit_rcr(fit, data, ids, folds, y, clf.best_classifier({n: tuned[radiomics_model_name(n)]
                                                                for n in clf.CLASSIFIERS}), seed=seed)
    elif rcr:
        _fit_rcr(fit, data, ids, folds, y, rcr, seed=seed)
    return fit


def _fit_harmonization(data: _Data, ids, medians: pd.Series, *, note, development: bool) -> ComBat:
    """ComBat fitted on the (median-filled) reader-1 features of the training patients ``ids``
    alone. A batch level with too few of them to estimate is passed through unharmonised: for
    the development fit (which `dlr validate` guards against) a warning, for an out-of-fold
    refit a note of ``models/oof_log.csv``."""
    ids = list(ids)
    combat = fit_combat(data.features.loc[ids].fillna(medians), data.batch.loc[ids].to_numpy(),
                        batch_column=str(data.batch.name))
    for level, n in combat.unfitted.items():
        text = (f"harmonization: batch level {level!r} of {data.batch.name} has {n} patient(s) among these "
                f"{len(ids)} training patients, too few for ComBat to estimate its variance; its patients' features "
                "are used unharmonised (the identity transform)")
        if development:
            warnings.warn(text, stacklevel=3)
        else:
            note(text)
    return combat


def _fit_rcr(fit: _ArmFit, data: _Data, ids, folds, y, best: str, *, seed: int) -> None:
    """RCR (the selected features and the CR factors' design columns) in classifier ``best``."""
    fit.best = best
    if fit.cr is None:
        return
    x = _features(fit, data, ids)[list(fit.selection.features)]
    rcr_x = pd.concat([x, design(data.clinical.loc[list(ids)], fit.cr.codings)], axis=1)
    logger.info(f"tuning RCR ({best}) on {rcr_x.shape[1]} features")
    fit.tuned["RCR"] = clf.tune(best, rcr_x, y, folds, seed=seed)


def _predict_chain(fit: _ArmFit, data: _Data, ids) -> dict:
    """model name -> scores of ``ids``."""
    ids = list(ids)
    out = {}
    if fit.cr is not None:
        out["CR"] = fit.cr.predict(data.clinical.loc[ids])
    if fit.selection is not None:
        chosen = list(fit.selection.features)
        x = _features(fit, data, ids)[chosen]
        for name, model in fit.tuned.items():
            if name == "RCR":
                rcr_x = pd.concat([x, design(data.clinical.loc[ids], fit.cr.codings)], axis=1)
                out[name] = clf.predict_risk(model, rcr_x)
            else:
                out[name] = clf.predict_risk(model, x)
    return out


def _chosen(k: int, fit: _ArmFit, notes: list) -> list[dict]:
    """What a fold's refit selected (``models/oof_selection.csv``'s rows): the CR factors and the
    radiomics features, each flagged where the development cohort's selection stood in."""
    rows = []
    if fit.cr is not None:
        stood_in = any(note.startswith("CR:") for note in notes)
        rows += [{"fold": k, "chain": "CR", "item": f, "from_development": stood_in} for f in fit.cr.factors]
    if fit.selection is not None:
        stood_in = isinstance(fit.selection, _Kept)
        rows += [{"fold": k, "chain": "radiomics", "item": f, "from_development": stood_in}
                 for f in fit.selection.features]
    return rows


def _oof_fold(args):
    data, config, k, kwargs, fallback = args
    dev = data.cohort == config.dev_cohort
    held = data.ids[dev & (data.fold == k)]
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = _fit_chain(data, config, dev & (data.fold != k), fallback=fallback, notes=notes, **kwargs)
        except (InputError, ValueError) as exc:  # nothing could be fitted without this fold
            return k, held, {}, [*notes, f"the whole chain: {exc}"], []
    if fit.combat is not None:
        _note_unharmonised(fit.combat, data, held, notes)
    return k, held, _predict_chain(fit, data, held), notes, _chosen(k, fit, notes)


def _note_unharmonised(combat: ComBat, data: _Data, held, notes: list) -> None:
    """Notes naming the held-out patients whose batch level this refit's ComBat did not fit
    (absent from, or too rare in, its training folds): their features pass through unharmonised."""
    levels = data.batch.loc[list(held)]
    for level in sorted(set(levels) - set(combat.levels)):
        patients = list(levels.index[levels == level])
        notes.append(f"harmonization: batch level {level!r} of {data.batch.name} is not fitted in this refit's "
                     f"training folds ({combat.unfitted.get(level, 0)} patient(s) there); its {len(patients)} "
                     f"held-out patient(s) ({', '.join(map(str, patients[:10]))}) are scored on unharmonised "
                     "features (the identity transform)")


def _dask_folds(tasks: list, scheduler: str):
    """Each fold's refit on a Dask cluster, yielded as it finishes."""
    return dask_results(_oof_fold, tasks, scheduler, key=lambda task: f"dlr-oof-fold-{task[2]}")


def _out_of_fold(data: _Data, config, kwargs: dict, *, jobs: int, fallback: Optional[_ArmFit] = None,
                 scheduler: Optional[str] = None):
    """Nested out-of-fold predictions of every model, the log of each fold's fallbacks and what
    each fold's refit selected; the folds' refits run in ``jobs`` processes, or on the Dask
    cluster at ``scheduler``."""
    dev = data.cohort == config.dev_cohort
    folds = sorted(set(data.fold[dev]))
    tasks = [(data, config, k, kwargs, fallback) for k in folds]
    if scheduler:
        results = []
        for result in _dask_folds(tasks, scheduler):
            results.append(result)
            logger.info(f"out-of-fold predictions: fold {result[0]} of {len(folds)} (Dask)")
        results.sort(key=lambda r: r[0])
    elif jobs > 1:
        from dlr.core.parallel import process_pool

        # spawned workers: XGBoost's OpenMP threads have run in this process
        with process_pool(min(jobs, len(tasks))) as pool:
            results = []
            for result in pool.map(_oof_fold, tasks):
                results.append(result)
                logger.info(f"out-of-fold predictions: fold {result[0]} of {len(folds)}")
    else:
        results = []
        for task in tasks:
            results.append(_oof_fold(task))
            logger.info(f"out-of-fold predictions: fold {task[2]} of {len(folds)}")
    y = dict(zip(data.ids, data.y))
    rows, log, chosen = [], [], []
    for k, held, scores, notes, selected in results:
        for model, values in scores.items():
            rows += [{"patient_id": p, "fold": k, "model": model, "y_true": y[p], "y_score": float(s)}
                     for p, s in zip(held, values)]
        log += [{"fold": k, "note": text} for text in notes]
        chosen += selected
    return (pd.DataFrame(rows, columns=["patient_id", "fold", "model", "y_true", "y_score"]),
            pd.DataFrame(log, columns=["fold", "note"]),
            pd.DataFrame(chosen, columns=["fold", "chain", "item", "from_development"]))


# --------------------------------------------------------------------------------------------
# the deep arm


def _partner(scores: dict, oof_frame: Optional[pd.DataFrame], ids):
    """DLRCR's partner (RCR): its scores of ``ids`` and its out-of-fold scores (NaN for patients
    without one); None when RCR was not fitted or has no out-of-fold predictions."""
    from .deep.arm import FUSION_PARTNER, Partner

    name = FUSION_PARTNER
    if name not in scores or oof_frame is None:
        return None
    rows = oof_frame[oof_frame["model"] == name]
    if rows.empty:
        return None
    oof = pd.Series(rows["y_score"].to_numpy(dtype=float), index=rows["patient_id"]).reindex(list(ids))
    return Partner(name, np.asarray(scores[name], dtype=float), oof.to_numpy(dtype=float))


def _deep_arm(study, run: Path, data: _Data, dev: np.ndarray, partner, *, settings, device: str, jobs: int,
              seed: int, oof: bool, bar: bool):
    from .deep.arm import train_deep_arm
    from .deep.settings import deep_settings
    from .deep.slices import study_slices

    settings = settings or deep_settings("quick")
    slices = study_slices(study, run, settings, list(data.ids), jobs=jobs, seed=seed)
    logger.info(f"deep: {settings.recipe()}")
    return train_deep_arm(slices, data.y, data.fold, dev, settings, seed=seed, device=device, partner=partner,
                          oof=oof, jobs=jobs, bar=bar)


#: the deep arm's models, which ``dlr train --arms deep`` replaces in an earlier run's files
DEEP_MODELS = rf.DEEP_MODELS
#: predictions.csv's model order (contract section 3), then the comparators
MODEL_ORDER = list(rf.MODEL_ORDER)


def _logistic_tables(fit: _ArmFit, data: _Data, config, dev: np.ndarray, *, n_resamples: int, seed: int,
                     alpha: float) -> dict:
    """file name -> table of ``RUN/models/`` for the logistic models (CR; RCR when its classifier is
    LR): their nomograms and, unless ``n_resamples`` is 0, their internal validation (Harrell's
    bootstrap, B = ``n_resamples`` drawn with ``seed``). Development patients only; empty without CR."""
    from . import internal_validation as iv
    from . import nomogram as nomo

    if fit.cr is None:
        return {}
    ids = list(data.ids[dev])
    clinical = data.clinical.loc[ids]
    nomograms = [nomo.cr_nomogram(fit.cr, clinical, config)]
    rcr = fit.tuned.get("RCR")
    rcr_x = None
    if rcr is not None and rcr.name == "LR":  # RCR is a logistic model: its nomogram and validation too
        x = _features(fit, data, ids)[list(fit.selection.features)]
        rcr_x = pd.concat([x, design(clinical, fit.cr.codings)], axis=1)
        nomograms.append(nomo.pipeline_nomogram(rcr.estimator, rcr_x, name="RCR", codings=fit.cr.codings,
                                                config=config))
    tables = {nomo.FILE: pd.concat([n.table for n in nomograms], ignore_index=True),
              nomo.AXES_FILE: pd.concat([n.axes for n in nomograms], ignore_index=True)}
    if n_resamples:
        results = []
        for procedure in iv.PROCEDURES:
            logger.info(f"internal validation of CR ({procedure}): Harrell's bootstrap, {n_resamples} resamples")
            results.append(iv.validate_cr(clinical, config, fit.cr, procedure=procedure, alpha=alpha,
                                          n_resamples=n_resamples, seed=seed))
        if rcr_x is not None:
            logger.info(f"internal validation of RCR ({iv.FIXED}): Harrell's bootstrap, {n_resamples} resamples")
            results.append(iv.validate_estimator(rcr.estimator, rcr_x, data.y[dev], model="RCR",
                                                 n_resamples=n_resamples, seed=seed))
        tables[iv.FILE] = iv.internal_validation_table(results)
    return tables


def _check_earlier_train(run: Path) -> None:
    if not (run / rf.PREDICTIONS).is_file() or not (run / MODELS_DIR / "models.csv").is_file():
        raise InputError(f"{run}: `--arms deep` alone adds the deep models to an earlier `dlr train` of this run "
                         "folder, and there is none (no predictions.csv and models/models.csv); include the "
                         "clinical and radiomics arms in --arms, or train them first")


def _train_deep_alone(study, run: Path, data: _Data, dev: np.ndarray, *, seed: int, deep, device: str, jobs: int,
                      oof: bool, bar: bool) -> TrainSummary:
    """``dlr train --arms deep``: the deep arm added to an earlier ``dlr train`` of this run folder.

    DLRCR fuses with RCR's scores of the earlier train (its rows of predictions.csv and
    predictions_oof.csv; none there: DLRCR is left out); the earlier models' rows of
    predictions.csv, predictions_oof.csv and models.csv, and their files in models/, are kept
    as they are, and the deep models' rows and ``models/deep/`` replaced.
    """
    import hashlib

    from .deep.arm import FUSION_PARTNER

    config = study.config
    _check_earlier_train(run)
    previous, table = run / rf.PREDICTIONS, run / MODELS_DIR / "models.csv"
    old = read_back(pd.read_csv(previous, dtype={"patient_id": str}, float_precision="round_trip"))
    stale = sorted(set(data.ids) ^ set(old["patient_id"]))
    if stale:
        raise InputError(f"{previous}: its patients differ from RUN/split.csv's ({', '.join(stale[:10])}); rerun "
                         "`dlr train` with every arm")
    old_oof = run / OOF_PREDICTIONS
    earlier_oof = (read_back(pd.read_csv(old_oof, dtype={"patient_id": str}, float_precision="round_trip"))
                   if old_oof.is_file() else None)
    rcr = old[old["model"] == FUSION_PARTNER]
    partner = None
    if len(rcr):
        partner = _partner({FUSION_PARTNER: rcr.set_index("patient_id")["y_score"].reindex(list(data.ids))},
                           earlier_oof, data.ids)
    # RCR's scores enter DLRCR: their digest is recorded (predictions.csv itself is rewritten here)
    digest = hashlib.sha256()
    if partner is not None:
        digest.update(np.ascontiguousarray(partner.scores).tobytes() + np.ascontiguousarray(partner.oof).tobytes())
    info = provenance(inputs={"clinical.csv": study.root / "clinical.csv", "study.yaml": study.root / "study.yaml",
                              SPLIT_FILE: run / SPLIT_FILE},
                      settings={"arms": ["deep"], "n_folds": len(set(data.fold[dev])), "oof": oof,
                                "dlrcr_partner_sha256": digest.hexdigest() if partner is not None else None},
                      seed=seed)
    if partner is None:
        logger.info(f"deep: no {FUSION_PARTNER} scores with out-of-fold predictions in the earlier train (train the "
                    "clinical and radiomics arms first); DLRCR is left out")
    result = _deep_arm(study, run, data, dev, partner, settings=deep, device=device, jobs=jobs, seed=seed, oof=oof,
                       bar=bar)
    rank = {m: k for k, m in enumerate(MODEL_ORDER + list(COMPARATORS))}
    new = _predictions(data, config, result.scores, None)
    predictions = pd.concat([old[~old["model"].isin(DEEP_MODELS)], new[old.columns]], ignore_index=True)
    predictions = predictions.assign(_m=predictions["model"].map(rank).fillna(len(rank))).sort_values(
        "_m", kind="stable").drop(columns="_m").reset_index(drop=True)
    oof_frame = None
    if result.oof is not None:
        y_of = dict(zip(data.ids, data.y))
        oof_frame = result.oof.assign(y_true=result.oof["patient_id"].map(y_of))
    empty = _ArmFit(None, None, None, {}, None)
    models = _models_table(empty, data, dev, result.scores, oof_frame, deep=result)
    old_models = read_back(pd.read_csv(table, float_precision="round_trip"))
    kept = old_models[~old_models["model"].isin(DEEP_MODELS)].copy()
    # as a whole train writes it: the other arms' rows in their order, then the deep arm's
    models = pd.concat([kept, models], ignore_index=True)
    _write_deep_alone(run, predictions, models.reset_index(drop=True), oof_frame, result, info)
    _replace_bundle_deep(run, result, predictions)
    return TrainSummary(run, models.reset_index(drop=True), _performance(predictions), _truth_auc(study, data), None,
                        predictions, config.dev_cohort)


def _replace_bundle_deep(run: Path, deep, predictions: pd.DataFrame) -> None:
    """``RUN/model/`` with the new deep models (the files just written read back)."""
    from .frozen import replace_deep_members

    oof_path = run / OOF_PREDICTIONS
    oof_table = (read_back(pd.read_csv(oof_path, dtype={"patient_id": str}, float_precision="round_trip"))
                 if oof_path.is_file() else None)
    old = read_back(pd.read_csv(run / rf.PREDICTIONS, dtype={"patient_id": str}, float_precision="round_trip"))
    fitted = set(MODEL_ORDER) & set(old["model"])
    bounded = {m for m, g in old.groupby("model") if g["y_score"].between(0.0, 1.0).all()}
    write_model_bundle(run, replace_deep_members(run, deep, old, oof_table, fitted | bounded))


def _write_deep_alone(run: Path, predictions: pd.DataFrame, models: pd.DataFrame, oof_frame, deep, info) -> None:
    """predictions.csv, predictions_oof.csv and models/ of a deep-only train, all replaced or none
    (as :func:`_write`); the earlier models' files in models/ are carried over with their
    provenance entries, the new and rewritten ones recorded with this run's."""
    import shutil

    mdir_old = run / MODELS_DIR
    old_oof = run / OOF_PREDICTIONS
    oof_table = None
    if oof_frame is not None:
        frames = [oof_frame[["patient_id", "fold", "model", "y_true", "y_score"]]]
        if old_oof.is_file():  # the earlier models' out-of-fold rows, kept
            kept = read_back(pd.read_csv(old_oof, dtype={"patient_id": str}, float_precision="round_trip"))
            kept = kept[~kept["model"].isin(DEEP_MODELS)]
            frames.insert(0, kept[["patient_id", "model", "y_true", "y_score"]].assign(fold=0))
        oof_table = _oof_predictions(predictions, pd.concat(frames, ignore_index=True))
    parameters = json.loads((mdir_old / "parameters.json").read_text()) if (mdir_old / "parameters.json").is_file() \
        else {}
    parameters["thresholds"] = {r.model: float(r.threshold) for r in models.itertuples()}
    with contextlib.ExitStack() as stack:
        oof_tmp = stack.enter_context(staged_file(old_oof)) if oof_table is not None else None
        predictions_tmp = stack.enter_context(staged_file(run / rf.PREDICTIONS))
        with staged_folder(mdir_old) as mdir:
            for path in sorted(mdir_old.iterdir()):
                if path.name == "deep":
                    continue
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, mdir / path.name)
            write_csv(predictions, predictions_tmp, float_format="%.17g")
            if oof_tmp is not None:
                write_csv(oof_table, oof_tmp, float_format="%.17g")
            write_csv(models, mdir / "models.csv", float_format="%.10g")
            (mdir / "parameters.json").write_text(clf.parameters_json(parameters) + "\n")
            _write_deep(mdir / "deep", deep)
            written = ["models.csv", "parameters.json"] + sorted(
                str(p.relative_to(mdir)) for p in (mdir / "deep").rglob("*") if p.is_file())
            record_provenance(mdir, written, info)
    written = [rf.PREDICTIONS] + ([OOF_PREDICTIONS] if oof_table is not None else [])
    record_provenance(run, written, info)


# --------------------------------------------------------------------------------------------
# the entry point


def _truth_auc(study, data: _Data) -> Optional[pd.DataFrame]:
    path = study.root / "truth.csv"
    if not path.is_file():
        return None
    truth = pd.read_csv(path, dtype={"patient_id": str}).set_index("patient_id")
    if "true_risk" not in truth.columns:
        return None
    rows = []
    for cohort in dict.fromkeys(data.cohort):
        w = data.cohort == cohort
        risk = truth["true_risk"].reindex(data.ids[w]).to_numpy(dtype=float)
        ok = np.isfinite(risk)
        rows.append({"cohort": cohort, "n": int(ok.sum()), "auc": rank_auc(data.y[w][ok], risk[ok])})
    return pd.DataFrame(rows)


def _study_data(study, run: Path, arms, *, n_folds: int, seed: int) -> tuple[pd.DataFrame, _Data]:
    """clinical.csv (ids as text) and the patients aligned on ``RUN/split.csv`` (made or read):
    outcomes, folds, and for the radiomics arm the features and, with harmonization, each
    patient's batch level."""
    config = study.config
    clinical = study.clinical.copy()
    clinical[config.id_column] = clinical[config.id_column].astype(str)
    split = load_or_make_split(run, clinical, id_column=config.id_column, cohort_column=config.cohort_column,
                               outcome_column=config.outcome_column, dev_cohort=config.dev_cohort,
                               n_folds=n_folds, seed=seed,
                               clinical_path=study.root / "clinical.csv")
    ids = split["patient_id"].to_numpy(dtype=object)
    indexed = clinical.set_index(config.id_column, drop=False).loc[list(ids)]
    indexed.index.name = None
    data = _Data(ids, split["cohort"].to_numpy(dtype=object), indexed[config.outcome_column].to_numpy(dtype=int),
                 split["fold"].to_numpy(dtype=int), indexed, None, None)
    if "radiomics" in arms:
        data.features, data.reader2 = _load_features(run, ids)
        logger.info(f"radiomics: {data.features.shape[1]} features of {len(ids)} patients "
                    f"({len(data.reader2)} with a second reader)")
        if config.harmonization is not None:
            data.batch = _batch_levels(clinical, config, indexed, ids)
            logger.info(f"harmonization: ComBat across {config.harmonization.batch} levels "
                        f"{', '.join(sorted(set(data.batch)))}, fitted on the training patients of each fit")
    return clinical, data


def train_study(study, out, *, arms=("clinical", "radiomics"), jobs: int = 1, n_folds: Optional[int] = None,
                seed: Optional[int] = None, lasso_rule: str = "min", icc_threshold: float = 0.90,
                alpha: float = 0.05, oof: bool = True, scheduler: Optional[str] = None,
                deep=None, device: str = "auto",
                bar: bool = False, internal_validation_b: int = DEFAULT_RESAMPLES) -> TrainSummary:
    """Fit the clinical and radiomics arms on the development cohort and predict every cohort;
    each step is logged (:mod:`dlr.core.progress`).

    Parameters
    ----------
    study : modeling.study.Study
    out : path
        The run folder; the radiomics arm reads ``RUN/features/radiomics.csv`` (``dlr extract``).
    arms : iterable of {"clinical", "radiomics", "deep"}
        Which models to fit (RCR needs clinical and radiomics, DLRCR all three).
    jobs : int
        Processes for the out-of-fold refits.
    n_folds, seed :
        The split (defaults: study.yaml's n_folds and seed).
    lasso_rule : {"min", "1se"}
    icc_threshold, alpha :
        The ICC filter and the significance level of the univariate steps.
    oof : bool
        Compute the out-of-fold predictions (5 refits of the whole chain).
    scheduler : str, optional
        A Dask scheduler's address: the out-of-fold refits run there instead of in ``jobs`` processes.
    deep : modeling.deep.settings.DeepSettings, optional
        The deep arm's settings (default: the quick profile's).
    device : {"auto", "cpu", "cuda"}
        Where the deep arm trains.
    bar : bool
        A progress bar per fit (steps, loss) on stderr (with ``jobs`` 1; a line per finished fit otherwise).
    internal_validation_b : int
        Bootstrap resamples of the internal validation of the logistic models
        (``models/internal_validation.csv``; drawn with ``seed``); 0 skips it.

    Returns
    -------
    TrainSummary
    """
    arms = tuple(dict.fromkeys(arms))
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise InputError(f"unknown arm(s) {unknown or arms}; the arms are {', '.join(ARMS)}")
    if lasso_rule not in ("min", "1se"):
        raise InputError(f"lasso rule must be 'min' or '1se', got {lasso_rule!r}")
    if isinstance(internal_validation_b, bool) or int(internal_validation_b) != internal_validation_b \
            or internal_validation_b < 0:
        raise InputError(f"the internal validation's bootstrap resamples (--validate-b) must be a whole number, 0 or "
                         f"more (0 skips it), got {internal_validation_b!r}")
    config = study.config
    seed = config.seed if seed is None else int(seed)
    run = Path(out)
    if "deep" in arms and not {"clinical", "radiomics"} & set(arms):
        _check_earlier_train(run)
    clinical, data = _study_data(study, run, arms, n_folds=config.n_folds if n_folds is None else n_folds, seed=seed)
    dev = data.cohort == config.dev_cohort
    if "deep" in arms and not {"clinical", "radiomics"} & set(arms):
        return _train_deep_alone(study, run, data, dev, seed=seed, deep=deep, device=device, jobs=jobs, oof=oof,
                                 bar=bar)
    # hashed now, beside the reads, rather than after the minutes of fitting
    info = _provenance(study, run, arms=arms, n_folds=len(set(data.fold[dev])), lasso_rule=lasso_rule,
                       icc_threshold=icc_threshold, alpha=alpha, oof=oof, seed=seed,
                       internal_validation_b=internal_validation_b)
    kwargs = {"arms": arms, "seed": seed, "lasso_rule": lasso_rule, "icc_threshold": icc_threshold, "alpha": alpha}
    logger.info(f"fitting on the {int(dev.sum())} {config.dev_cohort!r} patients")
    left_out: list[str] = []  # "models<TAB>why", for models/left_out.csv and the report
    try:
        fit = _fit_chain(data, config, dev, rcr=False, notes=left_out, **kwargs)
    except NothingSelected as exc:
        if set(arms) == {"radiomics"}:
            raise InputError(f"{exc}; with --arms radiomics alone no model is left to fit: add the clinical arm "
                             "(the staging systems and indexes are then compared) or the deep arm, or look at the "
                             "features (RUN/features/radiomics.csv) and the selection's settings") from None
        without = ["Radiomics-" + n for n in clf.CLASSIFIERS] + ["RCR"] + (["DLRCR"] if "deep" in arms else [])
        warnings.warn(f"{exc}; {', '.join(without)} are left out", stacklevel=2)
        left_out.append(f"{', '.join(without)}\t{exc}")
        arms = tuple(a for a in arms if a != "radiomics")
        kwargs["arms"] = arms
        with warnings.catch_warnings():  # the clinical arm's warnings were given by the first attempt
            warnings.simplefilter("ignore")
            fit = _fit_chain(data, config, dev, rcr=False, **kwargs)
    oof_frame = oof_log = oof_selection = None
    if oof:
        logger.info("out-of-fold predictions: refitting the whole chain without each fold")
        fallback = _ArmFit(fit.cr, None, _Kept(tuple(fit.selection.features)) if fit.selection is not None else None,
                           {}, None)
        oof_frame, oof_log, oof_selection = _out_of_fold(data, config, kwargs, jobs=jobs, fallback=fallback,
                                                         scheduler=scheduler)
        for row in oof_log.itertuples():
            warnings.warn(f"out-of-fold refit without fold {row.fold}: {row.note}", stacklevel=2)
    if fit.selection is not None:
        best, chosen_by = _choose_classifier(fit, oof_frame)
        if oof_frame is None:
            warnings.warn(f"RCR's classifier ({best}) is chosen by development CV AUC, which is optimistic (the "
                          "features were selected on every development patient); without --no-oof it is chosen "
                          "on nested out-of-fold AUCs", stacklevel=2)
        _fit_rcr(fit, data, data.ids[dev], data.fold[dev], data.y[dev], best, seed=seed)
        logger.info(f"best classifier by {chosen_by}: {best}")
    scores = _predict_chain(fit, data, data.ids)
    unharmonised = (_unharmonised_predictions(data, config, fit, dev, kwargs)
                    if fit.combat is not None and fit.selection is not None else None)
    logistic_tables = _logistic_tables(fit, data, config, dev, n_resamples=internal_validation_b, seed=seed,
                                       alpha=alpha)
    deep_result = None
    if "deep" in arms:
        deep_result = _deep_arm(study, run, data, dev, _partner(scores, oof_frame, data.ids), settings=deep,
                                device=device, jobs=jobs, seed=seed, oof=oof, bar=bar)
        scores.update(deep_result.scores)
        if oof_frame is not None and deep_result.oof is not None:
            y_of = dict(zip(data.ids, data.y))
            extra = deep_result.oof.assign(y_true=deep_result.oof["patient_id"].map(y_of))
            oof_frame = pd.concat([oof_frame, extra[oof_frame.columns]], ignore_index=True)
    if oof_frame is not None:
        # a fold's refit may fit a model the whole development cohort did not (e.g. CR factors
        # selected in a fold but none on every patient): predictions_oof.csv holds only the
        # models of predictions.csv (contract 4.1), the others are logged
        extra = sorted(set(oof_frame["model"]) - set(scores))
        if extra:
            warnings.warn(f"out-of-fold predictions of {', '.join(extra)} are dropped: the model was not fitted on "
                          "the whole development cohort", stacklevel=2)
            oof_frame = oof_frame[oof_frame["model"].isin(list(scores))].reset_index(drop=True)
        _check_coverage(oof_frame, scores, data, dev)

    comparators, erasl_label, erasl = comparator_table(clinical, config) if "clinical" in arms else (None, None, None)
    predictions = _predictions(data, config, scores, comparators)
    models = _models_table(fit, data, dev, scores, oof_frame, deep=deep_result)
    parameters = _parameters(fit, data, dev, models, seed, erasl_label)
    performance = _performance(predictions)
    truth = _truth_auc(study, data)
    if "deep" in arms and "DLRCR" not in scores and not any("DLRCR" in line for line in left_out):
        left_out.append("DLRCR\tit fuses the best network with RCR, which was not fitted")
    if oof_selection is not None:
        logistic_tables[OOF_SELECTION_FILE] = oof_selection
    if fit.combat is not None:
        logistic_tables[HARMONIZATION_FILE] = _harmonization_effect(fit, data)
    if unharmonised is not None:
        logistic_tables[UNHARMONISED_FILE] = unharmonised
    logistic_tables[LEFT_OUT_FILE] = pd.DataFrame([line.split("\t", 1) for line in left_out],
                                                  columns=["models", "reason"])
    # built before anything is written: a bundle that cannot be made stops the train whole
    bundle = _bundle_members(study, run, clinical, fit, predictions, oof_frame, deep_result, erasl, seed=seed)
    _write(run, predictions, fit, models, parameters, oof_frame, info, oof_log, deep=deep_result,
           tables=logistic_tables)
    write_model_bundle(run, bundle)
    return TrainSummary(run, models, performance, truth,
                        fit.selection.counts if fit.selection is not None else None, predictions, config.dev_cohort)


def _bundle_members(study, run: Path, clinical: pd.DataFrame, fit: _ArmFit, predictions: pd.DataFrame, oof_frame,
                    deep, erasl, *, seed: int) -> dict:
    """The members of ``RUN/model/`` (:mod:`dlr.modeling.frozen`): every fitted model, the
    development cohort's thresholds and risk maps, and what scoring a new patient needs."""
    config = study.config
    oof_table = _oof_predictions(predictions, oof_frame) if oof_frame is not None else None
    fitted = set(MODEL_ORDER) & set(predictions["model"])
    # the comparators whose scores are all in [0, 1] count as probabilities, as in `dlr analyze`
    bounded = {m for m, g in predictions.groupby("model") if g["y_score"].between(0.0, 1.0).all()}
    features_dir = run / FEATURES_DIR if fit.selection is not None else None
    return bundle_members(config=config, study_yaml=study.root / "study.yaml", clinical=clinical,
                          fit=fit, predictions=predictions, oof_table=oof_table, deep=deep, erasl=erasl,
                          features_dir=features_dir, seed=seed, probability_models=fitted | bounded)


def _batch_levels(clinical: pd.DataFrame, config, indexed: pd.DataFrame, ids) -> pd.Series:
    """Each patient's batch level (text) for harmonisation; InputError listing what `dlr validate`'s
    batch checks find (a missing batch, a level the development cohort lacks or has once)."""
    from dlr.core.tables import level_texts

    from .radiomics.harmonization import batch_problems

    problems = batch_problems(clinical, config)
    if problems:
        raise InputError("harmonization (study.yaml): " + "; ".join(str(p) for p in problems))
    column = config.harmonization.batch
    return pd.Series(level_texts(indexed[column]), index=list(ids), name=column, dtype=object)


def _harmonization_effect(fit: _ArmFit, data: _Data) -> pd.DataFrame:
    """``models/harmonization.csv``: per cohort and feature, the share of the feature's variance
    that the batch explains (eta squared, between-level over total sum of squares) before and
    after the development fit's ComBat, and whether the final model selected the feature; NaN
    where the cohort has a single batch level or the feature does not vary."""
    ids = list(data.ids)
    before = _fill(data, fit.medians, ids)
    after = _features(fit, data, ids)
    selected = set(fit.selection.features) if fit.selection is not None else set()
    frames = []
    for cohort in dict.fromkeys(data.cohort):
        rows = data.cohort == cohort
        levels = data.batch.loc[data.ids[rows]].to_numpy()
        frames.append(pd.DataFrame({"cohort": cohort, "feature": list(before.columns),
                                    "eta2_before": _eta_squared(before.loc[data.ids[rows]].to_numpy(float), levels),
                                    "eta2_after": _eta_squared(after.loc[data.ids[rows]].to_numpy(float), levels),
                                    "selected": [f in selected for f in before.columns]}))
    return pd.concat(frames, ignore_index=True)


def _eta_squared(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Between-group over total sum of squares of each column of ``x`` for the groups ``levels``."""
    names = sorted(set(levels))
    total = ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    if len(names) < 2:
        return np.full(x.shape[1], np.nan)
    between = sum((levels == lv).sum() * (x[levels == lv].mean(axis=0) - x.mean(axis=0)) ** 2 for lv in names)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, between / np.where(total > 0, total, 1.0), np.nan)


def _unharmonised_predictions(data: _Data, config, fit: _ArmFit, dev: np.ndarray, kwargs: dict
                              ) -> Optional[pd.DataFrame]:
    """``models/unharmonised_predictions.csv``: every patient scored by the radiomics models and RCR
    of the development chain refitted without ComBat (:func:`_fit_unharmonised`), in the columns
    of predictions.csv (contract section 4) and the batch column; None where that refit selects
    no feature (with a warning)."""
    logger.info(f"harmonization: refitting the development chain without ComBat on the same {int(dev.sum())} "
                f"development patients, folds and seed, RCR in {fit.best} (a sensitivity analysis: no out-of-fold "
                "refits)")
    start = time.perf_counter()
    plain = _fit_unharmonised(data, config, fit, dev, kwargs)
    if plain is None:
        return None
    scores = {m: s for m, s in _predict_chain(plain, _without_batch(data), data.ids).items() if m != "CR"}
    table = _predictions(data, config, scores, None)
    batch = config.harmonization.batch
    if batch not in table.columns:  # the stratifier of results/harmonization_strata.csv
        table[batch] = table["patient_id"].map(data.clinical[batch]).to_numpy()
    logger.info(f"harmonization: the unharmonised refit ({', '.join(scores)}) took "
                f"{time.perf_counter() - start:.1f} s")
    return table


def _without_batch(data: _Data) -> _Data:
    """``data`` without its batch levels: the chain fitted on it harmonises nothing."""
    return dataclasses.replace(data, batch=None)


def _fit_unharmonised(data: _Data, config, fit: _ArmFit, dev: np.ndarray, kwargs: dict) -> Optional[_ArmFit]:
    """The development chain (medians, ICC, tests, LASSO, the five classifiers, RCR) refitted on
    the development patients ``dev`` alone without ComBat: the same folds and seed as ``fit``
    (the harmonised development fit), its CR model as fitted (harmonisation does not touch the
    clinical factors) and RCR in its classifier ``fit.best``. None, with a warning, where the
    selection keeps no feature. The refit's warnings are given again, prefixed."""
    plain = _without_batch(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            refit = _fit_chain(plain, config, dev, rcr=False, **{**kwargs, "arms": ("radiomics",)})
        except NothingSelected as exc:
            refit = None
            reason = str(exc)
        if refit is not None:
            refit.cr = fit.cr
            _fit_rcr(refit, plain, data.ids[dev], data.fold[dev], data.y[dev], fit.best, seed=kwargs["seed"])
    for message in dict.fromkeys((w.category, str(w.message)) for w in caught):
        warnings.warn(f"the unharmonised sensitivity refit: {message[1]}", message[0], stacklevel=3)
    if refit is None:
        warnings.warn(f"the unharmonised sensitivity refit: {reason}; {UNHARMONISED_FILE} is not written and the "
                      "report has no scanner-stratified comparison with and without harmonisation", stacklevel=3)
    return refit


def _provenance(study, run: Path, *, arms, n_folds: int, lasso_rule: str, icc_threshold: float, alpha: float,
                oof: bool, seed: int, internal_validation_b: int = DEFAULT_RESAMPLES) -> dict:
    """The provenance of predictions.csv and models/: the study's files, the run's split and
    features, and every option that changes a fitted value (not ``jobs``)."""
    inputs = {"clinical.csv": study.root / "clinical.csv", "study.yaml": study.root / "study.yaml"}
    if "radiomics" in arms:
        inputs["features/radiomics.csv"] = run / FEATURES_DIR / "radiomics.csv"
    inputs[SPLIT_FILE] = run / SPLIT_FILE
    # n_folds: the folds of the split actually used (an existing split.csv wins over --n-folds)
    settings = {"arms": list(arms), "n_folds": n_folds, "lasso_rule": lasso_rule, "icc_threshold": icc_threshold,
                "alpha": alpha, "oof": oof, "internal_validation_b": internal_validation_b}
    return provenance(inputs=inputs, settings=settings, seed=seed)


def _predictions(data: _Data, config, scores: dict, comparators: Optional[pd.DataFrame]) -> pd.DataFrame:
    # contract section 3's order
    order = MODEL_ORDER
    frames = []
    base = pd.DataFrame({"patient_id": data.ids, "cohort": data.cohort, "y_true": data.y})
    # patient attributes that `dlr analyze` reads: the scanner (--strata), follow-up (--time, --event)
    attributes = list(dict.fromkeys(c for c in (config.scanner_column, config.time_column, config.event_column) if c))
    for column in attributes:
        base[column] = data.clinical[column].to_numpy()
    for model in [m for m in order if m in scores]:
        frames.append(base.assign(model=model, y_score=np.asarray(scores[model], dtype=float)))
    if comparators is not None:
        table = comparators.set_index("patient_id").reindex(data.ids)
        for model in COMPARATORS:
            frames.append(base.assign(model=model, y_score=table[model].to_numpy(dtype=float)))
    frame = pd.concat(frames, ignore_index=True)
    missing = ~np.isfinite(frame["y_score"].to_numpy(dtype=float))
    if missing.any():
        gone = frame[missing].groupby("model")["patient_id"].apply(lambda s: ", ".join(s.head(5)))
        warnings.warn("patients without a score are left out of predictions.csv: "
                      + "; ".join(f"{m}: {p}" for m, p in gone.items()), stacklevel=3)
        frame = frame[~missing]
    columns = ["patient_id", "cohort", "model", "y_true", "y_score", *attributes]
    return frame[columns].reset_index(drop=True)


def _choose_classifier(fit: _ArmFit, oof_frame: Optional[pd.DataFrame]) -> tuple[str, str]:
    """RCR's classifier: the highest nested out-of-fold development AUC (``clf.CLASSIFIERS``'
    order on ties), else, without out-of-fold predictions, the highest CV AUC."""
    if oof_frame is not None:
        aucs = {}
        for name in clf.CLASSIFIERS:
            rows = oof_frame[oof_frame["model"] == radiomics_model_name(name)]
            if len(rows):
                aucs[name] = rank_auc(rows["y_true"].to_numpy(dtype=int), rows["y_score"].to_numpy(dtype=float))
        aucs = {n: a for n, a in aucs.items() if np.isfinite(a)}
        if aucs:
            return min(aucs, key=lambda n: (-aucs[n], clf.CLASSIFIERS.index(n))), "nested out-of-fold AUC"
    return clf.best_classifier({n: fit.tuned[radiomics_model_name(n)] for n in clf.CLASSIFIERS}), "CV AUC"


def _check_coverage(oof_frame: pd.DataFrame, scores: dict, data: _Data, dev: np.ndarray) -> None:
    """Warn, naming the model and how many patients, where a fitted model lacks out-of-fold scores."""
    patients = set(data.ids[dev])
    for model in scores:
        covered = set(oof_frame.loc[oof_frame["model"] == model, "patient_id"])
        if covered != patients:
            warnings.warn(f"out-of-fold predictions: {model} has {len(covered & patients)} of {len(patients)} "
                          "development patients (see models/oof_log.csv for the folds' refits)", stacklevel=3)


def calibration_slope(y, p) -> float:
    """Slope b of logit P(y = 1) = a + b logit(p) by maximum likelihood (R ``glm(y ~ qlogis(p))``);
    NaN when undefined (one class, constant p, separation)."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    lp = np.log(p / (1 - p))
    if y.size < 3 or np.unique(y).size < 2 or np.ptp(lp) == 0:
        return float("nan")
    beta = fit_logistic(y, np.column_stack([np.ones(y.size), lp]))
    return float(beta[1]) if np.all(np.isfinite(beta)) else float("nan")


def _models_table(fit: _ArmFit, data: _Data, dev: np.ndarray, scores: dict,
                  oof_frame: Optional[pd.DataFrame] = None, deep=None) -> pd.DataFrame:
    """One row per fitted model: its features, CV scores, nested out-of-fold AUC and calibration
    slope, and its Youden threshold, chosen on the out-of-fold development predictions where they
    exist (``threshold_source``), else on the apparent ones."""
    rows = []
    low, high = CALIBRATION_SLOPE_RANGE
    for model, values in scores.items():
        tuned = fit.tuned.get(model)
        values = np.asarray(values, dtype=float)
        ok = dev & np.isfinite(values)
        held = oof_frame[oof_frame["model"] == model] if oof_frame is not None else None
        y_oof = held["y_true"].to_numpy(dtype=int) if held is not None else None
        s_oof = held["y_score"].to_numpy(dtype=float) if held is not None else None
        # as `dlr analyze` chooses them (contract 4.1): on the out-of-fold predictions where they exist
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if held is not None and len(held):
                threshold, source = youden_threshold(y_oof, s_oof), "out-of-fold"
            else:
                threshold, source = youden_threshold(data.y[ok], values[ok]), "apparent"
        oof_auc = rank_auc(y_oof, s_oof) if held is not None and len(held) else float("nan")
        slope = calibration_slope(y_oof, s_oof) if held is not None and len(held) else float("nan")
        if np.isfinite(slope) and not low <= slope <= high:
            warnings.warn(f"{model}: calibration slope {slope:.2f} on its out-of-fold development predictions, outside "
                          f"{low:g}-{high:g} (its probabilities are {'too extreme' if slope < 1 else 'too compressed'}"
                          "; read its calibration and decision curves with care)", stacklevel=3)
        if model == "CR":
            features, classifier = ", ".join(fit.cr.columns), "logistic"
        elif model == "DLRCR":
            features = f"DL-{deep.best_network} and {deep.fusion.get('partner', 'RCR')} log-odds (out-of-fold)"
            classifier = "logistic (late fusion)"
        elif deep is not None and model in deep.scores:
            features, classifier = "slices of the phases", model.split("-", 1)[1]
        elif model == "RCR":
            features, classifier = f"{len(fit.selection.features)} radiomics + {', '.join(fit.cr.columns)}", fit.best
        else:
            features, classifier = f"{len(fit.selection.features)} radiomics", model.split("-", 1)[1]
        rows.append({"model": model, "classifier": classifier, "features": features,
                     "cv_log_loss": tuned.cv_log_loss if tuned else float("nan"),
                     "cv_auc": tuned.cv_auc if tuned else float("nan"),
                     "cv_auc_sd": tuned.cv_auc_sd if tuned else float("nan"),
                     "oof_auc": oof_auc, "oof_calibration_slope": slope,
                     "best_params": json.dumps(tuned.best_params, sort_keys=True, default=str) if tuned else "",
                     "threshold": threshold, "threshold_source": source,
                     "best_classifier": fit.best is not None and model == radiomics_model_name(fit.best)})
    return pd.DataFrame(rows)


def _parameters(fit: _ArmFit, data: _Data, dev: np.ndarray, models: pd.DataFrame, seed: int, erasl_label) -> dict:
    params = {"seed": seed, "folds": {p: int(f) for p, f in zip(data.ids[dev], data.fold[dev])},
              "thresholds": {r.model: float(r.threshold) for r in models.itertuples()}}
    if fit.cr is not None:
        params["CR"] = fit.cr.parameters()
    if fit.selection is not None:
        sel = fit.selection
        params["radiomics"] = {
            "medians": {k: float(v) for k, v in fit.medians.items()},
            "icc_kept": list(sel.icc.kept) if sel.icc is not None else None,
            "univariate_kept": list(sel.univariate.kept),
            "lasso": {"C": float(sel.lasso.chosen_C), "intercept": float(sel.lasso.intercept),
                      "coefficients": {r.feature: float(r.coefficient) for r in sel.lasso.selected.itertuples()}},
            "selected": list(sel.features),
            "best_classifier": fit.best,
        }
        if fit.combat is not None:  # fitted on the development patients; applied unchanged to the others
            params["radiomics"]["harmonization"] = fit.combat.parameters()
        params["models"] = {name: clf.fitted_parameters(model) for name, model in fit.tuned.items()}
    params["erasl"] = erasl_label
    return params


def _performance(predictions: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, cohort), g in predictions.groupby(["model", "cohort"], sort=False):
        y = g["y_true"].to_numpy(dtype=int)
        rows.append({"model": model, "cohort": cohort, "n": len(g), "n_events": int(y.sum()),
                     "auc": rank_auc(y, g["y_score"].to_numpy(dtype=float))})
    return pd.DataFrame(rows)


OOF_PREDICTIONS = rf.OOF_PREDICTIONS


def _oof_predictions(predictions: pd.DataFrame, oof_frame: pd.DataFrame) -> pd.DataFrame:
    """``RUN/predictions_oof.csv`` (contract 4.1) from the out-of-fold scores: the columns of
    predictions.csv, each patient's cohort (the development cohort) and attributes (the scanner)
    taken from predictions.csv; rows in the order of predictions.csv's models, then patients."""
    columns = list(predictions.columns)
    attributes = [c for c in columns if c not in ("model", "y_true", "y_score")]
    patients = predictions.drop_duplicates("patient_id")[attributes]
    frame = oof_frame[np.isfinite(oof_frame["y_score"].to_numpy(dtype=float))]
    frame = frame.drop(columns="fold").merge(patients, on="patient_id", how="inner", validate="many_to_one")
    order = {m: k for k, m in enumerate(dict.fromkeys(predictions["model"]))}
    rank = {p: k for k, p in enumerate(patients["patient_id"])}
    frame = frame.assign(_m=frame["model"].map(order), _p=frame["patient_id"].map(rank))
    return frame.sort_values(["_m", "_p"], kind="stable")[columns].reset_index(drop=True)


def _write(run: Path, predictions: pd.DataFrame, fit: _ArmFit, models: pd.DataFrame, parameters: dict,
           oof_frame: Optional[pd.DataFrame], info: Optional[dict] = None,
           oof_log: Optional[pd.DataFrame] = None, deep=None,
           tables: Optional[dict] = None) -> None:
    """Write predictions.csv, predictions_oof.csv and models/ together: all are replaced, or none.

    Without out-of-fold predictions (``--no-oof``) an earlier ``predictions_oof.csv`` is
    removed in the same step (and its provenance entry), so the two files never come from
    different runs. ``info`` (:func:`dlr.core.output.provenance`) is recorded for every file of
    ``models/`` in ``models/provenance.json`` and for predictions.csv (and predictions_oof.csv)
    in ``RUN/provenance.json``; it never goes into parameters.json, whose bytes depend on the
    fitted parameters alone.
    """
    run.mkdir(parents=True, exist_ok=True)
    oof_table = _oof_predictions(predictions, oof_frame) if oof_frame is not None else None
    if oof_table is not None and oof_table.empty:  # no fold's refit scored anything: no file to analyse
        oof_table = None
    # Everything is written under temporary names first, so an exception in the block leaves the
    # earlier models/, predictions.csv and predictions_oof.csv as they were (and no temporary
    # behind). On success the innermost block's exit records models/provenance.json and swaps
    # models/ in (then removes the moved-aside old one); then the earlier predictions_oof.csv is
    # deleted, and the outer exits rename predictions.csv, then the new predictions_oof.csv (if
    # any). So the out-of-fold file beside predictions.csv is always the one written with it, or
    # none: a crash between these steps leaves the new models/ beside the old predictions.csv
    # without an out-of-fold file, or the new predictions.csv without its out-of-fold file yet;
    # one after them, before RUN/provenance.json is rewritten below, leaves the entries there
    # naming the earlier files' SHA-256.
    with contextlib.ExitStack() as stack:
        oof_tmp = stack.enter_context(staged_file(run / OOF_PREDICTIONS)) if oof_table is not None else None
        predictions_tmp = stack.enter_context(staged_file(run / rf.PREDICTIONS))  # exits, so is renamed, first
        with staged_folder(run / MODELS_DIR, provenance_info=info) as mdir:
            write_csv(predictions, predictions_tmp, float_format="%.17g")
            if oof_tmp is not None:
                write_csv(oof_table, oof_tmp, float_format="%.17g")
            _write_models(mdir, fit, models, parameters, oof_frame)
            if deep is not None:
                _write_deep(mdir / "deep", deep)
            if oof_log is not None:
                write_csv(oof_log, mdir / "oof_log.csv")
            for name, table in (tables or {}).items():  # internal validation and nomograms
                write_csv(table, mdir / name, float_format="%.17g")
        (run / OOF_PREDICTIONS).unlink(missing_ok=True)
    if info is not None:
        written = [rf.PREDICTIONS] + ([OOF_PREDICTIONS] if oof_table is not None else [])
        record_provenance(run, written, info, drop=[] if oof_table is not None else [OOF_PREDICTIONS])


def _write_models(mdir: Path, fit: _ArmFit, models: pd.DataFrame, parameters: dict,
                  oof_frame: Optional[pd.DataFrame]) -> None:
    """The files of ``RUN/models/`` into folder ``mdir``."""
    write_csv(models, mdir / "models.csv", float_format="%.10g")
    (mdir / "parameters.json").write_text(clf.parameters_json(parameters) + "\n")
    if fit.cr is not None:
        write_csv(fit.cr.selection.variables, mdir / "cr_selection.csv", float_format="%.10g")
    if fit.tuned:
        tuning = pd.concat([m.cv_results.assign(model=name) for name, m in fit.tuned.items()], ignore_index=True)
        write_csv(tuning[["model"] + [c for c in tuning.columns if c != "model"]], mdir / "tuning.csv",
                  float_format="%.10g")
    if fit.selection is not None:
        sel = fit.selection
        write_csv(sel.counts, mdir / "selection_counts.csv")
        if sel.icc is not None:
            write_csv(sel.icc.table, mdir / "icc.csv", float_format="%.10g")
        write_csv(sel.univariate.table, mdir / "univariate.csv", float_format="%.10g")
        write_csv(sel.lasso.cv, mdir / "lasso_cv.csv", float_format="%.10g")
        write_csv(sel.lasso.path, mdir / "lasso_path.csv", float_format="%.10g")
        write_csv(sel.lasso.selected, mdir / "radiomics_selected.csv", float_format="%.17g")
        _lasso_figure(sel.lasso, mdir)
    if oof_frame is not None:
        write_csv(oof_frame, mdir / "oof_predictions.csv", float_format="%.17g")


def _write_deep(folder: Path, deep) -> None:
    """``RUN/models/deep/``: a checkpoint per network, the training log and its curves, the
    networks' table, the best ResNet's deep features and the settings."""
    from .deep.arm import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    for name, state in deep.checkpoints.items():
        (folder / f"{name}.pt").write_bytes(save_checkpoint(state))
    write_csv(deep.log, folder / "training_log.csv", float_format="%.10g")
    write_csv(deep.networks, folder / "networks.csv", float_format="%.10g")
    write_csv(deep.deep_features, folder / "deep_features.csv", float_format="%.9g")
    from .deep.settings import PAPER_SETTINGS, DeepSettings

    recipe = DeepSettings(**{**deep.settings, "networks": tuple(deep.settings["networks"]),
                             "ring_mm": tuple(deep.settings["ring_mm"])}).recipe()
    (folder / "settings.json").write_text(json.dumps({**deep.settings, "device": deep.device,
                                                      "best_network": deep.best_network,
                                                      "dlrcr_fusion": deep.fusion, "recipe": recipe,
                                                      "paper_settings": PAPER_SETTINGS},
                                                     indent=2, sort_keys=True) + "\n")
    _training_curves(deep.log, folder / "training_curves.png")
    if deep.cam_rows:
        from .deep.arm import scorecam_table
        from .deep.cam import overlay_figure

        overlay_figure(deep.cam_rows, folder / "scorecam.png", phases=list(deep.phases))
        write_csv(scorecam_table(deep.cam_rows, deep.phases), folder / "scorecam.csv", float_format="%.6g")


def _training_curves(log: pd.DataFrame, path: Path) -> None:
    """Training and held-out-fold loss, and held-out-fold AUC, per optimiser step, one colour per network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlr.core.plotting import plot_training_curves

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), constrained_layout=True)
    plot_training_curves(log, axes=axes)
    fig.savefig(path, dpi=200)
    plt.close(fig)


def _lasso_figure(lasso, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .radiomics.selection import plot_lasso

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    plot_lasso(lasso, axes=axes)
    with matplotlib.rc_context({"svg.hashsalt": "dlr"}):  # the SVG's element ids, else random per run
        for ext in ("png", "svg"):
            fig.savefig(folder / f"lasso.{ext}", dpi=150, metadata={"Date": None} if ext == "svg" else None)
    plt.close(fig)
