"""Layer normalisation y = (x − μ)/σ over each example's units (γ = 1, β = 0), both rules.

Ba, Kiros & Hinton (2016), eq. 4. Exact at any width: each example's output has mean 0 and
mean square 1 over its units, so q_y = 1. Mean field (width → ∞): μ → m = E[x_i] and
σ² → q_x − m², so LN divides by √(q_x − m²); the Jacobian (I − 11ᵀ/n − y yᵀ/n)/σ loses two
of n directions, and the backward factor is 1/(q_x − m²): q̃_x = q̃_y / (q_x − m²). A centred
Gaussian input stays Gaussian; two examples' correlation becomes (c q_x − m²)/(q_x − m²).
A pre-LN residual block x + α·F(LN(x)) therefore adds a constant to q per block (linear
growth with depth) while its gradient factor 1 + α²·(…)/q → 1 stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradmath.errors import GradmathError
from gradmath.network.base import (
    OTHER,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SiteCounter,
    SpectralContext,
    TheoryContext,
    flat_width,
    log0_array,
    mean_square,
)
from gradmath.network.standardize import standardize, standardize_backward

__all__ = ["LayerNorm"]


@dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalise each example over its units (a site: ``layernorm1``, …).

    >>> LayerNorm().out_width(16)
    16
    """

    NEEDS = frozenset({"mean"})

    def out_width(self, width: Shape) -> Shape:
        return flat_width(width, "LayerNorm")

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open("layernorm", flat_width(width, "LayerNorm"))
        return width

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        m = x.mean
        if m is None:  # pragma: no cover - predict tracks the mean when a LayerNorm is present
            raise GradmathError("LayerNorm needs the mean of its input, which was not tracked.")
        q = math.exp(x.log_q)
        var = q - m * m
        if not var > 1e-300 * q:
            raise GradmathError(
                "Every unit of an example reaches this layer norm with the same value "
                "(variance 0 over the units), so the normalisation is undefined."
            )
        log_var = math.log(var)
        c = None if x.c is None else (x.c * q - m * m) / var
        law = x.law if m == 0.0 else OTHER
        site = ctx.sites.open("layernorm", x.width)
        ctx.rows[0, site] = 0.0
        return Signal(x.width, 0.0, law, c, 0.0), (site, log_var)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, log_var = tape
        ctx.rows[1, site] = g.log_g
        return Grad(g.log_g - log_var, g.cov, g.log_gamma - log_var, g.act)

    def theory_spectrum(self, x: Signal, ctx: SpectralContext) -> Signal:
        # J ← (I − 11ᵀ/n − yyᵀ/n) J/σ: a rank-2 change of I/σ, which leaves the limiting
        # spectral law of JJᵀ that of JJᵀ/σ², σ² = q_x − m² (finite width: 2 more zeros).
        y, (_, log_var) = self.theory_forward(x, ctx)
        ctx.scalar_factor(-log_var)
        return y

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        # LN is scale invariant: standardise u itself; the output scale is 1 (s = 0).
        h, inv = standardize(x.u, axis=-1)
        site = ctx.sites.open("layernorm", h.shape[-1])
        ctx.forward_log[0, :, site] = log0_array(mean_square(h))
        zero = 0.0 * x.s
        return Scaled(h, zero), (site, h, inv, x.s)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, h, inv, s_in = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        # ∂/∂(e^s u) = e^{−s} ∂/∂u.
        return Scaled(standardize_backward(g.u, h, inv, axis=-1), g.s - s_in)
