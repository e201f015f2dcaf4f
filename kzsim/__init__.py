"""kzsim: Monte Carlo risk simulator for Bitcoin mining in Kazakhstan.

The names below are imported on first use (PEP 562), so that ``import kzsim`` and the
command line's start stay quick: the engine's compiled kernels, Dask and SALib load only
when a run or an analysis needs them.
"""

from __future__ import annotations

import importlib

from kzsim.version import __version__

_PUBLIC = {
    "simulate": "kzsim.api",
    "compare": "kzsim.api",
    "simulate_to_precision": "kzsim.api",
    "Results": "kzsim.results",
    "load_scenario": "kzsim.scenario.loading",
    "ScenarioError": "kzsim.scenario.errors",
    "Scenario": "kzsim.scenario.schema",
    "hedge_frontier": "kzsim.analysis.hedging",
    "save_scenario": "kzsim.scenario.saving",
}

__all__ = [
    "Results",
    "Scenario",
    "ScenarioError",
    "__version__",
    "compare",
    "hedge_frontier",
    "load_scenario",
    "save_scenario",
    "simulate",
    "simulate_to_precision",
]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module 'kzsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
