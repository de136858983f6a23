"""The Datasets panel's column table: one row per column of a dataset version's profile.

Type and role are editable (combo boxes); edits are kept as pending changes until the user
saves them as a new version. Sorting uses :data:`SORT_ROLE` values (numbers sort as numbers).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont

from modelyard.ui.common import theme

COLUMNS = ("Column", "Type", "Role", "Missing", "Distinct", "Mean", "Min", "Max", "Distribution")
(COL_NAME, COL_TYPE, COL_ROLE, COL_MISSING, COL_DISTINCT, COL_MEAN, COL_MIN, COL_MAX, COL_DIST) = range(9)
SORT_ROLE = Qt.ItemDataRole.UserRole + 10
PROFILE_ROLE = Qt.ItemDataRole.UserRole + 11  # the column's profile dict


def fmt_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


class ProfileModel(QAbstractTableModel):
    changes_pending = Signal(bool)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._columns: list[dict[str, Any]] = []
        self._schema: dict[str, dict[str, Any]] = {}
        self._warned: dict[str, list[str]] = {}
        self._changes: dict[str, dict[str, str]] = {}

    def set_version(self, profile: dict[str, Any] | None, schema: dict[str, Any] | None) -> None:
        self.beginResetModel()
        self._columns = list((profile or {}).get("columns", []))
        self._schema = {c["name"]: c for c in (schema or {}).get("columns", [])}
        self._warned = {}
        for w in (profile or {}).get("warnings", []):
            if w.get("column"):
                self._warned.setdefault(w["column"], []).append(w["message"])
        self._changes = {}
        self.endResetModel()
        self.changes_pending.emit(False)

    # -- Qt API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.column() in (COL_TYPE, COL_ROLE):
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def column_profile(self, row: int) -> dict[str, Any]:
        return self._columns[row]

    def current(self, name: str, key: str) -> str:
        return self._changes.get(name, {}).get(key) or self._schema.get(name, {}).get(key, "")

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        col = self._columns[index.row()]
        name = col["name"]
        c = index.column()
        if role == PROFILE_ROLE:
            return col
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if c == COL_NAME:
                return name
            if c == COL_TYPE:
                return self.current(name, "type")
            if c == COL_ROLE:
                return self.current(name, "role")
            if c == COL_MISSING:
                share = col.get("missing_share") or 0
                return f"{col.get('missing', 0):,} ({share:.1%})" if col.get("missing") else "0"
            if c == COL_DISTINCT:
                return fmt_number(col.get("distinct"))
            if c == COL_MEAN:
                return fmt_number(col.get("mean"))
            if c == COL_MIN:
                return fmt_number(col.get("min"))
            if c == COL_MAX:
                return fmt_number(col.get("max"))
            return None
        if role == SORT_ROLE:
            if c == COL_NAME:
                return name.lower()
            if c in (COL_TYPE, COL_ROLE):
                return self.current(name, "type" if c == COL_TYPE else "role")
            key = {COL_MISSING: "missing", COL_DISTINCT: "distinct", COL_MEAN: "mean",
                   COL_MIN: "min", COL_MAX: "max"}.get(c)
            value = col.get(key) if key else None
            return value if isinstance(value, int | float) else float("-inf")
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (COL_MISSING, COL_DISTINCT, COL_MEAN, COL_MIN, COL_MAX):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and c == COL_NAME and name in self._warned:
            return theme.status_icon("warning")
        if role == Qt.ItemDataRole.ToolTipRole and c == COL_NAME and name in self._warned:
            return "\n".join(self._warned[name])
        if role == Qt.ItemDataRole.FontRole and name in self._changes and c in (COL_TYPE, COL_ROLE):
            font = QFont()
            font.setBold(True)
            return font
        return None

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or index.column() not in (COL_TYPE, COL_ROLE):
            return False
        name = self._columns[index.row()]["name"]
        key = "type" if index.column() == COL_TYPE else "role"
        original = self._schema.get(name, {}).get(key)
        if value == original:
            self._changes.get(name, {}).pop(key, None)
            if not self._changes.get(name):
                self._changes.pop(name, None)
        else:
            self._changes.setdefault(name, {})[key] = str(value)
        self.dataChanged.emit(index, index)
        self.changes_pending.emit(bool(self._changes))
        return True

    def pending_changes(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self._changes.items()}
