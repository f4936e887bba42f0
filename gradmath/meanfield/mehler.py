"""Bivariate Gaussian integrals by the Hermite (Mehler) expansion, with a bounded truncation.

With h_k the orthonormal probabilists' Hermite polynomials (E[h_j(z) h_k(z)] = δ_jk) and
ã_k(q) = E[φ(√q z) h_k(z)], Mehler's formula gives for u₁ = √q₁ z₁, u₂ = √q₂ (c z₁ + √(1−c²) z₂)

    E[φ(u₁)φ(u₂)]   = Σ_k ã_k(q₁) ã_k(q₂) c^k,
    E[φ'(u₁)φ'(u₂)] = Σ_{k≥1} k ã_k(q₁) ã_k(q₂) c^{k−1} / √(q₁q₂)

(the second by Stein's lemma, E[φ'(√q z) h_{k−1}(z)] = √(k/q)·ã_k(q); Price's theorem:
d/dc of the first is √(q₁q₂) times the second). See e.g. O'Donnell (2014), "Analysis of Boolean
Functions", §11.2, or Poole et al. (2016), SM; the correlation map's Hermite form is the one
Schoenholz et al. (2017) use to argue its convexity.

Coefficients. ã_0 … ã_K (K = :data:`TERMS`) come from one fixed rule for all q at once: composite
Gauss–Legendre (:data:`NODES` nodes per panel of length :data:`PANEL`) on |z| ≤ :data:`Z_MAX`,
applied as one matrix product. The rule resolves h_k(z)e^{−z²/2} for k ≤ K (wavelength
≥ 2π/√(2K)) and φ(√q z) for kink-free φ up to q = :data:`Q_MAX`; points outside that domain,
or whose coefficients fail the Parseval check below, are not handled here (the caller falls back
to the product rule of :func:`gradmath.meanfield.gaussian.expect2`).

Truncation. Parseval gives the remainders exactly from univariate moments:
R(q) = E[φ²] − Σ_{k≤K} ã_k² and R'(q) = E[φ'²] − Σ_{1≤k≤K} k ã_k²/q. By Cauchy–Schwarz the
neglected terms are at most |c|^{K+1}√(R(q₁)R(q₂)) (kernel) and |c|^K √(R'(q₁)R'(q₂)) (its
derivative); :meth:`HermiteSeries.kernel` returns these bounds beside the sums. A computed
remainder below −1e-13·E[φ²] means unresolved coefficients: those q are marked invalid. The same
bound after fewer terms (24, 48) lets a pair with |c| well below 1 stop early when its tail is
under rounding, so most points of a phase diagram's c* solve sum a quarter of the series.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.meanfield.gaussian import threaded

__all__ = ["NODES", "PANEL", "Q_MAX", "TERMS", "Z_MAX", "HermiteSeries"]

Array = NDArray[np.float64]

#: Numbers of Hermite terms beyond the constant: a short series for every point, a long one
#: for the points whose short series' bound is too large (c close to 1).
TERMS = (128, 384)
#: Half-width of the z range (e^{−Z²/4} = 2e-16: the Hermite functions' Gaussian envelope).
Z_MAX = 12.0
#: Panel length and Gauss–Legendre nodes per panel (h_384 has wavelength 0.23 at z = 0).
PANEL = 0.5
NODES = 16
#: Largest q the fixed rule resolves (φ(√q z) changes on the scale 1/√q ≥ 0.25).
Q_MAX = 16.0
#: Shorter sums tried first where |c| is small enough (see :meth:`HermiteSeries.kernel`).
_SHORTER = (24, 48)
_EPS = float(np.finfo(np.float64).eps)
# Points per block of the coefficient product (bounds the (points × nodes) temporary).
_BLOCK = 2048


@cache
def _projector(terms: int) -> tuple[Array, Array]:
    """Nodes z (n,) and the matrix P (terms+1, n) with ã_k = Σ_i P[k, i] φ(√q z_i)."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    edges = np.arange(-Z_MAX, Z_MAX + 0.5 * PANEL, PANEL)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * PANEL
    z = (mid[:, None] + half * x).ravel()
    wz = np.tile(half * w, mid.size)
    # g_k = h_k(z) e^{−z²/4} stays O(1) (h_k alone overflows at |z| = 12 for k ~ 200):
    # the three-term recurrence is linear, so it carries the factor through.
    g = np.empty((terms + 1, z.size))
    g[0] = np.exp(-0.25 * z * z)
    g[1] = z * g[0]
    for k in range(1, terms):
        g[k + 1] = (z * g[k] - math.sqrt(k) * g[k - 1]) / math.sqrt(k + 1)
    P = g * (np.exp(-0.25 * z * z) * wz / math.sqrt(2.0 * math.pi))
    P.flags.writeable = False
    z.flags.writeable = False
    return z, P


