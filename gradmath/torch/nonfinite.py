"""Find the first module whose output or gradient becomes inf or NaN.

``torch.autograd.detect_anomaly`` answers the same question by recording a Python stack trace
for every operation in the forward pass and checking every backward function's output; it is
slow (the issue quotes 7–10×; ``benchmarks/torch_nonfinite.py`` measures it against this on one
model). gradmath checks only what a person debugging wants named: the output of every layer
(leaf modules and the torch functions called between them, as :mod:`gradmath.torch.trace`
sees them) in the forward pass, and the gradient arriving at each of those outputs in the
backward pass, with one ``isfinite`` reduction each.

The first non-finite value in execution order is reported with its qualified name, the phase
(``"forward"``: the layer's output; ``"backward"``: the loss gradient with respect to that
output, i.e. the first backward step that produced a non-finite value ran in the layer that
*consumes* this output), and the step (the number of forward passes the watcher had seen
before, so a training loop can run inside one ``with`` block). A non-finite input is reported
with phase ``"input"``; when the first non-finite output appears while some parameter is
already non-finite, that parameter is reported (phase ``"parameters"``) as the cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradmath.errors import GradmathError
from gradmath.torch._model import call, check_model, first_tensor
from gradmath.torch.trace import Event, Trace

__all__ = ["NonFinite", "NonFiniteWatch", "find_nonfinite"]


@dataclass(frozen=True)
class NonFinite:
    """Where a non-finite value first appeared.

    ``name``: qualified module name, or ``scope.function`` for a torch function called outside
    a leaf module (e.g. ``"block.__mul__"``); ``phase``: ``"parameters"``, ``"forward"`` or
    ``"backward"``; ``step``: forward passes seen before it (0 for the first); ``n_nan``,
    ``n_inf``: counts in the offending tensor; ``shape``: its shape.
    """

    name: str
    phase: str
    step: int
    n_nan: int
    n_inf: int
    shape: tuple[int, ...]

    def __str__(self) -> str:
        what = {
            "input": "the model's",
            "parameters": "a parameter of",
            "forward": "the output of",
            "backward": "the gradient of the loss with respect to the output of",
        }[self.phase]
        return (
            f"step {self.step}, {self.phase}: {what} {self.name!r} is not finite "
            f"({self.n_nan} NaN, {self.n_inf} ±inf of {math.prod(self.shape)} values)"
        )


def _bad(t: torch.Tensor) -> bool:
    # One reduction, no mask: a sum is finite when every entry is (inf and NaN propagate);
    # only a non-finite sum (or an overflowing one) pays for the exact elementwise check.
    if not t.is_floating_point():
        return False
    if bool(torch.isfinite(t.detach().sum())):
        return False
    return not bool(torch.isfinite(t).all())


def _counts(t: torch.Tensor) -> tuple[int, int]:
    return int(torch.isnan(t).sum()), int(torch.isinf(t).sum())


class NonFiniteWatch:
    """Context manager: watch every forward and backward pass of ``model`` run inside it.

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> _ = nn.init.ones_(model[0].weight)
    >>> with NonFiniteWatch(model) as watch:
    ...     model(torch.ones(1, 2)).sum().backward()
    ...     model(torch.tensor([[3e38, 3e38]])).sum().backward()   # 6e38 > float32's max
    >>> watch.first.name, watch.first.phase, watch.first.step
    ('0', 'forward', 1)

    ``first`` is ``None`` when everything stayed finite; a non-finite input is reported with
    phase ``"input"``. Hooks are removed on exit.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = check_model(model)
        self.first: NonFinite | None = None
        self.step = 0
        self._trace = Trace(self.model, self._on_event)
        self._cm: Any = None
        self._handle: Any = None

    def _found(self, name: str, phase: str, t: torch.Tensor) -> None:
        if self.first is None:
            n_nan, n_inf = _counts(t)
            self.first = NonFinite(name, phase, self.step, n_nan, n_inf, tuple(t.shape))

    def _on_event(self, event: Event, t: torch.Tensor) -> None:
        if self.first is not None:
            return
        if _bad(t):
            # Non-finite parameters explain a non-finite output; they are looked for only
            # now (scanning every parameter on every pass would cost more than the pass).
            for name, p in self.model.named_parameters():
                if _bad(p.detach()):
                    self._found(name, "parameters", p.detach())
                    return
            self._found(event.name, "forward", t)
        elif t.requires_grad:
            t.register_hook(self._grad_hook(event.name))

    def _grad_hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            if self.first is None and _bad(grad):
                self._found(name, "backward", grad)

        return hook

    def _start_pass(self, module: nn.Module, args: Any) -> None:
        if self.first is None:
            self._trace._paused = True  # these checks are not the model's operations
            try:
                self._check_start(args)
            finally:
                self._trace._paused = False

    def _check_start(self, args: Any) -> None:
        for t in args if isinstance(args, tuple) else ():
            if isinstance(t, torch.Tensor) and _bad(t):
                self._found("input", "input", t)
                return

    def _end_pass(self, module: nn.Module, args: Any, out: Any) -> None:
        self.step += 1

    def __enter__(self) -> NonFiniteWatch:
        self._cm = self._trace.active(())
        self._cm.__enter__()
        self._handles = [
            self.model.register_forward_pre_hook(self._start_pass),
            self.model.register_forward_hook(self._end_pass),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._trace.forget_tensors()
        self._cm.__exit__(*exc)


def find_nonfinite(
    model: nn.Module, inputs: Any, *, loss: Callable[[Any], torch.Tensor] | None = None
) -> NonFinite | None:
    """Run one forward and backward pass and name the first module whose output or gradient is
    inf/NaN (``None`` if all stay finite). ``loss``: a function of the output returning a
    scalar tensor (default: the sum of the output). Parameters and ``.grad`` are left as found.

    >>> class Overflow(nn.Module):
    ...     def forward(self, x):
    ...         return torch.exp(x.abs() + 100.0)   # e^100 > float32's max
    >>> net = nn.Sequential(nn.Linear(4, 4), Overflow(), nn.Linear(4, 1))
    >>> print(find_nonfinite(net, torch.ones(2, 4)))   # doctest: +ELLIPSIS
    step 0, forward: the output of '1.exp' is not finite (...)
    """
    model = check_model(model)
    if loss is not None and not callable(loss):
        raise GradmathError(f"`loss` (={loss!r}) must be None or a function output -> scalar.")
    grads = {p: p.grad for p in model.parameters()}
    for p in grads:
        p.grad = None  # backward would accumulate into the caller's .grad in place
    try:
        with NonFiniteWatch(model) as watch, torch.enable_grad():
            out = call(model, inputs)
            objective = loss(out) if loss is not None else first_tensor(out).sum()
            if objective.requires_grad:
                objective.backward()
    finally:
        for p, g in grads.items():
            p.grad = g
    return watch.first
