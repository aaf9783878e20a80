"""The reviewer package of a run (contract section 7): `dlr package RUN --out FILE.zip`, `dlr verify FILE.zip`.

A package is one zip that lets a reviewer check every number of a study without its patients'
data. It holds the study's ``study.yaml``, the split, the settings and seeds of every stage, the
environment (``environment.json``, ``requirements-lock.txt``), the SHA-256 of every input
(``checksums.csv``; the files themselves are not packaged), the de-identified features and
predictions, the models' tables, the results (CSVs, ``results.json``, figures), the report, a
``MANIFEST.csv`` (every member with its SHA-256) and a generated ``REPRODUCE.md``.

De-identification
    Patient ids are replaced by pseudonyms ``P0001``, ``P0002``, ... assigned in the sorted
    order of the original ids (as strings, the order in which the analysis sorts them), so
    every table keeps its row order and every bootstrap resample draws the same patients: the
    analysis recomputed from the package is identical to the run's. The same pseudonym replaces
    a patient in every file: the ``patient_id`` column (and study.yaml's ``id_column``) of each
    CSV, the keys of JSON mappings over patients (``models/parameters.json`` folds) and, for
    ids that cannot be mistaken for a number (at least 3 characters, not numeric), any
    whole-word occurrence in text, JSON strings and file names. The mapping is not packaged;
    nor is ``clinical.csv``, an image or a mask (their SHA-256s are). No DICOM header field
    reaches a run (``modeling.dicom``), so none reaches the package.
Paths
    The run and study folders, the home folder and the host name are replaced by ``<run>``,
    ``<study>``, ``<home>`` and ``<host>`` in every text member (CSV, JSON, YAML, log, HTML,
    SVG, Markdown and the XML inside a DOCX), including the names by which they were given on
    the command line; any other absolute path becomes ``<path>/<its last name>``. Afterwards
    every member is searched for the absolute paths of the run, the study and the home folder
    and for the original ids; one found is an internal error and no package is written.
Self-verification
    Before the zip is written, the analysis is recomputed from the pseudonymised predictions
    with the settings and seed that ``results/results.json`` records (:func:`verify_package`'s
    check, on the staged folder) and must equal the run's results number for number. The zip is
    written under a temporary name beside ``FILE.zip`` and moved into place only then.

:func:`verify_package` opens a package, checks each member against ``MANIFEST.csv``,
recomputes the analysis into a temporary folder and compares every CSV of ``results/`` cell by
cell (numbers exactly, NaN equal to NaN; text equal) and every numeric leaf of
``results.json`` outside its provenance, listing each difference by file, row and column.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from dlr.core.errors import InputError
from dlr.core.output import staged_file
from dlr.core.progress import Progress, say as _say
from dlr.core.run_folder import OOF_PREDICTIONS, PREDICTIONS, RESULTS_DIR, SPLIT

PACKAGE_FORMAT = "dlr-package"
PACKAGE_FORMAT_VERSION = 1
MANIFEST = "MANIFEST.csv"
RESULTS = RESULTS_DIR
RESULTS_JSON = f"{RESULTS}/results.json"
DIFFERENCE_COLUMNS = ["file", "row", "column", "packaged", "recomputed", "key"]
#: the run's files and folders that are packaged (features: its tables, not its cache)
RUN_FILES = (SPLIT, PREDICTIONS, OOF_PREDICTIONS, "provenance.json", "run.log")
RUN_FOLDERS = ("features", "models", "clinical", "staging", RESULTS, "report", "stages")
#: never packaged: caches, the stages' memo of absolute paths, the study copy of `dlr demo`
SKIPPED_PARTS = ("cache",)
SKIPPED_FILES = ("stages/file_hashes.json",)
#: members packaged by type; anything else (model weights, images) is left out and listed
TEXT_SUFFIXES = (".csv", ".tsv", ".json", ".yaml", ".yml", ".txt", ".md", ".log", ".html", ".htm", ".css",
                 ".js", ".svg", ".qmd", ".xml", ".tex", ".bib")
BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".pdf")
ZIP_SUFFIXES = (".docx", ".xlsx", ".pptx")
ID_COLUMNS = ("patient_id",)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same run gives the same zip bytes


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PackageResult:
    """The reviewer package written by :func:`package_run`.

    Attributes
    ----------
    path : Path
        The zip file.
    n_files : int
        Members of the zip.
    files : tuple of str
        Their names, sorted (``MANIFEST.csv`` among them).
    pseudonymised : int
        Patients whose ids were replaced by pseudonyms.
    size : int
        Bytes of the zip.
    n_numbers : int
        Numbers recomputed and found equal by the self-verification.
    left_out : tuple of str
        The run's files that were not packaged (caches, model weights, files of unknown type),
        relative to the run folder.
    """

    path: Path
    n_files: int
    files: tuple
    pseudonymised: int
    size: int = 0
    n_numbers: int = 0
    left_out: tuple = ()


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_package` found.

    Attributes
    ----------
    identical : bool
        True when no difference was found (every member matches ``MANIFEST.csv`` and every
        recomputed number equals the packaged one).
    differences : DataFrame
        One row per difference: ``file`` (the member, e.g. ``results/performance.csv``),
        ``row`` (for a CSV the line of the file, the header being line 1, as a spreadsheet
        numbers it; for results.json the path of the value's parent, e.g. ``performance[3]``;
        ``-`` for the whole file), ``column`` (the CSV column or JSON key; ``<sha256>`` for a
        member that differs from MANIFEST.csv, ``<file>``, ``<row>`` or ``<column>`` for one
        present on one side only), ``packaged`` and ``recomputed`` (as written), and ``key``
        (the row's text cells, e.g. ``model=CR, cohort=validation``).
    checked : tuple of str
        The members compared with the recomputation.
    n_numbers : int
        Numbers compared.
    settings : dict
        The analysis settings used for the recomputation (from ``results/results.json``).
    """

    identical: bool
    differences: pd.DataFrame
    checked: tuple
    n_numbers: int
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.differences.copy()

    def lines(self) -> list:
        """Each difference as ``file, row R, column C: packaged -> recomputed``."""
        return [f"{d.file}, row {d.row}, column {d.column}: {d.packaged} -> {d.recomputed}"
                for d in self.differences.itertuples()]


def _difference(file, row, column, packaged, recomputed, key="") -> dict:
    return {"file": file, "row": row, "column": column, "packaged": packaged, "recomputed": recomputed, "key": key}


