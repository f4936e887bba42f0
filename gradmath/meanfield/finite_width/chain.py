"""The exact law of the forward chain, propagated deterministically on a grid.

For Gaussian weights the conditional variance of layer l's pre-activations,
A^l = v_l ‖x^{l−1}‖² + σ_b², is a scalar Markov chain (:mod:`.expansion`):

    A^{l+1} = σ_{l+1}² M_l + σ_b²,      M_l = (1/n_l) Σ_{i=1..n_l} Y_i,   Y_i = φ(√(A^l) z_i)²,

and under gradient independence (Schoenholz et al. 2017, §4) the gradient's second moment is
q̃^l = q̃^L E[Π_{k=l}^{L−1} σ̃_{k+1}² D_k] with D_k = (1/n_k) Σ_i φ'(h^k_i)², a function of the
same h^k. When depth/width is of order one the law of A^l is broad and no expansion in 1/n
holds (GELU with He weights at width 256, depth 20: E[A^{19}] is 0.080 against 0.0106 from mean
field). This module computes that law itself, without sampling:

1. Transition. For a node A, the law of Y is discretised from a composite Gauss–Legendre rule
   in z (split at the activation's kinks) onto a lattice of spacing sd(Y)/:data:`LATTICE`,
   each node's mass split between its two lattice neighbours (mean-preserving); the law of
   n_l·M is the n_l-fold convolution, one FFT power on a window of ±:data:`WINDOW` standard
   deviations (the characteristic function of the sum, evaluated on the lattice). The
   backward factor uses the same sum tilted by φ'(h_1)²: E[D_k f(M_k)] = E[φ'(h_1)² f(M_k)]
   (the units are exchangeable), i.e. the FFT of the tilted law of one term times the
   (n_l − 1)-th power of the plain one.
2. Propagation. The density of log A^l lives on a uniform grid in log A whose spacing is
   the smallest one-step standard deviation over :data:`PER_SD`; the next layer's density is the
   trapezoidal integral over the current one (exponentially accurate for a kernel several
   grid spacings wide). Layer 1 is exact: A^1 = v_1 input_q χ²_{n_0} + σ_b².
3. Backward. G_k(A) = E[σ̃² D_k G_{k+1}(A^{k+1}) | A^k = A], G_L = 1, on the same grid; then
   q̃^l = q̃^L E[G_l(A^l)] and E[(∂L/∂W^l_ij)²] = q̃^L E[G_l(A^l)(A^l − σ_b²)]/σ_l².

Discretisation errors (lattice splitting inflates each term's variance by at most
sd(Y)²/(4·LATTICE²), 0.25%) are far below the Monte-Carlo resolution of any simulation that
tests it; tests check it against the exact ReLU law and against the sampled chain
(:func:`gradmath.numeric.length_chain`).

Non-Gaussian weights (Keras' truncated normals) make h^l given x^{l−1} non-Gaussian with fourth
cumulant k₄_l; as in :mod:`.expansion`, M_l and D_l are shifted by (k₄_l/6)·d²/dA² of their
means, with k₄_l/A² taken on the mean-field path. That part is O(1/n), not exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.errors import GradmathError, check_positive
from gradmath.meanfield.finite_width.expansion import (
    FiniteWidthProfile,
    LayerSpec,
    expand,
)

__all__ = ["chain_grid", "chain_law"]

Array = NDArray[np.float64]

#: Lattice points per standard deviation of one term Y.
LATTICE = 10
#: Half-width of the FFT window for the sum, in its standard deviations.
WINDOW = 24.0
#: Grid points per smallest one-step standard deviation of log A (the trapezoidal rule's
#: error for a kernel that smooth is of order e^{−2π²·PER_SD²}). Measured against PER_SD = 2
#: (twice the cost): ≤ 1.1e-4 in every log moment and ≤ 7e-4 in the SD of log q (tanh width 32
#: depth 20, GELU width 256 depth 20, ReLU width 16 depth 10), far below any Monte-Carlo
#: resolution; PER_SD = 0.5 is off by up to 0.07.
PER_SD = 1.0
#: Relative size of the FFT's rounding noise, below which lattice values are set to 0.
ROUNDING = 1e-13
#: Largest grid the computation accepts, and largest grid × layers (the work; a wide deep
#: net, e.g. width 4096 at depth 300, would otherwise run for many minutes).
MAX_NODES = 60000
MAX_WORK = 1_000_000
#: Densities below this fraction of the layer's maximum are dropped (tails of e^{−37}).
TINY = 1e-16
#: Probability the grid may lose at its edges (networks whose signal leaves the grid's range
#: in log q, e.g. GELU nets collapsing towards q = 0) before the computation refuses.
MAX_LOST = 1e-6

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_EDGES = np.linspace(-10.0, 10.0, 161)


def _z_rule(kinks: tuple[float, ...], s: float) -> tuple[Array, Array]:
    # Composite Gauss–Legendre on z ∈ [−10, 10], panels of width 0.125, split at kinks/s.
    inner = [k / s for k in kinks if s > 0 and abs(k / s) < 10.0]
    edges = np.union1d(_EDGES, inner) if inner else _EDGES
    lo, hi = edges[:-1, None], edges[1:, None]
    z = (0.5 * (hi - lo) * _GL_X[None, :] + 0.5 * (hi + lo)).ravel()
    w = (0.5 * (hi - lo) * _GL_W[None, :]).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z, w


#: The weights that tilt the law of the sum (module docstring, step 3), as functions of
#: (φ(u), φ'(u), z) with u = √A z; "psi2" tilts two units, each by φφ'z.
_TILTS: dict[str, Any] = {
    "d": lambda f, df, z: df * df,
    "dz": lambda f, df, z: df * df * z * z,
    "fd": lambda f, df, z: f * f * df * df,
    "fdz": lambda f, df, z: f * f * df * df * z * z,
    "psi": lambda f, df, z: f * df * z,
}


@dataclass
class _Sum:
    """Law of S = Σ_{i≤n} Y_i on a lattice origin + k·step, plain and tilted.

    ``dens`` is the density of S; ``tilts[name]`` the density of S weighted by the tilt of
    unit 1 (by unit 1 and 2 for "psi2"); ``mass[name]`` its total, E[w(h_1)]; ``curv[name]``
    A²(E[w])''/E[w], for the weights' kurtosis shift; ``curv_m`` = A² m''(A).
    """

    origin: float
    step: float
    dens: Array
    tilts: dict[str, Array]
    mass: dict[str, float]
    curv: dict[str, float]
    curv_m: float
    dead: bool  #: φ(h) = 0 with positive probability (ReLU): S has mass near 0

    def at(self, s: Array, name: str | None) -> Array:
        f = self.dens if name is None else self.tilts[name]
        x = (s - self.origin) / self.step
        return np.interp(x, np.arange(f.size), f, left=0.0, right=0.0)


def _sum_law(act: Activation, a: float, n: int) -> _Sum:
    s = math.sqrt(a)
    z, w = _z_rule(act.kinks, s)
    u = s * z
    f, df = act(u), act.deriv(u)
    y = f * f
    ey = float(w @ y)
    sd = math.sqrt(max(float(w @ (y - ey) ** 2), 0.0))
    if not sd > 1e-300 or not math.isfinite(sd):
        raise GradmathError(
            f"φ(h)² does not fluctuate at q = {a:.3g} ({act.name}): the chain is deterministic "
            "there; use the mean-field or O(1/n) prediction."
        )
    h = sd / LATTICE
    half = WINDOW * math.sqrt(n) * sd
    size = 1 << max(8, math.ceil(math.log2(2 * half / h)))
    # Y = 0 on a lattice point, so the atom of φ = 0 (ReLU's dead units) stays exact.
    origin = n * h * math.floor((ey - 0.5 * size * h / n) / h)
    # Each term's lattice coordinate relative to origin/n; split mass between neighbours.
    x = (y - origin / n) / h
    k = np.floor(x)
    frac = x - k
    ki = k.astype(np.int64) % size
    kj = (ki + 1) % size

    def lattice(weight: Array) -> NDArray[np.complex128]:
        p = np.bincount(ki, weight * (1 - frac), size) + np.bincount(kj, weight * frac, size)
        out: NDArray[np.complex128] = np.fft.rfft(p)
        return out

    fp = lattice(w)
    pow_n2 = fp ** (n - 2) if n >= 2 else np.ones_like(fp)
    pow_n1 = pow_n2 * fp
    dens = np.fft.irfft(pow_n1 * fp, size) / h
    # Below ~1e-13 of the peak the FFT's values are rounding noise, not probability.
    dens[dens < ROUNDING * dens.max()] = 0.0
    he4 = 0.25 * (z**4 - 6 * z**2 + 3)  # a² d²/da² E[g(√a z)] = E[g·He₄(z)]/4 (Stein)
    tilts, mass, curv = {}, {}, {}
    for name, fn in _TILTS.items():
        wt = fn(f, df, z)
        ft = lattice(w * wt)
        e = float(w @ wt)
        mass[name] = e
        curv[name] = float(w @ (wt * he4)) / e if e != 0 else 0.0
        tilts[name] = _clean(np.fft.irfft(pow_n1 * ft, size) / h)
        if name == "psi":
            tilts["psi2"] = _clean(np.fft.irfft(pow_n2 * ft * ft, size) / h)
            mass["psi2"], curv["psi2"] = e * e, 0.0
    dead = bool(np.any(y == 0.0))
    return _Sum(origin, h, dens, tilts, mass, curv, float(w @ (y * he4)), dead)


def _clean(f: Array) -> Array:
    f[np.abs(f) < ROUNDING * np.abs(f).max()] = 0.0
    return f


class _Transition:
    """Layer l → l+1: the kernels of all grid nodes that the law visits (computed on demand)."""

    def __init__(self, spec: LayerSpec, nxt: LayerSpec, grid: Array) -> None:
        self.act = spec.activation
        self.n = spec.fan_out
        self.sig = nxt.sigma_w2  # fan_in·Var[W^{l+1}]: forward for h and for the tangent
        self.bias = nxt.bias_var
        self.grid = grid
        self.cache: dict[int, _Sum] = {}
        self.cut: dict[int, bool] = {}

    def law(self, j: int) -> _Sum:
        if j not in self.cache:
            self.cache[j] = _sum_law(self.act, float(np.exp(self.grid[j])), self.n)
        return self.cache[j]

    def reaches_edge(self, j: int, kap: float) -> bool:
        """Whether the grid's ends cut off more than 1e-6 of node j's kernel.

        Such a node's future is unknown: the forward pass drops its mass (counted as lost) and
        the backward pass gives it no weight.
        """
        if j not in self.cut:
            t0, row = self.row(j, kap, None)
            edge = t0 == 0 or t0 + row.size >= self.grid.size
            mass = float(row.sum()) * (self.grid[1] - self.grid[0])
            self.cut[j] = edge and mass < 1 - 1e-6
        return self.cut[j]

    def row(self, j: int, kap: float, name: str | None) -> tuple[int, Array]:
        """(first target index, tilted density of log A' at the targets) from source node j.

        ``kap`` = k₄/A² of the weights' kurtosis (0 for Gaussian weights) shifts M by
        (k₄/6) m''(A) and scales a tilt's mass by 1 + (k₄/6)·A²(E[w])''/E[w].
        """
        law = self.law(j)
        shift = kap / 6.0 * law.curv_m  # (k₄/6) m''(A), in units of M
        lo = law.origin / self.n * self.sig + self.bias
        hi = (law.origin + law.step * law.dens.size) / self.n * self.sig + self.bias
        g = self.grid
        dx = g[1] - g[0]
        i0 = int(np.searchsorted(g, math.log(max(lo, self.bias, 1e-300))))
        i1 = int(np.searchsorted(g, math.log(hi)))
        aprime = np.exp(g[i0:i1])
        s = self.n * ((aprime - self.bias) / self.sig - shift)
        dens = law.at(s, name) * (self.n * aprime / self.sig)
        nz = np.flatnonzero(np.abs(dens) > TINY * np.max(np.abs(dens), initial=0.0))
        if nz.size:  # crop to where the kernel lives
            i0, dens = i0 + int(nz[0]), dens[nz[0] : nz[-1] + 1]
        total = 1.0 if name is None else law.mass[name]
        if name is not None and kap != 0.0:
            scale = 1.0 + kap / 6.0 * law.curv[name]
            dens *= scale
            total *= scale
        # The lattice's first cell, S ∈ [0, step) (ReLU's states with almost no live units),
        # has no logarithm; its mass goes to the node of S = step/2.
        if law.dead and name in (None, "d", "dz", "fd", "fdz") and dens.size:
            deficit = total - float(dens.sum()) * dx
            if deficit > 1e-9 * abs(total):
                y = math.log(self.sig * law.step / (2 * self.n) + self.bias)
                k = int(np.clip(np.searchsorted(g, y), 0, g.size - 1))
                if k < i0:
                    dens = np.concatenate((np.zeros(i0 - k), dens))
                    i0 = k
                dens[min(k - i0, dens.size - 1)] += deficit / dx
        return i0, dens


def _grid_spacing(specs: tuple[LayerSpec, ...], log_q: Array) -> float:
    # The smallest one-step sd of log A on the mean-field path, over PER_SD: √(2/n_0) at
    # layer 1, then √((m₄/m² − 1)/n_l)·(1 − σ_b²/q^{l+1}) from the fresh noise of M_l. One
    # vectorised quadrature per activation (depth 10,000 costs what depth 20 does).
    from gradmath.meanfield import gaussian as gs

    sds = [math.sqrt(2.0 / specs[0].fan_in)]
    L = len(specs)
    if L > 1:
        q = np.exp(np.clip(log_q[:-1], -700.0, 700.0))
        ratio = np.empty(L - 1)
        for act in {s.activation for s in specs[:-1]}:
            idx = np.array([i for i in range(L - 1) if specs[i].activation == act])
            m = gs.expect(lambda u, f=act: f(u) ** 2, q[idx], act.kinks)
            m4 = gs.expect(lambda u, f=act: f(u) ** 4, q[idx], act.kinks)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[idx] = m4 / (m * m) - 1.0
        n = np.array([s.fan_out for s in specs[:-1]], dtype=np.float64)
        bias = np.array([s.bias_var for s in specs[1:]])
        share = -np.expm1(np.log(np.maximum(bias, 1e-300)) - log_q[1:])
        share = np.where(bias > 0, share, 1.0)
        step = share * np.sqrt(np.maximum(np.nan_to_num(ratio, nan=0.0), 0.0) / n)
        sds.extend(step.tolist())
    return max(min(sds) / PER_SD, 1e-3)


def chain_grid(specs: tuple[LayerSpec, ...], log_q: Array) -> tuple[float, float, int]:
    """(lowest log A, spacing, number of nodes) of the grid :func:`chain_law` would use;
    raises :class:`GradmathError` when it needs more than :data:`MAX_NODES` (checked before
    any law is computed)."""
    L = len(specs)
    h = _grid_spacing(specs, log_q)
    s0 = specs[0]
    # Range: the mean-field path ± a generous multiple of the largest log-sd (ReLU-like 5/n).
    beta = sum(1.0 / s.fan_out for s in specs) + 1.0 / s0.fan_in
    spread = 12.0 * math.sqrt(8.0 * beta) + 2.0
    # Below, room for nets whose signal collapses (a contracting map can halve q per layer).
    lo = float(np.min(log_q)) - spread - math.log(2) * L
    hi = float(np.max(log_q)) + spread
    nodes = math.ceil((hi - lo) / h) + 1
    if nodes > MAX_NODES or nodes * L > MAX_WORK:
        raise GradmathError(
            f"The exact chain needs {nodes} grid points (log-q range {hi - lo:.3g} at spacing "
            f"{h:.3g}) over {L} layers, more than {MAX_NODES} points or {MAX_WORK} point-layers: "
            "the net is too deep and wide for it; width_corrections='expansion' gives the "
            "O(1/n) answer."
        )
    return lo, h, nodes


def chain_law(
    specs: tuple[LayerSpec, ...],
    log_q: Array,
    log_grad_q: Array,
    input_q: float,
) -> FiniteWidthProfile:
    """The exact finite-width profile of a plain net from the law of its chain (module doc).

    ``log_q``, ``log_grad_q``: the mean-field profile (``gradmath.meanfield.predict``), used for
    the grid's range and spacing and returned alongside as ``log_*_mf``. Gaussian weights
    make the forward profile exact up to discretisation; the backward one assumes gradient
    independence (exact for ReLU, O(1/n) otherwise). The forward spread (``rel_var_q``,
    ``mean_log_q``, ``sd_log_q``) is exact; the gradient's is the expansion's, moved with the
    exact mean.
    """
    input_q = check_positive("input_q", input_q)
    L = len(specs)
    lo, h, nodes = chain_grid(specs, log_q)
    approx = expand(specs, log_q, log_grad_q, input_q)
    s0 = specs[0]
    scale1 = s0.sigma_w2 * input_q / s0.fan_in  # A^1 = scale1·χ²_{n0} + σ_b²
    grid: Array = lo + h * np.arange(nodes, dtype=np.float64)

    from scipy.special import gammaln, xlogy

    a = np.exp(grid)
    x = np.maximum((a - s0.bias_var) / scale1, 0.0)
    k = 0.5 * s0.fan_in  # χ²_{n0} density, times dA/dlog A = A
    logpdf = xlogy(k - 1, x) - 0.5 * x - k * math.log(2) - gammaln(k)
    p = np.where(x > 0, np.exp(logpdf) * a / scale1, 0.0)
    kap = _relative_kurtosis(specs, log_q, input_q)
    laws: list[tuple[int, Array]] = []
    lost, alive = 0.0, 1.0  # probability dropped at the grid's edges, and what remains
    trans: list[_Transition] = []
    cache: dict[tuple[Any, ...], _Transition] = {}
    for i in range(L):
        keep = np.flatnonzero(p > TINY * p.max())
        i0, i1 = int(keep[0]), int(keep[-1]) + 1
        dens = p[i0:i1] / (p[i0:i1].sum() * h)
        laws.append((i0, dens))
        if i == L - 1:
            break
        key = (specs[i].activation, specs[i].fan_out, specs[i + 1].sigma_w2,
               specs[i + 1].bias_var)  # fmt: skip
        if key not in cache:
            cache[key] = _Transition(specs[i], specs[i + 1], grid)
        tr = cache[key]
        trans.append(tr)
        p = np.zeros(nodes)
        for j in range(i0, i1):
            if tr.reaches_edge(j, kap[i]):
                lost += dens[j - i0] * h * alive
                continue
            t0, row = tr.row(j, kap[i], None)
            p[t0 : t0 + row.size] += dens[j - i0] * h * row
        alive = float(p.sum()) * h * alive if p.any() else 0.0
        if lost > MAX_LOST or not p.any():
            raise GradmathError(
                f"The law of q at layer {i + 2} leaves the grid (probability {lost:.2g} lost): "
                "depth/width is too large for this grid; use the O(1/n) expansion or a wider "
                "net."
            )

    # Backward: E[B^L | A^k, B^k, C^k] = α_k(A) B + β_k(A) C²/A (module docstring), from
    # α_L = 1, β_L = 0 down, each on its layer's support; q̃^l ∝ E[α_l(A^l)].
    mean_a, log_g, log_wg, rel_a, mlog_a, vlog_a = (np.empty(L) for _ in range(6))
    alpha: Array | None = None
    beta_t = np.zeros(0)  # β(A')/A' on the layer above
    a0 = 0
    for i in range(L - 1, -1, -1):
        i0, dens = laws[i]
        a = np.exp(grid[i0 : i0 + dens.size])
        if alpha is None:
            al, be = np.ones(dens.size), np.zeros(dens.size)
        else:
            tr, n = trans[i], trans[i].n
            s2 = tr.sig
            fa, fb = np.zeros(nodes), np.zeros(nodes)
            fa[a0 : a0 + alpha.size] = alpha
            fb[a0 : a0 + beta_t.size] = beta_t
            al, be = np.empty(dens.size), np.empty(dens.size)
            for j in range(dens.size):
                if tr.reaches_edge(i0 + j, kap[i]):  # dropped going forward (lost mass)
                    al[j] = be[j] = 0.0
                    continue
                e = {}
                for name, f in (("d", fa), ("dz", fa), ("fd", fb), ("fdz", fb), ("psi2", fb)):
                    t0, row = tr.row(i0 + j, kap[i], name)
                    e[name] = h * float(row @ f[t0 : t0 + row.size])
                al[j] = s2 * e["d"] + s2 * s2 / n * e["fd"]
                be[j] = s2 * (e["dz"] - e["d"]) + s2 * s2 * (
                    (e["fdz"] - e["fd"]) / n + (1 - 1 / n) * e["psi2"]
                )
        w = dens * h
        ea = float(w @ a)
        mean_a[i] = ea
        rel_a[i] = float(w @ (a * a)) / ea**2 - 1.0
        x = grid[i0 : i0 + dens.size]
        mlog_a[i] = float(w @ x) / float(w.sum())
        vlog_a[i] = float(w @ (x - mlog_a[i]) ** 2) / float(w.sum())
        log_g[i] = math.log(float(w @ al))
        log_wg[i] = math.log(float(w @ (al * (a - specs[i].bias_var)))) - math.log(
            specs[i].sigma_w2
        )
        alpha, beta_t, a0 = al, be / a, i0
    # q̃^l = q̃^L (n_L/n_l) E[α_l(A^l)]; the weight gradient adds E[‖x^{l−1}‖²]/n_{l−1}.
    n_out = np.array([s.fan_out for s in specs], dtype=np.float64)
    top = log_grad_q[-1] + math.log(n_out[-1]) - np.log(n_out)
    # log Q = log A + log(χ²_n/n) with the two independent (expansion.log_spread): exact.
    from scipy.special import digamma, polygamma

    half = 0.5 * n_out
    mlog_q = mlog_a + digamma(half) - np.log(half)
    sd_log_q = np.sqrt(vlog_a + polygamma(1, half))
    return FiniteWidthProfile(
        np.log(mean_a), top + log_g, top + log_wg, log_q, log_grad_q, approx.log_wgrad_q_mf,
        (1 + rel_a) * (1 + 2 / n_out) - 1, approx.rel_var_grad_q, "exact chain (grid)",
        mlog_q, sd_log_q, approx.mean_log_grad_q - approx.log_grad_q + top + log_g,
        approx.sd_log_grad_q,
    )  # fmt: skip


def _relative_kurtosis(specs: tuple[LayerSpec, ...], log_q: Array, input_q: float) -> Array:
    # k₄_l/A² of h^l on the mean-field path (zero for Gaussian weights); see expansion.py.
    gam = np.array([s.kurtosis for s in specs])
    if not np.any(gam):
        return np.zeros(len(specs))
    from gradmath.meanfield import gaussian as gs

    out = np.empty(len(specs))
    s0 = specs[0]
    out[0] = gam[0] * 3.0 * (s0.sigma_w2 * input_q) ** 2 / s0.fan_in / math.exp(2 * log_q[0])
    for i in range(1, len(specs)):
        q = math.exp(log_q[i - 1])
        act = specs[i - 1].activation
        m4 = float(gs.expect(lambda u, f=act: f(u) ** 4, q, act.kinks))
        out[i] = gam[i] * specs[i].sigma_w2 ** 2 * m4 / specs[i].fan_in / math.exp(2 * log_q[i])
    return out
