"""The residual block y = x + α·F(x), with any branch F, both rules.

Yang & Schoenholz (2017), "Mean Field Residual Networks: On the Edge of Chaos" (theory.md,
"Residual networks"). With F's parameters independent of x and F(x) centred (its last layer
affine), the cross term vanishes in expectation at every width:

    q_y = q_x + α² q_F,                 c_y q_y = c_x q_x + α² c_F q_F
    q̃_x = q̃_y + q̃_{F,in},             where the branch's backward rule is run from α² q̃_y

(the second line assumes gradient independence, exact for the top block and as width → ∞).
α = 0 is ReZero (Bachlechner et al. 2020): y = x exactly and every branch gradient is 0.
Branch scalings of SkipInit (De & Smith 2020) and Fixup (Zhang, Dauphin & Ma 2019) are
choices of α and of the branch's layers; see ``gradmath.network.fixup``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.activations import Activation
from gradmath.errors import GradmathError
from gradmath.network import draws, spatial
from gradmath.network.base import (
    GAUSSIAN,
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
    features,
    log0_array,
    log_add,
    mean_square,
    per_network,
)

__all__ = ["Residual"]


@dataclass(frozen=True)
class Residual(Layer):
    """y = x + α·branch(x) (a site: ``residual1``, …); the branch must keep the width.

    ``shortcut``: a layer on the skip path instead of the identity, y = shortcut(x) +
    α·branch(x) (ResNet's projection, e.g. a strided 1×1 convolution); its output must have
    the branch's shape. Its weights are independent of the branch's, so the cross term still
    vanishes; its sites come after the branch's.

    >>> from gradmath.network import Dense, Serial
    >>> Residual(Serial(Dense(16), "relu", Dense(16)), alpha=0.5).out_width(16)
    16
    >>> Residual(Serial(Dense(16), "relu", Dense(16)), shortcut=Dense(16)).out_width(8)
    16
    """

    branch: Layer | Activation | str
    alpha: float = 1.0
    shortcut: Layer | None = None

    def __post_init__(self) -> None:
        from gradmath.network.combinators import as_layer

        object.__setattr__(self, "branch", as_layer(self.branch))
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer)):
            raise GradmathError(f"`alpha` (={a!r}) must be a finite real branch scale.")
        if not math.isfinite(float(a)):
            raise GradmathError(f"`alpha` (={a!r}) must be a finite real branch scale.")
        object.__setattr__(self, "alpha", float(a))
        if self.shortcut is not None:
            object.__setattr__(self, "shortcut", as_layer(self.shortcut))

    @property
    def _branch(self) -> Layer:
        return self.branch  # type: ignore[return-value]  # a Layer after __post_init__

    def children(self) -> tuple[Layer, ...]:
        return (self._branch,) if self.shortcut is None else (self._branch, self.shortcut)

    def out_width(self, width: Shape) -> Shape:
        out = self._branch.out_width(width)
        if self.shortcut is not None:
            skip = self.shortcut.out_width(width)
            if out != skip:
                raise GradmathError(
                    f"A residual branch and its shortcut must agree: the branch maps {width} "
                    f"to {out}, the shortcut to {skip}."
                )
            return out
        if out != width:
            raise GradmathError(
                f"A residual branch must keep the width: it maps {width} units to {out}."
            )
        return width

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        out = self.out_width(width)
        self._branch.open_sites(width, sites)
        if self.shortcut is not None:
            self.shortcut.open_sites(width, sites)
        sites.open("residual", features(out))
        return out

    def param_count(self, width: Shape) -> int:
        skip = 0 if self.shortcut is None else self.shortcut.param_count(width)
        return self._branch.param_count(width) + skip

    def state_count(self, width: Shape) -> int:
        skip = 0 if self.shortcut is None else self.shortcut.state_count(width)
        return self._branch.state_count(width) + skip

    @property
    def _log_a2(self) -> float:
        return 2.0 * math.log(abs(self.alpha)) if self.alpha else -math.inf

    # ------------------------------------------------------------------ mean field
    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        f, tape = self._branch.theory_forward(x, ctx)
        skip_tape = None
        if self.shortcut is not None:
            x, skip_tape = self.shortcut.theory_forward(x, ctx)
        log_qf = self._log_a2 + f.log_q
        log_q = log_add(x.log_q, log_qf)
        mean = None if x.mean is None or f.mean is None else x.mean + self.alpha * f.mean
        if x.mean and f.mean and self.alpha:
            # E[x F(x)] = E[x] E[F(x)] at infinite width (a unit's branch output depends on x
            # only through a sum over all units): the cross term when neither is centred.
            log_q = math.log(math.exp(log_q) + 2.0 * self.alpha * x.mean * f.mean)
        c = None
        if x.c is not None and f.c is not None:
            c = math.exp(x.log_q - log_q) * x.c + math.exp(log_qf - log_q) * f.c
        law = GAUSSIAN if x.law.kind == f.law.kind == "gaussian" else OTHER
        sp = None
        if x.spatial is not None or f.spatial is not None:
            if x.spatial is None or f.spatial is None or x.spatial.flat != f.spatial.flat:
                raise GradmathError(
                    "A residual branch must keep the positions of its input (a convolutional "
                    "branch on a tensor with positions, a flat one on a flat tensor)."
                )
            # no cross term: the branch's output is centred given x (its last layer affine)
            wx, wf = math.exp(x.log_q - log_q), math.exp(log_qf - log_q)
            cov = wx * x.spatial.cov + wf * f.spatial.cov
            cross = None
            if x.spatial.cross is not None and f.spatial.cross is not None:
                cross = wx * x.spatial.cross + wf * f.spatial.cross
            # not Gaussian (an activation's output plus a branch): carried by draws, the two
            # sides independent at infinite width (the branch's weights are fresh); Gaussian:
            # the draws serve only an activation after the sum whose backward integrates with
            # a side (a batch norm feeding the sum, draws.Parts), evaluated if asked for
            sp = x.spatial._replace(
                cov=cov, cross=cross, draws=_sum_draws(x, f, self.alpha, log_q, ctx)
            )
        site = ctx.sites.open("residual", x.width)
        ctx.rows[0, site] = log_q
        return Signal(x.width, log_q, law, c, mean, sp), (site, tape, skip_tape)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, branch_tape, skip_tape = tape
        ctx.rows[1, site] = g.log_g
        if g.cov != "iid":
            raise GradmathError(
                "gradmath's batch-norm theory does not cover a residual block below a batch "
                "norm; put normalisation inside the branch (e.g. pre-LN) instead."
            )
        # an activation after the sum hands on Γ above its D (Tied) for a batch norm that
        # ends the branch or the shortcut: the branch sees it times α²
        tied = None if g.tied is None else g.tied._replace(log_g=g.tied.log_g + self._log_a2)
        gb = self._branch.theory_backward(
            branch_tape,
            Grad(g.log_g + self._log_a2, spatial=g.spatial, cross=g.cross, tied=tied),
            ctx,
        )
        if self.shortcut is not None:
            g = self.shortcut.theory_backward(skip_tape, g, ctx)
            if g.cov != "iid":
                raise GradmathError(
                    "gradmath's batch-norm theory does not cover a batch norm on a residual "
                    "shortcut."
                )
        log_g = log_add(g.log_g, gb.log_g)
        if g.spatial is None and gb.spatial is None:
            return Grad(log_g)
        n = (g.spatial if g.spatial is not None else gb.spatial).shape[0]  # type: ignore[union-attr]
        full = any(v is not None and v.ndim == 2 for v in (g.spatial, gb.spatial))
        form = spatial.full if full else spatial.diagonal
        total = math.exp(g.log_g - log_g) * form(g.spatial, n)
        if gb.log_g > -math.inf:
            total = total + math.exp(gb.log_g - log_g) * form(gb.spatial, n)
        log_mean, gn = spatial.normalised(total)
        # the two-example forms add too: the branch's weights are independent of the skip's
        cross = None
        for side in (g, gb):
            if side.cross is not None and side.log_g > -math.inf:
                part = math.exp(side.log_g - log_g - log_mean) * side.cross
                cross = part if cross is None else cross + part
        return Grad(log_g + log_mean, spatial=gn, cross=cross)

    def theory_spectrum(self, x: Signal, ctx: SpectralContext) -> Signal:
        # ReZero (α = 0): y = x exactly, J unchanged. Otherwise J ← (I + α J_F) J, a sum, not a
        # product of free factors: its singular values need the non-Hermitian (hermitised)
        # calculus; Tarnowski et al. (2019) give only the joint limit width, depth → ∞ with
        # α² ~ 1/L, which is not the law of a finite-depth net. gradmath refuses.
        y = self.theory_forward(x, ctx)[0]
        if self.alpha == 0.0:
            return y
        raise GradmathError(
            f"gradmath has no finite-depth free-probability law for the Jacobian spectrum of a "
            f"residual block (α = {self.alpha:g}): J = I + α·J_branch is a sum, not a product "
            "of free factors (Tarnowski et al. 2019 treat only the limit of infinite depth "
            "with α² ~ 1/L). Sample it instead (gradmath.numeric.spectra.sample_spectra)."
        )

    # ------------------------------------------------------------------ simulation
    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        f, tape = self._branch.sim_forward(x, ctx)
        skip_tape = None
        if self.shortcut is not None:
            x, skip_tape = self.shortcut.sim_forward(x, ctx)
        s = np.maximum(x.s, f.s)
        u = x.u * per_network(np.exp(x.s - s), x.u)
        u += per_network(self.alpha * np.exp(f.s - s), x.u) * f.u
        site = ctx.sites.open("residual", u.shape[2])
        ctx.forward_log[0, :, site] = 2.0 * s + log0_array(mean_square(u))
        return Scaled(u, s), (site, tape, skip_tape)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, branch_tape, skip_tape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        gb = self._branch.sim_backward(
            branch_tape, Scaled(g.u * g.u.dtype.type(self.alpha), g.s), ctx, need_input
        )
        if self.shortcut is not None:
            g = self.shortcut.sim_backward(skip_tape, g, ctx, need_input)
        if not need_input:
            return g
        s = np.maximum(g.s, gb.s)
        u = g.u * per_network(np.exp(g.s - s), g.u)
        u += per_network(np.exp(gb.s - s), g.u) * gb.u
        return Scaled(u, s)


def _sum_draws(x: Signal, f: Signal, alpha: float, log_q: float, ctx: TheoryContext) -> Any:
    """Draws of x + α·f (in units of e^{log_q/2}) from each side's draws or, for a Gaussian
    side, fresh Gaussian draws, keeping the sides (:class:`~gradmath.network.draws.Parts`);
    ``None`` when a non-Gaussian side has none."""
    sides = []
    mark = ctx.sites.mark()
    for k, (sig, w) in enumerate(((x, 1.0), (f, alpha))):
        sp = sig.spatial
        assert sp is not None
        if sp.draws is None and sig.law.kind != "gaussian":
            return None
        sides.append((sp, w * math.exp(0.5 * (sig.log_q - log_q)), 2 * (mark + k) + 1, sig))

    def own() -> Any:
        # each side in its own units (a batch norm's output: the output itself)
        out = []
        for sp, _, seed, sig in sides:
            d = sp.draws() if sp.draws is not None else draws.gaussian(sp.cov, sp.cross, seed)
            out.append(np.asarray(d) * math.exp(0.5 * sig.log_q))
        return out

    def drawn() -> Any:
        total: Any = 0.0
        for (_, w, _, sig), d in zip(sides, parts.sides(), strict=True):
            total = total + w * math.exp(-0.5 * sig.log_q) * d
        return total

    parts = draws.Parts(drawn, tuple(sp.cov for sp, *_ in sides), own)
    return parts
