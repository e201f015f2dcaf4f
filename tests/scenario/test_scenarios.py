"""The shipped scenarios: valid, runnable, and every number says where it comes from."""

from __future__ import annotations

import re

import numpy as np
import pytest

import kzsim
from tests.conftest import SCENARIOS

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
EXPECTED = {
    "kz-2025-baseline",
    "article-2025",
    "kz-2024-rules",
    "winter-blackout-stress",
    "plan-70-30",
    "small-operator",
    "halving-2028",
    "kz-2025-hedged",
}


def test_the_eight_scenarios_are_shipped():
    assert {p.stem for p in SHIPPED} == EXPECTED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_scenario_runs(path):
    sc = kzsim.load_scenario(path)
    assert sc.name == path.stem
    res = kzsim.simulate(sc, paths=64)
    pp = res.run.per_path
    for key, value in pp.items():
        empty_when_never = ("payback_days", "payback_btc_days", "cash_out_day", "margin_call_day", "irr_below_hurdle")
        if key not in (
            "cash_cost_per_btc_usd",
            "all_in_cost_per_btc_usd",
            "min_dscr",
            "irr_per_year",
            *empty_when_never,
        ):
            assert np.all(np.isfinite(value)), key
    assert np.all(pp["btc_mined"] > 0)


NUMBER = re.compile(r"^\s*-?\s*[a-z_0-9]+:\s*[-\d.{]")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_number_carries_a_source_or_a_reason(path):
    lines = path.read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") or not NUMBER.search(line.split("#")[0]):
            continue
        if line.strip().startswith("- {min_price"):  # bracket rows: sourced on the table's key line
            continue
        key = line.split(":")[0].strip(" -")
        if key in {
            "paths",
            "seed",
            "btc_kzt_correlation",
            "grid_stress_multiplier",
            "price_model",
            "treasury_policy",
            "between",
        }:
            continue  # run settings and neutral defaults
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if "#" not in line and not nxt.lstrip().startswith("#"):
            missing.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert not missing, "numbers without a source comment:\n" + "\n".join(missing)
