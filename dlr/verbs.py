"""One library function per `dlr` verb: plain arguments in, a result out.

`dlr/cli.py` parses a command line, calls one of these and reports what it returns; `dlr run`
calls them in turn. They never print or exit: progress is logged (:mod:`dlr.core.progress`:
each module's logger under ``dlr``, which the command line shows on stderr), warnings come back
in the result (``warnings``, one line each), bad input raises
:class:`dlr.core.errors.InputError` (exit status 2). Each is a short composition of the stages'
libraries, and the only place where a study folder meets both `modeling/` and `analysis/`.

Imports are made inside the functions: `dlr --help` stays instant, and `analyze` can fork its
figure process before pandas is loaded.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dlr.core.errors import InputError, collected_warnings

from .settings import resolve_settings

logger = logging.getLogger(__name__)



def _writes(position: int, name: str, *, run_itself: bool = True):
    """The verb holds the writer lock (:func:`dlr.core.lock.writing`) of the run folder that its
    argument ``name`` (positional ``position``) writes into: the run's for a folder inside a run
    (``RUN/results``), else the folder itself when ``run_itself`` (a folder `dlr analyze` replaces
    as a whole outside any run is not a run folder, and is not locked)."""
    def wrap(verb):
        @functools.wraps(verb)
        def locked(*args, **kwargs):
            from dlr.core.lock import writing

            folder = Path(args[position] if len(args) > position else kwargs[name])
            owner = folder.parent if (folder.parent / "run.json").is_file() else folder if run_itself else None
            with writing(owner) if owner is not None else contextlib.nullcontext():
                return verb(*args, **kwargs)
        return locked
    return wrap


@dataclass(frozen=True)
class VerbResult:
    """What a verb did: where it wrote, its main result object, and the warnings raised.

    Attributes
    ----------
    out : Path
        The folder (or file) written.
    result : object
        The library's own result (e.g. ``AnalysisResult``, ``Table1Result``, ``TrainSummary``).
    warnings : tuple of str
        Every warning raised while it ran, in order, one line each.
    extra : dict
        Verb-specific details the command line reports (e.g. the sample size of `logistic`).
    """

    out: Path
    result: Any
    warnings: tuple = ()
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Analysis of a predictions file


@_writes(1, "out", run_itself=False)
def analyze(predictions, out, *, dev_cohort: str = "training", strata=(), reference: str | None = None,
            n_bootstrap: int | None = None, seed: int | None = None, figures: bool = True, oof=None,
            thresholds: str | None = None, time: str | None = None, event: str | None = None,
            horizon: float | None = None, command: list | None = None) -> VerbResult:
    """`dlr analyze`: every statistic of contract section 5 from a predictions CSV into ``out``;
    ``oof``, the path of its out-of-fold development predictions (contract 4.1), adds the
    ``<dev> (out-of-fold)`` cohort and chooses the thresholds on it; ``thresholds``,
    ``"LOW:HIGH"`` (``--thresholds``), the threshold probabilities the decision-curve figures
    show (recorded in the settings; the tables keep 0.01-0.99); ``time`` and ``event``
    (``--time``, ``--event``: patient columns of the predictions file) add ``survival.csv``,
    ``km_curve.csv`` and the KM figures (contract 5.1), the cumulative incidence read at
    ``horizon`` (default 24, the unit of ``time``).

    The figure process starts from a fork server (never a fork of this process, whose
    threads may have run) before the statistics, so that its matplotlib import and warm-up
    run on a second core beside them; `analysis.figures` imports nothing else heavy and the
    jobs carry plain data, so that process never loads pandas. One BLAS thread: the analysis is
    memory-bound vector work and idle BLAS threads would spin against the figure process on a two-core machine.
    """

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from dlr.analysis.defaults import DEFAULT_BOOTSTRAP, DEFAULT_SEED
    from dlr.analysis.figures import FigureWorkers

    n_bootstrap = DEFAULT_BOOTSTRAP if n_bootstrap is None else n_bootstrap
    seed = DEFAULT_SEED if seed is None else seed
    if n_bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {n_bootstrap}")
    threshold_range = None
    if thresholds is not None:
        from dlr.analysis.decision_curve import threshold_range as parse_range

        try:
            threshold_range = parse_range(thresholds)
        except ValueError as exc:
            raise InputError(f"--thresholds {exc}; give LOW:HIGH, e.g. --thresholds 0.05:0.60") from None
    strata = [s for group in strata for s in str(group).split(",") if s]
    if horizon is not None and time is None and event is None:
        raise InputError(f"--horizon {horizon:g} needs --time COL and --event COL (the survival analysis)")
    with contextlib.ExitStack() as stack:
        workers = stack.enter_context(FigureWorkers()) if figures else None
        from dlr.analysis.output import analysis_provenance, write_analysis
        from dlr.analysis.pipeline import analyze as analyze_predictions
        from dlr.analysis.predictions import read_predictions

        logger.info(f"reading {predictions}")
        data = read_predictions(predictions, dev_cohort=dev_cohort, strata=strata, reference=reference, oof=oof,
                                time=time, event=event)
        logger.info(f"{data.frame['patient_id'].nunique()} patients, models {', '.join(data.models)}; "
                    f"cohorts {', '.join(data.cohorts)}")
        if oof is not None:
            logger.info(f"out-of-fold predictions {oof}: {data.oof['patient_id'].nunique()} development "
                        f"patients, models {', '.join(data.oof_models)}")
        result = analyze_predictions(data, strata=strata, reference=reference, n_bootstrap=n_bootstrap, seed=seed,
                                     threshold_range=threshold_range,
                                     **({} if horizon is None else {"horizon": float(horizon)}),
                                     cohort_done=workers and workers.submit_cohort)
        settings = {"dev_cohort": dev_cohort, "strata": strata, "reference": reference, "n_bootstrap": n_bootstrap,
                    "figures": figures}
        if threshold_range is not None:  # as LOW:HIGH, so that `dlr verify` passes it again
            settings["thresholds"] = f"{threshold_range[0]!r}:{threshold_range[1]!r}"
        if oof is not None:
            settings["oof"] = str(oof)
        if time is not None:  # only then, so that `dlr verify` passes them again (and nothing else changes)
            settings.update(time=time, event=event, horizon=result.settings["survival"]["horizon"])
        info = analysis_provenance(predictions, oof_path=oof, settings=settings, seed=seed, command=command)
        written = write_analysis(result, out, figures=figures, provenance_info=info,
                                 workers=workers)
    return VerbResult(written, result, tuple(result.warnings))


# --------------------------------------------------------------------------------------------
# Clinical statistics


def _clinical(clinical, study_yaml, *, variables=None, categorical=()):
    """(frame, variables, categorical, study config or None) of a clinical CSV, with study.yaml's
    recodes, cut points, candidates and types applied when it is given."""
    from dlr.core.tables import read_table

    frame = read_table(clinical, what="clinical")
    if study_yaml is None:
        return frame, (list(variables) if variables else None), list(categorical), None
    from dlr.modeling.config import load_study_config
    from dlr.modeling.levels import recode_clinical

    config = load_study_config(study_yaml)
    frame = recode_clinical(frame, config)
    try:
        frame, variables, categorical = config.clinical_variables(frame, variables=variables, categorical=categorical)
    except InputError as exc:
        raise InputError(f"{clinical}: {exc}") from None
    return frame, variables, categorical, config


def _clinical_provenance(clinical, study_yaml, settings: dict) -> dict:
    from dlr.core.output import provenance

    return provenance(inputs={"clinical": clinical, "study.yaml": study_yaml}, settings=settings)


def table1(clinical, out, *, outcome: str, cohort: str | None = None, categorical=(), study_yaml=None) -> VerbResult:
    """`dlr table1`: Table 1 of a clinical CSV (contract section 6) into ``out``; with a study.yaml,
    of its recoded values, and ``recodes.csv`` records each recode's patients per cohort
    (:func:`dlr.modeling.levels.recode_log`; a header alone when nothing is recoded)."""
    from dlr.analysis.table1 import table1 as make_table1
    from dlr.core.output import write_files

    described, recodes = None, {}
    if study_yaml is not None:  # the candidates, the demographics and the scanner (those in the table)
        from dlr.core.tables import read_table
        from dlr.modeling.config import load_study_config
        from dlr.modeling.levels import recode_log

        raw, config = read_table(clinical, what="clinical"), load_study_config(study_yaml)
        described = [name for name in config.described_variables() if name in raw.columns]
        recodes["recodes.csv"] = recode_log(raw, config)
    frame, variables, categorical, _ = _clinical(clinical, study_yaml, categorical=categorical, variables=described)
    logger.info(f"Table 1 of {clinical}: {len(frame)} patients, outcome {outcome!r}")
    result = make_table1(frame, outcome=outcome, cohort=cohort, categorical=categorical, variables=variables)
    info = _clinical_provenance(clinical, study_yaml, {"outcome": outcome, "cohort": cohort,
                                                       "categorical": categorical, "variables": variables})
    written = write_files(out, {"table1.csv": result.table, "table1_tests.csv": result.tests,
                                "table1_summary.csv": result.summary, **recodes}, provenance_info=info)
    return VerbResult(written, result)


def audit(reported, out) -> VerbResult:
    """`dlr audit`: the statistics a paper reports checked against each other (contract section 9)
    into ``out``: ``audit.csv`` (one row per check) and ``letter.md`` (the inconsistencies)."""
    from dlr.analysis.paper_audit import audit_reported, letter, read_reported, summary_counts
    from dlr.core.output import provenance, write_files

    rows = read_reported(reported)
    logger.info(f"auditing {len(rows)} reported numbers of {reported}")
    checks = audit_reported(rows)
    info = provenance(inputs={"reported": reported}, settings={"command": "audit"})
    written = write_files(out, {"audit.csv": checks, "letter.md": letter(checks, source=rows.attrs.get("paper", ""))},
                          provenance_info=info)
    return VerbResult(written, checks, extra={"counts": summary_counts(checks), "numbers": len(rows)})


def logistic(clinical, out, *, outcome: str, cohort: str | None = None, dev_cohort: str = "training",
             variables=None, categorical=(), study_yaml=None, alpha: float = 0.05,
             anticipated_r2: float = 0.15) -> VerbResult:
    """`dlr logistic`: the univariate and multivariate tables selecting the CR factors, and
    Riley et al.'s minimum sample size (``extra["sample_size"]``), into ``out``."""
    from dlr.core.output import write_files
    from dlr.modeling.cr_factors import select_cr_factors
    from dlr.modeling.sample_size import screen_sample_size

    frame, variables, categorical, _ = _clinical(clinical, study_yaml, variables=variables, categorical=categorical)
    logger.info(f"logistic regression of {outcome!r} on the {dev_cohort!r} cohort of {clinical}")
    with collected_warnings() as caught:
        sel = select_cr_factors(frame, outcome=outcome, variables=variables, categorical=categorical, cohort=cohort,
                                dev_cohort=dev_cohort, alpha=alpha)
        size = screen_sample_size(sel, r2_nagelkerke=anticipated_r2)
    info = _clinical_provenance(clinical, study_yaml, {
        "outcome": outcome, "cohort": cohort, "dev_cohort": dev_cohort, "variables": variables,
        "categorical": categorical, "alpha": alpha, "anticipated_r2": anticipated_r2})
    written = write_files(out, {"univariate.csv": sel.univariate.table, "multivariate.csv": sel.multivariate.table,
                                "selection.csv": sel.variables,
                                "selected.txt": "".join(f"{v}\n" for v in sel.selected),
                                "sample_size.csv": size.to_frame()}, provenance_info=info)
    return VerbResult(written, sel, tuple(caught), {"sample_size": size})


