"""Residual blocks built from the network algebra: pre-LN, post-LN, ReZero and a plain
residual stack, theory against sampled networks along the residual stream."""

from __future__ import annotations

from gradmath import validate
from gradmath.network import Dense, Network, Residual, Serial, post_ln_block, pre_ln_block, repeat
from gradmath.render import figures, notes

CHAPTER = "06_remedies"
CAPTION = (
    r"The residual stream of four 16-block ReLU networks with He weights: a plain residual "
    r"block $x + F(x)$ with $F$ = Dense, ReLU, Dense; the pre-LN block $x + F(\mathrm{LN}(x))$; "
    r"the post-LN block $\mathrm{LN}(x + F(x))$; and ReZero, $x + 0\cdot F(x)$. Left: forward "
    r"second moment of the stream; right: gradient second moment. The plain block doubles "
    r"$q$ every block; pre-LN adds a constant (linear growth) and keeps the gradient nearly "
    r"flat; post-LN pins $q$ at 1; ReZero is the identity at initialisation. Lines: theory; "
    r"points: sampled networks ($\pm 2$ standard errors)."
)
BLOCKS = 16


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks = (64, 8) if quick else (128, 32)

    def branch() -> Serial:
        return Serial(Dense(width), "relu", Dense(width))

    stem = Dense(width)
    nets = {
        "plain residual": Network(width, stem, repeat(Residual(branch(), 1.0), BLOCKS)),
        "pre-LN": Network(width, stem, repeat(pre_ln_block(width, "relu"), BLOCKS)),
        "post-LN": Network(width, stem, repeat(post_ln_block(width, "relu"), BLOCKS)),
        "ReZero": Network(width, stem, repeat(Residual(branch(), 0.0), BLOCKS)),
    }
    curves = validate.theory_and_simulation(nets, n_networks=n_networks, batch=16, seed=7)
    return figures.forward_backward(curves, ncols=4)


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
