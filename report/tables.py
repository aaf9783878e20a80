"""The report's display tables: the paper's Tables 1-4 and the supplementary tables, built
from the files a run saved (contract sections 3-7), never by fitting anything.

Every function takes the run (its folder, or the :class:`~dlr.report.facts.RunFacts` that
reads it once for the whole report: every file comes through its one reader) and returns a
:class:`DisplayTable` (or ``None`` when the files it needs are absent): a Quarto label, a
journal caption, a frame of display strings and a footnote. Rounding happens here and only here (the files hold full precision):

* AUCs, their CIs and proportions (accuracy, sensitivity, ...): 3 decimals;
* odds ratios and their CIs: 2 decimals;
* P values: ``"< 0.001"`` below 0.001, else 3 decimals;
* counts: integers. ``"NA"`` marks a statistic the analysis could not estimate, ``"—"`` a
  cell that does not apply.

Where each table's numbers come from
------------------------------------
=====================  ==========================================================================
table                  files of RUN
=====================  ==========================================================================
Table 1                ``clinical/table1.csv``, ``clinical/table1_tests.csv`` (``dlr table1``)
Table 2, Table 4       ``results/performance.csv``, ``results/cohort_tests.csv``,
                       ``results/results.json`` (``dlr analyze``), ``models/models.csv``
Table 3                ``clinical/univariate.csv``, ``multivariate.csv``, ``selected.txt``
                       (``dlr logistic``; the folder is the ``logistic`` argument)
S DeLong               ``results/comparisons.csv``
S staging              ``results/performance.csv``, ``comparisons.csv``, ``staging/staging_missing.csv``
S scanner              ``results/subgroups.csv``
S harmonization        ``results/harmonization_strata.csv`` (``dlr run`` with study.yaml ``harmonization``)
S calibration          ``results/performance.csv``
S reclassification     ``results/reclassification.csv``
S sample size          ``clinical/sample_size.csv`` (``dlr logistic``)
S agreement            ``models/icc.csv`` (``dlr train``); ``kappa.csv`` of the clinical or models
                       folder where a run has one (columns of ``core.stats.agreement.kappa_table``)
S out-of-fold          ``models/models.csv``, ``results/performance.csv``, ``results/cohort_tests.csv``
S internal validation  ``models/internal_validation.csv`` (``dlr train``: Harrell's bootstrap of the
                       logistic models)
=====================  ==========================================================================
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dlr.core import run_folder as rf
from dlr.core.errors import InputError

from .facts import RunFacts, as_facts

NA = "NA"      # a statistic that could not be estimated
DASH = "—"     # a cell that does not apply

RADIOMICS = rf.RADIOMICS_MODELS
DEEP = rf.DEEP_NETWORK_MODELS
COMPARATORS = ("BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR")
DL_NOT_RUN = "not run: the deep-learning arm was not part of this run"

#: display names of the variables of the synthetic study (contract section 2; the paper's Table 1)
VARIABLE_LABELS = {
    "gender": "Gender", "age": "Age (years)", "hepatitis_b_or_c": "History of hepatitis B or C",
    "afp": "AFP (ng/mL)", "alt": "ALT (U/L)", "ast": "AST (U/L)", "ggt": "GGT (U/L)", "tbil": "TBIL (µmol/L)",
    "alb": "ALB (g/L)", "child_pugh": "Child-Pugh class", "child_pugh_class": "Child-Pugh class",
    "tumor_diameter": "Tumor diameter (cm)", "tumor_number": "Tumor number", "tumor_margin": "Tumor margin",
    "necrosis": "Intratumoral necrosis", "hemorrhage": "Intratumoral hemorrhage",
    "encapsulation": "Tumor encapsulation", "arterial_peritumoral_enhancement": "Arterial peritumoral enhancement",
    "cirrhosis": "Radiological cirrhosis", "scanner": "MRI scanner",
}

#: abbreviations a footnote explains when they appear in its table
ABBREVIATIONS = {
    "AFP": "alpha-fetoprotein", "ALT": "alanine aminotransferase", "AST": "aspartate aminotransferase",
    "GGT": "γ-glutamyltranspeptidase", "TBIL": "total bilirubin", "ALB": "albumin",
    "ER": "early recurrence", "NER": "non-early recurrence", "SD": "standard deviation",
    "Q1, Q3": "first and third quartiles", "AUC": "area under the receiver operating characteristic curve",
    "CI": "confidence interval", "PPV": "positive predictive value", "NPV": "negative predictive value",
    "LR": "logistic regression", "SVM": "support vector machine", "KNN": "k-nearest neighbours",
    "XGBoost": "extreme gradient boosting", "MLP": "multilayer perceptron", "OR": "odds ratio",
    "CR": "clinical-radiological model", "DL": "deep learning", "ResNet": "residual network",
    "RCR": "radiomics combined with clinical-radiological model", "DLRCR": "deep learning combined with RCR",
    "BCLC": "Barcelona Clinic Liver Cancer stage", "CNLC": "China Liver Cancer stage",
    "ERASL": "Early Recurrence After Surgery for Liver tumour (preoperative) score",
    "NLR": "neutrophil-to-lymphocyte ratio", "PLR": "platelet-to-lymphocyte ratio",
    "LMR": "lymphocyte-to-monocyte ratio", "HL": "Hosmer-Lemeshow", "NRI": "net reclassification improvement",
    "IDI": "integrated discrimination improvement", "ICC": "intraclass correlation coefficient",
    "IQR": "interquartile range", "EPP": "events per candidate predictor parameter", "CV": "cross-validation",
    "OOF": "out-of-fold", "SE": "standard error",
}


@dataclass(frozen=True, eq=False)
class DisplayTable:
    """One table of the report.

    Attributes
    ----------
    id : str
        Quarto cross-reference label (``tbl-...``), e.g. ``"tbl-2-classifiers"``.
    caption : str
        The full journal caption (one sentence or two, no label).
    frame : DataFrame
        The cells, every one a display string (already rounded); the column names are the
        header.
    notes : str
        The footnote: abbreviations, the tests used, how thresholds were chosen.
    """

    id: str
    caption: str
    frame: pd.DataFrame
    notes: str = ""


# ------------------------------------------------------------------------------------------
# display formatting (the only rounding of the project)


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_number(x, decimals: int = 3) -> str:
    """``x`` rounded to ``decimals`` (``"NA"`` when missing or not finite; no ``-0.000``)."""
    if not _finite(x):
        return NA
    text = f"{float(x):.{decimals}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text


def format_count(x) -> str:
    """An integer count (``"NA"`` when missing)."""
    return str(int(round(float(x)))) if _finite(x) else NA


def format_p(p) -> str:
    """A P value: ``"< 0.001"`` below 0.001, else 3 decimals; ``"NA"`` when missing."""
    if not _finite(p):
        return NA
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def format_ci(estimate, low, high, decimals: int = 3) -> str:
    """``"0.804 (0.650–0.957)"``; the bounds are joined by " to " when one is negative."""
    est = format_number(estimate, decimals)
    if not (_finite(low) and _finite(high)):
        return est
    lo, hi = format_number(low, decimals), format_number(high, decimals)
    sep = " to " if lo.startswith("-") or hi.startswith("-") else "–"
    return f"{est} ({lo}{sep}{hi})"


def cohort_label(cohort: str) -> str:
    """``"training (out-of-fold)"`` -> ``"Training (out-of-fold)"``."""
    cohort = str(cohort)
    return cohort[:1].upper() + cohort[1:]


def cohort_text(name: str) -> str:
    """A cohort's name (or a label that starts with it) inside a sentence: a capitalised word
    loses its capital (``"Validation cohort"`` -> ``"validation cohort"``), the rest of the name
    is kept as the study spells it (``"external-A"``, ``"TCGA"``)."""
    name = str(name)
    if name[:1].isupper() and name[1:2].islower():
        return name[:1].lower() + name[1:]
    return name


def variable_label(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The display name of a clinical variable: ``labels``, then :data:`VARIABLE_LABELS`, else
    the column name with spaces for underscores."""
    if labels and name in labels:
        return labels[name]
    if name in VARIABLE_LABELS:
        return VARIABLE_LABELS[name]
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:]


def level_label(level: str) -> str:
    """A level as displayed: cut-point levels get typographic signs (``"<=400"`` -> ``"≤ 400"``)."""
    level = str(level)
    for raw, sign in (("<=", "≤"), (">=", "≥"), ("<", "<"), (">", ">")):
        rest = level[len(raw):].strip()
        if level.startswith(raw) and _CUT_POINT.match(rest):  # a cut point, not text that starts with "<"
            return f"{sign} {rest}"
    return level


#: the value of a cut-point level: a number and perhaps its unit ("400", "50%", "5 cm")
_CUT_POINT = re.compile(r"^[+-]?\d[\d.,]*\s*[%\w/]*$")


