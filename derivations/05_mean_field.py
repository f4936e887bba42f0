"""Chapter 5: mean-field theory of signal propagation (Poole et al. 2016; Schoenholz et al.
2017). Length map, fixed point, χ₁, phase diagram, depth scales, and predicted vs simulated
profiles of real sampled networks.

Run alone: ``python derivations/05_mean_field.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import numpy as np

import gradmath
import gradmath.meanfield as mf
import gradmath.numeric as nm
import gradmath.validate as validate
from gradmath.render import latex

TITLE = "Mean-field theory: order, chaos and the edge between them"

#: The running example: a tanh network with a little bias (Schoenholz et al. 2017, fig. 1).
ACT, SIGMA_W2, SIGMA_B2 = "tanh", 1.5, 0.05
LAYERS_SHOWN = 8
SCAN_SIGMA_W2 = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
SCAN_SIGMA_B2 = (0.0, 0.05, 0.2)
DEPTH = 50


def _fmt(x: float, digits: int = 4) -> str:
    return "$\\infty$" if np.isinf(x) else f"${latex.fmt_num(x, digits)}$"


def _length_map_table() -> str:
    rows, q = [], 1.0
    for layer in range(1, LAYERS_SHOWN + 1):
        rows.append([str(layer), _fmt(q, 6)])
        q = float(mf.length_map(ACT, q, SIGMA_W2, SIGMA_B2))
    q_star = float(mf.fixed_point(ACT, SIGMA_W2, SIGMA_B2))
    rows.append([r"$\infty$ ($q^*$)", _fmt(q_star, 6)])
    return latex.table(
        ["layer $l$", "$q^l$"],
        rows,
        caption=rf"The length map iterated from $q^1 = 1$ for {ACT}, "
        rf"$\sigma_w^2 = {SIGMA_W2:g}$, $\sigma_b^2 = {SIGMA_B2:g}$.",
        label="tab:length-map",
    )


def _scan_table() -> str:
    rows = []
    for sw in SCAN_SIGMA_W2:
        ds = mf.depth_scales(ACT, sw, SIGMA_B2)
        mlp = gradmath.MLP.square(
            256, DEPTH, activation=ACT, init=gradmath.initializer("normal", sigma_w2=sw),
            sigma_b2=SIGMA_B2,
        )  # fmt: skip
        ratio = mf.predict(mlp).log_first_last_ratio
        phase = "ordered" if ds.chi1 < 1 else "chaotic"
        rows.append([f"${sw:g}$", _fmt(ds.q_star), _fmt(ds.chi1), phase, _fmt(ds.xi_q, 3),
                     _fmt(ds.xi_c, 3), f"${latex.fmt_log(ratio, 3)}$"])  # fmt: skip
    return latex.table(
        [r"$\sigma_w^2$", "$q^*$", r"$\chi_1$", "phase", r"$\xi_q$", r"$\xi_c$",
         rf"$\|\nabla W^1\|/\|\nabla W^{{{DEPTH}}}\|$"],
        rows,
        align="rrrlrrr",
        caption=rf"Fixed point, $\chi_1$, depth scales and the predicted ratio of first- to "
        rf"last-layer weight-gradient norms in a depth-{DEPTH} {ACT} network, "
        rf"$\sigma_b^2 = {SIGMA_B2:g}$.",
        label="tab:meanfield-scan",
    )  # fmt: skip


def _critical_table() -> str:
    crit = np.asarray(mf.critical_sigma_w2(ACT, np.array(SCAN_SIGMA_B2)), dtype=float)
    rows = [[f"${b:g}$", _fmt(float(c), 6)] for b, c in zip(SCAN_SIGMA_B2, crit, strict=True)]
    return latex.table([r"$\sigma_b^2$", r"critical $\sigma_w^2$ ($\chi_1 = 1$)"], rows)


def _comparison(
    act: str, init: gradmath.Initializer, sigma_b2: float, what: str, *, quick: bool, seed: int
) -> tuple[str, str]:
    width, n_networks, depth = (64, 16, 10) if quick else (128, 64, 10)
    mlp = gradmath.MLP.square(width, depth, activation=act, init=init, sigma_b2=sigma_b2)
    sim = nm.simulate(mlp, n_networks=n_networks, batch=16, seed=seed)
    cmp = validate.compare(mf.predict(mlp), sim)
    caption = (
        rf"{what}, width {width}, depth {depth}: natural logs of the three second moments, "
        rf"theory against the mean of {n_networks} sampled networks, and the $z$-score of the "
        "difference."
    )
    table = latex.float_table(
        cmp.latex(max_rows=10), caption=caption, label=f"tab:cmp-{act}", size=r"\small"
    )
    return table, latex.escape(cmp.verdict)


def chapter(quick: bool = False) -> str:
    q_star = float(mf.fixed_point(ACT, SIGMA_W2, SIGMA_B2))
    chi = float(mf.chi1(ACT, SIGMA_W2, SIGMA_B2))
    crit0 = float(np.asarray(mf.critical_sigma_w2(ACT, 0.0)))
    relu_chi = float(mf.chi1("relu", 2.0, 0.0))
    running = gradmath.initializer("normal", sigma_w2=SIGMA_W2)
    what = rf"{ACT}, $\sigma_w^2 = {SIGMA_W2:g}$, $\sigma_b^2 = {SIGMA_B2:g}$"
    cmp_tanh, verdict_tanh = _comparison(ACT, running, SIGMA_B2, what, quick=quick, seed=1)
    he = gradmath.initializer("he_normal")
    what = r"ReLU with \texttt{he\_normal}"
    cmp_relu, verdict_relu = _comparison("relu", he, 0.0, what, quick=quick, seed=2)
    return rf"""
