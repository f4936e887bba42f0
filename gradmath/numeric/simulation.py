"""Monte-Carlo second-moment profiles of sampled networks, comparable with the mean-field theory.

:func:`simulate` samples ``n_networks`` independent networks of one network (a
:class:`~gradmath.network.Network` or an :class:`~gradmath.MLP`), pushes a batch of Gaussian
inputs through each, backpropagates a Gaussian output gradient (or a real MSE loss), and
reports per site the same three quantities as ``meanfield.predict``, as natural logs with
Monte-Carlo standard errors (design.md, "Shared vocabulary"). It is a fold over the network's
layers: each layer's simulation rule (``sim_forward``/``sim_backward`` in
:mod:`gradmath.network`) does the arithmetic on K networks stacked into one array; this module
draws the randomness, plans memory, checkpoints, reports progress and aggregates.

How deep nets stay in range. Signals and gradients of a depth-10,000 net grow or shrink like
e^{±O(L)}. Every network carries its current tensor as (u, s) with true value e^s·u: affine
layers renormalise u to unit root-mean-square and add the log of the factor to s (exact, since
the bias is added as e^{−s}·b; ``network.base.renormalise``);
positively homogeneous activations (φ(cz) = cφ(z), c > 0: linear, relu, leaky_relu) work in
scaled units; other activations (tanh, gelu, …) see the true value, which must then be in range
(a real network would overflow as well: :class:`~gradmath.GradmathError`); normalisations
remove the scale. The backward pass is linear in the gradient and rescaled the same way.

Memory. The backward pass needs every layer's parameters and inputs. When they fit in
``memory_budget`` they are kept; otherwise the forward pass is cut into segments of about
√(L·state/per_layer) top-level layers, only each segment's entry state is kept (a checkpoint),
and each segment is recomputed just before its backward pass (Chen et al. 2016, "Training deep
nets with sublinear memory cost"). Without checkpoints the weights live in memory kept from
one call to the next (:mod:`gradmath.numeric.buffers`: fresh memory costs a page fault per
4 KiB, a third of a float32 call's CPU time). Each network draws its parameters from its own
generator, whose state is saved at every segment start, so a recomputation redraws bit-for-bit
the same matrices.

Threads. Without an executor the groups of networks run on :func:`gradmath.threads.cores`
threads at once, each group's matmuls on one BLAS thread (:func:`gradmath.threads.pool`): the
products, the draws and the elementwise passes all use every core, and when another process
holds a core the run slows by that core's share instead of stalling BLAS threads that spin
while they wait for each other (issue 16: 10× slower before). Each network has its own
generators, so the numbers do not depend on the threads or the grouping.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from gradmath import threads
from gradmath.conditions import Conditions
from gradmath.errors import (
    GradmathError,
    check_positive,
    check_positive_int,
    check_seed,
    physical_memory,
)
from gradmath.initializers import Initializer
from gradmath.network import Network
from gradmath.network.base import Layer, RowCounter, Scaled, numel, per_network
from gradmath.numeric.buffers import Arena
from gradmath.numeric.generators import GeneratorName, check_generator, make_generator
from gradmath.profile import Profile, as_network

__all__ = ["memory_plan", "simulate"]

Array = NDArray[np.floating[Any]]
FloatArray = NDArray[np.float64]
QUANTITIES = ("q", "grad_q", "wgrad_q")

#: Networks stacked into one matmul call (more stops helping once BLAS calls are not tiny).
MAX_STACK = 16
#: Fraction of physical memory one simulation may plan for at the least (one network, one
#: layer kept); beyond it :func:`simulate` refuses up front instead of running out.
MEMORY_FRACTION = 0.8


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to simulate networks (picklable for process pools)."""

    network: Network
    conditions: Conditions
    dtype: str
    segment: int
    generator: GeneratorName = "numpy"


