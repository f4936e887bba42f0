"""Chapter 8: recurrent networks and backpropagation through time. The same matrix multiplies
the gradient at every step, so its largest singular value decides (Pascanu et al. 2013);
where gradient clipping comes from; LSTM gating in one paragraph.

Run alone: ``python derivations/08_recurrent.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import sympy

import gradmath.symbolic as sym
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "Recurrent networks: backpropagation through time"

OBJECTIVES = (
    r"Unroll a recurrent network and write the gradient across $T$ time steps as a product "
    r"of $T$ Jacobians that share one weight matrix.",
    r"State and apply the sufficient condition for vanishing and the necessary condition for "
    r"exploding gradients in terms of the largest singular value.",
    r"Explain why gradient clipping was introduced for recurrent networks, and how LSTM gating "
    r"keeps a path on which the gradient neither vanishes nor explodes.",
)

STEPS = 50
#: Three recurrent matrices: a contracting rotation, an expanding one, and a non-normal one
#: whose largest singular value exceeds one while its eigenvalues are 1/2.
MATRICES = {
    "contracting": [["0.54", "-0.72"], ["0.72", "0.54"]],
    "expanding": [["0.66", "-0.88"], ["0.88", "0.66"]],
    "non-normal": [["0.5", "1"], ["0", "0.5"]],
}


def _num(x: object, digits: int = 3) -> str:
    return latex.fmt_num(float(x), digits)  # type: ignore[arg-type]


def _matrix(key: str) -> str:
    # The entries as typed (decimals teach better than 27/50).
    rows = r" \\ ".join(" & ".join(x for x in row) for row in MATRICES[key])
    return rf"\begin{{pmatrix}}{rows}\end{{pmatrix}}"


def bounds(steps: int = STEPS) -> dict[str, sym.Derivation]:
    """The Pascanu et al. (2013) bound for each example matrix, tanh units."""
    return {k: sym.rnn_gradient_bound(w, act="tanh", steps=steps) for k, w in MATRICES.items()}


def chapter(quick: bool = False) -> str:
    b = bounds()
    con, exp_, nn = b["contracting"], b["expanding"], b["non-normal"]
    sig = sym.rnn_gradient_bound(MATRICES["non-normal"], act="sigmoid", steps=STEPS)
    return rf"""
A recurrent network applies the same layer at every time step,
\begin{{equation}}
  h_t = \varphi(a_t), \qquad a_t = W h_{{t-1}} + U x_t + b ,
\end{{equation}}
and is trained by unrolling it over the $T$ steps of a sequence and backpropagating through the
unrolled graph: \emph{{backpropagation through time}}. The unrolled network is a deep feed-forward
network of depth $T$ whose layers all share the matrix $W$, and the vanishing and exploding
gradient problems were first identified there \citep{{hochreiter1991,bengio1994}}.

