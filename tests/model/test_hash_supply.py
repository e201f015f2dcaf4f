"""Hash supply that answers the hashprice: a post-halving drop emerges, at the equilibrium the equations give."""

from __future__ import annotations

import math

import numpy as np

from kzsim.engine.run import run_paths
from tests.conftest import make_scenario

HALVING_IN_DAYS = 90
SETS = {
    "simulation.start_date": "2028-01-01",
    "simulation.horizon_days": 1000,
    "market.start_block_height": 1_050_000 - 144 * HALVING_IN_DAYS,
    "market.hashrate_response_lag_days": 30,
    "market.fees_btc_per_block": 0.0,
    "market.fees_log_volatility": 0.0,
}


def final_hashrate(elasticity: float, responds_to: str) -> float:
    sc = make_scenario(
        **SETS, **{"market.hashrate_price_elasticity": elasticity, "market.hashrate_responds_to": responds_to}
    )
    return float(run_paths(sc, paths=1).per_path["final_network_hashrate_eh"][0])


def test_halving_drop_emerges_at_the_equilibrium():
    # constant price and trend: H / H0 = (hashprice / hashprice0)^e and hashprice ~ reward / D with D tracking H,
    # so after the halving (H / H0)^(1 + e) = (1/2)^e
    for e in (0.5, 1.0, 2.0):
        assert math.isclose(final_hashrate(e, "hashprice") / 1000.0, 0.5 ** (e / (1 + e)), rel_tol=1e-6), e
    assert math.isclose(final_hashrate(1.0, "price"), 1000.0, rel_tol=1e-12)  # the price did not move: no response


def test_no_elasticity_means_the_same_bits_either_way():
    a = run_paths(make_scenario(**SETS, **{"market.hashrate_responds_to": "hashprice"}), paths=3).per_path
    b = run_paths(make_scenario(**SETS, **{"market.hashrate_responds_to": "price"}), paths=3).per_path
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_hashrate_is_flat_before_the_halving_and_falls_after():
    from kzsim.engine.draws import draw_block
    from kzsim.model.paths import Calendar, simulate_paths

    sc = make_scenario(**SETS, **{"market.hashrate_price_elasticity": 1.0, "market.hashrate_responds_to": "hashprice"})
    cal = Calendar.of(sc)
    p, d = draw_block(sc, cal, 1, 0)
    per_path, daily = simulate_paths(sc, cal, {k: v[:1] for k, v in p.items()}, d.take(slice(0, 1)))
    hp = daily["hashprice_usd_per_th_day"][:, 0]
    assert np.allclose(hp[: HALVING_IN_DAYS - 1], hp[0], rtol=1e-12)  # flat until the halving
    assert hp[HALVING_IN_DAYS + 1] < 0.55 * hp[0]  # halved at the halving
    assert 0.70 * hp[0] < hp[-1] < 0.72 * hp[0]  # and recovered to 1/sqrt(2) as hashrate left
