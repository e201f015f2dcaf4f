"""Risk measures and Monte Carlo standard errors.

The same formulas serve the summary, the report and the tests, so a tolerance in a test
is the standard error the report states.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


def mean_se(x: np.ndarray) -> float:
    """Standard error of the sample mean, s / sqrt(n) (0 for one sample)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return 0.0
    return float(x.std(ddof=1) / math.sqrt(x.size))


def proportion_se(p: float, n: int) -> float:
    """Standard error of a proportion, sqrt(p (1 - p) / n)."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(0, 100)]
    [0.0, 0.037]
    """
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def value_at_risk(profit: np.ndarray, level: float) -> float:
    """VaR at ``level`` (e.g. 0.95): minus the (1 - level) quantile of profit.

    Positive numbers are losses.
    """
    return float(-np.quantile(profit, 1.0 - level))


def expected_shortfall(profit: np.ndarray, level: float) -> float:
    """CVaR (expected shortfall) at ``level``: minus the mean of the worst
    ceil((1 - level) n) outcomes. Positive numbers are losses."""
    x = np.asarray(profit, dtype=np.float64)
    k = max(1, math.ceil((1.0 - level) * x.size - 1e-9))
    worst = np.partition(x, k - 1)[:k]
    return float(-worst.mean())


def quantile_ci(x: np.ndarray, q: float, z: float = Z95) -> tuple[float, float]:
    """Distribution-free confidence interval of the q-quantile from order statistics.

    Notes
    -----
    The number of samples below the true quantile is Binomial(n, q); the interval is
    the order statistics at ranks n q -+ z sqrt(n q (1 - q)).
    """
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = x.size
    half = z * math.sqrt(n * q * (1 - q))
    lo = int(np.clip(math.floor(n * q - half), 0, n - 1))
    hi = int(np.clip(math.ceil(n * q + half), 0, n - 1))
    return float(x[lo]), float(x[hi])


def percentiles(x: np.ndarray, levels=(1, 5, 50, 95, 99)) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {f"p{lv:02d}": float("nan") for lv in levels}
    values = np.percentile(x, levels)
    return {f"p{lv:02d}": float(v) for lv, v in zip(levels, values)}


def expected_shortfall_se(profit: np.ndarray, level: float) -> float:
    """Approximate standard error of :func:`expected_shortfall`: the sd of the worst
    ceil((1 - level) n) outcomes over the square root of their number (it leaves out the
    uncertainty of where the tail starts, so it is a lower bound)."""
    x = np.asarray(profit, dtype=np.float64)
    k = max(1, math.ceil((1.0 - level) * x.size - 1e-9))
    if k < 2:
        return math.nan
    worst = np.partition(x, k - 1)[:k]
    return float(worst.std(ddof=1) / math.sqrt(k))


def running_estimates(x: np.ndarray, points: int = 60) -> dict[str, np.ndarray]:
    """Mean and share below zero of the first n values, with standard errors, at about
    ``points`` path counts spaced evenly on a log scale (for convergence plots)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.unique(np.geomspace(min(10, x.size), x.size, points).astype(np.int64))
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    closs = np.cumsum(x < 0)
    mean = csum[n - 1] / n
    var = np.maximum(csq[n - 1] / n - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    p = closs[n - 1] / n
    return {"paths": n, "mean": mean, "mean_se": np.sqrt(var / n), "p_loss": p, "p_loss_se": np.sqrt(p * (1 - p) / n)}


def antithetic_mean_se(x: np.ndarray, block: int) -> float:
    """Standard error of the mean of antithetic pairs: within each whole block of ``block``
    values, value i is paired with value i + block / 2; the SE is that of the pair means
    (values of an incomplete last block are left out of the SE, not of the mean)."""
    x = np.asarray(x, dtype=np.float64)
    whole = x.size // block * block
    if whole == 0:
        return mean_se(x)
    pairs = x[:whole].reshape(-1, 2, block // 2).mean(axis=1).ravel()
    return mean_se(pairs)
