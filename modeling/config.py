"""`study.yaml`: the typed description of a study folder (contract section 2).

One file says which column of `clinical.csv` is which, the phases, the cohorts and the
settings. It is validated by pydantic models whose errors name the key (`variables[3].type`),
turned into :class:`StudyConfigError` (an :class:`dlr.core.errors.InputError`) by
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
    horizon: 24                           # optional: survival.csv's cumulative incidence (time unit)
    variables:
      - {name: afp, type: continuous, role: clinical, unit: ng/mL, cut_point: 400}
      - {name: tumor_margin, type: categorical, role: radiological, levels: [Smooth, Non-smooth],
         reader2_column: tumor_margin_reader2}
      - {name: grade, type: categorical, levels: ['2', '3'], recode: {'1': '2'}}   # raw 1 read as 2
    staging_columns: {ecog_ps: ps}        # the contract's staging input name -> the user's column
    radiomics_params: params.yaml         # optional: a PyRadiomics parameter file (default: dlr's)
    preprocessing: {margin_mm: 10}        # optional: modeling.radiomics.preprocess.PreprocessSettings
    mask_label: 2                         # optional: the tumour's label in the masks (default 1)
    harmonization: {method: combat, batch: scanner}   # optional: ComBat on the radiomics features
    seed: 20240101
    n_folds: 5                            # optional: stratified folds of the development cohort (>= 2)
    profile: quick

Every error is reported at once, each under its key: a field's own errors (``profile``,
``variables[3].type``) and the checks that relate keys (``dev_cohort`` must be one of
``cohorts``; ``variables`` named once each), the latter whenever the keys they read are valid.

``mask_label`` and ``n_folds`` are written by :func:`dump_study_config` only when they were
given, so a study.yaml that never named them keeps its bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from dlr.core.errors import InputError

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
    as the paper's ">400"); ``levels`` lists a categorical or binary variable's values in
    order, as R's ``factor(x, levels = ...)``: Table 1 lists them in this order (a level no
    patient has with 0 counts), the first is the reference of the logistic tables (Table 3)
    and of the CR model, and a value of clinical.csv that is not listed is an error
    (:meth:`StudyConfig.clinical_variables`); without ``levels`` the order is
    :func:`dlr.core.tables.parse_column`'s default (numbers by value, then text by code point).
    Levels are text, compared with the values stripped; numbers are taken as text (``1``,
    ``1.0`` -> ``"1"``); an unquoted YAML ``yes``/``no``/``true``/``false``/``on``/``off``
    reads as a boolean and is refused (quote it). ``recode`` maps raw values of clinical.csv to
    declared levels before any check, table or model (``{'1': '2'}``: a recorded 1 is read as
    level 2; :func:`dlr.modeling.levels.recode_clinical`): its keys and values are text as the
    levels are, each value one of ``levels``, no key a level itself (so that recoding twice
    changes nothing); only a categorical or binary variable with ``levels`` has one.
    ``reader2_column`` names the second
    reader's reading of a radiological feature (for Cohen's kappa); ``candidate`` says whether
    the variable is a Table 1 characteristic and a candidate of the CR model's univariate
    screen (False for raw inputs kept only for the staging systems and indexes).
    """

    name: str = Field(min_length=1)
    type: Literal["continuous", "categorical", "binary"]
    role: Literal["clinical", "radiological", "laboratory", "demographic"] = "clinical"
    unit: Optional[str] = None
    cut_point: Optional[float] = None
    levels: Optional[list[str]] = None
    recode: Optional[dict[str, str]] = None
    reader2_column: Optional[str] = None
    candidate: bool = True

    @field_validator("cut_point")
    @classmethod
    def _cut_point_needs_continuous(cls, cut_point, info: ValidationInfo):
        # a field validator (``type`` is validated before ``cut_point``) so that the error names
        # the key, variables[i].cut_point; a type that is itself invalid is reported on its own
        kind = info.data.get("type")
        if cut_point is not None and kind is not None and kind != "continuous":
            raise ValueError(f"cut_point is only for continuous variables ({info.data.get('name')!r} is {kind})")
        return cut_point

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_as_text(cls, levels):
        if levels is None:
            return None
        if not isinstance(levels, (list, tuple)):
            raise ValueError(f"levels must be a list of the variable's values in order, e.g. [A, B], got {levels!r}")
        return [_as_text(level, f"level {i}") for i, level in enumerate(levels, start=1)]

    @field_validator("levels")
    @classmethod
    def _levels_fit_the_type(cls, levels, info: ValidationInfo):
        if levels is None:
            return None
        levels = [level.strip() for level in levels]
        name, kind = info.data.get("name"), info.data.get("type")
        if not levels:
            raise ValueError("levels must list at least one level (or leave levels out)")
        if "" in levels:
            raise ValueError(f"levels must not be empty or blank, got {levels}; a blank value is a missing value")
        repeated = sorted({lv for lv in levels if levels.count(lv) > 1})
        if repeated:
            raise ValueError(f"levels listed more than once: {repeated}")
        if kind == "continuous":
            raise ValueError(f"levels are only for categorical and binary variables ({name!r} is continuous; "
                             "a cut_point gives it two levels)")
        if kind == "binary" and len(levels) != 2:
            raise ValueError(f"a binary variable has two levels, got {len(levels)}: {levels}; make {name!r} "
                             "categorical or list two levels")
        return levels

    @field_validator("recode", mode="before")
    @classmethod
    def _recode_as_text(cls, recode, info: ValidationInfo):
        if recode is None:
            return None
        name = info.data.get("name")
        if not isinstance(recode, dict):
            raise ValueError(f"recode of {name!r} must map raw values to levels, e.g. {{'1': '2'}}, got {recode!r}")
        pairs = [(_as_text(raw, f"recode key {raw!r} of {name!r}").strip(),
                  _as_text(level, f"recode value {level!r} of {name!r}").strip()) for raw, level in recode.items()]
        keys = [raw for raw, _ in pairs]
        repeated = sorted({raw for raw in keys if keys.count(raw) > 1})
        if repeated:  # 1 and '1', or 'A' and 'A ': the same value of clinical.csv
            raise ValueError(f"recode of {name!r} names the value(s) {repeated} more than once")
        return dict(pairs)

    @field_validator("recode")
    @classmethod
    def _recode_to_declared_levels(cls, recode, info: ValidationInfo):
        if recode is None or "levels" not in info.data:  # invalid levels are reported on their own
            return recode
        name, kind, levels = info.data.get("name"), info.data.get("type"), info.data["levels"]
        if kind not in ("categorical", "binary"):
            raise ValueError(f"recode is only for categorical and binary variables ({name!r} is {kind})")
        if levels is None:
            raise ValueError(f"recode maps values to declared levels, and {name!r} declares none; list its levels, "
                             f"e.g. levels: {sorted(set(recode.values()))}")
        if "" in recode:
            raise ValueError(f"a recode key of {name!r} is empty or blank; a blank value is a missing value, which "
                             "stays missing")
        strays = {raw: level for raw, level in recode.items() if level not in levels}
        if strays:
            raise ValueError(f"recode of {name!r} maps to {sorted(set(strays.values()))}, not among its levels "
                             f"{levels} ({strays}); map each value to one of the levels, or add the level to levels")
        circular = sorted(raw for raw in recode if raw in levels)
        if circular:
            raise ValueError(f"recode of {name!r} maps the level(s) {circular}, which are among its levels "
                             f"{levels}; remove them from recode, or from levels if no patient should keep them")
        return recode


