"""Every notebook of the course, run the way a learner runs it: JupyterLab in Chromium.

For each generated notebook: open it (a fresh kernel starts), wait for the kernel to be idle,
*Run → Run All Cells*, wait until every code cell has run and the kernel is idle again, then check

- no cell has an error output;
- every widget the notebook displays is rendered (no "Error displaying widget", no disconnected
  widget, no "Loading widget..."), and every explorer shows its figure;
- in notebooks with an explorer, moving one control changes what is shown (for chapter 01: the
  im2col explorer's stride slider changes the output-size formula in the readout);

and save a screenshot to ``build/screenshots/NN_topic.png``. The executed notebook, saved by
JupyterLab itself, is copied to ``build/executed/NN_topic.ipynb``: the HTML edition's test renders
those pages instead of executing every notebook a third time (``editions.build_site(executed_dir=...)``).
"""

import re
import shutil
import time
from pathlib import Path

import pytest

EXECUTED = Path(__file__).resolve().parents[2] / "build" / "executed"
SOURCES = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.py"))

RUN_TIMEOUT_S = 240            # one notebook, all cells; the quick profile needs well under 60 s each
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# One interaction per notebook with an explorer: (control label, key to press or option to pick,
# what must change). The label is the control's description as the notebook shows it.
INTERACTIONS = {
    "00_start_here": ("steps", "ArrowRight", "readout"),
    "01_conv_as_matmul": ("stride", "ArrowLeft", "readout"),        # stride 2 → 1: H_out 3 → 6
    "02_low_precision": ("bits", "ArrowRight", "readout"),
    "03_low_rank": ("rank r", "ArrowLeft", "readout"),
    "04_sparse_pruning": ("sparsity", "ArrowLeft", "readout"),       # the sparsity slider: 0.90 → 0.89
    "05_deep_compression": ("layer 1 bits", "ArrowRight", "readout"),
    "06_interleaved_group_conv": ("L (per preset)", "ArrowRight", "readout"),  # IGCV1 ignores C (C = L·M): move L
    "07_resnet_variants": ("depth", "ArrowRight", "readout"),         # residual explorer: depth 56 → 62
    "09_small_networks": ("resolution", "ArrowRight", "readout"),      # MobileNet explorer: 160 → 176 pixels
    "10_wavelet_autoencoder": ("image", "ArrowRight", "readout"),       # WAE explorer: image 0 → 1, new PSNR
    "08_densenet_memory": ("growth rate k", "ArrowRight", "readout"),  # dense-block explorer: k 12 → 13
    "11_capstone": ("architecture", "VGG", "readout"),                 # recipe explorer: VGG ½ filters + DC → VGG + DC
    "12_deploy": ("precision", "fp32", "readout"),                     # deploy explorer: VGG-small int8 → fp32
}

# JavaScript run in the page (JupyterLab started with expose_app_in_browser): the current
# notebook's kernel status and, from the notebook model itself, every code cell's execution count
# and output types (what the saved .ipynb would contain).
NOTEBOOK_STATE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    const outputs = cell.model.outputs.toJSON();
    cells.push({count: cell.model.executionCount,
                outputs: outputs.map(o => ({type: o.output_type, ename: o.ename || null, evalue: o.evalue || null,
                                            mimes: Object.keys(o.data || {})}))});
  }
  return {kernel: kernel ? kernel.status : null, cells: cells};
}"""


def _state(page):
    return page.evaluate(NOTEBOOK_STATE_JS)


def _wait(predicate, timeout, what, poll=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _errors(state):
    return [f"cell {i}: {o['ename']}: {o['evalue']}" for i, cell in enumerate(state["cells"])
            for o in cell["outputs"] if o["type"] == "error"]


def _open_notebook(page, base, token, name):
    page.goto(f"{base}/lab/tree/{name}.ipynb?reset&token={token}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    _wait(lambda: (_state(page) or {}).get("kernel") == "idle", 90, f"{name}: the new kernel to be idle")


def _run_all(page, name):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    def finished():
        state = _state(page)
        if _errors(state):
            return state                             # run-all stops at an error: report it now
        done = all(c["count"] is not None for c in state["cells"]) and state["kernel"] == "idle"
        return state if done else None

    return _wait(finished, RUN_TIMEOUT_S, f"{name}: all cells to run and the kernel to be idle")


SAVE_JS = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.save();
  return panel.context.model.dirty;
}"""


