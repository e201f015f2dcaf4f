"""Compiled kernel (numba) of the farm's economics, day by day: the model's core.

The processes' day loops (difficulty chain, walks, AR(1), smoothing) are in
:mod:`kzsim.model.loops`.
These kernels are the model's only implementation: :mod:`kzsim.model.paths` and
:mod:`kzsim.model.processes` call them (see docs/architecture.md for why). A kernel fuses
what whole-array numpy would do in ~80 passes over (days x paths) arrays into one walk with
days in the outer loop and paths in the inner one (arrays are (n_days, n_paths), C order: a
path-outer walk strides across rows and ran 2x slower).

The economics kernel takes paths in tiles of 1,024. A tile's per-path values (parameters,
totals, running state, the day's inputs and intermediate values) are rows of one flat
workspace, so each of the day's loops over paths reads and writes one array at constant
offsets and LLVM makes SIMD code of it (8 paths an instruction with AVX-512).

The kernels leave exponentials and logarithms to numpy (a call inside a loop costs more
than the arithmetic around it). An independent numpy version of the whole model lives in
the tests (``tests/reference/numpy_model.py``), which compare it with these kernels bit for
bit on every shipped scenario, on variants and on 200 generated scenarios. Every path is
computed on its own, so the bits are the same for any chunk of paths. To step through a
kernel in a debugger, run with ``NUMBA_DISABLE_JIT=1`` (numba's own switch): the same code
then runs as plain Python.

Kernels are compiled on first use and cached on disk next to this file; on a cold cache a
child process compiles the economics kernel while the run compiles the loops
(:mod:`kzsim.model.compiling`).
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np

from kzsim.model.jitting import jit, select_max, select_min
from kzsim.units import (
    HOURS_PER_DAY,
    KWH_PER_MWH,
)


class Param(IntEnum):
    """Per-path scalar inputs of the economics kernel: rows of a (len(Param), n_paths) array."""

    farm_hashrate_th = 0
    facility_mw = 1
    pool_fee_share = 2
    lot_size_mwh = 3
    hardware_availability_fraction = 4
    winter_quota_multiplier = 5
    quota_fraction = 6
    plan_extra_mwh = 7
    plan_online_day = 8  # first day the plan's power flows (inf when not built or no plan)
    tariff_kzt_per_kwh = 9
    winter_tariff_factor = 10  # 1 + winter tariff premium
    day_ahead_floor_kzt_per_kwh = 11
    day_ahead_fee_kzt_per_day = 12
    lot_costs_kzt = 13  # lot fee + admin cost, per lot
    aifc_share = 14
    aifc_factor = 15
    market_factor = 16
    compliance_opex_share = 17
    compliance_fixed_usd_per_day = 18
    fixed_opex_usd_per_day = 19
    replacement_usd_per_day = 20  # replacement value x cost share x failure rate / 365
    shutoff_restart_cost_usd = 21
    capex_usd = 22
    depreciation_usd_per_day = 23  # capex / depreciation days
    profit_tax_rate = 24


class Out(IntEnum):
    """Per-path outputs of the economics kernel: rows of a (len(Out), n_paths) array."""

    btc_mined = 0
    btc_sold_aifc = 1
    btc_sold_market = 2
    revenue_usd = 3
    revenue_aifc_usd = 4
    revenue_market_usd = 5
    energy_mwh = 6
    energy_cost_usd = 7
    mining_fee_usd = 8
    procurement_fee_usd = 9
    fixed_opex_usd = 10
    compliance_usd = 11
    cash_cost_usd = 12
    depreciation_usd = 13
    profit_before_tax_usd = 14
    profit_tax_usd = 15
    up_fraction = 16
    downtime_grid_hours = 17
    downtime_payment_hours = 18
    downtime_hardware_hours = 19
    downtime_quota_hours = 20
    downtime_economic_hours = 21
    economic_shutoff_days = 22
    economic_shutoff_margin_avoided_usd = 23
    losing_days = 24
    breakeven_hashprice_usd_per_th_day = 25
    hardware_replacement_usd = 26
    shutoff_restart_usd = 27
    max_drawdown_usd = 28
    npv_usd = 29
    payback_days = 30
    mean_hashprice_usd_per_th_day = 31


# The economics kernel works on tiles of up to _TILE paths. Everything a tile's day touches
# (its parameters, totals, running state, the day's inputs, intermediate values and outputs)
# is a row of one flat workspace, _S apart: the day's loops over paths then read and write
# one object at constant offsets, which LLVM proves independent and turns into SIMD code
# (with separate arrays it needs a run-time overlap check per pair of arrays and gave up).
# _S is not a multiple of 512: rows 4 KiB apart fall in the same L1 cache set, and a loop
# touching 60 of them evicted its own lines at every path (8x slower).
_TILE = 1024
TILE_PATHS = _TILE  # = kzsim.model.rng.BLOCK_PATHS: the block sums (sums=True) are the tiles' sums
_S = _TILE + 8
_N_PARAM = len(Param)
_N_OUT = len(Out)
_P = _N_OUT  # first parameter row (rows 0 .. _N_OUT - 1 are the per-path totals)
(
    _CUM_CASH,
    _TAXABLE,
    _HELD,
    _PEAK,
    _DRAWDOWN,
    _NPV,
    _PAYBACK,
    _IDLE,
    _AGE,
    _FAIL,
    _DISC,
    _INDEX,
    _TARIFF,
    _FEE,
    _OLDER,
    _PENDING,
    _REVENUE,
    _CASH_COST,
    _TAX,
    _PRICE,
    _USD_KZT,
    _BTC_PER_TH,
    _GRID,
    _PAYMENT,
    _FACTOR,
    _SOLD,
    _AIFC,
    _UP,
    _HASHPRICE,
    _PNL,
    _TREE,  # scratch row of the per-day sums over a tile's paths
    _BTC,  # the day's BTC mined
    _CASH_PRE,  # the day's operating cash flow before tax (revenue - cash cost)
    _N_ROWS,
) = (np.int64(_N_OUT + _N_PARAM + i) for i in range(34))
# (numpy integers, not Python ints: numba types a Python int constant passed to a compiled
# function as a literal and compiles that function once for every row it is given; a numpy
# integer is an int64 constant, one compilation, and LLVM still sees its value when it
# inlines the function)
# The per-day sums over paths (sums=True) are taken over each tile, one tile a block of paths
_DAILY_SUMS = (_PNL, _UP, _HASHPRICE, _PRICE)  # rows of out_sums, in kzsim.model.paths.DAILY_SUMS' order


@jit
def _economics(
    params,  # (len(Param), n)
    price,  # (n_days, n) BTC price [USD]
    usd_kzt,  # (n_days, n)
    btc_per_th_day,  # (n_days, n) BTC a day per TH/s, before the pool fee (kzsim.model.paths.btc_per_th_day)
    grid_hours,  # (n_days, n) outage + restart hours
    payment,  # (n_days, n) lot-hours idled (lots) or True where the prepayment was missed (day-ahead, bool)
    day_ahead_factor,  # (n_days, n) day-ahead price / tariff before the floor (day-ahead; unread with lots)
    ageing,  # (n_days, 1 or n) hashrate left at the same power
    failed,  # (n_days, 1 or n) share of machines awaiting replacement
    discount,  # (n_days, 1 or n) discount factor of each day's cash flow
    indexation,  # (n_years, 1 or n) tariff indexation factor
    is_winter,  # (n_days,) bool
    year_index,  # (n_days,) int
    year_end,  # (n_days,) bool: last day of a fiscal year in the horizon
    dep_share,  # (n_days,) depreciation share of each day
    cum_dep_share,  # (n_days,) its cumulative sum
    bracket_lows,  # (n_brackets,) mining-fee brackets
    bracket_fees,
    lots_mode,  # bool: lots, else day-ahead
    shutoff,  # bool: economic shut-off
    sell,  # bool: treasury policy sell, else hold
    lag,  # AIFC settlement lag [days]
    out_pnl,  # (n_days, n) outputs: cumulative P&L marked to market ((n_days, 0) with sums)
    out_up,  # (n_days, n) up fraction (idem)
    out_hashprice,  # (n_days, n) hashprice [USD per TH/s-day] (idem)
    sums,  # bool: the per-day series summed over each tile's paths instead of path by path
    out_sums,  # (4, n_days, n_tiles) their sums ((4, n_days, 0) without sums)
    out_cash,  # (n_days, n) each day's operating cash flow before tax ((n_days, 0) when not asked for)
    out_btc,  # (n_days, n) each day's BTC mined (idem)
    out,  # (len(Out), n) per-path outputs
):
    n_days, n = price.shape
    S = _S
    W = np.empty(_N_ROWS * S)
    # AIFC coins of each day, sold after the lag, and their running sum (lag > 8): a day
    # reads only the rows of the last lag + 1 days, so they are kept in a ring of that many
    ring = min(lag + 1, n_days)
    aifc_days = np.empty((ring, _TILE))
    cum_aifc = np.empty((ring, _TILE)) if lag > 8 else np.empty((1, _TILE))
    for j0 in range(0, n, _TILE):
        m = min(_TILE, n - j0)
        W[:] = 0.0
        for k in range(_N_PARAM):
            _load(W, _P + k, params[k], j0, m)
        W[_PAYBACK * S : _PAYBACK * S + m] = np.nan
        for t in range(n_days):
            _day(
                W,
                j0,
                m,
                t,
                n_days,
                is_winter[t],
                dep_share[t],
                bracket_lows,
                bracket_fees,
                lots_mode,
                shutoff,
                sell,
                lag,
                price[t],
                usd_kzt[t],
                btc_per_th_day[t],
                grid_hours[t],
                payment[t],
                day_ahead_factor[t],
                ageing[t],
                failed[t],
                discount[t],
                indexation[year_index[t]],
                aifc_days,
                cum_aifc,
            )
            _close_day(
                W,
                j0,
                m,
                t,
                t == n_days - 1,
                year_end[t],
                cum_dep_share[t],
                sell,
                out_pnl[t],
                out_up[t],
                out_hashprice[t],
                out_cash[t],
                out_btc[t],
            )
            if sums:
                for k in range(len(_DAILY_SUMS)):
                    out_sums[k, t, j0 // _TILE] = _tree_sum(W, _DAILY_SUMS[k], m)
        for j in range(m):
            W[Out.max_drawdown_usd * S + j] = W[_DRAWDOWN * S + j]
            W[Out.npv_usd * S + j] = -W[(_P + Param.capex_usd) * S + j] + W[_NPV * S + j]
            W[Out.payback_days * S + j] = W[_PAYBACK * S + j]
        for k in range(_N_OUT):
            _store(W, k, out[k], j0, m)


# Copies between a workspace row and paths j0 .. j0 + m - 1 of a vector. Unsigned indices:
# numba does not wrap them around (a signed index is checked for < 0, which hides from LLVM
# that the index is affine, and then it does not vectorise).


@jit
def _load(W, row, x, j0, m):
    at = row * _S
    for j in range(m):
        W[np.uint64(at + j)] = x[np.uint64(j0 + j)]


@jit
def _store(W, row, x, j0, m):
    at = row * _S
    for j in range(m):
        x[np.uint64(j0 + j)] = W[np.uint64(at + j)]


@jit
def _broadcast(W, row, x, j0, m):
    """Paths j0 .. of ``x`` (one value for every path, or one a path) into workspace row ``row``."""
    if x.size == 1:
        W[row * _S : row * _S + m] = x[0]
    else:
        _load(W, row, x, j0, m)


@jit
def _day(
    W,
    j0,
    m,
    t,
    n_days,
    winter,
    dep_today,
    bracket_lows,
    bracket_fees,
    lots_mode,
    shutoff,
    sell,
    lag,
    price,  # the day's rows (all paths) of the inputs
    usd_kzt,
    btc_per_th_day,
    grid_hours,
    payment,
    day_ahead_factor,
    ageing,  # (1 or n)
    failed,
    discount,
    indexation,
    aifc_days,  # (ring, _TILE) the tile's AIFC coins of each day, day i in row i % ring
    cum_aifc,  # their running sum, in the same rows (lag > 8)
):
    """Day ``t`` of a tile up to the coins still waiting for the AIFC: loops over the tile's
    paths without branches on a path's values or inner loops, each on the workspace and at
    most one other array (SIMD code). A function of its own: inlined into the loop over
    days, LLVM left the copy loops scalar."""
    S = _S
    ring = aifc_days.shape[0]
    last = t == n_days - 1
    # ---- the day's inputs into the workspace
    _load(W, _PRICE, price, j0, m)
    _load(W, _USD_KZT, usd_kzt, j0, m)
    _load(W, _BTC_PER_TH, btc_per_th_day, j0, m)
    _load(W, _GRID, grid_hours, j0, m)
    _load(W, _PAYMENT, payment, j0, m)
    if not lots_mode:
        _load(W, _FACTOR, day_ahead_factor, j0, m)
    _broadcast(W, _AGE, ageing, j0, m)
    _broadcast(W, _FAIL, failed, j0, m)
    _broadcast(W, _DISC, discount, j0, m)
    _broadcast(W, _INDEX, indexation, j0, m)
    if t >= lag > 0:  # the AIFC coins mined `lag` days ago, sold today
        _load(W, _SOLD, aifc_days[(t - lag) % ring], 0, m)
    if last:  # the AIFC coins of earlier days still waiting (today's are added last)
        W[_OLDER * S : _OLDER * S + m] = 0.0
        for i in range(select_max(n_days - lag, 0), n_days - 1):  # in day order, as numpy sums them
            row_i = aifc_days[i % ring]
            for j in range(m):
                W[_OLDER * S + j] += row_i[j]
    # ---- the tariff and its mining-fee bracket
    for j in range(m):
        tariff = (
            W[(_P + Param.tariff_kzt_per_kwh) * S + j]
            * W[_INDEX * S + j]
            * (W[(_P + Param.winter_tariff_factor) * S + j] if winter else 1.0)
        )
        if not lots_mode:
            tariff = select_max(W[(_P + Param.day_ahead_floor_kzt_per_kwh) * S + j], tariff * W[_FACTOR * S + j])
        W[_TARIFF * S + j] = tariff
        W[_FEE * S + j] = bracket_fees[0]
    for b in range(1, bracket_lows.size):  # the last bracket whose low the tariff reaches (lows increase)
        low, fee = bracket_lows[b], bracket_fees[b]
        for j in range(m):
            W[_FEE * S + j] = fee if low <= W[_TARIFF * S + j] else W[_FEE * S + j]
    # ---- the day: mining, hours, margin, costs, sales, taxable profit
    has_lagged = t >= lag
    for j in range(m):
        fac = W[(_P + Param.facility_mw) * S + j]
        age = W[_AGE * S + j]
        fail = W[_FAIL * S + j]
        btc_per_th_day = W[_BTC_PER_TH * S + j]
        p_t = W[_PRICE * S + j]
        hashprice = btc_per_th_day * p_t
        btc_full_day = (
            W[(_P + Param.farm_hashrate_th) * S + j]
            * age
            * btc_per_th_day
            * (1.0 - W[(_P + Param.pool_fee_share) * S + j])
        )
        grid_h = select_min(W[_GRID * S + j], HOURS_PER_DAY)
        if lots_mode:
            lot_power_mw = select_min(W[(_P + Param.lot_size_mwh) * S + j], fac)
            pay_frac = select_min(1.0, lot_power_mw * W[_PAYMENT * S + j] / (fac * HOURS_PER_DAY))
        else:
            pay_frac = W[_PAYMENT * S + j]
        payment_h = (HOURS_PER_DAY - grid_h) * pay_frac
        powered_h = HOURS_PER_DAY - grid_h - payment_h
        hardware_h = powered_h * (1.0 - W[(_P + Param.hardware_availability_fraction) * S + j] * (1.0 - fail))
        wanted_h = powered_h - hardware_h
        season = W[(_P + Param.winter_quota_multiplier) * S + j] if winter else 1.0
        quota_mwh = fac * HOURS_PER_DAY * W[(_P + Param.quota_fraction) * S + j] * season
        plan_mwh = W[(_P + Param.plan_extra_mwh) * S + j]
        quota_mwh = quota_mwh + plan_mwh if t >= W[(_P + Param.plan_online_day) * S + j] else quota_mwh
        quota_h = select_max(0.0, wanted_h - quota_mwh / fac)
        up_h = wanted_h - quota_h
        # ---- price of power, the day's margin
        tariff = W[_TARIFF * S + j]
        fee_rate = W[_FEE * S + j]
        kzt_to_usd = 1.0 / W[_USD_KZT * S + j]
        aifc_share, aifc_factor = W[(_P + Param.aifc_share) * S + j], W[(_P + Param.aifc_factor) * S + j]
        market_factor = W[(_P + Param.market_factor) * S + j]
        compliance_share = W[(_P + Param.compliance_opex_share) * S + j]
        sale_factor = aifc_share * aifc_factor + (1.0 - aifc_share) * market_factor
        revenue_per_hour = btc_full_day / HOURS_PER_DAY * p_t * sale_factor
        per_kwh = (tariff + fee_rate) * kzt_to_usd
        if lots_mode:
            per_kwh = per_kwh + W[(_P + Param.lot_costs_kzt) * S + j] * kzt_to_usd / (
                W[(_P + Param.lot_size_mwh) * S + j] * KWH_PER_MWH
            )
        cost_per_hour = fac * KWH_PER_MWH * per_kwh * (1.0 + compliance_share)
        margin_day = (revenue_per_hour - cost_per_hour) * up_h
        if not lots_mode:
            day_fee = W[(_P + Param.day_ahead_fee_kzt_per_day) * S + j]
            margin_day = margin_day - day_fee * kzt_to_usd if up_h > 0 else margin_day
        losing = margin_day < 0.0
        restart_cost = 0.0
        economic_h = 0.0
        if shutoff:
            restart = W[(_P + Param.shutoff_restart_cost_usd) * S + j]
            restart_cost = restart if W[_IDLE * S + j] > 0.0 and not losing else 0.0
            W[_IDLE * S + j] = 1.0 if losing else 0.0
            economic_h = up_h if losing else 0.0
            W[Out.economic_shutoff_margin_avoided_usd * S + j] += (-margin_day if losing else 0.0) - restart_cost * (
                1.0 + compliance_share
            )
        up_h = up_h - economic_h
        up_fraction = up_h / HOURS_PER_DAY
        energy_mwh = fac * up_h
        btc = btc_full_day * up_fraction
        # ---- costs
        energy_cost = energy_mwh * KWH_PER_MWH * tariff * kzt_to_usd
        mining_fee = energy_mwh * KWH_PER_MWH * fee_rate * kzt_to_usd
        if lots_mode:
            lots = math.ceil(energy_mwh / W[(_P + Param.lot_size_mwh) * S + j] - 1e-9)
            procurement = lots * W[(_P + Param.lot_costs_kzt) * S + j] * kzt_to_usd
        else:
            day_fee = W[(_P + Param.day_ahead_fee_kzt_per_day) * S + j]
            procurement = (day_fee if energy_mwh > 0 else 0.0) * kzt_to_usd
        fixed_opex = W[(_P + Param.fixed_opex_usd_per_day) * S + j]
        replacement = W[(_P + Param.replacement_usd_per_day) * S + j] * (1.0 - fail)
        opex = energy_cost + mining_fee + procurement + fixed_opex + replacement + restart_cost
        compliance = W[(_P + Param.compliance_fixed_usd_per_day) * S + j] + compliance_share * opex
        cash_cost = opex + compliance
        # ---- sales
        aifc_btc = aifc_share * btc
        rest_btc = btc - aifc_btc
        W[_AIFC * S + j] = aifc_btc
        sold_btc = aifc_btc if lag == 0 else W[_SOLD * S + j]  # the coins mined `lag` days ago
        aifc_rev = sold_btc * p_t * aifc_factor if has_lagged else 0.0
        if sell:
            market_rev = rest_btc * p_t * market_factor
        else:
            market_rev = 0.0
            W[_HELD * S + j] += rest_btc
        revenue = aifc_rev + market_rev
        W[Out.revenue_aifc_usd * S + j] += aifc_rev
        W[Out.revenue_market_usd * S + j] += market_rev
        if last:  # the coins still waiting and the ones held are sold on the last day
            waiting = W[_OLDER * S + j] + aifc_btc if lag > 0 else 0.0
            liquidation_aifc = waiting * p_t * aifc_factor
            liquidation_market = W[_HELD * S + j] * p_t * market_factor
            revenue += liquidation_aifc + liquidation_market
            W[Out.revenue_aifc_usd * S + j] += liquidation_aifc
            W[Out.revenue_market_usd * S + j] += liquidation_market
        depreciation = dep_today * W[(_P + Param.depreciation_usd_per_day) * S + j]
        W[_TAXABLE * S + j] += revenue - cash_cost - depreciation
        W[_REVENUE * S + j] = revenue
        W[_CASH_COST * S + j] = cash_cost
        W[_UP * S + j] = up_fraction
        W[_HASHPRICE * S + j] = hashprice
        W[_BTC * S + j] = btc
        # ---- per-path totals
        W[Out.btc_mined * S + j] += btc
        W[Out.btc_sold_aifc * S + j] += aifc_btc
        W[Out.btc_sold_market * S + j] += rest_btc
        W[Out.revenue_usd * S + j] += revenue
        W[Out.energy_mwh * S + j] += energy_mwh
        W[Out.energy_cost_usd * S + j] += energy_cost
        W[Out.mining_fee_usd * S + j] += mining_fee
        W[Out.procurement_fee_usd * S + j] += procurement
        W[Out.fixed_opex_usd * S + j] += fixed_opex
        W[Out.compliance_usd * S + j] += compliance
        W[Out.cash_cost_usd * S + j] += cash_cost
        W[Out.depreciation_usd * S + j] += depreciation
        W[Out.up_fraction * S + j] += up_fraction
        W[Out.downtime_grid_hours * S + j] += grid_h
        W[Out.downtime_payment_hours * S + j] += payment_h
        W[Out.downtime_hardware_hours * S + j] += hardware_h
        W[Out.downtime_quota_hours * S + j] += quota_h
        W[Out.downtime_economic_hours * S + j] += economic_h
        W[Out.economic_shutoff_days * S + j] += 1.0 if economic_h > 0 else 0.0
        W[Out.losing_days * S + j] += 1.0 if losing else 0.0
        W[Out.breakeven_hashprice_usd_per_th_day * S + j] += (
            cost_per_hour
            * HOURS_PER_DAY
            / (
                W[(_P + Param.farm_hashrate_th) * S + j]
                * age
                * (1.0 - W[(_P + Param.pool_fee_share) * S + j])
                * sale_factor
            )
        )
        W[Out.hardware_replacement_usd * S + j] += replacement
        W[Out.shutoff_restart_usd * S + j] += restart_cost
        W[Out.mean_hashprice_usd_per_th_day * S + j] += hashprice

    _store(W, _AIFC, aifc_days[t % ring], 0, m)
    # ---- AIFC coins still waiting (mined in the last `lag` days)
    if lag > 8:
        cum_t = cum_aifc[t % ring]
        if t == 0:
            _store(W, _AIFC, cum_t, 0, m)
        else:
            cum_before = cum_aifc[(t - 1) % ring]
            for j in range(m):
                cum_t[j] = cum_before[j] + W[_AIFC * S + j]
        if t >= lag:
            cum_lagged = cum_aifc[(t - lag) % ring]
            for j in range(m):
                W[_PENDING * S + j] = cum_t[j] - cum_lagged[j]
        else:
            _load(W, _PENDING, cum_t, 0, m)
    else:
        W[_PENDING * S : _PENDING * S + m] = 0.0
        for i in range(select_min(lag, t + 1)):
            row_i = aifc_days[(t - i) % ring]
            for j in range(m):
                W[_PENDING * S + j] += row_i[j]


@jit
def _close_day(W, j0, m, t, last, ye, cum_dep, sell, out_pnl, out_up, out_hashprice, out_cash, out_btc):
    """Day ``t`` of a tile from its tax: cash, the P&L marked to market, drawdown, NPV."""
    S = _S
    # ---- the tax of a fiscal year, on its last day
    if ye:
        for j in range(m):
            taxable = W[_TAXABLE * S + j]
            tax = W[(_P + Param.profit_tax_rate) * S + j] * select_max(taxable, 0.0)
            W[_TAX * S + j] = tax
            W[Out.profit_before_tax_usd * S + j] += taxable
            W[Out.profit_tax_usd * S + j] += tax
            W[_TAXABLE * S + j] = 0.0
    else:
        W[_TAX * S : _TAX * S + m] = 0.0
    # ---- cash, the P&L marked to market, drawdown, NPV
    for j in range(m):
        p_t = W[_PRICE * S + j]
        cash_flow = W[_REVENUE * S + j] - W[_CASH_COST * S + j] - W[_TAX * S + j]
        cum_cash = W[_CUM_CASH * S + j] + cash_flow
        W[_CUM_CASH * S + j] = cum_cash
        payback = W[_PAYBACK * S + j]
        W[_PAYBACK * S + j] = (
            t + 1.0 if np.isnan(payback) and cum_cash >= W[(_P + Param.capex_usd) * S + j] else payback
        )
        inventory = 0.0 if last else W[_PENDING * S + j] * p_t * W[(_P + Param.aifc_factor) * S + j]
        if not sell and not last:  # coins held, marked to market ("held" counts today's)
            inventory += W[_HELD * S + j] * p_t * W[(_P + Param.market_factor) * S + j]
        cum_pnl = cum_cash - cum_dep * W[(_P + Param.depreciation_usd_per_day) * S + j] + inventory
        peak = cum_pnl if t == 0 else select_max(W[_PEAK * S + j], cum_pnl)
        W[_PEAK * S + j] = peak
        W[_DRAWDOWN * S + j] = select_max(W[_DRAWDOWN * S + j], select_max(peak, 0.0) - cum_pnl)
        W[_NPV * S + j] += cash_flow * W[_DISC * S + j]
        W[_PNL * S + j] = cum_pnl
    if out_pnl.size:
        _store(W, _PNL, out_pnl, j0, m)
        _store(W, _UP, out_up, j0, m)
        _store(W, _HASHPRICE, out_hashprice, j0, m)
    if out_cash.size:  # for hedges and financing (kzsim.model.finance)
        for j in range(m):
            W[_CASH_PRE * S + j] = W[_REVENUE * S + j] - W[_CASH_COST * S + j]
        _store(W, _CASH_PRE, out_cash, j0, m)
        _store(W, _BTC, out_btc, j0, m)


@jit
def _tree_sum(W, row, m):
    """The sum of workspace row ``row``'s first ``m`` values, in :func:`kzsim.model.paths.block_sum`'s order."""
    tree = _TREE * _S
    _load(W, _TREE, W[row * _S : row * _S + m], 0, m)
    width = m
    while width > 1:
        half = width // 2
        offset = width - half
        for j in range(half):
            W[np.uint64(tree + j)] += W[np.uint64(tree + offset + j)]
        width = offset
    return W[tree]


def economics(*args) -> None:
    """Run the economics kernel (see :func:`kzsim.model.paths.simulate_paths` for the meaning)."""
    _economics(*args)


def economics_signatures() -> list[tuple]:
    """The argument types the economics kernel is compiled for in this process."""
    return list(_economics.signatures)


def cache_folder() -> str:
    """The folder of this module's compile cache (numba's, for the economics kernel)."""
    return _economics.stats.cache_path


def compile_closing() -> None:
    """Compile (or load from the cache) the functions that close the kernel's day,
    ``_close_day`` and ``_tree_sum``, for the argument types :func:`_economics` passes them
    (the same in either procurement mode): a call on one path of a zeroed workspace."""
    W = np.zeros(_N_ROWS * _S)
    row, none = np.zeros(1), np.zeros(0)
    _close_day(W, 0, 1, 0, True, True, 0.0, True, row, row, row, none, none)
    _tree_sum(W, _DAILY_SUMS[0], 1)
