"""Worked examples (in progress)."""

from __future__ import annotations

from collections.abc import Sequence

from gradmath.symbolic.derivation import Derivation


def local_factor_example(weight: object = 500) -> Derivation:
    """σ'(0)·w = 0.25·500 = 125."""
    raise NotImplementedError


def path_product_example(factors: Sequence[object] = (300, 200, 125, 1001)) -> Derivation:
    """300·200·125·1001."""
    raise NotImplementedError


def update_rounding_example() -> Derivation:
    """0.001·2·10⁻¹⁰ lost in floating point."""
    raise NotImplementedError


def vanishing_bound_example(depths: Sequence[int] = (10, 20, 50)) -> Derivation:
    """(1/4)^L."""
    raise NotImplementedError
