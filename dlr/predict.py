"""`dlr predict BUNDLE STUDY --out RUN2`: frozen models on new patients (contract section 8).

The stages, as `dlr run`'s (:mod:`dlr.stages`: each skipped when nothing it reads changed, each
writing its files all at once, so an interrupted predict resumes):

========== ==================================================================================
stage      what it does
========== ==================================================================================
validate   reads the bundle (every member against its SHA-256: :func:`dlr.core.bundle.read_bundle`)
           and the study (its own checks, less those of a development cohort it does not need),
           then checks the study against the bundle: the phases the models read, the columns
           they score, every categorical level against the development cohort's (after the
           bundle's recodes), every batch level against ComBat's; writes ``inputs/``
features   extracts the radiomics features with the bundle's PyRadiomics parameter file and
           preprocessing (cached per case, parallel, resumable: :func:`extract_study`)
clinical   Table 1 of the study's cohorts (``clinical/``)
scores     every model of the bundle scores every patient: ``predictions.csv`` (contract section
           4), the networks from their weights on the slices cut with the bundle's settings
analysis   the study's cohorts beside the development cohort the bundle carries, at the
           bundle's thresholds and risk maps, never chosen again (``threshold_source`` =
           ``bundle``): ``results/``, with ``recalibration.csv``
report     the external-validation report (``report/``)
========== ==================================================================================
"""
from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from dlr.core import run_folder as rf
from dlr.core.errors import InputError

logger = logging.getLogger(__name__)

STAGE_NAMES = ("validate", "features", "clinical", "scores", "analysis", "report")
BUNDLE_INFO = "inputs/bundle.json"
DEV_PREDICTIONS = "inputs/development_predictions.csv"
DEV_OOF = "inputs/development_oof.csv"
RECALIBRATION = "results/recalibration.csv"
#: the imaging arms' models (the phases and images are needed only when the bundle has one)
_IMAGING = ("Radiomics-", "RCR", "DL-", "DLRCR")


@dataclass(frozen=True)
class PredictSummary:
    """What `dlr predict` did: the run folder, each stage's outcome, the warnings raised."""

    out: Path
    stages: tuple
    warnings: tuple

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def _uses_images(models) -> bool:
    return any(m.startswith(_IMAGING) for m in models)


# --------------------------------------------------------------------------------------------
# the study against the bundle


def development_label(dev_cohort: str, cohorts) -> str:
    """The development cohort's name in RUN2/results: its own, unless the new study has a cohort
    of that name (a second `dlr synth` study's ``training``), then ``development``."""
    for label in (dev_cohort, "development", "development (bundle)"):
        if label not in set(cohorts):
            return label
    raise InputError(f"the study has cohorts named {dev_cohort!r}, 'development' and 'development (bundle)'; rename "
                     "one in clinical.csv and study.yaml")


def _recoded_by_bundle(frame: pd.DataFrame, frozen, config) -> tuple[pd.DataFrame, list]:
    """clinical.csv with the bundle's recodes applied (after the study's own), and their log rows."""
    from dlr.core.tables import level_texts

    out, log = frame.copy(), []
    cohorts = frame[config.cohort_column].astype(str).to_numpy()
    for variable in frozen.study["variables"]:
        recode = variable.get("recode") or {}
        name = variable["name"]
        if not recode or name not in out.columns:
            continue
        text = level_texts(out[name])
        for raw, level in recode.items():
            hit = text == raw
            for cohort in dict.fromkeys(cohorts[hit]):
                log.append({"variable": name, "from": raw, "to": level, "cohort": cohort,
                            "n_patients": int((hit & (cohorts == cohort)).sum())})
        if any(raw in set(text) for raw in recode):
            out[name] = pd.Series([np.nan if v == "" else recode.get(v, v) for v in text], index=out.index,
                                  dtype=object)
    return out, log


