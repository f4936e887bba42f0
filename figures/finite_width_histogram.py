"""One initialisation is not the average: log gradient norms of many ReLU nets against the
exact law and its log-normal limit (Hanin & Nica 2019)."""

from __future__ import annotations

import numpy as np

import gradmath
from gradmath.meanfield.finite_width import relu_gradient_law
from gradmath.numeric import backward, forward, sample_params
from gradmath.render import figures, notes

CHAPTER = "10_finite_width"
CAPTION = (
    r"The gradient at layer 1 of He-initialised ReLU nets of depth 64, one example per net, "
    r"$\log\big(\tfrac{1}{n}\|\delta^1\|^2\big)$ across independent initialisations "
    r"(histograms) for widths 16 and 64. Solid: the exact law (a product of scaled "
    r"chi-squares, \citealp{hanin2019}); dashed: its log-normal limit "
    r"$\mathcal{N}(-\tfrac52\beta, 5\beta)$ around $\log\mathbb{E}$, $\beta = \sum_l 1/n_l$. "
    r"The mean of the gradient's square is 1 at every width (vertical line at its log, 0), "
    r"yet a typical net sees far less, and at width 16 almost every net does."
)
DEPTH = 64
WIDTHS = (16, 64)


def _log_grad_layer1(width: int, nets: int, seed: int) -> np.ndarray:
    net = gradmath.MLP.square(width, DEPTH, activation="relu", init="kaiming_normal_")
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, nets, 100):
        k = min(100, nets - start)
        ps = [sample_params(net, rng) for _ in range(k)]
        stack = [(np.stack([p[i][0] for p in ps]), np.stack([p[i][1] for p in ps]))
                 for i in range(DEPTH)]  # fmt: skip
        cache = forward(net, stack, rng.standard_normal((k, 1, width)))
        grads = backward(net, stack, cache, rng.standard_normal((k, 1, width)))
        with np.errstate(divide="ignore"):
            out.append(np.log(np.mean(grads.delta[0][:, 0, :] ** 2, axis=-1)))
    logs = np.concatenate(out)
    return logs[np.isfinite(logs)]  # a dead net (probability ≈ 64·2⁻¹⁶) has no logarithm


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    nets = 200 if quick else 2000
    fig, axes = figures.new_figure(1, len(WIDTHS), figsize=figures.WIDE)
    with figures.style():
        for ax, width, colour in zip(axes[0], WIDTHS, figures.PALETTE, strict=False):
            logs = _log_grad_layer1(width, nets, seed=width)
            law = relu_gradient_law((width,) * (DEPTH + 1), 1)
            x = np.linspace(logs.min() - 1, logs.max() + 1, 400)
            dens = np.gradient(law.cdf_log(x), x)
            mu, var = law.lognormal()
            normal = np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)
            ax.hist(logs, bins=50, density=True, color=colour, alpha=0.35, label="sampled nets")
            ax.plot(x, dens, color=colour, label="exact law")
            ax.plot(x, normal, color="black", linestyle="--", label="log-normal limit")
            ax.axvline(0.0, color="grey", linewidth=0.8)
            ax.set_title(f"width {width}, depth {DEPTH}, {nets} nets")
            ax.set_xlabel(r"$\log\,\frac{1}{n}\|\delta^1\|^2$ (mean of the square: 0)")
        axes[0, 0].set_ylabel("density")
        axes[0, 0].legend(loc="upper left")
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
