"""Batch-norm mean-field theory: exact ReLU and linear cases, the published large-batch rate,
the spherical quadrature against closed forms and Monte Carlo, and agreement with simulated
networks (Yang, Pennington, Rao, Sohl-Dickstein, Schoenholz 2019)."""

from __future__ import annotations

import doctest
import itertools
import math
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmath import MLP, GradmathError, activation, activations
from gradmath.meanfield import batchnorm, predict
from gradmath.meanfield.batchnorm import batch_moments, gradient_growth


class _BN:
    """A batch-norm MLP's profile in Yang et al.'s layout: per layer the normalised
    pre-activation h^l (the batchnorm sites) and the weight gradient of layer l (Dense sites)."""

    def __init__(self, net: MLP, batch: int | None = None, **kw: float) -> None:
        p = predict(net, batch=batch, **kw)
        bn = p.select("batchnorm")
        self.log_q, self.log_grad_q = bn.log_q, bn.log_grad_q
        self.log_wgrad_q = p.select("dense").log_wgrad_q
        self.profile = p


def predict_batchnorm(net: MLP, batch: int | None = None, **kw: float) -> _BN:
    return _BN(net, batch, **kw)


def test_doctests() -> None:
    assert doctest.testmod(batchnorm, raise_on_error=False).failed == 0


def _relu_sphere_exact(B: int) -> tuple[float, ...]:
    """The six moments for ReLU on the batch sphere, in closed form (independent reference).

    ReLU is positively homogeneous, so with u ~ N(0, P) (P = I − 11ᵀ/B) and h = √B u/‖u‖
    (‖u‖ independent of h): degree-0 moments equal Gaussian ones (orthant probability
    1/4 + arcsin(ρ)/(2π), Sheppard) and degree-2 moments are B/(B−1) times the Gaussian ones
    (arc-cosine kernel, Cho & Saul 2009). u has variance (B−1)/B and correlation ρ = −1/(B−1).
    """
    rho = -1.0 / (B - 1)
    theta = math.acos(rho)
    o = (math.sin(theta) + (math.pi - theta) * rho) / (2 * math.pi)  # (B/(B−1))·s·k(ρ), s=(B−1)/B
    both = 0.25 + math.asin(rho) / (2 * math.pi)
    return 0.5, o, 0.5, both, 0.5, o


@pytest.mark.parametrize("B", [4, 5, 6, 7, 16, 64, 399, 400, 1000, 100_000])
def test_relu_sphere_moments_exact(B: int) -> None:
    got = batch_moments("relu", B)
    np.testing.assert_allclose(got, _relu_sphere_exact(B), rtol=0, atol=1e-12)


@settings(max_examples=15)
@given(st.integers(4, 5000))
def test_relu_sphere_moments_exact_any_batch(B: int) -> None:
    np.testing.assert_allclose(batch_moments("relu", B), _relu_sphere_exact(B), rtol=0, atol=1e-11)


def test_relu_large_batch_rate_is_pi_over_pi_minus_one() -> None:
    # Yang et al. (2019): ReLU, B → ∞: the squared gradient grows by π/(π−1) per layer.
    assert gradient_growth("relu") == pytest.approx(math.pi / (math.pi - 1), rel=1e-13)
    assert gradient_growth("relu", 10**7) == pytest.approx(math.pi / (math.pi - 1), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "phi", "dphi"),
    [
        ("tanh", mp.tanh, lambda z: mp.sech(z) ** 2),
        ("erf", mp.erf, lambda z: 2 / mp.sqrt(mp.pi) * mp.exp(-z * z)),
        ("sigmoid", lambda z: 1 / (1 + mp.exp(-z)), lambda z: mp.exp(-z) / (1 + mp.exp(-z)) ** 2),
    ],
)
def test_large_batch_rate_matches_mpmath(name: str, phi: Any, dphi: Any) -> None:
    # λ_∞ = E[φ'(z)²]/Var φ(z), z ~ N(0, 1), at 30 digits.
    mp.mp.dps = 30

    def gauss(f: Any) -> Any:
        return mp.quad(lambda z: f(z) * mp.npdf(z), [-mp.inf, 0, mp.inf])

    want = gauss(lambda z: dphi(z) ** 2) / (gauss(lambda z: phi(z) ** 2) - gauss(phi) ** 2)
    assert gradient_growth(name) == pytest.approx(float(want), rel=1e-10)


def test_relu_rate_at_batch_64_matches_quoted_value() -> None:
    # theory.md quotes ≈ 1.49 for ReLU at B = 64 from the paper.
    assert round(gradient_growth("relu", 64), 2) == 1.49


