"""`dlr run`: a study folder to a report, stage by stage, cached and resumable.

The stages, in order (each skipped when nothing it reads changed; see :mod:`dlr.stages`):

========== ============================================ =========================================
stage      reads                                        writes (under RUN/)
========== ============================================ =========================================
validate   study.yaml, clinical.csv, images, masks      inputs/study.yaml, inputs/checksums.csv
split      clinical.csv, study.yaml; seed               split.csv
features   images, masks, study.yaml, PyRadiomics YAML  features/radiomics.csv, extraction_log.csv
clinical   clinical.csv, study.yaml                     clinical/ (Table 1, recodes, Table 3, sample size)
staging    clinical.csv, study.yaml                     staging/staging.csv, staging_missing.csv
models     clinical.csv, split.csv, features            predictions.csv, predictions_oof.csv, models/, model/
analysis   predictions.csv, predictions_oof.csv,        results/ (harmonization_strata.csv with
           models/unharmonised_predictions.csv          harmonisation)
report     results/, models/, clinical/, staging/, ...  report/index.html, index.docx, the checklists
========== ============================================ =========================================

A study whose study.yaml lists no phases (clinical only) runs every stage but ``features``, and
its models are the clinical arm's (CR and the comparators).

Profiles: ``paper`` keeps the paper's method (images resampled to 1 x 1 x 1 mm). ``quick``
resamples to 2 x 2 x 2 mm unless study.yaml's ``preprocessing: spacing`` says otherwise: about
four times faster to extract, with all 1037 features per phase (the synthetic quick study's
voxels are 3 x 3 x 5 mm, so 1 mm only interpolates). Both use B = 2000 bootstrap resamples.
"""
from __future__ import annotations

import functools
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from dlr.core import run_folder as rf
from dlr.analysis.defaults import DEFAULT_BOOTSTRAP
from dlr.core.errors import InputError
from dlr.core.lock import writing
from dlr.core.progress import written_to

from .settings import PROFILES, RunSettings, resolve_settings
from .stages import FileHashes, Stage, StageOutcome, check_run_folder, run_stage, write_run_marker

logger = logging.getLogger(__name__)

STAGE_NAMES = ("validate", "split", "features", "clinical", "staging", "models", "analysis", "report")


@dataclass(frozen=True)
class RunSummary:
    """What `dlr run` did: the run folder, each stage's outcome, the warnings raised."""

    out: Path
    stages: tuple
    warnings: tuple
    profile: str
    arms: tuple

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def _study_files(root: Path, phases) -> dict:
    files = {"study.yaml": root / "study.yaml", "clinical.csv": root / "clinical.csv"}
    if phases:
        for sub in ("images", "masks", "masks_reader2"):
            folder = root / sub
            if folder.is_dir():
                for path in sorted(folder.rglob("*.nii*")):
                    files[str(path.relative_to(root))] = path
    return files


