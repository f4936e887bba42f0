"""One object per activation that answers every Gaussian-moment question the theory asks.

With z ~ N(0, 1), u = √q z and (u₁, u₂) as in :func:`gradmath.meanfield.gaussian.expect2`:

- E[φ(√q z)²] (Poole et al. 2016, eq. 3), E[φ'(√q z)²] (Schoenholz et al. 2017, eq. 5) and the
  slope d/dq E[φ(√q z)²] = E[z φ φ'(√q z)]/√q (Stein's lemma), also as logs so that
  depth-10,000 recursions stay finite;
- E[φ(√q z)] and E[φ(√q z)⁴] (the finite-width corrections need m₄);
- the kernels E[φ(u₁)φ(u₂)] and E[φ'(u₁)φ'(u₂)] (Poole et al. 2016, eq. 5; Schoenholz et al.
  2017, eqs. 3 and 9).

Where they come from, in this order: the activation's closed forms (``act.gaussian``:
linear, ReLU, leaky ReLU, abs, erf; :mod:`gradmath.closed_forms`); otherwise the quadrature
of :mod:`gradmath.meanfield.gaussian` for Q_LOW ≤ q ≤ Q_HIGH (relative error ≤ 1e-10 against
mpmath), with asymptotic forms outside read off the activation itself (its value and one-sided
slopes at 0, its slopes at ±∞):

- q < Q_LOW: E[φ²] = φ(0)² + q·d₀ + O(q^{3/2}·…), d₀ = (φ'(0+)² + φ'(0−)²)/2 (Taylor on
  each side of 0; when φ(0) ≠ 0 the higher terms are below 1e-12 relative), E[φ'²] = d₀;
- q > Q_HIGH: linear growth gives E[φ²] ∝ q and E[φ'²] → const; saturation gives E[φ²] →
  const and E[φ'²] ∝ q^{-1/2} (φ' lives on |u| = O(1), where the N(0, q) density is
  1/√(2πq)). Both are matched to the quadrature at Q_HIGH (relative error O(q^{-1/2})).

The scalar fast paths the sequential folds use (:meth:`ActivationMoments.phi2`, ``mean``,
``log_phi4``) and the phase diagram's vectorised :meth:`ActivationMoments.fast` read
piecewise-Chebyshev interpolants in log q built from the exact quadrature on first use
(:mod:`gradmath.meanfield._table`; error < 2e-13 in each logarithm). A moment object belongs to
one call: nothing is cached across calls.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.activations import Activation, activation
from gradmath.closed_forms import PiecewiseLinear
from gradmath.errors import broadcast
from gradmath.meanfield import gaussian as gs
from gradmath.meanfield._table import T_HI, T_LO, LogTable
from gradmath.meanfield.mehler import TERMS, HermiteSeries

__all__ = [
    "ActivationMoments",
    "dkernel",
    "kernel",
    "log_mean_dphi2",
    "log_mean_phi2",
    "mean_dphi2",
    "mean_phi2",
]

Array = NDArray[np.float64]
#: Largest truncation bound of the Mehler series accepted, relative to the kernel's scale.
KERNEL_TOL = 1e-13
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class OnePoint(NamedTuple):
    """E[φ(√q z)²], E[φ'(√q z)²] and d/dq E[φ(√q z)²] at an array of q."""

    phi2: Array
    dphi2: Array
    slope: Array


class _Limits(NamedTuple):
    phi0_2: float  # φ(0)²
    d0: float  # (φ'(0+)² + φ'(0−)²)/2 = lim_{q→0} E[φ'(√q z)²]
    unbounded: bool  # φ grows linearly (E[φ²] ∝ q) rather than saturating
    c2_inf: float  # (p∞² + n∞²)/2 = lim_{q→∞} E[φ'²] = lim E[φ²]/q
    phi2_hi: float  # E[φ²] at Q_HIGH
    dphi2_hi: float  # E[φ'²] at Q_HIGH


def _log_add(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))


