"""Sampled Jacobian spectra: exact products, reproducibility, and agreement with the theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradmath
from gradmath import GradmathError
from gradmath.meanfield.spectra import Jacobian, critical_network, live_counts
from gradmath.network import BatchNorm, Dense, LayerNorm, Network, Residual, Serial, repeat
from gradmath.network.base import Scaled
from gradmath.numeric.spectra import _OneNetwork, jacobian, sample_spectra
from gradmath.validate_spectra import compare_spectra


def test_jacobian_matches_central_differences_of_the_forward_rule() -> None:
    # J from the backward rules applied to unit vectors vs central differences of the forward
    # rules with the same parameters (the same generator): Dense with bias, a non-homogeneous
    # activation, LayerNorm and a residual block.
    net = Network(
        10,
        Dense(10, "orthogonal", sigma_b2=0.1),
        "tanh",
        LayerNorm(),
        Residual(Serial(Dense(10), "gelu", Dense(10)), 0.7),
        Dense(10),
        "erf",
    )
    x = np.random.default_rng(5).standard_normal(10)
    j, log_c = jacobian(net, np.random.default_rng(3), x)

    def f(xs: np.ndarray) -> np.ndarray:
        y, _ = net.body.sim_forward(
            Scaled(xs[None].copy(), np.zeros(1)), _OneNetwork(net, np.random.default_rng(3))
        )
        return y.u[0] * math.exp(y.s[0])

    eps = 1e-6
    fd = (f(x + eps * np.eye(10)) - f(x - eps * np.eye(10))).T / (2 * eps)
    assert j * math.exp(log_c) == pytest.approx(fd, abs=1e-8 * np.abs(fd).max())


def test_orthogonal_linear_net_is_an_isometry_and_seeded() -> None:
    net = gradmath.MLP.square(32, 20, activation="linear", init="orthogonal")
    s = sample_spectra(net, n_networks=3, seed=7)
    assert s.scaled(0.0) == pytest.approx(np.ones((3, 32)), rel=1e-10)
    again = sample_spectra(net.network, n_networks=3, seed=7)
    assert np.array_equal(s.eigenvalues, again.eigenvalues)


def test_bad_input() -> None:
    with pytest.raises(GradmathError, match="BatchNorm"):
        sample_spectra(Network(4, Dense(4), BatchNorm(), "relu"), n_networks=2, seed=0)
    with pytest.raises(GradmathError, match="n_networks"):
        sample_spectra(gradmath.MLP.square(4, 2), n_networks=0, seed=0)
    with pytest.raises(GradmathError, match="exactly zero"):
        sample_spectra(Network(4, Dense(4, gain=0.0)), n_networks=2, seed=0)
    # Theory and samples of different networks (or inputs) are not compared.
    net, other = gradmath.MLP.square(4, 2), gradmath.MLP.square(4, 3)
    sim = sample_spectra(net, n_networks=2, seed=0)
    with pytest.raises(GradmathError, match="different networks"):
        compare_spectra(Jacobian.of(other), sim)
    with pytest.raises(GradmathError, match="different networks"):
        compare_spectra(Jacobian.of(net, input_q=2.0), sim)
    # Rectangular nets have min(n_in, n_out) singular values.
    assert sample_spectra(gradmath.MLP((6, 5, 3)), n_networks=2, seed=0).eigenvalues.shape == (2, 3)


@pytest.mark.slow
def test_layer_norm_chain_agrees_with_theory() -> None:
    block = Serial(Dense(256, "orthogonal"), LayerNorm(), "tanh")
    net = Network(256, repeat(block, 4))
    cmp = compare_spectra(
        Jacobian.of(net, 2.0), sample_spectra(net, n_networks=8, seed=1, input_q=2.0)
    )
    cmp.assert_agrees()


Q_STAR = {"relu": 1.0, "hard_tanh": 0.25, "erf": 0.25}


def _critical(act: str, weights: str, seed: int) -> object:
    net, q0 = critical_network(act, Q_STAR[act], width=256, depth=4, weights=weights)
    # 8 draws of the live counts for the finite-width mixture (the default is 16): the KS
    # bootstrap includes their spread, so fewer cost power, not calibration, and time (one
    # density solve each, ~1 s for hard-tanh with orthogonal weights).
    return compare_spectra(
        Jacobian.of(net, q0),
        sample_spectra(net, n_networks=8, seed=seed, input_q=q0),
        mixture=8,
    )


COMBOS = [(a, w) for a in ("relu", "hard_tanh", "erf") for w in ("gaussian", "orthogonal")]


@pytest.mark.slow
@pytest.mark.parametrize("act,weights", COMBOS)
def test_sampled_spectrum_agrees_with_theory(act: str, weights: str) -> None:
    # Critical nets, width 256, depth 4, 8 networks: moments at |z| < 4 and the across-network
    # KS test at p ≥ 1% (family-wise false alarm ≈ 1%, validate_spectra docstring). With dead
    # units (ReLU ½, hard-tanh 1 − erf(1/√(2q*)) = 0.0455) J has n − min_l k_l zeros at width
    # n: their count is tested against its exact law and the nonzero part against its law
    # given the live counts (before that, KS D = 0.036–0.042 with p < 0.001 for ReLU).
    cmp = _critical(act, weights, 11)
    cmp.assert_agrees()  # type: ignore[attr-defined]
    assert cmp.zeros_tested == (act != "erf")  # type: ignore[attr-defined]


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_zero_count_law_is_that_of_sampled_networks(weights: str) -> None:
    # The live-count chain against 400 sampled hard-tanh nets (width 64, depth 4): the zero
    # count's mean and variance agree (|z| < 4); independent Binomial(n, 1 − a₀) counts at
    # q* do not (|x|² fluctuates: variance ×2.3 with Gaussian weights, mean −0.6 orthogonal).
    n, K = 64, 400
    net, q0 = critical_network("hard_tanh", 0.25, width=n, depth=4, weights=weights)
    x = sample_spectra(net, n_networks=K, seed=5, input_q=q0).eigenvalues
    z = np.sum(x < 1e-24 * x.max(axis=1, keepdims=True), axis=1)
    chain = n - live_counts(Jacobian.of(net, q0), n, q0, draws=20000, seed=1).min(axis=1)
    a0 = math.erfc(math.sqrt(2))
    binomial = n - np.random.default_rng(0).binomial(n, 1 - a0, (20000, 4)).min(axis=1)

    def worst(law: np.ndarray) -> float:
        var = law.var()
        se_var = math.sqrt((np.mean((law - law.mean()) ** 4) - var**2) / K)
        z_mean = abs(z.mean() - law.mean()) / math.sqrt(var / K)
        return max(z_mean, abs(z.var(ddof=1) - var) / se_var)

    assert worst(chain) < 4 < worst(binomial)
