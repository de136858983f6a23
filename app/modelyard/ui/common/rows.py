"""A table model over a list of plain rows with fixed headers: the base of the panels' tables.

A model whose rows have an identity (:meth:`RowsTableModel.key`) updates by key when given new
rows: rows that went away are removed, new ones inserted, moved ones moved and changed ones
repainted (``dataChanged``) — never a model reset, so the view's selection, current row and
scroll position survive a refresh. :func:`update_by_key` does it for any list-backed model.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Row = TypeVar("Row")
LONG_CELL = 10  # characters: a cell's text longer than this is also its tooltip (unless it has one)


def update_by_key(model: QAbstractTableModel, rows: list[Any], new: Sequence[Any],
                  key: Callable[[Any], Hashable]) -> bool:
    """Make ``rows`` (the list ``model`` shows) equal to ``new`` with row signals, not a reset.

    Returns False (and changes nothing) when the keys of ``new`` are not unique: the caller resets.
    """
    new = list(new)
    keys = [key(r) for r in new]
    wanted = set(keys)
    if len(wanted) != len(keys):
        return False
    root = QModelIndex()
    last_column = max(model.columnCount() - 1, 0)
    i = len(rows) - 1
    while i >= 0:  # remove what went away, a run of rows at a time, from the bottom up
        if key(rows[i]) in wanted:
            i -= 1
            continue
        j = i
        while j > 0 and key(rows[j - 1]) not in wanted:
            j -= 1
        model.beginRemoveRows(root, j, i)
        del rows[j:i + 1]
        model.endRemoveRows()
        i = j - 1
    for i, (row, k) in enumerate(zip(new, keys, strict=True)):
        if i >= len(rows) or key(rows[i]) != k:
            at = next((j for j in range(i + 1, len(rows)) if key(rows[j]) == k), None)
            if at is None:
                model.beginInsertRows(root, i, i)
                rows.insert(i, row)
                model.endInsertRows()
                continue
            model.beginMoveRows(root, at, at, root, i)
            rows.insert(i, rows.pop(at))
            model.endMoveRows()
        if rows[i] is not row and rows[i] != row:
            rows[i] = row
            model.dataChanged.emit(model.index(i, 0), model.index(i, last_column))
        else:
            rows[i] = row
    return True


class RowsTableModel(QAbstractTableModel, Generic[Row]):
    """Subclasses set ``headers`` and implement ``cell(row, column, role)``; those whose rows
    have an identity implement ``key(row)`` and are updated by key."""

    headers: Sequence[str] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Row] = []

    def key(self, row: Row) -> Hashable | None:
        """The row's identity (a name, an id); None: the model resets on every update."""
        return None

    def set_rows(self, rows: list[Row]) -> None:
        rows = list(rows)
        sample = rows[0] if rows else self.rows[0] if self.rows else None
        if sample is not None and self.key(sample) is not None and update_by_key(self, self.rows, rows, self.key):
            return
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def refresh_cells(self) -> None:
        """Something every row's cells read besides the row changed (a status map): repaint them."""
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, max(self.columnCount() - 1, 0)))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        value = self.cell(row, index.column(), role)
        if value is None and role == Qt.ItemDataRole.ToolTipRole:
            # A long cell a narrow column cuts still reads whole when hovered.
            text = self.cell(row, index.column(), Qt.ItemDataRole.DisplayRole)
            if isinstance(text, str) and len(text) > LONG_CELL:
                return text
        return value

    def cell(self, row: Row, column: int, role: int) -> Any:
        raise NotImplementedError
