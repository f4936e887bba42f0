"""LaTeX output: fragments (amsmath, booktabs) and the document that holds them.

A :class:`~gradmath.symbolic.Derivation` and a :class:`~gradmath.validate.Comparison` render
themselves (their ``.latex()``); this module adds what belongs to no engine: the table of a
:class:`~gradmath.Profile`, generic booktabs tables, number formatting from natural logs
(so that e^{5000} prints as 10^{2171.5…} instead of overflowing), escaping of plain text,
and the preamble and document assembly shared by the notes build and the tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradmath.errors import GradmathError

if TYPE_CHECKING:
    from gradmath.profile import Profile

__all__ = [
    "PACKAGES",
    "TEXT_WIDTH_IN",
    "UNICODE_MATH",
    "document",
    "escape",
    "figure",
    "float_table",
    "fmt_log",
    "fmt_num",
    "math_expr",
    "preamble",
    "profile_table",
    "render",
    "table",
]

#: The LaTeX packages every fragment may rely on (all in TeX Live's latex-base/recommended).
PACKAGES = (
    "amsmath", "amssymb", "booktabs", "longtable", "graphicx", "geometry", "microtype",
    "natbib", "hyperref",
)  # fmt: skip

#: Unicode that engines and prose use, and the math it stands for. :func:`escape` rewrites
#: it and the preamble declares it, so a stray σ from any engine still compiles.
UNICODE_MATH = {
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "ε": r"\varepsilon",
    "θ": r"\theta",
    "κ": r"\kappa",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ν": r"\nu",
    "ξ": r"\xi",
    "π": r"\pi",
    "ρ": r"\rho",
    "σ": r"\sigma",
    "τ": r"\tau",
    "φ": r"\varphi",
    "χ": r"\chi",
    "ψ": r"\psi",
    "ω": r"\omega",
    "η": r"\eta",
    "µ": r"\mu",  # micro sign, U+00B5
    "Γ": r"\Gamma",
    "Δ": r"\Delta",
    "Σ": r"\Sigma",
    "Φ": r"\Phi",
    "Π": r"\Pi",
    "ℝ": r"\mathbb{R}",
    "ℕ": r"\mathbb{N}",
    "ℤ": r"\mathbb{Z}",
    "ℓ": r"\ell",
    "ĝ": r"\hat{g}",
    "∂": r"\partial",
    "∇": r"\nabla",
    "∞": r"\infty",
    "≤": r"\leq",
    "≥": r"\geq",
    "≈": r"\approx",
    "≠": r"\neq",
    "≲": r"\lesssim",
    "≫": r"\gg",
    "≪": r"\ll",
    "∝": r"\propto",
    "⊙": r"\odot",
    "⊗": r"\otimes",
    "∘": r"\circ",
    "ȳ": r"\bar{y}",
    "ã": r"\tilde{a}",
    "⊥": r"\perp",
    "÷": r"\div",
    "⟨": r"\langle",
    "⟩": r"\rangle",
    "←": r"\leftarrow",
    "·": r"\cdot",
    "×": r"\times",
    "±": r"\pm",
    "−": "-",
    "→": r"\to",
    "↦": r"\mapsto",
    "⇒": r"\Rightarrow",
    "∈": r"\in",
    "√": r"\surd",
    "∑": r"\sum",
    "∏": r"\prod",
    "∫": r"\int",
    "‖": r"\|",
    "°": r"^{\circ}",
    "′": r"'",
    **{sup: f"^{{{d}}}" for d, sup in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")},
    "⁺": "^{+}",
    "⁻": "^{-}",
    "ᵀ": "^{T}",
    **{sub: f"_{{{d}}}" for d, sub in enumerate("₀₁₂₃₄₅₆₇₈₉")},
    "ₗ": "_{l}",
}

#: Combining accents: a letter followed by one of these prints as the accented math letter.
_COMBINING = {"\u0303": r"\tilde", "\u0302": r"\hat", "\u0304": r"\bar"}

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    # Not special, but the default OT1 text font prints them as other glyphs (| as an em dash).
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def escape(text: str) -> str:
    r"""``text`` as LaTeX that prints it literally (specials escaped, Greek and symbols as math).

    >>> escape("50% of σ_w² & more")
    '50\\% of \\ensuremath{\\sigma}\\_w\\ensuremath{^{2}} \\& more'
    """
    out: list[str] = []
    for ch in _merge_scripts(str(text)):
        if ch in _COMBINING and out:
            out[-1] = rf"\ensuremath{{{_COMBINING[ch]}{{{out[-1]}}}}}"
        elif ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in UNICODE_MATH or ch[0] in "^_":
            out.append(r"\ensuremath{" + UNICODE_MATH.get(ch, ch) + "}")
        else:
            out.append(ch)
    return "".join(out)


_SCRIPT = re.compile("([⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ᵀ]{2,}|[₀₁₂₃₄₅₆₇₈₉ₗ]{2,})")


def _merge_scripts(text: str) -> list[str]:
    # "10⁻⁶" is one superscript, ^{-6}, not two stacked ones: runs become one token.
    out: list[str] = []
    for i, part in enumerate(_SCRIPT.split(text)):
        if i % 2 == 0:
            out.extend(part)
        else:
            marks = "".join(UNICODE_MATH[c][2:-1] for c in part)
            out.append(f"{UNICODE_MATH[part[0]][0]}{{{marks}}}")
    return out


def fmt_num(x: float, digits: int = 4) -> str:
    r"""A float as LaTeX math (no dollars): plain when moderate, ``m\times10^{e}`` otherwise.

    >>> fmt_num(0.25), fmt_num(1.5e-10), fmt_num(125.0)
    ('0.25', '1.5\\times10^{-10}', '125')
    """
    x = float(x)
    if math.isnan(x):
        raise GradmathError("Cannot print NaN as a number; a result left floating range.")
    if math.isinf(x):
        return r"\infty" if x > 0 else r"-\infty"
    if x == 0.0:
        return "0"
    return _mantissa_exponent(math.copysign(1.0, x), math.log10(abs(x)), digits)


def fmt_log(log_value: float, digits: int = 3) -> str:
    r"""e^{log_value} as LaTeX math, without ever forming the (possibly overflowing) value.

    >>> fmt_log(math.log(1e-300) * 10)
    '10^{-3000}'
    >>> fmt_log(math.log(0.25))
    '0.25'
    """
    v = float(log_value)
    if not math.isfinite(v):
        raise GradmathError(f"`log_value` (={v!r}) must be finite.")
    return _mantissa_exponent(1.0, v / math.log(10.0), digits)


def _mantissa_exponent(sign: float, log10_abs: float, digits: int) -> str:
    e = math.floor(log10_abs)
    m = 10.0 ** (log10_abs - e)
    if float(f"{m:.{digits}g}") >= 10.0:  # 9.9996 rounds up to 10: carry into the exponent
        m, e = m / 10.0, e + 1
    s = "-" if sign < 0 else ""
    if -3 <= e <= 4:
        # Fixed point with `digits` significant figures, never fewer integer digits (1024).
        fixed = f"{m * 10.0**e:.{max(digits - 1 - e, 0)}f}"
        return s + (fixed.rstrip("0").rstrip(".") if "." in fixed else fixed)
    mant = f"{m:.{digits}g}"
    return s + (f"10^{{{e}}}" if mant == "1" else f"{mant}\\times10^{{{e}}}")


def sympy_latex(expr: Any) -> str:
    """SymPy's LaTeX printer as every gradmath document uses it (arccos, not acos)."""
    import sympy

    return str(sympy.latex(sympy.sympify(expr), inv_trig_style="full"))


