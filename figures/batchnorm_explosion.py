"""Batch normalisation at initialisation: the forward pass is pinned, the gradient grows
geometrically towards the input (Yang et al. 2019), theory against sampled networks."""

from __future__ import annotations

import gradmath
import gradmath.meanfield as mf
import gradmath.numeric as nm
from gradmath.render import figures, notes

CHAPTER = "06_remedies"
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
    nets = {
        "ReLU + He, batch norm": dict(activation="relu", init="he_normal", batchnorm=True),
        "tanh + Glorot, batch norm": dict(activation="tanh", init="glorot_normal", batchnorm=True),
        "ReLU + He, plain": dict(activation="relu", init="he_normal"),
    }
    curves = {}
    for k, (label, spec) in enumerate(nets.items()):
        mlp = gradmath.MLP.square(width, DEPTH, batch_size=BATCH, **spec)  # type: ignore[arg-type]
        sim = nm.simulate(mlp, n_networks=n_networks, batch=BATCH, seed=k)
        curves[label] = (mf.predict(mlp), sim)
    fig, axes = figures.new_figure(1, 2, figsize=(9.0, 3.4))
    figures.depth_profiles(curves, quantity="q", ax=axes[0, 0], legend=False)
    figures.depth_profiles(curves, quantity="grad_q", ax=axes[0, 1], legend=False)
    figures.figure_legend(fig, axes[0, 1], title=figures.SIM_LEGEND.format(n_se=2))
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
