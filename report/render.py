"""Render the report's Quarto project to self-contained HTML and DOCX.

The report is a Quarto project: a folder with ``_quarto.yml`` and ``index.qmd`` (plus the
``_*.qmd`` / ``.md`` files it includes, ``_variables.yml`` and images). :func:`render_report`
renders it with Quarto when ``quarto`` is on ``PATH``; otherwise with pandoc 3 (the binary
that ``pypandoc-binary`` ships), which has no Quarto filters. For that fallback this module
does in Python what Quarto would do, so the sources stay plain Quarto with no fallback-only
syntax. What the fallback resolves, and how (each point checked against Quarto's source,
quarto-cli ``src/``, and its documentation, quarto.org ``docs/``):

Metadata
    ``_quarto.yml`` (without its ``project:`` key), then ``_metadata.yml`` of the project
    folder, then the front matter of ``index.qmd``; at each level the files named by
    ``metadata-file`` / ``metadata-files`` (relative to that level's folder) are merged over
    the level's own keys, then the level's ``format: <html|docx>:`` options over the result.
    Mappings merge key by key, lists concatenate without duplicates, scalars are replaced
    (Quarto's ``mergeConfigs``; ``src/config/metadata.ts``, ``render-contexts.ts``). YAML is
    read as Quarto reads it: only ``true``/``false`` are booleans (``yes`` is text) and dates
    stay text.
Includes
    ``{{< include path >}}`` alone on a line, recursively. As in Quarto, the path is relative
    to the folder of ``index.qmd`` - also inside an included file, because an include is a
    paste - and a leading ``/`` means the project folder (``src/core/handlers/base.ts``
    ``resolvePath``; quarto.org/docs/authoring/includes.html: "relative references (links,
    images, other includes, etc.) inside the included file resolve based on the directory of
    the main file not the included file"). Images in included files resolve the same way.
``{{< meta key.sub >}}`` and ``{{< var key >}}``
    From the merged metadata for the format being rendered and from ``_variables.yml``;
    ``true``/``false`` print as such, a one-item list prints its item. An unknown key prints
    ``?meta:key`` / ``?var:key`` in bold and warns, as Quarto does. ``{{{< ... >}}}`` and
    ``{{</* ... */>}}`` print the shortcode itself; ``{{< pagebreak >}}`` is supported.
Conditional content
    Divs, spans and code blocks with ``.content-visible`` / ``.content-hidden`` and
    ``when-format`` / ``unless-format`` / ``when-meta`` / ``unless-meta`` (several conditions
    must all hold). ``html`` matches the HTML output, ``docx`` the Word output. ``when-meta``
    is true only for a metadata value that is the boolean ``true`` (Quarto's
    ``content-hidden.lua``: ``type(r) == "boolean" and r``); dotted keys reach nested values.
    Hidden content is dropped before anything is numbered.
Cross-references (Quarto's ``crossref/*.lua``)
    Figures ``![Caption](path){#fig-x}`` and ``::: {#fig-x}`` divs (caption: the last
    paragraph), tables with ``: Caption {#tbl-x}`` and ``::: {#tbl-x}`` divs (caption: the
    table's own or the div's last paragraph), sections ``# Title {#sec-x}``. Figures and
    tables are numbered in order of appearance; captions read "Figure 1: Caption" (``crossref:
    fig-title``, ``tbl-title``, ``title-delim``, ``labels``/``fig-labels``/``tbl-labels``).
    ``@fig-x`` becomes a link to ``#fig-x`` reading "Figure 1" (``fig-prefix``,
    ``tbl-prefix``, ``sec-prefix``; ``ref-hyperlink: false`` drops the link), ``@Fig-x``
    capitalises the prefix, ``[-@fig-x]`` gives the number alone, ``[Fig. @fig-x]`` uses its
    own prefix, ``[@fig-a; @fig-b]`` joins with ", ". A section reference reads "Section 2.1"
    - with or without ``number-sections``, exactly as Quarto writes it (Quarto's docs ask for
    ``number-sections: true`` with section references, so the fallback warns without it).
    ``number-sections``/``number-depth`` number headings as Quarto does. An unknown label
    prints ``?@fig-x`` in bold and warns. Only citations whose id starts with a
    cross-reference type and a hyphen are touched: e-mail addresses are never citations, and
    bibliographic citations go to ``--citeproc`` when ``bibliography`` is set.
Code cells
    The report reads saved results only: an executable cell (```` ```{python} ````, inline
    `` `{python} x` ``) is an :class:`~core.errors.InputError` naming file and line.
Title block
    ``title``, ``subtitle``, ``author`` (names of author mappings), ``date`` (``today``,
    ``now`` and ``last-modified`` become ISO dates), ``abstract``; ``toc``, ``toc-depth``,
    ``toc-title``.

Which renderer ran: both renderers set the metadata key ``dlr-renderer`` to
:func:`renderer_name` (Quarto through ``quarto render -M dlr-renderer:...``), so the sources
show it with ``{{< meta dlr-renderer >}}``, e.g. a closing ``::: {.dlr-renderer}`` div
reading ``Rendered by {{< meta dlr-renderer >}}``. When the sources never show the key, the
fallback adds such a div at the end and warns, since a Quarto render would not show it.

The HTML is one self-contained file (images as ``data:`` URIs, ``report.css`` inlined, math as
MathML); the DOCX embeds its images and turns pipe tables into Word tables. Both are written
under temporary names and moved into ``out`` only when every format has rendered.

Not handled by the fallback (Quarto features a report of saved results does not need):
subfigures (numbered as separate figures, with a warning), equation, listing, theorem and
callout cross-references (their references warn as unresolved), ``crossref: chapters``,
Quarto profiles (``when-profile`` only tests ``QUARTO_PROFILE``; no ``_quarto-PROFILE.yml``),
other shortcodes (``env``, ``video``, ...; left as text with a warning), ``date-format`` and
translated crossref titles (``lang``).
"""
from __future__ import annotations

