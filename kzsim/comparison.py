"""Comparing scenarios on common random numbers.

Every scenario is simulated with the same seed, so each path of one scenario meets the
same BTC price, outages, failed payments and parameter draws as the same path of the
others wherever their inputs agree (named random streams). The difference between two
scenarios is then taken path by path, and its standard error is that of the paired
differences, far smaller than with independent runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kzsim import stats
from kzsim.results import Results

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


@dataclass
class Comparison:
    """Scenarios run on common random numbers, and their differences against the first."""

    results: list[Results]
    differences: list[dict] = field(init=False)

    def __post_init__(self):
        base = self.results[0].run.per_path["profit_usd"]
        self.differences = [paired_difference(base, r.run.per_path["profit_usd"]) for r in self.results[1:]]

    @property
    def names(self) -> list[str]:
        """Scenario names, made distinct (a name given twice gets " (2)")."""
        out, seen = [], {}
        for r in self.results:
            k = seen[r.scenario.name] = seen.get(r.scenario.name, 0) + 1
            out.append(r.scenario.name if k == 1 else f"{r.scenario.name} ({k})")
        return out

    @property
    def table(self) -> pd.DataFrame:
        """Headline figures side by side: one row per figure, one column per scenario."""
        rows = {label: [get(r.summary) for r in self.results] for label, get in HEADLINE}
        return pd.DataFrame(rows, index=self.names).T

    @property
    def per_path(self) -> pd.DataFrame:
        """Profit after tax of every path under every scenario, and the differences."""
        data = {"path": np.arange(self.results[0].run.paths)}
        base = self.results[0].run.per_path["profit_usd"]
        names = self.names
        for name, r in zip(names, self.results, strict=True):
            data[f"profit_usd[{name}]"] = r.run.per_path["profit_usd"]
        for name, r in zip(names[1:], self.results[1:], strict=True):
            data[f"difference_usd[{name} - {names[0]}]"] = r.run.per_path["profit_usd"] - base
        return pd.DataFrame(data)

    def summary(self) -> dict:
        return {
            "scenarios": self.names,
            "paths": self.results[0].run.paths,
            "seed": self.results[0].run.seed,
            "baseline": self.names[0],
            "summaries": dict(zip(self.names, (r.summary for r in self.results), strict=True)),
            "differences_vs_baseline": dict(zip(self.names[1:], self.differences, strict=True)),
        }


def write_comparison(comparison: Comparison, out_dir, *, force: bool = False, report: bool = True):
    """``comparison.json``, ``headline.csv``, ``profits.parquet`` and ``report.pdf``, atomically."""
    from kzsim.outputs import write_folder, write_json
    from kzsim.report import write_compare_report

    def fill(tmp):
        write_json(tmp / "comparison.json", comparison.summary())
        comparison.table.to_csv(tmp / "headline.csv", index_label="figure")
        comparison.per_path.to_parquet(tmp / "profits.parquet", index=False)
        if report:
            write_compare_report(comparison, tmp / "report.pdf")

    return write_folder(out_dir, fill, force=force)
