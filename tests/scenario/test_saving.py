"""Writing scenarios back to YAML (Scenario.to_yaml, kzsim.save_scenario): what loads back is
equal, on every shipped scenario and on generated ones; files are written whole or not at all."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kzsim
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.schema import Scenario, scenario_from_dict
from tests.conftest import SCENARIOS
from tests.properties.test_properties import SETTINGS, dist_in, scenarios

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def round_trip(sc: Scenario, tmp_path) -> Scenario:
    path = tmp_path / "saved.yaml"
    if path.exists():
        path.unlink()
    sc.to_yaml(path)
    return kzsim.load_scenario(path)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_loads_back_equal(path, tmp_path):
    sc = kzsim.load_scenario(path)
    back = round_trip(sc, tmp_path)
    assert back.to_dict() == sc.to_dict()
    assert back.description == sc.description and back.description.strip()
    keys = list(back.to_dict())
    assert keys == [k for k in Scenario.model_fields if k in keys]  # the schema's order


def test_the_text_keeps_the_schemas_order_and_short_distributions():
    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml")
    text = sc.to_yaml()
    assert text.startswith("# kzsim scenario 'kz-2025-baseline', written by kzsim")
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "#", "-"))]
    schema = [k for k in Scenario.model_fields if k in keys]
    assert keys == schema
    assert "  cooling_overhead_fraction: {dist: uniform, low: 0.08, high: 0.15}" in text
    assert "  pool_fee_share: 0.025" in text  # a constant is a plain number


@st.composite
def scenarios_with_decisions(draw):
    data = draw(scenarios())
    if draw(st.booleans()):
        data["hedges"] = [
            {"type": "hashprice_swap", "share": draw(dist_in(0, 1)), "fixed_usd_per_th_day": draw(dist_in(0, 0.1))},
            {
                "type": "btc_put",
                "notional_btc": draw(dist_in(0, 100)),
                "strike_usd": draw(st.floats(1000, 200_000)),
                "expiry_days": 1,
                "implied_volatility_per_year": draw(dist_in(0, 2)),
            },
        ]
    if draw(st.booleans()):
        data["financing"] = {
            "loan_usd": draw(dist_in(0, 1e7)),
            "loan_rate_per_year": draw(dist_in(0, 0.3)),
            "loan_repayment": draw(st.sampled_from(["amortising", "bullet"])),
        }
    return data


@settings(SETTINGS, max_examples=120)
@given(scenarios_with_decisions())
def test_generated_scenarios_load_back_equal(tmp_path_factory, data):
    try:
        sc = scenario_from_dict(data)
    except ScenarioError:
        assume(False)
    back = round_trip(sc, tmp_path_factory.mktemp("s"))
    assert back.to_dict() == sc.to_dict()


def test_saving_never_replaces_a_file_unless_asked(tmp_path):
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml")
    path = tmp_path / "mine.yaml"
    path.write_text("my own notes\n")
    with pytest.raises(FileExistsError):
        kzsim.save_scenario(sc, path)
    assert path.read_text() == "my own notes\n"
    assert os.listdir(tmp_path) == ["mine.yaml"]  # no temporary left behind
    kzsim.save_scenario(sc.replace(**{"electricity.tariff_kzt_per_kwh": 31}), path, overwrite=True)
    assert kzsim.load_scenario(path).electricity.tariff_kzt_per_kwh.value == 31
    assert yaml.safe_load(path.read_text())["name"] == "small-operator"
