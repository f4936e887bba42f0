"""The initializer catalogue: weight distributions with their exact variances and sources.

Fan convention. gradmath's weight matrices follow the theory and PyTorch: ``W`` has shape
``(fan_out, fan_in)`` and a layer computes ``h = W @ x + b`` (layout ``"out_in"``). Keras
stores kernels as ``(fan_in, fan_out)`` and computes ``x @ K``; pass ``layout="in_out"`` to
:meth:`Initializer.sample` and :func:`fans` to use that orientation. Only the fans differ:
the same initializer gives the same variance for the same (fan_in, fan_out) either way.

Every variance here is the variance of the distribution actually sampled. For Keras'
truncated normals that is ``scale/fan · T / 0.87962566103423978²`` with T the variance of a
standard normal truncated at ±2, which is 1 to within 1e-16 (Keras' correction is T^½ rounded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from gradmath._registry import Registry, real_param
from gradmath.errors import GradmathError, check_memory, check_positive_int, suggest


class RandomSource(Protocol):
    """What :meth:`Initializer.sample` draws from: ``numpy.random.Generator`` or an object
    with the same two methods (``gradmath.numeric.generators.TorchGenerator``)."""

    def standard_normal(self, size: Any = ..., dtype: Any = ..., out: Any = ...) -> Any: ...

    def random(self, size: Any = ..., dtype: Any = ..., out: Any = ...) -> Any: ...


__all__ = [
    "KERAS_TRUNCATED_NORMAL_CORRECTION",
    "TRUNCATED_NORMAL_2SD_VARIANCE",
    "DeltaOrthogonal",
    "Initializer",
    "calculate_gain",
    "fans",
    "initializer",
    "initializers",
]

Distribution = Literal["normal", "truncated_normal", "uniform", "orthogonal"]
Mode = Literal["fan_in", "fan_out", "fan_avg"]
Layout = Literal["out_in", "in_out"]

#: Var of N(0, 1) truncated to [−2, 2]: 1 − 4φ(2)/(2Φ(2) − 1).
TRUNCATED_NORMAL_2SD_VARIANCE = 0.7737413035499232
#: Keras ``VarianceScaling``: stddev = sqrt(scale / n) / .87962566103423978 (keras/initializers).
KERAS_TRUNCATED_NORMAL_CORRECTION = 0.87962566103423978


def fans(shape: tuple[int, ...], layout: Layout = "out_in") -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` (last two axes; leading axes are a batch).

    >>> fans((300, 100))                   # PyTorch nn.Linear(100, 300).weight
    (100, 300)
    >>> fans((100, 300), layout="in_out")  # Keras Dense(300) kernel on 100 inputs
    (100, 300)
    """
    if len(shape) < 2:
        raise GradmathError(f"A weight shape needs two axes (rows, columns), got {shape!r}.")
    rows, cols = int(shape[-2]), int(shape[-1])
    if layout == "out_in":
        return cols, rows
    if layout == "in_out":
        return rows, cols
    raise GradmathError(f"`layout` (={layout!r}) must be 'out_in' (PyTorch) or 'in_out' (Keras).")


#: Largest fan accepted: every integer up to 2^53 is exact in float64, the variance's type.
MAX_FAN = 2**53


def _check_fans(fan_in: int, fan_out: int) -> None:
    for name, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
        if check_positive_int(name, fan) > MAX_FAN:
            raise GradmathError(f"`{name}` (={fan!r}) must be a positive integer <= 2**53.")


