"""The `dlr` command line: each handler parses its arguments, calls one function of
`dlr.verbs` (one stage), `dlr.runner` (the whole run) or `dlr.package` (the reviewer package)
and reports what it returns (progress and warnings on stderr).

Exit codes (contract section 1): 0 success, 2 bad input or usage, 1 internal error.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import warnings

from dlr.analysis.defaults import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from dlr.core.errors import InputError
from dlr.core.progress import on_stderr
from dlr import package, predict, runner, verbs

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT = 0, 1, 2
EXIT_DIFFERENT = 1  # dlr verify: some recomputed number differs from the package's


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and a one-line hint, as every `dlr` verb does."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _progress(message: str) -> None:
    """One line of the command's own progress, logged as every library step is (on stderr with
    the elapsed time: :func:`dlr.core.progress.on_stderr`)."""
    logger.info(message)


def _written_folder(args) -> str | None:
    """The folder the command writes into (its --out, or the run it writes a report into)."""
    for name in ("out", "run", "output"):
        value = getattr(args, name, None)
        if value:
            return str(value)
    return None


def os_error_message(exc: OSError, folder: str | None = None) -> str:
    """An operating-system error as one line naming the path and the fix: a full disk, a folder
    that cannot be written, a missing file; the path from the error, else ``folder``."""
    import errno

    path = exc.filename or folder or "the output folder"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return (f"{reason} while writing {path}: free space on that disk (the demo's run folder, caches and study "
                f"included, takes about 130 MB) or give an --out folder on another disk, then run the same command "
                f"again (finished stages are kept)")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{reason}: {path}: that folder cannot be written; give an --out folder you can write to "
                f"(or make it writable), then run again")
    if exc.errno == errno.ENOENT:
        return f"{reason}: {path}: check the path"
    return f"{reason}: {path}"


def _warn(lines) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def _columns(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _auc_table(performance) -> str:
    """Model x cohort: AUC (DeLong 95% CI), as pROC's print shows one curve's; NA where undefined."""
    cohorts = list(dict.fromkeys(performance["cohort"]))
    models = list(dict.fromkeys(performance["model"]))
    cell = {(r.model, r.cohort): "NA" if r.auc != r.auc else f"{r.auc:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})"
            for r in performance.itertuples()}
    width = max(len("model"), *(len(m) for m in models)) + 2
    columns = [max(len(f"{c} AUC (95% CI)"), 21) + 2 for c in cohorts]
    lines = [f"{'model':<{width}}" + "".join(f"{c + ' AUC (95% CI)':>{w}}" for c, w in zip(cohorts, columns))]
    lines += [f"{m:<{width}}" + "".join(f"{cell.get((m, c), ''):>{w}}" for c, w in zip(cohorts, columns))
              for m in models]
    return "\n".join(lines)


def _cmd_analyze(args) -> int:
    done = verbs.analyze(args.predictions, args.out, dev_cohort=args.dev_cohort, strata=args.strata,
                         reference=args.reference, n_bootstrap=args.bootstrap, seed=args.seed,
                         figures=not args.no_figures, oof=args.oof, thresholds=args.thresholds,
                         time=args.time, event=args.event, horizon=args.horizon,
                         command=["dlr", *sys.argv[1:]])
    _warn(done.warnings)
    print(_auc_table(done.result.performance))
    _progress(f"wrote {done.out}/ (performance.csv, comparisons.csv, cohort_tests.csv, subgroups.csv, "
              f"decision_curve.csv, decision_curve_differences.csv, calibration.csv, results.json"
              f"{', survival.csv, km_curve.csv' if args.time else ''}{'' if args.no_figures else ', figures/'})")
    return EXIT_OK


def _cmd_table1(args) -> int:
    done = verbs.table1(args.clinical, args.out, outcome=args.outcome, cohort=args.cohort,
                        categorical=_columns(args.categorical) or [], study_yaml=args.study)
    _progress(f"wrote {done.out}/table1.csv, table1_tests.csv, table1_summary.csv"
              f"{', recodes.csv' if args.study else ''}")
    return EXIT_OK


def _cmd_audit(args) -> int:
    done = verbs.audit(args.reported, args.out)
    counts = done.extra["counts"]
    print(f"{done.extra['numbers']} reported numbers, {len(done.result)} checks: {counts['consistent']} consistent, "
          f"{counts['inconsistent']} inconsistent, {counts['cannot tell']} cannot tell")
    for row in done.result[done.result["verdict"] == "inconsistent"].itertuples():
        print(f"  {', '.join(x for x in (row.table, row.model, row.cohort) if x)}: {row.check}: {row.reason}")
    _progress(f"wrote {done.out}/audit.csv, letter.md")
    return EXIT_OK


def _cmd_logistic(args) -> int:
    done = verbs.logistic(args.clinical, args.out, outcome=args.outcome, cohort=args.cohort,
                          dev_cohort=args.dev_cohort, variables=_columns(args.variables),
                          categorical=_columns(args.categorical) or [], study_yaml=args.study, alpha=args.alpha,
                          anticipated_r2=args.anticipated_r2)
    size = done.extra["sample_size"]
    _progress(f"sample size: {size.n_available} development patients ({size.events_available} events) for "
              f"{size.parameters} candidate parameters; Riley et al. ask for at least {size.n_required} "
              f"(anticipated Nagelkerke R^2 {args.anticipated_r2:g})")
    _warn(done.warnings)
    _progress(f"selected (multivariate p < {args.alpha:g}): {', '.join(done.result.selected) or 'none'}; "
              f"wrote {done.out}/")
    return EXIT_OK


def _cmd_staging(args) -> int:
    done = verbs.staging(args.clinical, args.out, study_yaml=args.study, bclc_version=args.bclc_version,
                         outcome=args.outcome, cohort=args.cohort, dev_cohort=args.dev_cohort)
    _warn(done.warnings)
    missing = done.result.missing
    n_missing = missing["patient_id"].nunique() if len(missing) else 0
    _progress(f"wrote {done.out}/staging.csv and staging_missing.csv ({n_missing} patient(s) with a system left "
              f"empty; ERASL: {done.result.erasl_label})")
    return EXIT_OK


def _cmd_validate(args) -> int:
    problems = verbs.validate(args.study, images=args.images, report=args.report).result
    if not problems:
        _progress(f"{args.study}: no problems found")
        return EXIT_OK
    from dlr.modeling.study import shown_problems

    def line(p) -> str:
        where = ", ".join(x for x in (f"patient {p.patient_id}" if p.patient_id else "", p.file) if x)
        return f"[{p.check}] {where}: {p.message}. Fix: {p.fix}"

    print(f"dlr validate: {len(problems):,} problem(s) in {args.study}:", file=sys.stderr)
    shown = shown_problems(problems, line=line)
    for text in shown:
        print(f"  {text}", file=sys.stderr)
    if not args.report and shown[-1].startswith("... and"):
        print("  (every problem, one per row: dlr validate STUDY --report FILE.csv)", file=sys.stderr)
    return EXIT_BAD_INPUT


def _cmd_import_dicom(args) -> int:
    done = verbs.import_dicom(args.source, args.output, series_uid=args.series_uid, phases=_columns(args.phases),
                              overwrite=args.overwrite)
    if isinstance(done.result, dict):
        n_images = sum(len(v) for v in done.result.values())
        _progress(f"wrote {n_images} image(s) of {len(done.result)} patient(s) into {args.output}/images/")
    else:
        info = done.result
        _progress(f"wrote {info.path}: {info.size} voxels at {tuple(round(s, 4) for s in info.spacing)} mm "
                  f"from {info.n_files} DICOM files")
    return EXIT_OK


def _cmd_synth(args) -> int:
    _progress(f"synthesising {args.n} patients ({args.profile} profile, seed {args.seed}) into {args.out}")
    step = max(1, args.n // 10)

    def progress(done, total):
        if done % step == 0 or done == total:
            _progress(f"images: {done}/{total} patients")

    summary = verbs.synth(args.out, n=args.n, seed=args.seed, profile=args.profile, images=args.images,
                          overwrite=args.overwrite, progress=progress).result
    _progress(f"wrote {args.out}/ (study.yaml, clinical.csv, truth.csv"
              f"{', images/, masks/, masks_reader2/' if args.images else ''}): {summary.n} patients")
    return EXIT_OK


def _bar(total: int, desc: str):
    """A tqdm progress bar on stderr (a plain line per tenth when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0)


