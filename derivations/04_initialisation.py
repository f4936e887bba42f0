"""Chapter 4: initialisation. Glorot, He and LeCun variances, their normal and uniform forms,
and the defaults the frameworks actually use. Every formula and number is read from
gradmath's initializer catalogue.

Run alone: ``python derivations/04_initialisation.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys
from fractions import Fraction

import sympy

import gradmath
import gradmath.meanfield as mf
import gradmath.symbolic as sym
from gradmath.initializers import KERAS_TRUNCATED_NORMAL_CORRECTION, TRUNCATED_NORMAL_2SD_VARIANCE
from gradmath.render import latex

TITLE = "Initialisation: choosing the variance of the weights"

FAN_IN = sympy.Symbol(r"n_{\mathrm{in}}", positive=True)
FAN_OUT = sympy.Symbol(r"n_{\mathrm{out}}", positive=True)
EXAMPLE_FANS = (256, 512)
DEPTH_EXAMPLE = 10


def _exact(x: float) -> sympy.Rational:
    # The catalogue stores floats (2/(1 + 0.01²) as 1.9998…); print the rational they round.
    return sympy.Rational(Fraction(x).limit_denominator(10**6))


def variance_expr(init: gradmath.Initializer) -> sympy.Expr:
    """Var[W] of a catalogue entry in terms of the fans (its scale over its fan)."""
    scale = _exact(init.scale)
    if init.distribution == "orthogonal":
        return scale / sympy.Max(FAN_IN, FAN_OUT)
    fan = {"fan_in": FAN_IN, "fan_out": FAN_OUT, "fan_avg": (FAN_IN + FAN_OUT) / 2}[init.mode]
    return sympy.simplify(scale / fan)


def _m(expr: sympy.Expr) -> str:
    return f"${sympy.latex(expr)}$"


def _classic_table() -> str:
    # The classic pairing of initializer and activation (Glorot & Bengio 2010; He et al. 2015;
    # Klambauer et al. 2017, who use LeCun's variance for SELU).
    rows = [
        ("Glorot (Xavier)", "none, tanh, logistic, softmax", "glorot_normal", "glorot_uniform"),
        ("He (Kaiming)", "ReLU and its variants", "he_normal", "he_uniform"),
        ("LeCun", "SELU", "lecun_normal", "lecun_uniform"),
    ]
    body = []
    for scheme, acts, normal, uniform in rows:
        var = variance_expr(gradmath.initializer(normal))
        limit = sympy.sqrt(3 * variance_expr(gradmath.initializer(uniform)))
        body.append([scheme, acts, _m(var), _m(limit)])
    return latex.table(
        ["initialisation", "activation functions", r"$\sigma^2$ (normal)", r"$a$ of $U(-a, a)$"],
        body,
        align="llcc",
        caption=r"Which initialisation goes with which activation. The normal form draws "
        r"$W_{ij}\sim\mathcal{N}(0,\sigma^2)$, the uniform form $U(-a,a)$ with "
        r"$a=\sqrt{3\sigma^2}$, which has the same variance.",
        label="tab:init-classic",
    )


def _catalogue_table() -> str:
    fan_in, fan_out = EXAMPLE_FANS
    rows = []
    for name in gradmath.initializers():
        init = gradmath.initializer(name)
        var = init.variance(fan_in, fan_out)
        rows.append(
            [
                rf"\texttt{{{latex.escape(name)}}}",
                latex.escape(init.distribution.replace("_", " ")),
                _m(variance_expr(init)),
                f"${latex.fmt_num(var)}$",
            ]
        )
    return latex.table(
        ["catalogue name", "distribution", r"$\mathrm{Var}[W_{ij}]$",
         rf"at $n_{{\mathrm{{in}}}}={fan_in}$, $n_{{\mathrm{{out}}}}={fan_out}$"],
        rows,
        align="llcr",
        caption=r"Every initializer in gradmath's catalogue (default parameters) with the "
        r"variance of the distribution it actually samples.",
        label="tab:init-catalogue",
    )  # fmt: skip


def _gain_table() -> str:
    names = [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
             ("leaky_relu", 0.01), ("selu", None)]  # fmt: skip
    rows = []
    for name, param in names:
        gain = gradmath.calculate_gain(name, param)
        exact = _exact(gain**2)
        label = rf"\texttt{{{latex.escape(name)}}}" + ("" if param is None else f" (${param}$)")
        rows.append([label, f"${latex.fmt_num(gain)}$", _m(exact)])
    return latex.table(["nonlinearity", "gain $g$", "$g^2$"], rows, align="lcc")


def chapter(quick: bool = False) -> str:
    torch = gradmath.initializer("torch_linear_default")
    # E[relu(√q z)²]/q and E[relu'(√q z)²] do not depend on q; q = 1 is as good as any.
    relu_phi2 = _exact(float(mf.mean_phi2("relu", 1.0)))
    relu_dphi2 = _exact(float(mf.mean_dphi2("relu", 1.0)))
    fan = EXAMPLE_FANS[0]
    torch_relu = _exact(torch.variance(fan, fan) * fan * float(relu_phi2))
    keras_gap = abs(TRUNCATED_NORMAL_2SD_VARIANCE / KERAS_TRUNCATED_NORMAL_CORRECTION**2 - 1.0)
    return rf"""
