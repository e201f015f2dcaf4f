"""Pure processes with injected shocks: drift paths, event splitting, retargets, halvings."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from kzsim.model import processes
from kzsim.units import TWO_POW_32


def test_gbm_zero_shocks_is_the_drift_path():
    mu, sigma = np.array([0.1, -0.2]), np.array([0.5, 0.3])
    out = processes.gbm(np.array([100.0, 50.0]), mu, sigma, np.zeros((4, 2)))
    t = np.arange(5)[:, None] / 365
    assert_allclose(out, np.array([100.0, 50.0]) * np.exp((mu - sigma**2 / 2) * t), rtol=1e-14)


def test_gbm_log_returns_are_the_scaled_shocks():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((10, 4))
    out = processes.gbm(np.full(4, 2.0), np.zeros(4), np.full(4, 0.73), z)
    inc = np.diff(np.log(out), axis=0)
    assert_allclose(inc, -0.5 * 0.73**2 / 365 + 0.73 / np.sqrt(365) * z, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (18.0, 48.0, [6, 24, 18, 0]),  # MODEL.md's example
        (0.0, 24.0, [24, 0, 0, 0]),
        (5.0, 2.5, [2.5, 0, 0, 0]),
        (23.0, 1.0, [1, 0, 0, 0]),
        (23.0, 1.5, [1, 0.5, 0, 0]),
        (60.0, 500.0, [0, 0, 12, 24]),  # runs past the horizon: truncated
    ],
)
def test_outage_hours_split_across_days_exactly(start, duration, expected):
    hours = processes.event_hours_per_day(np.array([0]), np.array([start]), np.array([duration]), 1, 4)
    assert_array_equal(hours[:, 0], expected)


def test_overlapping_outages_count_each_hour_once():
    # two outages on path 1 overlap (10-20 h and 15-30 h), one on path 0 is separate
    hours = processes.event_hours_per_day(
        np.array([1, 0, 1]), np.array([15.0, 2.0, 10.0]), np.array([15.0, 1.0, 10.0]), 2, 2
    )
    assert_array_equal(hours[:, 0], [1, 0])
    assert_array_equal(hours[:, 1], [14, 6])  # union 10-30 h: 14 h on day 0, 6 h on day 1
    assert hours.max() <= 24


def test_unmerged_events_add_up():
    hours = processes.event_hours_per_day(
        np.array([0, 0]), np.array([1.0, 1.5]), np.array([3.0, 3.0]), 1, 1, merge=False
    )
    assert_array_equal(hours[:, 0], [6.0])


def test_many_random_outages_never_exceed_a_day_and_match_a_slow_count():
    rng = np.random.default_rng(7)
    n_events, n_paths, n_days = 300, 5, 40
    path = rng.integers(0, n_paths, n_events)
    start = rng.uniform(0, n_days * 24, n_events)
    dur = rng.lognormal(2.0, 1.2, n_events)
    hours = processes.event_hours_per_day(path, start, dur, n_paths, n_days)
    assert hours.min() >= 0 and hours.max() <= 24
    # slow reference: a minute grid per path
    grid = np.zeros((n_paths, n_days * 24 * 60), dtype=bool)
    for p, s, d in zip(path, start, dur):
        a, b = int(np.ceil(s * 60)), int(np.ceil(min(s + d, n_days * 24) * 60))
        grid[p, a:b] = True
    slow = grid.reshape(n_paths, n_days, 24 * 60).sum(axis=2).T / 60
    assert_allclose(hours, slow, atol=len(path) / 60)  # each event edge moves at most a minute


def _dense_event_hours(path, start, end, n_paths, n_days):
    """Hours per day with whole days as a dense +24/-24 running sum (the former method)."""
    hours = np.zeros((n_days + 1, n_paths))
    full = np.zeros((n_days + 1, n_paths))
    d0, d1 = np.floor(start / 24).astype(np.int64), np.floor(end / 24).astype(np.int64)
    same = d0 == d1
    np.add.at(hours, (d0[same], path[same]), end[same] - start[same])
    p, a, b = path[~same], d0[~same], d1[~same]
    np.add.at(hours, (a, p), (a + 1) * 24 - start[~same])
    np.add.at(hours, (b, p), end[~same] - b * 24)
    many = b > a + 1
    np.add.at(full, (a[many] + 1, p[many]), 24.0)
    np.add.at(full, (b[many], p[many]), -24.0)
    return (hours + np.cumsum(full, axis=0))[:n_days]


def test_whole_days_of_long_overlapping_events_are_added_as_a_running_sum_would():
    """Unmerged events of up to 5 days, many overlapping: the same bits as the dense method."""
    rng = np.random.default_rng(11)
    n_events, n_paths, n_days = 2000, 7, 30
    path = rng.integers(0, n_paths, n_events)
    start = rng.uniform(0, (n_days - 6) * 24, n_events)
    duration = rng.uniform(0, 120, n_events)
    hours = processes.event_hours_per_day(path, start, duration, n_paths, n_days, merge=False)
    assert np.array_equal(hours, _dense_event_hours(path, start, start + duration, n_paths, n_days))


def _matched_difficulty(hashrate_hs):
    return hashrate_hs * 600 / TWO_POW_32


def test_chain_retargets_to_the_window_hashrate():
    h0 = 1e21
    days = 40
    hashrate = np.full((days, 1), 2 * h0)  # hashrate doubles on day 0
    d0 = _matched_difficulty(h0)
    difficulty, blocks, subsidy = processes.chain(hashrate, np.array([d0]), 900_000, epoch_blocks0=np.array([0.0]))
    # 288 blocks a day: the 2016-block window closes after 7 days, then difficulty doubles
    assert_allclose(blocks[:7, 0], 288, rtol=1e-12)
    assert_allclose(difficulty[:7, 0], d0, rtol=1e-12)
    assert_allclose(difficulty[7, 0], 2 * d0, rtol=1e-12)
    assert_allclose(blocks[7:, 0], 144, rtol=1e-12)
    assert_allclose(subsidy, 3.125)


def test_chain_bounds_a_retarget_to_four_times():
    h0 = 1e21
    hashrate = np.full((5, 1), 10 * h0)
    d0 = _matched_difficulty(h0)
    difficulty, _, _ = processes.chain(hashrate, np.array([d0]), 0, epoch_blocks0=np.array([0.0]))
    assert_allclose(difficulty[-1, 0], 4 * d0, rtol=1e-12)


def test_chain_halves_the_subsidy_at_block_1050000_within_the_day():
    h0 = 1e21
    hashrate = np.full((3, 1), h0)
    height0 = 1_050_000 - 144 - 44  # 44 blocks into day 1 the subsidy halves
    _, blocks, subsidy = processes.chain(hashrate, np.array([_matched_difficulty(h0)]), height0)
    assert_allclose(blocks[:, 0], 144, rtol=1e-12)
    assert_allclose(subsidy[0, 0], 3.125, rtol=1e-12)
    assert_allclose(subsidy[1, 0], (44 * 3.125 + 100 * 1.5625) / 144, rtol=1e-9)
    assert_allclose(subsidy[2, 0], 1.5625, rtol=1e-12)


def test_hashrate_follows_the_price_with_a_lag():
    days = 400
    log_ratio = np.full((days, 1), np.log(2.0))  # price doubles on day 0 and stays
    log_ratio[0] = 0.0
    h = processes.network_hashrate(
        np.array([1e21]),
        np.zeros(1),
        np.zeros(1),
        np.zeros((days - 1, 1)),
        log_price_ratio=log_ratio,
        price_elasticity=np.array([0.5]),
        lag_days=np.array([90.0]),
    )
    assert_allclose(h[0, 0], 1e21, rtol=1e-14)
    assert h[1, 0] < h[30, 0] < h[-1, 0] < 1e21 * 2**0.5
    # the smoothed log price closes the gap by 1/90 a day: (89/90)^(t) of it is left on day t
    t = np.arange(days)
    expected = 1e21 * np.exp(0.5 * np.log(2.0) * (1 - (89 / 90) ** t))
    assert_allclose(h[:, 0], expected, rtol=1e-12)


def test_row_loop_accumulations_have_numpys_bits():
    from kzsim.model.processes import ROW_LOOP_MIN_PATHS, cumsum_days, running_max_days

    x = np.random.default_rng(3).standard_normal((60, ROW_LOOP_MIN_PATHS + 5)) * 1e3
    assert cumsum_days(x).tobytes() == np.cumsum(x, axis=0).tobytes()
    assert running_max_days(x).tobytes() == np.maximum.accumulate(x, axis=0).tobytes()
    out = np.empty_like(x)
    assert cumsum_days(x, out=out) is out


@pytest.mark.parametrize("paths", [7, 1])
def test_smoothing_over_its_input_gives_the_same_bits(paths):
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.3, (50, 7)).cumsum(axis=0)
    lag = np.array([1.0, 2.0, 5.0, 30.0, 90.0, 0.5, 400.0])
    if paths == 1:  # one path: 1-D along days
        x, lag = x[:, 1].copy(), lag[1]
    apart = processes.exponential_smoothing(x, lag)
    assert apart is not x and apart[1:].tobytes() != x[1:].tobytes()
    # e_1 = x_0 + (x_1 - x_0) / 2 by hand for the 2-day path
    first = apart[1] if paths == 1 else apart[1, 1]
    xs = x if paths == 1 else x[:, 1]
    assert first == xs[0] + 0.5 * (xs[1] - xs[0])
    over = x.copy()
    result = processes.exponential_smoothing(over, lag, overwrite_input=True)
    assert result is over and result.tobytes() == apart.tobytes()
