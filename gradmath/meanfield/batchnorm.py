"""Mean-field theory of batch-normalised MLPs at initialisation (Yang et al. 2019).

The network (gradmath's convention, ``MLP(..., batchnorm=True)`` seen at batch B): a batch of B
inputs x^0_b ~ N(0, input_q·I), b = 1 … B, and for l = 1 … L, per unit j,

    a^l = W^l x^{l−1} + b^l,   h^l_{bj} = (a^l_{bj} − μ_j)/σ_j,   x^l = φ_l(h^l)
    μ_j = (1/B) Σ_b a^l_{bj},  σ_j² = (1/B) Σ_b (a^l_{bj} − μ_j)²   (biased variance, γ = 1, β = 0,
                                                                      eps = 0)

The profile is about h^l (the input of φ) and δ^l = ∂L/∂h^l; the backward pass starts from
δ^L with i.i.d. N(0, output_grad_q) entries and goes exactly through μ and σ.

**Forward: pinned.** Every column h^l_{·j} is orthogonal to 1 and has ‖h^l_{·j}‖² = B, so
(1/B) Σ_b (h^l_{bj})² = 1 exactly, at every width and depth; with exchangeable examples
E[(h^l_{bj})²] = 1 and ``log_q`` is 0 for every layer. (With the unbiased variance it would be
(B−1)/B; gradmath, like PyTorch and Keras in training mode, normalises by the biased one.)

**Forward law (width → ∞ first, B fixed).** Given x^{l−1}, a^l_{·j} ~ N(0, v_l XXᵀ + σ_b² 11ᵀ).
Centering removes the bias; as n_{l−1} → ∞, v_l XXᵀ → n_{l−1} v_l K with K = E[x_b x_{b'}] per
unit, which has d on the diagonal and o off it (exchangeable examples), so P a_{·j} ~ N(0, s² P),
P = I − 11ᵀ/B, s² = n_{l−1} v_l (d − o) (layer 1: s² = n_0 v_1 input_q). Isotropy gives:

- h^l_{·j} = √B Pa/‖Pa‖ is uniform on the sphere of radius √B in 1^⊥ — the batch-symmetric
  ("BSB1") fixed point of Yang et al. (2019), reached already at layer 1 for i.i.d. inputs;
  one coordinate h_b = √(B−1)·ω₁ with ω uniform on S^{B−2}, so h_b → N(0, 1) as B → ∞;
- σ_j² = ‖Pa‖²/B ~ s² χ²_{B−1}/B, independent of h_{·j}, and E[1/σ_j²] = B/((B−3) s²) for
  B ≥ 4 (infinite for B ≤ 3, so no finite mean-field gradient exists there).

d = E[φ(h_1)²], o = E[φ(h_1)φ(h_2)] and the four gradient moments m_f = E[φ'(h_1)²],
c_f = E[φ'(h_1)φ'(h_2)], m_g = E[(h_1φ'(h_1))²], c_g = E[h_1φ'(h_1) h_2φ'(h_2)] are taken
under this spherical law (:func:`batch_moments`).

**Backward (under the gradient-independence assumption, as in Yang et al. 2019).** Through BN,
∂L/∂a_{·j} = σ_j^{−1} P_h δ_{·j} with P_h = P − h hᵀ/B, the projection off span(1, h_{·j})
(rank B − 2). With W^l in the backward pass independent of the forward pass, the columns of
∂L/∂x^{l−1} are N(0, n_l v_l Γ_a^l) and independent of h^{l−1}; Γ_a^l = γ_a^l P at every layer
(exchangeable and annihilating 1). Writing γ_x^l = n_{l+1} v_{l+1} γ_a^{l+1} and D = diag φ'(h):

    γ_a^L   = output_grad_q · E[1/σ_L²] · (B−2)/(B−1)          (E P_h = (B−2)/(B−1)·P)
    q̃^l     = γ_x^l · (1 − 1/B) · m_f^l                        (l < L; q̃^L = output_grad_q)
    γ_a^l   = γ_x^l · E[1/σ_l²] · T_l,   T_l = E tr(P_h D P D P_h)/(B−1)
    (B−1) T = (B−2) m_f + m_f/B + (B−1) c_f/B − (B−1)(m_g − c_g)/B

(the trace expands through tr(D P D P) = (1 − 2/B) Σ f_b² + (Σ f_b)²/B² and
hᵀ D P D h = Σ (f_b h_b)² − (Σ f_b h_b)²/B, f = φ'(h)). For square layers and one φ the
squared gradient therefore grows geometrically down the net by

    λ_B = q̃^{l−1}/q̃^l = B T / ((B−3)(d − o))          (:func:`gradient_growth`)

independent of σ_w² and σ_b² (BN is scale invariant and removes the bias). Limits:

- B → ∞: h_b → N(0, 1), T → E[φ'(z)²], d − o → Var φ(z), so λ_∞ = E[φ'(z)²] / Var[φ(z)]
  (Gaussian expectations through :mod:`gradmath.meanfield.gaussian`). ReLU:
  (1/2)/(1/2 − 1/(2π)) = π/(π − 1) ≈ 1.4669, the large-batch ReLU rate of Yang et al. (2019)
  as theory.md quotes it; tanh: E[sech⁴ z]/E[tanh² z] ≈ 1.17781 (mpmath check in the tests).
- ReLU at B = 64: 1.4931, matching the ≈ 1.49 that theory.md quotes from the paper.
- φ = identity: T = (B−2)/(B−1), d − o = B/(B−1), λ_B = (B−2)/(B−3).

Sources, honestly. The finite-B recursion above is *derived here*, not transcribed: the
paper's own finite-B expressions (obtained there with Laplace, Fourier and Gegenbauer
transforms) could not be retrieved to compare equation by equation. What was checked: the
large-B limit against π/(π−1), the B = 64 ReLU value against the quoted ≈ 1.49, the identity
case against (B−2)/(B−3), and whole profiles and the per-layer rate against networks simulated
with exact backpropagation through μ and σ (tests/meanfield/test_batchnorm.py).

What is exact and what is not. The pinned forward moment is exact. The rest is the width → ∞
limit at fixed B plus gradient independence; at finite width the Gram matrix of the previous
layer is not exactly isotropic, which raises E[1/σ²] by O(1/n) (≈ 2/n for Gaussian features,
by second-order expansion of E[1/(gᵀCg)]); measured at width 128, B = 8: simulated q̃ above
this theory by ≤ 1.5 % after 4 layers and ≤ 3 % after 8.

Weight gradients. ∂L/∂W^l_{jk} = Σ_b ∂L/∂a^l_{bj} x^{l−1}_{bk} sums over the batch; its second
moment is γ_a^l tr(P K^{l−1}) = γ_a^l (B−1)(d_{l−1} − o_{l−1}) (layer 1: γ_a^1 (B−1) input_q).
``log_wgrad_q`` reports it per example, divided by B (as :func:`gradmath.numeric.simulate`
does for batch-norm nets), which is what E[(∂L/∂W)²] = q̃ E[x²] means for a plain net (there
the batch sum of independent examples is B times one) and stays finite as B → ∞. It scales
as 1/σ_w² (the net is invariant under W → cW, so ∂L/∂(cW) = ∂L/∂W / c).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError

__all__ = ["BatchMoments", "batch_moments", "gradient_growth"]

#: Radial rule of the spherical quadrature: Gauss–Legendre panels of RADIAL_NODES nodes in
#: ψ = arcsin(r), split where ρ = √(B−1) r crosses a kink radius and at ρ = 1, 2, …, RHO_MAX
#: (beyond RHO_MAX the radial density is below e^{−RHO_MAX²/2·(B−5)/(B−1)}).
RADIAL_NODES = 16
RHO_MAX = 14.0
#: Geometric panel edges |k| + 2^{−j}, j = 1 … KINK_GRADING, outside each nonzero kink k.
KINK_GRADING = 24
#: Angular nodes: ANGLE_BASE + ANGLE_PER_RADIUS · ρ per circle (the integrand varies on the
#: scale 1/ρ in the angle).
ANGLE_BASE = 64
ANGLE_PER_RADIUS = 32
#: Above this batch size the moments are interpolated in 1/B towards the B = ∞ limit
#: (:func:`batch_moments`): the quadrature is accurate to 1e-12 here and degrades above.
LARGE_BATCH = 10**6


def gradient_growth(act: Activation | str, batch: int | None = None) -> float:
    """λ_B = q̃^{l−1}/q̃^l, the per-layer growth of E[(∂L/∂h^l)²] in a deep square BN net.

    λ_B = B T/((B−3)(d − o)) (module docstring); ``batch=None`` gives the large-batch
    limit λ_∞ = E[φ'(z)²]/Var[φ(z)] (for ReLU π/(π−1), Yang et al. 2019). The squared weight
    gradient grows by the same factor; gradient *norms* by √λ_B.

    >>> round(gradient_growth("relu"), 10) == round(math.pi / (math.pi - 1), 10)
    True
    >>> round(gradient_growth("relu", 64), 4)
    1.4931
    >>> round(gradient_growth("linear", 10), 12)   # (B−2)/(B−3)
    1.142857142857
    """
    B = _check_batch(batch)
    m = batch_moments(act, B)
    return math.exp(_log_ratio(B, 0, -3) + math.log(m.trace_factor(B)) - math.log(m.variance))


class BatchMoments(NamedTuple):
    """Moments of one unit's normalised pre-activations h_1, h_2 (two examples of one batch).

    Under the spherical law of the module docstring (finite B) or i.i.d. N(0, 1) (B = None):
    ``phi2`` = E[φ(h_1)²] (d), ``phi_cross`` = E[φ(h_1)φ(h_2)] (o), ``dphi2`` = E[φ'(h_1)²],
    ``dphi_cross`` = E[φ'(h_1)φ'(h_2)], ``hdphi2`` = E[(h_1φ'(h_1))²],
    ``hdphi_cross`` = E[h_1φ'(h_1) h_2φ'(h_2)].
    """

    phi2: float
    phi_cross: float
    dphi2: float
    dphi_cross: float
    hdphi2: float
    hdphi_cross: float

    @property
    def variance(self) -> float:
        """d − o: the per-unit batch covariance of φ(h) is (d − o)·P + o·11ᵀ."""
        return self.phi2 - self.phi_cross

    def trace_factor(self, batch: int | None) -> float:
        """T = E tr(P_h D P D P_h)/(B − 1) (module docstring); E[φ'(z)²] as B → ∞."""
        if batch is None:
            return self.dphi2
        B = float(batch)
        return (
            (B - 2) * self.dphi2
            + self.dphi2 / B
            + (B - 1) * self.dphi_cross / B
            - (B - 1) * (self.hdphi2 - self.hdphi_cross) / B
        ) / (B - 1)


def batch_moments(act: Activation | str, batch: int | None = None) -> BatchMoments:
    """The moments BN theory needs (:class:`BatchMoments`) for ``act`` at batch size B.

    B = None: h_1, h_2 i.i.d. N(0, 1), one-dimensional Gaussian expectations from the
    project's engine (:func:`gradmath.meanfield.gaussian.expect`, ``mean_phi2``,
    ``mean_dphi2``). Finite B ≥ 4: the spherical law is not Gaussian; with k = B − 1 and
    (ω₁, ω₂) = r (cos θ, sin θ) the first two coordinates of a uniform point of S^{k−1},
    t = r² ~ Beta(1, (B−3)/2), θ uniform, independent, and

        h_1 = √(B−1) r cos θ,   h_2 = √(B−1) r cos(θ − θ₀),   cos θ₀ = −1/(B−1),

    so every moment is a two-dimensional integral: Gauss–Jacobi in t (weight (1−t)^{(B−5)/2};
    for B ≥ 400 Gauss–Laguerre in (B−3)t/2 with the exact density ratio as weight) times, on
    each circle, the trapezoid rule (spectrally accurate for periodic integrands) or, where φ
    has kinks, Gauss–Legendre between the angles at which h_1 or h_2 crosses a kink. This is
    a quadrature for the spherical law, not a second Gaussian engine; it is checked against
    the exact ReLU values (the orthant and arc-cosine formulas apply on the sphere because
    ReLU is positively homogeneous), against Monte Carlo for tanh, and against B → ∞.

    >>> m = batch_moments("relu", 16)
    >>> round(m.phi2, 12), round(m.dphi2, 12)     # E[relu(h)²] = E[h²]/2 = 1/2 exactly
    (0.5, 0.5)
    """
    act = activation(act)
    B = _check_batch(batch)
    if B is None:
        return _gaussian_moments(act)
    if B > LARGE_BATCH:
        # The spherical quadrature loses digits as B grows (λ_B is off by 4e-7 at B = 1e10,
        # 0.07 at 1e16); the moments are smooth in 1/B, so interpolate linearly in 1/B between
        # B₀ = LARGE_BATCH and the exact B = ∞ limit (error O(1/(B·B₀)) < 1e-12 relative).
        near = _sphere_moments(act, LARGE_BATCH)
        far = np.array(_gaussian_moments(act))
        w = LARGE_BATCH / B
        return BatchMoments(*(float(v) for v in far + w * (near - far)))
    return BatchMoments(*(float(v) for v in _sphere_moments(act, B)))


# --------------------------------------------------------------------------- internals


def _check_batch(batch: int | None) -> int | None:
    if batch is None:
        return None
    B = batch
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)) or B < 4:
        raise GradmathError(
            f"`batch` (={B!r}) must be an integer >= 4 or None (large-batch limit): the "
            "batch variance σ² is s²·χ²_{B−1}/B, and E[1/σ²] (hence the mean-field gradient "
            "second moment) is infinite for B <= 3."
        )
    return int(B)


def _log_ratio(B: int | None, num: int, den: int) -> float:
    """log((B + num)/(B + den)), 0 in the large-batch limit."""
    return 0.0 if B is None else math.log((B + num) / (B + den))


def _gaussian_moments(act: Activation) -> BatchMoments:
    from gradmath.meanfield.gaussian import expect
    from gradmath.meanfield.moments import mean_dphi2, mean_phi2

    kinks = act.kinks
    mean_phi = float(expect(act, 1.0, kinks))
    mean_dphi = float(expect(act.deriv, 1.0, kinks))
    mean_zdphi = float(expect(lambda u: u * act.deriv(u), 1.0, kinks))
    return BatchMoments(
        float(mean_phi2(act, 1.0)),
        mean_phi**2,
        float(mean_dphi2(act, 1.0)),
        mean_dphi**2,
        float(expect(lambda u: (u * act.deriv(u)) ** 2, 1.0, kinks)),
        mean_zdphi**2,
    )


def _radial_rule(B: int, kinks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Radii ρ = √(B−1)·r and weights (summing to 1) of the radial law of the sphere.

    r² ~ Beta(1, (B−3)/2), i.e. density ∝ r (1 − r²)^{(B−5)/2} on [0, 1]. With r = sin ψ this
    is ∝ sin ψ cos^{B−4} ψ dψ on [0, π/2], smooth for every integer B ≥ 4 (no endpoint
    singularity, even at B = 4), so Gauss–Legendre panels in ψ converge fast. Panel edges sit
    where the angle-averaged integrand is not smooth: at ρ = |k| (the circle starts to cross
    the kink line h = k: a √(ρ − |k|) onset, so the panels are graded geometrically there) and
    where the circle passes through a crossing of two kink lines (a jump in the slope).
    """
    c = math.sqrt(B - 1.0)
    rho_end = min(c, RHO_MAX)
    edges_rho = {0.0, rho_end, *np.arange(1.0, rho_end, 1.0)}
    # The circle passes through a corner h_1 = k_1, h_2 = k_2 (two kink lines crossing); with
    # h_2 = h_1 cos θ₀ + y sin θ₀ that is at ρ² = k_1² + ((k_2 − k_1 cos θ₀)/sin θ₀)².
    cos0 = -1.0 / (B - 1)
    sin0 = math.sqrt(1.0 - cos0 * cos0)
    for k1 in kinks:
        for k2 in kinks:
            corner = math.hypot(k1, (k2 - k1 * cos0) / sin0)
            if 0 < corner < rho_end:
                edges_rho.add(corner)
    for k in {abs(k) for k in kinks if 0 < abs(k) < rho_end}:
        # Just outside a kink radius the circle starts to cross the kink, and the
        # angle-averaged integrand has a √(ρ − |k|) onset: grade the panels geometrically.
        edges_rho |= {k, *(k + 0.5**j for j in range(1, KINK_GRADING + 1) if k + 0.5**j < rho_end)}
    edges = np.arcsin(np.minimum(np.array(sorted(edges_rho)) / c, 1.0))
    x, w = _leggauss(RADIAL_NODES)
    half = 0.5 * np.diff(edges)
    psi = (edges[:-1, None] + half[:, None] * (x + 1.0)).ravel()
    logw = np.log((half[:, None] * w).ravel()) + np.log(np.sin(psi)) + (B - 4) * np.log(np.cos(psi))
    wt = np.exp(logw - logw.max())
    return c * np.sin(psi), wt / wt.sum()


@lru_cache(maxsize=64)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    # SciPy's rule is O(n) for large n (NumPy's leggauss solves an n×n eigenproblem).
    from scipy.special import roots_legendre

    x, w = roots_legendre(n)
    return np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)


def _angle_rule(
    radii: np.ndarray, theta0: float, kinks: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Angles θ (shape (R, N)) and weights (rows sum to 1) for the uniform angle on R circles.

    Without kink crossings: the trapezoid rule, spectrally accurate for periodic integrands.
    Otherwise Gauss–Legendre on every arc between the angles where h_1 = ρ cos θ or
    h_2 = ρ cos(θ − θ₀) crosses a kink k (cos θ = k/ρ); circles that cross fewer kinks get
    zero-length arcs (weight 0), so all rows have the same shape.
    """
    # Rounded up to a power of two so that the Gauss–Legendre rules (an eigenproblem each)
    # come from a small cache.
    n = 1 << math.ceil(math.log2(ANGLE_BASE + ANGLE_PER_RADIUS * float(np.max(radii))))
    crossing = [k for k in kinks if np.any(np.abs(k) < radii)]
    if not crossing:
        theta = 2.0 * math.pi * np.arange(n) / n
        return np.broadcast_to(theta, (radii.size, n)), np.full((radii.size, n), 1.0 / n)
    cuts = []
    for k in crossing:
        a = np.arccos(np.clip(k / radii, -1.0, 1.0))
        hit = np.abs(k) < radii
        for c in (a, -a, theta0 + a, theta0 - a):
            cuts.append(np.where(hit, c, 0.0))
    edges = np.sort(np.mod(np.stack(cuts, axis=1), 2.0 * math.pi), axis=1)
    edges = np.concatenate([edges, edges[:, :1] + 2.0 * math.pi], axis=1)
    x, w = _leggauss(n)
    half = 0.5 * np.diff(edges, axis=1)[..., None]
    theta = (edges[:, :-1, None] + half * (x + 1.0)).reshape(radii.size, -1)
    return theta, (half * w / (2.0 * math.pi)).reshape(radii.size, -1)


def _sphere_moments(act: Activation, B: int) -> np.ndarray:
    theta0 = math.acos(-1.0 / (B - 1))
    radii, wr = _radial_rule(B, act.kinks)
    out = np.zeros(6)
    for chunk in np.array_split(np.arange(radii.size), max(1, radii.size // 32)):
        theta, wa = _angle_rule(radii[chunk], theta0, act.kinks)
        rho = radii[chunk, None]
        h1, h2 = rho * np.cos(theta), rho * np.cos(theta - theta0)
        p1, p2 = act(h1), act(h2)
        f1, f2 = act.deriv(h1), act.deriv(h2)
        g1, g2 = h1 * f1, h2 * f2
        w = wr[chunk, None] * wa
        out += [np.sum(v * w) for v in (p1 * p1, p1 * p2, f1 * f1, f1 * f2, g1 * g1, g1 * g2)]
    return out
