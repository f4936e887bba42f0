"""Sampled Jacobian spectra: exact products, reproducibility, and agreement with the theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradmath
from gradmath import GradmathError
from gradmath.meanfield.spectra import Jacobian
from gradmath.numeric import backward, forward, sample_params
from gradmath.numeric.spectra import jacobian, sample_spectra
from gradmath.validate_spectra import compare_spectra


def test_jacobian_matches_backpropagation_row_by_row() -> None:
    # Row i of J = ∂x^L/∂x^0 is the input gradient of x^L_i; backward() gives ∂L/∂h^1 for
    # ∂L/∂h^L = e_i ⊙ φ'(h^L), and ∂L/∂x^0 = (∂L/∂h^1) W^1.
    net = gradmath.MLP.square(6, 3, activation="tanh", init="glorot_normal", sigma_b2=0.1)
    p = sample_params(net, np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal(6)
    j, log_c = jacobian(net, p, x)
    full = j * math.exp(log_c)
    cache = forward(net, p, x[None, :])
    dphi = net.layers[-1].activation.deriv(cache.h[-1][0])
    for i in range(6):
        g = np.zeros((1, 6))
        g[0, i] = dphi[i]
        delta1 = backward(net, p, cache, g).delta[0]
        assert (delta1 @ p[0][0])[0] == pytest.approx(full[i], rel=1e-12, abs=1e-14)


def test_orthogonal_linear_net_is_an_isometry_and_seeded() -> None:
    net = gradmath.MLP.square(32, 20, activation="linear", init="orthogonal")
    s = sample_spectra(net, n_networks=3, seed=7)
    assert s.scaled(0.0) == pytest.approx(np.ones((3, 32)), rel=1e-10)
    again = sample_spectra(net, n_networks=3, seed=7)
    assert np.array_equal(s.eigenvalues, again.eigenvalues)


def test_bad_input() -> None:
    with pytest.raises(GradmathError, match="square"):
        sample_spectra(gradmath.MLP((4, 5, 5)), n_networks=2, seed=0)
    with pytest.raises(GradmathError, match="n_networks"):
        sample_spectra(gradmath.MLP.square(4, 2), n_networks=0, seed=0)


ORTH = gradmath.initializer("orthogonal")
CASES = [
    # (activation, initializer, bias variance): hard-tanh and erf with both weight kinds.
    ("hard_tanh", ORTH, 0.05),
    ("hard_tanh", "lecun_normal", 0.05),
    ("erf", ORTH, 0.05),
    ("erf", "lecun_normal", 0.05),
]


@pytest.mark.slow
@pytest.mark.parametrize("act,init,bias", CASES)
def test_sampled_spectrum_agrees_with_theory(act: str, init: object, bias: float) -> None:
    # Width 256, depth 3, 8 networks: moments at |z| < 4 and the across-network KS test at
    # p ≥ 1% (family-wise false alarm ≈ 1%, validate_spectra docstring).
    net = gradmath.MLP.square(256, 3, activation=act, init=init, sigma_b2=bias)
    cmp = compare_spectra(Jacobian.of(net), sample_spectra(net, n_networks=8, seed=11))
    cmp.assert_agrees()


@pytest.mark.slow
@pytest.mark.parametrize(
    "init", [gradmath.initializer("orthogonal", gain=math.sqrt(2)), "he_normal"]
)
def test_relu_moments_agree_and_dead_units_are_counted(init: object) -> None:
    net = gradmath.MLP.square(256, 2, activation="relu", init=init)
    cmp = compare_spectra(Jacobian.of(net), sample_spectra(net, n_networks=8, seed=5))
    assert cmp.max_abs_z < 4
    # Half the eigenvalues vanish at infinite width; at width n the rank of J is the fewest
    # live units of any layer, which adds O(1/√n) zeros (E max of 2 normals · ½/√256 ≈ 0.018).
    assert cmp.zero_mass == 0.5
    assert 0.5 < cmp.zero_fraction < 0.5 + 6 * 0.5 / math.sqrt(256)
