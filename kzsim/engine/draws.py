"""Drawing a block of paths' random inputs from their named streams: per-path parameters, shocks and sparse events."""

from __future__ import annotations

import numpy as np

from kzsim.model import loops
from kzsim.model.paths import Calendar, Draws, fleet_power
from kzsim.model.prices import draw_bootstrap_indices
from kzsim.model.processes import event_hours_per_day
from kzsim.model.rng import BLOCK_PATHS, blocks_for, stream
from kzsim.scenario.dependence import iman_conover
from kzsim.scenario.schema import Scenario
from kzsim.units import DAYS_PER_YEAR, HOURS_PER_DAY

# Rare events (failed lots, missed prepayments) are drawn per path, not per path-day, when
# every path's probability is at most this: then the few repeats to redraw are cheap.
SPARSE_MAX_PROBABILITY = 0.02


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
        return loops.standard_normal(stream(seed, f"process:{name}", block), (rows, B))

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
    hashrate_drawdown = _hashrate_drawdowns(scenario, cal, p, seed, block)

    if scenario.simulation.variance_reduction == "antithetic":
        half = loops.standard_normal(stream(seed, "process:btc_price", block), (n_days - 1, B // 2))
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
        hashrate_drawdown=hashrate_drawdown,
    )
    return p, draws


def _hashrate_drawdowns(scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], seed: int, block: int):
    """Share of the network's trend hashrate left on by drawdown events (n_days, B), or None without them.

    Notes
    -----
    Events are Poisson in time with a rate per calendar month proportional to
    ``hashrate_drawdown_month_weights`` (averaging the yearly rate over a year), on days
    1 .. n_days - 1 (day 0 is the start value). A path's count is Poisson with the
    integrated rate; each event falls on a day drawn with probability proportional to
    that day's rate (the process exactly, a few draws a path). Depth and recovery are
    drawn per event (streams ``process:hashrate_drawdown.*``).
    """
    rate = p["market.hashrate_drawdown_rate_per_year"]
    if not np.any(rate > 0) or cal.n_days < 2:
        return None
    m, n_days, B = scenario.market, cal.n_days, BLOCK_PATHS
    weights = (
        np.ones(12) if m.hashrate_drawdown_month_weights is None else np.asarray(m.hashrate_drawdown_month_weights)
    )
    month_days = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    day_weight = weights[cal.month[1:] - 1] / (np.dot(weights, month_days) / DAYS_PER_YEAR)  # mean 1 over a year
    cumulative = np.cumsum(day_weight)
    counts = stream(seed, "process:hashrate_drawdown.count", block).poisson(rate / DAYS_PER_YEAR * cumulative[-1])
    path = np.repeat(np.arange(B), counts)
    u_day = stream(seed, "process:hashrate_drawdown.day", block).random(path.size)
    day = 1 + np.minimum(np.searchsorted(cumulative, u_day * cumulative[-1], side="right"), n_days - 2)
    depth = m.hashrate_drawdown_depth.ppf(stream(seed, "process:hashrate_drawdown.depth", block).random(path.size))
    recovery = m.hashrate_drawdown_recovery_days.ppf(
        stream(seed, "process:hashrate_drawdown.recovery", block).random(path.size)
    )
    return loops.drawdown_factor(n_days, B, day, path, depth, recovery)


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
