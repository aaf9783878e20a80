"""The study folder (contract section 2): loading it and validating it in one pass.

:func:`validate_study` looks at a study folder without running anything and returns every
problem it finds (never only the first), each a :class:`Problem` that names the check, the file,
the patient and the fix. :func:`load_study` validates and returns a :class:`Study` (the config,
the clinical table and the image and mask paths), or raises :class:`StudyError` listing every
problem, which the command line turns into exit status 2.

Layout::

    STUDY/
      study.yaml
      clinical.csv
      images/<patient_id>/<PHASE>.nii.gz
      masks/<patient_id>/<PHASE>.nii.gz
      masks_reader2/<patient_id>/<PHASE>.nii.gz     # optional subset of patients and phases

Only image headers are read (``ImageFileReader.ReadImageInformation``), and the voxels of the
floating-point images, from the file itself, to count NaN and infinite voxels (which SimpleITK
reads as 0: :mod:`dlr.modeling.nifti`); mask voxels are read to check that the mask holds the
tumour label (1, or study.yaml's ``mask_label``) and, unless ``mask_label`` is given, no other.

Two checks concern one stage and do not stop :func:`load_study` (:data:`STAGE_CHECKS`):
``image-not-finite`` (`dlr extract` fails that case, naming the voxels, lists it and goes on,
as for any case it cannot extract) and ``dev-folds`` (only `dlr train` needs the folds, and it
refuses the split with the same counts). `dlr validate` reports both and exits 2.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from dlr.core.errors import InputError
from dlr.core.run_folder import patient_path, unsafe_id
from dlr.core.tables import foreign_separator, separator_problem

from .config import StudyConfig, study_config_errors
from .levels import development_levels, recode_clinical, unseen_levels
from .nifti import nonfinite_voxels
from .radiomics.harmonization import batch_problems
from .splits import folds_fit

IMAGE_SUFFIX = ".nii.gz"
#: tolerances of the mask-versus-image grid check: spacing relative, origin in voxels, direction cosines absolute
SPACING_RTOL = 1e-3
ORIGIN_VOXEL_TOL = 1e-3
DIRECTION_ATOL = 1e-4

#: every check :func:`validate_study` runs, by the name it gives ``Problem.check``
CHECKS = MappingProxyType({
    "study-yaml": "study.yaml exists, is YAML and is a valid StudyConfig (one problem per key at fault)",
    "clinical-csv": "clinical.csv exists, is a readable comma-separated CSV (not ';', tab or '|') and has at "
                    "least one patient row",
    "column-missing": "every column that study.yaml names is a column of clinical.csv",
    "patient-id-missing": "every row has a patient id",
    "duplicate-patient-id": "no patient id appears on two rows",
    "patient-id-unsafe": "no patient id holds a path separator, '..', a control character or leading or trailing "
                         "white space (an id names the patient's folders and files)",
    "outcome-value": "the outcome is 0 or 1 for every patient",
    "follow-up-value": "with time_column and event_column: every time is a number >= 0 and every event 0 or 1",
    "unknown-cohort": "every cohort value is one of study.yaml's cohorts",
    "undeclared-level": "every value of a variable with declared levels (after study.yaml's recode) is one of its "
                        "levels",
    "unseen-level": "every level of a categorical or binary CR candidate that a non-development cohort has, the "
                    "development cohort has too (after recode): a fitted model cannot score a level it never saw",
    "batch-missing": "with harmonization: every patient has a value in the batch column (harmonization.batch)",
    "unseen-batch": "with harmonization: every batch level of a non-development cohort occurs in the development "
                    "cohort (ComBat fitted there has no estimate for another)",
    "batch-too-small": "with harmonization: every batch level of the development cohort has at least 2 patients "
                       "(ComBat estimates each level's variance)",
    "dev-cohort": "the development cohort has patients of both outcome classes",
    "dev-folds": "the development cohort has at least n_folds (study.yaml, default 5) patients of each outcome, "
                 "as the stratified folds of RUN/split.csv need",
    "images-folder": "images/ (and masks/) exist when study.yaml lists phases",
    "patient-without-images": "every patient of clinical.csv has images/<patient_id>/ and masks/<patient_id>/",
    "folder-without-clinical-row": "every folder of images/, masks/ and masks_reader2/ is a patient of clinical.csv",
    "image-missing": "each patient has images/<patient_id>/<PHASE>.nii.gz for every phase",
    "image-unreadable": "each image is a readable 3D image",
    "image-not-finite": "no voxel of an image is NaN or infinite (SimpleITK would read it as 0)",
    "mask-missing": "each patient has masks/<patient_id>/<PHASE>.nii.gz for every phase",
    "mask-unreadable": "each mask is a readable 3D image",
    "mask-grid": "each mask has its image's size, spacing, origin and direction",
    "mask-empty": "each mask has at least one non-zero voxel",
    "mask-no-label-1": "each mask holds the tumour label: 1, or study.yaml's mask_label",
    "mask-other-labels": "each mask holds only 0 and 1, unless study.yaml names the tumour's label (mask_label)",
})
#: checks whose problems `dlr validate` reports but :func:`load_study` does not refuse: each
#: concerns one stage, which deals with it itself
STAGE_CHECKS = frozenset({
    "image-not-finite",  # `dlr extract`: the case fails, with the count of non-finite voxels, and the run goes on
    "dev-folds",  # `dlr train`: make_split refuses the folds with the same counts
})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a study folder.

    Attributes
    ----------
    check : str
        The check that failed, a key of :data:`CHECKS` (e.g. ``"mask-grid"``).
    file : str
        The file or folder at fault, relative to the study folder (e.g. ``masks/P001/AP.nii.gz``).
    patient_id : str or None
        The patient concerned; None for problems of the whole study (study.yaml, a missing column).
    message : str
        What is wrong, with the offending values.
    fix : str
        What would fix it.
    """

    check: str
    file: str
    patient_id: Optional[str]
    message: str
    fix: str

    def __str__(self) -> str:
        who = f" [patient {self.patient_id}]" if self.patient_id is not None else ""
        return f"{self.file}{who} {self.check}: {self.message}. Fix: {self.fix}"


