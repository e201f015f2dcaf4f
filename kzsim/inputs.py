"""Reading a user's file with bounds: only a regular file, never more than a stated size.

A scenario, a CSV of prices or a results folder's manifest is read here before anything
parses it. A FIFO, a device (``/dev/zero``), a socket or a folder is refused without being
read (a FIFO is opened without waiting for a writer), and a file over its limit is refused
after reading at most one byte more than the limit, so no input can hang a command or
exhaust its memory before its checks run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputError(Exception):
    """A file that cannot be read as the input asked for; the message names it and what is allowed."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_bounded(path: str | Path, max_bytes: int, allowed: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Raises :class:`InputError` ("PATH: file not found (allowed: ...)", "PATH: is a named
    pipe (FIFO), not a regular file (allowed: ...)", "PATH: file is over N bytes ...").
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{source}: file not found (allowed: {allowed})") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a file (allowed: {allowed})") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot be read: {exc.strerror or exc} (allowed: {allowed})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{source}: is {kind_of(mode)}, not a regular file (allowed: {allowed})")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{source}: cannot be read: {exc.strerror or exc} (allowed: {allowed})") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise InputError(
            f"{source}: file is over {max_bytes:,} bytes (allowed: {allowed} of at most {max_bytes:,} bytes)"
        )
    return b"".join(chunks)


def regular_file_or_error(path: str | Path, allowed: str) -> str | None:
    """None when ``path`` is a regular file (symbolic links followed), else the message that says what it is."""
    source = str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{source}: file not found (allowed: {allowed})"
    except OSError as exc:
        return f"{source}: cannot be read: {exc.strerror or exc} (allowed: {allowed})"
    if not stat.S_ISREG(mode):
        return f"{source}: is {kind_of(mode)}, not a regular file (allowed: {allowed})"
    return None
