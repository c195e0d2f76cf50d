"""Chapter 11's exercises: the capstone.

1. **The front of several costs** (build): ``fn(costs, scores)`` with one *tuple* of costs per point
   (MACs, bytes, latency…) → the ascending indices of the points no other point beats (every cost
   ≤ and score ≥, at least one strictly). Compared with a brute force over all pairs; rejects a
   front that reads only the first cost, and one that drops duplicates.
2. **How far from the front?** (decide): ``fn(costs, scores)`` → for every point, the score it
   lacks to be at least as good as every point that costs no more in every respect (0 on the
   front). Compared with a brute force; rejects a gap measured against the best score overall.
3. **The design challenge** (build and measure): a model file that meets the budget; the checker
   reloads the file into a fresh model, evaluates and times it (``capstone.evaluate_submission``).

``capstone.pareto_front`` and ``capstone.best_within`` are refused inside a submission to 1 and 2.
"""

import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from .. import capstone, checks, compressed_file
from ..checks import checker, expect_equal, expect_true

__all__ = ["check_front", "check_gap_to_front", "check_submission", "check_challenge"]

_ANSWERS = {"capstone.pareto_front": capstone.pareto_front, "capstone.best_within": capstone.best_within}


def _beats(cj: tuple, sj: float, ci: tuple, si: float) -> bool:
    return (all(a <= b for a, b in zip(cj, ci)) and sj >= si) and (any(a < b for a, b in zip(cj, ci)) or sj > si)


def _cases(seed: int) -> list[tuple[list[tuple], list[float]]]:
    cases: list[tuple[list[tuple], list[float]]] = [
        ([(1, 5), (2, 2), (2, 2), (3, 1), (1, 5), (4, 4)], [0.5, 0.7, 0.7, 0.6, 0.5, 0.9]),  # duplicates
        ([(5.0, 1.0)], [0.1]),
        ([(1, 9), (9, 1), (5, 5)], [0.8, 0.8, 0.7]),  # only a second cost keeps (5, 5)
        ([(2, 3, 1), (2, 3, 2), (1, 4, 1)], [0.9, 0.9, 0.95]),
    ]
    rng = random.Random(seed)
    cases += [
        ([tuple(rng.randint(0, 4) for _ in range(dims)) for _ in range(n)], [rng.randint(0, 4) / 4 for _ in range(n)])
        for n, dims in ((6, 2), (12, 2), (20, 3))
    ]
    return cases


@checker("Pareto front of several costs", answers=_ANSWERS)
def check_front(fn: Callable) -> None:
    """``fn(costs, scores)`` (one tuple of costs per point) → the ascending indices of the front."""
    for costs, scores in _cases(11):
        expected = [
            i
            for i in range(len(costs))
            if not any(_beats(costs[j], scores[j], costs[i], scores[i]) for j in range(len(costs)))
        ]
        got = fn([tuple(c) for c in costs], list(scores))
        expect_true(
            got is not None and all(isinstance(i, int) for i in got), f"return a list of point indices, got {got!r}"
        )
        expect_equal(sorted(got), expected, f"the front of costs={costs}, scores={scores}")


@checker("gap to the front", answers=_ANSWERS)
def check_gap_to_front(fn: Callable) -> None:
    """``fn(costs, scores)`` → ``[max(0, max{s_j : c_j ≤ c_i in every cost} − s_i) for every i]``."""
    for costs, scores in _cases(23):
        expected = [
            max(
                0.0,
                max(scores[j] for j in range(len(costs)) if all(a <= b for a, b in zip(costs[j], costs[i])))
                - scores[i],
            )
            for i in range(len(costs))
        ]
        got = fn([tuple(c) for c in costs], list(scores))
        expect_true(got is not None and len(got) == len(costs), f"return one gap per point ({len(costs)}), got {got!r}")
        for i, (g, e) in enumerate(zip(got, expected)):
            expect_true(
                abs(float(g) - e) <= 1e-9,
                f"the gap of point {i} (costs {costs[i]}, score {scores[i]}) among costs={costs}, "
                f"scores={scores} should be {e:g}, your code gave {g}",
            )


def check_submission(
    model: nn.Module,
    path: str | Path,
    challenge: capstone.Challenge = capstone.CHALLENGE,
    test_subset: int | None = None,
) -> capstone.Submission | None:
    """The design challenge's verdict: reload, evaluate and measure the submission
    (``capstone.evaluate_submission``); strict mode raises ``ExerciseError`` when a budget is missed
    or the file does not reload."""
    try:
        result = capstone.evaluate_submission(model, path, challenge, test_subset)
    except (ValueError, compressed_file.CompressedFileError) as err:
        checks.fail(f"the file does not reload: {err}", title="design challenge")
        return None
    if result.passed:
        checks.succeed("design challenge", result.line())
        return result
    checks.fail("; ".join(result.failures) + f". Measured: {result.line()}", title="design challenge")
    return result


def check_challenge(
    fn: Callable,
    challenge: capstone.Challenge = capstone.CHALLENGE,
    path: str | Path | None = None,
    test_subset: int | None = None,
) -> capstone.Submission | None:
    """The design challenge as an exercise: ``fn(path)`` writes the learner's model to ``path`` with
    ``compressed_file.save_compressed`` and returns a fresh (untrained) model of its architecture;
    then ``check_submission`` reloads, evaluates and measures it. A stub says "not done yet"."""
    if not callable(fn):
        raise TypeError(
            f"design challenge: pass your function itself (e.g. check_challenge(my_submission)), "
            f"got {type(fn).__name__}"
        )
    path = Path(path) if path is not None else Path(tempfile.mkdtemp()) / "submission.dc"
    try:
        model = fn(path)
    except NotImplementedError:
        checks.fail(
            "not done yet. Replace `raise NotImplementedError` with your recipe, run that cell, "
            "then run this one again.",
            not_done=True,
            title="design challenge",
        )
        return None
    except Exception as err:
        if checks.strict_checks():
            raise
        checks.fail(f"your function raised {type(err).__name__}: {err}", title="design challenge")
        return None
    return check_submission(model, path, challenge, test_subset)
