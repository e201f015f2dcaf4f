"""Report figures: each function takes a :class:`~kzsim.results.Results` and returns a Figure.

Pages are A4 portrait with one consistent layout: a title, the chart, and a one-line
caption saying what the chart shows.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

from kzsim import stats
from kzsim.units import ARTICLE_COST_PER_BTC_USD, LISTED_MINERS_CASH_COST_PER_BTC_USD

A4 = (8.27, 11.69)
# "$" is money here. The PDF's text in its 14 standard fonts (Helvetica, Courier), which a
# reader has built in: nothing to embed, and a 12-page report draws in 0.8 s instead of 1.3
# (every text of the report is in their encoding: tests/conftest.py checks every page written)
STYLE = {
    "text.parse_math": False,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 10.5,
    "pdf.use14corefonts": True,
    "font.family": "sans-serif",
    # the PDF draws Helvetica and Courier (their metrics ship with matplotlib); the second
    # names are the fonts on disk that matplotlib's own lookups find without a warning
    "font.sans-serif": ["Helvetica", "DejaVu Sans"],
    "font.monospace": ["Courier", "DejaVu Sans Mono"],
    "axes.unicode_minus": False,
}
BLUE, RED, GREY, ORANGE, GREEN = "#1f4e79", "#c0392b", "#7f7f7f", "#e67e22", "#2e8b57"
CAUSE_COLOURS = {"grid": RED, "payment": ORANGE, "quota": BLUE, "hardware": GREY, "economic": GREEN}


def usd(x: float, digits: int = 3) -> str:
    """Money for people, to ``digits`` significant digits: ``-$9.91 M``, ``$87.5 k``, ``$512``,
    ``$110 k`` (not ``$1.1e+02 k``), ``$1 M`` for 999,960 (rounded before the unit is chosen)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = float(f"{abs(x):.{digits}g}")
    for scale, suffix in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if a >= scale:
            return f"{sign}${_significant(a / scale, digits)}{suffix}"
    return f"{sign}${_significant(a, digits)}"


def _significant(v: float, digits: int) -> str:
    """``v`` (already rounded to ``digits`` significant digits) without an exponent: 110, 1.5, 9.91."""
    return np.format_float_positional(v, precision=digits, unique=True, fractional=False, trim="-")


def pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f} %"


_money_axis = FuncFormatter(lambda v, _: usd(v, 3))


# a caption line's height as a share of the page (9.5 pt type, matplotlib's 1.2 line spacing)
_CAPTION_LINE = 9.5 * 1.2 / 72 / A4[1]


