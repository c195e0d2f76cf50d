"""Lecture slides from the notebooks: the slide structure every notebook carries, and its rules.

A lecturer presents a chapter with one of two JupyterLab extensions ``make setup`` installs (see
``docs/teaching.md``, "Presenting"): the deck (``jupyterlab-slideshow``: *Toggle Deck* in the notebook
toolbar), which presents the notebook inside JupyterLab, so code cells and explorers stay live; or
RISE (``jupyterlab-rise``: *Render as Reveal Slideshow*, ``Alt+R``), reveal.js slides on the same
kernel with a speaker view (where, with ipywidgets 8, an explorer is its static figure:
jupyterlab-contrib/rise#119). Both read where each cell goes from its metadata,
``metadata.slideshow.slide_type``, which jupytext keeps in the notebook's ``.py`` source
(``# %% [markdown] slideshow={"slide_type": "slide"}``):

============  ===================================================================================
slide type    used for
============  ===================================================================================
``slide``     the chapter's title and every section (a ``## `` heading): a new slide
``subslide``  a ``### `` heading, a claim check, or the next cell when the screen is full
``fragment``  a claim check's verdict: it appears on the next key press
``-``         the cell continues the screen above it
``skip``      set-up and plumbing (the import cell): run with *Run All*, not shown
``notes``     the lecturer's guide's prompts ("Ask: …"): RISE's speaker view (key ``T``) only
============  ===================================================================================

A *screen* is a ``slide`` or ``subslide`` cell with the ``-`` and ``fragment`` cells after it. The
rule that keeps a screen on a 1280×720 projector is a cap, :data:`SCREEN_LINES`, on the lines of
source and text it shows (:func:`cell_lines`: markdown wrapped at 95 characters, a heading counting
twice, code wrapped at 110, one line of padding per cell). Outputs are not counted: a cell's output
is whatever the kernel prints, so every notebook also sets RISE's ``scroll`` option, and a tall
output scrolls inside its slide instead of being cut off.

:func:`structure` gives a notebook this structure: it splits a markdown cell longer than a screen at
paragraph breaks and a code cell at top-level statements (never after a bare expression, whose
value Jupyter would then display; never an exercise's solution cell), and chooses every slide type
from the rules above; ``notes`` cells and ``skip`` choices already there are kept. :func:`problems`
lists where a notebook breaks the rules (``tests/test_slides.py`` runs it on every notebook).

    python -m course_lib.slides apply notebooks/*.py     # give (or renew) the structure
    python -m course_lib.slides check notebooks/*.py     # the rules; exit status 1 if one is broken
    python -m course_lib.slides count notebooks/*.py     # slides and screens per notebook
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCREEN_LINES",
    "SLIDE_TYPES",
    "RISE_SETTINGS",
    "Screen",
    "cell_lines",
    "slide_type",
    "screens",
    "problems",
    "split_markdown",
    "split_code",
    "structure",
    "main",
]

SCREEN_LINES = 30
"""At most this many lines of source and text on one screen (see :func:`cell_lines`).

Measured in RISE at 1280×720 (``white`` theme): chapter 01's densest screen, 30 such lines (its
§1), is 530 pixels tall, inside the 720 of the screen."""

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
NEW_SCREEN = ("slide", "subslide")
HIDDEN = ("skip", "notes")

RISE_SETTINGS = {"scroll": True, "theme": "white"}
"""The notebook-level RISE options every chapter sets (``metadata.rise``; jupytext keeps them in the
``.py`` header through ``notebook_metadata_filter: rise``): a tall output scrolls inside its slide,
and reveal.js's ``white`` theme, whose fonts ship with it (the default ``simple`` theme asks Google
Fonts for its fonts, which fails offline)."""

MARKDOWN_WIDTH, CODE_WIDTH = 95, 110


def slide_type(cell: Any) -> str:
    """The cell's ``metadata.slideshow.slide_type`` (``-`` when it has none: it continues the screen)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def _set_type(cell: Any, kind: str) -> None:
    cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}


def _text_lines(text: str, markdown: bool) -> int:
    """Lines ``text`` takes on a slide: wrapped at the width of its kind, a markdown heading twice."""
    total = 0
    for line in text.splitlines():
        wrapped = max(1, math.ceil(len(line) / (MARKDOWN_WIDTH if markdown else CODE_WIDTH)))
        total += 2 * wrapped if markdown and line.startswith("#") else wrapped
    return total


def cell_lines(cell: Any) -> int:
    """The lines a cell's source takes on a slide: wrapped text, headings twice, one line of padding."""
    return 1 + _text_lines(cell["source"], cell["cell_type"] == "markdown")


@dataclass
class Screen:
    """One screen of a slideshow: the cell that opens it and the cells shown with it."""

    kind: str  # "slide" or "subslide"
    cells: list[int] = field(default_factory=list)  # notebook indices of the cells it shows
    lines: int = 0
    title: str = ""


