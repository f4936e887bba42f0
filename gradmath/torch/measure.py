"""Measure a PyTorch model at initialisation: per-site second moments over independent inits.

:func:`measure` re-initialises the model ``n_inits`` times, runs one forward and one backward
pass per init with hooks on every site (:mod:`gradmath.torch.sites`), and estimates per site

- ``q``: E[h²], the mean square of the site's output tensor (over batch, features, positions);
- ``grad_q``: E[(∂L/∂h)²], the mean square of the loss gradient with respect to that output;
- ``wgrad_q`` (dense and conv sites): E[(∂ℓ_b/∂W_ij)²] per example. For a dense layer the
  examples are the rows r of its (…, features) input (batch × positions for a sequence model)
  and ∂ℓ_r/∂W = δ_r x_rᵀ, so the estimate is mean_r ms(δ_r)·ms(x_r) (ms: mean square over the
  row), exactly what ``numeric.simulate`` computes, from the layer's own input and output
  gradient: it does not count the correlation between rows that the batch gradient
  ‖Σ_r δ_r x_rᵀ‖² would (attention mixes positions, rows at one position share a position
  embedding, batch norm couples examples), nor the gradient another module adds to a tied
  weight (GPT-2's lm_head is the token embedding). For a conv, whose per-example gradient sums
  over positions, it is the batch gradient ‖∂L/∂W‖²_F / (B · numel W), unbiased when the
  examples' gradients are uncorrelated (the default loss, no batch statistics).

The estimator is the one ``numeric.simulate`` uses (its docstring explains the choice): the log
of the mean over inits, with the delta-method standard error sd_k(Q_k)/(√N · mean_k Q_k).
Inputs are the user's and stay fixed; only the parameters are redrawn, so the SE is the spread
across initialisations for these inputs.

The model is left as it was found (parameters, buffers, ``.grad``, ``requires_grad``, modes;
every hook removed), also when something raises; the global RNG state is not touched.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.torch._model import (
    DrawAhead,
    InitFn,
    batch_size,
    call,
    check_dtype,
    check_init,
    check_model,
    convert_inputs,
    first_tensor,
    input_q,
    model_device_dtype,
    preserved,
    reinitialise,
)
from gradmath.torch.ops import classify
from gradmath.torch.sites import AVG_POOLS, SiteKind, site_kind, weight_of
from gradmath.torch.trace import Event, Trace

__all__ = ["Measurement", "SiteInfo", "log_mean_se", "measure"]

FloatArray = NDArray[np.float64]
Loss = Literal["mse"] | Callable[[Any], torch.Tensor] | None
QUANTITIES = ("q", "grad_q", "wgrad_q")
_ABSENT = object()
#: Draw each init's default conv weights during the previous init's passes (_model.DrawAhead):
#: ``None`` when torch's threads leave a core idle (on ResNet-18 with one thread on two cores
#: the passes lose ~0.3 s of 0.4 s of draws per 16 inits in wall time; with two threads the
#: worker slows them down instead, README), ``True`` always, ``False`` never.
DRAW_AHEAD: bool | None = None


def _draw_ahead() -> bool:
    if DRAW_AHEAD is not None:
        return DRAW_AHEAD
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return torch.get_num_threads() < (cores or 1)


@dataclass(frozen=True)
class SiteInfo:
    """One measured site: its gradmath name (kind + counter in forward order), kind, the
    qualified module name (``call`` > 0 when the module runs more than once per forward), the
    number of output features (channels for conv), output elements per example, and the
    number of weight entries (0 without weights)."""

    name: str
    kind: SiteKind
    module: str
    call: int
    width: int
    size: int
    weight_size: int


@dataclass(frozen=True, eq=False)
class Measurement:
    """Per-site log second moments of a model over independent inits (module docstring).

    Arrays have one entry per site in forward order; NaN where a quantity does not exist
    (no weight; no gradient reaches the site). ``log_grad_in`` is, for measured-only modules,
    log E[(∂L/∂x)²] of the gradient they pass to their input (through them alone: a
    full backward hook), so the theory can resume below them. ``per_init`` has shape
    (4, n_inits, n_sites): the per-init natural logs of q, grad_q, wgrad_q and grad_in.
    """

    sites: tuple[SiteInfo, ...]
    log_q: FloatArray
    log_grad_q: FloatArray
    log_wgrad_q: FloatArray
    log_q_se: FloatArray
    log_grad_q_se: FloatArray
    log_wgrad_q_se: FloatArray
    log_grad_in: FloatArray
    log_grad_in_se: FloatArray
    per_init: FloatArray
    conditions: dict[str, Any] = field(default_factory=dict)
    #: measured-only sites with positions, by site name: (K, C, G) between positions, averaged
    #: over inits (:func:`position_moments`): the output's second moments for one example and
    #: for two, and the input gradient's for one example (G normalised per init to mean
    #: diagonal 1; 0 when no gradient reached the input)
    positions: dict[str, tuple[FloatArray, FloatArray, Any]] = field(default_factory=dict)

    def index(self, name: str) -> int:
        """Position of the site called ``name`` (a gradmath name or a module's qualified name)."""
        for i, s in enumerate(self.sites):
            if name in (s.name, s.module):
                return i
        raise GradmathError(f"No site {name!r}; sites: {', '.join(s.name for s in self.sites)}.")

    @property
    def log_wgrad_norm2(self) -> FloatArray:
        """log E‖∂ℓ_b/∂W‖²_F per example: log wgrad_q + log numel W (NaN without weights)."""
        n = np.array([s.weight_size or np.nan for s in self.sites], dtype=np.float64)
        return self.log_wgrad_q + np.log(n)


def channels(shape: tuple[int, ...], kind: str) -> int:
    """Features per position: dim 1 of (N, C, H, W) and of conv/batch-norm (N, C, L) outputs,
    else the last dim ((N, D) and transformers' (N, T, D))."""
    if len(shape) == 4 or (len(shape) == 3 and kind in ("conv", "batchnorm")):
        return int(shape[1])
    return int(shape[-1]) if shape else 1


def log_mean_se(logs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log of the mean over axis 0 of values given as logs, and its delta-method SE.

    SE(log m̄) = sd(m)/(√N m̄), computed relative to the largest value so that logs far outside
    the float range are fine. Columns that are all NaN stay NaN; a column that is exactly 0 for
    every init gives −inf (no finite log).

    >>> m, se = log_mean_se(np.log([[1.0], [3.0]]))
    >>> round(float(np.exp(m[0])), 12), round(float(se[0]), 12)   # mean 2, sd √2/(√2·2)
    (2.0, 0.5)
    """
    n = logs.shape[0]
    with np.errstate(all="ignore"):
        top = np.nanmax(np.where(np.isnan(logs), -np.inf, logs), axis=0)
        safe_top = np.where(np.isfinite(top), top, 0.0)
        w = np.exp(logs - safe_top)
        mean = np.mean(w, axis=0)
        sd = np.std(w, axis=0, ddof=1) if n > 1 else np.full_like(mean, np.nan)
        log_mean = safe_top + np.log(mean)
        se = sd / (math.sqrt(n) * mean)
    log_mean = np.where(top == -np.inf, -np.inf, log_mean)
    absent = np.all(np.isnan(logs), axis=0)
    return np.where(absent, np.nan, log_mean), np.where(absent, np.nan, se)
    return log_mean, se


def _norm(t: torch.Tensor) -> torch.Tensor:
    # ‖t‖ as a 0-d tensor on t's device: one reduction in the tensor's own dtype (no float64
    # copy: the copy and the square cost more than the pass on ResNet-18; a float32 norm of 10⁷
    # terms keeps ~1e-6 relative accuracy, far below the Monte-Carlo error), squared later in
    # float64 (a float32 square overflows from ‖t‖ = 1.8e19), and no .item(): the values of one
    # pass are brought to the host together (one device sync per init, not one per site).
    return torch.linalg.vector_norm(t.detach())  # detached: no graph, no grad-mode switch


def _mean_squares(values: list[torch.Tensor | None], sizes: list[int]) -> list[float]:
    """``values[i]²/sizes[i]`` (norms) as Python floats, NaN where missing: one transfer."""
    present = [v for v in values if v is not None]
    # stacked in the run's dtype on the device (MPS has no float64), squared on the host
    dtype = present[0].dtype if present else torch.float64
    stacked = torch.stack([v.to(dtype) for v in present]) if present else torch.zeros(0)
    host = iter(stacked.cpu().double().square().tolist())
    out = []
    for v, n in zip(values, sizes, strict=True):
        value = math.nan if v is None else next(host)
        out.append(value / n if n else math.nan)  # an empty tensor has no mean square
    return out


class _Recorder:
    """Records, at every site event of a traced forward pass, the output's norm and hangs a
    gradient hook on the output tensor that records the gradient's."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.kinds: list[SiteKind] = []
        self.q: dict[int, torch.Tensor] = {}
        self.g: dict[int, torch.Tensor] = {}
        self.g_in: dict[int, torch.Tensor] = {}
        self.sizes: dict[int, int] = {}
        self.g_sizes: dict[int, int] = {}
        self.g_in_sizes: dict[int, int] = {}
        self.calls: dict[nn.Module, list[tuple[int, tuple[int, ...]]]] = {}
        self.groups: dict[nn.Module, list[tuple[int, ...]]] = {}
        self.wg: dict[int, torch.Tensor] = {}  # √(per-row weight gradient) of dense sites
        self.weight_norms: dict[int, torch.Tensor] = {}  # ‖∂L/∂W‖ of conv weights, by id(W)
        # measured-only sites with positions: (K, C) second moments between positions
        self.positions: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.grad_positions: dict[int, torch.Tensor] = {}
        self.trace: Trace | None = None
        self.graph: set[int] = set()
        self.position_totals: dict[int, list[Any]] = {}  # summed over inits, by event

    def start(self) -> None:
        """A new pass: the last pass's values are forgotten."""
        for d in (self.q, self.g, self.g_in, self.sizes, self.g_sizes, self.g_in_sizes, self.wg,
                  self.positions, self.grad_positions, self.groups, self.calls,
                  self.weight_norms):  # fmt: skip
            d.clear()

    def record(self, trace: Trace) -> None:
        """The first pass is being recorded by ``trace`` (call inside ``trace.recording``)."""
        self.trace = trace
        self.graph = set(trace.inputs)

    def on_event(self, event: Event, t: torch.Tensor) -> None:
        """An event of the first, recorded pass: classified, and measured if it is a site."""
        kind = classify(event, self.graph, event.in_shape).site
        if any(i in self.graph for i in event.inputs) or event.kind == "module":
            self.graph.update(event.outputs)
        if kind is None:
            return
        self.events.append(event)
        self.kinds.append(kind)
        x = self.trace.tensor(event.inputs[0]) if self.trace and event.inputs else None
        self.on_site(len(self.events) - 1, t, x)

    def on_site(self, k: int, t: torch.Tensor, x: torch.Tensor | None) -> None:
        """Site k's output ``t`` (and first input ``x``) on any pass: its norm, and hooks for
        its gradient's (later passes are replayed: :meth:`Trace.replaying`)."""
        kind = self.kinds[k]
        self.q[k] = _norm(t)
        self.sizes[k] = t.numel()
        if t.requires_grad:
            t.register_hook(lambda grad, k=k: self._grad(self.g, self.g_sizes, k, grad))
            if kind == "dense" and x is not None and x.shape[:-1] == t.shape[:-1]:
                xr = x.detach().square().mean(dim=-1)  # ms(x_r) per row
                t.register_hook(lambda grad, k=k, xr=xr: self._row_wgrad(k, grad, xr))
        if kind == "measured" and t.dim() >= 3:
            self.positions[k] = position_moments(t.detach())
        module = self.events[k].module
        if kind == "measured" and module is not None:
            pending = self.groups.get(module)
            group = pending.pop() if pending else (0,)
            self.calls.setdefault(module, []).append((k, group))

    def _grad(
        self, store: dict[int, torch.Tensor], sizes: dict[int, int], k: int, grad: torch.Tensor
    ) -> None:
        store[k] = _norm(grad)
        sizes[k] = grad.numel()

    def weight_hook(self, w: torch.Tensor) -> None:
        """A conv weight's gradient is complete: its norm now, while the gradient is in the
        cache (read after the pass, ResNet-18's 45 MB of weight gradients cost ~4 % of it)."""
        assert w.grad is not None
        self.weight_norms[id(w)] = _norm(w.grad)

    def _row_wgrad(self, k: int, grad: torch.Tensor, xr: torch.Tensor) -> None:
        # Per-row weight gradient of a dense layer: mean_r ms(δ_r)·ms(x_r) (module docstring),
        # kept as its square root (the statistics square every value on the host).
        g2 = grad.detach().square().mean(dim=-1)
        self.wg[k] = torch.sqrt((g2 * xr.to(g2.dtype)).mean())

    def pre_hook(self, module: nn.Module, args: Any) -> None:
        """Which positional inputs of a measured-only module are the same tensor as its first
        floating one: self-attention takes x as query, key and value, and the gradient x
        receives is the sum of the three. (Seen before the backward hook wraps each input in
        a tensor of its own.)"""
        first = next((a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()),
                     None)  # fmt: skip
        group = tuple(j for j, a in enumerate(args) if a is first) if first is not None else (0,)
        self.groups.setdefault(module, []).append(group)

    def backward_hook(self, module: nn.Module, grad_in: Any, grad_out: Any) -> None:
        """The gradient a measured-only module passes to its input (through it alone): the
        theory resumes after the module with the measured gain q̃(input)/q̃(output)."""
        calls = self.calls.get(module)
        if not calls:
            return
        k, group = calls.pop()  # backward visits the calls of a module in reverse order
        parts = [grad_in[j] for j in group
                 if j < len(grad_in) and isinstance(grad_in[j], torch.Tensor)]  # fmt: skip
        if not parts:
            parts = [t for t in grad_in if isinstance(t, torch.Tensor)][:1]
        if parts and parts[0].is_floating_point():
            g = parts[0]
            for t in parts[1:]:
                g = g + t
            self._grad(self.g_in, self.g_in_sizes, k, g)
            if k in self.positions and g.dim() >= 3:
                # the gradient it passes down, between the input's positions (one example)
                self.grad_positions[k] = position_moments(g.detach())[0]


def position_moments(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, C) of a (B, C, *positions) tensor x, averaged over channels: K_pp' = mean over
    examples of x_{b,c,p} x_{b,c,p'} and C_pp' = mean over pairs b ≠ b' of x_{b,c,p} x_{b',c,p'}
    (what the theory after a measured-only part inside a conv stack needs:
    ``Spatial.cov`` and ``Spatial.cross``)."""
    x = t.reshape(t.shape[0], t.shape[1], -1).double()
    B, C = x.shape[:2]
    k = torch.einsum("bcp,bcq->pq", x, x)
    s = x.sum(dim=0)
    cross = (s.T @ s - k) / max(B * (B - 1), 1) / C
    return k / (B * C), cross


def _measured_modules(model: nn.Module) -> list[nn.Module]:
    # Leaf modules the theory may not cover (the outermost ones): their input gradients.
    out: list[nn.Module] = []
    inside: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside) or m is model:
            continue
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            continue  # their input is token ids: no gradient to pass down
        if site_kind(m) == "measured" or isinstance(m, AVG_POOLS):
            out.append(m)
            inside.append(name)
    return out


def _output_gradient(out: torch.Tensor, loss: Loss, oq: float) -> torch.Tensor:
    """The scalar whose backward pass is measured."""
    if loss is None:
        # δ^L ~ N(0, output_grad_q), independent of the forward pass (Schoenholz et al. 2017).
        delta = torch.randn(out.shape, dtype=out.dtype, device=out.device) * math.sqrt(oq)
        return (out * delta).sum()
    if loss == "mse":
        # ℓ = ½ Σ_b ‖h_b − y_b‖², y ~ N(0, output_grad_q): as numeric.simulate(loss="mse").
        y = torch.randn(out.shape, dtype=out.dtype, device=out.device) * math.sqrt(oq)
        return 0.5 * (out - y).square().sum()
    raise AssertionError(loss)


def _check_loss(loss: object) -> Loss:
    if loss is None or loss == "mse" or callable(loss):
        return loss
    raise GradmathError(
        f"`loss` (={loss!r}) must be None (a Gaussian output gradient), 'mse', or a function "
        "output -> scalar tensor."
    )


def _seeds(seed: int, n: int) -> list[int]:
    # One 63-bit torch seed per init from numpy's SeedSequence: independent streams, and the
    # same init k whatever n_inits is.
    root = np.random.SeedSequence(seed)
    return [int(s.generate_state(2, np.uint32).astype(np.uint64) @ [1, 2**32]) >> 1
            for s in root.spawn(n)]  # fmt: skip


def measure(
    model: nn.Module,
    inputs: Any,
    *,
    n_inits: int = 16,
    loss: Loss = None,
    seed: int = 0,
    init: InitFn | None = None,
    dtype: torch.dtype | None = None,
    output_grad_q: float = 1.0,
) -> Measurement:
    """Per-site second moments of ``model`` over ``n_inits`` independent initialisations.

    Args:
        model: any ``torch.nn.Module``; it is left exactly as found (module docstring).
        inputs: one tensor, a tuple of positional tensors, or a dict of keyword tensors (e.g.
            ``{"input_ids": ids}``); kept fixed across inits. Floating inputs are cast to
            ``dtype``; all are moved to the model's device.
        n_inits: independent re-initialisations N (>= 2 for a standard error).
        loss: ``None``: backpropagate δ ~ N(0, ``output_grad_q``) from the output (the
            theory's condition); ``"mse"``: ½Σ‖h − y‖² with y ~ N(0, ``output_grad_q``); or a
            function of the model's output returning a scalar tensor.
        seed: init k uses torch seed k of ``SeedSequence(seed)`` inside ``torch.random.fork_rng``
            (so the caller's RNG state is untouched and results are reproducible).
        init: ``None`` (every module's ``reset_parameters``; a Hugging Face model's
            ``_init_weights``) or a function ``model -> None`` that redraws every parameter.
            With ``None``, nn.ConvNd layers whose ``reset_parameters`` is PyTorch's default
            are redrawn from that same U(±1/√fan_in) by AES-128 in counter mode (one key per
            tensor from init k's seed; threads: ``torch.get_num_threads()``), in about a quarter of
            the time of torch's mt19937 on ResNet-18 (``gradmath.torch._defaults``), and, when
            torch's threads leave a core idle, during the previous init's passes
            (``DRAW_AHEAD``).
        dtype: ``torch.float32`` or ``torch.float64`` to run in (``None``: the model's own).
        output_grad_q: E[δ²] of the output gradient (``loss=None``) or the target variance.
    """
    model = check_model(model)
    n = check_positive_int("n_inits", n_inits, minimum=2)
    loss = _check_loss(loss)
    seed = check_seed(seed)
    init = check_init(init)
    dtype = check_dtype(dtype)
    oq = check_positive("output_grad_q", output_grad_q)
    device, model_dtype = model_device_dtype(model)
    run_dtype = dtype or model_dtype
    # Under a caller's torch.inference_mode nothing would record a graph, and parameters saved
    # and restored there would come back as inference tensors that training refuses: the probe
    # runs outside it (inputs made in inference mode are copied, as autograd requires).
    with torch.inference_mode(False):
        x = convert_inputs(inputs, device, run_dtype, copy_inference=True)
        B = batch_size(x)
        rec = _Recorder()
        per_init = _run(model, x, rec, n, loss, seed, init, dtype, oq, device, B)
    return _summarise(rec, per_init, x, B, n, loss, oq, run_dtype, device, seed, model)


def _run(
    model: nn.Module,
    x: Any,
    rec: _Recorder,
    n: int,
    loss: Loss,
    seed: int,
    init: InitFn | None,
    dtype: torch.dtype | None,
    oq: float,
    device: torch.device,
    B: int,
) -> list[list[tuple[float, float, float, float]]]:
    """The n re-initialised, traced forward and backward passes; the model is restored."""
    per_init: list[list[tuple[float, float, float, float]]] = []
    hooked = _measured_modules(model)
    # register_full_backward_hook marks a module for good (a later register_backward_hook on it
    # would be refused): the marks are put back with the hooks.
    marks = [(m, m.__dict__.get("_is_full_backward_hook", _ABSENT)) for m in hooked]
    with preserved(model):
        if dtype is not None:
            model.to(dtype)
        params = list(model.parameters())
        for p in params:
            p.requires_grad_(True)  # frozen parameters too: their gradients are measured
        handles = []
        seeds = _seeds(seed, n)
        ahead = DrawAhead.plan(model, init, seeds) if _draw_ahead() else None
        try:
            handles = [m.register_full_backward_hook(rec.backward_hook) for m in hooked]
            handles += [m.register_forward_pre_hook(rec.pre_hook) for m in hooked]
            convs = {id(w): w for m in model.modules()
                     if site_kind(m) == "conv" and (w := weight_of(m)) is not None}  # fmt: skip
            handles += [w.register_post_accumulate_grad_hook(rec.weight_hook)
                        for w in convs.values()]  # fmt: skip
            with ahead or contextlib.nullcontext():
                _passes(model, x, rec, seeds, init, ahead, params, loss, oq, device, B, per_init)
        finally:
            for h in handles:
                h.remove()
            for m, mark in marks:
                if mark is _ABSENT:
                    m.__dict__.pop("_is_full_backward_hook", None)
                else:
                    m.__dict__["_is_full_backward_hook"] = mark
    return per_init


@contextlib.contextmanager
def _seeded(device: torch.device, s: int) -> Iterator[None]:
    """Init k's RNG context for a model on ``device``: torch's generators seeded with ``s``
    inside, the caller's states restored after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if device.type == "cpu":
            # torch.manual_seed would also queue the seed, with a Python stack trace, for
            # every accelerator not yet initialised (~0.2 ms per init)
            torch.default_generator.manual_seed(s)
        else:
            torch.manual_seed(s)
        yield


def _passes(
    model: nn.Module,
    x: Any,
    rec: _Recorder,
    seeds: list[int],
    init: InitFn | None,
    ahead: DrawAhead | None,
    params: list[nn.Parameter],
    loss: Loss,
    oq: float,
    device: torch.device,
    B: int,
    per_init: list[list[tuple[float, float, float, float]]],
) -> None:
    """Init k: reinitialise with seed ``seeds[k]`` (its default conv weights drawn ahead where
    ``ahead`` is given), one traced forward and one backward pass, its values to ``per_init``."""
    n = len(seeds)
    positions = rec.position_totals
    trace = Trace(model, rec.on_event)
    with trace.hooked():
        for k, s in enumerate(seeds):
            with _seeded(device, s):
                if ahead is not None:
                    ahead.swap_in(k)
                reinitialise(model, init, s, predrawn=ahead is not None)
                for p in params:
                    p.grad = None
                with torch.enable_grad():
                    rec.start()
                    if k == 0:
                        with trace.recording(x):
                            rec.record(trace)
                            out = call(model, x)
                        trace.forget_tensors()
                    else:  # the same data flow (checked): only the sites are reported
                        with trace.replaying([e.index for e in rec.events], rec.on_site):
                            out = call(model, x)
                    t = first_tensor(out)
                    objective = loss(out) if callable(loss) else _output_gradient(t, loss, oq)
                    if not isinstance(objective, torch.Tensor) or objective.numel() != 1:
                        raise GradmathError("`loss` must return a scalar tensor.")
                    with warnings.catch_warnings():
                        # a measured module whose inputs need no gradient (token ids)
                        warnings.filterwarnings("ignore", "Full backward hook is firing")
                        objective.backward()
            per_init.append(_collect(rec, B))
            for j, (kk, cc) in rec.positions.items():
                acc = positions.setdefault(j, [0.0, 0.0, 0.0])
                acc[0] += kk.cpu().numpy() / n
                acc[1] += cc.cpu().numpy() / n
                if j in rec.grad_positions:
                    gk = rec.grad_positions[j].cpu().numpy()
                    acc[2] += gk / max(float(np.mean(np.diagonal(gk))), 1e-300) / n


def _collect(rec: _Recorder, B: int) -> list[tuple[float, float, float, float]]:
    # The theory's weight gradient is per example of the layer: a row of a dense layer's
    # (…, features) input (batch × positions for a sequence), a whole example for a conv.
    m = len(rec.events)
    rows = [B if kind == "conv" else max(1, math.prod(e.shape[:-1]))
            for e, kind in zip(rec.events, rec.kinds, strict=True)]  # fmt: skip
    values: list[torch.Tensor | None] = []
    sizes: list[int] = []
    for store, size in ((rec.q, rec.sizes), (rec.g, rec.g_sizes), (rec.g_in, rec.g_in_sizes)):
        values += [store.get(k) for k in range(m)]
        sizes += [size.get(k, 0) for k in range(m)]
    for k, event in enumerate(rec.events):
        if k in rec.wg:  # a dense layer's per-row estimate (module docstring)
            values.append(rec.wg[k])
            sizes.append(1)
            continue
        w = weight_of(event.module) if event.module is not None else None
        g = None if w is None else w.grad
        hot = rec.weight_norms.get(id(w))
        values.append(None if g is None else _norm(g) if hot is None else hot)
        sizes.append(0 if g is None else g.numel() * rows[k])
    flat = _mean_squares(values, sizes)
    q, g_out, g_in, wg = (flat[j * m : (j + 1) * m] for j in range(4))
    for k, event in enumerate(rec.events):
        if not math.isfinite(q[k]):
            raise GradmathError(
                f"The output of {event.name!r} is not finite at initialisation; "
                "gradmath.torch.find_nonfinite(model, inputs) names where it starts."
            )
    return list(zip(q, g_out, wg, g_in, strict=True))


def _log(v: float) -> float:
    if math.isnan(v):
        return math.nan
    return math.log(v) if v > 0 else -math.inf


def _summarise(
    rec: _Recorder,
    per_init: list[list[tuple[float, float, float, float]]],
    x: Any,
    B: int,
    n: int,
    loss: Loss,
    oq: float,
    dtype: torch.dtype,
    device: torch.device,
    seed: int,
    model: nn.Module,
) -> Measurement:
    counters: dict[str, int] = {}
    infos = []
    for event, kind in zip(rec.events, rec.kinds, strict=True):
        counters[kind] = counters.get(kind, 0) + 1
        shape = event.shape
        width = channels(shape, kind)
        w = weight_of(event.module) if event.module is not None else None
        infos.append(
            SiteInfo(
                name=f"{kind}{counters[kind]}",
                kind=kind,
                module=event.name,
                call=event.call,
                width=width,
                size=math.prod(shape[1:]) if shape else 1,
                weight_size=0 if w is None else int(w.numel()),
            )
        )
    m = len(rec.events)
    logs = np.array([[[_log(v[j]) for v in d] for d in per_init] for j in range(4)],
                    dtype=np.float64).reshape(4, n, m)  # fmt: skip
    stats = [log_mean_se(logs[j]) for j in range(4)]
    conditions: dict[str, Any] = {
        "n_networks": n,
        "batch": B,
        "input_q": input_q(x),
        "output_grad_q": oq if loss in (None, "mse") else None,
        "loss": loss if loss in (None, "mse") else "custom",
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "seed": seed,
        "training": model.training,
    }
    return Measurement(
        sites=tuple(infos),
        log_q=stats[0][0],
        log_grad_q=stats[1][0],
        log_wgrad_q=stats[2][0],
        log_q_se=stats[0][1],
        log_grad_q_se=stats[1][1],
        log_wgrad_q_se=stats[2][1],
        log_grad_in=stats[3][0],
        log_grad_in_se=stats[3][1],
        per_init=logs,
        conditions=conditions,
        positions=_positions(infos, rec.position_totals),
    )


def _positions(infos: list[SiteInfo], totals: dict[int, list[Any]]) -> dict[str, Any]:
    return {infos[k].name: tuple(np.asarray(v) for v in t) for k, t in totals.items()}
