"""Chapter 9: in practice. A training experiment with and without gradient clipping (the Keras
``SGD(clipvalue=0.5)`` recipe) with its data, learning rate, batch size and epochs stated; what
a final loss of ln 3 means; L2 regularisation and weight decay; and the practitioner's
checklist.

Run alone: ``python derivations/09_practice.py [--quick]`` prints the chapter's LaTeX body.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import gradmath
import gradmath.meanfield as mf
from gradmath.numeric.train import TrainResult, chance_loss, make_task, train
from gradmath.render import latex
from gradmath.render.notes import Exercise

TITLE = "In practice: training runs, weight decay, and a checklist"
#: The last chapter, after any later-numbered ones: it sums up the course.
BACK_MATTER = True

OBJECTIVES = (
    r"Read a training run for the signatures of vanishing and exploding gradients, including "
    r"a loss stuck at the chance level $\ln K$.",
    r"Reproduce the classic clipping experiment and explain why clipping by value or by norm "
    r"rescues a run that diverges without it.",
    r"Explain what L2 regularisation and weight decay do to the weights and to $\chi_1$, and "
    r"why they do not cure an exploding initialisation.",
    r"Work through a checklist, in order, when gradients vanish or explode.",
)

#: The task and the network of every run (inputs, not results).
N_SAMPLES, N_FEATURES, N_CLASSES = 128, 4, 3
WIDTHS = (N_FEATURES, *(32,) * 8, N_CLASSES)
L2 = 0.01
RUNS = {
    # key: (label, activation, initializer, learning rate, clip, l2)
    "sigmoid": ("sigmoid, Glorot", "sigmoid", "glorot_uniform", 1.0, None, 0.0),
    "relu": ("ReLU, He", "relu", "he_normal", 0.1, None, 0.0),
    "exploding": (r"ReLU, $\sigma_w^2=4$", "relu", 4.0, 0.1, None, 0.0),
    "clipvalue": (r"\quad + \texttt{clipvalue=0.5}", "relu", 4.0, 0.1, {"value": 0.5}, 0.0),
    "clipnorm": (r"\quad + \texttt{clipnorm=1}", "relu", 4.0, 0.1, {"norm": 1.0}, 0.0),
    "l2": (rf"\quad + L2, $\lambda={L2:g}$", "relu", 4.0, 0.1, None, L2),
    "relu-l2": (rf"ReLU, He, L2, $\lambda={L2:g}$", "relu", "he_normal", 0.1, None, L2),
}  # fmt: skip


def epochs(quick: bool) -> int:
    return 30 if quick else 60


def task() -> tuple[np.ndarray, np.ndarray]:
    return make_task(N_SAMPLES, N_FEATURES, N_CLASSES, seed=0)


def run_all(quick: bool = False) -> dict[str, TrainResult]:
    """Every run of the chapter: full-batch SGD, seed 0, on :func:`task`."""
    data = task()
    out = {}
    for key, (_, act, init, lr, clip, l2) in RUNS.items():
        weights = gradmath.initializer("normal", sigma_w2=init) if isinstance(init, float) else init
        net = gradmath.MLP(WIDTHS, activation=act, init=weights)
        out[key] = train(net, data=data, epochs=epochs(quick), lr=lr, seed=0, clip=clip, l2=l2)
    return out


def relu_correlation_slope(sigma_w2: float, eps: float = 1e-8) -> float:
    """The slope of ReLU's correlation map at c = 1, (1 − C(1 − ε))/ε: 1 for every σ_w²."""
    c = float(np.asarray(mf.correlation_map("relu", np.array([1.0 - eps]), sigma_w2, 0.0))[0])
    return (1.0 - c) / eps


def first_clean(run: TrainResult) -> int:
    """The number of leading steps in which clipping changed the gradient."""
    clean = np.flatnonzero(np.asarray(run.clipped) == 0)
    return int(clean[0]) if clean.size else len(run.clipped)