def screens(notebook: Any) -> list[Screen]:
    """The screens of ``notebook`` in order (cells before the first slide open an untitled screen)."""
    out: list[Screen] = []
    for i, cell in enumerate(notebook["cells"]):
        kind = slide_type(cell)
        if kind in HIDDEN:
            continue
        if kind in NEW_SCREEN or not out:
            first_line = cell["source"].strip().splitlines()[0] if cell["source"].strip() else ""
            out.append(Screen(kind if kind in NEW_SCREEN else "slide", title=first_line[:80]))
        out[-1].cells.append(i)
        out[-1].lines += cell_lines(cell)
    return out


def _is_section(cell: Any) -> bool:
    return cell["cell_type"] == "markdown" and cell["source"].lstrip().startswith("## ")


def _is_subsection(cell: Any) -> bool:
    return cell["cell_type"] == "markdown" and cell["source"].lstrip().startswith("### ")


def _is_claim_text(cell: Any) -> bool:
    return cell["cell_type"] == "markdown" and cell["source"].lstrip().startswith("**Claim check")


def _is_claim_code(cell: Any) -> bool:
    return cell["cell_type"] == "code" and "checks.claim(" in cell["source"]


def _is_solution(cell: Any) -> bool:
    return "# BEGIN SOLUTION" in cell["source"]


def problems(notebook: Any, name: str = "notebook") -> list[str]:
    """Where ``notebook`` breaks the slide rules, one sentence each (an empty list: it keeps them all)."""
    cells = notebook["cells"]
    found = []
    if not cells or slide_type(cells[0]) != "slide":
        found.append(f"{name}: the first cell (the title) must be a slide")
    for i, cell in enumerate(cells):
        kind = slide_type(cell)
        if kind not in SLIDE_TYPES:
            found.append(f"{name}: cell {i} has slide_type {kind!r}, not one of {SLIDE_TYPES}")
        if cell["cell_type"] == "markdown" and len(_split_at_sections(cell["source"])) > 1:
            found.append(f"{name}: cell {i} has a section heading (## ) after its first line: a section starts a cell")
        if _is_section(cell) and kind != "slide":
            found.append(
                f"{name}: cell {i} ({cell['source'].splitlines()[0][:50]!r}) starts a section: it must be a slide"
            )
        if _is_claim_code(cell) and kind not in ("fragment", "subslide") and not _is_solution(cell):
            found.append(f"{name}: cell {i} states a claim: its verdict must be a fragment")
    for screen in screens(notebook):
        if screen.lines > SCREEN_LINES:
            found.append(
                f"{name}: the screen starting at cell {screen.cells[0]} ({screen.title!r}) shows {screen.lines} "
                f"lines, more than SCREEN_LINES = {SCREEN_LINES}"
            )
    if not any(slide_type(c) == "notes" for c in cells):
        found.append(f"{name}: no notes cell: the lecturer's prompts belong in the speaker view")
    if notebook.get("metadata", {}).get("rise") != RISE_SETTINGS:
        found.append(f"{name}: metadata.rise must be {RISE_SETTINGS}")
    return found


# --------------------------------------------------------------------------- splitting long cells


def _chunks(lines: list[str], cuts: list[int], cap: int, markdown: bool) -> list[str]:
    """``lines`` cut at some of the line numbers ``cuts`` (greedily, as few pieces as possible) into
    pieces of ≤ ``cap`` lines; each piece is the original text, blank lines at its ends removed."""
    bounds = sorted(set(cuts) - {0}) + [len(lines)]
    pieces, start, end = [], 0, 0
    for cut in bounds:
        if end > start and _text_lines("\n".join(lines[start:cut]).strip("\n"), markdown) > cap:
            pieces.append((start, end))
            start = end
        end = cut
    pieces.append((start, end))
    return ["\n".join(lines[a:b]).strip("\n") for a, b in pieces]


def _split_at_sections(source: str) -> list[str]:
    """A markdown ``source`` cut before every ``## `` section heading that is not its first line."""
    pieces: list[list[str]] = [[]]
    for line in source.splitlines():
        if line.startswith("## ") and any(x.strip() for x in pieces[-1]):
            pieces.append([])
        pieces[-1].append(line)
    return ["\n".join(p).strip("\n") for p in pieces]


def split_markdown(source: str, cap: int = SCREEN_LINES - 1) -> list[str]:
    """``source`` cut at paragraph breaks into pieces of ≤ ``cap`` lines (never inside a code block or
    a display formula). One piece when it already fits or cannot be cut."""
    lines, cuts, fenced = source.splitlines(), [], False
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(("```", "$$")) and not (text.endswith("$$") and len(text) > 2):
            fenced = not fenced
        if not text and not fenced:
            cuts.append(i + 1)  # a new paragraph starts after a blank line
    return _chunks(lines, cuts, cap, markdown=True)


def _displays_nothing(statement: ast.stmt) -> bool:
    """True unless ``statement`` is a bare expression whose value Jupyter would display as a cell's last
    line (``print(...)``, ``display(...)`` and ``plt.show()`` return ``None``: they display nothing)."""
    if not isinstance(statement, ast.Expr):
        return True
    call = statement.value
    if not isinstance(call, ast.Call):
        return False
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    return name in ("print", "display", "show")


