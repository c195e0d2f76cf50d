"""Reports: the one shape every chapter's measurements come in.

A report is a list of rows, each row a dataclass (``measure.LayerCost``, ``prune.KeptRow``, …), so a
learner reads ``row.macs`` with tab completion and a test compares rows with ``==``. ``Rows`` is that
list plus one lookup and two renderings:

- ``.find(recipe="VGG")``: the one row whose fields equal the keys (``KeyError`` listing what exists);
- ``.table(columns=None)``: fixed-width text for a notebook cell (``str(rows)`` is the same text);
- ``.as_dicts()``: plain dicts, for pandas, JSON or csv.

How a column looks is said where the field is declared, never in a ``table()`` override::

    @dataclass
    class RecipeRow:
        recipe: str = column(align="<")
        accuracy: float = column("acc %", "{:.2f}", scale=100)
        params: int = column(format="{:,}")
        mechanism: str = column(hidden=True)            # kept in the row, left out of the default table

        @computed("speed-up", "{:.2f}×")                 # a property shown as a column
        def speedup(self) -> float: ...

The keys of a field's metadata (``field(metadata={...})`` works as well as ``column(...)``):
``heading`` (default: the field name; ``"\\n"`` makes a two-line heading), ``format`` (a
``str.format`` pattern or a callable value → text; default :func:`format_cell`), ``scale``
(multiplies the value first), ``align`` (``">"`` right, the default, or ``"<"``), ``hidden``.
A ``None`` in a formatted column shows as ``-``. A subclass may add a ``footer()`` (total lines,
rendered below the rows, not part of the list) and methods that compute from the rows; building a
report is ``Rows(MyRow(...) for ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, field, fields, is_dataclass
from typing import Any

__all__ = ["Rows", "column", "computed", "format_cell"]

_KEYS = ("heading", "format", "scale", "align", "hidden")


def format_cell(value: object) -> str:
    """How one value is shown in a table: floats with 4 significant digits, tuples without spaces."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ",".join(format_cell(v) for v in value) + ")"
    return str(value)


def _metadata(
    heading: str | None, format: str | Callable[[Any], str] | None, scale: float | None, align: str, hidden: bool
) -> dict[str, Any]:
    if align not in ("<", ">"):
        raise ValueError(f"align={align!r} must be '<' (left) or '>' (right)")
    meta = {"heading": heading, "format": format, "scale": scale, "align": align, "hidden": hidden}
    return {k: v for k, v in meta.items() if v is not None}


def column(
    heading: str | None = None,
    format: str | Callable[[Any], str] | None = None,
    *,
    scale: float | None = None,
    align: str = ">",
    hidden: bool = False,
    **field_kwargs: Any,
) -> Any:
    """A dataclass field with its table look (see the module docstring); ``default=`` etc. as ``field``."""
    return field(metadata=_metadata(heading, format, scale, align, hidden), **field_kwargs)


class _Computed(property):
    """A property that ``Rows.table`` shows as a column (made by :func:`computed`)."""

    metadata: dict[str, Any]


def computed(
    heading: str | None = None,
    format: str | Callable[[Any], str] | None = None,
    *,
    scale: float | None = None,
    align: str = ">",
    hidden: bool = False,
) -> Callable[[Callable[[Any], Any]], property]:
    """Decorate a row method: a read-only property that the default table shows after the fields."""

    def wrap(fget: Callable[[Any], Any]) -> property:
        prop = _Computed(fget, doc=fget.__doc__)
        prop.metadata = _metadata(heading, format, scale, align, hidden)
        return prop

    return wrap


def _column_metadata(row_type: type) -> dict[str, Mapping[str, Any]]:
    """Column name → its metadata: the dataclass fields, then the ``@computed`` properties."""
    meta: dict[str, Mapping[str, Any]] = {f.name: f.metadata for f in fields(row_type)}
    for klass in reversed(row_type.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, _Computed):
                meta[name] = value.metadata
    return meta


def _cell(value: object, meta: Mapping[str, Any]) -> str:
    fmt = meta.get("format")
    if value is not None and meta.get("scale") is not None:
        value = value * meta["scale"]
    if fmt is None:
        return format_cell(value)
    if value is None:
        return "-"
    return fmt(value) if callable(fmt) else fmt.format(value)


class Rows(list):
    """A list of dataclass rows: ``.find(**key)``, ``.table(columns)``, ``.as_dicts()``."""

    def _row_type(self) -> type:
        first = self[0]
        if not is_dataclass(first) or isinstance(first, type):
            raise TypeError(f"report rows must be dataclass instances, got {type(first).__name__}")
        return type(first)

    def columns(self) -> list[str]:
        """The columns of the default table: the fields (and ``@computed`` properties) not hidden."""
        if not self:
            return []
        return [name for name, meta in _column_metadata(self._row_type()).items() if not meta.get("hidden")]

    def as_dicts(self) -> list[dict]:
        """Every row as a plain ``dict`` (field name → value)."""
        return [asdict(row) for row in self]

    def find(self, **key: object) -> Any:
        """The one row whose fields equal ``key`` (``rows.find(recipe="VGG")``).

        Raises ``KeyError`` naming the values that exist when no row matches, ``ValueError`` when
        several do (give more keys)."""
        if not key:
            raise TypeError("find needs at least one field=value, e.g. rows.find(name='conv1')")
        wanted = ", ".join(f"{k}={v!r}" for k, v in key.items())
        hits = [row for row in self if all(getattr(row, k, _ABSENT) == v for k, v in key.items())]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise ValueError(f"{len(hits)} rows have {wanted}: give more fields to pick one")
        names = ", ".join(key)
        values = [tuple(getattr(row, k, None) for k in key) for row in self]
        existing = values if len(key) > 1 else [v[0] for v in values]
        raise KeyError(f"no row with {wanted}; the rows have {names} in {existing}")

    def footer(self) -> list:
        """Rows shown below a rule at the end of ``table()`` (totals), not part of the list. None here.

        A footer row may be any object: the columns it has no attribute for show as ``-``."""
        return []

    def table(self, columns: list[str] | None = None) -> str:
        """The rows as a fixed-width text table (``columns``: which fields, default :meth:`columns`).

        Each column is shown as its field's metadata says (heading, format, scale, alignment)."""
        if not self:
            return "(no rows)"
        meta = _column_metadata(self._row_type())
        columns = list(columns) if columns is not None else self.columns()
        looks = [meta.get(c, {}) for c in columns]
        headings = [str(look.get("heading", c)).split("\n") for c, look in zip(columns, looks)]
        height = max(len(h) for h in headings)
        headings = [[""] * (height - len(h)) + h for h in headings]
        body = [[_cell(getattr(row, c), look) for c, look in zip(columns, looks)] for row in self]
        foot = [[_cell(getattr(row, c, None), look) for c, look in zip(columns, looks)] for row in self.footer()]
        widths = [max(len(x) for x in [*headings[i], *(r[i] for r in body + foot)]) for i in range(len(columns))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                x.ljust(w) if look.get("align") == "<" else x.rjust(w) for x, w, look in zip(cells, widths, looks)
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [line([h[i] for h in headings]) for i in range(height)] + [rule] + [line(r) for r in body]
        if foot:
            lines += [rule] + [line(r) for r in foot]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


_ABSENT = object()
