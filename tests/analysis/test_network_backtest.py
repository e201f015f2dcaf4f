"""Back-test of the network and fees: the documented table, bands that are nested shares,
and a process too narrow for its history caught."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from kzsim.analysis import network_backtest as nbt
from kzsim.scenario.history import DIFFICULTY_NAMES, FEE_NAMES, read_daily_csv
from tests.conftest import ROOT, SHARED_DATA

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "btc_difficulty_daily.csv").exists(), reason="shared data not available"
)
START = dt.date(2016, 1, 1)


def _files():
    d = read_daily_csv(
        SHARED_DATA / "btc_difficulty_daily.csv", value_names=DIFFICULTY_NAMES, start=START, fill="previous"
    )
    f = read_daily_csv(SHARED_DATA / "btc_fees_daily_coinmetrics.csv", value_names=FEE_NAMES, start=START)
    return d, f


def test_documented_network_coverage_table_is_reproduced():
    d, f = _files()
    p = read_daily_csv(SHARED_DATA / "btc_usd_daily.csv")
    text = nbt.report(d.dates, d.values, f.dates, f.values, p.dates, p.values, n_paths=1000, seed=20260101)
    doc = (ROOT / "docs" / "market.md").read_text()
    block = re.search(r"<!-- network-backtest:begin -->\n(.*)<!-- network-backtest:end -->", doc, re.S).group(1)
    assert block == text, "docs/market.md is out of date: rerun the kzsim backtest command it quotes"


def test_bands_are_nested_shares_and_origins_are_counted():
    d, _ = _files()
    rows = nbt.backtest_network(d.dates, d.values, n_paths=200)
    assert [r.horizon_days for r in rows] == list(nbt.HORIZONS_DAYS)
    for r in rows:
        assert 0.0 <= r.covered["25-75 %"] <= r.covered["5-95 %"] <= 1.0
        assert r.below["5-95 %"] <= 1.0 - r.covered["5-95 %"] + 1e-12
        assert r.effective_origins <= r.origins


def test_a_network_without_volatility_or_drawdowns_is_caught_as_too_narrow():
    d, _ = _files()
    i = 3 * 365
    keys = {
        "hashrate_growth_per_year": 0.3,
        "hashrate_volatility_per_year": 0.0,
        "hashrate_drawdown_rate_per_year": 0.0,
    }
    sims, real = [], []
    for origin in range(i, d.values.size - 182, 91):
        sims.append(nbt.simulate_difficulty(keys, float(d.values[origin]), 183, 50, 1, "narrow")[182])
        real.append(float(d.values[origin + 182]))
    row = nbt._coverage("difficulty", 182, sims, real, d.values.size - i)
    assert row.covered["5-95 %"] < 0.3  # a band of zero width holds almost nothing


def test_backtest_command_adds_the_network_and_names_a_bad_file():
    from click.testing import CliRunner

    from kzsim.cli import main

    args = ["backtest", str(SHARED_DATA / "btc_usd_daily.csv"), "--split", "2022-12-31", "--paths", "200"]
    network = ["--difficulty-csv", str(SHARED_DATA / "btc_difficulty_daily.csv")]
    result = CliRunner().invoke(main, [*args, *network])  # 2009's zeros, before --network-from
    assert result.exit_code == 2 and "btc_difficulty_daily.csv" in result.output and "<= 0" in result.output
    result = CliRunner().invoke(main, [*args, *network, "--network-from", "2018-01-01"])
    assert result.exit_code == 0, result.output
    assert "| difficulty | 42 d |" in result.output and "fees a day" not in result.output


def test_hashprice_of_history_is_what_the_model_computes_for_a_day():
    """One day by hand: 2025-12-31, subsidy 3.125 after the 2024 halving."""
    assert nbt.subsidy_btc(np.array(["2016-07-08", "2016-07-09", "2025-12-31"], dtype="datetime64[D]")).tolist() == [
        25.0,
        12.5,
        3.125,
    ]
    value = nbt.hashprice_usd_per_th_day(87_508.83, 3.125, 2.7, 1.48258433855480e14)
    assert value == pytest.approx(87_508.83 * (3.125 + 2.7 / 144) * 1e12 * 86_400 / (1.48258433855480e14 * 2**32))
    assert 0.03 < value < 0.05  # the hashprice of late 2025, about $0.04 per TH/s-day