def staging(clinical, out, *, study_yaml=None, bclc_version: str = "2022", outcome: str | None = None,
            cohort: str = "cohort", dev_cohort: str = "training") -> VerbResult:
    """`dlr staging`: every staging system and index of each patient into ``out``."""
    from dlr.core.output import write_files
    from dlr.core.tables import read_table
    from dlr.modeling.staging import compute_staging, map_staging_columns

    frame = read_table(clinical, what="clinical")
    config = None
    if study_yaml is not None:
        from dlr.modeling.config import load_study_config
        from dlr.modeling.levels import recode_clinical

        config = load_study_config(study_yaml)
        frame = recode_clinical(frame, config)
    frame = map_staging_columns(frame, staging_columns=config.staging_columns if config else {},
                                id_column=config.id_column if config else "patient_id", source=str(study_yaml),
                                table=str(clinical))
    logger.info(f"staging {len(frame)} patients of {clinical} (BCLC {bclc_version})")
    with collected_warnings() as caught:
        result = compute_staging(frame, bclc_version=bclc_version, outcome=outcome, cohort_column=cohort,
                                 dev_cohort=dev_cohort, erasl_coefficients=config.erasl if config else None)
    info = _clinical_provenance(clinical, study_yaml, {"bclc_version": bclc_version, "outcome": outcome,
                                                       "cohort": cohort, "dev_cohort": dev_cohort})
    written = write_files(out, {"staging.csv": result.table, "staging_missing.csv": result.missing},
                          provenance_info=info)
    return VerbResult(written, result, tuple(caught))


