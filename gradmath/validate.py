"""Theory against simulation, layer by layer, with tolerances from the Monte-Carlo error.

:func:`compare` takes two :class:`~gradmath.Profile` objects of the *same* MLP (typically
``meanfield.predict(mlp)`` and ``numeric.simulate(mlp, …)``) and, for each layer and each of the
three quantities (q, q̃, E[(∂L/∂W)²]), computes on the log scale

    z = (log sim − log theory) / SE,       SE² = SE_theory² + SE_sim²,

and the relative error sim/theory − 1. Profiles store natural logs with standard errors of the
logs, so z is the usual Wald statistic and needs no exp() of a depth-10,000 magnitude. Against
an exact theory, a simulation's z is replaced by a calibrated one on the normal scale ("The
calibrated test" below).

Reference distribution. The SE is estimated from the spread of N sampled networks, so z is a
Student t statistic with ν = N − 1 degrees of freedom, not a standard normal one: with few
networks its tails are much heavier (ν = 1: P(|z| > 4) = 16 %, not 0.006 %). ``z_max`` is the
threshold in normal standard deviations and fixes the per-comparison false-alarm probability
α₁ = 2(1 − Φ(z_max)) (6.3e-5 at 4); the bound actually applied to |z| is the Student-t
quantile with the same tail, t_ν(1 − α₁/2) (:attr:`Comparison.threshold`; 4.62 for N = 32,
5.48 for N = 16, → z_max as N → ∞). When both profiles carry SEs, ν is Welch–Satterthwaite's.
Profiles without ``conditions.n_networks`` are taken as exact (ν = ∞); fewer than
:data:`MIN_NETWORKS` networks are refused (ν = 2 would need |z| > 125 at z_max = 4: no power).
The t law is exact for normal per-network moments, but they are products of chi-square-like
factors, right-skewed with sd of log ≈ √(2L/n) (Hanin & Nica 2019): then the t statistic's
lower tail is far heavier than Student's (linear net, width 8, depth 10, one example per
network, N = 32: 354 of 4,000 seeds raised an alarm at z_max = 4 against a stated ≤ 0.19 %).

The calibrated test (simulation against an exact theory). Where the simulated profile carries
the mean ȳ and SD s of its N per-network logs (``Profile.mean_log``, ``sd_log``, every network's
moment > 0: ``n_log`` = N), the log-normal law of Q_k is tested exactly: E[Q] = e^θ with
θ = μ + σ²/2 is a linear hypothesis in the normal family's natural parameters, and Land's
conditional test (:func:`lognormal_z`; Land 1971) has exactly the nominal size at any N ≥ 4
and any σ. Its z is on the normal scale. The law of the logs is close to but not exactly
normal (bimodal for deep narrow GELU nets, where some networks keep their signal), so a
comparison counts as an alarm only if the Student-t test above rejects as well: z is the
less extreme of Land's z and the t statistic's normal-scale value Φ⁻¹(T_ν(diff/se))
(:attr:`Comparison.lognormal` marks these entries; their ``dof`` is ∞ and their threshold
z_max). The rate is then at most the smaller of the two tests' rates: nominal when the moments
are log-normal, whatever their skew, and no worse than before otherwise. Measured on the linear
net above: 2/4,000 family-wise alarms at z_max = 4 (stated ≤ 0.19 %), 68/4,000 at the
threshold of a stated 10 %; the power to see σ_w² off by 2 % at the defaults (width 32, depth
10) is 61 % (76 % before, whose extra alarms came from its miscalibrated tail) and 67 % for
−2 % (81 % Land alone). Two simulations, or a theory with standard errors, keep Welch's
Student-t reference.

Multiple comparisons. A comparison makes m tests (:attr:`Comparison.n_comparisons`: each
quantity at each site that has it), each at level α₁, so by Bonferroni's inequality the chance
that *any* of the m raises an alarm is at most m·α₁ (:attr:`Comparison.family_alpha`; 0.38% for
m = 60 at z_max = 4; layers of one simulation share networks, so the tests are positively
correlated and the true rate is lower). For a family of many comparisons (a test matrix)
choose the threshold for the whole family with
:func:`bonferroni_z`, e.g. ``bonferroni_z(m_total, alpha=0.01)``, rather than raising z_max
until things pass.

The spread across initialisations (``compare(theory, sim, spread=True)``). Besides the mean
moment, two statistics of the law of log Q_k across networks (``Profile.mean_log``,
``Profile.sd_log``; Q_k network k's empirical moment):

    typical:  z = (mean_log_sim − mean_log_theory) / (sd_log_sim/√N),
    spread:   z = (log sd_sim + se² − log sd_theory) / se,   se = ``sd_log_se``,

where se² = Var(log s) = (1/4)(ψ'((N−1)/2) + κ/N) (chi-square law of the sample variance of N
normal values, widened by the sample excess kurtosis κ: delta method), and + se² removes the
bias E[log s] ≈ log σ − se² (Jensen). A theory profile predicts these for one example per
network (``meanfield.predict(net, width_corrections=True)``), so the simulation must have
``batch=1``; two simulations can be compared at any equal batch (their errors combine).
Every z counts towards the threshold and the family-wise bound like the mean's.

What the z-test does and does not check. The SE is the simulation's sampling error only. The
mean-field theory is exact at infinite width; a finite-width simulation carries an O(1/width)
bias that the SE does not cover, so a large enough simulation of a finite net will always
"disagree". Tests therefore pick sizes where that bias is below the statistical resolution, or
use laws that are exact at finite width (``tests/numeric/test_validation_matrix.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int
from gradmath.profile import Profile

__all__ = [
    "MIN_NETWORKS",
    "QUANTITIES",
    "Comparison",
    "bonferroni_z",
    "compare",
    "lognormal_z",
    "t_threshold",
    "theory_and_simulation",
]

FloatArray = NDArray[np.float64]

#: (attribute suffix, label, LaTeX label) of the three compared quantities.
QUANTITIES = (
    ("q", "log E[h²]", r"\log q^l"),
    ("grad_q", "log E[δ²]", r"\log \tilde q^l"),
    ("wgrad_q", "log E[∂W²]", r"\log \mathbb{E}[(\partial L/\partial W^l_{ij})^2]"),
)
#: Effective number of networks below which a layer's standard error is flagged unreliable
#: (or half the networks, if fewer than 2·MIN_ESS were simulated).
MIN_ESS = 10.0
#: Fewest sampled networks a standard error may rest on (ν = N − 1 ≥ 3 degrees of freedom).
MIN_NETWORKS = 4


def bonferroni_z(m: int, alpha: float = 0.01) -> float:
    """The |z| threshold that keeps the family-wise false-alarm rate of m tests below ``alpha``.

    Bonferroni: each two-sided test at level alpha/m, so z = Φ⁻¹(1 − alpha/(2m)).

    >>> round(bonferroni_z(1, 0.05), 4)
    1.96
    >>> round(bonferroni_z(60, 0.01), 3)
    3.765
    """
    check_positive_int("m", m, what="a positive integer (the number of tests)")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise GradmathError(f"`alpha` (={alpha!r}) must lie in (0, 1).")
    p = alpha / (2 * int(m))
    if not p > 1e-300:  # Φ⁻¹ from the lower tail keeps its digits down to here
        raise GradmathError(f"`alpha` (={alpha!r}) over m = {m} tests is below 1e-300.")
    return -NormalDist().inv_cdf(p)


def _two_sided_p(z: float) -> float:
    return 2 * NormalDist().cdf(-abs(z))


def _t_to_normal(t: FloatArray, dof: FloatArray) -> FloatArray:
    """Φ⁻¹(T_ν(t)): the normal-scale value with t's tail under Student t with ν = ``dof``."""
    from scipy.special import ndtri, stdtr

    nu = np.where(np.isfinite(dof), dof, 1.0)
    with np.errstate(divide="ignore"):
        # From the lower tail of −|t| (keeps its digits far out), signed back.
        eq = -ndtri(stdtr(nu, -np.abs(t)))
    return np.asarray(np.where(np.isfinite(dof), np.sign(t) * eq, t))


