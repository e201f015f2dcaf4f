"""The Python API for notebooks and scripts.

>>> import kzsim
>>> sc = kzsim.load_scenario("scenarios/kz-2025-baseline.yaml")    # doctest: +SKIP
>>> sc = sc.replace(**{"electricity.tariff_kzt_per_kwh": 30})      # doctest: +SKIP
>>> res = kzsim.simulate(sc, paths=2000)                            # doctest: +SKIP
>>> res.summary["p_loss"], res.paths.head(), res.timeseries.head()  # doctest: +SKIP
>>> res.write("reports/my-run")                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib

from kzsim.analysis.summary import ANALYSES, written_analyses
from kzsim.engine.cluster import check_workers, dask_client
from kzsim.engine.concurrency import Background
from kzsim.engine.memory import release_freed_memory
from kzsim.engine.merge import RunPrefix
from kzsim.engine.run import PathsDone, Progress, run_paths
from kzsim.engine.system import usable_cpus
from kzsim.results import Results
from kzsim.scenario.schema import Scenario


def simulate(
    scenario: Scenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    chunk_paths: int | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    analyses: tuple[str, ...] = (),
    threads: int | None = None,
    extend: Results | RunPrefix | None = None,
) -> Results:
    """Simulate ``scenario`` and return its :class:`~kzsim.results.Results`.

    ``paths`` and ``seed`` default to the scenario's ``simulation`` section;
    ``progress(done_paths, total_paths)`` is called after every chunk. ``workers=N`` runs
    the chunks on N local processes, ``scheduler="tcp://host:8786"`` on an existing Dask
    cluster, ``client=`` on a Dask client you already have. Otherwise the chunks run on
    ``threads`` threads of this process (default: one for each CPU it may use; each thread
    holds one chunk's working memory, 40-60 MB with the default chunks). The results have
    the same bits in every case.

    ``analyses`` names analyses to have ready in the summary (see
    :func:`kzsim.analysis.summary.analyses_for_write`: ``Results.write`` needs them). They do not
    depend on the run's results, so they run beside it: on a cluster as one task of their
    own; in this process, when it may use more than one CPU, on a thread (the compiled
    kernels and numpy's large operations release the GIL, so a second core takes most of
    them); otherwise they are left to the first call that needs them.

    ``extend``: earlier results of the same scenario and seed with fewer paths. Their paths
    are taken (up to their last whole block of 1,024) instead of being simulated again, and
    the results are the same bits as a run from scratch; ``progress`` counts the paths
    simulated (see :func:`kzsim.engine.run.run_paths`, which also takes their ``run.prefix``
    to move the columns rather than copy them).
    """
    unknown = set(analyses) - set(ANALYSES)
    if unknown:  # before any cluster or run, not when the analyses are collected after it
        raise ValueError(f"unknown analyses {sorted(unknown)} (allowed: {', '.join(ANALYSES)})")
    clients = contextlib.nullcontext(client) if client is not None else dask_client(workers, scheduler)
    with clients as used:
        if used is not None:
            check_workers(used)  # the same code on every worker, or the bits could differ
        n = scenario.simulation.paths if paths is None else int(paths)
        s = scenario.simulation.seed if seed is None else int(seed)
        side = None
        if analyses and n >= 1:
            job = (written_analyses, scenario, tuple(analyses), n, s)
            if used is not None:  # first in the queue, so one worker takes it while the others start the chunks
                side = used.submit(*job, priority=1, retries=3, pure=False)
            elif usable_cpus() > 1:
                side = Background(_analyses_on_a_thread, *job[1:], daemon=True, name="kzsim-analyses")
        try:
            run = run_paths(
                scenario,
                paths=n,
                seed=s,
                chunk_paths=chunk_paths,
                progress=progress,
                client=used,
                threads=usable_cpus() if threads is None else threads,
                extend=extend.run if isinstance(extend, Results) else extend,
            )
            results = Results(run)
            if side is not None:
                results.add_analyses(side.result())
        finally:
            if used is not None and side is not None:
                used.cancel([side])
    return results


def _analyses_on_a_thread(*args) -> dict:
    try:
        return written_analyses(*args)
    finally:
        # the heap would keep the analyses' chunk memory (a chunk's, 40-60 MB) for the rest of the run,
        # where the run's own chunks reuse only part of it (kzsim.engine.memory)
        release_freed_memory()


def compare(scenarios: list[Scenario], *, paths: int | None = None, seed: int | None = None, **kwargs):
    """Simulate ``scenarios`` on common random numbers and compare them with the first.

    ``paths`` and ``seed`` default to the first scenario's; every scenario gets the same
    seed. Other arguments are those of :func:`simulate` (``workers``...); ``progress``
    counts the paths of all the scenarios' runs (``progress(done_paths, n x scenarios)``).
    Returns a :class:`~kzsim.results.Comparison`.
    """
    from kzsim.results import Comparison

    if len(scenarios) < 2:
        raise ValueError("compare needs at least two scenarios")
    n = scenarios[0].simulation.paths if paths is None else paths
    s = scenarios[0].simulation.seed if seed is None else seed
    done = PathsDone(kwargs.pop("progress", None), n * len(scenarios))
    return Comparison([simulate(sc, paths=n, seed=s, progress=done.run(), **kwargs) for sc in scenarios])


PRECISION_MEASURES = ("p_loss", "mean", "var_95", "var_99", "cvar_95", "cvar_99")


def simulate_to_precision(
    scenario: Scenario,
    target_se: float,
    *,
    measure: str = "p_loss",
    paths: int | None = None,
    max_paths: int = 1_000_000,
    **kwargs,
) -> Results:
    """Simulate with more and more paths until ``measure`` is known to ``target_se``.

    ``measure``: ``p_loss`` (``target_se`` a probability in (0, 0.5)), or ``mean`` (mean
    profit after tax), ``var_95``, ``var_99``, ``cvar_95`` or ``cvar_99`` (``target_se`` in
    USD). The precision of P(loss) is the half-width of its Wilson 95 % interval over 1.96
    (which, unlike sqrt(p(1-p)/n), is not zero when no or every path loses); that of the
    mean its standard error (from antithetic pairs when the scenario uses them); that of a
    VaR the half-width of its
    distribution-free 95 % interval over 1.96 (infinite while the interval is open: too
    few paths in the tail); that of a CVaR its standard error
    (:func:`kzsim.stats.expected_shortfall_se`). Each round grows the run to the number
    of paths that precision needs (at least twice the last; a standard error falls as one
    over the square root of the paths), up to ``max_paths``, simulating only the paths it
    adds (and the last round's partial block of 1,024, if any); because path i is the
    same in every run, the result is exactly the plain run with the final number of
    paths. ``summary["precision"]`` records the rounds: their paths, the paths each
    simulated, the estimate and its error.
    ``progress(done_paths, total_paths)`` counts the paths simulated in every round so
    far: the total grows by each round's as it starts (the next round is not known before).
    """
    import math

    from kzsim.model.rng import BLOCK_PATHS
    from kzsim.stats import Z95

    if measure not in PRECISION_MEASURES:
        raise ValueError(f"measure {measure!r}: expected one of {', '.join(PRECISION_MEASURES)}")
    if not (math.isfinite(target_se) and target_se > 0):
        raise ValueError("target_se must be a finite number > 0")
    if measure == "p_loss" and not 0 < target_se < 0.5:
        raise ValueError("target_se of p_loss must be in (0, 0.5)")
    n = min(scenario.simulation.paths if paths is None else paths, max_paths)
    progress = kwargs.pop("progress", None)
    rounds = []
    before = 0  # paths simulated in the rounds done
    prefix = None  # the last round's paths, moved into the next (its table is not held beside the next one's)
    while True:
        counted = None if progress is None else lambda done, total, base=before: progress(base + done, base + total)
        results = simulate(scenario, paths=n, progress=counted, extend=prefix, **kwargs)
        ran = n - results.run.taken_paths
        before += ran
        s = results.summary
        if measure == "p_loss":
            lo, hi = s["p_loss_ci95"]
            estimate, achieved = s["p_loss"], (hi - lo) / (2 * Z95)
        elif measure == "mean":
            estimate, achieved = s["profit_usd"]["mean"], s["profit_usd"]["mean_se"]
        elif measure.startswith("var_"):
            lo, hi = s[f"{measure}_ci95_usd"]
            estimate, achieved = s[f"{measure}_usd"], (hi - lo) / (2 * Z95)
        else:
            estimate, achieved = s[f"{measure}_usd"], s[f"{measure}_se_usd"]
        rounds.append({"paths": n, "simulated_paths": ran, "estimate": estimate, "se": achieved, "p_loss": s["p_loss"]})
        reached = achieved <= target_se  # False while the error is unknown (NaN or inf: too few tail paths)
        if reached or n >= max_paths:
            break
        if measure == "p_loss":
            p = min(max(s["p_loss"], 1.0 / n), 1 - 1.0 / n)
            wanted = p * (1 - p) / target_se / target_se  # inf, not an error, when it overflows
        else:
            ratio = achieved / target_se
            wanted = n * ratio * ratio if math.isfinite(achieved) else 2 * n
        # a tiny target asks for more paths than any run (or than a float holds): the cap
        needed = max_paths if not wanted < max_paths else math.ceil(wanted / BLOCK_PATHS) * BLOCK_PATHS
        n = min(max_paths, max(2 * n, needed))
        prefix, results = results.run.prefix, None
    results.summary["precision"] = {
        "measure": measure,
        "target_se": target_se,
        "achieved_se": achieved,
        "reached": reached,
        "max_paths": max_paths,
        "rounds": rounds,
    }
    return results
