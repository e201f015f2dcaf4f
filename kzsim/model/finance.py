"""Hedges, the loan and the investor measures, on every path (arrays in, arrays out).

The economics kernel gives each path's operating cash flow before tax and BTC mined, day by
day (:func:`kzsim.model.paths.simulate_paths` asks for them when a scenario has ``hedges``
or ``financing``). Here they meet the path's own BTC price and hashprice:

* hedges settle in cash: swaps and forwards at the end of each month of their period,
  options at expiry, premiums on day 0 (Black-Scholes);
* the loan is drawn on day 0 and served at the end of each month of 365/12 days;
* the profit tax of each fiscal year is taken again on the profit with hedges and interest
  (the kernel's own arithmetic, in its order: without hedges and a loan, the same bits);
* from the cash left, the investor measures: cash balance, debt-service coverage, margin
  calls, the owners' IRR, payback in USD and in BTC.

Months here are 365/12 days counted from a period's first day (month k ends on day
``start + round(k x 365 / 12) - 1``, rounded half up); quarters are three of them from day 0.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from kzsim.model.processes import cumsum_days, sum_days
from kzsim.scenario.decisions import BtcCollar, BtcPut, HashpriceSwap, ProductionForward
from kzsim.units import DAYS_PER_YEAR, MONTHS_PER_YEAR

DAYS_PER_MONTH = DAYS_PER_YEAR / MONTHS_PER_YEAR
IRR_MONTHLY_RANGE = (-0.5, 1.0)  # monthly rates searched: -99.98 % to 409,500 % a year
IRR_STEPS = 60  # bisection halvings: 1.5 / 2^60 ~ 1e-18 of a monthly rate


def has_decisions(scenario) -> bool:
    """Whether the scenario has hedges, financing, an upgrade or a resale of the machines (the
    kernel then gives its daily cash)."""
    f = scenario.farm
    return bool(scenario.hedges) or scenario.financing is not None or f.resale is not None or f.upgrade is not None


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of each day and the ``window - 1`` days before it (fewer at the start)."""
    total = cumsum_days(x)
    out = total.copy()
    out[window:] -= total[:-window]
    count = np.minimum(np.arange(1, x.shape[0] + 1), window)[:, None]
    return out / count


def upgrade_plan(scenario, p, hashprice, ageing, failed, farm_hashrate_th):
    """When each path swaps the fleet row ``farm.upgrade.replaces`` for the new model, and the
    kernel's hashrate factor and hardware downtime with it (before the kernel runs).

    Returns (ageing, failed) as (n_days, n) arrays and the plan: ``day`` (n,) the swap's day
    index (NaN where it never happens), the replaced row's hashrate and the new machines'
    count and hashrate (same power), and the trigger's mean hashprice on the day."""
    up = scenario.farm.upgrade
    n_days, n = hashprice.shape
    r = up.replaces
    row = scenario.farm.fleet[r]
    old_th = row.count * p[f"farm.fleet.{r}.hashrate_th"]
    old_eff = p[f"farm.fleet.{r}.efficiency_j_per_th"]
    new_th = old_th * old_eff / p["farm.upgrade.efficiency_j_per_th"]  # the same IT power
    mean_hashprice = _trailing_mean(hashprice, up.hashprice_window_days)
    if up.on_day is not None:
        day = np.full(n, float(up.on_day))
    else:
        hit = mean_hashprice < p["farm.upgrade.when_hashprice_below_usd_per_th_day"]
        hit[: up.not_before_day] = False
        day = np.where(hit.any(axis=0), hit.argmax(axis=0).astype(np.float64), np.nan)
    t = np.arange(n_days, dtype=np.float64)[:, None]
    after = t >= day  # False everywhere on paths without a swap (NaN compares False)
    degradation = np.broadcast_to(p["farm.efficiency_degradation_per_year"], (n,))
    new_age = (1.0 + degradation) ** -(np.maximum(t - np.nan_to_num(day, nan=0.0), 0.0) / DAYS_PER_YEAR)
    age = np.broadcast_to(ageing, (n_days, n))
    mixed = ((farm_hashrate_th - old_th) * age + new_th * new_age) / farm_hashrate_th
    it_power = sum(
        a.count * p[f"farm.fleet.{i}.hashrate_th"] * p[f"farm.fleet.{i}.efficiency_j_per_th"]
        for i, a in enumerate(scenario.farm.fleet)
    )
    row_power_share = old_th * old_eff / it_power
    swapping = after & (t < day + up.swap_days)
    down = np.broadcast_to(failed, (n_days, n))
    plan = {
        "day": day,
        "old_th": old_th,
        "new_count": new_th / p["farm.upgrade.hashrate_th"],
        "hashprice_then": np.take_along_axis(
            mean_hashprice, np.nan_to_num(day, nan=0.0).astype(np.int64)[None, :], axis=0
        )[0],
    }
    return np.where(after, mixed, age), np.where(swapping, np.maximum(down, row_power_share), down), plan