class _Chunk:
    """K networks run together through the fold; the context the layers' sim rules use."""

    def __init__(self, spec: _Spec, seqs: Sequence[np.random.SeedSequence]) -> None:
        self.spec = spec
        self.network = spec.network
        self.steps = spec.network.blocks()
        self.dtype = np.dtype(spec.dtype)
        self.K = len(seqs)
        self.batch_statistics = spec.network.uses_batch_statistics
        self.progress: Any = None
        self.sites = RowCounter()
        self.forward_log = np.full((3, self.K, len(spec.network.sites)), np.nan)
        # Per network: one stream for parameters (replayed on recomputation), one for data
        # (numeric.generators: which library draws them, and why).
        self.wgen = [make_generator(spec.generator, s, 0) for s in seqs]
        self.dgen = [make_generator(spec.generator, s, 1) for s in seqs]
        # Weights and kept activations in pooled memory (numeric.buffers: no page faults on a
        # repeated call) when every layer's are kept anyway; a checkpointed run drops a
        # segment's after its backward pass, which a pool that only grows within a call would
        # not.
        self.arena = Arena() if spec.segment >= len(self.steps) else None

    # ------------------------------------------------------------------ SimContext
    def draw(
        self, init: Initializer, shape: tuple[int, int], sigma_b2: float
    ) -> tuple[Array, Array]:
        w = self.empty((self.K, *shape))
        b = self.empty((self.K, shape[0]))
        sd = self.dtype.type(math.sqrt(sigma_b2))

        # Straight into each network's slice of the stack: no temporary, no copy (the values
        # are those of Initializer.sample's own array), the checks done once per layer.
        init.sample_stack(self.wgen, w)
        for k, g in enumerate(self.wgen):
            g.standard_normal(out=b[k], dtype=self.dtype)
        np.multiply(b, sd, out=b)  # one pass for the stack: the same products as per network
        return w, b

    def empty(self, shape: tuple[int, ...]) -> Array:
        if self.arena is None:
            return np.empty(shape, dtype=self.dtype)
        return self.arena.empty(shape, self.dtype)

    def out_of_range(self, what: str, site: int | None = None) -> GradmathError:
        where = f" at site {self.network.sites[site].name}" if site is not None else ""
        return GradmathError(
            f"The {what} of this net leaves the {self.dtype} range{where}: a real network "
            "would overflow there too. Use a smaller depth or weight variance."
        )

    def gaussian(self, shape: tuple[int, ...], var: float) -> Array:
        out = np.empty((self.K, *shape), dtype=self.dtype)
        for k, g in enumerate(self.dgen):
            out[k] = g.standard_normal(shape, dtype=self.dtype)
        out *= self.dtype.type(math.sqrt(var))
        return out

    # ------------------------------------------------------------------ the fold
    def run(self) -> FloatArray:
        """Per-network logs, shape (3, K, sites): log q, log q̃, log E[(∂ℓ/∂W)²] per site."""
        try:
            return self._run()
        finally:
            if self.arena is not None:
                self.arena.close()  # after _run's frame (and its tapes) are gone

    def _run(self) -> FloatArray:
        cond, C = self.spec.conditions, self.spec.segment
        L = len(self.steps)
        B = cond.batch or 1
        x = Scaled(self.gaussian((B, *self.network.input_shape), cond.input_q), np.zeros(self.K))
        starts = list(range(0, L, C))
        checkpoints: list[tuple[Any, Scaled, Any]] = []
        tapes: list[Any] = []
        for j, start in enumerate(starts):
            states = [g.bit_generator.state for g in self.wgen]
            checkpoints.append((states, x, self.sites.mark()))
            x, tapes = self._segment(start, min(start + C, L), x, keep=j == len(starts) - 1)
        g = self._output_grad(x)
        for j in range(len(starts) - 1, -1, -1):
            start, stop = starts[j], min(starts[j] + C, L)
            if j != len(starts) - 1:
                states, x_in, mark = checkpoints[j]
                for gen, st in zip(self.wgen, states, strict=True):
                    gen.bit_generator.state = st
                self.sites.reset(mark)
                _, tapes = self._segment(start, stop, x_in, keep=True)
            for k in range(stop - 1, start - 1, -1):
                g = self.steps[k].sim_backward(tapes[k - start], g, self, k > 0)
                self._tick()
        return self.forward_log

    def _segment(self, start: int, stop: int, x: Scaled, *, keep: bool) -> tuple[Scaled, list[Any]]:
        tapes = []
        for k in range(start, stop):
            layer: Layer = self.steps[k]
            x, tape = layer.sim_forward(x, self)
            if keep:
                tapes.append(tape)
            self._tick()
        return x, tapes

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(1)

    def _output_grad(self, y: Scaled) -> Scaled:
        cond = self.spec.conditions
        g = self.gaussian(y.u.shape[1:], cond.output_grad_q)
        if cond.loss is None:
            return Scaled(g, np.zeros(self.K))
        # ℓ = ½ Σ_b ‖y_b − t_b‖², t ~ N(0, output_grad_q): δ = y − t
        # = e^m (e^{s−m} u − e^{−m} t), with m = max(s, 0) so neither factor overflows.
        m = np.maximum(y.s, 0.0)
        a = per_network(np.exp(y.s - m), y.u)
        c = per_network(np.exp(-m), y.u)
        return Scaled(y.u * a - g * c, m)


