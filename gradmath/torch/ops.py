"""How each traced event reads to the theory: the one table both the probe and the translation use.

:func:`classify` maps an :class:`~gradmath.torch.trace.Event` to what it does to second moments:

- ``site`` kinds (:mod:`gradmath.torch.sites`): dense, conv, batchnorm, layernorm, residual (a
  sum of two tensors of the data flow) and measured (what the theory does not cover);
- ``activation``: an elementwise nonlinearity from gradmath's catalogue (with its parameters);
- ``dropout``: scales the second moment by 1/(1 − p) in train mode, nothing in eval mode;
- ``scale``: multiplication or division by a Python number c (second moment × c²);
- ``pass``: moves entries without changing their distribution (view, reshape, flatten,
  permute, transpose, contiguous, indexing, dtype casts, ``nn.Identity``, ``nn.Flatten``);
- ``measured``: anything else that combines tensors of the data flow (matmul, softmax, cat,
  ...): it is a site, measured only.

Average pooling is a site (``avgpool``): its output second moment E[x̄²] = (1/k²) Σ_{p,p'}
E[x_p x_p'] needs the covariance between positions, which gradmath's convolutional layers carry
(Xiao et al. 2018's covariance map, :mod:`gradmath.network.pooling`); PyTorch's ``ceil_mode``,
``count_include_pad=False`` and divisor overrides are measured only. Max-pooling (no dilation,
floor mode) is a site (``maxpool``), predicted by draws (:mod:`gradmath.network.maxpool`);
other max-pooling is measured only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn import functional as F

from gradmath.activations import Activation, activation
from gradmath.torch.sites import ADD_FUNCTIONS, SiteKind, site_kind
from gradmath.torch.trace import Event

__all__ = ["Reading", "classify"]

_PASS_FUNCTIONS = frozenset(
    {"view", "reshape", "flatten", "permute", "transpose", "contiguous", "__getitem__", "to",
     "float", "double", "type_as", "clone", "squeeze", "unsqueeze", "t", "detach", "split",
     "chunk", "unbind", "narrow", "expand", "expand_as", "view_as", "reshape_as", "movedim",
     "identity", "dropout" }  # dropout is handled below, listed so it is never "measured"
)  # fmt: skip

_TANH_GELU = "tanh approximation of GELU, read as the exact GELU"
_SCALE_FUNCTIONS = ("mul", "__mul__", "__rmul__", "mul_", "div", "__truediv__", "div_")

_ACT_FUNCTIONS = {
    "relu": "relu", "relu_": "relu", "tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid", "gelu": "gelu", "silu": "silu", "softplus": "softplus",
    "elu": "elu", "elu_": "elu", "selu": "selu", "selu_": "selu", "leaky_relu": "leaky_relu",
    "leaky_relu_": "leaky_relu", "hardtanh": "hard_tanh", "hardtanh_": "hard_tanh",
}  # fmt: skip

_HF_ACTS = {
    "GELUActivation": ("gelu", ""),
    "NewGELUActivation": ("gelu", _TANH_GELU),
    "GELUTanh": ("gelu", _TANH_GELU),
    "PytorchGELUTanh": ("gelu", _TANH_GELU),
    "SiLUActivation": ("silu", ""),
    "ReLUActivation": ("relu", ""),
}


@dataclass(frozen=True)
class Reading:
    """What one event does: ``role`` is a site kind, ``"activation"``, ``"dropout"``,
    ``"scale"``, ``"pass"`` or ``"ignore"`` (an event outside the data flow). ``activation``,
    ``factor`` (second-moment multiplier of dropout/scale), ``p`` (dropout's probability) and
    ``note`` as they apply."""

    role: str
    activation: Activation | None = None
    factor: float = 1.0
    note: str = ""
    p: float = 0.0  # dropout's drop probability

    @property
    def site(self) -> SiteKind | None:
        if self.role in ("dense", "conv", "batchnorm", "layernorm", "residual", "avgpool",
                         "maxpool", "measured"):  # fmt: skip
            return self.role  # type: ignore[return-value]
        return None


def _module_activation(m: nn.Module) -> Reading | None:
    def act(name: str, note: str = "", **params: Any) -> Reading:
        return Reading("activation", activation(name, **params), note=note)

    if isinstance(m, nn.ReLU):
        return act("relu")
    if isinstance(m, nn.LeakyReLU):
        if 0.0 <= m.negative_slope <= 1.0:
            return act("leaky_relu", slope=m.negative_slope)
        return Reading("measured", note=f"LeakyReLU slope {m.negative_slope} outside [0, 1]")
    if isinstance(m, nn.ELU):
        return act("elu", alpha=m.alpha)
    if isinstance(m, nn.SELU):
        return act("selu")
    if isinstance(m, nn.GELU):
        return act("gelu", _TANH_GELU if m.approximate == "tanh" else "")
    if isinstance(m, nn.SiLU):
        return act("silu")
    if isinstance(m, nn.Tanh):
        return act("tanh")
    if isinstance(m, nn.Sigmoid):
        return act("sigmoid")
    if isinstance(m, nn.Softplus):
        if m.beta == 1.0:
            return act("softplus", note="threshold ignored (linear above it, as softplus)")
        return Reading("measured", note=f"Softplus with beta {m.beta} is not in the catalogue")
    if isinstance(m, nn.Hardtanh) and not isinstance(m, nn.ReLU6):
        if (m.min_val, m.max_val) == (-1.0, 1.0):
            return act("hard_tanh")
        return Reading("measured", note=f"Hardtanh on [{m.min_val}, {m.max_val}]")
    hf = _HF_ACTS.get(type(m).__name__)
    if hf is not None:
        return act(hf[0], hf[1])
    return None


def _pool_positions(m: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    # Input positions averaged into one output: 1 means the pool moves nothing.
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        n_in = 1
        for a, b in zip(in_shape[2:], out_shape[2:], strict=False):
            n_in *= -(-a // b)
        return n_in
    k: Any = getattr(m, "kernel_size", 1)
    ks = (k,) if isinstance(k, int) else tuple(k)
    n = 1
    for v in ks:
        n *= int(v)
    if isinstance(m, nn.AvgPool2d) and isinstance(k, int):
        n = int(k) ** 2
    return n


def classify(event: Event, graph: set[int], in_shape: tuple[int, ...] | None = None) -> Reading:
    """What ``event`` does to second moments (module docstring). ``graph``: ids of tensors of
    the model's data flow so far; ``in_shape``: the shape of its first data-flow input."""
    n_graph = sum(i in graph for i in event.inputs)
    if event.kind == "module":
        m = event.module
        assert m is not None
        kind = site_kind(m)
        if kind is not None:
            return Reading(kind)
        if isinstance(m, (nn.Identity, nn.Flatten)):
            return Reading("pass")
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
            p = float(m.p)
            return (
                Reading("dropout", factor=1.0 / (1.0 - p), p=p)
                if m.training and p > 0
                else Reading("pass")
            )
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            return Reading("avgpool")
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
            if (
                m.count_include_pad
                and not m.ceil_mode
                and getattr(m, "divisor_override", None) is None
            ):
                return Reading("avgpool")
            k = _pool_positions(m, in_shape or event.shape, event.shape)
            return Reading(
                "measured",
                note=f"average pooling over {k} positions "
                "(ceil_mode, count_include_pad=False or a divisor override)",
            )
        act = _module_activation(m)
        if act is not None:
            return act
        return Reading("measured", note=f"{type(m).__name__} has no mean-field rule")
    if n_graph == 0:
        return Reading("ignore")
    fname = event.name.rsplit(".", 1)[-1]
    if fname in ADD_FUNCTIONS and n_graph >= 2:
        return Reading("residual")
    if fname in _ACT_FUNCTIONS and n_graph == 1:
        return _function_activation(event, _ACT_FUNCTIONS[fname])
    if fname == "dropout" or event.func is F.dropout:
        return _function_dropout(event)
    if fname in _PASS_FUNCTIONS:
        return Reading("pass")
    if fname in _SCALE_FUNCTIONS and n_graph == 1:
        c = _scalar(event.args)
        if c is not None:
            factor = c * c if "div" not in fname else 1.0 / (c * c)
            return Reading("scale", factor=factor)
    return Reading("measured", note=f"{fname} has no mean-field rule")


def _flat(args: Any) -> list[Any]:
    out: list[Any] = []
    for a in args if isinstance(args, tuple) else (args,):
        if isinstance(a, tuple):
            out.extend(_flat(a))
        elif isinstance(a, dict):
            out.extend(a.values())
        else:
            out.append(a)
    return out


def _scalar(args: Any) -> float | None:
    vals = [a for a in _flat(args) if isinstance(a, (int, float)) and not isinstance(a, bool)]
    return float(vals[0]) if len(vals) == 1 else None


def _kwargs(event: Event) -> dict[str, Any]:
    args = event.args
    if isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], dict):
        return args[1]
    return {}


