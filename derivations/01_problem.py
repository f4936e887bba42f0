"""Chapter 1: what vanishing and exploding gradients are, and how to recognise them.

Run alone: ``python derivations/01_problem.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import gradmath
from gradmath.render import latex

TITLE = "The problem: gradients through a deep chain"

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
$-\eta\,\partial L/\partial w$. Backpropagation computes these derivatives with the chain rule,
layer by layer from the loss down to the input. In a deep network the derivative with respect
to a parameter in layer~1 is a \emph{{product}} with one factor per layer above it, and a product
of many factors is almost never of moderate size: it shrinks or grows geometrically with the
depth. These are the \emph{{vanishing}} and \emph{{exploding}} gradient problems.

\subsection{{The chain rule of a deep chain}}
Take the simplest deep network, a chain of scalar units
\begin{{equation}}
  z_l = w_l a_{{l-1}} + b_l, \qquad a_l = \varphi(z_l), \qquad l = 1, \dots, L,
\end{{equation}}
with input $a_0$ and a loss $L(a_L)$. Differentiating through every layer gives
\begin{{equation}}\label{{eq:chain}}
  \frac{{\partial L}}{{\partial w_1}}
  = \frac{{\partial L}}{{\partial a_L}}
    \prod_{{l=2}}^{{L}} \bigl(\varphi'(z_l)\, w_l\bigr)\; \varphi'(z_1)\, a_0 .
\end{{equation}}
Each layer contributes a \emph{{local factor}} $\varphi'(z_l)\,w_l$.
If $\gamma=\sup_z|\varphi'(z)|$, then
\begin{{equation}}
  \Bigl|\frac{{\partial L}}{{\partial w_1}}\Bigr|
  \le \Bigl|\frac{{\partial L}}{{\partial a_L}}\Bigr|\, |a_0|\,
      \gamma \prod_{{l=2}}^{{L}} \gamma\,|w_l| ,
\end{{equation}}
so when every $\gamma|w_l|<1$ the gradient of the first layer is exponentially small in $L$:
it \emph{{vanishes}}. When the factors exceed one it can be exponentially large: it
\emph{{explodes}}. For the logistic sigmoid $\gamma = \sigma'(0) = {sig0}$
(Section~\ref{{ch:02_sigmoid_bound}}), so without large weights every layer divides the
gradient by at least four. Table~\ref{{tab:factor-powers}} shows how quickly this compounds.

{_factor_table()}

In a layer of width $n$ the scalar factor becomes a matrix: with
$\delta^l = \partial L/\partial h^l$ the gradient with respect to the pre-activations
$h^l = W^l x^{{l-1}} + b^l$,
\begin{{equation}}
  \delta^l = \operatorname{{diag}}\bigl(\varphi'(h^l)\bigr)\, (W^{{l+1}})^{{\top}} \delta^{{l+1}},
  \qquad
  \frac{{\partial L}}{{\partial W^l}} = \delta^l\, (x^{{l-1}})^{{\top}} .
\end{{equation}}
The same product structure holds, now over random matrices. Whether it shrinks or grows is
decided, at initialisation, by the activation function (Sections~\ref{{ch:02_sigmoid_bound}}
and~\ref{{ch:03_exploding}}), by the variance of the initial weights
(Section~\ref{{ch:04_initialisation}}), and, for wide networks, by a single number $\chi_1$
that mean-field theory computes exactly (Section~\ref{{ch:05_mean_field}}).

\subsection{{How to recognise them}}
Vanishing gradients show up as:
\begin{{itemize}}
  \item the parameters of the lower layers barely change while the top layers learn: the
        relative change $\|\Delta W^l\|/\|W^l\|$ per epoch is orders of magnitude smaller for
        small $l$ than for the last layers;
  \item per-layer gradient norms $\|\partial L/\partial W^l\|$ that fall geometrically from the
        output towards the input (a straight line with positive slope on a log scale against $l$);
  \item a training loss that decreases at first (the top layers fit what they can) and then
        stalls far from zero.
\end{{itemize}}
Exploding gradients show up as:
\begin{{itemize}}
  \item gradient norms, and then weights, that grow exponentially from layer to layer or from
        step to step;
  \item a loss that jumps up after single updates, oscillates, and finally becomes
        \texttt{{inf}} or \texttt{{NaN}} (an overflow somewhere in the product);
  \item updates so large that a weight overshoots and changes sign
        (Section~\ref{{ch:03_exploding}}).
\end{{itemize}}
Both are properties of products of many factors, so both are easiest to see on a logarithmic
scale, which is how every figure in these notes shows them.
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
