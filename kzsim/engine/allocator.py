"""Keep freed memory for reuse: a glibc setting for kzsim's own processes.

Each chunk allocates and frees dozens of arrays of (days x paths). glibc hands arrays
above its mmap threshold back to the kernel when freed, and the kernel must zero the
pages again on the next allocation: measured here, a quarter of a run's time went to
those page faults. Raising the mmap and trim thresholds keeps the memory in the heap
for the next chunk.

The threads of a run share one heap (``M_ARENA_MAX`` = 1). By default glibc gives each
thread a heap of its own, made of 64 MB pieces in which the chunks' arrays fragment: a
million-path run on two threads peaked ~60 MB higher that way, and one thread with the
analyses beside it ~55 MB higher. A chunk allocates a few dozen large arrays, so the
threads hardly ever wait for each other's lock.

The settings are glibc's and hold for the whole process, so kzsim sets them only in the
processes that are its own: the ``kzsim`` command's (:func:`kzsim.cli.commands.main`) and
the workers of the local clusters kzsim starts (``--workers N``, ``workers=N``: a Dask
preload of this module, :func:`dask_setup`). A notebook or a script that imports kzsim
keeps its allocator as it was. The workers of a cluster of one's own take the setting with
``dask worker ... --preload kzsim.engine.allocator``: a million paths of the baseline on one
such worker ran ~1.3x as fast as without it (page faults took the rest), and kzsim notes
the workers without it (:class:`kzsim.engine.cluster.WorkerMemoryWarning`). Nothing changes
elsewhere than on Linux with glibc; the numbers a run produces do not depend on it. The
engine gives memory back at a few points with :func:`kzsim.engine.memory.release_freed_memory`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
_done = False  # tried in this process
_kept = False  # and set


def keep_freed_memory() -> bool:
    """Set glibc's thresholds and its one heap once per process (before the run's threads
    start: a thread that already has a heap keeps it); True when they are set."""
    global _done, _kept
    if _done or not sys.platform.startswith("linux"):
        return _kept
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, 256 << 20) and mallopt(M_TRIM_THRESHOLD, 512 << 20)
    _kept = bool(ok and mallopt(M_TOP_PAD, 64 << 20) and mallopt(M_ARENA_MAX, 1))
    return _kept


def keeping_freed_memory() -> bool:
    """True when :func:`keep_freed_memory` has set glibc's thresholds in this process."""
    return _kept


def dask_setup(worker) -> None:
    """Dask's preload hook (``dask worker --preload kzsim.engine.allocator``, and kzsim's own
    local workers): the worker keeps freed memory as the ``kzsim`` command's process does."""
    keep_freed_memory()
