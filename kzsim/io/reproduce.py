"""Comparing two results folders bit for bit, and the versions a run was made with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from kzsim.version import __version__


def _same_column(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(), b.to_numpy()
    if x.dtype.kind == "f" and y.dtype.kind == "f":
        return x.shape == y.shape and bool(np.all(x.view(np.int64) == y.view(np.int64)))
    return x.shape == y.shape and bool(np.all(x == y))


def compare_runs(a: Path, b: Path) -> list[str]:
    """What differs between two results folders (empty when every bit matches)."""
    out: list[str] = []
    for name in ("paths.parquet", "timeseries.parquet"):
        left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
        if list(left.columns) != list(right.columns) or len(left) != len(right):
            out.append(f"{name}: columns or rows differ")
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
