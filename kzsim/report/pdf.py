"""The PDF report: a summary page in plain words, evidence pages, and the scenario appendix."""

from __future__ import annotations

import contextlib
import logging
import math
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages

from kzsim.report import collector_paused, figures
from kzsim.report.figures import pct, usd

PAGE_TITLES = (
    "Summary",
    "Profit after tax over the horizon",
    "Cumulative profit and loss",
    "The network: difficulty and fees",
    "Cost per BTC against the BTC price",
    "Downtime by cause",
    "Where the money goes",
    "Have we run enough paths?",
    "Appendix: scenario parameters",
)


def plain_reading(results) -> str:
    """One paragraph that answers the operator's two questions in words."""
    s, pp = results.summary, results.run.per_path
    years = s["horizon_days"] / 365.0
    lo, hi = s["p_loss_ci95"]
    causes = s["downtime_hours"]
    worst = max(causes, key=causes.get)
    cash, all_in = s["cost_per_btc_usd"]["cash"], s["cost_per_btc_usd"]["all_in"]
    price = float(np.mean(pp["mean_btc_price_usd"]))
    verdict = "above" if all_in["p50"] > price else "below"
    return (
        f"Over {s['horizon_days']} days from {s['start_date']}, this {np.mean(pp['facility_power_mw']):.1f} MW "
        f"farm ends with an after-tax loss on {pct(s['p_loss'])} of the {s['paths']:,} simulated paths "
        f"(95 % confidence interval {pct(lo)} to {pct(hi)}). Its expected profit after tax is "
        f"{usd(s['profit_usd']['mean'])} (Monte Carlo standard error {usd(s['profit_usd']['mean_se'], 2)}); "
        f"in the worst 5 % of paths it loses {usd(s['cvar_95_usd'])} on average. "
        f"Mining one BTC costs {usd(cash['p50'])} in cash and {usd(all_in['p50'])} all-in "
        f"(medians over paths; all-in adds depreciation and profit tax), {verdict} the average simulated "
        f"BTC price of {usd(price)}. The farm hashes {pct(s['uptime_fraction']['mean'])} of the time; "
        f"the largest cause of downtime is {worst} ({causes[worst] / years:,.0f} hours a year)."
    )


def reference_reading(results) -> str:
    ref = results.summary["references"]
    cash = results.summary["cost_per_btc_usd"]["cash"]["p50"]
    implied = ref["article_implied_power_usd_per_mwh"]
    paid = ref["scenario_power_usd_per_mwh"]
    return (
        f"The article puts the 2025 cost of one BTC in Kazakhstan at $27,000. For this fleet at the start "
        f"difficulty one BTC takes {ref['kwh_per_btc_at_start_difficulty']:,.0f} kWh, so $27,000 all-in "
        f"would need power (tariff plus mining fee) at or below ${implied:,.1f} per MWh even with every "
        f"other cost at zero; this scenario pays ${paid:,.1f} per MWh on average. Listed miners published "
        f"a cash cost of about $74,600 per BTC in Q2 2025 (CoinShares); this scenario's median cash cost "
        f"is {usd(cash)}, {'above' if cash > 74_600 else 'below'} it."
    )


def drivers_reading(results) -> str:
    drivers = results.summary.get("risk_drivers")
    if not drivers:
        return ""
    parts = []
    for d in drivers:
        parts.append(
            f"{d['parameter']} (from {d['value_low']:,.4g} to {d['value_high']:,.4g}: mean profit "
            f"{usd(d['delta_mean_profit_low_usd'])} to {usd(d['delta_mean_profit_high_usd'])})"
        )
    return (
        "Among the uncertain inputs, the three that move expected profit most, read off this run's paths: the "
        "mean profit of the tenth of paths with an input's lowest values against the tenth with its highest "
        "(inputs correlated with it move along): " + "; ".join(parts) + ". The BTC price path, outages and "
        "payment failures are random in every run and not ranked here; `kzsim sensitivity` runs a tornado "
        "with one input moved at a time."
    )


