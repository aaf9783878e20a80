"""Staged output with provenance: how every stage writes its artefacts (contract section 1).

A result is written under a temporary name and moved into place only when complete, so a
failed or interrupted command leaves no half-written output and never clobbers an earlier good
result. Three shapes, one rule:

- :func:`staged_folder` - a whole folder (``RUN/results/``, ``RUN/models/``, a study folder)
  built beside its final place and swapped in at the end;
- :func:`staged_files` - several files into an existing folder (``dlr table1 --out tables/``),
  all written first, then each renamed over its final name;
- :func:`staged_file` - one file (a cache entry, ``RUN/split.csv``, a NIfTI image).

Each of them can record provenance: ``provenance.json`` in the output folder gets one entry
per artefact written, with its SHA-256 and a record of how it was made: the SHA-256 of its
inputs, the settings, the seed, the package versions and the git commit of the code
(:func:`provenance`). Artefacts written together share one record, stored once;
:func:`read_provenance` joins them back. The record is deterministic (no clock), so a rerun
with the same inputs writes the same bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

#: the distributions whose versions every provenance record lists (absent ones as null)
PACKAGES = ("dlr", "numpy", "scipy", "pandas", "matplotlib", "pydantic", "scikit-learn", "xgboost", "SimpleITK",
            "pyradiomics", "torch", "monai")
#: distributions that install a package under another name (XGBoost's CPU-only wheel)
ALTERNATIVES = {"xgboost": ("xgboost", "xgboost-cpu")}
PROVENANCE_FILE = "provenance.json"


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (:func:`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_sha() -> str | None:
    """The commit of the code being run (None outside a git checkout)."""
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out is not None else None


def git_modified() -> bool | None:
    """Whether tracked files of the checkout differ from that commit (None outside a checkout)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def package_versions(packages=PACKAGES) -> dict:
    """Python's and each distribution's version (None where not installed); imports nothing."""
    versions = {"python": platform.python_version()}
    for name in packages:
        versions[name] = None
        for distribution in ALTERNATIVES.get(name, (name,)):
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def json_safe(value):
    """NaN and infinities as None, numpy scalars and arrays as Python ones, paths as text, recursively."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def provenance(*, inputs=(), settings: Mapping | None = None, seed: int | None = None,
               command: list | None = None) -> dict:
    """The provenance of an artefact: what it was made from, how, and by which code.

    Parameters
    ----------
    inputs : iterable of paths, or mapping name -> path or precomputed SHA-256, keyword-only
        Files the artefact was computed from; each is recorded by its SHA-256 (a missing
        file as None). A mapping value that is not an existing path is taken as a digest
        (e.g. one digest of many image files).
    settings : mapping, optional
        Every option that changes the result.
    seed : int, optional
    command : list of str, optional
        The command line, when there is one.

    Returns
    -------
    dict
        ``inputs`` ({name: sha256}), ``settings``, ``seed``, ``versions``, ``git_sha``,
        ``git_modified`` (tracked files changed since that commit) and, when given, ``command``.
    """
    # an iterable names paths: a missing one is recorded as None, not taken for a digest
    items = inputs.items() if isinstance(inputs, Mapping) else ((str(p), Path(p)) for p in inputs)
    hashed = {}
    for name, value in items:
        if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            hashed[str(name)] = file_sha256(value)
        elif isinstance(value, os.PathLike) or value is None:
            hashed[str(name)] = None
        else:
            hashed[str(name)] = str(value)
    info = {"inputs": hashed, "settings": json_safe(dict(settings or {})), "seed": seed,
            "versions": package_versions(), "git_sha": git_sha(), "git_modified": git_modified()}
    if command is not None:
        info["command"] = [str(c) for c in command]
    return info


def _artefacts(folder: Path, names=None) -> list[str]:
    """Relative paths of the files under ``folder`` (or of ``names``), sorted, provenance.json excluded."""
    if names is None:
        names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return sorted(n for n in names if n != PROVENANCE_FILE)


def _record_id(info: Mapping) -> str:
    """A short, content-derived id for a provenance record (the same record, the same id)."""
    text = json.dumps(json_safe(dict(info)), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_document(path: Path) -> dict:
    document = {"artefacts": {}, "records": {}}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict) and isinstance(loaded.get("artefacts"), dict) and \
                    isinstance(loaded.get("records"), dict):
                document = loaded
    return document


def record_provenance(folder, names, info: Mapping, *, drop=()) -> Path:
    """Add (or replace) the entries of ``names`` in ``folder/provenance.json``, atomically.

    The file holds ``records`` (each distinct :func:`provenance` dict once, under an id derived
    from its content) and ``artefacts``: ``{name: {"sha256": <the file's>, "record": <id>}}``.
    Entries of other artefacts already in the file are kept, so several commands writing into
    one folder each leave their own record, except those named in ``drop`` (artefacts the
    command removed); records no artefact points to are dropped.
    """
    folder = Path(folder)
    path = folder / PROVENANCE_FILE
    document = _read_document(path)
    key = _record_id(info)
    document["records"][key] = json_safe(dict(info))
    for name in drop:
        document["artefacts"].pop(name, None)
    for name in names:
        document["artefacts"][name] = {"sha256": file_sha256(folder / name), "record": key}
    document["artefacts"] = dict(sorted(document["artefacts"].items()))
    used = {entry.get("record") for entry in document["artefacts"].values()}
    document["records"] = {k: v for k, v in sorted(document["records"].items()) if k in used}
    with staged_file(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    return path


def read_provenance(folder) -> dict:
    """``folder/provenance.json`` as ``{artefact: {"sha256": ..., **its record}}`` (empty without one)."""
    document = _read_document(Path(folder) / PROVENANCE_FILE)
    return {name: {"sha256": entry["sha256"], **document["records"].get(entry.get("record"), {})}
            for name, entry in document["artefacts"].items()}


@contextlib.contextmanager
def staged_file(path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffixes); renamed over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}{''.join(path.suffixes)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_files(out, *, provenance_info: Mapping | None = None) -> Iterator[Path]:
    """A temporary folder inside ``out`` whose files are moved into ``out`` on success.

    Nothing reaches ``out`` until the ``with`` block has written every file; then each is
    renamed over its final name (subfolders are not allowed: use :func:`staged_folder`).
    With ``provenance_info``, ``out/provenance.json`` records each file written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".tmp-"))
    try:
        yield tmp
        names = _artefacts(tmp)
        if any("/" in name for name in names):
            raise ValueError(f"staged_files writes files, not folders: {', '.join(n for n in names if '/' in n)}")
        for name in names:
            os.replace(tmp / name, out / name)
        if provenance_info is not None:
            record_provenance(out, names, provenance_info)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(out, *, provenance_info: Mapping | None = None, replace: bool = True) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``out`` as a whole on success.

    The earlier ``out`` (if any) is moved aside, the new one renamed into place, and only then
    the old one removed, so at every moment either the old or the new folder is complete.
    With ``replace=False`` an existing ``out`` is an error (FileExistsError) instead. With
    ``provenance_info``, ``provenance.json`` inside the new folder records every file in it.
    On an exception the temporary folder is removed and ``out`` is untouched.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would otherwise become the result's mode
    try:
        yield tmp
        if provenance_info is not None:
            record_provenance(tmp, _artefacts(tmp), provenance_info)
        if out.exists():
            if not replace:
                raise FileExistsError(f"{out} exists")
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(out, old)
            os.replace(tmp, out)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:  # ``out`` was a file (or a link): rmtree would leave it behind
                old.unlink(missing_ok=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_frames(folder, files: Mapping) -> None:
    """Write each ``name -> content`` into ``folder``: a DataFrame as CSV at full precision, else text."""
    from .csvsafe import write_csv

    folder = Path(folder)
    for name, content in files.items():
        if hasattr(content, "to_csv"):
            write_csv(content, folder / name)
        else:
            (folder / name).write_text(content)


def write_files(out, files: Mapping, *, provenance_info: Mapping | None = None) -> Path:
    """Write several result files into ``out`` all or nothing (:func:`staged_files`)."""
    with staged_files(out, provenance_info=provenance_info) as tmp:
        write_frames(tmp, files)
    return Path(out)
