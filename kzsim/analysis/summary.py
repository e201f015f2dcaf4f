"""A run's summary (``summary.json``): headline figures with their standard errors, where the
scenario sits against published references, and the analyses a written run adds to it."""

from __future__ import annotations

import math

import numpy as np

from kzsim import stats
from kzsim.engine.merge import RunOutput
from kzsim.model.paths import start_difficulty, start_height
from kzsim.scenario.schema import Scenario
from kzsim.units import (
    ARTICLE_COST_PER_BTC_USD,
    J_PER_KWH,
    KWH_PER_MWH,
    LISTED_MINERS_CASH_COST_PER_BTC_USD,
    TH_TO_H,
    TWO_POW_32,
    subsidy_btc_at_height,
)

COST_LINES = (
    "energy_cost_usd",
    "mining_fee_usd",
    "procurement_fee_usd",
    "fixed_opex_usd",
    "hardware_replacement_usd",
    "shutoff_restart_usd",
    "compliance_usd",
    "depreciation_usd",
    "profit_tax_usd",
)
DOWNTIME_CAUSES = ("grid", "payment", "quota", "hardware", "economic")


def _finite_stats(x: np.ndarray, ci: bool = False) -> dict[str, float]:
    """Mean and 5/50/95 % percentiles of the finite values; with ``ci`` the mean's standard
    error and a distribution-free 95 % interval of the median."""
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    out = {"mean": float(finite.mean()) if finite.size else math.nan}
    out.update({k: v for k, v in stats.percentiles(finite, (5, 50, 95)).items()})
    if ci:
        out["mean_se"] = stats.mean_se(finite) if finite.size else math.nan
        out["p50_ci95"] = list(stats.quantile_ci(finite, 0.5)) if finite.size else [math.nan, math.nan]
    return out