def run_study(study, out, *, profile: Optional[str] = None, arms=None, jobs: int = 1, seed: Optional[int] = None,
              scheduler: Optional[str] = None, params=None, n_bootstrap: int = DEFAULT_BOOTSTRAP,
              case_done: Optional[Callable[[int, int, dict], None]] = None,
              report_formats=("html", "docx"), device: str = "auto") -> RunSummary:
    """Run every stage of a study into ``out`` (contract section 3); see the module docstring.

    Parameters
    ----------
    study : path
        The study folder (contract section 2).
    out : path
        The run folder: new, empty, or an earlier run of this dlr (resumed; a folder without
        ``run.json`` or of an older format is refused).
    profile : {"quick", "paper"}, optional
        Default: study.yaml's ``profile``.
    arms : iterable of str, optional
        Default: clinical, radiomics and deep, or clinical alone for a study without phases.
    jobs : int
        Processes for extraction and the out-of-fold refits (not a setting: results do not depend on it).
    seed : int, optional
        Default: study.yaml's; seeds the split, the models and the bootstrap.
    scheduler : str, optional
        A Dask scheduler's address for extraction and the out-of-fold refits.
    case_done :
        The extraction's per-case callback (a progress bar); every other step is logged
        (:mod:`dlr.core.progress`) and written, time-stamped, to ``RUN/run.log``.
    device : {"auto", "cpu", "cuda"}
        Where the deep arm trains (a setting of the models stage: CPU and GPU results differ).

    Returns
    -------
    RunSummary

    Raises
    ------
    InputError
        Bad input (the message names the file, patient and column); nothing half-written.
    """
    from dlr.modeling.config import load_study_config

    root, run = Path(study), Path(out)
    if not (root / "study.yaml").is_file():
        raise InputError(f"{root / 'study.yaml'}: not found ({root} is not a study folder; see `dlr synth` or "
                         "contract section 2)")
    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    config = load_study_config(root / "study.yaml")
    settings = resolve_settings(root, config, profile=profile, arms=arms, seed=seed, params=params,
                                n_bootstrap=n_bootstrap, device=device)
    with writing(run):
        previous = check_run_folder(run, creating=True)
        if previous is not None and Path(previous.get("study", root)).resolve() != root.resolve():
            raise InputError(f"{run / 'run.json'}: this run folder holds a run of the study {previous.get('study')}, "
                             f"not {root}; choose another --out folder")
        return _run_locked(root, run, config, settings, jobs=jobs, scheduler=scheduler,
                           case_done=case_done, report_formats=report_formats)


def _run_locked(root: Path, run: Path, config, settings: RunSettings, *, jobs, scheduler, case_done,
                report_formats) -> RunSummary:
    """:func:`run_study` once it holds the run folder's lock."""
    with written_to(run / "run.log"):
        write_run_marker(run, {"study": str(root.resolve()), "profile": settings.profile,
                               "arms": list(settings.arms), "seed": settings.seed, "n_bootstrap": settings.n_bootstrap})
        logger.info(f"dlr run {root} -> {run} (profile {settings.profile}, arms {', '.join(settings.arms)}, seed "
                    f"{settings.seed}, {jobs} job(s){', scheduler ' + scheduler if scheduler else ''})")
        stages = _stages(root, run, config, settings, jobs=jobs, scheduler=scheduler, case_done=case_done,
                         report_formats=report_formats)
        outcomes, warnings = _run_stages(run, stages)
    return RunSummary(run, tuple(outcomes), tuple(warnings), settings.profile, settings.arms)


def _run_stages(run: Path, stages: list) -> tuple[list, list]:
    """Run (or skip) each stage in turn: the outcomes and the warnings caught."""
    hashes = FileHashes(run)
    outcomes, warnings = [], []
    try:
        for i, (stage, caught) in enumerate(stages, 1):
            logger.info(f"[{i}/{len(stages)}] {stage.name}")
            outcome = run_stage(run, stage, hashes)
            outcomes.append(outcome)
            warnings.extend(caught)
            if outcome.status == "skipped":
                logger.info(f"[{i}/{len(stages)}] {stage.name}: unchanged since the last run, skipped")
            else:
                logger.info(f"[{i}/{len(stages)}] {stage.name}: done in {outcome.seconds:.1f} s"
                            f"{': ' + outcome.summary if outcome.summary else ''}")
    except KeyboardInterrupt:
        logger.info("interrupted; run the same command again to resume (finished stages and cases are kept)")
        raise
    except InputError as exc:
        logger.info(f"stopped: {exc}")
        raise
    total = sum(o.seconds for o in outcomes)
    logger.info(f"finished in {total:.1f} s: " + ", ".join(f"{o.name} {o.status}" for o in outcomes))
    return outcomes, warnings


