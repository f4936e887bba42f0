"""The Gaussian engine against mpmath (30 digits), closed forms and exact identities."""

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import gradmath
from gradmath import GradmathError
from gradmath import meanfield as mf
from gradmath.meanfield import gaussian as gs
from gradmath.meanfield.moments import ActivationMoments

ACTS = [gradmath.activation(n) for n in gradmath.activations()]
QS = [1e-6, 1e-2, 1.0, 30.0, 1e6]
TOL = 1e-10


def _mp_functions(act):
    z = act.symbol()
    return (
        sp.lambdify(z, act.expr, "mpmath"),
        sp.lambdify(z, sp.diff(act.expr, z), "mpmath"),
    )


def _mp_expect(fun, q, kinks):
    """E[fun(√q z)²] by mpmath.quad, split at the kinks and around the transition |u| ~ 1."""
    s = mp.sqrt(mp.mpf(q))
    pts = {mp.mpf(0)} | {mp.mpf(k) / s for k in kinks}
    for j in range(6):
        t = mp.mpf(4) ** j / s
        if t < 12:
            pts |= {t, -t}
    return mp.quad(lambda z: fun(s * z) ** 2 * mp.npdf(z), [-mp.inf, *sorted(pts), mp.inf])


@pytest.mark.parametrize("act", ACTS, ids=lambda a: a.name)
def test_univariate_against_mpmath(act):
    mp.mp.dps = 30
    f, d = _mp_functions(act)
    got_f = gs.expect(lambda u: act(u) ** 2, QS, act.kinks)
    got_d = gs.expect(lambda u: act.deriv(u) ** 2, QS, act.kinks)
    for i, q in enumerate(QS):
        for got, fun in ((got_f[i], f), (got_d[i], d)):
            ref = float(_mp_expect(fun, q, act.kinks))
            assert abs(got - ref) <= TOL * abs(ref), (act.name, q, got, ref)
    # mean_phi2/mean_dphi2 (closed forms where they exist) agree with the engine.
    np.testing.assert_allclose(mf.mean_phi2(act, QS), got_f, rtol=TOL)
    np.testing.assert_allclose(mf.mean_dphi2(act, QS), got_d, rtol=TOL)


CLOSED = [n for n in gradmath.activations() if gradmath.activation(n).gaussian is not None]
GRID = np.array(
    list(itertools.product([1e-6, 1.0, 1e6], [1e-2, 30.0], [-1.0, -0.999999, -0.7, 0.0, 0.3,
                                                            0.9, 1 - 1e-8, 1.0]))
)  # fmt: skip


@pytest.mark.parametrize("name", CLOSED)
def test_one_point_closed_forms_against_quadrature(name):
    """Every closed form an activation carries (E[φ²], E[φ'²], the slope, E[φ], E[φ⁴])."""
    act = gradmath.activation(name)
    form = act.gaussian
    q = np.array([1e-6, 0.3, 1.0, 7.0, 1e6])
    quad = {
        "phi2": gs.expect(lambda u: act(u) ** 2, q, act.kinks),
        "dphi2": gs.expect(lambda u: act.deriv(u) ** 2, q, act.kinks),
        "slope": gs.expect(lambda u: u * act(u) * act.deriv(u), q, act.kinks) / q,
        "mean": gs.expect(act, q, act.kinks),
        "phi4": gs.expect(lambda u: act(u) ** 4, q, act.kinks),
    }
    for what, ref in quad.items():
        got = getattr(form, what)(q)
        if got is None:
            continue
        scale = np.sqrt(quad["phi2"]) if what == "mean" else np.abs(ref)
        np.testing.assert_array_less(np.abs(got - ref), TOL * scale + 1e-300, err_msg=what)
    lq = np.log(q)
    np.testing.assert_allclose(np.exp(form.log_phi2(lq)), quad["phi2"], rtol=TOL)
    np.testing.assert_allclose(np.exp(form.log_dphi2(lq)), quad["dphi2"], rtol=TOL)


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("deriv", [False, True], ids=["phi", "dphi"])
def test_bivariate_quadrature_against_closed_forms(name, deriv):
    """The generic quadrature path vs the arc-cosine (Cho & Saul) and arcsin (Williams) kernels.

    Relative error, with the scale √(E f(u₁)² E f(u₂)²) as the floor where the kernel itself
    vanishes (ReLU at c → −1, linear at c = 0).
    """
    act = gradmath.activation(name)
    q1, q2, c = GRID.T
    fn = act.deriv if deriv else act
    got = gs.expect2(fn, fn, q1, q2, c, act.kinks)
    ref = mf.dkernel(act, q1, q2, c) if deriv else mf.kernel(act, q1, q2, c)
    one = np.ones_like(c)
    k = mf.dkernel if deriv else mf.kernel
    scale = np.sqrt(k(act, q1, q1, one) * k(act, q2, q2, one))
    assert np.all(np.abs(got - ref) <= TOL * np.maximum(np.abs(ref), 1e-6 * scale))


