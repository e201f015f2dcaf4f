"""Daily economics of a licensed Kazakh mining farm, vectorised over paths.

:func:`simulate_paths` takes the per-path parameters and the pre-drawn shocks of a set
of paths and returns every per-path output of MODEL.md plus the per-day series the
reports need. It does no I/O and draws no random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kzsim.model import compiling, kernel, loops, prices, processes
from kzsim.model.processes import sum_days
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.schema import Scenario, estimated_block_height
from kzsim.units import (
    BLOCKS_PER_DAY_TARGET,
    DAYS_PER_YEAR,
    EH_TO_TH,
    HOURS_PER_DAY,
    MONTHS_PER_YEAR,
    RETARGET_BLOCKS,
    SECONDS_PER_DAY,
    TARGET_BLOCK_SECONDS,
    TH_TO_H,
    TWO_POW_32,
    difficulty_from_hashrate_hs,
)


@dataclass(frozen=True)
class Calendar:
    """The simulated days: dates, seasons and fiscal years."""

    dates: np.ndarray  # datetime64[D], (n_days,)
    is_winter: np.ndarray  # bool
    month: np.ndarray  # calendar month of each day, 1 .. 12
    year_index: np.ndarray  # 0 for the start year, 1 for the next calendar year, ...
    fiscal_year_starts: np.ndarray  # first day index of each fiscal year in the horizon

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @classmethod
    def of(cls, scenario: Scenario) -> Calendar:
        sim = scenario.simulation
        dates = np.datetime64(sim.start_date, "D") + np.arange(sim.horizon_days)
        years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
        months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
        year_index = years - years[0]
        starts = np.flatnonzero(np.diff(year_index, prepend=-1))
        return cls(
            dates=dates,
            is_winter=np.isin(months, sim.winter_months),
            month=months,
            year_index=year_index,
            fiscal_year_starts=starts,
        )


def fleet_power(scenario: Scenario, p: dict[str, np.ndarray]):
    """Farm hashrate [TH/s], IT power [MW] and facility power [MW] per path.

    Notes
    -----
    IT power = sum(count * hashrate_th * efficiency_j_per_th) / 1e6;
    facility power = IT power * (1 + cooling_overhead_fraction).
    """
    hashrate_th = 0.0
    it_power_mw = 0.0
    for i, asic in enumerate(scenario.farm.fleet):
        h = asic.count * p[f"farm.fleet.{i}.hashrate_th"]
        hashrate_th = hashrate_th + h
        it_power_mw = it_power_mw + h * p[f"farm.fleet.{i}.efficiency_j_per_th"] / 1e6
    facility_power_mw = it_power_mw * (1.0 + p["farm.cooling_overhead_fraction"])
    return hashrate_th, it_power_mw, facility_power_mw


def failed_share(rate_per_year, lead_time_days, n_days: int) -> np.ndarray:
    """Expected share of machines off awaiting replacement on each day (n_days, n_paths).

    Notes
    -----
    Each machine alternates between hashing (failures at ``rate_per_year``) and waiting for
    its replacement (mean ``lead_time_days``), both memoryless, all up on day 0:
    d(t) = a / (a + b) * (1 - exp(-(a + b) t)), a = rate / 365, b = 1 / lead time. For a
    fleet of hundreds of machines the share is close to its expectation, which is used.

    Examples
    --------
    >>> float(failed_share(np.array([0.1]), np.array([36.5]), 100000)[-1, 0]).__round__(6)  # a/(a+b) = 0.01/1.01
    0.009901
    """
    a = np.asarray(rate_per_year, dtype=np.float64) / DAYS_PER_YEAR
    lead = np.asarray(lead_time_days, dtype=np.float64)
    steady = a * lead / (1.0 + a * lead)  # a / (a + b), written so that a lead time of 0 (or 5e-324) is safe
    with np.errstate(over="ignore", divide="ignore"):
        speed = a + np.divide(1.0, lead, out=np.full_like(lead, np.inf), where=lead > 0)  # a + b
    t = np.arange(1, n_days, dtype=np.float64)[:, None]
    out = np.zeros((n_days, np.broadcast(a, lead).size))
    with np.errstate(over="ignore"):  # a lead time of ~1e-308 days: speed * t is inf, the share its steady state
        out[1:] = steady * -np.expm1(-speed * t)
    return out


def replacement_value_usd(scenario: Scenario, p: dict[str, np.ndarray]) -> np.ndarray:
    """Purchase value of the whole fleet [USD] (what replacing every machine once would cost)."""
    total = 0.0
    for i, asic in enumerate(scenario.farm.fleet):
        total = total + asic.count * p[f"farm.fleet.{i}.unit_price_usd"]
    return total


def capex_usd(scenario: Scenario, p: dict[str, np.ndarray]) -> np.ndarray:
    total = p["farm.site_capex_usd"]
    for i, asic in enumerate(scenario.farm.fleet):
        total = total + asic.count * p[f"farm.fleet.{i}.unit_price_usd"]
    return total


def start_height(scenario: Scenario) -> int:
    m = scenario.market
    if m.start_block_height is not None:
        return m.start_block_height
    return estimated_block_height(scenario.simulation.start_date)


def start_difficulty(p: dict[str, np.ndarray]) -> np.ndarray:
    """Difficulty on day 0: the scenario's, or the one matching the start hashrate."""
    if "market.network_difficulty" in p:
        return p["market.network_difficulty"]
    return difficulty_from_hashrate_hs(p["market.network_hashrate_eh"] * EH_TO_TH * TH_TO_H)