class ActivationMoments:
    """The Gaussian moments and kernels of one activation (module docstring).

    ``phi2(log q)`` = log ∫Dz φ(√q z)² (scalar, a few µs), ``dphi2(log q)`` = log ∫Dz φ'(√q z)²
    (vectorised), ``mean(log q)`` = ∫Dz φ(√q z), ``log_phi4(log q)`` = log ∫Dz φ(√q z)⁴,
    ``kernel(log q, c)`` = E[φ(u₁)φ(u₂)] at q₁ = q₂ = q; :meth:`exact` and :meth:`fast` give
    the three one-point moments at arrays of q, :meth:`kernels` the bivariate ones.

    >>> m = ActivationMoments(activation("relu"))
    >>> round(math.exp(m.phi2(math.log(3.0))), 12)      # E[relu(√3 z)²] = 3/2
    1.5
    """

    def __init__(self, act: Activation) -> None:
        self.act = act
        self.form = act.gaussian
        self._lim: _Limits | None = None
        self._table: LogTable | None = None
        self._table2: LogTable | None = None

    # ------------------------------------------------------------------ building blocks

    def quad(self, q: Array) -> OnePoint:
        """The three one-point moments by quadrature on one shared rule (0 < q ≤ Q_HIGH)."""
        act = self.act

        def integrand(u: Array, w: Array, q: Array) -> list[Array]:
            phi, dphi = act(u), act.deriv(u)
            return [
                np.sum(phi * phi * w, axis=-1),
                np.sum(dphi * dphi * w, axis=-1),
                np.sum(u * phi * dphi * w, axis=-1) / q,
            ]

        return OnePoint(*gs._univariate(q, act.kinks, integrand, 3))

    @property
    def limits(self) -> _Limits:
        """What the asymptotic forms need (computed once per moment object)."""
        if self._lim is None:
            act = self.act
            d = act.slopes_at_zero
            p, n = act.slopes_at_infinity
            q_hi = np.array([gs.Q_HIGH])
            f = self.form
            hi = self.quad(q_hi) if f is None else OnePoint(f.phi2(q_hi), f.dphi2(q_hi), q_hi)
            self._lim = _Limits(
                act.value_at_zero**2,
                0.5 * (d[0] ** 2 + d[1] ** 2),
                not act.saturates,
                0.5 * (p * p + n * n),
                float(hi.phi2[0]),
                float(hi.dphi2[0]),
            )
        return self._lim

    def _log_outside(self, log_q: Array) -> tuple[Array, Array, Array]:
        """(log E[φ²], log E[φ'²], d log E[φ²]/d log q) for log q outside [T_LO, T_HI]."""
        lim = self.limits
        big = log_q > T_HI
        with np.errstate(divide="ignore", invalid="ignore"):
            a = math.log(lim.phi0_2) if lim.phi0_2 > 0 else -np.inf
            small_p = np.logaddexp(a, log_q + math.log(lim.d0))
            small_d = np.full_like(log_q, math.log(lim.d0))
            small_s = np.exp(log_q + math.log(lim.d0) - small_p) if lim.d0 > 0 else 0.0 * log_q
        # q = 0 exactly (log q = −∞, a dead signal): the limit of q·d0/(φ(0)² + q·d0).
        small_s = np.where(np.isneginf(log_q), 0.0 if lim.phi0_2 > 0 else 1.0, small_s)
        lp_hi, ld_hi = math.log(lim.phi2_hi), math.log(lim.dphi2_hi)
        if lim.unbounded:
            big_p, big_d, big_s = lp_hi + log_q - T_HI, np.full_like(log_q, ld_hi), 1.0
        else:
            big_p, big_d, big_s = np.full_like(log_q, lp_hi), ld_hi - 0.5 * (log_q - T_HI), 0.0
        return (
            np.where(big, big_p, small_p),
            np.where(big, big_d, small_d),
            np.where(big, big_s, small_s),
        )

    # ------------------------------------------------------------------ vectorised, exact

    def log_exact(self, log_q: Array) -> tuple[Array, Array]:
        """(log E[φ²], log E[φ'²]) at q = e^{log_q}, any finite log_q, without interpolation."""
        log_q = np.asarray(log_q, dtype=np.float64)
        if self.form is not None:
            return (
                np.asarray(self.form.log_phi2(log_q), dtype=np.float64),
                np.asarray(self.form.log_dphi2(log_q), dtype=np.float64),
            )
        mid = (log_q >= T_LO) & (log_q <= T_HI)
        lp, ld, _ = self._log_outside(log_q)
        if np.any(mid):
            m = self.quad(np.exp(log_q[mid]))
            with np.errstate(divide="ignore"):
                lp[mid], ld[mid] = np.log(m.phi2), np.log(m.dphi2)
        return lp, ld

    def exact(self, q: Array) -> OnePoint:
        """E[φ²], E[φ'²] and d/dq E[φ²] at every q ≥ 0 (q = ∞: the limits), no interpolation."""
        return self._one_point(np.asarray(q, dtype=np.float64), fast=False)

    def fast(self, q: Array) -> OnePoint:
        """:meth:`exact` with the interpolation table instead of the quadrature (error < 2e-13)."""
        return self._one_point(np.asarray(q, dtype=np.float64), fast=True)

    def _one_point(self, q: Array, fast: bool) -> OnePoint:
        finite = np.isfinite(q)
        pos = finite & (q > 0)
        qs = np.where(pos, q, 1.0)
        if self.form is not None:
            f = self.form
            m = OnePoint(*(np.asarray(g(qs), dtype=np.float64) for g in (f.phi2, f.dphi2, f.slope)))
        else:
            inside = (qs >= gs.Q_LOW) & (qs <= gs.Q_HIGH)
            if not fast and np.all(inside):
                m = self.quad(qs)
            else:
                t = np.log(qs)
                lp, ld, dl = self.log_fast(t) if fast else self._log_outside(t)
                if not fast and np.any(inside):
                    e = self.quad(qs[inside])
                    lp[inside], ld[inside] = np.log(e.phi2), np.log(e.dphi2)
                    dl[inside] = e.slope * qs[inside] / e.phi2
                p2 = np.exp(lp)
                m = OnePoint(p2, np.exp(ld), dl * p2 / qs)
        if np.all(pos):
            return m
        lim = self.limits
        zero = q == 0
        return OnePoint(
            np.where(pos, m.phi2, np.where(zero, lim.phi0_2, np.inf)),
            np.where(pos, m.dphi2, np.where(zero, lim.d0, lim.c2_inf)),
            np.where(pos, m.slope, np.where(zero, lim.d0, lim.c2_inf)),
        )

    def log_fast(self, t: Array) -> tuple[Array, Array, Array]:
        """(log E[φ²], log E[φ'²], d log E[φ²]/d log q) interpolated, any finite t."""
        inside = (t >= T_LO) & (t <= T_HI)
        lp, ld, dl = self._log_outside(t)
        if np.any(inside):
            if self._table is None:

                def fn(q: Array) -> Array:
                    m = self.quad(q)
                    return np.stack([np.log(m.phi2), np.log(m.dphi2), m.slope * q / m.phi2])

                self._table = LogTable(fn, 3)
            lp[inside], ld[inside], dl[inside] = self._table(t[inside])
        return lp, ld, dl

    def means(self, q: Array) -> Array:
        """E[φ(√q z)] at an array of q ≥ 0 (closed form or quadrature; q ≤ Q_HIGH)."""
        q = np.asarray(q, dtype=np.float64)
        if self.form is not None and (m := self.form.mean(q)) is not None:
            return np.asarray(m, dtype=np.float64)
        return gs.expect(self.act, q, self.act.kinks)

    # ------------------------------------------------------------------ the folds' API

    def phi2(self, log_q: float) -> float:
        """log E[φ(√q z)²] at q = e^{log_q} (a few µs: closed form or the table)."""
        if self.form is not None:
            return float(self.form.log_phi2(log_q))
        if T_LO <= log_q <= T_HI:
            if self._table is None:
                self.log_fast(np.array([log_q]))
            assert self._table is not None
            return self._table.first(log_q)
        # The scalar form of _log_outside's first output: this runs once per layer of a deep
        # fold, where the array version's set-up (errstate, full_like, where) cost 0.2 ms.
        lim = self.limits
        if log_q > T_HI:
            return math.log(lim.phi2_hi) + (log_q - T_HI if lim.unbounded else 0.0)
        a = math.log(lim.phi0_2) if lim.phi0_2 > 0 else -math.inf
        return _log_add(a, log_q + math.log(lim.d0)) if lim.d0 > 0 else a

    def dphi2(self, log_q: Array) -> Array:
        """log E[φ'(√q z)²] at q = e^{log_q}, vectorised."""
        log_q = np.asarray(log_q, dtype=np.float64)
        if self.form is not None:
            return np.asarray(self.form.log_dphi2(log_q), dtype=np.float64)
        return self.log_fast(log_q)[1]

    def _mean_phi4_table(self, t: float) -> tuple[float, float]:
        if self._table2 is None:
            act = self.act

            def fn(q: Array) -> Array:
                def integrand(u: Array, w: Array, q: Array) -> list[Array]:
                    phi = act(u)
                    return [np.sum(phi * w, axis=-1), np.sum(phi**4 * w, axis=-1)]

                m, m4 = gs._univariate(q, act.kinks, integrand, 2)
                with np.errstate(divide="ignore"):
                    return np.stack([m, np.log(m4)])

            self._table2 = LogTable(fn, 2)
        m, l4 = self._table2(np.array([t]))[:, 0]
        return float(m), float(l4)

    def mean(self, log_q: float) -> float:
        """E[φ(√q z)] at q = e^{log_q}: closed form, table (absolute error ~1e-13·max|E[φ]|),
        or the asymptotes φ(0) + √q(φ'(0+) − φ'(0−))/√(2π) (small q) and, matched at Q_HIGH,
        ∝ √q (linear growth) or const (saturation)."""
        if self.form is not None and (m := self.form.mean(math.exp(log_q))) is not None:
            return float(m)
        if T_LO <= log_q <= T_HI:
            return self._mean_phi4_table(log_q)[0]
        if log_q < T_LO:
            d = self.act.slopes_at_zero
            return self.act.value_at_zero + math.exp(0.5 * log_q) * (d[0] - d[1]) / _SQRT_2PI
        hi = self._mean_phi4_table(T_HI)[0]
        return hi * math.exp(0.5 * (log_q - T_HI)) if self.limits.unbounded else hi

    def log_phi4(self, log_q: float) -> float:
        """log E[φ(√q z)⁴] at q = e^{log_q}: closed form, table, or the asymptotes φ(0)⁴ +
        3q²(φ'(0+)⁴ + φ'(0−)⁴)/2 (small q) and, matched at Q_HIGH, ∝ q² or const (large q)."""
        if self.form is not None and (m4 := self.form.phi4(math.exp(log_q))) is not None:
            return math.log(float(m4))
        if T_LO <= log_q <= T_HI:
            return self._mean_phi4_table(log_q)[1]
        if log_q < T_LO:
            d = self.act.slopes_at_zero
            e0 = 1.5 * (d[0] ** 4 + d[1] ** 4)
            phi0 = abs(self.act.value_at_zero)
            a = 4.0 * math.log(phi0) if phi0 > 0 else -math.inf
            return _log_add(a, math.log(e0) + 2.0 * log_q) if e0 > 0 else a
        hi = self._mean_phi4_table(T_HI)[1]
        return hi + 2.0 * (log_q - T_HI) if self.limits.unbounded else hi

    def kernel(self, log_q: float, c: float) -> float:
        """E[φ(u₁)φ(u₂)] with E[u₁²] = E[u₂²] = q = e^{log_q}, correlation c.

        Outside [Q_LOW, Q_HIGH]: φ(0)² + 2φ(0)E[ψ] + K_ψ (small q, ψ the piecewise-linear
        germ of φ at 0), or the kernel at Q_HIGH scaled by q/Q_HIGH (linear growth) or held
        (saturation).
        """
        c_arr = np.array([c], dtype=np.float64)
        if self.form is not None or T_LO <= log_q <= T_HI:
            q = np.array([math.exp(log_q)])
            return float(self.kernels(q, q, c_arr)[0])
        if log_q < T_LO:
            germ = PiecewiseLinear(*self.act.slopes_at_zero)
            qs = math.exp(log_q)
            phi0 = self.act.value_at_zero
            return float(phi0**2 + 2 * phi0 * germ.mean(qs) + germ.kernel(qs, qs, c_arr)[0])
        hi = np.array([gs.Q_HIGH])
        k_hi = float(self.kernels(hi, hi, c_arr)[0])
        return k_hi * math.exp(log_q - T_HI) if self.limits.unbounded else k_hi

    # ------------------------------------------------------------------ bivariate

    def kernels(self, q1: Array, q2: Array, c: Array, deriv: bool = False) -> Array:
        """E[φ(u₁)φ(u₂)] (or with φ' when ``deriv``), vectorised over broadcast q₁, q₂, c.

        Closed form (``act.gaussian``), else the Mehler series of :mod:`~.mehler` where its
        truncation bound is below :data:`KERNEL_TOL` of the scale √(E[f(u₁)²]E[f(u₂)²]), else
        the product rule of :func:`~gradmath.meanfield.gaussian.expect2`.
        """
        q1, q2, c = broadcast(q1=q1, q2=q2, c=c)
        if self.form is not None:
            f = self.form.dkernel if deriv else self.form.kernel
            return np.asarray(f(q1, q2, c), dtype=np.float64)
        f1, f2, fc = q1.ravel(), q2.ravel(), c.ravel()
        uq, inv = np.unique(np.concatenate([f1, f2]), return_inverse=True)
        i, j = inv[: f1.size], inv[f1.size :]
        e = self.exact(uq)
        ref = e.dphi2 if deriv else e.phi2
        out = np.empty(f1.size)
        todo = np.arange(f1.size)
        for terms in TERMS:  # the short series, then the long one where it is not enough
            need = np.zeros(uq.size, dtype=bool)
            need[i[todo]] = need[j[todo]] = True
            ser = HermiteSeries(self.act, uq, e.phi2, e.dphi2, terms, only=need)
            val, dval, bound, dbound = ser.kernel(ser, i[todo], j[todo], fc[todo])
            v, b = (dval, dbound) if deriv else (val, bound)
            good = b <= KERNEL_TOL * np.sqrt(ref[i[todo]] * ref[j[todo]])
            out[todo[good]] = v[good]
            todo = todo[~good]
            if todo.size == 0:
                return out.reshape(q1.shape)
        fn = self.act.deriv if deriv else self.act
        out[todo] = gs.expect2(fn, fn, f1[todo], f2[todo], fc[todo], self.act.kinks)
        return out.reshape(q1.shape)

    def series(
        self, q: Array, terms: int = TERMS[0], exact: OnePoint | None = None
    ) -> HermiteSeries:
        """The Hermite coefficients of φ(√q z) at an array of q (:mod:`~.mehler`).

        ``exact``: :meth:`exact` at the same q when the caller already has it.
        """
        q = np.asarray(q, dtype=np.float64)
        e = self.exact(q) if exact is None else exact
        return HermiteSeries(self.act, q, e.phi2, e.dphi2, terms)

    def kernel_at(self, q: Array, exact: OnePoint | None = None) -> KernelAt:
        """The kernels at q₁ = q₂ = q for a fixed array of q, evaluated at many c (Newton).

        ``exact``: :meth:`exact` at the same q when the caller already has it.
        """
        return KernelAt(self, np.asarray(q, dtype=np.float64), exact)


