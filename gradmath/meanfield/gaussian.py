"""The one Gaussian-expectation engine every mean-field map uses.

Two integrals, vectorised over arrays of their parameters:

- :func:`expect`: E_z[f(√q z)], z ~ N(0, 1) (Poole et al. 2016, eq. 3: ∫Dz φ(√q z)²);
- :func:`expect2`: E[f(u₁) g(u₂)] with u₁ = √q₁ z₁, u₂ = √q₂ (c z₁ + √(1−c²) z₂) (Poole et al.
  2016, eq. 5; Schoenholz et al. 2017, eqs. 3–5). c = ±1 is exact: u₂ = ±√q₂ z₁.

Quadrature. Both reduce to E_z[F(m + s z)] (the bivariate one as an outer rule in z₁ over an
inner rule in z₂ with m = √q₂ c z₁, s = √q₂ √(1−c²)). That is computed by composite
Gauss–Legendre panels (:data:`NODES_PER_PANEL` nodes each) on z ∈ [−Z, Z], Z = :data:`Z_MAX`
(the Gaussian mass outside is 1.5e-23), with breakpoints

- every :data:`GAUSS_STEP` in z, so each panel resolves the Gaussian weight;
- at z₀ = −m/s (where u = 0) and geometrically around it, z₀ ± r^j/s, r = :data:`RATIO`:
  in u these are ±1, ±4, ±16, …, so each panel spans at most a factor r in |u| and a
  saturating activation (tanh at q = 10⁶ turns over within |z| < 10⁻³) or an algebraic tail
  (softsign) is resolved however narrow its transition is in z;
- at every kink k of the activation, z = (k − m)/s, where φ or φ' jumps.

Checked against mpmath at 30 digits (tests/meanfield/test_gaussian.py): relative error
≤ 1e-10 for q from 1e-6 to 1e6 and c from −1 to 1, for every catalogue activation and its
derivative. The rule stays accurate for 1e-24 ≤ q ≤ 1e24; :func:`mean_phi2` and
:func:`mean_dphi2` switch to asymptotic forms outside that range (see there).

Closed forms, where they exist, bypass the quadrature: linear; ReLU and leaky ReLU through the
arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009, eq. 6 with n = 0, 1); erf through the
arcsin kernel (Williams 1997, eq. 11).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.activations import Activation
from gradmath.errors import GradmathError

__all__ = [
    "Q_HIGH",
    "Q_LOW",
    "dkernel",
    "expect",
    "expect2",
    "expect_shifted",
    "kernel",
    "log_mean_dphi2",
    "log_mean_phi2",
    "mean_dphi2",
    "mean_phi2",
]

Array = NDArray[np.float64]
Fn = Callable[..., NDArray[np.floating[Any]]]

#: Half-width of the integration range in z.
Z_MAX = 8.0
#: Largest panel length in z (the Gaussian weight is resolved to 1e-16 by one panel).
GAUSS_STEP = 8.0 / 3.0
#: Ratio of consecutive breakpoints around u = 0 (in |u|).
RATIO = 4.0
#: Gauss–Legendre nodes per panel.
NODES_PER_PANEL = 16
#: Below this q, :func:`mean_phi2` and :func:`mean_dphi2` use the small-q expansion.
Q_LOW = 1e-24
#: Above this q, they use the large-q asymptotics.
Q_HIGH = 1e24
# Bound on the work per chunk of points (elements of the node arrays).
_CHUNK_ELEMENTS = 1 << 21

_GL_X, _GL_W = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------- quadrature rule


def _geometric_count(s_max: float) -> int:
    # Breakpoints r^j/s are needed until they exceed GAUSS_STEP·r (beyond that the fixed
    # GAUSS_STEP grid takes over with panels at least twice as far from u = 0 as they are long).
    if not s_max > 0:
        return 0
    return int(min(60, max(0, math.ceil(math.log(GAUSS_STEP * RATIO * s_max) / math.log(RATIO)))))


def _rule(centers: Sequence[tuple[Array, Array]], plain: Sequence[Array]) -> tuple[Array, Array]:
    """Nodes z and weights w (shape S + (N,)) with Σ w F(z) ≈ E_z[F(z)] for F piecewise smooth.

    ``centers``: pairs (z_c, t) of arrays of shape S: F has structure at z_c on the scale t
    (geometric breakpoints z_c ± t·r^j). ``plain``: extra breakpoints (kinks), shape S.
    """
    shape = np.broadcast_shapes(*(c.shape for c, _ in centers), *(p.shape for p in plain))
    grid = np.arange(-Z_MAX, Z_MAX + 0.5 * GAUSS_STEP, GAUSS_STEP)
    parts: list[Array] = [np.broadcast_to(grid, (*shape, grid.size))]
    for zc, t in centers:
        zc = np.broadcast_to(zc, shape)[..., None]
        parts.append(zc)
        finite_t = t[np.isfinite(t) & (t > 0)]
        count = _geometric_count(float(1.0 / finite_t.min())) if finite_t.size else 0
        if count:
            with np.errstate(invalid="ignore", over="ignore"):
                steps = np.broadcast_to(t, shape)[..., None] * RATIO ** np.arange(count)
            parts += [zc + steps, zc - steps]
    parts += [np.broadcast_to(p, shape)[..., None] for p in plain]
    bp = np.concatenate(parts, axis=-1)
    bp = np.sort(np.clip(np.nan_to_num(bp, nan=0.0), -Z_MAX, Z_MAX), axis=-1)
    half = 0.5 * (bp[..., 1:] - bp[..., :-1])
    mid = 0.5 * (bp[..., 1:] + bp[..., :-1])
    z = (mid[..., None] + half[..., None] * _GL_X).reshape(*shape, -1)
    w = (half[..., None] * _GL_W).reshape(*shape, -1) * np.exp(-0.5 * z * z) / _SQRT_2PI
    return z, w


def _affine_rule(m: Array, s: Array, kinks: Sequence[float]) -> tuple[Array, Array]:
    """Nodes for E_z[F(m + s z)] where F has structure at u = 0 (scale 1) and kinks at ``kinks``.

    Returns (u, w): the nodes already mapped to u = m + s z. s = 0 gives F(m) exactly.
    """
    pos = s > 0
    inv = np.where(pos, 1.0 / np.where(pos, s, 1.0), np.inf)
    far = Z_MAX + GAUSS_STEP * RATIO
    scale = np.where(pos, inv, 0.0)
    z0 = np.where(pos, np.clip(-m * scale, -far, far), far)
    kink_z = [np.where(pos, np.clip((k - m) * scale, -far, far), far) for k in kinks]
    z, w = _rule([(z0, inv)], kink_z)
    return m[..., None] + s[..., None] * z, w


def _as_array(name: str, value: ArrayLike, lo: float, hi: float, allowed: str) -> Array:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradmathError(f"`{name}` (={value!r}) must be a real number or array.") from None
    ok = np.isfinite(a) & (a >= lo) & (a <= hi)  # every caller's domain is finite
    if not np.all(ok):
        bad = float(a[~ok].ravel()[0])
        raise GradmathError(f"`{name}` contains {bad!r}; it must be {allowed}.")
    return a


def _check_q(name: str, q: ArrayLike) -> Array:
    return _as_array(name, q, 0.0, math.inf, "finite and >= 0 (a variance)")


def _chunks(size: int, per_point: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(per_point, 1))
    return [slice(i, min(i + step, size)) for i in range(0, size, step)] or [slice(0, 0)]


def _univariate(
    q: Array,
    kinks: Sequence[float],
    integrand: Callable[[Array, Array, Array], list[Array]],
    count: int,
) -> Array:
    """``integrand(u, w, q)`` (a list of ``count`` sums over the nodes) for every q, stacked.

    Points are grouped by how many geometric breakpoints they need, so one huge q does not
    make every other point pay for its panels, and large inputs are split into chunks that two
    threads evaluate (NumPy releases the GIL inside its loops).
    """
    flat = q.ravel()
    out = np.empty((count, flat.size))
    s = np.sqrt(flat)
    with np.errstate(divide="ignore"):
        need = np.log(GAUSS_STEP * RATIO * s) / math.log(RATIO)
    groups = np.clip(np.ceil(np.nan_to_num(need, neginf=0.0)), 0, 60)
    tasks = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        per_point = (2 * int(g) + 2 * Z_MAX / GAUSS_STEP + 2 + len(kinks)) * NODES_PER_PANEL
        tasks += [idx[sl] for sl in _chunks(idx.size, int(per_point))]

    def run(idx: NDArray[np.intp]) -> None:
        u, w = _affine_rule(np.zeros(idx.size), s[idx], kinks)
        for i, v in enumerate(integrand(u, w, flat[idx])):
            out[i, idx] = v

    if len(tasks) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            list(pool.map(run, tasks))
    else:
        for t in tasks:
            run(t)
    return out.reshape(count, *q.shape)


# --------------------------------------------------------------------------- public engine


def expect(f: Fn, q: ArrayLike, kinks: Sequence[float] = ()) -> Array:
    """E_z[f(√q z)] for z ~ N(0, 1), vectorised over ``q`` (Poole et al. 2016, eq. 3).

    ``f`` must be vectorised; ``kinks`` are the points u where f or f' jumps (``act.kinks``).
    Composite Gauss–Legendre quadrature as described in the module docstring; relative
    error ≤ 1e-10 for 1e-6 ≤ q ≤ 1e6 on the catalogue activations (tested against mpmath),
    and accurate for 1e-24 ≤ q ≤ 1e24. q = 0 gives f(0).

    >>> round(float(expect(lambda u: u * u, 3.0)), 12)
    3.0
    """
    qa = _check_q("q", q)

    def integrand(u: Array, w: Array, q: Array) -> list[Array]:
        return [np.sum(f(u) * w, axis=-1)]

    return _univariate(qa, kinks, integrand, 1)[0]


def expect_shifted(f: Fn, mean: ArrayLike, var: ArrayLike, kinks: Sequence[float] = ()) -> Array:
    """E[f(h)] for h ~ N(mean, var), vectorised over ``mean`` and ``var`` (broadcast).

    The same rule as :func:`expect`, centred where h crosses 0 (u = mean + √var z); used for
    maps with a nonzero pre-activation mean such as the SELU map (Klambauer et al. 2017, eq. 4).

    >>> round(float(expect_shifted(lambda h: h * h, 1.0, 2.0)), 12)
    3.0
    """
    m = _as_array("mean", mean, -math.inf, math.inf, "finite")
    v = _check_q("var", var)
    m, v = np.broadcast_arrays(m, v)
    fm, fs = m.ravel(), np.sqrt(v.ravel())
    out = np.empty(fm.shape)
    for sl in _chunks(fm.size, 60 * NODES_PER_PANEL):
        u, w = _affine_rule(fm[sl], fs[sl], kinks)
        out[sl] = np.sum(f(u) * w, axis=-1)
    return out.reshape(m.shape)


def expect2(
    f: Fn, g: Fn, q1: ArrayLike, q2: ArrayLike, c: ArrayLike, kinks: Sequence[float] = ()
) -> Array:
    """E[f(u₁) g(u₂)], u₁ = √q₁ z₁, u₂ = √q₂ (c z₁ + √(1−c²) z₂), vectorised over q₁, q₂, c.

    The bivariate Gaussian integral of the correlation map (Poole et al. 2016, eq. 5;
    Schoenholz et al. 2017, eq. 4). ``kinks`` apply to both f and g. Computed as
    E_{z₁}[f(u₁) ψ(z₁)] with ψ(z₁) = E_{z₂}[g(m + s z₂)], m = √q₂ c z₁, s = √(q₂(1−c²)), each
    by the rule of :func:`expect`; the outer rule also breaks where ψ has structure (u₂'s
    mean crossing 0 and the kinks, smoothed over the width s/|c| in z₁). At c = ±1, s = 0 and
    ψ = g(±√q₂ z₁) exactly.

    >>> round(float(expect2(lambda u: u, lambda u: u, 2.0, 8.0, 0.5)), 12)
    2.0
    """
    a1, a2 = _check_q("q1", q1), _check_q("q2", q2)
    ca = _as_array("c", c, -1.0, 1.0, "a correlation in [-1, 1]")
    a1, a2, ca = np.broadcast_arrays(a1, a2, ca)
    shape = a1.shape
    f1, f2, fc = a1.ravel(), a2.ravel(), ca.ravel()
    out = np.empty(f1.shape)
    for sl in _chunks(f1.size, 2000 * NODES_PER_PANEL):
        out[sl] = _expect2_flat(f, g, f1[sl], f2[sl], fc[sl], kinks)
    return out.reshape(shape)


def _expect2_flat(f: Fn, g: Fn, q1: Array, q2: Array, c: Array, kinks: Sequence[float]) -> Array:
    s1, s2 = np.sqrt(q1), np.sqrt(q2)
    sc = np.sqrt(np.maximum(0.0, (1.0 - c) * (1.0 + c)))
    b = s2 * c  # u₂'s mean is b z₁
    with np.errstate(divide="ignore"):
        t_f = 1.0 / s1
        t_g = 1.0 / np.abs(b)
        # ψ is g smoothed over s in u, i.e. over s/|b| = sc/|c| in z₁; kinks of g round off there.
        t_psi = np.where(sc > 0, sc / np.abs(c), np.inf)
    t_outer = np.minimum(np.minimum(t_f, t_g), t_psi)
    zero = np.zeros_like(q1)
    plain = []
    for k in kinks:
        with np.errstate(divide="ignore", invalid="ignore"):
            plain.append(np.nan_to_num(k * t_f, posinf=2 * Z_MAX, neginf=-2 * Z_MAX))
            plain.append(np.nan_to_num(k / b, nan=2 * Z_MAX, posinf=2 * Z_MAX, neginf=-2 * Z_MAX))
    z1, w1 = _rule([(zero, t_outer)], plain)
    u1 = s1[:, None] * z1
    u2, w2 = _affine_rule(b[:, None] * z1, np.broadcast_to((s2 * sc)[:, None], z1.shape), kinks)
    psi = np.sum(g(u2) * w2, axis=-1)
    return np.sum(f(u1) * psi * w1, axis=-1)


# --------------------------------------------------------------------------- closed forms


def _piecewise_linear(act: Activation) -> tuple[float, float] | None:
    """Slopes (p, n) if φ(u) = p·u for u > 0 and n·u for u < 0 exactly, else None."""
    if act.name == "linear":
        return 1.0, 1.0
    if act.name == "relu":
        return 1.0, 0.0
    if act.name == "leaky_relu":
        return 1.0, act.params["slope"]
    return None


def _arccos_parts(c: Array) -> tuple[Array, Array]:
    # θ = arccos c via atan2 keeps full accuracy near c = ±1, where arccos loses half the digits.
    sin = np.sqrt(np.maximum(0.0, (1.0 - c) * (1.0 + c)))
    return np.arctan2(sin, c), sin


def _pl_kernel(p: float, n: float, q1: Array, q2: Array, c: Array, deriv: bool) -> Array:
    """E[φ(u₁)φ(u₂)] (or φ') for φ = (p−n)·relu + n·id, by the arc-cosine kernels.

    Cho & Saul (2009), eq. 6: E[relu(u₁)relu(u₂)] = √(q₁q₂)/(2π)·(sin θ + (π−θ) cos θ) and
    E[1{u₁>0}1{u₂>0}] = (π−θ)/(2π), θ = arccos c; the cross terms E[relu(u₁)u₂] = √(q₁q₂)c/2
    follow from the symmetry u → −u.
    """
    theta, sin = _arccos_parts(c)
    a = p - n
    if deriv:
        return a * a * (np.pi - theta) / (2 * np.pi) + n * p + 0.0 * (q1 + q2)
    r = np.sqrt(q1 * q2)
    return a * a * r / (2 * np.pi) * (sin + (np.pi - theta) * c) + n * p * r * c


def _erf_kernel(q1: Array, q2: Array, c: Array, deriv: bool) -> Array:
    """Williams (1997), eq. 11: E[erf(u₁)erf(u₂)] = (2/π) arcsin(2Σ₁₂/√((1+2Σ₁₁)(1+2Σ₂₂))).

    Written as (2/π) arctan(2Σ₁₂/√D), D = (1+2q₁)(1+2q₂) − 4Σ₁₂², which is exact and keeps
    full accuracy as the argument of arcsin approaches 1. For erf'(u) = (2/√π) e^{−u²}:
    E[erf'(u₁)erf'(u₂)] = (4/π)/√det(I + 2Σ) = (4/π)/√D (Gaussian integral).
    """
    s12 = c * np.sqrt(q1 * q2)
    d = 1.0 + 2.0 * q1 + 2.0 * q2 + 4.0 * q1 * q2 * (1.0 - c) * (1.0 + c)
    if deriv:
        return (4.0 / np.pi) / np.sqrt(d)
    return (2.0 / np.pi) * np.arctan(2.0 * s12 / np.sqrt(d))


def _closed_kernel(act: Activation, q1: Array, q2: Array, c: Array, deriv: bool) -> Array | None:
    pl = _piecewise_linear(act)
    if pl is not None:
        return _pl_kernel(*pl, q1, q2, c, deriv)
    if act.name == "erf":
        return _erf_kernel(q1, q2, c, deriv)
    return None


def kernel(act: Activation, q1: ArrayLike, q2: ArrayLike, c: ArrayLike) -> Array:
    """E[φ(u₁)φ(u₂)] for the activation ``act`` (closed form where one exists, else quadrature).

    u₁, u₂ as in :func:`expect2`. Closed forms: linear √(q₁q₂)c; ReLU and leaky ReLU by the
    arc-cosine kernel (Cho & Saul 2009); erf by the arcsin kernel (Williams 1997).

    >>> from gradmath import activation
    >>> round(float(kernel(activation("relu"), 1.0, 1.0, 0.0)), 15) == round(1 / (2 * math.pi), 15)
    True
    """
    return _kernel(act, q1, q2, c, deriv=False)


def dkernel(act: Activation, q1: ArrayLike, q2: ArrayLike, c: ArrayLike) -> Array:
    """E[φ'(u₁)φ'(u₂)] (closed form where one exists, else quadrature); see :func:`kernel`."""
    return _kernel(act, q1, q2, c, deriv=True)


def _kernel(act: Activation, q1: ArrayLike, q2: ArrayLike, c: ArrayLike, deriv: bool) -> Array:
    a1, a2 = _check_q("q1", q1), _check_q("q2", q2)
    ca = _as_array("c", c, -1.0, 1.0, "a correlation in [-1, 1]")
    a1, a2, ca = np.broadcast_arrays(a1, a2, ca)
    closed = _closed_kernel(act, a1, a2, ca, deriv)
    if closed is not None:
        return np.asarray(closed, dtype=np.float64)
    fn = act.deriv if deriv else act
    return expect2(fn, fn, a1, a2, ca, act.kinks)


# --------------------------------------------------------------------------- one-point moments


class _Moments(NamedTuple):
    phi2: Array  # E[φ(√q z)²]
    dphi2: Array  # E[φ'(√q z)²]
    slope: Array  # d/dq E[φ(√q z)²] = E[z φ φ'(√q z)]/√q (Stein's lemma)


def _quad_moments(act: Activation, q: Array) -> _Moments:
    """The three one-point moments on one shared quadrature rule (q > 0)."""

    def integrand(u: Array, w: Array, q: Array) -> list[Array]:
        phi, dphi = act(u), act.deriv(u)
        return [
            np.sum(phi * phi * w, axis=-1),
            np.sum(dphi * dphi * w, axis=-1),
            np.sum(u * phi * dphi * w, axis=-1) / q,
        ]

    return _Moments(*_univariate(q, act.kinks, integrand, 3))


class _Limits(NamedTuple):
    """What :func:`mean_phi2` needs outside [Q_LOW, Q_HIGH] (computed, never cached)."""

    phi0_2: float  # φ(0)²
    d0: float  # (φ'(0+)² + φ'(0−)²)/2 = lim_{q→0} E[φ'(√q z)²]
    unbounded: bool  # φ grows linearly (E[φ²] ∝ q) rather than saturating
    phi2_hi: float  # E[φ²] at Q_HIGH
    dphi2_hi: float  # E[φ'²] at Q_HIGH


def _limits(act: Activation) -> _Limits:
    tiny, huge = 1e-300, 1e100
    d = act.deriv(np.array([tiny, -tiny]))
    far = act(np.array([huge, -huge]))
    hi = _quad_moments(act, np.array([Q_HIGH]))
    return _Limits(
        float(act(np.array([0.0]))[0]) ** 2,
        float(0.5 * (d[0] ** 2 + d[1] ** 2)),
        bool(np.max(np.abs(far)) > 1e50),
        float(hi.phi2[0]),
        float(hi.dphi2[0]),
    )


def _log_moments(act: Activation, log_q: Array, lim: _Limits | None = None) -> tuple[Array, Array]:
    """(log E[φ²], log E[φ'²]) at q = e^{log_q}, any finite log_q; see :func:`mean_phi2`."""
    log_q = np.asarray(log_q, dtype=np.float64)
    pl = _piecewise_linear(act)
    if pl is not None:
        c2 = 0.5 * (pl[0] ** 2 + pl[1] ** 2)
        return log_q + math.log(c2), np.full_like(log_q, math.log(c2))
    if act.name == "erf":
        # Closed forms in log space: (2/π)·arctan(2q/√(1+4q)) and (4/π)/√(1+4q).
        q = np.exp(np.minimum(log_q, 700.0))
        small = log_q < -30.0  # arctan(2q/√(1+4q)) = 2q(1 + O(q)): keep log q exact
        big = log_q > 700.0
        with np.errstate(divide="ignore"):
            lp = np.log((2 / np.pi) * np.arctan(2 * q / np.sqrt(1 + 4 * q)))
        lp = np.where(small, math.log(4 / np.pi) + log_q, lp)
        ld = math.log(4 / np.pi) - 0.5 * np.log1p(4 * q)
        ld = np.where(big, math.log(4 / np.pi) - 0.5 * (math.log(4.0) + log_q), ld)
        return lp, ld
    lim = _limits(act) if lim is None else lim
    lo, hi = math.log(Q_LOW), math.log(Q_HIGH)
    mid = (log_q >= lo) & (log_q <= hi)
    lp = np.empty_like(log_q)
    ld = np.empty_like(log_q)
    if np.any(mid):
        m = _quad_moments(act, np.exp(log_q[mid]))
        with np.errstate(divide="ignore"):
            lp[mid], ld[mid] = np.log(m.phi2), np.log(m.dphi2)
    low = log_q < lo
    # Small q: E[φ(√q z)²] = φ(0)² + q·(φ'(0+)² + φ'(0−)²)/2 + O(q^{3/2}) (Taylor on each side
    # of 0; when φ(0) ≠ 0 the q-term is already below rounding), E[φ'²] = d0 + O(√q).
    with np.errstate(divide="ignore"):
        lp[low] = np.logaddexp(math.log(lim.phi0_2) if lim.phi0_2 > 0 else -np.inf,
                               log_q[low] + math.log(lim.d0))  # fmt: skip
        ld[low] = math.log(lim.d0)
    high = log_q > hi
    # Large q: linear growth gives E[φ²] ∝ q and E[φ'²] → const; saturation gives E[φ²] → const
    # and E[φ'²] ∝ q^{-1/2} (φ' lives on |u| = O(1), where the N(0, q) density is 1/√(2πq)).
    # Both are matched to the quadrature at Q_HIGH; relative error O(q^{-1/2}) there, < 1e-10.
    if lim.unbounded:
        lp[high] = math.log(lim.phi2_hi) + log_q[high] - hi
        ld[high] = math.log(lim.dphi2_hi)
    else:
        lp[high] = math.log(lim.phi2_hi)
        ld[high] = math.log(lim.dphi2_hi) - 0.5 * (log_q[high] - hi)
    return lp, ld


def _check_act(act: object) -> Activation:
    if not isinstance(act, Activation):
        from gradmath.activations import activation

        return activation(act)  # type: ignore[arg-type]
    return act


def log_mean_phi2(act: Activation | str, log_q: ArrayLike) -> Array:
    """log E[φ(√q z)²] at q = e^{log_q}, finite for any finite ``log_q`` (see :func:`mean_phi2`)."""
    a = _check_act(act)
    lq = _as_array("log_q", log_q, -math.inf, math.inf, "finite")
    return _log_moments(a, lq)[0]


def log_mean_dphi2(act: Activation | str, log_q: ArrayLike) -> Array:
    """log E[φ'(√q z)²] at q = e^{log_q}, finite for every finite ``log_q``."""
    a = _check_act(act)
    lq = _as_array("log_q", log_q, -math.inf, math.inf, "finite")
    return _log_moments(a, lq)[1]


def _moment(act: Activation | str, q: ArrayLike, index: int) -> Array:
    a = _check_act(act)
    qa = _check_q("q", q)
    m = _moments_with_slope(a, qa)
    return m.phi2 if index == 0 else m.dphi2


def mean_phi2(act: Activation | str, q: ArrayLike) -> Array:
    """E[φ(√q z)²], the integral in the length map (Poole et al. 2016, eq. 3), vectorised.

    Closed forms: linear q, ReLU q/2, leaky ReLU q(1+a²)/2, erf (2/π) arcsin(2q/(1+2q))
    (Williams 1997). Otherwise quadrature (module docstring) for Q_LOW ≤ q ≤ Q_HIGH and
    asymptotics outside: φ(0)² + q(φ'(0+)² + φ'(0−)²)/2 below (relative error O(√q)), and above
    either linear growth E ∝ q or saturation E → const, matched at Q_HIGH (relative error
    O(q^{-1/2}) ≤ 1e-12 there). q = 0 gives φ(0)².

    >>> float(mean_phi2("relu", 3.0))
    1.5
    """
    return _moment(act, q, 0)


def mean_dphi2(act: Activation | str, q: ArrayLike) -> Array:
    """E[φ'(√q z)²], the integral in χ₁ (Schoenholz et al. 2017, eq. 5), vectorised.

    Closed forms: linear 1, ReLU 1/2, leaky ReLU (1+a²)/2, erf (4/π)/√(1+4q). Otherwise as
    :func:`mean_phi2`: below Q_LOW the limit (φ'(0+)² + φ'(0−)²)/2 (one-sided derivatives, so
    relu'(0) = 0 does not matter), above Q_HIGH const (linear growth) or ∝ q^{-1/2} (saturation).

    >>> float(mean_dphi2("relu", 7.0))
    0.5
    """
    return _moment(act, q, 1)


def _moments_with_slope(act: Activation, q: Array) -> _Moments:
    """E[φ²], E[φ'²] and d/dq E[φ²] at q (any q ≥ 0) for the fixed-point solvers."""
    pl = _piecewise_linear(act)
    if pl is not None:
        c2 = 0.5 * (pl[0] ** 2 + pl[1] ** 2)
        return _Moments(c2 * q, np.full_like(q, c2), np.full_like(q, c2))
    if act.name == "erf":
        r = np.sqrt(1 + 4 * q)
        # d/dq (2/π) arctan(2q/√(1+4q)) = (4/π)/((1+2q)√(1+4q))
        return _Moments(
            (2 / np.pi) * np.arctan(2 * q / r), (4 / np.pi) / r, (4 / np.pi) / (1 + 2 * q) / r
        )
    ok = (q >= Q_LOW) & (q <= Q_HIGH)
    if np.all(ok):
        return _quad_moments(act, q)
    out = _quad_moments(act, np.where(ok, q, 1.0))
    lp, ld = _log_moments(act, np.log(np.where(ok, 1.0, np.maximum(q, 1e-300))))
    lim = _limits(act)
    small = q < Q_LOW
    slope_out = np.where(small, lim.d0, np.exp(lp) / np.maximum(q, 1e-300) * lim.unbounded)
    return _Moments(
        np.where(ok, out.phi2, np.where(q == 0, lim.phi0_2, np.exp(lp))),
        np.where(ok, out.dphi2, np.where(q == 0, lim.d0, np.exp(ld))),
        np.where(ok, out.slope, slope_out),
    )