class _CaseBar:
    """The extraction's progress callback: a tqdm bar opened at the first call, failures written under it."""

    def __init__(self, stack: contextlib.ExitStack):
        self.stack, self.bar = stack, None

    def __call__(self, done: int, total: int, record: dict) -> None:
        if self.bar is None:
            self.bar = self.stack.enter_context(_bar(total, "radiomics"))
            self.bar.update(done)
            if done:
                self.bar.set_postfix_str(f"{done} from the cache")
        else:
            self.bar.update(done - self.bar.n)
            if record.get("status") == "failed":
                self.bar.write(f"failed: {record['patient_id']} reader {record['reader']} {record['phase']}: "
                               f"{record['reason']}")
        if done >= total:  # closed now, not when `dlr run` ends: its elapsed time is the extraction's
            self.bar.close()


def _report_extraction(done) -> None:
    s = done.result
    _progress(f"{s.n_cases} cases ({s.n_features_per_phase} features per phase): {s.n_computed} computed, "
              f"{s.n_cached} from the cache, {s.n_failed} failed; {s.seconds:.1f} s")
    _warn(done.warnings)
    _progress(f"wrote {s.out}/radiomics.csv and extraction_log.csv")


def _cmd_extract(args) -> int:
    with contextlib.ExitStack() as stack:
        done = verbs.extract(args.study, args.out, jobs=args.jobs, scheduler=args.scheduler, params=args.params,
                             profile=args.profile, case_done=_CaseBar(stack))
    _report_extraction(done)
    return EXIT_OK


