"""Reading and validating a predictions file (contract section 4) and, optionally, its
out-of-fold development predictions (section 4.1).

Validation happens once, here, at the boundary: every later function may assume labels are
0/1, scores finite, each patient in one cohort with one outcome, one row per patient and model;
and that every out-of-fold row is a development patient of the predictions file, with its
outcome, scored by one of its models, once per model; and, with survival columns (contract 5.1,
:func:`attach_survival`), that each patient has one time >= 0 and one event 0/1 on every row.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlr.core.csvsafe import read_back
from dlr.core.errors import InputError
from dlr.core.run_folder import OOF_SUFFIX
from dlr.core.tables import foreign_separator, separator_problem

REQUIRED = ("patient_id", "cohort", "model", "y_true", "y_score")
#: rows of decision_curve.csv that are strategies, not models
RESERVED_MODELS = ("treat_all", "treat_none")
#: the cohort label of the out-of-fold development rows: ``OOF_LABEL.format(dev_cohort)``
OOF_LABEL = "{}" + OOF_SUFFIX
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
        Models whose scores all lie in [0, 1] (calibration and decision curves apply); with
        out-of-fold predictions, their scores too.
    source : str
        Where the table came from, for messages.
    oof : DataFrame or None
        Validated out-of-fold development predictions (contract 4.1): ``patient_id``, ``model``,
        ``y_true`` (int), ``y_score`` (float), one row per patient per model, every patient a
        development patient of ``frame`` with the same outcome, every model one of ``models``;
        ``cohort`` holds the development cohort's name. None without them.
    oof_source : str or None
        Where the out-of-fold table came from.
    time, event : str or None
        The columns of the time to recurrence or censoring (float, >= 0) and of the event (int,
        1 = recurrence, 0 = censored), validated by :func:`attach_survival`; None without them.
    """

    frame: pd.DataFrame
    models: tuple
    cohorts: tuple
    dev_cohort: str
    probability_models: frozenset = field(default_factory=frozenset)
    source: str = "predictions"
    oof: pd.DataFrame | None = None
    oof_source: str | None = None
    time: str | None = None
    event: str | None = None

    def attributes(self) -> list[str]:
        """Columns beyond the required ones: patient-level attributes usable as strata."""
        return [c for c in self.frame.columns if c not in REQUIRED]

    @property
    def oof_cohort(self) -> str | None:
        """The cohort label of the out-of-fold rows of the results (None without them)."""
        return None if self.oof is None else OOF_LABEL.format(self.dev_cohort)

    @property
    def oof_models(self) -> tuple:
        """Models with out-of-fold predictions, in the order of ``models``."""
        if self.oof is None:
            return ()
        present = set(self.oof["model"])
        return tuple(m for m in self.models if m in present)


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


def _read_csv(path, what: str = "a predictions CSV (contract section 4)") -> tuple[pd.DataFrame, str]:
    """(text frame, source) of a predictions-shaped CSV; a missing, empty or unreadable file is a
    PredictionsError naming it."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise PredictionsError(f"{source}: no such file; give the path of {what}")
    separator = foreign_separator(path)
    if separator is not None:  # read with commas it would be one column, and every check would echo its header
        message, fix = separator_problem(separator)
        raise PredictionsError(f"{source}: {message}. Fix: {fix}")
    try:
        frame = read_back(pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True))
    except pd.errors.EmptyDataError:
        raise PredictionsError(f"{source}: the file is empty; it needs a header row with the columns "
                               f"{', '.join(REQUIRED)} and one row per patient per model") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{source}: not a readable CSV file ({exc})") from None
    return frame, source


def read_predictions(path, *, dev_cohort: str = "training", strata=(), reference: str | None = None,
                     oof=None, time: str | None = None, event: str | None = None) -> Predictions:
    """Read a predictions CSV and validate it (see :func:`validate_predictions`).

    ``oof``: optional path of its out-of-fold development predictions (contract 4.1, e.g.
    ``RUN/predictions_oof.csv``), validated against it by :func:`attach_oof`. ``time`` and
    ``event``: its columns of time to recurrence and event (contract 5.1), validated by
    :func:`attach_survival`.
    """
    frame, source = _read_csv(path)
    predictions = validate_predictions(frame, dev_cohort=dev_cohort, strata=strata, reference=reference,
                                       source=source)
    if time is not None or event is not None:
        predictions = attach_survival(predictions, time=time, event=event)
    return predictions if oof is None else attach_oof(predictions, oof)


def _typed_rows(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The row-level checks shared by predictions and out-of-fold files: the required columns, at
    least one row, no empty id, cohort or model, finite scores, 0/1 labels, one row per
    (patient, model). Returns the frame stripped and typed."""
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

    score = _numbers(frame["y_score"].astype(str).str.strip())
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
    return frame


