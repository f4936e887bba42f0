"""The validation matrix of the composed blocks: theory against sampled networks.

Every block of the network algebra that issue 10 adds (layer norm, pre-LN and post-LN residual
blocks, ReZero, SkipInit, Fixup, orthogonal weights, PyTorch's default Linear with its bias),
each with ReLU, tanh and GELU, as a stack of ``BLOCKS`` blocks of width ``WIDTH``, simulated
with 32 networks of 16 examples and compared site by site with ``meanfield.predict`` at the
simulation's conditions. Threshold: ``bonferroni_z(M, alpha=0.01)`` for the M comparisons of the
whole matrix, so that if theory and simulation agreed exactly the matrix would raise a false
alarm with probability at most 1% (gradmath.validate). The tolerance is never widened.
"""

from __future__ import annotations

import functools

import pytest

from gradmath.meanfield import predict
from gradmath.network import (
    Dense,
    LayerNorm,
    Network,
    Residual,
    Serial,
    fixup_block,
    post_ln_block,
    pre_ln_block,
    repeat,
)
from gradmath.numeric import simulate
from gradmath.validate import bonferroni_z, compare

WIDTH, BLOCKS, N_NETWORKS, BATCH = 128, 6, 32, 16
ACTS = ("relu", "tanh", "gelu")
INIT = {"relu": "he_normal", "tanh": "glorot_normal", "gelu": "he_normal"}


def _block(kind: str, act: str) -> Network:
    n, L, init = WIDTH, BLOCKS, INIT[act]
    stem = (Dense(n, init), act)
    if kind == "layernorm":
        body = repeat(Serial(Dense(n, init), LayerNorm(), act), L)
    elif kind == "pre_ln":
        body = repeat(pre_ln_block(n, act, alpha=1.0, init=init), L)
    elif kind == "post_ln":
        body = repeat(post_ln_block(n, act, alpha=1.0, init=init), L)
    elif kind == "rezero":  # Bachlechner et al. (2020): α = 0 at initialisation
        body = repeat(Residual(Serial(Dense(n, init), act, Dense(n, init)), 0.0), L)
    elif kind == "skipinit":  # De & Smith (2020)-style small branch scale α = 1/√L
        body = repeat(Residual(Serial(Dense(n, init), act, Dense(n, init)), L**-0.5), L)
    elif kind == "fixup":  # Zhang, Dauphin & Ma (2019), m = 2 layers per branch
        body = repeat(fixup_block(n, L, act, m=2, init=init), L)
    elif kind == "orthogonal":
        body = repeat(Serial(Dense(n, "orthogonal"), act), L)
    elif kind == "torch_default":  # nn.Linear's own weight and bias init
        body = repeat(Serial(Dense(n, "torch_linear_default", sigma_b2="init"), act), L)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return Network(n, *stem, body, Dense(16, init))


KINDS = ("layernorm", "pre_ln", "post_ln", "rezero", "skipinit", "fixup", "orthogonal",
         "torch_default")  # fmt: skip
CELLS = [(k, a) for k in KINDS for a in ACTS]


@functools.cache
def _threshold() -> float:
    m = 0
    for kind, act in CELLS:
        sites = _block(kind, act).sites
        m += 2 * len(sites) + sum(s.has_weights for s in sites)
    return bonferroni_z(m, alpha=0.01)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "act"), CELLS)
def test_block_theory_matches_simulation(kind: str, act: str) -> None:
    net = _block(kind, act)
    seed = 1000 + CELLS.index((kind, act))
    sim = simulate(net, n_networks=N_NETWORKS, batch=BATCH, seed=seed)
    compare(predict(net, like=sim), sim).assert_agrees(_threshold())
