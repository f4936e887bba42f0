"""The chapter and figure scripts: the full quick build (once), every chapter run alone and
compiled on its own, every figure run alone and byte-identical to the build's copy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
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
        assert re.search(rf"\\includegraphics\[width=[^]]+\]{{figures/{path.stem}\.pdf}}", tex)
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
    assert "undefined citations" not in log, re.findall(r"Citation `[^']*'", log)
    # Settled: the last run asked for no other (a reference, a citation, a table's widths).
    # (not just "Rerun": rerunfilecheck's banner says "Rerun checks for auxiliary files")
    assert not re.search(r"Rerun (to get|LaTeX)", log), "LaTeX stopped a run short"


def _tex_only(build: tuple[Path, str]) -> Path:
    if not HAVE_TEX:
        pytest.skip("no TeX on PATH")
    return build[0]


def test_no_overfull_boxes(build: tuple[Path, str]) -> None:
    # Nothing prints into the margin: TeX reports every line or table wider than the text.
    log = (_tex_only(build) / "notes.log").read_text(errors="replace")
    overfull = re.findall(r"^Overfull \\[hv]box .*$", log, flags=re.M)
    assert not overfull, overfull


def test_pdf_metadata(build: tuple[Path, str]) -> None:
    pdf = (_tex_only(build) / "notes.pdf").read_bytes()
    for key, value in (("Title", notes.TITLE), ("Author", notes.AUTHOR)):
        assert f"/{key}({value})".replace(" ", "\\040").encode() in pdf, key
    # The date is the source's (SOURCE_DATE_EPOCH or the last commit), not the build's.
    epoch = notes.source_date(ROOT)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch))
    assert re.search(rb"/CreationDate\s*\(D:" + stamp.encode(), pdf)


def _page_images(pdf: Path, tmp_path: Path) -> list[np.ndarray]:
    """Each page of ``pdf`` as a grey image (pdftoppm at 20 dpi, binary PGM)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("no pdftoppm (Debian: poppler-utils) on PATH")
    subprocess.run(["pdftoppm", "-gray", "-r", "20", str(pdf), str(tmp_path / "p")], check=True)
    pages = []
    for path in sorted(tmp_path.glob("p-*.pgm")):
        data = path.read_bytes()
        magic, width, height, _maxval, pixels = data.split(maxsplit=4)
        assert magic == b"P5"
        pages.append(np.frombuffer(pixels, np.uint8).reshape(int(height), int(width)))
    return pages


def test_no_mostly_blank_pages(build: tuple[Path, str], tmp_path: Path) -> None:
    # Every page but the last is printed at least halfway down its text block: no page ends
    # early because a float or a page break pushed the rest away.
    pages = _page_images(_tex_only(build) / "notes.pdf", tmp_path)
    short = []
    for number, page in enumerate(pages[:-1], start=1):
        h = page.shape[0]
        body = page[int(0.09 * h) : int(0.88 * h)]  # the text block, without the page number
        inked = np.nonzero((body < 200).any(axis=1))[0]
        reach = (inked.max() + 1) / body.shape[0] if inked.size else 0.0
        if reach < 0.5:
            short.append((number, round(float(reach), 2)))
    assert not short, f"pages (number, fraction printed): {short}"


def test_pdf_is_byte_reproducible(
    build: tuple[Path, str], tmp_path: Path, same_bytes: Callable[[Path, Path], None]
) -> None:
    # TeX again on the same sources, in another directory: the same bytes.
    out = _tex_only(build)
    again = tmp_path / "again"
    shutil.copytree(out / "figures", again / "figures")
    for name in ("notes.tex", "references.bib"):
        shutil.copy2(out / name, again / name)
    pdf, _ = notes.compile_pdf(again / "notes.tex", epoch=notes.source_date(ROOT))
    same_bytes(pdf, out / "notes.pdf")


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
    tmp_path: Path, build: tuple[Path, str], same_bytes: Callable[[Path, Path], None]
) -> None:
    # Another process, the script's own __main__, the same bytes: output is deterministic.
    path = ROOT / "figures" / "clipping_geometry.py"
    proc = subprocess.run(
        [sys.executable, str(path), "--out", str(tmp_path), "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for ext in ("pdf", "png"):
        same_bytes(tmp_path / f"{path.stem}.{ext}", build[0] / "figures" / f"{path.stem}.{ext}")


def test_simulated_figure_is_deterministic(
    tmp_path: Path, build: tuple[Path, str], same_bytes: Callable[[Path, Path], None]
) -> None:
    # Seeded Monte Carlo too: the residual figure (theory and simulated networks) again, in
    # this process, gives the build's bytes.
    path = ROOT / "figures" / "residual_alpha.py"
    notes.run_figure(path, tmp_path, quick=True)
    for ext in ("pdf", "png"):
        same_bytes(tmp_path / f"{path.stem}.{ext}", build[0] / "figures" / f"{path.stem}.{ext}")


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_companion_notebook_runs(path: Path, build: tuple[Path, str]) -> None:
    # Each chapter's notebook, executed in a fresh kernel, reproduces the chapter: no cell
    # fails, every figure of the chapter is drawn, and the summary it prints is the PDF's.
    import nbformat
    from nbclient import NotebookClient

    out = build[0]
    nb = nbformat.read(out / "notebooks" / f"{path.stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(out)}}).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    figures = [f for f in FIGURES if notes.load_script(f).CHAPTER == path.stem]
    assert len(images) == len(figures), (path.stem, [f.stem for f in figures])
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    tex = (out / "notes.tex").read_text(encoding="utf-8")
    points = [ln[2:] for ln in printed.splitlines() if ln.startswith("- ")]
    assert all(point in tex for point in points)  # the same numbers as the PDF