# --------------------------------------------------------------------------------------------
# The study folder


def validate(study, *, images: bool = True, report=None) -> VerbResult:
    """`dlr validate`: every problem of a study folder (``result``: a list of Problem, empty when
    there is none); with ``report``, the problems also go to that CSV."""
    from dlr.modeling.study import problems_frame, validate_study

    logger.info(f"validating {study}{'' if images else ' (clinical data only)'}")
    problems = validate_study(study, check_images=images)
    if problems and report is not None:
        from dlr.core.output import write_files

        report = Path(report)
        write_files(report.parent, {report.name: problems_frame(problems)})
    return VerbResult(Path(study), problems)


def import_dicom(source, output, *, series_uid: str | None = None, phases=None,
                 overwrite: bool = False) -> VerbResult:
    """`dlr import-dicom`: one series to a ``.nii.gz`` file, or a folder of series into a study folder."""
    from dlr.modeling.dicom import dicom_to_nifti, import_dicom_study

    if str(output).endswith((".nii", ".nii.gz")):
        return VerbResult(Path(output), dicom_to_nifti(source, output, series_uid=series_uid))
    return VerbResult(Path(output), import_dicom_study(source, output, phases=phases, overwrite=overwrite))


def synth(out, *, n: int = 165, seed: int | None = None, profile: str = "quick", images: bool = True,
          overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> VerbResult:
    """`dlr synth`: the embedded synthetic HCC study; ``progress(done, total)`` per patient's images."""
    from dlr.modeling.synthetic import synthesize_study

    if n < 10:
        raise InputError(f"--n must be at least 10, got {n}")
    kwargs = {} if seed is None else {"seed": seed}
    try:
        summary = synthesize_study(out, n=n, profile=profile, images=images, overwrite=overwrite, progress=progress,
                                   **kwargs)
    except InputError:
        raise
    except ValueError as exc:  # a refused output folder or option
        raise InputError(str(exc)) from None
    return VerbResult(Path(out), summary)


# --------------------------------------------------------------------------------------------
# Features and models


@_writes(1, "out")
def extract(study, out, *, jobs: int = 1, scheduler: str | None = None, params=None, profile: str | None = None,
            case_done: Callable[[int, int, dict], None] | None = None) -> VerbResult:
    """`dlr extract`: radiomics features of every patient, reader and phase into ``out/features``,
    with the preprocessing and parameter file `dlr run` would use (:func:`dlr.settings.resolve_settings`:
    ``profile`` None is study.yaml's).

    ``case_done(done, total, record)`` is called once before the first case (with the number
    found in the cache) and after each case.
    """
    from dlr.modeling.study import load_study

    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    logger.info(f"checking {study}")
    loaded = load_study(study)
    settings = resolve_settings(study, loaded.config, profile=profile, arms=("clinical", "radiomics"), params=params)
    return _extract(loaded, out, settings, jobs=jobs, scheduler=scheduler, case_done=case_done)


def _extract(loaded, out, settings, *, jobs, scheduler, case_done) -> VerbResult:
    """:func:`extract` of a study already loaded (and validated) by ``modeling.study.load_study``."""
    from dlr.modeling.radiomics.extraction import extract_study

    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} process(es)"
    preprocessing = settings.preprocess()
    spacing = " x ".join(f"{s:g}" for s in preprocessing.spacing)
    logger.info(f"extracting radiomics features of {len(loaded.patient_ids)} patients with {where} (voxels "
                f"resampled to {spacing} mm, {settings.profile} profile)")
    summary = extract_study(loaded, out, jobs=jobs, scheduler=scheduler, params_path=settings.params_file,
                            preprocessing=preprocessing, progress=case_done)
    lines = tuple(f"{r.patient_id} reader {r.reader} {r.phase}: {r.reason}" for r in summary.failures.itertuples())
    return VerbResult(summary.out, summary, lines)