@pytest.mark.parametrize("B", [4, 5, 10, 33, 500])
def test_linear_rate(B: int) -> None:
    # φ = id: T = (B−2)/(B−1), d − o = B/(B−1) ⇒ λ_B = (B−2)/(B−3).
    assert gradient_growth("linear", B) == pytest.approx((B - 2) / (B - 3), rel=1e-12)
    assert gradient_growth("linear") == 1.0


def test_rate_decreases_with_batch_size() -> None:
    for name in ("relu", "tanh"):
        rates = [gradient_growth(name, B) for B in (4, 8, 16, 64, 256, 4096)]
        assert all(a > b for a, b in itertools.pairwise(rates))
        assert rates[-1] > gradient_growth(name) > 1.0


@pytest.mark.parametrize("name", activations())
def test_finite_batch_tends_to_gaussian_limit(name: str) -> None:
    # Sphere law → N(0, 1) as B → ∞; the gap is O(1/B), so at B = 10⁶ it is ~1e-6.
    big, limit = batch_moments(name, 10**6), batch_moments(name)
    np.testing.assert_allclose(big, limit, rtol=0, atol=2e-5)


def test_sphere_moments_match_monte_carlo() -> None:
    # h = √B Pg/‖Pg‖, g ~ N(0, I): 200,000 seeded draws; |z| < 4 on each of 6 moments × 2 acts.
    B, n = 12, 200_000
    rng = np.random.default_rng(20190221)
    g = rng.standard_normal((n, B))
    g -= g.mean(axis=1, keepdims=True)
    h = math.sqrt(B) * g / np.linalg.norm(g, axis=1, keepdims=True)
    h1, h2 = h[:, 0], h[:, 1]
    for name in ("tanh", "hard_tanh", "elu"):
        act = activation(name)
        p1, p2, f1, f2 = act(h1), act(h2), act.deriv(h1), act.deriv(h2)
        samples = np.stack([p1 * p1, p1 * p2, f1 * f1, f1 * f2, (h1 * f1) ** 2, h1 * f1 * h2 * f2])
        z = (samples.mean(axis=1) - np.array(batch_moments(name, B))) / (
            samples.std(axis=1, ddof=1) / math.sqrt(n)
        )
        assert np.all(np.abs(z) < 4), (name, z)