def new_figure(figsize: tuple[float, float] = A4) -> Figure:
    """An A4 figure of its own, outside pyplot: nothing registered in the process (no
    figure to close, no backend chosen for whoever imports kzsim; pyplot's import cost
    ~0.09 s of every report), drawn by Agg (a notebook shows it as it shows any figure)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _title(fig: Figure, title: str) -> None:
    """The page's title, in 16 pt unless that runs past the right margin (long scenario
    names): then as much smaller as it needs to fit."""
    text = fig.text(0.08, 0.95, title, fontsize=16, weight="bold", color=BLUE)
    width = text.get_window_extent().width / fig.bbox.width  # the figure's own renderer, whatever the backend
    room = 0.92 - 0.08
    if width > room:
        text.set_fontsize(16 * room / width)


def _caption(fig: Figure, caption: str) -> None:
    """The caption at the foot of the page, as high as its lines need (up to the axes' labels)."""
    lines = textwrap.wrap(caption, 100)
    top = max(0.06, 0.025 + len(lines) * _CAPTION_LINE)
    fig.text(0.08, top, "\n".join(lines), fontsize=9.5, color="#333333", va="top")


def _page(title: str, caption: str) -> tuple[Figure, Axes]:
    fig = new_figure()
    _title(fig, title)
    _caption(fig, caption)
    ax = fig.add_axes([0.14, 0.20, 0.80, 0.68])
    ax.grid(True, alpha=0.3)
    return fig, ax


def _date_axis(ax) -> None:
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    # each label's end at its tick (right-aligned at 30 degrees), set for the ticks the axis
    # will make: asking for the labels here made them twice (~5 ms a chart)
    ax.tick_params(axis="x", labelrotation=30, labelrotation_mode="xtick")


def profit_distribution(results) -> Figure:
    s = results.summary
    profit = results.run.per_path["profit_usd"]
    fig, ax = _page(
        "Profit after tax over the horizon",
        f"Distribution of after-tax profit over {s['horizon_days']} days across {s['paths']:,} paths. "
        "Red lines mark Value at Risk (VaR) at 95 % and 99 %, dashed lines the expected shortfall "
        "(CVaR): the mean loss in the worst 5 % and 1 % of paths. Positive VaR is a loss.",
    )
    bins = min(120, max(20, int(math.sqrt(profit.size))))
    if np.ptp(profit) == 0:
        ax.axvline(profit[0], color=BLUE, lw=4, label="every path")
    else:
        # one filled outline, not a bar patch a bin (the same picture, drawn in a fraction of the time)
        ax.hist(profit, bins=bins, histtype="stepfilled", color=BLUE, alpha=0.75, label="paths")
    ax.axvline(0, color="black", lw=1)
    ax.axvline(s["profit_usd"]["mean"], color=GREEN, lw=2, label=f"mean {usd(s['profit_usd']['mean'])}")
    for level, style in ((95, "-"), (99, "-")):
        ax.axvline(
            -s[f"var_{level}_usd"],
            color=RED,
            ls=style,
            lw=1.5 if level == 95 else 2.5,
            label=f"VaR {level} %: {usd(s[f'var_{level}_usd'])} loss",
        )
        ax.axvline(
            -s[f"cvar_{level}_usd"],
            color=RED,
            ls="--",
            lw=1.2 if level == 95 else 2.2,
            label=f"CVaR {level} %: {usd(s[f'cvar_{level}_usd'])} loss",
        )
    ax.xaxis.set_major_formatter(_money_axis)
    ax.set_xlabel("profit after tax [USD]")
    ax.set_ylabel("number of paths")
    ax.legend(loc="upper left", fontsize=9, framealpha=0.9)
    return fig


def _fan(ax, dates, q, colour, label):
    ax.fill_between(dates, q[0], q[4], color=colour, alpha=0.15, label=f"{label}: 5-95 %")
    ax.fill_between(dates, q[1], q[3], color=colour, alpha=0.30, label=f"{label}: 25-75 %")
    ax.plot(dates, q[2], color=colour, lw=2, label=f"{label}: median")


def _bands_note(run) -> str:
    """Where the bands come from and how far sampling can move them (the caption's words)."""
    n = run.sample_paths
    edge, median = stats.quantile_estimate_levels(n, 0.05), stats.quantile_estimate_levels(n, 0.5)
    which = (
        f"the first {n:,} paths (the same for any path count: more paths sharpen the mean, not the bands)"
        if n < run.paths
        else f"all {n:,} paths"
    )
    return (
        f"Bands: percentiles over {which}; sampling moves a 5 % edge within the model's "
        f"{pct(edge[0])} - {pct(edge[1])} percentiles and the median within {pct(median[0])} - {pct(median[1])} "
        "(95 % confidence; per-day intervals in timeseries.csv)."
    )


def pnl_fan(results) -> Figure:
    run = results.run
    fig, ax = _page(
        "Cumulative profit and loss",
        "Cumulative after-tax P&L per day (coins not yet sold are marked to market; tax is charged at "
        f"each fiscal year end; depreciation accrues daily). {_bands_note(run)} The dashed line is the "
        f"mean of all {run.paths:,} paths.",
    )
    dates = run.dates.astype("datetime64[D]").astype(object)
    _fan(ax, dates, run.daily_quantiles["cum_pnl_usd"], BLUE, "P&L")
    ax.plot(dates, run.daily_mean["cum_pnl_usd"], color=GREEN, lw=1.5, ls="--", label="mean (all paths)")
    ax.axhline(0, color="black", lw=1)
    ax.yaxis.set_major_formatter(_money_axis)
    ax.set_ylabel("cumulative P&L [USD]")
    _date_axis(ax)
    ax.legend(loc="lower left", fontsize=9)
    return fig


def financing_page(results, reading: str) -> Figure:
    """The cash balance over time (fan, with the zero line) and the owners' IRR across paths."""
    run = results.run
    fig = new_figure()
    _title(fig, "Cash, the loan and the owners' return")
    _caption(
        fig,
        "Top: the bank balance each day (starting cash, plus the farm's cash after tax and hedges, less interest "
        f"and principal); below zero the owners must put in more or the farm stops. {_bands_note(run)} "
        "Bottom: the owners' IRR a year on each path (their outlay on day 0, each month's cash, and at the end "
        "the cash left less the loan still owed; machines count for nothing at the end); -100 % is a path on "
        "which nothing comes back.",
    )
    fig.text(0.08, 0.925, "\n".join(textwrap.wrap(reading, 100)), fontsize=9.5, va="top")
    ax = fig.add_axes([0.14, 0.50, 0.80, 0.31])
    dates = run.dates.astype("datetime64[D]").astype(object)
    _fan(ax, dates, run.daily_quantiles["cash_usd"], BLUE, "cash")
    ax.plot(dates, run.daily_mean["cash_usd"], color=GREEN, lw=1.5, ls="--", label="mean (all paths)")
    ax.axhline(0, color=RED, lw=1.5, label="zero: the cash runs out")
    ax.yaxis.set_major_formatter(_money_axis)
    ax.set_ylabel("cash in the bank [USD]")
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.legend(loc="lower left", fontsize=8)
    low = fig.add_axes([0.14, 0.17, 0.80, 0.22])
    irr = run.per_path["irr_per_year"]
    irr = irr[np.isfinite(irr)]
    if irr.size and np.ptp(irr) > 0:
        low.hist(np.clip(irr, -1.0, 2.0), bins=60, histtype="stepfilled", color=BLUE, alpha=0.8)
    elif irr.size:
        low.axvline(irr[0], color=BLUE, lw=4)
    hurdle = results.scenario.financing.hurdle_irr_per_year
    if hurdle.is_fixed:
        low.axvline(hurdle.value, color=RED, lw=1.5, label=f"hurdle {pct(hurdle.value)}")
        low.legend(loc="upper right", fontsize=9)
    low.xaxis.set_major_formatter(FuncFormatter(lambda v, _: pct(v, 0)))
    low.set_xlabel("owners' IRR a year (above 200 % drawn at 200 %)")
    low.set_ylabel("number of paths")
    low.grid(True, alpha=0.3)
    return fig


def hashprice_fan(results, reading: str = "") -> Figure:
    """Hashprice (USD per TH/s per day) over time, with the farm's cash break-even hashprice;
    ``reading`` (what the operating policy did) is printed above the caption."""
    run, s = results.run, results.summary
    h = s["hashprice_usd_per_th_day"]
    fig, ax = _page(
        "Hashprice",
        "Revenue of one TH/s for a day [USD] = BTC price x (subsidy + fees) x 86,400 / (difficulty x 2^32) x 10^12: "
        f"what the network pays for hashing, before the pool fee. {_bands_note(run)} The dashed line is the "
        f"mean of all {run.paths:,} paths; dotted: the farm's cash cost per "
        f"TH/s-day at full uptime ({usd(h['farm_cash_cost_per_th_day'], 3)}); below it, a day of mining loses cash. "
        f"Hashprice was under it on {pct(h['share_of_days_below_cash_cost'])} of path-days.",
    )
    dates = run.dates.astype("datetime64[D]").astype(object)
    _fan(ax, dates, run.daily_quantiles["hashprice_usd_per_th_day"], BLUE, "hashprice")
    ax.plot(dates, run.daily_mean["hashprice_usd_per_th_day"], color=GREEN, lw=1.5, ls="--", label="mean (all paths)")
    ax.axhline(h["farm_cash_cost_per_th_day"], color=RED, lw=1.5, ls=":", label="farm cash cost per TH/s-day")
    ax.set_ylabel("hashprice [USD per TH/s per day]")
    ax.set_ylim(bottom=0)
    if reading:
        ax.set_position([0.14, 0.40, 0.80, 0.50])
        fig.text(0.08, 0.32, "\n".join(textwrap.wrap(reading, 95)), fontsize=10.5, va="top")
    _date_axis(ax)
    ax.legend(loc="upper right", fontsize=9)
    return fig


def network_fans(results) -> Figure:
    """Difficulty and the network's fees a day over time, against their start values."""
    run = results.run
    fig, ax = _page(
        "The network: difficulty and fees",
        "Top: difficulty in force each day, as a multiple of the start's (retargets every 2,016 blocks follow the "
        "network's hashrate: its trend, drawdown events and response to the price). Bottom: transaction fees the "
        f"whole network earns a day [BTC], with the start's level dotted. {_bands_note(run)} The dashed lines are "
        f"the means of all {run.paths:,} paths.",
    )
    dates = run.dates.astype("datetime64[D]").astype(object)
    ax.set_position([0.14, 0.58, 0.80, 0.32])
    start = run.daily_mean["difficulty"][0]
    _fan(ax, dates, run.daily_quantiles["difficulty"] / start, BLUE, "difficulty")
    ax.plot(dates, run.daily_mean["difficulty"] / start, color=GREEN, lw=1.5, ls="--", label="mean (all paths)")
    ax.axhline(1.0, color="black", lw=1)
    ax.set_ylabel("difficulty / start")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    low = fig.add_axes([0.14, 0.20, 0.80, 0.28])
    low.grid(True, alpha=0.3)
    _fan(low, dates, run.daily_quantiles["fees_btc_per_day"], ORANGE, "fees")
    low.plot(dates, run.daily_mean["fees_btc_per_day"], color=GREEN, lw=1.5, ls="--", label="mean (all paths)")
    low.axhline(run.daily_quantiles["fees_btc_per_day"][2][0], color="black", lw=1, ls=":", label="start (median)")
    low.set_ylabel("network fees [BTC per day]")
    low.set_ylim(bottom=0)
    low.legend(loc="upper left", fontsize=8)
    _date_axis(low)
    return fig


def cost_vs_price(results) -> Figure:
    run, s = results.run, results.summary
    cash = s["cost_per_btc_usd"]["cash"]
    all_in = s["cost_per_btc_usd"]["all_in"]
    fig, ax = _page(
        "Cost per BTC against the BTC price",
        "Simulated BTC price (bands: 5-95 % and 25-75 % over the paths of the P&L page, line: median) "
        "against the cost of mining one BTC in this scenario: cash cost (power, mining fee, procurement, opex, compliance) and all-in cost "
        "(plus depreciation and profit tax), medians over paths with their 5-95 % range shaded. "
        "Grey lines: the article's $27,000 and listed miners' published cash cost (Q2 2025).",
    )
    dates = run.dates.astype("datetime64[D]").astype(object)
    _fan(ax, dates, run.daily_quantiles["btc_price_usd"], BLUE, "BTC price")
    for name, st, colour in (("cash cost", cash, ORANGE), ("all-in cost", all_in, RED)):
        ax.axhspan(st["p05"], st["p95"], color=colour, alpha=0.08)
        ax.axhline(st["p50"], color=colour, lw=2.2, label=f"{name} per BTC: median {usd(st['p50'])}")
    ax.axhline(ARTICLE_COST_PER_BTC_USD, color=GREY, lw=1.5, ls=":", label="article: $27,000 (2025)")
    ax.axhline(
        LISTED_MINERS_CASH_COST_PER_BTC_USD,
        color=GREY,
        lw=1.5,
        ls="--",
        label="listed miners' cash cost: $74,600 (Q2 2025)",
    )
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ticks = [
        m * 10.0**e
        for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1)
        for m in (1, 2, 5)
    ]
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(_money_axis)
    ax.set_ylabel("USD per BTC (log scale)")
    _date_axis(ax)
    ax.legend(loc="upper left", fontsize=8.5, ncol=2)
    return fig


