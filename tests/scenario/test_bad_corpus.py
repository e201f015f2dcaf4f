"""The corpus of bad scenarios (tests/bad_scenarios/): every one is refused the same way.

One line per problem, ``FILE: section.key: problem (allowed: ...)``, exit status 2, no
traceback, no hang, and no Python object built from a YAML tag.
"""

from __future__ import annotations

import csv
import time

import pytest
from click.testing import CliRunner

from kzsim.cli import main
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "bad_scenarios"
ROWS = list(csv.DictReader((CORPUS / "EXPECTED.tsv").read_text().splitlines(), delimiter="\t"))


def test_the_corpus_is_large_and_complete():
    assert len(ROWS) >= 40
    assert {r["file"] for r in ROWS} == {p.name for p in CORPUS.glob("*.yaml")}


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_bad_scenario_is_refused_with_one_line_per_problem(row):
    path = CORPUS / row["file"]
    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert time.monotonic() - started < 10, "took too long"
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "pwned" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    prefix = f"{path}: "
    assert lines and all(line.startswith(prefix) for line in lines), result.output
    assert all("(allowed" in line or line.endswith("required key is missing") for line in lines), result.output
    key = row["key"]
    wanted = [line for line in lines if line.startswith(f"{prefix}{key}")]
    assert any(row["words"] in line for line in wanted), f"expected {key!r} with {row['words']!r}:\n{result.output}"


def test_run_refuses_the_corpus_like_validate(tmp_path):
    for name in ("share-above-one.yaml", "billion-laughs.yaml", "python-object-tag.yaml"):
        path = CORPUS / name
        out = tmp_path / name
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output == CliRunner().invoke(main, ["validate", str(path)]).output
        assert not out.exists()


def test_a_directory_is_not_a_scenario(tmp_path):
    folder = tmp_path / "scenario.yaml"
    folder.mkdir()
    result = CliRunner().invoke(main, ["validate", str(folder)])
    assert result.exit_code == 2
    assert result.output.strip() == f"{folder}: is a directory, not a scenario file (allowed: a .yaml file)"


def test_numbers_in_exponent_form_are_numbers(tmp_path):
    text = (CORPUS / "huge-price.yaml").read_text().replace("btc_price_usd: 1e300", "btc_price_usd: 9e4")
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(path), "--set", "simulation.paths=1e3"])
    assert result.exit_code == 0, result.output
