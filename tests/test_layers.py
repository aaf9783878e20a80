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


def _imports(path: Path):
    """(line, top-level package) of every absolute import in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


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
    module.write_text("def f():\n    from analysis.discrimination import roc_auc_delong\n")
    assert list(_imports(module)) == [(2, "analysis")]


def test_cli_handlers_call_one_verb_each():
    """Each `_cmd_*` handler of dlr/cli.py calls exactly one function of dlr.verbs."""
    tree = ast.parse((REPO / "dlr" / "cli.py").read_text())
    handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_cmd_")]
    assert len(handlers) >= 9
    for handler in handlers:
        calls = [n.func.attr for n in ast.walk(handler) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                 and n.func.value.id == "verbs"]
        assert len(calls) == 1, f"{handler.name} calls {calls or 'no verb'}"
        assert handler.name.removeprefix("_cmd_") == calls[0], f"{handler.name} calls verbs.{calls[0]}"
