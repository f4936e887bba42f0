"""The Gaussian quadrature under every mean-field moment (:mod:`gradmath.meanfield.moments`).

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
derivative. The rule stays accurate for 1e-24 ≤ q ≤ 1e24 (:data:`Q_LOW`, :data:`Q_HIGH`);
:class:`~gradmath.meanfield.moments.ActivationMoments` switches to asymptotic forms outside
that range and to an activation's closed forms (``act.gaussian``) where it has them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.errors import GradmathError, broadcast

__all__ = ["Q_HIGH", "Q_LOW", "expect", "expect2", "expect_shifted", "threaded"]

Array = NDArray[np.float64]
Fn = Callable[..., NDArray[np.floating[Any]]]
T = TypeVar("T")

#: Half-width of the integration range in z.
Z_MAX = 10.0
#: Largest panel length in z (the Gaussian weight is resolved to 1e-16 by one panel).
GAUSS_STEP = 2.5
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

    threaded(run, tasks)
    return out.reshape(count, *q.shape)


def threaded(fn: Callable[[T], object], tasks: Sequence[T]) -> None:
    """Run ``fn`` on every task, on the package's thread pool (:func:`gradmath.threads.pool`).

    NumPy releases the GIL inside its loops, so large quadratures split into chunks run in
    parallel; the pool never keeps more threads busy than :func:`gradmath.threads.cores`.
    """
    from gradmath import threads

    with threads.pool(len(tasks)) as ex:
        if ex is None:
            for t in tasks:
                fn(t)
        else:
            list(ex.map(fn, tasks))


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
    m, v = broadcast(mean=m, var=v)
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
    a1, a2, ca = broadcast(q1=a1, q2=a2, c=ca)
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
