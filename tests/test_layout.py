"""The library's shape: which module may import which, and how long a function is."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minicse"

# module -> the minicse modules it may import (at any depth: top level or in a function)
ALLOWED = {
    "utils": set(),
    "losses": {"utils"},
    "metrics": {"utils"},
    "pooling": {"utils"},
    "augment": {"utils"},
    "hub": {"utils"},
    "data": {"utils", "hub"},
    "batching": set(),
    "encoder": {"utils", "hub", "pooling", "batching"},
    "evaluate": {"utils", "data", "metrics"},
    "config": {"utils", "data", "pooling"},
    "inputs": {"utils", "data", "config"},
    "distributed": {"utils"},
    "checkpoint": {"encoder", "distributed", "utils"},  # never train
    "gradcache": {"checkpoint"},
}


def _imports(module: str) -> set[str]:
    """The minicse modules ``module`` imports anywhere in its source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):  # from .x import y, from . import x
            name = (node.module or "").removeprefix("minicse").lstrip(".")
            if node.level or (node.module or "").startswith("minicse"):
                found |= {name} if name else {a.name for a in node.names}
    return found - {"", "__version__"}


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_dependencies_run_one_way(module):
    assert _imports(module) <= ALLOWED[module], _imports(module) - ALLOWED[module]


def test_importing_data_loads_no_model_code():
    code = (
        "import sys, minicse.data\n"
        "bad = [m for m in ('transformers', 'minicse.encoder', 'minicse.train') "
        "if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_function_is_longer_than_fifty_lines():
    long = []
    for file in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 50:
                    long.append(f"{file.name}:{node.name} ({lines} lines)")
    assert not long, long
