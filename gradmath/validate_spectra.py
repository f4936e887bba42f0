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

The verdict agrees iff every |z_k| is below that threshold and the KS p-value ≥ ``ks_alpha``.
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
    theory = np.asarray(cdf(g), dtype=np.float64)
    if theory.shape != g.shape or not np.all((theory >= 0) & (theory <= 1)):
        raise GradmathError("`cdf` must map the grid to probabilities in [0, 1] (one per point).")
    d = float(np.max(np.abs(pooled - theory)))
    K = e.shape[0]
    centred = (e - pooled) * math.sqrt(K / (K - 1)) / K
    rng = np.random.default_rng(check_seed(seed))
    boot = np.empty(n_boot)
    for start in range(0, n_boot, 256):
        xi = rng.standard_normal((min(256, n_boot - start), K))
        boot[start : start + xi.shape[0]] = np.max(np.abs(xi @ centred), axis=1)
    p = (1 + int(np.sum(boot >= d * (1 - 1e-12)))) / (n_boot + 1)
    return KSTest(d, p, g, pooled, theory, n_boot)


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
        return self.max_abs_z < self.threshold and self.ks.p_value >= self.ks_alpha

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on a false alarm: moments at z_max each, plus the KS level."""
        per = 2 * NormalDist().cdf(-self.z_max)
        return min(1.0, self.z.size * per + self.ks_alpha)

    @property
    def verdict(self) -> str:
        k = int(np.argmax(np.abs(self.z))) + 1
        word = "agrees" if self.agrees else "DISAGREES"
        return (
            f"sampled spectrum {word} with theory: max |z| = {self.max_abs_z:.2f} (moment {k}; "
            f"|z| < {self.threshold:.3g}: z_max = {self.z_max:g} under Student t, "
            f"{self.n_networks - 1} degrees of freedom), KS distance {self.ks.distance:.4f} "
            f"with p = {self.ks.p_value:.3g} (threshold {self.ks_alpha:g}); "
            f"{self.n_networks} networks, family-wise false-alarm rate ≤ {self.family_alpha:.2%}"
        )

    def table(self) -> str:
        rows = [f"{'k':>2} {'theory':>12} {'sampled':>12} {'SE':>10} {'z':>7}"]
        for k, (t, s, se, z) in enumerate(
            zip(self.theory_moments, self.sim_moments, self.sim_se, self.z, strict=True), 1
        ):
            rows.append(f"{k:>2} {t:>12.6g} {s:>12.6g} {se:>10.3g} {z:>7.2f}")
        if self.zero_mass:
            rows.append(
                f"zero eigenvalues: theory {self.zero_mass:.4f}, sampled {self.zero_fraction:.4f} "
                f"± {self.zero_fraction_se:.4f} (finite width adds O(1/√width): the rank of J is "
                "the fewest live units of any layer); the KS test compares the nonzero part"
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
) -> SpectrumComparison:
    """Compare ``theory`` (a :class:`gradmath.meanfield.spectra.Jacobian`) with ``sim`` (a
    :class:`gradmath.numeric.spectra.SampledSpectra`); see the module docstring.

    Eigenvalues are compared in units of the theory's mean m₁ = e^{log_mean}. A theory made
    from a network (``Jacobian.of``) must describe the sampled network at the same input
    second moment, as :func:`gradmath.validate.compare` requires of profiles.
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
    if a0 > 0:
        # Dead units: compare the law of the nonzero eigenvalues, F_+ = (F − a₀)/(1 − a₀); the
        # number of zeros is reported beside it (its finite-width excess is O(1/√width)).
        def cdf(v: Array) -> Array:
            return np.clip((spectrum.cdf(v) - a0) / (1 - a0), 0.0, 1.0)

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
    )
