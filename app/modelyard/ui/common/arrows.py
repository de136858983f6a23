"""Arrows between boxes in a QGraphicsScene: the lineage view's and the pipeline graph's."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem


def arrow(a: QRectF, b: QRectF, colour: QColor, tooltip: str | None = None) -> QGraphicsPathItem:
    """A curved arrow from box ``a`` to box ``b``: side to side when they are in different columns
    (either way), bottom to top when they share one. The line is stroked, its head filled."""
    if b.left() > a.right():
        start, end = QPointF(a.right(), a.center().y()), QPointF(b.left(), b.center().y())
    elif a.left() > b.right():
        start, end = QPointF(a.left(), a.center().y()), QPointF(b.right(), b.center().y())
    else:  # same column: from the bottom of one to the top of the other
        start, end = QPointF(a.center().x(), a.bottom()), QPointF(b.center().x(), b.top())
    path = QPainterPath(start)
    dx = (end.x() - start.x()) / 2
    if dx:
        path.cubicTo(QPointF(start.x() + dx, start.y()), QPointF(end.x() - dx, end.y()), end)
        direction = 1 if dx > 0 else -1
        head = QPolygonF([end, QPointF(end.x() - 8 * direction, end.y() - 4),
                          QPointF(end.x() - 8 * direction, end.y() + 4), end])
    else:
        path.lineTo(end)
        head = QPolygonF([end, QPointF(end.x() - 4, end.y() - 8), QPointF(end.x() + 4, end.y() - 8), end])
    item = QGraphicsPathItem(path)
    item.setPen(QPen(colour, 1.4))
    tip_path = QPainterPath()
    tip_path.addPolygon(head)
    tip = QGraphicsPathItem(tip_path, item)
    tip.setPen(QPen(colour, 1))
    tip.setBrush(QBrush(colour))
    if tooltip:
        item.setToolTip(tooltip)
    item.setZValue(0)
    return item
