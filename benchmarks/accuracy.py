"""Accuracy of the mean-field engine against independent references, as quoted in the README.

Prints, for every registered activation:

- the worst relative error of E[φ(√q z)²] and E[φ'(√q z)²] (``meanfield.mean_phi2`` /
  ``mean_dphi2``: closed forms where the activation has them, quadrature otherwise) against
  mpmath at 30 digits, q from 1e-6 to 1e6;
- the worst relative fixed-point residual |L(q*) − q*| / q* of ``meanfield.fixed_point`` over a
  σ_w² × σ_b² grid where q* exists, with L evaluated by mpmath (so the residual is measured
  against the exact length map, not the engine's own).

    python benchmarks/accuracy.py [--points 9]

The tests hold the same comparisons at 1e-10 (tests/meanfield/test_gaussian.py); this script
reports the actual figures.
"""

from __future__ import annotations

import argparse
import math

import mpmath as mp
import numpy as np
import sympy as sp

import gradmath
from gradmath import GradmathError
from gradmath import meanfield as mf


def _mp_functions(act: gradmath.Activation) -> tuple[object, object]:
    z = act.symbol()
    return sp.lambdify(z, act.expr, "mpmath"), sp.lambdify(z, sp.diff(act.expr, z), "mpmath")


def _mp_expect(fun: object, q: float, kinks: tuple[float, ...]) -> mp.mpf:
    """E[fun(√q z)²] by mpmath.quad, split at the kinks and around |u| ~ 1."""
    s = mp.sqrt(mp.mpf(q))
    pts = {mp.mpf(0)} | {mp.mpf(k) / s for k in kinks}
    for j in range(6):
        t = mp.mpf(4) ** j / s
        if t < 12:
            pts |= {t, -t}
    return mp.quad(lambda z: fun(s * z) ** 2 * mp.npdf(z), [-mp.inf, *sorted(pts), mp.inf])  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=9, help="q values per activation (log grid)")
    args = ap.parse_args()
    mp.mp.dps = 30
    qs = np.logspace(-6, 6, args.points)
    worst_moment = worst_fixed = 0.0
    print(f"{'activation':12s} {'E[φ²] rel err':>14s} {'E[φ′²] rel err':>15s} {'q* residual':>12s}")
    for name in gradmath.activations():
        act = gradmath.activation(name)
        f, d = _mp_functions(act)
        got_f, got_d = mf.mean_phi2(act, qs), mf.mean_dphi2(act, qs)
        ef = max(abs(got_f[i] / float(_mp_expect(f, q, act.kinks)) - 1) for i, q in enumerate(qs))
        ed = max(abs(got_d[i] / float(_mp_expect(d, q, act.kinks)) - 1) for i, q in enumerate(qs))
        res = 0.0
        for sw2 in (0.5, 1.0, 1.5, 2.0):
            for sb2 in (0.01, 0.1):
                try:
                    qstar = float(mf.fixed_point(act, sw2, sb2))
                except GradmathError:  # no fixed point (the map grows without bound)
                    continue
                if not math.isfinite(qstar) or qstar <= 0:
                    continue
                exact = sw2 * _mp_expect(f, qstar, act.kinks) + sb2
                res = max(res, abs(float(exact) - qstar) / qstar)
        worst_moment = max(worst_moment, ef, ed)
        worst_fixed = max(worst_fixed, res)
        print(f"{name:12s} {ef:14.1e} {ed:15.1e} {res:12.1e}")
    print(f"worst moment error {worst_moment:.1e}; worst fixed-point residual {worst_fixed:.1e}")


if __name__ == "__main__":
    main()