\subsection{{The product of Jacobians}}
A loss $\ell_T$ at step $T$ depends on the state $h_k$ of an earlier step only through the
states in between, so
\begin{{equation}}\label{{eq:bptt}}
  \frac{{\partial\ell_T}}{{\partial h_k}} = \frac{{\partial\ell_T}}{{\partial h_T}}
  \prod_{{t=k+1}}^{{T}} \frac{{\partial h_t}}{{\partial h_{{t-1}}}},
  \qquad
  \frac{{\partial h_t}}{{\partial h_{{t-1}}}} = \operatorname{{diag}}\bigl(\varphi'(a_t)\bigr)\,W .
\end{{equation}}
This is the product of Chapter~\ref{{ch:01_problem}} with one difference that matters: the
\emph{{same}} $W$ appears in every factor, so its properties are raised to the power $T-k$ instead
of averaging out over independent layers.

\subsection{{The spectral condition}}
Let $\lambda_1 = \|W\|_2$ be the largest singular value of $W$ and $\gamma = \sup|\varphi'|$.
Each Jacobian in~\eqref{{eq:bptt}} has norm at most $\gamma\lambda_1$, so
\begin{{equation}}
  \Bigl\|\frac{{\partial h_T}}{{\partial h_k}}\Bigr\| \le (\gamma\lambda_1)^{{T-k}} .
\end{{equation}}
\citet[\S2.1]{{pascanu2013}} draw two conclusions. If
$\lambda_1 < 1/\gamma$ the gradient from $k$ steps back vanishes exponentially in $T - k$: this
is \emph{{sufficient}} for vanishing, and the network cannot learn long-range dependencies,
because their contribution to the gradient is swamped by short-range ones. And
$\lambda_1 > 1/\gamma$ is \emph{{necessary}} for exploding gradients, but not sufficient, since
$\varphi'$ can be small. For tanh $\gamma = 1$; for the logistic sigmoid $\gamma = 1/4$, so a
sigmoid RNN is guaranteed to vanish whenever $\lambda_1 < 4$.

Three $2\times2$ examples with tanh units, over $T - k = {STEPS}$ steps:
\begin{{itemize}}
  \item $W = {_matrix("contracting")}$,
a rotation scaled by $\lambda_1 = {_num(con.data["lambda1"])}$: the
        bound is ${_num(con.data["lambda1"])}^{{{STEPS}}} \approx {_num(con.result)}$, so gradients
        from fifty steps back are at least a hundred times weaker than recent ones.
  \item $W = {_matrix("expanding")}$,
the same rotation scaled by $\lambda_1 = {_num(exp_.data["lambda1"])}$:
        the necessary condition for explosion holds. A linear recurrence would grow the gradient
        by $\|W^{{{STEPS}}}\| \approx {_num(exp_.data["linear_norm"])}$; with tanh units it
        explodes only while they stay out of saturation.
  \item $W = {_matrix("non-normal")}$, whose eigenvalues are both $\tfrac12$
but whose largest singular
        value is $\lambda_1 = {latex.sympy_latex(nn.data["lambda1"])} \approx
        {_num(nn.data["lambda1"])}$. The bound, ${_num(nn.result)}$, says nothing useful; the
        exact product of the linear recurrence is $\|W^{{{STEPS}}}\| \approx
        {_num(nn.data["linear_norm"])}$. In the long run the spectral radius
        $\rho(W) = {_num(nn.data["spectral_radius"])}$ decides, because
        $\|W^T\|^{{1/T}} \to \rho(W)$; the singular value bounds what can happen over a few
        steps, where a non-normal matrix can amplify transiently. With sigmoid units the same
        matrix gives $\gamma\lambda_1 = {_num(sig.data["factor"])} < 1$ and guaranteed vanishing.
\end{{itemize}}

\subsection{{Where gradient clipping comes from}}
Exploding gradients in recurrent networks appear as \emph{{cliffs}} in the loss surface: narrow
regions where a small change of $W$ changes $\ell$ enormously, because it pushes
$\gamma\lambda_1$ above one across many steps. A gradient step taken on a cliff is huge and
throws the weights far away, undoing earlier progress. Pascanu et al.\ therefore proposed to
rescale the gradient whenever its norm exceeds a threshold $c$, $g \leftarrow c\,g/\|g\|$
\citep[Algorithm~1]{{pascanu2013}}: the step keeps the direction the gradient indicates but its
length is bounded, so a cliff costs one moderate step instead of the run
(Chapter~\ref{{ch:06_remedies}}). Clipping treats the symptom; it does nothing for vanishing
gradients.

\subsection{{Gating: the LSTM}}
The long short-term memory \citep{{hochreiter1997}} adds a \emph{{cell state}} updated additively,
$c_t = f_t \odot c_{{t-1}} + i_t \odot g_t$, where $g_t$ is a tanh candidate and the gates
$f_t, i_t \in (0,1)^n$ are sigmoid units of $h_{{t-1}}$ and $x_t$ (the forget gate $f_t$ is from
\citep{{gers2000}}). Along the cell state the Jacobian is
$\partial c_t/\partial c_{{t-1}} = \operatorname{{diag}}(f_t)$ plus terms through the gates, with no
weight matrix and no squashing derivative in the direct path: when the network sets $f_t \approx
1$ the gradient is carried across many steps almost unchanged, and the network itself decides,
unit by unit and step by step, how much to forget. Initialising the forget-gate bias to about
$1$ starts training in that regime \citep{{jozefowicz2015}}. The GRU uses the same idea with fewer
gates, and residual connections (Chapter~\ref{{ch:06_remedies}}) are its feed-forward analogue:
an additive path with identity Jacobian.
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"Backpropagation through time multiplies $T - k$ Jacobians "
        r"$\operatorname{diag}(\varphi'(a_t))\,W$ with the same $W$.",
        r"$\|\partial h_T/\partial h_k\| \le (\gamma\lambda_1)^{T-k}$: $\lambda_1 < 1/\gamma$ is "
        r"sufficient for vanishing, $\lambda_1 > 1/\gamma$ necessary for exploding "
        r"($\gamma = 1$ tanh, $1/4$ sigmoid); the spectral radius decides the long run.",
        r"Norm clipping was introduced for the cliffs of recurrent losses; LSTM gating provides "
        r"an additive path whose Jacobian is the forget gate.",
    )


def steps_to_vanish(lambda1: str, threshold: float) -> int:
    """The least T with (γλ₁)^T < threshold for a tanh RNN with W = λ₁·I (2×2)."""
    d = sym.rnn_gradient_bound([[lambda1, "0"], ["0", lambda1]], act="tanh", steps=1)
    factor, T = d.data["factor"], 1
    while not factor**T < threshold:
        T += 1
    return T


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    t = steps_to_vanish("0.9", 1e-3)
    sig = sym.derivative_bound("sigmoid").result
    cell = sym.rnn_gradient_bound([["0.99", "0"], ["0", "0.99"]], act="linear", steps=100)
    rnn = sym.rnn_gradient_bound([["0.9", "0"], ["0", "0.9"]], act="tanh", steps=100)
    return (
        Exercise(
            "rnn-steps-to-vanish",
            r"A tanh RNN has $\lambda_1 = 0.9$. After how many steps back is the bound on "
            r"$\|\partial h_T/\partial h_k\|$ below $10^{-3}$?",
            rf"$0.9^{{T-k}} < 10^{{-3}}$ for $T - k > 3\ln 10/\ln(10/9) \approx "
            rf"{3 * math.log(10) / math.log(10 / 9):.2f}$, so ${t}$ steps.",
            t,
        ),
        Exercise(
            "rnn-sigmoid-threshold",
            r"Below which largest singular value of $W$ is a logistic-sigmoid RNN guaranteed to "
            r"have vanishing gradients?",
            rf"$\gamma = \sup\sigma' = {sympy.latex(sig)}$, so $\lambda_1 < 1/\gamma = "
            rf"{sympy.latex(1 / sig)}$.",
            1 / sig,
        ),
        Exercise(
            "lstm-forget-gate",
            r"Compare the gradient carried 100 steps along an LSTM cell state with forget gates "
            r"$f_t = 0.99$ with the bound for a tanh RNN with $\lambda_1 = 0.9$.",
            rf"The cell path multiplies by $0.99^{{100}} \approx {_num(cell.result)}$; the RNN "
            rf"bound is $0.9^{{100}} \approx {_num(rnn.result)}$, some "
            rf"${_num(float(cell.result) / float(rnn.result), 2)}$ times smaller.",
            float(cell.result),
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
