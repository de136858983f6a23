"""Driving the Pipelines panel as a user does: show it, drop files on it, click a step's box, fill
the Run dialog. Shared by this folder's tests (test modules never import each other)."""

from __future__ import annotations

from pathlib import Path

from factories import settle_panel as settle
from modelyard.ui.pipelines.panel import PipelinesPanel
from modelyard.ui.pipelines.run_dialog import RunDialog
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QPushButton


def panel_of(window) -> PipelinesPanel:
    panel = window.panel_of("pipelines")
    window.show_panel(window.panels.index(panel))
    panel.refresh()
    settle(panel)
    return panel


def names(panel: PipelinesPanel) -> list[str]:
    return [r["name"] for r in panel.pipelines_model.rows]


def drop_on(widget, paths: list[Path]) -> bool:
    """A real drag of local files over ``widget``, dropped in its middle; whether it was taken."""
    point = QPointF(widget.rect().center())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDragMoveEvent(point.toPoint(), Qt.DropAction.CopyAction, mime,
                                                  Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    drop = QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def click_node(panel: PipelinesPanel, name: str) -> None:
    view = panel.graph
    centre = view.node_centre(name).toPoint()
    from PySide6.QtTest import QTest

    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)


def fill_run_dialog(qtbot, values: dict[str, str], *, force: bool = False) -> list[str]:
    """When the Run dialog opens: type ``values`` into its parameter fields and click Run. Returns
    the defaults the dialog showed (filled in once it ran)."""
    seen: list[str] = []

    def fill() -> None:
        dialog = next((w for w in QApplication.topLevelWidgets() if isinstance(w, RunDialog) and w.isVisible()), None)
        if dialog is None:
            QTimer.singleShot(20, fill)
            return
        for edit in dialog.findChildren(QLineEdit):
            seen.append(f"{edit.objectName()}={edit.text()}")
        for key, text in values.items():
            edit = dialog.findChild(QLineEdit, f"param_{key}")
            edit.selectAll()
            qtbot.keyClicks(edit, text)
        dialog.force.setChecked(force)
        qtbot.mouseClick(dialog.findChild(QPushButton, "runPipelineButton"), Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, fill)
    return seen