def t_threshold(z_max: float, dof: ArrayLike) -> Any:
    """The |z| bound with the per-comparison tail of ``z_max`` under Student's t with ``dof``.

    α₁ = 2(1 − Φ(z_max)) and the bound is t_ν⁻¹(1 − α₁/2) (computed as −t_ν⁻¹(α₁/2), which
    keeps its digits when α₁ is tiny); ``dof`` = ∞ gives ``z_max`` itself. Vectorised over dof.

    >>> round(float(t_threshold(4.0, 31)), 3), float(t_threshold(4.0, float("inf")))
    (4.622, 4.0)
    >>> round(float(t_threshold(1.959963984540054, 10)), 4)   # the textbook t_{10, 0.975}
    2.2281
    """
    from scipy.special import ndtr, stdtrit

    zm = check_positive("z_max", z_max)
    nu = np.asarray(dof, dtype=np.float64)
    if np.any(~(nu > 0)):
        raise GradmathError(f"`dof` (={dof!r}) must be > 0 (degrees of freedom).")
    half_alpha = float(ndtr(-zm))
    with np.errstate(over="ignore"):
        t = -stdtrit(np.where(np.isinf(nu), 1.0, nu), half_alpha)
    out = np.where(np.isinf(nu), zm, np.maximum(t, zm))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class Comparison:
    """Site-by-site agreement of two profiles of one network (see the module docstring).

    Arrays have shape (3, L), rows in the order of :data:`QUANTITIES` (q, q̃, weight gradient):
    ``diff`` = log b − log a, ``se`` (combined), ``z`` = diff/se (where ``lognormal``: the
    calibrated normal-scale z of the module docstring), ``rel_error`` = b/a − 1
    (``inf`` where that overflows). ``unreliable`` marks layers whose simulated mean rests on
    fewer than :data:`MIN_ESS` effective networks (heavy tails at depth ≫ width).
    """

    theory: Profile
    sim: Profile
    diff: FloatArray
    se: FloatArray
    z: FloatArray
    rel_error: FloatArray
    unreliable: NDArray[np.bool_]
    z_max: float = 4.0
    #: Degrees of freedom of each SE (shape (3, L); ∞ for a normal reference). None: all ∞.
    dof: FloatArray | None = None
    #: With ``spread=True``: z of the mean and of the SD across networks of log Q_k (module
    #: docstring), shape (3, L), NaN where the theory predicts nothing; else None.
    z_typical: FloatArray | None = None
    z_spread: FloatArray | None = None
    #: Entries (shape (3, L)) tested by Land's exact log-normal test (:func:`lognormal_z`; z
    #: on the normal scale, ``dof`` ∞); elsewhere z = diff/se. None: nowhere.
    lognormal: NDArray[np.bool_] | None = None

    def _all_z(self) -> tuple[FloatArray, list[str], FloatArray]:
        """Every z (the means, then typical values and spreads if compared), their labels and
        degrees of freedom: the mean's own; a typical value's SE sd/√N is Student t with
        N − 1; a spread's is normal (delta method)."""
        dof = np.full(self.z.shape, np.inf) if self.dof is None else self.dof
        parts = [(self.z, "", dof)]
        if self.z_typical is not None and self.z_spread is not None:
            n = self.sim.conditions.n_networks
            nu = np.full(self.z.shape, np.inf if n is None else float(n - 1))
            parts += [(self.z_typical, " typical", nu),
                      (self.z_spread, " spread", np.full(self.z.shape, np.inf))]  # fmt: skip
        labels = [QUANTITIES[q][1] + tag for _, tag, _ in parts for q in range(3)]
        return (np.concatenate([z for z, _, _ in parts]), labels,
                np.concatenate([d for _, _, d in parts]))  # fmt: skip

    @property
    def depth(self) -> int:
        return self.theory.depth

    @property
    def max_abs_z(self) -> float:
        return float(np.nanmax(np.abs(self._all_z()[0])))

    @property
    def n_comparisons(self) -> int:
        """Tests made: every quantity at every site that has it (no weight gradient at a
        residual or normalisation site), and the typical value and spread if compared."""
        return int(np.count_nonzero(~np.isnan(self._all_z()[0])))

    def _limits(self, z_max: float) -> FloatArray:
        zs, _, dof = self._all_z()
        return np.broadcast_to(t_threshold(z_max, dof), zs.shape)

    def _over(self, z_max: float) -> NDArray[np.bool_]:
        """|z| at or above its threshold (NaN = no such quantity at the site: never over), for
        every z of :meth:`_all_z`."""
        with np.errstate(invalid="ignore"):
            return np.abs(self._all_z()[0]) >= self._limits(z_max)

    @property
    def threshold(self) -> FloatArray:
        """The bound on each |z| of the means (shape (3, L)): Student t with the SE's degrees
        of freedom at the tail probability of ``z_max`` (module docstring)."""
        return self._limits(self.z_max)[:3]

    @property
    def z_normal(self) -> FloatArray:
        """z on the normal scale: the value with the same two-sided tail under N(0, 1) as z
        has under Student t with its degrees of freedom, Φ⁻¹(T_ν(z)) (= z where ν = ∞).

        A normal threshold (e.g. :func:`bonferroni_z` over many comparisons) applies to it
        directly: |z_normal| > z_max exactly when |z| > t_threshold(z_max, ν).
        """
        return self.z if self.dof is None else _t_to_normal(self.z, self.dof)

    @property
    def agrees(self) -> bool:
        """Every |z| below its :attr:`threshold`."""
        return not bool(np.any(self._over(self.z_max)))

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on P(some |z| exceeds its threshold) if the profiles truly agree."""
        return min(1.0, self.n_comparisons * _two_sided_p(self.z_max))

    def _threshold_text(self, z_max: float) -> str:
        parts = []
        if self.lognormal is not None and np.any(self.lognormal & ~np.isnan(self.z)):
            n = self.sim.conditions.n_networks or self.theory.conditions.n_networks
            parts.append(f"Land's exact log-normal test and Student t with {(n or 0) - 1} "
                         "degrees of freedom must both exceed it")  # fmt: skip
        if self.dof is not None:
            used = np.isfinite(self.dof) & ~np.isnan(self.z)
            if np.any(used):
                finite = self.dof[used]
                lim = self._limits(z_max)[:3][used]
                lo, hi = float(np.min(finite)), float(np.max(finite))
                nu_text = f"{lo:.3g}" if np.isclose(lo, hi) else f"{lo:.3g}–{hi:.3g}"
                t_lo, t_hi = float(np.min(lim)), float(np.max(lim))
                t_text = f"{t_lo:.3g}" if np.isclose(t_lo, t_hi) else f"{t_lo:.3g}–{t_hi:.3g}"
                parts.append(f"|z| < {t_text}: Student t, {nu_text} degrees of freedom")
        if not parts:
            return f"threshold {z_max:g} per comparison"
        return f"threshold z_max = {z_max:g} per comparison ({'; '.join(parts)})"

    @property
    def verdict(self) -> str:
        """One line: agrees/disagrees, the worst |z| and where, and any unreliable layers."""
        zs, labels, _ = self._all_z()
        qi, li = np.unravel_index(int(np.nanargmax(np.abs(zs))), zs.shape)
        word = "agrees" if self.agrees else "DISAGREES"
        text = (
            f"{self.sim.source} {word} with {self.theory.source}: max |z| = {self.max_abs_z:.2f} "
            f"({labels[qi]}, {self.theory.sites[li].name}); "
            f"{self._threshold_text(self.z_max)}, {self.n_comparisons} comparisons, "
            f"family-wise false alarm ≤ {self.family_alpha:.2g}"
        )
        bad = np.flatnonzero(self.unreliable.any(axis=0))
        if bad.size:
            names = ", ".join(self.theory.sites[i].name for i in bad[:8])
            more = f" and {bad.size - 8} more" if bad.size > 8 else ""
            text += f"; SE unreliable (few effective networks) at {names}{more}"
        return text

    def worst(self, n: int = 5) -> list[tuple[str, str, float, float]]:
        """The n largest |z|: (site name, quantity label, z, relative error); the relative
        error of a spread row is sd_sim/sd_theory − 1, of a typical row e^{Δ mean_log} − 1."""
        n = check_positive_int("n", n)
        zs, labels, _ = self._all_z()
        rels = self._all_rel()
        flat = np.argsort(-np.nan_to_num(np.abs(zs), nan=-1.0), axis=None, kind="stable")[:n]
        out = []
        for f in flat:
            qi, li = np.unravel_index(int(f), zs.shape)
            if np.isnan(zs[qi, li]):
                break
            out.append((self.theory.sites[li].name, labels[qi], float(zs[qi, li]),
                        float(rels[qi, li])))  # fmt: skip
        return out

    def _all_rel(self) -> FloatArray:
        rel = [self.rel_error]
        if self.z_typical is not None:
            rel += [self._typical_rel, self._spread_rel]
        return np.concatenate(rel)

    @property
    def _typical_rel(self) -> FloatArray:
        a, b = self.theory.mean_log, self.sim.mean_log
        assert a is not None and b is not None
        return np.expm1(np.minimum(b - a, 709.0))

    @property
    def _spread_rel(self) -> FloatArray:
        a, b = self.theory.sd_log, self.sim.sd_log
        assert a is not None and b is not None
        with np.errstate(divide="ignore", invalid="ignore"):
            return b / a - 1.0

    def assert_agrees(self, z_max: float | None = None) -> None:
        """Raise :class:`GradmathError` listing the worst sites unless every |z| is below its
        threshold (``z_max`` as in :func:`compare`; default: the comparison's own)."""
        zm = self.z_max if z_max is None else check_positive("z_max", z_max)
        over = self._over(zm)
        if not np.any(over):
            return
        zs, labels, _ = self._all_z()
        rels = self._all_rel()
        order = np.argsort(-np.nan_to_num(np.abs(zs), nan=-1.0), axis=None, kind="stable")
        rows = "; ".join(
            f"{self.theory.sites[li].name} {labels[qi]}: z = {zs[qi, li]:+.2f}, "
            f"rel. error {rels[qi, li]:+.3g}"
            for qi, li in (np.unravel_index(int(f), zs.shape) for f in order[:5])
            if over[qi, li]
        )
        raise GradmathError(
            f"{self.sim.source} and {self.theory.source} disagree "
            f"({self._threshold_text(zm)}): {rows}.",
            partial=self,
        )

    def _rows(self, max_rows: int) -> list[int]:
        L = self.depth
        if L <= max_rows:
            return list(range(L))
        worst = int(np.nanargmax(np.nanmax(np.abs(self.z), axis=0)))
        picks = set(np.linspace(0, L - 1, max_rows - 1).round().astype(int).tolist())
        return sorted(picks | {worst})

    def table(self, max_rows: int = 60) -> str:
        """Plain-text table: per site and quantity, theory and simulation logs, rel. error, z."""
        max_rows = check_positive_int("max_rows", max_rows)
        head1 = f"{'':>6} " + " ".join(f"{label:^37}" for _, label, _ in QUANTITIES)
        sub = f"{'theory':>9} {'sim':>9} {'rel.err':>8} {'z':>7}"
        w = max(6, *(len(s.name) for s in self.theory.sites))
        head1 = f"{'':>{w}} " + " ".join(f"{label:^37}" for _, label, _ in QUANTITIES)
        head2 = f"{'site':>{w}} " + " ".join(f" {sub}" for _ in QUANTITIES)
        lines = [head1, head2, "-" * len(head2)]
        a = _stack(self.theory)
        b = _stack(self.sim)
        prev = -1
        for i in self._rows(max_rows):
            if i != prev + 1:
                lines.append(f"{'…':>{w}}")
            prev = i
            cells = []
            for q in range(3):
                flag = "*" if self.unreliable[q, i] else " "
                if np.isnan(self.z[q, i]):
                    cells.append(f" {'—':>9} {'—':>9} {'':>8} {'':>7} ")
                    continue
                cells.append(
                    f" {a[q, i]:9.4g} {b[q, i]:9.4g} {self.rel_error[q, i]:8.2g} "
                    f"{self.z[q, i]:+7.2f}{flag}"
                )
            lines.append(f"{self.theory.sites[i].name:>{w}} " + "".join(cells))
        lines.append(self.verdict)
        if self.unreliable.any():
            lines.append(
                "* few effective networks (heavy-tailed per-network moments): SE unreliable"
            )
        return "\n".join(lines)

    def latex(self, max_rows: int = 60) -> str:
        """A booktabs ``tabular`` of the same numbers (needs ``\\usepackage{booktabs}``).

        A z of ±inf (a real difference with standard error 0) prints as ``$+\\infty$``.
        """
        max_rows = check_positive_int("max_rows", max_rows)
        a = _stack(self.theory)
        b = _stack(self.sim)
        cols = "r" + "rrr" * 3
        head = " & ".join(rf"\multicolumn{{3}}{{c}}{{${tex}$}}" for _, _, tex in QUANTITIES)
        rules = "".join(rf"\cmidrule(lr){{{2 + 3 * q}-{4 + 3 * q}}}" for q in range(3))
        sub = " & ".join(["theory & sim. & $z$"] * 3)
        lines = [
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            rf" & {head} \\",
            rules,
            rf"site & {sub} \\",
            r"\midrule",
        ]
        for i in self._rows(max_rows):
            cells = " & ".join(
                "-- & -- & --"
                if np.isnan(self.z[q, i])
                else f"{_tex_num(a[q, i])} & {_tex_num(b[q, i])} & {_tex_num(self.z[q, i], '+.2f')}"
                for q in range(3)
            )
            name = self.theory.sites[i].name
            lines.append(rf"\texttt{{{name}}} & {cells} \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _ranges(layers: NDArray[Any]) -> str:
    out: list[str] = []
    start = prev = int(layers[0])
    for x in [*map(int, layers[1:]), None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if x is not None:
            start = prev = x
    return ", ".join(out)


def _tex_num(x: float, fmt: str = ".4g") -> str:
    if math.isinf(x):  # z when the standard error is 0
        from gradmath.render.latex import fmt_num

        return f"${'+' if x > 0 and fmt.startswith('+') else ''}{fmt_num(x)}$"
    s = format(float(x), fmt)
    if "e" in s:
        mant, exp = s.split("e")
        return rf"${mant}\times 10^{{{int(exp)}}}$"
    return f"${s}$"


def _stack(p: Profile, suffix: str = "") -> FloatArray:
    return np.array([getattr(p, f"log_{q}{suffix}") for q, _, _ in QUANTITIES])


def _se(p: Profile) -> FloatArray | None:
    parts = [getattr(p, f"log_{q}_se") for q, _, _ in QUANTITIES]
    if all(x is None for x in parts):
        return None
    return np.array([np.zeros(p.depth) if x is None else x for x in parts])


def _ess(p: Profile) -> NDArray[np.bool_]:
    out = np.zeros((3, p.depth), dtype=bool)
    if p.ess is not None:
        # Few networks cannot give a large ESS; flag a site when it has under half of them.
        n = p.conditions.n_networks or 2 * MIN_ESS
        with np.errstate(invalid="ignore"):
            out = p.ess < min(MIN_ESS, 0.5 * float(n))
    return out


def _check_like_for_like(theory: Profile, sim: Profile) -> None:
    if theory.network != sim.network:
        raise GradmathError(
            "The profiles describe different networks; a comparison must be like for like "
            "(predict and simulate the same Network or MLP object)."
        )
    batch_matters = theory.network.uses_batch_statistics
    diffs = theory.conditions.differences(sim.conditions, batch_matters=batch_matters)
    if diffs:
        raise GradmathError(
            "The profiles were made under different conditions ("
            + "; ".join(diffs)
            + ", first vs second); predict under the simulation's conditions, e.g. "
            "`meanfield.predict(net, like=sim)`."
        )


def _spread_z(theory: Profile, sim: Profile) -> tuple[FloatArray, FloatArray]:
    """(z_typical, z_spread) of ``compare(…, spread=True)`` (module docstring)."""
    for name, p in (("theory", theory), ("sim", sim)):
        if p.mean_log is None or p.sd_log is None:
            raise GradmathError(
                f"`{name}` has no spread across initialisations (mean_log/sd_log): use "
                "meanfield.predict(net, width_corrections=True) or numeric.simulate."
            )
    if sim.sd_log_se is None or sim.conditions.n_networks is None:
        raise GradmathError("`sim` must be a simulated profile (it has no sd_log_se).")
    batch = sim.conditions.batch
    if theory.sd_log_se is None and batch not in (None, 1):
        raise GradmathError(
            f"The predicted spread is that of one example's moment per network; simulate with "
            f"batch=1 to compare it (this simulation has batch={batch})."
        )
    assert theory.mean_log is not None and theory.sd_log is not None
    assert sim.mean_log is not None and sim.sd_log is not None

    def parts(p: Profile) -> tuple[FloatArray, FloatArray, FloatArray]:
        # (log s corrected for its bias, its variance, variance of mean_log)
        assert p.sd_log is not None
        if p.sd_log_se is None or p.conditions.n_networks is None:
            zero = np.zeros_like(p.sd_log)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(p.sd_log), zero, zero
        v = p.sd_log_se**2
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(p.sd_log) + v, v, p.sd_log**2 / p.conditions.n_networks

    la, va, ma = parts(theory)
    lb, vb, mb = parts(sim)
    with np.errstate(divide="ignore", invalid="ignore"):
        typical = (sim.mean_log - theory.mean_log) / np.sqrt(ma + mb)
        spread = (lb - la) / np.sqrt(va + vb)
    return typical, spread


def compare(
    theory: Profile, sim: Profile, *, z_max: float = 4.0, spread: bool = False
) -> Comparison:
    """Compare two profiles of one network site by site (module docstring for the statistics).

    ``theory`` is usually ``meanfield.predict(mlp)`` (no SE) and ``sim`` is
    ``numeric.simulate(mlp, …)``; two simulations can be compared too (their SEs combine).
    Profiles of different networks, or made under different conditions (input_q,
    output_grad_q, loss, and the batch when the network normalises over it), are refused with
    the difference named; ``meanfield.predict(net, like=sim)`` predicts under ``sim``'s.
    ``spread=True`` also tests the typical value and the spread across initialisations of each
    site's log moment (``mean_log``, ``sd_log``; module docstring), e.g. of
    ``predict(net, width_corrections=True)`` against ``simulate(net, batch=1)``. A simulation
    with per-network log statistics against an exact theory gets the calibrated z (Land's
    log-normal test and Student's t must both reject; module docstring).

    >>> import numpy as np
    >>> from gradmath import MLP, Profile
    >>> net = MLP((4, 4))
    >>> a = Profile(net, np.zeros(1), np.zeros(1), np.zeros(1))
    >>> b = Profile(net, np.full(1, 0.1), np.zeros(1), np.zeros(1), log_q_se=np.full(1, 0.05),
    ...             log_grad_q_se=np.full(1, 0.05), log_wgrad_q_se=np.full(1, 0.05))
    >>> c = compare(a, b)
    >>> float(c.z[0, 0]), c.agrees
    (2.0, True)
    """
    for name, p in (("theory", theory), ("sim", sim)):
        if not isinstance(p, Profile):
            raise GradmathError(f"`{name}` must be a gradmath.Profile, got {type(p).__name__}.")
    _check_like_for_like(theory, sim)
    zm = check_positive("z_max", z_max)
    se_a, se_b = _se(theory), _se(sim)
    if se_a is None and se_b is None:
        raise GradmathError(
            "Neither profile has standard errors (`log_*_se`); compare a simulated profile."
        )
    zeros = np.zeros((3, theory.depth))
    va = zeros if se_a is None else se_a**2
    vb = zeros if se_b is None else se_b**2
    se = np.sqrt(va + vb)
    dof = _welch_dof(va, _dof(theory, "theory"), vb, _dof(sim, "sim"))
    a, b = _stack(theory), _stack(sim)
    with np.errstate(invalid="ignore"):
        diff = np.where((a == b) & np.isinf(a), 0.0, b - a)  # both exactly 0: equal
    with np.errstate(divide="ignore", invalid="ignore"):
        # Logs within 1e-12 agree to rounding (e.g. batch norm's pinned forward moment, whose
        # SE is itself rounding noise); an SE of 0 with a real difference gives z = ±inf.
        z = np.where(
            np.abs(diff) <= 1e-12, 0.0, np.where(se > 0, diff / se, np.sign(diff) * np.inf)
        )
        rel = np.expm1(np.minimum(diff, 709.0))
    rel = np.where(diff > 709.0, np.inf, rel)
    exact = np.zeros(z.shape, dtype=bool)
    for sample, other, sign in ((sim, theory, 1.0), (theory, sim, -1.0)):
        use = _lognormal_entries(sample, other, vb if sign > 0 else va, va if sign > 0 else vb)
        if np.any(use):
            assert sample.mean_log is not None and sample.sd_log is not None
            n = float(sample.conditions.n_networks or 0)
            zl = sign * lognormal_z(_stack(other)[use], sample.mean_log[use],
                                    sample.sd_log[use], n)  # fmt: skip
            # Either test valid suffices: the less extreme of the two (module docstring).
            zt = _t_to_normal(z[use], dof[use])
            z[use] = np.where(np.abs(zl) < np.abs(zt), zl, zt)
            dof[use] = np.inf
            exact |= use
    with np.errstate(invalid="ignore"):
        z = np.where(np.abs(diff) <= 1e-12, 0.0, z)
    z = np.where(np.isnan(diff), np.nan, z)  # no weight gradient at this site
    z_typ, z_spr = _spread_z(theory, sim) if spread else (None, None)
    return Comparison(theory, sim, diff, se, z, rel, _ess(sim) | _ess(theory), zm, dof, z_typ,
                      z_spr, exact)  # fmt: skip


def _lognormal_entries(
    sample: Profile, other: Profile, v_sample: FloatArray, v_other: FloatArray
) -> NDArray[np.bool_]:
    """Where :func:`lognormal_z` tests ``sample`` against ``other``: ``other`` exact there (no
    SE), ``sample`` simulated with the mean and SD of its per-network logs over all of its
    networks (none exactly 0), both logs finite."""
    n = sample.conditions.n_networks
    if n is None or sample.mean_log is None or sample.sd_log is None or sample.n_log is None:
        return np.zeros(v_sample.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(
            (v_other == 0) & (v_sample > 0) & (sample.n_log == n) & np.isfinite(_stack(other))
            & np.isfinite(sample.mean_log) & (sample.sd_log >= 0)
        )  # fmt: skip


def theory_and_simulation(
    nets: Mapping[str, object],
    *,
    n_networks: int,
    batch: int = 16,
    seed: int = 0,
    kind: str | None = "stream",
) -> dict[str, tuple[Profile, Profile]]:
    """``{label: (theory, simulation)}`` for labelled networks, like for like.

    Net k is simulated with ``numeric.simulate(net, n_networks=…, batch=…, seed=seed + k)`` and
    predicted with ``meanfield.predict(net, like=sim)``; ``kind`` keeps some rows
    (``"stream"``: the main path after every block, ``Profile.select``; ``"dense"``: the weight
    layers; ``None``: every site). The input of
    :func:`gradmath.render.figures.depth_profiles`.
    """
    from gradmath.meanfield import predict
    from gradmath.numeric import simulate

    out = {}
    for k, (label, net) in enumerate(nets.items()):
        sim = simulate(net, n_networks=n_networks, batch=batch, seed=seed + k)
        theory = predict(net, like=sim)
        if kind is not None:
            theory, sim = theory.select(kind), sim.select(kind)
        out[label] = (theory, sim)
    return out


#: Tanh-sinh (double-exponential) nodes on [0, 1] for the conditional law of Land's test:
#: log of the distance to the left and right end, and log weight. 161 nodes: log p within
#: 1e-3 relative of a 30-digit mpmath quadrature for N = 4…512 and p down to e^{−88}.
_TS_STEPS, _TS_HALF_WIDTH = 161, 3.2


@functools.cache
def _tanh_sinh() -> tuple[FloatArray, FloatArray, FloatArray]:
    from scipy.special import log_expit

    t = np.linspace(-_TS_HALF_WIDTH, _TS_HALF_WIDTH, _TS_STEPS)
    y = 0.5 * np.pi * np.sinh(t)
    # x = (1 + tanh y)/2 = expit(2y); dx/dt = (π/2) cosh t / (2 cosh² y)
    log_w = (
        np.log((t[1] - t[0]) * 0.5 * np.pi * np.cosh(t)) + math.log(2.0) - 2 * np.logaddexp(y, -y)
    )
    return log_expit(2 * y), log_expit(-2 * y), log_w


def _segment_log_integral(
    log_x0: FloatArray, log_1mx0: FloatArray, c: FloatArray, nu: FloatArray, *, left: bool
) -> FloatArray:
    """log ∫ e^{−2c x} x^ν (1 − x)^ν dx over [0, x0] (``left``) or [x0, 1], x0 given as
    log x0 and log(1 − x0) so that neither end loses digits."""
    to_left, to_right, log_w = _tanh_sinh()
    col = (slice(None), None)
    with np.errstate(invalid="ignore", divide="ignore"):  # −∞ − −∞: an empty segment
        if left:  # x = x0·t, 1 − x = (1 − x0) + x0·(1 − t)
            log_len = log_x0[col]
            log_x = log_len + to_left
            log_1mx = np.logaddexp(log_1mx0[col], log_len + to_right)
        else:  # x = x0 + (1 − x0)·t, 1 − x = (1 − x0)·(1 − t)
            log_len = log_1mx0[col]
            log_x = np.logaddexp(log_x0[col], log_len + to_left)
            log_1mx = log_len + to_right
        f = log_len + log_w - 2 * c[col] * np.exp(log_x) + nu[col] * (log_x + log_1mx)
        f = np.where(np.isnan(f), -np.inf, f)  # ν·log 0 at an end node when ν = 0 (N = 3)
        top = np.max(f, axis=1)
        safe = np.where(np.isfinite(top), top, 0.0)
        return np.asarray(safe + np.log(np.sum(np.exp(f - safe[:, None]), axis=1)))


def lognormal_z(theta: ArrayLike, mean_log: ArrayLike, sd_log: ArrayLike, n: ArrayLike) -> Any:
    """Land's exact test of E[Q] = e^θ from N log-normal Q_k, as a normal-scale z.

    Q_k = e^{Y_k}, Y_k ~ N(μ, σ²): E[Q] = e^{μ + σ²/2}, and H₀: μ + σ²/2 = θ is a linear
    hypothesis in the natural parameters of the normal family (μ/σ², −1/(2σ²)). Given
    T₂ = Σ(Y_k − θ)², the statistic T₁ = Σ(Y_k − θ) has under H₀ the density
    ∝ e^{−T₁/2} (T₂ − T₁²/N)^{(N−3)/2} on |T₁| ≤ √(N T₂), whatever σ (Land 1971, "Confidence
    intervals for linear functions of the normal mean and variance", Ann. Math. Stat. 42,
    §2; Lehmann & Romano, Testing Statistical Hypotheses, Thm 4.4.1: the UMP unbiased test).
    With x = (1 + T₁/√(N T₂))/2 ∈ [0, 1] and c = √(N T₂)/2 that is ∝ e^{−2cx} x^ν (1 − x)^ν,
    ν = (N − 3)/2, integrated by tanh-sinh quadrature in log space. Only the sample mean and
    SD of the logs enter (sufficient statistics): T₁ = N(ȳ − θ), T₂ = (N − 1)s² + N(ȳ − θ)².

    Returns z = Φ⁻¹(P(T₁ ≤ t₁ | T₂)) (computed from the smaller tail): exactly N(0, 1) under H₀
    for log-normal Q_k at any N ≥ 3, > 0 when the sample lies above e^θ; ±∞ when every Y_k is
    equal and differs from θ. Vectorised.

    >>> round(float(lognormal_z(0.0, 0.5, 1.0, 16)), 4)   # ȳ + s²/2 = 1 vs θ = 0: above
    3.9457
    >>> round(float(lognormal_z(0.0, -3.0, 0.1, 32)), 2)  # far below
    -12.66
    """
    from scipy.special import ndtri_exp

    th, m, s, nn = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                         for v in (theta, mean_log, sd_log, n)))  # fmt: skip
    shape = th.shape
    th, m, s, nn = (a.ravel() for a in (th, m, s, nn))
    d = m - th
    r = np.sqrt((nn - 1) * s * s + nn * d * d)  # √T₂ · √(N … )/√N: T₂ = r², t₁ = N d
    c = 0.5 * np.sqrt(nn) * r
    nu = 0.5 * (nn - 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The end nearer to x0 without cancellation: 1 − |u| = (N − 1)s² / (r (r + √N |d|)).
        log_near = np.log((nn - 1) * s * s) - np.log(2 * r * (r + np.sqrt(nn) * np.abs(d)))
        log_far = np.log1p(-np.exp(log_near))
    below = d < 0  # x0 = (1 + u)/2 near 0: the sample's logs lie below θ
    log_x0 = np.where(below, log_near, log_far)
    log_1mx0 = np.where(below, log_far, log_near)
    left = np.empty_like(d)
    right = np.empty_like(d)
    for i in range(0, d.size, 2048):  # keeps the (entries × nodes) temporaries small
        sl = slice(i, i + 2048)
        args = (log_x0[sl], log_1mx0[sl], c[sl], nu[sl])
        left[sl] = _segment_log_integral(*args, left=True)
        right[sl] = _segment_log_integral(*args, left=False)
    total = np.logaddexp(left, right)
    with np.errstate(invalid="ignore"):
        lo, hi = left - total, right - total
        z = np.where(lo < hi, ndtri_exp(np.minimum(lo, 0.0)), -ndtri_exp(np.minimum(hi, 0.0)))
        z = np.where(r == 0, 0.0, z)  # every log equal to θ
        z = np.where((s == 0) & (d != 0), np.where(d > 0, np.inf, -np.inf), z)
    out = z.reshape(shape)
    return float(out) if out.ndim == 0 else out


def _dof(p: Profile, name: str) -> float:
    """ν = N − 1 of a profile's SEs (N = its ``conditions.n_networks``); ∞ when it does not say."""
    n = p.conditions.n_networks
    if n is None:
        return math.inf
    if n < MIN_NETWORKS:
        raise GradmathError(
            f"`{name}` rests on n_networks={n!r} sampled networks; a standard error from N "
            f"networks has N − 1 degrees of freedom, and with fewer than {MIN_NETWORKS} the "
            "Student-t threshold is so large that no comparison could fail. Simulate at least "
            f"{MIN_NETWORKS} networks (16 or more for useful power)."
        )
    return float(n - 1)


def _welch_dof(va: FloatArray, nu_a: float, vb: FloatArray, nu_b: float) -> FloatArray:
    """Welch–Satterthwaite ν = (v_a + v_b)² / (v_a²/ν_a + v_b²/ν_b) per comparison (∞ if no SE)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        den = np.where(va > 0, va * va / nu_a, 0.0) + np.where(vb > 0, vb * vb / nu_b, 0.0)
        nu = np.where(den > 0, (va + vb) ** 2 / den, np.inf)
    return np.asarray(nu, dtype=np.float64)
