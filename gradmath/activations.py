"""The activation catalogue: one object per nonlinearity, symbolic and numeric together.

Each :class:`Activation` holds its SymPy expression in the real symbol ``z`` (the single
source of truth), a vectorised NumPy function and derivative written for numerical
stability (tested against the lambdified SymPy forms), its parameters, and the points
where it is not smooth (used to split quadratures).

Derivative convention at a kink: the value of the flat (left or outer) side, as PyTorch's
autograd does: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha, hard_tanh'(±1) = 0; abs
has no flat side and takes the left one, abs'(0) = −1.
The SymPy expressions encode the same convention through their ``Piecewise`` conditions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath._registry import Registry, real_param
from gradmath.closed_forms import ErfForm, GaussianClosedForm, PiecewiseLinear
from gradmath.errors import GradmathError

if TYPE_CHECKING:
    import sympy

__all__ = [
    "Activation",
    "activation",
    "activations",
    "register_activation",
    "unregister_activation",
]

Array = NDArray[np.floating[Any]]

#: Klambauer et al. (2017), "Self-Normalizing Neural Networks", eq. 14 (the published digits).
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _as_float_array(z: ArrayLike) -> Array:
    a = np.asarray(z)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


@dataclass(frozen=True, eq=False)
class Activation:
    """An elementwise nonlinearity φ with its exact and numeric forms.

    Attributes:
        name: catalogue name (``gradmath.activations()`` lists them).
        params: the parameters it was built with, e.g. ``{"slope": 0.01}``.
        kinks: points where φ or a low derivative is not smooth (φ' jumps for relu and
            hard_tanh, φ'' for elu and softsign); Gaussian quadratures split there.
        reference: where the function is defined (paper or framework), as a derivation step
            text (inline math between ``$…$``, see :mod:`gradmath.symbolic.derivation`).
        gaussian: closed-form Gaussian expectations (moments and kernels,
            :class:`~gradmath.closed_forms.GaussianClosedForm`) where they exist, else ``None``
            and the mean-field engine integrates by quadrature.

    What the engines need beyond that is read off the function itself (cached):
    :attr:`value_at_zero`, :attr:`slopes_at_zero`, :attr:`slopes_at_infinity` (linear growth
    or saturation), :attr:`homogeneous`. Adding an activation is one catalogue entry.

    >>> act = activation("sigmoid")
    >>> float(act.deriv(0.0))
    0.25
    >>> act.expr
    1/(1 + exp(-z))
    """

    name: str
    params: dict[str, float]
    fn_numpy: Callable[[Array], Array] = field(repr=False)
    deriv_numpy: Callable[[Array], Array] = field(repr=False)
    expr_builder: Callable[..., sympy.Expr] = field(repr=False)
    kinks: tuple[float, ...] = ()
    reference: str = ""
    gaussian: GaussianClosedForm | None = field(default=None, repr=False)
    #: φ'(z) from z and y = φ(z) when the value makes it cheaper (tanh: 1 − y²), else None;
    #: returns a new array of z's dtype.
    deriv_from_value_numpy: Callable[[Array, Array], Array] | None = field(default=None, repr=False)

    def __call__(self, z: ArrayLike, out: Array | None = None) -> Array:
        """φ(z), elementwise, finite for every finite input; written into ``out`` (an array of
        z's shape and dtype) when given, as NumPy's ``out=``."""
        a = _as_float_array(z)
        if out is None:
            return self.fn_numpy(a)
        if isinstance(self.fn_numpy, np.ufunc):  # e.g. np.tanh: no temporary
            return self.fn_numpy(a, out=out)
        np.copyto(out, self.fn_numpy(a))
        return out

    def deriv(self, z: ArrayLike) -> Array:
        """φ'(z), elementwise, finite for every finite input (kink convention in module doc)."""
        return self.deriv_numpy(_as_float_array(z))

    def deriv_given_value(self, z: Array, value: Array) -> Array:
        """φ'(z) for an array z whose φ(z) = ``value`` is already computed (a new array).

        The same numbers as :meth:`deriv` to a few ulps (checked in the tests), cheaper where
        the value helps: the simulation's backward pass keeps both (tanh: 1 − tanh², one
        multiply instead of an exponential per element).
        """
        if self.deriv_from_value_numpy is None:
            return self.deriv(z)
        return self.deriv_from_value_numpy(z, value)

    @staticmethod
    def symbol() -> sympy.Symbol:
        """The real symbol ``z`` every catalogue expression is written in."""
        import sympy

        return sympy.Symbol("z", real=True)

    @cached_property
    def expr(self) -> sympy.Expr:
        """φ as an exact SymPy expression in :meth:`symbol` (parameters as exact rationals)."""
        import sympy

        exact = {k: sympy.Rational(repr(v)) for k, v in self.params.items()}
        return self.expr_builder(self.symbol(), **exact)

    @cached_property
    def homogeneous(self) -> bool:
        """Whether φ(c z) = c φ(z) and φ'(c z) = φ'(z) for every c > 0 (positive homogeneity).

        Checked exactly at power-of-two c, where scaling is exact in floating point: of the
        catalogue, linear, relu and leaky_relu pass. A network of such layers may be carried
        in log scale (value = e^s·u) without changing the result.
        """
        probe = np.array([-3.7, -1.0, -0.25, 0.0, 0.3, 1.5, 7.0])
        return all(
            np.array_equal(self(c * probe), c * self(probe))
            and np.array_equal(self.deriv(c * probe), self.deriv(probe))
            for c in (2.0**-40, 2.0**40)
        )

    @cached_property
    def value_at_zero(self) -> float:
        """φ(0)."""
        return float(self(np.array([0.0]))[0])

    @cached_property
    def slopes_at_zero(self) -> tuple[float, float]:
        """(φ'(0+), φ'(0−)): the one-sided derivatives at 0 (read at ±1e-300).

        They give the small-q limits E[φ'(√q z)²] → (φ'(0+)² + φ'(0−)²)/2 and
        E[φ(√q z)²] = φ(0)² + q·(φ'(0+)² + φ'(0−)²)/2 + O(q^{3/2}).
        """
        d = self.deriv(np.array([1e-300, -1e-300]))
        return float(d[0]), float(d[1])

    @cached_property
    def slopes_at_infinity(self) -> tuple[float, float]:
        """(p, n) with φ(u) ~ p·u as u → +∞ and φ(u) ~ n·u as u → −∞ (read at ±1e100).

        (0, 0) for a saturating φ (tanh, sigmoid, erf, …); (1, 0) for ReLU, ELU, GELU, SiLU,
        softplus; (1, 1) linear; (1, −1) abs. A slope below 1e-50 counts as 0.
        """
        T = 1e100
        far = self(np.array([T, -T]))
        p, n = float(far[0]) / T, -float(far[1]) / T
        return (p if abs(p) > 1e-50 else 0.0), (n if abs(n) > 1e-50 else 0.0)

    @property
    def saturates(self) -> bool:
        """Whether φ stays bounded (E[φ(√q z)²] → const) rather than growing linearly."""
        return self.slopes_at_infinity == (0.0, 0.0)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, float], ...]]:
        return self.name, tuple(sorted(self.params.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __reduce__(self) -> tuple[Any, ...]:
        # The NumPy callables are closures pickle cannot carry; rebuild from the catalogue so
        # MLPs can travel to process pools and Dask workers (design.md, "outgrow one machine").
        return (_rebuild_activation, (self.name, dict(self.params)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name!r}{', ' + args if args else ''})"


# --------------------------------------------------------------------------- registry

_CATALOGUE: Registry[Activation] = Registry("activation")
_register = _CATALOGUE.register


def register_activation(
    name: str, *aliases: str
) -> Callable[[Callable[..., Activation]], Callable[..., Activation]]:
    """Decorator adding a factory (keyword parameters, returning an :class:`Activation`) to the
    catalogue under ``name`` and ``aliases``; the catalogue entries below use it too.

    Every engine then handles the new activation: the mean-field moments come from its
    closed forms (``gaussian=``) or by quadrature, the simulation from its NumPy functions, the
    symbolic bound from its SymPy expression (plus a certifier registered with
    :func:`gradmath.symbolic.register_certifier` when SymPy cannot solve φ'' = 0 exactly).
    """
    return _CATALOGUE.register(name, *aliases)


def unregister_activation(name: str) -> None:
    """Remove an entry added by :func:`register_activation` (e.g. at the end of a test)."""
    _CATALOGUE.unregister(name)


def activations() -> tuple[str, ...]:
    """The canonical names in the catalogue (aliases such as ``logistic`` not repeated)."""
    return _CATALOGUE.names()


def _rebuild_activation(name: str, params: dict[str, float]) -> Activation:
    """Unpickle an :class:`Activation` by looking it up again (see ``Activation.__reduce__``)."""
    return activation(name, **params)


def activation(name: str | Activation, **params: float) -> Activation:
    """Look up an activation by name (case-insensitive, aliases accepted) and build it.

    >>> activation("leaky_relu", slope=0.2).params
    {'slope': 0.2}
    >>> activation("swish").name
    'silu'
    """
    if isinstance(name, Activation):
        if params:
            raise GradmathError("Parameters go with a name, not with an Activation object.")
        return name
    return _CATALOGUE.build(name, **params)


# --------------------------------------------------------------------------- catalogue


def _sech2(z: Array) -> Array:
    # 1/cosh² = 4 e^{-2|z|} / (1 + e^{-2|z|})²: no overflow and full relative accuracy in the tails.
    # In place: two arrays instead of six temporaries halves its cost on big batches.
    with np.errstate(over="ignore"):  # |z| > 9e307: −2|z| = −inf, and e^{−inf} = 0 is right
        e = np.multiply(np.abs(z), -2.0, out=np.empty_like(z))  # an array even for 0-d z
    np.exp(e, out=e)
    d = e + 1.0
    d *= d
    e *= 4.0
    e /= d
    return e


#: 1 − tanh² is used where tanh² ≤ 1 − 2^-4 (|z| ≲ 2.07): tanh² carries about 3 ulp, and
#: dividing by 1 − tanh² ≥ 2^-4 makes that at most ~50 ε relative (1e-14 in float64, 6e-6 in
#: float32); beyond it the exponential form of :func:`_sech2`, accurate in the tails.
_TANH2_MAX = 1.0 - 2.0**-4


def _sech2_from_tanh(z: Array, t: Array) -> Array:
    # sech² = 1 − tanh²: a multiply and a subtract instead of an exponential (numpy's float64
    # exp and tanh are scalar libm calls, ~10-18 ns per element, on CPUs without AVX-512).
    d = np.multiply(t, t)
    np.subtract(d.dtype.type(1), d, out=d)
    # t² > 1 − 2^-4 exactly when 1 − t² < 2^-4 (the subtraction is exact for t² ≥ 1/2,
    # Sterbenz): one reduction finds whether any element is in the tails, no mask pass
    if d.size and d.min() < 1.0 - _TANH2_MAX:
        far = d < 1.0 - _TANH2_MAX
        d[far] = _sech2(z[far])  # the saturated tails: full relative accuracy
    return d


def _elu(z: Array, alpha: float) -> Array:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def _elu_deriv(z: Array, alpha: float) -> Array:
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0))).astype(z.dtype)


