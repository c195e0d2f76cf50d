"""Student and instructor editions, built from one source.

The sources in ``notebooks/`` are the instructor edition: every reference solution sits between a
``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line. The student edition replaces each such
block by ``raise NotImplementedError("your code here")`` at the same indentation, so that the
learner's cell runs, the checker that follows says "not done yet", and nothing else changes.

    python -m course_lib.editions student build/student

The HTML edition is for readers without a kernel: every notebook executed in the quick profile and
rendered by nbconvert, with an index page (chapter list, objectives, links). Explorers are shown as
the static figure they carry (``image/png``), never as an empty "Loading widget..." box.

    python -m course_lib.editions site build/site
"""

import contextlib
import html
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import jupytext
import nbformat

from . import claims as claims_mod
from .checks import read_claims

__all__ = ["strip_solutions", "notebook_sources", "build_student", "static_outputs", "first_markdown",
           "execute_notebook", "environment", "copy_mathjax", "render_page", "render_index", "build_site", "main"]

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'


def strip_solutions(source: str, name: str = "<source>") -> str:
    """``source`` with every solution block replaced by the stub (a ``ValueError`` if unbalanced)."""
    out, inside, opened_at = [], False, None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{name}:{number}: '{BEGIN}' inside the block opened at line {opened_at}")
            inside, opened_at = True, number
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise ValueError(f"{name}:{number}: '{END}' without a '{BEGIN}' before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{name}:{opened_at}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out) + "\n"


def notebook_sources(folder: Union[str, Path] = "notebooks") -> list[Path]:
    """The notebook sources ``NN_topic.py`` of a folder, in chapter order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def build_student(src_dir: Union[str, Path] = "notebooks", out_dir: Union[str, Path] = "build/student") -> list[Path]:
    """Write ``out_dir/NN_topic.ipynb`` for every source, solutions stripped; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in notebook_sources(src_dir):
        notebook = jupytext.reads(strip_solutions(src.read_text(), src.name), fmt="py:percent")
        notebook.metadata.pop("jupytext", None)              # the student copy is not paired
        path = out_dir / (src.stem + ".ipynb")
        jupytext.write(notebook, path, fmt="ipynb")
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------------
# The HTML edition

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def static_outputs(notebook: Any) -> int:
    """Drop live-widget views from an executed notebook, in place; return how many were dropped.

    nbconvert's HTML exporter prefers a widget view over every other format when the notebook
    stores the widget state, and a widget view needs JavaScript from a CDN ("Loading widget..."
    offline). Without the view, an explorer falls back to the PNG of its figure that
    ``Explorer._repr_mimebundle_`` adds; a bare widget (a progress bar) keeps only its text.
    """
    dropped = 0
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                del output["data"][WIDGET_VIEW]
                dropped += 1
    return dropped


def first_markdown(notebook: Any) -> tuple[str, str]:
    """``(title, objectives_markdown)`` from the notebook's first markdown cell (its first heading)."""
    cell = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if cell is None:
        return "", ""
    lines = cell.source.splitlines()
    heading = next((i for i, line in enumerate(lines) if line.startswith("#")), None)
    if heading is None:
        return "", cell.source
    return lines[heading].lstrip("#").strip(), "\n".join(lines[heading + 1:]).strip()


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the ``with`` block, then restore them (notebook kernels inherit them)."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(src: Union[str, Path], timeout: int = 600) -> Any:
    """The notebook of source ``src`` (jupytext percent), executed in a fresh kernel, quick profile.

    Raises nbclient's ``CellExecutionError`` (naming the cell) if any cell fails.
    """
    from nbclient import NotebookClient

    notebook = jupytext.read(src)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = KERNELSPEC
    with environment(COURSE_PROFILE="quick", MPLBACKEND="module://matplotlib_inline.backend_inline"):
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(Path(src).parent)}}).execute()
    return notebook


def _nav(pages: Sequence, i: int) -> str:
    links = ['<a href="index.html">Contents</a>', '<a href="claims.html">Claims</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1][0]}.html">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}.html">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return ('<nav class="course-nav" style="font-family:sans-serif;padding:8px 16px;border-bottom:1px solid #ddd">'
            + " &nbsp;|&nbsp; ".join(links) + "</nav>")