def _training_table(runs: dict[str, TrainResult]) -> str:
    rows = []
    for key, (label, *_rest) in RUNS.items():
        run = runs[key]
        diag = gradmath.diagnose(run)
        if run.divergence is not None:
            end = f"diverged (epoch {run.divergence.epoch})"
            acc = "--"
        else:
            end = f"${latex.fmt_num(float(run.loss[-1]), 3)}$"
            acc = f"${100 * float(run.accuracy[-1]):.0f}\\,\\%$"
        first, last = (f"${latex.fmt_num(float(c), 2)}$" for c in run.weight_change[-1][[0, -1]])
        start = f"${latex.fmt_num(float(run.loss[0]), 3)}$"
        rows.append([label, start, end, acc, first, last, diag.verdict])
    return latex.table(
        ["network", "first loss", "last loss", "accuracy", r"$\Delta W^1$", r"$\Delta W^L$",
         "diagnosis"],
        rows,
        align="lrrrrrl",
        caption=r"The training runs: loss before training and after the last epoch, training "
        r"accuracy, relative weight change $\|W^l_T - W^l_0\|/\|W^l_0\|$ of the first and last "
        r"layer, and the verdict of the per-layer gradient-norm diagnosis.",
        label="tab:training",
        size=r"\footnotesize",
    )  # fmt: skip


