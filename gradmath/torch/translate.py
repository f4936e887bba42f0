"""Translate a PyTorch model into the network gradmath's theory describes.

:func:`translate` runs the model once on an example input under the tracer
(:mod:`gradmath.torch.trace`), reads every event with :func:`gradmath.torch.ops.classify`, and
follows the data flow: each tensor carries the *path* of operations from the input to it, a
residual addition joins two paths at their last common operation (the fork), so a block
``x + F(x)`` becomes ``Add(branch=F, shortcut=())`` and ResNet's downsampling block
``F(x) + BN(conv1×1(x))`` becomes ``Add(F, (conv, bn))``. Weight and bias variances are read
from the model's parameters (:mod:`gradmath.torch.weights`).

Where the theory stops. Operations without a mean-field rule (attention, embeddings,
max-pooling, average pooling over several positions, unknown modules) become
:class:`Measured` operations: sites whose output second moment, and the gradient factor across
them, are taken from measurement, never guessed. :meth:`Translation.segments` lists where
theory stops and where it starts again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gradmath.activations import Activation
from gradmath.errors import GradmathError
from gradmath.torch._model import (
    batch_size,
    call,
    check_model,
    convert_inputs,
    first_tensor,
    input_q,
    model_device_dtype,
    preserved,
)
from gradmath.torch.measure import channels
from gradmath.torch.ops import classify
from gradmath.torch.sites import is_attention
from gradmath.torch.trace import Event, tracing
from gradmath.torch.weights import (
    WeightReading,
    declared_variances,
    read_bias,
    read_weight,
)

__all__ = [
    "Act",
    "Add",
    "Conv",
    "Dense",
    "Factor",
    "Flatten",
    "MaxPool",
    "Measured",
    "Norm",
    "Pool",
    "Translation",
    "segments",
    "translate",
]


@dataclass(frozen=True, eq=False)
class Site:
    """A translated site: its gradmath name, kind, the module (or ``scope.function``) it is."""

    name: str
    kind: str
    module: str
    width: int
    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Dense:
    """A weight layer; ``tied`` names another module holding the same weight tensor (GPT-2's
    lm_head is the token embedding), whose gradient then also lands in this weight's."""

    site: Site
    weight: WeightReading
    sigma_b2: float
    bias_label: str
    tied: str = ""

    def describe(self) -> str:
        w = self.weight
        tied = f"; weight tied to {self.tied}" if self.tied else ""
        return (f"dense {w.fan_in}→{w.fan_out}, W ~ {w.label} (Var·fan_in = "
                f"{w.variance * w.fan_in:.4g}), bias {self.bias_label}{tied}")  # fmt: skip


@dataclass(frozen=True, eq=False)
class Conv:
    site: Site
    weight: WeightReading
    sigma_b2: float
    bias_label: str
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    groups: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def describe(self) -> str:
        w = self.weight
        k = "×".join(map(str, self.kernel))
        return (f"conv {self.in_shape[1]}→{self.out_shape[1]} ch, kernel {k}, stride "
                f"{self.stride}, padding {self.padding}; fan_in {w.fan_in}, W ~ {w.label} "
                f"(Var·fan_in = {w.variance * w.fan_in:.4g}), bias {self.bias_label}")  # fmt: skip


@dataclass(frozen=True, eq=False)
class Act:
    activation: Activation
    note: str = ""

    def describe(self) -> str:
        return f"activation {self.activation!r}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True, eq=False)
class Norm:
    """A normalisation; ``training``: batch statistics (else running ones, a batch norm in eval
    mode); ``running_default``: running mean 0 and variance 1, as at initialisation."""

    site: Site
    kind: str
    eps: float
    affine_default: bool
    training: bool = True
    running_default: bool = True

    def describe(self) -> str:
        if self.kind == "layernorm":
            what = f"layer norm (ε = {self.eps:g})"
        elif self.training:
            what = "batch norm (train-mode batch statistics)"
        else:
            what = "batch norm in eval mode (running statistics)"
        return what + ("" if self.affine_default else ", non-default γ/β")


@dataclass(frozen=True, eq=False)
class Factor:
    """Multiplies the second moment by ``factor`` (dropout in train mode: 1/(1 − p), with
    ``p`` given; a scalar multiplication by c: c²)."""

    factor: float
    what: str
    p: float | None = None

    def describe(self) -> str:
        return f"{self.what}: second moment × {self.factor:.4g}"


@dataclass(frozen=True, eq=False)
class Pool:
    """Average pooling (``nn.AvgPool1d/2d``, ``nn.AdaptiveAvgPool1d/2d``)."""

    site: Site
    module: nn.Module

    def describe(self) -> str:
        return f"average pooling ({type(self.module).__name__})"


@dataclass(frozen=True, eq=False)
class MaxPool:
    """Max-pooling (``nn.MaxPool1d/2d``, no dilation, floor mode)."""

    site: Site
    module: nn.Module

    def describe(self) -> str:
        return f"max-pooling ({type(self.module).__name__})"


