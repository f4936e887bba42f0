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
law, with M = :data:`DRAWS` draws from a fixed seed (deterministic); their error, ~1/√(M·P)
relative for a row's mean over positions, is far below the resolution of any comparison with a
sampled network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
from numpy.typing import NDArray

__all__ = ["DRAWS", "gaussian", "lazy", "moments"]

FloatArray = NDArray[np.float64]

#: Draws of a channel's field (pairs of examples) per non-Gaussian law.
DRAWS = 8192


def gaussian(cov: FloatArray, cross: FloatArray | None, seed: int = 0) -> FloatArray:
    """(M, 2, P) draws of a centred Gaussian field with covariance ``cov`` for one example and
    ``cross`` between two (0 when ``None``)."""
    p = cov.shape[0]
    c = np.zeros_like(cov) if cross is None else cross
    joint = np.block([[cov, c], [c, cov]])
    w, v = np.linalg.eigh(0.5 * (joint + joint.T))
    root = v * np.sqrt(np.clip(w, 0.0, None))
    z = np.random.default_rng(seed).standard_normal((DRAWS, 2 * p))
    return (z @ root.T).reshape(DRAWS, 2, p)


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
