"""The machinery of exercise checkers, and the claims ledger.

An exercise is a function the learner writes. Its checker (in ``course_lib.exercises.chNN``) calls
it on a few cases, compares the answers with an independent reference and either reports success or
raises ``ExerciseError`` (an ``AssertionError``) with a message that helps: what was asked, what was
expected, what came back. A checker must reject the unfilled stub (``raise NotImplementedError``)
and plausible wrong answers; ``tests/test_exercises_chNN.py`` proves that it does.

Write a checker like this::

    @checker("coverage of a pixel", answers={"conv.im2col": conv.im2col})
    def check_coverage(fn):
        for size, k, stride, pad in CASES:
            expect_equal(fn(size, k, stride, pad), brute_force(size, k, stride, pad), f"coverage({size}, {k}, ...)")

An exercise asks the learner to *write* something the library also has (``conv.im2col`` with a stride,
``huffman.huffman_code``). ``answers=`` names those library objects; the checker then rejects a
submission that reaches one of them, in two ways: by reading what the function refers to
(``library_calls``: its code's names, closure, defaults, globals, the learner's own helpers it calls)
and, while the checker runs it, by watching every Python call it makes (``sys.setprofile``), which
also catches ``getattr`` and imports inside the function::

    @checker("im2col with stride 2", answers={"conv.im2col": conv.im2col})
    def check_im2col_stride2(fn): ...

Every verdict is printed for the learner and, in a notebook, also published as a structured output
of MIME type ``VERDICT_MIME`` (exercise, status, message): the grader reads that, never the printed
text, which any cell could imitate.
"""

import contextlib
import functools
import json
import os
import platform
import sys
import tempfile
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import config

__all__ = [
    "ExerciseError",
    "strict_checks",
    "VERDICT_MIME",
    "VERDICTS",
    "library_calls",
    "checker",
    "succeed",
    "fail",
    "expect_equal",
    "expect_close",
    "expect_true",
    "CLAIM_KINDS",
    "Claim",
    "claims_path",
    "machine",
    "read_claims",
    "claim",
]


class ExerciseError(AssertionError):
    """Raised by a checker when the learner's answer is not right yet."""


CHECK_MODES = ("lenient", "strict")


def strict_checks() -> bool:
    """Whether checkers fail hard (raise) or only show their verdict.

    ``COURSE_CHECKS=strict`` (set by ``make test``, the HTML build and grading): a wrong or missing
    answer raises, so a wrong instructor solution can never pass CI. ``COURSE_CHECKS=lenient``
    (the default in a learner's JupyterLab): the verdict is printed and the notebook goes on, so
    *Run All* reaches the end of a student notebook with unsolved exercises. Unset, the mode is strict
    when the ``CI`` variable is set (as CI services do) and lenient otherwise.
    """
    mode = os.environ.get("COURSE_CHECKS", "").strip().lower()
    if mode and mode not in CHECK_MODES:
        raise ValueError(f"COURSE_CHECKS={mode!r} is not a mode; choose one of {CHECK_MODES}")
    if mode:
        return mode == "strict"
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


VERDICT_MIME = "application/vnd.course-lib.verdict+json"
VERDICTS = ("passed", "not done", "wrong", "error")


def _publish(title: str, status: str, message: str) -> None:
    """Show the verdict line; in a notebook, publish it with the structured record the grader reads."""
    line = {"passed": "✅", "not done": "⏳"}.get(status, "❌") + " " + message
    shell = None
    with contextlib.suppress(ImportError):
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):  # plain Python, pytest: the line only
        print(line, flush=True)
        return
    from IPython.display import display

    display({"text/plain": line, VERDICT_MIME: {"exercise": title, "status": status, "message": message}}, raw=True)


# --------------------------------------------------------------------------- what a submission reaches


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _code_objects(obj: Any) -> list[types.CodeType]:
    """The code objects that run when ``obj`` is called: a function's, or a class's own methods'."""
    obj = getattr(obj, "__func__", obj)
    if isinstance(obj, type):  # its own methods only (not nested classes: they may loop back)
        methods = [v for v in vars(obj).values() if isinstance(v, (types.FunctionType, staticmethod, classmethod))]
        return [c for m in methods for c in _code_objects(m)]
    code = getattr(obj, "__code__", None)
    return [code] if isinstance(code, types.CodeType) else []


