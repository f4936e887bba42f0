"""The notes build never loses a file: it refuses folders it did not write, writes atomically,
survives a corrupt cache, and stops promptly on Ctrl-C leaving the output folder as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gradmath
from gradmath.cli import main
from gradmath.render import notes
from gradmath.render.files import atomic_path, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
GOOD = 'TITLE = "Good"\n\ndef chapter(quick=False):\n    return "Fine."\n'
BROKEN = 'TITLE = "Broken"\n\ndef chapter(quick=False):\n    return str(1 / 0)\n'
SLEEPY = 'import time\nTITLE = "Slow"\n\ndef chapter(quick=False):\n    time.sleep(60)\n'
# TeX that never ends (an empty loop): the build is interrupted while LaTeX runs.
ENDLESS_TEX = 'TITLE = "Loop"\n\ndef chapter(quick=False):\n    return r"\\loop\\iftrue\\repeat"\n'


def _source(root: Path, chapters: dict[str, str]) -> Path:
    (root / "derivations").mkdir(parents=True)
    (root / "figures").mkdir()
    for stem, body in chapters.items():
        (root / "derivations" / f"{stem}.py").write_text(body)
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _old_build(out: Path) -> dict[str, bytes]:
    """A folder as an earlier build left it (marked), with recognisable old contents."""
    (out / "figures").mkdir(parents=True)
    (out / notes.MARKER).write_text("marked\n")
    (out / "notes.tex").write_text("old tex\n")
    (out / "notes.pdf").write_bytes(b"%PDF old")
    (out / "figures" / "old.pdf").write_bytes(b"%PDF old figure")
    return _snapshot(out)


# --------------------------------------------------------------------------- refusals


def _unmarked(tmp: Path) -> Path:
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "notes.tex").write_text("my own notes\n")
    return folder


def _a_file(tmp: Path) -> Path:
    path = tmp / "a_file"
    path.write_text("mine\n")
    return path


@pytest.mark.parametrize(
    ("make_out", "match"),
    [
        (lambda tmp: "", r"`out` \(=''\) must be a non-empty path"),
        (lambda tmp: "   ", r"must be a non-empty path"),
        (_a_file, r"is a file, not a folder"),
        (lambda tmp: "/proc/gradmath_notes_x", r"Cannot use `out`"),
        (lambda tmp: tmp / "a_file" / "sub", r"Cannot use `out`|is a file"),
        (_unmarked, r"did not write .*--force"),
    ],
    ids=["empty", "blank", "file", "proc", "below-a-file", "unmarked"],
)
def test_bad_out_is_refused_and_nothing_is_touched(tmp_path: Path, make_out, match) -> None:  # type: ignore[no-untyped-def]
    src = _source(tmp_path / "src", {"01_good": GOOD})
    _a_file(tmp_path)
    out = make_out(tmp_path)
    before = _snapshot(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # an empty --out must not mean "here"
    try:
        with pytest.raises(gradmath.GradmathError, match=match):
            notes.build(out, source=src, pdf=False, jobs=1)
    finally:
        os.chdir(cwd)
    assert _snapshot(tmp_path) == before


def test_cli_refusals_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _source(tmp_path / "src", {"01_good": GOOD})
    for out in ("", str(_a_file(tmp_path)), "/proc/x", str(_unmarked(tmp_path))):
        code = main(["notes", "--out", out, "--source", str(src), "--no-pdf"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, (out, err)
        assert err.startswith("gradmath notes: error: ")


def test_force_and_marker(tmp_path: Path) -> None:
    src = _source(tmp_path / "src", {"01_good": GOOD})
    mine = _unmarked(tmp_path)
    (mine / "keep.txt").write_text("untouched\n")
    result = notes.build(mine, source=src, pdf=False, jobs=1, force=True)
    assert "Fine." in result.tex.read_text() and (mine / "keep.txt").read_text() == "untouched\n"
    assert (mine / notes.MARKER).is_file()
    # Marked now: a second build needs no --force.
    notes.build(mine, source=src, pdf=False, jobs=1)
    # A new folder (parents included) and an empty one are fine without --force.
    for out in (tmp_path / "new" / "deep", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        assert notes.build(out, source=src, pdf=False, jobs=1).tex.is_file()
    assert not list(tmp_path.rglob(".gradmath-staging-*"))


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"chapter:01_good": "x", "figure:a": [1]}', "[1, 2]", '{"a": NaN}', "\xff\xfe"],
    ids=["syntax", "wrong-types", "list", "nan", "binary"],
)
def test_corrupt_timings_never_break_a_build(tmp_path: Path, content: str) -> None:
    src = _source(tmp_path / "src", {"01_good": GOOD})
    out = tmp_path / "out"
    out.mkdir()
    (out / notes.MARKER).write_text("marked\n")
    (out / "timings.json").write_text(content, encoding="latin-1")
    notes.build(out, source=src, pdf=False, jobs=1)
    assert set(json.loads((out / "timings.json").read_text())) == {"chapter:01_good"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_build_leaves_the_folder_as_it_was(tmp_path: Path, jobs: int) -> None:
    src = _source(tmp_path / "src", {"01_good": GOOD, "02_broken": BROKEN})
    out = tmp_path / "out"
    before = _old_build(out)
    with pytest.raises(gradmath.GradmathError, match="02_broken"):
        notes.build(out, source=src, pdf=False, jobs=jobs)
    assert _snapshot(out) == before


def test_atomic_write_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "f.txt", "old")
    with pytest.raises(KeyboardInterrupt), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["f.txt"]
    with pytest.raises(gradmath.GradmathError, match="is a directory"), atomic_path(tmp_path):
        pass


# --------------------------------------------------------------------------- Ctrl-C


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Its own session, so the test can send SIGINT to the whole group, as a terminal does.
    return subprocess.Popen(
        [sys.executable, "-m", "gradmath", "notes", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never reached the point to interrupt"
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """Ctrl-C to the process group; (seconds until exit, stderr)."""
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return time.monotonic() - sent, err


def _processes_in(folder: Path) -> list[str]:
    """Command lines of processes whose working directory is inside ``folder`` (Linux)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if str(Path(os.readlink(proc / "cwd"))).startswith(str(folder)):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def _check_interrupted(proc: subprocess.Popen[str], out: Path, before: dict[str, bytes]) -> None:
    seconds, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert err.strip() == "gradmath notes: interrupted", err
    # Prompt: the workers and TeX are killed, not waited for (was 5-10 s). Generous for load.
    assert seconds < 5.0, seconds
    assert _snapshot(out) == before  # no partial file, no new file beside old ones
    assert not list(out.glob(".gradmath-staging-*"))
    assert not _processes_in(out)


