"""Layer normalisation y = (x − μ)/√(σ² + ε) over each example's units (γ = 1, β = 0), both rules.

Ba, Kiros & Hinton (2016), eq. 4, with PyTorch's ε inside the root (``nn.LayerNorm(eps=1e-5)``).
With ε = 0 it is exact at any width: each example's output has mean 0 and mean square 1 over
its units, so q_y = 1. Mean field (width → ∞): μ → m = E[x_i] and σ² → v = q_x − m², so

    q_y = v/(v + ε),       q̃_x = q̃_y/(v + ε)

(the Jacobian (I − 11ᵀ/n − y yᵀ/n)/√(v + ε) loses O(1/n) of the n directions). ε matters when
the input's variance is small: GPT-2's residual stream at initialisation has v ≈ 1e-3, so
ε = 1e-5 lowers q_y by 1 %. A centred Gaussian input stays Gaussian; two examples' correlation
becomes (c q_x − m²)/v.
A pre-LN residual block x + α·F(LN(x)) therefore adds a constant to q per block (linear
growth with depth) while its gradient factor 1 + α²·(…)/q → 1 stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.errors import GradmathError, check_positive
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
    """Normalise each example over its units (a site: ``layernorm1``, …); ``eps`` is added
    to the variance inside the square root, as in ``torch.nn.LayerNorm``.

    >>> LayerNorm().out_width(16)
    16
    """

    eps: float = 0.0

    NEEDS = frozenset({"mean"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_positive("eps", self.eps, allow_zero=True))

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
        if not var > 1e-300 * q and self.eps == 0.0:
            raise GradmathError(
                "Every unit of an example reaches this layer norm with the same value "
                "(variance 0 over the units), so the normalisation is undefined."
            )
        c = None if x.c is None or not var > 0 else (x.c * q - m * m) / var
        log_var_eps = math.log(var + self.eps)
        log_qy = math.log(var) - log_var_eps if var > 0 else -math.inf
        law = x.law if m == 0.0 else OTHER
        site = ctx.sites.open("layernorm", x.width)
        ctx.rows[0, site] = log_qy
        return Signal(x.width, log_qy, law, c, 0.0), (site, log_var_eps)

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
        # LN is scale invariant: standardise u itself; the output scale is 1 (s = 0). ε in
        # the units of u: ε·e^{−2s} per network.
        eps: Any = 0.0
        if self.eps:
            with np.errstate(over="ignore"):
                eps = (self.eps * np.exp(-2.0 * x.s)).astype(x.u.dtype)[:, None, None]
        h, inv = standardize(x.u, axis=-1, eps=eps)
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