# --------------------------------------------------------------------------------------------
# Scrubbing paths and patient ids


_DATA_URI = re.compile(r"data:[\w.+/-]*;base64,[A-Za-z0-9+/=\s]*")
_FILE_URI = re.compile(r"file://(?:localhost)?(/[^\s\"'<>)]*)")
# an absolute POSIX path of at least two names; not after a word, a dot, ':' or '/' (URLs,
# units such as mg/dL, fractions) nor '<' (closing HTML tags)
_POSIX_PATH = re.compile(r"(?<![\w.~:/\\<>*-])/(?:[\w.~+@%$-]+/)+[\w.~+@%$-]*")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\\\s\"'<>|:*?]+\\)*[^\\\s\"'<>|:*?]*")
_WORD = re.compile(r"[\w-]+")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _distinctive(patient_id: str) -> bool:
    """Whether an id can be replaced wherever it occurs as a word (not a number, not tiny)."""
    return len(patient_id) >= 3 and not _is_number(patient_id)


class Scrubber:
    """Replaces the machine's paths and the patients' ids in text.

    Parameters
    ----------
    roots : list of (absolute path, label)
        Folders replaced by their label wherever they occur (``<run>``, ``<study>``, ``<home>``).
    aliases : list of (relative path, label)
        Names by which those folders were given (e.g. ``runs/demo``): replaced where a path
        continues after them (``runs/demo/predictions.csv``), and, in ``loose`` mode (logs,
        command lines), also as a whole word when they hold a separator (``runs/demo``; a bare
        ``run`` would take the word for the folder).
    ids : mapping original id -> pseudonym
    hostname : str, optional
    """

    def __init__(self, roots=(), aliases=(), ids=None, hostname: str | None = None):
        self.ids = dict(ids or {})
        roots = sorted({(str(p), label) for p, label in roots if str(p) not in ("", "/", ".")},
                       key=lambda item: -len(item[0]))
        self._roots = [(re.compile(re.escape(p) + r"(?=[\\/]|$|[^\w.-])"), label) for p, label in roots]
        aliases = sorted({(a.rstrip("/\\"), label) for a, label in aliases
                          if a.rstrip("/\\") not in ("", ".", "..")}, key=lambda item: -len(item[0]))
        self._aliases = [(re.compile(r"(?<![\w.~/\\<>-])" + re.escape(a) + r"(?=[\\/])"), label)
                         for a, label in aliases]
        self._loose = [(re.compile(r"(?<![\w.~/\\<>-])" + re.escape(a) + r"(?![\w.~/\\-])"), label)
                       for a, label in aliases if "/" in a or "\\" in a]
        self.hostname = hostname if hostname and len(hostname) >= 4 and hostname != "localhost" else None
        self._host = re.compile(r"(?<![\w.-])" + re.escape(self.hostname) + r"(?![\w-])") if self.hostname else None
        word_ids = {k: v for k, v in self.ids.items() if _distinctive(k) and _WORD.fullmatch(k)}
        other = sorted((k for k in self.ids if _distinctive(k) and not _WORD.fullmatch(k)), key=len, reverse=True)
        self._word_ids = word_ids
        self._other_ids = (re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, other)) + r")(?![\w-])")
                           if other else None)
        self._needles = [p for p, _ in roots] + [a for a, _ in aliases] + ([self.hostname] if self.hostname else [])

    # ------------------------------------------------------------------ paths
    def _paths(self, text: str, loose: bool) -> str:
        if "/" not in text and "\\" not in text and not any(n in text for n in self._needles):
            return text
        for pattern, label in self._roots:
            text = pattern.sub(lambda m, lb=label: lb, text)
        for pattern, label in self._aliases:
            text = pattern.sub(lambda m, lb=label: lb, text)
        if loose:
            for pattern, label in self._loose:
                text = pattern.sub(lambda m, lb=label: lb, text)
        text = _FILE_URI.sub(lambda m: "file://" + _generic(m.group(1)), text)
        text = _POSIX_PATH.sub(lambda m: _generic(m.group(0)), text)
        text = _WINDOWS_PATH.sub(lambda m: _generic(m.group(0), sep="\\"), text)
        if self._host is not None:
            text = self._host.sub("<host>", text)
        return text

    # ------------------------------------------------------------------ ids
    def _ids(self, text: str) -> str:
        if self._word_ids:
            text = _WORD.sub(lambda m: self._word_ids.get(m.group(0), m.group(0)), text)
        if self._other_ids is not None:
            text = self._other_ids.sub(lambda m: self.ids[m.group(1)], text)
        return text

    def text(self, text: str, *, loose: bool = False) -> str:
        """``text`` with paths and distinctive ids replaced (base64 data URIs untouched)."""
        if not text:
            return text
        parts, last = [], 0
        for match in _DATA_URI.finditer(text):
            parts.append(self._ids(self._paths(text[last:match.start()], loose)))
            parts.append(match.group(0))
            last = match.end()
        parts.append(self._ids(self._paths(text[last:], loose)))
        return "".join(parts)

    def cell(self, value: str) -> str:
        """A CSV cell: numbers as they are, text scrubbed."""
        if not value or _is_number(value):
            return value
        return self.text(value)

    def name(self, relative: str) -> str:
        """A file name relative to a folder: each part that is an id replaced, then scrubbed."""
        parts = [self.ids.get(p, p) for p in re.split(r"([\\/])", relative)]
        return self.text("".join(parts))

    def json(self, value, *, loose: bool = False, key: str | None = None):
        """A parsed JSON value, scrubbed: strings as text; a mapping whose keys are all patient
        ids (or a list of ids) mapped exactly; a value under an id key mapped exactly."""
        if isinstance(value, dict):
            keys = list(value)
            all_ids = len(keys) >= 2 and all(k in self.ids for k in keys)
            out = {}
            for k, v in value.items():
                new_key = self.ids[k] if (all_ids or (k in self.ids and _distinctive(k))) else self.text(k)
                out[new_key] = self.json(v, loose=loose or k == "command", key=k)
            return out
        if isinstance(value, list):
            if len(value) >= 2 and all(isinstance(v, str) and v in self.ids for v in value):
                return [self.ids[v] for v in value]
            return [self.json(v, loose=loose, key=key) for v in value]
        if isinstance(value, str):
            if key in ID_COLUMNS and value in self.ids:
                return self.ids[value]
            return self.text(value, loose=loose)
        return value


