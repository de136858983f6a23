"""A pipeline drawn as a graph: one rounded box per step in columns by depth
(:meth:`~modelyard.core.pipelines.spec.Pipeline.levels`), arrows for ``needs``, each box showing
the step's name, kind and state in the state's colour (:data:`.texts.STATE_COLOURS`).

The scene holds a few dozen items, rebuilt only when the steps change; a run's progress only
repaints the boxes whose state changed. Running steps pulse (a timer runs only while one does).
Clicking a box selects the step (``step_clicked``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
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
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.arrows import arrow
from modelyard.ui.pipelines.texts import MUTED, state_colour

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 140, 52, 32, 16, 12
MAX_NODE_W = 220  # a step name wider than this is elided in the middle
MIN_SCALE = 0.66  # below this the names get hard to read: the view scrolls instead of shrinking further
PULSE_MS = 90


def levels_of(steps: list[dict[str, Any]]) -> dict[str, int]:
    """Each step's column: its depth in the graph (the core's rule), or its place in the file when
    the steps do not form a graph (a cycle the file's problems name)."""
    from modelyard.core.pipelines.spec import Pipeline, Step

    names = {s["name"] for s in steps}
    pipeline = Pipeline(name="shown", path="", folder="", steps=tuple(
        Step(name=s["name"], kind=str(s.get("kind") or ""), position=i,
             needs=tuple(n for n in s.get("needs") or () if n in names)) for i, s in enumerate(steps)))
    try:
        return pipeline.levels()
    except ValueError:
        return {s["name"]: i for i, s in enumerate(steps)}


class StepNode(QGraphicsItem):
    """One step's box. Painted by hand (no child text items): a repaint is all a state change needs."""

    def __init__(self, view: PipelineGraph, step: dict[str, Any], rect: QRectF) -> None:
        super().__init__()
        self.view = view
        self.name = str(step["name"])
        self.kind = str(step.get("kind") or "")
        self.state = "pending"
        self.rect = rect
        self.selected = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setZValue(1)
        self._tip()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self.rect.adjusted(-4, -4, 4, 4)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._tip()
            self.update()

    def _tip(self) -> None:
        self.setToolTip(f"{self.name}\n{self.kind} step · {self.state}")

    def caption(self) -> str:
        return f"{self.kind} · {self.state}"

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        dark = theme.is_dark(self.view.palette())
        colour = state_colour(self.state, dark)
        base = self.view.palette().color(self.view.palette().ColorRole.Base)
        fill = QColor(colour)
        fill.setAlpha(28 if self.state in MUTED else 60 if self.state == "cached" else 46)
        width = 1.6
        if self.state == "running":
            width = 2.0 + 1.6 * self.view.pulse  # a slow pulse: the step is working
        if self.state in ("failed", "blocked"):
            width = 2.4
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QBrush(base))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(self.rect, 8, 8)
        painter.setBrush(QBrush(fill))
        pen = QPen(colour, width)
        if self.state in MUTED or self.state in ("pending", "queued"):
            pen.setStyle(Qt.PenStyle.DashLine if self.state in MUTED else Qt.PenStyle.SolidLine)
        painter.setPen(pen)
        painter.drawRoundedRect(self.rect, 8, 8)
        if self.selected:
            ring = QPen(self.view.palette().color(self.view.palette().ColorRole.Highlight), 2)
            painter.setPen(ring)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(self.rect.adjusted(-3, -3, 3, 3), 10, 10)
        text = self.view.palette().color(self.view.palette().ColorRole.Text)
        muted = self.state in MUTED or self.state in ("pending", "queued")
        bold = QFont(self.view.font())
        bold.setBold(True)
        inner = self.rect.adjusted(10, 6, -10, -6)
        painter.setFont(bold)
        painter.setPen(text if not muted else self.view.palette().color(self.view.palette().ColorRole.PlaceholderText))
        name = QFontMetrics(bold).elidedText(self.name, Qt.TextElideMode.ElideMiddle, int(inner.width()))
        painter.drawText(QRectF(inner.left(), inner.top(), inner.width(), inner.height() / 2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        small = QFont(self.view.font())
        small.setPointSizeF(small.pointSizeF() * 0.9)
        small.setBold(self.state == "running")
        painter.setFont(small)
        painter.setPen(colour if not muted else self.view.palette().color(self.view.palette().ColorRole.PlaceholderText))
        cap = QFontMetrics(small).elidedText(self.caption(), Qt.TextElideMode.ElideRight, int(inner.width()))
        painter.drawText(QRectF(inner.left(), inner.center().y(), inner.width(), inner.height() / 2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, cap)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.view.select_step(self.name, emit=True)
        event.accept()


class PipelineGraph(QGraphicsView):
    """``show_steps(steps)`` with dicts of name, kind, needs and (for a run) status."""

    step_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pipelineGraph")
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMinimumHeight(120)
        self.nodes: dict[str, StepNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.selected: str | None = None
        self._shape: tuple[Any, ...] = ()
        self._focus: str | None = None  # the step last scrolled to
        self.pulse = 0.0
        self._phase = 0
        self.pulse_timer = QTimer(self)
        self.pulse_timer.setInterval(PULSE_MS)
        self.pulse_timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ content
    def show_steps(self, steps: list[dict[str, Any]]) -> None:
        """Draw ``steps`` (rebuilding the scene only when their names, kinds or needs changed) and
        colour each by its ``status`` (pending when it has none)."""
        shape = tuple((s["name"], s.get("kind"), tuple(s.get("needs") or ())) for s in steps)
        if shape != self._shape:
            self._build(steps)
            self._shape = shape
        for s in steps:
            node = self.nodes.get(s["name"])
            if node is not None:
                node.set_state(str(s.get("status") or "pending"))
        self._show_focus()
        running = any(n.state == "running" for n in self.nodes.values())
        if running and not self.pulse_timer.isActive():
            self.pulse_timer.start()
        elif not running and self.pulse_timer.isActive():
            self.pulse_timer.stop()
            self.pulse = 0.0

    def focus_step(self) -> str | None:
        """The step a graph too big for its view scrolls to: the first that failed or blocked, else the
        first running, else the first."""
        for states in (("failed", "blocked"), ("running",)):
            name = next((n for n, node in self.nodes.items() if node.state in states), None)
            if name is not None:
                return name
        return next(iter(self.nodes), None)

    def _show_focus(self) -> None:
        """Scroll to :meth:`focus_step` when it changes (not on every repaint: the user may have
        scrolled elsewhere)."""
        name = self.focus_step()
        if name is not None and name != self._focus:
            self._focus = name
            self.centerOn(self.nodes[name].rect.center())

    def restyle(self) -> None:
        """The palette changed (light/dark): redraw the arrows and boxes in its colours."""
        steps = [{"name": n.name, "kind": n.kind, "status": n.state, "needs": [a for a, b in self.edges if b == n.name]}
                 for n in self.nodes.values()]
        self._shape = ()
        self.show_steps(steps)

    def states(self) -> dict[str, str]:
        return {name: node.state for name, node in self.nodes.items()}

    def state_of(self, name: str) -> str | None:
        node = self.nodes.get(name)
        return node.state if node is not None else None

    def _node_width(self, steps: list[dict[str, Any]]) -> float:
        """Boxes as wide as the longest step name needs (bold, with the box's padding), from
        NODE_W up to MAX_NODE_W; longer names are elided in the middle (the tooltip has them)."""
        bold = QFont(self.font())
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        widest = max((metrics.horizontalAdvance(str(s["name"])) for s in steps), default=0)
        return float(min(MAX_NODE_W, max(NODE_W, widest + 24)))

    def _build(self, steps: list[dict[str, Any]]) -> None:
        scene = self.scene()
        scene.clear()
        self.nodes = {}
        self.edges = []
        self._focus = None
        levels = levels_of(steps)
        columns: dict[int, list[dict[str, Any]]] = {}
        for s in steps:
            columns.setdefault(levels.get(s["name"], 0), []).append(s)
        tallest = max((len(c) for c in columns.values()), default=0)
        width = self._node_width(steps)
        for level, column in sorted(columns.items()):
            x = MARGIN + level * (width + COL_GAP)
            top = MARGIN + (tallest - len(column)) * (NODE_H + ROW_GAP) / 2  # columns centred on each other
            for r, s in enumerate(column):
                node = StepNode(self, s, QRectF(x, top + r * (NODE_H + ROW_GAP), width, NODE_H))
                scene.addItem(node)
                self.nodes[node.name] = node
        colour = QColor("#8c959f" if not theme.is_dark(self.palette()) else "#6e7681")
        for s in steps:
            for need in s.get("needs") or ():
                a, b = self.nodes.get(need), self.nodes.get(s["name"])
                if a is not None and b is not None:
                    scene.addItem(arrow(a.rect, b.rect, colour))
                    self.edges.append((need, s["name"]))
        if self.selected is not None and self.selected in self.nodes:
            self.nodes[self.selected].selected = True
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))
        self._fit()

    # ------------------------------------------------------------------ selection
    def select_step(self, name: str | None, *, emit: bool = False) -> None:
        if self.selected in self.nodes:
            self.nodes[self.selected].selected = False
            self.nodes[self.selected].update()
        self.selected = name
        if name in self.nodes:
            self.nodes[name].selected = True
            self.nodes[name].update()
        if emit and name is not None:
            self.step_clicked.emit(name)

    def node_centre(self, name: str) -> QPointF:
        """Where step ``name``'s box is in the view's viewport (tests click there)."""
        return QPointF(self.mapFromScene(self.nodes[name].rect.center()))

    # ------------------------------------------------------------------ view
    def _tick(self) -> None:
        import math

        self._phase = (self._phase + 1) % 20
        self.pulse = (1 - math.cos(2 * math.pi * self._phase / 20)) / 2
        for node in self.nodes.values():
            if node.state == "running":
                node.update()

    def _fit(self) -> None:
        """Shrink the graph to fit the view (never enlarge it, never below MIN_SCALE)."""
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            return
        view = self.viewport().rect()
        scale = min(1.0, view.width() / rect.width(), view.height() / rect.height())
        self.setTransform(QTransform.fromScale(max(scale, MIN_SCALE), max(scale, MIN_SCALE)))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def stop(self) -> None:
        self.pulse_timer.stop()
