"""Benchmark: Jacobian spectra (issue 14).

1. The full theory density of JJᵀ at depth 128 (target < 1 s): critical ReLU, hard-tanh and
   erf nets with Gaussian and orthogonal weights.
2. Sampled spectra at width 512, depth 64, 32 networks (``numeric.spectra.sample_spectra``),
   timed against a bare ``numpy.linalg.svd`` of the same 32 matrices in the same run (the SVD
   alone, then forming J and the SVD by hand: the floor gradmath can approach).

Run: python benchmarks/jacobian_spectra.py [--quick]
Timings on a shared machine are noisy: compare the ratios printed in one run.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from gradmath.meanfield.spectra import Jacobian, critical_jacobian, critical_network
from gradmath.numeric.spectra import sample_spectra
from gradmath.threads import pool


def theory(depth: int) -> None:
    critical_jacobian("erf", 0.25, depth=2, weights="gaussian").spectrum()  # imports, tables
    for act, q in (("relu", 1.0), ("hard_tanh", 0.25), ("erf", 0.25)):
        for weights in ("gaussian", "orthogonal"):
            jac = critical_jacobian(act, q, depth=depth, weights=weights)
            t = time.perf_counter()
            sp = jac.spectrum()
            dt = time.perf_counter() - t
            print(f"theory density depth {depth} {act:9s} {weights:10s} {dt:6.3f} s  "
                  f"{sp.s.size:4d} points  λ_max/m₁ = {sp.lambda_max:9.4g}  "
                  f"unresolved mass {sp.unresolved:.1e}")  # fmt: skip


def sampled(width: int, depth: int, n: int) -> None:
    net, input_q = critical_network("erf", 0.25, width=width, depth=depth, weights="orthogonal")
    t = time.perf_counter()
    sim = sample_spectra(net, n_networks=n, seed=0, input_q=input_q)
    t_gm = time.perf_counter() - t
    # The same matrices again, by hand: J = Π D W (one BLAS thread per network, as gradmath),
    # then the bare SVD of the 32 finished matrices.
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(n)]

    def svd(i: int) -> None:
        np.linalg.svd(mats[i], compute_uv=False)

    def product(i: int) -> None:
        j = np.eye(width)
        w = mats[i]
        for _ in range(depth):
            j = (np.tanh(w[:, :1]) * w) @ j
        np.linalg.svd(j, compute_uv=False)

    times = {}
    for name, fn in (("bare svd", svd), ("product + svd", product)):
        t = time.perf_counter()
        with pool(n) as ex:
            if ex is None:
                for i in range(n):
                    fn(i)
            else:
                list(ex.map(fn, range(n)))
        times[name] = time.perf_counter() - t
    print(f"sampled spectra width {width} depth {depth} {n} networks: {t_gm:.2f} s "
          f"(mean λ/m₁ = {sim.scaled(Jacobian.of(net, input_q).log_mean).mean():.4f})")  # fmt: skip
    for name, dt in times.items():
        print(f"  {name:14s} {dt:7.2f} s   gradmath / this = {t_gm / dt:6.2f}")


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    theory(32 if quick else 128)
    sampled(*((128, 16, 8) if quick else (512, 64, 32)))


if __name__ == "__main__":
    main()
