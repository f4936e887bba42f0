"""The network algebra: structure, exact mean-field laws of each layer, and each layer's
simulation rule against PyTorch autograd (an independent reference for the backward pass)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath import MLP, GradmathError
from gradmath.meanfield import predict
from gradmath.network import (
    BatchNorm,
    Dense,
    LayerNorm,
    Network,
    Residual,
    Serial,
    fixup_block,
    post_ln_block,
    pre_ln_block,
    repeat,
)
from gradmath.network.base import RowCounter, Scaled
from gradmath.spec import parse_network

# --------------------------------------------------------------------------- structure


def test_sites_are_named_in_forward_order() -> None:
    net = Network(8, Dense(16), "relu", repeat(pre_ln_block(16, alpha=0.5), 2), BatchNorm())
    assert [s.name for s in net.sites] == [
        "dense1", "layernorm1", "dense2", "dense3", "residual1",
        "layernorm2", "dense4", "dense5", "residual2", "batchnorm1",
    ]  # fmt: skip
    assert net.sites[0].fan_in == 8 and net.sites[2].fan_in == 16
    assert not net.sites[1].has_weights
    assert net.uses_batch_statistics and not Network(8, Dense(4)).uses_batch_statistics


def test_mlp_network_matches_its_layers() -> None:
    net = MLP((5, 7, 3), activation="tanh", init="glorot_normal", sigma_b2=0.1)
    sites = net.network.sites
    assert [(s.width, s.fan_in) for s in sites] == [(7, 5), (3, 7)]
    p = predict(net)
    q1 = 5 * net.layers[0].weight_var * 1.0 + 0.1
    assert p.log_q[0] == pytest.approx(math.log(q1), abs=1e-14)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Network(8), "at least one layer"),
        (lambda: Network(0, Dense(4)), "input_width"),
        (lambda: Network(8, "relu"), "no site"),
        (lambda: Network(8, 3.0), "not a layer"),
        (lambda: Network(8, Residual(Dense(4))).sites, "keep the width"),
        (lambda: Dense(0), "width"),
        (lambda: Dense(4, sigma_b2=-1.0), "sigma_b2"),
        (lambda: Dense(4, sigma_b2="zeros"), "sigma_b2"),
        (lambda: Dense(4, gain=math.inf), "gain"),
        (lambda: Residual(Dense(4), alpha=math.nan), "alpha"),
        (lambda: repeat(Dense(4), 0), "n"),
        (lambda: Dense(4, init="he"), "he_normal"),
    ],
)
def test_bad_structure_raises(build: object, match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        build()  # type: ignore[operator]


# --------------------------------------------------------------------------- exact theory


def test_layernorm_pins_the_forward_second_moment_and_divides_the_gradient() -> None:
    # LN of a centred input with q = 3: q_y = 1 exactly and q̃_x = q̃_y/3.
    net = Network(4, Dense(64, "normal", sigma_b2=0.0), LayerNorm(), Dense(8, "lecun_normal"))
    p = predict(net, input_q=3.0)
    assert p.log_q[1] == 0.0
    assert p.log_grad_q[0] == pytest.approx(p.log_grad_q[1] - math.log(3.0), abs=1e-14)


def test_layernorm_after_relu_uses_the_variance() -> None:
    # After ReLU, x has mean √(q/2π) and E[x²] = q/2, so LN divides by q/2 − q/(2π).
    net = Network(4, Dense(32, "he_normal"), "relu", LayerNorm(), Dense(8))
    p = predict(net)
    q = 2.0
    var = q / 2 - q / (2 * math.pi)
    # q̃ at LN's output: q̃_out · fan_out·Var[W] of dense2 = 1 · 8 · 2/32
    assert p.log_grad_q[1] == pytest.approx(math.log(0.5), abs=1e-14)
    # q̃ at dense1's output: q̃_LN,out / var · E[relu'²] (= 1/2)
    assert p.log_grad_q[0] == pytest.approx(math.log(0.5) - math.log(var) + math.log(0.5), abs=1e-9)


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_pre_ln_grows_linearly_and_keeps_gradients_bounded(act: str) -> None:
    # x + α·F(LN(x)): every block adds α²·q_F with q_F the same for every block (LN pins its
    # input), so q grows linearly; the gradient factor 1 + α² q̃_F/q → 1 as q grows.
    L, alpha = 200, 1.0
    net = Network(32, Dense(32), repeat(pre_ln_block(32, act, alpha=alpha), L))
    p = predict(net)
    stream = np.exp(p.select("residual").log_q)
    inc = np.diff(stream)
    np.testing.assert_allclose(inc, inc[0], rtol=1e-9)
    g = p.select("residual").log_grad_q
    assert g[0] - g[-1] < 2.0 * math.log(L)  # at most polynomial growth, not exponential


@pytest.mark.parametrize("alpha", [0.0])
def test_rezero_and_skipinit_are_the_identity_at_init(alpha: float) -> None:
    # ReZero (Bachlechner et al. 2020) and SkipInit (De & Smith 2020) start at α = 0.
    net = Network(16, Dense(16, "he_normal"), repeat(Residual(Serial("relu", Dense(16)), alpha), 5))
    p = predict(net)
    s = p.select("residual")
    assert np.all(s.log_q == p.log_q[0]) and np.all(s.log_grad_q == p.log_grad_q[0])


def test_fixup_block_is_the_identity_at_init() -> None:
    L = 8
    net = Network(16, Dense(16), "relu", repeat(fixup_block(16, L, "relu", m=3), L), Dense(4))
    p = predict(net)
    s = p.select("residual")
    np.testing.assert_array_equal(s.log_q, s.log_q[0])
    d = p.select("dense")
    # per block (m = 3 layers): the zero layer has zero output, the two below it no gradient
    q, g = d.log_q[1:-1].reshape(L, 3), d.log_grad_q[1:-1].reshape(L, 3)
    assert np.all(np.isneginf(q[:, 2])) and np.all(np.isfinite(q[:, :2]))
    assert np.all(np.isneginf(g[:, :2])) and np.all(np.isfinite(g[:, 2]))


def test_orthogonal_weights_have_gaussian_second_moments() -> None:
    # At infinite width an orthogonal matrix with E[W²] = v acts on second moments like a
    # Gaussian one of variance v (Saxe et al. 2014; Pennington et al. 2017).
    a = predict(MLP.square(64, 6, activation="tanh", init="orthogonal"))
    b = predict(MLP.square(64, 6, activation="tanh", init="lecun_normal"))
    for f in ("log_q", "log_grad_q", "log_wgrad_q"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-14)


def test_torch_default_bias_is_honoured() -> None:
    # PyTorch's nn.Linear: U(±1/√n) weights and bias, variance 1/(3n) each. With ReLU the
    # length map is q' = q/6 + 1/(3n): it levels off at q* = 2/(5n) (issue 12's correction).
    n = 100
    p = predict(MLP.square(n, 40, activation="relu", init="torch_linear_default"))
    assert p.q[-1] == pytest.approx(2 / (5 * n), rel=1e-12)
    p0 = predict(MLP.square(n, 3, activation="relu", init="torch_linear_default", sigma_b2=0.0))
    np.testing.assert_allclose(np.diff(p0.log_q), math.log(1 / 6), atol=1e-13)


def test_depth_10000_composed_network_stays_finite() -> None:
    net = Network(32, Dense(32), repeat(pre_ln_block(32, "relu", alpha=1.0), 5000))
    p = predict(net)
    assert np.all(np.isfinite(p.log_q)) and np.all(np.isfinite(p.log_grad_q))
    assert p.depth == 1 + 5000 * 4


# --------------------------------------------------------------------------- spec text


def test_spec_round_trip_and_safety(tmp_path: object) -> None:
    text = (
        'Network(8, Dense(16, "he_normal", sigma_b2=0.01), "relu", '
        "repeat(Residual(Serial(LayerNorm(), Dense(16), 'gelu', Dense(16)), alpha=1/2**2), 3), "
        "Dense(4, gain=-1.5))"
    )
    net = parse_network(text)
    assert len(net.sites) == 1 + 3 * 4 + 1
    assert net.body.layers[2].layer.alpha == 0.25
    for bad, match in [
        ("__import__('os').system('true')", "may only contain"),
        ("__import__('os')", "not allowed"),
        ("Network(8, Dense(16)).sites", "may only contain"),
        ("Dense(4)", "whole network"),
        ("Network(8, Dense(x))", "may only contain"),
        ("Network(8, Dense(16, **{}))", "kwargs"),
        ("Network(8, Dense(16, wdith=3))", "unexpected keyword"),
        ("Network(8,", "does not parse"),
        ("", "empty"),
        ("no_such_file.net", "neither"),
    ]:
        with pytest.raises(GradmathError, match=match):
            parse_network(bad)


# --------------------------------------------------------------------------- simulation rules


class _Recorder:
    """A SimContext for one network that draws its parameters from a generator and keeps them."""

    def __init__(self, n_sites: int, seed: int) -> None:
        self.K = 1
        self.dtype = np.dtype(np.float64)
        self.batch_statistics = False
        self.sites = RowCounter()
        self.forward_log = np.full((3, 1, n_sites), np.nan)
        self.rng = np.random.default_rng(seed)
        self.params: list[tuple[np.ndarray, np.ndarray]] = []

    def draw(
        self, init: object, shape: tuple[int, int], sigma_b2: float
    ) -> tuple[np.ndarray, np.ndarray]:
        w = init.sample(self.rng, shape)[None]  # type: ignore[attr-defined]
        b = self.rng.standard_normal((1, shape[0])) * math.sqrt(sigma_b2)
        self.params.append((w[0].copy(), b[0].copy()))
        return w, b

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def out_of_range(self, what: str, site: int | None = None) -> GradmathError:
        return GradmathError(what)


def _torch_forward(torch: object, net: Network, params: list, x: object) -> tuple[object, list]:
    """The same network in PyTorch, built from the layer objects (reference implementation)."""
    import torch as t

    it = iter(params)
    outs: list = []

    def run(layer: object, h: object) -> object:
        from gradmath.network import Elementwise, Repeat

        if isinstance(layer, Serial):
            for x_ in layer.layers:
                h = run(x_, h)
            return h
        if isinstance(layer, Repeat):
            for _ in range(layer.n):
                h = run(layer.layer, h)
            return h
        if isinstance(layer, Dense):
            w, b = next(it)
            y = h @ t.tensor(w).T + t.tensor(b)
        elif isinstance(layer, Elementwise):
            name = layer.activation.name
            return {"relu": t.relu, "tanh": t.tanh, "gelu": t.nn.functional.gelu}[name](h)
        elif isinstance(layer, LayerNorm):
            y = t.nn.functional.layer_norm(h, h.shape[-1:], eps=0.0)
        elif isinstance(layer, BatchNorm):
            # torch's batch_norm insists on eps > 0 in training mode: written out instead
            c = h - h.mean(dim=0, keepdim=True)
            y = c / c.pow(2).mean(dim=0, keepdim=True).sqrt()
        elif isinstance(layer, Residual):
            y = h + layer.alpha * run(layer.branch, h)
        else:  # pragma: no cover
            raise AssertionError(layer)
        y.retain_grad()
        outs.append(y)
        return y

    return run(net.body, x), outs


@pytest.mark.parametrize(
    "net",
    [
        Network(6, Dense(9, sigma_b2=0.3), "tanh", Dense(9), LayerNorm(), "gelu", Dense(5)),
        Network(6, Dense(8), "relu", repeat(pre_ln_block(8, "gelu", alpha=0.7), 2), Dense(3)),
        Network(6, Dense(8, "glorot_normal"), post_ln_block(8, "tanh", alpha=1.3), Dense(3)),
        Network(6, Dense(8), BatchNorm(), "relu", Dense(8), BatchNorm(), "tanh", Dense(4)),
    ],
    ids=["layernorm", "pre-ln", "post-ln", "batchnorm"],
)
def test_simulation_rules_match_torch_autograd(net: Network) -> None:
    torch = pytest.importorskip("torch")
    B = 7
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, net.input_width))
    ctx = _Recorder(len(net.sites), seed=4)
    y, tape = net.body.sim_forward(Scaled(x[None].copy(), np.zeros(1)), ctx)
    r = rng.standard_normal((B, net.output_width))
    g = net.body.sim_backward(tape, Scaled(r[None].copy(), np.zeros(1)), ctx, True)

    xt = torch.tensor(x, requires_grad=True)
    yt, outs = _torch_forward(torch, net, ctx.params, xt)
    (yt * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(y.true()[0], yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    got = g.u[0] * math.exp(g.s[0])
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    # every site's recorded log mean squares: output and gradient
    for i, o in enumerate(outs):
        assert ctx.forward_log[0, 0, i] == pytest.approx(
            math.log(float((o.detach() ** 2).mean())), abs=1e-10
        )
        gm = float((o.grad**2).mean())
        assert ctx.forward_log[1, 0, i] == pytest.approx(math.log(gm), abs=1e-9)
