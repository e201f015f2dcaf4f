"""Closed-form cases: with no uncertainty, the simulator equals arithmetic done by hand."""

from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose

import kzsim
from kzsim.engine.run import run_paths
from tests.conftest import make_scenario

RTOL = 1e-12


def hand_computed(days: int, price: np.ndarray):
    """The EXACT farm's figures, from the scenario's numbers, written out by hand."""
    hashrate_th = 100 * 200.0
    facility_mw = 100 * 200 * 20 / 1e6 * 1.1  # 0.44 MW
    difficulty = 1000e18 * 600 / 2**32  # matched to 1000 EH/s
    btc_day = hashrate_th * 1e12 * 86400 / (difficulty * 2**32) * (3.125 + 0.05) * (1 - 0.02)
    energy_day = facility_mw * 24
    lots_day = math.ceil(energy_day / 1.0)
    energy_cost = energy_day * 1000 * 25 / 500
    mining_fee = energy_day * 1000 * 1 / 500  # 25 KZT/kWh is in the >= 24 bracket: 1 KZT/kWh
    procurement = lots_day * (500 + 300) / 500
    fixed = 30000 * 12 / 365
    opex = energy_cost + mining_fee + procurement + fixed
    compliance = 36500 / 365 + 0.1 * opex
    cash_day = opex + compliance
    dep_day = 100 * 3000 / (3 * 365)
    # AIFC: 75 % sold two days later at that day's price; the last two days at the final price
    aifc = np.zeros(days)
    aifc[2:] = 0.75 * btc_day * price[2:] * (1 - 0.005 - 0.001)
    aifc[-1] += 2 * 0.75 * btc_day * price[-1] * (1 - 0.005 - 0.001)
    market = 0.25 * btc_day * price * (1 - 0.001)
    revenue_day = aifc + market
    taxable_day = revenue_day - cash_day - dep_day
    return dict(
        btc_day=btc_day,
        energy_day=energy_day,
        energy_cost=energy_cost,
        mining_fee=mining_fee,
        procurement=procurement,
        fixed=fixed,
        compliance=compliance,
        cash_day=cash_day,
        dep_day=dep_day,
        revenue_day=revenue_day,
        taxable_day=taxable_day,
        facility_mw=facility_mw,
    )


def test_no_uncertainty_equals_hand_arithmetic(exact):
    days = 10
    h = hand_computed(days, np.full(days, 100000.0))
    res = kzsim.simulate(exact)
    pp = res.run.per_path
    taxable = h["taxable_day"].sum()
    tax = 0.2 * max(taxable, 0.0)
    expected = {
        "btc_mined": days * h["btc_day"],
        "btc_sold_aifc": 0.75 * days * h["btc_day"],
        "energy_mwh": days * h["energy_day"],
        "energy_cost_usd": days * h["energy_cost"],
        "mining_fee_usd": days * h["mining_fee"],
        "procurement_fee_usd": days * h["procurement"],
        "fixed_opex_usd": days * h["fixed"],
        "compliance_usd": days * h["compliance"],
        "cash_cost_usd": days * h["cash_day"],
        "depreciation_usd": days * h["dep_day"],
        "revenue_usd": h["revenue_day"].sum(),
        "profit_before_tax_usd": taxable,
        "profit_tax_usd": tax,
        "profit_usd": taxable - tax,
        "cash_cost_per_btc_usd": h["cash_day"] / h["btc_day"],
        "all_in_cost_per_btc_usd": (days * (h["cash_day"] + h["dep_day"]) + tax) / (days * h["btc_day"]),
        "up_fraction": 1.0,
        "downtime_grid_hours": 0.0,
        "facility_power_mw": h["facility_mw"],
        "capex_usd": 300000.0,
    }
    for key, value in expected.items():
        assert_allclose(pp[key], value, rtol=RTOL, err_msg=key)
    # payback: first day the cumulative cash flow (revenue - costs - tax) reaches capex
    assert np.all(np.isnan(pp["payback_days"]))
    # NPV at a 0 % discount rate is the cash sum minus capex
    assert_allclose(pp["npv_usd"], h["revenue_day"].sum() - days * h["cash_day"] - tax - 300000.0, rtol=RTOL)
    # the P&L curve ends at the profit
    assert_allclose(res.timeseries["cum_pnl_usd_mean"].iloc[-1], taxable - tax, rtol=RTOL)


def test_no_uncertainty_risk_measures_collapse(exact):
    """Zero volatility and no outages: VaR = CVaR = -profit, P(loss) is 0 or 1."""
    res = kzsim.simulate(exact, paths=50)
    s = res.summary
    profit = res.run.per_path["profit_usd"][0]
    for key in ("var_95_usd", "cvar_95_usd", "var_99_usd", "cvar_99_usd"):
        assert_allclose(s[key], -profit, rtol=RTOL)  # a mean of equal numbers rounds in the last bit
    assert s["p_loss"] == (1.0 if profit < 0 else 0.0)
    assert s["profit_usd"]["mean_se"] == 0.0


