"""The runs table: a QAbstractTableModel over a :class:`~modelyard.core.experiments.runquery.RunsTable`.

The RunsTable holds plain columns (numpy/pandas); the model asks it for one value per visible
cell (:meth:`RunsTable.cell`, O(1): no column is converted or reordered when the table is
replaced), so 100,000 runs cost no more to show than a hundred and a live refresh costs the
main thread a model reset and a repaint. Sorting asks the RunsTable for a new row order
(milliseconds) instead of Qt's proxy sorting.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from modelyard.ui.common import theme
from modelyard.ui.common.dnd import RUN_IDS_MIME

BASE_COLUMNS = ("status", "name", "run_id", "start_time", "duration")
TITLES = {"status": "Status", "name": "Run", "run_id": "Id", "start_time": "Started", "duration": "Duration",
          "experiment": "Experiment", "user": "User", "source_type": "Source"}
RUN_ID_ROLE = Qt.ItemDataRole.UserRole + 20
# Runs dragged out of the table (onto the Registry panel or its sidebar item): newline-separated ids.


def fmt_duration(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return ""
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _local_time(value: Any) -> str:
    """A naive UTC datetime64 shown in local time (formatted per visible cell only)."""
    import datetime as dt

    import numpy as np

    if value is None or np.isnat(value):
        return ""
    seconds = value.astype("datetime64[us]").astype("int64") / 1e6
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def fmt_metric(value: Any) -> str:
    if value is None:
        return ""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(f):
        return ""
    return f"{f:.4g}"


class RunsModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.table: Any = None  # RunsTable
        self.columns: list[str] = list(BASE_COLUMNS)
        self._present: set[str] = set()

    # -- data in
    def set_table(self, table: Any, columns: list[str] | None = None) -> None:
        self.beginResetModel()
        self.table = table
        if columns is not None:
            self.columns = list(columns)
        self._present = set(table.columns) if table is not None else set()
        self.endResetModel()

    def _value(self, name: str, row: int) -> Any:
        return self.table.cell(name, row) if name in self._present else None

    def run_id(self, row: int) -> str:
        return str(self._value("run_id", row))

    def row_of(self, run_id: str) -> int:
        return -1 if self.table is None else self.table.row_of(run_id)

    # -- Qt API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or self.table is None else len(self.table)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or section >= len(self.columns):
            return None
        name = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return TITLES.get(name) or name.split(".", 1)[-1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return name
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [RUN_IDS_MIME]

    def mimeData(self, indexes: Any) -> QMimeData:
        """The dragged rows' run ids (one per row, in row order), plus the same as plain text."""
        rows = sorted({i.row() for i in indexes if i.isValid()})
        ids = [self.run_id(r) for r in rows]
        mime = QMimeData()
        mime.setData(RUN_IDS_MIME, "\n".join(ids).encode())
        mime.setText("\n".join(ids))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.table is None:
            return None
        name = self.columns[index.column()]
        row = index.row()
        if role == RUN_ID_ROLE:
            return self.run_id(row)
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(name, row)
            if name == "run_id":
                return str(value)[:8]
            if name == "start_time":
                return _local_time(value)
            if name == "duration":
                return fmt_duration(value)
            if name.startswith("metrics."):
                return fmt_metric(value)
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.DecorationRole and name == "status":
            return theme.status_icon(str(self._value("status", row)))
        if role == Qt.ItemDataRole.ForegroundRole and name == "status":
            return theme.status_colour(str(self._value("status", row)))
        if role == Qt.ItemDataRole.TextAlignmentRole and (name.startswith("metrics.") or name == "duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and name == "run_id":
            return str(self._value("run_id", row))
        return None
