"""`gradmath phase`: the order/chaos critical line (and optionally the phase-diagram figure)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "phase",
        help="critical line χ₁ = 1 and the (σ_w², σ_b²) phase diagram",
        description=(
            "Print σ_w² on the order/chaos boundary χ₁ = 1 for a grid of σ_b² (Schoenholz et "
            "al. 2017) and, with --figure, draw the phase diagram with ξ_c as colour."
        ),
    )
    p.add_argument("activation", help="activation name, e.g. tanh")
    p.add_argument(
        "--sigma-b2",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="σ_b² values (default: 11 values from 0 to 0.5)",
    )
    p.add_argument("--sigma-w2-max", type=float, default=4.0, help="figure's σ_w² range (0, max]")
    p.add_argument("--figure", default=None, metavar="PATH", help="write the figure here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from gradmath.errors import GradmathError, check_positive
    from gradmath.meanfield import critical_sigma_w2
    from gradmath.render import figures
    from gradmath.render.files import check_path

    # Checked before any work: a bad path should not cost a phase diagram first.
    path = None if args.figure is None else check_path("--figure", args.figure)
    if path is not None and path.is_dir():
        raise GradmathError(
            f"`--figure` (={args.figure!r}) is a directory; give a file name such as "
            f"{path / 'phase.pdf'}."
        )
    if path is not None and path.suffix and path.suffix[1:] not in figures.FORMATS:
        raise GradmathError(
            f"`--figure` (={args.figure!r}) must end in "
            f"{', '.join('.' + f for f in figures.FORMATS)}, or have no suffix (PDF and PNG)."
        )
    sb = np.linspace(0.0, 0.5, 11) if args.sigma_b2 is None else np.asarray(args.sigma_b2)
    crit = np.atleast_1d(critical_sigma_w2(args.activation, sb))
    print(f"# critical line χ₁ = 1 for {args.activation}")
    print(f"{'sigma_b2':>12} {'sigma_w2':>20}")
    for b, w in zip(sb, crit, strict=True):
        print(f"{b:>12.6g} {w:>20.15g}")
    if path is not None:
        from gradmath.meanfield import phase_diagram

        wmax = check_positive("--sigma-w2-max", args.sigma_w2_max)
        # ξ_c in the chaotic phase costs a bivariate solve per point: keep the grid modest.
        sw_grid = np.linspace(wmax / 32, wmax, 32)
        sb_grid = np.linspace(0.0, max(float(sb.max()), 1e-3), 17)
        pd = phase_diagram(args.activation, sw_grid, sb_grid)
        ax = figures.phase_diagram(pd)
        formats = (path.suffix[1:],) if path.suffix else ("pdf", "png")
        fig = cast("Figure", ax.figure)
        for written in figures.save(fig, path.with_suffix(""), formats=formats):
            print(f"wrote {written}")
    return 0
