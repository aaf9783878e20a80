"""CLAIM 2024, CLEAR and METRICS: the checklists imaging journals ask for, filled from a run.

As :mod:`dlr.report.tripod` fills TRIPOD+AI: each item names the facts of the run that address
it and the report section where it is addressed; :func:`imaging_facts` formats those facts from
the run's saved files, :func:`imaging_checklist` joins them to the items, and what the run
cannot know is left to the authors with the item's own request as the note. METRICS is also
scored (:func:`metrics_score`) with its published weights, from the items the run answers,
with the range the items left to the authors still allow.

The item lists (``report/checklists/*.yaml``) paraphrase the published checklists; each file
names its source, the version read and what is known of its licence.

References
----------
Tejani AS, Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical
Imaging (CLAIM): 2024 update. Radiol Artif Intell 2024;6(4):e240300.
Kocak B, Baessler B, Bakas S, et al. CheckList for EvaluAtion of Radiomics research (CLEAR).
Insights Imaging 2023;14:75.
Kocak B, Akinci D'Antonoli T, Mercaldo N, et al. METhodological RadiomICs Score (METRICS).
Insights Imaging 2024;15:8.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from .facts import RunFacts, package_data
from .tripod import AUTHORS, FILLED, PARTLY, _join, item_status

#: checklist key -> (data file, the run's CSV, its name in the report)
CHECKLISTS = {"claim": ("claim2024.yaml", "claim.csv", "CLAIM 2024"),
              "clear": ("clear.yaml", "clear.csv", "CLEAR"),
              "metrics": ("metrics.yaml", "metrics.csv", "METRICS")}
COLUMNS = ["checklist", "item", "section", "topic", "recommendation", "report_section", "status", "value",
           "authors_add"]
METRICS_COLUMNS = COLUMNS + ["weight", "conditions", "answer"]
#: METRICS answers: the run's own ("yes", "no"), not applicable, or the authors'
YES, NO, NOT_APPLICABLE, ASK_AUTHORS = "yes", "no", "not applicable", "authors"


@dataclass(frozen=True)
class Addressed:
    """How a run addresses an item: the facts that fill it, where the report does, and what
    it asks that no run can know (then it is at best partly filled)."""

    facts: tuple
    section: str
    to_complete: str = ""


_A = Addressed

#: CLAIM 2024 items the run addresses (the others are the authors')
CLAIM = {
    "1": _A(("ai_methods",), "sec-abstract", "the title's wording"),
    "2": _A(("study_type", "cohorts", "performance"), "sec-abstract", "the abstract's background and conclusions"),
    "6": _A(("study_type",), "sec-methods-data", "the study goal and the intended use of the model"),
    "7": _A(("data_source",), "sec-methods-data", "how well the data match the intended use"),
    "9": _A(("image_preprocessing",), "sec-methods-predictors"),
    "10": _A(("data_subsets",), "sec-methods-predictors"),
    "12": _A(("missing_data",), "sec-methods-missing"),
    "13": _A(("imaging_protocol",), "sec-methods-predictors", "the acquisition parameters (manufacturer, sequence, "
                                                              "slice thickness, contrast timing)"),
    "14": _A(("outcome",), "sec-methods-outcome", "how the outcome was ascertained and the annotation guidelines"),
    "18": _A(("segmentation_reliability",), "sec-methods-models", "how disagreements between readers were resolved"),
    "19": _A(("data_split",), "sec-methods-participants", "the justification of the proportions"),
    "20": _A(("disjointness",), "sec-methods-participants"),
    "21": _A(("test_sample_size",), "sec-methods-sample-size"),
    "22": _A(("model_description",), "sec-methods-models"),
    "23": _A(("software",), "sec-reproducibility"),
    "24": _A(("initialisation",), "sec-methods-models"),
    "25": _A(("training",), "sec-methods-models"),
    "26": _A(("model_selection",), "sec-methods-models"),
    "27": _A(("ensembling",), "sec-methods-models"),
    "28": _A(("performance_measures",), "sec-methods-performance", "the comparison with published models"),
    "29": _A(("uncertainty", "statistical_comparison"), "sec-methods-performance"),
    "30": _A(("robustness",), "sec-results-subgroups"),
    "31": _A(("explainability",), "sec-results-models", "how the maps were validated"),
    "32": _A(("internal_testing",), "sec-results-performance"),
    "33": _A(("external_testing",), "sec-results-performance"),
    "35": _A(("participants_flow",), "sec-results-participants", "the excluded patients and a flow diagram"),
    "36": _A(("participant_characteristics",), "sec-results-participants"),
    "37": _A(("performance", "fairness"), "sec-results-performance"),
    "38": _A(("performance", "calibration"), "sec-results-performance"),
    "39": _A(("confusion_matrix",), "sec-results-performance", "examples of misclassified cases"),
    "40": _A(("limitations",), "sec-limitations", "the discussion of the limitations"),
    "42": _A(("reviewer_package",), "sec-reproducibility"),
    "43": _A(("code_availability", "model_availability", "data_availability"), "sec-reproducibility",
             "the conditions of access"),
}

#: CLEAR items the run addresses
CLEAR = {
    "1": _A(("ai_methods",), "", "the title's wording"),
    "2": _A(("study_type", "cohorts", "performance"), "sec-abstract", "the abstract's purpose and conclusions"),
    "7": _A(("checklists",), "sec-tripod"),
    "9": _A(("sample_size",), "sec-methods-sample-size"),
    "11": _A(("eligibility",), "sec-methods-participants", "the inclusion and exclusion criteria and how patients "
                                                           "were selected"),
    "12": _A(("pipeline_flow",), "sec-methods-models"),
    "13": _A(("data_source",), "sec-methods-data", "whether the data are private or public"),
    "15": _A(("data_split",), "sec-methods-participants"),
    "16": _A(("imaging_protocol",), "sec-methods-predictors", "the acquisition protocol and its parameters"),
    "17": _A(("predictors",), "sec-methods-predictors"),
    "18": _A(("outcome",), "sec-methods-outcome", "the justification of the reference standard and its limitations"),
    "19": _A(("segmentation",), "sec-methods-predictors", "the segmentation software, method and delineation rules"),
    "20": _A(("segmentation_readers",), "sec-methods-predictors", "the readers' number and experience"),
    "21": _A(("image_preprocessing",), "sec-methods-predictors"),
    "22": _A(("resampling",), "sec-methods-predictors"),
    "23": _A(("discretisation",), "sec-methods-predictors", "the rationale for the discretisation"),
    "24": _A(("image_types",), "sec-methods-predictors"),
    "25": _A(("extraction_software",), "sec-methods-predictors"),
    "26": _A(("feature_classes",), "sec-methods-predictors"),
    "27": _A(("feature_count",), "sec-methods-predictors"),
    "28": _A(("default_configuration",), "sec-methods-predictors"),
    "29": _A(("missing_data",), "sec-methods-missing"),
    "30": _A(("class_imbalance",), "sec-methods-models"),
    "31": _A(("segmentation_reliability",), "sec-methods-models"),
    "32": _A(("feature_scaling",), "sec-methods-models"),
    "33": _A(("dimension_reduction",), "sec-methods-models"),
    "34": _A(("model_description", "software"), "sec-methods-models"),
    "35": _A(("training",), "sec-methods-models"),
    "36": _A(("confounders",), "sec-methods-fairness", "how confounders were identified (e.g. a causal diagram)"),
    "37": _A(("model_selection",), "sec-methods-models"),
    "38": _A(("testing",), "sec-methods-participants"),
    "39": _A(("performance_measures",), "sec-methods-performance", "the rationale for the metrics"),
    "40": _A(("uncertainty", "calibration"), "sec-methods-performance"),
    "41": _A(("statistical_comparison",), "sec-methods-performance"),
    "42": _A(("comparison_nonradiomic",), "sec-results-performance"),
    "43": _A(("explainability",), "sec-results-models"),
    "44": _A(("participant_characteristics",), "sec-results-participants"),
    "45": _A(("participants_flow",), "sec-results-participants", "a flow diagram with the excluded patients"),
    "46": _A(("feature_statistics",), "sec-results-models"),
    "47": _A(("performance", "calibration"), "sec-results-performance"),
    "48": _A(("comparison_nonradiomic", "clinical_utility"), "sec-results-performance"),
    "52": _A(("limitations",), "sec-limitations", "the strengths and the discussion of the limitations"),
    "54": _A(("data_availability",), "sec-reproducibility"),
    "55": _A(("settings_shared",), "sec-reproducibility"),
    "56": _A(("code_availability",), "sec-reproducibility"),
    "57": _A(("model_availability",), "sec-reproducibility"),
}

#: METRICS items the run addresses; METRICS_ANSWER says which it can answer yes or no itself
METRICS = {
    "1": _A(("checklists",), "sec-tripod"),
    "2": _A(("eligibility",), "sec-methods-participants", "whether the criteria give a representative sample"),
    "3": _A(("outcome",), "sec-methods-outcome", "whether the reference standard is of high quality"),
    "4": _A(("centres",), "sec-methods-data"),
    "6": _A(("imaging_protocol",), "sec-methods-predictors", "the acquisition protocol and its parameters"),
    "8": _A(("segmentation",), "sec-methods-predictors", "the segmentation method and rules"),
    "10": _A(("segmentation_readers",), "sec-methods-predictors"),
    "11": _A(("image_preprocessing",), "sec-methods-predictors"),
    "12": _A(("extraction_software",), "sec-methods-predictors"),
    "13": _A(("feature_classes", "default_configuration"), "sec-methods-predictors"),
    "14": _A(("segmentation_reliability",), "sec-methods-models"),
    "15": _A(("dimension_reduction",), "sec-methods-models"),
    "16": _A(("dimensionality",), "sec-methods-models"),
    "17": _A(("deep_robustness",), "sec-methods-models"),
    "18": _A(("data_split",), "sec-methods-participants"),
    "19": _A(("confounders",), "sec-results-subgroups"),
    "20": _A(("performance_measures",), "sec-methods-performance"),
    "21": _A(("uncertainty",), "sec-methods-performance"),
    "22": _A(("calibration",), "sec-results-calibration"),
    "23": _A(("uniparametric",), "sec-methods-predictors"),
    "24": _A(("comparison_nonradiomic",), "sec-results-performance"),
    "25": _A(("comparison_simple",), "sec-results-performance"),
    "26": _A(("internal_testing",), "sec-results-performance"),
    "27": _A(("external_testing",), "sec-results-performance"),
    "28": _A(("data_availability",), "sec-reproducibility"),
    "29": _A(("code_availability",), "sec-reproducibility"),
    "30": _A(("model_availability",), "sec-reproducibility"),
}

_ANSWERS = {"claim": CLAIM, "clear": CLEAR, "metrics": METRICS}
#: the fact that shows why a METRICS condition holds
_CONDITION_FACTS = {"C1": "segmentation", "C3": "extraction_software", "C4": "feature_count", "C5": "end_to_end"}


@lru_cache(maxsize=None)
def checklist_items(key: str) -> dict:
    """The checklist's data file (``report/checklists/``): name, citation, licence, items."""
    return package_data(CHECKLISTS[key][0])


