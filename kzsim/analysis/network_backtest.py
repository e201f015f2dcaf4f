"""Back-testing the network and fee processes on history: do their bands hold what came next?

From rolling origins (every :data:`STEP_DAYS` days), each process is fitted on the
:data:`FIT_YEARS` years before the origin (:mod:`kzsim.analysis.network_fit`,
:func:`kzsim.analysis.calibration.fit_fees`), simulated from the origin's value, and the
realised value ``h`` days later is set against the simulated 5-95 % and 25-75 % bands.

* difficulty: the network hashrate as the model draws it (GBM trend with the fitted growth
  and diffusion, times the fitted drawdown events), retargeted by the chain; no price
  response (the price that came next is not known at the origin).
* hashprice (with a price history too): rebuilt from the files (price, difficulty, fees,
  the subsidy of the date) against the product of the forecasts of difficulty, fees
  (uncertain level) and a GBM price with no drift and the volatility of the three years
  before, taken as independent;
* fees: the network's fees a day as the model draws them from the median, persistence,
  volatility and spikes fitted on the year before the origin (stationary around that
  median); and the same with the level uncertain, as the shipped scenarios draw it: a
  lognormal factor per path whose sigma is the sd of the change of the half-year median
  over the three years before the origin.

The share of origins covered has a binomial standard error over the effective number of
independent origins: origins closer than the horizon share part of their future, so it is
min(origins, span / horizon) (a coverage test with overlapping windows is conservative
only in that sense; the table says how many it counts).

Pure functions: series in, tables out; random numbers from named streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kzsim.analysis.calibration import fit_fees
from kzsim.analysis.network_fit import fit_network
from kzsim.model import loops, processes
from kzsim.model.rng import stream
from kzsim.units import DAYS_PER_YEAR, TARGET_BLOCK_SECONDS, TWO_POW_32

HORIZONS_DAYS = (42, 182, 365)
# the halvings so far (the subsidy of a day of history, by its date)
HALVING_DATES = np.array(["2012-11-28", "2016-07-09", "2020-05-11", "2024-04-20"], dtype="datetime64[D]")
STEP_DAYS = 91
FIT_YEARS = 3
BANDS = {"5-95 %": (5.0, 95.0), "25-75 %": (25.0, 75.0)}


@dataclass
class NetworkCoverage:
    series: str
    horizon_days: int
    covered: dict[str, float]  # band -> share of origins whose realised value is inside
    se: dict[str, float]
    origins: int
    effective_origins: float
    below: dict[str, float]  # band -> share of origins below the band (which way it errs)


def _draw_scalar(dist, u: np.ndarray) -> np.ndarray:
    if isinstance(dist, dict):
        if dist["dist"] == "beta":
            from scipy import stats

            return dist["low"] + (dist["high"] - dist["low"]) * stats.beta.ppf(u, dist["a"], dist["b"])
        from scipy import stats

        return dist["median"] * np.exp(dist["sigma"] * stats.norm.ppf(u))
    return np.full(u.shape, float(dist))


def simulate_difficulty(keys: dict, difficulty0: float, n_days: int, n_paths: int, seed: int, key: str) -> np.ndarray:
    """Difficulty (n_days, n_paths) from ``difficulty0`` under fitted network ``keys``."""
    z = stream(seed, f"backtest:{key}:hashrate", 0).standard_normal((n_days - 1, n_paths))
    rate = keys["hashrate_drawdown_rate_per_year"]
    share = None
    if rate > 0:
        events = stream(seed, f"backtest:{key}:drawdown", 0)
        count = events.poisson(rate * (n_days - 1) / DAYS_PER_YEAR, n_paths)
        path = np.repeat(np.arange(n_paths), count)
        day = 1 + np.floor(events.random(path.size) * (n_days - 1)).astype(np.int64)
        depth = _draw_scalar(keys["hashrate_drawdown_depth"], events.random(path.size))
        recovery = _draw_scalar(keys["hashrate_drawdown_recovery_days"], events.random(path.size))
        share = loops.drawdown_factor(n_days, n_paths, day, path, depth, recovery)
    hashrate0 = difficulty0 * TWO_POW_32 / TARGET_BLOCK_SECONDS
    hashrate = processes.network_hashrate(
        np.full(n_paths, hashrate0),
        keys["hashrate_growth_per_year"],
        keys["hashrate_volatility_per_year"],
        z,
        drawdown=share,
    )
    return processes.chain(hashrate, difficulty0, 0.0)[0]


def simulate_fees(keys: dict, n_days: int, n_paths: int, seed: int, key: str) -> np.ndarray:
    """Fees a day [BTC] (n_days, n_paths) at 144 blocks a day under fitted fee ``keys``."""
    z = stream(seed, f"backtest:{key}:fees", 0).standard_normal((n_days, n_paths))
    spikes = None
    if keys.get("fees_spike_rate_per_year", 0.0) > 0 and "fees_spike_extra" in keys:
        events = stream(seed, f"backtest:{key}:spikes", 0)
        count = events.poisson(keys["fees_spike_rate_per_year"] * n_days / DAYS_PER_YEAR, n_paths)
        path = np.repeat(np.arange(n_paths), count)
        day = np.floor(events.random(path.size) * n_days).astype(np.int64)
        spikes = np.zeros((n_days, n_paths))
        np.add.at(spikes, (day, path), _draw_scalar(keys["fees_spike_extra"], events.random(path.size)))
    per_block = processes.fees_per_block(
        keys["fees_btc_per_block"],
        keys["fees_log_volatility"],
        keys["fees_persistence_days"],
        z,
        spikes=spikes,
        spike_half_life_days=keys.get("fees_spike_half_life_days", 3.0),
    )
    return per_block * 144.0


HALF_YEAR_DAYS = 182


def level_spread(fees_btc_per_day: np.ndarray) -> float:
    """sd of the change of log median fees from one half-year to the next (the shipped
    scenarios' lognormal sigma of the fee level over the horizon)."""
    n = fees_btc_per_day.size // HALF_YEAR_DAYS
    halves = fees_btc_per_day[fees_btc_per_day.size - n * HALF_YEAR_DAYS :].reshape(n, HALF_YEAR_DAYS)
    return float(np.std(np.diff(np.log(np.median(halves, axis=1))), ddof=1))


def _coverage(series: str, horizon: int, sims: list[np.ndarray], realised: list[float], span_days: int):
    covered, below, se = {}, {}, {}
    n = len(realised)
    effective = min(float(n), span_days / horizon) if n else 0.0
    for band, (lo, hi) in BANDS.items():
        inside = [np.percentile(s, lo) <= r <= np.percentile(s, hi) for s, r in zip(sims, realised)]
        under = [r < np.percentile(s, lo) for s, r in zip(sims, realised)]
        share = float(np.mean(inside)) if n else math.nan
        covered[band] = share
        below[band] = float(np.mean(under)) if n else math.nan
        nominal = (hi - lo) / 100.0
        se[band] = math.sqrt(nominal * (1 - nominal) / effective) if effective else math.nan
    return NetworkCoverage(series, horizon, covered, se, n, effective, below)


def subsidy_btc(dates: np.ndarray) -> np.ndarray:
    """Block subsidy [BTC] in force on each date (50 halved at each halving before it)."""
    halvings = np.searchsorted(HALVING_DATES, np.asarray(dates, dtype="datetime64[D]"), side="right")
    return 50.0 * np.exp2(-halvings.astype(np.float64))


def hashprice_usd_per_th_day(price_usd, subsidy, fees_btc_per_day, difficulty):
    """USD a TH/s earns in a day: price x (subsidy + fees per block) x 10^12 x 86,400 / (difficulty x 2^32)."""
    return price_usd * (subsidy + fees_btc_per_day / 144.0) * 1e12 * 86_400.0 / (difficulty * TWO_POW_32)


def backtest_network(
    dates: np.ndarray,
    difficulty: np.ndarray,
    fee_dates: np.ndarray | None = None,
    fees_btc_per_day: np.ndarray | None = None,
    price_dates: np.ndarray | None = None,
    price_usd: np.ndarray | None = None,
    *,
    n_paths: int = 1000,
    seed: int = 20260101,
) -> list[NetworkCoverage]:
    """Coverage of realised difficulty (and fees) by rolling forecasts (see the module's notes)."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    fit_days = FIT_YEARS * 365
    longest = max(HORIZONS_DAYS)
    origins = range(fit_days, dates.size - min(HORIZONS_DAYS), STEP_DAYS)
    rows = []
    d_sims = {h: [] for h in HORIZONS_DAYS}
    d_real = {h: [] for h in HORIZONS_DAYS}
    for i in origins:
        fit = fit_network(dates[i - fit_days : i + 1], difficulty[i - fit_days : i + 1])
        n_days = min(longest, dates.size - 1 - i) + 1
        sim = simulate_difficulty(fit.keys, float(difficulty[i]), n_days, n_paths, seed, f"difficulty:{dates[i]}")
        for h in HORIZONS_DAYS:
            if i + h < dates.size:
                d_sims[h].append(sim[h] / difficulty[i])
                d_real[h].append(float(difficulty[i + h] / difficulty[i]))
    span = dates.size - fit_days
    rows += [_coverage("difficulty", h, d_sims[h], d_real[h], span) for h in HORIZONS_DAYS]
    if fees_btc_per_day is not None:
        f_dates = np.asarray(fee_dates, dtype="datetime64[D]")
        fees = np.asarray(fees_btc_per_day, dtype=np.float64)
        f_sims = {h: [] for h in HORIZONS_DAYS}
        l_sims = {h: [] for h in HORIZONS_DAYS}
        f_real = {h: [] for h in HORIZONS_DAYS}
        fee_fit_days = 365
        first = FIT_YEARS * 365  # the level's spread needs years of half-year medians before the origin
        for i in range(first, f_dates.size - min(HORIZONS_DAYS), STEP_DAYS):
            keys = fit_fees(fees[i - fee_fit_days : i + 1] / 144.0).keys
            n_days = min(longest, f_dates.size - 1 - i) + 1
            sim = simulate_fees(keys, n_days, n_paths, seed, f"fees:{f_dates[i]}")
            spread = level_spread(fees[i - first : i + 1])
            level = np.exp(spread * stream(seed, f"backtest:fees:{f_dates[i]}:level", 0).standard_normal(n_paths))
            for h in HORIZONS_DAYS:
                if i + h < f_dates.size:
                    f_sims[h].append(sim[h])
                    l_sims[h].append(sim[h] * level)
                    f_real[h].append(float(fees[i + h]))
        span = f_dates.size - first
        rows += [_coverage("fees a day (fitted level)", h, f_sims[h], f_real[h], span) for h in HORIZONS_DAYS]
        rows += [_coverage("fees a day (uncertain level)", h, l_sims[h], f_real[h], span) for h in HORIZONS_DAYS]
        if price_usd is not None:
            rows += _hashprice_rows(dates, difficulty, f_dates, fees, price_dates, price_usd, n_paths, seed)
    return rows


def _hashprice_rows(dates, difficulty, f_dates, fees, price_dates, price_usd, n_paths, seed):
    """Hashprice rebuilt from the files against the product of the three forecasts (price:
    GBM with no drift and the volatility of the three years before; difficulty and fees as
    above, the fee level uncertain), independent of each other (no response)."""
    p_dates = np.asarray(price_dates, dtype="datetime64[D]")
    prices = np.asarray(price_usd, dtype=np.float64)
    years = FIT_YEARS * 365
    first = max(dates[0], f_dates[0], p_dates[0]) + np.timedelta64(years, "D")
    last = min(dates[-1], f_dates[-1], p_dates[-1])
    sims = {h: [] for h in HORIZONS_DAYS}
    real = {h: [] for h in HORIZONS_DAYS}
    day = first
    while day + np.timedelta64(min(HORIZONS_DAYS), "D") <= last:
        i, k, j = (int((day - a[0]) / np.timedelta64(1, "D")) for a in (dates, f_dates, p_dates))
        fit = fit_network(dates[i - years : i + 1], difficulty[i - years : i + 1])
        n_days = min(max(HORIZONS_DAYS), int((last - day) / np.timedelta64(1, "D"))) + 1
        d_sim = simulate_difficulty(fit.keys, float(difficulty[i]), n_days, n_paths, seed, f"difficulty:{day}")
        fee_keys = fit_fees(fees[k - 365 : k + 1] / 144.0).keys
        spread = level_spread(fees[k - years : k + 1])
        level = np.exp(spread * stream(seed, f"backtest:fees:{day}:level", 0).standard_normal(n_paths))
        f_sim = simulate_fees(fee_keys, n_days, n_paths, seed, f"fees:{day}") * level
        sigma = float(np.std(np.diff(np.log(prices[j - years : j + 1])), ddof=1))
        z = stream(seed, f"backtest:price:{day}", 0).standard_normal(n_paths)
        for h in HORIZONS_DAYS:
            if h < n_days:
                price_h = prices[j] * np.exp(-0.5 * sigma**2 * h + sigma * math.sqrt(h) * z)  # no drift
                subsidy = subsidy_btc(np.array([day + np.timedelta64(h, "D")]))[0]
                sims[h].append(hashprice_usd_per_th_day(price_h, subsidy, f_sim[h], d_sim[h]))
                realised = hashprice_usd_per_th_day(prices[j + h], subsidy, fees[k + h], difficulty[i + h])
                real[h].append(float(realised))
        day = day + np.timedelta64(STEP_DAYS, "D")
    span = int((last - first) / np.timedelta64(1, "D"))
    return [_coverage("hashprice", h, sims[h], real[h], span) for h in HORIZONS_DAYS]


def markdown_table(rows: list[NetworkCoverage]) -> str:
    def pct(x: float) -> str:
        return "-" if math.isnan(x) else f"{100 * x:.0f} %"

    lines = [
        "| series | horizon | origins (independent) | in 5-95 % (SE) | below it | in 25-75 % (SE) | below it |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.series} | {r.horizon_days} d | {r.origins} ({r.effective_origins:.0f}) | "
            f"{pct(r.covered['5-95 %'])} ({pct(r.se['5-95 %'])}) | {pct(r.below['5-95 %'])} | "
            f"{pct(r.covered['25-75 %'])} ({pct(r.se['25-75 %'])}) | {pct(r.below['25-75 %'])} |"
        )
    return "\n".join(lines) + "\n"


def report(
    dates: np.ndarray,
    difficulty: np.ndarray,
    fee_dates: np.ndarray | None = None,
    fees_btc_per_day: np.ndarray | None = None,
    price_dates: np.ndarray | None = None,
    price_usd: np.ndarray | None = None,
    *,
    n_paths: int = 1000,
    seed: int = 20260101,
) -> str:
    """The network's coverage table (Markdown)."""
    rows = backtest_network(
        dates, difficulty, fee_dates, fees_btc_per_day, price_dates, price_usd, n_paths=n_paths, seed=seed
    )
    return (
        f"Network: rolling origins every {STEP_DAYS} days, fits on the {FIT_YEARS} years (fee level: 1 year) "
        f"before each origin, {n_paths:,} paths a forecast; realised value {', '.join(map(str, HORIZONS_DAYS))} "
        "days later against the simulated bands.\n\n" + markdown_table(rows)
    )
