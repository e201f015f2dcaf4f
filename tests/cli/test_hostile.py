"""Hostile inputs to the commands: each ends with exit 2 and one line naming the file or the
option and what is allowed; no traceback, no hang, nothing written.

The classes (bounded reading before parsing, strict types, checks before allocation,
translation at the edge) are tried with several instances each; ``tests/bad_scenarios/``
holds the scenario files, this module the options, special files and CSVs.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kzsim.cli import main
from kzsim.io.folders import NonFiniteResults
from kzsim.io.outputs import check_finite
from tests.conftest import SCENARIOS

BASELINE = str(SCENARIOS / "kz-2025-baseline.yaml")


def refused(args: list[str], *, starts: str, words: str, seconds: float = 20) -> str:
    started = time.monotonic()
    result = CliRunner().invoke(main, args)
    assert time.monotonic() - started < seconds, "took too long"
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert text.startswith(starts), text
    assert words in text and "(allowed" in text, text
    return text


# ---- 1. bounded input: special files, sizes, expansion, depth ---------------------------


def test_a_device_is_refused_without_reading_it():
    refused(["validate", "/dev/zero"], starts="/dev/zero: ", words="is a character device, not a regular file")


@pytest.mark.parametrize("command", [["validate"], ["run", "--paths", "10"]])
def test_a_named_pipe_as_the_scenario_does_not_hang(tmp_path, command):
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    refused([*command, str(fifo)], starts=f"{fifo}: ", words="is a named pipe (FIFO), not a regular file", seconds=10)


def test_a_named_pipe_or_device_as_a_csv_is_refused(tmp_path):
    fifo = tmp_path / "prices.csv"
    os.mkfifo(fifo)
    refused(["calibrate", str(fifo)], starts=f"{fifo}: ", words="is a named pipe (FIFO)")
    refused(["calibrate", "/dev/zero"], starts="/dev/zero: ", words="is a character device")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        Path(BASELINE)
        .read_text()
        .replace("  btc_price_usd:", f"  bootstrap: {{returns_csv: {fifo}}}\n  btc_price_usd:", 1)
    )
    refused(["validate", str(scenario)], starts=f"{scenario}: market.bootstrap.returns_csv: ", words="named pipe")


def test_a_scenario_over_the_size_limit_is_refused_after_reading_the_limit(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 2_000_000 + "\n")
    refused(["validate", str(big)], starts=f"{big}: ", words="file is over 1,000,000 bytes")


LAUGHS = "{" + ", ".join(f"{a}: &{a} [{', '.join([f'*{b}'] * 9)}]" for a, b in zip("bcdefg", "abcdef")) + "}"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{a: &a [1,1,1,1,1,1,1,1,1], " + LAUGHS[1:], "expand to over 100,000 values"),
        ("[" * 20_000, "nests too deeply"),
        ("[" * 100 + "]" * 100, "nests over 64 levels"),
        ("{" * 3_000 + "}" * 3_000, "nests too deeply"),
        ("x" * 200_000, "value has 200,000 characters"),
        ("{a: 1, a: 2}", "key `a` is given twice"),
        ("!!python/object/apply:os.system [echo pwned]", "YAML tag is not allowed"),
        ("[1, 2", "YAML syntax error"),
    ],
    ids=["alias-bomb", "brackets-20000", "brackets-100", "braces-3000", "huge", "duplicate", "tag", "unclosed"],
)
def test_set_values_are_bounded_like_files(value, words):
    refused(["validate", BASELINE, "--set", f"description={value}"], starts="--set description: ", words=words)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("noequals", "expected SECTION.KEY=VALUE"),
        ("[x]=1", "not a dotted key"),
        ("a..b=1", "not a dotted key"),
        (".".join(["a"] * 40) + "=1", "at most 16 parts"),
    ],
)
def test_set_keys_are_checked(text, words):
    refused(["validate", BASELINE, "--set", text], starts="--set ", words=words)


def test_a_set_key_given_twice_is_refused():
    refused(
        ["validate", BASELINE, "--set", "simulation.seed=1", "--set", "simulation.seed=2"],
        starts="--set simulation.seed: ",
        words="given twice",
    )


# ---- 4. silent wrong answers: parsed once, YAML 1.2 numbers, booleans, sizes --------------


def load_with(*sets: str):
    from kzsim.cli.common import scenario_arg

    return scenario_arg(BASELINE, sets)


def test_set_values_are_parsed_once():
    assert load_with('name="2024"').name == "2024"
    assert load_with("description='a: b'").description == "a: b"
    assert load_with("name=plain text").name == "plain text"


def test_numbers_are_read_as_yaml_1_2():
    assert load_with("simulation.seed=010").simulation.seed == 10  # not octal 8
    assert load_with("simulation.seed=0o10").simulation.seed == 8
    assert load_with("simulation.paths=1e3").simulation.paths == 1000
    assert load_with("name=yes").name == "yes"  # YAML 1.1 made it a boolean
    assert load_with("name=1_000").name == "1_000"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("simulation.paths", "true"),
        ("simulation.horizon_days", "false"),
        ("farm.depreciation_years", "true"),
        ("farm.fleet.0.count", "true"),
        ("electricity.tariff_kzt_per_kwh", "true"),
        ("market.btc_price_usd", "{dist: uniform, low: true, high: 5}"),
    ],
)
def test_booleans_are_not_numbers(key, value):
    refused(["validate", BASELINE, "--set", f"{key}={value}"], starts=f"{BASELINE}: {key}", words="boolean")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("market.usd_kzt", "1e-300", "out of range"),
        ("market.btc_price_usd", "1e-300", "out of range"),
        ("market.network_hashrate_eh", "5e-324", "out of range"),
        ("farm.fleet.0.efficiency_j_per_th", "1e-300", "out of range"),
        ("market.usd_kzt", "{dist: lognormal, median: 1e-200, sigma: 1}", "central 99.8 %"),
        ("market.btc_price_usd", "{dist: lognormal, median: 1e200, sigma: 1}", "central 99.8 %"),
    ],
)
def test_sizes_that_would_overflow_are_refused(tmp_path, key, value, words):
    refused(
        ["run", BASELINE, "--paths", "10", "--no-report", "--out", str(tmp_path / "out"), "--set", f"{key}={value}"],
        starts=f"{BASELINE}: {key}",
        words=words,
    )


def test_long_horizons_bound_the_drift_and_volatility_together():
    base = ["validate", BASELINE, "--set", "simulation.horizon_days=36000"]
    refused([*base, "--set", "market.btc_drift_per_year=3"], starts=f"{BASELINE}: market.btc_drift", words="200")
    refused([*base, "--set", "market.btc_volatility_per_year=4"], starts=f"{BASELINE}: market.btc_vol", words="200")
    refused([*base, "--set", "market.kzt_devaluation_per_year=-9"], starts=f"{BASELINE}: market.kzt_", words="200")
    assert CliRunner().invoke(main, [*base, "--set", "market.btc_drift_per_year=1"]).exit_code == 0


def test_a_run_whose_outputs_are_not_finite_is_not_written():
    columns = {"profit_usd": np.array([1.0, np.nan]), "revenue_usd": np.array([1.0, np.inf]), "x": np.arange(2)}
    with pytest.raises(NonFiniteResults, match=r"profit_usd on 1 paths, revenue_usd on 1 paths"):
        check_finite(columns)
    check_finite({"profit_usd": np.array([1.0, -2.0]), "payback_days": np.array([np.nan, 3.0])})  # NaN = never


# ---- CSV files that are not what they claim ------------------------------------------------


def write_csv(path, values, header="date,close"):
    start = dt.date(2020, 1, 1)
    path.write_text(header + "\n" + "".join(f"{start + dt.timedelta(i)},{v}\n" for i, v in enumerate(values)))
    return path


@pytest.mark.parametrize("model", ["gbm", "garch", "jump_diffusion", "bootstrap"])
def test_calibrate_refuses_a_column_that_never_moves(tmp_path, model):
    flat = write_csv(tmp_path / "flat.csv", [100] * 400)
    refused(["calibrate", str(flat), "--model", model], starts=f"{flat}: column 'close'", words="all 100")


def test_calibrate_refuses_the_date_column_as_the_price(tmp_path):
    prices = write_csv(tmp_path / "p.csv", range(100, 500))
    refused(["calibrate", str(prices), "--price-column", "date"], starts=f"{prices}: column 'date'", words="dates")


def test_nothing_hangs_on_a_fifo_that_someone_opens_for_writing(tmp_path):
    """A writer on the FIFO does not make it a scenario: refused at once, the writer unblocked."""
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)

    def writer():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: kzsim never opened it for long
            return
        os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    refused(["validate", str(fifo)], starts=f"{fifo}: ", words="named pipe", seconds=10)
    t.join(5)
