"""Benchmark: meanfield.predict at depth 10,000 (target < 0.5 s), finite logs throughout.

Run: python benchmarks/predict_depth.py
"""

from __future__ import annotations

import time

import numpy as np

import gradmath
from gradmath import MLP
from gradmath.meanfield import predict

CASES = [
    ("tanh", "glorot_normal", 0.05),
    ("tanh", gradmath.initializer("normal", sigma_w2=1.0), 0.0),  # critical: q^l ~ 1/l
    ("relu", gradmath.initializer("normal", sigma_w2=4.0), 0.0),  # explodes: log q ≈ 6931
    ("gelu", "he_normal", 0.0),
    ("softsign", gradmath.initializer("normal", sigma_w2=0.5), 0.0),  # vanishes below 1e-24
]


def main() -> None:
    predict(MLP.square(64, 3, activation="tanh"))  # imports
    for act, init, bias in CASES:
        net = MLP.square(256, 10_000, activation=act, init=init, sigma_b2=bias)
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            p = predict(net)
            best = min(best, time.perf_counter() - t)
        finite = all(np.all(np.isfinite(a)) for a in (p.log_q, p.log_grad_q, p.log_wgrad_q))
        name = init if isinstance(init, str) else f"σ_w²={init.params['sigma_w2']}"
        print(f"depth 10,000 {act:9s} {name:14s} σ_b²={bias:<5g} {best:.3f} s  "
              f"log q^L = {p.log_q[-1]:10.4f}  log ratio = {p.log_first_last_ratio:10.4f}  "
              f"finite: {finite}")  # fmt: skip


if __name__ == "__main__":
    main()
