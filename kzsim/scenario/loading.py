"""Reading scenarios: safe YAML, ``--set`` overrides, and one-line error messages.

Every problem with a scenario becomes a :class:`ScenarioError` whose lines read
``FILE: section.key: what is wrong (what is allowed)``. Nothing here prints or exits;
the CLI decides what to do with the error.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kzsim.scenario.overrides import apply_overrides, parse_value
from kzsim.scenario.reading import read_yaml
from kzsim.scenario.schema import Scenario, scenario_from_dict


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    ``overrides`` maps dotted keys to values; a string is YAML text, as ``--set`` gives it
    (``"25"`` is the number 25, ``'"2024"'`` the text 2024), parsed once.
    """
    source = str(path)
    data = read_yaml(path)
    if overrides:
        parsed = {k: parse_value(k, v) if isinstance(v, str) else v for k, v in overrides.items()}
        data = apply_overrides(data, parsed, source=source)
    return scenario_from_dict(resolve_csv_paths(data, Path(path).parent), source=source)


CSV_KEYS = (
    ("market", "bootstrap", "returns_csv"),
    ("market", "replay", "btc_price_csv"),
    ("market", "replay", "difficulty_csv"),
    ("market", "replay", "fees_btc_per_day_csv"),
)


def resolve_csv_paths(data: dict, base_dir: Path) -> dict:
    """A copy of ``data`` whose relative CSV paths are taken from ``base_dir`` (the scenario's folder)."""
    from kzsim.scenario.history import resolve

    out = copy.deepcopy(data)
    for keys in CSV_KEYS:
        node = out
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            node[keys[-1]] = resolve(node[keys[-1]], base_dir)
    return out


# ---- error translation ----------------------------------------------------------------
