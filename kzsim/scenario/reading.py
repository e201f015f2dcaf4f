"""Reading YAML text safely: PyYAML's safe loader, bounded in size and expansion before a
scenario is built from it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kzsim.scenario.errors import ScenarioError

MAX_SCENARIO_BYTES = 1_000_000


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, minus implicit dates: dates stay text and are checked by the
    scenario model, so a bad date gets the same one-line message as any other value."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.1 reads `1e6` as text; scenario authors mean a number (as YAML 1.2 does).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | Path) -> dict:
    source = str(path)
    p = Path(path)
    if not p.exists():
        raise ScenarioError([f"{source}: file not found"])
    if p.is_dir():
        raise ScenarioError([f"{source}: is a directory, not a scenario file (allowed: a .yaml file)"])
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{source}: cannot be read: {exc.strerror}"]) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError([f"{source}: file is {len(raw)} bytes (allowed: at most {MAX_SCENARIO_BYTES})"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([f"{source}: not a text file (allowed: UTF-8 YAML)"]) from None
    try:
        _check_expanded_size(yaml.compose(text, Loader=_Loader), source)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ScenarioError([f"{source}: YAML nests too deeply (allowed: a plain mapping of sections)"]) from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(
            [f"{source}: {where}YAML tag is not allowed: {exc.problem} (allowed: plain YAML values, no tags)"]
        ) from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}: "
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(
            [
                f"{source}: {where}YAML syntax error: {problem} (allowed: valid YAML; check brackets, quotes and indentation here)"
            ]
        ) from None
    if data is None:
        raise ScenarioError([f"{source}: file is empty (allowed: a YAML mapping of sections)"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: top level is a {type(data).__name__} (allowed: a YAML mapping of sections)"])
    return data


MAX_EXPANDED_VALUES = 100_000


def _check_expanded_size(root, source: str) -> None:
    """Refuse YAML whose aliases expand to more values than a scenario could hold
    ("billion laughs"): PyYAML shares aliased objects, but validating them walks every copy."""
    if root is None:
        return
    sizes: dict[int, int] = {}

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a node that refers back to itself counts once
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        sizes[key] = min(total, MAX_EXPANDED_VALUES + 1)
        return sizes[key]

    if size(root) > MAX_EXPANDED_VALUES:
        raise ScenarioError(
            [
                f"{source}: YAML anchors and aliases expand to over {MAX_EXPANDED_VALUES:,} values "
                "(allowed: a scenario of plain values; aliases only for small repeats)"
            ]
        )
