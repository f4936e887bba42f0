"""Benchmark: Jacobian spectra (issue 14).

1. The full theory density of JJᵀ at depth 128 (target < 1 s each): critical ReLU, hard-tanh
   and erf nets with Gaussian and orthogonal weights (``Jacobian.spectrum``).
2. Sampled spectra at width 512, depth 64, 32 networks (``numeric.spectra.sample_spectra`` of a
   ``critical_network``), against a bare ``numpy.linalg.svd`` of the *same* 32 matrices in the
   same run: the matrices are formed again with the public ``jacobian`` from the same
   generators (checked: their eigenvalues equal the sampled ones), then only decomposed.

Run: python benchmarks/jacobian_spectra.py [--quick]
Timings on a shared machine are noisy: compare the ratios printed in one run.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from gradmath.meanfield.spectra import Jacobian, critical_jacobian, critical_network
from gradmath.numeric.spectra import jacobian, sample_spectra
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
                  f"unresolved mass {sp.unresolved:.1e}, grid error ≈ {sp.error:.0e}")  # fmt: skip


def _run(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    with pool(n) as ex:  # as sample_spectra: one network per thread, one BLAS thread each
        if ex is None:
            for i in range(n):
                fn(i)
        else:
            list(ex.map(fn, range(n)))
    return time.perf_counter() - t


def sampled(width: int, depth: int, n: int) -> None:
    net, input_q = critical_network("erf", 0.25, width=width, depth=depth, weights="orthogonal")
    t = time.perf_counter()
    sim = sample_spectra(net, n_networks=n, seed=0, input_q=input_q)
    t_gm = time.perf_counter() - t

    # The same matrices: sample_spectra's generators (SeedSequence(seed).spawn(n); the input
    # from the first child of each network's sequence).
    children = np.random.SeedSequence(0).spawn(n)
    mats: list[np.ndarray] = [np.empty(0)] * n

    def form(i: int) -> None:
        x = np.random.default_rng(children[i].spawn(1)[0]).standard_normal(width)
        mats[i] = jacobian(net, np.random.default_rng(children[i]), x * math.sqrt(input_q))[0]

    def svd(i: int) -> None:
        np.linalg.svd(mats[i], compute_uv=False)

    t_form = _run(n, form)
    t_svd = _run(n, svd)
    eig = np.sort(np.linalg.svd(mats[0], compute_uv=False) ** 2)
    assert np.allclose(eig, sim.eigenvalues[0], rtol=1e-10, atol=1e-14), "not the same matrices"
    unit = Jacobian.of(net, input_q).log_mean
    print(f"sampled spectra width {width} depth {depth} {n} networks: sample_spectra "
          f"{t_gm:.2f} s (mean λ/m₁ = {sim.scaled(unit).mean():.4f})")  # fmt: skip
    print(f"  bare numpy.linalg.svd of the same {n} matrices {t_svd:7.2f} s   "
          f"sample_spectra / svd = {t_gm / t_svd:6.2f}")  # fmt: skip
    print(f"  forming them again (jacobian)  {t_form:7.2f} s   "
          f"sample_spectra / (form + svd) = {t_gm / (t_form + t_svd):6.2f}")  # fmt: skip


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    theory(32 if quick else 128)
    sampled(*((128, 16, 8) if quick else (512, 64, 32)))


if __name__ == "__main__":
    main()
