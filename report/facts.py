"""What a run folder holds, read once for the report: saved files only, nothing is fitted.

:func:`read_run` gathers the run's marker, its study.yaml (the copy `dlr run` made), each
stage's record, the analysis results (with the survival extension's ``survival.csv`` where
the study named follow-up columns), the models' tables (with the logistic models' internal
validation and nomogram), the clinical statistics, the staging tables and the extraction log
into one :class:`RunFacts`. The report's text, tables, figures
and TRIPOD+AI checklist are all written from it: it is the one reader of the run's files
(:meth:`RunFacts.table`, :meth:`~RunFacts.document`, :meth:`~RunFacts.text`,
:meth:`~RunFacts.provenance`, each file read once by :mod:`dlr.core.run_folder`'s rules, and
:attr:`~RunFacts.analysis`, the analysis' result objects the figures are drawn from); nothing
else in ``report/`` opens a file of the run (tests/test_house.py).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import pandas as pd
import yaml

from dlr.core import run_folder as rf
from dlr.core.errors import InputError
from dlr.core.run_folder import COMPARATORS, DEEP_MODELS, OOF_SUFFIX  # noqa: F401  (the report's vocabulary)

_csv = rf.read_table
_json = rf.read_json


@dataclass
class RunFacts:
    """The saved results of one run (None or empty where a stage did not run)."""

    run: Path
    info: dict
    config: object  # study.yaml's settings (study_settings), or None when the run has no copy of it
    stages: dict
    results: Optional[dict]
    performance: Optional[pd.DataFrame]
    comparisons: Optional[pd.DataFrame]
    cohort_tests: Optional[pd.DataFrame]
    subgroups: Optional[pd.DataFrame]
    reclassification: Optional[pd.DataFrame]
    models: Optional[pd.DataFrame]
    tuning: Optional[pd.DataFrame]
    selection_counts: Optional[pd.DataFrame]
    oof_log: Optional[pd.DataFrame]
    parameters: Optional[dict]
    extraction_log: Optional[pd.DataFrame]
    table1_tests: Optional[pd.DataFrame]
    univariate: Optional[pd.DataFrame]
    multivariate: Optional[pd.DataFrame]
    selected: tuple
    sample_size: Optional[pd.DataFrame]
    agreement: Optional[pd.DataFrame]
    staging: Optional[pd.DataFrame]
    staging_missing: Optional[pd.DataFrame]
    split: Optional[pd.DataFrame]
    preprocessing: Optional[dict]
    extra: dict = field(default_factory=dict)
    #: results/survival.csv (``dlr analyze --time --event``, contract 5.1); None without follow-up
    survival: Optional[pd.DataFrame] = None
    #: results/decision_curve_differences.csv: net benefit against the reference, interventions avoided
    dca_differences: Optional[pd.DataFrame] = None
    #: models/internal_validation.csv (Harrell's bootstrap of the logistic models, ``dlr train``)
    internal_validation: Optional[pd.DataFrame] = None
    #: models/nomogram.csv (the logistic models' nomogram axes, ``dlr train``)
    nomogram: Optional[pd.DataFrame] = None
    _read: dict = field(default_factory=dict, repr=False)

    # ---- the one reader of the run's files ---------------------------------------------------
    def table(self, name, **kwargs) -> Optional[pd.DataFrame]:
        """``RUN/name`` (a path relative to the run) by :func:`dlr.core.run_folder.read_table`'s
        one rule (only empty cells are missing), read once; a copy, so that no caller changes
        another's. None when the file is absent."""
        key = ("table", str(name), repr(sorted(kwargs.items(), key=lambda item: item[0])))
        if key not in self._read:
            self._read[key] = _csv(self.run / name, **kwargs)
        frame = self._read[key]
        return None if frame is None else frame.copy()

    def document(self, name) -> Optional[dict]:
        """``RUN/name`` as JSON (:func:`dlr.core.run_folder.read_json`), read once; None when absent."""
        key = ("json", str(name))
        if key not in self._read:
            self._read[key] = _json(self.run / name)
        return copy.deepcopy(self._read[key])

    def yaml(self, name) -> Optional[dict]:
        """``RUN/name`` as a YAML mapping (the PyRadiomics parameters), read once; None when
        absent or not a mapping."""
        key = ("yaml", str(name))
        if key not in self._read:
            text = self.text(name)
            try:
                loaded = yaml.safe_load(text) if text else None
            except yaml.YAMLError:
                loaded = None
            self._read[key] = loaded if isinstance(loaded, dict) else None
        return copy.deepcopy(self._read[key])

    def text(self, name) -> Optional[str]:
        """``RUN/name`` as text, read once; None when absent."""
        key = ("text", str(name))
        if key not in self._read:
            path = self.run / name
            self._read[key] = path.read_text() if path.is_file() else None
        return self._read[key]

    def provenance(self, folder) -> dict:
        """``RUN/folder/provenance.json`` by artefact (:func:`dlr.core.output.read_provenance`), read once."""
        key = ("provenance", str(folder))
        if key not in self._read:
            from dlr.core.output import read_provenance

            self._read[key] = read_provenance(self.run / folder)
        return self._read[key]

    @property
    def analysis(self):
        """The analysis as :func:`dlr.analysis.output.read_analysis` returns it (the result objects
        the figures are drawn from), read once; None without ``results/results.json``."""
        if "analysis" not in self._read:
            from dlr.analysis.output import read_analysis

            folder = self.run / rf.RESULTS_DIR
            self._read["analysis"] = read_analysis(folder) if (folder / rf.RESULTS_JSON).is_file() else None
        return self._read["analysis"]

    # ---- derived facts ----------------------------------------------------------------------
    @property
    def settings(self) -> dict:
        return (self.results or {}).get("settings", {})

    @property
    def dev_cohort(self) -> str:
        return self.settings.get("dev_cohort") or getattr(self.config, "dev_cohort", "training")

    @property
    def cohorts(self) -> list:
        """The analysed cohorts, development first, without the out-of-fold one."""
        if self.performance is None:
            return []
        names = list(dict.fromkeys(self.performance["cohort"]))
        names = [c for c in names if not c.endswith(OOF_SUFFIX)]
        return sorted(names, key=lambda c: (c != self.dev_cohort, names.index(c)))

    @property
    def other_cohorts(self) -> list:
        """The cohorts other than the development one (validation, external, ...), in the analysis' order."""
        return [c for c in self.cohorts if c != self.dev_cohort]

    @property
    def panel_cohorts(self) -> list:
        """The cohorts of the curve figures' panels, in order: the development cohort's nested
        out-of-fold predictions in place of its apparent ones (a fitted model's curve on the
        patients it was fitted on flatters it), then every other cohort."""
        oof = self.oof_cohort
        return [oof if oof and c == self.dev_cohort else c for c in self.cohorts]

    @property
    def oof_cohort(self) -> Optional[str]:
        name = self.dev_cohort + OOF_SUFFIX
        if self.performance is not None and name in set(self.performance["cohort"]):
            return name
        return None

    @property
    def model_names(self) -> list:
        return [] if self.performance is None else list(dict.fromkeys(self.performance["model"]))

    @property
    def best_model(self) -> Optional[str]:
        """The reference model of the analysis (the highest nested out-of-fold AUC with --oof)."""
        return self.settings.get("reference")

    @property
    def survival_settings(self) -> dict:
        """results.json's ``settings.survival`` (``time``, ``event``, ``horizon``); {} without follow-up."""
        value = self.settings.get("survival")
        return value if isinstance(value, dict) else {}

    @property
    def best_radiomics(self) -> Optional[str]:
        """The best radiomics classifier (:func:`dlr.core.run_folder.best_radiomics`: the one rule
        the text and every table use)."""
        return rf.best_radiomics(self.models, self.performance, self.dev_cohort)

    @property
    def left_out(self) -> list[tuple[str, str]]:
        """(models, why) of each model the run asked for and could not fit (``models/left_out.csv``)."""
        table = self.table(rf.LEFT_OUT, dtype=str)
        return [] if table is None or not len(table) else list(zip(table["models"], table["reason"]))

    @property
    def km_model(self) -> Optional[str]:
        """The model of the Kaplan-Meier figure and its paragraph (:func:`km_model`)."""
        return km_model(self.survival, self.best_model)

    @property
    def has_radiomics(self) -> bool:
        return any(m.startswith("Radiomics-") for m in self.model_names)

    @property
    def has_deep(self) -> bool:
        return any(m in DEEP_MODELS for m in self.model_names)

    def perf(self, model: str, cohort: str) -> Optional[pd.Series]:
        if self.performance is None:
            return None
        rows = self.performance[(self.performance["model"] == model) & (self.performance["cohort"] == cohort)]
        return None if rows.empty else rows.iloc[0]

    def cohort_counts(self) -> dict:
        """cohort -> (patients, events), from the analysis' first model."""
        out = {}
        if self.performance is None:
            return out
        for cohort in self.cohorts:
            rows = self.performance[self.performance["cohort"] == cohort]
            out[cohort] = (int(rows["n"].max()), int(rows.loc[rows["n"].idxmax(), "n_events"]))
        return out


