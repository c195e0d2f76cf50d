import json

import nbformat
import pytest

from course_lib import editions

SOURCE = '''# %%
def f(x):
    # BEGIN SOLUTION
    y = x + 1
    return y
    # END SOLUTION

# %%
# BEGIN SOLUTION
answer = 42
# END SOLUTION
print("kept")
'''


def test_strip_solutions_keeps_indentation_and_everything_else():
    out = editions.strip_solutions(SOURCE)
    assert "y = x + 1" not in out and "answer = 42" not in out
    assert '    raise NotImplementedError("your code here")\n' in out
    assert '\nraise NotImplementedError("your code here")\nprint("kept")' in out
    namespace = {}
    exec(out.split("# %%")[1], namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


@pytest.mark.parametrize("bad,message", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without a '# BEGIN SOLUTION'"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside the block opened at line 1"),
])
def test_unbalanced_markers_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        editions.strip_solutions(bad, "nb.py")


def test_student_edition_of_the_real_course(tmp_path):
    sources = editions.notebook_sources("notebooks")
    assert sources, "no notebooks found"
    written = editions.build_student("notebooks", tmp_path)
    assert [p.stem for p in written] == [s.stem for s in sources]
    total_blocks = 0
    for src, path in zip(sources, written):
        text = src.read_text()
        blocks = text.count(editions.BEGIN)
        total_blocks += blocks
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
        assert editions.BEGIN not in code and editions.END not in code
        assert code.count(editions.STUB) == blocks, path.name
        assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    assert total_blocks >= 1
    assert json.loads(written[0].read_text())["nbformat"] == 4


def test_every_student_stub_sits_inside_a_function(tmp_path):
    """A stub at a cell's top level would stop *Run All* in the learner's notebook: each must be the
    body of the exercise function, so that only its checker reports "not done yet"."""
    import ast

    for path in editions.build_student("notebooks", tmp_path):
        nb = nbformat.read(path, as_version=4)
        for number, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or editions.STUB not in cell.source:
                continue
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.parse(code).body:
                if editions.STUB in (ast.get_source_segment(code, node) or ""):
                    assert isinstance(node, (ast.FunctionDef, ast.ClassDef)), \
                        f"{path.name} cell {number}: the stub is at the top level, not inside a function"


def test_run_all_reaches_the_end_of_a_student_notebook(tmp_path, monkeypatch):
    """Lenient checkers (a learner's JupyterLab): every cell of an unsolved student notebook runs and
    each checker says "not done yet"; strict checkers (CI, grading) stop at the first one."""
    import nbclient

    student = editions.build_student("notebooks", tmp_path)
    path = next(p for p in student if p.stem.startswith("01_"))
    blocks = path.read_text().count("NotImplementedError(\\\"your code here\\\")")
    monkeypatch.setenv("COURSE_CHECKS", "lenient")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
    printed = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")                 # a verdict is display data
                      for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert blocks >= 1 and printed.count("not done yet") == blocks
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    nb = nbformat.read(path, as_version=4)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="not done yet"):
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": "notebooks"}}).execute()


# --------------------------------------------------------------------------- the release, the workspace, solutions

TINY = '''# %%
from course_lib import checks
from course_lib.exercises import ch00 as ex

# %%
def f(x):
    # BEGIN SOLUTION
    return x + 1
    # END SOLUTION

# %%
ex.check_f(f)  # a checker cell

# %%
ex.check_accuracy(f); print("done")

# %%
print("not a checker: check_f(f) in a string")
'''


def _course(tmp_path, source=TINY):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "90_tiny.py").write_text(source)
    return src


def test_the_release_has_stable_ids_and_locks_every_checker_cell(tmp_path):
    src = _course(tmp_path)
    first, = editions.build_student(src, tmp_path / "a")
    again, = editions.build_student(src, tmp_path / "b")
    nb, nb_again = (nbformat.read(p, as_version=4) for p in (first, again))
    nbformat.validate(nb)
    assert [c.id for c in nb.cells] == [c.id for c in nb_again.cells]          # stable across builds
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    assert nb.metadata["course"] == {"edition": "student", "chapter": "90_tiny"}
    locked = {i: c.metadata["course"]["checkers"] for i, c in enumerate(nb.cells) if c.metadata.get("course", {}).get("locked")}
    assert locked == {2: [["ex.check_f", "course_lib.exercises.ch00.check_f"]],
                      3: [["ex.check_accuracy", "course_lib.exercises.ch00.check_accuracy"]]}
    aliases = editions.import_aliases(nb)
    assert aliases["ex"] == "course_lib.exercises.ch00" and aliases["checks"] == "course_lib.checks"
    assert editions.checker_calls("%time x = 1\nex.check_f(f)\nother.check_g(g)", aliases) == \
        [("ex.check_f", "course_lib.exercises.ch00.check_f")]                   # magics skipped, unknown names ignored
    assert editions.checker_calls("def broken(:", aliases) == []


def test_every_chapter_of_the_course_is_released_with_its_checkers(tmp_path):
    """Every chapter with an exercise has its checker cells locked, each naming course_lib checkers."""
    for path in editions.build_student("notebooks", tmp_path):
        nb = nbformat.read(path, as_version=4)
        stubs = sum(editions.STUB in c.source for c in nb.cells if c.cell_type == "code")
        calls = [name for c in nb.cells if c.metadata.get("course", {}).get("locked")
                 for _, name in c.metadata["course"]["checkers"]]
        assert stubs == 0 or calls, f"{path.name} has exercises but no locked checker cell"
        assert all(name.startswith("course_lib.") and name.rpartition(".")[2].startswith("check_") for name in calls)


def test_the_workspace_never_overwrites_the_learners_work(tmp_path):
    src = _course(tmp_path)
    messages = []
    work = tmp_path / "mywork"
    copied = editions.build_workspace(src, work, log=messages.append)
    assert [p.name for p in copied] == ["90_tiny.ipynb"]
    mine = work / "90_tiny.ipynb"
    nb = nbformat.read(mine, as_version=4)
    assert editions.STUB in nb.cells[1].source and "x + 1" not in nb.cells[1].source   # the learner's edition
    mine.write_text(mine.read_text().replace("your code here", "my own work"))
    assert editions.build_workspace(src, work, log=messages.append) == []             # nothing new, nothing changed
    _course(tmp_path, TINY.replace("return x + 1", "return x + 2") + '\n# %%\nprint("a new cell")\n')
    assert editions.build_workspace(src, work, log=messages.append) == []
    assert "my own work" in mine.read_text()                                          # kept as the learner left it
    assert any("changed in the course" in m and "is kept" in m for m in messages)
    mine.unlink()
    assert [p.name for p in editions.build_workspace(src, work, log=None)] == ["90_tiny.ipynb"]


def test_solutions_are_one_command_away(tmp_path, capsys):
    src = _course(tmp_path)
    text = editions.solutions("90", src)
    assert "return x + 1" in text and "# BEGIN SOLUTION" in text and "90_tiny" in text
    with pytest.raises(ValueError, match="chapter='77' is not a chapter"):
        editions.solutions("77", src)
    assert editions.main(["solutions", "01"]) == 0
    assert "Reference solutions of 01_conv_as_matmul" in capsys.readouterr().out
    assert editions.main(["solutions", "77"]) == 2
    assert editions.main(["nonsense", "x"]) == 2
