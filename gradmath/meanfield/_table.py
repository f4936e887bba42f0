"""Piecewise-Chebyshev interpolation in t = log q, built lazily, for speed.

Used where the same activation's moments are needed at very many q (a phase diagram's
40,000 fixed points) or at a long sequence of q that cannot be vectorised (a depth-10,000
forward recursion). Each unit interval [k, k+1] of t in [log Q_LOW, log Q_HIGH] is built on
first use from :data:`NODES` Chebyshev points of the first kind, where the caller's function
is evaluated exactly (a vector of F functions of q, analytic in t). The caller
(:class:`gradmath.meanfield.moments.ActivationMoments`) says what the functions are and what
holds outside the range. A table belongs to one moment object (nothing module-level).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradmath.meanfield.gaussian import Q_HIGH, Q_LOW

Array = NDArray[np.float64]

#: Chebyshev points per unit interval of log q.
NODES = 20
_X = np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES)
_TO_COEF = np.linalg.inv(np.polynomial.chebyshev.chebvander(_X, NODES - 1))
T_LO, T_HI = math.log(Q_LOW), math.log(Q_HIGH)
_K0, _K1 = math.floor(T_LO), math.floor(T_HI)


class LogTable:
    """Interpolants of F functions of q on t = log q ∈ [T_LO, T_HI], built on first use.

    ``fn(q)`` returns an (F, len(q)) array of the exact values at q = e^t.
    """

    def __init__(self, fn: Callable[[Array], Array], count: int) -> None:
        self._fn = fn
        # Segment k (t in [k, k+1]) lives at row k − _K0: (F, NODES) Chebyshev coefficients.
        self._coef = np.zeros((_K1 - _K0 + 1, count, NODES))
        self._built = np.zeros(_K1 - _K0 + 1, dtype=bool)
        self._rows: dict[int, list[float]] = {}  # Python-float copies for the scalar path

    def _build(self, ks: Array) -> None:
        rows = np.unique(ks.astype(np.int64) - _K0)
        new = rows[~self._built[rows]]
        if new.size == 0:
            return
        t = ((new + _K0).astype(np.float64)[:, None] + 0.5 * (_X + 1.0)).ravel()
        vals = self._fn(np.exp(t))
        F = vals.shape[0]
        self._coef[new] = np.einsum("fkn,jn->kfj", vals.reshape(F, new.size, NODES), _TO_COEF)
        self._built[new] = True

    def __call__(self, t: Array) -> Array:
        """The F interpolated functions at t (every t in [T_LO, T_HI]), shape (F, *t.shape)."""
        t = np.asarray(t, dtype=np.float64)
        k = np.minimum(np.floor(t), _K1)
        self._build(k)
        coef = np.moveaxis(self._coef[k.astype(np.int64).ravel() - _K0], 0, -1)  # (F, N, P)
        x = 2.0 * (t.ravel() - k.ravel()) - 1.0
        return _clenshaw(coef, x).reshape(-1, *t.shape)

    def first(self, t: float) -> float:
        """The first function at one t in [T_LO, T_HI]: a scalar fast path (a few µs)."""
        k = min(math.floor(t), _K1)
        row = self._rows.get(k)
        if row is None:
            if not self._built[k - _K0]:
                self._build(np.array([k]))
            row = self._rows[k] = self._coef[k - _K0, 0].tolist()
        x2 = 2.0 * (2.0 * (t - k) - 1.0)
        b1 = b2 = 0.0
        for a in reversed(row[1:]):
            b1, b2 = a + x2 * b1 - b2, b1
        return row[0] + 0.5 * x2 * b1 - b2


def _clenshaw(coef: Array, x: Array) -> Array:
    """Σ_j coef[:, j] T_j(x) for coefficient stacks (F, NODES, P) at points x (P,)."""
    b1 = np.zeros((coef.shape[0], x.size))
    b2 = np.zeros_like(b1)
    x2 = 2.0 * x
    for j in range(coef.shape[1] - 1, 0, -1):
        b1, b2 = coef[:, j, :] + x2 * b1 - b2, b1
    return coef[:, 0, :] + x * b1 - b2