def _generic(path: str, sep: str = "/") -> str:
    """An absolute path of another folder: ``<path>/<last name>``."""
    name = [p for p in path.split(sep) if p]
    return f"<path>{sep}{name[-1]}" if name else "<path>"


# --------------------------------------------------------------------------------------------
# Member transforms


def _csv_text(data: bytes, scrub: Scrubber, id_columns) -> bytes:
    """A CSV with its id columns pseudonymised and its text cells scrubbed; other cells as written."""
    text = data.decode("utf-8", errors="surrogateescape")
    newline = "\r\n" if "\r\n" in text[:65536] else "\n"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return data
    header = rows[0]
    ids = {i for i, name in enumerate(header) if name.strip() in id_columns}
    out = [[scrub.cell(c) for c in header]]
    for row in rows[1:]:
        out.append([scrub.ids.get(c.strip(), c) if i in ids else scrub.cell(c) for i, c in enumerate(row)])
    if out == rows:
        return data
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=newline).writerows(out)
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")


def _json_text(data: bytes, scrub: Scrubber) -> bytes:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _plain_text(data, scrub)
    cleaned = scrub.json(document)
    if cleaned == document:
        return data
    return (json.dumps(cleaned, indent=1, allow_nan=True, ensure_ascii=False) + "\n").encode("utf-8")


def _plain_text(data: bytes, scrub: Scrubber, *, loose: bool = False) -> bytes:
    text = data.decode("utf-8", errors="surrogateescape")
    cleaned = scrub.text(text, loose=loose)
    return data if cleaned == text else cleaned.encode("utf-8", errors="surrogateescape")


_DOCX_PERSON = re.compile(r"(<(dc:creator|cp:lastModifiedBy)>)[^<]*(</\2>)")


