"""Compiled day loops of the processes (difficulty chain, GBM walks, AR(1), smoothing), event placement and the normal draws: one pass over (days x paths) where numpy would make several."""

from __future__ import annotations

import math

import numpy as np

from kzsim.model.jitting import jit
from kzsim.units import (
    HALVING_INTERVAL_BLOCKS,
    RETARGET_BLOCKS,
    RETARGET_MAX_FACTOR,
    SECONDS_PER_DAY,
    TARGET_BLOCK_SECONDS,
    TH_TO_H,
    TWO_POW_32,
)

# 50 x 2^-era for every era, as numpy computes it (0 past the smallest float): a table, as a
# call to ldexp or pow in the loop spills registers and made it ~2.5x slower
_SUBSIDY_BTC = 50.0 * np.exp2(-np.arange(1100.0))


@jit
def _chain(hashrate_hs, fees, d0, height0, epoch_blocks0, out, last_d, difficulty_out, fees_day_out, block):
    """The day loop of :func:`kzsim.model.processes.chain` (without a response), giving each day's
    BTC a day per TH/s from its difficulty, subsidy and fees, the last day's difficulty, each
    day's difficulty and the network's fees a day [BTC]; with ``block`` > 0, the last two as
    each day's sums over blocks of ``block`` paths (n_days, n_blocks), in
    :func:`kzsim.model.paths.block_sum`'s order, instead of each path's."""
    n_days, n = hashrate_hs.shape
    summed = block > 0
    d_row = np.empty(n if summed else 0)
    f_row = np.empty(n if summed else 0)
    buf = np.empty(block if summed else 0)
    d = d0.copy()
    height = height0.copy()
    epoch_blocks = epoch_blocks0.copy()
    window_days = epoch_blocks / (SECONDS_PER_DAY / TARGET_BLOCK_SECONDS)
    window_hash_days = window_days * d * TWO_POW_32 / TARGET_BLOCK_SECONDS
    row = np.empty(n)  # a day's values, copied out after: ``out`` may be ``hashrate_hs``
    for t in range(n_days):  # days outer, paths inner: rows are contiguous
        if t == n_days - 1:  # (loops, not slice assignments: those compile an error message, ~2 s)
            for j in range(n):
                last_d[j] = d[j]
        for j in range(n):
            h = hashrate_hs[t, j]
            dj = d[j]
            b = SECONDS_PER_DAY * h / (dj * TWO_POW_32)
            hj = height[j]
            era = math.floor(hj / HALVING_INTERVAL_BLOCKS)
            reward_now = _SUBSIDY_BTC[min(int(era), _SUBSIDY_BTC.size - 1)]
            to_halving = (era + 1) * HALVING_INTERVAL_BLOCKS - hj
            before = min(b, to_halving)
            s = (before * reward_now + (b - before) * 0.5 * reward_now) / b
            row[j] = TH_TO_H * SECONDS_PER_DAY / (dj * TWO_POW_32) * (s + fees[t, j])  # as model.btc_per_th_day
            if summed:
                d_row[j] = dj
                f_row[j] = b * fees[t, j]
            else:
                difficulty_out[t, j] = dj
                fees_day_out[t, j] = b * fees[t, j]
            height[j] = hj + b
            epoch_blocks[j] += b
            window_hash_days[j] += h
            window_days[j] += 1.0
            if epoch_blocks[j] >= RETARGET_BLOCKS:
                target = window_hash_days[j] / window_days[j] * TARGET_BLOCK_SECONDS / TWO_POW_32
                d[j] = min(max(target, dj / RETARGET_MAX_FACTOR), dj * RETARGET_MAX_FACTOR)
                epoch_blocks[j] -= RETARGET_BLOCKS
                window_hash_days[j] = 0.0
                window_days[j] = 0.0
        for j in range(n):
            out[t, j] = row[j]
        if summed:
            _row_block_sums(d_row, block, difficulty_out, t, buf)
            _row_block_sums(f_row, block, fees_day_out, t, buf)


@jit
def _row_block_sums(row, block, out, t, buf):
    """out[t, b] = the sum of row[b * block : (b + 1) * block] in block_sum's order."""
    n = row.size
    b = 0
    for a in range(0, n, block):
        m = min(block, n - a)
        for j in range(m):
            buf[j] = row[a + j]
        width = m
        while width > 1:
            half = width // 2
            offset = width - half
            for j in range(half):
                buf[j] += buf[offset + j]
            width = offset
        out[t, b] = buf[0] if m > 0 else 0.0
        b += 1


