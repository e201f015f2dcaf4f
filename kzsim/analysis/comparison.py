"""Comparing scenarios on common random numbers.

Every scenario is simulated with the same seed, so each path of one scenario meets the
same BTC price, outages, failed payments and parameter draws as the same path of the
others wherever their inputs agree (named random streams). The difference between two
scenarios is then taken path by path, and its standard error is that of the paired
differences, far smaller than with independent runs.
"""

from __future__ import annotations

import math

import numpy as np

from kzsim import stats

HEADLINE = (
    ("P(loss)", lambda s: s["p_loss"]),
    ("mean profit after tax [USD]", lambda s: s["profit_usd"]["mean"]),
    ("median profit after tax [USD]", lambda s: s["profit_usd"]["p50"]),
    ("VaR 95 % [USD]", lambda s: s["var_95_usd"]),
    ("CVaR 95 % [USD]", lambda s: s["cvar_95_usd"]),
    ("cash cost per BTC, median [USD]", lambda s: s["cost_per_btc_usd"]["cash"]["p50"]),
    ("all-in cost per BTC, median [USD]", lambda s: s["cost_per_btc_usd"]["all_in"]["p50"]),
    ("BTC mined, mean", lambda s: s["btc_mined"]["mean"]),
    ("up fraction, mean", lambda s: s["uptime_fraction"]["mean"]),
    ("P(never pays back)", lambda s: s["payback"]["p_never_pays_back"]["p"]),
    ("P(cash runs out)", lambda s: s["financing"]["p_cash_runs_out"]["p"] if "financing" in s else math.nan),
    ("owners' IRR a year, median", lambda s: s["financing"]["irr_per_year"]["p50"] if "financing" in s else math.nan),
)


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """Difference b - a of per-path outcomes simulated on common random numbers.

    Returns the mean difference with its standard error (of the paired differences) and
    95 % interval, the share of paths where b is better, with its Wilson interval, and
    the standard error the same difference would have from independent runs.
    """
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = d.size
    se_paired = stats.mean_se(d)
    se_independent = math.sqrt(stats.mean_se(a) ** 2 + stats.mean_se(b) ** 2)
    wins = int(np.count_nonzero(d > 0))
    mean = float(d.mean())
    return {
        "mean_usd": mean,
        "mean_se_usd": se_paired,
        "mean_ci95_usd": [mean - stats.Z95 * se_paired, mean + stats.Z95 * se_paired],
        "p05_usd": float(np.percentile(d, 5)),
        "p50_usd": float(np.percentile(d, 50)),
        "p95_usd": float(np.percentile(d, 95)),
        "p_better": wins / n,
        "p_better_ci95": list(stats.wilson_interval(wins, n)),
        "se_if_independent_usd": se_independent,
        # inf when the paired differences are all equal; NaN (unknown) from one path
        "crn_se_reduction_factor": se_independent / se_paired if se_paired != 0 else math.inf,
    }
