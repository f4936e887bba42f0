"""diagnose(): verdicts on synthetic per-layer norms; training records in tests/numeric."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradmath
from gradmath import GradmathError
from gradmath.diagnose import Diagnosis, diagnose, log_slope


def _geometric(rate: float, depth: int) -> np.ndarray:
    # ‖g_l‖ = rate^{L−l}: multiplied by ``rate`` per layer going backwards, ‖g_L‖ = 1.
    return rate ** np.arange(depth - 1, -1, -1, dtype=np.float64)


@given(st.floats(0.1, 10.0), st.integers(2, 200))
def test_log_slope_of_a_geometric_sequence_is_log_rate(rate: float, depth: int) -> None:
    assert log_slope(_geometric(rate, depth)) == pytest.approx(math.log(rate), abs=1e-9)


@pytest.mark.parametrize(
    ("rate", "depth", "verdict"),
    [
        (0.25, 10, "vanishing"),  # sigmoid's sup φ' = 1/4 per layer
        (0.5, 5, "vanishing"),  # 1/16 across the net
        (2.0, 10, "exploding"),
        (1.5, 8, "exploding"),  # 17x across the net
        (1.0, 50, "healthy"),
        (1.02, 50, "healthy"),  # 2.6x across 50 layers: inside the factor 10
        (0.98, 50, "healthy"),
    ],
)
def test_verdict_on_geometric_norms(rate: float, depth: int, verdict: str) -> None:
    d = diagnose(_geometric(rate, depth))
    assert d.verdict == verdict
    assert d.log_slope == pytest.approx(math.log(rate), abs=1e-12)
    assert d.log_ratio == pytest.approx((depth - 1) * math.log(rate), abs=1e-9)
    assert d.depth == depth and not d.nonfinite


def test_threshold_is_a_parameter() -> None:
    norms = _geometric(0.8, 6)  # ratio 0.8^5 = 0.33 across the net
    assert diagnose(norms).verdict == "healthy"
    assert diagnose(norms, factor=2.0).verdict == "vanishing"


def test_steps_by_layers_uses_the_median_profile() -> None:
    rng = np.random.default_rng(0)
    base = _geometric(0.3, 6)
    noisy = base[None, :] * np.exp(rng.normal(0, 0.1, size=(40, 6)))
    noisy[7, 0] *= 100.0  # one spiky entry does not move the median profile
    d = diagnose(noisy)
    assert d.verdict == "vanishing"
    assert d.log_slope == pytest.approx(math.log(0.3), abs=0.05)
    noisy[7] *= 1e6  # but a 1e6 spike of the whole gradient is an explosion
    assert diagnose(noisy).verdict == "exploding"


def test_growth_over_steps_is_exploding() -> None:
    flat = np.ones(4)
    run = np.array([flat * 10.0**k for k in range(6)])  # 1e5 growth, flat in depth
    d = diagnose(run)
    assert d.verdict == "exploding"
    assert d.log_growth == pytest.approx(5 * math.log(10))
    assert "grew" in str(d)
    assert diagnose(run, max_growth=1e6).verdict == "healthy"


@pytest.mark.parametrize("big", [1e100, 1e200, 1e300])
def test_growth_to_huge_finite_norms_is_exploding(big: float) -> None:
    # Squaring norms above ~1e154 overflows; the total norm must not, or the row is lost.
    d = diagnose([[1.0, 1.0], [big, big]])
    assert d.verdict == "exploding" and not d.nonfinite
    assert d.log_growth == pytest.approx(math.log(big), rel=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_norms_are_evidence_of_explosion(bad: float) -> None:
    run = np.ones((5, 3))
    run[3, 1] = bad
    d = diagnose(run)
    assert d.verdict == "exploding" and d.nonfinite
    assert d.first_nonfinite == (3, 2)
    assert (d.n_nan, d.n_inf) == ((1, 0) if np.isnan(bad) else (0, 1))
    assert "in step 3, layer 2" in str(d)
    assert np.all(np.isfinite(d.layer_norms))  # fitted on the finite steps


def test_all_nonfinite_has_no_slope() -> None:
    d = diagnose([np.nan, np.inf, 1.0])
    assert d.verdict == "exploding" and d.log_slope is None and d.log_ratio is None


def test_zero_gradient_layer_is_vanishing() -> None:
    d = diagnose([0.0, 1.0, 1.0, 1.0])
    assert d.verdict == "vanishing" and d.zero_layers == (1,)
    assert "zero gradient in layer(s) 1" in str(d)


def test_stalled_layers_are_reported() -> None:
    d = diagnose(np.ones(4), weight_change=[1e-5, 2e-3, 0.05, 0.2])
    assert d.stalled_layers == (1,)
    assert d.verdict == "healthy"  # evidence only
    assert "stalled layer(s) 1" in str(d)


def test_str_is_a_readable_paragraph() -> None:
    text = str(diagnose(_geometric(0.25, 10)))
    assert text.startswith("Vanishing gradients (10 layers): ")
    assert "backward log-slope -1.386 per layer" in text
    assert "1e-5.4" in text  # 0.25^9 = 3.8e-6
    assert text.endswith(".")


def test_exported_from_package() -> None:
    assert gradmath.diagnose is diagnose
    assert isinstance(gradmath.diagnose([1.0, 1.0]), Diagnosis)


@pytest.mark.parametrize(
    ("arg", "kwargs", "match"),
    [
        ([1.0], {}, "at least two layers"),
        (np.ones((2, 2, 2)), {}, "shape"),
        ([1.0, -1.0], {}, ">= 0"),
        (["a", "b"], {}, "record_or_norms"),
        ([1.0, 1.0], {"factor": 1.0}, "factor"),
        ([1.0, 1.0], {"factor": -2}, "factor"),
        ([1.0, 1.0], {"max_growth": 0.5}, "max_growth"),
        ([1.0, 1.0], {"stall_fraction": 0}, "stall_fraction"),
        ([1.0, 1.0], {"weight_change": [1.0]}, "weight_change"),
        ([1.0, 1.0], {"weight_change": [1.0, np.nan]}, "weight_change"),
    ],
)
def test_bad_input(arg: object, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(GradmathError, match=match):
        diagnose(arg, **kwargs)  # type: ignore[arg-type]


def test_log_slope_bad_input() -> None:
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan]):
        with pytest.raises(GradmathError, match="norms"):
            log_slope(bad)


# --------------------------------------------------------------------------- training records


def _train_deep(activation: str, init: object, **kw: object) -> object:
    from gradmath import MLP
    from gradmath.numeric.train import make_task, train

    net = MLP((4, *(32,) * 8, 3), activation=activation, init=init)  # type: ignore[arg-type]
    return train(net, data=make_task(128, 4, 3, seed=0), epochs=60, seed=0, **kw)  # type: ignore[arg-type]


def test_deep_sigmoid_run_is_vanishing_with_stalled_lower_layers() -> None:
    d = diagnose(_train_deep("sigmoid", "glorot_uniform", lr=1.0))
    assert d.verdict == "vanishing"
    assert d.log_ratio is not None and d.log_ratio < -3 * math.log(10)  # measured ≈ −4.2 decades
    assert 1 in d.stalled_layers and d.depth not in d.stalled_layers
    assert "stalled layer(s) 1" in str(d)


def test_relu_he_run_is_healthy() -> None:
    d = diagnose(_train_deep("relu", "he_normal", lr=0.1))
    assert d.verdict == "healthy" and not d.stalled_layers and not d.nonfinite


def test_exploding_run_is_exploding_and_says_where() -> None:
    from gradmath import initializer

    r = _train_deep("relu", initializer("normal", sigma_w2=4.0), lr=0.1)
    d = diagnose(r)
    assert d.verdict == "exploding"
    # The loss runs 5.7 → 871 → 2.7e5 → 1.4e23 (then 8.7e110, NaN): training stops at the
    # blow-up past DIVERGED_LOSS_RATIO times the initial loss, and the record says so.
    assert r.divergence is not None and str(r.divergence) in str(d)
    assert r.divergence.quantity == "loss" and r.divergence.value > 1e6 * r.loss[0]
    clipped = diagnose(
        _train_deep("relu", initializer("normal", sigma_w2=4.0), lr=0.1, clip={"norm": 1.0})
    )
    assert not clipped.nonfinite
