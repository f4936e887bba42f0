"""meanfield.predict on concrete MLPs, and the `predict` / `phase` commands."""

import math
import time

import numpy as np
import pytest

import gradmath
from gradmath import MLP, GradmathError
from gradmath.cli import main
from gradmath.meanfield import chi1, fixed_point, predict


def test_he_relu_zero_bias_is_flat():
    p = predict(MLP.square(128, 200, activation="relu", init="kaiming_normal"))
    # q^1 = fan_in·Var·input_q = 2; after that ×(2 · 1/2) per layer, forward and backward.
    np.testing.assert_allclose(p.log_q, math.log(2.0), atol=1e-12)
    np.testing.assert_allclose(p.log_grad_q, 0.0, atol=1e-12)
    np.testing.assert_allclose(p.log_wgrad_q, 0.0, atol=1e-12)


def test_torch_default_relu_shrinks_by_one_sixth():
    # Zero bias here; PyTorch's own default bias (sigma_b2="init") is tested in
    # tests/network/test_algebra.py::test_torch_default_bias_is_honoured.
    p = predict(MLP.square(300, 20, activation="relu", init="torch_linear_default", sigma_b2=0.0))
    # fan_in·Var = 1/3 (kaiming_uniform, a = √5) times E[relu²]/q = 1/2.
    np.testing.assert_allclose(np.diff(p.log_q), math.log(1 / 6), rtol=1e-14)
    np.testing.assert_allclose(np.diff(p.log_grad_q), -math.log(1 / 6), rtol=1e-14)


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_unequal_widths_forward_and_backward_multipliers(act):
    """Widths ×4 per layer: forward multiplier n_{l−1}v_l, backward n_l v_l (ratio 4 exactly).

    He (fan_in) fixes the forward pass, He (fan_out) the backward one, Glorot's fan_avg splits
    the difference: forward + backward multipliers = 2 (Glorot & Bengio 2010, eq. 12).
    """
    widths = (4, 16, 64, 256, 1024, 4096)
    c2 = {"relu": 0.5, "linear": 1.0}[act]
    ratios = {}
    for init in ("xavier_normal", "kaiming_normal", "kaiming_normal_fan_out"):
        ini = (
            gradmath.initializer("kaiming_normal", mode="fan_out", nonlinearity="linear")
            if init == "kaiming_normal_fan_out"
            else gradmath.initializer(init) if init == "xavier_normal"
            else gradmath.initializer("kaiming_normal", nonlinearity="linear")
        )  # fmt: skip
        p = predict(MLP(widths, activation=act, init=ini))
        fwd = np.exp(np.diff(p.log_q)) / c2  # n_l v_{l+1}
        bwd = np.exp(-np.diff(p.log_grad_q)) / c2  # n_{l+1} v_{l+1}
        np.testing.assert_allclose(bwd / fwd, 4.0, rtol=1e-13)
        ratios[init] = (fwd, bwd)
    np.testing.assert_allclose(ratios["kaiming_normal"][0], 1.0, rtol=1e-13)
    np.testing.assert_allclose(ratios["kaiming_normal_fan_out"][1], 1.0, rtol=1e-13)
    fwd, bwd = ratios["xavier_normal"]
    np.testing.assert_allclose(fwd, 2 / 5, rtol=1e-13)
    np.testing.assert_allclose(fwd + bwd, 2.0, rtol=1e-13)
    # the compromise's multipliers are the harmonic means of the two He choices'
    hm = 2 / (1 / ratios["kaiming_normal"][0] + 1 / ratios["kaiming_normal_fan_out"][0])
    np.testing.assert_allclose(fwd, hm, rtol=1e-13)


def test_square_net_converges_to_the_fixed_point_and_chi1():
    init = gradmath.initializer("normal", sigma_w2=1.7)
    p = predict(MLP.square(64, 400, activation="tanh", init=init, sigma_b2=0.1))
    q_star = fixed_point("tanh", 1.7, 0.1)
    assert p.q[-1] == pytest.approx(q_star, rel=1e-12)
    step = np.diff(p.log_grad_q)[-50:]  # deep layers sit at q*
    np.testing.assert_allclose(step, -math.log(chi1("tanh", 1.7, 0.1)), rtol=1e-10)