@dataclass
class _Context:
    """What every stage of one run needs: the study, the run folder, the resolved settings and
    the study, loaded once (validated) by the first stage that asks for it."""

    root: Path
    run: Path
    config: object
    settings: RunSettings
    jobs: int
    scheduler: Optional[str]
    case_done: Optional[Callable]
    report_formats: tuple
    loaded: object = None

    @property
    def study_yaml(self) -> Path:
        return self.root / "study.yaml"

    @property
    def clinical(self) -> Path:
        return self.root / "clinical.csv"

    @property
    def images_used(self) -> bool:
        return "radiomics" in self.settings.arms or "deep" in self.settings.arms

    @functools.cached_property
    def files(self) -> dict:
        """The study's files the run reads (images and masks only when an imaging arm runs)."""
        return _study_files(self.root, self.config.phases if self.images_used else ())

    def study(self):
        if self.loaded is None:
            from dlr.modeling.study import load_study

            self.loaded = load_study(self.root, check_images=bool(self.config.phases)
                                     and "radiomics" in self.settings.arms)
        return self.loaded


def _stages(root: Path, run: Path, config, settings: RunSettings, *, jobs, scheduler, case_done,
            report_formats) -> list:
    """[(Stage, list collecting its warnings)] in order."""
    ctx = _Context(root, run, config, settings, jobs, scheduler, case_done, tuple(report_formats))
    makers = [_validate_stage, _split_stage]
    if "radiomics" in settings.arms:
        makers.append(_features_stage)
    makers += [_clinical_stage, _staging_stage, _models_stage, _analysis_stage]
    stages = [maker(ctx) for maker in makers]
    stages.append(_report_stage(ctx, upstream=tuple(stage.name for stage, _ in stages)))
    return stages


def _validate_stage(ctx: _Context):
    def validate():
        import pandas as pd

        from dlr.core.output import write_files

        study = ctx.study()
        hashes = FileHashes(ctx.run)
        table = pd.DataFrame([{"file": name, "sha256": hashes(path)} for name, path in ctx.files.items()])
        write_files(ctx.run / "inputs", {"checksums.csv": table})
        shutil.copyfile(ctx.study_yaml, ctx.run / "inputs" / "study.yaml")
        return f"{len(study.patient_ids)} patients, {len(ctx.files)} files"

    return Stage("validate", lambda: ctx.files, lambda: ["inputs/study.yaml", "inputs/checksums.csv"], validate,
                 {"check_images": ctx.images_used}, code=("dlr.modeling.study", "dlr.core.output")), []


def _split_stage(ctx: _Context):
    config = ctx.config

    def split():
        from dlr.modeling.splits import load_or_make_split

        (ctx.run / rf.SPLIT).unlink(missing_ok=True)  # the inputs or the seed changed: split anew
        frame = ctx.study().clinical.copy()
        frame[config.id_column] = frame[config.id_column].astype(str)
        table = load_or_make_split(ctx.run, frame, id_column=config.id_column, cohort_column=config.cohort_column,
                                   outcome_column=config.outcome_column, dev_cohort=config.dev_cohort,
                                   n_folds=config.n_folds, seed=ctx.settings.seed, clinical_path=ctx.clinical)
        dev = table[table["cohort"] == config.dev_cohort]
        return f"{len(table)} patients, {dev['fold'].nunique()} folds of the {len(dev)} {config.dev_cohort!r} patients"

    return Stage("split", lambda: {"clinical.csv": ctx.clinical, "study.yaml": ctx.study_yaml}, lambda: [rf.SPLIT],
                 split, {"seed": ctx.settings.seed}, code=("dlr.modeling.study", "dlr.modeling.splits"),
                 upstream=("validate",)), []


def _features_stage(ctx: _Context):
    settings, caught = ctx.settings, []

    def features():
        from dlr.core.errors import collected_warnings
        from dlr.modeling.radiomics.extraction import extract_study

        where = f"the Dask cluster at {ctx.scheduler}" if ctx.scheduler else f"{ctx.jobs} process(es)"
        say_spacing = " x ".join(f"{s:g}" for s in settings.preprocess().spacing)
        logger.info(f"extracting radiomics features with {where} (voxels resampled to {say_spacing} mm)")
        with collected_warnings() as warned:
            summary = extract_study(ctx.study(), ctx.run, jobs=ctx.jobs, scheduler=ctx.scheduler,
                                    params_path=settings.params_file, preprocessing=settings.preprocess(),
                                    progress=ctx.case_done)
        caught.extend(warned)
        return (f"{summary.n_cases} cases, {summary.n_features_per_phase} features per phase: "
                f"{summary.n_computed} computed, {summary.n_cached} from the cache, {summary.n_failed} failed")

    def inputs():
        return {**{k: v for k, v in ctx.files.items() if k != "clinical.csv"}, "radiomics_params": settings.params_file}

    return Stage("features", inputs, lambda: ["features/radiomics.csv", "features/extraction_log.csv"], features,
                 {"preprocessing": settings.preprocessing_dict},
                 code=("dlr.modeling.study", "dlr.modeling.radiomics.extraction", "dlr.core.errors"),
                 upstream=("validate",)), caught


