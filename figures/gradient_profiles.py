"""Per-layer forward and backward second moments for (activation, initializer) pairs: mean-field
theory as lines, sampled networks as points with Monte-Carlo error bars."""

from __future__ import annotations

import gradmath
from gradmath import validate
from gradmath.render import figures, notes

CHAPTER = "05_mean_field"
CAPTION = (
    r"Forward second moment $\mathbb{E}[(h^l_i)^2]$ (left) and backward gradient second moment "
    r"$\mathbb{E}[(\partial L/\partial h^l_i)^2]$ (right) layer by layer, in square networks of "
    r"depth 30. Lines: mean-field theory; points: sampled networks with two standard errors. "
    r"Sigmoid with Glorot initialisation loses the gradient geometrically towards the input; "
    r"tanh with $\sigma_w^2=4$ amplifies it; ReLU with He and SELU with LeCun keep both flat."
)
PAIRS = (
    ("sigmoid", "glorot_normal", {}),
    ("tanh", "glorot_normal", {}),
    ("tanh", "normal", {"sigma_w2": 4.0}),
    ("relu", "he_normal", {}),
    ("relu", "lecun_normal", {}),
    ("selu", "lecun_normal", {}),
)
DEPTH = 30


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks = (64, 16) if quick else (128, 32)
    nets = {}
    for act, init, params in PAIRS:
        extra = ", ".join(f"$\\sigma_w^2={v:g}$" for v in params.values())
        label = f"{act} + {init}" + (f"({extra})" if extra else "")
        weights = gradmath.initializer(init, **params)
        nets[label] = gradmath.MLP.square(width, DEPTH, activation=act, init=weights)
    return figures.forward_backward(validate.theory_and_simulation(nets, n_networks=n_networks))


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