@dataclass(frozen=True)
class Initializer:
    """A weight distribution with zero mean and variance ``scale / fan(mode)``.

    Attributes:
        name: catalogue name.
        distribution: ``normal``, ``truncated_normal`` (Keras: ±2 std, std corrected),
            ``uniform`` (U(−a, a), a = √(3·Var)) or ``orthogonal`` (gain × a semi-orthogonal
            matrix; Saxe et al. 2014).
        scale: the numerator of the variance (gain² for the PyTorch-style entries).
        mode: which fan divides: ``fan_in``, ``fan_out`` or ``fan_avg`` = (fan_in + fan_out)/2.
        bias_scale: bias variance × fan_in (0 except PyTorch's ``nn.Linear`` default, 1/3).
        params: the parameters it was built with.
        reference: paper and equation, or the framework function it reproduces.

    >>> he = initializer("he_normal")
    >>> round(he.variance(fan_in=256, fan_out=512) * 256, 12)  # Keras' constant: 1 ± 2e-16
    2.0
    """

    name: str
    distribution: Distribution
    scale: float
    mode: Mode
    reference: str
    bias_scale: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def _fan(self, fan_in: int, fan_out: int) -> float:
        _check_fans(fan_in, fan_out)
        if self.distribution == "orthogonal":
            # A semi-orthogonal (fan_out, fan_in) matrix has unit rows (fan_out <= fan_in)
            # or unit columns, so E[W_ij²] = 1 / max(fan_in, fan_out).
            return float(max(fan_in, fan_out))
        if self.mode == "fan_in":
            return fan_in
        return fan_out if self.mode == "fan_out" else (fan_in + fan_out) / 2

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Var[W_ij] of the distribution sampled, for a layer with these fans."""
        v = self.scale / self._fan(fan_in, fan_out)
        if self.distribution == "truncated_normal":
            v *= TRUNCATED_NORMAL_2SD_VARIANCE / KERAS_TRUNCATED_NORMAL_CORRECTION**2
        return v

    def sigma_w2(self, fan_in: int, fan_out: int) -> float:
        """The mean-field weight scale σ_w² = fan_in · Var[W] (Poole et al. 2016)."""
        return fan_in * self.variance(fan_in, fan_out)

    @property
    def excess_kurtosis(self) -> float:
        """E[W⁴]/E[W²]² − 3 of one weight: the finite-width theory's only other input.

        Normal 0; uniform −6/5; the normal truncated at ±2 std (Keras): E[z⁴] = 3 −
        2a(a² + 3)φ(a)/(2Φ(a) − 1) and E[z²] = 1 − 2aφ(a)/(2Φ(a) − 1) at a = 2 give
        −0.6345… . Orthogonal rows are not independent entries: refused.

        >>> round(initializer("he_normal").excess_kurtosis, 6)
        -0.634463
        """
        if self.distribution == "normal":
            return 0.0
        if self.distribution == "uniform":
            return -1.2
        if self.distribution == "truncated_normal":
            a = 2.0
            pdf = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
            z = math.erf(a / math.sqrt(2))
            m2 = 1 - 2 * a * pdf / z
            m4 = 3 - 2 * a * (a * a + 3) * pdf / z
            return m4 / (m2 * m2) - 3.0
        raise GradmathError(
            f"`{self.name}` draws orthogonal matrices, whose entries are not independent; "
            "finite-width theory here needs i.i.d. weights (normal, truncated normal, uniform)."
        )

    def sigma_b2(self, fan_in: int) -> float:
        """Var[b_i] of the framework's own bias init (zero unless ``bias_scale`` is set)."""
        _check_fans(fan_in, 1)
        return self.bias_scale / fan_in

    def sample(
        self,
        rng: RandomSource,
        shape: tuple[int, ...],
        *,
        layout: Layout = "out_in",
        dtype: type[np.floating[Any]] | np.dtype[Any] = np.float64,
        out: NDArray[np.floating[Any]] | None = None,
    ) -> NDArray[np.floating[Any]]:
        """Draw a weight of ``shape``; leading axes index independent matrices.

        ``layout="out_in"`` (default, PyTorch and gradmath) or ``"in_out"`` (Keras kernels)
        says which axis is fan_in. ``out``: an array of that shape and ``dtype`` to draw into
        (e.g. one network's slice of a stack) instead of a new one: same values, no temporary.
        """
        if not all(hasattr(rng, m) for m in ("standard_normal", "random")):
            # numpy's Generator, or one with its interface (numeric.generators.TorchGenerator)
            raise GradmathError(
                f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)), "
                f"got {type(rng).__name__}."
            )
        shape = _check_shape(shape)
        fan_in, fan_out = fans(shape, layout)
        var = self.variance(fan_in, fan_out)
        dt = _check_dtype(dtype)
        if out is not None and (
            out.shape != tuple(shape) or out.dtype != dt or not out.flags.c_contiguous
        ):
            raise GradmathError(
                f"`out` has shape {out.shape} and dtype {out.dtype}; the sample needs a "
                f"C-contiguous array of shape {tuple(shape)} and dtype {dt}."
            )
        # Estimated before drawing: the result unless `out` holds it; orthogonal draws a
        # Gaussian matrix and its QR factors besides.
        copies = (out is None) + 3 * (self.distribution == "orthogonal")
        check_memory(f"A {self.name} weight of shape {shape}", math.prod(shape) * 8.0 * copies)
        try:
            return self._draw(rng, shape, fan_in, fan_out, var, dt, out)
        except MemoryError:
            raise GradmathError(
                f"Not enough free memory for a {self.name} weight of shape {shape} "
                f"({math.prod(shape) * dt.itemsize / 2**30:.3g} GiB)."
            ) from None

    def sample_stack(
        self,
        rngs: Sequence[RandomSource],
        out: NDArray[np.floating[Any]],
        *,
        layout: Layout = "out_in",
    ) -> NDArray[np.floating[Any]]:
        """Draw ``out[k]`` from ``rngs[k]`` for every k (``out`` of shape (len(rngs), *shape)):
        the values of ``sample(rngs[k], shape, layout=layout, dtype=out.dtype, out=out[k])``
        one by one, with the checks done once (a simulation draws one matrix per network and
        layer; the per-call checks cost as much as drawing a 64 × 64 matrix).
        """
        if out.ndim < 3 or out.shape[0] != len(rngs):
            raise GradmathError(
                f"`out` (shape {out.shape}) must stack one weight per generator: shape "
                f"({len(rngs)}, rows, columns, …)."
            )
        if not rngs:
            return out
        first = self.sample(rngs[0], out.shape[1:], layout=layout, dtype=out.dtype, out=out[0])
        if len(rngs) > 1:
            shape = first.shape
            fan_in, fan_out = fans(shape, layout)
            var = self.variance(fan_in, fan_out)
            for k in range(1, len(rngs)):
                self._draw(rngs[k], shape, fan_in, fan_out, var, out.dtype, out[k])
        return out

    def _draw(
        self,
        rng: RandomSource,
        shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
        var: float,
        dt: np.dtype[Any],
        out: NDArray[np.floating[Any]] | None,
    ) -> NDArray[np.floating[Any]]:
        if self.distribution == "normal":
            x = rng.standard_normal(shape, dtype=dt, out=out)
            return np.multiply(x, dt.type(math.sqrt(var)), out=x)
        if self.distribution == "uniform":
            a = math.sqrt(3.0 * var)
            x = rng.random(shape, dtype=dt, out=out)
            np.multiply(x, dt.type(2 * a), out=x)
            return np.subtract(x, dt.type(a), out=x)
        if self.distribution == "truncated_normal":
            std = math.sqrt(self.scale / self._fan(fan_in, fan_out))
            x = _truncated_standard_normal(rng, shape, dt, out)
            return np.multiply(x, dt.type(std / KERAS_TRUNCATED_NORMAL_CORRECTION), out=x)
        w = _orthogonal(rng, shape, dt) * dt.type(math.sqrt(self.scale))
        if out is None:
            return w
        out[...] = w
        return out


