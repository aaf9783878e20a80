"""The report audit: every number the rendered report prints is found in the run's files, and
every comparison it words agrees with the numbers and tests it quotes.

`dlr report` runs it on the HTML it has just rendered and writes ``RUN/report/audit.csv``; a
referee (or a test) can run it again on a report and a run folder at any time
(:func:`audit_report`), so that a results file changed after the report was built, or a
sentence edited, shows. What it checks, on the report's text (tags, scripts and styles
stripped):

- **estimates with their CI** (``0.795 (95% CI 0.718-0.872)``, ``0.795 (0.718–0.872)``): the
  three numbers must be the rounded values of three cells of *one row* of one of the run's
  tables (``performance.csv``, ``comparisons.csv``, ...), a match no chance can make;
- **every other decimal number**: the rounded value (or 100 times it, or its negative) of some
  cell of the run's tables, or a constant of the methods (:data:`METHOD_CONSTANTS`);
- **"best"**: a model called "the best model" only where the text also says the paired tests
  found it significantly better than every other;
- **directions**: "X, higher than Y's Z (difference D" needs X > Z and D = X - Z; "lower than"
  the reverse; "better than chance (AUC a, 95% CI l-h)" needs l > 0.5, "worse than chance"
  h < 0.5 and "did not differ from chance" l <= 0.5 <= h; "significantly" / "not
  significantly" after a Holm P must agree with it at 0.05.

Each finding is a row of ``audit.csv``: ``check``, ``quoted`` (the report's words), ``result``
(``ok`` or ``inconsistent``), ``why`` and ``source``: where the quoted numbers were found (the
file, its data row counted from 1 and the columns, e.g. ``results/performance.csv row 4:
auc, auc_ci_low, auc_ci_high``; a JSON document; or the methods' constant), so that a referee
can trace every printed number to its cell. A triple's row is certain (no chance puts three
values together in one row); a single number's is the first cell that prints as it, which for a
short number may be a coincidence: the methods' constants are taken first for numbers of up to
two decimals.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Optional

import numpy as np
import pandas as pd

from dlr.core import run_folder as rf
from dlr.core.errors import InputError

from .facts import as_facts
from .text import DCA_RANGE, UTILITY_THRESHOLDS

#: the audit's file in RUN/report/
AUDIT_FILE = "audit.csv"
#: numbers the methods state that no file holds (significance level, ICC cut-off, the
#: calibration-slope range, decision-curve ranges and quoted thresholds, chance)
METHOD_CONSTANTS = (0.05, 0.001, 0.5, 0.90, *rf.CALIBRATION_SLOPE_RANGE, *DCA_RANGE, *UTILITY_THRESHOLDS)
#: the run's folders whose tables the numbers may come from
SOURCES = (rf.RESULTS_DIR, rf.MODELS_DIR, f"{rf.MODELS_DIR}/deep", "clinical", rf.STAGING_DIR)
#: files too large or not quoted (per-patient and per-voxel tables)
SKIPPED = {"predictions.csv", "predictions_oof.csv", "oof_predictions.csv", "unharmonised_predictions.csv",
           "deep_features.csv", "roc_curve.csv",
           "roc_band.csv", "calibration_smooth.csv", "decision_curve.csv", "km_curve.csv", "lasso_path.csv",
           "training_log.csv", "tuning.csv", "icc.csv", "staging.csv", "scorecam.csv"}
#: tables `dlr report` itself writes whose numbers the report quotes: the METRICS checklist's
#: published weights and its score (never audit.csv, the audit's own output)
REPORT_TABLES = ("metrics.csv", "metrics_score.csv")
#: JSON documents whose numbers the report quotes (the settings; and each stage's record in
#: RUN/stages/, its wall time)
DOCUMENTS = (rf.RUN_MARKER, f"{rf.RESULTS_DIR}/{rf.RESULTS_JSON}")
#: a section number at the start of a heading or a table-of-contents line ("6.10 Reader agreement")
SECTION_NUMBER = re.compile(r"(?m)^[ \t]*\d+(?:\.\d+)+(?=[ \t]+[A-Z])")

_NUMBER = r"-?\d+\.\d+"
TRIPLE = re.compile(rf"(?<![\w.])({_NUMBER}) \((?:95% CI )?({_NUMBER})(?:[-–]| to )({_NUMBER})\)")
DECIMAL = re.compile(rf"(?<![\w.\-])({_NUMBER})(?![\w.])")
VERSUS = re.compile(rf"({_NUMBER}), (higher|lower) than (\S+?)'s ({_NUMBER}) \(difference ({_NUMBER})")
CHANCE = re.compile(rf"(better than chance|worse than chance|did not differ from chance) \(AUC ({_NUMBER}), "
                    rf"95% CI ({_NUMBER})[-–]({_NUMBER})")
BEST = re.compile(r"\b(?:was|is) the best model\b|\bthe best-performing model\b")
HOLM = re.compile(r"Holm (< 0\.001|= \d\.\d+|[<=] ?\d\.\d+)\s*:\s*(significantly|not significantly)")


@dataclass(frozen=True)
class Finding:
    check: str
    quoted: str
    result: str
    why: str
    source: str = ""


AUDIT_COLUMNS = ["check", "quoted", "result", "why", "source"]


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("p", "li", "td", "th", "tr", "div", "h1", "h2", "h3", "h4", "figcaption", "caption", "br"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def report_text(html: str) -> str:
    """The text a reader sees in the report's HTML (scripts and styles left out)."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"[ \t\xa0]+", " ", "".join(parser.parts))