@_writes(1, "out")
def train(study, out, *, arms=None, jobs: int = 1, seed: int | None = None,
          lasso_rule: str = "min", oof: bool = True, scheduler: str | None = None, params=None,
          profile: str | None = None, device: str = "auto", bar: bool = False,
          case_done: Callable[[int, int, dict], None] | None = None, internal_validation_b: int = 200) -> VerbResult:
    """`dlr train`: every model on the development cohort into ``out/predictions.csv`` and
    ``out/models/`` (``arms`` None: clinical and radiomics, or clinical alone for a study with no
    phases; ``bar``: a progress bar per network fit on stderr); extracts the radiomics features
    first (as :func:`extract`, on the study loaded here) when ``out/features/radiomics.csv`` is
    missing. ``extra["extraction"]`` holds that extraction's result. The profile, seed and the deep arm's settings are resolved as
    `dlr run` resolves them (:func:`dlr.settings.resolve_settings`)."""
    from dlr.modeling.config import load_study_config
    from dlr.modeling.radiomics.extraction import FEATURES_DIR
    from dlr.modeling.study import load_study
    from dlr.modeling.train import train_study

    logger.info(f"checking {study}")
    if arms is None:  # what the study has: a study with no phases is clinical only
        try:
            phases = load_study_config(Path(study) / "study.yaml").phases
        except InputError:  # load_study below reports every problem of the study, this one included
            phases = True
        arms = ["clinical", "radiomics"] if phases else ["clinical"]
    arms = list(arms)
    loaded = load_study(study, check_images="radiomics" in arms or "deep" in arms)
    settings = resolve_settings(study, loaded.config, profile=profile, arms=arms, seed=seed, params=params,
                                device=device)
    extra, lines = {}, []
    if "radiomics" in arms and not (Path(out) / FEATURES_DIR / "radiomics.csv").is_file():
        logger.info("no RUN/features/radiomics.csv yet: extracting first (as `dlr extract`)")
        if jobs < 1:
            raise InputError(f"--jobs must be 1 or more, got {jobs}")
        # the study loaded above, images checked: not read and validated a second time
        extra["extraction"] = _extract(loaded, out, settings, jobs=jobs, scheduler=scheduler,
                                       case_done=case_done)
        lines.extend(extra["extraction"].warnings)
    with collected_warnings(ignore=(FutureWarning, DeprecationWarning)) as caught:
        summary = train_study(loaded, out, arms=arms, jobs=jobs, seed=settings.seed, lasso_rule=lasso_rule, oof=oof,
                              scheduler=scheduler, deep=settings.deep, device=device,
                              bar=bar, internal_validation_b=internal_validation_b)
        extra["auc_ci"] = _auc_intervals(summary.predictions)
    return VerbResult(summary.out, summary, (*lines, *caught), extra)


