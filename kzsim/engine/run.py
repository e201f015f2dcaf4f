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
from dataclasses import dataclass, field, replace

import numpy as np

from kzsim import stats
from kzsim.engine.memory import release_freed_memory
from kzsim.model import kernel as compiled
from kzsim.model.paths import Calendar, Draws, block_sum, fleet_power, simulate_paths
from kzsim.model.prices import draw_bootstrap_indices
from kzsim.model.processes import event_hours_per_day
from kzsim.model.rng import BLOCK_PATHS, blocks_for, stream
from kzsim.scenario.dependence import iman_conover
from kzsim.scenario.schema import Scenario
from kzsim.units import DAYS_PER_YEAR, HOURS_PER_DAY

DEFAULT_CHUNK_PATHS = 1024  # one block of paths: the kernel's tile


def default_chunk_paths() -> int:
    """Paths a chunk holds unless told (the bits of a run do not depend on it)."""
    return DEFAULT_CHUNK_PATHS


TIMESERIES_SAMPLE_PATHS = 4096  # the first paths of a run, kept whole for per-day percentiles
TIMESERIES_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
# Rare events (failed lots, missed prepayments) are drawn per path, not per path-day, when
# every path's probability is at most this: then the few repeats to redraw are cheap.
SPARSE_MAX_PROBABILITY = 0.02
# Once the sample's percentiles are taken, its memory goes back to the system if at least
# this many paths are still to run: the threads then fault their chunks' pages in again,
# ~0.05-0.1 s (measured), worth it when the rest of the run holds 96 MB less for seconds.
TRIM_AFTER_SAMPLE_PATHS = 65_536
DAILY_SERIES = ("cum_pnl_usd", "btc_price_usd", "up_fraction", "hashprice_usd_per_th_day")

Progress = Callable[[int, int], None]

# Resource model of whole `kzsim run`s (report included), measured on the project's
# machine with the baseline: 1M paths in 46.7 s on one thread (15.6e6 path-days/s; the
# simulation alone 16.6-17.8e6), 27.3-28.9 s on two threads, 29.4-29.5 s on two local workers;
# Memory: the libraries and compiled kernels ~300 MB; a thread's chunk of 1,024 paths
# 40-60 MB (~10 (days x paths) float64 arrays with the heap's slack).
PATH_DAYS_PER_SECOND = 15.5e6
WORKING_ARRAYS = 10
BASE_BYTES = 300e6  # interpreter, numpy, scipy, pandas, numba and the compiled kernels
PER_PATH_OUTPUTS = 44  # per-path outputs of simulate_paths
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
    memory = base + working (chunk x days x 8 B x arrays alive) + per-day sample (unless
    it is given back early in the run) + per-path table (paths x columns x 8 B, x1.1 for
    the copies that summary and report make; only the outputs and the drawn parameters
    count: a constant column is one value). Each thread holds its own working memory; with
    local workers, each holds its own base and working memory and this process the rest.
    time = path-days / one core's rate, divided by THREAD_EFFICIENCY x the threads (or
    LOCAL_WORKER_EFFICIENCY x the workers) that have a CPU each.
    """
    days = scenario.simulation.horizon_days
    chunk = max(min(chunk_paths or default_chunk_paths(), paths), BLOCK_PATHS)
    working = chunk * days * 8.0 * WORKING_ARRAYS
    n_sample = min(paths, TIMESERIES_SAMPLE_PATHS)
    sample = n_sample * days * 8.0 * len(DAILY_SERIES) if paths - n_sample < TRIM_AFTER_SAMPLE_PATHS else 0.0
    drawn = sum(1 for dist in scenario.uncertain_parameters().values() if not dist.is_fixed)
    table = paths * (PER_PATH_OUTPUTS + drawn) * 8.0 * 1.1
    seconds = paths * days / PATH_DAYS_PER_SECOND
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


@dataclass
class RunOutput:
    """What :func:`simulate` returns: plain arrays, ready for :mod:`kzsim.results`."""

    scenario: Scenario
    paths: int
    seed: int
    per_path: dict[str, np.ndarray]  # (paths,) each
    parameters: dict[str, np.ndarray]  # drawn per-path parameters, (paths,) each
    dates: np.ndarray  # (n_days,) datetime64[D]
    daily_quantiles: dict[str, np.ndarray]  # (n_quantiles, n_days) from the sample
    # (2, n_quantiles, n_days): each day's distribution-free 95 % interval of each percentile
    # (kzsim.stats.quantile_ci_indices of the sample; -inf / +inf where a side is open)
    daily_quantiles_ci95: dict[str, np.ndarray]
    daily_mean: dict[str, np.ndarray]  # (n_days,) over all paths
    sample_paths: int
    # what a longer run of the same scenario and seed takes over instead of simulating
    # again (run_paths' ``extend``); None for runs with overrides
    prefix: RunPrefix | None = field(default=None, repr=False, compare=False)
    taken_paths: int = 0  # the first paths, taken from an earlier run (run_paths' ``extend``), not simulated


@dataclass(frozen=True)
class RunPrefix:
    """The paths of a run up to its last whole block (:data:`BLOCK_PATHS`), as a longer run
    with the same scenario and seed would compute them: their per-path values, the sums of
    the per-day series over them, and the per-day percentiles when the sample lies among them.

    ``run_paths(extend=run)`` copies the columns of ``run.prefix``; ``run_paths(extend=prefix)``,
    given the prefix itself, moves them out of it (it cannot be extended again), so that
    they are freed once the earlier run is dropped (``simulate_to_precision`` does this:
    the earlier round's table is not held beside the next one's)."""

    scenario: Scenario
    seed: int
    run_paths: int  # the earlier run's paths
    paths: int  # a multiple of BLOCK_PATHS
    percentiles: bool
    per_path: dict[str, np.ndarray]  # (>= paths,) each: the run's columns, read up to ``paths``
    parameters: dict[str, np.ndarray]
    daily_sums: dict[str, np.ndarray]  # (n_days,) sums over paths 0 .. paths - 1
    daily_quantiles: dict[str, np.ndarray]
    daily_quantiles_ci95: dict[str, np.ndarray]
    sample_paths: int

    def covers_sample(self, n: int) -> bool:
        """True when an ``n``-path run's per-day sample (its first paths) is among these paths."""
        return not self.percentiles or min(n, TIMESERIES_SAMPLE_PATHS) <= min(self.paths, self.sample_paths)


