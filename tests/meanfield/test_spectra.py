"""Jacobian spectra: exact S-transform moments, the D² law, and the spectral density.

References: Pennington, Schoenholz & Ganguli (2017), eqs. 9–13 and §2.4; the Fuss–Catalan
numbers of products of Ginibre matrices; Marchenko–Pastur; two free projections (Voiculescu).
"""

from __future__ import annotations

import math
from fractions import Fraction
from math import comb

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import gradmath
from gradmath import GradmathError, activation
from gradmath.meanfield import chi1, expect, fixed_point
from gradmath.meanfield.spectra import (
    Jacobian,
    critical_jacobian,
    critical_network,
    d2_law,
    d2_moments,
    jacobian,
    moments_from_s,
    product_moments,
    s_transform,
)
from gradmath.network import BatchNorm, Dense, LayerNorm, Network, Residual, Serial, repeat


def fuss_catalan(L: int, k: int) -> Fraction:
    return Fraction(comb((L + 1) * k, k), L * k + 1)


# --------------------------------------------------------------------------- exact series


@pytest.mark.parametrize("L", [1, 2, 3, 5, 8])
def test_deep_linear_gaussian_moments_are_fuss_catalan_exactly(L: int) -> None:
    got = product_moments([[Fraction(1)] * 7] * L, [True] * L, 7)
    assert got == [fuss_catalan(L, k) for k in range(1, 8)]
    assert got[1] == L + 1


def test_linear_orthogonal_moments_are_all_one_exactly() -> None:
    assert product_moments([[Fraction(1)] * 6] * 9, [False] * 9, 6) == [1] * 6


@pytest.mark.parametrize("gaussian,s1", [(True, -1), (False, 0)])
def test_variance_formula_derived_symbolically(gaussian: bool, s1: int) -> None:
    # σ²/m₁² = L(μ₂/μ₁² − 1 − s₁) for L equal layers (Pennington et al. 2017, eq. 13), here
    # derived from the S-transform product with symbolic D² moments, and with unequal layers
    # the sum of the per-layer terms.
    m1, m2, m3, n1, n2, n3 = sympy.symbols("mu1 mu2 mu3 nu1 nu2 nu3", positive=True)
    L = 3
    got = product_moments([[m1, m2, m3]] * L, [gaussian] * L, 3)
    assert sympy.simplify(got[0] - m1**L) == 0
    assert sympy.simplify(got[1] / got[0] ** 2 - 1 - L * (m2 / m1**2 - 1 - s1)) == 0
    mixed = product_moments([[m1, m2, m3], [n1, n2, n3]], [gaussian, not gaussian], 2)
    want = (m2 / m1**2 - 1 - s1) + (n2 / n1**2 - 1 - (-1 - s1))
    assert sympy.simplify(mixed[1] / mixed[0] ** 2 - 1 - want) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fractions(min_value=Fraction(1, 8), max_value=8), min_size=1, max_size=5))
def test_s_transform_round_trip(moments: list[Fraction]) -> None:
    assert moments_from_s(s_transform(moments)) == moments


# --------------------------------------------------------------------------- Jacobian moments


@pytest.mark.parametrize("L", [1, 7, 40])
def test_relu_variance_2L_gaussian_L_orthogonal(L: int) -> None:
    assert jacobian("relu", 2.0, depth=L, weights="gaussian").variance == pytest.approx(2 * L)
    assert jacobian("relu", 2.0, depth=L, weights="orthogonal").variance == pytest.approx(L)
    assert jacobian("linear", 1.0, depth=L, weights="orthogonal").variance == 0.0
    assert jacobian("linear", 1.0, depth=L, weights="gaussian").variance == pytest.approx(L)


def test_moments_match_fuss_catalan_and_variance() -> None:
    jac = jacobian("linear", 1.0, depth=6, weights="lecun_normal")
    assert jac.moments(5) == pytest.approx([float(fuss_catalan(6, k)) for k in range(1, 6)])
    relu = jacobian("relu", 2.0, depth=12, weights="orthogonal")
    assert relu.moments(2)[1] - 1 == pytest.approx(relu.variance, rel=1e-12)


