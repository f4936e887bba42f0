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
16 examples) give SEs of 0.01–0.1 in the log; configurations whose finite-width deviation is
larger than that resolution are listed in ``FINITE_WIDTH``: for them the test asserts that
``assert_agrees`` reports the disagreement (so it is not hidden by a lack of power, and any other
error still fails), and it fails loudly if a change makes them agree. The tolerance is never
widened.

Where that deviation comes from, and that it vanishes with width, is tested below for the
forward pass (``test_finite_width_forward_law``). For Gaussian weights one example's forward
second moment follows an exact scalar Markov chain at any width (gradmath.numeric.length_chain),
sampled at O(width) per layer. Two checks per affected activation: the sampled networks at the
failing width agree with that chain at the same width (so the deviation is the finite-width law,
not an error in simulate), and the chain at width 65,536 agrees with ``meanfield.predict`` (so
the bias falls below the resolution as the width grows; the O(n²) networks themselves cannot be
run that wide here). The GELU case is large: E[(h^19)²] is 0.097 at width 256 against 0.0106 at
infinite width (the net drifts slowly towards q* = 0 along a nearly critical length map, where
the fluctuations of q accumulate); the chain gives 0.026 at width 1024, 0.0135 at 4096 and
0.0108 at 65,536. The backward profile deviates in step (its factors E[φ'(h)²] are taken at the
larger q); gradmath does not predict the backward finite-width law, so those cells keep
asserting the disagreement.
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
