"""Exact derivations of what gradient clipping does to a direction (Pascanu et al. 2013).

Clipping by value clips each component to [−c, c] and can turn the gradient: the classic
[0.9, 100] becomes [0.9, 1] at c = 1, a turn of arccos(10081/√181014661) ≈ 41.47°; clipping
by norm (Pascanu, Mikolov & Bengio 2013, Algorithm 1) rescales and keeps the direction. The
NumPy rules themselves are :mod:`gradmath.clipping`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gradmath.errors import GradmathError
from gradmath.symbolic.derivation import Derivation, Step
from gradmath.symbolic.examples import exact_number

__all__ = ["norm_clip_derivation", "value_clip_derivation"]


# --------------------------------------------------------------------------- SymPy derivations


def _exact_vector(g: Sequence[Any]) -> Any:
    import sympy

    if isinstance(g, (str, bytes)) or not isinstance(g, Sequence) or len(g) < 1:
        raise GradmathError(f"`g` (={g!r}) must be a sequence of numbers, e.g. (0.9, 100).")
    # Floats by their shortest repr, so 0.9 is 9/10 (the number the user typed), not the
    # binary double 0.90000000000000002220…
    try:
        comps = [exact_number("g", x) for x in g]
    except GradmathError:
        raise GradmathError(f"`g` (={g!r}) must hold finite real numbers.") from None
    if all(x == 0 for x in comps):
        raise GradmathError(
            f"`g` (={g!r}) is the zero vector: it has no direction, so there is no angle "
            "between it and its clipped version."
        )
    return sympy.Matrix(comps)


def _exact_positive(name: str, c: Any) -> Any:
    return exact_number(name, c, positive=True)


def _angle_steps(g: Any, gc: Any, Step: Any) -> tuple[list[Any], Any]:
    import sympy

    theta = sympy.Symbol("theta", real=True)
    cos = sympy.radsimp(sympy.nsimplify(g.dot(gc)) / (g.norm() * gc.norm()))
    angle = sympy.acos(cos)
    steps = [
        Step(
            r"\cos\theta = \frac{\langle g, g'\rangle}{\lVert g\rVert\,\lVert g'\rVert}",
            sympy.Eq(sympy.cos(theta), cos),
            "the angle between the update directions before and after clipping",
        ),
        Step(
            r"\theta = \arccos(\cdot)",
            sympy.Eq(theta, angle),
            f"≈ {math.degrees(float(angle)):.4f}°",
        ),
    ]
    return steps, angle


def value_clip_derivation(g: Sequence[Any] = (0.9, 100.0), clip_value: Any = 1) -> Derivation:
    """Clip ``g`` by value at c and derive, exactly, the angle θ it turns the gradient by.

    g'_i = min(max(g_i, −c), c) (Keras ``clipvalue``); cos θ = ⟨g, g'⟩/(‖g‖‖g'‖). Floats are
    read as the decimals typed (0.9 → 9/10). The result is θ as an exact SymPy expression;
    for the classic example (Pascanu et al. 2013 discuss clipping; the [0.9, 100] example is
    the textbook one) θ = arccos(10081/√(181·1000081)) ≈ 41.47°.

    >>> d = value_clip_derivation()
    >>> round(float(d.result) * 180 / math.pi, 4)
    41.4716
    """
    import sympy

    gv = _exact_vector(g)
    c = _exact_positive("clip_value", clip_value)
    gc = gv.applyfunc(lambda x: sympy.Min(sympy.Max(x, -c), c))
    angle_steps, theta = _angle_steps(gv, gc, Step)
    steps = (
        Step("gradient", sympy.Eq(sympy.Symbol("g"), gv.T, evaluate=False), "the input"),
        Step(
            r"g'_i = \min(\max(g_i, -c), c)",
            sympy.Eq(sympy.Symbol("g'"), gc.T, evaluate=False),
            f"clip every component to [−{c}, {c}] (Keras clipvalue)",
        ),
        *angle_steps,
    )
    return Derivation(
        title=f"Clipping by value at c = {c} turns the gradient", steps=steps, result=theta
    )


def norm_clip_derivation(g: Sequence[Any] = (0.9, 100.0), max_norm: Any = 1) -> Derivation:
    """Clip ``g`` by norm at c (Pascanu et al. 2013, Alg. 1) and show the direction is kept.

    g' = g · c / max(‖g‖, c): a positive multiple of g, so cos θ = 1 and θ = 0; the steps
    carry ‖g‖, the factor and g' exactly. The result is θ (= 0).

    >>> norm_clip_derivation().result
    0
    """
    import sympy

    gv = _exact_vector(g)
    c = _exact_positive("max_norm", max_norm)
    norm = sympy.radsimp(gv.norm())
    factor = sympy.radsimp(c / sympy.Max(norm, c))
    gc = (gv * factor).applyfunc(sympy.radsimp)
    angle_steps, theta = _angle_steps(gv, gc, Step)
    steps = (
        Step("gradient", sympy.Eq(sympy.Symbol("g"), gv.T, evaluate=False), "the input"),
        Step(
            r"\lVert g\rVert",
            sympy.Eq(sympy.Symbol(r"\lVert g\rVert"), norm),
            "Euclidean norm",
        ),
        Step(
            r"g' = g \cdot \frac{c}{\max(\lVert g\rVert, c)}",
            sympy.Eq(sympy.Symbol("g'"), gc.T, evaluate=False),
            "Pascanu et al. (2013), Algorithm 1: rescale only when ‖g‖ exceeds the threshold c",
        ),
        *angle_steps,
    )
    return Derivation(
        title=f"Clipping by norm at c = {c} keeps the direction",
        steps=steps,
        result=sympy.simplify(theta),
    )
