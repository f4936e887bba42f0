"""Composition: ``Serial`` (one layer after another), ``repeat`` (n copies) and ``Network``.

The folds know nothing about particular layers (Neural Tangents' ``stax.serial`` and
``stax.repeat``, ``neural_tangents/_src/stax/combinators.py``): a Serial runs its layers'
rules in order forward and in reverse order backward; a Repeat runs one layer's rules n times
without building n copies, so a 10,000-block network is a handful of objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gradmath.activations import Activation
from gradmath.errors import GradmathError, check_positive_int
from gradmath.network.base import (
    GAUSSIAN,
    MAX_SITES,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    Site,
    SiteCounter,
    Spatial,
    SpectralContext,
    TheoryContext,
)
from gradmath.network.elementwise import Elementwise

__all__ = ["Network", "Repeat", "Serial", "as_layer", "repeat"]


def as_layer(obj: object) -> Layer:
    """A layer from a layer, an :class:`~gradmath.Activation` or an activation name."""
    if isinstance(obj, Layer):
        return obj
    if isinstance(obj, (str, Activation)):
        return Elementwise(obj)
    raise GradmathError(
        f"{obj!r} is not a layer: use Dense(...), an activation name such as 'relu', "
        "Residual(...), BatchNorm(), LayerNorm(), Serial(...) or repeat(...)."
    )


class _Sequence(Layer):
    """Shared folds of Serial and Repeat over ``self.steps()``."""

    def steps(self) -> Iterator[Layer]:
        raise NotImplementedError

    def out_width(self, width: Shape) -> Shape:
        for layer in self.steps():
            width = layer.out_width(width)
        return width

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        for layer in self.steps():
            width = layer.open_sites(width, sites)
        return width

    def param_count(self, width: Shape) -> int:
        total = 0
        for layer in self.steps():
            total += layer.param_count(width)
            width = layer.out_width(width)
        return total

    def state_count(self, width: Shape) -> int:
        total = 0
        for layer in self.steps():
            total += layer.state_count(width)
            width = layer.out_width(width)
        return total

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        tapes = []
        for layer in self.steps():
            x, t = layer.theory_forward(x, ctx)
            tapes.append((layer, t))
        return x, tapes

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        for layer, t in reversed(tape):
            g = layer.theory_backward(t, g, ctx)
        return g

    def theory_spectrum(self, x: Signal, ctx: SpectralContext) -> Signal:
        for layer in self.steps():
            x = layer.theory_spectrum(x, ctx)
        return x

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        tapes = []
        for layer in self.steps():
            x, t = layer.sim_forward(x, ctx)
            tapes.append((layer, t))
        return x, tapes

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        last = len(tape) - 1
        for k in range(last, -1, -1):
            layer, t = tape[k]
            g = layer.sim_backward(t, g, ctx, need_input or k > 0)
        return g


@dataclass(frozen=True, init=False)
class Serial(_Sequence):
    """Layers applied one after another; activations may be given by name.

    >>> from gradmath.network import Dense
    >>> Serial(Dense(64), "relu", Dense(10)).out_width(32)
    10
    """

    layers: tuple[Layer, ...]

    def __init__(self, *layers: Layer | Activation | str) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        object.__setattr__(self, "layers", tuple(as_layer(x) for x in layers))

    def steps(self) -> Iterator[Layer]:
        return iter(self.layers)

    def children(self) -> tuple[Layer, ...]:
        return self.layers


@dataclass(frozen=True)
class Repeat(_Sequence):
    """``layer`` applied ``n`` times, each time with freshly drawn parameters (``repeat``)."""

    layer: Layer
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", as_layer(self.layer))
        n = check_positive_int("n", self.n)
        if n > MAX_SITES:
            raise GradmathError(
                f"`n` (={n!r}) repetitions: at most {MAX_SITES:,} (one profile row each at least)."
            )
        object.__setattr__(self, "n", n)

    def steps(self) -> Iterator[Layer]:
        for _ in range(self.n):
            yield self.layer

    def children(self) -> tuple[Layer, ...]:
        return (self.layer,)


def _input_shape(value: object) -> Shape:
    if isinstance(value, (tuple, list)):
        if not 2 <= len(value) <= 3:
            raise GradmathError(
                f"`input_width` (={value!r}) must be a width or a shape (channels, *positions) "
                "with 1 or 2 spatial axes, e.g. (3, 32, 32)."
            )
        return tuple(check_positive_int("input_width", v) for v in value)
    return check_positive_int("input_width", value)


def repeat(layer: Layer | Activation | str, n: int) -> Repeat:
    """``layer`` n times in a row (each copy with its own sampled parameters).

    >>> from gradmath.network import Dense
    >>> repeat(Serial(Dense(8), "tanh"), 3).out_width(4)
    8
    """
    return Repeat(as_layer(layer), n)


@dataclass(frozen=True, init=False)
class Network:
    """A network at initialisation: the input width n_0 and the layers applied to it.

    A convolutional network takes an input shape (channels, *positions) instead, e.g.
    ``Network((3, 32, 32), Conv(16, 3, padding=1), "relu", GlobalAvgPool(), Dense(10))``.

    The object that ``meanfield.predict`` and ``numeric.simulate`` both take, so a comparison is
    always between one network's theory and its samples. ``sites`` lists the rows of its
    profiles (every Dense, Residual, BatchNorm and LayerNorm, in forward order).

    >>> from gradmath.network import Dense
    >>> net = Network(784, Dense(256), "relu", Dense(10))
    >>> [s.name for s in net.sites], net.output_width
    (['dense1', 'dense2'], 10)
    """

    input_width: Shape
    body: Serial

    def __init__(self, input_width: Shape, *layers: Layer | Activation | str) -> None:
        object.__setattr__(self, "input_width", _input_shape(input_width))
        if not layers:
            raise GradmathError("A Network needs at least one layer, e.g. Network(784, Dense(10)).")
        body = layers[0] if len(layers) == 1 and isinstance(layers[0], Serial) else Serial(*layers)
        object.__setattr__(self, "body", body)
        if not self.sites:
            raise GradmathError(
                "This network has no site to report (no Dense, Residual or normalisation layer)."
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: (n_0,) or (channels, *positions)."""
        w = self.input_width
        return (w,) if isinstance(w, int) else w

    def input_signal(self, log_q: float, c: float | None) -> Signal:
        """The mean-field state of i.i.d. N(0, e^{log_q}) inputs (independent positions)."""
        w = self.input_width
        if isinstance(w, int):
            return Signal(w, log_q, GAUSSIAN, c)
        n = math.prod(w[1:])
        cross = None if c is None else np.full((n, n), c)
        return Signal(w[0], log_q, GAUSSIAN, None, 0.0, Spatial(w[1:], np.eye(n), cross=cross))

    @cached_property
    def sites(self) -> tuple[Site, ...]:
        counter = SiteCounter()
        self.body.open_sites(self.input_width, counter)
        return tuple(counter.sites)

    @cached_property
    def requirements(self) -> frozenset[str]:
        """What any of its layers needs (:attr:`Layer.NEEDS`), computed once per network."""
        return self.body.requirements()

    @property
    def output_width(self) -> Shape:
        return self.body.out_width(self.input_width)

    @property
    def uses_batch_statistics(self) -> bool:
        """Whether a layer normalises over the batch (then the batch is a profile condition)."""
        return "batch" in self.requirements

    def param_count(self) -> int:
        """Numbers drawn per sampled network."""
        return self.body.param_count(self.input_width)

    def blocks(self) -> tuple[Layer, ...]:
        """The top-level layers, with ``repeat`` unrolled (nested Serials stay whole).

        The simulation checkpoints between blocks, and a profile's ``stream`` rows are the
        last site of every block: the main path's tensor after it (for an MLP, h^l).
        """
        out: list[Layer] = []
        for layer in self.body.layers:
            if isinstance(layer, Repeat):
                out += [layer.layer] * layer.n
            else:
                out.append(layer)
        return tuple(out)

    @cached_property
    def stream(self) -> tuple[int, ...]:
        """Row indices of the stream: the last site of each block that has a site."""
        counter = SiteCounter()
        rows = []
        width = self.input_width
        for block in self.blocks():
            before = len(counter.sites)
            width = block.open_sites(width, counter)
            if len(counter.sites) > before:
                rows.append(len(counter.sites) - 1)
        return tuple(rows)
