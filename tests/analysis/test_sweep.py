"""Sweeps of one or two parameters on common random numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from kzsim.analysis.sensitivity import parse_grid, sweep
from kzsim.cli import main
from tests.conftest import SCENARIOS, make_scenario


def test_parse_grid():
    assert parse_grid("electricity.tariff_kzt_per_kwh=20:40:5") == (
        "electricity.tariff_kzt_per_kwh",
        [20, 25, 30, 35, 40],
    )
    assert parse_grid("a.b=1,2.5") == ("a.b", [1.0, 2.5])
    for bad in ("a.b=1:0:1", "a.b=1:2:0", "a.b=x:y:z", "a.b"):
        with pytest.raises(ValueError, match="grid|expected"):
            parse_grid(bad)


def test_sweep_of_a_certain_farm_is_linear_in_the_tariff():
    """No uncertainty: mean profit before tax falls by energy x 1000 / KZT-per-USD per KZT/kWh."""
    sc = make_scenario(**{"regulation.profit_tax_rate": 0.0})
    calls = []
    table = sweep(
        sc, {"electricity.tariff_kzt_per_kwh": [24.0, 26.0, 28.0]}, paths=3, progress=lambda *a: calls.append(a)
    )
    assert calls == [(3, 9), (6, 9), (9, 9)]  # paths done over the grid's runs
    slope = np.diff(table["mean_profit_usd"]) / 2.0
    energy_mwh = 0.44 * 24 * 10
    expected = -energy_mwh * 1000 / 500 * (1 + 0.1)  # power cost and the 10 % compliance share on it
    np.testing.assert_allclose(slope, expected, rtol=1e-9)
    # paths are alike: the standard error is rounding in the mean of equal numbers
    assert (table["mean_profit_se_usd"] <= 1e-12 * table["mean_profit_usd"].abs()).all()


def test_cli_sweep_one_and_two_parameters(tmp_path):
    base = ["sweep", str(SCENARIOS / "small-operator.yaml"), "--paths", "50", "--set", "simulation.horizon_days=30"]
    one = tmp_path / "one"
    result = CliRunner().invoke(main, [*base, "--set", "electricity.tariff_kzt_per_kwh=20:30:5", "--out", str(one)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(one / "sweep.csv")
    assert list(table["electricity.tariff_kzt_per_kwh"]) == [20, 25, 30]
    assert (np.diff(table["mean_profit_usd"]) < 0).all()
    assert "Sweep" in PdfReader(one / "report.pdf").pages[0].extract_text()
    two = tmp_path / "two"
    result = CliRunner().invoke(
        main,
        [
            *base,
            "--set",
            "electricity.tariff_kzt_per_kwh=20,30",
            "--set",
            "market.btc_price_usd=60000,90000",
            "--out",
            str(two),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(two / "sweep.parquet")) == 4


def test_cli_sweep_checks_every_grid_value_first(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(SCENARIOS / "small-operator.yaml"),
            "--set",
            "regulation.aifc_sale_share=0.5:1.5:0.5",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip().endswith("regulation.aifc_sale_share: 1.5 is out of range (allowed: values in [0, 1])")
    assert not (tmp_path / "o").exists()


def test_cli_sweep_gives_the_same_table_on_any_number_of_threads_or_workers(tmp_path):
    base = ["sweep", str(SCENARIOS / "small-operator.yaml"), "--paths", "2500", "--set", "simulation.horizon_days=30"]
    tables = []
    for on in (["--threads", "1"], ["--threads", "3"], ["--workers", "2"]):
        out = tmp_path / "-".join(on)
        args = [*base, "--set", "electricity.tariff_kzt_per_kwh=20,30", "--out", str(out), *on]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        tables.append((out / "sweep.csv").read_bytes())
    assert tables[0] == tables[1] == tables[2]
    result = CliRunner().invoke(
        main, [*base, "--set", "electricity.tariff_kzt_per_kwh=20,30", "--workers", "2", "--threads", "2"]
    )
    assert result.exit_code == 2 and "--threads 2: with --workers or --scheduler" in result.output
