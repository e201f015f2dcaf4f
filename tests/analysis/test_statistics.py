"""Statistics against closed forms, tolerances from the standard error (z = 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kzsim import stats
from kzsim.engine.run import run_paths
from tests.conftest import make_scenario

Z = 4.0


def within(estimate: float, expected: float, se: float) -> bool:
    return abs(estimate - expected) <= Z * se


@pytest.fixture(scope="module")
def gbm_run():
    sc = make_scenario(
        **{
            "simulation.horizon_days": 366,  # 365 daily steps: T = 1 year
            "market.btc_drift_per_year": 0.1,
            "market.btc_volatility_per_year": 0.6,
        }
    )
    return run_paths(sc, paths=20_000)


def test_gbm_log_return_mean_and_variance(gbm_run):
    mu, sigma, t, n = 0.1, 0.6, 1.0, gbm_run.paths
    log_ret = np.log(gbm_run.per_path["final_btc_price_usd"] / 100_000)
    mean_expected = (mu - sigma**2 / 2) * t
    var_expected = sigma**2 * t
    assert within(log_ret.mean(), mean_expected, math.sqrt(var_expected / n))
    # the sample variance of normal data has SE var * sqrt(2 / (n - 1))
    assert within(log_ret.var(ddof=1), var_expected, var_expected * math.sqrt(2 / (n - 1)))


def test_gbm_price_mean(gbm_run):
    final = gbm_run.per_path["final_btc_price_usd"]
    assert within(final.mean(), 100_000 * math.exp(0.1), stats.mean_se(final))


def test_outage_count_is_seasonal_poisson():
    rate, winter, stress = 6.0, 3.0, 1.5
    sc = make_scenario(
        **{
            "simulation.horizon_days": 365,
            "simulation.start_date": "2026-01-01",
            "grid.outage_rate_per_year": rate,
            "grid.winter_rate_multiplier": winter,
            "grid.grid_stress_multiplier": stress,
        }
    )
    counts = run_paths(sc, paths=20_000).per_path["grid_outages"]
    winter_days = 31 + 28 + 31 + 30 + 31  # Jan, Feb, Mar, Nov, Dec 2026
    lam = rate * stress * ((365 - winter_days) + winter * winter_days) / 365
    assert within(counts.mean(), lam, math.sqrt(lam / counts.size))
    assert within(counts.var(ddof=1), lam, lam * math.sqrt(2 / counts.size + 1 / (lam * counts.size)))


@pytest.mark.parametrize("p", [0.02, 0.1])  # drawn per path (rare) and per path-day (frequent)
def test_missed_prepayments_lose_whole_days(p):
    days = 200
    sc = make_scenario(
        **{
            "simulation.horizon_days": days,
            "electricity.procurement_mode": "day_ahead",
            "electricity.payment_failure_probability": p,
        }
    )
    hours = run_paths(sc, paths=10_000).per_path["downtime_payment_hours"]
    assert np.all(np.mod(hours, 24) == 0)
    se = 24 * math.sqrt(days * p * (1 - p) / hours.size)
    assert within(hours.mean(), 24 * days * p, se)


def test_failed_lots_idle_one_lot_for_their_hours():
    """Lots mode: each failed lot idles min(lot power, farm power) for its hours."""
    p, days, idle = 0.01, 100, 3.0
    sc = make_scenario(
        **{
            "simulation.horizon_days": days,
            "electricity.payment_failure_probability": p,
            "electricity.payment_failure_idle_hours": idle,
        }
    )
    hours = run_paths(sc, paths=10_000).per_path["downtime_payment_hours"]
    lots = math.ceil(0.44 * 24)  # 11 lots of 1 MWh a day; 1 MW > 0.44 MW: a failure idles the farm
    # failures start uniformly in the day; those on the last day lose E[max(0, s + 3 - 24)] = 3^2 / 48 h
    expected = days * lots * p * idle - lots * p * idle**2 / 48
    assert within(hours.mean(), expected, stats.mean_se(hours))


def test_wilson_interval_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662
    lo, hi = stats.wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_var_and_cvar_on_a_known_sample():
    profit = np.arange(-50.0, 50.0)  # -50 .. 49, 100 values
    assert stats.expected_shortfall(profit, 0.95) == -np.mean([-50, -49, -48, -47, -46])
    assert stats.expected_shortfall(profit, 0.99) == 50.0
    assert stats.value_at_risk(profit, 0.95) == -np.quantile(profit, 0.05)


def _tail_closed_form(name: str, p: float) -> tuple[float, float, float]:
    """(variance below the p-quantile, mean below it, the quantile) of N(0, 1) or U(0, 1)."""
    from scipy.stats import norm

    if name == "uniform":
        return p * p / 12.0, p / 2.0, p
    q = norm.ppf(p)
    lam = norm.pdf(q) / p
    return 1.0 - q * lam - lam * lam, -lam, q


@pytest.mark.parametrize(("name", "p", "n"), [("normal", 0.01, 20_000), ("uniform", 0.05, 4_000)])
def test_cvar_standard_error_matches_the_spread_of_repeated_estimates(name, p, n):
    """The SE of the 99 % / 95 % CVaR against the sd of 500 estimates from independent
    samples (the sd's own SE: sd / sqrt(2 (R - 1))), which matches the closed form
    (Var(X | X <= q) + (1 - p) (m - q)^2) / (n p). The sd of the worst k over sqrt(k),
    kzsim's former SE, is a third (normal) and a half (uniform) too small: this test fails it."""
    rng = np.random.default_rng(2024)
    reps = 500
    draw = rng.standard_normal if name == "normal" else rng.uniform
    estimates, ses = np.empty(reps), np.empty(reps)
    for r in range(reps):
        x = draw(size=n)
        estimates[r] = stats.expected_shortfall(x, 1 - p)
        ses[r] = stats.expected_shortfall_se(x, 1 - p)
    tail_var, tail_mean, q = _tail_closed_form(name, p)
    exact = math.sqrt((tail_var + (1 - p) * (tail_mean - q) ** 2) / (n * p))
    spread = estimates.std(ddof=1)
    spread_se = spread / math.sqrt(2 * (reps - 1))
    assert within(spread, exact, spread_se)  # the closed form is the estimates' spread
    # and the stated SE is it too (measured: z = 0.01 normal, 0.65 uniform; the former SE: -10 and -15)
    assert within(ses.mean(), spread, math.hypot(spread_se, ses.std(ddof=1) / math.sqrt(reps)))


def test_p_loss_ci_covers_and_se_formula():
    assert stats.proportion_se(0.25, 100) == math.sqrt(0.25 * 0.75 / 100)
    lo, hi = stats.wilson_interval(25, 100)
    assert lo < 0.25 < hi


# (n, q) of the intervals kzsim states: the per-day percentiles' sample (4,096 paths or all
# of a smaller run), the summary's VaR and medians, and small samples in the tails
INTERVAL_CASES = [(n, q) for n in (20, 50, 300, 4096, 100_000) for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)]