def split_code(source: str, cap: int = SCREEN_LINES - 1) -> list[str]:
    """``source`` cut between top-level statements into pieces of ≤ ``cap`` lines.

    A piece never ends with a bare expression (``model.eval()``, ``ax.plot(...)``) unless the cell did:
    Jupyter displays the value of a cell's last expression, so such a cut would change the output.
    Comments stay with the statement below them. One piece when it fits or cannot be cut safely."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [source]
    lines = source.splitlines()
    if not tree.body or _text_lines(source, markdown=False) <= cap:
        return [source]
    starts = []  # the first line (0-based) of each statement, with the comments just above it
    for node in tree.body:
        start = node.lineno - 1
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) and node.decorator_list:
            start = node.decorator_list[0].lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        starts.append(start)
    # A cut before statement k is allowed when statement k-1 displays nothing as a cell's last line.
    allowed = [s for k, s in enumerate(starts) if k and _displays_nothing(tree.body[k - 1])]
    pieces = _chunks(lines, allowed, cap, markdown=False)
    for piece in pieces:  # each piece must stand alone
        ast.parse(piece)
    return pieces


# --------------------------------------------------------------------------- giving a notebook its structure


def _new_cell(like: Any, source: str) -> Any:
    cell = type(like)(like)  # nbformat's NotebookNode or a plain dict, as ``like`` is
    cell["source"] = source
    cell["metadata"] = type(like["metadata"])({k: v for k, v in like["metadata"].items() if k != "slideshow"})
    if cell["cell_type"] == "code":
        cell["outputs"], cell["execution_count"] = [], None
    cell.pop("id", None)
    return cell


def structure(notebook: Any) -> Any:
    """Give ``notebook`` its slide structure, in place, and return it (see the module docstring).

    Long cells are split first; then every cell gets its slide type: the title and sections are
    slides, ``### `` headings and claim checks subslides, a claim's verdict a fragment, the set-up
    cell ``skip``, and a cell that would overflow its screen opens a subslide. ``notes`` cells and
    cells already marked ``skip`` keep their type."""
    cells = []
    for whole in notebook["cells"]:
        pieces = _split_at_sections(whole["source"]) if whole["cell_type"] == "markdown" else [whole["source"]]
        cells += [whole] if len(pieces) == 1 else [_new_cell(whole, piece) for piece in pieces]
    notebook["cells"], cells = cells, []
    for cell in notebook["cells"]:
        keep = slide_type(cell) in HIDDEN
        if keep or _is_solution(cell) or cell_lines(cell) <= SCREEN_LINES:
            cells.append(cell)
            continue
        split = split_markdown if cell["cell_type"] == "markdown" else split_code
        pieces = split(cell["source"])
        cells.append(_new_cell(cell, pieces[0]) if len(pieces) > 1 else cell)
        cells += [_new_cell(cell, piece) for piece in pieces[1:]]
    notebook["cells"] = cells

    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    size = 0
    for i, cell in enumerate(cells):
        kind = slide_type(cell)
        if kind in HIDDEN or (i == first_code and "import" in cell["source"]):
            _set_type(cell, kind if kind in HIDDEN else "skip")
            continue
        n = cell_lines(cell)
        if i == 0 or _is_section(cell):
            kind = "slide"
        elif _is_subsection(cell) or _is_claim_text(cell):
            kind = "subslide"
        elif _is_claim_code(cell) and not _is_solution(cell):
            kind = "fragment"
        else:
            kind = "-"
        if kind in ("-", "fragment") and size + n > SCREEN_LINES:
            kind = "subslide"
        size = n if kind in NEW_SCREEN else size + n
        if kind == "-":  # the default: no metadata, so the source stays uncluttered
            cell["metadata"].pop("slideshow", None)
        else:
            _set_type(cell, kind)
    notebook.setdefault("metadata", {})["rise"] = dict(RISE_SETTINGS)
    header = notebook["metadata"].setdefault("jupytext", {})
    header["notebook_metadata_filter"] = "rise"
    cell_filter = header.get("cell_metadata_filter")  # jupytext's "-all" for a source without cell metadata
    if cell_filter is not None and "slideshow" not in cell_filter:
        header["cell_metadata_filter"] = "slideshow," + cell_filter
    return notebook


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``apply``, ``check`` or ``count`` the slide structure of jupytext notebook sources."""
    import jupytext

    parser = argparse.ArgumentParser(prog="python -m course_lib.slides", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["apply", "check", "count"])
    parser.add_argument("paths", nargs="+", type=Path, help="notebook sources (notebooks/NN_topic.py)")
    args = parser.parse_args(argv)
    broken = []
    for path in args.paths:
        notebook = jupytext.read(path)
        if args.action == "apply":
            jupytext.write(structure(notebook), path, fmt="py:percent")
        elif args.action == "count":
            shown = screens(notebook)
            slides = sum(s.kind == "slide" for s in shown)
            notes = sum(slide_type(c) == "notes" for c in notebook.cells)
            print(f"{path.name}: {slides} slides, {len(shown)} screens, {notes} notes cells")
        broken += problems(notebook, path.name)
    for line in broken:
        print(line)
    return 1 if broken and args.action == "check" else 0


if __name__ == "__main__":
    sys.exit(main())
