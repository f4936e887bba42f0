"""Benchmark: gradmath.torch.probe on ResNet-18 (batch 8, 32×32, 16 inits) against bare passes.

Four timings in one run, interleaved and repeated ``--reps`` times so that load hits all alike:

- ``bare``: 16 forward + backward passes of the model (no re-initialisation);
- ``bare + init``: the same with the model re-initialised before each pass (torchvision's
  ResNet init), what a hand-written probe loop costs;
- ``probe, same weights``: ``gradmath.torch.measure`` with an init that draws nothing: the
  probe's own cost (tracing, hooks, statistics, restoring the model) over 16 bare passes;
- ``probe``: ``gradmath.torch.measure(model, x, n_inits=16, init=resnet_init)``, the probe's
  measurement (16 re-initialisations, 16 traced passes with hooks, restoring the model;
  ``probe`` adds one traced forward pass for the translation).

Page faults: minor faults of the thread per job (minimum over repetitions), where the
difference between probe and bare is system time spent re-faulting memory glibc returned to
the OS between passes (see the README). Each job's time is the minimum over the repetitions
(the run least disturbed by other processes), as wall-clock and as this thread's CPU time
(``time.thread_time``; torch runs on one thread here, so CPU time excludes waiting for a core
on a loaded machine). Ratios are of these minima, all from the same run.

The issue's target: probe overhead under 30 % of ``bare``. Drawing 11.2 M fresh weights per
init (torch's CPU generator, mt19937: one 32-bit draw per weight) is part of any probe and costs
about half a bare pass by itself; the script prints the overheads with and without it.

Run: python benchmarks/torch_probe.py [--reps 5]
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "torch"))
from models import ResNet18, resnet_init

from gradmath.torch import measure

REPS = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 5
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

    def same_weights(m: torch.nn.Module) -> None:
        pass

    jobs: dict[str, Callable[[], object]] = {
        "bare": lambda: bare(False),
        "bare + init": lambda: bare(True),
        "probe, same weights": lambda: measure(model, x, n_inits=N, init=same_weights),
        "probe": lambda: measure(model, x, n_inits=N, init=resnet_init),
    }
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    faults: dict[str, list[int]] = {k: [] for k in jobs}
    measure(model, x, n_inits=2)  # warm-up: first calls allocate and import
    for _ in range(REPS):
        for name, f in jobs.items():
            w, c = time.perf_counter(), time.thread_time()
            pf = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            f()
            cpu[name].append(time.thread_time() - c)
            wall[name].append(time.perf_counter() - w)
            faults[name].append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - pf)
    print(f"ResNet-18, batch 8, 32x32, {N} inits, torch {torch.__version__}, 1 thread, "
          f"min of {REPS} interleaved runs")  # fmt: skip
    print(f"  {'':<20} {'wall':>8} {'ratio':>6}   {'CPU':>8} {'ratio':>6}   page faults")
    w0, c0 = min(wall["bare"]), min(cpu["bare"])
    for k in jobs:
        w, c = min(wall[k]), min(cpu[k])
        print(f"  {k:<20} {w:7.2f}s {w / w0:5.2f}x   {c:7.2f}s {c / c0:5.2f}x   {min(faults[k])}")
    for label, t in (("wall", wall), ("CPU", cpu)):
        b, bi = min(t["bare"]), min(t["bare + init"])
        own, full = min(t["probe, same weights"]), min(t["probe"])
        print(
            f"  {label}: probe overhead vs bare {full / b - 1:+.0%} (target < 30 %); "
            f"probe's own (same weights) {own / b - 1:+.0%}; "
            f"re-initialisation alone {bi / b - 1:+.0%}"
        )


if __name__ == "__main__":
    main()
