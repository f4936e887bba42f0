"""Chapter 5: mean-field theory of signal propagation (Poole et al. 2016; Schoenholz et al.
2017). Length map, fixed point, χ₁, phase diagram, depth scales, and predicted vs simulated
profiles of real sampled networks.

Run alone: ``python derivations/05_mean_field.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import gradmath
import gradmath.meanfield as mf
import gradmath.numeric as nm
import gradmath.validate as validate
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "Mean-field theory: order, chaos and the edge between them"

OBJECTIVES = (
    r"State the length map and the gradient recursion of a wide random network, and compute "
    r"the fixed point $q^*$ and the per-layer gradient factor $\chi_1$.",
    r"Place an initialisation in the ordered or chaotic phase, and read off from $\chi_1$ "
    r"whether gradients vanish or explode.",
    r"Use the depth scale $\xi_c$ to estimate how deep a network can be and still train.",
    r"Check a prediction against sampled finite networks with a tolerance from the "
    r"Monte-Carlo standard error.",
)

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


#: The layers the comparison table shows (of depth 10).
SHOWN = (1, 2, 5, 10)


def _comparison(
    act: str, init: gradmath.Initializer, sigma_b2: float, *, quick: bool, seed: int
) -> tuple[list[list[str]], float, int, int]:
    width, n_networks, depth = (64, 16, 10) if quick else (128, 64, 10)
    mlp = gradmath.MLP.square(width, depth, activation=act, init=init, sigma_b2=sigma_b2)
    sim = nm.simulate(mlp, n_networks=n_networks, batch=16, seed=seed)
    theory = mf.predict(mlp)
    cmp = validate.compare(theory, sim)
    rows = []
    for layer in SHOWN:
        i = layer - 1
        rows.append([str(layer),
                     *(f"${latex.fmt_num(float(x), 4)}$" for x in (theory.q[i], sim.q[i])),
                     f"${float(cmp.z[0, i]):+.2f}$",
                     *(f"${latex.fmt_num(float(x), 4)}$" for x in (theory.grad_q[i],
                                                                  sim.grad_q[i])),
                     f"${float(cmp.z[1, i]):+.2f}$"])  # fmt: skip
    return rows, float(np.max(np.abs(cmp.z))), width, n_networks


def _comparison_table(quick: bool) -> tuple[str, float, float]:
    running = gradmath.initializer("normal", sigma_w2=SIGMA_W2)
    tanh_rows, worst_tanh, width, n_networks = _comparison(
        ACT, running, SIGMA_B2, quick=quick, seed=1
    )
    relu_rows, worst_relu, _, _ = _comparison(
        "relu", gradmath.initializer("he_normal"), 0.0, quick=quick, seed=2
    )

    def block(title: str, rows: list[list[str]]) -> list[str]:
        return [rf"\multicolumn{{7}}{{l}}{{{title}}} \\", *(" & ".join(r) + r" \\" for r in rows)]

    header = ["$l$", "$q^l$ theory", "sim.", "$z$", r"$\tilde q^l$ theory", "sim.", "$z$"]
    tabular = "\n".join([
        r"\begin{tabular}{rrrrrrr}", r"\toprule", " & ".join(header) + r" \\", r"\midrule",
        *block(rf"{ACT}, $\sigma_w^2 = {SIGMA_W2:g}$, $\sigma_b^2 = {SIGMA_B2:g}$", tanh_rows),
        r"\midrule",
        *block(r"ReLU, \texttt{he\_normal}, no bias", relu_rows),
        r"\bottomrule", r"\end{tabular}",
    ])  # fmt: skip
    table = latex.float_table(
        tabular,
        caption=rf"Theory against simulation, width {width}, depth 10: the forward second "
        r"moment $q^l$ and the backward one $\tilde q^l$ (with $\tilde q^{10} = 1$), theory "
        rf"against the mean of {n_networks} sampled networks, and the $z$-score of the "
        r"difference of their logs.",
        label="tab:cmp",
        size=r"\small",
    )
    return table, worst_tanh, worst_relu


def ratio_parts(sigma_w2: float = SIGMA_W2, depth: int = DEPTH) -> dict[str, float]:
    """‖∇W¹‖/‖∇W^L‖ of the scan's tanh net and its three factors: χ₁^((L−1)/2), the transient
    of q̃ before q^l reaches q*, and the input factor (E[(x⁰)²]/E[(x^{L−1})²])^½."""
    mlp = gradmath.MLP.square(
        256, depth, activation=ACT, init=gradmath.initializer("normal", sigma_w2=sigma_w2),
        sigma_b2=SIGMA_B2,
    )  # fmt: skip
    p = mf.predict(mlp)
    chi = float(mf.chi1(ACT, sigma_w2, SIGMA_B2))
    log_grad = float(p.log_grad_q[0] - p.log_grad_q[-1])
    log_in = float(p.log_wgrad_q[0] - p.log_grad_q[0])  # log E[(x^0)^2]
    log_top = float(p.log_wgrad_q[-1] - p.log_grad_q[-1])  # log E[(x^{L-1})^2]
    return {
        "ratio": math.exp(float(p.log_first_last_ratio)),
        "chi": chi,
        "chi_part": chi ** ((depth - 1) / 2),
        "transient": math.exp((log_grad - (depth - 1) * math.log(chi)) / 2),
        "input": math.exp((log_in - log_top) / 2),
    }


def chapter(quick: bool = False) -> str:
    q_star = float(mf.fixed_point(ACT, SIGMA_W2, SIGMA_B2))
    chi = float(mf.chi1(ACT, SIGMA_W2, SIGMA_B2))
    crit0 = float(np.asarray(mf.critical_sigma_w2(ACT, 0.0)))
    relu_chi = float(mf.chi1("relu", 2.0, 0.0))
    xi_c = float(mf.depth_scales(ACT, SIGMA_W2, SIGMA_B2).xi_c)
    parts = ratio_parts()
    cmp_table, worst_tanh, worst_relu = _comparison_table(quick)
    f = latex.fmt_num
    return rf"""