def check_study(frozen, study) -> tuple[pd.DataFrame, list]:
    """The study's clinical table ready to score (ids as text, the bundle's recodes applied) and
    the recodes' log; InputError (exit 2) listing every way the study does not fit the bundle."""
    from dlr.core.tables import level_texts
    from dlr.modeling.levels import SHOWN_PATIENTS, UnseenLevel, _nearest

    config, root = study.config, study.root
    problems = []
    if _uses_images(frozen.names):
        missing = [p for p in frozen.phases if p not in config.phases]
        if missing:
            problems.append(f"{root / 'study.yaml'}: phases lists {', '.join(config.phases) or 'none'}, and the "
                            f"bundle's imaging models read {', '.join(frozen.phases)}: phase(s) {', '.join(missing)} "
                            "missing. Fix: give the study those phases' images and masks and list them under phases")
    clinical = study.clinical.copy()
    clinical[config.id_column] = clinical[config.id_column].astype(str)
    needed = {c.variable for c in (frozen.cr.codings if frozen.cr is not None else ())}
    absent = sorted(v for v in needed if v not in clinical.columns)
    if absent:
        problems.append(f"{root / 'clinical.csv'}: no column {', '.join(absent)}, which the bundle's CR model (and RCR) "
                        "score. Fix: add the column(s), named as in the development study")
    clinical, log = _recoded_by_bundle(clinical, frozen, config)
    cohorts = clinical[config.cohort_column].astype(str).to_numpy()
    ids = clinical[config.id_column].to_numpy(dtype=object)
    declared = {v["name"]: v for v in frozen.study["variables"]}
    for name, seen in frozen.study["development_levels"].items():
        if name not in clinical.columns or name not in needed:
            continue
        text = level_texts(clinical[name])
        for cohort in dict.fromkeys(cohorts):
            for level in sorted(set(text[(cohorts == cohort) & (text != "") & ~np.isin(text, seen)])):
                patients = tuple(ids[(cohorts == cohort) & (text == level)])
                shim = type("Declared", (), {"levels": declared.get(name, {}).get("levels")})
                problems.append(str(UnseenLevel(name, f"variables ({name})", level, cohort, patients, tuple(seen),
                                                _nearest(level, tuple(seen), shim))))
    harmonization = frozen.study.get("harmonization")
    if harmonization and frozen.combat is not None:
        column = harmonization["batch"]
        if column not in clinical.columns:
            problems.append(f"{root / 'clinical.csv'}: no column {column!r}, the batch the bundle's ComBat "
                            "harmonisation was fitted on. Fix: add it, named as in the development study")
        else:
            text = level_texts(clinical[column])
            if (text == "").any():
                shown = ", ".join(ids[text == ""][:SHOWN_PATIENTS])
                problems.append(f"{root / 'clinical.csv'}: {column} is empty for patient(s) {shown}; ComBat needs each "
                                "patient's batch. Fix: fill it in")
            for cohort in dict.fromkeys(cohorts):
                for level in sorted(set(text[(cohorts == cohort) & (text != "")]) - set(frozen.combat.levels)):
                    patients = ids[(cohorts == cohort) & (text == level)]
                    problems.append(f"{column} is {level!r} for {len(patients)} patient(s) of the cohort {cohort!r} "
                                    f"({', '.join(patients[:SHOWN_PATIENTS])}), a batch the bundle's ComBat was not "
                                    f"fitted on (its levels: {', '.join(frozen.combat.levels)}); their features cannot be "
                                    "harmonised. Fix: score them with a bundle whose development cohort had that "
                                    "batch, or leave them out")
    if "radiomics" in frozen.models and not (frozen.bundle.has("radiomics/params.yaml")
                                             and frozen.bundle.has("radiomics/preprocessing.json")):
        problems.append(f"{frozen.bundle.source}: the bundle has no radiomics/params.yaml and preprocessing.json (its "
                        "run's features were not extracted by `dlr extract`), so new patients' features cannot be "
                        "extracted as the development patients' were. Fix: rebuild the bundle from a run whose "
                        "features `dlr extract` or `dlr run` extracted")
    if problems:
        raise InputError(f"{root} does not fit the bundle {frozen.bundle.source}:\n  " + "\n  ".join(problems))
    return clinical, log


# --------------------------------------------------------------------------------------------
# scoring


