"""The stages of `dlr run`: declared inputs and outputs, each skipped when nothing it reads changed.

A stage is a name, the files it reads (``inputs``), the settings that change what it writes
(``settings``), the files it writes (``outputs``, relative to the run folder) and an action. When
it finishes, ``RUN/stages/<name>.json`` records the SHA-256 of every input and output, its
settings and its wall time. On the next run the stage is skipped when its record exists, its
key (the inputs' hashes, the settings, dlr's version, the fingerprint of the code the stage runs
and the keys of the stages it reads from) is unchanged and every output is still
there with the recorded hash; otherwise it runs again, and so does every stage after it whose
inputs it changed. A stage killed half-way leaves no record, so it runs again (extraction
resumes from its per-case cache: a finished case is never recomputed); the stage writes its
outputs all at once (`core.output`), so a kill never leaves half a file behind.

File hashes are memoised in ``RUN/stages/file_hashes.json`` by (path, size, modification time),
as make and git do, so a second run over an unchanged study reads no image.

The run folder carries ``RUN/run.json``: its format and version, dlr's version, the study and the
run's settings. A folder with results but no run.json, or an older format, is refused (exit 2),
so that a run from an older dlr is never mixed with a new one.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from dlr.core.errors import InputError
from dlr.core.lock import LOCK_FILE
from dlr.core.output import file_sha256, staged_file

logger = logging.getLogger(__name__)

RUN_FORMAT = "dlr-run"
#: bump when the layout of a run folder changes meaning; older runs are then refused
RUN_FORMAT_VERSION = 1
STAGES_DIR = "stages"
HASHES_FILE = "file_hashes.json"


def dlr_version() -> str:
    try:
        from importlib.metadata import version

        return version("dlr")
    except Exception:  # noqa: BLE001 - running from a source tree that is not installed
        return "0+unknown"


# --------------------------------------------------------------------------------------------
# File hashes, memoised by (size, mtime)


class FileHashes:
    """SHA-256 of files, memoised in ``RUN/stages/file_hashes.json`` by (path, size, mtime_ns)."""

    def __init__(self, run: Path):
        self.path = Path(run) / STAGES_DIR / HASHES_FILE
        try:
            self.memo = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.memo = {}
        self.changed = False

    def __call__(self, path) -> Optional[str]:
        """The file's SHA-256, or None when it does not exist."""
        path = Path(path)
        try:
            st = path.stat()
        except OSError:
            return None
        key = str(path.resolve())
        stamp = [st.st_size, st.st_mtime_ns]
        hit = self.memo.get(key)
        if hit is not None and hit[:2] == stamp:
            return hit[2]
        digest = file_sha256(path)
        self.memo[key] = [*stamp, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            with staged_file(self.path) as tmp:
                tmp.write_text(json.dumps(self.memo, sort_keys=True))
            self.changed = False


# --------------------------------------------------------------------------------------------
# Stages


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    Attributes
    ----------
    name : str
    inputs : callable
        ``inputs() -> {label: path}``, evaluated when the stage is reached (so a stage can read
        what an earlier one wrote); a missing file hashes as None.
    outputs : callable
        ``outputs() -> [path relative to RUN]``, the files the stage promises, evaluated after it ran
        (and before a skip, to check they are still there).
    action : callable
        ``action() -> str`` runs the stage and returns a one-line summary.
    settings : dict
        What changes its outputs besides the inputs (seed, profile, options; never ``jobs``).
    code : tuple of str
        The package modules the stage runs (its entry points): the source of these and of every
        module they import enters the key (:func:`dlr.codebase.code_fingerprint`), beside the
        run's own glue (:data:`GLUE`), so a change to that code redoes the stage.
    upstream : tuple of str
        The earlier stages whose outputs it reads: their keys enter its key, so a stage that ran
        again makes the stages after it run again (as make does), even when its files came out the same.
    """

    name: str
    inputs: Callable[[], Mapping[str, Path]]
    outputs: Callable[[], list]
    action: Callable[[], str]
    settings: dict = field(default_factory=dict)
    code: tuple = ()
    upstream: tuple = ()


#: the modules that run every stage (hashed as files, not followed: the verbs import everything)
GLUE = ("dlr.stages", "dlr.runner", "dlr.verbs")


def stage_code(stage: Stage) -> str:
    """The fingerprint of the code ``stage`` runs: its entry modules' import closure and the glue."""
    from .codebase import code_fingerprint, modules

    digest = hashlib.sha256(code_fingerprint(stage.code).encode() if stage.code else b"")
    for name in GLUE:
        digest.update(file_sha256(modules()[name]).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StageOutcome:
    """What one stage did: ``status`` is "ran" or "skipped"."""

    name: str
    status: str
    seconds: float
    summary: str


def _key(input_hashes: Mapping[str, Optional[str]], settings: Mapping, version: str, code: str = "",
         upstream: Optional[Mapping[str, Optional[str]]] = None) -> str:
    content = {"inputs": dict(sorted(input_hashes.items())), "settings": settings, "dlr": version, "code": code,
               "upstream": dict(sorted((upstream or {}).items()))}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _record_path(run: Path, name: str) -> Path:
    return run / STAGES_DIR / f"{name}.json"


def read_stage_record(run, name: str) -> Optional[dict]:
    try:
        return json.loads(_record_path(Path(run), name).read_text())
    except (OSError, ValueError):
        return None


def run_stage(run: Path, stage: Stage, hashes: FileHashes) -> StageOutcome:
    """Run ``stage`` unless its record shows nothing it reads changed and its outputs are intact."""
    version = dlr_version()
    input_hashes = {label: hashes(path) for label, path in stage.inputs().items()}
    code = stage_code(stage)
    upstream = {name: (read_stage_record(run, name) or {}).get("key") for name in stage.upstream}
    key = _key(input_hashes, stage.settings, version, code, upstream)
    record = read_stage_record(run, stage.name)
    if record is not None and record.get("key") == key:
        outputs = record.get("outputs", {})
        intact = bool(outputs) and all(hashes(run / rel) == digest for rel, digest in outputs.items())
        if intact:
            hashes.save()
            return StageOutcome(stage.name, "skipped", 0.0, record.get("summary", ""))
        logger.info(f"{stage.name}: an output changed or is missing since the last run; running it again")
    record_path = _record_path(run, stage.name)
    if record_path.exists():
        record_path.unlink()  # a kill during the action must not leave the old record looking current
    start = time.perf_counter()
    summary = stage.action() or ""
    seconds = time.perf_counter() - start
    outputs = {}
    for rel in stage.outputs():
        digest = hashes(run / rel)
        if digest is None:
            raise RuntimeError(f"stage {stage.name} did not write {rel}")
        outputs[str(rel)] = digest
    record = {"stage": stage.name, "key": key, "dlr_version": version, "code": code, "code_modules": list(stage.code),
              "upstream": upstream, "settings": stage.settings,
              "inputs": {label: {"path": _relative(path, run), "sha256": digest}
                         for label, digest, path in ((lb, input_hashes[lb], p) for lb, p in stage.inputs().items())},
              "outputs": outputs, "seconds": round(seconds, 3), "summary": summary,
              "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with staged_file(record_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    hashes.save()
    return StageOutcome(stage.name, "ran", seconds, summary)


def _relative(path, run: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(run.resolve()))
    except ValueError:
        return path.name


# --------------------------------------------------------------------------------------------
# The run folder's marker


def check_run_folder(run: Path, *, creating: bool) -> Optional[dict]:
    """``RUN/run.json`` of an existing run folder (None for a new or empty one).

    Raises InputError, naming the file, for a folder that holds files but no run.json (an older
    dlr's run, or not a run folder), a run.json that cannot be read, or an older format.
    """
    run = Path(run)
    marker = run / "run.json"
    if not run.exists():
        if creating:
            return None
        raise InputError(f"{run}: no such run folder (make one with `dlr run STUDY --out {run}`)")
    if not run.is_dir():
        raise InputError(f"{run} is a file, not a run folder")
    if not marker.is_file():
        if creating and not [p for p in run.iterdir() if p.name != LOCK_FILE]:
            return None
        raise InputError(f"{marker}: missing, so {run} is not a run folder of this dlr (a run from an older "
                         "version, or another folder); choose a new --out folder or delete this one")
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        info = _marker_from_records(run, marker, exc)
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise InputError(f"{marker}: not a dlr run marker (format {info.get('format') if isinstance(info, dict) else info!r})")
    version = info.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise InputError(f"{marker}: a run of format version {version} (written by dlr {info.get('dlr_version', '?')}); "
                         f"this dlr reads version {RUN_FORMAT_VERSION}: rerun the study into a new --out folder")
    return info


def _marker_from_records(run: Path, marker: Path, exc: Exception) -> dict:
    """A damaged ``run.json`` rebuilt from the stage records (``RUN/stages/*.json``): this dlr's
    format and the study the validate stage read; `dlr run` then writes it whole again. Without a
    readable record the folder cannot be told from another: an InputError with the fix."""
    records = []
    for path in sorted((run / STAGES_DIR).glob("*.json")):
        if path.name == HASHES_FILE:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "stage" in record:
            records.append(record)
    if not records:
        raise InputError(f"{marker}: not readable as JSON ({exc}), and {run / STAGES_DIR} holds no stage record to "
                         f"rebuild it from; run the study again into a new --out folder") from None
    info = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "repaired": True,
            "dlr_version": records[0].get("dlr_version", "?")}
    inputs = next((r.get("inputs") for r in records if r.get("stage") == "validate"), None)
    clinical = inputs.get("clinical.csv", {}).get("path") if isinstance(inputs, dict) else None
    if clinical and len(Path(clinical).parts) > 1:  # a study inside the run (`dlr demo`); else only a name
        info["study"] = str((run / clinical).parent)
    logger.warning(f"{marker}: damaged ({exc}); read again from the {len(records)} stage record(s) in "
                   f"{run / STAGES_DIR} (the results are kept); `dlr run` writes it whole again")
    return info


def write_run_marker(run: Path, info: Mapping) -> None:
    content = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "dlr_version": dlr_version(), **info}
    with staged_file(run / "run.json") as tmp:
        tmp.write_text(json.dumps(content, indent=1, sort_keys=True, default=str) + "\n")
