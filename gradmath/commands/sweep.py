"""`gradmath sweep`: a validation matrix (theory vs simulation per cell) on processes or Dask."""

from __future__ import annotations

import argparse
import itertools
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "sweep",
        help="validation matrix over activations, initializers, depths, widths (processes or Dask)",
        description=(
            "For every combination of the given activations, initializers, depths and widths, "
            "run meanfield.predict and numeric.simulate on the same square MLP and compare them "
            "(gradmath.validate.compare). Cells run as independent jobs through gradmath.sweep: "
            "local processes by default, a Dask cluster with --scheduler; results are "
            "bit-identical however the cells are spread. One line per cell; exit status 0 if "
            "every |z| stays below the family-wise threshold, 1 otherwise."
        ),
    )
    p.add_argument("--activation", nargs="+", default=["tanh"], metavar="NAME")
    p.add_argument("--init", nargs="+", default=["glorot_normal"], metavar="NAME")
    p.add_argument("--depth", type=int, nargs="+", default=[5, 20], metavar="L")
    p.add_argument("--width", type=int, nargs="+", default=[256], metavar="N")
    p.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance σ_b² (default: 0)")
    p.add_argument("--networks", type=int, default=32, help="networks per cell (default: 32)")
    p.add_argument("--batch", type=int, default=16, help="examples per network (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole sweep (default: 0)")
    p.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="family-wise false-alarm rate; sets the Bonferroni |z| threshold (default: 0.01)",
    )
    add_executor_arguments(p, workers="every core")
    p.set_defaults(run=_run)


def add_executor_arguments(p: argparse.ArgumentParser, *, workers: str) -> None:
    """--scheduler and --workers, shared by the commands that can spread work (``workers``:
    what the default does, for the help)."""
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: local processes)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"local processes (default: {workers}; 0: run in this process)",
    )


def validate_cell(
    activation: str,
    init: str,
    depth: int,
    width: int,
    sigma_b2: float,
    networks: int,
    batch: int,
    seed: int,
) -> Any:
    """z-scores (3, depth) of theory against simulation for one square MLP (one sweep job), on
    the normal scale (:attr:`~gradmath.validate.Comparison.z_normal`), so that the sweep's one
    Bonferroni threshold from the normal law is right whatever the number of networks."""
    from gradmath import MLP
    from gradmath.meanfield import predict
    from gradmath.numeric import simulate
    from gradmath.validate import compare

    mlp = MLP.square(width, depth, activation=activation, init=init, sigma_b2=sigma_b2)
    sim = simulate(mlp, n_networks=networks, batch=batch, seed=seed, progress=False)
    return compare(predict(mlp, like=sim), sim).z_normal


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from gradmath import sweep
    from gradmath.validate import bonferroni_z

    grid = list(itertools.product(args.activation, args.init, args.depth, args.width))
    cases = [
        dict(
            activation=a,
            init=i,
            depth=d,
            width=w,
            sigma_b2=args.sigma_b2,
            networks=args.networks,
            batch=args.batch,
            seed=s,
        )
        for (a, i, d, w), s in zip(grid, sweep.seeds(args.seed, len(grid)), strict=True)
    ]
    zs = sweep.run(validate_cell, cases, scheduler=args.scheduler, workers=args.workers)
    z_max = bonferroni_z(sum(int(np.count_nonzero(~np.isnan(z))) for z in zs), alpha=args.alpha)
    print(f"# {len(cases)} cells; |z| threshold {z_max:.3f} (Bonferroni, alpha = {args.alpha:g})")
    print(f"{'activation':<12} {'init':<16} {'depth':>5} {'width':>6} {'max |z|':>8}  verdict")
    ok = True
    for (a, i, d, w), z in zip(grid, zs, strict=True):
        worst = float(np.max(np.abs(z)))
        ok &= worst < z_max
        word = "agrees" if worst < z_max else "DISAGREES"
        print(f"{a:<12} {i:<16} {d:>5} {w:>6} {worst:>8.2f}  {word}")
    return 0 if ok else 1
