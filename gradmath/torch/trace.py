"""Trace a model by running it: which layers and operations the data flows through, in order.

gradmath needs the *data flow* of a model (what feeds what, where a residual branch rejoins
its input), not a program it could re-run. ``torch.fx.symbolic_trace`` gives that for simple
models but fails on most real ones (Hugging Face models branch on input shapes and config
flags), and ``transformers`` 5 removed its own fx tracer. So gradmath traces by execution, as
``torch.jit.trace`` does: it runs the model once on the example input with

- forward pre/post hooks on every *leaf* (a module gradmath translates as one piece: weight
  layers, normalisations, activations, dropout, pooling, flatten, and measured-only modules
  such as attention and embeddings), and
- a ``TorchFunctionMode`` that sees every torch function and tensor method called outside a
  leaf (residual additions, ``F.relu``, ``x.view``, scalar multiplications, ...),

and records each call as an :class:`Event` holding the identities of its input and output
tensors. The trace describes what ran for *this* input: control flow that depends on the input
is resolved, which is what a per-input profile wants. The same tracer runs inside
:func:`gradmath.torch.measure`, so the sites it measures are the sites the translation
predicts. A later pass of the same data flow can be *replayed* (:meth:`Trace.replaying`):
every call is checked against the recorded pass and only chosen events are reported, without
building events (a recorded pass costs ~5 % of a ResNet-18 pass in bookkeeping, a replayed one
a fraction of that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from gradmath.errors import GradmathError
from gradmath.torch.sites import site_kind

__all__ = ["LEAF_TYPES", "Event", "Trace", "is_leaf", "tracing"]

#: Parameter-free torch.nn modules translated as one piece.
LEAF_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Flatten,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)

#: Hugging Face activation modules (transformers.activations), by class name.
HF_ACTIVATIONS = ("GELUActivation", "NewGELUActivation", "SiLUActivation", "ReLUActivation",
                  "GELUTanh", "PytorchGELUTanh", "QuickGELUActivation")  # fmt: skip


def is_leaf(module: nn.Module) -> bool:
    """Whether the tracer records ``module`` as one event instead of looking inside it."""
    return (
        isinstance(module, LEAF_TYPES)
        or site_kind(module) is not None
        or type(module).__name__ in HF_ACTIVATIONS
    )


@dataclass(frozen=True)
class Event:
    """One call seen by the tracer.

    ``kind`` is ``"module"`` (a leaf module's forward) or ``"function"`` (a torch function or
    tensor method outside every leaf). ``name`` is the module's qualified name or the
    function's name; ``call`` counts earlier calls of the same module. ``inputs``/``outputs``
    are ids of tensors (inputs that are not tensors are kept in ``args`` as given, with tensors
    replaced by ``None``). ``shape`` is the first output's shape, ``in_shape`` the first
    input tensor's.
    """

    index: int
    kind: str
    name: str
    call: int
    module: nn.Module | None
    func: Any
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    shape: tuple[int, ...]
    args: tuple[Any, ...]
    in_shape: tuple[int, ...] | None = None


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _tensors(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    else:
        for attr in ("logits", "last_hidden_state"):
            v = getattr(obj, attr, None)
            if isinstance(v, torch.Tensor):
                yield v


def _plain(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return None
    if isinstance(obj, (tuple, list)):
        return tuple(_plain(v) for v in obj)
    return obj


def func_name(func: Any) -> str:
    """``add``, ``relu``, ``__add__``, ``view``, ... for torch functions and tensor methods."""
    name = getattr(func, "__name__", None)
    return str(name) if name is not None else repr(func)


def _call_name(func: Any, scope: str) -> str:
    """A function event's name: the container it ran in (``model`` at the top), then the
    function's (``layer1.0.__iadd__``)."""
    return f"{scope or 'model'}.{func_name(func)}"


