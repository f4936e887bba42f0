"""Mean-field second moments of residual networks (Yang & Schoenholz 2017).

The block (gradmath's convention, ``MLP(..., residual=α)``; theory.md "Residual networks"):

    h^1 = W^1 x^0 + b^1                                   (layer 1: the plain map)
    h^l = h^{l−1} + α (W^l φ_{l−1}(h^{l−1}) + b^l),  l = 2 … L

with W^l_ij i.i.d., zero mean, Var = v_l, b^l_i ~ N(0, σ_{b,l}²), and σ_{w,l}² = n_{l−1} v_l
(all hidden widths are equal, so fan_in·v_l = fan_out·v_l). φ_{l−1} is the activation of
layer l − 1 (as x^{l−1} = φ_{l−1}(h^{l−1}) in a plain net). The profile is about the stream
h^l, δ^l = ∂L/∂h^l and ∂L/∂W^l_ij = α δ^l_i φ_{l−1}(h^{l−1}_j) for l ≥ 2.

Recursions (theory.md "Residual networks", after Yang & Schoenholz 2017, "Mean Field
Residual Networks: On the Edge of Chaos", whose residual blocks are parametrised slightly
differently; the mean-field argument is the same: the cross term vanishes in expectation):

    q^1     = n_0 v_1 · input_q + σ_{b,1}²
    q^l     = q^{l−1} + α² ( σ_{w,l}² E[φ_{l−1}(√q^{l−1} z)²] + σ_{b,l}² )
    q̃^L     = output_grad_q
    q̃^{l−1} = q̃^l ( 1 + α² σ_{w,l}² E[φ'_{l−1}(√q^{l−1} z)²] )
    E[(∂L/∂W^1_ij)²] = q̃^1 · input_q,    E[(∂L/∂W^l_ij)²] = α² q̃^l E[φ_{l−1}(√q^{l−1} z)²]

What is exact at finite width, and what is assumed:

- Forward: E[(h^l_i)²] = E[(h^{l−1}_i)²] + α²(σ_w² · mean_j E[φ(h^{l−1}_j)²] + σ_b²) holds at
  every width, because W^l, b^l are independent of h^{l−1} and have zero mean, so the cross
  term 2α E[h^{l−1}_i (W^l φ + b^l)_i] is exactly 0. The only approximation is replacing the
  law of h^{l−1}_j by N(0, q^{l−1}) (true as width → ∞). For ReLU this is *not* exact at
  finite width, unlike the plain net: the skip path makes h^{l−1}_j slightly skewed (its third
  moment picks up E[relu(h)³]·v ~ 1/n), so E[relu(h)²] ≠ E[h²]/2 by O(1/n) per block.
- Backward: δ^{l−1} = δ^l + α φ'(h^{l−1}) ⊙ (W^lᵀ δ^l). The cross term
  2α E[δ^l_j φ'(h^{l−1}_j) (W^lᵀ δ^l)_j] and the factorisation of the last term need W^l in
  the backward pass to be independent of the forward pass: the gradient-independence
  assumption (an axiom in Yang & Schoenholz 2017; Schoenholz et al. 2017 §4). It is exact for
  the top block (∂L/∂h^L is drawn independently of the net) and exact as width → ∞; below
  the top block δ^l depends on W^l through h^l, which gives O(1/n) corrections per block.

Measured (tests/meanfield/test_residual.py, 640 simulated networks of width 128): the
finite-width bias is ≤ 2.7 % after 6 blocks at α = 1 with He-ReLU and ≤ 1 % for tanh or for
α = 1/√L.

Everything is carried in natural logs: α = 1 with He-ReLU doubles q every block, so
q^{10000} = e^{6931…} is far outside float range (see :func:`predict_residual`).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from gradmath.activations import Activation
from gradmath.errors import GradmathError, check_positive
from gradmath.mlp import MLP
from gradmath.profile import Profile

__all__ = ["predict_residual"]


def predict_residual(mlp: MLP, input_q: float = 1.0, output_grad_q: float = 1.0) -> Profile:
    """Mean-field profile of a residual MLP (Yang & Schoenholz 2017; module docstring).

    ``mlp.residual`` is the branch scale α; layer 1 is the plain map from the input and
    layers 2 … L are residual blocks. Returns log q^l, log q̃^l = log E[(∂L/∂h^l_i)²] and
    log E[(∂L/∂W^l_ij)²] (natural logs) for l = 1 … L, computed with the Gaussian engine
    (:func:`gradmath.meanfield.gaussian.mean_phi2`, :func:`~.mean_dphi2`).

    The recursions are carried in log space, log q^l = log q^{l−1} + log1p(α²(σ_w² E[φ²]/q^{l−1}
    + σ_b²/q^{l−1})) and log q̃^{l−1} = log q̃^l + log1p(α² σ_w² E[φ'²]), with the engine's
    log-space moments (:func:`~gradmath.meanfield.gaussian.log_mean_phi2`, finite for every
    finite log q: closed forms for ReLU-type φ, asymptotics beyond q = 1e24 otherwise), so
    depth 10,000 at α = 1 stays finite (He-ReLU: log q^L = log 2 · L).

    >>> from gradmath import MLP
    >>> p = predict_residual(MLP.square(100, 3, activation="relu", init="he_normal",
    ...                                 residual=1.0))
    >>> [round(float(v), 6) for v in p.q]      # q^l = 2 q^{l−1}: α² σ_w² / 2 = 1
    [2.0, 4.0, 8.0]
    >>> [round(float(v), 6) for v in p.grad_q]  # q̃^{l−1} = q̃^l (1 + α² σ_w² / 2)
    [4.0, 2.0, 1.0]
    """
    if mlp.residual is None:
        raise GradmathError("`mlp` is not residual (residual=None); use meanfield.predict.")
    if mlp.batchnorm:
        raise GradmathError(
            "`mlp` has both residual=α and batchnorm=True; gradmath's theory covers residual "
            "nets and batch-norm nets separately, not their combination."
        )
    alpha = float(mlp.residual)
    if alpha == 0.0:
        raise GradmathError(
            "`residual` (=0.0) makes every branch weight gradient exactly 0 (log = −inf); "
            "use a nonzero branch scale α."
        )
    input_q = check_positive("input_q", input_q)
    output_grad_q = check_positive("output_grad_q", output_grad_q)

    from gradmath.meanfield.moments import ActivationMoments
    from gradmath.meanfield.predict import _log, _log_add

    layers = mlp.layers
    L = mlp.depth
    log_a2 = 2.0 * math.log(abs(alpha))
    acts = [cast(Activation, layer.activation) for layer in layers]
    moments = {a: ActivationMoments(a) for a in set(acts)}
    log_fwd = [_log("fan_in·Var[W]", ly.sigma_w2, ly.number) for ly in layers]
    log_bias = [math.log(ly.bias_var) if ly.bias_var > 0 else -math.inf for ly in layers]
    log_q = np.empty(L)
    log_phi2 = np.zeros(L)  # index i: log E[φ_{l−1}(h^{l−1})²] used by block l = i + 1
    log_q[0] = _log_add(log_fwd[0] + math.log(input_q), log_bias[0])
    for i in range(1, L):
        # Sequential: block l needs q^{l−1}. q^l = q^{l−1} + α²(σ_w² E[φ²] + σ_b²), in logs.
        log_phi2[i] = moments[acts[i - 1]].phi2(float(log_q[i - 1]))
        branch = _log_add(log_fwd[i] + log_phi2[i], log_bias[i])
        log_q[i] = _log_add(float(log_q[i - 1]), log_a2 + branch)

    # Backward factors 1 + α² n_l v_l E[φ'_{l−1}(h^{l−1})²] (fan_out·v_l = σ_w² here), in logs.
    log_back = np.array(
        [log_a2 + _log("fan_out·Var[W]", ly.fan_out * ly.weight_var, ly.number) for ly in layers]
    )
    log_factor = np.zeros(L)
    for act, m in moments.items():
        idx = np.array([i for i in range(1, L) if acts[i - 1] == act], dtype=int)
        if idx.size:
            log_factor[idx] = np.logaddexp(0.0, log_back[idx] + m.dphi2(log_q[idx - 1]))
    # log q̃^{l−1} = log q̃^l + log_factor[l−1], summed from the top (q̃^L = output_grad_q).
    log_grad = math.log(output_grad_q) + np.concatenate((np.cumsum(log_factor[:0:-1])[::-1], [0.0]))

    log_wgrad = np.empty(L)
    log_wgrad[0] = log_grad[0] + math.log(input_q)
    log_wgrad[1:] = log_a2 + log_grad[1:] + log_phi2[1:]
    if not np.all(np.isfinite(log_wgrad)):
        bad = int(np.flatnonzero(~np.isfinite(log_wgrad))[0]) + 1
        raise GradmathError(
            f"E[φ(h^{bad - 1})²] = 0 at layer {bad}: the branch weight gradient is exactly 0."
        )
    meta: dict[str, Any] = {
        "architecture": "residual",
        "alpha": alpha,
        "input_q": input_q,
        "output_grad_q": output_grad_q,
        "reference": "Yang & Schoenholz (2017), Mean Field Residual Networks: On the Edge of Chaos",
    }
    return Profile(mlp, log_q, log_grad, log_wgrad, source="theory", meta=meta)
