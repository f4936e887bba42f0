r"""Derivations as objects: ordered steps with SymPy expressions, an exact result, LaTeX.

A :class:`Derivation` is what every function of :mod:`gradmath.symbolic` returns (and what
other engines use for their own worked derivations). It renders itself as plain text
(:meth:`Derivation.text`, ``str()``) and as a LaTeX fragment (:meth:`Derivation.latex`,
amsmath; ``_repr_latex_`` for Jupyter), with every expression printed by SymPy's printers.

Text convention for ``title``, ``Step.statement`` and ``Step.why``: prose in plain text
(Unicode math such as σ′ or ≤ is fine); inline math goes between ``$…$`` and is passed to
LaTeX verbatim: anything with a sub- or superscript, a derivative φ'(z), a formula or a
value printed by SymPy (``f"${sympy.latex(x)}$"``) belongs there, written with LaTeX commands
(``$\varphi'(z_l)\,w_l$``, ``$n_{\mathrm{in}}$``, ``$1.19\times10^{-7}$``). In plain text the
dollars are dropped and the common commands print as Unicode
(:func:`gradmath.render.plaintext.plain_math`: ``\varphi`` as φ, ``\le`` as ≤,
``\frac{a}{b}`` as a/b, ``\sqrt{2}`` as √2). A statement that is a bare LaTeX formula (it
contains a backslash command and no ``$``) is typeset as math as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = ["Derivation", "Step", "named", "text"]


@dataclass(frozen=True)
class Step:
    """One step of a derivation.

    Attributes:
        statement: what the step establishes, in words (see the module doc for math).
        expr: the SymPy object it establishes (usually an ``Eq`` or a relation), or None
            for a step that is words only.
        why: a one-line justification: the rule used, or the source (paper, equation).
    """

    statement: str
    expr: Any = None
    why: str = ""


@dataclass(frozen=True)
class Derivation:
    r"""An ordered list of :class:`Step` and an exact result.

    Attributes:
        title: what is derived.
        steps: the steps, in order.
        result: the final answer as a SymPy object (exact: ``Rational(1, 4)``, not 0.25,
            unless ``exact`` is False).
        exact: False when ``result`` is a certified numeric bound rather than an exact
            value (the steps say how it was certified; ``data`` holds the enclosure).
        data: named by-products a caller may need besides ``result`` (each function of
            :mod:`gradmath.symbolic` documents its keys).

    >>> import sympy
    >>> d = Derivation("One half", (Step("halve one", sympy.Rational(1, 2), "arithmetic"),),
    ...                sympy.Rational(1, 2))
    >>> print(d.latex())
    \paragraph{One half.}
    \begin{enumerate}
    \item halve one. \emph{arithmetic.}
    \[ \frac{1}{2} \]
    \end{enumerate}
    \noindent Result: $\frac{1}{2}$
    <BLANKLINE>
    >>> print(d.text())
    One half
      1. halve one (arithmetic)
           1/2
      Result: 1/2
    """

    title: str
    steps: tuple[Step, ...]
    result: Any
    exact: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Callers may pass a list; a frozen object should hold a tuple.
        object.__setattr__(self, "steps", tuple(self.steps))

    # ------------------------------------------------------------------ LaTeX

    def latex(self) -> str:
        """The derivation as a LaTeX fragment (needs only amsmath): a titled paragraph, the
        steps as an enumerated list with each expression displayed, then the result."""

        lines = [rf"\paragraph{{{_tex_text(_full_stop(self.title))}}}", r"\begin{enumerate}"]
        for step in self.steps:
            item = r"\item " + _tex_text(_full_stop(step.statement), formula=True)
            if step.why:
                item += r" \emph{" + _tex_text(_full_stop(step.why)) + "}"
            lines.append(item)
            if step.expr is not None:
                lines.append(r"\[ " + _latex(step.expr) + r" \]")
        lines.append(r"\end{enumerate}")
        label = "Result" if self.exact else "Result (certified numeric bound)"
        lines.append(rf"\noindent {label}: ${_latex(self.result)}$")
        return "\n".join(lines) + "\n"

    def _repr_latex_(self) -> str:
        # Jupyter renders Markdown+MathJax, which has no \paragraph/enumerate: give it the
        # math only, one aligned block.

        rows = [
            rf"&\text{{{_plain(step.statement)}}}\\ &\quad {_latex(step.expr)}"
            for step in self.steps
            if step.expr is not None
        ]
        rows.append(rf"&\text{{Result: }} {_latex(self.result)}")
        return "$$\\begin{aligned}" + r"\\ ".join(rows) + r"\end{aligned}$$"

    # ------------------------------------------------------------------ plain text

    def text(self) -> str:
        """The derivation as plain text (expressions by SymPy's one-line printer)."""
        lines = [_plain(self.title)]
        for i, step in enumerate(self.steps, 1):
            why = f" ({_plain(step.why)})" if step.why else ""
            lines.append(f"  {i}. {_plain(step.statement, formula=True)}{why}")
            if step.expr is not None:
                lines.append("       " + text(step.expr))
        label = "Result" if self.exact else "Result (certified numeric bound)"
        lines.append(f"  {label}: {text(self.result)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


@cache
def _printers() -> tuple[Any, type]:
    """(a text printer that writes f'(x) for derivatives, a Symbol class with own LaTeX)."""
    import sympy
    from sympy.core.function import AppliedUndef
    from sympy.printing.str import StrPrinter

    class TextPrinter(StrPrinter):
        def _print_Derivative(self, expr: Any) -> str:
            (var, count), *more = expr.variable_count
            f = expr.expr
            if not more and isinstance(f, AppliedUndef) and f.args == (var,):
                return f"{f.func.__name__}{chr(39) * int(count)}({self._print(var)})"
            dvars = "".join(
                f"∂{self._print(v)}" + (f"^{c}" if c != 1 else "") for v, c in expr.variable_count
            )
            order = f"^{expr.derivative_count}" if expr.derivative_count > 1 else ""
            return f"∂{order}{self.parenthesize(f, 999)}/{dvars}"

        def _print_Function(self, expr: Any) -> str:
            # Undefined functions named in LaTeX (r"\varphi'") print without the backslash.
            out = super()._print_Function(expr)
            return out.lstrip("\\") if isinstance(expr, AppliedUndef) else out

        def _print_Equality(self, expr: Any) -> str:
            return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    class Named(sympy.Symbol):
        """A symbol printed as ``name`` in text and as its own LaTeX."""

        def __new__(cls, name: str, tex: str, **assumptions: Any) -> Any:
            obj = super().__new__(cls, name, **assumptions)
            obj._tex = tex
            return obj

        def __getnewargs_ex__(self) -> Any:
            return (self.name, self._tex), self.assumptions0

        def _latex(self, printer: Any) -> str:
            return self._tex

    return TextPrinter(), Named


def text(expr: Any) -> str:
    """A SymPy object as one line of text (derivatives of named functions as f'(x))."""
    return str(_printers()[0].doprint(expr))


def named(name: str, tex: str, **assumptions: Any) -> Any:
    """A SymPy symbol that prints as ``name`` in text and as ``tex`` in LaTeX, e.g.
    ``named("dL/dw_1", r"\\frac{\\partial L}{\\partial w_1}")``."""
    return _printers()[1](name, tex, **assumptions)


_MATH = re.compile(r"\$([^$]*)\$")


def _full_stop(s: str) -> str:
    s = s.strip()
    return s if not s or s[-1] in ".?!:" else s + "."


def _latex(expr: Any) -> str:
    from gradmath.render.latex import sympy_latex

    return sympy_latex(expr)


def _bare_formula(s: str) -> bool:
    """A statement that is a LaTeX formula as a whole (module docstring)."""
    return "$" not in s and "\\" in s


def _plain(s: str, *, formula: bool = False) -> str:
    """The plain-text twin of :func:`_tex_text`: math spans (or a bare formula) via plain_math."""
    from gradmath.render.plaintext import plain_math

    if formula and _bare_formula(s):
        return plain_math(s)
    if s.count("$") % 2:  # an unmatched $ is text, not math
        return s
    return _MATH.sub(lambda m: plain_math(m.group(1)), s)


def decimal_text(x: Any, digits: int) -> str:
    r"""An exact number as inline math (no dollars) for a step text: ``= 0.25`` when the
    decimal is the value, ``\approx 1.19\times10^{-7}`` when it is rounded.

    >>> import sympy
    >>> decimal_text(sympy.Rational(1, 4), 6), decimal_text(sympy.Rational(1, 2**23), 3)
    ('= 0.25', '\\approx 1.19\\times10^{-7}')
    """
    import sympy

    from gradmath.render.latex import fmt_num

    x = sympy.nsimplify(x) if isinstance(x, float) else sympy.sympify(x)
    s = fmt_num(float(x), digits)
    m = re.fullmatch(r"(-?[\d.]+)?(?:\\times)?(?:10\^\{(-?\d+)\})?", s)
    exact = False
    if m and x.is_Rational:
        exact = sympy.Rational(m.group(1) or 1) * sympy.Integer(10) ** int(m.group(2) or 0) == x
    return ("= " if exact else "\\approx ") + s


def _tex_text(s: str, *, formula: bool = False) -> str:
    """Prose with ``$…$`` math as LaTeX: text escaped, math verbatim."""
    from gradmath.render.latex import escape

    if formula and _bare_formula(s):
        return "$" + s.rstrip(".") + "$" + ("." if s.endswith(".") else "")
    parts = s.split("$")
    if len(parts) % 2 == 0:  # an unmatched $ is text, not math
        return escape(s)
    return "".join(escape(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))
