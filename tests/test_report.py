"""course_lib.report.Rows: the one report shape."""

from dataclasses import dataclass, field

import pytest

from course_lib.report import Rows, column, computed, format_cell


@dataclass
class Row:
    layer: str
    macs: int
    ratio: float


def test_rows_is_a_list_with_a_table():
    rows = Rows(Row(n, m, r) for n, m, r in [("conv1", 1200, 0.5), ("fc", 30, 12.3456)])
    assert isinstance(rows, list) and len(rows) == 2 and rows[1].macs == 30
    assert rows.columns() == ["layer", "macs", "ratio"]
    assert rows.as_dicts()[0] == {"layer": "conv1", "macs": 1200, "ratio": 0.5}
    lines = rows.table().splitlines()
    assert lines[0].split() == ["layer", "macs", "ratio"]
    assert lines[3].split() == ["fc", "30", "12.35"]
    assert len({len(line) for line in lines}) == 1  # fixed width
    assert rows.table(["macs"]).splitlines()[2].strip() == "1200"
    assert Rows().table() == "(no rows)"


def test_rows_need_dataclasses_and_cells_format():
    with pytest.raises(TypeError, match="dataclass"):
        Rows([{"a": 1}]).table()
    assert format_cell((1, 28, 28)) == "(1,28,28)" and format_cell(1 / 3) == "0.3333"


@dataclass
class Recipe:
    recipe: str = column(align="<")
    accuracy: float | None = column("acc %", "{:.2f}", scale=100)
    params: int = column("params\n(weights)", "{:,}")
    dense_s: float = column(hidden=True, default=2.0)
    sparse_s: float = field(default=1.0, metadata={"hidden": True})

    @computed("speed-up", "{:.1f}×")
    def speedup(self) -> float:
        return self.dense_s / self.sparse_s


class Recipes(Rows):
    def footer(self) -> list:
        return [Recipe("total", None, sum(r.params for r in self))]


def test_field_metadata_drives_the_table():
    rows = Recipes([Recipe("VGG", 0.9123, 1234567), Recipe("VGG½+DC", 0.9, 12, 3.0)])
    assert rows.columns() == ["recipe", "accuracy", "params", "speedup"]
    lines = rows.table().splitlines()
    assert lines[0].split() == ["params"] and lines[1].split() == ["recipe", "acc", "%", "(weights)", "speed-up"]
    assert lines[3].split() == ["VGG", "91.23", "1,234,567", "2.0×"] and lines[3].startswith("VGG ")
    assert lines[4].split() == ["VGG½+DC", "90.00", "12", "3.0×"]
    assert set(lines[2]) == {"-", " "} and set(lines[5]) == {"-", " "}
    assert lines[6].split() == ["total", "-", "1,234,579", "2.0×"]  # the footer, None as "-"
    assert str(rows) == rows.table()
    assert rows.table(["dense_s", "recipe"]).splitlines()[2].split() == ["2", "VGG"]  # any field, on request
    assert field_formats_callable().table().splitlines()[2].strip() == "40×30"


def field_formats_callable() -> Rows:
    @dataclass
    class Shape:
        shape: tuple = column(format=lambda s: "×".join(map(str, s)))

    return Rows([Shape((40, 30))])


def test_find_returns_the_one_row_or_says_what_exists():
    rows = Rows(Row(n, m, 1.0) for n, m in [("conv1", 1), ("fc", 2), ("fc", 3)])
    assert rows.find(layer="conv1") is rows[0] and rows.find(layer="fc", macs=3) is rows[2]
    with pytest.raises(KeyError, match=r"layer='nope'.*\['conv1', 'fc', 'fc'\]"):
        rows.find(layer="nope")
    with pytest.raises(ValueError, match="2 rows"):
        rows.find(layer="fc")
    with pytest.raises(TypeError):
        rows.find()
    with pytest.raises(ValueError, match="align"):
        column(align="^")
