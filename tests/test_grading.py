"""The grading command: instructor edition all passed, student edition all not done, wrong and crash rows."""

import csv

import jupytext
import nbformat
import pytest

from course_lib import editions, grading

SOLVED = '''# %%
from course_lib import checks

# %%
def accuracy(logits, labels):
    # BEGIN SOLUTION
    return (logits.argmax(dim=1) == labels).float().mean().item()
    # END SOLUTION


# %%
checks.check_accuracy(accuracy)
'''


def write(folder, name, source):
    path = folder / name
    nbformat.write(jupytext.reads(source, fmt="py:percent"), path)
    return path


def test_instructor_student_wrong_and_crashing_notebooks(tmp_path):
    solved = write(tmp_path, "solved.ipynb", SOLVED)
    student = write(tmp_path, "student.ipynb", editions.strip_solutions(SOLVED))
    wrong = write(tmp_path, "wrong.ipynb", SOLVED.replace(".float().mean().item()", ".sum().item()")
                  + "\n# %%\n1 / 0\n\n# %%\nchecks.check_accuracy(undefined_name)\n")
    rows = grading.grade([solved, student, wrong], timeout=120, log=None)
    got = [(r.notebook, r.exercise, r.status) for r in rows]
    assert got == [("solved.ipynb", "accuracy", "passed"), ("student.ipynb", "accuracy", "not done"),
                   ("wrong.ipynb", "accuracy", "wrong"), ("wrong.ipynb", "check_accuracy", "error")]
    assert "should equal" in rows[2].message                       # the checker's own words
    assert "NameError" in rows[3].message
    out = grading.write_csv(rows, tmp_path / "grades.csv")
    with out.open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["passed", "not done", "wrong", "error"]
    assert "not done" in grading.table(rows)


def test_unreadable_notebook_and_time_limit(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert grading.grade_notebook(broken)[0].status == "error"
    slow = write(tmp_path, "slow.ipynb", SOLVED.replace("# %%\nchecks.check_accuracy(accuracy)\n",
                                                        "# %%\nimport time; time.sleep(30)\n\n# %%\nchecks.check_accuracy(accuracy)\n"))
    rows = grading.grade_notebook(slow, timeout=8)
    assert [r.status for r in rows] == ["error", "error"] and "stopped" in rows[-1].message
    with pytest.raises(ValueError, match="timeout=0 must be a positive number"):
        grading.grade_notebook(slow, timeout=0)


def test_real_chapter_instructor_and_student_editions(tmp_path):
    """Chapter 06 (fast): every exercise of the instructor edition passes, every one of the student
    edition is "not done"."""
    src = next(p for p in editions.notebook_sources("notebooks") if p.stem.startswith("06_"))
    nb = jupytext.read(src)
    nb.metadata.pop("jupytext", None)
    instructor = tmp_path / "instructor.ipynb"
    nbformat.write(nb, instructor)
    student = next(p for p in editions.build_student("notebooks", tmp_path / "student") if p.stem == src.stem)
    blocks = src.read_text().count(editions.BEGIN)
    rows = grading.grade([instructor, student], timeout=240, log=None)
    assert [r.status for r in rows if r.notebook == "instructor.ipynb"] == ["passed"] * blocks
    assert [r.status for r in rows if r.notebook == student.name] == ["not done"] * blocks


def test_grade_command_line(tmp_path, capsys):
    from course_lib import __main__ as cli

    solved = write(tmp_path, "solved.ipynb", SOLVED)
    assert cli.main(["grade", str(solved), "--csv", str(tmp_path / "g.csv"), "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "solved.ipynb  accuracy  passed" in out and (tmp_path / "g.csv").exists()
    assert cli.main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
