"""What the commands share: the user-error exception, scenario and output-folder arguments, the run options, the cluster, the interrupt contract and the progress bar."""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import click

from kzsim.engine.concurrency import Interrupted, interrupt
from kzsim.io.folders import OutputExistsError, check_out_dir
from kzsim.scenario.errors import ScenarioError
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
    from kzsim.scenario.loading import load_scenario

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


def procurement_mode_named(path: str, sets: tuple[str, ...] = ()) -> str | None:
    """The procurement mode a ``--set`` or the scenario file names, read before the scenario
    is loaded and checked (which first imports scipy.stats and pandas, ~1 s), so that a child
    can start compiling the kernel for it (:mod:`kzsim.model.compiling`); None when neither
    names one or the file cannot be read (the loader then says why). A wrong answer costs
    the child's CPU, never a bit."""
    mode = None
    for text in sets:
        key, _, value = text.partition("=")
        if key.strip() == "electricity.procurement_mode":
            mode = value.strip()
    if mode is None:  # read as the loader reads it: a regular file only, bounded, safe YAML
        from kzsim.scenario.errors import ScenarioError
        from kzsim.scenario.reading import read_yaml

        try:
            electricity = read_yaml(path).get("electricity")
        except ScenarioError:
            return None
        mode = electricity.get("procurement_mode") if isinstance(electricity, dict) else None
    return mode if mode in ("lots", "day_ahead") else None


def compile_ahead(paths: Iterable[str], sets: tuple[str, ...], workers: int, scheduler: str | None) -> None:
    """On a cold compile cache, start the child that compiles the economics kernel for the
    procurement mode each scenario file in ``paths`` (or a ``--set``) names, before the
    scenarios are loaded (:mod:`kzsim.model.compiling`): ~1 s sooner than the run's own
    start. Nothing for chunks run by a cluster, whose workers compile their own."""
    if workers != 1 or scheduler:
        return
    from kzsim.model import compiling

    for mode in {procurement_mode_named(path, sets) for path in paths} - {None}:
        compiling.start(mode == "lots")


MAX_WORKERS = 256


SEED_OPTION = click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed (default: the scenario's).")
WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    default=1,
    show_default=True,
    help="Run the chunks on this many local processes (a local Dask cluster); same results.",
)


SCHEDULER_OPTION = click.option(
    "--scheduler", metavar="ADDRESS", help="Run the chunks on an existing Dask cluster, e.g. tcp://host:8786."
)


THREADS_OPTION = click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=None,
    help="Threads of this process that run chunks, each with a chunk's memory (default: one a CPU).",
)


def threads_for(threads: int | None, workers: int, scheduler: str | None) -> int:
    """The threads a run in this process uses; --threads is refused beside a cluster. With
    local workers to come, their fork server starts loading kzsim now (in its own process,
    while this one loads the command's modules and scenario)."""
    from kzsim.engine.system import usable_cpus

    if threads is not None and (workers > 1 or scheduler):
        raise BadInput(
            f"--threads {threads}: with --workers or --scheduler the cluster's workers run the chunks "
            "(allowed: --threads without them)"
        )
    if workers > 1 and not scheduler:
        from kzsim.engine.cluster import start_worker_server

        start_worker_server()
    return usable_cpus() if threads is None else threads


