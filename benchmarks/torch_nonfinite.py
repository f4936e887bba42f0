"""Benchmark: gradmath.torch.find_nonfinite against torch.autograd.detect_anomaly.

One model (ResNet-18 at batch 8, 32×32, as in tests/torch/models.py), one run: the bare
forward + backward pass, the same inside ``NonFiniteWatch`` (what ``find_nonfinite`` runs), and
inside ``torch.autograd.detect_anomaly()``; each timed as the median of ``REPS`` repetitions,
interleaved so that load on the machine hits all three alike. Prints the ratios to the bare pass.

Run: python benchmarks/torch_nonfinite.py
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "torch"))
from models import ResNet18

from gradmath.torch import NonFiniteWatch

REPS = 7


def main() -> None:
    # One thread: on a shared 2-core machine two torch threads fight other jobs (10x slower).
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ResNet18()
    x = torch.randn(8, 3, 32, 32)

    def bare() -> None:
        model(x).sum().backward()

    def watched() -> None:
        with NonFiniteWatch(model):
            model(x).sum().backward()

    def anomaly() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # detect_anomaly warns that it is slow
            with torch.autograd.detect_anomaly():
                model(x).sum().backward()

    runs: dict[str, list[float]] = {"bare": [], "gradmath": [], "detect_anomaly": []}
    for f in (bare, watched, anomaly):  # warm-up
        f()
    for _ in range(REPS):
        for name, f in (("bare", bare), ("gradmath", watched), ("detect_anomaly", anomaly)):
            model.zero_grad(set_to_none=True)
            t = time.perf_counter()
            f()
            runs[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"ResNet-18, batch 8, 32x32, torch {torch.__version__}, 1 thread")
    for k, v in med.items():
        print(f"  {k:<15} {v * 1e3:8.1f} ms   ({v / med['bare']:.2f}x the bare pass)")
    over_g = med["gradmath"] - med["bare"]
    over_a = med["detect_anomaly"] - med["bare"]
    print(f"  gradmath's overhead is {over_g / over_a:.1%} of detect_anomaly's")


if __name__ == "__main__":
    main()
