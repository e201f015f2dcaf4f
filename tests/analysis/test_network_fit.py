"""Fitting the network process: known parameters recovered within the fit's standard errors
from histories the model itself made; the command on the shared difficulty file; the
price fits' neutral drift."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kzsim.analysis.network_fit import fit_network
from kzsim.cli import main
from kzsim.model import loops, processes
from tests.conftest import SHARED_DATA, make_scenario

Z = 4.0
START = np.datetime64("2000-01-01")


def _difficulty(seed: int, years: float, growth: float, volatility: float, rate: float = 0.0) -> np.ndarray:
    """A daily difficulty history made by the model: GBM hashrate with drawdowns, retargeted."""
    rng = np.random.default_rng(seed)
    days = int(years * 365)
    share = None
    if rate:
        count = rng.poisson(rate * years)
        share = loops.drawdown_factor(
            days, 1, rng.integers(1, days, count), np.zeros(count), np.full(count, 0.3), np.full(count, 60.0)
        )
    hashrate = processes.network_hashrate(
        np.array([1e20]), growth, volatility, rng.standard_normal((days - 1, 1)), drawdown=share
    )
    return processes.chain(hashrate, 1e20 * 600 / 2**32, 0.0)[0][:, 0]


def test_growth_and_volatility_are_recovered_within_their_standard_errors():
    d = _difficulty(1, 40, growth=0.3, volatility=0.25)
    fit = fit_network(START + np.arange(d.size), d)
    se = fit.standard_errors
    assert abs(fit.keys["hashrate_growth_per_year"] - 0.3) < Z * se["hashrate_growth_per_year"]
    assert abs(fit.keys["hashrate_volatility_per_year"] - 0.25) < Z * se["hashrate_volatility_per_year"]
    # three-sigma steps of a diffusion alone are rare: a false event every few years at most
    assert fit.keys["hashrate_drawdown_rate_per_year"] < 0.3


def test_drawdown_events_are_found_at_their_rate_within_the_poisson_standard_error():
    d = _difficulty(2, 40, growth=0.3, volatility=0.2, rate=1.0)
    fit = fit_network(START + np.arange(d.size), d)
    rate = fit.keys["hashrate_drawdown_rate_per_year"]
    assert abs(rate - 1.0) < Z * fit.standard_errors["hashrate_drawdown_rate_per_year"]
    assert abs(fit.keys["hashrate_growth_per_year"] - 0.3) < Z * fit.standard_errors["hashrate_growth_per_year"]
    depth = fit.keys["hashrate_drawdown_depth"]
    mean_depth = 0.95 * depth["a"] / (depth["a"] + depth["b"])
    assert 0.1 < mean_depth < 0.4  # 30 % drops, seen through two-week window means
    # the block it prints is a valid part of a scenario
    make_scenario(**{f"market.{k}": v for k, v in fit.keys.items()})


@pytest.mark.parametrize(
    ("values", "words"),
    [(np.full(100, 1e12), "at least 365"), (np.r_[np.full(400, 1e12), 0.0], "values > 0")],
)
def test_a_history_the_fit_cannot_use_is_refused(values, words):
    with pytest.raises(ValueError, match=words):
        fit_network(START + np.arange(values.size), values)


@pytest.mark.skipif(not (SHARED_DATA / "btc_difficulty_daily.csv").exists(), reason="shared data not available")
def test_calibrate_network_on_the_shared_files_prints_a_block_that_validates():
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            str(SHARED_DATA / "btc_difficulty_daily.csv"),
            "--model",
            "network",
            "--from",
            "2019-01-01",
            "--price-csv",
            str(SHARED_DATA / "btc_usd_daily.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 missing day(s) given the day before's difficulty" in result.output  # the file's 2025-11 gap
    assert "# standard error" in result.output and "drawdown event(s)" in result.output
    block = yaml.safe_load(result.output)
    assert 0 < block["hashrate_drawdown_rate_per_year"] < 5 and 0.1 < block["hashrate_volatility_per_year"] < 1
    make_scenario(**{f"market.{k}": v for k, v in block.items()})


def test_the_price_response_needs_a_price_history_covering_the_window(tmp_path):
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2022-01-01"))
    (tmp_path / "d.csv").write_text(
        "date,difficulty\n" + "".join(f"{d},{1e12 * 1.001**i}\n" for i, d in enumerate(days))
    )
    (tmp_path / "p.csv").write_text("date,close\n" + "".join(f"{d},{50000 + i}\n" for i, d in enumerate(days)))
    result = CliRunner().invoke(
        main, ["calibrate", str(tmp_path / "d.csv"), "--model", "network", "--price-csv", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 2 and "a price file starting a year before" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["calibrate", str(tmp_path / "p.csv"), "--price-csv", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "--model network only" in result.output


@pytest.mark.skipif(not (SHARED_DATA / "btc_usd_daily.csv").exists(), reason="shared data not available")
@pytest.mark.parametrize("model", ["gbm", "garch"])
def test_price_fits_print_a_neutral_drift_unless_asked(model):
    args = ["calibrate", str(SHARED_DATA / "btc_usd_daily.csv"), "--model", model, "--from", "2018-01-01"]
    neutral = CliRunner().invoke(main, args)
    historical = CliRunner().invoke(main, [*args, "--drift", "historical"])
    assert neutral.exit_code == 0 and historical.exit_code == 0, neutral.output + historical.output
    fitted = yaml.safe_load(historical.output)["btc_drift_per_year"]
    assert fitted > 0.1  # 2018-2025 rose: the fit says so
    assert yaml.safe_load(neutral.output)["btc_drift_per_year"] == 0.0
    assert f"fitted drift is {fitted:+.3f}/year" in neutral.output and "--drift historical" in neutral.output
