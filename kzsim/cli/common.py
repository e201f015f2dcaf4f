"""What the commands share: the user-error exception, scenario and output-folder arguments, the run options, the cluster, the interrupt contract and the progress bar."""

from __future__ import annotations

import contextlib
import importlib
import math
import signal
import sys
import threading
from pathlib import Path

import click

from kzsim.engine.concurrency import interrupt
from kzsim.io.folders import OutputExistsError, check_out_dir
from kzsim.scenario.errors import ScenarioError
from kzsim.scenario.loading import load_scenario
from kzsim.scenario.overrides import split_override


class BadInput(click.ClickException):
    """A user error: its lines are printed as they are, and kzsim exits with 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def out_folder(out_dir: str | None, default: Path, force: bool) -> Path:
    """The output folder: the user's, or the default; refused (exit 2) when it holds results
    and --force was not given."""
    out = Path(out_dir) if out_dir else default
    try:
        check_out_dir(out, force)
    except OutputExistsError as exc:
        raise BadInput(str(exc)) from None
    return out


def scenario_arg(path: str, sets: tuple[str, ...] = ()):
    try:
        overrides: dict[str, str] = {}
        for text in sets:
            key, value = split_override(text)
            if key in overrides:
                raise ScenarioError([f"--set {key}: given twice (allowed: each key once)"])
            overrides[key] = value  # parsed once, by load_scenario
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None


WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run the chunks on this many local processes (a local Dask cluster); same results.",
)


SCHEDULER_OPTION = click.option(
    "--scheduler", metavar="ADDRESS", help="Run the chunks on an existing Dask cluster, e.g. tcp://host:8786."
)


THREADS_OPTION = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads of this process that run chunks, each with a chunk's memory (default: one a CPU).",
)


def threads_for(threads: int | None, workers: int, scheduler: str | None) -> int:
    """The threads a run in this process uses; --threads is refused beside a cluster."""
    from kzsim.engine.system import usable_cpus

    if threads is not None and (workers > 1 or scheduler):
        raise BadInput(
            f"--threads {threads}: with --workers or --scheduler the cluster's workers run the chunks "
            "(allowed: --threads without them)"
        )
    return usable_cpus() if threads is None else threads


def import_in_background(module: str) -> None:
    """Import ``module`` on a daemon thread; a failure is left to the import that needs it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


@contextlib.contextmanager
def cluster(workers: int, scheduler: str | None):
    """A Dask client (or None), with a connection failure or workers that run other code
    reported as bad input (exit 2), and workers on other CPUs as a note."""
    import warnings

    from kzsim.engine.cluster import WorkerMismatch, check_workers, dask_client

    with contextlib.ExitStack() as stack:
        try:
            # the command's local workers keep freed memory for reuse, as this process does
            client = stack.enter_context(dask_client(workers, scheduler, worker_preload=("kzsim.cli.allocator",)))
        except (OSError, TimeoutError) as exc:
            raise BadInput(
                f"--scheduler {scheduler}: cannot connect ({exc}) "
                "(allowed: the address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786)"
            ) from None
        if scheduler:  # kzsim's own local workers are forked from this process's code
            with warnings.catch_warnings(record=True) as notes:
                warnings.simplefilter("always")
                try:
                    check_workers(client)
                except WorkerMismatch as exc:
                    raise BadInput(f"--scheduler {scheduler}: {exc}") from None
            for note in notes:
                click.echo(f"kzsim: --scheduler {scheduler}: {note.message}", err=True)
        yield client


