"""Dask clients for parallel runs: local worker processes or an existing cluster.

Dask is the engine for runs larger than one process; kzsim only sends it chunks of paths
(:func:`kzsim.engine.simulate_task`, a few chunks each) and puts their results together in path order.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[object | None]:
    """A Dask client for ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``), or for a
    new local cluster of ``workers`` single-threaded processes; None when neither is asked
    for or ``workers`` is 1 (the run stays in this process)."""
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


def local_cluster(workers: int):
    """A Dask ``LocalCluster`` of ``workers`` single-threaded processes, started as kzsim
    starts them (forked from a server that has kzsim loaded, on Linux)."""
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
        )


# what the local workers' processes start from (Linux): one server process imports these
# once and forks every worker from it, instead of each worker and its nanny starting a new
# interpreter and importing them. Measured on 2 cores (start, first 16,384 paths, close):
# ~1 s sooner in all, most of it in closing (0.06 s against 0.6 s).
FORKSERVER_PRELOAD = ("distributed", "kzsim.engine")


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
