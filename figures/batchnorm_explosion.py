"""Batch normalisation at initialisation: the forward pass is pinned, the gradient grows
geometrically towards the input (Yang et al. 2019), theory against sampled networks."""

from __future__ import annotations

import gradmath
from gradmath import validate
from gradmath.render import figures, notes

CHAPTER = "07_normalisation"
CAPTION = (
    r"Batch normalisation at initialisation, batch size $B = 16$, depth 15. Left: the "
    r"normalised pre-activations keep unit second moment in every layer. Right: the gradient "
    r"second moment grows geometrically from the output (layer 15) towards the input, by the "
    r"factor of Yang et al.\ (2019) per layer; without batch norm the ReLU/He net stays flat. "
    r"Lines: theory; points: sampled networks (width 16 times the batch)."
)
DEPTH, BATCH = 15, 16


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks = (128, 8) if quick else (256, 16)
    specs = {
        "ReLU + He, batch norm": dict(activation="relu", init="he_normal", batchnorm=True),
        "tanh + Glorot, batch norm": dict(activation="tanh", init="glorot_normal", batchnorm=True),
        "ReLU + He, plain": dict(activation="relu", init="he_normal"),
    }
    nets = {label: gradmath.MLP.square(width, DEPTH, **spec)  # type: ignore[arg-type]
            for label, spec in specs.items()}  # fmt: skip
    curves = validate.theory_and_simulation(nets, n_networks=n_networks, batch=BATCH)
    return figures.forward_backward(curves)


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
