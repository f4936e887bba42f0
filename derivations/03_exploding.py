"""Chapter 3: exploding gradients. A local factor above one (0.25 · 500 = 125) and why a
sigmoid rarely keeps it; a ReLU chain whose gradient explodes, labelled factor by factor; and
the SGD step that overshoots and switches the chain off for good.

Run alone: ``python derivations/03_exploding.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import sympy
from scipy.optimize import brentq

import gradmath
import gradmath.meanfield as mf
import gradmath.symbolic as sym
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "Exploding gradients"

OBJECTIVES = (
    r"Show how large weights turn a local factor $\varphi'(z)\,w$ above one, and why a "
    r"saturating unit rarely keeps it there.",
    r"Follow an exploding gradient through a ReLU chain factor by factor, with every factor "
    r"labelled by the derivative it is.",
    r"Explain how one overshooting update can switch a ReLU network off for good.",
)

#: The ReLU chain of the worked example (inputs, not results).
CHAIN = {"depth": 10, "weight": 2, "x0": 1, "target": 1, "learning_rate": "0.001"}


def _m(expr: object) -> str:
    return latex.sympy_latex(expr)


def _inline(expr: object) -> str:
    """Inline math: short fractions as a/b."""
    return str(sympy.latex(expr, fold_short_frac=True))


def sigmoid_factor_below_one(weight: float) -> float:
    """The |z| beyond which σ'(z)·w < 1: where a sigmoid unit stops amplifying."""
    d = gradmath.activation("sigmoid").deriv
    return float(brentq(lambda z: float(d(z)) * weight - 1.0, 0.0, 50.0, xtol=1e-14))


