"""Grading submitted notebooks: run each one confined, read every checker's verdict, one row per exercise.

A lecturer collects the learners' notebooks (the student edition, filled in) and runs

    python -m course_lib grade submissions/*.ipynb --csv grades.csv [--timeout 300] [--memory 4096]
                                                   [--release DIR]
    python -m course_lib grade submissions/*/ --chapters 01 02 ...      (one folder per learner)

**What is expected** comes from the release (the student edition, ``editions.release``: built from
the course's sources, or ``--release DIR``, the edition you handed out): every checker cell of the
chapter's release is an exercise, and every exercise gets a row, whatever the submission did to its
cells. A submission is matched to its chapter by the metadata the release wrote into it (or its file
name).

**What runs** is assembled from the two (``assemble``): the release's cells in the release's order;
the locked cells (every checker cell) always as released; the learner's own cells, matched by cell
id, as the learner left them, and cells the learner added in place; stored outputs and tags
(``skip-execution``) dropped. The grader adds cells of its own that the learner never sees: a first
cell that imports ``course_lib`` from the course, and a *guard* before and after every checker
cell, which reports a fingerprint of the checking machinery — every ``course_lib`` module (its file,
the code of each function, with what a checker closes over), the parts of Python, PyTorch, NumPy and
IPython a verdict goes through, and the checker objects the cell is about to call. The grader compares
that with the same fingerprint of the course, taken in its own process. Any difference: ``tampered``.

**Verdicts** are read only from the structured output a course checker publishes
(``checks.VERDICT_MIME``), and only from a locked checker cell; printed text is never read. Statuses:

- ``passed``   — the checker published "passed";
- ``not done`` — the stub is still there (a deleted exercise cell comes back as released: a stub),
  the notebook could not be read, or a learner's folder holds no notebook of the chapter;
- ``wrong``    — the checker said what is wrong;
- ``error``    — the learner's code crashed, the notebook ran out of time or memory, the grading
  process was killed;
- ``tampered`` — the checking machinery was replaced or patched, or a cell published a verdict of
  its own next to the checker's.

**How it runs** (see ``course_lib.sandbox``): every submission is read into memory before any runs;
each one runs in a fresh temporary folder of its own (working directory, ``HOME``, ``TMPDIR``, a
copy of the course's data folder whose large files are read-only links), in a grading process of
its own, with a kernel confined by memory, process and time limits and, where Linux offers
Landlock, unable to write outside its folder or to signal the grader. The claims it states go to
its own ledger, never the course's. Afterwards every process of the run is killed. Rows are appended
to the CSV as each notebook is graded, so an aborted run keeps what it graded.
"""

import argparse
import csv
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import nbformat

from . import config, sandbox
from .checks import VERDICT_MIME, VERDICTS
from .editions import KERNELSPEC, build_student

__all__ = [
    "STATUSES",
    "GUARD_MIME",
    "GradeRow",
    "load_release",
    "chapter_of",
    "assemble",
    "expected_checks",
    "reference_fingerprint",
    "guard_problems",
    "graded_notebook",
    "rows_of",
    "grade_notebook",
    "grade",
    "table",
    "write_csv",
    "positive_int",
    "main",
]

STATUSES = (*VERDICTS, "tampered")
GUARD_MIME = "application/vnd.course-lib.grader-guard+json"
MEMORY_MIB, PROCESSES = 4096, 256


@dataclass
class GradeRow:
    """One exercise of one notebook: its status and the checker's message."""

    notebook: str
    exercise: str
    status: str
    message: str = ""


# --------------------------------------------------------------------------- the release


