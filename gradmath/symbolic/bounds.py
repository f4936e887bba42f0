"""φ'(z) in closed form and the supremum of |φ'(z)| over the reals (in progress)."""

from __future__ import annotations

from gradmath.activations import Activation
from gradmath.symbolic.derivation import Derivation


def derivative(act: str | Activation, **params: float) -> Derivation:
    """φ'(z) of a catalogue activation in textbook closed form."""
    raise NotImplementedError


def derivative_bound(act: str | Activation, **params: float) -> Derivation:
    """sup_z |φ'(z)| and where it is attained."""
    raise NotImplementedError
