"""LaTeX fragments: exact strings for canonical cases, and that they compile."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import gradmath
from gradmath.errors import GradmathError
from gradmath.render import latex, notes
from gradmath.render.notes import compile_pdf, tex_engine

needs_tex = pytest.mark.skipif(tex_engine() is None, reason="no latexmk/pdflatex on PATH")


def _profile(depth: int = 3, se: bool = False) -> gradmath.Profile:
    net = gradmath.MLP.square(8, depth, activation="tanh", init="glorot_normal")
    logs = np.log(np.arange(1.0, depth + 1.0))
    extra = {"log_q_se": np.full(depth, 0.01), "log_grad_q_se": np.full(depth, 0.02),
             "log_wgrad_q_se": np.full(depth, 0.03)} if se else {}  # fmt: skip
    return gradmath.Profile(net, logs, -logs, logs - 1.0, source="test", **extra)


def test_escape_specials_and_unicode() -> None:
    assert latex.escape("a_b & 50% #1 {x} $y ~ ^") == (
        r"a\_b \& 50\% \#1 \{x\} \$y \textasciitilde{} \textasciicircum{}"
    )
    assert latex.escape("|z| <= 4 > 3") == (
        r"\textbar{}z\textbar{} \textless{}= 4 \textgreater{} 3"
    )
    assert latex.escape("σ′(0) ≤ ¼") == r"\ensuremath{\sigma}\ensuremath{'}(0) \ensuremath{\leq} ¼"


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.25, "0.25"), (125.0, "125"), (1024.0, "1024"), (1.5e-10, r"1.5\times10^{-10}"),
     (-2.0e7, r"-2\times10^{7}"), (1e-300, "10^{-300}"), (0.0, "0"), (9.99996, "10")],
)  # fmt: skip
def test_fmt_num(x: float, text: str) -> None:
    assert latex.fmt_num(x) == text


def test_fmt_log_never_forms_the_value() -> None:
    # e^{10000} overflows a float; its print does not.
    assert latex.fmt_log(10000.0) == r"8.81\times10^{4342}"
    assert latex.fmt_log(math.log(125.0)) == "125"


def test_bad_numbers_raise() -> None:
    with pytest.raises(gradmath.GradmathError, match="NaN"):
        latex.fmt_num(float("nan"))
    with pytest.raises(gradmath.GradmathError, match="log_value"):
        latex.fmt_log(float("inf"))


def test_table_shape_is_checked() -> None:
    with pytest.raises(gradmath.GradmathError, match="Row 0 has 1 cells"):
        latex.table(["a", "b"], [["x"]])


def test_profile_table_exact() -> None:
    text = latex.profile_table(_profile(2), quantities=("q",))
    assert text == (
        "\\begin{center}\n\\gradmathfit{%\n\\begin{tabular}{lrr}\n\\toprule\n"
        "site & width & $\\mathbb{E}[(h^l_i)^2]$ \\\\\n\\midrule\n"
        "\\texttt{dense1} & 8 & $1$ \\\\\n\\texttt{dense2} & 8 & $2$ \\\\\n"
        "\\bottomrule\n\\end{tabular}}\n\\end{center}\n"
    )


def test_profile_table_errors_and_thinning() -> None:
    text = latex.profile_table(_profile(30, se=True), max_rows=5, caption="c", label="tab:p")
    assert text.count(r"\\") == 6  # header + 5 rows
    assert r"\pm 3\%" in text and r"\label{tab:p}" in text
    with pytest.raises(gradmath.GradmathError, match="quantities"):
        latex.profile_table(_profile(), quantities=("nope",))


def test_render_dispatch() -> None:
    import sympy

    assert latex.render(sympy.Rational(1, 4)) == r"$\frac{1}{4}$"
    assert latex.render("50%") == r"50\%"
    assert latex.render(_profile()).startswith("\\begin{center}")

    class HasLatex:
        def latex(self) -> str:
            return "X"

    assert latex.render(HasLatex()) == "X"


@needs_tex
def test_fragments_compile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = "\n".join(
        [
            latex.escape("Unicode from engines: σ_w² ≤ χ₁ · ξ → ∞, 50% & #"),
            "Stray unicode too: σ′(z) ≤ 1/4, ‖∇W‖.",
            latex.profile_table(_profile(4, se=True), caption="A profile", label="tab:p"),
            latex.math_expr("Rational(1, 4) * z**2"),
        ]
    )
    tex = tmp_path / "fragments.tex"
    tex.write_text(latex.document(body, title="T"), encoding="utf-8")
    pdf, pages = compile_pdf(tex)
    assert pdf.exists() and pages == 1


# More than one run of pdflatex, and BibTeX between the first two: a page reference to a
# later section, a table of contents and a citation.
_NEEDS_RERUNS = r"""\documentclass{article}
\begin{document}
\tableofcontents
See page~\pageref{s:last} and \cite{k}.
\newpage
\section{First}\newpage
\section{Last}\label{s:last}
\bibliographystyle{plain}\bibliography{refs}
\end{document}
"""

# A label whose number is the previous run's plus one: the log asks for a rerun forever.
_NEVER_SETTLES = r"""\documentclass{article}
\newcounter{c}
\begin{document}
\makeatletter
\@ifundefined{r@x}{}{\setcounter{c}{\expandafter\expandafter\expandafter\@car
  \csname r@x\endcsname\@nil}}
