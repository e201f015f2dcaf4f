"""Stochastic processes in time, as pure functions of pre-drawn shocks.

Arrays are (n_days, n_paths). Every function takes its shocks as an argument, so zero
shocks give the deterministic drift path, which tests check by hand.
"""

from __future__ import annotations

import numpy as np

from kzsim.model import loops
from kzsim.units import (
    DAYS_PER_YEAR,
    HALVING_INTERVAL_BLOCKS,
    HOURS_PER_DAY,
    RETARGET_BLOCKS,
    RETARGET_MAX_FACTOR,
    SECONDS_PER_DAY,
    TARGET_BLOCK_SECONDS,
    TWO_POW_32,
)

# numpy accumulates along axis 0 of a (days x paths) array column by column, striding
# across rows (~11 ns an element); adding whole rows in a loop is ~2.5 ns an element
# from a few hundred paths on, and adds in the same order, so the bits are the same.
ROW_LOOP_MIN_PATHS = 256


def sum_days(x: np.ndarray) -> np.ndarray:
    """Sum over days (axis 0), added in day order for any number of paths.

    numpy sums a contiguous column pairwise but a wider array row by row; a chunk of one
    path would then round differently from a chunk of many. A cumulative sum is
    sequential in both cases, so results keep their bits whatever the chunk size.
    """
    if x.ndim == 2 and x.shape[1] == 1:
        return np.cumsum(x[:, 0])[-1:] if x.shape[0] else np.zeros(1)
    return x.sum(axis=0)