@pytest.mark.parametrize("name,sw,sb", [("tanh", 1.3, 0.05), ("erf", 2.0, 0.1), ("relu", 1.5, 0.2)])
def test_mean_is_chi1_to_the_L(name: str, sw: float, sb: float) -> None:
    jac = jacobian(name, sw, sb, depth=9)
    assert jac.log_mean == pytest.approx(9 * math.log(chi1(name, sw, sb)), rel=1e-10)
    assert jac.layers[0].q == pytest.approx(fixed_point(name, sw, sb))


@pytest.mark.parametrize("q", [1e-3, 0.05, 0.5])
def test_hard_tanh_and_erf_orthogonal_reach_isometry_as_q_star_vanishes(q: float) -> None:
    # Pennington et al. (2017), §2.4: hard-tanh μ_k = p (p = erf(1/√(2q*))) on the critical
    # line, so σ² = L(1/p − 1); erf: μ_k = (4/π)^k/√(1 + 4kq), σ² = L((1+4q)/√(1+8q) − 1).
    L = 50
    p = math.erf(1 / math.sqrt(2 * q))
    ht = critical_jacobian("hard_tanh", q, depth=L, weights="orthogonal")
    assert ht.variance == pytest.approx(L * (1 / p - 1), rel=1e-9, abs=1e-14)
    assert ht.log_mean == pytest.approx(0.0, abs=1e-10)
    erf = critical_jacobian("erf", q, depth=L, weights="orthogonal")
    assert erf.variance == pytest.approx(L * ((1 + 4 * q) / math.sqrt(1 + 8 * q) - 1), rel=1e-8)
    # Gaussian weights never get below L.
    assert critical_jacobian("erf", q, depth=L, weights="gaussian").variance > L


def test_critical_line_refuses_impossible_q_star() -> None:
    # ReLU: σ_w² = 2 forces q* = 2 E[relu²] + σ_b², i.e. σ_b² = 0 for every q*: fine; tanh at
    # q* where σ_w² E[φ²] > q* would need σ_b² < 0 — none for tanh (E[tanh²] < q), so use a
    # net with φ(0) ≠ 0 … softplus: σ_b² = q − E[softplus²]/E[softplus'²] < 0 for small q.
    with pytest.raises(GradmathError, match="σ_b²"):
        critical_jacobian("softplus", 0.01, depth=3)


def test_from_a_network_follows_the_nonstationary_profile() -> None:
    # An MLP is its .network: Dense → tanh → … → Dense, so J = W^5 D^4 W^4 ⋯ D^1 W^1 with
    # D^l at q^l of predict, and the last factor a plain Gaussian W (D = I).
    mlp = gradmath.MLP.square(64, 5, activation="tanh", init="glorot_normal", sigma_b2=0.1)
    jac = Jacobian.of(mlp, input_q=3.0)
    assert jac.moments(4) == Jacobian.of(mlp.network, input_q=3.0).moments(4)
    q = gradmath.meanfield.predict(mlp, 3.0).q
    assert [ly.q for ly in jac.layers[:-1]] == pytest.approx(list(q[:-1]))
    assert jac.layers[-1].activation.name == "linear"
    mu1 = np.array([float(expect(lambda u: np.cosh(u) ** -4, qq)) for qq in q[:-1]])
    assert jac.log_mean == pytest.approx(float(np.sum(np.log(mu1))), rel=1e-10)
    with pytest.raises(GradmathError, match="square Dense"):
        Jacobian.of(gradmath.MLP((3, 4, 4)))


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_critical_network_is_the_critical_jacobian(weights: str) -> None:
    net, q0 = critical_network("erf", 0.25, width=32, depth=7, weights=weights)
    got = Jacobian.of(net, q0)
    want = critical_jacobian("erf", 0.25, depth=7, weights=weights)
    assert got.moments(4) == pytest.approx(want.moments(4), rel=1e-12)
    assert got.log_mean == pytest.approx(0.0, abs=1e-12)
    assert [ly.gaussian for ly in got.layers] == [weights == "gaussian"] * 7


