"""The spread of the Jacobian spectrum, σ²_{JJᵀ}/m₁², against depth (critical nets) and, for
orthogonal hard-tanh and erf, against q*: Pennington, Schoenholz & Ganguli (2017), eq. 13."""

from __future__ import annotations

import math

import numpy as np

from gradmath.meanfield.spectra import Jacobian, critical_jacobian, critical_network
from gradmath.numeric.spectra import sample_spectra
from gradmath.render import figures, notes

CHAPTER = "11_dynamical_isometry"
CAPTION = (
    r"Left: the relative variance $\sigma^2_{JJ^\top}/m_1^2$ of the eigenvalues of $JJ^\top$ "
    r"against depth for critical networks ($q^* = 1/4$ for hard-tanh and erf); lines: theory "
    r"$L(\mu_2/\mu_1^2 - 1 - s_1)$, points: sampled networks ($\pm 2$ SE; open: orthogonal). "
    r"Gaussian weights (solid) grow at least like $L$; orthogonal (dashed) ReLU like $L$; "
    r"orthogonal erf and hard-tanh "
    r"with a slope that vanishes as $q^*\to 0$. Right: that slope per layer against $q^*$."
)
ACTS = ("relu", "hard_tanh", "erf")
Q_STAR = {"relu": 1.0, "hard_tanh": 0.25, "erf": 0.25}


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks, depths_sim = (64, 4, (2, 8)) if quick else (256, 8, (2, 8, 32))
    fig, axes = figures.new_figure(1, 2, figsize=(figures.TEXT_WIDTH_IN, 4.2))
    ax = axes[0, 0]
    depths = np.unique(np.geomspace(1, 128, 30).astype(int))
    for i, act in enumerate(ACTS):
        colour = figures.SERIES[i]["color"]
        marker = figures.SERIES[i]["marker"]
        for weights, ls in (("gaussian", "-"), ("orthogonal", "--")):
            per_layer = critical_jacobian(act, Q_STAR[act], depth=1, weights=weights).variance
            label = f"{act.replace('_', '-')}, {weights[:5]}."
            ax.plot(depths, per_layer * depths, ls=ls, color=colour, marker=marker,
                    markevery=[-1], label=label)  # fmt: skip
            for depth in depths_sim:
                net, input_q = critical_network(
                    act, Q_STAR[act], width=width, depth=depth, weights=weights
                )
                jac = Jacobian.of(net, input_q)
                sim = sample_spectra(net, n_networks=n_networks, seed=depth, input_q=input_q)
                x = sim.scaled(jac.log_mean)
                var = np.mean(x * x, axis=1) / np.mean(x, axis=1) ** 2 - 1
                se = var.std(ddof=1) / math.sqrt(var.size)
                ax.errorbar(
                    depth,
                    var.mean(),
                    yerr=2 * se,
                    color=colour,
                    marker=marker,
                    ls="none",
                    mfc="white" if weights == "orthogonal" else colour,
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth $L$")
    ax.set_ylabel(r"$\sigma^2_{JJ^\top}/m_1^2$")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3)
    ax = axes[0, 1]
    q = np.geomspace(1e-3, 4.0, 40)
    for i, act in enumerate(("hard_tanh", "erf")):
        # hard-tanh's slope 1/p − 1 ≈ √(8q/π) e^{−1/(2q)} is below double precision for q < 0.03.
        qq = q[q >= 0.03] if act == "hard_tanh" else q
        slope = [critical_jacobian(act, v, depth=1, weights="orthogonal").variance for v in qq]
        look = figures.SERIES[i + 1]
        ax.plot(qq, slope, color=look["color"], ls=look["linestyle"], label=act.replace("_", "-"))
    ax.axhline(1.0, color=figures.SERIES[0]["color"], ls="-", label="ReLU")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$q^*$")
    ax.set_ylabel(r"$(\sigma^2_{JJ^\top}/m_1^2)/L$, orthogonal")
    ax.legend(loc="lower right")
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
