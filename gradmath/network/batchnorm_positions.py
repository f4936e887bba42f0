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
form and in the weight gradient dropped. Each is exact as N → ∞ with B fixed per position
structure, and (ii) is exact for P = 1.
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


def weight_gradient(g: FloatArray, a: FloatArray, ac: FloatArray, batch: Any) -> float:
    """Σ over the batch of δ·x, per example, for a convolution below a batch norm: δ with
    position covariance ``g`` (mean diagonal 1), centred over (example, position); ``a`` and
    ``ac`` the window averages A(K), A(C) of the convolution's input (one example, two).

    With H = γ·M(I_B ⊗ G)M and X = I_B ⊗ (A − A_c) + J_B ⊗ A_c, E‖Σ δ x‖²/B = tr(HX)/B:

        γ·[Σ G∘A − 2/(BP)·(G1)·((A − A_c)1) − 2/P·(G1)·(A_c 1)
           + (Σ(A − A_c)/(BP²) + ΣA_c/P²)·ΣG],

    returned relative to q̃_h = γ·(1 − ΣG/(NP)) (what the gradient row holds).
    """
    inv_b = _b(batch)
    p = g.shape[0]
    r = g.sum(axis=1)
    ai, ad = a - ac, ac
    s = float(np.sum(g * a))
    s -= 2.0 * inv_b / p * float(r @ ai.sum(axis=1)) + 2.0 / p * float(r @ ad.sum(axis=1))
    s += (float(ai.sum()) * inv_b / p**2 + float(ad.sum()) / p**2) * float(g.sum())
    return s / (1.0 - float(g.sum()) * inv_b / (p * p))
