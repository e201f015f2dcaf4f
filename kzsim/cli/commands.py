"""The ``kzsim`` command: thin commands that build a request and call the API.

Bad input (a scenario, an override, an occupied output folder) is reported as one line
per problem, ``FILE: section.key: problem (allowed)``, with exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

import click

from kzsim.analysis.choices import BREAK_EVEN_PARAMETERS
from kzsim.engine.concurrency import interrupt
from kzsim.io.folders import OutputExistsError, check_out_dir, default_out_dir
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.loading import load_scenario
from kzsim.scenario.overrides import parse_override


class BadInput(click.ClickException):
    """A user error: its lines are printed as they are, and kzsim exits with 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def _out_folder(out_dir: str | None, default: Path, force: bool) -> Path:
    """The output folder: the user's, or the default; refused (exit 2) when it holds results
    and --force was not given."""
    out = Path(out_dir) if out_dir else default
    try:
        check_out_dir(out, force)
    except OutputExistsError as exc:
        raise BadInput(str(exc)) from None
    return out


def _scenario(path: str, sets: tuple[str, ...] = ()):
    try:
        overrides = dict(parse_override(s) for s in sets)
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None


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
    if code is None:
        code = 0
    elif not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (kzsim ... | head)
            out.flush()
    os._exit(code)


_WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run the chunks on this many local processes (a local Dask cluster); same results.",
)
_SCHEDULER_OPTION = click.option(
    "--scheduler", metavar="ADDRESS", help="Run the chunks on an existing Dask cluster, e.g. tcp://host:8786."
)
_THREADS_OPTION = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads of this process that run chunks, each with a chunk's memory (default: one a CPU).",
)


