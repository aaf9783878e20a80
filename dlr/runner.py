"""`dlr run`: a study folder to a report, stage by stage, cached and resumable.

The stages, in order (each skipped when nothing it reads changed; see :mod:`dlr.stages`):

========== ============================================ =========================================
stage      reads                                        writes (under RUN/)
========== ============================================ =========================================
validate   study.yaml, clinical.csv, images, masks      inputs/study.yaml, inputs/checksums.csv
split      clinical.csv, study.yaml; seed               split.csv
features   images, masks, study.yaml, PyRadiomics YAML  features/radiomics.csv, extraction_log.csv
clinical   clinical.csv, study.yaml                     clinical/ (Table 1, Table 3, sample size)
staging    clinical.csv, study.yaml                     staging/staging.csv, staging_missing.csv
models     clinical.csv, split.csv, features            predictions.csv, predictions_oof.csv, models/
analysis   predictions.csv, predictions_oof.csv         results/
report     results/, models/, clinical/, staging/, ...  report/index.html, index.docx, tripod_ai.csv
========== ============================================ =========================================

A study whose study.yaml lists no phases (clinical only) runs every stage but ``features``, and
its models are the clinical arm's (CR and the comparators).

Profiles: ``paper`` keeps the paper's method (images resampled to 1 x 1 x 1 mm). ``quick``
resamples to 2 x 2 x 2 mm unless study.yaml's ``preprocessing: spacing`` says otherwise: about
four times faster to extract, with all 1037 features per phase (the synthetic quick study's
voxels are 3 x 3 x 5 mm, so 1 mm only interpolates). Both use B = 2000 bootstrap resamples.
"""
from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from core.errors import InputError

from .stages import FileHashes, Stage, StageOutcome, check_run_folder, run_stage, write_run_marker

PROFILES = ("quick", "paper")
QUICK_SPACING = (2.0, 2.0, 2.0)
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


class _Log:
    """Progress lines to the caller and, time-stamped, to ``RUN/run.log``."""

    def __init__(self, path: Path, progress: Optional[Callable[[str], None]]):
        self.path, self.progress = path, progress
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        with open(self.path, "a") as fh:
            fh.write(f"{stamp} {message}\n")
        if self.progress is not None:
            self.progress(message)


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
              scheduler: Optional[str] = None, params=None, n_bootstrap: int = 2000,
              progress: Optional[Callable[[str], None]] = None,
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
    progress, case_done :
        Progress messages, and the extraction's per-case callback.
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
    from modeling.config import load_study_config

    root, run = Path(study), Path(out)
    if not (root / "study.yaml").is_file():
        raise InputError(f"{root / 'study.yaml'}: not found ({root} is not a study folder; see `dlr synth` or "
                         "contract section 2)")
    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    if n_bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {n_bootstrap}")
    config = load_study_config(root / "study.yaml")
    profile = profile or config.profile
    if profile not in PROFILES:
        raise InputError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    arms = tuple(arms) if arms else (("clinical", "radiomics", "deep") if config.phases else ("clinical",))
    imaging = [a for a in arms if a in ("radiomics", "deep")]
    if imaging and not config.phases:
        raise InputError(f"{root / 'study.yaml'} lists no phases (a clinical-only study): run it with --arms clinical")
    seed = config.seed if seed is None else int(seed)
    previous = check_run_folder(run, creating=True)
    if previous is not None and Path(previous.get("study", root)).resolve() != root.resolve():
        raise InputError(f"{run / 'run.json'}: this run folder holds a run of the study {previous.get('study')}, "
                         f"not {root}; choose another --out folder")
    write_run_marker(run, {"study": str(root.resolve()), "profile": profile, "arms": list(arms), "seed": seed,
                           "n_bootstrap": n_bootstrap})
    say = _Log(run / "run.log", progress)
    say(f"dlr run {root} -> {run} (profile {profile}, arms {', '.join(arms)}, seed {seed}, {jobs} job(s)"
        f"{', scheduler ' + scheduler if scheduler else ''})")
    stages = _stages(root, run, config, profile=profile, arms=arms, jobs=jobs, seed=seed, scheduler=scheduler,
                     params=params, n_bootstrap=n_bootstrap, say=say, case_done=case_done,
                     report_formats=report_formats, device=device)
    hashes = FileHashes(run)
    outcomes, warnings = [], []
    try:
        for i, (stage, caught) in enumerate(stages, 1):
            say(f"[{i}/{len(stages)}] {stage.name}")
            outcome = run_stage(run, stage, hashes, say=say)
            outcomes.append(outcome)
            warnings.extend(caught)
            if outcome.status == "skipped":
                say(f"[{i}/{len(stages)}] {stage.name}: unchanged since the last run, skipped")
            else:
                say(f"[{i}/{len(stages)}] {stage.name}: done in {outcome.seconds:.1f} s"
                    f"{': ' + outcome.summary if outcome.summary else ''}")
    except KeyboardInterrupt:
        say("interrupted; run the same command again to resume (finished stages and cases are kept)")
        raise
    except InputError as exc:
        say(f"stopped: {exc}")
        raise
    total = sum(o.seconds for o in outcomes)
    say(f"finished in {total:.1f} s: " + ", ".join(f"{o.name} {o.status}" for o in outcomes))
    return RunSummary(run, tuple(outcomes), tuple(warnings), profile, arms)


