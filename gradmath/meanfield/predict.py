"""Layer-by-layer mean-field predictions for a concrete :class:`gradmath.MLP`.

Forward (Poole et al. 2016, eq. 3, with unequal widths): q^l = E[(h^l_i)²],

    q^1 = n_0 v_1 · input_q + σ_b²,      q^{l+1} = n_l v_{l+1} · ∫Dz φ_l(√q^l z)² + σ_b²,

backward (Schoenholz et al. 2017, §4, gradient independence): q̃^l = E[(∂L/∂h^l_i)²],

    q̃^L = output_grad_q,                q̃^l = q̃^{l+1} · n_{l+1} v_{l+1} · ∫Dz φ_l'(√q^l z)²,

and E[(∂L/∂W^l_ij)²] = q̃^l · E[(x^{l−1}_j)²] with E[(x^0_j)²] = input_q. The forward multiplier
is fan_in·Var[W] of the next layer, the backward one fan_out·Var[W]: they differ whenever
widths change, which is what Glorot's fan_avg compromises between (Glorot & Bengio 2010, §4.2).

Everything is carried in natural logs, so a depth-10,000 net that explodes or vanishes gives
finite numbers. The forward recursion is sequential in l; each step costs a few µs: closed
forms for linear, (leaky) ReLU and erf, otherwise a piecewise-Chebyshev interpolant of
log ∫Dz φ(√q z)² in log q built from the exact quadrature on first use (error < 1e-13,
:mod:`gradmath.meanfield._table`), with the asymptotic forms of :mod:`gaussian` for q below
1e-24 or above 1e24 (φ(0)² + q·(φ'(0+)² + φ'(0−)²)/2; linear growth or saturation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.errors import GradmathError, check_positive
from gradmath.meanfield.moments import ActivationMoments
from gradmath.mlp import MLP
from gradmath.profile import Profile

__all__ = ["predict"]

Array = NDArray[np.float64]


def _log_add(a: float, b: float) -> float:
    # log(e^a + e^b) with b = −inf allowed (no bias).
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def _log(name: str, value: float, layer: int) -> float:
    if value <= 0:
        raise GradmathError(
            f"{name} of layer {layer} is 0, so every later second moment is exactly 0 and has "
            "no logarithm; give the weights a nonzero variance."
        )
    return math.log(value)


def predict(mlp: MLP, input_q: float = 1.0, output_grad_q: float = 1.0) -> Profile:
    """Mean-field profile of ``mlp`` at initialisation (infinite width); see the module doc.

    ``input_q`` = E[(x^0_j)²] (inputs i.i.d. N(0, input_q)); ``output_grad_q`` =
    E[(∂L/∂h^L_i)²]. Residual nets go to :func:`gradmath.meanfield.residual.predict_residual`
    and batch-normalised ones to :func:`gradmath.meanfield.batchnorm.predict_batchnorm`.
    Returns log q^l, log q̃^l and log E[(∂L/∂W^l_ij)²]; ``Profile.log_first_last_ratio`` gives
    log ‖∇W^1‖/‖∇W^L‖.

    >>> from gradmath import MLP
    >>> p = predict(MLP.square(100, 3, activation="relu", init="torch_linear_default"))
    >>> [round(float(v), 12) for v in np.diff(p.log_q) / math.log(1 / 6)]   # ×1/6 per layer
    [1.0, 1.0]
    """
    if not isinstance(mlp, MLP):
        raise GradmathError(f"`mlp` must be a gradmath.MLP, got {type(mlp).__name__}.")
    input_q = check_positive("input_q", input_q)
    output_grad_q = check_positive("output_grad_q", output_grad_q)
    if mlp.residual is not None:
        from gradmath.meanfield.residual import predict_residual

        return predict_residual(mlp, input_q, output_grad_q)
    if mlp.batchnorm:
        from gradmath.meanfield.batchnorm import predict_batchnorm

        return predict_batchnorm(mlp, input_q, output_grad_q)

    layers = mlp.layers
    L = mlp.depth
    acts = [cast(Activation, ly.activation) for ly in layers]
    moments = {a: ActivationMoments(a) for a in set(acts)}
    log_fwd = [_log("fan_in·Var[W]", ly.sigma_w2, ly.number) for ly in layers]
    log_bias = [math.log(ly.bias_var) if ly.bias_var > 0 else -math.inf for ly in layers]

    log_q = np.empty(L)
    log_x2 = np.empty(L)  # log E[(x^{l−1}_j)²]: the input of layer l
    log_x2[0] = math.log(input_q)
    log_q[0] = _log_add(log_fwd[0] + log_x2[0], log_bias[0])
    phi2: list[Callable[[float], float]] = [moments[a].phi2 for a in acts]
    lq = float(log_q[0])
    for i in range(1, L):
        lx = phi2[i - 1](lq)
        lq = _log_add(log_fwd[i] + lx, log_bias[i])
        log_x2[i], log_q[i] = lx, lq

    # Backward: log q̃^l = log q̃^{l+1} + log(n_{l+1} v_{l+1}) + log ∫φ_l'², summed from the top.
    log_dphi2 = np.empty(L)
    for a, m in moments.items():
        idx = np.array([i for i, b in enumerate(acts) if b == a])
        log_dphi2[idx] = m.dphi2(log_q[idx])
    log_bwd = np.array(
        [_log("fan_out·Var[W]", ly.fan_out * ly.weight_var, ly.number) for ly in layers]
    )
    step = log_bwd[1:] + log_dphi2[:-1]  # step[i] = log q̃^{i+1} − log q̃^{i+2} (1-based layers)
    log_grad = math.log(output_grad_q) + np.concatenate((np.cumsum(step[::-1])[::-1], [0.0]))
    if not (np.all(np.isfinite(log_q)) and np.all(np.isfinite(log_grad))):
        raise GradmathError("The prediction left the range of float64 logarithms.")
    meta: dict[str, Any] = {
        "input_q": input_q,
        "output_grad_q": output_grad_q,
        "reference": "Poole et al. (2016), eq. 3; Schoenholz et al. (2017), §4",
    }
    return Profile(mlp, log_q, log_grad, log_grad + log_x2, source="theory", meta=meta)
