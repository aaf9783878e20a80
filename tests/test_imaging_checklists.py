"""CLAIM 2024, CLEAR and METRICS filled from a run's facts, and METRICS scored as its tool does
(the whole report's checklists: tests/test_run.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from dlr.report.imaging_checklists import (ASK_AUTHORS, CHECKLISTS, CLAIM, CLEAR, METRICS, NO, NOT_APPLICABLE, YES,
                                           checklist_items, checklist_markdown, imaging_checklist, metrics_markdown,
                                           metrics_score)
from dlr.report.tripod import AUTHORS, FILLED, PARTLY, REPORT_SECTIONS

SIZES = {"claim": 44, "clear": 58, "metrics": 30}


@pytest.mark.parametrize("key", list(CHECKLISTS))
def test_each_checklist_has_its_published_items_with_a_source(key):
    data = checklist_items(key)
    ids = [str(item["id"]) for item in data["items"]]
    assert ids == [str(i) for i in range(1, SIZES[key] + 1)]
    assert data["citation"] and data["url"] and data["licence"]
    for item in data["items"]:
        assert len(item["text"]) > 20 and item.get("topic")
    mapping = {"claim": CLAIM, "clear": CLEAR, "metrics": METRICS}[key]
    assert set(mapping) <= set(ids)  # no answer for an item the checklist lacks
    for entry in mapping.values():  # every section an item points to is one of the report's
        assert entry.section == "" or entry.section in REPORT_SECTIONS


def test_metrics_weights_are_the_published_ones_and_sum_to_one():
    data = checklist_items("metrics")
    weights = {str(i["id"]): float(i["weight"]) for i in data["items"]}
    assert weights["1"] == 0.0368 and weights["3"] == 0.0919 and weights["27"] == 0.0749 and weights["18"] == 0.0599
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert [c["id"] for c in data["conditions"]] == ["C1", "C2", "C3", "C4", "C5"]


@pytest.mark.parametrize("key", list(CHECKLISTS))
def test_a_run_that_knows_nothing_leaves_every_item_to_the_authors_with_its_request(key):
    frame = imaging_checklist(key, {})
    items = frame[frame["section"] != "Conditions"]
    assert len(items) == SIZES[key] and set(items["status"]) == {AUTHORS}
    assert (items["authors_add"].str.len() > 20).all() and (items["value"] == "").all()


def test_status_follows_the_facts_present_and_what_the_item_asks_beyond_them():
    frame = imaging_checklist("clear", {"resampling": "2 x 2 x 2 mm", "outcome": "early_recurrence"}).set_index("item")
    assert frame.loc["22", "status"] == FILLED and frame.loc["22", "value"] == "2 x 2 x 2 mm"
    assert frame.loc["22", "report_section"] == "sec-methods-predictors" and frame.loc["22", "authors_add"] == ""
    # the outcome is known, its justification is not: partly filled, and the note says what is missing
    assert frame.loc["18", "status"] == PARTLY and "justification" in frame.loc["18", "authors_add"]
    # two facts, one known
    both = imaging_checklist("clear", {"comparison_nonradiomic": "CR vs RCR"}).set_index("item")
    assert both.loc["48", "status"] == PARTLY and both.loc["48", "authors_add"] == "Clinical utility."
    assert imaging_checklist("clear", {"comparison_nonradiomic": "CR vs RCR", "clinical_utility": "decision curves"}
                             ).set_index("item").loc["48", "status"] == FILLED


def _metrics(answers: dict) -> pd.DataFrame:
    return imaging_checklist("metrics", {"checklists": "filled"}, answers=answers)


def test_metrics_score_is_the_tools_weighted_share_with_the_range_the_authors_can_still_move():
    weights = {str(i["id"]): float(i["weight"]) for i in checklist_items("metrics")["items"]}
    everything = {str(i): YES for i in range(1, 31)}
    assert metrics_score(_metrics(everything)).score == pytest.approx(100.0)
    # C1 no: items 8-10 leave both sums (the tool's calculateScore)
    answers = {**{str(i): NO for i in range(1, 31)}, "1": YES, "8": NOT_APPLICABLE, "9": NOT_APPLICABLE,
               "10": NOT_APPLICABLE}
    score = metrics_score(_metrics(answers))
    applicable = sum(w for k, w in weights.items() if k not in ("8", "9", "10"))
    assert score.score == pytest.approx(100 * weights["1"] / applicable)
    assert score.category == "very low" and score.answered == 27 and score.yes == 1 and score.authors == 0
    # half answered by the run, half left to the authors
    half = {str(i): YES for i in range(1, 16)}
    partial = metrics_score(_metrics(half))
    answered = sum(weights[str(i)] for i in range(1, 16))
    assert partial.score == pytest.approx(100.0) and partial.authors == 15
    assert partial.lowest == pytest.approx(100 * answered)  # the weights sum to 1
    assert partial.highest == pytest.approx(100.0)


def test_metrics_bands_follow_the_tool():
    weights = {str(i["id"]): float(i["weight"]) for i in checklist_items("metrics")["items"]}
    # items 1-3 yes (0.2022), the rest no: 20.2%, "low"
    answers = {str(i): (YES if i <= 3 else NO) for i in range(1, 31)}
    score = metrics_score(_metrics(answers))
    assert score.score == pytest.approx(100 * (weights["1"] + weights["2"] + weights["3"]))
    assert score.category == "low"


def test_the_markdown_tables_escape_the_run_text_and_show_the_score():
    frame = imaging_checklist("claim", {"software": "dlr | 0.1 *bold*"})
    text = checklist_markdown(frame)
    assert text.count("\n") == len(frame) + 2
    assert "dlr \\| 0.1 \\*bold\\*" in text
    metrics = _metrics({"1": YES, "2": NO})
    table = metrics_markdown(metrics, metrics_score(metrics))
    # weighted, not counted: 0.0368 yes of 0.0368 + 0.0735 answered
    assert "METRICS score from the items the run answers: **33.4%** (low; 1 of 2 items yes" in table
    assert "| 0.0368 |" in table
    assert ASK_AUTHORS in table
