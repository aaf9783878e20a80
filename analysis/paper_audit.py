"""`dlr audit`: the statistics a paper reports, checked against each other (contract section 9).

A reviewer transcribes what a paper prints into a CSV (contract section 9: one row per number)
or the YAML described in README "Auditing a paper's numbers" (one entry per printed table row,
as the paper lays it out); :func:`read_reported` turns either into the same rows,
:func:`audit_reported` runs every check of :mod:`dlr.analysis.consistency` that the rows allow,
and :func:`letter` writes the inconsistencies as a note a referee can paste.

Numbers are kept as printed (``"0.630"``, not 0.63): the digits set the rounding every check
allows.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from dlr.core.errors import InputError

from . import consistency as cs
from .consistency import CANNOT_TELL, CONSISTENT, INCONSISTENT, AUCReport, Printed

#: contract section 9's columns, then this module's extensions (README)
COLUMNS = ("table", "model", "cohort", "statistic", "value", "ci_low", "ci_high", "n", "events", "compare_to",
           "decimals")
EXTRA_COLUMNS = ("count", "tied", "ci_method")
STATISTICS = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "p_value", "odds_ratio", "percent",
              "count")
#: the YAML row keys that are not statistics
ROW_KEYS = ("model", "cohort", "n", "events", "count", "tied", "ci_method")
AUDIT_COLUMNS = ("check", "table", "model", "cohort", "statistic", "reported", "expected", "verdict", "reason")
CI_METHODS = ("delong", "wald", "bootstrap", "unknown")

_NUMBER = r"[-\u2212]?\d*\.?\d+"
_WITH_CI = re.compile(rf"^\s*({_NUMBER})\s*[(\[]\s*(?:95\s*%\s*CI[:,]?\s*)?({_NUMBER})\s*(?:-|\u2013|\u2014|to|,)\s*"
                      rf"({_NUMBER})\s*[)\]]\s*$", re.IGNORECASE)
_P_VS = re.compile(r"^\s*([<>\u2264\u2265]?\s*=?\s*" + _NUMBER + r")\s*(?:vs\.?|versus)\s*(.+?)\s*$", re.IGNORECASE)


# -- reading ----------------------------------------------------------------------------------

def read_reported(path) -> pd.DataFrame:
    """The reported numbers of ``path`` (``.csv``, ``.yaml`` or ``.yml``) as rows of :data:`COLUMNS`
    (all text, as printed) plus the extensions ``count``, ``tied`` and ``ci_method``.

    Raises :class:`InputError` naming the file, row and key for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the CSV or YAML of the reported numbers")
    if path.suffix.lower() == ".csv":
        frame, paper = _read_csv(path), ""
    elif path.suffix.lower() in (".yaml", ".yml"):
        frame, paper = _read_yaml(path)
    else:
        raise InputError(f"{path}: unknown format {path.suffix!r}; give a .csv (contract section 9) or a .yaml")
    frame = _validated(frame, path)
    frame.attrs["paper"] = paper  # the YAML's `paper`: the letter's source line
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc}); save it as UTF-8 CSV with a header row") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("table", "model", "cohort", "statistic", "value") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; contract section 9 lists the columns")
    unknown = [c for c in frame.columns if c not in COLUMNS + EXTRA_COLUMNS]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(unknown)}; the columns are "
                         f"{', '.join(COLUMNS + EXTRA_COLUMNS)}")
    for column in COLUMNS + EXTRA_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    frame["row"] = [f"row {i + 2}" for i in range(len(frame))]
    return frame


def _load_yaml(path: Path):
    import yaml

    try:  # every scalar as text: YAML would read 0.630 as 0.63 and lose its last digit
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); check its indentation and quotes") from None


