"""The ``gradmath`` command line: parses arguments and calls the library (nothing more).

Each subcommand lives in ``gradmath/commands/<name>.py`` with ``register(subparsers)``;
engines are imported inside the command's ``run`` so that ``gradmath --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from gradmath.errors import GradmathError

COMMANDS = ("derive", "predict", "phase", "validate", "sweep", "notes", "inspect")


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line (no usage block), exit status 2,
    like every other bad input; ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradmath",
        description="Explain, predict and check vanishing and exploding gradients.",
    )
    parser.add_argument("--version", action="version", version="gradmath 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gradmath.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except GradmathError as exc:
        print(f"gradmath {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        # The machine, not the input: a full disk, an unwritable path, too little memory.
        # Still one line, not a traceback.
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        print(f"gradmath {args.command}: error: {what or type(exc).__name__}{where}",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: one line, and the shell's convention for death by SIGINT (128 + 2).
        print(f"gradmath {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
