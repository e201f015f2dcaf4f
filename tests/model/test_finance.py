"""Hedges, the loan and the investor measures (kzsim.model.finance): closed forms, invariants
on common random numbers, and the same bits as before for scenarios without them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import kzsim
from kzsim.model import finance
from kzsim.scenario.errors import ScenarioError
from tests.conftest import SCENARIOS, make_scenario

YEAR = {"simulation.horizon_days": 365, "simulation.start_date": "2026-01-01"}


def run(sc, paths=None, **kw):
    return kzsim.simulate(sc, paths=paths, threads=1, **kw).run


# ---- closed forms ------------------------------------------------------------------------


def test_irr_of_hand_computed_flows():
    flows = np.array(
        [
            [-100.0, -100.0, -100.0, -100.0, 50.0],
            [110.0, 60.0, -10.0, 0.0, 10.0],
            [0.0, 60.0, -10.0, 0.0, 0.0],
        ]
    )
    irr = finance.irr_per_year(flows)
    # 10 % a month; 60/(1+r) + 60/(1+r)^2 = 100 -> r = (3 + sqrt(69)) / 10 - 1 ... solved by hand:
    # 100 x^2 - 60 x - 60 = 0 with x = 1 + r: x = (60 + sqrt(3600 + 24000)) / 200
    x = (60 + math.sqrt(27600)) / 200
    assert_allclose(irr[:2], [1.1**12 - 1, x**12 - 1], rtol=1e-12)
    assert irr[2] == -1.0 and irr[3] == -1.0  # nothing comes back: all lost
    assert math.isnan(irr[4])  # nothing invested: no rate


def test_black_scholes_known_value_and_parity():
    # S = K = 100, one year, r = 5 %, vol 20 %: call 10.4506, put 5.5735 (Hull's tables)
    call = finance.black_scholes("call", 100.0, 100.0, 1.0, 0.05, 0.2)
    put = finance.black_scholes("put", 100.0, 100.0, 1.0, 0.05, 0.2)
    assert_allclose([call, put], [10.450583572185565, 5.573526022256971], rtol=1e-12)
    assert_allclose(call - put, 100.0 - 100.0 * math.exp(-0.05), rtol=1e-12)
    assert finance.black_scholes("put", 100.0, 120.0, 1.0, 0.0, 0.0) == pytest.approx(20.0)


def test_month_ends_cover_the_period_and_stop_at_the_horizon():
    ends = finance.month_ends(0, 12, 365)
    assert ends.tolist() == [math.floor(k * 365 / 12 + 0.5) - 1 for k in range(1, 13)]
    assert ends[[0, 5, 11]].tolist() == [29, 182, 364]  # 30.4 days, 182.5 rounded up, the year's last day
    assert finance.month_ends(300, 12, 365).tolist() == [329, 360, 364]  # the horizon closes the last


def test_a_swap_at_the_periods_hashprice_with_no_uncertainty_changes_nothing():
    """No volatility anywhere: a year's swap whose fixed price is that year's mean hashprice
    settles to zero over the year, within one fiscal year: profit and tax as without it."""
    sc = make_scenario(**YEAR)
    base = run(sc)
    hashprice = base.daily_mean["hashprice_usd_per_th_day"]
    fixed = float(np.mean(hashprice))
    swap = {"type": "hashprice_swap", "share": 0.7, "fixed_usd_per_th_day": fixed, "months": 12}
    hedged = run(sc.replace(hedges=[swap]))
    scale = float(np.abs(base.per_path["revenue_usd"]).max())
    for key in ("profit_usd", "profit_tax_usd", "profit_before_tax_usd"):
        assert_allclose(hedged.per_path[key], base.per_path[key], rtol=0, atol=1e-9 * scale, err_msg=key)
    assert_allclose(hedged.per_path["hedge_payoff_usd"], 0.0, atol=1e-9 * scale)
    # within the year the monthly settlements move the P&L, and they add up to nothing
    assert np.abs(hedged.daily_mean["cum_pnl_usd"] - base.daily_mean["cum_pnl_usd"]).max() > 0


def test_a_production_forward_pays_the_coins_times_the_price_gap():
    """Constant price: a forward on a share of the coins pays share x coins x (fixed - price)."""
    sc = make_scenario(**YEAR)
    base = run(sc)
    fwd = {"type": "production_forward", "share": 0.4, "price_usd": 110_000, "months": 12}
    hedged = run(sc.replace(hedges=[fwd]))
    expected = 0.4 * base.per_path["btc_mined"] * (110_000 - 100_000)
    assert_allclose(hedged.per_path["hedge_payoff_usd"], expected, rtol=1e-12)
    taxable_change = hedged.per_path["profit_before_tax_usd"] - base.per_path["profit_before_tax_usd"]
    assert_allclose(taxable_change, expected, rtol=1e-9)


def test_a_puts_mean_payoff_is_its_black_scholes_price_under_driftless_gbm():
    """GBM with zero drift is a martingale: the put's mean payoff at expiry equals its
    Black-Scholes premium (rate 0, the model's volatility), within 3 standard errors."""
    sc = make_scenario(**YEAR, **{"market.btc_volatility_per_year": 0.6})
    put = {
        "type": "btc_put",
        "notional_btc": 1.0,
        "strike_usd": 90_000,
        "expiry_days": 300,
        "implied_volatility_per_year": 0.6,
    }
    out = run(sc.replace(hedges=[put]), paths=40_000).per_path
    payoff = out["hedge_payoff_usd"]
    premium = out["hedge_premium_usd"][0]
    assert_allclose(premium, finance.black_scholes("put", 100_000, 90_000, 300 / 365, 0.0, 0.6), rtol=1e-12)
    se = payoff.std(ddof=1) / math.sqrt(payoff.size)
    assert abs(payoff.mean() - premium) < 3 * se, (payoff.mean(), premium, se)


def test_a_collar_at_equal_strikes_is_a_short_forward():
    """Put and call at the same strike: the payoff is K - S_T and the premium K - S_0 (rate 0)."""
    sc = make_scenario(**YEAR, **{"market.btc_volatility_per_year": 0.5})
    collar = {
        "type": "btc_collar",
        "notional_btc": 2.0,
        "put_strike_usd": 95_000,
        "call_strike_usd": 95_000,
        "expiry_days": 200,
        "implied_volatility_per_year": 0.5,
    }
    out = run(sc.replace(hedges=[collar]), paths=64).per_path
    assert_allclose(out["hedge_premium_usd"], 2.0 * (95_000 - 100_000), rtol=1e-9)


def test_a_zero_rate_bullet_loan_moves_cash_not_profit():
    sc = make_scenario(**YEAR)
    cash_only = run(sc.replace(financing={"starting_cash_usd": 1e6}))
    loan = {"starting_cash_usd": 1e6, "loan_usd": 250_000, "loan_repayment": "bullet", "loan_term_months": 6}
    with_loan = run(sc.replace(financing=loan))
    for key in ("profit_usd", "profit_tax_usd", "npv_usd", "payback_days"):
        assert_array_equal(with_loan.per_path[key], cash_only.per_path[key], err_msg=key)
    assert_array_equal(with_loan.per_path["interest_usd"], 0.0)
    repaid_on = 182  # the last day of the sixth month (182.5 days, rounded up, less one: day 0 is the first)
    gap = with_loan.daily_mean["cash_usd"] - cash_only.daily_mean["cash_usd"]  # means over paths
    assert_allclose(gap[:repaid_on], 0.0, atol=1e-6)
    assert_allclose(gap[repaid_on:], -250_000, rtol=1e-12)
    # the owners put in the capex and the starting cash, less the loan
    assert_allclose(with_loan.per_path["equity_usd"], 100 * 3000 + 1e6 - 250_000)


def test_an_amortising_loan_pays_its_annuity_and_interest_cuts_the_tax():
    sc = make_scenario(**YEAR, **{"regulation.profit_tax_rate": 0.2, "market.btc_price_usd": 400_000})
    loan = {"loan_usd": 120_000, "loan_rate_per_year": 0.12, "loan_term_months": 12}
    out = run(sc.replace(financing=loan)).per_path
    r = 0.01
    annuity = 120_000 * r / (1 - (1 + r) ** -12)
    assert_allclose(out["debt_service_usd"], 12 * annuity, rtol=1e-9)
    assert_allclose(out["interest_usd"], 12 * annuity - 120_000, rtol=1e-9)
    assert_allclose(out["loan_outstanding_end_usd"], 0.0, atol=1e-6)
    base = run(sc).per_path
    assert_allclose(out["profit_before_tax_usd"], base["profit_before_tax_usd"] - out["interest_usd"], rtol=1e-9)
    taxable = base["profit_before_tax_usd"][0]
    assert taxable > out["interest_usd"][0]  # the farm makes money: the tax falls by 20 % of the interest
    assert_allclose(base["profit_tax_usd"] - out["profit_tax_usd"], 0.2 * out["interest_usd"], rtol=1e-9)


def test_cash_runs_out_when_the_buffer_is_too_small():
    """No revenue (price floor), costs every day: the cash runs out on the day the buffer is spent."""
    sc = make_scenario(**YEAR, **{"market.btc_price_usd": 0.01})
    base = run(sc).per_path
    daily_cost = base["cash_cost_usd"][0] / 365
    out = run(sc.replace(financing={"starting_cash_usd": 10.5 * daily_cost})).per_path
    assert_array_equal(out["cash_runs_out"], 1.0)
    assert_array_equal(out["cash_out_day"], 11.0)  # the 11th day takes it below zero
    assert_array_equal(out["irr_per_year"], -1.0)
    assert_array_equal(out["irr_below_hurdle"], 1.0)
    assert math.isnan(out["payback_days"][0]) and math.isnan(out["payback_btc_days"][0])


def test_margin_call_when_the_collateral_falls_below_the_ltv():
    """Constant price 100,000: 10 BTC of collateral and a 600,000 loan is an LTV of 0.6."""
    sc = make_scenario(**YEAR)
    calm = run(sc.replace(financing={"loan_usd": 600_000, "collateral_btc": 10, "margin_call_ltv": 0.7})).per_path
    assert_array_equal(calm["margin_call"], 0.0)
    called = run(sc.replace(financing={"loan_usd": 600_000, "collateral_btc": 10, "margin_call_ltv": 0.5})).per_path
    assert_array_equal(called["margin_call"], 1.0)
    assert_array_equal(called["margin_call_day"], 1.0)


# ---- invariants on common random numbers ---------------------------------------------------


def test_a_larger_swap_never_widens_the_spread_of_profit():
    """A hashprice swap on a fixed notional below the farm's exposure: each step up in its
    share lowers the standard deviation of profit, path by path on the same draws."""
    sc = make_scenario(
        **YEAR,
        **{
            "market.btc_volatility_per_year": 0.5,
            "market.hashrate_volatility_per_year": 0.2,
            "regulation.profit_tax_rate": 0.0,
        },
    )
    spreads = []
    for share in (0.0, 0.15, 0.3, 0.45, 0.6):
        swap = {"type": "hashprice_swap", "share": share, "fixed_usd_per_th_day": 0.05, "months": 12}
        spreads.append(run(sc.replace(hedges=[swap]), paths=2048).per_path["profit_usd"].std())
    assert all(b < a for a, b in zip(spreads, spreads[1:])), spreads


def test_same_bits_with_empty_financing_and_whatever_the_chunks():
    """``financing: {}`` adds columns and changes none; the finance layer's columns have the
    same bits whatever the chunk size or thread count."""
    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 120})
    plain = run(sc, paths=1500)
    fin = sc.replace(
        financing={"loan_usd": 4e6, "loan_rate_per_year": 0.14, "starting_cash_usd": 2e6, "collateral_btc": 80},
        hedges=[
            {
                "type": "btc_put",
                "notional_btc": 30,
                "strike_usd": 80000,
                "expiry_days": 90,
                "implied_volatility_per_year": 0.5,
            }
        ],
    )
    empty = run(sc.replace(financing={}), paths=1500)
    for key, values in plain.per_path.items():
        assert_array_equal(empty.per_path[key], values, err_msg=key)
    for key, values in plain.daily_mean.items():
        assert_array_equal(empty.daily_mean[key], values, err_msg=key)
    one = kzsim.simulate(fin, paths=1500, threads=1, chunk_paths=1500).run
    other = kzsim.simulate(fin, paths=1500, threads=2, chunk_paths=300).run
    for key, values in one.per_path.items():
        assert_array_equal(other.per_path[key], values, err_msg=key)
    for key, values in one.daily_mean.items():
        assert_array_equal(other.daily_mean[key], values, err_msg=key)


