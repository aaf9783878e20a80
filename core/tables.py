"""Clinical tables as the stages read them: a CSV named on the command line, and each column
parsed once (missing values, text or numbers, levels, outcome 0/1, cohorts), with errors that
name the column and the patients. Shared by Table 1 (`analysis/table1.py`), the logistic
tables that select the CR factors (`modeling/cr_factors.py`) and the CR model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlr.core.errors import InputError

ID_COLUMN = "patient_id"
#: the single scope of a table without a cohort column
ALL = "all"


#: separators recognised in a header that reads as one comma-separated column, as they are named
SEPARATORS = {";": "';' (semicolons)", "\t": "tabs", "|": "'|'"}


def foreign_separator(path) -> str | None:
    """The separator a CSV file seems to use instead of commas, or None.

    The file is taken to use another separator when its header line reads as a single
    comma-separated column (no comma outside quotes) that contains ``;``, a tab or ``|``
    (Excel in many European locales saves ``;``-separated "CSV"); the most frequent of them is
    returned. dlr never re-reads such a file with a guessed separator: the caller reports it.
    """
    import csv

    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            header = next((line for line in f if line.strip()), "")
    except OSError:
        return None
    fields = next(csv.reader([header.rstrip("\r\n")]), [])
    if len(fields) != 1:
        return None
    counts = {sep: fields[0].count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def separator_problem(separator: str) -> tuple[str, str]:
    """(what is wrong, the fix) for a file separated by ``separator`` (see :func:`foreign_separator`)."""
    return (f"the file seems to be separated by {SEPARATORS[separator]}, not commas (its header reads as one "
            "column); dlr reads comma-separated CSV",
            "re-export it as comma-separated CSV (e.g. 'CSV UTF-8 (Comma delimited)' in Excel, or sep=',' in "
            "pandas' to_csv)")


def read_table(path, *, what: str = "table") -> pd.DataFrame:
    """Read a CSV table given on the command line; InputError naming the file when it cannot be.

    A file separated by ``;``, tabs or ``|`` instead of commas is refused with one message
    saying so (:func:`foreign_separator`), rather than read as a single column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the path of the {what} CSV")
    separator = foreign_separator(path)
    if separator is not None:
        message, fix = separator_problem(separator)
        raise InputError(f"{path}: {message}. Fix: {fix}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; the {what} needs a header row and one row per patient") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    if frame.empty:
        raise InputError(f"{path}: the file has a header but no rows")
    return frame


def in_order(values: np.ndarray) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values.tolist()))


def missing_mask(series: pd.Series) -> np.ndarray:
    """True for NaN/None and for empty or blank strings."""
    s = pd.Series(series)
    miss = s.isna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype("string").str.strip().fillna("")
        miss = miss | (text == "").to_numpy()
    return np.asarray(miss, dtype=bool)


def patient_list(frame: pd.DataFrame, where: np.ndarray, limit: int = 5, *, id_column: str = ID_COLUMN) -> str:
    """The ids (``id_column``, else the row labels) of the first ``limit`` rows where ``where``."""
    ids = frame[id_column] if id_column in frame.columns else pd.Series(frame.index, index=frame.index)
    chosen = [str(v) for v in ids.to_numpy()[where][:limit]]
    more = int(where.sum()) - len(chosen)
    return ", ".join(chosen) + (f" and {more} more" if more > 0 else "")


def require_columns(frame: pd.DataFrame, names, role: str) -> None:
    for name in names:
        if name not in frame.columns:
            raise InputError(f"{role} column {name!r} is not in the table; columns are: "
                             f"{', '.join(map(str, frame.columns))}")


