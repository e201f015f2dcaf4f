"""The chunked Monte Carlo engine: named streams, block draws, chunks of paths.

Random inputs are drawn per block of :data:`kzsim.model.rng.BLOCK_PATHS` paths from named
streams and sliced to the chunk being simulated, so results are bit-identical for any
chunk size. Memory is bounded by the chunk size (times the threads that run chunks),
apart from the per-path table and a fixed sample of paths kept for the per-day
percentiles until they are taken.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import numpy as np

from kzsim.engine.draws import inputs_for
from kzsim.engine.memory import release_freed_memory
from kzsim.engine.merge import (
    TIMESERIES_SAMPLE_PATHS,
    ChunkResult,
    Merger,
    RunOutput,
    RunPrefix,
    combine_chunks,
    compact_chunk,
    daily_series,
)
from kzsim.engine.resources import default_chunk_paths, thread_task_paths
from kzsim.model import compiling
from kzsim.model.paths import Calendar, block_sum, simulate_paths
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.schema import Scenario

Progress = Callable[[int, int], None]


def _pack(values: dict[str, np.ndarray]) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(values)
    return names, np.stack([np.asarray(values[k], dtype=np.float64) for k in names])


def simulate_chunk(
    scenario: Scenario,
    seed: int,
    start: int,
    stop: int,
    n_paths: int,
    cache: dict | None = None,
    overrides: dict | None = None,
    percentiles: bool = True,
):
    """Simulate paths ``start`` .. ``stop - 1`` of an ``n_paths``-path run (a task for any executor);
    ``percentiles=False``: the run keeps no sample of per-day values (see :func:`run_paths`)."""
    cal = Calendar.of(scenario)
    p, draws = inputs_for(scenario, cal, seed, start, stop, cache, overrides)
    n_sample = min(n_paths, TIMESERIES_SAMPLE_PATHS) if percentiles else 0
    if start % BLOCK_PATHS == 0 and (stop % BLOCK_PATHS == 0 or stop == n_paths) and start >= n_sample:
        # whole blocks, none in the sample: only their per-day sums are needed
        out, daily = simulate_paths(scenario, cal, p, draws, release_draws=True, block_sums=True)
        sums = [{k: v[:, i] for k, v in daily.items()} for i in range(-(-(stop - start) // BLOCK_PATHS))]
        return ChunkResult(start, stop, *_pack(out), *_pack(p), sums, None, None, stop, None)
    out, daily = simulate_paths(scenario, cal, p, draws, release_draws=True)
    # whole blocks: [first_full, last_full) in path numbers, within the run's n_paths
    first_full = -(-start // BLOCK_PATHS) * BLOCK_PATHS
    sums, pos = [], first_full
    while pos < stop:
        end = min(pos + BLOCK_PATHS, n_paths)
        if end > stop:
            break
        sums.append({k: block_sum(v[:, pos - start : end - start]) for k, v in daily.items()})
        pos = end
    head_stop = min(first_full, stop)
    head = {k: v[:, : head_stop - start] for k, v in daily.items()} if head_stop > start else None
    tail = {k: v[:, pos - start :] for k, v in daily.items()} if pos < stop and pos >= first_full else None
    sample = {k: v[:, : min(stop, n_sample) - start] for k, v in daily.items()} if start < n_sample else None
    return ChunkResult(start, stop, *_pack(out), *_pack(p), sums, head, tail, pos, sample)


TASK_PATHS = 8 * BLOCK_PATHS  # paths a cluster task simulates, chunk by chunk: fewer, larger results to merge


def simulate_task(
    scenario: Scenario,
    seed: int,
    start: int,
    stop: int,
    n_paths: int,
    chunk_paths: int,
    overrides: dict | None = None,
    percentiles: bool = True,
) -> ChunkResult:
    """Paths ``start`` .. ``stop - 1`` in chunks of ``chunk_paths``, as one :class:`ChunkResult`
    (a cluster task: each task costs the scheduler and the client a few ms, whatever its size)
    with its constant columns as one value each (half the bytes to send for the baseline)."""
    cache: dict | None = {} if chunk_paths < BLOCK_PATHS else None
    parts = [
        simulate_chunk(scenario, seed, a, min(a + chunk_paths, stop), n_paths, cache, overrides, percentiles)
        for a in range(start, stop, chunk_paths)
    ]
    return compact_chunk(combine_chunks(parts, n_paths))


def run_paths(
    scenario: Scenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    chunk_paths: int | None = None,
    progress: Progress | None = None,
    client=None,
    overrides: dict[str, np.ndarray] | None = None,
    task_paths: int = TASK_PATHS,
    percentiles: bool = True,
    threads: int = 1,
    extend: RunOutput | RunPrefix | None = None,
) -> RunOutput:
    """Simulate ``paths`` paths of ``scenario`` (defaults: the scenario's own).

    ``overrides`` maps parameter names to per-path values (length ``paths``) used instead
    of the draws (Sobol designs); every process draw stays the path's own.
    ``percentiles=False`` skips the per-day percentiles (``daily_quantiles`` and
    ``daily_quantiles_ci95`` are then empty): runs that only need per-path values, as the
    sensitivity analyses, sort no sample, and with no path sampled their whole blocks come
    back as the kernel's per-day sums: a 1,024-path run of the baseline takes 41 ms instead
    of 111 ms.
    ``progress(done_paths, total_paths)`` is called after every chunk (every task on a
    cluster). With a Dask
    ``client`` the chunks run on its cluster, grouped in tasks of about ``task_paths``
    paths; the result has the same bits as a run in this process, for any number of
    workers and any assignment of tasks to them. Without a client, ``threads > 1`` runs
    the chunks on that many threads of this process (the compiled kernels and numpy's
    large operations release the GIL); the bits are again the same.

    ``extend``: an earlier run of the same scenario and seed with at most ``paths`` paths
    (and the same ``percentiles``), or its ``prefix`` (whose columns are then moved, not
    copied: see :class:`RunPrefix`). Its paths up to its last whole block of
    :data:`BLOCK_PATHS` are taken, not simulated again; the result has the bits of a
    run from scratch, as path i is the same in runs of any size. ``progress`` then counts
    the paths simulated: ``total_paths`` is ``paths`` less those taken. A run whose
    per-day sample is not among the earlier run's paths (it had fewer than 4,096) starts
    from scratch.
    """
    n = scenario.simulation.paths if paths is None else int(paths)
    seed = scenario.simulation.seed if seed is None else int(seed)
    if n < 1:
        raise ValueError("paths must be >= 1")
    prefix = _prefix_for(extend, scenario, seed, n, overrides, percentiles)
    move = isinstance(extend, RunPrefix)
    del extend  # a moved prefix's columns are freed as they are copied
    chunk_paths = default_chunk_paths() if chunk_paths is None else int(chunk_paths)
    if chunk_paths < 1:
        raise ValueError("chunk_paths must be >= 1")
    if threads < 1:
        raise ValueError("threads must be >= 1")
    if client is None:  # a cold compile cache: the economics kernel compiled beside the loops
        compiling.start_for(scenario)
        compiling.help_children()
    cal = Calendar.of(scenario)
    merger = Merger(n, cal.n_days, percentiles, prefix, move, series=daily_series(scenario))
    prefix = None
    first = merger.taken_paths  # the first path to simulate
    ranges = [(start, min(start + chunk_paths, n)) for start in range(first, n, chunk_paths)]
    thread_tasks = _thread_tasks(first, n, chunk_paths) if client is None and threads > 1 else []
    if len(thread_tasks) > 1:
        used = min(threads, len(thread_tasks))
        chunks = _on_threads(used, scenario, seed, thread_tasks, n, chunk_paths, overrides, percentiles)
    elif client is None:
        cache: dict | None = {} if chunk_paths < BLOCK_PATHS else None
        chunks = (simulate_chunk(scenario, seed, a, b, n, cache, overrides, percentiles) for a, b in ranges)
    else:
        task_paths = max(chunk_paths, task_paths // chunk_paths * chunk_paths)
        tasks = [(start, min(start + task_paths, n)) for start in range(first, n, task_paths)]
        chunks = _on_cluster(client, scenario, seed, tasks, n, chunk_paths, overrides, percentiles)
    try:
        for chunk in chunks:
            merger.add(chunk)
            if progress is not None:
                progress(merger.done_paths, n - first)
    finally:  # now, not when the traceback is freed: stops the threads or cancels the cluster's tasks
        chunks.close()
    return merger.output(scenario, seed, cal.dates, extensible=overrides is None)


def _prefix_for(
    extend: RunOutput | RunPrefix | None, scenario: Scenario, seed: int, n: int, overrides, percentiles: bool
) -> RunPrefix | None:
    """What of the earlier run ``extend`` (or its prefix) an ``n``-path run can take (None: nothing)."""
    if extend is None:
        return None
    prefix = extend if isinstance(extend, RunPrefix) else extend.prefix
    if prefix is None or overrides is not None:
        raise ValueError("extend: runs with overrides cannot be extended")
    if prefix.paths and not prefix.per_path:
        raise ValueError("extend: this prefix's paths were moved into another run already")
    if prefix.seed != seed or not _same_scenario(prefix.scenario, scenario):
        raise ValueError("extend: the earlier run must have the same scenario and seed")
    if prefix.run_paths > n:
        raise ValueError(f"extend: the earlier run has {prefix.run_paths} paths, more than the {n} asked for")
    if prefix.percentiles != percentiles:
        raise ValueError("extend: the earlier run must have been run with the same percentiles setting")
    return prefix if prefix.covers_sample(n) else None


class PathsDone:
    """One ``progress(done_paths, total_paths)`` callback over several runs (an analysis', a
    comparison's), which may run on several threads at once: :meth:`run` gives each run its own callback
    (``run_paths``' ``progress``), and the analysis' is called with the sum of their paths
    (``total_paths`` None: an analysis that does not know how many runs it will make)."""

    def __init__(self, progress: Callable[[int, int | None], None] | None, total_paths: int | None):
        self.progress, self.total, self.done = progress, total_paths, 0
        self.lock = threading.Lock()

    def run(self) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        reported = 0

        def update(done: int, _run_paths: int) -> None:
            nonlocal reported
            with self.lock:
                self.done += done - reported
                reported = done
                self.progress(self.done, self.total)

        return update


def _same_scenario(a: Scenario, b: Scenario) -> bool:
    """True when ``a`` and ``b`` are the same scenario, the data read from its files included
    (pydantic's ``==`` fails on the numpy arrays of that data)."""
    import pickle

    return a is b or pickle.dumps(a) == pickle.dumps(b)


def _thread_tasks(first: int, n: int, chunk_paths: int) -> list[tuple[int, int]]:
    """Path ranges of the threads' tasks from path ``first`` (see :func:`thread_task_paths`)."""
    task_paths = thread_task_paths(chunk_paths)
    return [(start, min(start + task_paths, n)) for start in range(first, n, task_paths)]


def _on_threads(
    threads: int,
    scenario: Scenario,
    seed: int,
    ranges: list[tuple[int, int]],
    n: int,
    chunk_paths: int,
    overrides,
    percentiles: bool = True,
):
    """Chunk results from ``threads`` threads of this process, as they complete.

    At most two tasks a thread are submitted ahead, so finished results never pile up.
    An exception in the caller (Ctrl-C) cancels the tasks not started and waits for the
    running ones (a chunk takes a tenth of a second). The heap keeps the chunks' memory
    for reuse while the threads run (:mod:`kzsim.engine.memory`); it goes back to the system
    at the end.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    todo = iter(ranges)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="kzsim-paths")
    running: set = set()

    def submit(count: int) -> None:
        for a, b in itertools.islice(todo, count):
            running.add(pool.submit(simulate_task, scenario, seed, a, b, n, chunk_paths, overrides, percentiles))

    try:
        submit(2 * threads)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            running.difference_update(done)
            submit(len(done))
            for future in sorted(done, key=lambda f: f.result().start):
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        release_freed_memory()


def _on_cluster(
    client,
    scenario: Scenario,
    seed: int,
    ranges: list[tuple[int, int]],
    n: int,
    chunk_paths: int,
    overrides=None,
    percentiles: bool = True,
):
    """Chunk results from a Dask cluster, as they complete (tasks are retried by Dask when a
    worker dies)."""
    import uuid

    from distributed import as_completed

    # the scenario (a few kB) goes with every task: tasks without dependencies are spread
    # evenly over the workers, where a scattered one would pull them to where it lies
    run_id = uuid.uuid4().hex[:12]
    futures = [
        client.submit(
            simulate_task,
            scenario,
            seed,
            a,
            b,
            n,
            chunk_paths,
            overrides,
            percentiles,
            key=f"kzsim-task-{run_id}-{a}",
            retries=3,
        )
        for a, b in ranges
    ]
    try:
        for future in as_completed(futures):
            yield future.result()
            future.release()
    finally:
        client.cancel(futures)
