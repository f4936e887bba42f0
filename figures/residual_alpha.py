"""Residual branches against the vanishing gradient: a tanh net in the ordered phase, plain and
with residual blocks h^l = h^{l−1} + α(W^l φ(h^{l−1}) + b^l) for several α (Yang & Schoenholz
2017)."""

from __future__ import annotations

import math

import gradmath
from gradmath import validate
from gradmath.render import figures, notes

CHAPTER = "06_remedies"
CAPTION = (
    r"A depth-30 tanh network in the ordered phase ($\sigma_w^2 = 0.5$): plain, and with "
    r"residual blocks scaled by $\alpha$. Left: forward second moment; right: backward gradient "
    r"second moment. The plain net loses the gradient geometrically; every residual net keeps "
    r"it, because each block adds the identity to the backward factor. An unscaled branch "
    r"($\alpha = 1$) makes the forward signal grow; $\alpha \sim 1/\sqrt{L}$ keeps it bounded. "
    r"Lines: theory; points: sampled networks."
)
DEPTH = 30
SIGMA_W2 = 0.5


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks = (64, 8) if quick else (128, 32)
    init = gradmath.initializer("normal", sigma_w2=SIGMA_W2)
    alphas = {
        "plain": None,
        r"$\alpha = 0.1$": 0.1,
        rf"$\alpha = 1/\sqrt{{{DEPTH}}}$": 1 / math.sqrt(DEPTH),
        r"$\alpha = 1$": 1.0,
    }
    nets = {label: gradmath.MLP.square(width, DEPTH, activation="tanh", init=init, residual=a)
            for label, a in alphas.items()}  # fmt: skip
    curves = validate.theory_and_simulation(nets, n_networks=n_networks)
    return figures.forward_backward(curves)


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
