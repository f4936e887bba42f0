"""Exact finite-width laws of ReLU nets: products of independent scaled chi-squares.

Hanin (2018), "Which neural net architectures give rise to exploding and vanishing gradients?"
(NeurIPS), §3 and Theorem 1; Hanin & Nica (2019), "Products of many large random matrices and
gradients in deep neural networks" (Comm. Math. Phys. 376, 2020), Theorem 1 and eq. (1.6).

Setting: every layer ReLU, W^l_ij ~ N(0, 2/n_{l−1}) (He, Gaussian), zero bias. Given x^{l−1},
the n_l pre-activations h^l_i are i.i.d. N(0, 2‖x^{l−1}‖²/n_{l−1}); the number K_l of positive
ones is Binomial(n_l, ½) and independent of their magnitudes, so

    ‖x^l‖² / ‖x^{l−1}‖² = X_l = (2/n_{l−1}) · χ²_{K_l},       independent across layers.

The same holds for a tangent vector: with u fixed, ‖(∂x^L/∂x^0) u‖² / ‖u‖² has the law of
Π_l X_l (Hanin & Nica 2019, Thm 1: flip the sign of each row of W^l, which leaves its law
unchanged, and the activation pattern becomes Bernoulli(½) independent of the magnitudes).
Hence every second-moment statistic of one example is a product of independent factors
c·χ²_k, with k fixed or k ~ Binomial(n, ½) (:class:`ChiSquareProduct`):

- forward, (1/n_l)‖h^l‖² / input_q = χ²_{n_0} · Π_{k<l} X_k · 2χ²_{n_l}/(n_{l−1} n_l)
  (inputs x^0 ~ N(0, input_q I), so ‖x^0‖² = input_q·χ²_{n_0});
- backward, (1/n_l)‖δ^l‖² / q̃^L with δ^L ~ N(0, q̃^L I) independent of the net: δ^l = Jᵀδ^L,
  J = ∂h^L/∂h^l, and gᵀJJᵀg has the law of uᵀJᵀJu for standard Gaussian g, u (same nonzero
  spectrum), i.e. of the tangent started at h^l: χ²_{K_l} · Π_{l<k<L} X_k · (2/n_{L−1})χ²_{n_L},
  divided by n_l.

Consequences, all exact: E[X_l] = n_l/n_{l−1}; E[X_l²] = (n_l² + 5n_l)/n_{l−1}², so
E‖x^L‖⁴/(E‖x^L‖²)² = Π_l (1 + 5/n_l) (Hanin 2018, Thm 1: fluctuations grow with β = Σ 1/n_l);
E[log χ²_k] = ψ(k/2) + log 2 and Var[log χ²_k] = ψ'(k/2); and log Π X_l ≈ N(−(5/2)β, 5β)
(Hanin & Nica 2019, eq. (1.6)), since Var log X_l = 5/n_l + O(n_l⁻²).

Dead layers. K_l = 0 (probability 2^{−n_l}) kills the net: X_l = 0 and log X_l = −∞. Moments of
the product itself (:meth:`ChiSquareProduct.mean`, :meth:`~ChiSquareProduct.second_moment`) include
that event (it contributes 0). Everything about the *logarithm* (mean, variance, distribution
function, quantiles) is conditional on no binomial factor being 0, i.e. on a live net, which
has probability :attr:`ChiSquareProduct.p_alive` = Π(1 − 2^{−n}) (1 − 1.6e-5 at width 16,
depth 1; 1 − 2.3e-10 at width 32, depth 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int

__all__ = [
    "ChiSquareProduct",
    "Factor",
    "relu_gradient_law",
    "relu_norm_law",
    "relu_preactivation_law",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Factor:
    """One factor ``scale · χ²_k``: k = ``dof`` (``binomial=False``) or k ~ Bin(``dof``, ½)."""

    scale: Fraction
    dof: int
    binomial: bool

    def _pmf(self) -> tuple[Array, Array]:
        # (k, P(K = k | K >= 1)) for a binomial factor; (dof, 1) for a fixed one.
        if not self.binomial:
            return np.array([float(self.dof)]), np.ones(1)
        from scipy.stats import binom

        k = np.arange(1, self.dof + 1, dtype=np.float64)
        p = binom.pmf(k, self.dof, 0.5)
        return k, p / p.sum()

    def log_moments(self) -> tuple[float, float]:
        """(E[log Y | K ≥ 1] − log E[Y], Var[log Y | K ≥ 1]) of Y = scale·χ²_K: free of the
        scale, so a product's are the sums of its factors' (digamma and trigamma sums)."""
        from scipy.special import digamma, polygamma

        k, p = self._pmf()
        d = digamma(0.5 * k)
        m = float(p @ d)
        mean_k = 0.5 * self.dof if self.binomial else float(self.dof)
        var = float(p @ polygamma(1, 0.5 * k)) + float(p @ (d - m) ** 2)
        return math.log(2.0) + m - math.log(mean_k), var

    def log_cf(self, s: Array) -> NDArray[np.complex128]:
        """log E[(scale·χ²_K)^{is} | K ≥ 1]: Γ(k/2 + is)/Γ(k/2) · (2·scale)^{is}, mixed over K."""
        from scipy.special import gammaln, loggamma, logsumexp

        k, p = self._pmf()
        a = 0.5 * k[:, None]
        terms = loggamma(a + 1j * s[None, :]) - gammaln(a) + np.log(p)[:, None]
        out: NDArray[np.complex128] = logsumexp(terms, axis=0)
        return out + 1j * s * math.log(2 * float(self.scale))


@dataclass(frozen=True)
class ChiSquareProduct:
    """The law of Y = Π_f scale_f · χ²_{k_f} over independent :class:`Factor` s.

    Exact moments as :class:`fractions.Fraction` (:meth:`mean`, :meth:`second_moment`), exact
    log moments through digamma and trigamma sums (:meth:`mean_log`, :meth:`var_log`), and the
    distribution of log Y from its characteristic function (:meth:`cdf_log`,
    :meth:`quantile_log`), all conditional on a live net for the log (module docstring).
    """

    factors: tuple[Factor, ...]

    def mean(self) -> Fraction:
        """E[Y] = Π scale·E[k] (E[k] = n/2 for a binomial factor)."""
        out = Fraction(1)
        for f in self.factors:
            out *= f.scale * (Fraction(f.dof, 2) if f.binomial else f.dof)
        return out

    def second_moment(self) -> Fraction:
        """E[Y²] = Π scale²·E[k² + 2k] (E[χ²_k²] = k² + 2k; binomial E[k²] = n/4 + n²/4)."""
        out = Fraction(1)
        for f in self.factors:
            n = f.dof
            ek, ek2 = (Fraction(n, 2), Fraction(n * n + n, 4)) if f.binomial else (n, n * n)
            out *= f.scale**2 * (ek2 + 2 * ek)
        return out

    def moment_ratio(self) -> Fraction:
        """E[Y²]/E[Y]² = 1 + (relative variance across initialisations)."""
        return self.second_moment() / self.mean() ** 2

    @property
    def p_alive(self) -> float:
        """P(no binomial factor is 0) = Π (1 − 2^{−n})."""
        return math.prod(1.0 - 2.0**-f.dof for f in self.factors if f.binomial)

    @property
    def beta(self) -> float:
        """β = Σ 1/n over the binomial (ReLU-layer) factors (Hanin & Nica 2019)."""
        return sum(1.0 / f.dof for f in self.factors if f.binomial)

    def mean_log(self) -> float:
        """E[log Y | alive] = Σ log(2·scale) + E[ψ(k/2)] (ψ the digamma function)."""
        from scipy.special import digamma

        total = 0.0
        for f in self.factors:
            k, p = f._pmf()
            total += math.log(2 * float(f.scale)) + float(p @ digamma(0.5 * k))
        return total

    def var_log(self) -> float:
        """Var[log Y | alive] = Σ (E[ψ'(k/2)] + Var[ψ(k/2)]) (law of total variance over k)."""
        from scipy.special import digamma, polygamma

        total = 0.0
        for f in self.factors:
            k, p = f._pmf()
            d = digamma(0.5 * k)
            m = float(p @ d)
            total += float(p @ polygamma(1, 0.5 * k)) + float(p @ (d - m) ** 2)
        return total

    def lognormal(self) -> tuple[float, float]:
        """Hanin & Nica's limit of log(Y/E[Y]): N(−(5/2)β, 5β) over the ReLU factors.

        Only the binomial factors are counted (they are the layers); a fixed factor χ²_n/n
        adds −1/n to the mean and 2/n to the variance to the same order.
        """
        mean = math.log(self.mean()) - 2.5 * self.beta
        var = 5.0 * self.beta
        for f in self.factors:
            if not f.binomial:
                mean -= 1.0 / f.dof
                var += 2.0 / f.dof
        return mean, var

    def _log_cf(self, s: Array) -> NDArray[np.complex128]:
        # Identical factors are evaluated once (a square net has two or three kinds).
        counts: dict[Factor, int] = {}
        for f in self.factors:
            counts[f] = counts.get(f, 0) + 1
        out = np.zeros(s.shape, dtype=np.complex128)
        for f, c in counts.items():
            out += c * f.log_cf(s)
        return out

    def cdf_log(self, x: ArrayLike) -> Array:
        """P(log Y ≤ x | alive), by Gil-Pelaez inversion of the characteristic function.

        F(x) = ½ − (1/π) ∫₀^∞ Im[e^{−isx} E[Y^{is}]]/s ds, with E[Y^{is}] the product of the
        factors' Γ(k/2 + is)/Γ(k/2)·(2·scale)^{is}, mixed over k (exact); the integral is a
        midpoint rule up to where |E[Y^{is}]| < e^{−40}, with steps fine enough for the
        oscillation (absolute error below 1e-9 on the tests' cases).
        """
        xa = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(xa)):
            raise GradmathError("`x` must be finite (log Y ranges over the reals).")
        m, sd = self.mean_log(), math.sqrt(self.var_log())
        # Cut-off: the smallest s with log|cf| < −40, doubling from a Gaussian guess.
        top = 8.0 / sd
        while float(self._log_cf(np.array([top])).real[0]) > -40.0:
            top *= 1.5
        reach = float(np.max(np.abs(xa - m))) if xa.size else 0.0
        ds = min(0.05 / sd, math.pi / (8.0 * (reach + sd)), top / 2000)
        s = np.arange(0.5, math.ceil(top / ds)) * ds
        cf = np.exp(self._log_cf(s) - 1j * s * m)  # centred at the mean: slow oscillation
        shift = (xa.ravel() - m)[:, None]
        integrand = np.imag(np.exp(-1j * s[None, :] * shift) * cf[None, :]) / s[None, :]
        out = 0.5 - integrand.sum(axis=1) * ds / math.pi
        return np.clip(out, 0.0, 1.0).reshape(xa.shape)

    def quantile_log(self, p: float) -> float:
        """The p-quantile of log Y given a live net (root of :meth:`cdf_log`, to 1e-10)."""
        from scipy.optimize import brentq

        p = float(p)
        if not 0.0 < p < 1.0:
            raise GradmathError(f"`p` (={p!r}) must lie strictly between 0 and 1.")
        m, sd = self.mean_log(), math.sqrt(self.var_log())
        lo, hi = m - 12 * sd, m + 12 * sd
        while self.cdf_log(lo) > p:
            lo -= 6 * sd
        while self.cdf_log(hi) < p:
            hi += 6 * sd
        return float(brentq(lambda x: float(self.cdf_log(x)) - p, lo, hi, xtol=1e-10))


def _widths(widths: Any) -> tuple[int, ...]:
    if isinstance(widths, (int, str)) or not hasattr(widths, "__len__") or len(widths) < 2:
        raise GradmathError(
            f"`widths` (={widths!r}) must list n_0, n_1, …, n_L (at least two widths)."
        )
    return tuple(check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))


