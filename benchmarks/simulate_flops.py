"""FLOP rate of numeric.simulate against a bare NumPy matmul of the same shapes, in one run.

Useful work per network and layer: the forward product x W^T and the backward product δa W,
2·batch·n_in·n_out FLOPs each (the weight gradient's statistic needs no third product). The
reference multiplies the same stacked shapes, (K, batch, n) @ (K, n, n), back to back with
the same arrays, so it is the best NumPy/BLAS can do here. The simulation also draws every
weight from its initializer, evaluates φ and φ' elementwise, and rescales. Per weight, one
draw costs ~11 ns (~22 ns for Keras' truncated normals) against 4·batch FLOPs of products, so
the RNG share falls like 1/batch; per activation element, φ and φ' cost ~1 ns (relu) to ~40 ns
(tanh in float64) against 4·width FLOPs, so that share falls like 1/width. The batch is
printed with every row: the issue's 70% target is met or not per (activation, width, batch).

    python benchmarks/simulate_flops.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gradmath import MLP
from gradmath.numeric import simulate


def _best(f, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    f()
    return min(_timed(f) for _ in range(repeats))


def _timed(f) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def bench(act: str, init: str, width: int, depth: int, batch: int, networks: int) -> dict:
    mlp = MLP.square(width, depth, activation=act, init=init)
    flops = 2 * (2 * batch * width * width) * depth * networks
    t_sim = _best(lambda: simulate(mlp, n_networks=networks, batch=batch, seed=0, progress=False))
    K = min(16, networks)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((K, batch, width))
    w = rng.standard_normal((K, width, width))
    out = np.empty_like(x)
    reps = 2 * depth * networks // K

    def bare() -> None:
        for r in range(reps):
            if r % 2:
                np.matmul(x, w, out=out)
            else:
                np.matmul(x, np.swapaxes(w, -1, -2), out=out)

    t_mm = _best(bare)
    g = np.random.Generator(np.random.SFC64(0))
    t_rng = _best(lambda: [g.standard_normal((width, width)) for _ in range(depth * networks)])
    return {
        "act": act,
        "width": width,
        "batch": batch,
        "sim_gflops": flops / t_sim / 1e9,
        "matmul_gflops": flops / t_mm / 1e9,
        "ratio": t_mm / t_sim,
        "rng_share": t_rng / t_sim,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small configuration")
    args = ap.parse_args()
    configs = (
        [("relu", "he_normal", 256, 64)]
        if args.quick
        else [
            (act, init, width, batch)
            for act, init in (("relu", "he_normal"), ("tanh", "glorot_normal"))
            for width in (256, 512)
            for batch in (64, 256, 1024)
        ]
    )
    print(
        f"{'act':>5} {'width':>5} {'batch':>5} {'sim GF/s':>9} {'matmul GF/s':>11} "
        f"{'sim/matmul':>10} {'RNG share':>9} {'>=70%':>5}"
    )
    for act, init, width, batch in configs:
        depth = 20
        networks = 16 if width * batch <= 256 * 256 else 4
        r = bench(act, init, width, depth, batch, networks)
        print(
            f"{act:>5} {width:>5} {batch:>5} {r['sim_gflops']:9.1f} {r['matmul_gflops']:11.1f} "
            f"{r['ratio']:10.0%} {r['rng_share']:9.0%} {'yes' if r['ratio'] >= 0.7 else 'no':>5}",
            flush=True,
        )


if __name__ == "__main__":
    main()
