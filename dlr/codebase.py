"""The package's own code read as source: the static import graph of the ``dlr`` modules
(function-level imports included), its cycles, and a fingerprint of the code a stage runs.

A stage of `dlr run` is keyed by the SHA-256 of the files its entry modules import, directly or
through others (:func:`code_fingerprint`), so that a rerun after a change to that code redoes the
stage (:mod:`dlr.stages`), and a change to code it never imports does not. The graph is read from
the source files with :mod:`ast`, nothing is imported: an import inside a function counts as
much as one at the top of a module.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

from dlr.core.output import file_sha256

#: the import root's packages, each a folder of the repository (pyproject's package-dir)
ROOT_PACKAGES = ("dlr", "dlr.core", "dlr.modeling", "dlr.analysis", "dlr.report")


@functools.lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> source file (a package's is its ``__init__.py``)."""
    out: dict[str, Path] = {}
    for root in ROOT_PACKAGES:
        spec = importlib.util.find_spec(root)
        for folder in (spec.submodule_search_locations or []):
            folder = Path(folder)
            for path in sorted(folder.rglob("*.py")):
                parts = path.relative_to(folder).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                if any(p.startswith((".", "_")) and p != "__init__" for p in parts[:-1]):
                    continue
                name = ".".join((root, *parts))
                # a folder mapped to its own package (dlr.core inside dlr's folder does not exist) wins
                out.setdefault(name, path)
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(name: str, path: Path, known) -> set[str]:
    """The modules of ``known`` that module ``name`` (source ``path``) imports anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path).split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                if child in known:
                    found.add(child)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, frozenset]:
    """module -> the package modules it imports (static, function-level imports included)."""
    known = modules()
    return {name: frozenset(imports_of(name, path, known)) for name, path in known.items()}


def cycles(graph: dict) -> list[list[str]]:
    """The strongly connected components of more than one module (each an import cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm, iterative over each vertex's edges
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def closure(entries) -> list[str]:
    """``entries`` and every package module they import, directly or not, with the packages
    (``__init__``) that importing them runs; sorted."""
    graph = import_graph()
    known = modules()
    seen: set[str] = set()
    todo = [e for e in entries]
    unknown = [e for e in todo if e not in known]
    if unknown:
        raise ValueError(f"not modules of the package: {unknown}")
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(p for p in (".".join(parts[:k]) for k in range(1, len(parts))) if p in known)
        todo.extend(graph[name])
    return sorted(seen)


def code_fingerprint(entries) -> str:
    """SHA-256 over the names and file contents of :func:`closure` (``entries``)."""
    known = modules()
    digest = hashlib.sha256()
    for name in closure(entries):
        digest.update(f"{name}\0{file_sha256(known[name])}\n".encode())
    return digest.hexdigest()
