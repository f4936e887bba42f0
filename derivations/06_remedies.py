"""Chapter 6: remedies in the architecture and the update. Non-saturating activations, dying
ReLUs and leaky variants, SELU self-normalisation, residual connections, gradient clipping.
Every number is computed by gradmath.

Run alone: ``python derivations/06_remedies.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import gradmath
import gradmath.meanfield as mf
from gradmath.clipping import clip_by_norm, clip_by_value, direction_change
from gradmath.render import latex
from gradmath.render.notes import Exercise
from gradmath.symbolic import value_clip_derivation

TITLE = "Remedies: activations, residual connections, clipping"

OBJECTIVES = (
    r"Explain why ReLU with He initialisation keeps gradients flat, how ReLU units die, and "
    r"what leaky variants change.",
    r"Tell a flat gradient ratio from healthy gradients: report absolute per-layer moments.",
    r"Explain SELU's self-normalisation and residual connections' identity path, with the "
    r"price each pays.",
    r"Apply clipping by value and by norm, and say which preserves the update's direction.",
)

DEPTH, WIDTH = 50, 256
PAIRS = (
    ("sigmoid", "glorot_normal"),
    ("tanh", "glorot_normal"),
    ("relu", "lecun_normal"),
    ("relu", "he_normal"),
    ("selu", "lecun_normal"),
)
LEAKY_SLOPES = (0.01, 0.1, 0.2)
CLIP_G = (0.9, 100.0)


def _num(x: float, digits: int = 3) -> str:
    return latex.fmt_num(float(x), digits)


def remedy_profiles() -> dict[tuple[str, str], dict[str, float]]:
    """Per pair: χ₁ at the forward fixed point reached, log q^L/q^1, log q̃^1/q̃^L and the log
    first/last weight-gradient ratio of a square depth-50 net (mean-field theory)."""
    out = {}
    for act, init in PAIRS:
        p = mf.predict(gradmath.MLP.square(WIDTH, DEPTH, activation=act, init=init))
        sw2 = gradmath.initializer(init).variance(WIDTH, WIDTH) * WIDTH
        q_top = float(np.exp(p.log_q[-1]))
        out[(act, init)] = {
            "chi": float(mf.chi1(act, sw2, 0.0)) if act != "relu" else sw2 / 2,
            "log_q": float(p.log_q[-1] - p.log_q[0]),
            "log_grad": float(p.log_grad_q[0] - p.log_grad_q[-1]),
            "log_ratio": float(p.log_first_last_ratio),
            "q_top": q_top,
        }
    return out


def _ratio_table() -> str:
    rows = []
    for (act, init), v in remedy_profiles().items():
        rows.append([latex.escape(act), rf"\texttt{{{latex.escape(init)}}}",
                     f"${_num(v['chi'], 3)}$",
                     f"${latex.fmt_log(v['log_q'])}$",
                     f"${latex.fmt_log(v['log_grad'])}$",
                     f"${latex.fmt_log(v['log_ratio'])}$"])  # fmt: skip
    return latex.table(
        ["activation", "initializer", r"$\chi_1$", rf"$q^{{{DEPTH}}}/q^1$",
         rf"$\tilde q^1/\tilde q^{{{DEPTH}}}$", rf"$\|\nabla W^1\|/\|\nabla W^{{{DEPTH}}}\|$"],
        rows,
        align="llrrrr",
        caption=rf"Square networks of width {WIDTH} and depth {DEPTH}, no bias (mean-field "
        r"theory): the per-layer gradient factor $\chi_1$ (for tanh and SELU at the fixed "
        r"point the forward pass approaches), the change of the forward second moment from the "
        r"first layer to the last, of the gradient's second moment from the last layer to the "
        r"first, and the ratio of first- to last-layer weight-gradient norms.",
        label="tab:remedy-ratios",
        size=r"\small",
    )  # fmt: skip


def _leaky_table() -> str:
    rows = []
    for a in LEAKY_SLOPES:
        act = gradmath.activation("leaky_relu", slope=a)
        crit = float(np.asarray(mf.critical_sigma_w2(act, 0.0)))
        gain = gradmath.calculate_gain("leaky_relu", a)
        rows.append([f"${a:g}$", f"${_num(crit, 5)}$", f"${_num(gain**2, 5)}$"])
    return latex.table(
        [r"slope $a$", r"critical $\sigma_w^2$ ($\chi_1 = 1$)", r"PyTorch gain$^2$"],
        rows,
        align="rcc",
        caption=r"Leaky ReLU $\varphi(z) = \max(az, z)$: $\chi_1 = \sigma_w^2(1+a^2)/2$, so "
        r"the critical variance is $2/(1+a^2)$, exactly the square of PyTorch's gain.",
        label="tab:leaky",
    )


def _residual_table() -> str:
    rows = []
    alphas = {
        "plain": None,
        "$0.1$": 0.1,
        rf"$1/\sqrt{{{DEPTH}}}$": 1 / math.sqrt(DEPTH),
        "$1$": 1.0,
    }
    for text, alpha in alphas.items():
        mlp = gradmath.MLP.square(WIDTH, DEPTH, activation="tanh",
                                  init=gradmath.initializer("normal", sigma_w2=0.5),
                                  residual=alpha)  # fmt: skip
        p = mf.predict(mlp)
        rows.append([text, f"${latex.fmt_log(float(p.log_q[-1]))}$",
                     f"${latex.fmt_log(float(p.log_grad_q[0]))}$"])  # fmt: skip
    return latex.table(
        [r"$\alpha$", rf"$q^{{{DEPTH}}}$", r"$\tilde q^1$ (with $\tilde q^{L} = 1$)"],
        rows,
        caption=rf"Forward second moment at the top and gradient second moment at the bottom of "
        rf"a depth-{DEPTH} tanh network with $\sigma_w^2 = 0.5$ (deep in the ordered phase), "
        r"plain or with residual blocks of branch scale $\alpha$.",
        label="tab:residual",
    )


def clip_angles(g: tuple[float, ...] = CLIP_G, c: float = 1.0) -> tuple[float, float]:
    """The angles (degrees) by which clipping g by value and by norm at c turn it."""
    v = np.asarray(g, dtype=float)
    by_value = math.degrees(direction_change(v, clip_by_value(v, c)))
    by_norm = math.degrees(direction_change(v, clip_by_norm(v, c)))
    return by_value, by_norm


def chapter(quick: bool = False) -> str:
    lam, alpha = mf.selu_parameters()
    mu_t, nu_t = mf.selu_map(0.0, 1.0)
    he_chi = float(mf.chi1("relu", 2.0, 0.0))
    selu_chi = float(mf.chi1("selu", 1.0, 0.0))
    sig_peak = _num(float(gradmath.activation("sigmoid").deriv(0.0)))
    prof = remedy_profiles()
    lecun = prof[("relu", "lecun_normal")]
    value_d = value_clip_derivation(CLIP_G, 1)
    g_value = clip_by_value(np.asarray(CLIP_G), 1.0)
    g_norm = clip_by_norm(np.asarray(CLIP_G), 1.0)
    ang_value, ang_norm = clip_angles()
    selu_growth = selu_chi ** (DEPTH - 1)
    return rf"""