def downtime(results) -> Figure:
    s, run = results.summary, results.run
    years = s["horizon_days"] / 365.0
    fig = new_figure()
    _title(fig, "Downtime by cause")
    caption = (
        "Top: mean hours a year the farm stood still, by cause, in full-farm hours (an hour is counted once: "
        "grid outages first, then failed payments, hardware, then the purchase quota). Bottom: share of "
        "the time the farm hashed, across paths."
    )
    _caption(fig, caption)
    ax1 = fig.add_axes([0.18, 0.58, 0.74, 0.32])
    causes = list(s["downtime_hours"])
    hours = [s["downtime_hours"][c] / years for c in causes]
    bars = ax1.barh(causes, hours, color=[CAUSE_COLOURS[c] for c in causes])
    for bar, h in zip(bars, hours):
        ax1.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {h:,.0f} h/yr", va="center", fontsize=10)
    ax1.set_xlabel("mean downtime [hours per year]")
    ax1.invert_yaxis()
    ax1.grid(True, axis="x", alpha=0.3)
    ax1.set_xlim(0, max(hours + [1.0]) * 1.25)
    ax2 = fig.add_axes([0.18, 0.18, 0.74, 0.30])
    up = run.per_path["up_fraction"]
    if np.ptp(up) == 0:
        ax2.axvline(up[0], color=GREEN, lw=4)
    else:
        ax2.hist(up, bins=60, histtype="stepfilled", color=GREEN, alpha=0.8)
    ax2.axvline(up.mean(), color="black", lw=1.5, label=f"mean {pct(up.mean())}")
    ax2.set_xlabel("up fraction over the horizon [share of hours]")
    ax2.set_ylabel("number of paths")
    ax2.legend(fontsize=9)
    ax2.grid(True, alpha=0.3)
    return fig


