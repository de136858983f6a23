"""Small widgets every panel uses: the empty state and the user-facing error message."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from modelyard.core.errors import ModelyardError
from modelyard.ui import theme


class EmptyState(QWidget):
    """A centred icon, headline, explanation and optional actions: what a panel will hold and how to start."""

    def __init__(self, icon_name: str, headline: str, body: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyState")
        self._icon_name = icon_name
        self.icon_label = QLabel(self)
        self.icon_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline = QLabel(headline, self)
        self.headline.setObjectName("emptyHeadline")
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        theme.make_heading(self.headline, 1.5)
        self.body = QLabel(body, self)
        self.body.setObjectName("emptyBody")
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        # A wrapped label inside a stacked layout is not asked for its height-for-width: fix both.
        self.body.setFixedWidth(520)
        self.body.setMinimumHeight(self.body.heightForWidth(520))
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(theme.SPACE_M)
        self.buttons.addStretch(1)
        self.buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_L)
        layout.addStretch(2)
        layout.addWidget(self.icon_label)
        layout.addWidget(self.headline)
        layout.addWidget(self.body, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(self.buttons)
        layout.addStretch(3)
        self.refresh_icon()

    def add_action(self, text: str, slot: Callable[[], object], *, icon_name: str | None = None,
                   enabled: bool = True, tooltip: str | None = None) -> QPushButton:
        button = QPushButton(text, self)
        if icon_name:
            button.setIcon(theme.icon(icon_name))
        button.setEnabled(enabled)
        if tooltip:
            button.setToolTip(tooltip)
        button.clicked.connect(slot)
        self.buttons.insertWidget(self.buttons.count() - 1, button)
        return button

    def refresh_icon(self) -> None:
        colour = self.palette().color(self.palette().ColorRole.PlaceholderText)
        self.icon_label.setPixmap(theme.icon(self._icon_name, colour).pixmap(72, 72))


def show_error(parent: QWidget | None, title: str, error: BaseException | str) -> None:
    """A message box with the user-facing message and hint, never a traceback."""
    if isinstance(error, ModelyardError):
        text, hint = error.message, error.hint
    else:
        text, hint = str(error), None
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    if hint:
        box.setInformativeText(hint)
    box.setObjectName("errorBox")
    box.open() if parent is not None and parent.isVisible() else box.exec()