Sections~\ref{{ch:02_sigmoid_bound}}--\ref{{ch:04_initialisation}} bounded the gradient of a
chain and matched variances layer by layer. For wide networks at initialisation there is an
exact theory of the whole depth profile: when the width $n\to\infty$ each pre-activation
$h^l_i$ is Gaussian, and two numbers per layer, the forward second moment $q^l$ and the
backward one $\tilde q^l$, follow deterministic maps (Poole et al.\ 2016; Schoenholz et al.\
2017). Here $\sigma_w^2 = n\,\mathrm{{Var}}[W]$ and $\sigma_b^2 = \mathrm{{Var}}[b]$.

\subsection{{The length map and its fixed point}}
With $z$ a standard normal,
\begin{{equation}}\label{{eq:length-map}}
  q^{{l+1}} = \sigma_w^2 \int \mathcal{{D}}z\; \varphi\bigl(\sqrt{{q^l}}\,z\bigr)^2 + \sigma_b^2 .
\end{{equation}}
For tanh with $\sigma_b^2 > 0$ the map is increasing and concave, so it has a single fixed point,
a stable one,
$q^* = \sigma_w^2\int\mathcal{{D}}z\,\varphi(\sqrt{{q^*}}z)^2 + \sigma_b^2$, and $q^l$ converges
to it within a few layers (Table~\ref{{tab:length-map}}): the forward signal neither vanishes nor
explodes. For {ACT} at $\sigma_w^2 = {SIGMA_W2:g}$, $\sigma_b^2 = {SIGMA_B2:g}$,
$q^* = {latex.fmt_num(q_star, 6)}$.

{_length_map_table()}

\subsection{{$\chi_1$: the gradient's factor per layer}}
Backpropagation multiplies the gradient second moment by the same factor in every layer once
the forward pass sits at $q^*$,
\begin{{equation}}
  \tilde q^{{l}} = \chi_1\, \tilde q^{{l+1}}, \qquad
  \chi_1 = \sigma_w^2 \int \mathcal{{D}}z\; \varphi'\bigl(\sqrt{{q^*}}\,z\bigr)^2 ,
\end{{equation}}
so that $\|\nabla W^1\| / \|\nabla W^L\| \approx \chi_1^{{(L-1)/2}}$ (Schoenholz et al.\ 2017,
\S4). The same $\chi_1$ is the slope of the correlation map at $c=1$: it decides whether two
nearby inputs are pulled together ($\chi_1<1$, the \emph{{ordered}} phase, where gradients
vanish) or pushed apart ($\chi_1>1$, the \emph{{chaotic}} phase, where they explode).
In the running example $\chi_1 = {latex.fmt_num(chi, 6)}$. For ReLU with He's
$\sigma_w^2 = 2$ and no bias, $\chi_1 = {latex.fmt_num(relu_chi)}$ exactly: He initialisation
puts ReLU networks on the boundary. Table~\ref{{tab:meanfield-scan}} scans $\sigma_w^2$.

{_scan_table()}

\subsection{{The phase diagram}}
The boundary $\chi_1 = 1$ is a curve in the $(\sigma_w^2, \sigma_b^2)$ plane
(Figure~\ref{{fig:phase_diagram_tanh}}). Without bias it sits at
$\sigma_w^2 = {latex.fmt_num(crit0)}$ for tanh; bias moves it to larger weights:

{_critical_table()}

\subsection{{Depth scales}}
Near a fixed point, deviations decay like $e^{{-l/\xi}}$. The forward length relaxes with
$\xi_q^{{-1}} = -\log\bigl(\chi_1 + \sigma_w^2 \int\mathcal{{D}}z\,\varphi''\varphi\bigr)$ and the
correlation between two inputs with $\xi_c^{{-1}} = -\log\bigl(\sigma_w^2\int\mathcal{{D}}z_1
\mathcal{{D}}z_2\,\varphi'(u_1)\varphi'(u_2)\bigr)$ at the stable correlation $c^*$
(Schoenholz et al.\ 2017, eqs.~6--9). $\xi_c$ diverges on the critical line
(Figure~\ref{{fig:depth_scale_tanh}}); Schoenholz et al.\ found that networks train only when
their depth is below about $6\,\xi_c$, which is why initialising \emph{{at the edge of chaos}}
lets very deep networks train.

\subsection{{Predicted versus simulated}}
The theory is about infinitely wide networks; the tables below check it on sampled networks
of finite width, with a tolerance from the Monte-Carlo standard error rather than a fixed
percentage: a $|z|$ below 4 means the difference is within what sampling explains. At finite
width each layer adds a correction of relative size $O(1/n)$ that the infinite-width theory
leaves out; it matters most where $q^l$ itself drifts slowly (no bias, $q^l\to 0$), which is
why the tanh example keeps a little bias. Figure~\ref{{fig:gradient_profiles}} shows whole
profiles for several pairs of activation and initializer, and Figure~\ref{{fig:glorot_compromise}}
what unequal widths do.

{cmp_tanh}
Verdict: {verdict_tanh}.

{cmp_relu}
Verdict: {verdict_relu}.
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
