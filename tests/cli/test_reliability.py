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
from tests.conftest import ROOT, SCENARIOS, make_scenario

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
    monkeypatch.setattr(engine, "SECONDS_PER_EVENT", 0.0)
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
    events = engine.BLOCK_PATHS * engine.BYTES_PER_EVENT * sum(sc.expected_events_per_path().values())
    working = engine.default_chunk_paths() * 730 * 8.0 * engine.WORKING_ARRAYS + events
    assert two.memory_bytes == pytest.approx(one.memory_bytes + working)  # a chunk's (and block's events) a thread
    assert two.seconds == pytest.approx(one.seconds / (2 * engine.THREAD_EFFICIENCY))
    assert engine.estimate_resources(sc, 100_000, threads=4, cpus=2).seconds == pytest.approx(two.seconds)
    assert engine.estimate_resources(sc, 100, threads=2, cpus=2) == engine.estimate_resources(sc, 100)  # one chunk
    # the announcement says so
    monkeypatch.setattr(engine, "PATH_DAYS_PER_SECOND", 1.0)
    monkeypatch.setattr(engine, "SECONDS_PER_EVENT", 0.0)
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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    src = tmp_path_factory.mktemp("rerun") / "run"
    args = ["run", BASELINE, "--paths", "30", "--out", str(src), "--quiet", "--no-report"]
    assert CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=15"]).exit_code == 0
    return src


def _manifest(key, value):
    def damage(folder: Path) -> None:
        data = json.loads((folder / "manifest.json").read_text())
        data[key] = value
        (folder / "manifest.json").write_text(json.dumps(data))

    return damage


def _truncate(name, size):
    def damage(folder: Path) -> None:
        with open(folder / name, "r+b") as f:
            f.truncate(size)

    return damage


def _garble(name):
    def damage(folder: Path) -> None:
        (folder / name).write_bytes(bytes(range(256)) * 3)

    return damage


