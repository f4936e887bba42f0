"""A catalogue of named factories with aliases, forgiving spelling and helpful errors."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Generic, TypeVar

from gradmath.errors import GradmathError, suggest

T = TypeVar("T")


def _squash(name: str) -> str:
    # "LeakyReLU", "leaky-relu", "kaiming_normal_" all name the same entry.
    return re.sub(r"[^a-z0-9]", "", name.lower())


class Registry(Generic[T]):
    """Factories by canonical name; ``build(name, **params)`` checks the parameter names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._lookup: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            for spelling in (name, *aliases):
                self._lookup[_squash(spelling)] = name
            return factory

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` and every spelling that leads to it (for temporary entries)."""
        key = self.canonical(name)
        del self._factories[key]
        for spelling in [s for s, k in self._lookup.items() if k == key]:
            del self._lookup[spelling]

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def canonical(self, name: str) -> str:
        if not isinstance(name, str):
            raise GradmathError(f"A {self.kind} name must be a string, got {name!r}.")
        key = self._lookup.get(_squash(name))
        if key is None:
            raise GradmathError(
                f"Unknown {self.kind} {name!r}.{suggest(name.lower(), self._factories)} "
                f"Known: {', '.join(sorted(self._factories))}."
            )
        return key

    def build(self, name: str, **params: object) -> T:
        key = self.canonical(name)
        factory = self._factories[key]
        allowed = list(inspect.signature(factory).parameters)
        extra = sorted(set(params) - set(allowed))
        if extra:
            takes = ", ".join(allowed) if allowed else "no parameters"
            raise GradmathError(f"{self.kind.capitalize()} {key!r} takes {takes}; got {extra}.")
        return factory(**params)


def real_param(
    name: str, value: object, lo: float, hi: float, allowed: str, *, lo_open: bool = False
) -> float:
    """``value`` as a finite float in [lo, hi] ((lo, hi] when ``lo_open``), else a
    GradmathError saying what is ``allowed``. Infinities are refused even when a bound is
    infinite (no parameter of an activation or initializer is meaningful at ±inf), and so
    are strings and booleans."""
    try:
        if isinstance(value, (str, bytes, bool)) or type(value).__name__ in ("bool", "bool_"):
            raise TypeError
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise GradmathError(f"`{name}` (={value!r}) must be a real number.") from None
    inside = (lo < v if lo_open else lo <= v) and v <= hi
    if not (math.isfinite(v) and inside):
        raise GradmathError(f"`{name}` (={value!r}) must be {allowed}.")
    return v
