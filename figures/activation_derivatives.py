"""Every activation in the catalogue but the sigmoid, with its derivative; the peak of |φ'| is
marked.

The peak is γ = sup|φ'|, the per-layer factor of the chain-rule bound: 1/4 for the sigmoid,
1 for tanh and ReLU.
"""

from __future__ import annotations

import gradmath
from gradmath.render import figures, notes

CHAPTER = "01_problem"
# The sigmoid has its own figure (sigmoid_derivative.py): no panel twice in the notes.
NAMES = tuple(name for name in gradmath.activations() if name != "sigmoid")
CAPTION = (
    r"The activations of gradmath's catalogue other than the sigmoid (which has "
    r"Figure~\ref{fig:sigmoid_derivative}): each function $\varphi$ (solid line) with its "
    r"derivative $\varphi'$ (dashed). The dot marks the largest $|\varphi'|$, the factor "
    r"$\gamma$ that bounds how much one layer can amplify a gradient; the printed value is "
    r"that maximum."
)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    return figures.activation_grid(NAMES)


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
