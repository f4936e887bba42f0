"""Layers that only rescale: a constant factor y = c·x, and dropout in training mode.

Both multiply the forward and the backward second moment by one number, which is all the
mean-field recursion sees of them (theory.md, "Network and notation"):

- ``Scale(c)``: q_y = c² q_x, q̃_x = c² q̃_y; the law, the two-example correlation and the sign
  pattern are kept, the mean is multiplied by c (PyTorch: ``x * 0.5``; a batch norm in eval
  mode with its initial running statistics is ``Scale(1/√(1 + ε))``).
- ``Dropout(p)`` in training mode (Srivastava et al. 2014, with PyTorch's inverted scaling
  y = m·x/(1 − p), m ~ Bernoulli(1 − p) per entry): E[y²] = E[x²]/(1 − p) and, the mask being
  independent of the gradient, q̃_x = q̃_y/(1 − p). Two examples draw independent masks, so
  E[y_b y_b'] = E[x_b x_b'] and their correlation becomes c·(1 − p); the mean is kept. The
  output is not Gaussian (a mixture with an atom at 0), so an activation cannot follow
  directly; a Dense layer can (its output is Gaussian at infinite width whatever its input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from gradmath.errors import GradmathError
from gradmath.initializers import initializer
from gradmath.network.base import (
    OTHER,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    TheoryContext,
)

__all__ = ["Dropout", "Scale"]


def _real(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise GradmathError(f"`{name}` (={v!r}) must be a finite real number.")
    if not math.isfinite(float(v)):
        raise GradmathError(f"`{name}` (={v!r}) must be a finite real number.")
    return float(v)


@dataclass(frozen=True)
class Scale(Layer):
    """y = c·x with a constant c (not a site).

    >>> Scale(0.5).out_width(8)
    8
    """

    c: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", _real("c", self.c))

    def out_width(self, width: Shape) -> Shape:
        return width

    @property
    def _log_c2(self) -> float:
        return 2.0 * math.log(abs(self.c)) if self.c else -math.inf

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        mean = None if x.mean is None else self.c * x.mean
        return x._replace(log_q=x.log_q + self._log_c2, mean=mean), None

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        return Grad(g.log_g + self._log_c2, g.cov, g.log_gamma + self._log_c2, g.act)

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        return Scaled(x.u * x.u.dtype.type(self.c), x.s), None

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        return Scaled(g.u * g.u.dtype.type(self.c), g.s) if need_input else g


@dataclass(frozen=True)
class Dropout(Layer):
    """Dropout with drop probability ``p`` in training mode (not a site; module docstring).

    >>> Dropout(0.1).out_width(8)
    8
    """

    p: float

    def __post_init__(self) -> None:
        p = _real("p", self.p)
        if not 0.0 <= p < 1.0:
            raise GradmathError(f"`p` (={self.p!r}) must be a drop probability in [0, 1).")
        object.__setattr__(self, "p", p)

    def out_width(self, width: Shape) -> Shape:
        return width

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        if x.spatial is not None and self.p:
            raise GradmathError(
                "Dropout on a tensor with positions is not covered (the mask would change the "
                "diagonal of the positions' covariance only); put it after a Flatten or Dense."
            )
        keep = 1.0 - self.p
        c = None if x.c is None else x.c * keep
        law = x.law if self.p == 0.0 else OTHER
        return Signal(x.width, x.log_q - math.log(keep), law, c, x.mean), None

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        if g.cov != "iid":
            raise GradmathError(
                "gradmath's batch-norm theory does not cover dropout below a batch norm "
                "(the mask breaks the gradient's batch structure)."
            )
        return Grad(g.log_g - math.log(1.0 - self.p))

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        if self.p == 0.0:
            return x, None
        if x.u.ndim != 3:
            raise GradmathError("Dropout on a tensor with positions is not covered.")
        B, n = x.u.shape[1:]
        # The mask comes from the parameter stream (replayed when the simulation recomputes a
        # checkpointed segment, so the backward pass sees the forward's mask): z ~ N(0, 1)
        # per entry, kept when z < Φ⁻¹(1 − p), which has probability 1 − p.
        z, _ = ctx.draw(initializer("normal", sigma_w2=float(n)), (B, n), 0.0)
        keep = (z < NormalDist().inv_cdf(1.0 - self.p)).astype(x.u.dtype)
        keep *= x.u.dtype.type(1.0 / (1.0 - self.p))
        return Scaled(x.u * keep, x.s), keep

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        if tape is None or not need_input:
            return g
        return Scaled(g.u * tape, g.s)
