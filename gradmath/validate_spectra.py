"""Theory against simulation for Jacobian spectra: moment z-scores and a calibrated KS test.

Eigenvalues of one random matrix are strongly correlated (they repel), so neither a z-score
over all eigenvalues nor the textbook Kolmogorov–Smirnov null (i.i.d. samples) is valid. Both
statistics here are formed per network and compared *across independent networks*:

- moments: network i gives m̂_{k,i} = mean_j (λ_ij/m₁)^k; z_k = (mean_i m̂_{k,i} − m_k)/SE with
  SE = sd_i/√K (the CLT over K independent networks), one comparison per moment; as in
  :func:`gradmath.validate.compare` the SE rests on K networks, so z is referred to Student's t
  with K − 1 degrees of freedom: ``z_max`` fixes the per-comparison tail 2(1 − Φ(z_max)) and
  |z| is held to the t quantile with that tail (:func:`gradmath.validate.t_threshold`; 8.47 for
  K = 8 at z_max = 4); fewer than :data:`gradmath.validate.MIN_NETWORKS` networks are refused;
- distribution: network i gives its empirical spectral CDF e_i(x) on a grid of the theory's
  quantiles; D = max_x |mean_i e_i(x) − F(x)| (the Kolmogorov–Smirnov distance of the pooled
  spectrum), and its null distribution is calibrated by the Gaussian multiplier bootstrap over
  networks, D* = max_x |Σ_i ξ_i (e_i(x) − mean_i e_i(x))|/K·√(K/(K−1)), ξ_i ~ N(0, 1) (Chernozhukov,
  Chetverikov & Kato 2013): valid whatever the dependence between eigenvalues of one network.
  Its false-alarm rate is tested on exact nulls (i.i.d. and strongly repelling spectra) in
  ``tests/test_validate_spectra.py``.

Dead units (φ' = 0 on part of the line: ReLU, hard-tanh) are the one finite-width effect
treated exactly (:mod:`gradmath.meanfield.spectra.finite`): at width n, J has n − min_l k_l
zero eigenvalues (k_l live units of layer l), whose total over the networks is tested against
its law at that width, and the KS test compares the nonzero eigenvalues with their law given the
counts, mixed over draws of the counts (the bootstrap then has a second, independent sample).

The verdict agrees iff every |z_k| is below that threshold and the KS p-value (and, with dead
units, the zero count's) ≥ ``ks_alpha``.
Finite width biases the spectrum by O(1/width) (more with depth), which these tests resolve
when the number of networks is large: a disagreement at depth ≥ about width/10 is often that, not
an error; pick sizes accordingly (as :func:`gradmath.validate.compare` explains).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed

__all__ = ["KSTest", "SpectrumComparison", "compare_spectra", "ks_across"]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class KSTest:
    """D = max over the grid of |pooled ESD − F|, with its bootstrap p-value."""

    distance: float
    p_value: float
    grid: Array
    pooled: Array
    theory: Array
    n_boot: int


def ks_across(
    samples: Array | Sequence[Array],
    cdf: Callable[[Array], Array],
    grid: Array,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> KSTest:
    """KS distance between the pooled empirical CDF of ``samples`` and ``cdf`` on ``grid``,
    with a p-value from the multiplier bootstrap over the K independent rows.

    ``samples``: K independent replicates (networks), an array (K, n) or K 1-D arrays of any
    lengths; entries within a row may be dependent. The pooled CDF is the mean of the rows'
    empirical CDFs.

    ``cdf`` maps the grid to F (shape (m,)), or to M independent draws F_j of a random CDF
    whose mean is the theory (shape (M, m): a mixture computed by Monte Carlo, such as the
    finite-width law of a spectrum with dead units). Then D = max |mean_i e_i − mean_j F_j| and
    the bootstrap adds the draws' own multiplier term Σ_j ξ'_j (F_j − F̄)/M·√(M/(M−1)) (two
    independent samples), so a finite M costs power, not calibration.

    >>> rng = np.random.default_rng(1)
    >>> from statistics import NormalDist
    >>> t = ks_across(rng.standard_normal((20, 50)), np.vectorize(NormalDist().cdf),
    ...               np.linspace(-2, 2, 41))
    >>> t.p_value > 0.01
    True
    """
    rows = [np.sort(np.asarray(r, dtype=np.float64).ravel()) for r in samples]
    if len(rows) < 2 or any(r.size == 0 for r in rows):
        raise GradmathError("`samples` needs K ≥ 2 independent, non-empty rows.")
    n_boot = check_positive_int("n_boot", n_boot)
    try:
        g = np.asarray(grid, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradmathError(f"`grid` (={grid!r}) must be an array of numbers.") from None
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
        raise GradmathError("`grid` must be a non-empty 1-D array of finite points.")
    e = np.stack([np.searchsorted(row, g, side="right") / row.size for row in rows])  # (K, m)
    pooled = e.mean(axis=0)
    draws = np.asarray(cdf(g), dtype=np.float64)
    if (
        draws.shape[-1:] != g.shape
        or draws.ndim > 2
        or (draws.ndim == 2 and draws.shape[0] < 2)
        or not np.all((draws >= 0) & (draws <= 1))
    ):
        raise GradmathError(
            "`cdf` must map the grid to probabilities in [0, 1]: one per point, or M ≥ 2 rows "
            "of independent draws."
        )
    theory = draws if draws.ndim == 1 else draws.mean(axis=0)
    d = float(np.max(np.abs(pooled - theory)))
    centred = _centred(e)
    if draws.ndim == 2:
        centred = np.concatenate((centred, _centred(draws)))
    rng = np.random.default_rng(check_seed(seed))
    boot = np.empty(n_boot)
    for start in range(0, n_boot, 256):
        xi = rng.standard_normal((min(256, n_boot - start), centred.shape[0]))
        boot[start : start + xi.shape[0]] = np.max(np.abs(xi @ centred), axis=1)
    p = (1 + int(np.sum(boot >= d * (1 - 1e-12)))) / (n_boot + 1)
    return KSTest(d, p, g, pooled, theory, n_boot)


def _centred(rows: Array) -> Array:
    """(rows − their mean)·√(K/(K − 1))/K: the multiplier bootstrap's weights for a mean."""
    K = rows.shape[0]
    return (rows - rows.mean(axis=0)) * math.sqrt(K / (K - 1)) / K


