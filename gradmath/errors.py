"""The one exception type gradmath raises for bad input and failed solves."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["GradmathError", "check_positive", "check_positive_int", "check_seed", "suggest"]


class GradmathError(ValueError):
    """Bad input or a computation that cannot give a finite, trustworthy answer.

    The message says what was wrong and what is allowed. Solvers that fail to converge
    attach their last estimate as ``partial`` (as emcee's ``AutocorrError`` does).
    """

    def __init__(self, message: str, *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


def suggest(name: str, known: Iterable[str]) -> str:
    """A ``did you mean …?`` clause for an unknown ``name`` (empty if nothing is close)."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


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
        if isinstance(value, (str, bytes, bool)) or type(value).__name__ == "bool_":
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
