"""Moments of a product of free random matrices through the S-transform, as power series.

For a probability law ρ on [0, ∞) with moments m_k = ∫λ^k dρ, write
ψ(z) = Σ_{k≥1} m_k z^k (the moment generating function), χ = ψ^{-1} (its inverse under
composition) and S(z) = χ(z)·(1 + z)/z (Voiculescu's S-transform). If A and B are free,
S_{AB} = S_A·S_B (Voiculescu 1987; Pennington, Schoenholz & Ganguli 2017, eq. 9). For the
input-output Jacobian J = D^L W^L … D^1 W^1 of a deep network, with D^l = diag φ'(h^l),

    S_{JJᵀ}(z) = Π_l S_{W_lW_lᵀ}(z) · S_{(D^l)²}(z)      (Pennington et al. 2017, eq. 10),

S_{WWᵀ}(z) = 1/(σ_w²(1 + z)) for Gaussian (any i.i.d.) square W with Var = σ_w²/n
(Marchenko–Pastur), σ_w⁻² for σ_w times a Haar orthogonal W.

Everything here is arithmetic on truncated power series whose coefficients may be floats,
``fractions.Fraction`` or SymPy expressions: with exact inputs the moments come out exact
(Fuss–Catalan numbers for deep linear Gaussian nets), with symbols they give the general
formula, e.g. σ²_{JJᵀ}/m₁² = Σ_l (μ₂/μ₁² − 1 − s₁) (Pennington et al. 2017, eq. 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["moments_from_s", "product_moments", "s_transform"]

Series = list[Any]  # coefficients c_0, c_1, …, c_{n-1}


def series_mul(a: Series, b: Series, n: int) -> Series:
    out = [a[0] * 0] * n
    for i, ai in enumerate(a[:n]):
        for j, bj in enumerate(b[: n - i]):
            out[i + j] = out[i + j] + ai * bj
    return out


def _inverse_series(a: Series, n: int) -> Series:
    # 1/a(z) for a(0) ≠ 0: b_0 = 1/a_0, b_k = −(Σ_{j=1..k} a_j b_{k−j})/a_0.
    b = [1 / a[0]]
    for k in range(1, n):
        acc = a[0] * 0
        for j in range(1, min(k, len(a) - 1) + 1):
            acc = acc + a[j] * b[k - j]
        b.append(-acc / a[0])
    return b


def _revert(f: Series, n: int) -> Series:
    """g with f(g(z)) = z, both without constant term; coefficients g_1 … g_n (index k ↦ g_k).

    Lagrange inversion: [z^k] g = (1/k) [w^{k−1}] (w/f(w))^k, with w/f(w) = 1/(f_1 + f_2 w + …).
    """
    h = _inverse_series(f[1 : n + 1], n)  # w/f(w)
    g = [f[1] * 0]
    power = [h[0] ** 0] + [h[0] * 0] * (n - 1)
    for k in range(1, n + 1):
        power = series_mul(power, h, n)  # (w/f)^k
        g.append(power[k - 1] / k)
    return g


def s_transform(moments: Sequence[Any]) -> Series:
    """Coefficients S_0 … S_{n−1} of the S-transform of a law with moments m_1 … m_n.

    S(z) = χ(z)(1 + z)/z with χ the compositional inverse of ψ(z) = Σ m_k z^k; S_0 = 1/m_1 and
    S_1 = (m_1² − m_2)/m_1³.

    >>> s_transform([1, 2])   # Marchenko–Pastur (ratio 1): S(z) = 1/(1 + z) = 1 − z + …
    [1.0, -1.0]
    """
    n = len(moments)
    psi = [moments[0] * 0, *moments]
    chi = _revert(psi, n)  # chi[k] = χ_k, k = 0 … n
    return [chi[k + 1] + chi[k] for k in range(n)]


def moments_from_s(s: Sequence[Any]) -> Series:
    """Moments m_1 … m_n of the law whose S-transform has coefficients S_0 … S_{n−1}.

    χ(z) = z S(z)/(1 + z), ψ = χ^{-1}. Inverse of :func:`s_transform`.

    >>> moments_from_s([1.0, -1.0])
    [1.0, 2.0]
    """
    n = len(s)
    one_plus = _inverse_series([s[0] ** 0, s[0] ** 0], n)  # 1/(1 + z)
    chi = [s[0] * 0, *series_mul(list(s), one_plus, n)]
    return _revert(chi, n)[1:]


def product_moments(
    layer_moments: Sequence[Sequence[Any]], gaussian: Sequence[bool], n: int
) -> Series:
    """Moments m_1 … m_n of JJᵀ, J = D^L W^L … D^1 W^1, from each layer's law of D² (free).

    ``layer_moments[l]`` = (E[d], E[d²], …, E[d^n]) for d = σ_w² φ'(h^l)² (the weight scale is
    folded into D² since only the product matters); ``gaussian[l]``: Gaussian (Marchenko–Pastur,
    S = 1/(1 + z)) or orthogonal (S = 1) normalised weights. The coefficients may be floats,
    Fractions or SymPy expressions.

    >>> product_moments([[1, 1, 1]] * 2, [True, True], 3)   # Fuss–Catalan, L = 2: 1, 3, 12
    [1.0, 3.0, 12.0]
    """
    if len(layer_moments) != len(gaussian):
        raise ValueError("one weight kind per layer")
    one = layer_moments[0][0] ** 0
    total = [one] + [one * 0] * (n - 1)
    mp = [one * (-1) ** k for k in range(n)]  # 1/(1 + z)
    for moments, gauss in zip(layer_moments, gaussian, strict=True):
        total = series_mul(total, s_transform(list(moments[:n])), n)
        if gauss:
            total = series_mul(total, mp, n)
    return moments_from_s(total)
