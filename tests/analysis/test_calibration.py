"""Fitting price models: known parameters recovered from simulated returns, within their standard errors,
and `kzsim calibrate` turning the CSV exports people have into a block that runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kzsim.analysis import calibration
from kzsim.cli import main
from kzsim.model.prices import garch, jump_diffusion
from tests.conftest import EXACT, SHARED_DATA, make_scenario

Z = 4.0
N_DAYS = 20 * 365


def test_gbm_fit_recovers_drift_and_volatility():
    rng = np.random.default_rng(7)
    mu, sigma = 0.3, 0.6
    r = (mu - sigma**2 / 2) / 365 + sigma / math.sqrt(365) * rng.standard_normal(N_DAYS)
    fit = calibration.fit_gbm(r)
    for key, true in (("btc_drift_per_year", mu), ("btc_volatility_per_year", sigma)):
        assert abs(fit.keys[key] - true) < Z * fit.standard_errors[key], key


def test_garch_fit_recovers_alpha_and_beta_within_their_standard_errors():
    rng = np.random.default_rng(11)
    true = {"long_run_volatility_per_year": 0.7, "alpha": 0.1, "beta": 0.85}
    z = rng.standard_normal((N_DAYS, 1))
    price, _ = garch(np.array([1.0]), 0.1, true["long_run_volatility_per_year"], 0.1, 0.85, 0.7, z)
    r = np.diff(np.log(price[:, 0]))
    fit = calibration.fit_garch(r)
    for key in ("alpha", "beta"):
        assert abs(fit.keys["garch"][key] - true[key]) < Z * fit.standard_errors[key], key
    lr = fit.keys["garch"]["long_run_volatility_per_year"]
    assert 0.5 < lr < 1.0  # the long-run level is weakly identified at persistence 0.95; a loose sanity bound


def test_jump_fit_is_at_least_as_likely_as_the_truth():
    rng = np.random.default_rng(3)
    sigma, lam, m, s = 0.4, 20.0, -0.03, 0.08
    steps = N_DAYS
    counts = rng.poisson(lam / 365, steps)
    jumps = np.array([rng.normal(m, s, c).sum() for c in counts])[:, None]
    price = jump_diffusion(np.array([1.0]), 0.0, sigma, lam, m, s, rng.standard_normal((steps, 1)), jumps)
    r = np.diff(np.log(price[:, 0]))
    fit = calibration.fit_jump_diffusion(r)
    true_ll = float(np.sum(calibration.merton_log_density(r, 0.0, sigma / math.sqrt(365), lam / 365, m, s)))
    assert fit.log_likelihood >= true_ll - 1e-6  # the maximiser found the top, not a worse point
    jd = fit.keys["jump_diffusion"]
    implied_var = fit.keys["btc_volatility_per_year"] ** 2 + jd["jumps_per_year"] * (
        jd["jump_mean_log"] ** 2 + jd["jump_volatility_log"] ** 2
    )
    true_var = sigma**2 + lam * (m * m + s * s)
    # the fit's total variance estimates the true one about as well as the sample variance does: SE var*sqrt((k-1)/n)
    kurtosis = np.mean((r - r.mean()) ** 4) / r.var() ** 2
    assert abs(implied_var - true_var) < Z * true_var * math.sqrt((kurtosis - 1) / r.size)
    assert fit.log_likelihood > calibration.fit_gbm(r).log_likelihood + 10  # jumps are seen


def test_politis_white_block_length_grows_with_dependence():
    rng = np.random.default_rng(5)
    iid = rng.standard_normal(4000)
    ar = np.empty(4000)
    ar[0] = 0
    for t in range(1, 4000):
        ar[t] = 0.95 * ar[t - 1] + rng.standard_normal()
    assert calibration.politis_white_block_length(iid) == 5.0
    assert calibration.politis_white_block_length(ar) > 30


def test_too_few_returns_are_refused():
    with pytest.raises(ValueError, match="at least 30"):
        calibration.fit_gbm(np.zeros(5))


def yahoo_copy(tmp_path):
    """The shared closes written as a Yahoo export (Date,Open,High,Low,Close,Adj Close,Volume)."""
    import pandas as pd

    df = pd.read_csv(SHARED_DATA / "btc_usd_daily.csv")
    out = pd.DataFrame(
        {
            "Date": df["date"],
            "Open": df["price"],
            "High": df["price"],
            "Low": df["price"],
            "Close": df["price"],
            "Adj Close": df["price"],
            "Volume": df["volume"],
        }
    )
    path = tmp_path / "BTC-USD.csv"
    out.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["gbm", "jump_diffusion", "garch", "bootstrap"])
def test_calibrate_prints_a_block_that_runs(tmp_path, model):
    csv = yahoo_copy(tmp_path)
    res = CliRunner().invoke(
        main, ["calibrate", str(csv), "--model", model, "--from", "2018-01-01", "--to", "2022-12-31"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("# kzsim calibrate")
    block = yaml.safe_load(res.output)
    assert block["price_model"] == model
    assert "column 'Close', 2018-01-01 to 2022-12-31" in res.output
    market = {**EXACT["market"], **block}
    sc = make_scenario(**{"market": market, "simulation.paths": 8})
    from kzsim.api import simulate

    out = simulate(sc, paths=8)
    assert np.isfinite(out.paths["final_btc_price_usd"]).all()


def test_calibrate_refuses_bad_files_with_exit_2(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("date,price\n2024-01-01,1\n2024-01-03,2\n")
    res = CliRunner().invoke(main, ["calibrate", str(bad), "--model", "garch"])
    assert res.exit_code == 2
    assert "missing day" in res.output and "--fill previous" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        main, ["calibrate", str(SHARED_DATA / "btc_usd_daily.csv"), "--from", "2020-01-01", "--to", "2020-01-20"]
    )
    assert res.exit_code == 2 and "at least 30" in res.output
    res = CliRunner().invoke(main, ["calibrate", str(SHARED_DATA / "btc_usd_daily.csv"), "--price-column", "Close"])
    assert res.exit_code == 2 and "no column 'Close'" in res.output


def test_gbm_over_missing_days_uses_the_elapsed_days_and_recovers_the_volatility():
    """Returns over d days are N(m d, s^2 d): dropping a tenth of the days leaves the fit unbiased."""
    rng = np.random.default_rng(5)
    n, sigma = 4000, 0.6
    daily = rng.normal(0.0, sigma / math.sqrt(365), n)
    level = np.concatenate([[0.0], np.cumsum(daily)])
    kept = np.sort(np.r_[0, n, rng.choice(np.arange(1, n), size=int(0.9 * (n - 1)), replace=False)])
    r, days = np.diff(level[kept]), np.diff(kept).astype(float)
    fit = calibration.fit_gbm(r, days)
    se = fit.standard_errors["btc_volatility_per_year"]
    assert abs(fit.keys["btc_volatility_per_year"] - sigma) < 4 * se
    plain = calibration.fit_gbm(daily)
    assert calibration.fit_gbm(daily, np.ones(n)).keys == plain.keys  # all one-day spans: the plain fit
    # the jump likelihood over d days reduces to the daily one at d = 1
    args = (daily[:50], 0.0, 0.03, 0.1, -0.02, 0.05)
    np.testing.assert_allclose(
        calibration.merton_log_density(*args), calibration.merton_log_density(*args, np.ones(50))
    )
    with pytest.raises(ValueError, match="missing days"):
        calibration.fit("garch", r, days)


def test_calibrate_a_file_with_missing_days(tmp_path):
    rng = np.random.default_rng(8)
    dates = np.arange(np.datetime64("2022-01-01"), np.datetime64("2023-01-01"))
    price = 30000 * np.exp(np.cumsum(rng.normal(0, 0.03, dates.size)))
    keep = np.ones(dates.size, bool)
    keep[[40, 41, 200]] = False  # three missing days, as CoinMarketCap's file has
    path = tmp_path / "cmc.csv"
    path.write_text("date,close\n" + "".join(f"{d},{p:.2f}\n" for d, p in zip(dates[keep], price[keep])))
    for model in ("gbm", "jump_diffusion"):
        res = CliRunner().invoke(main, ["calibrate", str(path), "--model", model])
        assert res.exit_code == 0, res.output
        assert "3 missing day(s): the likelihood is over the days that elapsed" in res.output
    res = CliRunner().invoke(main, ["calibrate", str(path), "--model", "garch"])
    assert res.exit_code == 2 and "--fill previous" in res.output
    res = CliRunner().invoke(main, ["calibrate", str(path), "--model", "garch", "--fill", "previous"])
    assert res.exit_code == 0 and "3 missing day(s) given the close before" in res.output


def test_messages_give_the_files_line_also_when_a_window_cuts_it(tmp_path):
    dates = np.arange(np.datetime64("2022-01-01"), np.datetime64("2022-03-01"))
    rows = [f"{d},{100 + i}" for i, d in enumerate(dates)]
    rows[45] = f"{dates[45]},-5"  # line 47 of the file (header = line 1)
    path = tmp_path / "p.csv"
    path.write_text("date,close\n" + "\n".join(rows) + "\n")
    res = CliRunner().invoke(main, ["calibrate", str(path), "--from", "2022-02-01"])
    assert res.exit_code == 2 and "on line 47 " in res.output, res.output
