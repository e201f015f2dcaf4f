"""Property tests: invariants of the simulation on scenarios generated across the schema,
and the message format on generated invalid ones (hypothesis, derandomised)."""

from __future__ import annotations

import copy
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kzsim.engine.draws import inputs_for
from kzsim.model.paths import Calendar, simulate_paths
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.schema import scenario_from_dict
from tests.conftest import EXACT
from tests.reference.numpy_model import simulate_paths as reference_paths

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def dist_in(low: float, high: float):
    """A constant or a distribution whose support lies in [low, high]."""
    span = high - low
    point = st.floats(low, high, allow_nan=False)

    @st.composite
    def three_point(draw, kind):
        a = draw(st.floats(low, low + 0.45 * span))
        c = draw(st.floats(low + 0.55 * span, high))
        b = draw(st.floats(a, c))
        return {"dist": kind, "low": a, "mode": b, "high": c}

    @st.composite
    def uniform(draw):
        a = draw(st.floats(low, low + 0.45 * span))
        return {"dist": "uniform", "low": a, "high": draw(st.floats(low + 0.55 * span, high))}

    @st.composite
    def beta(draw):
        return {"dist": "beta", "a": draw(st.floats(0.5, 8)), "b": draw(st.floats(0.5, 8)), "low": low, "high": high}

    @st.composite
    def truncnorm(draw):
        return {
            "dist": "normal",
            "mean": draw(point),
            "sd": draw(st.floats(0.01 * span, span)),
            "low": low,
            "high": high,
        }

    return st.one_of(point, uniform(), three_point("triangular"), three_point("pert"), beta(), truncnorm())


def positive(low: float, high: float):
    """Constants and distributions on (0, inf) or [low, high] with low > 0."""

    @st.composite
    def lognormal(draw):
        return {"dist": "lognormal", "median": draw(st.floats(low, high)), "sigma": draw(st.floats(0.01, 1.0))}

    @st.composite
    def gamma(draw):
        mean = draw(st.floats(low, high))
        shape = draw(st.floats(2.0, 50.0))
        return {"dist": "gamma", "shape": shape, "scale": mean / shape}

    return st.one_of(dist_in(low, high), lognormal(), gamma())