def _stages(root: Path, run: Path, config, *, profile, arms, jobs, seed, scheduler, params, n_bootstrap, say,
            case_done, report_formats, device="auto") -> list:
    """[(Stage, list collecting its warnings)] in order."""
    from . import verbs

    phases = list(config.phases)
    study_yaml, clinical = root / "study.yaml", root / "clinical.csv"
    loaded: dict = {}

    def study_loaded():
        if "study" not in loaded:
            from modeling.study import load_study

            loaded["study"] = load_study(root, check_images=bool(phases) and "radiomics" in arms)
        return loaded["study"]

    stages = []

    def add(stage, caught):
        stages.append((stage, caught))

    # validate ------------------------------------------------------------------------------
    images_used = "radiomics" in arms or "deep" in arms
    files = _study_files(root, phases if images_used else ())
    validate_caught: list = []

    def validate():
        from core.output import write_files
        import pandas as pd

        study = study_loaded()
        hashes = FileHashes(run)
        table = pd.DataFrame([{"file": name, "sha256": hashes(path)} for name, path in files.items()])
        write_files(run / "inputs", {"checksums.csv": table})
        shutil.copyfile(study_yaml, run / "inputs" / "study.yaml")
        return f"{len(study.patient_ids)} patients, {len(files)} files"

    add(Stage("validate", lambda: files, lambda: ["inputs/study.yaml", "inputs/checksums.csv"], validate,
              {"check_images": images_used}), validate_caught)

    # split ---------------------------------------------------------------------------------
    def split():
        from modeling.splits import load_or_make_split

        study = study_loaded()
        (run / "split.csv").unlink(missing_ok=True)  # the inputs or the seed changed: split anew
        frame = study.clinical.copy()
        frame[config.id_column] = frame[config.id_column].astype(str)
        table = load_or_make_split(run, frame, id_column=config.id_column, cohort_column=config.cohort_column,
                                   outcome_column=config.outcome_column, dev_cohort=config.dev_cohort,
                                   n_folds=config.n_folds, seed=seed, clinical_path=clinical)
        dev = table[table["cohort"] == config.dev_cohort]
        return f"{len(table)} patients, {dev['fold'].nunique()} folds of the {len(dev)} {config.dev_cohort!r} patients"

    add(Stage("split", lambda: {"clinical.csv": clinical, "study.yaml": study_yaml}, lambda: ["split.csv"], split,
              {"seed": seed}), [])

    # features ------------------------------------------------------------------------------
    if "radiomics" in arms:
        from modeling.radiomics.extraction import DEFAULT_PARAMS
        from modeling.radiomics.preprocess import PreprocessSettings

        settings = dict(config.preprocessing or {})
        if profile == "quick" and "spacing" not in settings:
            settings["spacing"] = list(QUICK_SPACING)
        params_file = Path(params) if params else (root / config.radiomics_params if config.radiomics_params
                                                   else DEFAULT_PARAMS)
        features_caught: list = []

        def features():
            from core.errors import collected_warnings
            from modeling.radiomics.extraction import extract_study

            where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} process(es)"
            say(f"extracting radiomics features with {where} (voxels resampled to "
                f"{' x '.join(f'{s:g}' for s in settings.get('spacing', (1, 1, 1)))} mm)")
            with collected_warnings() as caught:
                summary = extract_study(study_loaded(), run, jobs=jobs, scheduler=scheduler, params_path=params_file,
                                        preprocessing=PreprocessSettings(**settings), progress=case_done)
            features_caught.extend(caught)
            return (f"{summary.n_cases} cases, {summary.n_features_per_phase} features per phase: "
                    f"{summary.n_computed} computed, {summary.n_cached} from the cache, {summary.n_failed} failed")

        image_files = {k: v for k, v in files.items() if k not in ("clinical.csv",)}
        add(Stage("features", lambda: {**image_files, "radiomics_params": params_file},
                  lambda: ["features/radiomics.csv", "features/extraction_log.csv"], features,
                  {"preprocessing": settings}), features_caught)

    # clinical statistics -------------------------------------------------------------------
    clinical_caught: list = []

    def clinical_stats():
        done1 = verbs.table1(clinical, run / "clinical", outcome=config.outcome_column, cohort=config.cohort_column,
                             study_yaml=study_yaml)
        done3 = verbs.logistic(clinical, run / "clinical", outcome=config.outcome_column, cohort=config.cohort_column,
                               dev_cohort=config.dev_cohort, study_yaml=study_yaml)
        clinical_caught.extend([*done1.warnings, *done3.warnings])
        pairs = {v.name: v.reader2_column for v in config.variables if v.reader2_column}
        if pairs:  # the radiological features read twice: Cohen's kappa (the paper's reader agreement)
            from core.output import write_files
            from core.stats.agreement import kappa_table
            from core.tables import read_table

            write_files(run / "clinical", {"agreement.csv": kappa_table(read_table(clinical, what="clinical"), pairs)})
        return f"Table 1 and Table 3; CR factors: {', '.join(done3.result.selected) or 'none'}"

    clinical_outputs = ["table1.csv", "table1_tests.csv", "univariate.csv", "multivariate.csv", "selected.txt",
                        "sample_size.csv"]
    add(Stage("clinical", lambda: {"clinical.csv": clinical, "study.yaml": study_yaml},
              lambda: [f"clinical/{n}" for n in clinical_outputs]
              + (["clinical/agreement.csv"] if any(v.reader2_column for v in config.variables) else []),
              clinical_stats, {}), clinical_caught)

    # staging -------------------------------------------------------------------------------
    staging_caught: list = []

    def staging():
        done = verbs.staging(clinical, run / "staging", study_yaml=study_yaml, outcome=config.outcome_column,
                             cohort=config.cohort_column, dev_cohort=config.dev_cohort)
        staging_caught.extend(done.warnings)
        return f"{len(done.result.table)} patients staged"

    add(Stage("staging", lambda: {"clinical.csv": clinical, "study.yaml": study_yaml},
              lambda: ["staging/staging.csv", "staging/staging_missing.csv"], staging, {}), staging_caught)

    # models --------------------------------------------------------------------------------
    models_caught: list = []

    def models():
        from core.errors import collected_warnings
        from modeling.train import train_study

        with collected_warnings(ignore=(FutureWarning, DeprecationWarning)) as caught:
            summary = train_study(study_loaded(), run, arms=arms, jobs=jobs, seed=seed, oof=True, scheduler=scheduler,
                                  progress=say, deep=deep, device=device)
        models_caught.extend(caught)
        best = summary.models.loc[summary.models["best_classifier"], "model"]
        return f"{len(summary.models)} models" + (f"; best classifier {best.iloc[0]}" if len(best) else "")

    def models_inputs():
        inputs = {"clinical.csv": clinical, "study.yaml": study_yaml, "split.csv": run / "split.csv"}
        if "radiomics" in arms:
            inputs["features/radiomics.csv"] = run / "features" / "radiomics.csv"
        if "deep" in arms:  # the networks read the images and masks themselves
            inputs.update({k: v for k, v in files.items() if k not in inputs})
        return inputs

    deep = None
    if "deep" in arms:
        from modeling.deep.settings import deep_settings

        deep = deep_settings(profile, **(config.deep or {}))
    outputs = ["predictions.csv", "predictions_oof.csv", "models/models.csv", "models/parameters.json"]
    if "deep" in arms:
        outputs += ["models/deep/networks.csv", "models/deep/training_log.csv"]
    add(Stage("models", models_inputs, lambda: outputs, models,
              {"arms": list(arms), "seed": seed, **({"deep": deep.to_dict(), "device": device} if deep else {})}),
        models_caught)

    # analysis ------------------------------------------------------------------------------
    strata = [config.scanner_column] if config.scanner_column else []
    # follow-up (contract 5.1) when study.yaml names both columns; predictions.csv carries them
    follow_up = ({"time": config.time_column, "event": config.event_column, "horizon": config.horizon}
                 if config.time_column and config.event_column else {})
    analysis_caught: list = []

    def analysis():
        done = verbs.analyze(run / "predictions.csv", run / "results", dev_cohort=config.dev_cohort, strata=strata,
                             n_bootstrap=n_bootstrap, seed=seed, oof=run / "predictions_oof.csv",
                             command=["dlr", "run"], progress=say, **follow_up)
        analysis_caught.extend(done.warnings)
        ref = done.result.settings.get("reference")
        return f"{len(done.result.performance)} model-cohort rows" + (f"; reference {ref}" if ref else "")

    add(Stage("analysis", lambda: {"predictions.csv": run / "predictions.csv",
                                   "predictions_oof.csv": run / "predictions_oof.csv"},
              lambda: ["results/performance.csv", "results/comparisons.csv", "results/results.json"], analysis,
              {"dev_cohort": config.dev_cohort, "strata": strata, "n_bootstrap": n_bootstrap, "seed": seed,
               **follow_up}),
        analysis_caught)

    # report --------------------------------------------------------------------------------
    report_caught: list = []

    def report():
        done = verbs.report(run, formats=report_formats, progress=say)
        report_caught.extend(done.warnings)
        return f"{', '.join(p.name for p in done.result.outputs)} ({done.result.renderer})"

    def report_inputs():
        inputs = {}
        for sub in ("results", "clinical", "staging", "models", "features", "inputs"):
            folder = run / sub
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file() and "cache" not in path.relative_to(run).parts and \
                            not path.name.startswith(".tmp"):
                        inputs[str(path.relative_to(run))] = path
        for name in STAGE_NAMES[:-1]:
            inputs[f"stages/{name}.json"] = run / "stages" / f"{name}.json"
        return inputs

    add(Stage("report", report_inputs,
              lambda: [f"report/index.{'html' if f == 'html' else f}" for f in report_formats]
              + ["report/tripod_ai.csv"], report, {"formats": list(report_formats)}), report_caught)
    return stages


