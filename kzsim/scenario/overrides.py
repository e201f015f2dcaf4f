"""Overrides: dotted keys set on a scenario's data (``--set section.key=VALUE``, ``Scenario.replace``)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.reading import _Loader


def parse_override(text: str) -> tuple[str, Any]:
    """``'section.key=VALUE'`` -> (``'section.key'``, parsed VALUE)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text}: expected section.key=VALUE"])
    key, value = text.split("=", 1)
    key = key.strip()
    try:
        parsed = yaml.load(value, Loader=_Loader) if value.strip() else None  # noqa: S506 - safe
    except yaml.YAMLError:
        raise ScenarioError([f"--set {text}: value is not valid YAML"]) from None
    return key, parsed


def apply_overrides(data: dict, overrides: dict[str, Any], *, source: str) -> dict:
    """A deep copy of ``data`` with dotted keys set (list items by index: ``farm.fleet.0.count``)."""
    out = copy.deepcopy(data)
    for dotted, value in overrides.items():
        if isinstance(value, str):
            _, value = parse_override(f"{dotted}={value}")
        parts = dotted.split(".")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            here = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ScenarioError([f"{source}: {here}: no such list item (allowed: 0 to {len(node) - 1})"])
                node = node[int(part)]
            elif isinstance(node, dict):
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
            else:
                raise ScenarioError([f"{source}: {here}: is a value, not a section"])
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ScenarioError([f"{source}: {dotted}: no such list item"])
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError([f"{source}: {dotted}: parent is a value, not a section"])
    return out
