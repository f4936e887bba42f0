r"""The lecture notes as one LaTeX document: front matter, chapters, exercises, solutions,
bibliography.

:mod:`gradmath.render.notes` runs the chapter and figure scripts; this module turns what they
returned into ``notes.tex``. It knows the parts of a chapter script (see
:mod:`gradmath.render.notes` for the contract): ``TITLE``, ``chapter()``, and optionally
``OBJECTIVES``, ``summary()``, ``exercises()`` (a tuple of :class:`Exercise`) and
``BACK_MATTER`` (``True`` puts the chapter after every other chapter, e.g. the practitioner's
checklist). A chapter body places a figure with ``\gradmathfigure{name}`` where its text
discusses it; figures never placed go to the end of their chapter.

Citations are natbib author-year (``\citet{glorot2010}``, ``\citep{he2015}``; ``\cite`` is
``\citet``) with keys from ``derivations/references.bib``; a key that is not in that file is an
error here, before TeX runs, naming the chapter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradmath.errors import GradmathError

__all__ = [
    "NOTATION",
    "Chapter",
    "Exercise",
    "FigureInfo",
    "assemble",
    "bib_keys",
    "cited_keys",
    "in_order",
    "notation_table",
]

_KEY = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


@dataclass(frozen=True)
class Exercise:
    """One exercise at the end of a chapter, with its solution for the appendix.

    ``key`` is unique in the whole notes (lower case, digits and hyphens, e.g.
    ``"sigmoid-bound-depth"``; the LaTeX labels are ``ex:key`` and ``sol:key``);
    ``question`` and ``solution`` are LaTeX; ``answer`` is the value gradmath computed for the
    numeric answer (float, int, SymPy object), which the tests assert against an independent
    reference. It is not printed: the solution text quotes it.
    """

    key: str
    question: str
    solution: str
    answer: object = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise GradmathError(
                f"Exercise `key` (={self.key!r}) must be lower-case letters, digits and "
                "hyphens, starting with a letter or digit (e.g. 'sigmoid-bound-depth')."
            )
        for name in ("question", "solution"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip():
                raise GradmathError(
                    f"Exercise {self.key!r}: `{name}` (={text!r}) must be non-empty LaTeX."
                )


@dataclass(frozen=True)
class Chapter:
    """What one chapter script gave: ``stem`` is its file name without ``.py``."""

    stem: str
    title: str
    body: str
    objectives: tuple[str, ...] = ()
    summary: tuple[str, ...] = ()
    exercises: tuple[Exercise, ...] = ()
    back_matter: bool = False


@dataclass(frozen=True)
class FigureInfo:
    """One figure as the build saved it: its size in inches decides how it is included."""

    stem: str
    caption: str
    chapter: str
    width_in: float = 0.0
    height_in: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


#: The notation of the notes, one symbol one meaning (the chapter-script contract's list):
#: (LaTeX symbol, meaning). Rendered by :func:`notation_table` in the front matter.
NOTATION: tuple[tuple[str, str], ...] = (
    (r"$L$", r"depth: the number of layers"),
    (r"$l$", r"layer index, $l = 1, \dots, L$"),
    (r"$n_l$", r"width of layer $l$ ($n_0$: the input dimension)"),
    (r"$W^l,\ b^l$", r"weights ($n_l \times n_{l-1}$) and biases of layer $l$"),
    (r"$h^l$", r"pre-activations, $h^l = W^l x^{l-1} + b^l$"),
    (r"$x^l$", r"activations, $x^l = \varphi(h^l)$; $x^0$ is the input"),
    (r"$\varphi$", r"the activation function; $\sigma$ is the logistic sigmoid"),
    (r"$\ell$", r"the loss"),
    (r"$\eta$", r"the learning rate"),
    (r"$\sigma_w^2$", r"weight scale, $\sigma_w^2 = \text{fan\_in}\cdot\operatorname{Var}[W]$"),
    (r"$\sigma_b^2$", r"bias variance, $\operatorname{Var}[b^l_i]$"),
    (r"$q^l$", r"forward second moment, $q^l = \mathbb{E}[(h^l_i)^2]$"),
    (r"$\tilde q^l$",
     r"backward second moment, $\tilde q^l = \mathbb{E}[(\partial\ell/\partial h^l_i)^2]$"),
    (r"$q^*$", r"fixed point of the length map $q^l \mapsto q^{l+1}$"),
    (r"$c^l$", r"correlation of the pre-activations of two inputs at layer $l$"),
    (r"$\chi_1$", r"slope of the correlation map at $c = 1$: the per-layer factor of $\tilde q^l$"),
    (r"$\xi_c$", r"correlation depth scale"),
    (r"$\alpha$",
     r"residual branch scale, $x^{l+1} = x^l + \alpha\,(W^{l+1}\varphi(x^l) + b^{l+1})$"),
    (r"$\lambda_{\mathrm{SELU}},\ \alpha_{\mathrm{SELU}}$", r"the constants of SELU"),
    (r"$B$", r"batch size"),
    (r"$z,\ \mathcal{D}z$", r"a standard normal variable and its measure"),
)  # fmt: skip


def notation_table() -> str:
    """The notation section of the front matter (:data:`NOTATION` as a two-column table that
    may break across pages)."""
    rows = "\n".join(f"{sym} & {meaning} \\\\" for sym, meaning in NOTATION)
    return (
        "\\section*{Notation}\n\\addcontentsline{toc}{section}{Notation}\n"
        "One symbol, one meaning, throughout the notes.\n\n"
        "\\begin{longtable}{@{}lp{0.72\\linewidth}@{}}\n\\toprule\n"
        "symbol & meaning \\\\\n\\midrule\n\\endhead\n"
        f"{rows}\n\\bottomrule\n\\end{{longtable}}\n"
    )


# --------------------------------------------------------------------------- citations

_CITE = re.compile(
    r"\\(?:cite|citet|citep|citealt|citealp|citeauthor|citeyear|citeyearpar|nocite)\*?"
    r"(?:\[[^\]]*\]){0,2}\{([^}]*)\}"
)
_BIB_ENTRY = re.compile(r"^\s*@\s*(\w+)\s*\{\s*([^,\s]+)\s*,", re.M)


def cited_keys(tex: str) -> tuple[str, ...]:
    r"""The BibTeX keys ``tex`` cites (``\cite``, ``\citet``, ``\citep``, ...), in order, once.

    >>> cited_keys(r"as \citet{he2015} and \citep[eq.~12]{glorot2010, he2015} show")
    ('he2015', 'glorot2010')
    """
    keys: dict[str, None] = {}
    for group in _CITE.findall(tex):
        for key in group.split(","):
            if key.strip():
                keys.setdefault(key.strip(), None)
    return tuple(keys)


def bib_keys(bib: str) -> tuple[str, ...]:
    """The entry keys of a BibTeX file's text (``@comment``/``@string``/``@preamble`` skipped)."""
    skip = {"comment", "string", "preamble"}
    return tuple(key for kind, key in _BIB_ENTRY.findall(bib) if kind.lower() not in skip)