def blackout_reading(results) -> str:
    b = results.summary.get("blackout_48h")
    if not b:
        return ""
    c = b["cost_usd"]
    margin = b["days_of_mining_margin"]
    text = (
        f"The article says one 48-hour blackout can wipe out two weeks of profit. Here, a 48 h blackout from "
        f"{b['start']} (plus the restart time) costs {usd(c['mean'])} on average (5-95 %: {usd(c['p05'])} to "
        f"{usd(c['p95'])}; {b['paths']:,} paths on common random numbers)."
    )
    if margin["p50"] is not None:
        text += (
            f" Where mining pays for its power ({pct(margin['share_of_paths'])} of paths) that is a median of "
            f"{margin['p50']:.1f} days of mining margin."
        )
    after_tax = b["days_of_profit_after_tax"]
    if after_tax["p50"] is not None and after_tax["share_of_paths"] >= 0.05:
        text += f" On the paths that end in profit it is {after_tax['p50']:.1f} days of profit after tax (median)."
    if b["share_saving"] > 0:
        text += (
            f" On {pct(b['share_saving'])} of paths the blackout saves money: mining there costs more than it earns."
        )
    return text


def operating_reading(results) -> str:
    """Hashprice against the farm's break-even, and what the shut-off policy did (or would face)."""
    s = results.summary
    h, e = s["hashprice_usd_per_th_day"], s["economic_shutoff"]
    text = (
        f"Hashprice averaged {usd(h['mean'], 3)} per TH/s-day (5-95 % of paths: {usd(h['p05'], 3)} to "
        f"{usd(h['p95'], 3)}); a full-power hour breaks even on cash at {usd(h['farm_cash_cost_per_th_day'], 3)}. "
        f"On {pct(h['share_of_days_below_cash_cost'])} of path-days the coins of a day's mining sold for less than its "
        "power, mining fee and lot fees."
    )
    if e["enabled"]:
        text += f" The economic shut-off idled the farm {e['days_mean']:.0f} days on average"
        value = e.get("value")
        if value:
            g = value["gain_usd"]
            text += (
                f", which raised profit after tax by {usd(g['mean'])} (SE {usd(g['mean_se'], 2)}; 5-95 %: "
                f"{usd(g['p05'])} to {usd(g['p95'])}) against running every day, on {value['paths']:,} paths and "
                f"common random numbers; P(loss) {pct(value['p_loss_without'])} without, {pct(value['p_loss_with'])} with"
            )
        text += "."
    elif h["share_of_days_below_cash_cost"] > 0:
        text += " Set farm.economic_shutoff: true to see what idling on those days would earn."
    return text


def key_figures(results) -> str:
    s = results.summary
    p = s["profit_usd"]
    lo, hi = s["p_loss_ci95"]
    cash, all_in = s["cost_per_btc_usd"]["cash"], s["cost_per_btc_usd"]["all_in"]
    lines = [
        f"Probability of an after-tax loss:   {pct(s['p_loss'])}   (95 % CI {pct(lo)} - {pct(hi)})",
        f"Profit after tax, mean:             {usd(p['mean'])}   (standard error {usd(p['mean_se'], 2)})",
        f"Profit after tax, 5 / 50 / 95 %:    {usd(p['p05'])} / {usd(p['p50'])} / {usd(p['p95'])}",
        f"VaR 95 % / CVaR 95 % (losses):      {usd(s['var_95_usd'])} / {usd(s['cvar_95_usd'])}"
        f"   (VaR 95 % CI {usd(s['var_95_ci95_usd'][0])} - {usd(s['var_95_ci95_usd'][1])})",
        f"VaR 99 % / CVaR 99 % (losses):      {usd(s['var_99_usd'])} / {usd(s['cvar_99_usd'])}",
        f"Cash cost per BTC, 5 / 50 / 95 %:   {usd(cash['p05'])} / {usd(cash['p50'])} / {usd(cash['p95'])}",
        f"All-in cost per BTC, 5 / 50 / 95 %: {usd(all_in['p05'])} / {usd(all_in['p50'])} / {usd(all_in['p95'])}",
        f"BTC mined, mean:                    {s['btc_mined']['mean']:,.2f} BTC",
        f"Up fraction, mean:                  {pct(s['uptime_fraction']['mean'])}",
        f"NPV incl. capex, mean:              {usd(s['npv_usd']['mean'])}   "
        f"(capex {usd(s['capex_usd']['mean'])}; paid back within the horizon on "
        f"{pct(s['payback']['share_within_horizon'])} of paths)",
    ]
    return "\n".join(lines)


