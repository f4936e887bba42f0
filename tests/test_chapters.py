"""The lecture chapters' content: every exercise answer against an independent reference, and a
pin on each corrected statement of issue 12 (the number the chapter now prints, computed
independently here: closed forms, mpmath quadrature, NumPy float arithmetic)."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import mpmath
import numpy as np
import pytest

from gradmath.render import latex
from gradmath.render.notes import load_script

ROOT = Path(__file__).resolve().parent.parent
#: The chapters this file covers (01–09; later chapters test their own content).
CHAPTERS = sorted(p for p in (ROOT / "derivations").glob("0[1-9]_*.py"))


@cache
def chapter(stem: str) -> ModuleType:
    (path,) = [p for p in CHAPTERS if p.stem.startswith(stem)]
    return load_script(path)


@cache
def text(stem: str) -> str:
    return str(chapter(stem).chapter(quick=True))


# --------------------------------------------------------------------------- references

mpmath.mp.dps = 20


def gauss(f: Any) -> Any:
    """∫ Dz f(z), the standard normal expectation, by mpmath quadrature."""
    return mpmath.quad(lambda z: f(z) * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])


def mp_sigmoid(z: Any) -> Any:
    return 1 / (1 + mpmath.exp(-z))


def mp_fixed_point(phi: Any, sw: float, sb: float, q: float = 1.0, n: int = 8) -> Any:
    """q* of the length map q ↦ σ_w² E[φ(√q z)²] + σ_b²: a few iterations from ``q``, then
    the secant method on map(q) − q, all in mpmath."""

    def length(q: Any) -> Any:
        return sw * gauss(lambda z: phi(mpmath.sqrt(q) * z) ** 2) + sb

    q = mpmath.mpf(q)
    for _ in range(n):
        q = length(q)
    return mpmath.findroot(lambda x: length(x) - x, (q, q * 1.01), tol=1e-30)


def mp_chi1(dphi: Any, sw: float, q: Any) -> Any:
    return sw * gauss(lambda z: dphi(mpmath.sqrt(q) * z) ** 2)


def _float32_threshold(update: float) -> float:
    # The largest power of two at which w − u still changes w, found by float32 arithmetic.
    u = np.float32(update)
    w = np.float32(2.0**-30)
    while np.float32(w * 2) - u != np.float32(w * 2):
        w = np.float32(w * 2)
    return float(w)


def _loss_scale(g: float) -> int:
    s = 2 ** math.ceil(math.log2(2.0**-14 / g))
    assert np.float16(s * g) >= np.finfo(np.float16).tiny > np.float16(s / 2 * g)
    return s


def _tanh_q_star() -> Any:
    return mp_fixed_point(mpmath.tanh, 2.0, 0.1)


def _trainable_depth() -> float:
    q = mp_fixed_point(mpmath.tanh, 1.5, 0.05)
    chi = mp_chi1(lambda x: mpmath.sech(x) ** 2, 1.5, q)
    return float(6 * (-1 / mpmath.log(chi)))


REFERENCES: dict[str, Any] = {
    "sigmoid-depth-1e-10": lambda: math.ceil(10 / math.log10(4)),
    "tanh-factor-two-overflow": lambda: math.floor(math.log2(float(np.finfo(np.float32).max))) + 1,
    "sigmoid-saturated-derivative": lambda: float(mp_sigmoid(5) * (1 - mp_sigmoid(5))),
    "float32-lost-update": lambda: _float32_threshold(1e-9),
    "float16-loss-scale": lambda: _loss_scale(1e-9),
    "relu-chain-gradient": lambda: 3**11,
    "relu-chain-safe-lr": lambda: Fraction(2, 1023 * 2**9),
    "sigmoid-amplifies-until": lambda: math.log((s := (1 + math.sqrt(1 - 4 / 500)) / 2) / (1 - s)),
    "he-uniform-limit": lambda: math.sqrt(6 / 512),
    "glorot-forward-factor": lambda: 512 / 1280,
    "torch-default-fixed-point": lambda: 2 / (5 * 100),
    "tanh-fixed-point": lambda: float(_tanh_q_star()),
    "relu-ordered-depth": lambda: math.ceil(math.log(1e-6) / math.log(0.75)),
    "trainable-depth": _trainable_depth,
    "leaky-critical-variance": lambda: 2 / (1 + 0.3**2),
    "residual-gradient-growth": lambda: 1.01**100,
    "clip-value-angle": lambda: math.degrees(
        math.acos((3 + 0.04) / (math.hypot(3, 0.2) * math.hypot(1, 0.2)))
    ),
    "bn-growth-20-layers": lambda: (math.pi / (math.pi - 1)) ** 20,
    "pre-ln-growth": lambda: 3.0,
    "rnn-steps-to-vanish": lambda: math.ceil(3 * math.log(10) / math.log(10 / 9)),
    "rnn-sigmoid-threshold": lambda: 4,
    "lstm-forget-gate": lambda: 0.99**100,
    "chance-loss-ten-classes": lambda: math.log(10),
    "weight-decay-chi": lambda: (1 - 5e-6) ** 4000,
}


@cache
def all_exercises() -> tuple[tuple[str, Any], ...]:
    return tuple((p.stem, e) for p in CHAPTERS for e in chapter(p.stem[:2]).exercises(quick=True))


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_objectives_summary_exercises(path: Path) -> None:
    m = chapter(path.stem[:2])
    assert isinstance(m.OBJECTIVES, tuple) and len(m.OBJECTIVES) >= 2
    assert all(isinstance(o, str) and o.strip() for o in m.OBJECTIVES)
    points = m.summary(quick=True)
    assert isinstance(points, tuple) and len(points) >= 2 and all(p.strip() for p in points)
    assert len(m.exercises(quick=True)) >= 2


def test_exercise_keys_are_unique_and_answers_referenced() -> None:
    keys = [e.key for _, e in all_exercises()]
    assert len(keys) == len(set(keys)), keys
    numeric = {e.key for _, e in all_exercises() if e.answer is not None}
    assert numeric == set(REFERENCES), numeric ^ set(REFERENCES)


@pytest.mark.parametrize("key", sorted(REFERENCES))
def test_exercise_answer_matches_independent_reference(key: str) -> None:
    (ex,) = [e for _, e in all_exercises() if e.key == key]
    ref = REFERENCES[key]()
    if isinstance(ref, (int, Fraction)) and not isinstance(ref, bool):
        assert Fraction(str(ex.answer)) == ref  # exact: integers and rationals
    else:
        assert float(ex.answer) == pytest.approx(float(ref), rel=1e-9)


# --------------------------------------------------------------------------- corrected statements


def test_relu_lecun_collapse_is_reported_not_hidden() -> None:
    # Table 8 used a ratio that cannot see a uniform collapse: ReLU + LeCun shows 1 like He
    # while q^50/q^1 and q̃^1/q̃^50 are both 2^-49.
    prof = chapter("06").remedy_profiles()
    lecun, he = prof[("relu", "lecun_normal")], prof[("relu", "he_normal")]
    assert lecun["log_q"] == pytest.approx(-49 * math.log(2), rel=1e-12)
    assert lecun["log_grad"] == pytest.approx(-49 * math.log(2), rel=1e-12)
    assert lecun["log_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert he["log_grad"] == pytest.approx(0.0, abs=1e-12)
    assert latex.fmt_log(-49 * math.log(2)) in text("06")
    assert r"\tilde q^1/\tilde q^{50}" in text("06")


def test_pytorch_default_levels_off_at_two_fifths_over_n() -> None:
    m = chapter("04")
    n = m.TORCH_WIDTH
    assert m.torch_default_fixed_point() == pytest.approx(2 / (5 * n), rel=1e-12)
    q = m.torch_default_profile()
    # q^1 = 1/3 + 1/(3n); q^{l+1} = q^l/6 + 1/(3n): the exact recursion, independently.
    ref = [1 / 3 + 1 / (3 * n)]
    for _ in range(len(q) - 1):
        ref.append(ref[-1] / 6 + 1 / (3 * n))
    assert q == pytest.approx(ref, rel=1e-12)
    assert "has shrunk by" not in text("04")
    assert latex.fmt_num(2 / (5 * n), 4) in text("04")
    assert latex.fmt_num((1 / 6) ** m.TORCH_DEPTH, 3) in text("04")


def test_glorot_for_the_logistic_is_marked_and_quantified() -> None:
    m = chapter("04")
    crit = m.logistic_critical_sigma_w2()
    q = mp_fixed_point(mp_sigmoid, crit, 0.0)
    chi = mp_chi1(lambda x: mp_sigmoid(x) * (1 - mp_sigmoid(x)), crit, q)
    assert float(chi) == pytest.approx(1.0, abs=1e-6)
    t = text("04")
    assert "logistic by convention" in t and "sixteen times" in t
    assert latex.fmt_num(crit, 4) in t


def test_selu_gain_reconciled() -> None:
    cases = chapter("04").selu_gain_cases()
    lam, alpha = 1.0507009873554804934, 1.6732632423543772848

    def selu(x: Any) -> Any:
        return lam * x if x > 0 else lam * alpha * (mpmath.exp(x) - 1)

    def dselu(x: Any) -> Any:
        return lam if x > 0 else lam * alpha * mpmath.exp(x)

    for key, sw in (("linear", 1.0), ("selu", 9 / 16)):
        q = mp_fixed_point(selu, sw, 0.0)
        assert cases[key][0] == pytest.approx(float(q), rel=1e-6)
        assert cases[key][1] == pytest.approx(float(mp_chi1(dselu, sw, q)), rel=1e-6)
    assert "nonlinearity='linear'" in text("04")


def test_overshoot_example_is_a_relu_chain_with_labelled_factors() -> None:
    t = text("03")
    assert "523776" in t and "dead" in t and "larger still" not in t
    assert r"\partial O/\partial w" in t  # the path product's factors named for what they are


def test_sigmoid_chapter_does_not_overclaim() -> None:
    t = text("02")
    assert "whole story" not in t
    assert "Saturation" in t and "not centred" in t


def test_gradient_ratio_decomposition_multiplies_out() -> None:
    parts = chapter("05").ratio_parts()
    product = parts["chi_part"] * parts["transient"] * parts["input"]
    assert product == pytest.approx(parts["ratio"], rel=1e-12)
    # The χ₁ factor alone is the text's old claim; the table's value differs from it.
    q = mp_fixed_point(mpmath.tanh, 1.5, 0.05)
    chi = float(mp_chi1(lambda x: mpmath.sech(x) ** 2, 1.5, q))
    assert parts["chi_part"] == pytest.approx(chi**24.5, rel=1e-9)
    assert abs(parts["ratio"] - parts["chi_part"]) > 0.05
    assert latex.fmt_num(parts["ratio"], 3) in text("05")


def test_relu_has_no_chaotic_phase() -> None:
    eps = 1e-8
    slope = chapter("09").relu_correlation_slope(4.0, eps)
    c = mpmath.mpf(1.0 - eps)  # the float the chapter passes, exactly
    theta = mpmath.acos(c)
    cmap = (mpmath.sqrt(1 - c * c) + (mpmath.pi - theta) * c) / mpmath.pi  # arc-cosine kernel
    ref = float((1 - cmap) / eps)
    assert slope == pytest.approx(ref, rel=1e-7) and abs(slope - 1) < 1e-3
    t = text("09")
    assert "chaotic side" not in t and "no chaotic phase" in t


def test_chance_level_interpretation() -> None:
    t = text("09")
    assert latex.fmt_num(math.log(3), 5) in t and "chance level" in t


def test_minor_corrections() -> None:
    assert "which is how every figure" not in text("01")
    assert "10^{-16}" not in text("05")  # a zero printed as -9.99e-16
    for stem in ("01", "02", "03", "04", "05", "06", "07", "08", "09"):
        assert r"\partial L/" not in text(stem), stem  # ℓ is the loss, L the depth
    assert r"y_b = \gamma\,\hat h_b + \beta" in text("07")  # centring, γ and β taught
    caption = load_script(ROOT / "figures" / "gradient_profiles.py").CAPTION
    for what in ("Sigmoid", "ReLU + LeCun", "tanh + Glorot", "ReLU + He", "SELU"):
        assert what in caption
    assert "1.07" in caption  # SELU's χ₁, not "flat"
