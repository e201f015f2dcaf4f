"""The benchmark script runs and its exit code follows --max-ratio (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "bench_engine.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--paths", "1024", *args], capture_output=True, text=True)


def test_the_benchmark_prints_its_table_and_fails_above_the_bound():
    passed = run("--max-ratio", "1000")
    assert passed.returncode == 0, passed.stderr
    header, row = passed.stdout.splitlines()[1:3]
    assert header.split() == [
        "paths",
        "sim",
        "s",
        "M",
        "path-days/s",
        "draws",
        "s",
        "ratio",
        "peak",
        "MB",
        "working",
        "MB",
        "numpy",
        "draws",
        "s",
        "np",
        "ratio",
    ]
    assert row.split()[0] == "1,024" and len(row.split()) == 9
    failed = run("--max-ratio", "0.01")
    assert failed.returncode == 1
    assert "FAIL: sim/draws ratio" in failed.stdout


def test_the_benchmark_bound_is_the_issues_by_default():
    """Without --max-ratio the script holds the ratio to 1.5: exit 1 exactly when it is above."""
    default = run()
    ratio = float(default.stdout.splitlines()[2].split()[4])
    assert default.returncode == (1 if ratio > 1.5 else 0), default.stdout + default.stderr
    assert ("FAIL: sim/draws ratio" in default.stdout) == (ratio > 1.5)
    assert ("exceeds 1.5" in default.stdout) == (ratio > 1.5)


def test_the_benchmark_measures_threads():
    passed = run("--threads", "2", "--paths", "2048", "--repeat", "2", "--max-ratio", "inf")
    assert passed.returncode == 0, passed.stderr
    lines = passed.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "threads s" in line)
    assert lines[header].split() == [
        "paths",
        "1",
        "thread",
        "s",
        "2",
        "threads",
        "s",
        "speed-up",
        "peak",
        "MB",
        "working",
        "MB",
    ]
    row = lines[header + 1].split()
    assert row[0] == "2,048" and len(row) == 6 and float(row[3]) > 0
