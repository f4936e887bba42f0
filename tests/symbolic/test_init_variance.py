"""init_variance(): LeCun 1/n_in, He 2/n_in (2/n_out backward), Glorot 2/(n_in + n_out)."""

from __future__ import annotations

import pytest
import sympy as sp

import gradmath
from gradmath.symbolic import fan_symbols, init_variance

N_IN, N_OUT = fan_symbols()


@pytest.mark.parametrize(
    ("scheme", "var", "fwd", "bwd"),
    [
        ("lecun", 1 / N_IN, 1 / N_IN, 1 / N_OUT),
        ("he", 2 / N_IN, 2 / N_IN, 2 / N_OUT),
        ("glorot", 2 / (N_IN + N_OUT), 1 / N_IN, 1 / N_OUT),
    ],
)
def test_variances_exact(scheme: str, var: sp.Expr, fwd: sp.Expr, bwd: sp.Expr) -> None:
    d = init_variance(scheme)
    assert sp.simplify(d.result - var) == 0
    assert sp.simplify(d.data["forward"] - fwd) == 0
    assert sp.simplify(d.data["backward"] - bwd) == 0
    assert sp.simplify(d.data["uniform_limit"] - sp.sqrt(3 * var)) == 0
    assert N_IN.is_integer and N_IN.is_positive


def test_glorot_uniform_limit() -> None:
    limit = init_variance("glorot").data["uniform_limit"]
    assert sp.simplify(limit - sp.sqrt(6 / (N_IN + N_OUT))) == 0


@pytest.mark.parametrize(
    ("name", "scheme"),
    [("kaiming", "he"), ("he_normal", "he"), ("kaiming_uniform_", "he"), ("xavier", "glorot"),
     ("glorot_uniform", "glorot"), ("xavier_normal", "glorot"), ("lecun_normal", "lecun")],
)  # fmt: skip
def test_catalogue_names(name: str, scheme: str) -> None:
    assert init_variance(name).data["scheme"] == scheme


def test_agrees_with_the_catalogue() -> None:
    # The derived variance is what the catalogue's entries sample (Keras truncation aside).
    for name, scheme in (("he_uniform", "he"), ("lecun_uniform", "lecun"),
                         ("glorot_uniform", "glorot")):  # fmt: skip
        var = init_variance(scheme).result.subs({N_IN: 300, N_OUT: 100})
        assert float(var) == pytest.approx(gradmath.initializer(name).variance(300, 100), 1e-15)


def test_relu_half_moment_step() -> None:
    d = init_variance("he")
    q = sp.Symbol("q", positive=True)
    relu2, drelu2 = d.steps[1].expr
    assert relu2.rhs == q / 2 and drelu2.rhs == sp.Rational(1, 2)


@pytest.mark.parametrize("bad", ["orthogonal", "glorrot", "", 3])
def test_unknown_scheme(bad: object) -> None:
    with pytest.raises(gradmath.GradmathError, match="`scheme`"):
        init_variance(bad)  # type: ignore[arg-type]
