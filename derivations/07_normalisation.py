"""Chapter 7: normalisation layers. Batch normalisation taught properly (statistics, γ and β,
placement, training versus inference, its backward pass), its gradient explosion at
initialisation, layer normalisation, and pre-LN residual blocks.

Run alone: ``python derivations/07_normalisation.py`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import sys

import gradmath.meanfield as mf
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "Normalisation layers"

OBJECTIVES = (
    r"Write down batch normalisation with its learnable scale and shift, where it sits in a "
    r"layer, and how it behaves differently in training and at inference.",
    r"Explain why the gradient through the batch statistics explodes with depth at "
    r"initialisation, and compute the per-layer rate.",
    r"Contrast layer normalisation with batch normalisation, and explain why pre-LN residual "
    r"blocks keep gradients bounded.",
)

BATCHES = (4, 16, 64, None)
BN_DEPTH = 50
PRE_LN_DEPTH = 48


def _num(x: float, digits: int = 4) -> str:
    return latex.fmt_num(float(x), digits)


def _batchnorm_table() -> str:
    rows = []
    for act in ("relu", "tanh"):
        cells = [f"${mf.gradient_growth(act, b):.4f}$" for b in BATCHES]  # same decimals
        rows.append([latex.escape(act), *cells])
    header = ["activation", *(f"$B={b}$" if b else r"$B\to\infty$" for b in BATCHES)]
    return latex.table(
        header,
        rows,
        caption=r"Per-layer growth factor of the squared gradient in a deep batch-normalised "
        r"network at initialisation \citep{yang2019}, by batch size $B$.",
        label="tab:bn-growth",
    )


def pre_ln_profile(depth: int, alpha: float = 1.0, sigma_w2: float = 2.0) -> tuple[float, float]:
    """(q^L, q̃^0/q̃^L) of a pre-LN ReLU residual stack x + α·W·relu(LN(x)), at infinite width.

    LN hands the branch unit second moment, so every block adds α²σ_w²E[relu(z)²] to q and
    multiplies the gradient by 1 + α²σ_w²E[relu'(z)²]/q (the LN Jacobian divides by √q);
    input q⁰ = 1, no bias (Xiong et al. 2020, §3; theory.md "LayerNorm at infinite width").
    """
    add = alpha**2 * sigma_w2 * float(mf.mean_phi2("relu", 1.0))
    back = alpha**2 * sigma_w2 * float(mf.mean_dphi2("relu", 1.0))
    qs = [1.0]
    for _ in range(depth):
        qs.append(qs[-1] + add)
    growth = 1.0
    for q in qs[:-1]:
        growth *= 1.0 + back / q
    return qs[-1], growth


def chapter(quick: bool = False) -> str:
    relu_inf = mf.gradient_growth("relu", None)
    relu64 = mf.gradient_growth("relu", 64)
    q_ln, g_ln = pre_ln_profile(PRE_LN_DEPTH)
    return rf"""
Normalisation layers fix the scale of the forward signal by construction, whatever the weights
do. They are the most widely used remedy in practice, and they change the gradient in ways that
are worth understanding precisely.

\subsection{{Batch normalisation}}
Batch normalisation \citep{{ioffe2015}} standardises every unit over the examples of a mini-batch.
For one unit with pre-activations $h_1, \dots, h_B$ on a batch of $B$ examples it computes
\begin{{align}}
  \mu_B &= \frac1B\sum_{{b=1}}^B h_b, \qquad
  \sigma_B^2 = \frac1B\sum_{{b=1}}^B (h_b - \mu_B)^2, \\
  \hat h_b &= \frac{{h_b - \mu_B}}{{\sqrt{{\sigma_B^2 + \epsilon}}}}, \qquad
  y_b = \gamma\,\hat h_b + \beta ,
\end{{align}}
with a small $\epsilon$ (e.g.\ $10^{{-5}}$) against division by zero. The normalised $\hat h$ has
mean $0$ and variance $1$ over the batch; the learnable scale $\gamma$ and shift $\beta$ (one pair
per unit, initialised to $1$ and $0$) give the layer back the freedom to choose any mean and
variance, so normalisation costs no expressive power. Both steps matter: centring removes the
mean that, for example, positive activations feed into the next layer
(Chapter~\ref{{ch:02_sigmoid_bound}}), and scaling removes the dependence on the weights' size.

\paragraph{{Placement.}} The original recipe normalises the pre-activation, between the linear
map and the nonlinearity: $x^l = \varphi\bigl(\mathrm{{BN}}(W^l x^{{l-1}})\bigr)$. The bias $b^l$ is
then redundant (the mean subtraction removes it and $\beta$ replaces it) and is usually dropped.
Normalising after the nonlinearity is also used; the analysis below is for the original
placement.

\paragraph{{Training versus inference.}} In training, $\mu_B$ and $\sigma_B^2$ are statistics
of the current batch, so each example's output depends on the other examples in its batch, and
the statistics are noisy when $B$ is small. At inference the layer uses running averages of
$\mu_B$ and $\sigma_B^2$ accumulated during training (an exponential moving average), and becomes
a fixed affine map per unit. Forgetting to switch (PyTorch's \texttt{{model.eval()}}, Keras'
\texttt{{training=False}}) is a classic bug: predictions then change with the batch they are
computed in.

\paragraph{{The backward pass.}} Because $\mu_B$ and $\sigma_B$ depend on every $h_b$, the
gradient does not simply divide by $\sigma_B$. With $g_b = \partial\ell/\partial y_b$,
\begin{{equation}}\label{{eq:bn-backward}}
  \frac{{\partial\ell}}{{\partial h_b}} = \frac{{\gamma}}{{\sqrt{{\sigma_B^2+\epsilon}}}}
  \Bigl( g_b - \frac1B\sum_{{c}} g_c - \hat h_b\,\frac1B\sum_{{c}} g_c\,\hat h_c \Bigr):
\end{{equation}}
the batch-normalised unit passes back the part of the gradient orthogonal to the constant
vector and to $\hat h$, rescaled by $\gamma/\sigma_B$. A layer whose weights are multiplied by a
constant sees the same forward pass and a gradient divided by that constant: batch norm makes
the network invariant to the weights' scale.

\subsection{{Gradient explosion at initialisation}}
Batch normalisation pins the forward second moment to one in every layer, so one might expect
well-behaved gradients. The surprise \citep{{yang2019}} is the opposite: in a deep batch-normalised
network at initialisation the gradient explodes geometrically towards the input, at a rate per
layer that depends on the activation and on the batch size (Table~\ref{{tab:bn-growth}},
Figure~\ref{{fig:batchnorm_explosion}}). For ReLU in the large-batch limit the squared gradient
grows by $\pi/(\pi-1) \approx {_num(relu_inf)}$ per layer, and by ${_num(relu64)}$ at $B = 64$; over
{BN_DEPTH} layers that is a factor ${_num(relu64 ** (BN_DEPTH - 1), 3)}$.
The explosion comes from the
batch statistics: the backward pass~\eqref{{eq:bn-backward}} of every unit involves the whole
batch, and composing these Jacobians with random weights multiplies the squared gradient by a
factor above one in every layer \citep{{yang2019}}. Smaller batches make it worse, because the
batch statistics then depend more strongly on each example.

Batch normalisation still helps training, by allowing larger learning rates and by making the
loss less sensitive to the scale of the weights, and very deep batch-normalised networks in
practice also have residual connections, whose identity path limits the explosion.
It does not, by itself, remove exploding gradients at initialisation.

{_batchnorm_table()}
\gradmathfigure{{batchnorm_explosion}}

\subsection{{Layer normalisation}}
Layer normalisation \citep{{ba2016}} normalises each example over its own units instead of over
the batch: for the $n$ pre-activations $h_1, \dots, h_n$ of one example,
$\mu = \frac1n\sum_i h_i$, $\sigma^2 = \frac1n\sum_i(h_i-\mu)^2$, and
$y_i = \gamma_i (h_i-\mu)/\sqrt{{\sigma^2+\epsilon}} + \beta_i$. No example depends on another,
so training and inference compute the same thing, the batch size does not matter, and it works
unchanged in recurrent networks and transformers, where it is the standard choice. At infinite
width with zero-mean pre-activations it simply rescales each example to second moment one, and
its backward pass divides the gradient by the same $\sqrt{{q}}$ it divided the signal by.

\subsection{{Pre-LN residual blocks}}
Transformers combine layer normalisation with residual connections in one of two ways. The
original \emph{{post-LN}} block normalises after the addition, $x^{{l+1}} = \mathrm{{LN}}(x^l +
F(x^l))$, so every gradient passes through all the normalisations on the way down; at
initialisation its gradients near the output are large, and it needs a learning-rate warm-up to
train \citep{{xiong2020}}. The \emph{{pre-LN}} block normalises only the branch's input,
\begin{{equation}}
  x^{{l+1}} = x^l + \alpha\,F\bigl(\mathrm{{LN}}(x^l)\bigr),
\end{{equation}}
and leaves the identity path free. Because the branch always sees unit second moment, each block
adds the same amount to the forward second moment, $q^{{l+1}} = q^l + \alpha^2\sigma_w^2\,
\mathbb{{E}}[\varphi(z)^2]$ with $z$ standard normal: linear growth instead of geometric. Backward,
each block multiplies the gradient's second moment by $1 + \alpha^2\sigma_w^2\,
\mathbb{{E}}[\varphi'(z)^2]/q^l$, a factor that approaches one as $q^l$ grows, so the product grows
only polynomially with depth. For a ReLU branch with He weights and $\alpha = 1$, after
{PRE_LN_DEPTH} blocks $q^{{{PRE_LN_DEPTH}}} = {_num(q_ln)}$
and the gradient's second moment has grown by
${_num(g_ln)}$ from top to bottom, where a plain ReLU residual stack with the same branch would
double it in every block.
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"Batch norm: $y = \gamma(h-\mu_B)/\sqrt{\sigma_B^2+\epsilon} + \beta$ per unit over the "
        r"batch; running averages replace the batch statistics at inference.",
        rf"At initialisation it pins the forward pass but the gradient explodes geometrically, "
        rf"by $\pi/(\pi-1) \approx {_num(mf.gradient_growth('relu', None))}$ per layer for ReLU "
        r"with large batches, more with small ones.",
        r"Layer norm normalises each example over its units: no batch dependence, same at "
        r"training and inference.",
        r"Pre-LN residual blocks grow $q^l$ linearly and the gradient only polynomially with "
        r"depth.",
    )


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    rate = mf.gradient_growth("relu", None)
    over20 = rate**20
    q_ln, g_ln = pre_ln_profile(8, alpha=0.5)
    return (
        Exercise(
            "bn-growth-20-layers",
            r"A deep batch-normalised ReLU network is trained with large batches. By what factor "
            r"is the squared gradient at layer~1 larger than at layer~21, at initialisation?",
            rf"Twenty layers of $\pi/(\pi-1) \approx {_num(rate)}$: "
            rf"$(\pi/(\pi-1))^{{20}} \approx {_num(over20, 4)}$.",
            over20,
        ),
        Exercise(
            "bn-eval-bug",
            r"A batch-normalised classifier is evaluated one example at a time and gives a "
            r"different prediction for an example depending on which other examples were in the "
            r"previous call. What is wrong?",
            r"It is evaluated in training mode: it normalises with statistics of the current "
            r"batch (and of a batch of one, where $\sigma_B = 0$). Switch to inference mode "
            r"(\texttt{model.eval()}) so the running averages are used.",
        ),
        Exercise(
            "pre-ln-growth",
            r"A pre-LN stack of 8 blocks with a ReLU branch, He weights and $\alpha = 0.5$ starts "
            r"from $q^0 = 1$. Compute $q^8$ and the growth of the gradient's second moment from "
            r"block 8 down to the input.",
            rf"Each block adds $\alpha^2\cdot2\cdot\tfrac12 = 0.25$, so $q^8 = 1 + 8\cdot0.25 = "
            rf"{_num(q_ln)}$. Backward, block $l$ multiplies by $1 + 0.25/q^l$ with "
            rf"$q^l = 1 + 0.25\,l$: the product $\prod_{{l=0}}^{{7}}(q^{{l+1}}/q^l) = q^8/q^0 = "
            rf"{_num(g_ln)}$ telescopes.",
            g_ln,
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
