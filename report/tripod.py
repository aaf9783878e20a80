"""The TRIPOD+AI checklist and the TRIPOD+AI for Abstracts checklist, filled from a run.

Each checklist row names the facts of the run that address it (short texts the report builder
formats) and the report section where it is addressed. `tripod_checklist` joins a run's facts to
the rows and says, per item, whether the run filled it, filled part of it, or left it to the
authors; `checklist_markdown` writes the result as a pipe table for the report.

The item numbers, sections, topics and their order follow the published checklist (version of
11 January 2024) in Collins et al. (2024): 27 main items, 52 rows counting sub-items, and the
13 items of TRIPOD+AI for Abstracts. The recommendations here are short paraphrases; the
authors' submission should use the official wording.

References
----------
Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting
clinical prediction models that use regression or machine learning methods. BMJ
2024;385:e078378. doi:10.1136/bmj-2023-078378
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from dlr.core.errors import InputError

MAIN = "TRIPOD+AI"
ABSTRACTS = "TRIPOD+AI for Abstracts"

FILLED = "filled from the run"
PARTLY = "partly filled: authors to complete"
AUTHORS = "for the authors"
STATUSES = (FILLED, PARTLY, AUTHORS)

COLUMNS = ["checklist", "item", "section", "topic", "recommendation", "report_section", "status", "value",
           "authors_add"]

#: each fact in the words of "what the authors must add" when the run did not have it
FACT_WORDS = {
    "title": "the title", "study_type": "the study type", "data_source": "the data source", "data_dates":
    "the dates of the data", "setting": "the setting", "eligibility": "the eligibility criteria", "cohorts":
    "the cohorts' sizes and events", "outcome": "the outcome's definition", "outcome_timing":
    "the outcome's timing", "predictors": "the predictors", "predictor_handling": "how predictors were handled",
    "sample_size": "the sample-size justification", "missing_data": "the handling of missing data",
    "model_building": "the model-building steps", "model_type": "the type of model", "class_imbalance": "the handling of class imbalance", "performance_measures":
    "the performance measures", "model_updating": "any model updating", "fairness":
    "the subgroup (fairness) analyses", "model_output": "the model's output", "participants_flow":
    "the flow of participants", "participant_characteristics": "the participants' characteristics",
    "model_specification": "the full model", "performance": "the performance estimates", "calibration":
    "calibration", "clinical_utility": "clinical utility", "comparison_development_evaluation":
    "the differences between development and evaluation data", "limitations": "the limitations", "software":
    "the software", "code_availability": "where the code is", "data_availability": "where the data are",
}

#: Facts the report builder may pass, each a short text formatted for readers.
RUN_FACTS = (
    "title", "study_type", "data_source", "data_dates", "setting", "eligibility", "cohorts", "outcome",
    "outcome_timing", "predictors", "predictor_handling", "sample_size", "missing_data", "model_building",
    "model_type", "class_imbalance", "performance_measures", "model_updating", "fairness", "model_output",
    "participants_flow", "participant_characteristics", "model_specification", "performance", "calibration", "clinical_utility",
    "comparison_development_evaluation", "limitations", "software", "code_availability", "data_availability",
)
#: Facts only the authors can give. They are accepted and never used: the items they concern
#: (17, 18a-18d, 19 and abstract item 13) are always left to the authors, so that no generated
#: text states an ethics approval, a funder or a registration on their behalf.
AUTHOR_FACTS = ("protocol", "registration", "funding", "conflicts", "ethics", "patient_involvement")

#: The report's section anchors and the words a link to each shows.
REPORT_SECTIONS = {
    "sec-abstract": "Abstract",
    "sec-introduction": "Introduction",
    "sec-methods-data": "Methods: data",
    "sec-methods-participants": "Methods: participants",
    "sec-methods-outcome": "Methods: outcome",
    "sec-methods-predictors": "Methods: predictors",
    "sec-methods-sample-size": "Methods: sample size",
    "sec-methods-missing": "Methods: missing data",
    "sec-methods-analysis": "Methods: analysis",
    "sec-methods-models": "Methods: models",
    "sec-methods-performance": "Methods: performance",
    "sec-methods-fairness": "Methods: fairness",
    "sec-results-participants": "Results: participants",
    "sec-results-models": "Results: models",
    "sec-results-performance": "Results: performance",
    "sec-results-calibration": "Results: calibration",
    "sec-results-utility": "Results: clinical utility",
    "sec-results-survival": "Results: time to recurrence",
    "sec-results-subgroups": "Results: subgroups",
    "sec-discussion": "Discussion",
    "sec-limitations": "Limitations",
    "sec-reproducibility": "Reproducibility",
    "sec-tripod": "TRIPOD+AI checklist",
}


@dataclass(frozen=True)
class ChecklistItem:
    """One row of a TRIPOD+AI checklist and how a run addresses it.

    Attributes
    ----------
    item : str
        The item number as the checklist prints it (``"1"``, ``"3a"``, ``"12g"``).
    section : str
        The checklist's section (``"Methods"``, ``"Open science"``, ...).
    topic : str
        The checklist's topic within the section (``"Data"``, ``"Analytical methods"``, ...).
    recommendation : str
        A short paraphrase of the reporting recommendation.
    facts : tuple of str
        The keys of the run's facts that address the item, in the order their texts are
        joined; empty when only the authors can address it.
    report_section : str
        The anchor of the report section that addresses the item (or where the authors would
        write it); ``""`` when none (the title, funding, conflicts, patient involvement).
    to_complete : str
        What the recommendation asks that the run cannot know even with all its facts (for
        example the rationale for the data); ``""`` when the facts cover the item. An item
        with such a remainder is at best partly filled.
    applies : str
        ``"D"`` (model development), ``"E"`` (model evaluation) or ``"D;E"`` (both), as the
        checklist marks it.
    """

    item: str
    section: str
    topic: str
    recommendation: str
    facts: tuple
    report_section: str
    to_complete: str = ""
    applies: str = "D;E"


_I = ChecklistItem

#: The 52 rows of the TRIPOD+AI checklist (27 items), in the checklist's order.
TRIPOD_AI: tuple[ChecklistItem, ...] = (
    # Title and abstract
    _I("1", "Title", "Title",
       "Identify the study as developing or evaluating a multivariable prediction model; name the target "
       "population and the outcome predicted.",
       ("title", "study_type"), ""),
    _I("2", "Abstract", "Abstract",
       "Give a structured abstract following the TRIPOD+AI for Abstracts checklist.",
       ("study_type", "cohorts", "performance"), "sec-abstract",
       "the background and the interpretation of the abstract"),
    # Introduction
    _I("3a", "Introduction", "Background",
       "Explain the healthcare context (diagnostic or prognostic) and the rationale for developing or "
       "evaluating the model, with references to existing models.",
       (), "sec-introduction"),
    _I("3b", "Introduction", "Background",
       "Describe the target population and the model's intended purpose in the care pathway, including its "
       "intended users.",
       (), "sec-introduction"),
    _I("3c", "Introduction", "Background",
       "Describe any known health inequalities between sociodemographic groups.",
       (), "sec-introduction"),
    _I("4", "Introduction", "Objectives",
       "State the objectives, including whether the study develops or validates a model, or both.",
       (), "sec-introduction"),
    # Methods
    _I("5a", "Methods", "Data",
       "Describe the sources of data, separately for development and evaluation, the rationale for using them "
       "and their representativeness.",
       ("data_source",), "sec-methods-data",
       "the rationale for using these data and their representativeness"),
    _I("5b", "Methods", "Data",
       "Give the dates of the participant data: start and end of accrual and, if applicable, end of follow-up.",
       ("data_dates",), "sec-methods-data"),
    _I("6a", "Methods", "Participants",
       "Describe the study setting (e.g. primary or secondary care) including the number and location of "
       "centres.",
       ("setting",), "sec-methods-participants",
       "the level of care and the location of the centres"),
    _I("6b", "Methods", "Participants",
       "Describe the eligibility criteria for participants.",
       ("eligibility",), "sec-methods-participants"),
    _I("6c", "Methods", "Participants",
       "Give details of any treatments received and how they were handled in development or evaluation, if "
       "relevant.",
       (), "sec-methods-participants"),
    _I("7", "Methods", "Data preparation",
       "Describe data pre-processing and quality checking, including whether they were similar across "
       "sociodemographic groups.",
       ("predictor_handling",), "sec-methods-predictors",
       "the quality checks of images and segmentations"),
    _I("8a", "Methods", "Outcome",
       "Define the outcome and the time horizon, how and when it was assessed, why it was chosen, and whether "
       "its assessment was consistent across sociodemographic groups.",
       ("outcome", "outcome_timing"), "sec-methods-outcome",
       "the rationale for the outcome and the consistency of its assessment across groups"),
    _I("8b", "Methods", "Outcome",
       "If assessing the outcome needs subjective interpretation, describe the assessors' qualifications and "
       "demographic characteristics.",
       (), "sec-methods-outcome"),
    _I("8c", "Methods", "Outcome",
       "Report any actions to blind the assessment of the outcome.",
       (), "sec-methods-outcome"),
    _I("9a", "Methods", "Predictors",
       "Describe how the initial predictors were chosen and any pre-selection before model building.",
       ("predictors",), "sec-methods-predictors",
       "why these candidate predictors were chosen", "D"),
    _I("9b", "Methods", "Predictors",
       "Define all predictors, how and when they were measured, and any blinding of their assessment.",
       ("predictors",), "sec-methods-predictors",
       "when the images were acquired and whether their assessment was blinded to the outcome"),
    _I("9c", "Methods", "Predictors",
       "If measuring predictors needs subjective interpretation (e.g. segmentation), describe the assessors' "
       "qualifications and demographic characteristics.",
       (), "sec-methods-predictors"),
    _I("10", "Methods", "Sample size",
       "Explain how the study size was arrived at, separately for development and evaluation, and justify it, "
       "with any sample size calculation.",
       ("sample_size", "cohorts"), "sec-methods-sample-size",
       "a justification of the validation cohort's size"),
    _I("11", "Methods", "Missing data",
       "Describe how missing data were handled and the reasons for omitting any data.",
       ("missing_data",), "sec-methods-missing"),
    _I("12a", "Methods", "Analytical methods",
       "Describe how the data were used for development and evaluation, including any partitioning, with "
       "regard to sample size.",
       ("cohorts", "model_building"), "sec-methods-analysis", "", "D"),
    _I("12b", "Methods", "Analytical methods",
       "Describe how predictors were handled (functional form, rescaling, transformation, standardisation).",
       ("predictor_handling",), "sec-methods-analysis", "", "D"),
    _I("12c", "Methods", "Analytical methods",
       "Specify the type of model, the rationale, all model-building steps including hyperparameter tuning, "
       "and the internal validation.",
       ("model_type", "model_building"), "sec-methods-models",
       "the rationale for the choice of models", "D"),
    _I("12d", "Methods", "Analytical methods",
       "Describe if and how heterogeneity in model estimates and performance across clusters (e.g. hospitals) "
       "was handled and quantified.",
       ("fairness",), "sec-methods-fairness"),
    _I("12e", "Methods", "Analytical methods",
       "Specify all measures and plots used to evaluate performance (discrimination, calibration, clinical "
       "utility), with their rationale, and how models were compared.",
       ("performance_measures",), "sec-methods-performance"),
    _I("12f", "Methods", "Analytical methods",
       "Describe any model updating (e.g. recalibration) arising from the evaluation, overall or for groups or "
       "settings.",
       ("model_updating",), "sec-methods-performance", "", "E"),
    _I("12g", "Methods", "Analytical methods",
       "For evaluation, describe how the model predictions were calculated (formula, code, object, API).",
       ("model_specification", "code_availability"), "sec-methods-models", "", "E"),
    _I("13", "Methods", "Class imbalance",
       "If class imbalance methods were used, state why and how, and any later recalibration of the model or "
       "its predictions.",
       ("class_imbalance",), "sec-methods-models"),
    _I("14", "Methods", "Fairness",
       "Describe any approaches used to address model fairness and their rationale.",
       ("fairness",), "sec-methods-fairness",
       "the rationale for the fairness analyses and the sociodemographic groups considered"),
    _I("15", "Methods", "Model output",
       "Specify the model's output (probability, classification) and the rationale for any classification and "
       "how its thresholds were chosen.",
       ("model_output",), "sec-methods-models", "", "D"),
    _I("16", "Methods", "Training versus evaluation",
       "Identify any differences between development and evaluation data in setting, eligibility, outcome and "
       "predictors.",
       ("comparison_development_evaluation",), "sec-methods-data"),
    _I("17", "Methods", "Ethical approval",
       "Name the ethics committee that approved the study and describe the informed consent or its waiver.",
       (), "sec-methods-data"),
    # Open science
    _I("18a", "Open science", "Funding",
       "Give the sources of funding and the funders' role in the study.",
       (), ""),
    _I("18b", "Open science", "Conflicts of interest",
       "Declare all authors' conflicts of interest and financial disclosures.",
       (), ""),
    _I("18c", "Open science", "Protocol",
       "Say where the study protocol can be accessed, or that none was prepared.",
       (), "sec-reproducibility"),
    _I("18d", "Open science", "Registration",
       "Give the register and registration number, or state that the study was not registered.",
       (), "sec-reproducibility"),
    _I("18e", "Open science", "Data sharing",
       "Give details of the availability of the study data.",
       ("data_availability",), "sec-reproducibility",
       "how the patient-level data can be accessed beyond the reviewer package"),
    _I("18f", "Open science", "Code sharing",
       "Give details of the availability of the analytical code.",
       ("code_availability", "software"), "sec-reproducibility"),
    # Patient and public involvement
    _I("19", "Patient & public involvement", "Patient & public involvement",
       "Give details of patient and public involvement in the design, conduct, reporting, interpretation or "
       "dissemination, or state that there was none.",
       (), ""),
    # Results
    _I("20a", "Results", "Participants",
       "Describe the flow of participants, with the numbers with and without the outcome and any follow-up; a "
       "diagram may help.",
       ("participants_flow", "cohorts"), "sec-results-participants"),
    _I("20b", "Results", "Participants",
       "Report the characteristics overall and per data source or setting (dates, key predictors, treatments, "
       "sample size, events, follow-up, missing data) and any differences across sociodemographic groups.",
       ("participant_characteristics", "cohorts"), "sec-results-participants",
       "the treatments received and any differences across sociodemographic groups"),
    _I("20c", "Results", "Participants",
       "For evaluation, compare the distribution of important predictors, demographics and outcome with the "
       "development data.",
       ("participant_characteristics", "comparison_development_evaluation"), "sec-results-participants", "", "E"),
    _I("21", "Results", "Model development",
       "Give the number of participants and outcome events in each analysis (development, tuning, evaluation).",
       ("cohorts",), "sec-results-models"),
    _I("22", "Results", "Model specification",
       "Give the full prediction model (formula, code, object, API) so that others can predict for new "
       "individuals and evaluate it, with any restrictions on access or re-use.",
       ("model_specification", "code_availability"), "sec-results-models", "", "D"),
    _I("23a", "Results", "Model performance",
       "Report performance estimates with confidence intervals, including for key (e.g. sociodemographic) "
       "subgroups; consider plots.",
       ("performance", "calibration", "clinical_utility", "fairness"), "sec-results-performance"),
    _I("23b", "Results", "Model performance",
       "If examined, report the heterogeneity of model performance across clusters.",
       ("fairness",), "sec-results-subgroups"),
    _I("24", "Results", "Model updating",
       "Report the results of any model updating, with the updated model and its performance.",
       ("model_updating",), "sec-results-calibration", "", "E"),
    # Discussion
    _I("25", "Discussion", "Interpretation",
       "Give an overall interpretation of the main results, including fairness, in the context of the "
       "objectives and previous studies.",
       (), "sec-discussion"),
    _I("26", "Discussion", "Limitations",
       "Discuss the study's limitations (non-representative sample, sample size, overfitting, missing data) and "
       "their effects on bias, uncertainty and generalisability.",
       ("limitations",), "sec-limitations",
       "the effects of the limitations on bias, uncertainty and generalisability"),
    _I("27a", "Discussion", "Usability of the model in the context of current care",
       "Describe how poor-quality or unavailable input data should be assessed and handled when the model is "
       "implemented.",
       (), "sec-discussion", "", "D"),
    _I("27b", "Discussion", "Usability of the model in the context of current care",
       "Say whether users must interact in handling the input data or using the model, and the expertise they "
       "need.",
       (), "sec-discussion", "", "D"),
    _I("27c", "Discussion", "Usability of the model in the context of current care",
       "Discuss next steps for research, with a view to the model's applicability and generalisability.",
       (), "sec-discussion"),
)

#: The 13 items of TRIPOD+AI for Abstracts. The checklist gives a section heading per row (its
#: Methods and Results rows carry no topic of their own); the topics here name each row's subject.
TRIPOD_AI_ABSTRACT: tuple[ChecklistItem, ...] = (
    _I("1", "Title", "Title",
       "Identify the study as developing or evaluating a multivariable prediction model; name the target "
       "population and the outcome predicted.",
       ("title", "study_type"), ""),
    _I("2", "Background", "Background",
       "Briefly explain the healthcare context and the rationale for developing or evaluating the models.",
       (), "sec-abstract"),
    _I("3", "Objectives", "Objectives",
       "State the objectives, including whether the study develops a model, evaluates one, or both.",
       (), "sec-abstract"),
    _I("4", "Methods", "Data",
       "Describe the sources of data.",
       ("data_source",), "sec-abstract"),
    _I("5", "Methods", "Participants",
       "Describe the eligibility criteria and the setting where the data were collected.",
       ("eligibility", "setting"), "sec-abstract"),
    _I("6", "Methods", "Outcome",
       "Specify the outcome predicted, with the time horizon for a prognostic model.",
       ("outcome", "outcome_timing"), "sec-abstract"),
    _I("7", "Methods", "Model",
       "Specify the type of model, summarise the model-building steps and the internal validation.",
       ("model_type", "model_building"), "sec-abstract", "", "D"),
    _I("8", "Methods", "Performance measures",
       "Specify the measures of model performance (discrimination, calibration, clinical utility).",
       ("performance_measures",), "sec-abstract"),
    _I("9", "Results", "Participants",
       "Report the number of participants and outcome events.",
       ("cohorts",), "sec-abstract"),
    _I("10", "Results", "Model",
       "Summarise the predictors in the final model.",
       ("model_specification",), "sec-abstract", "", "D"),
    _I("11", "Results", "Model performance",
       "Report the performance estimates with confidence intervals.",
       ("performance",), "sec-abstract"),
    _I("12", "Discussion", "Interpretation",
       "Give an overall interpretation of the main results.",
       (), "sec-abstract"),
    _I("13", "Registration", "Registration",
       "Give the registration number and the name of the registry or repository.",
       (), "sec-abstract"),
)

del _I

_CHECKLISTS = {MAIN: TRIPOD_AI, ABSTRACTS: TRIPOD_AI_ABSTRACT}


def _present(facts: Mapping) -> dict[str, str]:
    """The facts with text, stripped; the boundary check of `tripod_checklist`."""
    if not isinstance(facts, Mapping):
        raise InputError(f"tripod_checklist: facts must be a dict of texts, got {type(facts).__name__}")
    known = set(RUN_FACTS) | set(AUTHOR_FACTS)
    unknown = sorted(str(k) for k in facts if k not in known)
    if unknown:
        raise InputError(f"tripod_checklist: unknown fact(s) {', '.join(map(repr, unknown))}; "
                         f"the known facts are {', '.join(RUN_FACTS + AUTHOR_FACTS)}")
    present = {}
    for key, value in facts.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"tripod_checklist: fact {key!r} must be a text (or None), "
                             f"got {type(value).__name__} {value!r}")
        if value.strip() and key in RUN_FACTS:
            present[key] = value.strip()
    return present


def _join(texts: list[str]) -> str:
    """Texts run together: a space after one that ends a sentence, otherwise a semicolon."""
    out = ""
    for text in texts:
        if out:
            out += " " if out.endswith((".", "!", "?")) else "; "
        out += text
    return out


def _authors_add(entry: ChecklistItem, present: Mapping) -> str:
    """What the authors must add to ``entry`` beyond the run's facts: nothing when it is filled;
    its remainder (``to_complete``) and the facts the run lacked when partly filled; the whole
    recommendation when the run has none of it."""
    lacking = [FACT_WORDS.get(key, key) for key in entry.facts if key not in present]
    if entry.facts and len(lacking) == len(entry.facts) or not entry.facts:
        return f"all of it: {entry.recommendation[:1].lower()}{entry.recommendation[1:]}"
    parts = [entry.to_complete] if entry.to_complete else []
    if lacking:
        parts.append(", ".join(lacking) + " (not in this run)")
    return "; ".join(parts)


def item_status(found: int, facts: int, to_complete: str) -> str:
    """An item's status from how many of its ``facts`` the run has (``found``) and what it asks
    beyond them: filled when all are there and nothing else is asked, for the authors when none
    is, otherwise partly filled (every checklist the report fills uses this one rule)."""
    if not found:
        return AUTHORS
    return FILLED if found == facts and not to_complete else PARTLY


def tripod_checklist(facts: Mapping, *, abstract: bool = False) -> pd.DataFrame:
    """The TRIPOD+AI checklist (or its abstract checklist) filled from a run's facts.

    Parameters
    ----------
    facts : dict of str to str
        Short texts the report builder formats from the run, keyed by the names of
        `RUN_FACTS` (``"cohorts"``, ``"sample_size"``, ...). A missing key, ``None`` or an empty
        text means the run does not know it. The keys of `AUTHOR_FACTS` (``"funding"``,
        ``"ethics"``, ...) are accepted and ignored: their items are the authors' to write.
    abstract : bool, default False
        Fill the 13 items of TRIPOD+AI for Abstracts instead of the 52 rows of TRIPOD+AI.

    Returns
    -------
    DataFrame
        One row per item in the checklist's order with columns ``checklist`` (``"TRIPOD+AI"``
        or ``"TRIPOD+AI for Abstracts"``), ``item``, ``section``, ``topic``,
        ``recommendation``, ``report_section`` (an anchor of the report or ``""``), ``status``,
        ``value`` (the texts of the item's facts that are present, joined in the item's
        order; ``""`` when none is) and ``authors_add`` (what the authors must add: ``""`` when
        filled, the item's remainder and the facts the run lacked when partly filled, the whole
        recommendation when the run has none of it).

    Raises
    ------
    InputError
        (a ValueError) when `facts` is not a mapping, names an unknown fact, or holds a value
        that is neither a text nor None.

    Notes
    -----
    ``status`` is ``"filled from the run"`` when every fact of the item is present and the
    item asks nothing more (its `ChecklistItem.to_complete` is empty); ``"partly filled:
    authors to complete"`` when some of its facts are present, or all are but it asks what the
    run cannot know (the rationale for the data, say); ``"for the authors"`` when none is, or
    the item has no facts (background, objectives, ethics, funding, conflicts, protocol,
    registration, patient and public involvement, interpretation).

    References
    ----------
    Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for
    reporting clinical prediction models that use regression or machine learning methods.
    BMJ 2024;385:e078378.
    """
    present = _present(facts)
    name = ABSTRACTS if abstract else MAIN
    rows = []
    for entry in _CHECKLISTS[name]:
        found = [present[key] for key in entry.facts if key in present]
        status = item_status(len(found), len(entry.facts), entry.to_complete)
        rows.append({"checklist": name, "item": entry.item, "section": entry.section, "topic": entry.topic,
                     "recommendation": entry.recommendation, "report_section": entry.report_section,
                     "status": status, "value": _join(found), "authors_add": _authors_add(entry, present)})
    return pd.DataFrame(rows, columns=COLUMNS)


# Pandoc reads a backslash before any ASCII punctuation as that character, so escaping these
# keeps a run's text literal: no emphasis, math, citation, link, raw HTML or cell break.
_MARKDOWN_SPECIAL = "\\|*_`$@[]<>#^~"


def _cell(text) -> str:
    """One table cell: markdown escaped, line breaks and runs of spaces as single spaces."""
    text = " ".join(str(text).split())
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)


def _where(anchor: str, *, link: bool) -> str:
    if not anchor:
        return ""
    label = REPORT_SECTIONS.get(anchor, anchor)
    return f"[{_cell(label)}](#{anchor})" if link else _cell(label)


def checklist_markdown(frame: pd.DataFrame, *, link: bool = True) -> str:
    """A filled checklist as a Quarto/pandoc pipe table.

    Parameters
    ----------
    frame : DataFrame
        What `tripod_checklist` returns (or a selection of its rows).
    link : bool, default True
        Write the report section as a link to its anchor (``[Methods: data](#sec-methods-data)``,
        which Quarto and plain pandoc both resolve); otherwise as its name only.

    Returns
    -------
    str
        A pipe table with columns Item, Section/topic (with the recommendation), Where,
        Status and From the run, one line per row and a final newline. For a partly filled
        item, the Status cell adds what the authors still have to give. Cell texts are
        escaped so that ``|``, line breaks and markdown punctuation in a run's facts cannot
        break the table or turn into markup.

    Raises
    ------
    InputError
        (a ValueError) when `frame` lacks one of the columns `tripod_checklist` returns.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"checklist_markdown: the frame lacks column(s) {', '.join(missing)}; "
                         "pass what tripod_checklist returns")
    notes = {(name, entry.item): entry.to_complete for name, items in _CHECKLISTS.items() for entry in items}
    # dash counts give pandoc the relative column widths when a line is longer than 72 characters
    lines = ["| Item | Section/topic | Where | Status | From the run |",
             "|:-----|:--------------------------|:----------|:---------|:--------------------------|"]
    for row in frame.itertuples(index=False):
        topic = row.section if row.topic == row.section else f"{row.section} / {row.topic}"
        status = str(row.status)
        note = str(row.authors_add) if str(row.authors_add) not in ("", "nan") else \
            notes.get((row.checklist, str(row.item)), "")
        if status == PARTLY and note:
            status = f"{status} ({note})"
        cells = [_cell(row.item), f"{_cell(topic)}: {_cell(row.recommendation)}",
                 _where(str(row.report_section), link=link), _cell(status), _cell(row.value)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
