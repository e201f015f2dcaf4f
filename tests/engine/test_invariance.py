"""Bitwise invariants of the named-stream, fixed-block seeding."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from kzsim.engine.merge import TIMESERIES_SAMPLE_PATHS
from kzsim.engine.run import run_paths
from kzsim.model.rng import BLOCK_PATHS, stable_hash
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS

N = BLOCK_PATHS + 9  # crosses a block boundary


@pytest.fixture(scope="module")
def short_baseline():
    # every process and many uncertain parameters, on a short horizon that crosses a year end
    return load_scenario(
        SCENARIOS / "kz-2025-baseline.yaml",
        {"simulation.horizon_days": 12, "simulation.start_date": "2026-12-25"},
    )


@pytest.fixture(scope="module")
def reference(short_baseline):
    return run_paths(short_baseline, paths=N, chunk_paths=N)


def assert_same_run(a, b):
    assert a.per_path.keys() == b.per_path.keys()
    for store in ("per_path", "parameters", "daily_quantiles", "daily_quantiles_ci95", "daily_mean"):
        for key, value in getattr(a, store).items():
            assert_array_equal(value, getattr(b, store)[key], err_msg=f"{store}.{key}")


@pytest.mark.parametrize("chunk_paths", [1, 7, BLOCK_PATHS, 1000])
def test_same_seed_same_bits_for_any_chunk_size(short_baseline, reference, chunk_paths):
    assert_same_run(run_paths(short_baseline, paths=N, chunk_paths=chunk_paths), reference)


@pytest.mark.parametrize(
    ("threads", "chunk_paths"),
    [(1, BLOCK_PATHS), (2, None), (1, 2 * BLOCK_PATHS), (1, 300)],
)
def test_blocks_past_the_sample_give_the_same_bits(short_baseline, threads, chunk_paths):
    """Whole blocks past the sampled paths come back as per-day sums taken in the kernel (no
    per-day values): the run is the one chunk's, where every path's per-day values are summed."""
    n = TIMESERIES_SAMPLE_PATHS + BLOCK_PATHS + 9  # a whole block past the sample, and a part
    one_chunk = run_paths(short_baseline, paths=n, chunk_paths=n)
    assert_same_run(run_paths(short_baseline, paths=n, chunk_paths=chunk_paths, threads=threads), one_chunk)


@pytest.mark.parametrize(("threads", "chunk_paths"), [(2, None), (3, 7), (2, 300), (4, BLOCK_PATHS // 2)])
def test_same_seed_same_bits_for_any_number_of_threads(short_baseline, reference, threads, chunk_paths):
    """Threads take tasks of one chunk, or of the chunks of a block (chunks of 7 and 300 do
    not divide a block: tasks then cross blocks and draw them again)."""
    assert_same_run(run_paths(short_baseline, paths=N, chunk_paths=chunk_paths, threads=threads), reference)


def test_a_path_does_not_depend_on_how_many_paths_are_run(short_baseline, reference):
    small = run_paths(short_baseline, paths=100)
    for key, value in small.per_path.items():
        assert_array_equal(value, reference.per_path[key][:100], err_msg=key)


S = TIMESERIES_SAMPLE_PATHS


@pytest.mark.parametrize(
    ("before", "after", "chunk_paths", "threads", "taken"),
    [
        (S + 9, S + 2 * BLOCK_PATHS + 5, None, 1, S),  # a partial block simulated again
        (S, S + 1904, 300, 2, S),  # chunks and thread tasks that do not divide a block
        (S + BLOCK_PATHS, S + BLOCK_PATHS, None, 2, S + BLOCK_PATHS),  # nothing left to simulate
        (S - 1, S + 100, None, 1, 0),  # the per-day sample was not whole: from scratch
    ],
)
def test_extending_a_run_gives_the_bits_of_a_run_from_scratch(
    short_baseline, before, after, chunk_paths, threads, taken
):
    earlier = run_paths(short_baseline, paths=before)
    calls = []
    kwargs = {"chunk_paths": chunk_paths, "threads": threads}
    longer = run_paths(short_baseline, paths=after, extend=earlier, progress=lambda *a: calls.append(a), **kwargs)
    assert_same_run(longer, run_paths(short_baseline, paths=after))
    assert longer.taken_paths == taken
    assert calls[-1:] == ([(after - taken,) * 2] if after > taken else [])  # the paths simulated


def test_extending_an_extended_run_and_runs_without_percentiles(short_baseline):
    antithetic = short_baseline.replace(**{"simulation.variance_reduction": "antithetic"})
    first = run_paths(antithetic, paths=S + 600)
    second = run_paths(antithetic, paths=S + 3000, extend=first)
    third = run_paths(antithetic, paths=S + 5000, extend=second, chunk_paths=700)
    assert (second.taken_paths, third.taken_paths) == (S, S + 2 * BLOCK_PATHS)
    assert_same_run(third, run_paths(antithetic, paths=S + 5000))
    # without the sample, a short run's whole blocks are taken too
    short = run_paths(short_baseline, paths=BLOCK_PATHS + 9, percentiles=False)
    longer = run_paths(short_baseline, paths=3 * BLOCK_PATHS, percentiles=False, extend=short)
    assert longer.taken_paths == BLOCK_PATHS and not longer.daily_quantiles
    assert_same_run(longer, run_paths(short_baseline, paths=3 * BLOCK_PATHS, percentiles=False))


def test_extending_a_prefix_moves_its_columns_out(short_baseline):
    """(so that simulate_to_precision does not hold a round's table beside the next one's)"""
    import gc
    import weakref

    earlier = run_paths(short_baseline, paths=S + 10)
    again = run_paths(short_baseline, paths=S + 20, extend=earlier)  # from the run: copied
    prefix, profit = earlier.prefix, weakref.ref(earlier.per_path["profit_usd"])
    del earlier
    longer = run_paths(short_baseline, paths=S + 20, extend=prefix)
    gc.collect()
    assert profit() is None and not prefix.per_path  # freed with the earlier run
    assert_same_run(longer, again)
    with pytest.raises(ValueError, match="moved into another run already"):
        run_paths(short_baseline, paths=S + 30, extend=prefix)


def test_a_run_extends_only_a_shorter_run_of_the_same_scenario_and_seed(short_baseline, reference):
    with pytest.raises(ValueError, match="same scenario and seed"):
        run_paths(short_baseline, paths=2 * N, seed=7, extend=reference)
    with pytest.raises(ValueError, match="same scenario and seed"):
        run_paths(short_baseline.replace(**{"electricity.tariff_kzt_per_kwh": 30}), paths=2 * N, extend=reference)
    with pytest.raises(ValueError, match=f"has {N} paths, more than the 10"):
        run_paths(short_baseline, paths=10, extend=reference)
    with pytest.raises(ValueError, match="same percentiles"):
        run_paths(short_baseline, paths=2 * N, percentiles=False, extend=reference)
    overrides = {"farm.pool_fee_share": np.full(N, 0.02)}
    with pytest.raises(ValueError, match="overrides"):
        run_paths(short_baseline, paths=N, overrides=overrides, extend=reference)
    assert run_paths(short_baseline, paths=N, overrides=overrides).prefix is None


def test_another_seed_gives_other_draws(short_baseline, reference):
    other = run_paths(short_baseline, paths=N, seed=12345)
    assert not np.array_equal(other.per_path["final_btc_price_usd"], reference.per_path["final_btc_price_usd"])


def test_adding_an_input_changes_no_other_draw(short_baseline, reference):
    """The 70/30 plan adds streams of its own; price, outages and parameters keep their bits."""
    plan = {
        "build_probability": 0.5,
        "online_delay_days": 3,
        "plant_capacity_mw": 100,
        "farm_allocation_share": {"dist": "uniform", "low": 0.01, "high": 0.02},
    }
    with_plan = run_paths(short_baseline.replace(**{"electricity.plan_70_30": plan}), paths=N)
    for key in (
        "final_btc_price_usd",
        "final_usd_kzt",
        "final_difficulty",
        "downtime_grid_hours",
        "downtime_payment_hours",
        "grid_outages",
        "btc_mined",
    ):
        if key == "btc_mined":  # more quota: more BTC on some paths, never less
            assert np.all(with_plan.per_path[key] >= reference.per_path[key])
            continue
        assert_array_equal(with_plan.per_path[key], reference.per_path[key], err_msg=key)
    for key, value in reference.parameters.items():
        assert_array_equal(with_plan.parameters[key], value, err_msg=key)


def test_making_a_parameter_uncertain_changes_no_other_parameter(short_baseline, reference):
    changed = short_baseline.replace(**{"farm.pool_fee_share": {"dist": "uniform", "low": 0.02, "high": 0.03}})
    other = run_paths(changed, paths=N)
    for key, value in reference.parameters.items():
        if key != "farm.pool_fee_share":
            assert_array_equal(other.parameters[key], value, err_msg=key)


def test_stream_names_hash_the_same_everywhere():
    # golden values: a change here would silently change every published result
    assert stable_hash("process:btc_price") == 0x8A578C44F2B1B4EA
    from kzsim.model.rng import stream

    assert_array_equal(stream(1, "process:btc_price", 0).standard_normal(2), GOLDEN_FIRST_DRAWS)


GOLDEN_FIRST_DRAWS = np.array([-0.5963302450570911, -0.9650408791324886])  # numpy PCG64 + SeedSequence
