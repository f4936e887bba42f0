"""Max-pooling y_w = max over a window of φ(x) (``nn.MaxPool1d/2d`` after an activation), both
rules.

The maximum of a window is not a linear map and its output is not Gaussian, so its mean-field
rule integrates the exact infinite-channel law by draws (:mod:`gradmath.network.draws`): one
channel's input field over the positions of two examples is Gaussian with the moments K (one
example) and C (two) that the layers before carry; the layer draws it, applies φ and the
window maximum, and reads the output's K and C (for the Gaussian layers after it) and keeps
the draws (for a non-Gaussian layer after it, such as a residual sum). Padding is −∞, as in
PyTorch.

Backward. The gradient reaches only the selected position of each window, times φ' there:
with T_{w,p} = [p = argmax_w]·φ'(x_p) per draw and G the gradient's covariance between the
output's positions,

    G_x = E[Tᵀ G T]        (gradient independence: G independent of the forward draws).

The activation belongs to the layer because gradient independence fails across it: the
selected position is a large value of φ(x), where φ' is not a typical value (for ReLU it is 1,
not E[φ'²] = 1/2), so φ then max-pooling must be taken together.
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
    SiteCounter,
    Spatial,
    TheoryContext,
    log0_array,
    mean_square,
)
from gradmath.network.conv import spatial_shape
from gradmath.network.pooling import check_window

__all__ = ["MaxPool"]


@dataclass(frozen=True)
class MaxPool(Layer):
    """``nn.MaxPool1d/2d(kernel, stride, padding)`` (dilation 1, floor mode) of ``act``
    applied first (``None``: of the input itself); a site: ``maxpool1``, …

    >>> MaxPool(3, 2, 1, act="relu").out_width((64, 16, 16))
    (64, 8, 8)
    """

    kernel: int | tuple[int, ...] = 2
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    act: Activation | str | None = None
    dim: int = 2

    def __post_init__(self) -> None:
        check_window(self)
        if self.act is not None:
            object.__setattr__(self, "act", activation(self.act))

    @property
    def window(self) -> spatial.Window:
        return spatial.Window(self.kernel, self.stride, self.padding, (1,) * self.dim)  # type: ignore[arg-type]

    @property
    def _act(self) -> Activation | None:
        return self.act  # type: ignore[return-value]

    def out_width(self, width: Shape) -> Shape:
        c, pos = spatial_shape(width, self.dim, "MaxPool")
        return (c, *self.window.out_shape(pos, "MaxPool"))

    def open_sites(self, width: Shape, sites: SiteCounter) -> Shape:
        sites.open("maxpool", spatial_shape(width, self.dim, "MaxPool")[0])
        return self.out_width(width)

    # ------------------------------------------------------------------ mean field
    def _input_draws(self, x: Signal, ctx: TheoryContext) -> np.ndarray:
        sp = x.spatial
        if sp is None or sp.flat:
            raise GradmathError("MaxPool needs a tensor with positions; it follows a flat one.")
        if sp.draws is not None:
            return np.asarray(sp.draws())
        if x.law.kind != "gaussian":
            raise GradmathError(
                "MaxPool's mean-field rule needs the law of its input: a Gaussian one (a "
                "convolution's or batch norm's output, with the activation given to MaxPool) "
                "or one carried by draws."
            )
        return law.gaussian(sp.cov, sp.cross, seed=2 * ctx.sites.mark() + 1)

    def theory_forward(self, x: Signal, ctx: TheoryContext) -> tuple[Signal, Any]:
        u = self._input_draws(x, ctx)  # in units of e^{log_q/2}
        act = self._act
        scale = math.exp(0.5 * x.log_q)
        homogeneous = act is None or act.homogeneous
        v = u if act is None else act(u if homogeneous else u * scale)
        shape = x.spatial.shape  # type: ignore[union-attr]
        pooled, idx = _pool(v.reshape(-1, *shape), self.window)
        pooled = pooled.reshape(u.shape[0], 2, -1)
        log_mean, k, c = law.moments(pooled)
        log_q = log_mean + (x.log_q if homogeneous else 0.0)
        norm = pooled * math.exp(-0.5 * log_mean)
        out_pos = self.window.out_shape(shape, "MaxPool")
        cross = c if x.spatial is not None and x.spatial.cross is not None else None
        sp = Spatial(out_pos, k, cross=cross, draws=lambda: norm)
        site = ctx.sites.open("maxpool", x.width)
        ctx.rows[0, site] = log_q
        # T's values φ'(x) at the selected positions (1 without an activation)
        t: Any = np.ones(idx.shape)
        if act is not None:
            flat = (u if homogeneous else u * scale).reshape(idx.shape[0], -1)
            t = act.deriv(np.take_along_axis(flat, idx, axis=1))
        out = Signal(x.width, log_q, OTHER, None, None, sp)
        return out, (site, idx, t, int(np.prod(shape)))

    def theory_backward(self, tape: Any, g: Grad, ctx: TheoryContext) -> Grad:
        site, idx, t, n_in = tape
        if g.cov != "iid":
            raise GradmathError(
                "gradmath's batch-norm theory does not cover a max-pool right below a batch norm."
            )
        ctx.rows[1, site] = g.log_g
        n_out = idx.shape[1]
        back = _adjoint(spatial.full(g.spatial, n_out), idx, t, n_in)
        log_mean, gn = spatial.normalised(back)
        # The two-example form of a batch-centred gradient (Grad.cross) is not passed on: its
        # share at the batch norm below is O(1/N), N = B·positions (2048 at ResNet's stem)
        return Grad(g.log_g + log_mean, spatial=gn)

    # ------------------------------------------------------------------ simulation
    def sim_forward(self, x: Scaled, ctx: SimContext) -> tuple[Scaled, Any]:
        act = self._act
        if act is None or act.homogeneous:
            h, s = x.u, x.s
        else:
            true = x.true()
            if true is None:
                raise ctx.out_of_range(f"forward signal entering {act!r} before max-pooling")
            h, s = true, np.zeros_like(x.s)
        v = h if act is None else act(h)
        K, B, C = v.shape[:3]
        shape = tuple(v.shape[3:])
        pooled, idx = _pool(v.reshape(K * B * C, *shape), self.window)
        out_pos = self.window.out_shape(shape, "MaxPool")
        u = pooled.reshape(K, B, C, *out_pos).astype(x.u.dtype)
        site = ctx.sites.open("maxpool", C)
        ctx.forward_log[0, :, site] = 2.0 * s + log0_array(mean_square(u))
        return Scaled(u, s), (site, h, idx, shape)

    def sim_backward(self, tape: Any, g: Scaled, ctx: SimContext, need_input: bool) -> Scaled:
        site, h, idx, shape = tape
        ctx.forward_log[1, :, site] = 2.0 * g.s + log0_array(mean_square(g.u))
        if not need_input:
            return g
        K, B, C = g.u.shape[:3]
        flat = g.u.reshape(K * B * C, -1)
        dx = np.zeros((K * B * C, int(np.prod(shape))), dtype=g.u.dtype)
        rows = np.arange(dx.shape[0])[:, None]
        np.add.at(dx, (rows, idx), flat)  # windows may overlap: selected twice, summed
        dx = dx.reshape(h.shape)
        act = self._act
        if act is not None:
            dx = dx * act.deriv(h)
        return Scaled(dx, g.s)


def _pool(v: np.ndarray, win: spatial.Window) -> tuple[np.ndarray, np.ndarray]:
    """(maxima (n, *out), flat input index of each maximum (n, P_out)) of v (n, *positions),
    padding −∞ (PyTorch's), the first maximum of a window on ties."""
    shape = tuple(v.shape[1:])
    out = win.out_shape(shape, "MaxPool")
    n = v.shape[0]
    pad = [(0, 0)] + [(p, p) for p in win.padding]
    vp = np.pad(v, pad, constant_values=-np.inf) if any(win.padding) else v
    ip = np.arange(int(np.prod(shape))).reshape(shape)
    ip = np.pad(ip, [(p, p) for p in win.padding], constant_values=-1) if any(win.padding) else ip
    best = np.full((n, *out), -np.inf, dtype=v.dtype)
    arg = np.zeros((n, *out), dtype=np.int64)
    for sl in win.tap_slices(out):
        key = (slice(None), *sl)
        cand = vp[key]
        better = cand > best
        best = np.where(better, cand, best)
        arg = np.where(better, ip[sl][None], arg)
    return best, arg.reshape(n, -1)


def _adjoint(g: np.ndarray, idx: np.ndarray, t: np.ndarray, n_in: int) -> np.ndarray:
    """E[Tᵀ G T] over the draws (rows of ``idx``/``t``): (n_in, n_in)."""
    n, n_out = idx.shape
    acc = np.zeros(n_in * n_in)
    diagonal = np.count_nonzero(g - np.diag(np.diagonal(g))) == 0
    chunk = max(1, 2**22 // (n_out if diagonal else n_out * n_out))
    for lo in range(0, n, chunk):
        i, w = idx[lo : lo + chunk], t[lo : lo + chunk]
        if diagonal:
            flat = (i * n_in + i).ravel()
            vals = (w * w * np.diagonal(g)[None]).ravel()
        else:
            flat = (i[:, :, None] * n_in + i[:, None, :]).ravel()
            vals = (w[:, :, None] * w[:, None, :] * g[None]).ravel()
        acc += np.bincount(flat, weights=vals, minlength=n_in * n_in)
    return acc.reshape(n_in, n_in) / n
