"""Adding an activation is one catalogue entry: mish, registered here, runs through every engine.

Mish (Misra 2019): φ(z) = z·tanh(softplus(z)). Nothing in gradmath knows it; the test registers
it with the public API (plus a certifier for its derivative bound, which SymPy cannot solve
for), runs predict, simulate, compare, the phase diagram, derivative_bound and the notes'
activation figure on it, and removes it again.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import gradmath
from gradmath import MLP, Activation
from gradmath.meanfield import ActivationMoments, depth_scales, fixed_point, predict
from gradmath.numeric import simulate
from gradmath.symbolic import Candidate, Step, derivative_bound, register_certifier
from gradmath.validate import compare


def _mish(z: np.ndarray) -> np.ndarray:
    return z * np.tanh(np.logaddexp(0.0, z))


def _mish_deriv(z: np.ndarray) -> np.ndarray:
    t = np.tanh(np.logaddexp(0.0, z))
    s = 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z), overflow-free
    return t + z * (1.0 - t * t) * s


def _g(x):  # φ''(z) = (1 − t²)σ·g(z), with g = 2 + z(1 − σ − 2tσ) (t = tanh softplus z)
    e = mpmath.iv.exp(x)
    t = (e * e + 2 * e) / (e * e + 2 * e + 2)
    s = e / (1 + e)
    return 2 + x * (1 - s - 2 * t * s)


def _dphi(x):
    e = mpmath.iv.exp(x)
    t = (e * e + 2 * e) / (e * e + 2 * e + 2)
    return t + x * (1 - t * t) * e / (1 + e)


def _enclose(lo: float, hi: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """A bracket of a sign change of g, each sign proved by interval arithmetic."""
    lo, hi = mpmath.mpf(lo), mpmath.mpf(hi)
    with mpmath.workprec(80):
        sign = lambda x: 1 if _g(mpmath.iv.mpf(x)).a > 0 else -1  # noqa: E731
        s_lo = sign(lo)
        assert s_lo != sign(hi) and _g(mpmath.iv.mpf(hi)).b * s_lo < 0
        while hi - lo > 1e-13:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sign(mid) == s_lo else (lo, mid)
    return lo, hi


def _mish_certifier(act, e, piece):
    """|φ'| at the two critical points, bounded above over proved enclosures of them."""
    z = act.symbol()
    cands, encl = [], []
    for lo, hi in ((1.0, 2.0), (-3.0, -2.0)):
        a, b = _enclose(lo, hi)
        with mpmath.workprec(80):
            v = _dphi(mpmath.iv.mpf([a, b]))
        top = max(abs(float(v.a)), abs(float(v.b)))  # ±1 ulp: the bound below adds 1e-12
        upper = sp.Rational(math.ceil(float(top) * 1e12) + 1, 10**12)
        where = sp.Interval(sp.Rational(str(float(a))), sp.Rational(str(float(b))))
        cands.append(Candidate(upper, where, True))
        encl.append((sp.Rational(math.floor(float(v.a) * 1e12) - 1, 10**12), upper))
    steps = [Step("critical points of $\\varphi'$ enclosed by interval bisection", None, "test")]
    return cands, steps, {"enclosure": encl[0], "argmax_enclosure": None}
    del z


@pytest.fixture
def mish():
    @gradmath.register_activation("mish")
    def _factory() -> Activation:
        return Activation(
            "mish",
            {},
            _mish,
            _mish_deriv,
            lambda z: z * sp.tanh(sp.log(1 + sp.exp(z))),
            reference="Misra (2019)",
        )

    register_certifier("mish", _mish_certifier)
    try:
        yield gradmath.activation("mish")
    finally:
        gradmath.unregister_activation("mish")
        register_certifier("mish", None)
    assert "mish" not in gradmath.activations()


@pytest.mark.slow
def test_mish_runs_through_every_engine(mish):
    assert mish.gaussian is None and not mish.saturates and mish.slopes_at_infinity == (1.0, 0.0)
    # Mean field: moments against mpmath, a fixed point, the depth scales.
    m = ActivationMoments(mish)
    with mpmath.workdps(30):
        f = lambda u: (u * mpmath.tanh(mpmath.log1p(mpmath.exp(u)))) ** 2  # noqa: E731
        g = lambda z: f(mpmath.sqrt(2) * z) * mpmath.npdf(z)  # noqa: E731
        ref = mpmath.quad(g, [-mpmath.inf, 0, mpmath.inf])
    assert math.exp(m.phi2(math.log(2.0))) == pytest.approx(float(ref), rel=1e-11)
    q = fixed_point(mish, 1.8, 0.1)
    assert np.isfinite(q) and depth_scales(mish, 1.8, 0.1).xi_q > 0
    # predict and simulate the same net, and compare them (|z| < 4, family-wise).
    net = MLP.square(128, 5, activation="mish", init="he_normal")
    theory = predict(net)
    sim = simulate(net, n_networks=24, batch=64, seed=7)
    compare(theory, sim).assert_agrees()
    # Symbolic: the bound, certified through the registered certifier.
    d = derivative_bound("mish")
    grid = float(np.max(np.abs(_mish_deriv(np.linspace(-30, 30, 600_001)))))
    assert not d.exact and grid <= float(d.result) <= grid + 1e-9
    assert "Result (certified numeric bound)" in d.latex()
    # The notes' activation figure covers the whole catalogue, mish included.
    from gradmath.render import figures

    fig = figures.activation_grid()
    assert any(ax.get_title().startswith("mish") for ax in fig.axes)
    import matplotlib.pyplot as plt

    plt.close(fig)
