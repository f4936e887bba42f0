"""derivative_bound(): exact suprema of |φ'| and where they are attained, for every activation."""

from __future__ import annotations

from functools import cache

import mpmath
import numpy as np
import pytest
import sympy as sp

import gradmath
from gradmath.activations import SELU_ALPHA, SELU_LAMBDA
from gradmath.symbolic import Derivation, derivative_bound

Z = gradmath.Activation.symbol()
OO = sp.oo
LAM, ALPHA = sp.Rational(repr(SELU_LAMBDA)), sp.Rational(repr(SELU_ALPHA))
LAM32 = sp.Rational("1.0507009873554804934193349852946")
ALPHA32 = sp.Rational("1.6732632423543772848170429916717")

#: name -> (sup, set where attained, limits where approached). SiLU is certified, below.
EXPECTED = {
    "linear": (1, sp.S.Reals, ()),
    "abs": (1, sp.S.Reals, ()),
    "sigmoid": (sp.Rational(1, 4), sp.FiniteSet(0), ()),
    "tanh": (1, sp.FiniteSet(0), ()),
    "relu": (1, sp.Interval.open(0, OO), ()),
    "leaky_relu": (1, sp.Interval.open(0, OO), ()),
    "elu": (1, sp.Interval(0, OO), ()),
    "selu": (LAM32 * ALPHA32, sp.FiniteSet(0), ("z → 0⁻",)),
    "gelu": (
        sp.Rational(1, 2) + sp.erf(1) / 2 + sp.exp(-1) / sp.sqrt(sp.pi),
        sp.FiniteSet(sp.sqrt(2)),
        (),
    ),
    "softplus": (1, sp.S.EmptySet, ("z → ∞",)),
    "erf": (2 / sp.sqrt(sp.pi), sp.FiniteSet(0), ()),
    "hard_tanh": (1, sp.Interval.open(-1, 1), ()),
    "softsign": (1, sp.FiniteSet(0), ()),
}


@cache
def bound(name: str, **params: float) -> Derivation:
    return derivative_bound(name, **params)


def _grid_sup(name: str, **params: float) -> float:
    z = np.concatenate([np.linspace(-60, 60, 240_001), [0.0, np.sqrt(2.0), 2.39935]])
    return float(np.max(np.abs(gradmath.activation(name, **params).deriv(z))))


@pytest.mark.parametrize("name", gradmath.activations())
def test_every_activation_has_a_proved_bound(name: str) -> None:
    d = bound(name)
    assert d.steps and d.result == d.data["sup"]
    # Independent check: the catalogue's NumPy derivative on a fine grid never exceeds it,
    # and comes within 1e-6 of it (the sup is approached or attained on the grid's range).
    grid = _grid_sup(name)
    assert grid <= float(d.result) * (1 + 1e-15)
    assert grid == pytest.approx(float(d.result), abs=1e-6)
    if name == "silu":
        return
    sup, at, approached = EXPECTED[name]
    assert d.exact
    assert sp.simplify(d.result - sup) == 0
    assert d.data["attained_at"] == at
    assert d.data["attained"] == (at != sp.S.EmptySet)
    assert d.data["approached"] == approached


def test_sigmoid_quarter_at_zero_exact() -> None:
    d = bound("sigmoid")
    assert d.result == sp.Rational(1, 4) and d.result.is_Rational
    assert d.data["where"] == "attained at $z = 0$"
    assert sp.latex(d.steps[-1].expr) == r"\gamma = \frac{1}{4}"
    # The second-derivative test, as LaTeX and as plain text.
    assert any(s.why == r"second-derivative test: $\sigma'''(0) = - \frac{1}{8}$" for s in d.steps)
    assert "(second-derivative test: σ'''(0) = -1/8)" in d.text()


def test_selu_negative_side_beats_lambda() -> None:
    d = bound("selu")
    assert d.result == LAM32 * ALPHA32 > LAM32
    assert float(d.result) == pytest.approx(SELU_LAMBDA * SELU_ALPHA, rel=1e-15)
    assert "kink convention" in d.data["where"] and r"$z \to 0^{-}$" in d.data["where"]


@pytest.mark.parametrize(
    ("name", "params", "sup", "at"),
    [
        ("leaky_relu", {"slope": 0.2}, 1, sp.Interval.open(0, OO)),
        ("leaky_relu", {"slope": 1.0}, 1, sp.S.Reals),
        ("elu", {"alpha": 2.0}, 2, sp.FiniteSet(0)),
        ("elu", {"alpha": 0.5}, 1, sp.Interval.open(0, OO)),
        ("selu", {"scale": 2.0, "alpha": 0.25}, 2, sp.Interval.open(0, OO)),
    ],
)
def test_parametrised_bounds_are_max_of_branches(
    name: str, params: dict[str, float], sup: object, at: object
) -> None:
    d = bound(name, **params)
    assert d.result == sup and d.data["attained_at"] == at


def test_gelu_maximum_at_sqrt2_in_closed_form() -> None:
    d = bound("gelu")
    with mpmath.workdps(40):
        zmax = mpmath.findroot(lambda x: mpmath.npdf(x) * (2 - x**2), 1.4)
        peak = mpmath.ncdf(zmax) + zmax * mpmath.npdf(zmax)
        assert abs(zmax - mpmath.sqrt(2)) < mpmath.mpf(10) ** -35
        assert abs(sp.N(d.result, 35) - sp.Float(str(peak), 35)) < 1e-33
    assert float(d.result) == pytest.approx(1.1289, abs=5e-5)


def test_silu_certified_bound() -> None:
    d = bound("silu")
    assert not d.exact
    lo, hi = d.data["enclosure"]
    a, b = d.data["argmax_enclosure"]
    with mpmath.workdps(50):
        zs = mpmath.findroot(lambda x: x * mpmath.tanh(x / 2) - 2, 2.4)
        peak = mpmath.sigmoid(zs) * (1 + zs * (1 - mpmath.sigmoid(zs)))
        assert a <= sp.Float(str(zs), 50) <= b
        true = sp.Float(str(peak), 50)
    assert lo <= true <= hi <= d.result  # an upper bound, rounded up
    assert d.result - true < sp.Rational(1, 10**12)
    assert float(zs) == pytest.approx(2.3994, abs=1e-4)
    assert float(d.result) == pytest.approx(1.0998, abs=1e-4)
    assert "certified" in d.latex()
    assert isinstance(d.data["attained_at"], sp.ConditionSet)


def test_softplus_not_attained() -> None:
    d = bound("softplus")
    assert d.result == 1 and not d.data["attained"]
    assert d.data["where"] == r"not attained; approached as $z \to \infty$"


def test_hard_tanh_where_words() -> None:
    assert bound("hard_tanh").data["where"] == "attained at $-1 < z < 1$"
    assert bound("relu").data["where"] == "attained at $z > 0$"
