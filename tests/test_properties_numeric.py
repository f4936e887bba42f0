"""Property (issue 11): every public numeric function, given any float (finite or not), returns
a finite answer or raises GradmathError; never NaN, inf, a warning (warnings are errors in the
test settings) or another exception type.

Elementwise activations are the exception that proves the rule: NaN in gives NaN out, as in
NumPy and PyTorch, so they are fed finite values and must return finite values (they are
written to be overflow-safe). Each function gets few examples (the catalogue of extreme
values comes first), so the whole module runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gradmath
from gradmath import GradmathError, meanfield
from gradmath.clipping import clip_by_global_norm, clip_by_norm, clip_by_value
from gradmath.diagnose import diagnose, log_slope
from gradmath.meanfield import spectra as ms
from gradmath.numeric.train import make_task
from gradmath.validate import bonferroni_z, t_threshold

#: Extreme values every strategy starts from.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 5e-324, 1e-300, 1e-13, 1e13, 1e300, 1.7e308, -1e308]
NONFINITE = [math.inf, -math.inf, math.nan]
ANY = st.one_of(st.sampled_from(SPECIAL + NONFINITE), st.floats(allow_nan=True))
FINITE = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=False, allow_infinity=False))
FEW = settings(max_examples=25)


def _finite(x: Any) -> bool:
    if isinstance(x, (tuple, list)):
        return all(_finite(v) for v in x)
    if hasattr(x, "_asdict"):
        return all(_finite(v) for v in x._asdict().values())
    a = np.asarray(x, dtype=np.float64)
    return bool(np.all(np.isfinite(a)))


def _finite_or_refused(call: Callable[[], Any]) -> Any:
    try:
        out = call()
    except GradmathError:
        return None
    assert _finite(out), out
    return out


# --------------------------------------------------------------------------- scalar functions

SCALAR_2: dict[str, Callable[[float, float], Any]] = {
    "variance": lambda a, b: gradmath.initializer("he_normal").variance(a, b),
    "calculate_gain": lambda a, b: gradmath.calculate_gain("leaky_relu", a),
    "bonferroni_z": lambda a, b: bonferroni_z(a, b),  # type: ignore[arg-type]
    "t_threshold": lambda a, b: t_threshold(a, b),
    "elu": lambda a, b: gradmath.activation("elu", alpha=a)(np.array([-1.0, 1.0])),
    "selu": lambda a, b: gradmath.activation("selu", scale=a, alpha=b)(np.array([1.0])),
    "make_task": lambda a, b: make_task(8, 2, 2, seed=0, noise=a),
    "clip_by_value": lambda a, b: clip_by_value(np.array([a, 1.0]), b),
    "clip_by_norm": lambda a, b: clip_by_norm(np.array([a, 1.0]), b),
    "clip_by_global_norm": lambda a, b: clip_by_global_norm([np.array([a]), np.ones(2)], b),
    "diagnose": lambda a, b: diagnose([a, b, 1.0]).log_slope or 0.0,
    "log_slope": lambda a, b: log_slope([a, b, 1.0]),
}


@pytest.mark.parametrize("name", list(SCALAR_2))
def test_scalar_functions(name: str) -> None:
    f = SCALAR_2[name]

    @FEW
    @given(ANY, ANY)
    @example(math.inf, 1.0)
    @example(1.0, math.nan)
    @example(1e308, 1e308)
    def check(a: float, b: float) -> None:
        _finite_or_refused(lambda: f(a, b))

    check()


MEANFIELD: dict[str, Callable[[float, float, float], Any]] = {
    "length_map": lambda q, w, b: meanfield.length_map("tanh", q, w, b),
    "length_map_relu": lambda q, w, b: meanfield.length_map("relu", q, w, b),
    "mean_phi2": lambda q, w, b: meanfield.mean_phi2("gelu", q),
    "mean_dphi2": lambda q, w, b: meanfield.mean_dphi2("elu", q),
    "log_mean_phi2": lambda q, w, b: meanfield.log_mean_phi2("softplus", q),
    "fixed_point": lambda q, w, b: meanfield.fixed_point("tanh", w, b),
    "fixed_point_elu": lambda q, w, b: meanfield.fixed_point("elu", w, b),
    "fixed_point_relu": lambda q, w, b: meanfield.fixed_point("relu", w, b),
    "chi1": lambda q, w, b: meanfield.chi1("erf", w, b),
    "correlation_map": lambda q, w, b: meanfield.correlation_map("relu", 0.5, w, b, q=q),
    "correlation_map_erf": lambda q, w, b: meanfield.correlation_map("erf", 0.3, w, b, q=q),
    "critical_sigma_w2": lambda q, w, b: meanfield.critical_sigma_w2("tanh", b),
    "gradient_growth": lambda q, w, b: meanfield.gradient_growth("relu", int(min(abs(q), 1e30))),
}


@pytest.mark.parametrize("name", list(MEANFIELD))
def test_meanfield_functions(name: str) -> None:
    f = MEANFIELD[name]

    @FEW
    @given(ANY, ANY, ANY)
    @example(1e300, 1e10, 0.0)  # issue 11: length_map overflowed to inf
    @example(1e300, 2.0, 0.0)  # issue 11: the ReLU kernel at q = 1e300 was NaN
    @example(1.0, 2.0, 0.0)  # issue 11: ELU/softplus at σ_w² = 2 have no fixed point
    @example(1.0, 1e308, 1e308)  # issue 11: q* overflows float64
    @example(10.0**15, 1.0, 0.0)  # issue 11: gradient_growth lost precision at huge B
    def check(q: float, w: float, b: float) -> None:
        if name == "gradient_growth" and not math.isfinite(q):
            return  # the argument is an int built from q
        if name == "critical_sigma_w2":
            # Documented: ∞ where no σ_w² reaches χ₁ = 1 with q* ≤ 1e13 (phase diagrams plot
            # it as "no critical point"); NaN, a warning or another error is still a failure.
            out = _finite_or_refused(lambda: np.nan_to_num(f(q, w, b), posinf=0.0))
            assert out is None or not np.isnan(f(q, w, b))
            return
        _finite_or_refused(lambda: f(q, w, b))

    check()


@pytest.mark.parametrize("name", gradmath.activations())
def test_activations_are_finite_on_finite_input(name: str) -> None:
    act = gradmath.activation(name)

    @settings(max_examples=40)
    @given(st.lists(FINITE, min_size=1, max_size=8))
    def check(z: list[float]) -> None:
        x = np.array(z)
        assert np.all(np.isfinite(act(x))) and np.all(np.isfinite(act.deriv(x)))

    check()


# --------------------------------------------------------------------------- newer public API


def _scales(d: Any) -> tuple[float, ...]:
    """DepthScales with ξ_q, ξ_c = ∞ (a diverging depth scale, documented) read as 0."""
    return tuple(0.0 if v == math.inf else v for v in dataclasses.astuple(d))


MEANFIELD_MORE: dict[str, Callable[[float, float, float], Any]] = {
    "correlation_fixed_point": lambda q, w, b: meanfield.correlation_fixed_point("tanh", w, b),
    "depth_scales": lambda q, w, b: _scales(meanfield.depth_scales("erf", w, b)),
    "kernel": lambda q, w, b: meanfield.kernel("tanh", q, w, 0.5),
    "dkernel_relu": lambda q, w, b: meanfield.dkernel("relu", q, w, b),
    "log_mean_dphi2": lambda q, w, b: meanfield.log_mean_dphi2("gelu", q),
    "batch_moments": lambda q, w, b: meanfield.batch_moments("tanh", int(min(abs(q), 1e30))),
    "jacobian_moments": lambda q, w, b: ms.jacobian("tanh", w, b, depth=3).moments(3),
    "jacobian_at_q": lambda q, w, b: ms.jacobian("relu", w, 0.0, depth=2, q=q).moments(2),
    "critical_point": lambda q, w, b: ms.critical_point("erf", q),
    "critical_jacobian": lambda q, w, b: ms.critical_jacobian("tanh", q, depth=2).moments(2),
}


@pytest.mark.parametrize("name", list(MEANFIELD_MORE))
def test_more_meanfield_functions(name: str) -> None:
    f = MEANFIELD_MORE[name]

    @FEW
    @given(ANY, ANY, ANY)
    @example(1e300, 1e10, 0.0)
    @example(1.0, 1e308, 1e308)
    @example(5e-324, 2.0, 0.0)
    def check(q: float, w: float, b: float) -> None:
        if name == "batch_moments" and not math.isfinite(q):
            return  # the argument is an int built from q
        _finite_or_refused(lambda: f(q, w, b))

    check()


def _profile_ok(p: Any) -> None:
    """A profile's logs: finite, or −inf (an exact zero); NaN only where a site has no weight."""
    for name in ("log_q", "log_grad_q", "log_wgrad_q"):
        arr = getattr(p, name)
        has = ~np.isnan(arr) if name == "log_wgrad_q" else np.ones(arr.shape, dtype=bool)
        assert not np.any(np.isnan(arr[has])) and not np.any(arr == np.inf), (name, arr)


