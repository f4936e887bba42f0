"""The (u, s) carrier of simulated tensors: renormalise rescales exactly and reports the
statistics of what came in, also when the squares overflow the storage dtype."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradmath.network.base import renormalise


@pytest.mark.parametrize(
    ("dtype", "size"),
    [(np.float32, 1.5), (np.float32, 1e30), (np.float64, 1.5), (np.float64, 1e200)],
)
def test_renormalise_keeps_the_value_and_the_incoming_mean_square(dtype, size) -> None:
    rng = np.random.default_rng(0)
    u = (rng.standard_normal((3, 4, 8)) * size).astype(dtype)
    u[1] = 0.0  # a network whose signal is exactly 0 stays 0, with log mean square −∞
    exact = u.astype(np.float64) / size  # in units of `size`: squares fit float64
    s0 = np.array([0.5, 0.0, -2.0])
    v, s, log_ms = renormalise(u.copy(), s0)
    # value e^s·v = e^{s0}·u, and log mean u² of the u that came in (float32 squares of 1e30
    # overflow: mean_square redoes those rows in float64; float64 squares of 1e200 overflow
    # too: renormalise divides by max|u| first and must put it back into the statistics)
    for k in (0, 2):
        np.testing.assert_allclose(
            v[k].astype(np.float64) * math.exp(s[k] - s0[k]) / size, exact[k], rtol=1e-5
        )
        want = 2 * math.log(size) + math.log(np.mean(exact[k] ** 2))
        assert log_ms[k] == pytest.approx(want, rel=1e-6)
        assert np.sqrt(np.mean(v[k].astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert np.all(v[1] == 0) and log_ms[1] == -math.inf and s[1] == s0[1]
