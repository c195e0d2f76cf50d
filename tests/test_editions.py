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