CLINICAL_OUTPUTS = ("table1.csv", "table1_tests.csv", "recodes.csv", "univariate.csv", "multivariate.csv",
                    "selected.txt", "sample_size.csv")


def _clinical_stage(ctx: _Context):
    from . import verbs

    config, caught = ctx.config, []
    pairs = {v.name: v.reader2_column for v in config.variables if v.reader2_column}

    def clinical_stats():
        done1 = verbs.table1(ctx.clinical, ctx.run / "clinical", outcome=config.outcome_column,
                             cohort=config.cohort_column, study_yaml=ctx.study_yaml)
        done3 = verbs.logistic(ctx.clinical, ctx.run / "clinical", outcome=config.outcome_column,
                               cohort=config.cohort_column, dev_cohort=config.dev_cohort, study_yaml=ctx.study_yaml)
        caught.extend([*done1.warnings, *done3.warnings])
        if pairs:  # the radiological features read twice: Cohen's kappa (the paper's reader agreement)
            from dlr.core.output import write_files
            from dlr.core.stats.agreement import kappa_table
            from dlr.core.tables import read_table

            write_files(ctx.run / "clinical",
                        {"agreement.csv": kappa_table(read_table(ctx.clinical, what="clinical"), pairs)})
        return f"Table 1 and Table 3; CR factors: {', '.join(done3.result.selected) or 'none'}"

    outputs = [f"clinical/{n}" for n in CLINICAL_OUTPUTS] + (["clinical/agreement.csv"] if pairs else [])
    return Stage("clinical", lambda: {"clinical.csv": ctx.clinical, "study.yaml": ctx.study_yaml}, lambda: outputs,
                 clinical_stats, {}, code=("dlr.analysis.table1", "dlr.modeling.cr_factors", "dlr.modeling.sample_size",
                                           "dlr.modeling.levels", "dlr.core.stats.agreement", "dlr.core.tables",
                                           "dlr.core.output"),
                 upstream=("validate",)), caught


def _staging_stage(ctx: _Context):
    from . import verbs

    config, caught = ctx.config, []

    def staging():
        done = verbs.staging(ctx.clinical, ctx.run / "staging", study_yaml=ctx.study_yaml,
                             outcome=config.outcome_column, cohort=config.cohort_column, dev_cohort=config.dev_cohort)
        caught.extend(done.warnings)
        return f"{len(done.result.table)} patients staged"

    return Stage("staging", lambda: {"clinical.csv": ctx.clinical, "study.yaml": ctx.study_yaml},
                 lambda: ["staging/staging.csv", "staging/staging_missing.csv"], staging, {},
                 code=("dlr.modeling.staging", "dlr.modeling.config", "dlr.modeling.levels", "dlr.core.tables",
                       "dlr.core.output"),
                 upstream=("validate",)), caught


