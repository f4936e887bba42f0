"""Per-layer forward and backward second moments for (activation, initializer) pairs: mean-field
theory as lines, sampled networks as points with Monte-Carlo error bars."""

from __future__ import annotations

import gradmath
import gradmath.meanfield as mf
import gradmath.numeric as nm
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
    curves = {}
    for k, (act, init, params) in enumerate(PAIRS):
        weights = gradmath.initializer(init, **params)
        mlp = gradmath.MLP.square(width, DEPTH, activation=act, init=weights)
        sim = nm.simulate(mlp, n_networks=n_networks, batch=16, seed=k)
        extra = ", ".join(f"$\\sigma_w^2={v:g}$" for v in params.values())
        curves[f"{act} + {init}" + (f"({extra})" if extra else "")] = (mf.predict(mlp), sim)
    fig, axes = figures.new_figure(1, 2, figsize=(9.0, 3.8))
    figures.depth_profiles(curves, quantity="q", ax=axes[0, 0], legend=False)
    figures.depth_profiles(curves, quantity="grad_q", ax=axes[0, 1], legend=False)
    figures.figure_legend(fig, axes[0, 1], title=figures.SIM_LEGEND.format(n_se=2))
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