import copy
import datetime
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import yaml

from dlr.core.errors import InputError
from dlr.core.output import staged_files

#: output formats, in the order written
FORMATS = ("html", "docx")
#: the ``renderer`` choices of :func:`render_report`
RENDERERS = ("auto", "quarto", "pandoc")
#: the metadata key that holds :func:`renderer_name` while rendering
RENDERER_KEY = "dlr-renderer"
#: the report's HTML style (package data of ``report``)
CSS = Path(__file__).with_name("report.css")

_PROJECT_FILES = ("_quarto.yml", "_quarto.yaml")
_DIRECTORY_FILES = ("_metadata.yml", "_metadata.yaml")
_VARIABLE_FILES = ("_variables.yml", "_variables.yaml")
_INDEX = "index.qmd"
_TIMEOUT_S = 600
_NBSP = "\u00a0"
#: the identifier prefixes Quarto reserves for cross-references (quarto.org cross-references)
_REF_TYPES = ("fig", "tbl", "lst", "tip", "nte", "wrn", "imp", "cau", "thm", "lem", "cor", "prp", "cnj", "def",
              "exm", "exr", "sol", "rem", "alg", "eq", "sec")
#: what ``when-format``/``unless-format`` values match each output (Quarto's ``_format.lua``)
_FORMAT_MATCHES = {"html": {"html", "html:js"}, "docx": {"docx"}}
_CONDITIONS = ("when-meta", "unless-meta", "when-format", "unless-format", "when-profile", "unless-profile")


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_report` wrote.

    Attributes
    ----------
    renderer : str
        What rendered it, as :func:`renderer_name` reports: ``"quarto 1.5.57"`` or
        ``"pandoc 3.9 (Quarto fallback)"``.
    outputs : tuple of pathlib.Path
        The files written, in the order of ``formats`` (``out/index.html``, ``out/index.docx``).
    warnings : tuple of str
        Problems that did not stop the render (unresolved cross-references, unknown metadata
        keys, Quarto's and pandoc's own warnings), each once, in the order found. They are
        returned, not issued as Python warnings; the caller reports them.
    """

    renderer: str
    outputs: tuple
    warnings: tuple = ()


def renderer_name(renderer: str = "auto") -> str:
    """The renderer :func:`render_report` would use, by name and version, without rendering.

    Parameters
    ----------
    renderer : {"auto", "quarto", "pandoc"}
        ``"auto"``: Quarto if ``quarto`` is on ``PATH``, else pandoc.

    Returns
    -------
    str
        ``"quarto X.Y.Z"`` or ``"pandoc X.Y (Quarto fallback)"``.
    """
    return _quarto_name() if _choose(renderer) == "quarto" else _pandoc_name()


def render_report(source, out, *, formats=FORMATS, renderer: str = "auto") -> RenderResult:
    """Render the Quarto project ``source`` into ``out/index.html`` and ``out/index.docx``.

    Parameters
    ----------
    source : path-like
        The project folder: ``_quarto.yml``, ``index.qmd`` and what they include.
    out : path-like
        The folder for the documents (created if missing). Nothing is written there unless
        every format renders; earlier documents are then replaced.
    formats : sequence of {"html", "docx"}
        The documents to write.
    renderer : {"auto", "quarto", "pandoc"}
        ``"auto"``: Quarto if ``quarto`` is on ``PATH``, else the pandoc fallback (see the
        module notes for what it resolves).

    Returns
    -------
    RenderResult
        The renderer, the files written and the warnings.

    Raises
    ------
    core.errors.InputError
        A missing project file, invalid YAML, a missing include or image, an executable code
        cell (fallback), or a renderer that is not available or fails; the message names the
        file.

    Notes
    -----
    With Quarto this runs ``quarto render index.qmd --to FORMAT -M dlr-renderer:NAME`` in
    ``source`` (HTML also with ``-M embed-resources:true``) and moves the document from the
    project's ``output-dir`` (``source`` itself without one) into ``out``.
    """
    formats = _check_formats(formats)
    kind = _choose(renderer)
    project = _Project.read(source)
    warnings: list[str] = []
    if kind == "quarto":
        name, outputs = _render_quarto(project, Path(out), formats, warnings)
    else:
        name, outputs = _render_pandoc(project, Path(out), formats, warnings)
    return RenderResult(renderer=name, outputs=outputs, warnings=tuple(dict.fromkeys(warnings)))


# --- choosing the renderer ----------------------------------------------------------------------------------------

def _check_formats(formats) -> tuple:
    if isinstance(formats, str):
        formats = (formats,)
    try:
        chosen = tuple(dict.fromkeys(formats))
    except TypeError:
        raise InputError(f"formats must be a sequence of {FORMATS}, got {formats!r}") from None
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise InputError(f"formats must name one or more of {FORMATS}, got {formats!r}")
    return chosen


def _choose(renderer) -> str:
    if renderer not in RENDERERS:
        raise InputError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    if renderer == "quarto" and shutil.which("quarto") is None:
        raise InputError("renderer='quarto' but there is no `quarto` on PATH: install Quarto "
                         "(https://quarto.org) or use renderer='pandoc'")
    if renderer == "auto":
        return "quarto" if shutil.which("quarto") else "pandoc"
    return renderer


def _quarto_name() -> str:
    try:
        done = subprocess.run(["quarto", "--version"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise InputError(f"`quarto --version` failed: {error}") from None
    version = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not version:
        raise InputError(f"`quarto --version` failed: {done.stderr.strip() or 'no output'}")
    return f"quarto {version}"


@lru_cache(maxsize=1)
def _pandoc() -> tuple[str, str]:
    """The pandoc binary of pypandoc-binary and its version (pandoc 3 is needed)."""
    try:
        import pypandoc
    except ImportError:
        raise InputError("the Quarto fallback needs pandoc 3 from pypandoc-binary: "
                         "pip install pypandoc-binary") from None
    bundled = Path(pypandoc.__file__).parent / "files" / ("pandoc.exe" if os.name == "nt" else "pandoc")
    try:
        path = str(bundled) if bundled.is_file() else pypandoc.get_pandoc_path()
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise InputError(f"no usable pandoc for the Quarto fallback ({error}): pip install pypandoc-binary") from None
    words = (done.stdout.splitlines() or [""])[0].split()
    version = words[1] if len(words) > 1 else ""
    if not re.match(r"\d+\.", version) or int(version.split(".")[0]) < 3:
        raise InputError(f"the Quarto fallback needs pandoc 3 or later; {path} is {version or 'unknown'}: "
                         "pip install -U pypandoc-binary")
    return path, version


def _pandoc_name() -> str:
    return f"pandoc {_pandoc()[1]} (Quarto fallback)"


# --- the project: files, YAML and metadata ------------------------------------------------------------------------

class _QuartoYamlLoader(yaml.SafeLoader):
    """YAML scalars as Quarto reads them (js-yaml, nil/bool/int/float): ``yes`` is text, dates are text."""


_QuartoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_QuartoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                        list("tTfF"))


def _load_yaml(text: str, where) -> dict:
    try:
        data = yaml.load(text, Loader=_QuartoYamlLoader)
    except yaml.YAMLError as error:
        raise InputError(f"{where}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected YAML keys and values, got a {type(data).__name__}")
    return data


def _read_text(path: Path, *, what: str = "file") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {what} is not UTF-8 text") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the {what} ({error.strerror})") from None


def _first_file(folder: Path, names) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _merge(base, override):
    """Quarto's merge of two YAML values: mappings by key, lists concatenated without repeats, else replaced."""
    if isinstance(base, list) or isinstance(override, list):
        if base is None or override is None:
            return copy.deepcopy(override if base is None else base)
        merged, seen = [], set()
        for value in _as_list(base) + _as_list(override):
            key = json.dumps(value, default=str)
            if key not in seen:
                seen.add(key)
                merged.append(copy.deepcopy(value))
        return merged
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _split_front_matter(text: str) -> tuple[str, str, int]:
    """(YAML, body, number of lines before the body) of a ``.qmd`` with a leading ``---`` block."""
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start < len(lines) and lines[start].rstrip() == "---":
        for end in range(start + 1, len(lines)):
            if lines[end].rstrip() in ("---", "..."):
                return "".join(lines[start + 1:end]), "".join(lines[end + 1:]), end + 1
    return "", text, 0


@dataclass(frozen=True)
class _Project:
    """The project's files as read: configuration levels, variables and the body of index.qmd."""

    folder: Path
    index: Path
    levels: tuple      # ((metadata, folder, file it came from), ...) from the project to the document
    variables: dict
    body: str
    body_line: int     # line of index.qmd where the body starts (1-based)

    @classmethod
    def read(cls, source) -> "_Project":
        folder = Path(source)
        if not folder.is_dir():
            raise InputError(f"{folder}: the report source must be a folder with _quarto.yml and {_INDEX}")
        config_file = _first_file(folder, _PROJECT_FILES)
        if config_file is None:
            raise InputError(f"{folder}: no _quarto.yml (the report source must be a Quarto project)")
        index = folder / _INDEX
        if not index.is_file():
            raise InputError(f"{folder}: no {_INDEX} (the report's main document)")
        config = _load_yaml(_read_text(config_file, what="project file"), config_file)
        levels = [({k: v for k, v in config.items() if k != "project"}, folder, config_file, config.get("project"))]
        directory_file = _first_file(folder, _DIRECTORY_FILES)
        if directory_file is not None:
            levels.append((_load_yaml(_read_text(directory_file, what="metadata file"), directory_file), folder,
                           directory_file, None))
        front, body, offset = _split_front_matter(_read_text(index, what="document"))
        levels.append((_load_yaml(front, f"{index} (front matter)"), folder, index, None))
        variables_file = _first_file(folder, _VARIABLE_FILES)
        variables = (_load_yaml(_read_text(variables_file, what="variables file"), variables_file)
                     if variables_file is not None else {})
        return cls(folder=folder, index=index, levels=tuple(levels), variables=variables, body=body,
                   body_line=offset + 1)

    @property
    def settings(self) -> dict:
        """The ``project:`` key of _quarto.yml (``output-dir``)."""
        project = self.levels[0][3]
        return project if isinstance(project, dict) else {}

    def metadata(self, to: str, warnings: list) -> dict:
        """The document's metadata when rendered to ``to``, merged as Quarto merges it."""
        merged: dict = {}
        for meta, folder, origin, _ in self.levels:
            merged = _merge(merged, _level_metadata(meta, folder, origin, to, warnings))
        return merged


def _level_metadata(meta: dict, folder: Path, origin: Path, to: str, warnings: list) -> dict:
    """One level: its ``metadata-files`` over its keys, then its ``format: <to>:`` options over both."""
    names = []
    if meta.get("metadata-file"):
        names.append(meta["metadata-file"])
    if isinstance(meta.get("metadata-files"), list):
        names.extend(meta["metadata-files"])
    included: dict = {}
    for name in names:
        path = folder / str(name)
        if path.is_file():
            included = _merge(included, _load_yaml(_read_text(path, what="metadata file"), path))
        else:
            warnings.append(f"{origin}: metadata file {name} not found (looked for {path}); Quarto skips it too")
    level = _merge({k: v for k, v in meta.items() if k not in ("metadata-file", "metadata-files")}, included)
    level.pop("metadata-file", None)
    level.pop("metadata-files", None)
    formats = level.pop("format", None)
    specific = formats.get(to) if isinstance(formats, dict) else None
    return _merge(level, specific) if isinstance(specific, dict) else level


# --- the source text: includes, code cells, shortcodes ------------------------------------------------------------

_BLOCK_SHORTCODE = re.compile(r"^\s*\{\{< (?!/\*)(.+?)(?<!\*/) >\}\}\s*$")
_SHORTCODE = re.compile(r"\{\{\{<\s*(.*?)\s*>\}\}\}|\{\{</\*\s*(.*?)\s*\*/>\}\}|\{\{< (?!/\*)(.+?)(?<!\*/) >\}\}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_CELL = re.compile(r"^\s*\{\s*([A-Za-z][\w+-]*)")
_INLINE_CELL = re.compile(r"`\{(python|r|julia|ojs)\}\s")
_SHOWS_RENDERER = re.compile(r"\{\{< meta\s+[\"']?" + re.escape(RENDERER_KEY) + r"[\"']?\s*>\}\}")
_NO_CELLS = ("the report reads saved results only; executable cells are not supported by the fallback "
             "(have the analysis stage write the result to a file and include that)")


