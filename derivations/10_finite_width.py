"""Chapter 10: finite width. What mean-field theory misses at width n, how much one
initialisation scatters around the average, and where depth/width makes the 1/n expansion fail
(Hanin 2018; Hanin & Nica 2019; Roberts, Yaida & Hanin 2022).

Run alone: ``python derivations/10_finite_width.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np

import gradmath
from gradmath.meanfield import predict
from gradmath.meanfield.finite_width import (
    finite_width_profile,
    relu_gradient_law,
    relu_norm_law,
)
from gradmath.render import latex
from gradmath.symbolic import relu_fluctuation

TITLE = "Finite width: the spread across initialisations"

OBJECTIVES = (
    r"Derive the exact law of a He ReLU layer's squared-norm ratio, "
    r"$X = \tfrac{2}{n}\chi^2_K$, and its moments $\mathbb{E}[X] = 1$, "
    r"$\mathbb{E}[X^2] = 1 + 5/n$.",
    r"Explain why the mean of $\|\delta^1\|^2$ stays put while a typical initialisation's "
    r"gradient shrinks like $e^{-\frac52\beta}$, $\beta = \sum_l 1/n_l$.",
    r"Correct mean-field predictions to first order in $1/n$, and recognise when depth/width "
    r"is too large for that expansion.",
)

DEPTH = 64
WIDTHS = (16, 32, 64, 256)
GELU_WIDTH, GELU_DEPTH = 256, 20


def _fmt(x: float, digits: int = 3) -> str:
    return f"${latex.fmt_num(x, digits)}$"


def _relu_table() -> tuple[str, dict[int, float]]:
    rows, below = [], {}
    for n in WIDTHS:
        law = relu_gradient_law((n,) * (DEPTH + 1), 1)
        mu, var = law.lognormal()
        p10 = float(law.cdf_log(math.log(0.1)))
        below[n] = p10
        rows.append(
            [f"${n}$", _fmt(DEPTH / n), _fmt(law.mean_log()), _fmt(mu),
             _fmt(math.sqrt(law.var_log())), _fmt(math.sqrt(var)), _fmt(p10)]
        )  # fmt: skip
    table = latex.table(
        [
            "$n$",
            r"$\beta$",
            r"$\mathbb{E}\log G$",
            r"$-\frac52\beta$",
            "sd (exact)",
            r"$\sqrt{5\beta}$",
            r"$P(G < 0.1)$",
        ],
        rows,
        caption=rf"He ReLU nets of depth {DEPTH}: the gradient at layer 1 of one example, "
        r"$G = \frac{1}{n}\|\delta^1\|^2$ with $\mathbb{E}[G] = 1$, across initialisations. "
        r"Exact law (digamma and trigamma sums, Gil-Pelaez inversion) against the log-normal "
        r"limit of \citet{hanin2019}.",
        label="tab:relu-law",
    )
    return table, below


def _gelu_numbers(quick: bool) -> tuple[float, float, float, int]:
    width = 64 if quick else GELU_WIDTH
    net = gradmath.MLP.square(
        width, GELU_DEPTH, activation="gelu", init=gradmath.initializer("normal", sigma_w2=2.0)
    )
    mf = predict(net)
    exact = finite_width_profile(mf, "exact")
    expansion = finite_width_profile(mf, "expansion")
    return (
        float(np.exp(exact.log_q_mf[-1])),
        float(np.exp(expansion.log_q[-1])),
        float(np.exp(exact.log_q[-1])),
        width,
    )


def chapter(quick: bool = False) -> str:
    d = relu_fluctuation()
    example = d.data["example"]
    table, below = _relu_table()
    norm = relu_norm_law((32,) * 11)
    if Fraction(str(example)) != norm.moment_ratio():  # two engines, one rational
        raise RuntimeError(f"symbolic {example} != numeric {norm.moment_ratio()}")
    mf_q, exp_q, exact_q, gw = _gelu_numbers(quick)
    return rf"""
Mean-field theory (Section~\ref{{ch:05_mean_field}}) describes the average network. A network
of width $n$ differs from it in two ways: its expected second moments carry corrections of
order $1/n$ per layer, and the network you actually initialise scatters around that average by
an amount that grows with depth over width. Both are set by $\beta = \sum_l 1/n_l$.

