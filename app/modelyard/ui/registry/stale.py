"""A registry change refused because the model changed since the panel read it (another member
moved an alias, changed a stage or the gates): the bar that says who and when, with Reload.

The panel sends the revision of the model it shows with every alias, stage and gate change
(:mod:`modelyard.core.registry.edits`); the core refuses a change made from an older revision
with :class:`~modelyard.core.common.errors.StaleEditError` and writes nothing. The bar stays
above the model's facts until the user reloads (the model is read again and the bar goes) or
closes it; it never overwrites the other member's change.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from modelyard.core.common.errors import StaleEditError
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import push_button

AFTER = "Reload to see the model as it is now, then decide again."


class StaleBar(QFrame):
    """A slim warning bar: the refusal's sentence, a Reload button and a close button."""

    reload = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("staleBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        colour = theme.status_colour("warning")
        self.setStyleSheet(f"#staleBar {{ border: 1px solid {colour.name()}; border-radius: 4px; }}")
        self.icon = QLabel(self)
        self.icon.setPixmap(theme.status_icon("warning").pixmap(16, 16))
        self.label = QLabel(self)
        self.label.setObjectName("staleText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # names from the store are text, never markup
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # wraps, never widens
        self.reload_button = push_button(self, "Reload", self._reload, name="staleReloadButton",
                                         tip="Read the model again (its aliases, stages and gates as they are now)")
        self.close_button = QToolButton(self)
        self.close_button.setObjectName("staleCloseButton")
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close this message (nothing was changed)")
        self.close_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(theme.SPACE_S, 2, theme.SPACE_S, 2)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        row.addWidget(self.reload_button)
        row.addWidget(self.close_button)
        self.error: StaleEditError | None = None
        self.hide()

    def show_refusal(self, error: StaleEditError, what: str | None = None) -> None:
        """Say ``error`` (who changed the model, what and when) and which change of the user's
        (``what``: "churn@v1 to Production") was not made."""
        self.error = error
        reason = error.message.removeprefix("Not changed: ")
        text = f"Your change ({what}) was not made: {reason}" if what and reason != error.message else error.message
        self.label.setText(f"{text} {AFTER}")
        self.label.setToolTip(error.message)
        self.show()

    def text(self) -> str:
        return self.label.text()

    def _reload(self) -> None:
        self.hide()
        self.reload.emit()
