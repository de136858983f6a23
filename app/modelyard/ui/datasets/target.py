"""A version without a target: the slim banner that says so, and the small dialog that sets one.

Setting a target is a schema change: it is saved as the next version through the same path as
the profile table's "Save as new version" (``service.update_schema``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.datasets import catalog, schema, targets
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import push_button

BANNER_TEXT = "This version has no target: models cannot train on it."
TASKS = ("classification", "regression")


class TargetBanner(QFrame):
    """A slim bar above the tabs: the sentence and a "Set target…" button."""

    set_target = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("targetBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        colour = theme.status_colour("warning")
        self.setStyleSheet(f"#targetBanner {{ border: 1px solid {colour.name()}; border-radius: 4px; }}")
        self.icon = QLabel(self)
        self.icon.setPixmap(theme.status_icon("warning").pixmap(16, 16))
        self.label = QLabel(BANNER_TEXT, self)
        self.label.setObjectName("targetBannerText")
        self.label.setWordWrap(True)
        self.button = push_button(self, "Set target…", self.set_target.emit, name="setTargetButton",
                                  tip="Choose the column models should predict; it is saved as the next version.")
        row = QHBoxLayout(self)
        row.setContentsMargins(theme.SPACE_S, 2, theme.SPACE_S, 2)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)


class SetTargetDialog(QDialog):
    """Choose the target column (pre-selected: the likely one) and its task (follows the column)."""

    def __init__(self, version: catalog.DatasetVersionInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("setTargetDialog")
        self.setWindowTitle(f"Set the target of {version.ref}")
        self.version = version
        self._profiles = {c["name"]: c for c in (version.profile or {}).get("columns", [])}
        self._types = {c["name"]: c.get("type", "") for c in version.columns}
        self.column = QComboBox(self)
        self.column.setObjectName("targetColumnChoice")
        self.column.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.column.setMinimumContentsLength(16)
        usable = [n for n in self._types if self._types[n] != "datetime"]
        self.column.addItems(usable)
        guess = targets.guess_target_from_profile(version.profile)
        if guess in usable:
            self.column.setCurrentText(guess)
        self.task = QComboBox(self)
        self.task.setObjectName("targetTask")
        self.task.addItems(TASKS)
        self.why = QLabel(self)
        self.why.setWordWrap(True)
        self.why.setObjectName("targetWhy")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Save as new version")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(bool(usable))
        form = QFormLayout()
        form.addRow("Target column:", self.column)
        form.addRow("Task:", self.task)
        layout = QVBoxLayout(self)
        intro = QLabel(f"Models learn to predict the target from the other columns. Saving creates a new version "
                       f"of {version.name}; {version.ref} stays as it is.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.why)
        layout.addWidget(self.buttons)
        self.column.currentTextChanged.connect(self._column_changed)
        self._column_changed(self.column.currentText())
        self.setMinimumWidth(420)

    def _column_changed(self, name: str) -> None:
        profile, sem = self._profiles.get(name), self._types.get(name, "")
        if profile is None:
            self.why.setText("")
            return
        try:
            task = schema.task_for(profile, sem)
        except schema.SchemaError as exc:
            self.why.setText(exc.message)
            return
        self.task.setCurrentText(task)
        distinct = profile.get("distinct") or 0
        self.why.setText(f"'{name}' ({sem}, {distinct:,} distinct values) suggests {task}.")
        self.why.setTextFormat(Qt.TextFormat.PlainText)

    def changes(self) -> dict[str, Any]:
        """The schema change ``service.update_schema`` saves as the next version."""
        name = self.column.currentText()
        return {"columns": {name: {"role": "target"}}, "target": name, "task": self.task.currentText()}