@st.composite
def scenarios(draw):
    d = copy.deepcopy(EXACT)
    sim, farm, market = d["simulation"], d["farm"], d["market"]
    elec, grid, reg = d["electricity"], d["grid"], d["regulation"]
    sim["horizon_days"] = draw(st.integers(1, 60))
    sim["paths"] = draw(st.integers(1, 40))
    sim["seed"] = draw(st.integers(0, 2**32))
    year = draw(st.integers(2010, 2130))
    sim["start_date"] = f"{year}-{draw(st.integers(1, 12)):02d}-{draw(st.integers(1, 28)):02d}"
    farm["fleet"] = [
        {
            "model": f"m{i}",
            "count": draw(st.integers(1, 2000)),
            "hashrate_th": draw(positive(10, 500)),
            "efficiency_j_per_th": draw(positive(10, 100)),
            "unit_price_usd": draw(dist_in(0, 10_000)),
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    farm["cooling_overhead_fraction"] = draw(dist_in(0, 0.5))
    farm["hardware_availability_fraction"] = draw(dist_in(0, 1))
    farm["restart_hours"] = draw(dist_in(0, 24))
    farm["pool_fee_share"] = draw(dist_in(0, 0.1))
    farm["fixed_opex_usd_per_month"] = draw(dist_in(0, 1e6))
    farm["site_capex_usd"] = draw(dist_in(0, 1e7))
    farm["depreciation_years"] = draw(st.floats(0.1, 10))
    farm["discount_rate_per_year"] = draw(dist_in(0, 0.5))
    market["btc_price_usd"] = draw(positive(1_000, 500_000))
    market["btc_drift_per_year"] = draw(dist_in(-1, 1))
    market["btc_volatility_per_year"] = draw(dist_in(0, 1.5))
    market["network_hashrate_eh"] = draw(positive(1, 5_000))
    market["start_block_height"] = draw(st.integers(0, 2_000_000))
    market["hashrate_growth_per_year"] = draw(dist_in(-0.5, 1))
    market["hashrate_volatility_per_year"] = draw(dist_in(0, 1))
    market["hashrate_price_elasticity"] = draw(dist_in(0, 2))
    market["fees_btc_per_block"] = draw(dist_in(0, 2))
    market["fees_log_volatility"] = draw(dist_in(0, 2))
    market["usd_kzt"] = draw(positive(100, 1_000))
    market["kzt_volatility_per_year"] = draw(dist_in(0, 0.5))
    market["btc_kzt_correlation"] = draw(st.floats(-1, 1))
    elec["tariff_kzt_per_kwh"] = draw(dist_in(0, 80))
    elec["winter_tariff_premium_share"] = draw(dist_in(0, 1))
    elec["tariff_indexation_per_year"] = draw(dist_in(-0.2, 0.5))
    elec["procurement_mode"] = draw(st.sampled_from(["lots", "day_ahead"]))
    elec["lot_size_mwh"] = draw(positive(0.1, 10))
    elec["payment_failure_probability"] = draw(dist_in(0, 0.05))  # both the sparse (<= 2 %) and daily branches
    elec["payment_failure_idle_hours"] = draw(positive(0.1, 48))
    elec["day_ahead_price_volatility"] = draw(dist_in(0, 0.5))
    elec["day_ahead_floor_kzt_per_kwh"] = draw(dist_in(0, 30))
    elec["quota_fraction"] = draw(dist_in(0, 1))
    elec["winter_quota_multiplier"] = draw(dist_in(0, 1))
    if draw(st.booleans()):
        elec["plan_70_30"] = {
            "build_probability": draw(dist_in(0, 1)),
            "online_delay_days": draw(dist_in(0, 100)),
            "plant_capacity_mw": draw(dist_in(0, 2000)),
            "farm_allocation_share": draw(dist_in(0, 0.05)),
        }
    grid["outage_rate_per_year"] = draw(dist_in(0, 200))
    grid["winter_rate_multiplier"] = draw(dist_in(0, 5))
    grid["outage_duration_hours"] = draw(positive(0.5, 100))
    grid["outage_max_duration_hours"] = draw(st.floats(1, 720))
    reg["aifc_sale_share"] = draw(dist_in(0, 1))
    reg["aifc_settlement_lag_days"] = draw(st.integers(0, 90))
    reg["treasury_policy"] = draw(st.sampled_from(["sell", "hold"]))
    reg["profit_tax_rate"] = draw(dist_in(0, 0.5))
    reg["compliance_opex_share"] = draw(dist_in(0, 0.3))
    # market models and operating policy (issue 3)
    model = draw(st.sampled_from(["gbm", "jump_diffusion", "garch"]))
    market["price_model"] = model
    if model == "jump_diffusion":
        market["jump_diffusion"] = {
            "jumps_per_year": draw(dist_in(0, 100)),
            "jump_mean_log": draw(dist_in(-0.3, 0.3)),
            "jump_volatility_log": draw(dist_in(0, 0.3)),
        }
    elif model == "garch":
        alpha = draw(st.floats(0.0, 0.3))
        market["garch"] = {
            "long_run_volatility_per_year": draw(dist_in(0, 1.5)),
            "alpha": alpha,
            "beta": draw(st.floats(0.0, 0.99 - alpha)),
        }
    market["hashrate_responds_to"] = draw(st.sampled_from(["price", "hashprice"]))
    market["fees_persistence_days"] = draw(dist_in(0, 60))
    market["fees_spike_rate_per_year"] = draw(dist_in(0, 50))
    market["fees_spike_extra"] = draw(positive(0.1, 20))
    farm["hardware_failure_rate_per_year"] = draw(dist_in(0, 2))
    farm["replacement_lead_time_days"] = draw(dist_in(0, 90))
    farm["efficiency_degradation_per_year"] = draw(dist_in(0, 0.2))
    farm["economic_shutoff"] = draw(st.booleans())
    farm["shutoff_restart_cost_usd"] = draw(dist_in(0, 10_000))
    return d


MAY_BE_NAN = {"cash_cost_per_btc_usd", "all_in_cost_per_btc_usd", "payback_days"}


@SETTINGS
@given(scenarios())
def test_invariants_hold_on_every_valid_scenario(data):
    sc = scenario_from_dict(data, source="<hypothesis>")
    cal = Calendar.of(sc)
    n, days = sc.simulation.paths, sc.simulation.horizon_days
    p, draws = inputs_for(sc, cal, sc.simulation.seed, 0, n)
    pp, daily = simulate_paths(sc, cal, p, draws)

    assert np.all((draws.grid_hours >= 0) & (draws.grid_hours <= 24))
    up = daily["up_fraction"]
    assert np.all((up >= 0) & (up <= 1 + 1e-12))
    hours = sum(pp[f"downtime_{c}_hours"] for c in ("grid", "payment", "hardware", "quota", "economic"))
    assert np.all(hours >= 0) and np.all(hours <= 24 * days * (1 + 1e-12))
    np.testing.assert_allclose(hours + pp["up_fraction"] * 24 * days, 24 * days, rtol=1e-9)
    assert np.all(pp["energy_mwh"] <= pp["facility_power_mw"] * 24 * days * (1 + 1e-12))
    assert np.all(pp["btc_mined"] >= 0)
    scale = np.abs(pp["revenue_usd"]) + pp["cash_cost_usd"] + pp["depreciation_usd"] + 1.0
    residual = (
        pp["revenue_usd"] - pp["cash_cost_usd"] - pp["depreciation_usd"] - pp["profit_tax_usd"] - pp["profit_usd"]
    )
    assert np.all(np.abs(residual) <= 1e-9 * scale)
    mined = pp["btc_mined"] > 0
    assert np.all(np.isfinite(pp["cash_cost_per_btc_usd"][mined]))
    for key, value in pp.items():
        if key not in MAY_BE_NAN:
            assert not np.any(np.isnan(value)), key
    for key, value in daily.items():
        assert not np.any(np.isnan(value)), key
    ref, ref_daily = reference_paths(sc, cal, p, draws)  # the independent numpy reference's bits
    for key in ref:
        np.testing.assert_array_equal(pp[key], ref[key], err_msg=key)
    for key in ref_daily:
        np.testing.assert_array_equal(daily[key], ref_daily[key], err_msg=key)


SHARE_FIELDS = [
    ("regulation", "aifc_sale_share"),
    ("regulation", "profit_tax_rate"),
    ("farm", "pool_fee_share"),
    ("electricity", "quota_fraction"),
    ("electricity", "payment_failure_probability"),
    ("farm", "hardware_availability_fraction"),
]
LINE = re.compile(r"^<hypothesis>: [\w.]+: .+ \(allowed: .+\)$")


@st.composite
def invalid_scenarios(draw):
    d = copy.deepcopy(EXACT)
    kind = draw(st.sampled_from(["share", "unknown", "negative", "type"]))
    if kind == "share":
        section, key = draw(st.sampled_from(SHARE_FIELDS))
        d[section][key] = draw(st.one_of(st.floats(1.0001, 1e6), st.floats(-1e6, -0.0001)))
        return d, f"{section}.{key}"
    if kind == "unknown":
        section = draw(st.sampled_from(["simulation", "farm", "market", "electricity", "grid", "regulation"]))
        name = draw(st.from_regex(r"[a-z]{3,12}_zz", fullmatch=True))
        d[section][name] = 1
        return d, f"{section}.{name}"
    if kind == "negative":
        key = draw(st.sampled_from(["horizon_days", "paths"]))
        d["simulation"][key] = draw(st.integers(-(10**6), 0))
        return d, f"simulation.{key}"
    d["market"]["btc_price_usd"] = draw(st.text(min_size=1, max_size=10).filter(lambda s: not _is_number(s)))
    return d, "market.btc_price_usd"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@SETTINGS
@given(invalid_scenarios())
def test_invalid_scenarios_are_refused_with_the_message_format(case):
    data, key = case
    try:
        scenario_from_dict(data, source="<hypothesis>")
    except ScenarioError as exc:
        assert all(LINE.match(line) for line in exc.lines), exc.lines
        assert any(line.startswith(f"<hypothesis>: {key}: ") for line in exc.lines), exc.lines
    else:
        raise AssertionError(f"accepted an invalid scenario ({key})")
