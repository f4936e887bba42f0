"""``MLP``: the convenience constructor of the common network, built on the network algebra."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple, cast

import numpy as np

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError, check_positive_int
from gradmath.initializers import Initializer, initializer
from gradmath.network import BatchNorm, Dense, Network, Residual, Serial
from gradmath.network.base import MAX_SITES, Layer

__all__ = ["MLP", "MLPLayer"]


class MLPLayer(NamedTuple):
    """Layer l (1-based): h^l = W^l x^{l−1} + b^l with W^l of shape (fan_out, fan_in)."""

    number: int
    fan_in: int
    fan_out: int
    activation: Activation
    init: Initializer
    weight_var: float
    sigma_b2: float

    @property
    def sigma_w2(self) -> float:
        """fan_in · Var[W^l], the forward multiplier of the length map (Poole et al. 2016)."""
        return self.fan_in * self.weight_var


def _per_layer(
    name: str, value: Any, depth: int, single: type | tuple[type, ...]
) -> tuple[Any, ...]:
    if isinstance(value, single):
        return (value,) * depth
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != depth:
            raise GradmathError(
                f"`{name}` has {len(value)} entries but the network has {depth} layers; "
                "give one value for all layers or one per layer."
            )
        return tuple(value)
    raise GradmathError(f"`{name}` (={value!r}) must be a single value or one per layer.")


def _shared(build: Any, specs: tuple[Any, ...]) -> tuple[Any, ...]:
    """``build(spec)`` per layer, one object per distinct spec (names are hashable)."""
    made: dict[Any, Any] = {}
    out = []
    for spec in specs:
        key = spec if isinstance(spec, str) else id(spec)
        if key not in made:
            made[key] = build(spec)
        out.append(made[key])
    return tuple(out)


def _check_depth(depth: int) -> int:
    if depth > MAX_SITES:
        raise GradmathError(
            f"`depth` (={depth!r}) must be at most {MAX_SITES:,} (one profile row per layer)."
        )
    return depth


@dataclass(frozen=True)
class MLP:
    """A fully connected network at initialisation.

    ``widths = (n_0, n_1, …, n_L)``, input first. Layer l maps x^{l−1} to the pre-activation
    h^l = W^l x^{l−1} + b^l and x^l = φ_l(h^l) (theory.md, "Network and notation");
    W^l_ij has the variance of ``init[l−1]`` at (fan_in, fan_out) = (n_{l−1}, n_l) and
    b^l_i ~ N(0, sigma_b2[l−1]).

    ``activation``, ``init`` and ``sigma_b2`` take one value for every layer or a sequence of
    L values; names are looked up in the catalogues. ``sigma_b2="init"`` (the default) takes
    each initializer's own bias variance: 0 except PyTorch's ``nn.Linear`` default
    (``torch_linear_default``: U(±1/√fan_in), variance 1/(3·fan_in)). After construction they
    are tuples of length L of :class:`Activation`, :class:`Initializer` and float.

    ``residual=α`` makes layers 2 … L residual blocks h^l = h^{l−1} + α (W^l φ(h^{l−1}) + b^l)
    (Yang & Schoenholz 2017); layer 1 stays the plain map from the input, and the hidden
    widths n_1 … n_L must be equal. ``batchnorm=True`` normalises each pre-activation over the
    batch (γ = 1, β = 0) before φ (Ioffe & Szegedy 2015; Yang et al. 2019); the batch it sees
    is a condition of the profile (``predict(net, batch=B)``, ``simulate(net, batch=B)``).

    ``network`` is the composed :class:`~gradmath.network.Network` that ``meanfield.predict``
    and ``numeric.simulate`` fold over: Dense → φ → … → Dense (the last activation never
    matters to a profile), with Residual or BatchNorm layers as the flags say.

    >>> net = MLP((784, 256, 256, 10), activation="relu", init="he_normal")
    >>> net.depth, net.layers[0].fan_in, round(net.layers[1].sigma_w2, 12)
    (3, 784, 2.0)
    >>> [s.name for s in net.network.sites]
    ['dense1', 'dense2', 'dense3']
    """

    widths: tuple[int, ...]
    activation: tuple[Activation, ...] | Activation | str | Sequence[Activation | str] = "relu"
    init: tuple[Initializer, ...] | Initializer | str | Sequence[Initializer | str] = "he_normal"
    sigma_b2: tuple[float, ...] | float | str | Sequence[float | str] = "init"
    residual: float | None = None
    batchnorm: bool = False

    def __post_init__(self) -> None:
        widths = self.widths
        if isinstance(widths, np.ndarray) and widths.ndim == 1:
            widths = tuple(widths.tolist())
        if isinstance(widths, (int, str)) or not isinstance(widths, Sequence) or len(widths) < 2:
            raise GradmathError(
                f"`widths` (={widths!r}) must list at least two layer sizes, input first, "
                "e.g. (784, 256, 10)."
            )
        _check_depth(len(widths) - 1)
        widths = tuple(check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))
        depth = len(widths) - 1
        acts = _per_layer("activation", self.activation, depth, (str, Activation))
        inits = _per_layer("init", self.init, depth, (str, Initializer))
        biases = _per_layer(
            "sigma_b2", self.sigma_b2, depth, (int, float, str, np.integer, np.floating)
        )
        # Equal specs share one object (a depth-10,000 fold then looks each up once).
        inits = _shared(initializer, inits)
        resolved = []
        for i, b in enumerate(biases):
            if isinstance(b, str):
                if b != "init":
                    raise GradmathError(
                        f"`sigma_b2` (={b!r}) must be a variance (finite, >= 0) or 'init' "
                        f"(the initializer's own bias; layer {i + 1})."
                    )
                b = inits[i].sigma_b2(widths[i])
            if isinstance(b, bool) or not (math.isfinite(float(b)) and float(b) >= 0):
                raise GradmathError(f"`sigma_b2` (={b!r}) must be finite and >= 0 (layer {i + 1}).")
            resolved.append(float(b))
        biases = tuple(resolved)
        if self.residual is not None:
            a = self.residual
            ok_type = isinstance(a, (int, float, np.integer, np.floating))
            if isinstance(a, bool) or not ok_type or not math.isfinite(float(a)):
                raise GradmathError(f"`residual` (={a!r}) must be a finite branch scale α or None.")
            if len(set(widths[1:])) != 1:
                raise GradmathError(
                    f"A residual net needs equal hidden widths n_1 = … = n_L, got {widths[1:]}."
                )
        if not isinstance(self.batchnorm, bool):
            raise GradmathError(f"`batchnorm` (={self.batchnorm!r}) must be True or False.")
        if self.residual is not None and self.batchnorm:
            raise GradmathError(
                "MLP(residual=…, batchnorm=True) has no fixed block definition; compose the "
                "block you mean from layers (gradmath.network: Residual, BatchNorm, Dense)."
            )
        object.__setattr__(self, "widths", tuple(widths))
        object.__setattr__(self, "activation", _shared(activation, acts))
        object.__setattr__(self, "init", inits)
        object.__setattr__(self, "sigma_b2", tuple(float(b) for b in biases))
        if self.residual is not None:
            object.__setattr__(self, "residual", float(self.residual))

    @classmethod
    def square(cls, width: int, depth: int, **kwargs: object) -> MLP:
        """A net of ``depth`` layers all of ``width`` (input width too)."""
        depth = _check_depth(check_positive_int("depth", depth))
        width = check_positive_int("width", width)
        return cls((width,) * (depth + 1), **kwargs)  # type: ignore[arg-type]

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.widths) - 1

    @cached_property
    def network(self) -> Network:
        """The composed network (class docstring) that theory and simulation fold over."""
        acts = cast(tuple[Activation, ...], self.activation)
        inits = cast(tuple[Initializer, ...], self.init)
        biases = cast(tuple[float, ...], self.sigma_b2)
        dense = [Dense(self.widths[i + 1], inits[i], biases[i]) for i in range(self.depth)]
        # One block per layer l (the simulation checkpoints between blocks; a profile's
        # stream is each block's last site: h^l of the class docstring).
        parts: list[Layer] = []
        for i in range(self.depth):
            act = [acts[i]] if i < self.depth - 1 else []  # the last φ never matters
            if self.residual is not None and i > 0:
                parts.append(Residual(Serial(acts[i - 1], dense[i]), self.residual))
            elif self.residual is not None:
                parts.append(dense[0])
            elif self.batchnorm:
                parts.append(Serial(dense[i], BatchNorm(), *act))
            else:
                parts.append(Serial(dense[i], *act))
        return Network(self.widths[0], *parts)

    @property
    def layers(self) -> tuple[MLPLayer, ...]:
        """Per-layer view: fans, activation, initializer and the exact weight variance."""
        acts = cast(tuple[Activation, ...], self.activation)
        inits = cast(tuple[Initializer, ...], self.init)
        biases = cast(tuple[float, ...], self.sigma_b2)
        out = []
        for i in range(self.depth):
            fan_in, fan_out = self.widths[i], self.widths[i + 1]
            var = inits[i].variance(fan_in, fan_out)
            out.append(MLPLayer(i + 1, fan_in, fan_out, acts[i], inits[i], var, biases[i]))
        return tuple(out)