def test_layer_norm_is_a_scalar_factor() -> None:
    # Dense(σ_w² = 2) → LN → tanh: LN divides J by σ = √q_h, q_h = 2·q_in (centred), and
    # the tanh sees q = 1: m₁ = (2/10)·μ₁ for the first block (q_in = 5), then
    # (2/(2 E[tanh²]))·μ₁ for the others, with μ₁ = E[tanh'(z)²] and z ~ N(0, 1).
    block = Serial(Dense(16, gradmath.initializer("normal", sigma_w2=2.0)), LayerNorm(), "tanh")
    jac = Jacobian.of(Network(16, repeat(block, 3)), input_q=5.0)
    mu1 = float(expect(lambda u: np.cosh(u) ** -4, 1.0))
    t2 = float(expect(lambda u: np.tanh(u) ** 2, 1.0))
    want = math.log(2 / 10 * mu1) + 2 * math.log(mu1 / t2)
    assert jac.log_mean == pytest.approx(want, rel=1e-10)
    assert jac.variance == pytest.approx(3 * (d2_moments(activation("tanh"), 1.0, 2)[1] / mu1**2))


def test_refusals_name_the_layer() -> None:
    with pytest.raises(GradmathError, match="BatchNorm couples"):
        Jacobian.of(Network(8, Dense(8), BatchNorm(), "relu"))
    with pytest.raises(GradmathError, match="residual block"):
        Jacobian.of(Network(8, Residual(Serial(Dense(8), "relu", Dense(8)), 0.5)))
    with pytest.raises(GradmathError, match="dense2 has zero weights"):
        Jacobian.of(Network(8, Dense(8), "relu", Dense(8, gain=0.0)))
    # ReZero (α = 0) is exactly the identity: only the outer Dense remains.
    rezero = Jacobian.of(Network(8, Residual(Serial(Dense(8), "relu", Dense(8)), 0.0), Dense(8)))
    assert rezero.variance == pytest.approx(1.0) and rezero.log_mean == pytest.approx(math.log(2))


# --------------------------------------------------------------------------- the D² law


@pytest.mark.parametrize("name", gradmath.activations())
@pytest.mark.parametrize("q", [1e-3, 0.7, 40.0])
def test_d2_law_moments_match_the_gaussian_engine(name: str, q: float) -> None:
    act = activation(name)
    law = d2_law(act, q)
    mu = d2_moments(act, q, 3)
    for k in range(3):
        assert law.moment(k + 1) == pytest.approx(float(mu[k]), rel=1e-8)
    assert float(np.sum(law.probs)) == pytest.approx(1.0, rel=1e-14)


def test_d2_law_exact_atoms_and_erf_closed_form() -> None:
    relu = d2_law(activation("relu"), 2.0)
    assert relu.exact and relu.atoms.tolist() == [0.0, 1.0] and relu.zero_mass == 0.5
    ht = d2_law(activation("hard_tanh"), 0.3)
    assert ht.atom_mass[ht.atoms == 1.0][0] == pytest.approx(math.erf(1 / math.sqrt(0.6)))
    mu = d2_moments(activation("erf"), 0.3, 3)
    assert mu == pytest.approx([(4 / math.pi) ** k / math.sqrt(1 + 1.2 * k) for k in (1, 2, 3)])


# --------------------------------------------------------------------------- the density


