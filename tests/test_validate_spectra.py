"""The across-network KS test keeps its false-alarm rate, for i.i.d. and repelling spectra."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from gradmath.validate_spectra import ks_across

PHI = np.vectorize(NormalDist().cdf)


def _rejections(draw, cdf, grid, reps: int, alpha: float) -> int:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2024)
    return sum(
        ks_across(draw(rng), cdf, grid, n_boot=400, seed=int(rng.integers(1 << 30))).p_value < alpha
        for _ in range(reps)
    )


def _binomial_band(reps: int, alpha: float) -> tuple[float, float]:
    sd = math.sqrt(reps * alpha * (1 - alpha))
    return reps * alpha - 4 * sd, reps * alpha + 4 * sd


@pytest.mark.slow
def test_false_alarm_rate_iid_rows() -> None:
    # Exact null, i.i.d. entries: the rate at α = 5% must be 5% within 4 binomial SDs.
    reps, alpha = 150, 0.05
    lo, hi = _binomial_band(reps, alpha)
    grid = np.linspace(-2.5, 2.5, 51)
    n = _rejections(lambda r: r.standard_normal((10, 64)), PHI, grid, reps, alpha)
    assert lo <= n <= hi


@pytest.mark.slow
def test_false_alarm_rate_repelling_eigenvalues() -> None:
    # Eigenphases of Haar unitaries (CUE) are uniform on average at every n, and strongly
    # correlated within a matrix: the i.i.d. KS null would be badly miscalibrated here; the
    # across-matrix bootstrap is not.
    from scipy.stats import unitary_group

    def draw(rng: np.random.Generator) -> np.ndarray:
        u = unitary_group.rvs(24, size=10, random_state=rng)
        return np.angle(np.linalg.eigvals(u)) % (2 * np.pi)

    reps, alpha = 150, 0.05
    lo, hi = _binomial_band(reps, alpha)
    grid = np.linspace(0.1, 2 * np.pi - 0.1, 40)
    n = _rejections(draw, lambda x: x / (2 * np.pi), grid, reps, alpha)
    assert lo <= n <= hi


def test_detects_a_shift() -> None:
    rng = np.random.default_rng(0)
    t = ks_across(rng.standard_normal((10, 200)) + 0.2, PHI, np.linspace(-2, 2, 41), seed=1)
    assert t.p_value < 0.01 and t.distance == pytest.approx(0.08, abs=0.03)


@pytest.mark.slow
def test_false_alarm_rate_against_a_sampled_mixture() -> None:
    # Exact null for the two-sample mode: each network's spectrum and each theory draw have
    # their own random location μ ~ N(0, 0.3²) (as the live counts move a spectrum with dead
    # units); 16 draws of the theory CDF, their spread in the bootstrap.
    def draw(rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((10, 64)) + 0.3 * rng.standard_normal((10, 1))

    reps, alpha = 150, 0.05
    lo, hi = _binomial_band(reps, alpha)
    rng = np.random.default_rng(7)
    grid = np.linspace(-2.5, 2.5, 41)
    n = 0
    for _ in range(reps):
        mu = 0.3 * rng.standard_normal((16, 1))
        test = ks_across(
            draw(rng),
            lambda x, mu=mu: PHI(x[None, :] - mu),
            grid,
            n_boot=400,
            seed=int(rng.integers(1 << 30)),
        )
        n += test.p_value < alpha
    assert lo <= n <= hi


def test_two_sided_p_value_of_a_sum_is_exact() -> None:
    # The sum of K Binomial(n, p) draws is Binomial(Kn, p): the convolution gives its tails.
    from scipy.stats import binom

    from gradmath.validate_spectra import _two_sided

    n, p, K = 30, 0.3, 8
    pmf = binom.pmf(np.arange(n + 1), n, p)
    for total in (50, 72, 90):
        ref = min(1.0, 2 * min(binom.cdf(total, K * n, p), binom.sf(total - 1, K * n, p)))
        assert _two_sided(pmf, total, K) == pytest.approx(ref, rel=1e-9, abs=1e-15)