def _save_executed(page, root, name):
    """Save the notebook from JupyterLab (outputs included) and keep a copy in ``build/executed/``."""
    assert page.evaluate(SAVE_JS) is False, f"{name}: JupyterLab did not save the notebook"
    EXECUTED.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / f"{name}.ipynb", EXECUTED / f"{name}.ipynb")


def _explorer(page, label):
    """The rendered explorer (an ipywidgets VBox) that has a control labelled ``label``."""
    boxes = page.locator(".jp-OutputArea-output .widget-vbox").filter(
        has=page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")))
    assert boxes.count() >= 1, f"no rendered explorer with a control labelled {label!r}"
    return boxes.first


def _shown(box):
    """What an explorer shows: its readout and message text and its figure's data URL."""
    htmls = box.locator(":scope > .widget-html").all_text_contents()
    image = box.locator(":scope > .widget-image").first.get_attribute("src") or ""
    return {"readout": " ".join(htmls), "image": image}


def _interact(page, box, label, action):
    control = box.locator(".widget-inline-hbox").filter(
        has=page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$"))).first
    select = control.locator("select")
    if select.count():
        select.select_option(action)
    else:
        handle = control.locator(".noUi-handle")
        handle.focus()
        handle.press(action)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_in_jupyterlab(source, lab_server, browser, screenshots):
    base, token = lab_server.base, lab_server.token
    name = source.stem
    (screenshots / f"{name}_FAILED.png").unlink(missing_ok=True)     # from an earlier run
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.monotonic()
    try:
        _open_notebook(page, base, token, name)
        print(f"{name}: kernel idle after {time.monotonic() - started:.1f} s")
        state = _run_all(page, name)
        print(f"{name}: all cells run after {time.monotonic() - started:.1f} s")
        assert not _errors(state), f"{name}: error outputs in JupyterLab: {_errors(state)}"

        views = [o for c in state["cells"] for o in c["outputs"] if WIDGET_VIEW in o["mimes"]]
        explorers = sum("image/png" in o["mimes"] for o in views)      # Explorer: widget + static PNG
        mounted = page.locator(".jp-OutputArea-output.lm-Panel")       # a widget view's output area
        _wait(lambda: mounted.count() >= len(views), 60, f"{name}: {len(views)} widget views mounted")
        text = page.locator(".jp-Notebook").text_content()
        for bad in ("Error displaying widget", "Loading widget..."):
            assert bad not in text, f"{name}: {bad!r} in the notebook"
        assert page.locator(".jupyter-widgets-disconnected").count() == 0, f"{name}: a disconnected widget"
        for i in range(mounted.count()):            # hidden = a closed widget (a finished progress bar)
            output = mounted.nth(i)
            if "lm-mod-hidden" not in (output.get_attribute("class") or ""):
                assert output.locator(".jupyter-widgets").count() >= 1, f"{name}: widget output {i} is empty"
        figures = page.locator(".jp-OutputArea-output .widget-vbox > .widget-image")
        assert figures.count() == explorers, f"{name}: {explorers} explorers displayed, {figures.count()} rendered"
        for i in range(figures.count()):
            assert figures.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), \
                f"{name}: explorer figure {i} is empty"

        _save_executed(page, lab_server.root, name)
        assert (explorers > 0) == (name in INTERACTIONS), (
            f"{name}: {explorers} explorers; every notebook with an explorer needs exactly one entry in "
            "INTERACTIONS (a control to move), and only those")
        if name in INTERACTIONS:
            label, action, part = INTERACTIONS[name]
            box = _explorer(page, label)
            box.scroll_into_view_if_needed()
            before = _shown(box)
            _interact(page, box, label, action)
            after = _wait(lambda: (lambda s: s if s[part] != before[part] and s["image"] != before["image"]
                                   else None)(_shown(box)), 60,
                          f"{name}: the explorer's {part} and figure to change after moving {label!r}")
            if name == "01_conv_as_matmul":              # the example: the output-size formula
                sizes = [re.search(r"⌋ \+ 1 = (\d+)", s["readout"]) for s in (before, after)]
                assert all(sizes) and sizes[0].group(1) != sizes[1].group(1), (before, after)
            box.screenshot(path=str(screenshots / f"{name}_explorer.png"))
        page.screenshot(path=str(screenshots / f"{name}.png"))
    except Exception:
        page.screenshot(path=str(screenshots / f"{name}_FAILED.png"))
        raise
    finally:
        context.close()
        lab_server.shutdown_kernels()
        print(f"{name}: {time.monotonic() - started:.1f} s in JupyterLab")