def test_marchenko_pastur_density_and_fuss_catalan_edges() -> None:
    sp = jacobian("linear", 1.0, depth=1).spectrum()
    x = sp.x[(sp.x > 0.05) & (sp.x < 3.95)]
    mp = np.sqrt(x * (4 - x)) / (2 * np.pi * x)
    assert np.interp(x, sp.x[::-1], sp.density[::-1]) == pytest.approx(mp, rel=1e-6)
    for L in (2, 8):
        edge = jacobian("linear", 1.0, depth=L).spectrum().lambda_max
        assert edge == pytest.approx((L + 1) ** (L + 1) / L**L, rel=1e-12)


@pytest.mark.parametrize("name,q", [("relu", 1.0), ("hard_tanh", 0.4), ("erf", 0.3)])
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_density_moments_match_the_series(name: str, q: float, weights: str) -> None:
    jac = jacobian(name, 1.0, depth=6, weights=weights, q=q)
    sp = jac.spectrum()
    assert sp.moment(0) + sp.unresolved == pytest.approx(1.0, abs=2e-6)
    # Exact laws (ReLU, hard-tanh): quadrature error only; erf's D² law is a histogram of
    # quadrature nodes, which widens it by ~Σ mΔ²/12 (relative 1e-4).
    rel = 2e-5 if name != "erf" else 2e-3
    for k, m in enumerate(jac.moments(3), 1):
        assert sp.moment(k) == pytest.approx(m, rel=rel)


def test_two_free_projections() -> None:
    # Orthogonal hard-tanh, L = 2: PQP for free projections of trace p (Voiculescu): atom 1 − p
    # at 0, atom 2p − 1 at 1, density √((λ₊−λ)(λ−λ₋))/(2πλ(1−λ)) on [λ₋, λ₊],
    # λ± = 2p − 2p² ± 2p(1 − p) (so λ₋ = 0), in units where JJᵀ's mean is p².
    q = 0.5
    p = math.erf(1 / math.sqrt(2 * q))
    sp = jacobian("hard_tanh", 1.0, depth=2, weights="orthogonal", q=q).spectrum()
    order = np.argsort(sp.atoms)
    assert sp.atoms[order] == pytest.approx([0, 1 / p**2])
    assert sp.atom_mass[order] == pytest.approx([1 - p, 2 * p - 1])
    lam = sp.x * p * p
    hi = 4 * p * (1 - p)
    inside = (lam > 0.02 * hi) & (lam < 0.98 * hi)
    lam = lam[inside]
    want = np.sqrt((hi - lam) * lam) / (2 * np.pi * lam * (1 - lam)) * p * p
    assert inside.sum() > 20
    assert sp.density[inside] == pytest.approx(want, rel=1e-5)


def test_cdf_is_monotone_with_atoms() -> None:
    sp = jacobian("relu", 2.0, depth=3, weights="orthogonal").spectrum()
    x = np.geomspace(1e-12, 2 * sp.lambda_max, 300)
    f = sp.cdf(x)
    assert np.all(np.diff(f) >= -1e-12) and f[0] == pytest.approx(0.5, abs=1e-3)
    assert f[-1] == 1.0 and sp.cdf(0.0) == pytest.approx(0.5, abs=sp.unresolved + 1e-12)


@pytest.mark.parametrize("q_star", [1e30, 1e100, 1e300, 1.7e308])
def test_tanh_critical_point_at_huge_q_star_is_the_asymptotic_one(q_star: float) -> None:
    """Issue 11 asked whether σ_w² = 1.9e150 at q* = 1e300 is a silent overflow: it is the
    right answer. E[sech⁴(√q z)] = (4/3)/√(2πq) (1 + O(1/q)), so σ_w² = (3/4)√(2π q*) and
    σ_b² = q* − σ_w² E[tanh²] = q* (1 − O(q*^{−1/2}))."""
    from gradmath.meanfield.spectra import critical_point

    sw, sb = critical_point("tanh", q_star)
    assert sw == pytest.approx(0.75 * math.sqrt(2 * math.pi) * math.sqrt(q_star), rel=1e-12)
    assert sb == pytest.approx(q_star, rel=1e-12) and math.isfinite(sb)