def test_relu_arccos_kernel_values():
    relu = gradmath.activation("relu")
    assert mf.kernel(relu, 2.0, 2.0, 1.0) == pytest.approx(1.0, rel=1e-15)
    assert mf.kernel(relu, 1.0, 1.0, 0.0) == pytest.approx(1 / (2 * math.pi), rel=1e-15)
    assert mf.kernel(relu, 1.0, 4.0, -1.0) == 0.0
    assert mf.dkernel(relu, 3.0, 5.0, 0.0) == pytest.approx(0.25, rel=1e-15)


def _he(k, z):
    a, b = mp.mpf(1), z  # probabilists' Hermite polynomials He_0, He_1, …
    for j in range(1, k):
        a, b = b, z * b - j * a
    return a if k == 0 else b


def _mp_hermite(fun, q, kmax):
    """a_k = E[fun(√q z) He_k(z)], k = 0..kmax, by mpmath (for Mehler's formula)."""
    s = mp.sqrt(mp.mpf(q))
    pts = sorted({-1 / s, mp.mpf(0), 1 / s}, key=float)
    return [
        mp.quad(lambda z, k=k: fun(s * z) * _he(k, z) * mp.npdf(z), [-mp.inf, *pts, mp.inf])
        for k in range(kmax + 1)
    ]


@pytest.mark.parametrize("name", ["tanh", "hard_tanh"])
def test_bivariate_against_mehler_series(name):
    """E[φ(u₁)φ(u₂)] = Σ_k a_k(q₁) a_k(q₂) c^k/k! (Mehler), coefficients by mpmath.

    |c| ≤ 0.07 and k ≤ 12 leave a tail below 0.07^13 ≈ 1e-15 of √(E φ(u₁)² E φ(u₂)²).
    """
    mp.mp.dps = 20
    act = gradmath.activation(name)
    f, _ = _mp_functions(act)
    q1, q2, kmax = 0.5, 3.0, 12
    a1, a2 = _mp_hermite(f, q1, kmax), _mp_hermite(f, q2, kmax)
    for c in (-0.07, 0.06):
        ref = float(sum(a1[k] * a2[k] * mp.mpf(c) ** k / mp.factorial(k) for k in range(kmax + 1)))
        got = float(gs.expect2(act, act, q1, q2, c, act.kinks))
        assert abs(got - ref) <= TOL * abs(ref), (name, c, got, ref)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: a.name)