def summarize(run: RunOutput) -> dict:
    """Headline figures with their Monte Carlo standard errors (``summary.json``)."""
    pp = run.per_path
    n = run.paths
    profit = pp["profit_usd"]
    losses = int(np.count_nonzero(profit < 0))
    p_loss = losses / n
    sc = run.scenario
    summary = {
        "scenario": sc.name,
        "paths": n,
        "seed": run.seed,
        "horizon_days": sc.simulation.horizon_days,
        "start_date": sc.simulation.start_date.isoformat(),
        "p_loss": p_loss,
        "p_loss_se": stats.proportion_se(p_loss, n),
        "p_loss_ci95": list(stats.wilson_interval(losses, n)),
    }
    for level in (95, 99):
        a = level / 100
        summary[f"var_{level}_usd"] = stats.value_at_risk(profit, a)
        lo, hi = stats.quantile_ci(profit, 1 - a)
        summary[f"var_{level}_ci95_usd"] = [-hi, -lo]
        summary[f"cvar_{level}_usd"], summary[f"cvar_{level}_se_usd"] = stats.expected_shortfall_and_se(profit, a)
    profit_stats = {"mean": float(profit.mean()), "std": float(profit.std(ddof=1)) if n > 1 else 0.0}
    profit_stats.update(stats.percentiles(profit))
    if sc.simulation.variance_reduction == "antithetic":
        from kzsim.model.rng import BLOCK_PATHS

        profit_stats["mean_se"] = stats.antithetic_mean_se(profit, BLOCK_PATHS)
    else:
        profit_stats["mean_se"] = stats.mean_se(profit)
    summary["profit_usd"] = profit_stats
    summary["cost_per_btc_usd"] = {
        "cash": _finite_stats(pp["cash_cost_per_btc_usd"], ci=True),
        "all_in": _finite_stats(pp["all_in_cost_per_btc_usd"], ci=True),
    }
    summary["btc_mined"] = _finite_stats(pp["btc_mined"])
    summary["btc_mined"]["mean_se"] = stats.mean_se(pp["btc_mined"])
    summary["uptime_fraction"] = {"mean": float(pp["up_fraction"].mean()), "mean_se": stats.mean_se(pp["up_fraction"])}
    summary["downtime_hours"] = {c: float(pp[f"downtime_{c}_hours"].mean()) for c in DOWNTIME_CAUSES}
    summary["grid_outages"] = {"mean": float(pp["grid_outages"].mean())}
    summary["revenue_usd"] = {"mean": float(pp["revenue_usd"].mean())}
    summary["costs_usd"] = {k.removesuffix("_usd"): float(pp[k].mean()) for k in COST_LINES}
    summary["npv_usd"] = _finite_stats(pp["npv_usd"])
    summary["npv_usd"]["mean_se"] = stats.mean_se(pp["npv_usd"])
    summary["capex_usd"] = {"mean": float(pp["capex_usd"].mean())}
    paid = np.isfinite(pp["payback_days"])
    summary["payback"] = {
        "share_within_horizon": float(paid.mean()),
        "median_days_when_paid_back": float(np.median(pp["payback_days"][paid])) if paid.any() else None,
    }
    if "payback_btc_days" in pp:  # with hedges or financing (kzsim.model.finance)
        paid_btc = np.isfinite(pp["payback_btc_days"])
        summary["payback"]["share_within_horizon_btc"] = float(paid_btc.mean())
    summary["payback"]["p_never_pays_back"] = _share(~paid, n)
    if "upgrade_day" in pp:
        swapped = np.isfinite(pp["upgrade_day"])
        summary["upgrade"] = {
            "to_model": sc.farm.upgrade.to_model,
            "share_of_paths": float(swapped.mean()),
            "median_day": float(np.median(pp["upgrade_day"][swapped])) if swapped.any() else None,
            "capex_usd_mean": float(pp["upgrade_capex_usd"].mean()),
            "old_machines_sale_usd_mean": float(pp["upgrade_sale_usd"].mean()),
        }
    if "resale_usd" in pp:
        summary["resale_usd"] = {**_finite_stats(pp["resale_usd"]), "mean_se": stats.mean_se(pp["resale_usd"])}
        summary["resale_usd"]["gain_over_book_mean"] = float(pp["resale_gain_usd"].mean())
    if sc.hedges:
        summary["hedges"] = hedge_summary(sc, pp)
    if sc.financing is not None:
        summary["financing"] = financing_summary(sc, pp)
    summary["max_drawdown_usd"] = _finite_stats(pp["max_drawdown_usd"])
    summary["hashprice_usd_per_th_day"] = {
        **_finite_stats(pp["mean_hashprice_usd_per_th_day"]),
        "farm_cash_cost_per_th_day": float(np.nanmean(pp["breakeven_hashprice_usd_per_th_day"])),
        "share_of_days_below_cash_cost": float(pp["losing_days"].mean() / sc.simulation.horizon_days),
    }
    summary["economic_shutoff"] = {
        "enabled": sc.farm.economic_shutoff,
        "days_mean": float(pp["economic_shutoff_days"].mean()),
        "margin_avoided_usd_mean": float(pp["economic_shutoff_margin_avoided_usd"].mean()),
        "margin_avoided_usd_mean_se": stats.mean_se(pp["economic_shutoff_margin_avoided_usd"]),
    }
    if sc.dependence is not None:
        dep = sc.dependence
        names, m = dep.names, dep.matrix
        summary["dependence"] = {
            "parameters": list(names),
            "pairs_asked": [[*c.between, c.rank_correlation] for c in dep.rank_correlations],
            "pairs_used": [
                [names[i], names[j], float(m[i, j])] for i in range(len(names)) for j in range(i + 1, len(names))
            ],
            "repaired": dep.max_change > 0,
            "max_change": dep.max_change,
        }
    summary["references"] = references(run)
    summary["timeseries_sample_paths"] = run.sample_paths
    return summary


def _share(hit: np.ndarray, n: int) -> dict:
    """A probability estimated from ``hit`` over n paths, with its standard error and Wilson 95 % interval."""
    k = int(np.count_nonzero(hit))
    return {"p": k / n, "se": stats.proportion_se(k / n, n), "ci95": list(stats.wilson_interval(k, n))}


def hedge_label(hedge) -> str:
    """One line that names a hedge of a scenario by what it is."""

    def value(d) -> str:
        return f"{d.value:,.6g}" if d.is_fixed else f"{d.dist} {d.mean():,.6g} (mean)"

    if hedge.type == "hashprice_swap":
        return (
            f"hashprice swap: {value(hedge.share)} of the hashrate at {value(hedge.fixed_usd_per_th_day)} USD/TH/s-day, "
            f"{hedge.months} months from day {hedge.start_day}"
        )
    if hedge.type == "production_forward":
        return (
            f"production forward: {value(hedge.share)} of the coins at {value(hedge.price_usd)} USD, "
            f"{hedge.months} months from day {hedge.start_day}"
        )
    if hedge.type == "btc_put":
        return (
            f"BTC put: {value(hedge.notional_btc)} BTC, strike {value(hedge.strike_usd)} USD, {hedge.expiry_days} days"
        )
    return (
        f"BTC collar: {value(hedge.notional_btc)} BTC, put {value(hedge.put_strike_usd)} / call "
        f"{value(hedge.call_strike_usd)} USD, {hedge.expiry_days} days"
    )