def _coverage(n: int, lo: int, hi: int, q: float) -> float:
    """P(lo < B <= hi), B ~ Binomial(n, q): the chance that the order statistics at indices
    lo and hi bracket the q-quantile (-1 and n are the open ends)."""
    from scipy.stats import binom

    return float(binom.cdf(hi, n, q) - (binom.cdf(lo, n, q) if lo >= 0 else 0.0))


@pytest.mark.parametrize(("n", "q"), INTERVAL_CASES)
def test_quantile_ci_indices_cover_and_are_the_tightest(n, q):
    from scipy.stats import binom

    lo, hi = stats.quantile_ci_indices(n, q)
    assert -1 <= lo < hi <= n
    assert _coverage(n, lo, hi, q) >= 0.95
    # each side misses at most 2.5 %, and one step inwards would miss more
    assert (binom.cdf(lo, n, q) if lo >= 0 else 0.0) <= 0.025 < binom.cdf(lo + 1, n, q)
    assert binom.cdf(hi, n, q) >= 0.975 > binom.cdf(hi - 1, n, q)


def test_quantile_ci_indices_open_a_side_when_the_sample_is_too_small():
    # 20 values: the smallest lies above the 1 % quantile with probability 0.99^20 = 82 %
    assert stats.quantile_ci_indices(20, 0.01)[0] == -1
    assert stats.quantile_ci_indices(20, 0.99)[1] == 20
    assert stats.quantile_ci(np.arange(20.0), 0.01) == (-math.inf, 1.0)
    assert stats.quantile_ci(np.arange(20.0), 0.99) == (18.0, math.inf)


