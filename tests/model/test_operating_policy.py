"""Operating policy: economic shut-off, machine failures and replacements, ageing chips.

Closed forms on the EXACT farm (no uncertainty) and metamorphic checks on common random numbers.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose

import kzsim
from kzsim.engine.run import run_paths
from tests.conftest import make_scenario
from tests.model.test_exact import hand_computed

RTOL = 1e-12


def test_failures_and_lead_time_take_the_expected_share_of_hours():
    rate, lead = 2.0, 20.0  # a harsh case, so the share is large enough to see
    sc = make_scenario(**{"farm.hardware_failure_rate_per_year": rate, "farm.replacement_lead_time_days": lead})
    pp = run_paths(sc, paths=2).per_path
    a, b = rate / 365, 1 / lead
    t = np.arange(10)
    failed = a / (a + b) * (1 - np.exp(-(a + b) * t))
    assert_allclose(pp["up_fraction"], (1 - failed).mean(), rtol=RTOL)
    assert_allclose(pp["downtime_hardware_hours"], 24 * failed.sum(), rtol=RTOL)
    h = hand_computed(10, np.full(10, 100000.0))
    assert_allclose(pp["btc_mined"], h["btc_day"] * (1 - failed).sum(), rtol=RTOL)
    # each failure costs a machine at unit price: 100 machines x $3,000 x rate / 365 a day, of those hashing
    assert_allclose(pp["hardware_replacement_usd"], (300_000 * a * (1 - failed)).sum(), rtol=RTOL)


def test_a_warranty_makes_replacements_free_but_not_the_downtime():
    sc = make_scenario(**{"farm.hardware_failure_rate_per_year": 0.5, "farm.replacement_cost_share": 0.0})
    pp = run_paths(sc, paths=1).per_path
    assert pp["hardware_replacement_usd"][0] == 0.0
    assert pp["downtime_hardware_hours"][0] > 0.0


def test_ageing_chips_mine_less_at_the_same_power():
    deg = 0.1
    sc = make_scenario(**{"farm.efficiency_degradation_per_year": deg})
    pp = run_paths(sc, paths=1).per_path
    h = hand_computed(10, np.full(10, 100000.0))
    assert_allclose(pp["btc_mined"], h["btc_day"] * ((1 + deg) ** (-np.arange(10) / 365)).sum(), rtol=RTOL)
    assert_allclose(pp["energy_mwh"], 10 * h["energy_day"], rtol=RTOL)


def baseline(**sets):
    return make_scenario(
        **{
            "simulation.horizon_days": 120,
            "market.btc_volatility_per_year": 0.8,
            "market.btc_price_usd": 70_000,  # near break-even, so both kinds of days happen
            "grid.outage_rate_per_year": 6,
            "grid.outage_duration_hours": {"dist": "lognormal", "median": 4, "sigma": 1},
            **sets,
        }
    )


# coins sold the same day at the day's price, no lot rounding, no tax: the decision's view is the outcome
SEES_ALL = {
    "regulation.aifc_settlement_lag_days": 0,
    "regulation.profit_tax_rate": 0.0,
    "electricity.lot_fee_kzt": 0.0,
    "electricity.lot_admin_cost_kzt": 0.0,
}


def test_margin_avoided_is_exactly_the_profit_added_when_the_decision_sees_everything():
    sees_all = SEES_ALL
    off = run_paths(baseline(**sees_all), paths=300).per_path
    on = run_paths(
        baseline(**sees_all, **{"farm.economic_shutoff": True, "farm.shutoff_restart_cost_usd": 50.0}), paths=300
    ).per_path
    assert on["economic_shutoff_days"].sum() > 0 and (on["economic_shutoff_days"] < 120).any()
    gained = on["profit_usd"] - off["profit_usd"]
    assert_allclose(gained, on["economic_shutoff_margin_avoided_usd"], rtol=1e-9, atol=1e-6)
    assert np.all(on["economic_shutoff_days"] <= off["losing_days"])
    assert on["shutoff_restart_usd"].sum() > 0
    assert_allclose(on["shutoff_restart_usd"] % 50.0, 0.0, atol=1e-9)


def test_shutoff_value_is_the_paired_gain_in_profit_after_tax():
    from kzsim.analysis.sensitivity import shutoff_value

    sc = baseline(**{"farm.economic_shutoff": True})
    value = shutoff_value(sc, paths=300)
    off = run_paths(sc.replace(**{"farm.economic_shutoff": False}), paths=300).per_path
    on = run_paths(sc, paths=300).per_path
    assert math.isclose(value["gain_usd"]["mean"], float((on["profit_usd"] - off["profit_usd"]).mean()))
    assert value["days_idle_mean"] == float(on["economic_shutoff_days"].mean())


def test_free_restarts_make_shutoff_never_worse_when_the_decision_sees_everything():
    off = run_paths(baseline(**SEES_ALL), paths=300).per_path
    on = run_paths(baseline(**SEES_ALL, **{"farm.economic_shutoff": True}), paths=300).per_path
    assert np.all(on["profit_before_tax_usd"] >= off["profit_before_tax_usd"] - 1e-6)
    assert np.all(on["economic_shutoff_margin_avoided_usd"] >= 0)
    # idled hours are exactly the hours of the idle days that the other causes left
    assert np.all(on["downtime_economic_hours"] <= 24 * on["economic_shutoff_days"] + 1e-9)


def test_no_shutoff_when_mining_always_pays():
    sc = make_scenario(**{"farm.economic_shutoff": True, "market.btc_price_usd": 10_000_000})
    pp = run_paths(sc, paths=1).per_path
    assert pp["economic_shutoff_days"][0] == 0 and pp["losing_days"][0] == 0


def test_a_farm_that_always_loses_idles_every_day():
    sc = make_scenario(**{"farm.economic_shutoff": True, "market.btc_price_usd": 100})
    res = kzsim.simulate(sc)
    pp = res.run.per_path
    h = hand_computed(10, np.full(10, 100.0))
    assert pp["economic_shutoff_days"][0] == 10 and pp["btc_mined"][0] == 0.0
    # the avoided loss: power, mining fee, lots and their compliance share, less the coins' value, for 10 days
    lots_per_kwh = (500 + 300) / 500 / 1000
    cost_hour = h["facility_mw"] * 1000 * ((25 + 1) / 500 + lots_per_kwh) * 1.1
    sale = 0.75 * (1 - 0.006) + 0.25 * (1 - 0.001)
    margin_hour = h["btc_day"] / 24 * 100 * sale - cost_hour
    assert_allclose(pp["economic_shutoff_margin_avoided_usd"], -10 * 24 * margin_hour, rtol=RTOL)
    assert math.isclose(res.summary["economic_shutoff"]["days_mean"], 10.0)
