"""Runs on a Dask cluster have the same bits as runs in one process, even when a worker dies."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import dask
import distributed
import numpy as np
import pytest

from kzsim.analysis.summary import analyses_for_write
from kzsim.api import simulate
from kzsim.engine.cluster import LOCAL_CLUSTER_CONFIG, dask_client
from kzsim.engine.run import run_paths
from kzsim.results import Results
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS, noted_as_giving_memory_back

PATHS = 3000  # three blocks and a part


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 120})


@pytest.fixture(scope="module")
def plain(scenario):
    return run_paths(scenario, paths=PATHS, chunk_paths=500)


def assert_same_run(a, b):
    for store in ("per_path", "parameters", "daily_quantiles", "daily_quantiles_ci95", "daily_mean"):
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
        out = run_paths(scenario, paths=PATHS, chunk_paths=500, client=client, task_paths=1000)
        if workers == 2:  # and with other chunks and tasks that cut blocks, scheduled anew
            again = run_paths(scenario, paths=PATHS, chunk_paths=300, client=client, task_paths=900)
            assert_same_run(again, plain)
            # a run extended on the cluster: its new paths only (no sample: the whole blocks are taken)
            shorter = run_paths(scenario, paths=2 * 1024 + 5, percentiles=False)
            longer = run_paths(scenario, paths=PATHS, percentiles=False, client=client, task_paths=1000, extend=shorter)
            assert longer.taken_paths == 2 * 1024
            assert_same_run(longer, run_paths(scenario, paths=PATHS, percentiles=False))
            # the analyses a write needs, as a task beside the run's: those of this process
            names = analyses_for_write(scenario)
            with noted_as_giving_memory_back():  # Dask's own workers
                beside = simulate(scenario, paths=PATHS, client=client, analyses=names)
            assert_same_run(beside.run, plain)
            here = Results(plain)
            for name in names:
                getattr(here, name)()
            assert beside.summary == here.summary
    assert_same_run(out, plain)


@contextlib.contextmanager
def plain_local_cluster():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


# Dask's own LocalCluster (spawned workers), and kzsim's (workers forked from a server)
@pytest.mark.parametrize(
    "make_client", [plain_local_cluster, lambda: dask_client(workers=2)], ids=["spawned", "forked"]
)
def test_a_worker_killed_mid_run_changes_nothing(scenario, plain, make_client):
    with make_client() as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_one_worker(done: int, total: int) -> None:
            if not killed:  # after the first chunk is back, others are running
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        out = run_paths(scenario, paths=PATHS, chunk_paths=100, client=client, progress=kill_one_worker, task_paths=200)
        assert killed and killed[0] < PATHS
        client.wait_for_workers(2, timeout=60)
        after = client.run(os.getpid)
        assert len(after) == 2 and victim not in after.values()  # the nanny started a new process
        if make_client is not plain_local_cluster:  # kzsim's workers, the new one too, keep its housekeeping settings
            settings = client.run(lambda: {key: dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG})
            assert list(settings.values()) == [LOCAL_CLUSTER_CONFIG] * 2
    assert_same_run(out, plain)


@pytest.mark.parametrize(
    ("chunk_paths", "task_paths"),
    [(300, 900), (500, 1000), (1024, 2048), (700, 2100), (3000, 3000), (100, 250)],
)
def test_tasks_of_several_chunks_merge_to_the_same_bits_in_any_order(scenario, plain, chunk_paths, task_paths):
    from kzsim.engine.merge import Merger
    from kzsim.engine.run import Calendar, simulate_task

    tasks = [(a, min(a + task_paths, PATHS)) for a in range(0, PATHS, task_paths)]
    merger = Merger(PATHS, scenario.simulation.horizon_days)
    for a, b in reversed(tasks):  # the last task back first
        merger.add(simulate_task(scenario, plain.seed, a, b, PATHS, chunk_paths))
    assert_same_run(merger.output(scenario, plain.seed, Calendar.of(scenario).dates), plain)


def test_kzsim_run_with_two_workers_writes_the_files_of_a_run_in_one_process(tmp_path):
    """The user's command, end to end: a local cluster of forked workers, the analyses as a
    task beside the chunks, the report module loaded meanwhile."""
    args = ["run", str(SCENARIOS / "kz-2025-baseline.yaml"), "--paths", "2500", "--quiet"]
    args += ["--set", "simulation.horizon_days=90"]
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        subprocess.run([sys.executable, "-m", "kzsim", *args, "--out", str(tmp_path / name), *extra], check=True)
    one, two = tmp_path / "one", tmp_path / "two"
    assert json.loads((one / "summary.json").read_text()) == json.loads((two / "summary.json").read_text())
    for name in ("paths.parquet", "timeseries.csv", "timeseries.parquet", "scenario.resolved.yaml"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert (two / "report.pdf").stat().st_size > 10_000


@pytest.mark.parametrize(("chunk_paths", "task_paths"), [(1024, 3072), (1024, 8192), (500, 2000), (2048, 4096)])
def test_tasks_past_the_sample_merge_to_the_same_bits_in_any_order(scenario, chunk_paths, task_paths):
    """Past the 4,096 sampled paths, whole blocks come back as sums taken in the kernel: a
    task of such chunks, and tasks mixing them with cut blocks, merge to the one-chunk run."""
    from kzsim.engine.merge import TIMESERIES_SAMPLE_PATHS, Merger
    from kzsim.engine.run import Calendar, simulate_task

    short = scenario.replace(**{"simulation.horizon_days": 30})
    n = TIMESERIES_SAMPLE_PATHS + 3 * 1024 + 100
    one_chunk = run_paths(short, paths=n, chunk_paths=n)
    tasks = [(a, min(a + task_paths, n)) for a in range(0, n, task_paths)]
    merger = Merger(n, 30)
    for a, b in reversed(tasks):
        merger.add(simulate_task(short, one_chunk.seed, a, b, n, chunk_paths))
    assert_same_run(merger.output(short, one_chunk.seed, Calendar.of(short).dates), one_chunk)


def test_the_analyses_on_a_cluster_give_the_same_tables():
    """Tornado, Sobol, sweep and break-even with their runs' chunks on two workers: the same
    numbers as in this process, and the progress counts the same paths."""
    import pandas as pd

    from kzsim.analysis.sensitivity import break_even, sobol, sweep, tornado

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 30})
    grid = {"electricity.tariff_kzt_per_kwh": [20.0, 30.0]}
    analyses = {
        "tornado": lambda **on: tornado(sc, paths=300, **on),
        "sobol": lambda **on: sobol(sc, paths=256, **on),
        "sweep": lambda **on: sweep(sc, grid, paths=300, **on),
        "break_even": lambda **on: pd.DataFrame([break_even(sc, "market.btc_price_usd", paths=200, **on)]),
    }
    with dask_client(workers=2) as client:
        for name, analysis in analyses.items():
            here, there = [], []
            local = analysis(progress=lambda *a, calls=here: calls.append(a))
            remote = analysis(client=client, progress=lambda *a, calls=there: calls.append(a))
            pd.testing.assert_frame_equal(remote, local, check_exact=True, obj=name)
            assert here[-1] == there[-1], name  # every path counted (in another order: runs go side by side)


class FakeClient:
    """What check_workers asks of a Dask client, with the workers' answers made up."""

    def __init__(self, workers: dict[str, dict]):
        self.workers, self.asked = workers, []

    def scheduler_info(self, n_workers=-1):
        return {"workers": {address: {} for address in self.workers}}

    def run(self, function, workers):
        self.asked.append(workers)
        return {address: self.workers[address] for address in workers}


