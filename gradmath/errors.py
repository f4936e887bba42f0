"""The one exception type gradmath raises for bad input and failed solves."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "GradmathError",
    "broadcast",
    "check_memory",
    "check_positive",
    "check_positive_int",
    "check_seed",
    "physical_memory",
    "suggest",
]


class GradmathError(ValueError):
    """Bad input or a computation that cannot give a finite, trustworthy answer.

    The message says what was wrong and what is allowed. Solvers that fail to converge
    attach their last estimate as ``partial`` (as emcee's ``AutocorrError`` does).
    """

    def __init__(self, message: str, *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def suggest(name: str, known: Iterable[str]) -> str:
    """A ``did you mean …?`` clause for an unknown ``name`` (empty if nothing is close).

    Names that start with ``name`` come first ("he" → he_normal, he_uniform), then close
    spellings by difflib's ratio ("sigmod" → sigmoid).

    >>> suggest("he", ["glorot_normal", "he_normal", "he_uniform"])
    " Did you mean 'he_normal', 'he_uniform'?"
    >>> suggest("sigmod", ["relu", "sigmoid", "tanh"])
    " Did you mean 'sigmoid'?"
    """
    names = sorted(set(known))
    key = _squash(str(name))
    prefixed = [k for k in names if key and _squash(k).startswith(key) and _squash(k) != key]
    close = difflib.get_close_matches(str(name).lower(), names, n=3, cutoff=0.5)
    picks = list(dict.fromkeys([*prefixed, *close]))[:4]
    return f" Did you mean {', '.join(repr(c) for c in picks)}?" if picks else ""


def broadcast(**arrays: Any) -> list[Any]:
    """``numpy.broadcast_arrays`` of the named arguments, or a GradmathError naming their shapes.

    >>> broadcast(q=[1.0, 2.0], c=0.5)[1].shape
    (2,)
    """
    import numpy as np

    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"`{k}` {np.shape(v)}" for k, v in arrays.items())
        raise GradmathError(
            f"The shapes of {shapes} do not broadcast together (NumPy's rules): give scalars "
            "or arrays of one shape."
        ) from None


@functools.cache
def physical_memory() -> int | None:
    """This machine's physical memory in bytes (``None`` where the OS does not say: not
    POSIX). Asked once per process (RAM does not change)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # not POSIX: no estimate to compare with
        return None


def check_memory(what: str, nbytes: float) -> None:
    """Refuse, before allocating, an array of ``nbytes`` that cannot fit in this machine's RAM.

    The message gives the estimate and the machine's physical memory; allocations below that
    still fail with MemoryError when memory is short, which callers also turn into this error.
    """
    total = physical_memory()
    if total is not None and nbytes > total:
        raise GradmathError(
            f"{what} needs about {_bytes(nbytes)}, more than this machine's "
            f"{_bytes(total)} of memory."
        )


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check_positive_int(
    name: str, value: object, *, minimum: int = 1, what: str | None = None
) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum`` (bools refused).

    The error says ``what`` is allowed (default: "a positive integer", or "an integer >= m").
    """
    if type(value) is int and value >= minimum:  # the common case, without the ABC check
        return value
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        if what is None:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise GradmathError(f"`{name}` (={value!r}) must be {what}.")
    return int(value)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is finite and positive (or zero when allowed).

    Any real number type is accepted (Python, NumPy of any width, Fraction, SymPy); strings and
    booleans are refused, though ``float()`` would take them.
    """
    try:
        if isinstance(value, (str, bytes, bool)) or type(value).__name__ in ("bool", "bool_"):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GradmathError(f"`{name}` (={value!r}) must be a real number.") from None
    ok = v >= 0 if allow_zero else v > 0
    if not (ok and v < float("inf")):
        allowed = "finite and >= 0" if allow_zero else "finite and > 0"
        raise GradmathError(f"`{name}` (={value!r}) must be {allowed}.")
    return v


def check_seed(value: object, *, what: str = "a non-negative int") -> int:
    """Return ``value`` as an int if it is a non-negative integer (bools refused).

    numpy's generators accept only seeds >= 0; this says so as a :class:`GradmathError`
    instead of numpy's ``ValueError``. ``what`` names what is allowed in the message.
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise GradmathError(f"`seed` (={value!r}) must be {what}.")
    return int(value)
