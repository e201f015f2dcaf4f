"""What drives the risk, and where a farm breaks even: tornado and break-even analyses.

Every variant of a scenario is simulated with the scenario's seed, so all of them share
their random draws (common random numbers): a change in a result comes from the input
that was moved, not from noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize

from kzsim import stats
from kzsim.engine.cluster import check_workers
from kzsim.engine.merge import RunOutput
from kzsim.engine.run import TASK_PATHS, PathsDone, run_paths
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.schema import Scenario


def _runner(paths: int | None, seed: int | None, **kwargs) -> Callable[..., RunOutput]:
    """``run(scenario, progress=None)``: a run of the analysis (per-path values only)."""
    if kwargs.get("client") is not None:
        check_workers(kwargs["client"])  # the same code on every worker, or the bits could differ
    return lambda sc, progress=None: run_paths(
        sc, paths=paths, seed=seed, percentiles=False, progress=progress, **kwargs
    )


def _headline(run: RunOutput) -> tuple[float, float]:
    profit = run.per_path["profit_usd"]
    return float(profit.mean()), float(np.mean(profit < 0))


def _side_by_side(function: Callable, items: list, at_once: int) -> list:
    """``[function(item) for item in items]``, ``at_once`` calls at a time on threads (runs,
    each on one thread of its own or on a cluster: a run's numbers do not depend on where it
    ran). An exception cancels the calls not started and waits for the running ones."""
    if at_once <= 1 or len(items) < 2:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(min(at_once, len(items)), thread_name_prefix="kzsim-runs")
    try:
        return list(pool.map(function, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _runs_at_once(kwargs: dict, paths_per_run: int) -> int:
    """Runs an analysis keeps going side by side: its ``threads`` (popped: each run then has
    one), and with a Dask ``client`` at least enough that every worker thread of the
    cluster has a task (a run sends one a :data:`~kzsim.engine.run.TASK_PATHS` paths), and no
    more: each run's per-path table waits in this process until the run ends."""
    at_once = kwargs.pop("threads", 1)
    client = kwargs.get("client")
    if client is not None:
        check_workers(client)  # the same code on every worker, or the bits could differ
        tasks_per_run = -(-paths_per_run // TASK_PATHS)
        at_once = max(at_once, -(-sum(client.nthreads().values()) // tasks_per_run))
    return at_once


def _headlines(run: Callable[..., RunOutput], scenarios: list[Scenario], threads: int, done: PathsDone):
    """:func:`_headline` of each scenario's run, ``threads`` runs at a time."""
    return _side_by_side(lambda sc: _headline(run(sc, done.run())), scenarios, threads)


def tornado(
    scenario: Scenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    low: float = 0.1,
    high: float = 0.9,
    progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """One-at-a-time sensitivity of mean profit and P(loss) to each uncertain parameter.

    Each parameter given as a distribution is fixed at its ``low`` and ``high``
    percentiles in turn, all else as in the scenario, on common random numbers.
    ``progress(done_paths, total_paths)`` is called as the runs go, over all of them.
    ``threads`` runs go side by side, each on one thread; with a Dask ``client`` (their
    chunks on the cluster) enough to give every worker thread a task. The table is the
    same either way.

    Returns
    -------
    DataFrame, one row per parameter, sorted by the swing of mean profit (largest first):
    ``parameter``, ``value_low``, ``value_high``, ``mean_profit_low_usd``,
    ``mean_profit_high_usd``, ``delta_mean_profit_low_usd``, ``delta_mean_profit_high_usd``,
    ``p_loss_low``, ``p_loss_high``, ``delta_p_loss_low``, ``delta_p_loss_high``,
    ``swing_usd`` (|high - low| of mean profit); ``base_mean_profit_usd`` and
    ``base_p_loss`` are in ``.attrs``.
    """
    n = scenario.simulation.paths if paths is None else paths
    threads = _runs_at_once(kwargs, n)  # runs side by side, each on one thread: the same numbers
    run = _runner(paths, seed, **kwargs)
    varied = {
        name: [float(dist.ppf(np.array([q]))[0]) for q in (low, high)]
        for name, dist in scenario.uncertain_parameters().items()
        if not dist.is_fixed
    }
    jobs = [scenario] + [scenario.replace(**{name: v}) for name, values in varied.items() for v in values]
    headlines = _headlines(run, jobs, threads, PathsDone(progress, len(jobs) * n))
    base_mean, base_loss = headlines[0]
    rows = []
    for i, (name, values) in enumerate(varied.items()):
        (m_lo, l_lo), (m_hi, l_hi) = headlines[1 + 2 * i : 3 + 2 * i]
        rows.append(
            {
                "parameter": name,
                "value_low": values[0],
                "value_high": values[1],
                "mean_profit_low_usd": m_lo,
                "mean_profit_high_usd": m_hi,
                "delta_mean_profit_low_usd": m_lo - base_mean,
                "delta_mean_profit_high_usd": m_hi - base_mean,
                "p_loss_low": l_lo,
                "p_loss_high": l_hi,
                "delta_p_loss_low": l_lo - base_loss,
                "delta_p_loss_high": l_hi - base_loss,
                "swing_usd": abs(m_hi - m_lo),
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("swing_usd", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(base_mean_profit_usd=base_mean, base_p_loss=base_loss, low=low, high=high)
    return table


def break_even(
    scenario: Scenario,
    parameter: str,
    *,
    p_loss_level: float = 0.05,
    paths: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, None], None] | None = None,
    **kwargs,
) -> dict:
    """Values of ``parameter`` (fixed on every path) where mean profit after tax is zero and
    where P(loss) equals ``p_loss_level``, found by root-finding on common random numbers.
    ``progress(done_paths, None)`` is called as the runs go (how many the search takes is
    not known before).

    Returns a dict with ``mean_zero`` (value, standard error by the delta method: the SE
    of mean profit there over the slope) and ``p_loss_level`` (value, and the range of
    values over which the Wilson 95 % interval of P(loss) contains the level), or None
    for a root that does not exist in the searched range.
    """
    run = _runner(paths, seed, **kwargs)
    start = scenario.uncertain_parameters()[parameter].mean()
    cache: dict[float, np.ndarray] = {}
    done = PathsDone(progress, None)

    def profits(x: float) -> np.ndarray:
        if x not in cache:
            cache[x] = run(scenario.replace(**{parameter: x}), done.run()).per_path["profit_usd"]
        return cache[x]

    def valid(x: float) -> bool:
        try:
            scenario.replace(**{parameter: x})
        except ScenarioError:
            return False
        return True

    out: dict = {"parameter": parameter, "p_loss_level": p_loss_level}
    bracket = _bracket(lambda x: profits(x).mean(), start, valid)
    if bracket is not None:
        lo, hi = bracket
        mean_root = optimize.brentq(lambda x: profits(x).mean(), lo, hi, xtol=1e-5 * max(abs(start), 1e-6))
        h = 1e-3 * max(abs(mean_root), 1e-6)
        slope = (profits(mean_root + h).mean() - profits(mean_root - h).mean()) / (2 * h)
        se = stats.mean_se(profits(mean_root)) / abs(slope) if slope else math.inf
        out["mean_zero"] = {
            "value": mean_root,
            "se": se,
            "ci95": [mean_root - stats.Z95 * se, mean_root + stats.Z95 * se],
        }
    else:
        out["mean_zero"] = None

    n = len(profits(start))

    def p_loss(x: float) -> float:
        return float(np.mean(profits(x) < 0))

    def crossing(level_of: Callable[[float], float]) -> float | None:
        a, b = lo, hi
        ga, gb = level_of(a) - p_loss_level, level_of(b) - p_loss_level
        if ga * gb > 0:
            return None
        for _ in range(40):
            m = 0.5 * (a + b)
            gm = level_of(m) - p_loss_level
            if gm == 0:
                return m
            if ga * gm < 0:
                b, gb = m, gm
            else:
                a, ga = m, gm
            if abs(b - a) <= 1e-3 * abs(m):  # far below the Monte Carlo uncertainty of the crossing
                break
        return 0.5 * (a + b)

    def wilson(k: int) -> Callable[[float], float]:
        return lambda x: stats.wilson_interval(int(np.count_nonzero(profits(x) < 0)), n)[k]

    level_bracket = _bracket(lambda x: p_loss(x) - p_loss_level, start, valid)
    if level_bracket is None:
        out["p_loss_at_level"] = None
        return out
    lo, hi = level_bracket
    level_root = crossing(p_loss)
    if level_root is None:
        out["p_loss_at_level"] = None
    else:
        ends = [crossing(wilson(0)), crossing(wilson(1))]
        ends = sorted(v for v in ends if v is not None)
        out["p_loss_at_level"] = {"value": level_root, "ci95": ends if len(ends) == 2 else None}
    return out


def _bracket(f: Callable[[float], float], start: float, valid: Callable[[float], bool]):
    """Two values of the parameter, around ``start``, where ``f`` changes sign: the search
    halves and doubles ``start`` (down to 0 where allowed, up to the key's limit), one step
    each way at a time, so that it stops at the nearest change. None when there is none."""
    f0 = f(start)
    down = [start / 2**k for k in range(1, 11)] + [0.0]
    up = [start * 2**k for k in range(1, 11)]
    last = {"down": (start, f0), "up": (start, f0)}
    for step in range(len(down)):
        for way, values in (("down", down), ("up", up)):
            if step >= len(values) or last[way] is None:
                continue
            x = values[step]
            if not valid(x):
                last[way] = None
                continue
            fx = f(x)
            px, pf = last[way]
            if pf * fx <= 0:
                return (x, px) if x < px else (px, x)
            last[way] = (x, fx)
    return None


def sweep(
    scenario: Scenario,
    grid: dict[str, list[float]],
    *,
    paths: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Headline figures on a grid of one or two parameters, on common random numbers.

    ``grid`` maps dotted keys to the values to try (``progress(done_paths, total_paths)``
    is called as the runs go, over all of them). Returns one row per grid point: the
    values, ``p_loss`` with its Wilson 95 % interval, ``mean_profit_usd`` with its
    standard error, and the median cash and all-in cost per BTC.
    """
    if not 1 <= len(grid) <= 2:
        raise ValueError("a sweep takes one or two parameters")
    keys = list(grid)
    points = [[v] for v in grid[keys[0]]]
    if len(keys) == 2:
        points = [[a, b] for a in grid[keys[0]] for b in grid[keys[1]]]
    run = _runner(paths, seed, **kwargs)
    done = PathsDone(progress, len(points) * (scenario.simulation.paths if paths is None else paths))
    rows = []
    for point in points:
        out = run(scenario.replace(**dict(zip(keys, point, strict=True))), done.run()).per_path
        profit = out["profit_usd"]
        losses = int(np.count_nonzero(profit < 0))
        lo, hi = stats.wilson_interval(losses, profit.size)
        cash, all_in = out["cash_cost_per_btc_usd"], out["all_in_cost_per_btc_usd"]
        rows.append(
            {
                **dict(zip(keys, point, strict=True)),
                "p_loss": losses / profit.size,
                "p_loss_ci95_low": lo,
                "p_loss_ci95_high": hi,
                "mean_profit_usd": float(profit.mean()),
                "mean_profit_se_usd": stats.mean_se(profit),
                "cash_cost_per_btc_p50_usd": float(np.nanmedian(cash)) if np.isfinite(cash).any() else math.nan,
                "all_in_cost_per_btc_p50_usd": float(np.nanmedian(all_in)) if np.isfinite(all_in).any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


MAX_GRID_VALUES = 200


def parse_grid(text: str) -> tuple[str, list[float]]:
    """``key=start:stop:step`` (stop included) or ``key=v1,v2,...`` -> (key, values).

    The values are counted before any is made (``0:1e12:1`` is refused at once), and every
    bound, step and value must be a finite number."""
    if "=" not in text:
        raise ValueError(f"{text}: expected section.key=start:stop:step or section.key=v1,v2,...")
    key, spec = (part.strip() for part in text.split("=", 1))
    shown = text if len(text) <= 80 else text[:77] + "..."
    allowed = f"allowed: start:stop:step with finite numbers, step > 0 and stop >= start, or v1,v2,...; 1 to {MAX_GRID_VALUES} values"
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if not all(math.isfinite(x) for x in (start, stop, step)) or step <= 0 or stop < start:
                raise ValueError
            span = (stop - start) / step  # inf when it overflows
            if not span < MAX_GRID_VALUES:
                many = f"{span + 1:,.0f}" if math.isfinite(span) else f"over {MAX_GRID_VALUES}"
                raise ValueError(f"{shown}: {many} values ({allowed})")
            count = math.floor(span + 1e-9) + 1
            values = [start + i * step for i in range(count)]
        else:
            if spec.count(",") >= MAX_GRID_VALUES:
                raise ValueError(f"{shown}: {spec.count(',') + 1:,} values ({allowed})")
            values = [float(x) for x in spec.split(",")]
            if not all(math.isfinite(v) for v in values):
                raise ValueError
    except ValueError as exc:
        if str(exc).startswith(shown):
            raise
        raise ValueError(f"{shown}: not a grid ({allowed})") from None
    return key, values


def blackout_cost(
    scenario: Scenario,
    *,
    duration_hours: float = 48.0,
    start_day: int | None = None,
    start_hour: float = 18.0,
    paths: int | None = None,
    seed: int | None = None,
    base: dict[str, np.ndarray] | None = None,
    **kwargs,
) -> dict:
    """What one extra blackout costs, path by path, on common random numbers.

    ``base``: the per-path outputs of the first ``paths`` paths of a run of ``scenario`` with
    ``seed`` (a run's own, which are the bits a run of those paths gives): only the run with
    the blackout is then simulated.

    The scenario is run as given and with a blackout of ``duration_hours`` (plus the restart
    time) added on every path, from ``start_hour`` on ``start_day`` (default: the middle of
    the first winter in the horizon, or of the horizon). The cost is the fall in profit
    after tax; it is also given in days of profit: the cost over the path's mean daily
    profit after tax, and over its mean daily mining margin (revenue less power, mining
    fee and platform fees), for the paths where those are positive. Where the margin is
    negative a blackout saves money: ``share_saving`` says on how many paths.
    """
    cal_days = scenario.simulation.horizon_days
    if start_day is None:
        from kzsim.model.paths import Calendar

        winter = np.flatnonzero(Calendar.of(scenario).is_winter)
        if winter.size:
            first = winter[: (np.flatnonzero(np.diff(winter) > 1)[:1].tolist() or [winter.size - 1])[0] + 1]
            start_day = int(first[first.size // 2])
        else:
            start_day = cal_days // 2
    forced = [f.model_dump() for f in scenario.grid.forced_outages]
    forced.append({"start_day": start_day, "start_hour": start_hour, "duration_hours": duration_hours})
    stressed = scenario.replace(**{"grid.forced_outages": forced})
    if base is None:
        base = run_paths(scenario, paths=paths, seed=seed, percentiles=False, **kwargs).per_path
    hit = run_paths(stressed, paths=paths, seed=seed, percentiles=False, **kwargs).per_path
    cost = base["profit_usd"] - hit["profit_usd"]
    margin = base["revenue_usd"] - base["energy_cost_usd"] - base["mining_fee_usd"] - base["procurement_fee_usd"]

    def days_of(per_day: np.ndarray) -> dict:
        ok = per_day > 0
        days = cost[ok] / per_day[ok]
        return {
            "share_of_paths": float(ok.mean()),
            "p05": float(np.percentile(days, 5)) if ok.any() else None,
            "p50": float(np.median(days)) if ok.any() else None,
            "p95": float(np.percentile(days, 95)) if ok.any() else None,
        }

    start_date = (np.datetime64(scenario.simulation.start_date) + start_day).astype(str)
    return {
        "duration_hours": duration_hours,
        "start": f"{start_date} {int(start_hour):02d}:{int(round(start_hour % 1 * 60)):02d}",
        "paths": int(cost.size),
        "cost_usd": {
            "mean": float(cost.mean()),
            "mean_se": stats.mean_se(cost),
            **stats.percentiles(cost, (5, 50, 95)),
        },
        "days_of_profit_after_tax": days_of(base["profit_usd"] / cal_days),
        "days_of_mining_margin": days_of(margin / cal_days),
        "share_saving": float(np.mean(cost < 0)),
    }


def sobol_base_samples(n: int) -> int:
    """The base samples of a Saltelli design asked for ``n``: a power of two, at least 2
    (each of the design's ``d + 2`` matrices has that many rows)."""
    return 1 << max(int(n) - 1, 1).bit_length()


def sobol_indices(
    names: list[str],
    ppfs: list[Callable[[np.ndarray], np.ndarray]],
    evaluate: Callable[[dict[str, np.ndarray]], np.ndarray],
    n_base: int,
    seed: int = 0,
    at_once: int = 1,
) -> pd.DataFrame:
    """First-order and total Sobol indices of ``evaluate`` with SALib (Saltelli design).

    ``ppfs[i]`` maps uniforms to values of input ``names[i]``; ``evaluate`` gets one matrix
    of the design (a dict of arrays of ``n_base`` values, row j of every matrix built from
    base sample j) and returns the output for each row; it is called for ``at_once``
    matrices at a time, on threads (so it must not depend on its order). ``n_base`` is rounded
    up to a power of two (Sobol sequences need it). Returns one row per input, sorted by
    total index: ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (95 % bootstrap half-widths).
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    n_base = sobol_base_samples(n_base)
    d = len(names)
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    u = sobol_sample.sample(problem, n_base, calc_second_order=False, scramble=True, seed=seed)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    y = np.empty(len(u))
    k = d + 2  # SALib's rows per base sample: A, AB_1 .. AB_d, B

    def matrix(m: int) -> dict[str, np.ndarray]:
        rows = u[m::k]
        return {name: ppf(rows[:, i]) for i, (name, ppf) in enumerate(zip(names, ppfs, strict=True))}

    for m, values in enumerate(_side_by_side(lambda m: evaluate(matrix(m)), list(range(k)), at_once)):
        y[m::k] = values
    result = sobol_analyze.analyze(problem, y, calc_second_order=False, conf_level=0.95, seed=seed)
    table = pd.DataFrame(
        {
            "parameter": list(names),
            "S1": result["S1"],
            "S1_conf": result["S1_conf"],
            "ST": result["ST"],
            "ST_conf": result["ST_conf"],
        }
    )
    table = table.sort_values("ST", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(n_base=n_base, evaluations=len(u), output_variance=float(np.var(y)))
    return table


def sobol(
    scenario: Scenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Sobol indices of profit after tax over the scenario's uncertain parameters.

    Each matrix of the Saltelli design is run as ``paths`` paths (rounded up to a power of
    two) whose parameters are the design's rows and whose price, outage and payment draws
    are the paths' own, the same in every matrix (common random numbers). What the
    parameters do not explain (1 - the sum of S1, less interactions) is the randomness of
    those processes. Events whose count depends on a varied parameter (an outage rate)
    are redrawn with it, so their noise is shared only approximately.
    ``progress(done_paths, total_paths)`` is called as the matrices run, over all of them.
    ``threads`` matrices run side by side, each on one thread; with a Dask ``client`` (their
    chunks on the cluster) enough to give every worker thread a task. The indices are the
    same either way.
    """
    dists = {k: d for k, d in scenario.uncertain_parameters().items() if not d.is_fixed}
    if not dists:
        raise ValueError("the scenario has no uncertain parameter (give some as distributions)")
    n = scenario.simulation.paths if paths is None else paths
    at_once = _runs_at_once(kwargs, sobol_base_samples(n))
    s = scenario.simulation.seed if seed is None else seed
    done = PathsDone(progress, sobol_base_samples(n) * (len(dists) + 2))

    def evaluate(values: dict[str, np.ndarray]) -> np.ndarray:
        m = len(next(iter(values.values())))
        run = run_paths(scenario, paths=m, seed=s, overrides=values, percentiles=False, progress=done.run(), **kwargs)
        return run.per_path["profit_usd"]

    return sobol_indices(list(dists), [d.ppf for d in dists.values()], evaluate, n, seed=s % 2**32, at_once=at_once)


def sobol_reading(table: pd.DataFrame) -> str:
    """Which inputs matter, in words."""
    if not len(table):
        return "No uncertain parameter."
    top = table.head(3)
    parts = [f"{r.parameter} ({r.ST:.0%} with interactions, {r.S1:.0%} alone)" for r in top.itertuples()]
    explained = float(np.clip(table["S1"].clip(lower=0).sum(), 0, 1))
    minor = list(table.loc[table["ST"] + table["ST_conf"] < 0.01, "parameter"])
    text = (
        "Share of the variance of profit after tax that each input explains: " + "; ".join(parts) + ". "
        f"The parameters alone explain about {explained:.0%}; the rest is the randomness of the BTC price, "
        "hashrate, fees, outages and payments, and interactions."
    )
    if minor:
        text += f" Negligible (total index below 1 %): {', '.join(minor)}."
    return text


def shutoff_value(scenario: Scenario, *, paths: int | None = None, seed: int | None = None, **kwargs) -> dict:
    """What the economic shut-off policy earns, path by path, on common random numbers.

    The scenario is run with ``farm.economic_shutoff`` on and off; the gain is the rise in
    profit after tax. It differs from the day-ahead margin the policy avoided
    (``economic_shutoff_margin_avoided_usd``) by what the decision could not see: coins
    sold on AIFC days later at another price, whole lots, tax, and restart costs.
    """
    on = run_paths(
        scenario.replace(**{"farm.economic_shutoff": True}), paths=paths, seed=seed, percentiles=False, **kwargs
    ).per_path
    off = run_paths(
        scenario.replace(**{"farm.economic_shutoff": False}), paths=paths, seed=seed, percentiles=False, **kwargs
    ).per_path
    gain = on["profit_usd"] - off["profit_usd"]
    out = {"paths": int(gain.size), "gain_usd": {"mean": float(gain.mean()), "mean_se": stats.mean_se(gain)}}
    out["gain_usd"].update(stats.percentiles(gain, (5, 50, 95)))
    out["share_gaining"] = float(np.mean(gain > 0))
    out["days_idle_mean"] = float(on["economic_shutoff_days"].mean())
    out["p_loss_without"] = float(np.mean(off["profit_usd"] < 0))
    out["p_loss_with"] = float(np.mean(on["profit_usd"] < 0))
    return out
