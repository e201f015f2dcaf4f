"""The back-test against real history (../shared/data): the documented coverage table is what the code gives."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
from click.testing import CliRunner

from kzsim.analysis import backtest
from kzsim.cli import main
from kzsim.scenario.history import read_daily_csv
from tests.conftest import ROOT, SHARED_DATA

SPLITS = [dt.date(2019, 12, 31), dt.date(2022, 12, 31)]


def test_documented_coverage_table_is_reproduced():
    series = read_daily_csv(SHARED_DATA / "btc_usd_daily.csv")
    text = backtest.report(series.dates, series.values, SPLITS)
    doc = (ROOT / "docs" / "market.md").read_text()
    block = re.search(r"<!-- backtest:begin -->\n(.*)<!-- backtest:end -->", doc, re.S).group(1)
    assert block == text, "docs/market.md is out of date: rerun the kzsim backtest command it quotes"


def test_bands_are_nested_and_coverage_is_a_share():
    series = read_daily_csv(SHARED_DATA / "btc_usd_daily.csv", end=dt.date(2021, 12, 31))
    split = int(np.searchsorted(series.dates, np.datetime64("2020-12-31")))
    rows = backtest.backtest(series.dates, series.values, split, n_paths=500)
    assert [r.model for r in rows] == list(backtest.MODELS)
    for r in rows:
        assert 0.0 <= r.long["25-75 %"] <= r.long["5-95 %"] <= 1.0
        assert 0.0 <= r.rolling["25-75 %"] <= r.rolling["5-95 %"] <= 1.0
        assert r.origins == (365 - 30) // 30 + 1


def test_a_model_that_is_too_narrow_is_caught():
    # a GBM with a tenth of the volatility of the data: its bands must miss most realised days
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(0.04 * rng.standard_normal(800)))
    fit = backtest._fit("gbm", np.diff(np.log(closes[:400])))
    fit.keys["btc_volatility_per_year"] /= 10
    sim = backtest.simulate_from_fit(fit, None, closes[399], 400, 1000, 1, "narrow")
    covered = backtest._in_band(sim[1:], closes[400:], (5.0, 95.0)).mean()
    assert covered < 0.5


def test_backtest_command_refuses_a_split_outside_the_file():
    res = CliRunner().invoke(main, ["backtest", str(SHARED_DATA / "btc_usd_daily.csv"), "--split", "2030-01-01"])
    assert res.exit_code == 2
    assert "allowed: --split inside the file's 2015-01-01 to 2025-12-31" in res.output
