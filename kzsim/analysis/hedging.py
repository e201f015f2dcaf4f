"""The hedge frontier: each hedge of a scenario at a range of sizes, on common random numbers.

Every run uses the same seed, so the same paths (BTC price, network, outages...) meet every
hedge size: differences between rows are the hedges' own, not noise between runs. A row's
cost is what the hedge takes from expected profit (with its paired standard error); its
protection what it adds back to the worst 5 % of paths (CVaR 95 %) and takes off P(loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from kzsim import stats
from kzsim.analysis.sensitivity import PathsDone, _runner
from kzsim.analysis.summary import hedge_label
from kzsim.scenario.schema import Scenario

FRONTIER_COLUMNS = (
    "hedge",
    "label",
    "ratio",
    "size",
    "mean_profit_usd",
    "mean_profit_se_usd",
    "cost_usd",
    "cost_se_usd",
    "profit_sd_usd",
    "p_loss",
    "p_loss_ci95_low",
    "p_loss_ci95_high",
    "var_95_usd",
    "cvar_95_usd",
    "cvar_95_se_usd",
    "cvar_95_reduction_usd",
    "protection_per_usd",
    "premium_usd",
    "p_cash_runs_out",
)


def sized(hedge, ratio: float, btc_to_expiry: float) -> dict:
    """``hedge`` (a scenario's) as a mapping at hedge ratio ``ratio``: swaps and forwards on
    that share of the hashrate or of the coins; options on that share of the BTC the farm
    is expected to mine until their expiry (``btc_to_expiry``)."""
    data = hedge.model_dump(mode="json", by_alias=True, exclude_none=True)
    if hedge.type in ("hashprice_swap", "production_forward"):
        data["share"] = ratio
    else:
        data["notional_btc"] = ratio * btc_to_expiry
    return data


def hedge_frontier(
    scenario: Scenario,
    ratios: list[float],
    *,
    paths: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Each hedge of ``scenario`` on its own, at each hedge ratio, against no hedge at all.

    Returns one row per (hedge, ratio) and a first row without hedges (``hedge`` -1, ratio
    0): expected profit with its standard error, the cost against no hedge (paired on the
    same paths, with its standard error), the spread, P(loss) with its Wilson interval, VaR
    and CVaR 95 %, how much CVaR the hedge removes and per dollar of expected profit it
    costs (``protection_per_usd``; empty when it costs nothing or less than 2 standard
    errors), the premium, and with ``financing`` P(cash runs out).
    """
    if not scenario.hedges:
        raise ValueError("the scenario has no hedges (allowed: a scenario with a `hedges:` list)")
    run = _runner(paths, seed, **kwargs)
    n_runs = 1 + len(scenario.hedges) * len([r for r in ratios if r > 0])
    done = PathsDone(progress, n_runs * (scenario.simulation.paths if paths is None else paths))
    base_run = run(scenario.replace(hedges=[]), done.run()).per_path
    base = base_run["profit_usd"]
    horizon = scenario.simulation.horizon_days
    mined = float(base_run["btc_mined"].mean())
    rows = [_row(-1, "no hedge", 0.0, 0.0, base_run, base)]
    for i, hedge in enumerate(scenario.hedges):
        btc_to_expiry = mined * getattr(hedge, "expiry_days", horizon) / horizon
        for ratio in ratios:
            data = sized(hedge, ratio, btc_to_expiry)
            size = data.get("share", data.get("notional_btc"))
            variant = scenario.replace(hedges=[data])
            out = base_run if ratio == 0 else run(variant, done.run()).per_path  # no hedge is the base's paths
            rows.append(_row(i, hedge_label(variant.hedges[0]), ratio, size, out, base))
    return pd.DataFrame(rows, columns=list(FRONTIER_COLUMNS))


def _row(index: int, label: str, ratio: float, size: float, out: dict, base: np.ndarray) -> dict:
    profit = out["profit_usd"]
    n = profit.size
    losses = int(np.count_nonzero(profit < 0))
    lo, hi = stats.wilson_interval(losses, n)
    cvar, cvar_se = stats.expected_shortfall_and_se(profit, 0.95)
    base_cvar, _ = stats.expected_shortfall_and_se(base, 0.95)
    gap = base - profit  # what the hedge took from each path
    cost, cost_se = float(gap.mean()), stats.mean_se(gap)
    reduction = base_cvar - cvar
    per_usd = reduction / cost if cost > 2 * cost_se and cost > 0 else math.nan
    return {
        "hedge": index,
        "label": label,
        "ratio": ratio,
        "size": size,
        "mean_profit_usd": float(profit.mean()),
        "mean_profit_se_usd": stats.mean_se(profit),
        "cost_usd": cost,
        "cost_se_usd": cost_se,
        "profit_sd_usd": float(profit.std(ddof=1)) if n > 1 else 0.0,
        "p_loss": losses / n,
        "p_loss_ci95_low": lo,
        "p_loss_ci95_high": hi,
        "var_95_usd": stats.value_at_risk(profit, 0.95),
        "cvar_95_usd": cvar,
        "cvar_95_se_usd": cvar_se,
        "cvar_95_reduction_usd": reduction,
        "protection_per_usd": per_usd,
        "premium_usd": float(out["hedge_premium_usd"].mean()) if "hedge_premium_usd" in out else 0.0,
        "p_cash_runs_out": float(out["cash_runs_out"].mean()) if "cash_runs_out" in out else math.nan,
    }


def best_protection(table: pd.DataFrame) -> str:
    """One sentence: which hedge and size buys the most CVaR per dollar of expected profit,
    and which ones cost nothing on these paths."""
    rows = table[table["hedge"] >= 0]
    priced = rows[np.isfinite(rows["protection_per_usd"])]
    free = rows[(rows["ratio"] > 0) & (rows["cost_usd"] <= 2 * rows["cost_se_usd"])]
    parts = []
    if len(priced):
        top = priced.loc[priced["protection_per_usd"].idxmax()]
        parts.append(
            f"The most tail protection per dollar: {top['label']} at ratio {top['ratio']:g}, "
            f"${top['protection_per_usd']:.2f} of CVaR 95 % removed per $1 of expected profit given up "
            f"(cost ${top['cost_usd']:,.0f} +- {top['cost_se_usd']:,.0f})."
        )
    if len(free):
        names = [
            f"hedge {i} ({rows['label'].iloc[0].split(':')[0]}) at ratios " + ", ".join(f"{r:g}" for r in rows["ratio"])
            for i, rows in free.groupby("hedge", sort=True)
        ]
        parts.append(
            "These cost no expected profit on these paths (within 2 standard errors): their terms are at least "
            "as good as the model's own expectation (a fixed price at or above the expected one, a premium at or "
            "below the expected payoff), which a market may not offer: " + "; ".join(names) + "."
        )
    return " ".join(parts) or "No hedge size removed tail risk at a measurable cost."
