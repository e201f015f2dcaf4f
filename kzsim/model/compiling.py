"""On a cold compile cache, the economics kernel compiled by a child process while this one
compiles the rest.

On a cold compile cache (a fresh install, a new ``NUMBA_CACHE_DIR``, a changed
``kernel.py``) the first run compiles every kernel, one after the other (numba compiles on
one thread): ~3 s for the process loops (:mod:`kzsim.model.loops`), then ~5 s for the
economics kernel (:mod:`kzsim.model.kernel`). :func:`start` has a child process compile
the economics kernel into the cache while this process loads its modules and the
scenario, compiles the loops and draws the paths; :func:`wait`, called before the kernel
is, waits for the child, and the kernel is then loaded from the cache (numba writes each
entry whole, then renames it). A 20,000-path run of the baseline on 2 cores went from
~11 s to ~7 s cold (~3 s warm). Before its loops, the run compiles the kernel's day
closing (:func:`help_children`), which the child then loads: ~6.1 s -> ~5.7 s cold (~2.3 s
warm), the child no longer the longer of the two.

The child is this Python running ``python -m kzsim.model.compiling day_ahead|lots``, with
this process' environment (the same ``NUMBA_CACHE_DIR``). When it has compiled the kernel
it leaves a record (an empty file) in numba's cache folder, named for the kernel's source,
numba's and Python's versions and the procurement mode; a run that finds the record starts
no child. Whatever happens to the child (killed, failed, too slow) this process compiles
the kernel itself, as it did without one: the child only saves time, never a bit. A stale
record (numba dropped its entry) costs the same: a compile here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np

from kzsim.model import kernel

WAIT_SECONDS = 120.0  # at most this long for the child; then this process compiles the kernel itself

_lock = threading.Lock()
_children: dict[bool, subprocess.Popen] = {}


def _mode(lots_mode: bool) -> str:
    return "lots" if lots_mode else "day_ahead"


def record_path(lots_mode: bool) -> Path:
    """The record that the cache holds the economics kernel for this procurement mode."""
    key = hashlib.sha256(
        Path(kernel.__file__).read_bytes() + f"|{numba.__version__}|{sys.version}".encode()
    ).hexdigest()[:16]
    return Path(kernel.cache_folder()) / f"kzsim-economics-{_mode(lots_mode)}-{key}.compiled"


def _compiled_here(lots_mode: bool) -> bool:
    payment = numba.typeof(np.zeros((1, 1), dtype=np.float64 if lots_mode else np.bool_))
    return any(sig[5] == payment for sig in kernel.economics_signatures())


def start(lots_mode: bool) -> None:
    """Start a child compiling the economics kernel for this procurement mode, unless the
    kernel is compiled in this process, the cache's record says it holds it, or a child
    was started already."""
    with _lock:
        if lots_mode in _children or not sys.executable or _compiled_here(lots_mode):
            return  # (no sys.executable: an embedded Python, no interpreter to start)
        try:
            if record_path(lots_mode).exists():
                return
            _children[lots_mode] = subprocess.Popen(
                [sys.executable, "-m", "kzsim.model.compiling", _mode(lots_mode)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_child_environment(),
            )
        except OSError:  # no record to read, no process to spare: compiled here, as without the child
            pass


def help_children() -> None:
    """While a child compiles a kernel, compile the kernel's day closing here, into the cache
    (:func:`kzsim.model.kernel.compile_closing`); a run calls it before it compiles its loops.

    The child reaches those functions ~2.5 s into the kernel's ~4 s compilation, and
    loads them from the cache if this process has put them there by then: ~0.5 s off the
    child's time, which is what a cold run waits for, moved to this process' time before
    it needs the kernel, in which it waited ~1 s for the child (a 20,000-path run of the
    baseline on 2 cores; docs/architecture.md)."""
    with _lock:
        compiling = any(child.poll() is None for child in _children.values())
    if compiling:
        kernel.compile_closing()


def start_for(scenario) -> None:
    """:func:`start` for this scenario's procurement mode."""
    start(scenario.electricity.procurement_mode == "lots")


def wait(lots_mode: bool) -> None:
    """Wait for the child compiling this mode's kernel, if one was started. Every thread about
    to call the kernel waits: one that did not would find the cache empty and compile it too."""
    with _lock:
        child = _children.get(lots_mode)
    if child is None or child.returncode is not None:
        return
    try:
        child.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _child_environment() -> dict[str, str]:
    """This process' environment, with the folder kzsim was imported from first on the
    child's path (kzsim may be imported from a folder that is not installed)."""
    root = str(Path(kernel.__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else os.pathsep.join((root, path))}


def compile_kernel(lots_mode: bool) -> None:
    """Compile the economics kernel for this procurement mode (or load it from the cache): a
    call on one path and two days with the argument types :mod:`kzsim.model.paths` passes."""
    n_days, n = 2, 1

    def days() -> np.ndarray:
        return np.zeros((n_days, n))

    kernel.economics(
        np.zeros((len(kernel.Param), n)),  # params
        days(),  # price
        days(),  # usd_kzt
        days(),  # btc_per_th_day
        days(),  # grid_hours
        np.zeros((n_days, n), dtype=np.float64 if lots_mode else np.bool_),  # payment
        days(),  # day_ahead_factor
        days(),  # ageing
        days(),  # failed
        days(),  # discount
        np.ones((1, n)),  # indexation
        np.zeros(n_days, dtype=np.bool_),  # is_winter
        np.zeros(n_days, dtype=np.int64),  # year_index
        np.zeros(n_days, dtype=np.bool_),  # year_end
        np.zeros(n_days),  # dep_share
        np.zeros(n_days),  # cum_dep_share
        np.zeros(1),  # bracket_lows
        np.zeros(1),  # bracket_fees
        lots_mode,
        False,  # shutoff
        True,  # sell
        0,  # lag
        days(),  # out_pnl
        days(),  # out_up
        days(),  # out_hashprice
        False,  # sums
        np.zeros((4, n_days, 0)),  # out_sums
        np.zeros((n_days, 0)),  # out_cash
        np.zeros((n_days, 0)),  # out_btc
        np.zeros((len(kernel.Out), n)),  # out
    )


def main(argv: list[str]) -> int:
    """The child: compile the kernel for the mode named, then leave the record."""
    if argv not in (["lots"], ["day_ahead"]):
        sys.stderr.write("usage: python -m kzsim.model.compiling day_ahead|lots\n")
        return 2
    lots_mode = argv == ["lots"]
    compile_kernel(lots_mode)
    record = record_path(lots_mode)
    try:
        record.touch()
        for stale in record.parent.glob(f"kzsim-economics-{_mode(lots_mode)}-*.compiled"):
            if stale != record:  # of an earlier kernel.py, numba or Python
                stale.unlink(missing_ok=True)
    except OSError:  # a cache folder we may not write to: no record, the next run starts a child again
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
