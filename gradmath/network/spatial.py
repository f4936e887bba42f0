"""Positions: window geometry, the covariance maps of convolution, pooling and activations,
and the sampled (im2col) convolution that the layers of :mod:`~gradmath.network.conv` and
:mod:`~gradmath.network.pooling` share.

Mean field with positions (Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018,
"Dynamical Isometry and a Mean Field Theory of CNNs", §2.2, eqs. 2.4–2.6). At infinite
channels every channel of a layer's pre-activation is a centred Gaussian field over the
positions, the same for every channel, with covariance Σ_{pp'} = E[h_{c,p} h_{c,p'}]. A
convolution with i.i.d. weights of variance v, fan_in = C_in·∏k, maps the input's second-moment
matrix K (K_{pp'} = E[x_{c,p} x_{c,p'}]) to

    Σ_{aa'} = σ_w² · A(K)_{aa'} + σ_b²,   A(K)_{aa'} = (1/∏k) Σ_t K̃_{a·s+t·d−p, a'·s+t·d−p}

(σ_w² = v·fan_in; t runs over the kernel's taps; only the *same* tap pairs two positions, as
the weights of different taps are independent). Xiao et al. use circular padding, which makes
A translation invariant; gradmath follows PyTorch's default, **zero padding**: K̃ is K with zero
rows and columns outside the image, so a border position sums fewer nonzero taps and its
variance is smaller (a 3×3 "same" conv on an n×n image keeps on average ((3n−2)/(3n))² of
σ_w²·q; 31 % less at 4×4, 4 % at 32×32). The diagonal of Σ depends on the diagonal of K only:
the forward second moments need no correlations. Average pooling (y = P x, P the window
average) needs them: Σ_y = P K Pᵀ sums E[x_p x_p'] over pairs of positions of a window, which is
why the whole matrix is carried.

An activation maps Σ to K_{pp'} = E[φ(u)φ(u')] for (u, u') ~ N(0, [[Σ_pp, Σ_pp'],
[Σ_pp', Σ_p'p']]) (the two-point kernel with unequal variances, from the moment engine).

Backward, with gradient independence (Schoenholz et al. 2017, §4) and the gradient's
covariance G between positions: a convolution sends back v·fan_out·Aᵀ(G) (fan_out = C_out·∏k;
Aᵀ the adjoint of A without its 1/∏k); an activation multiplies G elementwise by
E[φ'(u)φ'(u')]; pooling sends back Pᵀ G P. A gradient from a Dense layer or an i.i.d. output
gradient is white (G ∝ I), and convolutions and activations keep it white, so the
activation's two-point derivative kernel is needed only below a pooling layer. The per-example
weight gradient of a convolution, Σ_a δ_{o,a} x_{c,a·s+t·d−p}, has second moment
Σ_{aa'} G_{aa'} K̃_{a·s+t·d−p, a'·s+t·d−p}, averaged over taps: Σ_{aa'} G_{aa'} A(K)_{aa'}.

Cost: the matrices are (P, P) for P positions (64² at 8×8, 1024² at 32×32).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive_int

__all__ = ["Window", "dims", "window_average", "window_average_adjoint"]

Array = NDArray[np.floating[Any]]
FloatArray = NDArray[np.float64]


def dims(name: str, value: object, dim: int, *, minimum: int = 1) -> tuple[int, ...]:
    """An int or a tuple of ``dim`` ints (each >= ``minimum``), as a tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != dim:
            raise GradmathError(
                f"`{name}` (={value!r}) must be one integer or {dim} (one per spatial axis)."
            )
        return tuple(check_positive_int(name, v, minimum=minimum) for v in value)
    v = check_positive_int(name, value, minimum=minimum)
    return (v,) * dim


