"""Compiled kernels (numba) of the day loops: the farm's economics, the difficulty chain,
the GBM walks, the fees' AR(1) and the price smoothing.

They are the model's only implementation: :mod:`kzsim.model.paths` and
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

Kernels are compiled on first use and cached on disk next to this file.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numba
import numpy as np

from kzsim.units import (
    HALVING_INTERVAL_BLOCKS,
    HOURS_PER_DAY,
    KWH_PER_MWH,
    RETARGET_BLOCKS,
    RETARGET_MAX_FACTOR,
    SECONDS_PER_DAY,
    TARGET_BLOCK_SECONDS,
    TH_TO_H,
    TWO_POW_32,
)


def _jit(function):
    return numba.njit(cache=True, nogil=True, error_model="numpy")(function)


def _inline(function):
    return numba.njit(inline="always")(function)


@_inline
def _max(a, b):
    """Python's max(a, b) (a unless b is larger), as a select: numba's builtin is a call
    that stops LLVM from vectorising the loop around it."""
    return b if b > a else a


@_inline
def _min(a, b):
    """Python's min(a, b) (a unless b is smaller), as a select."""
    return b if b < a else a


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
    _N_ROWS,
) = (_N_OUT + _N_PARAM + i for i in range(32))
# The per-day sums over paths (sums=True) are taken over each tile, one tile a block of paths
_DAILY_SUMS = (_PNL, _UP, _HASHPRICE, _PRICE)  # rows of out_sums, in kzsim.model.paths.DAILY_SUMS' order


@_jit
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


@_jit
def _load(W, row, x, j0, m):
    at = row * _S
    for j in range(m):
        W[np.uint64(at + j)] = x[np.uint64(j0 + j)]


@_jit
def _store(W, row, x, j0, m):
    at = row * _S
    for j in range(m):
        x[np.uint64(j0 + j)] = W[np.uint64(at + j)]


@_jit
def _broadcast(W, row, x, j0, m):
    """Paths j0 .. of ``x`` (one value for every path, or one a path) into workspace row ``row``."""
    if x.size == 1:
        W[row * _S : row * _S + m] = x[0]
    else:
        _load(W, row, x, j0, m)


@_jit
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
        for i in range(_max(n_days - lag, 0), n_days - 1):  # in day order, as numpy sums them
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
            tariff = _max(W[(_P + Param.day_ahead_floor_kzt_per_kwh) * S + j], tariff * W[_FACTOR * S + j])
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
        grid_h = _min(W[_GRID * S + j], HOURS_PER_DAY)
        if lots_mode:
            lot_power_mw = _min(W[(_P + Param.lot_size_mwh) * S + j], fac)
            pay_frac = _min(1.0, lot_power_mw * W[_PAYMENT * S + j] / (fac * HOURS_PER_DAY))
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
        quota_h = _max(0.0, wanted_h - quota_mwh / fac)
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
        for i in range(_min(lag, t + 1)):
            row_i = aifc_days[(t - i) % ring]
            for j in range(m):
                W[_PENDING * S + j] += row_i[j]


@_jit
def _close_day(W, j0, m, t, last, ye, cum_dep, sell, out_pnl, out_up, out_hashprice):
    """Day ``t`` of a tile from its tax: cash, the P&L marked to market, drawdown, NPV."""
    S = _S
    # ---- the tax of a fiscal year, on its last day
    if ye:
        for j in range(m):
            taxable = W[_TAXABLE * S + j]
            tax = W[(_P + Param.profit_tax_rate) * S + j] * _max(taxable, 0.0)
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
        peak = cum_pnl if t == 0 else _max(W[_PEAK * S + j], cum_pnl)
        W[_PEAK * S + j] = peak
        W[_DRAWDOWN * S + j] = _max(W[_DRAWDOWN * S + j], _max(peak, 0.0) - cum_pnl)
        W[_NPV * S + j] += cash_flow * W[_DISC * S + j]
        W[_PNL * S + j] = cum_pnl
    if out_pnl.size:
        _store(W, _PNL, out_pnl, j0, m)
        _store(W, _UP, out_up, j0, m)
        _store(W, _HASHPRICE, out_hashprice, j0, m)