def _models_table(summary, intervals=None) -> str:
    """Each model's AUCs side by side: apparent (development cohort, in-sample), development CV
    (tuning folds), nested out-of-fold (the honest development figure), the other
    cohorts with their DeLong 95% CIs (``intervals``: (model, cohort) -> (auc, low, high)), and
    the true risk's on a synthetic study (the best achievable)."""

    table = summary.performance.pivot(index="model", columns="cohort", values="auc")
    table = table.loc[list(dict.fromkeys(summary.performance["model"]))]
    models = summary.models.set_index("model")
    cohorts = list(table.columns)
    dev = summary.dev_cohort
    others = [c for c in cohorts if c != dev]
    width = 22 if intervals else 16
    heads = [f"{dev} apparent", "CV", "nested OOF"]
    lines = [f"{'AUC':<20}" + "".join(f"{h:>12}" for h in heads) + "".join(f"{h:>{width}}" for h in others)]

    def text(v):
        return f"{v:.3f}" if v == v else ""

    def with_ci(model, cohort, v):
        if not intervals or (model, cohort) not in intervals or v != v:
            return text(v)
        _, low, high = intervals[(model, cohort)]
        return f"{v:.3f} ({low:.2f}-{high:.2f})" if low == low else text(v)

    def field(extra, column):
        return extra[column] if extra is not None and column in extra.index else float("nan")

    for model, row in table.iterrows():
        extra = models.loc[model] if model in models.index else None
        cells = [row.get(dev, float("nan")), field(extra, "cv_auc"), field(extra, "oof_auc")]
        lines.append(f"{model:<20}" + "".join(f"{text(v):>12}" for v in cells)
                     + "".join(f"{with_ci(model, c, row[c]):>{width}}" for c in others))
    if summary.true_risk is not None:
        best = summary.true_risk.set_index("cohort")["auc"]
        cells = [best.get(dev, float("nan"))] + [float("nan")] * (len(heads) - 1)
        lines.append(f"{'true risk (best)':<20}" + "".join(f"{text(v):>12}" for v in cells)
                     + "".join(f"{text(best.get(c, float('nan'))):>{width}}" for c in others))
    return "\n".join(lines)


