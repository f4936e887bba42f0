"""Spectral densities of JJᵀ, Gaussian against orthogonal weights, at depths 2, 8, 32 and 128
for critical ReLU, hard-tanh and erf nets: free-probability theory (lines) over the sampled
eigenvalues (histograms), after Pennington, Schoenholz & Ganguli (2017), fig. 2."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import MaxNLocator

from gradmath.meanfield.spectra import Jacobian, critical_network
from gradmath.numeric.spectra import sample_spectra
from gradmath.render import figures, notes

CHAPTER = "11_dynamical_isometry"
CAPTION = (
    r"Eigenvalue densities of $JJ^\top$ (in units of its mean, on a log axis, so the curves are "
    r"$x\rho(x)\ln 10$) for critical networks: ReLU, and hard-tanh and erf at $q^*=1/4$. "
    r"Blue, solid: Gaussian weights; orange, dashed: orthogonal. Lines: free-probability "
    r"theory; steps: eigenvalues of sampled networks. ReLU's dead units put half of the "
    r"eigenvalues at exactly $0$ (not shown); vertical lines are point masses (hard-tanh with "
    r"orthogonal weights). With depth every Gaussian spectrum spreads over many decades; "
    r"orthogonal erf and hard-tanh spread slowly, orthogonal ReLU does not escape."
)
ACTS = ("relu", "hard_tanh", "erf")
Q_STAR = {"relu": 1.0, "hard_tanh": 0.25, "erf": 0.25}
DEPTHS = (2, 8, 32, 128)
X_RANGE = (-8.0, 3.0)


def make(quick: bool = False):  # type: ignore[no-untyped-def]
    width, n_networks = (64, 2) if quick else (256, 4)
    depths = DEPTHS[:2] if quick else DEPTHS
    fig, axes = figures.new_figure(
        len(ACTS), len(depths), figsize=(figures.TEXT_WIDTH_IN, 6.6 if not quick else 5.6)
    )
    bins = np.linspace(*X_RANGE, 56)
    for r, act in enumerate(ACTS):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            top = 0.0
            for k, weights in enumerate(("gaussian", "orthogonal")):
                look = figures.SERIES[k]
                colour = look["color"]
                net, input_q = critical_network(
                    act, Q_STAR[act], width=width, depth=depth, weights=weights
                )
                jac = Jacobian.of(net, input_q)
                sp = jac.spectrum()
                x = sp.x[sp.x > 0]
                curve = sp.log_density[sp.x > 0] * math.log(10)
                ax.plot(np.log10(x), curve, color=colour, linestyle=look["linestyle"])
                # Scale to the bulk: orthogonal edges can diverge (ReLU at L = 2: arcsine law).
                top = max(top, float(np.max(curve[sp.s[sp.x > 0] > 0.2], initial=0.0)))
                for a, m in zip(sp.atoms, sp.atom_mass, strict=True):
                    if a > 0 and m > 1e-3:
                        ax.axvline(math.log10(a), color=colour, ls=":", lw=1.2)
                sim = sample_spectra(
                    net, n_networks=n_networks, seed=10 * depth + k, input_q=input_q
                )
                lam = sim.scaled(jac.log_mean).ravel()
                lam = lam[lam > 1e-30 * sp.lambda_max]
                hist, edges = np.histogram(np.log10(lam), bins=bins)
                dens = hist / (sim.eigenvalues.size * np.diff(edges))
                ax.stairs(dens, edges, color=colour, alpha=0.55, lw=0.9)
            ax.set_xlim(*X_RANGE)
            ax.set_xticks([-8, -4, 0])
            ax.set_ylim(0, 1.4 * top)
            ax.yaxis.set_major_locator(MaxNLocator(3))
            if r == 0:
                ax.set_title(f"$L = {depth}$")
            if c == 0:
                ax.set_ylabel(act.replace("_", "-"))
            if r == len(ACTS) - 1:
                ax.set_xlabel(r"$\log_{10}(\lambda/m_1)$")
    return fig


if __name__ == "__main__":
    raise SystemExit(notes.figure_main(make, __file__))
