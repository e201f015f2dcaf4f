"""Fitting the BTC price models to daily log returns, by maximum likelihood.

Each ``fit_*`` takes daily log returns and gives a :class:`Fit`: the scenario keys of the
model (what goes under ``market:``), the log-likelihood and AIC, and diagnostics. The
YAML text is made by :func:`to_yaml`; reading the CSV is :mod:`kzsim.scenario.history`'s job.

Conventions match :mod:`kzsim.model.prices`: ``btc_drift_per_year`` is mu with
E[S_t] = S_0 exp(mu t), volatilities are annualised with 365 days.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, signal, special, stats

from kzsim.units import DAYS_PER_YEAR

MODELS = ("gbm", "jump_diffusion", "garch", "bootstrap")
MIN_RETURNS = 30
MAX_JUMPS_A_DAY = 12


@dataclass
class Fit:
    model: str
    keys: dict  # scenario keys under market:, nested for the model's section
    log_likelihood: float | None
    n_parameters: int
    n_returns: int
    diagnostics: list[str] = field(default_factory=list)
    standard_errors: dict = field(default_factory=dict)

    @property
    def aic(self) -> float | None:
        return None if self.log_likelihood is None else 2 * self.n_parameters - 2 * self.log_likelihood


def _check(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.size < MIN_RETURNS:
        raise ValueError(f"{r.size} daily returns (allowed: at least {MIN_RETURNS}, i.e. {MIN_RETURNS + 1} days)")
    if not np.isfinite(r).all():
        raise ValueError("returns are not all finite (allowed: positive prices on every day)")
    return r


def describe(r: np.ndarray) -> list[str]:
    """Sample facts every fit reports: volatility, tails, clustering."""
    r = np.asarray(r)
    years = r.size / DAYS_PER_YEAR
    acf_sq = _autocorrelation(r * r - np.mean(r * r), 1)
    return [
        f"{r.size} daily log returns ({years:.1f} years)",
        f"annualised volatility {np.std(r, ddof=1) * math.sqrt(DAYS_PER_YEAR):.3f}; "
        f"skewness {stats.skew(r):.2f}; excess kurtosis {stats.kurtosis(r):.1f} (normal: 0)",
        f"worst / best day {np.min(r):+.3f} / {np.max(r):+.3f} log; "
        f"autocorrelation of squared returns at lag 1: {acf_sq:.2f} (0 = no volatility clustering)",
    ]


def _autocorrelation(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    denom = float(np.dot(x, x))
    return float(np.dot(x[:-lag], x[lag:]) / denom) if denom > 0 else 0.0


def _elapsed(r: np.ndarray, days) -> np.ndarray:
    """Days each return spans: 1 unless ``days`` says (a file with missing days)."""
    if days is None:
        return np.ones(r.size)
    days = np.asarray(days, dtype=np.float64)
    if days.shape != r.shape or not (days >= 1).all():
        raise ValueError("elapsed days must be >= 1, one per return")
    return days


def fit_gbm(r: np.ndarray, days=None) -> Fit:
    """GBM: mean and variance of log returns (the MLE, with the unbiased variance).

    mu = (mean + var/2) * 365, sigma = sd * sqrt(365). The standard error of mu is
    sigma / sqrt(years): the drift of a few years of BTC is barely known. With ``days``
    (the days each return spans, for a file with missing days) the likelihood is the exact
    one of returns over those spans: r_i ~ N(m d_i, s^2 d_i), m = sum r / sum d.
    """
    r = _check(r)
    dt = _elapsed(r, days)
    m = float(np.sum(r) / np.sum(dt))
    s = float(math.sqrt(np.sum((r - m * dt) ** 2 / dt) / (r.size - 1)))
    drift = (m + 0.5 * s * s) * DAYS_PER_YEAR
    vol = s * math.sqrt(DAYS_PER_YEAR)
    years = float(np.sum(dt)) / DAYS_PER_YEAR
    ll = float(np.sum(stats.norm.logpdf(r, m * dt, s * np.sqrt(dt))))
    diag = describe(r / np.sqrt(dt)) + [
        f"drift {drift:+.3f}/year has standard error {vol / math.sqrt(years):.3f}: "
        "history says little about the future drift (a view of 0 is common)",
        f"Jarque-Bera p-value {stats.jarque_bera(r).pvalue:.2g} (small: the returns are not normal)",
    ]
    out = Fit("gbm", {"btc_drift_per_year": drift, "btc_volatility_per_year": vol}, ll, 2, r.size, diag)
    out.standard_errors = {
        "btc_drift_per_year": vol / math.sqrt(years),
        "btc_volatility_per_year": vol / math.sqrt(2 * r.size),
    }
    return out


def merton_log_density(r, mu_day, sigma_day, lam_day, m, s, days=1.0):
    """Log density of a log return over ``days`` days under Merton's model (jumps truncated at 12 a day).

    r = (mu_day - sigma_day^2/2 - lam_day k) d + sigma_day sqrt(d) Z + sum of N jumps, N ~ Poisson(lam_day d).
    """
    k = math.expm1(m + 0.5 * s * s)
    d = np.asarray(days, dtype=np.float64)
    centre = (mu_day - 0.5 * sigma_day**2 - lam_day * k) * d
    n = np.arange(MAX_JUMPS_A_DAY + 1)[:, None]
    rate = max(lam_day, 1e-300) * d
    log_pois = n * np.log(rate) - rate - special.gammaln(n + 1)
    var = sigma_day**2 * d + n * s * s
    log_norm = -0.5 * (np.log(2 * np.pi * var) + (r[None, :] - centre - n * m) ** 2 / var)
    return special.logsumexp(log_pois + log_norm, axis=0)


def fit_jump_diffusion(r: np.ndarray, days=None) -> Fit:
    """Merton jump diffusion by maximum likelihood (L-BFGS-B from several starts); ``days``:
    the days each return spans (the likelihood over them is exact)."""
    r = _check(r)
    dt = _elapsed(r, days)
    s_all = float(np.std(r / np.sqrt(dt), ddof=1))
    m_all = float(np.sum(r) / np.sum(dt))

    def nll(theta):
        mu, log_sig, log_lam, jm, log_js = theta
        density = merton_log_density(r, mu, math.exp(log_sig), math.exp(log_lam), jm, math.exp(log_js), dt)
        return -float(np.sum(density))

    bounds = [
        (m_all - 10 * s_all, m_all + 10 * s_all),
        (math.log(s_all / 20), math.log(2 * s_all)),
        (math.log(1e-4), math.log(2.0)),
        (-0.5, 0.5),
        (math.log(s_all / 4), math.log(1.0)),
    ]
    best = None
    for lam0, frac in ((0.02, 0.7), (0.1, 0.8), (0.3, 0.5)):
        x0 = [m_all, math.log(frac * s_all), math.log(lam0), 0.0, math.log(max(2 * s_all, 1e-3))]
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    mu_d, log_sig, log_lam, jm, log_js = best.x
    sig, lam, js = math.exp(log_sig), math.exp(log_lam), math.exp(log_js)
    vol = sig * math.sqrt(DAYS_PER_YEAR)
    jumps_per_year = lam * DAYS_PER_YEAR
    k = math.expm1(jm + 0.5 * js * js)
    drift = mu_d * DAYS_PER_YEAR  # mu_day is mu dt in merton_log_density: E[S_t] = S_0 exp(mu t)
    gbm = fit_gbm(r, dt)
    lr = 2 * (-best.fun - gbm.log_likelihood)
    diag = describe(r / np.sqrt(dt)) + [
        f"diffusion volatility {vol:.3f}/sqrt(year); {jumps_per_year:.1f} jumps a year of log size "
        f"N({jm:+.3f}, {js:.3f}^2) (mean move {k:+.1%})",
        f"log-likelihood {-best.fun:.1f} vs {gbm.log_likelihood:.1f} for GBM: likelihood-ratio {lr:.0f} "
        "on 3 more parameters",
        f"optimiser: {'converged' if best.success else 'did not report convergence: ' + str(best.message)}",
    ]
    keys = {
        "btc_drift_per_year": drift,
        "btc_volatility_per_year": vol,
        "jump_diffusion": {"jumps_per_year": jumps_per_year, "jump_mean_log": jm, "jump_volatility_log": js},
    }
    return Fit("jump_diffusion", keys, -best.fun, 5, r.size, diag)


def garch_variance(eps: np.ndarray, omega: float, alpha: float, beta: float, h0: float) -> np.ndarray:
    """Conditional variances h_t of GARCH(1,1), h_0 given, h_{t+1} = omega + alpha eps_t^2 + beta h_t.

    Examples
    --------
    >>> garch_variance(np.array([0.1, 0.0, 0.0]), 0.01, 0.5, 0.4, 0.02).round(6)
    array([0.02  , 0.023 , 0.0192])
    """
    x = omega + alpha * eps[:-1] ** 2
    h = np.empty(eps.size)
    h[0] = h0
    if eps.size > 1:
        h[1:], _ = signal.lfilter([1.0], [1.0, -beta], x, zi=[beta * h0])
    return h


def hessian_se(nll, x: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
    """Standard errors sqrt(diag(H^-1)) from a central-difference Hessian of ``nll`` at ``x``
    (NaN where the Hessian is not positive definite, e.g. at a bound)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    h = rel_step * np.maximum(np.abs(x), 1e-3)
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            f = nll(x + e_i + e_j) - nll(x + e_i - e_j) - nll(x - e_i + e_j) + nll(x - e_i - e_j)
            with np.errstate(over="ignore", invalid="ignore"):  # a step past a bound, where nll is 1e300
                hess[i, j] = hess[j, i] = f / (4 * h[i] * h[j])
    if not np.isfinite(hess).all():
        return np.full(n, np.nan)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full(n, np.nan)
    d = np.diag(cov)
    return np.where(d > 0, np.sqrt(np.abs(d)), np.nan)