def mining_fee_kzt_per_kwh(scenario: Scenario, price_kzt_per_kwh: np.ndarray) -> np.ndarray:
    """Mining fee by the bracket table on the price paid [KZT/kWh]."""
    brackets = scenario.electricity.mining_fee_brackets
    lows = np.array([b.min_price_kzt_per_kwh for b in brackets])
    fees = np.array([b.fee_kzt_per_kwh for b in brackets])
    idx = np.searchsorted(lows, price_kzt_per_kwh, side="right") - 1
    return fees[np.clip(idx, 0, len(fees) - 1)]


# the per-day series that the compiled kernel sums over its tiles, in its order (kzsim.model.kernel._DAILY_SUMS)
DAILY_SUMS = ("cum_pnl_usd", "up_fraction", "hashprice_usd_per_th_day", "btc_price_usd")
assert kernel.TILE_PATHS == BLOCK_PATHS, "the kernel's tiles must be the blocks for its block sums"


def block_sum(x: np.ndarray) -> np.ndarray:
    """Sum over paths (axis 1) of an (n_days, m) array, in an order of our own: the right half
    of the columns (the larger half when m is odd) is added to the left half's, and again,
    until one column is left.

    The compiled kernel takes the same sums over its tiles of paths (``sums=True``), so the
    engine gets the bits of a block's per-day sums without the kernel writing its per-day
    values out; numpy's own ``sum`` (pairwise, in an order numpy may change) could not be matched.
    """
    x = np.array(x, dtype=np.float64)  # a copy, worked in place
    width = x.shape[1]
    while width > 1:
        half = width // 2
        offset = width - half
        x[:, :half] += x[:, offset : offset + half]
        width = offset
    return x[:, 0].copy() if width else np.zeros(x.shape[0])


