"""The command line end to end: outputs, the PDF, overwrite protection, schema."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from kzsim.cli import main
from kzsim.io.outputs import OUTPUT_FILES
from kzsim.report.pdf import PAGE_TITLES
from tests.conftest import ROOT, SCENARIOS, assert_words_in_place

SUMMARY_KEYS = {
    "scenario",
    "paths",
    "seed",
    "horizon_days",
    "p_loss",
    "p_loss_ci95",
    "var_95_usd",
    "cvar_95_usd",
    "var_99_usd",
    "cvar_99_usd",
    "profit_usd",
    "cost_per_btc_usd",
    "btc_mined",
    "uptime_fraction",
    "downtime_hours",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "baseline"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(SCENARIOS / "kz-2025-baseline.yaml"),
            "--paths",
            "300",
            "--seed",
            "7",
            "--out",
            str(out),
            "--set",
            "simulation.horizon_days=400",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_every_output(run_dir):
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(OUTPUT_FILES)
    assert not list(run_dir.parent.glob(".*")), "temporary files left behind"


def test_summary_has_the_documented_keys(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= s.keys()
    assert (s["paths"], s["seed"], s["horizon_days"]) == (300, 7, 400)
    assert set(s["profit_usd"]) >= {"mean", "std", "p01", "p05", "p50", "p95", "p99", "mean_se"}
    assert set(s["cost_per_btc_usd"]) == {"cash", "all_in"}
    assert set(s["cost_per_btc_usd"]["cash"]) >= {"mean", "p05", "p50", "p95"}
    assert set(s["downtime_hours"]) == {"grid", "payment", "quota", "hardware", "economic"}
    lo, hi = s["p_loss_ci95"]
    assert lo <= s["p_loss"] <= hi
    assert s["cvar_95_usd"] >= s["var_95_usd"] and s["cvar_99_usd"] >= s["var_99_usd"]


def test_tables(run_dir):
    paths = pd.read_parquet(run_dir / "paths.parquet")
    assert len(paths) == 300
    assert {"profit_usd", "btc_mined", "cash_cost_per_btc_usd", "param.electricity.tariff_kzt_per_kwh"} <= set(paths)
    ts = pd.read_parquet(run_dir / "timeseries.parquet")
    assert len(ts) == 400
    for series in ("cum_pnl_usd", "btc_price_usd", "up_fraction"):
        cols = [f"{series}_p{q:02d}" for q in (5, 25, 50, 75, 95)]
        assert (ts[cols].diff(axis=1).iloc[:, 1:] >= 0).all().all(), series  # percentiles in order
        for col in cols:  # each percentile inside its 95 % interval, which has some width
            assert (ts[f"{col}_ci95_low"] <= ts[col]).all() and (ts[col] <= ts[f"{col}_ci95_high"]).all(), col
        if series == "cum_pnl_usd":
            assert (ts[f"{series}_p50_ci95_high"] > ts[f"{series}_p50_ci95_low"]).all()


def test_pdf_opens_with_the_expected_pages(run_dir):
    reader = PdfReader(run_dir / "report.pdf")
    text = [page.extract_text() for page in reader.pages]
    assert len(reader.pages) >= len(PAGE_TITLES)
    assert "kzsim report: kz-2025-baseline" in text[0]
    for title in PAGE_TITLES[1:]:
        assert any(title in t for t in text), title
    assert "27,000" in text[0] and "plain words" in text[0]


def test_resolved_scenario_reproduces_the_run(run_dir, tmp_path):
    again = tmp_path / "again"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(run_dir / "scenario.resolved.yaml"),
            "--paths",
            "300",
            "--seed",
            "7",
            "--out",
            str(again),
            "--no-report",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    a = pd.read_parquet(run_dir / "paths.parquet")
    b = pd.read_parquet(again / "paths.parquet")
    pd.testing.assert_frame_equal(a, b)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (
        manifest["seed"] == 7 and manifest["bit_generator"] == "PCG64" and len(manifest["scenario_file_sha256"]) == 64
    )


def test_existing_results_are_never_overwritten_without_force(run_dir, tmp_path):
    out = tmp_path / "keep"
    shutil.copytree(run_dir, out)
    before = (out / "summary.json").read_bytes()
    args = [
        "run",
        str(SCENARIOS / "kz-2025-baseline.yaml"),
        "--paths",
        "20",
        "--out",
        str(out),
        "--quiet",
        "--no-report",
        "--set",
        "simulation.horizon_days=30",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "use --force" in result.output
    assert (out / "summary.json").read_bytes() == before
    result = CliRunner().invoke(main, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["paths"] == 20
    assert not (out / "report.pdf").exists()  # the folder is the new run's, whole
    assert not list(tmp_path.glob(".*"))


def test_default_output_folder_is_reports_slash_stem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(SCENARIOS / "small-operator.yaml"),
            "--paths",
            "10",
            "--quiet",
            "--no-report",
            "--set",
            "simulation.horizon_days=20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "small-operator" / "summary.json").exists()


def test_schema_is_json_schema_with_units(tmp_path):
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["title"] == "kzsim scenario"
    assert set(doc["required"]) >= {"name", "simulation", "farm", "market", "electricity", "grid", "regulation"}
    electricity = doc["$defs"]["Electricity"]["properties"]
    assert "[KZT/kWh]" in electricity["tariff_kzt_per_kwh"]["description"]
    assert doc["$defs"]["Electricity"]["additionalProperties"] is False


def test_installed_console_script():
    exe = shutil.which("kzsim")
    cmd = [exe] if exe else [sys.executable, "-m", "kzsim"]
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=True)
    assert "run" in out.stdout and "validate" in out.stdout and "schema" in out.stdout


def test_the_command_flushes_its_output_and_keeps_its_exit_code(tmp_path):
    """``kzsim`` ends with a fast exit (no interpreter teardown): what it printed to a pipe
    arrives whole, and its exit code is the command's."""
    cmd = [sys.executable, "-m", "kzsim"]
    scenarios = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    ok = subprocess.run([*cmd, "validate", *scenarios], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"{p}: ok" for p in scenarios]
    bad = subprocess.run([*cmd, "run", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == f"{tmp_path / 'missing.yaml'}: file not found (allowed: a YAML scenario file)"
    )
    usage = subprocess.run([*cmd, "run"], capture_output=True, text=True)  # click's usage error
    assert usage.returncode == 2 and "Missing argument 'SCENARIO'" in usage.stderr


def test_scenario_reference_in_docs_is_up_to_date():
    from kzsim.scenario.schema import reference_markdown
    from tests.conftest import ROOT

    assert (ROOT / "docs" / "scenario.md").read_text() == reference_markdown(), (
        "docs/scenario.md is stale: run `kzsim schema --markdown > docs/scenario.md`"
    )


@pytest.mark.parametrize(
    "sets",
    [
        ["simulation.horizon_days=1", "simulation.paths=1"],  # one path, one day
        ["simulation.horizon_days=30", "electricity.quota_fraction=0"],  # nothing mined: cost per BTC undefined
        ["simulation.horizon_days=60", "market.start_block_height=1049000"],  # crosses the 2028 halving
    ],
    ids=["one-path-one-day", "nothing-mined", "across-the-halving"],
)
def test_edge_runs_write_a_whole_report(tmp_path, sets):
    args = ["run", str(SCENARIOS / "small-operator.yaml"), "--paths", "20", "--out", str(tmp_path / "o"), "--quiet"]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(PdfReader(tmp_path / "o" / "report.pdf").pages) >= len(PAGE_TITLES)
    if "electricity.quota_fraction=0" in sets:
        assert summary["cost_per_btc_usd"]["cash"]["p50"] is None and summary["btc_mined"]["mean"] == 0
    if "market.start_block_height=1049000" in sets:
        ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet")
        first, last = ts["hashprice_usd_per_th_day_p50"].iloc[[0, -1]]
        assert last < 0.7 * first  # the subsidy halved on the way


def test_report_pages_keep_their_words_on_the_page_and_off_the_plots():
    """Every page's title, caption and reading lies inside the page, clear of the others
    and of the axes with their labels (long captions once ran off the foot of the page).
    Every PDF the tests write is checked the same way (tests/conftest.py); this test makes
    sure the run report is, whatever the other tests do."""
    import matplotlib.pyplot as plt

    from kzsim.analysis.summary import analyses_for_write
    from kzsim.api import simulate
    from kzsim.report import figures
    from kzsim.report import pdf as report
    from kzsim.scenario.loading import load_scenario

    sc = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 60})
    res = simulate(sc, paths=300, analyses=analyses_for_write(sc), threads=1)
    with plt.rc_context(figures.STYLE):
        pages = report._pages(res)
        try:
            for number, fig in enumerate(pages, 1):
                assert_words_in_place(fig, f"page {number}")
        finally:
            for fig in pages:
                plt.close(fig)


