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
    """Standard error of the sample mean, s / sqrt(n); NaN for fewer than two samples (one
    sample says nothing about the spread: 0 would claim an exact mean)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return math.nan
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
    # (at k = 0 or n the bound at p is exact: the arithmetic above can miss it by 1e-19)
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def value_at_risk(profit: np.ndarray, level: float) -> float:
    """VaR at ``level`` (e.g. 0.95): minus the (1 - level) quantile of profit.

    Positive numbers are losses.
    """
    return float(-np.quantile(profit, 1.0 - level))


def _worst(profit: np.ndarray, level: float) -> tuple[np.ndarray, int]:
    """The worst ceil((1 - level) n) outcomes (in no order), and n."""
    x = np.asarray(profit, dtype=np.float64)
    k = max(1, math.ceil((1.0 - level) * x.size - 1e-9))
    return np.partition(x, k - 1)[:k], x.size


def expected_shortfall(profit: np.ndarray, level: float) -> float:
    """CVaR (expected shortfall) at ``level``: minus the mean of the worst
    ceil((1 - level) n) outcomes. Positive numbers are losses."""
    worst, _ = _worst(profit, level)
    return float(-worst.mean())


def expected_shortfall_and_se(profit: np.ndarray, level: float) -> tuple[float, float]:
    """:func:`expected_shortfall` and :func:`expected_shortfall_se` from one selection of the tail."""
    worst, n = _worst(profit, level)
    return float(-worst.mean()), _shortfall_se(worst, n)


def quantile_ci_indices(n: int, q: float, level: float = 0.95) -> tuple[int, int]:
    """Where a distribution-free ``level`` confidence interval of the q-quantile lies among
    ``n`` independent values sorted: 0-based indices (lo, hi) of its ends.

    Notes
    -----
    The count of values at or below the true quantile is B ~ Binomial(n, q). The value at
    index i is at or below it when B > i, and at or above it when B <= i. ``lo`` is the
    largest i with P(B <= i) <= (1 - level) / 2 and ``hi`` the smallest with
    P(B <= hi) >= (1 + level) / 2, so the interval covers the quantile with probability
    P(lo < B <= hi) >= ``level``, whatever the distribution (if continuous).

    ``lo`` is -1 when even the smallest value is too likely to lie above the quantile (the
    interval is then open below: -inf), and ``hi`` is ``n`` when even the largest is too
    likely to lie below it (+inf): in the tails of small samples.

    Examples
    --------
    >>> quantile_ci_indices(4096, 0.05)
    (177, 233)
    >>> quantile_ci_indices(20, 0.01)  # 20 values say nothing of the 1 % quantile's lower side
    (-1, 1)
    """
    a = (1.0 - level) / 2.0
    binomial = stats.binom(n, q)
    # ppf inverts the cdf numerically: its answers are only starting points, made exact here
    lo = int(binomial.ppf(a))  # about the smallest i with P(B <= i) >= a
    while lo >= 0 and binomial.cdf(lo) > a:
        lo -= 1
    while lo + 1 < n and binomial.cdf(lo + 1) <= a:
        lo += 1
    hi = int(binomial.ppf(1.0 - a))  # about the smallest i with P(B <= i) >= 1 - a
    while hi > 0 and binomial.cdf(hi - 1) >= 1.0 - a:
        hi -= 1
    while binomial.cdf(hi) < 1.0 - a:
        hi += 1
    return lo, min(hi, n)


def quantile_ci(x: np.ndarray, q: float, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free ``level`` confidence interval of the q-quantile of the values ``x``
    (order statistics at :func:`quantile_ci_indices`; -inf or +inf where a side is open)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = quantile_ci_indices(x.size, q, level)
    inside = [i for i in (lo, hi) if 0 <= i < x.size]
    part = np.partition(x, inside) if inside else x
    return (float(part[lo]) if lo >= 0 else -math.inf, float(part[hi]) if hi < x.size else math.inf)


def quantile_estimate_levels(n: int, q: float, level: float = 0.95) -> tuple[float, float]:
    """The levels between which the q-quantile estimated from ``n`` independent values
    (numpy's default, linear between the order statistics at (n - 1) q) falls with
    probability at least ``level``: the estimate is the true quantile of some level in
    this interval. How far a percentile band drawn from a sample of paths can stray.

    Notes
    -----
    For a continuous distribution F, F(X_(k)) ~ Beta(k, n + 1 - k) for the k-th smallest
    of n values. The estimate lies between X_(k) and X_(k+1), k = floor((n - 1) q) + 1; the
    interval runs from the (1 - level) / 2 quantile of the first Beta to the (1 + level) / 2
    quantile of the second.

    Examples
    --------
    >>> [round(v, 4) for v in quantile_estimate_levels(4096, 0.05)]
    [0.0436, 0.0572]
    """
    a = (1.0 - level) / 2.0
    k = min(math.floor((n - 1) * q) + 1, n)
    k_next = min(k + 1, n)
    return float(stats.beta.ppf(a, k, n + 1 - k)), float(stats.beta.ppf(1.0 - a, k_next, n + 1 - k_next))


def percentiles(x: np.ndarray, levels=(1, 5, 50, 95, 99)) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {f"p{lv:02d}": float("nan") for lv in levels}
    values = np.percentile(x, levels)
    return {f"p{lv:02d}": float(v) for lv, v in zip(levels, values)}


def expected_shortfall_se(profit: np.ndarray, level: float) -> float:
    """Standard error of :func:`expected_shortfall` (asymptotic, from its influence function).

    Notes
    -----
    With tail probability p, the tail's start q (the p-quantile of profit) and its mean
    m = E[X | X <= q], the estimate's variance is (Var(X | X <= q) + (1 - p) (m - q)^2) / (n p)
    (the influence function of the mean below the p-quantile is
    (x - q) 1{x <= q} / p + q - m). Here: the worst k = ceil(p n) outcomes, their variance
    and mean, q the largest of them and p = k / n. The second term is the uncertainty of
    where the tail starts; without it (the sd of the worst k over sqrt(k)) the error is
    understated by a third for a normal tail and by half for a uniform one (tested against
    the spread of repeated estimates). NaN from fewer than two tail outcomes.
    """
    return _shortfall_se(*_worst(profit, level))


def _shortfall_se(worst: np.ndarray, n: int) -> float:
    k = worst.size
    if k < 2:
        return math.nan
    start = worst.max()  # the k-th smallest outcome
    variance = worst.var(ddof=1) + (1.0 - k / n) * (worst.mean() - start) ** 2
    return float(math.sqrt(variance / k))


def running_estimates(x: np.ndarray, points: int = 60) -> dict[str, np.ndarray]:
    """Mean, share below zero and 99 % CVaR (:func:`expected_shortfall`) of the first n
    values, with standard errors, at about ``points`` path counts spaced evenly on a log
    scale (for convergence plots)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.unique(np.geomspace(min(10, x.size), x.size, points).astype(np.int64))
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    closs = np.cumsum(x < 0)
    mean = csum[n - 1] / n
    var = np.maximum(csq[n - 1] / n - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    p = closs[n - 1] / n
    se = np.where(n > 1, np.sqrt(var / n), np.nan)  # as mean_se: unknown from one value
    cvar, cvar_se = np.array([expected_shortfall_and_se(x[:m], 0.99) for m in n]).T
    return {
        "paths": n,
        "mean": mean,
        "mean_se": se,
        "p_loss": p,
        "p_loss_se": np.sqrt(p * (1 - p) / n),
        "cvar_99": cvar,
        "cvar_99_se": cvar_se,
    }


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