def chapter(quick: bool = False) -> str:
    local = sym.local_factor_example()
    chain = sym.relu_chain_example(**CHAIN)  # type: ignore[arg-type]
    data = chain.data
    path = sym.path_product_example()
    z_off = sigmoid_factor_below_one(500.0)
    L = CHAIN["depth"]
    w = CHAIN["weight"]
    new_w = data["new_weight"]
    step = sympy.Rational(w) - new_w
    chi_tanh = float(mf.chi1("tanh", 4.0, 0.0))
    chi_relu = float(mf.chi1("relu", 4.0, 0.0))
    path_str = r" \cdot ".join(_m(x) for x in path.data["factors"])
    return rf"""
The bound of Chapter~\ref{{ch:02_sigmoid_bound}} is an upper bound: a local factor
$\varphi'(z)\,w$ is small only if the weight is. Large weights turn the product the other way,
and the gradient grows geometrically with depth instead of shrinking.

\subsection{{A local factor above one}}
Even the sigmoid can amplify. At its steepest point
$\sigma'(0) = {_inline(local.data["gamma"])}$, and
a weight $w = {_m(local.data["w"])}$ gives the local factor
\begin{{equation}}
  \sigma'(0)\,w = {_m(local.data["gamma"])}\cdot{_m(local.data["w"])} = {_m(local.result)} ,
\end{{equation}}
so $L$ such layers would multiply the gradient by ${_m(local.result)}^L$. In practice a sigmoid
chain rarely explodes this way, because the weight that makes the factor large also makes the
pre-activation large: $\sigma'(z)\cdot{_m(local.data["w"])}$ drops below one as soon as
$|z| > {latex.fmt_num(z_off, 3)}$, which an input of size ${latex.fmt_num(z_off / 500, 2)}$
already reaches. The unit saturates and the factor collapses towards zero. Exploding gradients
need an activation whose slope does not decay, such as ReLU, or a recurrence that reuses the
same weights (Chapter~\ref{{ch:08_recurrent}}).

\subsection{{An exploding ReLU chain}}
Take the scalar chain $a_l = \mathrm{{relu}}(w_l a_{{l-1}})$ of $L = {L}$ units without bias,
every weight $w_l = {w}$, input $a_0 = {CHAIN["x0"]}$, and the squared loss
$\ell = \tfrac12 (a_L - y)^2$ with target $y = {CHAIN["target"]}$. Every unit is active, and an
active ReLU passes its input unchanged ($\mathrm{{relu}}'(z) = 1$ for $z > 0$), so the forward
pass doubles the signal in every layer: $a_L = {w}^{{{L}}} = {_m(data["a_L"])}$. Now read the
chain rule~\eqref{{eq:chain}} factor by factor:
\begin{{align}}
  \frac{{\partial\ell}}{{\partial a_L}} &= a_L - y = {_m(data["dloss_da_L"])}
    && \text{{the loss's derivative at the output}},\\
  \prod_{{l=2}}^{{{L}}} \mathrm{{relu}}'(z_l)\,w_l &= {w}^{{{L - 1}}}
    = {_m(sympy.Mul(*data["factors"]))}
    && \text{{{L - 1} local factors, one per layer above the first}},\\
  \mathrm{{relu}}'(z_1)\,a_0 &= {_m(data["first_factor"])}
    && \text{{how $a_1$ depends on $w_1$}},
\end{{align}}
so that
\begin{{equation}}
  \frac{{\partial\ell}}{{\partial w_1}}
  = {_m(data["dloss_da_L"])}\cdot{_m(sympy.Mul(*data["factors"]))}\cdot{_m(data["first_factor"])}
  = {_m(chain.result)} .
\end{{equation}}
A moderate weight, repeated, has produced a gradient of half a million.

\subsection{{An update that overshoots}}
Take an ordinary learning rate, $\eta = {CHAIN["learning_rate"]}$. The SGD step moves $w_1$ by
$\eta\,\partial\ell/\partial w_1 = {latex.fmt_num(float(step), 6)}$ against a weight of
${w}$:
\begin{{equation}}
  w_1 - \eta\,\frac{{\partial\ell}}{{\partial w_1}} = {w} - {latex.fmt_num(float(step), 6)}
  = {latex.fmt_num(float(new_w), 6)} .
\end{{equation}}
The weight has changed sign. In the next forward pass $z_1 = w_1 a_0 < 0$, so the first unit
outputs $0$, and so does every unit above it: $a_L = {_m(chain.steps[5].expr.rhs)}$ and the loss
is $\ell = {_inline(data["new_loss"])}$. Worse, every gradient is now exactly zero:
$\mathrm{{relu}}'(z_1) = 0$ blocks the path to $w_1$, and
$\partial\ell/\partial w_l = \delta_l\,a_{{l-1}} = 0$ for the others because their inputs are
zero. Gradient descent cannot undo the step; the chain is \emph{{dead}}. In a wide network the
same mechanism kills individual units, the \emph{{dying ReLU}} of
Chapter~\ref{{ch:06_remedies}}; in a network with saturating units the overshoot pushes them
into saturation instead, and the symptoms are a loss that jumps and then stalls, or overflows to
\texttt{{inf}} and \texttt{{NaN}}.

A common textbook illustration of the same arithmetic multiplies
${path_str} \approx
{latex.fmt_num(float(path.result), 2)}$. Those four numbers are the partial derivatives met along
one path, from $\partial\ell/\partial O$ (the loss by the output, first) to $\partial O/\partial w$
(the output by the weight, last), not one factor $\varphi'(z)\,w$ per layer; the lesson, that
moderate factors multiply to an enormous gradient, is the same.

\subsection{{Wide layers}}
In a layer of width $n$ the local factor is the matrix
$\operatorname{{diag}}(\varphi'(h^l))\,(W^{{l+1}})^\top$ of equation~\eqref{{eq:backprop}}, and
what matters is how it changes the squared length of the gradient on average. For ReLU with
$\sigma_w^2 = n\,\mathrm{{Var}}[W] = 4$ that factor is $\sigma_w^2/2 = {latex.fmt_num(chi_relu)}$
per
layer: the gradient and the forward signal both double their second moment in every layer. For
tanh at the same $\sigma_w^2$ the forward signal stays bounded while the gradient's second moment
still grows by ${latex.fmt_num(chi_tanh, 3)}$ per layer, an explosion that nothing in the forward
pass reveals. Chapter~\ref{{ch:05_mean_field}} computes these factors in general.
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    chain = sym.relu_chain_example(**CHAIN)  # type: ignore[arg-type]
    return (
        r"Local factors $\varphi'(z)\,w > 1$ make the gradient grow geometrically with depth; a "
        r"saturating unit usually escapes by saturating, a ReLU does not.",
        rf"A {CHAIN['depth']}-layer ReLU chain with weights {CHAIN['weight']} has "
        rf"$\partial\ell/\partial w_1 = {_m(chain.result)}$: output error times "
        rf"${CHAIN['weight']}^{{{CHAIN['depth'] - 1}}}$ times the input.",
        r"One overshooting step can flip a weight's sign and leave a ReLU network with zero "
        r"gradient everywhere: a dead network that gradient descent cannot revive.",
    )


def max_safe_learning_rate() -> sympy.Rational:
    """The largest η for which the example's step keeps w_1 positive: w / (∂ℓ/∂w_1)."""
    chain = sym.relu_chain_example(**CHAIN)  # type: ignore[arg-type]
    return sympy.Rational(CHAIN["weight"]) / chain.result


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    small = sym.relu_chain_example(depth=6, weight=3, x0=1, target=0)
    eta = max_safe_learning_rate()
    z_off = sigmoid_factor_below_one(500.0)
    return (
        Exercise(
            "relu-chain-gradient",
            r"A ReLU chain of $L = 6$ units has every weight $w_l = 3$, input $a_0 = 1$, no bias "
            r"and loss $\ell = \tfrac12 a_L^2$ (target $0$). Compute "
            r"$\partial\ell/\partial w_1$.",
            rf"$a_6 = 3^6 = {_m(small.data['a_L'])}$ and $\partial\ell/\partial a_6 = a_6$; the "
            rf"five local factors give $3^5$ and $\partial a_1/\partial w_1 = a_0 = 1$, so "
            rf"$\partial\ell/\partial w_1 = 3^6\cdot3^5 = 3^{{11}} = {_m(small.result)}$.",
            int(small.result),
        ),
        Exercise(
            "relu-chain-safe-lr",
            r"In the chain of this chapter, what is the largest learning rate for which one "
            r"SGD step keeps $w_1$ positive (so the chain stays alive)?",
            rf"$w_1 - \eta\,\partial\ell/\partial w_1 > 0$ needs "
            rf"$\eta < {CHAIN['weight']}/{_inline(CHAIN['weight'] / eta)}"
            rf" \approx {latex.fmt_num(float(eta), 3)}$, a learning rate "
            rf"{float(sympy.Rational(CHAIN['learning_rate']) / eta):.0f} times "
            r"smaller than the one used. Clipping the gradient (Chapter~\ref{ch:06_remedies}) "
            r"bounds the step instead of the learning rate.",
            eta,
        ),
        Exercise(
            "sigmoid-amplifies-until",
            r"A sigmoid unit has weight $w = 500$. For which pre-activations $z$ is its local "
            r"factor $\sigma'(z)\,w$ above one?",
            rf"$\sigma'(z) > 1/500$ holds for $|z| < {latex.fmt_num(z_off, 4)}$: solve "
            r"$s(1-s) = 1/500$ for $s = \sigma(z)$ and take $z = \ln\bigl(s/(1-s)\bigr)$. "
            rf"With $w = 500$ an input of only ${latex.fmt_num(z_off / 500, 2)}$ leaves that "
            "range.",
            z_off,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
