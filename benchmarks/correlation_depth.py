"""Benchmark: the default phase_diagram (with c* and ξ_c) on tanh grids, old solver and scipy.

Issue 16, item 1: 200 × 200 tanh grid (σ_w² ∈ [0.05, 4], σ_b² ∈ [0, 0.5]) with ξ_c in under 2 s,
40 × 40 under 0.2 s; c* and ξ_c within 1e-10 relative of the previous solver and of mpmath.

Three solvers of the same c* (the stable fixed point of the correlation map, Schoenholz et al.
2017, eq. 3) and χ_c = σ_w² E[φ'(u₁)φ'(u₂)] at c* (ξ_c = −1/log χ_c, eq. 9), on the same q*:

- gradmath: Mehler series, coefficients once per point (gradmath.meanfield.mehler);
- the previous solver (kept here as the reference, not in the package): the same deflated
  Newton, each step a 2-D product-rule quadrature (gradmath.meanfield.expect2);
- a scipy loop: brentq on scipy.integrate.dblquad, point by point.

The two slow ones are timed on random chaotic points and extrapolated to the grid (said so in
the output). mpmath references (25 digits; c* from Mehler's series with mpmath coefficients,
q* by mpmath.findroot) at points near the critical line. Timing ratios are from one run; the
machine may be loaded, so absolute times should be re-measured.

Run: python benchmarks/correlation_depth.py
"""

from __future__ import annotations

import math
import time

import mpmath as mp
import numpy as np
from scipy import integrate, optimize

import gradmath
from gradmath.meanfield import expect, expect2, phase_diagram

ACT = gradmath.activation("tanh")
SUBSET = 60  # chaotic points timed with the previous solver
SCIPY_POINTS = 3


def old_c_star(sw: np.ndarray, sb: np.ndarray, q: np.ndarray, chi: np.ndarray):
    """The previous solver: deflated Newton, every step two 2-D product-rule quadratures."""
    mean = expect(ACT, q, ACT.kinks)
    e0 = np.maximum((sw * mean * mean + sb) / q, 0.0)
    x = e0 / (e0 + chi - 1.0)
    lo, hi = np.zeros(q.size), np.ones(q.size)
    c, chic = np.ones(q.size), chi.copy()
    idx = np.arange(q.size)
    for _ in range(80):
        qs = q[idx]
        k = expect2(ACT, ACT, qs, qs, x, ACT.kinks)
        d = sw[idx] * expect2(ACT.deriv, ACT.deriv, qs, qs, x, ACT.kinks)
        m = (sw[idx] * k + sb[idx]) / qs
        E = (m - x) / (1.0 - x)
        dE = (d - 1.0 + E) / (1.0 - x)
        lo, hi = np.where(E > 0, x, lo), np.where(E < 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(dE < 0, x - E / dE, np.nan)
        new = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))
        done = (np.abs(new - x) <= 1e-15) | (E == 0) | (hi - lo <= 1e-15)
        c[idx[done]], chic[idx[done]] = x[done], d[done]
        idx, x, lo, hi = idx[~done], new[~done], lo[~done], hi[~done]
        if idx.size == 0:
            break
    return c, chic


def scipy_point(sw: float, sb: float, q: float) -> tuple[float, float]:
    """c* and χ_c for one point with scipy.integrate.dblquad inside brentq."""
    r = math.sqrt(q)

    def k2(c: float, f) -> float:
        s = math.sqrt(max(0.0, 1 - c * c))

        def g(z2: float, z1: float) -> float:
            w = math.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * math.pi)
            return f(r * z1) * f(r * (c * z1 + s * z2)) * w

        return integrate.dblquad(g, -9, 9, -9, 9, epsabs=0, epsrel=1e-11)[0]

    def sech2(u: float) -> float:
        return 1 / math.cosh(u) ** 2

    def gap(c: float) -> float:
        return (sw * k2(c, math.tanh) + sb) / q - c

    cs = optimize.brentq(gap, 0.0, 1 - 1e-9, xtol=1e-14) if gap(0.0) > 0 else 0.0
    return cs, sw * k2(cs, sech2)