def _shortcode_args(text: str) -> tuple[str, list]:
    """Name and positional arguments of a shortcode's inside (``meta key``, ``include "a b.qmd"``)."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|\S+', text)
    args = [t[1:-1] if len(t) > 1 and t[0] == t[-1] and t[0] in "\"'" else t for t in tokens[1:]]
    return (tokens[0].lower() if tokens else ""), args


def _check_cells(lines, origin: Path, first_line: int) -> None:
    """Raise on the first executable code cell of one file's lines (fenced or inline)."""
    fence = None
    for number, line in enumerate(lines, start=first_line):
        match = _FENCE.match(line.rstrip("\r\n"))
        if fence is not None:
            closes = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            if closes and not match.group(2).strip():
                fence = None
            continue
        if match:
            cell = _CELL.match(match.group(2))
            if cell:
                raise InputError(f"{origin}:{number}: executable code cell ```{{{cell.group(1)}}}: {_NO_CELLS}")
            fence = match.group(1)
            continue
        inline = _INLINE_CELL.search(line)
        if inline:
            raise InputError(f"{origin}:{number}: inline code cell `{{{inline.group(1)}}} ...`: {_NO_CELLS}")


def _expand(text: str, origin: Path, first_line: int, project: _Project, chain: tuple, read: dict,
            *, check_cells: bool) -> str:
    """``text`` (of ``origin``) with its ``{{< include >}}`` lines replaced by the files, recursively.

    Every path resolves from the folder of index.qmd (``/`` = the project folder), as in Quarto.
    ``read`` collects the text of every file read (for messages about images).
    """
    lines = text.splitlines(keepends=True)
    if check_cells:
        _check_cells(lines, origin, first_line)
    pieces = []
    for number, line in enumerate(lines, start=first_line):
        match = _BLOCK_SHORTCODE.match(line)
        name, args = _shortcode_args(match.group(1)) if match else ("", [])
        if name != "include":
            pieces.append(line)
            continue
        if not args:
            raise InputError(f"{origin}:{number}: the include shortcode needs a file: {{{{< include _part.qmd >}}}}")
        target = args[0]
        path = (project.folder / target[1:]) if target.startswith("/") else (project.index.parent / target)
        resolved = path.resolve()
        if resolved in chain:
            loop = " -> ".join(str(p.name) for p in (*chain[1:], resolved))
            raise InputError(f"{origin}:{number}: include {target!r} is circular ({loop})")
        if not path.is_file():
            hint = ""
            beside = origin.parent / target
            if not target.startswith("/") and beside.is_file() and origin.parent != project.index.parent:
                suggestion = beside.resolve().relative_to(project.folder.resolve()).as_posix() \
                    if beside.resolve().is_relative_to(project.folder.resolve()) else str(beside)
                hint = (f"; Quarto resolves include paths from the folder of {_INDEX}, not from the including file: "
                        f"write {{{{< include {suggestion} >}}}} (or /{suggestion})")
            raise InputError(f"{origin}:{number}: include {target!r} not found (looked for {path}){hint}")
        included = _read_text(path, what="included file")
        read[path] = included
        expanded = _expand(included, path, 1, project, (*chain, resolved), read, check_cells=check_cells)
        pieces.append(expanded + ("\n" if included.endswith("\n") else "\n\n"))
    return "".join(pieces)