def hedge_summary(sc: Scenario, pp: dict[str, np.ndarray]) -> dict:
    """What the hedges paid and cost over the paths (``summary["hedges"]``)."""
    payoff, premium = pp["hedge_payoff_usd"], pp["hedge_premium_usd"]
    net = payoff - premium
    return {
        "hedges": [hedge_label(h) for h in sc.hedges],
        "premium_usd_mean": float(premium.mean()),
        "settlements_usd": {**_finite_stats(payoff), "mean_se": stats.mean_se(payoff)},
        "net_usd": {**_finite_stats(net), "mean_se": stats.mean_se(net)},
    }


def financing_summary(sc: Scenario, pp: dict[str, np.ndarray]) -> dict:
    """The lenders' and the owners' view over the paths (``summary["financing"]``)."""
    n = pp["profit_usd"].size
    fin = sc.financing
    runs_out = pp["cash_runs_out"] > 0
    irr = pp["irr_per_year"]
    below = pp["irr_below_hurdle"]
    has_irr = np.isfinite(below)
    out = {
        "loan": {
            "principal_usd_mean": float(pp["loan_usd"].mean()),
            "repayment": fin.loan_repayment,
            "term_months": fin.loan_term_months,
            "interest_usd_mean": float(pp["interest_usd"].mean()),
            "outstanding_at_end_usd_mean": float(pp["loan_outstanding_end_usd"].mean()),
        },
        "equity_usd_mean": float(pp["equity_usd"].mean()),
        "p_cash_runs_out": _share(runs_out, n),
        "median_day_cash_runs_out": float(np.median(pp["cash_out_day"][runs_out])) if runs_out.any() else None,
        "min_cash_usd": _finite_stats(pp["min_cash_usd"]),
        "final_cash_usd": _finite_stats(pp["final_cash_usd"]),
        "p_covenant_breach": _share(pp["covenant_breach"] > 0, n),
        "min_dscr": _finite_stats(pp["min_dscr"]),
        "p_margin_call": _share(pp["margin_call"] > 0, n),
        "irr_per_year": {**_finite_stats(irr), "share_all_lost": float(np.mean(irr == -1.0))},
        "p_irr_below_hurdle": _share(below[has_irr] > 0, int(has_irr.sum())) if has_irr.any() else None,
    }
    return out


def references(run: RunOutput) -> dict:
    """Where the scenario sits against the article's $27,000 and listed miners' cash cost."""
    sc, pp, p = run.scenario, run.per_path, run.parameters
    energy = pp["energy_mwh"]
    used = energy > 0
    power_usd_per_mwh = (
        float(((pp["energy_cost_usd"] + pp["mining_fee_usd"])[used] / energy[used]).mean()) if used.any() else math.nan
    )
    # energy one BTC takes for this fleet at the start difficulty [kWh/BTC]
    height = start_height(sc)
    fees = float(np.mean(p["market.fees_btc_per_block"]))
    reward = (subsidy_btc_at_height(height) + fees) * (1 - float(np.mean(p["farm.pool_fee_share"])))
    difficulty = float(np.mean(start_difficulty(p)))
    facility_j_per_th = float(np.mean(pp["facility_power_mw"] * 1e6 / pp["farm_hashrate_th"]))
    kwh_per_btc = facility_j_per_th * difficulty * TWO_POW_32 / (reward * TH_TO_H) / J_PER_KWH
    return {
        "article_cost_per_btc_usd": ARTICLE_COST_PER_BTC_USD,
        "listed_miners_cash_cost_per_btc_usd": LISTED_MINERS_CASH_COST_PER_BTC_USD,
        "kwh_per_btc_at_start_difficulty": kwh_per_btc,
        "article_implied_power_usd_per_mwh": ARTICLE_COST_PER_BTC_USD / kwh_per_btc * KWH_PER_MWH,
        "scenario_power_usd_per_mwh": power_usd_per_mwh,
    }


