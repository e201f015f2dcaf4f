"""Scenario errors: every problem becomes a :class:`ScenarioError` whose lines read
``FILE: section.key: what is wrong (what is allowed)``. Nothing here prints or exits; the
command line decides what to do with the error."""

from __future__ import annotations

import difflib
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


class ScenarioError(Exception):
    """A scenario that cannot be used; ``lines`` holds one message per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def format_validation_error(exc: ValidationError, *, source: str, root: type[BaseModel]) -> list[str]:
    """Translate pydantic's errors into ``FILE: dotted.key: problem (allowed)`` lines;
    ``root`` is the model that was validated (unknown keys are named against its fields)."""
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
        message = _describe(err, loc, raw, root)
        if message.startswith("@") and ": " in message:  # a section's check that names its key (scenario.at)
            sub, message = message[1:].split(": ", 1)
            key = ".".join(str(p) for p in loc) + "." + sub if loc else sub
        line = f"{source}: {key}: {message}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def _tagged_variants() -> dict:
    """The models of tagged unions by their tag (a distribution's ``dist``, a hedge's ``type``):
    pydantic puts the tag in an error's location, where the user wrote none."""
    from kzsim.scenario.decisions import HEDGE_CLASSES
    from kzsim.scenario.distributions import DIST_CLASSES

    return {**DIST_CLASSES, **HEDGE_CLASSES}


def _clean_loc(loc: tuple) -> tuple:
    """Drop the parts of a location that are pydantic's, not the user's."""
    tags = _tagged_variants()
    out = []
    for part in loc:
        if isinstance(part, str) and (part in tags or "[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _fields_at(loc: tuple, root: type[BaseModel]) -> list[str]:
    """Names of the keys allowed in the mapping at ``loc`` (for unknown-key messages).

    ``loc`` is pydantic's own location: a distribution's tag (``uniform``) in it names
    the variant whose keys are allowed.
    """
    tags = _tagged_variants()
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if part in tags:
            model = tags[part]
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

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(err: dict, loc: tuple, raw_loc: tuple, root: type[BaseModel]) -> str:
    from kzsim.scenario.distributions import DIST_NAMES

    kind = err["type"]
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        allowed = _fields_at(raw_loc[:-1], root)
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
        return f"list has {ctx.get('actual_length')} items (allowed: at most {ctx.get('max_length')})"
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
        least = ctx.get("min_length", 1)
        if least > 1:
            return f"list has {ctx.get('actual_length')} items (allowed: {least} or more)"
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