@_jit
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


# 50 x 2^-era for every era, as numpy computes it (0 past the smallest float): a table, as a
# call to ldexp or pow in the loop spills registers and made it ~2.5x slower
_SUBSIDY_BTC = 50.0 * np.exp2(-np.arange(1100.0))


@_jit
def _chain(hashrate_hs, fees, d0, height0, epoch_blocks0, out, last_d):
    """The day loop of :func:`kzsim.model.processes.chain` (without a response), giving each day's
    BTC a day per TH/s from its difficulty, subsidy and fees, and the last day's difficulty."""
    n_days, n = hashrate_hs.shape
    d = d0.copy()
    height = height0.copy()
    epoch_blocks = epoch_blocks0.copy()
    window_days = epoch_blocks / (SECONDS_PER_DAY / TARGET_BLOCK_SECONDS)
    window_hash_days = window_days * d * TWO_POW_32 / TARGET_BLOCK_SECONDS
    row = np.empty(n)  # a day's values, copied out after: ``out`` may be ``hashrate_hs``
    for t in range(n_days):  # days outer, paths inner: rows are contiguous
        if t == n_days - 1:
            last_d[:] = d
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
        out[t] = row


def chain_btc_per_th_day(
    hashrate_hs: np.ndarray, fees: np.ndarray, d0: np.ndarray, height0: np.ndarray, epoch_blocks0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """BTC a day per TH/s (n_days, n) from the chain's difficulty and subsidy and the fees per
    block, as :func:`kzsim.model.paths.btc_per_th_day` gives them, and the difficulty in force on
    the last day (n,): what the economics need of the chain, without its (n_days, n)
    difficulty, blocks and subsidy. ``hashrate_hs`` is overwritten when C-ordered (it is
    the result then)."""
    out = hashrate_hs if hashrate_hs.flags.c_contiguous else np.ascontiguousarray(hashrate_hs)
    last_d = np.empty(out.shape[1])
    _chain(out, np.ascontiguousarray(fees), d0, height0, epoch_blocks0, out, last_d)
    return out, last_d


@_jit
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


@_jit
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


@_jit
def _smooth(alpha, x, out):
    n_days, n = x.shape
    for j in range(n):
        out[0, j] = x[0, j]
    for t in range(1, n_days):
        for j in range(n):
            out[t, j] = out[t - 1, j] + alpha[j] * (x[t, j] - out[t - 1, j])


def smooth(alpha, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """e_0 = x_0, e_t = e_{t-1} + alpha * (x_t - e_{t-1}), as :func:`kzsim.model.processes.exponential_smoothing`
    (into ``out``, which may be ``x`` itself: x_t is read before e_t is written)."""
    if out is None or not out.flags.c_contiguous:
        out = np.empty(x.shape)
    _smooth(_vector(alpha, x.shape[1]), np.ascontiguousarray(x), out)
    return out


@_jit
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


_SMALL_GROUP = 32  # events of one path sorted by insertion up to this many, by merge sort above


@_jit
def _sort_within_paths(path, start, order):
    """``order`` (events stably sorted by path) made stably sorted by start within each path."""
    n = order.size
    i = 0
    while i < n:
        j = i + 1
        while j < n and path[order[j]] == path[order[i]]:
            j += 1
        if j - i > _SMALL_GROUP:
            group = order[i:j].copy()
            order[i:j] = group[np.argsort(start[group], kind="mergesort")]
        else:
            for k in range(i + 1, j):
                o = order[k]
                s = start[o]
                m = k - 1
                while m >= i and start[order[m]] > s:  # strict: equal starts keep their order
                    order[m + 1] = order[m]
                    m -= 1
                order[m + 1] = o
        i = j


def event_order(path: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``np.lexsort((start, path))``: events by path, then by start, ties in their order.

    numpy's lexsort sorts every start (~1.3 ms for a block's 10,000 outages); here the
    events are sorted by path (nearly sorted already) and then by start within each path.
    """
    order = np.argsort(path, kind="stable")
    _sort_within_paths(np.ascontiguousarray(path), np.ascontiguousarray(start, dtype=np.float64), order)
    return order


@_jit
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


@_jit
def _order_statistics(x, ranks, out, max_partitions):
    """out[r, k] = the ranks[k]-th smallest value (from 0) of row r of x; ``ranks`` sorted
    and distinct. Quickselect on every range that holds a wanted rank, with branch-free
    partitions (random data makes a partition's branches unpredictable: Hoare's took 2.4x
    as long); a row that needs more than ``max_partitions`` (bad pivots) sorts what is left."""
    n_rows, n = x.shape
    n_ranks = ranks.size
    buf = np.empty(n)
    # pending ranges [lo, hi] with their wanted ranks ranks[klo:khi]: disjoint, each holding
    # a rank, so never more than there are ranks
    lo_at = np.empty(n_ranks + 1, np.int64)
    hi_at = np.empty(n_ranks + 1, np.int64)
    klo_at = np.empty(n_ranks + 1, np.int64)
    khi_at = np.empty(n_ranks + 1, np.int64)
    for row in range(n_rows):
        buf[:] = x[row]
        lo_at[0], hi_at[0], klo_at[0], khi_at[0] = 0, n - 1, 0, n_ranks
        top = 1 if n_ranks > 0 else 0
        budget = max_partitions
        while top > 0:
            top -= 1
            lo, hi, klo, khi = lo_at[top], hi_at[top], klo_at[top], khi_at[top]
            if hi - lo < 32 or budget <= 0:  # small (or stubborn): sorted whole
                buf[lo : hi + 1].sort()
                continue
            budget -= 1
            a, b, c = buf[lo], buf[(lo + hi) >> 1], buf[hi]
            pivot = max(min(a, b), min(max(a, b), c))  # the median of three
            i = lo
            for j in range(lo, hi + 1):  # [lo, i) < pivot <= [i, j]
                v = buf[j]
                below = v < pivot
                buf[j] = buf[i]
                buf[i] = v
                i += below
            e = i
            if i == lo:  # the pivot is the range's least value: [lo, e) == pivot < [e, hi]
                for j in range(lo, hi + 1):
                    v = buf[j]
                    equal = v <= pivot
                    buf[j] = buf[e]
                    buf[e] = v
                    e += equal
            k1 = klo
            while k1 < khi and ranks[k1] < i:
                k1 += 1
            k2 = k1
            while k2 < khi and ranks[k2] < e:  # ranks among the values equal to the pivot: done
                k2 += 1
            if k1 > klo:
                lo_at[top], hi_at[top], klo_at[top], khi_at[top] = lo, i - 1, klo, k1
                top += 1
            if khi > k2:
                lo_at[top], hi_at[top], klo_at[top], khi_at[top] = e, hi, k2, khi
                top += 1
        for k in range(n_ranks):
            out[row, k] = buf[ranks[k]]


def order_statistics(x: np.ndarray, ranks) -> np.ndarray:
    """``np.sort(x, axis=1)[:, ranks]`` (rows, len(ranks)) for a 2-D array without NaN, by
    selection: ~2x faster than sorting for the 20 ranks of the per-day percentiles and their
    intervals (4,096 values a day: 30 ms against 62 for 730 days; numpy's sort runs at
    scalar speed here, 20 ns a value). ``ranks`` distinct, in [0, n)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    order = np.argsort(ranks)
    ranks_sorted = ranks[order]
    if ranks.size and (ranks_sorted[0] < 0 or ranks_sorted[-1] >= x.shape[1] or np.any(np.diff(ranks_sorted) == 0)):
        raise ValueError("ranks must be distinct and within the rows")
    if not ranks.size:
        return np.empty((x.shape[0], 0))
    out = np.empty((x.shape[0], ranks.size))
    # a good pivot halves a range: each rank needs ~log2(n) partitions; 4x that is plenty
    max_partitions = 4 * (ranks.size + 1) * (int(math.log2(x.shape[1] + 1)) + 1)
    _order_statistics(np.ascontiguousarray(x, dtype=np.float64), ranks_sorted, out, max_partitions)
    result = np.empty_like(out)
    result[:, order] = out
    return result


@_jit
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
