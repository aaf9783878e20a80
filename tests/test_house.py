"""The package's shape: one import root (`dlr`) over the folders a user reads (core/, modeling/,
analysis/, report/, dlr/), every package listed in pyproject.toml, and no module importing the
folders by their bare names (which would load a second copy, or a user's own `report/`)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: folder -> the package name it is installed as
ROOTS = {"dlr": "dlr", "core": "dlr.core", "modeling": "dlr.modeling", "analysis": "dlr.analysis",
         "report": "dlr.report"}


def _python_files() -> list[Path]:
    skip = {".venv", "runs", "build", ".git"}
    return [p for p in REPO.rglob("*.py") if not skip & set(p.relative_to(REPO).parts)]


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_pyproject_maps_every_folder_under_the_dlr_root():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {package: folder for folder, package in ROOTS.items()}
    expected = set()
    for folder, package in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            expected.add(".".join((package, *parts)))
    assert set(config["packages"]) == expected, "a package folder is missing from pyproject's packages"
    assert all(name == "dlr" or name.startswith("dlr.") for name in config["packages"])


def test_nothing_imports_the_folders_by_their_bare_names():
    bare = {name for name in ROOTS if name != "dlr"}
    found = [f"{path.relative_to(REPO)}:{line}: {module}" for path in _python_files()
             for line, module in _imported_modules(path) if module.split(".")[0] in bare]
    assert not found, "import these through dlr. (dlr.core, dlr.modeling, ...):\n" + "\n".join(found)


def test_bare_import_check_fails_on_a_bare_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import report.figures\n    from core.errors import InputError\n")
    assert [m for _, m in _imported_modules(probe)] == ["report.figures", "core.errors"]


# --------------------------------------------------------------------------------------------
# the import graph: no cycle; a stage's code is what its entry modules import


def test_the_package_has_no_import_cycle():
    from dlr.codebase import cycles, import_graph

    graph = import_graph()
    assert "dlr.modeling.train" in graph and len(graph) > 60
    assert cycles(graph) == [], "import cycles (function-level imports included)"


def test_cycle_finder_finds_a_cycle():
    from dlr.codebase import cycles

    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_relative_and_function_level_imports_are_edges(tmp_path):
    from dlr.codebase import imports_of

    path = tmp_path / "mod.py"
    path.write_text("from . import sib\nfrom ..up import thing\n\ndef f():\n    from .pkg.leaf import g\n    import x.y\n")
    known = {"p.q.sib", "p.up", "p.q.pkg.leaf", "x.y", "p.q.mod"}
    assert imports_of("p.q.mod", path, known) == {"p.q.sib", "p.up", "p.q.pkg.leaf", "x.y"}


def test_the_stages_code_follows_their_imports():
    from dlr.codebase import closure

    models = closure(["dlr.modeling.train"])
    assert "dlr.modeling.radiomics.selection" in models and "dlr.modeling" in models
    assert "dlr.modeling.radiomics.selection" not in closure(["dlr.modeling.radiomics.extraction"])
    analysis = closure(["dlr.analysis.pipeline", "dlr.analysis.figures"])
    assert not [m for m in analysis if m.startswith("dlr.modeling")], "analysis/ must not import modeling/"


def test_a_code_change_redoes_the_stage_that_runs_it_and_what_follows(tmp_path, monkeypatch):
    """Editing radiomics/selection.py (emulated: its file digest salted) redoes the models stage
    and the stages after it, and only those."""
    import dlr.codebase as codebase
    from dlr.modeling.synthetic import synthesize_study
    from dlr.runner import run_study
    from dlr.stages import read_stage_record

    study, run = tmp_path / "study", tmp_path / "run"
    synthesize_study(study, n=165, images=False)  # the CR factors are selected (n=60 may select none)
    config = yaml.safe_load((study / "study.yaml").read_text())
    config["phases"] = []  # a clinical-only study
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    first = run_study(study, run, arms=("clinical",), n_bootstrap=20, report_formats=("html",))
    assert {o.status for o in first.stages} == {"ran"}
    again = run_study(study, run, arms=("clinical",), n_bootstrap=20, report_formats=("html",))
    assert {o.status for o in again.stages} == {"skipped"}

    edited = codebase.modules()["dlr.modeling.radiomics.selection"]
    real = codebase.hashlib.file_digest

    def salted(fh, algorithm):
        digest = real(fh, algorithm)
        if getattr(fh, "name", None) == str(edited):
            digest.update(b"# an edited comment")
        return digest

    monkeypatch.setattr(codebase.hashlib, "file_digest", salted)
    before = read_stage_record(run, "models")["code"]
    edited_run = run_study(study, run, arms=("clinical",), n_bootstrap=20, report_formats=("html",))
    status = {o.name: o.status for o in edited_run.stages}
    assert status == {"validate": "skipped", "split": "skipped", "clinical": "skipped", "staging": "skipped",
                      "models": "ran", "analysis": "ran", "report": "ran"}
    assert read_stage_record(run, "models")["code"] != before


#: what reads a file: the run's readers and the standard ones
_READERS = {"read_table", "read_json", "read_csv", "read_text", "read_bytes", "read_provenance", "read_analysis",
            "loads", "load", "safe_load", "open"}


def _file_reads(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every call in ``path`` to a function or method named like a reader."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _READERS:
                out.append((node.lineno, name))
    return out


def test_the_report_reads_the_run_through_its_one_reader():
    """Every table, figure and sentence of the report takes `RunFacts` (report/facts.py), which
    alone reads the run's files; render.py reads the Quarto project, not the run."""
    found = {p.name: _file_reads(p) for p in sorted((REPO / "report").glob("*.py"))
             if p.name not in ("facts.py", "render.py")}
    assert {name: reads for name, reads in found.items() if reads} == {}
    assert _file_reads(REPO / "report" / "facts.py"), "the reader itself reads files"


def test_the_reader_check_finds_a_read(tmp_path):
    path = tmp_path / "tables.py"
    path.write_text("import json\n\ndef f(run):\n    return json.loads((run / 'x.json').read_text())\n")
    assert [name for _, name in _file_reads(path)] == ["loads", "read_text"]
