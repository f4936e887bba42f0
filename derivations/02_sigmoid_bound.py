"""Chapter 2: the sigmoid's derivative is at most 1/4, it saturates, and its outputs are not
centred; L sigmoid layers shrink the gradient by at least 4^L, until the update rounds to
nothing (and what mixed precision does about rounding).

Run alone: ``python derivations/02_sigmoid_bound.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import sympy

import gradmath
import gradmath.meanfield as mf
import gradmath.symbolic as sym
from gradmath.render import latex
from gradmath.render.notes import Exercise
from gradmath.symbolic.examples import rounds_away_above

TITLE = "The sigmoid: a small, saturating, off-centre derivative"

OBJECTIVES = (
    r"Derive $\sigma'(z) = \sigma(z)\bigl(1-\sigma(z)\bigr)$ and prove $\sigma' \le 1/4$.",
    r"Name the three reasons deep sigmoid networks lose their gradient: the small maximum, "
    r"saturation, and outputs that are not centred at zero.",
    r"Compute when a gradient step is lost to floating-point rounding, and explain how loss "
    r"scaling protects float16 training from gradient underflow.",
)

SATURATED_Z = (2.0, 5.0, 10.0)
BOUND_DEPTHS = (10, 20, 50)


def _m(expr: object) -> str:
    return latex.sympy_latex(expr)


def _inline(expr: object) -> str:
    """Inline math: short fractions as a/b."""
    return str(sympy.latex(expr, fold_short_frac=True))


def _num(x: float, digits: int = 3) -> str:
    return latex.fmt_num(float(x), digits)


def glorot_logistic() -> tuple[float, float]:
    """(q*, χ₁) of a deep logistic net with Glorot's σ_w² = 1 and no bias (mean field)."""
    return float(mf.fixed_point("sigmoid", 1.0, 0.0)), float(mf.chi1("sigmoid", 1.0, 0.0))


