"""The law of one channel's field when it is not Gaussian, carried by draws.

At infinite channels every channel of a layer is an independent copy of one random field over
(example, position). After a convolution or a batch norm that field is Gaussian and its second
moments say everything (:mod:`gradmath.network.spatial`). Two places make it non-Gaussian in a
way that later layers feel beyond second moments:

- a post-activation residual block, z = φ(x + F(x)) with x itself an activation's output
  (ResNet's BasicBlock): x + F(x) is a rectified Gaussian plus an independent Gaussian field
  (the branch's weights are independent of x, so at infinite width F(x) is independent of any
  one channel of x), and φ of it needs the law of x, not just its moments;
- max-pooling, whose output is a maximum over a window.

Such a law is carried as draws: ``(M, 2, P)`` values of the field for two examples of a batch
(which gives the moments for one example, K, and for two, C, that the Gaussian layers after it
need) over P positions, in the units of the signal (mean diagonal of K = 1; the scale stays in
``Signal.log_q``). The expectations are then Monte-Carlo integrals of the exact infinite-width
law, with M = :func:`count` draws from a fixed seed (deterministic); their error, ~1/√(M·P)
relative for a row's mean over positions, is about 1e-3 (M·P ≥ :data:`NUMBERS`), below the
resolution of a comparison with a sampled network. (With M = 8192 at one position it was
1 %, which a 64-network simulation of 256 channels resolves: z ≈ 6 on a ResNet block's
forward row.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DRAWS",
    "EXACT_BATCH_NORM",
    "NUMBERS",
    "Parts",
    "batchnorm",
    "batchnorm_batches",
    "count",
    "gaussian",
    "lazy",
    "moments",
    "pairs",
]

FloatArray = NDArray[np.float64]

#: Fewest draws of a channel's field (pairs of examples) per non-Gaussian law.
DRAWS = 8192
#: Numbers per example drawn at least (M·P), so that few positions get many draws.
NUMBERS = 2**18


def count(p: int) -> int:
    """M, the draws for a field over ``p`` positions: max(DRAWS, NUMBERS/p)."""
    return max(DRAWS, NUMBERS // max(p, 1))


def gaussian(cov: FloatArray, cross: FloatArray | None, seed: int = 0) -> FloatArray:
    """(M, 2, P) draws of a centred Gaussian field with covariance ``cov`` for one example and
    ``cross`` between two (0 when ``None``)."""
    p = cov.shape[0]
    c = np.zeros_like(cov) if cross is None else cross
    root = _root(np.block([[cov, c], [c, cov]]))
    m = count(p)
    z = np.random.default_rng(seed).standard_normal((m, 2 * p))
    return (z @ root.T).reshape(m, 2, p)


def _root(m: FloatArray) -> FloatArray:
    """R with R Rᵀ = m for a covariance m (eigenvalues rounded below 0 clipped to 0)."""
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    return np.asarray(v * np.sqrt(np.clip(w, 0.0, None)))


#: Largest N = B·P (numbers a batch norm normalises per channel) whose output is drawn exactly
#: (:func:`batchnorm`); above it the Gaussian law with the same moments is within O(1/N).
EXACT_BATCH_NORM = 1024


def batchnorm(cov: FloatArray, cross: FloatArray | None, batch: int, seed: int = 0) -> FloatArray:
    """(M, 2, P) draws of a batch norm's output over examples and positions, exactly: the
    whole batches of :func:`batchnorm_batches` cut into pairs of examples (each pair has the
    exact joint law; B/2 of them per draw, so the numbers drawn do not grow with B)."""
    return pairs(batchnorm_batches(cov, cross, batch, seed))


def pairs(z: FloatArray) -> FloatArray:
    """(M·(B // 2), 2, P): draws of whole batches (M, B, P) cut into pairs of examples."""
    _, b, p = z.shape
    return np.ascontiguousarray(z[:, : b - b % 2]).reshape(-1, 2, p)


def batchnorm_batches(
    cov: FloatArray, cross: FloatArray | None, batch: int, seed: int = 0
) -> FloatArray:
    """(M, B, P) draws of a batch norm's output for a whole batch: the pre-norm field of all
    ``batch`` examples, Gaussian with covariance I_B ⊗ (K − C) + J_B ⊗ C (``cov`` = K,
    ``cross`` = C), centred and scaled over its N = B·P entries (so each draw has mean 0 and
    mean square 1, the finite-N law: at one position the sphere of Yang et al. 2019);
    M = count(P)/(B/2) draws."""
    p = cov.shape[0]
    c = np.zeros_like(cov) if cross is None else cross
    rng = np.random.default_rng(seed)
    m = -(-count(p) // (batch // 2))
    z = rng.standard_normal((m, batch, p)) @ _root(cov - c).T
    z += rng.standard_normal((m, 1, p)) @ _root(c).T
    z -= z.mean(axis=(1, 2), keepdims=True)
    z /= np.sqrt(np.mean(z * z, axis=(1, 2), keepdims=True))
    return z


def moments(d: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """(log of the mean diagonal of K, K, C) of draws ``d`` (M, 2, P), K and C divided by that
    mean: K_pp' = E[x_{b,p} x_{b,p'}] (both examples), C_pp' = E[x_{1,p} x_{2,p'}] symmetrised."""
    m = d.shape[0]
    a, b = d[:, 0], d[:, 1]
    k = (a.T @ a + b.T @ b) / (2 * m)
    c = a.T @ b / m
    c = 0.5 * (c + c.T)
    mean = float(np.mean(np.diagonal(k)))
    if not mean > 0:
        return -math.inf, k, c
    return math.log(mean), k / mean, c / mean


def lazy(fn: Callable[[], FloatArray]) -> Callable[[], FloatArray]:
    """``fn`` evaluated once, when first asked for (draws only a non-Gaussian layer needs)."""
    return cache(fn)


class Parts:
    """Draws of a sum x + α·F(x) (a residual block's output) that also keep its two sides.

    Called, it returns the sum's draws (as :func:`lazy`). ``covs``: each side's position
    covariance, the very array of the signal it came from (a batch norm recognises its own
    output by identity); ``sides()``: each side's draws in that side's own units (the same
    draws as the sum's), so that a layer after the sum can integrate jointly with a side:
    the backward of a batch norm feeding the sum needs E[y φ'(u) y' φ'(u')] with u the sum
    and y its output (:class:`~gradmath.network.base.Tied`).
    """

    def __init__(
        self,
        total: Callable[[], FloatArray],
        covs: tuple[FloatArray, ...],
        sides: Callable[[], Any],
    ) -> None:
        self.total, self.covs, self.sides = lazy(total), covs, lazy(sides)

    def __call__(self) -> FloatArray:
        return self.total()