def _check_citations(chapters: Sequence[Chapter], known: set[str] | None) -> bool:
    """True when anything is cited; unknown keys raise, naming chapter and key."""
    any_cited = False
    problems = []
    for ch in chapters:
        texts = [ch.body, *ch.objectives, *ch.summary]
        texts += [t for ex in ch.exercises for t in (ex.question, ex.solution)]
        keys = cited_keys("\n".join(texts))
        any_cited = any_cited or bool(keys)
        missing = [k for k in keys if known is None or k not in known]
        if missing:
            problems.append(f"{ch.stem} cites {', '.join(missing)}")
    if problems:
        where = "no derivations/references.bib" if known is None else "derivations/references.bib"
        raise GradmathError(
            f"Citations without an entry in {where}: {'; '.join(problems)}. "
            "Add the works to derivations/references.bib (sorted by key)."
        )
    return any_cited


# --------------------------------------------------------------------------- figures

_PLACE = re.compile(r"\\gradmathfigure\{([^}]*)\}")


def _figure_float(fig: FigureInfo, text_width_in: float) -> str:
    from gradmath.render.latex import figure

    # Natural size when it fits (fonts print at the size they were designed for), else the
    # text width.
    if 0.0 < fig.width_in <= text_width_in:
        width = f"{fig.width_in:.2f}in"
    else:
        width = r"\linewidth"
    return figure(f"figures/{fig.stem}.pdf", fig.caption, label=f"fig:{fig.stem}", width=width)


