"""The spread of the Jacobian spectrum, σ²_{JJᵀ}/m₁², against depth (critical nets) and, for
orthogonal hard-tanh and erf, against q*: Pennington, Schoenholz & Ganguli (2017), eq. 13."""

from __future__ import annotations

import math

import numpy as np

from gradmath.meanfield.spectra import Jacobian, critical_jacobian, critical_mlp
from gradmath.numeric.spectra import sample_spectra
from gradmath.render import figures, notes

CHAPTER = "11_dynamical_isometry"
CAPTION = (
    r"Left: the relative variance $\sigma^2_{JJ^\top}/m_1^2$ of the eigenvalues of $JJ^\top$ "
    r"against depth for critical networks ($q^* = 1/4$ for hard-tanh and erf); lines: theory "
    r"$L(\mu_2/\mu_1^2 - 1 - s_1)$, points: sampled networks ($\pm 2$ SE). Gaussian weights "
    r"(solid) grow at least like $L$; orthogonal ReLU like $L$; orthogonal erf and hard-tanh "
    r"with a slope that vanishes as $q^*\to 0$. Right: that slope per layer against $q^*$."
)
ACTS = ("relu", "hard_tanh", "erf")
Q_STAR = {"relu": 1.0, "hard_tanh": 0.25, "erf": 0.25}


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks, depths_sim = (64, 4, (2, 8)) if quick else (256, 8, (2, 8, 32))
    fig, axes = figures.new_figure(1, 2, figsize=(9.0, 3.4))
    ax = axes[0, 0]
    depths = np.unique(np.geomspace(1, 128, 30).astype(int))
    for i, act in enumerate(ACTS):
        colour = figures.PALETTE[i]
        for weights, ls, marker in (("gaussian", "-", "o"), ("orthogonal", "--", "s")):
            per_layer = critical_jacobian(act, Q_STAR[act], depth=1, weights=weights).variance
            label = f"{act.replace('_', '-')}, {weights}"
            ax.plot(depths, per_layer * depths, ls=ls, color=colour, label=label)
            for depth in depths_sim:
                net, input_q = critical_mlp(
                    act, Q_STAR[act], width=width, depth=depth, weights=weights
                )
                jac = Jacobian.of(net, input_q)
                sim = sample_spectra(net, n_networks=n_networks, seed=depth, input_q=input_q)
                x = sim.scaled(jac.log_mean)
                var = np.mean(x * x, axis=1) / np.mean(x, axis=1) ** 2 - 1
                se = var.std(ddof=1) / math.sqrt(var.size)
                ax.errorbar(depth, var.mean(), yerr=2 * se, color=colour, marker=marker, ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth $L$")
    ax.set_ylabel(r"$\sigma^2_{JJ^\top}/m_1^2$")
    ax.legend(fontsize=6.5, ncols=2)
    ax = axes[0, 1]
    q = np.geomspace(1e-3, 4.0, 40)
    for i, act in enumerate(("hard_tanh", "erf")):
        slope = [critical_jacobian(act, qq, depth=1, weights="orthogonal").variance for qq in q]
        ax.plot(
            q, slope, color=figures.PALETTE[i + 1], label=f"{act.replace('_', '-')}, orthogonal"
        )
    ax.axhline(1.0, color=figures.PALETTE[0], ls="--", label="ReLU, orthogonal (1 per layer)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$q^*$")
    ax.set_ylabel(r"$(\sigma^2_{JJ^\top}/m_1^2)/L$")
    ax.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
