"""Clipping by value turns the classic gradient [0.9, 100] into [0.9, 1]; clipping by norm
keeps its direction (Pascanu et al. 2013)."""

from __future__ import annotations

from gradmath.render import figures, notes

CHAPTER = "06_remedies"
CAPTION = (
    r"Gradient clipping at threshold $c=1$ of the gradient $g=(0.9, 100)$. Clipping each "
    r"component to $[-c, c]$ turns the update (the angle is in the legend); rescaling to "
    r"norm $c$ keeps the direction of $g$ and only shortens the step."
)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    return figures.clipping_geometry((0.9, 100.0), 1.0).figure


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
