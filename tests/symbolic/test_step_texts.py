"""The texts of every derivation step: math between dollars, LaTeX that compiles, and plain
text (the dollars dropped) without LaTeX commands."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

import gradmath
import gradmath.symbolic as sym
from gradmath.render import latex
from gradmath.render.notes import compile_pdf, tex_engine
from gradmath.render.plaintext import plain_math
from gradmath.symbolic.derivation import _plain


@cache
def derivations() -> tuple[sym.Derivation, ...]:
    ds = [
        sym.chain_rule(1),
        sym.chain_rule(3),
        sym.chain_rule(2, "relu"),
        sym.chain_rule(2, "silu"),
        sym.local_factor_example(),
        sym.local_factor_example("0.5"),
        sym.path_product_example(),
        sym.update_rounding_example(),
        sym.update_rounding_example("0.01", "3e-9", "1e-3"),
        sym.vanishing_bound_example(),
        sym.derivative("leaky_relu", slope=0.2),
        sym.derivative_bound("leaky_relu", slope=0.2),
        sym.derivative_bound("elu", alpha=2.0),
        sym.derivative_bound("selu", scale=2.0, alpha=0.25),
    ]
    for name in gradmath.activations():
        ds += [sym.derivative(name), sym.derivative_bound(name)]
    ds += [sym.init_variance(s) for s in ("lecun", "he", "glorot")]
    return tuple(ds)


def texts() -> list[str]:
    return [
        t
        for d in derivations()
        for t in (d.title, *(x for s in d.steps for x in (s.statement, s.why)))
        if t
    ]


#: Names that keep their underscore in prose (escaped in LaTeX): activations, PyTorch's
#: modes and arguments.
NAMES = re.compile("|".join([*gradmath.activations(), "fan_out", "negative_slope"]))
#: Plain-text math: a sub- or superscript, a product or power, a function call, a derivative.
PLAIN_MATH = re.compile(r"[\^_*]|sqrt|'\(|[a-zφσγλα]\(|\d[eE][-+]?\d")


def test_math_is_between_dollars() -> None:
    bad = []
    for t in texts():
        assert t.count("$") % 2 == 0, t
        prose = NAMES.sub("", re.sub(r"\$[^$]*\$", "", t))
        if PLAIN_MATH.search(prose):
            bad.append(t)
    assert not bad, bad


def test_plain_text_has_no_latex_commands() -> None:
    for t in texts():
        assert "\\" not in _plain(t) and "$" not in _plain(t), (t, _plain(t))


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        (r"125^{L}", "125^L"),
        (r"\left(\frac{1}{8}\right)^{L}", "(1/8)^L"),
        (r"\varphi'''(\sqrt{2}) = - \frac{2}{e \sqrt{\pi}}", "φ'''(√2) = -2/(e √π)"),
        (r"\mathrm{ulp}(w) \approx 1.19\times10^{-7}", "ulp(w) ≈ 1.19×10^{-7}"),
        (r"a = \sqrt{3\,\mathrm{Var}[W]}", "a = √(3 Var[W])"),
        (r"z \to 0^{-}", "z → 0^-"),
        (r"\alpha\cdot\partial L/\partial w", "α·∂L/∂w"),
        (r"y_i = \sum_{j=1}^{n_{\mathrm{in}}} W_{ij} x_j", "y_i = ∑_{j=1}^{n_in} W_ij x_j"),
    ],
)
def test_plain_math(tex: str, text: str) -> None:
    assert plain_math(tex) == text


@pytest.mark.skipif(tex_engine() is None, reason="no latexmk/pdflatex on PATH")
def test_every_derivation_compiles(tmp_path: Path) -> None:
    tex = tmp_path / "derivations.tex"
    tex.write_text(latex.document("\n".join(d.latex() for d in derivations())), encoding="utf-8")
    pdf, pages = compile_pdf(tex)
    assert pdf.exists() and pages
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert "Missing character" not in log