def _cmd_train(args) -> int:
    with contextlib.ExitStack() as stack:
        done = verbs.train(args.study, args.out, arms=_columns(args.arms) or None, jobs=args.jobs, seed=args.seed,
                           lasso_rule=args.lasso_rule, oof=not args.no_oof, scheduler=args.scheduler,
                           params=args.params, profile=args.profile, device=args.device, bar=True,
                           case_done=_CaseBar(stack), internal_validation_b=args.validate_b)
    if "extraction" in done.extra:
        _report_extraction(done.extra["extraction"])
    summary = done.result
    _warn(done.warnings[len(done.extra["extraction"].warnings) if "extraction" in done.extra else 0:])
    if summary.selection_counts is not None:
        steps = " -> ".join(f"{r.n_features} ({r.step})" for r in summary.selection_counts.itertuples())
        _progress(f"radiomics feature selection: {steps}")
    print(_models_table(summary, done.extra.get("auc_ci")))
    chosen = summary.models.loc[summary.models["best_classifier"], "model"]
    if len(chosen):
        used = " (used for RCR)" if "RCR" in set(summary.models["model"]) else ""
        _progress(f"best classifier (RCR's) by nested out-of-fold development AUC, or CV AUC with --no-oof: "
                  f"{chosen.iloc[0]}{used}")
    _progress(f"wrote {summary.out}/predictions.csv, {summary.out}/models/ and the model bundle {summary.out}/model/")
    return EXIT_OK


def _stage_bar(stack: contextlib.ExitStack):
    """Progress of `dlr run`: each stage's line, with the extraction's case bar under it."""
    return _CaseBar(stack)


def _report_run(summary, *, what: str = "report") -> int:
    """The stage table, the warnings and where the report and the log are (`dlr run`, `dlr predict`)."""
    _warn(summary.warnings)
    print(runner.stage_table(summary))
    report = summary.out / "report" / "index.html"
    if report.is_file():
        _progress(f"{what}: {report}")
    _progress(f"log: {summary.out / 'run.log'}")
    return EXIT_OK


def _cmd_run(args) -> int:
    with contextlib.ExitStack() as stack:
        summary = runner.run_study(args.study, args.out, profile=args.profile, arms=_columns(args.arms),
                                   jobs=args.jobs, seed=args.seed, scheduler=args.scheduler, params=args.params,
                                   n_bootstrap=args.bootstrap, case_done=_stage_bar(stack),
                                   device=args.device)
    return _report_run(summary)


def _cmd_demo(args) -> int:
    with contextlib.ExitStack() as stack:
        summary = runner.demo(args.out, profile=args.profile, jobs=args.jobs, seed=args.seed,
                              case_done=_stage_bar(stack))
    return _report_run(summary)


def _cmd_report(args) -> int:
    done = verbs.report(args.run, formats=_columns(args.formats), renderer=args.renderer)
    _warn(done.warnings)
    for path in done.result.outputs:
        _progress(f"wrote {path}")
    _progress(f"rendered by {done.result.renderer}")
    return EXIT_OK


def _cmd_package(args) -> int:
    result = package.package_run(args.run, args.out)
    _progress(f"wrote {result.path}: {result.n_files} files, {result.pseudonymised} patients pseudonymised; "
              f"it verifies itself with `dlr verify {result.path}`")
    return EXIT_OK


def _cmd_predict(args) -> int:
    with contextlib.ExitStack() as stack:
        summary = predict.predict_study(args.bundle, args.study, args.out, jobs=args.jobs, device=args.device,
                                        seed=args.seed, n_bootstrap=args.bootstrap, case_done=_stage_bar(stack))
    return _report_run(summary, what="external-validation report")


def _cmd_bundle(args) -> int:
    path = verbs.bundle(args.run, args.out).out
    _progress(f"wrote {path}: the model bundle of {args.run} (checked against its manifest); score new patients "
              f"with `dlr predict {path} STUDY --out RUN2`")
    return EXIT_OK
    return EXIT_OK


def _cmd_verify(args) -> int:
    result = package.verify_package(args.package)
    if result.identical:
        _progress(f"identical: {result.n_numbers} numbers in {len(result.checked)} files recomputed from "
                  f"{args.package}")
        return EXIT_OK
    diffs = result.differences
    print(f"{len(diffs)} number(s) differ between the package and the recomputed analysis:")
    for line, key in zip(result.lines(), diffs["key"] if "key" in diffs else [""] * len(diffs)):
        print(line + (f"  ({key})" if key else ""))
    return EXIT_DIFFERENT