def per_block_sums(x: np.ndarray) -> np.ndarray:
    """(n_days, n_blocks): :func:`block_sum` of each block of ``BLOCK_PATHS`` columns of ``x``
    (the last block may be smaller), compiled: the same additions in the same order, in one
    pass over ``x`` (numpy's slices took ~7 % of a run for the network's three series)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty((x.shape[0], -(-x.shape[1] // BLOCK_PATHS)))
    loops.block_sums(x, BLOCK_PATHS, out)
    return out


@dataclass
class Draws:
    """Pre-drawn randomness of a set of paths (all arrays have n_paths columns)."""

    btc_price: np.ndarray  # (n_days - 1, n) standard normals
    usd_kzt: np.ndarray  # (n_days - 1, n) standard normals, independent of btc_price
    network_hashrate: np.ndarray  # (n_days - 1, n) standard normals
    fees: np.ndarray  # (n_days, n) standard normals
    day_ahead_price: np.ndarray | None  # (n_days, n) standard normals (day_ahead mode)
    grid_hours: np.ndarray  # (n_days, n) outage + restart hours, in [0, 24]
    grid_outages: np.ndarray  # (n,) number of outages that started in the horizon
    payment_lot_hours: np.ndarray | None  # (n_days, n) lot-hours idled (lots mode)
    prepayment_missed: np.ndarray | None  # (n_days, n) bool (day_ahead mode)
    plan_built: np.ndarray | None  # (n,) bool (70/30 plan)
    btc_jumps: np.ndarray | None = None  # (n_days - 1, n) sum of jump log sizes a day (jump_diffusion)
    btc_history_index: np.ndarray | None = None  # (n_days - 1, n) day of history resampled (bootstrap)
    # (n_days, n) share of the network's trend hashrate that drawdown events leave on, in (0, 1]
    hashrate_drawdown: np.ndarray | None = None
    fee_spikes: np.ndarray | None = None  # (n_days, n) extra fees (a multiple of the usual) on each spike's first day

    def take(self, rows: slice) -> Draws:
        """The draws of a subset of paths (columns; 1-D arrays by index)."""
        out = {}
        for name, value in self.__dict__.items():
            if value is None:
                out[name] = None
            elif value.ndim == 1:
                out[name] = value[rows]
            else:
                out[name] = value[:, rows]
        return Draws(**out)

    @staticmethod
    def concat(parts: list[Draws]) -> Draws:
        if len(parts) == 1:
            return parts[0]
        out = {}
        for name, value in parts[0].__dict__.items():
            if value is None:
                out[name] = None
            else:
                axis = 0 if value.ndim == 1 else 1
                out[name] = np.concatenate([getattr(p, name) for p in parts], axis=axis)
        return Draws(**out)


def btc_price_paths(
    scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], draws: Draws
) -> tuple[np.ndarray, np.ndarray]:
    """BTC price [USD] (n_days, n) under the scenario's price model, and the standardised
    daily shocks (n_days - 1, n) that the tenge is correlated with."""
    m = scenario.market
    start, mu = p["market.btc_price_usd"], p["market.btc_drift_per_year"]
    z = draws.btc_price
    if m.price_model == "gbm":
        return processes.gbm(start, mu, p["market.btc_volatility_per_year"], z), z
    if m.price_model == "jump_diffusion":
        j = "market.jump_diffusion."
        price = prices.jump_diffusion(
            start,
            mu,
            p["market.btc_volatility_per_year"],
            p[j + "jumps_per_year"],
            p[j + "jump_mean_log"],
            p[j + "jump_volatility_log"],
            z,
            draws.btc_jumps,
        )
        return price, z
    if m.price_model == "garch":
        g = "market.garch."
        long_run = p[g + "long_run_volatility_per_year"]
        start_vol = p.get(g + "start_volatility_per_year", long_run)
        price, _vol = prices.garch(start, mu, long_run, p[g + "alpha"], p[g + "beta"], start_vol, z)
        return price, z
    n_paths = start.size
    if m.price_model == "bootstrap":
        r = m.bootstrap.log_returns
        drift = mu if m.bootstrap.drift == "scenario" else None
        standard = (r - r.mean()) / r.std()
        return prices.bootstrap(start, r, draws.btc_history_index, drift), standard[draws.btc_history_index]
    # replay: every path is the history
    history = m.replay.window("btc_price_csv", scenario.simulation.start_date, cal.n_days)
    r = np.diff(np.log(history))
    standard = (r - r.mean()) / r.std() if r.size > 1 and r.std() > 0 else np.zeros_like(r)
    return np.repeat(history[:, None], n_paths, axis=1), np.repeat(standard[:, None], n_paths, axis=1)


def simulate_paths(
    scenario: Scenario,
    cal: Calendar,
    p: dict[str, np.ndarray],
    draws: Draws,
    release_draws: bool = False,
    block_sums: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Simulate a set of paths.

    The economics run as one compiled pass over days and paths (:mod:`kzsim.model.kernel`);
    ``tests/reference/numpy_model.py`` computes the same bits another way, for the tests.
    ``release_draws=True`` hands ``draws`` over: the BTC, tenge,
    hashrate and fee shocks are set to None as soon as their process has used them, so that
    they are freed early when nothing else holds them, and the compiled kernel turns the
    day-ahead normals into the day-ahead price factor where they lie (their columns are the
    paths' own: a chunk of a cached block writes only its own). The compiled chain gives the
    BTC a day per TH/s, each day's difficulty and the network's fees a day, not the blocks
    and subsidy a day, and the kernel keeps the AIFC coins of the last ``lag + 1`` days
    instead of every day's, so that a chunk holds few (days x paths) arrays at a time.

    ``block_sums=True`` returns, instead of each path's per-day values, their sums over each
    block of :data:`~kzsim.model.rng.BLOCK_PATHS` paths (from the first; the last block may be
    smaller), taken as :func:`block_sum` takes them: the compiled kernel sums each day as it
    goes and holds none of the per-day series. The bits are the same either way.

    Returns
    -------
    per_path : dict of (n,) arrays
        Every per-path output (see the README's output reference).
    daily : dict of (n_days, n) arrays, or (n_days, n_blocks) with ``block_sums``
        ``cum_pnl_usd``, ``btc_price_usd``, ``up_fraction``, ``hashprice_usd_per_th_day``,
        ``difficulty``, ``network_hashrate_eh``, ``fees_btc_per_day`` (the network's).
    """
    sc = scenario
    m = sc.market
    n_days = cal.n_days

    # ---- farm ---------------------------------------------------------------------
    farm_hashrate_th, it_power_mw, facility_mw = fleet_power(sc, p)
    n_paths = facility_mw.size

    # ---- market -------------------------------------------------------------------
    price, btc_shock = btc_price_paths(sc, cal, p, draws)
    rho = m.btc_kzt_correlation
    z_fx = rho * btc_shock + np.sqrt(1.0 - rho * rho) * draws.usd_kzt if rho else draws.usd_kzt
    usd_kzt = processes.gbm(
        p["market.usd_kzt"],
        p["market.kzt_devaluation_per_year"],
        p["market.kzt_volatility_per_year"],
        z_fx,
    )
    del btc_shock, z_fx
    if release_draws:  # each process's shocks are freed once used: a chunk holds fewer at a time
        draws.btc_price = draws.usd_kzt = draws.btc_jumps = draws.btc_history_index = None
    hashrate0_hs = p["market.network_hashrate_eh"] * EH_TO_TH * TH_TO_H
    follows_hashprice = m.hashrate_responds_to == "hashprice"
    responds = bool(np.any(p["market.hashrate_price_elasticity"]))
    network_hs = processes.network_hashrate(
        hashrate0_hs,
        p["market.hashrate_growth_per_year"],
        p["market.hashrate_volatility_per_year"],
        draws.network_hashrate,
        log_price_ratio=None if follows_hashprice or not responds else _log_ratio(price),
        price_elasticity=p["market.hashrate_price_elasticity"],
        lag_days=p["market.hashrate_response_lag_days"],
        overwrite_log_price_ratio=True,  # made for it
        drawdown=draws.hashrate_drawdown,
    )
    if release_draws:
        draws.network_hashrate = draws.hashrate_drawdown = None
    replay = m.replay
    history_fees = replay and replay.window("fees_btc_per_day_csv", sc.simulation.start_date, n_days)
    if history_fees is not None:
        fees_per_block = np.repeat(history_fees[:, None] / BLOCKS_PER_DAY_TARGET, n_paths, axis=1)
    else:
        fees_per_block = processes.fees_per_block(
            p["market.fees_btc_per_block"],
            p["market.fees_log_volatility"],
            p["market.fees_persistence_days"],
            draws.fees,
            spikes=draws.fee_spikes,
            spike_half_life_days=p["market.fees_spike_half_life_days"],
        )
    if release_draws:
        draws.fees = draws.fee_spikes = None
    history_difficulty = replay and replay.window("difficulty_csv", sc.simulation.start_date, n_days)
    per_th = None  # BTC a day per TH/s, when the compiled chain gives it without the rest
    summed_by_chain: set[str] = set()  # per-day outputs the compiled chain gives as block sums
    if history_difficulty is not None:  # the chain as it was: blocks at the 144 a day that difficulty aims for
        difficulty = np.repeat(history_difficulty[:, None], n_paths, axis=1)
        network_hs = difficulty * TWO_POW_32 / TARGET_BLOCK_SECONDS
        blocks = np.full((n_days, n_paths), BLOCKS_PER_DAY_TARGET)
        subsidy = processes.subsidy_per_block(start_height(sc), blocks)
        fees_day = fees_per_block * blocks
    else:
        response = None
        if follows_hashprice and np.any(p["market.hashrate_price_elasticity"]):
            response = processes.HashpriceResponse(
                network_hs,
                price,
                fees_per_block,
                p["market.hashrate_price_elasticity"],
                p["market.hashrate_response_lag_days"],
            )
        if response is None:
            height0 = np.full(n_paths, float(start_height(sc)))
            d0 = np.broadcast_to(start_difficulty(p), (n_paths,)).astype(np.float64)
            final_network_hs = network_hs[-1].copy()
            summed_by_chain = {"difficulty", "fees_btc_per_day"} if block_sums else set()
            per_th, final_difficulty, difficulty, fees_day = loops.chain_btc_per_th_day(
                network_hs,
                fees_per_block,
                d0,
                height0,
                np.mod(height0, RETARGET_BLOCKS),
                BLOCK_PATHS if block_sums else 0,  # the sums straight from the day loop
            )
            del fees_per_block
        else:
            difficulty, blocks, subsidy = processes.chain(
                network_hs, start_difficulty(p), start_height(sc), response=response
            )
            fees_day = fees_per_block * blocks
            del blocks
            if response is not None:
                network_hs = response.realised
    if per_th is None:
        final_network_hs, final_difficulty = network_hs[-1].copy(), difficulty[-1]
    farm = (farm_hashrate_th, facility_mw)
    if per_th is None:
        per_th = btc_per_th_day(difficulty, subsidy, fees_per_block)
        del subsidy, fees_per_block
    # the network's per-day outputs, as sums over blocks of paths when only those are asked for
    network_hs /= EH_TO_TH * TH_TO_H  # EH/s, in place: the hashrate is not used after
    network = {"difficulty": difficulty, "network_hashrate_eh": network_hs, "fees_btc_per_day": fees_day}
    if block_sums:  # (the compiled chain gives its two summed already)
        network = {k: v if k in summed_by_chain else per_block_sums(v) for k, v in network.items()}
    del difficulty, network_hs, fees_day
    inputs = (sc, cal, p, draws, farm, price, usd_kzt, per_th)
    per_path, daily = _economics(*inputs, release_draws=release_draws, block_sums=block_sums)
    daily.update(network)
    per_path.update(
        {
            "grid_outages": draws.grid_outages.astype(np.float64),
            "facility_power_mw": facility_mw,
            "farm_hashrate_th": farm_hashrate_th,
            "mean_btc_price_usd": sum_days(price) / n_days,
            "final_btc_price_usd": price[-1],
            "final_usd_kzt": usd_kzt[-1],
            "final_network_hashrate_eh": final_network_hs / (EH_TO_TH * TH_TO_H),
            "final_difficulty": final_difficulty,
        }
    )
    return per_path, daily