@dataclass(frozen=True)
class Window:
    """A sliding window: kernel, stride, zero padding and dilation per spatial axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)

    def out_shape(self, shape: tuple[int, ...], who: str) -> tuple[int, ...]:
        """Output positions per axis: floor((n + 2p − d(k − 1) − 1)/s) + 1 (PyTorch's formula)."""
        if len(shape) != len(self.kernel):
            raise GradmathError(
                f"{who} works on {len(self.kernel)} spatial axes but receives a tensor with "
                f"{len(shape)} (shape (channels, *positions) = (C, {', '.join(map(str, shape))}))."
            )
        out = tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip(
                shape, self.kernel, self.stride, self.padding, self.dilation, strict=True
            )
        )
        if min(out) < 1:
            raise GradmathError(
                f"{who}'s window (kernel {self.kernel}, dilation {self.dilation}, padding "
                f"{self.padding}) does not fit in the positions {shape}."
            )
        return out

    def tap_slices(self, out: tuple[int, ...]) -> list[tuple[slice, ...]]:
        """Per tap, the slices of the padded positions that the outputs read."""
        per_axis = [
            [slice(t * d, t * d + s * (m - 1) + 1, s) for t in range(k)]
            for k, s, d, m in zip(self.kernel, self.stride, self.dilation, out, strict=True)
        ]
        return [tuple(sl) for sl in itertools.product(*per_axis)]


def _padded(a: FloatArray, pad: tuple[int, ...], times: int) -> FloatArray:
    if not any(pad):
        return a
    return np.pad(a, [(p, p) for p in pad] * times)


def window_average(k: FloatArray, shape: tuple[int, ...], win: Window) -> FloatArray:
    """A(K): (P_out, P_out) from the (P, P) matrix ``k`` over positions ``shape`` (module
    docstring; zero padding contributes nothing)."""
    out = win.out_shape(shape, "this window")
    kp = _padded(k.reshape(shape + shape), win.padding, 2)
    acc = np.zeros(out + out)
    for sl in win.tap_slices(out):
        acc += kp[sl + sl]
    n = math.prod(out)
    return acc.reshape(n, n) / win.taps


def window_average_adjoint(g: FloatArray, shape: tuple[int, ...], win: Window) -> FloatArray:
    """∏k·Aᵀ(G): the (P, P) matrix Σ_t Σ_{aa'} [b = a·s + t·d − p][b' = …] G_{aa'}."""
    out = win.out_shape(shape, "this window")
    padded = tuple(n + 2 * p for n, p in zip(shape, win.padding, strict=True))
    acc = np.zeros(padded + padded)
    g4 = g.reshape(out + out)
    for sl in win.tap_slices(out):
        acc[sl + sl] += g4
    crop = tuple(slice(p, p + n) for p, n in zip(win.padding, shape, strict=True))
    n = math.prod(shape)
    return acc[crop + crop].reshape(n, n)


def pool_matrix(shape: tuple[int, ...], win: Window) -> FloatArray:
    """P (P_out, P_in): y_a = (1/∏k) Σ_t x_{a·s+t·d−p}, padded zeros counted (PyTorch's
    ``AvgPool*d`` default, ``count_include_pad=True``)."""
    out = win.out_shape(shape, "this window")
    n_in, n_out = math.prod(shape), math.prod(out)
    eye = np.eye(n_in).reshape(n_in, *shape)
    xp = np.pad(eye, [(0, 0)] + [(p, p) for p in win.padding])
    acc = np.zeros((n_in, *out))
    for sl in win.tap_slices(out):
        idx = (slice(None), *sl)
        acc += xp[idx]
    return acc.reshape(n_in, n_out).T / win.taps


# --------------------------------------------------------------------------- simulation

_LEAD = (slice(None),) * 3  # networks, examples, channels


def im2col(u: Array, win: Window) -> tuple[Array, tuple[int, ...]]:
    """(K, B, P_out, C·∏k) patches of u (K, B, C, *positions), zero padded, and the output
    positions; the columns are ordered (c, taps) like a PyTorch weight's flattening."""
    shape = tuple(u.shape[3:])
    out = win.out_shape(shape, "this window")
    up = np.pad(u, [(0, 0)] * 3 + [(p, p) for p in win.padding]) if any(win.padding) else u
    K, B, C = u.shape[:3]
    cols = np.empty((K, B, *out, C, win.taps), dtype=u.dtype)
    nd = len(shape)
    for j, sl in enumerate(win.tap_slices(out)):
        patch = up[_LEAD + sl]  # (K, B, C, *out)
        cols[..., j] = np.moveaxis(patch, 2, 2 + nd)
    return cols.reshape(K, B, math.prod(out), C * win.taps), out


