"""A companion Jupyter notebook per chapter, generated from the chapter and figure scripts.

A chapter script and its figure scripts use only gradmath's public API, so their own code is
the best notebook: each top-level block becomes a cell (the module docstring a Markdown
cell; the ``if __name__ == "__main__"`` block is left out), followed by cells that print the
chapter's numbers (its summary, its exercises' answers, its LaTeX body) and draw each of
its figures. Running the notebook reproduces that chapter of the notes.

The notebooks are plain nbformat-4 JSON written without any Jupyter package, so ``gradmath
notes`` needs none; the tests validate them with ``nbformat`` and execute them with
``nbclient``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["notebook", "script_cells", "write_notebooks"]

_NOTES_TITLE = "Vanishing and exploding gradients"


def _cell(kind: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source.strip("\n")}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def script_cells(source: str) -> list[dict[str, Any]]:
    """The cells of one script: its docstring as Markdown, then one code cell per function or
    class and one per run of other top-level statements (imports, constants), comments kept
    with the code that follows them; the ``__main__`` block and ``from __future__`` imports
    are left out (a notebook is not run as a script)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    cells: list[dict[str, Any]] = []
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        cells.append(_cell("markdown", first.value.value.strip()))
        body = body[1:]
    groups: list[list[ast.stmt]] = []
    for node in body:
        if _is_main_guard(node):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        is_def = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        last = groups[-1] if groups else None
        if last and not is_def and not isinstance(last[-1], _DEFS):
            last.append(node)
        else:
            groups.append([node])
    end_of_previous = first.end_lineno if cells and first is not None and first.end_lineno else 0
    for group in groups:
        start = min(getattr(d, "lineno", group[0].lineno) for d in _decorated(group[0]))
        # Comments right above a block belong to it.
        while start - 1 > end_of_previous and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        end = group[-1].end_lineno or group[-1].lineno
        cells.append(_cell("code", "\n".join(lines[start - 1 : end])))
        end_of_previous = end
    return cells


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _decorated(node: ast.stmt) -> list[Any]:
    return [node, *getattr(node, "decorator_list", [])]


def _markdown_list(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def notebook(
    number: int,
    chapter_path: Path,
    figure_paths: Sequence[Path],
    *,
    title: str,
    objectives: Sequence[str] = (),
    quick: bool = False,
) -> dict[str, Any]:
    """The companion notebook (nbformat 4, as a dict) of one chapter and its figures."""
    module = ast.parse(chapter_path.read_text(encoding="utf-8"))
    defined = {n.name for n in module.body if isinstance(n, _DEFS)}
    intro = (
        f"# {number}. {title}\n\n"
        f"Companion notebook of Section {number} of the lecture notes *{_NOTES_TITLE}*, "
        f"generated from `derivations/{chapter_path.name}` and its figure scripts. It runs "
        "their code, which uses only gradmath's public API, and prints the section's numbers "
        "and draws its figures."
    )
    if objectives:
        intro += "\n\n**After this section you should be able to:**\n\n" + _markdown_list(
            objectives
        )
    cells = [
        _cell("markdown", intro),
        _cell(
            "code",
            "%matplotlib inline\n"
            f"QUICK = {bool(quick)}  # True: the small Monte-Carlo budget of `gradmath notes "
            "--quick`",
        ),
        _cell("markdown", f"## The chapter's code (`derivations/{chapter_path.name}`)"),
        *script_cells(chapter_path.read_text(encoding="utf-8")),
        _cell("markdown", "## The chapter's numbers"),
    ]
    if "summary" in defined:
        cells.append(_cell("code", 'for point in summary(quick=QUICK):\n    print("-", point)'))
    if "exercises" in defined:
        cells.append(
            _cell(
                "code",
                "# The numeric answers of the exercises (their solutions quote them).\n"
                "for ex in exercises(quick=QUICK):\n    print(ex.key, '=', ex.answer)",
            )
        )
    body = "# The LaTeX body of the section, every number in it computed above.\n"
    cells.append(_cell("code", body + "print(chapter(quick=QUICK))"))
    for path in figure_paths:
        cells.append(_cell("markdown", f"## Figure `{path.stem}` (`figures/{path.name}`)"))
        cells.extend(script_cells(path.read_text(encoding="utf-8")))
        cells.append(_cell("code", "make(quick=QUICK)"))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebooks(
    out_dir: Path,
    chapters: Sequence[tuple[int, Path, str, Sequence[str], Sequence[Path]]],
    *,
    quick: bool = False,
) -> tuple[Path, ...]:
    """Write ``out_dir/NN_name.ipynb`` for each chapter ``(section number, script, title,
    objectives, figure scripts)``. Cell ids are numbered, not random, so the same scripts give
    the same files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, path, title, objectives, figs in chapters:
        nb = notebook(number, path, figs, title=title, objectives=objectives, quick=quick)
        for i, cell in enumerate(nb["cells"]):
            cell["id"] = f"{path.stem.replace('_', '-')}-{i}"
        target = out_dir / f"{path.stem}.ipynb"
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return tuple(written)
