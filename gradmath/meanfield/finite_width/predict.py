"""Finite-width corrections of a mean-field :class:`gradmath.Profile` (``predict``'s
``width_corrections``): corrected means and the spread across initialisations per site."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gradmath.closed_forms import PiecewiseLinear
from gradmath.errors import GradmathError
from gradmath.meanfield.finite_width.chain import chain_law
from gradmath.meanfield.finite_width.expansion import (
    FiniteWidthProfile,
    LayerSpec,
    expand,
    layer_specs,
)
from gradmath.meanfield.finite_width.relu import Factor
from gradmath.profile import Profile

__all__ = ["EXPANSION_LIMIT", "METHODS", "corrected", "finite_width_profile"]

#: The O(1/n) expansion is used by ``method="auto"`` while every layer's relative variance
#: across initialisations, V_l/q_l², and every relative correction stays below this. Measured
#: against the exact chain (tests/meanfield/test_finite_width.py): at 0.1 the expansion's
#: log-moments are within 0.005–0.03 of the exact ones; past ~0.3 the error is of the order of
#: the correction itself (GELU, width 256, depth 20: V/q² = 8 at layer 20, expansion 0.025
#: against the exact 0.080).
EXPANSION_LIMIT = 0.1

Array = NDArray[np.float64]
Method = Literal["auto", "expansion", "exact"]
METHODS = ("auto", "expansion", "exact")
REFERENCE = (
    "Roberts, Yaida & Hanin (2022), ch. 4-5 (O(1/n)); exact chain on a grid; "
    "Hanin & Nica (2019), Thm 1 (ReLU + Gaussian weights + zero bias)"
)


def finite_width_profile(mf: Profile, method: Method = "auto") -> FiniteWidthProfile:
    """The finite-width theory of the plain net of a mean-field profile ``mf``.

    ``method="expansion"``: the O(1/width) expansion (:func:`.expand`, O(L), fast at depth
    10,000); ``"exact"``: the exact law of the chain on a grid (:func:`.chain_law`; forward
    exact for Gaussian weights, backward through the tangent chain); ``"auto"``: the expansion
    while it is accurate (:data:`EXPANSION_LIMIT`), the exact law otherwise.
    """
    if method not in METHODS:
        raise GradmathError(
            f"`width_corrections` (={method!r}) must be True, False, 'auto', 'expansion' or "
            "'exact'."
        )
    if mf.conditions.loss is not None:
        raise GradmathError(
            f"Finite-width corrections assume an output gradient independent of the net "
            f"(loss=None), got loss={mf.conditions.loss!r}."
        )
    specs = layer_specs(mf.network)
    input_q = mf.conditions.input_q
    if method != "exact":
        approx = expand(specs, mf.log_q, mf.log_grad_q, input_q)
        size = max(
            float(np.max(approx.rel_var_q)),
            float(np.max(np.abs(approx.log_q - approx.log_q_mf))),
            float(np.max(np.abs(approx.log_grad_q - approx.log_grad_q_mf))),
        )
        if method == "expansion" or size < EXPANSION_LIMIT:
            return approx
    return chain_law(specs, mf.log_q, mf.log_grad_q, input_q)


def _relu_exact(specs: tuple[LayerSpec, ...]) -> bool:
    # Hanin & Nica's law: φ = c·relu at every hidden layer, Gaussian weights, zero bias (any
    # weight scale: it only scales every factor).
    for s in specs[:-1]:
        form = s.activation.gaussian
        if not (isinstance(form, PiecewiseLinear) and form.n == 0.0 and form.p > 0.0):
            return False
    return all(s.kurtosis == 0.0 and s.bias_var == 0.0 for s in specs)


def _relu_log_moments(specs: tuple[LayerSpec, ...]) -> tuple[Array, Array]:
    """(E log Q − log E Q, Var log Q), rows forward and gradient, per site, for one example in
    a ReLU net with Gaussian weights and zero bias: sums over the independent chi-square
    factors of :func:`.relu_preactivation_law` and :func:`.relu_gradient_law` (the scales
    cancel), by cumulative sums so that depth 10,000 costs O(L)."""
    cache: dict[tuple[int, bool], tuple[float, float]] = {}

    def f(dof: int, binomial: bool) -> Array:
        key = (dof, binomial)
        if key not in cache:
            cache[key] = Factor(Fraction(1), dof, binomial).log_moments()
        return np.array(cache[key])

    n0 = specs[0].fan_in
    n = [s.fan_out for s in specs]
    L = len(specs)
    binom = np.array([f(k, True) for k in n])  # X_l's factor (dof n_l), and δ^l's first one
    fixed = np.array([f(k, False) for k in n])  # χ²_{n_l}
    # forward site l: χ²_{n_0} · X_1 … X_{l−1} · χ²_{n_l}
    before = np.vstack([np.zeros(2), np.cumsum(binom[:-1], axis=0)])
    fwd = f(n0, False) + before + fixed
    # gradient site l < L: χ²_{K_l} · X_{l+1} … X_{L−1} · χ²_{n_L}; site L: χ²_{n_L}
    after = np.zeros((L, 2))
    after[: L - 1] = np.cumsum(binom[: L - 1][::-1], axis=0)[::-1]
    grad = after + fixed[-1]
    return np.array([fwd[:, 0], grad[:, 0]]), np.array([fwd[:, 1], grad[:, 1]])


def corrected(mf: Profile, method: Method = "auto") -> Profile:
    """``mf`` with the finite-width means, and the typical value and spread per site.

    ``log_q``, ``log_grad_q``, ``log_wgrad_q``: log E of the moments at width n (the mean
    over initialisations, what :func:`gradmath.numeric.simulate` estimates). ``mean_log`` and
    ``sd_log`` (rows q, q̃; the weight-gradient row is NaN, not predicted): the mean and the
    standard deviation across initialisations of log Q, Q = one example's (1/n)‖h‖² (or
    (1/n)‖δ‖²) at that site, i.e. what ``simulate(net, batch=1)`` reports as its ``mean_log``
    and ``sd_log``. For ReLU + Gaussian weights + zero bias they are exact (digamma and trigamma
    sums of Hanin & Nica's chi-square product, conditional on a live net); otherwise the
    forward ones come from the chain (exact with ``"exact"``) or the expansion, the gradient's
    from the expansion with a log-normal law of the accumulated factors
    (:func:`.expansion.log_spread`).
    """
    specs = layer_specs(mf.network)
    relu = _relu_exact(specs)
    # ReLU's means are exact in the expansion (mean field itself); the law gives the spread.
    fw = finite_width_profile(mf, "expansion" if relu and method == "auto" else method)
    mean_log = np.full((3, mf.depth), np.nan)
    sd_log = np.full((3, mf.depth), np.nan)
    mean_log[0], sd_log[0] = fw.mean_log_q, fw.sd_log_q
    mean_log[1], sd_log[1] = fw.mean_log_grad_q, fw.sd_log_grad_q
    source = fw.method
    if relu:
        gap, var = _relu_log_moments(specs)
        mean_log[:2] = np.array([fw.log_q, fw.log_grad_q]) + gap
        sd_log[:2] = np.sqrt(var)
        source = "exact ReLU law" if method == "auto" else source + "; spread: exact ReLU law"
    return replace(
        mf,
        log_q=fw.log_q,
        log_grad_q=fw.log_grad_q,
        log_wgrad_q=fw.log_wgrad_q,
        mean_log=mean_log,
        sd_log=sd_log,
        source=f"finite-width theory ({source})",
        reference=REFERENCE,
    )