def demo(out, *, profile: str = "quick", jobs: int = 2, seed: Optional[int] = None, n: int = 165,
         progress: Optional[Callable[[str], None]] = None,
         case_done: Optional[Callable[[int, int, dict], None]] = None,
         synth_progress: Optional[Callable[[int, int], None]] = None) -> RunSummary:
    """`dlr demo`: the embedded synthetic study into ``out/study`` (once), then :func:`run_study` into ``out``."""
    from modeling.synthetic import synthesize_study

    run = Path(out)
    previous = check_run_folder(run, creating=True)
    study = run / "study"
    if previous is None or not (study / "study.yaml").is_file():
        kwargs = {} if seed is None else {"seed": seed}
        if study.exists():
            shutil.rmtree(study)
        write_run_marker(run, {"study": str(study.resolve()), "profile": profile})
        if progress:
            progress(f"synthesising the demo study ({n} patients, {profile} profile) into {study}")
        start = time.perf_counter()
        try:
            synthesize_study(study, n=n, profile=profile, progress=synth_progress, **kwargs)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if progress:
            progress(f"synthetic study written in {time.perf_counter() - start:.1f} s")
    return run_study(study, run, profile=profile, jobs=jobs, seed=seed, progress=progress, case_done=case_done)


def stage_table(summary: RunSummary) -> str:
    """The stages' wall times, one line each."""
    lines = [f"{'stage':<10} {'status':<8} {'seconds':>8}"]
    for o in summary.stages:
        lines.append(f"{o.name:<10} {o.status:<8} {o.seconds:>8.1f}")
    lines.append(f"{'total':<10} {'':<8} {summary.seconds:>8.1f}")
    return "\n".join(lines)


__all__ = ["run_study", "demo", "RunSummary", "StageOutcome", "stage_table", "PROFILES"]
