"""The law of D² = φ'(h)², h ~ N(0, q): the diagonal factor of one layer's Jacobian.

Two representations, chosen by what the activation object is, never by its name:

- exact atoms when φ' is constant between the activation's kinks (linear, ReLU, leaky ReLU,
  hard-tanh): the values φ'² on each interval with their Gaussian probabilities
  Φ(k_{i+1}/√q) − Φ(k_i/√q), e.g. ReLU: {0, 1} with mass ½ each, hard-tanh: 1 with mass
  erf(1/√(2q)) and 0 otherwise (Pennington, Schoenholz & Ganguli 2017, §2.4);
- otherwise a quadrature discretisation in probability: composite Gauss–Legendre nodes p_j on
  (0, 1), graded geometrically toward 0 and 1 and split at the kinks, give atoms
  φ'(√q Φ⁻¹(p_j))² with the Gauss–Legendre weights as masses. It integrates smooth functions
  of d to ~1e-12 (its moments are tested against :func:`gradmath.meanfield.expect`), and it is
  what the Stieltjes-transform solver needs: E[w d/(1 − w d)] at complex w, vectorised over w.

The exact moments μ_k = E[φ'(h)^{2k}] always come from the one Gaussian engine
(:func:`gradmath.meanfield.expect`); the atoms only feed the spectral density.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.meanfield.gaussian import expect

__all__ = ["D2Law", "d2_law", "d2_moments"]

Array = NDArray[np.float64]

# Gauss–Legendre nodes per panel, the tail grading of the panels in p (p = 10^{-j}) and the
# number of uniform panels on [0.1, 0.9].
_NODES = 12
_TAIL_DECADES = 17
_MIDDLE_PANELS = 8


@dataclass(frozen=True, eq=False)
class D2Law:
    """A law of d ≥ 0 as point masses plus a histogram density.

    ``values``, ``probs``: the quadrature nodes and weights it was built from (moments:
    Σ probs·values^k); ``exact`` if those atoms *are* the law. The spectral solver sees
    ``atoms``/``atom_mass`` (true point masses: ReLU's {0, 1}, or ELU's φ' = 1 on h > 0) and
    ``bins`` (lo, hi, mass) of a piecewise-constant density elsewhere, whose Stieltjes
    transform has a closed form (logarithms) that stays accurate next to the support, where a
    sum over nodes would see spurious poles.
    """

    values: Array
    probs: Array
    exact: bool
    atoms: Array
    atom_mass: Array
    bins: tuple[Array, Array, Array]

    @property
    def zero_mass(self) -> float:
        """P(d = 0): the fraction of dead units (ReLU ½, hard-tanh 1 − erf(1/√(2q)))."""
        return float(self.atom_mass[self.atoms == 0].sum())

    @property
    def mean(self) -> float:
        """E[d] of the atoms-plus-histogram law the solver uses (= the nodes' mean to ~1e-6)."""
        lo, hi, m = self.bins
        return float(np.sum(self.atom_mass * self.atoms) + np.sum(m * (lo + hi)) / 2)

    def moment(self, k: int) -> float:
        """Σ probs·values^k: the quadrature's E[d^k] (tested against the Gaussian engine)."""
        return float(np.sum(self.probs * self.values**k))


def _split(values: Array, probs: Array) -> D2Law:
    """Merge equal node values; values shared by ≥ 3 nodes are true atoms (φ' constant on an
    interval), the rest become histogram bins between midpoints of neighbouring values."""
    vals, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    mass = np.asarray(np.bincount(inverse, weights=probs), dtype=np.float64)
    atom = counts >= 3
    cv, cm = vals[~atom], mass[~atom]
    if cv.size:
        mid = 0.5 * (cv[1:] + cv[:-1])
        lo = np.concatenate(([cv[0]], mid))
        hi = np.concatenate((mid, [cv[-1]]))
        bins = (lo, hi, cm)
    else:
        bins = (np.zeros(0), np.zeros(0), np.zeros(0))
    return D2Law(values, probs, False, vals[atom], mass[atom], bins)


def _piecewise_constant(act: Activation) -> list[float] | None:
    """φ' on each interval between kinks, if it is constant there (probed exactly)."""
    edges = [-math.inf, *sorted(act.kinks), math.inf]
    out = []
    for lo, hi in itertools.pairwise(edges):
        a = lo if math.isfinite(lo) else (hi - 1e6 if math.isfinite(hi) else -1e6)
        b = hi if math.isfinite(hi) else (lo + 1e6 if math.isfinite(lo) else 1e6)
        probe = a + (b - a) * np.array([1e-9, 0.013, 0.21, 0.5, 0.77, 0.96, 1 - 1e-9])
        d = act.deriv(probe)
        if not np.all(d == d[0]):
            return None
        out.append(float(d[0]))
    return out


def _ndtri(p: Array) -> Array:
    from scipy.special import ndtri

    return np.asarray(ndtri(p), dtype=np.float64)


def _half_rule(cuts: list[float]) -> tuple[Array, Array]:
    """Nodes u in (0, ½] and weights: panels uniform on [0.1, ½], geometric toward 0, + cuts."""
    tails = 10.0 ** -np.arange(1, _TAIL_DECADES + 1)
    middle = np.linspace(0.1, 0.5, _MIDDLE_PANELS // 2 + 1)
    bp = np.unique(np.concatenate(([0.0], tails, middle, [c for c in cuts if 0 < c < 0.5])))
    x, w = np.polynomial.legendre.leggauss(_NODES)
    half = 0.5 * np.diff(bp)
    mid = 0.5 * (bp[1:] + bp[:-1])
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


def d2_law(act: Activation, q: float, sigma_w2: float = 1.0) -> D2Law:
    """The law of σ_w² φ'(h)² for h ~ N(0, q) (module docstring).

    >>> from gradmath import activation
    >>> law = d2_law(activation("relu"), 1.0)
    >>> law.values.tolist(), law.probs.tolist()
    ([0.0, 1.0], [0.5, 0.5])
    """
    s = math.sqrt(q)
    consts = _piecewise_constant(act)
    if consts is not None:
        edges = [-math.inf, *sorted(act.kinks), math.inf]
        cdf = [0.5 * math.erfc(-e / (s * math.sqrt(2))) if s > 0 else float(e >= 0) for e in edges]
        mass: dict[float, float] = {}
        for c, lo, hi in zip(consts, cdf[:-1], cdf[1:], strict=True):
            if hi > lo:
                mass[sigma_w2 * c * c] = mass.get(sigma_w2 * c * c, 0.0) + (hi - lo)
        vals = np.array(sorted(mass))
        probs = np.array([mass[v] for v in vals])
        empty = np.zeros(0)
        return D2Law(vals, probs, True, vals, probs, (empty, empty, empty))
    # Cut at the kinks and at |h| = 4^j: a saturating φ' at large q lives in a sliver of p
    # around ½ that the cuts resolve (as the engine's breakpoints around u = 0 do).
    marks = [*act.kinks, *(sign * 4.0**j for j in range(-8, 9) for sign in (-1, 1))]
    cuts = [0.5 * math.erfc(-k / (s * math.sqrt(2))) for k in marks] if s > 0 else []
    # Each half of (0, 1) separately, in the distance to its end, so that no node rounds to
    # p = 1 (where Φ⁻¹ is infinite): h = √q Φ⁻¹(u) on the left, −√q Φ⁻¹(u) on the right.
    lu, lw = _half_rule(cuts)
    ru, rw = _half_rule([1 - c for c in cuts])
    z = np.concatenate((_ndtri(lu), -_ndtri(ru)))
    probs = np.concatenate((lw, rw))
    d = sigma_w2 * act.deriv(s * z) ** 2
    return _split(np.asarray(d, dtype=np.float64), probs / probs.sum())


def d2_moments(act: Activation, q: Any, n: int) -> Array:
    """μ_k = E[φ'(h)^{2k}], k = 1 … n, h ~ N(0, q), by the Gaussian engine (vectorised over q).

    Shape (n,) + shape(q). Erf: μ_k = (4/π)^k / √(1 + 4kq) (Pennington et al. 2017, §2.4).
    """
    return np.stack(
        [expect(lambda u, k=k: act.deriv(u) ** (2 * k), q, act.kinks) for k in range(1, n + 1)]
    )