@pytest.mark.slow
def test_ctrl_c_during_a_real_build(tmp_path: Path) -> None:
    """The repository's own notes, interrupted while the workers are writing figures."""
    out = tmp_path / "out"
    before = _old_build(out)
    proc = _start(["--out", str(out), "--quick", "--source", str(ROOT)], tmp_path)
    _wait_for(lambda: any(out.glob(".gradmath-staging-*/figures/*.p*")), proc)
    _check_interrupted(proc, out, before)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_while_a_script_runs(tmp_path: Path, jobs: str) -> None:
    src = _source(tmp_path / "src", {"01_good": GOOD, "02_slow": SLEEPY})
    out = tmp_path / "out"
    before = _old_build(out)
    proc = _start(["--out", str(out), "--source", str(src), "--jobs", jobs], tmp_path)
    _wait_for(lambda: any(out.glob(".gradmath-staging-*")), proc)
    time.sleep(1.5)  # let the workers start and the sleeping chapter begin
    _check_interrupted(proc, out, before)


@pytest.mark.slow
def test_ctrl_c_while_latex_runs(tmp_path: Path) -> None:
    if notes.tex_engine() is None:
        pytest.skip("no TeX on PATH")
    src = _source(tmp_path / "src", {"01_loop": ENDLESS_TEX})
    out = tmp_path / "out"
    before = _old_build(out)
    proc = _start(["--out", str(out), "--source", str(src), "--jobs", "1"], tmp_path)
    _wait_for(lambda: any(out.glob(".gradmath-staging-*/notes.log")), proc)
    _check_interrupted(proc, out, before)
