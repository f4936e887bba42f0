"""Monte-Carlo second-moment profiles of sampled networks, comparable with the mean-field theory.

:func:`simulate` samples ``n_networks`` independent networks of one :class:`~gradmath.MLP`,
pushes a batch of Gaussian inputs through each, backpropagates a Gaussian output gradient (or a
real MSE loss), and reports per layer the same three quantities as ``meanfield.predict``, as
natural logs with Monte-Carlo standard errors (design.md, "Shared vocabulary").

How deep nets stay in range. Signals and gradients of a depth-10,000 net grow or shrink like
e^{±O(L)}. Every network carries its current layer as (u, s) with true value e^s·u and u of unit
root-mean-square: the backward pass is linear in δ, so rescaling it is always exact; forward,
h is rescaled when the next activation is positively homogeneous (φ(cz) = cφ(z) for c > 0:
linear, relu, leaky_relu; the bias is then added as e^{−s}·b), which is exact too. Other
activations (tanh, gelu, …) see the true h: their forward signal stays bounded or the real
network would leave float range as well, which raises a :class:`~gradmath.GradmathError`.

Memory. The backward pass needs every layer's weights and pre-activations. When they fit in
``memory_budget`` they are kept; otherwise the forward pass is cut into segments of about
√(L·batch·n/(n² + batch·n)) layers, only each segment's entry state is kept (a checkpoint), and
each segment is recomputed just before its backward pass (Chen et al. 2016, "Training deep nets
with sublinear memory cost"). In that case weights are not stored between passes either: each
network draws them from its own generator, whose state is saved at every segment start, so a
recomputation redraws bit-for-bit the same matrices.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.mlp import MLP
from gradmath.numeric.network import (
    check_supported,
    layer_backward,
    layer_forward,
    layer_input,
    sample_layer,
)
from gradmath.profile import Profile

__all__ = ["simulate"]

Array = NDArray[np.floating[Any]]
FloatArray = NDArray[np.float64]
QUANTITIES = ("q", "grad_q", "wgrad_q")

#: Networks stacked into one matmul call (more stops helping once BLAS calls are not tiny).
MAX_STACK = 16


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to simulate networks (picklable for process pools)."""

    mlp: MLP
    batch: int
    dtype: str
    input_q: float
    output_grad_q: float
    loss: str | None
    segment: int


def _sumsq_mean(a: Array, axes: tuple[int, ...] = (-2, -1)) -> FloatArray:
    # Mean of squares in float64 whatever the storage dtype (a float32 sum would lose digits).
    n = math.prod(a.shape[ax] for ax in axes)
    sub = "".join("abcdefgh"[: a.ndim])
    keep = "".join(c for k, c in enumerate(sub) if k - a.ndim not in axes)
    return cast(FloatArray, np.einsum(f"{sub},{sub}->{keep}", a, a, dtype=np.float64) / n)