def _clinical_verb(subparsers, name: str, help_text: str, description: str, *, cohort_help: str):
    """A verb reading a clinical CSV, with the options table1 and logistic share."""
    p = subparsers.add_parser(name, help=help_text, description=description)
    p.add_argument("clinical", help="clinical CSV, one row per patient")
    p.add_argument("--outcome", required=True, help="binary outcome column (0/1)")
    p.add_argument("--cohort", default=None, help=cohort_help)
    p.add_argument("--categorical", default=None, metavar="COL,...", help="numeric columns to treat as categorical")
    p.add_argument("--study", default=None, metavar="STUDY_YAML",
                   help="study.yaml: its recodes (applied first; table1 records them in recodes.csv), candidate "
                        "variables (in order), their types and cut points (raw values are dichotomised at the cut "
                        "points, as the paper's Table 1)")
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")
    return p


# options several verbs share, each defined once (argparse parents)
JOBS, SCHEDULER, PARAMS, PROFILE, DEVICE = "jobs", "scheduler", "params", "profile", "device"


def _shared(*names: str) -> list:
    """Parent parsers holding the shared options ``names``."""
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        if name == JOBS:
            parent.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                                help="processes (default: the number of CPUs; results do not depend on it)")
        elif name == SCHEDULER:
            parent.add_argument("--scheduler", default=None, metavar="ADDRESS",
                                help="Dask distributed scheduler (e.g. tcp://10.0.0.1:8786) for the extraction and "
                                     "the out-of-fold refits; its workers must see the study at the same path")
        elif name == PARAMS:
            parent.add_argument("--params", default=None, metavar="YAML",
                                help="PyRadiomics parameter file (default: study.yaml's radiomics_params, else "
                                     "dlr's own)")
        elif name == PROFILE:
            parent.add_argument("--profile", choices=("quick", "paper"), default=None,
                                help="quick: radiomics at 2 mm voxels unless study.yaml's preprocessing says "
                                     "otherwise, the deep arm's 32 x 32 crops of 96 mm and 250 steps (a CPU); "
                                     "paper: 1 mm voxels, 256 x 256 crops of 128 mm, the paper's stem and widths, "
                                     "1000 steps (a GPU). Default: study.yaml's profile, resolved as `dlr run` does")
        elif name == DEVICE:
            parent.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                                help="where the deep arm trains (auto: a CUDA GPU when there is one)")
        else:
            raise ValueError(name)
    return [parent]



def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlr", description="Deep-learning radiomics studies and their statistical validation.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for every error")
    parser.add_argument("--version", action="version", version=f"dlr {_version()}")
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    _add_analyze(subparsers)
    _add_table1(subparsers)
    _add_logistic(subparsers)
    _add_staging(subparsers)
    _add_validate(subparsers)
    _add_synth(subparsers)
    _add_extract(subparsers)
    _add_train(subparsers)
    _add_import_dicom(subparsers)
    _add_run(subparsers)
    _add_demo(subparsers)
    _add_report(subparsers)
    _add_package(subparsers)
    _add_verify(subparsers)
    _add_bundle(subparsers)
    _add_predict(subparsers)
    _add_audit(subparsers)
    return parser


def _add_audit(subparsers) -> None:
    p = subparsers.add_parser(
        "audit", help="check a paper's reported statistics for internal consistency",
        description="Checks the numbers a paper prints against each other, allowing for their rounding: AUCs "
                    "inside their CIs and possible for the events, CI widths against DeLong's extremes, "
                    "sensitivity/specificity/accuracy/PPV/NPV against integer 2 x 2 tables, DeLong P values "
                    "(unpaired and paired) and odds ratios' Wald P recomputed, percentages against counts, the "
                    "same quantity printed twice. Writes audit.csv and letter.md; exit 0 whatever it finds.")
    p.add_argument("reported", help="the transcribed numbers: a CSV (contract section 9) or a YAML (README "
                                    "'Auditing a paper's numbers'; e.g. examples/zhao2024_tables_2_4.yaml)")
    p.add_argument("--out", required=True, help="output folder for audit.csv and letter.md")
    p.set_defaults(func=_cmd_audit)


