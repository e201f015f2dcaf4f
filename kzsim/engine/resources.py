"""How much memory and time a run takes: the estimate a large run announces and checks before it starts."""

from __future__ import annotations

from dataclasses import dataclass

from kzsim.engine.merge import TIMESERIES_SAMPLE_PATHS, TRIM_AFTER_SAMPLE_PATHS, daily_series
from kzsim.model.finance import has_decisions
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.schema import Scenario

DEFAULT_CHUNK_PATHS = 1024  # one block of paths: the kernel's tile


def default_chunk_paths() -> int:
    """Paths a chunk holds unless told (the bits of a run do not depend on it)."""
    return DEFAULT_CHUNK_PATHS


# Resource model of whole `kzsim run`s (report included), measured on the project's
# machine with the baseline: 1M paths in 46.7 s on one thread (15.6e6 path-days/s; the
# simulation alone 16.6-17.8e6), 27.3-28.9 s on two threads, 29.4-29.5 s on two local workers;
# Memory: the libraries and compiled kernels ~300 MB; a thread's chunk of 1,024 paths
# 40-60 MB (~10 (days x paths) float64 arrays with the heap's slack).
PATH_DAYS_PER_SECOND = 15.5e6


WORKING_ARRAYS = 10


BASE_BYTES = 300e6  # interpreter, numpy, scipy, pandas, numba and the compiled kernels


PER_PATH_OUTPUTS = 44  # per-path outputs of simulate_paths


# With hedges, financing, resale or an upgrade (kzsim.model.finance), measured on
# kz-2025-hedged against kz-2025-baseline, 200,000 paths, --no-report: one thread's peak
# 773 MiB against 530 (+243 MiB: ~40 for the table's extra columns, ~200 of (days x chunk)
# arrays, 34 of them of 730 x 1,024 x 8 B; two threads +211 MiB, so the estimate errs high
# there), and 20.7 s against 12.7 (the finance layer's whole-array passes, x1.62)
DECISION_ARRAYS = 34
DECISION_OUTPUTS = 23  # payback in BTC; 2 of hedges, 2 of resale, 3 of the upgrade, 15 of financing
DECISION_SECONDS_FACTOR = 1.62


# a sparse event's arrays while a block's events are drawn and spread over days: its path,
# uniforms, start, duration and the temporaries of its spreading; and its time. Measured on
# the baseline with 3,000 outages a year (9,723 a path): 4,096 paths on one thread took
# 11.5 s and 2.95 GB against 2.4 s and 0.61 GB without them
BYTES_PER_EVENT = 240
SECONDS_PER_EVENT = 0.23e-6


# speed-up of N local workers over one process, per worker (two workers: 1.59x on a whole
# 1M run: starting the cluster, and its client and scheduler sharing the cores)
LOCAL_WORKER_EFFICIENCY = 0.8


# speed-up of N threads of one process over one thread, per thread (two threads: 1.6-1.65x
# on a whole 1M run, 1.7-1.85x on its paths: the Python between the kernels holds the GIL, and
# the analyses beside the run take their share of the cores)
THREAD_EFFICIENCY = 0.82


@dataclass(frozen=True)
class ResourceEstimate:
    """Expected peak memory and time of a run (see :func:`estimate_resources`)."""

    memory_bytes: float
    seconds: float
    table_bytes: float


def estimate_resources(
    scenario: Scenario,
    paths: int,
    chunk_paths: int | None = None,
    workers: int = 1,
    cpus: int | None = None,
    threads: int = 1,
) -> ResourceEstimate:
    """Estimate the peak memory [bytes] and the time [s] of simulating ``paths`` paths, in
    this process on ``threads`` threads, or on ``workers`` local worker processes, sharing
    ``cpus`` CPUs.

    Notes
    -----
    memory = base + working (chunk x days x 8 B x arrays alive, and a block's sparse events
    at the top of their rates) + per-day sample (unless
    it is given back early in the run) + per-path table (paths x columns x 8 B, x1.1 for
    the copies that summary and report make; only the outputs and the drawn parameters
    count: a constant column is one value). Each thread holds its own working memory; with
    local workers, each holds its own base and working memory and this process the rest.
    time = path-days / one core's rate, divided by THREAD_EFFICIENCY x the threads (or
    LOCAL_WORKER_EFFICIENCY x the workers) that have a CPU each.
    """
    days = scenario.simulation.horizon_days
    chunk = max(min(chunk_paths or default_chunk_paths(), paths), BLOCK_PATHS)
    # a block's sparse events (outages, jumps, spikes, drawdowns), at the top of their rates
    events_per_path = sum(scenario.expected_events_per_path().values())
    decisions = has_decisions(scenario)
    arrays = WORKING_ARRAYS + (DECISION_ARRAYS if decisions else 0)
    working = chunk * days * 8.0 * arrays + BLOCK_PATHS * BYTES_PER_EVENT * events_per_path
    n_sample = min(paths, TIMESERIES_SAMPLE_PATHS)
    sample = n_sample * days * 8.0 * len(daily_series(scenario)) if paths - n_sample < TRIM_AFTER_SAMPLE_PATHS else 0.0
    drawn = sum(1 for dist in scenario.uncertain_parameters().values() if not dist.is_fixed)
    table = paths * (PER_PATH_OUTPUTS + (DECISION_OUTPUTS if decisions else 0) + drawn) * 8.0 * 1.1
    seconds = paths * days / PATH_DAYS_PER_SECOND * (DECISION_SECONDS_FACTOR if decisions else 1.0)
    seconds += paths * events_per_path * SECONDS_PER_EVENT
    if workers > 1:
        running = min(workers, cpus or workers)
        return ResourceEstimate(
            memory_bytes=BASE_BYTES + sample + table + workers * (BASE_BYTES + working),
            seconds=seconds / max(1.0, running * LOCAL_WORKER_EFFICIENCY),
            table_bytes=table,
        )
    threads = threads_used(paths, chunk_paths or default_chunk_paths(), threads)
    running = min(threads, cpus or threads)
    return ResourceEstimate(
        memory_bytes=BASE_BYTES + threads * working + sample + table,
        seconds=seconds / max(1.0, running * THREAD_EFFICIENCY) if running > 1 else seconds,
        table_bytes=table,
    )


def threads_used(n: int, chunk_paths: int, threads: int) -> int:
    """Threads that an in-process run of ``n`` paths asked for ``threads`` keeps busy (no
    more than its tasks)."""
    return max(1, min(threads, -(-n // thread_task_paths(chunk_paths))))


def thread_task_paths(chunk_paths: int) -> int:
    """Paths a thread's task runs: one chunk, or the chunks of one block when chunks are
    smaller than a block (a task draws each of its blocks once)."""
    return max(chunk_paths, BLOCK_PATHS // chunk_paths * chunk_paths)
