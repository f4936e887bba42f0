"""The spectral density of JJᵀ: solve for the moment generating function and invert.

Notation (Pennington, Schoenholz & Ganguli 2018, §2): for a law ρ, G(z) = ∫ρ(λ)/(z − λ)dλ is
its Stieltjes (Green's) function and ψ = zG − 1 = ∫λ/(z − λ)dρ its moment generating function
at 1/z; the density is ρ(λ) = −Im G(λ + i0)/π = −Im ψ(λ + i0)/(πλ).

Work in units of the mean (every D² law divided by its mean d̄_l, so m₁ = 1). With χ_k the
inverse of ψ_k(w) = E[w d/(1 − w d)] for the k-th distinct D² law (n_k layers share it) and G
Gaussian layers among L, the S-transform product (:mod:`.series`) becomes, from
z = (1 + ψ)/(ψ S_{JJᵀ}(ψ)),

    log z = (1 + G − L) log(1 + ψ) + (L − 1) log ψ − Σ_k n_k log w_k,    ψ_k(w_k) = ψ.

For real λ we solve ``log z = log λ`` (imaginary part mod 2π) together with ψ_k(w_k) = ψ by
Newton's method on (ψ, w_1 … w_K) (the Jacobian is an arrowhead, solved in O(K)), continuing
from the top edge down; a solve that fails is restarted from z = λ + iη, η large, with η
halved to 0 (the physical branch is the one analytic in the upper half plane, Im ψ < 0).

Edge. For z > λ_max, ψ(1/z) is real, positive and decreasing in z, so λ_max = inf_{ψ > 0} z(ψ):
a critical point dz/dψ = 0 (a square-root edge, as Marchenko–Pastur's), or the limit as
ψ → ∞ (an edge where the density diverges or an atom sits).

Atoms (Belinschi 2003; Bercovici & Voiculescu 1998): the free product of positive laws has an
atom at 0 of mass max_l P(d_l = 0), and an atom at Π_l a_l ≠ 0 of mass Σ_l P(d_l = a_l) − (L−1)
when that is positive; Marchenko–Pastur has none, so only all-orthogonal nets have such atoms
(hard-tanh near q* → 0: most of the mass sits exactly at one, the isometry).
"""

from __future__ import annotations

import cmath
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError
from gradmath.meanfield.spectra.law import D2Law

__all__ = ["Spectrum", "solve_spectrum"]

Array = NDArray[np.float64]
CArray = NDArray[np.complex128]
State = tuple[complex, CArray]  # (v = 1 + ψ, w_1 … w_K)

_TWO_PI = 2 * math.pi
# The march in s = √(log λ_max − log λ): first point, largest step, the largest change of
# v per step relative to its branch points, and the size of the Hermite end correction relative
# to a panel's mass that the step aims at (its error is ~ this squared).
_FIRST_S = 1e-2
_MAX_STEP = 0.25
_MAX_CHANGE = 0.3
_PANEL_TOL = 1e-3
# If the solver fails with less continuous mass than this left, it stops and reports it.
_GIVE_UP = 1e-3