def load_release(folder: Path | None = None) -> dict[str, nbformat.NotebookNode]:
    """``{chapter: released notebook}``: the student edition in ``folder``, or built now from the
    course's sources when ``folder`` is None."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
            paths = build_student(config.REPO_ROOT / "notebooks", tmp)
            return {p.stem: nbformat.read(p, as_version=4) for p in paths}
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise ValueError(f"release={str(folder)!r} holds no notebooks (build one with `make student`)")
    releases = {}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        releases[notebook.metadata.get("course", {}).get("chapter", path.stem)] = notebook
    return releases


def chapter_of(notebook: nbformat.NotebookNode | None, name: str, chapters: list[str]) -> str | None:
    """The chapter a submission belongs to: the one its metadata names, else the one its file name contains."""
    named = notebook.get("metadata", {}).get("course", {}).get("chapter") if notebook else None
    if named in chapters:
        return named
    return next((c for c in sorted(chapters, key=len, reverse=True) if c in name), None)


def _locked(cell: Any) -> bool:
    return bool(cell.get("metadata", {}).get("course", {}).get("locked"))


def expected_checks(release: nbformat.NotebookNode) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(cell id, [(callee as written, checker's full name)])]``: the release's checker cells."""
    return [
        (c.id, [tuple(call) for call in c.metadata["course"].get("checkers", [])])
        for c in release.cells
        if c.cell_type == "code" and _locked(c)
    ]


def _clean(cell: Any) -> nbformat.NotebookNode:
    """A copy of ``cell`` with its source only: no outputs, no execution count, no tags or metadata."""
    make = nbformat.v4.new_code_cell if cell.get("cell_type") == "code" else nbformat.v4.new_markdown_cell
    return make(source=cell.get("source", "") if isinstance(cell.get("source", ""), str) else "".join(cell["source"]))


