"""Forward and backward passes of one sampled network (or a stack of them), in NumPy.

The network is the :class:`~gradmath.MLP` (theory.md, "Network and notation"; the team's fixed
conventions for residual and batch-norm blocks). For layer l = 1 … L (index i = l − 1):

- input of the layer: x^0 (the data) for l = 1, else x^{l−1} = φ_{l−1}(h^{l−1});
- affine map a^l = W^l x^{l−1} + b^l, W^l of shape (n_l, n_{l−1}) = (fan_out, fan_in);
- plain:      h^l = a^l;
- residual α: h^l = h^{l−1} + α a^l for l ≥ 2 (h^1 = a^1), Yang & Schoenholz (2017);
- batch norm: h^l = (a^l − μ^l)/σ^l per unit over the batch (γ = 1, β = 0, eps = 0,
  biased variance as PyTorch and Keras in training mode), Ioffe & Szegedy (2015), eq. in
  Algorithm 1.

Rows are examples: x has shape (batch, n_0) and h^l shape (batch, n_l), so a^l = x W^lᵀ + b^l.
Every function here also takes *stacks*: arrays with extra leading axes (W of shape
(K, n_l, n_{l−1}), x of shape (K, batch, n_{l−1})) hold K independent networks, which is how
:func:`gradmath.numeric.simulate` runs many small networks through one matmul call.

The backward pass is exact reverse-mode differentiation of the same operations. With
δ^l = ∂L/∂h^l and ∂L/∂a^l written δa^l:

- plain: δa^l = δ^l; residual (l ≥ 2): δa^l = α δ^l; batch norm:
  δa^l = (δ^l − mean_b δ^l − h^l · mean_b(δ^l h^l)) / σ^l (the mean and variance depend on every
  example; Ioffe & Szegedy 2015, §3);
- ∂L/∂W^l = δa^lᵀ x^{l−1} (summed over the batch), ∂L/∂b^l = Σ_b δa^l;
- δ^{l−1} = (δa^l W^l) ⊙ φ'_{l−1}(h^{l−1}) (+ δ^l for a residual block).

So ∂L/∂W^l = α δ^lᵀ φ(h^{l−1}) for residual blocks, as the convention fixes. Checked against
central finite differences in ``tests/numeric/test_network.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from gradmath.activations import Activation
from gradmath.errors import GradmathError
from gradmath.mlp import MLP, MLPLayer
from gradmath.network.standardize import standardize, standardize_backward

__all__ = [
    "Cache",
    "Gradients",
    "backward",
    "bn_backward",
    "bn_forward",
    "forward",
    "layer_backward",
    "layer_forward",
    "layer_input",
    "sample_layer",
    "sample_params",
]

Array = NDArray[np.floating[Any]]
Params = Sequence[tuple[Array, Array]]


def check_supported(mlp: MLP) -> None:
    """Refuse anything but an :class:`~gradmath.MLP` (these passes are written for MLPs)."""
    if not isinstance(mlp, MLP):
        raise GradmathError(f"`mlp` must be a gradmath.MLP, got {type(mlp).__name__}.")


def sample_layer(
    layer: MLPLayer, rng: np.random.Generator, dtype: Any = np.float64
) -> tuple[Array, Array]:
    """(W, b) of one layer: W from the layer's own initializer, shape (fan_out, fan_in);
    b ~ N(0, sigma_b2) i.i.d. (theory.md: b^l_i ~ N(0, σ_b²))."""
    w = layer.init.sample(rng, (layer.fan_out, layer.fan_in), dtype=dtype)
    dt = np.dtype(dtype)
    b = rng.standard_normal(layer.fan_out, dtype=dt) * dt.type(math.sqrt(layer.sigma_b2))
    return w, b


def sample_params(
    mlp: MLP, rng: np.random.Generator, dtype: Any = np.float64
) -> list[tuple[Array, Array]]:
    """Sample (W^l, b^l) for l = 1 … L from one generator, layer by layer.

    W^l has shape (n_l, n_{l−1}) and is drawn by ``mlp.layers[l−1].init.sample`` (the same
    catalogue object the theory reads its variance from); b^l ~ N(0, sigma_b2_l).

    >>> from gradmath import MLP
    >>> p = sample_params(MLP((3, 5, 2)), np.random.default_rng(0))
    >>> [(w.shape, b.shape) for w, b in p]
    [((5, 3), (5,)), ((2, 5), (2,))]
    """
    check_supported(mlp)
    if not isinstance(rng, np.random.Generator):
        raise GradmathError(
            f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}."
        )
    return [sample_layer(layer, rng, dtype) for layer in mlp.layers]


# --------------------------------------------------------------------------- one layer


def bn_forward(a: Array, eps: float = 0.0) -> tuple[Array, Array]:
    """Batch normalisation over axis −2 (the batch): returns (h, 1/σ) with σ of shape (…, 1, n).

    h = (a − μ)/σ, μ = mean_b a, σ² = mean_b (a − μ)² + eps (biased variance); the arithmetic
    is :func:`gradmath.network.standardize.standardize`, shared with the BatchNorm layer.
    """
    return standardize(a, axis=-2, eps=eps)


def bn_backward(delta: Array, h: Array, inv_sigma: Array) -> Array:
    """∂L/∂a from δ = ∂L/∂h through h = (a − μ)/σ (biased variance, exact in μ and σ):

    ∂L/∂a = (δ − mean_b δ − h · mean_b(δ h)) / σ   (Ioffe & Szegedy 2015, §3, simplified).
    """
    return standardize_backward(delta, h, inv_sigma, axis=-2)


def layer_input(mlp: MLP, i: int, x0: Array, h_prev: Array | None) -> Array:
    """x^{l−1}, the input of layer l = i + 1: x^0 for i = 0, else φ_{l−1}(h^{l−1})."""
    if i == 0:
        return x0
    act = cast(tuple[Activation, ...], mlp.activation)[i - 1]
    return act(cast(Array, h_prev))


def layer_forward(
    mlp: MLP, i: int, w: Array, b: Array, x_in: Array, h_prev: Array | None
) -> tuple[Array, Array | None]:
    """h^l for layer l = i + 1 from its input x^{l−1} (and h^{l−1} for a residual block).

    Returns (h^l, 1/σ^l) for batch-norm nets, (h^l, None) otherwise. ``b`` has shape
    (…, n_l) and is added to every example.
    """
    a = np.matmul(x_in, np.swapaxes(w, -1, -2))
    a += b[..., None, :]
    if mlp.batchnorm:
        return bn_forward(a)
    if mlp.residual is not None and i > 0:
        a *= mlp.residual
        a += cast(Array, h_prev)
    return a, None


def layer_backward(
    mlp: MLP,
    i: int,
    w: Array,
    delta: Array,
    h: Array,
    inv_sigma: Array | None,
    h_prev: Array | None,
) -> tuple[Array, Array | None]:
    """(δa^l, δ^{l−1}) from δ^l for layer l = i + 1 (δ^{l−1} is None for the first layer).

    δa^l = ∂L/∂a^l (so ∂L/∂W^l = δa^lᵀ x^{l−1}); see the module docstring for the formulas.
    """
    if mlp.batchnorm:
        da = bn_backward(delta, h, cast(Array, inv_sigma))
    elif mlp.residual is not None and i > 0:
        da = delta * mlp.residual
    else:
        da = delta
    if i == 0:
        return da, None
    act = cast(tuple[Activation, ...], mlp.activation)[i - 1]
    prev = np.matmul(da, w)
    prev *= act.deriv(cast(Array, h_prev))
    if mlp.residual is not None:
        prev += delta
    return da, prev


# --------------------------------------------------------------------------- whole network


@dataclass(frozen=True, eq=False)
class Cache:
    """What the forward pass keeps for the backward pass.

    ``x``: the input x^0 (batch, n_0); ``h``: h^1 … h^L, each (batch, n_l); ``inv_sigma``:
    1/σ^l of each batch-norm layer, shape (1, n_l) (``None`` entries without batch norm).
    """

    x: Array
    h: tuple[Array, ...]
    inv_sigma: tuple[Array | None, ...]

    @property
    def output(self) -> Array:
        """h^L, the last pre-activation (the net's output; its activation is not applied)."""
        return self.h[-1]

    @property
    def logits(self) -> Array:
        """Alias of :attr:`output` for classification losses."""
        return self.h[-1]

    def layer_inputs(self, mlp: MLP) -> list[Array]:
        """x^0 … x^{L−1}, the input of every layer."""
        return [
            layer_input(mlp, i, self.x, self.h[i - 1] if i else None) for i in range(len(self.h))
        ]


@dataclass(frozen=True, eq=False)
class Gradients:
    """Gradients of L with respect to every layer; iterates as (∂L/∂W^l, ∂L/∂b^l) pairs.

    ``delta[i]`` = δ^l = ∂L/∂h^l (batch, n_l); ``weights[i]`` = ∂L/∂W^l (n_l, n_{l−1});
    ``biases[i]`` = ∂L/∂b^l (n_l,).
    """

    delta: tuple[Array, ...]
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]

    def __iter__(self) -> Iterator[tuple[Array, Array]]:
        return iter(zip(self.weights, self.biases, strict=True))

    def __len__(self) -> int:
        return len(self.weights)

    def __getitem__(self, i: int) -> tuple[Array, Array]:
        return self.weights[i], self.biases[i]