def import_in_background(module: str) -> None:
    """Import ``module`` on a daemon thread; a failure is left to the import that needs it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::(\d{1,5}))?$"
)


def check_scheduler(scheduler: str) -> None:
    """Refuse a --scheduler that is not an address (before Dask parses it)."""
    if re.fullmatch(r"inproc://[\w.:/-]+", scheduler):  # a scheduler in this process (tests, notebooks)
        return
    match = _ADDRESS.match(scheduler)
    port = match and match.group(1)
    if not match or (port is not None and not 1 <= int(port) <= 65535):
        shown = scheduler if len(scheduler) <= 60 else scheduler[:57] + "..."
        raise BadInput(
            f"--scheduler {shown}: not a scheduler address "
            "(allowed: [tcp|tls|ws|wss|ucx://]HOST[:PORT] or inproc://..., e.g. tcp://127.0.0.1:8786)"
        )


@contextlib.contextmanager
def cluster(workers: int, scheduler: str | None):
    """A Dask client (or None), with a connection failure or workers that run other code
    reported as bad input (exit 2), and workers on other CPUs as a note."""
    import warnings

    from kzsim.engine.cluster import WorkerMismatch, check_workers, dask_client

    if scheduler is not None:
        check_scheduler(scheduler)
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(dask_client(workers, scheduler))
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
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


# a run expected to take longer or hold more than this says so before it starts (a million
# paths of the baseline: ~29 s on two cores); the default 20,000 paths do not
ANNOUNCE_SECONDS = 10.0
ANNOUNCE_BYTES = 1e9


def check_resources(
    path: str, sc, paths: int, chunk: int | None, quiet: bool, workers: int = 1, threads: int = 1, up_to: bool = False
) -> None:
    """Refuse a run that would not fit in memory; announce a long or large one (with
    ``workers`` local worker processes or ``threads`` threads: their memory counts, and
    they share the time). ``up_to``: ``paths`` is the most a --target-se run may reach
    (its rounds simulate each path once, so its time is about that of one run of them)."""
    from kzsim.engine.resources import default_chunk_paths, estimate_resources, threads_used
    from kzsim.engine.system import available_memory_bytes, usable_cpus

    chunk = chunk or default_chunk_paths()

    est = estimate_resources(sc, paths, chunk, workers=workers, cpus=usable_cpus(), threads=threads)
    available = available_memory_bytes()
    if available is not None and est.memory_bytes - est.table_bytes > 0.9 * available:
        # not the paths' table: the processes, threads or event arrays alone do not fit
        def fits(chunk_paths: int = chunk, **how) -> bool:
            e = estimate_resources(sc, paths, chunk_paths, cpus=usable_cpus(), **how)
            return e.memory_bytes - e.table_bytes <= 0.9 * available

        need = f"need about {(est.memory_bytes - est.table_bytes) / 1e9:.1f} GB of memory before any path's results"
        if workers > 1:
            most = max((w for w in range(1, workers) if fits(workers=w)), default=1)
            raise BadInput(
                f"--workers {workers}: {workers} local workers {need} and {available / 1e9:.1f} GB are available "
                f"(allowed: at most {most} here)"
            )
        if threads > 1 and fits(threads=1):
            most = max(t for t in range(1, threads) if fits(threads=t))
            raise BadInput(
                f"--threads {threads}: {threads} threads {need} and {available / 1e9:.1f} GB are available "
                f"(allowed: at most {most} here)"
            )
        if chunk > default_chunk_paths() and fits(default_chunk_paths(), threads=threads):
            raise BadInput(
                f"--chunk-paths {chunk:,}: chunks of {chunk:,} paths {need} and {available / 1e9:.1f} GB are "
                f"available (allowed: the default, {default_chunk_paths():,}, or a smaller chunk)"
            )
        events = max(sc.expected_events_per_path().items(), key=lambda kv: kv[1])
        raise BadInput(
            f"{path}: {events[0]}: up to {events[1]:,.0f} events a path, {sc.simulation.horizon_days:,} days: "
            f"a block of paths would {need[5:]} and {available / 1e9:.1f} GB are available "
            "(allowed: a lower rate, a shorter horizon or --chunk-paths below 1,024)"
        )
    if available is not None and est.memory_bytes > 0.9 * available:
        per_path = est.table_bytes / paths
        fits = int(max(0.0, 0.9 * available - (est.memory_bytes - est.table_bytes)) / per_path)
        raise BadInput(
            f"{path}: simulation.paths: {paths:,} paths x {sc.simulation.horizon_days} days need about "
            f"{est.memory_bytes / 1e9:.1f} GB of memory and {available / 1e9:.1f} GB are available "
            f"(allowed: at most about {fits:,} paths here, or a shorter horizon)"
        )
    if not quiet and (est.seconds > ANNOUNCE_SECONDS or est.memory_bytes > ANNOUNCE_BYTES):
        if workers > 1:
            where = f" on {workers} local workers"
        else:
            used = threads_used(paths, chunk, threads)
            where = f" on {used} threads" if used > 1 else ""
        about = "at most about" if up_to else "about"
        click.echo(
            f"kzsim: {'up to ' if up_to else ''}{paths:,} paths x {sc.simulation.horizon_days} days: {about} "
            f"{est.seconds:,.0f} s{where} and {est.memory_bytes / 1e9:.1f} GB of memory",
            err=True,
        )