def hedges_reading(results) -> str:
    """The hedges in words (empty without hedges)."""
    h = results.summary.get("hedges")
    if not h:
        return ""
    net = h["net_usd"]
    return (
        "Hedges: " + "; ".join(h["hedges"]) + ". "
        f"Premiums {usd(h['premium_usd_mean'])}; settlements {usd(h['settlements_usd']['mean'])} on average "
        f"(5-95 %: {usd(h['settlements_usd']['p05'])} to {usd(h['settlements_usd']['p95'])}); net of premiums "
        f"{usd(net['mean'])} (standard error {usd(net['mean_se'], 2)}), in the profit and its tax above. "
        "`kzsim hedge` sizes them against the tail risk they remove."
    )


def fleet_reading(results) -> str:
    """The fleet's life in words: the upgrade and the machines' sale at the end (empty without them)."""
    s = results.summary
    parts = []
    up = s.get("upgrade")
    if up:
        when = f", at the median on day {up['median_day']:,.0f}" if up["median_day"] else ""
        parts.append(
            f"The fleet is upgraded to {up['to_model']} on {pct(up['share_of_paths'])} of paths{when}: "
            f"{usd(up['capex_usd_mean'])} of new machines and {usd(up['old_machines_sale_usd_mean'])} from the old "
            "on average (over all paths)."
        )
    sale = s.get("resale_usd")
    if sale:
        parts.append(
            f"The machines are sold at the end for {usd(sale['mean'])} on average (5-95 %: {usd(sale['p05'])} to "
            f"{usd(sale['p95'])}), {usd(sale['gain_over_book_mean'])} against their book value; profit, NPV, IRR and "
            "the all-in cost per BTC include it."
        )
    return " ".join(parts)


def financing_reading(results) -> str:
    """The lenders' and the owners' view in words (empty without financing)."""
    f = results.summary.get("financing")
    if not f:
        return ""
    loan, out = f["loan"], f["p_cash_runs_out"]
    irr, below = f["irr_per_year"], f["p_irr_below_hurdle"]
    when = f", by day {f['median_day_cash_runs_out']:,.0f} at the median" if f["median_day_cash_runs_out"] else ""
    text = (
        f"Loan {usd(loan['principal_usd_mean'])} ({loan['repayment']}, {loan['term_months']} months): interest "
        f"{usd(loan['interest_usd_mean'])}, {usd(loan['outstanding_at_end_usd_mean'])} still owed at the end. "
        f"The cash runs out on {pct(out['p'])} of paths (95 % CI {pct(out['ci95'][0])} - "
        f"{pct(out['ci95'][1])}){when}; a quarter's debt-service coverage falls below the covenant on "
        f"{pct(f['p_covenant_breach']['p'])}; the lender calls for more collateral on "
        f"{pct(f['p_margin_call']['p'])}. The owners' IRR: median {pct(irr['p50'])}, 5-95 % "
        f"{pct(irr['p05'])} to {pct(irr['p95'])}, everything lost on {pct(irr['share_all_lost'])} of paths"
    )
    if below is not None:
        text += f"; below the hurdle on {pct(below['p'])}"
    return text + "."


def scenario_block(results) -> str:
    sc = results.scenario
    fleet = ", ".join(f"{a.count:,} x {a.model}" for a in sc.farm.fleet)
    return (
        f"{sc.description.strip()}\n"
        f"Fleet: {fleet}. Procurement: {sc.electricity.procurement_mode}. "
        f"{results.summary['paths']:,} paths, seed {results.summary['seed']}, "
        f"{sc.simulation.horizon_days} days from {sc.simulation.start_date}. "
        f"BTC price model: {sc.market.price_model}." + dependence_text(results)
    )


def dependence_text(results) -> str:
    d = results.summary.get("dependence")
    if not d:
        return ""
    pairs = "; ".join(f"{a} ~ {b}: {r:+.2f}" for a, b, r in d["pairs_used"] if abs(r) >= 0.005)
    text = f" Rank correlations (Iman-Conover): {pairs}."
    if d["repaired"]:
        text += (
            f" The correlations given could not hold together and were REPAIRED to the nearest valid set: "
            f"the largest change to an entry was {d['max_change']:.3f}."
        )
    return text


