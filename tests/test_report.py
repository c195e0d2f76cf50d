"""course_lib.report.Rows: the one report shape."""

from dataclasses import dataclass

import pytest

from course_lib.report import Rows, format_cell


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
    assert len({len(line) for line in lines}) == 1                       # fixed width
    assert rows.table(["macs"]).splitlines()[2].strip() == "1200"
    assert Rows().table() == "(no rows)"


def test_rows_need_dataclasses_and_cells_format():
    with pytest.raises(TypeError, match="dataclass"):
        Rows([{"a": 1}]).table()
    assert format_cell((1, 28, 28)) == "(1,28,28)" and format_cell(1 / 3) == "0.3333"
