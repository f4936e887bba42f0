"""One object per activation that answers every Gaussian-moment question the theory asks.

Poole et al. (2016), eq. 3 (∫Dz φ(√q z)²) and Schoenholz et al. (2017), eq. 5 (∫Dz φ'(√q z)²),
in natural logs so that depth-10,000 recursions stay finite.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.meanfield import gaussian as gs

__all__ = ["ActivationMoments"]

Array = NDArray[np.float64]


class ActivationMoments:
    """The Gaussian moments of one activation that the mean-field folds ask for.

    ``phi2(log q)`` = log ∫Dz φ(√q z)² (scalar, a few µs: closed form or the interpolation
    table of :mod:`gradmath.meanfield._table`), ``dphi2(log q)`` = log ∫Dz φ'(√q z)²
    (vectorised). One object per activation per call: nothing is cached across calls.
    """

    def __init__(self, act: Activation) -> None:
        self.act = act
        self._table: Any = None
        pl = gs._piecewise_linear(act)
        self.log_c2 = None if pl is None else math.log(0.5 * (pl[0] ** 2 + pl[1] ** 2))
        self.closed = pl is not None or act.name == "erf"
        if not self.closed:
            from gradmath.meanfield._table import MomentTable

            self._table = MomentTable(act)

    def phi2(self, log_q: float) -> float:
        if self.log_c2 is not None:  # E[φ²] = c2·q exactly
            return log_q + self.log_c2
        if self._table is None:  # erf: (2/π) arctan(2q/√(1+4q)), Williams (1997)
            if log_q < -30.0:  # = (4/π) q (1 + O(q))
                return math.log(4 / math.pi) + log_q
            q = math.exp(min(log_q, 700.0))
            return math.log(2 / math.pi * math.atan(2 * q / math.sqrt(1 + 4 * q)))
        return cast(float, self._table.log_phi2(log_q))

    def dphi2(self, log_q: Array) -> Array:
        if self.closed:
            return gs._log_moments(self.act, log_q)[1]
        return cast(Array, self._table(log_q)[1])
