"""Benchmark: a 200 × 200 (σ_w², σ_b²) phase diagram for tanh (q* and χ₁ at every point).

Target (issue 3): under 1 s on 2 cores. The comparison is the straightforward alternative, a
loop over grid points that solves q* with scipy.optimize.brentq on scipy.integrate.quad
integrals; it is timed on a random subset of points and extrapolated to the full grid (said so
in the output). Also reports the cost of ξ_c, which needs a bivariate fixed-point solve per chaotic
point (``--full``: time it on the whole 200 × 200 grid).

Run: python benchmarks/phase_diagram.py [--full]
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
from scipy import integrate, optimize

from gradmath.meanfield import chi1, depth_scales, fixed_point, length_map, phase_diagram

N = 200
SW = np.linspace(0.05, 4.0, N)
SB = np.linspace(0.0, 0.5, N)
FULL_XI = "--full" in sys.argv


def quad_point(sw: float, sb: float) -> tuple[float, float]:
    """q* and χ₁ for one point with scipy quad + brentq (the straightforward way)."""

    def gauss(f):
        def g(z: float) -> float:
            return f(z) * math.exp(-z * z / 2)

        val = integrate.quad(g, -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
        return val / math.sqrt(2 * math.pi)

    def d(q: float) -> float:
        return sw * gauss(lambda z: math.tanh(math.sqrt(q) * z) ** 2) + sb - q

    hi = sw + sb + 1.0
    q = 0.0 if d(1e-300) <= 0 else optimize.brentq(d, 1e-300, hi, xtol=1e-15, rtol=1e-14)
    return q, sw * gauss(lambda z: (1 - math.tanh(math.sqrt(q) * z) ** 2) ** 2)


def main() -> None:
    phase_diagram("tanh", SW[:5], SB[:5], depth_scale=False)  # import and warm-up
    t = time.perf_counter()
    pd = phase_diagram("tanh", SW, SB, depth_scale=False)
    ours = time.perf_counter() - t
    print(f"gradmath phase_diagram, {N}×{N} tanh (q*, χ₁, ξ_q, critical line): {ours:.3f} s")

    rng = np.random.default_rng(0)
    ib, iw = rng.integers(0, N, 40), rng.integers(0, N, 40)
    t = time.perf_counter()
    ref = [quad_point(SW[j], SB[i]) for i, j in zip(ib, iw, strict=True)]
    per_point = (time.perf_counter() - t) / len(ib)
    loop = per_point * N * N
    print(f"scipy quad + brentq loop: {per_point * 1e3:.1f} ms/point, timed on {len(ib)} random "
          f"points and extrapolated to {N * N}: {loop:.0f} s")  # fmt: skip
    print(f"speed-up: {loop / ours:.0f}×")
    rq = np.array([r[0] for r in ref])
    rc = np.array([r[1] for r in ref])
    dq = np.max(np.abs(pd.q_star[ib, iw] - rq) / np.maximum(rq, 1e-300))
    dc = np.max(np.abs(pd.chi1[ib, iw] - rc) / rc)
    print(f"agreement with the quad loop on those points: q* {dq:.1e}, χ₁ {dc:.1e} (relative)")
    exact_q = fixed_point("tanh", SW[iw], SB[ib])
    exact_c = chi1("tanh", SW[iw], SB[ib])
    res = np.abs(length_map("tanh", pd.q_star, SW[None, :], SB[:, None]) - pd.q_star)
    dq = np.max(np.abs(pd.q_star[ib, iw] - exact_q) / np.maximum(exact_q, 1e-300))
    dc = np.max(np.abs(pd.chi1[ib, iw] - exact_c) / exact_c)
    worst = np.max(res / np.maximum(pd.q_star, 1e-300))
    print(f"vs gradmath's direct-quadrature solver: q* {dq:.1e}, χ₁ {dc:.1e} (relative); "
          f"max fixed-point residual |L(q*) − q*|/q* over the grid {worst:.1e}")  # fmt: skip

    sw, sb = np.linspace(0.05, 4.0, 20), np.linspace(0.0, 0.5, 20)
    t = time.perf_counter()
    small = phase_diagram("tanh", sw, sb)
    dt = time.perf_counter() - t
    chaotic = int(np.sum(small.chi1 > 1))
    print(
        f"with ξ_c: 20×20 grid in {dt:.2f} s ({chaotic} chaotic points, c* by "
        "vectorised Newton on the deflated correlation map; ordered: closed form −1/log χ₁)"
    )
    iw, ib = np.arange(0, 20, 3), np.arange(0, 20, 4)
    t = time.perf_counter()
    ref = np.array(
        [[depth_scales("tanh", float(sw[j]), float(sb[i])).xi_c for j in iw] for i in ib]
    )
    per = (time.perf_counter() - t) / ref.size
    fin = np.isfinite(ref)
    got = small.xi_c[np.ix_(ib, iw)]
    assert np.array_equal(np.isfinite(got), fin)
    print(
        f"vs depth_scales point by point ({per * 1e3:.0f} ms/point on {ref.size} points): "
        f"max relative ξ_c difference {np.max(np.abs(got[fin] - ref[fin]) / ref[fin]):.1e}"
    )
    if FULL_XI:
        t = time.perf_counter()
        big = phase_diagram("tanh", SW, SB)
        dt = time.perf_counter() - t
        n = int(np.sum(big.chi1 > 1))
        print(f"with ξ_c: {N}×{N} tanh grid in {dt:.1f} s ({n} chaotic points, "
              f"{dt / n * 1e3:.1f} ms each)")  # fmt: skip
    else:
        est = dt / max(chaotic, 1) * np.sum(pd.chi1 > 1)
        print(
            f"with ξ_c: {N}×{N} tanh grid ≈ {est:.0f} s extrapolated from the 20×20 cost per "
            "chaotic point (run with --full to time it)"
        )


if __name__ == "__main__":
    main()