class BlockSums:
    """Sums over paths of per-day series, added up block by block in path order.

    The sum of each block of :data:`BLOCK_PATHS` paths is taken over the whole block
    (:func:`kzsim.model.paths.block_sum`, as the compiled kernel takes it), and block sums are
    added in block order, so the result has the same bits whatever the chunk size. Only a
    run's last block may have fewer paths; the sum before it is kept (:meth:`whole_blocks`),
    as a longer run's sum over the same whole blocks.
    """

    def __init__(self, n_days: int, total: np.ndarray | None = None, paths: int = 0):
        """``total``: the sum over the first ``paths`` paths (whole blocks), to add the next blocks to."""
        assert paths % BLOCK_PATHS == 0, "a sum to continue covers whole blocks"
        self.total = np.zeros(n_days) if total is None else total.copy()
        self.paths = paths  # paths summed so far (pending ones excluded)
        self._before_partial: tuple[int, np.ndarray] | None = None
        self._pending: list[np.ndarray] = []
        self._pending_paths = 0

    def add(self, start: int, values: np.ndarray) -> None:
        """Add ``values`` (n_days, m) of paths ``start`` .. ``start + m - 1`` (in path order)."""
        pos = 0
        while pos < values.shape[1]:
            room = BLOCK_PATHS - (start + pos) % BLOCK_PATHS
            piece = values[:, pos : pos + room]
            self._pending.append(piece)
            self._pending_paths += piece.shape[1]
            pos += piece.shape[1]
            if self._pending_paths == BLOCK_PATHS:
                self.flush()

    def add_block_sum(self, sums: np.ndarray, paths: int = BLOCK_PATHS) -> None:
        """Add the sum of one block of ``paths`` paths, taken over the block in one call."""
        assert not self._pending, "block sums must arrive in path order"
        self._add(sums, paths)

    def flush(self) -> None:
        if self._pending:
            block = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
            paths = self._pending_paths
            self._pending, self._pending_paths = [], 0
            self._add(block_sum(block), paths)

    def _add(self, sums: np.ndarray, paths: int) -> None:
        if paths < BLOCK_PATHS:  # the run's last block: keep the sum over the whole ones
            self._before_partial = (self.paths, self.total.copy())
        self.total += sums
        self.paths += paths

    def whole_blocks(self) -> tuple[int, np.ndarray]:
        """(paths, their sum) over the whole blocks summed so far (call after :meth:`flush`)."""
        if self._before_partial is not None:
            return self._before_partial
        return self.paths, self.total


