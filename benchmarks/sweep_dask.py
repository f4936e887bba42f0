"""A validation sweep on a Dask LocalCluster of 1 worker against 2 workers (and in-process).

The same cells (``gradmath.commands.sweep.validate_cell``: predict + simulate + compare per
activation) run in this process, then on a local cluster of one and of two single-threaded
worker processes; the script prints the wall times, the speed-up of 2 workers over 1 (at most
the number of free cores) and checks that all three runs gave bit-identical z-scores.

    python benchmarks/sweep_dask.py [--width 256] [--depth 20] [--networks 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gradmath import sweep
from gradmath.commands.sweep import validate_cell

ACTS = ("tanh", "relu", "gelu", "sigmoid", "selu", "softsign")


def main() -> None:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--networks", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    cases = [
        dict(activation=a, init="glorot_normal", depth=args.depth, width=args.width,
             sigma_b2=0.05, networks=args.networks, batch=args.batch, seed=s)
        for a, s in zip(ACTS, sweep.seeds(0, len(ACTS)), strict=True)
    ]  # fmt: skip
    t = time.perf_counter()
    local = sweep.run(validate_cell, cases, workers=0)
    times = {"in process": time.perf_counter() - t}
    for n in (1, 2):
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            sweep.run(validate_cell, cases[:n], scheduler=client)  # warm the workers' imports
            t = time.perf_counter()
            got = sweep.run(validate_cell, cases, scheduler=client)
            times[f"{n} Dask worker{'s' * (n > 1)}"] = time.perf_counter() - t
        same = all(np.array_equal(a, b) for a, b in zip(local, got, strict=True))
        assert same, f"results on {n} workers differ from the in-process run"
    print(f"{len(cases)} cells, width {args.width}, depth {args.depth}, {args.networks} networks")
    for k, v in times.items():
        print(f"{k:<16} {v:7.2f} s")
    print(f"2 workers vs 1: {times['1 Dask worker'] / times['2 Dask workers']:.2f}× faster; "
          "z-scores bit-identical in all three runs")  # fmt: skip


if __name__ == "__main__":
    main()
