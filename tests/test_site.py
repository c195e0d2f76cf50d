"""The HTML edition (``make site``): every notebook executed and rendered, an index, no broken links.

The small tests build a site from two tiny notebooks; ``test_course_site_*`` check the real site
of every notebook, built once per session into ``build/site`` (or the folder named by
``COURSE_SITE_DIR``, if it already holds a built site).
"""

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from course_lib import editions

REPO = Path(__file__).resolve().parents[1]
PNG = re.compile(r'<img[^>]+src="data:image/png;base64,')
# What a page must never show: a traceback, or a widget the static page cannot draw.
BAD = ("Traceback (most recent call last)", "Error displaying widget", "Loading widget...",
       editions.WIDGET_VIEW, editions.WIDGET_STATE)


class Links(HTMLParser):
    """Collects ``href``/``src`` targets and the ``id``/``name`` anchors of one page."""

    def __init__(self):
        super().__init__()
        self.targets, self.anchors = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                self.targets.append(attrs[key])
        for key in ("id", "name"):
            if attrs.get(key):
                self.anchors |= {attrs[key], unquote(attrs[key])}     # as a browser matches a #fragment


def parse(path):
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def broken_links(site):
    """Every local link of every page that does not resolve: missing file or missing #anchor."""
    pages = {p.name: parse(p) for p in site.glob("*.html")}
    broken = []
    for name, links in pages.items():
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                continue                       # data: URLs and external links (not reachable offline)
            page = parts.path or name
            if page not in pages and (site / page).is_file():
                continue                       # a local asset (MathJax's files)
            if page not in pages:
                broken.append(f"{name}: {target} (no such page)")
            elif parts.fragment and not {parts.fragment, unquote(parts.fragment)} & pages[page].anchors:
                broken.append(f"{name}: {target} (no such anchor)")
    return broken


TINY = {
    "00_first.py": '''# %% [markdown]
# # 00 · First tiny chapter
#
# **You will be able to**
# 1. print a number;
# 2. see [the next chapter](01_second.html).

# %%
print(6 * 7)
''',
    "01_second.py": '''# %% [markdown]
# # 01 · Second tiny chapter
#
# - draw a figure and show an explorer.

# %%
from course_lib import widgets


def state(n):
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    return {"n": n}


def draw(s, fig):
    fig.add_subplot().plot(range(s["n"]))


widgets.Explorer(state, draw, {"n": widgets.int_slider("n", 3, 0, 9)}, title="tiny explorer")

# %% [markdown]
# A formula: $e^{i\\pi} + 1 = 0$.

# %%
from course_lib import checks

checks.claim("01", "tiny claim", paper="42", ours="42", holds=True)
''',
}


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name, text in TINY.items():
        (src / name).write_text(text)
    out = tmp_path_factory.mktemp("site")
    return out, editions.build_site(src, out, timeout=120, log=None)


def test_tiny_site_pages_index_and_links(tiny_site):
    out, written = tiny_site
    assert [p.name for p in written] == ["00_first.html", "01_second.html", "claims.html", "index.html"]
    index = (out / "index.html").read_text()
    assert '<a href="00_first.html">00 · First tiny chapter</a>' in index
    assert "print a number" in index and "draw a figure" in index          # objectives from the first cell
    assert "<h1>" not in index.split("<h1>", 1)[1].split("</h1>", 1)[1]   # the chapter heading is not repeated
    first = (out / "00_first.html").read_text()
    assert "42" in first and 'href="index.html"' in first and 'href="01_second.html"' in first
    assert broken_links(out) == []


def test_tiny_site_shows_the_explorer_as_its_static_figure(tiny_site):
    out, _ = tiny_site
    page = (out / "01_second.html").read_text()
    assert PNG.search(page), "the explorer's PNG is not embedded"
    assert "tiny explorer" in page                                           # its text/plain summary
    for bad in BAD:
        assert bad not in page


