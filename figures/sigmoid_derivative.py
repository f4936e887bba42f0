"""The logistic sigmoid and its derivative σ' = σ(1 − σ), whose maximum is 1/4 at z = 0."""

from __future__ import annotations

from gradmath.render import figures, notes

CHAPTER = "02_sigmoid_bound"
CAPTION = (
    r"The logistic sigmoid $\sigma(z)$ and its derivative $\sigma'(z)=\sigma(z)(1-\sigma(z))$. "
    r"The derivative never exceeds $1/4$, reached at $z=0$, and decays like $e^{-|z|}$ once a "
    r"unit saturates."
)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    return figures.activation_derivative("sigmoid", z_max=8.0).figure


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
