"""BTC price models: closed-form moments with standard-error tolerances, and the named-stream rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kzsim.engine.draws import draw_block
from kzsim.model.paths import Calendar, btc_price_paths
from kzsim.model.prices import jump_compensator
from kzsim.model.rng import BLOCK_PATHS
from tests.conftest import SHARED_DATA, assert_same_draws, make_scenario

Z = 4.0
DAYS = 366  # 365 daily steps: one year
JUMPS = {"jumps_per_year": 20.0, "jump_mean_log": -0.03, "jump_volatility_log": 0.08}
GARCH = {"long_run_volatility_per_year": 0.6, "alpha": 0.12, "beta": 0.83}
BOOTSTRAP = {"returns_csv": str(SHARED_DATA / "btc_usd_daily.csv"), "to_date": "2022-12-31", "mean_block_days": 25}
MU, SIGMA = 0.2, 0.4


def scenario(model: str, **extra):
    section = {"jump_diffusion": JUMPS, "garch": GARCH, "bootstrap": BOOTSTRAP}.get(model)
    sets = {f"market.{model}": section} if section is not None else {}  # first: dotted keys below refine it
    sets.update(
        {
            "simulation.horizon_days": DAYS,
            "market.price_model": model,
            "market.btc_drift_per_year": MU,
            "market.btc_volatility_per_year": SIGMA,
            **extra,
        }
    )
    return make_scenario(**sets)


def simulate_prices(sc, blocks: int = 12):
    cal = Calendar.of(sc)
    out = []
    for b in range(blocks):
        p, d = draw_block(sc, cal, sc.simulation.seed, b)
        out.append(btc_price_paths(sc, cal, p, d)[0])
    return np.concatenate(out, axis=1), cal


def assert_mean(x: np.ndarray, expected: float):
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert abs(x.mean() - expected) < Z * se, (x.mean(), expected, se)


def test_jump_diffusion_log_moments_and_mean_price():
    price, cal = simulate_prices(scenario("jump_diffusion"))
    t = (cal.n_days - 1) / 365.0
    lam, m, s = JUMPS["jumps_per_year"], JUMPS["jump_mean_log"], JUMPS["jump_volatility_log"]
    log_ratio = np.log(price[-1] / price[0])
    k = float(jump_compensator(m, s))
    mean = (MU - SIGMA**2 / 2 - lam * k) * t + lam * t * m
    var = SIGMA**2 * t + lam * t * (m * m + s * s)
    assert abs(log_ratio.mean() - mean) < Z * math.sqrt(var / log_ratio.size)
    # the sample variance of n draws has SE ~ var * sqrt((kurtosis - 1) / n); bound kurtosis by the sample's
    kurt = np.mean((log_ratio - log_ratio.mean()) ** 4) / log_ratio.var() ** 2
    assert abs(log_ratio.var(ddof=1) - var) < Z * var * math.sqrt((kurt - 1) / log_ratio.size)
    assert_mean(price[-1] / price[0], math.exp(MU * t))


def test_jump_counts_are_poisson_on_their_own_streams():
    sc = scenario("jump_diffusion")
    cal = Calendar.of(sc)
    p, d = draw_block(sc, cal, 1, 0)
    jump_days = (d.btc_jumps != 0).sum(axis=0)  # days with a jump; two on one day are rare at 20 a year
    expected = JUMPS["jumps_per_year"] * (cal.n_days - 1) / 365.0
    assert abs(jump_days.mean() - expected) < Z * math.sqrt(expected / BLOCK_PATHS) + expected**2 / 365


def test_garch_keeps_the_mean_price_and_the_long_run_variance():
    price, cal = simulate_prices(scenario("garch"))
    t = (cal.n_days - 1) / 365.0
    assert_mean(price[-1] / price[0], math.exp(MU * t))
    # started at the long-run variance, E[h_t] = sigma_LR^2 dt on every day; E[r_t^2] = h + (mu dt - h/2)^2
    r = np.diff(np.log(price), axis=0)[-1]
    h = GARCH["long_run_volatility_per_year"] ** 2 / 365.0
    assert_mean(r * r, h + (MU / 365.0 - h / 2) ** 2)


def test_garch_clusters_volatility_and_gbm_does_not():
    def lag1_of_squares(price):
        r = np.diff(np.log(price), axis=0)
        sq = r * r - (r * r).mean(axis=0)
        return float((sq[1:] * sq[:-1]).sum() / (sq * sq).sum())

    garch, _ = simulate_prices(scenario("garch"), blocks=2)
    gbm, _ = simulate_prices(scenario("gbm"), blocks=2)
    n = gbm.shape[0] * gbm.shape[1]
    assert abs(lag1_of_squares(gbm)) < Z / math.sqrt(n)
    # theory: alpha (1 - alpha beta - beta^2) / (1 - 2 alpha beta - beta^2) = 0.23 for these values; the pooled
    # estimator is biased down by the fat tails, so the test asks only for clear clustering
    assert lag1_of_squares(garch) > 0.05


def test_bootstrap_blocks_have_the_mean_length_and_follow_history():
    sc = scenario("bootstrap")
    cal = Calendar.of(sc)
    p, d = draw_block(sc, cal, 1, 0)
    idx = d.btc_history_index
    n_history = sc.market.bootstrap.log_returns.size
    assert idx.min() >= 0 and idx.max() < n_history
    continues = idx[1:] == (idx[:-1] + 1) % n_history
    new_share = 1.0 - continues.mean()  # new blocks (one may start where the last ended, rarely)
    q = 1.0 / BOOTSTRAP["mean_block_days"]
    assert abs(new_share - q * (1 - 1 / n_history)) < Z * math.sqrt(q * (1 - q) / continues.size)

    price, _ = btc_price_paths(sc, cal, p, d)
    r = sc.market.bootstrap.log_returns
    base = r - np.log(np.mean(np.exp(r)))
    np.testing.assert_allclose(np.diff(np.log(price), axis=0), base[idx] + MU / 365.0, rtol=0, atol=1e-12)


def test_bootstrap_with_historical_drift_replays_history_in_blocks():
    sc = scenario("bootstrap", **{"market.bootstrap.drift": "historical", "market.bootstrap.mean_block_days": 3650})
    cal = Calendar.of(sc)
    p, d = draw_block(sc, cal, 1, 0)
    price, _ = btc_price_paths(sc, cal, p, d)
    r = sc.market.bootstrap.log_returns
    idx = d.btc_history_index
    # blocks longer than the horizon: one contiguous stretch of history a path (wrapping around)
    assert np.mean(np.all(np.diff(idx, axis=0) % r.size == 1, axis=0)) > 0.85
    np.testing.assert_allclose(np.diff(np.log(price), axis=0), r[idx], rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", ["jump_diffusion", "garch", "bootstrap"])
def test_a_price_model_changes_no_other_draw(model):
    base = scenario("gbm")
    other = scenario(model)
    cal = Calendar.of(base)
    p0, d0 = draw_block(base, cal, 1, 0)
    p1, d1 = draw_block(other, cal, 1, 0)
    for name in p0:
        np.testing.assert_array_equal(p0[name], p1[name])
    assert_same_draws(d0, d1)


def test_zero_volatility_models_give_the_drift_path():
    for model, extra in [
        ("jump_diffusion", {"market.jump_diffusion.jumps_per_year": 0.0}),
        ("garch", {"market.garch.long_run_volatility_per_year": 0.0, "market.btc_volatility_per_year": 0.0}),
    ]:
        sc = scenario(model, **{"market.btc_volatility_per_year": 0.0, **extra})
        price, cal = simulate_prices(sc, blocks=1)
        expected = 100_000 * np.exp(MU * np.arange(cal.n_days) / 365.0)
        np.testing.assert_allclose(price, np.repeat(expected[:, None], price.shape[1], axis=1), rtol=1e-12)
