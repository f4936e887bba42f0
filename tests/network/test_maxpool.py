"""MaxPool's and positional BatchNorm's simulation rules against PyTorch (exact), and
MaxPool's draws against a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath.network import BatchNorm, MaxPool
from gradmath.network.base import RowCounter, Scaled
from gradmath.network.draws import gaussian, moments


class _Ctx:
    K = 1
    dtype = np.dtype(np.float64)
    batch_statistics = True

    def __init__(self) -> None:
        self.sites = RowCounter()
        self.forward_log = np.full((3, 1, 4), np.nan)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_maxpool_sim_rule_is_torch(kernel: int, stride: int, padding: int) -> None:
    torch = pytest.importorskip("torch")  # the independent reference
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 4, 7, 6))
    layer = MaxPool(kernel, stride, padding, act="relu")
    y, tape = layer.sim_forward(Scaled(x.copy(), np.zeros(1)), _Ctx())
    g = rng.standard_normal(y.u.shape)
    dx = layer.sim_backward(tape, Scaled(g, np.zeros(1)), _Ctx(), True)
    t = torch.tensor(x[0], requires_grad=True)
    ty = torch.nn.functional.max_pool2d(torch.relu(t), kernel, stride, padding)
    ty.backward(torch.tensor(g[0]))
    np.testing.assert_allclose(y.u[0], ty.detach().numpy(), rtol=0, atol=0)
    assert t.grad is not None
    np.testing.assert_allclose(dx.u[0], t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_batchnorm_on_positions_sim_rule_is_torch() -> None:
    torch = pytest.importorskip("torch")  # the independent reference
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 3, 4, 4))
    bn = BatchNorm()
    y, tape = bn.sim_forward(Scaled(x.copy(), np.zeros(1)), _Ctx())
    g = rng.standard_normal(x.shape)
    dx = bn.sim_backward(tape, Scaled(g, np.zeros(1)), _Ctx(), True)
    t = torch.tensor(x[0], requires_grad=True)
    ty = torch.nn.functional.batch_norm(t, None, None, training=True, eps=1e-300)
    ty.backward(torch.tensor(g[0]))
    np.testing.assert_allclose(y.u[0], ty.detach().numpy(), atol=1e-12)
    assert t.grad is not None
    np.testing.assert_allclose(dx.u[0], t.grad.numpy(), atol=1e-10)


def test_maxpool_draws_against_the_maximum_of_two_gaussians() -> None:
    # a 1-d window of two independent N(0, 1): E[max²] = 1 (max² is one of the two squares'
    # order statistics, and E[max² + min²] = 2 with max² and min² equal in law by symmetry)
    d = gaussian(np.eye(2), None, seed=0)
    m = np.maximum(d[..., 0], d[..., 1])[..., None]
    log_mean, _, _ = moments(m)
    se = np.std(m**2) / math.sqrt(m.size)
    assert abs(math.exp(log_mean) - 1.0) < 4 * se
