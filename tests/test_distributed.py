"""Runs on a Dask cluster have the same bits as runs in one process, even when a worker dies."""

from __future__ import annotations

import os
import signal

import distributed
import pytest

from kzsim.engine import run_paths
from kzsim.loading import load_scenario
from tests.conftest import SCENARIOS

PATHS = 3000  # three blocks and a part


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 120})


@pytest.fixture(scope="module")
def plain(scenario):
    return run_paths(scenario, paths=PATHS, chunk_paths=500)


def assert_same_run(a, b):
    for store in ("per_path", "parameters", "daily_quantiles", "daily_mean"):
        left, right = getattr(a, store), getattr(b, store)
        assert left.keys() == right.keys()
        for key in left:
            assert left[key].tobytes() == right[key].tobytes(), f"{store}.{key}"


@pytest.mark.parametrize("workers", [1, 2])
def test_local_cluster_gives_the_same_bits(scenario, plain, workers):
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = run_paths(scenario, paths=PATHS, chunk_paths=500, client=client)
        if workers == 2:  # and with other chunks, scheduled anew
            assert_same_run(run_paths(scenario, paths=PATHS, chunk_paths=300, client=client), plain)
    assert_same_run(out, plain)


def test_a_worker_killed_mid_run_changes_nothing(scenario, plain):
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_one_worker(done: int, total: int) -> None:
            if not killed:  # after the first chunk is back, others are running
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        out = run_paths(scenario, paths=PATHS, chunk_paths=100, client=client, progress=kill_one_worker)
        assert killed and killed[0] < PATHS
        assert victim not in client.run(os.getpid).values()  # the nanny started a new process
    assert_same_run(out, plain)
