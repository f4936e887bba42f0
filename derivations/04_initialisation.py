"""Chapter 4: initialisation. Why the weights must be random, one derivation of the weight
variance with LeCun, He and Glorot as its cases, and what the frameworks actually give you.

Run alone: ``python derivations/04_initialisation.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np
import sympy

import gradmath
import gradmath.meanfield as mf
import gradmath.symbolic as sym
from gradmath.initializers import KERAS_TRUNCATED_NORMAL_CORRECTION, TRUNCATED_NORMAL_2SD_VARIANCE
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "Initialisation: choosing the variance of the weights"

OBJECTIVES = (
    r"Explain why the weights must start random (symmetry breaking), and what goes wrong with "
    r"zero or constant initialisation.",
    r"Derive the forward and backward variance conditions, and obtain LeCun, He and Glorot "
    r"initialisation as cases of one calculation.",
    r"Know which variance each framework's defaults actually sample, including PyTorch's "
    r"default bias, and which gain to use for which activation.",
)

#: Square layers for the PyTorch example.
TORCH_WIDTH, TORCH_DEPTH = 256, 10


def _m(expr: object) -> str:
    return latex.sympy_latex(expr)


def _inline(expr: object) -> str:
    """Inline math: short fractions as a/b."""
    return str(sympy.latex(expr, fold_short_frac=True))


def _num(x: float, digits: int = 3) -> str:
    return latex.fmt_num(float(x), digits)


def _exact(x: float) -> sympy.Rational:
    # The catalogue stores floats (2/(1 + 0.01²) as 1.9998…); print the rational they round.
    return sympy.Rational(Fraction(x).limit_denominator(10**6))


def relu_moments() -> tuple[sympy.Rational, sympy.Rational]:
    """(E[relu(h)²]/E[h²], E[relu'(h)²]) for Gaussian h; independent of the scale."""
    return _exact(float(mf.mean_phi2("relu", 1.0))), _exact(float(mf.mean_dphi2("relu", 1.0)))


def torch_default_profile(width: int = TORCH_WIDTH, depth: int = TORCH_DEPTH) -> np.ndarray:
    """q^l of a ReLU stack of PyTorch-default ``nn.Linear`` layers, biases included."""
    torch = gradmath.initializer("torch_linear_default")
    net = gradmath.MLP.square(
        width, depth, activation="relu", init=torch, sigma_b2=torch.sigma_b2(width)
    )
    return np.asarray(mf.predict(net).q)


def torch_default_fixed_point(width: int = TORCH_WIDTH) -> float:
    """q* of that stack: σ_w² = 1/3 and σ_b² = 1/(3n) in the ReLU length map, 2/(5n)."""
    torch = gradmath.initializer("torch_linear_default")
    sigma_w2 = torch.variance(width, width) * width
    return float(mf.fixed_point("relu", sigma_w2, torch.sigma_b2(width)))


def selu_gain_cases() -> dict[str, tuple[float, float]]:
    """(q*, χ₁) of deep SELU nets at σ_w² = 1 (gain 1, 'linear') and σ_w² = (3/4)² (PyTorch's
    recommended SELU gain), no bias."""
    out = {}
    for key, gain in (("linear", gradmath.calculate_gain("linear")),
                      ("selu", gradmath.calculate_gain("selu"))):  # fmt: skip
        sw = gain**2
        out[key] = (float(mf.fixed_point("selu", sw, 0.0)), float(mf.chi1("selu", sw, 0.0)))
    return out


def logistic_critical_sigma_w2() -> float:
    """The σ_w² at which a deep logistic net (no bias) has χ₁ = 1."""
    return float(np.asarray(mf.critical_sigma_w2("sigmoid", 0.0)))


def _scheme_table() -> str:
    rows = []
    for scheme, name, acts, condition in (
        ("lecun", "LeCun", r"linear, SELU", r"forward, $\kappa = 1$"),
        ("glorot", "Glorot (Xavier)", r"tanh; logistic by convention", r"average, $\kappa = 1$"),
        ("he", "He (Kaiming)", r"ReLU", r"forward, $\kappa = \tfrac12$"),
    ):
        d = sym.init_variance(scheme)
        rows.append(
            [name, acts, condition, f"${_m(d.result)}$", f"${_m(d.data['uniform_limit'])}$"]
        )
    return latex.table(
        ["scheme", "activation", "condition", r"$\mathrm{Var}[W]$", r"$a$ of $U(-a, a)$"],
        rows,
        align="lllcc",
        caption=r"The three classic schemes as cases of the conditions~\eqref{eq:fwd-cond} "
        r"and~\eqref{eq:bwd-cond}. The uniform form $U(-a,a)$ has the same variance, "
        r"$a = \sqrt{3\,\mathrm{Var}[W]}$. Each scheme also has a \emph{fan-out} mode that "
        r"imposes the backward condition instead.",
        label="tab:init-classic",
    )


def _gain_table() -> str:
    names = [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
             ("leaky_relu", 0.01), ("selu", None)]  # fmt: skip
    rows = []
    for name, param in names:
        gain = gradmath.calculate_gain(name, param)
        label = rf"\texttt{{{latex.escape(name)}}}" + ("" if param is None else f" (${param}$)")
        rows.append([label, f"${_num(gain, 4)}$", f"${_num(gain**2, 4)}$"])
    return latex.table(
        ["nonlinearity", "gain $g$", r"$\sigma_w^2 = g^2$"],
        rows,
        align="lcc",
        caption=r"PyTorch's \texttt{calculate\_gain}: the \texttt{torch.nn.init} functions "
        r"draw with variance $g^2/n$, so $\sigma_w^2 = g^2$ in fan-in mode.",
        label="tab:gains",
    )


def chapter(quick: bool = False) -> str:
    phi2, dphi2 = relu_moments()
    lecun, he, glorot = (sym.init_variance(s) for s in ("lecun", "he", "glorot"))
    _, n_out = sym.fan_symbols()
    gamma_sig = sym.derivative_bound("sigmoid").result
    logistic_bwd = sympy.simplify(1 / (n_out * gamma_sig**2))
    crit_logistic = logistic_critical_sigma_w2()
    chi_glorot_logistic = float(mf.chi1("sigmoid", 1.0, 0.0))
    torch = gradmath.initializer("torch_linear_default")
    torch_var = _exact(torch.variance(1, 1))
    torch_sw2 = torch_var
    input_share = float(torch_sw2 * phi2) ** TORCH_DEPTH
    q = torch_default_profile()
    q_star = torch_default_fixed_point()
    settle = int(np.argmax(np.abs(q / q_star - 1) < 0.05)) + 1
    keras_gap = abs(TRUNCATED_NORMAL_2SD_VARIANCE / KERAS_TRUNCATED_NORMAL_CORRECTION**2 - 1.0)
    selu = selu_gain_cases()
    return rf"""
The product of local factors of Chapter~\ref{{ch:01_problem}} has one factor per layer; for a
wide layer that factor is a random matrix, and what matters at initialisation is how it changes
the \emph{{second moment}} of the signal going forward and of the gradient going backward. Both
are set by the variance of the initial weights. Before choosing that variance, one question
comes first: why random at all?

\subsection{{Why not zero: symmetry breaking}}
Suppose every weight of the network starts at the same value, zero included. Then every unit
of a hidden layer computes the same function of the input, every unit receives the same
$\delta_i = \varphi'(h_i)\sum_m W^{{l+1}}_{{mi}}\delta^{{l+1}}_m$ in backpropagation (the weights
$W^{{l+1}}_{{mi}}$ leaving it are the same for every $i$), and so every unit gets the same update.
After any number of steps the units are still
identical: the layer has the expressive power of a single unit, however wide it is. With all
weights exactly zero it is worse: the hidden pre-activations are $h^l = b^l$ whatever the input,
and the gradient sent down,
$\delta^{{l}} = \operatorname{{diag}}(\varphi'(h^l))\,(W^{{l+1}})^\top\delta^{{l+1}}$, is zero
because $W^{{l+1}} = 0$, so no layer but the last receives any gradient at all. Random weights
break the symmetry \citep{{goodfellow2016}}. (Biases can start at zero: the random weights already
make units differ.) The variance of that randomness is the subject of the rest of this chapter.

\subsection{{One derivation, three schemes}}
Let a layer compute $h_i = \sum_{{j=1}}^{{n_{{\mathrm{{in}}}}}} W_{{ij}} x_j + b_i$ with independent
zero-mean weights of variance $\mathrm{{Var}}[W]$, independent of the inputs
$x_j = \varphi(h^{{\mathrm{{prev}}}}_j)$, and take $b = 0$ for now. Squaring and taking
expectations, the cross terms $\mathbb{{E}}[W_{{ij}}W_{{ik}}]\,\mathbb{{E}}[x_j x_k]$ with
$j \ne k$ vanish because the weights are independent with mean zero, and the $n_{{\mathrm{{in}}}}$
diagonal terms are equal:
\begin{{equation}}\label{{eq:fwd-var}}
  \mathbb{{E}}[h_i^2] = n_{{\mathrm{{in}}}}\,\mathrm{{Var}}[W]\;\mathbb{{E}}[x_j^2] .
\end{{equation}}
Backpropagation sends $\delta^{{\mathrm{{prev}}}}_j = \varphi'(h^{{\mathrm{{prev}}}}_j)
\sum_i W_{{ij}}\,\delta_i$ through the transposed matrix, a sum over the $n_{{\mathrm{{out}}}}$
units of this layer, and the same argument gives
\begin{{equation}}\label{{eq:bwd-var}}
  \mathbb{{E}}[(\delta^{{\mathrm{{prev}}}}_j)^2]
  = n_{{\mathrm{{out}}}}\,\mathrm{{Var}}[W]\;\mathbb{{E}}[\varphi'(h^{{\mathrm{{prev}}}}_j)^2]\;
    \mathbb{{E}}[\delta_i^2] .
\end{{equation}}
Everything the activation contributes is in two numbers. Write
$\kappa = \mathbb{{E}}[\varphi(h)^2]/\mathbb{{E}}[h^2]$ for the fraction of the second moment a
unit passes forward and $\kappa' = \mathbb{{E}}[\varphi'(h)^2]$ for the one it passes backward.
Asking each pass to keep its second moment from layer to layer gives
\begin{{align}}
  \text{{forward:}}\quad & n_{{\mathrm{{in}}}}\,\mathrm{{Var}}[W]\,\kappa = 1,
\label{{eq:fwd-cond}}\\
  \text{{backward:}}\quad & n_{{\mathrm{{out}}}}\,\mathrm{{Var}}[W]\,\kappa' = 1.
\label{{eq:bwd-cond}}
\end{{align}}
The classic schemes are the cases of these two equations:
\begin{{itemize}}
  \item \textbf{{Linear units}} ($\kappa = \kappa' = 1$). The forward condition gives
        $\mathrm{{Var}}[W] = {_inline(lecun.data["forward"])}$, \emph{{LeCun}} initialisation
        \citep{{lecun1998}}; the backward one gives ${_inline(lecun.data["backward"])}$.
  \item \textbf{{tanh near zero}} ($\tanh'(0) = 1$, so again $\kappa \approx \kappa' \approx 1$
        while the pre-activations are small). Both conditions hold only if
        $n_{{\mathrm{{in}}}} = n_{{\mathrm{{out}}}}$; \emph{{Glorot}} initialisation
        \citep{{glorot2010}} satisfies their average, $\tfrac12(n_{{\mathrm{{in}}}} +
        n_{{\mathrm{{out}}}})\,\mathrm{{Var}}[W] = 1$, that is
        $\mathrm{{Var}}[W] = {_inline(glorot.result)}$.
  \item \textbf{{ReLU}}. For Gaussian $h$ half the units are off:
        $\mathbb{{E}}[\mathrm{{relu}}(h)^2] = {_inline(phi2)}\,\mathbb{{E}}[h^2]$ and
        $\mathbb{{E}}[\mathrm{{relu}}'(h)^2] = {_inline(dphi2)}$, so
        $\kappa = \kappa' = {_inline(phi2)}$ and
        the forward condition gives $\mathrm{{Var}}[W] = {_inline(he.result)}$, \emph{{He}}
        initialisation \citep{{he2015}}: twice LeCun's variance pays back the half that ReLU
        discards.
\end{{itemize}}
Table~\ref{{tab:init-classic}} collects them, and Figure~\ref{{fig:glorot_compromise}} shows
what each does when the widths change from layer to layer. Only the variance enters
equations~\eqref{{eq:fwd-var}}--\eqref{{eq:bwd-var}}, so normal and uniform forms behave the
same at initialisation; a uniform $U(-a,a)$ has variance $a^2/3$.

{_scheme_table()}
\gradmathfigure{{glorot_compromise}}

\paragraph{{The logistic sigmoid is a convention, not a case.}} Glorot initialisation is
routinely recommended for the logistic sigmoid too (it is, for example, the Keras default for
every layer), but the derivation above does not cover it. Near zero
$\sigma(z) \approx \tfrac12 + \tfrac{{z}}{{4}}$, so $\kappa' \approx \sigma'(0)^2 =
{_inline(gamma_sig**2)}$, and the backward condition asks for
$\mathrm{{Var}}[W] = {_inline(logistic_bwd)}$,
sixteen times the fan-out variance (the ``four times larger weights'' of some tutorials). And the
constant $\tfrac12$ in $\sigma$ feeds a mean into every layer, so the forward second moment is not
the small-$z$ one. Mean-field theory (Chapter~\ref{{ch:05_mean_field}}) handles both at once:
with Glorot's $\sigma_w^2 = 1$ a deep logistic network multiplies the squared gradient by
$\chi_1 = {_num(chi_glorot_logistic)}$ per layer, and it reaches $\chi_1 = 1$ only at
$\sigma_w^2 \approx {_num(crit_logistic, 4)}$, where most units are saturated. No variance makes a
deep logistic network well conditioned; use tanh or ReLU in hidden layers.

\subsection{{What the frameworks give you}}
\paragraph{{Keras.}} \texttt{{glorot\_normal}}, \texttt{{he\_normal}} and \texttt{{lecun\_normal}}
draw from a normal distribution truncated at two standard deviations. Truncation removes the
tails and leaves the variance of a standard normal at
${_num(TRUNCATED_NORMAL_2SD_VARIANCE, 4)}$; Keras divides the standard deviation by
${_num(KERAS_TRUNCATED_NORMAL_CORRECTION, 4)}$, the square root of that, so the variance actually
sampled matches the nominal one of Table~\ref{{tab:init-classic}} to a relative
${_num(keras_gap, 2)}$, rounding.

\paragraph{{PyTorch.}} \texttt{{nn.Linear}} initialises its weights with
\texttt{{kaiming\_uniform\_}} and $a=\sqrt5$, that is $U(\pm 1/\sqrt{{n_{{\mathrm{{in}}}}}})$
with variance $1/({_inline(1 / torch_var)}n_{{\mathrm{{in}}}})$,
a third of LeCun's, and its bias with the
same uniform distribution, so $\sigma_b^2 = 1/(3n_{{\mathrm{{in}}}})$, not zero. Followed by ReLU,
each layer maps the second moment as
\begin{{equation}}
  q^{{l+1}} = \tfrac13\cdot\tfrac12\,q^l + \frac{{1}}{{3n}} ,
\end{{equation}}
a contraction by ${_inline(torch_sw2 * phi2)}$ towards the fixed point
$q^* = \frac{{1/(3n)}}{{1 - 1/6}} = \frac{{2}}{{5n}}$ (${_num(q_star, 4)}$ at $n = {TORCH_WIDTH}$).
The second moment therefore does \emph{{not}} vanish: it levels off within 5\,\% of $q^*$ by
layer~{settle} (${_num(q[-1], 4)}$ at layer~{TORCH_DEPTH}). What vanishes is the input's share of
it: the part of $q^l$ that comes from the input shrinks by $(1/6)^l$, a factor
${_num(input_share)}$ after {TORCH_DEPTH} layers, and the rest is the biases' noise. A deep
default-initialised ReLU stack forgets its input; re-initialise with \texttt{{kaiming\_normal\_}}
and zero biases for deep plain networks.

The \texttt{{torch.nn.init}} functions take a \emph{{gain}} $g$ and use variance $g^2/n$
(Table~\ref{{tab:gains}}). Two entries deserve a remark. The logistic's gain $1$ is the
convention discussed above. SELU's gain $3/4$ is \emph{{not}} the self-normalising choice: the
self-normalising fixed point of \citep{{klambauer2017}} needs $\sigma_w^2 = 1$, LeCun's variance,
which PyTorch's documentation obtains with \texttt{{nonlinearity='linear'}}. The two differ in a
way mean-field theory makes precise. With $\sigma_w^2 = 1$ a deep SELU network keeps
$q^* = {_num(selu["linear"][0], 3)}$ and multiplies the squared gradient by
$\chi_1 = {_num(selu["linear"][1], 4)}$ per layer, a slow growth (Chapter~\ref{{ch:06_remedies}});
with $\sigma_w^2 = 9/16$ it has $\chi_1 = {_num(selu["selu"][1], 4)}$ but the forward signal
settles at $q^* = {_num(selu["selu"][0], 2)}$, far from the normalised $(0, 1)$. The gain $3/4$
trades self-normalisation for gradient flow; use \texttt{{'linear'}} (or LeCun normal) for a
self-normalising network.

{_gain_table()}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"Weights must be random: identical weights give identical units and identical "
        r"updates, and zero weights give zero gradients below the top layer.",
        r"Forward: $n_{\mathrm{in}}\mathrm{Var}[W]\kappa = 1$; backward: "
        r"$n_{\mathrm{out}}\mathrm{Var}[W]\kappa' = 1$. LeCun ($1/n_{\mathrm{in}}$), He "
        r"($2/n_{\mathrm{in}}$) and Glorot ($2/(n_{\mathrm{in}}+n_{\mathrm{out}})$) are its cases.",
        r"Glorot for the logistic is a convention the derivation does not justify.",
        r"PyTorch's default \texttt{nn.Linear} (with its bias) makes a ReLU stack settle at "
        r"$q^* = 2/(5n)$ while the input's share decays like $6^{-l}$; SELU wants "
        r"\texttt{nonlinearity='linear'}, not the gain $3/4$.",
    )


def he_uniform_limit(fan_in: int) -> float:
    """a of he_uniform's U(−a, a) at this fan_in, from the catalogue's variance."""
    return math.sqrt(3.0 * gradmath.initializer("he_uniform").variance(fan_in, fan_in))


def glorot_forward_factor(fan_in: int, fan_out: int) -> float:
    """n_in·Var[W] of Glorot: the per-layer forward factor of a linear layer."""
    return fan_in * gradmath.initializer("glorot_normal").variance(fan_in, fan_out)


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    a = he_uniform_limit(512)
    f = glorot_forward_factor(256, 1024)
    q100 = torch_default_fixed_point(100)
    return (
        Exercise(
            "zero-init-symmetry",
            r"A two-layer network has all its weights, in both layers, initialised to the same "
            r"constant $c \ne 0$. Show that after any number of SGD steps all hidden units "
            r"still have identical incoming and outgoing weights.",
            r"By induction on the steps. If all hidden units have the same incoming and "
            r"outgoing weights, they have the same $h_i$ for every input, hence the same "
            r"$\delta_i = \varphi'(h_i)\sum_m W^{(2)}_{mi}\delta^{(2)}_m$; the gradients "
            r"$\delta_i x_j$ of the incoming weights and $\delta^{(2)}_m \varphi(h_i)$ of the "
            r"outgoing ones are then the same for every $i$, and so are the updates. The layer "
            r"behaves like a single unit forever; only random initialisation breaks the "
            r"symmetry.",
        ),
        Exercise(
            "he-uniform-limit",
            r"What is the limit $a$ of \texttt{he\_uniform} for a layer with "
            r"$n_{\mathrm{in}} = 512$?",
            rf"$\mathrm{{Var}}[W] = 2/512$ and $a = \sqrt{{3\cdot 2/512}} = \sqrt{{6/512}} "
            rf"\approx {_num(a, 4)}$.",
            a,
        ),
        Exercise(
            "glorot-forward-factor",
            r"A linear layer with $n_{\mathrm{in}} = 256$, $n_{\mathrm{out}} = 1024$ is Glorot "
            r"initialised. By what factor does it multiply the forward second moment?",
            rf"$n_{{\mathrm{{in}}}}\,\mathrm{{Var}}[W] = 2n_{{\mathrm{{in}}}}/(n_{{\mathrm{{in}}}}"
            rf"+ n_{{\mathrm{{out}}}}) = 512/1280 = {_num(f, 3)}$: the compromise shrinks the "
            r"forward signal of a widening layer (and grows the backward one by "
            r"$2n_{\mathrm{out}}/(n_{\mathrm{in}}+n_{\mathrm{out}}) = 1.6$).",
            f,
        ),
        Exercise(
            "torch-default-fixed-point",
            r"A deep ReLU stack of width $n = 100$ uses PyTorch's default \texttt{nn.Linear} "
            r"initialisation, biases included. Where does the pre-activation second moment "
            r"settle?",
            rf"$q^* = \tfrac16 q^* + \tfrac{{1}}{{300}}$ gives $q^* = 2/(5\cdot100) = "
            rf"{_num(q100, 4)}$.",
            q100,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