def _threads(threads: int | None, workers: int, scheduler: str | None) -> int:
    """The threads a run in this process uses; --threads is refused beside a cluster."""
    from kzsim.engine.system import usable_cpus

    if threads is not None and (workers > 1 or scheduler):
        raise BadInput(
            f"--threads {threads}: with --workers or --scheduler the cluster's workers run the chunks "
            "(allowed: --threads without them)"
        )
    return usable_cpus() if threads is None else threads


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kzsim")
def main() -> None:
    """Monte Carlo risk simulator for Bitcoin mining in Kazakhstan."""
    from kzsim.cli.allocator import keep_freed_memory

    keep_freed_memory()  # this command's own process, before any thread starts (see kzsim.cli.allocator)


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
@_THREADS_OPTION
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
    from kzsim.analysis.summary import analyses_for_write
    from kzsim.api import simulate

    if target_se and target_of == "p_loss" and target_se >= 0.5:
        raise BadInput(f"--target-se: {target_se:g} for P(loss) (allowed: between 0 and 0.5, e.g. 0.005)")
    if target_of != "p_loss" and not target_se:
        raise BadInput(f"--target-of {target_of}: needs --target-se (allowed: a standard error in USD, e.g. 100000)")
    threads = _threads(threads, workers, scheduler)
    sc = _scenario(scenario, sets)
    out = _out_folder(out_dir, default_out_dir(scenario), force)
    n = paths or sc.simulation.paths
    from kzsim.engine.run import default_chunk_paths

    chunk = chunk_paths or default_chunk_paths()
    _check_resources(
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
    with _interruptible(out):
        try:
            if target_se:
                from kzsim.api import simulate_to_precision

                with (
                    _cluster(workers, scheduler) as client,
                    _progress(quiet, n, sc.simulation.horizon_days) as progress,  # over the rounds
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
                    _cluster(workers, scheduler) as client,
                    _progress(quiet, n, sc.simulation.horizon_days) as progress,
                ):
                    if client is not None and not no_report:
                        # matplotlib loads while the workers run (~0.5 s). Not beside a run in
                        # this process: its allocations among the chunks' fragment the heap
                        # (one such run peaked ~90 MB higher)
                        _import_in_background("kzsim.report.pdf")
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


def _import_in_background(module: str) -> None:
    """Import ``module`` on a daemon thread; a failure is left to the import that needs it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


@contextlib.contextmanager
def _cluster(workers: int, scheduler: str | None):
    """A Dask client (or None), with a connection failure or workers that run other code
    reported as bad input (exit 2), and workers on other CPUs as a note."""
    import warnings

    from kzsim.engine.cluster import WorkerMismatch, check_workers, dask_client

    with contextlib.ExitStack() as stack:
        try:
            # the command's local workers keep freed memory for reuse, as this process does
            client = stack.enter_context(dask_client(workers, scheduler, worker_preload=("kzsim.cli.allocator",)))
        except (OSError, TimeoutError) as exc:
            raise BadInput(
                f"--scheduler {scheduler}: cannot connect ({exc}) "
                "(allowed: the address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786)"
            ) from None
        if scheduler:  # kzsim's own local workers are forked from this process's code
            with warnings.catch_warnings(record=True) as notes:
                warnings.simplefilter("always")
                try:
                    check_workers(client)
                except WorkerMismatch as exc:
                    raise BadInput(f"--scheduler {scheduler}: {exc}") from None
            for note in notes:
                click.echo(f"kzsim: --scheduler {scheduler}: {note.message}", err=True)
        yield client


class Interrupted(BaseException):
    """Raised by the SIGINT/SIGTERM handlers so that cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum


class _interruptible:
    """Ctrl-C (SIGINT) and SIGTERM stop the run cleanly: temporary files are removed,
    the previous results stay as they were, kzsim exits with 130 / 143; an error of the
    system (OSError: a full disk, a lost cluster) ends in one line and exit 1 (``out``
    None: a command that writes no folder)."""

    def __init__(self, out: Path | None):
        self.out = out
        self.saved: dict = {}

    def __enter__(self):
        def handler(signum, frame):
            interrupt(Interrupted(signum))  # raised now, or when a critical step is done

        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, kind, exc, tb):
        for sig, previous in self.saved.items():
            signal.signal(sig, previous)
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            code = exc.exit_code if isinstance(exc, Interrupted) else 130
            name = "SIGTERM" if code == 128 + signal.SIGTERM else "Ctrl-C"
            if self.out is None:
                click.echo(f"kzsim: stopped by {name}", err=True)
            elif getattr(exc, "results_in_place", None) is not None:  # it came as the folder was put in place
                click.echo(f"kzsim: stopped by {name} once {self.out} held this run's complete results", err=True)
            else:
                click.echo(f"kzsim: stopped by {name}; {self.out} was left as it was before this run", err=True)
            sys.exit(code)
        if isinstance(exc, OSError):  # a full disk, a lost cluster...
            what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else (exc.strerror or str(exc))
            kept = "" if self.out is None else f"; {self.out} was left as it was before this run"
            click.echo(f"kzsim: {type(exc).__name__}: {what}{kept}", err=True)
            sys.exit(1)
        return False


# a run expected to take longer or hold more than this says so before it starts (a million
# paths of the baseline: ~29 s on two cores); the default 20,000 paths do not
ANNOUNCE_SECONDS = 10.0
ANNOUNCE_BYTES = 1e9