@pytest.mark.parametrize("width", [80, 120])
def test_the_progress_bar_is_one_line_with_paths_rate_and_time_left(width):
    """The bar a terminal shows: paths done of the total (with separators), path-days per
    second and the time left, on one line of the terminal's width, the bar taking the rest."""
    import io

    from rich.console import Console

    from kzsim.cli.common import progress_bar

    now = [0.0]
    screen = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None, get_time=lambda: now[0])
    bar = progress_bar(False, 1_000_000, 730, console=screen)
    with bar as update:
        update(1_024, 1_000_000)
        now[0] = 5.0
        update(148_480, 1_000_000)
        task = bar.bar.tasks[0]
        rendered = Console(file=io.StringIO(), width=width, color_system=None, record=True)
        rendered.print(bar.bar.make_tasks_table([task]))
    lines = [line for line in rendered.export_text().splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) <= width, lines
    line = lines[0]
    assert line.startswith("simulating ") and "148,480/1,000,000 paths" in line
    rate = re.search(r" (\d+\.\d) M path-days/s ", line)
    assert rate and rate.group(0).strip() == task.fields["rate"] and float(rate.group(1)) > 0
    assert line.rstrip().endswith(" left") and "━" in line
    assert progress_bar(True, 10, 730, console=screen).__enter__() is None  # --quiet: no bar


