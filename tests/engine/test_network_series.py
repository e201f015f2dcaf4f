"""The network's per-day outputs (difficulty, hashrate, fees a day): their columns, their
values in a case worked by hand, and the same bits in every chunking."""

from __future__ import annotations

import numpy as np
import pytest

from kzsim.api import simulate
from kzsim.model import processes
from tests.conftest import make_scenario

SERIES = ("difficulty", "network_hashrate_eh", "fees_btc_per_day")


def test_timeseries_holds_the_networks_percentiles_and_means():
    ts = simulate(make_scenario(**{"simulation.horizon_days": 30}), paths=50, seed=1).timeseries
    for name in SERIES:
        for suffix in ("p05", "p25", "p50", "p75", "p95", "mean"):
            assert f"{name}_{suffix}" in ts.columns


def test_without_uncertainty_the_series_are_the_chain_worked_by_hand():
    """Constant hashrate 1,000 EH/s, difficulty matching it: 144 blocks a day at 0.05 BTC of fees."""
    sc = make_scenario(**{"simulation.horizon_days": 40, "market.hashrate_growth_per_year": 0.2})
    ts = simulate(sc, paths=20, seed=3).timeseries
    days = np.arange(40)
    hashrate_hs = 1e21 * np.exp(0.2 * days / 365)
    difficulty, blocks, _ = processes.chain(hashrate_hs[:, None], 1e21 * 600 / 2**32, 900_000.0)
    np.testing.assert_allclose(ts["network_hashrate_eh_p50"], hashrate_hs / 1e18, rtol=1e-12)
    np.testing.assert_allclose(ts["difficulty_mean"], difficulty[:, 0], rtol=1e-12)
    np.testing.assert_allclose(ts["fees_btc_per_day_p95"], 0.05 * blocks[:, 0], rtol=1e-12)
    assert ts["difficulty_p05"].iloc[-1] > ts["difficulty_p05"].iloc[0]  # a retarget after two weeks of growth
    assert ts["fees_btc_per_day_mean"].iloc[0] == pytest.approx(0.05 * 144)


def test_the_series_have_the_same_bits_whatever_the_chunks():
    sc = make_scenario(
        **{
            "simulation.horizon_days": 60,
            "market.hashrate_volatility_per_year": 0.3,
            "market.hashrate_drawdown_rate_per_year": 5.0,
            "market.fees_log_volatility": 0.4,
        }
    )
    whole = simulate(sc, paths=5200, seed=5).timeseries
    chunked = simulate(sc, paths=5200, seed=5, chunk_paths=333, threads=2).timeseries
    for name in SERIES:
        for suffix in ("p05", "p50", "mean"):
            column = f"{name}_{suffix}"
            assert whole[column].to_numpy().tobytes() == chunked[column].to_numpy().tobytes(), column
