"""Average pooling, global average pooling and Flatten: their mean-field and simulation rules.

Average pooling is linear over positions, y = P x per channel (P the window average; padded
zeros count, PyTorch's ``count_include_pad=True``), so at infinite channels it maps the
positions' second-moment matrix exactly (:mod:`gradmath.network.spatial`):

    K_y = P K_x Pᵀ,     G_x = Pᵀ G_y P.

Its forward second moment therefore depends on the correlations between the positions of a
window, E[x_p x_p'], not only on their variances: for a 2×2 pool of independent positions
q_y = q_x/4, of identical ones q_y = q_x. gradmath carries the whole matrix through every
layer (Xiao et al. 2018's covariance map, with zero padding) instead of guessing; after a
ReLU, neighbouring positions are correlated by E[φ]² > 0 even when their pre-activations are
not. Global average pooling is P = 11ᵀ/n over all n positions: q_y = mean of K_x; its gradient
sends q̃_y/n² to every pair of positions (fully correlated), which makes the derivative
kernel E[φ'(u)φ'(u')] of the activations below it matter. Flatten changes nothing but the
shape (a Dense layer after it has fan_in = C·n).

Max pooling has no such closed rule (the maximum of correlated non-Gaussian variables); it is
not a layer here (``gradmath.torch`` measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError
from gradmath.network import spatial
from gradmath.network.base import (
    Grad,
    Layer,
    Scaled,
    Shape,
    Signal,
    SimContext,
    SiteCounter,
    Spatial,
    TheoryContext,
    log0_array,
    mean_square,
)
from gradmath.network.conv import spatial_shape

__all__ = ["AdaptiveAvgPool", "AvgPool", "Flatten", "GlobalAvgPool", "adaptive_matrix"]

FloatArray = NDArray[np.float64]


def check_window(layer: Any) -> None:
    """Validate and normalise a pooling layer's ``dim``, ``kernel``, ``stride`` (default: the
    kernel) and ``padding`` (at most half the kernel, as in PyTorch) in place."""
    set_ = object.__setattr__
    if layer.dim not in (1, 2) or isinstance(layer.dim, bool):
        raise GradmathError(f"`dim` (={layer.dim!r}) must be 1 or 2 (spatial axes).")
    set_(layer, "kernel", spatial.dims("kernel", layer.kernel, layer.dim))
    stride = layer.kernel if layer.stride is None else layer.stride
    set_(layer, "stride", spatial.dims("stride", stride, layer.dim))
    set_(layer, "padding", spatial.dims("padding", layer.padding, layer.dim, minimum=0))
    if any(2 * p > k for p, k in zip(layer.padding, layer.kernel, strict=True)):
        raise GradmathError(
            f"`padding` (={layer.padding}) must be at most half the kernel ({layer.kernel}), "
            "as in PyTorch."
        )


def _positions(x: Signal, who: str) -> Spatial:
    if x.spatial is None or x.spatial.flat:
        raise GradmathError(f"{who} needs a tensor with positions; it follows a flat one.")
    return x.spatial


def _iid(g: Grad, who: str) -> None:
    if g.cov != "iid":
        raise GradmathError(
            f"gradmath's batch-norm theory does not cover {who} (batch norm over positions)."
        )


@dataclass(frozen=True)
class AvgPool(Layer):
    """Average pooling over ``dim`` spatial axes (a site: ``avgpool1``, …), as
    ``torch.nn.AvgPool1d/2d`` with ``count_include_pad=True``; ``stride`` defaults to the
    kernel.

    >>> AvgPool(2).out_width((16, 8, 8))
    (16, 4, 4)
    """

    kernel: int | tuple[int, ...] = 2
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    dim: int = 2

    def __post_init__(self) -> None:
        check_window(self)

    @property
    def window(self) -> spatial.Window:
        return spatial.Window(
            self.kernel,  # type: ignore[arg-type]
            self.stride,  # type: ignore[arg-type]
            self.padding,  # type: ignore[arg-type]
            (1,) * self.dim,
        )

    def out_width(self, width: Shape) -> Shape:
        c, pos = spatial_shape(width, self.dim, "AvgPool")
        return (c, *self.window.out_shape(pos, "AvgPool"))

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        out = self.out_width(width)
        sites.open("avgpool", spatial_shape(width, self.dim, "AvgPool")[0])
        return out

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        sp = _positions(x, "AvgPool")
        p = spatial.pool_matrix(sp.shape, self.window)
        return _linear_forward(x, p, self.window.out_shape(sp.shape, "AvgPool"), ctx)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        return _linear_backward(tape, g, ctx)

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        K, B, C = x.u.shape[:3]
        cols, out_pos = spatial.im2col(x.u, self.window)
        m = cols.reshape(K, B, -1, C, self.window.taps).mean(axis=-1)
        u = np.ascontiguousarray(np.moveaxis(m, -1, 2)).reshape(K, B, C, *out_pos)
        site = ctx.sites.open("avgpool", C)
        ctx.forward_log[0, :, site] = 2.0 * x.s + log0_array(mean_square(u))
        return Scaled(u, x.s), (site, x.u.shape[2:])

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, in_shape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        K, B, C = g.u.shape[:3]
        taps = self.window.taps
        d = np.moveaxis(g.u.reshape(K, B, C, -1), 2, -1) / g.u.dtype.type(taps)  # (K,B,P,C)
        cols = np.repeat(d[..., None], taps, axis=-1).reshape(K, B, d.shape[2], C * taps)
        dx = spatial.col2im(cols, tuple(in_shape[1:]), C, self.window)
        return Scaled(dx, g.s)


def _linear_forward(
    x: Signal, p: FloatArray, out_pos: tuple[int, ...], ctx: TheoryContext
) -> tuple[Signal, Any]:
    """K_y = P K_x Pᵀ for a linear map P (P_out, P_in) over one channel's positions."""
    assert x.spatial is not None
    log_mean, cov = spatial.normalised(p @ x.spatial.cov @ p.T)
    cross = x.spatial.cross
    if cross is not None:
        cross = p @ cross @ p.T * math.exp(-log_mean)
    log_q = x.log_q + log_mean
    site = ctx.sites.open("avgpool", x.width)
    ctx.rows[0, site] = log_q
    return x._replace(log_q=log_q, spatial=Spatial(out_pos, cov, cross=cross)), (site, p)


