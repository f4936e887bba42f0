"""Initializer variances derived (in progress)."""

from __future__ import annotations

from typing import Any

from gradmath.symbolic.derivation import Derivation


def fan_symbols() -> tuple[Any, Any]:
    """The positive-integer symbols (fan_in, fan_out)."""
    raise NotImplementedError


def init_variance(scheme: str) -> Derivation:
    """Var[W] of LeCun, He or Glorot."""
    raise NotImplementedError
