"""The Jobs dock: running and recent jobs with progress, cancel, and their log and error.

:class:`JobsModel` is a ``QAbstractTableModel`` over plain job records (never a widget per
row). It merges two sources: the live signals of this window's
:class:`~modelyard.ui.common.jobrunner.JobRunner` (a job's start, progress — many times a second,
updating one row, not the table — and end) and the store's job table, re-read every few seconds
off the main thread through the window's :class:`~modelyard.ui.common.client.CoreClient` so jobs
run by the CLI or another window appear too. Rows update by job id: selection and scroll stay.

A running job's duration ticks (``0:42``); a phase whose length is unknown (a fit) shows a busy
bar sliding back and forth rather than a fraction that sits still. Selecting any job shows its log,
or, for a job that wrote none, a sentence saying what it did and how it ended (:mod:`.text`).
:attr:`JobsPanel.job_added`, :attr:`JobsPanel.job_ended` and :attr:`JobsPanel.summary_changed` let
the window open the dock on a new job or a failure and keep its status-bar strip current.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QIcon, QKeySequence, QPainter, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.jobs.runner import JobOutcome, JobRecord, get_job, list_jobs
from modelyard.core.store import Store
from modelyard.ui.common import theme
from modelyard.ui.common.client import CoreClient
from modelyard.ui.common.jobrunner import JobHandle, JobRunner
from modelyard.ui.common.rows import update_by_key
from modelyard.ui.common.widgets import ElidedLabel
from modelyard.ui.jobs import text

COLUMNS = ("Status", "Job", "Progress", "Started", "Duration", "")
COL_STATUS, COL_TITLE, COL_PROGRESS, COL_STARTED, COL_DURATION, COL_CANCEL = range(6)
POLL_MS = 2000
HISTORY = 200
PULSE_MS = 80  # how often a busy bar moves
PULSE_PERIOD_S = 1.6  # one sweep of a busy bar, there and back


@dataclass(frozen=True)
class JobRow:
    id: int
    title: str
    kind: str
    status: str
    progress: float | None
    message: str
    error: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    cancellable: bool = False
    result: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, r: JobRecord) -> JobRow:
        return cls(r.id, r.title, r.kind, r.status, r.progress, r.message or "", r.error, r.started_at, r.ended_at,
                   result=r.result)

    @property
    def busy(self) -> bool:
        """Running with no known fraction: the bar pulses."""
        return self.status == "running" and self.progress is None


class JobsModel(QAbstractTableModel):
    ROW_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []
        self._index: dict[int, int] = {}

    # -- Qt model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == self.ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_STATUS:
                return row.status
            if col == COL_TITLE:
                return row.title
            if col == COL_PROGRESS:
                return row.progress
            if col == COL_STARTED:
                return row.started_at.astimezone().strftime("%H:%M:%S") if row.started_at else ""
            if col == COL_DURATION:
                return text.elapsed(row)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_STATUS:
            return theme.status_icon(row.status)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS:
            return theme.status_colour(row.status)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_CANCEL and row.cancellable:
                return "Cancel this job"
            if col == COL_TITLE:  # the whole name (the cell elides it in the middle)
                return "\n".join(x for x in (row.title, row.error or row.message) if x)
            if row.error:
                return row.error
            return row.message or row.title
        if role == Qt.ItemDataRole.AccessibleTextRole and col == COL_CANCEL:
            return "Cancel" if row.cancellable else ""
        return None

    # -- updates
    def row(self, job_id: int) -> JobRow | None:
        i = self._index.get(job_id)
        return None if i is None else self._rows[i]

    def row_at(self, i: int) -> JobRow:
        return self._rows[i]

    def set_rows(self, rows: list[JobRow]) -> None:
        """Replace everything (newest first), keeping live progress of rows we know better."""
        merged = []
        for r in rows:
            old = self.row(r.id)
            if old is not None and old.cancellable and r.status in ("queued", "running"):
                r = replace(r, progress=old.progress, message=old.message, cancellable=True)
            merged.append(r)
        if not update_by_key(self, self._rows, merged, lambda r: r.id):
            self.beginResetModel()
            self._rows = merged
            self.endResetModel()
        self._index = {r.id: i for i, r in enumerate(self._rows)}

    def upsert(self, row: JobRow) -> None:
        i = self._index.get(row.id)
        if i is None:
            self.beginInsertRows(QModelIndex(), 0, 0)
            self._rows.insert(0, row)
            self._index = {r.id: k for k, r in enumerate(self._rows)}
            self.endInsertRows()
        else:
            self._rows[i] = row
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def update_progress(self, job_id: int, fraction: float | None, message: str) -> None:
        i = self._index.get(job_id)
        if i is None:
            return
        self._rows[i] = replace(self._rows[i], status="running", progress=fraction, message=message)
        self.dataChanged.emit(self.index(i, COL_STATUS), self.index(i, COL_PROGRESS))

    def rows(self) -> list[JobRow]:
        return list(self._rows)

    def tick(self) -> None:
        """Durations of running jobs move with the clock."""
        for i, r in enumerate(self._rows):
            if r.status == "running":
                self.dataChanged.emit(self.index(i, COL_DURATION), self.index(i, COL_DURATION))

    def pulse(self) -> bool:
        """Repaint the busy bars (jobs running with unknown progress); False when there are none."""
        busy = False
        for i, r in enumerate(self._rows):
            if r.busy:
                busy = True
                self.dataChanged.emit(self.index(i, COL_PROGRESS), self.index(i, COL_PROGRESS))
        return busy


class ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as a native progress bar and the cancel column as a button."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        row: JobRow = index.data(JobsModel.ROW_ROLE)
        if index.column() == COL_PROGRESS:
            opt = QStyleOptionProgressBar()
            opt.rect = option.rect.adjusted(theme.SPACE_S, theme.SPACE_S, -theme.SPACE_S, -theme.SPACE_S)
            opt.minimum, opt.maximum = 0, 1000
            opt.textVisible = True
            opt.state = option.state | QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
            opt.palette = QPalette(option.palette)
            if row.status != "running":
                opt.palette.setColor(QPalette.ColorRole.Highlight, theme.status_colour(row.status))
            room = max(0, opt.rect.width() - 2 * theme.SPACE_S)
            if row.status == "succeeded":
                opt.progress, opt.text = 1000, "100 %"
            elif row.busy:
                self._paint_busy(painter, option, opt, row)
                return
            elif row.status == "running":
                opt.progress = int(row.progress * 1000)
                opt.text = f"{row.progress * 100:.0f} %"
            else:  # stopped early: show how far it got
                opt.progress = int((row.progress or 0) * 1000)
                reached = row.progress or 0
                opt.text = f"{row.status} at {reached * 100:.0f} %" if 0 < reached < 0.995 else row.status
            opt.text = option.fontMetrics.elidedText(opt.text, Qt.TextElideMode.ElideRight, room)
            style = option.widget.style() if option.widget else QApplication.style()
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, opt, painter, option.widget)
            return
        if index.column() == COL_CANCEL:
            blank = QStyleOptionViewItem(option)  # the view reuses `option`: clear the last cell's text
            self.initStyleOption(blank, index)
            blank.text = ""
            blank.icon = QIcon()
            style = option.widget.style() if option.widget else QApplication.style()
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, blank, painter, option.widget)
            if row.cancellable:
                size = 16
                r = QRect(0, 0, size, size)
                r.moveCenter(option.rect.center())
                theme.icon("cancel", theme.status_colour("failed")).paint(painter, r)
            return
        super().paint(painter, option, index)

    @staticmethod
    def _paint_busy(painter: QPainter, option: QStyleOptionViewItem, opt: QStyleOptionProgressBar,
                    row: JobRow) -> None:
        """An empty bar with a block sliding back and forth (its length is unknown), and the step."""
        style = option.widget.style() if option.widget else QApplication.style()
        opt.progress = 0
        opt.text = ""
        style.drawControl(QStyle.ControlElement.CE_ProgressBarGroove, opt, painter, option.widget)
        phase = (time.monotonic() % PULSE_PERIOD_S) / PULSE_PERIOD_S
        sweep = 1 - abs(2 * phase - 1)  # 0 -> 1 -> 0
        groove = opt.rect.adjusted(1, 1, -1, -1)
        block = max(12, groove.width() // 4)
        left = groove.left() + int((groove.width() - block) * sweep)
        painter.save()
        colour = opt.palette.color(QPalette.ColorRole.Highlight)
        colour.setAlpha(170)
        painter.fillRect(QRect(left, groove.top(), block, groove.height()), colour)
        painter.restore()
        room = max(0, opt.rect.width() - 2 * theme.SPACE_S)
        opt.text = option.fontMetrics.elidedText(row.message or "Working…", Qt.TextElideMode.ElideRight, room)
        opt.textAlignment = Qt.AlignmentFlag.AlignCenter
        style.drawControl(QStyle.ControlElement.CE_ProgressBarLabel, opt, painter, option.widget)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), max(hint.height(), 26))


class JobsPanel(QWidget):
    """The dock's contents: the jobs table over a detail pane with the selected job's error and log."""

    cancel_requested = Signal(int)
    job_added = Signal(int)  # a job of this window started (its row is in the table)
    job_ended = Signal(int, str)  # job id, status: a job of this window ended
    summary_changed = Signal(str)  # the one-line summary for the status bar (text.status_line)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: Store | None = None
        self.runner: JobRunner | None = None
        self.client: CoreClient | None = None
        self._listing = False  # a re-read of the store's jobs is in flight
        self.model = JobsModel(self)

        self.view = QTableView(self)
        self.view.setObjectName("jobsTable")
        self.view.setModel(self.model)
        self.view.setItemDelegate(ProgressDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "Import churn…march.csv", whole in the tooltip
        self.view.setMinimumHeight(3 * 26 + 24)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_TITLE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_CANCEL, QHeaderView.ResizeMode.Fixed)
        self.view.setColumnWidth(COL_STATUS, 100)
        self.view.setColumnWidth(COL_PROGRESS, 170)
        self.view.setColumnWidth(COL_STARTED, 70)
        self.view.setColumnWidth(COL_DURATION, 64)
        self.view.setColumnWidth(COL_CANCEL, 32)
        self.view.clicked.connect(self._on_clicked)
        self.view.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())

        self.cancel_button = QToolButton(self)
        self.cancel_button.setObjectName("cancelJobButton")
        self.cancel_button.setText("Cancel job")
        self.cancel_button.setIcon(theme.icon("cancel"))
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel_selected)
        QShortcut(QKeySequence(Qt.Key.Key_Delete), self.view, activated=self._cancel_selected)

        self.summary = QLabel("No jobs yet. Long work (imports, training, checks) runs here.", self)
        self.summary.setObjectName("jobsSummary")

        # the selected job: its name, then its status, time and step — one line each, elided in the
        # middle with the whole in the tooltip (a short dock has no room for wrapped lines)
        self.detail_name = ElidedLabel("", self)
        self.detail_name.setObjectName("jobDetailName")
        bold = self.detail_name.font()
        bold.setBold(True)
        self.detail_name.setFont(bold)
        self.detail_title = ElidedLabel("", self, Qt.TextElideMode.ElideRight)  # "running 0:42 — Fitting Rand…"
        self.detail_title.setObjectName("jobDetailTitle")
        self.detail = QPlainTextEdit(self)
        self.detail.setObjectName("jobLog")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Long work (imports, training, checks, exports) runs as a job. "
                                       "Select a job to see its log and error.")
        self._detail_is_note = False  # the detail shows text.without_log's sentence, not log lines
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.detail.setFont(mono)

        # no row of its own for the summary (the dock's title and the status-bar strip say it): the
        # table's rows get the height; Cancel sits beside the selected job's title
        self.summary.hide()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        heading = QVBoxLayout()
        heading.setSpacing(0)
        heading.addWidget(self.detail_name)
        heading.addWidget(self.detail_title)
        top.addLayout(heading, 1)
        top.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        detail_box = QWidget(self)
        dl = QVBoxLayout(detail_box)
        dl.setContentsMargins(theme.SPACE_M, theme.SPACE_S, theme.SPACE_M, theme.SPACE_S)
        dl.setSpacing(theme.SPACE_S)
        dl.addLayout(top)
        dl.addWidget(self.detail, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setObjectName("jobsSplitter")
        splitter.addWidget(self.view)
        splitter.addWidget(detail_box)
        splitter.setStretchFactor(0, 3)  # the table first: the log takes what is left
        splitter.setStretchFactor(1, 2)
        splitter.setCollapsible(0, False)
        splitter.splitterMoved.connect(lambda *_: self._fit_columns())
        detail_box.setMinimumWidth(160)
        self.splitter = splitter
        self._sized = False  # the first show gives the table two thirds of the width
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE_S)
        layout.addWidget(splitter, 1)

        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self.refresh)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._pulse = QTimer(self)
        self._pulse.setInterval(PULSE_MS)
        self._pulse.timeout.connect(self._pulse_bars)

    # -- wiring
    def attach(self, store: Store, runner: JobRunner, client: CoreClient | None = None) -> None:
        if self.runner is not None:
            self.runner.job_started.disconnect(self._on_started)
            self.runner.job_finished.disconnect(self._on_finished)
        self.store, self.runner = store, runner
        self.client = client if client is not None else CoreClient(store, self)
        self._listing = False
        runner.job_started.connect(self._on_started)
        runner.job_finished.connect(self._on_finished)
        self.refresh()
        self._poll.start()
        self._clock.start()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """The job's name comes first: in a narrow dock the bar narrows and the start time goes
        (the duration stays)."""
        width = self.view.viewport().width()
        self.view.setColumnWidth(COL_PROGRESS, max(110, min(200, width // 4)))
        self.view.setColumnHidden(COL_STARTED, width < 560)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._sized and self.width() > 0:
            self._sized = True
            self.splitter.setSizes([self.width() * 2 // 3, self.width() - self.width() * 2 // 3])
        self._fit_columns()

    def stop_timers(self) -> None:
        self._poll.stop()
        self._clock.stop()
        self._pulse.stop()

    def _tick(self) -> None:
        self.model.tick()
        if any(r.status == "running" for r in self.model.rows()):
            self._update_summary()  # the strip's elapsed time moves too
            selected = self.model.row(self._selected_id() or -1)
            if selected is not None and selected.status == "running":
                self._update_detail_title(selected)
        self._start_pulse_if_busy()

    def _start_pulse_if_busy(self) -> None:
        if not self._pulse.isActive() and any(r.busy for r in self.model.rows()):
            self._pulse.start()

    def _pulse_bars(self) -> None:
        if not self.model.pulse():
            self._pulse.stop()

    def rows(self) -> list[JobRow]:
        """The jobs shown, newest first."""
        return self.model.rows()

    def running_count(self) -> int:
        return sum(1 for r in self.model.rows() if r.status in ("queued", "running"))

    def status_line(self) -> str:
        return text.status_line(self.model.rows())

    def refresh(self) -> None:
        """Re-read recent jobs from the store, off the main thread (jobs of other processes appear
        here too). A re-read still in flight (the store is busy) is not asked for again."""
        if self.client is None or self._listing:
            return
        self._listing = True
        self.client.read("jobs.list", lambda store: [JobRow.from_record(r) for r in list_jobs(store, limit=HISTORY)],
                         self._listed, self._list_failed)

    def _list_failed(self, _error: Exception) -> None:
        self._listing = False  # tried again at the next tick

    def _listed(self, rows: list[JobRow]) -> None:
        self._listing = False
        current = self._selected_id()
        live = {h.job_id for h in self.runner.running()} if self.runner else set()
        rows = [replace(r, cancellable=True) if r.id in live else r for r in rows]
        # this window's jobs started after the read began are not in it yet: keep their rows
        known = {r.id for r in rows}
        newer = [row for h in (self.runner.handles() if self.runner else [])
                 if h.job_id not in known and (row := self.model.row(h.job_id)) is not None]
        rows = sorted(newer, key=lambda r: r.id, reverse=True) + rows
        self.model.set_rows(rows)
        self._select(current)
        self._update_summary()

    def _on_started(self, handle: JobHandle) -> None:
        handle.progressed.connect(self._on_progress)
        handle.logged.connect(self._on_log)
        self.model.upsert(JobRow(handle.job_id, handle.spec.title, handle.spec.label, "running", None, "", None,
                                 dt.datetime.now(dt.UTC), None, cancellable=True))
        self._update_summary()
        if self._selected_id() is None:
            self._select(handle.job_id)
        self._start_pulse_if_busy()
        self.job_added.emit(handle.job_id)

    def _on_progress(self, fraction: float | None, message: str) -> None:
        handle = self.sender()
        if isinstance(handle, JobHandle):
            self.model.update_progress(handle.job_id, fraction, message)
            if fraction is None:
                self._start_pulse_if_busy()
            if handle.job_id == self._selected_id():
                self._update_detail_title(self.model.row(handle.job_id))

    def _on_log(self, line: str) -> None:
        handle = self.sender()
        if isinstance(handle, JobHandle) and handle.job_id == self._selected_id():
            if self._detail_is_note:  # the first line replaces "it wrote no log lines yet"
                self._detail_is_note = False
                self.detail.setPlainText(line)
            else:
                self.detail.appendPlainText(line)

    def _on_finished(self, handle: JobHandle, outcome: JobOutcome) -> None:
        """The row shows the outcome at once; the store's record (its end time) follows."""
        row = self.model.row(outcome.job_id)
        if row is not None:
            self.model.upsert(replace(row, status=outcome.status, error=outcome.error, cancellable=False,
                                      ended_at=row.ended_at or dt.datetime.now(dt.UTC), result=outcome.result))
        self._update_summary()
        if outcome.job_id == self._selected_id():
            self._show_selected()
        self.job_ended.emit(outcome.job_id, outcome.status)
        if self.client is not None:
            self.client.read(f"jobs.row.{outcome.job_id}", lambda store: get_job(store, outcome.job_id)[0],
                             self._record_read, lambda _e: None)

    def _record_read(self, record: JobRecord) -> None:
        self.model.upsert(JobRow.from_record(record))
        self._update_summary()
        if record.id == self._selected_id():
            self._update_detail_title(self.model.row(record.id))

    # -- selection and detail
    def _selected_id(self) -> int | None:
        idx = self.view.currentIndex()
        return self.model.row_at(idx.row()).id if idx.isValid() else None

    def _select(self, job_id: int | None) -> None:
        if job_id is None:
            return
        i = self.model._index.get(job_id)
        if i is not None:
            self.view.selectRow(i)

    def select_job(self, job_id: int) -> None:
        self._select(job_id)
        self._show_selected()

    def _show_selected(self) -> None:
        job_id = self._selected_id()
        row = self.model.row(job_id) if job_id is not None else None
        self.cancel_button.setEnabled(bool(row and row.cancellable))
        if row is None or self.store is None:
            self.detail_title.setText("")
            self.detail_name.setText("")
            self.detail.clear()
            self._detail_is_note = False
            return
        self._update_detail_title(row)
        # until the log is read: the error, or what the row says (never the last job's log, never blank)
        self.detail.setPlainText(row.error or text.without_log(row))
        self._detail_is_note = not row.error
        if self.client is not None:
            job_id = row.id
            self.client.read("jobs.log", lambda store: get_job(store, job_id)[1],
                             lambda log: self._show_log(job_id, log), lambda _e: None)

    def _show_log(self, job_id: int, log: str) -> None:
        row = self.model.row(job_id)
        if row is None or job_id != self._selected_id():
            return
        if log.strip():
            shown = f"{row.error}\n\n{log}" if row.error else log
            self._detail_is_note = False
        else:  # a job that wrote no log line (an export): say what it did and how it ended
            shown = text.without_log(row)
            self._detail_is_note = True
        self.detail.setPlainText(shown)

    def _update_detail_title(self, row: JobRow | None) -> None:
        if row is None:
            return
        self.detail_name.setText(row.title)
        line = f"{row.status} {text.elapsed(row)}" if row.status == "running" else row.status
        if row.status == "running" and row.message:
            line += f" — {row.message}"
        elif row.error:
            line += f" — {row.error.splitlines()[0]}"
        self.detail_title.setText(line)
        self.detail_title.setStyleSheet(f"color: {theme.status_colour(row.status).name()}")

    def _update_summary(self) -> None:
        running = sum(1 for i in range(self.model.rowCount()) if self.model.row_at(i).status == "running")
        total = self.model.rowCount()
        if total == 0:
            self.summary.setText("No jobs yet. Long work (imports, training, checks) runs here.")
        elif running:
            self.summary.setText(f"{running} running · {total} recent")
        else:
            self.summary.setText(f"Nothing running · {total} recent")
        self.cancel_button.setEnabled(bool((r := self.model.row(self._selected_id() or -1)) and r.cancellable))
        self.summary_changed.emit(self.status_line())

    # -- cancelling
    def _on_clicked(self, index: QModelIndex) -> None:
        if index.column() == COL_CANCEL:
            row = self.model.row_at(index.row())
            if row.cancellable:
                self._cancel(row.id)

    def _cancel_selected(self) -> None:
        job_id = self._selected_id()
        if job_id is not None:
            self._cancel(job_id)

    def _cancel(self, job_id: int) -> None:
        handle = self.runner.handle(job_id) if self.runner else None
        if handle is not None and handle.running:
            handle.cancel()
            row = self.model.row(job_id)
            if row is not None:
                self.model.upsert(replace(row, message="Cancelling…", cancellable=False))
            self.cancel_requested.emit(job_id)