class KernelAt:
    """E[φ(u₁)φ(u₂)] and E[φ'(u₁)φ'(u₂)] with q₁ = q₂ = q fixed, as functions of c.

    ``mean2`` = E[φ(√q z)]² (the kernel at c = 0). Mehler series with coefficients computed
    once; the product rule at the points and c where the series' bound is not small enough.
    """

    def __init__(self, m: ActivationMoments, q: Array, exact: OnePoint | None = None) -> None:
        self.m, self.q = m, q
        self.series = None if m.form is not None else m.series(q, exact=exact)
        self.long: HermiteSeries | None = None  # the long series, where the short one failed
        if self.series is not None and np.all(self.series.ok):
            self.mean2 = self.series.a[0] ** 2
        else:
            self.mean2 = m.means(q) ** 2

    def __call__(self, c: Array, sel: NDArray[np.intp]) -> tuple[Array, Array]:
        """(K(c), K'(c)) at the points ``sel`` (indices into q), c of the same length."""
        q, m = self.q[sel], self.m
        if self.series is None:
            return m.kernels(q, q, c), m.kernels(q, q, c, deriv=True)
        short = self.series
        val, dval = np.empty(sel.size), np.empty(sel.size)
        todo = np.arange(sel.size)
        for tier in range(len(TERMS)):
            if tier == 0:
                ser = short
            else:
                need = np.zeros(self.q.size, dtype=bool)
                need[sel[todo]] = True
                if self.long is None or np.any(need & ~self.long.ok & short.ok):
                    if self.long is not None:
                        need |= self.long.ok
                    self.long = HermiteSeries(
                        m.act, self.q, short.phi2, short.dphi2, TERMS[tier], only=need
                    )
                ser = self.long
            s = sel[todo]
            v, dv, bound, dbound = ser.kernel(ser, s, s, c[todo])
            good = (bound <= KERNEL_TOL * ser.phi2[s]) & (dbound <= KERNEL_TOL * ser.dphi2[s])
            val[todo[good]], dval[todo[good]] = v[good], dv[good]
            todo = todo[~good]
            if todo.size == 0:
                return val, dval
        act, qb, cb = m.act, q[todo], c[todo]
        val[todo] = gs.expect2(act, act, qb, qb, cb, act.kinks)
        dval[todo] = gs.expect2(act.deriv, act.deriv, qb, qb, cb, act.kinks)
        return val, dval


