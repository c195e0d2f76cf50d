"""The project's own promises: installs, pins, layout and syllabus stay consistent."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}          # conda-forge spells a few packages differently
SYLLABUS = {                                # notebook -> the course_lib module it teaches from
    "00_start_here": "config", "01_conv_as_matmul": "conv", "02_low_precision": "quant",
    "03_low_rank": "lowrank", "04_sparse_pruning": "prune", "05_deep_compression": "compress",
    "06_interleaved_group_conv": "igc", "07_resnet_variants": "resnets", "08_densenet_memory": "densenet",
    "09_small_networks": "smallnets", "10_wavelet_autoencoder": "wae", "11_capstone": "capstone",
}


def names(requirements):
    return {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in requirements}


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"]) | names(project["optional-dependencies"]["dev"])
    text = (ROOT / "environment.yml").read_text()
    listed = {line.strip()[2:].split("=")[0].strip().lower().replace("_", "-")
              for line in text.splitlines() if line.startswith("  - ") and not line.strip().startswith("- pip")}
    missing = {w for w in wanted if CONDA_NAMES.get(w, w) not in listed}
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert "- -e ." in text


def test_constraints_pin_every_dependency_and_the_known_good_torch():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"]) | names(project["optional-dependencies"]["dev"])
    assert not wanted - set(pins), f"unpinned: {sorted(wanted - set(pins))}"


def test_generated_notebooks_are_ignored_and_jupytext_pairs_them():
    assert "notebooks/*.ipynb" in (ROOT / ".gitignore").read_text()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["jupytext"]
    assert config["formats"] == "ipynb,py:percent"


def test_readme_and_ci_run_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme and "## Measured" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_every_notebook_has_its_module():
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert sources
    for src in sources:
        assert src.stem in SYLLABUS, f"{src.name} is not in the syllabus"
        assert (ROOT / "course_lib" / f"{SYLLABUS[src.stem]}.py").exists(), src.name
        text = src.read_text()
        module = SYLLABUS[src.stem]
        assert re.search(rf"from course_lib import [^\n]*\b{module}\b", text), f"{src.name} does not import {module}"
        assert text.startswith("# ---") or text.startswith("# %%"), f"{src.name} is not jupytext percent format"
        assert "## References" in text or src.stem == "00_start_here", f"{src.name} has no references section"


def test_make_lab_opens_the_course_as_root_too():
    """`make lab` passes --allow-root exactly when run as root (JupyterLab refuses root otherwise)."""
    import os
    import subprocess

    out = subprocess.run(["make", "-n", "-W", "pyproject.toml", "lab"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    lab_lines = [line for line in out.splitlines() if "jupyter lab" in line]
    assert lab_lines and lab_lines[-1].endswith("notebooks/00_start_here.ipynb")
    assert ("--allow-root" in lab_lines[-1]) == (os.geteuid() == 0)
