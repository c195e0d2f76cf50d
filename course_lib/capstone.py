"""Chapter 11, the capstone: one budget, many techniques, and an honest measurement of what each buys.

Every technique of the course has its home in its chapter's module; this module holds only what no
chapter owns:

- ``pareto_front(costs, scores)``: the points no other point beats — cheaper or equal on every cost
  and at least as accurate, strictly better somewhere. Plotting accuracy against MACs, bytes or
  latency with the front drawn shows at a glance which recipes are worth considering at all.
- the **design challenge** and its checker, ``check_submission(model, path)``: reach a test accuracy
  within a budget of real file bytes (the Deep Compression format of chapter 05) and of CPU latency.

Reference: Han, Mao & Dally, "Deep Compression" (ICLR 2016) for the file format; the Pareto front is
the textbook multi-objective notion (Pareto, 1896).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from . import checks, compress, data, measure, train

__all__ = ["pareto_front", "Challenge", "CHALLENGE", "Submission", "evaluate_submission", "check_submission"]


def _as_points(costs, scores) -> tuple[list[tuple[float, ...]], list[float]]:
    if isinstance(costs, (str, bytes)) or not hasattr(costs, "__len__"):
        raise TypeError(f"costs must be a sequence of numbers or of equal-length tuples, got {type(costs).__name__}")
    if isinstance(scores, (str, bytes)) or not hasattr(scores, "__len__"):
        raise TypeError(f"scores must be a sequence of numbers, got {type(scores).__name__}")
    if len(costs) != len(scores):
        raise ValueError(f"costs has {len(costs)} points but scores has {len(scores)}: one score per point")
    points = [tuple(float(v) for v in c) if hasattr(c, "__len__") else (float(c),) for c in costs]
    if points and len({len(p) for p in points}) != 1:
        raise ValueError("costs: every point must have the same number of costs")
    values = [float(s) for s in scores]
    if any(not math.isfinite(v) for p in points for v in p) or any(not math.isfinite(v) for v in values):
        raise ValueError("costs and scores must be finite numbers (no NaN or inf)")
    return points, values


def pareto_front(costs, scores) -> list[int]:
    """Indices (ascending) of the points on the Pareto front: lower cost and higher score are better.

    ``costs`` is one number per point or one tuple per point (several costs at once, e.g.
    ``(MACs, bytes)``); ``scores`` one number per point (accuracy). Point i is on the front unless
    some point j has every cost ≤ and score ≥ with at least one strictly better. Identical points do
    not beat each other, so duplicates on the front are all kept.
    """
    points, values = _as_points(costs, scores)

    def beats(j: int, i: int) -> bool:
        no_worse = all(a <= b for a, b in zip(points[j], points[i])) and values[j] >= values[i]
        better = any(a < b for a, b in zip(points[j], points[i])) or values[j] > values[i]
        return no_worse and better

    return [i for i in range(len(points)) if not any(beats(j, i) for j in range(len(points)) if j != i)]


# --------------------------------------------------------------------------- the design challenge

@dataclass(frozen=True)
class Challenge:
    """The budget: test accuracy at least ``min_accuracy`` (a fraction), a compressed file of at most
    ``max_bytes`` bytes, and a CPU latency at batch 1 of at most ``max_latency_ms`` milliseconds."""

    min_accuracy: float
    max_bytes: int
    max_latency_ms: float
    dataset: str = "fashion-mnist"

    def describe(self) -> str:
        return (f"≥ {100 * self.min_accuracy:.1f}% {self.dataset} test accuracy in ≤ {self.max_bytes / 1000:.0f} KB "
                f"of real file bytes and ≤ {self.max_latency_ms:g} ms CPU latency at batch 1")


# Chosen so that the instructor's solution meets all three with margin and chapter 05's Deep
# Compression of LeNet-5 (42,062 B at 89.5% in the quick profile) does not.
CHALLENGE = Challenge(min_accuracy=0.90, max_bytes=32_000, max_latency_ms=5.0)


@dataclass
class Submission:
    """What ``evaluate_submission`` measured of a saved model, and whether it meets the challenge."""

    accuracy: float
    file_bytes: int
    latency_ms: float
    challenge: Challenge

    @property
    def failures(self) -> list[str]:
        c, out = self.challenge, []
        if self.accuracy < c.min_accuracy:
            out.append(f"accuracy {100 * self.accuracy:.2f}% is below the target {100 * c.min_accuracy:.1f}%")
        if self.file_bytes > c.max_bytes:
            out.append(f"the file has {self.file_bytes:,} bytes, over the budget of {c.max_bytes:,}")
        if self.latency_ms > c.max_latency_ms:
            out.append(f"latency {self.latency_ms:.2f} ms at batch 1 is over the budget of {c.max_latency_ms:g} ms")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        return (f"accuracy {100 * self.accuracy:.2f}% · {self.file_bytes:,} B · {self.latency_ms:.2f} ms at batch 1 "
                f"(budget: {self.challenge.describe()})")


def evaluate_submission(model: nn.Module, path: str | Path, challenge: Challenge = CHALLENGE,
                        test_subset: int | None = None, latency_s: float = 0.3) -> Submission:
    """Reload the saved file ``path`` into ``model`` (a fresh model of the submitted architecture) with
    ``compress.load_compressed``, evaluate it on the test set, and measure its bytes and latency.

    Raises ``compress.CompressedFileError`` / ``ValueError`` when the file does not reload.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (a fresh model of your architecture), got {type(model).__name__}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such file; save your model with compress.save_compressed first")
    loaded = compress.load_compressed(path, model=model)
    _, test_data = data.loaders(challenge.dataset, 500, train_subset=1, test_subset=test_subset,
                                augment=False, device="cpu")
    accuracy = train.evaluate(loaded, test_data, device="cpu")
    x = next(iter(test_data))[0][:1]                        # one normalised test image: batch 1
    seconds = measure.latency(loaded, x, device="cpu", min_run_time=latency_s)
    return Submission(accuracy, measure.file_bytes(path), 1000 * seconds, challenge)


def check_submission(model: nn.Module, path: str | Path, challenge: Challenge = CHALLENGE,
                     test_subset: int | None = None) -> Submission | None:
    """The design challenge's checker: reload, evaluate and measure the submission, then give the
    verdict (strict mode: ``ExerciseError`` when a budget is missed or the file does not reload)."""
    try:
        result = evaluate_submission(model, path, challenge, test_subset)
    except (ValueError, compress.CompressedFileError) as err:
        return checks.fail(f"design challenge: the file does not reload: {err}")
    if result.passed:
        print(f"✅ design challenge: correct. {result.line()}")
        return result
    checks.fail("design challenge: " + "; ".join(result.failures) + f". Measured: {result.line()}")
    return result