def _place_figures(
    ch: Chapter, figures: Mapping[str, FigureInfo], placed: dict[str, str], text_width_in: float
) -> str:
    def replace(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name not in figures:
            raise GradmathError(
                f"{ch.stem}: \\gradmathfigure{{{name}}} names no figure script; "
                f"figures are: {', '.join(sorted(figures)) or 'none'}."
            )
        if name in placed:
            raise GradmathError(
                f"{ch.stem}: figure {name!r} is placed twice (first in {placed[name]})."
            )
        placed[name] = ch.stem
        return _figure_float(figures[name], text_width_in)

    return _PLACE.sub(replace, ch.body)


# --------------------------------------------------------------------------- the document


def _objectives(chapters: Sequence[Chapter]) -> str:
    with_obj = [ch for ch in chapters if ch.objectives]
    if not with_obj:
        return ""
    parts = [
        "\\section*{Learning objectives}\n\\addcontentsline{toc}{section}{Learning objectives}\n"
        "After working through a section you should be able to do what its list says.\n"
    ]
    for ch in with_obj:
        items = "\n".join(f"  \\item {o}" for o in ch.objectives)
        parts.append(
            f"\\paragraph{{Section~\\ref{{ch:{ch.stem}}}: {ch.title}}}\n"
            f"\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n"
        )
    return "\n".join(parts)


def _summary(ch: Chapter) -> str:
    if not ch.summary:
        return ""
    items = "\n".join(f"  \\item {s}" for s in ch.summary)
    return f"\\subsection*{{Summary}}\n\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n"


def _exercises(ch: Chapter, solutions: bool) -> str:
    if not ch.exercises:
        return ""
    parts = ["\\subsection{Exercises}"]
    for ex in ch.exercises:
        link = f" \\hfill(Solution: p.~\\pageref{{sol:{ex.key}}}.)" if solutions else ""
        parts.append(
            f"\\begin{{exercise}}\\label{{ex:{ex.key}}}\n{ex.question.strip()}{link}\n"
            "\\end{exercise}"
        )
    return "\n".join(parts) + "\n"


def _solutions(chapters: Sequence[Chapter]) -> str:
    parts = []
    for ch in chapters:
        if not ch.exercises:
            continue
        parts.append(f"\\subsection*{{Section~\\ref{{ch:{ch.stem}}}: {ch.title}}}")
        for ex in ch.exercises:
            parts.append(
                f"\\paragraph{{Solution to Exercise~\\ref{{ex:{ex.key}}}.}}"
                f"\\label{{sol:{ex.key}}}\n"
                f"{ex.solution.strip()}\n"
            )
    if not parts:
        return ""
    return "\\section{Solutions to the exercises}\\label{ch:solutions}\n" + "\n".join(parts) + "\n"


def _check_exercise_keys(chapters: Sequence[Chapter]) -> None:
    seen: dict[str, str] = {}
    for ch in chapters:
        for ex in ch.exercises:
            if ex.key in seen:
                raise GradmathError(
                    f"Exercise key {ex.key!r} is used twice ({seen[ex.key]} and {ch.stem}); "
                    "keys are unique in the whole notes."
                )
            seen[ex.key] = ch.stem


def in_order(chapters: Sequence[Chapter]) -> list[Chapter]:
    """The chapters in the order of the notes: file order, back-matter chapters last."""
    return [c for c in chapters if not c.back_matter] + [c for c in chapters if c.back_matter]


def assemble(
    chapters: Sequence[Chapter],
    figures: Sequence[FigureInfo],
    *,
    title: str,
    author: str,
    date: str,
    version: str,
    solutions: bool = True,
    bibliography: str | None = None,
) -> str:
    r"""``notes.tex``: the whole document.

    Front matter (title, author, date and version; contents; learning objectives collected
    from the chapters; the notation table), then each chapter: its body with
    ``\gradmathfigure{name}`` replaced by the figure, its unplaced figures, its summary and
    its exercises. Chapters flagged ``back_matter`` follow the others. Then the references
    (when anything is cited; ``bibliography`` is the text of ``references.bib``, which must sit
    next to ``notes.tex``) and, unless ``solutions`` is false, the solutions appendix.
    """
    from gradmath.render.latex import TEXT_WIDTH_IN, document, escape

    _check_exercise_keys(chapters)
    known = None if bibliography is None else set(bib_keys(bibliography))
    cites = _check_citations(chapters, known)
    ordered = in_order(chapters)
    by_stem = {f.stem: f for f in figures}
    placed: dict[str, str] = {}
    bodies = {ch.stem: _place_figures(ch, by_stem, placed, TEXT_WIDTH_IN) for ch in ordered}

    # No \clearpage anywhere: parts flow on, so no page ends two-thirds empty.
    parts = [_objectives(ordered), notation_table()]
    stems = {ch.stem for ch in ordered}
    for ch in ordered:
        parts.append(f"% ---- chapter {ch.stem} (derivations/{ch.stem}.py)")
        parts.append(f"\\section{{{ch.title}}}\\label{{ch:{ch.stem}}}\n")
        parts.append(bodies[ch.stem].strip() + "\n")
        for fig in figures:
            if fig.chapter == ch.stem and fig.stem not in placed:
                parts.append(_figure_float(fig, TEXT_WIDTH_IN))
        parts.append(_summary(ch))
        parts.append(_exercises(ch, solutions))
    orphans = [f for f in figures if f.chapter not in stems and f.stem not in placed]
    if orphans:
        parts.append("\\section{More figures}\\label{ch:figures}\n")
        parts.extend(_figure_float(f, TEXT_WIDTH_IN) for f in orphans)
    # Figures may float on into the next chapter (a barrier at every chapter's end would leave
    # a mostly blank page whenever a figure waits); none floats past the last chapter.
    parts.append("\\gradmathfloatbarrier\n")
    if cites:
        parts.append(
            "\\phantomsection\\addcontentsline{toc}{section}{References}\n"
            "\\bibliographystyle{plainnat}\n\\bibliography{references}\n"
        )
    if solutions:
        sol = _solutions(ordered)
        if sol:
            parts.append("\\appendix\n" + sol)
    subtitle = f"{escape(date)}\\\\[0.5ex]\\small gradmath {escape(version)}"
    return document(
        "\n".join(p for p in parts if p),
        title=title,
        author=escape(author),
        date=subtitle,
        pdf_title=title,
        pdf_author=author,
    )