def outcome_values(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The outcome column as int 0/1; raises InputError naming patients with other values."""
    require_columns(frame, [outcome], "outcome")
    col = frame[outcome]
    miss = missing_mask(col)
    if miss.any():
        raise InputError(f"outcome column {outcome!r} is empty for patient(s) {patient_list(frame, miss)}; "
                         "fill in 0 or 1 or leave those patients out")
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy().astype(int)
    values = np.array(to_numbers(col), dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        shown = sorted({str(v) for v in col.to_numpy()[bad]})[:5]
        raise InputError(f"outcome column {outcome!r} must be 0 or 1; found {', '.join(map(repr, shown))} "
                         f"(patient(s) {patient_list(frame, bad)}); recode it as 0/1 (1 = event)")
    return values.astype(int)


def cohort_values(frame: pd.DataFrame, cohort: str | None) -> np.ndarray:
    if cohort is None:
        return np.full(len(frame), ALL, dtype=object)
    require_columns(frame, [cohort], "cohort")
    miss = missing_mask(frame[cohort])
    if miss.any():
        raise InputError(f"cohort column {cohort!r} is empty for patient(s) {patient_list(frame, miss)}; "
                         "name each patient's cohort")
    return frame[cohort].astype("string").str.strip().to_numpy(dtype=object)


def candidate_variables(frame: pd.DataFrame, variables, *, exclude) -> list[str]:
    if variables is None:
        return [c for c in frame.columns if c not in exclude and c != ID_COLUMN]
    variables = [variables] if isinstance(variables, str) else list(variables)
    require_columns(frame, variables, "variable")
    for v in variables:
        if v in exclude:
            raise InputError(f"column {v!r} is the outcome or cohort column and cannot also be a variable")
    if len(set(variables)) != len(variables):
        raise InputError(f"variables are listed more than once: {variables}")
    return variables


def to_numbers(series: pd.Series) -> pd.Series:
    """Numbers of a column, NaN where a value does not read as one (text is stripped first)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return pd.to_numeric(series, errors="coerce")
    return pd.to_numeric(series.astype("string").str.strip(), errors="coerce")


def is_text(series: pd.Series, miss: np.ndarray) -> bool:
    """A column holds text when some non-missing value does not read as a number."""
    s = series[~miss]
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if pd.api.types.is_numeric_dtype(s.dtype):
        return False
    return bool(to_numbers(s).isna().any())


def level_text(value) -> str:
    """A value as a level: stripped text, integral floats without ``.0`` (``1.0`` -> ``"1"``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def level_key(level: str):
    """Sort key of the default level order: levels that read as numbers by value, then text by code point."""
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)


@dataclass(frozen=True)
class ParsedColumn:
    """One variable parsed once: levels (categorical) or numbers (continuous).

    ``level_order`` is the order of a categorical variable's levels: Table 1 lists them in it
    and the logistic tables take the first of them present as the reference (see
    :func:`parse_column`).
    """

    name: str
    categorical: bool
    missing: np.ndarray
    levels: np.ndarray | None  # object array of str, "" where missing
    numbers: np.ndarray | None  # float array, NaN where missing
    level_order: tuple


def parse_column(frame: pd.DataFrame, name: str, forced_categorical: bool) -> ParsedColumn:
    """Parse one column as a categorical or a continuous variable.

    A column is categorical when it is a pandas ``Categorical``, when ``forced_categorical``,
    or when it holds text (:func:`is_text`). Its levels are the values as text
    (:func:`level_text`), ``""`` where missing.

    Level order (``ParsedColumn.level_order``):

    - declared: a pandas ``Categorical`` column's categories, in their order, including those
      no patient has (as R's ``factor(x, levels = ...)``). study.yaml's ``levels`` arrive this
      way (:func:`declare_levels`, called by ``StudyConfig.clinical_variables``).
    - otherwise the levels present, sorted: those that read as numbers by value (0/1 and other
      numeric codes: lowest first), then the others by Unicode code point. This is R's
      ``factor()`` of a numeric column and, for text, of R under ``LC_COLLATE=C`` (R's default
      collation follows the locale, e.g. ``a`` before ``B`` in en_US; ours never does); a
      column mixing numbers and text puts the numbers first, by value.
    """
    col = frame[name]
    miss = missing_mask(col)
    declared = isinstance(col.dtype, pd.CategoricalDtype)
    if declared or forced_categorical or is_text(col, miss):
        text = np.array(["" if m else level_text(v) for v, m in zip(col.to_numpy(), miss)], dtype=object)
        miss = miss | (text == "")
        if declared:
            order = tuple(lv for lv in dict.fromkeys(level_text(c) for c in col.dtype.categories) if lv != "")
        else:
            order = tuple(sorted(set(text[~miss]), key=level_key))
        return ParsedColumn(name, True, miss, text, None, order)
    numbers = np.array(to_numbers(col), dtype=float)  # a writable copy
    numbers[miss] = np.nan
    return ParsedColumn(name, False, miss, None, numbers, ())


def level_texts(series: pd.Series) -> np.ndarray:
    """Each value of ``series`` as a level (:func:`level_text`), ``""`` where missing (NaN, empty
    or blank), as an object array."""
    miss = missing_mask(series)
    return np.array(["" if m else level_text(v) for v, m in zip(series.to_numpy(), miss)], dtype=object)


def undeclared_levels(frame: pd.DataFrame, column: str, levels) -> dict[str, np.ndarray]:
    """Values of ``column`` that are not among ``levels``: value (as text) -> mask of its rows.

    Values and levels are compared as :func:`level_text` (stripped; ``1.0`` is ``"1"``);
    missing values (NaN, empty or blank) are never undeclared.
    """
    text = level_texts(frame[column])
    miss = text == ""
    allowed = {level_text(lv) for lv in levels}
    bad = ~miss & ~np.isin(text, list(allowed))
    return {value: bad & (text == value) for value in in_order(text[bad])}


def declare_levels(frame: pd.DataFrame, levels, *, id_column: str = ID_COLUMN, declared_in=None) -> pd.DataFrame:
    """Give columns their declared levels, in order, as pandas ``Categorical`` columns.

    Parameters
    ----------
    frame : DataFrame
    levels : mapping column -> sequence of levels
        The levels of each column in their order (the first is the logistic tables'
        reference, as in R's ``factor(x, levels = ...)``).
    id_column : str, keyword-only
        Column of patient ids, named by the error.
    declared_in : mapping column -> str, optional
        Where each column's levels are declared (e.g. ``study.yaml variables[3].levels``),
        named by the error.

    Returns
    -------
    DataFrame
        A copy with each of those columns a ``Categorical`` of the values as text
        (:func:`level_text`) with the declared categories; missing values (NaN, empty or blank
        text) are NaN. :func:`parse_column` reads the categories as the level order.

    Raises
    ------
    InputError
        A column that is not in ``frame``, or holds a value that is not one of its levels:
        the message names the column, every such value and its patients.
    """
    declared_in = declared_in or {}
    require_columns(frame, list(levels), "variable")
    out = frame.copy()
    for column, declared in levels.items():
        declared = list(dict.fromkeys(level_text(lv) for lv in declared))
        bad = undeclared_levels(out, column, declared)
        if bad:
            shown = "; ".join(f"{value!r} (patient(s) {patient_list(out, where, id_column=id_column)})"
                              for value, where in list(bad.items())[:5])
            more = f" and {len(bad) - 5} more value(s)" if len(bad) > 5 else ""
            source = declared_in.get(column, "its declared levels")
            raise InputError(f"column {column!r} holds value(s) that are not among its levels in {source} "
                             f"({', '.join(declared)}): {shown}{more}. Fix: correct those values, or add them to "
                             f"{source}")
        col = out[column]
        miss = missing_mask(col)
        text = [None if m else level_text(v) for v, m in zip(col.to_numpy(), miss)]
        out[column] = pd.Series(pd.Categorical(text, categories=declared), index=out.index)
    return out


def check_categorical(frame: pd.DataFrame, categorical) -> set:
    categorical = [categorical] if isinstance(categorical, str) else list(categorical)
    require_columns(frame, categorical, "categorical")
    return set(categorical)



def dichotomise(frame: pd.DataFrame, cut_points: dict) -> pd.DataFrame:
    """Replace raw continuous values by the paper's two levels at each cut point.

    Parameters
    ----------
    frame : DataFrame
    cut_points : mapping column -> cut point c
        Values > c become ``">c"``, values <= c ``"<=c"`` (c printed without a trailing .0, as
        the paper's ">400"); missing values stay missing.

    Returns
    -------
    DataFrame
        A copy with those columns replaced; raises InputError for a column that is absent or
        holds text.
    """
    out = frame.copy()
    for column, cut in cut_points.items():
        if column not in out.columns:
            raise InputError(f"cut point given for column {column!r}, which is not in the table")
        raw = out[column]
        values = pd.to_numeric(raw, errors="coerce")
        text = raw.notna() & values.isna() & (raw.astype(str).str.strip() != "")
        if text.any():
            first = raw[text].iloc[0]
            raise InputError(f"column {column!r} has a cut point but holds text ({first!r}); give raw numbers")
        label = f"{cut:g}"
        out[column] = pd.Series(np.where(values > cut, f">{label}", f"<={label}"), index=out.index).where(
            values.notna())
    return out
