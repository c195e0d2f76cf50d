"""Student and instructor editions, built from one source.

The sources in ``notebooks/`` are the instructor edition: every reference solution sits between a
``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line. The student edition replaces each such
block by ``raise NotImplementedError("your code here")`` at the same indentation, so that the
learner's cell runs, the checker that follows says "not done yet", and nothing else changes.

    python -m course_lib.editions student build/student

The student edition is also the *release* the grader restores from: every cell carries a stable id
(a hash of its chapter and its student-edition source), and every checker cell — a code cell that
calls ``something.check_name(...)`` — is marked locked in its metadata (``metadata.course.locked``)
together with the checkers it calls, by their full names (``course_lib.exercises.ch01.check_…``).

A learner works in a workspace (``make lab``: ``mywork/``), filled from the student edition with
the notebooks it does not have yet, so an update of the course never overwrites the learner's work;
a chapter that changed upstream is reported, not copied. The reference solutions are one
deliberate step away:

    python -m course_lib.editions workspace mywork      # what `make lab` runs
    python -m course_lib.editions solutions 01          # chapter 01's reference solutions

The HTML edition is for readers without a kernel: every notebook executed in the quick profile and
rendered by nbconvert, with an index page (chapter list, objectives, links). Explorers are shown as
the static figure they carry (``image/png``), never as an empty "Loading widget..." box.

    python -m course_lib.editions site build/site
"""

import ast
import contextlib
import hashlib
import html
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from . import claims as claims_mod
from .checks import read_claims

__all__ = [
    "strip_solutions",
    "notebook_sources",
    "import_aliases",
    "checker_calls",
    "release",
    "build_student",
    "build_workspace",
    "solutions",
    "static_outputs",
    "first_markdown",
    "execute_notebook",
    "environment",
    "copy_mathjax",
    "render_page",
    "render_index",
    "build_site",
    "main",
]

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


def notebook_sources(folder: str | Path = "notebooks") -> list[Path]:
    """The notebook sources ``NN_topic.py`` of a folder, in chapter order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def _code(source: str) -> str:
    """A cell's source without IPython's ``%magic`` and ``!shell`` lines, so ``ast`` can read it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_code(source))
    except SyntaxError:
        return None


def import_aliases(notebook: Any) -> dict[str, str]:
    """``{name: full name}`` of everything the notebook's code cells import from ``course_lib``
    (``from course_lib.exercises import ch01 as ex`` gives ``{"ex": "course_lib.exercises.ch01"}``)."""
    aliases = {}
    for cell in notebook.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_lib":
                aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
            elif isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name.startswith("course_lib.")})
    return aliases


def checker_calls(source: str, aliases: dict[str, str]) -> list[tuple[str, str]]:
    """``[(callee as written, full name)]`` of the checkers a cell calls: ``ex.check_x(...)`` or
    ``check_x(...)`` where ``ex`` (or ``check_x``) was imported from ``course_lib`` (``aliases``)."""
    tree = _parse(source)
    calls = []
    for node in ast.walk(tree) if tree else ():
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr.startswith("check_")
            and isinstance(func.value, ast.Name)
            and func.value.id in aliases
        ):
            calls.append((f"{func.value.id}.{func.attr}", f"{aliases[func.value.id]}.{func.attr}"))
        elif isinstance(func, ast.Name) and func.id.startswith("check_") and func.id in aliases:
            calls.append((func.id, aliases[func.id]))
    return sorted(calls, key=lambda call: source.find(call[0]))


def release(notebook: Any, chapter: str) -> Any:
    """Mark ``notebook`` (a student edition) as the release of ``chapter``, in place, and return it:
    stable cell ids, and every checker cell locked with the checkers it calls."""
    aliases = import_aliases(notebook)
    seen: dict[str, int] = {}
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{chapter}\n{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]
        seen[digest] = seen.get(digest, -1) + 1
        cell["id"] = digest + (f"-{seen[digest]}" if seen[digest] else "")
        calls = checker_calls(cell.source, aliases) if cell.cell_type == "code" else []
        if calls:
            cell.metadata["course"] = {"locked": True, "checkers": [[callee, name] for callee, name in calls]}
    notebook.metadata["course"] = {"edition": "student", "chapter": chapter}
    return notebook