def chapter(quick: bool = False) -> str:
    deriv = sym.derivative("sigmoid")
    bound = sym.derivative_bound("sigmoid")
    tanh_gamma = sym.derivative_bound("tanh").result
    gamma = bound.result
    sigmoid = gradmath.activation("sigmoid")
    vanish = sym.vanishing_bound_example(depths=BOUND_DEPTHS)
    rounding = sym.update_rounding_example()
    f32, f64 = rounding.data["float32"], rounding.data["float64"]
    e32, e64 = (round(math.log2(d["threshold"])) for d in (f32, f64))
    new64 = np.float64(1.0) - np.float64(0.001) * np.float64(2e-10)
    scaling = sym.loss_scaling_example()
    q_star, chi = glorot_logistic()
    sat_rows = " & ".join(f"${_num(sigmoid.deriv(z))}$" for z in SATURATED_Z)
    sat_head = " & ".join(f"$z = {z:g}$" for z in SATURATED_Z)
    bounds = ", ".join(rf"$4^{{-{d}}} \approx {_num(v)}$" for d, v in vanish.data["floats"].items())
    return rf"""
The logistic sigmoid $\sigma(z) = 1/(1+e^{{-z}})$ was the default unit of early deep networks.
Three of its properties work against the gradient, and this chapter takes them in turn: its
derivative is small everywhere, it is nearly zero once a unit saturates, and its output is
always positive. The first alone already makes deep sigmoid chains vanish; the other two make
real networks worse than that bound suggests \citep{{lecun1998,glorot2010}}.

\subsection{{The derivative and its maximum}}
Differentiating $\sigma(z) = (1+e^{{-z}})^{{-1}}$ with the chain rule gives
\begin{{equation}}
  {_m(deriv.steps[1].expr)}
  = \frac{{1}}{{1+e^{{-z}}}}\cdot\frac{{e^{{-z}}}}{{1+e^{{-z}}}} ,
\end{{equation}}
and the second fraction is $1 - \sigma(z)$, because $1 - 1/(1+e^{{-z}}) = e^{{-z}}/(1+e^{{-z}})$.
Hence the identity every backpropagation code uses,
\begin{{equation}}\label{{eq:sigmoid-deriv}}
  \sigma'(z) = \sigma(z)\,\bigl(1-\sigma(z)\bigr),
\end{{equation}}
which is cheap because the forward pass has already computed $\sigma(z)$.

How large can it be? Since $\sigma(z)\in(0,1)$, equation~\eqref{{eq:sigmoid-deriv}} is a
product $s(1-s)$, and $s(1-s) \le 1/4$ with equality only at $s = 1/2$, that is at $z = 0$. The
calculus route agrees:
\begin{{equation}}
  \sigma''(z) = {_m(bound.steps[1].expr.rhs)}
\end{{equation}}
vanishes only at $z=0$, where $\sigma'(0) = {_inline(gamma)}$, and $\sigma'(z)\to 0$ as
$z\to\pm\infty$. So
\begin{{equation}}
  \gamma_\sigma = \sup_z \sigma'(z) = \sigma'(0) = {_m(gamma)} .
\end{{equation}}
One sigmoid layer therefore multiplies the gradient by at most ${_inline(gamma)}$ times the weight
(Figure~\ref{{fig:sigmoid_derivative}}). The same argument for $\tanh$, with
$\tanh' = 1 - \tanh^2$, gives $\gamma_{{\tanh}} = {_inline(tanh_gamma)}$: tanh passes the gradient
undamped at $z=0$, one reason it replaced the sigmoid in hidden layers.
\gradmathfigure{{sigmoid_derivative}}

\subsection{{Saturation}}
The bound ${_inline(gamma)}$ is the best case. A unit whose pre-activation is far from zero is
\emph{{saturated}}: its output is pinned near $0$ or $1$ and its derivative decays like
$e^{{-|z|}}$:
\begin{{center}}
\begin{{tabular}}{{l{"c" * len(SATURATED_Z)}}}
\toprule
 & {sat_head} \\
\midrule
$\sigma'(z)$ & {sat_rows} \\
\bottomrule
\end{{tabular}}
\end{{center}}
Large initial weights, or weights that grow during training, push pre-activations into this
range, and a saturated unit passes almost no gradient to anything below it.

\subsection{{Outputs that are not centred}}
Every sigmoid output is positive, with mean about $1/2$. The next layer's pre-activation
$h_i = \sum_j W_{{ij}} x_j$ then has a large second moment even when the weights are centred,
because the mean of $x_j$ contributes as much as its fluctuation; and all the gradients
$\partial\ell/\partial W_{{ij}} = \delta_i x_j$ of one unit share the sign of $\delta_i$, which
makes gradient descent zig-zag \citep{{lecun1998}}. Mean-field theory
(Chapter~\ref{{ch:05_mean_field}}) puts a number on the combined effect: a deep logistic network
with Glorot's variance $\sigma_w^2 = 1$ settles at a pre-activation second moment
$q^* = {_num(q_star)}$ and multiplies the squared gradient by $\chi_1 = {_num(chi)}$ per layer,
below even the $(1/4)^2 = 0.0625$ of the best case.

\subsection{{A product of $L$ factors}}
Put the bound into the chain rule~\eqref{{eq:chain}}. With weights $|w_l| \le 1$ every local
factor is at most ${_inline(gamma)}$, so
\begin{{equation}}
  \Bigl|\frac{{\partial\ell}}{{\partial w_1}}\Bigr|
  \le \Bigl|\frac{{\partial\ell}}{{\partial a_L}}\Bigr|\,|a_0|\;4^{{-L}} ,
\end{{equation}}
and $4^{{-L}}$ falls fast: {bounds}. Fifty layers cost thirty decimal orders of magnitude.

\subsection{{An update that rounds to nothing}}
Gradient descent adds $-\eta\,\partial\ell/\partial w$ to each weight. When the gradient has
vanished, this update can be smaller than the spacing of floating-point numbers around $w$, and
the addition then returns $w$ unchanged: the layer does not learn at all, however long we train.

Take $\eta = 0.001$ and $\partial\ell/\partial w = 2\times10^{{-10}}$, an update of
$2\times10^{{-13}}$, applied to $w = 1$. Round-to-nearest returns $w$ whenever the update is
less than half the gap between $w$ and its neighbour \citep{{goldberg1991}}.
In float32 the gap below $1$ is $2^{{-24}}$ and the gap above is
$\mathrm{{ulp}}(1) = 2^{{-23}} \approx {_num(float(f32["ulp_at_w"]))}$, so the update is lost:
$1 - 2\times10^{{-13}} = 1$ in float32. In fact it is lost for every $w > 2^{{{e32}}}
\approx {_num(float(f32["threshold"]))}$, that is for essentially every weight of a real
network. In float64 the gap is $2^{{-52}} \approx {_num(float(f64["ulp_at_w"]))}$ and the step
survives ($1 - 2\times10^{{-13}} = {float(new64)!r}$), but only for $w \le 2^{{{e64}}} =
{int(f64["threshold"])}$.

\subsection{{Mixed precision and loss scaling}}
Training in float16 halves memory and speeds up matrix products, but float16 has only 11
significand bits and a tiny range: its smallest normal number is
$2^{{-14}} \approx {_num(float(scaling.data["tiny"]))}$ and its smallest subnormal
$2^{{-24}} \approx {_num(float(scaling.data["smallest_subnormal"]))}$. Small gradients do not
merely lose an update there; they \emph{{underflow}} to zero before the update is formed. A
gradient entry $g = 2\times10^{{-8}}$ is below half the smallest subnormal and is stored as $0$.

\emph{{Loss scaling}} \citep{{micikevicius2018}} multiplies the loss by a large $S$ before
backpropagation. The chain rule is linear in $\partial\ell$, so every gradient is multiplied by
$S$ too: with $S = 2^{{16}}$ the entry becomes $S g \approx {_num(float(scaling.data["scaled"]))}$,
a normal float16 number stored with relative error at most $2^{{-11}}$. The optimizer divides by
$S$ in float32 before updating the float32 master weights and recovers $g$ to a relative
${_num(float(scaling.data["relative_error"]), 2)}$. The scale must not be too large either:
$S\max|g|$ must stay below the largest float16, ${_num(float(scaling.data["max"]), 5)}$. Dynamic
loss scaling therefore halves $S$ whenever a gradient overflows (and skips that step) and
doubles it again after a run of clean steps. The bfloat16 format keeps float32's exponent range
and rarely needs scaling; it pays with 8 significand bits instead of 11.
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    gamma = sym.derivative_bound("sigmoid").result
    _, chi = glorot_logistic()
    return (
        rf"$\sigma' = \sigma(1-\sigma) \le {_inline(gamma)}$, with equality only at $z = 0$; "
        r"$\tanh' \le 1$.",
        r"Saturation ($\sigma'(z)\approx e^{-|z|}$) and positive outputs make deep sigmoid "
        rf"networks worse than the bound: $\chi_1 = {_num(chi)}$ per layer with Glorot weights.",
        r"An update below half an ulp of the weight is lost entirely; float16 gradients can "
        r"underflow to zero, and loss scaling by $S$ moves them back into range.",
    )


def saturated_derivative() -> float:
    """σ'(5), the derivative of a unit saturated at z = 5."""
    return float(gradmath.activation("sigmoid").deriv(5.0))