def _layer(widths: tuple[int, ...], layer: int) -> int:
    L = len(widths) - 1
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= L:
        raise GradmathError(f"`layer` (={layer!r}) must be a layer number from 1 to {L}.")
    return layer


def _x(widths: tuple[int, ...], lo: int, hi: int) -> list[Factor]:
    # X_k for layers k = lo … hi − 1: (2/n_{k−1})·χ²_{K_k}, K_k ~ Bin(n_k, ½).
    return [Factor(Fraction(2, widths[k - 1]), widths[k], True) for k in range(lo, hi)]


def relu_norm_law(widths: Any) -> ChiSquareProduct:
    """Law of ‖x^L‖²/‖x^0‖², and of ‖(∂x^L/∂x^0)u‖²/‖u‖² for a fixed u: Π_{l=1..L} X_l.

    >>> law = relu_norm_law((32,) * 11)            # width 32, depth 10
    >>> law.moment_ratio() == (Fraction(37, 32)) ** 10
    True
    """
    w = _widths(widths)
    return ChiSquareProduct(tuple(_x(w, 1, len(w))))


def relu_preactivation_law(widths: Any, layer: int, input_q: float = 1.0) -> ChiSquareProduct:
    """Law of one example's (1/n_l)‖h^l‖² / input_q, inputs x^0 ~ N(0, input_q·I).

    χ²_{n_0} · Π_{k<l} X_k · 2χ²_{n_l}/(n_{l−1} n_l) (module docstring); its mean is
    2 at every layer (He keeps E[h²] = 2·input_q), its spread grows with Σ 1/n_k.

    >>> relu_preactivation_law((16, 16, 16), 2).mean()
    Fraction(2, 1)
    """
    w = _widths(widths)
    check_positive("input_q", input_q)
    lay = _layer(w, layer)
    first = Factor(Fraction(1), w[0], False)
    last = Factor(Fraction(2, w[lay - 1] * w[lay]), w[lay], False)
    return ChiSquareProduct((first, *_x(w, 1, lay), last))


def relu_gradient_law(widths: Any, layer: int) -> ChiSquareProduct:
    """Law of one example's (1/n_l)‖δ^l‖² / q̃^L, δ^L ~ N(0, q̃^L·I) independent of the net.

    χ²_{K_l}/n_l · Π_{l<k<L} X_k · (2/n_{L−1})χ²_{n_L} (module docstring); at the top layer
    it is χ²_{n_L}/n_L. Its mean is n_L/n_l·Π… = 1 for equal widths: He keeps E[δ²] constant.

    >>> relu_gradient_law((8, 8, 8, 8), 1).mean()
    Fraction(1, 1)
    """
    w = _widths(widths)
    lay = _layer(w, layer)
    L = len(w) - 1
    if lay == L:
        return ChiSquareProduct((Factor(Fraction(1, w[L]), w[L], False),))
    first = Factor(Fraction(1, w[lay]), w[lay], True)
    last = Factor(Fraction(2, w[L - 1]), w[L], False)
    return ChiSquareProduct((first, *_x(w, lay + 1, L), last))