def _note(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(("?", ".")) else text + "."


def imaging_checklist(key: str, facts: dict, *, answers: dict | None = None) -> pd.DataFrame:
    """One of the three checklists filled from a run's facts (:func:`imaging_facts`).

    Parameters
    ----------
    key : {"claim", "clear", "metrics"}
    facts : dict of str to str
        The run's facts; a missing or empty one is unknown to the run.
    answers : dict, optional
        METRICS only: item or condition id -> ``"yes"``, ``"no"`` or ``"not applicable"``
        for what the run can answer itself (:func:`metrics_answers`); the rest is the authors'.

    Returns
    -------
    DataFrame
        One row per item (METRICS: each condition first, then the items) with the columns of
        the TRIPOD+AI checklist (:data:`COLUMNS`): ``status`` is filled, partly filled or for
        the authors; ``value`` the run's facts; ``authors_add`` what the authors must add (the
        item's request, paraphrased, when the run has nothing). METRICS adds ``weight``,
        ``conditions`` and ``answer``.
    """
    data = checklist_items(key)
    title = CHECKLISTS[key][2]
    addressed = _ANSWERS[key]
    present = {k: str(v) for k, v in facts.items() if v}
    rows = []
    if key == "metrics":
        for condition in data["conditions"]:
            answer = (answers or {}).get(condition["id"], ASK_AUTHORS)
            rows.append({"checklist": title, "item": condition["id"], "section": "Conditions", "topic": "Condition",
                         "recommendation": condition["text"], "report_section": "",
                         "status": AUTHORS if answer == ASK_AUTHORS else FILLED,
                         "value": "" if answer == ASK_AUTHORS else
                         _join([answer, *([present[_CONDITION_FACTS[condition["id"]]]]
                                          if answer == YES and _CONDITION_FACTS.get(condition["id"]) in present else [])]),
                         "authors_add": _note(f"answer: {condition['text']}") if answer == ASK_AUTHORS else "",
                         "weight": float("nan"), "conditions": "", "answer": answer})
    for item in data["items"]:
        entry = addressed.get(str(item["id"]))
        found = [present[f] for f in entry.facts if f in present] if entry else []
        status = item_status(len(found), len(entry.facts) if entry else 0, entry.to_complete if entry else "")
        if status == AUTHORS:
            add = _note(item["text"])
        elif status == PARTLY:
            missing = [f.replace("_", " ") for f in entry.facts if f not in present]
            add = _note("; ".join(x for x in (entry.to_complete, *missing) if x))
        else:
            add = ""
        row = {"checklist": title, "item": str(item["id"]),
               "section": item.get("section") or item.get("category", ""),
               "topic": item.get("topic", ""), "recommendation": item["text"],
               "report_section": entry.section if entry and found else "", "status": status,
               "value": _join(found), "authors_add": add}
        if key == "metrics":
            answer = (answers or {}).get(str(item["id"]), ASK_AUTHORS)
            if answer == ASK_AUTHORS and not add:
                add = row["authors_add"] = _note(f"confirm: {item['text']}")
            row.update({"weight": float(item["weight"]), "conditions": ", ".join(item.get("conditions") or []),
                        "answer": answer})
        rows.append(row)
    return pd.DataFrame(rows, columns=METRICS_COLUMNS if key == "metrics" else COLUMNS)


@dataclass(frozen=True)
class MetricsScore:
    """METRICS scored as its web tool does, from what the run answers.

    Attributes
    ----------
    score : float
        100 x the weights answered yes / the weights answered (yes or no) among the items the run
        answers (the tool's rule: items not applicable leave both sums).
    lowest, highest : float
        The final score if every item left to the authors were answered no / yes.
    answered, yes, authors : int
        Items the run answered, of which yes, and items left to the authors.
    category : str
        The tool's quality band of ``score`` (very low < 20 <= low < 40 <= moderate < 60 <= good
        < 80 <= excellent).
    """

    score: float
    lowest: float
    highest: float
    answered: int
    yes: int
    authors: int
    category: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.__dict__])