def assemble(release: nbformat.NotebookNode, submission: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    """The notebook to run: the release's cells in order, locked cells from the release, the learner's
    cells (matched by id) from the submission, cells the learner added after the cell they follow;
    a release cell the learner deleted comes back as released. Outputs and metadata are dropped."""
    by_id: dict[str, Any] = {}
    added: dict[str | None, list] = {}
    release_ids = {c.id for c in release.cells}
    anchor = None  # the release cell the learner's added cells follow
    for cell in submission.cells if submission is not None else []:
        if cell.get("cell_type") not in ("code", "markdown"):
            continue
        cell_id = cell.get("id")
        if cell_id in release_ids and cell_id not in by_id:
            by_id[cell_id] = cell
            anchor = cell_id
        else:
            added.setdefault(anchor, []).append(cell)
    out = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    out.cells = [_clean(c) for c in added.get(None, [])]
    for cell in release.cells:
        if _locked(cell) or cell.id not in by_id:
            kept = _clean(cell)
            kept.metadata = {"course": dict(cell.metadata["course"])} if _locked(cell) else {}
        else:
            kept = _clean(by_id[cell.id])
        kept.id = cell.id
        out.cells.append(kept)
        out.cells += [_clean(c) for c in added.get(cell.id, [])]
    return out


# --------------------------------------------------------------------------- the guard
# The same function fingerprints the course in the grader's process and the kernel in each guard cell;
# its source travels inside every guard cell, so the learner's cells cannot replace it beforehand.

FINGERPRINT = r"""
def _course_fingerprint(callees, modules):
    import hashlib, sys, types

    def code_hash(code):
        digest = hashlib.sha256()

        def feed(c):
            digest.update(c.co_code)
            digest.update(repr((c.co_name, c.co_names, c.co_varnames, c.co_freevars, c.co_filename)).encode())
            for k in c.co_consts:
                if isinstance(k, types.CodeType):
                    feed(k)
                else:
                    digest.update(repr(sorted(map(repr, k)) if isinstance(k, frozenset) else k).encode())
        feed(code)
        return digest.hexdigest()[:16]

    def of(value):
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        if isinstance(value, types.FunctionType):
            parts = [code_hash(value.__code__)]
            for cell in value.__closure__ or ():
                try:
                    inner = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(inner, types.FunctionType):
                    parts.append(code_hash(inner.__code__))
                elif isinstance(inner, str):
                    parts.append(inner)
            return " ".join(parts)
        if isinstance(value, types.BuiltinFunctionType):
            return "builtin " + str(getattr(value, "__qualname__", ""))
        return "-"

    def members(module):
        out = {"__file__": str(getattr(module, "__file__", None))}
        for name, value in list(vars(module).items()):
            out[name] = of(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if isinstance(member, (types.FunctionType, classmethod, staticmethod)):
                        out[name + "." + attr] = of(member)
        return out

    names = set(modules) | {n for n in list(sys.modules) if n == "course_lib" or n.startswith("course_lib.")}
    report = {"modules": {n: members(sys.modules[n]) for n in sorted(names) if sys.modules.get(n) is not None},
              "callees": {}, "hooks": []}
    try:
        shell = get_ipython()
    except NameError:
        shell = None
    for callee, full in callees:
        module, _, attr = full.rpartition(".")
        try:
            found = eval(callee, shell.user_ns if shell is not None else {})
        except Exception as err:
            report["callees"][callee] = "missing " + type(err).__name__
            continue
        real = getattr(sys.modules.get(module), attr, None)
        report["callees"][callee] = "course" if real is not None and found is real else "other " + of(found)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        report["hooks"].append("a profile or trace function is installed (sys.setprofile / sys.settrace)")
    if shell is not None and "publish" in vars(shell.display_pub):
        report["hooks"].append("the kernel's display publisher was replaced")
    return report
"""

GUARDED = (
    "builtins",
    "sys",
    "math",
    "functools",
    "hashlib",
    "types",
    "json",
    "torch",
    "torch.nn.functional",
    "numpy",
    "IPython.display",
    "IPython.core.display_functions",
    "IPython.core.displaypub",
    "ipykernel.zmqshell",
    "ipykernel.ipkernel",
)
# set by IPython or ipykernel in every kernel: different from a plain process, and not on a verdict's path
KERNEL_OWNED = {
    "builtins": {"input", "help", "exit", "quit", "display", "get_ipython", "breakpoint"},
    "sys": {"excepthook", "displayhook", "breakpointhook", "unraisablehook", "getdefaultencoding"},
}


def _fingerprint_function() -> Callable:
    namespace: dict = {}
    exec(FINGERPRINT, namespace)
    return namespace["_course_fingerprint"]


def _fingerprints() -> dict[str, dict[str, list[str]]]:
    """Run in a fresh process: the fingerprint of the ``GUARDED`` modules right after ``course_lib``
    is imported, and of every module once all of ``course_lib`` is (importing some libraries wraps
    functions of others: ``torch._dynamo`` wraps ``torch.manual_seed``); each member may be either."""
    import importlib

    import course_lib.checks

    fingerprint = _fingerprint_function()
    for name in GUARDED:
        importlib.import_module(name)
    first = fingerprint([], list(GUARDED))["modules"]
    names = ["course_lib"] + [
        m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib.") if not m.name.endswith("__main__")
    ]
    for name in names:
        importlib.import_module(name)
    last = fingerprint([], [*names, *GUARDED])["modules"]
    return {
        module: {name: sorted({value, first.get(module, {}).get(name, value)}) for name, value in members.items()}
        for module, members in last.items()
    }


_REFERENCE: dict = {}  # {course files' state: fingerprint}


def reference_fingerprint() -> dict[str, dict[str, list[str]]]:
    """The fingerprint of the course's own checking machinery, ``{module: {member: [allowed values]}}``:
    every module of ``course_lib`` (imported from the course) and the ``GUARDED`` modules of Python and
    its libraries, taken in a fresh process of its own; taken again when a course file changed."""
    state = max(p.stat().st_mtime_ns for p in (config.REPO_ROOT / "course_lib").rglob("*.py"))
    if state not in _REFERENCE:
        out = subprocess.run(
            [sys.executable, "-m", "course_lib.grading", "--reference"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(config.REPO_ROOT), "PYTHONSAFEPATH": "1"},
            cwd=config.REPO_ROOT,
        )
        _REFERENCE.clear()
        _REFERENCE[state] = json.loads(out.stdout.strip().splitlines()[-1])
    return _REFERENCE[state]


def guard_problems(report: dict | None, reference: dict[str, dict[str, list[str]]]) -> list[str]:
    """What in a guard's ``report`` differs from the course's ``reference`` (empty: nothing)."""
    if not isinstance(report, dict) or not isinstance(report.get("modules"), dict):
        return ["the grader's check did not report (it was interfered with)"]
    problems = list(report.get("hooks", []))
    for callee, found in report.get("callees", {}).items():
        if found.startswith("other"):
            problems.append(f"{callee} is not the course's checker")
    for module, members in report["modules"].items():
        expected = reference.get(module)
        if expected is None:
            if module.startswith("course_lib"):
                problems.append(f"{module} is not a module of the course")
            continue
        for name, value in expected.items():
            got = members.get(name)
            if name in KERNEL_OWNED.get(module, ()) or (got is None and "-" in value):
                continue
            if got not in value:
                what = (
                    "was deleted"
                    if got is None
                    else "comes from another file"
                    if name == "__file__"
                    else "was replaced or patched"
                )
                problems.append(f"{module}.{name} {what}")
    return problems


# --------------------------------------------------------------------------- the notebook that runs

SETUP = """import os as _os, sys as _sys
_sys.path[:] = [_p for _p in _sys.path if _p not in ("", ".", _os.getcwd())]   # the course, not this folder
import course_lib, course_lib.checks
del _os, _sys"""


def _guard_cell(calls: list, label: str) -> nbformat.NotebookNode:
    source = (
        FINGERPRINT + f"\n__import__('IPython.display', fromlist=['display']).display("
        f"{{{GUARD_MIME!r}: _course_fingerprint({[list(c) for c in calls]!r}, {list(GUARDED)!r}), "
        f"'text/plain': '(grader check)'}}, raw=True)\ndel _course_fingerprint\n"
    )
    return nbformat.v4.new_code_cell(source=source, metadata={"grader": label})


def graded_notebook(assembled: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``assembled`` with the grader's own cells: the setup cell and its guard first, then a guard
    before and after every locked checker cell."""
    out = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    out.cells = [nbformat.v4.new_code_cell(source=SETUP, metadata={"grader": "import"}), _guard_cell([], "setup")]
    for cell in assembled.cells:
        calls = cell.metadata.get("course", {}).get("checkers", []) if _locked(cell) else []
        if calls:
            out.cells.append(_guard_cell(calls, f"before {cell.id}"))
        out.cells.append(cell)
        if calls:
            out.cells.append(_guard_cell(calls, f"after {cell.id}"))
    return out


def _outputs(cell: Any, mime: str) -> list[Any]:
    return [o["data"][mime] for o in cell.get("outputs", []) if mime in o.get("data", {})]


def _guard(notebook: nbformat.NotebookNode, label: str, reference: dict) -> list[str] | None:
    """The problems the guard ``label`` found (None: it did not run)."""
    cell = next(c for c in notebook.cells if c.metadata.get("grader") == label)
    if cell.get("execution_count") is None:
        return None
    reports = _outputs(cell, GUARD_MIME)
    if len(reports) != 1:
        return [f"the grader's check published {len(reports)} reports instead of one"]
    return guard_problems(reports[0], reference)


def rows_of(
    executed: nbformat.NotebookNode,
    name: str,
    checks: list,
    titles: dict[str, str | None],
    reference: dict,
    stopped: str = "",
) -> list[GradeRow]:
    """The rows of an executed ``graded_notebook``: one per checker call of every locked cell
    (``checks`` from ``expected_checks``; ``titles`` maps a checker's full name to its title)."""
    rows = []
    setup = _guard(executed, "setup", reference)
    for cell_id, calls in checks:
        cell = next(c for c in executed.cells if c.get("id") == cell_id and _locked(c))
        ran = cell.get("execution_count") is not None
        problems = (setup or []) + (_guard(executed, f"before {cell_id}", reference) or [])
        if ran:
            problems += _guard(executed, f"after {cell_id}", reference) or []
        verdicts = [v for v in _outputs(cell, VERDICT_MIME) if isinstance(v, dict)]
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        for k, (callee, full) in enumerate(calls):
            title = titles.get(full)
            exercise = title or full.rpartition(".")[2]
            if problems:
                rows.append(GradeRow(name, exercise, "tampered", "; ".join(dict.fromkeys(problems))[:500]))
                continue
            if len(verdicts) > len(calls):
                rows.append(
                    GradeRow(
                        name,
                        exercise,
                        "tampered",
                        f"the cell published {len(verdicts)} verdicts for {len(calls)} checker(s): "
                        "one is not the checker's",
                    )
                )
                continue
            mine = [v for v in verdicts if v.get("exercise") == title] if title else verdicts[k : k + 1]
            if mine and mine[0].get("status") in VERDICTS:
                rows.append(
                    GradeRow(
                        name, mine[0].get("exercise", exercise), mine[0]["status"], str(mine[0].get("message", ""))
                    )
                )
            elif mine:
                rows.append(GradeRow(name, exercise, "tampered", f"unknown status {mine[0].get('status')!r}"))
            elif not ran:
                rows.append(
                    GradeRow(name, exercise, "error", f"did not run: {stopped or 'an earlier cell stopped the run'}")
                )
            elif error is not None:
                rows.append(GradeRow(name, exercise, "error", f"{error.get('ename')}: {error.get('evalue')}"))
            else:
                rows.append(GradeRow(name, exercise, "error", "the checker published no verdict"))
    return rows


# --------------------------------------------------------------------------- one submission, confined

LINK_ABOVE = 64 * 2**20


def _shadow(source: Path, target: Path) -> None:
    """``target`` mirrors ``source`` for one submission: files up to ``LINK_ABOVE`` bytes copied (a
    notebook may overwrite its outputs, in its own copy), larger ones (datasets) linked — readable, and
    the sandbox refuses a write through the link."""
    for folder, dirs, files in os.walk(source):
        here = target / Path(folder).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for file in files:
            original = Path(folder, file).resolve()
            if original.stat().st_size > LINK_ABOVE:
                (here / file).symlink_to(original)
            else:
                shutil.copyfile(original, here / file)


def _environment(root: Path, run: str) -> dict[str, str]:
    work, grader = root / "work", root / "grader"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JPY_", "COURSE_", "JUPYTER_", "IPYTHON"))
        and k not in ("PYTHONSTARTUP", "PYTHONPATH", "CI")
    }
    env.update(
        HOME=str(work),
        TMPDIR=str(work / "tmp"),
        MPLCONFIGDIR=str(work / ".matplotlib"),
        XDG_CACHE_HOME=str(work / ".cache"),
        IPYTHONDIR=str(work / ".ipython"),
        JUPYTER_PATH=str(grader / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(grader / "runtime"),
        JUPYTER_CONFIG_DIR=str(grader / "config"),
        PYTHONPATH=str(config.REPO_ROOT),
        PYTHONSAFEPATH="1",
        PYTHONDONTWRITEBYTECODE="1",
        COURSE_PROFILE="quick",
        COURSE_CHECKS="strict",
        MPLBACKEND="Agg",
        COURSE_DATA_DIR=str(work / "data"),
        COURSE_CLAIMS_FILE=str(work / "claims.json"),
    )
    env[sandbox.MARKER] = run
    return env


def _prepare(root: Path, memory: int | None, processes: int | None) -> None:
    work, grader = root / "work", root / "grader"
    for folder in (work / "tmp", grader / "runtime", grader / "config"):
        folder.mkdir(parents=True)
    data = Path(os.environ.get("COURSE_DATA_DIR", config.REPO_ROOT / "data"))
    if data.is_dir():
        _shadow(data, work / "data")
    spec = grader / "jupyter" / "kernels" / "course-grading"
    spec.mkdir(parents=True)
    launcher = [
        sys.executable,
        "-m",
        "course_lib.sandbox",
        "--memory",
        str(memory or 0),
        "--processes",
        str(processes or 0),
    ]
    for path in (work, "/dev/null", "/dev/shm"):
        launcher += ["--writable", str(path)]
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    *launcher,
                    "--",
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "--IPKernelApp.ignore_cwd=True",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "course grading (sandboxed)",
                "language": "python",
            }
        )
    )