def validate_predictions(frame: pd.DataFrame, *, dev_cohort: str = "training", strata=(),
                         reference: str | None = None, source: str = "predictions", oof=None,
                         oof_source: str | None = None) -> Predictions:
    """Check a predictions table against the contract and return it typed.

    ``oof`` (a table, or the path of a CSV) adds its out-of-fold development predictions,
    checked by :func:`attach_oof`.

    Raises
    ------
    PredictionsError
        Naming the file, line, patient, model and column of every problem found in the first
        failing check: missing columns, no rows, empty ids, non-numeric or non-finite scores,
        labels other than 0/1, duplicate (patient, model) rows, a patient in two cohorts or with
        two outcomes, a stratifier differing between a patient's rows, an unknown development
        cohort, stratifier or reference model.
    """
    frame = _typed_rows(frame, source)

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
    predictions = Predictions(frame.reset_index(drop=True), tuple(models), tuple(cohorts), dev_cohort,
                              _probability_models(frame), source)
    return predictions if oof is None else attach_oof(predictions, oof, source=oof_source)


def _probability_models(*frames) -> frozenset:
    """Models whose scores, in every frame given, all lie in [0, 1]."""
    scores = pd.concat([f[["model", "y_score"]] for f in frames], ignore_index=True).groupby("model")["y_score"]
    return frozenset(m for m, lo, hi in zip(scores.min().index, scores.min(), scores.max())
                     if lo >= 0.0 and hi <= 1.0)


def _patients_listed(frame: pd.DataFrame, rows) -> str:
    """'patient P (line L, model M)' or 'patient P (lines L1, L2, models M1, M2)' for the rows of one patient."""
    def shown(items):
        return ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")

    lines = [str(i + 2) for i in rows]
    models = [repr(m) for m in dict.fromkeys(frame["model"].iloc[rows])]
    return (f"patient {frame['patient_id'].iloc[rows[0]]!r} (line{'s' if len(lines) > 1 else ''} {shown(lines)}, "
            f"model{'s' if len(models) > 1 else ''} {shown(models)})")


