"""Replay mode: with history for price, difficulty and fees, revenue is the hashprice of that history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kzsim.api import simulate
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.loading import load_scenario
from tests.conftest import SHARED_DATA, make_scenario

START, DAYS = dt.date(2023, 5, 1), 354  # to 2024-04-18: one subsidy era (6.25 BTC), inside the fee file
REPLAY = {
    "btc_price_csv": str(SHARED_DATA / "btc_usd_daily.csv"),
    "difficulty_csv": str(SHARED_DATA / "btc_difficulty_daily.csv"),
    "fees_btc_per_day_csv": str(SHARED_DATA / "btc_fees_daily.csv"),
}


def history(name: str, column: str) -> np.ndarray:
    df = pd.read_csv(SHARED_DATA / name, parse_dates=["date"]).set_index("date")
    return df.loc[pd.Timestamp(START) : pd.Timestamp(START + dt.timedelta(days=DAYS - 1)), column].to_numpy()


def replay_scenario(**extra):
    return make_scenario(
        **{
            "simulation.start_date": str(START),
            "simulation.horizon_days": DAYS,
            "market.price_model": "replay",
            "market.replay": REPLAY,
            "market.start_block_height": 788_000,  # the real height on 2023-05-01 was about 788,000
            "regulation.aifc_sale_share": 0.0,
            "regulation.aifc_settlement_lag_days": 0,
            "market.exchange_fee_share": 0.0,
            **extra,
        }
    )


def test_revenue_of_a_known_asic_equals_the_historical_hashprice():
    sc = replay_scenario()
    out = simulate(sc, paths=3)
    price = history("btc_usd_daily.csv", "price")
    difficulty = history("btc_difficulty_daily.csv", "difficulty")
    fees_per_day = history("btc_fees_daily.csv", "fees_btc")
    assert price.size == difficulty.size == fees_per_day.size == DAYS
    # hashprice as published (e.g. Hashrate Index): USD a day per TH/s = (subsidy + fees) a day * price / network TH/s
    network_th = difficulty * 2**32 / 600 / 1e12
    hashprice = (144 * 6.25 + fees_per_day) * price / network_th
    fleet_th = 100 * 200
    expected_revenue = (fleet_th * hashprice * (1 - 0.02)).sum()
    revenue = out.paths["revenue_usd"].to_numpy()
    np.testing.assert_allclose(revenue, expected_revenue, rtol=1e-12)
    np.testing.assert_allclose(out.paths["mean_hashprice_usd_per_th_day"], hashprice.mean(), rtol=1e-12)
    # and in the units people quote: the farm's USD a TH/s over the year
    assert revenue[0] / fleet_th == pytest.approx(0.98 * hashprice.sum(), rel=1e-12)


def test_replay_needs_history_covering_the_run(tmp_path):
    with pytest.raises(
        ScenarioError,
        match=r"market\.replay\.fees_btc_per_day_csv: .*covers 2024-06-01 to 2025-02-02; the run needs 2024-06-01 to 2025-05-20",
    ):
        replay_scenario(**{"simulation.start_date": "2024-06-01"})


def test_replay_paths_are_relative_to_the_scenario_file(tmp_path):
    folder = tmp_path / "study"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "p.csv").write_text((SHARED_DATA / "btc_usd_daily.csv").read_text())
    sc = replay_scenario()
    data = sc.to_dict()
    data["market"]["replay"] = {"btc_price_csv": "data/p.csv"}
    import yaml

    (folder / "s.yaml").write_text(yaml.safe_dump(data))
    loaded = load_scenario(folder / "s.yaml")
    out = simulate(loaded, paths=2)
    assert out.paths["final_btc_price_usd"].iloc[0] == history("btc_usd_daily.csv", "price")[-1]


def test_price_history_without_price_model_replay_is_refused():
    with pytest.raises(
        ScenarioError, match=r"market\.replay\.btc_price_csv: a price history is given but price_model is 'gbm'"
    ):
        make_scenario(**{"market.replay": {"btc_price_csv": REPLAY["btc_price_csv"]}})
    with pytest.raises(ScenarioError, match=r"market\.replay\.btc_price_csv: price_model is 'replay' but no file"):
        make_scenario(**{"market.price_model": "replay"})


def test_manifest_records_the_history_files_read(tmp_path):
    import hashlib
    import json

    res = simulate(replay_scenario(), paths=2)
    out = res.write(tmp_path / "run", report=False)
    recorded = json.loads((out / "manifest.json").read_text())["data_files_sha256"]
    assert set(recorded) == set(REPLAY.values())
    for path, digest in recorded.items():
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