def cost_breakdown(results) -> Figure:
    s = results.summary
    btc = s["btc_mined"]["mean"]
    labels = {
        "energy_cost": "electricity",
        "mining_fee": "mining fee on power",
        "procurement_fee": "platform / lot fees",
        "fixed_opex": "fixed opex",
        "hardware_replacement": "machine replacements",
        "shutoff_restart": "restarts after shut-offs",
        "compliance": "compliance",
        "depreciation": "depreciation (capex)",
        "profit_tax": "profit tax",
    }
    costs = s["costs_usd"]
    total = sum(costs.values())
    fig, ax = _page(
        "Where the money goes",
        "Mean cost per BTC mined, by line, over all paths (mean cost of the line / mean BTC mined). "
        "The percentages are shares of all costs including depreciation and tax.",
    )
    ax.set_position([0.30, 0.20, 0.64, 0.68])
    names = [labels[k] for k in costs]
    per_btc = [v / btc if btc > 0 else 0.0 for v in costs.values()]
    colours = {
        "energy_cost": BLUE,
        "mining_fee": ORANGE,
        "compliance": ORANGE,
        "depreciation": RED,
        "profit_tax": GREEN,
    }
    bars = ax.barh(names, per_btc, color=[colours.get(k, GREY) for k in costs])
    for bar, v, c in zip(bars, per_btc, costs.values()):
        share = c / total if total > 0 else 0.0
        ax.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {usd(v)}  ({pct(share)})", va="center", fontsize=10
        )
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_money_axis)
    ax.set_xlabel("USD per BTC mined")
    ax.set_xlim(0, max(per_btc + [1.0]) * 1.35)
    return fig


