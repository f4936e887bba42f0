"""The architecture spec that theory and simulation share, so they always describe one network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError, check_positive_int
from gradmath.initializers import Initializer, initializer

__all__ = ["MLP", "Layer"]


class Layer(NamedTuple):
    """Layer l (1-based): h^l = W^l x^{l−1} + b^l with W^l of shape (fan_out, fan_in)."""

    number: int
    fan_in: int
    fan_out: int
    activation: Activation
    init: Initializer
    weight_var: float
    bias_var: float

    @property
    def sigma_w2(self) -> float:
        """fan_in · Var[W^l], the forward multiplier of the length map (Poole et al. 2016)."""
        return self.fan_in * self.weight_var


def _per_layer(
    name: str, value: Any, depth: int, single: type | tuple[type, ...]
) -> tuple[Any, ...]:
    if isinstance(value, single):
        return (value,) * depth
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != depth:
            raise GradmathError(
                f"`{name}` has {len(value)} entries but the network has {depth} layers; "
                "give one value for all layers or one per layer."
            )
        return tuple(value)
    raise GradmathError(f"`{name}` (={value!r}) must be a single value or one per layer.")


@dataclass(frozen=True)
class MLP:
    """A fully connected network at initialisation.

    ``widths = (n_0, n_1, …, n_L)``, input first. Layer l maps x^{l−1} to the pre-activation
    h^l = W^l x^{l−1} + b^l and x^l = φ_l(h^l) (theory.md, "Network and notation");
    W^l_ij has the variance of ``init[l−1]`` at (fan_in, fan_out) = (n_{l−1}, n_l) and
    b^l_i ~ N(0, bias_var[l−1]).

    ``activation``, ``init`` and ``bias_var`` take one value for every layer or a sequence of
    L values; names are looked up in the catalogues. After construction they are tuples of
    length L of :class:`Activation`, :class:`Initializer` and float.

    ``residual=α`` makes layers 2 … L residual blocks h^l = h^{l−1} + α (W^l φ(h^{l−1}) + b^l)
    (Yang & Schoenholz 2017); layer 1 stays the plain map from the input, and the hidden
    widths n_1 … n_L must be equal. ``batchnorm=True`` normalises each pre-activation over the
    batch (γ = 1, β = 0) before φ (Yang et al. 2019). ``batch_size`` is the B of that
    normalisation in theory (``None``: the large-batch limit).

    >>> net = MLP((784, 256, 256, 10), activation="relu", init="he_normal")
    >>> net.depth, net.layers[0].fan_in, round(net.layers[1].sigma_w2, 12)
    (3, 784, 2.0)
    """

    widths: tuple[int, ...]
    activation: tuple[Activation, ...] | Activation | str | Sequence[Activation | str] = "relu"
    init: tuple[Initializer, ...] | Initializer | str | Sequence[Initializer | str] = "he_normal"
    bias_var: tuple[float, ...] | float | Sequence[float] = 0.0
    residual: float | None = None
    batchnorm: bool = False
    batch_size: int | None = None

    def __post_init__(self) -> None:
        widths = self.widths
        if isinstance(widths, (int, str)) or not isinstance(widths, Sequence) or len(widths) < 2:
            raise GradmathError(
                f"`widths` (={widths!r}) must list at least two layer sizes, input first, "
                "e.g. (784, 256, 10)."
            )
        widths = tuple(check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))
        depth = len(widths) - 1
        acts = _per_layer("activation", self.activation, depth, (str, Activation))
        inits = _per_layer("init", self.init, depth, (str, Initializer))
        biases = _per_layer("bias_var", self.bias_var, depth, (int, float))
        for i, b in enumerate(biases):
            if isinstance(b, bool) or not (math.isfinite(float(b)) and float(b) >= 0):
                raise GradmathError(f"`bias_var` (={b!r}) must be finite and >= 0 (layer {i + 1}).")
        if self.residual is not None:
            a = self.residual
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a):
                raise GradmathError(f"`residual` (={a!r}) must be a finite branch scale α or None.")
            if len(set(widths[1:])) != 1:
                raise GradmathError(
                    f"A residual net needs equal hidden widths n_1 = … = n_L, got {widths[1:]}."
                )
        if not isinstance(self.batchnorm, bool):
            raise GradmathError(f"`batchnorm` (={self.batchnorm!r}) must be True or False.")
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 2):
            raise GradmathError(
                f"`batch_size` (={b!r}) must be an integer >= 2 (batch statistics need two "
                "examples) or None (the large-batch limit)."
            )
        object.__setattr__(self, "widths", tuple(widths))
        object.__setattr__(self, "activation", tuple(activation(a) for a in acts))
        object.__setattr__(self, "init", tuple(initializer(i) for i in inits))
        object.__setattr__(self, "bias_var", tuple(float(b) for b in biases))
        if self.residual is not None:
            object.__setattr__(self, "residual", float(self.residual))

    @classmethod
    def square(cls, width: int, depth: int, **kwargs: object) -> MLP:
        """A net of ``depth`` layers all of ``width`` (input width too)."""
        depth = check_positive_int("depth", depth)
        width = check_positive_int("width", width)
        return cls((width,) * (depth + 1), **kwargs)  # type: ignore[arg-type]

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.widths) - 1

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Per-layer view: fans, activation, initializer and the exact weight variance."""
        acts = cast(tuple[Activation, ...], self.activation)
        inits = cast(tuple[Initializer, ...], self.init)
        biases = cast(tuple[float, ...], self.bias_var)
        out = []
        for i in range(self.depth):
            fan_in, fan_out = self.widths[i], self.widths[i + 1]
            var = inits[i].variance(fan_in, fan_out)
            out.append(Layer(i + 1, fan_in, fan_out, acts[i], inits[i], var, biases[i]))
        return tuple(out)
