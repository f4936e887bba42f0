"""Train an MLP with plain SGD on a synthetic task and record how each layer learns.

The experiment behind the classic pictures of vanishing and exploding gradients: a deep
sigmoid net whose lower layers barely move while the top learns (Glorot & Bengio 2010, §4;
Bengio, Simard & Frasconi 1994), and a net in the exploding regime that diverges unless its
gradients are clipped (Pascanu, Mikolov & Bengio 2013, §3.2 and Algorithm 1).

Model and loss. The network is the :class:`~gradmath.MLP` as everywhere in gradmath; its
last pre-activation h^L (shape (batch, n_L)) are the logits of an n_L-class softmax, so the
last layer's activation is not used. The loss of a batch of B examples is the mean softmax
cross-entropy

    ℓ = (1/B) Σ_b [ logsumexp(h^L_b) − h^L_{b, y_b} ],    ∂ℓ/∂h^L_b = (softmax(h^L_b) − e_{y_b})/B,

with logsumexp(a) = max(a) + log Σ exp(a − max(a)) so that no logit overflows. ``l2`` adds
the penalty (λ/2) Σ_l ‖W^l‖_F² to the objective (weights only, not biases: Keras'
``kernel_regularizer=L2(λ/2)``), so its gradient λW^l is part of what is clipped. SGD:
θ ← θ − η·clip(∇θ). Forward and backward passes are :mod:`gradmath.numeric.network`'s.

What is recorded (index 0 of the per-epoch arrays is the initialisation):

- ``loss``, ``accuracy``: on the whole training set after each epoch (shape (E + 1,));
- ``grad_norms``: ‖∂ℓ/∂W^l‖_F of the data loss before clipping, the root mean square over
  the steps of each epoch (shape (E, L)); ``grad_rms`` divides by √(n_l n_{l−1}) to give a
  per-entry size that layers of different shapes can be compared by;
- ``weight_change``: ‖W^l_e − W^l_0‖_F / ‖W^l_0‖_F, since initialisation (shape (E + 1, L));
- ``step_change``: ‖ΔW^l‖_F / ‖W^l‖_F of one update, averaged over each epoch's steps;
- ``clipped``: the fraction of each epoch's steps in which clipping changed the gradient;
- ``divergence``: ``None``, or where the loss or a gradient first became non-finite, or the
  loss first exceeded :data:`DIVERGED_LOSS_RATIO` times the larger of the initial loss and the
  chance loss ln K (the gradient of softmax cross-entropy is bounded, so with a huge step the
  weights and the loss can grow to 1e299 and stay finite: a blow-up all the same). Training
  stops there; the arrays hold the epochs completed before it, all finite.

Everything is seeded: one ``numpy.random.Generator(seed)`` samples the weights and then
shuffles the mini-batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from gradmath.clipping import ClipSpec, apply_clip, scaled_norm, validate_clip
from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.mlp import MLP

__all__ = [
    "DIVERGED_LOSS_RATIO",
    "Divergence",
    "TrainResult",
    "chance_loss",
    "make_task",
    "softmax_cross_entropy",
    "train",
]

#: A loss this many times the larger of the initial and the chance loss ends a run as diverged.
DIVERGED_LOSS_RATIO = 1e6

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ArrayLikeInt = IntArray | Sequence[int]
Progress = Callable[[int, float], object]


# --------------------------------------------------------------------------- the task


def make_task(
    n_samples: int = 512,
    n_features: int = 2,
    n_classes: int = 3,
    *,
    seed: int,
    kind: Literal["blobs", "shells"] = "blobs",
    noise: float = 0.5,
) -> tuple[FloatArray, IntArray]:
    """A small seeded classification task: inputs ``x`` (n_samples, n_features), labels ``y``.

    ``kind="blobs"``: class k is N(μ_k, noise²·I) with centres μ_k drawn on the sphere of
    radius 2 (random directions), so a linear classifier does well when the centres are
    apart. ``kind="shells"``: class k lies near the sphere of radius k + 1 (a random
    direction times (k + 1) + noise·N(0, 1)); no linear classifier can separate it, a
    shallow net can. Classes are balanced (sizes differ by at most one). The features are
    standardised to mean 0, variance 1 per coordinate, so E[(x^0_j)²] = 1 as the theory's
    ``input_q = 1``.

    >>> x, y = make_task(6, 2, 3, seed=0)
    >>> x.shape, sorted(y.tolist())
    ((6, 2), [0, 0, 1, 1, 2, 2])
    """
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)
    n_features = check_positive_int("n_features", n_features)
    n_classes = check_positive_int("n_classes", n_classes, minimum=2)
    if n_samples < n_classes:
        raise GradmathError(f"`n_samples` (={n_samples}) must be >= `n_classes` ({n_classes}).")
    if kind not in ("blobs", "shells"):
        raise GradmathError(f"`kind` (={kind!r}) must be 'blobs' or 'shells'.")
    s = check_positive("noise", noise, allow_zero=True)
    rng = np.random.default_rng(check_seed(seed))
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    rng.shuffle(y)
    # The features are standardised below, which no positive rescaling changes: dividing by
    # max(1, noise) first keeps noise up to 1e308 from overflowing (noise ≤ 1: no change).
    k = max(1.0, s)
    if kind == "blobs":
        centres = rng.standard_normal((n_classes, n_features))
        centres *= 2.0 / np.linalg.norm(centres, axis=1, keepdims=True)
        x = centres[y] / k + (s / k) * rng.standard_normal((n_samples, n_features))
    else:
        u = rng.standard_normal((n_samples, n_features))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        radius = (y + 1.0) / k + (s / k) * rng.standard_normal(n_samples)
        x = u * radius[:, None]
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x, y


# --------------------------------------------------------------------------- loss


def softmax_cross_entropy(logits: FloatArray, y: IntArray) -> tuple[float, FloatArray, float]:
    """Mean softmax cross-entropy of a batch, its gradient ∂ℓ/∂logits, and the accuracy.

    ℓ = (1/B) Σ_b [logsumexp(z_b) − z_{b,y_b}] with the max subtracted before exponentiating;
    ∂ℓ/∂z_b = (softmax(z_b) − e_{y_b}) / B. Non-finite logits give a non-finite loss (the
    caller checks it), never a warning.

    >>> loss, grad, acc = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 12) == round(math.log(4), 12), grad[0].tolist(), acc
    (True, [-0.375, 0.125, 0.125, 0.125], 0.5)
    """
    b = logits.shape[0]
    with np.errstate(all="ignore"):
        shifted = logits - np.max(logits, axis=1, keepdims=True)
        expd = np.exp(shifted)
        total = np.sum(expd, axis=1, keepdims=True)
        rows = np.arange(b)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        grad = expd / total
        grad[rows, y] -= 1.0
        grad /= b
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, grad, accuracy


def chance_loss(y: ArrayLikeInt) -> float:
    """The cross-entropy of the best input-blind classifier: the entropy of the labels.

    A model that ignores its input does best by predicting the class frequencies p_k, and
    its mean cross-entropy is then H(p) = −Σ_k p_k ln p_k (Gibbs' inequality); for K
    balanced classes that is ln K (ln 3 ≈ 1.0986 for three). A training loss that ends at
    this value means the network has learnt nothing about the inputs.

    >>> round(chance_loss(np.array([0, 1, 2, 0, 1, 2])), 12) == round(math.log(3), 12)
    True
    """
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise GradmathError(f"`y` (shape {labels.shape}) must be a non-empty 1-D integer array.")
    if labels.min() < 0:
        raise GradmathError(f"`y` has the label {int(labels.min())}; labels must be >= 0.")
    p = np.bincount(labels) / labels.size
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Divergence:
    """Where training stopped: the loss or a gradient became NaN or ±inf, or the loss blew
    up past :data:`DIVERGED_LOSS_RATIO` times its starting scale (module docstring).

    ``epoch`` is 1-based (the epoch in which it happened), ``step`` is the 1-based step
    within that epoch (0: the end-of-epoch evaluation on the whole training set).
    ``quantity`` is ``"loss"`` or ``"gradient"``; ``grad_norms`` (shape (L,)) are the per-layer
    gradient norms of the failing step (NaN/inf included), ``grad_rms`` the same per entry;
    both are ``None`` when the failure was found by the end-of-epoch evaluation (step 0),
    where no gradient is computed. ``last_loss`` is the last finite training loss observed.
    """

    epoch: int
    step: int
    quantity: Literal["loss", "gradient"]
    value: float
    grad_norms: FloatArray | None
    grad_rms: FloatArray | None
    last_loss: float

    def __str__(self) -> str:
        where = f"step {self.step} of epoch {self.epoch}" if self.step else f"epoch {self.epoch}"
        if self.quantity == "gradient" and self.grad_norms is not None:
            bad = [i + 1 for i in np.flatnonzero(~np.isfinite(self.grad_norms))]
            what = f"the gradient of layer(s) {', '.join(map(str, bad))} became non-finite"
        elif math.isfinite(self.value):
            what = f"the training loss blew up to {self.value:.3g}"
        else:
            what = f"the training loss became {self.value}"
        return f"{what} at {where} (last finite loss {self.last_loss:.4g})"


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Per-epoch records of one training run (see the module docstring for each field).

    ``loss``, ``accuracy``: shape (E + 1,); ``weight_change``: (E + 1, L); ``grad_norms``,
    ``step_change``: (E, L); ``clipped``: (E,); E = ``epochs_run`` ≤ ``epochs``.
    """

    mlp: MLP
    epochs: int
    lr: float
    batch: int
    seed: int
    clip: ClipSpec
    l2: float
    loss: FloatArray
    accuracy: FloatArray
    grad_norms: FloatArray
    weight_change: FloatArray
    step_change: FloatArray
    clipped: FloatArray
    divergence: Divergence | None

    @property
    def epochs_run(self) -> int:
        """Epochs completed (fewer than ``epochs`` when training diverged)."""
        return int(self.grad_norms.shape[0])

    @property
    def diverged(self) -> bool:
        """Whether the loss or a gradient became non-finite."""
        return self.divergence is not None

    @property
    def layer_sizes(self) -> FloatArray:
        """n_l · n_{l−1}, the number of entries of W^l."""
        w = self.mlp.widths
        return np.array([w[i] * w[i + 1] for i in range(len(w) - 1)], dtype=np.float64)

    @property
    def grad_rms(self) -> FloatArray:
        """Per-entry gradient size ‖∂ℓ/∂W^l‖_F / √(n_l n_{l−1}), shape (E, L)."""
        return self.grad_norms / np.sqrt(self.layer_sizes)

    def __str__(self) -> str:
        head = (
            f"SGD lr={self.lr:g}, batch {self.batch}, {self.epochs_run}/{self.epochs} "
            f"epochs, clip={self.clip}, l2={self.l2:g}: loss {self.loss[0]:.4g} → "
            f"{self.loss[-1]:.4g}, accuracy {self.accuracy[0]:.3f} → {self.accuracy[-1]:.3f}"
        )
        return head + (f"; diverged: {self.divergence}" if self.divergence else "")


# --------------------------------------------------------------------------- training


def _network() -> Any:
    from gradmath.numeric import network

    return network


def _logits(cache: Any) -> FloatArray:
    # h^L of network.forward's cache, shape (batch, n_L): the only field train() reads.
    return np.asarray(cache.logits, dtype=np.float64)


def _check_data(mlp: MLP, data: Any) -> tuple[FloatArray, IntArray]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise GradmathError("`data` must be a pair (x, y), e.g. make_task(...), or None.")
    try:
        x = np.asarray(data[0], dtype=np.float64)
        y = np.asarray(data[1])
    except (TypeError, ValueError):
        raise GradmathError(
            "`data` must hold numbers: inputs as floats, labels as integers."
        ) from None
    n_in, n_out = mlp.widths[0], mlp.widths[-1]
    if x.ndim == 2 and x.shape[0] == 0:
        raise GradmathError("`data` holds no examples (0 rows); give at least one.")
    if x.ndim != 2 or x.shape[1] != n_in:
        raise GradmathError(
            f"`data` inputs must have shape (n_samples, {n_in}) for this MLP, got {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise GradmathError("`data` inputs hold NaN or inf.")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise GradmathError(f"`data` labels must be {x.shape[0]} integers, got shape {y.shape}.")
    if y.min() < 0 or y.max() >= n_out:
        raise GradmathError(
            f"`data` labels must lie in 0 … {n_out - 1} (the MLP has {n_out} outputs), "
            f"got {y.min()} … {y.max()}."
        )
    return x, y.astype(np.int64)


def _frob(a: NDArray[np.floating[Any]]) -> float:
    # ‖a‖_F = m·‖a/m‖ with m = max|a_i| (clipping.scaled_norm), so that huge finite gradients
    # do not overflow in the squares; NaN and inf entries give NaN and inf (the record of a
    # failing step keeps them).
    with np.errstate(all="ignore"):
        m, r = scaled_norm([a])
        if m == 0.0 or not math.isfinite(m):
            return m
        return float(np.float64(m) * np.float64(r))


def _rms(norms: FloatArray) -> FloatArray:
    # Root mean square over steps (axis 0), scaled per layer so that squares cannot overflow.
    m = np.max(norms, axis=0)
    safe = np.where(m > 0, m, 1.0)
    return m * np.sqrt(np.mean(np.square(norms / safe), axis=0))


def _evaluate(
    net: Any, mlp: MLP, params: Sequence[tuple[FloatArray, FloatArray]], x: FloatArray, y: IntArray
) -> tuple[float, float]:
    with np.errstate(all="ignore"):
        logits = _logits(net.forward(mlp, params, x))
    loss, _, acc = softmax_cross_entropy(logits, y)
    return loss, acc


def train(
    mlp: MLP,
    *,
    data: tuple[FloatArray, IntArray] | None = None,
    epochs: int,
    lr: float,
    batch: int | None = None,
    seed: int,
    clip: ClipSpec = None,
    l2: float = 0.0,
    progress: Progress | bool | None = None,
) -> TrainResult:
    """Train ``mlp`` with SGD on softmax cross-entropy and record every layer (module doc).

    Args:
        mlp: the network; n_0 must match the inputs, n_L is the number of classes.
        data: ``(x, y)`` with x of shape (n, n_0) and integer labels in 0 … n_L − 1; ``None``
            makes ``make_task(512, n_0, n_L, seed=seed)``.
        epochs: passes over the data.
        lr: the SGD step size η.
        batch: examples per step (``None``: the full batch, one step per epoch).
            Mini-batches are a fresh seeded permutation each epoch; the last may be smaller.
            A batch-norm net needs >= 2 examples in every batch, so a ``batch`` that
            leaves a last batch of one (n % batch == 1) is refused up front.
        seed: seeds the weights and the shuffling (an integer >= 0).
        clip: ``None`` or ``{"value": c}``, ``{"norm": c}``, ``{"global_norm": c}``
            (:func:`gradmath.clipping.apply_clip`), applied to the gradients of all weights
            and biases of a step (per tensor for ``"norm"``, as Keras ``clipnorm``).
        l2: λ ≥ 0 of the penalty (λ/2) Σ ‖W^l‖_F².
        progress: ``True`` for a tqdm bar, or a callable ``progress(epoch, loss)`` called
            after each epoch.

    Returns:
        A frozen :class:`TrainResult`. A run whose loss or gradient becomes non-finite stops
        there and says so in ``divergence`` (never an exception, never a silent NaN).

    >>> net = MLP((2, 16, 3), activation="tanh", init="glorot_uniform")
    >>> r = train(net, data=make_task(90, 2, 3, seed=1), epochs=30, lr=0.5, seed=0)
    >>> bool(r.loss[-1] < r.loss[0]), r.diverged
    (True, False)
    """
    net = _network()
    net.check_supported(mlp)
    n_epochs = check_positive_int("epochs", epochs)
    eta = check_positive("lr", lr)
    lam = check_positive("l2", l2, allow_zero=True)
    validate_clip(clip)
    seed = check_seed(seed)
    x, y = _check_data(
        mlp,
        make_task(512, mlp.widths[0], mlp.widths[-1], seed=seed) if data is None else data,
    )
    n = x.shape[0]
    bs = n if batch is None else min(check_positive_int("batch", batch), n)
    if mlp.batchnorm and (bs == 1 or n % bs == 1):
        # Refused rather than dropping the last example each epoch: the run would then train
        # on fewer examples than it was given, silently.
        raise GradmathError(
            f"`batch` (={batch!r}) with {n} examples leaves a mini-batch of one "
            "example, and batch norm needs at least 2 per batch (its variance is 0 otherwise). "
            "Use a batch >= 2 whose remainder n % batch is not 1, or None for the "
            "full batch."
        )
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise GradmathError(f"`progress` (={progress!r}) must be None, a bool or a callable.")

    rng = np.random.default_rng(seed)
    params = [
        (np.array(w, dtype=np.float64), np.array(b, dtype=np.float64))
        for w, b in net.sample_params(mlp, rng, np.float64)
    ]
    w0 = [w.copy() for w, _ in params]
    w0_norm = np.array([_frob(w) for w in w0])
    if np.any(w0_norm == 0):
        raise GradmathError(
            "A layer starts with all-zero weights, so its relative weight change "
            "‖W − W_0‖/‖W_0‖ is undefined; use an initializer with nonzero variance."
        )
    depth = mlp.depth
    sizes = np.array([w.size for w in w0], dtype=np.float64)

    loss0, acc0 = _evaluate(net, mlp, params, x, y)
    if not math.isfinite(loss0):
        raise GradmathError(
            f"The loss of the untrained network is already {loss0}: the forward pass leaves "
            "float64 range at initialisation. Use a smaller depth or weight variance."
        )
    blown_up = DIVERGED_LOSS_RATIO * max(loss0, math.log(mlp.widths[-1]))
    losses, accs = [loss0], [acc0]
    grad_rows: list[FloatArray] = []
    change_rows = [np.zeros(depth)]
    step_rows: list[FloatArray] = []
    clipped_rows: list[float] = []
    divergence: Divergence | None = None

    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_epochs, desc="train", leave=False)

    for epoch in range(1, n_epochs + 1):
        order = rng.permutation(n) if bs < n else np.arange(n)
        step_norms: list[FloatArray] = []
        step_sum = np.zeros(depth)
        n_clipped = 0
        n_steps = 0
        for step, start in enumerate(range(0, n, bs), start=1):
            idx = order[start : start + bs]
            with np.errstate(all="ignore"):
                cache = net.forward(mlp, params, x[idx])
                loss, grad_out, _ = softmax_cross_entropy(_logits(cache), y[idx])
                grads = net.backward(mlp, params, cache, grad_out)
                flat: list[FloatArray] = []
                for (w, _), (gw, gb) in zip(params, grads, strict=True):
                    flat += [gw + lam * w if lam else gw, gb]
            norms = np.array([_frob(gw) for gw, _ in grads])
            finite = all(np.all(np.isfinite(g)) for g in flat) and np.all(np.isfinite(norms))
            if not (math.isfinite(loss) and loss <= blown_up and finite):
                quantity: Literal["loss", "gradient"] = (
                    "loss" if not (math.isfinite(loss) and loss <= blown_up) else "gradient"
                )
                divergence = Divergence(
                    epoch, step, quantity, loss, norms, norms / np.sqrt(sizes), losses[-1]
                )
                break
            step_norms.append(norms)
            new = apply_clip(flat, clip)
            n_clipped += any(not np.array_equal(a, b) for a, b in zip(new, flat, strict=True))
            updated = []
            with np.errstate(all="ignore"):  # an overflow here shows up as a non-finite loss
                for i, (w, b) in enumerate(params):
                    dw, db = eta * new[2 * i], eta * new[2 * i + 1]
                    step_sum[i] += _frob(dw) / max(_frob(w), np.finfo(np.float64).tiny)
                    updated.append((w - dw, b - db))
            params = updated
            n_steps += 1
        if divergence is not None:
            break
        loss_e, acc_e = _evaluate(net, mlp, params, x, y)
        if not (math.isfinite(loss_e) and loss_e <= blown_up):
            divergence = Divergence(epoch, 0, "loss", loss_e, None, None, losses[-1])
            break
        losses.append(loss_e)
        accs.append(acc_e)
        grad_rows.append(_rms(np.array(step_norms)))
        step_rows.append(step_sum / n_steps)
        clipped_rows.append(n_clipped / n_steps)
        change_rows.append(
            np.array([_frob(w - w_init) for (w, _), w_init in zip(params, w0, strict=True)])
            / w0_norm
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_e:.4g}")
        elif callable(progress) and not isinstance(progress, bool):
            progress(epoch, loss_e)
    if bar is not None:
        bar.close()

    def rows(r: list[FloatArray]) -> FloatArray:
        return np.array(r, dtype=np.float64).reshape(len(r), depth)

    return TrainResult(
        mlp=mlp,
        epochs=n_epochs,
        lr=eta,
        batch=bs,
        seed=seed,
        clip=clip,
        l2=lam,
        loss=np.array(losses),
        accuracy=np.array(accs),
        grad_norms=rows(grad_rows),
        weight_change=rows(change_rows),
        step_change=rows(step_rows),
        clipped=np.array(clipped_rows, dtype=np.float64),
        divergence=divergence,
    )
