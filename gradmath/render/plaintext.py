r"""Inline LaTeX math as readable plain text, for the plain-text side of a derivation.

:meth:`gradmath.symbolic.Derivation.text` prints step texts whose math is written for LaTeX
(between ``$…$``). A general LaTeX-to-text converter (pylatexenc's ``LatexNodes2Text``) was
tried and drops the grouping that math needs (``w_{l-1}`` becomes ``w_l-1``, ``\frac{2}{e
\sqrt{\pi}}`` becomes ``2/e √(π)``); this one knows only the math subset the step texts use,
keeps groups that matter as ``{…}`` or parentheses, and leaves unknown commands as they are.
"""

from __future__ import annotations

import re
from functools import cache

from gradmath.render.latex import UNICODE_MATH

__all__ = ["plain_math"]


#: Commands that print as their name in text (operators and functions).
_NAMED_OPS = frozenset(
    "arccos arcsin arctan cos cosh det exp inf lim ln log max min sin sinh sup tan tanh".split()
)
#: Commands with one argument that print as the argument.
_WRAPPERS = frozenset(
    "mathrm text textrm operatorname mathbb mathcal mathbf mathit mathsf boldsymbol".split()
)
#: Commands that print as nothing (delimiter sizes) or as a space (spacing).
_SIZES = frozenset("left right big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr".split())
_SPACES = {",": " ", ";": " ", ":": " ", " ": " ", "!": "", "quad": " ", "qquad": " "}
_EXTRA_SYMBOLS = {
    "le": "≤", "ge": "≥", "ne": "≠", "phi": "φ", "epsilon": "ε", "vartheta": "θ",
    "dots": "…", "ldots": "…", "cdots": "…", "top": "T", "sim": "~", "prime": "'",
    "lvert": "|", "rvert": "|", "lVert": "‖", "rVert": "‖", "mid": "|", "colon": ":",
    "{": "{", "}": "}", "_": "_", "%": "%", "&": "&", "#": "#", "$": "$",
}  # fmt: skip
_SIMPLE = re.compile(r"√?[\w.']+(\([^()]*\))?")


@cache
def _symbols_text() -> dict[str, str]:
    """LaTeX command (without backslash) -> the Unicode character that stands for it."""
    out: dict[str, str] = {}
    for ch, tex in UNICODE_MATH.items():
        m = re.fullmatch(r"\\([A-Za-z]+|\||mathbb\{[A-Z]\})", tex)
        if m and m.group(1) not in out:
            out[m.group(1)] = ch
    out.update(_EXTRA_SYMBOLS)
    return out


def plain_math(tex: str) -> str:
    r"""Inline LaTeX math as readable plain text: what :meth:`Derivation.text` prints for
    ``$…$``. Greek letters and relations become Unicode, ``\frac{a}{b}`` a/b, ``\sqrt{x}``
    √x, ``\mathrm{in}`` in; commands it does not know are kept.

    >>> plain_math(r"\varphi'(z_l)\,w_l \le \gamma |w_{l-1}|")
    "φ'(z_l) w_l ≤ γ |w_{l-1}|"
    >>> plain_math(r"n_{\mathrm{in}}\,\mathrm{Var}[W] = - \frac{2}{\sqrt{\pi} e}")
    'n_in Var[W] = -2/(√π e)'
    >>> plain_math(r"\tanh{\left(\frac{z}{2} \right)} \approx 1.19\times10^{-7}")
    'tanh(z/2) ≈ 1.19×10^{-7}'
    """
    out = _plain_tokens(tex, 0, len(tex))
    out = re.sub(r" {2,}", " ", out)
    out = re.sub(r"([(\[]) | (?=[)\],])", r"\1", out)
    out = re.sub(r"(^|[=(,≤≥<>] ?)- (?=\S)", r"\1-", out)
    return out.strip()


def _group_end(s: str, i: int) -> int:
    """Index just past the brace group that opens at s[i] == "{"."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif s[j] == "}" and s[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(s)


def _argument(s: str, i: int) -> tuple[str, int]:
    """The text of the argument that starts at s[i] (a group or one character), and its end."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        end = _group_end(s, i)
        return _plain_tokens(s, i + 1, end - 1), end
    if s[i] == "\\":
        m = re.compile(r"\\([A-Za-z]+|.)").match(s, i)
        assert m is not None
        return _plain_tokens(s, i, m.end()), m.end()
    return s[i], i + 1


def _wrap(t: str) -> str:
    return t if _SIMPLE.fullmatch(t) else f"({t})"


def _plain_tokens(s: str, i: int, end: int) -> str:
    symbols = _symbols_text()
    out: list[str] = []
    command = re.compile(r"\\([A-Za-z]+|.)")
    while i < end:
        ch = s[i]
        if ch == "\\":
            m = command.match(s, i, end)
            if m is None:  # a trailing backslash
                out.append(ch)
                i += 1
                continue
            name, i = m.group(1), m.end()
            if name == "frac":
                num, i = _argument(s, i)
                den, i = _argument(s, i)
                out.append(f"{_wrap(num)}/{_wrap(den)}")
            elif name == "sqrt":
                arg, i = _argument(s, i)
                out.append("√" + (arg if len(arg) == 1 or arg.isdigit() else f"({arg})"))
            elif name in _WRAPPERS:
                arg, i = _argument(s, i)
                out.append(symbols.get(f"mathbb{{{arg}}}", arg) if name == "mathbb" else arg)
            elif name in _SIZES:
                if i < end and s[i] == ".":  # \left. is an invisible delimiter
                    i += 1
            elif name in _SPACES:
                out.append(_SPACES[name])
            elif name in symbols:
                out.append(symbols[name])
                # TeX ignores the spaces after a command word: "\partial L" is ∂L.
                space = re.compile(r" +(?=\w)").match(s, i, end)
                if space and (symbols[name].isalpha() or symbols[name] in "∂∞∇"):
                    i = space.end()
            elif name in _NAMED_OPS:
                out.append(name)
            else:
                out.append(m.group(0))
        elif ch in "^_":
            arg, i = _argument(s, i + 1)
            simple = len(arg) == 1 or re.fullmatch(r"[^\W_]+", arg)
            out.append(ch + (arg if simple else f"{{{arg}}}"))
        elif ch == "{":
            close = _group_end(s, i)
            out.append(_plain_tokens(s, i + 1, close - 1))
            i = close
        elif ch == "~":
            out.append(" ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
