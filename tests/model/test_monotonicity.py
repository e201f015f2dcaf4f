"""Metamorphic tests on common random numbers: a change moves every path the same way."""

from __future__ import annotations

import numpy as np
import pytest

from kzsim.engine.run import run_paths
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS

PATHS = 1500


@pytest.fixture(scope="module")
def base():
    # the baseline on 100 days across a year end, with one flat mining-fee bracket: the real
    # table is progressive (cheaper power pays a higher fee), so a higher tariff can lower the
    # total price near a bracket edge - a notch of the law, not of the simulator
    return load_scenario(
        SCENARIOS / "kz-2025-baseline.yaml",
        {
            "simulation.horizon_days": 100,
            "simulation.start_date": "2026-10-01",
            "electricity.mining_fee_brackets": [{"min_price_kzt_per_kwh": 0, "fee_kzt_per_kwh": 1}],
        },
    )


@pytest.fixture(scope="module")
def base_run(base):
    return run_paths(base, paths=PATHS)


def test_higher_tariff_lowers_profit_on_every_path(base, base_run):
    higher = base.replace(**{"electricity.tariff_kzt_per_kwh": {"dist": "pert", "low": 22, "mode": 27, "high": 37}})
    run = run_paths(higher, paths=PATHS)
    used_power = base_run.per_path["energy_mwh"] > 0
    assert used_power.all()
    assert np.all(run.per_path["profit_usd"] < base_run.per_path["profit_usd"])
    assert np.all(run.per_path["energy_mwh"] == base_run.per_path["energy_mwh"])  # same draws, same hours


def test_wider_aifc_spread_lowers_revenue_on_every_path(base, base_run):
    wider = base.replace(**{"regulation.aifc_spread_share": 0.05})
    run = run_paths(wider, paths=PATHS)
    assert np.all(run.per_path["revenue_usd"] < base_run.per_path["revenue_usd"])
    assert np.all(run.per_path["profit_usd"] <= base_run.per_path["profit_usd"])


def test_higher_tax_rate_never_raises_profit(base, base_run):
    run = run_paths(base.replace(**{"regulation.profit_tax_rate": 0.3}), paths=PATHS)
    assert np.all(run.per_path["profit_usd"] <= base_run.per_path["profit_usd"])
    assert np.array_equal(run.per_path["profit_before_tax_usd"], base_run.per_path["profit_before_tax_usd"])


def test_more_quota_never_mines_less(base, base_run):
    run = run_paths(
        base.replace(**{"electricity.quota_fraction": 1.0, "electricity.winter_quota_multiplier": 1.0}), paths=PATHS
    )
    assert np.all(run.per_path["btc_mined"] >= base_run.per_path["btc_mined"])
    assert np.all(run.per_path["downtime_quota_hours"] == 0)


def test_accounting_identities_hold_on_every_path(base_run):
    pp = base_run.per_path
    costs = pp["cash_cost_usd"] + pp["depreciation_usd"]
    np.testing.assert_allclose(
        pp["revenue_usd"] - costs - pp["profit_tax_usd"], pp["profit_usd"], rtol=1e-9, atol=1e-6 * np.abs(costs).max()
    )
    lines = ("energy_cost_usd", "mining_fee_usd", "procurement_fee_usd", "fixed_opex_usd", "compliance_usd")
    np.testing.assert_allclose(sum(pp[k] for k in lines), pp["cash_cost_usd"], rtol=1e-12)
    np.testing.assert_allclose(pp["revenue_aifc_usd"] + pp["revenue_market_usd"], pp["revenue_usd"], rtol=1e-12)
    hours = sum(pp[f"downtime_{c}_hours"] for c in ("grid", "payment", "hardware", "quota"))
    np.testing.assert_allclose(hours / 24 + pp["up_fraction"] * 100, 100, rtol=1e-12)
    assert np.all((pp["up_fraction"] >= 0) & (pp["up_fraction"] <= 1))
    assert np.all(pp["btc_mined"] >= 0)
    np.testing.assert_allclose(pp["btc_sold_aifc"] / pp["btc_mined"], 0.75, rtol=1e-12)