def _office_zip(data: bytes, scrub: Scrubber, id_columns) -> bytes:
    """A DOCX (a zip of XML): each text member scrubbed, the author fields emptied."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith((".xml", ".rels", ".txt", ".html")):
                if info.filename == "docProps/core.xml":
                    content = _DOCX_PERSON.sub(r"\1dlr\3", content.decode("utf-8", errors="surrogateescape")).encode(
                        "utf-8", errors="surrogateescape")
                content = _plain_text(content, scrub)
            target.writestr(info, content)
    return buffer.getvalue()


def _transform(name: str, data: bytes, scrub: Scrubber, id_columns) -> bytes:
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _csv_text(data, scrub, id_columns) if suffix == ".csv" else _plain_text(data, scrub)
    if suffix == ".json":
        return _json_text(data, scrub)
    if suffix in ZIP_SUFFIXES:
        return _office_zip(data, scrub, id_columns)
    if suffix in BINARY_SUFFIXES:
        return data
    return _plain_text(data, scrub, loose=suffix == ".log")


# --------------------------------------------------------------------------------------------
# Reading a run


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc}); {what}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object; {what}")
    return value


def _check_run(run: Path) -> dict:
    """``run.json`` of a run folder of this dlr (InputError naming the file otherwise)."""
    from .stages import check_run_folder

    info = None
    if run.is_dir() and (run / "run.json").is_file():
        info = check_run_folder(run, creating=False)  # the format and its version
    elif not run.is_dir():
        raise InputError(f"{run}: no such run folder; give the folder written by `dlr run STUDY --out RUN`")
    if info is None:
        raise InputError(f"{run / 'run.json'}: missing, so {run} is not a run folder of this dlr (a run from an "
                         f"older version, or another folder); make one with `dlr run STUDY --out {run}`")
    return info


def _study_yaml(run: Path) -> Path:
    for candidate in (run / "inputs" / "study.yaml", run / "study" / "study.yaml"):
        if candidate.is_file():
            return candidate
    raise InputError(f"{run / 'inputs' / 'study.yaml'}: missing (the copy of the study's study.yaml that "
                     f"`dlr run` writes); rerun `dlr run STUDY --out {run}`")


def _require(run: Path, rel: str, fix: str) -> Path:
    path = run / rel
    if not path.is_file():
        raise InputError(f"{path}: missing; {fix}")
    return path


def _id_columns(study_yaml: Path) -> tuple:
    import yaml

    try:
        config = yaml.safe_load(study_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    column = config.get("id_column") if isinstance(config, dict) else None
    return tuple(dict.fromkeys([*ID_COLUMNS, *([str(column)] if column else [])]))


def _run_members(run: Path) -> tuple[list, list]:
    """(members to package, what is left out), relative to the run folder, sorted; a skipped
    folder (a cache) is listed once with its number of files."""
    members, left_out, skipped_folders = [], [], {}
    candidates = [run / name for name in RUN_FILES]
    for folder in RUN_FOLDERS:
        if (run / folder).is_dir():
            candidates += sorted(p for p in (run / folder).rglob("*") if p.is_file())
    for path in candidates:
        if not path.is_file():
            continue
        rel = path.relative_to(run).as_posix()
        parts = rel.split("/")
        skipped = next((k for k, p in enumerate(parts[:-1]) if p in SKIPPED_PARTS or p.startswith(".")), None)
        if skipped is not None:
            folder = "/".join(parts[:skipped + 1]) + "/"
            skipped_folders[folder] = skipped_folders.get(folder, 0) + 1
        elif parts[-1].startswith(".") or rel in SKIPPED_FILES or ".tmp" in path.name:
            left_out.append(rel)
        elif path.suffix.lower() in TEXT_SUFFIXES + BINARY_SUFFIXES + ZIP_SUFFIXES:
            members.append(rel)
        else:
            left_out.append(rel)
    left_out += [f"{folder} ({n} file{'s' if n != 1 else ''})" for folder, n in skipped_folders.items()]
    for path in sorted(run.iterdir()):
        rel = path.name
        if path.is_file() and rel not in RUN_FILES and rel != "run.json":
            left_out.append(rel)
        elif path.is_dir() and rel not in (*RUN_FOLDERS, "inputs") and not rel.startswith("."):
            # inputs/: its study.yaml is the package's, its checksums go to checksums.csv
            left_out.append(f"{rel}/")
    return sorted(set(members)), sorted(set(left_out))


def _patient_ids(run: Path, members, id_columns, study: Path | None) -> list:
    """Every patient id of the run: in an id column of a packaged CSV (stripped, as the analysis
    reads them), and the ``<id>`` of the study's ``images/<id>/...`` and ``masks*/<id>/...``
    files that ``inputs/checksums.csv`` and the study's provenance files name."""
    ids = set()
    for rel in members:
        if not rel.endswith(".csv"):
            continue
        with open(run / rel, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            columns = [i for i, name in enumerate(header) if name.strip() in id_columns]
            if not columns:
                continue
            for row in reader:
                for i in columns:
                    if i < len(row) and row[i].strip():
                        ids.add(row[i].strip())
    names = []
    table = run / "inputs" / "checksums.csv"
    if table.is_file():
        with open(table, newline="") as handle:
            names += [r.get("file") or "" for r in csv.DictReader(handle)]
    if study is not None and study.is_dir():
        for path in study.glob("*/provenance.json"):
            try:
                names += [f"{path.parent.name}/{n}" for n in (json.loads(path.read_text()).get("artefacts") or {})]
            except (OSError, ValueError, AttributeError):
                continue
    for name in names:
        parts = re.split(r"[\\/]", name)
        if len(parts) >= 3 and (parts[0] == "images" or parts[0].startswith("masks")) and parts[1]:
            ids.add(parts[1])
    return sorted(ids)


def pseudonyms(ids) -> dict:
    """``{id: "P0001", ...}`` in the sorted order of the ids (at least 4 digits, more when needed)."""
    ids = sorted(set(map(str, ids)))
    width = max(4, len(str(len(ids))))
    return {original: f"P{k:0{width}d}" for k, original in enumerate(ids, 1)}


def _path_variants(path) -> list:
    path = Path(path)
    out = {str(path.absolute()), os.path.abspath(path)}
    try:
        out.add(str(path.resolve()))
    except OSError:
        pass
    return [p for p in out if p]


def _aliases(folder: Path, label: str, strings) -> list:
    """Relative names of ``folder``: as seen from the working directory, and the prefixes of
    recorded paths that end with a file of the folder (``runs/demo/predictions.csv``)."""
    out = []
    with_cwd = os.path.relpath(folder.absolute(), os.getcwd())
    out.append((with_cwd, label))
    for s in strings:
        s = str(s)
        if "/" not in s and "\\" not in s or os.path.isabs(s):
            continue
        parts = re.split(r"[\\/]", s)
        for k in range(1, len(parts)):
            if (folder / Path(*parts[k:])).exists():
                out.append(("/".join(parts[:k]), label))
                break
    return out


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


# --------------------------------------------------------------------------------------------
# Settings, checksums, environment


def analysis_settings(results: dict) -> dict:
    """The options of the analysis that ``results.json`` records, as keyword arguments of
    :func:`dlr.verbs.analyze`, the fields of :class:`dlr.analysis.output.AnalysisSettings`.

    The options as given (its provenance's ``settings``: ``reference`` None when it was chosen
    automatically) take precedence over the values the analysis resolved (``settings``).
    """
    from dlr.analysis.output import AnalysisSettings

    resolved = results.get("settings") or {}
    provenance = results.get("provenance") or {}
    given = provenance.get("settings") or {}
    if not isinstance(resolved, dict) or not isinstance(given, dict):
        raise InputError(f"{RESULTS_JSON}: its 'settings' is not a mapping")
    if "dev_cohort" not in resolved and "dev_cohort" not in given:
        raise InputError(f"{RESULTS_JSON}: records no analysis settings (no 'settings.dev_cohort'); "
                         "it was not written by `dlr analyze`")
    seed = resolved.get("seed", provenance.get("seed"))
    settings = {
        "dev_cohort": given.get("dev_cohort", resolved.get("dev_cohort")),
        "strata": list(given.get("strata", resolved.get("strata")) or []),
        "reference": given["reference"] if "reference" in given else resolved.get("reference"),
        "n_bootstrap": given.get("n_bootstrap", resolved.get("n_bootstrap")),
        "seed": seed,
        "oof": bool(resolved.get("oof_predictions") or given.get("oof")
                    or (provenance.get("inputs") or {}).get("oof_predictions")),
    }
    accepted = set(AnalysisSettings.names()) - set(settings)
    for name in sorted(accepted & set(given)):  # options added later (e.g. survival's time and event)
        settings[name] = given[name]
    return settings


def analyze_command(settings: dict, *, out: str = "results_again") -> str:
    """The `dlr analyze` command line that recomputes the package's results into ``out``."""
    args = ["dlr", "analyze", PREDICTIONS]
    if settings.get("oof"):
        args += ["--oof", OOF_PREDICTIONS]
    args += ["--dev-cohort", str(settings["dev_cohort"])]
    if settings.get("strata"):
        args += ["--strata", *map(str, settings["strata"])]
    if settings.get("reference"):
        args += ["--reference", str(settings["reference"])]
    if settings.get("n_bootstrap") is not None:
        args += ["--bootstrap", str(settings["n_bootstrap"])]
    if settings.get("seed") is not None:
        args += ["--seed", str(settings["seed"])]
    for name, value in settings.items():
        if name not in ("oof", "dev_cohort", "strata", "reference", "n_bootstrap", "seed") and value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return " ".join(shlex.quote(a) for a in [*args, "--out", out, "--no-figures"])


def _provenance_files(run: Path, members) -> dict:
    """``{member: parsed provenance.json}`` of the packaged provenance files."""
    out = {}
    for rel in members:
        if Path(rel).name == "provenance.json":
            try:
                out[rel] = json.loads((run / rel).read_text())
            except (OSError, ValueError):
                continue
    return out


def _checksum_rows(run: Path, study: Path | None, provenance_files: dict, scrub: Scrubber) -> pd.DataFrame:
    """Every input's SHA-256 as recorded: the run's ``inputs/checksums.csv`` (the study's files as
    `dlr run` read them), each provenance record's inputs, and the study folder's own
    provenance files (e.g. a DICOM import's ``images/provenance.json``) when the study is here."""
    rows = []
    table = run / "inputs" / "checksums.csv"
    if table.is_file():
        with open(table, newline="") as handle:
            for record in csv.DictReader(handle):
                rows.append({"file": scrub.name(record.get("file", "")), "sha256": record.get("sha256", ""),
                             "recorded_in": "inputs/checksums.csv", "used_by": ""})

    def add_provenance(document, where: str, prefix: str = ""):
        records = document.get("records") or {}
        artefacts = document.get("artefacts") or {}
        used_by: dict = {}
        for name, entry in artefacts.items():
            used_by.setdefault(entry.get("record"), []).append(name)
            if prefix:  # the study's own files, as their provenance recorded them when written
                rows.append({"file": scrub.name(prefix + name), "sha256": entry.get("sha256") or "",
                             "recorded_in": where, "used_by": ""})
        for key, record in records.items():
            users = ";".join(scrub.name(prefix + n) for n in sorted(used_by.get(key, [])))
            for name, digest in (record.get("inputs") or {}).items():
                rows.append({"file": scrub.name(str(name)), "sha256": digest or "", "recorded_in": where,
                             "used_by": users})

    for rel, document in sorted(provenance_files.items()):
        if isinstance(document, dict):
            add_provenance(document, rel)
    if study is not None and study.is_dir():
        for path in sorted(study.rglob("provenance.json")):
            rel = path.relative_to(study).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            folder = str(Path(rel).parent.as_posix())
            add_provenance(document, f"<study>/{rel}", "" if folder == "." else folder + "/")
    frame = pd.DataFrame(rows, columns=["file", "sha256", "recorded_in", "used_by"])
    return frame.drop_duplicates().reset_index(drop=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        with_sysctl = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                     check=False)
        if with_sysctl.returncode == 0 and with_sysctl.stdout.strip():
            return with_sysctl.stdout.strip()
    return platform.processor() or platform.machine() or "unknown"


def _gpu() -> dict:
    """What torch reports about CUDA (nothing when torch is not installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return {"torch": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
        info = {"torch": torch.__version__, "cuda_available": bool(torch.cuda.is_available()),
                "cuda_version": getattr(torch.version, "cuda", None)}
        if info["cuda_available"]:
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cudnn"] = torch.backends.cudnn.version()
        return info
    except Exception as exc:  # noqa: BLE001 - a broken CUDA set-up is recorded, not fatal
        return {"torch": "unavailable", "error": f"{type(exc).__name__}: {exc}"}


def distributions() -> list:
    """(name, version) of every installed distribution, sorted by name, without duplicates."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), (name, dist.version))
    return [found[k] for k in sorted(found)]


def environment(recorded_versions: dict | None = None) -> dict:
    """The environment lock: Python, the OS, the CPU, the GPU and every distribution's version;
    with ``recorded_versions`` (a provenance record's), those that differ from the installed ones.
    No host name, user name or path."""
    from dlr.core.output import git_modified, git_sha, package_versions

    installed = dict(distributions())
    env = {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "compiler": platform.python_compiler()},
        "os": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
               "platform": platform.platform(), "libc": " ".join(platform.libc_ver()).strip() or None},
        "cpu": {"model": _cpu_model(), "count": os.cpu_count()},
        "gpu": _gpu(),
        "dlr": {"version": installed.get("dlr"), "git_sha": git_sha(), "git_modified": git_modified()},
        "distributions": installed,
    }
    if recorded_versions:
        now = package_versions(tuple(k for k in recorded_versions if k != "python"))
        env["recorded_versions"] = recorded_versions
        env["version_mismatches"] = {k: {"recorded": v, "installed": now.get(k)}
                                     for k, v in recorded_versions.items() if now.get(k) != v}
    return env