@dataclass(frozen=True, eq=False)
class Flatten:
    """(batch, C, *positions) → (batch, C·∏positions): ``nn.Flatten``, ``torch.flatten``, views."""

    def describe(self) -> str:
        return "flatten"


@dataclass(frozen=True, eq=False)
class Add:
    """A residual join: the sum of ``branch`` and ``shortcut`` applied to the same input."""

    site: Site
    branch: tuple[Any, ...]
    shortcut: tuple[Any, ...]

    def describe(self) -> str:
        sc = "identity" if not self.shortcut else f"{len(self.shortcut)} ops"
        return f"residual sum: branch of {len(self.branch)} ops + shortcut ({sc})"


@dataclass(frozen=True, eq=False)
class Measured:
    """An operation the theory does not cover; its moments come from measurement.
    ``centred``: its output has mean 0 (attention ends in a zero-mean projection, embedding
    tables are zero-mean draws); else the mean is unknown to the theory."""

    site: Site
    note: str
    centred: bool = False

    def describe(self) -> str:
        return f"measured only: {self.note}"


Op = Dense | Conv | Act | Norm | Factor | Pool | MaxPool | Flatten | Add | Measured


@dataclass(frozen=True, eq=False)
class Translation:
    """A model as gradmath reads it: ``ops`` from input to output, every ``site`` in forward
    order (the rows of the profiles), and ``notes`` on what was approximated. ``input_q`` is
    E[x²] of the first floating input (None for token ids), ``input_width`` its features per
    position."""

    model_name: str
    ops: tuple[Op, ...]
    sites: tuple[Site, ...]
    input_q: float | None
    batch: int
    input_width: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    input_shape: tuple[int, ...] = ()

    @property
    def measured(self) -> tuple[Site, ...]:
        """The sites the theory does not cover."""
        return tuple(s for s in self.sites if s.kind == "measured")

    def segments(self) -> list[str]:
        """Where theory runs and where it stops, as sentences in forward order."""
        return segments((s.name, s.module, s.kind == "measured") for s in self.sites)

    def describe(self) -> str:
        """One line per operation on the path from input to output."""
        lines: list[str] = []

        def walk(ops: Sequence[Any], indent: str) -> None:
            for op in ops:
                site = getattr(op, "site", None)
                head = f"{site.name:<12} {site.module:<24}" if site else f"{'':<12} {'':<24}"
                lines.append(f"{indent}{head} {op.describe()}")
                if isinstance(op, Add):
                    lines.append(f"{indent}  branch:")
                    walk(op.branch, indent + "    ")
                    if op.shortcut:
                        lines.append(f"{indent}  shortcut:")
                        walk(op.shortcut, indent + "    ")

        walk(self.ops, "")
        return "\n".join(lines)


def segments(sites: Iterable[tuple[str, str, bool]]) -> list[str]:
    """Sentences saying where theory runs and where it stops, from (site name, module,
    measured only) in forward order.

    >>> segments([("dense1", "0", False), ("measured1", "1", True), ("dense2", "2", False)])
    ['theory: dense1', 'measured only: measured1 (1)', 'theory: dense2']
    """
    out: list[str] = []
    run: list[str] = []

    def close() -> None:
        if run:
            out.append("theory: " + (f"{run[0]} … {run[-1]}" if len(run) > 1 else run[0]))
            run.clear()

    for name, module, measured in sites:
        if measured:
            close()
            out.append(f"measured only: {name} ({module})")
        else:
            run.append(name)
    close()
    return out


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


@dataclass(frozen=True)
class _Model:
    """What reading one layer needs to know about the whole model."""

    owners: dict[int, list[str]]  # id(parameter) -> the modules holding it
    declared: tuple[float, ...]  # weight variances the model's own init declares


def _model_info(model: nn.Module) -> _Model:
    owners: dict[int, list[str]] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        for p in mod.parameters(recurse=False):
            owners.setdefault(id(p), []).append(name)
    return _Model(owners, declared_variances(model))


