"""Categorical levels across cohorts: study.yaml's recodes, and levels the development cohort never saw.

Contract section 2.1. A variable's ``recode`` (:class:`dlr.modeling.config.Variable`) maps raw
values of clinical.csv to its declared levels before any check, table or model:
:func:`recode_clinical` applies it wherever clinical.csv is read with its study.yaml (the study
loader :func:`dlr.modeling.study.load_study`, so validation, the split and every model, and the
clinical verbs `dlr table1`, `dlr logistic` and `dlr staging` with ``--study``), and
:func:`recode_log` records what it did, per variable, raw value, new level and cohort, with
the patients (`RUN/clinical/recodes.csv`, which the report's methods state).

A level that patients of another cohort have but no development patient has cannot be scored:
a model fitted on the development cohort has no coefficient for it (R's ``predict()`` stops
with "factor x has new levels"; dlr's CR model would score those patients as the reference
level). :func:`development_levels` lists the levels the development cohort has and
:func:`unseen_levels` finds, for each cohort checked, the levels it has beyond them, each an
:class:`UnseenLevel` naming the variable, the level, the cohort, the patients and the fix.
`dlr validate` reports them (check ``unseen-level``) and `dlr run` refuses the study; `dlr
predict` will check a new study against the development levels its bundle carries.

Levels are compared as text (:func:`dlr.core.tables.level_text`: stripped; ``1.0`` is ``"1"``),
as study.yaml's ``levels`` and ``recode`` are read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from dlr.core.tables import level_key, level_texts

#: the columns of recodes.csv, one row per variable, raw value, new level and cohort
RECODE_COLUMNS = ("variable", "from", "to", "cohort", "n_patients", "patient_ids")
#: patients an UnseenLevel names in its message (the rest are counted)
SHOWN_PATIENTS = 10


def _recoded_variables(frame: pd.DataFrame, config) -> list:
    """The variables of ``config`` with a ``recode`` whose column ``frame`` has."""
    return [v for v in config.variables if v.recode and v.name in frame.columns]


def recode_clinical(frame: pd.DataFrame, config) -> pd.DataFrame:
    """clinical.csv with study.yaml's recodes applied.

    Parameters
    ----------
    frame : DataFrame
        clinical.csv as read.
    config : StudyConfig
        Its study.yaml; each variable's ``recode`` maps raw values (as text) to levels.

    Returns
    -------
    DataFrame
        A copy in which each recoded variable's column holds its values as text
        (:func:`dlr.core.tables.level_text`), each raw value of ``recode`` replaced by its level,
        and NaN where the value is missing. Other columns, and variables without a recode, are
        unchanged. Applying it twice changes nothing (no recode key is a level).
    """
    out = frame.copy()
    for variable in _recoded_variables(frame, config):
        text = level_texts(out[variable.name])
        new = [np.nan if value == "" else variable.recode.get(value, value) for value in text]
        out[variable.name] = pd.Series(new, index=out.index, dtype=object)
    return out


def _ids(frame: pd.DataFrame, config) -> np.ndarray:
    """Each row's patient id as text (stripped), or its line of clinical.csv without an id column."""
    if config.id_column in frame.columns:
        return frame[config.id_column].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    return np.array([f"line {i + 2}" for i in range(len(frame))], dtype=object)


def _cohorts(frame: pd.DataFrame, config) -> np.ndarray:
    """Each row's cohort as text (stripped; ``""`` where missing or without a cohort column)."""
    if config.cohort_column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[config.cohort_column].astype("string").str.strip().fillna("").to_numpy(dtype=object)


def _cohort_order(config, cohorts: np.ndarray) -> list[str]:
    """study.yaml's cohorts, then any other cohort value of ``cohorts`` in order of appearance."""
    return list(dict.fromkeys([*config.cohorts, *cohorts.tolist()]))


def recode_log(frame: pd.DataFrame, config) -> pd.DataFrame:
    """What :func:`recode_clinical` does to ``frame``: the rows of ``recodes.csv``.

    Parameters
    ----------
    frame : DataFrame
        clinical.csv as read (before recoding).
    config : StudyConfig

    Returns
    -------
    DataFrame
        Columns :data:`RECODE_COLUMNS`: ``variable``, ``from`` (the raw value), ``to`` (its
        level), ``cohort``, ``n_patients`` and ``patient_ids`` (``"; "``-separated, in file
        order); one row per recode and cohort with patients, in study.yaml's order of variables,
        recodes and cohorts. A recode no patient has gets one row with an empty ``cohort`` and
        ``n_patients`` 0, so that the record shows it was declared and did nothing.
    """
    ids, cohorts = _ids(frame, config), _cohorts(frame, config)
    order = _cohort_order(config, cohorts)
    rows = []
    for variable in _recoded_variables(frame, config):
        text = level_texts(frame[variable.name])
        for raw, level in variable.recode.items():
            hit = text == raw
            if not hit.any():
                rows.append((variable.name, raw, level, "", 0, ""))
            for cohort in order:
                where = hit & (cohorts == cohort)
                if where.any():
                    rows.append((variable.name, raw, level, cohort, int(where.sum()), "; ".join(ids[where])))
    return pd.DataFrame(rows, columns=list(RECODE_COLUMNS)).astype({"n_patients": int})


def _scored_variables(config) -> list:
    """The categorical and binary candidates of the CR model: the variables a fitted model scores by level."""
    return [v for v in config.variables if v.candidate and v.type in ("categorical", "binary")]


