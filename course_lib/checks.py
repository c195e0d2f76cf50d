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

import torch


class ExerciseError(AssertionError):
    """Raised by a checker when the learner's answer is not right yet."""


def checker(title):
    """Decorate a checker: a stub becomes a friendly message, success prints one line."""
    def wrap(check):
        @functools.wraps(check)
        def run(fn, *args, **kwargs):
            if not callable(fn):
                raise TypeError(f"{title}: pass your function itself (e.g. check(my_fn)), got {type(fn).__name__}")
            try:
                result = check(fn, *args, **kwargs)
            except NotImplementedError:
                raise ExerciseError(f"{title}: not done yet. Replace `raise NotImplementedError` "
                                    "with your code, run that cell, then run this one again.") from None
            except ExerciseError as err:
                raise ExerciseError(f"{title}: {err}") from None
            print(f"✅ {title}: correct.")
            return result
        return run
    return wrap


def expect_equal(got, expected, what):
    """Fail unless ``got == expected`` (numbers, tuples, strings)."""
    if got != expected:
        raise ExerciseError(f"{what} should be {expected!r}, your code gave {got!r}")


def expect_close(got, expected, what, rtol=1e-5, atol=1e-6):
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


def expect_true(condition, message):
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


# --------------------------------------------------------------------------- chapter 00's exercise

@checker("accuracy")
def check_accuracy(fn):
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
