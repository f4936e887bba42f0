"""`gradmath notes`: build the lecture notes (LaTeX, figures and, with TeX installed, a PDF)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg, unused-ignore]
    p = sub.add_parser(
        "notes",
        help="build the lecture notes: chapters, figures, notes.tex and notes.pdf",
        description=(
            "Run every chapter script (derivations/*.py) and figure script (figures/*.py), "
            "write notes.tex and the figures (PDF and PNG), and compile notes.pdf when "
            "latexmk or pdflatex is on the PATH."
        ),
    )
    p.add_argument("--out", default="build/notes", help="output directory (default: build/notes)")
    p.add_argument("--no-pdf", action="store_true", help="write the sources only, do not run TeX")
    p.add_argument("--quick", action="store_true", help="smaller Monte-Carlo budget (faster)")
    p.add_argument(
        "--source",
        default=None,
        metavar="DIR",
        help="directory holding derivations/ and figures/ (default: current directory, "
        "then the repository gradmath was installed from)",
    )
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: up to 2)")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder that an earlier `gradmath notes` did not mark as "
        "its own (files of the same names are replaced)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gradmath.render.notes import build

    result = build(
        args.out,
        source=args.source,
        pdf=not args.no_pdf,
        quick=args.quick,
        jobs=args.jobs,
        force=args.force,
    )
    print(result.message)
    return 0
