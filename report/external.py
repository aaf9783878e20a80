"""`dlr predict`'s external-validation report: a RUN2 folder's saved results -> ``RUN2/report/``.

A `dlr predict` run (contract section 8) applies a frozen model bundle to a new study and
analyses the predictions with the bundle's thresholds and risk maps carried unchanged. This
module writes the report of such a run: an evaluation-only study in TRIPOD+AI's terms. Like
:mod:`dlr.report.build` it reads saved files only, through the one reader
(:class:`dlr.report.facts.RunFacts`), and never fits or computes a statistic: every number
printed is a value of one of these files of RUN2, rounded for display (counts and the event
rate n_events / n aside):

=================================  =============================================================
file of RUN2                       what the report takes from it
=================================  =============================================================
``inputs/bundle.json``             the bundle (manifest: format version, dlr version, members
                                   checked by SHA-256, software), the development cohort's name,
                                   size and events, the models, thresholds, phases,
                                   harmonisation and the recodes applied
``inputs/study.yaml``              the new study's name, title and outcome column
``clinical/table1.csv``,           Table 1 of the new cohorts (``dlr table1``'s format)
``clinical/table1_tests.csv``
``results/performance.csv``        AUCs (DeLong and bootstrap CIs), the operating points at the
                                   bundle threshold, ``threshold_source``, the Brier score
``results/cohort_tests.csv``       the unpaired DeLong P of each new cohort against development
``results/recalibration.csv``      calibration-in-the-large and slope with their CIs, O/E
``results/survival.csv``           Harrell's C, log-rank P, Cox HR (when follow-up exists)
``results/results.json``           the analysis' settings (cohorts, bootstrap B, reference model,
                                   decision-curve range) and provenance
``results/roc_curve.csv`` and the  the figures, drawn by :mod:`dlr.report.external_figures` (key
other curve tables: ``roc_band``,  models only, as the rows were saved; each legend's AUC that of
``calibration_groups``,            performance.csv): ROC curves per cohort; the staging systems and
``calibration_smooth``,            indexes against RCR; calibration per model; decision curves and
``decision_curve``,                their differences from the reference model per new cohort;
``decision_curve_differences``,    Kaplan-Meier curves of the reference model's risk groups; AUCs
``subgroups``, ``km_curve``        by each stratifier
=================================  =============================================================

The Quarto sources are ``report/external/index.qmd`` (fixed text with ``{{< include >}}`` of the
generated Markdown) and the main report's ``report.css``; :func:`build_external_report` copies
them into a temporary folder, writes ``_generated/`` there (:func:`prepare_external_sources`),
renders them with :func:`dlr.report.render.render_report` (Quarto when on PATH, else its pandoc
fallback) and moves ``index.html``, ``index.docx``, ``tripod_ai.csv``, ``tripod_ai_abstract.csv``
and ``figures/`` into ``RUN2/report/`` at once.
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import yaml

from dlr.core import run_folder as rf
from dlr.core.csvsafe import write_csv
from dlr.core.errors import InputError

from .external_figures import ReportFigure, draw_external_figures
from .facts import RunFacts, read_run
from .tables import (DASH, DisplayTable, cohort_label, format_ci, format_count, format_number,
                     format_p, markdown_text, pipe_table, table1)
from .text import MAX_CI_WIDTH, MIN_VALIDATION_EVENTS, _list
from .tripod import TRIPOD_AI, TRIPOD_AI_ABSTRACT, checklist_markdown, tripod_checklist

logger = logging.getLogger(__name__)

#: the external report's Quarto sources (package data) and the style sheet it shares with the main report
SOURCES = Path(__file__).resolve().parent / "external"
SOURCE_FILES = ("index.qmd",)
CSS = Path(__file__).resolve().parent / "report.css"
GENERATED = "_generated"
BUNDLE_JSON = "inputs/bundle.json"
RECALIBRATION_CSV = "results/recalibration.csv"

#: the generated text sections, each an include of _generated/text/<name>.md
TEXT_SECTIONS = ("summary", "methods-data", "methods-models", "methods-performance", "results-participants",
                 "results-performance", "results-calibration", "results-utility", "results-survival",
                 "results-subgroups", "limitations", "reproducibility")
#: the generated tables, each an include of _generated/tables/<id>.md (empty when absent)
TABLE_SLOTS = ("tbl-1-characteristics", "tbl-2-discrimination", "tbl-3-calibration", "tbl-4-survival")
#: the generated figure groups, each an include of _generated/figures/<group>.md (empty when absent)
FIGURE_GROUPS = ("roc", "calibration", "dca", "km", "forest")

#: TRIPOD+AI status of an item that concerns model development only (``applies`` = "D")
NOT_APPLICABLE = "not applicable: evaluation only (development item)"
#: the model-development items' reason, in the value column of the checklist
NOT_APPLICABLE_WHY = ("the models were developed elsewhere and applied frozen from the bundle; this run "
                      "evaluates them only")
#: the main report's section anchors (TRIPOD+AI's `report_section`) -> the sections this report has
SECTION_OF = {"sec-methods-participants": "sec-methods-data", "sec-methods-outcome": "sec-methods-data",
              "sec-methods-sample-size": "sec-methods-data", "sec-methods-missing": "sec-methods-data",
              "sec-methods-predictors": "sec-methods-models", "sec-methods-analysis": "sec-methods-performance",
              "sec-methods-fairness": "sec-methods-performance", "sec-results-models": "sec-methods-models"}

#: the key models of the summary and title, in order (those present): CR, the best radiomics
#: classifier, the networks, RCR, DLRCR
KEY_ORDER = ("CR", None, "DL-ResNet10", "DL-ResNet18", "DL-ResNet34", "RCR", "DLRCR")

OVER = "over-predicts"
UNDER = "under-predicts"
IN_THE_LARGE = "no evidence of miscalibration in the large"
NOT_ESTIMABLE = "not estimable"


# ------------------------------------------------------------------------------------------
# what RUN2 holds


@dataclass(frozen=True)
class ExternalFacts:
    """A `dlr predict` run as the report reads it.

    Attributes
    ----------
    facts : RunFacts
        The one reader of RUN2's files (``read_run``).
    bundle : dict
        ``inputs/bundle.json``.
    dev : str
        The development cohort's name in ``results/`` (bundle.json ``dev_label``).
    oof : str or None
        ``"<dev> (out-of-fold)"`` when performance.csv has it.
    new_cohorts : list of str
        The new study's cohorts, in the analysis' order.
    models : list of str
        Every model of the analysis, in the bundle's order.
    probability_models : list of str
        The bundle's probability models present in the analysis.
    key_models : list of str
        The models of the title and summary (:data:`KEY_ORDER`), else the probability models.
    recalibration : DataFrame or None
        ``results/recalibration.csv``.
    """

    facts: RunFacts
    bundle: dict
    dev: str
    oof: Optional[str]
    new_cohorts: list
    models: list
    probability_models: list
    key_models: list
    recalibration: Optional[pd.DataFrame]

    @property
    def performance(self) -> pd.DataFrame:
        return self.facts.performance

    @property
    def settings(self) -> dict:
        return self.facts.settings

    @property
    def study_name(self) -> str:
        return str(getattr(self.facts.config, "name", None) or "the new study")

    @property
    def outcome(self) -> str:
        return str(getattr(self.facts.config, "outcome_column", None) or "the outcome")

    @property
    def dev_cohort(self) -> str:
        """The development cohort's name in the bundle (``dev_cohort``)."""
        return str(self.bundle.get("dev_cohort") or self.dev)

    def perf(self, model: str, cohort: str) -> Optional[pd.Series]:
        return self.facts.perf(model, cohort)

    def counts(self, cohort: str) -> tuple[int, int]:
        """(patients, events) of a cohort of the analysis (its largest model row)."""
        rows = self.performance[self.performance["cohort"] == cohort]
        row = rows.loc[rows["n"].idxmax()]
        return int(row["n"]), int(row["n_events"])

    @property
    def dev_counts(self) -> tuple[int, int]:
        return int(self.bundle["n_development"]), int(self.bundle["n_events_development"])


