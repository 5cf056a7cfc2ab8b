"""The one-way arrows of docs/architecture.md, read from the source: the device runtime (sdk/) imports neither the
training side nor the deploy side, not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ABOVE_SDK = ("training", "firmware_tools", "lpr_cli")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` names, anywhere in the tree, with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            found.append((node.lineno, node.args[0].value))
    return found


def _dynamic_import(call: ast.Call) -> bool:
    """``importlib.import_module("name")`` or ``__import__("name")`` with the name written out."""
    name = getattr(call.func, "attr", getattr(call.func, "id", ""))
    first = call.args[0] if call.args else None
    return name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for line, module in imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if module.split(".")[0] in ABOVE_SDK:
                out.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return out


def test_sdk_imports_neither_training_nor_firmware_tools():
    assert len(list((REPO / "sdk").rglob("*.py"))) > 20  # the walk sees the runtime and its device commands
    assert violations(REPO / "sdk") == []


@pytest.mark.parametrize(
    "source",
    [
        "import training.export",
        "from firmware_tools.slots import Slots",
        "def f():\n    from training.cli import COMMANDS\n",
        "import importlib\nimportlib.import_module('firmware_tools.agent')",
    ],
)
def test_the_check_sees_every_form_of_import(source):
    found = [m for _, m in imported_modules(ast.parse(source))]
    assert found and found[-1].split(".")[0] in ABOVE_SDK
