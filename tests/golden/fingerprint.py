"""Golden outputs: what every shipped scenario gives at a fixed size and seed, per execution mode.

A *fingerprint* of a run is its ``summary.json`` (as written: NaN and infinities as null)
and SHA-256 hashes of the per-path table that ``paths.parquet`` holds and of the per-day
table that ``timeseries.parquet`` holds, taken over the arrays themselves (column names,
dtypes and bytes) rather than the files, whose bytes also carry the writer's version.

Only the public API is used (``kzsim.load_scenario``, ``kzsim.simulate``,
``Results.summary``, ``Results.path_columns``, ``Results.timeseries``), so the same
fingerprints can be taken before and after a change of the package's insides.

The cases live in ``tests/golden/cases/<scenario>.json``; ``tests/golden/update.py``
writes them (see its docstring for when that is allowed) and
``tests/golden/test_golden.py`` checks them.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
CASES = Path(__file__).resolve().parent / "cases"
PATHS = 3000  # two whole blocks of 1,024 and a part of a third
SEED = 20261205
# name -> keyword arguments of kzsim.simulate; every mode must give the same fingerprint
MODES = {
    "threads-1": {"threads": 1},
    "threads-2-chunk-333": {"threads": 2, "chunk_paths": 333},
    "chunk-7": {"threads": 1, "chunk_paths": 7},
}
CLUSTER_MODE = "cluster-2-workers"  # a LocalCluster of two single-threaded worker processes
# the written analyses (48 h blackout, shut-off value, risk drivers: runs of their own) are
# recorded for these scenarios, single-threaded
ANALYSES_SCENARIOS = ("kz-2025-baseline", "halving-2028")


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.yaml"))


def json_safe(value):
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _table_sha256(columns: dict) -> str:
    digest = hashlib.sha256()
    for name, values in columns.items():
        a = np.ascontiguousarray(np.asarray(values))
        digest.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def fingerprint(results) -> dict:
    """The summary as ``summary.json`` holds it and the hashes of the two tables."""
    ts = results.timeseries
    return {
        "summary": json_safe(results.summary),
        "paths_sha256": _table_sha256(results.path_columns()),
        "timeseries_sha256": _table_sha256({c: ts[c].to_numpy() for c in ts.columns}),
    }


def run(scenario_file: Path, **mode) -> dict:
    import kzsim

    scenario = kzsim.load_scenario(scenario_file)
    return fingerprint(kzsim.simulate(scenario, paths=PATHS, seed=SEED, **mode))


def with_analyses(scenario_file: Path) -> dict:
    """The summary with the analyses that ``Results.write`` adds to it (those that apply)."""
    import kzsim

    scenario = kzsim.load_scenario(scenario_file)
    names = ("shutoff_value",) if scenario.farm.economic_shutoff else ()
    results = kzsim.simulate(scenario, paths=PATHS, seed=SEED, threads=1, analyses=names)
    results.blackout_48h()  # the run's paths and one run with the blackout
    results.risk_drivers()  # read off the run's paths
    return json_safe(results.summary)


def case_file(scenario_file: Path) -> Path:
    return CASES / f"{scenario_file.stem}.json"


def load_case(scenario_file: Path) -> dict:
    return json.loads(case_file(scenario_file).read_text())


def dumps(value) -> str:
    """JSON with floats written exactly (repr), so equal text means equal bits."""
    return json.dumps(value, indent=1, sort_keys=False, allow_nan=False) + "\n"
