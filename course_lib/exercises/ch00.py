"""Chapter 00's exercise: how an exercise and its checker work.

- **accuracy** (*build it and measure it*, the warm-up): ``accuracy(logits, labels)`` returns the
  fraction of rows whose highest score is at the true label. The checker compares it on random
  batches with a count done here (``argmax`` row by row in a Python loop); it rejects a count
  instead of a fraction, ``argmin``, and a tensor of booleans; ``train.evaluate`` (or ``train.predict``)
  used on the logits is refused: that is the library's accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import train
from ..checks import checker, expect_close, expect_true

__all__ = ["check_accuracy"]


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Brute force: one row at a time."""
    right = sum(int(max(range(row.numel()), key=lambda j: row[j].item()) == int(y)) for row, y in zip(logits, labels))
    return right / len(labels)


@checker("accuracy", answers={"train.evaluate": train.evaluate, "train.predict": train.predict})
def check_accuracy(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """``fn(logits, labels)`` must return the fraction of correct top-1 guesses (a number in [0, 1])."""
    g = torch.Generator().manual_seed(0)
    for batch, classes in ((8, 10), (5, 3), (64, 10)):
        logits = torch.randn(batch, classes, generator=g)
        labels = torch.randint(0, classes, (batch,), generator=g)
        got = fn(logits.clone(), labels.clone())
        expect_true(
            isinstance(got, (float, int))
            and not isinstance(got, bool)
            or (torch.is_tensor(got) and got.numel() == 1 and got.is_floating_point()),
            f"return one number (a fraction between 0 and 1), got {type(got).__name__}"
            + (f" of shape {tuple(got.shape)} and dtype {got.dtype}" if torch.is_tensor(got) else ""),
        )
        expect_close(
            float(got), _accuracy(logits, labels), f"accuracy of a batch of {batch} with {classes} classes", atol=1e-6
        )
