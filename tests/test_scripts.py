"""Every chapter script runs alone and its LaTeX compiles on its own; every figure script runs
alone and is reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gradmath.render import latex, notes

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS, FIGURES = notes.discover(ROOT)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_alone_and_compiles(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path), "--quick"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "a chapter prints its LaTeX body"
    if notes.tex_engine() is None:
        pytest.skip("no TeX on PATH")
    tex = tmp_path / f"{path.stem}.tex"
    tex.write_text(latex.document(proc.stdout), encoding="utf-8")
    pdf, pages = notes.compile_pdf(tex)
    assert pdf.exists() and pages


@pytest.mark.parametrize("path", FIGURES, ids=[p.stem for p in FIGURES])
def test_figure_script_runs_alone_and_is_deterministic(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path), "--out", str(tmp_path / "a"), "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert set(first) == {f"{path.stem}.pdf", f"{path.stem}.png"}
    notes.run_figure(path, tmp_path / "b", quick=True)
    second = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert first == second
