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
from PySide6.QtGui import QFont

from modelyard.core.common.names import plural
from modelyard.core.experiments.runquery.tokens import fold_values
from modelyard.ui.common import theme
from modelyard.ui.common.dnd import RUN_IDS_MIME

BASE_COLUMNS = ("status", "name", "run_id", "start_time", "duration")
TITLES = {"status": "Status", "name": "Run", "run_id": "Id", "start_time": "Started", "duration": "Duration",
          "experiment": "Experiment", "user": "User", "source_type": "Source"}
RUN_ID_ROLE = Qt.ItemDataRole.UserRole + 20
SORT_ROLE = Qt.ItemDataRole.UserRole + 21  # the value a column sorts by (a fold series: the mean)
EXPANDED, COLLAPSED, BEST = "\u25be", "\u25b8", "\u2605"  # ▾ ▸ ★
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


def fmt_folds(mean: float, folds: list[float]) -> tuple[str, str]:
    """A cross-validation metric's cell: ("0.842 ± 0.013", tooltip listing the folds); the mean
    is the one the table sorts and filters by, the spread is the folds' standard deviation."""
    import statistics

    std = statistics.pstdev(folds) if len(folds) > 1 else 0.0
    text = f"{mean:.3f} ± {std:.3f}"
    tip = (f"Mean {mean:.4g} ± {std:.2g} (standard deviation) over {len(folds)} folds: "
           + ", ".join(f"{v:.4g}" for v in folds))
    return text, tip


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
    """The runs, one per row; a search's trials follow their parent run, indented, the one the
    search chose marked ★ and bold (see :func:`~modelyard.core.experiments.runquery.nest`); the
    panel hides the trials of a collapsed search (``collapsed``: their parents' run ids)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.table: Any = None  # RunsTable
        self.nesting: Any = None  # runquery.Nesting of the table's rows, or None: a flat list
        self.collapsed: set[str] = set()
        self.columns: list[str] = list(BASE_COLUMNS)
        self._present: set[str] = set()
        self._bold = QFont()
        self._bold.setBold(True)

    # -- data in
    def set_table(self, table: Any, columns: list[str] | None = None, nesting: Any = None) -> None:
        self.beginResetModel()
        self.table = table
        self.nesting = nesting
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

    # -- nesting
    def depth(self, row: int) -> int:
        return 0 if self.nesting is None else int(self.nesting.depth[row])

    def parent_row(self, row: int) -> int:
        return -1 if self.nesting is None else int(self.nesting.parent_row[row])

    def trials(self, row: int) -> int:
        """How many trials (child runs) follow this row."""
        return 0 if self.nesting is None else int(self.nesting.children[row])

    def is_best(self, row: int) -> bool:
        return self.nesting is not None and bool(self.nesting.best[row])

    def best_child(self, row: int) -> str | None:
        """The run id of the trial the search at ``row`` chose, if it is shown."""
        for r in range(row + 1, row + 1 + self.trials(row)):
            if self.is_best(r):
                return self.run_id(r)
        return None

    def searched(self, row: int) -> list[str]:
        return [] if self.nesting is None else list(self.nesting.searched.get(row, []))

    def hidden_rows(self) -> list[int]:
        """The trials of collapsed searches (rows the view hides)."""
        if self.nesting is None or not self.collapsed:
            return []
        import numpy as np

        parents = [r for r in (self.row_of(run_id) for run_id in self.collapsed) if r >= 0]
        return np.flatnonzero(np.isin(self.nesting.parent_row, parents)).tolist() if parents else []

    def _name(self, row: int) -> str:
        name = self._value("name", row)
        text = "" if name is None else str(name)
        if self.depth(row):
            return ("    " + BEST + " " if self.is_best(row) else "      ") + text
        if self.trials(row):
            glyph = COLLAPSED if self.run_id(row) in self.collapsed else EXPANDED
            searched = self.searched(row)
            return f"{glyph} {text}" + (f" · searched: {', '.join(searched)}" if searched else "")
        return text

    def _name_tip(self, row: int) -> str:
        name = str(self._value("name", row) or "")
        if self.trials(row):
            searched = self.searched(row)
            tip = f"{name}: a search of {plural(self.trials(row), 'trial')}"
            tip += f" over {', '.join(searched)}" if searched else ""
            return tip + " (click the arrow to show or hide them)"
        if self.is_best(row):
            return f"{name}: the best trial of its search"
        return name

    def _metric(self, name: str, row: int, role: int) -> Any:
        value = self._value(name, row)
        folds = fold_values(self._value("folds." + name.split(".", 1)[1], row)) if self._folds(name) else []
        if folds and value is not None and not math.isnan(float(value)):
            text, tip = fmt_folds(float(value), folds)
            return text if role == Qt.ItemDataRole.DisplayRole else tip
        return fmt_metric(value) if role == Qt.ItemDataRole.DisplayRole else None

    def _folds(self, name: str) -> bool:
        return name.startswith("metrics.") and "folds." + name.split(".", 1)[1] in self._present

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
            return header_title(name)
        if role == Qt.ItemDataRole.ToolTipRole:
            if self._folds(name):
                return f"{name}: the mean over the cross-validation folds ± their standard deviation"
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
            if name == "name":
                return self._name(row)
            value = self._value(name, row)
            if name == "run_id":
                return str(value)[:8]
            if name == "start_time":
                return _local_time(value)
            if name == "duration":
                return fmt_duration(self._duration(row, value))
            if name.startswith("metrics."):
                return self._metric(name, row, role)
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.FontRole and self.is_best(row):
            return self._bold
        if role == Qt.ItemDataRole.DecorationRole and name == "status":
            return theme.status_icon(str(self._value("status", row)))
        if role == Qt.ItemDataRole.ForegroundRole and name == "status":
            return theme.status_colour(str(self._value("status", row)))
        if role == Qt.ItemDataRole.TextAlignmentRole and (name.startswith("metrics.") or name == "duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if name == "run_id":
                return str(self._value("run_id", row))
            if name == "name":
                return self._name_tip(row)
            if name.startswith("metrics."):
                return self._metric(name, row, role)
            if name.startswith(("params.", "tags.")):
                value = self._value(name, row)
                return None if value is None else str(value)
        return None

    def _duration(self, row: int, value: Any) -> Any:
        """A running run's duration counts up to now (the panel repaints the column each second)."""
        if str(self._value("status", row)) != "running":
            return value
        import time

        import numpy as np

        start = self._value("start_time", row)
        if start is None or np.isnat(start):
            return value
        return time.time() - start.astype("datetime64[us]").astype("int64") / 1e6

    def running_rows(self) -> bool:
        import numpy as np

        return self.table is not None and "status" in self._present and bool(
            np.any(self.table.column("status") == "running"))


def header_title(name: str) -> str:
    return TITLES.get(name) or name.split(".", 1)[-1]
