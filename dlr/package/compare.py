"""Comparing a package's results with the recomputed ones: two CSVs cell by cell (numbers
exactly, NaN equal to NaN; text equal) and the numeric leaves of two JSON documents, each
difference named by file, row and column."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

DIFFERENCE_COLUMNS = ["file", "row", "column", "packaged", "recomputed", "key"]


def _difference(file, row, column, packaged, recomputed, key="") -> dict:
    return {"file": file, "row": row, "column": column, "packaged": packaged, "recomputed": recomputed, "key": key}


def _as_number(text: str):
    """A cell's number (empty and 'nan' as NaN), or None for text."""
    t = text.strip()
    if t == "" or t.lower() in ("nan", "na", "null"):
        return math.nan
    try:
        return float(t)
    except ValueError:
        return None


def _same(a: str, b: str) -> tuple[bool, bool]:
    """(equal, numeric): numbers exactly equal as written (NaN equal to NaN), text equal."""
    if a == b:
        return True, _as_number(a) is not None and a.strip() != ""
    x, y = _as_number(a), _as_number(b)
    if x is None or y is None:
        return False, False
    return (x == y) or (math.isnan(x) and math.isnan(y)), True


def _shown(text: str) -> str:
    return text if text != "" else "(empty)"


def _read_rows(path: Path) -> list:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.reader(handle))


def compare_csv(packaged: Path, recomputed: Path, name: str) -> tuple[list, int]:
    """Differences between two CSVs, cell by cell, and the number of numeric cells compared.

    Rows are matched by position (the analysis writes them in a fixed order), columns by name;
    ``row`` is the line of the file (the header is line 1).
    """
    a, b = _read_rows(packaged), _read_rows(recomputed)
    header_a, header_b = (a[0] if a else []), (b[0] if b else [])
    out, count = [], 0
    for column in header_a:
        if column not in header_b:
            out.append(_difference(name, "-", column, "(column present)", "(column absent)"))
    for column in header_b:
        if column not in header_a:
            out.append(_difference(name, "-", column, "(column absent)", "(column present)"))
    common = [(header_a.index(c), header_b.index(c), c) for c in header_a if c in header_b]
    rows_a, rows_b = a[1:], b[1:]
    for k in range(max(len(rows_a), len(rows_b))):
        line = k + 2
        if k >= len(rows_b):
            out.append(_difference(name, line, "<row>", ",".join(rows_a[k]), "(absent)", _key(header_a, rows_a[k])))
            continue
        if k >= len(rows_a):
            out.append(_difference(name, line, "<row>", "(absent)", ",".join(rows_b[k]), _key(header_b, rows_b[k])))
            continue
        ra, rb = rows_a[k], rows_b[k]
        for i, j, column in common:
            va = ra[i] if i < len(ra) else ""
            vb = rb[j] if j < len(rb) else ""
            equal, numeric = _same(va, vb)
            count += numeric
            if not equal:
                out.append(_difference(name, line, column, _shown(va), _shown(vb), _key(header_a, ra)))
    return out, count


def _key(header, row, limit: int = 4) -> str:
    """The row's leading text cells (``model=CR, cohort=validation``), to name it."""
    parts = []
    for column, value in zip(header, row):
        if value.strip() and _as_number(value) is None:
            parts.append(f"{column}={value}")
            if len(parts) == limit:
                break
    return ", ".join(parts)


def _is_numeric_leaf(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_json(packaged, recomputed, name: str, *, skip=("provenance", "warnings")) -> tuple[list, int]:
    """Differences between the numeric leaves of two JSON documents (strings are not compared,
    nor the top-level keys in ``skip``), and the number of numeric leaves compared.

    ``row`` is the path of the value's parent (``performance[3]``, ``settings.thresholds``),
    ``column`` its key (or ``[i]`` in a list of numbers).
    """
    out: list = []
    count = 0

    def where(tokens) -> tuple[str, str]:
        text = ""
        for t in tokens[:-1]:
            text += f"[{t}]" if isinstance(t, int) else (f".{t}" if text else str(t))
        last = tokens[-1] if tokens else ""
        return text or "-", f"[{last}]" if isinstance(last, int) else str(last)

    def show(value) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def one_side(value, tokens, present_in_packaged: bool):
        if _has_number(value):
            row, column = where(tokens)
            out.append(_difference(name, row, column, "(present)" if present_in_packaged else "(absent)",
                                   "(absent)" if present_in_packaged else "(present)"))

    def walk(a, b, tokens):
        nonlocal count
        if isinstance(a, dict) and isinstance(b, dict):
            for k in [*a, *(k for k in b if k not in a)]:
                if not tokens and k in skip:
                    continue
                if k not in b or k not in a:
                    one_side(a[k] if k in a else b[k], [*tokens, k], k in a)
                else:
                    walk(a[k], b[k], [*tokens, k])
            return
        if isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                if i >= len(a) or i >= len(b):
                    one_side(a[i] if i < len(a) else b[i], [*tokens, i], i < len(a))
                else:
                    walk(a[i], b[i], [*tokens, i])
            return
        numeric_a, numeric_b = _is_numeric_leaf(a), _is_numeric_leaf(b)
        if numeric_a or numeric_b or _has_number(a) or _has_number(b):
            if numeric_a or numeric_b:
                count += 1
            equal = numeric_a and numeric_b and (a == b or (math.isnan(a) and math.isnan(b)))
            if not equal:
                row, column = where(tokens)
                out.append(_difference(name, row, column, show(a), show(b)))

    walk(packaged, recomputed, [])
    return out, count


def _has_number(value) -> bool:
    if _is_numeric_leaf(value):
        return True
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_number(v) for v in value)
    return False
