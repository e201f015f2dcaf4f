"""``kzsim init``: a scenario for one's own farm from a few answers, asked on a terminal or given as options."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kzsim.cli.commands import main
from kzsim.cli.common import BadInput


def _fleet_row(text: str) -> dict:
    from kzsim.scenario.starting import parse_fleet

    try:
        return parse_fleet(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _tariff(text) -> float | None:
    if text is None or str(text).strip().lower() in ("", "base"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: a number of KZT per kWh, or 'base'") from None
    if not 0 < value <= 1e4:
        raise click.BadParameter(f"{value:g}: allowed a tariff above 0 and at most 10,000 KZT/kWh")
    return value


@main.command()
@click.argument("out", type=click.Path(dir_okay=False), default="my-farm.yaml")
@click.option("--fleet", "fleets", multiple=True, metavar="MODEL:COUNT|MODEL:MW", help="A fleet row (repeatable).")
@click.option("--unit-price-usd", type=click.FloatRange(0, 1e8), help="Price of one machine (default: $18 per TH/s).")
@click.option("--tariff-kzt-per-kwh", "tariff", metavar="KZT|base", help="Power price (default: the base's range).")
@click.option("--procurement", type=click.Choice(["day_ahead", "lots"]), help="How power is bought.")
@click.option("--rules", type=click.Choice(["2025", "2024"]), help="Kazakh rules (75 % or 50 % sold on AIFC...).")
@click.option("--horizon-days", type=click.IntRange(1, 36_500), help="Length of a path [days].")
@click.option("--name", help="Scenario name (default: OUT's file name).")
@click.option(
    "--ask/--no-ask",
    default=None,
    help="Ask for the values not given (default: when the input is a terminal); --no-ask takes the defaults.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def init(out, fleets, unit_price_usd, tariff, procurement, rules, horizon_days, name, ask, force):
    """Write a complete, commented scenario for your farm to OUT (default my-farm.yaml).

    On a terminal it asks for what the options do not give (the default in brackets; Enter
    keeps it); in a script, or with --no-ask, it takes the defaults. Every other value comes from the closest shipped
    scenario, with its source in a comment. Example:
    kzsim init farm.yaml --fleet "Antminer S21:2600" --tariff-kzt-per-kwh 25 --rules 2025 --horizon-days 730
    """
    from kzsim.scenario.catalogue import lookup
    from kzsim.scenario.errors import ScenarioError
    from kzsim.scenario.loading import load_scenario
    from kzsim.scenario.saving import write_text
    from kzsim.scenario.starting import base_file, commented_yaml, key_comments

    out = Path(out)
    if out.exists() and not force:
        raise BadInput(f"{out}: exists (allowed: another file name, or --force to replace it)")

    if ask is None:
        ask = sys.stdin.isatty()

    def question(given, text, default, **kw):
        if given is not None:
            return given
        return click.prompt(text, default=default, **kw) if ask else default

    first = "Antminer S21:2600"
    if not fleets and ask:  # checked as typed: a model not in the catalogue is asked again
        rows = [click.prompt("Fleet (MODEL:COUNT or MODEL:MW; kzsim models)", default=first, value_proc=_fleet_row)]
    else:
        try:
            rows = [_fleet_row(f) for f in fleets or (first,)]
        except click.BadParameter as exc:
            raise BadInput(f"--fleet {exc.message}") from None
    rules = int(
        question(rules, "Rules year (2025: 75 % sold on AIFC; 2024: 50 %)", "2025", type=click.Choice(["2025", "2024"]))
    )
    procurement = question(procurement, "Procurement", "day_ahead", type=click.Choice(["day_ahead", "lots"]))
    if tariff is None and ask:
        tariff = click.prompt(
            "Tariff [KZT/kWh] (a number, or 'base': the base's 20-35 range)", default="base", value_proc=_tariff
        )
    else:
        try:
            tariff = _tariff(tariff)
        except click.BadParameter as exc:
            raise BadInput(f"--tariff-kzt-per-kwh {exc.message}") from None
    horizon_days = question(horizon_days, "Horizon [days]", 730, type=click.IntRange(1, 36_500))
    base = base_file(rules)
    set_here = {"farm.fleet.*": "set by kzsim init", "name": "set by kzsim init"}
    fleet = []
    for row in rows:
        spec = lookup(row["model"])[1]
        price = unit_price_usd if unit_price_usd is not None else round(18.0 * spec.hashrate_th)
        fleet.append(
            {
                **row,
                "hashrate_th": spec.hashrate_th,
                "efficiency_j_per_th": spec.efficiency_j_per_th,
                "unit_price_usd": price,
            }
        )
    overrides = {
        "name": name or out.stem,
        "description": f"{', '.join(str(r['count']) + ' x ' + r['model'] for r in rows)}, {rules} rules, "
        f"{procurement.replace('_', '-')} power; written by kzsim init from {base.name}.",
        "farm.fleet": fleet,
        "electricity.procurement_mode": procurement,
        "simulation.horizon_days": horizon_days,
    }
    set_here["electricity.procurement_mode"] = set_here["simulation.horizon_days"] = "set by kzsim init"
    set_here["farm.fleet.-.hashrate_th"] = set_here["farm.fleet.-.efficiency_j_per_th"] = (
        "the catalogue's (kzsim models)"
    )
    if unit_price_usd is None:
        set_here["farm.fleet.-.unit_price_usd"] = "guess: $18 per TH/s, the base's S21 price (give --unit-price-usd)"
    if tariff is not None:
        overrides["electricity.tariff_kzt_per_kwh"] = tariff
        set_here["electricity.tariff_kzt_per_kwh"] = "set by kzsim init"
    try:
        sc = load_scenario(base, overrides)
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None
    text = commented_yaml(sc.to_yaml(), key_comments(base.read_text()), set_here)
    try:
        write_text(out, text, overwrite=force)
    except FileExistsError:
        raise BadInput(f"{out}: exists (allowed: another file name, or --force to replace it)") from None
    except OSError as exc:
        raise BadInput(
            f"{out}: cannot be written ({exc.strerror}; allowed: a file in a folder you can write)"
        ) from None
    mw = sum(r["count"] * r["hashrate_th"] * r["efficiency_j_per_th"] for r in fleet) / 1e6
    click.echo(
        f"wrote {out}: {mw:.2f} MW IT of {', '.join(r['model'] for r in rows)}, every other value from {base.name}"
    )
    click.echo(f"next: kzsim run {out}")
