"""Piecewise-Chebyshev interpolants of the one-point moments in t = log q, for speed.

Used where the same activation's moments are needed at very many q (a phase diagram's
40,000 fixed points) or at a long sequence of q that cannot be vectorised (a depth-10,000
forward recursion). Each unit interval [k, k+1] of t is built on first use from
:data:`NODES` Chebyshev points of the first kind, evaluated exactly by
:func:`gradmath.meanfield.gaussian._quad_moments`. The three interpolated functions are
log E[φ(√q z)²], log E[φ'(√q z)²] and d log E[φ²]/d log q, which are analytic in t for the
catalogue activations (E[φ(√q z)²] is analytic in q off the negative axis). Measured error
against the direct quadrature: below 1e-13 in each logarithm (tests/meanfield/test_maps.py).
Outside [log Q_LOW, log Q_HIGH] the asymptotic forms of :mod:`gaussian` are used instead.

A table belongs to one call (no module-level cache that could go stale).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.meanfield import gaussian as gs

Array = NDArray[np.float64]

#: Chebyshev points per unit interval of log q.
NODES = 20
_X = np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES)
_TO_COEF = np.linalg.inv(np.polynomial.chebyshev.chebvander(_X, NODES - 1))
_T_LO, _T_HI = math.log(gs.Q_LOW), math.log(gs.Q_HIGH)
_K0, _K1 = math.floor(_T_LO), math.floor(_T_HI)


class MomentTable:
    """Lazily built interpolants of (log E[φ²], log E[φ'²], d log E[φ²]/d log q) in log q."""

    def __init__(self, act: Activation) -> None:
        self.act = act
        # Segment k (t in [k, k+1]) lives at row k − _K0: (3, NODES) Chebyshev coefficients.
        self._coef = np.zeros((_K1 - _K0 + 1, 3, NODES))
        self._built = np.zeros(_K1 - _K0 + 1, dtype=bool)
        self._limits: gs._Limits | None = None
        self._rows: dict[int, list[float]] = {}  # Python-float copies for the scalar path

    def _row(self, k: int) -> list[float]:
        row = self._coef[k - _K0, 0].tolist()
        self._rows[k - _K0] = row
        return row

    def _build(self, ks: Array) -> None:
        rows = np.unique(ks.astype(np.int64) - _K0)
        new = rows[~self._built[rows]]
        if new.size == 0:
            return
        t = ((new + _K0).astype(np.float64)[:, None] + 0.5 * (_X + 1.0)).ravel()
        q = np.exp(t)
        m = gs._quad_moments(self.act, q)
        vals = np.stack([np.log(m.phi2), np.log(m.dphi2), m.slope * q / m.phi2])
        self._coef[new] = np.einsum("fkn,jn->kfj", vals.reshape(3, new.size, NODES), _TO_COEF)
        self._built[new] = True

    def __call__(self, log_q: Array) -> tuple[Array, Array, Array]:
        """(log E[φ²], log E[φ'²], d log E[φ²]/d log q) at q = e^{log_q}, vectorised."""
        t = np.asarray(log_q, dtype=np.float64)
        out = np.empty((3, *t.shape))
        inside = (t >= _T_LO) & (t <= _T_HI)
        if np.any(inside):
            ti = t[inside]
            k = np.floor(ti)
            self._build(k)
            coef = np.moveaxis(self._coef[k.astype(np.int64) - _K0], 0, -1)  # (3, NODES, P)
            x = 2.0 * (ti - k) - 1.0
            out[:, inside] = _clenshaw(coef, x)
        if np.any(~inside):
            if self._limits is None:
                self._limits = gs._limits(self.act)
            to = t[~inside]
            lp, ld = gs._log_moments(self.act, to, self._limits)
            # Beyond the table E[φ²] is φ(0)² + d0·q (small q) or ∝ q / const (large q).
            lim = self._limits
            big = to > _T_HI
            with np.errstate(divide="ignore"):
                small_slope = np.exp(to + math.log(lim.d0) - lp) if lim.d0 > 0 else 0.0 * to
            slope = np.where(big, 1.0 if lim.unbounded else 0.0, small_slope)
            out[:, ~inside] = np.stack([lp, ld, slope])
        return out[0], out[1], out[2]

    def log_phi2(self, log_q: float) -> float:
        """Scalar fast path of log E[φ(√q z)²] for sequential recursions (a few µs per call)."""
        if not _T_LO <= log_q <= _T_HI:
            if self._limits is None:
                self._limits = gs._limits(self.act)
            lim = self._limits
            if log_q > _T_HI:  # linear growth or saturation, matched at Q_HIGH
                return math.log(lim.phi2_hi) + (log_q - _T_HI if lim.unbounded else 0.0)
            # φ(0)² + d0·q (see gaussian._log_moments)
            a = math.log(lim.phi0_2) if lim.phi0_2 > 0 else -math.inf
            b = log_q + math.log(lim.d0)
            hi, lo = (a, b) if a >= b else (b, a)
            return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))
        k = math.floor(log_q)
        if not self._built[k - _K0]:
            self._build(np.array([k]))
        x2 = 2.0 * (2.0 * (log_q - k) - 1.0)
        row = self._rows[k - _K0] if k - _K0 in self._rows else self._row(k)
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