# Formulas are typeset by MathJax served from the site itself (copied from the maintained package
# jupyter-server-mathjax), so the HTML edition needs no network.
MATHJAX_DIR = "mathjax"
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(out_dir: Union[str, Path]) -> Path:
    """Copy MathJax (from the ``jupyter_server_mathjax`` package) into ``out_dir/mathjax``; return the folder."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (source / "MathJax.js").exists():
        raise FileNotFoundError(f"MathJax.js is missing from {source}: reinstall jupyter-server-mathjax")
    target = Path(out_dir) / MATHJAX_DIR
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def render_page(notebook: Any, nav: str = "") -> str:
    """Standalone HTML of an executed notebook (lab template, images embedded, MathJax from the site's
    own ``mathjax/`` folder), ``nav`` after <body>."""
    from nbconvert import HTMLExporter

    static_outputs(notebook)
    exporter = HTMLExporter(template_name="lab", embed_images=True, mathjax_url=MATHJAX_URL)
    body, _ = exporter.from_notebook_node(notebook)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def render_index(chapters: Sequence[tuple]) -> str:
    """The index page: for each chapter ``(stem, title, objectives_markdown, seconds)``, a link and
    its objectives."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    items = []
    for stem, title, objectives, seconds in chapters:
        items.append(f'<section><h2><a href="{stem}.html">{html.escape(title or stem)}</a></h2>\n'
                     f'{markdown2html_mistune(objectives)}\n'
                     f'<p class="meta">{stem}.ipynb · executed '
                     + (f'in {seconds:.0f} s' if seconds is not None else 'in JupyterLab') + ' (quick profile)</p></section>')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Efficient CNNs: the HTML edition</title>\n"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.45}"
            "section{border-top:1px solid #ddd;margin-top:1.5em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}code{background:#f4f4f4}.meta{color:#777;font-size:90%}"
            "</style></head><body>\n<h1>Efficient CNNs, from the weight matrix up</h1>\n"
            "<p>The HTML edition: every notebook executed in the quick profile (2-core CPU, Fashion-MNIST), "
            "with its outputs and figures. Explorers appear as the figure of their initial settings; to move "
            "their controls, open the notebook in JupyterLab (<code>make lab</code>).</p>\n"
            + '<nav class="toc"><ul>'
            + "".join(f'<li><a href="{stem}.html">{html.escape(title or stem)}</a></li>' for stem, title, _, _ in chapters)
            + '<li><a href="claims.html">Claims checked: every paper claim, our figure, the verdict</a></li>'
            + "</ul></nav>\n" + "\n".join(items) + "\n</body></html>\n")


def _executed_copy(src: Path, executed_dir: Optional[Path]) -> Optional[Any]:
    """The notebook of ``src`` already executed in ``executed_dir`` (newer than the source, every code
    cell run, no error output), or None."""
    if executed_dir is None:
        return None
    path = Path(executed_dir) / f"{Path(src).stem}.ipynb"
    if not path.exists() or path.stat().st_mtime < Path(src).stat().st_mtime:
        return None
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    if any(c.get("execution_count") is None or any(o.get("output_type") == "error" for o in c.get("outputs", []))
           for c in code):
        return None
    return notebook


def build_site(src_dir: Union[str, Path] = "notebooks", out_dir: Union[str, Path] = "build/site", timeout: int = 600,
               log: Callable[[str], Any] = print, executed_dir: Optional[Union[str, Path]] = None) -> list[Path]:
    """Execute every notebook source of ``src_dir`` (quick profile) and write ``out_dir/NN_topic.html``
    plus ``out_dir/claims.html`` and ``out_dir/index.html``; return the written paths (index last).

    ``executed_dir``: a folder of notebooks already executed in the quick profile (the browser test
    saves them in ``build/executed``); a notebook found there, newer than its source and complete, is
    rendered as it is instead of being executed again, and its claims are read from the ledger that
    run wrote (``checks.claims_path()``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = notebook_sources(src_dir)
    if not sources:
        raise ValueError(f"src_dir={str(src_dir)!r} has no notebook sources NN_topic.py")
    executed, chapters = [], []
    ledger = out_dir / "claims.json"                  # the claims of this run only
    ledger.unlink(missing_ok=True)
    reused = set()
    for src in sources:
        start = time.perf_counter()
        notebook = _executed_copy(src, executed_dir)
        if notebook is not None:
            reused.add(src.stem)
        else:
            with environment(COURSE_CLAIMS_FILE=str(ledger.resolve())):
                notebook = execute_notebook(src, timeout)
        seconds = time.perf_counter() - start
        title, objectives = first_markdown(notebook)
        executed.append(notebook)
        chapters.append((src.stem, title, objectives, None if src.stem in reused else seconds))
        if log:
            log(f"{'reused' if src.stem in reused else 'executed'} {src.name} in {seconds:.1f} s")
    pages = [(stem, title or stem) for stem, title, _, _ in chapters]
    written = []
    for i, (notebook, (stem, *_)) in enumerate(zip(executed, chapters)):
        path = out_dir / f"{stem}.html"
        path.write_text(render_page(notebook, _nav(pages, i)), encoding="utf-8")
        written.append(path)
    claims = read_claims(ledger)
    if reused:                                         # those runs wrote to the course's ledger
        mine = {(c.chapter, c.text) for c in claims}
        claims += [c for c in read_claims() if (c.chapter, c.text) not in mine]
    claims_page = out_dir / "claims.html"
    claims_page.write_text(claims_mod.render_html(claims, _nav([], 0)), encoding="utf-8")
    copy_mathjax(out_dir)
    index = out_dir / "index.html"
    index.write_text(render_index(chapters), encoding="utf-8")
    return written + [claims_page, index]


USAGE = "usage: python -m course_lib.editions student|site OUT_DIR"


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib.editions student|site OUT_DIR``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("student", "site"):
        print(USAGE, file=sys.stderr)
        return 2
    build = build_student if argv[0] == "student" else build_site
    for path in build("notebooks", argv[1]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
