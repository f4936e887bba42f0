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

Backward (gradient independence, as for the flat layer). ∂L/∂h = s⁻¹·P_y δ, P_y the projection
off span(1, y) over the N entries of a channel (y ⊥ 1, ‖y‖² = N). The gradient δ reaching the
batch norm is exchangeable over the examples, not independent across them: a batch norm above
centred it over its batch, and convolutions (linear per example), activations and residual
sums keep that, so its covariance over (example, position) is

    Γ = I_B ⊗ (G − O) + J_B ⊗ O          (``Grad.spatial`` = G, ``Grad.cross`` = O).

A convolution maps G and O by the same adjoint window map, an activation multiplies G by
E[φ'(u_p)φ'(u_p')] and O by the two-example E[φ'(u_{b,p})φ'(u_{b',p'})], a residual sum adds
both sides' forms. With X = E[δδᵀ], E tr(P_y X P_y) = E tr X − E[1ᵀX1]/N − E[yᵀXy]/N and

    q̃_h = E[1/s²]·E tr(P_y X P_y)/N.

When δ = D δ_a comes through an activation whose input is this batch norm's output y (or a
residual sum y + x with x independent of y), D = diag φ'(·) is not independent of the P_y it
meets: E[1ᵀX1] and E[yᵀXy] take E[φ'φ'] and E[yφ'·y'φ'] jointly with y, for one example and
two (:func:`backward`; ``Grad.tied``), as the flat layer's trace factor does at one position.
At P = 1 this is exactly the flat layer's recursion (Yang et al. 2019 setting, gradmath's
finite-B derivation) for a positively homogeneous φ, whose Gaussian and spherical moments
coincide. The result is centred again: its form is that of E[P_y X̄ P_y], X̄ = E[X], carried
as the new (G, O) (O ≈ −G/(B − 1) at one position). The weight gradient of the convolution
below (:func:`weight_gradient`) pairs δ with the input *minus its batch mean*, so the examples'
shared mean (C) does not count.

What is approximate, stated: (i) s² replaced by its expectation in the forward covariance, and
the law of the output taken Gaussian where only its moments enter (for N = B·P ≤ 1024 the
output also carries draws of its exact finite-N law, which a residual sum it feeds and an
activation that is not positively homogeneous integrate over; a positively homogeneous φ needs
only second moments at one position, where the law is elliptical); (ii) the inverse moment
of s² from a χ² law matched in mean and variance; (iii) the form over (example, position)
after the projection taken with X independent of y (its trace is exact); (iv) a max-pool
passes on no two-example form (O dropped: at ResNet's stem, N = 2048); (v) a residual sum's
joint moments with its side y come from draws (:mod:`gradmath.network.draws`, a batch norm's
side with its exact finite-N law); (vi) the weight gradient of the convolution below pairs δ
with its input jointly with y over the exact draws when the activation above reads y itself
(:func:`tied_weight_gradient`), but with φ' taken independent of y when it reads a residual sum
y + x (:func:`weight_gradient`).
(i)–(iii) vanish as N = B·P → ∞; (ii) and (iii) are exact for P = 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError

__all__ = ["backward", "forward", "tied_weight_gradient", "weight_gradient"]

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


def backward(
    g: FloatArray,
    o: FloatArray | None,
    k_y: FloatArray,
    c_y: FloatArray,
    batch: int | None,
    kernels: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None,
) -> tuple[float, FloatArray, FloatArray | None, tuple[FloatArray, FloatArray]]:
    """The batch norm's backward on the gradient's batch form (module docstring, Backward).

    δ_y has covariance I_B ⊗ (G − O) + J_B ⊗ O over (example, position) (``g`` = G, ``o`` = O,
    (P, P)); with ``kernels`` = (K_f, C_f, K_g, C_g), δ_y = D δ_a instead, D = diag φ'(y) at
    this batch norm's own output y and (``g``, ``o``) the form of δ_a. With P_y the projection
    off span(1, y) (y ⊥ 1, ‖y‖² = N) and X = E[δ_y δ_yᵀ] (for D: the moments tied to y),

        E tr(P_y X P_y) = E tr X − E[1ᵀX1]/N − E[yᵀXy]/N,

    block by block: tr X = B·tr(K_f∘G), 1ᵀX1 = B·(Σ K_f∘G + (B − 1)·Σ C_f∘O), yᵀXy = B·(Σ K_g∘G
    + (B − 1)·Σ C_g∘O) (without D: K_f = C_f = 1 and yᵀXy = tr(XY), Y = E[yyᵀ]). Exact at one
    position when y's law is the sphere's (Yang et al. 2019) and the kernels are its moments:
    for Γ_a = γP it is (B − 1)·γ·T, T the flat layer's trace factor. The result's form over
    (example, position) is that of E[P_y X̄ P_y] with X̄ = E[X] taken independent of y,
    M X̄ M − (M X̄ Y + Y X̄ M)/N + Y·tr(X̄Y)/N² (approximation (iii); at one position the form
    is forced, γ'P), scaled to the trace above.

    Returns (log(E tr(P_y X P_y)/N), G_h, O_h, X̄) with G_h, O_h the form of ∂L/∂h before
    1/s² (mean diagonal of G_h 1; O_h ``None`` in the large-batch limit) and X̄ = (G_y, O_y),
    the form of δ_y, for the weight gradient of the convolution below (:func:`weight_gradient`).
    """
    p = g.shape[0]
    o = np.zeros_like(g) if o is None else o
    if kernels is None:
        xg, xo = g, o
    else:
        kf, cf, _, _ = kernels
        xg, xo = g * kf, o * cf
    if batch is None:
        log_mean, gn = _normalised(xg)
        return log_mean, gn, None, (xg, xo)
    b = float(batch)
    n = b * p
    xbar = (xg - xo, xo)
    y = (k_y - c_y, c_y)
    tr_x = float(np.trace(xg))
    one_x_one = float(np.sum(xg)) + (b - 1.0) * float(np.sum(xo))
    if kernels is None:
        y_x_y = _trace(_prod(xbar, y, b), b)
    else:
        kg, cg = kernels[2], kernels[3]
        y_x_y = float(np.sum(kg * g)) + (b - 1.0) * float(np.sum(cg * o))
    kept = (tr_x - (one_x_one + y_x_y) / n) / p  # E tr(P_y X P_y)/N
    if not kept > 0:
        raise GradmathError(
            "The batch norm's backward keeps no gradient here (the projection off the mean and "
            "the output removes all of it)."
        )
    m = _centring(p, n)
    mxm = _prod(_prod(m, xbar, b), m, b)
    mxy = _prod(_prod(m, xbar, b), y, b)
    yxm = _prod(_prod(y, xbar, b), m, b)
    t = _trace(_prod(xbar, y, b), b) * b / n**2
    form_a = mxm[0] - (mxy[0] + yxm[0]) / n + t * y[0]
    form_c = mxm[1] - (mxy[1] + yxm[1]) / n + t * y[1]
    form_g = form_a + form_c
    scale = float(np.mean(np.diagonal(form_g)))
    if not scale > 0:
        raise GradmathError("The batch norm's backward form has no diagonal left.")
    return math.log(kept), form_g / scale, form_c / scale, (xg, xo)


def _normalised(m: FloatArray) -> tuple[float, FloatArray]:
    mean = float(np.mean(np.diagonal(m)))
    return math.log(mean), m / mean


def _centring(p: int, n: float) -> tuple[FloatArray, FloatArray]:
    """M = I − 11ᵀ/N over the N = B·p entries of a channel, as a block form (I_p, −J_p/N)."""
    return np.eye(p), -np.ones((p, p)) / n


def _prod(x: tuple[Any, Any], y: tuple[Any, Any], b: float) -> tuple[Any, Any]:
    """(I ⊗ A₁ + J ⊗ D₁)(I ⊗ A₂ + J ⊗ D₂) = I ⊗ A₁A₂ + J ⊗ (A₁D₂ + D₁A₂ + B·D₁D₂)."""
    return x[0] @ y[0], x[0] @ y[1] + x[1] @ y[0] + b * (x[1] @ y[1])


def _trace(x: tuple[Any, Any], b: float) -> float:
    """tr(I_B ⊗ A + J_B ⊗ D)/B = tr A + tr D."""
    return float(np.trace(x[0]) + np.trace(x[1]))


def weight_gradient(
    g: FloatArray,
    o: FloatArray | None,
    a: FloatArray,
    ac: FloatArray,
    k_y: FloatArray,
    c_y: FloatArray,
    batch: Any,
) -> float:
    """Σ over the batch of δ·x, per example, for a convolution below a batch norm: δ_y (above
    the batch norm) with batch form I_B ⊗ (G − O) + J_B ⊗ O (``g``, ``o``; O = ``None``: 0)
    through the batch norm's backward, whose output has moments ``k_y``, ``c_y``; ``a`` and
    ``ac`` the window averages A(K), A(C) of the convolution's input (one example, two).

    With Γ = I ⊗ (G − O) + J ⊗ O, X = I_B ⊗ (A − A_c) + J_B ⊗ A_c, Y = E[yyᵀ] and
    P_y = M − yyᵀ/N (M the centring), E‖Σ δ x‖² = E[1/s²]·E tr(P_y Γ P_y X), and
    y = conv(x)/s is built from the same x, so the projection off y removes E[yᵀΓMXy] =
    tr(Γ M X Y) (the input's strongest directions, not an O(1/N) share when the input's
    positions are strongly correlated):

        tr(MΓMX) − (2/N)·tr(Γ M X Y) + tr(ΓY)·tr(X Y)/N²        (per example: / B),

    returned relative to the gradient row, q̃_h = E[1/s²]·(tr Γ − 1ᵀΓ1/N − tr(ΓY)/N)/N, with
    Γ taken independent of y in both (at one position X ∝ M and the ratio is exact).
    The block products are exact (:func:`_prod`); B = None is the large-batch limit.
    """
    p = g.shape[0]
    b = float(batch) if batch is not None else 1e12  # the limit, numerically
    n = b * p
    o = np.zeros_like(g) if o is None else o
    m = _centring(p, n)
    gf = (g - o, o)
    x = (a - ac, ac)
    y = (k_y - c_y, c_y)
    mxm = _prod(_prod(m, x, b), m, b)
    s = _trace(_prod(gf, mxm, b), b)
    s -= 2.0 / n * _trace(_prod(_prod(gf, mxm, b), y, b), b)
    s += _trace(_prod(gf, y, b), b) * _trace(_prod(mxm, y, b), b) * b / n**2
    one_g_one = float(np.sum(g)) + (b - 1.0) * float(np.sum(o))
    kept = (float(np.trace(g)) - (one_g_one + _trace(_prod(gf, y, b), b)) / n) / p
    return s / kept


def tied_weight_gradient(
    g: FloatArray,
    o: FloatArray | None,
    a: FloatArray,
    ac: FloatArray,
    y: FloatArray,
    deriv: Any,
) -> float:
    """:func:`weight_gradient` when δ_y = D δ_a comes through an activation of this batch
    norm's own output y (``Grad.tied``), D = diag φ'(y): δ_a with batch form I_B ⊗ (G − O) +
    J_B ⊗ O (``g``, ``o``), ``y`` the (M, B, P) draws of the batch norm's exact finite-N output
    (:func:`gradmath.network.draws.batchnorm_batches`), ``deriv`` = φ'.

    With Γ = D Γ_a D, P_y = M − yyᵀ/N and My = y,

        tr(P_y Γ P_y X) = tr(MΓMX) − (2/N)·yᵀΓMXy + (yᵀΓy)(yᵀXy)/N²,

    and here D is not independent of y: the projection off y removes (y∘φ')ᵀΓ_a(φ'∘MXy), whose
    mean :func:`weight_gradient` takes as tr(E[Γ] M X Y). For ReLU, y·φ'(y) = relu(y) ≥ 0 adds
    up coherently over the positions of a gradient that is shared by them (a global average
    pool above), so the exact term is larger: the weight gradient of a convolution after an
    average pool is e^−0.18 of the decoupled value at batch 8 (tanh: e^−0.003). Each term is
    averaged over the draws, and so is the gradient row's E tr(P_y Γ P_y)/N, which the result
    is relative to (a ratio of Monte-Carlo means over the same draws)."""
    _, b, p = y.shape
    n = b * p
    o = np.zeros_like(g) if o is None else o
    gam = (g - o, o)
    x = (a - ac, ac)

    def apply(form: tuple[FloatArray, FloatArray], u: FloatArray) -> FloatArray:
        # (I_B ⊗ A + J_B ⊗ D) u for u (M, B, P)
        return np.asarray(u @ form[0].T + u.sum(axis=1, keepdims=True) @ form[1].T)

    def quad(u: FloatArray, form: tuple[FloatArray, FloatArray], v: FloatArray) -> FloatArray:
        return np.asarray(np.sum(u * apply(form, v), axis=(1, 2)))

    f = np.asarray(deriv(y), dtype=np.float64)
    yf = y * f
    # Hadamard product of two block forms: diagonal blocks (A₁ + D₁)∘(A₂ + D₂), others D₁∘D₂
    centre = _centring(p, n)
    mxm = _prod(_prod(centre, x, b), centre, b)
    h_off = gam[1] * mxm[1]
    h = ((gam[0] + gam[1]) * (mxm[0] + mxm[1]) - h_off, h_off)
    t1 = quad(f, h, f)
    xy = apply(x, y)
    mxy = xy - xy.mean(axis=(1, 2), keepdims=True)
    t2 = quad(yf, gam, f * mxy)
    yty = quad(yf, gam, yf)
    t3 = yty * np.sum(y * xy, axis=(1, 2))
    s = float(np.mean(t1 - 2.0 / n * t2 + t3 / n**2))
    diag = np.diagonal(gam[0] + gam[1])
    kept = float(np.mean(np.sum(f * f * diag, axis=(1, 2)) - (quad(f, gam, f) + yty) / n))
    return p * s / kept
