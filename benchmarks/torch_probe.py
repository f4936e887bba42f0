"""Benchmark: gradmath.torch.probe on ResNet-18 (batch 8, 32×32, 16 inits) against bare passes.

Seven timings in one run, interleaved and repeated ``--reps`` times so that load hits all alike:

- ``bare``: 16 forward + backward passes of the model (no re-initialisation);
- ``bare + reset_parameters``: the same with every module's ``reset_parameters()`` before each
  pass (torch's generator), what a hand-written probe loop costs;
- ``bare + probe's redraw``: the same with the probe's redraw of those defaults
  (``gradmath.torch._defaults``: AES-128-CTR, the same U(±1/√fan_in)): the floor of any probe
  that draws 11.2 M fresh weights per init;
- ``floor (redraw + norms)``: the redraw and, by plain hooks registered once, one norm of
  every leaf module's output, of its gradient and of every conv weight's gradient, brought to
  the host once per init: the least any probe that measures these statistics on fresh weights
  must do (no tracing, no checks, no restoring; the residual sums' outputs, which the probe
  also measures, are left out, so it is a little below the true floor);
- ``probe, same weights``: ``gradmath.torch.measure`` with an init that draws nothing: the
  probe's own cost (tracing, hooks, statistics, restoring the model) over 16 bare passes;
- ``probe``: ``gradmath.torch.measure(model, x, n_inits=16)``, the default (16 redraws, 16
  traced passes with hooks, restoring the model; ``probe`` adds one traced forward pass for
  the translation). When torch's threads leave a core idle (``--threads 1`` on two cores) the
  redraw of init k + 1 runs on a worker thread during init k's passes (``DRAW_AHEAD``): wall
  time then hides work that CPU time still counts, so compare both columns;
- ``probe, torchvision init``: ``init=resnet_init`` (kaiming_normal_, a user's init function,
  drawn by torch's generator).

Each job's time is the minimum over the repetitions (the run least disturbed by other
processes), as wall-clock, as process CPU time (user + system, all threads: on a loaded
machine CPU time excludes waiting for a core) and as user CPU time alone. Page faults: minor
faults of the process (minimum over repetitions); their number, and the system time they cost,
depends on glibc's heap history more than on the job (70 000 to 230 000 for the same 16 bare
passes in one process, README), hence the user-time column. Ratios are of these minima, all
from the same run.

The issue's target: probe overhead under 30 % of ``bare``.

Run: python benchmarks/torch_probe.py [--reps 5] [--threads 1] [--batch 8]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "torch"))
from models import ResNet18, resnet_init

from gradmath.torch import measure
from gradmath.torch._model import reinitialise

REPS = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 5
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
BATCH = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 8
N = 16
REDRAW = "bare + probe's redraw"
FLOOR = "floor (redraw + norms)"


def main() -> None:
    torch.set_num_threads(THREADS)  # 1: see benchmarks/torch_nonfinite.py
    torch.manual_seed(0)
    model = ResNet18()
    x = torch.randn(BATCH, 3, 32, 32)

    def reset(m: torch.nn.Module) -> None:
        for mod in m.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()

    def bare(
        init: Callable[[int], object] | None, after: Callable[[], object] | None = None
    ) -> None:
        for k in range(N):
            if init is not None:
                with torch.no_grad():
                    init(k)
            model.zero_grad(set_to_none=True)
            (model(x) * torch.randn(BATCH, 10)).sum().backward()
            if after is not None:
                after()

    def floor() -> None:
        norms: list[torch.Tensor] = []

        def output(m: torch.nn.Module, args: object, out: torch.Tensor) -> None:
            norms.append(torch.linalg.vector_norm(out.detach()))
            if out.requires_grad:
                out.register_hook(lambda g: norms.append(torch.linalg.vector_norm(g)))

        def collect() -> None:
            torch.stack(norms).tolist()
            norms.clear()

        leaves = [m for m in model.modules() if not any(True for _ in m.children())]
        handles = [m.register_forward_hook(output) for m in leaves]
        handles += [
            m.weight.register_post_accumulate_grad_hook(
                lambda w: norms.append(torch.linalg.vector_norm(w.grad))
            )
            for m in model.modules()
            if isinstance(m, torch.nn.Conv2d)
        ]
        try:
            bare(lambda k: reinitialise(model, None, seed=k), collect)
        finally:
            for h in handles:
                h.remove()

    def same_weights(m: torch.nn.Module) -> None:
        pass

    jobs: dict[str, Callable[[], object]] = {
        "bare": lambda: bare(None),
        "bare + reset_parameters": lambda: bare(lambda k: reset(model)),
        REDRAW: lambda: bare(lambda k: reinitialise(model, None, seed=k)),
        FLOOR: floor,
        "probe, same weights": lambda: measure(model, x, n_inits=N, init=same_weights),
        "probe": lambda: measure(model, x, n_inits=N),
        "probe, torchvision init": lambda: measure(model, x, n_inits=N, init=resnet_init),
    }
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    faults: dict[str, list[int]] = {k: [] for k in jobs}
    user: dict[str, list[float]] = {k: [] for k in jobs}
    measure(model, x, n_inits=2)  # warm-up: first calls allocate and import
    load = os.getloadavg()[0]
    for _ in range(REPS):
        for name, f in jobs.items():
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            w = time.perf_counter()
            f()
            wall[name].append(time.perf_counter() - w)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
            user[name].append(r1.ru_utime - r0.ru_utime)
            faults[name].append(r1.ru_minflt - r0.ru_minflt)
    load = max(load, os.getloadavg()[0])
    print(f"ResNet-18, batch {BATCH}, 32x32, {N} inits, torch {torch.__version__}, "
          f"{THREADS} thread(s), min of {REPS} interleaved runs, load average up to {load:.1f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    print(f"  {'':<26} {'wall':>8} {'ratio':>6}   {'CPU':>8} {'ratio':>6}   {'user':>8} "
          f"{'ratio':>6}   page faults")  # fmt: skip
    w0, c0, u0 = min(wall["bare"]), min(cpu["bare"]), min(user["bare"])
    for k in jobs:
        w, c, u = min(wall[k]), min(cpu[k]), min(user[k])
        print(f"  {k:<26} {w:7.2f}s {w / w0:5.2f}x   {c:7.2f}s {c / c0:5.2f}x   {u:7.2f}s "
              f"{u / u0:5.2f}x   {min(faults[k])}")  # fmt: skip
    for label, t in (("wall", wall), ("CPU", cpu), ("user CPU", user)):
        b = min(t["bare"])
        over = {k: min(v) / b - 1 for k, v in t.items()}
        print(
            f"  {label}: probe overhead vs bare {over['probe']:+.0%} (target < 30 %); "
            f"probe's own (same weights) {over['probe, same weights']:+.0%}; redraw "
            f"{over[REDRAW]:+.0%} (torch's reset_parameters "
            f"{over['bare + reset_parameters']:+.0%}); "
            f"floor {over[FLOOR]:+.0%}, probe / floor {min(t['probe']) / min(t[FLOOR]):.2f}x"
        )


if __name__ == "__main__":
    main()