def text_page(title: str, blocks: list[tuple[str, str, bool]], *, size: float = 10.0) -> Figure:
    """A page of headed paragraphs: ``blocks`` of (heading, text, monospace); text may hold newlines."""
    return text_pages(title, blocks, size=size, overflow=False)[0]


def text_pages(
    title: str, blocks: list[tuple[str, str, bool]], *, size: float = 10.0, overflow: bool = True
) -> list[Figure]:
    """Headed paragraphs on as many pages as they need: a block that would run off the foot
    of a page starts the next one ("... (continued)"); ``overflow=False`` keeps one page."""
    pages = [new_figure()]
    _title(pages[0], title)
    y = 0.91
    for heading, text, mono in blocks:
        lines = []
        width, fsize = (92, size * 0.88) if mono else (98, size)
        for para in text.split("\n"):
            lines.extend(textwrap.wrap(para, width, subsequent_indent="    " if mono else "") or [""])
        height = (0.027 if heading else 0.0) + 0.0175 * len(lines) * fsize / 10
        if overflow and y - height < 0.06 and y < 0.91:  # (above the first page's footer)
            pages.append(new_figure())
            _title(pages[-1], f"{title} (continued)")
            y = 0.91
        fig = pages[-1]
        if heading:
            fig.text(0.08, y, heading, fontsize=11.5, weight="bold", color="#222222", va="top")
            y -= 0.027
        fig.text(
            0.08,
            y,
            "\n".join(lines),
            fontsize=fsize,
            va="top",
            family="monospace" if mono else "sans-serif",
            linespacing=1.35,
        )
        y -= 0.0175 * len(lines) * fsize / 10 + 0.02
    return pages


def table_pages(title: str, rows: list[tuple[str, str]], per_page: int = 52) -> list[Figure]:
    """Two-column tables (key, value) over as many pages as needed; a long key or value
    wraps onto the lines below it (at most ``per_page`` lines a page)."""
    key_width, value_width = 44, 50  # characters of 8.5 pt Courier in each column
    wrapped = [
        (textwrap.wrap(key, key_width) or [""], textwrap.wrap(value, value_width, break_on_hyphens=False) or [""])
        for key, value in rows
    ]
    pages: list[list[tuple[list[str], list[str]]]] = [[]]
    used = 0
    for key_lines, value_lines in wrapped:
        height = max(len(key_lines), len(value_lines))
        if used + height > per_page and pages[-1]:
            pages.append([])
            used = 0
        pages[-1].append((key_lines, value_lines))
        used += height
    figs = []
    for number, chunk in enumerate(pages):
        fig = new_figure()
        suffix = "" if number == 0 else " (continued)"
        _title(fig, title + suffix)
        y = 0.91
        for key_lines, value_lines in chunk:
            fig.text(0.08, y, "\n".join(key_lines), fontsize=8.5, family="monospace", va="top")
            fig.text(0.50, y, "\n".join(value_lines), fontsize=8.5, family="monospace", va="top")
            y -= 0.0162 * max(len(key_lines), len(value_lines))
        figs.append(fig)
    return figs


PALETTE = (BLUE, RED, GREEN, ORANGE, GREY, "#8e44ad")