def _check_shape(shape: object) -> tuple[int, ...]:
    """A weight shape: a tuple of integers >= 0 (NumPy integers accepted), at least two."""
    import numbers

    if type(shape) is tuple and all(type(d) is int and d >= 0 for d in shape):
        return shape  # the common case, without the abstract-class checks below (per draw)
    try:
        dims: tuple[Any, ...] = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise GradmathError(f"`shape` (={shape!r}) must be a tuple of integers.") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 0:
            raise GradmathError(
                f"`shape` (={shape!r}) must hold integers >= 0 (rows, columns), got {d!r}."
            )
    return tuple(int(d) for d in dims)


def _check_dtype(dtype: object) -> np.dtype[Any]:
    """float32 or float64: the formats NumPy's generators draw normals in."""
    allowed = (np.dtype(np.float32), np.dtype(np.float64))
    try:
        dt: Any = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or dt not in allowed:
        raise GradmathError(f"`dtype` (={dtype!r}) must be numpy.float64 or numpy.float32.")
    return dt  # type: ignore[no-any-return, unused-ignore]


def _truncated_standard_normal(
    rng: RandomSource,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    out: NDArray[np.floating[Any]] | None = None,
) -> NDArray[np.floating[Any]]:
    # Rejection outside ±2 (as tf.random.truncated_normal): 4.6% of draws are redrawn, in
    # index order, until none is left; only the redrawn values are checked again.
    x = rng.standard_normal(shape, dtype=dtype, out=out)
    flat = x.reshape(-1)  # a view: x is C-contiguous (fresh, or a slice of a stack's axis 0)
    idx = np.flatnonzero(np.abs(flat) > 2)
    while idx.size:
        v = rng.standard_normal(idx.size, dtype=dtype)
        flat[idx] = v
        idx = idx[np.abs(v) > 2]
    return x


