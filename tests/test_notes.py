"""The notes build: `gradmath notes` end to end, failures named, no TeX handled, sources found."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

import gradmath
from gradmath.cli import main
from gradmath.render import notes

ROOT = Path(__file__).resolve().parent.parent


def _source(tmp_path: Path, chapters: dict[str, str]) -> Path:
    (tmp_path / "derivations").mkdir()
    (tmp_path / "figures").mkdir()
    for stem, body in chapters.items():
        (tmp_path / "derivations" / f"{stem}.py").write_text(body)
    return tmp_path


GOOD = 'TITLE = "Good"\n\ndef chapter(quick=False):\n    return "Fine."\n'
BROKEN = 'TITLE = "Broken"\n\ndef chapter(quick=False):\n    return str(1 / 0)\n'


@pytest.mark.parametrize("jobs", [1, 2])
def test_failing_chapter_is_named(tmp_path: Path, jobs: int) -> None:
    src = _source(tmp_path, {"01_good": GOOD, "02_broken": BROKEN})
    env = dict(os.environ)
    with pytest.raises(gradmath.GradmathError, match=r"chapter 02_broken") as err:
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=jobs)
    assert dict(os.environ) == env  # the workers' BLAS thread setting does not leak
    assert "ZeroDivisionError" in str(err.value) and "01_good" not in str(err.value).split(":")[0]


def test_cli_reports_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _source(tmp_path, {"01_broken": BROKEN})
    code = main(["notes", "--out", str(tmp_path / "o"), "--source", str(src), "--jobs", "1"])
    assert code == 2 and "01_broken" in capsys.readouterr().err


def test_script_contract_is_checked(tmp_path: Path) -> None:
    src = _source(tmp_path, {"01_no_title": "def chapter(quick=False):\n    return 'x'\n"})
    with pytest.raises(gradmath.GradmathError, match=r"01_no_title.*TITLE"):
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=1)


def test_without_tex_sources_are_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notes, "tex_engine", lambda: None)
    src = _source(tmp_path, {"01_good": GOOD})
    result = notes.build(tmp_path / "out", source=src, jobs=1)
    assert result.pdf is None and result.tex.exists()
    assert "no PDF" in result.message and notes.TEX_PACKAGES in result.message
    assert "Fine." in result.tex.read_text()


def test_source_not_found(tmp_path: Path) -> None:
    with pytest.raises(gradmath.GradmathError, match="--source DIR"):
        notes.find_source(tmp_path)
    assert notes.find_source(ROOT) == ROOT


def test_bad_jobs(tmp_path: Path) -> None:
    src = _source(tmp_path, {"01_good": GOOD})
    with pytest.raises(gradmath.GradmathError, match="jobs"):
        notes.build(tmp_path / "out", source=src, jobs=0)


# --------------------------------------------------------------------------- the contract's parts

RICH = r"""
from gradmath.render.notes import Exercise

TITLE = "Rich"
OBJECTIVES = ("State the bound $\\sigma' \\leq 1/4$.", "Cite a paper.")


def chapter(quick=False):
    return "Body as \\citet{glorot2010} show.\n\n\\gradmathfigure{figa}\n\nMore text."


def summary(quick=False):
    return ("The derivative is at most $1/4$.",)


def exercises(quick=False):
    return (Exercise("rich-one", "What is $2+2$?", "It is $4$.", answer=4),
            Exercise("rich-two", "And $3 \\cdot 3$?", "$9$, see \\citep{he2015}.", answer=9))
"""
BACK = 'TITLE = "Checklist"\nBACK_MATTER = True\n\ndef chapter(quick=False):\n    return "Check."\n'
FIGURE = r"""
CHAPTER = "{chapter}"
CAPTION = "Caption of {name}."


def make(quick=False):
    from gradmath.render import figures
    fig, axes = figures.new_figure(figsize=(4.0, 2.5))
    axes[0, 0].plot([0, 1], [0, 1], label="line")
    return fig