# --------------------------------------------------------------------------- public functions


@functools.lru_cache(maxsize=64)
def moments_of(act: Activation) -> ActivationMoments:
    """The process's one moment object for ``act`` (equal activations share it), so its tables
    and Hermite coefficients are built once, not on every call of a map or a phase diagram."""
    return ActivationMoments(act)


def _moments(act: Activation | str) -> ActivationMoments:
    return moments_of(act if isinstance(act, Activation) else activation(act))


def _out(x: Array) -> float | Array:
    return float(x) if x.ndim == 0 else x


@overload
def mean_phi2(act: Activation | str, q: float) -> float: ...
@overload
def mean_phi2(act: Activation | str, q: ArrayLike) -> float | Array: ...
def mean_phi2(act: Activation | str, q: ArrayLike) -> float | Array:
    """E[φ(√q z)²], the integral in the length map (Poole et al. 2016, eq. 3), vectorised.

    Closed forms: linear q, ReLU q/2, leaky ReLU q(1+a²)/2, abs q, erf (2/π) arcsin(2q/(1+2q))
    (Williams 1997). Otherwise quadrature for Q_LOW ≤ q ≤ Q_HIGH and asymptotics outside (module
    docstring). q = 0 gives φ(0)².

    >>> mean_phi2("relu", 3.0)
    1.5
    """
    m = _moments(act)
    return _out(m.exact(gs._check_q("q", q)).phi2)


