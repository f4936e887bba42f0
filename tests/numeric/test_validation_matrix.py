"""The validation matrix: mean-field theory against sampled networks for every activation.

For every catalogue activation, with the initializer that fits it and one that does not, at
depths 1, 5, 20 and widths 64, 256, the simulated forward (q), backward (q̃) and weight-gradient
second moments must agree with ``meanfield.predict`` within the Monte-Carlo error.

Threshold. The matrix makes M = Σ 3·depth comparisons; each |z| must stay below
``bonferroni_z(M, alpha=0.01)`` (≈ 4.8), so that if theory and simulation agreed exactly the
whole matrix would raise a false alarm with probability at most 1% (gradmath.validate).

Finite width. Mean-field theory is exact only as width → ∞; a simulation at width n differs by
O(depth/n) corrections that the Monte-Carlo SE does not cover. The sizes below (32 networks of
16 examples) give SEs of 0.01–0.1 in the log; configurations whose finite-width deviation is
larger than that resolution are listed in ``FINITE_WIDTH`` and marked ``xfail(strict=True)``:
the test then asserts that the disagreement is really there (so it is not hidden by a lack of
power), and will fail loudly if a change makes them agree. The tolerance is never widened.

Not yet resolved (issue 4 asks for a width where the bias is below the resolution): gelu with
He weights at depth 20 and width 1024 (same 32 networks × 16 examples, seed 6024) still
disagrees, and in the *backward* profile: |z| ≈ 6.2 on log E[δ²] and log E[∂W²] of layers 1–5,
relative error ≈ +2.6, against a Bonferroni threshold of 4.15 for the five wide cases. A gap
that does not shrink from width 256 to 1024 is not an O(depth/n) finite-width effect; the gelu
backward theory (or the slow q* = 0 fixed point) needs checking. One such case costs ~60–150 s
on 2 cores, so wide versions of these tests do not fit the CI budget; none is added yet.
"""

from __future__ import annotations

import functools

import pytest

import gradmath
from gradmath import MLP
from gradmath.meanfield import predict
from gradmath.numeric import simulate
from gradmath.validate import bonferroni_z, compare

#: The initializer each activation is designed for (He for the ReLU family and its smooth
#: cousins, Glorot for the symmetric saturating ones, LeCun for SELU and linear).
FITS = {
    "linear": "lecun_normal",
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
#: with an independent forward pass); selu and hard_tanh at width 64 are 5σ-level deviations.
FINITE_WIDTH: set[tuple[str, bool, int, int]] = {
    ("selu", True, 64, 20),
    ("gelu", True, 64, 20),
    ("gelu", True, 256, 20),
    ("silu", True, 64, 20),
    ("softplus", True, 64, 20),
    ("softplus", True, 256, 20),
    ("hard_tanh", True, 64, 20),
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
    return MLP.square(width, depth, activation=act, init=init, bias_var=0.0 if fit else 0.1)


@functools.cache
def _comparison(act: str, fit: bool, width: int, depth: int):  # type: ignore[no-untyped-def]
    mlp = _mlp(act, fit, width, depth)
    seed = 1000 * WIDTHS.index(width) + 10 * depth + fit
    return compare(predict(mlp), simulate(mlp, n_networks=N_NETWORKS, batch=BATCH, seed=seed))


def _marks(case: tuple[str, bool, int, int]) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.slow] if case[2] > 64 else []
    if case in FINITE_WIDTH:
        marks.append(pytest.mark.xfail(strict=True, reason="finite-width deviation (module doc)"))
    return marks


@pytest.mark.parametrize(
    ("act", "fit", "width", "depth"),
    [
        pytest.param(
            *case,
            marks=_marks(case),
            id=f"{case[0]}-{'fit' if case[1] else 'misfit'}-w{case[2]}-d{case[3]}",
        )
        for case in CASES
    ],
)
def test_theory_matches_simulation(act: str, fit: bool, width: int, depth: int) -> None:
    _comparison(act, fit, width, depth).assert_agrees(Z_MAX)


def test_threshold_is_bonferroni() -> None:
    m = sum(3 * d for *_, d in CASES)
    assert m == 13 * 2 * 2 * 3 * (1 + 5 + 20)
    assert 4.5 < Z_MAX < 5.0  # ≈ 4.71: a 1% family-wise false-alarm rate over the matrix
