"""Every activation in the catalogue with its derivative; the peak of |φ'| is marked.

The peak is γ = sup|φ'|, the per-layer factor of the chain-rule bound: 1/4 for the sigmoid,
1 for tanh and ReLU.
"""

from __future__ import annotations

from gradmath.render import figures, notes

CHAPTER = "01_problem"
CAPTION = (
    r"The activation catalogue of gradmath: each function $\varphi$ (blue) with its derivative "
    r"$\varphi'$ (orange). The dot marks the largest $|\varphi'|$, the factor $\gamma$ that bounds "
    r"how much one layer can amplify a gradient."
)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    return figures.activation_grid()


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
