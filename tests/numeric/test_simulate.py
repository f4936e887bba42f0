"""numeric.simulate: exact finite-width laws, log-space depth, determinism, memory plan, errors.

Every statistical assertion is |z| < 4 with z from the reported (or exactly known) standard
error; seeds are fixed, so the outcomes are deterministic.
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest
from scipy import special

from gradmath import MLP, GradmathError, initializer
from gradmath.meanfield import predict
from gradmath.numeric import simulate

simulation = sys.modules["gradmath.numeric.simulation"]


def _z(p, name: str, exact: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    return (getattr(p, f"log_{name}") - exact) / getattr(p, f"log_{name}_se")


def test_relu_he_zero_bias_is_exactly_constant_at_width_8() -> None:
    # theory.md: E[q^{l+1} | x^l] = σ_w² ‖x^l‖²/n and E[relu(h)²] = E[h²]/2 for symmetric h,
    # so E[h²] = n_0 v input_q = 2·input_q at every layer, whatever the width.
    p = simulate(
        MLP.square(8, 10, activation="relu", init="he_normal"),
        n_networks=400,
        batch=8,
        seed=1,
        input_q=1.5,
    )
    assert np.all(np.abs(_z(p, "q", np.full(10, math.log(3.0)))) < 4)


@pytest.mark.parametrize("sigma_b2", [0.0, 0.3])
def test_linear_net_moments_are_exact_at_width_8(sigma_b2: float) -> None:
    # Linear nets at any width: q^{l+1} = σ_w² q^l + σ_b² and q̃^l = σ_w² q̃^{l+1} exactly (zero-mean
    # weights independent of everything before), E[(∂ℓ/∂W)²] = q̃^l E[(x^{l−1})²] (independent).
    L, s2 = 8, 1.7
    mlp = MLP.square(
        8, L, activation="linear", init=initializer("normal", sigma_w2=s2), sigma_b2=sigma_b2
    )
    p = simulate(mlp, n_networks=300, batch=8, seed=2, input_q=0.5, output_grad_q=2.0)
    q = [s2 * 0.5 + sigma_b2]
    for _ in range(L - 1):
        q.append(s2 * q[-1] + sigma_b2)
    gq = 2.0 * s2 ** np.arange(L - 1, -1, -1.0)
    x2 = np.array([0.5, *q[:-1]])
    for name, exact in (("q", q), ("grad_q", gq), ("wgrad_q", gq * x2)):
        assert np.all(np.abs(_z(p, name, np.log(exact))) < 4), name


def test_depth_2000_linear_follows_the_chi_square_law_in_log_space() -> None:
    # Batch of one, Gaussian weights, σ_w² = 4: ‖W x‖² = v‖x‖² χ²_n exactly and independently
    # per layer, so log Q^l = log(σ_w²)·l + log(input_q) + (l+1)·log(χ²_n/n)-terms: its mean is
    # known (E log χ²_n = ψ(n/2) + log 2) and its variance is (l+1)ψ'(n/2). Layer 2000 has
    # log q ≈ 2000·log 4 ≈ 2773, far outside float64: only the log-space rescaling gets there.
    n, L, s2, N = 16, 2000, 4.0, 12
    mlp = MLP.square(n, L, activation="linear", init=initializer("normal", sigma_w2=s2))
    p = simulate(mlp, n_networks=N, batch=1, seed=3)
    step = special.digamma(n / 2) + math.log(2 / n)
    var = special.polygamma(1, n / 2)
    ell = np.arange(1, L + 1)
    mean_q = ell * math.log(s2) + (ell + 1) * step
    mean_g = (L - ell) * math.log(s2) + (L - ell + 1) * step
    assert p.mean_log is not None
    for k, mean, count in ((0, mean_q, ell + 1), (1, mean_g, L - ell + 1)):
        got = p.mean_log[k]
        z = (got - mean) / np.sqrt(count * var / N)
        assert np.all(np.abs(z) < 4), (k, np.abs(z).max())
    assert p.log_q[-1] > 2000 and p.log_grad_q[0] > 2000  # e^709 is the float64 limit


def test_vanishing_sigmoid_gradient_below_float_range_stays_finite() -> None:
    # σ'(z) <= 1/4: with Glorot weights the squared gradient shrinks ~e^{-3} per layer, so at
    # depth 400 it is ~e^{-1200}, below the smallest float64; the backward pass is rescaled.
    mlp = MLP.square(16, 400, activation="sigmoid", init="glorot_normal")
    p = simulate(mlp, n_networks=3, batch=4, seed=4)
    assert np.all(np.isfinite(p.log_grad_q)) and p.log_grad_q[0] < -745
    assert np.all(np.diff(p.log_grad_q) > 0)


def test_non_homogeneous_forward_overflow_raises() -> None:
    # softplus ≈ relu for large inputs, so σ_w² = 8 grows q by ~4 per layer; the real network
    # leaves float64 after ~500 layers, and softplus cannot be rescaled exactly. (At width 8
    # whole networks collapse now and then, as softplus(h) underflows to 0 for h << 0.)
    mlp = MLP.square(32, 700, activation="softplus", init=initializer("normal", sigma_w2=8.0))
    with pytest.raises(GradmathError, match="softplus"):
        simulate(mlp, n_networks=2, batch=2, seed=0)


def test_mse_loss_output_gradient() -> None:
    # δ^L = h^L − y with y ~ N(0, output_grad_q) independent: E[(δ^L)²] = q^L + output_grad_q.
    mlp = MLP.square(16, 3, activation="tanh", init="glorot_normal")
    p = simulate(mlp, n_networks=200, batch=16, seed=5, loss="mse", output_grad_q=0.5)
    exact = math.log(math.exp(p.log_q[-1]) + 0.5)
    # Both are estimates; the combined SE bounds the difference.
    se = math.hypot(p.log_grad_q_se[-1], p.log_q_se[-1])
    assert abs(p.log_grad_q[-1] - exact) < 4 * se


def test_batchnorm_forward_is_pinned() -> None:
    mlp = MLP.square(16, 6, activation="relu", init="he_normal", batchnorm=True)
    p = simulate(mlp, n_networks=4, batch=8, seed=6)
    assert p.conditions.batch == 8 and p.conditions.n_networks == 4
    np.testing.assert_allclose(p.select("batchnorm").log_q, 0.0, atol=1e-12)
    with pytest.raises(GradmathError, match="batch"):
        simulate(mlp, n_networks=4, batch=1, seed=6)


def _arrays(p):  # type: ignore[no-untyped-def]
    return np.concatenate([p.log_q, p.log_grad_q, p.log_wgrad_q, p.log_grad_q_se])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"residual": 0.5, "sigma_b2": 0.1}, {"batchnorm": True}],
    ids=["plain", "residual", "batchnorm"],
)
def test_results_do_not_depend_on_grouping_checkpointing_or_executor(kwargs: dict) -> None:
    mlp = MLP.square(12, 9, activation="tanh", init="he_normal", **kwargs)
    ref = _arrays(simulate(mlp, n_networks=5, batch=6, seed=7))
    tiny = simulate(mlp, n_networks=5, batch=6, seed=7, memory_budget=20_000)
    steps = len(mlp.network.blocks())
    # the checkpointed path really ran
    assert simulation.memory_plan(mlp, batch=6, n_networks=5, memory_budget=20_000)[1] < steps
    np.testing.assert_array_equal(_arrays(tiny), ref)
    old = simulation.MAX_STACK
    simulation.MAX_STACK = 2
    try:
        np.testing.assert_array_equal(_arrays(simulate(mlp, n_networks=5, batch=6, seed=7)), ref)
    finally:
        simulation.MAX_STACK = old
    assert not np.array_equal(_arrays(simulate(mlp, n_networks=5, batch=6, seed=8)), ref)


def test_process_pool_executor_gives_the_same_profile() -> None:
    mlp = MLP.square(12, 4, activation="gelu", init="he_normal")
    ref = _arrays(simulate(mlp, n_networks=20, batch=4, seed=9))
    with ProcessPoolExecutor(max_workers=2) as ex:
        got = _arrays(simulate(mlp, n_networks=20, batch=4, seed=9, executor=ex))
    np.testing.assert_array_equal(got, ref)


def test_float32_agrees_with_the_exact_law() -> None:
    p = simulate(
        MLP.square(16, 6, activation="relu", init="he_normal"),
        n_networks=100,
        batch=8,
        seed=10,
        dtype=np.float32,
    )
    assert np.all(np.abs(_z(p, "q", np.full(6, math.log(2.0)))) < 4)


def test_memory_plan_checkpoints_deep_nets() -> None:
    mlp = MLP.square(256, 10_000)
    K, C = simulation.memory_plan(mlp, batch=64)
    assert 30 <= C <= 200 and K >= 1
    per_net_layer = (256 * 256 + 66 * 256 + 64) * 8
    assert K * (C * per_net_layer + math.ceil(10_000 / C) * 64 * 256 * 8) < 512 * 2**20
    assert simulation.memory_plan(MLP.square(64, 20), batch=16) == (16, 20)


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    simulate(MLP.square(8, 3), n_networks=2, batch=2, seed=0, progress=True)
    assert "simulate" in capsys.readouterr().err
    simulate(MLP.square(8, 3), n_networks=2, batch=2, seed=0)  # not a terminal: silent
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("budget", [100_000, 512 * 2**20])
def test_progress_bar_total_counts_every_layer_step(
    budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With segment length C not dividing L the recomputed layers are C·((L−1) // C), not L − C.
    bars: list[Any] = []

    class Bar:
        def __init__(self, total: int) -> None:
            self.total, self.n = total, 0

        def update(self, k: int) -> None:
            self.n += k

        def close(self) -> None:
            pass

    def fake(progress: bool | None, total: int, remote: bool) -> Bar:
        bars.append(Bar(total))
        return bars[-1]

    monkeypatch.setattr(simulation, "_progress_bar", fake)
    mlp = MLP.square(12, 9, activation="tanh", init="he_normal")
    simulate(mlp, n_networks=3, batch=64, seed=7, memory_budget=budget)
    (bar,) = bars
    assert bar.n == bar.total
    if budget == 100_000:
        C = simulation.memory_plan(mlp, batch=64, n_networks=3, memory_budget=budget)[1]
        assert len(mlp.network.blocks()) % C != 0  # the case the old formula got wrong


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_networks": 1}, "n_networks"),
        ({"batch": 0}, "batch"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"dtype": np.int32}, "dtype"),
        ({"input_q": 0.0}, "input_q"),
        ({"output_grad_q": -1.0}, "output_grad_q"),
        ({"loss": "xent"}, "loss"),
        ({"progress": "yes"}, "progress"),
        ({"executor": object()}, "executor"),
        ({"memory_budget": 0}, "memory_budget"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    args = {"n_networks": 2, "batch": 2, "seed": 0, **kwargs}
    with pytest.raises(GradmathError, match=match):
        simulate(MLP.square(4, 2), **args)


def test_exact_zeros_are_minus_infinity() -> None:
    # All-zero weights (σ_w² = 0) and no bias: every h^l is exactly 0 in every network, an
    # exact result (log −∞, SE 0) that theory states too, not a failed estimate.
    mlp = MLP.square(4, 3, activation="relu", init=initializer("normal", sigma_w2=0.0))
    p = simulate(mlp, n_networks=2, batch=2, seed=0)
    assert np.all(np.isneginf(p.log_q)) and np.all(p.log_q_se == 0)
    assert np.all(np.isneginf(predict(mlp).log_q))