def chapter(quick: bool = False) -> str:
    runs = run_all(quick)
    _, y = task()
    chance = chance_loss(y)
    sig = runs["sigmoid"]
    sig_change = sig.weight_change[-1]
    n_epochs = epochs(quick)
    depth = len(WIDTHS) - 1
    chi4 = float(mf.chi1("relu", 4.0, 0.0))
    slope = relu_correlation_slope(4.0)
    counts = np.bincount(y)
    l2_run, relu, relu_l2 = runs["l2"], runs["relu"], runs["relu-l2"]
    eta, steps = 0.1, 1000
    shrink = (1 - eta * L2) ** steps
    chi_decayed = float(mf.chi1("relu", 2.0 * shrink**2, 0.0))
    return rf"""
The previous chapters predicted, at initialisation, what happens to gradients. This chapter
trains networks and reads the symptoms, then collects the advice of the whole course into a
checklist.

\subsection{{The experiment}}
\paragraph{{Set-up.}} The data are {N_SAMPLES} points in $\mathbb{{R}}^{{{N_FEATURES}}}$ from
{N_CLASSES} Gaussian blobs (classes of {", ".join(str(int(c)) for c in counts)} points), with every
feature standardised to mean 0 and variance 1. Every network has {depth} layers: widths
{", ".join(str(w) for w in WIDTHS)}, a softmax over the {N_CLASSES} outputs and the mean
cross-entropy loss. Training is plain SGD on the full batch of {N_SAMPLES} examples (one step per
epoch) for {n_epochs} epochs, with learning rate $\eta = 1$ for the sigmoid network and
$\eta = 0.1$ for the others, seed 0. The clipped runs are what Keras calls
\texttt{{SGD(learning\_rate=0.1, clipvalue=0.5)}} and \texttt{{SGD(learning\_rate=0.1,
clipnorm=1.0)}}: every gradient component clipped to $[-0.5, 0.5]$, or every weight tensor's
gradient rescaled to norm at most $1$.

\paragraph{{What a loss value means.}} A classifier that ignores its input does best by
predicting the class frequencies, and its cross-entropy is then the entropy of the labels:
$\ln 3 \approx {latex.fmt_num(math.log(3), 5)}$ for three balanced classes, here
${latex.fmt_num(chance, 5)}$ because the classes have {", ".join(str(int(c)) for c in counts)}
points. That is the \emph{{chance level}}. A network whose loss starts near it has small logits
(an unbiased guess); one that starts far above it is confidently wrong; and one that ends at it
has learnt nothing about the inputs.

{_training_table(runs)}

\paragraph{{Vanishing.}} The sigmoid network ends at loss
${latex.fmt_num(float(sig.loss[-1]), 6)}$,
within ${latex.fmt_num(abs(float(sig.loss[-1]) - chance), 1)}$
of the chance level, with training accuracy ${100 * float(sig.accuracy[-1]):.0f}\,\%$: it has
learnt the class frequencies and nothing else. Its first layer's weights moved
${latex.fmt_num(float(sig_change[0]), 2)}$ of their size while the last layer's moved
${latex.fmt_num(float(sig_change[-1]), 2)}$: the gradient that reaches the lower layers is too
small to move them, as the $\chi_1 = {latex.fmt_num(float(mf.chi1("sigmoid", 1.0, 0.0)), 3)}$
per layer of
Chapter~\ref{{ch:02_sigmoid_bound}} predicts.
ReLU with He initialisation trains every layer and reaches loss
${latex.fmt_num(float(relu.loss[-1]), 3)}$.

\paragraph{{Exploding.}} ReLU with $\sigma_w^2 = 4$ multiplies the second moment of both the
signal and the gradient by $\chi_1 = \sigma_w^2/2 = {latex.fmt_num(chi4)}$ per layer. This is
plain geometric growth, not a chaotic phase: ReLU has no chaotic phase, because its correlation
map has slope ${latex.fmt_num(slope, 4)}$ at $c = 1$ for every $\sigma_w^2$ (the normalised map
does not depend on the weight scale), so nearby inputs are never pushed apart. The network
starts confidently wrong (loss ${latex.fmt_num(float(runs["exploding"].loss[0]), 3)}$, far above
chance), and its first steps are so large that the loss overflows in epoch
{runs["exploding"].divergence.epoch if runs["exploding"].divergence else "--"}. Clipping by value
at $0.5$ or by norm at $1$ bounds every step, and the same network, learning rate and data then
train to a loss of ${latex.fmt_num(float(runs["clipvalue"].loss[-1]), 3)}$ and
${latex.fmt_num(float(runs["clipnorm"].loss[-1]), 3)}$. Clipping did not change the network: its
gradients are still huge at the start (clipping changed the gradient in each of the first
{first_clean(runs["clipvalue"])} steps with \texttt{{clipvalue}} and the first
{first_clean(runs["clipnorm"])} with \texttt{{clipnorm}}, and in
${100 * float(np.mean(runs["clipvalue"].clipped)):.0f}\,\%$ and
${100 * float(np.mean(runs["clipnorm"].clipped)):.0f}\,\%$ of all steps); it only stopped
single steps from throwing the weights away while training brought them to a region where the
gradients are moderate. Figure~\ref{{fig:training_remedies}} shows the curves.
\gradmathfigure{{training_remedies}}

\subsection{{L2 regularisation and weight decay}}
L2 regularisation adds $\tfrac{{\lambda}}{{2}}\sum_l\|W^l\|_F^2$ to the loss, so the gradient of
every weight gains a term $\lambda W^l$ and an SGD step becomes
\begin{{equation}}
  W^l \leftarrow (1 - \eta\lambda)\,W^l - \eta\,\frac{{\partial\ell}}{{\partial W^l}} :
\end{{equation}}
the weights \emph{{decay}} geometrically towards zero, pulled back only by the data gradient
\citep{{krogh1992}}. (For SGD the two names describe the same update; for adaptive optimisers
such as Adam they differ, and \emph{{decoupled}} weight decay applies the factor
$(1-\eta\lambda)$ directly \citep{{loshchilov2019}}.)

Its effect on gradients follows from Chapter~\ref{{ch:05_mean_field}}: shrinking every weight by a
factor $s$ multiplies $\sigma_w^2$ by $s^2$. With $\eta = {eta:g}$ and $\lambda = {L2:g}$, a weight
that receives no data gradient for {steps} steps shrinks by $(1-\eta\lambda)^{{{steps}}} \approx
{latex.fmt_num(shrink, 3)}$, and a ReLU network that started at He's $\chi_1 = 1$ would then sit at
$\chi_1 \approx {latex.fmt_num(chi_decayed, 3)}$,
in the vanishing regime. Weight decay keeps weights
from growing during long training, which protects against the slow drift into explosion; but it
acts slowly, one factor $(1-\eta\lambda)$ per step, and cannot cure an exploding initialisation.
The run with $\lambda = {L2:g}$ in Table~\ref{{tab:training}} shows it: the $\sigma_w^2 = 4$ network
diverges {f"in epoch {l2_run.divergence.epoch}" if l2_run.divergence else "all the same"}, exactly
as without it. On the healthy ReLU network the same $\lambda$ costs little (final loss
${latex.fmt_num(float(relu_l2.loss[-1]), 3)}$ against ${latex.fmt_num(float(relu.loss[-1]), 3)}$);
its purpose there is regularisation, not gradient control.

\subsection{{A practitioner's checklist}}
\paragraph{{My gradients vanish: check these, in this order.}}
\begin{{enumerate}}
  \item \textbf{{Measure first.}} Log the norm of every layer's gradient and its relative update
        $\|\Delta W^l\|/\|W^l\|$ on a logarithmic axis. Compare absolute values, not only
        the ratio of the first layer's to the last's (Chapter~\ref{{ch:06_remedies}}).
  \item \textbf{{Data and loss.}} Inputs standardised? Labels right? Does the loss start near the
        chance level $\ln K$ and stay there? A loss stuck at $\ln K$ means nothing is learnt.
  \item \textbf{{Activations.}} Replace sigmoid in hidden layers by ReLU, GELU or tanh; check the
        fraction of dead ReLU units, and use a leaky variant or a smaller learning rate if it is
        large (Chapters~\ref{{ch:02_sigmoid_bound}} and~\ref{{ch:06_remedies}}).
  \item \textbf{{Initialisation.}} Variance matched to the activation (He for ReLU, LeCun or
        Glorot for tanh and SELU), biases zero, framework defaults checked (PyTorch's
        \texttt{{nn.Linear}} default is a third of LeCun's variance); aim for $\chi_1 \approx 1$
        (Chapters~\ref{{ch:04_initialisation}} and~\ref{{ch:05_mean_field}}).
  \item \textbf{{Depth.}} Deeper than about $6\,\xi_c$? Add residual connections with scaled
        branches, or normalisation (batch norm, or pre-LN layer norm)
        (Chapters~\ref{{ch:06_remedies}} and~\ref{{ch:07_normalisation}}).
  \item \textbf{{Precision.}} In float16, use loss scaling; keep float32 master weights so that
        small updates are not rounded away (Chapter~\ref{{ch:02_sigmoid_bound}}).
  \item \textbf{{Recurrence.}} Long sequences: LSTM or GRU gating, or shorter truncated BPTT
        (Chapter~\ref{{ch:08_recurrent}}).
\end{{enumerate}}
\paragraph{{My gradients explode: check these, in this order.}}
\begin{{enumerate}}
  \item \textbf{{Measure first.}} Find the first step and the first layer where a gradient norm
        jumps; check for \texttt{{inf}}/\texttt{{NaN}} in the inputs and the loss.
  \item \textbf{{Learning rate.}} Lower it, or add warm-up; a single overshooting step can kill
        ReLU units (Chapter~\ref{{ch:03_exploding}}).
  \item \textbf{{Scale of inputs and targets.}} Unscaled features or regression targets give
        huge initial gradients; standardise them.
  \item \textbf{{Initialisation.}} $\chi_1 > 1$? ReLU with $\sigma_w^2 > 2$, or tanh deep in the
        chaotic phase; use the critical variance.
  \item \textbf{{Clip.}} Clip by (global) norm at a threshold a little above typical gradient
        norms; it bounds the damage while the cause is fixed (Chapter~\ref{{ch:06_remedies}}).
  \item \textbf{{Architecture.}} Very deep batch-normalised networks explode at initialisation
        without residual connections (Chapter~\ref{{ch:07_normalisation}}); unscaled residual
        branches grow the signal with depth.
  \item \textbf{{Recurrence and precision.}} A recurrent matrix with $\lambda_1 > 1/\gamma$
        (Chapter~\ref{{ch:08_recurrent}}); in float16, an overflow that dynamic loss scaling
        should catch.
\end{{enumerate}}
"""


