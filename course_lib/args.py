"""Argument checks shared by every module: one rule, one message shape.

Every check takes the parameter's *name* first and its *value* second, and returns the value. A wrong
*type* is a ``TypeError`` and a wrong *value* a ``ValueError``; both name the parameter and the rule,
so a learner reads "growth_rate=0 must be >= 1" instead of a shape error from deep inside torch.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["check_int", "check_bits", "check_float", "check_fraction", "check_finite"]


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``; else a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return int(value)


def check_bits(name: str, value: object, low: int = 1, high: int = 16) -> int:
    """``value`` if it is an integer number of bits in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer number of bits")
    bits = int(value)
    if not low <= bits <= high:
        raise ValueError(f"{name}={value} must be an integer number of bits between {low} and {high}")
    return bits


def check_float(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    what: str = "",
) -> float:
    """``value`` as a float if it is a finite real number (not a bool) between ``low`` and ``high``.

    Either bound is optional; ``low_inclusive=False`` excludes ``low`` itself (``(0, 1]`` for a
    probability that may not be 0). ``what`` names the kind of number in the message ("a probability").
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number")
    number = float(value)
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and number > high
    if too_low or too_high or not math.isfinite(number):
        interval = (
            ("[" if low_inclusive else "(")
            + ("-inf" if low is None else f"{low:g}")
            + ", "
            + ("inf)" if high is None else f"{high:g}]")
        )
        raise ValueError(f"{name}={value} must be {what + ' ' if what else ''}in {interval}")
    return number


def check_fraction(name: str, value: object, allow_one: bool = False) -> float:
    """``value`` as a float if it is a fraction in ``[0, 1)`` (``[0, 1]`` with ``allow_one``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a fraction (a number in [0, 1{']' if allow_one else ')'})")
    number = float(value)
    if not (0.0 <= number <= 1.0 if allow_one else 0.0 <= number < 1.0):
        raise ValueError(f"{name}={value!r} must be a fraction in [0, 1{']' if allow_one else ')'}")
    return number


def check_finite(name: str, value: object) -> object:
    """``value`` if it is a tensor (or array-like of numbers) with no NaN or inf; else a ``ValueError``
    naming ``name``. One rule for every quantizer, pruner and measure: a NaN weight has no nearest
    level, no magnitude and no energy, so it is bad input, not a number to pass on.

    A tensor is checked where it lives (one ``.all()`` on its device); anything else goes through
    ``torch.as_tensor``. Integer and boolean tensors are always finite.
    """
    try:
        t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor or numbers, got {type(value).__name__}") from None
    if (t.is_floating_point() or t.is_complex()) and t.numel() and t.device.type != "meta":
        finite = torch.isfinite(t.detach())
        if not bool(finite.all()):
            bad = t.detach().reshape(-1)[~finite.reshape(-1)][0].item()
            count = int((~finite).sum())
            raise ValueError(f"{name} contains {count} NaN or inf value(s) (e.g. {bad}): it must be finite")
    return value
