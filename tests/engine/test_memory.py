"""Memory that does not grow with what it need not: constant columns, Parquet in row groups."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from kzsim.engine.merge import Column
from kzsim.engine.run import run_paths
from kzsim.io import outputs
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS


def test_a_column_stays_one_value_until_a_path_differs_in_any_chunk_order():
    column = Column(9)
    column.put(6, np.full(3, 2.5))
    column.put(0, np.full(3, 2.5))
    assert column.array is None and column.values().strides == (0,)
    column.put(3, np.array([2.5, 7.0, 2.5]))  # the middle chunk arrives last and differs
    np.testing.assert_array_equal(column.values(), [2.5, 2.5, 2.5, 2.5, 7.0, 2.5, 2.5, 2.5, 2.5])


def test_a_column_compares_bits_so_signed_zeros_and_nans_survive():
    zeros = Column(2)
    zeros.put(0, np.array([0.0]))
    zeros.put(1, np.array([-0.0]))
    assert np.signbit(zeros.values()).tolist() == [False, True]
    nans = Column(4)
    nans.put(0, np.full(4, np.nan))
    assert nans.array is None and np.isnan(nans.values()).all()


def test_fixed_parameters_take_no_memory_and_drawn_ones_keep_every_path():
    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml")
    run = run_paths(sc, paths=2500, chunk_paths=1000)
    uncertain = {name for name, dist in sc.uncertain_parameters().items() if not dist.is_fixed}
    for name, values in run.parameters.items():
        assert (values.strides == (0,)) == (name not in uncertain), name
        assert values.shape == (2500,)


def test_the_path_table_is_written_in_row_groups_with_every_bit(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "PARQUET_ROWS_PER_GROUP", 64)
    rng = np.random.default_rng(0)
    columns = {
        "path": np.arange(300),
        "profit_usd": rng.standard_normal(300),
        "param.constant": np.broadcast_to(np.float64(3.5), (300,)),
        "payback_days": np.where(rng.random(300) < 0.5, np.nan, 100.0),
    }
    outputs.write_path_table(columns, tmp_path / "paths.parquet")
    table = pq.read_table(tmp_path / "paths.parquet")
    assert pq.ParquetFile(tmp_path / "paths.parquet").metadata.num_row_groups == 5
    for name, values in columns.items():
        np.testing.assert_array_equal(table[name].to_numpy(), values, err_msg=name)


def test_the_resource_model_counts_every_per_path_output():
    from kzsim.engine.resources import PER_PATH_OUTPUTS

    run = run_paths(load_scenario(SCENARIOS / "kz-2025-baseline.yaml"), paths=5)
    assert len(run.per_path) == PER_PATH_OUTPUTS


@pytest.mark.parametrize(("chunk_paths", "threads"), [(600, 1), (1024, 1), (1024, 2), (2048, 1)])
def test_runs_without_percentiles_keep_every_per_path_bit(chunk_paths, threads):
    """Without percentiles no path is sampled: whole blocks from the first take the kernel's
    block sums (the sensitivity analyses' runs, ~12 % faster), with the same bits."""
    from kzsim.engine.run import simulate_chunk

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml")
    full = run_paths(sc, paths=1500, chunk_paths=600)
    lean = run_paths(sc, paths=1500, chunk_paths=chunk_paths, percentiles=False, threads=threads)
    first = simulate_chunk(sc, full.seed, 0, 1024, 1500, percentiles=False)
    assert first.sample is first.head is first.tail is None and len(first.block_sums) == 1
    assert lean.daily_quantiles == {} and lean.sample_paths == 0
    for key, values in full.per_path.items():
        assert lean.per_path[key].tobytes() == values.tobytes(), key
    for key, values in full.daily_mean.items():
        assert lean.daily_mean[key].tobytes() == values.tobytes(), key


def test_constant_columns_travel_as_one_value_and_merge_to_the_same_bits():
    """A task sends a column with the same bits on all its paths as one value; merged, every
    column is what the full rows give, whatever is constant in which task."""
    from dataclasses import replace

    from kzsim.engine.merge import Merger, compact_chunk
    from kzsim.engine.run import simulate_chunk

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml")
    n = 3000
    chunks = []
    for i, (a, b) in enumerate([(0, 1024), (1024, 2048), (2048, n)]):
        chunk = simulate_chunk(sc, 5, a, b, n)
        table = chunk.per_path.copy()
        table[0] = [7.0, 8.0, 7.0][i]  # constant in every chunk, two values in all
        table[1] = [np.nan, -0.0, 0.0][i]  # NaN, then signed zeros
        table[2, 1:] = table[2, 0] if i == 1 else table[2, 1:]  # constant in one chunk only
        chunks.append(replace(chunk, per_path=table))
    compact = [compact_chunk(c) for c in chunks]
    assert {chunks[0].per_path_names[k] for k in (0, 1)} <= set(compact[0].per_path_constants)
    assert compact[0].parameter_constants and compact[0].parameters.shape[0] < chunks[0].parameters.shape[0]
    full, small = Merger(n, sc.simulation.horizon_days), Merger(n, sc.simulation.horizon_days)
    for c, d in zip(reversed(chunks), reversed(compact)):
        full.add(c)
        small.add(d)
    for store in ("per_path", "parameters"):
        a, b = getattr(full, store), getattr(small, store)
        assert list(a) == list(b)  # the same columns in the same order
        for name in a:
            assert a[name].values().tobytes() == b[name].values().tobytes(), name


def test_compacted_results_are_not_combined_again():
    """combine_chunks concatenates whole tables: given compacted ones it would drop columns, so it refuses."""
    from kzsim.engine.merge import combine_chunks, compact_chunk
    from kzsim.engine.run import simulate_chunk

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml")
    parts = [compact_chunk(simulate_chunk(sc, 5, 0, 100, 200)), simulate_chunk(sc, 5, 100, 200, 200)]
    with pytest.raises(ValueError, match="compacted"):
        combine_chunks(parts, 200)


def test_a_block_past_the_sample_holds_no_per_day_values(monkeypatch):
    """Its per-day sums are taken in the kernel: the chunk never holds the (n_days, paths)
    arrays of P&L, up fraction and hashprice that a sampled block returns. Measured with
    tracemalloc (which counts numpy's buffers, whatever the timing) as the kernel starts."""
    import tracemalloc

    from kzsim.engine.merge import TIMESERIES_SAMPLE_PATHS
    from kzsim.engine.run import simulate_chunk
    from kzsim.model import kernel
    from kzsim.model.rng import BLOCK_PATHS

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 200})
    n = TIMESERIES_SAMPLE_PATHS + BLOCK_PATHS
    held = []
    economics = kernel.economics

    def measured(*args):
        held.append(tracemalloc.get_traced_memory()[0])
        economics(*args)

    monkeypatch.setattr(kernel, "economics", measured)
    tracemalloc.start()
    try:
        sampled = simulate_chunk(sc, 1, 0, BLOCK_PATHS, n)
        del sampled
        past = simulate_chunk(sc, 1, TIMESERIES_SAMPLE_PATHS, n, n)
    finally:
        tracemalloc.stop()
    assert past.sample is past.head is past.tail is None and len(past.block_sums) == 1
    per_day_array = 200 * BLOCK_PATHS * 8
    sums = 4 * 200 * 8  # what it holds instead: four per-day sums
    # tracemalloc also counts Python objects (numba's dispatch of the Generator, headers): up
    # to 64 KB of them, where one per-day array is 1.6 MB
    assert held[0] - held[1] >= 3 * per_day_array - sums - 65_536