def compare_distributions(comparison) -> Figure:
    fig, ax = _page(
        "Profit after tax, scenario by scenario",
        "Distribution of after-tax profit over the horizon under each scenario, all simulated on the same "
        "random draws (common random numbers); vertical lines mark each scenario's mean.",
    )
    profits = [r.run.per_path["profit_usd"] for r in comparison.results]
    lo = min(float(p.min()) for p in profits)
    hi = max(float(p.max()) for p in profits)
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 80)
    for name, profit, colour in zip(comparison.names, profits, PALETTE * 3, strict=False):
        ax.hist(profit, bins=bins, histtype="step", lw=2, color=colour, label=f"{name}: mean {usd(profit.mean())}")
        ax.axvline(profit.mean(), color=colour, lw=1.2, ls="--")
    ax.axvline(0, color="black", lw=1)
    ax.xaxis.set_major_formatter(_money_axis)
    ax.set_xlabel("profit after tax [USD]")
    ax.set_ylabel("number of paths")
    ax.legend(loc="upper left", fontsize=9)
    return fig


def compare_differences(comparison) -> Figure:
    base = comparison.names[0]
    fig, ax = _page(
        f"Difference against {base}, path by path",
        f"Per-path difference in after-tax profit of each scenario minus {base}, on common random numbers. "
        "P(better) is the share of paths where the scenario earns more than the baseline (95 % Wilson "
        "interval in brackets); the mean difference carries its paired standard error.",
    )
    for i, (r, d) in enumerate(zip(comparison.results[1:], comparison.differences, strict=True)):
        diff = r.run.per_path["profit_usd"] - comparison.results[0].run.per_path["profit_usd"]
        lo, hi = d["p_better_ci95"]
        label = (
            f"{r.scenario.name}: mean {usd(d['mean_usd'])} (SE {usd(d['mean_se_usd'], 2)}), "
            f"P(better) {pct(d['p_better'])} [{pct(lo)}, {pct(hi)}]"
        )
        colour = PALETTE[(i + 1) % len(PALETTE)]
        if np.ptp(diff) == 0:
            ax.axvline(diff[0], color=colour, lw=3, label=label)
        else:
            ax.hist(diff, bins=80, histtype="stepfilled", alpha=0.35, color=colour, label=label)
    ax.axvline(0, color="black", lw=1)
    ax.xaxis.set_major_formatter(_money_axis)
    ax.set_xlabel(f"profit after tax minus {base} [USD]")
    ax.set_ylabel("number of paths")
    ax.legend(loc="upper left", fontsize=8.5)
    return fig


def tornado_chart(table, scenario_name: str) -> Figure:
    """Two tornado panels: change in mean profit and in P(loss) at each input's percentiles."""
    low, high = table.attrs.get("low", 0.1), table.attrs.get("high", 0.9)
    fig = new_figure()
    _title(fig, f"What drives the result: {scenario_name}")
    caption = (
        f"Each uncertain input fixed at its {low:.0%} (light) and {high:.0%} (dark) percentile, everything else "
        "as in the scenario, on common random numbers. Bars: change against the scenario as given (mean profit "
        f"{usd(table.attrs['base_mean_profit_usd'])}, P(loss) {pct(table.attrs['base_p_loss'])}); inputs sorted by "
        "the swing of mean profit. Price, outage and payment randomness stay random in every run."
    )
    _caption(fig, caption)
    rows = table.head(15)
    names = list(rows["parameter"])
    y = np.arange(len(names))
    panels = (
        ("delta_mean_profit_{}_usd", 1.0, "change in mean profit after tax [USD]", _money_axis),
        ("delta_p_loss_{}", 100.0, "change in P(loss) [percentage points]", None),
    )
    for k, (column, scale, label, fmt) in enumerate(panels):
        ax = fig.add_axes([0.42, 0.56 - k * 0.40, 0.52, 0.34])
        ax.barh(
            y - 0.2,
            scale * rows[column.format("low")],
            height=0.4,
            color="#9dc3e6",
            label=f"input at its {low:.0%} percentile",
        )
        ax.barh(
            y + 0.2,
            scale * rows[column.format("high")],
            height=0.4,
            color=BLUE,
            label=f"input at its {high:.0%} percentile",
        )
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        if fmt is not None:
            ax.xaxis.set_major_formatter(fmt)
        ax.set_xlabel(label)
        ax.grid(True, axis="x", alpha=0.3)
        if k == 0:
            ax.legend(fontsize=8, loc="lower right")
    return fig


SWEEP_FIGURES = (
    ("p_loss", "P(loss after tax)", lambda v: pct(v, 1)),
    ("mean_profit_usd", "mean profit after tax [USD]", usd),
    ("all_in_cost_per_btc_p50_usd", "all-in cost per BTC, median [USD]", usd),
)


