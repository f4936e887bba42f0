"""The SELU self-normalising map (Klambauer et al. 2017, eqs. 4–5, Theorem 1)."""

import math

import mpmath as mp
import numpy as np
import pytest

from gradmath import GradmathError
from gradmath.activations import SELU_ALPHA, SELU_LAMBDA
from gradmath.meanfield import selu_map, selu_parameters


def test_published_constants_recovered():
    lam, alpha = selu_parameters()
    assert abs(lam - 1.0507009873554805) <= 1e-12 * lam  # ≥ 12 significant digits
    assert abs(alpha - 1.6732632423543772) <= 1e-12 * alpha


def test_fixed_point_and_attraction():
    m, v = selu_map(0.0, 1.0)
    assert abs(m) < 1e-13 and abs(v - 1) < 1e-13
    # Theorem 1: the map contracts towards (0, 1) around it.
    mu, nu = np.array([0.1, -0.1, 0.05]), np.array([0.9, 1.1, 1.3])
    m2, v2 = selu_map(mu, nu)
    assert np.all(np.hypot(m2, v2 - 1) < np.hypot(mu, nu - 1))


def test_map_against_mpmath_closed_form():
    """μ̃ with z ~ N(μω, ντ), by the Gaussian integrals written with erfc."""
    mp.mp.dps = 30
    mu, nu, omega, tau = 0.3, 1.4, 0.5, 0.8
    m, s = mp.mpf(mu * omega), mp.sqrt(mp.mpf(nu * tau))
    lam, a = mp.mpf(SELU_LAMBDA), mp.mpf(SELU_ALPHA)

    def e(f):
        return mp.quad(lambda z: f(m + s * z) * mp.npdf(z), [-mp.inf, -m / s, mp.inf])

    def selu(h):
        return lam * (h if h > 0 else a * (mp.exp(h) - 1))

    m1, m2 = e(selu), e(lambda h: selu(h) ** 2)
    got = selu_map(mu, nu, omega=omega, tau=tau)
    assert got[0] == pytest.approx(float(m1), rel=1e-12)
    assert got[1] == pytest.approx(float(m2 - m1**2), rel=1e-12)


def test_other_fixed_points():
    lam, alpha = selu_parameters(nu=2.0)
    m, v = selu_map(0.0, 2.0, scale=lam, alpha=alpha)
    assert abs(m) < 1e-13 and v == pytest.approx(2.0, rel=1e-13)
    assert not math.isclose(lam, SELU_LAMBDA)


def test_bad_input():
    with pytest.raises(GradmathError, match="`nu`"):
        selu_parameters(nu=0.0)
    with pytest.raises(GradmathError, match="`nu`"):
        selu_map(0.0, -1.0)