\subsection{{An exact law for ReLU}}
{d.latex()}
The mean is exact at every width, the fluctuation is not: over $L$ independent layers
$\mathbb{{E}}\|x^L\|^4/(\mathbb{{E}}\|x^L\|^2)^2 = (1 + 5/n)^L$, which for width 32 and depth 10
is ${latex.sympy_latex(example)} \approx {latex.fmt_num(float(norm.moment_ratio()), 4)}$ exactly
(the numeric engine's law, a product of scaled chi-squares, gives the same rational). Logarithms
add: $\log\|x^L\|^2$
is a sum of $L$ independent terms, so it is close to Gaussian with mean $-\frac52\beta$ and
variance $5\beta$ around $\log\mathbb{{E}}$ \citep{{hanin2018,hanin2019}}. The gradient is the same
story: backpropagating a Gaussian $\delta^L$ has the law of pushing a random tangent vector
forward, a product of the same factors.

{table}

The mean of $G$ is 1 for every row, yet at width {WIDTHS[0]} a net has a gradient ten times
below it with probability {_fmt(below[WIDTHS[0]])}, and at width {WIDTHS[-1]} with probability
{_fmt(below[WIDTHS[-1]])}: one seed trains, the next does not.

\subsection{{Corrections of order $1/n$ for any activation}}
For Gaussian weights the conditional variance of a layer's pre-activations,
\[
  A^l = \sigma_w^2\,\frac{{1}}{{n}}\sum_j \varphi(h^{{l-1}}_j)^2 + \sigma_b^2,
\]
is a scalar Markov chain whose limit is the length map. With
$m(q) = \mathbb{{E}}[\varphi(\sqrt q z)^2]$,
$m_4(q) = \mathbb{{E}}[\varphi(\sqrt q z)^4]$, $\mathbb{{E}}[A^l] = q^l + \delta_l$ and
$V_l = \mathrm{{Var}}[A^l]$,
\begin{{align}}
  V_{{l+1}} &= \sigma_w^4\bigl[m'(q^l)^2 V_l + (m_4(q^l) - m(q^l)^2)/n\bigr], \\
  \delta_{{l+1}} &= \sigma_w^2\bigl[m'(q^l)\,\delta_l + \tfrac12 m''(q^l)\,V_l\bigr],
\end{{align}}
the single-input four-point vertex and next-to-leading-order kernel of
\citet[ch.~4--5]{{roberts2022}}. Curvature of the length map turns the fluctuations into a bias
of the mean.
The gradient needs more than gradient independence: the weights that produced $h^{{l+1}}$ are
correlated with $\delta^{{l+1}}$, and the exact statement follows a tangent vector forward
together with the signal.

\subsection{{When depth/width is of order one}}
The expansion is first order in the fluctuations; it fails when they are no longer small. GELU
with He weights contracts slowly towards $q^* = 0$, and nets whose signal happens to be large
stay large: at width {gw} and depth {GELU_DEPTH}, $\mathbb{{E}}[(h^{{{GELU_DEPTH}}})^2]$ is
{_fmt(mf_q)} in mean-field theory, {_fmt(exp_q)} to first order in $1/n$, and {_fmt(exact_q)}
from the exact law of the chain, which gradmath propagates on a grid in $\log q$ (the law of each
layer's sum of $n$ terms from its characteristic function).

\gradmathfigure{{finite_width_histogram}}

\gradmathfigure{{finite_width_bias}}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"He + ReLU keeps $\mathbb{E}\|x^L\|^2$ exactly at every width, but "
        r"$\mathbb{E}[X^2] = 1 + 5/n$ per layer: fluctuations compound like $(1 + 5/n)^L$.",
        r"$\log\|\delta^1\|^2$ is close to $\mathcal{N}(-\frac52\beta, 5\beta)$: the typical "
        r"gradient is smaller than the mean by $e^{-\frac52\beta}$.",
        r"The $1/n$ expansion works while the relative variance of $q^l$ is small; beyond, the "
        r"exact law of the chain is needed.",
    )


def exercises(quick: bool = False) -> tuple[object, ...]:
    from gradmath.render.notes import Exercise

    law = relu_norm_law((32,) * 11)
    return (
        Exercise(
            "finite-width-relu-fourth-moment",
            r"A He ReLU net has width 32 and depth 10. Compute "
            r"$\mathbb{E}\|x^{10}\|^4/(\mathbb{E}\|x^{10}\|^2)^2$ exactly.",
            r"Each layer contributes $\mathbb{E}[X^2] = 1 + 5/32 = 37/32$ and layers are "
            r"independent, so the ratio is $(37/32)^{10}$.",
            law.moment_ratio(),
        ),
    )


if __name__ == "__main__":
    sys.stdout.write(chapter(quick="--quick" in sys.argv[1:]))
