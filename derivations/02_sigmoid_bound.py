"""Chapter 2: the sigmoid's derivative is at most 1/4, so L sigmoid layers shrink the gradient
by at least 4^L, until the update rounds to nothing.

Run alone: ``python derivations/02_sigmoid_bound.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import gradmath.symbolic as sym
from gradmath.render import latex

TITLE = "The sigmoid bound: why gradients vanish"


def chapter(quick: bool = False) -> str:
    deriv = sym.derivative("sigmoid")
    bound = sym.derivative_bound("sigmoid")
    tanh_bound = sym.derivative_bound("tanh")
    chain = sym.chain_rule(3, act="sigmoid")
    vanish = sym.vanishing_bound_example(depths=(10, 20, 50))
    rounding = sym.update_rounding_example()
    return rf"""
The logistic sigmoid $\sigma(z) = 1/(1+e^{{-z}})$ was the default unit of early deep networks.
Its derivative has a simple closed form and a small maximum, and that maximum is the whole
story of the vanishing gradient in sigmoid networks.

\subsection{{The derivative}}
{deriv.latex()}

\subsection{{The bound}}
{bound.latex()}

So one sigmoid layer multiplies the gradient by at most {latex.math_expr(bound.result)} (times
the weight; Figure~\ref{{fig:sigmoid_derivative}}). For comparison the same argument for tanh
gives {latex.math_expr(tanh_bound.result)}: tanh passes the gradient undamped at $z=0$, which
is one reason it replaced the sigmoid in hidden layers.

\subsection{{A product of $L$ factors}}
Backpropagating through a chain of sigmoid units multiplies one local factor per layer:
{chain.latex()}

With weights of size one, each factor is at most {latex.math_expr(bound.result)} and the
bound shrinks geometrically with the depth:
{vanish.latex()}

\subsection{{An update that rounds to nothing}}
Gradient descent adds $-\eta\,\partial L/\partial w$ to each weight. When the gradient has
vanished, this update is smaller than the spacing of floating-point numbers around $w$, and
the addition returns $w$ unchanged: the lower layers do not learn at all.
{rounding.latex()}
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
