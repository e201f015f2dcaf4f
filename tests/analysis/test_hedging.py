"""The hedge frontier (`kzsim hedge`) and the report of a run with hedges and a loan."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose
from pypdf import PdfReader

import kzsim
from kzsim.analysis.hedging import FRONTIER_COLUMNS, best_protection, hedge_frontier
from kzsim.cli import main
from tests.conftest import SCENARIOS

HEDGED = SCENARIOS / "kz-2025-hedged.yaml"
SHORT = {"simulation.horizon_days": 400}


@pytest.fixture(scope="module")
def frontier():
    sc = kzsim.load_scenario(HEDGED, SHORT)
    return sc, hedge_frontier(sc, [0.0, 0.5, 1.0], paths=1500, threads=2)


def test_the_frontier_has_a_row_per_hedge_and_ratio_on_the_same_paths(frontier):
    sc, table = frontier
    assert list(table.columns) == list(FRONTIER_COLUMNS)
    assert len(table) == 1 + 2 * 3
    base = table.iloc[0]
    assert base["hedge"] == -1 and base["ratio"] == 0
    zero = table[table["ratio"] == 0]
    assert (zero["mean_profit_usd"] == base["mean_profit_usd"]).all()  # ratio 0 is the unhedged run itself
    assert (zero["cost_usd"] == 0).all()
    # the swap's row at ratio 0.5 is the run with that swap, on the same seed
    swap = table[(table["hedge"] == 0) & (table["ratio"] == 0.5)].iloc[0]
    data = sc.hedges[0].model_dump(mode="json", by_alias=True, exclude_none=True) | {"share": 0.5}
    alone = kzsim.simulate(sc.replace(hedges=[data]), paths=1500, threads=1).run.per_path["profit_usd"]
    assert swap["mean_profit_usd"] == pytest.approx(alone.mean(), rel=1e-12)


def test_a_put_is_sized_on_the_coins_expected_until_expiry(frontier):
    sc, table = frontier
    unhedged = kzsim.simulate(sc.replace(hedges=[]), paths=1500, threads=1).run.per_path
    expected = unhedged["btc_mined"].mean() * sc.hedges[1].expiry_days / sc.simulation.horizon_days
    put = table[(table["hedge"] == 1) & (table["ratio"] == 1.0)].iloc[0]
    assert put["size"] == pytest.approx(expected, rel=1e-12)
    assert put["premium_usd"] > 0


def test_the_swap_trades_expected_profit_for_tail_loss(frontier):
    """The shipped swap's fixed price is below the model's expected hashprice: a larger swap
    costs expected profit (by more than its standard error) and removes CVaR 95 %."""
    _, table = frontier
    swap = table[table["hedge"] == 0].sort_values("ratio")
    assert np.all(np.diff(swap["cvar_95_usd"]) < 0)
    assert np.all(np.diff(swap["mean_profit_usd"]) < 0)
    top = swap.iloc[-1]
    assert top["cost_usd"] > 2 * top["cost_se_usd"]
    assert_allclose(top["protection_per_usd"], top["cvar_95_reduction_usd"] / top["cost_usd"])
    assert "hashprice swap" in best_protection(table)


def test_kzsim_hedge_writes_the_frontier_and_its_page(tmp_path):
    out = tmp_path / "h"
    args = ["hedge", str(HEDGED), "--ratios", "0,0.5", "--paths", "400", "--set", "simulation.horizon_days=370"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "hedge.csv")
    assert len(table) == 1 + 2 * 2
    assert pd.read_parquet(out / "hedge.parquet").shape == table.shape
    assert "Hedge frontier" in PdfReader(out / "report.pdf").pages[0].extract_text()
    assert "results in" in result.output


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--ratios", "0:2:0.5"], "allowed: ratios from 0 to 1"),
        (["--ratios", "a:b"], "--ratios"),
    ],
)
def test_kzsim_hedge_refuses_bad_ratios(extra, words, tmp_path):
    result = CliRunner().invoke(main, ["hedge", str(HEDGED), *extra, "--out", str(tmp_path / "h")])
    assert result.exit_code == 2 and words in result.output
    assert "Traceback" not in result.output


def test_kzsim_hedge_needs_hedges(tmp_path):
    result = CliRunner().invoke(main, ["hedge", str(SCENARIOS / "kz-2025-baseline.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no `hedges:`" in result.output


def test_a_financed_run_reports_cash_covenants_and_irr(tmp_path):
    out = tmp_path / "run"
    upgrade = (
        'farm.upgrade={to_model: "Antminer S21 Pro", unit_price_usd: 5000, when_hashprice_below_usd_per_th_day: 0.03}'
    )
    args = ["run", str(HEDGED), "--paths", "800", "--set", "simulation.horizon_days=400", "--set", upgrade]
    args += ["--out", str(out), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    fin = summary["financing"]
    for key in ("p_cash_runs_out", "p_covenant_breach", "p_margin_call", "p_irr_below_hurdle"):
        assert 0.0 <= fin[key]["p"] <= 1.0 and fin[key]["ci95"][0] <= fin[key]["p"] <= fin[key]["ci95"][1]
    assert fin["loan"]["principal_usd_mean"] == 6_000_000
    assert summary["hedges"]["premium_usd_mean"] > 0
    assert 0 <= summary["payback"]["p_never_pays_back"]["p"] <= 1
    paths = pd.read_parquet(out / "paths.parquet")
    for column in ("irr_per_year", "cash_runs_out", "min_dscr", "hedge_payoff_usd", "payback_btc_days"):
        assert column in paths.columns
    timeseries = pd.read_csv(out / "timeseries.csv")
    assert any(c.startswith("cash_usd") for c in timeseries.columns)
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages).split())
    assert "Cash, the loan and the owners' return" in text
    assert "The cash runs out on" in text and "Hedges:" in text
    assert "upgraded to Antminer S21 Pro" in text and "sold at the end" in text
    assert 0 < summary["upgrade"]["share_of_paths"] <= 1 and summary["resale_usd"]["mean"] > 0