def _read_yaml(path: Path) -> tuple[pd.DataFrame, str]:
    document = _load_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("tables"), list):
        raise InputError(f"{path}: the top level needs a 'tables' list (README 'Auditing a paper's numbers')")
    unknown = [k for k in document if k not in ("paper", "licence", "source", "ci_method", "cohorts", "tables", "notes")]
    if unknown:
        raise InputError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; the keys are paper, licence, "
                         f"source, ci_method, cohorts, tables, notes")
    default_method = document.get("ci_method", "unknown")
    cohorts = document.get("cohorts") or {}
    if not isinstance(cohorts, dict):
        raise InputError(f"{path}: 'cohorts' must map each cohort to its n and events")
    rows = []
    for t, table in enumerate(document["tables"]):
        if not isinstance(table, dict) or "table" not in table or not isinstance(table.get("rows"), list):
            raise InputError(f"{path}: tables[{t}] needs 'table' (its name in the paper) and a 'rows' list")
        name = table["table"]
        for r, entry in enumerate(table["rows"]):
            where = f"{name}, rows[{r}]"
            if not isinstance(entry, dict):
                raise InputError(f"{path}: {where} must be a mapping of keys to printed values")
            bad = [k for k in entry if k not in ROW_KEYS + STATISTICS]
            if bad:
                raise InputError(f"{path}: {where}: unknown key(s) {', '.join(bad)}; a row holds "
                                 f"{', '.join(ROW_KEYS)} and the statistics {', '.join(STATISTICS)}")
            if "model" not in entry:
                raise InputError(f"{path}: {where}: no 'model' (the model, variable or group the row reports)")
            cohort = entry.get("cohort", "")
            known = cohorts.get(cohort, {}) if isinstance(cohorts.get(cohort, {}), dict) else {}
            base = {"table": name, "model": entry["model"], "cohort": cohort,
                    "n": entry.get("n", known.get("n", "")), "events": entry.get("events", known.get("events", "")),
                    "count": entry.get("count", ""), "tied": entry.get("tied", ""),
                    "ci_method": entry.get("ci_method", default_method), "row": where}
            for statistic in STATISTICS:
                if statistic not in entry:
                    continue
                values = entry[statistic] if isinstance(entry[statistic], list) else [entry[statistic]]
                for text in values:
                    rows.append({**base, **_split_printed(str(text), statistic, f"{path}: {where}: {statistic}")})
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA_COLUMNS, "row"]).fillna("")
    return frame, str(document.get("paper", ""))


def _split_printed(text: str, statistic: str, where: str) -> dict:
    """``"0.839 (0.772 - 0.906)"`` -> value and CI; ``"0.426 vs validation"`` -> value, compare_to."""
    out = {"statistic": statistic, "value": text.strip(), "ci_low": "", "ci_high": "", "compare_to": "", "decimals": ""}
    if statistic == "p_value":
        match = _P_VS.match(text)
        if match:
            out["value"], out["compare_to"] = match.group(1).replace(" ", ""), match.group(2)
        return out
    match = _WITH_CI.match(text)
    if match:
        out["value"], out["ci_low"], out["ci_high"] = match.groups()
    elif "(" in text or "[" in text:
        raise InputError(f"{where}: {text!r} is not 'value (low - high)'; write the CI as e.g. 0.839 (0.772 - 0.906)")
    return out


