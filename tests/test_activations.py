"""Activation catalogue: NumPy forms against the SymPy source of truth and finite differences."""

import math

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gradmath
from gradmath import GradmathError

NAMES = gradmath.activations()
CATALOGUE = [gradmath.activation(n) for n in NAMES] + [
    gradmath.activation("leaky_relu", slope=0.2),
    gradmath.activation("elu", alpha=0.5),
]
IDS = [repr(a) for a in CATALOGUE]
z = sympy.Symbol("z", real=True)


def lambdified(expr):
    return sympy.lambdify(z, expr, modules=["mpmath"])


def near_kink(act, x, tol=1e-6):
    return any(abs(x - k) < tol for k in act.kinks)


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
@given(x=st.floats(-30, 30))
@example(x=0.0)
@example(x=-1.0)
@example(x=1.0)
def test_numpy_function_and_derivative_match_sympy(act, x):
    f = lambdified(act.expr)
    d = lambdified(sympy.diff(act.expr, z))
    # The textbook forms cancel (1 - tanh², α(e^z - 1) at z = 1e-300, 1 + erf(-9)): evaluate them
    # with enough digits that the reference is exact to double precision for every float input.
    with mpmath.workdps(400):
        fx, dx = float(f(x)), float(d(x))
    # Φ(z) has relative condition number ≈ z² in its lower tail (gelu), so a correctly rounded
    # input still moves the result by ~z²·eps; allow exactly that, not more.
    rel = 1e-13 * max(1.0, x * x)
    assert float(act(x)) == pytest.approx(fx, rel=rel, abs=1e-300)
    if not near_kink(act, x):
        assert float(act.deriv(x)) == pytest.approx(dx, rel=rel, abs=1e-300)


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
@given(x=st.floats(-20, 20))
def test_derivative_matches_central_differences(act, x):
    h = 1e-5
    if near_kink(act, x, tol=2 * h):
        return
    fd = (float(act(x + h)) - float(act(x - h))) / (2 * h)
    # central-difference error ~ h² |φ'''|/6 + eps |φ|/h, both below 1e-8 here
    assert float(act.deriv(x)) == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
def test_kink_convention_is_the_flat_side(act):
    d = lambdified(sympy.diff(act.expr, z))
    for k in act.kinks:
        assert float(act.deriv(k)) == pytest.approx(float(d(k)), rel=1e-15)


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=25, deadline=None)
@given(x=st.lists(st.floats(-400, 400), min_size=1, max_size=8))
@example(x=[0.0, 1e-300, -2.07, 2.1, 9.0, -30.0, 400.0])
def test_derivative_from_the_value_is_the_derivative(act, dtype, x):
    # deriv_given_value (the simulation's backward pass: tanh' = 1 − tanh² where that is
    # accurate) against the exact derivative at 400 digits, to 64 ulp of the dtype (times the
    # z² condition number of the Gaussian tails, as above).
    zs = np.array(x, dtype=dtype)
    zs = zs[np.isfinite(zs)]
    dz = act.deriv_given_value(zs, act(zs))
    assert dz.dtype == dtype and dz.shape == zs.shape
    d = lambdified(sympy.diff(act.expr, z))
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    for zi, di in zip(zs.tolist(), dz.tolist(), strict=True):
        if near_kink(act, zi):
            continue
        with mpmath.workdps(400):
            exact = float(d(zi))
        assert di == pytest.approx(exact, rel=64 * eps * max(1.0, zi * zi), abs=tiny)


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_out_gives_the_same_values_in_place(act, dtype):
    # φ(z, out=) (the simulation writes values it keeps into pooled memory): bit for bit φ(z)
    zs = np.linspace(-40.0, 40.0, 161, dtype=dtype).reshape(7, 23)
    out = np.full_like(zs, np.nan)
    assert act(zs, out=out) is out
    np.testing.assert_array_equal(out, act(zs))


@pytest.mark.parametrize("act", CATALOGUE, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extremes_are_finite_and_keep_dtype(act, dtype):
    x = np.array(
        [-1e3, -1e300 if dtype is np.float64 else -1e30, -1e-300, 0.0, 5e-324, 1e3], dtype=dtype
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is right
        y, dy = act(x), act.deriv(x)
    assert y.dtype == dtype and dy.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dy))


def test_saturating_values_are_exact():
    sig, sp = gradmath.activation("sigmoid"), gradmath.activation("softplus")
    assert sig(1000.0) == 1.0 and sig(-1000.0) == 0.0 and sig.deriv(0.0) == 0.25
    assert sp(1000.0) == 1000.0 and sp.deriv(1000.0) == 1.0
    # tanh' keeps full relative accuracy deep in the tail (1 - tanh² would give 0 here)
    assert gradmath.activation("tanh").deriv(20.0) == pytest.approx(4 * math.exp(-40), rel=1e-13)


def test_sympy_expressions_are_exact():
    assert gradmath.activation("leaky_relu", slope=0.2).expr == sympy.Piecewise(
        (sympy.Rational(1, 5) * z, z <= 0), (z, True)
    )
    assert gradmath.activation("sigmoid").expr == 1 / (1 + sympy.exp(-z))
    assert gradmath.activation("tanh").expr.free_symbols == {z}
    assert z.is_real


def test_selu_carries_the_published_constants():
    selu = gradmath.activation("selu")
    assert selu.params == {"scale": 1.0507009873554805, "alpha": 1.6732632423543772}
    digits = {str(abs(a))[:20] for a in selu.expr.atoms(sympy.Float)}
    assert digits == {"1.050700987355480493", "1.673263242354377284"}


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("logistic", "sigmoid"),
        ("Swish", "silu"),
        ("LeakyReLU", "leaky_relu"),
        ("Hardtanh", "hard_tanh"),
        ("identity", "linear"),
        ("GELU", "gelu"),
    ],
)
def test_aliases_and_spellings(spelling, name):
    assert gradmath.activation(spelling).name == name


def test_catalogue_is_complete():
    required = {
        "linear",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "silu",
        "softplus",
        "erf",
        "hard_tanh",
        "softsign",
    }
    assert required <= set(NAMES)


def test_equality_and_hash_follow_name_and_params():
    assert gradmath.activation("leaky_relu", slope=0.2) == gradmath.activation("lrelu", slope=0.2)
    assert gradmath.activation("leaky_relu") != gradmath.activation("leaky_relu", slope=0.2)
    assert len({gradmath.activation("tanh"), gradmath.activation("tanh")}) == 1


def test_bad_input_is_explained():
    with pytest.raises(GradmathError, match=r"Unknown activation 'rleu'.*Did you mean 'relu'"):
        gradmath.activation("rleu")
    with pytest.raises(GradmathError, match=r"`slope` \(=-0.1\) must be in \[0, 1\]"):
        gradmath.activation("leaky_relu", slope=-0.1)
    with pytest.raises(GradmathError, match=r"`alpha` \(=nan\)"):
        gradmath.activation("elu", alpha=float("nan"))
    with pytest.raises(GradmathError, match="takes no parameters"):
        gradmath.activation("tanh", slope=1.0)
    with pytest.raises(GradmathError, match="must be a string"):
        gradmath.activation(3)
