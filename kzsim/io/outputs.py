"""Writing a run's files: atomically, never over a user's results without ``force``.

All files of a run are written into a hidden temporary folder beside the target, then
the folder is renamed into place, so a reader sees either the previous complete results
or the new complete results, never a mix or a truncated file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kzsim.engine.concurrency import Background
from kzsim.engine.system import usable_cpus
from kzsim.io.folders import NonFiniteResults, write_folder, write_json
from kzsim.model.rng import BIT_GENERATOR, BLOCK_PATHS
from kzsim.report import collector_paused

OUTPUT_FILES = (
    "summary.json",
    "paths.parquet",
    "timeseries.parquet",
    "timeseries.csv",
    "report.pdf",
    "scenario.resolved.yaml",
    "manifest.json",
)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def data_files(scenario) -> list[str]:
    """The CSV files a scenario reads (bootstrap history when that model is used, replay files)."""
    from kzsim.scenario.loading import CSV_KEYS

    data = scenario.to_dict()
    files = []
    for keys in CSV_KEYS:
        if keys[1] == "bootstrap" and scenario.market.price_model != "bootstrap":
            continue
        node = data
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, str):
            files.append(node)
    return files


def manifest(results, scenario_file: str | Path | None, command: str | None) -> dict:
    import pandas
    import scipy

    from kzsim.version import __version__

    return {
        "kzsim_version": __version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "pandas_version": pandas.__version__,
        "python_version": platform.python_version(),
        "bit_generator": BIT_GENERATOR,
        "block_paths": BLOCK_PATHS,
        "seed": results.run.seed,
        "paths": results.run.paths,
        "scenario_name": results.scenario.name,
        "scenario_file": str(scenario_file) if scenario_file else None,
        "scenario_file_sha256": file_sha256(scenario_file) if scenario_file else None,
        "data_files_sha256": {path: file_sha256(path) for path in data_files(results.scenario)},
        "command": command,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def check_finite(per_path: dict[str, np.ndarray]) -> None:
    """Refuse per-path outputs holding an infinity, or a profit that is not a number (NaN
    elsewhere means "none": no BTC mined, no payback within the horizon)."""
    bad = {}
    for name, values in per_path.items():
        values = np.asarray(values)
        if values.dtype.kind != "f":
            continue
        count = int(np.count_nonzero(np.isinf(values)))
        if name == "profit_usd":
            count = int(np.count_nonzero(~np.isfinite(values)))
        if count:
            bad[name] = count
    if bad:
        shown = ", ".join(f"{name} on {count:,} paths" for name, count in list(bad.items())[:4])
        raise NonFiniteResults(
            f"the run's outputs are not finite ({shown}{', ...' if len(bad) > 4 else ''}): the scenario's values "
            "overflow the arithmetic (allowed: values that keep every output finite; lower the largest rates, "
            "prices or the horizon)"
        )


def write_results(
    results,
    out_dir: str | Path,
    *,
    force: bool = False,
    scenario_file: str | Path | None = None,
    report: bool = True,
    command: str | None = None,
) -> Path:
    """Write summary, tables, report, resolved scenario and manifest into ``out_dir``
    (:class:`NonFiniteResults` if an output overflowed: nothing is written)."""
    check_finite(results.run.per_path)
    from kzsim.analysis.summary import analyses_for_write

    # what idling on losing days earned (unless the run brought it); the article's "48 h
    # blackout" question (the run's paths and one run with the blackout); the risk drivers
    # the report's first page names (read off the run's paths)
    for name in analyses_for_write(results.scenario, report):
        getattr(results, name)()
    results.blackout_48h()
    if report:
        results.risk_drivers()

    def fill(tmp: Path) -> None:
        write_json(tmp / "summary.json", results.summary)
        # the per-path table (Arrow encodes it without the GIL) is written on a thread of its
        # own while the report is drawn: ~1 s less at a million paths on two cores (on one
        # CPU first, as the two at once would only raise the peak memory)
        table = Background(
            write_path_table,
            results.path_columns(),
            tmp / "paths.parquet",
            name="kzsim-paths",
            parallel=usable_cpus() > 1,
        )
        try:
            ts = results.timeseries
            ts.to_parquet(tmp / "timeseries.parquet", index=False)
            ts.to_csv(tmp / "timeseries.csv", index=False)
            (tmp / "scenario.resolved.yaml").write_text(results.scenario.to_yaml())
            write_json(tmp / "manifest.json", manifest(results, scenario_file, command))
            if report:
                with collector_paused():  # matplotlib's import too (~0.1 s less)
                    from kzsim.report.pdf import write_report

                    write_report(results, tmp / "report.pdf", command=command)
        finally:
            table.wait()  # on an error too: the folder is removed after, not while it writes
        table.result()

    return write_folder(out_dir, fill, force=force)


# rows of paths.parquet encoded at a time: its buffers (~13 MB for the baseline's ~100
# columns) are written beside the report, so they add to the run's peak memory (65,536
# rows added ~40 MB at a million paths; the file is 0.2 % larger with the smaller groups)
PARQUET_ROWS_PER_GROUP = 16_384


def write_path_table(columns: dict[str, np.ndarray], path: Path) -> None:
    """The per-path table as Parquet, one row group of :data:`PARQUET_ROWS_PER_GROUP` paths at
    a time, straight from the arrays: memory stays one row group above the arrays (a
    DataFrame, or one Arrow table of everything, would copy the largest table of the run)."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    schema = pa.schema([(k, pa.from_numpy_dtype(np.asarray(v).dtype)) for k, v in columns.items()])
    # dictionary encoding only for the columns that hold one value (views with stride 0): on
    # a million distinct floats it tried and gave up row group by row group (3.1 s instead
    # of 1.1 s for 100 columns, and a larger file)
    constant = [k for k, v in columns.items() if np.asarray(v).strides == (0,)]
    with pq.ParquetWriter(path, schema, use_dictionary=constant) as writer:
        for a in range(0, max(n, 1), PARQUET_ROWS_PER_GROUP):
            part = [np.ascontiguousarray(columns[k][a : a + PARQUET_ROWS_PER_GROUP]) for k in names]
            writer.write_table(pa.table(part, schema=schema))