def math_expr(expr: Any) -> str:
    """A SymPy object (or number) as inline math ``$…$`` through :func:`sympy_latex`."""
    return "$" + sympy_latex(expr) + "$"


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: str | None = None,
    caption: str | None = None,
    label: str | None = None,
    size: str = "",
) -> str:
    """A booktabs table (cells are LaTeX already); a floating ``table`` when captioned.
    ``size`` (e.g. ``\\small``) sets the font size of a wide table."""
    ncol = len(header)
    for i, row in enumerate(rows):
        if len(row) != ncol:
            raise GradmathError(f"Row {i} has {len(row)} cells; the header has {ncol}.")
    align = align or "l" + "r" * (ncol - 1)
    lines = [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(" & ".join(row) + r" \\" for row in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return float_table("\n".join(lines), caption=caption, label=label, size=size)


def float_table(
    tabular: str, *, caption: str | None = None, label: str | None = None, size: str = ""
) -> str:
    """A ready ``tabular`` (e.g. ``Comparison.latex()``) as a floating, captioned ``table``,
    or centred in place when there is neither caption nor label. ``size``: e.g. ``\\small``.
    A table wider than the text is scaled down to the text width (``\\gradmathfit``), never
    printed into the margin."""
    size = f"{size}\n" if size else ""
    tabular = f"\\gradmathfit{{%\n{tabular}}}"
    if caption is None and label is None:
        return f"\\begin{{center}}\n{size}{tabular}\n\\end{{center}}\n"
    cap = f"\\caption{{{caption}}}\n" if caption else ""
    lab = f"\\label{{{label}}}\n" if label else ""
    return f"\\begin{{table}}[htbp]\n\\centering\n{size}{cap}{lab}{tabular}\n\\end{{table}}\n"


def _rows_to_show(depth: int, max_rows: int) -> list[int]:
    if depth <= max_rows:
        return list(range(depth))
    return sorted({round(i) for i in np.linspace(0, depth - 1, max_rows)})


_PROFILE_COLUMNS = {
    "q": r"$\mathbb{E}[(h^l_i)^2]$",
    "grad_q": r"$\mathbb{E}[(\partial\ell/\partial h^l_i)^2]$",
    "wgrad_q": r"$\mathbb{E}[(\partial\ell/\partial W^l_{ij})^2]$",
}


def profile_table(
    profile: Profile,
    *,
    quantities: Sequence[str] = ("q", "grad_q", "wgrad_q"),
    max_rows: int = 12,
    digits: int = 3,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    r"""A :class:`~gradmath.Profile` as a booktabs table: one row per site (evenly thinned to
    ``max_rows`` for deep nets), one column per quantity.

    Values print from the stored logs (:func:`fmt_log`), so any depth prints. A simulated
    profile adds its Monte-Carlo error: the standard error of the log is the relative
    standard error of the value, printed as ``±x%``.
    """
    for q in quantities:
        if q not in _PROFILE_COLUMNS:
            raise GradmathError(f"`quantities` has {q!r}; allowed: {list(_PROFILE_COLUMNS)}.")
    header = ["site", "width", *(_PROFILE_COLUMNS[q] for q in quantities)]
    rows = []
    for i in _rows_to_show(profile.depth, max_rows):
        site = profile.sites[i]
        cells = [rf"\texttt{{{site.name}}}", str(site.width)]
        for q in quantities:
            value = float(getattr(profile, f"log_{q}")[i])
            if math.isnan(value):
                cells.append("--")
                continue
            cell = fmt_log(value, digits)
            se = getattr(profile, f"log_{q}_se")
            if se is not None:
                cell += rf" \pm {100.0 * float(se[i]):.2g}\%"
            cells.append(f"${cell}$")
        rows.append(cells)
    return table(header, rows, caption=caption, label=label)


def render(obj: Any) -> str:
    """The LaTeX fragment of any gradmath result: its own ``.latex()`` (Derivation,
    Comparison), :func:`profile_table` for a Profile, SymPy's printer for expressions."""
    if hasattr(obj, "log_q") and hasattr(obj, "sites"):  # a Profile (a lower layer's type)
        return profile_table(obj)
    method = getattr(obj, "latex", None)
    if callable(method):
        return str(method())
    if isinstance(obj, str):
        return escape(obj)
    return math_expr(obj)


def figure(path: str, caption: str, *, label: str | None = None, width: str = r"\linewidth") -> str:
    """A floating figure that includes ``path`` (relative to the document)."""
    lab = f"\\label{{{label}}}\n" if label else ""
    return (
        "\\begin{figure}[htbp]\n\\centering\n"
        f"\\includegraphics[width={width}]{{{path}}}\n"
        f"\\caption{{{caption}}}\n{lab}\\end{{figure}}\n"
    )


#: Page geometry: A4 with 2.5 cm margins, so the text block is 16 cm wide. Figures are made at
#: most this wide and included at their natural size, so their fonts print at design size.
PAPER_WIDTH_CM, MARGIN_CM = 21.0, 2.5
TEXT_WIDTH_IN = (PAPER_WIDTH_CM - 2.0 * MARGIN_CM) / 2.54

# Floats stay near their text: up to three per page top, a float page only when it is 3/4
# full (no mostly-blank pages), text may shrink to 15% of a page with floats.
_FLOATS = r"""\renewcommand{\topfraction}{0.85}
\renewcommand{\bottomfraction}{0.6}
\renewcommand{\textfraction}{0.15}
\renewcommand{\floatpagefraction}{0.75}
\setcounter{topnumber}{3}
\setcounter{bottomnumber}{2}
\setcounter{totalnumber}{4}"""

# \gradmathfigure{name}: the notes build replaces it with the figure; a chapter compiled alone
# prints nothing there. \gradmathfit{tabular}: scaled to the text width when wider.
# \gradmathfloatbarrier: flush the floats still waiting (after the last chapter: no figure
# among the references), without a page break when none wait.
_MACROS = r"""\newcommand{\gradmathfigure}[1]{}
\newsavebox{\gradmathbox}
\newcommand{\gradmathfit}[1]{\sbox{\gradmathbox}{#1}\ifdim\wd\gradmathbox>\linewidth
\resizebox{\linewidth}{!}{\usebox{\gradmathbox}}\else\usebox{\gradmathbox}\fi}
\makeatletter
\newcommand{\gradmathfloatbarrier}{\par\ifx\@deferlist\@empty\else\clearpage\fi}
\makeatother
\newcounter{exercise}[section]
\renewcommand{\theexercise}{\thesection.\arabic{exercise}}
\newenvironment{exercise}{\par\medskip\noindent\refstepcounter{exercise}%
\textbf{Exercise~\theexercise.}\ }{\par\medskip}"""


def preamble(
    title: str | None = None,
    author: str | None = None,
    *,
    date: str = "",
    pdf_title: str | None = None,
    pdf_author: str | None = None,
) -> str:
    """The document class, packages and Unicode declarations every gradmath document uses.

    ``pdf_title``/``pdf_author`` (plain text) go into the PDF's metadata through hyperref.
    Citations use natbib's author-year style (``\\citet``, ``\\citep``).
    """
    unicode = "\n".join(
        rf"\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{\ensuremath{{{tex}}}}}"
        for ch, tex in UNICODE_MATH.items()
    )
    # Without a base letter to sit on (a stray combining accent), print the accent alone.
    unicode += "".join(
        rf"\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{\ensuremath{{{tex}{{}}}}}}"
        for ch, tex in _COMBINING.items()
    )
    info = [f"pdftitle={{{escape(pdf_title)}}}"] if pdf_title else []
    info += [f"pdfauthor={{{escape(pdf_author)}}}"] if pdf_author else []
    info += ["pdfcreator={gradmath}"]
    lines = [
        r"\documentclass[11pt,a4paper]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage{booktabs}",
        r"\usepackage{longtable}",
        r"\usepackage{graphicx}",
        rf"\usepackage[a4paper,margin={MARGIN_CM:g}cm]{{geometry}}",
        r"\usepackage[expansion=false]{microtype}",  # protrusion only: CM bitmaps do not expand
        r"\usepackage[round]{natbib}",
        r"\usepackage[hidelinks,pdfencoding=auto]{hyperref}",  # ASCII metadata stays ASCII
        r"\hypersetup{" + ", ".join(info) + "}",
        unicode,
        _FLOATS,
        _MACROS,
        r"\setlength{\parskip}{0.5ex}",
        r"\setlength{\emergencystretch}{3em}",  # a long formula in a line stretches, not overflows
        r"\renewcommand{\arraystretch}{1.25}",  # room for fractions in table cells
        r"\allowdisplaybreaks",
    ]
    if title is not None:
        lines.append(rf"\title{{{title}}}")
        lines.append(rf"\author{{{author or ''}}}")
        lines.append(rf"\date{{{date}}}")
    return "\n".join(lines) + "\n"


def document(
    body: str,
    *,
    title: str | None = None,
    author: str | None = None,
    date: str = "",
    pdf_title: str | None = None,
    pdf_author: str | None = None,
) -> str:
    """A complete, compilable document around ``body`` (a title page block when titled)."""
    head = preamble(title, author, date=date, pdf_title=pdf_title, pdf_author=pdf_author)
    top = "\\maketitle\n\\tableofcontents\n\n" if title is not None else ""
    return f"{head}\\begin{{document}}\n{top}{body}\n\\end{{document}}\n"