def col2im(cols: Array, shape: tuple[int, ...], channels: int, win: Window) -> Array:
    """The adjoint of :func:`im2col`: (K, B, P_out, C·∏k) summed back into (K, B, C, *shape)."""
    out = win.out_shape(shape, "this window")
    K, B = cols.shape[:2]
    nd = len(shape)
    c = cols.reshape(K, B, *out, channels, win.taps)
    padded = tuple(n + 2 * p for n, p in zip(shape, win.padding, strict=True))
    acc = np.zeros((K, B, channels, *padded), dtype=cols.dtype)
    for j, sl in enumerate(win.tap_slices(out)):
        acc[_LEAD + sl] += np.moveaxis(c[..., j], 2 + nd, 2)
    crop = tuple(slice(p, p + n) for p, n in zip(win.padding, shape, strict=True))
    # contiguous: reductions over a strided view are chunked by the whole stack's size, so
    # their rounding would depend on how many networks are stacked
    return np.ascontiguousarray(acc[_LEAD + crop])


# --------------------------------------------------------------------------- covariance forms
#
# A gradient's covariance between positions is ``None`` (white: independent positions of equal
# second moment), a vector (independent positions, per-position second moments) or a matrix;
# each normalised so that the mean of its diagonal is 1 (the scale is carried in log space).


def normalised(m: FloatArray) -> tuple[float, FloatArray]:
    """(log of the mean diagonal, m divided by it); a zero matrix stays as it is (log −∞)."""
    d = m if m.ndim == 1 else np.diagonal(m)
    mean = float(np.mean(d))
    if not mean > 0:
        return -math.inf, m
    return math.log(mean), m / mean


def diagonal(g: FloatArray | None, n: int) -> FloatArray:
    """The per-position second moments of a covariance form over ``n`` positions."""
    if g is None:
        return np.ones(n)
    return g if g.ndim == 1 else np.diagonal(g)


def full(g: FloatArray | None, n: int) -> FloatArray:
    """A covariance form as an (n, n) matrix."""
    if g is None:
        return np.eye(n)
    return np.diag(g) if g.ndim == 1 else g


def window_adjoint_form(g: FloatArray | None, shape: tuple[int, ...], win: Window) -> FloatArray:
    """:func:`window_average_adjoint` of a covariance form over the window's output positions;
    a white or diagonal gradient stays diagonal (only the same tap pairs two positions)."""
    out = win.out_shape(shape, "this window")
    n_out = math.prod(out)
    if g is not None and g.ndim == 2:
        return window_average_adjoint(g, shape, win)
    gd = diagonal(g, n_out).reshape(out)
    padded = tuple(n + 2 * p for n, p in zip(shape, win.padding, strict=True))
    acc = np.zeros(padded)
    for sl in win.tap_slices(out):
        acc[sl] += gd
    crop = tuple(slice(p, p + n) for p, n in zip(win.padding, shape, strict=True))
    return acc[crop].reshape(-1)


def pair_kernel(mom: Any, q: FloatArray, r: FloatArray, deriv: bool) -> FloatArray:
    """E[f(u_p) f(u_p')] for (u_p) ~ N(0, Σ), Σ_pp = q_p and correlation matrix ``r``
    (f = φ, or φ' when ``deriv``), off the diagonal, from the moment object's two-point kernel
    with unequal variances; the diagonal is left 0 for the caller."""
    n = q.size
    i, j = np.triu_indices(n, 1)
    out = np.zeros((n, n))
    if i.size:
        c = np.clip(r[i, j], -1.0, 1.0)
        # Translation-equivalent pairs away from the borders (and mirror images) have exactly
        # the same (q, q', c): one kernel per distinct triple (523,776 pairs → 16,281 for a
        # 32×32 'same' conv; the kernel is symmetric in q and q').
        a, b = np.minimum(q[i], q[j]), np.maximum(q[i], q[j])
        order = np.lexsort((c, b, a))
        a, b, c = a[order], b[order], c[order]
        new = np.ones(order.size, dtype=bool)
        new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (c[1:] != c[:-1])
        first = np.flatnonzero(new)
        v = mom.kernels(a[first], b[first], c[first], deriv=deriv)
        vals = np.empty(order.size)
        vals[order] = v[np.cumsum(new) - 1]
        out[i, j] = vals
        out[j, i] = vals
    return out