def _as_text(value, what: str) -> str:
    """A level or recode value of study.yaml as text (numbers as :func:`dlr.core.tables.level_text`
    writes them, ``1.0`` -> ``"1"``); ValueError naming ``what`` for a YAML boolean or another type."""
    if isinstance(value, bool):
        raise ValueError(f"{what} reads as the YAML boolean {value} (an unquoted yes/no, true/false or on/off); "
                         "quote it as clinical.csv spells it, e.g. 'No'")
    if isinstance(value, (int, float)):
        from dlr.core.tables import level_text

        return level_text(value)
    if not isinstance(value, str):
        raise ValueError(f"{what} is {value!r}; levels are text (or numbers) as clinical.csv holds them")
    return value


class Harmonization(_Strict):
    """study.yaml ``harmonization`` (contract section 2.1): batch-effect removal of the radiomics features.

    ``method`` is ``combat`` (:func:`dlr.modeling.radiomics.harmonization.fit_combat`: Johnson et
    al. 2007's parametric empirical Bayes, no covariate; the outcome is never one); ``batch``
    names the clinical.csv column of each patient's batch, usually the scanner column. ComBat is
    fitted on the development patients of each fit only (the final one and every out-of-fold
    refit's training folds) and applied unchanged to everyone else; `dlr validate` refuses a
    batch level of another cohort that the development cohort lacks, a development level with
    fewer than 2 patients and a patient without a batch.
    """

    method: Literal["combat"]
    batch: str = Field(min_length=1)


