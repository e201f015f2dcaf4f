"""Giving freed memory back to the system (glibc's ``malloc_trim``) at points where a run
has just freed much of it: the end of the per-day sample, the end of a run's threads.

This changes no setting of the process: it only returns pages that are free. Whether
glibc keeps freed memory for reuse is set only in kzsim's own processes, the command's and
its local workers' (:mod:`kzsim.engine.allocator`), never in a process that imports kzsim.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def release_freed_memory() -> bool:
    """Give the freed memory of every heap back to the kernel (glibc's ``malloc_trim``).

    For the end of work done on a thread beside a run: the thread's heap keeps what it
    freed (see :func:`kzsim.engine.allocator.keep_freed_memory`), which no other thread reuses. True when called.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True
