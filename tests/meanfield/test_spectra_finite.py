"""Dead units at finite width: rank of J, the law of the live counts, the conditioned law."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from gradmath.errors import GradmathError
from gradmath.meanfield.spectra import (
    conditioned_spectrum,
    critical_jacobian,
    critical_point,
    jacobian,
    live_counts,
)


def _haar(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("act", ["relu", "hard_tanh"])
@pytest.mark.parametrize("gaussian", [True, False])
def test_rank_of_j_is_the_fewest_live_units(act: str, gaussian: bool) -> None:
    # J = D^L W^L … D^1 W^1 built directly in numpy: the D's depend on W^l through the forward
    # pass, yet J keeps the generic rank min_l k_l (k_l = live units of layer l).
    rng = np.random.default_rng(4)
    n, depth = 48, 6
    q_star = 1.0 if act == "relu" else 0.25
    sw, sb = critical_point(act, q_star)
    for _ in range(6):
        x = rng.standard_normal(n) * math.sqrt((q_star - sb) / sw)
        j, live = np.eye(n), []
        for _ in range(depth):
            w = rng.standard_normal((n, n)) / math.sqrt(n) if gaussian else _haar(rng, n)
            h = math.sqrt(sw) * w @ x + math.sqrt(sb) * rng.standard_normal(n)
            d = (h > 0) if act == "relu" else (np.abs(h) < 1)
            x = np.maximum(h, 0) if act == "relu" else np.clip(h, -1, 1)
            live.append(int(d.sum()))
            j = d[:, None] * (w @ j)
        sv = np.linalg.svd(j, compute_uv=False)
        assert int(np.sum(sv > 1e-10 * sv[0])) == min(live)


def test_relu_live_counts_are_independent_fair_binomials() -> None:
    # P(h > 0) = ½ at any scale: k_l i.i.d. Binomial(n, ½), so the zero count n − min_l k_l
    # has P(Z ≤ z) = P(Bin(n, ½) ≥ n − z)^L exactly.
    n, depth, draws = 64, 4, 20000
    k = live_counts(jacobian("relu", 2.0, depth=depth), n, 1.0, draws=draws, seed=3)
    assert np.all(np.abs(k.mean(axis=0) - n / 2) < 4 * math.sqrt(n / 4 / draws))
    corr = np.corrcoef(k.T)[np.triu_indices(depth, 1)]
    assert np.all(np.abs(corr) < 4 / math.sqrt(draws))
    m = np.arange(n + 1)
    at_least = binom.sf(m - 1, n, 0.5) ** depth  # P(min k ≥ m)
    pmf = (at_least - np.append(at_least[1:], 0.0))[::-1]  # of Z = n − min k
    seen = np.bincount(n - k.min(axis=1), minlength=n + 1)
    sd = np.sqrt(draws * pmf * (1 - pmf))
    assert np.all(np.abs(seen - draws * pmf) <= 4.5 * sd + 1e-9)


def test_counts_given_the_infinite_width_fractions_give_the_infinite_width_law() -> None:
    # k_l = n(1 − a_l) for every layer: the conditioned law is the infinite-width one.
    jac = jacobian("relu", 2.0, depth=3, weights="orthogonal")
    sp, shift = conditioned_spectrum(jac, [32, 32, 32], 64)
    ref = jac.spectrum()
    x = np.geomspace(1e-4, 8.0, 30)
    assert shift == 0.0 and np.allclose(sp.cdf(x), ref.cdf(x), atol=1e-9)
    # Unequal counts: the atom at 0 is the largest dead fraction and the mean moves with the
    # live fractions, m₁(k) = m₁ Π_l (k_l/n)/(1 − a_l).
    sp, shift = conditioned_spectrum(jac, [30, 36, 33], 64)
    assert sp.atom_mass[sp.atoms == 0][0] == pytest.approx(1 - 30 / 64, abs=1e-12)
    assert shift == pytest.approx(math.log(30 * 36 * 33 / 32**3), abs=1e-12)
    assert sp.moment(1) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(GradmathError, match="`live`"):
        conditioned_spectrum(jac, [0, 32, 32], 64)
    with pytest.raises(GradmathError, match="3 layers"):
        conditioned_spectrum(jac, [32, 32], 64)


def test_two_orthogonal_projections_with_ranks_summing_to_width() -> None:
    # k_1 + k_2 = n: the top edge of PQP diverges like (λ_max − λ)^{-1/2} (free projections:
    # ρ ∝ √((λ − λ₋)(λ₊ − λ))/(λ(1 − λ)) with λ₊ = 1); the solver integrates it.
    jac = critical_jacobian("relu", 1.0, depth=2, weights="orthogonal")
    sp, _ = conditioned_spectrum(jac, [66, 62], 128)
    a, b = 66 / 128, 62 / 128
    lo = (math.sqrt(a * (1 - b)) - math.sqrt(b * (1 - a))) ** 2 / (a * b)  # units of m₁
    assert sp.lambda_max == pytest.approx(1 / (a * b), rel=1e-6)
    assert float(sp.cdf(np.array([0.99 * lo]))[0]) == pytest.approx(1 - b, abs=1e-6)
    assert sp.moment(1) == pytest.approx(1.0, abs=1e-5)