def _validated(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame = frame.astype(str).apply(lambda c: c.str.strip())
    for row in frame.itertuples():
        where = f"{path}: {row.row}"
        if row.statistic not in STATISTICS:
            raise InputError(f"{where}: unknown statistic {row.statistic!r}; use one of {', '.join(STATISTICS)}")
        for column in ("value", "ci_low", "ci_high"):
            text = getattr(row, column)
            if text and not _parses(text):
                raise InputError(f"{where}: {column} {text!r} is not a number as printed (e.g. 0.630, <0.001, 58.2%)")
        if bool(row.ci_low) != bool(row.ci_high):
            raise InputError(f"{where}: give both ends of the CI (ci_low and ci_high) or neither")
        for column in ("n", "events", "count", "decimals"):
            text = getattr(row, column)
            if text and not re.fullmatch(r"\d+", text):
                raise InputError(f"{where}: {column} {text!r} must be a whole number")
        if row.tied and row.tied.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise InputError(f"{where}: tied {row.tied!r}: use true or false")
        if row.ci_method and row.ci_method.lower() not in CI_METHODS:
            raise InputError(f"{where}: ci_method {row.ci_method!r}: use one of {', '.join(CI_METHODS)}")
    return frame.reset_index(drop=True)


def _parses(text: str) -> bool:
    try:
        Printed.parse(text)
    except ValueError:
        return False
    return True


# -- checking ---------------------------------------------------------------------------------

#: statistics printed as proportions (0-1) that a paper may print as percentages ("88.5%")
_PROPORTION_LIKE = ("auc", *cs.PROPORTIONS)


def _printed(row, column: str = "value") -> Printed:
    """A cell as printed; a proportion printed as a percentage ("88.5%") on the 0-1 scale with
    its rounding (88.5% is 0.885 +- 0.0005)."""
    text, statistic = str(getattr(row, column)), row.statistic
    decimals = int(row.decimals) if column == "value" and row.decimals else None
    printed = Printed.parse(text, decimals=decimals)
    if statistic in _PROPORTION_LIKE and text.strip().endswith("%"):
        return Printed(printed.value / 100.0, printed.decimals + 2, printed.bound)
    return printed


def _int(text) -> int | None:
    return int(text) if str(text).strip() else None


def _record(check: cs.Check, row, reported: str, *, statistic: str | None = None) -> dict:
    """One audit row; ``row`` is a reported row (an ``itertuples`` tuple or a Series)."""
    fields = row._asdict() if hasattr(row, "_asdict") else dict(row)
    return {"check": check.check, "table": fields["table"], "model": fields["model"], "cohort": fields["cohort"],
            "statistic": statistic or fields["statistic"], "reported": reported, "expected": check.expected,
            "verdict": check.verdict, "reason": check.reason}


def _reported_text(row) -> str:
    text = row.value + (f" ({row.ci_low}-{row.ci_high})" if row.ci_low else "")
    return text + (f" vs {row.compare_to}" if row.compare_to else "")


def audit_reported(reported: pd.DataFrame) -> pd.DataFrame:
    """Every check the reported rows allow, one row each (:data:`AUDIT_COLUMNS`).

    Checks, per row or group of rows (the methods and their references are in
    :mod:`dlr.analysis.consistency`):

    - a P value or a proportion outside [0, 1];
    - an estimate outside its CI; a CI asymmetric where its method (``ci_method`` delong or
      wald; odds ratios on the log scale) makes it symmetric;
    - an AUC impossible for its events and non-events; its CI's width against DeLong's extremes;
    - sensitivity, specificity, accuracy, PPV and NPV of one model and cohort against every
      2 x 2 table with its n and events;
    - a P with ``compare_to`` another cohort (unpaired DeLong) or another model (paired DeLong,
      over every correlation), recomputed from the two AUCs and CIs; an odds ratio's Wald P;
    - a percentage against its count (or any count of n); a count above n;
    - the same quantity (model, cohort, statistic, comparison) printed with different values.
    """
    rows: list[dict] = []
    frame = reported.reset_index(drop=True)
    broken_ci: set = set()
    aucs: dict = {}
    for row in frame.itertuples():
        value = _printed(row)
        text = _reported_text(row)
        if row.statistic in ("p_value", *cs.PROPORTIONS, "auc") and not value.bound and not 0 <= value.value <= 1:
            rows.append(_record(cs.Check("value in [0, 1]", INCONSISTENT, "0-1",
                                         f"a {row.statistic.replace('_', ' ')} of {value} is impossible"), row, text))
            continue
        if row.ci_low:
            low, high = _printed(row, "ci_low"), _printed(row, "ci_high")
            within = cs.check_within_ci(value, low, high)
            rows.append(_record(within, row, text))
            if within.verdict == INCONSISTENT:
                broken_ci.add((row.model, row.cohort, row.statistic))
            else:
                method = (row.ci_method or "unknown").lower()
                if row.statistic == "odds_ratio" and method in ("wald", "unknown", "delong"):
                    rows.append(_record(cs.check_symmetric_ci(value, low, high, method="Wald", log=True), row, text))
                elif row.statistic == "auc" and method in ("delong", "wald"):
                    rows.append(_record(cs.check_symmetric_ci(value, low, high, method="DeLong"), row, text))
        if row.statistic == "auc":
            n, events = _int(row.n), _int(row.events)
            tied = row.tied.lower() in ("true", "yes", "1")
            if row.ci_low:
                aucs.setdefault((row.model, row.cohort), []).append(
                    AUCReport(value, _printed(row, "ci_low"), _printed(row, "ci_high"), n))
            if n is None or events is None:
                rows.append(_record(cs.Check("AUC possible for the counts", CANNOT_TELL, "",
                                             "n and events not reported for this cohort"), row, text))
            elif 0 < events < n:
                rows.append(_record(cs.check_auc_granularity(value, events, n - events), row, text))
                if row.ci_low and (row.model, row.cohort, "auc") not in broken_ci:
                    rows.append(_record(cs.check_auc_se(value, _printed(row, "ci_low"), _printed(row, "ci_high"),
                                                        events, n - events, tied=tied), row, text))
        elif row.statistic == "percent":
            n = _int(row.n)
            if n is None:
                rows.append(_record(cs.Check("percentage of a whole count", CANNOT_TELL, "", "no denominator n"), row, text))
            else:
                rows.append(_record(cs.check_percent(value, n, _int(row.count)), row, text))
        elif row.statistic == "count" and row.n and int(float(row.value)) > int(row.n):
            rows.append(_record(cs.Check("count within n", INCONSISTENT, f"<= {row.n}",
                                         f"a count of {row.value} exceeds n = {row.n}"), row, text))
    rows += _two_by_two(frame)
    rows += _p_values(frame, aucs, broken_ci)
    rows += _duplicates(frame)
    return pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))