def library_calls(fn: Callable, forbidden: Mapping[str, Any]) -> list[str]:
    """The names of ``forbidden`` (``{name: library object}``) that ``fn`` refers to: the object
    itself, a ``functools.partial`` of one, a name its code (or a nested function's) uses that is
    bound — in its globals, closure or defaults — to a forbidden object, or to a module that holds
    one under an attribute name the code uses (``conv.im2col``). Functions of the learner's own that
    ``fn`` calls are followed too."""
    if not isinstance(forbidden, Mapping):
        raise TypeError("forbidden must be a mapping {name: library object}")
    targets = {id(obj): name for name, obj in forbidden.items()}
    found: set[str] = set()
    seen: set[int] = set()

    def visit(f: Any) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        if id(f) in targets:
            found.add(targets[id(f)])
            return
        if isinstance(f, functools.partial):
            for a in (f.func, *f.args, *f.keywords.values()):
                visit(a)
            return
        f = getattr(f, "__func__", f)  # bound methods
        code = getattr(f, "__code__", None)
        if code is None:
            return
        names = _code_names(code)
        globs = getattr(f, "__globals__", {})
        bound = [globs[n] for n in names if n in globs]
        for cell in getattr(f, "__closure__", None) or ():
            with contextlib.suppress(ValueError):
                bound.append(cell.cell_contents)
        bound += list(getattr(f, "__defaults__", None) or ()) + list(
            (getattr(f, "__kwdefaults__", None) or {}).values()
        )
        for value in bound:
            if id(value) in targets:
                found.add(targets[id(value)])
            elif isinstance(value, types.ModuleType):
                found.update(targets[id(getattr(value, a))] for a in names if id(getattr(value, a, None)) in targets)
            elif isinstance(value, functools.partial) or (
                isinstance(value, types.FunctionType)
                and getattr(value, "__module__", None) in (getattr(f, "__module__", None), "__main__")
            ):
                visit(value)  # a helper of the learner's own

    visit(fn)
    return sorted(found)


def _reject_answers(fn: Callable, answers: Mapping[str, Any]) -> Callable:
    """``fn`` refused if it refers to one of ``answers``; otherwise ``fn`` wrapped so that a call
    reaching one of them at run time (``getattr``, an import inside it) is refused too."""
    used = library_calls(fn, answers)
    if used:
        raise ExerciseError(
            f"your function calls {', '.join(used)}, which answers this exercise: the exercise is to write it yourself"
        )
    codes = {code: name for name, obj in answers.items() for code in _code_objects(obj)}

    def watched(*args, **kwargs):
        reached: list[str] = []

        def profile(frame, event, arg):
            if event == "call" and frame.f_code in codes:
                reached.append(codes[frame.f_code])

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            result = fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)
        if reached:
            raise ExerciseError(
                f"your function reached {reached[0]} while it ran, which answers this "
                "exercise: the exercise is to write it yourself"
            )
        return result

    with contextlib.suppress(AttributeError, TypeError):
        functools.update_wrapper(watched, fn)
    return watched


# --------------------------------------------------------------------------- the checker decorator