@dataclass(frozen=True, eq=False)
class SpectrumComparison:
    """Moment z-scores and the KS test of a sampled spectrum against the theory."""

    theory_moments: Array
    sim_moments: Array
    sim_se: Array
    z: Array
    ks: KSTest
    n_networks: int
    z_max: float
    ks_alpha: float
    zero_mass: float = 0.0
    zero_fraction: float = 0.0
    zero_fraction_se: float = 0.0
    #: With dead units: the expected zero fraction at this width (the law of n − min_l k_l)
    #: and the two-sided p-value of the networks' total zero count under that law.
    zero_expected: float = 0.0
    zero_p_value: float = 1.0
    #: Nonzero eigenvalues per network the theory puts below :data:`RESOLUTION` (counted with
    #: the zeros by a float64 SVD); the zero count is tested only while K times this is < 0.5.
    zero_hidden: float = 0.0

    @property
    def zeros_tested(self) -> bool:
        return bool(self.zero_mass) and self.n_networks * self.zero_hidden < 0.5

    @property
    def max_abs_z(self) -> float:
        return float(np.max(np.abs(self.z)))

    @property
    def threshold(self) -> float:
        """The bound on |z_k|: Student t with K − 1 degrees of freedom at the tail of ``z_max``."""
        from gradmath.validate import t_threshold

        return float(t_threshold(self.z_max, self.n_networks - 1))

    @property
    def agrees(self) -> bool:
        return (
            self.max_abs_z < self.threshold
            and self.ks.p_value >= self.ks_alpha
            and self.zero_p_value >= self.ks_alpha
        )

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on a false alarm: moments at z_max each, plus the KS level (twice
        with dead units: the zero count is tested at that level too)."""
        per = 2 * NormalDist().cdf(-self.z_max)
        return min(1.0, self.z.size * per + (2 if self.zero_mass else 1) * self.ks_alpha)

    @property
    def verdict(self) -> str:
        k = int(np.argmax(np.abs(self.z))) + 1
        word = "agrees" if self.agrees else "DISAGREES"
        zeros = "KS"
        if self.zeros_tested:
            zeros = (
                f"zero eigenvalues {self.zero_fraction:.4f} against {self.zero_expected:.4f} at "
                f"this width (p = {self.zero_p_value:.3g}), KS of the nonzero part"
            )
        elif self.zero_mass:
            zeros = (
                f"zero eigenvalues not resolved ({self.zero_hidden:.2g} nonzero ones per network "
                f"below {RESOLUTION:g}·λ_max), KS of the nonzero part above that"
            )
        return (
            f"sampled spectrum {word} with theory: max |z| = {self.max_abs_z:.2f} (moment {k}; "
            f"|z| < {self.threshold:.3g}: z_max = {self.z_max:g} under Student t, "
            f"{self.n_networks - 1} degrees of freedom), {zeros} distance "
            f"{self.ks.distance:.4f} with p = {self.ks.p_value:.3g} (threshold "
            f"{self.ks_alpha:g}); {self.n_networks} networks, family-wise false-alarm rate ≤ "
            f"{self.family_alpha:.2%}"
        )

    def table(self) -> str:
        rows = [f"{'k':>2} {'theory':>12} {'sampled':>12} {'SE':>10} {'z':>7}"]
        for k, (t, s, se, z) in enumerate(
            zip(self.theory_moments, self.sim_moments, self.sim_se, self.z, strict=True), 1
        ):
            rows.append(f"{k:>2} {t:>12.6g} {s:>12.6g} {se:>10.3g} {z:>7.2f}")
        if self.zero_mass:
            rows.append(
                f"zero eigenvalues: sampled {self.zero_fraction:.4f} ± {self.zero_fraction_se:.4f}"
                f", {self.zero_expected:.4f} expected at this width (the rank of J is the fewest "
                f"live units of any layer; infinite width {self.zero_mass:.4f}), p = "
                f"{self.zero_p_value:.3g}; the KS test compares the nonzero part with its law "
                "given the live counts, mixed over their law"
            )
        return "\n".join([*rows, self.verdict])

    def assert_agrees(self) -> None:
        if not self.agrees:
            raise GradmathError(self.verdict + "\n" + self.table())


#: Eigenvalues below this fraction of λ_max are not resolved by a double-precision SVD of J
#: (σ_min ≥ about 1e-16 σ_max, so λ ≥ about 1e-32 λ_max): the KS grid stays above it, so exact zeros
#: (ReLU's dead units) and numerical ones count alike.
RESOLUTION = 1e-24


def _grid(spectrum: Any, points: int) -> Array:
    """About ``points`` theory quantiles (interpolated in log x on the theory's own grid), at
    least :data:`RESOLUTION`·λ_max, moved off the atoms (where F jumps)."""
    top = float(spectrum.lambda_max)
    floor = RESOLUTION * top
    cand = np.concatenate(
        (spectrum.x, spectrum.atoms, np.geomspace(floor, top, 400), [floor, top * (1 + 1e-9)])
    )
    cand = np.unique(cand[cand >= floor])
    f = spectrum.cdf(cand)
    levels = (np.arange(points) + 0.5) / points
    idx = np.clip(np.searchsorted(f, levels, side="left"), 0, cand.size - 1)
    xs = np.unique(np.concatenate((cand[idx], [floor])))
    out = []
    for x in xs:
        near = np.abs(spectrum.atoms - x) <= 1e-7 * x
        out += [x * (1 - 1e-6), x * (1 + 1e-6)] if np.any(near) else [x]
    return np.unique(np.array(out))


def compare_spectra(
    theory: Any,
    sim: Any,
    *,
    moments: int = 4,
    z_max: float = 4.0,
    ks_alpha: float = 0.01,
    grid_points: int = 100,
    n_boot: int = 2000,
    seed: int = 0,
    mixture: int = 16,
    count_draws: int = 4000,
) -> SpectrumComparison:
    """Compare ``theory`` (a :class:`gradmath.meanfield.spectra.Jacobian`) with ``sim`` (a
    :class:`gradmath.numeric.spectra.SampledSpectra`); see the module docstring.

    Eigenvalues are compared in units of the theory's mean m₁ = e^{log_mean}. A theory made
    from a network (``Jacobian.of``) must describe the sampled network at the same input
    second moment, as :func:`gradmath.validate.compare` requires of profiles.

    Dead units (φ' = 0 with probability a_l > 0: ReLU, hard-tanh) are compared at the sample's
    width n (:mod:`gradmath.meanfield.spectra.finite`): J has exactly n − min_l k_l zero
    eigenvalues (k_l the live units of layer l), whose law is sampled ``count_draws`` times
    from the exact chain of the counts; the networks' total zero count is tested against it
    (two-sided, its exact K-fold convolution). The nonzero eigenvalues are compared with their
    law given the counts, F_+(x | k) = (F(x | k) − max_l(1 − k_l/n))/min_l(k_l/n), averaged over
    ``mixture`` draws of k (the KS bootstrap includes their spread, :func:`ks_across`).
    """
    from gradmath.validate import MIN_NETWORKS

    net = getattr(theory, "network", None)
    if net is not None and (net != sim.network or theory.input_q != sim.input_q):
        raise GradmathError(
            "`theory` and `sim` describe different networks or input second moments "
            f"(input_q {theory.input_q!r} vs {sim.input_q!r}); compare like with like."
        )
    K = int(sim.n_networks)
    if K < MIN_NETWORKS:
        raise GradmathError(
            f"`sim` has {K} network(s); the across-network tests need at least {MIN_NETWORKS} "
            "(an SE from K networks has K − 1 degrees of freedom; 16 or more for useful power)."
        )
    check_positive_int("moments", moments)
    check_positive("z_max", z_max)
    if not (isinstance(ks_alpha, (int, float)) and 0 < ks_alpha < 1):
        raise GradmathError(f"`ks_alpha` (={ks_alpha!r}) must lie in (0, 1).")
    check_positive_int("grid_points", grid_points, minimum=2)
    check_positive_int("mixture", mixture, minimum=2)
    check_positive_int("count_draws", count_draws, minimum=mixture)
    spectrum = theory.spectrum()
    unit = float(theory.log_mean)
    x = sim.scaled(unit)
    exact = np.array(theory.moments(moments))
    with np.errstate(over="ignore", invalid="ignore"):
        per = np.stack([np.mean(x**k, axis=1) for k in range(1, moments + 1)])  # (k, K)
    if not (np.all(np.isfinite(per)) and np.all(np.isfinite(exact))):
        raise GradmathError(
            f"`moments` (={moments!r}): the sampled or theoretical moments beyond the float64 "
            "range; compare fewer moments."
        )
    mean = per.mean(axis=1)
    se = per.std(axis=1, ddof=1) / math.sqrt(K)
    diff = mean - exact
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(np.abs(diff) <= 1e-9 * np.abs(exact), 0.0, np.inf))
    grid = _grid(spectrum, grid_points)
    floor = RESOLUTION * float(spectrum.lambda_max)
    a0 = float(spectrum.atom_mass[spectrum.atoms == 0].sum())
    zeros = np.mean(x < floor, axis=1)
    expected, p_zero, hidden = 0.0, 1.0, 0.0
    if a0 > 0:
        # Dead units: the zero count against its law at this width, the nonzero part against
        # its law given the live counts, mixed over them (docstring).
        from gradmath.meanfield.spectra import live_counts

        n = x.shape[1]
        q_in = sim.input_q if theory.input_q is None else theory.input_q
        live = live_counts(theory, n, q_in, draws=count_draws, seed=seed)
        law = np.bincount(n - live.min(axis=1), minlength=n + 1) / live.shape[0]
        expected = float(np.dot(np.arange(n + 1), law)) / n
        cdf, hidden = _mixture(theory, live[:mixture], n, unit, floor)
        # Nonzero eigenvalues below the floor are counted with the zeros: the exact zero count
        # is observable only while the theory puts (on average) < 0.5 of them in all K nets.
        if K * hidden < 0.5:
            p_zero = _two_sided(law, int(np.sum(x < floor)), K)
        rows = [r[r >= floor] for r in x]
        ks = ks_across(rows, cdf, grid[grid >= floor], n_boot=n_boot, seed=seed)
    else:
        ks = ks_across(x, spectrum.cdf, grid, n_boot=n_boot, seed=seed)
    return SpectrumComparison(
        exact,
        mean,
        se,
        z,
        ks,
        K,
        float(z_max),
        float(ks_alpha),
        a0,
        float(zeros.mean()),
        float(zeros.std(ddof=1) / math.sqrt(K)),
        expected,
        p_zero,
        hidden,
    )


def _two_sided(pmf: Array, total: int, K: int) -> float:
    """Two-sided p-value of a sum of K independent draws from ``pmf`` (on 0, 1, …) being
    ``total``: 2·min(P(S ≤ total), P(S ≥ total)), capped at 1, from the exact convolution."""
    support = np.flatnonzero(pmf)
    lo = int(support[0])
    p = pmf[lo : support[-1] + 1]  # the sum's support starts at K·lo
    law = np.ones(1)
    for _ in range(K):
        law = np.convolve(law, p)
    t = total - K * lo
    below = float(law[: t + 1].sum()) if t >= 0 else 0.0
    above = float(law[max(t, 0) :].sum())
    return min(1.0, 2 * min(below, above))


def _mixture(
    theory: Any, live: Any, n: int, unit: float, floor: float
) -> tuple[Callable[[Array], Array], float]:
    """The CDFs of the nonzero eigenvalues above ``floor`` (x in units of e^{unit}) given the
    live counts, one row per draw k: (F_+(x | k) − F_+(floor | k))/(1 − F_+(floor | k)), as the
    sample sees them; and the mean number of nonzero eigenvalues per network below ``floor``."""
    from gradmath.meanfield.spectra import conditioned_spectrum

    parts = []
    hidden = 0.0
    for k in live:
        sp, shift = conditioned_spectrum(theory, k.tolist(), n)
        scale = math.exp(unit - theory.log_mean - shift)  # x ↦ λ/m₁(k)
        gone = 1.0 - float(k.min()) / n

        def plus(v: Array, sp: Any = sp, scale: float = scale, gone: float = gone) -> Array:
            return np.clip((sp.cdf(v * scale) - gone) / (1 - gone), 0.0, 1.0)

        low = float(plus(np.array([floor]))[0])
        hidden += low * float(k.min()) / len(live)
        parts.append((plus, low))

    def cdf(v: Array) -> Array:
        return np.stack([np.clip((f(v) - low) / (1 - low), 0.0, 1.0) for f, low in parts])

    return cdf, hidden
