"""Comparing two results folders bit for bit, and the versions a run was made with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from kzsim.inputs import InputError, read_bounded, regular_file_or_error
from kzsim.version import __version__


def _same_column(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(), b.to_numpy()
    if x.dtype.kind == "f" and y.dtype.kind == "f":
        return x.shape == y.shape and bool(np.all(x.view(np.int64) == y.view(np.int64)))
    return x.shape == y.shape and bool(np.all(x == y))


class ResultsFolderError(ValueError):
    """A results folder that cannot be re-run or compared; the message names the file."""


MAX_JSON_BYTES = 50_000_000
ALLOWED = "a folder written by kzsim run"


def read_results_folder(folder: Path) -> dict:
    """The manifest of a results folder, once every file a re-run compares is checked: the
    manifest's paths and seed in range, both tables readable Parquet, the summary JSON
    (:class:`ResultsFolderError` naming the file otherwise)."""
    import pyarrow.parquet as pq

    def load_json(name: str):
        try:
            raw = read_bounded(folder / name, MAX_JSON_BYTES, ALLOWED)
            return json.loads(raw.decode("utf-8"))
        except InputError as exc:
            raise ResultsFolderError(str(exc)) from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ResultsFolderError(f"{folder / name}: not valid JSON (allowed: {ALLOWED})") from None

    manifest = load_json("manifest.json")
    if not isinstance(manifest, dict):
        raise ResultsFolderError(f"{folder / 'manifest.json'}: not a kzsim manifest (allowed: {ALLOWED})")
    for key, low, high in (("paths", 1, 100_000_000), ("seed", 0, 2**63 - 1)):
        value = manifest.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ResultsFolderError(
                f"{folder / 'manifest.json'}: {key}: {json.dumps(value)[:40]} "
                f"(allowed: a whole number from {low:,} to {high:,}, as kzsim run writes it)"
            )
    for name in ("paths.parquet", "timeseries.parquet"):
        problem = regular_file_or_error(folder / name, ALLOWED)
        if problem:
            raise ResultsFolderError(problem)
        try:
            pq.read_metadata(folder / name)
        except Exception:  # noqa: BLE001 - Arrow's errors for a truncated or garbled file vary
            raise ResultsFolderError(
                f"{folder / name}: not a readable Parquet file (truncated or damaged?) (allowed: {ALLOWED})"
            ) from None
    if not isinstance(load_json("summary.json"), dict):
        raise ResultsFolderError(f"{folder / 'summary.json'}: not a kzsim summary (allowed: {ALLOWED})")
    return manifest


def compare_runs(a: Path, b: Path) -> list[str]:
    """What differs between two results folders (empty when every bit matches). Columns are
    matched by name: their order in a table is not a result."""
    out: list[str] = []
    for name in ("paths.parquet", "timeseries.parquet"):
        left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
        if set(left.columns) != set(right.columns) or len(left) != len(right):
            only = sorted(set(left.columns) ^ set(right.columns))
            out.append(f"{name}: {len(left):,} and {len(right):,} rows; columns in one only: {only or 'none'}")
            continue
        out.extend(f"{name}: column {c} differs" for c in left.columns if not _same_column(left[c], right[c]))
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    out.extend(f"summary.json: {k} differs" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k))
    return out


def version_differences(manifest: dict) -> list[str]:
    """Versions recorded in a manifest that differ from the ones running now."""
    now = {"kzsim_version": __version__, "numpy_version": np.__version__, "scipy_version": scipy.__version__}
    return [
        f"{key.removesuffix('_version')} was {manifest.get(key)}, now {value}: bits may differ"
        for key, value in now.items()
        if manifest.get(key) not in (None, value)
    ]