\makeatother
\refstepcounter{c}\label{x}Run \ref{x}.
\end{document}
"""


@pytest.fixture
def plain_pdflatex(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile with pdflatex alone, as where latexmk is not installed."""
    monkeypatch.setattr(notes, "tex_engine", lambda: ["pdflatex", "-interaction=nonstopmode"])


@needs_tex
@pytest.mark.usefixtures("plain_pdflatex")
def test_plain_pdflatex_reruns_until_references_settle(tmp_path: Path) -> None:
    (tmp_path / "refs.bib").write_text("@book{k, author={A. Author}, title={T}, year={2000}}\n")
    tex = tmp_path / "doc.tex"
    tex.write_text(_NEEDS_RERUNS)
    pdf, pages = compile_pdf(tex)
    log = tex.with_suffix(".log").read_text()
    assert pdf.exists()
    assert pages == 3 and not re.search(r"Rerun (to get|LaTeX)", log) and "undefined" not in log
    assert r"\newlabel{s:last}{{2}{3}" in tex.with_suffix(".aux").read_text()  # section 2, page 3


@needs_tex
@pytest.mark.usefixtures("plain_pdflatex")
def test_a_document_that_never_settles_is_refused(tmp_path: Path) -> None:
    tex = tmp_path / "doc.tex"
    tex.write_text(_NEVER_SETTLES)
    with pytest.raises(GradmathError, match=r"did not settle .* after 5 more runs"):
        compile_pdf(tex)
    # The first run and five more: the label's number counts the runs.
    assert r"\newlabel{x}{{6}" in tex.with_suffix(".aux").read_text()


def test_every_non_ascii_character_in_the_package_compiles_or_is_mapped() -> None:
    # Engines write Unicode math in their derivations' prose; each character must either be
    # mapped (escape and the preamble) or be one LaTeX's utf8 input already knows.
    from pathlib import Path

    known_to_latex = set("…–—§½éèüöäß")
    chars: set[str] = set()
    for path in Path(gradmath.__file__).parent.rglob("*.py"):
        chars |= {c for c in path.read_text(encoding="utf-8") if ord(c) > 127}
    unmapped = sorted(chars - set(latex.UNICODE_MATH) - known_to_latex - set("\u0303\u0302\u0304"))
    assert not unmapped, unmapped


def test_combining_tilde() -> None:
    assert latex.escape("q̃") == r"\ensuremath{\tilde{q}}"


def test_superscript_runs_merge() -> None:
    assert latex.escape("10⁻⁶ x₁₂ z²") == (
        r"10\ensuremath{^{-6}} x\ensuremath{_{12}} z\ensuremath{^{2}}"
    )
