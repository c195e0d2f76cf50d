"""Fixtures for the browser test: a throw-away JupyterLab server and headless Chromium.

The server runs in a temporary copy of the course (every ``notebooks/NN_topic.py`` converted to
``.ipynb`` there), on 127.0.0.1 with a random free port and a random token, with its own
configuration, settings and workspace folders, and with the announcements (news) plugin disabled so
that no pop-up covers the screenshots. It is stopped, kernels included, whatever the test does.

Chromium is Debian's ``/usr/bin/chromium`` (``COURSE_CHROMIUM`` overrides it), driven by the Python
``playwright`` package; no browser is ever downloaded. Without Chromium the tests are skipped.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"]
# JupyterLab plugins that would talk to the internet or pop up over the notebook.
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
DISABLED_PLUGINS = {"@jupyterlab/apputils-extension:announcements": True}


def notebook_sources():
    return sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url, timeout):
    """Wait until the server answers ``/api/status`` (raise with the log tail if it never does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return json.load(reply)
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer {url} within {timeout} s")


@pytest.fixture(scope="session")
def chromium_path():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package `chromium` "
                    "(.ci/run does) or set COURSE_CHROMIUM")
    pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra) is not installed")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def course_copy(tmp_path_factory, chromium_path):
    """A temporary folder with every notebook source converted to ``NN_topic.ipynb``."""
    import jupytext

    root = tmp_path_factory.mktemp("course")
    for src in notebook_sources():
        notebook = jupytext.read(src)
        notebook.metadata.pop("jupytext", None)            # not paired: nothing writes back to notebooks/
        notebook.metadata["kernelspec"] = KERNELSPEC       # else JupyterLab asks which kernel to start
        jupytext.write(notebook, root / (src.stem + ".ipynb"), fmt="ipynb")
    return root


@pytest.fixture(scope="session")
def lab_server(course_copy, tmp_path_factory):
    """A running JupyterLab (``.base`` URL, ``.token``, ``.root``, ``.shutdown_kernels()``), stopped
    with its kernels at the end of the session, whatever happened."""
    home = tmp_path_factory.mktemp("jupyter")
    (home / "config" / "labconfig").mkdir(parents=True)
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": DISABLED_PLUGINS}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               COURSE_PROFILE="quick", COURSE_DEVICE="cpu")
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course_copy}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "server.log", "w")
    server = subprocess.Popen(command, cwd=course_copy, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            _ready(f"{base}/api/status?token={token}", timeout=60)
        except RuntimeError as err:
            log.flush()
            raise RuntimeError(f"{err}\n{(home / 'server.log').read_text()[-3000:]}") from None
        yield SimpleNamespace(base=base, token=token, root=course_copy,
                              shutdown_kernels=lambda: shutdown_kernels(base, token))
    finally:
        _stop(server, base, token)
        log.close()


def shutdown_kernels(base, token):
    """Shut down every kernel of the server (each notebook's test ends with this)."""
    try:
        for kernel in json.load(urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5)):
            request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request, timeout=10).close()
    except OSError:
        pass                                               # the server is gone already: its kernels with it


def _stop(server, base, token):
    """Shut down every kernel, then the server: SIGTERM, and SIGKILL only if it hangs."""
    shutdown_kernels(base, token)
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)          # its own process group: the server and its kernels
            server.wait(timeout=10)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
