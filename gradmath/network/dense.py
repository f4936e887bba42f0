"""The affine layer y = W x + b, its mean-field rule and its simulation rule.

W has shape (width, fan_in) = (fan_out, fan_in) with i.i.d. zero-mean entries of the
initializer's variance v (theory.md, "Network and notation"); b_i ~ N(0, σ_b²).

Mean field (Poole et al. 2016, eq. 3 with unequal widths; Schoenholz et al. 2017, §4):

    q_y = fan_in·v·q_x + σ_b²,          c_y q_y = fan_in·v·c_x q_x + σ_b²  (two examples)
    q̃_x = fan_out·v·q̃_y,               E[(∂ℓ_b/∂W_ij)²] = q̃_y·q_x      (gradient independence)

The forward multiplier is fan_in·Var[W] and the backward one fan_out·Var[W]; they differ when
widths change, which is what Glorot's fan_avg compromises between (Glorot & Bengio 2010, §4.2).
The output is a centred Gaussian at infinite width, whatever the input's law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.errors import GradmathError, check_positive_int
from gradmath.initializers import Initializer, initializer
from gradmath.network.base import (
    GAUSSIAN,
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
    log0,
    log0_array,
    log_add,
    mean_square,
    renormalise,
)

__all__ = ["Dense", "check_sigma_b2"]


def check_sigma_b2(b: object) -> float | str:
    """A bias variance: a finite number >= 0, or ``"init"`` (the initializer's own bias)."""
    if isinstance(b, str):
        if b != "init":
            raise GradmathError(
                f"`sigma_b2` (={b!r}) must be a bias variance (a finite number >= 0) or "
                "'init' (the initializer's own bias, e.g. PyTorch's U(±1/√fan_in))."
            )
        return b
    try:
        v = float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(b, bool) or not (math.isfinite(v) and v >= 0):
        raise GradmathError(f"`sigma_b2` (={b!r}) must be a finite bias variance >= 0.")
    return v


@dataclass(frozen=True)
class Dense(Layer):
    """y = W x + b with ``width`` outputs (a site: ``dense1``, ``dense2``, …).

    ``init``: an initializer name or object (its variance at (fan_in, width) is the weights').
    ``sigma_b2``: the bias variance σ_b², or ``"init"`` for the initializer's own (PyTorch's
    ``nn.Linear`` default U(±1/√fan_in), variance 1/(3·fan_in); 0 for the others).
    ``gain``: a factor on the sampled weights (variance × gain²), as Fixup scales its branch
    layers (Zhang, Dauphin & Ma 2019); ``gain=0`` is a zero-initialised layer.

    >>> Dense(256, init="he_normal").out_width(784)
    256
    """

    width: int
    init: Initializer | str = "he_normal"
    sigma_b2: float | str = 0.0
    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", check_positive_int("width", self.width))
        object.__setattr__(self, "init", initializer(self.init))
        self._check_gain()
        object.__setattr__(self, "sigma_b2", check_sigma_b2(self.sigma_b2))

    @property
    def _initializer(self) -> Initializer:
        return self.init  # type: ignore[return-value]  # an Initializer after __post_init__

    def _check_gain(self) -> None:
        g = self.gain
        if isinstance(g, bool) or not isinstance(g, (int, float, np.integer, np.floating)):
            raise GradmathError(f"`gain` (={g!r}) must be a finite real number.")
        if not math.isfinite(float(g)):
            raise GradmathError(f"`gain` (={g!r}) must be a finite real number.")
        if g != 0 and not 1e-150 <= abs(float(g)) <= 1e150:
            # The variance carries gain²: beyond these it under- or overflows float64, and a
            # variance of exactly 0 would read as a zero-initialised layer.
            raise GradmathError(
                f"`gain` (={g!r}) must be 0 or between 1e-150 and 1e150 in magnitude "
                "(the weight variance carries gain²)."
            )
        object.__setattr__(self, "gain", float(g))

    # ------------------------------------------------------------------ structure
    def out_width(self, width: Shape) -> Shape:
        flat_width(width, "Dense")
        return self.width

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open("dense", self.width, flat_width(width, "Dense"))
        return self.width

    def weight_var(self, fan_in: int) -> float:
        """Var[W_ij] for this fan_in: gain² times the initializer's variance."""
        return self._variances(fan_in)[0]

    def resolved_sigma_b2(self, fan_in: int) -> float:
        """σ_b² for this fan_in."""
        return self._variances(fan_in)[1]

    def _variances(self, fan_in: int) -> tuple[float, float]:
        # A pure memo (the values depend on fan_in only): a depth-10,000 fold asks per layer.
        memo: dict[int, tuple[float, float]] = self.__dict__.setdefault("_memo", {})
        v = memo.get(fan_in)
        if v is None:
            init = self._initializer
            b = init.sigma_b2(fan_in) if self.sigma_b2 == "init" else float(self.sigma_b2)
            v = memo[fan_in] = (self.gain**2 * init.variance(fan_in, self.width), b)
        return v

    def param_count(self, width: Shape) -> int:
        return self.width * (flat_width(width, "Dense") + 1)

    # ------------------------------------------------------------------ mean field
    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        v = self.weight_var(x.width)
        log_fwd = log0(x.width * v)
        log_b = log0(self.resolved_sigma_b2(x.width))
        log_q = log_add(log_fwd + x.log_q, log_b)
        # (the input's mean enters through q_x = E[x²]; zero-mean weights centre the output)
        c = None
        if x.c is not None and log_q > -math.inf:
            cross = math.exp(log_fwd + x.log_q - log_q) * x.c + math.exp(log_b - log_q)
            c = min(1.0, max(-1.0, cross))
        site = ctx.sites.open("dense", self.width, x.width)
        ctx.rows[0, site] = log_q
        return Signal(self.width, log_q, GAUSSIAN, c), (site, x, v)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, x, v = tape
        ctx.rows[1, site] = g.log_g
        ctx.rows[2, site] = g.log_g + x.log_q
        if g.cov == "dpd":
            raise GradmathError(
                "A Dense layer sits between an activation and the batch norm it follows; "
                "gradmath's batch-norm theory covers Dense → BatchNorm → activation stacks."
            )
        log_back = log0(self.width * v)
        return Grad(g.log_g + log_back, g.cov, g.log_gamma + log_back, g.act)

    def theory_spectrum(self, x: Signal, ctx: SpectralContext) -> Signal:
        # J ← W J: the bias does not enter the Jacobian.
        ctx.weight_factor(
            self._initializer, x.width * self.weight_var(x.width), x.width, self.width
        )
        return self.theory_forward(x, ctx)[0]

    # ------------------------------------------------------------------ simulation
    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        fan_in = x.u.shape[-1]
        sigma_b2 = self.resolved_sigma_b2(fan_in)
        # (b is drawn even when σ_b² = 0, so the weights' random stream does not depend on it)
        w, b = ctx.draw(self._initializer, (self.width, fan_in), sigma_b2)
        if self.gain != 1.0:
            w *= w.dtype.type(self.gain)
        a = np.matmul(x.u, np.swapaxes(w, -1, -2), out=ctx.empty((*x.u.shape[:-1], self.width)))
        if sigma_b2 != 0:  # else b = 0 and adding it is a pass over the stack for nothing
            if np.any(x.s):
                # b enters in the units of x: value e^s·(W u + e^{−s} b).
                b *= np.exp(-x.s).astype(b.dtype)[:, None]
            a += b[:, None, :]
        site = ctx.sites.open("dense", self.width, fan_in)
        u, s, log_ms = renormalise(a, x.s)
        ctx.forward_log[0, :, site] = 2.0 * x.s + log_ms
        if not np.isfinite(s).all():
            raise ctx.out_of_range("forward signal", site)
        return Scaled(u, s), (site, w, x)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, w, x = tape
        rows = mean_square(g.u, (-1,))  # (K, batch): one pass gives both statistics
        # (the sum over the batch divided by its size: np.mean's arithmetic, without its overhead)
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(
            np.add.reduce(rows, axis=-1) / rows.shape[-1]
        )
        # Per-example weight gradient ∂ℓ_b/∂W = δ_b x_bᵀ: E over b of ‖δ_b‖²‖x_b‖²/(n_out n_in).
        per = np.einsum("kb,kb->k", rows, mean_square(x.u, (-1,)), dtype=np.float64)
        ctx.forward_log[2, :, site] = 2.0 * (g.s + x.s) + log0_array(per / g.u.shape[-2])
        if not need_input:
            return g
        u, s, _ = renormalise(np.matmul(g.u, w), g.s)
        if not np.isfinite(s).all():
            raise ctx.out_of_range("backward gradient", site)
        return Scaled(u, s)
