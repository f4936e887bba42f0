"""Dead units at finite width: the law of the live counts and the spectrum given them.

Where φ' = 0 on part of the line (ReLU, hard-tanh), the infinite-width law of JJᵀ has an atom
at 0 of mass max_l P(d_l = 0) (:mod:`.density`). At width n the D's are 0/1 patterns with k_l
live units in layer l, and for Gaussian or Haar weights (generic: the D's depend on W^l only
through the one direction W^l x^{l−1}) J = D^L W^L … D^1 W^1 has rank min_l k_l, so it has
exactly n − min_l k_l zero eigenvalues (checked numerically in the tests). The k_l fluctuate
by O(√n), so the zeros exceed the limit by O(√n) (the expected minimum of L counts) and, given
the counts, the nonzero eigenvalues follow the free product with P(d_l = 0) = 1 − k_l/n (an
O(1/√n) change of every law, which moves the bottom of the spectrum: unequal ranks open a soft
edge where equal ones have a hard one). This module gives both:

- :func:`live_counts` samples (k_1 … k_L) exactly for a chain of Dense → φ layers: given x^{l−1},
  Gaussian weights and biases make h^l_i i.i.d. N(0, σ_w²|x^{l−1}|²/n + σ_b²), and Haar weights
  make h^l = σ_w |x^{l−1}| u + b with u uniform on the unit sphere (g/|g|), so the chain of the
  scalar |x^l|²/n with n i.i.d. draws per layer is the network's own law of the counts at cost
  O(nL) per draw instead of O(n²L). For ReLU P(h > 0) = ½ whatever the scale, so the counts are
  i.i.d. Binomial(n, ½) and P(n − min k ≤ z) = P(Bin(n, ½) ≥ n − z)^L exactly; for hard-tanh
  the fluctuating |x|² spreads each count (variance ≈ 1.7× the binomial at q* = 1/4, Gaussian
  weights) and correlates the layers, which a binomial law would miss.
- :func:`conditioned_spectrum` is the free-probability law of JJᵀ given the counts, in units of
  the infinite-width mean m₁.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.meanfield.gaussian import expect
from gradmath.meanfield.spectra.density import Spectrum, solve_spectrum
from gradmath.meanfield.spectra.law import D2Law, d2_law

__all__ = ["conditioned_spectrum", "live_counts"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


def live_counts(jac: Any, width: int, input_q: float, *, draws: int, seed: int) -> IntArray:
    """``draws`` samples of the live-unit counts (k_1 … k_L) of ``jac``'s layers at ``width``,
    shape (draws, L); a layer whose φ' never vanishes counts ``width``.

    The chain of the module docstring, started from x^0 ~ N(0, ``input_q``·I); σ_b² of layer l
    is read off the mean-field profile, σ_b² = q^l − σ_w² E[φ_{l−1}(h^{l−1})²]. A layer that is
    not a Dense → φ step of that profile (a LayerNorm's lone D, say) draws its h i.i.d.
    N(0, q^l) instead: its counts are then Binomial(n, P(φ'(h) ≠ 0)), which is exact for ReLU
    and first order otherwise.

    >>> from gradmath.meanfield.spectra import jacobian
    >>> k = live_counts(jacobian("relu", 2.0, depth=3), 64, 1.0, draws=5, seed=0)
    >>> k.shape, bool(np.all((k > 0) & (k < 64)))
    ((5, 3), True)
    """
    n = check_positive_int("width", width)
    m = check_positive_int("draws", draws)
    input_q = check_positive("input_q", input_q)
    rng = np.random.default_rng(check_seed(seed))
    x2 = input_q * rng.chisquare(n, m) / n  # |x^0|²/n
    prev = input_q  # E[|x^{l−1}|²/n] along the mean-field profile
    out = np.empty((m, len(jac.layers)), dtype=np.int64)
    for j, ly in enumerate(jac.layers):
        sw, q = ly.sigma_w2, ly.q
        sb = q - sw * prev
        chain = q > 0 and sb >= -1e-9 * q
        sb = max(sb, 0.0)
        g = rng.standard_normal((m, n))
        if not chain:
            h = g * math.sqrt(q)
        elif ly.gaussian:
            h = g * np.sqrt(sw * x2 + sb)[:, None]
        else:
            u = g * (math.sqrt(n) / np.linalg.norm(g, axis=1))[:, None]
            h = u * np.sqrt(sw * x2)[:, None]
            if sb > 0:
                h += rng.standard_normal((m, n)) * math.sqrt(sb)
        out[:, j] = np.count_nonzero(ly.activation.deriv(h), axis=1)
        x2 = np.mean(ly.activation(h) ** 2, axis=1)
        act = ly.activation
        prev = float(expect(lambda u, a=act: a(u) ** 2, q, act.kinks)) if q > 0 else 0.0
    return out


def _with_zero_mass(law: D2Law, zero: float) -> D2Law:
    """The law with P(d = 0) = ``zero`` and its nonzero part rescaled (shape kept)."""
    f = (1.0 - zero) / (1.0 - law.zero_mass)
    is0 = law.atoms == 0
    mass = np.where(is0, zero, law.atom_mass * f)
    lo, hi, m = law.bins
    probs = law.probs * np.where(law.values == 0, zero / law.zero_mass, f)
    return D2Law(law.values, probs, law.exact, law.atoms, mass, (lo, hi, m * f))


def conditioned_spectrum(jac: Any, live: Sequence[int], width: int) -> tuple[Spectrum, float]:
    """The law of JJᵀ given the live counts ``live`` (k_l per layer) at ``width``, and
    log(m₁(k)/m₁): its own mean relative to the infinite-width mean e^{``jac.log_mean``}.

    Layer l's D² law keeps its nonzero part and has P(d = 0) = 1 − k_l/n (layers without dead
    units keep theirs); the S-transforms then multiply as in :mod:`.density`. The returned
    spectrum is in units of its own mean, so λ/m₁ = x·e^{shift}.
    """
    n = check_positive_int("width", width)
    if len(live) != len(jac.layers):
        raise GradmathError(f"`live` has {len(live)} counts; the Jacobian has {jac.depth} layers.")
    index: dict[Any, int] = {}
    laws: list[D2Law] = []
    counts: list[int] = []
    base: dict[Any, D2Law] = {}
    shift = 0.0
    for ly, k in zip(jac.layers, live, strict=True):
        if ly.key not in base:
            base[ly.key] = d2_law(ly.activation, ly.q, ly.sigma_w2)
        law = base[ly.key]
        zero = law.zero_mass
        if zero > 0:
            if not 0 < k <= n:
                raise GradmathError(f"`live` (={list(live)!r}) must lie in 1 … {n}.")
            zero = 1.0 - int(k) / n
            shift += math.log((1.0 - zero) / (1.0 - law.zero_mass))
        key = (ly.key, zero)
        if key not in index:
            index[key] = len(laws)
            laws.append(law if zero == law.zero_mass else _with_zero_mass(law, zero))
            counts.append(0)
        counts[index[key]] += 1
    gauss = sum(ly.gaussian for ly in jac.layers)
    return solve_spectrum(laws, counts, gauss, jac.log_mean + shift), shift