def problems_frame(problems) -> pd.DataFrame:
    """The problems as a table, one row each (columns ``check, file, patient_id, message, fix``)."""
    return pd.DataFrame([asdict(p) for p in problems], columns=["check", "file", "patient_id", "message", "fix"])


#: problems shown per check in a message (the rest counted; `dlr validate --report` lists all)
PER_CHECK = 20


def shown_problems(problems, *, per_check: int = PER_CHECK, line=str) -> list[str]:
    """One line per problem (``line(problem)``), at most ``per_check`` of each check in the order
    they were found, each check's remainder as one line "... and N more like it (check)"."""
    shown, counts = [], {}
    for problem in problems:
        counts[problem.check] = counts.get(problem.check, 0) + 1
        if counts[problem.check] <= per_check:
            shown.append(line(problem))
    shown += [f"... and {n - per_check:,} more like it ({check})" for check, n in counts.items() if n > per_check]
    return shown


class StudyError(InputError):
    """A study folder with problems; the message lists them (:func:`shown_problems`: at most
    :data:`PER_CHECK` of each check, the rest counted).

    Attributes
    ----------
    problems : tuple of Problem
    """

    def __init__(self, problems, *, root=None):
        self.problems = tuple(problems)
        where = f"{root}: " if root is not None else ""
        lines = "\n".join(f"  {line}" for line in shown_problems(self.problems))
        super().__init__(f"{where}{len(self.problems)} problem(s) in the study folder:\n{lines}")


def raise_if_problems(problems, *, root=None) -> None:
    """Raise :class:`StudyError` listing ``problems`` when there are any; return None otherwise."""
    problems = list(problems)
    if problems:
        raise StudyError(problems, root=root)


@dataclass(frozen=True, eq=False)
class Study:
    """A validated study folder.

    Attributes
    ----------
    root : Path
        The study folder.
    config : StudyConfig
        Its study.yaml.
    clinical : DataFrame
        clinical.csv, one row per patient, the id and cohort columns as strings and the outcome
        as int (0/1), in file order, with study.yaml's recodes applied
        (:func:`dlr.modeling.levels.recode_clinical`).
    images, masks : mapping patient_id -> mapping phase -> Path
        ``images/<patient_id>/<PHASE>.nii.gz`` and ``masks/...`` of every patient and phase
        (empty mappings for a clinical-only study, whose config lists no phases).
    masks_reader2 : mapping patient_id -> mapping phase -> Path
        The second reader's masks, only for the patients and phases that have one.
    """

    root: Path
    config: StudyConfig
    clinical: pd.DataFrame
    images: Mapping[str, Mapping[str, Path]]
    masks: Mapping[str, Mapping[str, Path]]
    masks_reader2: Mapping[str, Mapping[str, Path]]

    @property
    def patient_ids(self) -> list[str]:
        """Patient ids in clinical.csv order."""
        return self.clinical[self.config.id_column].tolist()


