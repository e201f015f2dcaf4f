"""Dask clients for parallel runs: local worker processes or an existing cluster.

Dask is the engine for runs larger than one process; kzsim only sends it chunks of paths
(:func:`kzsim.engine.simulate_task`, a few chunks each) and puts their results together in path order.
"""

from __future__ import annotations

import contextlib
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
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        yield None
