"""Training with and without remedies (plain SGD on a synthetic task): a deep sigmoid net whose
lower layers stall, ReLU with He initialisation, and an exploding ReLU net without and with
gradient clipping."""

from __future__ import annotations

import gradmath
from gradmath.numeric.train import make_task, train
from gradmath.render import figures, notes

CHAPTER = "09_practice"
CAPTION = (
    r"SGD on a synthetic 3-class task with 9-layer networks of width 32. Left: training loss "
    r"per epoch (a cross marks a run whose loss or gradient became non-finite). Right: how far "
    r"each layer's weights moved from their initial values by the end. The sigmoid net's "
    r"lower layers barely move while its top layers learn (vanishing gradients); the ReLU net "
    r"with $\sigma_w^2 = 4$ diverges unless its gradients are clipped (exploding gradients)."
)
WIDTHS = (4, *(32,) * 8, 3)


def runs(quick: bool = False) -> dict[str, object]:
    """The training runs of the figure (also used by the remedies chapter)."""
    epochs = 30 if quick else 60
    data = make_task(128, 4, 3, seed=0)
    exploding = gradmath.MLP(
        WIDTHS, activation="relu", init=gradmath.initializer("normal", sigma_w2=4.0)
    )
    configs = {
        "sigmoid + Glorot": (
            gradmath.MLP(WIDTHS, activation="sigmoid", init="glorot_uniform"),
            1.0,
            None,
        ),
        "ReLU + He": (gradmath.MLP(WIDTHS, activation="relu", init="he_normal"), 0.1, None),
        r"ReLU, $\sigma_w^2=4$": (exploding, 0.1, None),
        r"ReLU, $\sigma_w^2=4$, clip value 0.5": (exploding, 0.1, {"value": 0.5}),
        r"ReLU, $\sigma_w^2=4$, clip norm 1": (exploding, 0.1, {"norm": 1.0}),
    }
    return {
        label: train(mlp, data=data, epochs=epochs, lr=lr, seed=0, clip=clip)
        for label, (mlp, lr, clip) in configs.items()
    }


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    results = runs(quick)
    fig, axes = figures.new_figure(1, 2, figsize=(figures.TEXT_WIDTH_IN, 3.6))
    figures.training_curves(results, ax=axes[0, 0])
    axes[0, 0].get_legend().remove()
    figures.layer_change(results, ax=axes[0, 1])
    axes[0, 1].get_legend().remove()
    figures.figure_legend(fig, axes[0, 0], ncols=2)
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
