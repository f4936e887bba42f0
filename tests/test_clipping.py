"""Clipping semantics against their definitions (Keras, PyTorch, Pascanu et al. 2013 Alg. 1)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradmath import GradmathError
from gradmath.clipping import (
    PYTORCH_CLIP_EPS,
    apply_clip,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    direction_change,
    global_norm,
    validate_clip,
)
from gradmath.symbolic import norm_clip_derivation, value_clip_derivation

CLASSIC = [0.9, 100.0]


def _torch_clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> list[np.ndarray]:
    # Transcription of torch/nn/utils/clip_grad.py (norm_type=2): total_norm is the 2-norm of
    # the per-tensor 2-norms; clip_coef = max_norm / (total_norm + 1e-6), clamped to <= 1.
    total = float(np.linalg.norm([np.linalg.norm(g) for g in grads]))
    coef = min(max_norm / (total + 1e-6), 1.0)
    return [g * coef for g in grads]


def _keras_clip_by_norm(g: np.ndarray, c: float) -> np.ndarray:
    # keras/optimizers/base_optimizer.py clip_by_norm: values * c / maximum(l2norm, c).
    return g * c / max(float(np.sqrt(np.sum(g * g))), c)


def _keras_clip_by_global_norm(grads: list[np.ndarray], c: float) -> list[np.ndarray]:
    # keras clip_by_global_norm: scale = c * minimum(1 / use_norm, 1 / c).
    use = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    return [g * (c * min(1.0 / use, 1.0 / c)) for g in grads]


# --------------------------------------------------------------------------- classic example


def test_classic_value_clip_turns_the_direction() -> None:
    out = clip_by_value(CLASSIC, 1.0)
    np.testing.assert_array_equal(out, [0.9, 1.0])
    theta = direction_change(CLASSIC, out)
    with mpmath.workdps(40):
        exact = mpmath.acos(
            mpmath.mpf(10081) / 100 / mpmath.sqrt(mpmath.mpf(1000081) / 100 * mpmath.mpf(181) / 100)
        )
    assert theta == pytest.approx(float(exact), rel=1e-14)
    assert math.degrees(theta) == pytest.approx(41.4715644, abs=1e-6)


def test_classic_norm_clip_keeps_the_direction() -> None:
    out = clip_by_norm(CLASSIC, 1.0)
    assert np.linalg.norm(out) == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(out, np.array(CLASSIC) / math.hypot(*CLASSIC), rtol=1e-15)
    assert direction_change(CLASSIC, out) < 1e-15


def test_direction_change_is_accurate_for_tiny_angles() -> None:
    eps = 1e-12
    assert direction_change([1.0, 0.0], [1.0, eps]) == pytest.approx(eps, rel=1e-10)
    assert direction_change([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(math.pi, rel=1e-15)


# --------------------------------------------------------------------------- framework semantics


def _tensors() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(size=(4, 3)) * 5, rng.normal(size=4) * 0.1, rng.normal(size=(2, 4)) * 2]


@pytest.mark.parametrize("c", [0.05, 1.0, 3.0, 100.0])
def test_global_norm_clip_matches_pytorch_formula(c: float) -> None:
    grads = _tensors()
    ours = clip_by_global_norm(grads, c)
    for a, b in zip(ours, _torch_clip_grad_norm(grads, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize("c", [0.05, 1.0, 3.0, 100.0])
def test_global_norm_clip_eps0_matches_keras_global_clipnorm(c: float) -> None:
    grads = _tensors()
    ours = clip_by_global_norm(grads, c, eps=0.0)
    for a, b in zip(ours, _keras_clip_by_global_norm(grads, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize("c", [0.05, 1.0, 3.0, 100.0])
def test_norm_clip_is_keras_clipnorm_per_tensor(c: float) -> None:
    grads = _tensors()
    ours = clip_by_norm(grads, c)
    for a, g in zip(ours, grads, strict=True):
        np.testing.assert_allclose(a, _keras_clip_by_norm(g, c), rtol=1e-14)
        assert np.linalg.norm(a) <= c * (1 + 1e-14)


def test_against_torch_if_installed() -> None:
    torch = pytest.importorskip("torch")
    grads = _tensors()
    params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert float(total) == pytest.approx(global_norm(grads), rel=1e-14)
    for p, a in zip(params, clip_by_global_norm(grads, 1.0), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), a, rtol=1e-14)


def test_pytorch_eps_shrinks_a_gradient_at_the_threshold() -> None:
    # ‖g‖ = c exactly: PyTorch still multiplies by c/(c + 1e-6) < 1; Keras (eps=0) does not.
    g = np.array([3.0, 4.0])
    assert np.linalg.norm(clip_by_global_norm(g, 5.0)) == pytest.approx(
        5.0 * 5.0 / (5.0 + PYTORCH_CLIP_EPS), rel=1e-15
    )
    np.testing.assert_array_equal(clip_by_global_norm(g, 5.0, eps=0.0), g)
    np.testing.assert_array_equal(clip_by_norm(g, 5.0), g)


def test_per_tensor_norm_clip_turns_the_concatenated_direction() -> None:
    # Keras clipnorm rescales tensors by different factors; global clipping does not.
    grads = [np.array([30.0, 40.0]), np.array([0.3, 0.4])]
    per_tensor = clip_by_norm(grads, 1.0)
    assert direction_change(grads, per_tensor) > 0.1
    assert direction_change(grads, clip_by_global_norm(grads, 1.0)) < 1e-15


# --------------------------------------------------------------------------- laws (hypothesis)

finite = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False, width=64)
vectors = hnp.arrays(np.float64, st.integers(1, 8), elements=finite)
thresholds = st.floats(1e-6, 1e6)


@given(vectors, thresholds)
@example(np.array([1e300, -1e300, 1e300]), 1.0)
def test_value_clip_laws(g: np.ndarray, c: float) -> None:
    out = clip_by_value(g, c)
    assert np.all(np.abs(out) <= c)
    np.testing.assert_array_equal(clip_by_value(out, c), out)  # idempotent
    inside = np.abs(g) <= c
    np.testing.assert_array_equal(out[inside], g[inside])


@given(vectors, thresholds)
@example(np.array([1e300, 1e300]), 1.0)
@example(np.array([1e-300, 0.0]), 1e-6)
@example(np.zeros(3), 1.0)
def test_norm_clip_laws(g: np.ndarray, c: float) -> None:
    out = clip_by_norm(g, c)
    m = np.max(np.abs(g))
    norm_out = np.max(np.abs(out)) * np.linalg.norm(out / np.max(np.abs(out))) if m else 0.0
    assert norm_out <= c * (1 + 1e-14)
    norm_in = m * np.linalg.norm(g / m) if m else 0.0
    if norm_in <= c:
        np.testing.assert_array_equal(out, g)
    else:
        assert norm_out == pytest.approx(c, rel=1e-14)
        assert direction_change(g, out) < 1e-7  # a positive multiple: same direction


@given(st.lists(vectors, min_size=1, max_size=4), thresholds)
def test_global_norm_clip_scales_every_tensor_by_one_factor(
    grads: list[np.ndarray], c: float
) -> None:
    out = clip_by_global_norm(grads, c)
    ratios = {
        float(o.flat[i] / g.flat[i])
        for o, g in zip(out, grads, strict=True)
        for i in range(g.size)
        # subnormal results carry fewer digits; compare the normal ones
        if abs(g.flat[i]) > 1e-290 and abs(o.flat[i]) > 1e-290
    }
    if ratios:
        assert max(ratios) - min(ratios) <= 1e-14 * max(ratios)
        assert max(ratios) <= 1.0


# --------------------------------------------------------------------------- forms and errors


def test_input_forms() -> None:
    one = clip_by_value(np.array([[2.0, -3.0]], dtype=np.float32), 1.0)
    assert isinstance(one, np.ndarray) and one.dtype == np.float32 and one.shape == (1, 2)
    many = clip_by_norm([np.array([3.0, 4.0]), np.array([0.1])], 1.0)
    assert isinstance(many, list) and len(many) == 2
    assert clip_by_value([5, -5], 2).dtype == np.float64  # integers become floats
    g = np.array([3.0, 4.0])
    clip_by_norm(g, 1.0)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # inputs are not modified


def test_apply_clip_dispatches_and_validates() -> None:
    g = [np.array([3.0, 4.0]), np.array([12.0])]
    np.testing.assert_array_equal(apply_clip(g, {"value": 1.0})[0], [1.0, 1.0])
    np.testing.assert_allclose(apply_clip(g, {"norm": 1.0})[1], [1.0])
    np.testing.assert_allclose(global_norm(apply_clip(g, {"global_norm": 1.0})), 1.0, rtol=1e-5)
    assert apply_clip(g, None)[0] is not None
    assert validate_clip({"norm": 2}) == ("norm", 2.0)
    for bad in ({"val": 1.0}, {"value": 1.0, "norm": 1.0}, "norm", {"norm": -1.0}):
        with pytest.raises(GradmathError, match="clip"):
            validate_clip(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("c", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_threshold(c: object) -> None:
    for fn, name in ((clip_by_value, "clip_value"), (clip_by_norm, "max_norm")):
        with pytest.raises(GradmathError, match=name):
            fn([1.0, 2.0], c)  # type: ignore[operator]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_gradient_raises(bad: float) -> None:
    for fn in (clip_by_value, clip_by_norm, clip_by_global_norm):
        with pytest.raises(GradmathError, match=r"NaN and \d ±inf entries"):
            fn([np.array([1.0, bad]), np.array([2.0])], 1.0)


def test_non_numeric_gradient_raises() -> None:
    with pytest.raises(GradmathError, match="real numbers"):
        clip_by_value(["a", "b"], 1.0)
    with pytest.raises(GradmathError, match="same number of components"):
        direction_change([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- SymPy derivations


def test_value_clip_derivation_is_exact() -> None:
    d = value_clip_derivation()
    expected = sympy.acos(sympy.Integer(10081) / sympy.sqrt(181 * 1000081))
    assert sympy.simplify(d.result - expected) == 0
    assert float(d.result) == pytest.approx(direction_change(CLASSIC, [0.9, 1.0]), rel=1e-14)
    assert d.steps and "clip" in d.title.lower()
    assert d.latex()


def test_norm_clip_derivation_keeps_direction() -> None:
    d = norm_clip_derivation()
    assert d.result == 0
    g_clipped = d.steps[2].expr.rhs
    norm = sympy.sqrt(sum(x**2 for x in g_clipped))
    assert sympy.simplify(norm - 1) == 0
    # under the threshold nothing changes and the angle is still 0
    small = norm_clip_derivation((sympy.Rational(3, 5), sympy.Rational(4, 5)), max_norm=2)
    assert small.result == 0
    assert list(small.steps[2].expr.rhs) == [sympy.Rational(3, 5), sympy.Rational(4, 5)]


def test_derivation_bad_input() -> None:
    with pytest.raises(GradmathError, match="clip_value"):
        value_clip_derivation(clip_value=0)
    with pytest.raises(GradmathError, match="`g`"):
        value_clip_derivation(g="0.9")  # type: ignore[arg-type]