def _grade_one(
    name: str,
    content: bytes | None,
    releases: dict,
    reference: dict,
    titles: dict,
    timeout: int,
    memory: int | None,
    processes: int | None,
) -> list[GradeRow]:
    try:
        submission = None if content is None else nbformat.reads(content.decode("utf-8"), as_version=4)
    except Exception as err:  # not a notebook: graded as if nothing was done
        submission, unreadable = None, f"cannot read the notebook: {type(err).__name__}: {err}"
    else:
        unreadable = ""
    chapter = chapter_of(submission, name, list(releases))
    if content is None and chapter is not None:  # a learner's folder without this chapter
        return [
            GradeRow(
                name, titles.get(full) or full.rpartition(".")[2], "not done", "no notebook of this chapter handed in"
            )
            for _, calls in expected_checks(releases[chapter])
            for _, full in calls
        ]
    if chapter is None:
        return [
            GradeRow(
                name,
                "(notebook)",
                "error",
                unreadable or "not a notebook of the course (no chapter in its metadata or its name)",
            )
        ]
    checks = expected_checks(releases[chapter])
    if unreadable:
        return [
            GradeRow(name, titles.get(full) or full.rpartition(".")[2], "not done", unreadable)
            for _, calls in checks
            for _, full in calls
        ]
    notebook = graded_notebook(assemble(releases[chapter], submission))
    run = uuid.uuid4().hex
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        _prepare(root, memory, processes)
        grader = root / "grader"
        nbformat.write(notebook, grader / "graded.ipynb")
        (grader / "job.json").write_text(json.dumps({"timeout": timeout, "work": str(root / "work")}))
        worker = subprocess.Popen(
            [sys.executable, "-m", "course_lib.sandbox", "run", str(grader)],
            cwd=root / "work",
            env=_environment(root, run),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, stderr = worker.communicate(timeout=timeout + 120)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, stderr = worker.communicate()
        sandbox.kill_marked(run)
        if not (grader / "result.json").exists():
            why = f"the grading process was killed (exit status {worker.returncode})"
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
            return [
                GradeRow(
                    name, titles.get(full) or full.rpartition(".")[2], "error", why + "".join(f": {t}" for t in tail)
                )
                for _, calls in checks
                for _, full in calls
            ]
        stopped = json.loads((grader / "result.json").read_text())["stopped"]
        executed = nbformat.read(grader / "executed.ipynb", as_version=4)
        return rows_of(executed, name, checks, titles, reference, stopped)
    finally:
        sandbox.kill_marked(run)
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- many submissions


def _titles(releases: dict) -> dict[str, str | None]:
    """``{checker's full name: its title}`` for every checker of the releases (None: no ``.title``)."""
    import importlib

    titles = {}
    for release in releases.values():
        for _, calls in expected_checks(release):
            for _, full in calls:
                module, _, attr = full.rpartition(".")
                try:
                    titles[full] = getattr(getattr(importlib.import_module(module), attr), "title", None)
                except (ImportError, AttributeError):
                    titles[full] = None
    return titles


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:  # graded as an unreadable notebook
        return str(err).encode()


def _stage(paths: list[Path], releases: dict, chapters: list[str] | None) -> list[tuple[str, bytes | None]]:
    """``[(name, content)]`` of every submission, read now, before any runs. A folder is one learner's:
    its notebooks, and ``(folder/chapter.ipynb, None)`` for each expected chapter (``chapters``: the
    chapters whose names start with one of them; None: all) it has no notebook of."""
    expected = [c for c in releases if chapters is None or any(c.startswith(x) for x in chapters)]
    staged: list[tuple[str, bytes | None]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            staged.append((path.name, _read(path)))
            continue
        handed = set()
        for file in sorted(path.glob("*.ipynb")):
            content = _read(file)
            staged.append((f"{path.name}/{file.name}", content))
            try:
                handed.add(chapter_of(nbformat.reads(content.decode("utf-8"), as_version=4), file.name, list(releases)))
            except Exception:
                handed.add(chapter_of(None, file.name, list(releases)))
        staged += [(f"{path.name}/{c}.ipynb", None) for c in expected if c not in handed]
    return staged


def grade(
    paths: list[Path],
    timeout: int = 300,
    log: Callable[[str], Any] | None = print,
    release: Path | None = None,
    memory_mib: int = MEMORY_MIB,
    processes: int = PROCESSES,
    csv_path: Path | None = None,
    chapters: list[str] | None = None,
) -> list[GradeRow]:
    """Grade several notebooks, or learners' folders of notebooks (a chapter missing from a folder:
    ``not done`` rows; ``chapters`` limits which are expected), each confined (``memory_mib`` MiB,
    ``processes`` processes, ``timeout`` seconds; 0 lifts the memory or process limit) against
    ``release`` (None: built from the course); ``log`` gets one summary line per notebook; rows are
    appended to ``csv_path`` as they come."""
    if not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    for label, value in (("memory_mib", memory_mib), ("processes", processes)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{label}={value!r} must be a whole number >= 0 (0: no limit)")
    releases = load_release(release)
    staged = _stage(paths, releases, chapters)  # every submission read before any of them runs
    reference, titles = reference_fingerprint(), _titles(releases)
    if csv_path is not None:
        write_csv([], csv_path)
    rows = []
    for name, content in staged:
        try:
            found = _grade_one(
                name, content, releases, reference, titles, timeout, memory_mib * 2**20 or None, processes or None
            )
        except Exception as err:  # a notebook shaped to break the grader breaks only its row
            found = [GradeRow(name, "(notebook)", "error", f"cannot grade it: {type(err).__name__}: {err}")]
        rows += found
        if csv_path is not None:
            with Path(csv_path).open("a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=[x.name for x in fields(GradeRow)]).writerows(asdict(r) for r in found)
                f.flush()
        if log:
            counts = {s: sum(r.status == s for r in found) for s in STATUSES}
            log(f"{name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return rows


def grade_notebook(path: Path, timeout: int = 300, **options: Any) -> list[GradeRow]:
    """Grade one notebook (see ``grade`` for the options)."""
    return grade([Path(path)], timeout, log=None, **options)


def table(rows: list[GradeRow]) -> str:
    """The rows as an aligned text table."""
    head = ("notebook", "exercise", "status", "message")
    body = [(r.notebook, r.exercise, r.status, r.message[:90]) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body])


def write_csv(rows: list[GradeRow], path: Path) -> Path:
    """Write the rows as CSV (one header line: notebook, exercise, status, message)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[x.name for x in fields(GradeRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return path


def _whole_number(text: str, low: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} must be {rule}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse names the option in its error)."""
    return _whole_number(text, 1, ">= 1")


def _limit(text: str) -> int:
    """An argparse type for a resource limit: a whole number >= 0, where 0 means no limit."""
    return _whole_number(text, 0, ">= 0 (0: no limit)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--reference"]:  # the course's fingerprint, from a fresh process (internal)
        print(json.dumps(_fingerprints()))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m course_lib grade",
        description="Execute submitted notebooks, each confined, and grade every exercise.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        help="submitted .ipynb files, or one folder per learner (a chapter it lacks: 'not done')",
    )
    parser.add_argument(
        "--chapters",
        nargs="+",
        default=None,
        help="the chapters a learner's folder must hold, e.g. 01 02 (default: all)",
    )
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"), help="where to write the CSV (grades.csv)")
    parser.add_argument(
        "--timeout", type=positive_int, default=300, help="seconds per notebook before it is stopped (300)"
    )
    parser.add_argument(
        "--memory", type=_limit, default=MEMORY_MIB, help=f"MiB of memory per notebook ({MEMORY_MIB}; 0: no limit)"
    )
    parser.add_argument(
        "--processes",
        type=_limit,
        default=PROCESSES,
        help=f"processes and threads a notebook may add ({PROCESSES}; 0: no limit)",
    )
    parser.add_argument(
        "--release",
        type=Path,
        default=None,
        help="the student edition you handed out (default: built from the course now)",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.is_file() and not p.is_dir()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = grade(
        args.paths,
        args.timeout,
        release=args.release,
        memory_mib=args.memory,
        processes=args.processes,
        csv_path=args.csv,
        chapters=args.chapters,
    )
    print(table(rows))
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
