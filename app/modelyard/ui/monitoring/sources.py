"""The Monitoring panel's batches from outside: watch folders scanned on a timer (each new file
starts a check; drift raises a desktop notification) and files dragged onto a model.

A mixin of :class:`modelyard.ui.monitoring.panel.MonitoringPanel` (it uses the panel's client,
store, models table and :meth:`check_file`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from modelyard.core.common.errors import ModelyardError
from modelyard.ui.common.desktop import desktop_notify
from modelyard.ui.common.dnd import DATA_SUFFIXES, accepted, local_files
from modelyard.ui.common.widgets import show_error


class BatchSources:
    """Watch folders and drops (mixed into the panel)."""

    store: Any
    client: Any
    model_name: str | None
    _scanning: bool
    _watching: set[str]
    _watch_jobs: dict[int, str]

    def choose_watch_folder(self, folder: str | None = None, comment: str | None = None) -> bool:
        """Watch ``folder`` for the selected model (written off the main thread; the list refreshes
        from the change signal, then the folder is scanned)."""
        if self.store is None or self.client is None or self.model_name is None:
            return False
        from modelyard.core.monitoring import watch

        if folder is None:
            from PySide6.QtWidgets import QFileDialog

            folder = QFileDialog.getExistingDirectory(self, f"Watch a folder for new batches of {self.model_name}")
            if not folder:
                return False
        if comment is None:
            comment = "watch folder chosen in the Monitoring panel"
        name, text = self.model_name, comment
        self.client.write(lambda store: watch.set_watch_folder(store, name, folder or None, comment=text),
                          lambda _r: self.scan_watch_folders(),
                          lambda exc: show_error(self, "Cannot watch the folder", exc), changes="models")
        return True

    # ------------------------------------------------------------------ watch folders
    def scan_watch_folders(self) -> None:
        """Look for new files in every watched folder (off the main thread) and check them."""
        if self.store is None or self.client is None or self._scanning:
            return
        watching = set(self._watching)

        def scan(store: Any) -> list[tuple[str, Any]]:
            from modelyard.core.monitoring import watch

            found = []
            for name, _folder in watch.watched_models(store):
                try:
                    for p in watch.pending_files(store, name):
                        if str(p) not in watching:
                            found.append((str(p), watch.check_spec_for(store, name, p)))
                except ModelyardError:
                    continue
            return found

        self._scanning = True
        self.client.read("monitoring.watch", scan, self._start_watch_checks, self._scan_failed)

    def _scan_failed(self, _error: Exception) -> None:
        self._scanning = False

    def _start_watch_checks(self, found: list[tuple[str, Any]]) -> None:
        self._scanning = False
        if self.store is None:
            return
        for path, spec in found:
            if path in self._watching:
                continue
            self._watching.add(path)
            handle = self.start_job(spec)
            self._watch_jobs[handle.job_id] = path

    def notify(self, title: str, message: str) -> None:
        """A desktop notification (the system tray's balloon where there is one, else the status bar)."""
        self.notifications.append((title, message))
        self.tray = desktop_notify(self, self.tray, title, message, self.client)
        self.notified.emit(title, message)

    # ------------------------------------------------------------------ drops
    def _drop_files(self, event: Any) -> list[Path]:
        return accepted(local_files(event.mimeData()), DATA_SUFFIXES)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._drop_files(event) and self.models_model.rowCount():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if not self._drop_files(event):
            event.ignore()
            return
        row = self._model_row_at(event.position().toPoint())
        if row >= 0:
            self.models_view.selectRow(row)  # the model under the pointer takes the drop
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = self._drop_files(event)
        if not files:
            event.ignore()
            return
        row = self._model_row_at(event.position().toPoint())
        name = self.models_model.rows[row]["name"] if row >= 0 else self.model_name
        event.acceptProposedAction()
        for path in files:
            self.check_file(path, name)

    def _model_row_at(self, pos: Any) -> int:
        """The row of the models table under ``pos`` (panel coordinates), or -1."""
        viewport = self.models_view.viewport()
        local = viewport.mapFrom(self, pos)
        if not viewport.rect().contains(local):
            return -1
        index: QModelIndex = self.models_view.indexAt(local)
        return index.row() if index.isValid() else -1
