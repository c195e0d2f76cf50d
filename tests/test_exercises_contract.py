"""The exercises' contract, across the whole course (issue 26): checkers live in
``course_lib.exercises`` (one module per chapter), the chapter modules keep no checker and no public
answer key, every notebook's checker cell calls a checker of its own chapter's module, and every
chapter from 01 on has at least three exercises."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from course_lib.checks import ExerciseError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CHAPTER_MODULES = ["conv", "quant", "lowrank", "prune", "huffman", "compressed_file", "compress", "igc", "resnets",
                   "densenet", "smallnets", "wae", "capstone", "deploy"]
CHECKER_CALL = re.compile(r"^(?:\w+ = )?(\w+)\.(check_\w+)\(", re.MULTILINE)


def public_functions(module_name):
    tree = ast.parse((ROOT / "course_lib" / f"{module_name}.py").read_text())
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and not node.name.startswith("_")]


@pytest.mark.parametrize("name", CHAPTER_MODULES)
def test_chapter_modules_hold_no_checker_and_no_answer_key(name):
    names = public_functions(name)
    assert not [n for n in names if n.startswith("check_")], f"{name} defines a checker: move it to course_lib.exercises"
    assert not [n for n in names if n.startswith("reference_")], f"{name} has a public answer key"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_checker_cell_calls_its_own_chapters_exercise_module(path):
    source = path.read_text()
    chapter = path.stem[:2]
    assert f"from course_lib.exercises import ch{chapter} as ex" in source
    calls = CHECKER_CALL.findall(source)
    module = importlib.import_module(f"course_lib.exercises.ch{chapter}")
    assert calls and all(prefix == "ex" for prefix, _ in calls), f"{path.name}: checker calls {calls}"
    for _, name in calls:
        assert name in module.__all__, f"{path.name} calls ex.{name}, which ch{chapter} does not export"
    if chapter != "00":
        assert len(set(calls)) >= 3, f"{path.name} has {len(set(calls))} exercises; the course promises three"
    assert source.count("# BEGIN SOLUTION") == len(calls), f"{path.name}: one solution block per checker cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_module_refuses_a_stub(path, monkeypatch):
    """A checker that takes one function rejects the unfilled stub (each chapter's own tests go further)."""
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    module = importlib.import_module(f"course_lib.exercises.ch{path.stem[:2]}")

    def stub(*args, **kwargs):
        raise NotImplementedError("your code here")

    tried = []
    for name in module.__all__:
        check = getattr(module, name)
        if getattr(check, "title", None) is None:            # not a @checker (e.g. the challenge's helpers)
            continue
        try:
            check(stub)
        except ExerciseError as err:
            assert "not done yet" in str(err), f"{name}: {err}"
            tried.append(name)
        except TypeError:                                     # needs more than the function (measured data)
            continue
        else:
            raise AssertionError(f"{name} accepted the stub")
    assert tried, f"no checker of {module.__name__} could be called with the stub alone"