def test_quantile_ci_takes_the_order_statistics():
    x = np.random.default_rng(5).permutation(1000).astype(float)  # values = their sorted indices
    for q in (0.05, 0.5, 0.95):
        lo, hi = stats.quantile_ci_indices(1000, q)
        assert stats.quantile_ci(x, q) == (lo, hi)


@pytest.mark.parametrize(("n", "q"), [(4096, 0.05), (4096, 0.5), (50, 0.05), (300, 0.95)])
def test_quantile_ci_coverage_matches_the_binomial(n, q):
    """Over 4,000 samples of uniforms (whose q-quantile is q), the share of intervals that
    hold q is the exact coverage, within three of its standard errors."""
    reps = 4000
    x = np.random.default_rng(17).random((reps, n))
    lo, hi = stats.quantile_ci_indices(n, q)
    inside = [i for i in (lo, hi) if 0 <= i < n]
    x.partition(inside, axis=1)
    low = x[:, lo] if lo >= 0 else np.full(reps, -np.inf)
    high = x[:, hi] if hi < n else np.full(reps, np.inf)
    covered = np.mean((low <= q) & (q <= high))
    exact = _coverage(n, lo, hi, q)
    assert abs(covered - exact) <= 3 * stats.proportion_se(exact, reps)


@pytest.mark.parametrize("q", [0.05, 0.25, 0.5, 0.95])
def test_quantile_estimate_levels(q):
    """The q-quantile estimated from n uniforms is the level it lands on: at least 95 % of
    4,000 estimates fall in the stated levels (to three standard errors), and each end is
    where the order statistic it comes from (the k-th smallest, k = floor((n - 1) q) + 1,
    and the next) lies below with probability 2.5 % / above with 2.5 %, by the binomial
    identity P(X_(k) <= p) = P(Binomial(n, p) >= k) for uniforms."""
    from scipy.stats import binom

    n, reps = 4096, 4000
    estimates = np.quantile(np.random.default_rng(23).random((reps, n)), q, axis=1)
    lo, hi = stats.quantile_estimate_levels(n, q)
    assert lo < q < hi
    inside = np.mean((lo <= estimates) & (estimates <= hi))
    assert inside >= 0.95 - 3 * stats.proportion_se(0.95, reps)
    k = math.floor((n - 1) * q) + 1
    assert binom.sf(k - 1, n, lo) == pytest.approx(0.025, rel=1e-9)  # P(X_(k) <= lo)
    assert binom.sf(k, n, hi) == pytest.approx(0.975, rel=1e-9)  # P(X_(k+1) <= hi)


def test_daily_percentiles_and_their_intervals_are_the_samples_order_statistics():
    from kzsim.engine.merge import TIMESERIES_QUANTILES, daily_percentiles

    rng = np.random.default_rng(3)
    samples = [rng.standard_normal((30, n)) for n in (4096, 500, 20, 1)]  # 20 paths and fewer: open sides
    samples.append(np.round(samples[1] * 3))  # ties, as up_fraction has at 1.0
    with_nan = samples[1].copy()
    with_nan[::7, 3] = np.nan  # NaN on some days: np.quantile's NaN there, the same values elsewhere
    samples.append(with_nan)
    for sample in samples:
        n = sample.shape[1]
        ordered = np.sort(sample, axis=1)
        expected = np.quantile(sample, TIMESERIES_QUANTILES, axis=1)
        quantiles, ci95 = daily_percentiles(sample)
        np.testing.assert_array_equal(quantiles, expected)  # the bits np.quantile gives unsorted
        if not np.isnan(sample).any():  # bit for bit, but for the sign of zero (-0.0 == 0.0 may sort either way)
            assert (quantiles + 0.0).tobytes() == (expected + 0.0).tobytes()
        assert ci95.shape == (2, len(TIMESERIES_QUANTILES), 30)
        for i, q in enumerate(TIMESERIES_QUANTILES):
            lo, hi = stats.quantile_ci_indices(n, q)
            np.testing.assert_array_equal(ci95[0, i], ordered[:, lo] if lo >= 0 else -np.inf)
            np.testing.assert_array_equal(ci95[1, i], ordered[:, hi] if hi < n else np.inf)
        if n == 20:
            assert np.all(ci95[0, 0] == -np.inf) and np.all(ci95[1, -1] == np.inf)