class Interrupted(BaseException):
    """Raised by the SIGINT/SIGTERM handlers so that cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum


class interruptible:
    """Ctrl-C (SIGINT) and SIGTERM stop the run cleanly: temporary files are removed,
    the previous results stay as they were, kzsim exits with 130 / 143; an error of the
    system (OSError: a full disk, a lost cluster) ends in one line and exit 1 (``out``
    None: a command that writes no folder)."""

    def __init__(self, out: Path | None):
        self.out = out
        self.saved: dict = {}

    def __enter__(self):
        def handler(signum, frame):
            interrupt(Interrupted(signum))  # raised now, or when a critical step is done

        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, kind, exc, tb):
        for sig, previous in self.saved.items():
            signal.signal(sig, previous)
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            code = exc.exit_code if isinstance(exc, Interrupted) else 130
            name = "SIGTERM" if code == 128 + signal.SIGTERM else "Ctrl-C"
            if self.out is None:
                click.echo(f"kzsim: stopped by {name}", err=True)
            elif getattr(exc, "results_in_place", None) is not None:  # it came as the folder was put in place
                click.echo(f"kzsim: stopped by {name} once {self.out} held this run's complete results", err=True)
            else:
                click.echo(f"kzsim: stopped by {name}; {self.out} was left as it was before this run", err=True)
            sys.exit(code)
        if isinstance(exc, OSError):  # a full disk, a lost cluster...
            what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else (exc.strerror or str(exc))
            kept = "" if self.out is None else f"; {self.out} was left as it was before this run"
            click.echo(f"kzsim: {type(exc).__name__}: {what}{kept}", err=True)
            sys.exit(1)
        return False


class progress_bar:
    """A rich progress bar on a terminal; nothing in pipes, CI or with --quiet.

    One line that fits 80 columns at a million paths: the bar takes what the rest leaves,
    ``simulating ━━━━━━━━ 148,480/1,000,000 paths 24.0 M path-days/s 0:00:04 left``.
    The rate and the time left at that rate are measured over the last
    :attr:`RATE_WINDOW_S` from the first update on, so neither the start (a first run
    compiles the kernels for ~14 s before its first chunk) holds them down for the rest of
    the run, nor chunks finishing together on several threads make them jump: none is shown
    before the updates span :attr:`RATE_MIN_SPAN_S`. A ``total`` of None (an analysis that
    does not know how many runs it will make) shows the paths done and the rate only.
    """

    RATE_WINDOW_S = 10.0
    RATE_MIN_SPAN_S = 1.0

    def __init__(self, quiet: bool, total: int | None, days: int, console=None):
        self.console = console  # rich Console (default: standard error, when it is a terminal)
        self.enabled = not quiet and (console is not None or sys.stderr.isatty())
        self.total = total
        self.days = days
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from collections import deque

        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        days = self.days
        self.bar = Progress(
            TextColumn("simulating"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[done]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[left]}"),
            transient=True,
            expand=True,
            console=self.console or Console(stderr=True),
        )
        self.bar.start()
        no_rate = " " * len("00.0 M path-days/s")  # the bar keeps its width when the rate comes

        def fields(done: int, total: int | None, paths_per_s: float | None) -> dict:
            rate = no_rate if paths_per_s is None else f"{paths_per_s * days / 1e6:4.1f} M path-days/s"
            if total is None:
                return {"done": f"{done:,} paths", "rate": rate, "left": ""}
            left = "-:--:--"
            if paths_per_s is not None:
                minutes, seconds = divmod(math.ceil((total - done) / paths_per_s), 60)
                left = f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
            return {"done": f"{done:,}/{total:,} paths", "rate": rate, "left": f"{left} left"}

        task = self.bar.add_task("run", total=self.total, **fields(0, self.total, None))
        seen = deque()  # (time, paths done) at the updates of the last RATE_WINDOW_S, and one before

        def update(done: int, total: int | None) -> None:
            now = self.bar.get_time()
            seen.append((now, done))
            while len(seen) > 2 and now - seen[1][0] >= self.RATE_WINDOW_S:
                seen.popleft()
            then, done_then = seen[0]
            paths_per_s = None
            if now - then >= self.RATE_MIN_SPAN_S and done > done_then:
                paths_per_s = (done - done_then) / (now - then)
            self.bar.update(task, completed=done, total=total, **fields(done, total, paths_per_s))

        return update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