def _two_by_two(frame: pd.DataFrame) -> list[dict]:
    out = []
    proportions = frame[frame["statistic"].isin(cs.PROPORTIONS)]
    for (table, model, cohort), group in proportions.groupby(["table", "model", "cohort"], sort=False):
        first = group.iloc[0]
        n, events = _int(first["n"]), _int(first["events"])
        printed = {r.statistic: _printed(r) for r in group.itertuples()}
        reported = {k: v for k, v in printed.items() if 0 <= v.value <= 1}
        if not reported:
            continue
        text = ", ".join(f"{k} {v}" for k, v in reported.items())
        if n is None or events is None:
            check = cs.Check("2 x 2 table behind the proportions", CANNOT_TELL, "", "n and events not reported")
        else:
            check = cs.check_two_by_two(n, events, reported)
        out.append(_record(check, first, text, statistic=", ".join(reported)))
    return out


def _p_values(frame: pd.DataFrame, aucs: dict, broken_ci: set) -> list[dict]:
    out = []
    cohorts, models = set(frame["cohort"]), set(frame["model"])
    for row in frame[frame["statistic"] == "p_value"].itertuples():
        p, text = _printed(row), _reported_text(row)
        if not row.compare_to:
            ors = frame[(frame["model"] == row.model) & (frame["cohort"] == row.cohort) & (frame["table"] == row.table)
                        & (frame["statistic"] == "odds_ratio") & (frame["ci_low"] != "")]
            if len(ors):
                o = ors.iloc[0]
                check = cs.check_odds_ratio_p(Printed.parse(o["value"]), Printed.parse(o["ci_low"]),
                                              Printed.parse(o["ci_high"]), p)
                out.append(_record(check, row, f"OR {o['value']} ({o['ci_low']}-{o['ci_high']}), P {row.value}"))
            elif not 0 <= p.value <= 1:
                out.append(_record(cs.Check("value in [0, 1]", INCONSISTENT, "0-1", f"a P value of {p} is impossible"),
                                   row, text))
            continue
        if row.compare_to in cohorts and (row.model, row.compare_to) in aucs:
            pair, paired = ((row.model, row.cohort), (row.model, row.compare_to)), False
        elif row.compare_to in models and (row.compare_to, row.cohort) in aucs:
            pair, paired = ((row.model, row.cohort), (row.compare_to, row.cohort)), True
        else:
            out.append(_record(cs.Check("P of a DeLong test", CANNOT_TELL, "",
                                        f"no AUC with a CI for {row.model} and {row.compare_to} in the same file"), row, text))
            continue
        if pair[0] == pair[1] or pair[0] not in aucs:
            out.append(_record(cs.Check("P of a DeLong test", CANNOT_TELL, "",
                                        f"no AUC with a CI for {row.model} in {row.cohort or 'this cohort'}"), row, text))
            continue
        broken = [f"{m} ({c})" for m, c in pair if (m, c, "auc") in broken_ci]
        if broken:
            out.append(_record(cs.Check("P of a DeLong test", CANNOT_TELL, "",
                                        f"the AUC's CI of {', '.join(broken)} is itself inconsistent"), row, text))
            continue
        a, b = aucs[pair[0]][0], aucs[pair[1]][0]
        check = cs.check_paired_p(p, a, b) if paired else cs.check_unpaired_p(p, a, b)
        out.append(_record(check, row, text))
    return out