@dataclass(frozen=True, eq=False)
class Spectrum:
    """The eigenvalue law of JJᵀ in units of its mean m₁ (λ ↦ x = λ/m₁): atoms and a density.

    - ``log_mean``: log m₁ = Σ_l log(σ_w² E[φ'(h^l)²]) (= L log χ₁ at a fixed point);
    - ``atoms``, ``atom_mass``: positions (units of m₁) and masses of the point masses;
    - ``lambda_max``: the top of the support (units of m₁);
    - ``s``: the grid s = √(log λ_max − log x) of the continuous part, increasing from the top
      edge down; ``rate`` = 2 s x ρ(x), the continuous mass per unit s (∫ρ dx = ∫ rate ds), and
      ``rate_ds`` its derivative in s: integrals use cubic Hermite interpolation (error O(h⁴));
    - ``unresolved``: continuous mass below the grid (≤ 1e-6 unless the spectrum spreads
      beyond e^{−700});
    - ``error``: an estimate of the grid's error in the continuous mass (see below).

    ``x`` and ``density`` give ρ on the grid.
    """

    log_mean: float
    atoms: Array
    atom_mass: Array
    lambda_max: float
    s: Array
    rate: Array
    rate_ds: Array
    unresolved: float
    #: Estimated error of the continuous mass on the grid: Σ corr²/panel over the panels
    #: (corr, the Hermite end correction, is O(h²) of a panel and the rule's error O(h⁴)).
    error: float = 0.0

    @property
    def x(self) -> Array:
        """Grid points λ/m₁ (decreasing)."""
        return self.lambda_max * np.exp(-self.s * self.s)

    @property
    def density(self) -> Array:
        """ρ(x) of the continuous part on :attr:`x` (atoms excluded)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.s > 0, self.rate / (2 * self.s * self.x), 0.0)

    @property
    def log_density(self) -> Array:
        """x ρ(x) = the density of log x (what a histogram of log eigenvalues shows)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.s > 0, self.rate / (2 * self.s), 0.0)

    def _above(self, s: Array, k: int = 0) -> Array:
        """∫_0^s x^k · rate ds (continuous mass above, or its k-th moment), vectorised in s."""
        g, dg = self.rate, self.rate_ds
        if k:
            xk = self.x**k
            g, dg = g * xk, xk * (dg - 2 * k * self.s * g)
        grid = self.s
        # First panel [0, s₁]: g ∝ s^a with a = s g'/g at s₁ (a = 2 at a square-root edge).
        a = float(np.clip(grid[0] * dg[0] / g[0], -0.9, 8.0)) if g[0] > 0 else 2.0
        first = g[0] * grid[0] / (a + 1)
        h = np.diff(grid)
        panels = 0.5 * h * (g[1:] + g[:-1]) + h * h * (dg[:-1] - dg[1:]) / 12
        cum = np.concatenate(([0.0, first], first + np.cumsum(panels)))
        knots = np.concatenate(([0.0], grid))
        s = np.asarray(s, dtype=np.float64)
        i = np.clip(np.searchsorted(knots, s, side="right") - 1, 0, knots.size - 1)
        out = cum[i].copy()
        inner = (i >= 1) & (i < knots.size - 1)
        j = i[inner] - 1  # panel between grid[j] and grid[j + 1]
        hh = h[j]
        tau = (s[inner] - grid[j]) / hh
        t2, t3, t4 = tau * tau, tau**3, tau**4
        out[inner] += hh * (
            g[j] * (t4 / 2 - t3 + tau)
            + hh * dg[j] * (t4 / 4 - 2 * t3 / 3 + t2 / 2)
            + g[j + 1] * (-t4 / 2 + t3)
            + hh * dg[j + 1] * (t4 / 4 - t3 / 3)
        )
        head = i == 0
        out[head] = first * (s[head] / grid[0]) ** (a + 1)
        return out

    def cdf(self, x: object) -> Array:
        """P(λ/m₁ ≤ x), vectorised: atoms plus the continuous mass (Hermite-interpolated)."""
        xa = np.asarray(x, dtype=np.float64)
        flat = xa.ravel()
        atoms_above = self._atoms_above(flat)
        cont_above = np.zeros(flat.size)
        if self.s.size:
            with np.errstate(divide="ignore"):
                s = np.sqrt(
                    np.maximum(math.log(self.lambda_max) - np.log(np.maximum(flat, 0.0)), 0.0)
                )
            cont_above = self._above(s)
        return np.clip(1.0 - atoms_above - cont_above, 0.0, 1.0).reshape(xa.shape)

    def _atoms_above(self, x: Array) -> Array:
        order = np.argsort(self.atoms)
        tail = np.concatenate((np.cumsum(self.atom_mass[order][::-1])[::-1], [0.0]))
        return tail[np.searchsorted(self.atoms[order], x, side="right")]

    def moment(self, k: int) -> float:
        """E[x^k] = ∫ x^k dρ over atoms and the density (k ≥ 0)."""
        a = float(np.sum(self.atom_mass * self.atoms**k))
        if not self.s.size:
            return a
        return a + float(self._above(np.array([self.s[-1]]), k)[0])