def km_model(survival: Optional[pd.DataFrame], best: Optional[str]) -> Optional[str]:
    """The model of the Kaplan-Meier figure: ``best`` (results.json's reference) when
    ``survival`` (survival.csv) has it, else survival.csv's first model; None without follow-up."""
    if survival is None or survival.empty:
        return None
    models = list(dict.fromkeys(survival["model"]))
    return best if best in models else models[0]


_STUDY_DEFAULTS = {"name": None, "id_column": "patient_id", "cohort_column": "cohort",
                   "outcome_column": "early_recurrence", "dev_cohort": "training", "cohorts": [],
                   "phases": ["AP", "PVP", "DP"], "scanner_column": None, "variables": [], "seed": None,
                   "profile": "quick", "preprocessing": None, "harmonization": None}
_VARIABLE_DEFAULTS = {"name": "", "type": "", "role": "clinical", "unit": None, "cut_point": None, "levels": None,
                      "recode": None, "reader2_column": None, "candidate": True}


def study_settings(path) -> SimpleNamespace:
    """The run's copy of study.yaml as attributes (with study.yaml's defaults), for the text.

    `dlr run` validated it with `modeling.config` before copying it; the report reads it only,
    and does not import the modeling side.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not a study.yaml mapping")
    values = {**_STUDY_DEFAULTS, **raw}
    values["variables"] = [SimpleNamespace(**{**_VARIABLE_DEFAULTS, **v}) for v in values.get("variables") or []
                           if isinstance(v, dict)]
    return SimpleNamespace(**values)


def package_data(name: str) -> dict:
    """A YAML document shipped with the report code (``report/checklists/NAME``): the
    checklists' items, not the run's files."""
    return yaml.safe_load((Path(__file__).resolve().parent / "checklists" / name).read_text(encoding="utf-8"))


def as_facts(run) -> RunFacts:
    """``run`` itself when it is a :class:`RunFacts`, else :func:`read_run` of the folder."""
    return run if isinstance(run, RunFacts) else read_run(run)


def read_run(run, *, info: Optional[dict] = None, study_yaml=None) -> RunFacts:
    """Read every saved result of ``run`` (see :class:`RunFacts`).

    ``info`` and ``study_yaml`` replace ``run.json`` and ``inputs/study.yaml`` for a folder laid
    out otherwise: a reviewer package keeps the run's marker in ``settings.json`` and the study
    at its top (`dlr verify`).
    """
    run = Path(run)
    info = (_json(run / "run.json") or {}) if info is None else dict(info)
    config = None
    study_yaml = run / "inputs" / "study.yaml" if study_yaml is None else Path(study_yaml)
    if study_yaml.is_file():
        config = study_settings(study_yaml)
    stages = {}
    for path in sorted((run / "stages").glob("*.json")):
        if path.name != "file_hashes.json":
            record = _json(path)
            if record:
                stages[record.get("stage", path.stem)] = record
    results = _json(run / rf.RESULTS_DIR / rf.RESULTS_JSON)
    selected_path = run / "clinical" / "selected.txt"
    selected = tuple(line.strip() for line in selected_path.read_text().splitlines() if line.strip()) \
        if selected_path.is_file() else ()
    return RunFacts(
        run=run, info=info, config=config, stages=stages, results=results,
        performance=_csv(run / "results" / "performance.csv"),
        comparisons=_csv(run / "results" / "comparisons.csv"),
        cohort_tests=_csv(run / "results" / "cohort_tests.csv"),
        subgroups=_csv(run / "results" / "subgroups.csv"),
        reclassification=_csv(run / "results" / "reclassification.csv"),
        models=_csv(run / "models" / "models.csv"),
        tuning=_csv(run / "models" / "tuning.csv"),
        selection_counts=_csv(run / "models" / "selection_counts.csv"),
        oof_log=_csv(run / "models" / "oof_log.csv"),
        parameters=_json(run / "models" / "parameters.json"),
        extraction_log=_csv(run / "features" / "extraction_log.csv"),
        table1_tests=_csv(run / "clinical" / "table1_tests.csv"),
        univariate=_csv(run / "clinical" / "univariate.csv"),
        multivariate=_csv(run / "clinical" / "multivariate.csv"),
        selected=selected,
        sample_size=_csv(run / "clinical" / "sample_size.csv"),
        agreement=_csv(run / "clinical" / "agreement.csv"),
        staging=_csv(run / "staging" / "staging.csv"),
        staging_missing=_csv(run / "staging" / "staging_missing.csv"),
        split=_csv(run / rf.SPLIT),
        preprocessing=_json(run / "features" / "preprocessing.json"),
        survival=_csv(run / "results" / "survival.csv"),
        dca_differences=_csv(run / "results" / "decision_curve_differences.csv"),
        internal_validation=_csv(run / "models" / "internal_validation.csv"),
        nomogram=_csv(run / "models" / "nomogram.csv"),
    )
