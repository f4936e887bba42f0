"""The notes build: `gradmath notes` end to end, failures named, no TeX handled, sources found."""

from __future__ import annotations

import os
from pathlib import Path

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