def _check_resources(
    path: str, sc, paths: int, chunk: int, quiet: bool, workers: int = 1, threads: int = 1, up_to: bool = False
) -> None:
    """Refuse a run that would not fit in memory; announce a long or large one (with
    ``workers`` local worker processes or ``threads`` threads: their memory counts, and
    they share the time). ``up_to``: ``paths`` is the most a --target-se run may reach
    (its rounds simulate each path once, so its time is about that of one run of them)."""
    from kzsim.engine.run import estimate_resources, threads_used
    from kzsim.engine.system import available_memory_bytes, usable_cpus

    est = estimate_resources(sc, paths, chunk, workers=workers, cpus=usable_cpus(), threads=threads)
    available = available_memory_bytes()
    if available is not None and est.memory_bytes > 0.9 * available:
        per_path = est.table_bytes / paths
        fits = int(max(0.0, 0.9 * available - (est.memory_bytes - est.table_bytes)) / per_path)
        raise BadInput(
            f"{path}: simulation.paths: {paths:,} paths x {sc.simulation.horizon_days} days need about "
            f"{est.memory_bytes / 1e9:.1f} GB of memory and {available / 1e9:.1f} GB are available "
            f"(allowed: at most about {fits:,} paths here, or a shorter horizon)"
        )
    if not quiet and (est.seconds > ANNOUNCE_SECONDS or est.memory_bytes > ANNOUNCE_BYTES):
        if workers > 1:
            where = f" on {workers} local workers"
        else:
            used = threads_used(paths, chunk, threads)
            where = f" on {used} threads" if used > 1 else ""
        about = "at most about" if up_to else "about"
        click.echo(
            f"kzsim: {'up to ' if up_to else ''}{paths:,} paths x {sc.simulation.horizon_days} days: {about} "
            f"{est.seconds:,.0f} s{where} and {est.memory_bytes / 1e9:.1f} GB of memory",
            err=True,
        )


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--paths", type=click.IntRange(min=1), help="Paths per scenario (default: the first scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="One seed for all (default: the first's).")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/compare-A-vs-B...).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--no-report", is_flag=True, help="Skip the PDF.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Local processes.")
@click.option("--scheduler", metavar="ADDRESS", help="An existing Dask cluster, e.g. tcp://host:8786.")
@_THREADS_OPTION
def compare(scenarios, paths, seed, out_dir, force, no_report, quiet, workers, scheduler, threads):
    """Simulate SCENARIOS on common random numbers and compare each with the first.

    Writes comparison.json, headline.csv, profits.parquet (every path's profit under each
    scenario and the differences) and report.pdf.
    """
    from kzsim.api import compare as compare_scenarios
    from kzsim.engine.run import default_chunk_paths
    from kzsim.results import write_comparison

    threads = _threads(threads, workers, scheduler)
    if len(scenarios) < 2:
        raise BadInput("kzsim compare: give at least two scenario files (allowed: A.yaml B.yaml [C.yaml ...])")
    problems, loaded = [], []
    for f in scenarios:
        try:
            loaded.append(_scenario(f))
        except BadInput as exc:
            problems.append(exc.message)
    if problems:
        raise BadInput("\n".join(problems))
    out = _out_folder(out_dir, Path("reports") / ("compare-" + "-vs-".join(Path(f).stem for f in scenarios)), force)
    n = paths or loaded[0].simulation.paths
    s = loaded[0].simulation.seed if seed is None else seed
    for f, sc in zip(scenarios, loaded, strict=True):
        _check_resources(
            f, sc, n, default_chunk_paths(), quiet=True, workers=1 if scheduler else workers, threads=threads
        )
    with _interruptible(out), _cluster(workers, scheduler) as client:
        days = sum(sc.simulation.horizon_days for sc in loaded) / len(loaded)  # for the rate: their mean
        with _progress(quiet, n * len(loaded), days) as progress:  # one bar over the scenarios' runs
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
@click.argument("scenario", type=click.Path(dir_okay=True))
@click.option(
    "--method",
    type=click.Choice(["tornado", "sobol"]),
    default="tornado",
    show_default=True,
    help="tornado: one input at a time at its low/high percentile; sobol: Sobol indices (SALib).",
)
@click.option("--paths", type=click.IntRange(min=1), help="Paths per run (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed (default: the scenario's).")
@click.option(
    "--low",
    type=click.FloatRange(0.0, 0.5, min_open=True),
    default=0.1,
    show_default=True,
    help="Low percentile of each input.",
)
@click.option(
    "--high",
    type=click.FloatRange(0.5, 1.0, max_open=True),
    default=0.9,
    show_default=True,
    help="High percentile of each input.",
)
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/<stem>-tornado/).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_WORKERS_OPTION
@_SCHEDULER_OPTION
@_THREADS_OPTION
def sensitivity(scenario, method, paths, seed, low, high, sets, out_dir, force, quiet, workers, scheduler, threads):
    """What drives the result, on common random numbers.

    tornado: each uncertain input at its low and high percentile; writes tornado.csv (one
    row per input: values, mean profit and P(loss) at both ends, and their changes) and
    report.pdf. sobol: first-order and total Sobol indices of profit after tax with their
    95 % intervals (Saltelli design, --paths base samples); writes sobol.csv and report.pdf.
    """
    from kzsim.analysis.sensitivity import sobol, sobol_reading, tornado
    from kzsim.io.folders import write_folder

    threads = _threads(threads, workers, scheduler)
    sc = _scenario(scenario, sets)
    out = _out_folder(out_dir, Path("reports") / f"{Path(scenario).stem}-{method}", force)
    if method == "sobol" and all(dist.is_fixed for dist in sc.uncertain_parameters().values()):
        raise BadInput(f"{scenario}: no uncertain parameter (allowed: a scenario with some inputs as distributions)")
    with _interruptible(out), _cluster(workers, scheduler) as client:
        on = {"threads": threads, "client": client}
        with _progress(quiet, None, sc.simulation.horizon_days) as progress:  # the analysis gives the total
            if method == "sobol":
                table = sobol(sc, paths=paths, seed=seed, progress=progress, **on)
            else:
                table = tornado(sc, paths=paths, seed=seed, low=low, high=high, progress=progress, **on)

        def fill(tmp: Path) -> None:
            import matplotlib.pyplot as plt
            from matplotlib.backends.backend_pdf import PdfPages

            from kzsim.report import figures

            table.to_csv(tmp / f"{method}.csv", index=False)
            with plt.rc_context(figures.STYLE), PdfPages(tmp / "report.pdf") as pdf:
                if method == "sobol":
                    fig = figures.sobol_chart(table, sc.name, sobol_reading(table))
                else:
                    fig = figures.tornado_chart(table, sc.name)
                pdf.savefig(fig)
                plt.close(fig)

        write_folder(out, fill, force=force)
    from kzsim.report.figures import usd

    if method == "sobol":
        click.echo(sobol_reading(table))
        click.echo(f"results in {out}/")
        return
    click.echo(f"{sc.name}: mean profit {usd(table.attrs['base_mean_profit_usd'])}; inputs by swing of mean profit:")
    for row in table.itertuples():
        click.echo(
            f"  {row.parameter:45s} {usd(row.delta_mean_profit_low_usd):>10} .. "
            f"{usd(row.delta_mean_profit_high_usd):>10}"
        )
    click.echo(f"results in {out}/")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=True))
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    type=click.Choice(list(BREAK_EVEN_PARAMETERS)),
    help="What to solve for (default: both).",
)
@click.option(
    "--p-loss",
    "p_loss_level",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="P(loss) level of the second break-even.",
)
@click.option("--paths", type=click.IntRange(min=1), help="Paths per run (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_WORKERS_OPTION
@_SCHEDULER_OPTION
@_THREADS_OPTION
def breakeven(scenario, parameters, p_loss_level, paths, seed, sets, quiet, workers, scheduler, threads):
    """Break-even BTC start price and tariff: where mean profit after tax is zero, and where
    P(loss) equals --p-loss; found by root-finding on common random numbers. Prints JSON."""
    from kzsim.analysis.sensitivity import break_even
    from kzsim.io.folders import json_safe

    threads = _threads(threads, workers, scheduler)
    sc = _scenario(scenario, sets)
    with (
        _interruptible(None),
        _cluster(workers, scheduler) as client,
        _progress(quiet, None, sc.simulation.horizon_days) as progress,  # runs until the roots are found
    ):
        on = {"threads": threads, "client": client, "progress": progress}
        results = [
            break_even(sc, name, p_loss_level=p_loss_level, paths=paths, seed=seed, **on)
            for name in (parameters or tuple(BREAK_EVEN_PARAMETERS))
        ]
    click.echo(json.dumps(json_safe(results), indent=2, default=float))


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=True))
@click.option(
    "--set",
    "sets",
    multiple=True,
    required=True,
    metavar="SECTION.KEY=START:STOP:STEP",
    help="A parameter to sweep (START:STOP:STEP, stop included, or V1,V2,...); one or two of them. "
    "A plain SECTION.KEY=VALUE is an override.",
)
@click.option("--paths", type=click.IntRange(min=1), help="Paths per grid point (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed (default: the scenario's).")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/<stem>-sweep/).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_WORKERS_OPTION
@_SCHEDULER_OPTION
@_THREADS_OPTION
def sweep(scenario, sets, paths, seed, out_dir, force, quiet, workers, scheduler, threads):
    """P(loss), mean profit and cost per BTC on a grid of one or two parameters.

    Writes sweep.csv, sweep.parquet and report.pdf (lines for one parameter, heat maps
    for two). Example: kzsim sweep S.yaml --set electricity.tariff_kzt_per_kwh=20:40:5
    """
    from kzsim.analysis.sensitivity import parse_grid
    from kzsim.analysis.sensitivity import sweep as run_sweep
    from kzsim.io.folders import write_folder
    from kzsim.scenario.overrides import apply_overrides
    from kzsim.scenario.schema import scenario_from_dict

    threads = _threads(threads, workers, scheduler)
    grid, plain = {}, []
    for text in sets:
        value = text.split("=", 1)[1] if "=" in text else ""
        if ":" in value or ("," in value and not value.lstrip().startswith(("{", "["))):
            try:
                key, values = parse_grid(text)
            except ValueError as exc:
                raise BadInput(f"--set {exc}") from None
            grid[key] = values
        else:
            plain.append(text)
    if not 1 <= len(grid) <= 2:
        raise BadInput("kzsim sweep: give one or two --set SECTION.KEY=START:STOP:STEP (allowed: 1 or 2 grids)")
    sc = _scenario(scenario, tuple(plain))
    base = sc.to_dict()
    for key, values in grid.items():  # every grid value is checked like the file, before any run
        for v in values:
            try:
                scenario_from_dict(apply_overrides(base, {key: v}, source=scenario), source=scenario)
            except ScenarioError as exc:
                raise BadInput(str(exc)) from None
    out = _out_folder(out_dir, Path("reports") / f"{Path(scenario).stem}-sweep", force)
    with _interruptible(out), _cluster(workers, scheduler) as client:
        with _progress(quiet, None, sc.simulation.horizon_days) as progress:  # the sweep gives the total
            table = run_sweep(sc, grid, paths=paths, seed=seed, threads=threads, client=client, progress=progress)

        def fill(tmp: Path) -> None:
            import matplotlib.pyplot as plt
            from matplotlib.backends.backend_pdf import PdfPages

            from kzsim.report import figures

            table.to_csv(tmp / "sweep.csv", index=False)
            table.to_parquet(tmp / "sweep.parquet", index=False)
            with plt.rc_context(figures.STYLE), PdfPages(tmp / "report.pdf") as pdf:
                fig = figures.sweep_chart(table, list(grid), sc.name)
                pdf.savefig(fig)
                plt.close(fig)

        write_folder(out, fill, force=force)
    click.echo(table.to_string(index=False))
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
    import json

    from kzsim.api import simulate
    from kzsim.io.reproduce import compare_runs, version_differences
    from kzsim.scenario.reading import read_yaml
    from kzsim.scenario.schema import scenario_from_dict

    src = Path(results_dir)
    manifest_file, scenario_file = src / "manifest.json", src / "scenario.resolved.yaml"
    for f in (manifest_file, scenario_file):
        if not f.is_file():
            raise BadInput(f"{f}: file not found (allowed: a folder written by kzsim run)")
    try:
        manifest = json.loads(manifest_file.read_text())
        paths, seed = int(manifest["paths"]), int(manifest["seed"])
    except (ValueError, KeyError, TypeError):
        raise BadInput(f"{manifest_file}: not a kzsim manifest (allowed: a folder written by kzsim run)") from None
    try:
        sc = scenario_from_dict(read_yaml(scenario_file), source=str(scenario_file))
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None
    out = _out_folder(out_dir, src.with_name(src.name + "-rerun"), force)
    for line in version_differences(manifest):
        click.echo(f"kzsim: {line}", err=True)
    with _interruptible(out):
        with _progress(quiet, paths, sc.simulation.horizon_days) as progress:
            results = simulate(sc, paths=paths, seed=seed, progress=progress)
        results.write(
            out,
            force=force,
            scenario_file=scenario_file,
            report=(src / "report.pdf").exists(),
            command="kzsim " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        )
    differences = compare_runs(src, out)
    if differences:
        click.echo(f"{out}: differs from {src}:", err=True)
        for line in differences:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"{out}: identical to {src} (every per-path value, per-day series and summary figure)")