class _Problem:
    """Distinct normalised D² laws (atoms padded to one array) with multiplicities.

    The unknowns are v = 1 + ψ (not ψ: at the bottom of a wide spectrum ψ → −1 and 1 + ψ must
    keep its relative precision) and w_k; 1 + ψ_k(w) = Σ_j p_j/(1 − w d_j) has no cancellation.
    """

    def __init__(self, laws: Sequence[D2Law], counts: Sequence[int], gaussian: int) -> None:
        K = len(laws)
        na = max(1, max(law.atoms.size for law in laws))
        nb = max(1, max(law.bins[0].size for law in laws))
        self.a = np.zeros((K, na))
        self.pa = np.zeros((K, na))
        self.lo = np.zeros((K, nb))
        self.hi = np.zeros((K, nb))
        self.pb = np.zeros((K, nb))
        for i, law in enumerate(laws):
            mean = law.mean
            self.a[i, : law.atoms.size] = law.atoms / mean
            self.pa[i, : law.atoms.size] = law.atom_mass
            lo, hi, m = law.bins
            self.lo[i, : lo.size] = lo / mean
            self.hi[i, : hi.size] = hi / mean
            self.pb[i, : m.size] = m
        self.width = self.hi - self.lo
        self.has_bins = bool(np.any(self.pb > 0))
        self.n = np.asarray(counts, dtype=np.float64)
        self.L = float(self.n.sum())
        self.G = float(gaussian)
        self.dmax = np.maximum(self.a.max(axis=1), self.hi.max(axis=1))
        self._dk: tuple[CArray, CArray] | None = None  # (w, ψ_k'(w)) of the last Newton solve

    def dmin_positive(self, k: int) -> float:
        """The smallest nonzero value law k takes (atoms or histogram), normalised."""
        a = self.a[k][(self.pa[k] > 0) & (self.a[k] > 0)]
        lo = self.lo[k][self.pb[k] > 0]
        return float(min(a.min(initial=math.inf), lo.min(initial=math.inf)))

    def v_k(self, w: Any) -> tuple[Any, Any]:
        """1 + ψ_k(w_k) = E[1/(1 − w d)] and ψ_k'(w_k) = E[d/(1 − w d)²] for every law k.

        Atoms: Σ p/(1 − w a). A bin of mass m, uniform on [lo, hi] (Δ = hi − lo):
        m ℓ(x)/(1 − w·hi) with x = wΔ/(1 − w·hi) and ℓ(x) = log(1 + x)/x, the exact integral
        (1/Δ)∫ dd/(1 − w d), written so that narrow bins lose no digits.
        """
        wc = w[..., None]  # w: (..., K), vectorised over leading axes (points of the grid)
        inv = 1.0 / (1.0 - wc * self.a)
        pi = self.pa * inv
        v = pi.sum(axis=-1)
        dv = (pi * inv * self.a).sum(axis=-1)
        if not self.has_bins:
            return v, dv
        # Multiplications only (a complex division costs several): r = 1/(1 − w·hi).
        r = 1.0 / (1.0 - wc * self.hi)
        x = wc * self.width * r
        ell, dell = _ell(x)
        pr = self.pb * r
        v = v + np.einsum("...i,...i->...", pr, ell)
        # E over the bin of d/(1 − wd)² = m r² (ℓ'(x) Δ r + ℓ(x) hi)
        dv = dv + np.einsum("...i,...i->...", pr * r, dell * x / wc + ell * self.hi)
        return v, dv

    def log_z(self, v: Any, w: CArray) -> Any:
        """log z(v, w), vectorised over leading axes (w: (..., K))."""
        return (
            (1 + self.G - self.L) * np.log(v)
            + (self.L - 1) * np.log(v - 1)
            - np.sum(self.n * np.log(w), axis=-1)
        )

    def _b(self, v: Any) -> Any:
        return (1 + self.G - self.L) / v + (self.L - 1) / (v - 1)

    def newton(self, t: complex, v: complex, w: CArray, iters: int = 60) -> State | None:
        """Solve log z = t (mod 2πi) for (v, w) from a start; None if it does not converge.

        Python complex scalars for v and one array pass over the laws per iteration: for one
        point the number of numpy calls, not the arithmetic, is the cost.
        """
        w = w.astype(np.complex128)
        last = math.inf
        n, c0 = self.n, 1 + self.G - self.L
        with np.errstate(all="ignore"):  # a start that leaves range fails (not finite) below
            for _ in range(iters):
                vk, dk = self.v_k(w)
                ek = vk - v
                e0 = complex(c0 * cmath.log(v) + (self.L - 1) * cmath.log(v - 1)) - complex(
                    np.dot(n, np.log(w))
                )
                e0 -= t
                e0 = complex(e0.real, (e0.imag + math.pi) % _TWO_PI - math.pi)
                c = n / (w * dk)
                dv = (-e0 - complex(np.dot(c, ek))) / (
                    c0 / v + (self.L - 1) / (v - 1) - complex(c.sum())
                )
                dw = (dv - ek) / dk
                # Damp steps that would cross a branch point (ψ = 0, ψ = −1, w = 0).
                step = abs(dv)
                lim = 0.5 * min(abs(v - 1), abs(v))
                scale = min(1.0, lim / step) if step > 0 else 1.0
                scale = min(scale, float((0.5 * np.abs(w) / np.maximum(np.abs(dw), 1e-300)).min()))
                v = v + scale * dv
                w = w + scale * dw
                if not (cmath.isfinite(v) and np.all(np.isfinite(w))):
                    return None
                # Converged at rounding level, or stalled at the noise floor (near an edge the
                # Jacobian is nearly singular and amplifies the rounding of log z), or in the
                # quadratic regime with a next error e_{k+1} ≈ e_k³/e_{k−1}² below 1e-14 of the
                # distance to a branch point (saves the iterations that would only show the
                # noise floor, about 1e-12 here).
                size = min(abs(v - 1), abs(v))
                if scale == 1.0 and (
                    step <= 1e-13 * size + 4e-16 * abs(v)
                    or (step <= 1e-8 * size and step > 0.5 * last)
                    or (
                        last < math.inf
                        and step <= 1e-6 * size
                        and step**3 <= 1e-14 * size * min(last, size) ** 2
                    )
                ):
                    # ψ_k' at the last iterate (1e-11 away) serves the tangent at the solution.
                    self._dk = (w, dk)
                    return v, w
                last = step if scale == 1.0 else math.inf
        return None

    def dv_dt(self, v: complex, w: CArray) -> complex:
        """dv/d log z along the solution (implicit function theorem on the Newton system)."""
        return complex(self.tangent(v, w)[0])

    def tangent(self, v: Any, w: CArray) -> tuple[Any, CArray]:
        """(dv/d log z, dw_k/d log z) along the solution: ψ_k(w_k) = ψ gives ψ_k' dw_k = dv.
        Vectorised over leading axes (v: (...,), w: (..., K))."""
        cached = self._dk
        dk = cached[1] if cached is not None and cached[0] is w else self.v_k(w)[1]
        dv = 1 / (self._b(v) - np.sum(self.n / (w * dk), axis=-1))
        return dv, np.asarray(dv)[..., None] / dk

    def homotopy(self, lam: float) -> State | None:
        """Solve at z = λ + iη from η large down to 0, keeping Im ψ < 0 (the physical branch)."""
        eta = 4.0 * max(lam, 1.0)
        z = complex(lam, eta)
        v, w = z / (z - 1), np.full(self.n.size, 1 / z)  # ψ ≈ 1/(z − 1): a unit atom
        while True:
            sol = self.newton(complex(np.log(z)), v, w)
            if sol is None:
                return None
            v, w = sol
            if eta == 0.0:
                return v, w
            eta = eta / 2 if eta > 1e-13 * lam else 0.0
            z = complex(lam, eta)

    # ---------------------------------------------------------------- the real axis, ψ > 0

    def real_w(self, psi: Any) -> Array:
        """w_k ∈ (0, 1/d_max) with ψ_k(w_k) = ψ (ψ_k increases there); ψ of shape (...,)
        gives w of shape (..., K).

        Safeguarded Newton in u = −log(1 − w d_max) ∈ (0, ∞), which maps the interval onto a
        half-line on which ψ_k grows at most like e^u.
        """
        psi_in = np.asarray(psi, dtype=np.float64)
        shape = (*psi_in.shape, self.n.size)
        p = psi_in.reshape(-1, 1)
        lo = np.zeros((p.shape[0], self.n.size))
        hi = np.full(lo.shape, 745.0)
        u = np.broadcast_to(np.log1p(p), lo.shape).copy()
        run = np.arange(p.shape[0])  # the points still iterating
        for _ in range(100):
            if not run.size:
                break
            ur, lr, hr = u[run], lo[run], hi[run]
            # Real w, real arithmetic; w·d_max rounding to 1 (u large) gives inf or nan, which
            # counts as "above" and bisects.
            with np.errstate(all="ignore"):
                vk, dk = self.v_k(-np.expm1(-ur) / self.dmax)
                f = vk - 1 - p[run]
                new = ur - f / (dk * np.exp(-ur) / self.dmax)  # dψ/du = ψ'(w) dw/du
            lr = np.where(f < 0, ur, lr)
            hr = np.where(f < 0, hr, ur)
            bad = ~((new > lr) & (new < hr))
            new = np.where(bad, 0.5 * (lr + np.minimum(hr, lr + 10.0)), new)
            done = np.all(np.abs(new - ur) <= 1e-14 * (1 + ur), axis=-1)
            u[run], lo[run], hi[run] = new, lr, hr
            run = run[~done]
        return (-np.expm1(-u) / self.dmax).reshape(shape)

    def slope(self, psi: float) -> float:
        """ψ · d log z/dψ along the real axis."""
        return float(self.slopes(np.array([psi]))[0])

    def slopes(self, psi: Array) -> Array:
        """:meth:`slope` for an array of ψ at once."""
        w = self.real_w(psi)
        dk = self.v_k(w)[1]
        return np.asarray(psi * (self._b(1 + psi) - np.sum(self.n / (w * dk), axis=-1)))

    def start(self, log_top: float, psi_c: float | None, s: float) -> State | None:
        """The solution at log λ = log λ_max − s², s small.

        At a square-root edge log z ≈ log λ_max + ½c(ψ − ψ_c)², so ψ ≈ ψ_c − i s √(2/c) (the
        sign that makes the density positive); otherwise start from the upper half plane.
        """
        lam = math.exp(log_top - s * s)
        if psi_c is None:
            return self.homotopy(lam)
        d = 1e-4 * psi_c
        kappa = (self.slope(psi_c + d) / (psi_c + d) - self.slope(psi_c - d) / (psi_c - d)) / (
            2 * d
        )
        if not (kappa > 0 and math.isfinite(kappa)):  # a degenerate (flat) edge
            return self.homotopy(lam)
        dpsi = complex(0.0, -s * math.sqrt(2 / kappa))
        wc = self.real_w(psi_c).astype(np.complex128)
        w = wc + dpsi / self.v_k(wc)[1]
        sol = self.newton(complex(log_top - s * s), 1 + psi_c + dpsi, w)
        if sol is None or sol[0].imag >= 0:
            return self.homotopy(lam)
        return sol

    def edge(self) -> tuple[float, float | None]:
        """(log λ_max, ψ at the edge or None if the edge is the ψ → ∞ limit)."""
        from scipy.optimize import brentq

        logs = np.arange(-25.0, 36.0, 1.0)
        sl = np.zeros(0)
        for i, (a, b) in enumerate(itertools.pairwise(logs)):
            if i + 1 >= sl.size:  # the scan, 12 values of ψ at a time
                sl = np.concatenate((sl, self.slopes(np.exp(logs[sl.size : sl.size + 12]))))
            if sl[i] < 0 <= sl[i + 1]:
                m = brentq(lambda v: self.slope(math.exp(v)), a, b, xtol=1e-14, rtol=1e-15)
                psi = math.exp(m)
                w = self.real_w(psi).astype(np.complex128)
                return float(self.log_z(1 + psi, w).real), psi
        # No critical point: the edge is lim_{ψ→∞} z = Π d_max^{n_k} (orthogonal weights only).
        return float(np.sum(self.n * np.log(self.dmax))), None


