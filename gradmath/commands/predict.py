"""`gradmath predict`: the mean-field per-layer profile of a square MLP."""

from __future__ import annotations

import argparse
import math

from gradmath.commands._network import add_network_arguments, describe, network_from_arguments


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "predict",
        help="mean-field forward/backward second moments per site",
        description=(
            "Predict, per site (every Dense, residual and normalisation layer), the second "
            "moment of its output, of the loss gradient there and of the weight gradient at "
            "infinite width (Poole et al. 2016; Schoenholz et al. 2017), for a composed network "
            "(--network) or a square MLP of DEPTH layers of WIDTH units."
        ),
    )
    add_network_arguments(p, depth=10)
    p.add_argument(
        "--batch", type=int, default=None, help="batch B seen by batch norm (default: ∞)"
    )
    p.set_defaults(run=run)


def _fmt(log_value: float) -> str:
    # Plain numbers while they fit in a float64, log10 beyond.
    if math.isnan(log_value):
        return "—"
    if -700.0 < log_value < 700.0:
        return f"{math.exp(log_value):.6e}"
    return f"10^{log_value / math.log(10):.4f}"


def run(args: argparse.Namespace) -> int:
    from gradmath.meanfield import predict

    net = network_from_arguments(args)
    prof = predict(net, input_q=args.input_q, batch=args.batch)
    print(f"# mean-field profile: {describe(args)}, input q = {args.input_q:g}")
    w = max(6, *(len(n) for n in prof.names))
    print(f"{'site':>{w}} {'q':>16} {'grad_q':>16} {'wgrad_q':>16}")
    for i, name in enumerate(prof.names):
        cells = (_fmt(prof.log_q[i]), _fmt(prof.log_grad_q[i]), _fmt(prof.log_wgrad_q[i]))
        print(f"{name:>{w}} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    print(f"‖∇W^1‖/‖∇W^L‖ = {_fmt(prof.log_first_last_ratio)}")
    return 0