def _run_chunk(spec: _Spec, seqs: Sequence[np.random.SeedSequence]) -> FloatArray:
    """Simulate networks ``seqs`` (module-level so process pools can pickle it), on one thread:
    the executor's workers are the parallelism (gradmath.threads)."""
    with threads.limit(1):
        return _Chunk(spec, seqs).run()


# --------------------------------------------------------------------------- planning


def _step_costs(network: Network, batch: int) -> tuple[FloatArray, float]:
    """Numbers kept per network for each top-level step, and the largest state (numbers)."""
    widths = []
    costs = []
    w = network.input_width
    for layer in network.blocks():
        out = layer.out_width(w)
        n = max(numel(w), numel(out))
        # parameters, plus about three (batch × width) tensors kept for the backward pass (a
        # convolution keeps its patches, ∏kernel times its input: counted in its params' stead)
        costs.append(layer.param_count(w) + 3.0 * batch * n + layer.state_count(w) * batch)
        widths.append(n)
        w = out
    return np.asarray(costs), float(batch * max([*widths, numel(network.input_width)]))


def memory_plan(
    net: object,
    *,
    batch: int,
    dtype: Any = np.float64,
    n_networks: int = 32,
    memory_budget: float = 512 * 2**20,
) -> tuple[int, int]:
    """(networks stacked per chunk K, top-level layers per checkpoint segment C) of a simulation.

    C equals the number of top-level layers when nothing is recomputed; otherwise segments of
    about √(L·state/per_layer) layers are checkpointed (Chen et al. 2016). The plan is for
    :func:`gradmath.threads.cores` groups running at once: the groups shrink (down to one
    network) before anything is checkpointed. Raises when even one network needs more than
    :data:`MEMORY_FRACTION` of physical memory.
    """
    return _plan(
        as_network(net), batch, _check_dtype(dtype).itemsize, n_networks, memory_budget,
        threads.cores(),
    )  # fmt: skip


def _check_dtype(dtype: object) -> np.dtype[Any]:
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    # `is None` first: np.dtype(None) is float64, so None == float64 holds ("bogus" passed).
    if dt is None or dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise GradmathError(f"`dtype` (={dtype!r}) must be numpy.float64 or numpy.float32.")
    return dt  # type: ignore[no-any-return, unused-ignore]


