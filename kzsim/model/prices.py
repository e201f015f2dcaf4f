"""BTC price processes, as pure functions of pre-drawn shocks.

Every model gives daily prices (n_days, n_paths) from a start price, and every model
except the bootstrap keeps E[S_t] = S_0 exp(mu t) for the drift mu of the scenario, so
switching models changes the shape of the distribution (tails, volatility clusters),
not its centre. Zero shocks give the drift path.

* ``gbm``: log S_{t+1} - log S_t = (mu - sigma^2/2) dt + sigma sqrt(dt) Z_t.
* ``jump_diffusion`` (Merton 1976): GBM plus N_t ~ Poisson(lambda dt) jumps a day with
  log sizes ~ N(m, s^2); the drift is compensated by lambda k dt, k = exp(m + s^2/2) - 1.
* ``garch`` (Bollerslev 1986, GARCH(1,1)): r_t = mu dt - h_t/2 + sqrt(h_t) Z_t,
  h_{t+1} = omega + alpha h_t Z_t^2 + beta h_t, omega = sigma_LR^2 dt (1 - alpha - beta).
* ``bootstrap`` (Politis & Romano 1994, stationary bootstrap): historical daily log
  returns in blocks of geometric length with mean L, starting at uniform days of the
  history (wrapping around), re-centred on the scenario's drift unless told to keep
  the historical one.
"""

from __future__ import annotations

import numpy as np

from kzsim.model.processes import cumsum_days
from kzsim.units import DAYS_PER_YEAR

DT_YEARS = 1.0 / DAYS_PER_YEAR


def _prices(start, log_increments: np.ndarray) -> np.ndarray:
    """exp(log S_0 + cumulative increments), day 0 included."""
    start = np.asarray(start, dtype=np.float64)
    n_steps, n_paths = log_increments.shape
    log = np.empty((n_steps + 1, n_paths))
    log[0] = np.log(start)
    cumsum_days(log_increments, out=log[1:])
    log[1:] += log[0]
    return np.exp(log)


def jump_compensator(jump_mean_log, jump_volatility_log):
    """k = E[e^J] - 1 for J ~ N(m, s^2): the mean relative size of a jump."""
    return np.expm1(np.asarray(jump_mean_log) + 0.5 * np.asarray(jump_volatility_log) ** 2)


def jump_diffusion(
    start,
    drift_per_year,
    volatility_per_year,
    jumps_per_year,
    jump_mean_log,
    jump_volatility_log,
    shocks,
    jump_log_sums,
) -> np.ndarray:
    """Merton jump diffusion sampled daily.

    Parameters
    ----------
    start, drift_per_year, volatility_per_year : array (n_paths,)
        S_0 [USD], mu [1/year], diffusion sigma [1/sqrt(year)].
    jumps_per_year, jump_mean_log, jump_volatility_log : array (n_paths,)
        lambda [1/year], mean m and sd s of a jump's log size.
    shocks : array (n_days - 1, n_paths)
        Standard normals of the diffusion.
    jump_log_sums : array (n_days - 1, n_paths)
        Sum of the log sizes of the jumps of each day (0 on days without one).

    Notes
    -----
    log S_{t+1} - log S_t = (mu - sigma^2/2 - lambda k) dt + sigma sqrt(dt) Z_t + sum of jumps,
    so that E[S_t] = S_0 exp(mu t).

    Examples
    --------
    One jump of log size log(0.5) halves the drift-free path from that day on:

    >>> j = np.array([[0.0], [np.log(0.5)]])
    >>> jump_diffusion(np.array([100.0]), 0.0, 0.0, 0.0, 0.0, 0.0, np.zeros((2, 1)), j).ravel()
    array([100., 100.,  50.])
    """
    k = jump_compensator(jump_mean_log, jump_volatility_log)
    drift = (drift_per_year - 0.5 * volatility_per_year**2 - jumps_per_year * k) * DT_YEARS
    inc = drift + volatility_per_year * np.sqrt(DT_YEARS) * shocks + jump_log_sums
    return _prices(start, inc)