def score_study(frozen, study, clinical: pd.DataFrame, run: Path, *, jobs: int = 1, device: str = "auto") -> pd.DataFrame:
    """predictions.csv (contract section 4) of every patient of the study by every model of the bundle."""
    from dlr.core.tables import level_texts
    from dlr.modeling.clinical import COMPARATORS, comparator_table
    from dlr.modeling.staging import ERASLCoefficients

    config = study.config
    indexed = clinical.set_index(config.id_column, drop=False)
    indexed.index.name = None
    ids = list(indexed.index)
    features = batch = log_odds = None
    if "radiomics" in frozen.models:
        from dlr.modeling.radiomics.extraction import FEATURES_DIR, read_radiomics

        table = read_radiomics(run / FEATURES_DIR / "radiomics.csv")
        features = table[table["reader"] == 1].set_index("patient_id").drop(columns="reader").reindex(ids)
        if frozen.combat is not None:
            batch = level_texts(indexed[frozen.study["harmonization"]["batch"]])
    if "deep" in frozen.models:
        from dlr.modeling.deep.slices import study_slices

        settings = frozen.deep_settings()
        slices = study_slices(_with_bundle_phases(study, frozen), run, settings, ids, jobs=jobs,
                              seed=int(frozen.study["seed"]))
        logger.info(f"deep: scoring with {', '.join(frozen.models['deep']['networks'])}")
        log_odds = frozen.network_log_odds(slices, device=device)
    scores = frozen.score(indexed, features, batch, log_odds)
    wanted = [m for m in frozen.names if m in COMPARATORS]
    if wanted:
        erasl = frozen.models.get("erasl")
        coefficients = ERASLCoefficients.from_mapping(erasl, where="the bundle's ERASL") if erasl else None
        comparators, _, _ = comparator_table(clinical, config, erasl=coefficients)
        table = comparators.set_index("patient_id").reindex(ids)
        scores.update({m: table[m].to_numpy(dtype=float) for m in wanted if m in table.columns})
    base = pd.DataFrame({"patient_id": ids, "cohort": indexed[config.cohort_column].astype(str).to_numpy(),
                         "y_true": indexed[config.outcome_column].to_numpy(dtype=int)})
    attributes = list(dict.fromkeys(c for c in (config.scanner_column, config.time_column, config.event_column) if c))
    for column in attributes:
        base[column] = indexed[column].to_numpy()
    frames = [base.assign(model=m, y_score=np.asarray(scores[m], dtype=float)) for m in frozen.names if m in scores]
    frame = pd.concat(frames, ignore_index=True)
    missing = ~np.isfinite(frame["y_score"].to_numpy(dtype=float))
    if missing.any():
        import warnings

        gone = frame[missing].groupby("model")["patient_id"].apply(lambda s: ", ".join(s.head(5)))
        warnings.warn("patients without a score are left out of predictions.csv (a missing input): "
                      + "; ".join(f"{m}: {p}" for m, p in gone.items()), stacklevel=2)
        frame = frame[~missing]
    return frame[["patient_id", "cohort", "model", "y_true", "y_score", *attributes]].reset_index(drop=True)


def _with_bundle_phases(study, frozen):
    """The study as the bundle's networks read it: the bundle's phases, in the bundle's order."""
    return replace(study, config=study.config.model_copy(update={"phases": list(frozen.phases)}))


# --------------------------------------------------------------------------------------------
# analysis


def analysis_frame(run: Path, info: dict, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, out-of-fold predictions) for the analysis: the development cohort's rows from
    the bundle (cohort ``info['dev_label']``) before the study's, the study's patient columns
    renamed to the development study's names (the scanner, the follow-up)."""
    from dlr.core.csvsafe import read_back

    read = functools.partial(pd.read_csv, dtype={"patient_id": str}, float_precision="round_trip")
    new = read_back(read(run / rf.PREDICTIONS))
    dev = read_back(read(run / DEV_PREDICTIONS)).assign(cohort=info["dev_label"])
    oof = read_back(read(run / DEV_OOF)).assign(cohort=info["dev_label"]) if (run / DEV_OOF).is_file() else None
    study = info["study"]
    rename = {}
    for key in ("scanner_column", "time_column", "event_column"):
        ours, theirs = getattr(config, key), study.get(key)
        if ours and theirs and ours != theirs:
            rename[ours] = theirs
    new = new.rename(columns=rename)
    # the study's cohorts in the order `dlr run` gives them (one named as the bundle's development
    # cohort first, then study.yaml's order, then any other by appearance): each draws its bootstrap
    # seed by its place, so a cohort keeps the resamples it had in the run of its study
    first = [info["dev_cohort"]] if info["dev_cohort"] in set(new["cohort"]) else []
    rank = {c: k for k, c in enumerate(dict.fromkeys([*first, *config.cohorts, *new["cohort"]]))}
    new = new.iloc[np.argsort(new["cohort"].map(rank).to_numpy(), kind="stable")].reset_index(drop=True)
    # the development cohort's pseudonyms kept apart from the study's own ids
    dev = dev.assign(patient_id="(development) " + dev["patient_id"])
    if oof is not None:
        oof = oof.assign(patient_id="(development) " + oof["patient_id"])
    columns = [c for c in dev.columns if c in new.columns]
    frame = pd.concat([dev[columns], new[columns]], ignore_index=True)
    return frame, (oof[[c for c in columns if c in oof.columns]] if oof is not None else None)


