"""The ReLU fluctuation derivation: exact SymPy results against the exact law's rationals."""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from gradmath.meanfield.finite_width import relu_norm_law
from gradmath.symbolic import relu_fluctuation


def test_result_is_one_plus_five_over_n() -> None:
    d = relu_fluctuation()
    n = d.data["n"]
    assert sp.simplify(d.result - (1 + 5 / n)) == 0
    assert d.data["mean"] == 1
    assert d.data["example"] == sp.Rational(37, 32) ** 10


def test_agrees_with_the_exact_law() -> None:
    # The numeric engine's rationals (relu.py) for widths 1..40: E[X²]/E[X]² = 1 + 5/n.
    d = relu_fluctuation()
    for width in (1, 2, 7, 40):
        value = d.result.subs(d.data["n"], width)
        assert Fraction(str(value)) == relu_norm_law((width, width)).moment_ratio()


def test_renders() -> None:
    d = relu_fluctuation()
    tex = d.latex()
    assert r"\chi^{2}_{K}" in tex and r"1 + \frac{5}{n}" in tex
    assert "1 + 5/n" in d.text()
