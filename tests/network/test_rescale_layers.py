"""Dropout, Scale, LayerNorm's ε and the measured-only layer: rules against closed forms and
against the simulation (the layers gradmath.torch translates PyTorch models into)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath import GradmathError
from gradmath.meanfield import predict
from gradmath.network import Dense, Dropout, LayerNorm, Measured, Network, Scale
from gradmath.numeric import simulate
from gradmath.validate import compare


def test_dropout_and_scale_theory_and_simulation_agree() -> None:
    net = Network(32, Dense(256), "relu", Dropout(0.5), Dense(256), "tanh", Dropout(0.2),
                  Scale(-0.5), Dense(16))  # fmt: skip
    theory = predict(net)
    # relu halves q, dropout(0.5) doubles it, He's 2/fan_in doubles it: q_dense2 = 2·q_dense1
    assert theory.log_q[1] - theory.log_q[0] == pytest.approx(math.log(2.0), abs=1e-12)
    sim = simulate(net, n_networks=24, batch=16, seed=3)
    compare(predict(net, like=sim), sim).assert_agrees()


def test_dropout_keeps_the_gradient_scaling_and_refuses_bad_p() -> None:
    a = predict(Network(16, Dense(16), "tanh", Dense(16)))
    b = predict(Network(16, Dense(16), "tanh", Dropout(0.25), Dense(16)))
    # forward and backward second moments both × 1/(1 − p) across the dropout
    assert b.log_q[1] - a.log_q[1] == pytest.approx(-math.log(0.75))
    assert b.log_grad_q[0] - a.log_grad_q[0] == pytest.approx(-math.log(0.75))
    for p in (1.0, -0.1, True, "x"):
        with pytest.raises(GradmathError, match="`p`"):
            Dropout(p)  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="`c`"):
        Scale(math.inf)


def test_layernorm_eps_closed_form_and_simulation() -> None:
    """q_y = v/(v + ε), q̃_x = q̃_y/(v + ε) at infinite width (v = 0.01 here, ε = 1e-3)."""
    eps, v = 1e-3, 0.01
    # input width 2048: the rows' norms, whose spread the layer norm's per-row variance
    # inherits, vary by √(2/2048) only
    net = Network(2048, Dense(512, "normal", sigma_b2=0.0, gain=0.1), LayerNorm(eps=eps),
                  Dense(32, "lecun_normal"))  # fmt: skip
    theory = predict(net)
    assert math.exp(theory.log_q[0]) == pytest.approx(v, rel=1e-12)
    assert math.exp(theory.log_q[1]) == pytest.approx(v / (v + eps), rel=1e-12)
    assert theory.log_grad_q[0] - theory.log_grad_q[1] == pytest.approx(-math.log(v + eps))
    sim = simulate(net, n_networks=24, batch=16, seed=1)
    c = compare(predict(net, like=sim), sim)
    # the layer norm's forward row: finite width lowers it by ≈ 3ε/(n·v) (Jensen and the
    # biased variance), 6e-4 here, many SEs of its nearly constant value
    gap = c.theory.log_q[1] - sim.log_q[1]
    assert 0 < gap < 4 * eps / (512 * v)
    z = c.z.copy()
    z[0, 1] = np.nan
    assert np.nanmax(np.abs(z)) < 4
    with pytest.raises(GradmathError, match="`eps`"):
        LayerNorm(eps=-1.0)


def test_measured_layer_carries_moments_and_has_no_simulation() -> None:
    part = Measured(16, log_q=-2.0, log_gain=math.log(3.0), name="attn")
    assert part == Measured(16, 0.0, 0.0, "attn") != Measured(16, 0.0, 0.0, "other")
    net = Network(16, Dense(16), part, Dense(8))
    p = predict(net)
    assert [s.name for s in net.sites] == ["dense1", "measured1", "dense2"]
    assert p.log_q[1] == -2.0
    assert p.log_grad_q[0] == pytest.approx(p.log_grad_q[1] + math.log(3.0))
    with pytest.raises(GradmathError, match="no simulation rule"):
        simulate(net, n_networks=2, batch=4, seed=0)
    with pytest.raises(GradmathError, match="log_q"):
        Measured(16, math.nan, 0.0)