def analyze_external(run: Path, config, *, n_bootstrap: int, seed: int, command=None):
    """``RUN2/results/`` from the study's predictions beside the bundle's development cohort, at
    the bundle's thresholds and risk maps (:func:`dlr.analysis.pipeline.frozen_development`)."""
    from dlr.analysis.figures import FigureWorkers
    from dlr.analysis.output import analysis_provenance, write_analysis
    from dlr.analysis.pipeline import analyze, frozen_development
    from dlr.analysis.predictions import validate_predictions
    from dlr.core.output import write_files

    info = json.loads((run / BUNDLE_INFO).read_text())
    frame, oof = analysis_frame(run, info, config)
    study = info["study"]
    strata = [study["scanner_column"]] if study.get("scanner_column") in frame.columns else []
    follow = {}
    if study.get("time_column") in frame.columns and study.get("event_column") in frame.columns:
        follow = {"time": study["time_column"], "event": study["event_column"]}
    development = frozen_development(info["thresholds"], info["risk_maps"], info["probability_models"])
    recalibrated = recalibration_table(frame, info)  # before anything is written
    with FigureWorkers() as workers:
        predictions = validate_predictions(frame, dev_cohort=info["dev_label"], strata=strata, oof=oof,
                                           source=str(run / rf.PREDICTIONS), oof_source=str(run / DEV_OOF))
        if follow:
            from dlr.analysis.predictions import attach_survival

            predictions = attach_survival(predictions, **follow)
        result = analyze(predictions, strata=strata, n_bootstrap=n_bootstrap, seed=seed, development=development,
                         cohort_done=workers.submit_cohort,
                         **({"horizon": float(config.horizon)} if follow and config.horizon else {}))
        settings = {"dev_cohort": info["dev_label"], "strata": strata, "n_bootstrap": n_bootstrap,
                    "thresholds_from": "bundle", "bundle": info["source"]}
        provenance = analysis_provenance(run / rf.PREDICTIONS, oof_path=run / DEV_OOF if oof is not None else None,
                                         settings=settings, seed=seed, command=command)
        write_analysis(result, run / "results", provenance_info=provenance, workers=workers)
    write_files(run / "results", {"recalibration.csv": recalibrated})
    return result


def recalibration_table(frame: pd.DataFrame, info: dict) -> pd.DataFrame:
    """``results/recalibration.csv``: each probability model in each of the study's cohorts:
    calibration-in-the-large and slope (:func:`dlr.analysis.calibration.recalibration`)."""
    from dlr.analysis.calibration import recalibration

    columns = ["model", "cohort", "n", "n_events", "observed_expected", "citl", "citl_ci_low", "citl_ci_high", "slope",
               "slope_ci_low", "slope_ci_high"]
    rows = []
    for (model, cohort), g in frame[frame["cohort"] != info["dev_label"]].groupby(["model", "cohort"], sort=False):
        if model not in info["probability_models"]:
            continue
        fit = recalibration(g["y_true"].to_numpy(dtype=int), g["y_score"].to_numpy(dtype=float))
        rows.append({"model": model, "cohort": cohort, **fit.to_frame().to_dict("records")[0]})
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# the stages