BLACKOUT_PATHS = 2000
SHUTOFF_PATHS = 2000
RISK_DRIVERS_TOP = 3


def blackout_48h(scenario: Scenario, paths: int, seed: int, base: dict | None = None) -> dict:
    """The article's "48 h blackout" question for ``scenario`` (``summary["blackout_48h"]``);
    ``base``: the run's own outputs of its first ``paths`` paths (then only the run with the
    blackout is simulated)."""
    from kzsim.analysis.sensitivity import blackout_cost

    return blackout_cost(scenario, paths=paths, seed=seed, base=base)


def shutoff_value(scenario: Scenario, paths: int, seed: int) -> dict:
    """What idling on losing days earned (``summary["economic_shutoff"]["value"]``)."""
    from kzsim.analysis import sensitivity

    return sensitivity.shutoff_value(scenario, paths=paths, seed=seed)


RISK_DRIVER_SHARE = 0.1  # the tenth of paths with the lowest, and with the highest, values of an input


def risk_drivers(parameters: dict[str, np.ndarray], profit_usd: np.ndarray, top: int = RISK_DRIVERS_TOP) -> list[dict]:
    """The uncertain inputs that move mean profit most, read off a run's own paths (no run of
    their own): for each input drawn per path, the paths with its lowest and its highest tenth
    of values; the mean profit and P(loss) there against the run's (``delta_*``), the inputs'
    median values there (``value_low``/``value_high``, about their 5th and 95th percentiles),
    ``swing_usd`` = |high - low| with its standard error ``swing_se_usd``. Each input's effect
    includes what it carries of the inputs correlated with it (``dependence``); the ``top``
    largest swings, largest first (``summary["risk_drivers"]``)."""
    profit = np.asarray(profit_usd, dtype=np.float64)
    n = profit.size
    k = int(n * RISK_DRIVER_SHARE)
    if k < 2:
        return []
    mean, p_loss = float(profit.mean()), float(np.mean(profit < 0))
    rows = []
    for name, values in parameters.items():
        values = np.asarray(values, dtype=np.float64)
        if values.size != n or values.min() == values.max():
            continue
        order = np.argsort(values, kind="stable")
        low, high = order[:k], order[-k:]
        lo, hi = profit[low], profit[high]
        rows.append(
            {
                "parameter": name,
                "value_low": float(np.median(values[low])),
                "value_high": float(np.median(values[high])),
                "delta_mean_profit_low_usd": float(lo.mean()) - mean,
                "delta_mean_profit_high_usd": float(hi.mean()) - mean,
                "delta_p_loss_low": float(np.mean(lo < 0)) - p_loss,
                "delta_p_loss_high": float(np.mean(hi < 0)) - p_loss,
                "swing_usd": abs(float(hi.mean()) - float(lo.mean())),
                "swing_se_usd": float(np.sqrt(lo.var(ddof=1) / k + hi.var(ddof=1) / k)),
            }
        )
    rows.sort(key=lambda r: -r["swing_usd"])
    return rows[:top]


ANALYSES = ("blackout_48h", "shutoff_value")  # what written_analyses computes: runs of their own


def analyses_for_write(scenario: Scenario, report: bool = True) -> tuple[str, ...]:
    """The analyses that cost runs of their own which :meth:`Results.write` computes beside
    the run: the shut-off policy's value (with ``farm.economic_shutoff``). The 48 h blackout
    reuses the run's own paths after it (one run of its own: the blackout), and the risk
    drivers are read off the run's paths (none)."""
    return ("shutoff_value",) if scenario.farm.economic_shutoff else ()


def written_analyses(scenario: Scenario, names: tuple[str, ...], n_paths: int, seed: int) -> dict:
    """The analyses ``names`` (of :func:`analyses_for_write`) of an ``n_paths``-path run,
    each a few small runs of its own on the run's first paths. They depend on the scenario,
    the seed and the run's size only, not on its results: a cluster computes them in one
    task beside the run's own (:func:`kzsim.api.simulate`), with the bits this process gets."""
    computed = {}
    for name in names:
        if name == "blackout_48h":
            computed[name] = blackout_48h(scenario, min(BLACKOUT_PATHS, n_paths), seed)
        elif name == "shutoff_value":
            computed[name] = shutoff_value(scenario, min(SHUTOFF_PATHS, n_paths), seed)
        else:
            raise ValueError(f"unknown analysis {name!r} (allowed: {', '.join(ANALYSES)})")
    return computed