def _add_analyze(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="every validation statistic from a predictions file",
        description="Discrimination (AUC, DeLong and bootstrap CIs), paired and between-cohort DeLong tests, "
                    "development-cohort thresholds, calibration, decision curves, subgroup AUCs, NRI/IDI and "
                    "figures, from a predictions CSV (contract section 4).")
    p.add_argument("predictions", help="predictions CSV: patient_id, cohort, model, y_true, y_score, [attributes]")
    p.add_argument("--out", required=True, help="output folder (replaced only when the analysis succeeds)")
    p.add_argument("--dev-cohort", default="training", help="development cohort (default: training)")
    p.add_argument("--strata", nargs="+", action="extend", default=[], metavar="COL",
                   help="patient attribute column(s) for subgroup AUCs, e.g. scanner")
    p.add_argument("--oof", default=None, metavar="FILE",
                   help="out-of-fold development predictions (contract 4.1, e.g. RUN/predictions_oof.csv): adds "
                        "the '<dev cohort> (out-of-fold)' cohort, and each model's Youden threshold and the default "
                        "reference are chosen on them")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="model for NRI/IDI against the others (default: highest development AUC, out-of-fold "
                        "with --oof)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B",
                   help=f"stratified bootstrap resamples per cohort (default {DEFAULT_BOOTSTRAP}; 0 to skip)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"random seed of the bootstrap (default {DEFAULT_SEED})")
    p.add_argument("--thresholds", default=None, metavar="LOW:HIGH",
                   help="threshold probabilities the decision-curve figures show, 0 < LOW < HIGH < 1 (default: "
                        "0.05:0.80, the report's; decision_curve.csv always has 0.01 to 0.99)")
    p.add_argument("--time", default=None, metavar="COL",
                   help="patient column of the time to recurrence or censoring (any unit); with --event adds "
                        "survival.csv (Harrell's C, KM, log-rank, Cox HR of the development-threshold risk "
                        "groups), km_curve.csv and KM figures (contract 5.1)")
    p.add_argument("--event", default=None, metavar="COL",
                   help="patient column of the event: 1 = recurrence, 0 = censored (with --time)")
    p.add_argument("--horizon", type=float, default=None, metavar="T",
                   help="time at which survival.csv reads the cumulative incidence of each risk group, in the "
                        "unit of --time (default 24)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/SVG figures")
    p.set_defaults(func=_cmd_analyze)


def _add_table1(subparsers) -> None:
    p = _clinical_verb(
        subparsers, "table1", "Table 1: characteristics by outcome and cohort, with tests",
        "Characteristics by outcome group within each cohort (and between cohorts) with the test rule of "
        "methods.md E: chi-squared (Yates for 2x2) or Fisher's exact test for categorical variables, t test or "
        "Mann-Whitney by Shapiro-Wilk for continuous ones.", cohort_help="cohort column (e.g. cohort)")
    p.set_defaults(func=_cmd_table1)


