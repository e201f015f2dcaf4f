"""Reading YAML text safely: PyYAML's safe loader with YAML 1.2's numbers, bounded in size,
depth and expansion, and refusing duplicate keys, before a scenario is built from it.

The same parser reads a scenario file and a ``--set`` value, once each."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kzsim.inputs import InputError, read_bounded
from kzsim.scenario.errors import ScenarioError

MAX_SCENARIO_BYTES = 1_000_000
MAX_VALUE_CHARS = 100_000  # a --set value
MAX_EXPANDED_VALUES = 100_000
MAX_DEPTH = 64  # a scenario nests 5 deep; a distribution in a list in a section, 7


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types: ``010`` is 10,
    ``0o10`` is 8, ``1e6`` a number, ``yes``/``on`` and ``1_000`` are text, ``1:30`` is text;
    dates stay text too (the scenario model checks them, with the same one-line message as
    any other value)."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    ("tag:yaml.org,2002:merge", r"^<<$", ["<"]),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # YAML 1.2: leading zeros are decimal


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml(path: str | Path) -> dict:
    """The mapping in the scenario file ``path`` (a regular file of at most 1 MB)."""
    source = str(path)
    if Path(path).is_dir():
        raise ScenarioError([f"{source}: is a directory, not a scenario file (allowed: a .yaml file)"])
    try:
        raw = read_bounded(path, MAX_SCENARIO_BYTES, "a YAML scenario file")
    except InputError as exc:
        raise ScenarioError([str(exc)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([f"{source}: not a text file (allowed: UTF-8 YAML)"]) from None
    data = parse_yaml(text, source)
    if data is None:
        raise ScenarioError([f"{source}: file is empty (allowed: a YAML mapping of sections)"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: top level is a {type(data).__name__} (allowed: a YAML mapping of sections)"])
    return data


def parse_yaml(text: str, source: str):
    """The value of the YAML ``text``; every problem is a :class:`ScenarioError` whose line
    starts with ``source`` (a file's name, or ``--set KEY`` for an override)."""
    if len(text) > MAX_VALUE_CHARS and source.startswith("--set"):
        raise ScenarioError([f"{source}: value has {len(text):,} characters (allowed: at most {MAX_VALUE_CHARS:,})"])
    try:
        root = yaml.compose(text, Loader=_Loader)
        _check_tree(root, source)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ScenarioError(
            [f"{source}: YAML nests too deeply (allowed: at most {MAX_DEPTH} levels of sections and lists)"]
        ) from None
    except yaml.constructor.ConstructorError as exc:
        raise ScenarioError(
            [f"{source}: {_where(exc)}YAML tag is not allowed: {exc.problem} (allowed: plain YAML values, no tags)"]
        ) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(
            [
                f"{source}: {_where(exc)}YAML syntax error: {problem} "
                "(allowed: valid YAML; check brackets, quotes and indentation here)"
            ]
        ) from None


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _check_tree(root, source: str) -> None:
    """Refuse YAML whose aliases expand to more values than a scenario could hold ("billion
    laughs": PyYAML shares aliased objects, but validating them walks every copy), that
    nests deeper than :data:`MAX_DEPTH`, or whose mapping gives a key twice (the last one
    would win in silence)."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    # iterative post-order walk: (node, depth, children done)
    stack = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if not done:
            if key in sizes:
                continue
            if depth > MAX_DEPTH:
                mark = node.start_mark
                raise ScenarioError(
                    [
                        f"{source}: line {mark.line + 1}, column {mark.column + 1}: YAML nests over {MAX_DEPTH} "
                        f"levels deep (allowed: at most {MAX_DEPTH} levels of sections and lists)"
                    ]
                )
            sizes[key] = 1  # a node that refers back to itself counts once
            stack.append((node, depth, True))
            for child in _children(node):
                stack.append((child, depth + 1, False))
            if isinstance(node, yaml.MappingNode):
                _check_duplicates(node, source)
        else:
            total = 1 + sum(sizes.get(id(child), 1) for child in _children(node))
            sizes[key] = min(total, MAX_EXPANDED_VALUES + 1)
    if sizes[id(root)] > MAX_EXPANDED_VALUES:
        raise ScenarioError(
            [
                f"{source}: YAML anchors and aliases expand to over {MAX_EXPANDED_VALUES:,} values "
                "(allowed: a scenario of plain values; aliases only for small repeats)"
            ]
        )


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_duplicates(node: yaml.MappingNode, source: str) -> None:
    seen: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        name = key_node.value
        if name in seen:
            first, mark = seen[name].start_mark, key_node.start_mark
            raise ScenarioError(
                [
                    f"{source}: line {mark.line + 1}, column {mark.column + 1}: key `{name}` is given twice "
                    f"(first on line {first.line + 1}) (allowed: each key once in a section)"
                ]
            )
        seen[name] = key_node
