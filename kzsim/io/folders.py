"""Results folders, written atomically and never over a user's results without ``force``.

Files are written into a hidden temporary folder beside the target; when all are written
the folder is renamed into place, so a reader sees either the previous complete results or
the new complete results, never a mix or a truncated file. No table or plot library is
imported here: the command line checks its output folder before anything heavy loads."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
from pathlib import Path

from kzsim.engine.concurrency import critical


class OutputExistsError(Exception):
    """The output folder cannot take the results: it holds files and ``force`` was not
    given, it is a file, or it cannot be made where it is."""


class NonFiniteResults(ValueError):
    """A run whose outputs overflowed (an infinite value, or a profit that is not a number):
    nothing is written from it."""


def default_out_dir(scenario_file: str | Path) -> Path:
    return Path("reports") / Path(scenario_file).stem


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse a target that is a file, a non-empty folder without ``force``, or a place
    where the results could not be written (before a run that may take minutes)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir}: exists and is not a folder (allowed: a folder path)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise OutputExistsError(
            f"{out_dir}: folder already holds results; use --force to replace them or --out for another folder"
        )
    check_writable(out_dir)


def check_writable(out_dir: Path) -> None:
    """Refuse an output folder that could not be made: a folder is made (and removed) where
    the results' temporary folder will go, in its parent or the nearest folder above that
    exists (nothing is left behind)."""
    place = Path(os.path.abspath(out_dir)).parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise OutputExistsError(f"{out_dir}: {place} is not a folder (allowed: a path under folders you can write in)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".probe", dir=place))
    except OSError as exc:
        raise OutputExistsError(
            f"{out_dir}: cannot write in {place} ({exc.strerror or exc}) (allowed: a folder you can write in)"
        ) from None


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def write_folder(out_dir: str | Path, fill, *, force: bool = False) -> Path:
    """Let ``fill(tmp)`` write files into a hidden temporary folder beside ``out_dir``, then
    rename it into place; on any error or interruption the temporary folder is removed."""
    out = Path(out_dir)
    check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; results are ordinary files
    try:
        fill(tmp)
        _swap_into_place(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def json_safe(value):
    """NaN and infinities become null: strict JSON that every reader accepts."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _swap_into_place(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished folder into place; SIGINT/SIGTERM wait until it is done (the
    CLI's handlers through :func:`kzsim.engine.concurrency.critical`; Python's own Ctrl-C handler
    as far as blocking the signal in this thread holds it off)."""
    block = hasattr(signal, "pthread_sigmask")
    if block:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    swapped = False
    try:
        with critical():
            _swap(tmp, out, force)
            swapped = True
    except BaseException as exc:
        if swapped:  # an interruption held until the new results were in place: say so
            exc.results_in_place = out
        raise
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _swap(tmp: Path, out: Path, force: bool) -> None:
    if out.exists():
        check_out_dir(out, force)  # the folder may have filled while we ran
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)