Every remedy attacks one factor of the product of Chapter~\ref{{ch:01_problem}}: the
activation's derivative, the weight variance (Chapter~\ref{{ch:04_initialisation}}), the
structure of the product itself, or, when all else fails, the size of the update.
Normalisation layers get their own chapter (Chapter~\ref{{ch:07_normalisation}}).

\subsection{{Non-saturating activations and He initialisation}}
ReLU's derivative is exactly one wherever the unit is active \citep{{nair2010,glorot2011}}, so it
does not shrink the gradient the way the sigmoid's $\sigma'\le {sig_peak}$ does. Half the units
are inactive, which costs a factor two in each pass; He initialisation ($\sigma_w^2 = 2$) pays
it back, giving $\chi_1 = {_num(he_chi)}$, the critical line exactly.

Table~\ref{{tab:remedy-ratios}} shows what that buys in a deep network, and it shows something
else: the ratio $\|\nabla W^1\|/\|\nabla W^L\|$ alone can mislead. ReLU with LeCun's variance has
the same ratio $1$ as ReLU with He's, yet with $\chi_1 = {_num(lecun["chi"])}$ it halves
\emph{{both}} second moments in every layer: $q^{{{DEPTH}}}/q^1 = {latex.fmt_log(lecun["log_q"])}$
and $\tilde q^1/\tilde q^{{{DEPTH}}} = {latex.fmt_log(lecun["log_grad"])}$.
The ratio is $1$ only because
each weight gradient is $\delta^l (x^{{l-1}})^\top$: at the bottom a tiny $\delta^1$ meets the
full-size input, at the top a full-size $\delta^L$ meets an input $x^{{L-1}}$ that has shrunk just
as much. Every weight gradient of that network is $2^{{-{(DEPTH - 1) / 2:g}}}$ times smaller than
with He's variance, a collapse
that is uniform across layers and invisible in the ratio. Always look at the absolute
per-layer moments (or norms), not only at their ratio.

{_ratio_table()}

