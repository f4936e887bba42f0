"""derivative(): exact equality with SymPy's diff, textbook forms, LaTeX, bad input."""

from __future__ import annotations

import pytest
import sympy as sp

import gradmath
from gradmath.symbolic import Derivation, derivative

Z = gradmath.Activation.symbol()
SIGMA = sp.Function("sigma")(Z)


@pytest.mark.parametrize("name", gradmath.activations())
def test_derivative_equals_sympy_diff(name: str) -> None:
    act = gradmath.activation(name)
    d = derivative(act)
    assert isinstance(d, Derivation) and d.exact
    assert d.result.free_symbols <= {Z}
    assert sp.simplify(d.result - sp.diff(act.expr, Z)) == 0
    assert d.latex() and d.text() and d._repr_latex_().startswith("$$")


@pytest.mark.parametrize(
    ("name", "params"), [("leaky_relu", {"slope": 0.2}), ("elu", {"alpha": 2.5}), ("selu", {})]
)
def test_parametrised_derivatives(name: str, params: dict[str, float]) -> None:
    act = gradmath.activation(name, **params)
    assert sp.simplify(derivative(act).result - sp.diff(act.expr, Z)) == 0


def test_textbook_forms() -> None:
    assert derivative("sigmoid").data["textbook"] == SIGMA * (1 - SIGMA)
    assert derivative("tanh").result == 1 - sp.tanh(Z) ** 2
    assert derivative("softplus").data["textbook"] == SIGMA
    assert derivative("silu").data["textbook"] == SIGMA * (1 + Z * (1 - SIGMA))
    assert derivative("erf").result == 2 * sp.exp(-(Z**2)) / sp.sqrt(sp.pi)
    assert derivative("softsign").result == 1 / (1 + sp.Abs(Z)) ** 2


def test_kink_conventions_are_pytorchs() -> None:
    # relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha, hard_tanh'(±1) = 0 (activations.py)
    assert derivative("relu").result == sp.Piecewise((0, Z <= 0), (1, True))
    assert derivative("relu").result.subs(Z, 0) == 0
    assert derivative("leaky_relu", slope=0.2).result.subs(Z, 0) == sp.Rational(1, 5)
    assert derivative("elu", alpha=2.0).result.subs(Z, 0) == 2
    ht = derivative("hard_tanh").result
    assert [ht.subs(Z, v) for v in (-1, 0, 1)] == [0, 1, 0]
    assert any("convention" in s.statement for s in derivative("relu").steps)


def test_sigmoid_latex_exact() -> None:
    d = derivative("sigmoid")
    assert d.latex().splitlines()[0] == r"\paragraph{The derivative of sigmoid.}"
    textbook = next(s for s in d.steps if s.statement == "textbook form")
    assert sp.latex(textbook.expr) == (
        r"\frac{d}{d z} \sigma{\left(z \right)} = "
        r"\left(1 - \sigma{\left(z \right)}\right) \sigma{\left(z \right)}"
    )
    assert (
        r"\item textbook form. \emph{the logistic identity $\sigma' = \sigma(1 - \sigma)$.}"
        in d.latex()
    )
    assert "sigma'(z) = (1 - sigma(z))*sigma(z)" in d.text()


def test_bad_activation_name() -> None:
    with pytest.raises(gradmath.GradmathError, match="Did you mean 'sigmoid'"):
        derivative("sigmod")
    with pytest.raises(gradmath.GradmathError, match="slope"):
        derivative("leaky_relu", slope=-1.0)
