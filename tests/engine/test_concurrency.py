"""Work beside the run: analyses on a thread or a cluster task, the path table written on a
thread, and interruptions held off while a critical step runs."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import kzsim.io.folders
import kzsim.io.outputs
from kzsim import api
from kzsim.analysis.summary import analyses_for_write, written_analyses
from kzsim.cli.common import Interrupted, interruptible
from kzsim.engine import concurrency
from kzsim.engine.concurrency import Background, critical, interrupt
from kzsim.results import Results
from kzsim.scenario.loading import load_scenario
from tests.conftest import SCENARIOS


class Stop(BaseException):
    """An interruption of the tests' own, which pytest does not take for the user's Ctrl-C."""


def test_interrupt_outside_a_critical_block_raises_at_once():
    with pytest.raises(Stop):
        interrupt(Stop())


def test_a_signal_inside_a_critical_block_is_raised_when_the_block_ends():
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: interrupt(Stop()))
    steps = []
    try:
        with pytest.raises(Stop):
            with critical():
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(0.01)  # the handler has run by now
                steps.append("after the signal")
                with critical():  # nested: held until the outermost block ends
                    steps.append("inner")
                steps.append("end of the block")
        assert steps == ["after the signal", "inner", "end of the block"]
        assert concurrency._held is None and concurrency._critical_depth == 0  # nothing held over
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_critical_block_on_another_thread_holds_nothing_off():
    depths = []

    def on_a_thread():
        with critical():
            depths.append(concurrency._critical_depth)

    thread = threading.Thread(target=on_a_thread)
    thread.start()
    thread.join()
    assert depths == [0]  # handlers interrupt the main thread only
    with critical():
        assert concurrency._critical_depth == 1
    assert concurrency._critical_depth == 0


def test_background_returns_the_value_or_raises_the_error():
    assert Background(lambda a, b: a + b, 2, 3).result() == 5

    def fail():
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        Background(fail).result()
    release = threading.Event()
    daemon = Background(release.wait, daemon=True)
    assert daemon._thread.daemon
    release.set()
    assert daemon.result() is True
    here = Background(lambda: threading.current_thread(), parallel=False)  # one CPU: run in place
    assert here.result() is threading.current_thread()
    with pytest.raises(ValueError, match="from the thread"):
        Background(fail, parallel=False).result()


def test_an_interruption_during_the_start_waits_for_the_started_thread(monkeypatch):
    done = []
    real_start = threading.Thread.start

    def start_then_signal(thread):
        real_start(thread)
        interrupt(Stop())  # as a handler would, while Background holds interruptions off

    monkeypatch.setattr(threading.Thread, "start", start_then_signal)
    with pytest.raises(Stop):
        Background(lambda: (time.sleep(0.2), done.append("written")))
    assert done == ["written"], "the interruption left a writer thread running"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 90})


def test_analyses_on_a_thread_are_the_ones_computed_after_the_run(scenario, monkeypatch):
    shutoff = scenario.replace(**{"farm.economic_shutoff": True})
    names = analyses_for_write(shutoff)
    assert names == ("shutoff_value",)  # the analyses with runs of their own beside the run
    assert analyses_for_write(scenario) == ()
    monkeypatch.setattr(api, "usable_cpus", lambda: 2)
    beside = api.simulate(shutoff, paths=1500, analyses=("shutoff_value", "blackout_48h"))
    assert {"blackout_48h"} <= beside.summary.keys() and "value" in beside.summary["economic_shutoff"]
    after = Results(beside.run)  # the same run, its analyses computed now, in this thread
    assert "blackout_48h" not in after.summary
    after.blackout_48h(), after.shutoff_value()  # the blackout now from the run's own paths
    assert beside.summary == after.summary


def test_one_cpu_leaves_the_analyses_to_the_write(scenario, monkeypatch):
    monkeypatch.setattr(api, "usable_cpus", lambda: 1)
    res = api.simulate(scenario, paths=300, analyses=("blackout_48h",))
    assert "blackout_48h" not in res.summary


def test_risk_drivers_are_read_off_the_run(scenario):
    """No run of their own: the tenth of paths with an input's lowest and highest values."""
    import numpy as np

    res = api.simulate(scenario, paths=3000, threads=1)
    drivers = res.risk_drivers()
    assert len(drivers) == 3 and drivers[0]["swing_usd"] >= drivers[1]["swing_usd"] >= drivers[2]["swing_usd"]
    top = drivers[0]
    values = res.run.parameters[top["parameter"]]
    profit = res.run.per_path["profit_usd"]
    order = np.argsort(values, kind="stable")
    high = profit[order[-300:]]
    assert top["delta_mean_profit_high_usd"] == high.mean() - profit.mean()
    # over the fixture's 90 days the tariff drives profit most
    assert top["parameter"] == "electricity.tariff_kzt_per_kwh"
    assert top["swing_usd"] > 5 * top["swing_se_usd"]


