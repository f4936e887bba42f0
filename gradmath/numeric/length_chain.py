"""The exact finite-width law of the forward second moment, for Gaussian weights and biases.

Given x^{l−1}, the pre-activations of layer l, h^l_i = Σ_j W^l_ij x^{l−1}_j + b^l_i, are i.i.d.
N(0, s^l) over units i, with s^l = v_l ‖x^{l−1}‖² + σ_b² (W^l_ij ~ N(0, v_l), b^l_i ~ N(0, σ_b²)).
So one example's conditional variance is a scalar Markov chain,

    s^{l+1} = n_l v_{l+1} · (1/n_l) Σ_{i=1}^{n_l} φ(√(s^l) z_i)² + σ_b²,    z_i i.i.d. N(0, 1),

and E[(h^l_i)²] = E[s^l] at every width. Its n → ∞ limit is the mean-field length map
(Poole et al. 2016, eq. 3); at finite n the fluctuations of s^l and the curvature of the map
move E[s^l] away from it. Sampling the chain costs O(width) per layer instead of the O(width²)
of a network, so it measures the finite-width forward law at widths no network simulation
reaches, and shows whether a disagreement between ``meanfield.predict`` and ``simulate`` is
that law (it then vanishes as the width grows) or an error.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradmath.errors import GradmathError, check_positive, check_positive_int, check_seed
from gradmath.mlp import MLP

__all__ = ["length_chain"]


def length_chain(
    mlp: MLP, *, samples: int, seed: int, input_q: float = 1.0, chunk: int = 1 << 22
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and standard error of E[(h^l_i)²] per layer, from ``samples`` draws of the chain.

    Exact for Gaussian weights and biases (module docstring) and for Gaussian inputs
    x^0 ~ N(0, input_q): s^1 = v_1 · input_q · χ²_{n_0} + σ_b². Plain nets only.

    >>> import gradmath
    >>> he = gradmath.initializer("normal", sigma_w2=2.0)
    >>> net = gradmath.MLP.square(64, 3, activation="relu", init=he)
    >>> mean, se = length_chain(net, samples=4000, seed=0)
    >>> bool(np.all(np.abs(mean - 2.0) < 4 * se))  # He + ReLU: q^l = σ_w² q^0 = 2 at any width
    True
    """
    if mlp.residual is not None or mlp.batchnorm:
        raise GradmathError("`length_chain` covers plain nets (no residual, no batch norm).")
    not_gaussian = sorted({ly.init.name for ly in mlp.layers if ly.init.distribution != "normal"})
    if not_gaussian:
        raise GradmathError(
            f"`length_chain` is exact only for Gaussian weights; {', '.join(not_gaussian)} "
            "draw from another distribution. Use initializer('normal', sigma_w2=...) or a "
            "*_normal scheme with normal (not truncated) draws, e.g. kaiming_normal."
        )
    m = check_positive_int("samples", samples, minimum=2, what="an integer >= 2 (for an SE)")
    input_q = check_positive("input_q", input_q)
    rng = np.random.default_rng(check_seed(seed))
    layers = mlp.layers
    s = layers[0].weight_var * input_q * rng.chisquare(layers[0].fan_in, size=m)
    s = s + layers[0].sigma_b2
    means, ses = [s.mean()], [s.std(ddof=1) / math.sqrt(m)]
    for prev, layer in itertools.pairwise(layers):
        n = layer.fan_in
        rows = max(1, chunk // n)  # bound the z-block's memory
        mean_phi2 = np.empty(m)
        for a in range(0, m, rows):
            z = rng.standard_normal((min(rows, m - a), n))
            z *= np.sqrt(s[a : a + rows])[:, None]
            mean_phi2[a : a + rows] = np.mean(np.square(prev.activation(z)), axis=1)
        s = layer.sigma_w2 * mean_phi2 + layer.sigma_b2
        means.append(s.mean())
        ses.append(s.std(ddof=1) / math.sqrt(m))
    out: tuple[Any, Any] = (np.array(means), np.array(ses))
    return out