def float32_threshold(update: float) -> float:
    """The weight above which a float32 update of this size is lost."""
    return float(rounds_away_above(update, np.float32)[0])


def loss_scale_needed(gradient: str, low: int = 0, high: int = 24) -> int:
    """The least power-of-two loss scale 2^k that makes ``gradient`` a normal float16 number."""
    for k in range(low, high + 1):
        d = sym.loss_scaling_example(gradient, 2**k)
        if d.data["scaled"] >= d.data["tiny"]:
            return 2**k
    raise ValueError(f"no scale up to 2^{high}")


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    sat = saturated_derivative()
    thr = float32_threshold(1e-9)
    scale = loss_scale_needed("1e-9")
    return (
        Exercise(
            "sigmoid-saturated-derivative",
            r"A sigmoid unit sits at $z = 5$. By what factor is its derivative smaller than "
            r"the maximum $1/4$?",
            rf"$\sigma'(5) = \sigma(5)(1-\sigma(5)) \approx {_num(sat, 4)}$, which is "
            rf"${_num(0.25 / sat, 3)}$ times smaller than $1/4$ (roughly $4e^{{-5}}$).",
            sat,
        ),
        Exercise(
            "float32-lost-update",
            r"An update $\eta\,\partial\ell/\partial w = 10^{-9}$ is applied in float32. For "
            r"which positive weights $w$ is it lost entirely?",
            rf"It is lost when it is below half the gap below $w$. The threshold is "
            rf"$w > 2^{{{round(math.log2(thr))}}} \approx {_num(thr)}$: a weight of $0.1$, "
            "typical of a trained layer, would not move at all.",
            thr,
        ),
        Exercise(
            "float16-loss-scale",
            r"Which is the smallest power of two $S$ that lifts a gradient $g = 10^{-9}$ to a "
            r"normal float16 number ($\ge 2^{-14}$)?",
            rf"We need $S \ge 2^{{-14}}/10^{{-9}} \approx {2.0**-14 / 1e-9:.0f}$, so "
            rf"$S = 2^{{{round(math.log2(scale))}}} = {scale}$.",
            scale,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
