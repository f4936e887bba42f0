"""The chain rule through a scalar chain of L layers (in progress)."""

from __future__ import annotations

from gradmath.activations import Activation
from gradmath.symbolic.derivation import Derivation


def chain_rule(depth: int, act: str | Activation = "sigmoid", **params: float) -> Derivation:
    """∂L/∂w_1 as a product of local factors, and its bound."""
    raise NotImplementedError
