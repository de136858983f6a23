"""Preferences: who you are in the audit log, the colour scheme, confirmations, and where searches run."""

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
    QLabel,
    QLineEdit,
    QWidget,
)

from modelyard.core.common.procs import current_user
from modelyard.ui.common import theme

SCHEMES = {"System": Qt.ColorScheme.Unknown, "Light": Qt.ColorScheme.Light, "Dark": Qt.ColorScheme.Dark}
CLUSTER_ENV = "MODELYARD_CLUSTER"  # core/experiments/training/engine.py reads it in the training job
_ENV_AT_START = os.environ.get(CLUSTER_ENV)


def apply_preferences(settings: QSettings) -> None:
    """Apply stored preferences to this process (called at start-up and after the dialog)."""
    name = str(settings.value("user/name", "") or "").strip()
    if name:
        os.environ["MODELYARD_USER"] = name  # read by core.procs.current_user, inherited by job processes
    # where a search's fits run: the job processes the window starts inherit it (docs/scale.md)
    cluster = str(settings.value("training/cluster", "") or "").strip()
    if cluster:
        os.environ[CLUSTER_ENV] = cluster
    elif _ENV_AT_START is not None:
        os.environ[CLUSTER_ENV] = _ENV_AT_START
    else:
        os.environ.pop(CLUSTER_ENV, None)
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
        self.cluster_edit = QLineEdit(str(settings.value("training/cluster", "") or ""), self)
        self.cluster_edit.setObjectName("clusterEdit")
        self.cluster_edit.setPlaceholderText(_ENV_AT_START or "auto")
        self.cluster_edit.setToolTip(
            "Where a search's trials and cross-validation folds run: serial (here, one after the other), "
            "local or local:N (worker processes on this machine), auto (local for 10,000 training rows or "
            "more), or a Dask scheduler's address such as tcp://host:8786. Empty: the store's choice, else auto.")
        self.cluster_error = QLabel("", self)
        self.cluster_error.setObjectName("clusterError")
        self.cluster_error.setWordWrap(True)
        self.cluster_error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.cluster_error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Your name:", self.name_edit)
        form.addRow("Colour scheme:", self.scheme_combo)
        form.addRow("", self.confirm_quit)
        form.addRow("Searches run on:", self.cluster_edit)
        form.addRow("", self.cluster_error)
        form.addRow(buttons)

    def accept(self) -> None:
        from modelyard.core.common.errors import ModelyardError
        from modelyard.core.experiments.training.engine import parse_cluster

        cluster = self.cluster_edit.text().strip()
        if cluster:
            try:
                cluster = parse_cluster(cluster, "Searches run on").text
            except ModelyardError as exc:
                self.cluster_error.setText(f"{exc.message} {exc.hint or ''}".strip())
                self.cluster_error.show()
                self.cluster_edit.setFocus()
                return
        self.settings.setValue("training/cluster", cluster)
        self.settings.setValue("user/name", self.name_edit.text().strip())
        self.settings.setValue("appearance/scheme", self.scheme_combo.currentText())
        self.settings.setValue("confirm/quit_with_jobs", "true" if self.confirm_quit.isChecked() else "false")
        self.settings.sync()
        apply_preferences(self.settings)
        super().accept()