def _abbreviations(keys: Sequence[str]) -> str:
    seen = [k for k in dict.fromkeys(keys) if k in ABBREVIATIONS]
    return "; ".join(f"{k}, {ABBREVIATIONS[k]}" for k in seen) + "." if seen else ""


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _names(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ------------------------------------------------------------------------------------------
# reading the run


def _read_csv(run: RunFacts, *parts: str, **kwargs) -> pd.DataFrame | None:
    """A saved table (``RUN/<parts>``, by the run's one reader :meth:`RunFacts.table`), or None
    when the file is absent or has no rows. Only empty cells are missing values (a level named
    "NA" stays text)."""
    frame = run.table("/".join(parts), **kwargs)
    return frame if frame is not None and len(frame) else None


def _settings(run: RunFacts, results: str) -> dict:
    document = run.document(f"{results}/{rf.RESULTS_JSON}")
    return (document.get("settings") or {}) if isinstance(document, dict) else {}


def _provenance_settings(run: RunFacts, folder: str, artefact: str) -> dict:
    try:
        return run.provenance(folder).get(artefact, {}).get("settings", {}) or {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _performance(run: RunFacts, results: str) -> pd.DataFrame | None:
    return _read_csv(run, results, "performance.csv", dtype={"model": str, "cohort": str})


def _cohorts(perf: pd.DataFrame, settings: dict) -> list[str]:
    """The cohorts in the analysis' order (development, its out-of-fold rows, the others)."""
    present = list(dict.fromkeys(perf["cohort"]))
    ordered = [c for c in settings.get("cohorts", []) if c in present]
    return ordered + [c for c in present if c not in ordered]


def _dev_cohort(perf: pd.DataFrame, settings: dict) -> str:
    return settings.get("dev_cohort") or _cohorts(perf, settings)[0]


def _oof_cohort(perf: pd.DataFrame, settings: dict) -> str | None:
    name = settings.get("oof_cohort") or rf.oof_cohort(_dev_cohort(perf, settings))
    return name if name in set(perf["cohort"]) else None


def _model_order(perf: pd.DataFrame, settings: dict) -> list[str]:
    present = list(dict.fromkeys(perf["model"]))
    ordered = [m for m in settings.get("models", []) if m in present]
    return ordered + [m for m in present if m not in ordered]


def _models_csv(run: RunFacts, models: str) -> pd.DataFrame | None:
    return _read_csv(run, models, "models.csv", dtype={"model": str})


def best_radiomics_model(run, *, results: str = "results", models: str = "models") -> str | None:
    """The best radiomics classifier as ``dlr train`` chose it (``models.csv`` column
    ``best_classifier``, by nested out-of-fold AUC); without models.csv, the radiomics model
    with the highest out-of-fold AUC in performance.csv (else the highest development AUC)."""
    run = as_facts(run)
    perf = _performance(run, results)
    dev = _dev_cohort(perf, _settings(run, results)) if perf is not None else None
    return rf.best_radiomics(_models_csv(run, models), perf, dev)


def reference_model(run, *, results: str = "results") -> str | None:
    """The analysis' reference model (``results.json`` settings ``reference``: by default the
    model with the highest nested out-of-fold development AUC)."""
    return _settings(as_facts(run), results).get("reference")


# ------------------------------------------------------------------------------------------
# Table 1


_T1_COLUMN = re.compile(r"^(?:(?P<cohort>.*): )?(?P<outcome>[^:=]+)=(?P<value>[^=]+)$")


def table1(run, *, clinical: str = "clinical", labels: Mapping[str, str] | None = None,
           group_labels: Mapping[str, str] | None = None, events_first: bool = True) -> DisplayTable | None:
    """Table 1: patient characteristics by cohort and, within each, by outcome group.

    Parameters
    ----------
    run : path
        The run folder; reads ``RUN/<clinical>/table1.csv`` and ``table1_tests.csv``.
    clinical : str
        The folder of ``dlr table1``'s output inside the run.
    labels : mapping, optional
        Variable -> display name (over :data:`VARIABLE_LABELS`).
    group_labels : mapping, optional
        Outcome value (``"1"``, ``"0"``) -> group name; default ER / NER for
        ``early_recurrence``, else ``"<outcome> = <value>"``.
    events_first : bool
        Show the outcome = 1 group before the outcome = 0 group (as the paper).

    Returns
    -------
    DisplayTable or None
        One row per level in ``table1.csv``'s order (study.yaml's levels); per cohort the two
        groups' summaries, the P value and the test comparing them; then the P value and test
        comparing the cohorts. None without ``table1.csv``.
    """
    run, folder = as_facts(run), clinical
    table = _read_csv(run, folder, "table1.csv", dtype=str)
    if table is None:
        return None
    table = table.fillna("")
    tests = _read_csv(run, folder, "table1_tests.csv", dtype={"variable": str, "scope": str, "test": str})
    cells = []  # (column, cohort or None, outcome, value)
    for column in table.columns[2:]:
        m = _T1_COLUMN.match(column)
        if m is None:
            continue
        cells.append((column, m.group("cohort"), m.group("outcome"), m.group("value")))
    if not cells:
        return None
    outcome = cells[0][2]
    if group_labels is None:
        group_labels = ({"1": "ER", "0": "NER"} if outcome == "early_recurrence"
                        else {v: f"{outcome} = {v}" for *_, v in cells})
    cohorts = list(dict.fromkeys(c for _, c, _, _ in cells))
    sizes = table[table["variable"] == "n"]
    sizes = sizes.iloc[0] if len(sizes) else None

    def size(column) -> int | None:
        try:
            return int(float(sizes[column])) if sizes is not None else None
        except (TypeError, ValueError):
            return None

    test_of = {}
    if tests is not None:
        for row in tests.itertuples(index=False):
            test_of[(row.variable, row.scope)] = (row.p_value, "" if pd.isna(row.test) else str(row.test))
    between = tests is not None and (tests["scope"] == "between_cohorts").any()

    dev = run.dev_cohort
    cohorts.sort(key=lambda c: c != dev)  # the development cohort first
    scopes = [(c if c is not None else "all") for c in cohorts]
    header, groups_of, prefixes = {}, {}, {}
    for cohort in cohorts:
        mine = [cell for cell in cells if cell[1] == cohort]
        mine.sort(key=lambda cell: (cell[3] != "1") if events_first else (cell[3] == "1"))
        groups_of[cohort] = mine
        total = sum(size(col) or 0 for col, *_ in mine)
        prefixes[cohort] = f"{cohort_label(cohort)} cohort (n = {total}): " if cohort is not None else ""
        for col, _, _, value in mine:
            n = size(col)
            header[col] = f"{prefixes[cohort]}{group_labels.get(value, value)}" + (f" (n = {n})" if n is not None else "")
    columns = ["Characteristic", "Level"]
    for cohort in cohorts:
        columns += [header[col] for col, *_ in groups_of[cohort]] + [f"{prefixes[cohort]}P value"]
    if between:
        columns += ["Between cohorts: P value"]
    symbols = {}  # test -> its footnote symbol, in order of first use

    rows, used = [], []
    body = table[table["variable"] != "n"]
    for variable, block in body.groupby("variable", sort=False):
        label = variable_label(variable, labels)
        used.append(variable)
        continuous = block["level"].isin(["mean ± SD", "median (Q1, Q3)"]).any()
        for k, (_, line) in enumerate(block.iterrows()):
            level = line["level"]
            out = [label if k == 0 else "", level if continuous or level == "missing" else level_label(level)]
            for cohort, scope in zip(cohorts, scopes):
                out += [line[col] for col, *_ in groups_of[cohort]]
                out.append(_test_cell(test_of, variable, scope, symbols) if k == 0 else "")
            if between:
                out.append(_test_cell(test_of, variable, "between_cohorts", symbols) if k == 0 else "")
            rows.append(out)
    frame = pd.DataFrame(rows, columns=columns)
    tested = {t for (_, _), (_, t) in test_of.items() if t}
    abbreviations = [a for v in used for a in re.findall(r"\b(AFP|ALT|AST|GGT|TBIL|ALB)\b", variable_label(v, labels))]
    if outcome == "early_recurrence":
        abbreviations = ["ER", "NER"] + abbreviations
    if body["level"].eq("mean ± SD").any():
        abbreviations.append("SD")
    if body["level"].eq("median (Q1, Q3)").any():
        abbreviations.append("Q1, Q3")
    continuous_any = body["level"].isin(["mean ± SD", "median (Q1, Q3)"]).any()
    notes = _join(
        "Categorical variables: number of patients (percentage of the group's patients with a value)"
        + ("; continuous variables: mean ± SD where the groups were compared by the t test, median (Q1, Q3)"
           " where by the Mann-Whitney U test." if continuous_any else "."),
        "Within each cohort the outcome groups are compared; the last P value compares the cohorts"
        " (all patients)." if between else "",
        "Tests: " + "; ".join(f"{mark} {name}" for name, mark in symbols.items())
        + " (chi-squared with Yates' correction for 2 × 2 tables, Fisher's exact test when an expected"
        " count is below 5; Shapiro-Wilk normality in each group chooses Welch's t test or Mann-Whitney)."
        if symbols else "",
        "\"not testable\": constant within the scope (no P value)." if "not testable" in tested else "",
        "Cut-point levels follow study.yaml.",
        _abbreviations(abbreviations),
    )
    what = "outcome group" if outcome != "early_recurrence" else "early recurrence (ER) and non-early recurrence (NER) groups"
    caption = (f"Clinical-radiological characteristics of the patients in the "
               f"{_names([cohort_text(c) for c in cohorts if c is not None]) or 'study'} "
               f"cohort{'s' if len(cohorts) > 1 else ''}, by {what}.")
    return DisplayTable("tbl-1-characteristics", caption, frame, notes)


#: footnote symbols of the tests behind Table 1's P values, in order of first use
TEST_SYMBOLS = ("*", "†", "‡", "§", "‖", "¶")


def _test_cell(test_of: dict, variable: str, scope: str, symbols: dict) -> str:
    """The P value with its test's footnote symbol (``symbols``: test -> symbol, extended here);
    a dash where nothing was tested, "not testable" where the variable is constant."""
    if (variable, scope) not in test_of:
        return DASH
    p, test = test_of[(variable, scope)]
    if test == "not testable":
        return "not testable"
    if test and test not in symbols:
        symbols[test] = TEST_SYMBOLS[len(symbols)] if len(symbols) < len(TEST_SYMBOLS) else f"[{len(symbols) + 1}]"
    return (format_p(p) if _finite(p) else DASH) + (symbols[test] if test else "")


# ------------------------------------------------------------------------------------------
# Tables 2 and 4: discrimination and operating points


_METRICS = (("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"), ("Specificity", "specificity"),
            ("PPV", "ppv"), ("NPV", "npv"))
#: the spanning header over the operating-point columns of Tables 2 and 4 ("group: column")
THRESHOLD_GROUP = "At the threshold (95% CI)"


def _discrimination_frame(perf: pd.DataFrame, tests: pd.DataFrame | None, settings: dict, models: Sequence[str],
                          labels: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Model x cohort rows: n (events), AUC (95% CI), accuracy ... NPV, and one P column per
    non-development cohort (unpaired DeLong, on the rows of the cohort it is compared with)."""
    cohorts = _cohorts(perf, settings)
    dev, oof = _dev_cohort(perf, settings), _oof_cohort(perf, settings)
    others = [c for c in cohorts if c not in (dev, oof)]
    p_of = {}
    if tests is not None:
        for row in tests.itertuples(index=False):
            p_of[(row.model, row.cohort_a, row.cohort_b)] = row.p_value
    p_columns = [f"P value vs {cohort_text(c)}" for c in others] if tests is not None else []
    columns = (["Model", "Cohort", "n (events)", "AUC (95% CI)"] + [f"{THRESHOLD_GROUP}: {name}" for name, _ in _METRICS]
               + p_columns)
    indexed = perf.set_index(["model", "cohort"])
    rows, shown = [], []
    for model in models:
        first = True
        for cohort in cohorts:
            if (model, cohort) not in indexed.index:
                continue
            r = indexed.loc[(model, cohort)]
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            named = cohort_label(cohort) + (" (apparent)" if cohort == dev and oof else "")
            line = [(labels or {}).get(model, model) if first else "", named,
                    f"{format_count(r['n'])} ({format_count(r['n_events'])})",
                    format_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"])]
            line += [format_ci(r.get(key), r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")) for _, key in _METRICS]
            for other in (others if tests is not None else []):
                key = (model, cohort, other)
                line.append(format_p(p_of[key]) if key in p_of else DASH)
            rows.append(line)
            first = False
        if not first:
            shown.append(model)
    return pd.DataFrame(rows, columns=columns), shown


def _cohort_phrase(perf: pd.DataFrame, settings: dict) -> str:
    """"training (apparent and out-of-fold) and validation cohorts"."""
    dev, oof = _dev_cohort(perf, settings), _oof_cohort(perf, settings)
    names = []
    for cohort in _cohorts(perf, settings):
        if cohort == oof:
            continue
        names.append(f"{cohort} (apparent and out-of-fold)" if cohort == dev and oof else cohort)
    return f"{_names(names)} cohort{'s' if len(names) > 1 else ''}"


def _threshold_note(perf: pd.DataFrame, settings: dict, models: Sequence[str]) -> str:
    dev = _dev_cohort(perf, settings)
    source = settings.get("threshold_source", {})
    rows = perf[(perf["cohort"] == dev) & perf["model"].isin(models)]
    if "threshold_source" in rows.columns:
        source = {**{r.model: r.threshold_source for r in rows.itertuples(index=False)}, **source}
    oof = [m for m in models if source.get(m) == "out-of-fold"]
    apparent = [m for m in models if source.get(m) == "apparent"]
    unknown = [m for m in models if m not in oof and m not in apparent]
    parts = []
    if oof:
        parts.append(f"on the {dev} cohort's out-of-fold predictions ({_names(oof)})")
    if apparent:
        parts.append(f"on the {dev} cohort's (apparent) predictions ({_names(apparent)})")
    if unknown:
        parts.append(f"on the {dev} cohort ({_names(unknown)})")
    return (f"Accuracy, sensitivity, specificity, PPV and NPV are at each model's Youden-index threshold, chosen "
            f"{' and '.join(parts)} and applied unchanged to every cohort, with Wilson 95% CIs.")


def _p_note(perf: pd.DataFrame, settings: dict, tests) -> str:
    if tests is None:
        return ""
    dev, oof = _dev_cohort(perf, settings), _oof_cohort(perf, settings)
    text = (f"P value: unpaired DeLong test of the model's AUC in the {dev} cohort"
            f"{' (and in its out-of-fold predictions, on that row)' if oof else ''} against the named cohort.")
    return text


def _oof_note(perf: pd.DataFrame, settings: dict) -> str:
    dev, oof = _dev_cohort(perf, settings), _oof_cohort(perf, settings)
    if oof is None:
        return (f"The {dev} cohort's AUCs are apparent (the models were fitted on these patients) and so "
                f"optimistic; no out-of-fold predictions were analysed.")
    return (f"{cohort_label(dev)}: apparent performance of the models fitted on every {dev} patient (optimistic); "
            f"{cohort_label(oof)}: each patient scored by the whole modelling chain refitted without that "
            "patient's fold (nested cross-validation), the honest development estimate.")


def table2(run, *, results: str = "results") -> DisplayTable | None:
    """Table 2: the five radiomics classifiers in every cohort (apparent training, out-of-fold
    training, validation): n (events), AUC (95% CI), accuracy, sensitivity, specificity, PPV,
    NPV and the unpaired DeLong P of training against validation.

    None without ``RUN/<results>/performance.csv`` or without a radiomics model in it.
    """
    run = as_facts(run)
    perf = _performance(run, results)
    if perf is None:
        return None
    settings = _settings(run, results)
    models = [m for m in RADIOMICS if m in set(perf["model"])]
    if not models:
        return None
    tests = _read_csv(run, results, "cohort_tests.csv", dtype={"model": str, "cohort_a": str, "cohort_b": str})
    frame, shown = _discrimination_frame(perf, tests, settings, models)
    notes = _join(
        _oof_note(perf, settings),
        "AUC with DeLong 95% CI.",
        _threshold_note(perf, settings, shown),
        _p_note(perf, settings, tests),
        _abbreviations(["AUC", "CI", "PPV", "NPV", *[m.split("-", 1)[1] for m in shown]]),
    )
    caption = f"Discrimination performance of the radiomics classifiers in the {_cohort_phrase(perf, settings)}."
    return DisplayTable("tbl-2-classifiers", caption, frame, notes)


def table4(run, *, best_model: str | None = None, results: str = "results", models: str = "models",
           reference: str | None = None) -> DisplayTable | None:
    """Table 4: CR, the best radiomics model, DL-ResNet10/18/34, RCR and DLRCR, with the columns
    of Table 2.

    Parameters
    ----------
    best_model : str, optional
        The radiomics model shown (default: :func:`best_radiomics_model`, the classifier
        ``dlr train`` chose on nested out-of-fold AUC).
    reference : str, optional
        The analysis' reference model, named in the footnote (default: results.json's).

    Returns
    -------
    DisplayTable or None
        None without performance.csv or without any of these models. Deep-learning models that
        are absent are named in the footnote ("not run: the deep-learning arm was not part of
        this run" when none is present).
    """
    run = as_facts(run)
    perf = _performance(run, results)
    if perf is None:
        return None
    settings = _settings(run, results)
    best = best_model or best_radiomics_model(run, results=results, models=models)
    present = set(perf["model"])
    wanted = ["CR", best, *DEEP, "RCR", "DLRCR"]
    chosen = [m for m in dict.fromkeys(wanted) if m and m in present]
    if not chosen:
        return None
    tests = _read_csv(run, results, "cohort_tests.csv", dtype={"model": str, "cohort_a": str, "cohort_b": str})
    frame, shown = _discrimination_frame(perf, tests, settings, chosen)
    deep = [m for m in (*DEEP, "DLRCR") if m in present]
    missing_deep = [m for m in (*DEEP, "DLRCR") if m not in present]
    if not deep:
        dl_note = f"DL-ResNet10, DL-ResNet18, DL-ResNet34 and DLRCR: {DL_NOT_RUN}."
    elif missing_deep:
        dl_note = f"{_names(missing_deep)}: not in this run's predictions."
    else:
        dl_note = ""
    reference = reference or settings.get("reference")
    notes = _join(
        f"Radiomics model: {best}, the classifier with the best nested out-of-fold development AUC." if best in shown
        else "",
        dl_note,
        f"Reference model of the analysis ({settings.get('reference_chosen_by', 'as chosen')}): {reference}."
        if reference else "",
        _oof_note(perf, settings),
        "AUC with DeLong 95% CI.",
        _threshold_note(perf, settings, shown),
        _p_note(perf, settings, tests),
        _abbreviations(["CR", "DL", "ResNet", "RCR", "DLRCR", "AUC", "CI", "PPV", "NPV"]),
    )
    caption = (f"Discrimination performance of the clinical-radiological, radiomics, deep-learning and combined "
               f"models in the {_cohort_phrase(perf, settings)}.")
    return DisplayTable("tbl-4-models", caption, frame, notes)


# ------------------------------------------------------------------------------------------
# Table 3


def table3(run, *, logistic: str = "clinical", labels: Mapping[str, str] | None = None) -> DisplayTable | None:
    """Table 3: univariate and multivariate logistic regression on the development cohort.

    Reads ``RUN/<logistic>/univariate.csv``, ``multivariate.csv`` and ``selected.txt``
    (``dlr logistic``). One row per model term: the variable, the level against its reference
    (``per unit`` for a continuous variable), the odds ratio (95% CI) and Wald P of each model;
    ``—`` in the multivariate columns for a variable that did not enter it. None without
    ``univariate.csv``.
    """
    run, folder = as_facts(run), logistic
    uni = _read_csv(run, folder, "univariate.csv", dtype={"variable": str, "level": str, "reference": str})
    if uni is None:
        return None
    multi = _read_csv(run, folder, "multivariate.csv", dtype={"variable": str, "level": str, "reference": str})
    uni = uni.assign(level=uni["level"].fillna(""), reference=uni["reference"].fillna(""))
    multi_of = {}
    if multi is not None:
        multi = multi.assign(level=multi["level"].fillna(""))
        multi_of = {(r.variable, r.level): r for r in multi.itertuples(index=False)}
    selected = [s.strip() for s in (run.text(f"{folder}/selected.txt") or "").splitlines() if s.strip()]
    settings = _provenance_settings(run, folder, "univariate.csv")
    alpha = settings.get("alpha", 0.05)
    dev = settings.get("dev_cohort", "training")
    rows, last = [], None
    for r in uni.itertuples(index=False):
        label = variable_label(r.variable, labels)
        level = "per unit" if not r.level else f"{level_label(r.level)} vs {level_label(r.reference)}"
        line = [label if r.variable != last else "", level,
                format_ci(r.odds_ratio, r.ci_low, r.ci_high, 2), format_p(r.p_value)]
        m = multi_of.get((r.variable, r.level))
        line += [format_ci(m.odds_ratio, m.ci_low, m.ci_high, 2), format_p(m.p_value)] if m is not None \
            else [DASH, DASH]
        rows.append(line)
        last = r.variable
    frame = pd.DataFrame(rows, columns=["Variable", "Comparison", "Univariate: OR (95% CI)", "Univariate: P value",
                                        "Multivariate: OR (95% CI)", "Multivariate: P value"])
    abbreviations = [a for v in dict.fromkeys(uni["variable"])
                     for a in re.findall(r"\b(AFP|ALT|AST|GGT|TBIL|ALB)\b", variable_label(v, labels))]
    notes = _join(
        f"Logistic regression on the {dev} cohort; odds ratios with Wald 95% CIs and Wald P values.",
        f"Variables with P < {alpha:g} in the univariate analysis entered the multivariate model"
        f"{' (a categorical variable by the joint Wald test of its levels)' if (uni['variable'].duplicated()).any() else ''};",
        f"those with multivariate P < {alpha:g} form the CR model: "
        f"{_names([variable_label(s, labels) for s in selected])}." if selected
        else f"no variable reached multivariate P < {alpha:g}.",
        "—: not entered in the multivariate model.",
        _abbreviations(["OR", "CI", "CR", *abbreviations]),
    )
    caption = (f"Univariate and multivariate logistic regression analyses of clinical-radiological characteristics "
               f"for predicting early recurrence in the {dev} cohort.")
    return DisplayTable("tbl-3-logistic", caption, frame, notes)


# ------------------------------------------------------------------------------------------
# supplementary tables


def delong_table(run, *, results: str = "results") -> DisplayTable | None:
    """Supplementary: the paired DeLong comparisons of every pair of models, one matrix per
    cohort. Cell (row A, column B): AUC(A) − AUC(B) and, in brackets, the Holm-adjusted P
    (within cohort) of ``comparisons.csv``; the upper triangle only."""
    run = as_facts(run)
    comp = _read_csv(run, results, "comparisons.csv", dtype={"cohort": str, "model_a": str, "model_b": str})
    if comp is None:
        return None
    settings = _settings(run, results)
    perf = _performance(run, results)
    order = _model_order(perf, settings) if perf is not None else list(settings.get("models", []))
    present = list(dict.fromkeys([*comp["model_a"], *comp["model_b"]]))
    order = [m for m in order if m in present] + [m for m in present if m not in order]
    cohorts = list(dict.fromkeys(comp["cohort"]))
    if perf is not None:
        cohorts = [c for c in _cohorts(perf, settings) if c in cohorts] + \
            [c for c in cohorts if c not in set(perf["cohort"])]
    rows = []
    for cohort in cohorts:
        part = comp[comp["cohort"] == cohort]
        models = [m for m in order if m in set(part["model_a"]) | set(part["model_b"])]
        pos = {m: k for k, m in enumerate(models)}
        cell = {}
        for r in part.itertuples(index=False):
            a, b, diff = r.model_a, r.model_b, r.diff
            if pos[a] > pos[b]:
                a, b, diff = b, a, -diff if _finite(diff) else diff
            cell[(a, b)] = f"{format_number(diff)} ({format_p(r.p_adjusted)})"
        for i, a in enumerate(models[:-1]):
            line = {"Cohort": cohort_label(cohort) if i == 0 else "", "Model": a}
            for j, b in enumerate(order):
                if b not in pos:
                    line[b] = ""
                elif pos[b] == i:
                    line[b] = DASH
                else:
                    line[b] = cell.get((a, b), "") if pos[b] > i else ""
            rows.append(line)
    columns = ["Cohort", "Model", *[m for m in order[1:]]]
    frame = pd.DataFrame(rows).reindex(columns=columns).fillna("")
    notes = _join(
        "Each cell: difference in AUC (row model minus column model) and, in brackets, the P value of the paired "
        "DeLong test on the patients both models scored, Holm-adjusted over all pairs within the cohort "
        "(unadjusted P values and the DeLong and bootstrap CIs of each difference are in comparisons.csv).",
        _abbreviations(["AUC"]),
    )
    caption = "Pairwise comparison of the models' AUCs by the paired DeLong test in each cohort."
    return DisplayTable("tbl-s-delong", caption, frame, notes)


def _erasl_label(run: RunFacts, models: str) -> str | None:
    """How ``dlr train`` named the ERASL score (``parameters.json`` key ``erasl``)."""
    try:
        document = run.document(f"{models}/parameters.json")
    except InputError:
        return None
    label = document.get("erasl") if isinstance(document, dict) else None
    return str(label) if label else None


def staging_table(run, *, best_model: str | None = None, results: str = "results", staging: str = "staging",
                  models: str = "models") -> DisplayTable | None:
    """Supplementary: the staging systems and inflammation indexes (BCLC, CNLC, ERASL, NLR,
    PLR, LMR) against the best model: per cohort n, AUC (95% CI) and the paired DeLong P against
    the best model (default: results.json's reference). None without any comparator in
    performance.csv."""
    run = as_facts(run)
    perf = _performance(run, results)
    if perf is None:
        return None
    settings = _settings(run, results)
    comparators = [m for m in COMPARATORS if m in set(perf["model"])]
    if not comparators:
        return None
    best = best_model or settings.get("reference")
    comp = _read_csv(run, results, "comparisons.csv", dtype={"cohort": str, "model_a": str, "model_b": str})
    p_of = {}
    if comp is not None:
        for r in comp.itertuples(index=False):
            p_of[(r.cohort, r.model_a, r.model_b)] = p_of[(r.cohort, r.model_b, r.model_a)] = r.p_value
    cohorts = [c for c in _cohorts(perf, settings)
               if perf[(perf["cohort"] == c) & perf["model"].isin(comparators)].shape[0]]
    indexed = perf.set_index(["model", "cohort"])
    listed = ([best] if best and best in set(perf["model"]) else []) + [m for m in comparators if m != best]
    rows = []
    for model in listed:
        line = {"Model": model}
        for cohort in cohorts:
            name = cohort_label(cohort)
            if (model, cohort) in indexed.index:
                r = indexed.loc[(model, cohort)]
                r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
                line[f"{name}: n"] = format_count(r["n"])
                line[f"{name}: AUC (95% CI)"] = format_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"])
            else:
                line[f"{name}: n"], line[f"{name}: AUC (95% CI)"] = DASH, DASH
            if best:
                key = (cohort, model, best)
                line[f"{name}: P value vs {best}"] = DASH if model == best else \
                    (format_p(p_of[key]) if key in p_of else DASH)
        rows.append(line)
    erasl = _erasl_label(run, models)
    if erasl and erasl != "ERASL":
        for line in rows:
            if line["Model"] == "ERASL":
                line["Model"] = erasl
    frame = pd.DataFrame(rows).fillna(DASH)
    # patients of the analysed cohorts without a system's score: its inputs were missing
    totals = perf.groupby("cohort")["n"].max()
    short = [m for m in comparators if any(
        (m, c) in indexed.index and float(indexed.loc[(m, c), "n"]) < float(totals[c]) for c in cohorts)]
    missing = _read_csv(run, staging, "staging_missing.csv", dtype=str)
    missing_note = ""
    if short:
        missing_note = f"Fewer patients than the cohort for {_names(short)}: their inputs were missing"
        if missing is not None and {"system", "patient_id"} <= set(missing.columns):
            counts = missing[missing["system"].isin(short)].groupby("system")["patient_id"].nunique()
            if len(counts):
                missing_note += " (staging_missing.csv: " + ", ".join(
                    f"{s} {int(counts[s])} patients" for s in short if s in counts) + ")"
        missing_note += "."
    erasl_note = ("ERASL (refit): the preoperative ERASL predictors refitted on the development cohort (no published "
                  "coefficients in study.yaml), so its development AUC is apparent."
                  if erasl and "refit" in erasl and "ERASL" in comparators else "")
    notes = _join(
        "Scores: BCLC stage 0, A, B, C, D coded 0-4; CNLC Ia-IV coded 1-7; ERASL the preoperative risk score; "
        "NLR and PLR the ratios; LMR negated (a lower ratio means a higher risk).",
        "AUC with DeLong 95% CI.",
        f"P value: paired DeLong test against {best} on the patients both scored, unadjusted "
        "(Holm-adjusted values in the pairwise comparison table)." if best else "",
        f"{best}: the analysis' reference model ({settings.get('reference_chosen_by', 'as chosen')}); its "
        f"{_dev_cohort(perf, settings)} AUC is apparent." if best and best == settings.get("reference") else "",
        erasl_note,
        missing_note,
        _abbreviations(["BCLC", "CNLC", "ERASL", "NLR", "PLR", "LMR", "AUC", "CI"]),
    )
    caption = (f"Discrimination of the staging systems and inflammation-based indexes"
               f"{f' compared with the {best} model' if best else ''}.")
    return DisplayTable("tbl-s-staging", caption, frame, notes)


def scanner_table(run, *, results: str = "results") -> DisplayTable | None:
    """Supplementary: AUCs by stratum (``subgroups.csv``, e.g. MRI scanner) for every model and
    cohort: level, n, events, AUC (95% CI), and the P value between the levels once per model
    and cohort. None without subgroups.csv."""
    run = as_facts(run)
    sub = _read_csv(run, results, "subgroups.csv",
                    dtype={"model": str, "cohort": str, "stratifier": str, "level": str, "test_between": str})
    if sub is None:
        return None
    settings = _settings(run, results)
    perf = _performance(run, results)
    order = _model_order(perf, settings) if perf is not None else []
    order = [m for m in order if m in set(sub["model"])] + [m for m in dict.fromkeys(sub["model"]) if m not in order]
    cohorts = _cohorts(perf, settings) if perf is not None else []
    cohorts = [c for c in cohorts if c in set(sub["cohort"])] + \
        [c for c in dict.fromkeys(sub["cohort"]) if c not in cohorts]
    stratifiers = list(dict.fromkeys(sub["stratifier"]))
    rows = []
    for stratifier in stratifiers:
        for model in order:
            first_model = True
            for cohort in cohorts:
                part = sub[(sub["stratifier"] == stratifier) & (sub["model"] == model) & (sub["cohort"] == cohort)]
                for k, r in enumerate(part.itertuples(index=False)):
                    line = {}
                    if len(stratifiers) > 1:
                        line["Stratifier"] = variable_label(stratifier)
                    line.update({"Model": model if first_model else "",
                                 "Cohort": cohort_label(cohort) if k == 0 else "",
                                 "Level": str(r.level), "n": format_count(r.n), "Events": format_count(r.n_events),
                                 "AUC (95% CI)": format_ci(r.auc, r.auc_ci_low, r.auc_ci_high),
                                 "P value between levels": format_p(r.p_between) if k == 0 else ""})
                    rows.append(line)
                    first_model = False
    frame = pd.DataFrame(rows).fillna("")
    tests = sorted({t for t in sub.get("test_between", pd.Series(dtype=str)).dropna().astype(str) if t})
    names = _names([variable_label(s).lower() if s != "scanner" else "MRI scanner" for s in stratifiers])
    notes = _join(
        "AUC with DeLong 95% CI within each level; NA where a level has a single outcome class.",
        f"P value between levels: {', '.join(tests)} test (unpaired DeLong between two levels; a heterogeneity "
        "test across more)." if tests else "P value between levels: unpaired DeLong test.",
        "Thresholds are not involved (discrimination only).",
        _abbreviations(["AUC", "CI"]),
    )
    caption = f"AUCs of the models stratified by {names} in each cohort."
    return DisplayTable("tbl-s-scanner", caption, frame, notes)


def harmonization_table(run, *, results: str = "results") -> DisplayTable | None:
    """Supplementary: the AUCs by batch level (the scanner) of the radiomics models and RCR with
    ComBat harmonisation (the reported models) beside those of the same models refitted without
    it on the development cohort (``harmonization_strata.csv``, written by `dlr run` with
    study.yaml ``harmonization``): level, n, events, and each fit's AUC (95% CI). None without
    the file."""
    run = as_facts(run)
    strata = _read_csv(run, results, "harmonization_strata.csv",
                       dtype={"model": str, "cohort": str, "stratifier": str, "level": str})
    if strata is None:
        return None
    harmonised = strata["harmonised"].astype(str).str.strip().str.lower().isin(["true", "1"])
    settings = _settings(run, results)
    perf = _performance(run, results)
    cohorts = _cohorts(perf, settings) if perf is not None else []
    cohorts = [c for c in cohorts if c in set(strata["cohort"])] + \
        [c for c in dict.fromkeys(strata["cohort"]) if c not in cohorts]
    stratifiers = list(dict.fromkeys(strata["stratifier"]))
    label = _names([variable_label(x) for x in stratifiers])
    rows = []
    for model in dict.fromkeys(strata["model"]):
        first_model = True
        for cohort in cohorts:
            part = strata[(strata["model"] == model) & (strata["cohort"] == cohort)]
            with_, without = part[harmonised[part.index]], part[~harmonised[part.index]]
            for k, level in enumerate(dict.fromkeys([*with_["level"], *without["level"]])):
                a = with_[with_["level"] == level]
                b = without[without["level"] == level]
                a = a.iloc[0] if len(a) else None
                b = b.iloc[0] if len(b) else None
                rows.append({"Model": model if first_model else "",
                             "Cohort": cohort_label(cohort) if k == 0 else "",
                             label: level_label(level),
                             "n": _counts(a, b, "n"), "Events": _counts(a, b, "n_events"),
                             "AUC with ComBat (95% CI)": DASH if a is None else format_ci(a["auc"], a["auc_ci_low"],
                                                                                           a["auc_ci_high"]),
                             "AUC without ComBat (95% CI)": DASH if b is None else format_ci(b["auc"], b["auc_ci_low"],
                                                                                              b["auc_ci_high"])})
                first_model = False
    frame = pd.DataFrame(rows).fillna("")
    dev = _dev_cohort(perf, settings) if perf is not None else None
    models = list(dict.fromkeys(strata["model"]))
    names = [m.replace("Radiomics-", "") for m in models]  # LR, ..., RCR
    same = "the same patients, folds, seed and RCR classifier" if "RCR" in models else \
        "the same patients, folds and seed"
    notes = _join(
        "AUC with DeLong 95% CI within each level; NA where a level has a single outcome class.",
        "With ComBat: the reported models (ComBat fitted on development patients only, applied unchanged to the "
        "other cohorts).",
        "Without ComBat: a sensitivity analysis, the same models refitted on the development cohort without "
        f"harmonisation ({same}; no out-of-fold refits), scoring every patient.",
        f"{cohort_label(dev)} cohort AUCs are apparent (the models were fitted on these patients)." if dev else "",
        "No test compares the two fits.",
        _abbreviations(["AUC", "CI", *names]),
    )
    caption = ("Scanner-stratified AUC with and without ComBat harmonisation." if label == "MRI scanner" else
               f"AUC by {label[:1].lower() + label[1:]} with and without ComBat harmonisation.")
    return DisplayTable("tbl-s-harmonization", caption, frame, notes)


def _counts(a, b, column: str) -> str:
    """A count of the harmonised row ``a`` and the unharmonised ``b``: once when they agree."""
    values = [format_count(r[column]) for r in (a, b) if r is not None]
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def calibration_table(run, *, results: str = "results") -> DisplayTable | None:
    """Supplementary: Brier score, calibration intercept and slope, and the Hosmer-Lemeshow
    chi-squared (df) and P of every probability model in every cohort (performance.csv). None
    without probability models."""
    run = as_facts(run)
    perf = _performance(run, results)
    if perf is None or "brier" not in perf.columns:
        return None
    settings = _settings(run, results)
    prob = perf[np.isfinite(perf["brier"].astype(float))]
    if "score_type" in perf.columns:
        prob = prob[prob["score_type"] == "probability"]
    if prob.empty:
        return None
    models = [m for m in _model_order(perf, settings) if m in set(prob["model"])]
    cohorts = _cohorts(perf, settings)
    rows = []
    indexed = prob.set_index(["model", "cohort"])
    for model in models:
        first = True
        for cohort in cohorts:
            if (model, cohort) not in indexed.index:
                continue
            r = indexed.loc[(model, cohort)]
            r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
            df = f" ({format_count(r['hl_df'])})" if "hl_df" in r.index and _finite(r["hl_df"]) else ""
            rows.append({"Model": model if first else "", "Cohort": cohort_label(cohort),
                         "Brier score": format_number(r["brier"]),
                         "Calibration intercept": format_number(r["cal_intercept"]),
                         "Calibration slope": format_number(r["cal_slope"]),
                         "HL χ² (df)": f"{format_number(r['hl_chi2'], 2)}{df}",
                         "HL P value": format_p(r["hl_p"])})
            first = False
    frame = pd.DataFrame(rows)
    dev = _dev_cohort(perf, settings)
    notes = _join(
        "Calibration intercept: calibration-in-the-large, a of logit P(y = 1) = a + logit(p) with the slope fixed at "
        "1; calibration slope: b of logit P(y = 1) = a + b logit(p) (ideal 0 and 1; Van Calster et al. 2016).",
        f"In the {dev} cohort an unpenalised logistic model's apparent intercept and slope are 0 and 1 by "
        "construction (a penalised one's slope exceeds 1); the out-of-fold rows show its calibration on patients it "
        "did not see.",
        "HL: Hosmer-Lemeshow goodness-of-fit test over groups of predicted risk (df in brackets).",
        _abbreviations(["HL"]),
    )
    caption = "Calibration of the probability models in each cohort."
    return DisplayTable("tbl-s-calibration", caption, frame, notes)


def reclassification_table(run, *, results: str = "results") -> DisplayTable | None:
    """Supplementary: the continuous NRI (with its event and non-event components) and the IDI
    of the reference model over every other model, with bootstrap 95% CIs and P values
    (reclassification.csv). None without the file."""
    run = as_facts(run)
    rec = _read_csv(run, results, "reclassification.csv", dtype={"cohort": str, "reference": str, "model": str})
    if rec is None:
        return None
    settings = _settings(run, results)
    perf = _performance(run, results)
    cohorts = list(dict.fromkeys(rec["cohort"]))
    order = list(dict.fromkeys(rec["model"]))
    if perf is not None:
        cohorts = [c for c in _cohorts(perf, settings) if c in cohorts] + \
            [c for c in cohorts if c not in set(perf["cohort"])]
        order = [m for m in _model_order(perf, settings) if m in order] + \
            [m for m in order if m not in set(perf["model"])]
    rows = []
    for cohort in cohorts:
        part = rec[rec["cohort"] == cohort].set_index("model")
        first = True
        for model in order:
            if model not in part.index:
                continue
            r = part.loc[model]
            r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
            rows.append({"Cohort": cohort_label(cohort) if first else "", "Reference vs model": f"{r['reference']} vs {model}",
                         "n (events)": f"{format_count(r['n'])} ({format_count(r['n_events'])})",
                         "NRI (95% CI)": format_ci(r["nri"], r["nri_ci_low"], r["nri_ci_high"]),
                         "NRI events": format_number(r["nri_events"]),
                         "NRI non-events": format_number(r["nri_nonevents"]),
                         "NRI P value": format_p(r["nri_p_value"]),
                         "IDI (95% CI)": format_ci(r["idi"], r["idi_ci_low"], r["idi_ci_high"]),
                         "IDI P value": format_p(r["idi_p_value"])})
            first = False
    frame = pd.DataFrame(rows)
    references = list(dict.fromkeys(rec["reference"]))
    chosen_by = settings.get("reference_chosen_by")
    boot = settings.get("n_bootstrap")
    notes = _join(
        f"Reference model: {_names(references)}" + (f" ({chosen_by})." if chosen_by else "."),
        "Continuous (category-free) NRI = NRI events + NRI non-events; positive values favour the reference "
        "model. IDI: difference in discrimination slopes (reference minus model).",
        f"95% CIs: bootstrap percentiles ({int(boot)} stratified resamples); P values asymptotic (Pencina et al. "
        "2008)." if _finite(boot) and boot else "P values asymptotic (Pencina et al. 2008).",
        "Index scores (stages, ratios) are mapped to risks by a logistic model fitted on the development cohort.",
        _abbreviations(["NRI", "IDI", "CI"]),
    )
    caption = (f"Net reclassification improvement and integrated discrimination improvement of the "
               f"{_names(references)} model over each other model.")
    return DisplayTable("tbl-s-reclassification", caption, frame, notes)


#: a nomogram of more predictor axes than this is given as a points table, not drawn (its axes
#: would collide on a page)
MAX_NOMOGRAM_AXES = 10


def points_tables(run, *, models: str = "models") -> list[DisplayTable]:
    """Supplementary: the points of each predictor value of every logistic model whose nomogram
    has more than :data:`MAX_NOMOGRAM_AXES` axes (``nomogram.csv``; ``rms::nomogram``'s scaling),
    with the total points that give each predicted probability (``nomogram_axes.csv``): the
    nomogram as a table a reader can add up."""
    run = as_facts(run)
    table = _read_csv(run, models, "nomogram.csv", dtype={"model": str, "variable": str, "level_or_value": str})
    axes = _read_csv(run, models, "nomogram_axes.csv", dtype={"model": str, "axis": str})
    if table is None:
        return []
    out = []
    for model in dict.fromkeys(table["model"]):
        rows = table[table["model"] == model]
        if rows["variable"].nunique() <= MAX_NOMOGRAM_AXES:
            continue
        frame = pd.DataFrame({"Predictor": [v if k == 0 else "" for v, k in
                                            zip(rows["variable"], rows.groupby("variable", sort=False).cumcount())],
                              "Value": rows["level_or_value"].astype(str).tolist(),
                              "Points": [format_number(p, 1) for p in rows["points"]]})
        probability = axes[(axes["model"] == model) & (axes["axis"] == "probability")] if axes is not None else None
        scale = ""
        if probability is not None and len(probability):
            scale = ("Total points -> predicted probability: " + ", ".join(
                f"{format_number(t, 1)} -> {format_number(p, 2)}" for t, p in
                zip(probability["total_points"], probability["probability"])) + ".")
        notes = _join(f"{model}'s nomogram has {rows['variable'].nunique()} predictor axes, too many to draw legibly: "
                      "its points are listed instead (rms::nomogram's scaling: 100 points for the widest-ranging "
                      "predictor). Add the points of each predictor's value, interpolating between the values "
                      "listed for a numeric one.", scale)
        label = f"tbl-s-points-{''.join(c if c.isalnum() else '-' for c in model.lower())}"
        out.append(DisplayTable(label, f"Points of the {model} model's predictors (its nomogram as a table).", frame,
                                notes))
    return out


def selection_table(run, *, models: str = "models") -> DisplayTable | None:
    """Supplementary (the paper's S4, with stability): each predictor of the final models, the CR
    factors (``cr_selection.csv``) and the radiomics features with their LASSO coefficient on the
    development cohort (``radiomics_selected.csv``), and in how many of the nested out-of-fold
    refits the same selection chose it (``oof_selection.csv``); the notes give the candidates
    per event of each chain and the folds whose selection failed and was stood in for by the
    development cohort's (a partial leak). None without the radiomics selection."""
    run = as_facts(run)
    selected = _read_csv(run, models, "radiomics_selected.csv", dtype={"feature": str})
    if selected is None:
        return None
    cr = _read_csv(run, models, "cr_selection.csv", dtype={"variable": str})
    oof = _read_csv(run, rf.OOF_SELECTION, dtype={"chain": str, "item": str})
    counts = _read_csv(run, models, "selection_counts.csv", dtype={"step": str})
    folds = sorted(set(oof["fold"])) if oof is not None else []
    own = oof[oof["from_development"].astype(str).str.lower() != "true"] if oof is not None else None

    def recurs(chain: str, item: str) -> str:
        if own is None:
            return NA
        hits = own[(own["chain"] == chain) & (own["item"] == item)]["fold"].nunique()
        return f"{hits}/{len(folds)}"

    rows = []
    if cr is not None:
        for variable in cr.loc[cr["selected"].astype(str).str.lower() == "true", "variable"]:
            rows.append({"Model": "CR", "Predictor": variable, "Coefficient": "",
                         "Selected out of fold": recurs("CR", variable)})
    for row in selected.itertuples():
        rows.append({"Model": "Radiomics", "Predictor": row.feature,
                     "Coefficient": format_number(row.coefficient), "Selected out of fold": recurs("radiomics", row.feature)})
    frame = pd.DataFrame(rows)
    notes = []
    if own is not None and folds:
        radiomics = own[own["chain"] == "radiomics"]
        per_fold = radiomics.groupby("fold")["item"].nunique().reindex(folds, fill_value=0)
        final = set(selected["feature"])
        recurring = {f for f in final if radiomics.loc[radiomics["item"] == f, "fold"].nunique() > 0}
        always = {f for f in final if radiomics.loc[radiomics["item"] == f, "fold"].nunique() == len(folds)}
        others = set(radiomics["item"]) - final
        notes.append(f"Each fold's refit selected {format_count(per_fold.min())}-{format_count(per_fold.max())} "
                     f"radiomics features; {len(recurring)} of the final {len(final)} were selected by at least one "
                     f"refit and {len(always)} by all {len(folds)}; the refits selected {len(others)} features the "
                     "final model does not hold.")
        stood_in = sorted(set(oof.loc[oof["from_development"].astype(str).str.lower() == "true", "fold"]))
        if stood_in:
            notes.append(f"Fold{'s' if len(stood_in) > 1 else ''} {', '.join(map(str, stood_in))}: the refit's own "
                         "selection failed and the development cohort's selection stood in for it, a partial leak "
                         "(that selection saw the fold's patients); those folds are not counted here.")
    if counts is not None:
        extracted = counts.loc[counts["step"] == "extracted", "n_features"]
        screened = counts.loc[counts["step"].str.startswith("t test"), "n_features"]
        dev = run.cohort_counts().get(run.dev_cohort)
        if len(extracted) and dev:
            events = dev[1]
            notes.append(f"Candidates per event in the development cohort ({format_count(events)} events): "
                         f"{format_number(float(extracted.iloc[0]) / events, 1)} radiomics features extracted "
                         f"per event" + (f", {format_number(float(screened.iloc[0]) / events, 1)} after the "
                                         "univariate screen" if len(screened) else "") + ".")
    notes.append("Coefficient: the LASSO coefficient of the standardised feature on the development cohort. Selected "
                 "out of fold: the number of nested out-of-fold refits (each without one fold of the development "
                 "cohort) whose own selection chose the predictor.")
    caption = ("Predictors of the final models, their LASSO coefficients and how often the nested out-of-fold refits "
               "selected them (selection stability).")
    return DisplayTable("tbl-s-selection", caption, frame, _join(*notes))


def sample_size_table(run, *, logistic: str = "clinical") -> DisplayTable | None:
    """Supplementary: the minimum sample size of Riley et al. for the CR model's candidate
    parameters (``sample_size.csv`` of ``dlr logistic``): patients, events and events per
    candidate parameter required by each criterion, the minimum, and the development cohort's
    actual numbers. None without the file."""
    run, folder = as_facts(run), logistic
    size = _read_csv(run, folder, "sample_size.csv")
    if size is None:
        return None
    s = size.iloc[0]
    p, phi = float(s["parameters"]), float(s["prevalence"])

    def line(criterion, n, events=None):
        events = n * phi if events is None and _finite(n) else events
        return {"Criterion": criterion, "Patients": format_count(math.ceil(n)) if _finite(n) else NA,
                "Events": format_count(events) if _finite(events) else NA,
                "EPP": format_number(events / p, 1) if _finite(events) and p else NA}

    rows = [line(f"(i) Expected shrinkage ≥ {float(s['shrinkage']):g}", s["n_shrinkage"]),
            line("(ii) Optimism in Nagelkerke R² ≤ 0.05", s["n_optimism"]),
            line("(iii) Overall risk within ± 0.05", s["n_intercept"]),
            line("Minimum required (largest of i-iii)", s["n_required"], s.get("events_required"))]
    if "n_available" in s.index and _finite(s["n_available"]):
        rows.append(line("Development cohort (actual)", s["n_available"],
                         s["events_available"] if _finite(s.get("events_available")) else None))
    frame = pd.DataFrame(rows)
    adequate = s.get("adequate")
    verdict = ""
    if isinstance(adequate, (bool, np.bool_)) or str(adequate).lower() in ("true", "false"):
        ok = str(adequate).lower() == "true"
        verdict = ("The development cohort reaches the minimum." if ok else
                   "The development cohort is below the minimum: expect overfitting, and read the apparent "
                   "performance with care.")
    r2_nagelkerke = float(s["r2_cs"]) / float(s["max_r2_cs"]) if _finite(s.get("max_r2_cs")) else float("nan")
    notes = _join(
        f"Riley et al. (BMJ 2020;368:m441) criteria for a binary outcome with {format_count(p)} candidate predictor "
        f"parameters, outcome prevalence {format_number(phi)}, anticipated Cox-Snell R² {format_number(s['r2_cs'])}"
        f" (Nagelkerke {format_number(r2_nagelkerke, 2)}; maximum Cox-Snell R² {format_number(s['max_r2_cs'])}).",
        "Events = patients × prevalence; EPP = events / candidate parameters.",
        verdict,
        _abbreviations(["EPP"]),
    )
    caption = ("Minimum sample size for developing the clinical-radiological model (Riley et al. criteria) against "
               "the development cohort.")
    return DisplayTable("tbl-s-sample-size", caption, frame, notes)


#: where a run may hold second-reader kappas (columns of ``core.stats.agreement.kappa_table``)
KAPPA_FILES = ("kappa.csv", "agreement.csv")


def agreement_table(run, *, models: str = "models", clinical: str = "clinical") -> DisplayTable | None:
    """Supplementary: reader agreement. Radiomics reproducibility per phase from ``models/icc.csv``
    (patients read twice, median ICC (IQR), features with ICC above the threshold); and Cohen's
    kappa of each second-reader radiological feature where the run holds a kappa file
    (``kappa.csv`` in the clinical or models folder, columns of
    ``core.stats.agreement.kappa_table``). None when neither exists."""
    run = as_facts(run)
    icc = _read_csv(run, models, "icc.csv", dtype={"feature": str})
    kappa = None
    for folder in (clinical, models):
        for name in KAPPA_FILES:
            kappa = _read_csv(run, folder, name, dtype={"feature": str})
            if kappa is not None and "kappa" in kappa.columns:
                break
            kappa = None
        if kappa is not None:
            break
    if icc is None and kappa is None:
        return None
    threshold = _provenance_settings(run, models, "icc.csv").get("icc_threshold", 0.90)
    rows = []
    if icc is not None:
        phases = icc["feature"].str.split("_", n=1).str[0]
        kept = icc["kept"].astype(str).str.lower() == "true" if "kept" in icc.columns \
            else icc["icc"].astype(float) > threshold
        groups = [(phase, phases == phase) for phase in dict.fromkeys(phases)]
        if len(groups) > 1:
            groups.append(("All phases", pd.Series(True, index=icc.index)))
        for phase, inside in groups:
            values = icc.loc[inside, "icc"].astype(float)
            q1, med, q3 = np.nanpercentile(values, [25, 50, 75]) if values.notna().any() else (np.nan,) * 3
            k, total = int(kept[inside].sum()), int(inside.sum())
            rows.append({"Measure": "ICC(2,1), radiomics features", "Phase or feature": phase,
                         "Patients": format_count(icc.loc[inside, "n_subjects"].max())
                         if "n_subjects" in icc.columns else NA,
                         "Estimate": f"median {format_number(med)} (IQR {format_number(q1)}–{format_number(q3)})",
                         "Agreement": f"{k} of {total} features with ICC > {threshold:.2f} "
                                      f"({format_number(100 * k / total, 1)}%)" if total else NA})
    if kappa is not None:
        for r in kappa.itertuples(index=False):
            rows.append({"Measure": "Cohen's kappa, radiological features", "Phase or feature": variable_label(r.feature),
                         "Patients": format_count(getattr(r, "n", np.nan)),
                         "Estimate": format_ci(r.kappa, getattr(r, "ci_low", np.nan), getattr(r, "ci_high", np.nan)),
                         "Agreement": str(getattr(r, "agreement", "")) if pd.notna(getattr(r, "agreement", "")) else ""})
    frame = pd.DataFrame(rows)
    notes = _join(
        f"ICC(2,1): two-way random effects, absolute agreement, single rater (Koo & Li 2016), between the features "
        f"extracted from the two readers' masks of the development patients read twice; features with ICC > "
        f"{threshold:.2f} were kept for selection." if icc is not None else "",
        "Cohen's kappa with its large-sample 95% CI (Fleiss, Cohen & Everitt 1969); agreement: excellent > 0.80, "
        "substantial > 0.60, moderate > 0.40, poor otherwise." if kappa is not None
        else "No second-reader radiological features were scored in this run (no kappa file).",
        _abbreviations(["ICC", "IQR"]),
    )
    caption = "Inter-reader agreement: reproducibility of the radiomics features" + \
        (" and of the radiological features." if kappa is not None else ".")
    return DisplayTable("tbl-s-agreement", caption, frame, notes)


def oof_table(run, *, results: str = "results", models: str = "models") -> DisplayTable | None:
    """Supplementary: the honest development estimates. Per fitted model (models.csv): tuning
    CV AUC (mean ± SD), apparent development AUC, nested out-of-fold AUC (95% CI), optimism
    (apparent − out-of-fold), out-of-fold calibration slope, and the AUC in each other cohort.
    None without models.csv and performance.csv."""
    run = as_facts(run)
    table = _models_csv(run, models)
    perf = _performance(run, results)
    if table is None or perf is None:
        return None
    settings = _settings(run, results)
    dev, oof = _dev_cohort(perf, settings), _oof_cohort(perf, settings)
    others = [c for c in _cohorts(perf, settings) if c not in (dev, oof)]
    indexed = perf.set_index(["model", "cohort"])

    def row_of(model, cohort):
        if cohort is None or (model, cohort) not in indexed.index:
            return None
        r = indexed.loc[(model, cohort)]
        return r.iloc[0] if isinstance(r, pd.DataFrame) else r

    rows = []
    for m in table.itertuples(index=False):
        apparent, held = row_of(m.model, dev), row_of(m.model, oof)
        cv = getattr(m, "cv_auc", np.nan)
        line = {"Model": m.model,
                "CV AUC (mean ± SD)": f"{format_number(cv)} ± {format_number(getattr(m, 'cv_auc_sd', np.nan))}"
                if _finite(cv) else DASH,
                f"{cohort_label(dev)} (apparent) AUC (95% CI)":
                    format_ci(apparent["auc"], apparent["auc_ci_low"], apparent["auc_ci_high"]) if apparent is not None
                    else NA}
        oof_auc = held["auc"] if held is not None else getattr(m, "oof_auc", np.nan)
        line["Out-of-fold AUC (95% CI)"] = format_ci(held["auc"], held["auc_ci_low"], held["auc_ci_high"]) \
            if held is not None else format_number(oof_auc)
        line["Optimism (apparent − out-of-fold)"] = format_number(apparent["auc"] - oof_auc) \
            if apparent is not None and _finite(oof_auc) else NA
        line["Out-of-fold calibration slope"] = format_number(getattr(m, "oof_calibration_slope", np.nan))
        for cohort in others:
            r = row_of(m.model, cohort)
            line[f"{cohort_label(cohort)} AUC (95% CI)"] = \
                format_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"]) if r is not None else NA
        rows.append(line)
    frame = pd.DataFrame(rows)
    notes = _join(
        "CV AUC: mean ± SD over the tuning folds of the chosen hyperparameters, after feature selection on every "
        "development patient (optimistic); —: not tuned (CR)." if "cv_auc" in table.columns else "",
        f"Apparent: the final models scoring the {dev} patients they were fitted on. Out-of-fold: each {dev} patient "
        "scored by the whole chain (CR factor selection, ICC, tests, LASSO, tuning, fitting) refitted without that "
        "patient's fold: the honest development estimate. Optimism: apparent minus out-of-fold AUC.",
        "Calibration slope of the out-of-fold predictions (ideal 1; below 1, predictions too extreme).",
        "AUCs with DeLong 95% CIs.",
        _abbreviations(["AUC", "CI", "CV", "SD"]),
    )
    caption = (f"Development estimates of each fitted model: tuning cross-validation, apparent, nested out-of-fold "
               f"and {_names([cohort_text(c) for c in others]) or 'validation'} AUCs.")
    return DisplayTable("tbl-s-oof", caption, frame, notes)


#: the indexes of internal_validation.csv the table shows, with their display names
INTERNAL_VALIDATION_INDEXES = (("AUC", "AUC (C index)"), ("Slope", "Calibration slope"),
                               ("Intercept", "Recalibration intercept (slope free)"), ("Brier", "Brier score"))


def internal_validation_table(run, *, models: str = "models", results: str = "results") -> DisplayTable | None:
    """Supplementary: the optimism-corrected development performance of the logistic models
    (``models/internal_validation.csv``, Harrell's bootstrap as ``rms::validate``): per model
    and procedure, the AUC, calibration slope and intercept and Brier score, each apparent,
    its optimism (± SE) and corrected (apparent − optimism), with the resamples used. None
    without the file."""
    run = as_facts(run)
    iv = _read_csv(run, models, "internal_validation.csv", dtype={"model": str, "procedure": str, "index": str})
    if iv is None:
        return None
    perf = _performance(run, results)
    settings = _settings(run, results)
    dev = _dev_cohort(perf, settings) if perf is not None else settings.get("dev_cohort", "development")
    rows, failures = [], []
    for (model, procedure), part in iv.groupby(["model", "procedure"], sort=False):
        part = part.set_index("index")
        shown = procedure[:1].upper() + procedure[1:]
        first = True
        for index, label in INTERNAL_VALIDATION_INDEXES:
            if index not in part.index:
                continue
            r = part.loc[index]
            se = f" ± {format_number(r['optimism_se'])}" if _finite(r["optimism_se"]) else ""
            rows.append({"Model": model if first else "", "Procedure": shown if first else "",
                         "Measure": label, "Apparent": format_number(r["apparent"]),
                         "Optimism (± SE)": f"{format_number(r['optimism'])}{se}",
                         "Optimism-corrected": format_number(r["corrected"]),
                         "Resamples used": f"{format_count(r['n_resamples'])}/{format_count(r['n_requested'])}"})
            first = False
        head = part.iloc[0]
        failed = int(head["n_failed"]) if _finite(head["n_failed"]) else 0
        empty = int(head["n_no_factor"]) if _finite(head.get("n_no_factor")) else 0
        if failed:
            why = f" ({head['failures']})" if isinstance(head.get("failures"), str) and head["failures"] else ""
            failures.append(f"{model}, {procedure}: {failed} of {format_count(head['n_requested'])} refits failed "
                            f"and were left out{why}.")
        if empty:
            failures.append(f"{model}, {procedure}: on {empty} resample{'s' if empty > 1 else ''} no factor was "
                            "selected; the intercept-only model was kept in the means.")
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    requested = sorted({format_count(b) for b in iv["n_requested"]})
    procedures = set(iv["procedure"])
    notes = _join(
        f"Harrell's bootstrap (Harrell et al. 1996; rms::validate): B = {', '.join(requested)} resamples of the {dev} "
        "patients drawn with replacement; the model refitted on each resample and evaluated on that resample and "
        f"on the original {dev} cohort. Apparent: the model's own performance on the {dev} cohort. Optimism: the "
        "mean over the resamples of the refit's performance on its resample minus that on the original cohort "
        "(± its standard error); optimism-corrected: apparent minus optimism.",
        "Fixed factors: the model's predictors as chosen, refitted on each resample (for a penalised model, its "
        "features and penalty kept)." if "fixed factors" in procedures else "",
        "Selection repeated: the CR model's two-step selection (univariate, then multivariate P < 0.05) redone on "
        "each resample, so the optimism of choosing the factors is counted too." if "selection repeated" in procedures
        else "",
        "Recalibration intercept and calibration slope: a and b of logit P(y = 1) = a + b × linear predictor fitted "
        "together (rms::validate's Intercept and Slope; the calibration table's intercept instead fixes the slope at "
        "1, calibration-in-the-large); a maximum-likelihood fit has apparent 0 and 1 by construction, and the "
        "corrected slope is the shrinkage its predictions need (below 1: too extreme for new patients).",
        "Resamples used: of those requested, the refits that succeeded and on which the measure was defined.",
        " ".join(failures),
        _abbreviations(["AUC", "SE", *dict.fromkeys(iv["model"])]),
    )
    caption = (f"Internal validation of the logistic models on the {dev} cohort: apparent and optimism-corrected "
               "performance by Harrell's bootstrap.")
    return DisplayTable("tbl-s-internal-validation", caption, frame, notes)


# ------------------------------------------------------------------------------------------
# all tables, and the pipe-table text


def report_tables(run, *, best_model: str | None = None, best_radiomics: str | None = None,
                  results: str = "results", models: str = "models", clinical: str = "clinical",
                  logistic: str = "clinical", staging: str = "staging") -> tuple[DisplayTable, ...]:
    """Every table the run's files allow, in the report's order (Tables 1-4, then the
    supplementary ones); tables whose inputs are absent are left out.

    Parameters
    ----------
    best_model : str, optional
        The model the staging comparison is against; default results.json's ``reference``
        (chosen by the analysis on the nested out-of-fold development AUC).
    best_radiomics : str, optional
        Table 4's radiomics model; default models.csv's ``best_classifier``.
    results, models, clinical, logistic, staging : str
        The run's folders of ``dlr analyze``, ``dlr train``, ``dlr table1``, ``dlr logistic``
        and ``dlr staging``.
    """
    run = as_facts(run)
    best_model = best_model or reference_model(run, results=results)
    best_radiomics = best_radiomics or best_radiomics_model(run, results=results, models=models)
    tables = (
        table1(run, clinical=clinical),
        table2(run, results=results),
        table3(run, logistic=logistic),
        table4(run, best_model=best_radiomics, results=results, models=models, reference=best_model),
        delong_table(run, results=results),
        staging_table(run, best_model=best_model, results=results, staging=staging, models=models),
        scanner_table(run, results=results),
        harmonization_table(run, results=results),
        calibration_table(run, results=results),
        reclassification_table(run, results=results),
        sample_size_table(run, logistic=logistic),
        agreement_table(run, models=models, clinical=clinical),
        oof_table(run, results=results, models=models),
        selection_table(run, models=models),
        *points_tables(run, models=models),
        internal_validation_table(run, models=models, results=results),
    )
    return tuple(t for t in tables if t is not None)


#: what pandoc's markdown would read as markup in a cell's text: an HTML tag or entity, emphasis,
#: code, a link, math, a footnote or a strike-out
_MARKUP = re.compile(r"[*_`\[\]$~^]")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def markdown_text(text: str) -> str:
    """``text`` (a name or level from the study) as pandoc markdown that shows it as it is: HTML
    tags and entities, emphasis, code, links and math escaped once (``<script>`` shows as that
    text, not as a tag)."""
    text = str(text).replace("\\", "\\\\")
    text = _TAG.sub("&lt;", _ENTITY.sub("&amp;", text))
    return _MARKUP.sub(lambda m: "\\" + m.group(0), text)


def _cell(value) -> str:
    """A cell's text as :func:`markdown_text`, ``|`` escaped, on one line."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return markdown_text(text).replace("|", "\\|").strip()


def pipe_table(table: DisplayTable) -> str:
    """The table as Quarto/pandoc markdown: a pipe table (header, alignment row, one line per
    row; ``|`` escaped, no newline inside a cell), the caption line ``: caption {#id}``, and
    the notes as a paragraph after it."""
    header = [_cell(c) for c in table.frame.columns]
    align = [":---" if k == 0 else ":---:" for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for values in table.frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in values) + " |")
    caption = _cell(table.caption).replace("\\|", "|")
    text = "\n".join(lines) + f"\n\n: {caption} {{#{table.id}}}\n"
    if table.notes:
        text += "\n" + _cell(table.notes).replace("\\|", "|") + "\n"
    return text
