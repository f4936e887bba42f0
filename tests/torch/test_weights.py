"""Reading initializers from sampled parameters; the package stays free of torch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from gradmath.torch.weights import read_bias, read_weight


@pytest.mark.parametrize(
    ("shape", "draw", "name", "sigma_w2"),
    [
        ((128, 64), None, "torch_linear_default", 1 / 3),
        ((128, 64), lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), "kaiming_normal", 2),
        ((128, 64), lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"), "kaiming_uniform",
         2),
        ((128, 64), nn.init.xavier_uniform_, "xavier_uniform", 64 * 2 / 192),
        ((128, 64), nn.init.xavier_normal_, "xavier_normal", 64 * 2 / 192),
        ((64, 128), nn.init.orthogonal_, "orthogonal", 1.0),
    ],
)  # fmt: skip
def test_catalogue_initializers_are_recognised(shape, draw, name, sigma_w2) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    layer = nn.Linear(shape[1], shape[0])
    if draw is not None:
        draw(layer.weight)
    reading = read_weight(layer.weight)
    assert reading.matched and reading.init.name == name
    # exact for catalogue variances; an orthogonal gain is read from float32 rows (1e-7)
    assert reading.variance * reading.fan_in == pytest.approx(sigma_w2, rel=1e-6)


def test_a_custom_init_is_honoured_with_its_sample_variance() -> None:
    torch.manual_seed(0)
    w = nn.Linear(256, 256).weight
    nn.init.normal_(w, std=0.02)  # GPT-2 / BERT style
    r = read_weight(w)
    assert not r.matched and r.variance == pytest.approx(float(w.detach().double().square().mean()))
    assert r.variance == pytest.approx(4e-4, rel=0.02) and r.label.startswith("custom")


def test_conv_fans_and_the_default_bias() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    r = read_weight(conv.weight)
    assert (r.fan_in, r.fan_out) == (16 * 9, 32 * 9) and r.init.name == "torch_linear_default"
    assert read_bias(conv.bias, r.fan_in) == (1 / (3 * 144), "torch default U(±1/√fan_in)")
    assert read_bias(None, 4)[0] == 0.0 and read_bias(torch.zeros(3), 4)[0] == 0.0
    hf_layout = read_weight(torch.empty(64, 32).uniform_(-1 / 8, 1 / 8), layout="in_out")
    assert (hf_layout.fan_in, hf_layout.fan_out) == (64, 32)
    assert hf_layout.variance == pytest.approx(1 / (3 * 64)) and math.isfinite(hf_layout.variance)


def test_import_gradmath_does_not_import_torch() -> None:
    code = "import sys, gradmath, gradmath.diagnose; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