def _check_params(mlp: MLP, params: Params) -> None:
    if len(params) != mlp.depth:
        raise GradmathError(f"`params` has {len(params)} layers; the MLP has {mlp.depth}.")
    for layer, (w, b) in zip(mlp.layers, params, strict=True):
        want = (layer.fan_out, layer.fan_in)
        if np.shape(w)[-2:] != want or np.shape(b)[-1:] != want[:1]:
            raise GradmathError(
                f"Layer {layer.number}: W has shape {np.shape(w)} and b {np.shape(b)}; "
                f"this MLP needs W (…, {want[0]}, {want[1]}) and b (…, {want[0]})."
            )


def forward(mlp: MLP, params: Params, x: Array) -> Cache:
    """Run x (batch, n_0) through the network; returns the :class:`Cache` (h^L = ``.output``).

    >>> from gradmath import MLP
    >>> net = MLP((3, 4, 2), activation="tanh", init="glorot_normal")
    >>> p = sample_params(net, np.random.default_rng(0))
    >>> forward(net, p, np.ones((5, 3))).output.shape
    (5, 2)
    """
    check_supported(mlp)
    _check_params(mlp, params)
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-1] != mlp.widths[0]:
        raise GradmathError(
            f"`x` must have shape (batch, {mlp.widths[0]}) for this MLP, got {x.shape}."
        )
    hs: list[Array] = []
    inv: list[Array | None] = []
    h_prev: Array | None = None
    for i, (w, b) in enumerate(params):
        x_in = layer_input(mlp, i, x, h_prev)
        h_prev, s = layer_forward(mlp, i, w, b, x_in, h_prev)
        hs.append(h_prev)
        inv.append(s)
    return Cache(x, tuple(hs), tuple(inv))


