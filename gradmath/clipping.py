"""Gradient clipping: by value, by norm (per tensor) and by global norm, in NumPy.

Three rules are in use, and they differ in what they preserve:

========================  ==========================================  ===========================
rule                      formula                                     framework spelling
========================  ==========================================  ===========================
by value                  g_i ← min(max(g_i, −c), c), per component   Keras ``clipvalue``,
                                                                      ``clip_grad_value_``
by norm (per tensor)      g ← g · c / max(‖g‖, c), each tensor alone  Keras ``clipnorm``;
                                                                      Pascanu et al. (2013) Alg. 1
by global norm            g_k ← g_k · min(1, c / (‖g‖_global + ε)),   ``torch.nn.utils.
                          ‖g‖_global = (Σ_k ‖g_k‖²)^½, ε = 1e-6       clip_grad_norm_``; Keras
                                                                      ``global_clipnorm`` (ε = 0)
========================  ==========================================  ===========================

Clipping by norm keeps the direction of the gradient and bounds the step; clipping by value
bounds each component and can turn the direction: the classic [0.9, 100] becomes [0.9, 1]
at c = 1, a turn of arccos(100.81/√(10000.81·1.81)) ≈ 41.5°
(:func:`gradmath.symbolic.value_clip_derivation` derives it exactly).

Sources.
    Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural
    networks", Algorithm 1: ĝ ← ∂E/∂θ; if ‖ĝ‖ ≥ threshold then ĝ ← (threshold/‖ĝ‖)·ĝ.
    Keras 3 ``keras/optimizers/base_optimizer.py``: ``clip_by_norm`` computes
    g·c/max(‖g‖, c) per tensor (no ε); ``clip_by_global_norm`` computes g·c·min(1/‖g‖, 1/c)
    (no ε); ``clipvalue`` is ``ops.clip(g, −c, c)``.
    PyTorch ``torch/nn/utils/clip_grad.py``: ``clip_coef = max_norm / (total_norm + 1e-6)``,
    clamped to at most 1, every gradient multiplied by it (so a gradient whose norm is within
    1e-6 of ``max_norm`` is shrunk by a factor 1 − O(1e-6/max_norm), and a clipped gradient
    ends with norm c·‖g‖/(‖g‖ + 1e-6), just below c). ``eps=0`` here gives Keras' rule.

Input. ``grads`` is one tensor (a NumPy array, a number or a nested list of numbers) or a
list/tuple of NumPy arrays (the gradients of several parameter tensors). A list or tuple of
plain numbers is *one* vector: ``[0.9, 100.0]`` is the classic two-component gradient. The
result has the same form (one array, or a list of arrays), new arrays, the inputs untouched.

Non-finite gradients. Every function raises :class:`~gradmath.GradmathError` when a gradient
holds NaN or ±inf. This is PyTorch's ``error_if_nonfinite=True``, whose default its docs say
"will switch to True in the future": by value would silently turn inf into ±c and keep NaN,
by norm would multiply everything by NaN or 0. A non-finite gradient means the step already
failed (the training loop in :mod:`gradmath.numeric.train` detects and reports it first).

Norms are computed with scaling (‖g‖ = m·‖g/m‖, m = max|g_i|), so gradients of 1e200 are
clipped correctly instead of overflowing in the sum of squares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradmath.errors import GradmathError, check_positive

__all__ = [
    "PYTORCH_CLIP_EPS",
    "ClipSpec",
    "apply_clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "direction_change",
    "global_norm",
    "scaled_norm",
    "validate_clip",
]

FloatArray: TypeAlias = NDArray[np.floating[Any]]
Grads: TypeAlias = "ArrayLike | Sequence[NDArray[Any]]"
#: A list or tuple of arrays: several tensors, clipped and returned as a list.
Tensors: TypeAlias = "list[NDArray[Any]] | tuple[NDArray[Any], ...]"
ClipSpec: TypeAlias = "dict[str, float] | None"

#: The ε in ``torch.nn.utils.clip_grad_norm_``: clip_coef = max_norm / (total_norm + 1e-6).
PYTORCH_CLIP_EPS = 1e-6

_RULES = ("value", "norm", "global_norm")


# --------------------------------------------------------------------------- input handling


def _as_tensors(grads: Any) -> tuple[list[FloatArray], bool]:
    """The gradient tensors as float arrays, and whether the input was one tensor."""
    if isinstance(grads, (list, tuple)) and grads and all(isinstance(g, np.ndarray) for g in grads):
        tensors, single = list(grads), False
    else:
        tensors, single = [grads], True
    out = []
    for k, g in enumerate(tensors):
        try:
            a = np.asarray(g)
        except (TypeError, ValueError):
            raise GradmathError(
                f"`grads` (={grads!r}) must be an array or a list of arrays."
            ) from None
        if a.dtype == object or not (
            np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
        ):
            raise GradmathError(
                f"`grads` must hold real numbers; got dtype {a.dtype} "
                f"({'the gradient' if single else f'tensor {k}'}). Pass an array or a list of "
                "arrays; a list of numbers is one vector."
            )
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            where = "the gradient" if single else f"gradient tensor {k} (shape {a.shape})"
            raise GradmathError(
                f"{where} holds {n_nan} NaN and {n_inf} ±inf entries, so it cannot be clipped: "
                "the step already failed. (gradmath always errors here, as PyTorch's "
                "clip_grad_norm_(error_if_nonfinite=True).)"
            )
        out.append(a)
    return out, single


def _pack(tensors: list[FloatArray], single: bool) -> FloatArray | list[FloatArray]:
    return tensors[0] if single else tensors


def scaled_norm(tensors: Sequence[FloatArray]) -> tuple[float, float]:
    """(m, r) with ‖g‖ = m·r, m = max|g_i| and r ∈ [1, √n]: no overflow or underflow."""
    m = max((float(np.max(np.abs(a))) for a in tensors if a.size), default=0.0)
    if m == 0.0:
        return 0.0, 0.0
    r2 = math.fsum(float(np.sum(np.square(a.astype(np.float64) / m))) for a in tensors)
    return m, math.sqrt(r2)


def _times(m: float, r: float) -> float:
    # m·r overflows only for norms beyond 1.8e308; say so instead of returning inf.
    with np.errstate(over="ignore"):
        v = float(np.float64(m) * np.float64(r))
    if not math.isfinite(v):
        raise GradmathError(
            f"The gradient norm is e^{math.log(m) + math.log(r):.1f}, beyond float64; "
            "the clipping functions still handle it (they never form the norm itself)."
        )
    return v


def global_norm(grads: Grads) -> float:
    """‖g‖_global = (Σ_k Σ_i g_{k,i}²)^½ over all tensors, as if concatenated into one vector.

    The ``total_norm`` of ``torch.nn.utils.clip_grad_norm_`` (norm_type=2) and Keras'
    ``global_norm``; for one tensor its Euclidean (Frobenius) norm.

    >>> global_norm([np.array([3.0]), np.array([[4.0]])])
    5.0
    """
    tensors, _ = _as_tensors(grads)
    return _times(*scaled_norm(tensors))


# --------------------------------------------------------------------------- the three rules


@overload
def clip_by_value(grads: Tensors, clip_value: float) -> list[FloatArray]: ...
@overload
def clip_by_value(grads: ArrayLike, clip_value: float) -> FloatArray: ...
def clip_by_value(grads: Grads, clip_value: float) -> FloatArray | list[FloatArray]:
    """Clip every component to [−c, c]: g_i ← min(max(g_i, −c), c).

    Keras ``clipvalue`` (``ops.clip(g, -c, c)``) and ``torch.nn.utils.clip_grad_value_``.
    Bounds each component but not the direction: [0.9, 100] → [0.9, 1] at c = 1.

    >>> clip_by_value([0.9, 100.0], 1.0)
    array([0.9, 1. ])
    """
    c = check_positive("clip_value", clip_value)
    tensors, single = _as_tensors(grads)
    return _pack([np.clip(a, -c, c) for a in tensors], single)


def _rescale(m: float, r: float, c: float, eps: float) -> float:
    """The factor min(1, c/(‖g‖ + ε)) with ‖g‖ = m·r, computed without forming ‖g‖."""
    if r == 0.0:
        return 1.0
    # c/(m r + ε) = (c/m)/(r + ε/m); both quotients stay finite for any finite m > 0.
    with np.errstate(over="ignore"):
        coef = (c / m) / (r + eps / m)
    return min(1.0, coef)


@overload
def clip_by_norm(grads: Tensors, max_norm: float) -> list[FloatArray]: ...
@overload
def clip_by_norm(grads: ArrayLike, max_norm: float) -> FloatArray: ...
def clip_by_norm(grads: Grads, max_norm: float) -> FloatArray | list[FloatArray]:
    """Rescale each tensor on its own to norm at most c: g_k ← g_k · c / max(‖g_k‖, c).

    Keras ``clipnorm`` (``clip_by_norm`` applied to every gradient tensor separately) and
    Pascanu, Mikolov & Bengio (2013), Algorithm 1: if ‖ĝ‖ ≥ threshold, ĝ ← (threshold/‖ĝ‖)·ĝ.
    Keeps the direction of each tensor; the direction of the concatenated gradient turns
    when tensors are rescaled by different factors (use :func:`clip_by_global_norm` to avoid
    that).

    >>> clip_by_norm([0.9, 100.0], 1.0).round(5)
    array([0.009  , 0.99996])
    """
    c = check_positive("max_norm", max_norm)
    tensors, single = _as_tensors(grads)
    out = []
    for a in tensors:
        m, r = scaled_norm([a])
        out.append(a * a.dtype.type(_rescale(m, r, c, 0.0)))
    return _pack(out, single)


@overload
def clip_by_global_norm(
    grads: Tensors, max_norm: float, *, eps: float = ...
) -> list[FloatArray]: ...
@overload
def clip_by_global_norm(grads: ArrayLike, max_norm: float, *, eps: float = ...) -> FloatArray: ...
def clip_by_global_norm(
    grads: Grads, max_norm: float, *, eps: float = PYTORCH_CLIP_EPS
) -> FloatArray | list[FloatArray]:
    """Scale all tensors together: g_k ← g_k · min(1, c / (‖g‖_global + ε)).

    ``torch.nn.utils.clip_grad_norm_(params, max_norm=c)`` with its ε = 1e-6
    (``clip_coef = max_norm / (total_norm + 1e-6)``, clamped to 1; torch/nn/utils/clip_grad.py).
    ``eps=0`` gives Keras ``global_clipnorm`` (``clip_by_global_norm``: g·c·min(1/‖g‖, 1/c)).
    The direction of the whole update is kept; per-tensor proportions are kept too.

    >>> [g.round(6) for g in clip_by_global_norm([np.array([3.0]), np.array([4.0])], 1.0)]
    [array([0.6]), array([0.8])]
    """
    c = check_positive("max_norm", max_norm)
    e = check_positive("eps", eps, allow_zero=True)
    tensors, single = _as_tensors(grads)
    coef = _rescale(*scaled_norm(tensors), c, e)
    return _pack([a * a.dtype.type(coef) for a in tensors], single)


def validate_clip(clip: ClipSpec) -> tuple[str, float] | None:
    """Check a clipping spec ``None | {"value": c} | {"norm": c} | {"global_norm": c}``.

    Returns ``(rule, c)`` or ``None``; raises :class:`GradmathError` for anything else.
    """
    if clip is None:
        return None
    if not isinstance(clip, dict) or len(clip) != 1 or next(iter(clip)) not in _RULES:
        raise GradmathError(
            f"`clip` (={clip!r}) must be None or a one-entry dict "
            '{"value": c}, {"norm": c} or {"global_norm": c} with c > 0.'
        )
    rule, c = next(iter(clip.items()))
    return rule, check_positive(f"clip[{rule!r}]", c)


@overload
def apply_clip(grads: Tensors, clip: ClipSpec) -> list[FloatArray]: ...
@overload
def apply_clip(grads: ArrayLike, clip: ClipSpec) -> FloatArray: ...
def apply_clip(grads: Grads, clip: ClipSpec) -> FloatArray | list[FloatArray]:
    """Apply a clipping spec (see :func:`validate_clip`); ``None`` returns the gradients as is.

    ``{"value": c}`` → :func:`clip_by_value`, ``{"norm": c}`` → :func:`clip_by_norm`,
    ``{"global_norm": c}`` → :func:`clip_by_global_norm` (PyTorch's ε).
    """
    spec = validate_clip(clip)
    if spec is None:
        tensors, single = _as_tensors(grads)
        return _pack(tensors, single)
    rule, c = spec
    if rule == "value":
        return clip_by_value(grads, c)
    if rule == "norm":
        return clip_by_norm(grads, c)
    return clip_by_global_norm(grads, c)


def direction_change(grads: Grads, clipped: Grads) -> float:
    """The angle (radians) between a gradient and its clipped version, both concatenated.

    θ = arccos( ⟨g, g'⟩ / (‖g‖ ‖g'‖) ), computed as 2·atan2(‖u − v‖, ‖u + v‖) with u, v the
    unit vectors (Kahan), so that small angles keep full relative accuracy.

    >>> round(math.degrees(direction_change([0.9, 100.0], [0.9, 1.0])), 4)
    41.4716
    """
    a_list, _ = _as_tensors(grads)
    b_list, _ = _as_tensors(clipped)
    a = np.concatenate([t.ravel() for t in a_list]).astype(np.float64)
    b = np.concatenate([t.ravel() for t in b_list]).astype(np.float64)
    if a.shape != b.shape:
        raise GradmathError(
            f"`grads` and `clipped` must have the same number of components, "
            f"got {a.size} and {b.size}."
        )
    na, nb = _times(*scaled_norm([a])), _times(*scaled_norm([b]))
    if na == 0.0 or nb == 0.0:
        raise GradmathError("The angle to a zero gradient is undefined.")
    u, v = a / na, b / nb
    # Kahan's 2·atan2(‖u − v‖, ‖u + v‖) for unit u, v: accurate for tiny and near-π angles,
    # where arccos of a rounded cosine loses half the digits.
    return float(2.0 * math.atan2(np.linalg.norm(u - v), np.linalg.norm(u + v)))
