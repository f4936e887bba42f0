"""The network options that `predict` and `validate` share, and the MLP they describe."""

from __future__ import annotations

import argparse
from typing import Any


def add_network_arguments(p: argparse.ArgumentParser, *, depth: int) -> None:
    p.add_argument("--activation", default="tanh", help="catalogue name (default: tanh)")
    p.add_argument("--init", default="glorot_normal", help="initializer (default: glorot_normal)")
    p.add_argument("--depth", type=int, default=depth, help=f"weight layers L (default: {depth})")
    p.add_argument("--width", type=int, default=256, help="width of every layer (default: 256)")
    p.add_argument("--bias-var", type=float, default=0.0, help="bias variance σ_b² (default: 0)")
    p.add_argument("--residual", type=float, default=None, help="residual branch scale α")
    p.add_argument("--batchnorm", action="store_true", help="batch-normalise pre-activations")
    p.add_argument("--input-q", type=float, default=1.0, help="E[(x^0_j)²] (default: 1)")


def network_from_arguments(args: argparse.Namespace, *, batch_size: int | None = None) -> Any:
    """The square MLP the options describe (``batch_size``: the B of batch-norm theory)."""
    from gradmath import MLP

    return MLP.square(
        args.width,
        args.depth,
        activation=args.activation,
        init=args.init,
        bias_var=args.bias_var,
        residual=args.residual,
        batchnorm=args.batchnorm,
        batch_size=batch_size if args.batchnorm else None,
    )