def _models_stage(ctx: _Context):
    settings, run, caught = ctx.settings, ctx.run, []
    arms = settings.arms

    def models():
        from dlr.core.errors import collected_warnings
        from dlr.modeling.train import train_study

        with collected_warnings(ignore=(FutureWarning, DeprecationWarning)) as warned:
            summary = train_study(ctx.study(), run, arms=arms, jobs=ctx.jobs, seed=settings.seed, oof=True,
                                  scheduler=ctx.scheduler, deep=settings.deep,
                                  device=settings.device)
        caught.extend(warned)
        table = summary.models
        # a run without the radiomics arm chose no classifier: models.csv has no such column
        best = list(table.loc[table["best_classifier"].astype(bool), "model"]) if "best_classifier" in table else []
        return f"{len(table)} models" + (f"; best classifier {best[0]}" if best else "")

    def inputs():
        files = {"clinical.csv": ctx.clinical, "study.yaml": ctx.study_yaml, rf.SPLIT: run / rf.SPLIT}
        if "radiomics" in arms:
            files["features/radiomics.csv"] = run / "features" / "radiomics.csv"
        if "deep" in arms:  # the networks read the images and masks themselves
            files.update({k: v for k, v in ctx.files.items() if k not in files})
        return files

    written = [rf.PREDICTIONS, rf.OOF_PREDICTIONS, "models/models.csv", "models/parameters.json", "model/manifest.json",
               rf.UNHARMONISED_PREDICTIONS]
    if "deep" in arms:
        written += ["models/deep/networks.csv", "models/deep/training_log.csv"]
    optional = (rf.OOF_PREDICTIONS, rf.UNHARMONISED_PREDICTIONS)

    def outputs():  # no out-of-fold file when no model was refitted (no CR factor, no imaging arm); no
        # unharmonised predictions without harmonisation
        return [o for o in written if o not in optional or (run / o).is_file()]

    deep = settings.deep
    return Stage("models", inputs, outputs, models,
                 {"arms": list(arms), "seed": settings.seed,
                  **({"deep": deep.to_dict(), "device": settings.device} if deep else {})},
                 code=("dlr.modeling.study", "dlr.modeling.train", "dlr.modeling.radiomics.harmonization",
                       "dlr.modeling.frozen", "dlr.core.bundle", "dlr.core.errors"),
                 upstream=("validate", "split") + (("features",) if "radiomics" in arms else ())), caught


def _analysis_stage(ctx: _Context):
    from . import verbs

    config, run, settings, caught = ctx.config, ctx.run, ctx.settings, []
    strata = [config.scanner_column] if config.scanner_column else []
    # follow-up (contract 5.1) when study.yaml names both columns; predictions.csv carries them
    follow_up = ({"time": config.time_column, "event": config.event_column, "horizon": config.horizon}
                 if config.time_column and config.event_column else {})

    # with harmonisation: the AUCs by batch level with and without ComBat (models/unharmonised_predictions.csv)
    batch = config.harmonization.batch if config.harmonization is not None else None
    unharmonised = run / rf.UNHARMONISED_PREDICTIONS

    def analysis():
        oof = run / rf.OOF_PREDICTIONS
        done = verbs.analyze(run / rf.PREDICTIONS, run / "results", dev_cohort=config.dev_cohort, strata=strata,
                             n_bootstrap=settings.n_bootstrap, seed=settings.seed, oof=oof if oof.is_file() else None,
                             command=["dlr", "run"], **follow_up)
        caught.extend(done.warnings)
        ref = done.result.settings.get("reference")
        summary = f"{len(done.result.performance)} model-cohort rows" + (f"; reference {ref}" if ref else "")
        if batch is not None and unharmonised.is_file():  # after analyze, which replaces results/ whole
            summary += "; " + _harmonization_strata(run, batch, config.dev_cohort, caught)
        return summary

    def outputs():
        extra = [rf.HARMONIZATION_STRATA] if batch is not None and unharmonised.is_file() else []
        return ["results/performance.csv", "results/comparisons.csv", "results/results.json", *extra]

    return Stage("analysis", lambda: {rf.PREDICTIONS: run / rf.PREDICTIONS,
                                      rf.OOF_PREDICTIONS: run / rf.OOF_PREDICTIONS,
                                      rf.UNHARMONISED_PREDICTIONS: unharmonised},
                 outputs, analysis,
                 {"dev_cohort": config.dev_cohort, "strata": strata, "n_bootstrap": settings.n_bootstrap,
                  "seed": settings.seed, **follow_up, **({"harmonization_batch": batch} if batch else {})},
                 code=("dlr.analysis.pipeline", "dlr.analysis.figures", "dlr.analysis.output",
                       "dlr.analysis.predictions", "dlr.analysis.decision_curve", "dlr.analysis.defaults",
                       "dlr.analysis.harmonization"),
                 upstream=("models",)), caught