DAMAGES = {
    "results-deleted": (lambda f: (f / "timeseries.parquet").unlink(), "timeseries.parquet: file not found"),
    "summary-deleted": (lambda f: (f / "summary.json").unlink(), "summary.json: file not found"),
    "paths-truncated": (_truncate("paths.parquet", 1000), "paths.parquet: not a readable Parquet file"),
    "paths-garbled": (_garble("paths.parquet"), "paths.parquet: not a readable Parquet file"),
    "summary-garbled": (_garble("summary.json"), "summary.json: not valid JSON"),
    "summary-a-list": (lambda f: (f / "summary.json").write_text("[1]"), "summary.json: not a kzsim summary"),
    "manifest-truncated": (_truncate("manifest.json", 30), "manifest.json: not valid JSON"),
    "manifest-a-list": (lambda f: (f / "manifest.json").write_text("[]"), "manifest.json: not a kzsim manifest"),
    "seed-negative": (_manifest("seed", -1), "manifest.json: seed: -1"),
    "seed-text": (_manifest("seed", "7"), 'manifest.json: seed: "7"'),
    "paths-zero": (_manifest("paths", 0), "manifest.json: paths: 0"),
    "paths-huge": (_manifest("paths", 10**12), "manifest.json: paths: 1000000000000"),
    "paths-boolean": (_manifest("paths", True), "manifest.json: paths: true"),
    "paths-float": (_manifest("paths", 30.5), "manifest.json: paths: 30.5"),
    "scenario-garbled": (_garble("scenario.resolved.yaml"), "scenario.resolved.yaml: not a text file"),
    "manifest-a-fifo": (lambda f: ((f / "manifest.json").unlink(), os.mkfifo(f / "manifest.json")), "named pipe"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_rerun_checks_the_folder_before_running(small_run, tmp_path, damage):
    folder = tmp_path / "copy"
    shutil.copytree(small_run, folder)
    harm, words = DAMAGES[damage]
    harm(folder)
    result = CliRunner().invoke(main, ["rerun", str(folder), "--quiet"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert line.startswith(str(folder)) and words in line and "(allowed" in line, line
    assert not (tmp_path / "copy-rerun").exists()


def test_rerun_refuses_its_own_folder_as_out(small_run, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(small_run, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for out in (folder, folder / "inside"):
        result = CliRunner().invoke(main, ["rerun", str(folder), "--out", str(out), "--force"])
        assert result.exit_code == 2 and "is the folder being re-run" in result.output, result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_rerun_compares_columns_by_name(small_run, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(small_run, folder)
    table = pd.read_parquet(folder / "paths.parquet")
    table[list(reversed(table.columns))].to_parquet(folder / "paths.parquet", index=False)
    result = CliRunner().invoke(main, ["rerun", str(folder), "--quiet"])
    assert result.exit_code == 0 and "identical" in result.output, result.output


def test_a_dangling_symlink_as_out_is_refused_before_the_run(tmp_path):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    result = CliRunner().invoke(main, ["run", BASELINE, "--paths", "10", "--out", str(link)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{link}: is a symbolic link to {tmp_path / 'nowhere'}, which does not exist "
        "(allowed: a folder path, or a link to an existing folder)"
    )


def test_force_onto_a_symlinked_folder_replaces_its_target_and_keeps_the_link(small_run, tmp_path):
    target = tmp_path / "real"
    shutil.copytree(small_run, target)
    link = tmp_path / "latest"
    link.symlink_to(target)
    args = ["run", BASELINE, "--paths", "40", "--out", str(link), "--force", "--quiet", "--no-report"]
    assert CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=15"]).exit_code == 0
    assert link.is_symlink() and link.resolve() == target
    assert json.loads((target / "summary.json").read_text())["paths"] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "real"]  # no hidden .old link or folder


def test_a_later_run_removes_the_temporaries_of_dead_runs_only(tmp_path):
    from kzsim.io.folders import owner_tag

    kind, host, boot, pid, start = owner_tag().split("-")
    dead = [f"{kind}-{host}-{boot}-{2**22 + 17}-5", f"{kind}-{host}-{'0' * 8}-{pid}-{start}"]  # gone; earlier boot
    alive = [owner_tag(), f"{kind}-{'f' * 8}-{boot}-{2**22 + 17}-5"]  # this process; another host's
    for i, tag in enumerate(dead + alive):
        (tmp_path / f".results.{tag}-x{i}.tmp").mkdir()
    (tmp_path / f".results.{dead[0]}-old.old").mkdir()
    (tmp_path / ".results.unrelated.tmp").mkdir()  # not kzsim's name form: never touched
    args = ["run", BASELINE, "--paths", "5", "--out", str(tmp_path / "results"), "--quiet", "--no-report"]
    assert CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=5"]).exit_code == 0
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        ["results", ".results.unrelated.tmp"] + [f".results.{tag}-x{i + 2}.tmp" for i, tag in enumerate(alive)]
    )


STARTUP_DELAYS_S = (
    0.1,
    0.2,
    0.4,
    0.7,
    1.0,
    1.4,
)  # (Python itself starts in ~30 ms: a signal before it has no handler of ours)


@pytest.mark.parametrize("delay", STARTUP_DELAYS_S)
def test_ctrl_c_during_start_up_stops_cleanly(previous_results, delay):
    """From the first instructions: exit 130, one line, the previous results kept."""
    out, before = previous_results
    proc = start_run(out, 2_000)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().startswith("kzsim: stopped by Ctrl-C"), err
    assert_untouched(out, before)


# The command (kzsim.launch.entry) in a fresh process, where a library turns the Ctrl-C its
# handler raised into an error of its own (as pydantic-core does with an exception raised
# while it builds a model's schema: "SchemaError: ... Interrupted: 2"), during the imports
# of the command line or in the command; "fault": the same error without a signal
_WRAPPED = """
import os, signal, sys, time, types

def library_call(send):
    try:
        if send:
            os.kill(os.getpid(), signal.SIGINT)  # the handler raises at the next instruction,
            time.sleep(10)  # or here at the latest (a signal that never came: a fault, exit 1)
    except BaseException as exc:
        raise RuntimeError(f"Error building serializer: {exc!r}") from None
    raise RuntimeError("a fault of the library's own")

where, send = sys.argv[1], sys.argv[2] == "signal"
import kzsim.cli.commands as commands
if where == "import":
    class Commands(types.ModuleType):
        def __getattr__(self, name):
            library_call(send)
    sys.modules["kzsim.cli.commands"] = Commands("kzsim.cli.commands")
else:
    commands.main = lambda: library_call(send)
from kzsim.launch import entry
entry()
"""


@pytest.mark.parametrize("where", ["import", "command"])
def test_a_ctrl_c_that_a_library_turned_into_its_own_error_still_stops_cleanly(where):
    """Exit 130 and one line, as for any Ctrl-C (it was seen in the start-up test: the signal
    arrived inside pydantic-core's schema building); the same error without a signal is a
    fault, with its traceback."""

    def run(send: str):
        return subprocess.run(
            [sys.executable, "-c", _WRAPPED, where, send], capture_output=True, text=True, cwd=ROOT, timeout=120
        )

    stopped = run("signal")
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.strip() == "kzsim: stopped by Ctrl-C", stopped.stderr
    fault = run("none")
    assert fault.returncode == 1 and "RuntimeError: a fault of the library's own" in fault.stderr, fault.stderr
    assert "Traceback" in fault.stderr


def test_an_interruption_that_was_swallowed_still_stops_the_swap(previous_results, monkeypatch):
    """A Ctrl-C lost in a finaliser or a library's ``except BaseException`` must not let the
    run replace the previous results with exit 0."""
    import kzsim.engine.concurrency as concurrency

    out, before = previous_results
    monkeypatch.setattr(concurrency, "_received", None)
    try:
        concurrency.interrupt(concurrency.Interrupted(signal.SIGINT))
    except concurrency.Interrupted:
        pass  # swallowed, as a finaliser would
    args = ["run", BASELINE, "--paths", "10", "--out", str(out), "--force", "--quiet", "--no-report"]
    result = CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=10"])
    assert result.exit_code == 130 and "left as it was before this run" in result.output, result.output
    assert_untouched(out, before)


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
    from kzsim.cli.common import ANNOUNCE_BYTES, ANNOUNCE_SECONDS
    from kzsim.engine.resources import estimate_resources
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(BASELINE)
    big = estimate_resources(sc, 1_000_000, threads=2, cpus=2)
    small = estimate_resources(sc, sc.simulation.paths, threads=2, cpus=2)
    assert big.seconds > ANNOUNCE_SECONDS or big.memory_bytes > ANNOUNCE_BYTES
    assert small.seconds < ANNOUNCE_SECONDS and small.memory_bytes < ANNOUNCE_BYTES