def test_profit_tax_per_fiscal_year():
    """A falling price: profit in 2026, loss in 2027; tax is due on 2026 alone."""
    drift = -40.0  # per year: the price falls ~10 % a day
    sc = make_scenario(
        **{
            "simulation.start_date": "2026-12-20",
            "simulation.horizon_days": 20,
            "market.btc_drift_per_year": drift,
            "market.btc_price_usd": 500000,
            "simulation.winter_months": [6],
        }
    )
    days = 20
    price = 500000 * np.exp(drift * np.arange(days) / 365)
    h = hand_computed(days, price)
    year1 = h["taxable_day"][:12].sum()
    year2 = h["taxable_day"][12:].sum()
    assert year1 > 0 > year2, "the test needs a profit in 2026 and a loss in 2027"
    pp = run_paths(sc).per_path
    assert_allclose(pp["profit_tax_usd"], 0.2 * year1, rtol=RTOL)
    assert_allclose(pp["profit_usd"], year1 + year2 - 0.2 * year1, rtol=RTOL)


def test_difficulty_matched_chain_finds_144_blocks_a_day(exact):
    """Constant hashrate matched to difficulty: the retarget in the horizon changes nothing."""
    from kzsim.engine.draws import inputs_for
    from kzsim.model.paths import Calendar, simulate_paths

    cal = Calendar.of(exact)
    p, draws = inputs_for(exact, cal, 1, 0, 3)
    per_path, daily = simulate_paths(exact, cal, p, draws)
    hashprice = daily["hashprice_usd_per_th_day"]
    expected = 1e12 * 86400 / (1000e18 * 600) * 3.175 * 100000
    assert_allclose(hashprice, expected, rtol=RTOL)


def test_payback_day_and_npv_by_hand():
    sc = make_scenario(
        **{"market.btc_price_usd": 1_000_000, "farm.discount_rate_per_year": 0.1, "simulation.horizon_days": 60}
    )
    days = 60
    h = hand_computed(days, np.full(days, 1_000_000.0))
    tax = np.zeros(days)
    tax[-1] = 0.2 * max(h["taxable_day"].sum(), 0.0)  # one fiscal year: charged on the last day
    cash_flow = h["revenue_day"] - h["cash_day"] - tax
    paid = np.cumsum(cash_flow) >= 300_000
    assert paid.any()
    pp = run_paths(sc).per_path
    assert_allclose(pp["payback_days"], np.argmax(paid) + 1)
    discount = 1.1 ** (-np.arange(1, days + 1) / 365)
    assert_allclose(pp["npv_usd"], -300_000 + (cash_flow * discount).sum(), rtol=RTOL)


def test_holding_coins_at_a_constant_price_earns_what_selling_does(exact):
    sell = run_paths(exact).per_path
    hold = run_paths(exact.replace(**{"regulation.treasury_policy": "hold"})).per_path
    assert_allclose(hold["revenue_usd"], sell["revenue_usd"], rtol=RTOL)
    assert_allclose(hold["revenue_market_usd"], sell["revenue_market_usd"], rtol=RTOL)


def test_holding_coins_on_a_rising_price_earns_more(exact):
    rising = exact.replace(**{"market.btc_drift_per_year": 2.0})
    sell = run_paths(rising).per_path
    hold = run_paths(rising.replace(**{"regulation.treasury_policy": "hold"})).per_path
    days, btc_day = 10, hand_computed(10, np.ones(10))["btc_day"]
    price = 100_000 * np.exp(2.0 * np.arange(days) / 365)
    assert_allclose(sell["revenue_market_usd"], (0.25 * btc_day * price * 0.999).sum(), rtol=RTOL)
    assert_allclose(hold["revenue_market_usd"], 0.25 * btc_day * days * price[-1] * 0.999, rtol=RTOL)


def test_the_halving_splits_the_day_it_happens_on():
    """1,050,000 is reached 44 blocks into day 5: that day pays (44 x 3.125 + 100 x 1.5625) / 144."""
    sc = make_scenario(**{"market.start_block_height": 1_050_000 - 5 * 144 - 44})
    pp = run_paths(sc).per_path
    per_th = 1e12 * 86400 / (1000e18 * 600) * (1 - 0.02) * 100 * 200  # BTC a day per BTC of reward
    subsidy = [3.125] * 5 + [(44 * 3.125 + 100 * 1.5625) / 144] + [1.5625] * 4
    assert_allclose(pp["btc_mined"], per_th * sum(s + 0.05 for s in subsidy), rtol=RTOL)


def test_depreciation_of_a_fractional_period_adds_up_to_capex():
    sc = make_scenario(**{"farm.depreciation_years": 5.5 / 365, "simulation.horizon_days": 10})
    pp = run_paths(sc).per_path
    assert_allclose(pp["depreciation_usd"], 300_000, rtol=RTOL)  # 5.5 days: 5 whole days and a half


def test_a_long_settlement_lag_marks_waiting_coins_to_market(exact):
    """With a lag longer than the horizon every AIFC coin is still waiting at the end."""
    res = kzsim.simulate(exact.replace(**{"regulation.aifc_settlement_lag_days": 30}))
    h = hand_computed(10, np.full(10, 100000.0))
    assert_allclose(res.run.per_path["revenue_aifc_usd"], 0.75 * 10 * h["btc_day"] * 100000 * 0.994, rtol=RTOL)
    assert_allclose(res.timeseries["cum_pnl_usd_mean"].iloc[-1], res.run.per_path["profit_usd"][0], rtol=RTOL)
