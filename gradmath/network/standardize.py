"""Standardisation over one axis, forward and exact backward: the arithmetic of both norms.

Batch norm standardises each unit over the batch (axis −2), layer norm each example over its
units (axis −1); γ = 1, β = 0, biased variance, no eps (Ioffe & Szegedy 2015, Algorithm 1;
Ba, Kiros & Hinton 2016, eq. 4). With h = (a − μ)/σ along the axis,

    ∂L/∂a = (δ − mean δ − h · mean(δ h)) / σ          (means along the same axis)

which is the exact derivative through μ and σ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError

__all__ = ["standardize", "standardize_backward"]

Array = NDArray[np.floating[Any]]


def standardize(a: Array, axis: int, eps: float | Array = 0.0) -> tuple[Array, Array]:
    """(h, 1/σ): h = (a − μ)/σ along ``axis`` (σ² the biased variance + eps), 1/σ kept dims.

    ``eps`` may be an array broadcasting against the variance (one ε per stacked network, in
    that network's units). The backward formula (module docstring) holds with ε too: it only
    uses h = (a − μ)/σ and 1/σ.

    >>> h, inv = standardize(np.array([[1.0, 3.0], [3.0, 7.0]]), axis=-2)
    >>> h.tolist(), inv.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [[1.0, 0.5]])
    """
    mu = a.mean(axis=axis, keepdims=True)
    c = a - mu
    var = np.mean(c * c, axis=axis, keepdims=True)
    if np.any(eps):
        var = var + eps
    if not np.all(var > 0):
        what = "unit over the batch" if axis in (-2, a.ndim - 2) else "example over its units"
        raise GradmathError(
            f"A normalised {what} has zero variance (all its values are equal), so "
            "h = (a − μ)/σ is undefined; use distinct inputs (batch >= 2 for batch norm) or "
            "eps > 0."
        )
    inv_sigma = 1.0 / np.sqrt(var)
    c *= inv_sigma
    return c, inv_sigma


def standardize_backward(delta: Array, h: Array, inv_sigma: Array, axis: int) -> Array:
    """∂L/∂a from δ = ∂L/∂h through h = (a − μ)/σ (module docstring)."""
    m1 = delta.mean(axis=axis, keepdims=True)
    m2 = np.mean(delta * h, axis=axis, keepdims=True)
    out = delta - m1
    out -= h * m2
    out *= inv_sigma
    return out