def _special() -> Any:
    # scipy.special costs ~0.4 s to import; load it on first evaluation, not on `import gradmath`.
    from scipy import special

    return special


def _expit(z: Array) -> Array:
    return _special().expit(z)


def _gauss(z: Array, a: float) -> Array:
    # exp(-a z²) underflows to 0 for |z| > 40 anyway; clipping first keeps z² from overflowing.
    c = np.clip(z, -40.0, 40.0)
    return np.exp(-a * c * c)


def _npdf(z: Array) -> Array:
    return _gauss(z, 0.5) / math.sqrt(2.0 * math.pi)


@_register("linear", "identity")
def _linear() -> Activation:
    return Activation(
        "linear",
        {},
        lambda z: z.copy(),
        np.ones_like,
        lambda z: z,
        reference="$\\varphi(z) = z$",
        gaussian=PiecewiseLinear(1.0, 1.0),
    )


@_register("sigmoid", "logistic")
def _sigmoid() -> Activation:
    return Activation(
        "sigmoid",
        {},
        _expit,
        lambda z: _expit(z) * _expit(-z),
        lambda z: 1 / (1 + _sp().exp(-z)),
        reference="logistic sigmoid $\\sigma(z) = 1/(1+e^{-z})$",
    )


@_register("tanh")
def _tanh() -> Activation:
    return Activation(
        "tanh",
        {},
        np.tanh,
        _sech2,
        lambda z: _sp().tanh(z),
        reference="tanh",
        deriv_from_value_numpy=_sech2_from_tanh,
    )


