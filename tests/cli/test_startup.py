"""The command line starts without the heavy libraries: `kzsim --help` and `kzsim validate`
load neither numba, Dask, SALib nor matplotlib, and `import kzsim` loads none of kzsim's layers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import SCENARIOS

HEAVY = ("numba", "dask", "distributed", "SALib", "matplotlib")
PROBE = """
import json, sys
from kzsim.cli import main
try:
    main({args!r})
except SystemExit:
    pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["validate", str(SCENARIOS / "kz-2025-baseline.yaml")]], ids=["help", "validate"]
)
def test_quick_commands_load_no_heavy_library(args):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_import_kzsim_loads_only_its_version():
    probe = "import json, sys, kzsim; print(json.dumps(sorted(m for m in sys.modules if m.startswith('kzsim'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["kzsim", "kzsim.version"]
    probe = "import kzsim; print(kzsim.simulate.__module__, kzsim.Scenario.__name__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["kzsim.api", "Scenario"]


@pytest.mark.parametrize(
    ("command", "written"), [("run", "summary.json"), ("compare", "comparison.json")], ids=["run", "compare"]
)
def test_commands_without_a_report_load_no_matplotlib(command, written, tmp_path):
    scenario = str(SCENARIOS / "kz-2025-baseline.yaml")
    args = [command, scenario, scenario] if command == "compare" else [command, scenario]
    args += ["--paths", "50", "--out", str(tmp_path / "out"), "--no-report", "--quiet"]
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=["matplotlib"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (tmp_path / "out" / written).exists(), out.stdout + out.stderr
    assert not (tmp_path / "out" / "report.pdf").exists()
    assert json.loads(out.stdout.splitlines()[-1]) == []
