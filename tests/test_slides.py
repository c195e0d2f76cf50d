"""Every notebook carries its slide structure, and ``course_lib.slides`` keeps it honest.

The rules (each section a slide, every screen within ``SCREEN_LINES`` lines of source and text,
claim verdicts as fragments, the lecturer's prompts as notes, RISE settings) are checked on every
notebook source; the splitting that makes long cells fit is checked never to change a program or
a text; the notes are checked against the lecturer's guide they come from.
"""

import ast
import copy
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from course_lib import slides

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _notebook(*cells):
    """A notebook of ``(cell type, source, slide type or None)`` triples, with the RISE settings."""
    nb = nbformat.v4.new_notebook()
    for kind, source, slide in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if slide:
            cell.metadata["slideshow"] = {"slide_type": slide}
        nb.cells.append(cell)
    nb.metadata["rise"] = dict(slides.RISE_SETTINGS)
    return nb


def _questions(text):
    """The questions of a prompt (each up to its question mark), in any order."""
    return [q.strip() for q in re.findall(r"[^?]*\?|[^?]+$", text) if q.strip()]


def _words(text):
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_keeps_the_slide_rules(source):
    notebook = jupytext.read(source)
    assert slides.problems(notebook, source.name) == []
    kinds = [slides.slide_type(c) for c in notebook.cells]
    sections = [c for c in notebook.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert kinds.count("slide") == len(sections) + 1  # the title and one per section
    shown = slides.screens(notebook)
    assert all(screen.lines <= slides.SCREEN_LINES for screen in shown)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_structure_is_what_the_tool_gives_and_applying_it_again_changes_nothing(source):
    notebook = jupytext.read(source)
    again = slides.structure(copy.deepcopy(notebook))
    assert [(c.source, slides.slide_type(c)) for c in again.cells] == [
        (c.source, slides.slide_type(c)) for c in notebook.cells
    ]


def test_the_lecturers_prompts_are_the_guides_word_for_word():
    guide = (ROOT / "docs" / "teaching.md").read_text()
    for source in SOURCES:
        chapter = source.name[:2]
        plan = re.search(rf"^### {chapter} ·.*?^- \*\*Ask\*\*[^:]*: (.*?)(?=^- \*\*)", guide, re.S | re.M)
        assert plan, f"docs/teaching.md has no Ask prompt for chapter {chapter}"
        notes = " ".join(
            c.source for c in jupytext.read(source).cells if slides.slide_type(c) == "notes"
        )
        notes = " ".join(notes.replace("**Ask:**", " ").replace("(before running this section)", " ").split())
        assert sorted(_questions(notes)) == sorted(_questions(" ".join(plan.group(1).split()))), chapter


def test_problems_names_each_broken_rule():
    good = _notebook(
        ("markdown", "# 99 · Title", "slide"),
        ("code", "import torch", "skip"),
        ("markdown", "## 1 · A section", "slide"),
        ("markdown", "**Ask:** why?", "notes"),
        ("code", "checks.claim('99', 'x', holds=True)", "fragment"),
    )
    assert slides.problems(good) == []

    unsectioned = copy.deepcopy(good)
    unsectioned.cells[2].metadata.pop("slideshow")
    assert any("starts a section" in p for p in slides.problems(unsectioned))

    buried = copy.deepcopy(good)
    buried.cells[0].source += "\n\n## 2 · A section inside the title cell"
    assert any("after its first line" in p for p in slides.problems(buried))

    claim = copy.deepcopy(good)
    claim.cells[4].metadata.pop("slideshow")
    assert any("verdict must be a fragment" in p for p in slides.problems(claim))

    crowded = copy.deepcopy(good)
    crowded.cells.append(nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(slides.SCREEN_LINES))))
    assert any("more than SCREEN_LINES" in p for p in slides.problems(crowded))

    silent = copy.deepcopy(good)
    silent.cells.pop(3)
    assert any("no notes cell" in p for p in slides.problems(silent))

    untitled = copy.deepcopy(good)
    untitled.cells[0].metadata["slideshow"]["slide_type"] = "-"
    assert any("first cell" in p for p in slides.problems(untitled))

    unknown = copy.deepcopy(good)
    unknown.cells[1].metadata["slideshow"]["slide_type"] = "hidden"
    assert any("not one of" in p for p in slides.problems(unknown))


def test_cell_lines_counts_wrapped_text_headings_twice_and_padding():
    cell = nbformat.v4.new_markdown_cell("# Title\n" + "x" * (slides.MARKDOWN_WIDTH + 1) + "\n\nshort")
    assert slides.cell_lines(cell) == 1 + 2 + 2 + 1 + 1
    code = nbformat.v4.new_code_cell("a = 1\n" + "b" * (2 * slides.CODE_WIDTH + 1))
    assert slides.cell_lines(code) == 1 + 1 + 3


