"""How the model's loops are compiled (numba): cached on disk, without the GIL, numpy's error model; and selects that keep loops vectorisable."""

from __future__ import annotations

import numba


def jit(function):
    return numba.njit(cache=True, nogil=True, error_model="numpy")(function)


def inline(function):
    return numba.njit(inline="always")(function)


@inline
def select_max(a, b):
    """Python's max(a, b) (a unless b is larger), as a select: numba's builtin is a call
    that stops LLVM from vectorising the loop around it."""
    return b if b > a else a


@inline
def select_min(a, b):
    """Python's min(a, b) (a unless b is smaller), as a select."""
    return b if b < a else a
