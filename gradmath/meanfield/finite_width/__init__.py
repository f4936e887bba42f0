"""Finite-width theory: what mean-field theory misses at width n, and the spread across nets.

- :mod:`~gradmath.meanfield.finite_width.relu`: exact laws for ReLU + He + Gaussian weights +
  zero bias (Hanin 2018; Hanin & Nica 2019): products of independent scaled chi-squares;
- :func:`expand`: O(1/width) corrections to the means and the spread, for any activation
  (Roberts, Yaida & Hanin 2022, ch. 4–5), and :func:`delta_method`, the same on the chain;
- :func:`chain_law`: the exact law of the forward chain and of the tangent chain that gives
  the gradients, computed deterministically on a grid, for depth/width of order 1;
- the user's entry point is ``gradmath.meanfield.predict(net, width_corrections=True)``
  (:func:`.predict.corrected`): corrected means plus the typical value and spread of each
  site's log moment across initialisations, on the :class:`gradmath.Profile`.
"""

from __future__ import annotations

from gradmath.meanfield.finite_width.chain import chain_law as chain_law
from gradmath.meanfield.finite_width.expansion import FiniteWidthProfile as FiniteWidthProfile
from gradmath.meanfield.finite_width.expansion import LayerSpec as LayerSpec
from gradmath.meanfield.finite_width.expansion import delta_method as delta_method
from gradmath.meanfield.finite_width.expansion import expand as expand
from gradmath.meanfield.finite_width.expansion import layer_specs as layer_specs
from gradmath.meanfield.finite_width.expansion import log_spread as log_spread
from gradmath.meanfield.finite_width.predict import EXPANSION_LIMIT as EXPANSION_LIMIT
from gradmath.meanfield.finite_width.predict import finite_width_profile as finite_width_profile
from gradmath.meanfield.finite_width.relu import ChiSquareProduct as ChiSquareProduct
from gradmath.meanfield.finite_width.relu import Factor as Factor
from gradmath.meanfield.finite_width.relu import relu_gradient_law as relu_gradient_law
from gradmath.meanfield.finite_width.relu import relu_norm_law as relu_norm_law
from gradmath.meanfield.finite_width.relu import (
    relu_preactivation_law as relu_preactivation_law,
)

__all__ = [
    "EXPANSION_LIMIT",
    "ChiSquareProduct",
    "Factor",
    "FiniteWidthProfile",
    "LayerSpec",
    "chain_law",
    "delta_method",
    "expand",
    "finite_width_profile",
    "layer_specs",
    "log_spread",
    "relu_gradient_law",
    "relu_norm_law",
    "relu_preactivation_law",
]