def fit_garch(r: np.ndarray) -> Fit:
    """GARCH(1,1) with a constant mean by Gaussian quasi-maximum likelihood.

    r_t = c + eps_t, eps_t = sqrt(h_t) Z_t; the first variance is the sample variance.
    In the scenario's form (:func:`kzsim.model.prices.garch`) c = mu dt - h/2, so mu is
    (c + sigma_LR^2 dt / 2) * 365.
    """
    r = _check(r)
    var0 = float(np.var(r))

    def nll(theta):
        c, log_omega, a, b = theta
        if a + b >= 0.9999:
            return 1e300
        h = garch_variance(r - c, math.exp(log_omega), a, b, var0)
        return 0.5 * float(np.sum(np.log(2 * np.pi * h) + (r - c) ** 2 / h))

    best = None
    for a0, b0 in ((0.05, 0.9), (0.1, 0.8), (0.2, 0.6)):
        x0 = [float(np.mean(r)), math.log(var0 * (1 - a0 - b0)), a0, b0]
        bounds = [(None, None), (math.log(var0 * 1e-6), math.log(var0 * 2)), (0.0, 0.999), (0.0, 0.999)]
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    c, log_omega, alpha, beta = best.x
    se = hessian_se(lambda th: nll(th) if th[2] >= 0 and th[3] >= 0 else 1e300, best.x)
    omega = math.exp(log_omega)
    persistence = alpha + beta
    long_run_day = omega / (1 - persistence)
    long_run = math.sqrt(long_run_day * DAYS_PER_YEAR)
    h = garch_variance(r - c, omega, alpha, beta, var0)
    h_next = omega + alpha * (r[-1] - c) ** 2 + beta * h[-1]
    half_life = math.log(0.5) / math.log(persistence) if 0 < persistence < 1 else float("inf")
    z = (r - c) / np.sqrt(h)
    drift = (c + 0.5 * long_run_day) * DAYS_PER_YEAR
    diag = describe(r) + [
        f"alpha {alpha:.4f} (SE {se[2]:.4f}), beta {beta:.4f} (SE {se[3]:.4f}), from the likelihood's curvature",
        f"persistence alpha + beta = {persistence:.4f}: a volatility shock halves in {half_life:.0f} days",
        f"long-run volatility {long_run:.3f}; volatility after the last day {math.sqrt(h_next * DAYS_PER_YEAR):.3f}",
        f"standardised residuals: excess kurtosis {stats.kurtosis(z):.1f}, autocorrelation of squares at lag 1 "
        f"{_autocorrelation(z * z - 1, 1):.2f} (GARCH removes clustering, not all of the fat tails)",
        f"log-likelihood {-best.fun:.1f}; optimiser: "
        f"{'converged' if best.success else 'did not report convergence: ' + str(best.message)}",
    ]
    keys = {
        "btc_drift_per_year": drift,
        "garch": {
            "long_run_volatility_per_year": long_run,
            "alpha": float(alpha),
            "beta": float(beta),
            "start_volatility_per_year": math.sqrt(h_next * DAYS_PER_YEAR),
        },
    }
    out = Fit("garch", keys, -best.fun, 4, r.size, diag)
    out.standard_errors = {"alpha": float(se[2]), "beta": float(se[3])}
    return out


