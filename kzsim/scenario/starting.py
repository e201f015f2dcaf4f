"""A scenario for one's own farm from a few answers (``kzsim init``): the closest shipped
scenario with the fleet, tariff, procurement, rules and horizon replaced, written with the
shipped file's comments (its sources) on every key it keeps.
"""

from __future__ import annotations

import re
from pathlib import Path

from kzsim.scenario.catalogue import known_models, lookup

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASES = {2025: "kz-2025-baseline.yaml", 2024: "kz-2024-rules.yaml"}
FLEET_ROW = re.compile(r"^\s*(?P<model>[^:]+?)\s*:\s*(?P<size>[0-9.eE+]+)\s*(?P<unit>mw)?\s*$", re.IGNORECASE)


def parse_fleet(text: str, cooling_overhead: float = 0.1) -> dict:
    """``"Antminer S21:2600"`` (machines) or ``"S19 XP:2MW"`` (facility power) -> a fleet row
    of the catalogue's model (ValueError naming what is allowed)."""
    m = FLEET_ROW.match(text)
    if not m:
        raise ValueError(f"{text!r}: expected MODEL:COUNT or MODEL:MW, e.g. 'Antminer S21:2600' or 'S19 XP:2MW'")
    found = lookup(m["model"])
    if found is None:
        raise ValueError(f"{m['model']!r} is not in the catalogue (allowed: {known_models()}; see kzsim models)")
    name, spec = found
    size = float(m["size"])
    if m["unit"]:
        kw = spec.hashrate_th * spec.efficiency_j_per_th / 1000 * (1 + cooling_overhead)
        count = round(size * 1000 / kw)
    else:
        count = round(size)
    if count < 1 or count != size and not m["unit"]:
        raise ValueError(f"{text!r}: the count must be a whole number of machines, at least 1")
    return {"model": name, "count": count}


def base_file(rules: int) -> Path:
    path = SCENARIOS / BASES[rules]
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: the shipped scenarios are not next to the package (allowed: kzsim installed from its "
            "repository, `pip install -e .`)"
        )
    return path


class _Keys:
    """Dotted key of each line of a block-style YAML mapping (rows of lists as ``-``)."""

    def __init__(self):
        self.stack: list[tuple[int, str]] = []

    def key(self, line: str) -> str | None:
        m = re.match(r"^(\s*)(- )?([A-Za-z0-9_]+):(.*)$", line)
        if not m:
            return None
        indent = len(m[1])
        if m[2]:  # a list row (at its key's indentation or deeper): the rows before it end
            while self.stack and (self.stack[-1][0] > indent or self.stack[-1] == (indent, "-")):
                self.stack.pop()
        else:
            while self.stack and self.stack[-1][0] >= indent:
                self.stack.pop()
        if m[2]:  # a list row: its keys sit one level deeper
            self.stack.append((indent, "-"))
            indent += 2
        self.stack.append((indent, m[3]))
        return ".".join(k for _, k in self.stack)


def _value(line: str) -> str:
    return line.split(":", 1)[1] if ":" in line else ""


def key_comments(text: str) -> dict[str, str]:
    """Each dotted key of a YAML file with its comment (the line's, and the comment-only lines
    under it at deeper indentation): the shipped files' sources."""
    out: dict[str, str] = {}
    keys = _Keys()
    last = None
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            if last and indent > last[1]:
                out[last[0]] = (out.get(last[0], "") + " " + stripped.lstrip("# ")).strip()
            continue
        key = keys.key(line)
        last = None
        if key is None:
            continue
        value = _value(line)
        if "#" in value:
            out[key] = value.split("#", 1)[1].strip()
        last = (key, indent)
    return out


def commented_yaml(text: str, comments: dict[str, str], set_here: dict[str, str]) -> str:
    """``text`` (a scenario's YAML, kzsim's own layout) with each key's comment: ``set_here``'s
    for the keys the user chose (a key ending in ``.*`` covers what is under it), the base
    file's (``comments``) for the others."""
    lines, keys = [], _Keys()
    for line in text.splitlines():
        key = None if line.lstrip().startswith("#") else keys.key(line)
        value = _value(line).strip()
        if key is None or not value or value in (">", "|"):
            lines.append(line)
            continue
        mine = [(len(k), v) for k, v in set_here.items() if key == k or (k.endswith(".*") and key.startswith(k[:-1]))]
        note = max(mine)[1] if mine else comments.get(key)  # the most specific key's
        lines.append(f"{line}  # {note}" if note else line)
    return "\n".join(lines) + "\n"