# ℓ(x) = log(1 + x)/x by its series for |x| < _ELL_SMALL (_ELL_TERMS powers: truncation
# below 1e-17 relative), by an accurate logarithm elsewhere (_ell).
_ELL_SMALL = 2e-3
_ELL_TERMS = 5


def _ell(x: CArray) -> tuple[CArray, CArray]:
    """ℓ(x) = log(1 + x)/x and ℓ'(x) = (1/(1 + x) − ℓ(x))/x, vectorised.

    |x| < _ELL_SMALL (most bins: narrow ones): the series ℓ = Σ_j (−x)^j/(j + 1),
    ℓ' = −Σ_j (−x)^j (j + 1)/(j + 2) to j = _ELL_TERMS (truncation below 1e-17 relative).
    Elsewhere log(1 + x) accurately, as ½ log1p(2 Re x + |x|²) + i atan2(Im x, 1 + Re x)
    (numpy's complex log1p loses digits for small x); ℓ' then cancels to about 1e-16/|x|
    relative (≤ 1e-13), harmless where it is used (Newton's Jacobian and the tangent).
    """
    small = abs(x) < _ELL_SMALL
    ell = np.empty_like(x)
    dell = np.empty_like(x)
    xs = -x[small]
    p = xs
    e = 1.0 + p * 0.5
    d = -0.5 - p * (2.0 / 3.0)
    for j in range(2, _ELL_TERMS + 1):
        p = p * xs
        e += p * (1.0 / (j + 1))
        d -= p * ((j + 1) / (j + 2))
    ell[small] = e
    dell[small] = d
    big = ~small
    if big.any():
        xb = x[big]
        if np.iscomplexobj(xb):
            re, im = xb.real, xb.imag
            log1 = 0.5 * np.log1p(2 * re + re * re + im * im) + 1j * np.arctan2(im, 1 + re)
        else:
            log1 = np.log1p(xb)
        lb = log1 / xb
        ell[big] = lb
        dell[big] = (1 / (1 + xb) - lb) / xb
    return ell, dell