@_register("relu")
def _relu() -> Activation:
    return Activation(
        "relu",
        {},
        lambda z: np.maximum(z, 0.0),
        lambda z: (z > 0).astype(z.dtype),
        lambda z: _sp().Piecewise((0, z <= 0), (z, True)),
        kinks=(0.0,),
        reference="Nair & Hinton (2010); Glorot, Bordes & Bengio (2011)",
        gaussian=PiecewiseLinear(1.0, 0.0),
    )


@_register("leaky_relu", "lrelu")
def _leaky_relu(slope: float = 0.01) -> Activation:
    s = real_param("slope", slope, 0.0, 1.0, "in [0, 1] (the negative-side slope)")
    return Activation(
        "leaky_relu",
        {"slope": s},
        lambda z: np.where(z > 0, z, s * z),
        lambda z: np.where(z > 0, 1.0, s).astype(z.dtype),
        lambda z, slope: _sp().Piecewise((slope * z, z <= 0), (z, True)),
        kinks=(0.0,),
        reference="Maas, Hannun & Ng (2013); PyTorch nn.LeakyReLU (negative_slope=0.01)",
        gaussian=PiecewiseLinear(1.0, s),
    )


@_register("abs")
def _abs() -> Activation:
    return Activation(
        "abs",
        {},
        np.abs,
        lambda z: np.where(z > 0, 1.0, -1.0).astype(z.dtype),
        lambda z: _sp().Piecewise((-z, z <= 0), (z, True)),
        kinks=(0.0,),
        reference="absolute value $|z|$ (rectification of Jarrett et al. 2009)",
        gaussian=PiecewiseLinear(1.0, -1.0),
    )


