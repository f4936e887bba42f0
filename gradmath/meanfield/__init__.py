"""Mean-field (infinite-width) theory of signal and gradient propagation at initialisation.

Poole et al. (2016) and Schoenholz et al. (2017): the length map and its fixed point q*, the
correlation map, χ₁, the depth scales ξ_q and ξ_c, the order/chaos phase diagram, the SELU
self-normalising map (Klambauer et al. 2017), and per-layer predictions for a concrete
:class:`gradmath.MLP` (:func:`predict`). Every Gaussian integral goes through
:mod:`gradmath.meanfield.gaussian`.
"""

from __future__ import annotations

from gradmath.meanfield import gaussian as gaussian
from gradmath.meanfield.gaussian import dkernel as dkernel
from gradmath.meanfield.gaussian import expect as expect
from gradmath.meanfield.gaussian import expect2 as expect2
from gradmath.meanfield.gaussian import kernel as kernel
from gradmath.meanfield.gaussian import log_mean_dphi2 as log_mean_dphi2
from gradmath.meanfield.gaussian import log_mean_phi2 as log_mean_phi2
from gradmath.meanfield.gaussian import mean_dphi2 as mean_dphi2
from gradmath.meanfield.gaussian import mean_phi2 as mean_phi2

__all__ = [
    "dkernel",
    "expect",
    "expect2",
    "gaussian",
    "kernel",
    "log_mean_dphi2",
    "log_mean_phi2",
    "mean_dphi2",
    "mean_phi2",
]
