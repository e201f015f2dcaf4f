"""An independent numpy reference of the model, for the tests only.

kzsim has one model (the compiled day step of :mod:`kzsim.model`). This module computes the
same outputs another way, with whole-array numpy operations over (days x paths) arrays: the
version kzsim shipped before its compiled kernels, kept here as the oracle that the tests
compare the package with, bit for bit, on every shipped scenario, on variants and on
generated scenarios (few paths: it is slow and memory-hungry). It is not used by the package.
"""

from __future__ import annotations

import numpy as np

from kzsim.model import prices, processes
from kzsim.model.paths import (
    Calendar,
    Draws,
    _log_ratio,
    btc_per_th_day,
    capex_usd,
    failed_share,
    fleet_power,
    mining_fee_kzt_per_kwh,
    per_block_sums,
    replacement_value_usd,
    start_difficulty,
    start_height,
)
from kzsim.model.processes import cumsum_days, sum_days
from kzsim.scenario.schema import Scenario
from kzsim.units import (
    BLOCKS_PER_DAY_TARGET,
    DAYS_PER_YEAR,
    EH_TO_TH,
    HOURS_PER_DAY,
    KWH_PER_MWH,
    MONTHS_PER_YEAR,
    TARGET_BLOCK_SECONDS,
    TH_TO_H,
    TWO_POW_32,
)


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

    """
    start = np.asarray(start, dtype=np.float64)
    dt = 1.0 / DAYS_PER_YEAR
    n_steps, n_paths = shocks.shape
    drift = (drift_per_year - 0.5 * volatility_per_year**2) * dt
    scale = volatility_per_year * np.sqrt(dt)
    log = np.empty((n_steps + 1, n_paths))
    log[0] = np.log(start)
    inc = drift + scale * shocks
    cumsum_days(inc, out=log[1:])
    log[1:] += log[0]
    return np.exp(log, out=log)


def exponential_smoothing(x: np.ndarray, lag_days, overwrite_input: bool = False) -> np.ndarray:
    """Exponential moving average along days with time constant ``lag_days`` (per path).

    e_0 = x_0; e_t = e_{t-1} + (x_t - e_{t-1}) / lag_days. ``overwrite_input=True`` may
    write the average over ``x`` (a day's value is read before its average is written).
    """
    alpha = 1.0 / np.maximum(np.asarray(lag_days, dtype=np.float64), 1.0)
    out = x if overwrite_input else np.empty_like(x)
    out[0] = x[0]
    for t in range(1, x.shape[0]):
        out[t] = out[t - 1] + alpha * (x[t] - out[t - 1])
    return out


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
    """
    trend = gbm(start_hs, growth_per_year, volatility_per_year, shocks)
    if drawdown is not None:  # the share that drawdown events leave on
        trend = trend * drawdown
    elasticity = np.asarray(price_elasticity, dtype=np.float64)
    if log_price_ratio is None or not np.any(elasticity):
        return trend
    # the function's own array (a new one, or the ratio when it may be overwritten): worked in place
    response = exponential_smoothing(log_price_ratio, lag_days, overwrite_input=overwrite_log_price_ratio)
    np.multiply(elasticity, response, out=response)
    np.exp(response, out=response)
    response *= trend
    return response


def fees_per_block_numpy(median, log_volatility, persistence_days, shocks, *, spikes=None, spike_half_life_days=3.0):
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

    """
    sigma = np.asarray(log_volatility, dtype=np.float64)
    tau = np.asarray(persistence_days, dtype=np.float64)
    if np.any(tau > 0):
        with np.errstate(over="ignore"):  # a time constant of ~1e-308 days or less: 1/tau is inf, phi 0
            phi = np.exp(-1.0 / np.where(tau > 0, tau, 1.0)) * (tau > 0)
        innovation = sigma * np.sqrt(1.0 - phi * phi)
        x = np.empty_like(shocks)
        x[0] = sigma * shocks[0]
        for t in range(1, shocks.shape[0]):
            x[t] = phi * x[t - 1] + innovation * shocks[t]
    else:
        x = sigma * shocks
    fees = np.exp(x, out=x)  # in place: x is this function's own array
    fees *= median
    if spikes is not None:
        h = np.asarray(spike_half_life_days, dtype=np.float64)
        with np.errstate(over="ignore"):  # as phi above: a half-life of ~0 days decays at once
            decay = np.where(h > 0, np.exp2(-1.0 / np.where(h > 0, h, 1.0)), 0.0)
        extra = np.empty_like(spikes)
        extra[0] = spikes[0]
        for t in range(1, spikes.shape[0]):
            extra[t] = decay * extra[t - 1] + spikes[t]
        extra += 1.0
        fees *= extra
    return fees


def btc_price_paths(
    scenario: Scenario, cal: Calendar, p: dict[str, np.ndarray], draws: Draws
) -> tuple[np.ndarray, np.ndarray]:
    """BTC price [USD] (n_days, n) under the scenario's price model, and the standardised
    daily shocks (n_days - 1, n) that the tenge is correlated with."""
    m = scenario.market
    start, mu = p["market.btc_price_usd"], p["market.btc_drift_per_year"]
    z = draws.btc_price
    if m.price_model == "gbm":
        return gbm(start, mu, p["market.btc_volatility_per_year"], z), z
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
    block_sums: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The numpy reference of :func:`kzsim.model.paths.simulate_paths` (same outputs, same bits)."""
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
    usd_kzt = gbm(
        p["market.usd_kzt"],
        p["market.kzt_devaluation_per_year"],
        p["market.kzt_volatility_per_year"],
        z_fx,
    )
    del btc_shock, z_fx
    hashrate0_hs = p["market.network_hashrate_eh"] * EH_TO_TH * TH_TO_H
    follows_hashprice = m.hashrate_responds_to == "hashprice"
    responds = bool(np.any(p["market.hashrate_price_elasticity"]))
    network_hs = network_hashrate(
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
    replay = m.replay
    history_fees = replay and replay.window("fees_btc_per_day_csv", sc.simulation.start_date, n_days)
    if history_fees is not None:
        fees_per_block = np.repeat(history_fees[:, None] / BLOCKS_PER_DAY_TARGET, n_paths, axis=1)
    else:
        fees_per_block = fees_per_block_numpy(
            p["market.fees_btc_per_block"],
            p["market.fees_log_volatility"],
            p["market.fees_persistence_days"],
            draws.fees,
            spikes=draws.fee_spikes,
            spike_half_life_days=p["market.fees_spike_half_life_days"],
        )
    history_difficulty = replay and replay.window("difficulty_csv", sc.simulation.start_date, n_days)
    if history_difficulty is not None:  # the chain as it was: blocks at the 144 a day that difficulty aims for
        difficulty = np.repeat(history_difficulty[:, None], n_paths, axis=1)
        network_hs = difficulty * TWO_POW_32 / TARGET_BLOCK_SECONDS
        blocks = np.full((n_days, n_paths), BLOCKS_PER_DAY_TARGET)
        subsidy = processes.subsidy_per_block(start_height(sc), blocks)
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
        difficulty, blocks, subsidy = processes.chain(
            network_hs, start_difficulty(p), start_height(sc), response=response
        )
        if response is not None:
            network_hs = response.realised
    final_network_hs, final_difficulty = network_hs[-1].copy(), difficulty[-1]
    farm = (farm_hashrate_th, facility_mw)
    inputs = (sc, cal, p, draws, farm, price, usd_kzt, btc_per_th_day(difficulty, subsidy, fees_per_block))
    per_path, daily = _economics_numpy(*inputs)
    daily["btc_price_usd"] = price
    daily["difficulty"] = difficulty
    daily["network_hashrate_eh"] = network_hs / (EH_TO_TH * TH_TO_H)
    daily["fees_btc_per_day"] = fees_per_block * blocks
    if block_sums:
        daily = {k: per_block_sums(v) for k, v in daily.items()}
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


def _economics_numpy(sc, cal, p, draws, farm, price, usd_kzt, btc_per_th):
    """The farm's economics with whole-array numpy operations (the reference), from the BTC a
    day per TH/s (``btc_per_th``, :func:`btc_per_th_day`)."""
    e, r, f = sc.electricity, sc.regulation, sc.farm
    n_days = cal.n_days
    farm_hashrate_th, facility_mw = farm  # from simulate_paths' fleet_power
    n_paths = facility_mw.size
    hashprice = btc_per_th * price
    years_in = (np.arange(n_days) / DAYS_PER_YEAR)[:, None]
    ageing = (1.0 + p["farm.efficiency_degradation_per_year"]) ** -years_in  # hashrate left at the same power
    btc_full_day = farm_hashrate_th * ageing * btc_per_th * (1.0 - p["farm.pool_fee_share"])

    # ---- hours: an hour is down once, causes in the order grid, payment, hardware, quota
    grid_h = np.minimum(draws.grid_hours, HOURS_PER_DAY)
    if e.procurement_mode == "lots":
        # a lot is one hour of lot_size_mwh of power; a farm smaller than that idles whole
        lot_power_mw = np.minimum(p["electricity.lot_size_mwh"], facility_mw)
        pay_frac = np.minimum(1.0, lot_power_mw * draws.payment_lot_hours / (facility_mw * HOURS_PER_DAY))
    else:
        pay_frac = draws.prepayment_missed.astype(np.float64)
    payment_h = (HOURS_PER_DAY - grid_h) * pay_frac
    powered_h = HOURS_PER_DAY - grid_h - payment_h
    failed = failed_share(p["farm.hardware_failure_rate_per_year"], p["farm.replacement_lead_time_days"], n_days)
    hardware_h = powered_h * (1.0 - p["farm.hardware_availability_fraction"] * (1.0 - failed))
    wanted_h = powered_h - hardware_h  # full-power-equivalent hours the farm would run
    season = np.where(cal.is_winter[:, None], p["electricity.winter_quota_multiplier"], 1.0)
    quota_mwh = facility_mw * HOURS_PER_DAY * p["electricity.quota_fraction"] * season
    plan = e.plan_70_30
    if plan is not None:
        extra_mwh = (
            p["electricity.plan_70_30.plant_capacity_mw"]
            * p["electricity.plan_70_30.capacity_factor"]
            * p["electricity.plan_70_30.miner_share"]
            * p["electricity.plan_70_30.farm_allocation_share"]
            * HOURS_PER_DAY
        )
        online = (np.arange(n_days)[:, None] >= p["electricity.plan_70_30.online_delay_days"]) & draws.plan_built
        quota_mwh = quota_mwh + np.where(online, extra_mwh, 0.0)
    quota_h = np.maximum(0.0, wanted_h - quota_mwh / facility_mw)
    up_h = wanted_h - quota_h

    # ---- prices of power, and the day's marginal economics ------------------------------
    n_years = int(cal.year_index[-1]) + 1
    indexation = (1.0 + p["electricity.tariff_indexation_per_year"]) ** np.arange(n_years)[:, None]
    winter = np.stack([np.ones_like(facility_mw), 1.0 + p["electricity.winter_tariff_premium_share"]])
    tariff = p["electricity.tariff_kzt_per_kwh"] * indexation[cal.year_index] * winter[cal.is_winter.astype(np.intp)]
    if e.procurement_mode == "day_ahead":
        s = p["electricity.day_ahead_price_volatility"]
        tariff = np.maximum(
            p["electricity.day_ahead_floor_kzt_per_kwh"], tariff * np.exp(s * draws.day_ahead_price - 0.5 * s * s)
        )
    fee_rate = mining_fee_kzt_per_kwh(sc, tariff)
    kzt_to_usd = 1.0 / usd_kzt
    aifc_share = p["regulation.aifc_sale_share"]
    aifc_factor = 1.0 - p["regulation.aifc_spread_share"] - p["regulation.aifc_fee_share"]
    market_factor = 1.0 - p["market.exchange_fee_share"]
    # a full-power hour: what its coins sell for today, and what its power costs (with compliance on opex)
    sale_factor = aifc_share * aifc_factor + (1.0 - aifc_share) * market_factor
    revenue_per_hour = btc_full_day / HOURS_PER_DAY * price * sale_factor
    per_kwh = (tariff + fee_rate) * kzt_to_usd
    if e.procurement_mode == "lots":
        per_kwh = per_kwh + (p["electricity.lot_fee_kzt"] + p["electricity.lot_admin_cost_kzt"]) * kzt_to_usd / (
            p["electricity.lot_size_mwh"] * KWH_PER_MWH
        )
    cost_per_hour = facility_mw * KWH_PER_MWH * per_kwh * (1.0 + p["regulation.compliance_opex_share"])
    margin_day = (revenue_per_hour - cost_per_hour) * up_h
    if e.procurement_mode == "day_ahead":
        margin_day = margin_day - (up_h > 0) * p["electricity.day_ahead_fee_kzt_per_day"] * kzt_to_usd
    losing_day = margin_day < 0.0
    if f.economic_shutoff:
        idle = losing_day
        restarts = np.zeros_like(up_h)
        restarts[1:] = idle[:-1] & ~idle[1:]
        restart_cost = restarts * p["farm.shutoff_restart_cost_usd"]
        economic_h = np.where(idle, up_h, 0.0)
        restart_cash = restart_cost * (1.0 + p["regulation.compliance_opex_share"])  # restarts are opex
        shutoff_saving = sum_days(np.where(idle, -margin_day, 0.0) - restart_cash)
    else:
        restart_cost = np.zeros_like(up_h)
        economic_h = np.zeros_like(up_h)
        shutoff_saving = np.zeros(n_paths)
    up_h = up_h - economic_h
    up_fraction = up_h / HOURS_PER_DAY

    energy_mwh = facility_mw * up_h
    btc = btc_full_day * up_fraction

    # ---- electricity costs ---------------------------------------------------------
    energy_cost = energy_mwh * KWH_PER_MWH * tariff * kzt_to_usd
    mining_fee = energy_mwh * KWH_PER_MWH * fee_rate * kzt_to_usd
    if e.procurement_mode == "lots":
        lots = np.ceil(energy_mwh / p["electricity.lot_size_mwh"] - 1e-9)
        procurement = lots * (p["electricity.lot_fee_kzt"] + p["electricity.lot_admin_cost_kzt"]) * kzt_to_usd
    else:
        procurement = (energy_mwh > 0) * p["electricity.day_ahead_fee_kzt_per_day"] * kzt_to_usd
    fixed_opex = np.broadcast_to(
        p["farm.fixed_opex_usd_per_month"] * MONTHS_PER_YEAR / DAYS_PER_YEAR, (n_days, len(facility_mw))
    )
    replacement = (
        replacement_value_usd(sc, p)
        * p["farm.replacement_cost_share"]
        * p["farm.hardware_failure_rate_per_year"]
        / DAYS_PER_YEAR
        * (1.0 - failed)
    )
    opex = energy_cost + mining_fee + procurement + fixed_opex + replacement + restart_cost
    compliance = (
        p["regulation.compliance_fixed_usd_per_year"] / DAYS_PER_YEAR + p["regulation.compliance_opex_share"] * opex
    )
    cash_cost = opex + compliance

    # ---- sale of coins: AIFC share sold after the lag, the rest by treasury policy ----
    lag = r.aifc_settlement_lag_days
    aifc_btc = aifc_share * btc
    rest_btc = btc - aifc_btc
    final_price = price[-1]
    aifc_rev = np.zeros_like(btc)
    if lag < n_days:
        aifc_rev[lag:] = aifc_btc[: n_days - lag] * price[lag:] * aifc_factor
    pending_aifc_btc = sum_days(aifc_btc[max(n_days - lag, 0) :])  # unsold at the end
    if r.treasury_policy == "sell":
        market_rev = rest_btc * price * market_factor
        held_btc_end = np.zeros_like(final_price)
    else:
        market_rev = np.zeros_like(btc)
        held_btc_end = sum_days(rest_btc)
    liquidation = pending_aifc_btc * final_price * aifc_factor + held_btc_end * final_price * market_factor
    revenue = aifc_rev + market_rev
    revenue[-1] += liquidation

    # ---- capital, tax ------------------------------------------------------------------
    capex = capex_usd(sc, p)
    dep_days = f.depreciation_years * DAYS_PER_YEAR
    dep_share = np.clip(dep_days - np.arange(n_days), 0.0, 1.0)[:, None]  # 1 a day, the last day's fraction
    depreciation = dep_share * (capex / dep_days)
    taxable_day = revenue - cash_cost - depreciation
    bounds = np.append(cal.fiscal_year_starts, n_days)
    taxable_year = np.stack([sum_days(taxable_day[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    tax_year = p["regulation.profit_tax_rate"] * np.maximum(taxable_year, 0.0)
    tax = np.zeros_like(revenue)
    year_ends = np.append(cal.fiscal_year_starts[1:] - 1, n_days - 1)
    tax[year_ends] = tax_year

    # ---- per-day P&L, marked to market -----------------------------------------------
    cash_flow = revenue - cash_cost - tax
    cum_cash = processes.cumsum_days(cash_flow)
    cum_realised = cum_cash - np.cumsum(dep_share, axis=0) * (capex / dep_days)
    # coins mined in the last `lag` days wait for their AIFC sale
    if lag <= 8:
        pending = np.zeros_like(aifc_btc)
        for j in range(min(lag, n_days)):
            pending[j:] += aifc_btc[: n_days - j]
    else:
        pending = processes.cumsum_days(aifc_btc)
        pending[lag:] -= pending[:-lag].copy()
    inventory = pending * price * aifc_factor
    if r.treasury_policy == "hold":
        inventory += processes.cumsum_days(rest_btc) * price * market_factor
    inventory[-1] = 0.0  # liquidated on the last day (in revenue)
    cum_pnl = cum_realised + inventory

    years = (np.arange(1, n_days + 1) / DAYS_PER_YEAR)[:, None]
    discount = np.exp(-np.log1p(p["farm.discount_rate_per_year"]) * years)
    npv = -capex + sum_days(cash_flow * discount)
    paid_back = cum_cash >= capex
    payback_days = np.where(paid_back.any(axis=0), paid_back.argmax(axis=0) + 1.0, np.nan)
    peak = np.maximum(processes.running_max_days(cum_pnl), 0.0)
    max_drawdown = (peak - cum_pnl).max(axis=0)

    # ---- per path -------------------------------------------------------------------
    btc_total = sum_days(btc)
    cash_total = sum_days(cash_cost)
    dep_total = sum_days(depreciation)
    tax_total = sum_days(tax)
    revenue_total = sum_days(revenue)
    pbt = sum_days(taxable_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        cash_per_btc = np.where(btc_total > 0, cash_total / btc_total, np.nan)
        all_in_per_btc = np.where(btc_total > 0, (cash_total + dep_total + tax_total) / btc_total, np.nan)
    per_path = {
        "btc_mined": btc_total,
        "btc_sold_aifc": sum_days(aifc_btc),
        "btc_sold_market": sum_days(rest_btc),
        "revenue_usd": revenue_total,
        "revenue_aifc_usd": sum_days(aifc_rev) + pending_aifc_btc * final_price * aifc_factor,
        "revenue_market_usd": sum_days(market_rev) + held_btc_end * final_price * market_factor,
        "energy_mwh": sum_days(energy_mwh),
        "energy_cost_usd": sum_days(energy_cost),
        "mining_fee_usd": sum_days(mining_fee),
        "procurement_fee_usd": sum_days(procurement),
        "fixed_opex_usd": sum_days(fixed_opex),
        "compliance_usd": sum_days(compliance),
        "cash_cost_usd": cash_total,
        "depreciation_usd": dep_total,
        "profit_before_tax_usd": pbt,
        "profit_tax_usd": tax_total,
        "profit_usd": pbt - tax_total,
        "cash_cost_per_btc_usd": cash_per_btc,
        "all_in_cost_per_btc_usd": all_in_per_btc,
        "up_fraction": sum_days(up_fraction) / n_days,
        "downtime_grid_hours": sum_days(grid_h),
        "downtime_payment_hours": sum_days(payment_h),
        "downtime_hardware_hours": sum_days(hardware_h),
        "downtime_quota_hours": sum_days(quota_h),
        "downtime_economic_hours": sum_days(economic_h),
        "economic_shutoff_days": sum_days((economic_h > 0).astype(np.float64)),
        "economic_shutoff_margin_avoided_usd": shutoff_saving,
        "losing_days": sum_days(losing_day.astype(np.float64)),
        "breakeven_hashprice_usd_per_th_day": sum_days(
            cost_per_hour * HOURS_PER_DAY / (farm_hashrate_th * ageing * (1.0 - p["farm.pool_fee_share"]) * sale_factor)
        )
        / n_days,
        "hardware_replacement_usd": sum_days(replacement),
        "shutoff_restart_usd": sum_days(restart_cost),
        "max_drawdown_usd": max_drawdown,
        "capex_usd": capex,
        "npv_usd": npv,
        "payback_days": payback_days,
        "mean_hashprice_usd_per_th_day": sum_days(hashprice) / n_days,
    }
    daily = {
        "cum_pnl_usd": cum_pnl,
        "up_fraction": up_fraction,
        "hashprice_usd_per_th_day": hashprice,
    }
    return per_path, daily
