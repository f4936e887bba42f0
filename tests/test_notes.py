"""The notes build: `gradmath notes` end to end, failures named, no TeX handled, sources found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gradmath
from gradmath.cli import main
from gradmath.render import notes

ROOT = Path(__file__).resolve().parent.parent


def test_full_quick_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "notes"
    assert main(["notes", "--out", str(out), "--quick", "--source", str(ROOT)]) == 0
    message = capsys.readouterr().out
    chapters, figures = notes.discover(ROOT)
    tex = (out / "notes.tex").read_text(encoding="utf-8")
    for path in chapters:
        assert f"\\label{{ch:{path.stem}}}" in tex, path.stem
    for path in figures:
        assert f"\\includegraphics[width=\\linewidth]{{figures/{path.stem}.pdf}}" in tex
        for ext in ("pdf", "png"):
            assert (out / "figures" / f"{path.stem}.{ext}").stat().st_size > 1000
    if notes.tex_engine() is None:
        assert "no PDF" in message and "apt-get install" in message
        pytest.skip("no TeX on PATH: sources checked, PDF not built")
    assert (out / "notes.pdf").stat().st_size > 10_000
    pages = int(re.search(r"\((\d+) pages\)", message).group(1))  # type: ignore[union-attr]
    assert pages >= len(chapters)
    # Every chapter and figure made it into the PDF: TeX resolved each label on a page.
    aux = (out / "notes.aux").read_text()
    for path in chapters:
        assert f"\\newlabel{{ch:{path.stem}}}" in aux
    for path in figures:
        assert f"\\newlabel{{fig:{path.stem}}}" in aux


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
    with pytest.raises(gradmath.GradmathError, match=r"chapter 02_broken") as err:
        notes.build(tmp_path / "out", source=src, pdf=False, jobs=jobs)
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