@pytest.mark.parametrize("name", ["tanh", "gelu", "hard_tanh", "softsign"])
def test_sphere_quadrature_converged(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = np.array(batch_moments(name, 12))
    monkeypatch.setattr(batchnorm, "RADIAL_NODES", 2 * batchnorm.RADIAL_NODES)
    monkeypatch.setattr(batchnorm, "ANGLE_BASE", 2 * batchnorm.ANGLE_BASE)
    monkeypatch.setattr(batchnorm, "ANGLE_PER_RADIUS", 2 * batchnorm.ANGLE_PER_RADIUS)
    np.testing.assert_allclose(batch_moments(name, 12), base, rtol=0, atol=1e-10)


def test_forward_is_pinned_and_rate_is_the_profile_slope() -> None:
    B, depth = 32, 12
    net = MLP.square(256, depth, activation="tanh", init="glorot_normal", batchnorm=True)
    p = predict_batchnorm(net, B)
    assert np.all(p.log_q == 0.0)
    steps = -np.diff(p.log_grad_q)
    # Inside the net every layer multiplies q̃ by λ_B; the top step differs (δ^L is not φ'⊙…).
    np.testing.assert_allclose(steps[:-1], math.log(gradient_growth("tanh", B)), atol=1e-12)
    # Weight gradients (layers 2 … L−1) follow the same geometric law.
    np.testing.assert_allclose(np.diff(p.log_wgrad_q)[1:-1], -steps[1:-1], atol=1e-12)


def test_scale_and_bias_invariance() -> None:
    # BN divides out σ_w and removes the bias: ∂L/∂h does not depend on either, and
    # ∂L/∂W scales as 1/σ_w (the net is invariant under W → cW, so ∂L/∂(cW) = ∂L/∂W / c).
    kw = {"activation": "relu", "batchnorm": True}
    net_a = MLP.square(64, 6, init="he_normal", **kw)  # type: ignore[arg-type]
    net_b = MLP.square(64, 6, init="lecun_uniform", sigma_b2=0.3, **kw)  # type: ignore[arg-type]
    a, b = predict_batchnorm(net_a, 16), predict_batchnorm(net_b, 16)
    np.testing.assert_allclose(a.log_grad_q, b.log_grad_q, atol=1e-13)
    np.testing.assert_allclose(a.log_wgrad_q - b.log_wgrad_q, -math.log(2.0), atol=1e-13)


def test_depth_10000_stays_finite() -> None:
    net = MLP.square(64, 10_000, activation="relu", batchnorm=True)
    p = predict_batchnorm(net)
    assert p.log_grad_q[0] == pytest.approx(9_999 * math.log(math.pi / (math.pi - 1)), rel=1e-12)
    with pytest.raises(GradmathError, match="grad_q"):
        _ = p.profile.grad_q


@pytest.mark.parametrize("B", [2, 3])
def test_small_batches_have_no_finite_gradient_moment(B: int) -> None:
    with pytest.raises(GradmathError, match="`batch`"):
        gradient_growth("relu", B)
    with pytest.raises(GradmathError, match="batch"):
        predict(MLP.square(8, 3, batchnorm=True), batch=B)


def test_bad_input_raises() -> None:
    with pytest.raises(GradmathError, match="input_q"):
        predict(MLP.square(8, 3, batchnorm=True), input_q=0.0)
    with pytest.raises(GradmathError, match="batch"):
        predict(MLP.square(8, 3, batchnorm=True), batch=0)


def test_batch_is_a_condition_only_with_batch_statistics() -> None:
    assert predict(MLP.square(8, 3), batch=8).conditions.batch is None
    assert predict(MLP.square(8, 3, batchnorm=True), batch=8).conditions.batch == 8


# Theory vs simulation (numeric.simulate backpropagates exactly through μ and σ). Width 128 and
# batch 8, so width/B = 16 ("width well above the batch size", theory.md). Finite-width bias at
# these sizes, measured with 640 networks (seed 7): depth 5, ≤ 1.5 % on q̃ and ≤ 2.1 % on
# E[∂W²]; depth 10, ≤ 3.1 % on q̃ (at the bottom, where 48 networks resolve ~6 %). 32
# networks resolve 1–5 %, so the bias stays within about one standard error.
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_theory_matches_simulation(act: str) -> None:
    from gradmath.numeric import simulate
    from gradmath.validate import compare

    net = MLP.square(128, 5, activation=act, batchnorm=True)
    sim = simulate(net, n_networks=32, batch=8, seed=2019)
    # Forward: pinned at 1 exactly (up to rounding) in every network, not just on average.
    np.testing.assert_allclose(sim.select("batchnorm").log_q, 0.0, atol=1e-12)
    # Dense outputs, gradients and weight gradients: |z| < 4 on each comparison. (The pinned
    # log q has a rounding-level SE, so its z is meaningless; it is checked above instead.)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_compare_refuses_a_different_batch() -> None:
    # The example: theory at B → ∞ against a simulation at batch 8 is refused with the
    # difference named, and agrees when predicted at the simulation's batch.
    from gradmath.numeric import simulate
    from gradmath.validate import compare

    net = MLP.square(256, 6, activation="relu", init="he_normal", batchnorm=True)
    sim = simulate(net, n_networks=32, batch=8, seed=3)
    with pytest.raises(GradmathError, match=r"batch: None \(the large-batch limit\) vs 8"):
        compare(predict(net), sim)
    compare(predict(net, batch=8), sim).assert_agrees()


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_simulated_growth_rate(act: str) -> None:
    # The per-layer growth factor from a simulated depth-10 profile: inside the net (layers
    # 1 … L−1) q̃ grows by λ_B per layer, so the slope is (log q̃^1 − log q̃^{L−1})/(L − 2).
    # Its SE is bounded by (SE_1 + SE_{L−1})/(L − 2) whatever the correlation of the two layers
    # (they come from the same networks). The slope is far from the large-batch rate, so the
    # test can tell the finite-B prediction from the B → ∞ one.
    from gradmath.numeric import simulate

    B, depth = 8, 10
    net = MLP.square(128, depth, activation=act, batchnorm=True)
    sim = simulate(net, n_networks=48, batch=B, seed=1902).select("batchnorm")
    top = depth - 2
    assert sim.log_grad_q_se is not None
    slope = (sim.log_grad_q[0] - sim.log_grad_q[top]) / top
    se = (sim.log_grad_q_se[0] + sim.log_grad_q_se[top]) / top
    assert abs(slope - math.log(gradient_growth(act, B))) < 4 * se
    assert slope - math.log(gradient_growth(act)) > 4 * se