def backward(mlp: MLP, params: Params, cache: Cache, grad_out: Array) -> Gradients:
    """Backpropagate ``grad_out`` = ∂L/∂h^L (batch, n_L) to every layer (module docstring).

    The loss is whatever L has ∂L/∂h^L = ``grad_out`` (for a batch loss, the sum or mean over
    examples is already in ``grad_out``).
    """
    check_supported(mlp)
    _check_params(mlp, params)
    grad_out = np.asarray(grad_out)
    if grad_out.shape != cache.output.shape:
        raise GradmathError(
            f"`grad_out` has shape {grad_out.shape}; it must match the output {cache.output.shape}."
        )
    inputs = cache.layer_inputs(mlp)
    L = mlp.depth
    deltas: list[Array] = [grad_out] * L
    dws: list[Array] = [grad_out] * L
    dbs: list[Array] = [grad_out] * L
    delta = grad_out
    for i in range(L - 1, -1, -1):
        w = params[i][0]
        deltas[i] = delta
        h_prev = cache.h[i - 1] if i else None
        da, prev = layer_backward(mlp, i, w, delta, cache.h[i], cache.inv_sigma[i], h_prev)
        dws[i] = np.matmul(np.swapaxes(da, -1, -2), inputs[i])
        dbs[i] = da.sum(axis=-2)
        if prev is not None:
            delta = prev
    return Gradients(tuple(deltas), tuple(dws), tuple(dbs))
