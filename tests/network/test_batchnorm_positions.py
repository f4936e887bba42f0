"""Batch norm over examples and positions (BatchNorm2d): theory vs the simulated network, the
flat limit exactly, and the centred weight gradient of the convolution below."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath import GradmathError
from gradmath.meanfield import predict
from gradmath.network import (
    AvgPool,
    BatchNorm,
    Conv,
    Dense,
    GlobalAvgPool,
    Network,
    Residual,
    Serial,
)
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
        log_kept = positions.backward(np.eye(1), None, k_y, c_y, B)[0]
        assert math.exp(log_kept) == pytest.approx((B - 2) / B, rel=1e-12)


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


def _one_position(width: int, act: str, depth: int = 3) -> Network:
    layers: list = []
    for _ in range(depth):
        layers += [Conv(width, 1), BatchNorm(), act]
    return Network((width, 1, 1), *layers, Conv(width, 1), BatchNorm(), GlobalAvgPool(),
                   Dense(10))  # fmt: skip


def _flat(width: int, act: str, depth: int = 3) -> Network:
    layers: list = []
    for _ in range(depth):
        layers += [Dense(width), BatchNorm(), act]
    return Network(width, *layers, Dense(width), BatchNorm(), Dense(10))


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "linear"])
def test_one_position_gradients_are_the_flat_layers_exactly(act: str) -> None:
    """At one position (1×1 convolutions) the batch form of the gradient (a batch norm's
    centring, carried through convolution and activation as I ⊗ (G − O) + J ⊗ O, and D = φ'(y)
    tied to the batch norm's own output y) gives the flat layer's exact finite-B recursion
    (Yang et al. 2019; gradmath/meanfield/batchnorm.py) for every gradient row, at every
    batch: for a positively homogeneous φ the Gaussian and spherical moments coincide."""
    for B in (4, 8, 32, None):
        pos = predict(_one_position(16, act), batch=B)
        flat = predict(_flat(16, act), batch=B)
        rows = np.delete(pos.log_grad_q, -2)  # the global average pool has no flat row
        np.testing.assert_allclose(rows, flat.log_grad_q, rtol=0, atol=1e-9)


def test_backward_trace_is_the_flat_trace_factor_for_any_activation() -> None:
    """positions.backward at P = 1 with the sphere's moments as kernels: E tr(P_y DΓD P_y)/N
    for Γ = P (a centred gradient) is (B − 1)·T/B, T = BatchMoments.trace_factor, for tanh
    too (the identity is algebraic, not a property of the law)."""
    from gradmath.meanfield import batch_moments

    for B in (4, 8, 20):
        m = batch_moments("tanh", B)
        kernels = tuple(np.full((1, 1), v) for v in
                        (m.dphi2, m.dphi_cross, m.hdphi2, m.hdphi_cross))  # fmt: skip
        k_y, c_y = np.ones((1, 1)), np.full((1, 1), -1.0 / (B - 1))
        g, o = np.ones((1, 1)), np.full((1, 1), -1.0 / (B - 1))  # P's form, diagonal 1
        log_kept, gh, oh, _ = positions.backward(g, o, k_y, c_y, B, kernels)
        # Γ = γP with γ(1 − 1/B) = 1
        gamma = B / (B - 1)
        expected = gamma * (B - 1) * m.trace_factor(B) / B
        assert math.exp(log_kept) == pytest.approx(expected, rel=1e-12)
        # the form after the batch norm is centred again: O/G = −1/(B − 1)
        assert gh[0, 0] == pytest.approx(1.0) and oh is not None
        assert oh[0, 0] == pytest.approx(-1.0 / (B - 1), rel=1e-12)


def test_one_position_stack_agrees_with_simulation() -> None:
    """1×1 Conv → BatchNorm → ReLU ×4 at batch 8 (N = 8 numbers per batch norm) against the
    exact simulation, |z| < 4 family-wise on every row. Without the batch form of the gradient
    (a white gradient reaching each batch norm) the theory sat under the simulation by
    ≈ +0.12 in log q̃ per batch norm (+0.38 at conv1, z ≈ 7 here)."""
    layers: list = []
    for _ in range(4):
        layers += [Conv(128, 3, padding=1), BatchNorm(), "relu"]
    net = Network((128, 1, 1), *layers, GlobalAvgPool(), Dense(10))
    sim = simulate(net, n_networks=64, batch=8, seed=3)
    compare(predict(net, like=sim), sim).assert_agrees()


def _block(width: int, down: bool) -> list:
    stride = 2 if down else 1
    branch = Serial(Conv(width, 3, padding=1, stride=stride), BatchNorm(), "relu",
                    Conv(width, 3, padding=1), BatchNorm())  # fmt: skip
    shortcut = Serial(Conv(width, 1, stride=stride), BatchNorm()) if down else None
    return [Residual(branch, shortcut=shortcut), "relu"]


@pytest.mark.slow
def test_resnet_blocks_at_few_positions_agree_with_simulation() -> None:
    """ResNet's BasicBlocks (identity and downsampling shortcuts, ReLU after the sum) from 4×4
    to 2×2 to 1×1 positions at batch 8, so the batch norms normalise N = 128, 32 and 8
    numbers: every row against the exact simulation, |z| < 4 (calibrated, family-wise over
    the comparison). What it needs: the batch form of the gradient through convolutions,
    activations and residual sums, D tied to the batch norm feeding the sum (Tied over the
    sum's sides), and that batch norm's output drawn with its exact finite-N law (Gaussian
    draws put the shortcut's batch-norm rows at 1×1 ≈ e^−0.09 off, z ≈ −3, and e^−0.12 at
    widths 256/512). Width 128: the theory is the infinite-width limit, and each batch norm
    adds ≈ 2/width to the simulated gradient (Yang et al. 2019's O(1/n)), +0.05 over this net."""
    layers: list = [Conv(128, 3, padding=1), BatchNorm(), "relu"]
    for down in (True, False, True, False):
        layers += _block(128, down)
    net = Network((64, 4, 4), *layers, GlobalAvgPool(), Dense(10))
    sim = simulate(net, n_networks=48, batch=8, seed=3)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_tanh_after_batch_norm_at_one_position_agrees_with_simulation() -> None:
    """tanh after a batch norm over N = 8 numbers: the output is on the sphere, not Gaussian
    (E[tanh(y)²] is 6 % above the Gaussian value at B = 8, E[tanh'(y)²] 7 % below), so the
    activation integrates over the batch norm's exact draws. With the Gaussian closed forms
    the forward rows sat e^0.06 above the theory (z ≈ 9) and the gradients e^±0.3 off."""
    layers: list = []
    for _ in range(4):
        layers += [Conv(128, 1), BatchNorm(), "tanh"]
    net = Network((128, 1, 1), *layers, GlobalAvgPool(), Dense(10))
    sim = simulate(net, n_networks=48, batch=8, seed=4)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_weight_gradient_after_average_pooling_agrees_with_simulation() -> None:
    """Conv → BatchNorm → ReLU → AvgPool → Conv → BatchNorm → ReLU → global pool at batch 8:
    every row against the exact simulation, |z| < 4 family-wise. The second convolution's
    weight gradient pairs δ with its input through the batch norm's projection off its own
    output y, and ReLU's φ'(y) is not independent of y: y·φ'(y) = relu(y) adds up coherently
    over the positions of the pooled gradient. With φ' taken independently of y (the
    decoupled :func:`weight_gradient`) that row sat e^−0.15 under the simulation (z −3.1
    here, −4.3 at batch 32, e^−0.18 at width 128); tanh, whose y·φ'(y) is odd, is unaffected."""
    net = Network((3, 8, 8), Conv(32, 3, padding=1), BatchNorm(), "relu", AvgPool(2),
                  Conv(32, 3, padding=1), BatchNorm(), "relu",
                  GlobalAvgPool(), Dense(10))  # fmt: skip
    sim = simulate(net, n_networks=32, batch=8, seed=3)
    compare(predict(net, like=sim), sim).assert_agrees()


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_tied_weight_gradient_at_one_position_is_the_decoupled_one(act: str) -> None:
    """At one position X = (A − A_c)·I + A_c·J, which the centring turns into (A − A_c)·M,
    so the pairing is A − A_c whatever D does: the tied terms (tr(MΓMX), the projection's
    yᵀΓMXy and (yᵀΓy)(yᵀXy)) must combine to it exactly on any draws, as the decoupled
    formula's do."""
    from gradmath.activations import activation
    from gradmath.network import draws

    B = 8
    one, zero = np.ones((1, 1)), np.zeros((1, 1))
    y = draws.batchnorm_batches(one, zero, B, seed=1)
    f = activation(act).deriv(y)
    kf, cf = float(np.mean(f * f)), float(np.mean(f[:, 0] * f[:, 1]))
    g, o = one, np.full((1, 1), -1.0 / (B - 1))  # a centred gradient above the activation
    a, ac = np.full((1, 1), 1.3), np.full((1, 1), 0.4)
    _, _, k_y, c_y = positions.forward(one, zero, B)
    exact = positions.tied_weight_gradient(g, o, a, ac, y, activation(act).deriv)
    decoupled = positions.weight_gradient(g * kf, o * cf, a, ac, k_y, c_y, B)
    assert exact == pytest.approx(1.3 - 0.4, rel=1e-12)
    assert decoupled == pytest.approx(1.3 - 0.4, rel=1e-12)
