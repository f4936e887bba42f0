"""The context of the spectral fold: collects a network's free Jacobian factors as layers.

``Jacobian.of`` runs every layer's spectral rule (``Layer.theory_spectrum`` in
:mod:`gradmath.network`) with this context, which is the mean-field context of
:func:`gradmath.meanfield.predict` (so q^l comes from the same rules) plus three calls that name
a factor of J: a weight matrix, a diagonal D = diag φ'(h) and a scalar. Free factors multiply
their S-transforms in any order (Pennington, Schoenholz & Ganguli 2017, eq. 10), so a weight
matrix and the D that follows it are kept as one :class:`JacobianLayer` (σ_w² D², Marchenko–
Pastur if i.i.d.); a lone W has D = I (the linear activation), a lone D the identity weights.
"""

from __future__ import annotations

import math
from typing import Any

from gradmath.activations import Activation, activation
from gradmath.errors import GradmathError
from gradmath.initializers import Initializer
from gradmath.meanfield.prediction import MeanFieldContext
from gradmath.network import Network

__all__ = ["SpectralFold"]


class SpectralFold(MeanFieldContext):
    """``SpectralContext`` of :mod:`gradmath.network.base`, answered by the mean-field engine."""

    def __init__(self, network: Network, is_gaussian: Any, layer_type: Any) -> None:
        super().__init__(network, None)
        self.network_sites = network.sites
        self._is_gaussian = is_gaussian
        self._layer = layer_type
        self._linear = activation("linear")
        self.layers: list[Any] = []
        # The factor being built: [activation or None, q, σ_w² or None, gaussian].
        self._open: list[Any] | None = None
        self._log_c2 = 0.0  # scalars met before any factor

    def _flush(self) -> None:
        if self._open is not None:
            act, q, sw2, gauss = self._open
            self.layers.append(
                self._layer(act or self._linear, q, 1.0 if sw2 is None else sw2, gauss)
            )
            self._open = None

    def weight_factor(self, init: Initializer, sigma_w2: float, fan_in: int, width: int) -> None:
        site = self.network_sites[self.sites.n]
        if fan_in != width:
            raise GradmathError(
                f"The Jacobian-spectrum theory needs square Dense layers; {site.name} maps "
                f"{fan_in} units to {width} (sample the spectrum instead)."
            )
        if not sigma_w2 > 0:
            raise GradmathError(
                f"{site.name} has zero weights (gain 0): the Jacobian is exactly 0 and has no "
                "spectrum in units of its mean."
            )
        self._flush()
        self._open = [None, 0.0, sigma_w2 * math.exp(self._log_c2), self._is_gaussian(init)]
        self._log_c2 = 0.0

    def diagonal_factor(self, act: Activation, log_q: float) -> None:
        q = math.exp(log_q)
        if self._open is not None and self._open[0] is None:
            self._open[0], self._open[1] = act, q
            return
        self._flush()
        self._open = [act, q, math.exp(self._log_c2), False]
        self._log_c2 = 0.0

    def scalar_factor(self, log_c2: float) -> None:
        if self._open is not None:
            self._open[2] = (1.0 if self._open[2] is None else self._open[2]) * math.exp(log_c2)
        else:
            self._log_c2 += log_c2

    def finish(self) -> tuple[Any, ...]:
        """The factors as JacobianLayers, in forward order."""
        self._flush()
        if not self.layers or self._log_c2:
            self.layers.append(self._layer(self._linear, 0.0, math.exp(self._log_c2), False))
            self._log_c2 = 0.0
        return tuple(self.layers)