Chapters~\ref{{ch:02_sigmoid_bound}}--\ref{{ch:04_initialisation}} bounded the gradient of a
chain and matched variances layer by layer. For wide networks at initialisation there is an
exact theory of the whole depth profile \citep{{poole2016,schoenholz2017}}. When the width
$n\to\infty$, each pre-activation $h^l_i$ is a sum of many independent terms and hence Gaussian,
and two numbers per layer, the forward second moment $q^l = \mathbb{{E}}[(h^l_i)^2]$ and the
backward one $\tilde q^l = \mathbb{{E}}[(\partial\ell/\partial h^l_i)^2]$, follow deterministic
maps. Throughout, $\sigma_w^2 = n\,\mathrm{{Var}}[W]$ and $\sigma_b^2 = \mathrm{{Var}}[b]$.

\subsection{{The length map and its fixed point}}
Equation~\eqref{{eq:fwd-var}} with the bias added, and with $h^l_j \sim \mathcal{{N}}(0, q^l)$,
becomes the \emph{{length map}}: with $z$ a standard normal,
\begin{{equation}}\label{{eq:length-map}}
  q^{{l+1}} = \sigma_w^2 \int \mathcal{{D}}z\; \varphi\bigl(\sqrt{{q^l}}\,z\bigr)^2 + \sigma_b^2 .
\end{{equation}}
For tanh with $\sigma_b^2 > 0$ the map is increasing and concave, so it has a single fixed point
$q^*$, and it is stable: $q^l$ converges to it within a few layers
(Table~\ref{{tab:length-map}}). The forward signal neither vanishes nor explodes. For {ACT} at
$\sigma_w^2 = {SIGMA_W2:g}$, $\sigma_b^2 = {SIGMA_B2:g}$, $q^* = {f(q_star, 4)}$.

{_length_map_table()}

