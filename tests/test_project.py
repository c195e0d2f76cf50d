"""The project's own promises: installs, pins, layout and syllabus stay consistent."""

import ast
import importlib
import inspect
import pkgutil
import re
import tomllib
import typing
from pathlib import Path

import course_lib

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}          # conda-forge spells a few packages differently
SYLLABUS = {                                # notebook -> the course_lib module it teaches from
    "00_start_here": "config", "01_conv_as_matmul": "conv", "02_low_precision": "quant",
    "03_low_rank": "lowrank", "04_sparse_pruning": "prune", "05_deep_compression": "compress",
    "06_interleaved_group_conv": "igc", "07_resnet_variants": "resnets", "08_densenet_memory": "densenet",
    "09_small_networks": "smallnets", "10_wavelet_autoencoder": "wae", "11_capstone": "capstone",
    "12_deploy": "deploy",
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


def test_make_test_checks_style_and_types_first():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: setup lint$", makefile, re.M)
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check course_lib" in lint and "ruff format --check course_lib" in lint and "mypy" in lint
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["mypy"]["files"] == ["course_lib"] and project["tool"]["ruff"]["line-length"] == 120


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


def test_make_lab_opens_the_learners_edition_and_lab_instructor_the_sources():
    """`make lab` fills the learner's workspace (mywork/, the student edition) and opens it;
    `make lab-instructor` opens the instructor edition (notebooks/); both pass --allow-root exactly
    when run as root (JupyterLab refuses root otherwise)."""
    import os
    import subprocess

    def lab_line(target):
        out = subprocess.run(["make", "-n", "-W", "pyproject.toml", target], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        lines = out.splitlines()
        found = [line for line in lines if "jupyter lab" in line]
        assert found, f"make {target} opens no JupyterLab"
        assert ("--allow-root" in found[-1]) == (os.geteuid() == 0)
        return lines, found[-1]

    lines, lab = lab_line("lab")
    assert any("course_lib.editions workspace mywork" in line for line in lines)
    assert lab.endswith("mywork/00_start_here.ipynb") and "--ServerApp.root_dir=mywork" in lab
    assert "mywork/" in (ROOT / ".gitignore").read_text()
    _, instructor = lab_line("lab-instructor")
    assert instructor.endswith("notebooks/00_start_here.ipynb")


# --------------------------------------------------------------------------- import layering

LIBRARY = ROOT / "course_lib"
CORE = {"config", "args", "stats", "checks", "claims", "widgets", "states", "measure", "surgery", "checkpoints", "data",
        "train", "report", "models", "channels"}
# the chapter modules in the course's order: a chapter may import an earlier one, never a later one
CHAPTERS = ["conv", "fixedpoint", "ternary", "quant", "lowrank", "sparse", "prune", "huffman", "compressed_file",
            "compress", "igc", "resnext", "resnets", "densenet", "squeezenets", "smallnets", "haar", "wae", "capstone",
            "distill", "deploy"]
CATALOGUE = {"recipes", "grading", "sandbox", "editions", "slides", "exercises", "__main__"}   # above the chapters: they name every model


def course_imports(path):
    """The course_lib modules that ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            found |= {a.name for a in node.names} if node.module is None else {node.module}
        elif isinstance(node, ast.ImportFrom) and node.module == "course_lib":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("course_lib.")}
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args
              and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("course_lib.")):
            found.add(node.args[0].value.split(".")[1])
    return {name.split(".")[0] for name in found}


def import_graph():
    """``{module: course_lib modules it imports}``; the ``exercises`` package counts as one module of
    the top layer (it judges every chapter's exercises)."""
    modules = {p.stem: p for p in LIBRARY.glob("*.py")}
    graph = {name: course_imports(path) & (set(modules) | {"exercises"}) - {name} for name, path in modules.items()}
    graph["exercises"] = set().union(*(course_imports(p) for p in (LIBRARY / "exercises").glob("*.py"))) & set(modules)
    return graph


def test_the_import_graph_finds_every_kind_of_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from . import a, b\nfrom .c import x\nimport course_lib.d\nfrom course_lib import e\n"
                    "from course_lib.f import y\ndef g():\n    from .h import z\n    __import__('course_lib.i')\n")
    assert course_imports(path) == set("abcdefhi")


def test_no_import_cycle_and_the_core_imports_no_chapter():
    graph = import_graph()
    chapters = set(graph) - CORE - CATALOGUE - {"__init__"}
    for name in CORE:
        assert graph[name] <= CORE, f"core module {name} imports {sorted(graph[name] - CORE)}"
    assert chapters == set(CHAPTERS), f"every module is core, chapter or catalogue: {sorted(chapters ^ set(CHAPTERS))}"
    for name in chapters:
        assert not graph[name] & CATALOGUE, f"chapter module {name} imports {sorted(graph[name] & CATALOGUE)}"
        later = set(CHAPTERS[CHAPTERS.index(name) + 1:])
        assert not graph[name] & later, f"chapter module {name} imports a later chapter: {sorted(graph[name] & later)}"
    done, path = set(), []

    def visit(name):                   # depth-first search; a module met again on the current path is a cycle
        assert name not in path, f"import cycle: {' -> '.join(path[path.index(name):] + [name])}"
        if name not in done:
            path.append(name)
            for dep in sorted(graph[name]):
                visit(dep)
            path.pop()
            done.add(name)

    for name in sorted(graph):
        visit(name)


TYPE_CHECKING_ONLY = ("Figure", "Axes", "AxesImage", "Explorer")    # imported under TYPE_CHECKING: not resolvable


def public_functions():
    """``(module name, function)`` for every public function of every module's ``__all__``, and every
    public method (plus ``__init__``) of the classes it defines there."""
    found = []
    for info in pkgutil.iter_modules(course_lib.__path__):
        if info.name == "__main__":
            continue
        module = importlib.import_module(f"course_lib.{info.name}")
        assert hasattr(module, "__all__"), f"course_lib.{info.name} has no __all__"
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                found.append((info.name, inspect.unwrap(obj)))
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                found += [(info.name, inspect.unwrap(f)) for n, f in vars(obj).items()
                          if inspect.isfunction(f) and (not n.startswith("_") or n == "__init__")]
    return found


def test_every_public_function_has_type_hints():
    missing, unresolved = [], []
    for module, f in public_functions():
        sig = inspect.signature(f)
        lacking = [p.name for p in sig.parameters.values()
                   if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if sig.return_annotation is inspect.Signature.empty and f.__name__ != "__init__":
            lacking.append("->")
        if lacking:
            missing.append(f"{module}.{f.__qualname__}: {', '.join(lacking)}")
        try:
            typing.get_type_hints(f)
        except NameError as e:
            if e.name not in TYPE_CHECKING_ONLY:
                unresolved.append(f"{module}.{f.__qualname__}: {e!r}")
            else:                      # still resolve the rest, with stand-ins for the TYPE_CHECKING names
                try:
                    typing.get_type_hints(f, localns=dict.fromkeys(TYPE_CHECKING_ONLY, object))
                except Exception as e2:
                    unresolved.append(f"{module}.{f.__qualname__}: {e2!r}")
        except Exception as e:
            unresolved.append(f"{module}.{f.__qualname__}: {e!r}")
    assert not missing, "public functions without type hints (parameter names, -> = return):\n" + "\n".join(missing)
    assert not unresolved, "type hints that do not resolve:\n" + "\n".join(unresolved)


def test_notebooks_use_only_public_names():
    """A notebook reads the library through the names each module lists in ``__all__``."""
    private = []
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        tree = ast.parse(notebook.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
                aliases.update({a.asname or a.name: importlib.import_module(f"course_lib.{a.name}") for a in node.names})
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib."):
                module = importlib.import_module(node.module)
                private += [f"{notebook.name}: {node.module}.{a.name}" for a in node.names if a.name not in module.__all__
                            and importlib.util.find_spec(f"{node.module}.{a.name}") is None]    # a submodule is public
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                module = aliases[node.value.id]
                if node.attr not in module.__all__:
                    private.append(f"{notebook.name}: {module.__name__}.{node.attr}")
    assert not private, f"notebooks use names that are not in their module's __all__: {sorted(set(private))}"
