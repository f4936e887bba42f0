"""What every gradmath.torch tool needs from a user's model: calling it, re-initialising it, and
leaving it exactly as it was found.

Private to :mod:`gradmath.torch`. Nothing here knows about theory or profiles.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import torch
from torch import nn

from gradmath.errors import GradmathError
from gradmath.torch._defaults import Draw, UniformDraw, default_draws, draw, touches_only_itself

Inputs = Any  # a tensor, a tuple of positional tensors, or a dict of keyword tensors
InitFn = Callable[[nn.Module], object]


def check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise GradmathError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    return model


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's first floating parameter (CPU/float32 else)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def call(model: nn.Module, inputs: Inputs) -> Any:
    """``model(*inputs)`` for a tuple, ``model(**inputs)`` for a dict, ``model(inputs)`` else."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def convert_inputs(
    inputs: Inputs, device: torch.device, dtype: torch.dtype | None, *, copy_inference: bool = False
) -> Inputs:
    """Move tensors to ``device``; cast floating ones to ``dtype`` (integer ids stay integers).
    ``copy_inference``: copy tensors made under ``torch.inference_mode`` (autograd cannot save
    them for backward); call it outside inference mode."""

    def one(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            if copy_inference and x.is_inference():
                x = x.clone()
            if x.is_floating_point() and dtype is not None:
                return x.to(device=device, dtype=dtype)
            return x.to(device=device)
        return x

    if isinstance(inputs, Mapping):
        return {k: one(v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(one(v) for v in inputs)
    if not isinstance(inputs, torch.Tensor):
        raise GradmathError(
            f"`inputs` must be a tensor, a tuple of tensors or a dict of tensors, got "
            f"{type(inputs).__name__}."
        )
    return one(inputs)


def batch_size(inputs: Inputs) -> int:
    """The leading dimension of the first tensor in ``inputs``."""
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    seq = values if isinstance(values, (tuple, list)) or isinstance(inputs, Mapping) else [inputs]
    for x in seq:
        if isinstance(x, torch.Tensor) and x.dim() >= 1:
            return int(x.shape[0])
    raise GradmathError("`inputs` holds no tensor with a batch dimension.")


def input_q(inputs: Inputs) -> float | None:
    """E[x²] of the first floating input tensor (the theory's input_q); None for token ids."""
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    seq = values if isinstance(inputs, (Mapping, tuple, list)) else [inputs]
    for v in seq:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return float(v.detach().double().square().mean())
    return None


def first_tensor(out: Any, what: str = "the model's output") -> torch.Tensor:
    """The tensor a module returned: itself, ``.logits``/``.last_hidden_state``, or the first
    tensor of a tuple, list or dict (Hugging Face models return ``ModelOutput`` dicts)."""
    if isinstance(out, torch.Tensor):
        return out
    for attr in ("logits", "last_hidden_state"):
        value = getattr(out, attr, None)
        if isinstance(value, torch.Tensor):
            return value
    items: Sequence[Any] = ()
    if isinstance(out, Mapping):
        items = list(out.values())
    elif isinstance(out, (tuple, list)):
        items = out
    for v in items:
        if isinstance(v, torch.Tensor):
            return v
    raise GradmathError(f"{what} holds no tensor (got {type(out).__name__}).")


class _Backup:
    """The values of some tensors, in one flat copy per (device, dtype).

    One large allocation instead of one per parameter: on CPU, glibc serves a block that large
    with its own mmap, away from the heap. With sixty-odd per-parameter clones in the heap, 8
    probed ResNet-18 passes took 110 000 page faults (system time worth a third of the passes);
    with the flat copy 11 000 (README, benchmarks/torch_probe.py)."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self.tensors = tensors
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        self.single: dict[int, torch.Tensor] = {}
        for i, t in enumerate(tensors):
            if t.layout == torch.strided and not t.is_quantized and t.device.type != "meta":
                groups.setdefault((t.device, t.dtype), []).append(i)
            elif t.device.type != "meta":
                self.single[i] = t.clone()
        self.flat = [(idx, torch.cat([tensors[i].detach().reshape(-1) for i in idx]))
                     for idx in groups.values()]  # fmt: skip

    def restore(self) -> None:
        """Copy the saved values back into the same tensors."""
        for idx, flat in self.flat:
            offset = 0
            for i in idx:
                t = self.tensors[i]
                n = t.numel()
                t.copy_(flat[offset : offset + n].view(t.shape))
                offset += n
        for i, saved in self.single.items():
            self.tensors[i].copy_(saved)


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore parameters, buffers, ``.grad``, ``requires_grad`` and train/eval mode on exit.

    Parameter objects keep their identity (an optimizer holding them still works), and so do
    their storages: each parameter gets its own data tensor back (``model.to(dtype)`` swaps in
    new ones) with its values copied back in, so a probe in float64 of a float32 model leaves
    a float32 model, and views of a weight stay views of it. Buffers likewise. ``.grad``
    tensors are kept (and their data: ``model.to(dtype)`` swaps it too; gradmath never
    accumulates into them: it sets ``.grad = None`` before its backward passes). Runs on errors
    too. Copies are made and put back outside ``torch.inference_mode`` (copies made inside
    would be inference tensors, which the model could not train with afterwards).
    """
    params = [p for _, p in model.named_parameters(remove_duplicate=True)]
    saved = [(p, p.data, p.grad, None if p.grad is None else p.grad.data, p.requires_grad)
             for p in params]  # fmt: skip
    buffers = [(m, n, b) for m in model.modules() for n, b in m.named_buffers(recurse=False)
               if b is not None]  # fmt: skip
    with torch.inference_mode(False):
        backup = _Backup([data for _, data, *_ in saved] + [b for _, _, b in buffers])
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        with torch.inference_mode(False), torch.no_grad():
            backup.restore()
            for p, data, grad, grad_data, flag in saved:
                p.data = data
                if grad is not None and grad_data is not None:
                    grad.data = grad_data
                p.grad = grad
                p.requires_grad_(flag)
            for m, n, b in buffers:
                setattr(m, n, b)
        for m, mode in modes:
            m.training = mode


def reinitialise(
    model: nn.Module, init: InitFn | None, seed: int | None = None, *, predrawn: bool = False
) -> None:
    """Draw fresh parameters: ``init(model)`` if given, else every module's own initialiser.

    A module's own initialiser is its ``reset_parameters()`` (every torch.nn layer), or
    ``_reset_parameters()`` (``nn.MultiheadAttention``, ``nn.Transformer``); for a Hugging Face
    model, its ``_init_weights`` (the init ``from_config`` ran) on every module. A module that holds
    parameters and has no initialiser at all is refused by name: its weights would stay the
    same across the "independent" draws and the standard errors would be wrong. With a
    ``seed``, modules whose ``reset_parameters`` is PyTorch's default for nn.ConvNd
    are drawn from that same distribution by :mod:`gradmath.torch._defaults` (AES-128-CTR
    streams of ``seed``, threaded) and the others by their own initialiser (torch's global
    generator, which the caller seeds). ``predrawn``: those draws are in place already
    (:class:`DrawAhead`); only the other initialisers run.
    """
    if init is not None:
        with torch.no_grad():
            init(model)
        return
    hf_init = getattr(model, "_init_weights", None)
    uncovered: list[str] = []
    with torch.no_grad():
        if callable(hf_init):
            # A Hugging Face model's own init (std = initializer_range, GPT-2's scaled residual
            # projections) is what from_config gives, not torch's defaults. Children first, as
            # HF's own ``apply`` does: GPT2MLP rescales its c_proj after Conv1D's plain draw.
            model.apply(hf_init)
            return
        pending: list[UniformDraw] = []
        drawn = 0
        for name, m in model.named_modules():
            draws = default_draws(m) if seed is not None else None
            if draws is not None:
                if not predrawn:
                    pending += draws
                continue
            own = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
            if callable(own):
                if pending and not touches_only_itself(m):
                    # an initialiser of unknown reach may read or redraw what is pending: draw
                    # that first, so the order of the resets is the model's own
                    draw(pending, seed, start=drawn)  # type: ignore[arg-type]
                    drawn, pending = drawn + len(pending), []
                own()
            elif any(True for _ in m.parameters(recurse=False)):
                uncovered.append(name or type(m).__name__)
        if pending:
            draw(pending, seed, start=drawn)  # type: ignore[arg-type]
    if uncovered:
        raise GradmathError(
            f"Modules {', '.join(uncovered[:5])}{' …' if len(uncovered) > 5 else ''} hold "
            "parameters but have no reset_parameters(); pass `init=` (a function that draws "
            "every parameter of the model) so that each draw is independent."
        )


def _idle() -> None:
    # The worker runs only on a core nothing else wants (Linux SCHED_IDLE): the passes keep
    # both cores when torch uses both, the worker takes what their gaps leave (README).
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class DrawAhead:
    """Draws init k + 1's default convolution weights (:mod:`gradmath.torch._defaults`) on a
    worker thread while init k's passes run, into a second set of buffers that the parameters
    are switched to (``p.data``) at the next init: the two sets alternate.

    The values are those of :func:`reinitialise` with the same seeds (the same streams, the
    tensors' places in the same order), so :meth:`plan` offers it only where drawing them early
    cannot change anything: no ``init`` function, no Hugging Face ``_init_weights``, every other
    initialiser one of torch's that sets only its own module's tensors, and every drawn weight
    owning its whole storage, shared with no other parameter or buffer. Costs a second copy of
    those weights; the first set is the parameters' own memory, which :func:`preserved` puts
    back. With one torch thread on a machine with two cores, the draw moves off the passes'
    critical path (wall time), not off the CPU (README, benchmarks/torch_probe.py).
    """

    def __init__(self, draws: list[UniformDraw], seeds: list[int]) -> None:
        self.bounds = [b for _, b in draws]
        self.params = [p for p, _ in draws]
        self.seeds = seeds
        spare: list[torch.Tensor] = []
        flats: dict[torch.dtype, torch.Tensor] = {}
        for dtype in {p.dtype for p in self.params}:  # one allocation per dtype (see _Backup)
            size = sum(p.numel() for p in self.params if p.dtype == dtype)
            flats[dtype] = torch.empty(size, dtype=dtype)
        offsets = dict.fromkeys(flats, 0)
        for p in self.params:
            o, n = offsets[p.dtype], p.numel()
            spare.append(flats[p.dtype][o : o + n].view(p.shape))
            offsets[p.dtype] = o + n
        self.sets = [[p.data for p in self.params], spare]
        self.pool = ThreadPoolExecutor(1, initializer=_idle)
        self.next: tuple[Draw, Future[None]] | None = None

    @classmethod
    def plan(cls, model: nn.Module, init: InitFn | None, seeds: list[int]) -> DrawAhead | None:
        """A :class:`DrawAhead` for these inits of ``model``, or ``None`` where drawing ahead
        could differ from :func:`reinitialise` (class docstring) or has nothing to draw."""
        if init is not None or callable(getattr(model, "_init_weights", None)) or len(seeds) < 2:
            return None
        draws: list[UniformDraw] = []
        for m in model.modules():  # reinitialise's order (named_modules)
            d = default_draws(m)
            own = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
            if d is not None:
                draws += d
            elif callable(own) and not touches_only_itself(m):
                return None  # it may read or set a weight drawn ahead (even a child's)
        drawn = [p for p, _ in draws]
        if not drawn or len({id(p) for p in drawn}) < len(drawn):
            return None
        others = [t for t in (*model.parameters(), *model.buffers())
                  if not any(t is p for p in drawn)]  # fmt: skip
        storages = [t.untyped_storage().data_ptr() for t in drawn]
        own = all(
            p.storage_offset() == 0 and p.untyped_storage().nbytes() == p.numel() * p.element_size()
            for p in drawn
        )
        shared = set(storages) & {t.untyped_storage().data_ptr() for t in others}
        if not own or shared or len(set(storages)) < len(storages):
            return None
        return cls(draws, seeds)

    def _job(self, k: int) -> Draw:
        return Draw(list(zip(self.sets[k % 2], self.bounds, strict=True)), self.seeds[k])

    def swap_in(self, k: int) -> None:
        """Init k's draws (seed ``seeds[k]``) become the parameters' values; the worker starts
        on init k + 1's. Call for k = 0, 1, ... in order, before the other initialisers. What
        the worker has not drawn yet, this thread draws beside it."""
        if self.next is None:
            first = self._job(k)
            self.next = first, self.pool.submit(first.run)
        job, pending = self.next
        job.run()
        pending.result()
        job.done()
        for p, t in zip(self.params, self.sets[k % 2], strict=True):
            p.data = t
        self.next = None
        if k + 1 < len(self.seeds):
            ahead = self._job(k + 1)
            self.next = ahead, self.pool.submit(ahead.run)

    def __enter__(self) -> DrawAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The worker writes into the parameters' own memory every other init: it must be done
        # before the caller restores them.
        if self.next is not None and kind is not None:
            self.next[0].todo.clear()  # an error: no need to finish the draw ahead
        self.pool.shutdown(wait=True)
        if self.next is not None and kind is None:
            self.next[1].result()  # an error in the last draw ahead is still an error


def check_init(init: object) -> InitFn | None:
    if init is not None and not callable(init):
        raise GradmathError(
            f"`init` (={init!r}) must be None (each module's reset_parameters) or a function "
            "model -> None that re-draws the parameters in place."
        )
    return init


def check_dtype(dtype: object) -> torch.dtype | None:
    if dtype is None or dtype in (torch.float32, torch.float64):
        return dtype
    raise GradmathError(f"`dtype` (={dtype!r}) must be None (the model's), torch.float32 or "
                        "torch.float64.")  # fmt: skip