class StudyConfig(_Strict):
    """The study.yaml of a study folder.

    Besides the column names, phases and cohorts:

    ``mask_label`` (int >= 1, default 1)
        The label of the tumour in every mask. By default masks hold 0 and 1 (contract section
        2) and `dlr validate` reports a mask holding any other label (the fix: relabel it, or
        name the tumour's label here). Once ``mask_label`` is given (even as 1), masks may hold
        other labels (organs, other lesions): only voxels equal to ``mask_label`` are the
        tumour, and preprocessing hands PyRadiomics a binary mask of them (label 1).
    ``deep`` (mapping, optional)
        Settings of the deep-learning arm that override the profile's
        (:class:`dlr.modeling.deep.settings.DeepSettings`: ``image_size``, ``fov_mm``, ``steps``,
        ``batch_size``, ``lr``, ``networks``, ...), e.g. ``deep: {image_size: 64, fov_mm: 96, steps: 500}``.
    ``n_folds`` (int >= 2, default 5)
        The stratified folds into which ``RUN/split.csv`` divides the development cohort (the
        paper's 5-fold LASSO CV); each fold needs a patient of each outcome, so the
        development cohort needs at least ``n_folds`` patients of each outcome (`dlr validate`
        checks it).
    ``harmonization`` (mapping, optional; off by default)
        ``{method: combat, batch: scanner}``: :class:`Harmonization`.
    ``title``, ``authors`` (optional)
        The manuscript's title and its authors' names (a list), written into the report and the
        DOCX's properties; without them the report has a title made from the study and no author.
    """

    name: str = "study"
    title: Optional[str] = None
    authors: list[str] = Field(default_factory=list)
    id_column: str = "patient_id"
    cohort_column: str = "cohort"
    outcome_column: str = "early_recurrence"
    dev_cohort: str = "training"
    cohorts: list[str] = Field(default_factory=lambda: ["training", "validation"], min_length=1)
    phases: list[str] = Field(default_factory=lambda: list(DEFAULT_PHASES))
    mask_label: int = Field(1, ge=1)
    scanner_column: Optional[str] = None
    time_column: Optional[str] = None
    event_column: Optional[str] = None
    #: when survival.csv reads each risk group's cumulative incidence, in time_column's unit
    #: (default 24: two years in months, the paper's early recurrence)
    horizon: Optional[float] = Field(None, gt=0)
    variables: list[Variable] = Field(default_factory=list)
    staging_columns: dict[str, str] = Field(default_factory=dict)
    erasl: Optional[dict] = None
    radiomics_params: Optional[str] = None
    preprocessing: Optional[dict] = None
    harmonization: Optional[Harmonization] = None
    deep: Optional[dict] = None
    seed: int = 20240101
    n_folds: int = Field(5, ge=2)
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

    @field_validator("deep")
    @classmethod
    def _known_deep(cls, settings):
        from .deep.settings import DeepSettings

        if settings is not None:
            unknown = sorted(set(settings) - set(DeepSettings.__dataclass_fields__) - {"profile"})
            if unknown:
                raise ValueError(f"unknown deep setting(s) {unknown}; the settings are "
                                 f"{', '.join(f for f in DeepSettings.__dataclass_fields__ if f != 'profile')}")
        return settings

    @field_validator("staging_columns")
    @classmethod
    def _known_staging_inputs(cls, mapping):
        unknown = sorted(set(mapping) - set(STAGING_INPUTS))
        if unknown:
            raise ValueError(f"unknown staging input(s) {unknown}; the inputs are {', '.join(STAGING_INPUTS)}")
        return mapping

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo):
        # study_config_errors runs these checks itself, each under its key, also when other
        # keys are invalid; a StudyConfig built in code gets them here (without a location)
        if info.context and info.context.get(_DEFER_CROSS_CHECKS):
            return self
        problems = [f"{key}: {message}" for key, message in _cross_check_errors(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def columns(self) -> list[str]:
        """Every clinical.csv column this config names (which must therefore exist)."""
        named = [self.id_column, self.cohort_column, self.outcome_column, self.scanner_column, self.time_column,
                 self.event_column, self.harmonization.batch if self.harmonization else None,
                 *(v.name for v in self.variables),
                 *(v.reader2_column for v in self.variables), *self.staging_columns.values()]
        return list(dict.fromkeys(c for c in named if c))

    def described_variables(self) -> list[str]:
        """Table 1's variables, in study.yaml's order: the CR model's candidates, the demographic
        variables recorded beside them (age, even when not a candidate: Table 1 describes the
        patients, not the candidates), then the scanner column."""
        names = [v.name for v in self.variables if v.candidate or v.role == "demographic"]
        if self.scanner_column and self.scanner_column not in names:
            names.append(self.scanner_column)
        return names

    def clinical_variables(self, frame, *, variables=None, categorical=()):
        """``clinical.csv`` as Table 1, the logistic tables and the CR model read it.

        Returns ``(frame, variables, categorical)``: a copy of ``frame`` with every raw value
        that has a ``cut_point`` dichotomised (:func:`dlr.core.tables.dichotomise`) and each of
        ``variables`` that has ``levels`` a pandas ``Categorical`` of those levels in order
        (:func:`dlr.core.tables.declare_levels`: Table 1's row order, and the reference of the
        logistic tables is the first level), ``variables`` or else the candidate variables in
        study.yaml's order, and ``categorical`` plus every variable that study.yaml does not
        type as continuous.

        Raises
        ------
        InputError
            A value of one of ``variables`` that is not among its ``levels``, naming the
            column, the value, its patients (``id_column``) and the key ``variables[i].levels``.
        """
        from dlr.core.tables import declare_levels, dichotomise

        cuts = {v.name: v.cut_point for v in self.variables if v.cut_point is not None}
        variables = list(variables) if variables else [v.name for v in self.variables if v.candidate]
        categorical = [*categorical, *(v.name for v in self.variables if v.type != "continuous")]
        keys = {v.name: i for i, v in enumerate(self.variables) if v.levels is not None and v.name in variables}
        table = declare_levels(dichotomise(frame, cuts), {name: self.variables[i].levels for name, i in keys.items()},
                               id_column=self.id_column,
                               declared_in={name: f"study.yaml variables[{i}].levels" for name, i in keys.items()})
        return table, variables, categorical


def _dev_cohort_error(config: StudyConfig) -> Optional[str]:
    if config.dev_cohort not in config.cohorts:
        return (f"{config.dev_cohort!r} is not one of cohorts {config.cohorts}; name one of them as dev_cohort "
                "or add it to cohorts")
    return None


def _repeated_variables_error(config: StudyConfig) -> Optional[str]:
    names = [v.name for v in config.variables]
    repeated = sorted({n for n in names if names.count(n) > 1})
    return f"variables named more than once: {repeated}" if repeated else None


_DEFER_CROSS_CHECKS = "dlr-defer-cross-checks"
#: checks relating keys: (the key an error is reported under, the keys read, the check)
_CROSS_CHECKS: tuple[tuple[str, tuple[str, ...], Callable[[StudyConfig], Optional[str]]], ...] = (
    ("dev_cohort", ("dev_cohort", "cohorts"), _dev_cohort_error),
    ("variables", ("variables",), _repeated_variables_error),
)


def _cross_check_errors(config: StudyConfig, *, skip=frozenset()) -> list[tuple[str, str]]:
    """(key, message) of each cross-key check that fails, leaving out those reading a key in ``skip``."""
    found = []
    for key, reads, check in _CROSS_CHECKS:
        if not set(reads) & set(skip):
            message = check(config)
            if message:
                found.append((key, message))
    return found


def _location(error: dict) -> str:
    parts = []
    for part in error["loc"]:
        parts.append(f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part)))
    return "".join(parts) or "(top level)"


