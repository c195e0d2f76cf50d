"""Argument checks shared by every module: one rule, one message shape.

A wrong *type* is a ``TypeError`` and a wrong *value* a ``ValueError``; both name the parameter and the
rule, so a learner reads "growth_rate=0 must be >= 1" instead of a shape error from deep inside torch.
"""

__all__ = ["check_int"]


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``; else a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return value
