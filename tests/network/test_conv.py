"""Convolution, pooling and Flatten in the network algebra: structure, exact laws of the
mean-field rules (padding, pooling, 1×1 and full-size kernels), each simulation rule against
PyTorch autograd, and theory against sampled CNNs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmath import MLP, GradmathError
from gradmath.meanfield import predict
from gradmath.network import (
    AdaptiveAvgPool,
    AvgPool,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    Network,
    Residual,
    Serial,
    repeat,
)
from gradmath.network import spatial as sp
from gradmath.network.base import RowCounter, Scaled
from gradmath.numeric import simulate
from gradmath.spec import parse_network
from gradmath.validate import compare

# --------------------------------------------------------------------------- structure


def test_shapes_and_sites() -> None:
    net = Network(
        (3, 9, 9),
        Conv(8, 3, padding=1),
        "relu",
        Conv(8, (3, 1), stride=2, dilation=(1, 2)),
        AvgPool(2, padding=1),
        Flatten(),
        Dense(4),
    )
    assert net.input_shape == (3, 9, 9)
    assert [(s.name, s.width, s.fan_in) for s in net.sites] == [
        ("conv1", 8, 27), ("conv2", 8, 24), ("avgpool1", 8, None), ("dense1", 4, 8 * 3 * 3),
    ]  # fmt: skip
    # torch: floor((9 − 1·2 − 1)/2) + 1 = 4 rows, floor((9 − 1)/2) + 1 = 5 columns; pool pads 1
    assert Conv(8, (3, 1), stride=2, dilation=(1, 2)).out_width((8, 9, 9)) == (8, 4, 5)
    assert AvgPool(2, padding=1).out_width((8, 4, 5)) == (8, 3, 3)
    assert Conv(4, 5, padding="same", dim=1).out_width((2, 7)) == (4, 7)
    assert Network((2, 7), Conv(4, 3, dim=1), GlobalAvgPool(), Dense(3)).output_width == 3
    spec = parse_network('Network((3, 8, 8), Conv(8, 3, padding="same"), "relu", AvgPool(2), '
                         "Conv(8, 3, stride=2), GlobalAvgPool(), Dense(2))")  # fmt: skip
    assert [s.name for s in spec.sites] == ["conv1", "avgpool1", "conv2", "avgpool2", "dense1"]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Network((3, 8, 8), Dense(4)).sites, "Flatten"),
        (lambda: Network((3, 8, 8), Conv(4, 3), LayerNorm()).sites, "LayerNorm needs a flat"),
        (lambda: Network(12, Conv(4, 3)).sites, "input of shape"),
        (lambda: Network((3, 8), Conv(4, 3)).sites, "2 spatial axes"),
        (lambda: Network((3, 2, 2), Conv(4, 3)).sites, "does not fit"),
        (lambda: Network((3, 4, 4, 4, 4), Conv(4, 3)), "1 or 2 spatial"),
        (lambda: Conv(4, 2, padding="same"), "odd"),
        (lambda: Conv(4, 3, padding="full"), "padding"),
        (lambda: Conv(4, 3, dim=3), "dim"),
        (lambda: Conv(4, (3, 3, 3)), "kernel"),
        (lambda: Conv(0, 3), "channels"),
        (lambda: Conv(4, 3, sigma_b2=-1.0), "sigma_b2"),
        (lambda: Conv(4, 3, gain=math.nan), "gain"),
        (lambda: AvgPool(2, padding=2), "half the kernel"),
        (
            lambda: (
                Network((3, 4), Conv(4, 3, padding=1, dim=1), Residual(Conv(5, 1, dim=1))).sites
            ),
            "keep the width",
        ),
        (lambda: predict(Network((3, 4, 4), Conv(4, 3)), loss="mse"), "positions"),
    ],
)
def test_bad_structure_raises(build: object, match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        build()  # type: ignore[operator]


# --------------------------------------------------------------------------- exact laws


@given(
    n=st.integers(2, 6),
    m=st.integers(1, 5),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_window_maps_are_adjoint(n: int, m: int, k: int, s: int, p: int, d: int, seed: int) -> None:
    # ⟨A(K), G⟩ = ⟨K, Aᵀ(G)⟩/∏k for all K, G: the backward rule is the forward rule's adjoint,
    # and im2col/col2im are adjoint too (the simulation's backward).
    win = sp.Window((k, 1), (s, 1), (p, 0), (d, 1))
    shape = (n, m)
    if (n + 2 * p - d * (k - 1) - 1) < 0:
        return
    out = win.out_shape(shape, "t")
    rng = np.random.default_rng(seed)
    kk = rng.standard_normal((n * m, n * m))
    gg = rng.standard_normal((math.prod(out),) * 2)
    lhs = float(np.sum(sp.window_average(kk, shape, win) * gg))
    rhs = float(np.sum(kk * sp.window_average_adjoint(gg, shape, win))) / win.taps
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    gd = rng.standard_normal(math.prod(out))
    np.testing.assert_allclose(
        sp.window_adjoint_form(gd, shape, win),
        np.diagonal(sp.window_average_adjoint(np.diag(gd), shape, win)),
        atol=1e-12,
    )
    u = rng.standard_normal((1, 2, 3, n, m))
    cols, _ = sp.im2col(u, win)
    c = rng.standard_normal(cols.shape)
    back = sp.col2im(c, shape, 3, win)
    assert float(np.sum(cols * c)) == pytest.approx(float(np.sum(u * back)), rel=1e-10)


@pytest.mark.parametrize("n", [4, 32])
def test_zero_padding_law(n: int) -> None:
    # First 3×3 'same' conv of a white n×n input: E[h²] averaged over positions is
    # σ_w²·q·ρ + σ_b², ρ = ((3n − 2)/(3n))² the mean fraction of taps inside the image.
    q, sb2 = 1.7, 0.05
    net = Network((3, n, n), Conv(8, 3, "he_normal", sigma_b2=sb2, padding=1))
    rho = ((3 * n - 2) / (3 * n)) ** 2
    assert predict(net, input_q=q).q[0] == pytest.approx(2.0 * q * rho + sb2, rel=1e-13)
    # 'valid' padding sees the whole window everywhere: ρ = 1
    valid = Network((3, n, n), Conv(8, 3, "he_normal", sigma_b2=sb2))
    assert predict(valid, input_q=q).q[0] == pytest.approx(2.0 * q + sb2, rel=1e-13)


def test_padding_effect_is_measured() -> None:
    # At 4×4 zero padding removes 31 % of σ_w²·q: the simulation sees it (and agrees with the
    # padded theory), far outside the Monte-Carlo resolution of the padding-blind value.
    net = Network((4, 4, 4), Conv(16, 3, "he_normal", padding=1), "relu", Conv(16, 3, padding=1))
    sim = simulate(net, n_networks=32, batch=8, seed=5)
    th = predict(net, like=sim)
    compare(th, sim).assert_agrees()
    naive = math.log(2.0)  # σ_w²·q_x with every tap inside
    assert th.log_q[0] - naive == pytest.approx(2 * math.log(10 / 12), abs=1e-13)
    assert (sim.log_q[0] - naive) / sim.log_q_se[0] < -8


def test_one_by_one_conv_is_a_dense_layer_per_position() -> None:
    # A 1×1 convolution is a Dense layer applied at every position: the same q and q̃ as the
    # MLP of the same widths, and a per-example weight gradient summed over P positions.
    P = 5 * 3
    conv = Network((6, 5, 3), Conv(9, 1, "glorot_normal", sigma_b2=0.1), "tanh",
                   Conv(7, 1, "glorot_normal", sigma_b2=0.1), "tanh", Conv(4, 1))  # fmt: skip
    inits = ["glorot_normal", "glorot_normal", "he_normal"]
    mlp = MLP((6, 9, 7, 4), activation=["tanh", "tanh", "linear"], init=inits,
              sigma_b2=[0.1, 0.1, 0.0])  # fmt: skip
    a, b = predict(conv, input_q=0.7), predict(mlp, input_q=0.7)
    np.testing.assert_allclose(a.log_q, b.log_q, atol=1e-12)
    np.testing.assert_allclose(a.log_grad_q, b.log_grad_q, atol=1e-12)
    np.testing.assert_allclose(a.log_wgrad_q, b.log_wgrad_q + math.log(P), atol=1e-12)


def test_full_size_kernel_is_a_dense_layer() -> None:
    # A kernel that covers the whole input without padding has one output position: Dense on
    # the flattened input (fan_in = C·H·W), with Glorot's fan_out = C_out·∏k as PyTorch's.
    conv = Network((3, 4, 4), Conv(10, 4, "he_normal", sigma_b2=0.2), Flatten(), "relu", Dense(5))
    dense = Network(48, Dense(10, "he_normal", sigma_b2=0.2), "relu", Dense(5))
    a, b = predict(conv), predict(dense)
    for f in ("log_q", "log_grad_q", "log_wgrad_q"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-12)
    g = Conv(10, 4, "glorot_normal").weight_var(3)
    assert g == pytest.approx(2.0 / (48 + 160), rel=1e-15)


def test_pooling_laws() -> None:
    # White positions (a linear conv of white input): a k×k average pool divides q by k², a
    # global one by the number of positions; the gradient spreads 1/k² (1/P²) back.
    net = Network((2, 6, 6), Conv(4, 1, "lecun_normal"), AvgPool(3), GlobalAvgPool(), Dense(3))
    p = predict(net)
    assert p.q[1] == pytest.approx(p.q[0] / 9, rel=1e-13)
    assert p.q[2] == pytest.approx(p.q[1] / 4, rel=1e-13)
    assert p.grad_q[1] == pytest.approx(p.grad_q[2] / 4**2, rel=1e-13)  # δ_y/4 at 4 positions
    assert p.grad_q[0] == pytest.approx(p.grad_q[1] / 9**2, rel=1e-13)  # one window each
    # After ReLU, positions are correlated by E[φ]² > 0: pooling keeps more than 1/k² of q
    relu = predict(Network((2, 6, 6), Conv(4, 1), "relu", AvgPool(3), Flatten(), Dense(3)))
    ratio = relu.q[1] / (relu.q[0] / 2)  # E[relu(h)²] = q/2
    c = 1 / math.pi  # E[relu]²/E[relu²] = (q/2π)/(q/2)
    assert ratio == pytest.approx((1 + 8 * c) / 9, rel=1e-12)


def test_residual_with_a_shortcut_adds_second_moments() -> None:
    # y = shortcut(x) + α·branch(x), independent weights: q_y = q_shortcut + α² q_branch, with
    # the sites of the branch, then the shortcut, then the sum (ResNet's downsampling block).
    shape = (4, 6, 6)
    branch = Serial(Conv(8, 3, stride=2, padding=1), "relu", Conv(8, 3, padding=1, sigma_b2=0.1))
    skip = Conv(8, 1, "glorot_normal", stride=2)
    net = Network(shape, Conv(4, 3, padding=1), "tanh", Residual(branch, 0.7, shortcut=skip))
    assert [s.name for s in net.sites] == ["conv1", "conv2", "conv3", "conv4", "residual1"]
    p = predict(net)
    qb = predict(Network(shape, Conv(4, 3, padding=1), "tanh", branch)).q[-1]
    qs = predict(Network(shape, Conv(4, 3, padding=1), "tanh", skip)).q[-1]
    assert p.q[-1] == pytest.approx(qs + 0.49 * qb, rel=1e-12)
    assert p.q[3] == pytest.approx(qs, rel=1e-12)


def test_adaptive_pooling_replicates_and_averages() -> None:
    # torchvision's VGG pools a 1×1 map to 7×7 (every output copies the input: q and the
    # summed gradient are unchanged per position up to the 49 copies); to 1×1 it is
    # GlobalAvgPool followed by Flatten.
    head = (Conv(4, 3, padding=1), "tanh", Conv(4, 5))  # 5×5 → 1×1
    up = predict(Network((3, 5, 5), *head, AdaptiveAvgPool(7), Flatten(), Dense(2)))
    assert up.log_q[2] == up.log_q[1]
    assert up.grad_q[1] == pytest.approx(49 * up.grad_q[2], rel=1e-13)
    head = (Conv(4, 3, padding=1), "tanh", Conv(4, 3, stride=2))  # 7×7 → 3×3
    a = predict(Network((3, 7, 7), *head, AdaptiveAvgPool(1), Flatten(), Dense(2)))
    b = predict(Network((3, 7, 7), *head, GlobalAvgPool(), Dense(2)))
    for f in ("log_q", "log_grad_q", "log_wgrad_q"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-14)


def test_deep_conv_net_stays_in_log_space() -> None:
    net = Network((2, 4, 4), Conv(8, 3, "he_normal", padding=1, gain=2.0),
                  repeat(Serial("relu", Conv(8, 3, padding=1, gain=2.0)), 1000), GlobalAvgPool(),
                  Dense(2))  # fmt: skip
    p = predict(net)
    assert np.all(np.isfinite(p.log_q)) and np.all(np.isfinite(p.log_grad_q))
    assert p.log_q[-2] > 700  # e^{>700}: beyond float64 as a plain number


# --------------------------------------------------------------------------- simulation rules


class _Recorder:
    """A SimContext for one network whose draws are kept (by reference: rules rescale them)."""

    def __init__(self, n_sites: int, seed: int) -> None:
        self.K = 1
        self.dtype = np.dtype(np.float64)
        self.batch_statistics = False
        self.sites = RowCounter()
        self.forward_log = np.full((3, 1, n_sites), np.nan)
        self.rng = np.random.default_rng(seed)
        self.params: list[tuple[np.ndarray, np.ndarray]] = []

    def draw(self, init: object, shape: tuple[int, int], sigma_b2: float) -> tuple:
        w = init.sample(self.rng, shape)[None]  # type: ignore[attr-defined]
        b = self.rng.standard_normal((1, shape[0])) * math.sqrt(sigma_b2)
        self.params.append((w, b.copy()))
        return w, b

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def out_of_range(self, what: str, site: int | None = None) -> GradmathError:
        return GradmathError(what)


def _torch_net(net: Network, params: list, x: object) -> tuple[object, list, list]:
    """The network in PyTorch from the layer objects; outputs and (weight, site) per layer."""
    import torch as t
    from torch.nn import functional as F

    from gradmath.network import Elementwise

    it = iter(params)
    outs: list = []
    weights: list = []

    def run(layer: object, h: t.Tensor) -> t.Tensor:
        if isinstance(layer, Serial):
            for x_ in layer.layers:
                h = run(x_, h)
            return h
        if isinstance(layer, Elementwise):
            return {"relu": t.relu, "tanh": t.tanh}[layer.activation.name](h)
        if isinstance(layer, Flatten):
            return h.flatten(1)
        if isinstance(layer, Conv):
            w, b = next(it)
            c_in = h.shape[1]
            wt = t.tensor(w[0].reshape(layer.channels, c_in, *layer.kernel), requires_grad=True)
            conv = F.conv1d if layer.dim == 1 else F.conv2d
            y = conv(h, wt, t.tensor(b[0]), stride=layer.stride, padding=layer.padding,
                     dilation=layer.dilation)  # fmt: skip
            weights.append((wt, len(outs)))
        elif isinstance(layer, Dense):
            w, b = next(it)
            wt = t.tensor(w[0], requires_grad=True)
            y = h @ wt.T + t.tensor(b[0])
            weights.append((wt, len(outs)))
        elif isinstance(layer, AvgPool):
            pool = F.avg_pool1d if layer.dim == 1 else F.avg_pool2d
            y = pool(h, layer.kernel, layer.stride, layer.padding, count_include_pad=True)
        elif isinstance(layer, AdaptiveAvgPool):
            pool = F.adaptive_avg_pool1d if layer.dim == 1 else F.adaptive_avg_pool2d
            y = pool(h, layer.output_size)
        elif isinstance(layer, GlobalAvgPool):
            y = h.mean(dim=tuple(range(2, h.ndim)))
        elif isinstance(layer, Residual):
            f = run(layer.branch, h)
            y = (h if layer.shortcut is None else run(layer.shortcut, h)) + layer.alpha * f
        else:  # pragma: no cover
            raise AssertionError(layer)
        y.retain_grad()
        outs.append(y)
        return y

    return run(net.body, x), outs, weights


@pytest.mark.parametrize(
    "net",
    [
        Network((3, 7, 6), Conv(5, 3, "glorot_uniform", sigma_b2=0.3, padding=1), "tanh",
                Conv(4, (2, 3), stride=(2, 1), dilation=(1, 2), padding=(1, 0)), "relu",
                AvgPool(2, padding=1), Flatten(), Dense(3)),
        Network((2, 11), Conv(4, 3, dim=1, padding="same"), "relu",
                Residual(Serial(Conv(4, 3, "he_uniform", dim=1, padding=1), "relu",
                                Conv(4, 1, dim=1)), alpha=0.6),
                AvgPool(3, stride=2, dim=1), AdaptiveAvgPool(3, dim=1),
                Conv(3, 2, "orthogonal", dim=1, stride=1),
                "tanh", GlobalAvgPool(), Dense(2, sigma_b2=0.1)),
        Network((3, 6, 6), Conv(4, 3, padding=1), "relu",
                Residual(Serial(Conv(6, 3, stride=2, padding=1), "relu", Conv(6, 3, padding=1)),
                         alpha=0.8, shortcut=Conv(6, 1, "glorot_normal", stride=2)),
                AdaptiveAvgPool((2, 5)), "relu", GlobalAvgPool(), Dense(2)),
    ],
    ids=["conv2d-pool-flatten", "conv1d-residual-gap", "resnet-shortcut"],
)  # fmt: skip
def test_simulation_rules_match_torch_autograd(net: Network) -> None:
    torch = pytest.importorskip("torch")
    B = 5
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, *net.input_shape))
    ctx = _Recorder(len(net.sites), seed=4)
    s_in = 0.3  # a nonzero input scale: the bias enters in the units of x
    y, tape = net.body.sim_forward(Scaled(x[None] * math.exp(-s_in), np.array([s_in])), ctx)
    r = rng.standard_normal((B, net.output_width))
    g = net.body.sim_backward(tape, Scaled(r[None].copy(), np.zeros(1)), ctx, True)

    xt = torch.tensor(x, requires_grad=True)
    yt, outs, weights = _torch_net(net, ctx.params, xt)
    (yt * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(y.true()[0], yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    got = g.u[0] * math.exp(g.s[0])
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for i, o in enumerate(outs):
        o2 = float((o.detach() ** 2).mean())
        assert ctx.forward_log[0, 0, i] == pytest.approx(math.log(o2), abs=1e-10)
        assert ctx.forward_log[1, 0, i] == pytest.approx(
            math.log(float((o.grad**2).mean())), abs=1e-9
        )
    # per-example weight gradients, one example at a time
    per = np.zeros(len(weights))
    for b in range(B):
        xb = torch.tensor(x[b : b + 1])
        yb, _, wb = _torch_net(net, ctx.params, xb)
        grads = torch.autograd.grad((yb * torch.tensor(r[b : b + 1])).sum(), [w for w, _ in wb])
        per += np.array([float((gr**2).mean()) for gr in grads]) / B
    for (_, site), v in zip(weights, per, strict=True):
        assert ctx.forward_log[2, 0, site] == pytest.approx(math.log(v), abs=1e-9)


# --------------------------------------------------------------------------- theory vs samples


def _vgg(act: str, init: str, c_in: int = 3) -> Network:
    def conv(c: int) -> Conv:
        return Conv(c, 3, init, padding=1)

    return Network(
        (c_in, 8, 8), conv(16), act, conv(16), act, AvgPool(2), conv(32), act, conv(32), act,
        GlobalAvgPool(), Dense(10, init),
    )  # fmt: skip


@pytest.mark.parametrize(("act", "init"), [("relu", "he_normal"), ("tanh", "glorot_normal")])
def test_small_vgg_theory_agrees_with_simulation(act: str, init: str) -> None:
    """8×8 inputs with 16 channels, two stages (3×3 'same' convs, 2×2 average pool), global
    average pool, Dense head: every site's q, q̃ and weight gradient within |z| < 4 (19
    comparisons, family-wise false alarm ≤ 19·6.3e-5 = 1.2e-3). 16 input channels: see below.

    Finite width. Below a pooling layer the gradient is correlated across positions and the
    gradient-independence assumption (the backward weights independent of the forward ones)
    errs at O(∏k²/fan_in): the weight W_{o,c,t} of two different taps meets the same input
    x_{c,b} in two output positions. Measured with 128 networks on the ReLU net, conv1's q̃ is
    above theory by ≈ 0.09 in the log at 16/32 channels and ≈ 0.04 at 64/128 (relative to the
    output site, which shares the Monte-Carlo draw); on a 1-d conv net of 512 channels every
    site agrees within 0.006. Here, with 48 networks, the SE (≈ 0.04) is above that bias.
    """
    net = _vgg(act, init, c_in=16)
    sim = simulate(net, n_networks=48, batch=8, seed=11)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_first_layer_weight_gradient_with_few_input_channels() -> None:
    # The theory's E[(Σ_a δ_a x_{a+t})²] = Σ_{aa'} E[δ_a δ_a'] E[x_{a+t} x_{a'+t}] takes δ
    # independent of the input. Below a pooling layer the gradient is correlated across
    # positions, and with C_in = 3 (fan_in 27) the first layer's δ_a, δ_a' still depend on the
    # shared input x_{a+t} at O(overlapping windows/fan_in): measured +0.3 in the log (z ≈ 7).
    # The deviation is this finite fan-in: at C_in = 16 (fan_in 144) it is inside the
    # resolution (test above), and it is absent where the gradient is white (no pooling above).
    net = _vgg("relu", "he_normal", c_in=3)
    sim = simulate(net, n_networks=96, batch=8, seed=11)
    c = compare(predict(net, like=sim), sim)
    assert c.z[2, 0] > 4 and 0.1 < c.diff[2, 0] < 0.4  # conv1's weight gradient


def test_small_preactivation_resnet_theory_agrees_with_simulation() -> None:
    # He et al. (2016b) pre-activation blocks x + α·Conv(φ(Conv(φ(x)))) keep the stream
    # Gaussian; the second block downsamples with a strided 1×1 conv on the shortcut.
    def conv(c: int, **kw: int) -> Conv:
        return Conv(c, 3, padding=1, **kw)

    net = Network(
        (16, 8, 8), conv(16), Residual(Serial("relu", conv(16), "relu", conv(16)), alpha=0.7),
        Residual(Serial("relu", conv(32, stride=2), "relu", conv(32)), alpha=0.7,
                 shortcut=Conv(32, 1, stride=2)),
        "relu", GlobalAvgPool(), Dense(10),
    )  # fmt: skip
    sim = simulate(net, n_networks=48, batch=8, seed=2)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_conv_simulation_does_not_depend_on_checkpointing_or_stacking() -> None:
    # The convolutions draw through the engine's generators: a checkpointed run (segments
    # recomputed from saved generator states) and one network per stack give the same bits.
    from gradmath.numeric import simulation

    net = Network((3, 6, 6), Conv(6, 3, padding=1), "tanh",
                  repeat(Serial(Conv(6, 3, padding=1, sigma_b2=0.1), "relu"), 6),
                  AvgPool(2), Flatten(), Dense(3))  # fmt: skip

    def arrays(p: object) -> np.ndarray:
        return np.stack([p.log_q, p.log_grad_q, p.log_wgrad_q])  # type: ignore[attr-defined]

    ref = arrays(simulate(net, n_networks=4, batch=3, seed=9))
    budget = 60_000
    assert simulation.memory_plan(net, batch=3, n_networks=4, memory_budget=budget)[1] < len(
        net.blocks()
    )
    np.testing.assert_array_equal(
        arrays(simulate(net, n_networks=4, batch=3, seed=9, memory_budget=budget)), ref
    )
    old = simulation.MAX_STACK
    simulation.MAX_STACK = 1
    try:
        np.testing.assert_array_equal(arrays(simulate(net, n_networks=4, batch=3, seed=9)), ref)
    finally:
        simulation.MAX_STACK = old