def _log(x: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.log(x)


class _Chunk:
    """K networks run together: stacked weights (K, n_l, n_{l−1}), activations (K, batch, n_l)."""

    def __init__(self, spec: _Spec, seqs: Sequence[np.random.SeedSequence]) -> None:
        self.spec = spec
        self.mlp = spec.mlp
        self.layers = spec.mlp.layers
        self.acts = cast(tuple[Activation, ...], spec.mlp.activation)
        self.dtype = np.dtype(spec.dtype)
        self.K = len(seqs)
        self.progress: Any = None
        # Drawing weights costs ~11 ns per normal (~22 for Keras' truncated normals), as much
        # as a batch-64 matmul per weight, and one generator is one core: networks draw on
        # all cores at once (NumPy releases the GIL while filling arrays). Each network keeps
        # its own generator, so the values do not depend on the threads.
        self.pool: ThreadPoolExecutor | None = None
        # Per network: one stream for weights (replayed on recomputation), one for the data.
        # SFC64 draws normals about twice as fast as PCG64 here (the cost that matters).
        self.wgen = [_generator(s, 0) for s in seqs]
        self.dgen = [_generator(s, 1) for s in seqs]
        L = spec.mlp.depth
        homog = [a.homogeneous for a in self.acts]
        # After layer i: rescale h (exact) if φ_i is homogeneous or h^L is the output; batch
        # norm pins h anyway, so nothing is rescaled there.
        self.rescale = [(homog[i] or i == L - 1) and not spec.mlp.batchnorm for i in range(L)]

    # ------------------------------------------------------------------ randomness
    def weights(self, i: int) -> tuple[Array, Array]:
        layer = self.layers[i]
        w = np.empty((self.K, layer.fan_out, layer.fan_in), dtype=self.dtype)
        b = np.empty((self.K, layer.fan_out), dtype=self.dtype)

        def draw(k: int) -> None:
            w[k], b[k] = sample_layer(layer, self.wgen[k], self.dtype)

        if self.pool is None:
            for k in range(self.K):
                draw(k)
        else:
            list(self.pool.map(draw, range(self.K)))
        return w, b

    def gaussian(self, shape: tuple[int, ...], var: float) -> Array:
        out = np.empty((self.K, *shape), dtype=self.dtype)
        for k, g in enumerate(self.dgen):
            out[k] = g.standard_normal(shape, dtype=self.dtype)
        out *= self.dtype.type(math.sqrt(var))
        return out

    # ------------------------------------------------------------------ one layer
    def forward_step(
        self, i: int, w: Array, b: Array, x0: Array, h_prev: Array | None, s_prev: FloatArray
    ) -> tuple[Array, Array | None, FloatArray, FloatArray, Array]:
        """(h, 1/σ, s, log q per network, x-statistic for the weight gradient) of layer i."""
        x_in = layer_input(self.mlp, i, x0, h_prev)
        if np.any(s_prev != 0):
            b *= np.exp(-s_prev).astype(self.dtype)[:, None]
        h, inv = layer_forward(self.mlp, i, w, b, x_in, h_prev)
        ms = _sumsq_mean(h)
        log_q = 2.0 * s_prev + _log(ms)
        s = s_prev
        if self.spec.mlp.batchnorm:
            s = np.zeros(self.K)
        elif self.rescale[i]:
            r = np.sqrt(ms)
            r[r == 0] = 1.0  # a dead network stays at zero
            h *= (1.0 / r).astype(self.dtype)[:, None, None]
            s = s_prev + np.log(r)
        else:
            h = self._true_scale(i, h, s_prev)
            s = np.zeros(self.K)
        if not (np.all(np.isfinite(ms)) and np.all(np.isfinite(log_q[ms > 0]))):
            self._range_error(i, "forward signal")
        # For the weight gradient: per-example E_j[x_j²] (plain, residual) or the Gram matrix
        # x xᵀ/n (batch norm, whose gradient couples the examples); true scale e^{2 s_prev}.
        if self.mlp.batchnorm:
            xstat = np.matmul(x_in, np.swapaxes(x_in, -1, -2)) / x_in.shape[-1]
        else:
            xstat = _sumsq_mean(x_in, (-1,))
        return h, inv, s, log_q, xstat

    def _true_scale(self, i: int, h: Array, s: FloatArray) -> Array:
        # The next activation is not homogeneous: it needs h itself, which must be in range.
        if np.any(s != 0):
            fmax = float(np.finfo(self.dtype).max)
            if np.any(s > 0.5 * math.log(fmax)) or np.any(s < -0.5 * math.log(fmax)):
                self._range_error(i, "forward signal")
            h = h * np.exp(s).astype(self.dtype)[:, None, None]
        amax = float(np.max(np.abs(h))) if h.size else 0.0
        if not math.isfinite(amax) or amax > float(np.finfo(self.dtype).max) ** 0.5:
            self._range_error(i, "forward signal")
        return h

    def _range_error(self, i: int, what: str) -> None:
        act = self.acts[i]
        raise GradmathError(
            f"The {what} of this net leaves the {self.dtype} range at layer {i + 1}: a real "
            f"network would overflow there too. Exact log-space rescaling of the forward pass "
            f"needs a positively homogeneous activation (linear, relu, leaky_relu); layer "
            f"{i + 1} uses {act.name!r}. Use a smaller depth or weight variance."
        )

    # ------------------------------------------------------------------ one pass
    def run(self) -> FloatArray:
        """Per-network logs, shape (3, K, L): log q, log q̃, log E[(∂L/∂W)²] per layer."""
        threads = min(self.K, _cores())
        if threads < 2:
            return self._run()
        with ThreadPoolExecutor(threads) as self.pool:
            try:
                return self._run()
            finally:
                self.pool = None

    def _run(self) -> FloatArray:
        spec, mlp = self.spec, self.mlp
        L, B, C = mlp.depth, spec.batch, spec.segment
        out = np.full((3, self.K, L), np.nan)
        x0 = self.gaussian((B, mlp.widths[0]), spec.input_q)
        starts = list(range(0, L, C))
        # Forward sweep: log q of every layer; checkpoints at segment starts; the last segment
        # is kept whole for the backward pass.
        checkpoints: list[tuple[Any, Array | None, FloatArray]] = []
        h: Array | None = None
        s = np.zeros(self.K)
        kept: dict[str, list[Any]] = {}
        for j, start in enumerate(starts):
            checkpoints.append(([g.bit_generator.state for g in self.wgen], h, s))
            last = j == len(starts) - 1
            h, s, kept = self._segment(start, min(start + C, L), x0, h, s, out, keep=last)
        # The output gradient, independent of the forward pass or from the MSE loss.
        assert h is not None
        delta, t = self._output_grad(h, s)
        for j in range(len(starts) - 1, -1, -1):
            start, stop = starts[j], min(starts[j] + C, L)
            if j != len(starts) - 1:
                states, h_in, s_in = checkpoints[j]
                for g, st in zip(self.wgen, states, strict=True):
                    g.bit_generator.state = st
                _, _, kept = self._segment(start, stop, x0, h_in, s_in, None, keep=True)
            delta, t = self._backward_segment(start, stop, kept, delta, t, out)
        return out

    def _segment(
        self,
        start: int,
        stop: int,
        x0: Array,
        h: Array | None,
        s: FloatArray,
        out: FloatArray | None,
        *,
        keep: bool,
    ) -> tuple[Array | None, FloatArray, dict[str, list[Any]]]:
        kept: dict[str, list[Any]] = {"w": [], "h": [h], "s": [s], "inv": [], "xstat": []}
        for i in range(start, stop):
            w, b = self.weights(i)
            h, inv, s, log_q, xstat = self.forward_step(i, w, b, x0, h, s)
            if out is not None:
                out[0, :, i] = log_q
            if keep:
                kept["w"].append(w)
                kept["h"].append(h)
                kept["s"].append(s)
                kept["inv"].append(inv)
                kept["xstat"].append(xstat)
            if self.progress is not None:
                self.progress.update(1)
        return h, s, kept

    def _output_grad(self, h: Array, s: FloatArray) -> tuple[Array, FloatArray]:
        spec = self.spec
        n_out = self.mlp.widths[-1]
        g = self.gaussian((spec.batch, n_out), spec.output_grad_q)
        if spec.loss is None:
            return g, np.zeros(self.K)
        # ℓ = ½ Σ_b ‖h^L_b − y_b‖², y ~ N(0, output_grad_q): δ^L = h^L − y
        # = e^t (e^{s−t} u − e^{−t} y), with t = max(s, 0) so neither factor overflows.
        t = np.maximum(s, 0.0)
        a = np.exp(s - t).astype(self.dtype)[:, None, None]
        c = np.exp(-t).astype(self.dtype)[:, None, None]
        return h * a - g * c, t

    def _backward_segment(
        self,
        start: int,
        stop: int,
        kept: dict[str, list[Any]],
        delta: Array,
        t: FloatArray,
        out: FloatArray,
    ) -> tuple[Array, FloatArray]:
        mlp = self.mlp
        for i in range(stop - 1, start - 1, -1):
            k = i - start
            h, h_prev = kept["h"][k + 1], kept["h"][k]
            s_in = kept["s"][k]
            out[1, :, i] = 2.0 * t + _log(_sumsq_mean(delta))
            da, prev = layer_backward(mlp, i, kept["w"][k], delta, h, kept["inv"][k], h_prev)
            xstat = kept["xstat"][k]
            if mlp.batchnorm:
                gram = np.matmul(da, np.swapaxes(da, -1, -2)) / da.shape[-1]
                wq = np.einsum("kab,kab->k", gram, xstat, dtype=np.float64)
            else:
                wq = np.einsum("kb,kb->k", _sumsq_mean(da, (-1,)), xstat, dtype=np.float64)
            out[2, :, i] = 2.0 * (t + s_in) + _log(wq / da.shape[-2])
            if prev is not None:
                r = np.sqrt(_sumsq_mean(prev))
                r[r == 0] = 1.0
                prev *= (1.0 / r).astype(self.dtype)[:, None, None]
                delta, t = prev, t + np.log(r)
                if not np.all(np.isfinite(t)):
                    self._range_error(i, "backward gradient")
            if self.progress is not None:
                self.progress.update(1)
        return delta, t


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _generator(seq: np.random.SeedSequence, stream: int) -> np.random.Generator:
    # The child `stream` of `seq`, built from its spawn key so it never depends on how many
    # children were spawned before (SeedSequence.spawn would count them).
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, stream))
    return np.random.Generator(np.random.SFC64(child))


