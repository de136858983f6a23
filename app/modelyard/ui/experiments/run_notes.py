"""Editing a run's tags and note from the run detail's Overview: the Edit tags dialog and the
note box. Both write through the core (:func:`modelyard.core.experiments.tracking.edit_run`, one
transaction with an audit entry) on the client's writing thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.experiments.tracking.edits import NOTE_TAG
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import push_button


def visible_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k != NOTE_TAG}


def tag_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, str | None]:
    """What to write: new or changed tags, and None for each removed one."""
    changes: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    changes.update({k: None for k in before if k not in after})
    return changes


class TagsDialog(QDialog):
    """A run's tags as an editable key/value table: add, change, remove."""

    def __init__(self, run_name: str, tags: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tagsDialog")
        self.setWindowTitle(f"Tags of {run_name}")
        self.before = dict(tags)
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("tagsEditor")
        self.table.setHorizontalHeaderLabels(["Tag", "Value"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().resizeSection(0, 180)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for k, v in sorted(tags.items()):
            self.add_row(k, v)
        self.add_button = QPushButton("Add tag", self)
        self.add_button.setObjectName("addTag")
        self.add_button.clicked.connect(lambda: self.add_row("", "", edit=True))
        self.remove_button = push_button(self, "Remove", self.remove_selected, name="removeTag")
        self.error = QLabel(self)
        self.error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Double-click a cell to change it. A tag without a name is dropped.", self))
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(520, 360)

    def add_row(self, key: str, value: str, *, edit: bool = False) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(key))
        self.table.setItem(r, 1, QTableWidgetItem(value))
        if edit:
            self.table.setCurrentCell(r, 0)
            self.table.editItem(self.table.item(r, 0))

    def remove_selected(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(r)

    def tags(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for r in range(self.table.rowCount()):
            key = (self.table.item(r, 0).text() if self.table.item(r, 0) else "").strip()
            if key:
                out[key] = self.table.item(r, 1).text() if self.table.item(r, 1) else ""
        return out

    def accept(self) -> None:
        tags = self.tags()
        if NOTE_TAG in tags:
            self.error.setText(f"The tag {NOTE_TAG} holds the run's note: edit it in the Note box instead.")
            self.error.show()
            return
        super().accept()

    def changes(self) -> dict[str, str | None]:
        return tag_changes(self.before, self.tags())


class NoteBox(QWidget):
    """A run's note: a text box and Save (enabled once the text differs from the saved note)."""

    save_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.saved_text = ""
        self.edit = QPlainTextEdit(self)
        self.edit.setObjectName("runNote")
        self.edit.setPlaceholderText("A note about this run: what you tried, what you saw…")
        self.edit.setTabChangesFocus(True)
        self.save_button = QPushButton("Save note", self)
        self.save_button.setObjectName("saveNote")
        self.save_button.setEnabled(False)
        self.status = QLabel(self)
        self.status.setStyleSheet(f"color: {self.palette().color(self.palette().ColorRole.PlaceholderText).name()}")
        self.edit.textChanged.connect(self._edited)
        self.save_button.clicked.connect(lambda: self.save_requested.emit(self.edit.toPlainText()))
        # Two lines of text high, Save beside it: the tags above keep their rows in a short window.
        lines = self.edit.fontMetrics().lineSpacing() * 2 + 2 * self.edit.frameWidth() + 8
        self.edit.setFixedHeight(lines)
        side = QVBoxLayout()
        side.setSpacing(2)
        side.addWidget(self.save_button)
        side.addWidget(self.status)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE_S)
        layout.addWidget(self.edit, 1)
        layout.addLayout(side)

    def set_note(self, text: str) -> None:
        """The run's saved note (a text being typed for the same run is kept)."""
        if self.edit.toPlainText() == self.saved_text or not self.save_button.isEnabled():
            self.edit.blockSignals(True)
            self.edit.setPlainText(text)
            self.edit.blockSignals(False)
        self.saved_text = text
        self._edited()

    def reset(self, text: str) -> None:
        """Another run: its note, nothing pending."""
        self.saved_text = ""
        self.save_button.setEnabled(False)
        self.edit.blockSignals(True)
        self.edit.setPlainText(text)
        self.edit.blockSignals(False)
        self.saved_text = text
        self.status.setText("")

    def _edited(self) -> None:
        changed = self.edit.toPlainText().strip() != self.saved_text.strip()
        self.save_button.setEnabled(changed)
        if changed:
            self.status.setText("Not saved")


def write_edit(client: Any, run_id: str, *, tags: dict[str, str | None] | None = None, note: str | None = None,
               on_done: Callable[[Any], None], on_error: Callable[[Exception], None]) -> None:
    """Write a run's tag and note changes through the core, off the main thread."""
    from modelyard.core.experiments.tracking import edit_run

    client.write(lambda store: edit_run(run_id, tags=tags, note=note, store=store), on_done, on_error,
                 changes="runs")
