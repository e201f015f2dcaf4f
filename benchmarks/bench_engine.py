"""Engine throughput: path-days per second, against drawing the same random numbers alone.

Usage::

    python benchmarks/bench_engine.py                       # 10k, 50k, 100k paths of the baseline
    python benchmarks/bench_engine.py --paths 1000000 --max-ratio inf  # print, never fail
    python benchmarks/bench_engine.py --paths 1000000 --workers 2   # + scaling on a LocalCluster
    python benchmarks/bench_engine.py --paths 1000000 --threads 2   # + scaling on threads

For each path count, in a fresh process (so the peak memory is the run's own):

* ``sim``: ``run_paths`` on the scenario (draws + model + per-day statistics), one core;
* ``draws``: the same blocks drawn with the same generators and call pattern
  (``draw_block``), nothing else;
* both after a warm-up of one block (loading the compiled kernels takes ~0.3 s once per
  process) and with the engine's allocator setting (:mod:`kzsim.engine.allocator`, as the ``kzsim`` command sets it);
* ``ratio`` = sim / draws: how much the economics cost on top of the random numbers;
* ``numpy draws``: the same draws with numpy's own ``Generator.standard_normal`` for the
  normals (the issue's reference call pattern) instead of kzsim's compiled copy of it (the
  same generator and the same bits, ~3.5x faster: :func:`kzsim.model.loops.standard_normal`),
  and ``np ratio`` = sim / numpy draws;
* ``peak MB``: the process's maximum resident memory;
* ``working MB``: the peak less the memory before the run (interpreter, numpy, scipy,
  pandas, numba and its compiled kernels: ~290 MB, measured after the warm-up has given
  its memory back) and less the per-path results table (which grows with the paths): what
  the engine itself needs, bounded by the chunk size (and the number of threads).

With ``--workers N`` it also runs the simulation on a Dask ``LocalCluster`` of one and of
N single-threaded worker processes, started as ``kzsim run --workers N`` starts them
(:func:`kzsim.engine.cluster.local_cluster`), and prints the speed-up (time with one worker /
time with N; the run's bits are the same). The workers are warmed up first, as the one-process
modes are (imports, kernels, a one-path run on every worker); the time that takes with N
workers is printed as the cold start, which a fresh ``kzsim run --workers N`` pays once.

With ``--threads N`` it also runs the simulation in one process on N threads (as
``kzsim run`` does by default, one thread a CPU) and prints the speed-up over one thread,
the peak and the working memory (each thread holds a chunk's).

With ``--repeat R`` every measurement is R fresh runs, and the table shows the fastest
time (the machine's speed drifts by a few per cent between runs) and the largest memory.

Exits 1 when a ratio exceeds ``--max-ratio`` (default 1.5, the scale issue's bound; on the
project's 2-core machine the baseline's ratio is ~2.7 at a million paths and higher at fewer
(fixed costs), so the script exits 1 there: ``--max-ratio inf`` only prints).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = ROOT / "scenarios" / "kz-2025-baseline.yaml"
MAX_RATIO = 1.5  # the scale issue's target: the simulation within 1.5x of drawing its random numbers


def _warm_up(scenario: str, seed: int) -> None:
    """What a worker's first task would pay: imports, loading the kernels, a one-path run."""
    from kzsim.engine.allocator import keep_freed_memory
    from kzsim.engine.run import run_paths
    from kzsim.scenario.loading import load_scenario

    keep_freed_memory()
    run_paths(load_scenario(scenario), paths=1, seed=seed)