def _require(bundle: dict, keys, where) -> None:
    missing = [k for k in keys if k not in bundle]
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}; `dlr predict` writes them "
                         "(contract section 8)")


def read_external(run2) -> ExternalFacts:
    """Read a `dlr predict` run folder for the report (nothing is computed).

    Raises
    ------
    InputError
        Without ``inputs/bundle.json``, ``results/performance.csv`` or ``results/results.json``,
        or when the development cohort bundle.json names is not in performance.csv.
    """
    run2 = Path(run2)
    facts = read_run(run2)
    bundle = facts.document(BUNDLE_JSON)
    if not isinstance(bundle, dict):
        raise InputError(f"{run2 / BUNDLE_JSON}: missing or not a JSON object; is {run2} a `dlr predict` run?")
    _require(bundle, ("manifest", "dev_cohort", "dev_label", "models", "thresholds", "n_development",
                      "n_events_development"), run2 / BUNDLE_JSON)
    if facts.performance is None or facts.results is None:
        raise InputError(f"{run2 / rf.RESULTS_DIR}: no analysis results (performance.csv, results.json); "
                         "`dlr predict` writes them before the report")
    perf = facts.performance
    present = list(dict.fromkeys(perf["cohort"].astype(str)))
    dev = str(bundle["dev_label"])
    if dev not in present:
        raise InputError(f"{run2 / 'results' / 'performance.csv'}: no rows for the development cohort {dev!r} "
                         f"(bundle.json dev_label); its cohorts are {', '.join(present)}")
    oof = rf.oof_cohort(dev) if rf.oof_cohort(dev) in present else None
    ordered = [c for c in facts.settings.get("cohorts", []) if c in present]
    ordered += [c for c in present if c not in ordered]
    new = [c for c in ordered if c not in (dev, oof)]
    analysed = list(dict.fromkeys(perf["model"].astype(str)))
    models = [m for m in bundle.get("models", []) if m in analysed] + \
             [m for m in analysed if m not in bundle.get("models", [])]
    probability = [m for m in (bundle.get("probability_models") or facts.settings.get("probability_models") or [])
                   if m in analysed]
    best = rf.best_radiomics(None, perf, dev)
    key = [m for m in dict.fromkeys(best if m is None else m for m in KEY_ORDER) if m and m in analysed]
    if not key:
        key = probability or models
    recal = facts.table(RECALIBRATION_CSV, dtype={"model": str, "cohort": str})
    return ExternalFacts(facts, bundle, dev, oof, new, models, probability, key, recal)


# ------------------------------------------------------------------------------------------
# wording from the numbers


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def citl_verdict(citl, ci_low, ci_high) -> str:
    """The calibration-in-the-large in words, from its sign and whether its 95% CI excludes 0:
    :data:`OVER` (a < 0, CI below 0: the predictions too high), :data:`UNDER` (a > 0, CI above 0),
    else :data:`IN_THE_LARGE`; :data:`NOT_ESTIMABLE` when a or its CI is missing."""
    if not (_finite(citl) and _finite(ci_low) and _finite(ci_high)):
        return NOT_ESTIMABLE
    if float(citl) < 0 and float(ci_high) < 0:
        return OVER
    if float(citl) > 0 and float(ci_low) > 0:
        return UNDER
    return IN_THE_LARGE


def slope_verdict(slope, ci_low, ci_high) -> str:
    """The calibration slope in words: too extreme (b < 1, CI below 1), too moderate (b > 1, CI
    above 1), else no evidence that it differs from 1; :data:`NOT_ESTIMABLE` when missing."""
    if not (_finite(slope) and _finite(ci_low) and _finite(ci_high)):
        return NOT_ESTIMABLE
    if float(slope) < 1 and float(ci_high) < 1:
        return "predictions too extreme (slope below 1, its CI excluding 1)"
    if float(slope) > 1 and float(ci_low) > 1:
        return "predictions too moderate (slope above 1, its CI excluding 1)"
    return "no evidence that the slope differs from 1 (its CI includes 1)"


def _rate(n: int, events: int) -> str:
    return f"{100 * events / n:.1f}%" if n else "NA"


def _name(text) -> str:
    return markdown_text(str(text))


def _code(text) -> str:
    """``text`` as a code span (shown as it is: no escapes inside)."""
    return "`" + str(text).replace("`", "'") + "`"


def _auc(row: Optional[pd.Series]) -> str:
    return "NA" if row is None else format_ci(row["auc"], row["auc_ci_low"], row["auc_ci_high"])


def _ci_text(estimate, low, high) -> str:
    """``-0.225 (95% CI -0.929 to 0.478)``."""
    if not _finite(estimate):
        return "NA"
    if not (_finite(low) and _finite(high)):
        return format_number(estimate)
    return f"{format_number(estimate)} (95% CI {format_number(low)} to {format_number(high)})"


def _cohort_counts_text(ext: ExternalFacts, cohort: str) -> str:
    n, e = ext.counts(cohort)
    return f"{n} patients, {e} events ({_rate(n, e)})"


def _dev_words(ext: ExternalFacts, counts: str = "") -> str:
    """"the training cohort" or "the training cohort (labelled development in the tables and
    figures)", with ``counts`` in the same parentheses ("the training cohort (132 patients)")."""
    inside = [] if ext.dev_cohort == ext.dev else [f"labelled {_name(ext.dev)} in the tables and figures"]
    inside += [counts] if counts else []
    return f"the {_name(ext.dev_cohort)} cohort" + (f" ({'; '.join(inside)})" if inside else "")


def _threshold_sources(ext: ExternalFacts) -> dict:
    """model -> the set of performance.csv's ``threshold_source`` values of its rows."""
    perf = ext.performance
    if "threshold_source" not in perf.columns:
        return {m: {"not recorded"} for m in ext.models}
    return {m: set(perf.loc[perf["model"] == m, "threshold_source"].fillna("not recorded").astype(str))
            for m in ext.models}


def _threshold_mismatches(ext: ExternalFacts) -> list[str]:
    """Models whose threshold in performance.csv is not the bundle's (none in a sound run)."""
    thresholds = ext.bundle.get("thresholds") or {}
    out = []
    for model in ext.models:
        values = ext.performance.loc[ext.performance["model"] == model, "threshold"]
        if model not in thresholds:
            out.append(f"{model} (no threshold in bundle.json)")
        elif not all(_finite(v) and math.isclose(float(v), float(thresholds[model]), rel_tol=1e-12, abs_tol=1e-12)
                     for v in values):
            out.append(f"{model} (performance.csv {', '.join(format_number(v, 4) for v in values.unique())}; "
                       f"bundle {format_number(thresholds[model], 4)})")
    return out


def threshold_text(ext: ExternalFacts) -> str:
    """How the thresholds were set, worded from performance.csv's ``threshold_source`` and
    checked against bundle.json's thresholds."""
    sources = _threshold_sources(ext)
    carried = [m for m, s in sources.items() if s == {"bundle"}]
    other = [m for m in ext.models if m not in carried]
    mismatched = _threshold_mismatches(ext)
    if not other and not mismatched:
        return ("Every model's threshold was carried from development unchanged: the threshold chosen on the "
                "development cohort and stored in the bundle, never re-picked on the new patients "
                "(performance.csv's `threshold_source` is `bundle` for every model and cohort, and each "
                "threshold equals bundle.json's).")
    parts = []
    if carried:
        parts.append(f"The thresholds of {_list(carried)} were carried from development unchanged "
                     "(`threshold_source` = `bundle`).")
    if other:
        said = "; ".join(f"{m}: {', '.join(sorted(sources[m]))}" for m in other)
        parts.append(f"**Not carried from the bundle**: performance.csv records another `threshold_source` for "
                     f"{said}; their operating points are not those of the frozen models.")
    if mismatched:
        parts.append(f"**Thresholds differing from bundle.json**: {'; '.join(mismatched)}.")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------