def resale(scenario, p, hashprice: np.ndarray, plan: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the machines fetch at the horizon's end (n,) and their book value then (n,).

    Each model: count x unit price x max(floor, value share x (H_end / H_0) ^ elasticity),
    H_end the mean hashprice over the last ``end_window_days``, H_0 the first day's. The book
    value is the machines' part of the capex less its straight-line depreciation so far."""
    sale = scenario.farm.resale
    n_days = hashprice.shape[0]
    ratio = hashprice[max(0, n_days - sale.end_window_days) :].mean(axis=0) / hashprice[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = np.exp(p["farm.resale.hashprice_elasticity"] * np.log(ratio))
    moved = np.where(ratio > 0, moved, 0.0)
    share = np.maximum(p["farm.resale.floor_share"], p["farm.resale.value_share"] * moved)
    fleet = scenario.farm.fleet
    machines = sum(a.count * p[f"farm.fleet.{i}.unit_price_usd"] for i, a in enumerate(fleet))
    dep_days = scenario.farm.depreciation_years * DAYS_PER_YEAR
    book = machines * (1.0 - min(n_days, dep_days) / dep_days)
    if plan is not None:  # paths that swapped a row hold the new machines instead, bought later
        r = scenario.farm.upgrade.replaces
        swapped = np.isfinite(plan["day"])
        old = fleet[r].count * p[f"farm.fleet.{r}.unit_price_usd"]
        new = plan["new_count"] * p["farm.upgrade.unit_price_usd"]
        held = n_days - np.nan_to_num(plan["day"], nan=0.0)
        machines = np.where(swapped, machines - old + new, machines)
        book = np.where(
            swapped,
            book - old * (1.0 - min(n_days, dep_days) / dep_days) + new * (1.0 - np.minimum(held, dep_days) / dep_days),
            book,
        )
    return machines * share, np.broadcast_to(book, share.shape)


def upgrade_flows(scenario, p, hashprice, plan) -> dict:
    """The swap's money on each path: the new machines bought and the old sold on its day,
    the depreciation that changes from then (the new machines' added, the old row's taken
    off the kernel's), and the sale's gain over the old row's book value.

    Returns (n_days, n) ``cash``, ``gain`` (on the day) and ``depreciation`` (the change),
    and (n,) ``capex``, ``sale``."""
    up = scenario.farm.upgrade
    r = up.replaces
    n_days, n = hashprice.shape
    dep_days = scenario.farm.depreciation_years * DAYS_PER_YEAR
    day = plan["day"]
    swapped = np.flatnonzero(np.isfinite(day))
    u = np.nan_to_num(day, nan=0.0).astype(np.int64)
    old = np.broadcast_to(scenario.farm.fleet[r].count * p[f"farm.fleet.{r}.unit_price_usd"], (n,))
    new = np.broadcast_to(plan["new_count"] * p["farm.upgrade.unit_price_usd"], (n,))
    ratio = plan["hashprice_then"] / hashprice[0]
    sale = old * np.maximum(p["farm.upgrade.old_floor_share"], p["farm.upgrade.old_value_share"] * ratio)
    book = old * (1.0 - np.minimum(u, dep_days) / dep_days)
    t = np.arange(n_days, dtype=np.float64)[:, None]
    old_dep = np.clip(dep_days - t, 0.0, 1.0) * (old / dep_days)  # the kernel's schedule, for the old row
    new_dep = np.clip(dep_days - (t - u), 0.0, 1.0) * (new / dep_days)
    depreciation = np.where(t >= day, new_dep - old_dep, 0.0)
    cash, gain = np.zeros((n_days, n)), np.zeros((n_days, n))
    cash[u[swapped], swapped] = sale[swapped] - new[swapped]
    gain[u[swapped], swapped] = sale[swapped] - book[swapped]
    done = np.isfinite(day)
    return {
        "cash": cash,
        "gain": gain,
        "depreciation": depreciation,
        "capex": np.where(done, new, 0.0),
        "sale": np.where(done, sale, 0.0),
    }


def _rounded(days: np.ndarray) -> np.ndarray:
    """Day counts rounded half up (182.5 -> 183)."""
    return np.floor(days + 0.5).astype(np.int64)


def month_ends(start_day: int, months: int, n_days: int) -> np.ndarray:
    """Last day of each month of a period from ``start_day``, within the horizon (the
    horizon's last day closes a month it cuts short)."""
    ends = start_day + _rounded(np.arange(1, months + 1) * DAYS_PER_MONTH) - 1
    inside = ends[ends < n_days - 1]
    if inside.size < months:
        inside = np.append(inside, n_days - 1)
    return np.unique(inside)


def black_scholes(kind: str, spot, strike, years: float, rate, volatility) -> np.ndarray:
    """Black-Scholes price of a European ``'put'`` or ``'call'`` on one BTC [USD]."""
    spot, strike, rate, volatility = (np.asarray(x, dtype=np.float64) for x in (spot, strike, rate, volatility))
    discount = np.exp(-rate * years)
    width = volatility * np.sqrt(years)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(spot / strike) + (rate + 0.5 * volatility**2) * years) / width
    d2 = d1 - width
    if kind == "call":
        value = spot * special.ndtr(d1) - strike * discount * special.ndtr(d2)
        intrinsic = np.maximum(spot - strike * discount, 0.0)
    else:
        value = strike * discount * special.ndtr(-d2) - spot * special.ndtr(-d1)
        intrinsic = np.maximum(strike * discount - spot, 0.0)
    return np.where(width > 0, value, intrinsic)  # no volatility: the discounted intrinsic value


def _periods(length_days: float, n_days: int) -> list[tuple[int, int]]:
    """(first, last) day of each period of ``length_days`` from day 0; the horizon's last day
    closes the last one."""
    ends = _rounded(np.arange(1, int(n_days / length_days) + 2) * length_days) - 1
    ends = np.append(ends[ends < n_days - 1], n_days - 1)
    starts = np.concatenate(([0], ends[:-1] + 1))
    return list(zip(starts.tolist(), ends.tolist()))


def _settle_monthly(daily: np.ndarray, start_day: int, months: int, out: np.ndarray) -> None:
    """Add each month's sum of ``daily`` (the period's days only) to ``out`` on the month's last day."""
    n_days = out.shape[0]
    ends = month_ends(start_day, months, n_days)
    starts = np.concatenate(([start_day], ends[:-1] + 1))
    for a, b in zip(starts, ends):  # in day order within a month, as the kernel sums
        out[b] += sum_days(daily[a : b + 1])


def hedge_cash(scenario, p, price, hashprice, btc_day, farm_hashrate_th) -> tuple[np.ndarray, np.ndarray]:
    """Each day's cash from the hedges (n_days, n), and the premiums among it (n,), paid on day 0."""
    n_days, n = price.shape
    cash = np.zeros((n_days, n))
    premiums = np.zeros(n)
    for i, hedge in enumerate(scenario.hedges):
        key = f"hedges.{i}."
        if isinstance(hedge, HashpriceSwap):
            notional_th = p[key + "share"] * farm_hashrate_th
            daily = notional_th * (p[key + "fixed_usd_per_th_day"] - hashprice)
            _settle_monthly(daily, hedge.start_day, hedge.months, cash)
        elif isinstance(hedge, ProductionForward):
            daily = p[key + "share"] * btc_day * (p[key + "price_usd"] - price)
            _settle_monthly(daily, hedge.start_day, hedge.months, cash)
        else:
            years = hedge.expiry_days / DAYS_PER_YEAR
            spot, expiry = price[0], price[hedge.expiry_days]
            vol, rate = p[key + "implied_volatility_per_year"], p[key + "rate_per_year"]
            if isinstance(hedge, BtcPut):
                strike = p[key + "strike_usd"]
                per_btc = black_scholes("put", spot, strike, years, rate, vol)
                payoff = np.maximum(strike - expiry, 0.0)
            else:
                assert isinstance(hedge, BtcCollar)
                put, call = p[key + "put_strike_usd"], p[key + "call_strike_usd"]
                per_btc = black_scholes("put", spot, put, years, rate, vol) - black_scholes(
                    "call", spot, call, years, rate, vol
                )
                payoff = np.maximum(put - expiry, 0.0) - np.maximum(expiry - call, 0.0)
            premium = p[key + "notional_btc"] * per_btc
            premiums += premium
            cash[0] -= premium
            cash[hedge.expiry_days] += p[key + "notional_btc"] * payoff
    return cash, premiums


def loan_schedule(fin, p, n_days: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interest and principal paid each day (n_days, n), and the balance owed after each day."""
    interest, principal = np.zeros((n_days, n)), np.zeros((n_days, n))
    owed = np.broadcast_to(p["financing.loan_usd"], (n,)).astype(np.float64)
    balance = np.empty((n_days, n))
    term = fin.loan_term_months
    rate = np.broadcast_to(p["financing.loan_rate_per_year"] / MONTHS_PER_YEAR, (n,))
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(rate > 0, owed * rate / -np.expm1(-term * np.log1p(rate)), owed / term)
    ends = _rounded(np.arange(1, term + 1) * DAYS_PER_MONTH) - 1  # the last day of each month
    day = 0
    for k, end in enumerate(ends, 1):
        if end >= n_days:
            break
        balance[day:end] = owed
        due = rate * owed
        if fin.loan_repayment == "bullet":
            repaid = owed if k == term else np.zeros(n)
        else:
            repaid = owed if k == term else np.minimum(annuity - due, owed)
        interest[end] = due
        principal[end] = repaid
        owed = owed - repaid
        day = end
    balance[day:] = owed
    return interest, principal, balance


def _tax_by_year(taxable_day, year_starts, rate):
    """Each fiscal year's taxable profit (n_years, n), summed in day order as the kernel sums it, and its tax."""
    bounds = np.append(year_starts, taxable_day.shape[0])
    taxable = np.stack([sum_days(taxable_day[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    return taxable, rate * np.maximum(taxable, 0.0)


def irr_per_year(flows: np.ndarray) -> np.ndarray:
    """The owners' IRR of monthly flows (n_months + 1, n; month 0 first), a year's rate.

    Bisection on the monthly rate within :data:`IRR_MONTHLY_RANGE` of where the flows'
    present value changes sign. -1 (all lost) where the present value stays at or below
    zero even at -50 % a month (flows that never come back), NaN where the first flow is not
    an outlay (nothing invested, no rate to speak of)."""
    months = np.arange(flows.shape[0])[:, None]

    def npv(monthly):
        return (flows * np.exp(-months * np.log1p(monthly))).sum(axis=0)

    lo = np.full(flows.shape[1], IRR_MONTHLY_RANGE[0])
    hi = np.full(flows.shape[1], IRR_MONTHLY_RANGE[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(IRR_STEPS):
            mid = 0.5 * (lo + hi)
            above = npv(mid) > 0  # conventional flows: the present value falls as the rate rises
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        rate = 0.5 * (lo + hi)
        lost = npv(np.full_like(rate, IRR_MONTHLY_RANGE[0])) <= 0
    annual = np.expm1(MONTHS_PER_YEAR * np.log1p(rate))
    annual = np.where(lost, -1.0, annual)
    return np.where(flows[0] < 0, annual, np.nan)


def _first_day(hit: np.ndarray) -> np.ndarray:
    """1 + the first day index where ``hit`` (n_days, n) is true, NaN where never (a day count)."""
    return np.where(hit.any(axis=0), hit.argmax(axis=0) + 1.0, np.nan)


def apply(scenario, cal, p, per_path, daily, price, cash_pre, btc_day, dep_day, discount, farm_hashrate_th, plan=None):
    """Hedges, financing, the upgrade and the resale on each path: updates ``per_path``
    (profit, tax, depreciation, NPV, payback, costs per BTC) and ``daily`` (the P&L;
    ``cash_usd`` with financing) in place, and adds their own columns.

    ``cash_pre``: each day's operating cash flow before tax (the kernel's revenue - cash
    cost), ``btc_day`` the BTC mined, ``dep_day`` the depreciation, ``discount`` each day's
    discount factor (n_days, 1 or n), all per path as the kernel used them; ``plan`` the
    upgrade's (:func:`upgrade_plan`)."""
    n_days, n = cash_pre.shape
    rate = p["regulation.profit_tax_rate"]
    hashprice = daily["hashprice_usd_per_th_day"]
    hedges, premiums = hedge_cash(scenario, p, price, hashprice, btc_day, farm_hashrate_th)
    fin = scenario.financing
    if fin is not None:
        interest, principal, owed = loan_schedule(fin, p, n_days, n)
    else:
        interest = principal = owed = np.zeros((n_days, n))
    deductible = interest if fin is None or fin.interest_tax_deductible else np.zeros_like(interest)
    other_cash = hedges  # cash outside operations before financing: hedges, the machines bought and sold
    gains = hedges - deductible  # what changes the taxable profit
    pnl_change = hedges - interest
    asset_gains = np.zeros(n)  # machines sold above their book value (below: negative)
    if plan is not None:
        swap = upgrade_flows(scenario, p, hashprice, plan)
        per_path["upgrade_day"] = plan["day"] + 1.0  # counted from 1, as the other days
        per_path["upgrade_capex_usd"], per_path["upgrade_sale_usd"] = swap["capex"], swap["sale"]
        per_path["depreciation_usd"] = per_path["depreciation_usd"] + sum_days(swap["depreciation"])
        other_cash = other_cash + swap["cash"]
        gains = gains + (swap["gain"] - swap["depreciation"])
        pnl_change = pnl_change + (swap["gain"] - swap["depreciation"])
        asset_gains = asset_gains + sum_days(swap["gain"])
    if scenario.farm.resale is not None:
        sold, book = resale(scenario, p, hashprice, plan)
        gain = sold - book
        per_path["resale_usd"], per_path["resale_gain_usd"] = sold, gain
        other_cash, gains, pnl_change = other_cash.copy(), gains.copy(), pnl_change.copy()
        other_cash[-1] += sold
        gains[-1] += gain  # taxed with the last year's profit
        pnl_change[-1] += gain
        asset_gains = asset_gains + gain
    base = cash_pre - dep_day  # the kernel's taxable profit of each day, in its arithmetic
    _, tax_old = _tax_by_year(base, cal.fiscal_year_starts, rate)
    taxable, tax = _tax_by_year(base + gains, cal.fiscal_year_starts, rate)
    year_ends = np.append(cal.fiscal_year_starts[1:] - 1, n_days - 1)
    tax_day = np.zeros((n_days, n))
    tax_day[year_ends] = tax
    tax_change = np.zeros((n_days, n))
    tax_change[year_ends] = tax - tax_old

    before_tax = taxable[0].copy()
    for later in taxable[1:]:
        before_tax += later
    tax_total = tax[0].copy()
    for later in tax[1:]:
        tax_total += later
    per_path["profit_before_tax_usd"] = before_tax
    per_path["profit_tax_usd"] = tax_total
    per_path["profit_usd"] = before_tax - tax_total
    btc_total = per_path["btc_mined"]
    with np.errstate(divide="ignore", invalid="ignore"):
        all_in = per_path["cash_cost_usd"] + per_path["depreciation_usd"] + tax_total
        all_in = all_in - asset_gains  # machines sold give back what they fetch above their book value
        per_path["all_in_cost_per_btc_usd"] = np.where(btc_total > 0, all_in / btc_total, np.nan)
    if scenario.hedges:
        per_path["hedge_premium_usd"] = premiums
        per_path["hedge_payoff_usd"] = sum_days(hedges) + premiums  # settlements, premiums apart
    daily["cum_pnl_usd"] = daily["cum_pnl_usd"] + cumsum_days(pnl_change - tax_change)

    # ---- the farm's own cash after tax and hedges (before financing): NPV, payback
    capex = per_path["capex_usd"]
    project = cash_pre - tax_day + other_cash
    per_path["npv_usd"] = -capex + sum_days(project * discount)
    cum_project = cumsum_days(project)
    per_path["payback_days"] = _first_day(cum_project >= capex)
    cum_btc = cumsum_days(project / price)
    per_path["payback_btc_days"] = _first_day(cum_btc >= capex / price[0])
    if fin is None:
        return

    # ---- the owners' and the lenders' view
    loan = np.broadcast_to(p["financing.loan_usd"], (n,)).astype(np.float64)
    start_cash = np.broadcast_to(p["financing.starting_cash_usd"], (n,)).astype(np.float64)
    service = interest + principal
    flows = project - service
    cash = start_cash + cumsum_days(flows)
    daily["cash_usd"] = cash
    per_path["loan_usd"] = loan
    per_path["interest_usd"] = sum_days(interest)
    per_path["debt_service_usd"] = sum_days(service)
    per_path["loan_outstanding_end_usd"] = owed[-1].copy()
    per_path["min_cash_usd"] = cash.min(axis=0)
    per_path["final_cash_usd"] = cash[-1].copy()
    per_path["cash_out_day"] = _first_day(cash < 0)
    per_path["cash_runs_out"] = (cash < 0).any(axis=0).astype(np.float64)

    # debt-service coverage by quarter: the cash available for debt service (operations after
    # tax, and hedges; machines bought or sold apart) over what falls due (a bullet's final
    # repayment is refinanced, not covered)
    available = cash_pre - tax_day + hedges
    covered_service = interest if fin.loan_repayment == "bullet" else service
    min_dscr = np.full(n, np.inf)
    for a, b in _periods(3 * DAYS_PER_MONTH, n_days):
        due = sum_days(covered_service[a : b + 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(due > 0, sum_days(available[a : b + 1]) / due, np.inf)
        min_dscr = np.minimum(min_dscr, ratio)
    per_path["min_dscr"] = np.where(np.isfinite(min_dscr), min_dscr, np.nan)
    per_path["covenant_breach"] = (min_dscr < p["financing.dscr_covenant"]).astype(np.float64)

    collateral = np.broadcast_to(p["financing.collateral_btc"], (n,))
    with np.errstate(divide="ignore", invalid="ignore"):
        ltv = np.where(collateral > 0, owed / (collateral * price), 0.0)
    called = (ltv > p["financing.margin_call_ltv"]) & (owed > 0)
    per_path["margin_call"] = called.any(axis=0).astype(np.float64)
    per_path["margin_call_day"] = _first_day(called)

    # the owners' IRR: their outlay on day 0, each month's cash, and at the end the cash left
    # (the starting cash with it) less the loan still owed
    equity = capex + start_cash - loan
    per_path["equity_usd"] = equity
    periods = _periods(DAYS_PER_MONTH, n_days)
    monthly = np.empty((len(periods) + 1, n))
    monthly[0] = -equity
    for k, (a, b) in enumerate(periods, 1):
        monthly[k] = sum_days(flows[a : b + 1])
    monthly[-1] += start_cash - owed[-1]
    irr = irr_per_year(monthly)
    per_path["irr_per_year"] = irr
    per_path["irr_below_hurdle"] = np.where(np.isnan(irr), np.nan, (irr < p["financing.hurdle_irr_per_year"]) * 1.0)
