"""The chapter and figure scripts: the full quick build (once), every chapter run alone and
compiled on its own, every figure run alone and byte-identical to the build's copy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradmath.cli import main
from gradmath.render import latex, notes

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS, FIGURES = notes.discover(ROOT)
HAVE_TEX = notes.tex_engine() is not None


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`gradmath notes --quick` once for the whole module: (output directory, its message)."""
    out = tmp_path_factory.mktemp("notes")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["notes", "--out", str(out), "--quick", "--source", str(ROOT)])
    assert code == 0
    return out, stdout.getvalue()


def test_full_quick_build(build: tuple[Path, str]) -> None:
    out, message = build
    tex = (out / "notes.tex").read_text(encoding="utf-8")
    for path in CHAPTERS:
        assert f"\\label{{ch:{path.stem}}}" in tex, path.stem
    for path in FIGURES:
        assert f"\\includegraphics[width=\\linewidth]{{figures/{path.stem}.pdf}}" in tex
        for ext in ("pdf", "png"):
            assert (out / "figures" / f"{path.stem}.{ext}").stat().st_size > 1000
    if not HAVE_TEX:
        assert "no PDF" in message and "apt-get install" in message
        pytest.skip("no TeX on PATH: sources checked, PDF not built")
    assert (out / "notes.pdf").stat().st_size > 10_000
    pages = int(re.search(r"\((\d+) pages\)", message).group(1))  # type: ignore[union-attr]
    assert pages >= len(CHAPTERS)
    # Every chapter and figure made it into the PDF (TeX placed each label on a page), and
    # every cross-reference between chapters resolved.
    aux = (out / "notes.aux").read_text()
    for path in CHAPTERS:
        assert f"\\newlabel{{ch:{path.stem}}}" in aux
    for path in FIGURES:
        assert f"\\newlabel{{fig:{path.stem}}}" in aux
    log = (out / "notes.log").read_text(errors="replace")
    assert "undefined references" not in log, re.findall(r"Reference `[^']*'", log)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_alone_and_compiles(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path), "--quick"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "a chapter prints its LaTeX body"
    if not HAVE_TEX:
        pytest.skip("no TeX on PATH")
    tex = tmp_path / f"{path.stem}.tex"
    tex.write_text(latex.document(proc.stdout), encoding="utf-8")
    pdf, pages = notes.compile_pdf(tex)
    assert pdf.exists() and pages


@pytest.mark.parametrize("path", FIGURES, ids=[p.stem for p in FIGURES])
def test_figure_script_follows_the_contract(path: Path) -> None:
    # The build ran every figure's make(); what it cannot see is the script's own entry point.
    module = notes.load_script(path)
    assert module.CHAPTER in {p.stem for p in CHAPTERS}, f"{path.stem}: unknown CHAPTER"
    assert module.CAPTION.strip() and callable(module.make)
    assert "notes.figure_main(make, __file__)" in path.read_text()


def test_a_figure_run_alone_matches_the_build_byte_for_byte(
    tmp_path: Path, build: tuple[Path, str]
) -> None:
    # Another process, the script's own __main__, the same bytes: output is deterministic.
    path = ROOT / "figures" / "clipping_geometry.py"
    proc = subprocess.run(
        [sys.executable, str(path), "--out", str(tmp_path), "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for ext in ("pdf", "png"):
        alone = (tmp_path / f"{path.stem}.{ext}").read_bytes()
        assert alone == (build[0] / "figures" / f"{path.stem}.{ext}").read_bytes(), ext


def test_simulated_figure_is_deterministic(tmp_path: Path, build: tuple[Path, str]) -> None:
    # Seeded Monte Carlo too: the residual figure (theory and simulated networks) again, in
    # this process, gives the build's bytes.
    path = ROOT / "figures" / "residual_alpha.py"
    notes.run_figure(path, tmp_path, quick=True)
    for ext in ("pdf", "png"):
        again = (tmp_path / f"{path.stem}.{ext}").read_bytes()
        assert again == (build[0] / "figures" / f"{path.stem}.{ext}").read_bytes(), ext
