"""Transaction fees: a persistent lognormal level with spikes; moments against closed forms, streams, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kzsim.analysis import calibration
from kzsim.cli import main
from kzsim.engine.draws import draw_block
from kzsim.model import processes
from kzsim.model.paths import Calendar
from kzsim.model.rng import BLOCK_PATHS
from tests.conftest import EXACT, SHARED_DATA, assert_same_draws, make_scenario

Z = 4.0


def test_persistent_level_has_the_stationary_sd_and_autocorrelation():
    rng = np.random.default_rng(2)
    n_days, n_paths, sigma, tau = 60, 20_000, 0.8, 15.0
    fees = processes.fees_per_block(np.full(n_paths, 0.05), sigma, tau, rng.standard_normal((n_days, n_paths)))
    x = np.log(fees / 0.05)
    for day in (0, n_days - 1):  # stationary from day 0
        assert abs(x[day].mean()) < Z * sigma / math.sqrt(n_paths)
        assert abs(x[day].var(ddof=1) - sigma**2) < Z * sigma**2 * math.sqrt(2 / n_paths)
    phi = math.exp(-1 / tau)
    r = np.corrcoef(x[-2], x[-1])[0, 1]
    assert abs(r - phi) < Z * (1 - phi**2) / math.sqrt(n_paths)


def test_spike_counts_are_poisson_and_on_their_own_streams():
    rate = 12.0
    calm = make_scenario(**{"simulation.horizon_days": 365})
    spiky = make_scenario(
        **{
            "simulation.horizon_days": 365,
            "market.fees_spike_rate_per_year": rate,
            "market.fees_spike_extra": {"dist": "lognormal", "median": 3, "sigma": 0.5},
        }
    )
    cal = Calendar.of(calm)
    p0, d0 = draw_block(calm, cal, 3, 0)
    p1, d1 = draw_block(spiky, cal, 3, 0)
    assert_same_draws(d0, d1)
    assert d0.fee_spikes is None
    days_with_spike = (d1.fee_spikes > 0).sum(axis=0)
    expected = rate * 365 / 365
    # two spikes on one day count once: a tiny bias, bounded by expected^2 / 365
    assert abs(days_with_spike.mean() - expected) < Z * math.sqrt(expected / BLOCK_PATHS) + expected**2 / 365
    assert (d1.fee_spikes[d1.fee_spikes > 0] >= 0).all()


def test_spikes_raise_fees_by_their_decaying_extra():
    spikes = np.zeros((10, 1))
    spikes[2, 0] = 9.0  # a 10x spike on day 2
    fees = processes.fees_per_block(
        np.array([0.02]), 0.0, 0.0, np.zeros((10, 1)), spikes=spikes, spike_half_life_days=2.0
    )
    expected = 0.02 * (1 + np.where(np.arange(10) >= 2, 9.0 * 2.0 ** (-(np.arange(10) - 2) / 2.0), 0.0))
    np.testing.assert_allclose(fees[:, 0], expected, rtol=1e-12)


def test_fee_fit_recovers_a_persistent_level_within_its_standard_errors():
    rng = np.random.default_rng(9)
    # sigma small enough that no day passes the spike filter (3x the running median = 3.7 sd), so no trimming bias
    n, sigma, tau = 6000, 0.3, 20.0
    fees = processes.fees_per_block(np.array([0.05]), sigma, tau, rng.standard_normal((n, 1)))[:, 0]
    fit = calibration.fit_fees(fees)
    assert fit.keys["fees_spike_rate_per_year"] == 0.0
    phi = math.exp(-1 / tau)
    # large-sample SEs of an AR(1): the sample sd's from the variance's, with autocorrelation; phi's sqrt((1 - phi^2) / n)
    se_sigma = sigma * math.sqrt((1 + phi**2) / (2 * n * (1 - phi**2)))
    assert abs(fit.keys["fees_log_volatility"] - sigma) < Z * se_sigma
    phi_hat = math.exp(-1 / fit.keys["fees_persistence_days"])
    assert abs(phi_hat - phi) < Z * math.sqrt((1 - phi**2) / n)


def test_calibrate_fees_on_the_shared_file_prints_a_block_that_runs():
    res = CliRunner().invoke(main, ["calibrate", str(SHARED_DATA / "btc_fees_daily.csv"), "--model", "fees"])
    assert res.exit_code == 0, res.output
    block = yaml.safe_load(res.output)
    assert set(block) >= {
        "fees_btc_per_block",
        "fees_log_volatility",
        "fees_persistence_days",
        "fees_spike_rate_per_year",
    }
    assert "price_model" not in block
    sc = make_scenario(**{"market": {**EXACT["market"], **block}, "simulation.horizon_days": 60})
    from kzsim.api import simulate

    out = simulate(sc, paths=50)
    assert np.isfinite(out.paths["revenue_usd"]).all()


@pytest.mark.parametrize("paths", [4, 1])
def test_a_time_constant_too_small_to_invert_is_no_persistence(paths):
    """1 / 5e-324 overflows: such a persistence or half-life is read as zero (independent
    days, spikes that last a day), with the same bits and no warning (warnings are errors)."""
    rng = np.random.default_rng(3)
    shocks, spikes = rng.standard_normal((20, 4)), np.where(rng.random((20, 4)) < 0.2, 3.0, 0.0)
    args = (np.full(4, 0.1), np.full(4, 0.3))
    if paths == 1:  # one path: 1-D along days
        shocks, spikes, args = shocks[:, 0].copy(), spikes[:, 0].copy(), (0.1, 0.3)

    def fees(tiny):
        return processes.fees_per_block(*args, tiny, shocks, spikes=spikes, spike_half_life_days=tiny)

    np.testing.assert_array_equal(fees(np.full(paths, 5e-324)), fees(np.zeros(paths)))
