"""Small widgets every panel uses: the empty state and the user-facing error message."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.ui.common import theme


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


def rows_view(parent: QWidget, name: str, model: object) -> QTableView:
    """A read-only, single-row-selection table over ``model``, styled like every list in the app."""
    view = QTableView(parent)
    view.setObjectName(name)
    view.setModel(model)  # type: ignore[arg-type]
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.setShowGrid(False)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    return view


def master_detail(parent: QWidget, left: QWidget, parts: list[QWidget | QLayout], left_width: int) -> QSplitter:
    """A panel's body: the list on the left, and on the right ``parts`` stacked with the panel
    margins (the last part takes the spare height), in a splitter that grows the right side."""
    right = QWidget(parent)
    rl = QVBoxLayout(right)
    rl.setContentsMargins(theme.SPACE_M, theme.SPACE_M, theme.SPACE_M, theme.SPACE_M)
    rl.setSpacing(theme.SPACE_S)
    for i, part in enumerate(parts):
        stretch = 1 if i == len(parts) - 1 else 0
        if isinstance(part, QLayout):
            rl.addLayout(part, stretch)
        else:
            rl.addWidget(part, stretch)
    splitter = QSplitter(Qt.Orientation.Horizontal, parent)
    splitter.addWidget(left)
    splitter.addWidget(right)
    splitter.setStretchFactor(0, 1)
    splitter.setStretchFactor(1, 3)
    splitter.setSizes([left_width, 1200 - left_width])
    return splitter


def comment_and_save(dialog: QDialog) -> tuple[QLineEdit, QDialogButtonBox]:
    """The comment box and Save/Cancel of a dialog whose change is audited: Save waits for a comment."""
    comment = QLineEdit(dialog)
    comment.setObjectName("changeComment")
    comment.setPlaceholderText("Why? (written to the audit log)")
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, dialog)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    save = buttons.button(QDialogButtonBox.StandardButton.Save)
    save.setEnabled(False)
    comment.textChanged.connect(lambda t: save.setEnabled(bool(t.strip())))
    return comment, buttons
