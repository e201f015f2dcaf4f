"""Comparing scenarios on common random numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

import kzsim
from kzsim.analysis.comparison import paired_difference
from kzsim.cli import main
from tests.conftest import SCENARIOS

SHORT = {"simulation.horizon_days": 120}


@pytest.fixture(scope="module")
def pair():
    base = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", SHORT)
    dearer = base.replace(
        **{"electricity.tariff_kzt_per_kwh": {"dist": "pert", "low": 22, "mode": 27, "high": 37}, "name": "tariff+2"}
    )
    return base, dearer


def test_common_random_numbers_shrink_the_standard_error_of_a_difference(pair):
    base, dearer = pair
    cmp = kzsim.compare([base, dearer], paths=2000)
    d = cmp.differences[0]
    # the same difference from independent runs: another seed for the second scenario
    independent = kzsim.simulate(dearer, paths=2000, seed=base.simulation.seed + 1)
    a = cmp.results[0].run.per_path["profit_usd"]
    b = independent.run.per_path["profit_usd"]
    se_independent = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert d["mean_se_usd"] * 10 < se_independent  # measured factor ~ 30 on this pair
    assert d["mean_usd"] < 0 and d["p_better"] == 0.0  # a dearer tariff never helps (flat fee bracket not needed:
    # every tariff here is >= 22 KZT/kWh and the day-ahead floor keeps prices in the 1-3 KZT fee brackets)


def test_a_scenario_compared_with_itself_differs_by_nothing(pair):
    """(and the progress counts both runs' paths, on from one to the next)"""
    base, _ = pair
    calls = []
    cmp = kzsim.compare([base, base], paths=300, progress=lambda *a: calls.append(a))
    assert calls == [(300, 600), (600, 600)]  # one chunk a run
    d = cmp.differences[0]
    assert d["mean_usd"] == 0 and d["mean_se_usd"] == 0 and d["p_better"] == 0
    assert cmp.names == [base.name, f"{base.name} (2)"]


def test_paired_difference_on_known_numbers():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    d = paired_difference(a, a + np.array([1.0, -1.0, 1.0, 1.0]))
    assert d["mean_usd"] == 0.5 and d["p_better"] == 0.75
    assert d["mean_se_usd"] == pytest.approx(np.std([1, -1, 1, 1], ddof=1) / 2, rel=1e-12)


def test_cli_compare_writes_its_outputs(tmp_path, recorded_bars):
    """And shows one progress bar over the scenarios' runs (on a terminal: one recorded here)."""
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(SCENARIOS / "kz-2025-baseline.yaml"),
            str(SCENARIOS / "winter-blackout-stress.yaml"),
            "--paths",
            "200",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["comparison.json", "headline.csv", "profits.parquet", "report.pdf"]
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["scenarios"] == ["kz-2025-baseline", "winter-blackout-stress"]
    d = summary["differences_vs_baseline"]["winter-blackout-stress"]
    profits = pd.read_parquet(out / "profits.parquet")
    diff = profits["difference_usd[winter-blackout-stress - kz-2025-baseline]"]
    assert d["mean_usd"] == pytest.approx(diff.mean(), rel=1e-12)
    text = [p.extract_text() for p in PdfReader(out / "report.pdf").pages]
    assert len(text) == 3 and "plain words" in text[0] and "path by path" in text[2]
    assert "does better on" in result.output
    [bar] = recorded_bars
    [task] = bar.bar.tasks
    assert task.total == task.completed == 400 and task.fields["done"] == "400/400 paths"


def test_cli_compare_refuses_bad_input(tmp_path):
    result = CliRunner().invoke(main, ["compare", str(SCENARIOS / "kz-2025-baseline.yaml")])
    assert result.exit_code == 2 and "at least two" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = CliRunner().invoke(main, ["compare", str(SCENARIOS / "kz-2025-baseline.yaml"), str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert all(line.startswith(f"{bad}: ") for line in result.output.strip().splitlines())


def test_the_reading_of_a_difference_known_exactly_or_from_one_path():
    """The report's sentence on the precision of common random numbers: a factor when there
    is one, "the same on every path" when every paired difference is equal (the factor is
    infinite), and no standard error from one path (NaN, not 0 or "nan times")."""
    from types import SimpleNamespace

    from kzsim.report.pdf import compare_reading

    def reading(a, b) -> tuple[dict, str]:
        d = paired_difference(np.array(a), np.array(b))
        return d, compare_reading(SimpleNamespace(names=["A", "B"], differences=[d]))

    d, text = reading([0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 3.0, 4.0])
    assert f"make this difference {d['crn_se_reduction_factor']:.1f} times more precise" in text
    d, text = reading([0.0, 1.0, 2.0], [2.0, 3.0, 4.0])
    assert d["mean_se_usd"] == 0 and d["crn_se_reduction_factor"] == np.inf
    assert text.endswith("The difference is the same on every path.") and "inf" not in text
    d, text = reading([5.0], [7.0])
    assert d["mean_usd"] == 2.0 and np.isnan(d["mean_se_usd"]) and np.isnan(d["crn_se_reduction_factor"])
    assert text.endswith("One path gives no standard error.") and "nan" not in text
    assert "(95 % interval n/a to n/a)" in text