def _in_order(values, variable) -> tuple:
    """``values`` in ``variable``'s declared order of levels, then the others in the default order."""
    declared = [lv for lv in (variable.levels or []) if lv in values]
    return tuple(declared + sorted((v for v in values if v not in declared), key=level_key))


def development_levels(frame: pd.DataFrame, config) -> dict[str, tuple[str, ...]]:
    """The levels each scored variable takes in the development cohort.

    Parameters
    ----------
    frame : DataFrame
        clinical.csv after :func:`recode_clinical`.
    config : StudyConfig
        Its study.yaml: ``dev_cohort`` names the development cohort; the variables checked are
        the categorical and binary CR candidates (``candidate: true``), those a fitted model
        scores level by level.

    Returns
    -------
    dict
        variable -> the levels (text) its development patients have, declared ones in
        study.yaml's order, then any other in the default order; a variable whose column
        ``frame`` lacks is left out.
    """
    dev = _cohorts(frame, config) == config.dev_cohort
    out = {}
    for variable in _scored_variables(config):
        if variable.name in frame.columns:
            text = level_texts(frame[variable.name])[dev]
            out[variable.name] = _in_order(set(text[text != ""]), variable)
    return out


@dataclass(frozen=True)
class UnseenLevel:
    """A level that patients of a cohort have and no development patient has.

    Attributes
    ----------
    variable : str
        The variable (clinical.csv column).
    key : str
        Its study.yaml key, e.g. ``variables[3]``.
    level : str
        The level, as text.
    cohort : str
        The cohort whose patients have it.
    patient_ids : tuple of str
        Those patients, in file order.
    dev_levels : tuple of str
        The levels the development cohort has.
    example : str or None
        The development level the fix's example maps ``level`` to: the nearest in the declared
        order of levels (``C`` -> ``B`` of ``A, B, C``), else the first; None when the
        development cohort has none.
    """

    variable: str
    key: str
    level: str
    cohort: str
    patient_ids: tuple
    dev_levels: tuple
    example: Optional[str]

    @property
    def message(self) -> str:
        shown = ", ".join(self.patient_ids[:SHOWN_PATIENTS])
        more = len(self.patient_ids) - SHOWN_PATIENTS
        patients = shown + (f" and {more} more" if more > 0 else "")
        seen = ", ".join(repr(lv) for lv in self.dev_levels) or "none"
        return (f"{self.variable} is {self.level!r} for {len(self.patient_ids)} patient(s) of the cohort "
                f"{self.cohort!r} ({patients}), a level no patient of the development cohort has (its levels there: "
                f"{seen}); a model fitted on the development cohort cannot score it")

    @property
    def fix(self) -> str:
        target = self.example if self.example is not None else "a development level"
        return (f"add a recode for it in study.yaml ({self.key}, {self.variable}), e.g. recode: "
                f"{{'{self.level}': '{target}'}} to read it as a level the development cohort has, or drop the "
                "variable (remove it, or set candidate: false)")

    def __str__(self) -> str:
        return f"{self.message}. Fix: {self.fix}"


def _nearest(level: str, seen, variable) -> Optional[str]:
    """The level of ``seen`` nearest ``level`` in ``variable``'s declared order (the earlier on a
    tie), else the first of ``seen``; None when ``seen`` is empty."""
    declared = list(variable.levels or [])
    if level in declared and any(lv in declared for lv in seen):
        return min((lv for lv in seen if lv in declared),
                   key=lambda lv: (abs(declared.index(lv) - declared.index(level)), declared.index(lv)))
    return seen[0] if seen else None


def unseen_levels(frame: pd.DataFrame, config, dev_levels: Mapping[str, tuple], *,
                  cohorts: Optional[list] = None) -> list[UnseenLevel]:
    """Every level that patients of ``cohorts`` have and the development cohort does not.

    Parameters
    ----------
    frame : DataFrame
        clinical.csv after :func:`recode_clinical`.
    config : StudyConfig
        Its study.yaml (the id, cohort and variables' columns, the declared levels).
    dev_levels : mapping variable -> levels
        The development cohort's levels (:func:`development_levels`; `dlr predict` passes its
        bundle's). Only these variables are checked.
    cohorts : list of str, optional
        The cohorts whose patients are checked; default every cohort of study.yaml but
        ``dev_cohort``.

    Returns
    -------
    list of UnseenLevel
        One per variable, cohort and level, in the order of ``dev_levels``, ``cohorts`` and the
        levels' order; empty when every level is seen. Missing values are never a level, and a
        value outside a variable's declared ``levels`` is left to the undeclared-level check.
    """
    if cohorts is None:
        cohorts = [c for c in config.cohorts if c != config.dev_cohort]
    keys = {v.name: (f"variables[{i}]", v) for i, v in enumerate(config.variables)}
    ids, cohort_of = _ids(frame, config), _cohorts(frame, config)
    found = []
    for name, seen in dev_levels.items():
        if name not in frame.columns or name not in keys:
            continue
        key, variable = keys[name]
        text = level_texts(frame[name])
        new = (text != "") & ~np.isin(text, list(seen))
        if variable.levels is not None:
            new &= np.isin(text, variable.levels)
        for cohort in cohorts:
            where = new & (cohort_of == cohort)
            for level in _in_order(set(text[where]), variable):
                patients = tuple(ids[where & (text == level)])
                found.append(UnseenLevel(name, key, level, cohort, patients, tuple(seen),
                                         _nearest(level, tuple(seen), variable)))
    return found
