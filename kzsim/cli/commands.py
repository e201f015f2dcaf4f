"""The ``kzsim`` command: thin commands that build a request and call the API.

Bad input (a scenario, an override, an occupied output folder) is reported as one line
per problem, ``FILE: section.key: problem (allowed)``, with exit status 2.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
import sys
from pathlib import Path

import click

import kzsim.cli.common as common
from kzsim.cli.common import BadInput
from kzsim.engine.concurrency import Interrupted, received
from kzsim.io.folders import NonFiniteResults, OutputExistsError, default_out_dir
from kzsim.scenario.errors import ScenarioError


def entry() -> None:
    """The ``kzsim`` command: :func:`main`, then an exit that skips the interpreter's
    teardown (~0.5 s of finalising numba's, scipy's and matplotlib's modules at every
    command). By then every file is written, closed and in place, clusters and threads are
    stopped; the output streams are flushed here."""
    try:
        main()
        code = 0  # pragma: no cover - click's standalone mode always raises SystemExit
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:  # an interruption before a command's own handling, or after it
        # (or a library's error made of one: kzsim.engine.concurrency.received), else a fault
        stop = exc if isinstance(exc, (Interrupted, KeyboardInterrupt)) else received()
        if stop is None:
            raise
        code = stop.exit_code if isinstance(stop, Interrupted) else 130
        click.echo(f"kzsim: stopped by {'SIGTERM' if code == 128 + signal.SIGTERM else 'Ctrl-C'}", err=True)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (kzsim ... | head)
            out.flush()
    os._exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kzsim")
def main() -> None:
    """Monte Carlo risk simulator for Bitcoin mining in Kazakhstan."""
    from kzsim.engine.allocator import keep_freed_memory

    keep_freed_memory()  # this command's own process, before any thread starts (see kzsim.engine.allocator)


@main.command()
def models() -> None:
    """The ASIC catalogue: models a fleet row can name without its hashrate and efficiency."""
    from kzsim.scenario.catalogue import CATALOGUE

    click.echo(f"{'model':20s} {'TH/s':>7s} {'J/TH':>6s} {'kW':>6s}  source")
    for name, spec in CATALOGUE.items():
        kw = spec.hashrate_th * spec.efficiency_j_per_th / 1000
        click.echo(f"{name:20s} {spec.hashrate_th:7g} {spec.efficiency_j_per_th:6g} {kw:6.2f}  {spec.source}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=True))
@click.option("--paths", type=click.IntRange(min=1), help="Number of paths (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Master seed (default: the scenario's).")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/<scenario stem>/).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a scenario value (repeatable); VALUE is YAML, e.g. '{dist: uniform, low: 1, high: 2}'.",
)
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option(
    "--chunk-paths",
    type=click.IntRange(min=1),
    default=None,
    help="Paths simulated at once (memory knob; results do not depend on it).",
)
@click.option("--no-report", is_flag=True, help="Skip the PDF (tables and summary only).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary table.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run chunks on this many local processes (a local Dask cluster).",
)
@click.option("--scheduler", metavar="ADDRESS", help="Run chunks on an existing Dask cluster, e.g. tcp://host:8786.")
@common.THREADS_OPTION
@click.option(
    "--target-se",
    type=click.FloatRange(0.0, min_open=True),
    help="Add paths until the standard error of P(loss) is at most this (e.g. 0.005), "
    "or that of mean profit, a VaR or a CVaR with --target-of (in USD).",
)
@click.option(
    "--target-of",
    type=click.Choice(["p_loss", "mean", "var_95", "var_99", "cvar_95", "cvar_99"]),
    default="p_loss",
    show_default=True,
    help="The figure --target-se is for.",
)
@click.option(
    "--max-paths", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="The cap for --target-se."
)
def run(
    scenario,
    paths,
    seed,
    out_dir,
    sets,
    force,
    chunk_paths,
    no_report,
    quiet,
    workers,
    scheduler,
    threads,
    target_se,
    target_of,
    max_paths,
):
    """Simulate SCENARIO and write summary.json, paths.parquet, timeseries and report.pdf."""
    if target_se is not None and not math.isfinite(target_se):
        raise BadInput(f"--target-se: {target_se} (allowed: a finite number > 0, e.g. 0.005)")
    if target_se and target_of == "p_loss" and target_se >= 0.5:
        raise BadInput(f"--target-se: {target_se:g} for P(loss) (allowed: between 0 and 0.5, e.g. 0.005)")
    if target_of != "p_loss" and not target_se:
        raise BadInput(f"--target-of {target_of}: needs --target-se (allowed: a standard error in USD, e.g. 100000)")
    threads = common.threads_for(threads, workers, scheduler)
    common.compile_ahead([scenario], sets, workers, scheduler)
    sc = common.scenario_arg(scenario, sets)
    if workers == 1 and not scheduler:
        from kzsim.model import compiling

        compiling.start_for(sc)  # the mode the scenario has, if the file did not name it
    from kzsim.analysis.summary import analyses_for_write
    from kzsim.api import simulate

    out = common.out_folder(out_dir, default_out_dir(scenario), force)
    n = paths or sc.simulation.paths
    from kzsim.engine.resources import default_chunk_paths

    chunk = chunk_paths or default_chunk_paths()
    common.check_resources(
        scenario,
        sc,
        max(n, max_paths) if target_se else n,
        chunk,
        quiet,
        workers=1 if scheduler else workers,  # a remote cluster's workers are not on this machine
        threads=threads,
        up_to=bool(target_se),
    )
    command = "kzsim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with common.interruptible(out):
        try:
            if target_se:
                from kzsim.api import simulate_to_precision

                with (
                    common.cluster(workers, scheduler) as client,
                    common.progress_bar(quiet, n, sc.simulation.horizon_days) as progress,  # over the rounds
                ):
                    results = simulate_to_precision(
                        sc,
                        target_se,
                        measure=target_of,
                        paths=n,
                        max_paths=max_paths,
                        seed=seed,
                        chunk_paths=chunk,
                        client=client,
                        threads=threads,
                        progress=progress,
                    )
                rounds = results.summary["precision"]["rounds"]
                if not quiet:
                    click.echo("kzsim: " + " -> ".join(_round_text(r, target_of) for r in rounds), err=True)
            else:
                with (
                    common.cluster(workers, scheduler) as client,
                    common.progress_bar(quiet, n, sc.simulation.horizon_days) as progress,
                ):
                    if client is not None and not no_report:
                        # matplotlib loads while the workers run (~0.4 s). Not beside a run in
                        # this process: the run's threads take both cores (no faster at 20,000
                        # paths, measured), and its allocations among the chunks' fragment the
                        # heap (one such run of a million paths peaked ~90 MB higher)
                        common.import_in_background("kzsim.report.pdf")
                    results = simulate(
                        sc,
                        paths=n,
                        seed=seed,
                        chunk_paths=chunk,
                        progress=progress,
                        client=client,
                        threads=threads,
                        analyses=analyses_for_write(sc, report=not no_report),
                    )
            results.write(out, force=force, scenario_file=scenario, report=not no_report, command=command)
        except OutputExistsError as exc:
            raise BadInput(str(exc)) from None
        except NonFiniteResults as exc:
            raise BadInput(f"{scenario}: {exc}") from None
    if not quiet:
        _print_summary(results.summary, out)


def _round_text(r: dict, measure: str = "p_loss") -> str:
    """A --target-se round: "20,000 paths (SE 0.0031)", "81,920 paths (61,440 new, SE 0.0015)";
    of a CVaR, "20,000 paths (SE $412,345)"."""
    new = "" if r["simulated_paths"] == r["paths"] else f"{r['simulated_paths']:,} new, "
    if not math.isfinite(r["se"]):  # too few paths in the tail to know it
        se = "n/a"
    else:
        se = f"{r['se']:.4f}" if measure == "p_loss" else f"${r['se']:,.0f}"
    return f"{r['paths']:,} paths ({new}SE {se})"


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--paths", type=click.IntRange(min=1), help="Paths per scenario (default: the first scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="One seed for all (default: the first's).")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/compare-A-vs-B...).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--no-report", is_flag=True, help="Skip the PDF.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
@click.option(
    "--workers", type=click.IntRange(1, common.MAX_WORKERS), default=1, show_default=True, help="Local processes."
)
@click.option("--scheduler", metavar="ADDRESS", help="An existing Dask cluster, e.g. tcp://host:8786.")
@common.THREADS_OPTION
def compare(scenarios, paths, seed, out_dir, force, no_report, quiet, workers, scheduler, threads):
    """Simulate SCENARIOS on common random numbers and compare each with the first.

    Writes comparison.json, headline.csv, profits.parquet (every path's profit under each
    scenario and the differences) and report.pdf.
    """
    from kzsim.api import compare as compare_scenarios
    from kzsim.engine.resources import default_chunk_paths
    from kzsim.results import write_comparison

    threads = common.threads_for(threads, workers, scheduler)
    if len(scenarios) < 2:
        raise BadInput("kzsim compare: give at least two scenario files (allowed: A.yaml B.yaml [C.yaml ...])")
    common.compile_ahead(scenarios, (), workers, scheduler)
    problems, loaded = [], []
    for f in scenarios:
        try:
            loaded.append(common.scenario_arg(f))
        except BadInput as exc:
            problems.append(exc.message)
    if problems:
        raise BadInput("\n".join(problems))
    out = common.out_folder(
        out_dir, Path("reports") / ("compare-" + "-vs-".join(Path(f).stem for f in scenarios)), force
    )
    n = paths or loaded[0].simulation.paths
    s = loaded[0].simulation.seed if seed is None else seed
    for f, sc in zip(scenarios, loaded, strict=True):
        common.check_resources(
            f, sc, n, default_chunk_paths(), quiet=True, workers=1 if scheduler else workers, threads=threads
        )
    with common.interruptible(out), common.cluster(workers, scheduler) as client:
        days = sum(sc.simulation.horizon_days for sc in loaded) / len(loaded)  # for the rate: their mean
        with common.progress_bar(quiet, n * len(loaded), days) as progress:  # one bar over the scenarios' runs
            comparison = compare_scenarios(loaded, paths=n, seed=s, progress=progress, client=client, threads=threads)
        try:
            write_comparison(comparison, out, force=force, report=not no_report)
        except OutputExistsError as exc:
            raise BadInput(str(exc)) from None
    if not quiet:
        from kzsim.report.pdf import compare_reading, compare_table

        click.echo(compare_table(comparison))
        click.echo(compare_reading(comparison))
        click.echo(f"results in {out}/")


@main.command()
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", type=click.Path(), help="Where to write the new run (default: RESULTS_DIR-rerun).")
@click.option("--force", is_flag=True, help="Replace the results already in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def rerun(results_dir, out_dir, force, quiet):
    """Run again what made RESULTS_DIR and check that every output bit matches.

    Uses the folder's scenario.resolved.yaml and manifest.json (seed, paths); exits 0 when
    paths.parquet, timeseries.parquet and summary.json are identical, 1 when they differ.
    """

    from kzsim.api import simulate
    from kzsim.engine.resources import default_chunk_paths
    from kzsim.io.reproduce import ResultsFolderError, compare_runs, read_results_folder, version_differences
    from kzsim.scenario.reading import read_yaml
    from kzsim.scenario.schema import scenario_from_dict

    src = Path(results_dir)
    scenario_file = src / "scenario.resolved.yaml"
    try:
        manifest = read_results_folder(src)
        sc = scenario_from_dict(read_yaml(scenario_file), source=str(scenario_file))
    except (ResultsFolderError, ScenarioError) as exc:
        raise BadInput(str(exc)) from None
    paths, seed = manifest["paths"], manifest["seed"]
    target = Path(out_dir) if out_dir else src.with_name(src.name + "-rerun")
    if os.path.realpath(target) == os.path.realpath(src) or Path(os.path.realpath(target)).is_relative_to(
        os.path.realpath(src)
    ):
        raise BadInput(f"--out {target}: is the folder being re-run (allowed: another folder, e.g. {src}-rerun)")
    out = common.out_folder(out_dir, src.with_name(src.name + "-rerun"), force)
    common.check_resources(str(src / "manifest.json"), sc, paths, default_chunk_paths(), quiet)
    for line in version_differences(manifest):
        click.echo(f"kzsim: {line}", err=True)
    with common.interruptible(out):
        with common.progress_bar(quiet, paths, sc.simulation.horizon_days) as progress:
            results = simulate(sc, paths=paths, seed=seed, progress=progress)
        results.write(
            out,
            force=force,
            scenario_file=scenario_file,
            report=(src / "report.pdf").exists(),
            command="kzsim " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        )
    try:
        differences = compare_runs(src, out)
    except (OSError, ValueError, KeyError) as exc:  # a source file damaged inside, past its footer
        raise BadInput(
            f"{src}: cannot be compared with the new run in {out}: {str(exc).splitlines()[0][:200]} "
            "(allowed: a folder written by kzsim run, undamaged)"
        ) from None
    if differences:
        click.echo(f"{out}: differs from {src}:", err=True)
        for line in differences:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"{out}: identical to {src} (every per-path value, per-day series and summary figure)")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
def validate(files, sets):
    """Check scenario FILES; print one line per problem, exit 2 if any."""
    problems = []
    for f in files:
        try:
            common.scenario_arg(f, sets)
            click.echo(f"{f}: ok")
        except BadInput as exc:
            problems.append(exc.message)
    if problems:
        raise BadInput("\n".join(problems))


@main.command()
@click.option("--markdown", is_flag=True, help="Print the scenario reference as Markdown tables instead.")
def schema(markdown):
    """Print the JSON Schema of the scenario format (for editor autocompletion)."""
    from kzsim.scenario.schema import Scenario, reference_markdown

    if markdown:
        click.echo(reference_markdown(), nl=False)
        return
    doc = Scenario.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "kzsim scenario"
    click.echo(json.dumps(doc, indent=2))


def _print_summary(s: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from kzsim.report.figures import pct, usd

    t = Table(title=f"{s['scenario']}: {s['paths']:,} paths, {s['horizon_days']} days", show_header=False)
    lo, hi = s["p_loss_ci95"]
    t.add_row("P(loss after tax)", f"{pct(s['p_loss'])}  (95 % CI {pct(lo)} - {pct(hi)})")
    t.add_row("profit after tax, mean", f"{usd(s['profit_usd']['mean'])}  (SE {usd(s['profit_usd']['mean_se'], 2)})")
    for level in (95, 99):  # the tail, with the CVaR's standard error
        t.add_row(
            f"VaR {level} % / CVaR {level} %",
            f"{usd(s[f'var_{level}_usd'])} / {usd(s[f'cvar_{level}_usd'])}  "
            f"(CVaR SE {usd(s[f'cvar_{level}_se_usd'], 2)})",
        )
    t.add_row(
        "cash / all-in cost per BTC (median)",
        f"{usd(s['cost_per_btc_usd']['cash']['p50'])} / {usd(s['cost_per_btc_usd']['all_in']['p50'])}",
    )
    t.add_row("up fraction, mean", pct(s["uptime_fraction"]["mean"]))
    if s.get("blackout_48h"):
        b = s["blackout_48h"]["cost_usd"]
        t.add_row("a 48 h blackout costs (mean, 5-95 %)", f"{usd(b['mean'])}  ({usd(b['p05'])} to {usd(b['p95'])})")
    if s.get("risk_drivers"):
        t.add_row("largest risk drivers", ", ".join(d["parameter"] for d in s["risk_drivers"]))
    console = Console()
    console.print(t)
    console.print(f"results in {out}/")
