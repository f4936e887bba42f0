"""Batch norm over examples *and positions* (``nn.BatchNorm2d``/``BatchNorm1d`` on (N, C, L)):
the mean-field arithmetic that :class:`~gradmath.network.BatchNorm` uses on a tensor with
positions.

At infinite channels one channel's pre-normalisation field h_{b,p} over the B examples and P
positions of a batch is a centred Gaussian vector of N = B·P entries with covariance

    Σ = I_B ⊗ (K − C) + J_B ⊗ C,

K_{pp'} = E[h_{b,p} h_{b,p'}] (one example), C_{pp'} = E[h_{b,p} h_{b',p'}] (two examples;
nonzero after an activation with E[φ] ≠ 0, whose mean every example shares), J_B the all-ones
matrix (Yang et al. 2019, "A Mean Field Theory of Batch Normalization", treat P = 1; the block
structure is the positions' generalisation). Batch norm gives y = (h − m)/s with m, s² the mean
and (biased) variance over all N entries; γ = 1, β = 0 and ε ≪ s² (ignored, as for the flat
layer).

Forward. With a_p = Cov(h_{b,p}, m) = (Σ_{p'} K_{pp'} + (B − 1) Σ_{p'} C_{pp'})/(B·P) and
v = Var m = (ΣK + (B − 1)ΣC)/(B·P²), the centred field has K' = K − a_p − a_{p'} + v and
C' = C − a_p − a_{p'} + v, and E[s²] = μ = mean_p K'_{pp}. The output moments are taken in the
large effective batch approximation, s² → E[s²]: K_y = K'/μ, C_y = C'/μ (mean diagonal exactly 1,
as the normalisation pins it at any width). The channel's s² = hᵀMh/N (M the centring
projector) is a Gaussian quadratic form with E = tr(MΣ)/N and Var = 2 tr((MΣ)²)/N²; its inverse
moment is taken from the moment-matched (Satterthwaite 1946) law s² ≈ μ·χ²_k/k with
k = tr(MΣ)²/tr((MΣ)²) degrees of freedom:

    E[1/s²] = k/((k − 2)·μ),      tr((MΣ)²) = B·[tr A² + 2 tr(A D) + B tr D²],

A = K' − C', D = C' (block algebra: (I ⊗ A + J ⊗ D)² = I ⊗ A² + J ⊗ (AD + DA) + B·J ⊗ D²).
For P = 1, K = 1, C = 0 this is k = B − 1 and E[1/s²] = B/((B − 3)s²), the flat layer's exact
value. Positions that are strongly correlated (few effective positions) or a mean shared by the
examples (C' ≠ 0) lower k, so E[1/s²] exceeds 1/μ even at a large batch.

Backward (gradient independence, as for the flat layer). ∂L/∂h = (δ − mean δ − y·mean(δy))/s:
with δ's covariance I_B ⊗ G over (example, position),

    q̃_h = E[1/s²]·(tr G − (ΣG + Σ G∘K_y)/N)/P          (white G: q̃_δ·E[1/s²]·(N − 2)/N)

and the gradient's position form stays G (its centring changes it by O(1/N)). The gradient is
centred over (example, position) per channel, which matters for the weight gradient of the
convolution below (:func:`weight_gradient`): it pairs δ with the input *minus its batch mean*,
so the examples' shared mean (C) does not count.

What is approximate, stated: (i) s² replaced by its expectation in the forward covariance, and
the law of the output taken Gaussian (its finite-N law is spherical); (ii) the inverse moment of
s² from a χ² law matched in mean and variance; (iii) O(1/N) terms in the gradient's position
form dropped; (iv) the gradient reaching the batch norm is taken independent across examples,
while one that comes through another batch norm above is centred over the batch (the flat
layer tracks this exactly at one position; here it costs ≈ +0.12 in log q̃ per such batch norm
at N = 8, and O(1/N) in general). (i)–(iii) vanish as N = B·P → ∞; (ii) is exact for P = 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError

__all__ = ["backward_factor", "forward", "weight_gradient"]

FloatArray = NDArray[np.float64]


def _b(batch: int | None) -> float:
    """1/B (0 in the large-batch limit)."""
    return 0.0 if batch is None else 1.0 / batch


def forward(
    k: FloatArray, c: FloatArray, batch: int | None
) -> tuple[float, float, FloatArray, FloatArray]:
    """(log μ, log(μ·E[1/s²]), K_y, C_y) for a channel with moments ``k`` (one example) and
    ``c`` (two examples) over P positions (module docstring), in units of the input's q."""
    inv_b = _b(batch)
    p = k.shape[0]
    a = (k.sum(axis=1) * inv_b + (1.0 - inv_b) * c.sum(axis=1)) / p
    v = (k.sum() * inv_b + (1.0 - inv_b) * c.sum()) / p**2
    shift = a[:, None] + a[None, :] - v
    kc, cc = k - shift, c - shift
    mu = float(np.mean(np.diagonal(kc)))
    if not mu > 0:
        raise GradmathError(
            "Every entry of a channel reaches this batch norm with the same value (variance "
            "over the batch and positions 0), so the normalisation is undefined."
        )
    am = kc - cc
    # tr((MΣ)²)/B divided by (N μ)²/B = B P² μ²: 1/k
    inv_k = (np.sum(am * am) * inv_b + 2.0 * np.sum(am * cc) * inv_b + np.sum(cc * cc)) / (
        p * p * mu * mu
    )
    if inv_k >= 0.5:
        raise GradmathError(
            f"This batch norm's variance has about {1.0 / inv_k:.3g} effective degrees of "
            "freedom (batch × positions, correlated), and E[1/s²] is infinite below 2: use a "
            "larger batch or input."
        )
    log_ratio = -math.log1p(-2.0 * inv_k)  # k/(k − 2)
    return math.log(mu), log_ratio, kc / mu, cc / mu


