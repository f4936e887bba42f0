"""`gradmath validate`: mean-field prediction against sampled networks, as a table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="compare the mean-field profile with simulated networks",
        description=(
            "Run meanfield.predict and numeric.simulate on the same MLP and print, per layer, "
            "the log second moments, relative errors and z-scores (gradmath.validate.compare). "
            "Exit status 0 if every |z| < --z-max, 1 otherwise."
        ),
    )
    p.add_argument("--activation", default="tanh", help="catalogue name (default: tanh)")
    p.add_argument("--init", default="glorot_normal", help="initializer (default: glorot_normal)")
    p.add_argument("--depth", type=int, default=30, help="number of layers L (default: 30)")
    p.add_argument("--width", type=int, default=256, help="width of every layer (default: 256)")
    p.add_argument("--bias-var", type=float, default=0.0, help="σ_b² (default: 0)")
    p.add_argument("--residual", type=float, default=None, help="residual branch scale α")
    p.add_argument("--batchnorm", action="store_true", help="batch-normalise pre-activations")
    p.add_argument("--networks", type=int, default=32, help="sampled networks (default: 32)")
    p.add_argument("--batch", type=int, default=None, help="examples per network (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--input-q", type=float, default=1.0, help="E[(x^0_j)²] (default: 1)")
    p.add_argument("--z-max", type=float, default=4.0, help="|z| threshold (default: 4)")
    p.add_argument("--latex", action="store_true", help="print a booktabs table instead")
    p.add_argument("--workers", type=int, default=0, help="processes to use (default: none)")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from gradmath import MLP
    from gradmath.meanfield import predict
    from gradmath.numeric import simulate
    from gradmath.validate import compare

    mlp = MLP.square(
        args.width,
        args.depth,
        activation=args.activation,
        init=args.init,
        bias_var=args.bias_var,
        residual=args.residual,
        batchnorm=args.batchnorm,
        batch_size=args.batch if args.batchnorm else None,
    )
    theory = predict(mlp, input_q=args.input_q)
    kwargs = dict(n_networks=args.networks, batch=args.batch, seed=args.seed, input_q=args.input_q)
    if args.workers > 0:
        with ProcessPoolExecutor(args.workers) as ex:
            sim = simulate(mlp, executor=ex, **kwargs)
    else:
        sim = simulate(mlp, **kwargs)
    comparison = compare(theory, sim, z_max=args.z_max)
    print(comparison.latex() if args.latex else comparison.table())
    return 0 if comparison.agrees else 1
