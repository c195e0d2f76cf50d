"""The grading command, honest and hostile.

Most cases grade a tiny released chapter (``90_tiny``: two exercises, both judged by the real
``exercises.ch00.check_accuracy``) built by ``editions.build_student`` from a source written here, so each
submission is a few seconds of kernel. The forged and hostile submissions are the ones measured in
issue 26: a patched checker, a patched ``checks._verdict``, a checker cell replaced by a printed ✅,
a skip-tagged checker cell with a stored ✅, deleted checker cells, a fake ``course_lib`` planted for
the next submissions, a classmate's notebook rewritten, the claims ledger forged, a process left
running, a 6 GiB allocation, the grader's process killed.
"""

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from course_lib import editions, grading, sandbox

SOURCE = '''# %%
import torch
from course_lib import checks
from course_lib.exercises import ch00

# %%
def accuracy(logits, labels):
    # BEGIN SOLUTION
    return (logits.argmax(dim=1) == labels).float().mean().item()
    # END SOLUTION


# %%
ch00.check_accuracy(accuracy)

# %%
def accuracy_again(logits, labels):
    # BEGIN SOLUTION
    return (logits.argmax(dim=1) == labels).float().mean().item()
    # END SOLUTION


# %%
ch00.check_accuracy(accuracy_again)
'''
SOLUTION = SOURCE.split("# %%")[2].strip()          # the solved exercise cell, as the learner writes it
SOLUTION_AGAIN = SOURCE.split("# %%")[4].strip()
EXERCISE, CHECKER, EXERCISE_AGAIN, CHECKER_AGAIN = 1, 2, 3, 4   # cell indices in the release


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The released tiny chapter: ``(release folder, released notebook)``."""
    root = tmp_path_factory.mktemp("course")
    (root / "src").mkdir()
    (root / "src" / "90_tiny.py").write_text(SOURCE)
    path, = editions.build_student(root / "src", root / "release")
    return root / "release", nbformat.read(path, as_version=4)


def submission(release, *, solve=(), sources=None, insert=(), delete=(), tags=None, outputs=None):
    """A learner's copy of the release: ``solve`` exercises (1, 2), cell sources replaced
    (``{index: source}``), cells inserted (``[(before index, source)]``), cells deleted, tags and
    stored outputs set."""
    nb = copy.deepcopy(release)
    if 1 in solve:
        nb.cells[EXERCISE].source = SOLUTION
    if 2 in solve:
        nb.cells[EXERCISE_AGAIN].source = SOLUTION_AGAIN
    for index, source in (sources or {}).items():
        nb.cells[index].source = source
    for index in (tags or {}):
        nb.cells[index].metadata["tags"] = tags[index]
    for index in (outputs or {}):
        nb.cells[index].outputs = outputs[index]
    for before, source in sorted(insert, reverse=True):
        nb.cells.insert(before, nbformat.v4.new_code_cell(source))
    nb.cells = [c for i, c in enumerate(nb.cells) if i not in delete]
    return nb


def write(folder, name, nb):
    path = folder / name
    nbformat.write(nb, path)
    return path


PASSED_OUTPUT = [nbformat.v4.new_output("stream", name="stdout", text="✅ accuracy: correct.\n")]
FORGED_DISPLAY = ("from IPython.display import display\n"
                  "display({checks.VERDICT_MIME: {'exercise': 'accuracy', 'status': 'passed', 'message': 'forged'}}, raw=True)")


HOSTILE = {
    # plants a fake course_lib for the next submissions and rewrites a classmate's notebook
    "saboteur": '''import os, pathlib
sub = pathlib.Path({sub!r})
for folder in (pathlib.Path.cwd(), sub):
    try:
        (folder / "course_lib").mkdir(exist_ok=True)
        (folder / "course_lib" / "exercises").mkdir(parents=True, exist_ok=True)
        (folder / "course_lib" / "__init__.py").write_text("")
        (folder / "course_lib" / "exercises" / "__init__.py").write_text("")
        (folder / "course_lib" / "exercises" / "ch00.py").write_text("def check_accuracy(fn): print('✅ accuracy: correct.')")
    except OSError:
        pass
try:
    (sub / "victim.ipynb").write_text("{{}}")
except OSError:
    pass''',
    # forges the course's claims ledger, leaves processes behind, asks for 6 GiB
    "hostile": '''import os, subprocess, pathlib
checks.claim("99", "a forged claim", paper="x", ours="y", holds=True)
try:
    with open({ledger!r}, "a") as f:
        f.write("forged")
except OSError:
    pass
subprocess.Popen(["sleep", "313.25"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    os.execvp("sleep", ["sleep", "313.25"])
try:
    big = torch.empty(6 * 2**30, dtype=torch.uint8)
    big.fill_(1)
except RuntimeError:
    pass''',
    "killer": "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)",
}


def _sleepers():
    return [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"313.25" in (p.read_bytes() if p.exists() else b"")]


def test_honest_forged_and_hostile_submissions_in_one_run(course, tmp_path, monkeypatch):
    """One grading run, in this order: the hostile submissions first (so that what they leave behind
    would reach the ones after them), then honest and forged ones."""
    release_dir, release = course
    sub = tmp_path / "submissions"
    sub.mkdir()
    ledger = tmp_path / "course-ledger.json"                 # the lecturer's ledger (other tests may write build/'s)
    ledger.write_text("[]")
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(ledger))
    before = ledger.read_bytes()
    cases = {
        "saboteur.ipynb": submission(release, insert=[(EXERCISE, HOSTILE["saboteur"].format(sub=str(sub)))]),
        "hostile.ipynb": submission(release, solve=(1, 2), insert=[(EXERCISE, HOSTILE["hostile"].format(ledger=str(ledger)))]),
        "killer.ipynb": submission(release, solve=(1, 2), insert=[(CHECKER_AGAIN, HOSTILE["killer"])]),
        "victim.ipynb": submission(release, solve=(1, 2)),          # honest, solved: its file is rewritten above
        "stub.ipynb": release,                                     # honest, untouched: graded after the fake course_lib
        "wrong.ipynb": submission(release, sources={EXERCISE: SOLUTION.replace(".float().mean()", ".sum()"),
                                                    EXERCISE_AGAIN: "def accuracy_again(logits, labels):\n    return 1 / 0"}),
        # the checker replaced in an earlier cell
        "patched_checker.ipynb": submission(release, insert=[(CHECKER, "ch00.check_accuracy = lambda fn: "
                                                                       "print('✅ accuracy: correct.')")]),
        # checks._verdict patched: every later checker would pass
        "patched_verdict.ipynb": submission(release, insert=[(EXERCISE, "checks._verdict = lambda t, s, m: "
                                                                        "checks._publish(t, 'passed', t + ': correct.')")]),
        # a checker cell replaced by a printed verdict (the comment keeps it a 'checker cell'), tagged
        # skip-execution and carrying a stored ✅ output; the other checker cell deleted
        "printed.ipynb": submission(release, solve=(1,), sources={CHECKER: "print('✅ accuracy: correct.')  # ch00.check_accuracy("},
                                    tags={CHECKER: ["skip-execution"]}, outputs={CHECKER: PASSED_OUTPUT},
                                    delete={CHECKER_AGAIN}),
        # the learner's function publishes a verdict of its own before the checker's
        "forged_inside.ipynb": submission(release, sources={EXERCISE: (
            "def accuracy(logits, labels):\n    " + FORGED_DISPLAY.replace("\n", "\n    ") + "\n    return 0.0")}),
    }
    paths = [write(sub, name, nb) for name, nb in cases.items()]
    victim_bytes = (sub / "victim.ipynb").read_bytes()
    (sub / "broken.ipynb").write_text("{not json")
    foreign = write(sub, "other.ipynb", nbformat.v4.new_notebook())
    rows = grading.grade([*paths, sub / "broken.ipynb", foreign], timeout=120, log=None, release=release_dir,
                         csv_path=tmp_path / "grades.csv")
    got = {}
    for r in rows:
        got.setdefault(r.notebook, []).append(r.status)
    messages = {(r.notebook, r.status): r.message for r in rows}
    # honest
    assert got["victim.ipynb"] == ["passed", "passed"]             # graded from what was handed in
    assert got["stub.ipynb"] == ["not done", "not done"]           # the fake course_lib did not reach it
    assert got["wrong.ipynb"] == ["wrong", "error"]
    assert "should equal" in messages[("wrong.ipynb", "wrong")]    # the checker's own words
    assert "ZeroDivisionError" in messages[("wrong.ipynb", "error")]
    # forged
    assert got["patched_checker.ipynb"] == ["tampered", "tampered"]
    assert "check_accuracy" in messages[("patched_checker.ipynb", "tampered")]
    assert got["patched_verdict.ipynb"] == ["tampered", "tampered"]
    assert "course_lib.checks._verdict was replaced" in messages[("patched_verdict.ipynb", "tampered")]
    assert got["printed.ipynb"] == ["passed", "not done"]          # the locked cells came back and ran: both rows
    assert got["forged_inside.ipynb"][0] == "tampered"
    assert got["broken.ipynb"] == ["error"] and got["other.ipynb"] == ["error"]
    # hostile
    assert got["saboteur.ipynb"] == ["not done", "not done"]
    assert got["hostile.ipynb"] == ["passed", "passed"]            # the 6 GiB allocation failed in its own cell
    assert "a forged claim" not in ledger.read_text()              # checks.claim wrote the submission's own ledger
    assert not _sleepers(), "a process of a submission outlived its grading"
    if sandbox.landlock_abi() >= 1:                                # the write fence holds
        assert (sub / "victim.ipynb").read_bytes() == victim_bytes and not (sub / "course_lib").exists()
        assert ledger.read_bytes() == before
    if sandbox.landlock_abi() >= 6:                                # the grader cannot be signalled
        assert got["killer.ipynb"] == ["passed", "passed"]
    else:                                                          # only the killer's grading process died
        assert got["killer.ipynb"] in (["passed", "passed"], ["error", "error"])
    assert {r.exercise for r in rows if r.exercise != "(notebook)"} == {"accuracy"}
    with (tmp_path / "grades.csv").open() as f:                    # appended as graded: nothing lost after the kill
        assert [(r["notebook"], r["status"]) for r in csv.DictReader(f)] == [(r.notebook, r.status) for r in rows]
    assert "tampered" in grading.table(rows)


def test_memory_limit_and_write_fence_of_the_launcher(tmp_path):
    """The launcher's limits alone: torch imports under 4 GiB, a 6 GiB tensor fails cleanly; writes
    outside the allowed folder are refused where Landlock exists."""
    code = ("import torch\ntry:\n    torch.empty(6 * 2**30, dtype=torch.uint8).fill_(1); print('allocated')\n"
            "except RuntimeError:\n    print('refused')\n"
            f"try:\n    open({str(tmp_path / 'outside.txt')!r}, 'w'); print('wrote')\nexcept OSError:\n    print('fenced')\n"
            f"open({str(tmp_path / 'inside' / 'ok.txt')!r}, 'w').write('x')")
    (tmp_path / "inside").mkdir()
    out = subprocess.run([sys.executable, "-m", "course_lib.sandbox", "--memory", str(4 * 2**30), "--processes", "64",
                          "--writable", str(tmp_path / "inside"), "--", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path / "inside")})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "refused"
    assert lines[1] == ("fenced" if sandbox.landlock_abi() >= 1 else "wrote")
    assert (tmp_path / "inside" / "ok.txt").exists()
    assert sandbox.main(["--memory", "1"]) == 2                       # no command: the usage, no exec


def test_assemble_restores_locked_cells_and_keeps_the_learners(course):
    _, release = course
    nb = submission(release, solve=(1,), sources={CHECKER: "print('✅')"}, insert=[(EXERCISE + 1, "helper = 1")],
                    tags={EXERCISE: ["skip-execution"]}, outputs={EXERCISE: PASSED_OUTPUT}, delete={EXERCISE_AGAIN})
    out = grading.assemble(release, nb)
    sources = [c.source for c in out.cells]
    assert sources == [release.cells[0].source, SOLUTION, "helper = 1", release.cells[CHECKER].source,
                       release.cells[EXERCISE_AGAIN].source, release.cells[CHECKER_AGAIN].source]
    assert all(not c.get("outputs") and "tags" not in c.metadata for c in out.cells if c.cell_type == "code")
    assert [c for c in out.cells if c.metadata.get("course", {}).get("locked")] == \
        [out.cells[3], out.cells[5]]
    assert grading.expected_checks(release) == [(release.cells[CHECKER].id, [("ch00.check_accuracy",
                                                                              "course_lib.exercises.ch00.check_accuracy")]),
                                                (release.cells[CHECKER_AGAIN].id, [("ch00.check_accuracy",
                                                                                    "course_lib.exercises.ch00.check_accuracy")])]
    assert grading.chapter_of(nb, "anything.ipynb", ["90_tiny"]) == "90_tiny"
    assert grading.chapter_of(None, "alice_90_tiny.ipynb", ["90_tiny"]) == "90_tiny"
    assert grading.chapter_of(None, "notes.ipynb", ["90_tiny"]) is None


def test_guard_problems_name_what_changed():
    reference = {"course_lib.checks": {"__file__": ["/course/course_lib/checks.py"], "_verdict": ["abc"], "X": ["-"]},
                 "builtins": {"input": ["builtin input"]}}
    clean = {"modules": {"course_lib.checks": {"__file__": "/course/course_lib/checks.py", "_verdict": "abc"},
                         "builtins": {"input": "-"}}, "callees": {"checks.check_x": "course"}, "hooks": []}
    assert grading.guard_problems(clean, reference) == []
    forged = json.loads(json.dumps(clean))
    forged["modules"]["course_lib.checks"].update(__file__="/tmp/course_lib/checks.py", _verdict="def")
    forged["modules"]["course_lib.fake"] = {}
    forged["callees"]["checks.check_x"] = "other 123"
    problems = grading.guard_problems(forged, reference)
    assert problems == ["checks.check_x is not the course's checker", "course_lib.checks.__file__ comes from another file",
                        "course_lib.checks._verdict was replaced or patched", "course_lib.fake is not a module of the course"]
    assert grading.guard_problems(None, reference) == ["the grader's check did not report (it was interfered with)"]


def test_time_limit(course, tmp_path):
    release_dir, release = course
    slow = write(tmp_path, "slow.ipynb", submission(release, solve=(1, 2), insert=[(CHECKER, "import time; time.sleep(60)")]))
    rows = grading.grade_notebook(slow, timeout=8, release=release_dir)
    assert [r.status for r in rows] == ["error", "error"]
    assert "time limit" in rows[0].message
    with pytest.raises(ValueError, match="timeout=0 must be a positive number"):
        grading.grade_notebook(slow, timeout=0)
    with pytest.raises(ValueError, match="memory_mib=-1 must be a whole number"):
        grading.grade_notebook(slow, memory_mib=-1)


def test_a_real_chapter_solved_passes_every_exercise(tmp_path):
    """Chapter 06 (fast), every exercise solved as the instructor edition solves it: all passed — the
    guards find nothing to complain about in a real chapter (the student edition's "not done" is the
    tiny chapter's case above)."""
    src = next(p for p in editions.notebook_sources("notebooks") if p.stem.startswith("06_"))
    student = next(p for p in editions.build_student("notebooks", tmp_path / "release") if p.stem == src.stem)
    solved = nbformat.read(student, as_version=4)
    by_stub = {editions.strip_solutions(c.source).rstrip("\n"): c.source for c in jupytext.read(src).cells}
    for cell in solved.cells:                        # the learner solves every exercise as the source does
        cell.source = by_stub.get(cell.source.rstrip("\n"), cell.source)
    rows = grading.grade([write(tmp_path, "solved.ipynb", solved)], timeout=240, log=None, release=tmp_path / "release")
    assert len(rows) == src.read_text().count(editions.BEGIN) >= 3
    assert [(r.status, r.message) for r in rows] == [("passed", r.message) for r in rows]


def test_the_guard_names_a_patched_function(monkeypatch):
    """The guard's comparison, in this process: each patch adds exactly its own problem."""
    import IPython.display
    import torch

    from course_lib import checks

    reference = grading.reference_fingerprint()
    fingerprint = grading._fingerprint_function()

    def problems():
        return set(grading.guard_problems(fingerprint([], list(grading.GUARDED)), reference))

    clean = problems()
    for module, name, what in ((torch, "allclose", "torch.allclose"), (checks, "_publish", "course_lib.checks._publish"),
                               (IPython.display, "display", "IPython.display.display")):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, lambda *args, **kwargs: True)
            assert problems() - clean == {f"{what} was replaced or patched"}
    sys.setprofile(lambda *args: None)
    try:
        assert problems() - clean == {"a profile or trace function is installed (sys.setprofile / sys.settrace)"}
    finally:
        sys.setprofile(None)


