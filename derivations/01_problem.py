"""Chapter 1: what vanishing and exploding gradients are, and how to recognise them.

Run alone: ``python derivations/01_problem.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import gradmath
import gradmath.symbolic as sym
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "The problem: gradients through a deep chain"

OBJECTIVES = (
    r"Write the gradient of a first-layer weight as a product with one factor per layer, and "
    r"name each factor.",
    r"Explain why a product of many factors vanishes or explodes geometrically with depth.",
    r"Recognise both problems in training curves and per-layer gradient norms.",
)

DEPTHS = (5, 10, 20, 50)


def _factor_table() -> str:
    # One layer multiplies the gradient by φ'(z)·w; the best case for a saturating unit is
    # z = 0, where φ' is largest. The table raises that factor to the depth.
    cases = [
        ("sigmoid", 1.0, r"sigmoid, $w=1$, $z=0$"),
        ("tanh", 1.0, r"tanh, $w=1$, $z=0$"),
        ("tanh", 2.0, r"tanh, $w=2$, $z=0$"),
    ]
    rows = []
    for name, w, text in cases:
        factor = float(gradmath.activation(name).deriv(0.0)) * w
        powers = [f"${latex.fmt_num(factor**depth, 3)}$" for depth in DEPTHS]
        rows.append([text, f"${latex.fmt_num(factor)}$", *powers])
    header = ["one layer", r"factor $\varphi'(z)\,w$", *(f"$L={d}$" for d in DEPTHS)]
    return latex.table(
        header,
        rows,
        caption=r"The product of $L$ equal local factors $\varphi'(z_l)\,w_l$: below one it "
        r"vanishes, above one it explodes, geometrically in both cases.",
        label="tab:factor-powers",
        size=r"\small",
    )


def chapter(quick: bool = False) -> str:
    sig0 = latex.fmt_num(float(gradmath.activation("sigmoid").deriv(0.0)))
    return rf"""
Training a network by gradient descent changes each parameter $w$ by
$-\eta\,\partial\ell/\partial w$, where $\ell$ is the loss and $\eta$ the learning rate.
Backpropagation computes these derivatives with the chain rule, layer by layer from the loss
down to the input \citep{{rumelhart1986}}. In a deep network the derivative with respect to a
parameter in layer~1 is a \emph{{product}} with one factor per layer above it, and a product of
many factors is almost never of moderate size: it shrinks or grows geometrically with the depth.
These are the \emph{{vanishing}} and \emph{{exploding}} gradient problems, first analysed for
recurrent networks \citep{{hochreiter1991,bengio1994}} and for deep feed-forward ones by
\citet{{glorot2010}}.

\subsection{{The chain rule of a deep chain}}
Take the simplest deep network, a chain of scalar units
\begin{{equation}}
  z_l = w_l a_{{l-1}} + b_l, \qquad a_l = \varphi(z_l), \qquad l = 1, \dots, L,