# the prose


def report_title(ext: ExternalFacts) -> str:
    models = ext.key_models
    noun = "model" if len(models) == 1 else "models"
    outcome = ext.outcome.replace("_", " ")
    return f"External validation of the {_list(models)} {noun} predicting {outcome} in {ext.study_name}"


def summary(ext: ExternalFacts) -> str:
    n, e = ext.dev_counts
    models = ext.key_models
    lines = [f"**Objective.** To evaluate, in the patients of {_name(ext.study_name)}, the frozen "
             f"{_list(models)} {'model' if len(models) == 1 else 'models'} developed on "
             f"{_dev_words(ext, f'{n} patients, {e} events, {_rate(n, e)}')}, applied unchanged."]
    manifest = ext.bundle.get("manifest") or {}
    lines.append(f"**Methods.** Every model of the bundle (format version {manifest.get('format_version', '?')}, "
                 f"dlr {_name(manifest.get('dlr_version', '?'))}) scored the new patients with its "
                 "preprocessing, features and development thresholds carried unchanged; discrimination (AUC, "
                 "DeLong 95% CI), operating points at the bundle thresholds, calibration-in-the-large and slope, "
                 "and decision curves were estimated in each new cohort.")
    for cohort in ext.new_cohorts:
        aucs = [f"{m} {_auc(ext.perf(m, cohort))}" for m in models if ext.perf(m, cohort) is not None]
        lines.append(f"**{cohort_label(_name(cohort))} cohort.** {_cohort_counts_text(ext, cohort)}; AUC (95% CI): "
                     + "; ".join(aucs) + ".")
    lines.append("**Conclusion.** *For the authors.*")
    return "\n\n".join(lines) + "\n"


def methods_data(ext: ExternalFacts) -> str:
    cfg = ext.facts.config
    title = getattr(cfg, "title", None)
    cohorts = [f"{_name(c)} ({ext.counts(c)[0]} patients, {ext.counts(c)[1]} events, {_rate(*ext.counts(c))})"
               for c in ext.new_cohorts]
    n, e = ext.dev_counts
    text = [f"The new study is {_name(ext.study_name)}" + (f" ({_name(title)})" if title else "")
            + f", with {len(cohorts)} {'cohort' if len(cohorts) == 1 else 'cohorts'}: {_list(cohorts)}. "
            f"The outcome is {_code(ext.outcome)} (1 = event), as recorded in the study's clinical table."]
    text.append(f"The development cohort is {_dev_words(ext)} of the bundle: {n} patients with {e} events "
                f"({_rate(n, e)}), as bundle.json records them; of its patients the bundle carries only the models' "
                "scores and outcomes under pseudonyms (and, inside the fitted KNN and SVM, feature vectors), no "
                "clinical characteristic. Its rows in the results are the development predictions stored in the "
                "bundle: the apparent "
                "predictions of the models fitted on those patients"
                + (f" and their nested out-of-fold predictions, labelled {_name(ext.oof)}" if ext.oof else "")
                + ", shown for comparison only.")
    return "\n\n".join(text) + "\n"


def _recodes_text(ext: ExternalFacts) -> str:
    recodes = ext.bundle.get("recodes_applied") or []
    if not recodes:
        return "No raw value of the new study needed recoding to the development levels."
    said = [f"{_name(r.get('variable'))} '{_name(r.get('from'))}' as '{_name(r.get('to'))}' "
            f"({format_count(r.get('n_patients'))} {'patient' if str(r.get('n_patients')) == '1' else 'patients'})"
            for r in recodes]
    return ("Before scoring, raw values of the new study were recoded to the levels the bundle declares "
            f"(study.yaml's `recode`): {'; '.join(said)}.")


def _harmonization_text(ext: ExternalFacts) -> str:
    fitted = ext.bundle.get("harmonization")
    if not fitted:
        return "The bundle has no harmonisation step."
    method = str(fitted.get("method", "combat"))
    batch = _code(fitted.get("batch", "?"))
    name = "ComBat" if method.lower() == "combat" else _name(method)
    return (f"The radiomics features were harmonised across the levels of {batch} by {name} with the location "
            "and scale parameters estimated on the development patients and stored in the bundle, applied "
            "unchanged (not re-estimated on the new patients).")


def methods_models(ext: ExternalFacts) -> str:
    b = ext.bundle
    manifest = b.get("manifest") or {}
    members = manifest.get("members") or {}
    probability = ext.probability_models
    indexes = [m for m in ext.models if m not in probability]
    phases = list(b.get("phases") or [])
    deep = [m for m in ext.models if m in rf.DEEP_MODELS]
    radiomics = [m for m in ext.models if m in rf.RADIOMICS_MODELS or m in ("RCR", "DLRCR")]
    source = bundle_name(b)
    paragraphs = [
        f"**The frozen bundle.** The models were read from the model bundle {_code(source)} (format "
        f"{_code(manifest.get('format', '?'))} version {manifest.get('format_version', '?')}, written by dlr "
        f"{_name(manifest.get('dlr_version', '?'))}); each of its {len(members)} members was checked against the "
        "SHA-256 its manifest records before use, and no member is executable code. The bundle was developed on "
        f"{_dev_words(ext)}. It holds {len(ext.models)} {'model' if len(ext.models) == 1 else 'models'}"
        + (f": {_list(ext.models)}" if not (probability and indexes) else
           f", {len(probability)} giving probabilities ({_list(probability)}) and "
           f"{'one index' if len(indexes) == 1 else f'{len(indexes)} indexes'} ({_list(indexes)}; discrimination, "
           "and decision curves through the development cohort's index-to-risk maps)") + ".",
        "**Carried unchanged.** Every model was applied exactly as fitted on the development cohort: "
        + ", ".join(x for x in (
            "the variables, their levels and cut points",
            (f"the image preprocessing and the PyRadiomics parameter file ({len(phases)} "
             f"{'phase' if len(phases) == 1 else 'phases'}: {_list(phases)})" if phases and radiomics else
             "the image preprocessing" if phases and deep else ""),
            "the harmonisation" if b.get("harmonization") else "",
            "the selected features, scalers and fitted models",
            "the networks' weights and slice settings" if deep else "",
            "the development cohort's index-to-risk maps" if indexes else "",
            "and the development cohort's thresholds") if x)
        + ". Nothing was refitted, re-selected, re-tuned or recalibrated on the new patients. "
        + threshold_text(ext),
        f"**Harmonisation.** {_harmonization_text(ext)}",
        f"**Recodes.** {_recodes_text(ext)}",
    ]
    return "\n\n".join(paragraphs) + "\n"


def bundle_name(bundle: dict) -> str:
    """The bundle as bundle.json's ``source`` names it: the file (``bundle.zip``), or for a
    bundle folder ``RUN/model`` its run and folder (``RUN/model``)."""
    source = Path(str(bundle.get("source", "?")))
    if source.suffix or not source.parent.name:
        return source.name or str(source)
    return f"{source.parent.name}/{source.name}"