\subsection{{$\chi_1$: the gradient's factor per layer}}
Equation~\eqref{{eq:bwd-var}} for a square network gives the backward recursion
$\tilde q^l = \tilde q^{{l+1}}\,\sigma_w^2\,\mathbb{{E}}[\varphi'(h^l)^2]$. Once the forward
pass sits at $q^*$ the factor is the same in every layer,
\begin{{equation}}\label{{eq:chi1}}
  \tilde q^{{l}} = \chi_1\, \tilde q^{{l+1}}, \qquad
  \chi_1 = \sigma_w^2 \int \mathcal{{D}}z\; \varphi'\bigl(\sqrt{{q^*}}\,z\bigr)^2 ,
\end{{equation}}
so the gradient's second moment changes by $\chi_1^{{L-1}}$ from the top layer to the bottom
one \citep[\S4]{{schoenholz2017}}. The same $\chi_1$ is the slope of the correlation map at
$c=1$: it decides whether two nearby inputs are pulled together ($\chi_1<1$, the
\emph{{ordered}} phase, where gradients vanish) or pushed apart ($\chi_1>1$, the
\emph{{chaotic}} phase, where they explode). In the running example $\chi_1 = {f(chi, 4)}$.
For ReLU with He's $\sigma_w^2 = 2$ and no bias, $\chi_1 = {f(relu_chi)}$ exactly: He
initialisation puts ReLU networks on the boundary. Table~\ref{{tab:meanfield-scan}} scans
$\sigma_w^2$, and Figure~\ref{{fig:gradient_profiles}} shows whole profiles, theory and sampled
networks, for six pairs of activation and initializer.
\gradmathfigure{{gradient_profiles}}

{_scan_table()}

The last column of Table~\ref{{tab:meanfield-scan}} is the ratio of weight-gradient norms,
and it is not simply $\chi_1^{{(L-1)/2}}$. Since
$\partial\ell/\partial W^l_{{ij}} = \delta^l_i x^{{l-1}}_j$, the squared norm of a layer's
weight gradient is $n^2\,\tilde q^l\,\mathbb{{E}}[(x^{{l-1}}_j)^2]$, and the ratio has three
factors. For $\sigma_w^2 = {SIGMA_W2:g}$:
\begin{{equation}}
  \frac{{\|\nabla W^1\|}}{{\|\nabla W^{{{DEPTH}}}\|}} = {f(parts["ratio"], 3)}
  = \underbrace{{{f(parts["chi_part"], 3)}}}_{{\chi_1^{{{DEPTH - 1}/2}}}}
  \times \underbrace{{{f(parts["transient"], 3)}}}_{{\text{{transient}}}}
  \times \underbrace{{{f(parts["input"], 3)}}}
_{{(\mathbb{{E}}[(x^0)^2]/\mathbb{{E}}[(x^{{{DEPTH - 1}}})^2])^{{1/2}}}} .
\end{{equation}}
The \emph{{transient}} is the extra shrinkage in the first layers, where $q^l$ is still above
$q^*$ and tanh's slope is smaller; the \emph{{input factor}} appears because the first layer
multiplies its gradient by the input ($\mathbb{{E}}[(x^0)^2] = 1$) while the last multiplies it by
$\tanh(h^{{{DEPTH - 1}}})$ at the fixed point, a smaller second moment. Deep enough, the
$\chi_1$ factor dominates: it is the only one that grows with $L$.

\subsection{{The phase diagram}}
The boundary $\chi_1 = 1$ is a curve in the $(\sigma_w^2, \sigma_b^2)$ plane
(Figure~\ref{{fig:phase_diagram_tanh}}). Without bias it sits at
$\sigma_w^2 = {f(crit0)}$ for tanh; bias moves it to larger weights:

{_critical_table()}
\gradmathfigure{{phase_diagram_tanh}}

\subsection{{Depth scales}}
Near a fixed point, deviations decay like $e^{{-l/\xi}}$. The forward length relaxes with
\begin{{equation}}
  \xi_q^{{-1}} = -\log\Bigl(\chi_1 + \sigma_w^2 \int\mathcal{{D}}z\,\varphi''\varphi\Bigr),
\end{{equation}}
and the correlation between two inputs with
\begin{{equation}}
  \xi_c^{{-1}} = -\log\Bigl(\sigma_w^2\int\mathcal{{D}}z_1\mathcal{{D}}z_2\,
  \varphi'(u_1)\varphi'(u_2)\Bigr)
\end{{equation}}
at the stable correlation $c^*$ \citep[eqs.~6--9]{{schoenholz2017}}; in the ordered phase
$c^* = 1$ and $\xi_c = -1/\log\chi_1$. $\xi_c$ diverges on the critical line
(Figure~\ref{{fig:depth_scale_tanh}}). \citet{{schoenholz2017}} found that networks train
only when their depth is below about $6\,\xi_c$: for the running example
$\xi_c = {f(xi_c, 3)}$, so about ${6 * xi_c:.0f}$ layers. This is why initialising \emph{{at the
edge of chaos}}, $\chi_1 \approx 1$, lets very deep networks train.
\gradmathfigure{{depth_scale_tanh}}

\subsection{{Predicted versus simulated}}
The theory is about infinitely wide networks; Table~\ref{{tab:cmp}} checks it on sampled
networks of finite width. The tolerance comes from
the Monte-Carlo standard error rather than a fixed percentage: $z$ is the difference of
the logs over its standard error, on the normal scale (calibrated for the skewed,
close to log-normal law of one network's moments: \texttt{{gradmath.validate}}), and a
$|z|$ below 4 means the difference is within what sampling explains (largest $|z|$:
{worst_tanh:.2f} for tanh, {worst_relu:.2f} for ReLU, over all ten layers). At finite width
each layer adds a correction of relative size $O(1/n)$
that the infinite-width theory leaves out; it matters most where $q^l$ itself drifts slowly
(no bias, $q^l\to 0$), which is why the tanh example keeps a little bias.

{cmp_table}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"At infinite width $q^{l+1} = \sigma_w^2\,\mathbb{E}[\varphi(\sqrt{q^l}z)^2] + "
        r"\sigma_b^2$ and $\tilde q^l = \chi_1\tilde q^{l+1}$ at the fixed point, "
        r"$\chi_1 = \sigma_w^2\,\mathbb{E}[\varphi'(\sqrt{q^*}z)^2]$.",
        r"$\chi_1 < 1$: ordered phase, gradients vanish; $\chi_1 > 1$: chaotic phase, gradients "
        r"explode; $\chi_1 = 1$: the edge of chaos (ReLU with He, tanh with $\sigma_w^2 = 1$, "
        r"$\sigma_b^2 = 0$).",
        r"Networks train up to a depth of about $6\xi_c$, and $\xi_c \to \infty$ at the edge.",
        r"Sampled networks agree with the theory within their standard errors; finite width "
        r"adds $O(1/n)$ per layer.",
    )


def depth_to_shrink(act: str, sigma_w2: float, factor: float) -> int:
    """Layers until the gradient's second moment has shrunk by ``factor`` (χ₁^L < factor)."""
    chi = float(mf.chi1(act, sigma_w2, 0.0))
    return math.ceil(math.log(factor) / math.log(chi))


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    q2 = float(mf.fixed_point("tanh", 2.0, 0.1))
    d = depth_to_shrink("relu", 1.5, 1e-6)
    xi = float(mf.depth_scales(ACT, SIGMA_W2, SIGMA_B2).xi_c)
    return (
        Exercise(
            "tanh-fixed-point",
            r"Iterate the length map~\eqref{eq:length-map} for tanh with $\sigma_w^2 = 2$, "
            r"$\sigma_b^2 = 0.1$ (numerically, from $q = 1$). Where does it settle?",
            rf"$q^* \approx {latex.fmt_num(q2, 5)}$, reached to four digits within about ten "
            r"iterations. Larger weights push the fixed point up: compare $q^* \approx 0.418$ "
            r"at $\sigma_w^2 = 1.5$, $\sigma_b^2 = 0.05$.",
            q2,
        ),
        Exercise(
            "relu-ordered-depth",
            r"A ReLU network without bias is initialised with $\sigma_w^2 = 1.5$ instead of He's "
            r"$2$. What is $\chi_1$, and after how many layers has the gradient's second moment "
            r"fallen by a factor $10^{6}$?",
            rf"$\chi_1 = \sigma_w^2/2 = 0.75$, and $0.75^L < 10^{{-6}}$ for "
            rf"$L > 6\ln 10/\ln(4/3) \approx {6 * math.log(10) / math.log(4 / 3):.2f}$, so "
            rf"$L = {d}$.",
            d,
        ),
        Exercise(
            "trainable-depth",
            rf"Estimate the deepest tanh network with $\sigma_w^2 = {SIGMA_W2:g}$, "
            rf"$\sigma_b^2 = {SIGMA_B2:g}$ that still trains, by the $6\,\xi_c$ rule.",
            rf"The network is in the ordered phase ($\chi_1 = {latex.fmt_num(chi_of_running(), 4)}"
            rf"$), so $\xi_c = -1/\ln\chi_1 \approx {latex.fmt_num(xi, 4)}$ and the rule gives "
            rf"about ${6 * xi:.0f}$ layers.",
            6 * xi,
        ),
    )


def chi_of_running() -> float:
    return float(mf.chi1(ACT, SIGMA_W2, SIGMA_B2))


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
