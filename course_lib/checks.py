"""Helpers for exercise checkers.

An exercise is a function the learner writes. Its checker calls it on a few cases, compares the
answers with an independent reference and either prints one success line or raises
``AssertionError`` with a message that helps (what was asked, what was expected, what came back).
A checker must reject the unfilled stub (``raise NotImplementedError``) and plausible wrong answers;
the tests of every chapter prove that it does.

Write a checker like this::

    @checker("output size")
    def check_output_size(fn):
        for n, k, s, p in CASES:
            expect_equal(fn(n, k, s, p), reference(n, k, s, p), f"output_size({n}, {k}, {s}, {p})")
"""

import functools
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import config

__all__ = ["ExerciseError", "strict_checks", "checker", "fail", "expect_equal", "expect_close",
           "expect_true", "check_accuracy", "CLAIM_KINDS", "Claim", "claims_path", "machine", "read_claims", "claim"]


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


def checker(title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a checker: success prints one line; a stub says "not done yet"; a wrong answer says
    what is wrong. In strict mode (see ``strict_checks``) the last two raise ``ExerciseError``."""
    def wrap(check):
        @functools.wraps(check)
        def run(fn, *args, **kwargs):
            if not callable(fn):
                raise TypeError(f"{title}: pass your function itself (e.g. check(my_fn)), got {type(fn).__name__}")
            try:
                result = check(fn, *args, **kwargs)
            except NotImplementedError:
                return _verdict(ExerciseError(f"{title}: not done yet. Replace `raise NotImplementedError` "
                                              "with your code, run that cell, then run this one again."), "⏳")
            except ExerciseError as err:
                return _verdict(ExerciseError(f"{title}: {err}"), "❌")
            except Exception as err:                    # the learner's code crashed: say so, then go on
                if strict_checks():
                    raise
                return _verdict(ExerciseError(f"{title}: your function raised {type(err).__name__}: {err}"), "❌")
            print(f"✅ {title}: correct.")
            return result
        return run
    return wrap


def _verdict(error: ExerciseError, mark: str) -> None:
    if strict_checks():
        raise error from None
    print(f"{mark} {error}")
    return None


def fail(message: str, not_done: bool = False) -> None:
    """Report a failed check: raise ``ExerciseError`` in strict mode, print the verdict otherwise
    (for checkers that are not a single function, e.g. the capstone's design challenge)."""
    return _verdict(ExerciseError(message), "⏳" if not_done else "❌")


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
        shown = f"{exp_t.item():.6g}, your code gave {got_t.item():.6g}" if exp_t.numel() == 1 else \
            f"the reference (largest difference {worst:.3g})"
        raise ExerciseError(f"{what} should equal {shown}")


def expect_true(condition: Any, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


# --------------------------------------------------------------------------- chapter 00's exercise

@checker("accuracy")
def check_accuracy(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """Checker for notebook 00's warm-up: ``fn(logits, labels)`` returns the fraction of correct top-1 guesses."""
    g = torch.Generator().manual_seed(0)
    for batch, classes in ((8, 10), (5, 3), (64, 10)):
        logits = torch.randn(batch, classes, generator=g)
        labels = torch.randint(0, classes, (batch,), generator=g)
        expected = (logits.argmax(dim=1) == labels).float().mean().item()
        got = fn(logits, labels)
        expect_true(isinstance(got, (float, int)) or (torch.is_tensor(got) and got.numel() == 1),
                    f"return one number (a fraction between 0 and 1), got {type(got).__name__}")
        expect_close(float(got), expected, f"accuracy of a batch of {batch} with {classes} classes", atol=1e-6)


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
        """"holds", "within noise" or "does not hold"."""
        return "holds" if self.holds else "within noise" if self.noise else "does not hold"

    def line(self) -> str:
        kind = "" if self.kind == "empirical" else f"({self.kind}) "
        why = f" — why: {self.why}" if self.why else ""
        mark = "✅" if self.holds else "〰️" if self.noise else "⚠️"
        return (f"{mark} [{self.chapter}] {kind}{self.text}: paper {self.paper} · "
                f"ours {self.ours} → {self.verdict}{why}")


def claims_path() -> Path:
    """Where executed notebooks record their claims: ``COURSE_CLAIMS_FILE``, default ``build/claims.json``
    (``build/claims-dry-run.json`` in the dry run, so a dry run never enters the real ledger)."""
    default = "claims-dry-run.json" if config.dry_run() else "claims.json"
    return Path(os.environ.get("COURSE_CLAIMS_FILE", config.REPO_ROOT / "build" / default))


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


def claim(chapter: str, text: str, *, paper: str, ours: str, holds: bool, must_hold: bool = False,
          kind: str = "empirical", within_noise: bool = False, why: str = "") -> Claim:
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
    record = Claim(chapter, text, paper, ours, bool(holds),
                   f"{config.profile()} (dry run)" if dry else config.profile(), machine(), kind,
                   bool(within_noise), why.strip())
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