def _op_for(event: Event, site: Site | None, reading: Any, info: _Model) -> Op | None:
    role = reading.role
    m = event.module
    if role == "dense":
        assert m is not None and site is not None
        layout = "in_out" if type(m).__name__ == "Conv1D" else "out_in"
        w = read_weight(m.weight, layout, declared=info.declared)  # type: ignore[arg-type]
        bv, bl = read_bias(getattr(m, "bias", None), w.fan_in)
        others = [n for n in info.owners.get(id(m.weight), []) if n != event.name]
        return Dense(site, w, bv, bl, ", ".join(others))
    if role == "conv":
        assert isinstance(m, (nn.Conv1d, nn.Conv2d)) and site is not None
        w = read_weight(m.weight, declared=info.declared)
        bv, bl = read_bias(m.bias, w.fan_in)
        n = m.weight.dim() - 2
        pad = m.padding if isinstance(m.padding, str) else _tuple(m.padding, n)
        return Conv(site, w, bv, bl, _tuple(m.kernel_size, n), _tuple(m.stride, n),
                    pad, _tuple(m.dilation, n), int(m.groups),
                    tuple(event.in_shape or ()), tuple(event.shape))  # fmt: skip
    if role in ("batchnorm", "layernorm"):
        assert m is not None and site is not None
        gamma, beta = getattr(m, "weight", None), getattr(m, "bias", None)
        default = (gamma is None or bool((gamma == 1).all())) and (
            beta is None or bool((beta == 0).all())
        )
        rm, rv = getattr(m, "running_mean", None), getattr(m, "running_var", None)
        running = (rm is None or bool((rm == 0).all())) and (rv is None or bool((rv == 1).all()))
        training = bool(m.training) or rm is None  # no running statistics: batch statistics
        return Norm(site, role, float(getattr(m, "eps", 0.0)), default, training, running)
    if role == "activation":
        return Act(reading.activation, reading.note)
    if role in ("dropout", "scale"):
        if role == "dropout":
            return Factor(reading.factor, "dropout (train mode)", reading.p)
        return Factor(reading.factor, "scale")
    if role == "avgpool":
        assert m is not None and site is not None
        return Pool(site, m)
    if role == "maxpool":
        assert m is not None and site is not None
        return MaxPool(site, m)
    if role == "measured":
        assert site is not None
        centred = m is not None and (
            isinstance(m, (nn.Embedding, nn.EmbeddingBag)) or is_attention(m)
        )
        return Measured(site, reading.note or "no mean-field rule", centred)
    return None


def _flattens(a: tuple[int, ...] | None, b: tuple[int, ...]) -> bool:
    # (N, C, *positions) → (N, C·∏positions): a flatten (not a transformer's (B, T, D) views).
    return (a is not None and len(a) >= 3 and len(b) == 2 and a[0] == b[0]
            and b[1] == math.prod(a[1:]))  # fmt: skip


def _common_prefix(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x is not y:
            break
        n += 1
    return n


def _features(x: Any) -> int:
    # Features per example of the first input tensor: its last dim (1 for token ids of
    # shape (batch,)), channels for images.
    values = x.values() if isinstance(x, dict) else x if isinstance(x, tuple) else [x]
    for v in values:
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            if v.dim() == 4:
                return int(v.shape[1])
            return int(v.shape[-1]) if v.dim() >= 2 else 1
    return 1


def _example_shape(x: Any) -> tuple[int, ...]:
    # The shape of one example of the first input tensor ((C, H, W) for images).
    values = x.values() if isinstance(x, dict) else x if isinstance(x, tuple) else [x]
    for v in values:
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            return tuple(int(d) for d in v.shape[1:])
    return ()


def translate(model: nn.Module, example_input: Any) -> Translation:
    """Read ``model`` into gradmath's terms by running it once on ``example_input``
    (module docstring). The model is left as found (a train-mode forward would otherwise
    update batch-norm running statistics)."""
    model = check_model(model)
    device, dtype = model_device_dtype(model)
    x = convert_inputs(example_input, device, dtype)
    with preserved(model), torch.no_grad(), tracing(model, x) as trace:
        try:
            out = call(model, x)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise GradmathError(
                f"The model does not run on the example input: {str(exc).splitlines()[0]}"
            ) from exc
    out_id = id(first_tensor(out))
    info = _model_info(model)
    paths: dict[int, tuple[Any, ...]] = {i: () for i in trace.inputs}
    sites: list[Site] = []
    counters: dict[str, int] = {}
    notes: list[str] = []
    for event in trace.events:
        reading = classify(event, set(paths), event.in_shape)
        if reading.role == "ignore":
            continue
        ins = [paths[i] for i in event.inputs if i in paths]
        site = None
        kind = reading.site
        if kind is not None:
            counters[kind] = counters.get(kind, 0) + 1
            site = Site(f"{kind}{counters[kind]}", kind, event.name, channels(event.shape, kind),
                        tuple(event.shape))  # fmt: skip
            sites.append(site)
        if reading.note and reading.role != "measured":
            notes.append(f"{event.name}: {reading.note}")
        if reading.role == "residual":
            a, b = ins[0], ins[1]
            n = _common_prefix(a, b)
            branch, shortcut = (a[n:], b[n:]) if a[n:] else (b[n:], a[n:])
            path = (*a[:n], Add(site, branch, shortcut))  # type: ignore[arg-type]
        elif reading.role == "pass":
            path = ins[0] if ins else ()
            if _flattens(event.in_shape, event.shape):
                path = (*path, Flatten())
        else:
            base: tuple[Any, ...] = ins[0] if ins else ()
            for other in ins[1:]:
                base = base[: _common_prefix(base, other)]
            op = _op_for(event, site, reading, info)
            path = (*base, op) if op is not None else base
        for o in event.outputs:
            paths[o] = path
    trace.forget_tensors()
    return Translation(
        model_name=type(model).__name__,
        ops=paths.get(out_id, ()),
        sites=tuple(sites),
        input_q=input_q(x),
        batch=batch_size(x),
        input_width=_features(x),
        notes=tuple(dict.fromkeys(notes)),
        input_shape=_example_shape(x),
    )
