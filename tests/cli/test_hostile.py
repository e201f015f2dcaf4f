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


# ---- 2. grids counted before they are built -------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        ("0:1e12:1", "1,000,000,000,001 values"),
        ("0:1e308:1e-308", "over 200 values"),
        ("-1e308:1e308:1", "over 200 values"),
        ("0:inf:1", "not a grid"),
        ("nan:1:0.1", "not a grid"),
        ("1:2:0", "not a grid"),
        ("2:1:1", "not a grid"),
        ("1,2,nan", "not a grid"),
        (",".join(["1"] * 100_000), "100,000 values"),
    ],
)
def test_sweep_grids_are_counted_before_they_are_built(tmp_path, grid, words):
    refused(
        ["sweep", BASELINE, "--set", f"electricity.tariff_kzt_per_kwh={grid}", "--out", str(tmp_path / "s")],
        starts="--set electricity.tariff_kzt_per_kwh=",
        words=words,
        seconds=10,
    )
    assert not (tmp_path / "s").exists()


# ---- 3. rates that size allocations --------------------------------------------------------


def test_event_rates_that_cannot_be_held_are_refused_before_any_allocation():
    sets = ["grid.outage_rate_per_year=3650", "grid.winter_rate_multiplier=100", "grid.grid_stress_multiplier=100"]
    text = refused(
        ["validate", BASELINE, *(a for s in sets for a in ("--set", s))],
        starts=f"{BASELINE}: grid.outage_rate_per_year: up to ",
        words="at most 10,000 expected a path",
    )
    assert "events a path over 730 days" in text
    refused(
        [
            "validate",
            BASELINE,
            "--set",
            "market.fees_spike_rate_per_year=365",
            "--set",
            "simulation.horizon_days=36000",
        ],
        starts=f"{BASELINE}: market.fees_spike_rate_per_year: ",
        words="events a path",
    )


def test_the_memory_estimate_counts_a_blocks_events():
    import kzsim
    from kzsim.engine.resources import BYTES_PER_EVENT, estimate_resources

    base = kzsim.load_scenario(BASELINE)
    busy = base.replace(**{"grid.outage_rate_per_year": 3000.0})
    events = busy.expected_events_per_path()["grid.outage_rate_per_year"]
    assert events > 9_000
    extra = estimate_resources(busy, 1024).memory_bytes - estimate_resources(base, 1024).memory_bytes
    assert extra == pytest.approx(
        1024 * BYTES_PER_EVENT * (events - base.expected_events_per_path()["grid.outage_rate_per_year"])
    )


# ---- 6. options that reached deep code unchecked -----------------------------------------


@pytest.mark.parametrize("address", ["not an address", "tcp://", "tcp://127.0.0.1:99999", "http://host:1", "a b:1"])
def test_scheduler_must_be_an_address(tmp_path, address):
    refused(
        ["run", BASELINE, "--paths", "10", "--scheduler", address, "--out", str(tmp_path / "o")],
        starts=f"--scheduler {address}: ",
        words="not a scheduler address",
    )


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_target_se_must_be_finite(tmp_path, value):
    refused(
        ["run", BASELINE, "--paths", "10", "--target-se", value, "--out", str(tmp_path / "o")],
        starts="--target-se",
        words="finite",
    )


def test_a_tiny_target_se_stops_at_max_paths(tmp_path):
    import kzsim

    sc = kzsim.load_scenario(BASELINE).replace(**{"simulation.horizon_days": 20})
    for measure in ("p_loss", "cvar_95", "mean"):
        results = kzsim.simulate_to_precision(sc, 1e-300, measure=measure, paths=64, max_paths=2048, threads=1)
        precision = results.summary["precision"]
        assert not precision["reached"] and precision["rounds"][-1]["paths"] == 2048


def test_sensitivity_of_a_scenario_with_nothing_uncertain_is_refused(tmp_path):
    import yaml

    import kzsim

    sc = kzsim.load_scenario(BASELINE)
    certain = sc.replace(**{k: float(v.mean()) for k, v in sc.uncertain_parameters().items() if not v.is_fixed})
    data = certain.to_dict()
    data.pop("dependence", None)
    path = tmp_path / "certain.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for method in ("tornado", "sobol"):
        refused(
            ["sensitivity", str(path), "--method", method, "--out", str(tmp_path / method)],
            starts=f"{path}: ",
            words="no uncertain parameter",
        )


@pytest.fixture
def four_gb(monkeypatch):
    """A machine with 4 GB available, as the memory checks see it."""
    import kzsim.engine.system as system

    monkeypatch.setattr(system, "available_memory_bytes", lambda: 4e9)


def test_too_many_workers_are_blamed_on_workers(tmp_path, four_gb):
    refused(
        ["run", BASELINE, "--paths", "100", "--workers", "64", "--out", str(tmp_path / "o")],
        starts="--workers 64: 64 local workers need about",
        words="(allowed: at most",
    )
    refused(
        ["run", BASELINE, "--paths", "1000000", "--threads", "1000", "--out", str(tmp_path / "o")],
        starts="--threads 1000: ",
        words="(allowed: at most",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["sweep", BASELINE, "--set", "electricity.tariff_kzt_per_kwh=20,30"],
        ["sensitivity", BASELINE],
        ["breakeven", BASELINE],
        ["compare", BASELINE, BASELINE],
    ],
    ids=["sweep", "sensitivity", "breakeven", "compare"],
)
def test_every_command_that_simulates_checks_its_memory_first(tmp_path, four_gb, command):
    out = [] if command[0] == "breakeven" else ["--out", str(tmp_path / "o")]
    refused(
        [*command, "--paths", "100000000", *out], starts=f"{BASELINE}: simulation.paths: 100,000,000 paths", words="GB"
    )
    assert not (tmp_path / "o").exists()


def test_a_chunk_too_large_is_blamed_on_chunk_paths(tmp_path, four_gb):
    refused(
        ["run", BASELINE, "--paths", "10000000", "--chunk-paths", "10000000", "--out", str(tmp_path / "o")],
        starts="--chunk-paths 10,000,000: ",
        words="the default, 1,024",
    )
