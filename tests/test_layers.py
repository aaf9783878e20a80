"""The shape of the house: `core/` imports neither stage, and the stages never import each other.

Every import statement of every module is read with `ast` (including imports inside
functions), so a lazy `from analysis... import` inside a modeling function fails here too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: package -> top-level packages it must not import
FORBIDDEN = {
    "core": {"analysis", "modeling", "report", "dlr"},
    "modeling": {"analysis", "report", "dlr"},
    "analysis": {"modeling", "report", "dlr"},
    "report": {"modeling", "dlr"},
}


LAYERS = ("core", "modeling", "analysis", "report")


def _layer(module: str) -> str:
    """The floor of an absolute module name: dlr.core.x -> core, ..., dlr.verbs -> dlr (the top
    floor); another library's name as it is (bare core/analysis/... are test_house's business)."""
    parts = module.split(".")
    if parts[0] != "dlr":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "dlr"


def _imports(path: Path):
    """(line, floor) of every absolute import in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, _layer(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "dlr":  # from dlr import verbs: the top floor
                yield node.lineno, "dlr"
            else:
                yield node.lineno, _layer(node.module)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package):
    offending = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, top in _imports(path):
            if top in FORBIDDEN[package]:
                offending.append(f"{path.relative_to(REPO)}:{line} imports {top}")
    assert not offending, "\n".join(offending)


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dlr.analysis.discrimination import roc_auc_delong\n    import dlr.verbs\n")
    assert list(_imports(module)) == [(2, "analysis"), (3, "dlr")]


#: handlers that call the whole run, `dlr predict` or the reviewer package rather than one stage verb
WORKFLOWS = {"run": ("runner", "run_study"), "demo": ("runner", "demo"), "package": ("package", "package_run"),
             "verify": ("package", "verify_package"), "predict": ("predict", "predict_study")}


def test_cli_handlers_call_one_verb_each():
    """Each `_cmd_*` handler of dlr/cli.py calls exactly one function: its verb of dlr.verbs, or
    the run (dlr.runner), `dlr predict` (dlr.predict) or the reviewer package (dlr.package)."""
    tree = ast.parse((REPO / "dlr" / "cli.py").read_text())
    handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_cmd_")]
    assert len(handlers) >= 9
    for handler in handlers:
        calls = [(n.func.value.id, n.func.attr) for n in ast.walk(handler) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                 and n.func.value.id in ("verbs", "runner", "package", "predict") and n.func.attr != "stage_table"]
        verb = handler.name.removeprefix("_cmd_")
        assert calls == [WORKFLOWS.get(verb, ("verbs", verb))], f"{handler.name} calls {calls or 'nothing'}"