def build_student(src_dir: str | Path = "notebooks", out_dir: str | Path = "build/student") -> list[Path]:
    """Write ``out_dir/NN_topic.ipynb`` for every source, solutions stripped, marked as the release
    (``release``); return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in notebook_sources(src_dir):
        notebook = jupytext.reads(strip_solutions(src.read_text(), src.name), fmt="py:percent")
        notebook.metadata.pop("jupytext", None)  # the student copy is not paired
        notebook.nbformat_minor = max(notebook.nbformat_minor, 5)  # cell ids
        release(notebook, src.stem)
        path = out_dir / (src.stem + ".ipynb")
        nbformat.write(notebook, path)
        written.append(path)
    return written


RELEASES = ".releases.json"


def build_workspace(
    src_dir: str | Path = "notebooks", out_dir: str | Path = "mywork", log: Callable[[str], Any] | None = print
) -> list[Path]:
    """Fill the learner's workspace ``out_dir`` with the student edition: copy the notebooks it does
    not have yet, never overwrite one it has; a chapter whose release changed since it was copied is
    reported (the new edition is in ``build/student``). Return the copied paths."""
    out_dir = Path(out_dir)
    fresh = build_student(src_dir, Path(src_dir).resolve().parent / "build" / "student")
    out_dir.mkdir(parents=True, exist_ok=True)
    ledger = out_dir / RELEASES
    known = json.loads(ledger.read_text()) if ledger.exists() else {}
    copied = []
    for path in fresh:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        target = out_dir / path.name
        if not target.exists():
            shutil.copyfile(path, target)
            known[path.name] = digest
            copied.append(target)
        elif known.get(path.name) not in (None, digest) and log:
            log(
                f"{path.stem} changed in the course since you started it; your copy {target} is kept, "
                f"the new edition is {path}"
            )
    ledger.write_text(json.dumps(known, indent=1))
    if log:
        log(f"workspace {out_dir}: {len(copied)} new notebook(s), {len(fresh) - len(copied)} kept as you left them")
    return copied


def solutions(chapter: str, src_dir: str | Path = "notebooks") -> str:
    """The reference solutions of ``chapter`` (``"01"`` or ``"01_conv_as_matmul"``): every cell of
    the instructor edition that holds a solution block, as text."""
    sources = [p for p in notebook_sources(src_dir) if p.stem == chapter or p.stem[:2] == chapter[:2]]
    if not sources:
        raise ValueError(f"chapter={chapter!r} is not a chapter of {src_dir}; give its number, e.g. '01'")
    notebook = jupytext.read(sources[0])
    cells = [c.source for c in notebook.cells if c.cell_type == "code" and BEGIN in c.source]
    return f"# Reference solutions of {sources[0].stem} ({len(cells)})\n\n" + "\n\n# ---\n\n".join(cells) + "\n"


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
    return lines[heading].lstrip("#").strip(), "\n".join(lines[heading + 1 :]).strip()


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


def execute_notebook(src: str | Path, timeout: int = 600) -> Any:
    """The notebook of source ``src`` (jupytext percent), executed in a fresh kernel, quick profile.

    Raises nbclient's ``CellExecutionError`` (naming the cell) if any cell fails.
    """
    from nbclient import NotebookClient

    notebook = jupytext.read(src)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = KERNELSPEC
    with environment(COURSE_PROFILE="quick", MPLBACKEND="module://matplotlib_inline.backend_inline"):
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            store_widget_state=False,
            resources={"metadata": {"path": str(Path(src).parent)}},
        ).execute()
    return notebook


def _nav(pages: Sequence, i: int) -> str:
    links = ['<a href="index.html">Contents</a>', '<a href="claims.html">Claims</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1][0]}.html">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}.html">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return (
        '<nav class="course-nav" style="font-family:sans-serif;padding:8px 16px;border-bottom:1px solid #ddd">'
        + " &nbsp;|&nbsp; ".join(links)
        + "</nav>"
    )


# Formulas are typeset by MathJax served from the site itself (copied from the maintained package
# jupyter-server-mathjax), so the HTML edition needs no network.
MATHJAX_DIR = "mathjax"
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(out_dir: str | Path) -> Path:
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
        items.append(
            f'<section><h2><a href="{stem}.html">{html.escape(title or stem)}</a></h2>\n'
            f"{markdown2html_mistune(objectives)}\n"
            f'<p class="meta">{stem}.ipynb · executed '
            + (f"in {seconds:.0f} s" if seconds is not None else "in JupyterLab")
            + " (quick profile)</p></section>"
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Efficient CNNs: the HTML edition</title>\n'
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
        + "</ul></nav>\n"
        + "\n".join(items)
        + "\n</body></html>\n"
    )


def _executed_copy(src: Path, executed_dir: str | Path | None) -> Any | None:
    """The notebook of ``src`` already executed in ``executed_dir`` (newer than the source, every code
    cell run, no error output), or None."""
    if executed_dir is None:
        return None
    path = Path(executed_dir) / f"{Path(src).stem}.ipynb"
    if not path.exists() or path.stat().st_mtime < Path(src).stat().st_mtime:
        return None
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    if any(
        c.get("execution_count") is None or any(o.get("output_type") == "error" for o in c.get("outputs", []))
        for c in code
    ):
        return None
    return notebook


def build_site(
    src_dir: str | Path = "notebooks",
    out_dir: str | Path = "build/site",
    timeout: int = 600,
    log: Callable[[str], Any] | None = print,
    executed_dir: str | Path | None = None,
) -> list[Path]:
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
    ledger = out_dir / "claims.json"  # the claims of this run only
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
    if reused:  # those runs wrote to the course's ledger
        mine = {(c.chapter, c.text) for c in claims}
        claims += [c for c in read_claims() if (c.chapter, c.text) not in mine]
    claims_page = out_dir / "claims.html"
    claims_page.write_text(claims_mod.render_html(claims, _nav([], 0)), encoding="utf-8")
    copy_mathjax(out_dir)
    index = out_dir / "index.html"
    index.write_text(render_index(chapters), encoding="utf-8")
    return written + [claims_page, index]


USAGE = (
    "usage: python -m course_lib.editions student|site|workspace OUT_DIR\n"
    "       python -m course_lib.editions solutions CHAPTER"
)


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.editions student|site|workspace OUT_DIR`` or ``solutions CHAPTER``;
    returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("student", "site", "workspace", "solutions"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] == "solutions":
        try:
            print(solutions(argv[1]))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if argv[0] == "workspace":
        build_workspace("notebooks", argv[1])
        return 0
    build = build_student if argv[0] == "student" else build_site
    for path in build("notebooks", argv[1]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