def requirements_lock(env: dict) -> str:
    """``name==version`` for every distribution (dlr itself as a comment naming its commit)."""
    lines = ["# The exact versions installed when this package was made (dlr package).",
             f"# Python {env['python']['version']} on {env['os']['platform']}.",
             "# Install: python -m pip install -r requirements-lock.txt, then dlr itself (REPRODUCE.md)."]
    pins = []
    for name, version in env["distributions"].items():
        if name.lower() == "dlr":
            lines.append(f"# dlr=={version} (this project: install it from git commit {env['dlr']['git_sha']})")
            continue
        pins.append(f"{name}=={version}")
    if any("+cpu" in p for p in pins):
        lines.append("--extra-index-url https://download.pytorch.org/whl/cpu")
    if any(re.search(r"\+cu\d+", p) for p in pins):
        lines.append("--extra-index-url https://download.pytorch.org/whl/" +
                     re.search(r"\+(cu\d+)", next(p for p in pins if re.search(r"\+cu\d+", p))).group(1))
    return "\n".join(lines + pins) + "\n"


def _reproduce(*, settings: dict, env: dict, provenance: dict, n_patients: int, members, left_out,
               zip_name: str) -> str:
    git = provenance.get("git_sha") or env["dlr"]["git_sha"] or "unknown"
    modified = provenance.get("git_modified")
    command = analyze_command(settings)
    lines = [
        "# Reproducing this study's numbers",
        "",
        f"This reviewer package was written by `dlr package` (dlr {env['dlr']['version']}). The results in",
        f"`results/` were computed by dlr at git commit `{git}`"
        + (" (with local changes to tracked files)." if modified else "."),
        "",
        "## What is here",
        "",
        "| member | content |",
        "|---|---|",
        "| `study.yaml` | the study: its columns' roles and types, phases, cohorts and settings |",
        "| `split.csv` | each patient's cohort and cross-validation fold |",
        "| `predictions.csv`, `predictions_oof.csv` | every model's score of every patient (contract section 4) |",
        "| `features/` | the radiomics features and the extraction log (when the run had a radiomics arm) |",
        "| `models/`, `clinical/`, `staging/` | fitted parameters, selection and tuning tables; Tables 1, 3; staging |",
        "| `results/` | every statistic of `dlr analyze` (CSVs, `results.json`, figures) |",
        "| `report/` | the rendered report |",
        "| `stages/`, `*/provenance.json` | each stage's input SHA-256s, settings, seed, versions and commit |",
        "| `settings.json` | the run's settings, each stage's, the analysis settings and every seed |",
        "| `checksums.csv` | the SHA-256 of every input as recorded (clinical.csv, images, masks are not packaged) |",
        "| `environment.json`, `requirements-lock.txt` | Python, OS, CPU, GPU, each distribution's exact version |",
        "| `MANIFEST.csv` | every member with its SHA-256 and size |",
        "",
        f"Patients are pseudonymised: the {n_patients} patient ids are replaced by `P0001`, `P0002`, ... in the",
        "sorted order of the original ids, in every file, so rows keep their order and every bootstrap",
        "resample draws the same patients. The mapping is not included. The SHA-256s recorded in the",
        "provenance files and `checksums.csv` are those of the original (identified) files; `MANIFEST.csv`",
        "gives those of the packaged ones. Paths of the machine that made the run are replaced by `<run>`,",
        "`<study>`, `<home>` and `<path>/<name>`.",
        "",
        "## 1. Install the exact versions",
        "",
        "```bash",
        f"python{'.'.join(env['python']['version'].split('.')[:2])} -m venv .venv   "
        f"# Python {env['python']['version']} was used",
        ". .venv/bin/activate",
        "python -m pip install -r requirements-lock.txt",
        f"git clone <the dlr repository> dlr && git -C dlr checkout {git}",
        "python -m pip install --no-deps -e dlr",
        "```",
        "",
        "## 2. Verify the package",
        "",
        "```bash",
        f"dlr verify {shlex.quote(zip_name)}",
        "```",
        "",
        "recomputes the whole analysis from `predictions.csv` with the settings recorded in",
        "`results/results.json` and compares every CSV of `results/` cell by cell and every number of",
        "`results.json`: exit 0 when all are identical, 1 listing each difference as",
        "`file, row, column: packaged -> recomputed` (a member altered since packaging is listed with",
        "column `<sha256>`).",
        "",
        "## 3. Recompute the analysis by hand",
        "",
        "```bash",
        f"unzip {shlex.quote(zip_name)} -d package && cd package",
        command,
        "for f in results/*.csv; do cmp \"$f\" \"results_again/$(basename \"$f\")\"; done",
        "```",
        "",
        "The analysis settings (from `results/results.json`):",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| `{k}` | `{json.dumps(v)}` |" for k, v in settings.items()],
        "",
        "The same input and seed give byte-identical CSVs. Drop `--no-figures` to redraw `results/figures/`.",
        "Refitting the models needs the study's images and clinical table, which are not packaged;",
        "`checksums.csv` lets whoever holds them confirm they are the files this run read.",
        "",
    ]
    if left_out:
        lines += ["## Not packaged", "", "Files of the run left out (caches, model weights, working copies):", ""]
        lines += [f"- `{name}`" for name in left_out[:50]]
        if len(left_out) > 50:
            lines.append(f"- ... and {len(left_out) - 50} more")
        lines.append("")
    return "\n".join(lines)


