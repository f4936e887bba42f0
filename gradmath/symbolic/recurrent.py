"""Backpropagation through time: when the recurrent Jacobian product vanishes or explodes.

A recurrent network h_t = φ(W h_{t−1} + U x_t + b) backpropagates through

    ∂h_T/∂h_k = ∏_{t=k+1..T} diag(φ'(a_t)) W,     ‖∂h_T/∂h_k‖₂ ≤ (γ λ₁)^{T−k},

with λ₁ the largest singular value of W and γ = sup|φ'| (Pascanu, Mikolov & Bengio 2013,
"On the difficulty of training recurrent neural networks", §2.1, eqs. 5–7). So λ₁ < 1/γ is
*sufficient* for the gradient to vanish exponentially in T − k, and λ₁ > 1/γ is *necessary*
for it to explode (γ = 1/4 for the logistic sigmoid, 1 for tanh). For a linear recurrence
the product is W^{T−k} exactly, whose norm behaves like ρ(W)^{T−k} (ρ the spectral radius).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradmath.errors import GradmathError
from gradmath.symbolic.bounds import derivative_bound
from gradmath.symbolic.derivation import Derivation, Step, decimal_text, named

__all__ = ["rnn_gradient_bound"]


def _matrix(weights: object) -> Any:
    import sympy as sp

    from gradmath.symbolic.examples import exact_number

    rows = weights if isinstance(weights, Sequence) and not isinstance(weights, str) else None
    if not rows or any(
        not isinstance(r, Sequence) or isinstance(r, str) or len(r) != len(rows) for r in rows
    ):
        raise GradmathError(f"`weights` (={weights!r}) must be a square matrix (rows of numbers).")
    return sp.Matrix(
        [
            [exact_number(f"weights[{i}][{j}]", x) for j, x in enumerate(r)]
            for i, r in enumerate(rows)
        ]
    )


def rnn_gradient_bound(weights: object, act: str = "tanh", steps: int = 50) -> Derivation:
    r"""The Pascanu et al. (2013) bound on ‖∂h_T/∂h_{T−steps}‖ for recurrent weights W.

    λ₁ = √(largest eigenvalue of WᵀW) exactly, γ = sup|φ'| (:func:`derivative_bound`), and
    the bound (γλ₁)^steps. ``result`` is that bound (exact). ``data``: ``"lambda1"``,
    ``"gamma"``, ``"factor"`` (γλ₁), ``"spectral_radius"`` (max |eigenvalue of W|),
    ``"linear_norm"`` (‖W^steps‖₂, the exact Jacobian of the linear recurrence, as a float),
    ``"regime"``: ``"vanishing"`` when γλ₁ < 1 (guaranteed), ``"may explode"`` when
    λ₁ > 1/γ (the necessary condition holds), ``"critical"`` when γλ₁ = 1.

    >>> d = rnn_gradient_bound([["0.54", "-0.72"], ["0.72", "0.54"]], steps=50)
    >>> d.data["lambda1"], d.data["regime"]
    (9/10, 'vanishing')
    """
    import sympy as sp

    W = _matrix(weights)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise GradmathError(f"`steps` (={steps!r}) must be a positive integer.")
    T = int(steps)
    gram = W.T * W
    lam1 = sp.sqrt(max(gram.eigenvals(), key=lambda e: float(sp.re(e))))
    lam1 = sp.nsimplify(sp.simplify(lam1))
    gamma = derivative_bound(act).result
    factor = sp.simplify(gamma * lam1)
    bound = factor**T
    rho = max((sp.Abs(e) for e in W.eigenvals()), key=float)
    W_num = np.array(W.tolist(), dtype=float)
    linear = float(np.linalg.norm(np.linalg.matrix_power(W_num, T), 2))
    regime = "vanishing" if factor < 1 else ("critical" if factor == 1 else "may explode")
    lam = named("lambda_1", r"\lambda_{1}")
    steps_ = (
        Step(
            "the recurrent weights",
            sp.Eq(named("W", "W"), W, evaluate=False),
            "$h_t = \\varphi(W h_{t-1} + U x_t + b)$",
        ),
        Step(
            "their largest singular value",
            sp.Eq(lam, lam1),
            f"the square root of the largest eigenvalue of $W^\\top W$ (${decimal_text(lam1, 4)}$)",
        ),
        Step(
            f"the steepest slope of {act}",
            sp.Eq(sp.Symbol("gamma"), gamma),
            "$\\gamma = \\sup_z |\\varphi'(z)|$",
        ),
        Step(
            f"the bound over $T - k = {T}$ steps",
            sp.Le(
                named("|dh_T/dh_k|", r"\left\|\frac{\partial h_{T}}{\partial h_{k}}\right\|"),
                sp.Pow(factor, T, evaluate=False),
            ),
            f"$(\\gamma\\lambda_1)^{{{T}}} {decimal_text(bound, 3)}$ (Pascanu et al. 2013, eq. 7)",
        ),
    )
    return Derivation(
        "The gradient of a recurrent network over many steps",
        steps_,
        bound,
        data={
            "lambda1": lam1,
            "gamma": gamma,
            "factor": factor,
            "spectral_radius": rho,
            "linear_norm": linear,
            "regime": regime,
            "steps": T,
        },
    )
