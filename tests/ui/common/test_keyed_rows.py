"""Rows updated by key: removed, inserted, moved and changed rows keep the view's selection."""

from __future__ import annotations

from modelyard.ui.common.keyed_rows import KeyedRowsModel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView


class Names(KeyedRowsModel[dict]):
    headers = ("Name", "Value")

    def key(self, row: dict) -> str:
        return row["name"]

    def cell(self, row: dict, column: int, role: int):
        return (row["name"], row["value"])[column] if role == Qt.ItemDataRole.DisplayRole else None


def rows(*pairs):
    return [{"name": n, "value": v} for n, v in pairs]


def test_update_rows_keeps_the_selected_row_through_removes_inserts_moves_and_changes(qtbot):
    model = Names()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    model.update_rows(rows(("a", 1), ("b", 2), ("c", 3), ("d", 4)))
    view.selectRow(2)  # "c"
    resets, changed = [], []
    model.modelReset.connect(lambda: resets.append(True))
    model.dataChanged.connect(lambda top, _bottom: changed.append(model.rows[top.row()]["name"]))
    model.update_rows(rows(("d", 4), ("x", 0), ("c", 30), ("a", 1)))  # b gone, x new, order changed, c changed
    assert [r["name"] for r in model.rows] == ["d", "x", "c", "a"]
    assert model.rows[2]["value"] == 30 and changed == ["c"]
    assert [i.row() for i in view.selectionModel().selectedRows()] == [2] and view.currentIndex().row() == 2
    assert not resets
    model.update_rows([])
    assert model.rowCount() == 0 and not resets