def _add_logistic(subparsers) -> None:
    p = _clinical_verb(
        subparsers, "logistic", "univariate then multivariate logistic regression (the CR model's factors)",
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


def _add_staging(subparsers) -> None:
    p = subparsers.add_parser(
        "staging", help="staging systems and indexes from raw clinical variables",
        description="BCLC, CNLC, CLIP, Okuda, Child-Pugh, ALBI, ERASL, NLR, PLR and LMR for every patient from the "
                    "raw inputs named in contract section 2 (definitions: spec/staging.md). A system whose inputs "
                    "are missing is left empty and the missing inputs are listed in staging_missing.csv.")
    p.add_argument("clinical", help="clinical CSV with patient_id and the raw staging inputs")
    p.add_argument("--study", default=None, metavar="STUDY_YAML",
                   help="study.yaml: its recodes are applied first, its staging_columns map your columns to the "
                        "contract's input names, and its erasl block gives published ERASL coefficients (with their "
                        "source)")
    p.add_argument("--bclc-version", choices=("2022", "2010"), default="2022", help="BCLC version (default 2022)")
    p.add_argument("--outcome", default=None,
                   help="outcome column: refit ERASL's five predictors on the development cohort, labelled "
                        "'ERASL (refit)' (no published coefficients are built in)")
    p.add_argument("--cohort", default="cohort", help="cohort column for the refit (default: cohort)")
    p.add_argument("--dev-cohort", default="training", help="development cohort for the refit (default: training)")
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")
    p.set_defaults(func=_cmd_staging)


def _add_validate(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="check a study folder without running anything",
        description="Checks study.yaml, clinical.csv and every image and mask of a study folder (contract "
                    "section 2) and lists every problem found, each with the patient, the file and the fix. "
                    "Exit 0 when there is none, 2 otherwise.")
    p.add_argument("study", help="study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--no-images", dest="images", action="store_false", help="check the clinical data only")
    p.add_argument("--report", default=None, metavar="CSV", help="also write the problems to this CSV")
    p.set_defaults(func=_cmd_validate)


def _add_synth(subparsers) -> None:
    p = subparsers.add_parser(
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


def _add_extract(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="radiomics features of every patient, reader and phase (cached, parallel)",
        description="Resamples each phase to study.yaml's preprocessing spacing (the quick profile: 2 x 2 x 2 mm; "
                    "paper: 1 x 1 x 1 mm, as `dlr run` does), normalises its intensities and extracts PyRadiomics "
                    "features (default parameters: Original + Wavelet + LoG, 1037 per phase) for every patient, "
                    "reader and phase, into RUN/features/radiomics.csv. Cached per image, mask and parameters: a "
                    "rerun recomputes nothing and an interrupted run resumes. A case that fails is listed with "
                    "its reason and the run goes on.", parents=_shared(JOBS, SCHEDULER, PARAMS, PROFILE))
    p.add_argument("study", help="study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--out", required=True, help="run folder; features go to RUN/features/")
    p.set_defaults(func=_cmd_extract)


def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fit the CR, radiomics and RCR models; write RUN/predictions.csv",
        description="Fits every model on the development cohort only (split file, CR factor selection, median fill, "
                    "ICC > 0.90, t test / Mann-Whitney, LASSO with 5-fold CV, five tuned classifiers, RCR in the "
                    "classifier with the best CV AUC, Youden thresholds) and predicts every cohort into "
                    "RUN/predictions.csv with the staging comparators; out-of-fold predictions and every fitted "
                    "parameter go to RUN/models/.", parents=_shared(JOBS, PROFILE, DEVICE))
    p.add_argument("study", help="study folder")
    p.add_argument("--out", required=True, help="run folder (features from `dlr extract`, extracted when missing)")
    p.add_argument("--arms", default=None, metavar="ARM,...",
                   help="clinical, radiomics, deep (default clinical and radiomics, or clinical for a study with no "
                        "phases; RCR needs clinical and radiomics, DLRCR all three)")
    p.add_argument("--seed", type=int, default=None, help="seed of the split and the models (default: study.yaml's)")
    p.add_argument("--lasso-rule", choices=("min", "1se"), default="min",
                   help="LASSO penalty: minimum CV deviance (default) or the 1-SE rule")
    p.add_argument("--no-oof", action="store_true", help="skip the out-of-fold refits")
    p.add_argument("--validate-b", type=int, default=200, metavar="B",
                   help="bootstrap resamples of the internal validation of the logistic models (Harrell's "
                        "optimism correction, models/internal_validation.csv; default 200, 0 skips it)")
    p.add_argument("--scheduler", default=None, help=argparse.SUPPRESS)
    p.add_argument("--params", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_train)


def _add_import_dicom(subparsers) -> None:
    p = subparsers.add_parser(
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


def _add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="every stage from a study folder to the report (cached, resumable)",
        description="Validates the study, splits it, extracts the radiomics features, computes Table 1, Table 3 "
                    "and the staging systems, fits every model with its nested out-of-fold predictions, analyses "
                    "the predictions and renders the report into RUN/report/. Each stage is skipped when the "
                    "hashes of its inputs and settings are unchanged; an interrupted run resumes where it "
                    "stopped. Progress on stderr and in RUN/run.log.", parents=_shared(JOBS, SCHEDULER, PARAMS, PROFILE, DEVICE))
    p.add_argument("study", help="study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--out", required=True, help="run folder (new, or an earlier run of the same study to resume)")
    p.add_argument("--arms", default=None, metavar="ARM,...",
                   help="clinical, radiomics, deep (default: all three, or clinical for a study without phases)")
    p.add_argument("--seed", type=int, default=None, help="seed of the split, models and bootstrap (default: study.yaml's)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples (default %(default)s)")
    p.set_defaults(func=_cmd_run)


def _add_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="the embedded synthetic study, run to its report",
        description="`dlr synth` into OUT/study, then `dlr run OUT/study --out OUT`, rendering OUT/report/.")
    p.add_argument("--out", default="runs/demo", help="folder (default: %(default)s)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick", help="default: %(default)s")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: the number of CPUs)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the synthetic study's)")
    p.set_defaults(func=_cmd_demo)


