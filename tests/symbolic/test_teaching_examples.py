"""The worked examples added for the notes, each against an independent reference: the ReLU
chain against torch autograd, loss scaling against NumPy's float16, the recurrent bound against
NumPy's singular values and matrix powers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import gradmath
import gradmath.symbolic as sym


def test_relu_chain_matches_autograd() -> None:
    torch = pytest.importorskip("torch")
    d = sym.relu_chain_example()
    w = torch.full((10,), 2.0, dtype=torch.float64, requires_grad=True)

    def loss_of(weights: object) -> object:
        a = torch.tensor(1.0, dtype=torch.float64)
        for k in range(10):
            a = torch.relu(weights[k] * a)  # type: ignore[index]
        return (a - 1.0) ** 2 / 2

    loss = loss_of(w)
    loss.backward()  # type: ignore[attr-defined]
    assert float(w.grad[0]) == 1023 * 2**9 == d.result  # type: ignore[index]
    assert float(loss.detach()) == float(d.data["loss"]) == 1023**2 / 2
    # One SGD step with η = 0.001 kills the chain: autograd sees zero gradients everywhere.
    w2 = w.detach().clone()
    w2[0] -= 0.001 * w.grad[0]  # type: ignore[index]
    w2.requires_grad_(True)
    loss2 = loss_of(w2)
    loss2.backward()  # type: ignore[attr-defined]
    assert math.isclose(float(w2.detach()[0]), float(d.data["new_weight"]), rel_tol=1e-15)
    assert float(w2.detach()[0]) == pytest.approx(2 - 523.776)
    assert float(loss2.detach()) == 0.5 == float(d.data["new_loss"])
    assert all(float(g) == 0 for g in w2.grad) and all(g == 0 for g in d.data["new_gradients"])


def test_relu_chain_small_step_keeps_the_chain_alive() -> None:
    d = sym.relu_chain_example(depth=3, weight=1, learning_rate="0.01", target=0)
    assert d.result == 1 and d.data["new_weight"] == sympy.Rational(99, 100)
    assert len(d.steps) == 5  # no "dead" steps when the step does not kill it
    with pytest.raises(gradmath.GradmathError, match="depth"):
        sym.relu_chain_example(depth=1)


def test_loss_scaling_against_numpy() -> None:
    d = sym.loss_scaling_example()
    fi = np.finfo(np.float16)
    assert d.data["lost"] and np.float16(2e-8) == 0
    assert float(d.data["tiny"]) == 2.0**-14 and float(d.data["smallest_subnormal"]) == 2.0**-24
    assert float(d.data["max"]) == 65504.0 == float(fi.max)
    assert float(d.data["scaled"]) == float(np.float16(65536 * 2e-8))
    rel = abs(float(d.data["recovered"]) - 2e-8) / 2e-8
    assert rel == pytest.approx(float(d.data["relative_error"]), rel=1e-9)
    assert rel <= 2.0**-11  # half an ulp of an 11-bit significand
    assert not sym.loss_scaling_example("1e-4", 1).data["lost"]
    with pytest.raises(gradmath.GradmathError, match="scale"):
        sym.loss_scaling_example("1", 2**20)
    with pytest.raises(gradmath.GradmathError, match="dtype"):
        sym.loss_scaling_example(dtype=np.float64)


@pytest.mark.parametrize(
    ("weights", "act", "regime"),
    [
        ([["0.54", "-0.72"], ["0.72", "0.54"]], "tanh", "vanishing"),
        ([["0.66", "-0.88"], ["0.88", "0.66"]], "tanh", "may explode"),
        ([["0.5", "1"], ["0", "0.5"]], "tanh", "may explode"),
        ([["0.5", "1"], ["0", "0.5"]], "sigmoid", "vanishing"),
        ([["4", "0"], ["0", "1"]], "sigmoid", "critical"),
    ],
)
def test_rnn_bound_against_numpy(weights: list[list[str]], act: str, regime: str) -> None:
    d = sym.rnn_gradient_bound(weights, act=act, steps=30)
    W = np.array(weights, dtype=float)
    s1 = np.linalg.svd(W, compute_uv=False)[0]
    gamma = {"tanh": 1.0, "sigmoid": 0.25}[act]
    assert float(d.data["lambda1"]) == pytest.approx(s1, rel=1e-14)
    assert float(d.data["spectral_radius"]) == pytest.approx(max(abs(np.linalg.eigvals(W))))
    assert float(d.result) == pytest.approx((gamma * s1) ** 30, rel=1e-12)
    assert d.data["linear_norm"] == pytest.approx(
        np.linalg.norm(np.linalg.matrix_power(W, 30), 2), rel=1e-12
    )
    assert d.data["linear_norm"] <= s1**30 * (1 + 1e-12)  # ‖W^T‖ ≤ ‖W‖^T
    assert d.data["regime"] == regime


def test_rnn_bound_bad_input() -> None:
    with pytest.raises(gradmath.GradmathError, match="square"):
        sym.rnn_gradient_bound([[1, 2]])
    with pytest.raises(gradmath.GradmathError, match="steps"):
        sym.rnn_gradient_bound([[1]], steps=0)