def test_grade_command_line(course, tmp_path, capsys):
    """The options reach grading (a notebook of no chapter: one row, no kernel needed)."""
    from course_lib import __main__ as cli

    release_dir, _ = course
    other = write(tmp_path, "other.ipynb", nbformat.v4.new_notebook())
    assert cli.main(["grade", str(other), "--csv", str(tmp_path / "g.csv"), "--timeout", "120",
                     "--release", str(release_dir), "--memory", "3000", "--processes", "0"]) == 0
    out = capsys.readouterr().out
    assert "other.ipynb  (notebook)  error   not a notebook of the course" in out
    with (tmp_path / "g.csv").open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["error"]
    alice = tmp_path / "alice"                                      # one learner's folder, chapter 90 missing
    alice.mkdir()
    write(alice, "notes.ipynb", nbformat.v4.new_notebook())
    assert cli.main(["grade", str(alice), "--csv", str(tmp_path / "a.csv"), "--release", str(release_dir),
                     "--chapters", "90"]) == 0
    with (tmp_path / "a.csv").open() as f:
        assert [(r["notebook"], r["exercise"], r["status"]) for r in csv.DictReader(f)] == [
            ("alice/notes.ipynb", "(notebook)", "error"), ("alice/90_tiny.ipynb", "accuracy", "not done"),
            ("alice/90_tiny.ipynb", "accuracy", "not done")]
    assert "no notebook of this chapter handed in" in capsys.readouterr().out
    assert grading.grade([alice], log=None, release=release_dir, chapters=["01"]) == \
        [grading.GradeRow("alice/notes.ipynb", "(notebook)", "error",
                          "not a notebook of the course (no chapter in its metadata or its name)")]
    assert cli.main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", str(other), "--memory", "-1"])