def _band(score: float) -> str:
    s = round(score, 1)
    return "very low" if s < 20 else "low" if s < 40 else "moderate" if s < 60 else "good" if s < 80 else "excellent"


def metrics_score(frame: pd.DataFrame) -> MetricsScore:
    """The METRICS score of a filled METRICS checklist (:func:`imaging_checklist`).

    Notes
    -----
    The published tool (metricsscore.github.io, ``calculateScore``) sums the weights w_i of
    the items answered yes and of those answered at all, and reports 100 x the first over the
    second: items switched off by a condition leave both sums, so the others are renormalised.
    Here the run's answers give ``score``; the items left to the authors may still move it
    between ``lowest`` (all no) and ``highest`` (all yes).
    """
    items = frame[frame["section"] != "Conditions"]
    w = items["weight"].astype(float)
    yes, no, authors = items["answer"] == YES, items["answer"] == NO, items["answer"] == ASK_AUTHORS
    answered = w[yes | no].sum()
    score = 100 * w[yes].sum() / answered if answered else float("nan")
    everything = w[yes | no | authors].sum()
    lowest = 100 * w[yes].sum() / everything if everything else float("nan")
    highest = 100 * (w[yes].sum() + w[authors].sum()) / everything if everything else float("nan")
    return MetricsScore(score, lowest, highest, int((yes | no).sum()), int(yes.sum()), int(authors.sum()),
                        _band(score) if answered else "")


