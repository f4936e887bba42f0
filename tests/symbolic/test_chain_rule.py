"""chain_rule(): the product of local factors equals sympy.diff of the composed chain."""

from __future__ import annotations

import pytest
import sympy as sp

import gradmath
from gradmath.symbolic import chain_rule, derivative
from gradmath.symbolic.chain_rule import compose_chain


@pytest.mark.parametrize(
    ("depth", "name"), [(1, "softsign"), (2, "sigmoid"), (3, "tanh"), (2, "relu")]
)
def test_product_equals_direct_diff_of_the_composed_chain(depth: int, name: str) -> None:
    act = gradmath.activation(name)
    z = act.symbol()
    d = chain_rule(depth, name)
    s = d.data["symbols"]
    a_last, zs, _ = compose_chain(depth, lambda e: act.expr.subs(z, e))
    loss = sp.Function("L")
    x = sp.Symbol("x")
    # A concrete loss makes the direct derivative explicit: L = a_L²/2, ∂L/∂a_L = a_L.
    direct = sp.diff(a_last**2 / 2, s["w"][0])
    dloss = sp.Derivative(loss(s["a"][-1]), s["a"][-1])
    ours = d.result.subs(dloss, a_last).subs(dict(zip(s["z"], zs, strict=True)))
    assert sp.simplify(direct - ours) == 0
    assert d.data["verified"]
    del x


def test_generic_product_and_bound() -> None:
    d = chain_rule(3, "sigmoid")
    s = d.data["symbols"]
    w, a0 = s["w"], s["a"][0]
    dphi = sp.Function(r"\varphi'")
    dloss = sp.Derivative(sp.Function("L")(s["a"][-1]), s["a"][-1])
    assert (
        d.data["generic"]
        == dloss * a0 * dphi(s["z"][0]) * dphi(s["z"][1]) * w[1] * dphi(s["z"][2]) * w[2]
    )
    assert d.data["gamma"] == sp.Rational(1, 4)
    assert d.data["bound"] == sp.Abs(dloss) * sp.Abs(a0) * sp.Abs(w[1]) * sp.Abs(w[2]) / 64
    assert w[0] not in d.data["bound"].free_symbols  # w_1 enters only through z_1
    bound_step = d.steps[-1]
    assert isinstance(bound_step.expr, sp.Le)


def test_result_uses_the_closed_form_derivative() -> None:
    d = chain_rule(2, "tanh")
    s = d.data["symbols"]
    z = gradmath.Activation.symbol()
    dphi = derivative("tanh").result
    dloss = sp.Derivative(sp.Function("L")(s["a"][-1]), s["a"][-1])
    expected = dloss * s["a"][0] * dphi.subs(z, s["z"][0]) * dphi.subs(z, s["z"][1]) * s["w"][1]
    assert d.result == expected


def test_deep_chain_is_built_without_verification() -> None:
    d = chain_rule(40, "relu")
    assert not d.data["verified"] and d.data["gamma"] == 1
    assert len(d.data["symbols"]["w"]) == 40


def test_chain_rule_latex_exact_line() -> None:
    d = chain_rule(2, "sigmoid")
    assert r"\[ \gamma = \frac{1}{4} \]" in d.latex()
    assert (
        r"\[ \frac{\partial L}{\partial w_{1}} = a_{0} w_{2} \varphi'{\left(z_{1} \right)} "
        r"\varphi'{\left(z_{2} \right)} \frac{d}{d a_{2}} L{\left(a_{2} \right)} \]"
    ) in d.latex()


@pytest.mark.parametrize("depth", [0, -3, 2.0, True, "3"])
def test_bad_depth(depth: object) -> None:
    with pytest.raises(gradmath.GradmathError, match="`depth`"):
        chain_rule(depth)  # type: ignore[arg-type]


def test_unknown_activation() -> None:
    with pytest.raises(gradmath.GradmathError, match="Unknown activation"):
        chain_rule(2, "sigmo")
