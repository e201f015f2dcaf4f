"""`kzsim init`: a complete, commented scenario from options or from answers typed at prompts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import kzsim
from kzsim.cli import main


def test_init_from_options_writes_a_scenario_that_loads_and_runs(tmp_path):
    out = tmp_path / "farm.yaml"
    args = ["init", str(out), "--fleet", "Antminer S21:2600", "--tariff-kzt-per-kwh", "25", "--rules", "2025"]
    result = CliRunner().invoke(main, [*args, "--horizon-days", "365", "--no-ask"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "kzsim run" in result.output
    sc = kzsim.load_scenario(out)
    assert sc.name == "farm" and sc.simulation.horizon_days == 365
    row = sc.farm.fleet[0]
    assert (row.model, row.count, row.hashrate_th.value, row.efficiency_j_per_th.value) == (
        "Antminer S21",
        2600,
        200,
        17.5,
    )
    assert sc.electricity.tariff_kzt_per_kwh.value == 25
    assert sc.regulation.aifc_sale_share.value == 0.75
    text = out.read_text()
    assert "tariff_kzt_per_kwh: 25.0  # set by kzsim init" in text
    assert "# Tax Code standard CIT 20 %" in text  # the base file's source, kept on its key
    assert kzsim.simulate(sc, paths=64, threads=1).summary["paths"] == 64
    again = CliRunner().invoke(main, [*args, "--no-ask"])
    assert again.exit_code == 2 and "exists" in again.output  # nothing the user had is replaced


def test_init_asks_and_checks_each_answer_as_typed(tmp_path):
    out = tmp_path / "mine.yaml"
    answers = "Antminer Z99:10\nS19 XP:2MW\n2023\n2024\nlots\nabc\n30\n0\n730\n"
    result = CliRunner().invoke(main, ["init", str(out), "--ask"], input=answers)
    assert result.exit_code == 0, result.output
    assert "not in the catalogue" in result.output  # asked again
    sc = kzsim.load_scenario(out)
    row = sc.farm.fleet[0]
    assert row.model == "Antminer S19 XP" and row.count == round(2000 / (140 * 21.5 / 1000 * 1.1))
    assert sc.regulation.aifc_sale_share.value == 0.5  # the 2024 rules' base
    assert sc.electricity.procurement_mode == "lots"
    assert sc.electricity.tariff_kzt_per_kwh.value == 30
    assert sc.simulation.horizon_days == 730


def test_init_keeps_the_bases_tariff_range_when_none_is_given(tmp_path):
    out = tmp_path / "f.yaml"
    result = CliRunner().invoke(main, ["init", str(out), "--no-ask"])
    assert result.exit_code == 0, result.output
    sc = kzsim.load_scenario(out)
    assert not sc.electricity.tariff_kzt_per_kwh.is_fixed
    assert sc.farm.fleet[0].model == "Antminer S21"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--fleet", "Antminer Z99:10"], "not in the catalogue"),
        (["--fleet", "S21"], "MODEL:COUNT"),
        (["--tariff-kzt-per-kwh", "-3"], "--tariff-kzt-per-kwh"),
    ],
)
def test_init_refuses_bad_options_in_one_line(extra, words, tmp_path):
    result = CliRunner().invoke(main, ["init", str(tmp_path / "x.yaml"), "--no-ask", *extra])
    assert result.exit_code == 2 and words in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.yaml").exists()


def test_init_into_a_missing_folder_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["init", str(tmp_path / "no" / "such" / "f.yaml"), "--no-ask"])
    assert result.exit_code == 2 and "cannot be written" in result.output