def sweep_chart(table, keys: list[str], scenario_name: str) -> Figure:
    """Line panels (one parameter) or heat maps (two) of P(loss), mean profit and cost per BTC."""
    fig = new_figure()
    _title(fig, f"Sweep: {scenario_name}")
    if len(keys) == 1:
        caption = (
            "Each point is a run with the parameter fixed at that value, all on common random numbers; "
            "bands: 95 % intervals (Wilson for P(loss), mean +- 1.96 standard errors for profit)."
        )
    else:
        caption = (
            "Each cell is a run with both parameters fixed at its values, all on common random numbers; "
            "the number in a cell is its value."
        )
    _caption(fig, caption)
    x = table[keys[0]].to_numpy()
    for k, (column, label, fmt) in enumerate(SWEEP_FIGURES):
        ax = fig.add_axes([0.16, 0.70 - k * 0.27, 0.74, 0.19])
        if len(keys) == 1:
            y = table[column].to_numpy()
            ax.plot(x, y, "o-", color=BLUE)
            if column == "p_loss":
                ax.fill_between(x, table["p_loss_ci95_low"], table["p_loss_ci95_high"], color=BLUE, alpha=0.2)
            elif column == "mean_profit_usd":
                se = table["mean_profit_se_usd"].to_numpy()
                ax.fill_between(x, y - 1.96 * se, y + 1.96 * se, color=BLUE, alpha=0.2)
                ax.axhline(0, color="black", lw=1)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, f=fmt: f(v)))
            ax.set_xlabel(keys[0])
            ax.grid(True, alpha=0.3)
        else:
            grid = table.pivot(index=keys[1], columns=keys[0], values=column)
            image = ax.imshow(
                grid.to_numpy(),
                origin="lower",
                aspect="auto",
                cmap="RdYlBu_r" if column != "mean_profit_usd" else "RdYlBu",
            )
            ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], fontsize=8)
            ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index], fontsize=8)
            ax.set_xlabel(keys[0])
            ax.set_ylabel(keys[1], fontsize=8)
            if grid.size <= 64:
                for (i, j), v in np.ndenumerate(grid.to_numpy()):
                    ax.text(j, i, fmt(v), ha="center", va="center", fontsize=7)
            fig.colorbar(image, ax=ax, format=FuncFormatter(lambda v, _, f=fmt: f(v)))
        ax.set_title(label, fontsize=11, loc="left")
    return fig


HEDGE_COLOURS = (BLUE, ORANGE, GREEN, RED, GREY)


