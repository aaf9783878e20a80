"""The TRIPOD+AI checklists (Collins et al., BMJ 2024;385:e078378) filled from a run."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from dlr.report.tripod import (ABSTRACTS, AUTHOR_FACTS, AUTHORS, COLUMNS, FILLED, MAIN, PARTLY, REPORT_SECTIONS, RUN_FACTS,
                           TRIPOD_AI, TRIPOD_AI_ABSTRACT, checklist_markdown, tripod_checklist)

# The checklist's rows in its printed order (version of 11 January 2024): 27 items, 52 rows.
OFFICIAL_ORDER = [
    "1", "2", "3a", "3b", "3c", "4", "5a", "5b", "6a", "6b", "6c", "7", "8a", "8b", "8c", "9a", "9b", "9c", "10",
    "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g", "13", "14", "15", "16", "17", "18a", "18b", "18c", "18d",
    "18e", "18f", "19", "20a", "20b", "20c", "21", "22", "23a", "23b", "24", "25", "26", "27a", "27b", "27c",
]
SECTIONS = ["Title", "Abstract", "Introduction", "Methods", "Open science", "Patient & public involvement", "Results",
            "Discussion"]
# ethics, funding, conflicts, protocol, registration, patient and public involvement
AUTHOR_ONLY = ["17", "18a", "18b", "18c", "18d", "19"]


def full_facts() -> dict[str, str]:
    """Every fact the run can know, each a distinct text; and the six it never knows."""
    facts = {key: f"text of {key}." for key in RUN_FACTS}
    facts.update({key: f"authors' {key}" for key in AUTHOR_FACTS})
    return facts


def by_item(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["item"]: row for _, row in frame.iterrows()}


def cells(line: str) -> list[str]:
    """The cells of a pipe-table line, split at the pipes not escaped by a backslash."""
    assert line.startswith("|") and line.endswith("|"), line
    return re.split(r"(?<!\\)\|", line[1:-1])


def test_main_checklist_has_the_52_rows_in_the_official_order():
    items = [entry.item for entry in TRIPOD_AI]
    assert items == OFFICIAL_ORDER
    assert len(items) == 52 and len(set(items)) == 52
    # 27 main items: the numbers without their sub-item letters
    assert len({re.match(r"\d+", item).group() for item in items}) == 27


def test_main_checklist_sections_in_order_and_known_anchors():
    sections = list(dict.fromkeys(entry.section for entry in TRIPOD_AI))
    assert sections == SECTIONS
    topics = {entry.item: entry.topic for entry in TRIPOD_AI}
    assert topics["5a"] == "Data" and topics["10"] == "Sample size" and topics["11"] == "Missing data"
    assert {topics[i] for i in ("12a", "12b", "12c", "12d", "12e", "12f", "12g")} == {"Analytical methods"}
    assert topics["13"] == "Class imbalance" and topics["14"] == "Fairness" and topics["16"] == "Training versus evaluation"
    for entry in TRIPOD_AI + TRIPOD_AI_ABSTRACT:
        assert entry.report_section in REPORT_SECTIONS or entry.report_section == "", entry
        assert set(entry.facts) <= set(RUN_FACTS), entry
        assert entry.applies in ("D", "E", "D;E"), entry
        assert entry.recommendation.strip(), entry


def test_abstract_checklist_has_13_items():
    items = [entry.item for entry in TRIPOD_AI_ABSTRACT]
    assert items == [str(i) for i in range(1, 14)]
    assert list(dict.fromkeys(e.section for e in TRIPOD_AI_ABSTRACT)) == [
        "Title", "Background", "Objectives", "Methods", "Results", "Discussion", "Registration"]
    frame = tripod_checklist({}, abstract=True)
    assert len(frame) == 13 and set(frame["checklist"]) == {ABSTRACTS}


def test_frame_columns_and_checklist_name():
    frame = tripod_checklist(full_facts())
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 52 and set(frame["checklist"]) == {MAIN}
    assert list(frame["item"]) == OFFICIAL_ORDER
    assert set(frame["status"]) == {FILLED, PARTLY, AUTHORS}


def test_status_all_facts_filled_some_partly_none_authors():
    # 21 (cohorts only) and 12a (cohorts and model_building) ask nothing the run cannot know
    full = by_item(tripod_checklist({"cohorts": "training 132 (78 events)", "model_building": "LASSO"}))
    assert full["21"]["status"] == FILLED
    assert full["12a"]["status"] == FILLED
    some = by_item(tripod_checklist({"cohorts": "training 132 (78 events)"}))
    assert some["12a"]["status"] == PARTLY and some["12a"]["value"] == "training 132 (78 events)"
    none = by_item(tripod_checklist({}))
    assert none["12a"]["status"] == AUTHORS and none["12a"]["value"] == ""
    assert set(tripod_checklist({})["status"]) == {AUTHORS}


def test_item_that_asks_more_than_the_run_knows_is_only_partly_filled():
    # 5a asks for the rationale and representativeness of the data beside their source
    rows = by_item(tripod_checklist({"data_source": "study folder liver-mri"}))
    assert rows["5a"]["status"] == PARTLY and rows["5a"]["value"] == "study folder liver-mri"
    # 5b (dates) is filled only when study.yaml gives the dates
    assert rows["5b"]["status"] == AUTHORS
    assert by_item(tripod_checklist({"data_dates": "2015-2020"}))["5b"]["status"] == FILLED


def test_author_only_items_stay_with_the_authors_whatever_the_facts():
    rows = by_item(tripod_checklist(full_facts()))
    for item in AUTHOR_ONLY + ["3a", "3b", "3c", "4", "25"]:
        assert rows[item]["status"] == AUTHORS, item
        assert rows[item]["value"] == "", item
    abstract = by_item(tripod_checklist(full_facts(), abstract=True))
    assert abstract["13"]["status"] == AUTHORS and abstract["12"]["status"] == AUTHORS


def test_empty_and_none_facts_count_as_absent():
    rows = by_item(tripod_checklist({"missing_data": "   ", "sample_size": None}))
    assert rows["11"]["status"] == AUTHORS and rows["10"]["status"] == AUTHORS


def test_values_carried_through_in_the_item_order():
    facts = {"performance": "AUC 0.81 (95% CI 0.72-0.90)", "calibration": "slope 0.93",
             "clinical_utility": "net benefit above treat-all from 10% to 60%.", "fairness": "AUC by scanner"}
    row = by_item(tripod_checklist(facts))["23a"]
    assert row["status"] == FILLED
    assert row["value"] == ("AUC 0.81 (95% CI 0.72-0.90); slope 0.93; net benefit above treat-all from 10% to 60%. "
                            "AUC by scanner")
    frame = tripod_checklist(full_facts())
    for entry, (_, row) in zip(TRIPOD_AI, frame.iterrows()):
        for key in entry.facts:
            assert f"text of {key}." in row["value"], (entry.item, key)
        assert row["recommendation"] == entry.recommendation and row["report_section"] == entry.report_section


def test_unknown_fact_and_non_text_value_raise():
    with pytest.raises(ValueError, match="'sample-size'"):
        tripod_checklist({"sample-size": "n = 100"})
    with pytest.raises(ValueError, match="'cohorts'.*int"):
        tripod_checklist({"cohorts": 165})
    with pytest.raises(ValueError, match="dict"):
        tripod_checklist(["cohorts"])


def test_markdown_table_has_five_columns_on_every_line_and_escapes_cells():
    facts = full_facts()
    facts["performance"] = "AUC 0.81 | 0.79\nsecond line with *stars*, $5 and @ref"
    frame = tripod_checklist(facts)
    text = checklist_markdown(frame)
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 2 + 52
    assert cells(lines[0]) == [" Item ", " Section/topic ", " Where ", " Status ", " From the run "]
    assert re.fullmatch(r"\|(:-+\|){5}", lines[1])
    assert all(len(cells(line)) == 5 for line in lines)
    row_23a = next(line for line in lines if line.startswith("| 23a |"))
    assert r"AUC 0.81 \| 0.79 second line with \*stars\*, \$5 and \@ref" in row_23a
    assert "[Results: performance](#sec-results-performance)" in row_23a
    row_5a = next(line for line in lines if line.startswith("| 5a |"))
    assert "partly filled: authors to complete (the rationale for using these data" in row_5a
    plain = checklist_markdown(frame, link=False)
    assert "](#" not in plain and "| Methods: data |" in plain


def test_markdown_abstract_table_and_missing_columns():
    text = checklist_markdown(tripod_checklist({"cohorts": "training 132 (78)"}, abstract=True))
    assert len(text.splitlines()) == 2 + 13
    with pytest.raises(ValueError, match="status"):
        checklist_markdown(tripod_checklist({}).drop(columns="status"))


def test_markdown_renders_as_one_table_with_pandoc():
    pypandoc = pytest.importorskip("pypandoc")
    facts = full_facts()
    facts["performance"] = "AUC 0.81 | 0.79\nnext [line] with <b>tags</b> and `code`"
    html = pypandoc.convert_text(checklist_markdown(tripod_checklist(facts)), "html", format="markdown",
                                 extra_args=["--wrap=none"])
    assert html.count("<table") == 1
    body = html.split("<tbody>")[1]
    assert body.count("<tr") == 52
    for row in body.split("<tr")[1:]:
        assert row.count("<td") == 5
    assert "AUC 0.81 | 0.79 next [line] with &lt;b&gt;tags&lt;/b&gt; and `code`" in html
    assert '<a href="#sec-methods-data">Methods: data</a>' in html


def test_every_row_is_filled_or_says_what_the_authors_must_add():
    facts = {"title": "T", "study_type": "development", "cohorts": "100 patients", "predictors": "p",
             "performance": "AUC 0.7"}
    frame = tripod_checklist(facts)
    for row in frame.itertuples(index=False):
        if row.status == FILLED:
            assert row.authors_add == ""
        else:
            assert row.authors_add, row.item
    by_item = frame.set_index("item")
    assert by_item.loc["3a", "authors_add"].startswith("all of it: explain the healthcare context")
    # item 2: the run gave the study type, cohorts and performance; the remainder is the authors'
    assert by_item.loc["2", "authors_add"] == "the background and the interpretation of the abstract"
    # item 12a lacks model_building: named in words
    assert "the model-building steps (not in this run)" in by_item.loc["12a", "authors_add"]
