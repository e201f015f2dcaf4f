"""Writing a scenario back to YAML: every key in the schema's order, distributions in their
one-line form (``{dist: uniform, low: 1, high: 2}``), constants as plain numbers, the
description kept; :func:`kzsim.load_scenario` reads it back to an equal scenario.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from kzsim.version import __version__


class _Flow(dict):
    """A mapping written on one line (a distribution)."""


class _Dumper(yaml.SafeDumper):
    pass


def _flow(dumper: yaml.SafeDumper, data: _Flow):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _text(dumper: yaml.SafeDumper, data: str):
    style = ">" if len(data) > 80 and "\n" not in data.rstrip("\n") else ("|" if "\n" in data.rstrip("\n") else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(_Flow, _flow)
_Dumper.add_representer(str, _text)


def _mark(node):
    """The tree with every distribution (a mapping with a ``dist`` key) marked for one line."""
    if isinstance(node, dict):
        marked = {k: _mark(v) for k, v in node.items()}
        return _Flow(marked) if "dist" in node else marked
    if isinstance(node, list):
        return [_mark(v) for v in node]
    return node


def scenario_yaml(scenario) -> str:
    """The scenario as YAML text (a comment line says what wrote it)."""
    body = yaml.dump(
        _mark(scenario.to_dict()),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return f"# kzsim scenario {scenario.name!r}, written by kzsim {__version__}\n{body}"


def save_scenario(scenario, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``scenario`` to ``path`` as YAML, atomically: the file appears whole or not at
    all. An existing file is replaced only with ``overwrite=True`` (FileExistsError otherwise)."""
    return write_text(path, scenario_yaml(scenario), overwrite=overwrite)


def write_text(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """``text`` into ``path`` atomically; an existing file only with ``overwrite=True``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file exists: nothing the user had is replaced
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