def methods_performance(ext: ExternalFacts) -> str:
    s = ext.settings
    b = s.get("n_bootstrap", "?")
    lo, hi = s.get("decision_curve_range") or _shown_range()
    text = [
        f"**Discrimination.** AUCs with DeLong 95% CIs and stratified percentile bootstrap 95% CIs (B = {b} "
        "resamples, cases and controls drawn separately); sensitivity, specificity, accuracy, PPV and NPV at the "
        "bundle threshold with Wilson 95% CIs. Each model's AUC in each new cohort was compared with its AUC in "
        "the development cohort by the unpaired DeLong test.",
        "**Calibration** of the probability models: calibration-in-the-large (the intercept a of logit P(y = 1) "
        "= a + logit p, the frozen model's logit as an offset; R `glm(y ~ offset(qlogis(p)), family = binomial)`), "
        "the calibration slope (b of logit P(y = 1) = a' + b logit p; R `glm(y ~ qlogis(p), family = binomial)`), "
        "both with Wald 95% CIs, the observed/expected ratio and the Brier score, with calibration curves over "
        "quantile groups of the predictions (Van Calster et al., J Clin Epidemiol 2016;74:167-176). "
        "Recalibration-in-the-large (Steyerberg et al., Stat Med 2004;23:2567-2586), which would add a to every "
        "logit so that the mean prediction equals the observed event rate, is shown, not applied: the models "
        "are reported as frozen. A model over-predicts when a < 0 with a CI excluding 0, under-predicts when "
        "a > 0 with a CI excluding 0.",
        f"**Clinical utility.** Decision curves (Vickers & Elkin, Med Decis Making 2006;26:565-574): net benefit "
        f"of each model against treating all and treating none, over threshold probabilities {lo:.2f}-{hi:.2f}.",
    ]
    follow = ext.facts.survival_settings
    if ext.facts.survival is not None and follow:
        text.append(f"**Time to recurrence** ({_code(follow.get('time', 'time'))}, "
                    f"{_code(follow.get('event', 'event'))}): Harrell's C of each score, Kaplan-Meier curves of the "
                    "risk groups split at the bundle threshold, the log-rank test and the Cox hazard ratio of the "
                    "high-risk group (Efron ties, Wald CI).")
    strata = list(s.get("strata") or [])
    if strata:
        text.append(f"**Subgroups.** AUCs within each level of {_list(_code(x) for x in strata)}, with "
                    "unpaired DeLong tests between levels.")
    return "\n\n".join(text) + "\n"


def _shown_range() -> tuple:
    from dlr.analysis.decision_curve import SHOWN_RANGE

    return tuple(SHOWN_RANGE)


def results_participants(ext: ExternalFacts, *, tables: set) -> str:
    n, e = ext.dev_counts
    parts = [f"the {_name(c)} cohort had {_cohort_counts_text(ext, c)}" for c in ext.new_cohorts]
    text = _list(parts)
    text = text[:1].upper() + text[1:]
    ref = " (@tbl-1-characteristics)" if "tbl-1-characteristics" in tables else ""
    return (f"{text}{ref}; the development cohort had {n} patients and {e} events ({_rate(n, e)}).\n")


def _vs_dev(ext: ExternalFacts, model: str, cohort: str) -> str:
    tests = ext.facts.cohort_tests
    dev = ext.perf(model, ext.dev)
    if dev is None:
        return ""
    own = ext.perf(model, cohort)
    words = ""
    if own is not None and _finite(own["auc"]) and _finite(dev["auc"]):
        words = "higher than" if float(own["auc"]) > float(dev["auc"]) else \
            "lower than" if float(own["auc"]) < float(dev["auc"]) else "equal to"
    p = ""
    if tests is not None:
        rows = tests[(tests["model"] == model) & (tests["cohort_a"] == ext.dev) & (tests["cohort_b"] == cohort)]
        if len(rows):
            value = rows.iloc[0]["p_value"]
            p = f"; unpaired DeLong against the apparent development AUC, {'P < 0.001' if _finite(value) and float(value) < 0.001 else 'P = ' + format_p(value)}"
        if ext.oof:
            rows = tests[(tests["model"] == model) & (tests["cohort_a"] == ext.oof) & (tests["cohort_b"] == cohort)]
            if len(rows):
                value = rows.iloc[0]["p_value"]
                p += (f", against the out-of-fold one, "
                      f"{'P < 0.001' if _finite(value) and float(value) < 0.001 else 'P = ' + format_p(value)}")
    oof = ext.perf(model, ext.oof) if ext.oof else None
    honest = f", out-of-fold {format_number(oof['auc'])}" if oof is not None else ""
    return (f", {words} its development AUC of {format_number(dev['auc'])} (apparent{honest}{p})"
            if words else "")


def results_performance(ext: ExternalFacts, *, tables: set, figures: set) -> str:
    paragraphs = []
    for cohort in ext.new_cohorts:
        said = [f"{m} {_auc(ext.perf(m, cohort))}{_vs_dev(ext, m, cohort)}" for m in ext.key_models
                if ext.perf(m, cohort) is not None]
        if said:
            paragraphs.append(f"In the {_name(cohort)} cohort the AUCs (95% CI) were: " + "; ".join(said) + ".")
    ref = ("@tbl-2-discrimination gives every model in every cohort, with the operating points at the bundle "
           "thresholds and the P values against development."
           if "tbl-2-discrimination" in tables else "")
    if ref:
        paragraphs.append(ref + " " + threshold_text(ext))
    rocs = []
    if "fig-roc-models" in figures:
        rocs.append("of the key models in @fig-roc-models")
    if "fig-roc-comparators" in figures:
        rocs.append("of the staging systems and indexes in @fig-roc-comparators")
    if rocs:
        paragraphs.append("ROC curves " + _list(rocs) + ".")
    return "\n\n".join(paragraphs) + "\n"


def _models_count(n: int) -> str:
    return f"{n} {'model' if n == 1 else 'models'}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def calibration_sentences(ext: ExternalFacts, cohort: str) -> list[str]:
    """The calibration of the probability models in ``cohort`` in one or two sentences, from
    recalibration.csv (every model's numbers are in Table 3).

    The first names each model whose calibration-in-the-large has a 95% CI excluding 0, in the
    words of :func:`citl_verdict` (:data:`OVER` / :data:`UNDER`), with its estimate, CI and
    observed/expected ratio, and counts the others (:data:`IN_THE_LARGE`); the second names each
    model whose calibration slope has a 95% CI excluding 1, in the words of :func:`slope_verdict`,
    with its numbers, or says that no slope's CI does (then both are one sentence)."""
    table = ext.recalibration
    if table is None:
        return []
    rows = list(table[table["cohort"] == cohort].itertuples(index=False))
    if not rows:
        return []
    flagged, calm, missing, slopes, flat = [], [], [], [], 0
    for row in rows:
        model = _name(row.model)
        verdict = citl_verdict(row.citl, row.citl_ci_low, row.citl_ci_high)
        if verdict in (OVER, UNDER):
            flagged.append(f"{model} {verdict}: calibration-in-the-large "
                           f"{_ci_text(row.citl, row.citl_ci_low, row.citl_ci_high)}, observed/expected "
                           f"{format_number(row.observed_expected)}")
        elif verdict == IN_THE_LARGE:
            calm.append(model)
        else:
            missing.append(f"{model} ({int(row.n)} patients, {int(row.n_events)} events)")
        slope = slope_verdict(row.slope, row.slope_ci_low, row.slope_ci_high)
        if slope.startswith("predictions too"):
            slopes.append(f"{model} {_ci_text(row.slope, row.slope_ci_low, row.slope_ci_high)}, {slope}")
        elif slope != NOT_ESTIMABLE:
            flat += 1
    if flagged:
        large = "; ".join(flagged) + (f"; {IN_THE_LARGE} for the other {_models_count(len(calm))}" if calm else "")
    elif len(calm) == 1:
        large = f"{IN_THE_LARGE} for {calm[0]} (its calibration-in-the-large's 95% CI includes 0)"
    elif calm:
        large = (f"{IN_THE_LARGE} for any of the {len(calm)} "
                 + ("probability models" if not missing else "models with an estimate")
                 + " (each calibration-in-the-large's 95% CI includes 0)")
    else:
        large = ""
    if missing:
        said = f"calibration-in-the-large and slope could not be estimated for {_list(missing)}"
        large = f"{large}; {said}" if large else said
    if slopes:
        slope_text = ("Calibration slope: " + "; ".join(slopes)
                      + ("; every other slope's 95% CI includes 1" if flat else "") + ".")
        return [_capital(large) + ".", slope_text]
    if not flat:
        return [_capital(large) + "."]
    every = "every calibration slope's 95% CI includes 1" if flat > 1 else "its calibration slope's 95% CI includes 1"
    if flagged:
        return [_capital(large) + ".", _capital(every) + "."]
    return [_capital(large) + f", and {every}."]