def fit_bootstrap(r: np.ndarray, *, csv_path: str, from_date=None, to_date=None, mean_block_days=None) -> Fit:
    """The stationary bootstrap needs no fit; the mean block length follows Politis & White (2004).

    The automatic block length is b = (2 G^2 / D)^(1/3) n^(1/3) with G and D from the
    flat-top lag window of the autocovariances of |r| (clustering lives in the
    magnitudes, not the signs); it is bounded to [5, 250] days.
    """
    r = _check(r)
    block = float(mean_block_days) if mean_block_days else politis_white_block_length(np.abs(r))
    section = {"returns_csv": csv_path, "mean_block_days": round(block, 1), "drift": "scenario"}
    if from_date:
        section["from_date"] = str(from_date)
    if to_date:
        section["to_date"] = str(to_date)
    gbm = fit_gbm(r)
    diag = describe(r) + [
        f"mean block {block:.1f} days ({'given' if mean_block_days else 'Politis-White automatic choice on |returns|'})",
        f"historical drift {gbm.keys['btc_drift_per_year']:+.3f}/year is removed ('drift: scenario'); "
        "set drift: historical to keep it",
    ]
    keys = {"btc_drift_per_year": 0.0, "bootstrap": section}
    return Fit("bootstrap", keys, None, 0, r.size, diag)


