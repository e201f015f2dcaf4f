"""Files and resources: interrupted runs, memory refusal, paths, reruns, progress."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import kzsim
from kzsim.cli import main
from tests.conftest import SCENARIOS, make_scenario

BASELINE = str(SCENARIOS / "kz-2025-baseline.yaml")


def kzsim_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kzsim", *args]


@pytest.fixture
def previous_results(tmp_path):
    """A folder holding a complete earlier run, and a copy of its bytes."""
    out = tmp_path / "results"
    subprocess.run(
        kzsim_cmd(
            "run", BASELINE, "--paths", "50", "--out", str(out), "--quiet", "--set", "simulation.horizon_days=30"
        ),
        check=True,
    )
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def assert_untouched(out: Path, before: dict) -> None:
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"


def start_run(out: Path, paths: int, quiet: bool = True) -> subprocess.Popen:
    return subprocess.Popen(
        kzsim_cmd(
            "run", BASELINE, "--paths", str(paths), "--out", str(out), "--force", *(["--quiet"] if quiet else [])
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_while_simulating_keeps_the_previous_results(previous_results):
    out, before = previous_results
    proc = start_run(out, 1_000_000, quiet=False)
    announced = proc.stderr.readline()  # the time and memory estimate: the run is about to start
    assert "1,000,000 paths x 730 days" in announced
    time.sleep(1.0)  # inside the simulation
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by Ctrl-C" in err and "Traceback" not in err
    assert_untouched(out, before)


def test_ctrl_c_stops_a_break_even_search_cleanly():
    """kzsim breakeven writes nothing: Ctrl-C in its search (~25 s on the baseline) stops it
    with exit 130 and a line that says so, not a traceback or half a JSON."""
    proc = subprocess.Popen(
        kzsim_cmd("breakeven", BASELINE, "--paths", "20000"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(4.0)  # imports, then the search's runs
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "kzsim: stopped by Ctrl-C" and out == ""


def test_an_output_folder_that_cannot_be_made_is_refused_before_the_run(tmp_path):
    """Refused in a second, not after a run of minutes: exit 2 and the reason, no traceback."""
    (tmp_path / "a-file").write_text("not a folder")
    places = {tmp_path / "a-file" / "results": "a-file is not a folder"}
    if Path("/proc/self").is_dir():  # Linux: nothing can be made in /proc, not even by root
        places[Path("/proc/kzsim-results")] = "cannot write in /proc"
    for out, reason in places.items():
        result = CliRunner().invoke(main, ["run", BASELINE, "--paths", "1000000", "--out", str(out), "--quiet"])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"{out}: ") and reason in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_disk_full_while_writing_keeps_the_previous_results(previous_results, monkeypatch):
    """An error of the system while writing (here the disk full under the per-path table):
    one line that says what and that the previous results are as they were, exit 1."""
    import errno

    import kzsim.io.outputs

    out, before = previous_results

    def disk_full(columns, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(kzsim.io.outputs, "write_path_table", disk_full)
    args = ["run", BASELINE, "--paths", "50", "--out", str(out), "--force", "--quiet"]
    result = CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=30"])
    assert result.exit_code == 1, result.output
    assert "kzsim: OSError: No space left on device: " in result.output and "paths.parquet" in result.output
    assert result.output.rstrip().endswith(f"; {out} was left as it was before this run")
    assert "Traceback" not in result.output
    assert_untouched(out, before)


def test_sigterm_while_writing_keeps_the_previous_results(previous_results):
    out, before = previous_results
    for _attempt in range(3):
        proc = start_run(out, 30_000)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(".results.") and p.name.endswith(".tmp") for p in out.parent.iterdir()):
                break  # the new run is being written (for ~1.4 s)
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0 and not err:  # it finished before the signal came (seen once on a loaded CI machine)
            before = {p.name: p.read_bytes() for p in out.iterdir()}  # its results are now the previous ones
            continue
        break
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert_untouched(out, before)


def test_a_run_that_cannot_fit_in_memory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("kzsim.engine.system.available_memory_bytes", lambda: 2e9)
    result = CliRunner().invoke(main, ["run", BASELINE, "--paths", "3000000", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith(f"{BASELINE}: simulation.paths: 3,000,000 paths x 730 days need about ")
    assert "(allowed: at most about" in line
    assert not (tmp_path / "o").exists()


def test_a_large_run_announces_its_time_and_memory(tmp_path, monkeypatch):
    from kzsim.engine import resources as engine

    monkeypatch.setattr(engine, "PATH_DAYS_PER_SECOND", 1.0)  # make a tiny run look long
    result = CliRunner().invoke(
        main,
        [
            "run",
            BASELINE,
            "--paths",
            "5",
            "--out",
            str(tmp_path / "o"),
            "--no-report",
            "--set",
            "simulation.horizon_days=10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kzsim: 5 paths x 10 days: about 50 s and" in result.output
    # a --target-se run: the most it may reach (its rounds simulate each path once)
    args = ["run", BASELINE, "--paths", "5", "--target-se", "0.4", "--max-paths", "8", "--no-report"]
    result = CliRunner().invoke(main, args + ["--out", str(tmp_path / "t"), "--set", "simulation.horizon_days=10"])
    assert result.exit_code == 0, result.output
    assert "kzsim: up to 8 paths x 10 days: at most about 80 s and" in result.output


def test_the_estimate_counts_local_workers(tmp_path, monkeypatch):
    import contextlib

    from kzsim.engine import resources as engine
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(BASELINE)
    one = engine.estimate_resources(sc, 100_000)
    two = engine.estimate_resources(sc, 100_000, workers=2, cpus=2)
    assert two.seconds == pytest.approx(one.seconds / (2 * engine.LOCAL_WORKER_EFFICIENCY))
    assert engine.estimate_resources(sc, 100_000, workers=4, cpus=2).seconds == pytest.approx(two.seconds)
    working = one.memory_bytes - engine.BASE_BYTES - one.table_bytes  # working + sample
    assert two.memory_bytes > one.memory_bytes + engine.BASE_BYTES  # each worker loads the libraries
    assert two.memory_bytes < one.memory_bytes + 2 * (engine.BASE_BYTES + working)
    # the announcement says so (the run itself stays in this process here)
    monkeypatch.setattr(engine, "PATH_DAYS_PER_SECOND", 1.0)
    monkeypatch.setattr("kzsim.cli.common.cluster", lambda workers, scheduler: contextlib.nullcontext(None))
    monkeypatch.setattr("kzsim.engine.system.usable_cpus", lambda: 2)
    args = ["run", BASELINE, "--paths", "10", "--out", str(tmp_path / "o"), "--no-report", "--workers", "2"]
    result = CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=10"])
    assert result.exit_code == 0, result.output
    seconds = 100 / (2 * engine.LOCAL_WORKER_EFFICIENCY)  # 100 path-days at 1 a second, shared
    assert f"kzsim: 10 paths x 10 days: about {seconds:,.0f} s on 2 local workers" in result.output


def test_the_estimate_counts_threads(tmp_path, monkeypatch):
    from kzsim.engine import resources as engine
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(BASELINE)
    one = engine.estimate_resources(sc, 100_000)
    two = engine.estimate_resources(sc, 100_000, threads=2, cpus=2)
    working = engine.default_chunk_paths() * 730 * 8.0 * engine.WORKING_ARRAYS
    assert two.memory_bytes == pytest.approx(one.memory_bytes + working)  # a chunk's memory a thread
    assert two.seconds == pytest.approx(one.seconds / (2 * engine.THREAD_EFFICIENCY))
    assert engine.estimate_resources(sc, 100_000, threads=4, cpus=2).seconds == pytest.approx(two.seconds)
    assert engine.estimate_resources(sc, 100, threads=2, cpus=2) == engine.estimate_resources(sc, 100)  # one chunk
    # the announcement says so
    monkeypatch.setattr(engine, "PATH_DAYS_PER_SECOND", 1.0)
    monkeypatch.setattr("kzsim.engine.system.usable_cpus", lambda: 2)
    args = ["run", BASELINE, "--paths", "2000", "--out", str(tmp_path / "o"), "--no-report", "--threads", "3"]
    result = CliRunner().invoke(main, [*args, "--chunk-paths", "1000", "--set", "simulation.horizon_days=10"])
    assert result.exit_code == 0, result.output
    seconds = 20_000 / (2 * engine.THREAD_EFFICIENCY)  # two chunks: two of the three threads work
    assert f"kzsim: 2,000 paths x 10 days: about {seconds:,.0f} s on 2 threads" in result.output


def test_threads_are_refused_beside_a_cluster(tmp_path):
    args = ["run", BASELINE, "--paths", "10", "--out", str(tmp_path / "o"), "--threads", "2", "--workers", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "--threads 2: with --workers or --scheduler the cluster's workers run the chunks "
        "(allowed: --threads without them)"
    )
    assert not (tmp_path / "o").exists()


def test_names_and_overrides_never_write_outside_the_output_folder(tmp_path):
    out = tmp_path / "box" / "out"
    result = CliRunner().invoke(
        main,
        [
            "run",
            BASELINE,
            "--paths",
            "5",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
            "--set",
            "name=../../../escape",
            "--set",
            "simulation.horizon_days=5",
        ],
    )
    assert result.exit_code == 0, result.output
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert written == {Path("box"), Path("box/out")} | {Path("box/out") / f for f in os.listdir(out)}
    assert json.loads((out / "summary.json").read_text())["scenario"] == "../../../escape"


def test_rerun_reproduces_every_bit(tmp_path):
    src = tmp_path / "run"
    args = [
        "run",
        BASELINE,
        "--paths",
        "200",
        "--seed",
        "99",
        "--out",
        str(src),
        "--quiet",
        "--no-report",
        "--set",
        "simulation.horizon_days=60",
        "--set",
        "electricity.tariff_kzt_per_kwh=31.7",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["rerun", str(src), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output
    for name in ("paths.parquet", "timeseries.parquet", "summary.json"):
        assert (src / name).read_bytes() == (tmp_path / "run-rerun" / name).read_bytes()


def test_rerun_notices_a_difference(tmp_path):
    src = tmp_path / "run"
    args = [
        "run",
        BASELINE,
        "--paths",
        "20",
        "--out",
        str(src),
        "--quiet",
        "--no-report",
        "--set",
        "simulation.horizon_days=20",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    table = pd.read_parquet(src / "paths.parquet")
    table.loc[3, "profit_usd"] += 1e-6
    table.to_parquet(src / "paths.parquet", index=False)
    result = CliRunner().invoke(main, ["rerun", str(src), "--quiet"])
    assert result.exit_code == 1
    assert "paths.parquet: column profit_usd differs" in result.output


def test_rerun_of_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(main, ["rerun", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"{tmp_path / 'manifest.json'}: file not found (allowed: a folder written by kzsim run)"
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_the_api_reports_progress_without_printing(capsys, threads):
    calls = []
    kzsim.simulate(
        make_scenario(),
        paths=2500,
        chunk_paths=1000,
        threads=threads,
        progress=lambda done, total: calls.append((done, total)),
    )
    if threads == 1:
        assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]
    else:  # chunks finish in any order: paths done after each, whichever it was
        assert len(calls) == 3 and calls[-1] == (2500, 2500)
        assert {done for done, _ in calls[:2]} <= {500, 1000, 1500, 2000}
        assert calls[0][0] < calls[1][0] < calls[2][0]
    assert capsys.readouterr() == ("", "")


def test_leftovers_of_a_killed_run_do_not_block_the_next(tmp_path):
    """A run killed with SIGKILL leaves a hidden temporary folder; the next run still works."""
    out = tmp_path / "results"
    proc = start_run(out, 30_000)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    assert not out.exists()  # never a half-written results folder
    result = CliRunner().invoke(
        main,
        [
            "run",
            BASELINE,
            "--paths",
            "5",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
            "--set",
            "simulation.horizon_days=5",
        ],
    )
    assert result.exit_code == 0, result.output
    shutil.rmtree(out)


def test_a_million_paths_are_announced_and_the_default_run_is_not():
    """What the CLI compares with its thresholds, on this machine's two cores (the million
    paths of the baseline take ~29 s there, the default 20,000 under a second)."""
    from kzsim.cli.commands import ANNOUNCE_BYTES, ANNOUNCE_SECONDS
    from kzsim.engine.resources import estimate_resources
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(BASELINE)
    big = estimate_resources(sc, 1_000_000, threads=2, cpus=2)
    small = estimate_resources(sc, sc.simulation.paths, threads=2, cpus=2)
    assert big.seconds > ANNOUNCE_SECONDS or big.memory_bytes > ANNOUNCE_BYTES
    assert small.seconds < ANNOUNCE_SECONDS and small.memory_bytes < ANNOUNCE_BYTES