The product of local factors in Section~\ref{{ch:01_problem}} has one factor per layer; for a
wide layer the factor is a random matrix, and what matters at initialisation is how it changes
the \emph{{second moment}} of the signal going forward and of the gradient going backward.
Both are set by the variance of the initial weights.

\subsection{{Forward and backward variance}}
Let layer $l$ compute $h_i = \sum_{{j=1}}^{{n_{{\mathrm{{in}}}}}} W_{{ij}} x_j + b_i$ with
independent zero-mean weights of variance $\mathrm{{Var}}[W]$, independent of the inputs
$x_j = \varphi(h^{{l-1}}_j)$. Then
\begin{{equation}}
  \mathbb{{E}}[h_i^2] = n_{{\mathrm{{in}}}}\,\mathrm{{Var}}[W]\;\mathbb{{E}}[x_j^2] + \sigma_b^2 .
\end{{equation}}
Backpropagation sends $\delta^{{l-1}}_j = \varphi'(h^{{l-1}}_j)\sum_i W_{{ij}}\,\delta_i$ through
the transposed matrix, a sum over the $n_{{\mathrm{{out}}}}$ units of the layer above, so
\begin{{equation}}
  \mathbb{{E}}[(\delta^{{l-1}}_j)^2]
  = n_{{\mathrm{{out}}}}\,\mathrm{{Var}}[W]\;
    \mathbb{{E}}[\varphi'(h^{{l-1}}_j)^2]\;\mathbb{{E}}[\delta_i^2] .
\end{{equation}}
Keeping the forward second moment constant asks for $n_{{\mathrm{{in}}}}\mathrm{{Var}}[W]=1$
(for an activation that is the identity near zero, such as tanh), keeping the backward one
asks for $n_{{\mathrm{{out}}}}\mathrm{{Var}}[W]=1$. Both hold only when
$n_{{\mathrm{{in}}}} = n_{{\mathrm{{out}}}}$; Glorot and Bengio (2010, eq.~12) take the
compromise $\mathrm{{Var}}[W] = 2/(n_{{\mathrm{{in}}}}+n_{{\mathrm{{out}}}})$. For ReLU half the
units are off: for Gaussian $h$,
$\mathbb{{E}}[\mathrm{{relu}}(h)^2] = {sympy.latex(relu_phi2)}\,\mathbb{{E}}[h^2]$ and
$\mathbb{{E}}[\mathrm{{relu}}'(h)^2] = {sympy.latex(relu_dphi2)}$, so He et al.\ (2015,
eq.~10) double the variance.
LeCun's $1/n_{{\mathrm{{in}}}}$ is the forward condition for a linear unit; the self-normalising
SELU was designed around it (Klambauer et al.\ 2017).

\subsection{{The derivations}}
The three schemes follow from the two conditions above, one scheme per condition or their
compromise:

{"".join(sym.init_variance(scheme).latex() + chr(10) for scheme in ("lecun", "he", "glorot"))}
\subsection{{The table}}
{_classic_table()}

\subsection{{Normal and uniform forms}}
A uniform distribution $U(-a, a)$ has variance $a^2/3$, so the uniform form of a scheme with
variance $\sigma^2$ uses $a = \sqrt{{3\sigma^2}}$ (Table~\ref{{tab:init-classic}}, last column).
Only the variance enters the second-moment recursions above, so normal and uniform forms behave
the same at initialisation.

\subsection{{What the frameworks give you}}
\paragraph{{Keras.}} \texttt{{glorot\_normal}}, \texttt{{he\_normal}} and \texttt{{lecun\_normal}}
draw from a normal distribution truncated at two standard deviations. Truncation removes the
tails and leaves the variance of a standard normal at
${latex.fmt_num(TRUNCATED_NORMAL_2SD_VARIANCE, 10)}$; Keras divides the standard deviation by
${latex.fmt_num(KERAS_TRUNCATED_NORMAL_CORRECTION, 10)}$ to compensate (the square root of that
variance, rounded), so the variance actually sampled differs from the nominal one by a relative
${latex.fmt_num(keras_gap, 2)}$: the nominal formulas of Table~\ref{{tab:init-classic}} hold.

\paragraph{{PyTorch.}} \texttt{{nn.Linear}} initialises its weights with
\texttt{{kaiming\_uniform\_(a=}}$\sqrt5$\texttt{{)}}, that is
$U(\pm 1/\sqrt{{n_{{\mathrm{{in}}}}}})$ with variance {_m(variance_expr(torch))}, a third of
LeCun's, and its bias with the same uniform distribution
(bias variance {_m(_exact(torch.bias_scale) / FAN_IN)}), not zero. Followed by ReLU, each such
layer multiplies the forward second moment by
$n_{{\mathrm{{in}}}}\mathrm{{Var}}[W]\cdot{sympy.latex(relu_phi2)} = {sympy.latex(torch_relu)}$
(plus the small bias term): after {DEPTH_EXAMPLE} layers the signal has shrunk by
${latex.fmt_num(float(torch_relu) ** DEPTH_EXAMPLE, 3)}$. The \texttt{{torch.nn.init}}
functions take a \emph{{gain}} $g$ and use variance $g^2/n$; \texttt{{calculate\_gain}} recommends:

{_gain_table()}

\subsection{{The whole catalogue}}
{_catalogue_table()}
"""


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