def attach_oof(predictions: Predictions, oof, *, source: str | None = None) -> Predictions:
    """``predictions`` with its out-of-fold development predictions (contract 4.1), validated.

    Parameters
    ----------
    predictions : Predictions
        The validated predictions file.
    oof : DataFrame or path
        The out-of-fold table, in the columns of a predictions file (other columns are ignored:
        patient attributes come from the predictions file).
    source : str, optional
        Its name in messages (default: the path, or "out-of-fold predictions").

    Raises
    ------
    PredictionsError
        First the row-level problems of a predictions file (missing columns, no rows, empty
        ids, scores that are not finite numbers, labels other than 0/1, a patient twice for one
        model), naming line, patient and model; then, in one message, every disagreement with
        the predictions file, each named once: a ``cohort`` other than the development cohort
        (per value), a patient absent from the predictions file or not in its development
        cohort, a patient whose ``y_true`` differs from the predictions file's, a model that is
        not one of its models.
    """
    if isinstance(oof, pd.DataFrame):
        frame, source = oof, source or "out-of-fold predictions"
    else:
        frame, read_source = _read_csv(oof, "an out-of-fold predictions CSV (contract section 4.1)")
        source = source or read_source
    frame = _typed_rows(frame, source)
    dev = predictions.dev_cohort
    label = OOF_LABEL.format(dev)
    if label in predictions.cohorts:
        raise PredictionsError(f"{predictions.source}: cohort {label!r} is the name the out-of-fold rows of "
                               f"{source} take in the results; rename that cohort")
    patients = predictions.frame.drop_duplicates("patient_id").set_index("patient_id")
    problems = []
    wrong = frame["cohort"] != dev
    for value, rows in frame[wrong].groupby("cohort", sort=False).indices.items():
        positions = np.flatnonzero(wrong.to_numpy())[rows]
        ids = list(dict.fromkeys(frame["patient_id"].iloc[positions]))
        shown = ", ".join(map(repr, ids[:5])) + (", ..." if len(ids) > 5 else "")
        problems.append(f"column cohort = {value!r} on {positions.size} row(s) (patient(s) {shown}, first at line "
                        f"{positions[0] + 2}): every row must name the development cohort {dev!r}")
    cohort_of = frame["patient_id"].map(patients["cohort"])
    absent = cohort_of.isna().to_numpy()
    elsewhere = ~absent & (cohort_of != dev).to_numpy()
    other_label = ~absent & (frame["y_true"].to_numpy() != frame["patient_id"].map(patients["y_true"]).to_numpy())
    offenders = np.flatnonzero(absent | elsewhere | other_label)
    if offenders.size:
        rows_of = frame.groupby("patient_id", sort=False).indices
        for patient in dict.fromkeys(frame["patient_id"].iloc[offenders]):
            rows = rows_of[patient]
            where = _patients_listed(frame, rows)
            if absent[rows[0]]:
                problems.append(f"{where}: not in {predictions.source}")
                continue
            found = []  # one line per patient
            if elsewhere[rows[0]]:
                found.append(f"in cohort {cohort_of.iloc[rows[0]]!r} of {predictions.source}, not the development "
                             f"cohort {dev!r} (out-of-fold predictions are of development patients only)")
            if other_label[rows].any():
                labels = sorted(set(frame["y_true"].iloc[rows].tolist()))
                found.append(f"column y_true = {', '.join(map(str, labels))} here, "
                             f"{int(patients.at[patient, 'y_true'])} in {predictions.source}")
            problems.append(f"{where}: {'; '.join(found)}")
    known = set(predictions.models)
    for model, rows in frame.groupby("model", sort=False).indices.items():
        if model not in known:
            problems.append(f"model {model!r} ({rows.size} row(s), first at line {rows[0] + 2}): not a model of "
                            f"{predictions.source} (its models: {', '.join(map(repr, predictions.models))})")
    if problems:
        _fail(source, f"does not match the predictions file {predictions.source}", problems,
              "an out-of-fold file holds, for models of the predictions file, its development patients only, "
              "with their outcomes (contract section 4.1)")
    oof_frame = frame[list(REQUIRED)].reset_index(drop=True)
    return dataclasses.replace(predictions, oof=oof_frame, oof_source=source,
                               probability_models=_probability_models(predictions.frame, oof_frame))


