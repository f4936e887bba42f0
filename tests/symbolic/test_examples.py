"""The worked examples: exact numbers, and float rounding checked in NumPy arithmetic."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import gradmath
from gradmath.symbolic import (
    local_factor_example,
    path_product_example,
    update_rounding_example,
    vanishing_bound_example,
)
from gradmath.symbolic.examples import rounds_away_above


def test_local_factor() -> None:
    d = local_factor_example()
    assert d.result == 125 and d.result.is_Integer
    assert local_factor_example("0.5").result == sp.Rational(1, 8)
    assert r"\frac{1}{4} \cdot 500 = 125" in d.latex()


def test_path_product() -> None:
    d = path_product_example()
    assert d.result == 7507500000 == 300 * 200 * 125 * 1001
    assert path_product_example((0.25, 0.5)).result == sp.Rational(1, 8)


def test_update_rounding_exact_and_checked_in_numpy() -> None:
    d = update_rounding_example()
    assert d.result == sp.Rational(2, 10**13)
    f32, f64 = d.data["float32"], d.data["float64"]
    assert f32["ulp_at_w"] == Fraction(1, 2**23) and f64["ulp_at_w"] == Fraction(1, 2**52)
    assert f32["lost_at_w"] and not f64["lost_at_w"]  # 2e-13 survives at w = 1 in float64
    assert f32["threshold"] == Fraction(1, 2**18) and f64["threshold"] == 2**11
    # Independent check in each format, on both sides of the threshold.
    for dt, thr in ((np.float32, 2.0**-18), (np.float64, 2.0**11)):
        u = dt(0.001) * dt(2e-10)
        for w in (thr, thr / 1.5, 1e-9):
            assert dt(w) - u != dt(w)
        for w in (np.nextafter(dt(thr), dt(np.inf)), thr * 1.5, thr * 1e6):
            assert dt(w) - u == dt(w)
    assert np.float32(1.0) - np.float32(2e-13) == np.float32(1.0)
    assert np.float64(1.0) - np.float64(2e-13) != 1.0


@pytest.mark.parametrize("update", [3e-5, 1e-30, 7.0])
def test_threshold_law(update: float) -> None:
    for dt in (np.float32, np.float64):
        thr, _ = rounds_away_above(update, dt)
        u = dt(update)
        above = np.nextafter(dt(thr), dt(np.inf))
        assert dt(thr) - u != dt(thr) and above - u == above


def test_vanishing_bound() -> None:
    d = vanishing_bound_example()
    assert tuple(d.result) == (sp.Rational(1, 4**10), sp.Rational(1, 4**20), sp.Rational(1, 4**50))
    assert d.data["floats"][50] == 0.25**50
    assert d.data["values"][10] == sp.Rational(1, 1048576)


def test_bad_input() -> None:
    with pytest.raises(gradmath.GradmathError, match="depths"):
        vanishing_bound_example((10, 0))
    with pytest.raises(gradmath.GradmathError, match="weight"):
        local_factor_example(float("inf"))
    with pytest.raises(gradmath.GradmathError, match="factors"):
        path_product_example(())
    with pytest.raises(gradmath.GradmathError, match="learning_rate"):
        update_rounding_example(learning_rate=0)
