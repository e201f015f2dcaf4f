"""Rank correlation between uncertain parameters (Iman-Conover): target ranks, unchanged marginals, streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from kzsim.engine.draws import draw_block, draw_parameters
from kzsim.engine.run import run_paths
from kzsim.model.paths import Calendar
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.errors import ScenarioError
from tests.conftest import assert_same_draws, make_scenario

Z = 4.0
A, B, C = "market.btc_volatility_per_year", "market.hashrate_growth_per_year", "electricity.tariff_kzt_per_kwh"
UNCERTAIN = {
    A: {"dist": "uniform", "low": 0.3, "high": 0.7},
    B: {"dist": "normal", "mean": 0.3, "sd": 0.1},
    C: {"dist": "lognormal", "median": 25, "sigma": 0.2},
    "market.btc_drift_per_year": {"dist": "normal", "mean": 0.0, "sd": 0.2},
}


def scenario(pairs, repair=False, **extra):
    dependence = {
        "rank_correlations": [{"between": [a, b], "rank_correlation": r} for a, b, r in pairs],
        "repair": repair,
    }
    return make_scenario(**UNCERTAIN, **{"dependence": dependence, "simulation.horizon_days": 5}, **extra)


def test_ranks_get_the_target_correlations_and_marginals_are_kept():
    pairs = [(A, B, 0.7), (A, C, -0.4)]
    sc = scenario(pairs)
    free = make_scenario(**UNCERTAIN, **{"simulation.horizon_days": 5})
    blocks = 8
    got = {k: [] for k in (A, B, C)}
    for block in range(blocks):
        p = draw_parameters(sc, 11, block)
        q = draw_parameters(free, 11, block)
        for k in (A, B, C):
            np.testing.assert_array_equal(np.sort(p[k]), np.sort(q[k]))  # the same draws, reordered
            got[k].append(p[k])
        np.testing.assert_array_equal(p["market.btc_drift_per_year"], q["market.btc_drift_per_year"])
    n = blocks * BLOCK_PATHS
    se = math.sqrt(1.06 / (n - 3))  # of atanh(Spearman) (Fieller, Hartley & Pearson 1957)
    for a, b, target in pairs + [(B, C, 0.0)]:
        r = stats.spearmanr(np.concatenate(got[a]), np.concatenate(got[b])).statistic
        assert abs(math.atanh(r) - math.atanh(target)) < Z * se, (a, b, r, target)


def test_correlation_changes_no_other_draw():
    sc = scenario([(A, B, 0.5)])
    free = make_scenario(**UNCERTAIN, **{"simulation.horizon_days": 5})
    cal = Calendar.of(sc)
    _, d1 = draw_block(sc, cal, 3, 0)
    _, d0 = draw_block(free, cal, 3, 0)
    assert_same_draws(d0, d1)


def test_same_bits_for_any_chunk_size():
    sc = scenario([(A, B, 0.5), (B, C, 0.3)])
    whole = run_paths(sc, paths=1500, chunk_paths=1500).per_path
    for chunk in (7, 1024):
        part = run_paths(sc, paths=1500, chunk_paths=chunk).per_path
        for k in whole:
            np.testing.assert_array_equal(whole[k], part[k], err_msg=k)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            [("market.btc_volatilty_per_year", B, 0.5)],
            r"is not a per-path parameter did you mean `market.btc_volatility_per_year`",
        ),
        ([("market.usd_kzt", B, 0.5)], r"market.usd_kzt is a constant: correlating it changes nothing"),
        ([(A, A, 0.5)], r"paired with itself"),
        ([(A, B, 0.5), (B, A, 0.2)], r"listed twice"),
        (
            [(A, B, 0.9), (B, C, 0.9), (A, C, -0.9)],
            r"dependence.rank_correlations: these correlations cannot hold together",
        ),
    ],
)
def test_bad_correlations_are_refused_with_the_key(pairs, message):
    with pytest.raises(ScenarioError, match=message) as info:
        scenario(pairs)
    assert "(allowed" in str(info.value)


def test_repair_is_used_only_when_asked_and_reported():
    sc = scenario([(A, B, 0.9), (B, C, 0.9), (A, C, -0.9)], repair=True)
    dep = sc.dependence
    assert dep.max_change > 0.1
    assert np.linalg.eigvalsh(dep.matrix).min() > 0
    import kzsim

    res = kzsim.simulate(sc, paths=50)
    assert res.summary["dependence"]["repaired"] is True
    from kzsim.report.pdf import scenario_block

    assert "REPAIRED to the nearest valid set" in scenario_block(res)
    ok = scenario([(A, B, 0.5)], repair=True)
    assert ok.dependence.max_change == 0.0
