"""Peak memory of a depth-10,000 simulation: width 256, batch 64 (target: < 2 GiB).

Without checkpointing the backward pass would need every layer's weights and pre-activations:
10,000 × (256² + 64·256) × 8 bytes ≈ 6.6 GB per network. numeric.simulate keeps segment entry
states only and recomputes each segment before its backward pass (see its module docstring).
Peak traced by tracemalloc (NumPy reports its buffers to it) and the process's max RSS.

    python benchmarks/simulate_memory.py [--depth 10000] [--networks 2]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from gradmath import MLP
from gradmath.numeric import simulate
from gradmath.numeric.simulation import memory_plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--networks", type=int, default=2)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--init", default="he_normal")
    args = ap.parse_args()
    mlp = MLP.square(args.width, args.depth, activation=args.activation, init=args.init)
    tracemalloc.start()
    t = time.perf_counter()
    p = simulate(mlp, n_networks=args.networks, batch=args.batch, seed=0)
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(
        f"depth {args.depth} × width {args.width} × batch {args.batch}, "
        f"{args.networks} networks, {args.activation}/{args.init}"
    )
    _, segment = memory_plan(mlp, batch=args.batch, n_networks=args.networks)
    print(f"segment length {segment}, time {elapsed:.1f} s")
    print(f"peak traced {peak / 2**30:.3f} GiB, max RSS {rss / 2**30:.3f} GiB (target < 2 GiB)")
    print(
        f"log q: layer 1 {p.log_q[0]:.3f}, layer L {p.log_q[-1]:.3f}; "
        f"log q̃: layer 1 {p.log_grad_q[0]:.3f} (all finite: "
        f"{bool(np.all(np.isfinite(p.log_grad_q)))})"
    )


if __name__ == "__main__":
    main()