@FEW
@given(ANY, ANY, ANY, ANY)
@example(1.0, 0.0, 0.5, 1.0)  # ReZero: exact-zero branch gradients, −inf in the logs
@example(1e300, 1e300, 1e10, 1e-300)
def test_predict_on_composed_networks(
    input_q: float, sigma_b2: float, alpha: float, gain: float
) -> None:
    """Any parameters of a composed network give a profile (finite or −inf logs) or a
    GradmathError, at any depth of the constructor calls."""
    from gradmath.network import Dense, LayerNorm, Network, Residual, Serial

    def build() -> Any:
        block = Residual(Serial(LayerNorm(), Dense(8, gain=gain), "tanh", Dense(8)), alpha=alpha)
        net = Network(8, Dense(8, sigma_b2=sigma_b2), "relu", block, Dense(4))
        return meanfield.predict(net, input_q, 1.0)

    try:
        p = build()
    except GradmathError:
        return
    _profile_ok(p)


@settings(max_examples=60)
@given(st.text(max_size=40))
@example("Network(4, Dense(2**10**10))")
@example("Network(4, repeat(Dense(4), 10**100))")
@example("Network(4, Dense(4, sigmab2=1))")
@example("Network(4, Dense(4), (-8) ** 0.5)")
def test_network_specs_parse_or_are_refused(text: str) -> None:
    """Any text is a network or a GradmathError, quickly (no exponentiation or repetition
    without bound)."""
    from gradmath.spec import parse_network

    try:
        parse_network(text)
    except GradmathError:
        pass


@FEW
@given(ANY, ANY)
def test_conditions_and_seeds(a: float, b: float) -> None:
    from gradmath import sweep
    from gradmath.conditions import Conditions

    _finite_or_refused(lambda: (Conditions(input_q=a, output_grad_q=b).input_q, 0.0))
    _finite_or_refused(lambda: sweep.seeds(a, 3))  # type: ignore[arg-type]
    _finite_or_refused(lambda: bonferroni_z(3, a))