@dataclass
class _Context:
    bundle: Path
    root: Path
    run: Path
    config: object
    jobs: int
    n_bootstrap: int
    seed: int
    device: str
    report_formats: tuple
    case_done: Optional[Callable]
    frozen: object = None
    loaded: object = None

    def models(self):
        if self.frozen is None:
            from dlr.modeling.frozen import FrozenModels

            self.frozen = FrozenModels.load(self.bundle)
        return self.frozen

    def study(self):
        if self.loaded is None:
            from dlr.modeling.study import load_study

            self.loaded = load_study(self.root, check_images=_uses_images(self.models().names), external=True)
        return self.loaded

    @functools.cached_property
    def files(self) -> dict:
        from .runner import _study_files

        files = _study_files(self.root, self.config.phases if _uses_images(self.models().names) else ())
        bundle = Path(self.bundle)
        if bundle.is_dir():
            files.update({f"bundle/{p.relative_to(bundle)}": p for p in sorted(bundle.rglob("*")) if p.is_file()})
        else:
            files["bundle"] = bundle
        return files


def _validate_stage(ctx: _Context):
    def validate():
        from dlr.core.csvsafe import write_csv
        from dlr.core.output import staged_folder
        from dlr.modeling.frozen import DEV_OOF as MEMBER_OOF
        from dlr.modeling.frozen import DEV_PREDICTIONS as MEMBER_PREDICTIONS

        frozen, study = ctx.models(), ctx.study()
        for line in frozen.check_versions():
            import warnings

            warnings.warn(line, stacklevel=2)
        _, log = check_study(frozen, study)
        dev = frozen.bundle.csv(MEMBER_PREDICTIONS)
        cohorts = list(dict.fromkeys(study.clinical[study.config.cohort_column].astype(str)))
        info = {"source": frozen.bundle.source, "manifest": frozen.bundle.manifest, "study": frozen.study,
                "dev_cohort": frozen.study["dev_cohort"], "dev_label": development_label(frozen.study["dev_cohort"],
                                                                                        cohorts),
                "models": frozen.names, "thresholds": frozen.models["thresholds"],
                "development_threshold_source": frozen.models["threshold_source"],
                "risk_maps": frozen.models["risk_maps"], "probability_models": frozen.models["probability_models"],
                "n_development": int(dev["patient_id"].nunique()),
                "n_events_development": int(dev.drop_duplicates("patient_id")["y_true"].sum()),
                "phases": frozen.phases, "harmonization": frozen.study.get("harmonization"),
                "recodes_applied": log, "cohorts": cohorts}
        with staged_folder(ctx.run / "inputs") as folder:
            shutil.copyfile(ctx.root / "study.yaml", folder / "study.yaml")
            hashes = FileHashes(ctx.run)
            write_csv(pd.DataFrame([{"file": k, "sha256": hashes(v)} for k, v in ctx.files.items()]),
                      folder / "checksums.csv")
            (folder / "bundle.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
            (folder / "development_predictions.csv").write_bytes(frozen.bundle.bytes(MEMBER_PREDICTIONS))
            if frozen.bundle.has(MEMBER_OOF):
                (folder / "development_oof.csv").write_bytes(frozen.bundle.bytes(MEMBER_OOF))
            if frozen.bundle.has("radiomics/params.yaml"):
                (folder / "radiomics_params.yaml").write_bytes(frozen.bundle.bytes("radiomics/params.yaml"))
        return (f"{len(study.patient_ids)} patients of {', '.join(cohorts)}; bundle of {len(frozen.names)} models "
                f"(development cohort {frozen.study['dev_cohort']!r}, {info['n_development']} patients)")

    from .stages import FileHashes, Stage

    def outputs():
        return [o for o in ("inputs/study.yaml", "inputs/checksums.csv", BUNDLE_INFO, DEV_PREDICTIONS, DEV_OOF,
                            "inputs/radiomics_params.yaml") if (ctx.run / o).is_file()]

    return Stage("validate", lambda: ctx.files, outputs, validate, {},
                 code=("dlr.predict", "dlr.modeling.frozen", "dlr.modeling.study", "dlr.core.bundle")), []


def _features_stage(ctx: _Context):
    from .stages import Stage

    caught = []

    def features():
        from dlr.core.errors import collected_warnings
        from dlr.modeling.radiomics.extraction import extract_study
        from dlr.modeling.radiomics.preprocess import PreprocessSettings

        frozen = ctx.models()
        preprocessing = PreprocessSettings(**json.loads(frozen.bundle.bytes("radiomics/preprocessing.json")))
        with collected_warnings() as warned:
            summary = extract_study(_with_bundle_phases(ctx.study(), frozen), ctx.run, jobs=ctx.jobs, params_path=ctx.run / "inputs" /
                                    "radiomics_params.yaml", preprocessing=preprocessing, progress=ctx.case_done)
        caught.extend(warned)
        return (f"{summary.n_cases} cases with the bundle's parameters: {summary.n_computed} computed, "
                f"{summary.n_cached} from the cache, {summary.n_failed} failed")

    def inputs():
        return {**{k: v for k, v in ctx.files.items() if k != "clinical.csv"},
                "radiomics_params": ctx.run / "inputs" / "radiomics_params.yaml"}

    return Stage("features", inputs, lambda: ["features/radiomics.csv", "features/extraction_log.csv"], features, {},
                 code=("dlr.modeling.radiomics.extraction",), upstream=("validate",)), caught


def _clinical_stage(ctx: _Context):
    from . import verbs
    from .stages import Stage

    config, caught = ctx.config, []

    def clinical():
        done = verbs.table1(ctx.root / "clinical.csv", ctx.run / "clinical", outcome=config.outcome_column,
                            cohort=config.cohort_column, study_yaml=ctx.root / "study.yaml")
        caught.extend(done.warnings)
        return "Table 1"

    return Stage("clinical", lambda: {"clinical.csv": ctx.root / "clinical.csv", "study.yaml": ctx.root / "study.yaml"},
                 lambda: ["clinical/table1.csv", "clinical/table1_tests.csv"], clinical, {},
                 code=("dlr.analysis.table1", "dlr.modeling.levels"), upstream=("validate",)), caught


def _scores_stage(ctx: _Context):
    from .stages import Stage

    caught = []

    def scores():
        from dlr.core.csvsafe import write_csv
        from dlr.core.errors import collected_warnings
        from dlr.core.output import staged_file

        frozen, study = ctx.models(), ctx.study()
        with collected_warnings(ignore=(FutureWarning, DeprecationWarning)) as warned:
            clinical, _ = check_study(frozen, study)
            frame = score_study(frozen, study, clinical, ctx.run, jobs=ctx.jobs, device=ctx.device)
        caught.extend(warned)
        with staged_file(ctx.run / rf.PREDICTIONS) as tmp:
            write_csv(frame, tmp, float_format="%.17g")
        return f"{frame['model'].nunique()} models x {frame['patient_id'].nunique()} patients"

    def inputs():
        files = {"clinical.csv": ctx.root / "clinical.csv", "study.yaml": ctx.root / "study.yaml",
                 BUNDLE_INFO: ctx.run / BUNDLE_INFO}
        if "radiomics" in ctx.models().models:
            files["features/radiomics.csv"] = ctx.run / "features" / "radiomics.csv"
        if "deep" in ctx.models().models:
            files.update(ctx.files)
        return files

    where = ctx.models().scoring_device(ctx.device).type if "deep" in ctx.models().models else None
    return Stage("scores", inputs, lambda: [rf.PREDICTIONS], scores, {"device": where},
                 code=("dlr.predict", "dlr.modeling.frozen", "dlr.modeling.clinical", "dlr.modeling.deep.arm"),
                 upstream=("validate",) + (("features",) if "radiomics" in ctx.models().models else ())), caught


def _analysis_stage(ctx: _Context):
    from .stages import Stage

    caught = []

    def analysis():
        from dlr.core.errors import collected_warnings

        with collected_warnings() as warned:
            result = analyze_external(ctx.run, ctx.config, n_bootstrap=ctx.n_bootstrap, seed=ctx.seed,
                                      command=["dlr", "predict"])
        caught.extend(warned)
        return f"{len(result.performance)} model-cohort rows at the bundle's thresholds"

    return Stage("analysis", lambda: {rf.PREDICTIONS: ctx.run / rf.PREDICTIONS, BUNDLE_INFO: ctx.run / BUNDLE_INFO,
                                      DEV_PREDICTIONS: ctx.run / DEV_PREDICTIONS, DEV_OOF: ctx.run / DEV_OOF},
                 lambda: ["results/performance.csv", "results/results.json", RECALIBRATION], analysis,
                 {"n_bootstrap": ctx.n_bootstrap, "seed": ctx.seed},
                 code=("dlr.predict", "dlr.analysis.pipeline", "dlr.analysis.output", "dlr.analysis.figures",
                       "dlr.analysis.calibration"), upstream=("scores",)), caught


def _report_stage(ctx: _Context):
    from .stages import Stage

    caught = []

    def report():
        from dlr.report.external import build_external_report

        done = build_external_report(ctx.run, formats=ctx.report_formats)
        caught.extend(done.warnings)
        return f"{', '.join(Path(p).name for p in done.outputs)} ({done.renderer})"

    def inputs():
        files = {}
        for sub in ("results", "clinical", "inputs"):
            folder = ctx.run / sub
            if folder.is_dir():
                files.update({str(p.relative_to(ctx.run)): p for p in sorted(folder.rglob("*")) if p.is_file()})
        return files

    outputs = [f"report/index.{f}" for f in ctx.report_formats] + ["report/tripod_ai.csv"]
    if "html" in ctx.report_formats:
        outputs.append("report/audit.csv")
    return Stage("report", inputs, lambda: outputs, report, {"formats": list(ctx.report_formats)},
                 code=("dlr.report.external",), upstream=("analysis", "clinical")), caught


def predict_study(bundle, study, out, *, jobs: int = 1, device: str = "auto", seed: Optional[int] = None,
                  n_bootstrap: Optional[int] = None, report_formats=("html", "docx"),
                  case_done: Optional[Callable[[int, int, dict], None]] = None) -> PredictSummary:
    """`dlr predict`: score ``study`` with the frozen models of ``bundle`` into ``out`` (see the
    module docstring).

    Parameters
    ----------
    bundle : path
        ``RUN/model/`` of a `dlr run` or `dlr train`, or the zip of `dlr bundle`.
    study : path
        The new study folder (contract section 2; every cohort of it is scored).
    out : path
        The run folder: new, empty, or an earlier `dlr predict` of the same bundle and study (resumed).
    jobs : int
        Processes for extraction and the slices (results do not depend on it).
    device : {"auto", "cpu", "cuda"}
        Where the networks score (:meth:`FrozenModels.scoring_device`): ``auto``, where they were
        trained (a CPU-trained bundle scores on the CPU, one thread, bit for bit as its run).
    seed, n_bootstrap :
        The analysis' bootstrap (defaults: the bundle's seed and 2000 resamples).

    Raises
    ------
    InputError
        A bundle that is changed, corrupt or of another format; a study that does not fit it.
    """
    from dlr.analysis.defaults import DEFAULT_BOOTSTRAP
    from dlr.core.lock import writing
    from dlr.core.progress import written_to
    from dlr.modeling.config import load_study_config

    from .runner import _run_stages
    from .stages import check_run_folder, write_run_marker

    root, run = Path(study), Path(out)
    if not (root / "study.yaml").is_file():
        raise InputError(f"{root / 'study.yaml'}: not found ({root} is not a study folder; contract section 2)")
    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    config = load_study_config(root / "study.yaml")
    ctx = _Context(Path(bundle), root, run, config, jobs, DEFAULT_BOOTSTRAP if n_bootstrap is None else n_bootstrap,
                   0, device, tuple(report_formats), case_done)
    ctx.models()  # a bad bundle is refused before the run folder is touched
    ctx.seed = int(ctx.models().study["seed"]) if seed is None else int(seed)
    with writing(run):
        previous = check_run_folder(run, creating=True)
        if previous is not None and (previous.get("kind") != "predict"
                                     or Path(previous.get("study", root)).resolve() != root.resolve()):
            raise InputError(f"{run / 'run.json'}: this folder holds another run ({previous.get('kind', 'dlr run')} of "
                             f"{previous.get('study')}); choose another --out folder")
        with written_to(run / "run.log"):
            write_run_marker(run, {"kind": "predict", "study": str(root.resolve()), "bundle": str(Path(bundle).resolve()),
                                   "seed": ctx.seed, "n_bootstrap": ctx.n_bootstrap})
            logger.info(f"dlr predict {bundle} {root} -> {run} ({jobs} job(s))")
            makers = [_validate_stage]
            if "radiomics" in ctx.models().models:
                makers.append(_features_stage)
            makers += [_clinical_stage, _scores_stage, _analysis_stage, _report_stage]
            stages = [maker(ctx) for maker in makers]
            start = time.perf_counter()
            outcomes, warnings = _run_stages(run, stages)
            logger.info(f"dlr predict finished in {time.perf_counter() - start:.1f} s")
    return PredictSummary(run, tuple(outcomes), tuple(warnings))
