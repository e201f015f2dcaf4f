"""The network hashrate's drawdown events: Poisson counts against closed forms, their shape,
seasons, own streams, and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kzsim.engine.draws import draw_block
from kzsim.model import loops, processes
from kzsim.model.paths import Calendar
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.errors import ScenarioError
from tests.conftest import assert_same_draws, make_scenario

Z = 4.0


def _drawdowns(horizon_days: int = 365, **keys):
    sc = make_scenario(**{"simulation.horizon_days": horizon_days, **keys})
    cal = Calendar.of(sc)
    return sc, cal, draw_block(sc, cal, 11, 0)[1]


def test_a_permanent_drawdown_counts_are_poisson_so_the_log_hashrate_has_closed_form_moments():
    """Depth d that never recovers: log(H_T / H_0) = N log(1 - d), N ~ Poisson(rate (T - 1) / 365)."""
    rate, depth, n_days = 3.0, 0.2, 365
    _, _, draws = _drawdowns(
        n_days,
        **{
            "market.hashrate_drawdown_rate_per_year": rate,
            "market.hashrate_drawdown_depth": depth,
            "market.hashrate_drawdown_recovery_days": 1e12,  # as good as never
        },
    )
    log_last = np.log(draws.hashrate_drawdown[-1])
    lam = rate * (n_days - 1) / 365
    mean, var = lam * math.log(1 - depth), lam * math.log(1 - depth) ** 2
    assert abs(log_last.mean() - mean) < Z * math.sqrt(var / BLOCK_PATHS)
    counts = np.round(log_last / math.log(1 - depth))
    np.testing.assert_allclose(log_last, counts * math.log(1 - depth), atol=1e-9)  # whole events
    # the variance of a Poisson count equals its mean; sd of the sample variance ~ sqrt((lam + 2 lam^2) / n)
    assert abs(counts.var(ddof=1) - lam) < Z * math.sqrt((lam + 2 * lam**2) / BLOCK_PATHS)
    assert (draws.hashrate_drawdown[0] == 1.0).all()  # day 0 is the start value


def test_a_drawdown_recovers_linearly_and_overlapping_ones_multiply():
    factor = loops.drawdown_factor(8, 2, [1, 2, 3], [0, 0, 1], [0.5, 0.2, 0.3], [4.0, 1.0, 2.0])
    first = 1 - 0.5 * (1 - (np.arange(8) - 1) / 4.0)
    first[(np.arange(8) < 1) | (np.arange(8) >= 5)] = 1.0
    expected0 = first.copy()
    expected0[2] *= 1 - 0.2  # the second event, of one day, takes its share of what is on
    np.testing.assert_allclose(factor[:, 0], expected0, rtol=1e-15)
    np.testing.assert_allclose(factor[:, 1], [1, 1, 1, 0.7, 0.85, 1, 1, 1], rtol=1e-15)


def test_the_network_follows_the_drawdown_and_difficulty_follows_at_the_next_retarget():
    n_days, n = 60, 1
    share = np.ones((n_days, n))
    share[10:] = 0.7  # 30 % of the hashrate off from day 10 on
    h = processes.network_hashrate(np.full(n, 1e21), 0.0, 0.0, np.zeros((n_days - 1, n)), drawdown=share)
    np.testing.assert_allclose(h[:, 0], 1e21 * share[:, 0], rtol=1e-14)  # exp(log(x)) rounds
    d0 = 1e21 * 600 / 2**32
    difficulty, blocks, _ = processes.chain(h, d0, 0.0)
    assert blocks[9, 0] == pytest.approx(144.0) and blocks[10, 0] == pytest.approx(0.7 * 144)
    assert difficulty[-1, 0] < d0  # the retarget after the drop lowers it


def test_drawdowns_fall_in_the_months_given_weight_and_keep_the_yearly_rate():
    weights = [0.0] * 12
    weights[6] = 1.0  # July only
    rate = 6.0
    sc, cal, draws = _drawdowns(
        365,
        **{
            "simulation.start_date": "2026-01-01",
            "market.hashrate_drawdown_rate_per_year": rate,
            "market.hashrate_drawdown_depth": 0.5,
            "market.hashrate_drawdown_recovery_days": 0.5,  # the first day only
            "market.hashrate_drawdown_month_weights": weights,
        },
    )
    hit_days = np.nonzero((draws.hashrate_drawdown < 1.0).any(axis=1))[0]
    assert hit_days.size and (cal.month[hit_days] == 7).all()
    events = np.round(np.log(draws.hashrate_drawdown) / math.log(0.5)).sum(axis=0)
    # July carries the whole year's rate, and days 1 .. 364 of 2026 hold all of July: Poisson(rate)
    assert abs(events.mean() - rate) < Z * math.sqrt(rate / BLOCK_PATHS)


def test_drawdowns_have_streams_of_their_own_and_change_no_other_draw():
    _, _, calm = _drawdowns(200)
    _, _, falling = _drawdowns(
        200,
        **{
            "market.hashrate_drawdown_rate_per_year": 4.0,
            "market.hashrate_drawdown_depth": {"dist": "uniform", "low": 0.05, "high": 0.4},
            "market.hashrate_drawdown_recovery_days": {"dist": "lognormal", "median": 20, "sigma": 1.0},
        },
    )
    assert calm.hashrate_drawdown is None
    assert_same_draws(calm, falling)
    assert (falling.hashrate_drawdown > 0).all() and (falling.hashrate_drawdown <= 1).all()
    assert (falling.hashrate_drawdown < 1).any()


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("market.hashrate_drawdown_depth", 0.99, "shares in [0, 0.95]"),
        ("market.hashrate_drawdown_depth", {"dist": "uniform", "low": 0.1, "high": 1.0}, "shares in [0, 0.95]"),
        ("market.hashrate_drawdown_recovery_days", -1.0, "durations in [0, 1e12] days"),
        ("market.hashrate_drawdown_month_weights", [0.0] * 12, "not all 0"),
        ("market.hashrate_drawdown_month_weights", [1.0] * 11, "11 items (allowed: 12 or more)"),
        ("market.hashrate_drawdown_month_weights", [1.0] * 13, "13 items (allowed: at most 12)"),
        ("market.hashrate_drawdown_rate_per_year", -1.0, "market.hashrate_drawdown_rate_per_year"),
    ],
)
def test_bad_drawdown_keys_are_refused_naming_the_key(key, value, words):
    with pytest.raises(ScenarioError) as info:
        make_scenario(**{key: value})
    assert key.split(".", 1)[1] in str(info.value) and words in str(info.value)
