"""Where mean-field theory stops: the finite-width bias of E[h²] against depth/width for GELU
nets, exact (the chain's law) and to first order in 1/width."""

from __future__ import annotations

import numpy as np

import gradmath
from gradmath.meanfield import predict
from gradmath.meanfield.finite_width import finite_width_profile
from gradmath.render import figures, notes

CHAPTER = "10_finite_width"
CAPTION = (
    r"The finite-width bias of the forward second moment, $\log(\mathbb{E}[(h^l)^2]/q^l)$, "
    r"against depth over width $l/n$, for GELU nets with He weights (Gaussian, zero bias) of "
    r"several widths. Solid: the exact law of the chain, computed on a grid; dotted: the "
    r"$O(1/n)$ expansion \citep{roberts2022}. The expansion follows the exact law "
    r"while the bias is small and then saturates, while the exact bias keeps growing: once the "
    r"mean-field signal has collapsed towards $q^* = 0$, the mean is carried by the few nets "
    r"whose signal has not."
)
DEPTH = 40


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    widths = (64, 256) if quick else (32, 64, 128, 256)
    depth = 20 if quick else DEPTH
    init = gradmath.initializer("normal", sigma_w2=2.0)
    fig, axes = figures.new_figure(figsize=(5.5, 3.6))
    ax = axes[0, 0]
    with figures.style():
        for width, colour in zip(widths, figures.PALETTE, strict=False):
            net = gradmath.MLP.square(width, depth, activation="gelu", init=init)
            ratio = np.arange(1, depth + 1) / width
            for method, style in (("exact", "-"), ("expansion", ":")):
                fw = finite_width_profile(predict(net), method)  # type: ignore[arg-type]
                ax.plot(ratio, fw.log_q - fw.log_q_mf, style, color=colour,
                        label=f"n = {width}" if method == "exact" else None)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("depth / width, $l/n$")
        ax.set_ylabel(r"$\log(\mathbb{E}[(h^l)^2] / q^l)$")
        ax.legend(title="solid: exact, dotted: $O(1/n)$")
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