def _function_activation(event: Event, name: str) -> Reading:
    kw = _kwargs(event)
    pos = [a for a in _flat(event.args[0] if event.args else ()) if a is not None]
    if name == "leaky_relu":
        slope = kw.get("negative_slope", pos[0] if pos else 0.01)
        return Reading("activation", activation("leaky_relu", slope=float(slope)))
    if name == "elu":
        alpha = float(kw.get("alpha", pos[0] if pos else 1.0))
        return Reading("activation", activation("elu", alpha=alpha))
    if name == "gelu" and kw.get("approximate", "none") == "tanh":
        return Reading("activation", activation("gelu"),
                       note=_TANH_GELU)  # fmt: skip
    if name == "softplus" and float(kw.get("beta", pos[0] if pos else 1.0)) != 1.0:
        return Reading("measured", note="softplus with beta != 1")
    if name == "hard_tanh":
        lo = kw.get("min_val", pos[0] if len(pos) > 0 else -1.0)
        hi = kw.get("max_val", pos[1] if len(pos) > 1 else 1.0)
        if (float(lo), float(hi)) != (-1.0, 1.0):
            return Reading("measured", note=f"hardtanh on [{lo}, {hi}]")
    return Reading("activation", activation(name))


def _function_dropout(event: Event) -> Reading:
    kw = _kwargs(event)
    pos = [a for a in _flat(event.args[0] if event.args else ()) if a is not None]
    p = float(kw.get("p", pos[0] if len(pos) > 0 else 0.5))
    training = bool(kw.get("training", pos[1] if len(pos) > 1 else True))
    if training and p > 0:
        return Reading("dropout", factor=1.0 / (1.0 - p), p=p)
    return Reading("pass")
