"""The child that compiles the economics kernel on a cold compile cache (kzsim.model.compiling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from kzsim.api import simulate
from kzsim.cli.common import procurement_mode_named
from kzsim.model import compiling
from tests.conftest import ROOT, SCENARIOS, make_scenario

# A run in a fresh process on the compile cache given: what it compiled, what it loaded,
# whether it started a child, and its per-path profit
_RUN = """
import json, sys
import numpy as np
from kzsim.api import simulate
from kzsim.model import compiling, kernel
from kzsim.scenario.loading import load_scenario
sc = load_scenario(sys.argv[1], {"simulation.horizon_days": "60"})
results = simulate(sc, paths=int(sys.argv[2]), seed=5, threads=2, chunk_paths=1024)
stats, closing = kernel._economics.stats, kernel._close_day.stats
print(json.dumps({
    "misses": sum(stats.cache_misses.values()),
    "hits": sum(stats.cache_hits.values()),
    "closing": [sum(closing.cache_hits.values()), sum(closing.cache_misses.values())],
    "child": [child.returncode for child in compiling._children.values()],
    "profit": results.paths["profit_usd"].tolist(),
}))
"""


def _run_fresh(cache, scenario, paths: int = 2500) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", _RUN, str(scenario), str(paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_cold_cache_has_the_kernel_compiled_by_the_child_and_loaded_with_the_same_bits(tmp_path):
    """On an empty cache the run starts the child, both threads wait for it, the kernel is loaded
    from the cache (compiled once, not in the run's process), the child leaves its record,
    and a run that finds the record starts no child. A child replaces a stale record. The
    profits are those of a run in this process."""
    scenario = SCENARIOS / "kz-2025-baseline.yaml"
    cold = _run_fresh(tmp_path, scenario)
    assert cold["child"] == [0]
    assert (cold["misses"], cold["hits"]) == (0, 1)
    assert cold["closing"] == [0, 1]  # compiled by the run for its child (compiling.help_children)
    assert len(list(tmp_path.rglob("kernel._economics-*.nbc"))) == 1
    (record,) = tmp_path.rglob("kzsim-economics-day_ahead-*.compiled")

    stale = record.with_name("kzsim-economics-day_ahead-0123456789abcdef.compiled")  # of another kernel.py
    stale.touch()
    record.unlink()
    again = _run_fresh(tmp_path, scenario)
    assert again["child"] == [0]  # no record of this kernel: a child, which finds it in the cache
    assert (again["misses"], again["hits"]) == (0, 1)
    assert record.exists() and not stale.exists()

    warm = _run_fresh(tmp_path, scenario)
    assert warm["child"] == []  # the record says the cache holds the kernel
    assert (warm["misses"], warm["hits"]) == (0, 1)
    assert warm["closing"] == [0, 0]  # no child to help

    from kzsim.scenario.loading import load_scenario

    here = simulate(load_scenario(scenario, {"simulation.horizon_days": "60"}), paths=2500, seed=5)
    assert np.array_equal(here.paths["profit_usd"].to_numpy(), np.array(cold["profit"]))
    assert np.array_equal(np.array(warm["profit"]), np.array(cold["profit"]))
    assert np.array_equal(np.array(again["profit"]), np.array(cold["profit"]))


_CLOSING = """
import json, sys
from kzsim.model import compiling, kernel
if sys.argv[1] == "closing":
    kernel.compile_closing()
else:
    compiling.compile_kernel(sys.argv[1] == "lots")
stats = {name: getattr(kernel, name).stats for name in ("_close_day", "_tree_sum", "_day")}
print(json.dumps({k: [sum(s.cache_hits.values()), sum(s.cache_misses.values())] for k, s in stats.items()}))
"""


@pytest.mark.parametrize("mode", ["day_ahead", "lots"])
def test_the_kernel_loads_the_day_closing_this_process_compiled_for_its_child(tmp_path, mode):
    """What a run compiles beside its child (kernel.compile_closing) is what the kernel's
    compilation asks for, in either mode: the child loads it from the cache instead of
    compiling it (a miss here would be a second compilation with other argument types)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}

    def counts(what: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _CLOSING, what], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    closing = counts("closing")
    assert closing["_close_day"] == [0, 1] and closing["_tree_sum"] == [0, 1]  # compiled there
    assert closing["_day"] == [0, 0]  # and nothing else of the kernel
    child = counts(mode)
    assert child["_close_day"] == [1, 0] and child["_tree_sum"] == [1, 0]  # loaded, not compiled
    assert child["_day"] == [0, 1]