# ---- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update, words",
    [
        (
            {
                "hedges": [
                    {
                        "type": "btc_put",
                        "notional_btc": 1,
                        "strike_usd": 1e5,
                        "expiry_days": 365,
                        "implied_volatility_per_year": 0.5,
                    }
                ]
            },
            "hedges.0.expiry_days",
        ),
        ({"hedges": [{"type": "btc_swap", "share": 0.5}]}, "hedges.0"),
        ({"hedges": [{"type": "hashprice_swap", "share": 1.5, "fixed_usd_per_th_day": 0.05}]}, "hedges.0.share"),
        (
            {
                "hedges": [
                    {
                        "type": "btc_collar",
                        "notional_btc": 1,
                        "put_strike_usd": 9e4,
                        "call_strike_usd": 8e4,
                        "expiry_days": 30,
                        "implied_volatility_per_year": 0.5,
                    }
                ]
            },
            "hedges.0.call_strike_usd",
        ),
        ({"financing": {"loan_usd": -1}}, "financing.loan_usd"),
        ({"financing": {"loan_repayment": "balloon"}}, "financing.loan_repayment"),
        ({"financing": {"loan_term_month": 12}}, "financing.loan_term_month"),
    ],
)
def test_bad_hedges_and_loans_are_refused_by_key(update, words):
    with pytest.raises(ScenarioError) as err:
        make_scenario(**YEAR).replace(**update)
    assert words in str(err.value)


