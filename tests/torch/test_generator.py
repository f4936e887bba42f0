"""simulate(generator="torch"): PyTorch draws the weights and data, NumPy does the rest.

Determinism per generator (grouping, checkpointing), the exact laws of linear and He/ReLU nets
at |z| < 4 from the reported standard errors for every weight distribution, and errors.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from gradmath import MLP, GradmathError, initializer
from gradmath.numeric import simulate
from gradmath.numeric.generators import TorchGenerator

simulation = sys.modules["gradmath.numeric.simulation"]


def _arrays(p):  # type: ignore[no-untyped-def]
    return np.concatenate([p.log_q, p.log_grad_q, p.log_wgrad_q, p.log_grad_q_se])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_seed_gives_one_result_however_networks_are_grouped_or_checkpointed(dtype) -> None:  # type: ignore[no-untyped-def]
    mlp = MLP.square(12, 9, activation="tanh", init="he_uniform")
    args = {"n_networks": 5, "batch": 6, "seed": 7, "generator": "torch", "dtype": dtype}
    ref = _arrays(simulate(mlp, **args))
    np.testing.assert_array_equal(_arrays(simulate(mlp, **args, memory_budget=20_000)), ref)
    assert simulation.memory_plan(mlp, batch=6, n_networks=5, memory_budget=20_000)[1] < 9
    old = simulation.MAX_STACK
    simulation.MAX_STACK = 2
    try:
        np.testing.assert_array_equal(_arrays(simulate(mlp, **args)), ref)
    finally:
        simulation.MAX_STACK = old
    # another stream than NumPy's, and than another seed's
    assert not np.array_equal(_arrays(simulate(mlp, **{**args, "generator": "numpy"})), ref)
    assert not np.array_equal(_arrays(simulate(mlp, **{**args, "seed": 8})), ref)


@pytest.mark.parametrize("init", ["normal", "uniform", "truncated_normal", "orthogonal"])
def test_linear_net_moments_are_exact_in_float32(init: str) -> None:
    # Linear nets at any width: q^{l+1} = σ_w² q^l and q̃^l = σ_w² q̃^{l+1} exactly, for any
    # zero-mean weight law with that variance (theory.md), so the sampled weights' variance and
    # independence are what is tested, per distribution the torch generator draws.
    L = 6
    if init in ("uniform", "truncated_normal"):
        ini = initializer("variance_scaling", scale=1.3, distribution=init)
    elif init == "normal":
        ini = initializer("normal", sigma_w2=1.3)
    else:
        ini = initializer("orthogonal")
    s2 = ini.sigma_w2(8, 8)
    mlp = MLP.square(8, L, activation="linear", init=ini, sigma_b2=0.0)
    p = simulate(mlp, n_networks=300, batch=8, seed=2, dtype=np.float32, generator="torch")
    q = s2 ** np.arange(1, L + 1.0)
    gq = s2 ** np.arange(L - 1, -1, -1.0)
    for name, exact in (("q", q), ("grad_q", gq)):
        z = (getattr(p, f"log_{name}") - np.log(exact)) / getattr(p, f"log_{name}_se")
        assert np.all(np.abs(z) < 4), (name, z)


def test_relu_he_is_exactly_constant() -> None:
    p = simulate(
        MLP.square(16, 6, activation="relu", init="he_normal"),
        n_networks=100,
        batch=8,
        seed=10,
        dtype=np.float32,
        generator="torch",
    )
    assert np.all(np.abs((p.log_q - math.log(2.0)) / p.log_q_se) < 4)


def test_generator_matches_numpy_signatures() -> None:
    g = TorchGenerator(np.random.SeedSequence(0))
    out = np.empty((3, 4), dtype=np.float32)
    assert g.standard_normal(out=out, dtype=np.float32) is out
    assert g.standard_normal(5).dtype == np.float64 and g.standard_normal(5).shape == (5,)
    u = g.random((1000,), dtype=np.float32)
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1
    state = g.bit_generator.state
    a = g.standard_normal(7)
    g.bit_generator.state = state
    np.testing.assert_array_equal(g.standard_normal(7), a)


def test_unknown_generator() -> None:
    with pytest.raises(GradmathError, match="generator"):
        simulate(MLP.square(4, 2), n_networks=2, batch=2, seed=0, generator="cupy")  # type: ignore[arg-type]