# --------------------------------------------------------------------------------------------
# validation


class _Collector:
    """Problems gathered during one pass; paths are stored relative to the study folder."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []

    def add(self, check, path, patient_id, message, fix):
        if check not in CHECKS:  # a bug in this module, not bad input
            raise KeyError(f"unknown validation check {check!r}")
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            rel = str(path)
        if rel == ".":
            rel = str(self.root)
        self.problems.append(Problem(check, rel, None if patient_id is None else str(patient_id), message, fix))


def _read_config(root: Path, out: _Collector) -> Optional[StudyConfig]:
    import yaml

    path = root / "study.yaml"
    if not path.is_file():
        out.add("study-yaml", path, None, "no such file",
                "write a study.yaml naming the columns, phases and cohorts (contract section 2; "
                "`dlr synth` writes an example)")
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        out.add("study-yaml", path, None, f"not readable as YAML ({' '.join(str(exc).split())})",
                "correct the YAML syntax")
        return None
    data = {} if data is None else data
    if not isinstance(data, dict):
        out.add("study-yaml", path, None, f"holds a {type(data).__name__}, not a mapping of keys to values",
                "write study.yaml as `key: value` lines")
        return None
    config, errors = study_config_errors(data)
    for key, message in errors:
        out.add("study-yaml", path, None, f"key {key}: {message}", f"correct or remove the key {key}")
    return config


def _column_keys(config: StudyConfig) -> dict[str, str]:
    """column -> the study.yaml key that names it (the first such key)."""
    keys: dict[str, str] = {}
    for key in ("id_column", "cohort_column", "outcome_column", "scanner_column", "time_column", "event_column"):
        column = getattr(config, key)
        if column:
            keys.setdefault(column, key)
    if config.harmonization is not None:
        keys.setdefault(config.harmonization.batch, "harmonization.batch")
    for i, variable in enumerate(config.variables):
        keys.setdefault(variable.name, f"variables[{i}].name")
        if variable.reader2_column:
            keys.setdefault(variable.reader2_column, f"variables[{i}].reader2_column")
    for name, column in config.staging_columns.items():
        keys.setdefault(column, f"staging_columns.{name}")
    return keys


def _read_clinical(root: Path, config: Optional[StudyConfig], out: _Collector) -> Optional[pd.DataFrame]:
    path = root / "clinical.csv"
    if not path.is_file():
        out.add("clinical-csv", path, None, "no such file", "write clinical.csv with one row per patient")
        return None
    separator = foreign_separator(path)
    if separator is not None:
        # read with commas it would be one column, and every column check would echo its header
        out.add("clinical-csv", path, None, *separator_problem(separator))
        return None
    string_columns = {} if config is None else {config.id_column: str, config.cohort_column: str}
    try:
        frame = pd.read_csv(path, dtype=string_columns, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        out.add("clinical-csv", path, None, "the file is empty", "write a header row and one row per patient")
        return None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        out.add("clinical-csv", path, None, f"not readable as CSV ({' '.join(str(exc).split())})",
                "save it as comma-separated UTF-8 text with one header row")
        return None
    if frame.empty:
        out.add("clinical-csv", path, None, f"no patient rows (header only: {', '.join(map(str, frame.columns))})",
                "add one row per patient")
        return None
    return frame


def _raw_column(path: Path, column: str, frame: pd.DataFrame) -> pd.Series:
    """``column`` as the file spells it (clinical.csv is read skipping the spaces after each
    comma; an id's leading space would be lost), else as read."""
    try:
        raw = pd.read_csv(path, usecols=[column], dtype=str, keep_default_na=False)[column].astype("string")
    except (ValueError, OSError, pd.errors.ParserError):
        return frame[column].astype("string")
    return raw if len(raw) == len(frame) else frame[column].astype("string")


def _check_clinical(root: Path, config: StudyConfig, frame: pd.DataFrame, out: _Collector):
    """Column, id, outcome and cohort checks; returns (valid patient ids, clean frame), both None without ids."""
    path = root / "clinical.csv"
    present = set(frame.columns)
    for column, key in _column_keys(config).items():
        if column not in present:
            out.add("column-missing", path, None, f"no column {column!r} (named by study.yaml key {key})",
                    f"add the column {column!r} to clinical.csv or change {key} in study.yaml; "
                    f"the columns are {', '.join(map(str, frame.columns))}")
    id_col, cohort_col, outcome_col = config.id_column, config.cohort_column, config.outcome_column
    if id_col not in present:
        return None, None
    ids = frame[id_col].astype("string").str.strip()
    for row in np.flatnonzero((ids.isna() | (ids == "")).to_numpy()):
        out.add("patient-id-missing", path, None, f"line {row + 2} has no {id_col}",
                f"fill in {id_col} on line {row + 2} or delete the row")
    valid = ids.notna() & (ids != "")
    raw = _raw_column(path, id_col, frame)
    for row in np.flatnonzero(valid.to_numpy()):
        why = unsafe_id(raw.iat[row])
        if why is not None:
            out.add("patient-id-unsafe", path, raw.iat[row], f"{id_col} {raw.iat[row]!r} on line {row + 2}: {why}",
                    "rename the patient (letters, digits, '-' and '_' are safe) in clinical.csv and in the names of "
                    "its folders")
            valid.iat[row] = False
    counts = ids[valid].value_counts()
    for pid in counts.index[counts.to_numpy() > 1]:
        lines = [str(i + 2) for i in np.flatnonzero((ids == pid).fillna(False).to_numpy())]
        out.add("duplicate-patient-id", path, pid, f"{id_col} {pid!r} is on lines {', '.join(lines)}",
                "keep one row per patient")
    from dlr.core.tables import undeclared_levels

    for i, variable in enumerate(config.variables):
        if variable.levels and variable.name in present:
            for value, rows in undeclared_levels(frame, variable.name, variable.levels).items():
                patients = ", ".join(str(p) for p in ids[rows & valid.to_numpy()].head(5))
                out.add("undeclared-level", path, None,
                        f"{variable.name} holds {value!r} (patient(s) {patients}), which is not among its levels "
                        f"{variable.levels} (study.yaml variables[{i}].levels)",
                        f"correct those values, add {value!r} to variables[{i}].levels, or map it to one of them "
                        f"with variables[{i}].recode, e.g. recode: {{{value!r}: {variable.levels[0]!r}}}")
    outcome = None
    if outcome_col in present:
        raw = frame[outcome_col]
        outcome = pd.to_numeric(raw, errors="coerce")
        bad = ~outcome.isin([0, 1])
        for row in np.flatnonzero((bad & valid).to_numpy()):
            value = raw.iloc[row]
            shown = _shown(value)
            out.add("outcome-value", path, ids.iloc[row], f"{outcome_col} is {shown} (line {row + 2})",
                    f"code {outcome_col} as 1 (outcome, e.g. early recurrence) or 0 (none) for every patient")
    _check_follow_up(path, config, frame, ids, valid, present, out)
    if cohort_col in present:
        cohorts = frame[cohort_col].astype("string").str.strip()
        unknown = ~cohorts.isin(config.cohorts).fillna(False)
        for row in np.flatnonzero((unknown & valid).to_numpy()):
            value = cohorts.iloc[row]
            shown = _shown(value)
            out.add("unknown-cohort", path, ids.iloc[row], f"{cohort_col} is {shown} (line {row + 2})",
                    f"use one of the cohorts {config.cohorts} or add the name to cohorts in study.yaml")
        if outcome is not None:
            dev = (cohorts == config.dev_cohort).fillna(False) & valid & outcome.isin([0, 1])
            classes = sorted(outcome[dev].astype(int).unique())
            if len(classes) < 2:
                found = "no patients" if not dev.any() else f"only outcome {classes[0]} ({int(dev.sum())} patients)"
                out.add("dev-cohort", path, None,
                        f"the development cohort {config.dev_cohort!r} has {found}",
                        f"the development cohort needs patients with {outcome_col} 0 and 1; check the "
                        f"{cohort_col} column or dev_cohort in study.yaml")
            else:
                unknown = int(((cohorts == config.dev_cohort).fillna(False) & valid & ~outcome.isin([0, 1])).sum())
                _check_folds(path, config, int((outcome[dev] == 1).sum()), int((outcome[dev] == 0).sum()), unknown,
                             out)
    if cohort_col in present:
        with_ids = frame[valid.to_numpy(dtype=bool)].assign(**{id_col: ids[valid]})
        _check_unseen_levels(path, config, with_ids, out)
        for problem in batch_problems(with_ids, config):
            out.add(problem.check, path, None, problem.message, problem.fix)
    clean = frame.copy()
    clean[id_col] = ids
    if cohort_col in present:
        clean[cohort_col] = frame[cohort_col].astype("string").str.strip().astype(object)
    if outcome is not None and outcome.isin([0, 1]).all():
        clean[outcome_col] = outcome.astype(int)
    clean[id_col] = clean[id_col].astype(object)
    return list(dict.fromkeys(ids[valid].tolist())), clean


def _check_unseen_levels(path: Path, config: StudyConfig, frame: pd.DataFrame, out: _Collector) -> None:
    """The unseen-level check (:func:`dlr.modeling.levels.unseen_levels`) on the patients with an id;
    not run when the development cohort has no patient (the dev-cohort check says so)."""
    if not (frame[config.cohort_column].astype("string").str.strip() == config.dev_cohort).any():
        return
    for unseen in unseen_levels(frame, config, development_levels(frame, config)):
        out.add("unseen-level", path, None, unseen.message, unseen.fix)


def _check_follow_up(path: Path, config: StudyConfig, frame: pd.DataFrame, ids, valid, present, out: _Collector):
    """time_column >= 0 and finite, event_column 0/1, for every patient (the survival analysis of
    `dlr run`, contract 5.1, would stop on them after the models were trained)."""
    for column, key, good, fix in (
            (config.time_column, "time_column", lambda v: np.isfinite(v) & (v >= 0),
             "give the time to recurrence or censoring, a number >= 0 (e.g. months), for every patient"),
            (config.event_column, "event_column", lambda v: np.isin(v, (0.0, 1.0)),
             "code the event as 1 (recurrence) or 0 (censored) for every patient")):
        if not column or column not in present:
            continue
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(~good(values) & valid.to_numpy()):
            out.add("follow-up-value", path, ids.iloc[row], f"{column} ({key}) is {_shown(raw.iloc[row])} "
                    f"(line {row + 2})", fix)


def _check_folds(path: Path, config: StudyConfig, n_events: int, n_non_events: int, unknown: int,
                 out: _Collector) -> None:
    """The dev-folds check: :func:`dlr.modeling.splits.folds_fit`, the rule `dlr train`'s split applies.

    ``unknown`` development patients have an outcome other than 0/1 (reported on their own):
    the check fails only if the folds would not fit whichever outcome they turn out to have.
    """
    k = config.n_folds
    if any(folds_fit(n_events + a, n_non_events + unknown - a, k) for a in range(unknown + 1)):
        return
    outcome = config.outcome_column
    given = "study.yaml n_folds" if "n_folds" in config.model_fields_set else "the default n_folds"
    # the most folds any outcome of the unknown patients could fill
    largest = min(n_events + unknown, n_non_events + unknown, (n_events + n_non_events + unknown) // 2)
    fix = (f"set `n_folds: {largest}` in study.yaml (fewer folds), or add development patients" if largest >= 2 else
           f"add development patients: even 2 folds need 2 patients with {outcome} 1 and 2 with {outcome} 0")
    out.add("dev-folds", path, None,
            f"the development cohort {config.dev_cohort!r} has {n_events} patient(s) with {outcome} 1 and "
            f"{n_non_events} with {outcome} 0, but its {k} stratified folds ({given}) need at least {k} of each: "
            "`dlr train` would refuse to split it", fix)


def _shown(value) -> str:
    if pd.isna(value):
        return "missing"
    return repr(value) if isinstance(value, str) else str(value)


def _folders(path: Path) -> list[str]:
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _header(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def _grid(info) -> tuple:
    return (tuple(info.GetSize()), tuple(info.GetSpacing()), tuple(info.GetOrigin()), tuple(info.GetDirection()))


def _grid_mismatch(image_grid, mask_grid) -> list[str]:
    (isize, ispacing, iorigin, idirection), (msize, mspacing, morigin, mdirection) = image_grid, mask_grid
    what = []
    if isize != msize:
        return [f"size {msize} != image {isize}"]
    ispacing, mspacing = np.asarray(ispacing), np.asarray(mspacing)
    if not np.allclose(mspacing, ispacing, rtol=SPACING_RTOL, atol=0):
        what.append(f"spacing {tuple(mspacing)} != image {tuple(ispacing)}")
    if np.any(np.abs(np.subtract(morigin, iorigin)) > ORIGIN_VOXEL_TOL * ispacing):
        what.append(f"origin {tuple(morigin)} != image {tuple(iorigin)}")
    if np.any(np.abs(np.subtract(mdirection, idirection)) > DIRECTION_ATOL):
        what.append(f"direction {tuple(np.round(mdirection, 6))} != image {tuple(np.round(idirection, 6))}")
    return what


def _others(folder: Path, name: str) -> str:
    """A hint naming the files that are in the folder instead of ``name``."""
    if not folder.is_dir():
        return ""
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name != name)
    return f" (the folder holds: {', '.join(files)})" if files else " (the folder is empty)"


def _check_image(path: Path, pid: str, phase: str, out: _Collector):
    """Header checks of one image, and its non-finite voxels (floating-point images); its grid,
    or None when it is missing or unreadable."""
    if not path.is_file():
        out.add("image-missing", path, pid, f"no {phase} image{_others(path.parent, path.name)}",
                f"write the {phase} image as images/{pid}/{path.name} "
                "(`dlr import-dicom` converts DICOM series)")
        return None
    try:
        info = _header(path)
    except RuntimeError as exc:
        out.add("image-unreadable", path, pid, f"not a readable image ({_first_line(exc)})",
                "rewrite it as a NIfTI file (.nii.gz)")
        return None
    if info.GetDimension() != 3:
        out.add("image-unreadable", path, pid, f"a {info.GetDimension()}D image, not 3D",
                "write one 3D volume per phase")
        return None
    bad = nonfinite_voxels(path)
    if bad is not None and bad.count:
        out.add("image-not-finite", path, pid, f"{bad.describe()} in the {phase} image; SimpleITK reads them as 0, "
                "which would enter the intensity normalisation and the features",
                f"replace them in images/{pid}/{path.name} with real intensities (e.g. the background value) and "
                "save it again, or re-export the image from its source")
    return _grid(info)


def _first_line(exc) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _check_mask(path: Path, pid: str, phase: str, image_grid, out: _Collector, *, check_images: bool,
                required: bool = True, label: int = 1, label_given: bool = False) -> None:
    """Checks of one mask: present, readable, on its image's grid (when known), holding the
    tumour ``label`` and, unless study.yaml gave the label (``label_given``), no label but 0 and 1."""
    import SimpleITK as sitk

    if not path.is_file():
        if required:
            out.add("mask-missing", path, pid, f"no {phase} mask{_others(path.parent, path.name)}",
                    f"write the tumour mask of the {phase} image (label {label} = tumour) as "
                    f"{path.parent.parent.name}/{pid}/{path.name}")
        return
    if not check_images:
        return
    try:
        mask = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        out.add("mask-unreadable", path, pid, f"not a readable image ({_first_line(exc)})",
                "rewrite it as a NIfTI file (.nii.gz)")
        return
    if mask.GetDimension() != 3 or mask.GetNumberOfComponentsPerPixel() != 1:
        out.add("mask-unreadable", path, pid,
                f"a {mask.GetDimension()}D image with {mask.GetNumberOfComponentsPerPixel()} component(s), "
                "not a 3D label image", "write one 3D label volume per phase")
        return
    if image_grid is not None:
        mismatch = _grid_mismatch(image_grid, _grid(mask))
        if mismatch:
            out.add("mask-grid", path, pid, f"the mask is not on the grid of its {phase} image: {'; '.join(mismatch)}",
                    f"resample the mask onto images/{pid}/{phase}{IMAGE_SUFFIX} (nearest neighbour) or "
                    "re-export it from the segmentation tool against that image")
    voxels = sitk.GetArrayViewFromImage(mask)
    if not voxels.any():
        out.add("mask-empty", path, pid, "the mask has no non-zero voxel", f"segment the tumour (label {label})")
        return
    labels, counts = np.unique(voxels, return_counts=True)
    shown = ", ".join(f"{v:g}" for v in labels[:10]) + (", ..." if len(labels) > 10 else "")
    if not (voxels == label).any():
        where = "study.yaml's mask_label" if label_given else "the tumour label"
        out.add("mask-no-label-1", path, pid, f"no voxel has label {label}, {where} (labels: {shown})",
                f"relabel the tumour as {label}" + ("" if label_given else " (contract section 2)") +
                ", or set `mask_label` in study.yaml to the tumour's label")
    elif not label_given:
        other = (labels != 0) & (labels != label)
        if other.any():
            listed = ", ".join(f"{v:g} ({int(n)} voxel{'s' if n != 1 else ''})"
                               for v, n in list(zip(labels[other], counts[other]))[:10])
            more = ", ..." if int(other.sum()) > 10 else ""
            out.add("mask-other-labels", path, pid,
                    f"the mask holds label(s) {listed}{more} besides 0 and the tumour label {label} "
                    f"({int((voxels == label).sum())} voxels); dlr would use label {label} alone as the tumour",
                    f"relabel the mask so that it holds only 0 and {label} (tumour), or set `mask_label: N` in "
                    "study.yaml to name the tumour's label (the other labels are then ignored)")


def _check_images(root: Path, config: StudyConfig, patient_ids: list[str], out: _Collector, *,
                  check_images: bool):
    """Image and mask checks; returns the images, masks and reader-2 masks found."""
    images: dict[str, dict[str, Path]] = {}
    masks: dict[str, dict[str, Path]] = {}
    reader2: dict[str, dict[str, Path]] = {}
    if not config.phases:
        return images, masks, reader2
    known = set(patient_ids)
    labels = {"label": config.mask_label, "label_given": "mask_label" in config.model_fields_set}
    image_root, mask_root, reader2_root = root / "images", root / "masks", root / "masks_reader2"
    for folder, what in ((image_root, "images"), (mask_root, "masks")):
        if not folder.is_dir():
            out.add("images-folder", folder, None, f"no {what}/ folder, but study.yaml lists phases {config.phases}",
                    f"add {what}/<patient_id>/<PHASE>{IMAGE_SUFFIX}, or set `phases: []` in study.yaml "
                    "for a clinical-only study")
    for folder in (image_root, mask_root, reader2_root):
        for name in _folders(folder):
            if name not in known:
                out.add("folder-without-clinical-row", folder / name, name,
                        f"a folder for patient {name!r}, who has no row in clinical.csv",
                        f"add a row for {name!r} to clinical.csv or remove the folder")
    for pid in patient_ids:
        for folder in (image_root, mask_root):
            if folder.is_dir() and not (folder / pid).is_dir():
                out.add("patient-without-images", folder / pid, pid,
                        f"patient {pid!r} of clinical.csv has no folder {folder.name}/{pid}/",
                        f"add {folder.name}/{pid}/<PHASE>{IMAGE_SUFFIX} for the phases {config.phases}, "
                        "or remove the patient's row from clinical.csv")
        for phase in config.phases:
            image = patient_path(image_root, pid, f"{phase}{IMAGE_SUFFIX}")
            mask = patient_path(mask_root, pid, f"{phase}{IMAGE_SUFFIX}")
            grid = None
            if (image_root / pid).is_dir():
                grid = _check_image(image, pid, phase, out) if check_images or not image.is_file() else None
                images.setdefault(pid, {})[phase] = image
            if (mask_root / pid).is_dir():
                _check_mask(mask, pid, phase, grid, out, check_images=check_images, **labels)
                masks.setdefault(pid, {})[phase] = mask
            second = patient_path(reader2_root, pid, f"{phase}{IMAGE_SUFFIX}")
            if second.is_file():
                _check_mask(second, pid, phase, grid, out, check_images=check_images, required=False, **labels)
                reader2.setdefault(pid, {})[phase] = second
    for pid in _folders(reader2_root):
        if pid in known and pid not in reader2:
            folder = reader2_root / pid
            out.add("mask-missing", folder, pid,
                    f"the second reader's folder has no mask of any phase {config.phases}{_others(folder, '')}",
                    f"name the masks <PHASE>{IMAGE_SUFFIX} with PHASE one of {config.phases}, or remove the folder")
    return images, masks, reader2


#: the checks of a study's own development cohort, which a study scored by a frozen model
#: (`dlr predict`, ``load_study(..., external=True)``) does not need: the bundle's development
#: cohort stands in, and `dlr predict` checks the study's levels and batches against it
DEVELOPMENT_CHECKS = frozenset({"unseen-level", "unseen-batch", "batch-too-small", "dev-cohort", "dev-folds"})


def _inspect(path, *, check_images: bool, external: bool = False):
    root = Path(path)
    out = _Collector(root)
    if not root.is_dir():
        out.add("study-yaml", root, None, "no such study folder",
                "give the folder that holds study.yaml, clinical.csv, images/ and masks/")
        return out.problems, None
    config = _read_config(root, out)
    frame = _read_clinical(root, config, out)
    if config is None or frame is None:
        # the remaining checks need the config's column names and phases and the patient list
        return out.problems, None
    frame = recode_clinical(frame, config)  # before any check: every stage sees the declared levels
    patient_ids, clean = _check_clinical(root, config, frame, out)
    if patient_ids is None:
        # without the id column no folder can be matched to a patient
        return out.problems, None
    images, masks, reader2 = _check_images(root, config, patient_ids, out, check_images=check_images)
    if external:
        out.problems[:] = [p for p in out.problems if p.check not in DEVELOPMENT_CHECKS]
    study = None
    if all(p.check in STAGE_CHECKS for p in out.problems):
        frozen = lambda d: MappingProxyType({k: MappingProxyType(v) for k, v in d.items()})  # noqa: E731
        study = Study(root=root, config=config, clinical=clean.reset_index(drop=True), images=frozen(images),
                      masks=frozen(masks), masks_reader2=frozen(reader2))
    return out.problems, study


def validate_study(path, *, check_images: bool = True) -> list[Problem]:
    """Every problem of a study folder, found in one pass.

    Parameters
    ----------
    path : str or Path
        The study folder (contract section 2).
    check_images : bool, default True
        Read the image headers and the mask voxels. False checks only that the files exist,
        which is fast for a large study.

    Returns
    -------
    list of Problem
        Empty for a valid study. Ordered as found: study.yaml, clinical.csv, then per patient
        and phase.

    Notes
    -----
    The checks are listed in :data:`CHECKS`. Images are read header-only
    (``SimpleITK.ImageFileReader.ReadImageInformation``), floating-point ones also voxel by
    voxel from the file for NaN and infinity (:func:`dlr.modeling.nifti.nonfinite_voxels`); masks
    are read whole. A mask matches
    its image when the sizes are equal, the spacings agree to a relative 1e-3, the origins to
    1e-3 of a voxel and the direction cosines to 1e-4. When study.yaml or clinical.csv cannot
    be read, the checks that depend on them (columns, patients, images) are not run: fix the
    reported problems and validate again. A study whose config lists no phases is
    clinical-only and needs no image folders.
    """
    problems, _ = _inspect(path, check_images=check_images)
    return problems


def load_study(path, *, check_images: bool = True, external: bool = False) -> Study:
    """Validate a study folder and return it.

    Parameters
    ----------
    path : str or Path
        The study folder.
    check_images : bool, default True
        As in :func:`validate_study`.
    external : bool, default False
        A study to be scored by a frozen model (`dlr predict`): the checks of its own
        development cohort (:data:`DEVELOPMENT_CHECKS`) are left out.

    Returns
    -------
    Study

    Raises
    ------
    StudyError
        Listing every problem :func:`validate_study` finds, when any is not of the
        :data:`STAGE_CHECKS` (non-finite voxels, too few development patients for the folds):
        those alone do not stop loading, since the stage they concern deals with them (`dlr
        extract` fails the case, `dlr train` refuses the split); `dlr validate` reports them.
    """
    problems, study = _inspect(path, check_images=check_images, external=external)
    if study is None:
        raise_if_problems(problems, root=path)
    return study
