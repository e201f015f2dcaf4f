"""Results of a run as pandas tables and a summary dictionary (the Python API's view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kzsim.analysis.comparison import HEADLINE, paired_difference
from kzsim.analysis.summary import (
    BLACKOUT_PATHS,
    RISK_DRIVERS_TOP,
    SHUTOFF_PATHS,
    blackout_48h,
    risk_drivers,
    shutoff_value,
    summarize,
)
from kzsim.engine.merge import TIMESERIES_QUANTILES, RunOutput


@dataclass
class Results:
    """A finished run: tables for notebooks, a summary, and writers for files."""

    run: RunOutput
    summary: dict = field(init=False)

    def __post_init__(self):
        self.summary = summarize(self.run)

    @property
    def scenario(self):
        return self.run.scenario

    def blackout_48h(self, paths: int = BLACKOUT_PATHS) -> dict:
        """The cost of one extra 48 h blackout in the first winter, from the first ``paths``
        paths of the run, on common random numbers (see :func:`kzsim.analysis.sensitivity.blackout_cost`).
        Computed once and added to ``summary["blackout_48h"]``."""
        if "blackout_48h" not in self.summary:
            n = min(paths, self.run.paths)
            base = {k: v[:n] for k, v in self.run.per_path.items()}  # the run's own: one run less
            self.summary["blackout_48h"] = blackout_48h(self.scenario, n, self.run.seed, base=base)
        return self.summary["blackout_48h"]

    def shutoff_value(self, paths: int = SHUTOFF_PATHS) -> dict:
        """With ``farm.economic_shutoff``: the policy's gain in profit after tax against running
        every day, on the first ``paths`` paths and common random numbers
        (:func:`kzsim.analysis.sensitivity.shutoff_value`). Added to ``summary["economic_shutoff"]["value"]``."""
        block = self.summary["economic_shutoff"]
        if "value" not in block:
            block["value"] = shutoff_value(self.scenario, min(paths, self.run.paths), self.run.seed)
        return block["value"]

    def risk_drivers(self, top: int = RISK_DRIVERS_TOP) -> list[dict]:
        """The uncertain inputs that move mean profit most, read off the run's own paths (the
        tenth of paths with each input's lowest and highest values: see
        :func:`kzsim.analysis.summary.risk_drivers`; ``kzsim sensitivity`` runs a tornado).
        Computed once and added to ``summary["risk_drivers"]``."""
        if "risk_drivers" not in self.summary:
            self.summary["risk_drivers"] = risk_drivers(self.run.parameters, self.run.per_path["profit_usd"], top)
        return self.summary["risk_drivers"]

    def add_analyses(self, analyses: dict) -> None:
        """Put in the results of :func:`written_analyses` (computed elsewhere, e.g. on a
        cluster beside the run): the methods above then return them without a run."""
        for name, value in analyses.items():
            if name == "shutoff_value":
                self.summary["economic_shutoff"]["value"] = value
            else:
                self.summary[name] = value

    def path_columns(self) -> dict[str, np.ndarray]:
        """The per-path table as named arrays (no copy): outputs, then ``param.*``."""
        data = {"path": np.arange(self.run.paths)}
        data.update(self.run.per_path)
        data.update({f"param.{k}": v for k, v in self.run.parameters.items()})
        return data

    @property
    def paths(self) -> pd.DataFrame:
        """One row per path: every per-path output and the drawn parameters (``param.*``)."""
        return pd.DataFrame(self.path_columns())

    @property
    def timeseries(self) -> pd.DataFrame:
        """Per day: percentiles (from the first ``sample_paths`` paths) with their 95 %
        intervals (``_ci95_low``, ``_ci95_high``; -inf / +inf where a side is open), and
        means (all paths)."""
        data: dict[str, np.ndarray] = {"date": self.run.dates}
        for name, q in self.run.daily_quantiles.items():
            low, high = self.run.daily_quantiles_ci95[name]
            for i, level in enumerate(TIMESERIES_QUANTILES):
                column = f"{name}_p{round(level * 100):02d}"
                data[column] = q[i]
                data[f"{column}_ci95_low"] = low[i]
                data[f"{column}_ci95_high"] = high[i]
            data[f"{name}_mean"] = self.run.daily_mean[name]
        return pd.DataFrame(data)

    def write(
        self,
        out_dir: str | Path,
        *,
        force: bool = False,
        scenario_file: str | Path | None = None,
        report: bool = True,
        command: str | None = None,
    ) -> Path:
        """Write every output into ``out_dir`` atomically (see :mod:`kzsim.io.outputs`)."""
        from kzsim.io.outputs import write_results

        return write_results(self, out_dir, force=force, scenario_file=scenario_file, report=report, command=command)

    def report(self, path: str | Path) -> Path:
        """Write the PDF report alone to ``path`` (atomically)."""
        from kzsim.io.folders import atomic_path
        from kzsim.report import collector_paused

        with collector_paused():  # matplotlib's import too
            from kzsim.report.pdf import write_report

            with atomic_path(Path(path)) as tmp:
                write_report(self, tmp)
        return Path(path)


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
    from kzsim.io.folders import write_folder, write_json
    from kzsim.report import collector_paused

    def fill(tmp):
        write_json(tmp / "comparison.json", comparison.summary())
        comparison.table.to_csv(tmp / "headline.csv", index_label="figure")
        comparison.per_path.to_parquet(tmp / "profits.parquet", index=False)
        if report:  # (matplotlib is imported only for the report)
            with collector_paused():
                from kzsim.report.pdf import write_compare_report

                write_compare_report(comparison, tmp / "report.pdf")

    return write_folder(out_dir, fill, force=force)