class Trace:
    """The events of one forward pass, and the tensors behind their ids (kept alive, so that an
    id is never reused during the pass)."""

    def __init__(self, model: nn.Module, on_event: Callable[[Event, Any], None] | None = None):
        self.model = model
        self.events: list[Event] = []
        self.inputs: tuple[int, ...] = ()
        self.output: tuple[int, ...] = ()
        self.on_event = on_event
        self._keep: dict[int, torch.Tensor] = {}
        self._depth = 0
        self._paused = False
        self._calls: dict[int, int] = {}
        self._names = {m: n for n, m in model.named_modules()}
        self._leaves = [m for m in self._names if is_leaf(m) and m is not model]
        self._scope: list[str] = []
        self._on = False  # inside recording() or replaying()
        # what each recorded event was (its module, or its function and scope), for replaying
        self._idents: list[Any] = []
        self._replay: dict[int, int] | None = None  # event index -> site number, in replaying()
        self._on_site: Callable[[int, torch.Tensor, torch.Tensor | None], None] | None = None
        self._n = 0

    # --------------------------------------------------------------- recording
    def _ids(self, obj: Any) -> tuple[int, ...]:
        ts = list(_tensors(obj))
        self._keep.update((id(t), t) for t in ts)
        return tuple(id(t) for t in ts)

    def record(self, kind: str, name: str, module: nn.Module | None, func: Any,
               args: Any, out: Any) -> None:  # fmt: skip
        outs = list(_tensors(out))
        if not outs:
            return
        self._idents.append(module if module is not None else (func, self._scope[-1]))
        key = id(module) if module is not None else -1
        call = self._calls.get(key, 0) if module is not None else 0
        if module is not None:
            self._calls[key] = call + 1
        event = Event(
            index=len(self.events),
            kind=kind,
            name=name,
            call=call,
            module=module,
            func=func,
            inputs=self._ids(args),
            outputs=self._ids(out),
            shape=tuple(outs[0].shape),
            args=_plain(args),
            in_shape=next((tuple(t.shape) for t in _tensors(args)), None),
        )
        self.events.append(event)
        if self.on_event is not None:
            self._paused = True
            try:
                self.on_event(event, outs[0])
            finally:
                self._paused = False

    def _pre(self, module: nn.Module, args: Any) -> None:
        if self._on:
            self._depth += 1

    def _post(self, module: nn.Module, args: Any, out: Any) -> None:
        if not self._on:
            return
        self._depth -= 1
        if self._depth == 0 and not self._paused:
            if self._replay is not None:
                self._step(module, args, out)
            else:
                self.record("module", self._names[module], module, None, args, out)

    def _step(self, ident: Any, args: Any, out: Any) -> None:
        # One call of a replayed pass: the same module, or the same function in the same scope,
        # as the recorded event at this place; reported if it is a chosen one.
        first = next(_tensors(out), None)
        if first is None:
            return
        i = self._n
        self._n += 1
        if i >= len(self._idents) or (self._idents[i] is not ident and self._idents[i] != ident):
            ran = self._names[ident] if isinstance(ident, nn.Module) else _call_name(*ident)
            self._departed(i, repr(ran))
        assert self._replay is not None and self._on_site is not None
        j = self._replay.get(i)
        if j is not None:
            self._paused = True
            try:
                self._on_site(j, first, next(_tensors(args), None))
            finally:
                self._paused = False

    def _departed(self, i: int, ran: str) -> None:
        was = repr(self.events[i].name) if i < len(self.events) else "the end of the pass"
        raise GradmathError(
            f"The model ran different layers on this pass than on the first (event {i}: {ran} "
            f"where the first pass had {was}); gradmath measures models whose data flow does "
            "not depend on their parameters."
        )

    def _enter(self, name: str) -> Callable[[nn.Module, Any], None]:
        def hook(module: nn.Module, args: Any) -> None:
            if self._on:
                self._scope.append(name)

        return hook

    def _leave(self, module: nn.Module, args: Any, out: Any) -> None:
        # A forward hook that returns a value replaces the output: return None.
        if self._on and self._scope:
            self._scope.pop()

    @contextmanager
    def active(self, inputs: Any) -> Iterator[None]:
        """Hooks on the leaves and the function mode, for one forward pass; removed on exit."""
        with self.hooked(), self.recording(inputs):
            yield

    @contextmanager
    def hooked(self) -> Iterator[None]:
        """The hooks on the leaves and containers, kept for any number of :meth:`recording`
        passes (registering and removing them costs ~2 ms per pass on ResNet-18); they record
        nothing outside a recording pass."""
        handles = []
        try:
            for m in self._leaves:
                handles.append(m.register_forward_pre_hook(self._pre))
                handles.append(m.register_forward_hook(self._post))
            leaves = set(self._leaves)
            for m, n in self._names.items():
                if m not in leaves:  # containers: the scope a function event is named after
                    handles.append(m.register_forward_pre_hook(self._enter(n)))
                    handles.append(m.register_forward_hook(self._leave))
            yield
        finally:
            for h in handles:
                h.remove()

    @contextmanager
    def recording(self, inputs: Any) -> Iterator[None]:
        """One forward pass, recorded from a clean start (events, call counts): the function
        mode is on inside the block; needs :meth:`hooked` around it."""
        self.events = []
        self._idents = []
        self._calls.clear()
        self.inputs = self._ids(inputs)
        with self._pass():
            yield

    @contextmanager
    def _pass(self) -> Iterator[None]:
        # One forward pass with the hooks live and the function mode on; a clean state after.
        self._on = True
        try:
            with _Mode(self):
                yield
        finally:
            self._on = False
            self._depth = 0
            self._scope.clear()

    @contextmanager
    def replaying(
        self,
        sites: list[int],
        on_site: Callable[[int, torch.Tensor, torch.Tensor | None], None],
    ) -> Iterator[None]:
        """A later forward pass of the data flow :meth:`recording` saw last: each call is
        checked against the recorded event at its place (the same leaf module, or the same
        function in the same scope; :class:`GradmathError` where they differ) and the events
        at indices ``sites`` are reported as ``on_site(j, output, first_input)``, j their
        place in ``sites``. Builds no :class:`Event` and keeps no tensor; needs :meth:`hooked`
        around it."""
        self._replay = {i: j for j, i in enumerate(sites)}
        self._on_site = on_site
        self._n = 0
        try:
            with self._pass():
                yield
            if self._n != len(self._idents):
                self._departed(self._n, "the end of the pass")
        finally:
            self._replay = None
            self._on_site = None

    def tensor(self, ident: int) -> torch.Tensor | None:
        """The tensor behind an id seen in this pass (until :meth:`forget_tensors`)."""
        return self._keep.get(ident)

    def forget_tensors(self) -> None:
        """Drop the references that kept ids unique (after the pass)."""
        self._keep.clear()


class _Mode(TorchFunctionMode):
    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tr = self.trace
        # Only calls made inside the model's forward (a container scope is open), outside leaves.
        if tr._depth == 0 and tr._scope and not tr._paused and not _is_getter(func):
            if tr._replay is not None:
                tr._step((func, tr._scope[-1]), (args, kwargs), out)
            else:
                tr.record("function", _call_name(func, tr._scope[-1]), None, func, (args, kwargs),
                          out)  # fmt: skip
        return out


def _is_getter(func: Any) -> bool:
    # Attribute reads (x.shape, x.dtype, x.device, ...) come through as property getters.
    return func_name(func) in ("__get__", "size", "dim", "numel", "__len__", "is_floating_point")


@contextmanager
def tracing(model: nn.Module, inputs: Any,
            on_event: Callable[[Event, Any], None] | None = None) -> Iterator[Trace]:  # fmt: skip
    """Record the events of the forward pass(es) run inside the block."""
    trace = Trace(model, on_event)
    with trace.active(inputs):
        yield trace
