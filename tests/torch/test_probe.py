"""gradmath.torch.probe on real MLPs: torch probe, NumPy simulate and mean-field theory agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradmath import GradmathError
from gradmath.meanfield import predict
from gradmath.network import Dense
from gradmath.numeric import simulate
from gradmath.torch import from_module, measure, probe
from gradmath.validate import compare

from .models import glorot, he, linear_init, mlp

WIDTH, BATCH, INITS = 128, 64, 16

CASES = {
    # name: (model factory, init for the probe (None: reset_parameters), theory's verdict)
    "sigmoid-glorot": (lambda: mlp(nn.Sigmoid, 20, WIDTH), linear_init(glorot)),
    "relu-torch-default": (lambda: mlp(nn.ReLU, 10, WIDTH, bias=False), None),
    "relu-torch-default-bias": (lambda: mlp(nn.ReLU, 10, WIDTH), None),
    "relu-he": (lambda: mlp(nn.ReLU, 20, WIDTH), linear_init(he)),
}


def _model(name: str) -> tuple[nn.Module, object]:
    factory, init = CASES[name]
    torch.manual_seed(0)
    model = factory()
    if init is not None:
        init(model)  # type: ignore[operator]
    return model, init


@pytest.mark.parametrize("name", list(CASES))
def test_probe_simulate_and_theory_agree(name: str) -> None:
    model, init = _model(name)
    x = torch.randn(BATCH, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    net = from_module(model, x)
    measured = probe(model, x, n_inits=INITS, seed=0, init=init, dtype=torch.float64)
    compare(predict(net, like=measured), measured).assert_agrees()
    sim = simulate(net, n_networks=INITS, batch=BATCH, seed=0)
    compare(predict(net, like=sim), sim).assert_agrees()


def _dense(net: object) -> list[Dense]:
    return [layer for layer in net.body.layers if isinstance(layer, Dense)]  # type: ignore[attr-defined]


def test_translation_reads_the_initializers() -> None:
    model, _ = _model("relu-torch-default-bias")
    dense = _dense(from_module(model, torch.randn(4, WIDTH)))
    assert {d.init.name for d in dense} == {"torch_linear_default"}  # type: ignore[union-attr]
    assert dense[1].init.sigma_w2(WIDTH, WIDTH) == pytest.approx(1 / 3, rel=1e-15)  # type: ignore[union-attr]
    assert [d.sigma_b2 for d in dense] == [1 / (3 * WIDTH)] * 10
    model, _ = _model("relu-he")
    dense = _dense(from_module(model, torch.randn(4, WIDTH)))
    assert dense[3].init.sigma_w2(WIDTH, WIDTH) == pytest.approx(2.0)  # type: ignore[union-attr]


def test_torch_default_relu_shrinks_by_one_sixth_per_layer() -> None:
    # Var[W] = 1/(3 fan_in) and E[relu(h)²] = q/2: q^{l+1} = q^l/6 (no bias).
    model, _ = _model("relu-torch-default")
    x = torch.randn(BATCH, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    measured = probe(model, x, n_inits=INITS, seed=3, dtype=torch.float64)
    theory = predict(from_module(model, x), like=measured)
    assert np.allclose(np.diff(theory.log_q), math.log(1 / 6), rtol=0, atol=1e-12)
    comparison = compare(theory, measured)
    comparison.assert_agrees()
    # and the measured slope itself, to its standard error
    slope = np.polyfit(np.arange(10), measured.log_q, 1)[0]
    assert abs(slope - math.log(1 / 6)) < 0.05


def _state(model: nn.Module) -> list[tuple[str, torch.Tensor, bool, object]]:
    return [(n, p.detach().clone(), p.requires_grad, p.grad) for n, p in model.named_parameters()]


def _no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


def test_probe_restores_the_model_and_leaves_no_hooks() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 4))
    model[0].weight.requires_grad_(False)
    model[3].weight.grad = torch.ones(4, 16)
    model.eval()
    before = _state(model)
    buffers = [b.clone() for b in model.buffers()]
    x = torch.randn(8, 16)
    rng = torch.random.get_rng_state()
    m = measure(model, x, n_inits=3, dtype=torch.float64)
    assert [s.name for s in m.sites] == ["dense1", "batchnorm1", "dense2"]
    assert np.isfinite(m.log_wgrad_q[0])  # a frozen weight's gradient is measured too
    after = _state(model)
    for (n, a, ra, ga), (_, b, rb, gb) in zip(before, after, strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype == torch.float32, n
        assert ra == rb and ga is gb, n
    assert torch.equal(model[3].weight.grad, torch.ones(4, 16))
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert not model.training and torch.equal(rng, torch.random.get_rng_state())
    assert _no_hooks(model)


def test_probe_restores_the_model_when_the_loss_raises() -> None:
    model = mlp(nn.ReLU, 3, 8)
    before = _state(model)

    def bad_loss(out: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        measure(model, torch.randn(4, 8), n_inits=2, loss=bad_loss)
    for (_, a, ra, _), (_, b, rb, _) in zip(before, _state(model), strict=True):
        assert torch.equal(a, b) and ra == rb
    assert _no_hooks(model)


def test_probe_is_deterministic_and_float32_agrees_with_float64() -> None:
    model = mlp(nn.Tanh, 4, 32)
    x = torch.randn(16, 32)
    a = measure(model, x, n_inits=4, seed=5)
    b = measure(model, x, n_inits=4, seed=5)
    assert np.array_equal(a.per_init, b.per_init, equal_nan=True)
    c = measure(model, x, n_inits=16, seed=5, dtype=torch.float64)
    d = measure(model, x, n_inits=16, seed=6, dtype=torch.float32)
    # float64 draws differ from float32 ones: the two agree within their standard errors
    assert np.all(np.abs(d.log_q - c.log_q) < 4 * np.hypot(d.log_q_se, c.log_q_se))
    assert a.conditions["dtype"] == "float32" and c.conditions["dtype"] == "float64"


def test_bad_arguments_are_refused_by_name() -> None:
    model = mlp(nn.ReLU, 2, 4)
    x = torch.randn(2, 4)
    for kwargs, word in [
        ({"n_inits": 1}, "n_inits"),
        ({"loss": "hinge"}, "loss"),
        ({"init": 3}, "init"),
        ({"dtype": torch.float16}, "dtype"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(GradmathError, match=word):
            measure(model, x, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="model"):
        measure("not a model", x)  # type: ignore[arg-type]


def test_a_module_without_an_initialiser_is_named() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gain

    model = nn.Sequential(nn.Linear(4, 4), Scale())
    with pytest.raises(GradmathError, match=r"reset_parameters.*init="):
        measure(model, torch.randn(2, 4), n_inits=2)


@pytest.mark.parametrize("later", ["other", "shorter", "longer"])
def test_a_data_flow_that_changes_between_inits_is_refused(later: str) -> None:
    # Passes after the first are replayed against the first one's record (Trace.replaying):
    # another layer, a missing one or an extra one is named, never measured as if the same.
    class Changing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.passes = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.passes += 1
            h = torch.tanh(self.a(x))
            if self.passes == 1:
                return self.b(h)
            if later == "other":
                return torch.relu(h) + 0.0 * self.b.weight.sum()
            if later == "longer":
                return self.b(h) + h
            return h

    ran = {"other": "'model.relu' where the first pass had 'b'",
           "shorter": "the end of the pass where the first pass had 'b'",
           "longer": "'model.add' where the first pass had the end of the pass"}[later]  # fmt: skip
    with pytest.raises(GradmathError, match=r"different layers on this pass than on the first "
                       rf"\(event [23]: {ran}\)"):  # fmt: skip
        measure(Changing(), torch.randn(2, 4), n_inits=2)
