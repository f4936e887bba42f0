"""Batch normalisation y = (x − μ)/σ of each unit over the batch (γ = 1, β = 0), both rules.

Ioffe & Szegedy (2015), Algorithm 1, in training mode (biased variance, eps = 0). Exact at
any width: each unit's batch vector of outputs has mean 0 and mean square 1, so q_y = 1.

Mean field at infinite width and finite batch B (Yang, Pennington, Rao, Sohl-Dickstein &
Schoenholz 2019, "A Mean Field Theory of Batch Normalization"; the finite-B recursion is
gradmath's own derivation, see ``meanfield/batchnorm.py``): the input's batch vector is
N(0, s²P + …) with s² = q_x(1 − c_x) (c_x the two-example correlation), so the output is
uniform on the sphere of radius √B in 1^⊥ (two examples correlate by −1/(B−1)) and
E[1/σ²] = B/((B−3) s²). Backward, with P_h the projection off span(1, y):

    ∂L/∂x = σ⁻¹ P_h δ,     Γ_x = γ_x P,   γ_x = γ_y E[1/σ²] T,

where T = E tr(P_h Γ P_h)/((B−1)γ_y) is (B−2)/(B−1) for an i.i.d. or centred gradient Γ_y
and the activation's trace factor (``BatchMoments.trace_factor``) when Γ_y = γ D P D comes
through the activation that follows. B = None is the large-batch limit (P → I, T → E[φ'²]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.errors import GradmathError
from gradmath.network import batchnorm_positions as positions
from gradmath.network import draws, spatial
from gradmath.network.base import (
    GAUSSIAN,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SiteCounter,
    TheoryContext,
    features,
    log0_array,
    mean_square,
    sphere,
)
from gradmath.network.standardize import standardize, standardize_backward

__all__ = ["BatchNorm"]


def _log_ratio(B: int | None, num: int, den: int) -> float:
    """log((B + num)/(B + den)); 0 in the large-batch limit."""
    return 0.0 if B is None else math.log((B + num) / (B + den))


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Normalise each unit over the batch (a site: ``batchnorm1``, …).

    The batch B it sees is a condition of the profile, not of the layer: ``predict(net,
    batch=B)`` (``None``: the large-batch limit) and ``simulate(net, batch=B)``.

    >>> BatchNorm().out_width(16)
    16
    """

    NEEDS = frozenset({"correlation", "batch"})

    def out_width(self, width: Shape) -> Shape:
        return width

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open("batchnorm", features(width))
        return width

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        B = ctx.batch
        if x.spatial is not None and not x.spatial.flat:
            return self._positions_forward(x, ctx)
        if B is not None and B < 4:
            raise GradmathError(
                f"`batch` (={B}) must be >= 4 for the batch-norm theory (or None, the "
                "large-batch limit): σ² ~ s²χ²_{B−1}/B, and E[1/σ²] is infinite for B <= 3."
            )
        if x.law.kind != "gaussian" or x.c is None:
            raise GradmathError(
                "BatchNorm's mean-field rule needs a Gaussian input (the output of a Dense "
                "layer); here it follows a layer whose output is not Gaussian."
            )
        if x.c >= 1.0:
            raise GradmathError(
                "Every example reaches this batch norm with the same pre-activation "
                "(two-example correlation 1), so σ = 0 and the normalisation is undefined."
            )
        log_s2 = x.log_q + math.log1p(-x.c)
        log_inv_var = _log_ratio(B, 0, -3) - log_s2  # log E[1/σ²]
        site = ctx.sites.open("batchnorm", x.width)
        ctx.rows[0, site] = 0.0
        if B is None:
            return Signal(x.width, 0.0, GAUSSIAN, 0.0, 0.0), (site, log_inv_var)
        return Signal(x.width, 0.0, sphere(B), -1.0 / (B - 1), 0.0), (site, log_inv_var)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        if len(tape) == 5:
            return self._positions_backward(tape, g, ctx)
        site, log_inv_var = tape
        B = ctx.batch
        ctx.rows[1, site] = g.log_g
        if g.cov == "dpd":
            assert g.act is not None
            m = ctx.batch_moments(g.act, B)
            log_gx = g.log_gamma + log_inv_var + math.log(m.trace_factor(B))
        else:
            log_gy = g.log_g if g.cov == "iid" else g.log_gamma
            log_gx = log_gy + log_inv_var + _log_ratio(B, -2, -1)
        return Grad(log_gx + _log_ratio(B, -1, 0), "centred", log_gx)

    # ------------------------------------------------------------------ with positions
    def _positions_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        """Normalisation over examples and positions (:mod:`.batchnorm_positions`)."""
        sp = x.spatial
        assert sp is not None
        if x.law.kind != "gaussian" or sp.cross is None:
            raise GradmathError(
                "BatchNorm's mean-field rule on positions needs a Gaussian input (the output "
                "of a convolution); here it follows a layer whose output is not Gaussian."
            )
        B = ctx.batch
        log_mu, log_ratio, k_y, c_y = positions.forward(sp.cov, sp.cross, B)
        log_inv_var = log_ratio - log_mu - x.log_q  # log E[1/s²]
        site = ctx.sites.open("batchnorm", x.width)
        ctx.rows[0, site] = 0.0
        # the output's law at finite N is not Gaussian (a sphere at one position): exact
        # draws for a layer that needs more than its moments (an activation of a residual
        # sum it feeds), when N is small enough to matter (draws.EXACT_BATCH_NORM)
        exact = batches = None
        if B is not None and B * k_y.shape[0] <= draws.EXACT_BATCH_NORM:
            seed = 2 * ctx.sites.mark()
            k_in, c_in = sp.cov, sp.cross
            batches = draws.lazy(lambda: draws.batchnorm_batches(k_in, c_in, B, seed))
            exact = draws.lazy(lambda: draws.pairs(batches()))
        sp_out = sp._replace(cov=k_y, cross=c_y, draws=exact)
        out = Signal(x.width, 0.0, GAUSSIAN, None, 0.0, sp_out)
        return out, (site, log_inv_var, k_y, c_y, batches)

    def _positions_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        """∂L/∂h = s⁻¹ P_y δ_y on the gradient's batch form (:func:`.positions.backward`);
        through an activation whose input is this batch norm's output, with D tied to y."""
        site, log_inv_var, k_y, c_y, batches = tape
        if g.cov != "iid":
            raise GradmathError(
                "gradmath's batch-norm theory on positions covers Conv → BatchNorm with the "
                "gradient of a convolution, activation, residual sum or pooling above it; here "
                "another batch norm's gradient reaches it directly."
            )
        ctx.rows[1, site] = g.log_g
        n = k_y.shape[0]
        side = (
            None if g.tied is None else next((i for i, c in enumerate(g.tied.of) if c is k_y), None)
        )
        tied_pairing = None
        if g.tied is not None and side is not None:
            t = g.tied
            log_ref, gf, cross = t.log_g, spatial.full(t.spatial, n), t.cross
            kernels = t.kernels(side)
            if side == 0 and batches is not None and t.deriv is not None:
                # φ'(y) of this batch norm's own output: its weight-gradient pairing jointly
                # with y, over the exact draws (positions.tied_weight_gradient)
                def tied_pairing(a: Any, ac: Any, g0: Any = gf, o0: Any = cross) -> float:
                    return positions.tied_weight_gradient(g0, o0, a, ac, batches(), t.deriv)
        else:
            log_ref, gf, cross, kernels = g.log_g, spatial.full(g.spatial, n), g.cross, None
        log_kept, gh, oh, form_y = positions.backward(gf, cross, k_y, c_y, ctx.batch, kernels)
        # the weight gradient of the convolution below pairs δ with its input
        # (positions.weight_gradient), through this batch norm's y and δ_y's form
        return Grad(log_ref + log_inv_var + log_kept, "centred", spatial=gh, cross=oh,
                    batch_moments=(k_y, c_y, *form_y, tied_pairing))  # fmt: skip

    def theory_spectrum(self, x: Signal, ctx: Any) -> Signal:
        raise GradmathError(
            "BatchNorm couples the examples of a batch: one example's output depends on the "
            "others' inputs, so the input-output Jacobian of one example is not a per-example "
            "map; gradmath computes Jacobian spectra (theory and sampled) only without batch "
            "statistics."
        )

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        # BN is scale invariant: standardise u; the output has scale 1 (s = 0). With positions
        # (K, B, C, *pos) each channel is standardised over examples and positions together.
        shape = x.u.shape
        h, inv = standardize(_rows(x.u), axis=-2)
        site = ctx.sites.open("batchnorm", shape[2])
        out = _unrows(h, shape)
        ctx.forward_log[0, :, site] = log0_array(mean_square(out))
        return Scaled(out, np.zeros_like(x.s)), (site, h, inv, x.s)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, h, inv, s_in = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        d = standardize_backward(_rows(g.u), h, inv, axis=-2)
        return Scaled(_unrows(d, g.u.shape), g.s - s_in)


def _rows(u: Any) -> Any:
    """(K, B, C, *pos) → (K, B·P, C): a channel's examples and positions as one batch axis."""
    if u.ndim == 3:
        return u
    K, B, C = u.shape[:3]
    return np.moveaxis(u.reshape(K, B, C, -1), 2, -1).reshape(K, -1, C)


def _unrows(h: Any, shape: tuple[int, ...]) -> Any:
    if len(shape) == 3:
        return h
    K, B, C = shape[:3]
    return np.ascontiguousarray(np.moveaxis(h.reshape(K, B, -1, C), -1, 2)).reshape(shape)
