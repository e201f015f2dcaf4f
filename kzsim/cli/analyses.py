"""Commands that analyse a scenario or a history: sensitivity, breakeven, sweep, calibrate, backtest."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

import kzsim.cli.common as common
from kzsim.analysis.choices import BREAK_EVEN_PARAMETERS
from kzsim.cli.commands import main
from kzsim.cli.common import BadInput
from kzsim.report import collector_paused
from kzsim.scenario.errors import ScenarioError


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
@common.SEED_OPTION
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
@common.WORKERS_OPTION
@common.SCHEDULER_OPTION
@common.THREADS_OPTION
def sensitivity(scenario, method, paths, seed, low, high, sets, out_dir, force, quiet, workers, scheduler, threads):
    """What drives the result, on common random numbers.

    tornado: each uncertain input at its low and high percentile; writes tornado.csv (one
    row per input: values, mean profit and P(loss) at both ends, and their changes) and
    report.pdf. sobol: first-order and total Sobol indices of profit after tax with their
    95 % intervals (Saltelli design, --paths base samples); writes sobol.csv and report.pdf.
    """
    from kzsim.analysis.sensitivity import sobol, sobol_reading, tornado
    from kzsim.io.folders import write_folder

    threads = common.threads_for(threads, workers, scheduler)
    common.compile_ahead([scenario], sets, workers, scheduler)
    sc = common.scenario_arg(scenario, sets)
    out = common.out_folder(out_dir, Path("reports") / f"{Path(scenario).stem}-{method}", force)
    common.check_resources(scenario, sc, paths or sc.simulation.paths, None, quiet=True, threads=threads)
    if all(dist.is_fixed for dist in sc.uncertain_parameters().values()):
        raise BadInput(f"{scenario}: no uncertain parameter (allowed: a scenario with some inputs as distributions)")
    with common.interruptible(out), common.cluster(workers, scheduler) as client:
        on = {"threads": threads, "client": client}
        with common.progress_bar(quiet, None, sc.simulation.horizon_days) as progress:  # the analysis gives the total
            if method == "sobol":
                table = sobol(sc, paths=paths, seed=seed, progress=progress, **on)
            else:
                table = tornado(sc, paths=paths, seed=seed, low=low, high=high, progress=progress, **on)

        def fill(tmp: Path) -> None:
            table.to_csv(tmp / f"{method}.csv", index=False)
            with collector_paused():
                from kzsim.report.pdf import write_sensitivity_pdf

                write_sensitivity_pdf(table, sc.name, tmp / "report.pdf", method)

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
@common.SEED_OPTION
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@common.WORKERS_OPTION
@common.SCHEDULER_OPTION
@common.THREADS_OPTION
def breakeven(scenario, parameters, p_loss_level, paths, seed, sets, quiet, workers, scheduler, threads):
    """Break-even BTC start price and tariff: where mean profit after tax is zero, and where
    P(loss) equals --p-loss; found by root-finding on common random numbers. Prints JSON."""
    from kzsim.analysis.sensitivity import break_even
    from kzsim.io.folders import json_safe

    threads = common.threads_for(threads, workers, scheduler)
    common.compile_ahead([scenario], sets, workers, scheduler)
    sc = common.scenario_arg(scenario, sets)
    common.check_resources(scenario, sc, paths or sc.simulation.paths, None, quiet=True, threads=threads)
    with (
        common.interruptible(None),
        common.cluster(workers, scheduler) as client,
        common.progress_bar(quiet, None, sc.simulation.horizon_days) as progress,  # runs until the roots are found
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
@common.SEED_OPTION
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/<stem>-sweep/).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@common.WORKERS_OPTION
@common.SCHEDULER_OPTION
@common.THREADS_OPTION
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

    threads = common.threads_for(threads, workers, scheduler)
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
    common.compile_ahead([scenario], tuple(plain), workers, scheduler)
    sc = common.scenario_arg(scenario, tuple(plain))
    common.check_resources(scenario, sc, paths or sc.simulation.paths, None, quiet=True, threads=threads)
    base = sc.to_dict()
    for key, values in grid.items():  # every grid value is checked like the file, before any run
        for v in values:
            try:
                scenario_from_dict(apply_overrides(base, {key: v}, source=scenario), source=scenario)
            except ScenarioError as exc:
                raise BadInput(str(exc)) from None
    out = common.out_folder(out_dir, Path("reports") / f"{Path(scenario).stem}-sweep", force)
    with common.interruptible(out), common.cluster(workers, scheduler) as client:
        with common.progress_bar(quiet, None, sc.simulation.horizon_days) as progress:  # the sweep gives the total
            table = run_sweep(sc, grid, paths=paths, seed=seed, threads=threads, client=client, progress=progress)

        def fill(tmp: Path) -> None:
            table.to_csv(tmp / "sweep.csv", index=False)
            table.to_parquet(tmp / "sweep.parquet", index=False)
            with collector_paused():
                from kzsim.report.pdf import write_sweep_pdf

                write_sweep_pdf(table, list(grid), sc.name, tmp / "report.pdf")

        write_folder(out, fill, force=force)
    click.echo(table.to_string(index=False))
    click.echo(f"results in {out}/")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=True))
@click.option(
    "--ratios",
    default="0:1:0.1",
    show_default=True,
    metavar="START:STOP:STEP|R1,R2,...",
    help="Hedge ratios to try, 0 to 1: the share of the hashrate (swaps) or of the coins (forwards), "
    "or of the BTC expected to be mined until expiry (options).",
)
@click.option("--paths", type=click.IntRange(min=1), help="Paths per run (default: the scenario's).")
@common.SEED_OPTION
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a value first.")
@click.option("--out", "out_dir", type=click.Path(), help="Output folder (default: reports/<stem>-hedge/).")
@click.option("--force", is_flag=True, help="Replace the results already in the output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@common.WORKERS_OPTION
@common.SCHEDULER_OPTION
@common.THREADS_OPTION
def hedge(scenario, ratios, paths, seed, sets, out_dir, force, quiet, workers, scheduler, threads):
    """The hedge frontier: each hedge of SCENARIO at each ratio, on common random numbers.

    Expected profit against CVaR 95 % and P(loss), what each size costs in expected profit
    and how much tail loss it removes per dollar. Writes hedge.csv, hedge.parquet and
    report.pdf. Example: kzsim hedge scenarios/kz-2025-hedged.yaml --ratios 0:1:0.25
    """
    from kzsim.analysis.hedging import best_protection, hedge_frontier
    from kzsim.analysis.sensitivity import parse_grid
    from kzsim.io.folders import write_folder

    threads = common.threads_for(threads, workers, scheduler)
    try:
        _, values = parse_grid(f"ratio={ratios}")
    except ValueError as exc:
        raise BadInput(f"--ratios {str(exc).split(': ', 1)[-1]}") from None
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise BadInput(f"--ratios {ratios}: {values} (allowed: ratios from 0 to 1)")
    common.compile_ahead([scenario], sets, workers, scheduler)
    sc = common.scenario_arg(scenario, sets)
    if not sc.hedges:
        raise BadInput(
            f"{scenario}: no `hedges:` to size (allowed: a scenario with a hedges list, e.g. "
            "scenarios/kz-2025-hedged.yaml, or --set 'hedges=[{type: hashprice_swap, share: 0.5, "
            "fixed_usd_per_th_day: 0.04}]')"
        )
    common.check_resources(scenario, sc, paths or sc.simulation.paths, None, quiet=True, threads=threads)
    out = common.out_folder(out_dir, Path("reports") / f"{Path(scenario).stem}-hedge", force)
    with common.interruptible(out), common.cluster(workers, scheduler) as client:
        with common.progress_bar(quiet, None, sc.simulation.horizon_days) as progress:
            table = hedge_frontier(
                sc, values, paths=paths, seed=seed, threads=threads, client=client, progress=progress
            )
        reading = best_protection(table)

        def fill(tmp: Path) -> None:
            table.to_csv(tmp / "hedge.csv", index=False)
            table.to_parquet(tmp / "hedge.parquet", index=False)
            with collector_paused():
                from kzsim.report.pdf import write_hedge_pdf

                write_hedge_pdf(table, sc.name, reading, tmp / "report.pdf")

        write_folder(out, fill, force=force)
    shown = table[["hedge", "ratio", "mean_profit_usd", "cost_usd", "cvar_95_usd", "p_loss", "protection_per_usd"]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    click.echo(reading)
    click.echo(f"results in {out}/")


@main.command()
@click.argument("prices_csv", type=click.Path())
@click.option(
    "--model",
    type=click.Choice(["gbm", "jump_diffusion", "garch", "bootstrap", "fees", "network"]),
    default="gbm",
    show_default=True,
    help="Price model to fit; 'fees': the fee process from a CSV of daily fees; 'network': the network "
    "(growth, volatility, drawdowns, response) from a CSV of daily difficulty.",
)
@click.option("--from", "from_date", type=click.DateTime(["%Y-%m-%d"]), help="First day used (YYYY-MM-DD).")
@click.option("--to", "to_date", type=click.DateTime(["%Y-%m-%d"]), help="Last day used (YYYY-MM-DD).")
@click.option("--date-column", help="Name of the date column (default: recognised: Date, date, timestamp...).")
@click.option("--price-column", help="Name of the value column (default: recognised: Close, price, fees_btc...).")
@click.option("--block-days", type=click.FloatRange(min=1, max=3650), help="bootstrap: mean block length [days].")
@click.option(
    "--fees-per-block", is_flag=True, help="fees: the file holds BTC per block (default: BTC per day, / 144)."
)
@click.option(
    "--drift",
    type=click.Choice(["neutral", "historical"]),
    default="neutral",
    show_default=True,
    help="Price models: print btc_drift_per_year: 0 with the fitted drift as a comment (neutral), or the fit.",
)
@click.option(
    "--fill",
    type=click.Choice(["previous"]),
    help="Give a missing day the value of the day before (needed for garch, bootstrap and fees when the file "
    "misses days; gbm and jump_diffusion fit the returns over the days that elapsed instead).",
)
@click.option(
    "--price-csv",
    type=click.Path(),
    help="network: a CSV of daily BTC closes (from a year before --from) to fit the hashrate's price response.",
)
def calibrate(
    prices_csv, model, from_date, to_date, date_column, price_column, block_days, fees_per_block, drift, fill, price_csv
):
    """Fit a model to a daily history; print a block to paste under `market:`.

    Price models read a CSV of daily closes (Yahoo-style Date,Open,High,Low,Close,...,
    date,price and similar exports); --model fees a CSV of total fees a day (blockchain.com's
    transaction-fees or Coin Metrics' FeeTotNtv export); --model network a CSV of daily
    difficulty (blockchain.com's difficulty export, date,difficulty), with --price-csv for
    the price response. Missing days: gbm and jump_diffusion fit the returns over the days
    that elapsed (exact), difficulty takes the day before's value, the others need
    --fill previous. Duplicated days, unsorted rows and non-positive values are refused
    with the file's lines to fix; cut around them with --from/--to. Price fits print a
    neutral drift (0) unless --drift historical.
    """
    from kzsim.analysis import calibration
    from kzsim.scenario.history import DIFFICULTY_NAMES, FEE_NAMES, PRICE_NAMES, HistoryError, read_daily_csv

    start = from_date.date() if from_date else None
    end = to_date.date() if to_date else None
    if start and end and end <= start:
        raise BadInput(f"--from {start} --to {end}: the window is empty (allowed: --to after --from)")
    if price_csv and model != "network":
        raise BadInput(f"--price-csv {price_csv}: used by --model network only (allowed: --model network)")
    names, what = {"fees": (FEE_NAMES, "fees"), "network": (DIFFICULTY_NAMES, "difficulty")}.get(
        model, (PRICE_NAMES, "closing price")
    )
    try:
        series = read_daily_csv(
            prices_csv,
            date_column=date_column,
            value_column=price_column,
            value_names=names,
            what=what,
            start=start,
            end=end,
            fill=fill or {"network": "previous", "gbm": "keep", "jump_diffusion": "keep"}.get(model),
        )
        prices = None
        if price_csv:
            prices = read_daily_csv(price_csv, end=end)
    except HistoryError as exc:
        hint = (
            " - or --fill previous (a missing day takes the value of the day before)"
            if "missing day" in str(exc)
            else ""
        )
        raise BadInput(f"{exc}{hint}") from None
    for source, read in ((prices_csv, series), (price_csv, prices)):
        if read is not None and (len(read.values) < 3 or float(read.values.min()) == float(read.values.max())):
            raise BadInput(
                f"{source}: column '{read.column}' holds {len(read.values):,} value(s), all {read.values[0]:g}, "
                f"from {read.first} to {read.last} (allowed: a daily series of {what if read is series else 'closing prices'} "
                "that changes over the window; is it the right column? name it with --price-column)"
            )
    try:
        if model == "fees":
            fit = calibration.fit_fees(series.values if fees_per_block else series.values / 144.0)
        elif model == "network":
            from kzsim.analysis.network_fit import fit_network

            fit = fit_network(
                series.dates,
                series.values,
                price_dates=None if prices is None else prices.dates,
                price_usd=None if prices is None else prices.values,
            )
        else:
            options = {}
            if model == "bootstrap":
                options = {
                    "csv_path": str(Path(prices_csv).resolve()),
                    "from_date": start or series.first,
                    "to_date": end or series.last,
                    "mean_block_days": block_days,
                }
            days = series.elapsed_days() if series.missing_days and not fill else None
            fit = calibration.fit(model, series.log_returns(), days, **options)
            if drift == "neutral":
                fit = calibration.neutral_drift(fit)
    except ValueError as exc:
        raise BadInput(
            f"{price_csv if prices is not None and 'price history' in str(exc) else prices_csv}: {exc}"
        ) from None
    if model == "fees":
        read = "" if fees_per_block else " (BTC a day / 144 blocks)"
        paste = "paste under `market:` in a scenario"
    elif model == "network":
        read = f", last difficulty {series.values[-1]:.6g}"
        if series.missing_days:
            read += f"; {series.missing_days} missing day(s) given the day before's difficulty"
        read += f"; prices {price_csv}" if price_csv else "; no --price-csv: the price response is not fitted"
        paste = "paste under `market:` in a scenario (network_difficulty and network_hashrate_eh: the last day's)"
    else:
        read = f", last close {series.values[-1]:,.2f}"
        if series.missing_days:
            read += (
                f"; {series.missing_days} missing day(s) given the close before"
                if fill
                else f"; {series.missing_days} missing day(s): the likelihood is over the days that elapsed"
            )
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
@click.option("--paths", type=click.IntRange(100, 1_000_000), default=2000, show_default=True, help="Paths a forecast.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=20260101, show_default=True)
@click.option("--date-column", help="Name of the date column (default: recognised).")
@click.option("--price-column", help="Name of the close column (default: recognised).")
@click.option("--difficulty-csv", type=click.Path(), help="Also back-test the network on this daily difficulty CSV.")
@click.option(
    "--fees-csv", type=click.Path(), help="With --difficulty-csv: also the fees, from this CSV of fees a day."
)
@click.option(
    "--network-from",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the difficulty and fee files used (e.g. 2016-01-01: the early years hold zeros).",
)
def backtest(
    prices_csv, splits, to_date, paths, seed, date_column, price_column, difficulty_csv, fees_csv, network_from
):
    """Back-test every price model: coverage of realised closes by the simulated bands (Markdown).

    With --difficulty-csv (and --fees-csv) the network too: rolling forecasts of difficulty
    and of the network's fees a day, 42, 182 and 365 days ahead, against what came next.
    """
    from kzsim.analysis import backtest as bt
    from kzsim.scenario.history import DIFFICULTY_NAMES, FEE_NAMES, HistoryError, read_daily_csv

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
    if difficulty_csv:
        from kzsim.analysis import network_backtest as nbt

        window = {"start": network_from.date() if network_from else None, "end": to_date.date() if to_date else None}
        try:
            network = read_daily_csv(
                difficulty_csv, value_names=DIFFICULTY_NAMES, what="difficulty", fill="previous", **window
            )
            fees = read_daily_csv(fees_csv, value_names=FEE_NAMES, what="fees", **window) if fees_csv else None
            table = nbt.report(
                network.dates,
                network.values,
                None if fees is None else fees.dates,
                None if fees is None else fees.values,
                series.dates,  # the hashprice, rebuilt from the three files
                series.values,
                n_paths=min(paths, 1000),
                seed=seed,
            )
        except HistoryError as exc:
            raise BadInput(str(exc)) from None
        except ValueError as exc:
            raise BadInput(f"{difficulty_csv}: {exc}") from None
        click.echo("\n" + table, nl=False)
