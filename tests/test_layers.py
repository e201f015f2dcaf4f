"""The package's layers: folders whose imports point down only, no cycles, a pure core.

Every ``import`` in every module counts, those inside functions included. A module may
import modules of its own layer and of the layers below it (lower rank), never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kzsim"
# bottom to top (see docs/architecture.md)
RANKS = {
    "units": 0,
    "stats": 0,
    "version": 0,
    "inputs": 0,
    "scenario": 1,
    "model": 2,
    "engine": 3,
    "analysis": 4,
    "report": 5,
    "io": 6,
    "results": 7,
    "api": 8,
    "cli": 9,
    "__init__": 10,
    "__main__": 11,
    "launch": 11,
}
# what the layers of arrays in, arrays out may not import: no files, tables, plots or terminals
PURE = {"units", "stats", "model", "engine"}
NOT_IN_PURE = {"yaml", "click", "matplotlib", "rich", "pandas", "pyarrow"}
NOT_BELOW_EDGES = {"click", "matplotlib", "rich", "pyarrow"}  # scenario and analysis may read YAML or make tables


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out["kzsim." + ".".join(parts)] = path
    return out


MODULES = modules()


def layer(module: str) -> str:
    return module.split(".")[1]


def imports(module: str) -> list[tuple[str, int]]:
    """(imported name, line) of every import in the module, at any depth."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name != "kzsim":  # `from kzsim import stats` imports kzsim.stats, checked below
                found.append((name, node.lineno))
            # `from kzsim.x import y` where y is a module of its own
            for alias in node.names:
                if f"{name}.{alias.name}" in MODULES:
                    found.append((f"{name}.{alias.name}", node.lineno))
    return found


def kzsim_imports(module: str) -> set[str]:
    return {name for name, _ in imports(module) if name.startswith("kzsim.") and name in MODULES}


def test_every_module_is_in_a_known_layer():
    assert {layer(m) for m in MODULES if m != "kzsim"} <= set(RANKS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "kzsim"))
def test_imports_point_down(module):
    for name, line in imports(module):
        if name == "kzsim":
            assert layer(module) in {"__init__", "__main__"}, f"{module}:{line} imports the whole package"
        if not name.startswith("kzsim."):
            continue
        assert RANKS[layer(name)] <= RANKS[layer(module)], f"{module}:{line} imports {name}, a layer above it"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "kzsim" and layer(m) not in {"cli", "__main__"}))
def test_the_library_imports_no_terminal_or_plot_where_it_should_not(module):
    forbidden = (
        NOT_IN_PURE if layer(module) in PURE else NOT_BELOW_EDGES if RANKS[layer(module)] < RANKS["report"] else set()
    )
    for name, line in imports(module):
        assert name.split(".")[0] not in forbidden, f"{module}:{line} imports {name}"
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "input"}, f"{module}:{node.lineno} calls {node.func.id}()"


def test_no_import_cycles():
    graph = {m: kzsim_imports(m) - {m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
