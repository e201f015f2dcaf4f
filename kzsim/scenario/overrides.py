"""Overrides: dotted keys set on a scenario's data (``--set section.key=VALUE``, ``Scenario.replace``).

A ``--set`` value is YAML text, parsed once (by :func:`parse_value`, with the scenario
file's own parser and bounds); :func:`apply_overrides` sets values as they are given."""

from __future__ import annotations

import copy
import re
from typing import Any

from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.reading import parse_yaml

MAX_KEY_PARTS = 16
_KEY = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


def split_override(text: str) -> tuple[str, str]:
    """``'section.key=VALUE'`` -> (``'section.key'``, ``'VALUE'``), the value still text."""
    if "=" not in text:
        raise ScenarioError([f"--set {_short(text)}: expected SECTION.KEY=VALUE (allowed: e.g. simulation.paths=2000)"])
    key, value = text.split("=", 1)
    key = key.strip()
    if not _KEY.match(key) or key.count(".") >= MAX_KEY_PARTS:
        raise ScenarioError(
            [
                f"--set {_short(key)}: not a dotted key (allowed: names of letters, digits and _ joined by dots, "
                f"at most {MAX_KEY_PARTS} parts, e.g. farm.fleet.0.count)"
            ]
        )
    return key, value


def parse_value(key: str, text: str) -> Any:
    """The YAML value of ``--set key=text`` (None for an empty text)."""
    return parse_yaml(text, f"--set {key}") if text.strip() else None


def parse_override(text: str) -> tuple[str, Any]:
    """``'section.key=VALUE'`` -> (``'section.key'``, VALUE parsed as YAML, once)."""
    key, value = split_override(text)
    return key, parse_value(key, value)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def apply_overrides(data: dict, overrides: dict[str, Any], *, source: str) -> dict:
    """A deep copy of ``data`` with dotted keys set to the values given (list items by
    index: ``farm.fleet.0.count``); a value is never parsed here."""
    out = copy.deepcopy(data)
    for dotted, value in overrides.items():
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
                raise ScenarioError([f"{source}: {dotted}: no such list item (allowed: 0 to {len(node) - 1})"])
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError([f"{source}: {dotted}: parent is a value, not a section"])
    return out