def _resident_mb() -> float:
    """This process's resident memory now [MB of 2^20 bytes] (its peak where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(scenario: str, paths: int, mode: str, chunk_paths: int) -> dict:
    from kzsim.engine.allocator import keep_freed_memory
    from kzsim.engine.draws import draw_block
    from kzsim.engine.memory import release_freed_memory
    from kzsim.engine.run import run_paths
    from kzsim.model.paths import Calendar
    from kzsim.model.rng import blocks_for
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(scenario)
    seed = sc.simulation.seed
    cal = Calendar.of(sc)
    # both modes run with the engine's allocator setting, after a warm-up of one block: the
    # first call of a process loads the compiled kernels (~0.3 s), not what is measured here
    keep_freed_memory()
    if mode == "numpy-draws":  # numpy's own calls for the normals (same bits)
        import kzsim.model.loops

        kzsim.model.loops.standard_normal = lambda generator, shape: generator.standard_normal(shape)
    if mode == "sim" or mode.startswith("threads="):
        run_paths(sc, paths=1, seed=seed + 1)
    else:
        draw_block(sc, cal, seed + 1, 0)
    # interpreter, libraries and compiled kernels: the warm-up's working memory is given
    # back first, so that the run's own counts as working memory
    release_freed_memory()
    base_mb = _resident_mb()
    table_mb = 0.0
    cold_seconds = 0.0
    t0 = time.perf_counter()
    if mode == "sim" or mode.startswith("threads="):
        threads = int(mode.split("=")[1]) if mode.startswith("threads=") else 1
        run = run_paths(sc, paths=paths, chunk_paths=chunk_paths, threads=threads)
        columns = list(run.per_path.values()) + list(run.parameters.values())
        table_mb = sum(v.nbytes for v in columns if v.strides != (0,)) / 1e6  # constants are views
    elif mode.startswith("workers="):
        from distributed import Client

        from kzsim.engine.cluster import local_cluster

        n = int(mode.split("=")[1])
        t_cold = time.perf_counter()
        with (
            local_cluster(n) as cluster,
            Client(cluster) as client,
        ):  # as kzsim run --workers starts it
            # every worker warmed up as the one-process modes are (imports, compiled
            # kernels, a one-path run); starting the cluster and this are its cold start
            client.run(_warm_up, scenario, seed + 1)
            cold_seconds = time.perf_counter() - t_cold
            t0 = time.perf_counter()
            run_paths(sc, paths=paths, chunk_paths=chunk_paths, client=client)
    else:
        for block in blocks_for(0, paths):
            draw_block(sc, cal, seed, block)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "cold_seconds": cold_seconds,
        "peak_mb": peak_mb,
        "working_mb": peak_mb - base_mb - table_mb,
        "path_days": paths * sc.simulation.horizon_days,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--paths", type=int, nargs="*", default=[10_000, 50_000, 100_000])
    parser.add_argument("--chunk-paths", type=int, default=None)
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=MAX_RATIO,
        help=f"exit 1 when sim/draws exceeds this (default {MAX_RATIO}, the scale issue's bound; inf: never)",
    )
    parser.add_argument("--workers", type=int, default=None, help="also measure the speed-up of N Dask workers")
    parser.add_argument("--threads", type=int, default=None, help="also measure the speed-up of N threads")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement: the fastest time and the largest memory"
    )
    parser.add_argument("--child", nargs=2, metavar=("PATHS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from kzsim.engine.resources import default_chunk_paths

    chunk = args.chunk_paths or default_chunk_paths()
    if args.child:
        print(json.dumps(measure(args.scenario, int(args.child[0]), args.child[1], chunk)))
        return 0

    def child(paths: int, mode: str) -> dict:
        cmd = [
            sys.executable,
            __file__,
            "--scenario",
            args.scenario,
            "--chunk-paths",
            str(chunk),
            "--child",
            str(paths),
            mode,
        ]
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def measured(paths: int, mode: str) -> dict:
        """``--repeat`` fresh runs of a mode: the fastest time, the largest memory."""
        runs = [child(paths, mode) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        for key in ("peak_mb", "working_mb"):
            best[key] = max(r[key] for r in runs)
        return best

    print(f"scenario {Path(args.scenario).name}, chunk {chunk} paths, one process")
    print(
        f"{'paths':>10} {'sim s':>8} {'M path-days/s':>14} {'draws s':>8} {'ratio':>6} {'peak MB':>8} "
        f"{'working MB':>11} {'numpy draws s':>14} {'np ratio':>9}"
    )
    worst = 0.0
    one_thread = {}
    for paths in args.paths:
        sim = one_thread[paths] = measured(paths, "sim")
        draws = measured(paths, "draws")
        numpy_draws = measured(paths, "numpy-draws")
        ratio = sim["seconds"] / draws["seconds"]
        worst = max(worst, ratio)
        rate = sim["path_days"] / sim["seconds"] / 1e6
        print(
            f"{paths:>10,} {sim['seconds']:>8.2f} {rate:>14.2f} {draws['seconds']:>8.2f} {ratio:>6.2f} "
            f"{sim['peak_mb']:>8.0f} {sim['working_mb']:>11.0f} {numpy_draws['seconds']:>14.2f} "
            f"{sim['seconds'] / numpy_draws['seconds']:>9.2f}"
        )
    if args.threads:
        print(
            f"{'paths':>10} {'1 thread s':>11} {f'{args.threads} threads s':>12} {'speed-up':>9} "
            f"{'peak MB':>8} {'working MB':>11}"
        )
        for paths in args.paths:
            many = measured(paths, f"threads={args.threads}")
            print(
                f"{paths:>10,} {one_thread[paths]['seconds']:>11.2f} {many['seconds']:>12.2f} "
                f"{one_thread[paths]['seconds'] / many['seconds']:>9.2f} {many['peak_mb']:>8.0f} "
                f"{many['working_mb']:>11.0f}"
            )
    if args.workers:
        print(
            f"{'paths':>10} {'1 worker s':>11} {f'{args.workers} workers s':>12} {'speed-up':>9} {'cold start s':>13}"
        )
        for paths in args.paths:
            one = measured(paths, "workers=1")
            many = measured(paths, f"workers={args.workers}")
            print(
                f"{paths:>10,} {one['seconds']:>11.2f} {many['seconds']:>12.2f} "
                f"{one['seconds'] / many['seconds']:>9.2f} {many['cold_seconds']:>13.2f}"
            )
    if worst > args.max_ratio:
        print(f"FAIL: sim/draws ratio {worst:.2f} exceeds {args.max_ratio}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