@main.command()
@click.argument("prices_csv", type=click.Path())
@click.option(
    "--model",
    type=click.Choice(["gbm", "jump_diffusion", "garch", "bootstrap", "fees"]),
    default="gbm",
    show_default=True,
    help="Price model to fit; 'fees': the fee process from a CSV of daily fees.",
)
@click.option("--from", "from_date", type=click.DateTime(["%Y-%m-%d"]), help="First day used (YYYY-MM-DD).")
@click.option("--to", "to_date", type=click.DateTime(["%Y-%m-%d"]), help="Last day used (YYYY-MM-DD).")
@click.option("--date-column", help="Name of the date column (default: recognised: Date, date, timestamp...).")
@click.option("--price-column", help="Name of the close column (default: recognised: Close, price, Price...).")
@click.option("--block-days", type=click.FloatRange(min=1, max=3650), help="bootstrap: mean block length [days].")
@click.option(
    "--fees-per-block", is_flag=True, help="fees: the file holds BTC per block (default: BTC per day, / 144)."
)
def calibrate(prices_csv, model, from_date, to_date, date_column, price_column, block_days, fees_per_block):
    """Fit a BTC price model to a CSV of daily closes; print a block to paste under `market:`.

    Reads Yahoo-style (Date,Open,High,Low,Close,...), date,price and similar exports.
    Gaps, duplicated days, unsorted rows and non-positive prices are refused with the
    lines to fix; cut around them with --from/--to. With --model fees the file holds total
    transaction fees a day (blockchain.com's transaction-fees export: date, fees_btc).
    """
    from kzsim.analysis import calibration
    from kzsim.scenario.history import FEE_NAMES, PRICE_NAMES, HistoryError, read_daily_csv

    start = from_date.date() if from_date else None
    end = to_date.date() if to_date else None
    if start and end and end <= start:
        raise BadInput(f"--from {start} --to {end}: the window is empty (allowed: --to after --from)")
    fees = model == "fees"
    try:
        series = read_daily_csv(
            prices_csv,
            date_column=date_column,
            value_column=price_column,
            value_names=FEE_NAMES if fees else PRICE_NAMES,
            what="fees" if fees else "closing price",
            start=start,
            end=end,
        )
    except HistoryError as exc:
        raise BadInput(str(exc)) from None
    try:
        if fees:
            fit = calibration.fit_fees(series.values if fees_per_block else series.values / 144.0)
        else:
            options = {}
            if model == "bootstrap":
                options = {
                    "csv_path": str(Path(prices_csv).resolve()),
                    "from_date": start or series.first,
                    "to_date": end or series.last,
                    "mean_block_days": block_days,
                }
            fit = calibration.fit(model, series.log_returns(), **options)
    except ValueError as exc:
        raise BadInput(f"{prices_csv}: {exc}") from None
    if fees:
        read = "" if fees_per_block else " (BTC a day / 144 blocks)"
        paste = "paste under `market:` in a scenario"
    else:
        read = f", last close {series.values[-1]:,.2f}"
        paste = "paste under `market:` in a scenario (btc_price_usd stays the scenario's start price)"
    header = [
        f"kzsim calibrate {shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else prices_csv}",
        f"{prices_csv}: column {series.column!r}, {series.first} to {series.last}{read}",
        paste,
    ]
    click.echo(calibration.to_yaml(fit, header), nl=False)