def _expanded_body(project: _Project, *, check_cells: bool) -> tuple[str, dict]:
    read = {project.index: project.body}
    text = _expand(project.body, project.index, project.body_line, project, (project.index.resolve(),), read,
                   check_cells=check_cells)
    return text, read


def _lookup(mapping, key: str):
    value = mapping
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _shortcode_text(value, key: str, kind: str) -> str:
    """A metadata or variable value as the meta/var shortcode prints it (Quarto's ``processValue``)."""
    if value is None:
        return f"**?{kind}:{key}**"
    if isinstance(value, list):
        if len(value) <= 1:
            return _shortcode_text(value[0], key, kind) if value else ""
        return f"**?invalid {kind} type:{key}**"
    if isinstance(value, dict):
        return f"**?invalid {kind} type:{key}**"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve_shortcodes(text: str, meta: dict, variables: dict, to: str, warnings: list) -> str:
    """Replace the inline shortcodes: meta, var, pagebreak; escaped ones print themselves."""
    def replace(match):
        escaped = match.group(1) if match.group(1) is not None else match.group(2)
        if escaped is not None:
            return "{{< " + escaped + " >}}"
        name, args = _shortcode_args(match.group(3))
        if name in ("meta", "var") and args:
            return _shortcode_text(_lookup(meta if name == "meta" else variables, args[0]), args[0], name)
        if name == "pagebreak":
            return ('`<w:r><w:br w:type="page"/></w:r>`{=openxml}' if to == "docx"
                    else '`<div style="page-break-after: always;"></div>`{=html}')
        if name == "include":
            warnings.append(f"an include shortcode must stand alone on its line, between blank lines; "
                            f"left as text: {match.group(0)}")
        else:
            warnings.append(f"shortcode {name!r} is not supported by the Quarto fallback; "
                            f"left as text: {match.group(0)}")
        return match.group(0)
    return _SHORTCODE.sub(replace, text)


