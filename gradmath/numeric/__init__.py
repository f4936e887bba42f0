"""Sampled networks: exact NumPy forward/backward passes and Monte-Carlo second-moment profiles.

- :mod:`gradmath.numeric.network`: one network (or a stack): :func:`sample_params`,
  :func:`forward`, :func:`backward` for plain, residual and batch-norm MLPs;
- :func:`simulate`: the per-layer second moments of many sampled networks with Monte-Carlo
  standard errors, as a :class:`gradmath.Profile` comparable with ``meanfield.predict``;
- :func:`length_chain`: the exact finite-width law of the forward second moment (Gaussian
  weights), sampled at O(width) per layer, to tell finite-width effects from errors;
- :func:`train`: the SGD training experiment (``gradmath/numeric/train.py``).
"""

from __future__ import annotations

from gradmath.numeric import network as network
from gradmath.numeric import spectra as spectra
from gradmath.numeric.length_chain import length_chain as length_chain
from gradmath.numeric.network import Cache as Cache
from gradmath.numeric.network import Gradients as Gradients
from gradmath.numeric.network import backward as backward
from gradmath.numeric.network import forward as forward
from gradmath.numeric.network import sample_params as sample_params
from gradmath.numeric.simulation import simulate as simulate

__all__ = [
    "Cache",
    "Gradients",
    "backward",
    "forward",
    "length_chain",
    "network",
    "sample_params",
    "simulate",
    "spectra",
]
