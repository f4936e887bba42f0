"""Theory against simulation, layer by layer, with tolerances from the Monte-Carlo error.

:func:`compare` takes two :class:`~gradmath.Profile` objects of the *same* MLP (typically
``meanfield.predict(mlp)`` and ``numeric.simulate(mlp, …)``) and, for each layer and each of the
three quantities (q, q̃, E[(∂L/∂W)²]), computes on the log scale

    z = (log sim − log theory) / SE,       SE² = SE_theory² + SE_sim²,

and the relative error sim/theory − 1. Profiles store natural logs with standard errors of the
logs, so z is the usual Wald statistic and needs no exp() of a depth-10,000 magnitude.

Multiple comparisons. A depth-L comparison makes m = 3L tests. ``z_max`` applies to each one:
if theory and simulation agree, P(|z| > z_max) ≈ 2(1 − Φ(z_max)) per test (6.3e-5 at 4), and
by Bonferroni's inequality the chance that *any* of the m exceeds it is at most
m · 2(1 − Φ(z_max)) (:attr:`Comparison.family_alpha`; 0.38% for m = 60 at z_max = 4; layers of one
simulation share networks, so the tests are positively correlated and the true rate is lower).
For a family of many comparisons (a test matrix) choose the threshold for the whole family with
:func:`bonferroni_z`, e.g. ``bonferroni_z(m_total, alpha=0.01)``, rather than raising z_max
until things pass.

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
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int
from gradmath.profile import Profile

__all__ = ["QUANTITIES", "Comparison", "bonferroni_z", "compare", "theory_and_simulation"]

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


def bonferroni_z(m: int, alpha: float = 0.01) -> float:
    """The |z| threshold that keeps the family-wise false-alarm rate of m tests below ``alpha``.

    Bonferroni: each two-sided test at level alpha/m, so z = Φ⁻¹(1 − alpha/(2m)).

    >>> round(bonferroni_z(1, 0.05), 4)
    1.96
    >>> round(bonferroni_z(60, 0.01), 3)
    3.765
    """
    check_positive_int("m", m, what="a positive integer (the number of tests)")
    if not 0 < alpha < 1:
        raise GradmathError(f"`alpha` (={alpha!r}) must lie in (0, 1).")
    return NormalDist().inv_cdf(1 - alpha / (2 * int(m)))


def _two_sided_p(z: float) -> float:
    return 2 * NormalDist().cdf(-abs(z))


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

    @property
    def depth(self) -> int:
        return self.theory.depth

    @property
    def max_abs_z(self) -> float:
        return float(np.nanmax(np.abs(self.z)))

    @property
    def n_comparisons(self) -> int:
        """Tests made: every quantity at every site that has it (no weight gradient at a
        residual or normalisation site)."""
        return int(np.count_nonzero(~np.isnan(self.z)))

    @property
    def agrees(self) -> bool:
        """Every |z| below ``z_max``."""
        return self.max_abs_z < self.z_max

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on P(some |z| > z_max) if the profiles truly agree."""
        return min(1.0, self.n_comparisons * _two_sided_p(self.z_max))

    @property
    def verdict(self) -> str:
        """One line: agrees/disagrees, the worst |z| and where, and any unreliable layers."""
        qi, li = np.unravel_index(int(np.nanargmax(np.abs(self.z))), self.z.shape)
        word = "agrees" if self.agrees else "DISAGREES"
        text = (
            f"{self.sim.source} {word} with {self.theory.source}: max |z| = {self.max_abs_z:.2f} "
            f"({QUANTITIES[qi][1]}, {self.theory.sites[li].name}); threshold {self.z_max:g} per "
            f"comparison, {self.n_comparisons} comparisons, family-wise false alarm ≤ "
            f"{self.family_alpha:.2g}"
        )
        bad = np.flatnonzero(self.unreliable.any(axis=0))
        if bad.size:
            names = ", ".join(self.theory.sites[i].name for i in bad[:8])
            more = f" and {bad.size - 8} more" if bad.size > 8 else ""
            text += f"; SE unreliable (few effective networks) at {names}{more}"
        return text

    def worst(self, n: int = 5) -> list[tuple[str, str, float, float]]:
        """The n largest |z|: (site name, quantity label, z, relative error)."""
        flat = np.argsort(-np.nan_to_num(np.abs(self.z), nan=-1.0), axis=None)[:n]
        out = []
        for f in flat:
            qi, li = np.unravel_index(int(f), self.z.shape)
            if np.isnan(self.z[qi, li]):
                break
            out.append((self.theory.sites[li].name, QUANTITIES[qi][1], float(self.z[qi, li]),
                        float(self.rel_error[qi, li])))  # fmt: skip
        return out

    def assert_agrees(self, z_max: float | None = None) -> None:
        """Raise :class:`GradmathError` listing the worst sites unless every |z| < z_max."""
        limit = self.z_max if z_max is None else float(z_max)
        if self.max_abs_z < limit:
            return
        rows = "; ".join(
            f"{site} {label}: z = {z:+.2f}, rel. error {rel:+.3g}"
            for site, label, z, rel in self.worst()
            if abs(z) >= limit
        )
        raise GradmathError(
            f"{self.sim.source} and {self.theory.source} disagree (|z| ≥ {limit:g}): {rows}.",
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


def compare(theory: Profile, sim: Profile, *, z_max: float = 4.0) -> Comparison:
    """Compare two profiles of one network site by site (module docstring for the statistics).

    ``theory`` is usually ``meanfield.predict(mlp)`` (no SE) and ``sim`` is
    ``numeric.simulate(mlp, …)``; two simulations can be compared too (their SEs combine).
    Profiles of different networks, or made under different conditions (input_q,
    output_grad_q, loss, and the batch when the network normalises over it), are refused with
    the difference named; ``meanfield.predict(net, like=sim)`` predicts under ``sim``'s.

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
    se = np.sqrt((zeros if se_a is None else se_a) ** 2 + (zeros if se_b is None else se_b) ** 2)
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
    return Comparison(theory, sim, diff, se, z, rel, _ess(sim) | _ess(theory), zm)


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