def _atoms(laws: Sequence[D2Law], counts: Sequence[int], gaussian: int) -> tuple[Array, Array]:
    """Point masses of the free product (module docstring), in units of the mean."""
    L = sum(counts)
    pos: list[float] = []
    mass: list[float] = []
    zero = max(law.zero_mass for law in laws)
    if zero > 0:
        pos.append(0.0)
        mass.append(zero)
    if gaussian:
        return np.array(pos), np.array(mass)
    # Orthogonal weights only: an atom at Π a_l of mass Σ_l P(d_l = a_l) − (L − 1) when > 0.
    best = [float(law.atom_mass.max()) if law.atoms.size else 0.0 for law in laws]
    slack = sum(n * b for n, b in zip(counts, best, strict=True)) - (L - 1)
    if slack <= 0:
        return np.array(pos), np.array(mass)
    choices = []
    for law, n, b in zip(laws, counts, best, strict=True):
        keep = (law.atoms > 0) & (n * (b - law.atom_mass) < slack)
        choices.append(list(zip(law.atoms[keep] / law.mean, law.atom_mass[keep], strict=True)))
    combos: list[tuple[float, float]] = [(0.0, 0.0)]
    for ch, n in zip(choices, counts, strict=True):
        combos = [(lv + n * math.log(v), m + n * p) for lv, m in combos for v, p in ch]
    for lv, m in combos:
        if m - (L - 1) > 1e-15:
            pos.append(math.exp(lv))
            mass.append(m - (L - 1))
    return np.array(pos), np.array(mass)