# ---- the fleet's life: resale and presets ----------------------------------------------------


def test_resale_with_no_uncertainty_is_the_share_of_the_price_and_taxed_as_a_gain():
    """Hashprice that does not move (no growth, no volatility): each machine fetches
    value_share x its price; the gain over book value is taxed with the last year's profit,
    and the NPV gets the sale's cash discounted from the last day."""
    sc = make_scenario(**YEAR, **{"regulation.profit_tax_rate": 0.2, "market.btc_price_usd": 400_000})
    base = run(sc).per_path
    sold = run(sc.replace(**{"farm.resale": {"value_share": 0.6, "hashprice_elasticity": 2.0}})).per_path
    machines = 100 * 3000.0
    assert_allclose(sold["resale_usd"], 0.6 * machines, rtol=1e-9)  # (the hashprice ratio is 1)
    book = machines * (1 - 365 / (3 * 365))
    assert_allclose(sold["resale_gain_usd"], 0.6 * machines - book, rtol=1e-9)
    gain = 0.6 * machines - book
    assert_allclose(sold["profit_usd"] - base["profit_usd"], 0.8 * gain, rtol=1e-9)  # the year is taxable
    assert_allclose(sold["npv_usd"] - base["npv_usd"], 0.6 * machines - 0.2 * gain, rtol=1e-9)  # no discounting