def _linear_backward(tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
    """G_x = Pᵀ G_y P."""
    site, p = tape
    _iid(g, "average pooling")
    ctx.rows[1, site] = g.log_g
    gs = g.spatial
    if gs is None:
        back = p.T @ p
    elif gs.ndim == 1:
        back = (p.T * gs) @ p
    else:
        back = p.T @ gs @ p
    log_mean, gn = spatial.normalised(back)
    # linear per example: the two-example form maps the same way
    cross = None if g.cross is None else p.T @ g.cross @ p * math.exp(-log_mean)
    return Grad(g.log_g + log_mean, spatial=gn, cross=cross)


def adaptive_matrix(shape: tuple[int, ...], out: tuple[int, ...]) -> FloatArray:
    """P (P_out, P_in) of PyTorch's adaptive average pooling: output i of an axis of n inputs
    and m outputs averages inputs floor(i·n/m) … ceil((i+1)·n/m) − 1; the axes are separable."""
    p: FloatArray = np.ones((1, 1))
    for n, m in zip(shape, out, strict=True):
        a = np.zeros((m, n))
        for i in range(m):
            lo, hi = (i * n) // m, -((-(i + 1) * n) // m)
            a[i, lo:hi] = 1.0 / (hi - lo)
        p = np.asarray(np.kron(p, a), dtype=np.float64)
    return p


@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """``torch.nn.AdaptiveAvgPool1d/2d(output_size)`` (a site: ``avgpool1``, …): windows of
    varying size that tile the input (torchvision's VGG pools to 7×7 this way, replicating a
    smaller input). ``GlobalAvgPool`` is output size 1 followed by ``Flatten``.

    >>> AdaptiveAvgPool(7).out_width((512, 1, 1))
    (512, 7, 7)
    """

    output_size: int | tuple[int, ...] = 1
    dim: int = 2

    def __post_init__(self) -> None:
        if self.dim not in (1, 2) or isinstance(self.dim, bool):
            raise GradmathError(f"`dim` (={self.dim!r}) must be 1 or 2 (spatial axes).")
        object.__setattr__(
            self, "output_size", spatial.dims("output_size", self.output_size, self.dim)
        )

    @property
    def _out(self) -> tuple[int, ...]:
        return self.output_size  # type: ignore[return-value]  # a tuple after __post_init__

    def out_width(self, width: Shape) -> Shape:
        c, _ = spatial_shape(width, self.dim, "AdaptiveAvgPool")
        return (c, *self._out)

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open("avgpool", spatial_shape(width, self.dim, "AdaptiveAvgPool")[0])
        return self.out_width(width)

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        sp = _positions(x, "AdaptiveAvgPool")
        return _linear_forward(x, adaptive_matrix(sp.shape, self._out), self._out, ctx)

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        return _linear_backward(tape, g, ctx)

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        K, B, C = x.u.shape[:3]
        p = adaptive_matrix(tuple(x.u.shape[3:]), self._out).astype(x.u.dtype)
        u = np.matmul(x.u.reshape(K, B, C, -1), p.T).reshape(K, B, C, *self._out)
        site = ctx.sites.open("avgpool", C)
        ctx.forward_log[0, :, site] = 2.0 * x.s + log0_array(mean_square(u))
        return Scaled(u, x.s), (site, p, x.u.shape)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, p, in_shape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        K, B, C = g.u.shape[:3]
        return Scaled(np.matmul(g.u.reshape(K, B, C, -1), p).reshape(in_shape), g.s)


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """The mean over all positions of each channel (a site: ``avgpool1``, …); the output is
    flat, (C, *positions) → C, as ``AdaptiveAvgPool2d(1)`` followed by ``Flatten``.

    >>> GlobalAvgPool().out_width((64, 4, 4))
    64
    """

    def out_width(self, width: Shape) -> Shape:
        if isinstance(width, int) or len(width) < 2:
            raise GradmathError(
                f"GlobalAvgPool needs an input of shape (channels, *positions), got {width}."
            )
        return width[0]

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        out = self.out_width(width)
        sites.open("avgpool", out)  # type: ignore[arg-type]  # an int here
        return out

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        sp = _positions(x, "GlobalAvgPool")
        mean = float(np.mean(sp.cov))
        log_q = x.log_q + (math.log(mean) if mean > 0 else -math.inf)
        # two examples' channel means: E[ȳ_b ȳ_b'] = mean of C
        c = None if sp.cross is None or not mean > 0 else float(np.mean(sp.cross)) / mean
        site = ctx.sites.open("avgpool", x.width)
        ctx.rows[0, site] = log_q
        return Signal(x.width, log_q, x.law, c, x.mean), (site, sp.cov.shape[0])

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, n = tape
        _iid(g, "GlobalAvgPool")
        ctx.rows[1, site] = g.log_g
        # δ_p = δ_y/n at every position: E[δ_p δ_p'] = q̃_y/n², fully correlated
        return Grad(g.log_g - 2.0 * math.log(n), spatial=np.ones((n, n)))

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        u = x.u.mean(axis=tuple(range(3, x.u.ndim)))
        site = ctx.sites.open("avgpool", u.shape[-1])
        ctx.forward_log[0, :, site] = 2.0 * x.s + log0_array(mean_square(u))
        return Scaled(u, x.s), (site, x.u.shape[2:])

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, in_shape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        n = math.prod(in_shape[1:])
        u = np.broadcast_to(
            (g.u / g.u.dtype.type(n)).reshape(*g.u.shape, *(1,) * (len(in_shape) - 1)),
            (*g.u.shape[:2], *in_shape),
        ).copy()
        return Scaled(u, g.s)


@dataclass(frozen=True)
class Flatten(Layer):
    """(C, *positions) → C·∏positions, channel-major (``torch.nn.Flatten``'s order); no site.

    >>> Flatten().out_width((16, 4, 4))
    256
    """

    def out_width(self, width: Shape) -> Shape:
        if isinstance(width, int):
            return width
        return math.prod(width)

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        if x.spatial is None or x.spatial.flat:
            return x, None
        n = x.spatial.cov.shape[0]
        cross = x.spatial.cross
        # one unit per (channel, position): its two-example correlation, averaged over them
        c = None if cross is None else float(np.mean(np.diagonal(cross)))
        return x._replace(width=x.width * n, c=c, spatial=x.spatial._replace(flat=True)), None

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        return g

    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        K, B = x.u.shape[:2]
        return Scaled(x.u.reshape(K, B, -1), x.s), x.u.shape

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        return Scaled(g.u.reshape(tape), g.s)