def test_the_submissions_environment(tmp_path, monkeypatch):
    """A submission's ledger, home, caches and data are inside its own folder; the lecturer's
    COURSE_* settings do not reach it; the kernel is started through the sandbox launcher."""
    monkeypatch.setenv("COURSE_CLAIMS_FILE", "/somewhere/claims.json")
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    env = grading._environment(tmp_path, "run-1")
    for key in ("COURSE_CLAIMS_FILE", "HOME", "TMPDIR", "COURSE_DATA_DIR", "MPLCONFIGDIR", "IPYTHONDIR"):
        assert env[key].startswith(str(tmp_path / "work")), key
    assert "COURSE_DRY_RUN" not in env and env["COURSE_CHECKS"] == "strict" and env["COURSE_PROFILE"] == "quick"
    assert env[sandbox.MARKER] == "run-1" and env["PYTHONSAFEPATH"] == "1"
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "small.bin").write_bytes(b"x")
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    monkeypatch.setattr(grading, "LINK_ABOVE", 0)                  # every file above 0 bytes is linked
    (data / "empty.bin").write_bytes(b"")
    grading._prepare(tmp_path, 2**30, 16)
    assert (tmp_path / "work" / "data" / "sub" / "small.bin").is_symlink()
    assert not (tmp_path / "work" / "data" / "empty.bin").is_symlink()
    spec = json.loads((tmp_path / "grader" / "jupyter" / "kernels" / "course-grading" / "kernel.json").read_text())
    assert spec["argv"][1:3] == ["-m", "course_lib.sandbox"] and "--writable" in spec["argv"]
    assert spec["argv"][spec["argv"].index("--memory") + 1] == str(2**30)
