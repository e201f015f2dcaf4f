"""Tornado and break-even on common random numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose
from pypdf import PdfReader

import kzsim
from kzsim.analysis.sensitivity import break_even, tornado
from kzsim.cli import main
from tests.conftest import SCENARIOS, make_scenario
from tests.model.test_exact import hand_computed


def test_tornado_signs_are_the_economics(tmp_path):
    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 90})
    table = tornado(sc, paths=300).set_index("parameter")
    tariff = table.loc["electricity.tariff_kzt_per_kwh"]
    assert tariff.value_low < tariff.value_high
    assert tariff.delta_mean_profit_high_usd < 0 < tariff.delta_mean_profit_low_usd  # dearer power, less profit
    capex = table.loc["farm.site_capex_usd"]
    assert capex.delta_mean_profit_high_usd < 0 < capex.delta_mean_profit_low_usd
    assert set(table.index) == {k for k, d in sc.uncertain_parameters().items() if not d.is_fixed}
    assert list(table.swing_usd) == sorted(table.swing_usd, reverse=True)


def assert_counts_to(calls: list[tuple[int, int | None]], total: int | None, step: int) -> None:
    """An analysis' progress calls: paths done over all its runs, rising by whole chunks
    (at most ``step`` paths) to the end, against the total it announced."""
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {total} and all(0 < b - a <= step for a, b in zip([0, *done], done))
    if total is not None:
        assert done[-1] == total


def test_a_tornado_gives_the_same_table_with_its_runs_side_by_side():
    """And its progress counts the paths of every run, from one thread or three."""
    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 30})
    calls_one, calls_three = [], []
    one = tornado(sc, paths=200, progress=lambda *a: calls_one.append(a))
    three = tornado(sc, paths=200, threads=3, progress=lambda *a: calls_three.append(a))  # three runs at a time
    pd.testing.assert_frame_equal(three, one, check_exact=True)
    assert three.attrs == one.attrs
    runs = 1 + 2 * len(one)  # the scenario, then each parameter low and high
    assert len(calls_one) == len(calls_three) == runs  # 200 paths: one chunk a run
    assert_counts_to(calls_one, runs * 200, 200)
    assert_counts_to(calls_three, runs * 200, 200)


def test_break_even_price_of_a_certain_farm_is_the_closed_form():
    sc = make_scenario()  # no uncertainty: profit is linear in the BTC price
    h = hand_computed(10, np.full(10, 1.0))
    per_usd_of_price = h["btc_day"] * (0.75 * (1 - 0.005 - 0.001) + 0.25 * (1 - 0.001))
    expected = (h["cash_day"] + h["dep_day"]) / per_usd_of_price
    calls = []
    out = break_even(sc, "market.btc_price_usd", paths=5, progress=lambda *a: calls.append(a))
    assert_allclose(out["mean_zero"]["value"], expected, rtol=1e-5)  # brentq's tolerance
    assert len(calls) > 10 and calls[-1][0] == 5 * len(calls)  # one chunk a run, as many as the search took
    assert_counts_to(calls, None, 5)  # (how many it takes is not known before)
    assert out["mean_zero"]["se"] == 0.0
    # with every path alike, P(loss) jumps from 1 to 0 at the same price; the bisection stops
    # when its interval is 1e-3 of the value wide, so the midpoint is within 5e-4 of the jump
    assert_allclose(out["p_loss_at_level"]["value"], expected, rtol=5e-4)


def test_break_even_tariff_that_does_not_exist_is_none():
    sc = make_scenario(**{"market.btc_price_usd": 1000})  # loses money even with free power
    out = break_even(sc, "electricity.tariff_kzt_per_kwh", paths=5)
    assert out["mean_zero"] is None and out["p_loss_at_level"] is None


def test_cli_sensitivity_and_breakeven(tmp_path):
    out = tmp_path / "tornado"
    args = [
        "sensitivity",
        str(SCENARIOS / "small-operator.yaml"),
        "--paths",
        "100",
        "--out",
        str(out),
        "--set",
        "simulation.horizon_days=60",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "tornado.csv")
    assert "electricity.tariff_kzt_per_kwh" in set(table.parameter)
    assert "What drives the result" in PdfReader(out / "report.pdf").pages[0].extract_text()
    result = CliRunner().invoke(
        main,
        [
            "breakeven",
            str(SCENARIOS / "small-operator.yaml"),
            "--paths",
            "50",
            "--parameter",
            "market.btc_price_usd",
            "--set",
            "simulation.horizon_days=60",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    [answer] = json.loads(result.output)
    assert answer["parameter"] == "market.btc_price_usd" and answer["mean_zero"]["value"] > 0


@pytest.mark.parametrize("command", ["sensitivity", "breakeven"])
def test_bad_scenarios_are_refused_the_same_way(tmp_path, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = CliRunner().invoke(main, [command, str(bad)])
    assert result.exit_code == 2 and result.output.startswith(f"{bad}: ")


def test_blackout_cost_of_a_certain_farm_is_two_days_of_margin():
    """A 48 h blackout from 18:00 on day 2 of the certain farm removes 6 + 24 + 18 hours."""
    from kzsim.analysis.sensitivity import blackout_cost

    sc = make_scenario()
    out = blackout_cost(sc, start_day=2, paths=3)
    h = hand_computed(10, np.full(10, 100000.0))
    revenue_day = h["btc_day"] * 100000 * (0.75 * (1 - 0.005 - 0.001) + 0.25 * (1 - 0.001))
    variable = h["energy_cost"] + h["mining_fee"] + h["procurement"]  # 22 lots saved = 2 days of 11
    expected = 2 * revenue_day - 2 * variable * (1 + 0.1)  # compliance is 10 % of opex; no tax (a loss)
    assert_allclose(out["cost_usd"]["mean"], expected, rtol=1e-9)
    assert out["start"] == "2026-06-03 18:00"


def test_a_forced_outage_is_down_on_every_path_and_counted():
    from kzsim.engine.run import run_paths

    sc = make_scenario(**{"grid.forced_outages": [{"start_day": 1, "start_hour": 12, "duration_hours": 24}]})
    pp = run_paths(sc).per_path
    assert_allclose(pp["downtime_grid_hours"], 24.0)
    assert (pp["grid_outages"] == 1).all()


def test_sobol_indices_of_the_ishigami_function_match_the_analytic_values():
    """Ishigami-Homma, A = 7, B = 0.1 (SALib's test function): S1 = (0.3139, 0.4424, 0),
    ST = (0.5576, 0.4424, 0.2437). Each estimate within twice its 95 % half-width (about
    4 standard errors, the z = 4 of the other statistical tests)."""
    from SALib.test_functions import Ishigami

    from kzsim.analysis.sensitivity import sobol_indices

    names = ["x1", "x2", "x3"]
    uniform = lambda u: -np.pi + 2 * np.pi * u  # noqa: E731
    table = sobol_indices(
        names, [uniform] * 3, lambda v: Ishigami.evaluate(np.column_stack([v[n] for n in names])), 4096, seed=3
    )
    table = table.set_index("parameter")
    for name, s1, st in (("x1", 0.3139, 0.5576), ("x2", 0.4424, 0.4424), ("x3", 0.0, 0.2437)):
        assert abs(table.loc[name, "S1"] - s1) <= 2 * table.loc[name, "S1_conf"], name
        assert abs(table.loc[name, "ST"] - st) <= 2 * table.loc[name, "ST_conf"], name


def test_sobol_progress_counts_every_matrix_of_the_design_run_side_by_side_or_not():
    from kzsim.analysis.sensitivity import sobol, sobol_base_samples

    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 20})
    assert [sobol_base_samples(n) for n in (1, 2, 3, 1000, 1024, 1025)] == [2, 2, 4, 1024, 1024, 2048]
    calls, calls_side_by_side = [], []
    table = sobol(sc, paths=1500, chunk_paths=1024, progress=lambda *a: calls.append(a))  # 2,048 a matrix: 2 chunks
    matrices = len(table) + 2
    assert len(calls) == 2 * matrices and table.attrs["evaluations"] == 2048 * matrices
    assert_counts_to(calls, 2048 * matrices, 1024)
    # the matrices three at a time, each on a thread: the same indices, every path counted
    three = sobol(sc, paths=1500, chunk_paths=1024, threads=3, progress=lambda *a: calls_side_by_side.append(a))
    pd.testing.assert_frame_equal(three, table, check_exact=True)
    assert three.attrs == table.attrs
    assert_counts_to(calls_side_by_side, 2048 * matrices, 1024)


def test_sobol_on_a_scenario_ranks_the_inputs_that_matter(tmp_path):
    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 180})
    out = tmp_path / "sobol"
    result = CliRunner().invoke(
        main,
        [
            "sensitivity",
            str(SCENARIOS / "kz-2025-baseline.yaml"),
            "--method",
            "sobol",
            "--paths",
            "256",
            "--out",
            str(out),
            "--set",
            "simulation.horizon_days=180",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sobol.csv").set_index("parameter")
    uncertain = {k for k, d in sc.uncertain_parameters().items() if not d.is_fixed}
    assert set(table.index) == uncertain
    # the tariff moves every path's power bill; the restart time after rare outages barely matters
    assert table.loc["electricity.tariff_kzt_per_kwh", "ST"] > table.loc["farm.restart_hours", "ST"]
    assert "Share of the variance" in result.output
    assert "Global sensitivity" in PdfReader(out / "report.pdf").pages[0].extract_text()