def test_split_code_cuts_only_between_statements_that_display_nothing():
    source = "\n".join(
        ["import math", "", "# a comment that belongs to f", "def f(x):"]
        + [f"    y{i} = x + {i}" for i in range(20)]
        + ["    return x", "", "", "model_eval()", "print(f(1))"]
        + [f"z{i} = {i}" for i in range(20)]
        + ["z0 + z1"]
    )
    pieces = slides.split_code(source, cap=25)
    assert len(pieces) > 1
    for piece in pieces:
        ast.parse(piece)
        assert slides._text_lines(piece, markdown=False) <= 25
    for piece in pieces[:-1]:  # a cut never leaves a displayed value at a cell's end
        assert slides._displays_nothing(ast.parse(piece).body[-1])
    assert "model_eval()\nprint(f(1))" in "\n".join(pieces)  # never cut after model_eval()
    assert any("# a comment that belongs to f\ndef f(x):" in p for p in pieces)  # comments stay with their code
    assert _words("\n".join(pieces)) == _words(source)


def test_split_code_leaves_a_cell_it_cannot_cut_safely():
    loop = "for i in range(40):\n" + "\n".join(f"    a{i} = i" for i in range(40))
    assert slides.split_code(loop, cap=10) == [loop]
    assert slides.split_code("def broken(:\n" * 40, cap=10) == ["def broken(:\n" * 40]


def test_split_markdown_cuts_at_paragraphs_never_inside_a_formula_or_code_block():
    formula = "$$\n" + "\n\n".join(f"a_{i}" for i in range(10)) + "\n$$"
    text = "\n\n".join(["intro " * 10, formula, "```python\nx = 1\n\ny = 2\n```", "end"])
    pieces = slides.split_markdown(text, cap=6)
    assert len(pieces) > 1
    assert formula in pieces
    assert any("```python\nx = 1\n\ny = 2\n```" in p for p in pieces)
    assert _words("\n".join(pieces)) == _words(text)


def test_structure_splits_sections_and_long_cells_and_keeps_notes_and_skips():
    long_text = "\n\n".join(f"paragraph {i} " + "word " * 30 for i in range(20))
    nb = _notebook(
        ("markdown", "# 99 · Title\n\nintro\n\n## 1 · First\n\ntext", None),
        ("code", "import torch", None),
        ("markdown", "**Ask:** why?", "notes"),
        ("code", "plumbing()", "skip"),
        ("markdown", long_text, None),
        ("markdown", "**Claim check: it holds.**", None),
        ("code", "checks.claim('99', 'x', holds=True)", None),
        ("markdown", "### A sub-topic", None),
    )
    slides.structure(nb)
    kinds = [(c.source.splitlines()[0][:12], slides.slide_type(c)) for c in nb.cells]
    assert kinds[0] == ("# 99 · Title", "slide") and kinds[1] == ("## 1 · First", "slide")
    assert ("import torch", "skip") in kinds and ("**Ask:** why", "notes") in kinds
    assert ("plumbing()", "skip") in kinds
    assert ("**Claim chec", "subslide") in kinds and ("checks.claim", "fragment") in kinds
    assert ("### A sub-to", "subslide") in kinds
    assert sum(c.source.startswith("paragraph") for c in nb.cells) > 1  # the long text was cut
    assert slides.problems(nb) == []
    assert nb.metadata["rise"] == slides.RISE_SETTINGS
    assert nb.metadata["jupytext"]["notebook_metadata_filter"] == "rise"


def test_the_slide_extensions_are_dependencies():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=]", d)[0] for d in dependencies}
    assert {"jupyterlab-rise", "jupyterlab-slideshow"} <= names


def test_the_command_line_checks_and_counts(tmp_path, capsys):
    assert slides.main(["check", *map(str, SOURCES)]) == 0
    slides.main(["count", str(SOURCES[1])])
    assert re.search(r"01_conv_as_matmul.py: \d+ slides, \d+ screens, \d+ notes cells", capsys.readouterr().out)
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %% [markdown]\n# # 99 · Title\n\n# %% [markdown]\n# ## 1 · Section\n")
    assert slides.main(["check", str(broken)]) == 1
    assert slides.main(["apply", str(broken)]) == 0  # apply gives the structure; notes it cannot invent
    assert any("no notes cell" in p for p in slides.problems(jupytext.read(broken)))
    assert "slide_type" in broken.read_text()
