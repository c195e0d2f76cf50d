"""A chapter presented as slides, offline: the deck (live explorers) and RISE (reveal.js), in Chromium.

Every request that does not go to the test's own JupyterLab server is blocked and recorded, and the
test fails if there was one: slides must work in a lecture hall without a network.

1. JupyterLab opens chapter 01 and runs it (*Run All*), then saves it.
2. **The deck** (``jupyterlab-slideshow``, inside JupyterLab, so widgets are live): the title slide
   shows the title only (the ``skip`` set-up cell is hidden), the next slide hides its ``notes``
   cell; on the explorer's slide the stride slider is moved and the readout and figure change.
3. **RISE** (``jupyterlab-rise``, reveal.js in its own page): one reveal.js section per ``slide`` cell
   of the source, the lecturer's prompts in ``aside.notes`` (what the speaker view shows), and the
   explorer's slide shows its figure. With ipywidgets 8 RISE 0.43.1 cannot load the widget manager
   (jupyterlab-contrib/rise#119), so there the explorer is its static figure, not live controls.

Screenshots: ``build/screenshots/slides_*.png``.
"""

import re
import time
from pathlib import Path

import jupytext
from test_jupyterlab import SAVE_JS, _errors, _explorer, _interact, _open_notebook, _run_all, _shown, _wait

from course_lib import slides

NAME = "01_conv_as_matmul"
SOURCE = Path(__file__).resolve().parents[2] / "notebooks" / f"{NAME}.py"
CONTROL = ("stride", "ArrowLeft")  # the im2col explorer: stride 2 → 1

VISIBLE_CELLS_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')]
  .map((cell, i) => [i, cell.getBoundingClientRect().height > 0 && getComputedStyle(cell).visibility !== 'hidden'])
  .filter(([i, shown]) => shown).map(([i]) => i)"""


def _command(page, command):
    page.evaluate(f"() => window.jupyterapp.commands.execute({command!r})")


def _deck(page, cell):
    """Present the notebook as a deck, starting on the slide of cell number ``cell``."""
    _command(page, "deck:stop")
    page.evaluate(f"() => {{ window.jupyterapp.shell.currentWidget.content.activeCellIndex = {cell}; }}")
    _command(page, "deck:start")
    _wait(lambda: page.evaluate("() => document.body.dataset.jpDeckMode === 'presenting'"), 30, "the deck to start")
    time.sleep(1)  # the deck's transition


def test_a_chapter_presents_offline(lab_server, browser, screenshots):
    base, token = lab_server.base, lab_server.token
    notebook = jupytext.read(SOURCE)
    kinds = [slides.slide_type(c) for c in notebook.cells]
    explorer = next(i for i, c in enumerate(notebook.cells) if "im2col_explorer(" in c.source)
    notes = [i for i, kind in enumerate(kinds) if kind == "notes"]
    (screenshots / "slides_FAILED.png").unlink(missing_ok=True)  # from an earlier run
    blocked = []
    local = re.compile(rf"^(https?|wss?)://{re.escape(base.split('://')[1])}/")

    def only_local(route):
        url = route.request.url
        if local.match(url) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.route("**/*", only_local)
    page = context.new_page()
    try:
        _open_notebook(page, base, token, NAME)
        state = _run_all(page, NAME)
        assert not _errors(state), _errors(state)
        assert page.evaluate(SAVE_JS) is False, "JupyterLab did not save the run notebook"  # RISE reads the file

        # The deck: inside JupyterLab, the kernel's widgets are live.
        _deck(page, 0)
        shown = page.evaluate(VISIBLE_CELLS_JS)
        assert shown and shown[0] == 0 and kinds[1] == "skip" and 1 not in shown, f"title slide shows cells {shown}"
        page.screenshot(path=str(screenshots / "slides_deck_title.png"))
        _deck(page, notes[0] - 1)  # a section whose slide carries the lecturer's prompt
        shown = page.evaluate(VISIBLE_CELLS_JS)
        assert notes[0] - 1 in shown and notes[0] not in shown, f"the notes cell {notes[0]} is shown: {shown}"
        _deck(page, explorer)
        box = _explorer(page, CONTROL[0])
        box.scroll_into_view_if_needed()
        before = _shown(box)
        _interact(page, box, *CONTROL)
        _wait(
            lambda: (lambda s: s["readout"] != before["readout"] and s["image"] != before["image"])(_shown(box)),
            60,
            "the explorer on the slide to answer its stride slider",
        )
        page.screenshot(path=str(screenshots / "slides_deck_explorer.png"))
        _command(page, "deck:stop")

        # RISE: reveal.js slides in their own page, on the same kernel session.
        rise = context.new_page()
        rise.goto(f"{base}/rise/{NAME}.ipynb?activeCellIndex=0&token={token}")
        rise.wait_for_selector(".reveal .slides > section", state="attached", timeout=60_000)
        time.sleep(2)
        sections = rise.locator(".reveal .slides > section").count()
        assert sections == kinds.count("slide"), f"{sections} reveal.js slides for {kinds.count('slide')} slide cells"
        asides = rise.locator(".reveal aside.notes").all_text_contents()
        assert len(asides) == len(notes) and all("Ask:" in a for a in asides), asides
        rise.screenshot(path=str(screenshots / "slides_rise_title.png"))
        for _ in range(3):
            rise.keyboard.press("Space")  # the next screen or fragment
            time.sleep(0.8)
        rise.screenshot(path=str(screenshots / "slides_rise_step3.png"))
        rise.goto(f"{base}/rise/{NAME}.ipynb?activeCellIndex={explorer}&token={token}")
        rise.wait_for_selector(".reveal .slides > section", state="attached", timeout=60_000)
        figure = rise.locator(".reveal .present img")
        _wait(lambda: figure.count() >= 1, 30, "the explorer's figure on its RISE slide")
        assert figure.first.evaluate("img => img.complete && img.naturalWidth > 0")
        rise.screenshot(path=str(screenshots / "slides_rise_explorer.png"))
        assert not blocked, f"the slides asked for {len(blocked)} outside resources: {blocked[:5]}"
    except Exception:
        page.screenshot(path=str(screenshots / "slides_FAILED.png"))
        raise
    finally:
        try:
            _command(page, "deck:stop")  # the deck setting outlives the page: leave JupyterLab as found
        finally:
            context.close()
            lab_server.shutdown_kernels()
