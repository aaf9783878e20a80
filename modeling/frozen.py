"""Fitted models frozen into a bundle (contract section 8), and scored again from it.

:func:`bundle_members` turns what ``dlr train`` fitted on the development cohort into the
members of ``RUN/model/`` (:mod:`dlr.core.bundle` writes and checks them);
:class:`FrozenModels` reads them back and scores new patients exactly as the run scored its
validation patients. Every member is declared data, never code:

* ``study.json``: the columns, phases, variables, their development levels and recodes, the
  harmonisation's batch column, the development cohort's name and the run's seed;
* ``study.yaml``: the run's study.yaml as written (for the reader);
* ``radiomics/params.yaml``, ``radiomics/preprocessing.json``: the PyRadiomics parameter file
  and the preprocessing the features were extracted with;
* ``models.json``: CR (its codings and coefficients), the radiomics chain (the development
  medians, ComBat's parameters, the selected features), each classifier's imputer, scaler and
  fitted attributes as typed arrays (LR, SVM, KNN, MLP; XGBoost's booster in
  ``xgboost/<model>.json``, XGBoost's own JSON format), RCR's, the ERASL coefficients, the
  deep arm (settings, best network, DLRCR's fusion coefficients), and the development
  cohort's thresholds and index-to-risk maps;
* ``networks/<network>.safetensors``: each network's weights (raw tensors, no pickle);
* ``development/predictions.csv`` and ``development/predictions_oof.csv``: the development
  cohort's scores and outcomes (patients under pseudonyms ``D0001`` ...), so that a new
  cohort is compared with the development cohort as ``dlr run`` compares its validation cohort.

Rebuilding: each scikit-learn estimator is constructed anew and given its fitted attributes
(numbers of a declared dtype), KNN refitted on its stored training matrix (a KNN fit only
stores it), XGBoost's booster loaded from its JSON, each network built from the settings and
given its weights. Scores then equal the run's bit for bit on the same inputs (same library
versions; the manifest records them and :func:`FrozenModels.check_versions` warns on a change).

Note for sharing: like any fitted KNN or SVM, the bundle holds development patients' feature
vectors (KNN's training matrix, SVM's support vectors) and the development cohort's scores
and outcomes; share it under the same agreement as the development data.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from dlr.core.errors import InputError

BUNDLE_DIR = "model"
STUDY_JSON = "study.json"
MODELS_JSON = "models.json"
DEV_PREDICTIONS = "development/predictions.csv"
DEV_OOF = "development/predictions_oof.csv"
#: the numeric dtypes an array of a bundle may have (anything else is refused)
DTYPES = ("<f8", "<f4", "<i8", "<i4", "|b1", "<u8", "<u4")
#: the package versions scores depend on (recorded in the manifest; a change gives a warning)
SCORING_PACKAGES = ("numpy", "scikit-learn", "xgboost", "torch", "pyradiomics", "SimpleITK")


def _array(value) -> dict:
    a = np.asarray(value)
    if a.dtype.str not in DTYPES:
        raise TypeError(f"cannot freeze an array of dtype {a.dtype}")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.ravel().tolist()}


def _unarray(entry, where: str) -> np.ndarray:
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES or not isinstance(entry.get("data"), list):
        raise InputError(f"{where}: not a typed array of the bundle format")
    try:
        return np.asarray(entry["data"], dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: a malformed array ({exc})") from None


# --------------------------------------------------------------------------------------------
# classifiers: fitted attributes as typed arrays

#: the fitted attributes a binary RBF SVC predicts with (libsvm's own and scikit-learn's)
_SVC_ATTRIBUTES = ("support_", "support_vectors_", "_n_support", "dual_coef_", "_dual_coef_", "intercept_",
                   "_intercept_", "_probA", "_probB", "fit_status_", "_gamma", "shape_fit_", "classes_",
                   "class_weight_", "n_iter_", "_num_iter", "n_features_in_")
_SIMPLE = (str, int, float, bool, type(None))


def _init_params(estimator) -> dict:
    return {k: v for k, v in estimator.get_params(deep=False).items() if isinstance(v, _SIMPLE)}


def freeze_classifier(model, *, member: str) -> tuple[dict, dict]:
    """(entry of models.json, extra members) of a tuned pipeline (:class:`classifiers.TunedModel`)."""
    pipe = model.estimator
    imputer, scaler, clf = pipe.named_steps["impute"], pipe.named_steps["scale"], pipe.named_steps["clf"]
    names = getattr(pipe, "feature_names_in_", None)
    entry = {"classifier": model.name, "features": [str(n) for n in names] if names is not None else None,
             "imputer": _array(imputer.statistics_),
             "scaler": {"mean": _array(scaler.mean_), "scale": _array(scaler.scale_), "var": _array(scaler.var_),
                        "n_samples_seen": int(scaler.n_samples_seen_)}}
    extra = {}
    if model.name == "LR":
        entry["fitted"] = {k: _array(getattr(clf, k)) for k in ("coef_", "intercept_", "classes_", "n_iter_")}
        entry["params"] = _init_params(clf)
    elif model.name == "SVM":
        calibrated = clf.calibrated_classifiers_[0]
        svc, calibrator = calibrated.estimator, calibrated.calibrators[0]
        entry["params"] = _init_params(svc)
        entry["fitted"] = {k: _array(getattr(svc, k)) for k in _SVC_ATTRIBUTES}
        entry["platt"] = {"a": float(calibrator.a_), "b": float(calibrator.b_)}
        entry["classes"] = _array(clf.classes_)
    elif model.name == "KNN":
        entry["params"] = _init_params(clf)
        entry["fitted"] = {"fit_X": _array(clf._fit_X), "y": _array(np.asarray(clf.classes_)[clf._y])}
    elif model.name == "MLP":
        entry["params"] = _init_params(clf)
        entry["fitted"] = {"coefs_": [_array(w) for w in clf.coefs_], "intercepts_": [_array(b) for b in clf.intercepts_],
                           "classes_": _array(clf.classes_), "out_activation_": str(clf.out_activation_),
                           "n_iter_": int(clf.n_iter_)}
    elif model.name == "XGBoost":
        path = f"xgboost/{member}.json"
        extra[path] = bytes(clf.get_booster().save_raw("json"))
        entry["booster"] = path
        entry["classes"] = _array(clf.classes_)
    else:
        raise ValueError(f"unknown classifier {model.name!r}")
    return entry, extra


@dataclass
class FrozenClassifier:
    """A classifier rebuilt from its bundle entry: median imputation, z-score, the fitted classifier."""

    name: str
    features: Optional[list]
    statistics: np.ndarray
    scaler: object
    estimator: object
    classes: np.ndarray

    def predict_risk(self, x: pd.DataFrame) -> np.ndarray:
        """P(outcome = 1) of each row of ``x`` (its columns: :attr:`features`)."""
        values = (x[self.features] if self.features is not None else x).to_numpy(dtype=float)
        values = np.where(np.isnan(values), self.statistics, values)
        scaled = self.scaler.transform(values)
        column = int(np.flatnonzero(self.classes == 1)[0])
        if self.name == "XGBoost":
            p1 = np.asarray(self.estimator.inplace_predict(scaled), dtype=np.float32)
            return np.asarray(np.column_stack([1 - p1, p1])[:, column], dtype=float)
        return np.asarray(self.estimator.predict_proba(scaled)[:, column], dtype=float)


def thaw_classifier(entry: dict, bundle, *, where: str) -> FrozenClassifier:
    """The classifier of a models.json entry (see :func:`freeze_classifier`)."""
    from sklearn.preprocessing import StandardScaler

    try:
        name = entry["classifier"]
        scaler = StandardScaler()
        scaler.mean_ = _unarray(entry["scaler"]["mean"], where)
        scaler.scale_ = _unarray(entry["scaler"]["scale"], where)
        scaler.var_ = _unarray(entry["scaler"]["var"], where)
        scaler.n_samples_seen_ = int(entry["scaler"]["n_samples_seen"])
        scaler.n_features_in_ = scaler.mean_.size
        statistics = _unarray(entry["imputer"], where)
        fitted = entry.get("fitted", {})
        params = {k: v for k, v in entry.get("params", {}).items() if isinstance(v, _SIMPLE)}
        if name == "LR":
            from sklearn.linear_model import LogisticRegression

            estimator = LogisticRegression(**params)
            for key, value in fitted.items():
                setattr(estimator, key, _unarray(value, where))
            estimator.n_features_in_ = estimator.coef_.shape[1]
            classes = estimator.classes_
        elif name == "SVM":
            from sklearn.calibration import _SigmoidCalibration
            from sklearn.svm import SVC

            svc = SVC(**params)
            for key in _SVC_ATTRIBUTES:
                value = _unarray(fitted[key], where)
                setattr(svc, key, value.item() if value.ndim == 0 and key in ("_gamma", "n_features_in_", "fit_status_")
                        else value)
            svc._sparse = False
            calibrator = _SigmoidCalibration()
            calibrator.a_, calibrator.b_ = float(entry["platt"]["a"]), float(entry["platt"]["b"])
            estimator = _PlattSVC(svc, calibrator)
            classes = _unarray(entry["classes"], where)
        elif name == "KNN":
            from sklearn.neighbors import KNeighborsClassifier

            estimator = KNeighborsClassifier(**params).fit(_unarray(fitted["fit_X"], where), _unarray(fitted["y"], where))
            classes = estimator.classes_
        elif name == "MLP":
            from sklearn.neural_network import MLPClassifier
            from sklearn.preprocessing import LabelBinarizer

            estimator = MLPClassifier(**params)
            estimator.coefs_ = [_unarray(w, where) for w in fitted["coefs_"]]
            estimator.intercepts_ = [_unarray(b, where) for b in fitted["intercepts_"]]
            estimator.classes_ = _unarray(fitted["classes_"], where)
            estimator.out_activation_ = str(fitted["out_activation_"])
            if estimator.out_activation_ not in ("logistic", "softmax"):
                raise InputError(f"{where}: output activation {estimator.out_activation_!r} is not a classifier's")
            estimator.n_layers_ = len(estimator.coefs_) + 1
            estimator.n_outputs_ = estimator.coefs_[-1].shape[1]
            estimator.n_iter_ = int(fitted["n_iter_"])
            estimator.n_features_in_ = estimator.coefs_[0].shape[0]
            estimator._label_binarizer = LabelBinarizer().fit(estimator.classes_)
            classes = estimator.classes_
        elif name == "XGBoost":
            import xgboost as xgb

            estimator = xgb.Booster()
            try:
                estimator.load_model(bytearray(bundle.bytes(entry["booster"])))
            except xgb.core.XGBoostError as exc:
                raise InputError(f"{bundle.source}: member {entry['booster']} is not an XGBoost JSON model "
                                 f"({str(exc).splitlines()[0]})") from None
            classes = _unarray(entry["classes"], where)
        else:
            raise InputError(f"{where}: unknown classifier {name!r}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: an incomplete classifier entry ({type(exc).__name__}: {exc})") from None
    features = entry.get("features")
    return FrozenClassifier(name, list(features) if features is not None else None, statistics, scaler, estimator,
                            np.asarray(classes))


@dataclass
class _PlattSVC:
    """The SVM of :func:`dlr.modeling.classifiers.make_pipeline` as CalibratedClassifierCV
    (``ensemble=False``) scores it: Platt's sigmoid of the SVC's decision value."""

    svc: object
    calibrator: object

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p1 = self.calibrator.predict(self.svc.decision_function(x))
        return np.column_stack([1.0 - p1, p1])


# --------------------------------------------------------------------------------------------
# the CR model and the comparators


def _freeze_cr(cr) -> dict:
    return {"factors": list(cr.factors), "columns": list(cr.columns),
            "coefficients": _array(np.asarray(cr.coefficients, dtype=float)),
            "codings": [{"variable": c.variable, "kind": c.kind, "cut": c.cut, "levels": list(c.levels),
                         "reference": c.reference} for c in cr.codings]}


def _thaw_cr(entry: dict, where: str):
    from .clinical import Coding, CRModel

    try:
        codings = tuple(Coding(c["variable"], c["kind"], None if c["cut"] is None else float(c["cut"]),
                               tuple(str(v) for v in c["levels"]), c["reference"]) for c in entry["codings"])
        if any(c.kind not in ("cut", "levels", "number") for c in codings):
            raise InputError(f"{where}: a coding of an unknown kind")
        return CRModel(tuple(entry["factors"]), codings, tuple(entry["columns"]),
                       _unarray(entry["coefficients"], where), None)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{where}: an incomplete CR entry ({exc})") from None


# --------------------------------------------------------------------------------------------
# writing


def _pseudonyms(dev: pd.DataFrame) -> dict:
    return {p: f"D{k + 1:04d}" for k, p in enumerate(dict.fromkeys(dev["patient_id"]))}


def development_maps(dev: pd.DataFrame, oof: Optional[pd.DataFrame], probability_models) -> tuple[dict, dict, dict]:
    """(thresholds, threshold sources, index-to-risk maps) of every model of the development rows
    ``dev`` (predictions.csv's), chosen as `dlr analyze` chooses them: Youden's J on the model's
    out-of-fold predictions where ``oof`` has them, else on its development predictions; the
    risk map of an index score (not in ``probability_models``) is ``glm(y ~ score)`` on its
    development predictions (:func:`dlr.analysis.decision_curve.fit_risk_mapping`'s fit; a test
    holds the two equal)."""
    from dlr.core.stats.logistic import fit_logistic
    from dlr.core.stats.roc import youden_threshold

    thresholds, sources, maps = {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model, rows in dev.groupby("model", sort=False):
            y, s = rows["y_true"].to_numpy(dtype=float), rows["y_score"].to_numpy(dtype=float)
            held = oof[oof["model"] == model] if oof is not None else None
            if held is not None and len(held):
                thresholds[model] = float(youden_threshold(held["y_true"].to_numpy(dtype=int),
                                                           held["y_score"].to_numpy(dtype=float)))
                sources[model] = "out-of-fold"
            else:
                thresholds[model] = float(youden_threshold(y.astype(int), s))
                sources[model] = "apparent"
            if model not in probability_models:
                if y.size and y.min() != y.max() and np.unique(s).size >= 2:
                    b0, b1 = fit_logistic(y, np.column_stack([np.ones(y.size), s]))
                    maps[model] = {"intercept": float(b0), "slope": float(b1), "n": int(y.size)}
                else:
                    maps[model] = {"intercept": float("nan"), "slope": float("nan"), "n": int(y.size)}
    return thresholds, sources, maps


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    from dlr.core.csvsafe import write_csv

    buffer = io.StringIO()
    write_csv(frame, buffer, float_format="%.17g")
    return buffer.getvalue().encode("utf-8")


def bundle_members(*, config, study_yaml: Path, clinical: pd.DataFrame, fit, predictions: pd.DataFrame,
                   oof_table: Optional[pd.DataFrame], deep=None, erasl=None, features_dir: Optional[Path] = None,
                   seed: int, probability_models=()) -> dict:
    """name -> bytes of every member of ``RUN/model/`` but the manifest.

    Parameters
    ----------
    config : StudyConfig
    study_yaml : path of the study's study.yaml (copied as written)
    clinical : DataFrame
        clinical.csv after the recodes (the development cohort's levels are read from it).
    fit : the development fit of :mod:`dlr.modeling.train` (CR, medians, ComBat, selection, tuned models)
    predictions, oof_table : the run's predictions.csv and predictions_oof.csv (or None)
    deep : modeling.deep.arm.DeepResult, optional
    erasl : ERASLCoefficients, optional (the comparators' ERASL)
    features_dir : path of RUN/features (its radiomics_params.yaml and preprocessing.json)
    seed : the run's seed (the deep arm's registration is seeded with it)
    probability_models : the models whose scores are probabilities (the others get a risk map)
    """
    from .levels import development_levels

    members: dict = {}
    dev_levels = development_levels(clinical, config)
    study = {"dev_cohort": config.dev_cohort, "phases": list(config.phases), "id_column": config.id_column,
             "outcome_column": config.outcome_column, "cohort_column": config.cohort_column,
             "scanner_column": config.scanner_column, "time_column": config.time_column,
             "event_column": config.event_column, "mask_label": int(config.mask_label), "seed": int(seed),
             "variables": [{"name": v.name, "type": v.type, "levels": v.levels, "recode": v.recode,
                            "cut_point": v.cut_point} for v in config.variables],
             "development_levels": {k: list(v) for k, v in dev_levels.items()},
             "harmonization": (None if config.harmonization is None else
                               {"method": config.harmonization.method, "batch": config.harmonization.batch})}
    members[STUDY_JSON] = json.dumps(study, indent=1, sort_keys=True).encode()
    members["study.yaml"] = Path(study_yaml).read_bytes()
    models: dict = {}
    if fit.cr is not None:
        models["CR"] = _freeze_cr(fit.cr)
    if fit.selection is not None:
        classifiers = {}
        for name, tuned in fit.tuned.items():
            entry, extra = freeze_classifier(tuned, member=name)
            classifiers[name] = entry
            members.update(extra)
        models["radiomics"] = {"medians": {k: float(v) for k, v in fit.medians.items()},
                               "selected": list(fit.selection.features), "best_classifier": fit.best,
                               "harmonization": fit.combat.parameters() if fit.combat is not None else None,
                               "classifiers": classifiers}
        # as `dlr extract` recorded them (absent for features made otherwise: `dlr predict` then refuses to extract)
        for member, name in (("radiomics/params.yaml", "radiomics_params.yaml"),
                             ("radiomics/preprocessing.json", "preprocessing.json")):
            if features_dir is not None and (Path(features_dir) / name).is_file():
                members[member] = (Path(features_dir) / name).read_bytes()
    if erasl is not None:
        models["erasl"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(erasl).items()}
    if deep is not None:
        members.update(_deep_members(deep, models))
    return _with_development(members, models, config.dev_cohort, predictions, oof_table, probability_models)


def _with_development(members: dict, models: dict, dev_cohort: str, predictions: pd.DataFrame,
                      oof_table: Optional[pd.DataFrame], probability_models) -> dict:
    """``members`` with models.json (``models`` plus the development cohort's thresholds and risk
    maps) and the development cohort's predictions."""
    models["models"] = list(dict.fromkeys(predictions["model"]))
    dev = predictions[predictions["cohort"] == dev_cohort]
    names = _pseudonyms(dev)
    dev = dev.assign(patient_id=dev["patient_id"].map(names))
    oof = oof_table.assign(patient_id=oof_table["patient_id"].map(names)) if oof_table is not None else None
    thresholds, sources, maps = development_maps(dev, oof, set(probability_models))
    models.update(thresholds=thresholds, threshold_source=sources, risk_maps=maps,
                  probability_models=[m for m in models["models"] if m in set(probability_models)])
    members[DEV_PREDICTIONS] = _csv_bytes(dev)
    if oof is not None:
        members[DEV_OOF] = _csv_bytes(oof)
    members[MODELS_JSON] = json.dumps(models, indent=1, sort_keys=True).encode()
    return members


def _deep_members(deep, models: dict) -> dict:
    from safetensors.torch import save

    from .deep.settings import model_name

    members = {}
    networks = {}
    for network, state in deep.checkpoints.items():
        path = f"networks/{network}.safetensors"
        members[path] = save({k: v.contiguous() for k, v in state.items()}, metadata={"network": network})
        networks[model_name(network)] = {"network": network, "weights": path}
    models["deep"] = {"settings": deep.settings, "networks": networks, "best_network": deep.best_network,
                      "phases": list(deep.phases), "fusion": deep.fusion or None, "device": deep.device}
    return members


def replace_deep_members(run: Path, deep, predictions: pd.DataFrame, oof_table: Optional[pd.DataFrame],
                         probability_models) -> dict:
    """The members of an earlier train's ``RUN/model/`` with the deep arm's replaced (``dlr train
    --arms deep``): the networks, models.json's deep part, the thresholds, risk maps and
    development predictions (which now hold the new deep models)."""
    from dlr.core.bundle import read_bundle

    path = Path(run) / BUNDLE_DIR
    if not path.is_dir():
        raise InputError(f"{path}: the earlier train left no model bundle; rerun `dlr train` with every arm")
    old = read_bundle(path)
    members = {k: v for k, v in old.members.items() if not k.startswith("networks/")
               and k not in (MODELS_JSON, DEV_PREDICTIONS, DEV_OOF)}
    models = old.json(MODELS_JSON)
    for key in ("deep", "thresholds", "threshold_source", "risk_maps", "probability_models", "models"):
        models.pop(key, None)
    if deep is not None:
        members.update(_deep_members(deep, models))
    return _with_development(members, models, old.json(STUDY_JSON)["dev_cohort"], predictions, oof_table,
                             probability_models)


def write_model_bundle(run: Path, members: dict) -> Path:
    """``RUN/model/`` from ``members``, with its manifest; replaced whole or not at all."""
    from dlr.core.bundle import write_bundle
    from dlr.core.output import package_versions, staged_folder

    versions = package_versions(("dlr", *SCORING_PACKAGES))
    info = {"dlr_version": versions.pop("dlr"), "software": versions, "written_by": "dlr train"}
    with staged_folder(Path(run) / BUNDLE_DIR) as folder:
        write_bundle(folder, members, info=info)
    return Path(run) / BUNDLE_DIR


# --------------------------------------------------------------------------------------------
# reading and scoring


@dataclass
class FrozenModels:
    """The fitted models of a bundle, ready to score new patients.

    Attributes
    ----------
    bundle : dlr.core.bundle.Bundle
    study : dict
        ``study.json``.
    models : dict
        ``models.json`` as stored.
    cr : CRModel or None
    classifiers : dict
        model name -> FrozenClassifier (the radiomics classifiers and RCR).
    combat : ComBat or None
    """

    bundle: object
    study: dict
    models: dict
    cr: object = None
    classifiers: dict = field(default_factory=dict)
    combat: object = None

    @classmethod
    def load(cls, path) -> "FrozenModels":
        """Read and check a bundle (folder or zip; :func:`dlr.core.bundle.read_bundle`) and rebuild its models."""
        from dlr.core.bundle import read_bundle

        bundle = read_bundle(path)
        study, models = bundle.json(STUDY_JSON), bundle.json(MODELS_JSON)
        if not isinstance(study, dict) or not isinstance(models, dict) or "models" not in models:
            raise InputError(f"{bundle.source}: members {STUDY_JSON} / {MODELS_JSON} are not a dlr bundle's")
        out = cls(bundle, study, models)
        if "CR" in models:
            out.cr = _thaw_cr(models["CR"], f"{bundle.source}: member {MODELS_JSON} (CR)")
        radiomics = models.get("radiomics")
        if radiomics:
            for name, entry in radiomics["classifiers"].items():
                out.classifiers[name] = thaw_classifier(entry, bundle,
                                                        where=f"{bundle.source}: member {MODELS_JSON} ({name})")
            if radiomics.get("harmonization"):
                from .radiomics.harmonization import ComBat

                try:
                    out.combat = ComBat.from_parameters(radiomics["harmonization"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise InputError(f"{bundle.source}: member {MODELS_JSON}: the harmonisation's parameters are "
                                     f"incomplete ({exc})") from None
        for name, entry in (models.get("deep") or {}).get("networks", {}).items():
            bundle.tensors(entry["weights"])  # a malformed weights file is refused now, not after extraction
        return out

    @property
    def names(self) -> list:
        return list(self.models["models"])

    @property
    def phases(self) -> list:
        return list(self.study["phases"])

    def check_versions(self) -> list[str]:
        """Warnings naming each scoring package whose version differs from the bundle's."""
        from dlr.core.output import package_versions

        now = package_versions(SCORING_PACKAGES)
        then = self.bundle.manifest.get("software", {})
        return [f"{p}: the bundle was written with {then.get(p)}, this is {now.get(p)}; scores may differ in the last "
                "digits" for p in SCORING_PACKAGES if then.get(p) != now.get(p)]

    # ---- scoring

    def radiomics_input(self, features: pd.DataFrame, batch: Optional[np.ndarray]) -> pd.DataFrame:
        """Reader-1 features as the development chain saw them: development medians filled in,
        ComBat's development fit applied (a batch level it did not fit is refused)."""
        radiomics = self.models["radiomics"]
        medians = pd.Series(radiomics["medians"], dtype=float)
        missing = [c for c in medians.index if c not in features.columns]
        if missing:
            raise InputError(f"the features lack {len(missing)} column(s) the bundle's models use ({', '.join(missing[:5])}"
                             "); extract them with the bundle's parameter file")
        x = features[list(medians.index)].fillna(medians)
        if self.combat is not None:
            x = self.combat.transform(x, batch, unseen="raise")
        return x

    def score(self, clinical: pd.DataFrame, features: Optional[pd.DataFrame] = None, batch=None,
              deep_log_odds: Optional[dict] = None) -> dict:
        """model name -> scores of the patients of ``clinical`` (rows in its order).

        ``features``: their reader-1 radiomics features (same index); ``batch``: their batch
        levels (with harmonisation); ``deep_log_odds``: network -> log-odds of each patient
        (:func:`network_log_odds`)."""
        from scipy import special

        out = {}
        if self.cr is not None:
            out["CR"] = self.cr.predict(clinical)
        radiomics = self.models.get("radiomics")
        if radiomics and features is not None:
            from .clinical import design

            x = self.radiomics_input(features.loc[clinical.index], batch)[radiomics["selected"]]
            for name, model in self.classifiers.items():
                if name == "RCR":
                    rcr_x = pd.concat([x, design(clinical, self.cr.codings)], axis=1)
                    out[name] = model.predict_risk(rcr_x)
                else:
                    out[name] = model.predict_risk(x)
        deep = self.models.get("deep")
        if deep and deep_log_odds is not None:
            for name, entry in deep["networks"].items():
                out[name] = special.expit(deep_log_odds[entry["network"]])
            fusion = deep.get("fusion")
            if fusion and "RCR" in out:
                from .deep.arm import _logit

                z = deep_log_odds[deep["best_network"]]
                out["DLRCR"] = special.expit(fusion["intercept"] + fusion["network_coefficient"] * z
                                             + fusion["partner_coefficient"] * _logit(out["RCR"]))
        return {m: np.asarray(out[m], dtype=float) for m in self.names if m in out}

    def deep_settings(self):
        from .deep.settings import DeepSettings

        s = dict(self.models["deep"]["settings"])
        s["networks"], s["ring_mm"] = tuple(s["networks"]), tuple(s["ring_mm"])
        return DeepSettings(**s)

    def scoring_device(self, device: str = "auto"):
        """Where the networks score: ``auto`` is where they were trained (the run's scores are then
        reproduced: on the CPU bit for bit), else the CPU when that device is absent here."""
        import torch

        from .deep.fit import resolve_device

        if device == "auto":
            trained = (self.models.get("deep") or {}).get("device", "cpu")
            device = trained if trained != "cuda" or torch.cuda.is_available() else "cpu"
        return resolve_device(device)

    def network_log_odds(self, slices, *, device: str = "auto") -> dict:
        """network -> each patient's log-odds (float64) from its slices (:class:`StudySlices`), as
        the run scored them: the same test-time augmentation, on the CPU one thread (on a GPU,
        bfloat16 as the run's GPU fits: scores then differ from a CPU run's in the last digits)."""
        import torch

        from .deep.arm import make_network, network_input
        from .deep.fit import log_odds

        settings = self.deep_settings()
        x = network_input(slices, settings)
        where = self.scoring_device(device)
        out = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for entry in self.models["deep"]["networks"].values():
                model = make_network(entry["network"], len(slices.phases), settings)
                state = self.bundle.tensors(entry["weights"])
                try:
                    model.load_state_dict(state)
                except RuntimeError as exc:
                    raise InputError(f"{self.bundle.source}: member {entry['weights']} does not fit "
                                     f"{entry['network']} ({str(exc).splitlines()[0]})") from None
                model.to(where).eval()
                out[entry["network"]] = log_odds(model, x, tta=settings.tta)
        finally:
            torch.set_num_threads(threads)
        return out