def attach_survival(predictions: Predictions, *, time: str | None, event: str | None) -> Predictions:
    """``predictions`` with its time-to-recurrence and event columns (contract 5.1) validated and typed.

    Parameters
    ----------
    predictions : Predictions
        The validated predictions file.
    time, event : str
        Patient attribute columns (``--time``, ``--event``): time to recurrence or censoring (any
        unit, >= 0) and the event (1 = recurrence, 0 = censored). Both or neither.

    Raises
    ------
    PredictionsError
        ``--time`` without ``--event`` or the reverse, the same column for both, a column that is
        missing (or one of the required columns); then, in one message, every patient with a
        missing, non-numeric, infinite or negative time, an event other than 0/1, or a time or
        event that differs between the patient's rows, each patient named once per column with
        the lines and models of its rows.
    """
    source = predictions.source
    if time is None and event is None:
        return predictions
    if time is None or event is None:
        given, lacking = ("--time", "--event") if event is None else ("--event", "--time")
        raise PredictionsError(f"{source}: {given} was given without {lacking}; the survival analysis needs both, "
                               f"e.g. --time rfs_months --event recurrence")
    if time == event:
        raise PredictionsError(f"{source}: --time and --event name the same column {time!r}; give the time to "
                               f"recurrence and the event (1 = recurrence, 0 = censored) as two columns")
    frame = predictions.frame.copy()
    usable = [c for c in frame.columns if c not in REQUIRED]
    for option, col in (("--time", time), ("--event", event)):
        if col in REQUIRED or col not in frame.columns:
            raise PredictionsError(f"{source}: column {col!r} ({option}) is not a patient attribute column; "
                                   f"available: {', '.join(map(repr, usable)) or 'none'}")
    text = {col: frame[col].astype(str).str.strip() for col in (time, event)}
    t = _numbers(text[time]).to_numpy(dtype=float)
    e = pd.to_numeric(text[event], errors="coerce").to_numpy(dtype=float)
    bad = {time: ~np.isfinite(t) | (t < 0), event: ~np.isin(e, (0.0, 1.0))}
    why = {time: lambda v: "missing" if v == "" else ("negative" if _number(v) < 0 else "not a finite number"),
           event: lambda v: "missing" if v == "" else "not 0 or 1"}
    problems = []
    varies = {col: frame.assign(_v=values).groupby("patient_id", sort=False)["_v"].nunique() > 1
              for col, values in ((time, t), (event, e))}
    offenders = set(frame.loc[bad[time] | bad[event], "patient_id"])
    offenders.update(*(v.index[v.to_numpy()] for v in varies.values()))
    rows_of = frame.groupby("patient_id", sort=False).indices if offenders else {}
    for patient, rows in rows_of.items():
        if patient not in offenders:
            continue
        for col, values in ((time, t), (event, e)):
            wrong = rows[bad[col][rows]]
            if wrong.size:
                shown = sorted(set(text[col].iloc[wrong]))
                problems.append(f"{_patients_listed(frame, wrong)}: column {col!r} = "
                                + ", ".join(f"{v!r} ({why[col](v)})" for v in shown))
            elif np.unique(values[rows]).size > 1:
                problems.append(f"{_patients_listed(frame, rows)}: column {col!r} differs between the patient's "
                                f"rows: {', '.join(map(repr, dict.fromkeys(text[col].iloc[rows])))}")
    if problems:
        _fail(source, f"invalid survival columns (--time {time!r}, --event {event!r})", problems,
              f"give each patient, on every row, one time to recurrence or censoring >= 0 in {time!r} and one "
              f"event in {event!r} (1 = recurrence, 0 = censored)")
    frame[time] = t
    frame[event] = e.astype(int)
    return dataclasses.replace(predictions, frame=frame, time=time, event=event)


def _numbers(text: pd.Series) -> pd.Series:
    """The numbers of a column of text, NaN where a cell is not a number. Parsed exactly (Python's
    float, as R's read.csv): ``pd.to_numeric`` may miss the nearest double by an ulp on 17-digit
    text, which would move thresholds and break R's equality of ties."""
    coerced = pd.to_numeric(text, errors="coerce")
    ok = coerced.notna().to_numpy()
    exact = coerced.astype(float)
    try:
        exact[ok] = text[ok].astype(float)
    except ValueError:  # text pandas reads as a number and Python does not: keep pandas' reading
        pass
    return exact


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