@main.command()
@click.argument("prices_csv", type=click.Path())
@click.option(
    "--split",
    "splits",
    multiple=True,
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of the fit window (repeatable); the days after it are the test.",
)
@click.option("--to", "to_date", type=click.DateTime(["%Y-%m-%d"]), help="Last day of history used.")
@click.option("--paths", type=click.IntRange(min=100), default=2000, show_default=True, help="Paths a forecast.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=20260101, show_default=True)
@click.option("--date-column", help="Name of the date column (default: recognised).")
@click.option("--price-column", help="Name of the close column (default: recognised).")
def backtest(prices_csv, splits, to_date, paths, seed, date_column, price_column):
    """Back-test every price model: coverage of realised closes by the simulated bands (Markdown)."""
    from kzsim.analysis import backtest as bt
    from kzsim.scenario.history import HistoryError, read_daily_csv

    try:
        series = read_daily_csv(
            prices_csv, date_column=date_column, value_column=price_column, end=to_date.date() if to_date else None
        )
        text = bt.report(series.dates, series.values, [d.date() for d in splits], n_paths=paths, seed=seed)
    except HistoryError as exc:
        raise BadInput(str(exc)) from None
    except ValueError as exc:
        raise BadInput(
            f"{prices_csv}: {exc} (allowed: --split inside the file's {series.first} to {series.last})"
        ) from None
    click.echo(text, nl=False)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
def validate(files, sets):
    """Check scenario FILES; print one line per problem, exit 2 if any."""
    problems = []
    for f in files:
        try:
            _scenario(f, sets)
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


class _progress:
    """A rich progress bar on a terminal; nothing in pipes, CI or with --quiet.

    One line that fits 80 columns at a million paths: the bar takes what the rest leaves,
    ``simulating ━━━━━━━━ 148,480/1,000,000 paths 24.0 M path-days/s 0:00:04 left``.
    The rate and the time left at that rate are measured over the last
    :attr:`RATE_WINDOW_S` from the first update on, so neither the start (a first run
    compiles the kernels for ~14 s before its first chunk) holds them down for the rest of
    the run, nor chunks finishing together on several threads make them jump: none is shown
    before the updates span :attr:`RATE_MIN_SPAN_S`. A ``total`` of None (an analysis that
    does not know how many runs it will make) shows the paths done and the rate only.
    """

    RATE_WINDOW_S = 10.0
    RATE_MIN_SPAN_S = 1.0

    def __init__(self, quiet: bool, total: int | None, days: int, console=None):
        self.console = console  # rich Console (default: standard error, when it is a terminal)
        self.enabled = not quiet and (console is not None or sys.stderr.isatty())
        self.total = total
        self.days = days
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from collections import deque

        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        days = self.days
        self.bar = Progress(
            TextColumn("simulating"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[done]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[left]}"),
            transient=True,
            expand=True,
            console=self.console or Console(stderr=True),
        )
        self.bar.start()
        no_rate = " " * len("00.0 M path-days/s")  # the bar keeps its width when the rate comes

        def fields(done: int, total: int | None, paths_per_s: float | None) -> dict:
            rate = no_rate if paths_per_s is None else f"{paths_per_s * days / 1e6:4.1f} M path-days/s"
            if total is None:
                return {"done": f"{done:,} paths", "rate": rate, "left": ""}
            left = "-:--:--"
            if paths_per_s is not None:
                minutes, seconds = divmod(math.ceil((total - done) / paths_per_s), 60)
                left = f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
            return {"done": f"{done:,}/{total:,} paths", "rate": rate, "left": f"{left} left"}

        task = self.bar.add_task("run", total=self.total, **fields(0, self.total, None))
        seen = deque()  # (time, paths done) at the updates of the last RATE_WINDOW_S, and one before

        def update(done: int, total: int | None) -> None:
            now = self.bar.get_time()
            seen.append((now, done))
            while len(seen) > 2 and now - seen[1][0] >= self.RATE_WINDOW_S:
                seen.popleft()
            then, done_then = seen[0]
            paths_per_s = None
            if now - then >= self.RATE_MIN_SPAN_S and done > done_then:
                paths_per_s = (done - done_then) / (now - then)
            self.bar.update(task, completed=done, total=total, **fields(done, total, paths_per_s))

        return update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


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