def _add_report(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="render RUN/report/ (HTML, DOCX, the checklists) from the saved results",
        description="Renders the Quarto report of a run from its saved results only: with `quarto` on PATH by "
                    "`quarto render`, otherwise the same sources through pandoc. Writes RUN/report/index.html, "
                    "index.docx, the checklists (tripod_ai.csv, claim.csv, clear.csv, metrics.csv with "
                    "metrics_score.csv) and audit.csv.")
    p.add_argument("run", help="run folder (from `dlr run`)")
    p.add_argument("--formats", default="html,docx", metavar="FMT,...", help="html, docx (default both)")
    p.add_argument("--renderer", choices=("auto", "quarto", "pandoc"), default="auto",
                   help="auto: quarto when on PATH, else pandoc (default)")
    p.set_defaults(func=_cmd_report)


def _add_package(subparsers) -> None:
    p = subparsers.add_parser(
        "package", help="the reviewer package of a run (a zip that verifies itself)",
        description="Writes study.yaml, the split, settings, an environment lock, seeds, input checksums, "
                    "pseudonymised features and predictions, the results, the report and REPRODUCE.md into a "
                    "zip; no DICOM header value and no path of this machine.")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", required=True, help="the zip file to write")
    p.set_defaults(func=_cmd_package)


def _add_bundle(subparsers) -> None:
    p = subparsers.add_parser(
        "bundle", help="a run's frozen models as one zip (the model bundle, RUN/model/)",
        description="Checks RUN/model/ against its manifest (the SHA-256 of every member) and writes it as one zip "
                    "for `dlr predict`: JSON, YAML, CSV and safetensors members only, no pickle.")
    p.add_argument("run", help="run folder (from `dlr run` or `dlr train`)")
    p.add_argument("--out", required=True, help="the zip file to write (FILE.zip)")
    p.set_defaults(func=_cmd_bundle)


def _add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="frozen models on a new study: predictions and an external-validation report",
        description="Checks the bundle (every member's SHA-256) and the study against it (phases, variables, "
                    "levels the development cohort had, batches ComBat was fitted on), extracts the features with "
                    "the bundle's settings, scores every patient with every model, analyses the study's cohorts "
                    "beside the development cohort at the bundle's thresholds (never chosen again) and renders an "
                    "external-validation report into OUT/report/. Cached and resumable like `dlr run`.",
        parents=_shared(JOBS))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the networks score (auto: where they were trained, else the CPU)")
    p.add_argument("bundle", help="RUN/model/ of a `dlr run`, or the zip of `dlr bundle`")
    p.add_argument("study", help="the new study folder (study.yaml, clinical.csv, images/, masks/)")
    p.add_argument("--out", required=True, help="run folder (new, or an earlier `dlr predict` of it to resume)")
    p.add_argument("--seed", type=int, default=None, help="seed of the bootstrap (default: the bundle's)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples (default %(default)s)")
    p.set_defaults(func=_cmd_predict)


def _add_verify(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="recompute a reviewer package's analysis and list every number that differs",
        description="Exit 0 when every recomputed number equals the packaged one, 1 otherwise (each difference "
                    "named by file, row and column), 2 for a file that is not a dlr package.")
    p.add_argument("package", help="the reviewer package (.zip)")
    p.set_defaults(func=_cmd_verify)

    for verb in subparsers.choices.values():  # `dlr VERB ... --debug` as well as `dlr --debug VERB ...`
        verb.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks")


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
        with warnings.catch_warnings(), on_stderr():
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
        print(f"dlr {args.verb}: error: {os_error_message(exc, _written_folder(args))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if args.verb in ("run", "demo"):
            print(f"dlr {args.verb}: interrupted; run the same command again to resume (finished stages and "
                  "extracted cases are kept)", file=sys.stderr)
        else:
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
