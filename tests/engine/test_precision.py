"""Monte Carlo precision: standard errors in the summary, convergence, --target-se."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import kzsim
from kzsim import stats
from kzsim.api import simulate_to_precision
from kzsim.cli.commands import _round_text, main
from kzsim.report.figures import precision_text
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


def test_target_se_of_the_99_cvar():
    """A CVaR's standard error falls as one over the square root of the paths: each round
    asks for n (se / target)^2 paths, and the result is the plain run with the final count."""
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    res = simulate_to_precision(sc, 1500.0, measure="cvar_99", paths=1000)
    precision = res.summary["precision"]
    rounds = precision["rounds"]
    assert precision["measure"] == "cvar_99" and precision["reached"] and len(rounds) >= 2
    assert rounds[-1]["se"] == res.summary["cvar_99_se_usd"] <= 1500.0 < rounds[0]["se"]
    assert rounds[-1]["estimate"] == res.summary["cvar_99_usd"]
    assert rounds[1]["paths"] >= rounds[0]["paths"] * (rounds[0]["se"] / 1500.0) ** 2  # enough, by 1 / sqrt(n)
    plain = kzsim.simulate(sc, paths=res.run.paths)
    assert plain.run.per_path["profit_usd"].tobytes() == res.run.per_path["profit_usd"].tobytes()
    assert plain.summary["cvar_99_se_usd"] == res.summary["cvar_99_se_usd"]


def test_target_se_of_the_99_var():
    """A VaR's precision: the half-width of its distribution-free 95 % interval over 1.96,
    infinite while the interval is open (50 paths cannot bracket the 1 % quantile)."""
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    res = simulate_to_precision(sc, 2500.0, measure="var_99", paths=50)
    rounds = res.summary["precision"]["rounds"]
    assert rounds[0]["paths"] == 50 and rounds[0]["se"] == math.inf and rounds[1]["paths"] == 1024
    lo, hi = res.summary["var_99_ci95_usd"]
    assert res.summary["precision"]["reached"] and rounds[-1]["se"] == (hi - lo) / (2 * Z95) <= 2500.0
    assert rounds[-1]["estimate"] == res.summary["var_99_usd"]
    assert "the standard error of the 99 % VaR was at most $2.5 k: 50 -> 1,024" in precision_text(
        res.summary["precision"]
    )
    assert _round_text(rounds[0], "var_99") == "50 paths (SE n/a)"
    plain = kzsim.simulate(sc, paths=res.run.paths)
    assert plain.run.per_path["profit_usd"].tobytes() == res.run.per_path["profit_usd"].tobytes()


def test_target_se_of_mean_profit():
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    res = simulate_to_precision(sc, 600.0, measure="mean", paths=1000)
    first, *_, last = res.summary["precision"]["rounds"]
    assert res.summary["precision"]["reached"] and last["se"] == res.summary["profit_usd"]["mean_se"] <= 600.0
    assert first["se"] > 600.0 and last["estimate"] == res.summary["profit_usd"]["mean"]
    assert "the standard error of mean profit was at most $600: 1,000 -> " in precision_text(res.summary["precision"])


def test_target_se_of_a_cvar_with_too_few_tail_paths_to_know_it():
    """50 paths hold one path of the worst 1 %: its SE is unknown (NaN), so more paths are run."""
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    first, second = simulate_to_precision(sc, 1e9, measure="cvar_99", paths=50).summary["precision"]["rounds"]
    assert first["paths"] == 50 and math.isnan(first["se"])
    assert second["paths"] == 1024 and second["se"] <= 1e9


def test_the_cli_offers_every_measure_of_the_api():
    from kzsim.api import PRECISION_MEASURES

    [option] = [p for p in main.commands["run"].params if p.name == "target_of"]
    assert tuple(option.type.choices) == PRECISION_MEASURES


def test_target_se_refuses_an_unknown_measure_or_a_p_loss_target_from_0_5():
    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    with pytest.raises(ValueError, match="expected one of p_loss, mean, var_95, var_99, cvar_95, cvar_99"):
        simulate_to_precision(sc, 0.01, measure="es_99")
    with pytest.raises(ValueError, match=r"\(0, 0.5\)"):
        simulate_to_precision(sc, 0.5)


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
    assert est["cvar_99"][-1] == stats.expected_shortfall(x, 0.99)
    assert est["cvar_99_se"][-1] == stats.expected_shortfall_se(x, 0.99)
    assert np.isnan(est["cvar_99_se"][0])  # the first 10 values: one in the worst 1 %, its spread unknown


def test_the_convergence_page_shows_the_99_cvar_and_what_a_target_run_did():
    from kzsim.report.figures import convergence
    from tests.conftest import assert_words_in_place

    sc = kzsim.load_scenario(SCENARIOS / "small-operator.yaml", HALF)
    res = simulate_to_precision(sc, 1500.0, measure="cvar_99", paths=1000)
    steps = " -> ".join(f"{r['paths']:,}" for r in res.summary["precision"]["rounds"])
    said = (
        f"This run added paths until the standard error of the 99 % CVaR was at most $1.5 k: {steps} paths (reached)."
    )
    assert precision_text(res.summary["precision"]) == said
    fig = convergence(res)
    assert [ax.get_title(loc="left") for ax in fig.axes][-1].startswith("99 % CVaR")
    assert said.split(":")[0] in " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert_words_in_place(fig)
    capped = simulate_to_precision(sc, 0.001, paths=100, max_paths=1500).summary["precision"]
    assert precision_text(capped).endswith(
        "P(loss) was at most 0.10 %: 100 -> 1,500 paths (not reached at the cap of 1,500 paths)."
    )
    assert precision_text(None) == ""


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


def test_cli_target_se_of_the_99_cvar(tmp_path):
    args = ["run", str(SCENARIOS / "small-operator.yaml"), "--paths", "1000", "--target-of", "cvar_99"]
    args += ["--target-se", "2000", "--out", str(tmp_path / "o"), "--no-report"]
    result = CliRunner().invoke(main, args + [f"--set={k}={v}" for k, v in HALF.items()])
    assert result.exit_code == 0, result.output
    precision = json.loads((tmp_path / "o" / "summary.json").read_text())["precision"]
    assert precision["measure"] == "cvar_99" and precision["reached"] and precision["achieved_se"] <= 2000
    first = precision["rounds"][0]
    assert f"kzsim: 1,000 paths (SE ${first['se']:,.0f}) -> " in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-se", "0.7"], "--target-se: 0.7 for P(loss) (allowed: between 0 and 0.5, e.g. 0.005)"),
        (["--target-of", "cvar_95"], "--target-of cvar_95: needs --target-se (allowed: a standard error in USD"),
    ],
)
def test_cli_target_se_refuses_a_target_it_cannot_use(tmp_path, args, message):
    result = CliRunner().invoke(
        main, ["run", str(SCENARIOS / "small-operator.yaml"), "--out", str(tmp_path / "o")] + args
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