def results_calibration(ext: ExternalFacts, *, tables: set, figures: set) -> str:
    if not ext.probability_models:
        return "No model of the bundle gives probabilities, so calibration does not apply.\n"
    if ext.recalibration is None:
        return "No recalibration.csv was found in results/, so calibration-in-the-large is not reported.\n"
    paragraphs = []
    for cohort in ext.new_cohorts:
        sentences = calibration_sentences(ext, cohort)
        if sentences:
            n, e = ext.counts(cohort)
            paragraphs.append(f"*{cohort_label(_name(cohort))} cohort* ({n} patients, {e} events, {_rate(n, e)}). "
                              + " ".join(sentences))
    refs = []
    if "tbl-3-calibration" in tables:
        refs.append("every probability model's calibration-in-the-large, slope, observed/expected ratio and Brier "
                    "score are in @tbl-3-calibration")
    curves = [f"@{f}" for f in sorted(figures) if f.startswith("fig-calibration-")]
    if curves:
        refs.append("the key models' calibration curves in " + ", ".join(curves))
    if refs:
        paragraphs.append(_capital(_list(refs)) + ".")
    return "\n\n".join(paragraphs) + "\n"


def results_utility(ext: ExternalFacts, *, figures: set) -> str:
    if "fig-dca-models" not in figures:
        return "No decision curves were drawn: results/decision_curve.csv has none of the key models.\n"
    lo, hi = _dca_range(ext)
    text = (f"Decision curves of the key models in each new cohort over threshold probabilities {lo:.2f}-{hi:.2f}: "
            "@fig-dca-models")
    if "fig-dca-difference" in figures:
        text += (f"; their net benefit minus that of {_name(ext.settings.get('reference'))}, the analysis' reference "
                 "model: @fig-dca-difference")
    return (text + ". A model adds clinical value at a threshold where its curve lies above both treat-all and "
            "treat-none. Every model's net benefit is in results/decision_curve.csv.\n")


def results_survival(ext: ExternalFacts, *, tables: set, figures: set) -> str:
    surv = ext.facts.survival
    if surv is None or surv.empty:
        return "The new study has no follow-up columns, so no time-to-event analysis was made.\n"
    model = ext.facts.km_model
    which = ", the analysis' reference model," if model and model == ext.settings.get("reference") else ""
    said = []
    for k, cohort in enumerate(ext.new_cohorts):
        rows = surv[(surv["model"] == model) & (surv["cohort"] == cohort)]
        if rows.empty:
            continue
        r = rows.iloc[0]
        p = float(r["logrank_p"]) if _finite(r["logrank_p"]) else float("nan")
        said.append(f"in the {_name(cohort)} cohort {format_count(r['n_high'])} of {format_count(r['n'])}"
                    + (" patients were at high risk" if not said else "")
                    + f", hazard ratio {format_ci(r['hr'], r['hr_ci_low'], r['hr_ci_high'], 2)}, log-rank "
                    + ("P < 0.001" if p < 0.001 else f"P = {format_p(r['logrank_p'])}")
                    + f", Harrell's C of the score {format_number(r['c_index'])}")
    text = ""
    if said:
        kms = ["@fig-km"] if "fig-km" in figures else []
        text = (f"The risk groups of {_name(model)}{which} split at its bundle threshold (high risk: score at or "
                f"above it): {'; '.join(said)}" + (f" ({', '.join(kms)})" if kms else "") + ".")
    if "tbl-4-survival" in tables:
        text += " Every model's risk groups: @tbl-4-survival."
    return text.strip() + "\n"


def results_subgroups(ext: ExternalFacts, *, figures: set) -> str:
    forests = [f"@{f}" for f in sorted(figures) if f.startswith("fig-forest-")]
    strata = list(ext.settings.get("strata") or [])
    if not strata or not forests:
        return "No subgroup analysis was made.\n"
    return (f"AUCs of the key models by {_list(_code(x) for x in strata)} in each cohort: " + ", ".join(forests)
            + "; every model's are in results/subgroups.csv.\n")


def limitations(ext: ExternalFacts) -> list[str]:
    """What a reviewer would flag, each from its number."""
    found = []
    for cohort in ext.new_cohorts:
        n, e = ext.counts(cohort)
        if e < MIN_VALIDATION_EVENTS or n - e < MIN_VALIDATION_EVENTS:
            found.append(f"The {_name(cohort)} cohort has {e} events and {n - e} non-events, fewer than the "
                         f"{MIN_VALIDATION_EVENTS} of each recommended for an external validation (Collins et al., "
                         "Stat Med 2016;35:214-226).")
    perf = ext.performance[ext.performance["cohort"].isin(ext.new_cohorts)]
    wide = perf[(perf["auc_ci_high"] - perf["auc_ci_low"]) > MAX_CI_WIDTH]
    for cohort in ext.new_cohorts:
        mine, all_rows = wide[wide["cohort"] == cohort], perf[perf["cohort"] == cohort]
        if mine.empty:
            continue
        if len(mine) == len(all_rows) and len(mine) > 1:
            found.append(f"Every model's AUC 95% CI in the {_name(cohort)} cohort ({len(mine)} models) is wider than "
                         f"{MAX_CI_WIDTH} (the discrimination table).")
        else:
            found.append(f"In the {_name(cohort)} cohort the AUC 95% CI of {_list(_name(m) for m in mine['model'])} "
                         f"{'is' if len(mine) == 1 else 'are each'} wider than {MAX_CI_WIDTH}: "
                         + ", ".join(f"{_name(r.model)} {format_number(r.auc_ci_low)}-{format_number(r.auc_ci_high)}"
                                     for r in mine.itertuples()) + ".")
    found.append("The bundle carries the development cohort's size and events but no patient characteristics, so "
                 "case mix can be compared with development only through the outcome rate and the performance.")
    if ext.study_name.startswith("synthetic"):
        found.append("The data are synthetic: the figures show the method, not clinical evidence.")
    return found


def limitations_md(ext: ExternalFacts) -> str:
    return "Detected from this run's numbers:\n\n" + "\n".join(f"- {x}" for x in limitations(ext)) + "\n"


def reproducibility(ext: ExternalFacts) -> str:
    manifest = ext.bundle.get("manifest") or {}
    software = manifest.get("software") or {}
    prov = (ext.facts.results or {}).get("provenance", {}) or {}
    versions = prov.get("versions") or prov.get("packages") or {}
    lines = [f"Bundle written by dlr {_name(manifest.get('dlr_version', '?'))}"
             + (" with " + ", ".join(f"{_name(k)} {_name(v)}" for k, v in sorted(software.items())) if software else "")
             + "."]
    if isinstance(versions, dict) and versions:
        lines.append("This analysis: " + ", ".join(f"{_name(k)} {_name(v)}" for k, v in sorted(versions.items()))
                     + ".")
    if prov.get("git_sha"):
        lines.append(f"Code: git {str(prov['git_sha'])[:12]}"
                     f"{' (with local changes)' if prov.get('git_modified') else ''}.")
    lines.append("Rendered by {{< meta dlr-renderer >}}.")
    return "\n\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# tables


