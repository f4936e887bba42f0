"""Beyond the mean: the singular-value spectrum of the input-output Jacobian (free probability).

Second moments (χ₁ = 1) say that ‖J v‖ is preserved *on average*; dynamical isometry asks that
*every* singular value of J = ∂x^L/∂x^0 = D^L W^L … D^1 W^1 stay near 1 (Saxe, McClelland &
Ganguli 2014; Pennington, Schoenholz & Ganguli 2017, 2018). With D^l = diag φ'(h^l) and
h^l_i ~ N(0, q^l) at infinite width, the weights and the D's are asymptotically free, so the
S-transforms multiply (:mod:`.series`):

    S_{JJᵀ}(z) = Π_l S_{W_lW_lᵀ}(z) S_{(D^l)²}(z),
    S_{WWᵀ}(z) = 1/(σ_w²(1 + z)) (Gaussian),   σ_w⁻² (scaled orthogonal).

Consequences (derived in :func:`product_moments` and checked exactly with SymPy in the tests):

- mean m₁ = Π_l σ_w² μ₁(q^l) = χ₁^L at a fixed point (μ_k = E[φ'(h)^{2k}]);
- variance σ²_{JJᵀ}/m₁² = Σ_l (μ₂/μ₁² − 1 − s₁), s₁ = −1 Gaussian, 0 orthogonal (Pennington et
  al. 2017, eq. 13): ReLU 2L (Gaussian) and L (orthogonal), linear L and 0, and, orthogonal,
  hard-tanh L(1/p − 1) with p = erf(1/√(2q*)) and erf L((1 + 4q*)/√(1 + 8q*) − 1) ≈ 8Lq*²,
  both → 0 as q* → 0 (the way sigmoidal nets reach isometry);
- deep linear Gaussian nets: the Fuss–Catalan moments m_k = C(k(L+1), k)/(kL + 1) and edge
  λ_max = (L + 1)^{L+1}/L^L;
- the full density (:mod:`.density`): atoms, the continuous part and the top edge λ_max.

:class:`Jacobian` holds the layers (activation, q^l, σ_w², weight kind); build it at a fixed
point (:func:`jacobian`), on the critical line by q* (:func:`critical_jacobian`) or along the
mean-field profile of any :class:`~gradmath.network.Network` whose layers have spectral rules
(:meth:`Jacobian.of`: Dense, activations, LayerNorm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError, check_positive, check_positive_int
from gradmath.initializers import Initializer
from gradmath.meanfield.gaussian import expect
from gradmath.meanfield.spectra.density import Spectrum, solve_spectrum
from gradmath.meanfield.spectra.finite import conditioned_spectrum, live_counts
from gradmath.meanfield.spectra.law import D2Law, d2_law, d2_moments
from gradmath.meanfield.spectra.series import moments_from_s, product_moments, s_transform

__all__ = [
    "D2Law",
    "Jacobian",
    "JacobianLayer",
    "Spectrum",
    "conditioned_spectrum",
    "critical_jacobian",
    "critical_network",
    "critical_point",
    "d2_law",
    "d2_moments",
    "jacobian",
    "live_counts",
    "moments_from_s",
    "product_moments",
    "s_transform",
]

Array = NDArray[np.float64]

WEIGHTS = ("gaussian", "orthogonal")


def _weights(weights: object) -> bool:
    """True for i.i.d. (Gaussian-like) weights, False for scaled Haar-orthogonal ones.

    An :class:`~gradmath.Initializer` (or its name) counts as orthogonal when it samples
    orthogonal matrices; every i.i.d. one (normal, truncated normal, uniform) has the
    Marchenko–Pastur limit of Gaussian weights (universality).
    """
    if isinstance(weights, str) and weights in WEIGHTS:
        return weights == "gaussian"
    if isinstance(weights, (str, Initializer)):
        from gradmath.initializers import initializer

        return initializer(weights).distribution != "orthogonal"
    raise GradmathError(
        f"`weights` (={weights!r}) must be 'gaussian', 'orthogonal' or an initializer."
    )


@dataclass(frozen=True)
class JacobianLayer:
    """One factor D^l W^l: activation φ_l at pre-activation second moment q^l, weight scale
    σ_w² = fan_in·Var[W^l], and i.i.d. (``gaussian=True``) or orthogonal weights."""

    activation: Activation
    q: float
    sigma_w2: float
    gaussian: bool

    @property
    def key(self) -> tuple[Any, ...]:
        return self.activation.key, self.q, self.sigma_w2


@dataclass(frozen=True, eq=False)
class Jacobian:
    """The infinite-width law of JJᵀ for J = D^L W^L … D^1 W^1 (square layers).

    >>> jac = jacobian("relu", 2.0, depth=10, weights="orthogonal")
    >>> jac.mean, jac.variance          # χ₁ = 1; variance L(μ₂/μ₁² − 1) = L
    (1.0, 10.0)
    >>> [round(m, 10) for m in jacobian("linear", 1.0, depth=3).moments(3)]  # Fuss–Catalan
    [1.0, 4.0, 22.0]
    """

    layers: tuple[JacobianLayer, ...]
    #: The network it describes and its input second moment (``Jacobian.of``), else None.
    network: Any = None
    input_q: float | None = None

    def __post_init__(self) -> None:
        if not self.layers or not all(isinstance(x, JacobianLayer) for x in self.layers):
            raise GradmathError("`layers` must be a non-empty tuple of JacobianLayer.")
        object.__setattr__(self, "layers", tuple(self.layers))

    # ---------------------------------------------------------------- constructors

    @classmethod
    def of(cls, net: object, input_q: float = 1.0) -> Jacobian:
        """The Jacobian ∂y/∂x^0 of a :class:`~gradmath.network.Network` (or an MLP's
        ``.network``) along its mean-field profile from inputs x^0_i ~ N(0, ``input_q``).

        A fold over the layers' spectral rules (``Layer.theory_spectrum``): each Dense names
        its weights (σ_w² = fan_in·Var[W], i.i.d. or orthogonal by its initializer), each
        activation its D² law at the q it receives (non-stationary profiles included), each
        LayerNorm the scalar 1/(q − m²); Residual (α ≠ 0) and BatchNorm refuse. Consecutive
        W and D form one :class:`JacobianLayer` (free factors commute under the S-transform).
        An MLP's network ends with a Dense (its last φ never matters to a profile), so its J
        is ∂h^L/∂x^0 = W^L D^{L−1} … D^1 W^1; :func:`critical_network` builds Π D W.
        """
        from gradmath.meanfield.spectra.fold import SpectralFold
        from gradmath.profile import as_network

        network = as_network(net)
        input_q = check_positive("input_q", input_q)
        if not isinstance(network.input_width, int):
            raise GradmathError(
                f"Jacobian spectra need a flat input (a width); this network takes the shape "
                f"{network.input_width} (sample the spectrum of a flat network instead)."
            )
        ctx = SpectralFold(network, _weights, JacobianLayer)
        x = network.input_signal(math.log(input_q), None)
        try:
            network.body.theory_spectrum(x, ctx)
        except OverflowError:
            raise GradmathError("The mean-field profile left the range of float64.") from None
        return cls(ctx.finish(), network, input_q)

    # ---------------------------------------------------------------- moments

    @property
    def depth(self) -> int:
        return len(self.layers)

    @cached_property
    def _groups(self) -> tuple[list[JacobianLayer], list[int]]:
        first: dict[tuple[Any, ...], JacobianLayer] = {}
        count: dict[tuple[Any, ...], int] = {}
        for ly in self.layers:
            first.setdefault(ly.key, ly)
            count[ly.key] = count.get(ly.key, 0) + 1
        return list(first.values()), [count[k] for k in first]

    def d2_moments(self, n: int) -> Array:
        """(σ_w² μ_k(q^l))_k for every layer: shape (L, n), μ_k = E[φ'(h^l)^{2k}].

        From the Gaussian engine (:func:`d2_moments`), or from the exact atoms where φ' is
        piecewise constant (linear: exactly 1; ReLU: exactly ½).
        """
        mu = self._mu(n)
        with np.errstate(over="ignore", under="ignore"):
            sw = np.array([ly.sigma_w2 for ly in self.layers])[:, None]
            out = mu * sw ** np.arange(1, n + 1)
        if not np.all(np.isfinite(out)):
            raise GradmathError(
                "σ_w^{2k} μ_k exceeds the float64 range here; use `log_chi` and `moments` "
                "(in units of the mean, where σ_w² cancels)."
            )
        return out

    def _mu(self, n: int) -> Array:
        """μ_k = E[φ'(h^l)^{2k}] per layer, shape (L, n), without the σ_w^{2k} factor."""
        n = check_positive_int("n", n)
        reps, _ = self._groups
        out = {}
        for ly in reps:
            law = d2_law(ly.activation, ly.q)
            if law.exact:
                out[ly.key] = np.array([law.moment(k) for k in range(1, n + 1)])
            else:
                out[ly.key] = np.asarray(d2_moments(ly.activation, ly.q, n), dtype=np.float64)
        return np.array([out[ly.key] for ly in self.layers])

    def _mu1(self) -> Array:
        mu1 = self._mu(1)[:, 0]
        if np.any(mu1 <= 0):
            raise GradmathError("A layer has E[φ'(h)²] = 0: its Jacobian is zero.")
        return mu1

    @cached_property
    def log_chi(self) -> Array:
        """log(σ_w² μ₁(q^l)) per layer: the per-layer growth of E‖J v‖² (χ₁ at a fixed point)."""
        sw = np.array([ly.sigma_w2 for ly in self.layers])
        return np.log(sw) + np.log(self._mu1())  # in logs: σ_w² μ₁ may leave float range

    @property
    def log_mean(self) -> float:
        """log m₁ = log E[λ(JJᵀ)] = Σ_l log(σ_w² μ₁(q^l)) (= L log χ₁ at a fixed point)."""
        return float(np.sum(self.log_chi))

    @property
    def mean(self) -> float:
        """m₁ = χ₁^L at a fixed point (raises if it leaves float range: use ``log_mean``)."""
        if not -745.0 < self.log_mean < 709.0:
            raise GradmathError(f"m₁ = e^{self.log_mean:.6g}; use `log_mean`.")
        return math.exp(self.log_mean)

    @property
    def variance(self) -> float:
        """σ²_{JJᵀ}/m₁² = Σ_l (μ₂/μ₁² − 1 − s₁), s₁ = −1 Gaussian, 0 orthogonal.

        Pennington, Schoenholz & Ganguli (2017), eq. 13, for layers that differ.
        """
        mu = self._mu(2)  # σ_w² cancels in μ₂/μ₁²
        self._mu1()
        s1 = np.array([-1.0 if ly.gaussian else 0.0 for ly in self.layers])
        with np.errstate(over="ignore"):
            v = float(np.sum(mu[:, 1] / mu[:, 0] ** 2 - 1 - s1))
        if not math.isfinite(v):
            raise GradmathError("The spectrum's variance exceeds the float64 range here.")
        return v

    def moments(self, n: int = 4) -> tuple[float, ...]:
        """E[(λ/m₁)^k], k = 1 … n: moments of JJᵀ in units of its mean (S-transform series)."""
        mu = self._mu(n)  # σ_w^{2k} cancels in μ_k/μ₁^k
        mu1 = self._mu1()
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            den = mu1[:, None] ** np.arange(1, n + 1)
            # μ₁^k may underflow (μ₁ ~ q^{-1/2} at huge q): then in logs.
            logs = np.exp(np.log(mu) - np.arange(1, n + 1) * np.log(mu1)[:, None])
            norm = np.where((den > 0) & np.isfinite(den), mu / den, logs)
        big = GradmathError(
            f"The first {n} moments of JJᵀ/m₁ exceed the float64 range here (a spectrum "
            "with almost all its mass near 0); ask for fewer moments."
        )
        if not np.all(np.isfinite(norm)):
            raise big
        reps, counts = self._groups
        # Equal layers: one S-transform raised to a power (fast at depth 10,000).
        total = [1.0] + [0.0] * (n - 1)
        from gradmath.meanfield.spectra.series import series_mul

        by_key = {ly.key: norm[i] for i, ly in enumerate(self.layers)}
        gauss = sum(ly.gaussian for ly in self.layers)
        with np.errstate(over="ignore", invalid="ignore"):
            for ly, c in zip(reps, counts, strict=True):
                s = s_transform(list(by_key[ly.key]))
                total = series_mul(total, _power(s, c, n), n)
            total = series_mul(total, _power([(-1.0) ** k for k in range(n)], gauss, n), n)
            out = tuple(float(m) for m in moments_from_s(total))
        if not all(math.isfinite(m) for m in out):
            raise big
        return out

    # ---------------------------------------------------------------- the density

    def laws(self) -> list[D2Law]:
        """The distinct D² laws (σ_w² φ'(h)², h ~ N(0, q^l)), in order of first use."""
        reps, _ = self._groups
        return [d2_law(ly.activation, ly.q, ly.sigma_w2) for ly in reps]

    def spectrum(self, *, tol: float = 1e-6) -> Spectrum:
        """The law of λ(JJᵀ)/m₁: atoms, density and top edge (:mod:`.density`)."""
        _, counts = self._groups
        gauss = sum(ly.gaussian for ly in self.layers)
        return solve_spectrum(self.laws(), counts, gauss, self.log_mean, tol=tol)


def _power(s: list[float], c: int, n: int) -> list[float]:
    """The series s^c truncated to n terms (binary powering)."""
    from gradmath.meanfield.spectra.series import series_mul

    out = [1.0] + [0.0] * (n - 1)
    base = list(s)
    while c:
        if c & 1:
            out = series_mul(out, base, n)
        c >>= 1
        if c:
            base = series_mul(base, base, n)
    return out


def _act(act: Activation | str) -> Activation:
    return act if isinstance(act, Activation) else activation(act)


def jacobian(
    act: Activation | str,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    depth: int,
    weights: object = "gaussian",
    q: float | None = None,
) -> Jacobian:
    """A depth-L net of equal layers at the fixed point q* of the length map (or at ``q``).

    q* from :func:`gradmath.meanfield.fixed_point` (iterated from q = 1); linear and ReLU nets
    at σ_b² = 0 have a line of fixed points, where the D² law does not depend on q.
    """
    from gradmath.meanfield.maps import fixed_point

    a = _act(act)
    depth = check_positive_int("depth", depth)
    sw = check_positive("sigma_w2", sigma_w2)
    sb = check_positive("sigma_b2", sigma_b2, allow_zero=True)
    gauss = _weights(weights)
    if q is None:
        qs = float(fixed_point(a, sw, sb))
        if qs == 0.0:
            qs = 0.0
    else:
        qs = check_positive("q", q, allow_zero=True)
    return Jacobian((JacobianLayer(a, qs, sw, gauss),) * depth)


def critical_jacobian(
    act: Activation | str, q_star: float, *, depth: int, weights: object = "orthogonal"
) -> Jacobian:
    """The net on the critical line χ₁ = 1 whose fixed point is ``q_star``.

    σ_w² = 1/E[φ'(√q* z)²] and σ_b² = q* − σ_w² E[φ(√q* z)²] (Pennington et al. 2017, §3:
    the critical line parametrised by q*); raises if that σ_b² is negative (no such net).
    """
    a = _act(act)
    qs = check_positive("q_star", q_star)
    sw, _ = critical_point(a, qs)
    return Jacobian(
        (JacobianLayer(a, qs, sw, _weights(weights)),) * check_positive_int("depth", depth)
    )


def critical_point(act: Activation | str, q_star: float) -> tuple[float, float]:
    """(σ_w², σ_b²) on the critical line χ₁ = 1 with fixed point ``q_star``.

    σ_w² = 1/E[φ'(√q* z)²], σ_b² = q* − σ_w² E[φ(√q* z)²] (Pennington et al. 2017, §3);
    raises if that σ_b² is negative (no such net). For a saturating φ, σ_w² grows like √q*:
    only |√q* z| = O(1) keeps φ' away from 0, so E[φ'²] ≈ φ_N(0)/√q* ∫φ'(u)² du (tanh:
    σ_w² → (3/4)√(2π q*), from ∫sech⁴ = 4/3). The answer stays finite and accurate up to the
    largest float q* (tanh at q* = 1e300: σ_w² = 1.88e150, σ_b² = q* to rounding): a real
    critical net, not an overflow.

    >>> [round(v, 10) for v in critical_point("relu", 3.0)]
    [2.0, 0.0]
    """
    a = _act(act)
    qs = check_positive("q_star", q_star)
    sw = 1.0 / float(expect(lambda u: a.deriv(u) ** 2, qs, a.kinks))
    sb = qs - sw * float(expect(lambda u: a(u) ** 2, qs, a.kinks))
    if sb < -1e-12 * qs:
        raise GradmathError(
            f"No critical {a.name} net has q* = {qs!r}: it would need σ_b² = {sb:.6g} < 0."
        )
    return sw, max(sb, 0.0)


def critical_network(
    act: Activation | str, q_star: float, *, width: int, depth: int, weights: object
) -> tuple[Any, float]:
    """A square :class:`~gradmath.network.Network` of ``depth`` blocks Dense → φ on the
    critical line with fixed point q*, and the input second moment that puts its first layer at
    q* (so every layer is at q*): its J = D^L W^L … D^1 W^1 is that of
    :func:`critical_jacobian`.

    ``weights``: "gaussian" (``normal`` init, σ_w²) or "orthogonal" (gain √σ_w²). Returns
    ``(network, input_q)``; ``Jacobian.of(network, input_q)`` then equals
    ``critical_jacobian(act, q_star, depth=depth, weights=weights)``.

    >>> net, q0 = critical_network("relu", 1.0, width=8, depth=3, weights="gaussian")
    >>> [s.name for s in net.sites], round(q0, 12)      # σ_w² = 2: the input needs q*/2
    (['dense1', 'dense2', 'dense3'], 0.5)
    """
    from gradmath.initializers import initializer
    from gradmath.network import Dense, Network, Serial, repeat

    a = _act(act)
    sw, sb = critical_point(a, q_star)
    init = (
        initializer("normal", sigma_w2=sw)
        if _weights(weights)
        else initializer("orthogonal", gain=math.sqrt(sw))
    )
    width = check_positive_int("width", width)
    block = Serial(Dense(width, init, sigma_b2=sb), a)
    return Network(width, repeat(block, check_positive_int("depth", depth))), (q_star - sb) / sw
