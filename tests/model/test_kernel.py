"""The model (its compiled day loop) against the independent numpy reference of the tests
(``tests/reference/numpy_model.py``): the same bits, everywhere; and the compiled helpers."""

from __future__ import annotations

import numpy as np
import pytest

from kzsim.engine.draws import inputs_for
from kzsim.model import loops
from kzsim.model.finance import has_decisions
from kzsim.model.paths import Calendar, Draws, block_sum, btc_per_th_day, per_block_sums, simulate_paths
from kzsim.model.rng import BLOCK_PATHS
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS, make_scenario
from tests.reference.numpy_model import simulate_paths as reference_paths


def assert_kernels_agree(sc, paths: int = 300, seed: int = 11) -> None:
    """The compiled kernel as the engine's chunks run it (draws handed over, the day-ahead
    factor computed over its normals) against the numpy reference on the same draws."""
    cal = Calendar.of(sc)
    p, draws = inputs_for(sc, cal, seed, 0, paths)
    owned = Draws(**{k: None if v is None else v.copy() for k, v in draws.__dict__.items()})  # C order, own memory
    fast, fast_daily = simulate_paths(sc, cal, p, owned, release_draws=True)
    assert owned.btc_price is owned.usd_kzt is owned.network_hashrate is owned.fees is owned.day_ahead_price is None
    ref, ref_daily = reference_paths(sc, cal, p, draws)
    # past the sample the engine asks for per-day sums over each block: summed in the kernel
    _, fast_sums = simulate_paths(sc, cal, p, draws, block_sums=True)
    _, ref_sums = reference_paths(sc, cal, p, draws, block_sums=True)
    for key in ref_daily:
        np.testing.assert_array_equal(ref_sums[key], per_block_sums(ref_daily[key]), err_msg=key)
        np.testing.assert_array_equal(fast_sums[key], ref_sums[key], err_msg=key)
    assert fast.keys() == ref.keys() and fast_daily.keys() == ref_daily.keys()
    for key in ref:
        np.testing.assert_array_equal(fast[key], ref[key], err_msg=key)
    for key in ref_daily:
        np.testing.assert_array_equal(fast_daily[key], ref_daily[key], err_msg=key)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_kernel_gives_the_reference_bits_on_every_shipped_scenario(path):
    """(Hedges, financing and the resale come after the kernel, kzsim.model.finance: tests/model/test_finance.py.)"""
    sc = load_scenario(path)
    if has_decisions(sc):
        sc = sc.replace(**{"hedges": [], "financing": None, "farm.resale": None})
    assert_kernels_agree(sc)


BASE = "scenarios/kz-2025-baseline.yaml"


@pytest.mark.parametrize(
    "overrides",
    [
        # lots, with rare (sparse) and frequent payment failures, and a farm smaller than a lot
        {"electricity.procurement_mode": "lots", "electricity.payment_failure_probability": 0.01},
        {"electricity.procurement_mode": "lots", "electricity.payment_failure_probability": 0.2},
        {"electricity.procurement_mode": "lots", "electricity.lot_size_mwh": 500.0},
        # coins held, AIFC lags of 0, 5 and 30 days (two ways of counting the coins waiting)
        {"regulation.treasury_policy": "hold", "regulation.aifc_settlement_lag_days": 0},
        {"regulation.aifc_settlement_lag_days": 5},
        {"regulation.aifc_settlement_lag_days": 30, "regulation.treasury_policy": "hold"},
        # economic shut-off with restarts, failures and ageing; a horizon shorter than the lag
        {
            "farm.economic_shutoff": True,
            "farm.shutoff_restart_cost_usd": 5000.0,
            "farm.hardware_failure_rate_per_year": 0.2,
        },
        {"simulation.horizon_days": 20, "regulation.aifc_settlement_lag_days": 30},
        # other price models and the hashprice response (the numpy chain)
        {
            "market.price_model": "jump_diffusion",
            "market.jump_diffusion": {"jumps_per_year": 3.0, "jump_mean_log": -0.1, "jump_volatility_log": 0.2},
        },
        {"market.hashrate_responds_to": "hashprice"},
    ],
    ids=lambda o: ",".join(f"{k.split('.')[-1]}={v}" for k, v in o.items()),
)
def test_kernel_gives_the_reference_bits_on_variants(overrides):
    base = load_scenario(BASE).model_dump(mode="json", exclude_none=True)
    assert_kernels_agree(make_scenario(base, **overrides))


