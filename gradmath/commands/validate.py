"""`gradmath validate`: mean-field prediction against sampled networks, as a table."""

from __future__ import annotations

import argparse

from gradmath.commands._network import add_network_arguments, network_from_arguments
from gradmath.commands.sweep import add_executor_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="compare the mean-field profile with simulated networks",
        description=(
            "Run meanfield.predict and numeric.simulate on the same network and print, per site, "
            "the log second moments, relative errors and z-scores (gradmath.validate.compare). "
            "Exit status 0 if every |z| < --z-max, 1 otherwise."
        ),
    )
    add_network_arguments(p, depth=30)
    p.add_argument("--networks", type=int, default=32, help="sampled networks (default: 32)")
    p.add_argument("--batch", type=int, default=None, help="examples per network (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--z-max", type=float, default=4.0, help="|z| threshold (default: 4)")
    p.add_argument("--latex", action="store_true", help="print a booktabs table instead")
    add_executor_arguments(p, workers="none, simulate's own threads")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from gradmath import sweep
    from gradmath.meanfield import predict
    from gradmath.numeric import simulate
    from gradmath.validate import compare

    batch = 64 if args.batch is None else args.batch
    mlp = network_from_arguments(args)
    kwargs = dict(n_networks=args.networks, batch=batch, seed=args.seed, input_q=args.input_q)
    # Groups of networks go to local processes or a Dask cluster (gradmath.sweep); by default
    # simulate runs here on its own threads.
    workers = 0 if args.workers is None and args.scheduler is None else args.workers
    with sweep.open_executor(scheduler=args.scheduler, workers=workers) as ex:
        sim = simulate(mlp, executor=ex, **kwargs)
    # Like for like: the theory at the simulation's conditions (its batch, for batch norm).
    comparison = compare(predict(mlp, like=sim), sim, z_max=args.z_max)
    print(comparison.latex() if args.latex else comparison.table())
    return 0 if comparison.agrees else 1
