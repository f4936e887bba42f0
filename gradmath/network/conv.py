"""The convolution y = conv(W, x) + b over 1 or 2 spatial axes, its mean-field rule and its
simulation rule.

W has shape (C_out, C_in, *kernel) with i.i.d. zero-mean entries of the initializer's variance v
at fan_in = C_in·∏kernel and fan_out = C_out·∏kernel (PyTorch's ``_calculate_fan_in_and_fan_out``;
orthogonal weights use the flattened (C_out, C_in·∏kernel) matrix, as ``nn.init.orthogonal_``
does); b_c ~ N(0, σ_b²), one bias per output channel. Positions outside the input are zeros
(PyTorch's ``padding_mode="zeros"``).

Mean field (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs", §2.2, eq.
2.4, here with zero padding instead of their circular padding; see
:mod:`gradmath.network.spatial`): per channel, over positions,

    Σ_y = σ_w²·A(K_x) + σ_b²·11ᵀ,    G_x = v·C_out·∏k·Aᵀ(G_y),
    E[(∂ℓ_b/∂W_{o,c,t})²] averaged over taps = Σ_{aa'} (G_y)_{aa'} A(K_x)_{aa'},

with σ_w² = v·fan_in. The reported q is the mean over positions of diag Σ_y: a border position
sees fewer nonzero taps, so q = σ_w²·q_x·ρ + σ_b² with ρ the mean fraction of taps inside the
input, ((3n − 2)/(3n))² for a 3×3 "same" convolution of an n×n white input.

Simulation: a real convolution, im2col (the (C_in·∏k)-long patch of every output position) and
one matrix product per network; backward the transposed products and col2im; the per-example
weight gradient Σ_a δ_{o,a} patch_a is formed for every example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradmath.errors import GradmathError, check_positive_int
from gradmath.initializers import Initializer, initializer
from gradmath.network import spatial
from gradmath.network.base import (
    GAUSSIAN,
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SiteCounter,
    Spatial,
    TheoryContext,
    log0,
    log0_array,
    log_add,
    mean_square,
    numel,
    renormalise,
)
from gradmath.network.batchnorm_positions import weight_gradient
from gradmath.network.dense import check_sigma_b2

__all__ = ["Conv", "spatial_shape"]


def spatial_shape(width: Shape, dim: int, who: str) -> tuple[int, tuple[int, ...]]:
    """(channels, positions) of a (C, *positions) input with ``dim`` spatial axes."""
    if isinstance(width, int) or len(width) != dim + 1:
        got = f"{width} features" if isinstance(width, int) else f"shape {width}"
        raise GradmathError(
            f"{who} needs an input of shape (channels, {'length' if dim == 1 else 'H, W'}) "
            f"({dim} spatial axes), but it receives {got}; give the Network an input shape such "
            "as Network((3, 32, 32), ...)."
        )
    return width[0], tuple(width[1:])


@dataclass(frozen=True)
class Conv(Layer):
    """A convolution with ``channels`` outputs over ``dim`` spatial axes (a site: ``conv1``, …).

    ``kernel``, ``stride``, ``padding`` (zeros; an int, a tuple, ``"same"`` for an odd kernel at
    stride 1, or ``"valid"`` = 0) and ``dilation`` as in ``torch.nn.Conv1d/Conv2d``;
    ``init`` and ``sigma_b2`` (``"init"``: the initializer's own bias, PyTorch's default
    U(±1/√fan_in)) and ``gain`` as in :class:`~gradmath.network.Dense`.

    >>> Conv(16, 3, padding=1).out_width((3, 32, 32))
    (16, 32, 32)
    >>> Conv(8, 5, stride=2, dim=1).out_width((4, 100))
    (8, 48)
    """

    channels: int
    kernel: int | tuple[int, ...] = 3
    init: Initializer | str = "he_normal"
    sigma_b2: float | str = 0.0
    padding: int | tuple[int, ...] | str = 0
    stride: int | tuple[int, ...] = 1
    dim: int = 2
    dilation: int | tuple[int, ...] = 1
    gain: float = 1.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "channels", check_positive_int("channels", self.channels))
        if self.dim not in (1, 2) or isinstance(self.dim, bool):
            raise GradmathError(f"`dim` (={self.dim!r}) must be 1 or 2 (spatial axes).")
        set_(self, "kernel", spatial.dims("kernel", self.kernel, self.dim))
        set_(self, "stride", spatial.dims("stride", self.stride, self.dim))
        set_(self, "dilation", spatial.dims("dilation", self.dilation, self.dim))
        k, s, d = self.kernel, self.stride, self.dilation
        set_(self, "padding", _padding(self.padding, k, s, d, self.dim))  # type: ignore[arg-type]
        set_(self, "init", initializer(self.init))
        set_(self, "sigma_b2", check_sigma_b2(self.sigma_b2))
        g = self.gain
        real = isinstance(g, (int, float, np.integer, np.floating)) and not isinstance(g, bool)
        if not (real and math.isfinite(float(g))):
            raise GradmathError(f"`gain` (={g!r}) must be a finite real number.")
        set_(self, "gain", float(g))

    @property
    def window(self) -> spatial.Window:
        return spatial.Window(self.kernel, self.stride, self.padding, self.dilation)  # type: ignore[arg-type]

    @property
    def _initializer(self) -> Initializer:
        return self.init  # type: ignore[return-value]  # an Initializer after __post_init__

    # ------------------------------------------------------------------ structure
    def out_width(self, width: Shape) -> Shape:
        _, pos = spatial_shape(width, self.dim, "Conv")
        return (self.channels, *self.window.out_shape(pos, "Conv"))

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        out = self.out_width(width)
        c_in, _ = spatial_shape(width, self.dim, "Conv")
        sites.open("conv", self.channels, c_in * self.window.taps)
        return out

    def param_count(self, width: Shape) -> int:
        c_in, _ = spatial_shape(width, self.dim, "Conv")
        return self.channels * (c_in * self.window.taps + 1)

    def state_count(self, width: Shape) -> int:
        c_in, _ = spatial_shape(width, self.dim, "Conv")
        return numel(self.out_width(width)) // self.channels * c_in * self.window.taps

    def fans(self, in_channels: int) -> tuple[int, int]:
        """(fan_in, fan_out) = (C_in·∏k, C_out·∏k); fan_out = C_out for orthogonal weights."""
        taps = self.window.taps
        orth = self._initializer.distribution == "orthogonal"
        return in_channels * taps, self.channels * (1 if orth else taps)

    def weight_var(self, in_channels: int) -> float:
        """Var[W] for ``in_channels`` input channels: gain² times the initializer's variance."""
        return self.gain**2 * self._initializer.variance(*self.fans(in_channels))

    def resolved_sigma_b2(self, in_channels: int) -> float:
        """σ_b² (``"init"``: the initializer's bias at fan_in = C_in·∏k)."""
        if self.sigma_b2 == "init":
            return self._initializer.sigma_b2(self.fans(in_channels)[0])
        return float(self.sigma_b2)

    # ------------------------------------------------------------------ mean field
    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        sp = _spatial_signal(x, "Conv")
        win = self.window
        out_pos = win.out_shape(sp.shape, "Conv")
        v = self.weight_var(x.width)
        a = spatial.window_average(sp.cov, sp.shape, win)
        log_ma, a_n = spatial.normalised(a)
        log_w = log0(x.width * win.taps * v) + x.log_q + log_ma
        log_b = log0(self.resolved_sigma_b2(x.width))
        log_q = log_add(log_w, log_b)
        w_frac = 1.0 if log_q == -math.inf else math.exp(log_w - log_q)
        b_frac = 0.0 if log_q == -math.inf else math.exp(log_b - log_q)
        cov = w_frac * a_n + b_frac
        # two examples: the same map on their cross moments (the bias is shared by both)
        ac = None if sp.cross is None else spatial.window_average(sp.cross, sp.shape, win)
        cross = None if ac is None else w_frac * ac * math.exp(-log_ma) + b_frac
        site = ctx.sites.open("conv", self.channels, x.width * win.taps)
        ctx.rows[0, site] = log_q
        out = Signal(self.channels, log_q, GAUSSIAN, None, 0.0, Spatial(out_pos, cov, cross=cross))
        return out, (site, x, a, v, ac)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, x, a, v, ac = tape
        if g.cov not in ("iid", "centred") or (g.cov == "centred" and g.batch_moments is None):
            raise GradmathError(
                "gradmath's batch-norm theory on positions covers a BatchNorm right after a "
                "convolution; this convolution receives a gradient through another batch norm."
            )
        ctx.rows[1, site] = g.log_g
        gs = g.spatial
        if g.cov == "centred":
            # below a batch norm on positions: the batch gradient sums δ·x over examples and
            # positions with δ centred (batchnorm_positions.weight_gradient)
            assert ac is not None and g.batch_moments is not None
            k_y, c_y, g_y, o_y, tied = g.batch_moments
            if tied is not None:  # through an activation of the batch norm's own output
                s = tied(a, ac)
            else:
                s = weight_gradient(g_y, o_y, a, ac, k_y, c_y, ctx.batch)
        elif gs is None:
            s = float(np.trace(a))
        elif gs.ndim == 1:
            s = float(gs @ np.diagonal(a))
        else:
            s = float(np.sum(gs * a))
        if g.cov != "centred" and g.cross is not None and ac is not None and ctx.batch:
            # the batch gradient per example: the other B − 1 examples' δ pair with x by C
            s += (ctx.batch - 1) * float(np.sum(g.cross * ac))
        ctx.rows[2, site] = g.log_g + x.log_q + log0(s)
        assert x.spatial is not None
        back = spatial.window_adjoint_form(gs, x.spatial.shape, self.window)
        log_mean, gn = spatial.normalised(back)
        cross = None
        if g.cross is not None and log_mean > -math.inf:
            # linear per example: the same map on the two-example form
            cross = spatial.window_average_adjoint(g.cross, x.spatial.shape, self.window)
            cross = cross * math.exp(-log_mean)
        return Grad(g.log_g + log0(self.channels * v) + log_mean, spatial=gn, cross=cross)

    # ------------------------------------------------------------------ simulation
    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        win = self.window
        K, B, c_in = x.u.shape[:3]
        cols, out_pos = spatial.im2col(x.u, win)
        fan_in, fan_out = self.fans(c_in)
        w, b = ctx.draw(self._initializer, (self.channels, fan_in), self.resolved_sigma_b2(c_in))
        # draw() samples a (C_out, C_in·∏k) matrix, whose fan_out is C_out: rescale to the
        # variance at the convolution's fans (Glorot and fan_out modes differ), times gain².
        init = self._initializer
        drawn = init.variance(fan_in, self.channels)
        factor = self.gain * math.sqrt(init.variance(fan_in, fan_out) / drawn)
        if factor != 1.0:
            w *= w.dtype.type(factor)
        if np.any(x.s):
            b *= np.exp(-x.s).astype(b.dtype)[:, None]  # b in the units of x (Dense)
        h = np.matmul(cols, np.swapaxes(w, -1, -2)[:, None])  # (K, B, P_out, C_out)
        h += b[:, None, None, :]
        u = np.ascontiguousarray(np.moveaxis(h, -1, 2)).reshape(K, B, self.channels, *out_pos)
        site = ctx.sites.open("conv", self.channels, fan_in)
        u, s, log_ms = renormalise(u, x.s)
        ctx.forward_log[0, :, site] = 2.0 * x.s + log_ms
        if not np.all(np.isfinite(s)):
            raise ctx.out_of_range("forward signal", site)
        return Scaled(u, s), (site, w, cols, x.s, x.u.shape[2:])

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, w, cols, s_in, in_shape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        K, B, C = g.u.shape[:3]
        d = g.u.reshape(K, B, C, -1)  # (K, B, C_out, P_out)
        # per-example weight gradient Σ_a δ_{o,a} patch_a: (K, B, C_out, C_in·∏k)
        wg = np.matmul(d, cols)
        if ctx.batch_statistics:
            # batch norm couples the examples: the batch gradient per example, ‖Σ_b ·‖²/B
            per = mean_square(wg.sum(axis=1), (-2, -1)) / B
        else:
            per = mean_square(wg, (-2, -1)).mean(axis=1)
        ctx.forward_log[2, :, site] = 2.0 * (g.s + s_in) + log0_array(per)
        if not need_input:
            return g
        dcols = np.matmul(np.swapaxes(d, -1, -2), w[:, None])  # (K, B, P_out, C_in·∏k)
        dx = spatial.col2im(dcols, tuple(in_shape[1:]), int(in_shape[0]), self.window)
        u, s, _ = renormalise(dx, g.s)
        if not np.all(np.isfinite(s)):
            raise ctx.out_of_range("backward gradient", site)
        return Scaled(u, s)


def _padding(
    value: object,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    dim: int,
) -> tuple[int, ...]:
    if value == "valid":
        return (0,) * dim
    if value == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if any(s != 1 for s in stride) or any(t % 2 for t in total):
            raise GradmathError(
                "`padding='same'` needs stride 1 and an odd (dilated) kernel here (gradmath "
                "pads both sides equally); give the padding as numbers instead."
            )
        return tuple(t // 2 for t in total)
    if isinstance(value, str):
        raise GradmathError(
            f"`padding` (={value!r}) must be an int, a tuple of {dim} ints, 'same' or 'valid'."
        )
    return spatial.dims("padding", value, dim, minimum=0)


def _spatial_signal(x: Signal, who: str) -> Spatial:
    if x.spatial is None or x.spatial.flat:
        raise GradmathError(
            f"{who}'s mean-field rule needs a tensor with positions; it follows a flat one."
        )
    return x.spatial
