"""The report's prose, written from a run's saved results (:class:`dlr.report.facts.RunFacts`).

Each function returns Markdown for one section, naming only the tables and figures that exist
(``tables`` and ``figures``: the labels the build made). Rounding happens here, for display:
AUC 3 decimals, P < 0.001. :func:`limitations` detects what a reviewer would flag, each with
its number; :func:`tripod_facts` fills the TRIPOD+AI checklist.
"""
from __future__ import annotations

import math
import platform
from typing import Optional

import numpy as np
import pandas as pd

from dlr.analysis.decision_curve import SHOWN_RANGE
from dlr.core import run_folder as rf

from .facts import COMPARATORS, RunFacts
from .tables import markdown_text

#: a calibration slope outside this range is reported as a limitation
SLOPE_RANGE = (0.8, 1.2)
#: Collins et al. (2016) recommend at least 100 events (and 100 non-events) to validate a model
MIN_VALIDATION_EVENTS = 100
#: an AUC CI wider than this is reported as imprecise
MAX_CI_WIDTH = 0.2


def num(value, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "NA"
    if not math.isfinite(value):
        return "NA"
    return f"{value:.{digits}f}"


def pval(p) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "NA"
    if not math.isfinite(p):
        return "NA"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def auc_text(row: Optional[pd.Series]) -> str:
    if row is None:
        return "not available"
    return f"{num(row['auc'])} (95% CI {num(row['auc_ci_low'])}-{num(row['auc_ci_high'])})"


def _cohort_label(name: str) -> str:
    return name[:1].upper() + name[1:]


def _list(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ref(label: str, present: set) -> str:
    return f"@{label}" if label in present else ""


def _events(facts: RunFacts) -> str:
    counts = facts.cohort_counts()
    parts = [f"the {c} cohort{' had' if i == 0 else ''} {n} patients ({e} events, {100 * e / n:.1f}%)"
             for i, (c, (n, e)) in enumerate(counts.items())]
    if not parts:
        return ""
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[:1].upper() + text[1:]


def key_models(facts: RunFacts) -> list:
    """The models of Table 4, in order: CR, the best radiomics model, DL, RCR, DLRCR (those present)."""
    names = facts.model_names
    order = ["CR", facts.best_radiomics, "DL-ResNet10", "DL-ResNet18", "DL-ResNet34", "RCR", "DLRCR"]
    return [m for m in dict.fromkeys(order) if m and m in names]


# --------------------------------------------------------------------------------------------
# Abstract


#: the structured abstract's limit (most journals': 250 words)
ABSTRACT_WORDS = 250


def _paired(facts: RunFacts, model: str, cohort: str) -> list[tuple[str, float, float]]:
    """(other model, ``model``'s AUC minus the other's, Holm-adjusted P) of every paired DeLong
    test of ``model`` in ``cohort`` (comparisons.csv)."""
    c = facts.comparisons
    if c is None or cohort is None:
        return []
    out = []
    for r in c[c["cohort"] == cohort].itertuples(index=False):
        if model in (r.model_a, r.model_b):
            sign = 1.0 if r.model_a == model else -1.0
            out.append((r.model_b if sign > 0 else r.model_a, sign * float(r.diff), float(r.p_adjusted)))
    return out


def abstract(facts: RunFacts, *, tables: set, figures: set) -> str:
    """A structured abstract within :data:`ABSTRACT_WORDS` words: the key model (the analysis'
    reference, the highest nested out-of-fold AUC) with its out-of-fold and validation AUCs and
    CIs, how it compared with the others by the paired tests after multiplicity ("highest", never
    "best", unless every difference is significant), and the staging systems."""
    cfg = facts.config
    outcome = getattr(cfg, "outcome_column", "the outcome").replace("_", " ")
    phases = list(getattr(cfg, "phases", []) or [])
    dev, oof = facts.dev_cohort, facts.oof_cohort
    others = [c for c in facts.cohorts if c != dev]
    lines = ["**Purpose.** To develop and validate models predicting "
             f"{outcome} from clinical-radiological factors"
             + (f" and {len(phases)}-phase imaging" if phases else "")
             + ", and to compare them with staging systems."]
    method = [f"{_events(facts)}."] if facts.performance is not None else []
    arms = ["a clinical-radiological (CR) logistic model"]
    if facts.has_radiomics:
        counts = facts.selection_counts
        extracted = f" ({int(counts['n_features'].iloc[0])} features reduced to {int(counts['n_features'].iloc[-1])})" \
            if counts is not None and len(counts) else ""
        arms.append(f"five radiomics classifiers{extracted}")
    if facts.has_deep:
        arms.append("three ResNets")
    arms.append("combined models")
    method.append(f"We fitted {_list(arms)} on the {dev} cohort only, estimated their development performance by "
                  "nested out-of-fold predictions and compared AUCs by paired DeLong tests with Holm adjustment.")
    lines.append("**Methods.** " + " ".join(method))
    best = facts.best_model
    results, all_significant = [], None
    if best and facts.perf(best, oof or dev) is not None:
        where = "out of fold" if oof else f"in the {dev} cohort (apparent)"
        text = f"{best} had the highest AUC {where}: {auc_text(facts.perf(best, oof or dev))}"
        text += "".join(f"; {c} cohort {auc_text(facts.perf(best, c))}" for c in others
                        if facts.perf(best, c) is not None)
        results.append(text + ".")
        tests = [t for t in _paired(facts, best, oof or dev) if t[0] in facts.model_names
                 and t[0] not in COMPARATORS]
        if tests:
            worse = [m for m, d, p in tests if d > 0 and p < 0.05]
            similar = [m for m, d, p in tests if not (d > 0 and p < 0.05)]
            all_significant = not similar
            if similar:
                results.append(f"Its out-of-fold AUC did not differ significantly from that of {len(similar)} of the "
                               f"{len(tests)} other models (Holm-adjusted P ≥ 0.05"
                               + (f"; significantly higher than {_list(worse)}" if worse and len(worse) <= 3 else "")
                               + ").")
            else:
                results.append(f"It was significantly better than each of the {len(tests)} other models "
                               "(Holm-adjusted P < 0.05).")
    results += _staging_abstract(facts, others)
    if results:
        lines.append("**Results.** " + " ".join(results))
    if best:
        rows = {c: facts.perf(best, c) for c in others if facts.perf(best, c) is not None}
        above = [c for c, row in rows.items() if float(row["auc_ci_low"]) > 0.5]
        within = [c for c in rows if c not in above]
        if above:
            first = f"{best} discriminated {outcome} better than chance in the {_cohorts_text(above)}"
            if within:
                first += (f" but not in the {_cohorts_text(within)} (CI{'s include' if len(within) > 1 else ' includes'}"
                          " 0.5)")
        elif within:
            first = (f"{best}'s discrimination in the {_cohorts_text(within)} did not exceed chance "
                     f"({'their CIs include' if len(within) > 1 else 'its CI includes'} 0.5)")
        else:
            first = f"{best} had the highest development AUC"
        verdict = {True: "it was significantly better than every other model.",
                   False: "its advantage over the other models was within chance, so no single model is shown to be "
                          "best.",
                   None: "no paired comparison of the models was analysed."}[all_significant]
        lines.append(f"**Conclusion.** {first}; {verdict} Generated from the run; the authors write the "
                     "interpretation.")
    return "\n\n".join(lines) + "\n"


def _cohorts_text(cohorts) -> str:
    """``"validation cohort"``; ``"validation, external-A and external-B cohorts"``."""
    return f"{_list(cohorts)} cohort{'s' if len(cohorts) > 1 else ''}"


def _staging_abstract(facts: RunFacts, others: list) -> list[str]:
    """The abstract's sentence on the staging systems and indexes: their AUCs in the cohort other
    than the development one, or in each of several (the first three systems, then a count)."""
    present = [c for c in others if any(facts.perf(m, c) is not None for m in COMPARATORS)]
    staging = [m for m in COMPARATORS if m in facts.model_names and present
               and all(facts.perf(m, c) is not None for c in present)]
    if not staging:
        return []
    more = f" (and {len(staging) - 3} more)" if len(staging) > 3 else ""
    if len(present) == 1:
        shown = ", ".join(f"{m} {num(facts.perf(m, present[0])['auc'])}" for m in staging[:3])
        return [f"Staging systems and indexes in the {present[0]} cohort: AUC {shown}{more}."]
    shown = "; ".join(f"{m} " + ", ".join(num(facts.perf(m, c)["auc"]) for c in present) for m in staging[:3])
    return [f"Staging systems and indexes, AUC in the {_cohorts_text(present)} in that order: {shown}{more}."]


# --------------------------------------------------------------------------------------------
# Methods


def methods_data(facts: RunFacts) -> str:
    cfg = facts.config
    info = facts.info
    name = getattr(cfg, "name", None) or "the study"
    synthetic = str(name).startswith("synthetic")
    text = [f"The study folder *{name}* was analysed by `dlr run` (profile *{info.get('profile', '?')}*, "
            f"seed {info.get('seed', '?')})."]
    if synthetic:
        text.append("**These data are synthetic**: `dlr synth` generated them to mirror the reference study "
                    "(Zhao et al., Front Oncol 2024), with known true risks; no patient is real.")
    text.append("The data's source, dates and setting are for the authors to state (TRIPOD+AI items 5a-5b).")
    return " ".join(text) + "\n"


def methods_participants(facts: RunFacts) -> str:
    cfg = facts.config
    cohorts = list(getattr(cfg, "cohorts", []) or facts.cohorts)
    text = [f"Patients were assigned to the cohorts {', '.join(cohorts)} by the study's `{getattr(cfg, 'cohort_column', 'cohort')}` "
            f"column; every fitted quantity (scalers, feature selection, tuning, thresholds, recalibration) "
            f"used the {facts.dev_cohort} cohort only."]
    if facts.split is not None:
        dev = facts.split[facts.split["cohort"] == facts.dev_cohort]
        text.append(f"The {len(dev)} development patients were divided once into {dev['fold'].nunique()} stratified "
                    f"folds (seed {facts.info.get('seed', '?')}, `split.csv`), shared by every model.")
    return " ".join(text) + "\n"


def methods_outcome(facts: RunFacts) -> str:
    cfg = facts.config
    outcome = getattr(cfg, "outcome_column", "outcome")
    return (f"The outcome was `{outcome}` (1 = event, 0 = no event) as recorded in the clinical table. "
            "Its clinical definition, timing and blinding of its assessment are for the authors to state.\n")


def methods_predictors(facts: RunFacts) -> str:
    cfg = facts.config
    lines = []
    variables = list(getattr(cfg, "variables", []) or [])
    if variables:
        cuts = [f"{v.name} (cut point {v.cut_point:g}{' ' + v.unit if getattr(v, 'unit', None) else ''})"
                for v in variables if getattr(v, "cut_point", None) is not None]
        candidates = [v for v in variables if getattr(v, "candidate", True)]
        others = [v for v in variables if not getattr(v, "candidate", True)]
        lines.append(f"Clinical and radiological candidates of the CR model ({len(candidates)} variables): "
                     f"{', '.join(v.name for v in candidates)}."
                     + (f" Recorded but not candidates (inputs of the staging systems and indexes): "
                        f"{', '.join(v.name for v in others)}." if others else "")
                     + (f" Continuous variables were dichotomised at study.yaml's cut points: {', '.join(cuts)}." if cuts else ""))
    recodes = _recodes_text(facts)
    if recodes:
        lines.append(recodes)
    phases = list(getattr(cfg, "phases", []) or [])
    if phases and facts.preprocessing is not None:
        pre = facts.preprocessing
        spacing = pre.get("spacing", pre.get("preprocessing", {}).get("spacing") if isinstance(pre.get("preprocessing"), dict) else None)
        lines.append(f"Imaging phases: {', '.join(phases)}. Each phase was resampled to "
                     f"{' x '.join(f'{float(s):g}' for s in spacing) if spacing else 'the configured'} mm (linear; masks "
                     f"nearest neighbour) around the tumour and z-score normalised before PyRadiomics extraction "
                     f"(Original, Wavelet and LoG images; settings in `features/radiomics_params.yaml`).")
        if facts.extraction_log is not None:
            log = facts.extraction_log
            ok = int((log["status"] == "ok").sum())
            lines.append(f"{ok} of {len(log)} image-mask cases were extracted"
                         + (f"; {len(log) - ok} failed and were left empty" if ok < len(log) else "") + ".")
    return "\n\n".join(lines) + "\n"


def _recodes_text(facts: RunFacts) -> str:
    """Each recode of study.yaml and the patients it touched per cohort, from ``clinical/recodes.csv``
    (one row per variable, raw value, level and cohort); empty when nothing was recoded."""
    table = facts.table("clinical/recodes.csv", dtype={"from": str, "to": str, "cohort": str, "patient_ids": str})
    if table is None or table.empty:
        return ""
    said = []
    for (variable, raw, level), rows in table.groupby(["variable", "from", "to"], sort=False):
        touched = rows[rows["n_patients"] > 0]
        counts = [f"{int(r.n_patients)} {'patient' if int(r.n_patients) == 1 else 'patients'} of the "
                  f"{markdown_text(r.cohort)} cohort" for r in touched.itertuples(index=False)]
        said.append(f"{markdown_text(variable)} '{markdown_text(raw)}' as '{markdown_text(level)}' "
                    f"({_list(counts) if counts else 'no patient'})")
    return ("Before any table or model, raw values were recoded to declared levels as study.yaml's `recode` "
            f"says (`clinical/recodes.csv` names the patients): {'; '.join(said)}.")


def methods_sample_size(facts: RunFacts) -> str:
    if facts.sample_size is None or facts.sample_size.empty:
        return "No sample-size calculation was made in this run.\n"
    s = facts.sample_size.iloc[0]
    return (f"Riley et al.'s criteria for {int(s['parameters'])} candidate parameters, an outcome prevalence of "
            f"{num(s['prevalence'])} and an anticipated Cox-Snell R² of {num(s['r2_cs'])} require at least "
            f"{int(s['n_required'])} patients ({num(s['events_required'], 1)} events, "
            f"{num(s['epp_required'], 1)} events per parameter); the development cohort has "
            f"{int(s['n_available']) if pd.notna(s['n_available']) else 'NA'} patients "
            f"({int(s['events_available']) if pd.notna(s['events_available']) else 'NA'} events).\n")


def methods_missing(facts: RunFacts) -> str:
    text = ["Missing clinical values were filled with the development cohort's median (continuous) or mode "
            "(categorical) inside the modelling chain, so that no validation value informed the fill."]
    table1 = facts.table("clinical/table1.csv", dtype=str)
    if table1 is not None and len(table1):
        counted = [c for c in table1.columns[2:]]
        sizes = table1[table1["variable"] == "n"]
        total = int(sum(float(sizes.iloc[0][c]) for c in counted)) if len(sizes) else None
        missing = table1[table1["level"] == "missing"]
        per = {row["variable"]: sum(int(str(row[c]).split()[0]) for c in counted if str(row[c]).split())
               for _, row in missing.iterrows()}
        per = {k: v for k, v in per.items() if v}
        if per:
            text.append("Missing values per variable (all cohorts): " + ", ".join(
                f"{k} {v}" + (f" ({100 * v / total:.1f}%)" if total else "") for k, v in per.items()) + ".")
        elif total:
            text.append(f"No value of a Table 1 variable was missing ({total} patients).")
    if facts.staging_missing is not None and len(facts.staging_missing):
        per = facts.staging_missing.groupby("system").size() if "system" in facts.staging_missing else None
        if per is not None:
            text.append("Staging systems could not be computed for some patients for want of inputs: "
                        + ", ".join(f"{k} {v}" for k, v in per.items()) + " (`staging/staging_missing.csv`).")
    return " ".join(text) + "\n"


def methods_models(facts: RunFacts, *, figures: set, tables: frozenset = frozenset()) -> str:
    lines = [f"**Not fitted: {models}.** {reason[:1].upper()}{reason[1:]}; "
             f"{'these models were' if ',' in models else 'this model was'} left out of every table and figure."
             for models, reason in facts.left_out]
    if facts.selected or facts.univariate is not None:
        lines.append("**Clinical-radiological (CR) model.** Candidates with univariate P < 0.05 (Wald) entered a "
                     "multivariate logistic model; those with multivariate P < 0.05 formed the CR model"
                     + (f": {_list(facts.selected)}." if facts.selected else " (none qualified)."))
    if facts.selection_counts is not None and len(facts.selection_counts):
        steps = " → ".join(f"{r.step} {int(r.n_features)}" for r in facts.selection_counts.itertuples())
        fig = " (@fig-selection-flow)" if "fig-selection-flow" in figures else ""
        lines.append(f"**Radiomics.** Features were selected on the development cohort only: {steps}{fig}: "
                     "reproducibility between two readers' masks (ICC(2,1) > 0.90), a t test or Mann-Whitney U "
                     "test (P < 0.05), then LASSO logistic regression with 5-fold cross-validation"
                     + (" (@fig-lasso)" if "fig-lasso" in figures else "") + ".")
    harmonization = _harmonization_text(facts, tables=tables)
    if harmonization:
        lines.append(harmonization)
    if facts.models is not None and facts.has_radiomics:
        rad = facts.models[facts.models["model"].str.startswith("Radiomics-")]
        lines.append(f"Five classifiers ({', '.join(m.replace('Radiomics-', '') for m in rad['model'])}) were tuned by "
                     "grid search minimising the cross-validated log loss on the development folds (a grid extended "
                     "when the optimum lay on its edge). The radiomics-clinical (RCR) model fitted the selected radiomics "
                     "features together with the CR factors' design columns in the classifier of highest nested "
                     "out-of-fold AUC"
                     + (f" ({facts.best_radiomics})." if facts.best_radiomics else "."))
    if facts.internal_validation is not None and len(facts.internal_validation):
        iv = facts.internal_validation
        models = list(dict.fromkeys(iv["model"]))
        lines.append(f"**Internal validation.** The logistic model{'s' if len(models) > 1 else ''} ({_list(models)}) "
                     f"{'were' if len(models) > 1 else 'was'} validated by Harrell's bootstrap (B = "
                     f"{int(iv['n_requested'].max())}) on the {facts.dev_cohort} cohort: refitted on each resample "
                     "and tested on the original patients, the mean difference being the optimism subtracted from "
                     "the apparent AUC, calibration intercept and slope and Brier score"
                     + ("; for CR both with its factors fixed and with its two-step selection repeated on each "
                        "resample." if (iv["procedure"] == "selection repeated").any() else ", the factors fixed."))
    lines.append("**Honest development estimates.** Every model was also refitted five times, each time without "
                 "one development fold, repeating the whole chain (selection, tuning, fitting) inside; the "
                 "held-out fold's predictions form the *out-of-fold* development cohort, on which each model's "
                 "threshold (Youden) was chosen and carried unchanged to every other cohort.")
    if not facts.has_deep:
        lines.append("The deep-learning arm (DL-ResNet10/18/34 and the DLRCR fusion) was not run.")
    else:
        lines.append(_methods_deep(facts))
    return "\n\n".join(lines) + "\n"


def _harmonization_text(facts: RunFacts, *, tables: frozenset = frozenset()) -> str:
    """The ComBat harmonisation of the radiomics features (study.yaml ``harmonization``), from
    ``models/parameters.json`` (the development fit's levels), ``models/harmonization.csv``
    (the batch's share of each feature's variance before and after) and
    ``results/harmonization_strata.csv`` (the sensitivity analysis without ComBat); empty when
    it was off."""
    fitted = ((facts.parameters or {}).get("radiomics") or {}).get("harmonization")
    if not fitted:
        return ""
    batch = markdown_text(fitted["batch"])
    levels = ", ".join(f"{markdown_text(lv)} (n = {n})" for lv, n in fitted["n_patients"].items())
    strata = _harmonization_strata(facts)
    text = (f"**Harmonisation.** Before selection, the radiomics features were harmonised across the levels of "
            f"{batch} by ComBat (Johnson et al. 2007: location and scale batch effects with parametric empirical "
            f"Bayes priors, as neuroCombat; no covariates, the outcome not used), after the development medians "
            "filled any missing value. ComBat was fitted on development patients only "
            f"({levels}), inside every out-of-fold refit on that refit's training folds alone, and applied "
            "unchanged to every other cohort (its parameters are in `models/parameters.json`); every radiomics "
            "and RCR result, the scanner subgroups included, is that of the harmonised models"
            + (", apart from the sensitivity analysis below." if strata is not None else "."))
    effect = facts.table("models/harmonization.csv")
    if effect is not None and len(effect):
        said = []
        for cohort, rows in effect.groupby("cohort", sort=False):
            if rows["eta2_before"].notna().any():
                said.append(f"{markdown_text(cohort)} {num(rows['eta2_before'].median())} before, "
                            f"{num(rows['eta2_after'].median())} after")
        if said:
            text += (f" The median share of a feature's variance explained by {batch} (eta squared; "
                     f"`models/harmonization.csv`) was: {'; '.join(said)}.")
    if strata is None:
        return text + " No radiomics models without harmonisation were fitted for comparison."
    models = list(dict.fromkeys(strata["model"]))
    where = "@tbl-s-harmonization" if "tbl-s-harmonization" in tables else f"`{rf.HARMONIZATION_STRATA}`"
    same = "the same patients, folds, seed and RCR classifier" if "RCR" in models else \
        "the same patients, folds and seed"
    return text + (f" As a sensitivity analysis, the unharmonised models ({_list(models)}) were refitted without "
                   f"ComBat on the development cohort ({markdown_text(facts.dev_cohort)}; {same}; no out-of-fold "
                   "refits) and scored every patient (`models/unharmonised_predictions.csv`); "
                   f"{where} gives their AUCs by {batch} beside those of the harmonised models, with DeLong 95% CIs "
                   "and no test between the two.")


def _harmonization_strata(facts: RunFacts) -> Optional[pd.DataFrame]:
    """``results/harmonization_strata.csv`` with ``harmonised`` as bool; None when absent or empty."""
    strata = facts.table(rf.HARMONIZATION_STRATA, dtype={"model": str, "cohort": str, "level": str})
    if strata is None or strata.empty:
        return None
    return strata.assign(harmonised=strata["harmonised"].astype(str).str.strip().str.lower().isin(["true", "1"]))


def _harmonization_results(facts: RunFacts, *, tables: set) -> str:
    """The AUCs by batch level with and without ComBat of RCR (else the best radiomics model, else
    the first) in each cohort other than the development one: the numbers of
    ``results/harmonization_strata.csv``, side by side, without a comparison."""
    strata = _harmonization_strata(facts)
    if strata is None:
        return ""
    models = list(dict.fromkeys(strata["model"]))
    model = next(m for m in ("RCR", facts.best_radiomics, models[0]) if m in models)
    cohorts = [c for c in dict.fromkeys(strata["cohort"]) if c != facts.dev_cohort] or [facts.dev_cohort]
    batch = markdown_text(strata["stratifier"].iloc[0])
    said = []
    for cohort in cohorts:
        rows = strata[(strata["model"] == model) & (strata["cohort"] == cohort)]
        if rows.empty:
            continue
        sides = []
        for flag, words in ((True, "with ComBat"), (False, "without")):
            side = rows[rows["harmonised"] == flag]
            sides.append(_list(f"{num(r.auc)} ({markdown_text(r.level)})" if math.isfinite(float(r.auc)) else
                               f"not estimable ({markdown_text(r.level)}: {int(r.n)} patients, {int(r.n_events)} "
                               "events)" for r in side.itertuples()) + f" {words}")
        said.append(f"in the {markdown_text(cohort)} cohort, {sides[0]}, {sides[1]}")
    if not said:
        return ""
    where = " (@tbl-s-harmonization)" if "tbl-s-harmonization" in tables else ""
    return (f"{model}'s AUCs by {batch}, with ComBat and in the sensitivity analysis refitted without it{where}, "
            "were: " + "; ".join(said) + ".")


def _deep_settings(facts: RunFacts) -> dict:
    return facts.document("models/deep/settings.json") or {}


def _deep_networks(facts: RunFacts) -> Optional[pd.DataFrame]:
    return facts.table("models/deep/networks.csv")


def _methods_deep(facts: RunFacts) -> str:
    """The deep arm as it ran, from RUN/models/deep/settings.json (the recipe in words, written by
    `dlr train`) and networks.csv, with the paper's settings beside it."""
    s = _deep_settings(facts)
    phases = ", ".join(getattr(facts.config, "phases", []) or [])
    registered = (f"Phases after the first ({phases}) were registered rigidly to it (ANTsPy QuickRigid). "
                  if s.get("register", True) else "The phases were used as acquired. ")
    nets = _deep_networks(facts)
    fits = ""
    if nets is not None and len(nets):
        fitted = nets[nets["network"] != "DLRCR"]
        if len(fitted):
            fits = (f" Each network was fitted {int(fitted['n_fits'].iloc[0])} times: on the whole {facts.dev_cohort} "
                    f"cohort and once without each of its folds (nested out-of-fold predictions), "
                    f"{int(fitted['n_steps'].iloc[0])} optimiser steps a fit.")
    fusion = s.get("dlrcr_fusion") or {}
    dlrcr = ""
    if fusion:
        dlrcr = (f" DLRCR was a late fusion: a logistic model of the outcome on the log-odds of {fusion['network']} and "
                 f"of {fusion['partner']} (the radiomics features and the CR factors), slopes ridge-penalised "
                 f"(C = {num(fusion.get('ridge_C'), 1)}), fitted on the {fusion['n']} development patients' "
                 f"out-of-fold predictions (coefficients {num(fusion['network_coefficient'], 2)} and "
                 f"{num(fusion['partner_coefficient'], 2)}, intercept {num(fusion['intercept'], 2)}); its own "
                 "out-of-fold predictions refit that model without each fold (the other folds' out-of-fold scores "
                 "come from networks that saw the held-out fold's outcomes: a second-order leak through three "
                 "coefficients). The paper instead joined the deep features, the radiomics features and the CR "
                 "factors before one fully connected layer trained jointly.")
    best = s.get("best_network")
    chosen = (f" The best network, DL-{best}, was the one with the highest nested out-of-fold AUC." if best else "")
    return ("**Deep learning.** " + registered
            + (f"Recipe (profile {s.get('profile', '?')}, device {s.get('device', '?')}): {s['recipe']}. "
               if s.get("recipe") else "")
            + (f"The paper's settings were {s['paper_settings']}; with ~{_dev_size(facts)} development patients "
               "that is 2 optimiser steps an epoch, too few to learn, so the recipe above replaces them, chosen on "
               "development folds of the synthetic study (docs/deep_learning.md in the dlr repository)." if s.get("paper_settings")
               else "")
            + fits + chosen + dlrcr + "\n")


def _dev_size(facts: RunFacts) -> str:
    counts = facts.cohort_counts()
    return str(counts[facts.dev_cohort][0]) if facts.dev_cohort in counts else "100"


def versus_text(facts: RunFacts, model: str, other: Optional[str], cohort: Optional[str]) -> str:
    """``model``'s AUC against ``other``'s in ``cohort`` from their paired DeLong test
    (comparisons.csv, whose ``diff`` is model_a - model_b): "0.80, higher than B's 0.75
    (difference 0.05, P = 0.2, Holm = 0.6: not significantly)"; "" without the test."""
    if other is None or cohort is None or facts.comparisons is None:
        return ""
    c = facts.comparisons
    rows = c[(c["cohort"] == cohort) & (((c["model_a"] == model) & (c["model_b"] == other))
                                        | ((c["model_a"] == other) & (c["model_b"] == model)))]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    mine, theirs = (r["auc_a"], r["auc_b"]) if r["model_a"] == model else (r["auc_b"], r["auc_a"])
    diff = r["diff"] if r["model_a"] == model else -r["diff"]
    word = "higher than" if diff > 0 else "lower than" if diff < 0 else "equal to"
    verdict = "significantly" if float(r["p_adjusted"]) < 0.05 else "not significantly"
    return (f"{num(mine)}, {word} {other}'s {num(theirs)} (difference {num(diff)}, {pval(r['p_value'])}, "
            f"Holm {pval(r['p_adjusted']).replace('P ', '')}: {verdict})")


def results_deep(facts: RunFacts) -> str:
    """How each network and DLRCR did, in words: against chance (its nested out-of-fold AUC's
    DeLong CI against 0.5) and against the best radiomics model and RCR (the paired DeLong
    tests of comparisons.csv on the out-of-fold development predictions and in each other
    cohort). Every number is read from results/; nothing is computed here."""
    if not facts.has_deep:
        return ""
    dev = facts.dev_cohort
    oof = facts.oof_cohort
    others = [c for c in facts.cohorts if c != dev]
    radiomics = facts.best_radiomics
    lines = []

    def chance(row) -> str:
        if row is None:
            return "has no estimate"
        low, high = float(row["auc_ci_low"]), float(row["auc_ci_high"])
        shown = f"AUC {num(row['auc'])}, 95% CI {num(low)}-{num(high)}"
        if low > 0.5:
            return f"was better than chance ({shown})"
        if high < 0.5:
            return f"was worse than chance ({shown})"
        return f"did not differ from chance ({shown}: the CI includes 0.5)"

    def versus(model: str, other: Optional[str], cohort: Optional[str]) -> str:
        return versus_text(facts, model, other, cohort)

    def line(model: str, rival: Optional[str], rival_name: str) -> str:
        parts = [f"**{model}**: out of fold it {chance(facts.perf(model, oof) if oof else None)}"]
        parts += [f"in the {c} cohort it {chance(facts.perf(model, c))}" for c in others]
        # each paired test with where it was made (out of fold, then each other cohort); a lone one unqualified
        against = [(v, where) for v, where in [(versus(model, rival, oof), "out of fold"),
                                               *((versus(model, rival, c), f"in the {c} cohort") for c in others)]
                   if v]
        if against:
            parts.append(f"against {rival_name} its AUC was "
                         + (against[0][0] if len(against) == 1 else _list(f"{v} {where}" for v, where in against)))
        return "- " + "; ".join(parts) + "."

    for model in [m for m in ("DL-ResNet10", "DL-ResNet18", "DL-ResNet34") if m in facts.model_names]:
        lines.append(line(model, radiomics, "the best radiomics model"))
    if "DLRCR" in facts.model_names:
        lines.append(line("DLRCR", "RCR", "RCR"))
    if not lines:
        return ""
    return ("How the deep-learning models did, against chance (the DeLong 95% CI of the AUC against 0.5) and "
            "against the radiomics models (paired DeLong tests):\n\n" + "\n".join(lines))


def methods_performance(facts: RunFacts) -> str:
    b = facts.settings.get("n_bootstrap", "?")
    follow = facts.survival_settings
    survival = ""
    if facts.survival is not None and follow:
        survival = (f" Time to recurrence (`{follow.get('time', 'time')}`, `{follow.get('event', 'event')}`): "
                    "Harrell's C of each score, Kaplan-Meier curves of the risk groups at the development-cohort "
                    "threshold with log bands, the log-rank test, the Cox hazard ratio of the high-risk group "
                    "(Efron ties, Wald CI) and the cumulative incidence at "
                    f"{_horizon_text(follow.get('horizon', 24), follow.get('time', 'time'))}.")
    return ("AUCs are given with DeLong 95% CIs (and stratified bootstrap CIs, B = "
            f"{b}); AUCs were compared by paired DeLong tests within a cohort (Holm-adjusted) and by unpaired "
            "DeLong tests between cohorts. Accuracy, sensitivity, specificity, PPV and NPV (Wilson CIs) are at "
            "the development-cohort threshold. Calibration: intercept, slope, Brier score and the Hosmer-Lemeshow "
            "test, with curves over quantile groups sized to the cohort. Clinical utility: decision curves (net "
            "benefit against treat-all and treat-none). Reclassification: continuous NRI and IDI against the "
            "reference model. Table 1 used the t test (Welch) or Mann-Whitney U for continuous variables "
            "(Shapiro-Wilk) and the chi-squared or Fisher exact test for categorical ones; the test used is "
            "named beside each P value." + survival + "\n")


def methods_fairness(facts: RunFacts) -> str:
    col = getattr(facts.config, "scanner_column", None)
    if not col:
        return "No stratifier was declared in study.yaml, so no subgroup analysis was made.\n"
    return (f"AUCs were estimated within each level of `{col}` with unpaired DeLong tests between levels, to show "
            "whether discrimination depends on the scanner.\n")


# --------------------------------------------------------------------------------------------
# Results


def results_participants(facts: RunFacts, *, tables: set) -> str:
    text = [f"{_events(facts)}." if facts.performance is not None else ""]
    if "tbl-1-characteristics" in tables:
        text.append("@tbl-1-characteristics gives the patients' characteristics by cohort and outcome.")
    if facts.table1_tests is not None:
        t = facts.table1_tests
        between = t[(t["scope"] == "between_cohorts") & (pd.to_numeric(t["p_value"], errors="coerce") < 0.05)]
        if len(t[t["scope"] == "between_cohorts"]):
            tested = t[(t["scope"] == "between_cohorts")].assign(p=lambda f: pd.to_numeric(f["p_value"],
                                                                                           errors="coerce"))
            tested = tested[tested["p"].notna()]
            if between.empty and len(tested):
                smallest = tested.loc[tested["p"].idxmin()]
                text.append(f"No variable differed between the cohorts at P < 0.05 (the smallest P: "
                            f"{smallest['variable']}, {pval(smallest['p'])}).")
            elif len(between):
                text.append(f"{len(between)} variable{'s' if len(between) > 1 else ''} differed between the cohorts "
                            f"(P < 0.05): {', '.join(between['variable'])}.")
    return " ".join(x for x in text if x) + "\n"


def results_models(facts: RunFacts, *, tables: set, figures: set) -> str:
    lines = []
    if "tbl-3-logistic" in tables:
        lines.append("@tbl-3-logistic gives the univariate and multivariate logistic regression"
                     + (f"; the CR model retained {_list(facts.selected)}." if facts.selected else "."))
    if facts.selection_counts is not None and len(facts.selection_counts):
        c = facts.selection_counts
        lines.append(f"Of {int(c['n_features'].iloc[0])} radiomics features, {int(c['n_features'].iloc[-1])} were "
                     "kept by the LASSO"
                     + (" (@fig-lasso)" if "fig-lasso" in figures else "") + ".")
    if "tbl-s-oof" in tables:
        lines.append("@tbl-s-oof sets each model's apparent development AUC beside its nested out-of-fold estimate "
                     "and its validation AUC.")
    nomograms = [f for f in ("fig-nomogram", "fig-nomogram-rcr") if f in figures]
    if nomograms:
        named = {"fig-nomogram": "the CR model", "fig-nomogram-rcr": "the RCR model"}
        lines.append("Nomograms present " + _list(f"{named[f]} (@{f})" for f in nomograms)
                     + ": each predictor's value gives points, and the total points give the predicted probability "
                     "of the outcome.")
    points = sorted(t for t in tables if t.startswith("tbl-s-points-"))
    if points:
        lines.append("Nomograms with too many axes to draw legibly are given as points tables instead: "
                     + _list(f"@{t}" for t in points) + ".")
    if "tbl-s-selection" in tables:
        lines.append("@tbl-s-selection lists the final models' predictors with their LASSO coefficients and how "
                     "often the nested out-of-fold refits selected each (selection stability).")
    iv = _internal_validation_text(facts)
    if iv and "tbl-s-internal-validation" in tables:
        lines.append(iv + " (@tbl-s-internal-validation).")
    return "\n\n".join(lines) + "\n"


def _internal_validation_text(facts: RunFacts) -> str:
    """One sentence from models/internal_validation.csv: each model's apparent and
    optimism-corrected development AUC and corrected calibration slope, per procedure."""
    iv = facts.internal_validation
    if iv is None or iv.empty:
        return ""
    parts = []
    for model, part in iv.groupby("model", sort=False):
        auc = part[part["index"] == "AUC"]
        slope = part[part["index"] == "Slope"].set_index("procedure")["corrected"]
        if auc.empty:
            continue
        corrected = [f"{num(r.corrected)} ({r.procedure}"
                     + (f", slope {num(slope[r.procedure], 2)}" if r.procedure in slope.index else "") + ")"
                     for r in auc.itertuples()]
        text = (f"{model}'s apparent development AUC of {num(auc['apparent'].iloc[0])} was corrected to "
                + _list(corrected))
        if "selection repeated" not in set(auc["procedure"]):
            oof = facts.perf(model, facts.oof_cohort) if facts.oof_cohort else None
            text += (" with its predictors held fixed: that bootstrap does not repeat their selection, so it is no "
                     "estimate of the whole chain's optimism"
                     + (f" (the nested out-of-fold AUC, {num(oof['auc'])}, is)" if oof is not None else ""))
        parts.append(text)
    if not parts:
        return ""
    b = int(iv["n_requested"].max())
    return f"Corrected for optimism by Harrell's bootstrap (B = {b}), " + "; ".join(parts)


def results_performance(facts: RunFacts, *, tables: set, figures: set) -> str:
    lines = []
    dev = facts.dev_cohort
    others = [c for c in facts.cohorts if c != dev]
    if "tbl-2-classifiers" in tables:
        lines.append("@tbl-2-classifiers gives the five radiomics classifiers"
                     + (" and @fig-roc-classifiers their ROC curves" if "fig-roc-classifiers" in figures else "") + ".")
    if "tbl-4-models" in tables:
        lines.append("@tbl-4-models compares the CR, radiomics"
                     + (", deep-learning" if facts.has_deep else "") + " and combined models"
                     + (" (@fig-roc-models)" if "fig-roc-models" in figures else "") + ".")
    for model in key_models(facts):  # the honest estimates first; the apparent one named so
        oof = facts.perf(model, facts.oof_cohort) if facts.oof_cohort else None
        parts = [f"nested out-of-fold {auc_text(oof)}"] if oof is not None else []
        parts += [f"{c} {auc_text(facts.perf(model, c))}" for c in others if facts.perf(model, c) is not None]
        if facts.perf(model, dev) is not None:
            parts.append(f"apparent ({dev}, the patients it was fitted on) {auc_text(facts.perf(model, dev))}")
        lines.append(f"- **{model}**: AUC " + "; ".join(parts) + ".")
    best = facts.best_model
    if best:
        lines.append(f"The reference model for comparisons was **{best}**, chosen by "
                     f"{facts.settings.get('reference_chosen_by', 'the analysis')}.")
    for cohort in others if facts.comparisons is not None and best else ():
        c = facts.comparisons
        rows = c[(c["cohort"] == cohort) & ((c["model_a"] == best) | (c["model_b"] == best))]
        shown = [*key_models(facts), best]  # the reference may be a classifier Table 4 does not show
        keyed = rows[rows["model_a"].isin(shown) & rows["model_b"].isin(shown)]
        # without a key model to compare with in this cohort: the other fitted models
        rows = keyed if len(keyed) else rows[~rows["model_a"].isin(COMPARATORS) & ~rows["model_b"].isin(COMPARATORS)]
        for r in rows.itertuples():
            other = r.model_b if r.model_a == best else r.model_a
            lines.append(f"- {best} against {other} in the {cohort} cohort: AUC "
                         f"{versus_text(facts, best, other, cohort)}.")
    if len(others) > 1:  # several cohorts besides the development one: each against it, and the figures' panels
        lines += _cohort_tests_text(facts, tables)
        panels = _panels_text(facts, figures)
        if panels:
            lines.append(panels)
    comparators = [m for m in COMPARATORS if m in facts.model_names]
    if comparators:
        lines.append(f"Against the staging systems and inflammation indexes ({', '.join(comparators)})"
                     + (", see @tbl-s-staging" if "tbl-s-staging" in tables else "")
                     + (" and @fig-roc-comparators" if "fig-roc-comparators" in figures else "") + ".")
        for cohort in [dev, *others]:
            reversed_ = [(m, facts.perf(m, cohort)) for m in comparators if facts.perf(m, cohort) is not None
                         and float(facts.perf(m, cohort)["auc"]) < 0.5]
            if reversed_:
                named = _list(f"{m} (AUC {num(r['auc'])})" for m, r in reversed_)
                lines.append(f"In the {cohort} cohort {named} "
                             f"had {'an AUC' if len(reversed_) == 1 else 'AUCs'} below 0.5: higher values went with "
                             "fewer events, the reverse of the direction the score assumes.")
    deep = results_deep(facts)
    if deep:
        lines.append(deep)
    if "tbl-s-delong" in tables:
        lines.append("Every paired comparison is in @tbl-s-delong.")
    return "\n\n".join(lines) + "\n"


#: the figures with one panel per cohort (:attr:`RunFacts.panel_cohorts`), in the report's order
PANEL_FIGURES = ("fig-roc-classifiers", "fig-roc-models", "fig-roc-comparators", "fig-dca-classifiers",
                 "fig-dca-models")


def _panels_text(facts: RunFacts, figures: set) -> str:
    """Which panel of the per-cohort figures shows which cohort: "(A) the training cohort out of
    fold, (B) the validation cohort, ..." with the figures named."""
    present = [f for f in PANEL_FIGURES if f in figures]
    cohorts = facts.panel_cohorts
    if not present or len(cohorts) < 2:
        return ""
    named = [f"({'ABCDEFGH'[i]}) the {facts.dev_cohort} cohort out of fold" if c == facts.oof_cohort else
             f"({'ABCDEFGH'[i]}) the {c} cohort" for i, c in enumerate(cohorts[:8])]
    return (f"{_list('@' + f for f in present)} {'show' if len(present) > 1 else 'shows'} one panel per cohort: "
            + ", ".join(named) + ".")


def _cohort_tests_text(facts: RunFacts, tables: set) -> list[str]:
    """Each key model's unpaired DeLong test of its AUC in every other cohort against the
    development cohort (``cohort_tests.csv``; against its nested out-of-fold predictions where
    the analysis has them), one line per model."""
    t = facts.cohort_tests
    if t is None or t.empty:
        return []
    dev = facts.oof_cohort or facts.dev_cohort
    where = f"the {facts.dev_cohort} cohort" + (" out of fold" if facts.oof_cohort else "")
    lines = []
    for model in key_models(facts):
        rows = t[(t["model"] == model) & (t["cohort_a"] == dev)]
        if rows.empty:
            continue
        shown = [f"{r.cohort_b} {num(r.auc_b)} ({pval(r.p_value)})" for r in rows.itertuples()]
        lines.append(f"- {model}: AUC against {where} ({num(rows['auc_a'].iloc[0])}): " + "; ".join(shown) + ".")
    if not lines:
        return []
    tabled = [f"@{t}" for t in ("tbl-2-classifiers", "tbl-4-models") if t in tables]
    return [f"Each cohort's AUC against {where}, by unpaired DeLong tests (`results/cohort_tests.csv`"
            + (f"; the P value columns of {' and '.join(tabled)}" if tabled else "") + "):", "\n".join(lines)]


def results_calibration(facts: RunFacts, *, tables: set, figures: set) -> str:
    lines = []
    labels = [f for f in ("fig-calibration-classifiers", "fig-calibration-models") if f in figures]
    if labels:
        lines.append(f"Calibration curves: {' and '.join('@' + f for f in labels)}.")
    if "tbl-s-calibration" in tables:
        lines.append("@tbl-s-calibration gives the calibration statistics.")
    others = [c for c in facts.cohorts if c != facts.dev_cohort]
    shown = [c for c in (facts.oof_cohort, *others) if c]
    for model in key_models(facts):
        for cohort in shown:
            row = facts.perf(model, cohort)
            if row is not None and pd.notna(row.get("cal_slope")):
                lines.append(f"- {model}, {cohort}: calibration intercept {num(row['cal_intercept'])}, slope "
                             f"{num(row['cal_slope'])}, Brier {num(row['brier'])}, Hosmer-Lemeshow {pval(row['hl_p'])}.")
    low, high = rf.CALIBRATION_SLOPE_RANGE
    for cohort in shown:
        off = [(m, facts.perf(m, cohort)) for m in key_models(facts) if facts.perf(m, cohort) is not None
               and pd.notna(facts.perf(m, cohort).get("cal_slope"))
               and not low <= float(facts.perf(m, cohort)["cal_slope"]) <= high]
        if off:
            named = _list(f"{m} ({num(r['cal_slope'], 2)})" for m, r in off)
            lines.append(f"Calibration slopes outside {low:g}-{high:g} in the {cohort} cohort: {named}. A slope below "
                         "1 means predictions too extreme (overfitting), above 1 too moderate; recalibrate on the "
                         "development cohort before using these probabilities.")
    return "\n\n".join(lines) + "\n" if lines else "No probability model was calibrated in this run.\n"


#: the threshold probabilities the report's decision curves show (unless `dlr analyze --thresholds`
#: recorded a range): the same as results/figures
DCA_RANGE = SHOWN_RANGE
#: threshold probabilities at which the text quotes the best model's interventions avoided
UTILITY_THRESHOLDS = (0.2, 0.4)


def _ci(estimate, low, high, digits: int = 3) -> str:
    """``0.712 (95% CI 0.601-0.823)``; the bounds joined by " to " when one is negative."""
    lo, hi = num(low, digits), num(high, digits)
    sep = " to " if lo.startswith("-") or hi.startswith("-") else "-"
    return f"{num(estimate, digits)} (95% CI {lo}{sep}{hi})"


def _utility_differences(facts: RunFacts, dca_range) -> str:
    """One sentence from decision_curve_differences.csv: the best model's interventions avoided
    against treat all, and its net benefit against another key model, at one or two thresholds
    inside the range shown, in each cohort other than the development one (a sentence each)."""
    return " ".join(filter(None, (_utility_in(facts, dca_range, c) for c in facts.other_cohorts)))


def _utility_in(facts: RunFacts, dca_range, cohort: str) -> str:
    """:func:`_utility_differences`' sentence of one cohort ("" without its rows)."""
    d, best = facts.dca_differences, facts.best_model
    if d is None or d.empty or not best:
        return ""
    lo, hi = dca_range
    picks = [t for t in UTILITY_THRESHOLDS if lo <= t <= hi] or [round((lo + hi) / 2, 2)]
    part = d[(d["cohort"] == cohort) & (d["reference"] == best)]
    own = part[part["model"] == best]
    rival = next((m for m in key_models(facts) if m != best and m in set(part["model"])), None)

    def at(rows, t):
        hit = rows[np.isclose(rows["threshold"].astype(float), t)]
        return None if hit.empty else hit.iloc[0]

    avoided = [(t, at(own, t)) for t in picks]
    avoided = [(t, r) for t, r in avoided if r is not None and math.isfinite(float(r["interventions_avoided"]))]
    if not avoided:
        return ""
    counts = [_ci(r["interventions_avoided"], r["interventions_avoided_ci_low"], r["interventions_avoided_ci_high"], 1)
              for _, r in avoided]
    text = (f"In the {cohort} cohort, at threshold probabilities {_list(f'{t:.2f}' for t, _ in avoided)}, {best} "
            f"avoided {_list(counts)} interventions per 100 patients against treating all")
    if rival is not None:
        diffs = [at(part[part["model"] == rival], t) for t, _ in avoided]
        if all(r is not None for r in diffs):
            text += (f", and {rival}'s net benefit differed from {best}'s by "
                     f"{_list(_ci(r['nb_diff'], r['nb_diff_ci_low'], r['nb_diff_ci_high']) for r in diffs)}")
    return text + " (paired bootstrap intervals; `results/decision_curve_differences.csv`)."


def results_utility(facts: RunFacts, *, figures: set, dca_range=DCA_RANGE) -> str:
    labels = [f for f in ("fig-dca-classifiers", "fig-dca-models") if f in figures]
    if not labels:
        return "No decision curve was drawn in this run.\n"
    text = (f"Decision curves ({' and '.join('@' + f for f in labels)}) show the net benefit over threshold "
            f"probabilities {dca_range[0]:.2f}-{dca_range[1]:.2f}, against treating every patient (dashed) and "
            "none.")
    more = _utility_differences(facts, dca_range)
    return text + (f" {more}" if more else "") + "\n"


_TIME_UNITS = ("days", "weeks", "months", "years")


def _horizon_text(horizon, time_column: str) -> str:
    """``24 months`` when the time column names its unit (``months_to_recurrence``), else
    ``time 24 (`time_column`)``."""
    words = str(time_column).lower().replace("-", "_").split("_")
    unit = next((u for u in _TIME_UNITS if u in words or u[:-1] in words), None)
    return f"{float(horizon):g} {unit}" if unit else f"time {float(horizon):g} (`{time_column}`)"


def _incidence(row: pd.Series, group: str) -> str:
    """A risk group's cumulative incidence at the horizon with its CI, from a survival.csv row."""
    if not math.isfinite(float(row[f"cuminc_{group}"])):
        return "not estimable (follow-up ends before)"
    return _ci(row[f"cuminc_{group}"], row[f"cuminc_{group}_ci_low"], row[f"cuminc_{group}_ci_high"], 2)


def results_survival(facts: RunFacts, *, figures: set) -> str:
    """Time to recurrence (contract 5.1, ``results/survival.csv``): per key model and cohort,
    Harrell's C (SE), the log-rank P and the Cox hazard ratio of the high-risk group, and the
    cumulative incidence at the horizon in each group; one sentence without follow-up."""
    s = facts.survival
    if s is None or s.empty:
        return ("The study named no follow-up columns (time to recurrence or censoring, and the recurrence event: "
                "study.yaml's `time_column` and `event_column`), so no time-to-recurrence analysis was made.\n")
    follow = facts.survival_settings
    time, event = follow.get("time", "time"), follow.get("event", "event")
    lines = [f"With follow-up from `{time}` and `{event}` (1 = recurrence, 0 = censored), each model's patients "
             "were split into a high- and a low-risk group at its development-cohort threshold (never re-chosen "
             "on the cohort analysed); Harrell's C measures how well the continuous score orders the times to "
             "recurrence."]
    best = facts.km_model
    if "fig-km" in figures:
        lines.append(f"@fig-km shows the Kaplan-Meier curves of {best}'s risk groups.")
    models = [m for m in dict.fromkeys([*key_models(facts), best]) if m in set(s["model"])]
    order = [facts.dev_cohort, facts.oof_cohort, *[c for c in facts.cohorts if c != facts.dev_cohort]]
    present = set(s["cohort"])
    cohorts = [c for c in dict.fromkeys(order) if c and c in present]
    for model in models:
        for cohort in cohorts:
            rows = s[(s["model"] == model) & (s["cohort"] == cohort)]
            if rows.empty:
                continue
            r = rows.iloc[0]
            hr = (f"HR {_ci(r['hr'], r['hr_ci_low'], r['hr_ci_high'], 2)}" if math.isfinite(float(r["hr"]))
                  else "HR not estimable")
            parts = [f"Harrell's C {num(r['c_index'])} (SE {num(r['c_index_se'])})", f"log-rank {pval(r['logrank_p'])}",
                     hr]
            if "cuminc_high" in r.index and pd.notna(r.get("horizon")):
                parts.append(f"cumulative incidence at {_horizon_text(r['horizon'], time)}, high vs low risk, "
                             f"{_incidence(r, 'high')} vs {_incidence(r, 'low')}")
            lines.append(f"- **{model}**, {cohort} ({int(r['n'])} patients, {int(r['n_events'])} recurrences, "
                         f"{int(r['n_high'])} at high risk): " + "; ".join(parts) + ".")
    return "\n\n".join(lines) + "\n"


def results_subgroups(facts: RunFacts, *, tables: set, figures: set) -> str:
    harmonization = _harmonization_results(facts, tables=tables)
    if facts.subgroups is None or facts.subgroups.empty:
        return " ".join(["No subgroup analysis was made.", *([harmonization] if harmonization else [])]) + "\n"
    text = []
    if "fig-forest" in figures:
        text.append("@fig-forest shows the AUCs by scanner.")
    if "tbl-s-scanner" in tables:
        text.append("@tbl-s-scanner lists them.")
    if harmonization:
        text.append(harmonization)
    return " ".join(text) + "\n"


# --------------------------------------------------------------------------------------------
# Limitations detected from the run


def limitations(facts: RunFacts) -> list:
    """Each limitation a reviewer would raise, stated with its number."""
    found = []
    if facts.sample_size is not None and len(facts.sample_size):
        s = facts.sample_size.iloc[0]
        if pd.notna(s.get("events_available")) and float(s["events_available"]) < float(s["events_required"]):
            epp = float(s["events_available"]) / max(int(s["parameters"]), 1)
            found.append(f"The development cohort has {int(s['events_available'])} events for {int(s['parameters'])} "
                         f"candidate parameters ({epp:.1f} events per parameter), below Riley et al.'s minimum of "
                         f"{num(s['events_required'], 1)} events ({num(s['epp_required'], 1)} per parameter).")
    counts = facts.cohort_counts()
    for cohort, (n, events) in counts.items():
        if cohort != facts.dev_cohort and events < MIN_VALIDATION_EVENTS:
            found.append(f"The {cohort} cohort has {events} events (of {n} patients), fewer than the "
                         f"{MIN_VALIDATION_EVENTS} recommended for a validation (Collins et al. 2016).")
    if facts.performance is not None:
        others = [c for c in facts.cohorts if c != facts.dev_cohort]
        perf = facts.performance[facts.performance["cohort"].isin(others)]
        if "cal_slope" in perf:
            far = perf[(perf["cal_slope"] < SLOPE_RANGE[0]) | (perf["cal_slope"] > SLOPE_RANGE[1])]
            for r in far.itertuples():
                found.append(f"{r.model}'s calibration slope in the {r.cohort} cohort is {num(r.cal_slope, 2)} "
                             f"(outside {SLOPE_RANGE[0]}-{SLOPE_RANGE[1]}): its predicted risks are "
                             f"{'too extreme' if r.cal_slope < 1 else 'too moderate'}.")
        width = perf["auc_ci_high"] - perf["auc_ci_low"]
        wide = perf[width > MAX_CI_WIDTH]
        if len(wide):
            listed = ", ".join(f"{r.model} ({r.cohort}, {num(r.auc_ci_low)}-{num(r.auc_ci_high)})"
                               for r in wide.itertuples())
            found.append(f"{len(wide)} AUC 95% CI(s) are wider than {MAX_CI_WIDTH}: {listed}.")
    if facts.extraction_log is not None:
        failed = facts.extraction_log[facts.extraction_log["status"] != "ok"]
        if len(failed):
            listed = "; ".join(f"{r.patient_id} reader {r.reader} {r.phase}" for r in failed.head(5).itertuples())
            found.append(f"{len(failed)} radiomics extraction case(s) failed and were left empty: {listed}"
                         f"{'; ...' if len(failed) > 5 else ''} (`features/extraction_log.csv`).")
    if facts.models is not None and facts.performance is not None and facts.oof_cohort:
        for model in key_models(facts):
            apparent, oof = facts.perf(model, facts.dev_cohort), facts.perf(model, facts.oof_cohort)
            if apparent is not None and oof is not None and apparent["auc"] - oof["auc"] > 0.05:
                found.append(f"{model}'s apparent development AUC ({num(apparent['auc'])}) exceeds its nested "
                             f"out-of-fold estimate ({num(oof['auc'])}) by {num(apparent['auc'] - oof['auc'])}: "
                             "the apparent figure is optimistic.")
    harmonised = facts.oof_log is not None and facts.oof_log["note"].astype(str).str.startswith("harmonization:")
    if facts.oof_log is not None and harmonised.any():
        folds = sorted(set(facts.oof_log.loc[harmonised, "fold"]))
        found.append(f"In {len(folds)} of the out-of-fold refits (fold{'s' if len(folds) > 1 else ''} "
                     f"{', '.join(map(str, folds))}) a batch level had fewer than two patients in the training folds: "
                     "ComBat left it out, and its patients' features were used unharmonised (`models/oof_log.csv`).")
    if facts.oof_log is not None and (~harmonised).any():
        folds = sorted(set(facts.oof_log.loc[~harmonised, "fold"]))
        found.append(f"In {len(folds)} of the out-of-fold refits (fold{'s' if len(folds) > 1 else ''} "
                     f"{', '.join(map(str, folds))}) a selection failed and the development cohort's selection stood "
                     "in for it: a partial leak (that selection saw the held-out fold's patients), so those folds' "
                     "out-of-fold estimates are somewhat optimistic (`models/oof_log.csv`).")
    if not facts.has_deep:
        found.append("The deep-learning arm was not run, so no DL-ResNet or DLRCR model is compared.")
    if str(getattr(facts.config, "name", "")).startswith("synthetic"):
        found.append("The data are synthetic: the figures show the method, not clinical evidence.")
    return found


def limitations_md(facts: RunFacts) -> str:
    items = limitations(facts)
    if not items:
        return "No limitation was detected from the run's numbers; the authors add those of design and data.\n"
    return "Detected from this run's numbers:\n\n" + "\n".join(f"- {x}" for x in items) + "\n"


# --------------------------------------------------------------------------------------------
# Reproducibility


def _versions(facts: RunFacts) -> dict:
    prov = (facts.results or {}).get("provenance", {})
    versions = prov.get("versions") or prov.get("packages") or {}
    return versions if isinstance(versions, dict) else {}


def reproducibility(facts: RunFacts, *, renderer: str) -> str:
    info = facts.info
    versions = _versions(facts)
    python = versions.get("python") or platform.python_version()  # the run's, as its provenance recorded
    lines = [f"dlr {info.get('dlr_version', '?')}, profile *{info.get('profile', '?')}*, seed {info.get('seed', '?')}, "
             f"arms {', '.join(info.get('arms', []))}; Python {python}."]
    if versions:
        lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".")
    prov = (facts.results or {}).get("provenance", {})
    if prov.get("git_sha"):
        lines.append(f"Code: git {str(prov['git_sha'])[:12]}{' (with local changes)' if prov.get('git_modified') else ''}.")
    if facts.stages:
        rows = ["| Stage | Wall time (s) | Finished | Summary |", "|---|---:|---|---|"]
        for name, rec in facts.stages.items():
            summary = str(rec.get("summary", "")).replace("|", "/")
            rows.append(f"| {name} | {float(rec.get('seconds', float('nan'))):.1f} | {rec.get('finished', '')} | {summary} |")
        lines.append("\n".join(rows) + "\n\n: Stages of the run and their wall time when they last ran {#tbl-s-stages}")
    lines.append("Every number can be re-derived: `dlr package RUN --out package.zip` writes the reviewer package "
                 "(settings, environment lock, checksums, pseudonymised predictions, results, this report) and "
                 "`dlr verify package.zip` recomputes the analysis and lists any number that differs.")
    lines.append("Rendered by {{< meta dlr-renderer >}}.")
    return "\n\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# TRIPOD+AI facts


def tripod_facts(facts: RunFacts, *, renderer: str) -> dict:
    """The facts dict of :func:`dlr.report.tripod.tripod_checklist` (keys documented there)."""
    cfg = facts.config
    out = {}
    out["title"] = report_title(facts)
    others = facts.other_cohorts
    out["study_type"] = ("development" if not others else "development and validation (split sample)"
                         if len(others) == 1 else
                         f"development and validation in {len(others)} cohorts besides the development one "
                         f"({_list(others)})")
    name = getattr(cfg, "name", None)
    if name:
        out["data_source"] = ("synthetic study generated by dlr synth" if str(name).startswith("synthetic")
                              else f"study folder {name}")
    if facts.performance is not None:
        out["cohorts"] = _events(facts)
        out["participants_flow"] = _events(facts)
    out["outcome"] = f"`{getattr(cfg, 'outcome_column', 'outcome')}` (1 = event) as recorded in the clinical table"
    out["predictors"] = methods_predictors(facts).strip().replace("\n\n", " ")
    cuts = [v for v in getattr(cfg, "variables", []) or [] if getattr(v, "cut_point", None) is not None]
    if cuts:
        out["predictor_handling"] = "cut points: " + ", ".join(f"{v.name} {v.cut_point:g}" for v in cuts)
    if facts.sample_size is not None and len(facts.sample_size):
        out["sample_size"] = methods_sample_size(facts).strip()
    out["missing_data"] = methods_missing(facts).strip()
    out["model_building"] = methods_models(facts, figures=set()).strip().replace("\n\n", " ").replace("**", "")
    out["model_type"] = ("logistic regression (CR); LR, SVM, KNN, XGBoost, MLP (radiomics); RCR fusion"
                         + ("; ResNet-10/18/34 and DLRCR (late fusion)" if facts.has_deep else "")
                         + "; class weighting: none in the CR and radiomics models (tuned on the cross-validated "
                         "log loss, so their probabilities keep the development prevalence)"
                         + ("; class-weighted cross-entropy in the networks" if facts.has_deep else ""))
    counts = facts.cohort_counts()
    if facts.dev_cohort in counts:
        n, events = counts[facts.dev_cohort]
        out["class_imbalance"] = (f"{events} events in {n} development patients ({100 * events / n:.1f}%); the CR "
                                  "and radiomics models used no resampling or class weighting, so their "
                                  "probabilities keep the development prevalence"
                                  + ("; the networks were trained with class-weighted cross-entropy (each class "
                                     "weighted n / (2 n_class) on each fit's training patients)" if facts.has_deep
                                     else "")
                                  + "; no model's predictions were recalibrated afterwards (calibration is "
                                  "reported as fitted)")
    out["model_updating"] = ("none: every model was applied to the validation patients exactly as fitted on the "
                             "development cohort, with the development cohort's thresholds; the recalibration "
                             "intercept and slope in each cohort are reported, not applied"
                             if len(facts.cohorts) > 1 else
                             "none: the models were evaluated as fitted (internal validation only)")
    out["performance_measures"] = methods_performance(facts).strip()
    if getattr(cfg, "scanner_column", None):
        out["fairness"] = methods_fairness(facts).strip()
    out["model_output"] = ("predicted probability; the Youden threshold chosen on the development cohort "
                           "(out-of-fold predictions) and applied unchanged to every cohort")
    out["participant_characteristics"] = "Table 1"
    out["model_specification"] = "every fitted parameter in models/parameters.json (reviewer package)"
    if facts.nomogram is not None and len(facts.nomogram):
        nomogram_models = list(dict.fromkeys(facts.nomogram["model"]))
        out["model_specification"] += (f"; nomogram{'s' if len(nomogram_models) > 1 else ''} of "
                                       f"{_list(nomogram_models)} "
                                       "(Results: models, Figure)")
    dev, oof = facts.dev_cohort, facts.oof_cohort
    order = [(oof, "out of fold"), *((c, c) for c in facts.cohorts if c != dev), (dev, f"apparent ({dev})")]
    perf = [f"{m}: " + "; ".join(f"{label} {auc_text(facts.perf(m, c))}" for c, label in order
                                 if c and facts.perf(m, c) is not None)
            for m in key_models(facts)]
    iv = _internal_validation_text(facts)
    if iv:
        perf.append(iv + " (supplementary table)")
    if facts.survival is not None and len(facts.survival):
        perf.append("Time to recurrence: Harrell's C, log-rank P and Cox hazard ratio of the risk groups per cohort, "
                    f"Kaplan-Meier curves of {facts.km_model} (Results: time to recurrence)")
    if perf:
        out["performance"] = ". ".join(perf)
    cal = results_calibration(facts, tables=set(), figures=set()).strip()
    if cal and not cal.startswith("No "):
        out["calibration"] = cal.replace("\n\n", " ").replace("- ", "")
    if facts.results is not None:
        lo, hi = facts.settings.get("decision_curve_range") or DCA_RANGE
        out["clinical_utility"] = f"decision curves over threshold probabilities {lo:.2f}-{hi:.2f} (Figure)"
    differences = []
    if facts.table1_tests is not None:
        t = facts.table1_tests
        between = t[t["scope"] == "between_cohorts"].assign(p=lambda f: pd.to_numeric(f["p_value"], errors="coerce"))
        between = between[between["p"].notna()]
        if len(between):
            differing = between[between["p"] < 0.05]
            smallest = between.loc[between["p"].idxmin()]
            differences.append(f"the cohorts' characteristics compared (Table 1, {len(between)} variables): "
                               + (f"{_list(f'{r.variable} ({pval(r.p)})' for r in differing.itertuples())} differed "
                                  "at P < 0.05" if len(differing) else
                                  f"none differed at P < 0.05 (the smallest P: {smallest['variable']}, "
                                  f"{pval(smallest['p'])})"))
    if len(counts) > 1:
        differences.append("outcome rates " + ", ".join(f"{c} {100 * e / n:.1f}%" for c, (n, e) in counts.items()))
    if facts.oof_cohort:
        differences.append("apparent, nested out-of-fold and validation AUCs side by side (supplementary table)")
    if differences:
        out["comparison_development_evaluation"] = "; ".join(differences)
    lim = limitations(facts)
    if lim:
        out["limitations"] = " ".join(lim)
    out["software"] = reproducibility(facts, renderer=renderer).split("\n\n")[0]
    prov = (facts.results or {}).get("provenance", {})
    out["code_availability"] = (f"dlr {facts.info.get('dlr_version', '?')}"
                                + (f", git {str(prov.get('git_sha'))[:12]}" if prov.get("git_sha") else ""))
    out["data_availability"] = "reviewer package (`dlr package`): pseudonymised predictions, features and results"
    # plain text: the checklist shows its cells as they are (no code spans or emphasis)
    return {k: v.replace("`", "").replace("**", "") for k, v in out.items() if v}


def report_title(facts: RunFacts) -> str:
    """study.yaml's ``title``, else one made from the outcome and the arms that ran."""
    cfg = facts.config
    if getattr(cfg, "title", None):
        return str(cfg.title)
    outcome = getattr(cfg, "outcome_column", "the outcome").replace("_", " ")
    phases = list(getattr(cfg, "phases", []) or [])
    if not phases:
        arm = "Clinical-radiological"
    elif facts.has_deep:
        arm = "Clinical-radiological, radiomics and deep-learning"
    else:
        arm = "Clinical-radiological and radiomics"
    return f"{arm} models predicting {outcome}: development and validation"