\end{{equation}}
with input $a_0$ and a loss $\ell(a_L)$. The weight $w_1$ influences the loss only through
$z_1$, then $a_1$, then $z_2$, and so on up to $a_L$; the chain rule multiplies the derivative
of each link:
\begin{{equation}}\label{{eq:chain}}
  \frac{{\partial \ell}}{{\partial w_1}}
  = \frac{{\partial \ell}}{{\partial a_L}}
    \prod_{{l=2}}^{{L}} \underbrace{{\varphi'(z_l)\, w_l}}_{{\partial a_l/\partial a_{{l-1}}}}
    \;\underbrace{{\varphi'(z_1)\, a_0}}_{{\partial a_1/\partial w_1}} .
\end{{equation}}
Each layer above the first contributes a \emph{{local factor}} $\varphi'(z_l)\,w_l$. If
$\gamma=\sup_z|\varphi'(z)|$ is the steepest slope of the activation, every local factor is at
most $\gamma|w_l|$ in size, so
\begin{{equation}}\label{{eq:chain-bound}}
  \Bigl|\frac{{\partial \ell}}{{\partial w_1}}\Bigr|
  \le \Bigl|\frac{{\partial \ell}}{{\partial a_L}}\Bigr|\, |a_0|\,
      \gamma \prod_{{l=2}}^{{L}} \gamma\,|w_l| .
\end{{equation}}
When every $\gamma|w_l|<1$ the gradient of the first layer is exponentially small in $L$: it
\emph{{vanishes}}. When the local factors exceed one it can be exponentially large: it
\emph{{explodes}}. For the logistic sigmoid $\gamma = \sigma'(0) = {sig0}$
(Chapter~\ref{{ch:02_sigmoid_bound}}), so unless the weights are large every layer divides the
gradient by at least four. Table~\ref{{tab:factor-powers}} shows how quickly this compounds.

{_factor_table()}

In a layer of width $n$ the scalar factor becomes a matrix. With
$\delta^l = \partial \ell/\partial h^l$ the gradient with respect to the pre-activations
$h^l = W^l x^{{l-1}} + b^l$ and $x^l = \varphi(h^l)$,
\begin{{equation}}\label{{eq:backprop}}
  \delta^l = \operatorname{{diag}}\bigl(\varphi'(h^l)\bigr)\, (W^{{l+1}})^{{\top}} \delta^{{l+1}},
  \qquad
  \frac{{\partial \ell}}{{\partial W^l}} = \delta^l\, (x^{{l-1}})^{{\top}} .
\end{{equation}}
The same product structure holds, now over random matrices. Whether it shrinks or grows is
decided at initialisation by the activation function (Chapters~\ref{{ch:02_sigmoid_bound}}
and~\ref{{ch:03_exploding}}), by the variance of the initial weights
(Chapter~\ref{{ch:04_initialisation}}), and, for wide networks, by a single number $\chi_1$
that mean-field theory computes exactly (Chapter~\ref{{ch:05_mean_field}}). Architecture can
change the product itself: residual connections, normalisation layers and gating
(Chapters~\ref{{ch:06_remedies}}--\ref{{ch:08_recurrent}}).

\subsection{{How to recognise them}}
Vanishing gradients show up as:
\begin{{itemize}}
  \item the parameters of the lower layers barely change while the top layers learn: the
        relative change $\|\Delta W^l\|/\|W^l\|$ per epoch is orders of magnitude smaller for
        small $l$ than for the last layers;
  \item per-layer gradient norms $\|\partial \ell/\partial W^l\|$ that fall geometrically from
        the output towards the input (a straight line on a logarithmic axis against $l$);
  \item a training loss that decreases at first (the top layers fit what they can) and then
        stalls far from zero, often at the loss of a model that ignores its input
        (Chapter~\ref{{ch:09_practice}}).
\end{{itemize}}
Exploding gradients show up as:
\begin{{itemize}}
  \item gradient norms, and then weights, that grow exponentially from layer to layer or from
        step to step;
  \item a loss that jumps up after single updates, oscillates, and finally becomes
        \texttt{{inf}} or \texttt{{NaN}} (an overflow somewhere in the product);
  \item updates so large that a weight overshoots and changes sign, which for a ReLU unit can
        switch it off for good (Chapter~\ref{{ch:03_exploding}}).
\end{{itemize}}
Both are properties of products of many factors, so both are easiest to see on a logarithmic
axis: the figures of per-layer second moments in these notes use one.
\gradmathfigure{{activation_derivatives}}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    sig = float(gradmath.activation("sigmoid").deriv(0.0))
    return (
        r"The gradient of an early weight is a product of one local factor "
        r"$\varphi'(z_l)\,w_l$ per layer above it.",
        r"A product of $L$ factors below one vanishes geometrically, above one it explodes; "
        rf"the sigmoid's factors are at most ${latex.fmt_num(sig)}\,|w_l|$.",
        r"Symptoms: lower layers that do not move and a loss that stalls (vanishing); loss "
        r"spikes, sign flips and \texttt{NaN} (exploding). Look at per-layer norms on a "
        r"logarithmic axis.",
    )


def depth_below(threshold: float) -> int:
    """The least depth L at which the sigmoid chain bound (1/4)^L drops below ``threshold``."""
    gamma = float(sym.derivative_bound("sigmoid").result)
    depth = 1
    while gamma**depth >= threshold:
        depth += 1
    return depth


def float32_overflow_depth(factor: float) -> int:
    """The least depth at which factor^L exceeds the largest float32 (about 3.4e38)."""
    top = math.log(float(np.finfo(np.float32).max))
    return math.floor(top / math.log(factor)) + 1


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    deep = depth_below(1e-10)
    tanh2 = float(gradmath.activation("tanh").deriv(0.0)) * 2.0
    over = float32_overflow_depth(tanh2)
    return (
        Exercise(
            "chain-three-layers",
            r"Write out $\partial\ell/\partial w_1$ for a chain of three units "
            r"(equation~\eqref{eq:chain}) and mark which factors depend on the weights "
            r"$w_2$, $w_3$ and which on the activations.",
            r"$\partial\ell/\partial w_1 = \ell'(a_3)\,\varphi'(z_3)\,w_3\,\varphi'(z_2)\,w_2\,"
            r"\varphi'(z_1)\,a_0$. The weights enter through the local factors of layers 2 "
            r"and 3; the activation enters through every $\varphi'(z_l)$, each evaluated at "
            r"that layer's own pre-activation, so a single saturated unit anywhere on the path "
            r"(with $\varphi'(z_l)\approx0$) silences the whole product.",
        ),
        Exercise(
            "sigmoid-depth-1e-10",
            r"With $|w_l| \le 1$, at what depth $L$ does the bound~\eqref{eq:chain-bound} for a "
            r"sigmoid chain first fall below $10^{-10}$ (take $|\partial\ell/\partial a_L|\,"
            r"|a_0| = 1$)?",
            rf"The bound is $(1/4)^L$; $(1/4)^L < 10^{{-10}}$ means "
            rf"$L > 10/\log_{{10}}4 \approx {10 / math.log10(4):.2f}$, so $L = {deep}$.",
            deep,
        ),
        Exercise(
            "tanh-factor-two-overflow",
            r"A tanh chain with $w_l = 2$ and every $z_l$ near $0$ has local factor "
            r"$\tanh'(0)\cdot 2 = 2$. After how many layers does the product exceed the largest "
            r"float32 number, $\approx 3.4\times10^{38}$?",
            rf"$2^L > 3.4\times10^{{38}}$ when $L > \log_2(3.4\times10^{{38}}) \approx 128$; the "
            rf"first such depth is $L = {over}$. (In practice tanh saturates long before: "
            r"$z_l$ grows with the weights and $\tanh'(z_l)$ falls, which is why the "
            r"explosion needs the weights to grow too.)",
            over,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