def hedge_frontier_chart(table, scenario_name: str, reading: str) -> Figure:
    """Expected profit against CVaR 95 % and P(loss) against the hedge ratio, a line per hedge."""
    fig = new_figure()
    _title(fig, f"Hedge frontier: {scenario_name}")
    _caption(
        fig,
        "Each point is a run with one hedge at one size (hedge ratio: the share of the hashrate or of the coins "
        "sold forward; for options, of the BTC expected to be mined until expiry), all on the same paths. Up and "
        "to the left is better: more expected profit, a smaller loss in the worst 5 % of paths.",
    )
    fig.text(0.08, 0.925, "\n".join(textwrap.wrap(reading, 100)), fontsize=9.5, va="top")
    base = table[table["hedge"] < 0].iloc[0]
    ax = fig.add_axes([0.16, 0.45, 0.74, 0.31])
    ax.plot([base["cvar_95_usd"]], [base["mean_profit_usd"]], "ks", ms=8, label="no hedge")
    low = fig.add_axes([0.16, 0.15, 0.74, 0.21])
    for i, (hedge, rows) in enumerate(table[table["hedge"] >= 0].groupby("hedge", sort=True)):
        colour = HEDGE_COLOURS[i % len(HEDGE_COLOURS)]
        name = rows["label"].iloc[-1].split(":")[0]
        ax.plot(rows["cvar_95_usd"], rows["mean_profit_usd"], "o-", color=colour, label=f"{hedge}: {name}")
        for _, r in rows.iloc[[0, -1]].iterrows():
            ax.annotate(
                f"{r['ratio']:g}",
                (r["cvar_95_usd"], r["mean_profit_usd"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        low.plot(rows["ratio"], rows["p_loss"], "o-", color=colour, label=f"{hedge}: {name}")
        low.fill_between(rows["ratio"], rows["p_loss_ci95_low"], rows["p_loss_ci95_high"], color=colour, alpha=0.15)
    ax.set_xlabel("CVaR 95 %: mean loss in the worst 5 % of paths [USD] (smaller is better)")
    ax.set_ylabel("expected profit after tax [USD]")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: usd(v, 4)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: usd(v, 4)))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("expected profit against tail loss (end points labelled with their ratio)", fontsize=11, loc="left")
    low.set_xlabel("hedge ratio")
    low.set_ylabel("P(loss after tax)")
    low.yaxis.set_major_formatter(FuncFormatter(lambda v, _: pct(v, 1)))
    low.grid(True, alpha=0.3)
    low.set_title("P(loss) with its 95 % interval", fontsize=11, loc="left")
    return fig


def convergence(results) -> Figure:
    """Running estimates of mean profit, P(loss) and the 99 % CVaR against the number of paths."""
    from kzsim.stats import running_estimates

    est = running_estimates(results.run.per_path["profit_usd"])
    fig = new_figure()
    _title(fig, "Have we run enough paths?")
    caption = (
        "Estimates from the first n paths of the run, with their 95 % bands (mean +- 1.96 standard errors; "
        "P(loss) +- 1.96 sqrt(p(1-p)/n); the CVaR, the mean loss in the worst 1 % of paths, +- 1.96 its standard "
        "error, from the spread of those paths and the uncertainty of where the worst 1 % starts). When the "
        "bands are narrow against the differences that matter to you, more paths would not change the answer; "
        "`kzsim run --target-se` adds paths until P(loss) is known to a given standard error, and "
        "`--target-of cvar_99` until the CVaR is. " + precision_text(results.summary.get("precision"))
    )
    _caption(fig, caption.strip())
    n = est["paths"]
    panels = (
        ("mean", "mean profit after tax [USD]", _money_axis),
        ("p_loss", "P(loss after tax)", FuncFormatter(lambda v, _: pct(v, 1))),
        ("cvar_99", "99 % CVaR: the mean loss in the worst 1 % of paths [USD]", _money_axis),
    )
    for k, (key, label, fmt) in enumerate(panels):
        ax = fig.add_axes([0.16, 0.70 - k * 0.255, 0.78, 0.19])
        y, se = est[key], est[f"{key}_se"]
        lo, hi = y - 1.96 * se, y + 1.96 * se
        if key == "p_loss":
            lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
        ax.fill_between(n, lo, hi, color=BLUE, alpha=0.2, label="95 % band")
        ax.plot(n, y, color=BLUE, lw=2, label="running estimate")
        ax.axhline(y[-1], color=GREY, lw=1, ls="--", label=f"all {n[-1]:,} paths")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # (all of 2..9: 150 ticks, a third of the page's time)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(fmt)
        ax.set_xlabel("paths")
        ax.set_title(label, fontsize=11, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def precision_text(precision: dict | None) -> str:
    """What a ``--target-se`` run did, in words ("" for a run of a fixed path count)."""
    if not precision:
        return ""
    measure = precision.get("measure", "p_loss")
    target = precision["target_se"]
    if measure == "p_loss":
        what, goal = "P(loss)", pct(target, 2)
    elif measure == "mean":
        what, goal = "mean profit", usd(target)
    else:
        kind, level = measure.split("_")  # var_99, cvar_95...
        what, goal = f"the {level} % {'VaR' if kind == 'var' else 'CVaR'}", usd(target)
    steps = " -> ".join(f"{r['paths']:,}" for r in precision["rounds"])
    outcome = "reached" if precision["reached"] else f"not reached at the cap of {precision['max_paths']:,} paths"
    return f"This run added paths until the standard error of {what} was at most {goal}: {steps} paths ({outcome})."


def sobol_chart(table, scenario_name: str, reading: str) -> Figure:
    """First-order and total Sobol indices with their 95 % intervals, and the reading in words."""
    fig = new_figure()
    _title(fig, f"Global sensitivity (Sobol): {scenario_name}")
    fig.text(0.08, 0.91, "\n".join(textwrap.wrap(reading, 100)), fontsize=9.5, va="top")
    caption = (
        "Share of the variance of profit after tax explained by each uncertain input: alone (first-order S1) and "
        "with its interactions (total ST), with 95 % bootstrap intervals; Saltelli design with "
        f"{table.attrs.get('n_base', 0):,} base samples ({table.attrs.get('evaluations', 0):,} paths), price, outage "
        "and payment draws shared across the design (common random numbers)."
    )
    _caption(fig, caption)
    rows = table.head(15)
    y = np.arange(len(rows))
    ax = fig.add_axes([0.42, 0.16, 0.52, 0.56])
    ax.barh(y - 0.2, rows["S1"], xerr=rows["S1_conf"], height=0.4, color="#9dc3e6", label="first order S1")
    ax.barh(y + 0.2, rows["ST"], xerr=rows["ST_conf"], height=0.4, color=BLUE, label="total ST")
    ax.set_yticks(y, list(rows["parameter"]), fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: pct(v, 0)))
    ax.set_xlabel("share of the variance of profit after tax")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=9, loc="lower right")
    return fig