def draw_parameters(scenario: Scenario, seed: int, block: int) -> dict[str, np.ndarray]:
    """Per-path parameters of one block: uniforms of stream ``param:NAME`` through the ppf.

    With ``dependence``, the uniforms of the correlated parameters are reordered within the
    block (Iman-Conover, stream ``dependence:iman_conover``): each keeps its own values.
    """
    uncertain = scenario.uncertain_parameters()
    u = {
        name: stream(seed, f"param:{name}", block).random(BLOCK_PATHS)
        for name, dist in uncertain.items()
        if not dist.is_fixed
    }
    dep = scenario.dependence
    if dep is not None:
        joint = np.column_stack([u[name] for name in dep.names])
        joint = iman_conover(joint, dep.matrix, stream(seed, "dependence:iman_conover", block))
        for j, name in enumerate(dep.names):
            u[name] = joint[:, j]
    return {
        name: np.full(BLOCK_PATHS, dist.value) if dist.is_fixed else dist.ppf(u[name])
        for name, dist in uncertain.items()
    }


def uniform_subsets(counts: np.ndarray, n_slots: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For path i, ``counts[i]`` distinct slots drawn uniformly from ``0 .. n_slots[i] - 1``.

    Returns the slots of every path one after the other (path 0's first). Slots are drawn
    with replacement and repeats drawn again, which is drawing without replacement.
    """
    owner = np.repeat(np.arange(counts.size), counts)
    size = np.repeat(n_slots, counts).astype(np.float64)
    slots = np.floor(rng.random(owner.size) * size).astype(np.int64)
    width = int(n_slots.max()) + 1 if n_slots.size else 1
    while owner.size:
        key = owner * width + slots
        order = np.argsort(key, kind="stable")
        repeat = np.zeros(owner.size, dtype=bool)
        repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
        if not repeat.any():
            break
        slots[repeat] = np.floor(rng.random(int(repeat.sum())) * size[repeat]).astype(np.int64)
    return slots


def _grid_outages(scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], seed: int, block: int):
    """Outage hours per day and outage counts of one block, drawn sparsely.

    Notes
    -----
    Arrivals are Poisson with a rate ``winter_rate_multiplier`` times higher on winter
    days. A path's number of outages over the horizon is Poisson with the integrated rate;
    each outage falls in winter with probability (winter share of that rate), then
    uniformly in the hours of that season's days. This is the seasonal Poisson process
    exactly, with a few draws a path instead of one a path-day.
    """
    g = scenario.grid
    seasons = (np.flatnonzero(~cal.is_winter), np.flatnonzero(cal.is_winter))
    scale = p["grid.outage_rate_per_year"] / DAYS_PER_YEAR * p["grid.grid_stress_multiplier"]
    rate_other = scale * seasons[0].size
    rate_winter = scale * p["grid.winter_rate_multiplier"] * seasons[1].size
    total = rate_other + rate_winter
    counts = stream(seed, "process:grid_outage.count", block).poisson(total)
    path = np.repeat(np.arange(BLOCK_PATHS), counts)
    u_season = stream(seed, "process:grid_outage.season", block).random(path.size)
    u_when = stream(seed, "process:grid_outage.start", block).random(path.size)
    u_duration = stream(seed, "process:grid_outage.duration", block).random(path.size)
    winter = u_season * total[path] < rate_winter[path]
    start_hour = np.empty(path.size)
    for flag, days in ((False, seasons[0]), (True, seasons[1])):
        pick = winter == flag
        if days.size and pick.any():
            position = u_when[pick] * days.size  # days into the season, with its fraction
            index = np.minimum(position.astype(np.int64), days.size - 1)
            start_hour[pick] = (days[index] + (position - index)) * HOURS_PER_DAY
    duration = np.minimum(g.outage_duration_hours.ppf(u_duration), g.outage_max_duration_hours)
    if g.forced_outages:  # the same blackouts on every path, merged with the random ones
        every = np.arange(BLOCK_PATHS)
        for forced in g.forced_outages:
            path = np.append(path, every)
            start_hour = np.append(
                start_hour, np.full(BLOCK_PATHS, forced.start_day * HOURS_PER_DAY + forced.start_hour)
            )
            duration = np.append(duration, np.full(BLOCK_PATHS, forced.duration_hours))
    duration = duration + p["farm.restart_hours"][path]
    hours = event_hours_per_day(path, start_hour, duration, BLOCK_PATHS, cal.n_days, merge=True)
    return hours, counts + sum(1 for forced in g.forced_outages if forced.start_day < cal.n_days)


def draw_block(scenario: Scenario, cal: Calendar, seed: int, block: int, overrides: dict | None = None):
    """Parameters and draws of one whole block of paths."""
    n_days, B = cal.n_days, BLOCK_PATHS
    p = draw_parameters(scenario, seed, block)
    for name, values in (overrides or {}).items():  # given per-path values (Sobol designs), paths of this block
        part = values[block * B : (block + 1) * B]
        if part.size:
            p[name] = p[name].copy()
            p[name][: part.size] = part
    e = scenario.electricity

    def normals(name: str, rows: int) -> np.ndarray:
        return compiled.standard_normal(stream(seed, f"process:{name}", block), (rows, B))

    grid_hours, grid_outages = _grid_outages(scenario, cal, p, seed, block)

    payment_lot_hours = prepayment_missed = day_ahead_price = None
    q = p["electricity.payment_failure_probability"]
    sparse = bool(np.max(q, initial=0.0) <= SPARSE_MAX_PROBABILITY)
    if e.procurement_mode == "lots":
        # every lot of every day fails on its own; each failure idles its lot from a uniform hour
        _, _, facility_mw = fleet_power(scenario, p)
        lots_per_day = np.ceil(facility_mw * HOURS_PER_DAY / p["electricity.lot_size_mwh"] - 1e-9).astype(np.int64)
        if sparse:  # Binomial(lots x days) failures a path, on distinct lot-days drawn uniformly
            counts = stream(seed, "process:payment_failure.count", block).binomial(lots_per_day * n_days, q)
            slots = uniform_subsets(counts, lots_per_day * n_days, stream(seed, "process:payment_failure.slot", block))
            path = np.repeat(np.arange(B), counts)
            day = slots // lots_per_day[path]
        else:  # frequent failures: Binomial(lots) a day
            daily = stream(seed, "process:payment_failure.daily", block).binomial(lots_per_day, q, size=(n_days, B))
            day, path = np.nonzero(daily)
            k = daily[day, path]
            day, path = np.repeat(day, k), np.repeat(path, k)
        u_start = stream(seed, "process:payment_failure.start", block).random(path.size)
        u_idle = stream(seed, "process:payment_failure.duration", block).random(path.size)
        idle = e.payment_failure_idle_hours.ppf(u_idle)
        payment_lot_hours = event_hours_per_day(path, (day + u_start) * HOURS_PER_DAY, idle, B, n_days, merge=False)
    else:
        # a prepayment missed on each day on its own
        if sparse:  # Binomial(days) a path, on distinct days
            counts = stream(seed, "process:prepayment_missed.count", block).binomial(n_days, q)
            days = uniform_subsets(counts, np.full(B, n_days), stream(seed, "process:prepayment_missed.day", block))
            prepayment_missed = np.zeros((n_days, B), dtype=bool)
            prepayment_missed[days, np.repeat(np.arange(B), counts)] = True
        else:
            prepayment_missed = stream(seed, "process:prepayment_missed.daily", block).random((n_days, B)) < q
        day_ahead_price = normals("day_ahead_price", n_days)

    plan_built = None
    if e.plan_70_30 is not None:
        u = stream(seed, "process:plan_70_30.built", block).random(B)
        plan_built = u < p["electricity.plan_70_30.build_probability"]

    btc_jumps, btc_history_index = _price_events(scenario, cal, p, seed, block)
    fee_spikes = _fee_spikes(scenario, cal, p, seed, block)

    if scenario.simulation.variance_reduction == "antithetic":
        half = compiled.standard_normal(stream(seed, "process:btc_price", block), (n_days - 1, B // 2))
        btc_price = np.concatenate([half, -half], axis=1)
    else:
        btc_price = normals("btc_price", n_days - 1)
    draws = Draws(
        btc_price=btc_price,
        usd_kzt=normals("usd_kzt", n_days - 1),
        network_hashrate=normals("network_hashrate", n_days - 1),
        fees=normals("fees", n_days),
        day_ahead_price=day_ahead_price,
        grid_hours=grid_hours,
        grid_outages=grid_outages,
        payment_lot_hours=payment_lot_hours,
        prepayment_missed=prepayment_missed,
        plan_built=plan_built,
        btc_jumps=btc_jumps,
        btc_history_index=btc_history_index,
        fee_spikes=fee_spikes,
    )
    return p, draws


def _fee_spikes(scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], seed: int, block: int):
    """Extra fees (a multiple of the usual) on each spike's first day (n_days, B), or None without spikes.

    Spikes are Poisson(rate * horizon) a path on uniform days, drawn sparsely like outages.
    """
    rate = p["market.fees_spike_rate_per_year"]
    if not np.any(rate > 0):
        return None
    n_days, B = cal.n_days, BLOCK_PATHS
    counts = stream(seed, "process:fee_spike.count", block).poisson(rate * n_days / DAYS_PER_YEAR)
    path = np.repeat(np.arange(B), counts)
    day = np.floor(stream(seed, "process:fee_spike.day", block).random(path.size) * n_days).astype(np.int64)
    u = stream(seed, "process:fee_spike.size", block).random(path.size)
    impulse = np.zeros((n_days, B))
    np.add.at(impulse, (day, path), scenario.market.fees_spike_extra.ppf(u))
    return impulse


def _price_events(scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], seed: int, block: int):
    """Jumps (jump_diffusion) and history indices (bootstrap) of one block, from their own streams.

    Jumps are drawn sparsely: Poisson(lambda * horizon) jumps a path on uniform days (a
    Poisson process of daily counts, exactly), with normal log sizes summed per day.
    """
    m, steps, B = scenario.market, cal.n_days - 1, BLOCK_PATHS
    if m.price_model == "jump_diffusion":
        rate = p["market.jump_diffusion.jumps_per_year"] * steps / DAYS_PER_YEAR
        counts = stream(seed, "process:btc_jump.count", block).poisson(rate)
        path = np.repeat(np.arange(B), counts)
        day = np.floor(stream(seed, "process:btc_jump.day", block).random(path.size) * steps).astype(np.int64)
        z = stream(seed, "process:btc_jump.size", block).standard_normal(path.size)
        size = p["market.jump_diffusion.jump_mean_log"][path] + p["market.jump_diffusion.jump_volatility_log"][path] * z
        jumps = np.zeros((steps, B))
        np.add.at(jumps, (day, path), size)
        return jumps, None
    if m.price_model == "bootstrap":
        indices = draw_bootstrap_indices(
            stream(seed, "process:btc_bootstrap.new_block", block),
            stream(seed, "process:btc_bootstrap.start", block),
            m.bootstrap.log_returns.size,
            m.bootstrap.mean_block_days,
            (steps, B),
        )
        return None, indices
    return None, None


def inputs_for(
    scenario: Scenario,
    cal: Calendar,
    seed: int,
    start: int,
    stop: int,
    cache: dict | None = None,
    overrides: dict | None = None,
):
    """Parameters and draws of paths ``start`` .. ``stop - 1``, assembled from whole blocks.

    ``cache`` (a dict the caller keeps between calls) holds the last block drawn, so
    chunks smaller than a block do not draw the same block again.
    """
    params_parts, draw_parts = [], []
    for block in blocks_for(start, stop):
        lo = max(start - block * BLOCK_PATHS, 0)
        hi = min(stop - block * BLOCK_PATHS, BLOCK_PATHS)
        if cache is not None and block in cache:
            p, d = cache[block]
        else:
            p, d = draw_block(scenario, cal, seed, block, overrides)
            if cache is not None:
                cache.clear()
                cache[block] = (p, d)
        params_parts.append({k: v[lo:hi] for k, v in p.items()})
        draw_parts.append(d.take(slice(lo, hi)))
    params = {k: np.concatenate([part[k] for part in params_parts]) for k in params_parts[0]}
    return params, Draws.concat(draw_parts)


@dataclass
class ChunkResult:
    """What one chunk of paths gives back: small enough to ship from a worker.

    Per-path values travel as one (columns, paths) array with their names: a few large
    buffers serialise much faster than a hundred small ones.
    """

    start: int
    stop: int
    per_path_names: tuple[str, ...]
    per_path: np.ndarray  # (len(per_path_names), stop - start)
    parameter_names: tuple[str, ...]
    parameters: np.ndarray  # (len(parameter_names), stop - start)
    block_sums: list[dict[str, np.ndarray]]  # per-day sums of the blocks wholly inside the chunk, in order
    head: dict[str, np.ndarray] | None  # per-day values of the paths before the first whole block
    tail: dict[str, np.ndarray] | None  # ... and after the last one (None when there are none)
    tail_start: int
    sample: dict[str, np.ndarray] | None  # per-day values of the chunk's paths inside the sample
    # columns with the same bits on every path of the chunk, as one value each (their rows
    # left out of per_path / parameters by :func:`_compact`: most parameters are constants)
    per_path_constants: dict[str, np.ndarray] = field(default_factory=dict)
    parameter_constants: dict[str, np.ndarray] = field(default_factory=dict)


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
    return _compact(combine_chunks(parts, n_paths))


def _split_constants(names: tuple[str, ...], table: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rows of a (columns, paths) table that vary, and the others as {name: (1,) value}:
    constant means the same bits on every path (so NaN and -0.0 are kept as they are)."""
    if table.shape[1] == 0:
        return table, {}
    bits = table.view(np.int64)
    constant = np.all(bits == bits[:, :1], axis=1)
    values = {name: table[i, :1].copy() for i, name in enumerate(names) if constant[i]}
    return table[~constant], values


def _compact(chunk: ChunkResult) -> ChunkResult:
    """``chunk`` with its constant per-path and parameter columns as one value each."""
    if chunk.per_path_constants or chunk.parameter_constants:
        return chunk
    per_path, per_path_constants = _split_constants(chunk.per_path_names, chunk.per_path)
    parameters, parameter_constants = _split_constants(chunk.parameter_names, chunk.parameters)
    return replace(
        chunk,
        per_path=per_path,
        per_path_constants=per_path_constants,
        parameters=parameters,
        parameter_constants=parameter_constants,
    )


def combine_chunks(parts: list[ChunkResult], n_paths: int) -> ChunkResult:
    """One result for consecutive chunks, with the per-day sums of every whole block taken as
    :class:`BlockSums` takes them (:func:`kzsim.model.paths.block_sum` over the block), so the bits
    do not change.
    ``parts`` are :func:`simulate_chunk` results, whole tables (compact the combination)."""
    if any(part.per_path_constants or part.parameter_constants for part in parts):
        raise ValueError("combine_chunks takes whole chunk results, not compacted ones")
    if len(parts) == 1:
        return parts[0]
    start, stop = parts[0].start, parts[-1].stop
    first_full = -(-start // BLOCK_PATHS) * BLOCK_PATHS
    head: list[dict[str, np.ndarray]] = []
    sums: list[dict[str, np.ndarray]] = []
    pending: list[dict[str, np.ndarray]] = []
    pending_start = first_full

    def add_piece(piece_start: int, piece: dict[str, np.ndarray]) -> None:
        nonlocal pending_start
        if piece_start < first_full:  # part of a block that began before this task
            head.append(piece)
            return
        if not pending:
            pending_start = piece_start  # a block boundary
        pending.append(piece)
        piece_stop = piece_start + next(iter(piece.values())).shape[1]
        if piece_stop == min(pending_start + BLOCK_PATHS, n_paths):
            sums.append({k: block_sum(np.concatenate([p[k] for p in pending], axis=1)) for k in piece})
            pending.clear()

    for part in parts:
        if part.head is not None:
            add_piece(part.start, part.head)
        sums.extend(part.block_sums)
        if part.tail is not None:
            add_piece(part.tail_start, part.tail)

    def joined(pieces):
        return {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]} if pieces else None

    samples = [part.sample for part in parts if part.sample is not None]
    return ChunkResult(
        start,
        stop,
        parts[0].per_path_names,
        np.concatenate([part.per_path for part in parts], axis=1),
        parts[0].parameter_names,
        np.concatenate([part.parameters for part in parts], axis=1),
        sums,
        joined(head),
        joined(pending),
        pending_start if pending else stop,
        joined(samples),
    )


class _Column:
    """One per-path column of a run, held as a single value while every path has the same
    bits: the constants of a scenario (most of its parameters) then cost no memory."""

    def __init__(self, n: int):
        self.n = n
        self.constant: np.ndarray | None = None  # (1,) while constant
        self.array: np.ndarray | None = None

    def put(self, start: int, v: np.ndarray) -> None:
        """Values ``v`` of paths ``start`` .. ``start + v.size - 1`` (chunks in any order)."""
        if self.array is None:
            if not v.size:
                return
            first = v[:1] if self.constant is None else self.constant
            if np.all(v.view(np.int64) == first.view(np.int64)):  # bit for bit: -0.0 and NaN kept
                self.constant = first.copy()
                return
            self.array = np.empty(self.n)
            if self.constant is not None:  # every path added so far had the constant
                self.array[:] = self.constant[0]
        self.array[start : start + v.size] = v

    def values(self) -> np.ndarray:
        """The column (n,); a read-only view of one value when it is constant."""
        return self.array if self.array is not None else np.broadcast_to(self.constant, (self.n,))


def daily_percentiles(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each day's :data:`TIMESERIES_QUANTILES` of the paths of ``sample`` (n_days, n_paths),
    (n_quantiles, n_days) with the bits ``np.quantile`` gives, and their distribution-free
    95 % intervals, (2, n_quantiles, n_days): the lower ends, then the upper (the order
    statistics at :func:`kzsim.stats.quantile_ci_indices`; -inf / +inf where a side is open).

    Only the order statistics these need are found (:func:`kzsim.model.kernel.order_statistics`,
    20 a day): on the baseline's series (730 days x 4,096 paths) ~34 ms a series, against
    ~75 ms for sorting each day. Each percentile is then ``np.quantile`` of its two
    neighbouring order statistics at the fraction between them, which is the same
    interpolation in the same operations as over the whole day (tested bit for bit; where
    -0.0 and 0.0 tie, either may come first, as in any sort). A sample with NaN (which
    ``np.quantile`` propagates) is sorted instead. ``sample`` may be reordered along its rows.
    """
    n_days, n = sample.shape
    levels = np.asarray(TIMESERIES_QUANTILES)
    virtual = (n - 1) * levels  # np.quantile's 'linear' method: between these order statistics
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    ends = [stats.quantile_ci_indices(n, q) for q in TIMESERIES_QUANTILES]
    ranks = sorted({*below, *above, *(lo for lo, _ in ends if lo >= 0), *(hi for _, hi in ends if hi < n)})
    column = {int(r): i for i, r in enumerate(ranks)}
    if np.isnan(sample).any():  # sorted (NaN last); np.quantile gives NaN on the days with NaN
        sample.sort(axis=1)
        values = sample[:, ranks]
        quantiles = np.quantile(sample, TIMESERIES_QUANTILES, axis=1, overwrite_input=True)
    else:
        values = compiled.order_statistics(sample, ranks)
        quantiles = np.empty((len(levels), n_days))
        for i, gamma in enumerate(virtual - below):
            pair = values[:, [column[int(below[i])], column[int(above[i])]]]
            quantiles[i] = np.quantile(pair, gamma, axis=1)
    ci95 = np.empty((2, len(levels), n_days))
    for i, (lo, hi) in enumerate(ends):
        ci95[0, i] = values[:, column[lo]] if lo >= 0 else -np.inf
        ci95[1, i] = values[:, column[hi]] if hi < n else np.inf
    return quantiles, ci95


class _Merger:
    """Puts chunk results together in path order, whatever order they arrive in."""

    def __init__(
        self, n: int, n_days: int, percentiles: bool = True, prefix: RunPrefix | None = None, move: bool = False
    ):
        """``prefix``: paths 0 .. prefix.paths - 1 taken from an earlier run (the chunks
        then start there; it must hold the sample, see :meth:`RunPrefix.covers_sample`),
        its columns moved out of it with ``move``."""
        self.n, self.n_days, self.percentiles = n, n_days, percentiles
        self.per_path: dict[str, _Column] = {}
        self.parameters: dict[str, _Column] = {}
        self.n_sample = min(n, TIMESERIES_SAMPLE_PATHS) if percentiles else 0
        # the sample's paths until all have arrived, then their percentiles (the sample,
        # 96 MB for two years, is not held for the rest of the run)
        self.sample = {k: np.empty((n_days, self.n_sample)) for k in DAILY_SERIES} if percentiles else {}
        self.sample_missing = self.n_sample
        self.quantiles: dict[str, np.ndarray] = {}
        self.quantiles_ci95: dict[str, np.ndarray] = {}
        self.sums = {k: BlockSums(n_days) for k in DAILY_SERIES}
        self.waiting: dict[int, ChunkResult] = {}
        self.next_start = 0
        self.done_paths = 0  # paths simulated (those of the prefix not counted)
        self.taken_paths = 0
        if prefix is not None:
            self._take(prefix, move)

    def _take(self, prefix: RunPrefix, move: bool) -> None:
        assert prefix.paths <= self.n and prefix.covers_sample(self.n), "the prefix cannot start this run"
        m = prefix.paths
        for store, columns in ((self.per_path, prefix.per_path), (self.parameters, prefix.parameters)):
            for k in list(columns):  # in the order the chunks give them
                v = columns.pop(k) if move else columns[k]
                store.setdefault(k, _Column(self.n)).put(0, v[:m])
        self.sums = {k: BlockSums(self.n_days, prefix.daily_sums[k], m) for k in DAILY_SERIES}
        if self.percentiles:  # the same sample: the first min(n, 4,096) paths
            self.quantiles, self.quantiles_ci95 = dict(prefix.daily_quantiles), dict(prefix.daily_quantiles_ci95)
            self.sample, self.sample_missing = {}, 0
        self.next_start = self.taken_paths = m

    def add(self, chunk: ChunkResult) -> None:
        size = chunk.stop - chunk.start
        self.done_paths += size
        for store, names, table, constants in (
            (self.per_path, chunk.per_path_names, chunk.per_path, chunk.per_path_constants),
            (self.parameters, chunk.parameter_names, chunk.parameters, chunk.parameter_constants),
        ):
            rows = iter(table)
            for k in names:  # in their order, whichever are constant
                v = np.broadcast_to(constants[k], (size,)) if k in constants else next(rows)
                store.setdefault(k, _Column(self.n)).put(chunk.start, v)
        if chunk.sample is not None and self.sample:
            for k, v in chunk.sample.items():
                self.sample[k][:, chunk.start : chunk.start + v.shape[1]] = v
            self.sample_missing -= next(iter(chunk.sample.values())).shape[1]
            chunk.sample = None  # copied: the chunk's per-day arrays are not kept while it waits
            if self.sample_missing == 0:  # the sample is not needed after: reordered where it lies
                for k, v in self.sample.items():
                    self.quantiles[k], self.quantiles_ci95[k] = daily_percentiles(v)
                self.sample = {}
                if self.n - self.n_sample >= TRIM_AFTER_SAMPLE_PATHS:
                    release_freed_memory()  # else the heap keeps the sample's pages (see kzsim.engine.memory)
        self.waiting[chunk.start] = chunk
        while self.next_start in self.waiting:  # per-day sums are added in path order
            c = self.waiting.pop(self.next_start)
            for k, acc in self.sums.items():
                if c.head is not None:
                    acc.add(c.start, c.head[k])
                for block in c.block_sums:  # whole blocks, but the run's last may be short
                    acc.add_block_sum(block[k], min(BLOCK_PATHS, self.n - acc.paths))
                if c.tail is not None:
                    acc.add(c.tail_start, c.tail[k])
            self.next_start = c.stop

    def output(self, scenario: Scenario, seed: int, dates: np.ndarray, extensible: bool = True) -> RunOutput:
        for acc in self.sums.values():
            acc.flush()
        assert not self.sample, "every path of the sample must have arrived"
        per_path = {k: c.values() for k, c in self.per_path.items()}
        parameters = {k: c.values() for k, c in self.parameters.items()}
        prefix = None
        if extensible:
            whole = {k: acc.whole_blocks() for k, acc in self.sums.items()}
            prefix = RunPrefix(
                scenario=scenario,
                seed=seed,
                run_paths=self.n,
                paths=next(iter(whole.values()))[0],
                percentiles=self.percentiles,
                per_path=dict(per_path),  # dicts of its own: moving the columns out leaves the run's
                parameters=dict(parameters),
                daily_sums={k: total for k, (_, total) in whole.items()},
                daily_quantiles=self.quantiles,
                daily_quantiles_ci95=self.quantiles_ci95,
                sample_paths=self.n_sample,
            )
        return RunOutput(
            scenario=scenario,
            paths=self.n,
            seed=seed,
            per_path=per_path,
            parameters=parameters,
            dates=dates,
            daily_quantiles=self.quantiles,
            daily_quantiles_ci95=self.quantiles_ci95,
            daily_mean={k: v.total / self.n for k, v in self.sums.items()},
            sample_paths=self.n_sample,
            prefix=prefix,
            taken_paths=self.taken_paths,
        )


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
    cal = Calendar.of(scenario)
    merger = _Merger(n, cal.n_days, percentiles, prefix, move)
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


def threads_used(n: int, chunk_paths: int, threads: int) -> int:
    """Threads that an in-process run of ``n`` paths asked for ``threads`` keeps busy (no
    more than its tasks)."""
    return max(1, min(threads, -(-n // _thread_task_paths(chunk_paths))))


def _same_scenario(a: Scenario, b: Scenario) -> bool:
    """True when ``a`` and ``b`` are the same scenario, the data read from its files included
    (pydantic's ``==`` fails on the numpy arrays of that data)."""
    import pickle

    return a is b or pickle.dumps(a) == pickle.dumps(b)


def _thread_task_paths(chunk_paths: int) -> int:
    """Paths a thread's task runs: one chunk, or the chunks of one block when chunks are
    smaller than a block (a task draws each of its blocks once)."""
    return max(chunk_paths, BLOCK_PATHS // chunk_paths * chunk_paths)


def _thread_tasks(first: int, n: int, chunk_paths: int) -> list[tuple[int, int]]:
    """Path ranges of the threads' tasks from path ``first`` (see :func:`_thread_task_paths`)."""
    task_paths = _thread_task_paths(chunk_paths)
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
