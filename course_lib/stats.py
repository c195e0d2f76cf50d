"""How sure is a measured accuracy? Confidence intervals for figures measured on a finite test set.

An accuracy of 92.0% on 10,000 test images is 9,200 right answers out of 10,000 trials; another test
set of the same size would give a slightly different figure. The **Wilson score interval** says
where the true accuracy lies with 95% confidence: for 9,200 of 10,000 it is 91.5-92.5%, and for
the same 92% on a 2,000-image subset, 90.7-93.1%. Two models whose intervals overlap this much are
not told apart by their accuracies alone (chapters compare them on the same images with a paired
test).

The interval comes from ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.

**Two models on the same test images** are compared image by image (``compare``): only the images
that one model gets right and the other wrong tell them apart. If the two were equally good, each
such image would be a fair coin flip between them; the exact **McNemar test** asks how unlikely the
observed split is under that coin (a two-sided binomial test with p = 1/2, scipy's ``binomtest``).
A difference of 0.3 pt on 10,000 images may be 45 against 15 disagreements (surely real) or 300
against 270 (within noise): the accuracies alone cannot say which.

**Two latencies** are measured in interleaved rounds (``measure.latency_rounds``); the spread of a
model's rounds is the noise of its figure. ``timing_verdict`` calls "A is faster than B" *holds*
only when every round of A beats every round of B, *does not hold* when every round of A is slower,
and *within noise* when the rounds overlap.
"""

import math
from dataclasses import dataclass

import torch
from scipy.stats import binomtest, norm

from .args import check_float, check_fraction, check_int

__all__ = ["accuracy_interval", "Comparison", "compare", "timing_verdict", "bound_verdict"]

VERDICTS = ("holds", "does not hold", "within noise")


def accuracy_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson ``confidence`` interval ``(low, high)`` of an ``accuracy`` (a fraction) measured on ``n`` images.

    The interval is that of ``round(accuracy * n)`` right answers out of ``n``.
    """
    check_int("n", n)
    check_fraction("accuracy", accuracy, allow_one=True)
    check_fraction("confidence", confidence)
    correct = round(accuracy * n)
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on the same ``n`` images (``compare``)."""

    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int  # images A gets right and B wrong
    only_b: int  # images B gets right and A wrong
    p_value: float  # exact McNemar test (two-sided) of "A and B are equally accurate"

    def verdict(self, alpha: float = 0.05) -> str:
        """For the claim "A is more accurate than B": "holds", "does not hold" (B is, significantly),
        or "within noise" (the test cannot tell them apart at level ``alpha``)."""
        check_fraction("alpha", alpha)
        if self.p_value >= alpha or self.only_a == self.only_b:
            return "within noise"
        return "holds" if self.only_a > self.only_b else "does not hold"

    def difference_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The ``confidence`` interval of ``accuracy_a − accuracy_b`` (a fraction), from the paired
        counts: the Wald interval of a difference of paired proportions, ``d ± z·sqrt((b + c)/n² − d²/n)``
        with ``b = only_a``, ``c = only_b``, ``d = (b − c)/n``."""
        check_fraction("confidence", confidence)
        z = float(norm.ppf(0.5 + confidence / 2))
        d = (self.only_a - self.only_b) / self.n
        se = math.sqrt(max((self.only_a + self.only_b) / self.n**2 - d * d / self.n, 0.0))
        return d - z * se, d + z * se

    def summary(self) -> str:
        """One line: both accuracies, the disagreements and the p-value."""
        return (
            f"{100 * self.accuracy_a:.2f}% vs {100 * self.accuracy_b:.2f}% on {self.n:,} images "
            f"({self.only_a} vs {self.only_b} images only one gets right, McNemar p = {self.p_value:.2g})"
        )


def compare(correct_a: torch.Tensor, correct_b: torch.Tensor) -> Comparison:
    """Compare two models from their per-image correctness on the same images (boolean tensors).

    ``correct_a = predicted_a == labels`` with ``train.predict``'s output. Returns a ``Comparison``
    with the exact McNemar p-value.
    """
    for name, value in (("correct_a", correct_a), ("correct_b", correct_b)):
        if not isinstance(value, torch.Tensor) or value.dtype != torch.bool or value.ndim != 1:
            raise TypeError(
                f"{name} must be a 1-d boolean tensor (predicted == labels), got "
                f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}"
            )
    if len(correct_a) != len(correct_b):
        raise ValueError(
            f"correct_a ({len(correct_a)} images) and correct_b ({len(correct_b)}) must score the same images"
        )
    n = check_int("images", len(correct_a))
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((correct_b & ~correct_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Comparison(n, float(correct_a.float().mean()), float(correct_b.float().mean()), only_a, only_b, float(p))


def timing_verdict(faster: list, slower: list) -> str:
    """For the claim "``faster`` takes less time than ``slower``" from two lists of interleaved
    rounds (seconds): "holds" when the slowest round of ``faster`` beats the fastest of ``slower``,
    "does not hold" when the fastest round of ``faster`` is slower than the slowest of ``slower``,
    else "within noise" (the rounds overlap)."""
    for name, rounds in (("faster", faster), ("slower", slower)):
        if isinstance(rounds, (str, bytes)) or not hasattr(rounds, "__len__") or len(rounds) == 0:
            raise TypeError(f"{name} must be a non-empty list of round times (seconds), got {rounds!r}")
        for t in rounds:
            check_float(name, t, 0.0, low_inclusive=False, what="a time in seconds")
    if max(faster) < min(slower):
        return "holds"
    if min(faster) > max(slower):
        return "does not hold"
    return "within noise"


def bound_verdict(low: float, high: float, bound: float) -> str:
    """For the claim "the quantity is at most ``bound``" from its interval ``(low, high)`` (e.g. the
    points lost, from ``Comparison.difference_interval``, or a time overhead from timing rounds):
    "holds" when the whole interval is at or below the bound, "does not hold" when all of it is
    above, else "within noise"."""
    for name, value in (("low", low), ("high", high), ("bound", bound)):
        check_float(name, value)
    if low > high:
        raise ValueError(f"low={low} is above high={high}: give the interval as (low, high)")
    return "holds" if high <= bound else "does not hold" if low > bound else "within noise"