def test_bivariate_identities(act):
    """c = ±1 is the univariate integral; c = 0 factorises."""
    q1, q2 = np.array([1e-3, 2.0, 1e5]), np.array([7.0, 0.5, 1e-4])
    one = np.ones(3)
    e11 = gs.expect2(act, act, q1, q1, one, act.kinks)
    np.testing.assert_allclose(e11, gs.expect(lambda u: act(u) ** 2, q1, act.kinks), rtol=TOL)
    em1 = gs.expect2(act, act, q1, q1, -one, act.kinks)
    ref = gs.expect(lambda u: act(u) * act(-u), q1, act.kinks)
    assert np.all(np.abs(em1 - ref) <= TOL * np.maximum(np.abs(ref), 1e-6 * e11))
    e0 = gs.expect2(act, act.deriv, q1, q2, 0 * one, act.kinks)
    prod = gs.expect(act, q1, act.kinks) * gs.expect(act.deriv, q2, act.kinks)
    scale = np.sqrt(mf.mean_phi2(act, q1) * mf.mean_dphi2(act, q2))
    assert np.all(np.abs(e0 - prod) <= TOL * np.maximum(np.abs(prod), 1e-4 * scale))


@pytest.mark.parametrize("act", ACTS, ids=lambda a: a.name)
def test_log_moments_are_finite_and_continuous_at_the_switches(act):
    for edge in (gs.Q_LOW, gs.Q_HIGH):
        inside = float(
            ActivationMoments(act).log_exact(np.array([math.log(edge) * (1 - 1e-12)]))[0][0]
        )
        outside = float(
            ActivationMoments(act).log_exact(np.array([math.log(edge) * (1 + 1e-12)]))[0][0]
        )
        assert abs(inside - outside) < 1e-9
    lq = np.array([-1e4, -700.0, 0.0, 700.0, 1e4])
    assert np.all(np.isfinite(mf.log_mean_phi2(act, lq)))
    assert np.all(np.isfinite(mf.log_mean_dphi2(act, lq)))