def study_config_errors(data: dict) -> tuple[Optional[StudyConfig], list[tuple[str, str]]]:
    """Validate a parsed study.yaml mapping, finding every error at once.

    Returns
    -------
    (config, errors)
        ``(StudyConfig, [])`` when valid, else ``(None, [(key, message), ...])``: each error under
        the key at fault (``profile``, ``variables[3].type``, ``dev_cohort``), in the order of
        the keys in :class:`StudyConfig` (unknown keys last). The checks relating keys
        (``dev_cohort`` one of ``cohorts``, distinct variable names) run on the valid keys even
        when others are invalid, and are skipped when a key they read is itself invalid (that
        key's own error is reported instead).
    """
    context = {_DEFER_CROSS_CHECKS: True}
    errors: list[tuple[str, str]] = []
    bad: set = set()
    try:
        config = StudyConfig.model_validate(data, context=context)
    except ValidationError as exc:
        for error in exc.errors():
            errors.append((_location(error), error["msg"]))
            if error["loc"]:
                bad.add(error["loc"][0])
        try:  # the valid keys alone (the others at their defaults), for the cross-key checks
            config = StudyConfig.model_validate({k: v for k, v in data.items() if k not in bad}, context=context)
        except ValidationError:
            config = None
    if config is not None:
        errors += _cross_check_errors(config, skip=bad)
    if not errors:
        return config, []
    order = {name: i for i, name in enumerate(StudyConfig.model_fields)}
    errors.sort(key=lambda e: order.get(e[0].split(".")[0].split("[")[0], len(order)))
    return None, errors


def parse_study_config(data, *, source: str = "study.yaml") -> StudyConfig:
    """Validate a parsed study.yaml mapping; StudyConfigError listing every key at fault (one line each)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StudyConfigError(f"{source}: the file must hold a mapping of keys to values, got {type(data).__name__}")
    config, errors = study_config_errors(data)
    if errors:
        lines = [f"  {key}: {message}" for key, message in errors]
        raise StudyConfigError(f"{source}: {len(lines)} problem(s):\n" + "\n".join(lines))
    return config


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


#: keys written by dump_study_config only when given (so that older study.yaml files keep their bytes)
_WRITTEN_WHEN_GIVEN = ("mask_label", "n_folds")


def dump_study_config(config: StudyConfig) -> str:
    """study.yaml text of a config (keys in declaration order, defaults included, except
    ``mask_label`` and ``n_folds``, written only when given)."""
    import yaml

    data = config.model_dump(mode="json", exclude_none=True)
    for key in _WRITTEN_WHEN_GIVEN:
        if key not in config.model_fields_set:
            data.pop(key, None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