def politis_white_block_length(x: np.ndarray) -> float:
    """Automatic mean block length of the stationary bootstrap (Politis & White 2004, Patton et al. 2009)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = x.size
    k_n = max(5, int(math.ceil(math.log10(n))))
    m_max = int(math.ceil(math.sqrt(n))) + k_n
    c = 2.0 * math.sqrt(math.log10(n) / n)
    acov = np.array([np.dot(x[: n - k], x[k:]) / n for k in range(m_max + 1)])
    rho = acov / acov[0]
    m_hat = m_max
    for m in range(1, m_max - k_n + 1):
        if np.all(np.abs(rho[m : m + k_n]) < c):
            m_hat = m
            break
    m_lag = min(2 * max(m_hat, 1), m_max)
    k = np.arange(-m_lag, m_lag + 1)
    t = np.abs(k / m_lag)
    weights = np.where(t <= 0.5, 1.0, np.clip(2.0 * (1.0 - t), 0.0, 1.0))  # flat-top lag window
    g = float(np.sum(weights * np.abs(k) * acov[np.abs(k)]))
    d = float(2.0 * np.sum(weights * acov[np.abs(k)]) ** 2)
    if d <= 0:
        return 5.0
    b = (2.0 * g * g / d) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(np.clip(b, 5.0, 250.0))


SPIKE_THRESHOLD = 3.0  # a day whose fees are over 3x the month's running median is in a spike
SPIKE_WINDOW_DAYS = 31


def fit_fees(fees_per_block: np.ndarray) -> Fit:
    """Fees per block: a persistent lognormal level with spikes (:func:`kzsim.model.processes.fees_per_block`).

    * spikes: days whose fees exceed ``SPIKE_THRESHOLD`` times the centred 31-day running
      median; an episode starts on the first such day. Rate = episodes a year; the
      multiplier is the first day's fees over the running median (lognormal fit); the
      half-life h solves (M - 1) 2^(-L/h) = threshold - 1 for an episode of L days (median);
    * the level: median of all days; sd and lag-1 autocorrelation of log fees on the days
      outside spikes give sigma and tau = -1 / log(phi).
    """
    f = np.asarray(fees_per_block, dtype=np.float64)
    if f.size < 2 * SPIKE_WINDOW_DAYS:
        raise ValueError(f"{f.size} days of fees (allowed: at least {2 * SPIKE_WINDOW_DAYS})")
    x = np.log(f)
    from scipy.ndimage import median_filter

    base = median_filter(x, size=SPIKE_WINDOW_DAYS, mode="nearest")
    above = x - base > math.log(SPIKE_THRESHOLD)
    starts = np.flatnonzero(above & ~np.r_[False, above[:-1]])
    ends = np.flatnonzero(above & ~np.r_[above[1:], False])
    years = f.size / DAYS_PER_YEAR
    median = float(np.median(f))
    calm = ~above
    xc = x[calm] - np.median(x[calm])
    pairs = calm[1:] & calm[:-1]
    phi = float(np.corrcoef(x[:-1][pairs], x[1:][pairs])[0, 1]) if pairs.sum() > 2 else 0.0
    tau = -1.0 / math.log(phi) if 0 < phi < 1 else 0.0
    sigma = float(np.std(xc, ddof=1))
    keys = {
        "fees_btc_per_block": median,
        "fees_log_volatility": sigma,
        "fees_persistence_days": round(tau, 1),
        "fees_spike_rate_per_year": starts.size / years,
    }
    diag = [
        f"{f.size} days of fees per block ({years:.1f} years): median {median:.4g} BTC/block, "
        f"5-95 % {np.percentile(f, 5):.4g} to {np.percentile(f, 95):.4g}, max {f.max():.4g}",
        f"level outside spikes: sd of log {sigma:.3f}, lag-1 autocorrelation {phi:.3f} (time constant {tau:.1f} days)",
        f"{starts.size} spike episode(s) (fees > {SPIKE_THRESHOLD:g}x the {SPIKE_WINDOW_DAYS}-day running median)",
    ]
    if starts.size:
        mult = np.exp(x[starts] - base[starts])
        lengths = ends - starts + 1
        with np.errstate(divide="ignore"):
            h = lengths / np.log2(np.maximum(mult - 1.0, 1.0 + 1e-9) / (SPIKE_THRESHOLD - 1.0))
        h = h[np.isfinite(h) & (h > 0)]
        half_life = float(np.median(h)) if h.size else 1.0
        log_m = np.log(mult - 1.0)
        keys["fees_spike_extra"] = {
            "dist": "lognormal",
            "median": float(np.exp(np.median(log_m))),
            "sigma": float(np.std(log_m, ddof=1)) if log_m.size > 1 else 0.0,
        }
        keys["fees_spike_half_life_days"] = round(half_life, 1)
        diag.append(
            f"first-day multipliers: median {np.median(mult):.1f}x, max {mult.max():.1f}x; "
            f"episodes last {np.median(lengths):.0f} days (median), half-life {half_life:.1f} days"
        )
        if log_m.size < 2:
            diag.append("one spike only: its multiplier's spread cannot be estimated (sigma 0)")
    return Fit("fees", keys, None, 0, f.size, diag)


GAP_MODELS = ("gbm", "jump_diffusion")  # exact likelihoods over returns that span several days


def fit(model: str, r: np.ndarray, days=None, **bootstrap_options) -> Fit:
    """Fit ``model`` to log returns ``r``; ``days`` (the days each spans) for GBM and jumps only."""
    if days is not None and model not in GAP_MODELS and np.any(np.asarray(days) != 1):
        raise ValueError(
            f"returns over several days (missing days) cannot be fitted by {model!r} (allowed: gbm, jump_diffusion)"
        )
    if model == "gbm":
        return fit_gbm(r, days)
    if model == "jump_diffusion":
        return fit_jump_diffusion(r, days)
    if model == "garch":
        return fit_garch(r)
    if model == "bootstrap":
        return fit_bootstrap(r, **bootstrap_options)
    raise ValueError(f"unknown model {model!r} (allowed: {', '.join(MODELS)})")


def neutral_drift(fit_: Fit) -> Fit:
    """The fit with ``btc_drift_per_year: 0`` (no view on direction), the fitted drift and its
    standard error kept as a comment: a few years of history barely know the drift, and
    pasted as printed it would make one bull (or bear) market the scenario's central case."""
    fitted = fit_.keys.get("btc_drift_per_year")
    if fitted is None or fit_.model == "bootstrap":  # bootstrap already removes it ('drift: scenario')
        return fit_
    se = fit_.standard_errors.get("btc_drift_per_year")
    keys = {**fit_.keys, "btc_drift_per_year": 0.0}
    errors = {k: v for k, v in fit_.standard_errors.items() if k != "btc_drift_per_year"}
    note = (
        f"btc_drift_per_year is set to 0 (no view on direction); the history's fitted drift is {fitted:+.3f}/year"
        + (f" (standard error {se:.3f})" if se is not None else "")
        + ": --drift historical prints it"
    )
    return Fit(
        fit_.model, keys, fit_.log_likelihood, fit_.n_parameters, fit_.n_returns, [*fit_.diagnostics, note], errors
    )


def to_yaml(fit_: Fit, header: list[str]) -> str:
    """The fit as a block to paste under ``market:``, with its diagnostics as comments."""
    lines = [f"# {h}" for h in header]
    lines += [f"# {d}" for d in fit_.diagnostics]
    if fit_.log_likelihood is not None:
        lines.append(f"# log-likelihood {fit_.log_likelihood:.1f}, AIC {fit_.aic:.1f} ({fit_.n_parameters} parameters)")
    if fit_.model in MODELS:
        lines.append(f"price_model: {fit_.model}")

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, str):
            return json.dumps(v)  # a double-quoted YAML string
        return str(v)

    for key, value in fit_.keys.items():
        if isinstance(value, dict) and "dist" in value:
            lines.append(f"{key}: {{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}")
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {fmt(v)}" for k, v in value.items()]
        else:
            se = fit_.standard_errors.get(key)
            lines.append(f"{key}: {fmt(value)}" + (f"  # standard error {se:.3g}" if se is not None else ""))
    return "\n".join(lines) + "\n"
