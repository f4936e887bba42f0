"""Render gradmath results for a lecture: LaTeX fragments, figures and the notes build.

``gradmath.render.latex`` (LaTeX fragments and the document around them) and
``gradmath.render.plaintext`` (inline LaTeX math back to plain text, for ``Derivation.text``)
are typesetting primitives that sit below the engines (a Derivation and a Comparison typeset
themselves with them); ``gradmath.render.figures`` (matplotlib, imported lazily inside each
function) and ``gradmath.render.notes`` (runs ``derivations/`` and ``figures/`` and compiles
the notes) sit above them and only render what they are given. Submodules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["figures", "latex", "notes", "plaintext"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"gradmath.render.{name}")
    raise AttributeError(f"module 'gradmath.render' has no attribute {name!r}")
