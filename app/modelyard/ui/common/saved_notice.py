"""Where an export went: "Bundle churn@v2 saved to …/churn.mybundle  [Show in folder]" in the status bar.

The window shows a :class:`SavedNotice` on ``client.saved(what, path)`` for :data:`SHOW_MS`. The
folder opens through :func:`open_folder` (the desktop's file manager, ``QDesktopServices``), looked
up when the button is clicked so tests can replace it (``monkeypatch.setattr(saved_notice,
"open_folder", ...)``) or give a notice its own ``opener``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from modelyard.ui.common import theme
from modelyard.ui.common.widgets import ElidedLabel

SHOW_MS = 20_000


def open_folder(folder: str) -> bool:
    """Open ``folder`` in the desktop's file manager."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(folder)))


class SavedNotice(QWidget):
    """A status-bar line saying what was saved where, with "Show in folder"; hides itself after a while."""

    visibility_changed = Signal(bool)  # the window gives it the store label's room while it shows

    def __init__(self, parent: QWidget | None = None, *, opener: Callable[[str], Any] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("savedNotice")
        self.opener = opener
        self.path = ""
        self.what_label = QLabel(self)
        self.what_label.setObjectName("savedWhat")
        self.what_label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)  # never clipped
        self.path_label = ElidedLabel("", self)  # the file name's end stays: "/home/…/churn.mybundle"
        self.path_label.setObjectName("savedPath")
        self.path_label.setMinimumWidth(80)
        self.show_button = QPushButton("Show in folder", self)
        self.show_button.setObjectName("showInFolderButton")
        self.show_button.setIcon(theme.icon("folder-open"))
        self.show_button.setFlat(True)
        self.show_button.clicked.connect(self.show_folder)
        self.show_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(theme.SPACE_S)
        row.addWidget(self.what_label)
        row.addWidget(self.path_label, 1)
        row.addWidget(self.show_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SHOW_MS)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_saved(self, what: str, path: str) -> None:
        self.path = str(path)
        self.what_label.setText(f"{what} saved to")
        self.path_label.setText(self.path)
        self.path_label.setToolTip(f"{what} saved to {self.path}")
        self.show()
        self._timer.start()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.visibility_changed.emit(True)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().hideEvent(event)
        self.visibility_changed.emit(False)

    def text(self) -> str:
        return f"{self.what_label.text()} {self.path}"

    def folder(self) -> str:
        return str(Path(self.path).parent)

    def show_folder(self) -> None:
        if self.path:
            (self.opener or open_folder)(self.folder())
