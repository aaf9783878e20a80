"""Reading and validating a predictions file (contract section 4).

Validation happens once, here, at the boundary: every later function may assume labels are
0/1, scores finite, each patient in one cohort with one outcome, one row per patient and model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError

REQUIRED = ("patient_id", "cohort", "model", "y_true", "y_score")
#: rows of decision_curve.csv that are strategies, not models
RESERVED_MODELS = ("treat_all", "treat_none")
#: at most this many problems are listed in one error message
MAX_LISTED = 12


class PredictionsError(InputError):
    """The predictions file (or an option referring to it) is invalid; the message says where."""


@dataclass(frozen=True)
class Predictions:
    """A validated predictions table.

    Attributes
    ----------
    frame : DataFrame
        The rows, with ``y_true`` as int and ``y_score`` as float; other columns as text.
    models, cohorts : tuple of str
        In order of first appearance, except that ``dev_cohort`` comes first.
    dev_cohort : str
    probability_models : frozenset of str
        Models whose scores all lie in [0, 1] (calibration and decision curves apply).
    source : str
        Where the table came from, for messages.
    """

    frame: pd.DataFrame
    models: tuple
    cohorts: tuple
    dev_cohort: str
    probability_models: frozenset = field(default_factory=frozenset)
    source: str = "predictions"

    def attributes(self) -> list[str]:
        """Columns beyond the required ones: patient-level attributes usable as strata."""
        return [c for c in self.frame.columns if c not in REQUIRED]


def _where(source: str, frame: pd.DataFrame, rows) -> list[str]:
    """'line L (patient P, model M)' for each row position, file lines counted from 1."""
    out = []
    for i in rows:
        r = frame.iloc[i]
        out.append(f"line {i + 2} (patient {r['patient_id']!r}, model {r['model']!r})")
    return out


def _fail(source: str, what: str, items: list[str], fix: str) -> None:
    shown = items[:MAX_LISTED]
    more = f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    raise PredictionsError(f"{source}: {what}:\n  " + "\n  ".join(shown) + more + f"\n{fix}")


def read_predictions(path, *, dev_cohort: str = "training", strata=(), reference: str | None = None
                     ) -> Predictions:
    """Read a predictions CSV and validate it (see :func:`validate_predictions`)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise PredictionsError(f"{source}: no such file; give the path of a predictions CSV (contract section 4)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise PredictionsError(f"{source}: the file is empty; it needs a header row with the columns "
                               f"{', '.join(REQUIRED)} and one row per patient per model") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{source}: not a readable CSV file ({exc})") from None
    return validate_predictions(frame, dev_cohort=dev_cohort, strata=strata, reference=reference, source=source)


def validate_predictions(frame: pd.DataFrame, *, dev_cohort: str = "training", strata=(),
                         reference: str | None = None, source: str = "predictions") -> Predictions:
    """Check a predictions table against the contract and return it typed.

    Raises
    ------
    PredictionsError
        Naming the file, line, patient, model and column of every problem found in the first
        failing check: missing columns, no rows, empty ids, non-numeric or non-finite scores,
        labels other than 0/1, duplicate (patient, model) rows, a patient in two cohorts or with
        two outcomes, a stratifier differing between a patient's rows, an unknown development
        cohort, stratifier or reference model.
    """
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise PredictionsError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(frame.columns) or 'none'}. "
            f"A predictions file needs {', '.join(REQUIRED)} (contract section 4)")
    if frame.empty:
        raise PredictionsError(f"{source}: the file has a header but no rows")
    for col in ("patient_id", "cohort", "model"):
        frame[col] = frame[col].astype(str).str.strip()
        empty = np.flatnonzero(frame[col].to_numpy() == "")
        if empty.size:
            _fail(source, f"empty {col}", _where(source, frame, empty), f"fill in column {col!r} on every row")

    score = pd.to_numeric(frame["y_score"].astype(str).str.strip(), errors="coerce")
    bad = np.flatnonzero(~np.isfinite(score.to_numpy(dtype=float)))
    if bad.size:
        items = [f"{w}: y_score = {frame['y_score'].iloc[i]!r}" for w, i in zip(_where(source, frame, bad), bad)]
        _fail(source, "column y_score must hold finite numbers", items,
              "remove these rows or give each a numeric score (NaN, text and infinity are not scores)")
    label = pd.to_numeric(frame["y_true"].astype(str).str.strip(), errors="coerce")
    bad = np.flatnonzero(~label.isin([0, 1]).to_numpy())
    if bad.size:
        items = [f"{w}: y_true = {frame['y_true'].iloc[i]!r}" for w, i in zip(_where(source, frame, bad), bad)]
        _fail(source, "column y_true must be 0 or 1", items, "code the outcome as 1 = event, 0 = no event")
    frame["y_score"] = score.astype(float)
    frame["y_true"] = label.astype(int)

    dup = frame.duplicated(["patient_id", "model"], keep=False).to_numpy()
    if dup.any():
        _fail(source, "duplicate rows for the same patient and model (one row per patient per model)",
              _where(source, frame, np.flatnonzero(dup)), "keep one row for each (patient_id, model)")

    per_patient = frame.groupby("patient_id", sort=True)
    for col, what in (("cohort", "is in more than one cohort"), ("y_true", "has different outcomes (y_true)")):
        n_distinct = per_patient[col].nunique()
        offenders = n_distinct.index[n_distinct > 1]
        if len(offenders):
            items = [f"patient {p!r}: {col} = {sorted(map(str, frame.loc[frame['patient_id'] == p, col].unique()))}"
                     for p in offenders]
            _fail(source, f"a patient {what} across rows", items,
                  f"each patient must have one {col} in every row")

    cohorts = list(dict.fromkeys(frame["cohort"]))
    if dev_cohort not in cohorts:
        raise PredictionsError(f"{source}: development cohort {dev_cohort!r} (--dev-cohort) not found in column "
                               f"'cohort'; the cohorts are {', '.join(map(repr, cohorts))}")
    cohorts.remove(dev_cohort)
    cohorts.insert(0, dev_cohort)

    for col in strata:
        if col in REQUIRED or col not in frame.columns:
            usable = [c for c in frame.columns if c not in REQUIRED]
            raise PredictionsError(f"{source}: stratifier {col!r} (--strata) is not a patient attribute column; "
                                   f"available: {', '.join(usable) or 'none'}")
        frame[col] = frame[col].astype(str).str.strip()
        n_distinct = frame.groupby("patient_id")[col].nunique()
        offenders = list(n_distinct.index[n_distinct > 1])
        if offenders:
            _fail(source, f"stratifier {col!r} differs between a patient's rows",
                  [f"patient {p!r}" for p in offenders], f"give each patient one value of {col!r}")

    models = list(dict.fromkeys(frame["model"]))
    reserved = sorted(set(models) & set(RESERVED_MODELS))
    if reserved:
        raise PredictionsError(f"{source}: model name(s) {', '.join(map(repr, reserved))} in column 'model' are "
                               f"reserved for the decision-curve strategies; rename the model")
    if reference is not None and reference not in models:
        raise PredictionsError(f"{source}: reference model {reference!r} (--reference) not found; the models are "
                               f"{', '.join(map(repr, models))}")
    scores = frame.groupby("model")["y_score"]
    probability = frozenset(m for m, lo, hi in zip(scores.min().index, scores.min(), scores.max())
                            if lo >= 0.0 and hi <= 1.0)
    return Predictions(frame.reset_index(drop=True), tuple(models), tuple(cohorts), dev_cohort, probability, source)
