"""Grading submitted notebooks: run them, read every checker's verdict, write one row per exercise.

A lecturer collects the learners' notebooks (the student edition, filled in) and runs

    python -m course_lib grade submissions/*.ipynb --csv grades.csv [--timeout 300]

Each notebook is executed in a fresh kernel in the quick profile with strict checkers
(``COURSE_CHECKS=strict``), so a checker that is not satisfied raises in its own cell; execution goes on
after an error, so one crashing cell does not hide the exercises after it. A *checker cell* is a code
cell that calls a ``check_…`` function; its verdict is read from the cell's outputs:

- ``passed``   — the checker printed its "✅ …: correct." line;
- ``not done`` — it raised "not done yet" (the stub is still there);
- ``wrong``    — it raised ``ExerciseError`` with what is wrong;
- ``error``    — the cell failed some other way (the learner's code crashed, a name is missing).

A notebook that cannot be read, or that runs past its time limit, gets one ``error`` row.
The capstone's design challenge is graded the same way: its checker prints the submission's figures.
"""

import argparse
import csv
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import nbformat

from .editions import KERNELSPEC, environment

__all__ = ["STATUSES", "GradeRow", "checker_cells", "verdicts", "grade_notebook", "grade", "table", "write_csv",
           "positive_int", "main"]

STATUSES = ("passed", "not done", "wrong", "error")
CHECK_CALL = re.compile(r"\bcheck_\w+\s*\(")
PASSED = re.compile(r"✅ (.+?): correct\.")


@dataclass
class GradeRow:
    """One exercise of one notebook: its status and the checker's message."""

    notebook: str
    exercise: str
    status: str
    message: str = ""


def checker_cells(notebook: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that call a checker (``something.check_name(...)``)."""
    return [i for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and CHECK_CALL.search(cell.source)]


def _exercise_name(source: str) -> str:
    match = re.search(r"\b(check_\w+)\s*\(", source)
    return match.group(1) if match else "?"


def verdicts(notebook: nbformat.NotebookNode, name: str) -> list[GradeRow]:
    """The rows of an executed notebook: one per checker cell, read from its outputs."""
    rows = []
    for i in checker_cells(notebook):
        cell = notebook.cells[i]
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        passed = PASSED.search(text)
        exercise = passed.group(1) if passed else _exercise_name(cell.source)
        if error is not None:
            message = f"{error.get('ename', '')}: {error.get('evalue', '')}"
            title = error.get("evalue", "").split(":", 1)[0] if error.get("ename") == "ExerciseError" else exercise
            if error.get("ename") == "ExerciseError" and "not done yet" in error.get("evalue", ""):
                rows.append(GradeRow(name, title, "not done", "not done yet"))
            elif error.get("ename") == "ExerciseError":
                rows.append(GradeRow(name, title, "wrong", error.get("evalue", "").split(": ", 1)[-1]))
            else:
                rows.append(GradeRow(name, exercise, "error", message))
        elif passed:
            rows.append(GradeRow(name, exercise, "passed", text.strip().splitlines()[-1]))
        elif cell.get("execution_count") is None:
            rows.append(GradeRow(name, exercise, "error", "the cell did not run (an earlier timeout or crash)"))
        else:
            rows.append(GradeRow(name, exercise, "error", "the checker printed no verdict"))
    return rows


def grade_notebook(path: Path, timeout: int = 300) -> list[GradeRow]:
    """Execute the notebook at ``path`` (quick profile, strict checkers, errors allowed, at most
    ``timeout`` seconds in all) and grade it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path)
    if not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as err:                       # not a notebook at all: one row says so
        return [GradeRow(path.name, "(notebook)", "error", f"cannot read the notebook: {err}")]
    notebook.metadata["kernelspec"] = KERNELSPEC
    deadline = time.monotonic() + timeout          # one time limit for the whole notebook
    client = NotebookClient(notebook, kernel_name="python3", allow_errors=True,
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(path.parent)}})
    with environment(COURSE_PROFILE="quick", COURSE_CHECKS="strict", MPLBACKEND="Agg"):
        try:
            client.execute()
        except (CellTimeoutError, DeadKernelError, TimeoutError, RuntimeError) as err:
            rows = verdicts(notebook, path.name)
            return rows + [GradeRow(path.name, "(notebook)", "error", f"stopped: {type(err).__name__}: {err}")]
    return verdicts(notebook, path.name)


def grade(paths: list[Path], timeout: int = 300, log: Callable[[str], Any] = print) -> list[GradeRow]:
    """Grade several notebooks; ``log`` gets one summary line per notebook."""
    rows = []
    for path in paths:
        found = grade_notebook(Path(path), timeout)
        rows += found
        if log:
            counts = {s: sum(r.status == s for r in found) for s in STATUSES}
            log(f"{Path(path).name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return rows


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


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib grade",
                                     description="Execute submitted notebooks and grade every exercise.")
    parser.add_argument("paths", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"), help="where to write the CSV (grades.csv)")
    parser.add_argument("--timeout", type=positive_int, default=300,
                        help="seconds per notebook before it is stopped (300)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = grade(args.paths, args.timeout)
    print(table(rows))
    print(f"wrote {write_csv(rows, args.csv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
