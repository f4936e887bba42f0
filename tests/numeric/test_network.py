"""Backprop of gradmath.numeric.network against independent references.

The reference that counts is central finite differences in float64 (independent of the
backward code: it only calls the forward pass). PyTorch autograd is a second reference when
torch is installed; without it that test is skipped, which proves nothing by itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradmath import MLP, GradmathError
from gradmath.numeric import backward, forward, sample_params
from gradmath.numeric.network import Gradients

NETS = {
    "plain": dict(widths=(3, 5, 4, 2), activation=["tanh", "gelu", "softplus"], sigma_b2=0.1),
    "residual": dict(widths=(3, 4, 4, 4), activation="silu", sigma_b2=0.1, residual=0.7),
    "batchnorm": dict(widths=(3, 5, 4, 3), activation=["elu", "tanh", "sigmoid"], batchnorm=True),
}


def _setup(kind: str, seed: int = 0) -> tuple[MLP, list, np.ndarray, np.ndarray]:
    spec = dict(NETS[kind])
    mlp = MLP(spec.pop("widths"), init="glorot_normal", **spec)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    params = sample_params(mlp, rng)
    x = rng.standard_normal((6, mlp.widths[0]))
    g = rng.standard_normal((6, mlp.widths[-1]))
    return mlp, params, x, g


def _loss(mlp: MLP, params: list, x: np.ndarray, g: np.ndarray) -> float:
    # L = Σ g ⊙ h^L, so ∂L/∂h^L = g (any loss reduces to this through its output gradient).
    return float(np.sum(forward(mlp, params, x).output * g))


def _central(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = f()
        a[idx] = old - eps
        down = f()
        a[idx] = old
        out[idx] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("kind", sorted(NETS))
def test_backward_matches_central_differences(kind: str) -> None:
    mlp, params, x, g = _setup(kind)
    grads = backward(mlp, params, forward(mlp, params, x), g)
    assert isinstance(grads, Gradients) and len(grads) == mlp.depth

    def loss() -> float:
        return _loss(mlp, params, x, g)

    for i, (w, b) in enumerate(params):
        # Truncation error of a central difference is O(eps²·f''') ≈ 1e-12, rounding
        # O(1e-16·|L|/eps) ≈ 1e-9: 1e-7 absolute is far above both and far below any real bug.
        np.testing.assert_allclose(grads.weights[i], _central(loss, w), rtol=0, atol=1e-7)
        np.testing.assert_allclose(grads.biases[i], _central(loss, b), rtol=0, atol=1e-7)
    # ∂L/∂x^0 = δa^1 W^1 checks δ^1 too (δa^1 = δ^1 when layer 1 is not batch-normalised).
    if not mlp.batchnorm:
        np.testing.assert_allclose(grads.delta[0] @ params[0][0], _central(loss, x), atol=1e-7)


def test_batchnorm_gradient_sums_to_zero_over_the_batch() -> None:
    # BN output is invariant to shifting a unit's pre-activations by a constant, so the
    # bias gradient of every BN layer is exactly 0 and ∂L/∂a is orthogonal to 1 and to h.
    mlp, params, x, g = _setup("batchnorm")
    grads = backward(mlp, params, forward(mlp, params, x), g)
    for db in grads.biases:
        np.testing.assert_allclose(db, 0.0, atol=1e-12)


def test_forward_matches_definitions() -> None:
    mlp, params, x, _ = _setup("residual")
    cache = forward(mlp, params, x)
    (w1, b1), (w2, b2), _ = params
    h1 = x @ w1.T + b1
    act = mlp.activation[0]
    np.testing.assert_allclose(cache.h[0], h1, rtol=1e-14)
    np.testing.assert_allclose(cache.h[1], h1 + 0.7 * (act(h1) @ w2.T + b2), rtol=1e-14)
    mlp, params, x, _ = _setup("batchnorm")
    h = forward(mlp, params, x).h
    for hl in h:  # normalised per unit: mean 0, biased variance 1
        np.testing.assert_allclose(hl.mean(axis=0), 0.0, atol=1e-13)
        np.testing.assert_allclose((hl * hl).mean(axis=0), 1.0, rtol=1e-13)


def test_stacked_networks_match_one_by_one() -> None:
    mlp, _, x, g = _setup("batchnorm")
    rng = np.random.default_rng(5)
    nets = [sample_params(mlp, rng) for _ in range(3)]
    stacked = [
        (np.stack([n[i][0] for n in nets]), np.stack([n[i][1] for n in nets])) for i in range(3)
    ]
    xs, gs = np.stack([x] * 3), np.stack([g] * 3)
    grads = backward(mlp, stacked, forward(mlp, stacked, xs), gs)
    for k, p in enumerate(nets):
        one = backward(mlp, p, forward(mlp, p, x), g)
        for a, b in zip(one.weights, grads.weights, strict=True):
            np.testing.assert_allclose(b[k], a, rtol=1e-12, atol=1e-14)


def test_sample_params_uses_the_initializer_and_bias_variance() -> None:
    mlp = MLP((400, 300, 200), init="he_uniform", sigma_b2=0.5)
    (w1, b1), (w2, _) = sample_params(mlp, np.random.default_rng(0))
    assert w1.shape == (300, 400) and w2.shape == (200, 300)
    a = np.sqrt(3 * 2.0 / 400)  # He uniform: U(−a, a), Var = 2/fan_in
    assert np.abs(w1).max() <= a
    # Var of 120,000 uniform draws: relative SE √(Var(w²))/(√n·Var) = √(4/5)/√n ≈ 0.0026.
    assert abs(w1.var() / (2 / 400) - 1) < 4 * 0.0026
    # Var of 300 normals: relative SE √(2/300) ≈ 0.082.
    assert abs(b1.var() / 0.5 - 1) < 4 * 0.082
    assert sample_params(mlp, np.random.default_rng(0))[0][0].tobytes() == w1.tobytes()


def test_bad_input() -> None:
    mlp, params, x, g = _setup("plain")
    with pytest.raises(GradmathError, match="x"):
        forward(mlp, params, x[:, :2])
    with pytest.raises(GradmathError, match="params"):
        forward(mlp, params[:2], x)
    with pytest.raises(GradmathError, match="grad_out"):
        backward(mlp, params, forward(mlp, params, x), g[:, :1])
    with pytest.raises(GradmathError, match="rng"):
        sample_params(mlp, 0)  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="residual"):
        sample_params(MLP((3, 4, 4), residual=1.0, batchnorm=True), np.random.default_rng(0))
    bn = MLP((3, 4), batchnorm=True)
    with pytest.raises(GradmathError, match="zero variance"):
        forward(bn, sample_params(bn, np.random.default_rng(0)), np.ones((5, 3)))


def test_against_torch_autograd() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional reference)")
    # Tensors made from the float64 NumPy arrays are float64 already; torch's global default
    # dtype is left alone (setting it here leaked into every later torch test).
    for kind in sorted(NETS):
        mlp, params, x, g = _setup(kind)
        grads = backward(mlp, params, forward(mlp, params, x), g)
        ws = [torch.tensor(w, requires_grad=True) for w, _ in params]
        bs = [torch.tensor(b, requires_grad=True) for _, b in params]
        acts = {
            "tanh": torch.tanh,
            "gelu": torch.nn.functional.gelu,
            "softplus": torch.nn.functional.softplus,
            "silu": torch.nn.functional.silu,
            "elu": torch.nn.functional.elu,
            "sigmoid": torch.sigmoid,
        }
        h = None
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            xin = torch.tensor(x) if i == 0 else acts[mlp.activation[i - 1].name](h)
            a = xin @ w.T + b
            if mlp.batchnorm:
                a = (a - a.mean(0)) / a.var(0, unbiased=False).sqrt()
            elif mlp.residual is not None and i > 0:
                a = h + mlp.residual * a
            h = a
        (h * torch.tensor(g)).sum().backward()
        for i, w in enumerate(ws):
            np.testing.assert_allclose(grads.weights[i], w.grad.numpy(), rtol=1e-10, atol=1e-12)
