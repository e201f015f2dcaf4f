"""The pure core imports no YAML, CLI or plotting library and prints nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = (
    "units",
    "distributions",
    "rng",
    "processes",
    "prices",
    "calibration",
    "dependence",
    "model",
    "engine",
    "stats",
    "allocator",
    "kernel",
)
FORBIDDEN = {"yaml", "click", "matplotlib", "rich", "pandas", "pyarrow"}
PACKAGE = Path(__file__).resolve().parents[1] / "kzsim"


@pytest.mark.parametrize("module", CORE)
def test_core_module_stays_pure(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
            if name.startswith("kzsim."):
                assert name.split(".")[1] in CORE + ("scenario",), f"{module} imports {name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "open", "input"}, f"{module} calls {node.func.id}()"
