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
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int
from gradmath.profile import Profile

__all__ = ["QUANTITIES", "Comparison", "bonferroni_z", "compare"]

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
    """Per-layer agreement of two profiles of one MLP (see the module docstring).

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
        return float(np.max(np.abs(self.z)))

    @property
    def agrees(self) -> bool:
        """Every |z| below ``z_max``."""
        return self.max_abs_z < self.z_max

    @property
    def family_alpha(self) -> float:
        """Bonferroni bound on P(some |z| > z_max) if the profiles truly agree."""
        return min(1.0, self.z.size * _two_sided_p(self.z_max))

    @property
    def verdict(self) -> str:
        """One line: agrees/disagrees, the worst |z| and where, and any unreliable layers."""
        qi, li = np.unravel_index(int(np.argmax(np.abs(self.z))), self.z.shape)
        word = "agrees" if self.agrees else "DISAGREES"
        text = (
            f"{self.sim.source} {word} with {self.theory.source}: max |z| = {self.max_abs_z:.2f} "
            f"({QUANTITIES[qi][1]}, layer {li + 1}); threshold {self.z_max:g} per comparison, "
            f"{self.z.size} comparisons, family-wise false alarm ≤ {self.family_alpha:.2g}"
        )
        bad = np.flatnonzero(self.unreliable.any(axis=0)) + 1
        if bad.size:
            text += f"; SE unreliable (few effective networks) at layers {_ranges(bad)}"
        return text

    def worst(self, n: int = 5) -> list[tuple[int, str, float, float]]:
        """The n largest |z|: (layer, quantity label, z, relative error)."""
        flat = np.argsort(-np.abs(self.z), axis=None)[:n]
        out = []
        for f in flat:
            qi, li = np.unravel_index(int(f), self.z.shape)
            out.append((int(li) + 1, QUANTITIES[qi][1], float(self.z[qi, li]),
                        float(self.rel_error[qi, li])))  # fmt: skip
        return out

    def assert_agrees(self, z_max: float | None = None) -> None:
        """Raise :class:`GradmathError` listing the worst layers unless every |z| < z_max."""
        limit = self.z_max if z_max is None else float(z_max)
        if self.max_abs_z < limit:
            return
        rows = "; ".join(
            f"layer {layer} {label}: z = {z:+.2f}, rel. error {rel:+.3g}"
            for layer, label, z, rel in self.worst()
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
        worst = int(np.argmax(np.max(np.abs(self.z), axis=0)))
        picks = set(np.linspace(0, L - 1, max_rows - 1).round().astype(int).tolist())
        return sorted(picks | {worst})

    def table(self, max_rows: int = 60) -> str:
        """Plain-text table: per layer and quantity, theory and simulation logs, rel. error, z."""
        head1 = f"{'':>6} " + " ".join(f"{label:^37}" for _, label, _ in QUANTITIES)
        sub = f"{'theory':>9} {'sim':>9} {'rel.err':>8} {'z':>7}"
        head2 = f"{'layer':>6} " + " ".join(f" {sub}" for _ in QUANTITIES)
        lines = [head1, head2, "-" * len(head2)]
        a = _stack(self.theory)
        b = _stack(self.sim)
        prev = -1
        for i in self._rows(max_rows):
            if i != prev + 1:
                lines.append(f"{'…':>6}")
            prev = i
            cells = []
            for q in range(3):
                flag = "*" if self.unreliable[q, i] else " "
                cells.append(
                    f" {a[q, i]:9.4g} {b[q, i]:9.4g} {self.rel_error[q, i]:8.2g} "
                    f"{self.z[q, i]:+7.2f}{flag}"
                )
            lines.append(f"{i + 1:>6} " + "".join(cells))
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
            rf"$l$ & {sub} \\",
            r"\midrule",
        ]
        for i in self._rows(max_rows):
            cells = " & ".join(
                f"{_tex_num(a[q, i])} & {_tex_num(b[q, i])} & {_tex_num(self.z[q, i], '+.2f')}"
                for q in range(3)
            )
            lines.append(rf"{i + 1} & {cells} \\")
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
    ess = p.meta.get("ess") if isinstance(p.meta, dict) else None
    out = np.zeros((3, p.depth), dtype=bool)
    if isinstance(ess, dict):
        # Few networks cannot give a large ESS; flag a layer when it has under half of them.
        limit = min(MIN_ESS, 0.5 * float(p.meta.get("n_networks", 2 * MIN_ESS)))
        for k, (q, _, _) in enumerate(QUANTITIES):
            if q in ess:
                out[k] = np.asarray(ess[q]) < limit
    return out


def compare(theory: Profile, sim: Profile, *, z_max: float = 4.0) -> Comparison:
    """Compare two profiles of one MLP layer by layer (module docstring for the statistics).

    ``theory`` is usually ``meanfield.predict(mlp)`` (no SE) and ``sim`` is
    ``numeric.simulate(mlp, …)``; two simulations can be compared too (their SEs combine).
    Profiles of different MLPs, or made with different ``input_q``/``output_grad_q``, are refused.

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
    if theory.mlp != sim.mlp:
        raise GradmathError(
            "The profiles describe different MLPs; a comparison must be like for like "
            f"(theory: {theory.mlp!r}; sim: {sim.mlp!r})."
        )
    for key in ("input_q", "output_grad_q"):
        if key == "output_grad_q" and sim.meta.get("loss") is not None:
            continue  # a real loss sets δ^L itself; the theory then takes the measured q̃^L
        a, b = theory.meta.get(key), sim.meta.get(key)
        if a is not None and b is not None and not math.isclose(a, b, rel_tol=1e-12):
            raise GradmathError(f"`{key}` differs: {a!r} (theory) vs {b!r} (sim).")
    zm = check_positive("z_max", z_max)
    se_a, se_b = _se(theory), _se(sim)
    if se_a is None and se_b is None:
        raise GradmathError(
            "Neither profile has standard errors (`log_*_se`); compare a simulated profile."
        )
    zeros = np.zeros((3, theory.depth))
    se = np.sqrt((zeros if se_a is None else se_a) ** 2 + (zeros if se_b is None else se_b) ** 2)
    diff = _stack(sim) - _stack(theory)
    with np.errstate(divide="ignore", invalid="ignore"):
        # An SE of exactly 0 (e.g. batch norm's pinned forward moment) leaves only rounding:
        # z = 0 within 1e-9 of the log, else ±inf (a real disagreement).
        z = np.where(se > 0, diff / se, np.where(np.abs(diff) < 1e-9, 0.0, np.sign(diff) * np.inf))
        rel = np.expm1(np.minimum(diff, 709.0))
    rel = np.where(diff > 709.0, np.inf, rel)
    return Comparison(theory, sim, diff, se, z, rel, _ess(sim) | _ess(theory), zm)
