"""The Jobs dock when nothing runs: a one-line strip in the status bar, and when the dock opens.

:class:`JobsStrip` is a flat status-bar button reading ``Jobs: 3 recent · last: Import churn.csv
succeeded`` (or ``Jobs: 1 running · Train churn 0:42``), elided in the middle with the whole line in
its tooltip; clicking it shows or hides the dock.

:class:`DockPolicy` decides when the dock shows by itself, so a small window keeps its height for
the panels:

* the dock opens on a new job and on a failure (a failure keeps it open until the user closes it);
* when every job has ended and none failed, it collapses again after :data:`COLLAPSE_MS`;
* what the user chooses wins: opening it (View › Jobs, Ctrl+J, the strip) pins it open — it no
  longer collapses by itself — and closing it unpins it. The choice is kept in the settings
  (:data:`PINNED_KEY`) and applied at the next start.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.jobs.dock import JobsPanel

COLLAPSE_MS = 2500  # how long a finished batch stays in view before the dock collapses
PINNED_KEY = "jobs/dock_pinned"
STRIP_MAX_WIDTH = 560
STRIP_MIN_WIDTH = 150
FAILED = ("failed", "interrupted")


class JobsStrip(QToolButton):
    """The status bar's jobs line: a flat button showing :meth:`JobsPanel.status_line`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobsStrip")
        self.setAutoRaise(True)
        self.setIcon(theme.icon("jobs"))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setMaximumWidth(STRIP_MAX_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._full = ""
        self.set_line("Jobs: none yet")

    def set_line(self, line: str) -> None:
        self._full = line
        self._elide()

    def full_text(self) -> str:
        return self._full

    def _padding(self) -> int:
        return self.iconSize().width() + 3 * theme.SPACE_M

    def _elide(self) -> None:
        width = self.width() if self.isVisible() else STRIP_MAX_WIDTH
        room = max(0, min(width, STRIP_MAX_WIDTH) - self._padding())
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, room)
        self.setText(shown)
        tip = "Show or hide the Jobs dock (Ctrl+J)"
        self.setToolTip(f"{self._full}\n{tip}" if shown != self._full else tip)
        self.updateGeometry()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name: the whole line, up to the maximum
        hint = super().sizeHint()
        full = self.fontMetrics().horizontalAdvance(self._full) + self._padding()
        return QSize(min(full, STRIP_MAX_WIDTH), hint.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name: a narrow window elides it further
        return QSize(STRIP_MIN_WIDTH, super().minimumSizeHint().height())


class DockPolicy(QObject):
    """Shows and collapses ``dock`` (holding ``panel``) as the module docstring says.
    ``toggle`` is the dock's View › Jobs action (checkable, Ctrl+J)."""

    def __init__(self, window: QMainWindow, dock: QDockWidget, panel: JobsPanel, toggle: QAction,
                 strip: JobsStrip, settings: QSettings) -> None:
        super().__init__(window)
        self.window, self.dock, self.panel, self.settings = window, dock, panel, settings
        self.pinned = str(settings.value(PINNED_KEY, "false")) == "true"
        self.holding_failure = False  # a failure opened the dock: it stays until the user closes it
        self._collapse = QTimer(self)
        self._collapse.setSingleShot(True)
        self._collapse.setInterval(COLLAPSE_MS)
        self._collapse.timeout.connect(self._collapse_now)
        panel.job_added.connect(self._job_added)
        panel.job_ended.connect(self._job_ended)
        self.strip = strip
        panel.summary_changed.connect(self._sync_strip)
        panel.summary_changed.connect(dock.setWindowTitle)  # the dock's title says it too: no row of its own
        toggle.triggered.connect(self.user_toggled)  # only what the user does; show()/hide() do not trigger it
        strip.clicked.connect(toggle.trigger)
        dock.installEventFilter(self)  # the dock's own close button
        self._sync_strip(panel.status_line())
        dock.setWindowTitle(panel.status_line())

    def _sync_strip(self, line: str) -> None:
        """The strip's line, and its icon in the state of the newest job (red when it failed)."""
        self.strip.set_line(line)
        rows = self.panel.rows()
        status = rows[0].status if rows else ""
        self.strip.setIcon(theme.status_icon(status) if status in ("running", *FAILED) else theme.icon("jobs"))

    def apply_start_state(self) -> None:
        """After the window's saved state is restored: open only if pinned (nothing runs yet)."""
        self.dock.setVisible(self.pinned)

    # -- what the user does
    def user_toggled(self, checked: bool) -> None:
        self._set_pinned(bool(checked))
        if checked:
            self._collapse.stop()
        else:
            self.holding_failure = False

    def eventFilter(self, watched: Any, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.dock and event.type() == QEvent.Type.Close:
            self._set_pinned(False)
            self.holding_failure = False
        return False

    def _set_pinned(self, pinned: bool) -> None:
        self.pinned = pinned
        self.settings.setValue(PINNED_KEY, "true" if pinned else "false")

    # -- what jobs do
    def _job_added(self, _job_id: int) -> None:
        self._collapse.stop()
        self._open()

    def _job_ended(self, _job_id: int, status: str) -> None:
        if status in FAILED:
            self.holding_failure = True
            self._collapse.stop()
            self._open()
            return
        if not self.panel.running_count() and not self.pinned and not self.holding_failure:
            self._collapse.start()

    def _open(self) -> None:
        if not self.dock.isVisible():
            self.dock.show()
            if not self.dock.isFloating():
                height = max(130, min(220, int(self.window.height() * 0.26)))
                self.window.resizeDocks([self.dock], [height], Qt.Orientation.Vertical)

    def _collapse_now(self) -> None:
        if self.panel.running_count() or self.pinned or self.holding_failure:
            return
        self.dock.hide()

    @property
    def collapsing(self) -> bool:
        return self._collapse.isActive()