def chain_btc_per_th_day(
    hashrate_hs: np.ndarray,
    fees: np.ndarray,
    d0: np.ndarray,
    height0: np.ndarray,
    epoch_blocks0: np.ndarray,
    block: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BTC a day per TH/s (n_days, n) from the chain's difficulty and subsidy and the fees per
    block, as :func:`kzsim.model.paths.btc_per_th_day` gives them; the difficulty in force on
    the last day (n,); each day's difficulty and the network's fees a day [BTC] (n_days, n),
    or with ``block`` > 0 their sums over each block of ``block`` paths (n_days, n_blocks), as
    :func:`kzsim.model.paths.per_block_sums` takes them: what the economics and the per-day
    outputs need of the chain, without its blocks and subsidy a day."""
    hashrate = np.ascontiguousarray(hashrate_hs)
    n_days, n = hashrate.shape
    shape = (n_days, -(-n // block)) if block > 0 else (n_days, n)
    out, difficulty, fees_day = np.empty_like(hashrate), np.empty(shape), np.empty(shape)
    last_d = np.empty(n)
    _chain(hashrate, np.ascontiguousarray(fees), d0, height0, epoch_blocks0, out, last_d, difficulty, fees_day, block)
    return out, last_d, difficulty, fees_day


@jit
def _log_walk(log0, drift, scale, shocks, out):
    n_steps, n = shocks.shape
    total = np.zeros(n)
    for j in range(n):
        out[0, j] = log0[j]
    for t in range(n_steps):
        for j in range(n):
            total[j] += drift[j] + scale[j] * shocks[t, j]
            out[t + 1, j] = total[j] + log0[j]


def log_walk(log0, drift, scale, shocks: np.ndarray) -> np.ndarray:
    """(n_steps + 1, n): ``log0``, then ``log0`` + the running sum of ``drift + scale * shocks``,
    summed first and shifted after, as :func:`kzsim.model.processes.gbm` does in numpy."""
    n = shocks.shape[1]
    out = np.empty((shocks.shape[0] + 1, n))
    _log_walk(*(_vector(x, n) for x in (log0, drift, scale)), np.ascontiguousarray(shocks), out)
    return out


@jit
def _ar1(first, phi, innovation, shocks, out):
    n_days, n = shocks.shape
    for j in range(n):
        out[0, j] = first[j] * shocks[0, j]
    for t in range(1, n_days):
        for j in range(n):
            out[t, j] = phi[j] * out[t - 1, j] + innovation[j] * shocks[t, j]


def ar1(first, phi, innovation, shocks: np.ndarray) -> np.ndarray:
    """x_0 = first * z_0, x_t = phi * x_{t-1} + innovation * z_t (n_days, n), as
    :func:`kzsim.model.processes.fees_per_block` does in numpy."""
    n = shocks.shape[1]
    out = np.empty(shocks.shape)
    _ar1(*(_vector(x, n) for x in (first, phi, innovation)), np.ascontiguousarray(shocks), out)
    return out


@jit
def _scale_with_spikes(fees, median, decay, spikes):
    n_days, n = fees.shape
    extra = np.empty(n)
    for t in range(n_days):
        for j in range(n):
            e = spikes[t, j] if t == 0 else decay[j] * extra[j] + spikes[t, j]
            extra[j] = e
            fees[t, j] = fees[t, j] * median[j] * (e + 1.0)


def scale_with_spikes(fees: np.ndarray, median, decay, spikes: np.ndarray) -> None:
    """``fees`` (n_days, n), in place: fees_t = fees_t x median x (1 + extra_t), extra_0 =
    spikes_0, extra_t = decay x extra_{t-1} + spikes_t, with the bits of
    :func:`ar1` (first 1, innovation 1) followed by ``extra += 1`` and ``fees *= median``,
    ``fees *= extra`` in numpy."""
    n = fees.shape[1]
    if fees.ndim != 2 or not fees.flags.c_contiguous:
        raise ValueError("fees must be a C-contiguous (n_days, n) array")
    _scale_with_spikes(fees, _vector(median, n), _vector(decay, n), np.ascontiguousarray(spikes))


@jit
def _smooth(alpha, x, scale, out):
    n_days, n = x.shape
    e = np.empty(n)
    for j in range(n):
        e[j] = x[0, j]
        out[0, j] = scale[j] * e[j]
    for t in range(1, n_days):
        for j in range(n):
            e[j] = e[j] + alpha[j] * (x[t, j] - e[j])
            out[t, j] = scale[j] * e[j]


def smooth(alpha, x: np.ndarray, out: np.ndarray | None = None, scale=None) -> np.ndarray:
    """e_0 = x_0, e_t = e_{t-1} + alpha * (x_t - e_{t-1}), as :func:`kzsim.model.processes.exponential_smoothing`
    (into ``out``, which may be ``x`` itself: x_t is read before e_t is written); with
    ``scale``, scale x e_t (the bits of the product taken after)."""
    if out is None or not out.flags.c_contiguous:
        out = np.empty(x.shape)
    n = x.shape[1]
    _smooth(_vector(alpha, n), np.ascontiguousarray(x), _vector(1.0 if scale is None else scale, n), out)
    return out


@jit
def _multiply_by_product(x, a, b):
    n_days, n = x.shape
    for t in range(n_days):
        for j in range(n):
            x[t, j] = x[t, j] * (a[t, j] * b[t, j])


def multiply_by_product(x: np.ndarray, a: np.ndarray, b: np.ndarray | None) -> None:
    """``x *= a * b`` in place (``x *= a`` without ``b``), in one pass: the bits of ``a *= b;
    x *= a``. All (n_days, n), ``x`` C-contiguous."""
    if b is None:
        x *= a
        return
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous")
    _multiply_by_product(x, np.ascontiguousarray(a), np.ascontiguousarray(b))


@jit
def _shifted_product(s, shift, z, out):
    n_days, n = z.shape
    for t in range(n_days):
        zt, ot = z[t], out[t]
        for j in range(n):
            ot[j] = s[j] * zt[j] - shift[j]


def shifted_product(s, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``s * z - 0.5 * s * s`` (n_days, n) for per-path ``s``: numpy's operations, in one pass
    (into ``out``, which may be ``z`` itself: each element is read before it is written)."""
    n = z.shape[1]
    s = _vector(s, n)
    if out is None or not out.flags.c_contiguous:
        out = np.empty(z.shape)
    _shifted_product(s, 0.5 * s * s, np.ascontiguousarray(z), out)
    return out


def _vector(x, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)))


