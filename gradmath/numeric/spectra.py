"""Singular values of the input-output Jacobian of sampled networks.

For each sampled network (weights from the layers' own initializers, via
:func:`gradmath.numeric.sample_params`) and one input x^0 ~ N(0, input_q·I), the Jacobian
J = ∂x^L/∂x^0 = D^L W^L … D^1 W^1, D^l = diag φ_l'(h^l), is formed exactly by accumulating the
product layer by layer (h^l from :func:`gradmath.numeric.forward`); after every layer the
product is divided by its Frobenius norm and the logarithm kept, so depth and χ₁ ≠ 1 cannot
overflow. The eigenvalues of JJᵀ are the squared singular values (``numpy.linalg.svd``).

Eigenvalues of one matrix are not independent, so statistics are formed per network and
compared *across* independent networks (:mod:`gradmath.validate_spectra`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.mlp import MLP
from gradmath.numeric.network import forward, sample_params

__all__ = ["SampledSpectra", "jacobian", "sample_spectra"]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SampledSpectra:
    """Eigenvalues of JJᵀ of ``n_networks`` sampled networks.

    ``eigenvalues[i]`` (width,) are those of network i divided by e^{``log_scale[i]``}, so the
    true eigenvalues are ``eigenvalues[i]·exp(log_scale[i])`` (kept apart for deep nets whose
    spectra leave float range).
    """

    mlp: MLP
    eigenvalues: Array
    log_scale: Array
    input_q: float
    seed: int

    @property
    def n_networks(self) -> int:
        return int(self.eigenvalues.shape[0])

    def scaled(self, log_unit: float) -> Array:
        """Eigenvalues in units of e^{log_unit} (e.g. the theory's mean m₁), shape (K, width)."""
        return self.eigenvalues * np.exp(self.log_scale - log_unit)[:, None]

    def moments(self, k: int, log_unit: float = 0.0) -> Array:
        """Per-network empirical moments mean_j (λ_ij/e^{log_unit})^k, shape (K,)."""
        return np.mean(self.scaled(log_unit) ** check_positive_int("k", k), axis=1)


def jacobian(mlp: MLP, params: Any, x: Array) -> tuple[Array, float]:
    """(J/c, log c) for the input ``x`` of shape (n_0,): J = ∂x^L/∂x^0 of one network.

    >>> from gradmath import MLP
    >>> net = MLP((3, 3, 3), activation="linear", init="orthogonal")
    >>> p = sample_params(net, np.random.default_rng(0))
    >>> j, log_c = jacobian(net, p, np.ones(3))
    >>> np.allclose((j * np.exp(log_c)) @ (j * np.exp(log_c)).T, np.eye(3))
    True
    """
    cache = forward(mlp, params, np.asarray(x, dtype=np.float64)[None, :])
    j = np.eye(mlp.widths[0])
    log_c = 0.0
    for layer, (w, _), h in zip(mlp.layers, params, cache.h, strict=True):
        j = (layer.activation.deriv(h[0])[:, None] * w) @ j
        norm = float(np.linalg.norm(j))
        if norm == 0.0:
            raise GradmathError(f"The Jacobian is exactly zero after layer {layer.number}.")
        j /= norm
        log_c += math.log(norm)
    return j, log_c


def sample_spectra(mlp: MLP, *, n_networks: int, seed: int, input_q: float = 1.0) -> SampledSpectra:
    """Eigenvalues of JJᵀ for ``n_networks`` independently sampled copies of ``mlp``.

    Network i draws its weights and its input from its own generator (SeedSequence(seed)
    spawned), so results are reproducible and independent of how many are drawn.
    """
    if not isinstance(mlp, MLP):
        raise GradmathError(f"`mlp` must be a gradmath.MLP, got {type(mlp).__name__}.")
    if mlp.residual is not None or mlp.batchnorm:
        raise GradmathError("Jacobian spectra cover plain dense nets (no residual, no batch norm).")
    if len(set(mlp.widths)) != 1:
        raise GradmathError(f"Jacobian spectra need square layers, got widths {mlp.widths}.")
    n = check_positive_int("n_networks", n_networks)
    seed = check_seed(seed)
    input_q = check_positive("input_q", input_q)
    from gradmath.threads import pool

    width = mlp.widths[0]
    eig = np.empty((n, width))
    log_scale = np.empty(n)
    children = np.random.SeedSequence(seed).spawn(n)

    def one(i: int) -> None:
        rng = np.random.default_rng(children[i])
        params = sample_params(mlp, rng)
        x = rng.standard_normal(width) * math.sqrt(input_q)
        j, log_c = jacobian(mlp, params, x)
        sv = np.linalg.svd(j, compute_uv=False)
        eig[i] = np.sort(sv * sv)
        log_scale[i] = 2 * log_c

    # Networks are independent: one per thread, one BLAS thread each (gradmath.threads).
    with pool(n) as ex:
        if ex is None:
            for i in range(n):
                one(i)
        else:
            list(ex.map(one, range(n)))
    return SampledSpectra(mlp, eig, log_scale, input_q, seed)
