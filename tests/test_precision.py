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
    assert all(a < b for a, b in zip(done, done[1:])) and calls[-1] == (sum(r["paths"] for r in rounds),) * 2
    assert sorted({t for _, t in calls}) == list(np.cumsum([r["paths"] for r in rounds]))
    assert precision["reached"] and len(rounds) >= 2 and rounds[-1]["se"] <= 0.01 < rounds[0]["se"]
    n = res.run.paths
    p = res.summary["p_loss"]
    assert n >= p * (1 - p) / 0.01**2 * 0.9  # enough paths for the target, by the binomial SE
    plain = kzsim.simulate(sc, paths=n)
    assert np.array_equal(plain.run.per_path["profit_usd"], res.run.per_path["profit_usd"])


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
    simulated = sum(r["paths"] for r in s["precision"]["rounds"])
    assert len(s["precision"]["rounds"]) >= 2 and task.total == task.completed == simulated
