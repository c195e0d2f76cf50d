"""The base of every explorer state: a frozen dataclass, read by attribute.

An explorer's ``X_state(...)`` returns a frozen dataclass that derives from :class:`State`: a
misspelt field fails where the state is built (``TypeError``) or read (``AttributeError``), not
inside a widget callback. ``state["name"]`` still reads a field, for code written when states were
dicts; an unknown name raises ``KeyError`` listing the fields there are.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

__all__ = ["State"]


class State:
    """Mixin of the explorer states (subclasses are ``@dataclass(frozen=True)``)."""

    def __getitem__(self, name: str) -> Any:
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]  # subclasses are dataclasses
        if name not in names:
            raise KeyError(f"{name!r}: a {type(self).__name__} has the fields {names}")
        return getattr(self, name)