def test_the_kernel_sums_each_block_of_paths_as_block_sum_does():
    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 40})
    cal = Calendar.of(sc)
    p, draws = inputs_for(sc, cal, 5, 0, 2 * 1024 + 9)  # two whole blocks and 9 paths of a third
    _, full = simulate_paths(sc, cal, p, draws)
    _, sums = simulate_paths(sc, cal, p, draws, block_sums=True)
    for key, values in full.items():
        assert sums[key].shape == (40, 3)
        for b, (lo, hi) in enumerate([(0, 1024), (1024, 2048), (2048, 2057)]):
            assert sums[key][:, b].tobytes() == block_sum(values[:, lo:hi]).tobytes(), (key, b)


@pytest.mark.parametrize("shape", [(729, 1024), (3, 7), (1, 1), (0, 5), (4000, 1024)])
def test_compiled_normals_are_numpys_draws(shape):
    from kzsim.model.rng import stream

    fast_stream, numpy_stream = stream(5, "process:btc_price", 3), stream(5, "process:btc_price", 3)
    fast = loops.standard_normal(fast_stream, shape)
    assert fast.tobytes() == numpy_stream.standard_normal(shape).tobytes()
    assert fast_stream.random(3).tobytes() == numpy_stream.random(3).tobytes()  # the state moved on alike


def test_kernel_gives_the_reference_bits_on_a_replay_of_history():
    from tests.model.test_replay import replay_scenario

    assert_kernels_agree(replay_scenario(**{"farm.economic_shutoff": True}), paths=50)


@pytest.mark.parametrize("height0", [839_000.0, 1_049_900.0, 6_929_000.0])
def test_compiled_chain_is_the_numpy_chain(height0):
    from kzsim.model.processes import chain

    rng = np.random.default_rng(1)
    hashrate = 7e20 * np.exp(np.cumsum(rng.normal(0.0, 0.05, (400, 64)), axis=0))
    d0, h0 = np.full(64, 1.2e14), np.full(64, height0)
    difficulty, blocks, subsidy = chain(hashrate, d0, height0)
    # what the economics and the per-day outputs take of it: BTC a day per TH/s with the
    # fees, each day's difficulty and the network's fees a day
    fees = 0.03 * np.exp(rng.normal(0.0, 0.5, hashrate.shape))
    given = hashrate.copy()
    per_th, last_difficulty, daily_difficulty, fees_day = loops.chain_btc_per_th_day(
        given, fees, d0, h0, np.mod(h0, 2016)
    )
    assert given.tobytes() == hashrate.tobytes()  # the hashrate is left as it was
    assert per_th.tobytes() == btc_per_th_day(difficulty, subsidy, fees).tobytes()
    assert last_difficulty.tobytes() == difficulty[-1].tobytes()
    assert daily_difficulty.tobytes() == difficulty.tobytes()
    assert fees_day.tobytes() == (fees * blocks).tobytes()
    per_th, *_ = loops.chain_btc_per_th_day(np.asfortranarray(hashrate), fees, d0, h0, np.mod(h0, 2016))
    assert per_th.tobytes() == btc_per_th_day(difficulty, subsidy, fees).tobytes()