# --- the pandoc AST (JSON) ----------------------------------------------------------------------------------------

def _str(text: str) -> dict:
    return {"t": "Str", "c": text}


def _text(text: str) -> list:
    """Inlines for plain text: words as Str, single spaces as Space."""
    inlines: list = []
    for k, word in enumerate(text.split(" ")):
        if k:
            inlines.append({"t": "Space"})
        if word:
            inlines.append(_str(word))
    return inlines


def _rewrite(elements: list, visit) -> list:
    """Walk a list of AST elements in document order.

    ``visit(element)`` returns None to keep the element (possibly changed in place) and walk
    into it, or a list of elements that replaces it and is walked in turn.
    """
    result = []
    for element in elements:
        replacement = visit(element) if isinstance(element, dict) and "t" in element else None
        if replacement is None:
            result.append(_walk_into(element, visit))
        else:
            result.extend(_rewrite(replacement, visit))
    return result


def _walk_into(value, visit):
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "t" in v for v in value):
            return _rewrite(value, visit)
        return [_walk_into(v, visit) for v in value]
    if isinstance(value, dict):
        return {k: (_walk_into(v, visit) if k != "t" else v) for k, v in value.items()}
    return value


def _meta_value(meta: dict, key: str):
    """A value of the pandoc document's metadata (JSON), by dotted key, or None."""
    value = {"t": "MetaMap", "c": meta}
    for part in key.split("."):
        if not isinstance(value, dict) or value.get("t") != "MetaMap" or part not in value["c"]:
            return None
        value = value["c"][part]
    return value


def _conditionals(blocks: list, doc_meta: dict, to: str) -> list:
    """Keep or drop ``.content-visible`` / ``.content-hidden`` divs, spans and code blocks (Quarto's rules)."""
    profiles = [p.strip() for p in os.environ.get("QUARTO_PROFILE", "").split(",") if p.strip()]
    tests = {
        "meta": lambda v: (lambda r: isinstance(r, dict) and r.get("t") == "MetaBool" and r.get("c") is True)(
            _meta_value(doc_meta, v)),
        "format": lambda v: v in _FORMAT_MATCHES[to],
        "profile": lambda v: v in profiles,
    }

    def visit(element):
        if element["t"] not in ("Div", "Span", "CodeBlock"):
            return None
        identifier, classes, attributes = element["c"][0]
        if "content-visible" not in classes and "content-hidden" not in classes:
            return None
        values: dict = {}
        for key, value in attributes:
            if key in _CONDITIONS:
                values.setdefault(key, []).append(value)
        match = True
        for key, found in values.items():
            kind = key.split("-", 1)[1]
            hit = any(tests[kind](v) for v in found)
            match = match and (hit if key.startswith("when-") else not hit)
        visible = match if "content-visible" in classes else not match
        if not visible:
            return []
        if element["t"] == "Div":
            return element["c"][1]
        element["c"][0] = [identifier, [c for c in classes if c not in ("content-visible", "content-hidden")],
                           [[k, v] for k, v in attributes if k not in _CONDITIONS]]
        return None
    return _rewrite(blocks, visit)


def _check_images(blocks: list, project: _Project, read: dict) -> list:
    """Root-relative image paths made project-relative; a missing or remote image is an InputError."""
    def visit(element):
        if element["t"] != "Image":
            return None
        target = element["c"][2]
        src = target[0]
        if src.startswith("data:"):
            return None
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", src):
            raise InputError(f"{_origin_of(src, read, project)}: image {src!r} is remote: the report must be "
                             "self-contained and rendering has no network; save the image in the project")
        if src.startswith("/"):
            src = src.lstrip("/")
            target[0] = src
        if not (project.folder / unquote(src)).is_file():
            raise InputError(f"{_origin_of(target[0], read, project)}: image {target[0]!r} not found (looked for "
                             f"{project.folder / unquote(src)}); image paths are relative to the folder of {_INDEX}, "
                             "also in included files, as in Quarto")
        return None
    return _rewrite(blocks, visit)


def _origin_of(src: str, read: dict, project: _Project) -> Path:
    return next((path for path, text in read.items() if src in text), project.index)


def _inlines_text(inlines: list) -> str:
    """Plain text of inlines (for messages)."""
    parts = []
    for inline in inlines:
        if inline["t"] == "Str":
            parts.append(inline["c"])
        elif inline["t"] in ("Space", "SoftBreak", "LineBreak"):
            parts.append(" ")
        elif inline["t"] in ("Emph", "Strong", "Strikeout", "Underline", "SmallCaps", "Superscript", "Subscript"):
            parts.append(_inlines_text(inline["c"]))
        elif inline["t"] in ("Span", "Link", "Quoted"):
            parts.append(_inlines_text(inline["c"][1]))
        elif inline["t"] in ("Code", "Math"):
            parts.append(inline["c"][1])
    return "".join(parts)