def _change(a: complex, b: complex) -> float:
    # Change of v = 1 + ψ relative to the nearer branch point (ψ = 0 or ψ = −1): Newton's
    # warm start is reliable while this is small.
    return abs(a - b) / min(abs(a), abs(a - 1))


def solve_spectrum(
    laws: Sequence[D2Law],
    counts: Sequence[int],
    gaussian: int,
    log_mean: float,
    *,
    tol: float = 1e-6,
    max_points: int = 20000,
) -> Spectrum:
    """The law of JJᵀ/m₁ for distinct D² laws ``laws`` used ``counts`` times (module doc)."""
    empty = np.zeros(0)
    if gaussian == 0 and sum(counts) == 1:
        # One orthogonal layer: JJᵀ = σ_w² D² exactly, the law itself, given by its quadrature
        # atoms (a staircase CDF with steps ≤ 1% for a continuous law).
        law = laws[0]
        vals, inverse = np.unique(law.values / law.mean, return_inverse=True)
        weights = np.asarray(np.bincount(inverse, weights=law.probs), dtype=np.float64)
        return Spectrum(log_mean, vals, weights, float(vals.max()), empty, empty, empty, 0.0)
    atoms, amass = _atoms(laws, counts, gaussian)
    cont = 1.0 - float(amass.sum())
    prob = _Problem(laws, counts, gaussian)
    log_top, psi_c = prob.edge()
    lam_max = math.exp(log_top)
    if cont <= tol:
        return Spectrum(log_mean, atoms, amass, lam_max, empty, empty, empty, max(cont, 0.0))

    # Orthogonal weights and no zero atoms: no eigenvalue below Π_k (smallest d_k)^{n_k}
    # (‖J v‖ ≥ Π_l min|D^l|·‖v‖). With dead units the continuous part reaches down to 0.
    log_bottom = -math.inf
    if gaussian == 0 and all(law.zero_mass == 0 for law in laws):
        lows = [prob.dmin_positive(k) for k in range(len(laws))]
        if all(lo > 0 for lo in lows):
            log_bottom = float(np.sum(prob.n * np.log(lows))) - 1e-9

    # March down in s = √(log λ_max − log λ) with an adaptive step; the continuous mass is
    # ∫ρ dλ = ∫ 2 s λ ρ ds = ∫ −(2/π) s Im ψ ds, smooth in s at square-root edges (∝ s²) and at
    # the divergent edges of orthogonal nets (∝ s⁰).
    s = _FIRST_S
    state = prob.start(log_top, psi_c, s)
    if state is None:
        raise GradmathError("The spectral-density solver found no solution next to the edge.")
    ss: list[float] = []
    rates: list[float] = []
    slopes: list[float] = []
    h = s

    def record(s: float, v: complex, w: CArray) -> tuple[complex, CArray]:
        """Store the rate and its s-derivative; returns (dv/ds, dw/ds) for the predictor."""
        dv, dw = prob.tangent(v, w)
        g, dg = _rates(np.array([s]), np.array([v]), np.array([-2 * s * complex(dv)]))
        ss.append(s)
        rates.append(float(g[0]))
        slopes.append(float(dg[0]))
        return -2 * s * complex(dv), -2 * s * dw

    tangent = record(s, *state)
    # The first panel, g ∝ s^a with a = s g'/g (2 at a square-root edge, 0 where the density
    # diverges like 1/√(λ_max − λ)), as Spectrum._above integrates it.
    a = float(np.clip(s * slopes[0] / rates[0], -0.9, 8.0)) if rates[0] > 0 else 2.0
    mass = rates[0] * s / (a + 1)
    # Each panel's Hermite rule errs by about corr²/panel (corr, the end correction, is O(h²)
    # of the panel, the rule's error O(h⁴)): their sum is the grid's error estimate.
    error = 0.0
    while len(ss) < max_points:
        s_new = s + h
        t = log_top - s_new * s_new
        # Euler predictor in s (v is smooth in s at square-root edges): fewer Newton steps.
        sol = prob.newton(complex(t), state[0] + h * tangent[0], state[1] + h * tangent[1])
        if sol is None:
            sol = prob.newton(complex(t), *state)
        change = math.inf if sol is None else _change(sol[0], state[0])
        if change > _MAX_CHANGE and h > 1e-7:
            h *= 0.5
            continue
        # A real solution is physical only where ψ(1/z) decreases in z (outside the support);
        # entering a band from a gap, Newton may land on the other, unphysical real root.
        if (
            sol is None
            or sol[0].imag > 1e-12 * abs(sol[0])
            or (sol[0].imag > -1e-12 * abs(sol[0]) and prob.dv_dt(*sol).real > 0)
        ):
            sol = prob.homotopy(math.exp(t))
            if sol is None and cont - mass < _GIVE_UP:
                break  # what is left is reported as ``unresolved``
            if sol is None:
                raise GradmathError(
                    f"The spectral-density solver did not converge at λ/m₁ = {math.exp(t):.6g}.",
                    partial=(np.array(ss), np.array(rates)),
                )
        g0, d0 = rates[-1], slopes[-1]
        new_tangent = record(s_new, *sol)
        g1, d1 = rates[-1], slopes[-1]
        panel = 0.5 * h * (g0 + g1)
        corr = abs(h * h * (d0 - d1) / 12)
        if corr > 4 * _PANEL_TOL * (abs(panel) + tol * h) and h > 1e-7:
            for lst in (ss, rates, slopes):
                lst.pop()
            h *= 0.5
            continue
        mass += panel + h * h * (d0 - d1) / 12
        error += corr * corr / (abs(panel) + tol * h)
        # The Hermite correction is O(h²) of the panel, its error O(h⁴): aim it at _PANEL_TOL.
        grow = math.sqrt(_PANEL_TOL * (abs(panel) + tol * h) / max(corr, 1e-300))
        h = min(_MAX_STEP, h * min(2.0, max(0.5, grow)), 4 * h if change < 0.1 else h)
        state, tangent = sol, new_tangent
        s = s_new
        if t < max(-700.0, log_bottom) or cont - mass < tol:
            break
    grid, rate, rate_ds = np.array(ss), np.array(rates), np.array(slopes)
    sp = Spectrum(log_mean, atoms, amass, lam_max, grid, rate, rate_ds, 0.0)
    rest = max(cont - float(sp._above(np.array([s]))[0]), 0.0)
    return Spectrum(log_mean, atoms, amass, lam_max, grid, rate, rate_ds, rest, error)


def _rates(s: Array, v: CArray, dv_ds: CArray) -> tuple[Array, Array]:
    """The continuous mass per unit s, −(2/π) s Im ψ (0 in a gap), and its s-derivative."""
    im = np.minimum(0.0, v.imag)
    rate = -2 / math.pi * s * im
    slope = np.where(im < 0, -2 / math.pi * (im + s * dv_ds.imag), 0.0)
    return rate, slope