@_register("elu")
def _elu_factory(alpha: float = 1.0) -> Activation:
    a = real_param("alpha", alpha, 0.0, math.inf, "finite and >= 0")
    return Activation(
        "elu",
        {"alpha": a},
        lambda z: _elu(z, a),
        lambda z: _elu_deriv(z, a),
        lambda z, alpha: _sp().Piecewise((alpha * (_sp().exp(z) - 1), z <= 0), (z, True)),
        kinks=(0.0,),
        reference="Clevert, Unterthiner & Hochreiter (2016)",
    )


@_register("selu")
def _selu(scale: float = SELU_LAMBDA, alpha: float = SELU_ALPHA) -> Activation:
    lam = real_param("scale", scale, 0.0, math.inf, "finite and > 0", lo_open=True)
    a = real_param("alpha", alpha, 0.0, math.inf, "finite and >= 0")
    return Activation(
        "selu",
        {"scale": lam, "alpha": a},
        lambda z: lam * _elu(z, a),
        lambda z: lam * _elu_deriv(z, a),
        lambda z, scale, alpha: (
            _selu_const(scale, SELU_LAMBDA)
            * _sp().Piecewise(
                (_selu_const(alpha, SELU_ALPHA) * (_sp().exp(z) - 1), z <= 0), (z, True)
            )
        ),
        kinks=(0.0,),
        reference="Klambauer et al. (2017), 'Self-Normalizing Neural Networks', eq. 2 and 14",
    )


def _selu_const(value: sympy.Rational, published: float) -> sympy.Expr:
    # The published constants keep all 32 digits of the paper rather than a float's 17.
    sp = _sp()
    if value == sp.Rational(repr(published)):
        return sp.Float(_SELU_DIGITS[published], 32)
    return value


_SELU_DIGITS = {
    SELU_LAMBDA: "1.0507009873554804934193349852946",
    SELU_ALPHA: "1.6732632423543772848170429916717",
}


@_register("gelu")
def _gelu() -> Activation:
    return Activation(
        "gelu",
        {},
        lambda z: z * _special().ndtr(z),
        lambda z: _special().ndtr(z) + z * _npdf(z),
        lambda z: z * (1 + _sp().erf(z / _sp().sqrt(2))) / 2,
        reference="Hendrycks & Gimpel (2016), exact form $z\\cdot\\Phi(z)$",
    )


@_register("silu", "swish")
def _silu() -> Activation:
    return Activation(
        "silu",
        {},
        lambda z: z * _expit(z),
        lambda z: _expit(z) + z * _expit(z) * _expit(-z),
        lambda z: z / (1 + _sp().exp(-z)),
        reference="Elfwing et al. (2018); Ramachandran et al. (2017) swish with $\\beta = 1$",
    )


@_register("softplus")
def _softplus() -> Activation:
    return Activation(
        "softplus",
        {},
        lambda z: np.logaddexp(0.0, z),
        _expit,
        lambda z: _sp().log(1 + _sp().exp(z)),
        reference="softplus $\\log(1 + e^z)$ (Dugas et al. 2001)",
    )


@_register("erf")
def _erf() -> Activation:
    return Activation(
        "erf",
        {},
        lambda z: _special().erf(z),
        lambda z: (2.0 / math.sqrt(math.pi)) * _gauss(z, 1.0),
        lambda z: _sp().erf(z),
        reference="error function; Williams (1997) arcsin kernel",
        gaussian=ErfForm(),
    )


@_register("hard_tanh", "hardtanh")
def _hard_tanh() -> Activation:
    return Activation(
        "hard_tanh",
        {},
        lambda z: np.clip(z, -1.0, 1.0),
        lambda z: ((z > -1.0) & (z < 1.0)).astype(z.dtype),
        lambda z: _sp().Piecewise((-1, z <= -1), (1, z >= 1), (z, True)),
        kinks=(-1.0, 1.0),
        reference="Collobert (2004); PyTorch nn.Hardtanh",
    )


@_register("softsign")
def _softsign() -> Activation:
    return Activation(
        "softsign",
        {},
        lambda z: z / (1.0 + np.abs(z)),
        lambda z: (1.0 / (1.0 + np.abs(z))) ** 2,
        lambda z: z / (1 + _sp().Abs(z)),
        kinks=(0.0,),
        reference="Bergstra et al. (2009); Glorot & Bengio (2010)",
    )


def _sp() -> Any:
    import sympy

    return sympy
