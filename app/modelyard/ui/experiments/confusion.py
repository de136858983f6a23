"""The confusion matrix of a classification run: a shaded table whose cells always show their
count and share in full, on one line when the column is wide enough, else on two."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from modelyard.core.common.names import plural
from modelyard.ui.common import theme

CELL_PADDING = 14  # the item's margins left and right (or above and below) plus a little air


class ConfusionModel(QAbstractTableModel):
    """Rows: the actual class; columns: the predicted class. Cells shade with their row share."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.matrix: list[list[int]] = []
        self.normalized: list[list[float]] = []
        self.two_lines = False  # count and share on two lines (set by the view for narrow columns)

    def set_matrix(self, data: Mapping[str, Any] | None) -> None:
        self.beginResetModel()
        data = data or {}
        self.labels = [str(x) for x in data.get("labels", [])]
        self.matrix = [list(r) for r in data.get("matrix", [])]
        norm = data.get("normalized")
        if not norm:
            norm = [[(c / s if s else 0.0) for c in row] for row in self.matrix for s in [sum(row)]]
        self.normalized = [list(r) for r in norm]
        self.endResetModel()

    def set_two_lines(self, two: bool) -> None:
        if two != self.two_lines:
            self.two_lines = two
            if self.matrix:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.matrix) - 1, len(self.labels) - 1),
                                      [Qt.ItemDataRole.DisplayRole])

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.matrix)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.labels)

    def share(self, row: int, column: int) -> float:
        try:
            return float(self.normalized[row][column] or 0.0)
        except (IndexError, TypeError, ValueError):
            return 0.0

    def lines(self, row: int, column: int) -> tuple[str, str]:
        """A cell's two parts: its count and its share of the actual class."""
        return f"{self.matrix[row][column]:,}", f"{self.share(row, column):.0%}"

    def cell_text(self, row: int, column: int, two_lines: bool) -> str:
        count, share = self.lines(row, column)
        return f"{count}\n{share}" if two_lines else f"{count} · {share}"

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if section >= len(self.labels):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.labels[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{'predicted' if orientation == Qt.Orientation.Horizontal else 'actual'}: {self.labels[section]}"
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        share = self.share(r, c)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell_text(r, c, self.two_lines)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            colour = QColor(theme.status_colour("ok" if r == c else "failed"))
            colour.setAlpha(int(20 + 130 * share))
            return colour
        if role == Qt.ItemDataRole.FontRole and r == c:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"actual {self.labels[r]}, predicted {self.labels[c]}: {plural(self.matrix[r][c], 'row')} "
                    f"({share:.1%} of the actual {self.labels[r]})")
        return None


class ConfusionView(QTableView):
    """The matrix as a table whose columns share the width; a cell's text switches to two lines
    when one does not fit, and the sections never shrink below their text (the table scrolls
    instead, for many classes)."""

    def __init__(self, model: ConfusionModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setModel(model)
        self.confusion = model
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setShowGrid(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._fit()

    def _cell_font(self) -> QFont:
        font = QFont(self.font())
        font.setBold(True)  # the diagonal's: the widest
        return font

    def text_size(self, two_lines: bool) -> tuple[int, int]:
        """The widest cell text's width and the tallest one's height, in the cells' (bold) font."""
        fm = QFontMetrics(self._cell_font())
        m = self.confusion
        width = 0
        for r in range(m.rowCount()):
            for c in range(m.columnCount()):
                width = max(width, *(fm.horizontalAdvance(line) for line in m.cell_text(r, c, two_lines).split("\n")))
        return width, fm.lineSpacing() * (2 if two_lines else 1)

    def _fit(self) -> None:
        m = self.confusion
        n = max(m.columnCount(), 1)
        one_width, one_height = self.text_size(False)
        two_width, two_height = self.text_size(True)
        available = self.viewport().width() / n
        two = available < one_width + CELL_PADDING
        m.set_two_lines(two)
        self.horizontalHeader().setMinimumSectionSize((two_width if two else one_width) + CELL_PADDING)
        self.verticalHeader().setMinimumSectionSize((two_height if two else one_height) + CELL_PADDING // 2)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()
