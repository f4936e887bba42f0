"""Length/correlation maps, fixed points, χ₁, depth scales, critical line, phase diagram."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gradmath
from gradmath import GradmathError
from gradmath.meanfield import (
    chi1,
    correlation_fixed_point,
    correlation_map,
    critical_sigma_w2,
    depth_scales,
    fixed_point,
    gaussian,
    length_map,
    phase_diagram,
)
from gradmath.meanfield.moments import ActivationMoments

SMOOTH = ["tanh", "sigmoid", "erf", "hard_tanh", "softsign", "elu", "selu", "gelu", "softplus"]


def test_relu_closed_forms():
    assert fixed_point("relu", 1.0, 0.5) == 1.0  # σ_b²/(1 − σ_w²/2)
    assert fixed_point("relu", 1.99, 0.0) == 0.0
    for sw in (0.5, 2.0, 3.7):
        assert chi1("relu", sw, 0.2) == sw / 2  # exactly, Cho & Saul E[relu'²] = 1/2
    with pytest.raises(GradmathError, match="grows without bound") as info:
        fixed_point("relu", 2.5, 0.0)
    assert np.isinf(info.value.partial)
    with pytest.raises(GradmathError, match="grows without bound"):
        fixed_point("relu", 2.0, 0.1)
    assert fixed_point("relu", 2.0, 0.0, q0=3.0) == 3.0  # He: every q is fixed
    assert critical_sigma_w2("relu", 0.7) == 2.0


def test_tanh_critical_point_at_zero_bias_is_one():
    assert critical_sigma_w2("tanh", 0.0) == 1.0
    assert fixed_point("tanh", 0.9, 0.0) == 0.0
    assert chi1("tanh", 1.0, 0.0) == 1.0
    assert critical_sigma_w2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-15)


@pytest.mark.parametrize("name", SMOOTH)
def test_fixed_point_residuals(name):
    sw = np.array([0.3, 0.9, 1.5, 1.9, 2.5, 4.0])
    sb = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 1e-8])
    sw, sb = np.meshgrid(sw, sb)
    lim = ActivationMoments(gradmath.activation(name)).limits
    ok = sw * lim.phi2_hi / gaussian.Q_HIGH < 0.99 if lim.unbounded else sw > 0  # finite q*
    q = fixed_point(name, sw[ok], sb[ok])
    res = np.abs(length_map(name, q, sw[ok], sb[ok]) - q)
    assert np.all(res <= 1e-12 * np.maximum(q, 1e-300))


@pytest.mark.parametrize("name", ["tanh", "erf", "hard_tanh"])
def test_critical_line_has_chi1_one(name):
    sb = np.array([0.0, 0.01, 0.1, 0.5, 2.0])
    crit = critical_sigma_w2(name, sb)
    np.testing.assert_allclose(chi1(name, crit, sb), 1.0, rtol=1e-11)


def test_xi_c_diverges_at_the_critical_line():
    crit = critical_sigma_w2("tanh", 0.05)
    xi = [depth_scales("tanh", crit * (1 - d), 0.05).xi_c for d in (1e-1, 1e-2, 1e-3)]
    assert xi[0] < xi[1] < xi[2] and xi[2] > 300
    # ξ_c ≈ 1/(1 − χ₁) near the line: grows tenfold per tenfold approach.
    assert xi[2] / xi[1] == pytest.approx(10, rel=0.05)
    above = [depth_scales("tanh", crit * (1 + d), 0.05).xi_c for d in (1e-1, 1e-2)]
    assert above[0] < above[1]


def test_correlation_map_fixed_points():
    ds = depth_scales("tanh", 2.5, 0.1)  # chaotic
    assert ds.chi1 > 1 and 0 < ds.c_star < 1
    assert correlation_map("tanh", ds.c_star, 2.5, 0.1) == pytest.approx(ds.c_star, abs=1e-13)
    assert correlation_map("tanh", 1.0, 2.5, 0.1) == pytest.approx(1.0, abs=1e-13)
    assert correlation_fixed_point("tanh", 1.5, 0.0) == 0.0  # odd φ, no bias
    assert correlation_fixed_point("tanh", 0.8, 0.1) == 1.0  # ordered
    # ReLU: σ_w² = 2, σ_b² = 0 maps c = 0 to 1/π (Cho & Saul).
    assert correlation_map("relu", 0.0, 2.0, 0.0, q=1.0) == pytest.approx(1 / math.pi, rel=1e-15)
    # ReLU with σ_w² > 2: q* = ∞; normalised by the growing length the map is σ_w²-free,
    # with slope 1 at c = 1 (marginal): c* = 1.
    assert correlation_fixed_point("relu", 3.0, 0.1) == 1.0
    assert correlation_map("relu", 0.0, 3.0, 0.0) == pytest.approx(1 / math.pi, rel=1e-15)


def test_depth_scales_match_schoenholz_definitions():
    ds = depth_scales("erf", 1.2, 0.05)
    q = ds.q_star
    # slope of the length map by central differences vs the Stein form
    h = 1e-6 * q
    fd = (length_map("erf", q + h, 1.2, 0.05) - length_map("erf", q - h, 1.2, 0.05)) / (2 * h)
    assert ds.slope_q == pytest.approx(fd, rel=1e-8)
    assert ds.xi_q == pytest.approx(-1 / math.log(ds.slope_q), rel=1e-15)
    assert ds.xi_c == pytest.approx(-1 / math.log(ds.chi1), rel=1e-15)  # ordered: c* = 1
    # hard_tanh: φ'' = 0 pointwise, but the slope has point masses at ±1 (Stein form).
    ht = depth_scales("hard_tanh", 1.5, 0.1)
    h = 1e-6 * ht.q_star
    fd = (
        length_map("hard_tanh", ht.q_star + h, 1.5, 0.1)
        - length_map("hard_tanh", ht.q_star - h, 1.5, 0.1)
    ) / (2 * h)
    assert ht.slope_q == pytest.approx(fd, rel=1e-7)
    assert ht.slope_q < ht.chi1


@settings(max_examples=25)
@given(
    sw=st.floats(0.05, 6.0),
    sb=st.floats(1e-6, 2.0),
    name=st.sampled_from(["tanh", "erf", "sigmoid", "hard_tanh"]),
)
@example(sw=1.0, sb=1e-6, name="tanh")
def test_fixed_point_laws(sw, sb, name):
    """q* is a fixed point, the map increases with q, and q* increases with σ_w² and σ_b²."""
    q = fixed_point(name, sw, sb)
    assert abs(length_map(name, q, sw, sb) - q) <= 1e-12 * q
    qs = np.array([0.5 * q, q, 2 * q + 1e-9])
    lm = length_map(name, qs, sw, sb)
    assert np.all(np.diff(lm) > 0)
    assert fixed_point(name, sw * 1.1, sb) >= q
    assert fixed_point(name, sw, sb * 1.1) >= q
    assert 0 < chi1(name, sw, sb) <= chi1(name, sw * 1.1, sb) * (1 + 1e-12)


def test_phase_diagram_matches_pointwise_solutions():
    sw = np.linspace(0.5, 4.0, 9)
    sb = np.array([0.0, 0.02, 0.3])
    pd = phase_diagram("tanh", sw, sb)
    assert pd.q_star.shape == pd.chi1.shape == pd.xi_c.shape == (3, 9)
    for ib, b in enumerate(sb):
        for iw, w in enumerate(sw):
            ds = depth_scales("tanh", w, b)
            assert pd.q_star[ib, iw] == pytest.approx(ds.q_star, rel=1e-12, abs=1e-300)
            assert pd.chi1[ib, iw] == pytest.approx(ds.chi1, rel=1e-12)
            assert pd.xi_c[ib, iw] == pytest.approx(ds.xi_c, rel=1e-9)
    np.testing.assert_allclose(pd.critical_sigma_w2, critical_sigma_w2("tanh", sb))
    relu = phase_diagram("relu", [1.0, 3.0], [0.0, 0.5], depth_scale=False)
    assert np.isinf(relu.q_star[:, 1]).all() and relu.xi_c is None
    assert np.isinf(phase_diagram("relu", [3.0], [0.1]).xi_c).all()
    assert relu.chi1.tolist() == [[0.5, 1.5], [0.5, 1.5]]


@pytest.mark.parametrize("name", ["tanh", "hard_tanh", "gelu", "softsign"])
def test_interpolated_moments_match_quadrature(name):
    act = gradmath.activation(name)
    t = np.random.default_rng(3).uniform(-50.0, 50.0, 400)
    lp, ld, _ = ActivationMoments(act).log_fast(t)
    ep, ed = ActivationMoments(act).log_exact(t)
    assert np.max(np.abs(lp - ep)) < 2e-13 and np.max(np.abs(ld - ed)) < 2e-13


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fixed_point("tanh", -1.0, 0.0), r"`sigma_w2` contains -1.0"),
        (lambda: fixed_point("tanh", 1.0, -0.1), r"`sigma_b2` contains -0.1"),
        (lambda: chi1("tnah", 1.0, 0.0), "Did you mean 'tanh'"),
        (lambda: correlation_map("tanh", 1.2, 1.0, 0.1), r"`c` contains 1.2"),
        (lambda: correlation_map("tanh", 0.5, 0.5, 0.0), "q\\* = 0"),
        (lambda: phase_diagram("tanh", [], [0.0]), "non-empty"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(GradmathError, match=match):
        call()


def test_vectorised_xi_c_matches_the_per_point_solver():
    """phase_diagram's grid solve of c* and ξ_c equals depth_scales point by point.

    Near the critical line ξ_c is ill-conditioned: D(c) = map(c) − c is known to ~u = 1e-16,
    D'(c*) ≈ −1/ξ_c, so c* moves by ~u·ξ_c and ξ_c = −1/log χ_c by a relative ~u·ξ_c². The
    tolerance is 1e-10 plus that (with a factor 10 of slack), for two independent solvers.
    """
    sb = np.array([0.0, 0.01, 0.05, 0.2, 0.5])
    crit = critical_sigma_w2("tanh", 0.05)
    sw = np.array([0.5, crit * (1 - 1e-3), crit * (1 + 1e-3), crit * (1 + 1e-2), 2.5, 4.0])
    pd = phase_diagram("tanh", sw, sb)
    assert np.sum(pd.chi1 > 1) >= 12
    for ib, b in enumerate(sb):
        for iw, w in enumerate(sw):
            ds = depth_scales("tanh", w, b)
            assert pd.c_star[ib, iw] == pytest.approx(ds.c_star, rel=1e-10, abs=1e-14)
            if math.isinf(ds.xi_c):
                assert math.isinf(pd.xi_c[ib, iw])
                continue
            tol = 1e-10 + 1e-15 * ds.xi_c**2
            assert pd.xi_c[ib, iw] == pytest.approx(ds.xi_c, rel=tol)


def test_vectorised_xi_c_diverges_from_both_sides():
    crit = critical_sigma_w2("tanh", 0.05)
    d = np.array([1e-1, 1e-2, 1e-3])
    pd = phase_diagram("tanh", np.concatenate([crit * (1 - d), crit * (1 + d)]), [0.05])
    below, above = pd.xi_c[0, :3], pd.xi_c[0, 3:]
    assert np.all(np.diff(below) > 0) and np.all(np.diff(above) > 0)
    assert below[2] > 300 and above[2] > 300
    # ξ_c ≈ 1/|1 − χ₁| on both sides: tenfold per tenfold approach.
    assert below[2] / below[1] == pytest.approx(10, rel=0.05)
    assert above[2] / above[1] == pytest.approx(10, rel=0.05)
    assert np.all(pd.c_star[0, :3] == 1.0) and np.all(pd.c_star[0, 3:] < 1.0)
