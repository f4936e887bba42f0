"""The self-normalising map of SELU networks (Klambauer et al. 2017) and its constants.

Klambauer, Unterthiner, Mayr & Hochreiter (2017), "Self-Normalizing Neural Networks", eqs. 4–5:
a unit receives z = Σ w_i x_i with inputs of mean μ and variance ν, weight sum ω = Σ w_i and
squared sum τ = Σ w_i²; for many inputs z ~ N(μω, ντ) and the unit's output y = selu(z) has

    μ̃ = E[selu(z)],   ν̃ = E[selu(z)²] − μ̃²,      z ~ N(μω, ντ).

With ω = 0 and τ = 1 (normalised weights) the map is a function of (μ, ν) alone and Theorem 1
shows it has the attracting fixed point (0, 1) for λ ≈ 1.0507, α ≈ 1.6733 (their eq. 14).
Both expectations go through the one Gaussian engine (:func:`gaussian.expect_shifted`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from gradmath.activations import SELU_ALPHA, SELU_LAMBDA, activation
from gradmath.errors import GradmathError, check_positive
from gradmath.meanfield import gaussian as gs

__all__ = ["selu_map", "selu_parameters"]


def selu_map(
    mu: ArrayLike,
    nu: ArrayLike,
    *,
    omega: float = 0.0,
    tau: float = 1.0,
    scale: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
) -> tuple[Any, Any]:
    """(μ, ν) ↦ (μ̃, ν̃) of Klambauer et al. (2017), eqs. 4–5, vectorised over μ and ν.

    ``omega`` = Σ w_i and ``tau`` = Σ w_i² of the incoming weights; ``scale`` (λ) and ``alpha``
    (α) are SELU's parameters (default: the published constants, for which (0, 1) is fixed).

    >>> m, v = selu_map(0.0, 1.0)
    >>> abs(m) < 1e-12, abs(v - 1) < 1e-12
    (True, True)
    """
    omega = float(omega)
    if not math.isfinite(omega):
        raise GradmathError(f"`omega` (={omega!r}) must be finite.")
    tau = check_positive("tau", tau, allow_zero=True)
    act = activation("selu", scale=scale, alpha=alpha)
    m = gs._as_array("mu", mu, -math.inf, math.inf, "finite")
    v = gs._check_q("nu", nu)
    m1 = gs.expect_shifted(act, m * omega, v * tau, act.kinks)
    m2 = gs.expect_shifted(lambda h: act(h) ** 2, m * omega, v * tau, act.kinks)
    nu_t = m2 - m1 * m1
    return (float(m1), float(nu_t)) if m1.ndim == 0 else (m1, nu_t)


def selu_parameters(nu: float = 1.0, *, tau: float = 1.0) -> tuple[float, float]:
    """(λ, α) for which (0, ν) is a fixed point of the SELU map (Klambauer et al. 2017, eq. 14).

    With μ = 0 the pre-activation is z ~ N(0, ντ) whatever ω is, and selu = λ·(z on z > 0,
    α(e^z − 1) on z ≤ 0) splits both equations into four Gaussian integrals
    A = E[z; z>0], B = E[e^z − 1; z≤0], C = E[z²; z>0], D = E[(e^z − 1)²; z≤0]:
    μ̃ = λ(A + αB) = 0 and ν̃ = λ²(C + α²D) = ν, so α = −A/B and λ = √(ν/(C + α²D)) exactly.
    For ν = τ = 1 this recovers λ = 1.0507009873554805, α = 1.6732632423543772.

    >>> lam, alpha = selu_parameters()
    >>> abs(lam - 1.0507009873554805) < 1e-12, abs(alpha - 1.6732632423543772) < 1e-12
    (True, True)
    """
    nu = check_positive("nu", nu)
    tau = check_positive("tau", tau)
    var = nu * tau

    def pos(z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0)

    def neg(z: np.ndarray) -> np.ndarray:
        return np.expm1(np.minimum(z, 0.0))

    a, b, c, d = (
        float(gs.expect_shifted(f, 0.0, var, (0.0,)))
        for f in (pos, neg, lambda z: pos(z) ** 2, lambda z: neg(z) ** 2)
    )
    alpha = -a / b
    return math.sqrt(nu / (c + alpha * alpha * d)), alpha
