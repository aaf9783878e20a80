"""`study.yaml`: the typed description of a study folder (contract section 2).

One file says which column of `clinical.csv` is which, the phases, the cohorts and the
settings. It is validated by pydantic models whose errors name the key (`variables[3].type`),
turned into :class:`StudyConfigError` (an :class:`core.errors.InputError`) by
:func:`load_study_config`.

Example::

    name: synthetic-hcc
    id_column: patient_id
    cohort_column: cohort
    outcome_column: early_recurrence
    dev_cohort: training
    cohorts: [training, validation]
    phases: [AP, PVP, DP]
    scanner_column: scanner
    time_column: months_to_recurrence
    event_column: recurrence
    variables:
      - {name: afp, type: continuous, role: clinical, unit: ng/mL, cut_point: 400}
      - {name: tumor_margin, type: categorical, role: radiological, levels: [Smooth, Non-smooth],
         reader2_column: tumor_margin_reader2}
    staging_columns: {ecog_ps: ps}        # the contract's staging input name -> the user's column
    radiomics_params: params.yaml         # optional: a PyRadiomics parameter file (default: dlr's)
    preprocessing: {margin_mm: 10}        # optional: modeling.radiomics.preprocess.PreprocessSettings
    seed: 20240101
    profile: quick
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import InputError

#: the contract's names of the raw staging and index inputs (contract section 2)
STAGING_INPUTS = (
    "ecog_ps", "child_pugh_class", "child_pugh_score", "tbil", "alb", "tumor_number", "tumor_diameter",
    "macrovascular_invasion", "portal_vein_thrombosis", "extrahepatic_spread", "tumor_extent_over_50pct", "afp",
    "gender", "neutrophils", "lymphocytes", "monocytes", "platelets",
)
DEFAULT_PHASES = ("AP", "PVP", "DP")


class StudyConfigError(InputError):
    """study.yaml is missing, unreadable or invalid; the message names the file and every key at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variable(_Strict):
    """One clinical or radiological variable of clinical.csv.

    ``cut_point`` dichotomises a raw continuous value for Table 1 (high when value > cut point,
    as the paper's ">400"); ``reader2_column`` names the second reader's reading of a
    radiological feature (for Cohen's kappa); ``candidate`` says whether the variable is a
    Table 1 characteristic and a candidate of the CR model's univariate screen (False for raw
    inputs kept only for the staging systems and indexes).
    """

    name: str = Field(min_length=1)
    type: Literal["continuous", "categorical", "binary"]
    role: Literal["clinical", "radiological", "laboratory", "demographic"] = "clinical"
    unit: Optional[str] = None
    cut_point: Optional[float] = None
    levels: Optional[list[str]] = None
    reader2_column: Optional[str] = None
    candidate: bool = True

    @model_validator(mode="after")
    def _cut_point_needs_continuous(self):
        if self.cut_point is not None and self.type != "continuous":
            raise ValueError(f"cut_point is only for continuous variables ({self.name!r} is {self.type})")
        return self


class StudyConfig(_Strict):
    """The study.yaml of a study folder."""

    name: str = "study"
    id_column: str = "patient_id"
    cohort_column: str = "cohort"
    outcome_column: str = "early_recurrence"
    dev_cohort: str = "training"
    cohorts: list[str] = Field(default_factory=lambda: ["training", "validation"], min_length=1)
    phases: list[str] = Field(default_factory=lambda: list(DEFAULT_PHASES))
    scanner_column: Optional[str] = None
    time_column: Optional[str] = None
    event_column: Optional[str] = None
    variables: list[Variable] = Field(default_factory=list)
    staging_columns: dict[str, str] = Field(default_factory=dict)
    erasl: Optional[dict] = None
    radiomics_params: Optional[str] = None
    preprocessing: Optional[dict] = None
    seed: int = 20240101
    profile: Literal["quick", "paper"] = "quick"

    @field_validator("phases")
    @classmethod
    def _distinct_phases(cls, phases):
        if len(set(phases)) != len(phases):
            raise ValueError(f"phases must be distinct, got {phases}")
        return phases

    @field_validator("preprocessing")
    @classmethod
    def _known_preprocessing(cls, settings):
        from .radiomics.preprocess import PreprocessSettings

        if settings is not None:
            try:
                PreprocessSettings(**settings)
            except TypeError as exc:
                raise ValueError(f"unknown preprocessing setting ({exc}); the settings are "
                                 f"{', '.join(PreprocessSettings.__dataclass_fields__)}") from None
        return settings

    @field_validator("staging_columns")
    @classmethod
    def _known_staging_inputs(cls, mapping):
        unknown = sorted(set(mapping) - set(STAGING_INPUTS))
        if unknown:
            raise ValueError(f"unknown staging input(s) {unknown}; the inputs are {', '.join(STAGING_INPUTS)}")
        return mapping

    @model_validator(mode="after")
    def _consistent(self):
        if self.dev_cohort not in self.cohorts:
            raise ValueError(f"dev_cohort {self.dev_cohort!r} is not one of cohorts {self.cohorts}")
        names = [v.name for v in self.variables]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variables named more than once: {repeated}")
        return self

    def columns(self) -> list[str]:
        """Every clinical.csv column this config names (which must therefore exist)."""
        named = [self.id_column, self.cohort_column, self.outcome_column, self.scanner_column, self.time_column,
                 self.event_column, *(v.name for v in self.variables),
                 *(v.reader2_column for v in self.variables), *self.staging_columns.values()]
        return list(dict.fromkeys(c for c in named if c))

    def clinical_variables(self, frame, *, variables=None, categorical=()):
        """``clinical.csv`` as Table 1, the logistic tables and the CR model read it.

        Returns ``(frame, variables, categorical)``: a copy of ``frame`` with every raw value
        that has a ``cut_point`` dichotomised (:func:`core.tables.dichotomise`), ``variables``
        or else the candidate variables in study.yaml's order, and ``categorical`` plus every
        variable that study.yaml does not type as continuous.
        """
        from core.tables import dichotomise

        cuts = {v.name: v.cut_point for v in self.variables if v.cut_point is not None}
        variables = list(variables) if variables else [v.name for v in self.variables if v.candidate]
        categorical = [*categorical, *(v.name for v in self.variables if v.type != "continuous")]
        return dichotomise(frame, cuts), variables, categorical


def _location(error: dict) -> str:
    parts = []
    for part in error["loc"]:
        parts.append(f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part)))
    return "".join(parts) or "(top level)"


def parse_study_config(data, *, source: str = "study.yaml") -> StudyConfig:
    """Validate a parsed study.yaml mapping; StudyConfigError listing every key at fault."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StudyConfigError(f"{source}: the file must hold a mapping of keys to values, got {type(data).__name__}")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {_location(e)}: {e['msg']}" for e in exc.errors()]
        raise StudyConfigError(f"{source}: {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def read_yaml(path, *, error: type[InputError], missing: str):
    """The parsed content of a YAML file; ``error`` naming the file when it is absent or not YAML."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None


def load_study_config(path) -> StudyConfig:
    """Read and validate a study.yaml file."""
    data = read_yaml(path, error=StudyConfigError,
                     missing="no such file; a study folder needs a study.yaml (contract section 2)")
    return parse_study_config(data, source=str(path))


def dump_study_config(config: StudyConfig) -> str:
    """study.yaml text of a config (keys in declaration order, defaults included)."""
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
