"""The non-finite finder names the module where inf/NaN first appears, forward or backward."""

from __future__ import annotations

import torch
from torch import nn

from gradmath.torch import NonFiniteWatch, find_nonfinite

from .models import mlp


class Overflow(nn.Module):
    """Planted overflow: e^(|x| + 100) > float32's largest value (3.4e38)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x.abs() + 100.0)


class SqrtRelu(nn.Module):
    """Finite forward, infinite backward: d√u/du = 1/(2√u) is inf at u = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.relu(x))


def test_planted_overflow_is_found_in_its_module() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(mlp(nn.Tanh, 3, 16), nn.Sequential(nn.Linear(16, 16), Overflow()),
                          nn.Linear(16, 2))  # fmt: skip
    found = find_nonfinite(model, torch.randn(4, 16))
    assert found is not None
    assert (found.name, found.phase, found.step) == ("1.1.exp", "forward", 0)
    assert found.n_inf == 64 and found.n_nan == 0
    assert "'1.1.exp'" in str(found)


def test_backward_blow_up_is_found_at_the_right_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), SqrtRelu(), nn.Linear(8, 1))
    found = find_nonfinite(model, torch.randn(16, 8))
    assert found is not None
    # the gradient of the loss w.r.t. relu's output is the first non-finite one
    assert (found.name, found.phase) == ("1.relu", "backward")
    assert found.n_inf > 0


def test_finite_model_gives_none_and_keeps_grads_and_hooks_clean() -> None:
    model = mlp(nn.ReLU, 3, 8)
    model[0].weight.grad = torch.zeros(8, 8)
    grad = model[0].weight.grad
    assert find_nonfinite(model, torch.randn(2, 8)) is None
    assert model[0].weight.grad is grad and torch.equal(grad, torch.zeros(8, 8))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_watch_over_a_training_loop_reports_the_step_and_nan_parameters() -> None:
    torch.manual_seed(0)
    model = mlp(nn.ReLU, 3, 8)
    x = torch.randn(4, 8)
    with NonFiniteWatch(model) as watch:
        for step in range(4):
            model(x).sum().backward()
            if step == 1:
                with torch.no_grad():
                    model[2].weight[0, 0] = float("nan")
    assert watch.first is not None
    assert (watch.first.name, watch.first.phase, watch.first.step) == ("2.weight", "parameters", 2)


def test_nonfinite_input_is_reported_as_input() -> None:
    found = find_nonfinite(mlp(nn.ReLU, 2, 4), torch.tensor([[1.0, float("nan"), 0.0, 0.0]]))
    assert found is not None and found.phase == "input" and found.n_nan == 1