def characteristics_table(ext: ExternalFacts) -> Optional[DisplayTable]:
    """Table 1 of the new cohorts (:func:`dlr.report.tables.table1`) with the development
    cohort's column: its size, events and event rate from bundle.json, a dash for the
    characteristics the bundle does not carry."""
    base = table1(ext.facts)
    if base is None:
        return None
    frame = base.frame
    n, e = ext.dev_counts
    dev_column = f"Development cohort ({ext.dev_cohort}; bundle, n = {n})"
    group_n = {}
    for column in frame.columns[2:]:
        found = re.search(r"\(n = (\d+)\)$", str(column))
        if found:
            group_n[column] = int(found.group(1))
    outcome = ext.outcome
    event_words = {"early_recurrence": ": ER"}.get(outcome, f": {outcome} = 1")
    patients = {"Characteristic": "Patients", "Level": "", dev_column: str(n)}
    events = {"Characteristic": f"Events ({outcome.replace('_', ' ')})", "Level": "n (%)",
              dev_column: f"{e} ({_rate(n, e)})"}
    totals = {}
    for column, count in group_n.items():
        prefix = _cohort_prefix(column)
        totals[prefix] = totals.get(prefix, 0) + count
    for column in frame.columns[2:]:
        if column in group_n:
            prefix = _cohort_prefix(column)
            patients[column] = str(group_n[column])
            is_event = event_words in str(column)
            events[column] = (f"{group_n[column]} ({_rate(totals[prefix], group_n[column])})" if is_event else DASH)
        else:
            patients[column] = ""
            events[column] = ""
    body = frame.copy()
    body.insert(2, dev_column, DASH)
    top = pd.DataFrame([patients, events], columns=body.columns).fillna("")
    out = pd.concat([top, body], ignore_index=True)
    cohorts = _list(ext.new_cohorts)
    caption = (f"Characteristics of the patients of the {cohorts} cohort{'s' if len(ext.new_cohorts) > 1 else ''} "
               f"of {ext.study_name}, by outcome group, beside the development cohort ({ext.dev_cohort}) as far as "
               "the bundle records it.")
    notes = ("Development cohort: its size, events and event rate as bundle.json records them; the bundle "
             "carries no clinical characteristic of its patients, so they are not shown (—). Event rates: events over "
             "the cohort's patients. " + base.notes)
    return DisplayTable("tbl-1-characteristics", caption, out, notes)


def _cohort_prefix(column) -> str:
    """The cohort part of a Table 1 header ("Validation cohort (n = 33): ER (n = 18)"), "" without one."""
    return str(column).rsplit(": ", 1)[0] if ": " in str(column) else ""


_OPERATING = (("Sensitivity", "sensitivity"), ("Specificity", "specificity"), ("Accuracy", "accuracy"),
              ("PPV", "ppv"), ("NPV", "npv"))


def discrimination_table(ext: ExternalFacts) -> DisplayTable:
    """Every model in the development cohort (apparent), its out-of-fold predictions and each
    new cohort: n (events), AUC with DeLong and bootstrap CIs, the bundle threshold, the
    operating points at it and the unpaired DeLong P against development (cohort_tests.csv)."""
    tests = ext.facts.cohort_tests
    p_of = {}
    if tests is not None:
        for row in tests.itertuples(index=False):
            p_of[(row.model, row.cohort_a, row.cohort_b)] = row.p_value
    columns = (["Model", "Cohort", "n (events)", "AUC (95% CI)", "AUC bootstrap 95% CI", "Threshold (bundle)"]
               + [name for name, _ in _OPERATING] + ["P vs development"]
               + (["P vs development (out-of-fold)"] if ext.oof else []))
    role = "" if ext.dev.lower() == "development" else "development, "  # not "Development (development, ...)"
    order = [(ext.dev, f"{cohort_label(ext.dev)} ({role}apparent)")]
    if ext.oof:
        order.append((ext.oof, f"{cohort_label(ext.dev)} ({role}out-of-fold)"))
    order += [(c, cohort_label(c)) for c in ext.new_cohorts]
    rows = []
    for model in ext.models:
        first = True
        for cohort, label in order:
            r = ext.perf(model, cohort)
            if r is None:
                continue
            boot = (f"{format_number(r['auc_boot_low'])}–{format_number(r['auc_boot_high'])}"
                    if _finite(r.get("auc_boot_low")) and _finite(r.get("auc_boot_high")) else "NA")
            line = [model if first else "", label, f"{format_count(r['n'])} ({format_count(r['n_events'])})",
                    format_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"]), boot,
                    format_number(r.get("threshold"), 3)]
            line += [format_ci(r.get(key), r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")) for _, key in _OPERATING]
            for against in [ext.dev] + ([ext.oof] if ext.oof else []):
                key = (model, against, cohort)
                line.append((format_p(p_of[key]) if key in p_of else "NA") if cohort in ext.new_cohorts else DASH)
            rows.append(line)
            first = False
    frame = pd.DataFrame(rows, columns=columns)
    notes = " ".join(x for x in (
        "AUC with DeLong 95% CI and stratified percentile bootstrap 95% CI "
        f"(B = {ext.settings.get('n_bootstrap', '?')}).",
        "Sensitivity, specificity, accuracy, PPV and NPV (Wilson 95% CIs) at each model's threshold, chosen on the "
        "development cohort and carried in the bundle unchanged (performance.csv's threshold_source: bundle); "
        "index models' thresholds are on their own scale.",
        f"P vs development: unpaired DeLong test of the model's AUC in the new cohort against its AUC in the "
        f"{ext.dev} cohort (apparent" + (", and against its out-of-fold AUC there" if ext.oof else "")
        + "; results/cohort_tests.csv).",
        f"{order[0][1]}: the models scored the patients they were fitted on "
        "(optimistic)" + ("; out-of-fold: nested cross-validation, the honest development estimate." if ext.oof
                         else "."),
        "AUC, area under the ROC curve; CI, confidence interval; PPV, positive predictive value; NPV, negative "
        "predictive value.") if x)
    caption = (f"Discrimination of every model of the bundle in the development cohort and in the "
               f"{_list(ext.new_cohorts)} cohort{'s' if len(ext.new_cohorts) > 1 else ''}: AUC, and sensitivity, "
               "specificity, accuracy, PPV and NPV (95% CI) at the thresholds carried from development.")
    return DisplayTable("tbl-2-discrimination", caption, frame, notes)


def _short_verdict(verdict: str) -> str:
    """A :func:`citl_verdict` for the table's narrow column: "no evidence" for :data:`IN_THE_LARGE`."""
    return "no evidence" if verdict == IN_THE_LARGE else verdict


def calibration_table(ext: ExternalFacts) -> Optional[DisplayTable]:
    """recalibration.csv beside performance.csv's Brier score, one row per probability model
    and new cohort, with the calibration-in-the-large in words (:func:`citl_verdict`)."""
    table = ext.recalibration
    if table is None or table.empty:
        return None
    rows = []
    for cohort in ext.new_cohorts:
        for model in ext.probability_models:
            sel = table[(table["model"] == model) & (table["cohort"] == cohort)]
            if sel.empty:
                continue
            r = sel.iloc[0]
            perf = ext.perf(model, cohort)
            rows.append([model, cohort_label(cohort), f"{format_count(r['n'])} ({format_count(r['n_events'])})",
                         format_number(r["observed_expected"]),
                         format_ci(r["citl"], r["citl_ci_low"], r["citl_ci_high"]),
                         format_ci(r["slope"], r["slope_ci_low"], r["slope_ci_high"]),
                         format_number(perf.get("brier")) if perf is not None else "NA",
                         _short_verdict(citl_verdict(r["citl"], r["citl_ci_low"], r["citl_ci_high"]))])
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["Model", "Cohort", "n (events)", "Observed/expected",
                                        "Calibration-in-the-large (95% CI)", "Calibration slope (95% CI)",
                                        "Brier score", "In the large"])
    notes = ("Calibration-in-the-large: intercept a of logit P(y = 1) = a + logit p (offset logistic regression); "
             "a < 0, predictions too high on average; a > 0, too low; recalibration-in-the-large would add a to every "
             "logit. Slope: b of logit P(y = 1) = a' + b logit p; b < 1, predictions too extreme. Wald 95% CIs "
             "(results/recalibration.csv); Brier score from results/performance.csv. In the large: "
             "\"over-predicts\" / \"under-predicts\", a below / above 0 with a CI excluding 0; \"no evidence\" (of "
             "miscalibration in the large), a CI including 0.")
    caption = "Calibration of the probability models in the new cohorts, as applied from the bundle (not recalibrated)."
    return DisplayTable("tbl-3-calibration", caption, frame, notes)


def survival_table(ext: ExternalFacts) -> Optional[DisplayTable]:
    surv = ext.facts.survival
    if surv is None or surv.empty:
        return None
    rows = []
    for model in ext.models:
        for cohort in ext.new_cohorts:
            sel = surv[(surv["model"] == model) & (surv["cohort"] == cohort)]
            if sel.empty:
                continue
            r = sel.iloc[0]
            rows.append([model, cohort_label(cohort), f"{format_count(r['n'])} ({format_count(r['n_events'])})",
                         format_count(r["n_high"]), f"{format_number(r['c_index'])} ({format_number(r['c_index_se'])})",
                         format_ci(r["hr"], r["hr_ci_low"], r["hr_ci_high"], 2), format_p(r["logrank_p"])])
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["Model", "Cohort", "n (events)", "High risk, n", "Harrell's C (SE)",
                                        "HR high vs low (95% CI)", "Log-rank P"])
    notes = ("Events: the follow-up's event column. High risk: score at or above the bundle threshold. HR, Cox hazard ratio of the high-risk group (Efron "
             "ties, Wald CI); results/survival.csv.")
    return DisplayTable("tbl-4-survival", "Time to recurrence in the new cohorts by the risk groups of each model "
                                          "at its development threshold.", frame, notes)