def test_unknown_analyses_are_refused_before_any_run(scenario, monkeypatch):
    with pytest.raises(ValueError, match="unknown analysis 'tornado'"):
        written_analyses(scenario, ("tornado",), 100, 1)
    monkeypatch.setattr(api, "run_paths", lambda *a, **k: pytest.fail("ran before refusing"))
    with pytest.raises(ValueError, match=r"unknown analyses \['tornado'\] \(allowed: blackout_48h, shutoff_value"):
        api.simulate(scenario, paths=10, analyses=("blackout_48h", "tornado"))


def test_a_failed_report_waits_for_the_path_table_and_leaves_nothing(scenario, tmp_path, monkeypatch):
    res = api.simulate(scenario, paths=200)
    writing = threading.Event()
    finished = []
    real = kzsim.io.outputs.write_path_table

    def slow_table(columns, path):
        writing.set()
        time.sleep(0.3)
        real(columns, path)
        finished.append(path)

    def failing_report(results, path, **kwargs):
        assert writing.wait(5)  # the table is being written meanwhile
        raise RuntimeError("report failed")

    monkeypatch.setattr(kzsim.io.outputs, "usable_cpus", lambda: 2)
    monkeypatch.setattr(kzsim.io.outputs, "write_path_table", slow_table)
    monkeypatch.setattr("kzsim.report.pdf.write_report", failing_report)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="report failed"):
        res.write(out)
    assert finished, "the folder was removed before the table thread finished"
    assert list(tmp_path.iterdir()) == []


def test_an_interruption_during_the_final_rename_is_reported_after_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("previous results")
    real_swap = kzsim.io.folders._swap

    def swap_with_a_signal(tmp, target, force):
        interrupt(Interrupted(signal.SIGTERM))  # as the handler does, during the rename
        real_swap(tmp, target, force)

    monkeypatch.setattr(kzsim.io.folders, "_swap", swap_with_a_signal)
    with pytest.raises(SystemExit) as stopped:
        with interruptible(out):
            kzsim.io.folders.write_folder(out, lambda tmp: (tmp / "new.txt").write_text("new"), force=True)
    assert stopped.value.code == 143
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]  # the rename was not cut short
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing temporary left
    assert "once " + str(out) + " held this run's complete results" in capsys.readouterr().err


def test_threads_finish_their_tasks_and_leave_no_thread_behind_when_the_caller_stops(monkeypatch):
    """An exception in the caller (Ctrl-C in the progress callback here) stops the run:
    tasks not started are cancelled, the running ones finish, no path thread is left."""
    from kzsim.engine import run as engine

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 20})
    started, finished = [], []
    real_task = engine.simulate_task

    def counted(*args):
        started.append(args[2])
        if args[2] >= 2 * 1024:  # tasks after the first two outlast the caller's stop
            time.sleep(0.5)
        result = real_task(*args)
        finished.append(args[2])
        return result

    monkeypatch.setattr(engine, "simulate_task", counted)

    def progress(done, total):
        raise Stop

    with pytest.raises(Stop):
        engine.run_paths(sc, paths=40 * 1024, threads=2, progress=progress)
    # 2 threads x 2 tasks ahead, and one more submitted when the first finished: 5 of the 40
    # tasks are ever submitted. When the caller stops, the threads are inside the third and
    # perhaps the fourth (each 0.5 s); the fifth is cancelled (without cancelling, all 5 run)
    assert 3 <= len(started) <= 4
    assert sorted(finished) == sorted(started)
    assert not [t for t in threading.enumerate() if t.name.startswith("kzsim-paths")]


def test_an_error_in_a_thread_reaches_the_caller(monkeypatch):
    from kzsim.engine import run as engine

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 20})
    real_task = engine.simulate_task

    def failing(scenario, seed, start, *rest):
        if start == 2 * 1024:
            raise ValueError("no memory left for paths 2048..3071")
        return real_task(scenario, seed, start, *rest)

    monkeypatch.setattr(engine, "simulate_task", failing)
    with pytest.raises(ValueError, match="paths 2048..3071"):
        engine.run_paths(sc, paths=8 * 1024, threads=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("kzsim-paths")]


def test_the_api_runs_on_one_thread_a_cpu_unless_told(scenario, monkeypatch):
    from kzsim.engine import run as engine

    seen = []
    real = engine.run_paths

    def spy(*args, **kwargs):
        seen.append(kwargs["threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "run_paths", spy)
    monkeypatch.setattr(api, "usable_cpus", lambda: 3)
    api.simulate(scenario, paths=10)
    api.simulate(scenario, paths=10, threads=1)
    assert seen == [3, 1]
    with pytest.raises(ValueError, match="threads must be >= 1"):
        api.simulate(scenario, paths=10, threads=0)