def test_workers_with_other_code_are_refused_before_a_run():
    from kzsim.engine.cluster import WorkerCPUWarning, WorkerMismatch, check_workers, code_versions

    here = dict(code_versions(), **{"keeps freed memory": True})
    assert here["kzsim code"] and here["numpy"] and here["scipy"] and here["numpy SIMD"]
    same = FakeClient({"tcp://10.0.0.5:4001": dict(here), "tcp://10.0.0.6:4001": dict(here)})
    check_workers(same)
    check_workers(same)  # each worker asked once a client
    assert same.asked == [["tcp://10.0.0.5:4001", "tcp://10.0.0.6:4001"]]
    same.workers["tcp://10.0.0.7:4001"] = dict(here)  # one joins: it alone is asked
    check_workers(same)
    assert same.asked[-1] == ["tcp://10.0.0.7:4001"]

    odd = FakeClient(
        {
            "tcp://10.0.0.5:4001": dict(here),
            "tcp://10.0.0.6:4001": dict(here, numpy="1.26.4", **{"kzsim code": "0123456789ab"}),
            "tcp://10.0.0.7:4001": {"kzsim code": None, "kzsim": None, "numpy": here["numpy"]},
        }
    )
    with pytest.raises(WorkerMismatch) as refused:
        check_workers(odd)
    message = str(refused.value)
    assert (
        f"worker tcp://10.0.0.6:4001 has kzsim code 0123456789ab, numpy 1.26.4 (here: kzsim code {here['kzsim code']}, numpy {here['numpy']})"
        in message
    )
    assert "worker tcp://10.0.0.7:4001 has no kzsim" in message and "tcp://10.0.0.5:4001" not in message
    assert message.endswith(
        "(allowed: workers with the same kzsim code, numpy and scipy as this process: a run's bits depend on them)"
    )

    other_cpu = FakeClient({"tcp://10.0.0.8:4001": dict(here, **{"numpy SIMD": "X86_V3"})})
    with pytest.warns(WorkerCPUWarning, match=r"worker tcp://10.0.0.8:4001 has numpy SIMD X86_V3 \(here: numpy SIMD"):
        check_workers(other_cpu)