def test_uniform_subsets_are_distinct_and_uniform():
    from kzsim.engine.draws import uniform_subsets

    n, k, slots = 20_000, 3, 5
    out = uniform_subsets(np.full(n, k), np.full(n, slots), np.random.default_rng(11)).reshape(n, k)
    assert all(len(set(row)) == k for row in out[:2000])
    assert np.all(np.sort(out, axis=1)[:, 1:] != np.sort(out, axis=1)[:, :-1])
    share = np.bincount(out.ravel(), minlength=slots) / n  # each slot is in a subset with probability k / slots
    se = math.sqrt((k / slots) * (1 - k / slots) / n)
    assert np.all(np.abs(share - k / slots) <= Z * se)


def test_antithetic_price_shocks_pair_up_and_stay_unbiased():
    from kzsim.stats import antithetic_mean_se

    mu, sigma, n = 0.1, 0.6, 8192
    sc = make_scenario(
        **{
            "simulation.horizon_days": 366,
            "simulation.variance_reduction": "antithetic",
            "market.btc_drift_per_year": mu,
            "market.btc_volatility_per_year": sigma,
        }
    )
    final = run_paths(sc, paths=n).per_path["final_btc_price_usd"]
    log_ret = np.log(final / 100_000).reshape(-1, 2, 512)
    # paths i and i + 512 of a block have opposite shocks: their log-returns average to the drift
    np.testing.assert_allclose(log_ret.mean(axis=1), mu - sigma**2 / 2, rtol=0, atol=1e-12)
    assert within(final.mean(), 100_000 * math.exp(mu), antithetic_mean_se(final, 1024))


def test_antithetic_variates_reduce_the_variance_of_mean_profit():
    from kzsim.scenario.loading import load_scenario
    from kzsim.stats import antithetic_mean_se, mean_se
    from tests.conftest import SCENARIOS

    base = load_scenario(SCENARIOS / "kz-2025-baseline.yaml", {"simulation.horizon_days": 365})
    anti = base.replace(**{"simulation.variance_reduction": "antithetic"})
    plain = run_paths(base, paths=4096).per_path["profit_usd"]
    paired = run_paths(anti, paths=4096).per_path["profit_usd"]
    factor = (mean_se(plain) / antithetic_mean_se(paired, 1024)) ** 2
    assert factor > 1.5  # measured 2.1 on the 730-day baseline at 20,480 paths


def test_standard_errors_of_fewer_than_two_values_are_unknown():
    """s / sqrt(n) needs two values: one says nothing of the spread (NaN, not 0)."""
    assert stats.mean_se(np.array([3.0, 5.0])) == pytest.approx(1.0)  # s = sqrt(2), over sqrt(2)
    assert math.isnan(stats.mean_se(np.array([3.0]))) and math.isnan(stats.mean_se(np.array([])))
    assert stats.mean_se(np.full(4, 3.0)) == 0.0  # known exactly: every value the same
    one = stats.running_estimates(np.array([-1.0]))  # the convergence page of a one-path run
    assert one["paths"].tolist() == [1] and math.isnan(one["mean_se"][0]) and one["mean"][0] == -1.0
    three = stats.running_estimates(np.array([-1.0, 2.0, 4.0]))
    assert three["mean_se"][-1] == pytest.approx(stats.mean_se(np.array([-1.0, 2.0, 4.0])), rel=1e-12)