"""
BIB = """@article{glorot2010,
  author = {Glorot, Xavier and Bengio, Yoshua}, title = {Understanding}, journal = {J},
  year = {2010},
}
@article{he2015,
  author = {He, Kaiming}, title = {Delving}, journal = {J}, year = {2015},
}
"""


def _rich_source(tmp_path: Path, *, bib: str | None = BIB) -> Path:
    src = _source(tmp_path, {"01_rich": RICH, "02_good": GOOD, "09_checklist": BACK})
    for name, chapter in (("figa", "01_rich"), ("figb", "01_rich"), ("figc", "99_none")):
        (src / "figures" / f"{name}.py").write_text(FIGURE.format(chapter=chapter, name=name))
    if bib is not None:
        (src / "derivations" / "references.bib").write_text(bib)
    return src


def test_contract_parts_are_rendered(tmp_path: Path) -> None:
    src = _rich_source(tmp_path)
    result = notes.build(tmp_path / "out", source=src, pdf=False, jobs=1, author="A. Lecturer")
    tex = result.tex.read_text()
    # Front matter: author, version, objectives collected with their section, notation.
    assert r"\author{A. Lecturer}" in tex and f"gradmath {gradmath.__version__}" in tex
    assert r"\paragraph{Section~\ref{ch:01_rich}: Rich}" in tex
    assert "State the bound" in tex.split(r"\section{Rich}")[0]
    assert r"$\tilde q^l$" in tex and r"$\ell$ & the loss" in tex
    assert r"pdfauthor={A. Lecturer}" in tex and "pdftitle={Vanishing and exploding" in tex
    # The figure is where the text places it; the unplaced one at the end of its chapter
    # before the summary; the orphan in a last section; the back-matter chapter after all.
    rich = tex.split(r"\section{Rich}")[1].split(r"\section{Good}")[0]
    assert rich.index("Body as") < rich.index("figures/figa.pdf") < rich.index("More text.")
    assert rich.index("More text.") < rich.index("figures/figb.pdf") < rich.index("Summary")
    assert rich.index("Summary") < rich.index(r"\subsection{Exercises}")
    assert r"\gradmathfigure" not in rich
    assert tex.index(r"\section{Good}") < tex.index(r"\section{Checklist}")
    assert tex.index(r"\section{Checklist}") < tex.index(r"\section{More figures}")
    # Natural size when it fits the text width: fonts print at design size.
    assert r"\includegraphics[width=4.00in]{figures/figa.pdf}" in tex
    # Exercises, solutions appendix, bibliography copied next to notes.tex.
    assert r"\begin{exercise}\label{ex:rich-one}" in tex and r"\label{sol:rich-two}" in tex
    assert tex.index(r"\bibliography{references}") < tex.index(r"\appendix")
    assert (result.out / "references.bib").read_text() == BIB


def test_no_solutions_leaves_the_appendix_out(tmp_path: Path) -> None:
    src = _rich_source(tmp_path)
    code = main(["notes", "--out", str(tmp_path / "o"), "--source", str(src), "--jobs", "1",
                 "--no-pdf", "--no-solutions"])  # fmt: skip
    tex = (tmp_path / "o" / "notes.tex").read_text()
    assert code == 0 and r"\begin{exercise}" in tex
    assert "It is $4$" not in tex and r"\appendix" not in tex and "sol:" not in tex


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.replace("glorot2010} show", "nobody1999} show"), r"01_rich cites nobody1999"),
        (lambda s: s.replace("{figa}", "{figx}"), r"gradmathfigure\{figx\} names no figure"),
        (lambda s: s.replace("More text.", r"\\gradmathfigure{figa}"), "placed twice"),
        (lambda s: s.replace('"rich-two"', '"rich-one"'), "'rich-one' is used twice"),
        (lambda s: s.replace('"rich-two"', '"Rich two"'), "lower-case letters"),
        (lambda s: s.replace('"It is $4$."', '""'), "solution"),
        (lambda s: s.replace('OBJECTIVES = (', "OBJECTIVES = (1, "), "OBJECTIVES must be"),
    ],
)  # fmt: skip
def test_contract_errors_name_the_problem(tmp_path: Path, edit: Any, match: str) -> None:
    src = _rich_source(tmp_path)
    path = src / "derivations" / "01_rich.py"
    path.write_text(edit(path.read_text()))
    with pytest.raises(gradmath.GradmathError, match=match):
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=1)


def test_citations_need_the_bib_file(tmp_path: Path) -> None:
    src = _rich_source(tmp_path, bib=None)
    with pytest.raises(gradmath.GradmathError, match=r"no derivations/references\.bib"):
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=1)


def test_references_bib_covers_what_the_notes_cite() -> None:
    from gradmath.render.book import bib_keys

    bib = (ROOT / "derivations" / "references.bib").read_text(encoding="utf-8")
    keys = bib_keys(bib)
    assert list(keys) == sorted(keys), "keep references.bib sorted by key"
    assert len(set(keys)) == len(keys)
    # The works the theory and issue 12 cite (author-year keys of the contract).
    for key in ("ioffe2015", "pascanu2013", "hochreiter1997", "ba2016", "zhang2019",
                "bachlechner2020", "de2020", "micikevicius2018", "klambauer2017", "glorot2010",
                "he2015", "lecun1998", "saxe2014", "pennington2017", "pennington2018",
                "xiao2018", "hanin2018", "hanin2019", "roberts2022", "poole2016",
                "schoenholz2017", "yang2017", "yang2019", "cho2009", "williams1997", "nair2010",
                "maas2013", "clevert2016", "hendrycks2016", "krogh1992", "loshchilov2019",
                "bengio1994"):  # fmt: skip
        assert key in keys, key
    for entry in bib.split("\n@")[1:]:
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", entry, re.M), (entry.split(",")[0], field)


def test_source_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert notes.source_date(tmp_path) == 86400
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(gradmath.GradmathError, match="SOURCE_DATE_EPOCH"):
        notes.source_date(tmp_path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # 8-pt fonts in a figure 9 in wide print at 8·6.30/9 = 5.6 pt in the notes.
        (lambda s: s.replace("(4.0, 2.5)", "(9.0, 2.5)"),
         r"would print below 8 pt .*printed at 0\.70x.*'0\.0' at 5\.6 pt"),
        (lambda s: s.replace('label="line")', 'label="line")\n    axes[0, 0].set_title("t", '
                             'fontsize=6)'), r"'t' at 6\.0 pt"),
    ],
)  # fmt: skip
def test_figure_text_prints_at_8pt_or_more(tmp_path: Path, edit: Any, match: str) -> None:
    src = _rich_source(tmp_path)
    path = src / "figures" / "figa.py"
    path.write_text(edit(path.read_text()))
    with pytest.raises(gradmath.GradmathError, match=match):
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=1)