def test_resale_follows_hashprice_with_its_elasticity_and_floor():
    """A network that grows 50 % a year with no noise: hashprice falls; the resale price
    falls as (H_end / H_0) ^ elasticity, never below the floor."""
    sc = make_scenario(**YEAR, **{"market.hashrate_growth_per_year": 0.5})
    hashprice = run(sc).daily_mean["hashprice_usd_per_th_day"]
    ratio = hashprice[-30:].mean() / hashprice[0]
    assert ratio < 0.8
    for elasticity, floor in ((1.0, 0.0), (1.5, 0.0), (3.0, 0.4)):
        resale = {"value_share": 0.7, "hashprice_elasticity": elasticity, "floor_share": floor}
        out = run(sc.replace(**{"farm.resale": resale})).per_path
        assert_allclose(out["resale_usd"], 100 * 3000 * max(floor, 0.7 * ratio**elasticity), rtol=1e-9)


def test_a_fleet_row_names_a_model_of_the_catalogue():
    sc = make_scenario(**{"farm.fleet": [{"model": "antminer s21", "count": 10}]})
    row = sc.farm.fleet[0]
    assert (row.hashrate_th.value, row.efficiency_j_per_th.value) == (200.0, 17.5)
    tuned = make_scenario(**{"farm.fleet": [{"model": "S19 XP", "count": 10, "efficiency_j_per_th": 23.0}]})
    assert (tuned.farm.fleet[0].hashrate_th.value, tuned.farm.fleet[0].efficiency_j_per_th.value) == (140.0, 23.0)
    with pytest.raises(ScenarioError) as err:
        make_scenario(**{"farm.fleet": [{"model": "Antminer Z99", "count": 10}]})
    assert "farm.fleet.0.hashrate_th" in str(err.value) and "Antminer S21" in str(err.value)


