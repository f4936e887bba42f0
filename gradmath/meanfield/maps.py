"""Length and correlation maps, their fixed points, χ₁, depth scales and phase diagrams.

Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli (2016), "Exponential expressivity in deep
neural networks through transient chaos", eqs. 3–7, and Schoenholz, Gilmer, Ganguli &
Sohl-Dickstein (2017), "Deep Information Propagation", eqs. 2–9, for a net with weight scale
σ_w² (= fan_in·Var[W]) and bias variance σ_b²:

- length map  q ↦ σ_w² ∫Dz φ(√q z)² + σ_b²                      (Poole eq. 3, Schoenholz eq. 2)
- χ₁ = σ_w² ∫Dz φ'(√q* z)²                                     (Poole eq. 7, Schoenholz eq. 5)
- correlation map c ↦ (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q*       (Poole eq. 5, Schoenholz eq. 3)
- ξ_q⁻¹ = −log(χ₁ + σ_w² ∫Dz φ''(√q* z) φ(√q* z))                (Schoenholz eqs. 6–7)
- ξ_c⁻¹ = −log(σ_w² ∫Dz₁Dz₂ φ'(u₁)φ'(u₂)) at c = c*              (Schoenholz eqs. 8–9)

The bracket in ξ_q is the slope of the length map at q*; gradmath evaluates it in Stein's form
σ_w² ∫Dz z φ(√q* z) φ'(√q* z)/√q*, which needs no φ'' and is right for kinked activations
(hard_tanh's φ'' has point masses at ±1 that the pointwise φ'' misses).

Which fixed point. q* is the limit of the length map iterated from ``q0`` (default 1): the
first fixed point above q0 if the map increases q there, else the first below it (q* = 0 when
σ_b² = 0 and φ(0) = 0 and nothing stops the decay). When the map grows without bound (ReLU with
σ_w² > 2) there is no q*; :func:`fixed_point` raises and :func:`phase_diagram` records ∞.
c* is the stable fixed point of the correlation map in [0, 1]: c* = 1 when χ₁ ≤ 1 (ordered),
else the unique fixed point below 1 (chaotic; the map is increasing and convex on [0, 1] since
its Hermite coefficients are squares).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.activations import Activation, activation
from gradmath.closed_forms import PiecewiseLinear
from gradmath.errors import GradmathError, broadcast
from gradmath.meanfield import gaussian as gs
from gradmath.meanfield.moments import ActivationMoments, OnePoint, moments_of

__all__ = [
    "DepthScales",
    "PhaseDiagram",
    "chi1",
    "correlation_fixed_point",
    "correlation_map",
    "critical_sigma_w2",
    "depth_scales",
    "fixed_point",
    "length_map",
    "phase_diagram",
]

Array = NDArray[np.float64]

# The table that brackets fixed points: log-spaced q over [1e-13, 1e13] (and q0).
_TABLE_LOG_RANGE = (math.log(1e-13), math.log(1e13))
_TABLE_STEP = 0.05
# Residual |L(q) − q| accepted as converged, relative to q + σ_b² (the test asks for < 1e-12).
_RESIDUAL_TOL = 2e-14
_MAX_ITER = 80


def _act(act: Activation | str) -> Activation:
    return act if isinstance(act, Activation) else activation(act)


def _variances(sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> tuple[Array, Array]:
    sw = gs._as_array("sigma_w2", sigma_w2, 0.0, math.inf, "finite and >= 0 (fan_in·Var[W])")
    sb = gs._as_array("sigma_b2", sigma_b2, 0.0, math.inf, "finite and >= 0 (a variance)")
    sw, sb = broadcast(sigma_w2=sw, sigma_b2=sb)
    return sw, sb


def _out(x: Array) -> float | Array:
    return float(x) if x.ndim == 0 else x


def _finite_out(x: Array, what: str) -> float | Array:
    """``x`` as :func:`_out` gives it, or a GradmathError where it left float64 range."""
    if not np.all(np.isfinite(x)):
        raise GradmathError(
            f"The {what} exceeds the float64 range (≈ 1.8e308) for these arguments; the "
            "log-space moments (meanfield.log_mean_phi2) and predict() carry such values."
        )
    return _out(x)


def length_map(
    act: Activation | str, q: ArrayLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike
) -> float | Array:
    """q ↦ σ_w² ∫Dz φ(√q z)² + σ_b² (Poole et al. 2016, eq. 3), vectorised.

    >>> length_map("relu", 2.0, 2.0, 0.1)
    2.1
    """
    m = moments_of(_act(act))
    sw, sb = _variances(sigma_w2, sigma_b2)
    phi2, sw, sb = broadcast(q=m.exact(gs._check_q("q", q)).phi2, sigma_w2=sw, sigma_b2=sb)
    with np.errstate(over="ignore"):
        return _finite_out(sw * phi2 + sb, "length map")


# --------------------------------------------------------------------------- fixed point q*


class _Solved(NamedTuple):
    q: Array  # q* (inf where the map grows without bound)
    moments: OnePoint  # E[φ²], E[φ'²], d/dq E[φ²] at q* (limits where q* = ∞)


def _solve(m: ActivationMoments, sw: Array, sb: Array, q0: float, *, fast: bool = False) -> _Solved:
    """q* for every (σ_w², σ_b²) pair at once (see the module docstring for which root).

    ``fast``: Newton on interpolated moments (:meth:`ActivationMoments.fast`) instead of the
    direct quadrature.
    """
    shape = sw.shape
    sw, sb = sw.ravel(), sb.ravel()
    mfun = m.fast if fast else m.exact
    c2 = None if m.form is None else m.form.proportional
    if c2 is not None:
        q = _solve_linear(c2, sw, sb, q0)
    else:
        # Interpolated moments make Newton iterations cheap: a coarse bracketing table will do.
        q = _solve_table(m, sw, sb, q0, mfun, step=0.5 if fast else _TABLE_STEP)
    mq = mfun(q)
    return _Solved(q.reshape(shape), OnePoint(*(x.reshape(shape) for x in mq)))


def _solve_linear(c2: float, sw: Array, sb: Array, q0: float) -> Array:
    # E[φ²] = c2·q exactly: q* = σ_b²/(1 − c2σ_w²) when c2σ_w² < 1; growth when > 1; at = 1 every
    # q is fixed without bias (stays at q0) and a bias grows it by σ_b² per layer.
    k = c2 * sw
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(k < 1, sb / (1 - k), np.inf)
    return np.where((k == 1) & (sb == 0), q0, q)


MomentFn = Callable[[Array], OnePoint]


def _first_passage(
    F: Array, k0: int, up: NDArray[np.bool_], tol: Array | float = 0.0
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """The log-table bracketer: per row of F (values on increasing table nodes), the first node
    at or after ``k0`` with F ≤ −tol (rows where ``up``), or at or before it with F ≥ tol
    (others); ``tol`` (broadcast to F) is the rounding level of F, which is no crossing.

    Returns (index, found).
    """
    tol = np.broadcast_to(tol, F.shape)
    above = F[:, k0:] <= -tol[:, k0:]
    below = F[:, : k0 + 1][:, ::-1] >= tol[:, : k0 + 1][:, ::-1]
    k = np.where(up, k0 + np.argmax(above, axis=1), k0 - np.argmax(below, axis=1))
    return k, np.where(up, above.any(axis=1), below.any(axis=1))


def _solve_table(
    m: ActivationMoments, sw: Array, sb: Array, q0: float, mfun: MomentFn, step: float
) -> Array:
    lo_t, hi_t = min(_TABLE_LOG_RANGE[0], math.log(q0)), max(_TABLE_LOG_RANGE[1], math.log(q0))
    t = np.arange(lo_t, hi_t + step, step)
    t = np.sort(np.append(t, math.log(q0)))
    tq = np.exp(t)
    tab = mfun(tq)
    k0 = int(np.searchsorted(t, math.log(q0)))
    lim = m.limits
    d0 = sw * lim.phi0_2 + sb  # D(0) = L(0) − 0
    q = np.empty_like(sw)
    lo = np.empty_like(sw)
    hi = np.empty_like(sw)
    guess = np.empty_like(sw)
    for sl in gs._chunks(sw.size, t.size):
        s_w, s_b = sw[sl, None], sb[sl, None]
        with np.errstate(over="ignore", invalid="ignore"):  # huge σ²: D = ±inf, q* overflows
            D = s_w * tab.phi2 + s_b - tq  # D(q) = L(q) − q on the table
            # A crossing must exceed the rounding of D (1e-12 of its terms; the moments are
            # good to 1e-13): softplus at σ_w² = 2 has D = O(q^{-1/2}) > 0 for all q, which
            # rounding would "cross" near 1e10.
            noise = 1e-12 * (np.abs(s_w * tab.phi2) + s_b + tq)
        up = D[:, k0] > 0
        # First passage in the direction the iteration moves from q0.
        k, found = _first_passage(D, k0, up, noise)
        # Bracket [a, b] with D(a) ≥ 0 ≥ D(b).
        ia = np.where(up, np.maximum(k - 1, 0), k)
        ib = np.where(up, k, np.minimum(k + 1, t.size - 1))
        rows = np.arange(D.shape[0])
        Da, Db = D[rows, ia], D[rows, ib]
        # dD/dt = q (σ_w² S − 1) at the table nodes, for a cubic Hermite guess in t = log q.
        Sa = tq[ia] * (sw[sl] * tab.slope[ia] - 1)
        Sb = tq[ib] * (sw[sl] * tab.slope[ib] - 1)
        g = _hermite_root(t[ia], t[ib], Da, Db, Sa, Sb)
        exact = (Da == 0) | (Db == 0)
        g = np.where(Da == 0, t[ia], np.where(Db == 0, t[ib], g))
        guess[sl] = np.where(found, np.exp(g), np.nan)
        lo[sl], hi[sl] = tq[ia], tq[ib]
        q[sl] = np.where(found & exact, guess[sl], np.nan)
        # Outside the table the moments are in their asymptotic regimes, where E[φ²] is affine
        # in q (module gaussian): solve that exactly.
        nf = ~found
        if np.any(nf):
            upn = up & nf
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if lim.unbounded:
                    # E[φ²] = c₂q + c + o(1) with the exact asymptotic slope c₂ = lim.c2_inf:
                    # D(q) = D(T) + (σ_w² c₂ − 1)(q − T) beyond the table top T. σ_w² c₂ ≥ 1
                    # is growth without bound (ELU, softplus at σ_w² = 2: no fixed point).
                    k = sw[sl][upn] * lim.c2_inf
                    qi = np.where(k < 1, tq[-1] + D[upn, -1] / (1 - k), np.inf)
                else:  # saturating: E[φ²] → const, q* = σ_w²·E[φ²](Q_HIGH) + σ_b²
                    qi = sw[sl][upn] * lim.phi2_hi + sb[sl][upn]
            sub = q[sl]
            sub[upn] = qi
            dn = ~up & nf
            kd = sw[sl][dn] * lim.d0
            with np.errstate(divide="ignore", invalid="ignore"):
                qd = np.where(d0[sl][dn] == 0, 0.0, d0[sl][dn] / (1 - kd))
            sub[dn] = qd
            q[sl] = sub
    todo = np.isnan(q)
    if np.any(todo):
        q[todo] = _newton(m.act, mfun, sw[todo], sb[todo], guess[todo], lo[todo], hi[todo])
    return q


def _hermite_root(ta: Array, tb: Array, Da: Array, Db: Array, Sa: Array, Sb: Array) -> Array:
    """Root in [ta, tb] of the cubic Hermite interpolant of D (values D, slopes S in t)."""
    h = tb - ta
    # A guess only (clipped to [0, 1], NaN → the midpoint): D near ±1.8e308 (huge σ²) may
    # overflow in the cubic without harm.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        x = np.clip(Da / np.where(Da - Db != 0, Da - Db, 1.0), 0.0, 1.0)  # secant start
        x = _hermite_newton(x, h, Da, Db, Sa, Sb)
    return ta + np.nan_to_num(x, nan=0.5) * h


def _hermite_newton(x: Array, h: Array, Da: Array, Db: Array, Sa: Array, Sb: Array) -> Array:
    for _ in range(6):
        x2, x3 = x * x, x * x * x
        p = (
            (2 * x3 - 3 * x2 + 1) * Da
            + (x3 - 2 * x2 + x) * h * Sa
            + (-2 * x3 + 3 * x2) * Db
            + (x3 - x2) * h * Sb
        )
        dp = (6 * x2 - 6 * x) * Da + (3 * x2 - 4 * x + 1) * h * Sa + (6 * x - 6 * x2) * Db
        dp = dp + (3 * x2 - 2 * x) * h * Sb
        x = np.clip(np.where(dp != 0, x - p / dp, x), 0.0, 1.0)
    return x


def _newton(
    act: Activation, mfun: MomentFn, sw: Array, sb: Array, q: Array, lo: Array, hi: Array
) -> Array:
    """Safeguarded Newton on D(q) = σ_w² E[φ(√q z)²] + σ_b² − q inside [lo, hi], vectorised."""
    q, lo, hi = q.copy(), lo.copy(), hi.copy()
    out = np.full_like(q, np.nan)
    active = np.arange(q.size)
    for _ in range(_MAX_ITER):
        m = mfun(q[active])
        s_w, s_b = sw[active], sb[active]
        D = s_w * m.phi2 + s_b - q[active]
        dD = s_w * m.slope - 1
        done = np.abs(D) <= _RESIDUAL_TOL * (q[active] + s_b)
        lo[active] = np.where(D > 0, q[active], lo[active])
        hi[active] = np.where(D < 0, q[active], hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(dD < 0, D / dD, np.nan)
        new = q[active] - step
        a, b = lo[active], hi[active]
        bad = ~((new > a) & (new < b))
        newton_ok, newton = ~bad, new
        mid = np.where(a > 0, np.sqrt(a * b), 0.5 * (a + b))
        new = np.where(bad, mid, new)
        tiny = np.abs(new - q[active]) <= 1e-15 * np.abs(q[active])
        done |= tiny | (b - a <= 1e-15 * b)
        # A converged iterate takes its last Newton step too (free: D and dD are at hand), so
        # q* is good to rounding rather than to the residual test (ξ_c near the critical
        # line is sensitive to q*).
        out[active[done]] = np.where(newton_ok, newton, q[active])[done]
        q[active] = new
        active = active[~done]
        if active.size == 0:
            return out
    raise GradmathError(
        f"The fixed-point solver for {act!r} did not converge in {_MAX_ITER} iterations "
        f"(residuals still above {_RESIDUAL_TOL:g}).",
        partial=np.where(np.isnan(out), q, out),
    )


def fixed_point(
    act: Activation | str, sigma_w2: ArrayLike, sigma_b2: ArrayLike, *, q0: float = 1.0
) -> float | Array:
    """q* = σ_w² ∫Dz φ(√q* z)² + σ_b², the length map's fixed point (Poole et al. 2016, eq. 4).

    The one reached by iterating the map from ``q0`` (module docstring). Bracketed on a log
    table of the map, then safeguarded Newton with the exact slope (Stein's form), to a
    residual |L(q*) − q*| ≤ 2e-14·(q* + σ_b²). Vectorised over σ_w², σ_b².

    Raises GradmathError when the map grows without bound (no finite q*: ReLU with
    σ_w² > 2, or = 2 with σ_b² > 0) and when the solver fails (``partial`` = last estimate).

    >>> fixed_point("relu", 1.0, 0.5)   # σ_b²/(1 − σ_w²/2)
    1.0
    >>> fixed_point("relu", 1.5, 0.0)
    0.0
    """
    a = _act(act)
    q0 = gs._as_array("q0", q0, 0.0, math.inf, "finite and > 0").item()
    if not q0 > 0:
        raise GradmathError(f"`q0` (={q0!r}) must be finite and > 0.")
    sw, sb = _variances(sigma_w2, sigma_b2)
    m = moments_of(a)
    q = _solve(m, sw, sb, q0).q
    if not np.all(np.isfinite(q)):
        i = np.flatnonzero(~np.isfinite(q.ravel()))[0]
        w, b = float(sw.ravel()[i]), float(sb.ravel()[i])
        if w * m.limits.c2_inf < 1:
            # The map is bounded (or grows slower than q): a fixed point exists, too large.
            raise GradmathError(
                f"The fixed point q* of {a!r} with sigma_w2={w!r}, sigma_b2={b!r} exceeds the "
                "float64 range (≈ 1.8e308); scale σ_w² and σ_b² down (q* scales with them).",
                partial=q,
            )
        raise GradmathError(
            f"The length map of {a!r} with sigma_w2={w!r}, sigma_b2={b!r} grows without bound: "
            "q^l → ∞, there is no finite fixed point q*.",
            partial=q,
        )
    return _out(q)


# --------------------------------------------------------------------------- χ₁ and c*


def chi1(act: Activation | str, sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> float | Array:
    """χ₁ = σ_w² ∫Dz φ'(√q* z)² (Poole et al. 2016, eq. 7; Schoenholz et al. 2017, eq. 5).

    The slope of the correlation map at c = 1: ordered phase χ₁ < 1, chaotic χ₁ > 1. Where q*
    is infinite (the length map grows without bound) it is the q → ∞ limit, σ_w²/2 for ReLU.

    >>> chi1("relu", 3.0, 0.1)
    1.5
    """
    a = _act(act)
    sw, sb = _variances(sigma_w2, sigma_b2)
    with np.errstate(over="ignore"):
        return _finite_out(sw * _solve(moments_of(a), sw, sb, 1.0).moments.dphi2, "χ₁")


def _corr_terms(
    m: ActivationMoments, c: Array, sw: Array, sb: Array, q: Array
) -> tuple[Array, Array]:
    """(map(c), slope(c)): (σ_w² K(c) + σ_b²)/q* and σ_w² E[φ'(u₁)φ'(u₂)] (Price's theorem).

    Where q* = ∞ (the length grows without bound) the map is normalised by the next layer's
    length, not by q*: c ↦ K_∞(c)/K_∞(1), with K_∞ the kernel of φ's piecewise-linear
    asymptote (``act.slopes_at_infinity``); its slope at c = 1 is exactly 1 (Cho & Saul's
    arc-cosine kernel of degree 1 and 0), so c* = 1 and ξ_c = ∞ there whatever σ_w² is.
    """
    finite = np.isfinite(q)
    if np.all(finite):
        k = m.kernels(q, q, c)
        dk = m.kernels(q, q, c, deriv=True)
        return (sw * k + sb) / q, sw * dk
    asym = PiecewiseLinear(*m.act.slopes_at_infinity)
    cb, swb, sbb, qb = np.broadcast_arrays(c, sw, sb, q)
    fb = np.isfinite(qb)
    one = np.ones(int((~fb).sum()))
    norm = asym.proportional
    out_k = np.empty(cb.shape)
    out_d = np.empty(cb.shape)
    out_k[~fb] = asym.kernel(one, one, cb[~fb]) / norm
    out_d[~fb] = asym.dkernel(one, one, cb[~fb]) / norm
    if np.any(fb):
        out_k[fb], out_d[fb] = _corr_terms(m, cb[fb], swb[fb], sbb[fb], qb[fb])
    return out_k, out_d


@overload
def correlation_map(
    act: Activation | str, c: float, sigma_w2: float, sigma_b2: float, *, q: float | None = None
) -> float: ...
@overload
def correlation_map(
    act: Activation | str,
    c: ArrayLike,
    sigma_w2: ArrayLike,
    sigma_b2: ArrayLike,
    *,
    q: ArrayLike | None = None,
) -> float | Array: ...
def correlation_map(
    act: Activation | str,
    c: ArrayLike,
    sigma_w2: ArrayLike,
    sigma_b2: ArrayLike,
    *,
    q: ArrayLike | None = None,
) -> float | Array:
    """c ↦ (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q (Poole et al. 2016, eq. 5), vectorised.

    u₁ = √q z₁, u₂ = √q (c z₁ + √(1−c²) z₂); q defaults to the fixed point q* (Schoenholz et
    al. 2017, eq. 3), where c = 1 is always a fixed point.

    >>> round(correlation_map("relu", 0.0, 2.0, 0.0), 15) == round(1 / math.pi, 15)
    True
    """
    m = moments_of(_act(act))
    sw, sb = _variances(sigma_w2, sigma_b2)
    ca = gs._as_array("c", c, -1.0, 1.0, "a correlation in [-1, 1]")
    if q is None:
        qa = _solve(m, sw, sb, 1.0).q
    else:
        qa = gs._check_q("q", q)
        if np.any(qa == 0):
            raise GradmathError("`q` (=0) leaves the correlation undefined; it must be > 0.")
    if np.any(qa == 0):
        raise GradmathError(
            "q* = 0 here (σ_b² = 0 and the signal dies out): the correlation map is undefined."
        )
    ca, sw, sb, qa = broadcast(c=ca, sigma_w2=sw, sigma_b2=sb, q=qa)
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite_out(_corr_terms(m, ca, sw, sb, qa)[0], "correlation map")


def _c_star(
    m: ActivationMoments,
    sw: Array,
    sb: Array,
    q: Array,
    chi: Array,
    exact: OnePoint | None = None,
) -> tuple[Array, Array]:
    """(c*, χ_c) with χ_c = σ_w² ∫φ'(u₁)φ'(u₂) at c*, vectorised; c* = 1 where χ₁ ≤ 1.

    The one c* solver. Newton on the deflated E(c) = D(c)/(1 − c), D(c) = map(c) − c, instead of
    D: E removes the root c = 1, so E is positive at 0, tends to 1 − χ₁ < 0 as c → 1 and has
    the single simple root c* even next to the critical line, where D's two roots c* and 1
    merge and Newton on D slows to halving. E' = (D' + E)/(1 − c); D' = σ_w² ∫φ'(u₁)φ'(u₂) − 1
    (Price's theorem, Schoenholz et al. 2017, eq. 9). Start: the secant between
    E(0) = (σ_w² E[φ]² + σ_b²)/q* (a univariate integral) and 1 − χ₁; iterates are kept
    inside the bracket [lo, hi] where E changes sign (bisection when Newton leaves it). The
    last evaluation's slope is χ_c. ``exact``: the exact one-point moments at each point,
    if the caller has them where χ₁ > 1 and q* is finite (the points solved here).
    """
    c = np.ones_like(sw)
    chic = np.where(np.isfinite(q), chi, 1.0)  # q* = ∞: the map's slope at c = 1 is 1
    idx = np.flatnonzero((chi > 1) & np.isfinite(q))
    if idx.size == 0:
        return c, chic
    ker = m.kernel_at(q[idx], None if exact is None else OnePoint(*(x[idx] for x in exact)))
    pos = np.arange(idx.size)  # the unfinished points, as positions in idx
    s_w, s_b, qs = sw[idx], sb[idx], q[idx]
    # E(0) = (σ_w² E[φ]² + σ_b²)/q*; an E[φ]² at rounding level (odd φ) is exactly 0, and then
    # so is c* when there is no bias.
    mean2 = np.where(s_w * ker.mean2 <= 1e-28 * qs, 0.0, ker.mean2)
    e0 = np.maximum((s_w * mean2 + s_b) / qs, 0.0)
    zero = e0 == 0
    x = e0 / (e0 + chi[idx] - 1.0)
    lo, hi = np.zeros(idx.size), np.ones(idx.size)
    for _ in range(_MAX_ITER):
        k, dk = ker(x, pos)
        k, d = (s_w[pos] * k + s_b[pos]) / qs[pos], s_w[pos] * dk
        E = np.where(zero & (x == 0), 0.0, (k - x) / (1.0 - x))
        dE = (d - 1.0 + E) / (1.0 - x)
        lo, hi = np.where(E > 0, x, lo), np.where(E < 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(dE < 0, x - E / dE, np.nan)
        new = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))
        done = (np.abs(new - x) <= 1e-15) | (E == 0) | (hi - lo <= 1e-15) | (x == 0) & (E <= 0)
        c[idx[pos[done]]], chic[idx[pos[done]]] = x[done], d[done]
        keep = ~done
        pos, x, lo, hi, zero = pos[keep], new[keep], lo[keep], hi[keep], zero[keep]
        if pos.size == 0:
            return c, chic
    raise GradmathError(f"The correlation fixed point of {m.act!r} did not converge.", partial=c)


def correlation_fixed_point(
    act: Activation | str, sigma_w2: ArrayLike, sigma_b2: ArrayLike
) -> float | Array:
    """The stable fixed point c* of the correlation map in [0, 1] (Schoenholz et al. 2017, §3).

    c* = 1 in the ordered phase (χ₁ ≤ 1); in the chaotic phase the unique fixed point below 1
    (0 for odd φ without bias). Raises where q* = 0 (the correlation is undefined there).

    >>> correlation_fixed_point("tanh", 0.5, 0.1)
    1.0
    """
    m = moments_of(_act(act))
    sw, sb = _variances(sigma_w2, sigma_b2)
    s = _solve(m, sw, sb, 1.0)
    chi = sw * s.moments.dphi2
    if np.any((s.q == 0) & (chi > 1)):
        raise GradmathError("q* = 0 here: the correlation map is undefined.")
    return _out(_c_star(m, sw.ravel(), sb.ravel(), s.q.ravel(), chi.ravel())[0].reshape(sw.shape))


@dataclass(frozen=True)
class DepthScales:
    """Schoenholz et al. (2017), eqs. 6–9, at one (σ_w², σ_b²); ∞ where a scale diverges."""

    q_star: float
    c_star: float
    chi1: float
    slope_q: float  # χ₁ + σ_w² ∫φ''φ, the length map's slope at q* (Stein form)
    chi_c: float  # σ_w² ∫φ'(u₁)φ'(u₂) at c*
    xi_q: float
    xi_c: float


def _scatter(mask: NDArray[np.bool_], values: Array) -> Array:
    """An array of ``mask``'s shape with ``values`` where it is True, NaN elsewhere."""
    out = np.full(mask.shape, np.nan)
    out[mask] = values
    return out


def _xi(slope: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.where(slope >= 1, np.inf, -1.0 / np.log(np.maximum(slope, 1e-300)))


def depth_scales(act: Activation | str, sigma_w2: float, sigma_b2: float) -> DepthScales:
    """ξ_q and ξ_c (Schoenholz et al. 2017, eqs. 6–9) with the quantities they come from.

    ξ_q⁻¹ = −log(σ_w² ∫Dz z φ(√q* z) φ'(√q* z)/√q*) (the slope χ₁ + σ_w²∫φ''φ of eq. 7 in
    Stein's form); ξ_c⁻¹ = −log χ_c, χ_c = σ_w² ∫Dz₁Dz₂ φ'(u₁)φ'(u₂) at c* (eq. 9), which is
    χ₁ in the ordered phase. ξ_c = ∞ on the critical line χ₁ = 1. Raises when there is no
    finite q* (see :func:`fixed_point`).

    >>> ds = depth_scales("relu", 1.0, 0.5)
    >>> ds.q_star, ds.chi1, round(ds.xi_c, 12) == round(1 / math.log(2), 12)
    (1.0, 0.5, True)
    """
    a = _act(act)
    q = float(fixed_point(a, sigma_w2, sigma_b2))
    sw, sb = _variances(sigma_w2, sigma_b2)
    mo = moments_of(a)
    m = mo.exact(np.array([q]))
    chi = sw.reshape(1) * m.dphi2
    if q == 0 and chi[0] > 1:  # pragma: no cover - q* = 0 is never stable when chaotic
        raise GradmathError("q* = 0 with χ₁ > 1: no stable correlation fixed point.")
    c, chic = _c_star(mo, sw.reshape(1), sb.reshape(1), np.array([q]), chi)
    slope = sw.reshape(1) * m.slope
    return DepthScales(
        q, float(c[0]), float(chi[0]), float(slope[0]), float(chic[0]),
        float(_xi(slope)[0]), float(_xi(chic)[0]),
    )  # fmt: skip


# --------------------------------------------------------------------------- critical line


def critical_sigma_w2(act: Activation | str, sigma_b2: ArrayLike) -> float | Array:
    """σ_w² on the order/chaos boundary χ₁ = 1 for each σ_b² (Schoenholz et al. 2017, fig. 1).

    Parametrised by q* on the line: χ₁ = 1 and q* = L(q*) give σ_w² = 1/∫φ'(√q z)² and
    σ_b² = q − ∫φ(√q z)²/∫φ'(√q z)²; gradmath solves the second equation for q (bracketing
    on a log table, then Illinois regula falsi) and returns 1/∫φ'². At σ_b² = 0 and φ(0) = 0
    the line meets q = 0, so σ_w² = 2/(φ'(0+)² + φ'(0−)²) exactly: 1 for tanh, 2 for ReLU.
    ∞ where no σ_w² reaches χ₁ = 1 within q* ≤ 1e13.

    >>> critical_sigma_w2("tanh", 0.0)
    1.0
    >>> critical_sigma_w2("relu", [0.0, 0.3]).tolist()
    [2.0, 2.0]
    """
    mo = moments_of(_act(act))
    sb = gs._as_array("sigma_b2", sigma_b2, 0.0, math.inf, "finite and >= 0 (a variance)")
    flat = sb.ravel()
    c2 = None if mo.form is None else mo.form.proportional
    if c2 is not None:
        return _out(np.full(sb.shape, 1.0 / c2))
    lim = mo.limits
    h0 = -lim.phi0_2 / lim.d0  # h(0) = 0 − φ(0)²/d0
    t = np.arange(*_TABLE_LOG_RANGE, _TABLE_STEP)
    tq = np.exp(t)
    m = mo.exact(tq)
    h = tq - m.phi2 / m.dphi2
    out = np.full(flat.shape, np.inf)
    at0 = flat <= h0
    out[at0 & (flat == h0)] = 1.0 / lim.d0
    # First table node where h ≥ σ_b², i.e. h − σ_b² changes sign (h increases along the line).
    k, found = _first_passage(flat[:, None] - h[None, :], 0, np.ones(flat.size, dtype=bool))
    ok = ~at0 & found
    if np.any(ok):
        kk = k[ok]
        a_q = np.where(kk > 0, tq[np.maximum(kk - 1, 0)], 0.0)
        ha = np.where(kk > 0, h[np.maximum(kk - 1, 0)], h0)
        q = _illinois(mo, flat[ok], a_q, tq[kk], ha - flat[ok], h[kk] - flat[ok])
        out[ok] = 1.0 / mo.exact(q).dphi2
    return _out(out.reshape(sb.shape))


def _illinois(
    mo: ActivationMoments, target: Array, a: Array, b: Array, fa: Array, fb: Array
) -> Array:
    """Root of h(q) − target on [a, b] (fa ≤ 0 ≤ fb) by the Illinois method, vectorised."""
    a, b, fa, fb = a.copy(), b.copy(), fa.copy(), fb.copy()
    side = np.zeros(a.shape, dtype=int)
    for _ in range(200):
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(fb != fa, (a * fb - b * fa) / (fb - fa), 0.5 * (a + b))
        x = np.where((x > a) & (x < b), x, 0.5 * (a + b))
        m = mo.exact(x)
        fx = x - m.phi2 / m.dphi2 - target
        left = fx < 0
        a, fa = np.where(left, x, a), np.where(left, fx, fa)
        b, fb = np.where(left, b, x), np.where(left, fb, fx)
        # Illinois: halve the stale end's value when the same end moves twice.
        fb = np.where(left & (side == 1), 0.5 * fb, fb)
        fa = np.where(~left & (side == -1), 0.5 * fa, fa)
        side = np.where(left, 1, -1)
        if np.all((b - a <= 4e-16 * b) | (fx == 0)):
            return np.where(fx == 0, x, 0.5 * (a + b))
    return 0.5 * (a + b)


# --------------------------------------------------------------------------- phase diagram


@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """q*, χ₁ and ξ_c over a (σ_w², σ_b²) grid; 2-D arrays indexed [i_b, i_w].

    ``q_star`` is ∞ where the length map grows without bound (χ₁ = σ_w² lim ∫φ'² is then the
    per-layer gradient growth, while the correlation map's slope at c = 1 is 1, so c* = 1 and
    ξ_c = ∞: see :func:`correlation_map`); ``xi_c`` is ∞ on the critical line, and ``None``
    when not computed (``phase_diagram(..., depth_scale=False)``). ``critical_sigma_w2`` is
    over ``sigma_b2``.
    """

    activation: Activation
    sigma_w2: Array
    sigma_b2: Array
    q_star: Array
    chi1: Array
    xi_c: Array | None
    critical_sigma_w2: Array
    c_star: Array | None = None
    xi_q: Array | None = None


def phase_diagram(
    act: Activation | str,
    sigma_w2_grid: ArrayLike,
    sigma_b2_grid: ArrayLike,
    *,
    depth_scale: bool = True,
) -> PhaseDiagram:
    """The order/chaos phase diagram (Poole et al. 2016, fig. 2; Schoenholz et al. 2017, fig. 1).

    One vectorised solve over the whole grid: q* by table bracketing and Newton across all
    points at once (see :func:`fixed_point`), χ₁ and ξ_q from the same quadrature, c* and ξ_c
    (eq. 9) by vectorised Newton on the chaotic points (the bivariate integrals dominate the
    cost; ``depth_scale=False`` skips them), and the critical line.

    >>> pd = phase_diagram("relu", [1.0, 3.0], [0.0, 0.5])
    >>> pd.chi1.tolist(), pd.critical_sigma_w2.tolist()
    ([[0.5, 1.5], [0.5, 1.5]], [2.0, 2.0])
    """
    a = _act(act)
    sw1 = gs._as_array("sigma_w2_grid", sigma_w2_grid, 0.0, math.inf, "finite and >= 0")
    sb1 = gs._as_array("sigma_b2_grid", sigma_b2_grid, 0.0, math.inf, "finite and >= 0")
    if sw1.ndim != 1 or sb1.ndim != 1 or sw1.size == 0 or sb1.size == 0:
        raise GradmathError("`sigma_w2_grid` and `sigma_b2_grid` must be non-empty 1-D arrays.")
    sw, sb = np.meshgrid(sw1, sb1)
    m = moments_of(a)
    s = _solve(m, sw, sb, 1.0, fast=True)
    chi = sw * s.moments.dphi2
    xi_q = np.where(np.isfinite(s.q), _xi(sw * s.moments.slope), np.inf)
    c_star = xi_c = None
    if depth_scale:
        live = ~((s.q == 0) & (chi > 1))
        # One Newton step with the exact moments polishes the interpolated q* where c* is
        # needed (the table's 2e-13 would show in ξ_c next to the critical line).
        pol = live & (chi > 1) & np.isfinite(s.q)
        exact = None
        if np.any(pol):
            qp, swp, sbp = s.q[pol], sw[pol], sb[pol]
            e = m.exact(qp)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = (swp * e.phi2 + sbp - qp) / (swp * e.slope - 1.0)
            ok = np.abs(step) <= 1e-9 * qp
            q_star = s.q.copy()
            q_star[pol] = np.where(ok, qp - step, qp)
            # The exact moments at the polished q* without a second quadrature: the table's
            # error is smooth in q, so the table's change over the tiny step is the exact
            # change to rounding (the step is below 1e-9·q).
            moved = m.fast(q_star[pol])
            before = OnePoint(*(x[pol] for x in s.moments))
            at_pol = (x + (y - z) for x, y, z in zip(e, moved, before, strict=True))
            exact = OnePoint(*(_scatter(pol, v)[live] for v in at_pol))
            s = _Solved(q_star, s.moments)
        c, chic = _c_star(m, sw[live], sb[live], s.q[live], chi[live], exact)
        c_star, chi_c = np.ones_like(sw), chi.copy()
        c_star[live], chi_c[live] = c, chic
        xi_c = _xi(chi_c)
    crit = np.asarray(critical_sigma_w2(a, sb1), dtype=np.float64)
    for arr in (sw1, sb1, s.q, chi, xi_q, crit, c_star, xi_c):
        if arr is not None:
            arr.flags.writeable = False
    return PhaseDiagram(a, sw1, sb1, s.q, chi, xi_c, crit, c_star, xi_q)
