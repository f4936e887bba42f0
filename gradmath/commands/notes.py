"""`gradmath notes`: not yet implemented (placeholder so the CLI parses)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("notes", help="(not yet available)")
