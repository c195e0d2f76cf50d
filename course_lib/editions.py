"""Student and instructor editions, built from one source.

The sources in ``notebooks/`` are the instructor edition: every reference solution sits between a
``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line. The student edition replaces each such
block by ``raise NotImplementedError("your code here")`` at the same indentation, so that the
learner's cell runs, the checker that follows says "not done yet", and nothing else changes.

    python -m course_lib.editions student build/student
"""

import sys
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'


def strip_solutions(source, name="<source>"):
    """``source`` with every solution block replaced by the stub (a ``ValueError`` if unbalanced)."""
    out, inside, opened_at = [], False, None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{name}:{number}: '{BEGIN}' inside the block opened at line {opened_at}")
            inside, opened_at = True, number
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise ValueError(f"{name}:{number}: '{END}' without a '{BEGIN}' before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{name}:{opened_at}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out) + "\n"


def notebook_sources(folder="notebooks"):
    """The notebook sources ``NN_topic.py`` of a folder, in chapter order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def build_student(src_dir="notebooks", out_dir="build/student"):
    """Write ``out_dir/NN_topic.ipynb`` for every source, solutions stripped; return the paths."""
    import jupytext

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in notebook_sources(src_dir):
        notebook = jupytext.reads(strip_solutions(src.read_text(), src.name), fmt="py:percent")
        notebook.metadata.pop("jupytext", None)              # the student copy is not paired
        path = out_dir / (src.stem + ".ipynb")
        jupytext.write(notebook, path, fmt="ipynb")
        written.append(path)
    return written


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "student":
        print("usage: python -m course_lib.editions student OUT_DIR", file=sys.stderr)
        return 2
    for path in build_student("notebooks", argv[1]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
