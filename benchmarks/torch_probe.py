"""Benchmark: gradmath.torch.probe on ResNet-18 (batch 8, 32×32, 16 inits) against bare passes.

Three timings in one run, repeated ``REPS`` times and interleaved so load hits all alike
(medians reported):

- ``bare``: 16 forward + backward passes of the model (no re-initialisation);
- ``bare + init``: the same with the model re-initialised before each pass (torchvision's
  ResNet init), what a hand-written probe loop costs;
- ``probe``: ``gradmath.torch.measure(model, x, n_inits=16, init=resnet_init)``, the probe's
  measurement (16 re-initialisations, 16 traced passes with hooks, restoring the model; ``probe``
  adds one traced forward pass for the translation).

The issue's target: probe overhead under 30 % of ``bare``. Drawing 11.2 M fresh weights per init
is itself part of any probe; the script prints both overheads so the two costs can be told apart.

Run: python benchmarks/torch_probe.py [--reps 3]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "torch"))
from models import ResNet18, resnet_init

from gradmath.torch import measure

REPS = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
N = 16


def main() -> None:
    torch.set_num_threads(1)  # see benchmarks/torch_nonfinite.py
    torch.manual_seed(0)
    model = ResNet18()
    x = torch.randn(8, 3, 32, 32)

    def bare(init: bool) -> None:
        for _ in range(N):
            if init:
                with torch.no_grad():
                    resnet_init(model)
            model.zero_grad(set_to_none=True)
            (model(x) * torch.randn(8, 10)).sum().backward()

    def probed() -> None:
        measure(model, x, n_inits=N, init=resnet_init)

    runs: dict[str, list[float]] = {"bare": [], "bare + init": [], "probe": []}
    jobs = (("bare", lambda: bare(False)), ("bare + init", lambda: bare(True)), ("probe", probed))
    for _ in range(REPS):
        for name, f in jobs:
            t = time.perf_counter()
            f()
            runs[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"ResNet-18, batch 8, 32x32, {N} inits, torch {torch.__version__}, 1 thread")
    for k, v in med.items():
        print(f"  {k:<12} {v:7.2f} s   ({v / med['bare']:.2f}x bare)")
    print(f"  probe overhead vs bare passes:        {med['probe'] / med['bare'] - 1:+.0%}"
          "  (target < 30 %)")  # fmt: skip
    print(f"  probe overhead vs bare passes + init: {med['probe'] / med['bare + init'] - 1:+.0%}")


if __name__ == "__main__":
    main()