def _roman(number: int) -> str:
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    text = ""
    for value, numeral in numerals:
        while number >= value:
            text, number = text + numeral, number - value
    return text


class _Crossrefs:
    """Quarto's cross-references for one document: number figures, tables and sections, then resolve ``@refs``."""

    def __init__(self, meta: dict, to: str, warnings: list):
        self.to = to
        self.warnings = warnings
        options = meta.get("crossref")
        self.options = options if isinstance(options, dict) else {}
        self.number_sections = meta.get("number-sections") is True
        depth = meta.get("number-depth", 6)
        self.number_depth = depth if isinstance(depth, int) and not isinstance(depth, bool) else 6
        self.entries: dict = {}
        self.counts = {"fig": 0, "tbl": 0}
        self.sections = [0] * 8          # index 1..7: the heading counters
        self.top_level = 7

    def option(self, name: str, default: str) -> str:
        value = self.options.get(name)
        return default if value is None else _shortcode_text(value, name, "crossref")

    # numbering

    def run(self, blocks: list) -> list:
        def levels(element):
            if element["t"] == "Header":
                self.top_level = min(self.top_level, element["c"][0])
            return None
        _rewrite(blocks, levels)
        blocks = _rewrite(blocks, self.index)
        return _rewrite(blocks, self.resolve)

    def add(self, label: str, kind: str, number: str) -> None:
        if label in self.entries:
            self.warnings.append(f"duplicate cross-reference label #{label}: references go to the first")
            return
        self.entries[label] = (kind, number)

    def number(self, kind: str) -> str:
        self.counts[kind] += 1
        n = self.counts[kind]
        style = self.options.get(f"{kind}-labels", self.options.get("labels", "arabic"))
        if isinstance(style, list) and style:
            return str(style[(n - 1) % len(style)])
        style = str(style)
        if style.startswith("alpha"):
            start = style.split(" ")[1] if len(style.split(" ")) > 1 and style.split(" ")[1] else "a"
            return chr(ord(start[0]) + n - 1)
        if style.startswith("roman"):
            return _roman(n).lower() if style.endswith("i") else _roman(n)
        return str(n)

    def caption_prefix(self, kind: str, number: str, *, delimited: bool) -> list:
        """Quarto's ``titlePrefix``: title, no-break space, number and (for a caption) delimiter and space."""
        prefix = [*_text(self.option(f"{kind}-title", {"fig": "Figure", "tbl": "Table"}[kind])), _str(_NBSP + number)]
        if delimited:
            prefix += [*_text(self.option("title-delim", ":")), {"t": "Space"}]
        return prefix

    def prefix_caption(self, caption_blocks: list, kind: str, number: str) -> list:
        """Caption blocks with "Figure 1: " in front (or just "Figure 1" for an empty caption)."""
        if caption_blocks and caption_blocks[0]["t"] in ("Plain", "Para") and caption_blocks[0]["c"]:
            first = caption_blocks[0]
            return [{"t": first["t"], "c": self.caption_prefix(kind, number, delimited=True) + first["c"]},
                    *caption_blocks[1:]]
        return [{"t": "Plain", "c": self.caption_prefix(kind, number, delimited=False)}, *caption_blocks]

    def index(self, element):
        kind = element["t"]
        if kind == "Header":
            self.header(element)
        elif kind == "Figure" and element["c"][0][0].startswith("fig-"):
            label = element["c"][0][0]
            number = self.number("fig")
            self.add(label, "fig", number)
            caption = element["c"][1]
            element["c"][1] = [caption[0], self.prefix_caption(caption[1], "fig", number)]
        elif kind == "Table" and element["c"][0][0].startswith("tbl-"):
            label = element["c"][0][0]
            number = self.number("tbl")
            self.add(label, "tbl", number)
            caption = element["c"][1]
            element["c"][1] = [caption[0], self.prefix_caption(caption[1], "tbl", number)]
        elif kind == "Div" and element["c"][0][0].startswith("fig-"):
            return [self.figure_div(element)]
        elif kind == "Div" and element["c"][0][0].startswith("tbl-"):
            return self.table_div(element)
        return None

    def figure_div(self, div: dict) -> dict:
        """``::: {#fig-x}`` content and caption paragraph as a pandoc Figure (numbered when walked next)."""
        attr, blocks = div["c"]
        caption: list = []
        if blocks and blocks[-1]["t"] == "Para":
            caption, blocks = [{"t": "Plain", "c": blocks[-1]["c"]}], blocks[:-1]
        content = []
        for block in blocks:    # an image alone in its paragraph became a figure of its own: unwrap it
            if block["t"] == "Figure" and not block["c"][0][0].startswith("fig-"):
                content.extend(block["c"][2])
            else:
                content.append(block)
        inner = re.findall(r'\["(fig-[^"]*)"', json.dumps(content))
        if inner:
            self.warnings.append(f"figure #{attr[0]} holds subfigures ({', '.join('#' + i for i in inner)}): "
                                 "the Quarto fallback numbers them as separate figures")
        return {"t": "Figure", "c": [attr, [None, caption], content]}

    def table_div(self, div: dict) -> list | None:
        """``::: {#tbl-x}``: the table inside takes the label (and the last paragraph as caption if it has none).

        Returns the div's blocks (walked next, so the table is numbered then), or None when the
        div holds no pandoc table and is numbered and kept as it is.
        """
        attr, blocks = div["c"]
        tables = [k for k, block in enumerate(blocks) if block["t"] == "Table"]
        caption: list = []
        if blocks and blocks[-1]["t"] == "Para":
            caption, blocks = [{"t": "Plain", "c": blocks[-1]["c"]}], blocks[:-1]
        if tables:
            table = blocks[tables[0]]
            table["c"][0] = [attr[0], table["c"][0][1], table["c"][0][2]]
            if caption and not table["c"][1][1]:
                table["c"][1] = [None, caption]
            elif caption:
                blocks = [*blocks, {"t": "Para", "c": caption[0]["c"]}]
            return blocks
        number = self.number("tbl")          # not a pandoc table (an image of one): caption on top of the div
        self.add(attr[0], "tbl", number)
        div["c"] = [attr, [*self.prefix_caption(caption, "tbl", number), *blocks]]
        return None

    def header(self, element) -> None:
        level, attr, content = element["c"]
        if "unnumbered" in attr[1]:
            return
        level = min(level, 7)
        current = max((i for i in range(1, 8) if self.sections[i]), default=0)
        if level < current:
            for i in range(level + 1, 8):
                self.sections[i] = 0
        self.sections[level] += 1
        number = self.section_number(level)
        if attr[0].startswith("sec-"):
            self.add(attr[0], "sec", number)
        if self.number_sections and level <= self.number_depth:
            if self.to == "html":
                attr[2] = [*attr[2], ["number", number]]
                element["c"][2] = [{"t": "Span", "c": [["", ["header-section-number"], []], [_str(number)]]},
                                   {"t": "Space"}, *content]
            else:
                element["c"][2] = [_str(number + "." if level == 1 else number), {"t": "Space"}, *content]

    def section_number(self, level: int) -> str:
        """Quarto's ``sectionNumber``: the counters from the document's top heading level down to ``level``."""
        number = str(self.sections[1]) if self.top_level == 1 else ""
        last = next((i for i in range(level, 1, -1) if self.sections[i] > 0), 1)
        for i in range(2, last + 1):
            number += ("." if number else "") + str(self.sections[i])
        return number

    # references

    def ref_prefix(self, kind: str, upper: bool) -> list:
        prefix = _text(self.option(f"{kind}-prefix", {"fig": "Figure", "tbl": "Table", "sec": "Section"}[kind]))
        if upper and prefix and prefix[0]["t"] == "Str":
            prefix[0] = _str(prefix[0]["c"][:1].upper() + prefix[0]["c"][1:])
        return prefix

    def resolve(self, element):
        if element["t"] != "Cite":
            return None
        refs: list = []
        for k, citation in enumerate(element["c"][0]):
            label = citation["citationId"]
            kind = re.match(r"^([A-Za-z]+)-", label)
            if not kind or kind.group(1).lower() not in _REF_TYPES:
                continue
            upper = label[0].isupper()
            label = label[0].lower() + label[1:]
            entry = self.entries.get(label)
            if entry is None:
                self.warnings.append(f"unresolved cross-reference @{label}: nothing has the label #{label} "
                                     f"(Quarto prints ?@{label})")
                refs.append({"t": "Strong", "c": [_str(f"?@{label}")]})
                continue
            entry_kind, number = entry
            if k > 0:
                refs += _text(self.option("ref-delim", ",")) + [{"t": "Space"}]
            ref: list = []
            if citation["citationPrefix"]:
                ref += [*citation["citationPrefix"], _str(_NBSP)]
            elif citation["citationMode"]["t"] != "SuppressAuthor":
                ref += [*self.ref_prefix(entry_kind, upper), _str(_NBSP)]
            ref.append(_str(number))
            if entry_kind == "sec" and not self.number_sections:
                self.warnings.append(f"@{label} reads 'Section {number}' as in Quarto, but the headings are not "
                                     "numbered: set number-sections: true (Quarto's documentation asks for it with "
                                     "section references)")
            if self.options.get("ref-hyperlink", True) is not False:
                ref = [{"t": "Link", "c": [["", ["quarto-xref"], []], ref, ["#" + label, ""]]}]
            refs += ref
        return refs or None


