"""Fitting the network process to a difficulty history: trend, diffusion, drawdown events
and the response to the BTC price (:func:`kzsim.model.processes.network_hashrate`).

Difficulty measures the network's mean hashrate over a retarget window (2,016 blocks, about
two weeks), so the history is read in steps of :data:`STEP_DAYS` days:

* **drawdowns** are steps whose log change falls more than :data:`EVENT_Z` robust standard
  deviations (1.4826 x the median absolute deviation) below the median change; consecutive
  ones are one event. Depth = 1 - exp(the event's fall below the trend); recovery = days
  from the event's first step until the level is back where it was before it (or the end
  of the data: censored, counted at what was seen). Rate = events a year, with the Poisson
  standard error sqrt(events) / years. Depth is fitted as a beta on [0, 0.95] and recovery
  as a lognormal, by moments, with three or more events;
* the **diffusion** is the standard deviation of the steps outside events and their recoveries. Differences of window
  means of a Brownian motion have 2/3 of its variance over a step, so the daily hashrate's
  volatility is sqrt(3/2) times the steps' (a GBM sampled daily, as the model draws it);
* the **trend** is the mean log change of all steps a year plus sigma^2 / 2 (the model's
  growth is a GBM drift): drawdowns recover to the trend, so their falls and recoveries
  cancel in it;
* the **response** (with a price history): the steps' changes regressed on the change of
  the exponential moving average of log price over the step, for each lag of
  :data:`LAGS_DAYS`; the lag with the smallest residual variance is kept, its elasticity
  given with its standard error. The trend and diffusion are then those of the residuals.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from kzsim.analysis.calibration import Fit
from kzsim.units import DAYS_PER_YEAR, TARGET_BLOCK_SECONDS, TWO_POW_32

STEP_DAYS = 14  # one retarget window at 144 blocks a day
EVENT_Z = 3.0
LAGS_DAYS = (30.0, 60.0, 90.0, 180.0, 365.0)
MIN_STEPS = 26  # a year of steps
MAX_DEPTH = 0.95  # the scenario's bound on a drawdown's depth


def _ema(x: np.ndarray, lag_days: float) -> np.ndarray:
    """e_0 = x_0, e_t = e_{t-1} + (x_t - e_{t-1}) / lag (as the model smooths the price)."""
    alpha = 1.0 / max(lag_days, 1.0)
    out = np.empty_like(x)
    acc = x[0]
    for t in range(x.size):
        acc = acc + alpha * (x[t] - acc)
        out[t] = acc
    return out


def _events(
    below_trend: np.ndarray, change: np.ndarray, flagged: np.ndarray, step_days: int
) -> list[tuple[int, float, float, bool]]:
    """(first step, depth, recovery days, censored) of each run of flagged steps: the depth
    from the fall below the trend (``below_trend``), the recovery from the log changes
    (``change``) back to the level before the event."""
    out = []
    k = 0
    n = change.size
    while k < n:
        if not flagged[k]:
            k += 1
            continue
        start = k
        while k < n and flagged[k]:
            k += 1
        fall = float(np.sum(below_trend[start:k]))
        level = np.cumsum(change[start:])  # log level against the one before the event
        depth = min(1.0 - math.exp(fall), MAX_DEPTH)
        back = np.flatnonzero(level[k - start :] >= 0.0)
        censored = back.size == 0
        steps = (n - start) if censored else (k - start + int(back[0]) + 1)
        out.append((start, depth, float(steps * step_days), censored))
    return out


def _beta_by_moments(x: np.ndarray, high: float) -> dict:
    y = np.clip(x / high, 1e-3, 1 - 1e-3)
    m, v = float(np.mean(y)), float(np.var(y, ddof=1))
    common = m * (1 - m) / v - 1 if v > 0 else 50.0
    common = max(common, 0.5)
    return {"dist": "beta", "a": m * common, "b": (1 - m) * common, "low": 0.0, "high": high}


def fit_network(
    dates: np.ndarray,
    difficulty: np.ndarray,
    *,
    price_dates: np.ndarray | None = None,
    price_usd: np.ndarray | None = None,
) -> Fit:
    """Fit the network keys of a scenario to a daily difficulty series (and a price, optional).

    ``dates`` are consecutive days (datetime64[D]); ``difficulty`` > 0 on each.
    """
    d = np.asarray(difficulty, dtype=np.float64)
    n_steps = (d.size - 1) // STEP_DAYS
    if n_steps < MIN_STEPS:
        raise ValueError(
            f"{d.size} days of difficulty (allowed: at least {MIN_STEPS * STEP_DAYS + 1}, a year of retarget windows)"
        )
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError("difficulty is not positive and finite on every day (allowed: values > 0)")
    idx = np.arange(n_steps + 1) * STEP_DAYS + (d.size - 1 - n_steps * STEP_DAYS)  # ending on the last day
    x = np.log(d[idx])
    change = np.diff(x)
    step_years = STEP_DAYS / DAYS_PER_YEAR
    diag = [
        f"{d.size} days of difficulty, {n_steps} steps of {STEP_DAYS} days ({n_steps * step_years:.1f} years); "
        f"growth {np.sum(change) / (n_steps * step_years):+.3f}/year of log difficulty over the whole window"
    ]

    driver = np.zeros(n_steps)
    elasticity = lag = elasticity_se = None
    if price_usd is not None:
        p_dates = np.asarray(price_dates, dtype="datetime64[D]")
        step_dates = np.asarray(dates, dtype="datetime64[D]")[idx]
        if p_dates[0] > step_dates[0] - np.timedelta64(int(max(LAGS_DAYS)), "D") or p_dates[-1] < step_dates[-1]:
            raise ValueError(
                f"the price history covers {p_dates[0]} to {p_dates[-1]}; the fit needs "
                f"{step_dates[0] - np.timedelta64(int(max(LAGS_DAYS)), 'D')} to {step_dates[-1]} "
                "(allowed: a price file starting a year before the difficulty window)"
            )
        log_p = np.log(np.asarray(price_usd, dtype=np.float64))
        at = ((step_dates - p_dates[0]) / np.timedelta64(1, "D")).astype(np.int64)
        best = None
        for candidate in LAGS_DAYS:
            ema = _ema(log_p, candidate)[at]
            z = np.diff(ema)
            design = np.column_stack([np.ones(n_steps), z])
            coef, *_ = np.linalg.lstsq(design, change, rcond=None)
            residual = change - design @ coef
            # robust scale: drawdowns must not decide the lag
            scale = 1.4826 * np.median(np.abs(residual - np.median(residual)))
            if best is None or scale < best[0]:
                best = (scale, candidate, float(coef[1]), z, residual)
        _, lag, elasticity, driver_z, residual = best
        keep = np.abs(residual - np.median(residual)) <= EVENT_Z * 1.4826 * np.median(
            np.abs(residual - np.median(residual))
        )
        design = np.column_stack([np.ones(int(keep.sum())), driver_z[keep]])
        coef, *_ = np.linalg.lstsq(design, change[keep], rcond=None)
        res = change[keep] - design @ coef
        s2 = float(res @ res) / max(int(keep.sum()) - 2, 1)
        cov = s2 * np.linalg.inv(design.T @ design)
        elasticity, elasticity_se = float(coef[1]), float(math.sqrt(cov[1, 1]))
        driver = elasticity * driver_z
    residual = change - driver
    median = float(np.median(residual))
    robust = 1.4826 * float(np.median(np.abs(residual - median)))
    flagged = residual - median < -EVENT_Z * robust
    # events recover to the trend, so the trend is the mean of all steps, drops and recoveries included
    trend_per_step = float(np.mean(residual))
    events = _events(residual - trend_per_step, residual, flagged, STEP_DAYS)
    inside = flagged.copy()  # steps of an event or of its recovery: not diffusion
    for first, _depth, recovery_days, _censored in events:
        inside[first : first + max(int(round(recovery_days / STEP_DAYS)), 1)] = True
    calm = residual[~inside] if (~inside).sum() > MIN_STEPS // 2 else residual[~flagged]
    step_sd = float(np.std(calm, ddof=1))
    volatility = step_sd / math.sqrt(step_years) * math.sqrt(1.5)
    growth = trend_per_step / step_years + 0.5 * volatility**2
    years = n_steps * step_years
    rate = len(events) / years

    keys: dict = {
        "network_difficulty": float(d[-1]),
        "network_hashrate_eh": float(d[-1] * TWO_POW_32 / TARGET_BLOCK_SECONDS / 1e18),
        "hashrate_growth_per_year": growth,
        "hashrate_volatility_per_year": volatility,
    }
    se = {
        "hashrate_growth_per_year": volatility / math.sqrt(years),
        "hashrate_volatility_per_year": volatility / math.sqrt(2 * max(calm.size - 1, 1)),
    }
    if elasticity is not None:
        keys["hashrate_price_elasticity"] = min(max(elasticity, 0.0), 5.0)
        keys["hashrate_response_lag_days"] = lag
        se["hashrate_price_elasticity"] = elasticity_se
        diag.append(
            f"response to the BTC price: elasticity {elasticity:+.3f} (standard error {elasticity_se:.3f}) at the "
            f"best of lags {', '.join(f'{v:g}' for v in LAGS_DAYS)} days: {lag:g}"
            + (" (a negative fit is printed as 0, the scenario's bound)" if elasticity < 0 else "")
        )
    keys["hashrate_drawdown_rate_per_year"] = rate
    se["hashrate_drawdown_rate_per_year"] = math.sqrt(max(len(events), 1)) / years
    diag.append(
        f"diffusion: sd {step_sd:.4f} of the {calm.size} steps outside events and recoveries (x sqrt(365/14) x sqrt(3/2) for the daily "
        f"hashrate); {int(flagged.sum())} step(s) below median - {EVENT_Z:g} robust sd ({robust:.4f}) "
        f"form {len(events)} drawdown event(s)"
    )
    if events:
        depth = np.array([e[1] for e in events])
        recovery = np.array([e[2] for e in events])
        censored = sum(e[3] for e in events)
        if len(events) >= 3:
            keys["hashrate_drawdown_depth"] = _beta_by_moments(depth, MAX_DEPTH)
            log_r = np.log(recovery)
            keys["hashrate_drawdown_recovery_days"] = {
                "dist": "lognormal",
                "median": float(np.exp(np.median(log_r))),
                "sigma": max(float(np.std(log_r, ddof=1)), 0.05),
            }
        else:
            keys["hashrate_drawdown_depth"] = float(np.median(depth))
            keys["hashrate_drawdown_recovery_days"] = float(np.median(recovery))
        diag.append(
            f"depths {', '.join(f'{v:.0%}' for v in np.sort(depth)[::-1][:8])}"
            f"{' ...' if depth.size > 8 else ''}; recovery median {np.median(recovery):.0f} days "
            f"(5-95 %: {np.percentile(recovery, 5):.0f} to {np.percentile(recovery, 95):.0f})"
            + (f"; {censored} not recovered by the end of the data (counted as seen)" if censored else "")
        )
        months = (np.asarray(dates, dtype="datetime64[M]")[idx[1:]][[e[0] for e in events]].astype(np.int64)) % 12
        counts = np.bincount(months, minlength=12)
        by_month = " ".join(f"{name}:{c}" for name, c in zip("JFMAMJJASOND", counts))
        if len(events) >= 12:
            p_value = float(stats.chisquare(counts).pvalue)
            if p_value < 0.05:
                weights = (counts + 0.5) / np.mean(counts + 0.5)
                keys["hashrate_drawdown_month_weights"] = [round(float(w), 2) for w in weights]
                diag.append(f"events by month {by_month}: seasonal (chi-square p = {p_value:.3f}), weights below")
            else:
                diag.append(f"events by month {by_month}: no season shows (chi-square p = {p_value:.2f})")
        else:
            diag.append(f"events by month {by_month}: too few events to tell a season")
    else:
        keys["hashrate_drawdown_depth"] = 0.1
        keys["hashrate_drawdown_recovery_days"] = 30.0
        diag.append("no drawdown in the window: rate 0 (depth and recovery are the defaults, unused)")
    return Fit("network", keys, None, 0, n_steps, diag, se)
