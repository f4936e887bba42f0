"""Site-by-site mean-field predictions for any composed network: a fold over its layers.

Each layer of :mod:`gradmath.network` carries its own mean-field rule (Dense: Poole et al.
2016, eq. 3 and Schoenholz et al. 2017, §4; Elementwise: the Gaussian integrals of the same
equations; Residual: Yang & Schoenholz 2017; BatchNorm: Yang et al. 2019; LayerNorm: Ba et al.
2016). :func:`predict` runs them forward from the input's second moment and backward from the
output gradient's, supplying the Gaussian-moment engine (:mod:`gradmath.meanfield.moments`)
and the batch-norm moments (:mod:`gradmath.meanfield.batchnorm`) through a context; it knows
nothing about particular layers. Everything is carried in natural logs, so a depth-10,000 net
that explodes or vanishes gives finite numbers.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.conditions import Conditions
from gradmath.errors import GradmathError
from gradmath.meanfield.batchnorm import BatchMoments, batch_moments
from gradmath.meanfield.gaussian import expect
from gradmath.meanfield.moments import ActivationMoments, moments_of
from gradmath.network import Network
from gradmath.network.base import Grad, RowCounter, log_add
from gradmath.profile import Profile, as_network

__all__ = ["predict"]

Array = NDArray[np.float64]

REFERENCE = "Poole et al. (2016), eq. 3; Schoenholz et al. (2017), §4; per layer: gradmath.network"


class MeanFieldContext:
    """What the layers' mean-field rules ask for, answered by this engine (one per call)."""

    def __init__(self, network: Network, batch: int | None) -> None:
        self.batch = batch
        self.track_correlation = "correlation" in network.requirements
        self.track_mean = "mean" in network.requirements
        self.sites = RowCounter()
        self.rows = np.full((3, len(network.sites)), np.nan)
        # Looked up by id first: hashing an Activation builds its key tuple, too slow per layer
        # at depth 10,000; equal activations (separate objects) share one moment object.
        self._moments: dict[int, ActivationMoments] = {}
        self._by_value: dict[Activation, ActivationMoments] = {}
        self._alive: list[Activation] = []
        self._batch: dict[tuple[Activation, int | None], BatchMoments] = {}
        self._pending: dict[int, tuple[ActivationMoments, list[float]]] = {}
        self._resolved: dict[int, Array] = {}

    def moments(self, act: Activation) -> ActivationMoments:
        m = self._moments.get(id(act))
        if m is None:
            m = self._by_value.get(act)
            if m is None:
                m = self._by_value[act] = moments_of(act)
            self._moments[id(act)] = m
            self._alive.append(act)
        return m

    def defer_log_dphi2(self, act: Activation, log_q: float) -> tuple[int, int]:
        """Queue log ∫Dz φ'(√q z)² for one vectorised evaluation per activation after the
        forward pass; returns the handle :meth:`log_dphi2` reads in the backward pass."""
        mom = self.moments(act)
        key = id(mom)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = (mom, [])
        entry[1].append(log_q)
        return key, len(entry[1]) - 1

    def log_dphi2(self, handle: tuple[int, int]) -> float:
        key, i = handle
        values = self._resolved.get(key)
        if values is None or values.size <= i:
            mom, pending = self._pending[key]
            values = self._resolved[key] = mom.dphi2(np.asarray(pending))
        return float(values[i])

    def mean(self, act: Activation, log_q: float) -> float:
        return float(expect(act, math.exp(log_q), act.kinks))

    def kernel(self, act: Activation, log_q: float, c: float) -> float:
        return self.moments(act).kernel(log_q, c)

    def batch_moments(self, act: Activation, batch: int | None) -> BatchMoments:
        key = (act, batch)
        m = self._batch.get(key)
        if m is None:
            m = self._batch[key] = batch_moments(act, batch)
        return m


