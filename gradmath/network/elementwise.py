"""The elementwise nonlinearity y = φ(x) as a layer: its mean-field rule and simulation rule.

Mean field (Poole et al. 2016, eq. 3; Schoenholz et al. 2017, eq. 5 and §4), for x_i ~ N(0, q):

    q_y = ∫Dz φ(√q z)²,      q̃_x = q̃_y · ∫Dz φ'(√q z)²,
    c_y q_y = E[φ(u₁)φ(u₂)],  u ~ N(0, q[[1, c], [c, 1]])   (only when tracked)

After batch norm at finite batch B the input is not Gaussian but uniform on a sphere (Yang et
al. 2019); the moments then come from the batch-norm engine (``meanfield.batch_moments``) and
the gradient keeps its batch structure for the batch norm below (see
:mod:`gradmath.network.batchnorm`). Everything known about φ lives on the
:class:`~gradmath.Activation` object; this layer never looks at its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError
from gradmath.network import draws as law
from gradmath.network import spatial
from gradmath.network.base import (
    OTHER,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SpectralContext,
    TheoryContext,
    Tied,
)

__all__ = ["Elementwise"]


@dataclass(frozen=True)
class Elementwise(Layer):
    """y = φ(x) elementwise, for an :class:`~gradmath.Activation` (or its catalogue name).

    >>> Elementwise("tanh").act.name
    'tanh'
    """

    act: Activation | str

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", activation(self.act))

    @property
    def activation(self) -> Activation:
        return self.act  # type: ignore[return-value]  # an Activation after __post_init__

    def out_width(self, width: Shape) -> Shape:
        return width

    # ------------------------------------------------------------------ mean field
    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        act = self.activation
        if x.spatial is not None and x.law.kind == "gaussian":
            # A batch norm's output at small N carries draws of its exact law (at one position
            # the sphere, where E[tanh(y)²] is 6 % above the Gaussian's at B = 8): a φ that is
            # not positively homogeneous integrates over them. For a homogeneous φ the
            # Gaussian closed forms are exact at one position (elliptical law) and within
            # O(1/N) with positions, without Monte-Carlo error.
            if act.homogeneous or x.spatial.draws is None:
                return self._spatial_forward(x, ctx)
            return self._drawn_forward(x, ctx)
        if x.law.kind == "sphere":
            m = ctx.batch_moments(act, x.law.batch)
            c = m.phi_cross / m.phi2 if x.c is not None else None
            if ctx.track_mean:
                raise GradmathError(
                    "gradmath does not track the mean of an activation after a batch norm, "
                    "which the layer norm downstream needs; put a Dense layer in between."
                )
            return Signal(x.width, math.log(m.phi2), OTHER, c, None), (x, m)
        if x.spatial is not None and x.spatial.draws is not None:
            return self._drawn_forward(x, ctx)
        if x.law.kind != "gaussian" and x.spatial is not None:
            raise GradmathError(
                f"The mean-field rule of {act!r} on positions needs a Gaussian input (a "
                "convolution's or a batch norm's output); here its input is not Gaussian: e.g. "
                "the sum x + F(x) of a post-activation residual block (ResNet's ReLU after the "
                "sum), whose x is an activation's output. gradmath has no rule for that law yet."
            )
        if x.law.kind != "gaussian":
            raise GradmathError(
                f"The mean-field rule of {act!r} needs a Gaussian input (the output of a Dense, "
                "residual or normalisation layer); here it follows a layer whose output is not "
                "Gaussian (e.g. another activation). Put a Dense layer in between."
            )
        log_q = ctx.moments(act).phi2(x.log_q)
        c = None
        if x.c is not None:
            c = min(1.0, max(-1.0, ctx.kernel(act, x.log_q, x.c) / math.exp(log_q)))
        mean = ctx.mean(act, x.log_q) if ctx.track_mean else None
        return Signal(x.width, log_q, OTHER, c, mean), (x, ctx.defer_log_dphi2(act, x.log_q))

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        # tape: the input and, after batch norm, its BatchMoments; else the dphi2 handle
        x, moments_or_handle = tape
        if x.spatial is not None:
            return self._spatial_backward(tape, g, ctx)
        if x.law.kind == "sphere":
            B = x.law.batch
            if g.cov != "centred":
                raise GradmathError(
                    "gradmath's batch-norm theory covers Dense → BatchNorm → activation → Dense "
                    "stacks; this activation after a batch norm is not followed by a Dense layer."
                )
            log_pdiag = 0.0 if B is None else math.log1p(-1.0 / B)
            log_g = g.log_gamma + log_pdiag + math.log(moments_or_handle.dphi2)
            return Grad(log_g, "dpd", g.log_gamma, self.activation)
        if g.cov == "centred" and ctx.batch is not None:
            raise GradmathError(
                "An activation whose input is not batch-normalised receives a batch-centred "
                "gradient here; gradmath's batch-norm theory covers Dense → BatchNorm → "
                "activation stacks throughout the net."
            )
        log_d = ctx.log_dphi2(moments_or_handle)
        return Grad(g.log_g + log_d, g.cov, g.log_gamma + log_d, g.act)

    # ------------------------------------------------------------------ with positions
    def _spatial_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        """K_pp' = E[φ(u_p)φ(u_p')] over the positions' Gaussian field (Xiao et al. 2018,
        eq. 2.5; :mod:`gradmath.network.spatial`)."""
        act = self.activation
        sp = x.spatial
        assert sp is not None
        d = np.diagonal(sp.cov).copy()
        if not np.all(d > 0):
            raise GradmathError(
                f"Some positions reach {act!r} with variance 0 (they see only padding); "
                "gradmath's mean field needs every position to see part of the input."
            )
        # φ(λu) = λφ(u) (λ > 0) lets a homogeneous φ work on the normalised matrix: the scale
        # stays in log space. Any other φ needs the true variances.
        log_scale = 0.0 if act.homogeneous else x.log_q
        log_qp = np.log(d) + log_scale
        q = np.exp(log_qp)
        if not np.all(np.isfinite(q)):
            raise GradmathError(
                f"The variance reaching {act!r} leaves the float64 range (log q = {x.log_q:.4g})."
            )
        mom = ctx.moments(act)
        uq, inv = np.unique(log_qp, return_inverse=True)
        log_diag = np.array([mom.phi2(float(v)) for v in uq])[inv]
        top = float(np.max(log_diag))
        corr = sp.cov / np.sqrt(np.outer(d, d))
        m = spatial.pair_kernel(mom, q, corr, deriv=False) * math.exp(-top)
        np.fill_diagonal(m, np.exp(log_diag - top))
        log_mean, r = spatial.normalised(m)
        log_q = (x.log_q if act.homogeneous else 0.0) + top + log_mean
        cross = None
        if sp.cross is not None:
            # two examples: (u_{b,p}, u_{b',p'}) with covariance C_pp', also at p = p'
            cc = np.clip(sp.cross / np.sqrt(np.outer(d, d)), -1.0, 1.0)
            cross = spatial.pair_kernel(mom, q, cc, deriv=False)
            np.fill_diagonal(cross, mom.kernels(q, q, np.diagonal(cc).copy()))
            cross = cross * math.exp(-top - log_mean)
        u_cov, u_cross, log_in, u_draws = sp.cov, sp.cross, x.log_q, sp.draws

        def drawn() -> Any:
            # φ of the Gaussian field, for a non-Gaussian layer after it (a residual sum)
            # a batch norm's output carries its exact finite-N draws
            u = u_draws() if u_draws is not None else law.gaussian(u_cov, u_cross, seed=seed)
            v = act(u) if act.homogeneous else act(u * math.exp(0.5 * log_in))
            return v * math.exp(0.5 * ((log_in if act.homogeneous else 0.0) - log_q))

        seed = 2 * ctx.sites.mark()
        lazy = law.lazy(drawn) if cross is not None else None
        sp_out = sp._replace(cov=r, cross=cross, draws=lazy)
        out = Signal(x.width, log_q, OTHER, None, None, sp_out)
        return out, (x, (mom, q, corr, log_qp))

    def _drawn_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        """φ of a field carried by draws (:mod:`gradmath.network.draws`): the output's moments
        and draws, and E[φ'(u_p)φ'(u_p')] for the backward rule, as averages over the draws."""
        act = self.activation
        sp = x.spatial
        assert sp is not None
        u = np.asarray(sp.draws(), dtype=np.float64)
        if not act.homogeneous:
            u = u * math.exp(0.5 * x.log_q)
        v = np.asarray(act(u), dtype=np.float64)
        log_mean, k, c = law.moments(v)
        log_q = log_mean + (x.log_q if act.homogeneous else 0.0)
        du = act.deriv(u)
        d = du.reshape(-1, u.shape[-1])
        dk = d.T @ d / d.shape[0]
        # two examples: E[φ'(u_{b,p}) φ'(u_{b',p'})], for a gradient centred over the batch
        dc = du[:, 0].T @ du[:, 1] / du.shape[0]
        dc = 0.5 * (dc + dc.T)
        norm = v * math.exp(-0.5 * log_mean)
        cross = c if sp.cross is not None else None
        out = Signal(x.width, log_q, OTHER, None, None,
                     sp._replace(cov=k, cross=cross, draws=lambda: norm))  # fmt: skip
        return out, (x, (None, None, dk, dc))

    def _spatial_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        """G_pp' · E[φ'(u_p)φ'(u_p')] (gradient independence); a white or diagonal gradient
        needs only the diagonal E[φ'(u_p)²]. The two-example form O (a gradient centred over
        the batch by a batch norm above) is multiplied by E[φ'(u_{b,p})φ'(u_{b',p'})], b ≠ b'.
        The gradient above D goes along (:class:`~gradmath.network.base.Tied`) for a batch
        norm right below, whose backward needs D jointly with its own output."""
        x, (mom, q, corr, log_qp) = tape
        if mom is None:  # a drawn law: E[φ'(u_p) φ'(u_p')] over the draws
            dk, dc = corr, log_qp
            gs = g.spatial
            gin = (
                dk * spatial.full(gs, dk.shape[0])
                if gs is not None and gs.ndim == 2
                else (spatial.diagonal(gs, dk.shape[0]) * np.diagonal(dk))
            )
            log_mean, gn = spatial.normalised(gin)
            cross = None if g.cross is None else g.cross * dc * math.exp(-log_mean)
            parts = x.spatial.draws
            of = (x.spatial.cov, *(parts.covs if isinstance(parts, law.Parts) else ()))

            def drawn(i: int) -> tuple[Any, Any, Any, Any]:
                return self._side_kernels(x, i)

            tied = Tied(of, g.log_g, g.spatial, g.cross, drawn, self.activation.deriv)
            return Grad(g.log_g + log_mean, spatial=gn, cross=cross, tied=tied)
        if g.cov != "iid":
            raise GradmathError(
                "gradmath's batch-norm theory on positions covers an activation that receives "
                "the gradient of a convolution, residual sum or pooling layer; here a batch "
                "norm's gradient reaches it directly."
            )
        dd = np.exp(mom.dphi2(log_qp))
        if g.spatial is None or g.spatial.ndim == 1:
            gin = spatial.diagonal(g.spatial, q.size) * dd
        else:
            dk = spatial.pair_kernel(mom, q, corr, deriv=True)
            np.fill_diagonal(dk, dd)
            gin = g.spatial * dk
        log_mean, gn = spatial.normalised(gin)
        sp = x.spatial
        cross = None
        if g.cross is not None and log_mean > -math.inf:
            cross = g.cross * self._cross_kernel(mom, q, sp, deriv=True) * math.exp(-log_mean)

        parts = sp.draws if isinstance(sp.draws, law.Parts) else None

        def kernels(i: int) -> tuple[Any, Any, Any, Any]:
            if i == 0:
                return self._tied_kernels(mom, q, corr, log_qp, x, ctx)
            return self._side_kernels(x, i)

        of = (sp.cov,) if parts is None else (sp.cov, *parts.covs)
        tied = Tied(of, g.log_g, g.spatial, g.cross, kernels, self.activation.deriv)
        return Grad(g.log_g + log_mean, spatial=gn, cross=cross, tied=tied)

    @staticmethod
    def _cross_kernel(mom: Any, q: Any, sp: Any, deriv: bool) -> Any:
        """E[f(u_{b,p}) f(u_{b',p'})] for two examples (f = φ or φ'), from the field's
        two-example moments (0 correlation when they are not tracked)."""
        if sp.cross is None:
            cc = np.zeros((q.size, q.size))
        else:
            d = np.diagonal(sp.cov)
            cc = np.clip(sp.cross / np.sqrt(np.outer(d, d)), -1.0, 1.0)
        out = spatial.pair_kernel(mom, q, cc, deriv=deriv)
        np.fill_diagonal(out, mom.kernels(q, q, np.diagonal(cc).copy(), deriv=deriv))
        return out

    def _side_kernels(self, x: Signal, i: int) -> tuple[Any, Any, Any, Any]:
        """(K_f, C_f, K_g, C_g) over the draws of this activation's input u, for y = u itself
        (i = 0) or the (i − 1)-th side of the residual sum u = x + α·F(x) that u is
        (:class:`~gradmath.network.draws.Parts`, the sides independent)."""
        act = self.activation
        assert x.spatial is not None
        u = np.asarray(x.spatial.draws(), dtype=np.float64) * math.exp(0.5 * x.log_q)
        f = act.deriv(u)
        y = u if i == 0 else np.asarray(x.spatial.draws.sides()[i - 1])
        h = y * f
        out = []
        for v in (f, h):
            a, b = v[:, 0], v[:, 1]
            c = a.T @ b / v.shape[0]
            out += [(a.T @ a + b.T @ b) / (2 * v.shape[0]), 0.5 * (c + c.T)]
        return out[0], out[1], out[2], out[3]

    def _tied_kernels(
        self, mom: Any, q: Any, corr: Any, log_qp: Any, x: Signal, ctx: TheoryContext
    ) -> tuple[Any, Any, Any, Any]:
        """(K_f, C_f, K_g, C_g) at this activation's input law (:class:`Tied`): closed forms
        for a positively homogeneous φ (y·φ'(y) = φ(y), Euler), else K_g and C_g by draws of
        the Gaussian field (:mod:`gradmath.network.draws`)."""
        act = self.activation
        sp = x.spatial
        assert sp is not None
        kf = spatial.pair_kernel(mom, q, corr, deriv=True)
        np.fill_diagonal(kf, np.exp(mom.dphi2(log_qp)))
        cf = self._cross_kernel(mom, q, sp, deriv=True)
        if act.homogeneous:
            scale = math.exp(x.log_q)  # q is in units of e^{log_q} here
            kg = spatial.pair_kernel(mom, q, corr, deriv=False)
            np.fill_diagonal(kg, np.exp([mom.phi2(float(v)) for v in log_qp]))
            cg = self._cross_kernel(mom, q, sp, deriv=False)
            return kf, cf, kg * scale, cg * scale
        u = law.gaussian(sp.cov, sp.cross, seed=2 * ctx.sites.mark() + 1) * math.exp(0.5 * x.log_q)
        h = u * act.deriv(u)
        flat = h.reshape(-1, h.shape[-1])
        kg = flat.T @ flat / flat.shape[0]
        cg = h[:, 0].T @ h[:, 1] / h.shape[0]
        return kf, cf, kg, 0.5 * (cg + cg.T)

    def theory_spectrum(self, x: Signal, ctx: SpectralContext) -> Signal:
        # J ← D J, D = diag φ'(h) with h_i i.i.d. N(0, q) (the forward rule checks the law).
        y = self.theory_forward(x, ctx)[0]
        if x.law.kind != "gaussian":
            raise GradmathError(
                "The Jacobian-spectrum theory covers activations of Gaussian pre-activations "
                "(after a Dense layer); this one follows a batch norm."
            )
        ctx.diagonal_factor(self.activation, x.log_q)
        return y

    # ------------------------------------------------------------------ simulation
    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        act = self.activation
        if act.homogeneous:  # φ(e^s u) = e^s φ(u): stay in scaled units
            return Scaled(act(x.u, out=ctx.empty(x.u.shape)), x.s), x
        h = x.true()
        if h is None:
            raise ctx.out_of_range(
                f"forward signal entering {act!r} (log-space rescaling needs a positively "
                "homogeneous activation such as relu)"
            )
        zero = np.zeros_like(x.s)
        y = act(h, out=ctx.empty(h.shape))
        # The tape keeps φ(h) beside h (the next layer keeps y anyway): φ' may come cheaper
        # from it (Activation.deriv_given_value; tanh: 1 − y²).
        return Scaled(y, zero), (Scaled(h, zero), y)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        if not need_input:
            return g
        act = self.activation
        if act.homogeneous:
            return Scaled(g.u * act.deriv(tape.u), g.s)  # φ' is scale-free for homogeneous φ
        x, y = tape
        if act.deriv_from_value_numpy is None:
            return Scaled(g.u * act.deriv(x.u), g.s)
        d = act.deriv_given_value(x.u, y)  # a new array (its contract): multiply in place
        if d.shape != g.u.shape or d.dtype != g.u.dtype:  # e.g. a Jacobian's rows (spectra)
            return Scaled(g.u * d, g.s)
        return Scaled(np.multiply(d, g.u, out=d), g.s)
