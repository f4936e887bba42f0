"""The network options that `predict` and `validate` share, and the network they describe."""

from __future__ import annotations

import argparse
from typing import Any


def add_network_arguments(p: argparse.ArgumentParser, *, depth: int) -> None:
    p.add_argument(
        "--network",
        default=None,
        metavar="SPEC",
        help="a composed network, as the Python expression or a file holding it, e.g. "
        '\'Network(64, Dense(64), "relu", repeat(Residual(Serial(LayerNorm(), Dense(64), '
        '"relu", Dense(64)), alpha=0.2), 6))\'; replaces the square-MLP options below',
    )
    p.add_argument("--activation", default="tanh", help="catalogue name (default: tanh)")
    p.add_argument("--init", default="glorot_normal", help="initializer (default: glorot_normal)")
    p.add_argument("--depth", type=int, default=depth, help=f"weight layers L (default: {depth})")
    p.add_argument("--width", type=int, default=256, help="width of every layer (default: 256)")
    p.add_argument(
        "--sigma-b2",
        default="init",
        help="bias variance σ_b², or 'init' for the initializer's own bias (default)",
    )
    p.add_argument("--residual", type=float, default=None, help="residual branch scale α")
    p.add_argument("--batchnorm", action="store_true", help="batch-normalise pre-activations")
    p.add_argument("--input-q", type=float, default=1.0, help="E[(x^0_j)²] (default: 1)")


def network_from_arguments(args: argparse.Namespace) -> Any:
    """The network of ``--network``, else the square MLP the other options describe."""
    if args.network is not None:
        from gradmath.spec import parse_network

        return parse_network(args.network)
    from gradmath import MLP

    bias: Any = args.sigma_b2
    if bias != "init":
        try:
            bias = float(bias)
        except ValueError:
            from gradmath.errors import GradmathError

            raise GradmathError(f"--sigma-b2 (={bias!r}) must be a variance or 'init'.") from None
    return MLP.square(
        args.width,
        args.depth,
        activation=args.activation,
        init=args.init,
        sigma_b2=bias,
        residual=args.residual,
        batchnorm=args.batchnorm,
    )


def describe(args: argparse.Namespace) -> str:
    """One line naming the network the options describe."""
    if args.network is not None:
        return f"network {args.network}"
    return (
        f"{args.activation}, {args.init}, depth {args.depth}, width {args.width}, "
        f"σ_b² = {args.sigma_b2}"
    )