# ------------------------------------------------------------------------------------------
# figures (drawn from results/ by report/external_figures.py)


def _dca_range(ext: ExternalFacts) -> tuple:
    """The decision curves' threshold probabilities: results.json's, else the analysis' shown range."""
    return tuple(ext.settings.get("decision_curve_range") or _shown_range())


def report_figures(ext: ExternalFacts, out, *, dpi: int = 300) -> list[ReportFigure]:
    """The report's figures, drawn into ``out`` from RUN2's results
    (:func:`dlr.report.external_figures.draw_external_figures`), in order, with their captions."""
    return draw_external_figures(ext, out, dca_range=_dca_range(ext), dpi=dpi)


# ------------------------------------------------------------------------------------------
# TRIPOD+AI for an evaluation-only study


def tripod_facts(ext: ExternalFacts) -> dict:
    """The facts of :func:`dlr.report.tripod.tripod_checklist` for an external validation."""
    n, e = ext.dev_counts
    counts = [f"development ({ext.dev_cohort}, bundle) {n} patients, {e} events ({_rate(n, e)})"]
    counts += [f"{c} {_cohort_counts_text(ext, c)}" for c in ext.new_cohorts]
    out = {
        "title": report_title(ext),
        "study_type": (f"external validation (evaluation only) of frozen models developed on the {ext.dev_cohort} "
                       "cohort"),
        "data_source": ("synthetic study generated by dlr synth" if ext.study_name.startswith("synthetic") else
                        f"study folder {ext.study_name}") + "; development data: the model bundle",
        "cohorts": "; ".join(counts),
        "participants_flow": _flow_text(ext),
        "outcome": f"{ext.outcome} (1 = event) as recorded in the new study's clinical table",
        "predictors": f"the bundle's predictors, unchanged, for {_list(ext.models)}",
        "predictor_handling": ("preprocessing, PyRadiomics parameters, harmonisation, levels and cut points as the "
                               "bundle carries them; " + _recodes_text(ext)[:1].lower() + _recodes_text(ext)[1:]),
        "sample_size": "; ".join(
            f"every patient of the {c} cohort: {ext.counts(c)[1]} events and {ext.counts(c)[0] - ext.counts(c)[1]} "
            f"non-events (at least {MIN_VALIDATION_EVENTS} of each are recommended, Collins et al. 2016)"
            for c in ext.new_cohorts),
        "class_imbalance": "none in this evaluation: no model was refitted, and the predictions are reported as the "
                           "bundle gives them",
        "performance_measures": methods_performance(ext).strip().replace("\n\n", " "),
        "model_updating": ("none: every model was applied exactly as in the bundle, with the development thresholds; "
                           "calibration-in-the-large and slope (recalibration-in-the-large) reported in "
                           "results/recalibration.csv, not applied"),
        "model_output": "predicted probability or index, classified at the development threshold carried in the bundle",
        "participant_characteristics": "Table 1 (the new cohorts by outcome group, beside the development cohort's "
                                       "size and events)",
        "model_specification": (f"the frozen model bundle {Path(str(ext.bundle.get('source', '?'))).name} (manifest "
                                f"with the SHA-256 of each of its {len((ext.bundle.get('manifest') or {}).get('members') or {})} "
                                "members), applied by dlr predict"),
        "limitations": " ".join(limitations(ext)),
        "software": reproducibility(ext).split("\n\n")[0],
        "data_availability": "RUN2/predictions.csv and RUN2/results/ (pseudonymised predictions and results)",
    }
    strata = list(ext.settings.get("strata") or [])
    if strata:
        out["fairness"] = f"AUC by {', '.join(strata)} (results/subgroups.csv), unpaired DeLong between levels"
    perf = [f"{m}: " + "; ".join(f"{c} {_auc(ext.perf(m, c))}" for c in ext.new_cohorts if ext.perf(m, c) is not None)
            for m in ext.key_models]
    if perf:
        out["performance"] = ". ".join(perf)
    said = {c: " ".join(calibration_sentences(ext, c)) for c in ext.new_cohorts}
    cal = " ".join(f"Calibration in the {c} cohort: "
                   + (text[:1].lower() + text[1:] if text.startswith(_capital(IN_THE_LARGE)) else text)
                   for c, text in said.items() if text)
    if cal:
        out["calibration"] = cal
    if ext.facts.results is not None:
        lo, hi = ext.settings.get("decision_curve_range") or _shown_range()
        out["clinical_utility"] = f"decision curves over threshold probabilities {lo:.2f}-{hi:.2f} (Figures)"
    rates = ", ".join([f"development {_rate(n, e)}"] + [f"{c} {_rate(*ext.counts(c))}" for c in ext.new_cohorts])
    out["comparison_development_evaluation"] = (
        f"outcome rates {rates}; each model's AUC in each new cohort tested against development (unpaired DeLong, "
        "Table 2); the bundle carries no development patient characteristics, so predictor distributions are "
        "compared with development only through the outcome rate and the models' performance")
    prov = (ext.facts.results or {}).get("provenance", {}) or {}
    manifest = ext.bundle.get("manifest") or {}
    out["code_availability"] = (f"dlr predict; bundle written by dlr {manifest.get('dlr_version', '?')}"
                                + (f"; analysis git {str(prov['git_sha'])[:12]}" if prov.get("git_sha") else ""))
    # plain text: the checklist escapes its cells itself (no code spans, emphasis or escapes)
    return {k: re.sub(r"\\(.)", r"\1", str(v).replace("`", "").replace("**", "")) for k, v in out.items() if v}


def _flow_text(ext: ExternalFacts) -> str:
    """Who was scored: each new cohort's patients by every model (performance.csv's n)."""
    said = []
    for cohort in ext.new_cohorts:
        rows = ext.performance[ext.performance["cohort"] == cohort]
        sizes = sorted(set(int(n) for n in rows["n"]))
        said.append(f"{cohort}: {sizes[0]} patients scored by each of the {rows['model'].nunique()} models"
                    if len(sizes) == 1 else
                    f"{cohort}: {sizes[0]}-{sizes[-1]} patients per model (Table 2)")
    return "; ".join(said)