# --- the two renderers --------------------------------------------------------------------------------------------

def _render_quarto(project: _Project, out: Path, formats: tuple, warnings: list) -> tuple[str, tuple]:
    name = _quarto_name()
    text, _ = _expanded_body(project, check_cells=False)
    if not _SHOWS_RENDERER.search(text):
        warnings.append(f"{project.index}: the sources never show {{{{< meta {RENDERER_KEY} >}}}}, "
                        "so the documents do not say which renderer made them")
    output_dir = project.settings.get("output-dir")
    built = project.folder / str(output_dir) if output_dir else project.folder
    with staged_files(out) as staging:
        for to in formats:
            command = ["quarto", "render", _INDEX, "--to", to, "-M", f"{RENDERER_KEY}:{name}"]
            if to == "html":
                command += ["-M", "embed-resources:true"]
            try:
                done = subprocess.run(command, cwd=project.folder, capture_output=True, text=True,
                                      timeout=_TIMEOUT_S, check=False)
            except (OSError, subprocess.SubprocessError) as error:
                raise InputError(f"{project.index}: `{' '.join(command)}` failed: {error}") from None
            log = (done.stderr or "") + (done.stdout or "")
            warnings.extend(f"quarto ({to}): {line.strip()}" for line in log.splitlines() if "WARN" in line)
            if done.returncode != 0:
                raise InputError(f"{project.index}: `{' '.join(command)}` failed (exit {done.returncode}):\n"
                                 + "\n".join(log.strip().splitlines()[-20:]))
            produced = built / _output_name(project, to, warnings)
            if not produced.is_file():
                raise InputError(f"{project.index}: quarto rendered {to} but {produced} is missing "
                                 "(output-dir or output-file set elsewhere?)")
            shutil.move(str(produced), str(staging / f"index.{to}"))
    return name, tuple(out / f"index.{to}" for to in formats)


def _output_name(project: _Project, to: str, warnings: list) -> str:
    output_file = project.metadata(to, warnings).get("output-file")
    if not output_file:
        return f"index.{to}"
    return str(output_file) if Path(str(output_file)).suffix else f"{output_file}.{to}"


