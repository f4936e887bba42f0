"""Convolutional nets: padding's effect on the first layer, measured against the exact law, and
batch norm's pinned forward moment in ResNet-18."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from gradmath.torch import measure, translate  # noqa: E402
from gradmath.torch.translate import Conv  # noqa: E402

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
