"""Benchmark: the O(1/width) prediction against the mean-field one at depth 10,000.

Target: the corrected prediction costs at most a few times the mean-field one (and depth
10,000 under a second). Ratios are measured in the same run; absolute times depend on load.

Run: python benchmarks/finite_width.py
"""

from __future__ import annotations

import time

import numpy as np

import gradmath
from gradmath import MLP
from gradmath.meanfield import predict

CASES = [
    ("tanh", "glorot_normal", 0.05),
    ("relu", gradmath.initializer("normal", sigma_w2=4.0), 0.0),  # explodes: log q ≈ 6931
    ("softsign", gradmath.initializer("normal", sigma_w2=0.5), 0.0),  # vanishes below 1e-24
]


def _best(f, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    predict(MLP.square(64, 3, activation="tanh"))  # imports
    for act, init, bias in CASES:
        net = MLP.square(4096, 10_000, activation=act, init=init, sigma_b2=bias)
        t_mf = _best(lambda net=net: predict(net))
        t_fw = _best(lambda net=net: predict(net, width_corrections="expansion"))
        fw = predict(net, width_corrections="expansion")
        finite = all(np.all(np.isfinite(a)) for a in (fw.log_q, fw.log_grad_q, fw.sd_log[:2]))
        print(f"depth 10,000 {act:5s} mean field {t_mf:.3f} s, O(1/n) {t_fw:.3f} s "
              f"(×{t_fw / t_mf:.1f}), finite: {finite}")  # fmt: skip


if __name__ == "__main__":
    main()
