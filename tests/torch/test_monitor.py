"""The training monitor on real runs: stalled lower layers and weights that become NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import gradmath
from gradmath import GradmathError
from gradmath.torch import TrainingMonitor

from .models import glorot, linear_init, mlp


def _task(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return x, y


def _train(
    model: nn.Module, lr: float, steps: int, *, regression: bool = False
) -> gradmath.torch.TrainingHistory:
    x, y = _task()
    if regression:  # random targets of the output's width, mean squared error
        y = torch.randn(x.shape[0], 32, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with TrainingMonitor(model, opt) as monitor:
        for _ in range(steps):
            opt.zero_grad()
            out = model(x)
            loss = (out - y).square().mean() if regression else nn.functional.cross_entropy(out, y)
            loss.backward()
            monitor.log_loss(loss)
            opt.step()
    return monitor.history()


def test_deep_sigmoid_lower_layers_do_not_change() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(mlp(nn.Sigmoid, 10, 32, n_in=16), nn.Sigmoid(), nn.Linear(32, 3))
    linear_init(glorot)(model)
    h = _train(model, lr=0.5, steps=40)
    assert h.steps == 40 and h.divergence is None and np.all(np.isfinite(h.loss))
    d = gradmath.diagnose(h)
    assert d.verdict == "vanishing"
    assert {1, 2, 3, 4} <= set(d.stalled_layers)  # lower layers < 1% of the top's change
    assert 11 not in d.stalled_layers
    # update ratios: the top layer moves orders of magnitude more per step than the bottom
    assert np.median(h.update_ratio[:, -1]) > 100 * np.median(h.update_ratio[:, 0])


def test_weights_becoming_nan_are_detected() -> None:
    torch.manual_seed(0)
    model = mlp(nn.ReLU, 4, 32, n_in=16)
    h = _train(model, lr=100.0, steps=20, regression=True)  # diverges within a few steps
    assert h.divergence is not None and h.steps == h.divergence.step
    assert h.steps_after_divergence == 20 - h.steps - 1  # recorded, diverging, after
    assert all(np.all(np.isfinite(row)) for row in h.grad_norms)
    d = gradmath.diagnose(h)
    assert d.verdict == "exploding" and d.nonfinite
    assert str(h.divergence) in str(d) and f"step {h.steps}" in str(d)


def test_monitor_arguments() -> None:
    model = mlp(nn.ReLU, 2, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(GradmathError, match="optimizer"):
        TrainingMonitor(model, "sgd")  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="every"):
        TrainingMonitor(model, opt, every=0)
    with pytest.raises(GradmathError, match="'1'"):
        TrainingMonitor(model, opt, layers=["1"])
    monitor = TrainingMonitor(model, opt, layers=["2"])
    assert monitor.names == ("2",)
    monitor.close()
    assert not opt._optimizer_step_pre_hooks
