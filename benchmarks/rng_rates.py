"""Which generator draws Gaussian weights fastest here, per dtype, and what the extras cost.

Prints ns per normal (best of a few rounds, one run) for:

- NumPy bit generators (SFC64, PCG64DXSM, PCG64, Philox, MT19937) through
  ``Generator.standard_normal`` (ziggurat), float64 and float32, into a fresh array and with
  ``out=`` into a preallocated slice (no temporary, no copy), on one thread and on every core
  (one generator per thread; NumPy releases the GIL while it fills an array);
- PyTorch's ``torch.randn`` (float32/float64, one ``torch.Generator`` per thread), if installed;
- what simulate pays on top of the generator: scaling, a temporary and a copy into the stacked
  array, and Keras' truncated normal (rejection outside ±2) as gradmath draws it.

    python benchmarks/rng_rates.py [--n 1048576] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gradmath.initializers import initializer
from gradmath.threads import cores, limit

BITGENS = ("SFC64", "PCG64DXSM", "PCG64", "Philox", "MT19937")


def _best(f: Callable[[], object], rounds: int) -> float:
    f()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def _parallel(fs: list[Callable[[], object]]) -> Callable[[], object]:
    pool = ThreadPoolExecutor(len(fs))

    def run() -> object:
        return [f.result() for f in [pool.submit(g) for g in fs]]

    return run


def numpy_rows(n: int, rounds: int, threads: int) -> list[tuple[str, float]]:
    rows = []
    for name in BITGENS:
        for dt in (np.float64, np.float32):
            gens = [np.random.Generator(getattr(np.random, name)(s)) for s in range(threads)]
            outs = [np.empty(n, dtype=dt) for _ in range(threads)]
            t1 = _best(lambda g=gens[0], d=dt: g.standard_normal(n, dtype=d), rounds)
            g0, o0 = gens[0], outs[0]
            t1o = _best(lambda g=g0, o=o0, d=dt: g.standard_normal(out=o, dtype=d), rounds)
            fs = [
                (lambda g=g, o=o, d=dt: g.standard_normal(out=o, dtype=d))
                for g, o in zip(gens, outs, strict=True)
            ]
            tp = _best(_parallel(fs), rounds)
            label = f"numpy {name:<9} {np.dtype(dt).name}"
            rows.append((f"{label}  1 thread, new array", t1 / n))
            rows.append((f"{label}  1 thread, out=", t1o / n))
            rows.append((f"{label}  {threads} threads, out=", tp / (threads * n)))
    return rows


def torch_rows(n: int, rounds: int, threads: int) -> list[tuple[str, float]]:
    try:
        import torch
    except ImportError:
        return []
    rows = []
    torch.set_num_threads(1)  # one intra-op thread per generator; we parallelise ourselves
    for dt in (torch.float32, torch.float64):
        gens = [torch.Generator().manual_seed(s) for s in range(threads)]
        outs = [torch.empty(n, dtype=dt) for _ in range(threads)]
        t1 = _best(lambda g=gens[0], o=outs[0]: torch.randn(n, out=o, generator=g), rounds)
        fs = [
            (lambda g=g, o=o: torch.randn(n, out=o, generator=g))
            for g, o in zip(gens, outs, strict=True)
        ]
        tp = _best(_parallel(fs), rounds)
        rows.append((f"torch randn {str(dt)[6:]:<8}  1 thread, out=", t1 / n))
        rows.append((f"torch randn {str(dt)[6:]:<8}  {threads} threads, out=", tp / (threads * n)))
    return rows


def extras_rows(n: int, rounds: int) -> list[tuple[str, float]]:
    """What simulate pays per weight beyond the generator (one thread, float64)."""
    width = round(n**0.5)
    shape = (width, width)
    g = np.random.Generator(np.random.SFC64(0))
    stack = np.empty((2, width, width))
    he = initializer("he_normal")
    keras = initializer("glorot_normal")  # Keras' truncated normal
    rows = []
    m = width * width
    rows.append(
        (
            "SFC64 f64 out= into the stack",
            _best(lambda: g.standard_normal(out=stack[0]), rounds) / m,
        )
    )
    rows.append(
        (
            "  + scale in place (*= std)",
            _best(lambda: np.multiply(g.standard_normal(out=stack[0]), 0.1, out=stack[0]), rounds)
            / m,
        )
    )
    rows.append(
        (
            "Initializer.sample (he_normal) + copy into the stack",
            _best(lambda: stack.__setitem__(0, he.sample(g, shape)), rounds) / m,
        )
    )
    rows.append(
        (
            "Initializer.sample (Keras truncated normal) + copy",
            _best(lambda: stack.__setitem__(0, keras.sample(g, shape)), rounds) / m,
        )
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 20, help="normals per call (default 2^20)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    threads = cores()
    print(
        f"{threads} cores, load average {os.getloadavg()[0]:.2f}; ns per normal (best of "
        f"{args.rounds}), {args.n} normals per call"
    )
    with limit(1):
        rows = numpy_rows(args.n, args.rounds, threads)
        rows += torch_rows(args.n, args.rounds, threads)
        rows += extras_rows(args.n, args.rounds)
    for label, t in rows:
        print(f"{label:<52} {t * 1e9:7.2f} ns")


if __name__ == "__main__":
    main()
