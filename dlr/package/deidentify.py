"""De-identification of a package's members: the patients' ids of a run found and replaced by
pseudonyms (``P0001``, ... in the sorted order of the ids), and the machine's paths and host name
replaced by ``<run>``, ``<study>``, ``<home>``, ``<host>`` and ``<path>/<name>`` in CSV, JSON,
text and DOCX members (:class:`Scrubber`)."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from pathlib import Path

from dlr.core.csvsafe import is_number, restored
from dlr.package.layout import BINARY_SUFFIXES, ZIP_SUFFIXES

ID_COLUMNS = ("patient_id",)


_DATA_URI = re.compile(r"data:[\w.+/-]*;base64,[A-Za-z0-9+/=\s]*")
_FILE_URI = re.compile(r"file://(?:localhost)?(/[^\s\"'<>)]*)")
# an absolute POSIX path of at least two names; not after a word, a dot, ':' or '/' (URLs,
# units such as mg/dL, fractions) nor '<' (closing HTML tags)
_POSIX_PATH = re.compile(r"(?<![\w.~:/\\<>*-])/(?:[\w.~+@%$-]+/)+[\w.~+@%$-]*")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\\\s\"'<>|:*?]+\\)*[^\\\s\"'<>|:*?]*")
_WORD = re.compile(r"[\w-]+")


def _distinctive(patient_id: str) -> bool:
    """Whether an id can be replaced wherever it occurs as a word (not a number, not tiny)."""
    return len(patient_id) >= 3 and not is_number(patient_id)


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
        if not value or is_number(value):
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
        out.append([scrub.ids.get(restored(c.strip()), c) if i in ids else scrub.cell(c) for i, c in enumerate(row)])
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
# The patients' ids and the folders' names of a run


def _id_columns(study_yaml: Path) -> tuple:
    import yaml

    try:
        config = yaml.safe_load(study_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    column = config.get("id_column") if isinstance(config, dict) else None
    return tuple(dict.fromkeys([*ID_COLUMNS, *([str(column)] if column else [])]))


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
                        ids.add(restored(row[i].strip()))  # written safe for spreadsheets: read back
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