def garch(
    start, drift_per_year, long_run_volatility_per_year, alpha, beta, start_volatility_per_year, shocks
) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) log returns with the scenario's drift.

    Parameters
    ----------
    start, drift_per_year : array (n_paths,)
    long_run_volatility_per_year : array (n_paths,)
        sigma_LR: the unconditional volatility [1/sqrt(year)].
    alpha, beta : array (n_paths,)
        ARCH and GARCH coefficients, alpha + beta < 1.
    start_volatility_per_year : array (n_paths,)
        Conditional volatility of the first day's return [1/sqrt(year)].
    shocks : array (n_days - 1, n_paths)

    Returns
    -------
    prices : array (n_days, n_paths)
    volatility_per_year : array (n_days - 1, n_paths)
        Conditional volatility of each day's return, annualised.

    Notes
    -----
    r_t = mu dt - h_t / 2 + sqrt(h_t) Z_t and h_{t+1} = omega + alpha h_t Z_t^2 + beta h_t,
    omega = sigma_LR^2 dt (1 - alpha - beta). Given h_t, E[exp(r_t)] = exp(mu dt), so
    E[S_t] = S_0 exp(mu t) as for GBM; E[h_t] tends to sigma_LR^2 dt.

    Examples
    --------
    >>> p, v = garch(np.array([100.0]), 0.0, 0.5, 0.1, 0.8, 0.5, np.zeros((2, 1)))
    >>> p.ravel().round(4)
    array([100.    ,  99.9658,  99.935 ])
    """
    n_steps, n_paths = shocks.shape
    omega = np.asarray(long_run_volatility_per_year) ** 2 * DT_YEARS * (1.0 - alpha - beta)
    h = np.broadcast_to(np.asarray(start_volatility_per_year, dtype=np.float64) ** 2 * DT_YEARS, (n_paths,)).copy()
    mu = np.asarray(drift_per_year) * DT_YEARS
    inc = np.empty((n_steps, n_paths))
    var = np.empty((n_steps, n_paths))
    for t in range(n_steps):
        z = shocks[t]
        var[t] = h
        inc[t] = mu - 0.5 * h + np.sqrt(h) * z
        h = omega + (alpha * z * z + beta) * h
    return _prices(start, inc), np.sqrt(var * DAYS_PER_YEAR)


def bootstrap_indices(n_history: int, new_block: np.ndarray, start_index: np.ndarray) -> np.ndarray:
    """Day indices into the history for the stationary bootstrap.

    Parameters
    ----------
    n_history : int
        Number of historical returns.
    new_block : bool array (n_steps, n_paths)
        True where a new block starts (row 0 is treated as True).
    start_index : int array (n_steps, n_paths)
        Where a block starting on that day starts in the history.

    Examples
    --------
    >>> nb = np.array([[True], [False], [True], [False]])
    >>> si = np.array([[8], [0], [3], [0]])
    >>> bootstrap_indices(10, nb, si).ravel()
    array([8, 9, 3, 4])
    """
    n_steps, n_paths = new_block.shape
    steps = np.arange(n_steps)[:, None]
    new = new_block.copy()
    new[0] = True
    block_start = np.maximum.accumulate(np.where(new, steps, 0), axis=0)
    first = np.take_along_axis(start_index, block_start, axis=0)
    return (first + steps - block_start) % n_history


def draw_bootstrap_indices(
    new_block_rng: np.random.Generator, start_rng: np.random.Generator, n_history: int, mean_block_days: float, shape
) -> np.ndarray:
    """Stationary-bootstrap indices (``shape`` = (n_steps, n_paths)): a new block with probability
    1/L a day, starting at a uniform day of the history (:func:`bootstrap_indices`)."""
    new_block = new_block_rng.random(shape) < 1.0 / mean_block_days
    start = np.minimum((start_rng.random(shape) * n_history).astype(np.int64), n_history - 1)
    return bootstrap_indices(n_history, new_block, start)


def bootstrap(start, log_returns: np.ndarray, indices: np.ndarray, drift_per_year=None) -> np.ndarray:
    """Prices from historical log returns at ``indices`` (n_days - 1, n_paths).

    With ``drift_per_year`` (array (n_paths,)) the returns are re-centred first
    (:func:`recentred_log_returns`); with None they keep the historical drift.

    Examples
    --------
    >>> bootstrap(np.array([100.0]), np.log([2.0, 0.5]), np.array([[0], [0], [1]])).ravel()
    array([100., 200., 400., 200.])
    """
    if drift_per_year is None:
        return _prices(start, log_returns[indices])
    base = recentred_log_returns(log_returns, 0.0)
    return _prices(start, base[indices] + np.asarray(drift_per_year) * DT_YEARS)


def recentred_log_returns(log_returns: np.ndarray, drift_per_year: float) -> np.ndarray:
    """Historical returns shifted so that exp(return) has mean exp(mu dt) under the bootstrap.

    The shift keeps every feature but the mean: volatility, fat tails and clusters within
    blocks stay. Then E[S_t] = S_0 exp(mu t) up to the dependence between blocks.

    Examples
    --------
    >>> r = recentred_log_returns(np.array([0.1, -0.05, 0.02]), 0.0)
    >>> float(np.mean(np.exp(r))).__round__(12)
    1.0
    """
    r = np.asarray(log_returns, dtype=np.float64)
    return r - np.log(np.mean(np.exp(r))) + drift_per_year * DT_YEARS
