"""Preferences: who you are in the audit log, the colour scheme, and confirmations."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QWidget,
)

from modelyard.core.common.procs import current_user

SCHEMES = {"System": Qt.ColorScheme.Unknown, "Light": Qt.ColorScheme.Light, "Dark": Qt.ColorScheme.Dark}


def apply_preferences(settings: QSettings) -> None:
    """Apply stored preferences to this process (called at start-up and after the dialog)."""
    name = str(settings.value("user/name", "") or "").strip()
    if name:
        os.environ["MODELYARD_USER"] = name  # read by core.procs.current_user, inherited by job processes
    scheme = str(settings.value("appearance/scheme", "System"))
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "setColorScheme"):
        hints.setColorScheme(SCHEMES.get(scheme, Qt.ColorScheme.Unknown))


class PreferencesDialog(QDialog):
    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preferencesDialog")
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.name_edit = QLineEdit(str(settings.value("user/name", "") or ""), self)
        self.name_edit.setPlaceholderText(current_user())
        self.name_edit.setToolTip("Recorded as 'who' in the audit log of every change you make.")
        self.scheme_combo = QComboBox(self)
        self.scheme_combo.addItems(list(SCHEMES))
        self.scheme_combo.setCurrentText(str(settings.value("appearance/scheme", "System")))
        self.confirm_quit = QCheckBox("Ask before quitting while jobs run", self)
        self.confirm_quit.setChecked(str(settings.value("confirm/quit_with_jobs", "true")) == "true")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Your name:", self.name_edit)
        form.addRow("Colour scheme:", self.scheme_combo)
        form.addRow("", self.confirm_quit)
        form.addRow(buttons)

    def accept(self) -> None:
        self.settings.setValue("user/name", self.name_edit.text().strip())
        self.settings.setValue("appearance/scheme", self.scheme_combo.currentText())
        self.settings.setValue("confirm/quit_with_jobs", "true" if self.confirm_quit.isChecked() else "false")
        self.settings.sync()
        apply_preferences(self.settings)
        super().accept()