@overload
def mean_dphi2(act: Activation | str, q: float) -> float: ...
@overload
def mean_dphi2(act: Activation | str, q: ArrayLike) -> float | Array: ...
def mean_dphi2(act: Activation | str, q: ArrayLike) -> float | Array:
    """E[φ'(√q z)²], the integral in χ₁ (Schoenholz et al. 2017, eq. 5), vectorised.

    Closed forms: linear 1, ReLU 1/2, leaky ReLU (1+a²)/2, abs 1, erf (4/π)/√(1+4q). Otherwise
    as :func:`mean_phi2`: below Q_LOW the limit (φ'(0+)² + φ'(0−)²)/2 (one-sided derivatives, so
    relu'(0) = 0 does not matter), above Q_HIGH const (linear growth) or ∝ q^{-1/2} (saturation).

    >>> mean_dphi2("relu", 7.0)
    0.5
    """
    m = _moments(act)
    return _out(m.exact(gs._check_q("q", q)).dphi2)


@overload
def log_mean_phi2(act: Activation | str, log_q: float) -> float: ...
@overload
def log_mean_phi2(act: Activation | str, log_q: ArrayLike) -> float | Array: ...
def log_mean_phi2(act: Activation | str, log_q: ArrayLike) -> float | Array:
    """log E[φ(√q z)²] at q = e^{log_q}, finite for any finite ``log_q`` (see :func:`mean_phi2`).

    >>> log_mean_phi2("relu", 6931.0) == 6931.0 - math.log(2)
    True
    """
    m = _moments(act)
    return _out(m.log_exact(gs._as_array("log_q", log_q, -math.inf, math.inf, "finite"))[0])


