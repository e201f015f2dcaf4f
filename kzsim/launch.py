"""The ``kzsim`` command's first instructions: Ctrl-C and SIGTERM are the command's own
before anything else loads.

Python's default Ctrl-C handler raises KeyboardInterrupt wherever the main thread is,
which during the imports of a start-up prints a traceback, and inside a finaliser or a
library's ``except BaseException`` can be lost. Here the handlers are installed first;
they raise :class:`~kzsim.engine.concurrency.Interrupted` (or hold it through a critical
step) and remember it, so that the step that puts results in place refuses to go on after
an interruption that something swallowed. Nothing here changes a process that imports kzsim:
only the command runs it.
"""

from __future__ import annotations

import signal


def entry() -> None:
    from kzsim.engine.concurrency import Interrupted, interrupt, received

    def handler(signum, frame):
        interrupt(Interrupted(signum))

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    try:
        from kzsim.cli.commands import entry as command
    except BaseException as exc:  # interrupted during the imports: nothing started, nothing written
        stop = exc if isinstance(exc, Interrupted) else received()  # (or a library's error made of it)
        if stop is None:
            raise
        import os
        import sys

        sys.stderr.write(f"kzsim: stopped by {'SIGTERM' if stop.exit_code == 128 + signal.SIGTERM else 'Ctrl-C'}\n")
        sys.stderr.flush()
        os._exit(stop.exit_code)
    command()