def test_homogeneous_and_bounded_asymptotics():
    assert mf.log_mean_phi2("relu", 6931.0) == pytest.approx(6931.0 - math.log(2), rel=1e-15)
    assert mf.log_mean_phi2("tanh", 5000.0) == pytest.approx(0.0, abs=1e-11)
    # tanh': ∫Dz sech⁴(√q z) → (4/3)/√(2πq) for large q.
    lq = 100.0
    expected = math.log(4 / 3 / math.sqrt(2 * math.pi)) - lq / 2
    assert mf.log_mean_dphi2("tanh", lq) == pytest.approx(expected, abs=1e-10)
    assert mf.mean_dphi2("relu", 0.0) == 0.5
    assert mf.mean_phi2("sigmoid", 0.0) == 0.25


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gs.expect(np.sin, -1.0), r"`q` contains -1.0"),
        (lambda: gs.expect(np.sin, float("nan")), "`q`"),
        (lambda: gs.expect2(np.sin, np.sin, 1.0, 1.0, 1.5), r"`c` contains 1.5"),
        (lambda: mf.mean_phi2("tanhh", 1.0), "Did you mean 'tanh'"),
        (lambda: gs.expect_shifted(np.sin, 0.0, -2.0), "`var`"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(GradmathError, match=match):
        call()


SMOOTH_QUAD = [a for a in ACTS if a.gaussian is None and not a.kinks]


@pytest.mark.slow
@pytest.mark.parametrize("act", SMOOTH_QUAD, ids=lambda a: a.name)
@pytest.mark.parametrize("deriv", [False, True], ids=["phi", "dphi"])
def test_mehler_kernels_agree_with_the_product_rule(act, deriv):
    """The public kernels (Hermite series where its bound allows) vs the 2-D product rule.

    Covers the series (q ≤ 16), its fallback (q = 30; c → ±1 where the bound is too
    large) and q₁ ≠ q₂. Error relative to √(E f(u₁)² E f(u₂)²), where the kernel vanishes.
    """
    q = [1e-3, 0.3, 2.0, 9.0, 30.0]
    cs = [-1.0, -0.999, -0.6, 0.0, 0.2, 0.95, 0.9999, 1.0]
    q1, q2, c = np.array(list(itertools.product(q, q[1:3], cs))).T
    fn = act.deriv if deriv else act
    k = mf.dkernel if deriv else mf.kernel
    got = k(act, q1, q2, c)
    ref = gs.expect2(fn, fn, q1, q2, c, act.kinks)
    one = np.ones_like(c)
    scale = np.sqrt(k(act, q1, q1, one) * k(act, q2, q2, one))
    np.testing.assert_array_less(np.abs(got - ref), 2 * TOL * scale)


@pytest.mark.slow
def test_c_star_and_xi_c_near_the_critical_line_against_mpmath():
    """tanh at σ_w² = 1.468, σ_b² = 0.0128 (χ₁ − 1 ≈ 1e-3, c* ≈ 0.988, ξ_c ≈ 1227).

    Reference: q* by mpmath (25 digits), c* and χ_c from Mehler's series with mpmath
    coefficients (k ≤ 60; at q* ≈ 0.3 the neglected terms are below 1e-25).
    """
    from gradmath.meanfield import depth_scales, phase_diagram

    mp.mp.dps = 25
    sw, sb = 1.467948717948718, 0.01282051282051282
    msw, msb = mp.mpf(sw), mp.mpf(sb)

    def length(q):
        return msw * mp.quad(
            lambda z: mp.tanh(mp.sqrt(q) * z) ** 2 * mp.npdf(z), [-mp.inf, 0, mp.inf]
        )

    q = mp.findroot(lambda q: length(q) + msb - q, mp.mpf("0.307"))
    kmax = 60
    a = _mp_hermite(mp.tanh, q, kmax)
    r = [a[k] ** 2 / mp.factorial(k) for k in range(kmax + 1)]
    kern = lambda c: sum(r[k] * c**k for k in range(kmax + 1))  # noqa: E731
    dk = lambda c: sum(k * r[k] * c ** (k - 1) for k in range(1, kmax + 1)) / q  # noqa: E731
    c_ref = mp.findroot(lambda c: (msw * kern(c) + msb) / q - c, mp.mpf("0.988"))
    chi_ref = msw * dk(c_ref)
    xi_ref = float(-1 / mp.log(chi_ref))
    ds = depth_scales("tanh", sw, sb)
    pd = phase_diagram("tanh", [sw], [sb])
    for c_star, xi_c in ((ds.c_star, ds.xi_c), (pd.c_star[0, 0], pd.xi_c[0, 0])):
        assert c_star == pytest.approx(float(c_ref), rel=1e-10)
        assert xi_c == pytest.approx(xi_ref, rel=1e-10)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu"])
def test_hermite_series_short_sums_equal_the_full_sums_to_rounding(name):
    """Pairs whose tail is below rounding sum fewer terms; the value is the full sum's anyway.

    The full sums are formed here directly from the coefficients (no Horner, no shortening),
    over q from 1e-3 to 16 (q₁ ≠ q₂ too) and c across [−1, 1]; error relative to the scale
    √(E f(u₁)² E f(u₂)²) as in the kernel's own bound.
    """
    m = ActivationMoments(gradmath.activation(name))
    rng = np.random.default_rng(7)
    q = np.exp(rng.uniform(math.log(1e-3), math.log(16.0), 60))
    ser = m.series(q)
    assert np.all(ser.ok)
    i, j = rng.integers(0, q.size, 400), rng.integers(0, q.size, 400)
    c = np.concatenate([rng.uniform(-1, 1, 396), [-1.0, 0.0, 0.5, 1.0]])
    val, dval, _, _ = ser.kernel(ser, i, j, c)
    k = np.arange(ser.terms + 1)[:, None]
    t = ser.a[:, i] * ser.a[:, j]
    full = np.sum(t * c**k, axis=0)
    dfull = np.sum((k * t)[1:] * c ** (k[1:] - 1), axis=0) / np.sqrt(q[i] * q[j])
    eps = np.finfo(float).eps
    assert np.all(np.abs(val - full) <= 64 * eps * np.sqrt(ser.phi2[i] * ser.phi2[j]))
    assert np.all(np.abs(dval - dfull) <= 64 * eps * np.sqrt(ser.dphi2[i] * ser.dphi2[j]))
