"""The run folder (contract section 3), owned here: the paths of ``RUN/``, the models' vocabulary
in report order, the name of the out-of-fold cohort, and one reader of the run's tables with one
rule for missing values.

Every stage that writes into a run folder and everything that reads one back (the analysis,
the report, the reviewer package) names the run's files and models through this module, so a
name is spelled once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from .csvsafe import read_back
from .errors import InputError

# ---- paths, relative to RUN --------------------------------------------------------------
RUN_MARKER = "run.json"
RUN_LOG = "run.log"
STAGES_DIR = "stages"
INPUTS_DIR = "inputs"
SPLIT = "split.csv"
FEATURES_DIR = "features"
RADIOMICS_FEATURES = f"{FEATURES_DIR}/radiomics.csv"
CLINICAL_DIR = "clinical"
STAGING_DIR = "staging"
MODELS_DIR = "models"
MODELS_TABLE = f"{MODELS_DIR}/models.csv"
#: each model the run was asked for and could not fit, and why (``models``, ``reason``)
LEFT_OUT = f"{MODELS_DIR}/left_out.csv"
#: what each out-of-fold refit selected: fold, chain (CR factors or radiomics features), item, and
#: whether the development cohort's selection stood in for the fold's failed one
OOF_SELECTION = f"{MODELS_DIR}/oof_selection.csv"
PREDICTIONS = "predictions.csv"
OOF_PREDICTIONS = "predictions_oof.csv"
RESULTS_DIR = "results"
RESULTS_JSON = "results.json"
#: with study.yaml ``harmonization``: every patient scored by the radiomics models and RCR of the
#: development chain refitted without ComBat (the harmonisation's sensitivity analysis; contract 4's columns)
UNHARMONISED_PREDICTIONS = f"{MODELS_DIR}/unharmonised_predictions.csv"
#: the AUCs by batch level of those models with ComBat (predictions.csv) and without (the file above)
HARMONIZATION_STRATA = f"{RESULTS_DIR}/harmonization_strata.csv"
REPORT_DIR = "report"

# ---- the models, in report order (contract section 3) ---------------------------------------
CLINICAL_MODELS = ("CR",)
RADIOMICS_CLASSIFIERS = ("LR", "SVM", "KNN", "XGBoost", "MLP")
RADIOMICS_MODELS = tuple(f"Radiomics-{c}" for c in RADIOMICS_CLASSIFIERS)
DEEP_NETWORKS = ("ResNet10", "ResNet18", "ResNet34")
DEEP_NETWORK_MODELS = tuple(f"DL-{n}" for n in DEEP_NETWORKS)
#: the models the deep arm writes (its networks and the fusion with RCR)
DEEP_MODELS = (*DEEP_NETWORK_MODELS, "DLRCR")
FUSED_MODELS = ("RCR", "DLRCR")
#: the staging systems and indexes scored beside the models (not fitted by `dlr train`, but ERASL's refit)
COMPARATORS = ("BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR")
#: calibration slopes of out-of-fold development predictions outside this range are flagged (by
#: `dlr train`'s warning and the report's text)
CALIBRATION_SLOPE_RANGE = (0.5, 2.0)
MODEL_ORDER = (*CLINICAL_MODELS, *RADIOMICS_MODELS, *DEEP_NETWORK_MODELS, "RCR", "DLRCR")

# ---- cohorts ---------------------------------------------------------------------------------
OOF_SUFFIX = " (out-of-fold)"


def oof_cohort(dev_cohort: str) -> str:
    """The cohort name of the development patients' out-of-fold predictions (contract 4.1)."""
    return f"{dev_cohort}{OOF_SUFFIX}"


def is_oof_cohort(cohort: str) -> bool:
    return str(cohort).endswith(OOF_SUFFIX)


# ---- reading ---------------------------------------------------------------------------------


def unsafe_id(patient_id: str) -> Optional[str]:
    """Why ``patient_id`` cannot name a file or folder (a path separator, ``..``, a control
    character, leading or trailing white space, empty), or None when it can."""
    text = str(patient_id)
    if not text:
        return "it is empty"
    if "/" in text or "\\" in text:
        return "it holds a path separator (/ or \\)"
    if text in (".", "..") or ".." in text:
        return "it holds '..'"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "it holds a control character"
    if text != text.strip():
        return "it begins or ends with white space"
    return None


def patient_path(folder, patient_id: str, *rest: str) -> Path:
    """``folder/patient_id/rest...``, checked to lie inside ``folder`` (an :class:`InputError`
    naming the patient otherwise): every path built from a patient id goes through here."""
    folder = Path(folder)
    why = unsafe_id(patient_id)
    path = folder.joinpath(str(patient_id), *rest)
    # checked on the names, not through links: a study may link its images from elsewhere
    if why is None and os.path.commonpath([os.path.normpath(path), os.path.normpath(folder)]) \
            != os.path.normpath(folder):
        why = "the path it makes leaves its folder"
    if why is not None:
        raise InputError(f"patient id {str(patient_id)!r} cannot name a file under {folder}: {why}; rename the "
                         "patient in clinical.csv and in the folder names (letters, digits, '-', '_' are safe)")
    return path


def read_table(path, **kwargs) -> Optional[pd.DataFrame]:
    """A table the run saved, or None when the file is absent. Only empty cells are missing
    values (a level or patient named "NA" stays text); numbers are read back exactly as written
    (``float_precision="round_trip"``); a file with a header and no rows is an empty frame; a file
    that is not CSV is an :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return read_back(pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip",
                                     **kwargs))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({exc}); rerun the stage that writes it") from None


def read_json(path) -> Optional[dict]:
    """A JSON file the run saved, or None when it is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); rerun the stage that writes it") from None


def best_radiomics(models: Optional[pd.DataFrame], performance: Optional[pd.DataFrame],
                   dev_cohort: Optional[str]) -> Optional[str]:
    """The best radiomics classifier as `dlr train` chose it (``models.csv``'s
    ``best_classifier``, by nested out-of-fold AUC); without that column, the radiomics model with
    the highest out-of-fold AUC in ``performance`` (else the highest development AUC)."""
    if models is not None and "best_classifier" in models.columns:
        chosen = models.loc[models["best_classifier"].astype(str).str.lower() == "true", "model"]
        if len(chosen):
            return str(chosen.iloc[0])
    if performance is None or performance.empty:
        return None
    rad = performance[performance["model"].isin(RADIOMICS_MODELS)]
    if rad.empty:
        return None
    dev = dev_cohort or str(performance["cohort"].iloc[0])
    for cohort in (oof_cohort(dev), dev):
        rows = rad[(rad["cohort"] == cohort) & np.isfinite(rad["auc"].astype(float))]
        if len(rows):
            return str(rows.loc[rows["auc"].astype(float).idxmax(), "model"])
    return str(rad["model"].iloc[0])
