"""Work on a thread beside the main one, and interruptions that wait for a critical step.

A signal handler that raises (the CLI's Ctrl-C and SIGTERM handlers) can interrupt the
main thread anywhere, including inside ``Thread.start`` after the new thread already
runs, or between the two renames that put a results folder in place. Blocking the signal
in the main thread does not help: the kernel then hands it to another thread (numpy's
BLAS threads, a writer thread), and Python still runs the handler in the main thread at
its next instruction. Handlers therefore ask :func:`interrupt` instead of raising, which
holds the exception while a :func:`critical` block runs and raises it when the block ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

_critical_depth = 0
_held: BaseException | None = None
_received: BaseException | None = None


class Interrupted(BaseException):
    """Raised by the command's SIGINT/SIGTERM handlers so that cleanup code runs (a
    BaseException: neither ``except Exception`` nor click's own Ctrl-C handling takes it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum


def interrupt(exc: BaseException) -> None:
    """Raise ``exc`` now, or at the end of the :func:`critical` block running (for signal
    handlers). The first one is also remembered: :func:`raise_if_interrupted` raises it
    again where a step must not go on after an interruption that code between (a
    finaliser, a library's ``except BaseException``) swallowed."""
    global _held, _received
    if _received is None:
        _received = exc
    if _critical_depth > 0:
        if _held is None:
            _held = exc
        return
    raise exc


def raise_if_interrupted() -> None:
    """Raise the interruption this process received, if it received one (and it was lost)."""
    if _received is not None:
        raise _received


def received() -> Interrupted | None:
    """The first interruption this process received (None if none): the cause of an error
    that a library made of it. pydantic-core, for one, wraps an exception raised while it
    builds a model's schema (the handler runs at the next instruction, which may be inside
    the library's callback) into its own ``SchemaError: ... Interrupted: 2``."""
    return _received if isinstance(_received, Interrupted) else None


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A block that :func:`interrupt` does not break into (keep it short: a signal waits for it).

    Python runs signal handlers in the main thread only, so a block on another thread has
    nothing to hold off (and must not raise the main thread's held exception)."""
    global _critical_depth, _held
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if _critical_depth == 0 and _held is not None:
            exc, _held = _held, None
            raise exc


class Background:
    """``function(*args)`` on a thread of its own; :meth:`result` waits for it and returns its
    value or raises its exception. ``daemon`` threads are not waited for when the program
    exits (work whose result an interrupted run no longer needs). With ``parallel=False``
    the function runs here and now instead (where a second thread would only cost memory,
    e.g. on one CPU), and :meth:`result` behaves the same."""

    def __init__(
        self, function: Callable, *args, daemon: bool = False, name: str = "kzsim-background", parallel: bool = True
    ):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(function, args), name=name, daemon=daemon)
        if not parallel:
            self._run(function, args)
            return
        try:
            with critical():  # started and known to be, or not started at all
                self._thread.start()
        except BaseException:  # an interruption held during the start: the caller never gets
            if not daemon:  # this object to wait with, so wait here before it propagates
                self._thread.join()
            raise

    def _run(self, function: Callable, args) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def wait(self) -> None:
        """Wait until the function has returned. An interruption waits for it too (then is
        raised), unless the thread is a daemon: an interrupted run leaves that one behind."""
        if self._thread.ident is None:  # ran in the caller's thread
            return
        if self._thread.daemon:
            self._thread.join()
            return
        with critical():
            self._thread.join()

    def result(self):
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value
