"""What the machine offers: memory available to a run, CPUs (an edge module: reads /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def available_memory_bytes() -> float | None:
    """Memory a new allocation can get without swapping, or None when unknown.

    Linux: ``MemAvailable`` from /proc/meminfo, bounded by a cgroup memory limit if one
    is set; elsewhere the free physical pages.
    """
    available = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = float(line.split()[1]) * 1024
                break
    if available is None:
        try:
            available = float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        path = Path(limit_file)
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and float(text) < available:
            available = float(text)
    return available


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. under ``taskset``; else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
