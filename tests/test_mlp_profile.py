"""The shared architecture spec and the log-space profile container."""

import subprocess
import sys

import numpy as np
import pytest

import gradmath
from gradmath import MLP, GradmathError, Profile


def test_mlp_normalises_per_layer_values():
    net = MLP(
        (10, 20, 30, 5),
        activation=["relu", "tanh", "linear"],
        init="glorot_uniform",
        sigma_b2=[0.0, 0.1, 0.2],
    )
    assert net.depth == 3
    assert [a.name for a in net.activation] == ["relu", "tanh", "linear"]
    assert [ly.fan_in for ly in net.layers] == [10, 20, 30]
    assert [ly.fan_out for ly in net.layers] == [20, 30, 5]
    assert net.layers[1].weight_var == 2 / (20 + 30)
    assert net.layers[1].sigma_w2 == 20 * 2 / 50
    assert net.sigma_b2 == (0.0, 0.1, 0.2)
    assert MLP.square(8, 4).widths == (8,) * 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (10,)}, "at least two layer sizes"),
        ({"widths": (10, 0, 5)}, r"`widths\[1\]` \(=0\) must be a positive integer"),
        (
            {"widths": (10, 5), "activation": ["relu", "tanh"]},
            "has 2 entries but the network has 1",
        ),
        ({"widths": (10, 5), "activation": "rleu"}, "Did you mean 'relu'"),
        ({"widths": (10, 5), "sigma_b2": -1.0}, r"`sigma_b2` \(=-1.0\) must be finite and >= 0"),
        ({"widths": (10, 5, 6), "residual": 1.0}, "equal hidden widths"),
        ({"widths": (10, 5), "residual": float("inf")}, "finite branch scale"),
    ],
)
def test_mlp_rejects_bad_input(kwargs, message):
    with pytest.raises(GradmathError, match=message):
        MLP(**kwargs)


def test_square_rejects_bad_depth_and_width():
    with pytest.raises(GradmathError, match=r"`depth` \(=0\)"):
        MLP.square(8, 0)
    with pytest.raises(GradmathError, match=r"`width` \(=0\)"):
        MLP.square(0, 3)


def test_profile_is_log_space_and_refuses_to_overflow():
    net = MLP.square(4, 3)
    p = Profile(net, np.array([0.0, 1.0, 800.0]), np.zeros(3), np.log([1.0, 2.0, 3.0]))
    assert p.grad_q.tolist() == [1.0, 1.0, 1.0]
    assert p.wgrad_q == pytest.approx([1.0, 2.0, 3.0])
    with pytest.raises(GradmathError, match="use `log_q`"):
        _ = p.q
    assert p.log_wgrad_norm2[0] == pytest.approx(np.log(16.0))
    assert p.first_last_ratio == pytest.approx(np.sqrt(1 / 3))
    with pytest.raises(ValueError):
        p.log_q[0] = 1.0  # frozen arrays: a profile never changes under you
    with pytest.raises(GradmathError, match=r"`log_q` has shape \(2,\)"):
        Profile(net, np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(GradmathError, match=r"inf.* at site dense2"):
        Profile(net, np.array([0.0, np.inf, 0.0]), np.zeros(3), np.zeros(3))


def test_import_is_light():
    heavy = "('sympy', 'matplotlib', 'scipy')"
    code = f"import gradmath, sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "gradmath", "--help"], capture_output=True, text=True, check=True
    )
    for cmd in ("derive", "predict", "phase", "validate", "notes"):
        assert cmd in out.stdout


def test_engines_load_lazily():
    with pytest.raises(AttributeError):
        _ = gradmath.no_such_thing
