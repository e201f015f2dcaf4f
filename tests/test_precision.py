"""Monte Carlo precision: standard errors in the summary, convergence, --target-se."""

from __future__ import annotations

import json
import math

import numpy as np
from click.testing import CliRunner

import kzsim
from kzsim.api import simulate_to_precision
from kzsim.cli import main
from kzsim.stats import Z95, running_estimates
from tests.conftest import SCENARIOS

HALF = {"simulation.horizon_days": 100, "market.btc_price_usd": 200000}  # P(loss) about 0.4


def test_target_se_adds_paths_until_reached_and_equals_a_plain_run():
    """(and its progress counts the paths of every round, the total growing as each starts)"""
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    calls = []
    res = simulate_to_precision(sc, 0.01, paths=200, progress=lambda *a: calls.append(a))
    precision = res.summary["precision"]
    rounds = precision["rounds"]
    done = [d for d, _ in calls]
    assert all(a < b for a, b in zip(done, done[1:])) and calls[-1] == (sum(r["simulated_paths"] for r in rounds),) * 2
    assert sorted({t for _, t in calls}) == list(np.cumsum([r["simulated_paths"] for r in rounds]))
    assert precision["reached"] and len(rounds) >= 2 and rounds[-1]["se"] <= 0.01 < rounds[0]["se"]
    n = res.run.paths
    p = res.summary["p_loss"]
    assert n >= p * (1 - p) / 0.01**2 * 0.9  # enough paths for the target, by the binomial SE
    plain = kzsim.simulate(sc, paths=n)
    assert np.array_equal(plain.run.per_path["profit_usd"], res.run.per_path["profit_usd"])


def test_target_se_simulates_only_the_paths_each_round_adds():
    """From a round of 4,096 paths (the per-day sample whole), the next round simulates only
    its new paths, and the result is still the plain run's, per-day series included."""
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    calls = []
    res = simulate_to_precision(sc, 0.006, paths=4096 + 100, progress=lambda *a: calls.append(a))
    first, second = res.summary["precision"]["rounds"]
    assert first["simulated_paths"] == 4196 and second["paths"] >= 2 * 4196
    assert second["simulated_paths"] == second["paths"] - 4096  # the first round's partial block again
    assert calls[-1] == (4196 + second["simulated_paths"],) * 2
    plain = kzsim.simulate(sc, paths=second["paths"])
    for store in ("per_path", "daily_mean", "daily_quantiles"):
        for key, value in getattr(plain.run, store).items():
            assert value.tobytes() == getattr(res.run, store)[key].tobytes(), f"{store}.{key}"


def test_target_se_stops_at_the_cap():
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    res = simulate_to_precision(sc, 0.001, paths=100, max_paths=1500)
    assert res.run.paths == 1500 and not res.summary["precision"]["reached"]


def test_summary_carries_standard_errors():
    s = kzsim.simulate(kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF), paths=1000).summary
    assert math.isclose(s["p_loss_se"], math.sqrt(s["p_loss"] * (1 - s["p_loss"]) / 1000))
    for key in ("cvar_95_se_usd", "cvar_99_se_usd"):
        assert s[key] > 0
    assert s["uptime_fraction"]["mean_se"] > 0
    lo, hi = s["cost_per_btc_usd"]["all_in"]["p50_ci95"]
    assert lo <= s["cost_per_btc_usd"]["all_in"]["p50"] <= hi


def test_running_estimates_end_at_the_full_sample():
    x = np.random.default_rng(5).normal(-1.0, 3.0, 5000)
    est = running_estimates(x)
    assert est["paths"][-1] == 5000
    assert math.isclose(est["mean"][-1], x.mean(), rel_tol=1e-12)
    assert math.isclose(est["mean_se"][-1], x.std(ddof=1) / math.sqrt(5000), rel_tol=1e-9)
    assert est["p_loss"][-1] == np.mean(x < 0)


def test_cli_target_se(tmp_path, recorded_bars):
    """(with a progress bar over the rounds: on a terminal, one recorded here)"""
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(SCENARIOS / "small-operator.yaml"),
            "--paths",
            "200",
            "--target-se",
            "0.02",
            "--out",
            str(out),
            "--no-report",
            "--set",
            "simulation.horizon_days=100",
            "--set",
            "market.btc_price_usd=200000",
        ],
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    lo, hi = s["p_loss_ci95"]
    assert (hi - lo) / (2 * Z95) <= 0.02 and s["precision"]["reached"]
    [bar] = recorded_bars
    [task] = bar.bar.tasks
    simulated = sum(r["simulated_paths"] for r in s["precision"]["rounds"])
    assert len(s["precision"]["rounds"]) >= 2 and task.total == task.completed == simulated
    assert f"{s['precision']['rounds'][0]['paths']:,} paths (SE" in result.output


def test_cli_target_se_says_how_many_paths_each_round_simulated(tmp_path):
    args = ["run", str(SCENARIOS / "small-operator.yaml"), "--paths", "4196", "--target-se", "0.006"]
    args += ["--out", str(tmp_path / "o"), "--no-report"] + [f"--set={k}={v}" for k, v in HALF.items()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    first, second = json.loads((tmp_path / "o" / "summary.json").read_text())["precision"]["rounds"]
    line = f"kzsim: 4,196 paths (SE {first['se']:.4f}) -> {second['paths']:,} paths ({second['paths'] - 4096:,} new, SE"
    assert line in result.output
