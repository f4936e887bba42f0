"""`gradmath derive ACTIVATION`: print the derivative of an activation, and its bound.

Plain text by default, a LaTeX fragment with ``--latex``. SymPy loads inside ``run`` so that
``gradmath --help`` stays fast.
"""

from __future__ import annotations

import argparse

from gradmath.errors import GradmathError


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. slope=0.2), got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not a number") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "derive",
        help="derive φ'(z) of an activation (and sup|φ'| with --bound)",
        description="Print the derivative of an activation in closed form, step by step; "
        "with --bound also the supremum of |φ'| and where it is attained.",
    )
    p.add_argument("activation", metavar="ACTIVATION", help="a catalogue name, e.g. sigmoid")
    p.add_argument("--bound", action="store_true", help="also derive sup_z |φ'(z)|")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    p.add_argument(
        "--param",
        metavar="NAME=VALUE",
        type=_param,
        action="append",
        default=[],
        help="an activation parameter, e.g. --param slope=0.2 (repeatable)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gradmath.symbolic import derivative, derivative_bound

    params = dict(args.param)
    if len(params) != len(args.param):
        raise GradmathError(f"`--param` repeats a name: {[k for k, _ in args.param]}.")
    results = [derivative(args.activation, **params)]
    if args.bound:
        results.append(derivative_bound(args.activation, **params))
    sep = "\n" if args.latex else "\n\n"
    print(sep.join(d.latex() if args.latex else d.text() for d in results))
    return 0
