"""Singular values of the input-output Jacobian of sampled networks (any simulable Network).

For each sampled network and one input x^0 ~ N(0, input_q·I), J = ∂y/∂x^0 is formed exactly
by the layers' own simulation rules (:mod:`gradmath.network`): the forward rule runs on the
one example, and the backward rule, which is the transpose J_lᵀ of each layer's Jacobian, is
applied to the n_out unit vectors at once (their "batch" axis indexes the rows of J). No layer
is special-cased here, so the sampled Jacobian of a Dense, activation, LayerNorm or Residual
layer is by construction that of the network ``numeric.simulate`` samples. The rules carry a
log scale per network, so depth and χ₁ ≠ 1 cannot overflow (``log_scale``). The eigenvalues
of JJᵀ are the squared singular values (``numpy.linalg.svd``).

A layer with batch statistics (BatchNorm) couples the examples: one example's Jacobian is then
not defined, and :func:`sample_spectra` refuses.

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
from gradmath.initializers import Initializer
from gradmath.network import Network
from gradmath.network.base import RowCounter, Scaled
from gradmath.profile import as_network

__all__ = ["SampledSpectra", "jacobian", "sample_spectra"]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SampledSpectra:
    """Eigenvalues of JJᵀ of ``n_networks`` sampled copies of ``network``.

    ``eigenvalues[i]`` (min(n_in, n_out),) are those of network i divided by
    e^{``log_scale[i]``}, so the true eigenvalues are ``eigenvalues[i]·exp(log_scale[i])``
    (kept apart for deep nets whose spectra leave float range).
    """

    network: Network
    eigenvalues: Array
    log_scale: Array
    input_q: float
    seed: int

    @property
    def n_networks(self) -> int:
        return int(self.eigenvalues.shape[0])

    def scaled(self, log_unit: float) -> Array:
        """Eigenvalues in units of e^{log_unit} (e.g. the theory's mean m₁), shape (K, n)."""
        return self.eigenvalues * np.exp(self.log_scale - log_unit)[:, None]

    def moments(self, k: int, log_unit: float = 0.0) -> Array:
        """Per-network empirical moments mean_j (λ_ij/e^{log_unit})^k, shape (K,)."""
        return np.mean(self.scaled(log_unit) ** check_positive_int("k", k), axis=1)


class _OneNetwork:
    """The ``SimContext`` of one sampled network (K = 1), drawing from its own generator."""

    K = 1
    dtype = np.dtype(np.float64)

    def __init__(self, network: Network, rng: np.random.Generator) -> None:
        self.network = network
        self.rng = rng
        self.batch_statistics = network.uses_batch_statistics
        self.sites = RowCounter()
        # The rules record per-site logs here; the spectrum does not use them.
        self.forward_log = np.full((3, 1, len(network.sites)), np.nan)

    def draw(self, init: Initializer, shape: tuple[int, int], sigma_b2: float) -> tuple[Any, Any]:
        w = init.sample(self.rng, shape)[None]
        b = self.rng.standard_normal((1, shape[0])) * math.sqrt(sigma_b2)
        return w, b

    def empty(self, shape: tuple[int, ...]) -> Array:
        return np.empty(shape, dtype=self.dtype)

    def out_of_range(self, what: str, site: int | None = None) -> GradmathError:
        name = "" if site is None else f" ({self.network.sites[site].name})"
        return GradmathError(f"The sampled {what}{name} overflows float64, as the real net would.")


def _check(net: object) -> tuple[Network, int, int]:
    """The network and its input and output widths, or the error saying why not."""
    network = as_network(net)
    n_in, n_out = network.input_width, network.output_width
    if not (isinstance(n_in, int) and isinstance(n_out, int)):
        raise GradmathError(
            f"Jacobian spectra need flat inputs and outputs (widths); this network maps the "
            f"shape {network.input_width} to {network.output_width}."
        )
    if network.uses_batch_statistics:
        raise GradmathError(
            "This network normalises over the batch (BatchNorm): one example's output depends "
            "on the other examples, so its input-output Jacobian is not defined per example."
        )
    return network, n_in, n_out


def jacobian(net: object, rng: np.random.Generator, x: Array) -> tuple[Array, float]:
    """(J/c, log c) for one sampled network (parameters drawn from ``rng``) at the input ``x``
    of shape (n_in,): J = ∂y/∂x^0, shape (n_out, n_in), from the layers' simulation rules.

    >>> from gradmath.network import Network, Dense
    >>> net = Network(3, Dense(3, "orthogonal"), "linear", Dense(3, "orthogonal"))
    >>> j, log_c = jacobian(net, np.random.default_rng(0), np.ones(3))
    >>> full = j * np.exp(log_c)
    >>> np.allclose(full @ full.T, np.eye(3))
    True
    """
    network, n_in, _ = _check(net)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (n_in,):
        raise GradmathError(f"`x` has shape {x.shape}; the network takes ({n_in},).")
    ctx = _OneNetwork(network, rng)
    y, tape = network.body.sim_forward(Scaled(x[None, None, :].copy(), np.zeros(1)), ctx)
    n_out = y.u.shape[-1]
    # Row i of J is the backward pass of the unit vector e_i (the cotangents share the scale).
    g = network.body.sim_backward(tape, Scaled(np.eye(n_out)[None], np.zeros(1)), ctx, True)
    u = g.u[0]
    norm = float(np.linalg.norm(u))
    if norm == 0.0:
        raise GradmathError("The sampled Jacobian is exactly zero (e.g. a zero-initialised layer).")
    return u / norm, float(g.s[0]) + math.log(norm)


def sample_spectra(
    net: object, *, n_networks: int, seed: int, input_q: float = 1.0
) -> SampledSpectra:
    """Eigenvalues of JJᵀ for ``n_networks`` independently sampled copies of ``net`` (a
    :class:`~gradmath.network.Network` or an MLP, whose ``.network`` is used).

    Network i draws its parameters and then its input from its own generator
    (SeedSequence(seed) spawned), so results are reproducible and independent of how many are
    drawn; the networks run one per thread (:func:`gradmath.threads.pool`).
    """
    network, n_in, n_out = _check(net)
    n = check_positive_int("n_networks", n_networks)
    seed = check_seed(seed)
    input_q = check_positive("input_q", input_q)
    from gradmath.threads import pool

    rank = min(n_in, n_out)
    eig = np.empty((n, rank))
    log_scale = np.empty(n)
    children = np.random.SeedSequence(seed).spawn(n)

    def one(i: int) -> None:
        rng = np.random.default_rng(children[i])
        # The forward rule draws parameters as it goes, so the input has its own stream.
        x = np.random.default_rng(children[i].spawn(1)[0]).standard_normal(n_in)
        j, log_c = jacobian(network, rng, x * math.sqrt(input_q))
        sv = np.linalg.svd(j, compute_uv=False)
        eig[i] = np.sort(sv * sv)
        log_scale[i] = 2 * log_c

    with pool(n) as ex:
        if ex is None:
            for i in range(n):
                one(i)
        else:
            list(ex.map(one, range(n)))
    return SampledSpectra(network, eig, log_scale, input_q, seed)