def _harmonization_strata(run: Path, batch: str, dev_cohort: str, caught: list) -> str:
    """``results/harmonization_strata.csv`` from predictions.csv and models/unharmonised_predictions.csv."""
    from dlr.analysis.harmonization import write_harmonization_strata
    from dlr.core.errors import collected_warnings

    logger.info(f"AUCs by {batch} with and without ComBat ({rf.UNHARMONISED_PREDICTIONS})")
    with collected_warnings() as warned:
        result = write_harmonization_strata(run / rf.PREDICTIONS, run / rf.UNHARMONISED_PREDICTIONS,
                                            run / rf.HARMONIZATION_STRATA, stratifier=batch, dev_cohort=dev_cohort,
                                            command=["dlr", "run"])
    caught.extend(warned)
    table = result.table
    return (f"{table['model'].nunique()} models by {batch} with and without ComBat "
            f"({rf.HARMONIZATION_STRATA})")


def _report_stage(ctx: _Context, *, upstream: tuple):
    from . import verbs

    run, formats, caught = ctx.run, ctx.report_formats, []

    def report():
        done = verbs.report(run, formats=formats)
        caught.extend(done.warnings)
        return f"{', '.join(p.name for p in done.result.outputs)} ({done.result.renderer})"

    def inputs():
        files = {}
        for sub in ("results", "clinical", "staging", "models", "features", "inputs"):
            folder = run / sub
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file() and "cache" not in path.relative_to(run).parts and \
                            not path.name.startswith(".tmp"):
                        files[str(path.relative_to(run))] = path
        for name in STAGE_NAMES[:-1]:
            files[f"stages/{name}.json"] = run / "stages" / f"{name}.json"
        return files

    return Stage("report", inputs, lambda: [f"report/index.{'html' if f == 'html' else f}" for f in formats]
                 + ["report/tripod_ai.csv", "report/claim.csv", "report/clear.csv", "report/metrics.csv"], report, {"formats": list(formats)}, code=("dlr.report.build",),
                 upstream=upstream), caught


def demo(out, *, profile: str = "quick", jobs: int = 2, seed: Optional[int] = None, n: int = 165,
         case_done: Optional[Callable[[int, int, dict], None]] = None,
         synth_progress: Optional[Callable[[int, int], None]] = None) -> RunSummary:
    """`dlr demo`: the embedded synthetic study into ``out/study`` (once), then :func:`run_study` into ``out``."""
    from dlr.modeling.synthetic import synthesize_study

    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    run = Path(out)
    study = run / "study"
    with writing(run):
        previous = check_run_folder(run, creating=True)
        if previous is None or not (study / "study.yaml").is_file():
            kwargs = {} if seed is None else {"seed": seed}
            if study.exists():
                shutil.rmtree(study)
            write_run_marker(run, {"study": str(study.resolve()), "profile": profile})
            logger.info(f"synthesising the demo study ({n} patients, {profile} profile) into {study}")
            start = time.perf_counter()
            try:
                synthesize_study(study, n=n, profile=profile, progress=synth_progress, **kwargs)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            logger.info(f"synthetic study written in {time.perf_counter() - start:.1f} s")
        return run_study(study, run, profile=profile, jobs=jobs, seed=seed, case_done=case_done)


def stage_table(summary: RunSummary) -> str:
    """The stages' wall times, one line each."""
    lines = [f"{'stage':<10} {'status':<8} {'seconds':>8}"]
    for o in summary.stages:
        lines.append(f"{o.name:<10} {o.status:<8} {o.seconds:>8.1f}")
    lines.append(f"{'total':<10} {'':<8} {summary.seconds:>8.1f}")
    return "\n".join(lines)


__all__ = ["run_study", "demo", "RunSummary", "StageOutcome", "stage_table", "PROFILES"]