def _duplicates(frame: pd.DataFrame) -> list[dict]:
    """The same quantity printed more than once: its values must agree within rounding.

    A P value is keyed by its comparison in either order (A vs B is B vs A).
    """
    out = []
    cohorts = set(frame["cohort"])
    keyed = frame.assign(key=[
        (r.model, tuple(sorted((r.cohort, r.compare_to)))) if r.statistic == "p_value" and r.compare_to in cohorts
        else (tuple(sorted((r.model, r.compare_to))), r.cohort) if r.statistic == "p_value" and r.compare_to
        else (r.model, r.cohort) for r in frame.itertuples()])
    for (key, statistic), group in keyed.groupby(["key", "statistic"], sort=False):
        if len(group) < 2 or (statistic == "p_value" and not group["compare_to"].any()):
            continue
        printed = [_printed(r) for r in group.itertuples()]
        places = [f"{t} ({v})" for t, v in zip(group["table"], group["value"])]
        low, high = max(p.low for p in printed), min(p.high for p in printed)
        row = group.iloc[0]
        record = {"check": "same quantity printed alike", "table": "; ".join(dict.fromkeys(group["table"])),
                  "model": row["model"], "cohort": row["cohort"], "statistic": statistic,
                  "reported": ", ".join(group["value"]), "expected": "one value"}
        what = f"{statistic.replace('_', ' ')} of {row['model']}" + (f" ({row['cohort']})" if row["cohort"] else "") + \
               (f" vs {row['compare_to']}" if row["compare_to"] else "")
        bounded = any(p.bound for p in printed)
        if bounded or low <= high:
            out.append({**record, "verdict": CONSISTENT, "reason": f"{what}: {', '.join(places)} agree"})
        else:
            out.append({**record, "verdict": INCONSISTENT,
                        "reason": f"{what} is printed {len(group)} times with different values: {', '.join(places)}"})
    return out


# -- the letter -------------------------------------------------------------------------------

def letter(audit: pd.DataFrame, *, source: str = "") -> str:
    """The inconsistencies as a Markdown note to the authors, each with its arithmetic."""
    bad = audit[audit["verdict"] == INCONSISTENT]
    counts = audit["verdict"].value_counts()
    lines = [f"# Reported statistics: {len(bad)} inconsistenc{'y' if len(bad) == 1 else 'ies'}", ""]
    if source:
        lines += [f"Source: {source}", ""]
    lines += [f"{len(audit)} checks: {counts.get(CONSISTENT, 0)} consistent, {counts.get(INCONSISTENT, 0)} inconsistent, "
              f"{counts.get(CANNOT_TELL, 0)} could not be decided from the printed numbers. Each check allows for "
              "the rounding of the printed digits; the methods are in `dlr.analysis.consistency`.", ""]
    if bad.empty:
        lines.append("No inconsistency was found.")
    for i, r in enumerate(bad.itertuples(), 1):
        where = ", ".join(x for x in (r.table, r.model, r.cohort) if x)
        lines += [f"{i}. **{where}: {r.check}.** Reported {r.reported}; expected {r.expected}. {_sentence(r.reason)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def summary_counts(audit: pd.DataFrame) -> dict:
    """verdict -> count, every verdict present."""
    counts = audit["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in (CONSISTENT, INCONSISTENT, CANNOT_TELL)}