@overload
def log_mean_dphi2(act: Activation | str, log_q: float) -> float: ...
@overload
def log_mean_dphi2(act: Activation | str, log_q: ArrayLike) -> float | Array: ...
def log_mean_dphi2(act: Activation | str, log_q: ArrayLike) -> float | Array:
    """log E[φ'(√q z)²] at q = e^{log_q}, finite for every finite ``log_q``."""
    m = _moments(act)
    return _out(m.log_exact(gs._as_array("log_q", log_q, -math.inf, math.inf, "finite"))[1])


def _kernel(
    act: Activation | str, q1: ArrayLike, q2: ArrayLike, c: ArrayLike, deriv: bool
) -> Array:
    m = _moments(act)
    a1, a2 = gs._check_q("q1", q1), gs._check_q("q2", q2)
    ca = gs._as_array("c", c, -1.0, 1.0, "a correlation in [-1, 1]")
    return m.kernels(a1, a2, ca, deriv)


def kernel(act: Activation | str, q1: ArrayLike, q2: ArrayLike, c: ArrayLike) -> Array:
    """E[φ(u₁)φ(u₂)] for the activation ``act`` (closed form where one exists, else quadrature).

    u₁, u₂ as in :func:`gradmath.meanfield.gaussian.expect2`. Closed forms (``act.gaussian``):
    linear √(q₁q₂)c; ReLU, leaky ReLU and abs by the arc-cosine kernel (Cho & Saul 2009); erf
    by the arcsin kernel (Williams 1997).

    >>> from gradmath import activation
    >>> round(float(kernel(activation("relu"), 1.0, 1.0, 0.0)), 15) == round(1 / (2 * math.pi), 15)
    True
    """
    return _kernel(act, q1, q2, c, deriv=False)


def dkernel(act: Activation | str, q1: ArrayLike, q2: ArrayLike, c: ArrayLike) -> Array:
    """E[φ'(u₁)φ'(u₂)] (closed form where one exists, else quadrature); see :func:`kernel`.

    The slope of the correlation map (Price's theorem; Schoenholz et al. 2017, eq. 9).
    """
    return _kernel(act, q1, q2, c, deriv=True)
