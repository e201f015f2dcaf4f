"""Results folders, written atomically and never over a user's results without ``force``.

Files are written into a hidden temporary folder beside the target; when all are written
the folder is renamed into place, so a reader sees either the previous complete results or
the new complete results, never a mix or a truncated file. No table or plot library is
imported here: the command line checks its output folder before anything heavy loads."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from kzsim.engine.concurrency import critical, raise_if_interrupted


class OutputExistsError(Exception):
    """The output folder cannot take the results: it holds files and ``force`` was not
    given, it is a file, or it cannot be made where it is."""


class NonFiniteResults(ValueError):
    """A run whose outputs overflowed (an infinite value, or a profit that is not a number):
    nothing is written from it."""


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _start_ticks(pid: int) -> int:
    """When process ``pid`` started, in clock ticks since boot (Linux), or 0 when unknown."""
    stat = _read(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return 0


def owner_tag() -> str:
    """``kzsim-HOST-BOOT-PID-START``: who made a temporary file (this host, this boot, this
    process and when it started), so that a later run can prove its maker dead."""
    host, boot = _short_hash(socket.gethostname()), _short_hash(_read("/proc/sys/kernel/random/boot_id").strip())
    return f"kzsim-{host}-{boot}-{os.getpid()}-{_start_ticks(os.getpid())}"


_TEMP = re.compile(
    r"^\.(?P<name>.+)\.kzsim-(?P<host>[0-9a-f]{8})-(?P<boot>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)-[^.]*\.(?:tmp|old|probe)$"
)


def _maker_is_dead(host: str, boot: str, pid: int, start: int) -> bool:
    """True only when provably dead: made on this host, in an earlier boot, or by a process
    that is gone or is another one since (its start time differs)."""
    if host != _short_hash(socket.gethostname()):
        return False  # another machine's (a shared folder): not ours to judge
    if boot != _short_hash(_read("/proc/sys/kernel/random/boot_id").strip()):
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        pass
    return bool(start) and _start_ticks(pid) not in (0, start)


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Remove the temporary files and folders that kzsim runs into ``out_dir`` left beside it
    when they were killed (SIGKILL, a power cut): only those whose maker is provably dead."""
    out = Path(out_dir)
    removed = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or match["name"] != out.name:
            continue
        if not _maker_is_dead(match["host"], match["boot"], int(match["pid"]), int(match["start"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def resolve_out(out_dir: Path) -> Path:
    """The folder results go to: a symbolic link's target (the link stays and shows the new
    results); a dangling link is refused."""
    out = Path(out_dir)
    if out.is_symlink():
        if not out.exists():
            raise OutputExistsError(
                f"{out}: is a symbolic link to {os.readlink(out)}, which does not exist "
                "(allowed: a folder path, or a link to an existing folder)"
            )
        return Path(os.path.realpath(out))
    return out


def default_out_dir(scenario_file: str | Path) -> Path:
    return Path("reports") / Path(scenario_file).stem


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{owner_tag()}-", suffix=".tmp", dir=target.parent)
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
    out_dir = resolve_out(out_dir)
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
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.{owner_tag()}-", suffix=".probe", dir=place))
    except OSError as exc:
        raise OutputExistsError(
            f"{out_dir}: cannot write in {place} ({exc.strerror or exc}) (allowed: a folder you can write in)"
        ) from None


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def write_folder(out_dir: str | Path, fill, *, force: bool = False) -> Path:
    """Let ``fill(tmp)`` write files into a hidden temporary folder beside ``out_dir``, then
    rename it into place; on any error or interruption the temporary folder is removed."""
    check_out_dir(Path(out_dir), force)
    out = resolve_out(Path(out_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{owner_tag()}-", suffix=".tmp", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; results are ordinary files
    try:
        fill(tmp)
        _swap_into_place(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(out_dir)


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
            raise_if_interrupted()  # an interruption that something swallowed still stops the swap
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
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.{owner_tag()}-", suffix=".old", dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)