def checker(title: str, answers: Mapping[str, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a checker: success prints one line; a stub says "not done yet"; a wrong answer says
    what is wrong; a submission that reaches one of ``answers`` (``{"module.name": object}``, the
    library's own versions of what the exercise asks for) is wrong, and says so. In strict mode (see
    ``strict_checks``) all but success raise ``ExerciseError``."""
    if answers is not None and not isinstance(answers, Mapping):
        raise TypeError("answers must be a mapping {'module.name': library object}")

    def wrap(check):
        @functools.wraps(check)
        def run(fn, *args, **kwargs):
            if not callable(fn):
                raise TypeError(f"{title}: pass your function itself (e.g. check(my_fn)), got {type(fn).__name__}")
            try:
                if answers:
                    fn = _reject_answers(fn, answers)
                result = check(fn, *args, **kwargs)
            except NotImplementedError:
                return _verdict(
                    title,
                    "not done",
                    "not done yet. Replace `raise NotImplementedError` with your "
                    "code, run that cell, then run this one again.",
                )
            except ExerciseError as err:
                return _verdict(title, "wrong", str(err))
            except Exception as err:  # the learner's code crashed: say so, then go on
                _publish(title, "error", f"{title}: your function raised {type(err).__name__}: {err}")
                if strict_checks():
                    raise
                return None
            _publish(title, "passed", f"{title}: correct.")
            return result

        run.title = title
        run.answers = dict(answers or {})
        return run

    return wrap


def succeed(title: str, detail: str = "") -> None:
    """Report a passed check that is not a single function (the capstone's design challenge)."""
    _publish(title, "passed", f"{title}: correct." + (f" {detail}" if detail else ""))


def _verdict(title: str, status: str, message: str) -> None:
    text = f"{title}: {message}"
    _publish(title, status, text)
    if strict_checks():
        raise ExerciseError(text) from None
    return None


def fail(message: str, not_done: bool = False, title: str | None = None) -> None:
    """Report a failed check: raise ``ExerciseError`` in strict mode, print the verdict otherwise
    (for checkers that are not a single function, e.g. the capstone's design challenge). ``message``
    starts with the exercise's title (``"design challenge: ..."``) unless ``title`` is given."""
    if title is None:
        title, _, message = message.partition(": ") if ": " in message else ("exercise", "", message)
    return _verdict(title, "not done" if not_done else "wrong", message)


def expect_equal(got: Any, expected: Any, what: str) -> None:
    """Fail unless ``got == expected`` (numbers, tuples, strings)."""
    if got != expected:
        raise ExerciseError(f"{what} should be {expected!r}, your code gave {got!r}")


def expect_close(got: Any, expected: Any, what: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Fail unless two numbers or tensors agree within tolerance (and have the same shape)."""
    got_t = torch.as_tensor(got, dtype=torch.float64)
    exp_t = torch.as_tensor(expected, dtype=torch.float64)
    if got_t.shape != exp_t.shape:
        raise ExerciseError(f"{what} should have shape {tuple(exp_t.shape)}, your code gave {tuple(got_t.shape)}")
    if not torch.allclose(got_t, exp_t, rtol=rtol, atol=atol):
        worst = (got_t - exp_t).abs().max().item()
        shown = (
            f"{exp_t.item():.6g}, your code gave {got_t.item():.6g}"
            if exp_t.numel() == 1
            else f"the reference (largest difference {worst:.3g})"
        )
        raise ExerciseError(f"{what} should equal {shown}")


def expect_true(condition: Any, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


# --------------------------------------------------------------------------- claim checks (the ledger)

CLAIM_KINDS = ("empirical", "derivation", "course")


@dataclass
class Claim:
    """One paper claim checked at our scale: what the paper says, what we measured, and the verdict.

    ``kind``: "empirical" — decided by a measurement (an accuracy, a latency, bytes of a trained
    model): the reproductions the ledger counts; "derivation" — arithmetic or an identity (a parameter
    count, an exact equality, a closed form): shown and asserted, never counted as a reproduction;
    "course" — a check of the course itself, not a paper's claim (a shipped model's accuracy, a hope).

    ``noise``: the measurement could not tell the two sides apart (a paired test's p ≥ 0.05, latency
    rounds that overlap): the claim neither holds nor fails — "within noise". ``why``: for a claim
    that does not hold, the mechanism that explains it (e.g. "depthwise convolutions are memory-bound
    on this CPU").
    """

    chapter: str
    text: str
    paper: str
    ours: str
    holds: bool
    profile: str
    machine: str
    kind: str = "empirical"
    noise: bool = False
    why: str = ""

    @property
    def verdict(self) -> str:
        """ "holds", "within noise" or "does not hold"."""
        return "holds" if self.holds else "within noise" if self.noise else "does not hold"

    def line(self) -> str:
        kind = "" if self.kind == "empirical" else f"({self.kind}) "
        why = f" — why: {self.why}" if self.why else ""
        mark = "✅" if self.holds else "〰️" if self.noise else "⚠️"
        return f"{mark} [{self.chapter}] {kind}{self.text}: paper {self.paper} · ours {self.ours} → {self.verdict}{why}"


def claims_path() -> Path:
    """Where executed notebooks record their claims: ``COURSE_CLAIMS_FILE``, default ``build/claims.json``
    in the checkout (``build/claims-dry-run.json`` in the dry run, so a dry run never enters the real
    ledger); an installed ``course_lib`` writes ``build/`` in the current folder."""
    default = "claims-dry-run.json" if config.dry_run() else "claims.json"
    value = os.environ.get("COURSE_CLAIMS_FILE", "").strip()
    return Path(value) if value else (config.checkout() or Path.cwd()) / "build" / default


def machine() -> str:
    """A short description of the machine a figure was measured on."""
    dev = config.device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{os.cpu_count()}-core {platform.machine()} CPU"
    return f"{name}, PyTorch {torch.__version__}"


def read_claims(path: Path | None = None) -> list[Claim]:
    """Every claim recorded so far (an empty list when no notebook has run)."""
    path = Path(path) if path is not None else claims_path()
    if not path.exists():
        return []
    return [Claim(**row) for row in json.loads(path.read_text())]


def claim(
    chapter: str,
    text: str,
    *,
    paper: str,
    ours: str,
    holds: bool,
    must_hold: bool = False,
    kind: str = "empirical",
    within_noise: bool = False,
    why: str = "",
) -> Claim:
    """State a paper's claim, print the verdict with both figures, and record it in the ledger.

    ``kind``: "empirical" (the default: a measurement decides it), "derivation" (arithmetic, an
    identity) or "course" (not a paper's claim) — see ``Claim``.

    ``holds`` is the outcome of the check the notebook computed from its own measurement;
    ``within_noise=True`` (with ``holds=False``) says the measurement could not decide it (e.g.
    ``stats.compare(...).verdict() == "within noise"``); ``why`` names the mechanism behind a claim
    that does not hold.
    ``must_hold=True`` makes the cell fail (``AssertionError``) when it does not — use it for
    claims that are exact or that do reproduce at our scale, so a regression cannot pass silently.
    A claim that does not reproduce at our scale is recorded with ``holds=False`` and said so.
    The record replaces an earlier one with the same chapter and text (a re-run updates it).

    In the dry run (``COURSE_DRY_RUN=1``) the record's profile reads e.g. ``full (dry run)``, it goes
    to the dry-run ledger (see ``claims_path``), and ``must_hold`` does not raise: with a few
    batches of stand-in data an accuracy cannot hold, so the dry run proves only that the check
    runs; a failed ``must_hold`` claim prints a line saying it is not enforced in the dry run.
    """
    for name, value in (("chapter", chapter), ("text", text), ("paper", paper), ("ours", ours)):
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"claim: {name} must be a non-empty string, got {value!r}")
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"claim: holds must be a bool (the outcome of your check), got {type(holds).__name__}")
    if kind not in CLAIM_KINDS:
        raise ValueError(f"claim: kind={kind!r} is unknown; choose one of {CLAIM_KINDS}")
    if not isinstance(within_noise, (bool, np.bool_)):
        raise TypeError(f"claim: within_noise must be a bool, got {type(within_noise).__name__}")
    if within_noise and holds:
        raise ValueError("claim: within_noise=True means the measurement did not decide the claim; holds must be False")
    if not isinstance(why, str):
        raise TypeError(f"claim: why must be a string (the mechanism), got {type(why).__name__}")
    dry = config.dry_run()
    record = Claim(
        chapter,
        text,
        paper,
        ours,
        bool(holds),
        f"{config.profile()} (dry run)" if dry else config.profile(),
        machine(),
        kind,
        bool(within_noise),
        why.strip(),
    )
    print(record.line())
    path = claims_path()
    rows = [c for c in read_claims(path) if (c.chapter, c.text) != (chapter, text)] + [record]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as f:
        json.dump([asdict(c) for c in rows], f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)
    if must_hold and not record.holds:
        if dry:
            print("   (must_hold not enforced in the dry run: capped work and stand-in data)")
        else:
            raise AssertionError(f"claim check failed: {record.line()}")
    return record