def _orthogonal(
    rng: RandomSource, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> NDArray[np.floating[Any]]:
    # QR of a Gaussian matrix with the signs of diag(R) folded in gives a Haar-distributed
    # (semi-)orthogonal matrix (Mezzadri 2007), as torch.nn.init.orthogonal_ does.
    rows, cols = shape[-2], shape[-1]
    tall = rows >= cols
    a = rng.standard_normal((*shape[:-2], max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    return (q if tall else np.swapaxes(q, -1, -2)).astype(dtype)


# --------------------------------------------------------------------------- registry

_CATALOGUE: Registry[Initializer] = Registry("initializer")
_register = _CATALOGUE.register


def initializers() -> tuple[str, ...]:
    """The canonical names in the catalogue."""
    return _CATALOGUE.names()


def initializer(name: str | Initializer, **params: Any) -> Initializer:
    """Look up an initializer by its framework spelling (aliases accepted) and build it.

    >>> initializer("kaiming_normal_", mode="fan_out").mode
    'fan_out'
    >>> initializer("torch_linear_default").variance(fan_in=300, fan_out=100) * 300
    0.3333333333333333
    """
    if isinstance(name, Initializer):
        if params:
            raise GradmathError("Parameters go with a name, not with an Initializer object.")
        return name
    return _CATALOGUE.build(name, **params)


_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``: the recommended gain for a nonlinearity.

    linear/conv/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1 + a²)) (a = 0.01 when not
    given), selu 3/4 (PyTorch docs, torch/nn/init.py).

    >>> calculate_gain("leaky_relu", 0.2) ** 2
    1.923076923076923
    """
    key = str(nonlinearity).lower()
    if key in _GAINS:
        return _GAINS[key]
    if key == "tanh":
        return 5.0 / 3.0
    if key == "relu":
        return math.sqrt(2.0)
    if key == "leaky_relu":
        a = (
            0.01
            if param is None
            else real_param(
                "param", param, -math.inf, math.inf, "a finite real number (the negative slope)"
            )
        )
        return math.sqrt(2.0 / (1.0 + a * a))
    if key == "selu":
        return 3.0 / 4.0
    names = [*_GAINS, "tanh", "relu", "leaky_relu", "selu"]
    raise GradmathError(
        f"No gain for nonlinearity {nonlinearity!r}.{suggest(key, names)} "
        f"Allowed: {', '.join(names)}."
    )


def _mode(mode: str, allowed: tuple[str, ...] = ("fan_in", "fan_out")) -> Mode:
    if mode not in allowed:
        raise GradmathError(f"`mode` (={mode!r}) must be one of {', '.join(allowed)}.")
    return mode  # type: ignore[return-value]


def _gain(gain: float) -> float:
    return real_param("gain", gain, 0.0, math.inf, "finite and > 0", lo_open=True)


_KERAS = "Keras keras.initializers.{} (VarianceScaling scale={}, mode={}, {})"
_GLOROT = "Glorot & Bengio (2010), eq. 12 (Var = 2/(fan_in + fan_out))"
_HE = "He et al. (2015), 'Delving deep into rectifiers', eq. 10 (Var = 2/fan_in)"
_LECUN = "LeCun et al. (1998), 'Efficient BackProp' (Var = 1/fan_in)"


def _keras(name: str, scale: float, mode: Mode, dist: Distribution, paper: str) -> Initializer:
    camel = "".join(p.capitalize() for p in name.split("_"))
    ref = f"{paper}; " + _KERAS.format(camel, scale, mode, dist)
    return Initializer(name, dist, scale, mode, ref)


@_register("glorot_normal", "GlorotNormal")
def _glorot_normal() -> Initializer:
    return _keras("glorot_normal", 1.0, "fan_avg", "truncated_normal", _GLOROT)


@_register("glorot_uniform", "GlorotUniform")
def _glorot_uniform() -> Initializer:
    return _keras("glorot_uniform", 1.0, "fan_avg", "uniform", _GLOROT)


@_register("he_normal", "HeNormal")
def _he_normal() -> Initializer:
    return _keras("he_normal", 2.0, "fan_in", "truncated_normal", _HE)


@_register("he_uniform", "HeUniform")
def _he_uniform() -> Initializer:
    return _keras("he_uniform", 2.0, "fan_in", "uniform", _HE)


@_register("lecun_normal", "LecunNormal")
def _lecun_normal() -> Initializer:
    return _keras("lecun_normal", 1.0, "fan_in", "truncated_normal", _LECUN)


@_register("lecun_uniform", "LecunUniform")
def _lecun_uniform() -> Initializer:
    return _keras("lecun_uniform", 1.0, "fan_in", "uniform", _LECUN)


@_register("xavier_normal", "xavier_normal_")
def _xavier_normal(gain: float = 1.0) -> Initializer:
    g = _gain(gain)
    ref = f"{_GLOROT}; torch.nn.init.xavier_normal_(gain={g})"
    return Initializer("xavier_normal", "normal", g * g, "fan_avg", ref, params={"gain": g})


@_register("xavier_uniform", "xavier_uniform_")
def _xavier_uniform(gain: float = 1.0) -> Initializer:
    g = _gain(gain)
    ref = f"{_GLOROT}; torch.nn.init.xavier_uniform_(gain={g})"
    return Initializer("xavier_uniform", "uniform", g * g, "fan_avg", ref, params={"gain": g})


def _kaiming(dist: Distribution, a: float, mode: str, nonlinearity: str) -> Initializer:
    m = _mode(mode)
    gain = calculate_gain(nonlinearity, a)
    name = f"kaiming_{dist}"
    ref = (
        f"{_HE}, eq. 14 for mode='fan_out'; torch.nn.init.{name}_(a={a}, mode={m!r}, "
        f"nonlinearity={nonlinearity!r})"
    )
    params = {"a": a, "mode": m, "nonlinearity": nonlinearity}
    return Initializer(name, dist, gain * gain, m, ref, params=params)


@_register("kaiming_normal", "kaiming_normal_")
def _kaiming_normal(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Initializer:
    return _kaiming("normal", a, mode, nonlinearity)


@_register("kaiming_uniform", "kaiming_uniform_")
def _kaiming_uniform(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Initializer:
    return _kaiming("uniform", a, mode, nonlinearity)


@_register("orthogonal", "orthogonal_", "Orthogonal")
def _orthogonal_init(gain: float = 1.0) -> Initializer:
    g = _gain(gain)
    ref = f"Saxe, McClelland & Ganguli (2014); torch.nn.init.orthogonal_(gain={g})"
    return Initializer("orthogonal", "orthogonal", g * g, "fan_in", ref, params={"gain": g})


@dataclass(frozen=True)
class DeltaOrthogonal(Initializer):
    """Delta-orthogonal convolution kernels (Xiao et al. 2018, Algorithm 2).

    A kernel of shape (c_out, c_in, k_1, …, k_d) (``layout="out_in"``, PyTorch's Conv) or
    (k_1, …, k_d, c_in, c_out) (``"in_out"``, Keras/TensorFlow) is zero except at the spatial
    centre (index k_i // 2 in every spatial axis), which holds gain × a Haar-random
    (semi-)orthogonal c_out × c_in matrix. The convolution then maps every pixel's channel vector
    by that matrix: an isometry of the whole input when c_in ≤ c_out (any padding that keeps
    the centre tap, and exactly with circular padding). Per-entry variance
    gain²/(k_1…k_d · max(c_in, c_out)) = scale/max(fan_in, fan_out) with the receptive field in
    the fans, as for the "orthogonal" entry. A dense layer's weight is plain orthogonal
    (:meth:`sample`); kernels come from :meth:`sample_kernel`.

    >>> init = initializer("delta_orthogonal")
    >>> w = init.sample_kernel(np.random.default_rng(0), (4, 4, 3, 3))
    >>> centre = w[:, :, 1, 1]
    >>> bool(np.allclose(centre @ centre.T, np.eye(4))), float(abs(w).sum() - abs(centre).sum())
    (True, 0.0)
    """

    def sample_kernel(
        self,
        rng: np.random.Generator,
        shape: tuple[int, ...],
        *,
        layout: Layout = "out_in",
        dtype: type[np.floating[Any]] | np.dtype[Any] = np.float64,
    ) -> NDArray[np.floating[Any]]:
        """Draw one convolution kernel of ``shape`` (axes as in the class docstring).

        :meth:`sample` keeps the catalogue's meaning (a weight matrix, leading axes a batch of
        independent matrices): for a dense layer delta-orthogonal *is* orthogonal.
        """
        shape = tuple(int(n) for n in shape)
        if len(shape) < 3:
            raise GradmathError(
                f"`shape` (={shape!r}) must have two channel axes and at least one spatial axis."
            )
        if not all(hasattr(rng, m) for m in ("standard_normal", "random")):
            # numpy's Generator, or one with its interface (numeric.generators.TorchGenerator)
            raise GradmathError(
                f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)), "
                f"got {type(rng).__name__}."
            )
        for i, n in enumerate(shape):
            check_positive_int(f"shape[{i}]", n)
        dt = np.dtype(dtype)
        if layout == "out_in":
            c_out, c_in, spatial = shape[0], shape[1], shape[2:]
        elif layout == "in_out":
            c_in, c_out, spatial = shape[-2], shape[-1], shape[:-2]
        else:
            raise GradmathError(
                f"`layout` (={layout!r}) must be 'out_in' (PyTorch) or 'in_out' (Keras)."
            )
        h = _orthogonal(rng, (c_out, c_in), dt) * dt.type(math.sqrt(self.scale))
        out = np.zeros(shape, dtype=dt)
        centre: tuple[Any, ...] = tuple(k // 2 for k in spatial)
        both: tuple[Any, ...] = (slice(None), slice(None))
        if layout == "out_in":
            out[both + centre] = h
        else:
            out[centre + both] = h.T
        return out


@_register("delta_orthogonal", "ConvolutionDeltaOrthogonal", "convolutional_delta_orthogonal")
def _delta_orthogonal(gain: float = 1.0) -> Initializer:
    g = _gain(gain)
    ref = (
        "Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington (2018), 'Dynamical isometry and a "
        "mean field theory of CNNs', Algorithm 2; tf.keras.initializers."
        f"ConvolutionDeltaOrthogonal(gain={g})"
    )
    return DeltaOrthogonal(
        "delta_orthogonal", "orthogonal", g * g, "fan_in", ref, params={"gain": g}
    )


@_register("torch_linear_default", "pytorch_default", "torch_default")
def _torch_linear_default() -> Initializer:
    ref = (
        "PyTorch nn.Linear.reset_parameters: kaiming_uniform_(a=√5) ⇒ U(±1/√fan_in), "
        "Var = 1/(3·fan_in); bias U(±1/√fan_in), Var = 1/(3·fan_in)"
    )
    return Initializer("torch_linear_default", "uniform", 1.0 / 3.0, "fan_in", ref, 1.0 / 3.0)


@_register("normal", "mean_field")
def _normal(sigma_w2: float = 1.0, mode: str = "fan_in") -> Initializer:
    s = real_param("sigma_w2", sigma_w2, 0.0, math.inf, "finite and >= 0")
    ref = "N(0, σ_w²/fan_in): the mean-field parameterisation (Poole et al. 2016, §2)"
    return Initializer("normal", "normal", s, _mode(mode), ref, params={"sigma_w2": s})


@_register("variance_scaling", "VarianceScaling")
def _variance_scaling(
    scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
) -> Initializer:
    s = real_param("scale", scale, 0.0, math.inf, "finite and > 0", lo_open=True)
    dists = ("normal", "truncated_normal", "uniform")
    if distribution not in dists:
        raise GradmathError(f"`distribution` (={distribution!r}) must be one of {dists}.")
    m = _mode(mode, ("fan_in", "fan_out", "fan_avg"))
    ref = _KERAS.format("VarianceScaling", s, m, distribution)
    params = {"scale": s, "mode": m, "distribution": distribution}
    return Initializer("variance_scaling", distribution, s, m, ref, params=params)  # type: ignore[arg-type]
