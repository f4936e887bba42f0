"""Chapter 6: remedies. Non-saturating activations and He initialisation, SELU
self-normalisation, batch normalisation, residual connections, gradient clipping, and what
each does to training. Every number is computed by gradmath.

Run alone: ``python derivations/06_remedies.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import gradmath
import gradmath.meanfield as mf
from gradmath.meanfield.batchnorm import gradient_growth
from gradmath.numeric.train import TrainResult, make_task, train
from gradmath.render import latex
from gradmath.symbolic import norm_clip_derivation, value_clip_derivation

TITLE = "Remedies"

DEPTH, WIDTH = 50, 256
PAIRS = (
    ("sigmoid", "glorot_normal"),
    ("tanh", "glorot_normal"),
    ("relu", "lecun_normal"),
    ("relu", "he_normal"),
    ("selu", "lecun_normal"),
)
BATCHES = (4, 16, 64, None)
TRAIN_WIDTHS = (4, *(32,) * 8, 3)


def _ratio_table() -> str:
    rows = []
    for act, init in PAIRS:
        theory = mf.predict(gradmath.MLP.square(WIDTH, DEPTH, activation=act, init=init))
        rows.append([latex.escape(act), rf"\texttt{{{latex.escape(init)}}}",
                     f"${latex.fmt_log(theory.log_first_last_ratio)}$"])  # fmt: skip
    return latex.table(
        ["activation", "initializer", rf"$\|\nabla W^1\|/\|\nabla W^{{{DEPTH}}}\|$"],
        rows,
        align="llr",
        caption=rf"Predicted ratio of the first to the last layer's weight-gradient norm in "
        rf"square networks of width {WIDTH} and depth {DEPTH} (mean-field theory).",
        label="tab:remedy-ratios",
    )


def _batchnorm_table() -> str:
    rows = []
    for act in ("relu", "tanh"):
        cells = [f"${gradient_growth(act, b):.4f}$" for b in BATCHES]  # same decimals per column
        rows.append([latex.escape(act), *cells])
    header = ["activation", *(f"$B={b}$" if b else r"$B\to\infty$" for b in BATCHES)]
    return latex.table(
        header,
        rows,
        caption=r"Per-layer growth factor of the squared gradient in a deep batch-normalised "
        r"network at initialisation (Yang et al.\ 2019), by batch size $B$.",
        label="tab:bn-growth",
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
        rf"a depth-{DEPTH} tanh network with $\sigma_w^2 = 0.5$, plain or with residual blocks.",
        label="tab:residual",
    )


def _training(quick: bool) -> dict[str, TrainResult]:
    epochs = 30 if quick else 60
    data = make_task(128, 4, 3, seed=0)
    exploding = gradmath.MLP(
        TRAIN_WIDTHS, activation="relu", init=gradmath.initializer("normal", sigma_w2=4.0)
    )
    runs = {
        "sigmoid": (gradmath.MLP(TRAIN_WIDTHS, activation="sigmoid", init="glorot_uniform"), 1.0,
                    None),
        "relu": (gradmath.MLP(TRAIN_WIDTHS, activation="relu", init="he_normal"), 0.1, None),
        "exploding": (exploding, 0.1, None),
        "clipvalue": (exploding, 0.1, {"value": 0.5}),
        "clipnorm": (exploding, 0.1, {"norm": 1.0}),
    }  # fmt: skip
    return {k: train(m, data=data, epochs=epochs, lr=lr, seed=0, clip=c)
            for k, (m, lr, c) in runs.items()}  # fmt: skip


def _training_table(runs: dict[str, TrainResult]) -> str:
    labels = {
        "sigmoid": "sigmoid, Glorot",
        "relu": "ReLU, He",
        "exploding": r"ReLU, $\sigma_w^2=4$",
        "clipvalue": r"ReLU, $\sigma_w^2=4$, clip value $0.5$",
        "clipnorm": r"ReLU, $\sigma_w^2=4$, clip norm $1$",
    }
    rows = []
    for key, label in labels.items():
        run = runs[key]
        diag = gradmath.diagnose(run)
        if run.divergence is not None:
            end = f"diverged in epoch {run.divergence.epoch}"
        else:
            end = f"${latex.fmt_num(float(run.loss[-1]), 3)}$"
        first, last = (f"${latex.fmt_num(float(c), 2)}$" for c in run.weight_change[-1][[0, -1]])
        start = f"${latex.fmt_num(float(run.loss[0]), 3)}$"
        rows.append([label, start, end, first, last, diag.verdict])
    return latex.table(
        ["network", "initial loss", "final loss", r"$\Delta W^1$", r"$\Delta W^L$", "diagnosis"],
        rows,
        align="lrrrrl",
        caption=r"The training runs of Figure~\ref{fig:training_remedies}: loss, relative weight "
        r"change $\|W^l_T - W^l_0\|/\|W^l_0\|$ of the first and last layer, and the verdict of "
        r"\texttt{gradmath.diagnose} on the recorded per-layer gradient norms.",
        label="tab:training",
        size=r"\small",
    )


def chapter(quick: bool = False) -> str:
    lam, alpha = mf.selu_parameters()
    mu_t, nu_t = mf.selu_map(0.0, 1.0)
    he_chi = float(mf.chi1("relu", 2.0, 0.0))
    runs = _training(quick)
    sig = runs["sigmoid"].weight_change[-1]
    sig_peak = latex.fmt_num(float(gradmath.activation("sigmoid").deriv(0.0)))
    chaos_chi = latex.fmt_num(float(mf.chi1("relu", 4.0, 0.0)))
    depth = len(TRAIN_WIDTHS) - 1
    return rf"""
