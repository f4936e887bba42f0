"""Batch norm over examples and positions (BatchNorm2d): theory vs the simulated network, the
flat limit exactly, and the centred weight gradient of the convolution below."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath import GradmathError
from gradmath.meanfield import predict
from gradmath.network import BatchNorm, Conv, Dense, GlobalAvgPool, Network
from gradmath.network import batchnorm_positions as positions
from gradmath.numeric import simulate
from gradmath.validate import compare


def test_one_position_is_the_flat_layer_exactly() -> None:
    # P = 1, K = 1, C = 0: k = B − 1 degrees of freedom and E[1/s²] = B/((B − 3)s²), the flat
    # layer's exact value (Yang et al. 2019), and output correlation −1/(B − 1)
    for B in (4, 8, 100):
        log_mu, log_ratio, k_y, c_y = positions.forward(np.ones((1, 1)), np.zeros((1, 1)), B)
        assert math.exp(log_ratio - log_mu) == pytest.approx(B / (B - 3), rel=1e-12)
        assert k_y[0, 0] == pytest.approx(1.0, rel=1e-12)
        assert c_y[0, 0] == pytest.approx(-1.0 / (B - 1), rel=1e-12)
        # the projection keeps (N − 2)/N of a white gradient
        assert positions.backward_factor(np.eye(1), k_y, B) == pytest.approx((B - 2) / B)


def test_too_few_degrees_of_freedom_refused() -> None:
    with pytest.raises(GradmathError, match="degrees of"):
        positions.forward(np.ones((4, 4)), np.zeros((4, 4)), 2)


def test_conv_batchnorm_stack_agrees_with_simulation() -> None:
    """Theory vs the exact simulation (normalisation over examples and positions, exact
    backward) at batch 8 on 8×8 inputs: forward, gradient and weight-gradient rows, |z| < 4
    family-wise. The convolution's weight gradient below a batch norm is the batch gradient per
    example, whose centring removes the examples' shared mean (C): with it ignored the rows of
    conv2 and conv3 would be e^0.94 and e^1.45 times larger (z ≈ 30 and 55 here)."""
    net = Network((3, 8, 8), Conv(32, 3, padding=1), BatchNorm(), "relu",
                  Conv(32, 3, padding=1), BatchNorm(), "relu",
                  Conv(32, 3, padding=1, stride=2), BatchNorm(), "relu",
                  GlobalAvgPool(), Dense(10))  # fmt: skip
    sim = simulate(net, n_networks=48, batch=8, seed=3)
    theory = predict(net, like=sim)
    compare(theory, sim).assert_agrees()
    assert np.all(theory.select("batchnorm").log_q == 0.0)