def event_order(path: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``np.lexsort((start, path))``: events by path, then by start, ties in their order.

    Two stable sorts, by start and then by path (a radix sort of the paths as 16-bit
    integers when they fit): ~0.6 ms for a block's 10,000 outages against lexsort's ~1.0 ms
    (a compiled sort within paths took ~0.15 ms but ~1.1 s to compile on a first run).
    """
    order = np.argsort(start, kind="stable")
    by_path = path[order]
    if by_path.size and 0 <= by_path.min() and by_path.max() < 2**15:
        by_path = by_path.astype(np.int16)
    return order[np.argsort(by_path, kind="stable")]


@jit
def _drawdown_factor(out, day, path, depth, recovery_days):
    for k in range(day.size):
        d0, j, d, r = day[k], path[k], depth[k], recovery_days[k]
        t = d0
        while t < out.shape[0] and t - d0 < r:
            out[t, j] *= 1.0 - d * (1.0 - (t - d0) / r)
            t += 1


def drawdown_factor(n_days: int, n_paths: int, day, path, depth, recovery_days) -> np.ndarray:
    """Share of the hashrate left on by drawdown events (n_days, n_paths), in (0, 1].

    An event on day t0 of depth d (a share) recovering over r days leaves
    1 - d (1 - (t - t0) / r) of the hashrate on, on days t0 <= t < t0 + r, and all of it
    after; events that overlap multiply (each takes its share of what is still on).

    Examples
    --------
    >>> drawdown_factor(5, 1, [1], [0], [0.4], [2.0]).ravel().tolist()
    [1.0, 0.6, 0.8, 1.0, 1.0]
    """
    out = np.ones((n_days, n_paths))
    _drawdown_factor(
        out,
        np.ascontiguousarray(day, dtype=np.int64),
        np.ascontiguousarray(path, dtype=np.int64),
        np.ascontiguousarray(depth, dtype=np.float64),
        np.ascontiguousarray(recovery_days, dtype=np.float64),
    )
    return out


@jit
def _add_at(a, rows, columns, values):
    for k in range(rows.size):
        a[rows[k], columns[k]] += values[k]


def add_at(a: np.ndarray, rows: np.ndarray, columns: np.ndarray, values) -> None:
    """``np.add.at(a, (rows, columns), values)`` (adds in index order: the same bits), ~10x
    faster; the indices must be within ``a`` (they are not checked, nor wrapped around)."""
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), np.shape(rows))
    _add_at(
        a,
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(columns, dtype=np.int64),
        np.ascontiguousarray(values),
    )


@jit
def _fill_standard_normal(generator, out):
    rows, columns = out.shape
    for i in range(rows):
        for j in range(columns):
            out[i, j] = generator.standard_normal()


def standard_normal(generator: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """``generator.standard_normal(shape)``, bit for bit, by numba's own support of numpy's
    ``Generator`` (numpy's ziggurat on the same bit generator, compiled: about 3x the speed
    of numpy's call); the generator's state moves on as numpy's would."""
    out = np.empty(shape)
    _fill_standard_normal(generator, out)
    return out


@jit
def block_sums(x, block, out):
    """out[t, b] = the sum of x[t, b * block : (b + 1) * block] in
    :func:`kzsim.model.paths.block_sum`'s order: the right half (the larger half when odd) added
    to the left half, and again, until one value is left (:func:`_row_block_sums`, day by day)."""
    buf = np.empty(block)
    for t in range(x.shape[0]):
        _row_block_sums(x[t], block, out, t, buf)
