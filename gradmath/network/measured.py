"""A part of a real model the mean-field theory does not cover, carried by its measured moments.

Attention, embeddings, max-pooling (``gradmath.torch`` marks them *measured only*) have no
mean-field rule here. So that the theory can stop before such a part and start again after it,
this layer holds what was measured on the model itself: the log second moment of its output
and the log gain q̃(input)/q̃(output) of the gradient it passes down (through it alone). Its
rules never guess: the forward rule returns the measured output moment whatever comes in, the
backward rule multiplies by the measured gain, and there is no simulation rule (a sampled
network has no such part to sample).

What the theory downstream needs besides q is stated, not assumed: ``mean`` is E[y] (0 for
parts that end in a zero-mean affine map, such as attention's output projection, or that are
zero-mean tables, such as embeddings; ``None`` when unknown, e.g. after max-pooling, and then a
layer norm downstream refuses); the two-example correlation is unknown (a batch norm
downstream refuses).

The measured values are data about the part, not its identity: two ``Measured`` layers of the
same part compare equal whatever was measured (so a prediction and a probe of one model are
"the same network"), and ``replicates`` holds leave-one-out values (a jackknife over the
initialisations the part was measured on) from which the uncertainty they pass on to the
theory downstream is computed (``gradmath.torch.predict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradmath.errors import GradmathError, check_positive_int
from gradmath.network import spatial
from gradmath.network.base import (
    OTHER,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SiteCounter,
    Spatial,
    TheoryContext,
)

__all__ = ["Measured"]


@dataclass(frozen=True)
class Measured(Layer):
    """A measured-only part (a site: ``measured1``, …) with ``width`` output units.

    ``log_q``: measured log E[y²] of its output; ``log_gain``: measured log of q̃ at its input
    over q̃ at its output (−∞ when nothing below receives a gradient, e.g. token embeddings);
    ``name``: what it is in the model (e.g. ``transformer.h.0.attn``); ``kind``: the site kind
    it reports as (``"residual"`` for a sum of measured parts, such as token plus position
    embeddings); ``log_grad_factor``: log of the factor by which the gradient at its output
    exceeds the gradient of what it feeds (the number of copies when its output is broadcast,
    e.g. position embeddings shared by every example of a batch); ``mean``: E[y] or ``None``;
    ``replicates``: jackknife values ((log_q, log_gain), …).

    >>> Measured(16, log_q=0.0, log_gain=-1.0, name="attn").out_width(16)
    16
    >>> Measured(16, 0.0, -1.0, "attn") == Measured(16, 0.5, -2.0, "attn")
    True
    """

    width: int
    log_q: float = field(compare=False)
    log_gain: float = field(compare=False)
    name: str = ""
    kind: str = "measured"
    log_grad_factor: float = 0.0
    mean: float | None = field(default=0.0, compare=False)
    replicates: tuple[tuple[float, float], ...] = field(default=(), compare=False, repr=False)
    positions: tuple[int, ...] = ()
    cov: Any = field(default=None, compare=False, repr=False)
    cross: Any = field(default=None, compare=False, repr=False)
    grad_cov: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", check_positive_int("width", self.width))
        if not math.isfinite(self.log_q):
            raise GradmathError(f"`log_q` (={self.log_q!r}) of {self.name!r} must be finite.")
        if math.isnan(self.log_gain) or self.log_gain == math.inf:
            raise GradmathError(
                f"`log_gain` (={self.log_gain!r}) of {self.name!r} must be a number or −inf."
            )

    def out_width(self, width: Shape) -> Shape:
        return (self.width, *self.positions) if self.positions else self.width

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open(self.kind, self.width)
        return self.out_width(width)

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        site = ctx.sites.open(self.kind, self.width)
        ctx.rows[0, site] = self.log_q
        sp = None
        if self.positions:
            if self.cov is None:
                raise GradmathError(
                    f"{self.name or 'A measured-only part'} outputs a tensor with positions, but "
                    "the second moments between them were not measured; the theory after it "
                    "needs them (gradmath.torch measures them)."
                )
            cov = np.asarray(self.cov, dtype=np.float64)
            scale = float(np.mean(np.diagonal(cov)))
            cross = None
            if self.cross is not None and x.spatial is not None and x.spatial.cross is not None:
                cross = np.asarray(self.cross, dtype=np.float64) / scale
            sp = Spatial(self.positions, cov / scale, cross=cross)
        return Signal(self.width, self.log_q, OTHER, None, self.mean, sp), site

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        if g.cov != "iid":
            raise GradmathError(
                f"{self.name or 'A measured-only part'} sits below a batch norm; gradmath's "
                "batch-norm theory covers Dense → BatchNorm → activation stacks."
            )
        log_g = g.log_g + self.log_grad_factor
        ctx.rows[1, tape] = log_g
        if self.grad_cov is None:
            return Grad(log_g + self.log_gain)
        # the gradient it passes down, between its input's positions, as measured (max-pooling
        # passes it to the selected positions only; pooling at the top correlates positions)
        _, gn = spatial.normalised(np.asarray(self.grad_cov, dtype=np.float64))
        return Grad(log_g + self.log_gain, spatial=gn)

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        raise GradmathError(
            f"{self.name or 'A measured-only layer'} has no simulation rule: it is measured on "
            "the real model (gradmath.torch.probe), not sampled."
        )

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        raise AssertionError("unreachable: sim_forward refuses")  # pragma: no cover
