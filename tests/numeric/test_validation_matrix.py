"""The validation matrix: mean-field theory against sampled networks for every activation.

For every catalogue activation, with the initializer that fits it and one that does not, at
depths 1, 5, 20 and widths 64, 256, the simulated forward (q), backward (q̃) and weight-gradient
second moments must agree with ``meanfield.predict`` within the Monte-Carlo error.

Threshold. The matrix makes M = Σ 3·depth comparisons, each at the per-comparison level of
``bonferroni_z(M, alpha=0.01)`` (≈ 4.7 normal standard deviations; |z| < 6.1 under the Student-t
law of an SE from 32 networks, gradmath.validate), so that if theory and simulation agreed
exactly the whole matrix would raise a false alarm with probability at most 1%.

Finite width. Mean-field theory is exact only as width → ∞; a simulation at width n differs by
O(depth/n) corrections that the Monte-Carlo SE does not cover. The sizes below (32 networks of
16 examples) give SEs of 0.01–0.1 in the log; the configurations whose finite-width deviation is
larger than that resolution are listed in ``FINITE_WIDTH``. For them the test asserts both that
the mean-field prediction disagrees (so the deviation is real and the matrix has the power to
see it) and that the finite-width theory (``gradmath.meanfield.finite_width``: the exact law of
the forward chain and of the tangent chain that carries the gradients, computed on a grid, with
the O(1/n) correction for Keras' truncated-normal weights) agrees, at the same threshold. The
tolerance is never widened.

The GELU case is large: E[(h^19)²] is 0.097 at width 256 against 0.0106 at infinite width (the
net drifts slowly towards q* = 0 along a nearly critical length map, where the fluctuations of
q accumulate); the O(1/n) expansion gives 0.025 there, the exact law 0.080 (E[h²] at layer 20).
The backward profile needs the tangent chain, not gradient independence: for softplus the
correlation between the signal and the back-propagated gradient (a rank-one mode that grows
faster than χ₁) moves q̃^1 by a factor e^{1.8} at width 64.

A second family, ``NARROW``, runs width 16 and 32 at depths 10 to 50, where depth/width reaches
3, for ReLU (against the exact law of Hanin & Nica, on the logs of one example's moments),
tanh, GELU and SELU (against the finite-width theory), with its own Bonferroni threshold.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import gradmath
from gradmath import MLP, GradmathError
from gradmath.meanfield import predict
from gradmath.numeric import length_chain, simulate
from gradmath.validate import bonferroni_z, compare, t_threshold

#: The initializer each activation is designed for (He for the ReLU family and its smooth
#: cousins, Glorot for the symmetric saturating ones, LeCun for SELU, linear and abs).
FITS = {
    "linear": "lecun_normal",
    "abs": "lecun_normal",
    "sigmoid": "glorot_normal",
    "tanh": "glorot_normal",
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
    "gelu": "he_normal",
    "silu": "he_normal",
    "softplus": "he_normal",
    "erf": "glorot_normal",
    "hard_tanh": "glorot_normal",
    "softsign": "glorot_normal",
}
#: One that does not fit (and a different distribution, uniform, with a bias).
MISFITS = {
    "he_normal": "glorot_uniform",
    "glorot_normal": "he_uniform",
    "lecun_normal": "he_uniform",
}
DEPTHS = (1, 5, 20)
WIDTHS = (64, 256)
N_NETWORKS, BATCH = 32, 16

#: (activation, fits, width, depth) whose finite-width deviation exceeds the SE (see above).
#: Found by running the matrix, all at depth 20 (corrections grow like depth/width): gelu, silu
#: and softplus with He weights sit near an attracting q* = 0 / slow fixed point where the
#: O(1/n) corrections accumulate (gelu's forward profile reaches theory at width 1024, checked
#: with an independent forward pass). selu and hard_tanh at width 64 (|z| ≈ 5) were listed
#: while z was referred to the normal law; under the Student-t law of 32 networks they are
#: within the Monte-Carlo resolution.
FINITE_WIDTH: set[tuple[str, bool, int, int]] = {
    ("gelu", True, 64, 20),
    ("gelu", True, 256, 20),
    ("silu", True, 64, 20),
    ("softplus", True, 64, 20),
    ("softplus", True, 256, 20),
}

CASES = [
    (act, fit, width, depth)
    for act in FITS
    for fit in (True, False)
    for width in WIDTHS
    for depth in DEPTHS
]
Z_MAX = bonferroni_z(sum(3 * d for *_, d in CASES), alpha=0.01)


def test_catalogue_is_covered() -> None:
    assert set(FITS) == set(gradmath.activations())


def _mlp(act: str, fit: bool, width: int, depth: int) -> MLP:
    init = FITS[act] if fit else MISFITS[FITS[act]]
    return MLP.square(width, depth, activation=act, init=init, sigma_b2=0.0 if fit else 0.1)


@functools.cache
def _comparison(act: str, fit: bool, width: int, depth: int):  # type: ignore[no-untyped-def]
    mlp = _mlp(act, fit, width, depth)
    seed = 1000 * WIDTHS.index(width) + 10 * depth + fit
    return compare(predict(mlp), simulate(mlp, n_networks=N_NETWORKS, batch=BATCH, seed=seed))


@pytest.mark.parametrize(
    ("act", "fit", "width", "depth"),
    [
        pytest.param(
            *case,
            marks=[pytest.mark.slow] if case[2] > 64 else [],
            id=f"{case[0]}-{'fit' if case[1] else 'misfit'}-w{case[2]}-d{case[3]}"
            + ("-finite-width" if case in FINITE_WIDTH else ""),
        )
        for case in CASES
    ],
)
def test_theory_matches_simulation(act: str, fit: bool, width: int, depth: int) -> None:
    comparison = _comparison(act, fit, width, depth)
    if (act, fit, width, depth) in FINITE_WIDTH:
        with pytest.raises(GradmathError, match="disagree"):
            comparison.assert_agrees(Z_MAX)
        finite = predict(_mlp(act, fit, width, depth), width_corrections="exact")
        compare(finite, comparison.sim).assert_agrees(Z_MAX)
    else:
        comparison.assert_agrees(Z_MAX)


def test_threshold_is_bonferroni() -> None:
    m = sum(3 * d for *_, d in CASES)
    assert m == len(gradmath.activations()) * 2 * 2 * 3 * (1 + 5 + 20)
    assert 4.5 < Z_MAX < 5.0  # ≈ 4.71: a 1% family-wise false-alarm rate over the matrix


#: The activations of FINITE_WIDTH, with Gaussian weights of the same σ_w² as their fitted
#: initializer (the chain is exact for Gaussian weights; the matrix uses Keras' truncated ones).
CHAIN_ACTS = sorted({case[0] for case in FINITE_WIDTH})
CHAIN_DEPTH, CHAIN_WIDE = 20, 65536
#: 2 checks × 20 layers per activation, 1% family-wise false-alarm rate.
CHAIN_Z = bonferroni_z(2 * CHAIN_DEPTH * len(CHAIN_ACTS), 0.01)


@pytest.mark.slow
@pytest.mark.parametrize("act", CHAIN_ACTS)
def test_finite_width_forward_law(act: str) -> None:
    sigma_w2 = _mlp(act, True, 64, CHAIN_DEPTH).layers[1].sigma_w2
    gauss = gradmath.initializer("normal", sigma_w2=sigma_w2)

    narrow = MLP.square(64, CHAIN_DEPTH, activation=act, init=gauss)
    chain, chain_se = length_chain(narrow, samples=20000, seed=2)
    sim = simulate(narrow, n_networks=N_NETWORKS, batch=BATCH, seed=3)
    z = (sim.log_q - np.log(chain)) / np.hypot(sim.log_q_se, chain_se / chain)
    # The simulation's SE rests on N_NETWORKS networks: Student t (the chain's 20,000 are ∞).
    assert np.abs(z).max() < t_threshold(CHAIN_Z, N_NETWORKS - 1), z

    wide = MLP.square(CHAIN_WIDE, CHAIN_DEPTH, activation=act, init=gauss)
    chain, chain_se = length_chain(wide, samples=48, seed=1)
    z = (chain - predict(wide).q) / chain_se
    assert np.abs(z).max() < CHAIN_Z, z


#: Narrow and deep: activation -> (initializer, ((width, depth), …)), widths 16 and 32. The
#: exact chain costs 10-30 s per cell on a loaded 2-core machine, so each smooth activation has
#: one cell (the two widths are shared out) and ReLU, whose law is closed-form, has both.
#: GELU stops at depth 20: deeper, its per-network moments are so heavy-tailed (a few networks
#: keep a large signal, the rest collapse towards q = 0) that 128 networks cannot estimate their
#: mean (effective sample size below 10, the SE is meaningless), although the theory's mean is
#: exact.
NARROW_ACTS = {
    "relu": ("kaiming_normal_", ((16, 50), (32, 50))),  # Gaussian: the exact law needs it
    "tanh": ("glorot_normal", ((16, 40), (32, 40))),
    "gelu": ("he_normal", ((16, 10), (32, 20))),
    "selu": ("lecun_normal", ((16, 40), (32, 40))),
}
NARROW = [(a, w, d) for a, (_, cells) in NARROW_ACTS.items() for w, d in cells]
#: ReLU: 4 comparisons (typical value and spread of log q and log q̃) per layer; others 3.
NARROW_Z = bonferroni_z(sum((4 if a == "relu" else 3) * d for a, _, d in NARROW), alpha=0.01)
NARROW_NETS = 128


@pytest.mark.slow
@pytest.mark.parametrize(
    ("act", "width", "depth"), NARROW, ids=[f"{a}-w{w}-d{d}" for a, w, d in NARROW]
)
def test_narrow_nets_follow_finite_width_theory(act: str, width: int, depth: int) -> None:
    net = MLP.square(width, depth, activation=act, init=NARROW_ACTS[act][0])
    seed = 7000 + 100 * width + depth
    if act != "relu":
        sim = simulate(net, n_networks=NARROW_NETS, batch=16, seed=seed)
        compare(predict(net, width_corrections=True), sim).assert_agrees(NARROW_Z)
        if depth / width >= 1.25:  # mean-field theory is out of its depth
            with pytest.raises(GradmathError, match="disagree"):
                compare(predict(net), sim).assert_agrees(NARROW_Z)
        return
    # ReLU + He + Gaussian weights: one example per network, so each network's Q is one
    # example's (1/n)‖h^l‖² (or ‖δ^l‖²), whose law is exact (Hanin & Nica 2019): the typical
    # value and the spread of log Q across networks (compare's spread check) against the exact
    # digamma/trigamma sums. The mean of Q itself is carried by rare networks at depth ≫ width
    # (few effective networks, an unreliable SE), its log is not.
    sim = simulate(net, n_networks=4 * NARROW_NETS, batch=1, seed=seed)
    c = compare(predict(net, like=sim, width_corrections=True), sim, spread=True)
    assert c.z_typical is not None and c.z_spread is not None
    for z in (c.z_typical[:2], c.z_spread[:2]):
        assert np.max(np.abs(z)) < NARROW_Z, z
    if depth == 50:  # infinite width: log Q → log E[Q] = log 2, no spread
        assert sim.mean_log is not None
        se = c.sim.sd_log[0] / np.sqrt(4 * NARROW_NETS)  # type: ignore[index]
        assert np.max(np.abs((sim.mean_log[0] - np.log(2.0)) / se)) > NARROW_Z