def predict(
    net: object,
    input_q: float = 1.0,
    output_grad_q: float = 1.0,
    *,
    loss: Literal["mse"] | None = None,
    batch: int | None = None,
    like: Profile | None = None,
    width_corrections: bool | Literal["auto", "expansion", "exact"] = False,
) -> Profile:
    """Mean-field profile of ``net`` (a :class:`~gradmath.network.Network` or an MLP).

    ``input_q`` = E[(x^0_j)²] (inputs i.i.d. N(0, input_q)); ``output_grad_q`` = E[(∂L/∂y_i)²]
    at the output, or with ``loss="mse"`` the targets' variance, so q̃_out = q_out +
    output_grad_q; ``batch`` = the B that batch statistics see (None: the large-batch limit).
    ``like=profile`` takes all of these from another profile (e.g. a simulation), so that
    ``compare(predict(net, like=sim), sim)`` is like for like in one call.

    Returns per site log q, log q̃ and (Dense sites) log E[(∂ℓ/∂W_ij)²]; see the module
    docstring for the rules and their sources.

    ``width_corrections`` (plain nets: Dense, activation, …, Dense): the means at the net's
    finite widths instead of infinite width, and per site the typical value and the spread
    across initialisations, ``mean_log`` and ``sd_log`` = mean and SD of log Q with Q one
    example's empirical moment (what ``numeric.simulate(net, batch=1)`` measures; compare with
    ``validate.compare(…, spread=True)``). ``True``/``"auto"``: the O(1/width) expansion of
    Roberts, Yaida & Hanin (2022, ch. 4–5) while it is accurate, the exact law of the forward
    chain computed on a grid where depth/width is too large for it; ``"expansion"``,
    ``"exact"`` force one (:mod:`gradmath.meanfield.finite_width`). ReLU with Gaussian weights
    and zero bias gets Hanin & Nica's exact spread (2019, Thm 1).

    >>> from gradmath import MLP
    >>> p = predict(MLP.square(100, 3, activation="relu", init="torch_linear_default",
    ...                        sigma_b2=0.0))
    >>> [round(float(v), 12) for v in np.diff(p.log_q) / math.log(1 / 6)]   # ×1/6 per layer
    [1.0, 1.0]
    """
    network = as_network(net)
    if like is not None:
        if not isinstance(like, Profile):
            raise GradmathError(f"`like` must be a gradmath.Profile, got {type(like).__name__}.")
        cond = like.conditions.but(n_networks=None)
    else:
        cond = Conditions(input_q, output_grad_q, loss, batch)
    if cond.batch is not None and not network.uses_batch_statistics:
        cond = cond.but(batch=None)  # the batch changes nothing without batch statistics
    ctx = MeanFieldContext(network, cond.batch)
    c0 = 0.0 if ctx.track_correlation else None  # independent inputs are uncorrelated
    x = network.input_signal(math.log(cond.input_q), c0)
    try:
        y, tape = network.body.theory_forward(x, ctx)
        log_g = math.log(cond.output_grad_q)
        if cond.loss == "mse" and y.spatial is not None:
            raise GradmathError(
                "loss='mse' on an output with positions is not covered (δ = y − t is correlated "
                "across positions); end the network with Flatten() or GlobalAvgPool() and Dense."
            )
        if cond.loss == "mse":
            log_g = log_add(y.log_q, log_g)  # δ = y − t with t independent of y
        network.body.theory_backward(tape, Grad(log_g), ctx)
    except OverflowError:
        raise GradmathError("The prediction left the range of float64 logarithms.") from None
    rows = ctx.rows
    if np.any(rows[:2] == np.inf) or np.any(np.isnan(rows[:2])):
        raise GradmathError("The prediction left the range of float64 logarithms.")
    profile = Profile(
        network,
        rows[0],
        rows[1],
        rows[2],
        source="theory",
        conditions=cond,
        reference=REFERENCE,
    )
    if width_corrections is False:
        return profile
    from gradmath.meanfield.finite_width.predict import corrected

    return corrected(profile, "auto" if width_corrections is True else width_corrections)