def _run_chunk(spec: _Spec, seqs: Sequence[np.random.SeedSequence]) -> FloatArray:
    """Simulate networks ``seqs`` (module-level so process pools can pickle it)."""
    return _Chunk(spec, seqs).run()


# --------------------------------------------------------------------------- planning


def _plan(mlp: MLP, batch: int, itemsize: int, n_networks: int, budget: float) -> tuple[int, int]:
    """(networks per chunk K, segment length C) so that the kept arrays fit in ``budget``."""
    L = mlp.depth
    w = np.asarray(mlp.widths, dtype=np.float64)
    xstat = batch * batch if mlp.batchnorm else batch
    per_layer = float(np.mean(w[1:] * w[:-1] + (batch + 2) * w[1:] + xstat)) * itemsize
    state = float(batch * w.max()) * itemsize
    K = min(MAX_STACK, n_networks)
    if K * L * per_layer <= budget:
        return K, L
    C = max(1, min(L, round(math.sqrt(L * state / per_layer))))
    need = (math.ceil(L / C) * state + C * per_layer) * 1.5  # + temporaries
    return max(1, min(K, int(budget // need))), C


# --------------------------------------------------------------------------- estimator


def _aggregate(logs: FloatArray, what: str) -> dict[str, FloatArray]:
    """Across networks (axis 0): log of the mean, its delta-method SE, ESS, mean and sd of logs."""
    n = logs.shape[0]
    top = np.max(logs, axis=0)
    if not np.all(np.isfinite(top)):
        bad = int(np.flatnonzero(~np.isfinite(top))[0]) + 1
        raise GradmathError(
            f"Every sampled network has an exactly zero {what} at layer {bad} (dead units, or "
            "φ or φ' underflowing to 0 in floating point); no finite log moment can be estimated."
        )
    wts = np.exp(logs - top)  # in (0, 1]; a dead network contributes 0
    mean = wts.mean(axis=0)
    sd = wts.std(axis=0, ddof=1)
    finite = np.where(np.isfinite(logs), logs, np.nan)
    return {
        "log_mean": top + np.log(mean),
        "se": sd / (math.sqrt(n) * mean),
        "ess": wts.sum(axis=0) ** 2 / np.sum(wts * wts, axis=0),
        "mean_log": np.nanmean(finite, axis=0),
        "sd_log": np.nanstd(finite, axis=0, ddof=1),
    }


# --------------------------------------------------------------------------- public


def simulate(
    mlp: MLP,
    *,
    n_networks: int = 32,
    batch: int | None = None,
    seed: int | np.random.SeedSequence,
    dtype: Any = np.float64,
    input_q: float = 1.0,
    output_grad_q: float = 1.0,
    loss: Literal["mse"] | None = None,
    progress: bool | None = None,
    executor: Executor | None = None,
    memory_budget: float = 512 * 2**20,
) -> Profile:
    """Measure the per-layer second moments of ``n_networks`` sampled networks (a Profile).

    Each network k draws its weights from ``mlp``'s initializers (``Initializer.sample``, the
    objects the theory reads its variances from) and b ~ N(0, bias_var); a batch of inputs
    x^0 ~ N(0, input_q·I); and the output gradient δ^L = ∂L/∂h^L ~ N(0, output_grad_q·I)
    independent of the forward pass (Schoenholz et al. 2017, §4), or with ``loss="mse"`` the
    gradient of ℓ = ½ Σ_b ‖h^L_b − y_b‖² on random targets y ~ N(0, output_grad_q·I), so
    δ^L = h^L − y has second moment q^L + output_grad_q (not independent of the forward pass).

    **One network's estimate** of layer l, all computed exactly by backpropagation:

    - Q_k = (1/(B n_l)) Σ_{b,i} (h^l_{bi})²;  G_k = (1/(B n_l)) Σ_{b,i} (δ^l_{bi})²;
    - W_k = (1/(B n_l n_{l−1})) Σ_b ‖∂ℓ_b/∂W^l‖_F², the per-example weight gradient
      ∂ℓ_b/∂W^l = δa^l_b (x^{l−1}_b)ᵀ of the loss of example b (theory.md: E[(∂L/∂W^l_ij)²] =
      q̃^l E[(x^{l−1}_j)²] is about one example). Batch-norm couples the examples, so there
      W_k = ‖∂L/∂W^l‖_F²/(B n_l n_{l−1}) of the whole batch's gradient (equal to the per-example
      value when the examples' gradients are uncorrelated, as for plain nets with random δ^L).

    Each is an *unbiased* estimate of the expectation the theory predicts (E[(h^l_i)²] etc.;
    units and examples are exchangeable).

    **Across networks** the profile reports the log of the mean, log((1/N) Σ_k Q_k), with the
    delta-method standard error sd_k(Q_k)/(√N · mean_k Q_k). Why the log of the mean and not the
    mean of the logs: the theory predicts log E[h²]; the sample mean is unbiased for E[h²] and
    its log is biased only by −SE²/2 = O(1/N), which vanishes as networks are added. The mean of
    per-network logs estimates E[log Q_k] = log E[Q_k] − Var(Q_k)/(2E[Q_k]²) + …, which stays
    biased however many networks are drawn, by an amount that grows with depth/width (per-network
    log moments fluctuate with variance ∝ Σ_l 1/n_l; Hanin & Nica 2019). The exact law "He + ReLU
    + zero bias keeps E[h²] constant at any width" holds for the mean, not for the mean of logs.
    Caveat at depth ≫ width: Q_k is then close to log-normal with a large log-variance, the mean
    is carried by rare networks and converges slowly; ``meta["ess"]`` (the effective number of
    networks (Σ Q_k)²/Σ Q_k² per layer, per quantity) falls far below N and the SE is not to be
    trusted. ``meta["mean_log"]`` and ``meta["sd_log"]`` give the typical network's log moment
    and its spread across networks (Hanin & Nica's fluctuation).

    Args:
        mlp: the network spec (the same object ``meanfield.predict`` takes).
        n_networks: independent networks N (>= 2 for a standard error).
        batch: examples per network B (default: ``mlp.batch_size`` for batch-norm nets, else 64).
        seed: an int or ``np.random.SeedSequence``; network k uses ``SeedSequence.spawn``'s
            child k, so results do not depend on the executor or on how networks are grouped.
        dtype: float64 (default) or float32 for weights and activations (statistics are
            accumulated in float64 either way).
        input_q, output_grad_q: E[(x^0_j)²] and E[(δ^L_i)²] (the target variance for MSE).
        loss: ``None`` (Gaussian δ^L) or ``"mse"``.
        progress: tqdm bar; ``None`` shows it only on a terminal and after a second.
        executor: a ``concurrent.futures.Executor`` (process pool, Dask ``client.get_executor()``)
            to spread groups of networks over workers.
        memory_budget: bytes for the arrays kept between the forward and backward passes; above
            it the forward pass is checkpointed and recomputed (module docstring).

    >>> from gradmath import MLP
    >>> p = simulate(MLP.square(16, 3, activation="relu", init="he_normal"), n_networks=4,
    ...              batch=8, seed=0)
    >>> p.source, p.log_q.shape, p.log_q_se.shape
    ('simulation', (3,), (3,))
    """
    check_supported(mlp)
    N = check_positive_int("n_networks", n_networks, minimum=2)
    if batch is None:
        batch = mlp.batch_size if (mlp.batchnorm and mlp.batch_size) else 64
    B = check_positive_int("batch", batch, minimum=2 if mlp.batchnorm else 1)
    if mlp.batchnorm and mlp.batch_size is not None and B != mlp.batch_size:
        raise GradmathError(
            f"`batch` (={B}) differs from the MLP's batch-norm batch_size (={mlp.batch_size}); "
            "theory and simulation would describe different networks."
        )
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise GradmathError(f"`dtype` (={dtype!r}) must be numpy.float64 or numpy.float32.")
    iq = check_positive("input_q", input_q)
    oq = check_positive("output_grad_q", output_grad_q)
    if loss not in (None, "mse"):
        raise GradmathError(f"`loss` (={loss!r}) must be None or 'mse'.")
    budget = check_positive("memory_budget", memory_budget)
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    else:
        root = np.random.SeedSequence(check_seed(seed, what="a non-negative int or a SeedSequence"))
    if executor is not None and not isinstance(executor, Executor):
        raise GradmathError(
            f"`executor` must be a concurrent.futures.Executor, got {type(executor).__name__}."
        )

    K, C = _plan(mlp, B, dt.itemsize, N, budget)
    spec = _Spec(mlp, B, dt.name, iq, oq, loss, C)
    seqs = root.spawn(N)
    groups = [seqs[i : i + K] for i in range(0, N, K)]
    L = mlp.depth
    # Forward and backward pass, plus the recomputed segments: all but the last, which starts
    # at layer C·((L−1) // C) (0 when one segment holds the whole net).
    steps_per_chunk = 2 * L + C * ((L - 1) // C)
    bar = _progress_bar(progress, len(groups) * steps_per_chunk, executor is not None)
    try:
        if executor is None:
            parts = []
            for g in groups:
                chunk = _Chunk(spec, g)
                chunk.progress = bar
                parts.append(chunk.run())
        else:
            futures = [executor.submit(_run_chunk, spec, g) for g in groups]
            parts = []
            for f in futures:
                parts.append(f.result())
                if bar is not None:
                    bar.update(steps_per_chunk)
    finally:
        if bar is not None:
            bar.close()
    logs = np.concatenate(parts, axis=1)  # (3, N, L)
    names = ("forward second moment", "gradient second moment", "weight-gradient second moment")
    stats = [_aggregate(logs[j], names[j]) for j in range(3)]
    meta: dict[str, Any] = {
        "n_networks": N,
        "batch": B,
        "seed": seed if isinstance(seed, np.random.SeedSequence) else int(seed),
        "dtype": dt.name,
        "input_q": iq,
        "output_grad_q": oq,
        "loss": loss,
        "estimator": "log of the mean over networks; delta-method SE",
        "segment": C,
    }
    for key in ("ess", "mean_log", "sd_log"):
        meta[key] = {q: st[key] for q, st in zip(QUANTITIES, stats, strict=True)}
    return Profile(
        mlp=mlp,
        log_q=stats[0]["log_mean"],
        log_grad_q=stats[1]["log_mean"],
        log_wgrad_q=stats[2]["log_mean"],
        log_q_se=stats[0]["se"],
        log_grad_q_se=stats[1]["se"],
        log_wgrad_q_se=stats[2]["se"],
        source="simulation",
        meta=meta,
    )


def _progress_bar(progress: bool | None, total: int, remote: bool) -> Any:
    if progress is False:
        return None
    if progress is not None and not isinstance(progress, bool):
        raise GradmathError(f"`progress` (={progress!r}) must be True, False or None.")
    if progress is None and not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc="simulate" + (" (workers)" if remote else ""),
        unit="layer",
        leave=False,
        delay=0.0 if progress else 1.0,
    )