def test_workers_that_give_freed_memory_back_are_noted():
    """A worker without kzsim's allocator setting (Linux) runs the same bits slower: noted
    once, naming it and the preload that sets it; a worker elsewhere than Linux (None) is not."""
    from kzsim.engine.cluster import WorkerMemoryWarning, check_workers, code_versions

    here = dict(code_versions(), **{"keeps freed memory": True})
    client = FakeClient(
        {
            "tcp://10.0.0.5:4001": dict(here),
            "tcp://10.0.0.6:4001": dict(here, **{"keeps freed memory": False}),
            "tcp://10.0.0.7:4001": dict(here, **{"keeps freed memory": None}),
        }
    )
    with pytest.warns(WorkerMemoryWarning) as noted:
        check_workers(client)
    assert len(noted) == 1
    message = str(noted[0].message)
    assert message.startswith("worker tcp://10.0.0.6:4001 gives the memory it frees back")  # that one alone
    assert "10.0.0.5" not in message and "10.0.0.7" not in message
    assert "dask worker --preload kzsim.engine.allocator" in message
    check_workers(client)  # asked once: no second note (an error under this suite's warning filter)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_kzsim_run_on_workers_that_give_memory_back_says_so_and_runs(tmp_path):
    """The user's command on a cluster started without the preload: a one-line note on
    stderr naming the preload, and the run's files as on any cluster."""
    from click.testing import CliRunner

    from kzsim.cli import main

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        args = ["run", str(SCENARIOS / "kz-2025-baseline.yaml"), "--paths", "50", "--quiet", "--no-report"]
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o"), "--scheduler", c.scheduler_address])
    assert result.exit_code == 0, result.output
    note = f"kzsim: --scheduler {c.scheduler_address}: worker "
    assert note in result.output and "gives the memory it frees back" in result.output
    assert "--preload kzsim.engine.allocator" in result.output and "Traceback" not in result.output
    assert (tmp_path / "o" / "summary.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_kzsims_own_local_workers_keep_freed_memory_and_a_plain_cluster_is_noted(scenario):
    """kzsim's own local workers (dask_client(workers=2)) preload kzsim.engine.allocator;
    a run on Dask's plain LocalCluster says its workers do not."""
    from kzsim.engine.cluster import code_versions

    with dask_client(workers=2) as client:
        kept = client.run(lambda: code_versions()["keeps freed memory"])
        assert list(kept.values()) == [True, True]
    with plain_local_cluster() as client, noted_as_giving_memory_back():
        simulate(scenario, paths=50, client=client)


def test_kzsim_run_refuses_a_cluster_whose_workers_run_other_code(tmp_path, monkeypatch):
    """The user's command against a scheduler whose worker has another numpy: exit 2 and
    one message naming the worker, before any task (a worker without kzsim used to take
    the tasks it could not load and the run waited forever)."""
    from click.testing import CliRunner

    import kzsim.engine.cluster
    from kzsim.cli import main

    real = kzsim.engine.cluster._code_versions_function

    def on_workers_another_numpy():
        versions = real()

        def answer(dask_worker=None):  # Client.run gives a worker itself
            return versions() if dask_worker is None else dict(versions(), numpy="1.26.4")

        return answer

    monkeypatch.setattr(kzsim.engine.cluster, "_code_versions_function", on_workers_another_numpy)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        args = [
            "run",
            str(SCENARIOS / "kz-2025-baseline.yaml"),
            "--paths",
            "50",
            "--quiet",
            "--out",
            str(tmp_path / "o"),
        ]
        result = CliRunner().invoke(main, [*args, "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 2, result.output
    assert f"--scheduler {cluster.scheduler_address}: worker " in result.output
    assert f"has numpy 1.26.4 (here: numpy {np.__version__})" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="local workers are forked from a server on Linux only")
def test_the_workers_fork_server_is_started_early_with_kzsim_to_preload():
    """A command with --workers starts the server its workers are forked from before it loads
    its scenario (kzsim.cli.common.threads_for): a child process that preloads kzsim."""
    code = (
        "import os, sys\n"
        "from kzsim.cli.common import threads_for\n"
        "threads_for(None, 2, None)\n"
        "import time\n"
        "for _ in range(100):  # a child's command line is empty until its exec is done\n"
        "    kids = open(f'/proc/{os.getpid()}/task/{os.getpid()}/children').read().split()\n"
        "    lines = [open(f'/proc/{k}/cmdline').read().replace(chr(0), ' ') for k in kids]\n"
        "    if any('forkserver' in line for line in lines):\n"
        "        break\n"
        "    time.sleep(0.05)\n"
        "print(lines)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "forkserver" in out.stdout and "kzsim.engine.run" in out.stdout, out.stdout