def evaluation_checklist(facts: dict, *, abstract: bool = False) -> pd.DataFrame:
    """:func:`dlr.report.tripod.tripod_checklist` for an evaluation-only study: the items that
    concern model development only (``applies`` = ``"D"``) are :data:`NOT_APPLICABLE`, and each
    item's section is one of this report's."""
    frame = tripod_checklist(facts, abstract=abstract)
    applies = {entry.item: entry.applies for entry in (TRIPOD_AI_ABSTRACT if abstract else TRIPOD_AI)}
    development = frame["item"].map(applies).eq("D")
    frame.loc[development, "status"] = NOT_APPLICABLE
    frame.loc[development, "value"] = NOT_APPLICABLE_WHY
    frame.loc[development, "authors_add"] = ""
    frame["report_section"] = frame["report_section"].map(lambda s: SECTION_OF.get(s, s))
    frame.insert(frame.columns.get_loc("status"), "applies", frame["item"].map(applies))
    return frame


# ------------------------------------------------------------------------------------------
# sources, rendering


def _figure_block(figure: ReportFigure) -> str:
    caption = figure.caption.replace("\n", " ").strip()
    return f"![{caption}]({GENERATED}/figures/{figure.stem}.png){{#{figure.id}}}\n"


def prepare_external_sources(run2, source, *, renderer: str) -> dict:
    """Write ``source/_generated/`` (text, tables, figures, checklists, values.yml) from RUN2.

    Returns a dict with ``ext`` (:class:`ExternalFacts`), the ``tables`` and ``figures`` made
    and the checklist frames ``tripod`` and ``tripod_abstract``.
    """
    ext = read_external(run2)
    source = Path(source)
    gen = source / GENERATED
    if gen.exists():
        shutil.rmtree(gen)
    for sub in ("tables", "figures", "text"):
        (gen / sub).mkdir(parents=True)

    made = {}
    for table in (characteristics_table(ext), discrimination_table(ext), calibration_table(ext), survival_table(ext)):
        if table is not None:
            made[table.id] = table
    for slot in TABLE_SLOTS:
        (gen / "tables" / f"{slot}.md").write_text(pipe_table(made[slot]) if slot in made else "")

    figures = report_figures(ext, gen / "figures")
    for group in FIGURE_GROUPS:
        (gen / "figures" / f"{group}.md").write_text("\n".join(_figure_block(f) for f in figures if f.group == group))

    tables, labels = set(made), {f.id for f in figures}
    sections = {
        "summary": summary(ext),
        "methods-data": methods_data(ext),
        "methods-models": methods_models(ext),
        "methods-performance": methods_performance(ext),
        "results-participants": results_participants(ext, tables=tables),
        "results-performance": results_performance(ext, tables=tables, figures=labels),
        "results-calibration": results_calibration(ext, tables=tables, figures=labels),
        "results-utility": results_utility(ext, figures=labels),
        "results-survival": results_survival(ext, tables=tables, figures=labels),
        "results-subgroups": results_subgroups(ext, figures=labels),
        "limitations": limitations_md(ext),
        "reproducibility": reproducibility(ext),
    }
    for name in TEXT_SECTIONS:
        (gen / "text" / f"{name}.md").write_text(sections[name])

    facts = tripod_facts(ext)
    checklist = evaluation_checklist(facts)
    checklist_abstract = evaluation_checklist(facts, abstract=True)
    (gen / "text" / "tripod.md").write_text(
        checklist_markdown(checklist) + "\n\n: TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) for an "
        "external validation: each item, the section addressing it and what the run fills; items on model "
        "development only are not applicable {#tbl-s-tripod}\n")
    (gen / "text" / "tripod-abstract.md").write_text(
        checklist_markdown(checklist_abstract) + "\n\n: TRIPOD+AI for Abstracts checklist {#tbl-s-tripod-abstract}\n")
    manifest = ext.bundle.get("manifest") or {}
    title = getattr(ext.facts.config, "title", None)
    values = {
        "title": report_title(ext),
        "subtitle": (f"Run {Path(run2).resolve().name}" + (f" of {title}" if title else "")
                     + f": the bundle of dlr {manifest.get('dlr_version', '?')} applied by dlr predict"),
        "dlr-run": Path(run2).resolve().name,
        "dlr-renderer": renderer,
        "dlr": {"has-survival": ext.facts.survival is not None and not ext.facts.survival.empty,
                "has-subgroups": any(f.group == "forest" for f in figures)},
    }
    (gen / "values.yml").write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    return {"ext": ext, "tables": tables, "figures": figures, "tripod": checklist,
            "tripod_abstract": checklist_abstract}


def copy_external_sources(target: Path) -> None:
    """The external report's Quarto project: report/external/ and the shared report.css."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copyfile(SOURCES / name, target / name)
    shutil.copyfile(CSS, target / "report.css")
    (target / "_quarto.yml").write_text("project:\n  type: default\n")


def build_external_report(run2, *, formats=("html", "docx"), renderer: str = "auto"):
    """Render ``RUN2/report/`` (the external-validation report) from a `dlr predict` run's files.

    Parameters
    ----------
    run2 : path-like
        The run folder `dlr predict` wrote (``inputs/bundle.json``, ``inputs/study.yaml``,
        ``predictions.csv``, ``clinical/``, ``results/`` with ``recalibration.csv``).
    formats : sequence of {"html", "docx"}
    renderer : {"auto", "quarto", "pandoc"}
        As :func:`dlr.report.render.render_report`: Quarto when on PATH, else the pandoc fallback.

    Returns
    -------
    RenderResult
        The renderer, the documents written (``RUN2/report/index.html``, ``index.docx``) and
        the warnings. ``RUN2/report/`` also gets ``tripod_ai.csv``, ``tripod_ai_abstract.csv``,
        ``audit.csv`` (:func:`dlr.report.audit.audit_report`: every number of the HTML traced to a
        cell of the run's files, every worded comparison checked; failures become warnings) and
        ``figures/``; the folder is replaced at once, only when everything rendered.
    """
    from dlr.core.output import staged_folder

    from .audit import AUDIT_FILE, audit_report, failures
    from .manuscript import finish_docx
    from .render import render_report, renderer_name

    run2 = Path(run2)
    formats = tuple(formats or ("html", "docx"))
    unknown = [f for f in formats if f not in ("html", "docx")]
    if unknown:
        raise InputError(f"formats: unknown format(s) {', '.join(unknown)}; the formats are html, docx")
    name = renderer_name(renderer)
    with tempfile.TemporaryDirectory(prefix=".report-", dir=run2) as tmp:
        src = Path(tmp) / "src"
        copy_external_sources(src)
        made = prepare_external_sources(run2, src, renderer=name)
        logger.info(f"external report: rendering {', '.join(formats)} with {name}")
        with staged_folder(run2 / "report") as out:
            result = render_report(src, out, formats=formats, renderer=renderer)
            if "docx" in formats:
                finish_docx(out / "index.docx", title=report_title(made["ext"]),
                            authors=list(getattr(made["ext"].facts.config, "authors", []) or []))
            warnings = list(result.warnings)
            if "html" in formats:  # every number found in the run's files, every comparison checked
                facts = made["ext"].facts  # the staged report lies inside the run: read by its one reader
                audit = audit_report(facts, facts.text((out / "index.html").relative_to(facts.run)))
                write_csv(audit, out / AUDIT_FILE)
                warnings += [f"report audit: {row.check}: {row.quoted!r}: {row.why}"
                             for row in failures(audit).itertuples(index=False)]
            write_csv(made["tripod"], out / "tripod_ai.csv")
            write_csv(made["tripod_abstract"], out / "tripod_ai_abstract.csv")
            shutil.copytree(src / GENERATED / "figures", out / "figures", ignore=shutil.ignore_patterns("*.md"))
    final = tuple(run2 / "report" / Path(p).name for p in result.outputs)
    return type(result)(result.renderer, final, tuple(warnings))


__all__ = ["build_external_report", "prepare_external_sources", "read_external", "ExternalFacts",
           "citl_verdict", "slope_verdict", "evaluation_checklist"]