def parameter_rows(results, command: str | None = None) -> list[tuple[str, str]]:
    """(key, value) of every scenario value the run used: the run's own paths and seed (an
    option or an analysis may differ from the file's), keys a ``--set`` changed marked so."""
    rows = []
    changed = set_keys(command)

    def walk(prefix, value):
        if isinstance(value, dict):
            if "dist" in value:
                rows.append((prefix, ", ".join(f"{k}={v}" for k, v in value.items())))
                return
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list) and not value:
            return  # an empty list (no hedges): nothing to show
        elif isinstance(value, list) and isinstance(value[0], dict):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        else:
            rows.append((prefix, str(value)))

    data = results.scenario.to_dict()
    data.pop("description", None)
    sim = data["simulation"]
    for key, used in (("paths", results.run.paths), ("seed", results.run.seed)):
        if sim[key] != used:
            sim[key] = f"{used:,} (the run's; the file says {sim[key]:,})"
    walk("", data)
    return [(k, f"{v}  (--set)" if k in changed else v) for k, v in rows]


class _FontLookupNotes(logging.Filter):
    """matplotlib's notes that a font lookup took the nearest weight (Helvetica's metrics are
    "Medium", asked for "normal"): harmless, and no command that succeeds prints to stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("findfont:")


@contextlib.contextmanager
def report_style():
    """The reports' matplotlib settings (:data:`kzsim.report.figures.STYLE`), no font lookup
    notes, and the cyclic garbage collector paused (:func:`kzsim.report.collector_paused`),
    for the ``with`` block only: nothing stays changed in the process."""
    logger = logging.getLogger("matplotlib.font_manager")
    quiet = _FontLookupNotes()
    logger.addFilter(quiet)
    try:
        with collector_paused(), matplotlib.rc_context(figures.STYLE):
            yield
    finally:
        logger.removeFilter(quiet)


def made_by(command: str | None) -> str:
    """The first page's footer: what made the report (kzsim and numpy versions, the command)."""
    from kzsim.version import __version__

    return f"kzsim {__version__}, numpy {np.__version__}: {command or 'the Python API (kzsim.Results.report or write)'}"


def set_keys(command: str | None) -> dict[str, str]:
    """The keys a command line's ``--set KEY=VALUE`` changed, with the values as typed."""
    import shlex

    if not command:
        return {}
    try:
        words = shlex.split(command)
    except ValueError:
        return {}
    out = {}
    for flag, value in zip(words, words[1:]):
        if flag == "--set" and "=" in value:
            key, typed = value.split("=", 1)
            out[key.strip()] = typed
    return out


def write_report(results, path: str | Path, command: str | None = None) -> Path:
    """Write the report to ``path`` (the caller makes it atomic); ``command``: the command line
    that made the run, printed on the first page, its ``--set`` keys marked in the appendix."""
    path = Path(path)
    with report_style():
        pages = _pages(results, command)
        with PdfPages(path, metadata={"Title": f"kzsim report: {results.scenario.name}", "Creator": "kzsim"}) as pdf:
            for fig in pages:
                pdf.savefig(fig)
    return path


def _pages(results, command: str | None = None) -> list:
    first, *rest = figures.text_pages(
        f"kzsim report: {results.scenario.name}",
        [
            ("Scenario", scenario_block(results), False),
            ("The answer in plain words", plain_reading(results), False),
            *([("What drives it", drivers_reading(results), False)] if drivers_reading(results) else []),
            ("Key figures (with Monte Carlo uncertainty)", key_figures(results), True),
            ("Against the article and listed miners", reference_reading(results), False),
            *([("A 48-hour blackout", blackout_reading(results), False)] if blackout_reading(results) else []),
            *([("Hedges", hedges_reading(results), False)] if hedges_reading(results) else []),
            *([("The fleet's life", fleet_reading(results), False)] if fleet_reading(results) else []),
        ],
    )
    first.text(0.08, 0.02, "\n".join(textwrap.wrap(made_by(command), 110)), fontsize=7.5, color="#555555", va="bottom")
    return [
        first,
        *rest,
        figures.profit_distribution(results),
        figures.pnl_fan(results),
        figures.hashprice_fan(results, operating_reading(results)),
        figures.network_fans(results),
        figures.cost_vs_price(results),
        figures.downtime(results),
        figures.cost_breakdown(results),
        *([figures.financing_page(results, financing_reading(results))] if results.scenario.financing else []),
        figures.convergence(results),
        *figures.table_pages("Appendix: scenario parameters (as run)", parameter_rows(results, command)),
    ]


