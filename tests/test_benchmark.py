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
    ]
    assert row.split()[0] == "1,024" and len(row.split()) == 7
    failed = run("--max-ratio", "0.01")
    assert failed.returncode == 1
    assert "FAIL: sim/draws ratio" in failed.stdout
