"""Convolutional nets: padding's effect on the first layer, measured against the exact law, and
batch norm's pinned forward moment in ResNet-18."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from gradmath import GradmathError  # noqa: E402
from gradmath.network import BatchNorm, Residual, Serial  # noqa: E402
from gradmath.network import Conv as ConvLayer  # noqa: E402
from gradmath.torch import from_module, measure, predict, probe, translate  # noqa: E402
from gradmath.torch.translate import Conv  # noqa: E402
from gradmath.validate import compare  # noqa: E402

from .models import ResNet18, resnet_init, vgg  # noqa: E402


def _padding_aware(x: torch.Tensor, conv: Conv) -> float:
    # E_W[h²] averaged over examples and output positions, exactly, for fixed inputs x:
    # v·Σ_{c,k} x[c, p+k]² over the taps inside the image (zero padding adds nothing) + σ_b².
    x2 = x.double().square().sum(dim=1, keepdim=True)
    ones = torch.ones(1, 1, *conv.kernel, dtype=torch.float64)
    taps = F.conv2d(x2, ones, stride=conv.stride, padding=conv.padding)
    return conv.weight.variance * float(taps.mean()) + conv.sigma_b2


@pytest.mark.parametrize("size", [32, 4])
def test_padding_effect_on_the_first_conv(size: int) -> None:
    """gradmath's conv reading: fan_in = C_in·∏kernel, zero padding = taps outside the image
    contribute nothing. At 32×32 a 3×3 'same' conv loses (94/96)² ≈ 4 % of its taps on
    average, at 4×4 (10/12)² ≈ 31 %; ignoring padding (σ_w²·q_x + σ_b²) is off by that."""
    torch.manual_seed(0)
    model = vgg((32, 32))  # VGG's first stage
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1))
    conv = next(op for op in translate(model, x).ops if isinstance(op, Conv))
    m = measure(model, x, n_inits=24, seed=2, dtype=torch.float64)
    i = m.index("conv1")
    exact = math.log(_padding_aware(x, conv))
    z = (m.log_q[i] - exact) / m.log_q_se[i]
    assert abs(z) < 4
    naive = math.log(conv.weight.sigma_w2 * float(x.double().square().mean()) + conv.sigma_b2)
    rho = ((3 * size - 2) / (3 * size)) ** 2  # mean fraction of taps inside the image
    assert exact - naive == pytest.approx(math.log(rho), abs=0.03)
    if size == 4:  # the padding effect is far outside the Monte-Carlo resolution here
        assert abs((m.log_q[i] - naive) / m.log_q_se[i]) > 8


@pytest.mark.slow
def test_resnet18_batch_norm_pins_the_forward_moment() -> None:
    """Train-mode batch norm with γ = 1, β = 0 gives each channel E[y²] = var/(var + ε) over
    the batch and positions, at any width: log q = 0 up to ε = 1e-5 relative."""
    torch.manual_seed(0)
    model = ResNet18()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    m = measure(model, x, n_inits=3, init=resnet_init)
    bn = [i for i, s in enumerate(m.sites) if s.kind == "batchnorm"]
    assert len(bn) == 20
    assert np.all(np.abs(m.log_q[bn]) < 2e-4)
    assert np.all(np.isfinite(m.log_grad_q)) and np.all(np.isfinite(m.log_q))
    weights = [i for i, s in enumerate(m.sites) if s.kind in ("conv", "dense")]
    assert np.all(np.isfinite(m.log_wgrad_q[weights]))
    # the stem's max-pool is measured only, and its input gradient is recorded
    assert np.isfinite(m.log_grad_in[m.index("maxpool")])
    assert all(isinstance(mod, nn.Module) for mod in model.modules())


@pytest.mark.slow
def test_max_pooling_measured_theory_resumes_after_it() -> None:
    """VGG with max-pooling: each ReLU → max-pool is a measured-only segment that hands on
    what the theory around it needs, measured on the model: the second moments between the
    output's positions (for the convolutions after it) and between the positions of the
    gradient it passes down (max-pooling sends it to the selected positions only, and the
    global average pool at the top correlates all positions). Every row agrees, |z| < 4
    family-wise. Handing on a white gradient instead puts the weight-gradient rows of the
    convolutions below the pools e^0.2 … e^1.5 above theory (z up to 15); starting the segment
    at the max-pool instead of the ReLU before it halves the gradient below it (the selected
    positions have φ' = 1, not E[φ'²] = 1/2)."""
    torch.manual_seed(0)
    model = vgg(pool="max")
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = from_module(model, x, n_inits=8, seed=5)
    measured = [s for s in net.sites if s.kind == "measured"]
    assert len(measured) == 2
    p = probe(model, x, n_inits=16, seed=7)
    compare(predict(net, like=p), p).assert_agrees()


def test_resnet18_translation_emits_shortcuts_and_says_where_theory_stops() -> None:
    """ResNet-18 becomes Conv, BatchNorm (over examples and positions), ReLU,
    Residual(shortcut=Serial(Conv 1×1 stride 2, BatchNorm)) for the downsampling blocks, the
    stem's ReLU → max-pool measured (handing on the positions' moments), average pooling and
    Dense. The mean field stops at the first ReLU after a residual sum: x + F(x) with x a ReLU
    output is not Gaussian, and gradmath has no rule for its law (README, Known limits)."""
    torch.manual_seed(0)
    model = ResNet18()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    net = from_module(model, x, n_inits=2, seed=5, init=resnet_init)
    blocks = [layer for layer in net.body.layers if isinstance(layer, Residual)]
    assert len(blocks) == 8
    shortcuts = [b.shortcut for b in blocks]
    assert [s is not None for s in shortcuts] == [False, False, True, False, True, False, True,
                                                  False]  # fmt: skip
    for s in shortcuts:
        if s is not None:
            assert isinstance(s, Serial)
            conv, bn = s.layers
            assert isinstance(conv, ConvLayer) and isinstance(bn, BatchNorm)
            assert conv.kernel == (1, 1) and conv.stride == (2, 2)
    kinds = [s.kind for s in net.sites]
    assert kinds.count("conv") == 20 and kinds.count("batchnorm") == 20
    assert kinds.count("measured") == 1 and kinds.count("residual") == 8
    with pytest.raises(GradmathError, match="post-activation residual"):
        predict(net, batch=8)