def test_the_progress_rate_and_time_left_are_the_recent_ones_not_held_down_by_the_start():
    """A first run compiles the kernels (~14 s) before its first chunk: after it, the bar
    shows the rate of the last 10 s and the time left at that rate, not an average from
    the start; chunks finishing together (threads) show no rate until the updates span 1 s."""
    import io

    from rich.console import Console

    from kzsim.cli.common import progress_bar

    now = [0.0]
    screen = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None, get_time=lambda: now[0])
    bar = progress_bar(False, 1_000_000, 730, console=screen)

    def shown() -> tuple[str, str]:
        fields = bar.bar.tasks[0].fields
        assert fields["left"].endswith(" left")
        return fields["rate"].strip(), fields["left"].removesuffix(" left")

    with bar as update:
        now[0] = 14.0  # compiling, then the first chunks, two threads' at once
        update(1_024, 1_000_000)
        now[0] = 14.01
        update(2_048, 1_000_000)
        assert shown() == ("", "-:--:--")  # 10 ms apart: no rate yet
        for i in range(1, 41):  # then 20,480 paths every 0.5 s: 29.9 M path-days/s
            now[0] = 14.01 + 0.5 * i
            update(2_048 + 20_480 * i, 1_000_000)
            if i == 2:  # 1 s since the first update, whose 1,024 paths count: its rate
                assert shown()[0] == f"{(2_048 + 40_960 - 1_024) * 730 / 1.01 / 1e6:.1f} M path-days/s"
        # the average from the start would be 17.6 M path-days/s, with 8 s left
        assert f"{20_480 * 730 / 0.5 / 1e6:.1f}" == "29.9"
        assert math.ceil((1_000_000 - 2_048 - 40 * 20_480) / (20_480 / 0.5)) == 5
        assert shown() == ("29.9 M path-days/s", "0:00:05")
        now[0] += 500.0  # a stall (the cluster's workers lost): the rate since the last update before it
        update(1_000_000 - 20_480, 1_000_000)
        paths_per_s = (1_000_000 - 20_480 - 821_248) / 500.0  # 316.5
        assert shown() == ("0.2 M path-days/s", "0:01:05")
        assert f"{paths_per_s * 730 / 1e6:.1f}" == "0.2" and math.ceil(20_480 / paths_per_s) == 65


