"""The ``kzsim`` command: thin commands that build a request and call the API.

Bad input (a scenario, an override, an occupied output folder) is reported as one line
per problem, ``FILE: section.key: problem (allowed)``, with exit status 2.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from kzsim.loading import ScenarioError, load_scenario, parse_override
from kzsim.outputs import OutputExistsError, check_out_dir, default_out_dir


class BadInput(click.ClickException):
    """A user error: its lines are printed as they are, and kzsim exits with 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def _scenario(path: str, sets: tuple[str, ...] = ()):
    try:
        overrides = dict(parse_override(s) for s in sets)
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kzsim")
def main() -> None:
    """Monte Carlo risk simulator for Bitcoin mining in Kazakhstan."""


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
def run(scenario, paths, seed, out_dir, sets, force, chunk_paths, no_report, quiet):
    """Simulate SCENARIO and write summary.json, paths.parquet, timeseries and report.pdf."""
    from kzsim.api import simulate
    from kzsim.engine import DEFAULT_CHUNK_PATHS

    sc = _scenario(scenario, sets)
    out = Path(out_dir) if out_dir else default_out_dir(scenario)
    try:
        check_out_dir(out, force)
    except OutputExistsError as exc:
        raise BadInput(str(exc)) from None
    n = paths or sc.simulation.paths
    command = "kzsim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        with _progress(quiet, n) as progress:
            results = simulate(
                sc, paths=n, seed=seed, chunk_paths=chunk_paths or DEFAULT_CHUNK_PATHS, progress=progress
            )
        results.write(out, force=force, scenario_file=scenario, report=not no_report, command=command)
    except OutputExistsError as exc:
        raise BadInput(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"kzsim: interrupted; nothing was written to {out}", err=True)
        sys.exit(130)
    if not quiet:
        _print_summary(results.summary, out)


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
    from kzsim.scenario import Scenario, reference_markdown

    if markdown:
        click.echo(reference_markdown(), nl=False)
        return
    doc = Scenario.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "kzsim scenario"
    click.echo(json.dumps(doc, indent=2))


class _progress:
    """A rich progress bar on a terminal; nothing in pipes, CI or with --quiet."""

    def __init__(self, quiet: bool, total: int):
        self.enabled = not quiet and sys.stderr.isatty()
        self.total = total
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("paths"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=__import__("rich.console").console.Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("run", total=self.total)
        return lambda done, total: self.bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


def _print_summary(s: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from kzsim.figures import pct, usd

    t = Table(title=f"{s['scenario']}: {s['paths']:,} paths, {s['horizon_days']} days", show_header=False)
    lo, hi = s["p_loss_ci95"]
    t.add_row("P(loss after tax)", f"{pct(s['p_loss'])}  (95 % CI {pct(lo)} - {pct(hi)})")
    t.add_row("profit after tax, mean", f"{usd(s['profit_usd']['mean'])}  (SE {usd(s['profit_usd']['mean_se'], 2)})")
    t.add_row("VaR 95 % / CVaR 95 %", f"{usd(s['var_95_usd'])} / {usd(s['cvar_95_usd'])}")
    t.add_row(
        "cash / all-in cost per BTC (median)",
        f"{usd(s['cost_per_btc_usd']['cash']['p50'])} / {usd(s['cost_per_btc_usd']['all_in']['p50'])}",
    )
    t.add_row("up fraction, mean", pct(s["uptime_fraction"]["mean"]))
    console = Console()
    console.print(t)
    console.print(f"results in {out}/")
