"""`gradmath predict`: the mean-field per-layer profile of a square MLP."""

from __future__ import annotations

import argparse
import math

from gradmath.commands._network import add_network_arguments, network_from_arguments


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "predict",
        help="mean-field forward/backward second moments per layer",
        description=(
            "Predict q^l = E[(h^l)²], the gradient second moment E[(∂L/∂h^l)²] and the weight-"
            "gradient second moment per layer at infinite width (Poole et al. 2016; Schoenholz "
            "et al. 2017), for a net of DEPTH layers of WIDTH units."
        ),
    )
    add_network_arguments(p, depth=10)
    p.add_argument("--batch-size", type=int, default=None, help="B for --batchnorm (default: ∞)")
    p.set_defaults(run=run)


def _fmt(log_value: float) -> str:
    # Plain numbers while they fit in a float64, log10 beyond.
    if -700.0 < log_value < 700.0:
        return f"{math.exp(log_value):.6e}"
    return f"10^{log_value / math.log(10):.4f}"


def run(args: argparse.Namespace) -> int:
    from gradmath.meanfield import predict

    net = network_from_arguments(args, batch_size=args.batch_size)
    prof = predict(net, input_q=args.input_q)
    print(
        f"# mean-field profile: {args.activation}, {args.init}, depth {args.depth}, "
        f"width {args.width}, σ_b² = {args.bias_var:g}, input q = {args.input_q:g}"
    )
    print(f"{'layer':>6} {'q':>16} {'grad_q':>16} {'wgrad_q':>16}")
    for i in range(net.depth):
        cells = (_fmt(prof.log_q[i]), _fmt(prof.log_grad_q[i]), _fmt(prof.log_wgrad_q[i]))
        print(f"{i + 1:>6} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    print(f"‖∇W^1‖/‖∇W^L‖ = {_fmt(prof.log_first_last_ratio)}")
    return 0
