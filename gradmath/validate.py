"""Theory against simulation, layer by layer, with tolerances from the Monte-Carlo error.

:func:`compare` takes two :class:`~gradmath.Profile` objects of the *same* MLP (typically
``meanfield.predict(mlp)`` and ``numeric.simulate(mlp, …)``) and, for each layer and each of the
three quantities (q, q̃, E[(∂L/∂W)²]), computes on the log scale

    z = (log sim − log theory) / SE,       SE² = SE_theory² + SE_sim²,

and the relative error sim/theory − 1. Profiles store natural logs with standard errors of the
logs, so z is the usual Wald statistic and needs no exp() of a depth-10,000 magnitude.

Reference distribution. The SE is estimated from the spread of N sampled networks, so z is a
Student t statistic with ν = N − 1 degrees of freedom, not a standard normal one: with few
networks its tails are much heavier (ν = 1: P(|z| > 4) = 16 %, not 0.006 %). ``z_max`` is the
threshold in normal standard deviations and fixes the per-comparison false-alarm probability
α₁ = 2(1 − Φ(z_max)) (6.3e-5 at 4); the bound actually applied to |z| is the Student-t
quantile with the same tail, t_ν(1 − α₁/2) (:attr:`Comparison.threshold`; 4.62 for N = 32,
5.48 for N = 16, → z_max as N → ∞). When both profiles carry SEs, ν is Welch–Satterthwaite's.
Profiles without ``conditions.n_networks`` are taken as exact (ν = ∞); fewer than
:data:`MIN_NETWORKS` networks are refused (ν = 2 would need |z| > 125 at z_max = 4: no power).
The t law is exact for normal per-network moments; in narrow nets they are skewed, which
inflates the per-comparison rate somewhat (measured: up to ~1.5× at N = 8, width 16), mostly
absorbed by the Bonferroni slack below (tests/test_validate.py checks the family-wise rate
empirically on linear nets, where the theory is exact).

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
    ``diff`` = log b − log a, ``se`` (combined), ``z`` = diff/se, ``rel_error`` = b/a − 1
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
        from scipy.special import ndtri, stdtr

        if self.dof is None:
            return self.z
        nu = np.where(np.isfinite(self.dof), self.dof, 1.0)
        with np.errstate(divide="ignore"):
            # From the lower tail of −|z| (keeps its digits far out), signed back.
            eq = -ndtri(stdtr(nu, -np.abs(self.z)))
        return np.where(np.isfinite(self.dof), np.sign(self.z) * eq, self.z)

    @property
    def agrees(self) -> bool:
        """Every |z| below its :attr:`threshold`."""
        return not bool(np.any(self._over(self.z_max)))

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on P(some |z| exceeds its threshold) if the profiles truly agree."""
        return min(1.0, self.n_comparisons * _two_sided_p(self.z_max))

    def _threshold_text(self, z_max: float) -> str:
        if self.dof is None:
            return f"threshold {z_max:g} per comparison"
        used = np.isfinite(self.dof) & ~np.isnan(self.z)
        finite = self.dof[used]
        if finite.size == 0:
            return f"threshold {z_max:g} per comparison"
        lim = self._limits(z_max)[:3][used]
        lo, hi = float(np.min(finite)), float(np.max(finite))
        nu_text = f"{lo:.3g}" if np.isclose(lo, hi) else f"{lo:.3g}–{hi:.3g}"
        t_lo, t_hi = float(np.min(lim)), float(np.max(lim))
        t_text = f"{t_lo:.3g}" if np.isclose(t_lo, t_hi) else f"{t_lo:.3g}–{t_hi:.3g}"
        return (
            f"threshold z_max = {z_max:g} per comparison (|z| < {t_text}: Student t, "
            f"{nu_text} degrees of freedom)"
        )

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
    ``predict(net, width_corrections=True)`` against ``simulate(net, batch=1)``.

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
    z = np.where(np.isnan(diff), np.nan, z)  # no weight gradient at this site
    zt, zs = _spread_z(theory, sim) if spread else (None, None)
    return Comparison(theory, sim, diff, se, z, rel, _ess(sim) | _ess(theory), zm, dof, zt, zs)


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
