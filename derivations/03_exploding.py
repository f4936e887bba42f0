"""Chapter 3: exploding gradients. Local factors above one (0.25 · 500 = 125), a path product
300 · 200 · 125 · 1001, and the update that overshoots and flips a weight's sign.

Run alone: ``python derivations/03_exploding.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import sympy

import gradmath.symbolic as sym
from gradmath.render import latex

TITLE = "Exploding gradients"

#: The weight and learning rate of the overshoot example (inputs, not results).
WEIGHT = sympy.Rational(1, 2)
LEARNING_RATE = sympy.Rational(1, 1000)


def chapter(quick: bool = False) -> str:
    local = sym.local_factor_example()
    path = sym.path_product_example()
    grad = sympy.nsimplify(path.result)
    step = LEARNING_RATE * grad
    new_w = WEIGHT - step
    return rf"""
The bound of Section~\ref{{ch:02_sigmoid_bound}} is an upper bound: a factor
$\varphi'(z)\,w$ is small only if the weight is. Large weights turn the product the other way.

\subsection{{A local factor above one}}
{local.latex()}

\subsection{{A path product}}
{path.latex()}

\subsection{{An update that overshoots}}
Take a weight $w = {sympy.latex(WEIGHT)}$ whose gradient is this path product,
$\partial L/\partial w = {sympy.latex(grad)}$, and a small learning rate
$\eta = {sympy.latex(LEARNING_RATE)}$. The gradient-descent step is
\begin{{equation}}
  w - \eta\,\frac{{\partial L}}{{\partial w}}
  = {sympy.latex(WEIGHT)} - {sympy.latex(LEARNING_RATE)} \cdot {sympy.latex(grad)}
  = {sympy.latex(new_w)} ,
\end{{equation}}
a step of {latex.math_expr(step)} against a weight of {latex.math_expr(WEIGHT)}: the weight
changes sign and lands {latex.math_expr(sympy.floor(abs(new_w) / WEIGHT))} times further from
zero than it started. The next forward pass sees a different network; its gradient is larger
still, and a few such steps overflow to \texttt{{inf}} and then \texttt{{NaN}}.
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