def compare_reading(comparison) -> str:
    base = comparison.names[0]
    parts = []
    for name, d in zip(comparison.names[1:], comparison.differences, strict=True):
        lo, hi = d["mean_ci95_usd"]
        direction = "more" if d["mean_usd"] > 0 else "less"
        crn = d["crn_se_reduction_factor"]
        if math.isfinite(crn):
            precision = (
                f"Common random numbers make this difference {crn:.1f} times more precise "
                "than independent runs of the same size."
            )
        elif math.isinf(crn):  # the paired differences are all equal
            precision = "The difference is the same on every path."
        else:  # one path: no standard error
            precision = "One path gives no standard error."
        parts.append(
            f"{name} earns {usd(abs(d['mean_usd']))} {direction} than {base} on average after tax "
            f"(95 % interval {usd(lo)} to {usd(hi)}) and does better on {pct(d['p_better'])} of paths. {precision}"
        )
    return "\n".join(parts)


def compare_table(comparison) -> str:
    table = comparison.table
    names = [n[:18] for n in comparison.names]
    lines = ["".ljust(34) + "".join(n.rjust(20) for n in names)]
    for label, row in table.iterrows():
        cells = []
        for v in row:
            if isinstance(v, float) and math.isnan(v):
                cells.append("-")  # not in that scenario (no financing)
            elif label.startswith("P(") or "fraction" in label or "IRR" in label:
                cells.append(pct(v))
            elif "USD" in label:
                cells.append(usd(v))
            else:
                cells.append(f"{v:,.2f}")
        lines.append(label[:34].ljust(34) + "".join(c.rjust(20) for c in cells))
    return "\n".join(lines)


def write_compare_report(comparison, path: str | Path) -> Path:
    path = Path(path)
    first = comparison.results[0]
    with report_style():
        pages = [
            figures.text_page(
                f"kzsim comparison: {' vs '.join(comparison.names)}",
                [
                    (
                        "Runs",
                        f"{first.run.paths:,} paths each, seed {first.run.seed}, on common random numbers "
                        f"(the same draws wherever the scenarios' inputs agree). Baseline: {comparison.names[0]}.",
                        False,
                    ),
                    ("The answer in plain words", compare_reading(comparison), False),
                    ("Headline figures", compare_table(comparison), True),
                ],
            ),
            figures.compare_distributions(comparison),
            figures.compare_differences(comparison),
        ]
        with PdfPages(path, metadata={"Title": "kzsim comparison", "Creator": "kzsim"}) as pdf:
            for fig in pages:
                pdf.savefig(fig)
    return path


def _write_one_page(fig, path: str | Path) -> Path:
    with PdfPages(path) as pdf:
        pdf.savefig(fig)
    return Path(path)


def write_sensitivity_pdf(table, scenario_name: str, path: str | Path, method: str) -> Path:
    """The tornado (``method='tornado'``) or Sobol chart of a sensitivity table as a one-page PDF."""
    from kzsim.analysis.sensitivity import sobol_reading

    with report_style():
        if method == "sobol":
            fig = figures.sobol_chart(table, scenario_name, sobol_reading(table))
        else:
            fig = figures.tornado_chart(table, scenario_name)
        return _write_one_page(fig, path)


def write_hedge_pdf(table, scenario_name: str, reading: str, path: str | Path) -> Path:
    """The hedge frontier (:func:`kzsim.analysis.hedging.hedge_frontier`) as a one-page PDF."""
    with report_style():
        return _write_one_page(figures.hedge_frontier_chart(table, scenario_name, reading), path)


def write_sweep_pdf(table, grid_names: list[str], scenario_name: str, path: str | Path) -> Path:
    """The lines (one parameter) or heat maps (two) of a sweep table as a one-page PDF."""
    with report_style():
        return _write_one_page(figures.sweep_chart(table, grid_names, scenario_name), path)