def _render_pandoc(project: _Project, out: Path, formats: tuple, warnings: list) -> tuple[str, tuple]:
    name = _pandoc_name()
    body, read = _expanded_body(project, check_cells=True)
    if not _SHOWS_RENDERER.search(body):
        warnings.append(f"{project.index}: the sources never show {{{{< meta {RENDERER_KEY} >}}}}: the Quarto "
                        f"fallback added 'Rendered by {name}' at the end; a Quarto render would not show it")
        body += f"\n\n::: {{.{RENDERER_KEY}}}\nRendered by {{{{< meta {RENDERER_KEY} >}}}}\n:::\n"
    with staged_files(out) as staging:
        for to in formats:
            meta = project.metadata(to, warnings)
            meta[RENDERER_KEY] = name
            text = _resolve_shortcodes(body, meta, project.variables, to, warnings)
            doc = _pandoc_json(_front_matter(meta, project) + text, project, to)
            doc["blocks"] = _conditionals(doc["blocks"], doc["meta"], to)
            doc["blocks"] = _check_images(doc["blocks"], project, read)
            doc["blocks"] = _Crossrefs(meta, to, warnings).run(doc["blocks"])
            _unknown_keys(doc["blocks"], warnings)
            _pandoc_write(doc, meta, project, to, staging / f"index.{to}", warnings)
    return name, tuple(out / f"index.{to}" for to in formats)


def _front_matter(meta: dict, project: _Project) -> str:
    """The merged metadata as the YAML block pandoc reads: title block normalised, Quarto-only keys dropped."""
    data = {k: v for k, v in meta.items() if k not in ("format", "project")}
    if isinstance(data.get("author"), (list, dict)):
        data["author"] = _author_names(data["author"])
    date = data.get("date")
    if date in ("today", "now", "last-modified"):
        if date == "today":
            data["date"] = datetime.date.today().isoformat()
        elif date == "now":
            data["date"] = datetime.datetime.now().isoformat(timespec="minutes")
        else:
            data["date"] = datetime.date.fromtimestamp(project.index.stat().st_mtime).isoformat()
    if data.get("toc") is True and "toc-title" not in data:
        data["toc-title"] = "Table of contents"          # Quarto's English default
    if not data.get("title") and not data.get("pagetitle"):
        data["pagetitle"] = project.folder.resolve().name
    return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n\n"


def _author_names(value) -> list:
    names = []
    for author in value if isinstance(value, list) else [value]:
        if isinstance(author, dict):
            name = author.get("name")
            if isinstance(name, dict):
                name = name.get("literal") or " ".join(str(name[k]) for k in ("given", "family") if name.get(k))
            if name:
                names.append(str(name))
        elif author is not None:
            names.append(str(author))
    return names


def _run_pandoc(args: list, project: _Project, to: str, *, stdin: str | None, warnings: list | None = None) -> str:
    path, _ = _pandoc()
    try:
        done = subprocess.run([path, *args], input=stdin, cwd=project.folder, capture_output=True, text=True,
                              encoding="utf-8", timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise InputError(f"{project.index}: pandoc failed while rendering {to}: {error}") from None
    if done.returncode != 0:
        raise InputError(f"{project.index}: pandoc could not render {to} (exit {done.returncode}): "
                         f"{done.stderr.strip()}")
    if warnings is not None:
        warnings.extend(f"pandoc ({to}): {line.removeprefix('[WARNING]').strip()}"
                        for line in done.stderr.splitlines() if line.startswith("[WARNING]"))
    return done.stdout


def _pandoc_json(text: str, project: _Project, to: str) -> dict:
    return json.loads(_run_pandoc(["--from", "markdown", "--to", "json"], project, to, stdin=text))


def _unknown_keys(blocks: list, warnings: list) -> None:
    """Warn for each ``?meta:``/``?var:`` marker left in the visible document (as Quarto warns)."""
    found = json.dumps(blocks, ensure_ascii=False)
    for kind, key in re.findall(r"\?(meta|var):([^\s\"*\\]+)", found):
        shortcode = "{{< " + kind + " " + key + " >}}"
        warnings.append(f"unknown {'metadata key' if kind == 'meta' else 'variable'} {key} in {shortcode} "
                        f"(printed as ?{kind}:{key})")
    for kind, key in re.findall(r"\?invalid (meta|var) type:([^\s\"*\\]+)", found):
        warnings.append(f"{kind} {key} is a list or mapping; a {kind} shortcode prints single values only")


def _pandoc_write(doc: dict, meta: dict, project: _Project, to: str, target: Path, warnings: list) -> None:
    args = ["--from", "json", "--resource-path", str(project.folder.resolve()), "--output", str(target.resolve())]
    if meta.get("toc") is True:
        args.append("--toc")
        depth = meta.get("toc-depth")
        if isinstance(depth, int) and not isinstance(depth, bool):
            args.append(f"--toc-depth={depth}")
    if meta.get("bibliography"):
        args.append("--citeproc")
    if to == "html":
        if not CSS.is_file():
            raise InputError(f"{CSS}: the report's style sheet is missing from the installed package")
        args += ["--to", "html5", "--standalone", "--embed-resources", "--mathml", "--css", str(CSS)]
    else:
        args += ["--to", "docx"]
        if meta.get("reference-doc"):
            reference = project.folder / str(meta["reference-doc"])
            if not reference.is_file():
                raise InputError(f"{project.index}: reference-doc {meta['reference-doc']!r} not found (looked for "
                                 f"{reference})")
            args += ["--reference-doc", str(reference.resolve())]
    _run_pandoc(args, project, to, stdin=json.dumps(doc), warnings=warnings)