@pytest.mark.parametrize("per_path", [0.5, 10, 80])  # groups sorted by insertion and by merge sort
def test_event_order_is_lexsorts(per_path):
    rng = np.random.default_rng(3)
    n_paths = 200
    counts = rng.poisson(per_path, n_paths)
    path = np.repeat(np.arange(n_paths), counts)
    start = np.round(rng.uniform(0, 500, path.size), 1)  # rounded: many equal starts on a path
    path = np.append(path, np.arange(n_paths))  # forced events appended, out of path order
    start = np.append(start, np.full(n_paths, 100.0))
    assert np.array_equal(loops.event_order(path, start), np.lexsort((start, path)))


def test_add_at_adds_in_index_order_as_numpy_does():
    rng = np.random.default_rng(4)
    rows, columns = rng.integers(0, 5, 10_000), rng.integers(0, 3, 10_000)
    values = rng.lognormal(0.0, 3.0, 10_000)  # very different magnitudes: the order of the adds shows in the bits
    fast, slow = np.zeros((5, 3)), np.zeros((5, 3))
    loops.add_at(fast, rows, columns, values)
    np.add.at(slow, (rows, columns), values)
    assert fast.tobytes() == slow.tobytes()
    loops.add_at(fast, rows[:3], columns[:3], 24.0)  # a scalar value, as numpy broadcasts it
    np.add.at(slow, (rows[:3], columns[:3]), 24.0)
    assert fast.tobytes() == slow.tobytes()


@pytest.mark.parametrize("n", [1, 2, 7, 1024, 1025, 3000])
def test_per_block_sums_are_block_sum_of_each_block_bit_for_bit(n):
    """The compiled per-block sums add in block_sum's order (the kernel's and the engine's)."""
    x = np.random.default_rng(n).standard_normal((5, n)) * 1e6
    got = per_block_sums(x)
    want = np.stack([block_sum(x[:, a : a + BLOCK_PATHS]) for a in range(0, n, BLOCK_PATHS)], axis=1)
    assert got.shape == want.shape and (got.view(np.int64) == want.view(np.int64)).all()


@pytest.mark.parametrize(("n_days", "n"), [(730, 1024), (5, 3), (1, 4)])
def test_fee_spikes_in_one_pass_give_the_numpy_bits(n_days, n):
    """fees x median x (1 + the spikes' AR(1)) compiled in one pass: the bits of the AR(1),
    ``+= 1`` and the two products taken one after the other."""
    rng = np.random.default_rng(n_days + n)
    fees = np.exp(rng.standard_normal((n_days, n)))
    median, decay = rng.random(n) * 0.05, np.where(rng.random(n) < 0.2, 0.0, rng.random(n))
    spikes = np.where(rng.random((n_days, n)) < 0.02, rng.random((n_days, n)) * 5, 0.0)
    want = fees * median
    extra = loops.ar1(1.0, decay, 1.0, spikes)
    extra += 1.0
    want *= extra
    got = fees.copy()
    loops.scale_with_spikes(got, median, decay, spikes)
    assert got.tobytes() == want.tobytes()


def test_scaled_smoothing_and_the_fused_product_give_the_numpy_bits():
    """elasticity x EMA in the smoothing's pass, and x *= a * b in one pass (the network's
    price response), against the steps one after the other."""
    rng = np.random.default_rng(11)
    x, a, b = (rng.standard_normal((40, 9)) for _ in range(3))
    alpha, scale = rng.random(9), rng.standard_normal(9)
    want = loops.smooth(alpha, x)
    np.multiply(scale, want, out=want)
    assert loops.smooth(alpha, x, scale=scale).tobytes() == want.tobytes()
    over = x.copy()
    assert loops.smooth(alpha, over, out=over, scale=scale).tobytes() == want.tobytes()  # in place
    y = rng.standard_normal((40, 9))
    fused = y.copy()
    loops.multiply_by_product(fused, a, b)
    steps = a.copy()
    steps *= b
    assert fused.tobytes() == (y * steps).tobytes()
