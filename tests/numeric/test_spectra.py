"""Sampled Jacobian spectra: exact products, reproducibility, and agreement with the theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradmath
from gradmath import GradmathError
from gradmath.meanfield.spectra import Jacobian, critical_network
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
    return compare_spectra(
        Jacobian.of(net, q0), sample_spectra(net, n_networks=8, seed=seed, input_q=q0)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "act,weights", [("erf", "gaussian"), ("erf", "orthogonal"), ("hard_tanh", "orthogonal")]
)
def test_sampled_spectrum_agrees_with_theory(act: str, weights: str) -> None:
    # Critical nets, width 256, depth 4, 8 networks: moments at |z| < 4 and the across-network
    # KS test at p ≥ 1% (family-wise false alarm ≈ 1%, validate_spectra docstring).
    _critical(act, weights, 11).assert_agrees()  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize(
    "act,weights", [("relu", "gaussian"), ("relu", "orthogonal"), ("hard_tanh", "gaussian")]
)
def test_dead_units_moments_agree_and_finite_width_zeros_are_counted(
    act: str, weights: str
) -> None:
    # φ' = 0 on a fraction a₀ of units (ReLU ½, hard-tanh 1 − erf(1/√(2q*)) = 0.0455): at
    # width n the rank of J is the fewest live units of any layer, so the sample has O(1/√n)
    # more zero eigenvalues than the limit a₀, and the nonzero part is renormalised by about
    # that much, which the KS test resolves here (README, Known limits); the moments agree.
    cmp = _critical(act, weights, 11)
    assert cmp.max_abs_z < 4  # type: ignore[attr-defined]
    a0, n = cmp.zero_mass, 256  # type: ignore[attr-defined]
    assert a0 == pytest.approx(0.5 if act == "relu" else math.erfc(math.sqrt(2)), rel=1e-12)
    assert a0 < cmp.zero_fraction < a0 + 6 * math.sqrt(a0 * (1 - a0) / n)  # type: ignore[attr-defined]
