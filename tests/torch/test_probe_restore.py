"""The probe leaves a model as it found it in the corners of issue 15 item 2: errors raised by
the model or the init function, callers inside torch.no_grad / torch.inference_mode, modules the
probe hooks for good unless told otherwise, float64 runs of float32 models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradmath.torch import measure, translate


class Attention(nn.Module):
    """Self-attention (measured only: the probe hangs a full backward hook on it) + a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.out = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.out(self.attn(h, h, h)[0] + h)


class FailsOnSecondCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise ValueError("second call")
        return self.lin(x)


def _snapshot(model: nn.Module) -> list[tuple[torch.Tensor, bool, object]]:
    return [(p.detach().clone(), p.requires_grad, p.grad) for p in model.parameters()]


def _unchanged(model: nn.Module, before: list[tuple[torch.Tensor, bool, object]]) -> bool:
    return all(
        torch.equal(a, p.detach()) and a.dtype == p.dtype and r == p.requires_grad and g is p.grad
        for (a, r, g), p in zip(before, model.parameters(), strict=True)
    )


def _hook_free(model: nn.Module) -> bool:
    return all(
        not (m._forward_hooks or m._forward_pre_hooks)
        and not (m._backward_hooks or m._backward_pre_hooks)
        and m._is_full_backward_hook is None
        for m in model.modules()
    ) and all(not p._backward_hooks for p in model.parameters())


def test_hooked_modules_are_unmarked_and_accept_old_style_hooks_afterwards() -> None:
    torch.manual_seed(0)
    model = Attention()
    before = _snapshot(model)
    m = measure(model, torch.randn(4, 5, 16), n_inits=2)
    assert [s.kind for s in m.sites] == ["dense", "measured", "residual", "dense"]
    assert np.isfinite(m.log_grad_in[1])  # the attention's input gradient was recorded
    assert _unchanged(model, before) and _hook_free(model)
    # a module once given a full backward hook refuses register_backward_hook: not this one
    handle = model.attn.register_backward_hook(lambda *a: None)
    handle.remove()


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_callers_without_autograd_get_the_same_measurement(mode: str) -> None:
    torch.manual_seed(0)
    model = Attention()
    before = _snapshot(model)
    ref = measure(model, torch.ones(4, 5, 16), n_inits=3, seed=1)
    with getattr(torch, mode)():
        x = torch.ones(4, 5, 16)  # an inference tensor under inference_mode
        m = measure(model, x, n_inits=3, seed=1)
        t = translate(model, x)
    assert np.array_equal(m.per_init, ref.per_init, equal_nan=True)
    assert [s.name for s in t.sites] == [s.name for s in m.sites]
    assert _unchanged(model, before) and _hook_free(model)
    # the parameters are ordinary tensors again: the model still trains
    assert not any(p.is_inference() for p in model.parameters())
    model(torch.ones(2, 5, 16)).sum().backward()
    assert all(p.grad is not None for p in model.out.parameters())


def test_errors_in_the_model_or_the_init_leave_it_as_found() -> None:
    torch.manual_seed(0)
    model = FailsOnSecondCall()
    model.lin.weight.requires_grad_(False)
    model.lin.bias.grad = torch.full((4,), 7.0)
    model.eval()
    before = _snapshot(model)
    x = torch.randn(3, 4)
    rng = torch.random.get_rng_state()
    with pytest.raises(ValueError, match="second call"):
        measure(model, x, n_inits=3, dtype=torch.float64)

    def bad_init(m: nn.Module) -> None:
        nn.init.normal_(m.lin.weight)  # draws, then fails: the draw is undone
        raise KeyError("no init")

    with pytest.raises(KeyError, match="no init"):
        measure(model, x, n_inits=3, init=bad_init)
    assert _unchanged(model, before) and _hook_free(model)
    assert torch.equal(model.lin.bias.grad, torch.full((4,), 7.0))  # type: ignore[arg-type]
    assert not model.training and torch.equal(rng, torch.random.get_rng_state())
    assert not torch._C._is_torch_function_mode_enabled()  # the tracer's mode is gone too