def run_values(run) -> list[np.ndarray]:
    """Each row of the run's quoted tables as an array of its numeric cells (read through the
    run's one reader, :class:`dlr.report.facts.RunFacts`)."""
    return run_cells(run)[0]


def run_cells(run, extra: Optional[dict] = None) -> tuple[list[np.ndarray], list[tuple[str, int, np.ndarray]]]:
    """:func:`run_values`' rows and, for each, where it is: (file, data row from 1, the
    columns of its numeric cells).

    ``extra`` maps names of :data:`REPORT_TABLES` to the frames `dlr report` is about to write
    (the METRICS scoring); without it they are read from ``RUN/report/`` where present.
    """
    facts = as_facts(run)
    rows, where = [], []
    tables = [(f"{folder}/{path.name}", None) for folder in SOURCES
              for path in sorted((facts.run / folder).glob("*.csv")) if path.name not in SKIPPED]
    tables += [(f"report/{name}", None if extra is None else extra.get(name)) for name in REPORT_TABLES]
    for name, given in tables:
        if given is not None:
            frame = given
        elif extra is None or not name.startswith("report/"):
            frame = facts.table(name)
        else:  # `dlr report` passed its own tables: an earlier render's are stale
            frame = None
        if frame is None or not len(frame):
            continue
        numeric = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        columns = np.asarray(frame.columns, dtype=object)
        for k, r in enumerate(numeric):
            finite = np.isfinite(r)
            if finite.any():
                rows.append(r[finite])
                where.append((name, k + 1, columns[finite]))
    return rows, where


def _document_numbers(run) -> np.ndarray:
    """Every number of the run's JSON documents (settings, the stages' records): for single
    numbers only, never for an estimate with its CI (a document is no row)."""
    facts = as_facts(run)
    names = [*DOCUMENTS, *(f"stages/{p.name}" for p in sorted((facts.run / "stages").glob("*.json")))]
    numbers = []
    for name in names:
        document = facts.document(name)
        if document is not None:
            numbers += list(_json_numbers(document))
    return np.array(numbers, dtype=float)


def _json_numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_numbers(item)


class _RowIndex:
    """Which rows hold a value that prints as a given quoted number: per (decimals, scale), the
    rounded value -> the rows' numbers (a value half-way between two printings under both)."""

    def __init__(self, rows: list[np.ndarray]):
        self.rows, self._maps = rows, {}

    def _map(self, decimals: int, scale: float) -> dict:
        key = (decimals, scale)
        if key not in self._maps:
            found: dict = {}
            for i, row in enumerate(self.rows):
                scaled = row * scale * 10 ** decimals
                for k in set(np.round(scaled - 1e-6).astype(np.int64)) | set(np.round(scaled + 1e-6).astype(np.int64)):
                    found.setdefault(int(k), set()).add(i)
            self._maps[key] = found
        return self._maps[key]

    def rows_holding(self, quoted, scale: float = 1.0) -> set:
        """The rows that hold a value printing as each of ``quoted`` (after ``scale``)."""
        common = None
        for text in quoted:
            d = _decimals(text)
            rows = self._map(d, scale).get(int(round(float(text) * 10 ** d)), set())
            common = rows if common is None else common & rows
            if not common:
                return set()
        return common or set()


def _cells(row: np.ndarray, columns: np.ndarray, quoted, scale: float) -> list[str]:
    """The columns of ``row`` whose values print as each of ``quoted`` (after ``scale``)."""
    return [str(columns[np.flatnonzero(_rounds_to(scale * row, text))[0]]) for text in quoted]


def _source(where, i: int, row: np.ndarray, quoted, scale: float) -> str:
    file, number, columns = where[i]
    return f"{file} row {number}: " + ", ".join(_cells(row, columns, quoted, scale)) + \
        (" (x 100)" if scale == 100.0 else " (negated)" if scale == -1.0 else "")


def _decimals(text: str) -> int:
    return len(text.split(".")[1])


def _rounds_to(values: np.ndarray, quoted: str) -> np.ndarray:
    """Which of ``values`` print as ``quoted`` at its number of decimals (half-way cases either way)."""
    d, x = _decimals(quoted), float(quoted)
    return np.abs(values - x) <= 0.5 * 10 ** -d + 1e-9


