"""Finite-width theory: exact ReLU laws, the O(1/n) expansion and the exact chain.

References: exact rationals and digamma sums (mpmath), scipy's chi-square distribution, the
sampled chain (numeric.length_chain) and directly sampled ReLU networks, with z-tests at a
Bonferroni threshold per test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from scipy.stats import binom, chi2

import gradmath
from gradmath import MLP, GradmathError
from gradmath.meanfield import predict
from gradmath.meanfield.finite_width import (
    chain_law,
    delta_method,
    expand,
    layer_specs,
    relu_gradient_law,
    relu_norm_law,
    relu_preactivation_law,
)
from gradmath.network import Dense, LayerNorm
from gradmath.numeric import length_chain
from gradmath.validate import bonferroni_z

GAUSS_HE = gradmath.initializer("normal", sigma_w2=2.0)


# --------------------------------------------------------------------------- exact ReLU laws


def test_fourth_moment_ratio_is_exact() -> None:
    # Hanin (2018): E‖x^L‖⁴/(E‖x^L‖²)² = Π(1 + 5/n_l); width 32, depth 10: (37/32)^10.
    assert relu_norm_law((32,) * 11).moment_ratio() == Fraction(37, 32) ** 10
    law = relu_norm_law((10, 20, 30, 40))
    assert law.mean() == Fraction(40, 10)
    assert law.moment_ratio() == Fraction(25, 20) * Fraction(35, 30) * Fraction(45, 40)


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_log_moments_against_mpmath(n: int) -> None:
    # E[log X] and Var[log X] for X = (2/n)χ²_K, K ~ Bin(n, ½) given K ≥ 1, by direct sums.
    mpmath.mp.dps = 30
    p = [mpmath.binomial(n, k) / (2**n - 1) for k in range(1, n + 1)]
    ks = range(1, n + 1)
    mean = sum(
        pk * (mpmath.digamma(mpmath.mpf(k) / 2) + mpmath.log(2))
        for pk, k in zip(p, ks, strict=True)
    )
    mean += mpmath.log(mpmath.mpf(2) / n)
    m2 = sum(
        pk * (mpmath.psi(1, mpmath.mpf(k) / 2) + (mpmath.digamma(mpmath.mpf(k) / 2)
              + mpmath.log(2) + mpmath.log(mpmath.mpf(2) / n)) ** 2)
        for pk, k in zip(p, ks, strict=True)
    )  # fmt: skip
    law = relu_norm_law((n, n))
    assert law.mean_log() == pytest.approx(float(mean), rel=1e-12, abs=1e-13)
    assert law.var_log() == pytest.approx(float(m2 - mean**2), rel=1e-11)
    assert law.p_alive == pytest.approx(1 - 2.0**-n, rel=1e-15)


def test_cdf_against_chi_square_mixture() -> None:
    # One factor: P(log X ≤ x | K ≥ 1) = Σ_k P(K = k | K ≥ 1) F_{χ²_k}(e^x n/2).
    law = relu_norm_law((4, 3))
    k = np.arange(1, 4)
    pk = binom.pmf(k, 3, 0.5) / (1 - 0.5**3)
    xs = np.linspace(-4, 2.5, 14)
    exact = [float(pk @ chi2.cdf(math.exp(x) * 2, k)) for x in xs]
    assert np.max(np.abs(law.cdf_log(xs) - exact)) < 1e-9


def test_lognormal_limit() -> None:
    # Hanin & Nica (2019): log Π X_l ≈ N(−(5/2)β, 5β); the exact moments approach it as n grows.
    for n in (64, 256, 1024):
        law = relu_norm_law((n,) * 21)
        mu, var = law.lognormal()
        beta = 20 / n
        assert mu == pytest.approx(-2.5 * beta) and var == pytest.approx(5 * beta)
        assert abs(law.mean_log() - mu) < 20 * 10 / n**2
        assert abs(law.var_log() - var) < 20 * 30 / n**2


def _relu_nets(n: int, depth: int, nets: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """One example through `nets` independent He ReLU nets: per-layer (1/n)‖h^l‖², the gradient
    (1/n)‖δ^l‖² for δ^L ~ N(0, I), and ‖(∂x^L/∂x^0)u‖²/‖u‖² (independent reference: plain
    matrix products)."""
    x = rng.standard_normal((nets, n))
    u = rng.standard_normal((nets, n))
    u_norm = np.sum(u * u, axis=1)
    hs, ws, masks = [], [], []
    for _ in range(depth):
        w = rng.standard_normal((nets, n, n)) * math.sqrt(2 / n)
        h = np.einsum("kij,kj->ki", w, x)
        t = np.einsum("kij,kj->ki", w, u)
        mask = h > 0
        x, u = h * mask, t * mask
        hs.append(np.mean(h * h, axis=1))
        ws.append(w)
        masks.append(mask)
    delta = rng.standard_normal((nets, n))  # ∂L/∂h^L
    grads = [np.mean(delta * delta, axis=1)]
    for w, mask in zip(ws[:0:-1], masks[-2::-1], strict=True):
        delta = np.einsum("kij,ki->kj", w, delta) * mask
        grads.append(np.mean(delta * delta, axis=1))
    return np.array(hs), np.array(grads[::-1]), np.sum(u * u, axis=1) / u_norm


@pytest.mark.slow
def test_relu_laws_against_sampled_networks() -> None:
    n, depth, nets = 16, 8, 6000
    fwd, grad, jac = _relu_nets(n, depth, nets, np.random.default_rng(11))
    widths = (n,) * (depth + 1)
    checks = []
    for layer in (1, 4, 8):
        checks.append((np.log(fwd[layer - 1]), relu_preactivation_law(widths, layer)))
        checks.append((np.log(grad[layer - 1]), relu_gradient_law(widths, layer)))
    checks.append((np.log(jac), relu_norm_law(widths)))
    # Per check: mean of the log, and the 5% and 50% quantiles (binomial standard errors).
    z_max = bonferroni_z(3 * len(checks), 0.01)
    for logs, law in checks:
        z = (logs.mean() - law.mean_log()) / math.sqrt(law.var_log() / logs.size)
        assert abs(z) < z_max, (law, z)
        for p in (0.05, 0.5):
            frac = float(np.mean(logs <= law.quantile_log(p)))
            assert abs(frac - p) / math.sqrt(p * (1 - p) / logs.size) < z_max
    # The mean itself is exact: E[(1/n)‖h^l‖²] = 2, E[(1/n)‖δ^l‖²] = 1.
    assert relu_preactivation_law(widths, 8).mean() == 2
    assert relu_gradient_law(widths, 1).mean() == 1


def test_relu_law_input_errors() -> None:
    with pytest.raises(GradmathError, match="layer"):
        relu_preactivation_law((4, 4, 4), 3)
    with pytest.raises(GradmathError, match="widths"):
        relu_norm_law((4,))
    with pytest.raises(GradmathError, match="`p`"):
        relu_norm_law((4, 4)).quantile_log(1.0)


# --------------------------------------------------------------------------- O(1/n) expansion


def _net(act: str, n: int, depth: int, sigma_w2: float, bias: float = 0.0) -> MLP:
    init = gradmath.initializer("normal", sigma_w2=sigma_w2)
    return MLP.square(n, depth, activation=act, init=init, sigma_b2=bias)


@pytest.mark.parametrize(("act", "sigma_w2", "bias"), [("tanh", 1.5, 0.05), ("selu", 1.0, 0.0)])
def test_expansion_agrees_with_delta_method_to_second_order(
    act: str, sigma_w2: float, bias: float
) -> None:
    # Roberts–Yaida–Hanin's form (coefficients on the mean-field path) and the delta method on
    # the chain (derivatives at μ_l) differ at O(1/n²): ×16 less when the width grows ×4.
    gaps = []
    for n in (64, 256):
        net = _net(act, n, 12, sigma_w2, bias)
        p = predict(net)
        specs = layer_specs(net)
        fw = expand(specs, p.log_q, p.log_grad_q, 1.0)
        mu, _ = delta_method(specs)
        gaps.append(np.max(np.abs(fw.log_q - np.log(mu))))
        assert np.max(np.abs(fw.log_q - p.log_q)) > 10 * gaps[-1]  # the correction is real
    assert gaps[1] < gaps[0] / 8


def test_expansion_exact_for_relu_means() -> None:
    net = _net("relu", 16, 30, 2.0)
    p = predict(net)
    fw = expand(layer_specs(net), p.log_q, p.log_grad_q, 1.0)
    np.testing.assert_allclose(fw.log_q, p.log_q, atol=1e-12)
    np.testing.assert_allclose(fw.log_grad_q, p.log_grad_q, atol=1e-9)  # quadrature-level
    # Spread to first order: exact relative variance of one example's (1/n)‖h^l‖² is
    # (1+2/n)²(1+5/n)^{l−1} − 1; the expansion has its O(1/n) part, (4 + 5(l−1))/n.
    assert fw.rel_var_q[0] == pytest.approx((1 + 2 / 16) ** 2 - 1)


# --------------------------------------------------------------------------- exact chain


@pytest.mark.slow
def test_chain_is_exact_for_relu() -> None:
    widths = (16,) * 9
    net = _net("relu", 16, 8, 2.0)
    p = predict(net)
    ex = chain_law(layer_specs(net), p.log_q, p.log_grad_q, 1.0)
    np.testing.assert_allclose(np.exp(ex.log_q), 2.0, rtol=1e-4)
    np.testing.assert_allclose(np.exp(ex.log_grad_q), 1.0, rtol=1e-4)
    exact = [float(relu_preactivation_law(widths, k).moment_ratio()) - 1 for k in range(1, 9)]
    np.testing.assert_allclose(ex.rel_var_q, exact, rtol=2e-3)


@pytest.mark.slow
def test_chain_against_sampled_chain_gelu() -> None:
    # GELU, He, width 256, depth 20: the expansion is off by a factor 3 at layer 20; the exact
    # law meets the sampled chain (E[A^20] ≈ 0.080 against 0.0054 from mean field).
    net = _net("gelu", 256, 20, 2.0)
    p = predict(net)
    ex = chain_law(layer_specs(net), p.log_q, p.log_grad_q, 1.0)
    mean, se = length_chain(net, samples=8000, seed=4)
    z = (mean - np.exp(ex.log_q)) / se
    assert np.max(np.abs(z)) < bonferroni_z(20, 0.01), z
    assert np.exp(ex.log_q[-1]) > 10 * np.exp(p.log_q[-1])


@pytest.mark.slow
def test_expansion_meets_chain_where_small() -> None:
    net = _net("tanh", 256, 20, 1.5, 0.05)
    p = predict(net)
    specs = layer_specs(net)
    ex = chain_law(specs, p.log_q, p.log_grad_q, 1.0)
    fw = expand(specs, p.log_q, p.log_grad_q, 1.0)
    for a, b, mf in ((fw.log_q, ex.log_q, p.log_q), (fw.log_grad_q, ex.log_grad_q, p.log_grad_q)):
        assert np.max(np.abs(a - b)) < 0.05 * max(np.max(np.abs(b - mf)), 1e-3) + 1e-4


def test_width_corrections_choose_and_refuse() -> None:
    small = predict(_net("tanh", 512, 5, 1.5, 0.05), width_corrections=True)
    assert small.source == "finite-width theory (O(1/n) expansion)"
    assert predict(_net("relu", 16, 3, 2.0), width_corrections=True).source == (
        "finite-width theory (exact ReLU law)"
    )
    # The same plain net as a Network gives the same profile as the MLP.
    mlp = _net("tanh", 32, 3, 1.5, 0.05)
    a = predict(mlp, width_corrections="expansion")
    b = predict(mlp.network, width_corrections="expansion")
    np.testing.assert_array_equal(a.log_q, b.log_q)
    np.testing.assert_array_equal(a.sd_log, b.sd_log)
    assert np.all(np.isnan(a.sd_log[2])) and np.all(a.sd_log[:2] > 0)
    with pytest.raises(GradmathError, match="width_corrections"):
        predict(_net("tanh", 8, 2, 1.0), width_corrections="fast")  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="plain nets"):
        predict(MLP.square(8, 3, activation="relu", residual=0.5), width_corrections=True)
    with pytest.raises(GradmathError, match="LayerNorm"):
        net = gradmath.network.Network(8, Dense(8), LayerNorm(), "tanh", Dense(8))
        predict(net, width_corrections=True)
    with pytest.raises(GradmathError, match="orthogonal"):
        predict(MLP.square(8, 3, activation="tanh", init="orthogonal"), width_corrections=True)
    with pytest.raises(GradmathError, match="loss"):
        predict(_net("tanh", 8, 2, 1.0), loss="mse", width_corrections=True)


def test_relu_spread_is_the_exact_law() -> None:
    # predict's mean_log/sd_log for ReLU + Gaussian weights + zero bias are the digamma and
    # trigamma sums of Hanin & Nica's chi-square products, here at unequal widths and σ_w² = 3.
    widths = (10, 20, 30, 40, 12)
    net = MLP(widths, activation="relu", init=gradmath.initializer("normal", sigma_w2=3.0))
    p = predict(net, width_corrections=True, input_q=2.0)
    assert p.mean_log is not None and p.sd_log is not None
    for k in range(1, 5):
        for row, law in ((0, relu_preactivation_law(widths, k)), (1, relu_gradient_law(widths, k))):
            log_mean = (p.log_q, p.log_grad_q)[row][k - 1]
            gap = law.mean_log() - math.log(law.mean())
            assert p.mean_log[row, k - 1] == pytest.approx(log_mean + gap, abs=1e-12)
            assert p.sd_log[row, k - 1] == pytest.approx(math.sqrt(law.var_log()), rel=1e-12)


def test_expansion_spread_meets_the_relu_law() -> None:
    # The expansion's spread (log-normal A, exact χ² factor) is first order: at width 64, depth
    # 10 its SD of log q is within 3% of the exact law's, at width 256 within 1%.
    for n, tol in ((64, 0.03), (256, 0.01)):
        net = _net("relu", n, 10, 2.0)
        fw = expand(layer_specs(net), *(lambda p: (p.log_q, p.log_grad_q))(predict(net)), 1.0)
        widths = (n,) * 11
        exact_q = [math.sqrt(relu_preactivation_law(widths, k).var_log()) for k in range(1, 11)]
        exact_g = [math.sqrt(relu_gradient_law(widths, k).var_log()) for k in range(1, 11)]
        np.testing.assert_allclose(fw.sd_log_q, exact_q, rtol=tol)
        np.testing.assert_allclose(fw.sd_log_grad_q, exact_g, rtol=2 * tol)


def test_deep_expansion_interpolates_its_coefficients(monkeypatch: pytest.MonkeyPatch) -> None:
    # Above TABLE_NODES layers the ratios come from a spline in log q; same answer to 1e-7
    # of the correction, and depth 10,000 stays finite in log space.
    import gradmath.meanfield.finite_width.expansion as ex

    net = _net("tanh", 256, 600, 1.0)  # critical: q^l ~ 1/l sweeps decades
    p = predict(net)
    specs = layer_specs(net)
    table = expand(specs, p.log_q, p.log_grad_q, 1.0)
    monkeypatch.setattr(ex, "TABLE_NODES", 10**6)
    direct = expand(specs, p.log_q, p.log_grad_q, 1.0)
    for a, b, mf in ((table.log_q, direct.log_q, p.log_q),
                     (table.log_grad_q, direct.log_grad_q, p.log_grad_q)):  # fmt: skip
        assert np.max(np.abs(a - b)) < 1e-5 * np.max(np.abs(b - mf))
    deep = predict(_net("relu", 4096, 10_000, 4.0), width_corrections=True)
    assert np.all(np.isfinite(deep.log_q)) and deep.log_q[-1] > 6900
    assert deep.sd_log is not None and np.all(np.isfinite(deep.sd_log[:2]))
