"""Table models update rows by key: a refresh keeps the view's selection and scroll position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.ui.common.rows import RowsTableModel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableView


@dataclass(frozen=True)
class Item:
    name: str
    value: int


class Items(RowsTableModel[Item]):
    headers = ("Name", "Value")

    def key(self, row: Item) -> str:
        return row.name

    def cell(self, row: Item, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.name, str(row.value))[column]
        return None


def _signals(model: Items) -> list[str]:
    seen: list[str] = []
    model.modelReset.connect(lambda: seen.append("reset"))
    model.rowsInserted.connect(lambda *_: seen.append("inserted"))
    model.rowsRemoved.connect(lambda *_: seen.append("removed"))
    model.rowsMoved.connect(lambda *_: seen.append("moved"))
    model.dataChanged.connect(lambda *_: seen.append("changed"))
    return seen


def test_a_refresh_updates_rows_by_key_and_keeps_selection_and_scroll(qtbot):
    model = Items()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.resize(300, 200)
    view.show()
    rows = [Item(f"row{i:03d}", i) for i in range(300)]
    model.set_rows(rows)
    view.selectRow(150)
    view.scrollTo(model.index(150, 0), QAbstractItemView.ScrollHint.PositionAtTop)
    scroll = view.verticalScrollBar().value()
    assert scroll > 0
    seen = _signals(model)

    # row 10 went away, a new row came after it, row 200 changed: nothing above the selection moved net
    new = [r for r in rows if r.name != "row010"]
    new.insert(10, Item("new", -1))
    new[200] = Item("row200", 2000)
    model.set_rows(new)
    assert "reset" not in seen and {"inserted", "removed", "changed"} <= set(seen)
    assert [model.data(model.index(r, 0)) for r in range(model.rowCount())] == [r.name for r in new]
    assert model.data(model.index(200, 1)) == "2000"
    assert model.data(view.currentIndex()) == "row150" and view.selectionModel().isRowSelected(150)
    assert view.verticalScrollBar().value() == scroll

    # the same rows again: no signal at all
    seen.clear()
    model.set_rows(list(new))
    assert seen == []

    # a reordering moves rows, and the selection follows its row
    seen.clear()
    model.set_rows(list(reversed(new)))
    assert "reset" not in seen and "moved" in seen
    assert model.data(view.currentIndex()) == "row150"
    assert [model.data(model.index(r, 0)) for r in range(model.rowCount())] == [r.name for r in reversed(new)]

    # emptied and filled again: removals and insertions, never a reset
    seen.clear()
    model.set_rows([])
    model.set_rows(rows[:3])
    assert "reset" not in seen and model.rowCount() == 3


def test_the_panels_refresh_keeps_the_selected_row_without_a_reset(qtbot, tmp_path):
    from factories import settle
    from factories import train_churn_model as train_model
    from modelyard.core.datasets import service as ds
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import Store
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow

    store = Store.open(tmp_path / "store")
    try:
        train_model(store)
        registry.register(store, registry.get_version(store, "churn@v1").run_id, "churn")
        for i in range(3):
            ds.import_frame(store, ds_frame(i), f"extra{i}")
        w = MainWindow(store, open_settings())
        qtbot.addWidget(w)
        w.show()
        settle(qtbot, w)
        panel = w.datasets_panel
        panel.refresh(select="extra1")
        settle(qtbot, w)
        seen = _signals(panel.datasets_model)
        ds.import_frame(store, ds_frame(9), "extra3")
        panel.refresh()
        settle(qtbot, w)
        assert "reset" not in seen and "inserted" in seen
        assert panel.datasets_model.rows[panel.datasets_view.currentIndex().row()].name == "extra1"

        reg = w.registry_panel
        reg.select_version("churn@v1")
        settle(qtbot, w)
        versions = _signals(reg.versions_model)
        registry.set_alias(store, "churn@v2", "challenger", comment="try")
        reg.refresh()
        settle(qtbot, w)
        assert "reset" not in versions and "changed" in versions
        assert reg.version is not None and reg.version.ref == "churn@v1"
        assert reg.versions_model.rows[reg.versions_view.currentIndex().row()].ref == "churn@v1"
        w.settings.setValue("confirm/quit_with_jobs", "false")
        w.close()
    finally:
        store.close()


def ds_frame(seed: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"a": [seed, seed + 1, seed + 2], "b": ["x", "y", "z"]})