def backward_factor(g: FloatArray, k_y: FloatArray, batch: int | None) -> float:
    """(tr G − (ΣG + Σ G∘K_y)/N)/tr G: the share of the gradient the projection keeps."""
    n = g.shape[0]
    big_n = math.inf if batch is None else batch * n
    tr = float(np.trace(g))
    return 1.0 - (float(np.sum(g)) + float(np.sum(g * k_y))) / (big_n * tr)


def _prod(x: tuple[Any, Any], y: tuple[Any, Any], b: float) -> tuple[Any, Any]:
    """(I ⊗ A₁ + J ⊗ D₁)(I ⊗ A₂ + J ⊗ D₂) = I ⊗ A₁A₂ + J ⊗ (A₁D₂ + D₁A₂ + B·D₁D₂)."""
    return x[0] @ y[0], x[0] @ y[1] + x[1] @ y[0] + b * (x[1] @ y[1])


def _trace(x: tuple[Any, Any], b: float) -> float:
    """tr(I_B ⊗ A + J_B ⊗ D)/B = tr A + tr D."""
    return float(np.trace(x[0]) + np.trace(x[1]))


def weight_gradient(
    g: FloatArray, a: FloatArray, ac: FloatArray, k_y: FloatArray, c_y: FloatArray, batch: Any
) -> float:
    """Σ over the batch of δ·x, per example, for a convolution below a batch norm: δ with
    position covariance ``g`` (mean diagonal 1) through the batch norm's backward, whose
    output has moments ``k_y``, ``c_y``; ``a`` and ``ac`` the window averages A(K), A(C) of the
    convolution's input (one example, two).

    With X = I_B ⊗ (A − A_c) + J_B ⊗ A_c, Y = E[yyᵀ] and P_y = M − yyᵀ/N (M the centring),
    E‖Σ δ x‖² = E[1/s²]·E tr(P_y (I ⊗ G) P_y X), and y = conv(x)/s is built from the same
    x, so the projection off y removes E[yᵀGMXy] = tr(G M X Y) (the input's strongest
    directions, not an O(1/N) share when the input's positions are strongly correlated):

        tr(MGMX) − (2/N)·tr(G M X Y) + tr(G Y)·tr(X Y)/N²        (per example: / B),

    returned relative to q̃_h = E[1/s²]·(tr G − (ΣG + tr G K_y)/N)/P (the gradient row).
    The block products are exact (:func:`_prod`); B = None is the large-batch limit.
    """
    p = g.shape[0]
    b = float(batch) if batch is not None else 1e12  # the limit, numerically
    n = b * p
    zero = np.zeros_like(g)
    m = (np.eye(p), -np.ones((p, p)) / n)
    gf = (g, zero)
    x = (a - ac, ac)
    y = (k_y - c_y, c_y)
    mxm = _prod(_prod(m, x, b), m, b)
    s = _trace(_prod(gf, mxm, b), b)
    s -= 2.0 / n * _trace(_prod(_prod(gf, mxm, b), y, b), b)
    s += _trace(_prod(gf, y, b), b) * _trace(_prod(mxm, y, b), b) * b / n**2
    return s / backward_factor(g, k_y, batch)
