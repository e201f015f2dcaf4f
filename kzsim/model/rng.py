"""Named random streams drawn in fixed blocks of paths.

Every random input has a name (``process:btc_price``, ``param:electricity.tariff_kzt_per_kwh``)
and is drawn from its own generator, seeded by ``SeedSequence(seed, spawn_key=
(stable_hash(name), block_index))``. Draws are made for whole blocks of
:data:`BLOCK_PATHS` paths and sliced to the paths a chunk needs, so

* the same seed gives the same bits whatever the chunk size or the worker count;
* adding or removing an input never changes the draws of the others;
* two scenarios run with one seed share their draws (common random numbers).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

BLOCK_PATHS = 1024
BIT_GENERATOR = "PCG64"


@functools.lru_cache(maxsize=4096)
def stable_hash(name: str) -> int:
    """A 64-bit hash of ``name`` that is the same on every platform and Python run.

    Examples
    --------
    >>> stable_hash("process:btc_price") == stable_hash("process:btc_price")
    True
    """
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def stream(seed: int, name: str, block_index: int) -> np.random.Generator:
    """The generator of stream ``name`` for block ``block_index`` of paths."""
    seq = np.random.SeedSequence(seed, spawn_key=(stable_hash(name), block_index))
    return np.random.Generator(np.random.PCG64(seq))


def blocks_for(start: int, stop: int) -> range:
    """Indices of the blocks that hold paths ``start`` .. ``stop - 1``."""
    return range(start // BLOCK_PATHS, (stop - 1) // BLOCK_PATHS + 1)
