"""Item delegates shared by panels: small distribution plots and combo-box editors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)


def values_all_differ(profile: dict[str, Any], schema_type: str | None = None) -> bool:
    """True for free text, or a column whose most common value occurs once: its top values are a
    row of equal bars, which says nothing (the sparkline and the column detail draw none)."""
    top = profile.get("top") or []
    return (schema_type or profile.get("type")) == "text" or (bool(top) and max(t["count"] for t in top) == 1)


def distribution_values(profile: dict[str, Any]) -> tuple[list[float], bool]:
    """(bar heights, is_categorical) for a column's profile: histogram counts or top categories."""
    if profile.get("type") == "id":  # every value distinct: no distribution worth drawing
        return [], True
    hist = profile.get("histogram")
    if hist and hist.get("counts"):
        return [float(c) for c in hist["counts"]], False
    if values_all_differ(profile):
        return [], True
    top = profile.get("top") or []
    return [float(t["count"]) for t in top[:12]], True


class SparklineDelegate(QStyledItemDelegate):
    """Draws a tiny histogram (numeric) or category bars (categorical) from a profile dict."""

    def __init__(self, profile_role: int, parent: Any = None) -> None:
        super().__init__(parent)
        self._role = profile_role

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, option.widget)
        profile = index.data(self._role) or {}
        values, categorical = distribution_values(profile)
        if not values or max(values) <= 0:
            return
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        colour = option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Highlight)
        rect = QRectF(option.rect).adjusted(4, 4, -4, -4)
        peak = max(values)
        n = len(values)
        gap = 2.0 if categorical else 0.5
        width = (rect.width() - gap * (n - 1)) / n
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        for i, v in enumerate(values):
            h = max(1.0, rect.height() * v / peak) if v > 0 else 0.0
            painter.drawRect(QRectF(rect.left() + i * (width + gap), rect.bottom() - h, max(1.0, width), h))
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(120, 24)


class ComboDelegate(QStyledItemDelegate):
    """Edits a cell with a combo box of ``choices(index)``; commits on selection."""

    def __init__(self, choices: Callable[[QModelIndex], Sequence[str]], parent: Any = None) -> None:
        super().__init__(parent)
        self._choices = choices

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex) -> QWidget:
        combo = QComboBox(parent)
        combo.addItems(list(self._choices(index)))
        combo.activated.connect(lambda _i, c=combo: self.commitData.emit(c))
        return combo

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        assert isinstance(editor, QComboBox)
        editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole) or ""))

    def setModelData(self, editor: QWidget, model: Any, index: QModelIndex) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
