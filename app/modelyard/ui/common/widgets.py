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


def push_button(parent: QWidget, text: str, slot: Callable[[], object], *, name: str, icon: str | None = None,
           tip: str | None = None, enabled: bool = True) -> QPushButton:
    """A push button named ``name`` (tests and the action bars find it so) that calls ``slot``."""
    b = QPushButton(theme.icon(icon), text, parent) if icon else QPushButton(text, parent)
    b.setObjectName(name)
    if tip:
        b.setToolTip(tip)
    b.setEnabled(enabled)
    b.clicked.connect(lambda _checked=False: slot())
    return b


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
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "churn…april.csv": two long names never read alike
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


class ElidedLabel(QLabel):
    """A one-line label that elides its text in the middle when narrow (``churn…ions@v2``) and then
    carries the whole text as its tooltip. Rich text is not elided: use plain text."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._own_tip = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setMinimumWidth(40)
        from PySide6.QtWidgets import QSizePolicy

        self.setSizePolicy(QSizePolicy.Policy.Preferred, self.sizePolicy().verticalPolicy())
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text or ""
        self._elide()

    def full_text(self) -> str:
        return self._full

    def setToolTip(self, tip: str) -> None:  # noqa: N802 - Qt's name
        self._own_tip = tip
        self._elide()

    def sizeHint(self):  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self._full) + 2 * self.margin() + 4)
        return hint

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def is_elided(self) -> bool:
        return super().text() != self._full

    def _elide(self) -> None:
        width = max(0, self.contentsRect().width() - 2 * self.margin())
        shown = self.fontMetrics().elidedText(self._full, self._mode, width) if width else self._full
        QLabel.setText(self, shown)
        tip = self._own_tip
        if shown != self._full:
            tip = self._full if not tip else f"{self._full}\n{tip}"
        QLabel.setToolTip(self, tip)


class ActionBar(QWidget):
    """A panel's row of action buttons that fits any width: buttons that do not fit hide, and a
    "More" button at the end offers them as a menu (as a toolbar's overflow does). Buttons keep
    their signals, enabled state and tooltips; the first ones added are the last to hide, unless
    added with a higher ``priority``."""

    def __init__(self, parent: QWidget | None = None, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft) -> None:
        super().__init__(parent)
        from PySide6.QtWidgets import QMenu, QSizePolicy, QToolButton

        self.setObjectName("actionBar")
        self._buttons: list[tuple[int, int, QPushButton]] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(theme.SPACE_S)
        self._layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)  # it may be narrower than its buttons
        self.more = QToolButton(self)
        self.more.setObjectName("moreActions")
        self.more.setText("More")
        self.more.setIcon(theme.icon("more"))
        self.more.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.more.setToolTip("More actions")
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.more)
        self.menu.setToolTipsVisible(True)  # a greyed-out item says why (a role's rights: ui/common/rights.py)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.more.setMenu(self.menu)
        self.more.hide()
        self._layout.addWidget(self.more)
        # the width left over once buttons went to "More" stays empty (the buttons keep their size),
        # after them, or before them in a bar aligned right (a header's)
        if align & Qt.AlignmentFlag.AlignRight:
            self._layout.insertStretch(0, 1)
        else:
            self._layout.addStretch(1)
        # Preferred: as wide as all its buttons when there is room, down to the "More" button alone.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def add(self, button: QPushButton, priority: int = 0) -> QPushButton:
        """Add ``button`` after the others; higher ``priority`` stays visible longer."""
        button.setParent(self)
        self._buttons.append((priority, len(self._buttons), button))
        self._layout.insertWidget(self._layout.indexOf(self.more), button)
        self._relayout()
        return button

    def buttons(self) -> list[QPushButton]:
        return [b for _p, _i, b in self._buttons]

    def overflowed(self) -> list[QPushButton]:
        """The buttons now offered only in the "More" menu, in their order."""
        return [b for _p, _i, b in self._buttons if b.property("overflowed")]

    def minimumSizeHint(self):  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        hint.setWidth(self.more.sizeHint().width())
        return hint

    def sizeHint(self):  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        spacing = self._layout.spacing()
        hint.setWidth(sum(b.sizeHint().width() + spacing for b in self.buttons() if not b.isHidden()
                          or b.property("overflowed")))
        return hint

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._relayout()

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        spacing = self._layout.spacing()
        available = self.width()
        wanted = [b for _p, _i, b in self._buttons if not b.property("userHidden")]
        total = sum(b.sizeHint().width() + spacing for b in wanted)
        keep = set(map(id, wanted))
        if total > available:
            budget = available - self.more.sizeHint().width() - spacing
            keep = set()
            for _p, _i, b in sorted(((p, -i, b) for p, i, b in self._buttons if b in wanted),
                                    key=lambda t: (t[0], t[1]), reverse=True):
                w = b.sizeHint().width() + spacing
                if w <= budget:
                    keep.add(id(b))
                    budget -= w
                else:
                    budget = -1  # keep the order: once one does not fit, the lower ones go too
        for _p, _i, b in self._buttons:
            over = id(b) not in keep and b in wanted
            b.setProperty("overflowed", over)
            b.setVisible(id(b) in keep)
        self.more.setVisible(any(b.property("overflowed") for b in self.buttons()))

    def set_button_hidden(self, button: QPushButton, hidden: bool) -> None:
        """Hide a button for a reason of its own (not for lack of room): it is not in the menu either."""
        button.setProperty("userHidden", hidden)
        self._relayout()

    def _fill_menu(self) -> None:
        self.menu.clear()
        for b in self.overflowed():
            action = self.menu.addAction(b.icon(), b.text())
            action.setEnabled(b.isEnabled())
            action.setToolTip(b.toolTip())
            action.triggered.connect(lambda _c=False, b=b: b.click())


def fit_to_screen(widget: QWidget, width: int, height: int, parent: QWidget | None = None) -> None:
    """Open ``widget`` (a dialog) at ``width`` x ``height``, or smaller to fit the screen it opens
    on with room for a title bar and a panel — a 1024x640 laptop screen shows it whole."""
    screen = (parent.screen() if parent is not None else widget.screen()).availableGeometry()
    widget.resize(min(width, screen.width() - 40), min(height, screen.height() - 60))
