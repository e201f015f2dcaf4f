"""Dask clients for parallel runs: local worker processes or an existing cluster.

Dask is the engine for runs larger than one process; kzsim only sends it chunks of paths
(:func:`kzsim.engine.run.simulate_task`, a few chunks each) and puts their results together in path order.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections.abc import Iterator


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[object | None]:
    """A Dask client for ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``), or for a
    new local cluster of ``workers`` single-threaded processes (:func:`local_cluster`); None
    when neither is asked for or ``workers`` is 1 (the run stays in this process)."""
    if scheduler:
        from distributed import Client

        client = Client(scheduler, timeout="10s")
        try:
            yield client
        finally:
            client.close()
    elif workers and workers > 1:
        from distributed import Client

        with local_cluster(workers) as cluster, Client(cluster) as client:
            yield client
    else:
        yield None


# Dask's housekeeping, slowed for kzsim's own local clusters, which have no dashboard: the
# workers' statistical profiler (a sample of their threads every 10 ms) is off, and the
# event loops' health check, the system monitor and the nannies' memory check run every
# 200 ms, 2 s and 0.5 s instead of 20 ms, 0.5 s and 0.1 s. An idle cluster of two workers
# then takes 0.35-0.37 s of CPU in 20 s instead of 1.19 s, CPU that a run on as many workers as
# cores takes from the chunks.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


# Dask preloads of kzsim's own local workers: they keep freed memory for reuse, as the
# ``kzsim`` command's process does (kzsim.engine.allocator: the processes are kzsim's own)
LOCAL_WORKER_PRELOAD = ("kzsim.engine.allocator",)


def local_cluster(workers: int, preload: tuple[str, ...] = LOCAL_WORKER_PRELOAD):
    """A Dask ``LocalCluster`` of ``workers`` single-threaded processes, started as kzsim
    starts them (forked from a server that has kzsim loaded, on Linux); ``preload``: Dask
    worker preload modules (their ``dask_setup(worker)`` runs on each)."""
    import dask
    from distributed import LocalCluster

    # set here for the scheduler, and given to the nannies for every worker process they
    # start (a worker restarted after a crash did not see the settings of this block)
    with _worker_processes(), dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
            config=LOCAL_CLUSTER_CONFIG,
            **({"preload": list(preload)} if preload else {}),
        )


# what the local workers' processes start from (Linux): one server process imports these
# once and forks every worker from it, instead of each worker and its nanny starting a new
# interpreter and importing them. Measured on 2 cores (start, first 16,384 paths, close):
# ~1 s sooner in all, most of it in closing (0.06 s against 0.6 s).
FORKSERVER_PRELOAD = ("distributed", "kzsim.engine.run")


def start_worker_server() -> None:
    """Start the fork server of the local workers now (Linux; elsewhere nothing): it loads
    :data:`FORKSERVER_PRELOAD` in its own process while this one loads the rest of a command
    and its scenario. A local cluster's start took 1.5 s, 0.2 s with the server ready (2
    cores); ``kzsim run`` reaches its cluster about when the server is ready, ~0.3 s sooner.
    Later calls, and clusters, use the server started first."""
    if not sys.platform.startswith("linux"):
        return
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
    multiprocessing.forkserver.ensure_running()


@contextlib.contextmanager
def _worker_processes() -> Iterator[None]:
    """Start the local workers from a fork server that has kzsim loaded (elsewhere: spawn).

    The server lives as long as this process and keeps the environment it started with
    (its first cluster's); a worker the nanny restarts later is spawned anew."""
    if not sys.platform.startswith("linux"):
        yield
        return
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context().set_forkserver_preload(list(FORKSERVER_PRELOAD))  # no effect once started
        yield


# what a run's bits depend on besides the scenario and the seed: a worker with other code
# or other versions of these could return other numbers for its chunks, silently (numba
# is not among them: its kernels give numpy's bits)
BIT_PACKAGES = ("numpy", "scipy")


class WorkerMismatch(RuntimeError):
    """Workers of a cluster run other code than this process: their chunks could differ."""


class WorkerCPUWarning(UserWarning):
    """Workers whose numpy picks other SIMD code (other CPUs): exp and log may differ in the
    last bit, and a run's bits then depend on which worker ran which chunk."""


class WorkerMemoryWarning(UserWarning):
    """Workers (Linux) that hand freed memory back to the system at every chunk: the same
    bits, but a run spends much of its time in page faults there (start them with
    ``--preload kzsim.engine.allocator``: :mod:`kzsim.engine.allocator`)."""


def code_versions() -> dict[str, str | None]:
    """This process's kzsim code (a SHA-256 of its source files), the versions of kzsim
    and :data:`BIT_PACKAGES` (None: not installed), the SIMD targets numpy uses here and
    whether this process keeps freed memory (:mod:`kzsim.engine.allocator`; None: not Linux)."""
    return _code_versions_function()()


def _code_versions_function():
    # made here so that Dask's cloudpickle sends the function itself to the workers (a
    # module-level one goes by reference and cannot load where kzsim is missing)
    def versions(packages=BIT_PACKAGES):
        import hashlib
        import importlib.util
        import sys
        from importlib import metadata
        from pathlib import Path

        out = {}
        spec = importlib.util.find_spec("kzsim")
        if spec is None or not spec.submodule_search_locations:
            out["kzsim code"] = out["kzsim"] = None
        else:
            root = Path(next(iter(spec.submodule_search_locations)))
            digest = hashlib.sha256()
            for f in sorted(root.rglob("*.py")):
                digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
            out["kzsim code"] = digest.hexdigest()[:12]
            try:
                out["kzsim"] = metadata.version("kzsim")
            except metadata.PackageNotFoundError:
                out["kzsim"] = None
        for name in packages:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = None
        try:
            from numpy._core import _multiarray_umath as umath
        except ImportError:  # numpy < 2 or none
            out["numpy SIMD"] = None
        else:
            targets = getattr(umath, "__cpu_dispatch__", [])
            out["numpy SIMD"] = " ".join(t for t in targets if umath.__cpu_features__.get(t)) or "baseline"
        allocator = sys.modules.get("kzsim.engine.allocator")  # loaded by its preload, not here
        out["keeps freed memory"] = (
            bool(allocator is not None and allocator.keeping_freed_memory())
            if sys.platform.startswith("linux")
            else None
        )
        return out

    return versions


def version_mismatches(here: dict, workers: dict[str, dict], keys) -> list[str]:
    """One line for each worker whose ``keys`` of :func:`code_versions` differ from ``here``."""
    lines = []
    for address, there in sorted(workers.items()):
        differ = [k for k in keys if there.get(k) != here.get(k)]
        if not differ:
            continue
        if "kzsim code" in differ and there.get("kzsim code") is None:
            lines.append(f"worker {address} has no kzsim")
            continue
        has = ", ".join(f"{k} {there.get(k) or 'missing'}" for k in differ)
        want = ", ".join(f"{k} {here.get(k) or 'missing'}" for k in differ)
        lines.append(f"worker {address} has {has} (here: {want})")
    return lines


_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> worker addresses checked
_checking = threading.Lock()


def check_workers(client) -> None:
    """Before a run on ``client``'s cluster: raise :class:`WorkerMismatch` when a worker runs
    other kzsim code, or another numpy or scipy, than this process (its chunks could differ,
    or it could not run them at all), and warn (:class:`WorkerCPUWarning`) when numpy picks
    other SIMD code there, or (:class:`WorkerMemoryWarning`) when it does not keep freed
    memory. Each worker is asked once a client; one that joins later, by the next run."""
    import warnings

    with _checking:
        seen = _checked.setdefault(client, set())
        workers = set(client.scheduler_info(n_workers=-1).get("workers", {}))
        if workers <= seen:
            return
        versions = _code_versions_function()
        there = client.run(versions, workers=sorted(workers - seen))
        here = versions()
        problems = version_mismatches(here, there, ("kzsim code", "kzsim", *BIT_PACKAGES))
        if problems:
            raise WorkerMismatch(
                "; ".join(problems) + " (allowed: workers with the same kzsim code, numpy and scipy as this"
                " process: a run's bits depend on them)"
            )
        notes = version_mismatches(here, there, ("numpy SIMD",))
        if notes:
            warnings.warn(
                "; ".join(notes) + ": exp and log may differ in the last bit there, so the run's bits may depend"
                " on which worker ran which chunk",
                WorkerCPUWarning,
                stacklevel=2,
            )
        giving_back = sorted(address for address, v in there.items() if v.get("keeps freed memory") is False)
        if giving_back:
            who = (
                f"workers {', '.join(giving_back)} give the memory they free"
                if len(giving_back) > 1
                else f"worker {giving_back[0]} gives the memory it frees"
            )
            warnings.warn(
                f"{who} back to the system at every chunk: the same bits, but slower (page faults). To keep it,"
                " start workers with the Dask preload kzsim.engine.allocator (dask worker --preload"
                " kzsim.engine.allocator, or LocalCluster(preload=['kzsim.engine.allocator']))",
                WorkerMemoryWarning,
                stacklevel=2,
            )
        seen.update(there)