def _auc_intervals(predictions) -> dict:
    """(model, cohort) -> (AUC, DeLong 95% CI low, high) of predictions.csv, for the summary
    that `dlr train` prints (`dlr analyze` computes them all again, with the rest)."""
    import warnings

    from dlr.analysis.discrimination import roc_auc_delong

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for (model, cohort), g in predictions.groupby(["model", "cohort"], sort=False):
            r = roc_auc_delong(g["y_true"].to_numpy(dtype=int), g["y_score"].to_numpy(dtype=float))
            out[(model, cohort)] = (r.estimate, r.ci_low, r.ci_high)
    return out


# --------------------------------------------------------------------------------------------
# The report (the whole run, `dlr run`, is dlr.runner's; the reviewer package, dlr.package's)


@_writes(0, "run")
def report(run, *, formats=("html", "docx"), renderer: str = "auto") -> VerbResult:
    """`dlr report`: ``RUN/report/`` (HTML, DOCX, the TRIPOD+AI checklist) from the run's saved
    results only. ``result`` is the ``RenderResult`` (which renderer ran, the files)."""
    from dlr.report.build import build_report

    from .stages import check_run_folder

    check_run_folder(Path(run), creating=False)
    with collected_warnings() as caught:
        result = build_report(run, formats=formats, renderer=renderer)
    return VerbResult(Path(run) / "report", result, tuple(caught))


def bundle(run, out) -> VerbResult:
    """`dlr bundle`: ``RUN/model/`` (the model bundle, contract section 8), checked against its
    manifest, as one zip at ``out``. ``result`` is the zip's path."""
    from dlr.core.bundle import zip_bundle

    with collected_warnings() as caught:
        path = zip_bundle(Path(run) / "model", out)
    return VerbResult(path, path, tuple(caught))
