"""Reading scenarios: safe YAML, ``--set`` overrides, and one-line error messages.

Every problem with a scenario becomes a :class:`ScenarioError` whose lines read
``FILE: section.key: what is wrong (what is allowed)``. Nothing here prints or exits;
the CLI decides what to do with the error.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kzsim.distributions import DIST_CLASSES, DIST_NAMES
from kzsim.scenario import Scenario

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


class ScenarioError(Exception):
    """A scenario that cannot be used; ``lines`` holds one message per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    ``overrides`` maps dotted keys to values (already parsed, or strings that are
    parsed as YAML scalars/flow mappings, as ``--set`` gives them).
    """
    source = str(path)
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides, source=source)
    return scenario_from_dict(resolve_csv_paths(data, Path(path).parent), source=source)


CSV_KEYS = (
    ("market", "bootstrap", "returns_csv"),
    ("market", "replay", "btc_price_csv"),
    ("market", "replay", "difficulty_csv"),
    ("market", "replay", "fees_btc_per_day_csv"),
)


def resolve_csv_paths(data: dict, base_dir: Path) -> dict:
    """A copy of ``data`` whose relative CSV paths are taken from ``base_dir`` (the scenario's folder)."""
    from kzsim.history import resolve

    out = copy.deepcopy(data)
    for keys in CSV_KEYS:
        node = out
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            node[keys[-1]] = resolve(node[keys[-1]], base_dir)
    return out


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


def scenario_from_dict(data: dict, *, source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source=source)) from None


# ---- error translation ----------------------------------------------------------------


def format_validation_error(exc: ValidationError, *, source: str) -> list[str]:
    """Translate pydantic's errors into ``FILE: dotted.key: problem (allowed)`` lines."""
    lines: list[str] = []
    seen: set[str] = set()
    errors = exc.errors(include_url=False)
    locs = [tuple(e["loc"]) for e in errors]
    for err in errors:
        raw = tuple(err["loc"])
        if err["type"] == "too_short" and any(len(o) > len(raw) and o[: len(raw)] == raw for o in locs):
            continue  # a list whose items failed: the items' own errors say what is wrong
        loc = _clean_loc(raw)
        key = ".".join(str(p) for p in loc) or "(top level)"
        message = _describe(err, loc, raw)
        if message.startswith("@") and ": " in message:  # a section's check that names its key (scenario.at)
            sub, message = message[1:].split(": ", 1)
            key = ".".join(str(p) for p in loc) + "." + sub if loc else sub
        line = f"{source}: {key}: {message}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def _clean_loc(loc: tuple) -> tuple:
    """Drop the parts of a location that are pydantic's, not the user's."""
    out = []
    for part in loc:
        if isinstance(part, str) and (part in DIST_NAMES or "[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _fields_at(loc: tuple) -> list[str]:
    """Names of the keys allowed in the mapping at ``loc`` (for unknown-key messages).

    ``loc`` is pydantic's own location: a distribution's tag (``uniform``) in it names
    the variant whose keys are allowed.
    """
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        if part in DIST_CLASSES:
            model = DIST_CLASSES[part]
            continue
        if not isinstance(part, str) or "[" in part or part.startswith("function-"):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            # maybe an alias (e.g. `mean` -> `mean_`)
            matches = [f for f in model.model_fields.values() if f.alias == part]
            field = matches[0] if matches else None
        if field is None:
            return []
        model = _inner_model(field.annotation)
        if model is None:
            return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _inner_model(annotation: Any):
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(err: dict, loc: tuple, raw_loc: tuple) -> str:
    kind = err["type"]
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        allowed = _fields_at(raw_loc[:-1])
        hint = ""
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        if close:
            hint = f" did you mean `{close[0]}`?"
        return f"unknown key{hint} (allowed: {', '.join(allowed) if allowed else 'see kzsim schema'})"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown distribution {ctx.get('tag')!r} (allowed: {', '.join(DIST_NAMES)})"
    if kind == "union_tag_not_found":
        return f"a distribution needs a `dist` key (allowed: {', '.join(DIST_NAMES)})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ops = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        bound = next(iter(ctx.values()), "")
        return f"{_show(given)} is out of range (allowed: {ops[kind]} {bound})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{_show(given)} is not a whole number (allowed: an integer)"
    if kind in ("float_type", "float_parsing"):
        return f"{_show(given)} is not a number (allowed: a number)"
    if kind == "finite_number":
        return f"{_show(given)} is not a finite number (allowed: a finite number)"
    if kind == "too_long":
        return f"list has too many items (allowed: at most {ctx.get('max_length')})"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"):
        return f"{_show(given)} is not a date (allowed: YYYY-MM-DD)"
    if kind in ("string_type",):
        return f"{_show(given)} is not text (allowed: a string)"
    if kind == "string_too_short":
        return "is empty (allowed: non-empty text)"
    if kind == "literal_error":
        return f"{_show(given)} is not allowed (allowed: {ctx.get('expected')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{_show(given)} is not a section (allowed: a mapping of keys)"
    if kind in ("tuple_type", "list_type"):
        return f"{_show(given)} is not a list (allowed: a YAML list)"
    if kind == "too_short":
        return "list is empty (allowed: at least one item)"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        if "(allowed" not in text:
            text += " (allowed: see kzsim schema)"
        return text
    return f"{msg} (allowed: see kzsim schema)"


def _show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
