"""Putting chunks together in path order: the per-path table, the per-day sums and the sample's per-day percentiles, with the same bits whatever the chunk size or worker count."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from kzsim import stats
from kzsim.engine.memory import release_freed_memory
from kzsim.model.paths import block_sum
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.schema import Scenario

TIMESERIES_SAMPLE_PATHS = 4096  # the first paths of a run, kept whole for per-day percentiles


TIMESERIES_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


# Once the sample's percentiles are taken, its memory goes back to the system if at least
# this many paths are still to run: the threads then fault their chunks' pages in again,
# ~0.05-0.1 s (measured), worth it when the rest of the run holds 96 MB less for seconds.
TRIM_AFTER_SAMPLE_PATHS = 65_536


DAILY_SERIES = (
    "cum_pnl_usd",
    "btc_price_usd",
    "up_fraction",
    "hashprice_usd_per_th_day",
    "difficulty",
    "network_hashrate_eh",
    "fees_btc_per_day",
)


def daily_series(scenario: Scenario) -> tuple[str, ...]:
    """The per-day series a run of ``scenario`` gives: :data:`DAILY_SERIES`, and the cash
    balance (``cash_usd``) with ``financing``."""
    return DAILY_SERIES + (("cash_usd",) if scenario.financing is not None else ())


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
    # left out of per_path / parameters by :func:`compact_chunk`: most parameters are constants)
    per_path_constants: dict[str, np.ndarray] = field(default_factory=dict)
    parameter_constants: dict[str, np.ndarray] = field(default_factory=dict)


def split_constants(names: tuple[str, ...], table: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rows of a (columns, paths) table that vary, and the others as {name: (1,) value}:
    constant means the same bits on every path (so NaN and -0.0 are kept as they are)."""
    if table.shape[1] == 0:
        return table, {}
    bits = table.view(np.int64)
    constant = np.all(bits == bits[:, :1], axis=1)
    values = {name: table[i, :1].copy() for i, name in enumerate(names) if constant[i]}
    return table[~constant], values


def compact_chunk(chunk: ChunkResult) -> ChunkResult:
    """``chunk`` with its constant per-path and parameter columns as one value each."""
    if chunk.per_path_constants or chunk.parameter_constants:
        return chunk
    per_path, per_path_constants = split_constants(chunk.per_path_names, chunk.per_path)
    parameters, parameter_constants = split_constants(chunk.parameter_names, chunk.parameters)
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


class Column:
    """One per-path column of a run, held as a single value while every path has the same
    bits: the constants of a scenario (most of its parameters) then cost no memory."""

    def __init__(self, n: int):
        self.n = n
        self.constant: np.ndarray | None = None  # (1,) while constant
        self.array: np.ndarray | None = None

    def put_constant(self, start: int, size: int, value: np.ndarray) -> None:
        """One value (1,) for paths ``start`` .. ``start + size - 1`` (a chunk's constant column:
        while the column holds that value too, nothing to do)."""
        if self.array is None:
            if self.constant is None:
                self.constant = value.copy()
                return
            if self.constant.view(np.int64)[0] == value.view(np.int64)[0]:
                return
            self.array = np.full(self.n, self.constant[0])
        self.array[start : start + size] = value[0]

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

    Each day is sorted in place (numpy's sort: ~13 ms a series of 730 days x 4,096 paths
    where it was measured first, against ~28 ms for the compiled selection of the 20 order
    statistics needed that this replaced, and no compilation; on this project's current
    machine, an AMD EPYC on which numpy's sort runs ~5x slower, ~62-68 ms a series, so that
    a 20,000-path run's 7 series took 0.4-0.7 s of its ~1.2 s simulation) and each
    percentile is ``np.quantile`` of its two
    neighbouring order statistics at the fraction between them, which is the same
    interpolation in the same operations as over the whole day (tested bit for bit; where
    -0.0 and 0.0 tie, either may come first, as in any sort). A sample with NaN (which
    ``np.quantile`` propagates) gives NaN on its days. ``sample`` is reordered along its rows.
    """
    n_days, n = sample.shape
    levels = np.asarray(TIMESERIES_QUANTILES)
    virtual = (n - 1) * levels  # np.quantile's 'linear' method: between these order statistics
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    ends = [stats.quantile_ci_indices(n, q) for q in TIMESERIES_QUANTILES]
    ranks = sorted({*below, *above, *(lo for lo, _ in ends if lo >= 0), *(hi for _, hi in ends if hi < n)})
    column = {int(r): i for i, r in enumerate(ranks)}
    sample.sort(axis=1)  # NaN last
    values = sample[:, ranks]
    if np.isnan(sample[:, -1]).any():  # np.quantile gives NaN on the days with NaN
        quantiles = np.quantile(sample, TIMESERIES_QUANTILES, axis=1, overwrite_input=True)
    else:
        quantiles = np.empty((len(levels), n_days))
        for i, gamma in enumerate(virtual - below):
            pair = values[:, [column[int(below[i])], column[int(above[i])]]]
            quantiles[i] = np.quantile(pair, gamma, axis=1)
    ci95 = np.empty((2, len(levels), n_days))
    for i, (lo, hi) in enumerate(ends):
        ci95[0, i] = values[:, column[lo]] if lo >= 0 else -np.inf
        ci95[1, i] = values[:, column[hi]] if hi < n else np.inf
    return quantiles, ci95


class Merger:
    """Puts chunk results together in path order, whatever order they arrive in."""

    def __init__(
        self,
        n: int,
        n_days: int,
        percentiles: bool = True,
        prefix: RunPrefix | None = None,
        move: bool = False,
        series: tuple[str, ...] = DAILY_SERIES,
    ):
        """``prefix``: paths 0 .. prefix.paths - 1 taken from an earlier run (the chunks
        then start there; it must hold the sample, see :meth:`RunPrefix.covers_sample`),
        its columns moved out of it with ``move``."""
        self.n, self.n_days, self.percentiles, self.series = n, n_days, percentiles, series
        self.per_path: dict[str, Column] = {}
        self.parameters: dict[str, Column] = {}
        self.n_sample = min(n, TIMESERIES_SAMPLE_PATHS) if percentiles else 0
        # the sample's paths until all have arrived, then their percentiles (the sample,
        # 96 MB for two years, is not held for the rest of the run)
        self.sample = {k: np.empty((n_days, self.n_sample)) for k in series} if percentiles else {}
        self.sample_missing = self.n_sample
        self.quantiles: dict[str, np.ndarray] = {}
        self.quantiles_ci95: dict[str, np.ndarray] = {}
        self.sums = {k: BlockSums(n_days) for k in series}
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
                store.setdefault(k, Column(self.n)).put(0, v[:m])
        self.sums = {k: BlockSums(self.n_days, prefix.daily_sums[k], m) for k in self.series}
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
            if not constants and size:  # (a thread's chunk: its constant columns found in one pass)
                table, constants = split_constants(names, table)
            rows = iter(table)
            for k in names:  # in their order, whichever are constant
                column = store.setdefault(k, Column(self.n))
                if k in constants:
                    column.put_constant(chunk.start, size, constants[k])
                else:
                    column.put(chunk.start, next(rows))
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