def audit_text(text: str, run, *, extra: Optional[dict] = None) -> list[Finding]:
    """Every finding of the checks above on ``text`` against ``run``'s files (``extra``: see
    :func:`run_cells`)."""
    text = SECTION_NUMBER.sub(lambda m: " " * len(m.group(0)), text)
    text = re.sub(r"\s+", " ", text.replace("\u2019", "'"))  # as one line; pandoc wraps, smartypants curls
    rows, where = run_cells(run, extra)
    documents = _document_numbers(run)
    findings: list[Finding] = []
    in_triples = set()
    index = _RowIndex(rows)
    for m in TRIPLE.finditer(text):
        quoted = m.groups()
        in_triples.update({m.start(1), m.start(2), m.start(3)})
        source = ""
        for scale in (1.0, 100.0):  # or as a percentage
            holding = index.rows_holding(quoted, scale)
            if holding:
                i = min(holding)
                source = _source(where, i, rows[i], quoted, scale)
                break
        findings.append(Finding("estimate and CI from one row", m.group(0), "ok" if source else "inconsistent",
                                "" if source else "no row of the run's tables holds these three values together",
                                source))
    constants, checked = np.asarray(METHOD_CONSTANTS), 0
    for m in DECIMAL.finditer(text):
        if m.start(1) in in_triples:
            continue
        quoted, checked = m.group(1), checked + 1
        context = text[max(0, m.start() - 60):m.end() + 20].replace("\n", " ")
        constant = bool(_rounds_to(constants, quoted).any())
        # a short number that is a stated constant ("P < 0.05", "slopes outside 0.5-2.0") is that constant
        source = "a constant of the methods" if constant and _decimals(quoted) <= 2 else ""
        for scale in (1.0, 100.0, -1.0) if not source else ():  # a cell, a percentage, a reversed difference
            holding = index.rows_holding((quoted,), scale)
            if holding:
                i = min(holding)
                source = _source(where, i, rows[i], (quoted,), scale)
                break
        if not source and documents.size and any(_rounds_to(s * documents, quoted).any() for s in (1.0, 100.0, -1.0)):
            source = "run.json, results/results.json or stages/*.json"
        if not source and constant:
            source = "a constant of the methods"
        findings.append(Finding("number in the run's files", context, "ok" if source else "inconsistent",
                                "" if source else f"{quoted} is no value of the run's tables", source))
    findings.append(Finding("number in the run's files", f"{checked} numbers outside estimate-and-CI triples",
                            "ok" if not any(f.check == "number in the run's files" and f.result != "ok"
                                            for f in findings) else "inconsistent",
                            "the count of numbers checked"))
    for m in BEST.finditer(text):
        ok = "significantly better than every other model" in text
        findings.append(Finding("'best' only when the tests say so", m.group(0), "ok" if ok else "inconsistent",
                                "" if ok else "a model is called the best though the paired tests do not show it "
                                              "better than every other"))
    for m in VERSUS.finditer(text):
        mine, word, other, theirs, diff = m.groups()
        a, b, d = float(mine), float(theirs), float(diff)
        direction = (word == "higher") == (a > b) if a != b else False
        sign = abs((a - b) - d) <= 2 * 10 ** -_decimals(diff) + 1e-9
        ok = direction and sign
        findings.append(Finding("direction of a difference", m.group(0), "ok" if ok else "inconsistent",
                                "" if ok else f"{mine} is not {word} than {theirs}, or the difference is not "
                                              f"{mine} minus {theirs}"))
    for m in CHANCE.finditer(text):
        words, _, low, high = m.groups()
        lo, hi = float(low), float(high)
        ok = {"better than chance": lo > 0.5, "worse than chance": hi < 0.5,
              "did not differ from chance": lo <= 0.5 <= hi}[words]
        findings.append(Finding("against chance", m.group(0), "ok" if ok else "inconsistent",
                                "" if ok else f"a 95% CI of {low}-{high} does not say '{words}'"))
    for m in HOLM.finditer(text):
        quoted, words = m.groups()
        p = 0.0009 if quoted.startswith("<") else float(quoted.split()[-1].lstrip("=<"))
        ok = (p < 0.05) == (words == "significantly")
        findings.append(Finding("significance after Holm", m.group(0), "ok" if ok else "inconsistent",
                                "" if ok else f"a Holm-adjusted P {quoted} is not '{words}'"))
    return findings


def audit_report(run, html: Optional[str] = None, *, extra: Optional[dict] = None) -> pd.DataFrame:
    """The audit of a rendered report (``html``, its text; default ``RUN/report/index.html``)
    against ``run``'s files, as the rows of ``audit.csv`` (``extra``: see :func:`run_cells`)."""
    facts = as_facts(run)
    html = facts.text("report/index.html") if html is None else html
    if html is None:
        raise InputError(f"{facts.run / 'report' / 'index.html'}: no rendered report to audit; run `dlr report`")
    findings = audit_text(report_text(html), facts, extra=extra)
    return pd.DataFrame([f.__dict__ for f in findings], columns=AUDIT_COLUMNS)


def failures(audit: pd.DataFrame) -> pd.DataFrame:
    return audit[audit["result"] != "ok"]
