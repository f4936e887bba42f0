"""Mean-field (infinite-width) theory of signal and gradient propagation at initialisation.

Poole et al. (2016) and Schoenholz et al. (2017): the length map and its fixed point q*, the
correlation map, χ₁, the depth scales ξ_q and ξ_c, the order/chaos phase diagram, the SELU
self-normalising map (Klambauer et al. 2017), and per-layer predictions for a concrete
:class:`gradmath.MLP` (:func:`predict`). Every Gaussian moment of an activation comes from one
:class:`~gradmath.meanfield.moments.ActivationMoments` (closed forms the activation carries,
else the quadrature of :mod:`gradmath.meanfield.gaussian`).
"""

from __future__ import annotations

from gradmath.meanfield import gaussian as gaussian
from gradmath.meanfield import spectra as spectra
from gradmath.meanfield.batchnorm import BatchMoments as BatchMoments
from gradmath.meanfield.batchnorm import batch_moments as batch_moments
from gradmath.meanfield.batchnorm import gradient_growth as gradient_growth
from gradmath.meanfield.gaussian import expect as expect
from gradmath.meanfield.gaussian import expect2 as expect2
from gradmath.meanfield.gaussian import expect_shifted as expect_shifted
from gradmath.meanfield.maps import DepthScales as DepthScales
from gradmath.meanfield.maps import PhaseDiagram as PhaseDiagram
from gradmath.meanfield.maps import chi1 as chi1
from gradmath.meanfield.maps import correlation_fixed_point as correlation_fixed_point
from gradmath.meanfield.maps import correlation_map as correlation_map
from gradmath.meanfield.maps import critical_sigma_w2 as critical_sigma_w2
from gradmath.meanfield.maps import depth_scales as depth_scales
from gradmath.meanfield.maps import fixed_point as fixed_point
from gradmath.meanfield.maps import length_map as length_map
from gradmath.meanfield.maps import phase_diagram as phase_diagram
from gradmath.meanfield.moments import ActivationMoments as ActivationMoments
from gradmath.meanfield.moments import dkernel as dkernel
from gradmath.meanfield.moments import kernel as kernel
from gradmath.meanfield.moments import log_mean_dphi2 as log_mean_dphi2
from gradmath.meanfield.moments import log_mean_phi2 as log_mean_phi2
from gradmath.meanfield.moments import mean_dphi2 as mean_dphi2
from gradmath.meanfield.moments import mean_phi2 as mean_phi2
from gradmath.meanfield.prediction import predict as predict
from gradmath.meanfield.selu import selu_map as selu_map
from gradmath.meanfield.selu import selu_parameters as selu_parameters

__all__ = [
    "ActivationMoments",
    "BatchMoments",
    "DepthScales",
    "PhaseDiagram",
    "batch_moments",
    "chi1",
    "correlation_fixed_point",
    "correlation_map",
    "critical_sigma_w2",
    "depth_scales",
    "dkernel",
    "expect",
    "expect2",
    "expect_shifted",
    "fixed_point",
    "gaussian",
    "gradient_growth",
    "kernel",
    "length_map",
    "log_mean_dphi2",
    "log_mean_phi2",
    "mean_dphi2",
    "mean_phi2",
    "phase_diagram",
    "predict",
    "selu_map",
    "selu_parameters",
    "spectra",
]
