"""O(1/width) corrections to the mean-field profile, and the spread across initialisations.

The chain. For i.i.d. weights of variance v_l and Gaussian biases of variance σ_b², the
conditional variance of layer l's pre-activations given the layer below,
A^l = v_l ‖x^{l−1}‖² + σ_b², satisfies E[(h^l_i)²] = E[A^l] and

    A^{l+1} = σ_{l+1}² · (1/n_l) Σ_{i=1..n_l} φ(h^l_i)² + σ_b²,   h^l_i | A^l i.i.d. N(0, A^l),

(σ_{l+1}² = n_l v_{l+1}), a scalar Markov chain for Gaussian weights (theory.md, "Next: beyond
the mean"); its n → ∞ limit is the length map q^{l+1} = σ² m(q^l) + σ_b², m(q) = E[φ(√q z)²]
(Poole et al. 2016, eq. 3). Expanding around the mean-field path K_l = q^l with
E[A^l] = K_l + δ_l and V_l = Var[A^l], both O(1/n) (Roberts, Yaida & Hanin 2022, "The Principles
of Deep Learning Theory", §4.3 eq. (4.90)–(4.92) for the single-input four-point vertex V and
§5.4 eq. (5.97)-type NLO recursion for the 1/n kernel correction K^{(1)}, here with δ_l = K^{(1)}/n
and V_l = V^{(l)}/n):

    V_{l+1} = σ⁴ [ m'(K)² V_l + (m₄(K) − m(K)²)/n_l ],       m₄(q) = E[φ(√q z)⁴],
    δ_{l+1} = σ² [ m'(K) δ_l + ½ m''(K) V_l + (k₄_l/6) m''(K) ].

The last term is the non-Gaussianity of h^l given x^{l−1} when the weights are not Gaussian:
its fourth cumulant is k₄_l = γ_l v_l² Σ_j (x^{l−1}_j)⁴ ≈ γ_l σ_l⁴ m₄(K_{l−1})/n_{l−1} (γ_l the
weights' excess kurtosis, :attr:`gradmath.Initializer.excess_kurtosis`: −0.63 for Keras'
truncated normals), and the Edgeworth expansion E[f(h)] = E_G[f] + (k₄/24) E_G[f''''] with
E_G[f''''(√q z)] = 4 d²/dq² E[f(√q z)] (heat equation) moves E[φ(h)²] by (k₄/6) m''. Derivatives
come from Stein's lemma, so kinks need no φ'': q m'(q) = (E[u²φ(u)²]/q − m)/2 and
q² m''(q) = (E[u⁴φ²]/q² − 6E[u²φ²]/q + 3m)/4 at u = √q z. :func:`delta_method` runs the same
recursion with the derivatives at μ_l = E[A^l] instead of K_l (the form of theory.md); the two
differ at O(1/n²), which the tests check.

Backward, under gradient independence (Schoenholz et al. 2017, §4): per unit,
q̃^l = q̃^L E[Π_{k=l}^{L−1} σ̃_{k+1}² D_k], D_k = (1/n_k) Σ_i φ'(h^k_i)², σ̃² = fan_out·Var[W].
To O(1/n): E[D_k] = d(K_k) + d'δ_k + ½d''V_k + (k₄_k/6)d'' with d(q) = E[φ'(√q z)²], and the
factors covary through the forward chain: D_j shares h^j with A^{j+1}
(Cov = σ²[d'm'V_j + (E[φ'²φ²] − dm)/n_j]), which moves every later D_k by d'(K_k)·∂A^k/∂A^{j+1}.
Summing those covariances is one backward sweep (U below), so the whole correction costs O(L).
Gradient independence itself is exact for ReLU (the mean profile is exact at every width) and
is an approximation otherwise: the weights W^{l+1} that produced h^{l+1} are correlated with
δ^{l+1}, which adds further O(1/n) terms that this expansion does not contain.

Spread. ``rel_var_q`` is Var/mean² across initialisations (and inputs) of one example's
(1/n_l)‖h^l‖², i.e. (1 + V_l/E[A^l]²)(1 + 2/n_l) − 1 (Gaussian h given A); ``rel_var_grad_q``
that of one example's (1/n_l)‖δ^l‖² (the same sums with the variances of the D_k, each
σ̃²(1/n)Σφ'(h_i)²g_i² with g_i Gaussian, so (3E[φ'⁴] − d²)/n per layer, and 2/n_L from δ^L).
For ReLU + He + Gaussian weights the exact values are those of
:mod:`gradmath.meanfield.finite_width.relu`; the expansion misses them at O(L²/n²).

Where it breaks down. Both corrections are first order in Σ_l 1/n_l weighted by how much the
length map amplifies fluctuations: they are reliable while the relative corrections stay small
(|δ_l|/K_l and V_l/K_l² below about 0.1–0.2). Past that (GELU, SiLU with He weights at
depth/width ≥ about 0.1, where the length map contracts slowly to q* = 0 and the law of A^l becomes
broad) use the exact law of the chain, :func:`gradmath.meanfield.finite_width.chain_law`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError, check_positive
from gradmath.initializers import Initializer
from gradmath.meanfield import gaussian as gs

__all__ = [
    "FiniteWidthProfile",
    "LayerSpec",
    "delta_method",
    "expand",
    "layer_specs",
    "log_spread",
]

Array = NDArray[np.float64]

#: Correction coefficients are dimensionless ratios (q m'/m, q² m''/m, …); at q outside this
#: range they are taken at its end, where they have reached their small- or large-q limits.
Q_CLAMP = (1e-12, 1e12)


@dataclass(frozen=True)
class LayerSpec:
    """Layer l as the finite-width theory sees it: h^l = W^l x^{l−1} + b^l, x^l = φ(h^l)."""

    activation: Activation
    fan_in: int
    fan_out: int
    weight_var: float
    bias_var: float
    kurtosis: float  #: excess kurtosis of one weight (0 for Gaussian weights)

    @property
    def sigma_w2(self) -> float:
        return self.fan_in * self.weight_var


def layer_specs(net: Any) -> tuple[LayerSpec, ...]:
    """The :class:`LayerSpec` of each Dense layer of a plain net (a Network or an MLP).

    Plain: Dense, activation, Dense, …, activation, Dense (Serial and Repeat may group them),
    i.i.d. weights; the finite-width theory has no rule for residual, normalisation or other
    layers, nor for orthogonal weights (their entries are not independent).
    """
    from gradmath.network import Dense, Elementwise
    from gradmath.network.combinators import Repeat, Serial
    from gradmath.profile import as_network

    network = as_network(net)
    flat: list[Any] = []

    def walk(layer: Any) -> None:
        if isinstance(layer, (Serial, Repeat)):
            for step in layer.steps():
                walk(step)
        else:
            flat.append(layer)

    walk(network.body)
    plain = (
        len(flat) % 2 == 1
        and all(isinstance(x, Dense) for x in flat[::2])
        and all(isinstance(x, Elementwise) for x in flat[1::2])
    )
    if not plain:
        kinds = sorted({type(x).__name__ for x in flat} - {"Dense", "Elementwise"})
        extra = f" (this one has {', '.join(kinds)})" if kinds else ""
        raise GradmathError(
            "Finite-width corrections cover plain nets (Dense, activation, …, Dense: no "
            f"residual branch or normalisation){extra}."
        )
    if not isinstance(network.input_width, int):
        raise GradmathError(
            "Finite-width corrections cover plain nets of vectors; this one takes inputs of "
            f"shape {network.input_width}."
        )
    specs = []
    width: int = network.input_width
    for i, dense in enumerate(flat[::2]):
        # The activation after this layer. The last layer has none; the field only needs a
        # value the coefficients can be evaluated at (they are not used).
        if 2 * i + 1 < len(flat):
            act = flat[2 * i + 1].activation
        else:
            act = flat[-2].activation if len(flat) > 1 else activation("linear")
        specs.append(
            LayerSpec(
                act,
                width,
                dense.width,
                dense.weight_var(width),
                dense.resolved_sigma_b2(width),
                cast(Initializer, dense.init).excess_kurtosis,
            )
        )
        width = dense.width
    return tuple(specs)


@dataclass(frozen=True)
class FiniteWidthProfile:
    """Per-layer finite-width predictions (index i = layer i + 1), natural logs.

    ``log_q``, ``log_grad_q``, ``log_wgrad_q``: corrected log E[(h^l_i)²], log E[(δ^l_i)²],
    log E[(∂L/∂W^l_ij)²]; ``log_q_mf`` etc. the mean-field values they correct;
    ``rel_var_q``, ``rel_var_grad_q``: Var/mean² across initialisations of one example's
    (1/n_l)‖h^l‖² and (1/n_l)‖δ^l‖²; ``mean_log_q``, ``sd_log_q`` (and ``*_grad_q``): the
    mean and standard deviation across initialisations of the log of that one example's
    moment (:func:`log_spread`); ``method`` says which law produced them.
    """

    log_q: Array
    log_grad_q: Array
    log_wgrad_q: Array
    log_q_mf: Array
    log_grad_q_mf: Array
    log_wgrad_q_mf: Array
    rel_var_q: Array
    rel_var_grad_q: Array
    method: str
    mean_log_q: Array
    sd_log_q: Array
    mean_log_grad_q: Array
    sd_log_grad_q: Array

    @property
    def depth(self) -> int:
        return int(self.log_q.size)


def _stein(act: Activation, q: Array) -> dict[str, Array]:
    """Gaussian moments at u = √q z as dimensionless ratios, vectorised over q."""
    kinks = act.kinks
    phi, dphi = act, act.deriv

    def ex(f: Any) -> Array:
        return gs.expect(f, q, kinks)

    m = ex(lambda u: phi(u) ** 2)
    m2 = ex(lambda u: u**2 * phi(u) ** 2) / q
    m4u = ex(lambda u: u**4 * phi(u) ** 2) / q**2
    d = ex(lambda u: dphi(u) ** 2)
    d2 = ex(lambda u: u**2 * dphi(u) ** 2) / q
    d4u = ex(lambda u: u**4 * dphi(u) ** 2) / q**2
    return {
        "m": m,
        "m1": 0.5 * (m2 - m),  # q m'(q)
        "m2": 0.25 * (m4u - 6 * m2 + 3 * m),  # q² m''(q)
        "m4": ex(lambda u: phi(u) ** 4),
        "d": d,
        "d1": 0.5 * (d2 - d),  # q d'(q)
        "d2": 0.25 * (d4u - 6 * d2 + 3 * d),  # q² d''(q)
        "d4": ex(lambda u: dphi(u) ** 4),
        "dm": ex(lambda u: dphi(u) ** 2 * phi(u) ** 2),
        "psi": ex(lambda u: u * phi(u) * dphi(u)) / np.sqrt(q),  # E[φφ'z]
    }


#: Above this many layers the ratios are computed at this many log-q nodes and interpolated
#: (cubic spline in log q; they vary on the scale of an e-fold of q), so depth 10,000 costs
#: what depth 256 does.
TABLE_NODES = 256


def _coefficients(specs: tuple[LayerSpec, ...], log_q: Array) -> dict[str, Array]:
    # Each activation's dimensionless ratios at its layers' (clamped) mean-field q.
    lq = np.clip(log_q, math.log(Q_CLAMP[0]), math.log(Q_CLAMP[1]))
    out: dict[str, Array] = {}
    for act in {s.activation for s in specs}:
        idx = np.array([i for i, s in enumerate(specs) if s.activation == act])
        at = lq[idx]
        lo, hi = float(at.min()), float(at.max())
        if act.homogeneous:  # φ(cz) = cφ(z): every ratio is the same at every q
            nodes = np.array([0.0])
        elif idx.size > TABLE_NODES and hi - lo > 1e-9:
            nodes = np.linspace(lo, hi, TABLE_NODES)
        else:
            nodes = at
        q = np.exp(nodes)
        vals = {k: v / q ** _DIM[k] for k, v in _stein(act, q).items()}
        for key, val in vals.items():
            if nodes.size == 1:
                res = np.full(idx.size, val[0])
            elif nodes is at:
                res = val
            else:
                from scipy.interpolate import CubicSpline

                res = CubicSpline(nodes, val)(at)
            out.setdefault(key, np.empty(len(specs)))[idx] = res
    return out


#: Powers of q that make each Stein moment dimensionless relative to the mean-field q (the
#: φ² moments scale like q for homogeneous φ, the φ'² ones like 1).
_DIM = {"m": 1, "m1": 1, "m2": 1, "m4": 2, "d": 0, "d1": 0, "d2": 0, "d4": 0, "dm": 1, "psi": 0.5}


def expand(
    specs: tuple[LayerSpec, ...], log_q: Array, log_grad_q: Array, input_q: float
) -> FiniteWidthProfile:
    """The O(1/n) expansion (module docstring) around a mean-field profile.

    ``log_q``, ``log_grad_q`` are the mean-field logs of q^l and q̃^l
    (``gradmath.meanfield.predict``); the result carries them with the corrections.
    """
    L = len(specs)
    input_q = check_positive("input_q", input_q)
    c = _coefficients(specs, log_q)
    sig = np.array([s.sigma_w2 for s in specs])
    bias = np.array([s.bias_var for s in specs])
    n_out = np.array([s.fan_out for s in specs], dtype=np.float64)
    n_in = np.array([s.fan_in for s in specs], dtype=np.float64)
    gamma = np.array([s.kurtosis for s in specs])
    # Relative quantities, all O(1) numbers: K_l m'(K_l)/m(K_l) etc. are c["m1"]/c["m"].
    # share_l = σ²_{l+1} m(K_l)/K_{l+1} (1 for zero bias), computed in logs.
    # share_l = σ²_{l+1} m(K_l)/K_{l+1} = 1 − σ_b²/K_{l+1} on the mean-field path.
    share = np.ones(L)
    if L > 1:
        with np.errstate(over="ignore"):  # σ_b² = 0 gives share 1 exactly
            shifted = np.log(np.maximum(bias[1:], 1e-300)) - log_q[1:]
        share[:-1] = np.where(bias[1:] > 0, -np.expm1(np.minimum(shifted, 0.0)), 1.0)
    a = share * c["m1"] / c["m"]  # a_l = σ² m'(K_l) K_l / K_{l+1}
    b = 0.5 * share * c["m2"] / c["m"]  # b_l = ½ σ² m''(K_l) K_l² / K_{l+1}
    e = share**2 * (c["m4"] / (c["m"] ** 2) - 1.0) / n_out  # σ⁴(m₄ − m²)/(n K_{l+1}²)
    # k₄_l / K_l²: fourth cumulant of h^l given x^{l−1}, relative.
    kap = np.empty(L)
    kap[0] = gamma[0] * 3.0 * (sig[0] * input_q) ** 2 / n_in[0] / math.exp(2 * log_q[0])
    if L > 1:
        # σ_l⁴ m₄(K_{l−1}) / (n_{l−1} K_l²) = share_{l−1}² · m₄/m² (K_{l−1}) / n_{l−1}
        kap[1:] = gamma[1:] * share[:-1] ** 2 * c["m4"][:-1] / c["m"][:-1] ** 2 / n_in[1:]
    w = np.empty(L)  # V_l / K_l²
    r = np.empty(L)  # δ_l / K_l
    w[0] = 2.0 * (1.0 - bias[0] / math.exp(log_q[0])) ** 2 / n_in[0]  # v²·2n_0·q_in² / K²
    r[0] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(L - 1):
            w[i + 1] = a[i] ** 2 * w[i] + e[i]
            r[i + 1] = a[i] * r[i] + b[i] * w[i] + b[i] * kap[i] / 3.0
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(r))) or np.any(r <= -1.0):
        raise GradmathError(
            "The O(1/width) correction exceeds the mean itself (δ/q ≤ −1): depth/width is too "
            "large for the expansion; use the exact law of the chain (chain_law)."
        )
    log_q_fw = log_q + np.log1p(r)

    # Backward. f_k: relative shift of E[D_k]; rho_j: Cov(D_j, A^{j+1})/(d_j K_{j+1});
    # U_j = Σ_{k ≥ j, k ≤ L−1} (K d'/d)_k Π_{i=j}^{k−1} a_i (sensitivity of log Π D to A^j).
    dd = c["d1"] / c["d"]
    f = dd * r + 0.5 * c["d2"] / c["d"] * (w + kap / 3.0)
    g = share * (c["dm"] / (c["d"] * c["m"]) - 1.0) / n_out  # σ²(E[φ'²φ²] − dm)/(n d K')
    rho = dd * a * w + g
    U = np.zeros(L + 1)
    for k in range(L - 2, -1, -1):  # factors D_0 … D_{L−2} (0-based) feed q̃ below the top
        U[k] = dd[k] + a[k] * U[k + 1]
    # log E[Π_{k=l}^{L−2} F_k] − mean field = Σ_{k ≥ l} f_k + Σ_{j ≥ l} rho_j U_{j+1}
    # Beyond gradient independence: the tangent's correlation with the signal, C = v x·a
    # (chain.py), feeds back at O(1/n). b_k = β_k/α_k at leading order, from b_{L−1} = 0:
    # b_k = 2K d'/d + share·E[φφ'z]²/(d m)·b_{k+1}; it moves log α_k by share·E[φ²φ'²]/(d m)
    # ·b_{k+1}/n_k. The factor share·E[φφ'z]²/(dm) is the gain of that rank-one mode relative
    # to χ₁; where it exceeds 1 the correction grows geometrically with depth.
    bk = np.zeros(L)
    for k in range(L - 2, -1, -1):
        gain = share[k] * c["psi"][k] ** 2 / (c["d"][k] * c["m"][k])
        bk[k] = 2 * dd[k] + gain * bk[k + 1]
    tangent = np.zeros(L)
    tangent[:-1] = share[:-1] * c["dm"][:-1] / (c["d"][:-1] * c["m"][:-1]) * bk[1:] / n_out[:-1]
    step = np.zeros(L)
    step[:-1] = f[:-1] + rho[:-1] * U[1:L] + tangent[:-1]
    log_grad_fw = log_grad_q + np.cumsum(step[::-1])[::-1]
    # Weight gradient: E[P_l (A^l − σ_b²)] = E[P_l] (E[A^l] − σ_b² + K_l w_l U_l).
    K = np.exp(np.clip(log_q, -700, 700))
    x2_mf = np.log(np.maximum(K - bias, 1e-300))
    x2_fw = np.log(np.maximum(K * (1 + r + w * U[:L]) - bias, 1e-300))
    log_wgrad_mf = log_grad_q + x2_mf - np.log(sig)
    log_wgrad_fw = log_grad_fw + x2_fw - np.log(sig)
    if np.all(bias == 0):  # exact in logs however far q has moved
        log_wgrad_mf = log_grad_q + log_q - np.log(sig)
        log_wgrad_fw = log_grad_fw + log_q + np.log1p(r + w * U[:L]) - np.log(sig)

    rel_q = (1 + w) * (1 + 2 / n_out) - 1
    # Backward spread: Σ Var(F_k)/E² + 2 Σ_{j<k} Cov/E² over the factors above l, + 2/n_L.
    var_f = dd**2 * w + (3 * c["d4"] / c["d"] ** 2 - 1.0) / n_out
    vstep = np.zeros(L)
    vstep[:-1] = var_f[:-1] + 2 * rho[:-1] * U[1:L]
    rel_g = np.cumsum(vstep[::-1])[::-1] + 2.0 / n_out[-1]
    mq, sq = log_spread(log_q_fw, w, n_out)
    mg, sg = log_spread(log_grad_fw, (1 + rel_g) / (1 + 2 / n_out[-1]) - 1, n_out[-1])
    return FiniteWidthProfile(
        log_q_fw, log_grad_fw, log_wgrad_fw, log_q, log_grad_q, log_wgrad_mf,
        rel_q, rel_g, "O(1/n) expansion", mq, sq, mg, sg,
    )  # fmt: skip


def log_spread(log_mean: Array, rel_var: Array, n: Any) -> tuple[Array, Array]:
    """Mean and SD across initialisations of log Q, Q = one example's (1/n)‖h‖² (or ‖δ‖²).

    Given the layer below, the n units are i.i.d. N(0, A), so Q = A·χ²_n/n with the χ² factor
    independent of A: E log Q = E log A + ψ(n/2) − log(n/2), Var log Q = Var log A + ψ'(n/2)
    (exact). ``rel_var`` (the O(1/n) chain's V/K²) is a sum of one relative variance per
    layer, each the variance of that layer's log-increment to O(1/n): so Var log A = rel_var,
    additive over layers like Hanin & Nica's log-normal limit (2019, eq. (1.6); for ReLU
    Σ 5/n_l), and E log A = log E[A] − ½ Var log A (log-normal). Not log(1 + rel_var): that
    equals it only to O(1/n) and misses the exact ReLU law by 10% in the SD at depth/width
    = 1/6 already. For the gradient the exact factor is the top layer's δ^L ~ N(0, q̃ I): n = n_L.
    """
    from scipy.special import digamma, polygamma

    # A negative first-order variance of A can only be an O(1/n²) artefact: no spread.
    var_a = np.maximum(rel_var, 0.0)
    half = 0.5 * np.asarray(n, dtype=np.float64)
    mean = log_mean - 0.5 * var_a + digamma(half) - np.log(half)
    return mean, np.sqrt(var_a + polygamma(1, half))


def delta_method(specs: tuple[LayerSpec, ...], input_q: float = 1.0) -> tuple[Array, Array]:
    """(E[A^l], Var[A^l]) per layer by the delta method on the chain, derivatives at μ_l.

    μ_{l+1} = σ²[m(μ_l) + ½ m''(μ_l) v_l] + σ_b², v_{l+1} = σ⁴[m'(μ_l)² v_l + (m₄(μ_l) −
    m(μ_l)²)/n] (theory.md, "Next: beyond the mean"), Gaussian weights. One quadrature per
    layer: a reference for :func:`expand` (they agree to O(1/n²)), not a fast path.
    """
    input_q = check_positive("input_q", input_q)
    s0 = specs[0]
    mu = s0.sigma_w2 * input_q + s0.bias_var
    var = 2.0 * (s0.sigma_w2 * input_q) ** 2 / s0.fan_in
    mus, vs = [mu], [var]
    for prev, cur in itertools.pairwise(specs):
        st = {k: float(v[0]) for k, v in _stein(prev.activation, np.array([mu])).items()}
        m, m1, m2 = st["m"], st["m1"] / mu, st["m2"] / mu**2
        s2 = cur.sigma_w2
        mu, var = (
            s2 * (m + 0.5 * m2 * var) + cur.bias_var,
            s2**2 * (m1**2 * var + (st["m4"] - m * m) / prev.fan_out),
        )
        mus.append(mu)
        vs.append(var)
    return np.array(mus), np.array(vs)
