"""Closed-form Gaussian expectations that an :class:`~gradmath.activations.Activation` carries.

With u ~ N(0, q), and (u₁, u₂) centred Gaussian with E[u₁²] = q₁, E[u₂²] = q₂, E[u₁u₂] = c√(q₁q₂):

- :class:`PiecewiseLinear` (slopes p on u > 0, n on u < 0: linear, ReLU, leaky ReLU, abs), through
  the arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009, eq. 6 with n = 0, 1);
- :class:`ErfForm`, through the arcsin kernel (Williams 1997, eq. 11).

An activation without one (``act.gaussian is None``) is integrated by quadrature
(:mod:`gradmath.meanfield.gaussian`); the mean-field engine asks the object, never the name.
Every method is vectorised over NumPy arrays and accepts Python floats.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ErfForm", "GaussianClosedForm", "PiecewiseLinear"]

Array = NDArray[np.float64]


class GaussianClosedForm:
    """What is known in closed form about E over Gaussians of one activation φ.

    Required: :meth:`phi2`, :meth:`dphi2`, :meth:`slope` (d/dq E[φ(√q z)²]), :meth:`kernel`,
    :meth:`dkernel` and their logs :meth:`log_phi2`, :meth:`log_dphi2` (finite for every finite
    log q). Optional (``None`` when there is no closed form): :meth:`mean`, :meth:`phi4`.
    ``proportional`` is the constant c₂ when E[φ(√q z)²] = c₂·q for every q (then the length
    map is linear and its fixed point is explicit), else ``None``.
    """

    proportional: float | None = None

    def phi2(self, q: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def dphi2(self, q: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def slope(self, q: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def log_phi2(self, log_q: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def log_dphi2(self, log_q: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def kernel(self, q1: Any, q2: Any, c: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def dkernel(self, q1: Any, q2: Any, c: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def mean(self, q: Any) -> Any | None:
        """E[φ(√q z)], or None when there is no closed form."""
        return None

    def phi4(self, q: Any) -> Any | None:
        """E[φ(√q z)⁴], or None when there is no closed form."""
        return None


def _arccos_parts(c: Any) -> tuple[Any, Any]:
    # θ = arccos c via atan2 keeps full accuracy near c = ±1, where arccos loses half the digits.
    sin = np.sqrt(np.maximum(0.0, (1.0 - c) * (1.0 + c)))
    return np.arctan2(sin, c), sin


class PiecewiseLinear(GaussianClosedForm):
    """φ(u) = p·u for u > 0 and n·u for u < 0, i.e. (p − n)·relu(u) + n·u.

    E[φ²] = c₂q and E[φ'²] = c₂ with c₂ = (p² + n²)/2; E[φ] = (p − n)√(q/(2π));
    E[φ⁴] = 3q²(p⁴ + n⁴)/2; kernels from Cho & Saul (2009), eq. 6 (see :meth:`kernel`).
    """

    def __init__(self, p: float, n: float) -> None:
        self.p, self.n = float(p), float(n)
        self.proportional = 0.5 * (self.p**2 + self.n**2)
        self._log_c2 = math.log(self.proportional) if self.proportional > 0 else -math.inf

    def __repr__(self) -> str:
        return f"PiecewiseLinear(p={self.p!r}, n={self.n!r})"

    def phi2(self, q: Any) -> Any:
        return self.proportional * q

    def dphi2(self, q: Any) -> Any:
        return self.proportional + 0.0 * q

    def slope(self, q: Any) -> Any:
        return self.proportional + 0.0 * q

    def log_phi2(self, log_q: Any) -> Any:
        return log_q + self._log_c2

    def log_dphi2(self, log_q: Any) -> Any:
        # a constant of log q's shape (log q may be −∞: a dead layer's exact zero)
        return np.full(np.shape(log_q), self._log_c2) if np.ndim(log_q) else self._log_c2

    def mean(self, q: Any) -> Any:
        return (self.p - self.n) * np.sqrt(q / (2.0 * math.pi))

    def phi4(self, q: Any) -> Any:
        return 1.5 * (self.p**4 + self.n**4) * q * q

    def kernel(self, q1: Any, q2: Any, c: Any) -> Any:
        """E[φ(u₁)φ(u₂)] = (p−n)²√(q₁q₂)/(2π)·(sin θ + (π−θ) cos θ) + pn√(q₁q₂)c, θ = arccos c.

        Cho & Saul (2009), eq. 6: E[relu(u₁)relu(u₂)] = √(q₁q₂)/(2π)(sin θ + (π−θ)cos θ); the
        cross terms E[relu(u₁)u₂] = √(q₁q₂)c/2 follow from the symmetry u → −u.
        """
        theta, sin = _arccos_parts(c)
        a = self.p - self.n
        r = np.sqrt(q1) * np.sqrt(q2)  # not √(q₁q₂): the product overflows from q ≈ 1e154
        return a * a * r / (2 * np.pi) * (sin + (np.pi - theta) * c) + self.n * self.p * r * c

    def dkernel(self, q1: Any, q2: Any, c: Any) -> Any:
        """E[φ'(u₁)φ'(u₂)] = (p−n)²(π−θ)/(2π) + pn (Cho & Saul 2009: E[1{u₁>0}1{u₂>0}])."""
        theta, _ = _arccos_parts(c)
        a = self.p - self.n
        return a * a * (np.pi - theta) / (2 * np.pi) + self.n * self.p + 0.0 * (q1 + q2)


class ErfForm(GaussianClosedForm):
    """φ = erf: Williams (1997), eq. 11, E[erf(u₁)erf(u₂)] = (2/π) arcsin(2Σ₁₂/√((1+2q₁)(1+2q₂))).

    Hence E[φ²] = (2/π) arctan(2q/√(1+4q)) and, for erf'(u) = (2/√π) e^{−u²},
    E[φ'²] = (4/π)/√(1+4q), d/dq E[φ²] = (4/π)/((1+2q)√(1+4q)); E[φ] = 0 (φ is odd).
    """

    def __repr__(self) -> str:
        return "ErfForm()"

    # √(1 + 4q) = 2·hypot(½, √q) and 1 + 2q = 2(½ + q): no overflow up to q = 1.8e308.
    def phi2(self, q: Any) -> Any:
        return (2 / np.pi) * np.arctan(q / np.hypot(0.5, np.sqrt(q)))

    def dphi2(self, q: Any) -> Any:
        return (2 / np.pi) / np.hypot(0.5, np.sqrt(q))

    def slope(self, q: Any) -> Any:
        return (1 / np.pi) / (0.5 + q) / np.hypot(0.5, np.sqrt(q))

    def log_phi2(self, log_q: Any) -> Any:
        log_q = np.asarray(log_q, dtype=np.float64)
        q = np.exp(np.minimum(log_q, 700.0))
        with np.errstate(divide="ignore"):
            lp = np.log((2 / np.pi) * np.arctan(2 * q / np.sqrt(1 + 4 * q)))
        # arctan(2q/√(1+4q)) = 2q(1 + O(q)): below e^-30 keep log q exact.
        return np.where(log_q < -30.0, math.log(4 / np.pi) + log_q, lp)[()]

    def log_dphi2(self, log_q: Any) -> Any:
        log_q = np.asarray(log_q, dtype=np.float64)
        q = np.exp(np.minimum(log_q, 700.0))
        ld = math.log(4 / np.pi) - 0.5 * np.log1p(4 * q)
        big = math.log(4 / np.pi) - 0.5 * (math.log(4.0) + log_q)
        return np.where(log_q > 700.0, big, ld)[()]

    def mean(self, q: Any) -> Any:
        return 0.0 * q

    def kernel(self, q1: Any, q2: Any, c: Any) -> Any:
        """(2/π) arctan(2Σ₁₂/√D), D = (1+2q₁)(1+2q₂) − 4Σ₁₂²: Williams' arcsin, exact near ±1."""
        s12, d, _ = self._scaled(q1, q2, c)
        return (2.0 / np.pi) * np.arctan(2.0 * s12 / np.sqrt(d))

    def dkernel(self, q1: Any, q2: Any, c: Any) -> Any:
        """E[erf'(u₁)erf'(u₂)] = (4/π)/√det(I + 2Σ) = (4/π)/√D (a Gaussian integral)."""
        _, d, scale = self._scaled(q1, q2, c)
        return (4.0 / np.pi) / np.sqrt(d) / scale

    @staticmethod
    def _scaled(q1: Any, q2: Any, c: Any) -> tuple[Any, Any, Any]:
        """(Σ₁₂/√(m₁m₂), D/(m₁m₂), √(m₁m₂)) with m_i = max(1, q_i): 2Σ₁₂/√D is unchanged and
        every term is ≤ 6, so q up to 1.8e308 neither overflows nor gives inf/inf."""
        m1, m2 = np.maximum(1.0, q1), np.maximum(1.0, q2)
        r1, r2 = q1 / m1, q2 / m2
        s12 = c * np.sqrt(r1) * np.sqrt(r2)
        d = 1.0 / m1 / m2 + 2.0 * r1 / m2 + 2.0 * r2 / m1 + 4.0 * r1 * r2 * (1.0 - c) * (1.0 + c)
        return s12, d, np.sqrt(m1) * np.sqrt(m2)
