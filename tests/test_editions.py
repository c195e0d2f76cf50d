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