\subsection{{Dying ReLUs and leaky variants}}
ReLU's flat side is also its weakness. A unit whose pre-activation is negative for every input
in the data outputs zero and has $\mathrm{{relu}}'(h) = 0$ everywhere, so none of its incoming
weights ever receives a gradient again: the unit is \emph{{dead}}. Units die when a large update
pushes their bias or weights far negative (the overshoot of Chapter~\ref{{ch:03_exploding}} is
the one-unit version), and a large learning rate can kill a sizeable fraction of a layer
\citep{{lu2020}}. Leaky ReLU, $\varphi(z) = \max(az, z)$ with a small slope $a > 0$
\citep{{maas2013}}, keeps $\varphi' = a$ on the negative side, so a unit can always recover. Its
gradient factor is $\chi_1 = \sigma_w^2(1+a^2)/2$, and the critical variance moves from $2$ to
$2/(1+a^2)$ (Table~\ref{{tab:leaky}}), which is what PyTorch's \texttt{{calculate\_gain}} encodes.
ELU \citep{{clevert2016}}, SELU and GELU \citep{{hendrycks2016}} are smooth relatives with a
non-zero slope for negative inputs.

{_leaky_table()}

\subsection{{Self-normalisation: SELU}}
\citet{{klambauer2017}} chose the two constants of
$\mathrm{{selu}}(z) = \lambda_{{\mathrm{{SELU}}}}\, z$ for $z>0$ and
$\lambda_{{\mathrm{{SELU}}}}\alpha_{{\mathrm{{SELU}}}}(e^z-1)$ for $z\le 0$ so that the map
$(\mu,\nu)\mapsto(\tilde\mu,\tilde\nu)$ of the mean and variance of a layer's pre-activations
(for weights with $\sum_i w_i = 0$, $\sum_i w_i^2 = 1$, i.e.\ LeCun's variance) has the stable
fixed point $(0, 1)$. Solving for that fixed point gives back
$\lambda_{{\mathrm{{SELU}}}} \approx {_num(lam, 10)}$ and
$\alpha_{{\mathrm{{SELU}}}} \approx {_num(alpha, 10)}$; with them the map sends $(0, 1)$ to
itself up to rounding
($|\tilde\mu| + |\tilde\nu - 1| \approx {_num(abs(mu_t) + abs(nu_t - 1.0), 1)}$).
Activations are pulled towards zero mean and unit variance layer after layer, without any
normalisation layer. The forward pass is therefore well conditioned, but the backward pass is
not exactly critical: at the fixed point $\chi_1 = {_num(selu_chi, 4)}$, so over {DEPTH} layers
the gradient's second moment grows by ${_num(selu_growth)}$ (Table~\ref{{tab:remedy-ratios}}), a
mild explosion that matters only for very deep networks.

\subsection{{Residual connections}}
A residual block $h^l = h^{{l-1}} + \alpha\,(W^l\varphi(h^{{l-1}}) + b^l)$ \citep{{he2016}} adds the
identity to each layer's Jacobian. In the mean-field recursion the backward factor becomes
\begin{{equation}}
  \tilde q^{{l-1}} = \tilde q^{{l}}\,\bigl(1 + \alpha^2\sigma_w^2\,
  \mathbb{{E}}[\varphi'(h^{{l-1}})^2]\bigr) \ge \tilde q^l
\end{{equation}}
\citep{{yang2017}}: the gradient cannot vanish, because the identity path carries it unchanged
whatever the branch does. The price is on the forward side,
\begin{{equation}}
  q^l = q^{{l-1}} + \alpha^2\bigl(\sigma_w^2\,\mathbb{{E}}[\varphi(h^{{l-1}})^2] + \sigma_b^2\bigr),
\end{{equation}}
which grows with depth, and the backward product of factors above one can itself explode,
unless the branch is scaled down: $\alpha \sim 1/\sqrt{{L}}$ keeps both bounded
(Table~\ref{{tab:residual}}, Figure~\ref{{fig:residual_alpha}}). Fixup \citep{{zhang2019}} and
ReZero \citep{{bachlechner2020}} are initialisations that scale or zero the branch for this
reason.

{_residual_table()}
\gradmathfigure{{residual_alpha}}

\subsection{{Gradient clipping}}
Clipping does not prevent exploding gradients; it limits the damage one large gradient can do
to the weights \citep{{pascanu2013}}. Two rules are in use, and they differ in what they preserve
(Figure~\ref{{fig:clipping_geometry}}). Take the gradient $g = ({CLIP_G[0]:g}, {CLIP_G[1]:g})$ and
the threshold $c = 1$.
\begin{{itemize}}
  \item \emph{{Clipping by value}} (Keras \texttt{{clipvalue}}) clips every component to
        $[-c, c]$: $g' = ({_num(g_value[0])}, {_num(g_value[1])})$. The small component is
        untouched and the large one is cut, so the direction changes: the angle between $g$
        and $g'$ is $\theta = \arccos\frac{{\langle g, g'\rangle}}{{\|g\|\,\|g'\|}} \approx
        {ang_value:.1f}^\circ$. The exact value,
        $\cos\theta = {latex.sympy_latex(value_d.steps[2].expr.rhs)}$, says no more than that.
  \item \emph{{Clipping by norm}} \citep[Algorithm~1]{{pascanu2013}} rescales the whole vector
        when it is too long, $g' = g\cdot c/\max(\|g\|, c)$:
        $g' \approx ({_num(g_norm[0])}, {_num(g_norm[1], 4)})$, the same direction
        ($\theta = {ang_norm:.1f}^\circ$) with length $c$.
\end{{itemize}}
Clipping by norm keeps the descent direction and only shortens the step; clipping by value can
point the step somewhere else, which is harmless when few components are clipped and can stall
training when many are. Per-tensor norm clipping (Keras \texttt{{clipnorm}}) and clipping by the
global norm of all gradients together (\texttt{{torch.nn.utils.clip\_grad\_norm\_}}) are the
common variants. Chapter~\ref{{ch:09_practice}} shows both rules rescue a training run that
diverges without them.
\gradmathfigure{{clipping_geometry}}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    lecun = remedy_profiles()[("relu", "lecun_normal")]
    return (
        r"ReLU with He initialisation has $\chi_1 = 1$: neither pass shrinks or grows.",
        rf"A first/last gradient ratio of $1$ can hide a uniform collapse (ReLU with LeCun: "
        rf"$\tilde q^1/\tilde q^{{{DEPTH}}} = {latex.fmt_log(lecun['log_grad'])}$); report "
        r"absolute per-layer quantities.",
        r"Dead ReLUs get no gradient ever again; leaky variants keep a slope $a$ and move the "
        r"critical variance to $2/(1+a^2)$.",
        r"SELU self-normalises the forward pass; residual connections make the backward factor "
        r"at least one; both need care in very deep nets ($\chi_1 > 1$, growing $q^l$).",
        r"Clipping by norm keeps the direction; clipping by value may turn it.",
    )


def residual_gradient_growth(alpha: float, depth: int) -> float:
    """q̃^1/q̃^L of a ReLU residual net with He weights and branch scale α (mean field)."""
    mlp = gradmath.MLP.square(64, depth, activation="relu", init="he_normal", residual=alpha)
    p = mf.predict(mlp)
    return float(np.exp(p.log_grad_q[0] - p.log_grad_q[-1]))


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    crit = float(np.asarray(mf.critical_sigma_w2(gradmath.activation("leaky_relu", slope=0.3),
                                                 0.0)))  # fmt: skip
    growth = residual_gradient_growth(0.1, 101)
    angle = math.degrees(direction_change(np.array([3.0, 0.2]),
                                          clip_by_value(np.array([3.0, 0.2]), 1.0)))  # fmt: skip
    return (
        Exercise(
            "leaky-critical-variance",
            r"Which $\sigma_w^2$ puts a leaky-ReLU network with slope $a = 0.3$ (no bias) on the "
            r"critical line?",
            r"$\mathbb{E}[\varphi'(h)^2] = (1 + a^2)/2$ for symmetric $h$, so $\chi_1 = 1$ at "
            rf"$\sigma_w^2 = 2/(1 + 0.09) \approx {_num(crit, 5)}$.",
            crit,
        ),
        Exercise(
            "residual-gradient-growth",
            r"A ReLU network of 101 layers (100 residual blocks after the first layer) uses He "
            r"weights and branch scale $\alpha = 0.1$. By what factor does the gradient's second "
            r"moment grow from the top to the bottom?",
            r"Each block multiplies $\tilde q$ by $1 + \alpha^2\sigma_w^2\,\mathbb{E}[\varphi'^2] "
            rf"= 1 + 0.01\cdot2\cdot\tfrac12 = 1.01$, so the factor is $1.01^{{100}} \approx "
            rf"{_num(growth, 4)}$: modest, where $\alpha = 1$ would give $2^{{100}}$.",
            growth,
        ),
        Exercise(
            "clip-value-angle",
            r"Clip $g = (3, 0.2)$ by value at $c = 1$. By how many degrees does the direction "
            r"change?",
            r"$g' = (1, 0.2)$ and $\cos\theta = (3 + 0.04)/(\|g\|\,\|g'\|)$, so "
            rf"$\theta \approx {angle:.2f}^\circ$: the small component now has a larger share.",
            angle,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