def test_recursion_definition_step_by_step():
    """Forward and backward against the definitions, with per-layer activations and biases."""
    net = MLP((10, 30, 20, 40), activation=["tanh", "gelu", "erf"], init="glorot_uniform",
              sigma_b2=[0.1, 0.0, 0.2])  # fmt: skip
    p = predict(net, input_q=2.0, output_grad_q=3.0)
    from gradmath.meanfield import mean_dphi2, mean_phi2

    ly = net.layers
    q = [ly[0].sigma_w2 * 2.0 + 0.1]
    x2 = [2.0]
    for i in (1, 2):
        x2.append(float(mean_phi2(ly[i - 1].activation, q[-1])))
        q.append(ly[i].sigma_w2 * x2[-1] + ly[i].sigma_b2)
    np.testing.assert_allclose(p.q, q, rtol=1e-12)
    g = [3.0]
    for i in (1, 0):
        back = ly[i + 1].fan_out * ly[i + 1].weight_var
        g.insert(0, g[0] * back * float(mean_dphi2(ly[i].activation, q[i])))
    np.testing.assert_allclose(p.grad_q, g, rtol=1e-12)
    np.testing.assert_allclose(p.wgrad_q, np.array(g) * np.array(x2), rtol=1e-12)


@pytest.mark.parametrize(
    ("act", "sigma_w2"), [("relu", 4.0), ("tanh", 0.5), ("gelu", 6.0), ("sigmoid", 30.0)]
)
def test_depth_10000_is_finite_and_fast(act, sigma_w2):
    net = MLP.square(256, 10_000, activation=act,
                     init=gradmath.initializer("normal", sigma_w2=sigma_w2))  # fmt: skip
    # CPU time of the process, not wall time: on a loaded machine the wall clock mostly
    # measures waiting for a core (5-15 s at load average 16 on 2 cores, 1 s of CPU).
    t = time.process_time()
    p = predict(net)
    elapsed = time.process_time() - t
    for arr in (p.log_q, p.log_grad_q, p.log_wgrad_q):
        assert np.all(np.isfinite(arr))
    if act == "relu":
        assert p.log_q[-1] == pytest.approx(math.log(4.0) + 9999 * math.log(2.0), rel=1e-12)
    assert elapsed < 5.0  # the benchmark asks < 0.5 s of wall time on an idle machine


def test_dispatch_and_bad_input():
    with pytest.raises(GradmathError, match=r"Network or a gradmath\.MLP"):
        predict("relu")  # type: ignore[arg-type]
    with pytest.raises(GradmathError, match="`input_q`"):
        predict(MLP.square(4, 2), input_q=-1.0)
    with pytest.raises(GradmathError, match="depth"):
        MLP.square(4, 0)
    with pytest.raises(GradmathError, match="width"):
        MLP.square(0, 3)
    with pytest.raises(GradmathError, match="Unknown activation"):
        MLP.square(4, 3, activation="relux")
    zero = gradmath.initializer("normal", sigma_w2=0.0)
    # zero weights, no bias: every second moment after the first layer is exactly 0 (log −∞)
    dead = predict(MLP.square(4, 3, init=zero))
    assert np.all(np.isneginf(dead.log_q)) and np.all(np.isneginf(dead.log_grad_q[:-1]))
    res = predict(MLP.square(16, 4, activation="relu", residual=0.5))
    assert res.depth == 7 and res.select("residual").depth == 3


def test_cli_predict_and_phase(capsys, tmp_path):
    assert main(["predict", "--activation", "tanh", "--init", "glorot_normal", "--depth", "5",
                 "--width", "256", "--sigma-b2", "0.05"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "site" in out and "dense5" in out and "‖∇W^1‖/‖∇W^L‖" in out and out.count("\n") == 8
    assert main(["predict", "--activation", "relu", "--init", "he_normal", "--depth", "3000",
                 "--width", "64", "--init", "normal"]) == 0  # fmt: skip
    assert "10^" in capsys.readouterr().out
    assert main(["predict", "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err
    assert main(["phase", "tanh", "--sigma-b2", "0", "0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["0", "1"]
    fig = tmp_path / "pd.png"
    assert main(["phase", "relu", "--sigma-b2", "0", "0.1", "--figure", str(fig)]) == 0
    assert fig.exists() and fig.stat().st_size > 1000
