"""The symbolic engine: exact SymPy derivations of why gradients vanish or explode.

Every function returns a :class:`Derivation` (ordered :class:`Step` objects, an exact
``.result``, ``.latex()``, ``.text()``):

- :func:`derivative` — φ'(z) in textbook closed form (σ' = σ(1 − σ), tanh' = 1 − tanh²,
  ReLU' as a Piecewise with the kink convention of :mod:`gradmath.activations`);
- :func:`derivative_bound` — the supremum of |φ'| over ℝ and where it is attained, proved
  step by step (exact, or a certified numeric bound marked ``exact=False``);
- :func:`chain_rule` — ∂L/∂w_1 of a scalar chain as a product of local factors φ'(z_l)·w_l,
  and the bound |∂L/∂w_1| ≤ |∂L/∂a_L|·|a_0|·γ^L·∏_{l≥2}|w_l| with γ = sup|φ'|;
- :func:`init_variance` — Var[W] of LeCun, He and Glorot from Var[y] = fan_in·Var[W]·E[x²];
- :func:`relu_fluctuation` — E[X²] = 1 + 5/n for a He ReLU layer's squared-norm ratio, so
  finite nets fluctuate like (1 + 5/n)^L (Hanin 2018);
- the worked examples :func:`local_factor_example` (0.25·500 = 125),
  :func:`path_product_example` (300·200·125·1001), :func:`update_rounding_example`
  (0.001·2·10⁻¹⁰ lost in floating point), :func:`vanishing_bound_example` ((1/4)^L),
  :func:`relu_chain_example` (an exploding ReLU chain and the step that kills it) and
  :func:`loss_scaling_example` (a float16 gradient underflow and loss scaling);
- :func:`rnn_gradient_bound` — ‖∂h_T/∂h_k‖ ≤ (γλ₁)^{T−k} for a recurrent net (Pascanu 2013).

SymPy is imported inside the functions, so ``import gradmath.symbolic`` stays fast.
"""

from __future__ import annotations

from gradmath.symbolic.bounds import Candidate as Candidate
from gradmath.symbolic.bounds import derivative as derivative
from gradmath.symbolic.bounds import derivative_bound as derivative_bound
from gradmath.symbolic.bounds import register_certifier as register_certifier
from gradmath.symbolic.chain_rule import chain_rule as chain_rule
from gradmath.symbolic.clipping import norm_clip_derivation as norm_clip_derivation
from gradmath.symbolic.clipping import value_clip_derivation as value_clip_derivation
from gradmath.symbolic.derivation import Derivation as Derivation
from gradmath.symbolic.derivation import Step as Step
from gradmath.symbolic.examples import local_factor_example as local_factor_example
from gradmath.symbolic.examples import loss_scaling_example as loss_scaling_example
from gradmath.symbolic.examples import path_product_example as path_product_example
from gradmath.symbolic.examples import relu_chain_example as relu_chain_example
from gradmath.symbolic.examples import update_rounding_example as update_rounding_example
from gradmath.symbolic.examples import vanishing_bound_example as vanishing_bound_example
from gradmath.symbolic.finite_width import relu_fluctuation as relu_fluctuation
from gradmath.symbolic.init_variance import fan_symbols as fan_symbols
from gradmath.symbolic.init_variance import init_variance as init_variance
from gradmath.symbolic.recurrent import rnn_gradient_bound as rnn_gradient_bound

__all__ = [
    "Candidate",
    "Derivation",
    "Step",
    "chain_rule",
    "derivative",
    "derivative_bound",
    "fan_symbols",
    "init_variance",
    "local_factor_example",
    "loss_scaling_example",
    "norm_clip_derivation",
    "path_product_example",
    "register_certifier",
    "relu_chain_example",
    "relu_fluctuation",
    "rnn_gradient_bound",
    "update_rounding_example",
    "value_clip_derivation",
    "vanishing_bound_example",
]