class HermiteSeries:
    """ã_0(q) … ã_K(q) for an array of q, with the Parseval remainders and a validity mask.

    ``phi2``, ``dphi2``: the exact E[φ(√q z)²], E[φ'(√q z)²] at the same q (for the remainders).
    ``terms``: K, the last Hermite index kept; ``only``: a mask of the points to expand.
    """

    def __init__(
        self,
        act: Activation,
        q: Array,
        phi2: Array,
        dphi2: Array,
        terms: int = TERMS[0],
        only: NDArray[np.bool_] | None = None,
    ) -> None:
        q = np.asarray(q, dtype=np.float64).ravel()
        self.q, self.phi2, self.dphi2 = q, np.ravel(phi2), np.ravel(dphi2)
        self.terms = terms
        ok = np.isfinite(q) & (q > 0) & (q <= Q_MAX) & (len(act.kinks) == 0)
        if only is not None:  # coefficients only where asked (the others stay invalid)
            ok &= only
        z, P = _projector(terms)
        a = np.zeros((terms + 1, q.size))  # coefficient k of point p at [k, p]
        idx = np.flatnonzero(ok)

        def block(sel: NDArray[np.intp]) -> None:
            a[:, sel] = P @ act(np.sqrt(q[sel])[None, :] * z[:, None])

        # Blocks on every core: evaluating φ at the nodes is elementwise work that one BLAS
        # call does not parallelise (about half the cost of a 200 × 200 phase diagram).
        threaded(block, [idx[i : i + _BLOCK] for i in range(0, idx.size, _BLOCK)])
        k = np.arange(terms + 1)
        cut = [t for t in _SHORTER if t < terms] + [terms]
        upto = (k[None, :] <= np.array(cut)[:, None]).astype(np.float64)
        # Parseval remainders after each length in `cut` (rows), for shorter sums at small c;
        # only the expanded points' columns (the long series expands a few of many points).
        r = np.full((len(cut), q.size), np.inf)
        rd = np.full((len(cut), q.size), np.inf)
        s = a[:, idx] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            r[:, idx] = self.phi2[idx] - upto @ s
            rd[:, idx] = self.dphi2[idx] - ((upto * k) @ s) / q[idx]
        ok[idx] &= (r[-1, idx] >= -1e-13 * self.phi2[idx]) & (
            rd[-1, idx] >= -1e-13 * self.dphi2[idx]
        )
        self.ok = ok
        self.a = a
        self.cut = cut
        self.r = np.where(ok, np.maximum(r, 0.0), np.inf)
        self.rd = np.where(ok, np.maximum(rd, 0.0), np.inf)

    def kernel(
        self,
        other: HermiteSeries,
        i: NDArray[np.intp],
        j: NDArray[np.intp],
        c: Array,
    ) -> tuple[Array, Array, Array, Array]:
        """(K, K', bound on K's truncation, bound on K''s) for the pairs (q_i, other.q_j) at c.

        K = E[φ(u₁)φ(u₂)], K' = E[φ'(u₁)φ'(u₂)] (module docstring). Meaningful where both
        points are valid (``ok``); the bounds are ∞ elsewhere. A pair whose tail beyond a
        shorter length is already below rounding (both bounds under 2⁻⁵² of √(E[φ²]E[φ²]) and
        √(E[φ'²]E[φ'²])) sums only that many terms: the result is the full sum's to rounding.
        """
        ac = np.abs(c)
        both = self.ok[i] & other.ok[j]
        scale = np.sqrt(self.phi2[i] * other.phi2[j])
        dscale = np.sqrt(self.dphi2[i] * other.dphi2[j])
        last = len(self.cut) - 1
        bound, dbound = self._bounds(other, i, j, ac, both, last)
        use = np.full(i.size, last)
        for n in range(last - 1, -1, -1):
            # A remainder found by subtraction is known only down to rounding: floor it there,
            # or a series converged to 0 would make any partner's tail look negligible.
            b, db = self._bounds(other, i, j, ac, both, n, floor=_EPS)
            fits = (b <= _EPS * scale) & (db <= _EPS * dscale)
            if not np.any(fits):
                break  # the bounds only grow as the sums get shorter
            use[fits], bound[fits], dbound[fits] = n, b[fits], db[fits]
        val, dval = np.empty(i.size), np.empty(i.size)
        for n in np.unique(use):
            g = np.flatnonzero(use == n)
            val[g], dval[g] = self._sums(other, i[g], j[g], c[g], self.cut[n])
        with np.errstate(divide="ignore", invalid="ignore"):
            dval = dval / (np.sqrt(self.q[i]) * np.sqrt(other.q[j]))  # q₁q₂ may overflow
        return val, dval, bound, dbound

    def _bounds(
        self,
        other: HermiteSeries,
        i: NDArray[np.intp],
        j: NDArray[np.intp],
        ac: Array,
        both: NDArray[np.bool_],
        n: int,
        floor: float = 0.0,
    ) -> tuple[Array, Array]:
        """Cauchy–Schwarz bounds on the tails beyond ``cut[n]`` terms (module docstring)."""
        r1 = np.maximum(self.r[n, i], floor * self.phi2[i])
        r2 = np.maximum(other.r[n, j], floor * other.phi2[j])
        d1 = np.maximum(self.rd[n, i], floor * self.dphi2[i])
        d2 = np.maximum(other.rd[n, j], floor * other.dphi2[j])
        cK = ac ** self.cut[n]
        with np.errstate(invalid="ignore", over="ignore"):
            b = np.where(both, ac * cK * np.sqrt(r1 * r2), np.inf)
            db = np.where(both, cK * np.sqrt(d1 * d2), np.inf)
        return b, db

    def _sums(
        self, other: HermiteSeries, i: NDArray[np.intp], j: NDArray[np.intp], c: Array, terms: int
    ) -> tuple[Array, Array]:
        """Σ_{k≤terms} ã_k b̃_k c^k and Σ_{1≤k≤terms} k ã_k b̃_k c^{k−1}, by Horner in c."""
        a, b = self.a[: terms + 1, i], other.a[: terms + 1, j]
        val = a[-1] * b[-1]
        dval = terms * val
        for k in range(terms - 1, 0, -1):
            t = a[k] * b[k]
            val = val * c + t
            dval = dval * c + k * t
        return val * c + a[0] * b[0], dval