def mp_reference(sw: float, sb: float, q0: float, c0: float, kmax: int) -> tuple[float, float]:
    """(c*, ξ_c) at 25 digits: q* by mpmath, c* from Mehler's series with mpmath coefficients."""
    mp.mp.dps = 25
    msw, msb = mp.mpf(sw), mp.mpf(sb)

    def e(f, q):
        return mp.quad(lambda z: f(mp.sqrt(q) * z) * mp.npdf(z), [-mp.inf, 0, mp.inf])

    q = mp.findroot(lambda q: msw * e(lambda u: mp.tanh(u) ** 2, q) + msb - q, mp.mpf(q0))
    s = mp.sqrt(q)
    he = [lambda z: mp.mpf(1), lambda z: z]
    coef = []
    for k in range(kmax + 1):
        pts = [-mp.inf, -1 / s, 0, 1 / s, mp.inf]

        def h(z, k=k):
            a, b = mp.mpf(1), z
            for j in range(1, k):
                a, b = b, z * b - j * a
            return a if k == 0 else b

        coef.append(mp.quad(lambda z, h=h: mp.tanh(s * z) * h(z) * mp.npdf(z), pts))
    del he
    r = [coef[k] ** 2 / mp.factorial(k) for k in range(kmax + 1)]
    c = mp.findroot(lambda c: (msw * sum(r[k] * c**k for k in range(kmax + 1)) + msb) / q - c, c0)
    chi = msw * sum(k * r[k] * c ** (k - 1) for k in range(1, kmax + 1)) / q
    return float(c), float(-1 / mp.log(chi))


def main() -> None:
    phase_diagram("tanh", [2.0, 3.0], [0.1, 0.2])  # imports, tables, the Hermite projector
    rng = np.random.default_rng(0)
    for n in (40, 200):
        sw1, sb1 = np.linspace(0.05, 4.0, n), np.linspace(0.0, 0.5, n)
        t = time.perf_counter()
        pd = phase_diagram("tanh", sw1, sb1)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        phase_diagram("tanh", sw1, sb1, depth_scale=False)
        base = time.perf_counter() - t
        sw, sb = np.meshgrid(sw1, sb1)
        chaos = np.flatnonzero((pd.chi1 > 1).ravel())
        pick = rng.choice(chaos, min(SUBSET, chaos.size), replace=False)
        q, chi = pd.q_star.ravel()[pick], pd.chi1.ravel()[pick]
        t = time.perf_counter()
        c_old, chic_old = old_c_star(sw.ravel()[pick], sb.ravel()[pick], q, chi)
        per_old = (time.perf_counter() - t) / pick.size
        old = base + per_old * chaos.size
        dc = np.abs(pd.c_star.ravel()[pick] - c_old)
        xi_old = -1 / np.log(chic_old)
        dx = np.abs(pd.xi_c.ravel()[pick] - xi_old) / xi_old
        print(f"{n}×{n} tanh, default phase_diagram (c*, ξ_c; {chaos.size} chaotic points): "
              f"{ours:.3f} s ({base:.3f} s of it without ξ_c)")  # fmt: skip
        print(f"  previous solver: {per_old * 1e3:.1f} ms per chaotic point (timed on "
              f"{pick.size}, extrapolated): {old:.1f} s, ratio {old / ours:.0f}×; "
              f"max |Δc*| {dc.max():.1e}, max relative Δξ_c {dx.max():.1e}")  # fmt: skip
    sample = pick[:SCIPY_POINTS]
    t = time.perf_counter()
    ref = [scipy_point(sw.ravel()[i], sb.ravel()[i], pd.q_star.ravel()[i]) for i in sample]
    per_scipy = (time.perf_counter() - t) / len(sample)
    dsc = max(abs(pd.c_star.ravel()[i] - r[0]) for i, r in zip(sample, ref, strict=True))
    print(f"scipy dblquad + brentq loop: {per_scipy:.1f} s per chaotic point (timed on "
          f"{len(sample)}), {per_scipy * chaos.size:.0f} s extrapolated to 200×200: "
          f"{per_scipy * chaos.size / ours:.0f}× slower; max |Δc*| {dsc:.1e}")  # fmt: skip
    # mpmath near the critical line (χ₁ − 1 from 1e-3 to 0.1), q* small enough for k ≤ 80.
    print("vs mpmath (25 digits):")
    for sw0, sb0, q0, c0 in ((1.467948717948718, 0.01282051282051282, 0.307, 0.988),
                             (1.1, 0.01, 0.06, 0.93), (1.02, 0.001, 0.03, 0.98)):  # fmt: skip
        c_ref, xi_ref = mp_reference(sw0, sb0, q0, c0, 80)
        one = phase_diagram("tanh", [sw0], [sb0])
        print(f"  σ_w² = {sw0:.4f}, σ_b² = {sb0}: χ₁ − 1 = {one.chi1[0, 0] - 1:.1e}, "
              f"c* = {c_ref:.12f} (rel. err {abs(one.c_star[0, 0] / c_ref - 1):.1e}), "
              f"ξ_c = {xi_ref:.6f} (rel. err {abs(one.xi_c[0, 0] / xi_ref - 1):.1e})")  # fmt: skip


if __name__ == "__main__":
    main()