def btc_per_th_day(difficulty: np.ndarray, subsidy: np.ndarray, fees_per_block: np.ndarray) -> np.ndarray:
    """BTC a day per TH/s under FPPS, before the pool fee (n_days, n): a TH/s finds
    1e12 x 86,400 / (difficulty x 2^32) blocks a day, each paying the subsidy and the fees.
    (The compiled chain computes it in this order too: :func:`kzsim.model.loops.chain_btc_per_th_day`.)"""
    return TH_TO_H * SECONDS_PER_DAY / (difficulty * TWO_POW_32) * (subsidy + fees_per_block)


def _log_ratio(price: np.ndarray) -> np.ndarray:
    """log(price_t / price_0), in one array."""
    ratio = price / price[0]
    return np.log(ratio, out=ratio)


def _per_path_or_one(values) -> np.ndarray:
    """``values`` as a (1, n) row, or (1, 1) when every path has the same value (broadcast by the kernel)."""
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return v[:1][None, :] if np.all(v == v[0]) else v[None, :]


def _economics(sc, cal, p, draws, farm, price, usd_kzt, btc_per_th, release_draws=False, block_sums=False):
    """The farm's economics in one compiled pass over days and paths (:func:`kzsim.model.kernel.economics`),
    and the four per-day series (or their block sums, see :func:`simulate_paths`).

    ``release_draws=True``: the day-ahead price factor is computed over the day-ahead
    normals, which are not used after it (one (n_days, n) array less)."""
    from kzsim.model import finance
    from kzsim.model.kernel import Out, Param

    e, r, f = sc.electricity, sc.regulation, sc.farm
    n_days = cal.n_days
    farm_hashrate_th, facility_mw = farm  # from simulate_paths' fleet_power
    n = facility_mw.size
    lots_mode = e.procurement_mode == "lots"

    def per_path(x) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))

    q = np.empty((len(Param), n))
    q[Param.farm_hashrate_th] = farm_hashrate_th
    q[Param.facility_mw] = facility_mw
    q[Param.pool_fee_share] = p["farm.pool_fee_share"]
    q[Param.lot_size_mwh] = p["electricity.lot_size_mwh"] if lots_mode else 1.0
    q[Param.hardware_availability_fraction] = p["farm.hardware_availability_fraction"]
    q[Param.winter_quota_multiplier] = p["electricity.winter_quota_multiplier"]
    q[Param.quota_fraction] = p["electricity.quota_fraction"]
    plan = e.plan_70_30
    if plan is not None:
        q[Param.plan_extra_mwh] = (
            p["electricity.plan_70_30.plant_capacity_mw"]
            * p["electricity.plan_70_30.capacity_factor"]
            * p["electricity.plan_70_30.miner_share"]
            * p["electricity.plan_70_30.farm_allocation_share"]
            * HOURS_PER_DAY
        )
        online = np.ceil(per_path(p["electricity.plan_70_30.online_delay_days"]))  # first whole day >= the delay
        q[Param.plan_online_day] = np.where(draws.plan_built, online, np.inf)
    else:
        q[Param.plan_extra_mwh] = 0.0
        q[Param.plan_online_day] = np.inf
    q[Param.tariff_kzt_per_kwh] = p["electricity.tariff_kzt_per_kwh"]
    q[Param.winter_tariff_factor] = 1.0 + p["electricity.winter_tariff_premium_share"]
    if lots_mode:
        q[Param.day_ahead_floor_kzt_per_kwh] = 0.0
        q[Param.day_ahead_fee_kzt_per_day] = 0.0
        q[Param.lot_costs_kzt] = p["electricity.lot_fee_kzt"] + p["electricity.lot_admin_cost_kzt"]
    else:
        q[Param.day_ahead_floor_kzt_per_kwh] = p["electricity.day_ahead_floor_kzt_per_kwh"]
        q[Param.day_ahead_fee_kzt_per_day] = p["electricity.day_ahead_fee_kzt_per_day"]
        q[Param.lot_costs_kzt] = 0.0
    q[Param.aifc_share] = p["regulation.aifc_sale_share"]
    q[Param.aifc_factor] = 1.0 - p["regulation.aifc_spread_share"] - p["regulation.aifc_fee_share"]
    q[Param.market_factor] = 1.0 - p["market.exchange_fee_share"]
    q[Param.compliance_opex_share] = p["regulation.compliance_opex_share"]
    q[Param.compliance_fixed_usd_per_day] = p["regulation.compliance_fixed_usd_per_year"] / DAYS_PER_YEAR
    q[Param.fixed_opex_usd_per_day] = p["farm.fixed_opex_usd_per_month"] * MONTHS_PER_YEAR / DAYS_PER_YEAR
    q[Param.replacement_usd_per_day] = (
        replacement_value_usd(sc, p)
        * p["farm.replacement_cost_share"]
        * p["farm.hardware_failure_rate_per_year"]
        / DAYS_PER_YEAR
    )
    q[Param.shutoff_restart_cost_usd] = p["farm.shutoff_restart_cost_usd"] if f.economic_shutoff else 0.0
    capex = capex_usd(sc, p)
    dep_days = f.depreciation_years * DAYS_PER_YEAR
    q[Param.capex_usd] = capex
    q[Param.depreciation_usd_per_day] = capex / dep_days
    q[Param.profit_tax_rate] = p["regulation.profit_tax_rate"]

    days = np.arange(n_days)
    years_in = (days / DAYS_PER_YEAR)[:, None]
    ageing = (1.0 + _per_path_or_one(p["farm.efficiency_degradation_per_year"])) ** -years_in
    rate, lead = _per_path_or_one(p["farm.hardware_failure_rate_per_year"]), p["farm.replacement_lead_time_days"]
    failed = failed_share(rate[0], _per_path_or_one(lead)[0], n_days)
    plan = None
    if f.upgrade is not None:  # the swap's day on each path, from the hashprice the kernel will see
        ageing, failed, plan = finance.upgrade_plan(sc, p, btc_per_th * price, ageing, failed, farm_hashrate_th)
    years = ((days + 1) / DAYS_PER_YEAR)[:, None]
    discount = np.exp(-np.log1p(_per_path_or_one(p["farm.discount_rate_per_year"])) * years)
    n_years = int(cal.year_index[-1]) + 1
    indexation = (1.0 + _per_path_or_one(p["electricity.tariff_indexation_per_year"])) ** np.arange(n_years)[:, None]
    year_end = np.zeros(n_days, dtype=bool)
    year_end[np.append(cal.fiscal_year_starts[1:] - 1, n_days - 1)] = True
    dep_share = np.clip(dep_days - days, 0.0, 1.0)
    if lots_mode:
        payment = draws.payment_lot_hours
        day_ahead_factor = payment  # unread with lots: any (n_days, n) array
    else:
        payment = draws.prepayment_missed  # bool: the kernel reads True as 1.0
        # s z - s^2 / 2 in one compiled pass, exp in numpy (SIMD: a call inside the kernel spills registers)
        day_ahead_factor = loops.shifted_product(
            p["electricity.day_ahead_price_volatility"],
            draws.day_ahead_price,
            out=draws.day_ahead_price if release_draws else None,
        )
        if release_draws:
            draws.day_ahead_price = None
        np.exp(day_ahead_factor, out=day_ahead_factor)
    brackets = e.mining_fee_brackets
    decisions = finance.has_decisions(sc)  # hedges and financing need each path's days
    kernel_sums = block_sums and not decisions
    shape = (n_days, n)
    if kernel_sums:  # summed by the kernel, not written out (its tiles are the blocks)
        shape = (n_days, 0)
    cum_pnl, up_fraction, hashprice = np.empty(shape), np.empty(shape), np.empty(shape)
    sums = np.empty((len(DAILY_SUMS), n_days, -(-n // BLOCK_PATHS) if kernel_sums else 0))
    cash_pre, btc_day = (np.empty((n_days, n if decisions else 0)) for _ in range(2))
    out = np.empty((len(Out), n))
    compiling.wait(lots_mode)  # a child compiling the kernel (a cold compile cache): loaded, not compiled here
    kernel.economics(
        np.ascontiguousarray(q),
        *(np.ascontiguousarray(a) for a in (price, usd_kzt, btc_per_th)),
        np.ascontiguousarray(draws.grid_hours),
        np.ascontiguousarray(payment),
        np.ascontiguousarray(day_ahead_factor),
        np.ascontiguousarray(ageing),
        np.ascontiguousarray(failed),
        np.ascontiguousarray(discount),
        np.ascontiguousarray(indexation),
        np.ascontiguousarray(cal.is_winter),
        np.ascontiguousarray(cal.year_index, dtype=np.int64),
        year_end,
        dep_share,
        np.cumsum(dep_share),
        np.array([b.min_price_kzt_per_kwh for b in brackets], dtype=np.float64),
        np.array([b.fee_kzt_per_kwh for b in brackets], dtype=np.float64),
        lots_mode,
        bool(f.economic_shutoff),
        r.treasury_policy == "sell",
        int(r.aifc_settlement_lag_days),
        cum_pnl,
        up_fraction,
        hashprice,
        kernel_sums,
        sums,
        cash_pre,
        btc_day,
        out,
    )
    result = {name.name: out[name.value] for name in Out}
    for name in ("up_fraction", "breakeven_hashprice_usd_per_th_day", "mean_hashprice_usd_per_th_day"):
        result[name] /= n_days  # sums over days -> means
    result["profit_usd"] = result["profit_before_tax_usd"] - result["profit_tax_usd"]
    result["capex_usd"] = capex
    btc_total = result["btc_mined"]
    with np.errstate(divide="ignore", invalid="ignore"):
        result["cash_cost_per_btc_usd"] = np.where(btc_total > 0, result["cash_cost_usd"] / btc_total, np.nan)
        all_in = result["cash_cost_usd"] + result["depreciation_usd"] + result["profit_tax_usd"]
        result["all_in_cost_per_btc_usd"] = np.where(btc_total > 0, all_in / btc_total, np.nan)
    if kernel_sums:
        return result, dict(zip(DAILY_SUMS, sums))
    daily = dict(zip(DAILY_SUMS, (cum_pnl, up_fraction, hashprice, price)))
    if decisions:
        dep_day = dep_share[:, None] * q[Param.depreciation_usd_per_day]  # the kernel's product
        finance.apply(sc, cal, p, result, daily, price, cash_pre, btc_day, dep_day, discount, farm_hashrate_th, plan)
    if block_sums:  # in the kernel's order (block_sum's): the same bits as its own sums
        daily = {k: per_block_sums(v) for k, v in daily.items()}
    return result, daily
