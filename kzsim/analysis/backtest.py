"""Back-testing the price models on history: do their bands hold the prices that came next?

Each model is fitted (:mod:`kzsim.analysis.calibration`) on a window of daily closes, simulated
from the last close of that window, and the realised prices that followed are set
against the simulated 5-95 % and 25-75 % bands. Two readings:

* **one long forecast**: the share of the following days whose realised close lies in
  that day's band. One history is one path: its days are strongly dependent, so this is
  a description, not a test with a standard error.
* **rolling forecasts**: from an origin every ``step_days`` in the following window,
  each model (parameters fixed from the fit window; GARCH's variance filtered through
  the data up to the origin) forecasts ``horizon_days`` ahead; the share of origins whose
  realised close lies in the band, with its binomial standard error (origins do not
  overlap, so they are close to independent).

Pure functions: series in, tables out; random numbers from named streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kzsim.analysis import calibration
from kzsim.model import prices, processes
from kzsim.model.rng import stream
from kzsim.units import DAYS_PER_YEAR

MODELS = calibration.MODELS
BANDS = {"5-95 %": (5.0, 95.0), "25-75 %": (25.0, 75.0)}


@dataclass
class Coverage:
    model: str
    long: dict[str, float]  # band -> share of days covered (one long forecast)
    rolling: dict[str, float]  # band -> share of origins covered
    rolling_se: dict[str, float]
    origins: int


def simulate_from_fit(
    fit: calibration.Fit,
    fit_returns: np.ndarray,
    start_price: float,
    n_steps: int,
    n_paths: int,
    seed: int,
    key: str,
    start_variance_per_day: float | None = None,
) -> np.ndarray:
    """Prices (n_steps + 1, n_paths) of a fitted model from ``start_price``, on stream ``backtest:KEY``."""
    rng_z = stream(seed, f"backtest:{key}:normal", 0)
    z = rng_z.standard_normal((n_steps, n_paths))
    start = np.full(n_paths, float(start_price))
    k = fit.keys
    mu = k.get("btc_drift_per_year", 0.0)
    if fit.model == "gbm":
        return processes.gbm(start, mu, k["btc_volatility_per_year"], z)
    if fit.model == "jump_diffusion":
        jd = k["jump_diffusion"]
        rng = stream(seed, f"backtest:{key}:jumps", 0)
        counts = rng.poisson(jd["jumps_per_year"] / DAYS_PER_YEAR, (n_steps, n_paths))
        # a sum of c normal jump sizes is N(c m, c s^2)
        sums = counts * jd["jump_mean_log"] + np.sqrt(counts) * jd["jump_volatility_log"] * rng.standard_normal(
            (n_steps, n_paths)
        )
        return prices.jump_diffusion(
            start,
            mu,
            k["btc_volatility_per_year"],
            jd["jumps_per_year"],
            jd["jump_mean_log"],
            jd["jump_volatility_log"],
            z,
            sums,
        )
    if fit.model == "garch":
        g = k["garch"]
        start_vol = (
            math.sqrt(start_variance_per_day * DAYS_PER_YEAR)
            if start_variance_per_day is not None
            else g["start_volatility_per_year"]
        )
        out, _ = prices.garch(start, mu, g["long_run_volatility_per_year"], g["alpha"], g["beta"], start_vol, z)
        return out
    # bootstrap, re-centred on the drift the GBM fit of the same window gives (the model's 'historical' mean)
    rng = stream(seed, f"backtest:{key}:bootstrap", 0)
    idx = prices.draw_bootstrap_indices(
        rng, rng, fit_returns.size, k["bootstrap"]["mean_block_days"], (n_steps, n_paths)
    )
    return prices.bootstrap(start, fit_returns, idx, drift_per_year=np.full(n_paths, mu))


def _fit(model: str, r: np.ndarray) -> calibration.Fit:
    if model == "bootstrap":
        fit = calibration.fit_bootstrap(r, csv_path="<history>")
        fit.keys["btc_drift_per_year"] = calibration.fit_gbm(r).keys["btc_drift_per_year"]
        return fit
    return calibration.fit(model, r)


def _in_band(sim: np.ndarray, realised: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    lo, hi = np.percentile(sim, band, axis=-1)
    return (realised >= lo) & (realised <= hi)


def backtest(
    dates: np.ndarray,
    closes: np.ndarray,
    split_index: int,
    *,
    models=MODELS,
    n_paths: int = 2000,
    seed: int = 20260101,
    step_days: int = 30,
    horizon_days: int = 30,
    test_days: int | None = None,
) -> list[Coverage]:
    """Coverage of each model's bands on the days after ``split_index``.

    Parameters
    ----------
    dates, closes : arrays (n,)
        Daily closes, every day.
    split_index : int
        Models are fitted on closes[: split_index + 1] and forecast from closes[split_index].
    test_days : int, optional
        Days after the split to test (default: all that follow).
    """
    del dates  # the series is daily and complete; positions are days
    closes = np.asarray(closes, dtype=np.float64)
    fit_returns = np.diff(np.log(closes[: split_index + 1]))
    future = closes[split_index + 1 :]
    if test_days is not None:
        future = future[:test_days]
    n_future = future.size
    origins = np.arange(0, n_future - horizon_days + 1, step_days)  # offsets after the split
    out = []
    for model in models:
        fit = _fit(model, fit_returns)
        sim = simulate_from_fit(fit, fit_returns, closes[split_index], n_future, n_paths, seed, f"{model}:long")
        long = {name: float(_in_band(sim[1:], future, band).mean()) for name, band in BANDS.items()}
        hits = {name: [] for name in BANDS}
        variances = None
        if model == "garch":  # the model's variance filtered through all the data once; h[t] is that of return t
            g = fit.keys["garch"]
            c = (fit.keys["btc_drift_per_year"] - 0.5 * g["long_run_volatility_per_year"] ** 2) / DAYS_PER_YEAR
            omega = g["long_run_volatility_per_year"] ** 2 / DAYS_PER_YEAR * (1 - g["alpha"] - g["beta"])
            r_all = np.diff(np.log(closes))
            variances = calibration.garch_variance(r_all - c, omega, g["alpha"], g["beta"], float(np.var(fit_returns)))
        for i, offset in enumerate(origins):
            origin = split_index + offset  # forecast from this day's close
            variance = None if variances is None else float(variances[origin])
            sim = simulate_from_fit(
                fit, fit_returns, closes[origin], horizon_days, n_paths, seed, f"{model}:origin{i}", variance
            )
            realised = closes[origin + horizon_days]
            for name, band in BANDS.items():
                hits[name].append(bool(_in_band(sim[-1], np.array(realised), band)))
        n = len(origins)
        rolling = {name: float(np.mean(h)) for name, h in hits.items()}
        nominal = {name: (band[1] - band[0]) / 100 for name, band in BANDS.items()}
        se = {name: math.sqrt(nominal[name] * (1 - nominal[name]) / n) for name in BANDS}
        out.append(Coverage(model, long, rolling, se, n))
    return out


def markdown_table(rows: list[Coverage], horizon_days: int) -> str:
    """The coverage table as Markdown (docs/market.md)."""
    lines = [
        f"| model | days in 5-95 % band | days in 25-75 % band | {horizon_days}-day forecasts in 5-95 % | "
        f"{horizon_days}-day forecasts in 25-75 % |",
        "|---|---|---|---|---|",
    ]

    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    for c in rows:
        lines.append(
            f"| {c.model} | {pct(c.long['5-95 %'])} | {pct(c.long['25-75 %'])} | "
            f"{pct(c.rolling['5-95 %'])} (SE {pct(c.rolling_se['5-95 %'])}, {c.origins} origins) | "
            f"{pct(c.rolling['25-75 %'])} (SE {pct(c.rolling_se['25-75 %'])}) |"
        )
    return "\n".join(lines)


def report(dates: np.ndarray, closes: np.ndarray, splits: list, *, n_paths: int = 2000, seed: int = 20260101) -> str:
    """Markdown of the coverage tables for each split date (what docs/market.md shows)."""
    parts = []
    for split in splits:
        index = int(np.searchsorted(dates, np.datetime64(split, "D")))
        if not 30 < index < dates.size - 31 or dates[index] != np.datetime64(split, "D"):
            raise ValueError(f"split {split} is not a day with 30 days of history on each side")
        rows = backtest(dates, closes, index, n_paths=n_paths, seed=seed)
        parts.append(
            f"Fitted on {dates[0]} to {dates[index]} ({index} returns), tested on {dates[index + 1]} to "
            f"{dates[-1]} ({dates.size - index - 1} days), {n_paths:,} paths a forecast, seed {seed}:\n\n"
            + markdown_table(rows, 30)
        )
    return "\n\n".join(parts) + "\n"
