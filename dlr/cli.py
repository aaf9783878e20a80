"""The `dlr` command line. Each verb parses its arguments and calls one library function.

Exit codes (contract section 1): 0 success, 2 bad input or usage, 1 internal error.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from analysis.defaults import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from analysis.errors import InputError

EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(InputError):
    """Bad input or usage found by the command line itself."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and a one-line hint, as every `dlr` verb does."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _progress(message: str, *, start=time.monotonic()) -> None:
    print(f"[dlr {time.monotonic() - start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _cmd_analyze(args) -> int:
    # One BLAS thread: the analysis is memory-bound vector work, and idle BLAS threads spin
    # against the figure processes for the two cores of a typical laptop or CI runner.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The figure process is forked once numpy is loaded (both need it) and before the rest, so
    # that its matplotlib import and warm-up run on the second core beside our imports and the
    # statistics. analysis.figures imports nothing else heavy and the figure jobs carry plain
    # data, so that process never loads pandas.
    import numpy  # noqa: F401

    from analysis.figures import FigureWorkers

    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    with contextlib.ExitStack() as stack:
        workers = None if args.no_figures else stack.enter_context(FigureWorkers())
        from analysis.output import provenance, write_analysis
        from analysis.pipeline import analyze
        from analysis.predictions import read_predictions

        strata = [s for group in args.strata for s in group.split(",") if s]
        _progress(f"reading {args.predictions}")
        predictions = read_predictions(args.predictions, dev_cohort=args.dev_cohort, strata=strata,
                                       reference=args.reference)
        _progress(f"{predictions.frame['patient_id'].nunique()} patients, models {', '.join(predictions.models)}; "
                  f"cohorts {', '.join(predictions.cohorts)}")
        result = analyze(predictions, strata=strata, reference=args.reference, n_bootstrap=args.bootstrap,
                         seed=args.seed, progress=_progress, cohort_done=workers and workers.submit_cohort)
        info = provenance(args.predictions)
        info["command"] = ["dlr", *sys.argv[1:]]
        out = write_analysis(result, args.out, figures=not args.no_figures, provenance_info=info,
                             progress=_progress, workers=workers)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    _progress(f"wrote {out}/ (performance.csv, comparisons.csv, cohort_tests.csv, subgroups.csv, "
              f"decision_curve.csv, calibration.csv, results.json{'' if args.no_figures else ', figures/'})")
    return EXIT_OK


def _columns(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _study_variables(args, frame):
    """(frame, variables, categorical) with study.yaml's cut points applied, when --study is given."""
    variables, categorical = _columns(getattr(args, "variables", None)), _columns(args.categorical) or []
    if args.study is None:
        return frame, variables, categorical
    from analysis.tables import dichotomise
    from modeling.config import load_study_config

    config = load_study_config(args.study)
    frame = dichotomise(frame, {v.name: v.cut_point for v in config.variables if v.cut_point is not None})
    variables = variables or [v.name for v in config.variables if v.candidate]
    categorical += [v.name for v in config.variables if v.type != "continuous"]
    return frame, variables, categorical


def _cmd_table1(args) -> int:
    from analysis.output import read_table, write_files
    from analysis.tables import table1

    frame = read_table(args.clinical, what="clinical")
    frame, variables, categorical = _study_variables(args, frame)
    _progress(f"Table 1 of {args.clinical}: {len(frame)} patients, outcome {args.outcome!r}")
    result = table1(frame, outcome=args.outcome, cohort=args.cohort, categorical=categorical, variables=variables)
    out = write_files(args.out, {"table1.csv": result.table, "table1_tests.csv": result.tests,
                                 "table1_summary.csv": result.summary})
    _progress(f"wrote {out}/table1.csv, table1_tests.csv, table1_summary.csv")
    return EXIT_OK


def _sample_size(selection, r2_nagelkerke: float):
    """Riley et al.'s minimum sample size for the candidate parameters of the univariate screen."""
    from analysis.sample_size import minimum_sample_size

    fits = selection.univariate.fits
    n, events = int(fits["n"].max()), int(fits["n_events"].max())
    if n == 0 or events in (0, n):
        raise UsageError("the development cohort has a single outcome class; no model can be fitted")
    parameters = max(1, len(selection.univariate.table))
    return minimum_sample_size(parameters=parameters, prevalence=events / n, r2_nagelkerke=r2_nagelkerke,
                               n_available=n, events_available=events)


def _cmd_logistic(args) -> int:
    from analysis.output import read_table, write_files
    from analysis.tables import select_cr_factors

    frame = read_table(args.clinical, what="clinical")
    frame, variables, categorical = _study_variables(args, frame)
    _progress(f"logistic regression of {args.outcome!r} on the {args.dev_cohort!r} cohort of {args.clinical}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = select_cr_factors(frame, outcome=args.outcome, variables=variables, categorical=categorical,
                                cohort=args.cohort, dev_cohort=args.dev_cohort, alpha=args.alpha)
        size = _sample_size(sel, args.anticipated_r2)
    out = write_files(args.out, {"univariate.csv": sel.univariate.table, "multivariate.csv": sel.multivariate.table,
                                 "selection.csv": sel.variables, "selected.txt": "".join(f"{v}\n" for v in sel.selected),
                                 "sample_size.csv": size.to_frame()})
    _progress(f"sample size: {size.n_available} development patients ({size.events_available} events) for "
              f"{size.parameters} candidate parameters; Riley et al. ask for at least {size.n_required} "
              f"(anticipated Nagelkerke R^2 {args.anticipated_r2:g})")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    _progress(f"selected (multivariate p < {args.alpha:g}): {', '.join(sel.selected) or 'none'}; wrote {out}/")
    return EXIT_OK


def _cmd_staging(args) -> int:
    from analysis.output import read_table, write_files
    from analysis.staging import compute_staging

    frame = read_table(args.clinical, what="clinical")
    erasl = None
    if args.study is not None:
        from modeling.config import load_study_config

        config = load_study_config(args.study)
        absent = sorted(c for c in config.staging_columns.values() if c not in frame.columns)
        if absent:
            raise UsageError(f"{args.study}: staging_columns names column(s) {', '.join(absent)}, which "
                             f"{args.clinical} does not have")
        # the user's columns under the contract's names (study.yaml staging_columns)
        frame = frame.drop(columns=[k for k in config.staging_columns if k in frame.columns]).rename(
            columns={v: k for k, v in config.staging_columns.items()})
        if config.id_column != "patient_id" and config.id_column in frame.columns:
            frame = frame.rename(columns={config.id_column: "patient_id"})
        erasl = config.erasl
    if "patient_id" not in frame.columns:
        raise UsageError(f"{args.clinical}: no 'patient_id' column; the staging inputs are named as in contract "
                         f"section 2 (ecog_ps, child_pugh_class, tbil, alb, tumor_number, tumor_diameter, ...)")
    frame["patient_id"] = frame["patient_id"].astype(str)
    _progress(f"staging {len(frame)} patients of {args.clinical} (BCLC {args.bclc_version})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compute_staging(frame, bclc_version=args.bclc_version, outcome=args.outcome,
                                 cohort_column=args.cohort, dev_cohort=args.dev_cohort, erasl_coefficients=erasl)
    out = write_files(args.out, {"staging.csv": result.table, "staging_missing.csv": result.missing})
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    n_missing = result.missing["patient_id"].nunique() if len(result.missing) else 0
    _progress(f"wrote {out}/staging.csv and staging_missing.csv ({n_missing} patient(s) with a system left empty; "
              f"ERASL: {result.erasl_label})")
    return EXIT_OK


def _cmd_validate(args) -> int:
    from modeling.study import problems_frame, validate_study

    _progress(f"validating {args.study}{'' if args.images else ' (clinical data only)'}")
    problems = validate_study(args.study, check_images=args.images)
    if not problems:
        _progress(f"{args.study}: no problems found")
        return EXIT_OK
    frame = problems_frame(problems)
    print(f"dlr validate: {len(problems)} problem(s) in {args.study}:", file=sys.stderr)
    for p in problems:
        where = ", ".join(x for x in (f"patient {p.patient_id}" if p.patient_id else "", p.file) if x)
        print(f"  [{p.check}] {where}: {p.message}. Fix: {p.fix}", file=sys.stderr)
    if args.report:
        frame.to_csv(args.report, index=False)
    return EXIT_BAD_INPUT


def _cmd_import_dicom(args) -> int:
    from modeling.dicom import dicom_to_nifti, import_dicom_study

    if args.output.endswith((".nii", ".nii.gz")):
        info = dicom_to_nifti(args.source, args.output, series_uid=args.series_uid)
        _progress(f"wrote {info.path}: {info.size} voxels at {tuple(round(s, 4) for s in info.spacing)} mm "
                  f"from {info.n_files} DICOM files")
        return EXIT_OK
    converted = import_dicom_study(args.source, args.output, phases=_columns(args.phases), overwrite=args.overwrite)
    n_images = sum(len(v) for v in converted.values())
    _progress(f"wrote {n_images} image(s) of {len(converted)} patient(s) into {args.output}/images/")
    return EXIT_OK


def _cmd_synth(args) -> int:
    from modeling.synthetic import synthesize_study

    if args.n < 10:
        raise UsageError(f"--n must be at least 10, got {args.n}")
    _progress(f"synthesising {args.n} patients ({args.profile} profile, seed {args.seed}) into {args.out}")
    step = max(1, args.n // 10)

    def progress(done, total):
        if done % step == 0 or done == total:
            _progress(f"images: {done}/{total} patients")

    try:
        summary = synthesize_study(args.out, n=args.n, seed=args.seed, profile=args.profile, images=args.images,
                                   overwrite=args.overwrite, progress=progress)
    except ValueError as exc:  # a refused output folder or option
        raise UsageError(str(exc)) from None
    _progress(f"wrote {args.out}/ (study.yaml, clinical.csv, truth.csv{', images/, masks/, masks_reader2/' if args.images else ''}): "
              f"{summary.n} patients")
    return EXIT_OK


def _bar(total: int, desc: str):
    """A tqdm progress bar on stderr (a plain line per tenth when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0)


def _cmd_extract(args) -> int:
    from modeling.radiomics.extraction import extract_study
    from modeling.study import load_study

    if args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, got {args.jobs}")
    _progress(f"checking {args.study}")
    study = load_study(args.study)
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else f"{args.jobs} process(es)"
    _progress(f"extracting radiomics features of {len(study.patient_ids)} patients with {where}")
    with contextlib.ExitStack() as stack:
        bar = None

        def progress(done, total, record):
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(_bar(total, "radiomics"))
                bar.update(done)
                if done:
                    bar.set_postfix_str(f"{done} from the cache")
                return
            bar.update(done - bar.n)
            if record.get("status") == "failed":
                bar.write(f"failed: {record['patient_id']} reader {record['reader']} {record['phase']}: "
                          f"{record['reason']}")

        summary = extract_study(study, args.out, jobs=args.jobs, scheduler=args.scheduler, params_path=args.params,
                                progress=progress)
    _progress(f"{summary.n_cases} cases ({summary.n_features_per_phase} features per phase): {summary.n_computed} "
              f"computed, {summary.n_cached} from the cache, {summary.n_failed} failed; {summary.seconds:.1f} s")
    for row in summary.failures.itertuples():
        print(f"warning: {row.patient_id} reader {row.reader} {row.phase}: {row.reason}", file=sys.stderr)
    _progress(f"wrote {summary.out}/radiomics.csv and extraction_log.csv")
    return EXIT_OK


def _cmd_train(args) -> int:
    from modeling.radiomics.extraction import FEATURES_DIR
    from modeling.study import load_study
    from modeling.train import train_study

    arms = _columns(args.arms) or []
    _progress(f"checking {args.study}")
    study = load_study(args.study, check_images="radiomics" in arms)
    if "radiomics" in arms and not (Path(args.out) / FEATURES_DIR / "radiomics.csv").is_file():
        _progress("no RUN/features/radiomics.csv yet: extracting first (as `dlr extract`)")
        _cmd_extract(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_study(study, args.out, arms=arms, jobs=args.jobs, seed=args.seed, lasso_rule=args.lasso_rule,
                              oof=not args.no_oof, progress=_progress)
    for w in caught:
        if not issubclass(w.category, (FutureWarning, DeprecationWarning)):
            print(f"warning: {w.message}", file=sys.stderr)
    if summary.selection_counts is not None:
        steps = " -> ".join(f"{r.n_features} ({r.step})" for r in summary.selection_counts.itertuples())
        _progress(f"radiomics feature selection: {steps}")
    table = summary.performance.pivot(index="model", columns="cohort", values="auc")
    table = table.loc[list(dict.fromkeys(summary.performance["model"]))]
    cv = summary.models.set_index("model")["cv_auc"]
    lines = [f"{'model':<20}{'dev CV AUC':>12}" + "".join(f"{c + ' AUC':>18}" for c in table.columns)]
    for model, row in table.iterrows():
        cv_text = f"{cv[model]:.3f}" if model in cv.index and cv[model] == cv[model] else ""
        lines.append(f"{model:<20}{cv_text:>12}" + "".join(f"{v:>18.3f}" for v in row))
    if summary.true_risk is not None:
        best = summary.true_risk.set_index("cohort")["auc"]
        lines.append(f"{'true risk (best)':<20}{'':>12}" + "".join(f"{best.get(c, float('nan')):>18.3f}"
                                                               for c in table.columns))
    print("\n".join(lines))
    chosen = summary.models.loc[summary.models["best_classifier"], "model"]
    if len(chosen):
        used = " (used for RCR)" if "RCR" in set(summary.models["model"]) else ""
        _progress(f"best classifier by development-cohort CV AUC: {chosen.iloc[0]}{used}")
    _progress(f"wrote {summary.out}/predictions.csv and {summary.out}/models/")
    return EXIT_OK


def _clinical_verb(verbs, name: str, help_text: str, description: str, *, cohort_help: str):
    """A verb reading a clinical CSV, with the options table1 and logistic share."""
    p = verbs.add_parser(name, help=help_text, description=description)
    p.add_argument("clinical", help="clinical CSV, one row per patient")
    p.add_argument("--outcome", required=True, help="binary outcome column (0/1)")
    p.add_argument("--cohort", default=None, help=cohort_help)
    p.add_argument("--categorical", default=None, metavar="COL,...", help="numeric columns to treat as categorical")
    p.add_argument("--study", default=None, metavar="STUDY_YAML",
                   help="study.yaml: its candidate variables (in order), their types and cut points (raw values "
                        "are dichotomised at the cut points, as the paper's Table 1)")
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlr", description="Deep-learning radiomics studies and their statistical validation.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for every error")
    parser.add_argument("--version", action="version", version=f"dlr {_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)

    p = verbs.add_parser(
        "analyze", help="every validation statistic from a predictions file",
        description="Discrimination (AUC, DeLong and bootstrap CIs), paired and between-cohort DeLong tests, "
                    "development-cohort thresholds, calibration, decision curves, subgroup AUCs, NRI/IDI and "
                    "figures, from a predictions CSV (contract section 4).")
    p.add_argument("predictions", help="predictions CSV: patient_id, cohort, model, y_true, y_score, [attributes]")
    p.add_argument("--out", required=True, help="output folder (replaced only when the analysis succeeds)")
    p.add_argument("--dev-cohort", default="training", help="development cohort (default: training)")
    p.add_argument("--strata", nargs="+", action="extend", default=[], metavar="COL",
                   help="patient attribute column(s) for subgroup AUCs, e.g. scanner")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="model for NRI/IDI against the others (default: highest development AUC)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B",
                   help=f"stratified bootstrap resamples per cohort (default {DEFAULT_BOOTSTRAP}; 0 to skip)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"random seed of the bootstrap (default {DEFAULT_SEED})")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/SVG figures")
    p.set_defaults(func=_cmd_analyze)

    p = _clinical_verb(
        verbs, "table1", "Table 1: characteristics by outcome and cohort, with tests",
        "Characteristics by outcome group within each cohort (and between cohorts) with the test rule of "
        "methods.md E: chi-squared (Yates for 2x2) or Fisher's exact test for categorical variables, t test or "
        "Mann-Whitney by Shapiro-Wilk for continuous ones.", cohort_help="cohort column (e.g. cohort)")
    p.set_defaults(func=_cmd_table1)

    p = _clinical_verb(
        verbs, "logistic", "univariate then multivariate logistic regression (the CR model's factors)",
        "Univariate logistic regression of the outcome on each variable in the development cohort; variables "
        "with p < alpha enter the multivariate model; those with multivariate p < alpha are the "
        "clinical-radiological factors (selected.txt). Wald CIs and p values.",
        cohort_help="cohort column; only the development cohort is used")
    p.add_argument("--dev-cohort", default="training", help="development cohort (default: training)")
    p.add_argument("--variables", default=None, metavar="COL,...",
                   help="candidate variables (default: study.yaml's candidates, else every column but the id, "
                        "cohort and outcome)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of both steps (default 0.05)")
    p.add_argument("--anticipated-r2", type=float, default=0.15, metavar="R2",
                   help="anticipated Nagelkerke R^2 of the model, for Riley et al.'s minimum sample size "
                        "(default 0.15, their suggestion when nothing better is known)")
    p.set_defaults(func=_cmd_logistic)

    p = verbs.add_parser(
        "staging", help="staging systems and indexes from raw clinical variables",
        description="BCLC, CNLC, CLIP, Okuda, Child-Pugh, ALBI, ERASL, NLR, PLR and LMR for every patient from the "
                    "raw inputs named in contract section 2 (definitions: spec/staging.md). A system whose inputs "
                    "are missing is left empty and the missing inputs are listed in staging_missing.csv.")
    p.add_argument("clinical", help="clinical CSV with patient_id and the raw staging inputs")
    p.add_argument("--study", default=None, metavar="STUDY_YAML",
                   help="study.yaml: its staging_columns map your columns to the contract's input names, and its "
                        "erasl block gives published ERASL coefficients (with their source)")
    p.add_argument("--bclc-version", choices=("2022", "2010"), default="2022", help="BCLC version (default 2022)")
    p.add_argument("--outcome", default=None,
                   help="outcome column: refit ERASL's five predictors on the development cohort, labelled "
                        "'ERASL (refit)' (no published coefficients are built in)")
    p.add_argument("--cohort", default="cohort", help="cohort column for the refit (default: cohort)")
    p.add_argument("--dev-cohort", default="training", help="development cohort for the refit (default: training)")
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")
    p.set_defaults(func=_cmd_staging)

    p = verbs.add_parser(
        "validate", help="check a study folder without running anything",
        description="Checks study.yaml, clinical.csv and every image and mask of a study folder (contract "
                    "section 2) and lists every problem found, each with the patient, the file and the fix. "
                    "Exit 0 when there is none, 2 otherwise.")
    p.add_argument("study", help="study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--no-images", dest="images", action="store_false", help="check the clinical data only")
    p.add_argument("--report", default=None, metavar="CSV", help="also write the problems to this CSV")
    p.set_defaults(func=_cmd_validate)

    p = verbs.add_parser(
        "synth", help="write the embedded synthetic HCC study",
        description="Writes the synthetic hepatocellular carcinoma study (contract section 2): clinical.csv with "
                    "the paper's Table 1 variables (raw values, cut points in study.yaml), second-reader features, "
                    "staging inputs and follow-up; three-phase images (AP, PVP, DP) with reader-1 masks and "
                    "reader-2 masks for 30 patients; truth.csv with each patient's true risk. Same seed, same bytes.")
    p.add_argument("--out", required=True, help="study folder to create (must not exist or be empty)")
    p.add_argument("--n", type=int, default=165, help="patients (default 165, as the paper)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="quick: small volumes, seconds in all; paper: about 1 mm voxels, minutes")
    p.add_argument("--no-images", dest="images", action="store_false", help="clinical data only")
    p.add_argument("--overwrite", action="store_true", help="replace an existing study folder")
    p.set_defaults(func=_cmd_synth)

    p = verbs.add_parser(
        "extract", help="radiomics features of every patient, reader and phase (cached, parallel)",
        description="Resamples each phase to 1 x 1 x 1 mm, normalises its intensities and extracts PyRadiomics "
                    "features (default parameters: Original + Wavelet + LoG, 1037 per phase) for every patient, "
                    "reader and phase, into RUN/features/radiomics.csv. Cached per image, mask and parameters: a "
                    "rerun recomputes nothing and an interrupted run resumes. A case that fails is listed with "
                    "its reason and the run goes on.")
    p.add_argument("study", help="study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--out", required=True, help="run folder; features go to RUN/features/")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler (e.g. tcp://10.0.0.1:8786) to run the cases on a cluster whose "
                        "workers see the study at the same path")
    p.add_argument("--params", default=None, metavar="YAML",
                   help="PyRadiomics parameter file (default: study.yaml's radiomics_params, else dlr's own)")
    p.set_defaults(func=_cmd_extract)

    p = verbs.add_parser(
        "train", help="fit the CR, radiomics and RCR models; write RUN/predictions.csv",
        description="Fits every model on the development cohort only (split file, CR factor selection, median fill, "
                    "ICC > 0.90, t test / Mann-Whitney, LASSO with 5-fold CV, five tuned classifiers, RCR in the "
                    "classifier with the best CV AUC, Youden thresholds) and predicts every cohort into "
                    "RUN/predictions.csv with the staging comparators; out-of-fold predictions and every fitted "
                    "parameter go to RUN/models/.")
    p.add_argument("study", help="study folder")
    p.add_argument("--out", required=True, help="run folder (features from `dlr extract`, extracted when missing)")
    p.add_argument("--arms", default="clinical,radiomics", metavar="ARM,...",
                   help="clinical, radiomics (default both; RCR needs both)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: the number of CPUs)")
    p.add_argument("--seed", type=int, default=None, help="seed of the split and the models (default: study.yaml's)")
    p.add_argument("--lasso-rule", choices=("min", "1se"), default="min",
                   help="LASSO penalty: minimum CV deviance (default) or the 1-SE rule")
    p.add_argument("--no-oof", action="store_true", help="skip the out-of-fold refits")
    p.add_argument("--scheduler", default=None, help=argparse.SUPPRESS)
    p.add_argument("--params", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_train)

    p = verbs.add_parser(
        "import-dicom", help="convert DICOM series to the study layout (NIfTI)",
        description="Converts DICOM series to NIfTI with their geometry (slices ordered by position along the "
                    "slice normal, spacing from the positions, direction from the orientation) and rescale "
                    "slope/intercept applied; no DICOM header field (names, dates, UIDs) reaches the output. "
                    "SOURCE is one series folder with OUTPUT a .nii.gz file, or a folder SOURCE/<patient_id>/"
                    "<PHASE>/ with OUTPUT a study folder (images/<patient_id>/<PHASE>.nii.gz).")
    p.add_argument("source", help="DICOM series folder, or folder of <patient_id>/<PHASE>/ series")
    p.add_argument("output", help="output .nii.gz file, or study folder")
    p.add_argument("--series-uid", default=None, help="the series to convert when a folder holds several")
    p.add_argument("--phases", default=None, metavar="AP,PVP,...", help="phases to import (default: all found)")
    p.add_argument("--overwrite", action="store_true", help="replace images already in the study folder")
    p.set_defaults(func=_cmd_import_dicom)

    for verb in verbs.choices.values():  # `dlr VERB ... --debug` as well as `dlr --debug VERB ...`
        verb.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks")
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dlr")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return args.func(args)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"dlr {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # unreadable input or unwritable output folder
        if args.debug:
            traceback.print_exc()
        print(f"dlr {args.verb}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"dlr {args.verb}: interrupted; no output was written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, reported as one
        if args.debug:
            traceback.print_exc()
        print(f"dlr {args.verb}: internal error (a bug, please report it): {type(exc).__name__}: {exc}\n"
              f"rerun with --debug for the traceback", file=sys.stderr)
        return EXIT_BUG


def run() -> None:
    """Console entry point: `main`, then exit without the interpreter's teardown.

    Every output is complete and closed when `main` returns; skipping the finalisation of
    numpy, pandas and scipy saves about 0.2 s per command, a tenth of a typical analysis.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
