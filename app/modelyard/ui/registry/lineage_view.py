"""A lineage graph drawn left to right: file → dataset version → run → model version → what followed.

The graph comes from :func:`modelyard.core.registry.lineage.version_lineage` (plain data); its
``columns()`` give the order of the columns. Nodes are rounded boxes coloured by type, edges are
arrows labelled by relation on hover. Double-clicking a run or a dataset version asks the window
to show it (``node_activated``). A QGraphicsScene holds a few dozen items at most, so it is
rebuilt on every change.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPen,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
    QGraphicsView,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.arrows import arrow

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 168, 62, 40, 16, 12
MIN_SCALE = 0.55  # below this the view scrolls instead of shrinking further
# node type -> (light colour, dark colour, short caption)
NODE_STYLE: dict[str, tuple[str, str, str]] = {
    "file": ("#eaeef2", "#30363d", "file"),
    "dataset_version": ("#ddf4ff", "#0c2d4a", "dataset version"),
    "run": ("#fbefff", "#3c1e4a", "run"),
    "model_version": ("#dafbe1", "#0f3a1e", "model version"),
    "bundle": ("#fff8c5", "#3d3000", "bundle"),
    "server": ("#ffebe9", "#4a1a17", "server"),
    "monitoring_check": ("#fff1e5", "#4a2a0a", "drift check"),
    "predictions": ("#ddf4ff", "#0c2d4a", "predictions"),
}


class _Node(QGraphicsRectItem):
    def __init__(self, node: Any, rect: QRectF, dark: bool) -> None:
        super().__init__(rect)
        self.node = node
        kind = node.type
        if kind == "dataset_version" and (getattr(node, "details", None) or {}).get("kind") == "predictions":
            kind = "predictions"
        light, darkc, caption = NODE_STYLE.get(kind, ("#f6f8fa", "#21262d", node.type.replace("_", " ")))
        fill = QColor(darkc if dark else light)
        self.setBrush(QBrush(fill))
        border = QColor("#8c959f" if not dark else "#6e7681")
        if getattr(node, "focus", False):
            border = theme.status_colour("running")
        pen = QPen(border, 2 if getattr(node, "focus", False) else 1)
        self.setPen(pen)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor if node.type in ("run", "dataset_version")
                       else Qt.CursorShape.ArrowCursor)
        tip = [node.label, caption]
        for k, v in (getattr(node, "details", None) or {}).items():
            if v not in (None, "", [], {}):
                tip.append(f"{k}: {v}")
        self.setToolTip("\n".join(str(t) for t in tip))
        text_colour = QColor("#e6edf3" if dark else "#1f2328")
        small = QFont()
        small.setPointSizeF(small.pointSizeF() * 0.85)
        cap = QGraphicsSimpleTextItem(caption.upper(), self)
        cap.setFont(small)
        cap.setBrush(QColor("#8c959f" if not dark else "#8b949e"))
        cap.setPos(rect.left() + 8, rect.top() + 5)
        bold = QFont()
        bold.setBold(True)
        title = QGraphicsTextItem(self)
        title.setDefaultTextColor(text_colour)
        title.setFont(bold)
        title.setTextWidth(rect.width() - 12)
        metrics = QFontMetrics(bold)
        # at most two lines: elide what would not fit
        label = str(node.label)
        if metrics.horizontalAdvance(label) > 2 * (rect.width() - 20):
            label = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, int(2 * (rect.width() - 20)))
        title.setPlainText(label)
        title.setPos(rect.left() + 3, rect.top() + 17)
        # keep the Python wrappers: PySide deletes a QGraphicsTextItem (a QObject) whose wrapper
        # is collected even though it has a parent item, and the node would show no label
        self.caption_item, self.title_item = cap, title

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(self.pen())
        painter.setBrush(self.brush())
        painter.drawRoundedRect(self.rect(), 8, 8)


class LineageView(QGraphicsView):
    node_activated = Signal(str, str)  # node type, its id (run uuid, dataset version id, …)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lineageView")
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.nodes: dict[str, _Node] = {}
        self.graph: Any = None

    def set_graph(self, graph: Any) -> None:
        scene = self.scene()
        scene.clear()
        self.nodes = {}
        self.graph = graph
        dark = theme.is_dark(self.palette())
        columns = [col for col in graph.columns() if col]
        for c, column in enumerate(columns):
            x = MARGIN + c * (NODE_W + COL_GAP)
            for r, node in enumerate(column):
                y = MARGIN + r * (NODE_H + ROW_GAP)
                item = _Node(node, QRectF(x, y, NODE_W, NODE_H), dark)
                item.setZValue(1)
                scene.addItem(item)
                self.nodes[node.id] = item
        edge_colour = QColor("#8c959f" if not dark else "#6e7681")
        for edge in graph.edges:
            a, b = self.nodes.get(edge.src), self.nodes.get(edge.dst)
            if a is None or b is None:
                continue
            scene.addItem(arrow(a.rect(), b.rect(), edge_colour, edge.relation.replace("_", " ")))
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))
        self._fit()

    def _fit(self) -> None:
        """Shrink the graph to fit the view (never enlarge it, never below MIN_SCALE)."""
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            return
        view = self.viewport().rect()
        scale = min(1.0, view.width() / rect.width(), view.height() / rect.height())
        self.setTransform(QTransform.fromScale(max(scale, MIN_SCALE), max(scale, MIN_SCALE)))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def mouseDoubleClickEvent(self, event: Any) -> None:
        item = self.itemAt(event.position().toPoint())
        while item is not None and not isinstance(item, _Node):
            item = item.parentItem()
        if isinstance(item, _Node):
            node = item.node
            raw = node.id.split(":", 1)[1] if ":" in node.id else node.id
            self.node_activated.emit(node.type, raw)
            return
        super().mouseDoubleClickEvent(event)
