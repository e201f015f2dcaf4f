"""Bad scenarios: one line per problem, `FILE: section.key: problem (allowed)`, exit 2, no traceback."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from kzsim.cli import main
from tests.conftest import SCENARIOS

BASELINE = (SCENARIOS / "kz-2025-baseline.yaml").read_text()
LINE = re.compile(r"^(?P<file>[^:]+): (?P<key>[\w.]+|line \d+, column \d+): (?P<problem>.+)$")


def edit(old: str, new: str) -> str:
    assert old in BASELINE, old
    return BASELINE.replace(old, new, 1)


# (case name, scenario text, dotted key the message must name, words the message must hold)
CASES = [
    ("wrong type", edit("  horizon_days: 730 ", "  horizon_days: two "), "simulation.horizon_days", "whole number"),
    (
        "unknown key",
        edit("  tariff_kzt_per_kwh:", "  tarif_kzt_per_kwh:"),
        "electricity.tarif_kzt_per_kwh",
        "did you mean `tariff_kzt_per_kwh`",
    ),
    ("negative duration", edit("  horizon_days: 730 ", "  horizon_days: -5 "), "simulation.horizon_days", ">= 1"),
    (
        "share above 1",
        edit("  aifc_sale_share: 0.75 ", "  aifc_sale_share: 1.5 "),
        "regulation.aifc_sale_share",
        "[0, 1]",
    ),
    (
        "unbounded distribution for a share",
        edit("  aifc_sale_share: 0.75 ", "  aifc_sale_share: {dist: normal, mean: 0.75, sd: 0.1} "),
        "regulation.aifc_sale_share",
        "truncate",
    ),
    (
        "distribution out of order",
        edit("low: 0.42, high: 0.53}", "low: 0.6, high: 0.53}"),
        "market.btc_volatility_per_year",
        "low < high",
    ),
    (
        "unknown distribution",
        edit("{dist: uniform, low: 0.42", "{dist: unifrm, low: 0.42"),
        "market.btc_volatility_per_year",
        "unknown distribution",
    ),
    (
        "misspelt distribution key",
        edit("low: 0.42, high: 0.53}", "low: 0.42, hi: 0.53}"),
        "market.btc_volatility_per_year.hi",
        "did you mean `high`",
    ),
    (
        "negative sigma",
        edit("median: 4, sigma: 1.0}", "median: 4, sigma: -1.0}"),
        "grid.outage_duration_hours.sigma",
        "> 0",
    ),
    (
        "PERT mode outside its range",
        edit("{dist: pert, low: 20, mode: 25, high: 35}", "{dist: pert, low: 20, mode: 45, high: 35}"),
        "electricity.tariff_kzt_per_kwh",
        "low <= mode <= high",
    ),
    ("missing section", edit("regulation:\n", "regulations:\n"), "regulation", "missing"),
    ("NaN", edit("  btc_price_usd: 87508.83", "  btc_price_usd: .nan"), "market.btc_price_usd", "finite"),
    ("bad date", edit("start_date: 2026-01-01", "start_date: 2026-13-01"), "simulation.start_date", "YYYY-MM-DD"),
    (
        "text for a number",
        edit("  btc_price_usd: 87508.83", "  btc_price_usd: lots"),
        "market.btc_price_usd",
        "not a number",
    ),
    ("unknown fleet key", edit("      count: 2600 ", "      cnt: 2600 "), "farm.fleet.0.cnt", "did you mean `count`"),
    (
        "brackets out of order",
        edit("{min_price_kzt_per_kwh: 5, fee_kzt_per_kwh: 10}", "{min_price_kzt_per_kwh: 50, fee_kzt_per_kwh: 10}"),
        "electricity.mining_fee_brackets",
        "increasing",
    ),
    (
        "bad procurement mode",
        edit("procurement_mode: day_ahead", "procurement_mode: auction"),
        "electricity.procurement_mode",
        "'lots'",
    ),
    ("YAML syntax error", edit("  seed: 20260101", "  seed: [20260101"), "line 14, column 13", "YAML syntax error"),
    (
        "python object tag",
        edit("  btc_price_usd: 87508.83", "  btc_price_usd: !!python/object/apply:os.system ['echo x']"),
        "line 40, column 18",
        "tag is not allowed",
    ),
]


def run_validate(tmp_path, text: str | bytes, name: str = "scenario.yaml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(path)])
    return path, result


def assert_one_line_messages(result, path):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines
    for line in lines:
        m = LINE.match(line)
        assert m, f"not FILE: key: problem: {line!r}"
        assert m["file"] == str(path)
        assert "(allowed" in m["problem"] or "file" in m["problem"] or "missing" in m["problem"]
    return lines


@pytest.mark.parametrize(("case", "text", "key", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_gets_a_one_line_message(tmp_path, case, text, key, words):
    path, result = run_validate(tmp_path, text)
    lines = assert_one_line_messages(result, path)
    assert any(line.startswith(f"{path}: {key}: ") and words in line for line in lines), result.output


@pytest.mark.parametrize(
    ("case", "content", "words"),
    [
        ("empty file", "", "empty"),
        ("a list, not a mapping", "- a\n- b\n", "mapping"),
        ("binary file", bytes(range(256)), "not a text file"),
    ],
)
def test_unreadable_files(tmp_path, case, content, words):
    path, result = run_validate(tmp_path, content)
    assert result.exit_code == 2
    assert result.output.strip() == f"{path}: " + result.output.strip().split(": ", 1)[1]
    assert words in result.output and "Traceback" not in result.output


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["validate", str(missing)])
    assert (
        result.exit_code == 2 and result.output.strip() == f"{missing}: file not found (allowed: a YAML scenario file)"
    )
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output


def test_every_command_reports_bad_scenarios_the_same_way(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(CASES[0][1])
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert (
        result.output.strip() == f'{path}: simulation.horizon_days: "two" is not a whole number (allowed: an integer)'
    )
    assert not (tmp_path / "out").exists()


def test_set_overrides_are_validated_like_the_file(tmp_path):
    result = CliRunner().invoke(
        main, ["validate", str(SCENARIOS / "kz-2025-baseline.yaml"), "--set", "regulation.aifc_sale_share=2"]
    )
    assert result.exit_code == 2
    assert "regulation.aifc_sale_share: 2 is out of range (allowed: values in [0, 1])" in result.output
    result = CliRunner().invoke(
        main, ["validate", str(SCENARIOS / "kz-2025-baseline.yaml"), "--set", "regulation.aifc_sale_shar=0.5"]
    )
    assert result.exit_code == 2 and "did you mean `aifc_sale_share`" in result.output
