"""Render gradmath results for a lecture: LaTeX fragments, figures and the notes build.

``gradmath.render.figures`` (matplotlib, imported lazily inside each function),
``gradmath.render.latex`` (LaTeX fragments and the document around them),
``gradmath.render.plaintext`` (inline LaTeX math back to plain text, for ``Derivation.text``) and
``gradmath.render.notes`` (runs ``derivations/`` and ``figures/`` and compiles the notes).
"""

from __future__ import annotations

from gradmath.render import figures as figures
from gradmath.render import latex as latex
from gradmath.render import notes as notes

__all__ = ["figures", "latex", "notes"]
