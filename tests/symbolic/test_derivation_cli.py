"""Derivation rendering and the `gradmath derive` command."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp

from gradmath.cli import main
from gradmath.symbolic import Derivation, Step


def test_derivation_renders_exactly() -> None:
    d = Derivation(
        "Half", (Step("halve $x$", sp.Eq(sp.Symbol("y"), sp.Rational(1, 2)), "50% off"),), 1
    )
    assert d.latex() == (
        "\\paragraph{Half.}\n\\begin{enumerate}\n\\item halve $x$. \\emph{50\\% off.}\n"
        "\\[ y = \\frac{1}{2} \\]\n\\end{enumerate}\n\\noindent Result: $1$\n"
    )
    assert str(d) == "Half\n  1. halve x (50% off)\n       y = 1/2\n  Result: 1"
    assert isinstance(d.steps, tuple)


def test_bare_formula_statement_is_math() -> None:
    d = Derivation("t", [Step(r"\theta = \arccos(c)")], 0, exact=False)
    assert r"\item $\theta = \arccos(c)$." in d.latex()
    assert "certified" in d.latex() and "certified" in d.text()


def test_cli_text_latex_and_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "sigma'(z) = (1 - sigma(z))*sigma(z)" in out
    assert main(["derive", "sigmoid", "--bound", "--latex"]) == 0
    out = capsys.readouterr().out
    assert (
        r"\paragraph{The supremum of " in out and r"\paragraph{The derivative of sigmoid.}" in out
    )
    assert r"\[ \gamma = \frac{1}{4} \]" in out
    assert main(["derive", "leaky_relu", "--param", "slope=0.2", "--bound"]) == 0
    assert "1/5" in capsys.readouterr().out


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "sigmod"]) == 2
    assert "Did you mean 'sigmoid'" in capsys.readouterr().err
    assert main(["derive", "relu", "--param", "slope=1"]) == 2
    assert "takes no parameters" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["derive", "relu", "--param", "slope"])


def test_python_m_gradmath_derive() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gradmath", "derive", "sigmoid"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.startswith("The derivative of sigmoid")


def test_help_does_not_import_sympy() -> None:
    code = "import sys, gradmath.cli as c; c.build_parser(); print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