def test_a_one_path_run_says_its_standard_errors_are_unknown(tmp_path):
    """One path says nothing about the spread: the standard errors are n/a (null in the
    JSON), not $0, and the report and the summary table still come out."""
    out = tmp_path / "one"
    args = ["run", str(SCENARIOS / "kz-2025-baseline.yaml"), "--paths", "1", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--set", "simulation.horizon_days=120"])
    assert result.exit_code == 0, result.output
    assert "(SE n/a)" in result.output and "SE $0" not in result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["paths"] == 1 and s["profit_usd"]["mean"] is not None
    assert s["profit_usd"]["mean_se"] is None and s["btc_mined"]["mean_se"] is None
    assert s["uptime_fraction"]["mean_se"] is None and s["npv_usd"]["mean_se"] is None
    text = " ".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "Monte Carlo standard error n/a" in " ".join(text.split())


@pytest.mark.parametrize(
    ("usd_amount", "digits", "shown"),
    [
        (-9.912e6, 3, "-$9.91 M"),
        (87_540, 3, "$87.5 k"),
        (512, 3, "$512"),
        (110_234, 2, "$110 k"),  # was $1.1e+02 k (a CVaR SE in the summary table)
        (999_960, 3, "$1 M"),  # was $1e+03 k
        (59_400, 2, "$59 k"),
        (0.0, 3, "$0"),
        (float("nan"), 3, "n/a"),
    ],
)
def test_money_is_written_without_exponents(usd_amount, digits, shown):
    from kzsim.report.figures import usd

    assert usd(usd_amount, digits) == shown


def test_the_summary_table_shows_the_99_tail_with_the_cvar_standard_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # rows unwrapped, whatever the terminal running the tests
    args = ["run", str(SCENARIOS / "kz-2025-baseline.yaml"), "--paths", "300", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--no-report", "--set", "simulation.horizon_days=60"])
    assert result.exit_code == 0, result.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    from kzsim.report.figures import usd

    row = f"{usd(s['var_99_usd'])} / {usd(s['cvar_99_usd'])}  (CVaR SE {usd(s['cvar_99_se_usd'], 2)})"
    assert "VaR 99 % / CVaR 99 %" in result.output and row in result.output


def test_the_progress_of_an_analysis_that_does_not_know_its_total():
    """kzsim breakeven searches until it finds its roots: paths done and the rate, no total
    and no time left; an analysis that knows its total gives it with its first update."""
    import io

    from rich.console import Console

    from kzsim.cli.common import progress_bar

    now = [0.0]
    screen = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None, get_time=lambda: now[0])
    bar = progress_bar(False, None, 730, console=screen)
    with bar as update:
        for i in range(1, 5):
            now[0] += 0.5
            update(20_000 * i, None)
        task = bar.bar.tasks[0]
        assert task.total is None and task.fields["done"] == "80,000 paths"
        assert task.fields["rate"] == "29.2 M path-days/s" and task.fields["left"] == ""
        now[0] += 0.5
        update(100_000, 500_000)  # a total, once the analysis says it
        assert bar.bar.tasks[0].total == 500_000 and bar.bar.tasks[0].fields["done"] == "100,000/500,000 paths"
        assert bar.bar.tasks[0].fields["left"] == "0:00:10 left"  # 400,000 paths at 80,000 in the last 2 s


def test_a_run_that_succeeds_prints_nothing_on_stderr(tmp_path):
    """--quiet: no progress, no table; and no note of a library (font lookups, warnings)."""
    cmd = [sys.executable, "-m", "kzsim", "run", str(SCENARIOS / "kz-2025-baseline.yaml"), "--paths", "300"]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "o"), "--quiet", "--set", "simulation.horizon_days=60"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr
    assert (tmp_path / "o" / "report.pdf").stat().st_size > 0


def test_the_report_says_what_made_it_and_the_values_the_run_used(tmp_path):
    """The first page's footer names kzsim's and numpy's versions and the command; the
    appendix gives the run's own path count (not the file's) and marks the --set keys."""
    import numpy as np

    import kzsim

    sc = kzsim.load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"electricity.tariff_kzt_per_kwh": 30})
    command = "kzsim run scenarios/kz-2025-baseline.yaml --paths 300 --set electricity.tariff_kzt_per_kwh=30"
    out = kzsim.simulate(sc, paths=300, threads=1).write(tmp_path / "o", command=command)
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(out / "report.pdf").pages]
    assert f"kzsim {kzsim.__version__}, numpy {np.__version__}: {command}" in pages[0]
    appendix = " ".join(p for p in pages if "Appendix: scenario parameters" in p)
    assert "simulation.paths 300 (the run's; the file says 20,000)" in appendix
    assert "electricity.tariff_kzt_per_kwh 30.0 (--set)" in appendix
    assert "electricity.winter_tariff_premium_share 0.1 (--set)" not in appendix
    assert kzsim.load_scenario(out / "scenario.resolved.yaml").to_dict() == sc.to_dict()


@pytest.mark.parametrize("was_collecting", [True, False])
def test_the_report_leaves_the_garbage_collector_as_it_found_it(exact, tmp_path, was_collecting):
    """The report pauses the collector while it imports matplotlib and draws
    (kzsim.report.collector_paused), and leaves it as it was: running or stopped."""
    import gc

    from kzsim.api import simulate
    from kzsim.report import collector_paused

    results = simulate(exact, paths=50, seed=1)

    (gc.enable if was_collecting else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() == was_collecting
        results.report(tmp_path / "report.pdf")
        assert gc.isenabled() == was_collecting
        assert (tmp_path / "report.pdf").stat().st_size > 0
    finally:
        gc.enable()
