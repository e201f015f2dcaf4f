"""Every shipped scenario gives its recorded golden outputs, in every execution mode.

The cases are written by ``tests/golden/update.py`` (its docstring says when); a change
that is not meant to change numbers must leave them all as they are.
"""

from __future__ import annotations

import pytest

from tests.golden.fingerprint import (
    ANALYSES_SCENARIOS,
    MODES,
    PATHS,
    SEED,
    fingerprint,
    load_case,
    run,
    scenario_files,
    with_analyses,
)

CHEAP_MODES = ("threads-1", "threads-2-chunk-333")  # chunk-7 (slow: 429 chunks) on one scenario below
SCENARIOS = scenario_files()


def _without_analyses(case: dict) -> dict:
    return {k: v for k, v in case.items() if k != "summary_with_analyses"}


def test_every_shipped_scenario_has_a_case():
    assert SCENARIOS
    for path in SCENARIOS:
        assert load_case(path)["summary"]["scenario"] == path.stem


@pytest.mark.parametrize("mode", CHEAP_MODES)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_same_outputs_as_recorded(path, mode):
    assert run(path, **MODES[mode]) == _without_analyses(load_case(path))


def test_chunks_of_seven_paths_give_the_recorded_outputs():
    path = next(p for p in SCENARIOS if p.stem == "halving-2028")  # the scenario that uses most of the model
    assert run(path, **MODES["chunk-7"]) == _without_analyses(load_case(path))


@pytest.mark.parametrize("stem", ANALYSES_SCENARIOS)
def test_analyses_as_recorded(stem):
    path = next(p for p in SCENARIOS if p.stem == stem)
    assert with_analyses(path) == load_case(path)["summary_with_analyses"]


def test_a_two_worker_cluster_gives_the_recorded_outputs():
    distributed = pytest.importorskip("distributed")
    import kzsim
    from tests.conftest import noted_as_giving_memory_back

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    # (Dask's own workers give freed memory back: the same bits, noted once)
    with cluster, distributed.Client(cluster) as client, noted_as_giving_memory_back():
        for path in SCENARIOS:
            got = kzsim.simulate(kzsim.load_scenario(path), paths=PATHS, seed=SEED, client=client)
            assert fingerprint(got) == _without_analyses(load_case(path)), path.name
