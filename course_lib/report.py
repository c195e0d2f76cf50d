"""Reports: the one shape every chapter's measurements come in.

A report is a list of rows, each row a dataclass (``measure.LayerCost``, ``prune.KeptRow``, …), so a
learner reads ``row.macs`` with tab completion and a test compares rows with ``==``. ``Rows`` is that
list plus two renderings: ``.table()`` (fixed-width text, for a notebook cell) and ``.as_dicts()``
(for pandas, JSON or csv). Nothing else: building a report is ``Rows(MyRow(...) for ...)``.
"""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass

__all__ = ["Rows", "format_cell"]


def format_cell(value: object) -> str:
    """How one value is shown in a table: floats with 4 significant digits, tuples without spaces."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ",".join(format_cell(v) for v in value) + ")"
    return str(value)


class Rows(list):
    """A list of dataclass rows with a text table (``.table()``) and plain dicts (``.as_dicts()``)."""

    def columns(self) -> list[str]:
        """The field names of the rows (those of the first row)."""
        if not self:
            return []
        first = self[0]
        if not is_dataclass(first):
            raise TypeError(f"report rows must be dataclass instances, got {type(first).__name__}")
        return [f.name for f in fields(first)]

    def as_dicts(self) -> list[dict]:
        """Every row as a plain ``dict`` (field name → value)."""
        return [asdict(row) for row in self]

    def table(self, columns: list[str] | None = None) -> str:
        """The rows as a fixed-width text table (``columns``: which fields, default all)."""
        columns = list(columns) if columns is not None else self.columns()
        if not self:
            return "(no rows)"
        cells = [[format_cell(getattr(row, c)) for c in columns] for row in self]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)