def cumsum_days(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Cumulative sum over days (axis 0) of a (n_days, n_paths) array; ``np.cumsum(x, axis=0)``, bit for bit.

    Examples
    --------
    >>> cumsum_days(np.arange(6.0).reshape(3, 2)).tolist()
    [[0.0, 1.0], [2.0, 4.0], [6.0, 9.0]]
    """
    if x.ndim != 2 or x.shape[1] < ROW_LOOP_MIN_PATHS:
        return np.cumsum(x, axis=0, out=out)
    out = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float64)) if out is None else out
    if x.shape[0]:
        out[0] = x[0]
    for t in range(1, x.shape[0]):
        np.add(out[t - 1], x[t], out=out[t])
    return out


def running_max_days(x: np.ndarray) -> np.ndarray:
    """Running maximum over days (axis 0); ``np.maximum.accumulate(x, axis=0)``."""
    if x.ndim != 2 or x.shape[1] < ROW_LOOP_MIN_PATHS:
        return np.maximum.accumulate(x, axis=0)
    out = np.empty_like(x)
    if x.shape[0]:
        out[0] = x[0]
    for t in range(1, x.shape[0]):
        np.maximum(out[t - 1], x[t], out=out[t])
    return out


def gbm(start, drift_per_year, volatility_per_year, shocks: np.ndarray) -> np.ndarray:
    """Geometric Brownian motion sampled daily; day 0 is ``start``.

    Parameters
    ----------
    start : array (n_paths,)
        Value on day 0 [any unit].
    drift_per_year, volatility_per_year : array (n_paths,)
        GBM mu [1/year] and sigma [1/sqrt(year)].
    shocks : array (n_days - 1, n_paths)
        Standard normal draws; row t moves day t to day t + 1.

    Returns
    -------
    array (n_days, n_paths)

    Notes
    -----
    log S_{t+1} = log S_t + (mu - sigma^2 / 2) dt + sigma sqrt(dt) Z_t, dt = 1/365, so
    log(S_t / S_0) ~ N((mu - sigma^2/2) t dt, sigma^2 t dt) and E[S_t] = S_0 exp(mu t dt).

    Examples
    --------
    >>> gbm(np.array([100.0]), np.array([0.0]), np.array([0.0]), np.zeros((2, 1))).ravel()
    array([100., 100., 100.])
    """
    start = np.asarray(start, dtype=np.float64)
    dt = 1.0 / DAYS_PER_YEAR
    drift = (drift_per_year - 0.5 * volatility_per_year**2) * dt
    scale = volatility_per_year * np.sqrt(dt)
    log = loops.log_walk(np.log(start), drift, scale, shocks)  # one compiled pass over days and paths
    return np.exp(log, out=log)


def exponential_smoothing(x: np.ndarray, lag_days, overwrite_input: bool = False) -> np.ndarray:
    """Exponential moving average along days with time constant ``lag_days`` (per path).

    e_0 = x_0; e_t = e_{t-1} + (x_t - e_{t-1}) / lag_days. ``overwrite_input=True`` may
    write the average over ``x`` (a day's value is read before its average is written).
    """
    alpha = 1.0 / np.maximum(np.asarray(lag_days, dtype=np.float64), 1.0)
    if x.ndim == 1:  # one path: a column of one
        smoothed = loops.smooth(alpha, x[:, None], out=x[:, None] if overwrite_input else None)
        return x if overwrite_input else smoothed[:, 0]
    return loops.smooth(alpha, x, out=x if overwrite_input else None)


def network_hashrate(
    start_hs,
    growth_per_year,
    volatility_per_year,
    shocks: np.ndarray,
    *,
    log_price_ratio: np.ndarray | None = None,
    price_elasticity=0.0,
    lag_days=90.0,
    overwrite_log_price_ratio: bool = False,
    drawdown: np.ndarray | None = None,
) -> np.ndarray:
    """Network hashrate [H/s]: a GBM trend that follows the lagged BTC price
    (``overwrite_log_price_ratio=True``: worked out over ``log_price_ratio``, one array less).

    Notes
    -----
    log H_t = log H^trend_t + elasticity * EMA_lag(log(P_t / P_0)), where H^trend is a GBM
    with drift ``growth_per_year`` and volatility ``volatility_per_year``. Miners switch
    machines on when the price (and so hashprice) rises, off when it falls, with a lag.
    ``drawdown`` (n_days, n_paths), the share of the hashrate that drawdown events leave on
    (:func:`kzsim.model.loops.drawdown_factor`), multiplies the trend before the response.
    """
    trend = gbm(start_hs, growth_per_year, volatility_per_year, shocks)
    elasticity = np.asarray(price_elasticity, dtype=np.float64)
    if log_price_ratio is None or not np.any(elasticity):
        if drawdown is not None:
            trend *= drawdown
        return trend
    column = trend.ndim == 1  # one path: a column of one
    if column:
        trend, log_price_ratio = trend[:, None], np.asarray(log_price_ratio)[:, None]
        drawdown = None if drawdown is None else np.asarray(drawdown)[:, None]
    # elasticity x EMA in one compiled pass, exp in numpy (SIMD), then the product with the
    # trend and the drawdowns in one pass: the numpy steps' bits with two passes less. The
    # function's own array (a new one, or the ratio when it may be overwritten), in place
    alpha = 1.0 / np.maximum(np.asarray(lag_days, dtype=np.float64), 1.0)
    response = loops.smooth(
        alpha, log_price_ratio, out=log_price_ratio if overwrite_log_price_ratio else None, scale=elasticity
    )
    np.exp(response, out=response)
    loops.multiply_by_product(response, trend, drawdown)
    return response[:, 0] if column else response


def fees_per_block(median, log_volatility, persistence_days, shocks, *, spikes=None, spike_half_life_days=3.0):
    """Transaction fees per block [BTC]: a persistent lognormal level with decaying spikes.

    Parameters
    ----------
    median : array (n_paths,)
        Median fees per block outside spikes [BTC/block].
    log_volatility : array (n_paths,)
        Stationary sd of the log level.
    persistence_days : array (n_paths,)
        Time constant tau of the log level; phi = exp(-1/tau) (0: independent days).
    shocks : array (n_days, n_paths)
        Standard normals.
    spikes : array (n_days, n_paths), optional
        Extra fees (a multiple of the usual) of the spikes starting on each day.
    spike_half_life_days : array (n_paths,)

    Notes
    -----
    X_0 = sigma Z_0, X_t = phi X_{t-1} + sigma sqrt(1 - phi^2) Z_t (stationary AR(1));
    S_t = sum over spikes k started by t of E_k 2^{-(t - t_k)/h} (E_k: the extra);
    fees_t = median * exp(X_t) * (1 + S_t). With tau = 0 and no spikes, fees_t = median * exp(sigma Z_t).

    Examples
    --------
    A spike of 5x on day 1 that halves its extra every day:

    >>> s = np.array([[0.0], [4.0], [0.0], [0.0]])
    >>> fees_per_block(np.array([0.1]), 0.0, 0.0, np.zeros((4, 1)), spikes=s, spike_half_life_days=1.0).ravel()
    array([0.1, 0.5, 0.3, 0.2])
    """
    sigma = np.asarray(log_volatility, dtype=np.float64)
    tau = np.asarray(persistence_days, dtype=np.float64)
    if np.any(tau > 0):
        with np.errstate(over="ignore"):  # a time constant of ~1e-308 days or less: 1/tau is inf, phi 0
            phi = np.exp(-1.0 / np.where(tau > 0, tau, 1.0)) * (tau > 0)
        innovation = sigma * np.sqrt(1.0 - phi * phi)
        x = _ar1(sigma, phi, innovation, shocks)
    else:
        x = sigma * shocks
    fees = np.exp(x, out=x)  # in place: x is this function's own array
    if spikes is None:
        fees *= median
        return fees
    h = np.asarray(spike_half_life_days, dtype=np.float64)
    with np.errstate(over="ignore"):  # as phi above: a half-life of ~0 days decays at once
        decay = np.where(h > 0, np.exp2(-1.0 / np.where(h > 0, h, 1.0)), 0.0)
    # fees_t = (fees_t * median) * (1 + extra_t), extra_t = decay * extra_{t-1} + spikes_t: one
    # compiled pass (the same operations as the AR(1) of the spikes, + 1 and two products)
    if fees.ndim == 1:  # one path: a column of one
        loops.scale_with_spikes(fees[:, None], median, decay, np.asarray(spikes)[:, None])
    else:
        loops.scale_with_spikes(fees, median, decay, spikes)
    return fees


def _ar1(first, phi, innovation, shocks: np.ndarray) -> np.ndarray:
    """x_0 = first z_0, x_t = phi x_{t-1} + innovation z_t along days (compiled; one path or many)."""
    if shocks.ndim == 1:
        return loops.ar1(first, phi, innovation, shocks[:, None])[:, 0]
    return loops.ar1(first, phi, innovation, shocks)


class HashpriceResponse:
    """Network hashrate that answers the hashprice with a lag, for :func:`chain`.

    log H_t = log H^trend_t + elasticity * E_t, with E the exponential moving average (time
    constant ``lag_days``) of log(hashprice_t / hashprice_0) and hashprice_t proportional to
    price_t * (subsidy_t + fees_t) / difficulty_t: the difficulty in force that day, so a
    retarget, a halving or a price fall lowers it. Miners switch machines off when
    hashprice falls and on when it recovers; a halving halves the hashprice and the
    network's hashrate falls after it, by an amount that emerges from elasticity and lag.
    ``realised`` holds the hashrate used (n_days, n_paths) after :func:`chain` ran.
    """

    def __init__(self, trend_hs, price, fees_per_block, elasticity, lag_days):
        self.trend, self.price, self.fees = trend_hs, price, fees_per_block
        self.elasticity = np.asarray(elasticity, dtype=np.float64)
        self.alpha = 1.0 / np.maximum(np.asarray(lag_days, dtype=np.float64), 1.0)
        self.realised = np.empty_like(trend_hs)
        self.ema = None
        self.log_hp0 = None

    def hashrate(self, t: int, difficulty: np.ndarray, height: np.ndarray) -> np.ndarray:
        reward = 50.0 * np.exp2(-np.floor(height / HALVING_INTERVAL_BLOCKS)) + self.fees[t]
        log_hp = np.log(self.price[t] * reward / difficulty)
        if self.ema is None:
            self.log_hp0, self.ema = log_hp, np.zeros_like(log_hp)
        else:
            self.ema = self.ema + self.alpha * (log_hp - self.log_hp0 - self.ema)
        h = self.trend[t] * np.exp(self.elasticity * self.ema)
        self.realised[t] = h
        return h


def chain(hashrate_hs: np.ndarray, difficulty0, height0, *, epoch_blocks0=None, response=None):
    """Difficulty, blocks and block subsidy day by day, with retargets and halvings.

    Parameters
    ----------
    hashrate_hs : array (n_days, n_paths)
        Network hashrate [H/s].
    difficulty0 : array (n_paths,)
        Difficulty on day 0.
    height0 : int or array (n_paths,)
        Block height at the start of day 0.
    epoch_blocks0 : array (n_paths,), optional
        Blocks already mined in the current retarget window (default ``height0 % 2016``).
    response : HashpriceResponse, optional
        With it, ``hashrate_hs`` is the trend and each day's hashrate answers the hashprice.

    Returns
    -------
    difficulty, blocks, subsidy_btc_per_block : arrays (n_days, n_paths)
        Difficulty in force, blocks found, and mean subsidy of that day's blocks [BTC].

    Notes
    -----
    Blocks a day = 86400 * H / (D * 2^32). When the window reaches 2016 blocks the
    difficulty is set to the window's mean hashrate times 600 / 2^32 (what 2016 blocks
    in the window's duration imply), bounded to x4 / /4, and applies from the next day.
    The subsidy halves at every multiple of 210,000 blocks, split exactly within a day.
    """
    n_days, n_paths = hashrate_hs.shape
    d = np.broadcast_to(np.asarray(difficulty0, dtype=np.float64), (n_paths,)).copy()
    height = np.broadcast_to(np.asarray(height0, dtype=np.float64), (n_paths,)).copy()
    if epoch_blocks0 is None:
        epoch_blocks = np.mod(height, RETARGET_BLOCKS)
    else:
        epoch_blocks = np.broadcast_to(np.asarray(epoch_blocks0, dtype=np.float64), (n_paths,)).copy()
    # The part of the window before day 0 is taken as mined at the hashrate matching d.
    window_days = epoch_blocks / (SECONDS_PER_DAY / TARGET_BLOCK_SECONDS)
    window_hash_days = window_days * d * TWO_POW_32 / TARGET_BLOCK_SECONDS

    difficulty = np.empty((n_days, n_paths))
    blocks = np.empty((n_days, n_paths))
    subsidy = np.empty((n_days, n_paths))
    for t in range(n_days):
        h = hashrate_hs[t] if response is None else response.hashrate(t, d, height)
        b = SECONDS_PER_DAY * h / (d * TWO_POW_32)
        subsidy[t] = mean_subsidy_btc(height, b)
        difficulty[t] = d
        blocks[t] = b
        height += b
        epoch_blocks += b
        window_hash_days += h
        window_days += 1.0
        due = epoch_blocks >= RETARGET_BLOCKS
        if due.any():
            target = window_hash_days / window_days * TARGET_BLOCK_SECONDS / TWO_POW_32
            new_d = np.clip(target, d / RETARGET_MAX_FACTOR, d * RETARGET_MAX_FACTOR)
            d = np.where(due, new_d, d)
            epoch_blocks = np.where(due, epoch_blocks - RETARGET_BLOCKS, epoch_blocks)
            window_hash_days = np.where(due, 0.0, window_hash_days)
            window_days = np.where(due, 0.0, window_days)
    return difficulty, blocks, subsidy


def mean_subsidy_btc(height, blocks):
    """Mean subsidy [BTC/block] of ``blocks`` blocks mined from ``height`` on, split exactly
    at a halving (at most one halving inside them).

    Examples
    --------
    >>> float(mean_subsidy_btc(1_049_928.0, 144.0))  # half the day's blocks before block 1,050,000
    2.34375
    """
    era = np.floor(height / HALVING_INTERVAL_BLOCKS)
    reward_now = 50.0 * np.exp2(-era)
    to_halving = (era + 1) * HALVING_INTERVAL_BLOCKS - height
    before = np.minimum(blocks, to_halving)
    return (before * reward_now + (blocks - before) * 0.5 * reward_now) / blocks


def subsidy_per_block(height0, blocks: np.ndarray) -> np.ndarray:
    """Mean subsidy [BTC/block] of each day for given blocks a day (n_days, n_paths), from ``height0``."""
    height = np.asarray(height0, dtype=np.float64) + np.cumsum(blocks, axis=0) - blocks
    return mean_subsidy_btc(height, blocks)


def event_hours_per_day(
    path_index: np.ndarray,
    start_hour: np.ndarray,
    duration_hours: np.ndarray,
    n_paths: int,
    n_days: int,
    *,
    merge: bool = True,
) -> np.ndarray:
    """Hours covered by events on each day of each path, split across days exactly.

    Parameters
    ----------
    path_index : int array (n_events,)
    start_hour : array (n_events,)
        Start of each event in hours from the start of day 0.
    duration_hours : array (n_events,)
    merge : bool
        True: overlapping events on one path count each hour once (grid outages).
        False: hours add up (independent lots idled by failed payments).

    Returns
    -------
    array (n_days, n_paths)
        Hours per day; with ``merge`` at most 24. Hours past the horizon are dropped.

    Examples
    --------
    A 48 h outage from 18:00 on day 0 costs 6, 24 and 18 hours:

    >>> event_hours_per_day(np.array([0]), np.array([18.0]), np.array([48.0]), 1, 4).ravel()
    array([ 6., 24., 18.,  0.])
    """
    path_index = np.asarray(path_index, dtype=np.int64)
    start = np.asarray(start_hour, dtype=np.float64)
    end = start + np.asarray(duration_hours, dtype=np.float64)
    if merge and start.size:
        order = loops.event_order(path_index, start)
        path_index, start, end = path_index[order], start[order], end[order]
        offset = (n_days * HOURS_PER_DAY + end.max() + 1.0) * path_index
        running_end = np.maximum.accumulate(end + offset) - offset
        new_group = np.ones(start.size, dtype=bool)
        new_group[1:] = (path_index[1:] != path_index[:-1]) | (start[1:] > running_end[:-1])
        first = np.flatnonzero(new_group)
        last = np.append(first[1:] - 1, start.size - 1)
        path_index, start, end = path_index[first], start[first], running_end[last]
    horizon = n_days * HOURS_PER_DAY
    start = np.clip(start, 0.0, horizon)
    end = np.clip(end, 0.0, horizon)
    keep = end > start
    path_index, start, end = path_index[keep], start[keep], end[keep]

    hours = np.zeros((n_days + 1, n_paths))
    d0 = np.floor(start / HOURS_PER_DAY).astype(np.int64)
    d1 = np.floor(end / HOURS_PER_DAY).astype(np.int64)
    same = d0 == d1
    loops.add_at(hours, d0[same], path_index[same], end[same] - start[same])
    span = ~same
    p, a, b = path_index[span], d0[span], d1[span]
    loops.add_at(hours, a, p, (a + 1) * HOURS_PER_DAY - start[span])
    loops.add_at(hours, b, p, end[span] - b * HOURS_PER_DAY)
    many = b > a + 1  # whole days inside the event: 24 h on each of days a + 1 .. b - 1
    if many.any():
        inside = b[many] - a[many] - 1
        first = np.repeat(a[many] + 1, inside)
        day = first + np.arange(first.size) - np.repeat(np.cumsum(inside) - inside, inside)
        cell, count = np.unique(day * n_paths + np.repeat(p[many], inside), return_counts=True)
        # 24 h times the events covering the whole day, added once after the partial hours
        hours.ravel()[cell] += HOURS_PER_DAY * count
    return hours[:n_days]
