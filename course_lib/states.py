"""The base of every explorer state: a frozen dataclass, read by attribute.

An explorer's ``X_state(...)`` returns a frozen dataclass that derives from :class:`State`: a
misspelt field fails where the state is built (``TypeError``) or read (``AttributeError``), not
inside a widget callback, and a state cannot be changed after it is built
(``dataclasses.FrozenInstanceError``).
"""

__all__ = ["State"]


class State:
    """The base of the explorer states (each subclass is a ``@dataclass(frozen=True)``): what they share
    is this name, so ``isinstance(state, State)`` tells an explorer's state from any other value."""