# -- the run's facts --------------------------------------------------------------------------

def _params(facts: RunFacts) -> dict:
    return facts.yaml("features/radiomics_params.yaml") or {}


def _feature_names(facts: RunFacts) -> list:
    table = facts.table("features/radiomics.csv", nrows=1)
    return [] if table is None else [c for c in table.columns if re.match(r"^[^_]+_(original|wavelet|log)", c)]


def _class_counts(names: list) -> tuple[dict, dict]:
    classes, per_phase = {}, {}
    for name in names:
        parts = name.split("_")
        phase = parts[0]
        cls = next((p for p in parts[1:] if p in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")), "")
        classes[cls] = classes.get(cls, 0) + 1
        per_phase[phase] = per_phase.get(phase, 0) + 1
    return classes, per_phase


_NORMALISATION = {"zscore": "z-score normalised", "none": "not normalised"}
_IBSI_CLASS = {"shape": "morphology (shape)", "firstorder": "intensity statistics (first order)",
               "glcm": "GLCM", "glrlm": "GLRLM", "glszm": "GLSZM", "gldm": "GLDM (NGLDM)", "ngtdm": "NGTDM"}


def imaging_facts(facts: RunFacts, base: dict) -> dict:
    """The facts the imaging checklists need beyond TRIPOD+AI's ``base`` (:func:`tripod_facts`),
    each a short plain text from the run's saved files; absent when the run does not know it."""
    from . import text

    cfg = facts.config
    out = dict(base)
    phases = list(getattr(cfg, "phases", []) or [])
    has_images = bool(phases) and (facts.has_radiomics or facts.has_deep)
    deep = text._deep_settings(facts) if facts.has_deep else {}
    counts = facts.cohort_counts()
    methods = [m for m in ("hand-crafted radiomics (PyRadiomics) with machine-learning classifiers (LR, SVM, KNN, "
                           "XGBoost, MLP)" if facts.has_radiomics else "",
                           "deep learning: convolutional networks (ResNet-10, -18 and -34) trained end to end on the "
                           "images, and their late fusion with the radiomics-clinical model (DLRCR)"
                           if facts.has_deep else "") if m]
    if methods:
        out["ai_methods"] = "; ".join(methods)
    if facts.has_deep:
        out["end_to_end"] = "ResNet-10, -18 and -34 trained end to end on the tumour's image slices"
    out["checklists"] = ("TRIPOD+AI, CLAIM 2024, CLEAR and METRICS filled from the run item by item "
                         "(supplementary tables; report/tripod_ai.csv, claim.csv, clear.csv, metrics.csv)")
    if has_images:
        pre = facts.preprocessing or {}
        spacing = pre.get("spacing")
        if spacing:
            out["resampling"] = (f"{' x '.join(f'{float(s):g}' for s in spacing)} mm voxels, linear interpolation for "
                                 "images and nearest neighbour for masks (SimpleITK)")
        steps = [s for s in (f"resampling to {out['resampling']}" if spacing else "",
                             f"intensities {_NORMALISATION.get(pre.get('normalization'), pre.get('normalization'))} "
                             "within each image before extraction" if pre.get("normalization") else "",
                             "for the networks: " + deep["recipe"].split(";")[0] if deep.get("recipe") else "",
                             "later phases registered rigidly to the first (ANTsPy QuickRigid)"
                             if deep.get("register") else "") if s]
        if steps:
            out["image_preprocessing"] = "; ".join(steps)
        if deep.get("recipe"):
            out["data_subsets"] = ("for the networks, " + deep["recipe"].split(";")[0] + ", chosen automatically "
                                   "from the tumour mask (no image was hand-picked); radiomics used the whole "
                                   "tumour volume of every phase")
        protocol = [f"phases {', '.join(phases)}"]
        scanner = getattr(cfg, "scanner_column", None)
        if scanner and facts.subgroups is not None and len(facts.subgroups):
            sub = facts.subgroups
            first = sub[(sub["model"] == sub["model"].iloc[0]) & sub["cohort"].isin(facts.cohorts)]
            levels = first.groupby("level")["n"].sum() if "level" in first else None
            if levels is not None:
                protocol.append(f"scanners (column {scanner}): " + ", ".join(f"{k} {int(v)} patients" for k, v in levels.items()))
        out["imaging_protocol"] = "; ".join(protocol)
        out["segmentation"] = ("tumour masks supplied with the study, one per patient and phase (the run does not "
                               "record how they were drawn); radiomics and the networks used reader 1's masks")
        icc = facts.table("models/icc.csv")
        if icc is not None and len(icc):
            n = int(icc["n_subjects"].max())
            kept = int(icc["kept"].astype(str).str.lower().eq("true").sum())
            out["segmentation_reliability"] = (f"a second reader's masks for {n} development patients; ICC(2,1) of "
                                               f"every feature between the two readers' masks, {kept} of {len(icc)} "
                                               "features with ICC > 0.90 kept")
            out["segmentation_readers"] = (f"two readers' masks for {n} patients (reproducibility only); every model "
                                           "was fitted and tested on reader 1's masks, one reader per patient")
        params = _params(facts)
        setting = params.get("setting") or {}
        if "binWidth" in setting:
            out["discretisation"] = f"fixed bin width {setting['binWidth']:g} (PyRadiomics binWidth)"
        elif "binCount" in setting:
            out["discretisation"] = f"fixed bin count {setting['binCount']} (PyRadiomics binCount)"
        types = params.get("imageType") or {}
        if types:
            described = []
            for name, options in types.items():
                detail = ", ".join(f"{k} {v}" for k, v in (options or {}).items())
                described.append(f"{name}{f' ({detail})' if detail else ''}")
            out["image_types"] = ", ".join(described)
        versions = text._versions(facts)
        radiomics_version = versions.get("pyradiomics") or versions.get("radiomics")
        if facts.has_radiomics:
            out["extraction_software"] = (f"PyRadiomics{' ' + str(radiomics_version) if radiomics_version else ''}, "
                                          "which follows the IBSI definitions except where its documentation says "
                                          "otherwise; hand-crafted features")
            out["default_configuration"] = ("every PyRadiomics setting not listed in features/radiomics_params.yaml "
                                            "was left at its default")
            out["settings_shared"] = ("features/radiomics_params.yaml (PyRadiomics), features/preprocessing.json and "
                                      "study.yaml, in the reviewer package")
        names = _feature_names(facts)
        if names:
            classes, per_phase = _class_counts(names)
            out["feature_classes"] = ", ".join(f"{_IBSI_CLASS.get(k, k)} {v}" for k, v in classes.items() if k)
            out["feature_count"] = (f"{len(names)} features per patient: "
                                    + ", ".join(f"{k} {v}" for k, v in per_phase.items()))
    if facts.selection_counts is not None and len(facts.selection_counts):
        steps = " → ".join(f"{r.step} {int(r.n_features)}" for r in facts.selection_counts.itertuples())
        out["dimension_reduction"] = (f"on the development cohort only, inside every out-of-fold refit: {steps} "
                                      "(reproducibility ICC(2,1) > 0.90, t test or Mann-Whitney U P < 0.05, LASSO "
                                      "logistic regression with 5-fold cross-validation)")
        final = int(facts.selection_counts["n_features"].iloc[-1])
        if facts.dev_cohort in counts:
            n, events = counts[facts.dev_cohort]
            fewer = min(events, n - events)
            out["dimensionality"] = (f"{final} selected features for {n} development patients ({events} events, "
                                     f"{fewer} in the smaller class): {fewer / max(final, 1):.1f} per feature; the "
                                     "nested out-of-fold AUCs beside the apparent ones show the overfitting that "
                                     "remains")
        out["feature_statistics"] = ("the selected features with their LASSO coefficients and how often each refit "
                                     "selected them (supplementary table)")
        out["pipeline_flow"] = "the feature-selection flow (figure) and the stages of the run (reproducibility table)"
    if facts.has_radiomics:
        out["feature_scaling"] = ("median imputation then z-scores (scikit-learn StandardScaler) fitted on each fit's "
                                  "development patients and applied unchanged to the others")
    if facts.split is not None and len(facts.split):
        split = facts.split
        folds = int(pd.to_numeric(split["fold"], errors="coerce").max())
        cohort_column = getattr(cfg, "cohort_column", "cohort")
        out["data_split"] = ("cohorts as assigned in the clinical table's `" + str(cohort_column) + "` column ("
                             + ", ".join(f"{c} {n}" for c, (n, _) in counts.items())
                             + f"); within the development cohort {folds} folds stratified by outcome with seed "
                             f"{facts.info.get('seed', '?')} (split.csv), made before any fit and shared by every "
                             "model, selection and tuning")
        out["disjointness"] = ("patient level: one clinical row per patient, every image and mask of a patient in one "
                               "cohort and one fold")
    others = [c for c in facts.cohorts if c != facts.dev_cohort]
    if others and facts.dev_cohort in counts:
        out["internal_testing"] = (", ".join(f"the {c} cohort ({counts[c][0]} patients, {counts[c][1]} events)"
                                             for c in others if c in counts)
                                   + ", from the same source, used in no fit, selection, tuning or threshold")
        out["testing"] = ("internal: a split sample of one source (" + ", ".join(others) + "); no external "
                          "cohort; development estimates by nested out-of-fold refits")
        out["test_sample_size"] = ", ".join(f"{c}: {counts[c][0]} patients, {counts[c][1]} events"
                                            for c in others if c in counts) + \
            (" (no precision calculation for the test set; the development cohort's: Riley's criteria, "
             "supplementary table)" if base.get("sample_size") else "")
    if facts.has_deep and deep:
        out["initialisation"] = ("random (Kaiming normal, fan-out) with each residual block's last batch normalisation "
                                 "at zero" if deep.get("zero_init") else "random (Kaiming normal, fan-out)") + \
            f"; no pretrained weights; seeded from the run's seed {facts.info.get('seed', '?')}"
        out["ensembling"] = ("DLRCR: a logistic late fusion of the best network's and RCR's out-of-fold log-odds; each "
                             "network's score is the mean log-odds over a patient's slices"
                             + (" and their eight flips and quarter turns" if deep.get("tta") else ""))
        nets = text._deep_networks(facts)
        fits = int(nets["n_fits"].max()) if nets is not None and "n_fits" in nets and len(nets) else None
        out["deep_robustness"] = ("not assessed under test-retest or segmentation perturbation; each network was "
                                  f"refitted {fits} times (nested out-of-fold), so its estimates include that "
                                  "variation" if fits else "")
    training = []
    if facts.has_radiomics:
        training.append("radiomics classifiers: grid search minimising the cross-validated log loss on the development "
                        "folds (grids in models/tuning.csv)")
    if deep.get("recipe"):
        training.append("networks: " + deep["recipe"])
    if training:
        out["training"] = "; ".join(training)
    out["model_description"] = _model_description(facts, deep)
    selection = []
    if facts.best_radiomics:
        selection.append(f"the radiomics classifier of highest nested out-of-fold AUC ({facts.best_radiomics})")
    if deep.get("best_network"):
        selection.append(f"the network of highest nested out-of-fold AUC (DL-{deep['best_network']})")
    if selection:
        out["model_selection"] = ("on development data only: " + "; ".join(selection)
                                  + "; hyperparameters by cross-validated log loss")
    out["uncertainty"] = (f"95% CIs: DeLong for AUCs and stratified bootstrap (B = {facts.settings.get('n_bootstrap', '?')}),"
                          " Wilson for accuracy, sensitivity, specificity, PPV and NPV")
    out["statistical_comparison"] = ("paired DeLong tests between models within a cohort (Holm-adjusted), unpaired "
                                     "DeLong tests between cohorts and between scanner groups; P < 0.05; every "
                                     "statistic checked against R's pROC and rms (dlr's tests)")
    if getattr(cfg, "scanner_column", None):
        out["confounders"] = (f"the scanner (column {cfg.scanner_column}): AUCs within each level and unpaired DeLong "
                              "tests between levels; the cohorts' characteristics compared (Table 1); no adjustment")
        out["robustness"] = ("AUCs within each scanner group; nested out-of-fold refits of every model against its "
                             "apparent AUC")
    out["explainability"] = ("Score-CAM maps of the best network (figure)"
                             if facts.has_deep and facts.text("models/deep/scorecam.csv") is not None else "")
    if facts.performance is not None and {"tp", "fp", "tn", "fn"} <= set(facts.performance.columns):
        out["confusion_matrix"] = ("TP, FP, TN and FN of every model and cohort at the development threshold in "
                                   "results/performance.csv, with the accuracy, sensitivity, specificity, PPV and NPV "
                                   "they give (Tables 2 and 4)")
    compared = [m for m in ("CR", "RCR", "DLRCR") if m in facts.model_names]
    if "CR" in compared and (facts.has_radiomics or facts.has_deep):
        out["comparison_nonradiomic"] = ("the clinical-radiological (CR) model beside the image models and their "
                                         "combinations (" + ", ".join(compared) + "), compared by paired DeLong "
                                         "tests in each cohort, with decision curves")
    if facts.has_radiomics and "Radiomics-LR" in facts.model_names:
        out["comparison_simple"] = ("logistic regression (Radiomics-LR) among the classifiers, and every AUC tested "
                                    "against chance (0.5) with its DeLong CI")
    if len(phases) > 1 and facts.has_radiomics:
        out["uniparametric"] = (f"multi-phase ({', '.join(phases)}): no single-phase model was fitted for comparison")
    out["external_testing"] = ("no external cohort in this run" if others else "")
    out["centres"] = ""
    out["reviewer_package"] = ("the reviewer package (`dlr package`): settings, environment lock, checksums, "
                               "pseudonymised predictions, features and results; `dlr verify` recomputes them")
    out["model_availability"] = ("every fitted parameter in models/parameters.json"
                                 + (" and each network's weights in models/deep/*.pt" if facts.has_deep else "")
                                 + " (run folder)")
    out["data_availability"] = base.get("data_availability", "")
    return {k: v.replace("`", "") for k, v in out.items() if v}


def _model_description(facts: RunFacts, deep: dict) -> str:
    """Each model in one clause: its inputs, its form and where its parameters are."""
    parts = []
    if facts.selected:
        parts.append(f"CR: logistic regression on {', '.join(facts.selected)}")
    if facts.has_radiomics:
        final = int(facts.selection_counts["n_features"].iloc[-1]) if facts.selection_counts is not None and \
            len(facts.selection_counts) else None
        parts.append("radiomics: median imputation, z-scores and a classifier (LR, SVM, KNN, XGBoost or MLP) on "
                     + (f"the {final} selected features" if final else "the selected features"))
        parts.append("RCR: the best classifier on the selected features and the CR factors")
    if deep:
        if deep.get("resegment"):
            parts.append(f"network input: the tumour re-segmented by intensity outliers (pixels beyond "
                         f"{deep['resegment']:g} robust standard deviations of its median on any phase set to the median "
                         "and left out of the tumour pooling)")
        parts.append(f"networks: ResNet-10/18/34 block structures on {deep.get('image_size', '?')}-pixel slices with "
                     f"the {'small-image' if deep.get('stem') == 'small' else 'paper'} stem, first-stage width "
                     f"{deep.get('width', '?')} doubling per stage, batch normalisation and ReLU, "
                     + ("the last stage averaged over the tumour mask and over the crop" if deep.get("pool") == "tumour"
                        else "global average pooling")
                     + f", dropout {deep.get('dropout', 0):g} and a linear layer to two classes")
        parts.append("DLRCR: logistic regression on the best network's and RCR's log-odds")
    if parts:
        parts.append("every fitted parameter in models/parameters.json" + (", the networks' weights in "
                                                                           "models/deep/*.pt" if deep else ""))
    return "; ".join(parts)


def metrics_answers(facts: RunFacts, filled: dict) -> dict:
    """What the run itself answers in METRICS: condition and item id -> yes / no / not applicable.

    Only what the run's files decide: the items about the study's design, data and reference
    standard, and C2 (whether the masks were drawn automatically), are the authors'.
    """
    phases = list(getattr(facts.config, "phases", []) or [])
    segmented = bool(phases) and (facts.has_radiomics or facts.has_deep)
    out = {"C1": YES if segmented else NO, "C3": YES if facts.has_radiomics else NO,
           "C4": YES if facts.has_radiomics else NO, "C5": YES if facts.has_deep else NO}
    gates = {"8": "C1", "9": "C1", "10": "C1", "12": "C3", "14": "C4", "15": "C4", "16": "C4", "17": "C5"}
    for item, condition in gates.items():
        if out[condition] == NO:
            out[item] = NOT_APPLICABLE
    decided = {
        "1": YES,  # the checklists are filled from the run
        "10": YES if "segmentation_readers" in filled else None,
        "11": YES if "image_preprocessing" in filled else None,
        "12": YES if "extraction_software" in filled else None,
        "13": YES if "feature_classes" in filled and "default_configuration" in filled else None,
        "14": YES if "segmentation_reliability" in filled else NO,
        "15": YES if "dimension_reduction" in filled else NO,
        "16": None,  # appropriateness needs judgement: the ratio is given, the authors decide
        "17": NO if "deep_robustness" in filled else None,
        "18": YES if "data_split" in filled else None,
        "19": YES if "confounders" in filled else NO,
        "20": YES if "confusion_matrix" in filled else None,
        "21": YES,
        "22": YES if "calibration" in filled else NO,
        "23": NO if "uniparametric" in filled else None,
        "24": YES if "comparison_nonradiomic" in filled else NO,
        "25": YES if "comparison_simple" in filled else None,
        "26": YES if "internal_testing" in filled else NO,
        "27": NO if filled.get("external_testing") else None,
        "29": YES,  # dlr is open source and the run records its version
    }
    for item, answer in decided.items():
        if answer is not None and out.get(item) != NOT_APPLICABLE:
            out[item] = answer
    return out


# -- the report's tables ----------------------------------------------------------------------

def score_frame(score: MetricsScore, frame: pd.DataFrame) -> pd.DataFrame:
    """``metrics_score.csv``: the score, its range and the items left to the authors."""
    items = frame[frame["section"] != "Conditions"]
    left = items.loc[items["answer"] == ASK_AUTHORS, "item"].tolist()
    return pd.DataFrame([{"score": round(score.score, 1), "lowest": round(score.lowest, 1),
                          "highest": round(score.highest, 1), "category": score.category,
                          "items_answered": score.answered, "items_yes": score.yes, "items_authors": score.authors,
                          "authors_items": " ".join(left)}])


def metrics_markdown(frame: pd.DataFrame, score: MetricsScore) -> str:
    """The METRICS table (conditions, then items with their weights and answers) and its score
    in words, for the report's supplement."""
    from .tripod import _cell, _where

    items = frame[frame["section"] != "Conditions"]
    left = items[items["answer"] == ASK_AUTHORS]
    lines = [f"METRICS score from the items the run answers: **{score.score:.1f}%** ({score.category}; "
             f"{score.yes} of {score.answered} items yes, weighted as published). The {score.authors} items left "
             f"to the authors ({', '.join(left['item'])}) can still move the final score between "
             f"{score.lowest:.1f}% (all no) and {score.highest:.1f}% (all yes). Items switched off by a condition "
             "answered no leave the score, as in the METRICS tool.", "",
             "| Item | Category / topic | Weight | Answer | Where | From the run | Authors to add |",
             "|:-----|:------------------|------:|:-------|:--------|:--------------------|:--------------------|"]
    for row in frame.itertuples(index=False):
        weight = "" if pd.isna(row.weight) else f"{row.weight:.4f}"
        topic = row.recommendation if row.section == "Conditions" else f"{row.section} / {row.topic}"
        cells = [_cell(row.item), _cell(topic), weight, _cell(row.answer), _where(str(row.report_section), link=True),
                 _cell(row.value), _cell(row.authors_add)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def checklist_markdown(frame: pd.DataFrame) -> str:
    """CLAIM or CLEAR as a pipe table: item, section/topic with the request, where, status,
    the run's facts and what the authors must add."""
    from .tripod import _cell, _where

    lines = ["| Item | Section / topic | Where | Status | From the run | Authors to add |",
             "|:-----|:--------------------------|:---------|:---------|:--------------------|:--------------------|"]
    for row in frame.itertuples(index=False):
        section = " / ".join(x for x in (row.section, row.topic) if x)
        cells = [_cell(row.item), f"{_cell(section)}: {_cell(row.recommendation)}",
                 _where(str(row.report_section), link=True), _cell(row.status), _cell(row.value),
                 _cell("" if row.status == AUTHORS else row.authors_add)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fill_checklists(facts: RunFacts, base: dict) -> dict:
    """The three checklists of a run: key -> frame, plus ``metrics_score`` (a frame) and
    ``score`` (:class:`MetricsScore`)."""
    filled = imaging_facts(facts, base)
    out = {key: imaging_checklist(key, filled, answers=metrics_answers(facts, filled) if key == "metrics" else None)
           for key in CHECKLISTS}
    out["score"] = metrics_score(out["metrics"])
    out["metrics_score"] = score_frame(out["score"], out["metrics"])
    return out