def test_tiny_site_claims_page_and_offline_mathjax(tiny_site):
    out, _ = tiny_site
    claims_page = (out / "claims.html").read_text()
    assert "tiny claim" in claims_page and "holds" in claims_page and 'href="index.html"' in claims_page
    assert 'href="claims.html"' in (out / "index.html").read_text()
    page = (out / "01_second.html").read_text()
    assert editions.MATHJAX_URL in page and "libs/mathjax" not in page   # MathJax from the site, not a CDN
    assert (out / editions.MATHJAX_DIR / "MathJax.js").is_file()
    assert (out / editions.MATHJAX_DIR / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()


OFFLINE_MATH = """
import sys
from playwright.sync_api import sync_playwright

chromium, page_path = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(page_path)
    page.wait_for_selector(".MathJax, .MathJax_CHTML, mjx-container", timeout=30_000)
    print("typeset:", page.locator(".MathJax, .MathJax_CHTML, mjx-container").count())
    browser.close()
"""


def test_tiny_site_formula_is_typeset_with_the_network_cut(tiny_site):
    """Open the page from disk in headless Chromium with every network request refused: MathJax,
    served from the site's own folder, must still typeset the formula. (A subprocess: the browser
    test's Playwright session may hold this process's event loop.)"""
    import subprocess
    import sys

    chromium = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"no Chromium at {chromium} (install Debian's chromium)")
    out, _ = tiny_site
    run = subprocess.run([sys.executable, "-c", OFFLINE_MATH, str(chromium), (out / "01_second.html").resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.split("typeset:")[1]) >= 1


def test_site_reuses_complete_executed_notebooks_only(tiny_site, tmp_path):
    """A notebook executed elsewhere (the browser test saves them) is rendered without running it
    again, but only when it is newer than its source, complete and free of errors."""
    import time

    src = tmp_path / "src"
    src.mkdir()
    (src / "00_first.py").write_text(TINY["00_first.py"])
    done = tmp_path / "executed"
    done.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 00 · Reused"),
                                         nbformat.v4.new_code_cell("print(6 * 7)", execution_count=1, outputs=[
                                             nbformat.v4.new_output("stream", name="stdout", text="reused-42\n")])])
    time.sleep(0.05)
    nbformat.write(nb, done / "00_first.ipynb")
    editions.build_site(src, tmp_path / "site", executed_dir=done, log=None)
    page = (tmp_path / "site" / "00_first.html").read_text()
    assert "reused-42" in page and "executed in JupyterLab" in (tmp_path / "site" / "index.html").read_text()
    nb.cells[1].execution_count = None                                  # incomplete: executed again
    nbformat.write(nb, done / "00_first.ipynb")
    editions.build_site(src, tmp_path / "site", executed_dir=done, log=None)
    assert "reused-42" not in (tmp_path / "site" / "00_first.html").read_text()


def test_broken_links_are_found(tmp_path):
    (tmp_path / "index.html").write_text('<a href="a.html#x">a</a> <a href="gone.html">b</a> '
                                         '<a href="https://example.org/">c</a> <a href="#top">d</a>')
    (tmp_path / "a.html").write_text('<h1 id="y">A</h1>')
    assert broken_links(tmp_path) == ["index.html: a.html#x (no such anchor)", "index.html: gone.html (no such page)",
                                      "index.html: #top (no such anchor)"]


def test_static_outputs_drops_widget_views_and_state():
    nb = nbformat.v4.new_notebook(metadata={"widgets": {editions.WIDGET_STATE: {"state": {}}}})
    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={editions.WIDGET_VIEW: {"model_id": "m"}, "image/png": "iVBO", "text/plain": "t"})])
    nb.cells.append(cell)
    assert editions.static_outputs(nb) == 1
    assert set(cell.outputs[0].data) == {"image/png", "text/plain"} and "widgets" not in nb.metadata


def test_first_markdown_splits_title_and_objectives():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"),
                                         nbformat.v4.new_markdown_cell("# 03 · Title\n\n**Goals**\n- a")])
    assert editions.first_markdown(nb) == ("03 · Title", "**Goals**\n- a")
    assert editions.first_markdown(nbformat.v4.new_notebook()) == ("", "")


def test_build_site_fails_on_an_error_cell_and_on_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="src_dir=.* has no notebook sources"):
        editions.build_site(tmp_path, tmp_path / "site")
    (tmp_path / "00_broken.py").write_text("# %%\nraise RuntimeError('boom')\n")
    with pytest.raises(CellExecutionError, match="boom"):
        editions.build_site(tmp_path, tmp_path / "site", timeout=60, log=None)


# --------------------------------------------------------------------------- the course's own site

@pytest.fixture(scope="session")
def course_site():
    """``build/site`` of every notebook, built once per session (or ``COURSE_SITE_DIR`` if built)."""
    given = os.environ.get("COURSE_SITE_DIR")
    if given and (Path(given) / "index.html").exists():
        return Path(given)
    out = REPO / "build" / "site"
    editions.build_site(REPO / "notebooks", out, executed_dir=REPO / "build" / "executed")
    return out


def test_course_site_has_every_page_without_errors(course_site):
    sources = editions.notebook_sources(REPO / "notebooks")
    assert sources
    index = (course_site / "index.html").read_text()
    for src in sources:
        page = course_site / f"{src.stem}.html"
        assert page.exists(), f"{page} is missing"
        text = page.read_text()
        assert f'href="{src.stem}.html"' in index
        for bad in BAD:
            assert bad not in text, f"{page.name}: {bad!r}"
        assert PNG.search(text), f"{page.name}: no embedded figure"
        explorers = len(re.findall(r"Explorer\(|_explorer\(", src.read_text()))
        if explorers:                          # an explorer's static figure, its title in the text summary
            assert len(PNG.findall(text)) >= explorers, f"{page.name}: fewer figures than explorers"


def test_course_site_links_resolve(course_site):
    assert broken_links(course_site) == []