def summary(quick: bool = False) -> tuple[str, ...]:
    return (
        r"A loss stuck at the chance level (the label entropy, $\ln K$ for $K$ balanced "
        r"classes) with frozen lower layers is the signature of vanishing gradients.",
        r"A network that starts far above chance and overflows within a few steps explodes; "
        r"clipping by value or by norm bounds each step and lets it train.",
        r"L2 regularisation / weight decay multiplies the weights by $1-\eta\lambda$ per step: "
        r"it limits slow growth and lowers $\chi_1$ over time, but does not cure an exploding "
        r"initialisation.",
        r"When gradients misbehave: measure per layer, then check data, activations, "
        r"initialisation, depth, precision, recurrence, in that order.",
    )


def decayed_chi1(eta: float, lam: float, steps: int) -> float:
    """χ₁ of a He-initialised ReLU net after ``steps`` steps of pure weight decay."""
    s = (1.0 - eta * lam) ** steps
    return float(mf.chi1("relu", 2.0 * s * s, 0.0))


def exercises(quick: bool = False) -> tuple[Exercise, ...]:
    chance10 = chance_loss(np.arange(1000) % 10)
    chi = decayed_chi1(0.01, 5e-4, 2000)
    return (
        Exercise(
            "chance-loss-ten-classes",
            r"A 10-class classifier trained on balanced data reports a training loss of "
            r"$2.30$ after many epochs. What does that tell you?",
            rf"The chance level is $\ln 10 \approx {latex.fmt_num(chance10, 5)}$: the network "
            r"predicts the uniform distribution and has learnt nothing about the inputs. Check "
            r"the per-layer gradient norms for vanishing gradients (or the data pipeline for "
            r"shuffled labels).",
            chance10,
        ),
        Exercise(
            "weight-decay-chi",
            r"A He-initialised ReLU network is trained with SGD, $\eta = 0.01$ and weight decay "
            r"$\lambda = 5\times10^{-4}$. If the data gradient were negligible for 2000 steps, "
            r"what would $\chi_1$ become?",
            r"The weights shrink by $s = (1 - 5\times10^{-6})^{2000}$, $\sigma_w^2$ by $s^2$, and "
            rf"$\chi_1 = \sigma_w^2/2 = s^2 \approx {latex.fmt_num(chi, 4)}$: a small drift "
            r"towards the ordered phase, which the data gradient normally counteracts.",
            chi,
        ),
        Exercise(
            "relu-no-chaos",
            r"Show that the correlation map of a ReLU network without bias does not depend on "
            r"$\sigma_w^2$, and conclude that ReLU has no chaotic phase.",
            r"With zero bias $q^{l+1} = \sigma_w^2 q^l/2$ and "
            r"$\mathbb{E}[\mathrm{relu}(u_1)\mathrm{relu}(u_2)] = \frac{q}{2\pi}(\sin\theta + "
            r"(\pi - \theta)\cos\theta)$ \citep{cho2009}, so $c^{l+1} = \frac1\pi(\sin\theta + "
            r"(\pi-\theta)\cos\theta)$ with $\theta = \arccos c^l$: $\sigma_w^2$ cancels. Its "
            r"slope at $c = 1$ is $(\pi - \theta)/\pi \to 1$, so nearby inputs are neither "
            r"pulled together nor pushed apart at first order, whatever $\sigma_w^2$; only the "
            r"overall scale $\chi_1 = \sigma_w^2/2$ changes.",
        ),
    )


if __name__ == "__main__":
    print(chapter(quick="--quick" in sys.argv[1:]))