Every remedy attacks one factor of the product of Section~\ref{{ch:01_problem}}: the activation's
derivative, the weight variance, or the structure of the product itself.

\subsection{{Non-saturating activations and He initialisation}}
ReLU's derivative is exactly one wherever the unit is active, so it does not shrink the
gradient the way the sigmoid's $\sigma'\le {sig_peak}$ does. Half the units are inactive, which
costs a factor two; He initialisation ($\sigma_w^2 = 2$) pays it back, giving
$\chi_1 = {latex.fmt_num(he_chi)}$: the critical line exactly.
Table~\ref{{tab:remedy-ratios}} shows what that buys in a deep network.

{_ratio_table()}

\subsection{{Self-normalisation: SELU}}
Klambauer et al.\ (2017) chose the two constants of
$\mathrm{{selu}}(z) = \lambda z$ for $z>0$, $\lambda\alpha(e^z-1)$ for $z\le 0$ so that the map
$(\mu,\nu)\mapsto(\tilde\mu,\tilde\nu)$ of the mean and variance of a layer's pre-activations
(for weights with $\sum_i w_i = 0$, $\sum_i w_i^2 = 1$, i.e.\ LeCun's variance) has the stable
fixed point $(0, 1)$. Solving for that fixed point gives back
$\lambda = {latex.fmt_num(lam, 15)}$ and $\alpha = {latex.fmt_num(alpha, 15)}$;
with them the map sends $(0, 1)$ to itself up to
$|\tilde\mu| + |\tilde\nu - 1| = {latex.fmt_num(abs(mu_t) + abs(nu_t - 1.0), 2)}$, floating-point
rounding.
Activations are pulled towards zero mean and unit variance layer after layer, without any
normalisation layer.

\subsection{{Batch normalisation}}
Batch normalisation divides each pre-activation by its standard deviation over the batch, so
the forward second moment is pinned to one in every layer. The surprise (Yang et al.\ 2019) is
the backward pass: the gradient through the batch statistics grows geometrically with depth at
initialisation, by a factor per layer that depends on the activation and the batch size
(Table~\ref{{tab:bn-growth}}, Figure~\ref{{fig:batchnorm_explosion}}). Batch normalisation helps
training for other reasons, not because it removes exploding gradients at initialisation.

{_batchnorm_table()}

\subsection{{Residual connections}}
A residual block $h^l = h^{{l-1}} + \alpha\,(W^l\varphi(h^{{l-1}}) + b^l)$ adds the identity to
each layer's Jacobian, so the backward factor is $1 + \alpha^2\sigma_w^2\,\mathbb{{E}}[\varphi'^2]
\ge 1$ (Yang \& Schoenholz 2017): the gradient cannot vanish. The price is on the forward side,
$q^l = q^{{l-1}} + \alpha^2(\sigma_w^2\mathbb{{E}}[\varphi^2] + \sigma_b^2)$ grows with depth unless
the branch is scaled down, e.g.\ $\alpha \sim 1/\sqrt{{L}}$ (Table~\ref{{tab:residual}},
Figure~\ref{{fig:residual_alpha}}).

{_residual_table()}

\subsection{{Gradient clipping}}
Clipping does not prevent exploding gradients; it limits the damage of one large step
(Pascanu et al.\ 2013). Two rules are in use, and they differ in what they preserve
(Figure~\ref{{fig:clipping_geometry}}).

{value_clip_derivation().latex()}

{norm_clip_derivation().latex()}

\subsection{{In training}}
Table~\ref{{tab:training}} and Figure~\ref{{fig:training_remedies}} train the same
{depth}-layer architecture with plain SGD. With sigmoid units the first layer's weights move
${latex.fmt_num(float(sig[0]), 2)}$ of their size while the last layer's move
${latex.fmt_num(float(sig[-1]), 2)}$: the lower layers do not learn. ReLU with He initialisation
trains every layer. ReLU with $\sigma_w^2 = 4$ (the chaotic side, $\chi_1 = {chaos_chi}$) diverges
within a few epochs; clipping by value or by norm lets the same network train.

{_training_table(runs)}
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