def test_an_upgrade_on_a_day_with_no_uncertainty():
    """The one row of S-class machines (200 TH/s, 20 J/TH) swapped on day 100 for machines of
    250 TH/s at 16 J/TH on the same power: 25 % more hashrate after 5 days down; the old
    sold at 40 % of their price, the new bought and depreciated from the swap."""
    sc = make_scenario(**YEAR)
    base = run(sc).per_path
    upgrade = {
        "to_model": "X2",
        "hashrate_th": 250,
        "efficiency_j_per_th": 16,
        "unit_price_usd": 5000,
        "on_day": 100,
        "swap_days": 5,
        "old_value_share": 0.4,
    }
    out = run(sc.replace(**{"farm.upgrade": upgrade})).per_path
    btc_day = base["btc_mined"][0] / 365
    assert_allclose(out["btc_mined"], btc_day * (100 + 0 * 5 + 1.25 * 260), rtol=1e-9)
    assert_array_equal(out["upgrade_day"], 101.0)
    new_count = 100 * 200 * 20 / (250 * 16)
    assert_allclose(out["upgrade_capex_usd"], new_count * 5000, rtol=1e-12)
    assert_allclose(out["upgrade_sale_usd"], 0.4 * 100 * 3000, rtol=1e-12)  # hashprice did not move
    dep_days = 3 * 365
    assert_allclose(
        out["depreciation_usd"] - base["depreciation_usd"], 265 * (new_count * 5000 - 100 * 3000) / dep_days, rtol=1e-9
    )
    # the NPV (no discounting) moves by the cash: the sale less the new capex, the extra coins' margin, the tax
    assert out["npv_usd"][0] != base["npv_usd"][0]


def test_an_upgrade_on_a_hashprice_trigger_happens_on_the_first_day_below_it():
    sc = make_scenario(**YEAR, **{"market.hashrate_growth_per_year": 0.5})
    hashprice = run(sc).daily_mean["hashprice_usd_per_th_day"]
    window = 30
    trailing = np.array([hashprice[max(0, t - window + 1) : t + 1].mean() for t in range(365)])
    trigger = float(trailing[200])  # crossed on day 200 or just before (hashprice falls steadily)
    expected = int(np.argmax(trailing < trigger * 1.0000001))
    upgrade = {
        "to_model": "Antminer S21",
        "unit_price_usd": 4000,
        "when_hashprice_below_usd_per_th_day": trigger * 1.0000001,
        "not_before_day": 50,
    }
    out = run(sc.replace(**{"farm.upgrade": upgrade})).per_path
    assert_array_equal(out["upgrade_day"], expected + 1.0)
    never = run(sc.replace(**{"farm.upgrade": {**upgrade, "when_hashprice_below_usd_per_th_day": 1e-9}})).per_path
    assert np.isnan(never["upgrade_day"]).all()
    assert_array_equal(never["upgrade_capex_usd"], 0.0)


@pytest.mark.parametrize(
    "upgrade, words",
    [
        ({"to_model": "S21", "unit_price_usd": 1}, "farm.upgrade.on_day"),
        (
            {"to_model": "S21", "unit_price_usd": 1, "on_day": 10, "when_hashprice_below_usd_per_th_day": 0.03},
            "exactly one",
        ),
        ({"to_model": "S21", "unit_price_usd": 1, "on_day": 400}, "farm.upgrade.on_day"),
        ({"to_model": "S21", "unit_price_usd": 1, "on_day": 10, "replaces": 3}, "farm.upgrade.replaces"),
        ({"to_model": "Z99", "unit_price_usd": 1, "on_day": 10}, "not in the catalogue"),
    ],
)
def test_bad_upgrades_are_refused_by_key(upgrade, words):
    with pytest.raises(ScenarioError) as err:
        make_scenario(**YEAR).replace(**{"farm.upgrade": upgrade})
    assert words in str(err.value)


def test_debt_service_coverage_of_a_bullet_loan_by_hand():
    """No tax, coins sold the day they are mined: the same cash every day, c. A bullet loan
    pays r L a month; the quarters of 91, 92, 91 and 91 days each hold three payments, so the
    lowest coverage is 91 c / (3 r L); a covenant above it is breached, one below is not."""
    sc = make_scenario(
        **YEAR,
        **{
            "regulation.profit_tax_rate": 0.0,
            "regulation.aifc_settlement_lag_days": 0,
            "market.btc_price_usd": 400_000,
        },
    )
    base = run(sc).per_path
    c = (base["revenue_usd"][0] - base["cash_cost_usd"][0]) / 365
    loan = {"loan_usd": 1e6, "loan_rate_per_year": 0.12, "loan_repayment": "bullet", "loan_term_months": 24}
    expected = 91 * c / (3 * 0.01 * 1e6)
    out = run(sc.replace(financing={**loan, "dscr_covenant": expected * 1.01})).per_path
    assert_allclose(out["min_dscr"], expected, rtol=1e-9)
    assert_array_equal(out["covenant_breach"], 1.0)
    calm = run(sc.replace(financing={**loan, "dscr_covenant": expected * 0.99})).per_path
    assert_array_equal(calm["covenant_breach"], 0.0)
