"""A rows table model that takes a refreshed list of rows by key instead of resetting.

:meth:`KeyedRowsModel.update_rows` removes the rows that went away, inserts the new ones and
reports the changed ones, so views keep their selection, current row and scroll position across a
refresh (a reset would drop them). Rows whose order changed are moved with a layout change that
carries the persistent indexes along.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from PySide6.QtCore import QModelIndex

from modelyard.ui.common.rows import RowsTableModel

Row = TypeVar("Row")


class KeyedRowsModel(RowsTableModel[Row]):
    """Subclasses also implement ``key(row)``: what identifies a row across refreshes."""

    def key(self, row: Row) -> Hashable:
        raise NotImplementedError

    def row_of_key(self, key: Hashable) -> int:
        return next((i for i, r in enumerate(self.rows) if self.key(r) == key), -1)

    def update_rows(self, rows: list[Row]) -> None:
        """Make the model show ``rows`` (same key: same row), keeping selection and current row."""
        new = list(rows)
        new_keys = [self.key(r) for r in new]
        if len(set(new_keys)) != len(new_keys):  # keys are not unique: nothing to keep by
            self.set_rows(new)
            return
        wanted = set(new_keys)
        for i in range(len(self.rows) - 1, -1, -1):  # bottom up, so indexes stay valid
            if self.key(self.rows[i]) not in wanted:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self.rows[i]
                self.endRemoveRows()
        kept = [self.key(r) for r in self.rows]
        kept_set = set(kept)
        order = [k for k in new_keys if k in kept_set]
        if order != kept:  # the order changed: move the rows, and the selection with them
            self.layoutAboutToBeChanged.emit()
            position = {k: i for i, k in enumerate(order)}
            old = self.persistentIndexList()
            self.changePersistentIndexList(old, [self.index(position[self.key(self.rows[p.row()])], p.column())
                                                 for p in old])
            self.rows.sort(key=lambda r: position[self.key(r)])
            self.layoutChanged.emit()
        for i, (k, row) in enumerate(zip(new_keys, new, strict=True)):
            if i >= len(self.rows) or self.key(self.rows[i]) != k:
                self.beginInsertRows(QModelIndex(), i, i)
                self.rows.insert(i, row)
                self.endInsertRows()
            elif self.rows[i] != row:
                self.rows[i] = row
                self.dataChanged.emit(self.index(i, 0), self.index(i, max(self.columnCount() - 1, 0)))