def test_a_run_compiles_the_kernel_itself_when_the_child_is_too_slow(monkeypatch):
    """wait() gives up on a child after WAIT_SECONDS and kills it (the run then compiles the
    kernel as it would without a child); a finished child is not waited for again."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(compiling, "WAIT_SECONDS", 0.3)
    monkeypatch.setitem(compiling._children, "test-mode", child)
    started = time.perf_counter()
    compiling.wait("test-mode")
    assert time.perf_counter() - started < 10
    assert child.returncode is not None  # killed and reaped
    compiling.wait("test-mode")  # at once


def test_no_child_when_this_process_has_the_kernel(monkeypatch):
    sc = make_scenario()
    simulate(sc, paths=10)  # its kernel compiled (or loaded) in this process
    started = []
    monkeypatch.setattr(compiling.subprocess, "Popen", lambda *a, **k: started.append(a))
    compiling.start_for(sc)
    assert started == []


def test_the_child_refuses_an_unknown_mode(capsys):
    assert compiling.main(["auction"]) == 2
    assert "day_ahead|lots" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "sets", "expected"),
    [
        ("electricity:\n  procurement_mode: lots\n", (), "lots"),
        ("electricity:\n  procurement_mode: day_ahead\n", (), "day_ahead"),
        ("electricity:\n  procurement_mode: lots\n", ("electricity.procurement_mode=day_ahead",), "day_ahead"),
        ("electricity:\n  tariff_kzt_per_kwh: 20\n", (), None),  # not named: the loader's default
        ("electricity: [1, 2\n", (), None),  # not YAML: the loader says why
        ("electricity:\n  procurement_mode: barter\n", (), None),  # not a mode: idem
        ("- 1\n- 2\n", (), None),
    ],
)
def test_the_mode_is_read_from_the_file_or_a_set_before_loading(tmp_path, text, sets, expected):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert procurement_mode_named(str(path), sets) == expected


def test_a_missing_file_or_a_fifo_names_no_mode_without_waiting(tmp_path):
    """Read as the loader reads a scenario: a named pipe is refused, not opened for a writer."""
    assert procurement_mode_named(str(tmp_path / "none.yaml")) is None
    assert procurement_mode_named(str(tmp_path)) is None
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert procurement_mode_named(str(fifo)) is None


@pytest.mark.parametrize(
    ("args", "modes"),
    [
        (["run", "{base}", "--no-report", "--out", "{out}"], [False]),
        (["run", "{base}", "--set", "electricity.procurement_mode=lots", "--no-report", "--out", "{out}"], [True]),
        (["compare", "{base}", "{article}", "--no-report", "--out", "{out}"], [False, True]),
        (["sensitivity", "{base}", "--out", "{out}"], [False]),
        (["breakeven", "{base}", "--parameter", "electricity.tariff_kzt_per_kwh"], [False]),
        (["sweep", "{base}", "--set", "electricity.tariff_kzt_per_kwh=20:30:10", "--out", "{out}"], [False]),
        (["hedge", "{hedged}", "--ratios", "0,1", "--out", "{out}"], [False]),
    ],
    ids=["run", "run-set", "compare", "sensitivity", "breakeven", "sweep", "hedge"],
)
def test_each_simulating_command_starts_the_compile_child_before_loading_its_scenarios(
    args, modes, tmp_path, monkeypatch
):
    """kzsim.cli.common.compile_ahead: the child for the mode each file (or a --set) names
    starts before the first scenario is loaded, once a mode."""
    from click.testing import CliRunner

    import kzsim.cli.common as common
    from kzsim.cli import main

    events = []
    monkeypatch.setattr(compiling, "start", lambda lots_mode: events.append(("start", lots_mode)))
    monkeypatch.setattr(compiling, "start_for", lambda sc: None)
    load = common.scenario_arg
    monkeypatch.setattr(common, "scenario_arg", lambda *a, **k: events.append(("load",)) or load(*a, **k))
    files = {"base": "kz-2025-baseline", "article": "article-2025", "hedged": "kz-2025-hedged"}
    values = {**{k: str(SCENARIOS / f"{v}.yaml") for k, v in files.items()}, "out": str(tmp_path / "o")}
    result = CliRunner().invoke(main, [*(a.format(**values) for a in args), "--paths", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    first_load = events.index(("load",))
    assert sorted(lots for _, lots in events[:first_load]) == sorted(modes)


def test_no_compile_child_is_started_for_a_run_on_a_cluster(monkeypatch):
    from kzsim.cli.common import compile_ahead

    started = []
    monkeypatch.setattr(compiling, "start", started.append)
    base = str(SCENARIOS / "kz-2025-baseline.yaml")
    compile_ahead([base], (), 2, None)
    compile_ahead([base], (), 1, "tcp://127.0.0.1:8786")
    assert started == []
    compile_ahead([base, base], (), 1, None)
    assert started == [False]