def _plan(
    network: Network,
    batch: int,
    itemsize: int,
    n_networks: int,
    budget: float,
    n_threads: int = 1,
) -> tuple[int, int]:
    costs, state = _step_costs(network, batch)
    L = costs.size
    per_layer = float(costs.mean()) * itemsize
    state_bytes = state * itemsize
    least = (float(costs.max()) * itemsize + 2 * state_bytes) * 1.5
    ram = physical_memory()
    limit = MEMORY_FRACTION * (math.inf if ram is None else ram)
    if least > limit:
        raise GradmathError(
            f"Simulating one network of this size needs at least {least / 2**30:.3g} GiB "
            f"(one layer's parameters and activations, batch {batch}), more than "
            f"{MEMORY_FRACTION:.0%} of this machine's {limit / MEMORY_FRACTION / 2**30:.3g} GiB; "
            "use smaller widths or batch."
        )
    # n_threads groups of K networks run at once and share the budget. Fewer networks per
    # group come before checkpointing, which draws every weight twice (forward, then again
    # when the segment is recomputed); the group count is a multiple of n_threads so that no
    # thread idles at the end.
    budget /= n_threads
    K = min(MAX_STACK, -(-n_networks // n_threads))
    if K * L * per_layer <= budget:
        return K, L
    fit = int(budget // (L * per_layer))
    if fit >= 1:
        groups = n_threads * -(-n_networks // (n_threads * fit))
        return -(-n_networks // groups), L
    C = max(1, min(L, round(math.sqrt(L * state_bytes / per_layer))))
    need = (math.ceil(L / C) * state_bytes + C * per_layer) * 1.5  # + temporaries
    return max(1, min(K, int(budget // need))), C


# --------------------------------------------------------------------------- estimator


def _aggregate(logs: FloatArray) -> dict[str, FloatArray]:
    """Across networks (axis 0): log of the mean, its delta-method SE, ESS, mean and sd of logs
    and the number of networks these rest on (Q_k > 0).

    A site where every network is exactly 0 (e.g. a ReZero branch's gradient) gives −∞ with
    SE 0; NaN columns (weight gradients of sites without weights) stay NaN.
    """
    n = logs.shape[0]
    top = np.max(logs, axis=0)
    zero = top == -np.inf
    safe = np.where(zero | np.isnan(top), 0.0, top)
    with np.errstate(invalid="ignore"):
        wts = np.exp(logs - safe)  # in (0, 1]; a dead network contributes 0
    mean = wts.mean(axis=0)
    sd = wts.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mean = np.where(zero, -np.inf, safe + np.log(mean))
        se = np.where(zero, 0.0, sd / (math.sqrt(n) * mean))
        # every network exactly 0: all n agree, nothing heavy-tailed about it
        ess = np.where(zero, float(n), wts.sum(axis=0) ** 2 / np.sum(wts * wts, axis=0))
    finite = np.where(np.isfinite(logs), logs, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no weights)
        mean_log = np.nanmean(finite, axis=0)
        sd_log = np.nanstd(finite, axis=0, ddof=1)
        sd_log_se = _sd_log_se(finite)
    n_log = np.where(np.isnan(top), np.nan, np.sum(np.isfinite(logs), axis=0).astype(np.float64))
    return {"log_mean": log_mean, "se": se, "ess": ess, "mean_log": mean_log, "sd_log": sd_log,
            "sd_log_se": sd_log_se, "n_log": n_log}  # fmt: skip


def _sd_log_se(x: FloatArray) -> FloatArray:
    """Standard error of log s, s the sample SD (ddof=1) of each column's non-NaN values.

    For N normal values (N − 1)s²/σ² ~ χ²_{N−1}, so Var log s² = ψ'((N − 1)/2) exactly (≈ 2/(N−1));
    beyond normality the delta method adds the excess kurtosis κ: Var(s²)/σ⁴ ≈ 2/(N − 1) + κ/N
    (e.g. Casella & Berger, ex. 5.8). κ is the sample's (the small-sample unbiased G₂ of
    Joanes & Gill 1998), floored at 0: a sample that happens to miss the tail has both a small
    s and a small κ̂, and without the floor such samples give |z| beyond 3.9 ten times too
    often (tests/test_validate_spread.py measures the rates). Var log s = (1/4) Var log s². NaN
    where fewer than 4 values or no spread.
    """
    from scipy.special import polygamma

    n = np.sum(~np.isnan(x), axis=0).astype(np.float64)
    centred = x - np.nanmean(x, axis=0)
    m2 = np.nanmean(centred**2, axis=0)
    m4 = np.nanmean(centred**4, axis=0)
    ok = (n >= 4) & (m2 > 0)
    nn = np.where(ok, n, 4.0)
    g2 = np.where(ok, m4 / np.where(ok, m2, 1.0) ** 2 - 3.0, 0.0)
    kurt = np.maximum(((nn + 1) * g2 + 6) * (nn - 1) / ((nn - 2) * (nn - 3)), 0.0)
    var = 0.25 * (polygamma(1, 0.5 * (nn - 1)) + kurt / nn)
    return np.where(ok, np.sqrt(var), np.nan)


# --------------------------------------------------------------------------- public


def simulate(
    net: object,
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
    generator: GeneratorName = "numpy",
) -> Profile:
    """Measure the per-site second moments of ``n_networks`` sampled networks (a Profile).

    Each network k draws its weights from the Dense layers' initializers
    (``Initializer.sample``, the objects the theory reads its variances from) and
    b ~ N(0, sigma_b2); a batch of inputs x^0 ~ N(0, input_q·I); and the output gradient
    δ^L = ∂L/∂h^L ~ N(0, output_grad_q·I) independent of the forward pass (Schoenholz et
    al. 2017, §4), or with ``loss="mse"`` the
    gradient of ℓ = ½ Σ_b ‖h^L_b − y_b‖² on random targets y ~ N(0, output_grad_q·I), so
    δ^L = h^L − y has second moment q^L + output_grad_q (not independent of the forward pass).

    **One network's estimate** at a site with output y (n units), all computed exactly by
    backpropagation:

    - Q_k = (1/(B n)) Σ_{b,i} (y_{bi})²;  G_k = (1/(B n)) Σ_{b,i} (δ_{bi})², δ = ∂L/∂y;
    - Dense sites: W_k = (1/(B n n_in)) Σ_b ‖δ_b x_bᵀ‖_F², the second moment of the per-example
      summand δ_b x_bᵀ of ∂L/∂W (theory.md: E[(∂L/∂W_ij)²] = q̃ E[x_j²] is about one example;
      with batch norm the summands of one batch are coupled, but each still has this moment).

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
    is carried by rare networks and converges slowly; ``ess`` (the effective number of
    networks (Σ Q_k)²/Σ Q_k² per layer, per quantity) falls far below N and the SE is not to be
    trusted.

    **The spread across networks**: ``mean_log`` and ``sd_log`` are the mean and the standard
    deviation (ddof = 1) across networks of log Q_k (log G_k, log W_k), the typical network and
    the spread from one initialisation to the next (Hanin & Nica 2019: close to log-normal);
    networks with an exact zero (log −∞, a dead ReLU net) are left out of both. With
    ``batch=1`` this is the spread that ``meanfield.predict(net, width_corrections=True)``
    predicts; a larger batch averages B examples inside each network and narrows it.
    ``sd_log_se`` is the standard error of log(sd_log): (1/4)(ψ'((N−1)/2) + κ/N) is its variance,
    exact for normal logs (chi-square) plus the sample excess kurtosis κ ≥ 0 (delta method).

    Args:
        net: a :class:`~gradmath.network.Network` or an MLP (what ``meanfield.predict`` takes).
        n_networks: independent networks N (>= 2 for a standard error).
        batch: examples per network B, which batch statistics see (default 64).
        seed: an int or ``np.random.SeedSequence``; network k uses ``SeedSequence.spawn``'s
            child k, so results do not depend on the executor or on how networks are grouped.
        dtype: float64 (default) or float32 for weights and activations (statistics are
            accumulated in float64 either way; float32 sums each row of one layer in float32
            first, relative error ~1e-7: ``network.base.mean_square``).
        input_q, output_grad_q: E[(x^0_j)²] and E[(δ^L_i)²] (the target variance for MSE).
        loss: ``None`` (Gaussian δ^L) or ``"mse"``.
        progress: tqdm bar; ``None`` shows it only on a terminal and after a second.
        executor: a ``concurrent.futures.Executor`` (process pool, Dask ``client.get_executor()``)
            to spread groups of networks over workers.
        memory_budget: bytes for the arrays kept between the forward and backward passes; above
            it the forward pass is checkpointed and recomputed (module docstring). Without
            checkpoints that memory is kept for the next call (at most 512 MiB in all, so a
            repeated call does not pay its page faults again; :mod:`gradmath.numeric.buffers`,
            whose ``release_memory()`` frees it).
        generator: ``"numpy"`` (default) or ``"torch"``, the library that draws weights and
            data (:mod:`gradmath.numeric.generators`; ``"torch"`` is the fast one in float32).
            A seed gives the same result with the same generator, on any executor.

    >>> from gradmath import MLP
    >>> p = simulate(MLP.square(16, 3, activation="relu", init="he_normal"), n_networks=4,
    ...              batch=8, seed=0)
    >>> p.source, p.log_q.shape, p.log_q_se.shape
    ('simulation', (3,), (3,))
    """
    network = as_network(net)
    N = check_positive_int("n_networks", n_networks, minimum=2)
    if batch is None:
        batch = 64
    B = check_positive_int("batch", batch, minimum=2 if network.uses_batch_statistics else 1)
    dt = _check_dtype(dtype)
    cond = Conditions(input_q, output_grad_q, loss, B, N)
    budget = check_positive("memory_budget", memory_budget)
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    else:
        root = np.random.SeedSequence(check_seed(seed, what="a non-negative int or a SeedSequence"))
    if executor is not None and not isinstance(executor, Executor):
        raise GradmathError(
            f"`executor` must be a concurrent.futures.Executor, got {type(executor).__name__}."
        )

    # Without an executor, groups of networks run on every core (gradmath.threads.pool).
    n_threads = threads.cores() if executor is None else 1
    K, C = _plan(network, B, dt.itemsize, N, budget, n_threads)
    spec = _Spec(network, cond, dt.name, C, check_generator(generator))
    seqs = root.spawn(N)
    groups = [seqs[i : i + K] for i in range(0, N, K)]
    L = len(network.blocks())
    # Forward and backward pass, plus the recomputed segments: all but the last, which starts
    # at step C·((L−1) // C) (0 when one segment holds the whole net).
    steps_per_chunk = 2 * L + C * ((L - 1) // C)
    bar = _progress_bar(progress, len(groups) * steps_per_chunk, executor is not None)
    try:
        if executor is None:

            def run(group: Sequence[np.random.SeedSequence]) -> FloatArray:
                chunk = _Chunk(spec, group)
                chunk.progress = bar
                return chunk.run()

            # One group per thread and one BLAS thread per call: the products, the draws and
            # the elementwise passes all run on every core, and a core taken by another
            # process slows the run by its share instead of stalling BLAS threads that spin
            # waiting for each other (gradmath.threads; issue 16: 10× → ≤ 2×).
            with threads.pool(len(groups)) as pool:
                parts = list(map(run, groups) if pool is None else pool.map(run, groups))
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
    logs = np.concatenate(parts, axis=1)  # (3, N, sites)
    for j, what in enumerate(("forward second moment", "gradient second moment")):
        nan = np.isnan(logs[j]) | (logs[j] == np.inf)
        if np.any(nan):
            site = network.sites[int(np.flatnonzero(nan.any(axis=0))[0])].name
            raise GradmathError(f"The {what} at {site} is not finite in some sampled network.")
    return _profile_of(network, logs, cond)


def _profile_of(network: Network, logs: FloatArray, cond: Conditions) -> Profile:
    """The simulated Profile of per-network logs ``logs`` (3, N, sites): log q, log q̃,
    log E[(∂ℓ/∂W)²] of each network at each site (:func:`_aggregate` per quantity)."""
    stats = [_aggregate(logs[j]) for j in range(3)]
    return Profile(
        network,
        stats[0]["log_mean"],
        stats[1]["log_mean"],
        stats[2]["log_mean"],
        log_q_se=stats[0]["se"],
        log_grad_q_se=stats[1]["se"],
        log_wgrad_q_se=stats[2]["se"],
        source="simulation",
        conditions=cond,
        ess=np.stack([st["ess"] for st in stats]),
        mean_log=np.stack([st["mean_log"] for st in stats]),
        sd_log=np.stack([st["sd_log"] for st in stats]),
        sd_log_se=np.stack([st["sd_log_se"] for st in stats]),
        n_log=np.stack([st["n_log"] for st in stats]),
        reference="log of the mean over networks; delta-method SE",
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
