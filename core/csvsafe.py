"""CSV cells that a spreadsheet program would run as a formula, written harmless and read back as
they were (OWASP's rule against CSV injection).

A text cell (or column name) that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is written with a single quote before it (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``),
which spreadsheet programs show as text; numbers stay numbers (``-0.5``, ``+3``, ``-inf``). So
that reading gives back exactly what was written, a text that already begins with a quote
followed by one of those characters or by another quote gets one more quote. :func:`restored`
removes one leading quote from a cell that :func:`neutral` would have produced, and only from
such a cell; every reader of a file dlr wrote uses it (:func:`read_back`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: first characters that make a spreadsheet evaluate a cell
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED = TRIGGERS + ("'",)


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (``float``: ``-0.5``, ``1e3``, ``-inf``, ``nan``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutral(value):
    """``value`` as written to a CSV file: a quote before a text that a spreadsheet would evaluate."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in TRIGGERS and not is_number(value):
        return "'" + value
    if value[0] == "'" and len(value) > 1 and value[1] in _QUOTED:
        return "'" + value
    return value


def restored(value):
    """The inverse of :func:`neutral` on a cell read from a file dlr wrote."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in _QUOTED:
        return value[1:]
    return value


def _text_columns(frame: "pd.DataFrame") -> list:
    import pandas as pd

    return [c for c in frame.columns if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]


def _converted(frame: "pd.DataFrame", convert, first: tuple) -> "pd.DataFrame":
    columns = [c for c in _text_columns(frame)
               if frame[c].astype("string").str[:1].isin(first).any()]
    names = [convert(c) if isinstance(c, str) else c for c in frame.columns]
    if not columns and names == list(frame.columns):
        return frame
    out = frame.copy()
    for column in columns:
        out[column] = out[column].map(convert)
    out.columns = names
    return out


def neutral_frame(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``frame`` with :func:`neutral` applied to its text cells and column names (itself when
    nothing needs it)."""
    return _converted(frame, neutral, _QUOTED)


def read_back(frame: "pd.DataFrame") -> "pd.DataFrame":
    """A frame read from a CSV file dlr wrote, with :func:`restored` applied to its text cells
    and column names (itself when nothing needs it)."""
    return _converted(frame, restored, ("'",))


def write_csv(frame: "pd.DataFrame", path, **kwargs) -> None:
    """``frame`` to the CSV file ``path`` without its index, every formula-like text cell
    neutralised (``kwargs``: pandas' ``to_csv`` options such as ``float_format``)."""
    neutral_frame(frame).to_csv(path, index=False, **kwargs)