def _manifest(folder: Path, names) -> pd.DataFrame:
    rows = [{"file": n, "sha256": _sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in sorted(names)]
    return pd.DataFrame(rows, columns=["file", "sha256", "bytes"])


def _sha256(path: Path) -> str:
    from dlr.core.output import file_sha256

    return file_sha256(path)


# --------------------------------------------------------------------------------------------
# Packaging


def package_run(run, out_zip, *, progress: Progress = None) -> PackageResult:
    """Write the reviewer package of a run folder into ``out_zip``.

    Parameters
    ----------
    run : path
        A run folder of this dlr (``RUN/run.json``, written by `dlr run`), analysed
        (``RUN/results/results.json``).
    out_zip : path
        The zip to write; written under a temporary name beside it and moved into place only
        when complete and verified (an earlier file is replaced only then).
    progress : callable, optional
        Called with one line per step.

    Returns
    -------
    PackageResult

    Raises
    ------
    InputError
        The folder is not a run of this dlr (no ``run.json`` or an older format), a file the
        package needs is missing, or ``results/`` was computed from other predictions than
        ``RUN/predictions.csv`` (or by another version of dlr, and does not recompute).
    RuntimeError
        The self-verification found a difference with the same code, or a path of this machine
        or an original patient id is still in a member (an internal error; nothing is written).
    """
    run, out_zip = Path(run), Path(out_zip)
    info = _check_run(run)
    if out_zip.is_dir():
        raise InputError(f"{out_zip}: is a folder; give the path of the zip to write (e.g. {out_zip / 'package.zip'})")
    study_yaml = _study_yaml(run)
    _require(run, SPLIT, f"rerun `dlr run STUDY --out {run}`")
    predictions = _require(run, PREDICTIONS, f"rerun `dlr run STUDY --out {run}` (or `dlr train`)")
    results_json = _require(run, RESULTS_JSON, f"analyse the run first: `dlr analyze {predictions} --out "
                                               f"{run / RESULTS}` (or `dlr run`)")
    results = _read_json(results_json, f"rerun `dlr analyze {predictions} --out {run / RESULTS}`")
    try:
        settings = analysis_settings(results)
    except InputError as exc:
        raise InputError(str(exc).replace(RESULTS_JSON, str(results_json), 1)) from None
    provenance = results.get("provenance") or {}
    recorded = provenance.get("inputs") or {}
    _check_current(run, predictions, recorded.get("predictions"), "predictions", settings)
    if settings["oof"]:
        oof = _require(run, OOF_PREDICTIONS, f"{results_json} records an analysis with out-of-fold predictions; "
                                             f"rerun `dlr run STUDY --out {run}`")
        _check_current(run, oof, recorded.get("oof_predictions"), "out-of-fold predictions", settings)

    _say(progress, f"packaging {run}")
    members, left_out = _run_members(run)
    id_columns = _id_columns(study_yaml)
    study = Path(info["study"]) if info.get("study") else None
    ids = pseudonyms(_patient_ids(run, members, id_columns, study))
    home = Path.home()
    scrub = _scrubber(run, study, home, ids, info, provenance)
    _say(progress, f"{len(ids)} patients pseudonymised (P0001, ... in the sorted order of their ids); "
                   f"{len(members)} files of the run")

    provenance_files = _provenance_files(run, members)
    staging = Path(tempfile.mkdtemp(prefix="dlr-package-"))
    try:
        written = []

        def put(name: str, data: bytes) -> None:
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(name)

        put("study.yaml", _transform("study.yaml", study_yaml.read_bytes(), scrub, id_columns))
        for rel in members:
            put(scrub.name(rel), _transform(rel, (run / rel).read_bytes(), scrub, id_columns))
        _checksum_rows(run, study, provenance_files, scrub).to_csv(staging / "checksums.csv", index=False)
        written.append("checksums.csv")
        env = environment(provenance.get("versions"))
        put("environment.json", (json.dumps(env, indent=1) + "\n").encode())
        put("requirements-lock.txt", requirements_lock(env).encode())
        put("settings.json", (json.dumps(scrub.json(_settings_document(run, info, settings, results, provenance_files)),
                                         indent=1) + "\n").encode())
        put("REPRODUCE.md", _reproduce(settings=settings, env=env, provenance=provenance, n_patients=len(ids),
                                       members=written, left_out=left_out, zip_name=out_zip.name).encode())
        _manifest(staging, written).to_csv(staging / MANIFEST, index=False)
        names = sorted([*written, MANIFEST])

        _say(progress, "verifying the package: recomputing the analysis from the pseudonymised predictions")
        check = _verify_folder(staging, label=str(out_zip), progress=progress)
        if not check.identical:
            _self_check_failed(check, provenance, results_json)
        _say(progress, f"identical: {check.n_numbers} numbers in {len(check.checked)} files")

        with staged_file(out_zip) as tmp:
            _zip_folder(staging, names, tmp)
            _scan_for_leaks(tmp, run=run, study=study, home=home, ids=ids)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = out_zip.stat().st_size
    _say(progress, f"wrote {out_zip} ({len(names)} files, {size / 1e6:.1f} MB)")
    return PackageResult(out_zip, len(names), tuple(names), len(ids), size, check.n_numbers, tuple(left_out))


def _scrubber(run: Path, study: Path | None, home: Path, ids: dict, info: dict, provenance: dict) -> "Scrubber":
    """What the package must not carry: the run's, the study's and the home folder's paths (and
    the aliases recorded for them), the host name, and the patients' ids (to pseudonyms)."""
    roots = [(p, "<run>") for p in _path_variants(run)]
    if study is not None:
        roots += [(p, "<study>") for p in _path_variants(study)]
    roots += [(p, "<home>") for p in _path_variants(home)]
    recorded_strings = list(_strings(info)) + list(_strings(provenance))
    aliases = _aliases(run, "<run>", recorded_strings)
    if study is not None:
        aliases += _aliases(study, "<study>", recorded_strings)
    # a name of a folder inside the run or the study is a member's name, not the folder's alias
    aliases = [(a, label) for a, label in aliases
               if not (run / a).exists() and not (study is not None and (study / a).exists())]
    return Scrubber(roots, aliases, ids, socket.gethostname())


def _zip_folder(folder: Path, names: list, path: Path) -> None:
    """The files ``names`` of ``folder`` into the zip ``path``, with fixed member times and
    modes (the same files give the same bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in names:
            member = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, (folder / name).read_bytes())


def _check_current(run: Path, path: Path, recorded: str | None, what: str, settings: dict) -> None:
    """InputError when results.json was computed from another file than ``path``."""
    from dlr.core.output import file_sha256

    if recorded and file_sha256(path) != recorded:
        raise InputError(
            f"{run / RESULTS_JSON}: computed from {what} with SHA-256 {recorded[:12]}..., but {path} is now "
            f"{file_sha256(path)[:12]}... (changed since the analysis); analyse it again: "
            f"`dlr run STUDY --out {run}`, or `{analyze_command(settings, out=str(run / RESULTS))}` in {run}")


def _self_check_failed(check: VerifyResult, provenance: dict, results_json: Path) -> None:
    from dlr.core.output import git_sha, package_versions

    shown = "; ".join(check.lines()[:5])
    more = f" (and {len(check.differences) - 5} more)" if len(check.differences) > 5 else ""
    # with local changes recorded at the time, the code that computed the results is unknown
    same_code = provenance.get("git_sha") == git_sha() and not provenance.get("git_modified") and \
        all(package_versions().get(k) == v for k, v in (provenance.get("versions") or {}).items())
    if not same_code:
        raise InputError(
            f"{results_json}: the analysis does not recompute identically with this dlr (commit {git_sha()}; "
            f"the results were computed at {provenance.get('git_sha')}"
            f"{', with local changes' if provenance.get('git_modified') else ''}, or with other package versions): "
            f"{shown}{more}. "
            "Analyse the run again with this dlr (`dlr run`, or `dlr analyze`), then package it")
    raise RuntimeError(f"the package does not verify: the analysis recomputed from the pseudonymised predictions "
                       f"differs from the run's results: {shown}{more}")


def _settings_document(run: Path, info: dict, settings: dict, results: dict, provenance_files: dict) -> dict:
    """settings.json: the package format, the run's settings, each stage's, the analysis's and every seed."""
    stages = {}
    for path in sorted((run / "stages").glob("*.json")) if (run / "stages").is_dir() else []:
        if path.name == "file_hashes.json":
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            stages[path.stem] = record.get("settings", {})
    recorded = {}
    seeds = {"run": info.get("seed"), "analysis": settings.get("seed")}
    for rel, document in sorted(provenance_files.items()):
        folder = str(Path(rel).parent.as_posix())
        records = (document or {}).get("records") or {}
        for name, entry in sorted(((document or {}).get("artefacts") or {}).items()):
            record = records.get(entry.get("record"), {})
            member = name if folder == "." else f"{folder}/{name}"
            recorded[member] = {"settings": record.get("settings"), "seed": record.get("seed")}
            if record.get("seed") is not None:
                seeds[member] = record.get("seed")
    return {"format": PACKAGE_FORMAT, "format_version": PACKAGE_FORMAT_VERSION,
            "run": {k: v for k, v in info.items()},
            "analysis": settings, "analysis_resolved": results.get("settings"),
            "stages": stages, "artefacts": recorded, "seeds": seeds}


def _scan_for_leaks(zip_path: Path, *, run: Path, study: Path | None, home: Path, ids: dict) -> None:
    """RuntimeError when a member (or a member of a DOCX inside it) holds an absolute path of the
    run, the study or the home folder, or a distinctive original id that is not also a pseudonym."""
    paths = {p for p in _path_variants(run)} | ({p for p in _path_variants(study)} if study else set())
    patterns = [(re.compile(re.escape(p.encode()) + rb"(?![\w.-])"), p) for p in sorted(paths) if len(p) > 1]
    patterns += [(re.compile(re.escape(p.encode()) + rb"(?![\w.-])"), p) for p in _path_variants(home) if len(p) > 1]
    pseudonym_set = set(ids.values())
    leaked_ids = [i for i in ids if _distinctive(i) and i not in pseudonym_set]
    id_pattern = re.compile(rb"(?<![\w-])(" + b"|".join(re.escape(i.encode()) for i in
                                                        sorted(leaked_ids, key=len, reverse=True)) + rb")(?![\w-])") \
        if leaked_ids else None
    problems = []

    def scan(name: str, data: bytes) -> None:
        for pattern, text in patterns:
            if pattern.search(data):
                problems.append(f"{name}: the path {text}")
        if id_pattern is not None and not name.lower().endswith(BINARY_SUFFIXES):
            found = id_pattern.search(data)
            if found:
                problems.append(f"{name}: the patient id {found.group(1).decode(errors='replace')}")

    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            scan(name, name.encode() + b"\n" + data)
            if name.lower().endswith(ZIP_SUFFIXES):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    for inner_name in inner.namelist():
                        scan(f"{name}:{inner_name}", inner.read(inner_name))
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise RuntimeError("the package would not be de-identified, so it was not written: "
                           + "; ".join(problems[:10]) + more)


# --------------------------------------------------------------------------------------------
# Verifying


def verify_package(zip_path, *, progress: Progress = None) -> VerifyResult:
    """Recompute the analysis of a reviewer package and compare it with the packaged results.

    Parameters
    ----------
    zip_path : path
        A zip written by :func:`package_run`.
    progress : callable, optional

    Returns
    -------
    VerifyResult
        ``identical`` when every member matches ``MANIFEST.csv`` and every recomputed number
        equals the packaged one; ``differences`` lists each one.

    Raises
    ------
    InputError
        A missing, corrupt or non-zip file, or a zip without ``MANIFEST.csv``,
        ``predictions.csv`` or ``results/results.json`` (the message names the file and what is
        missing), or packaged predictions that the analysis refuses.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InputError(f"{zip_path}: no such file; give the reviewer package written by `dlr package`")
    folder = Path(tempfile.mkdtemp(prefix="dlr-verify-"))
    try:
        _say(progress, f"opening {zip_path}")
        _extract(zip_path, folder)
        return _verify_folder(folder, label=str(zip_path), progress=progress)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extract(zip_path: Path, folder: Path) -> None:
    what = "not a dlr reviewer package"
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{zip_path}: not a readable zip file ({exc}): the file is corrupt or truncated, or "
                         "not a package; write it again with `dlr package RUN --out FILE.zip`") from None
    with archive:
        names = archive.namelist()
        missing = [n for n in (MANIFEST, PREDICTIONS, RESULTS_JSON) if n not in names]
        if missing:
            raise InputError(f"{zip_path}: {what}: it has no {', '.join(missing)}; write it with `dlr package`")
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if name.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", name) or re.match(r"^[A-Za-z]:", name):
                raise InputError(f"{zip_path}: member {name!r} points outside the package; {what}")
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InputError(f"{zip_path}: member {name} cannot be read ({exc}): the zip is corrupt") from None
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _verify_folder(folder: Path, *, label: str, progress: Progress = None) -> VerifyResult:
    """The check of :func:`verify_package` on an extracted (or staged) package folder."""
    from . import verbs

    differences = _manifest_differences(folder, label)
    try:
        results = json.loads((folder / RESULTS_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{label}: {RESULTS_JSON} is not readable JSON ({exc})") from None
    if not isinstance(results, dict):
        raise InputError(f"{label}: {RESULTS_JSON} is not a JSON object")
    try:
        settings = analysis_settings(results)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    oof = folder / OOF_PREDICTIONS if settings["oof"] else None
    if oof is not None and not oof.is_file():
        raise InputError(f"{label}: {RESULTS_JSON} records out-of-fold predictions, but {OOF_PREDICTIONS} is missing")
    kwargs = {k: v for k, v in settings.items() if k != "oof"}
    _say(progress, "recomputing the analysis: " + ", ".join(f"{k} {v}" for k, v in kwargs.items()))
    out = Path(tempfile.mkdtemp(prefix="dlr-recomputed-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                verbs.analyze(folder / PREDICTIONS, out / RESULTS, figures=False, oof=oof, **kwargs)
            except InputError as exc:
                raise InputError(f"{label}: the packaged predictions cannot be analysed: "
                                 f"{str(exc).replace(str(folder) + os.sep, '')}") from None
        checked, n_numbers = [], 0
        packaged_csv = {p.name for p in (folder / RESULTS).glob("*.csv")}
        recomputed_csv = {p.name for p in (out / RESULTS).glob("*.csv")}
        for name in sorted(packaged_csv | recomputed_csv):
            member = f"{RESULTS}/{name}"
            if name not in recomputed_csv:
                differences.append(_difference(member, "-", "<file>", "(present)", "(not recomputed)"))
                continue
            if name not in packaged_csv:
                differences.append(_difference(member, "-", "<file>", "(missing)", "(recomputed)"))
                continue
            diffs, count = compare_csv(folder / member, out / RESULTS / name, member)
            differences += diffs
            n_numbers += count
            checked.append(member)
        recomputed = json.loads((out / RESULTS_JSON).read_text())
        diffs, count = compare_json(results, recomputed, RESULTS_JSON)
        differences += diffs
        n_numbers += count
        checked.append(RESULTS_JSON)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    frame = pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS)
    return VerifyResult(frame.empty, frame, tuple(checked), n_numbers, settings)


def _manifest_differences(folder: Path, label: str) -> list:
    try:
        with open(folder / MANIFEST, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{label}: {MANIFEST} is not readable ({exc})") from None
    if not rows or "file" not in rows[0] or "sha256" not in rows[0]:
        raise InputError(f"{label}: {MANIFEST} has no file and sha256 columns")
    listed = {r["file"]: r["sha256"] for r in rows}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    out = []
    for name in sorted(set(listed) | present):
        if name not in present:
            out.append(_difference(name, "-", "<sha256>", listed[name], "(missing)"))
        elif name not in listed:
            out.append(_difference(name, "-", "<sha256>", "(not in MANIFEST.csv)", _sha256(folder / name)))
        else:
            digest = _sha256(folder / name)
            if digest != listed[name]:
                out.append(_difference(name, "-", "<sha256>", listed[name], digest))
    return out


# --------------------------------------------------------------------------------------------
# Comparing


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


__all__ = ["PackageResult", "VerifyResult", "package_run", "verify_package", "pseudonyms", "Scrubber",
           "analysis_settings", "analyze_command", "compare_csv", "compare_json", "environment", "requirements_lock"]
