"""Where the Pipelines panel's pipelines and runs come from besides its Run button: pipeline files
(Add pipeline file…, a file dropped on the panel, its File tab validated off the main thread,
Remove…, the triggers switch) and the triggers that fire while the window is open.

A mixin of :class:`modelyard.ui.pipelines.panel.PipelinesPanel` (it uses the panel's client,
runner, tables and file view)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.ui.common.dnd import accepted, local_files
from modelyard.ui.common.widgets import show_error
from modelyard.ui.pipelines import data
from modelyard.ui.pipelines.texts import TRIGGER_WORDS

PIPELINE_SUFFIXES = (".yml", ".yaml")
FILE_FILTER = "Pipeline files (*.yml *.yaml);;All files (*)"
TRIGGER_INTERVAL_MS = 15_000  # how often the open window looks for due triggers (as `modelyard agent` does)


def problems_text(exc: BaseException) -> tuple[str, str | None]:
    """A refused pipeline file as a message and, for each problem, "line:col message hint"."""
    problems = getattr(exc, "problems", None)
    if not problems:
        return (exc.message, exc.hint) if isinstance(exc, ModelyardError) else (str(exc), None)
    first = problems[0]
    lines = [f"{p.line}:{p.column} {p.message}" + (f" {p.hint}" if p.hint else "") for p in problems[:8]]
    if len(problems) > 8:
        lines.append(f"… and {len(problems) - 8} more")
    return (f"{Path(first.file).name} has {plural(len(problems), 'problem')}; nothing was listed.",
            "\n".join(lines))


class PipelineSources:
    """Pipeline files and triggers (mixed into the panel)."""

    client: Any
    runner: Any
    pipeline: dict[str, Any] | None
    _loading: bool
    _firing: bool
    _told: set[str]

    # ------------------------------------------------------------------ the file
    def validate_file(self, path: str) -> None:
        """Read and validate ``path`` off the main thread (nothing is written) and show its problems."""
        if self.client is None:
            return
        self.client.read("pipelines.validate", lambda _store: data.read_file(path),
                         lambda result: self.file_view.show_result(path, *result),
                         lambda exc: self.file_view.show_result(path, None, [
                             {"line": 1, "column": 1, "message": str(exc), "hint": None}]))

    def add_pipeline_file(self, path: str | Path | None = None) -> None:
        """List a pipeline file (a file dialog when ``path`` is None); a file with problems is refused
        with each problem's line and column."""
        if self.client is None:
            return
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self, "Add a pipeline file", "", FILE_FILTER)
            if not path:
                return
        target = str(path)
        self.client.write(lambda store: data.add_file(store, target),
                          lambda info: self.refresh(select=info["name"]),
                          lambda exc: self._refused("Cannot add the pipeline", exc),
                          changes="pipelines")

    def _refused(self, title: str, exc: Exception) -> None:
        message, hint = problems_text(exc)
        show_error(self, title, ModelyardError(message, hint=hint))

    def add_files(self, files: list[Path]) -> None:
        """Files dropped on the panel (or on the window): each pipeline file is added."""
        for path in accepted(files, PIPELINE_SUFFIXES):
            self.add_pipeline_file(path)

    def _schedules_toggled(self, on: bool) -> None:
        if self._loading or self.client is None or self.pipeline is None:
            return
        name = self.pipeline["name"]
        self.client.write(lambda store: data.set_schedules(store, name, on), None,
                          lambda exc: show_error(self, "Cannot switch the triggers", exc), changes="pipelines")

    def remove_pipeline(self, *, confirm: bool = True) -> None:
        """Stop listing the selected pipeline (after asking): its file stays, its runs' history goes."""
        if self.pipeline is None or self.client is None:
            return
        name, runs = self.pipeline["name"], self.runs_model.rowCount()
        if confirm:
            from PySide6.QtWidgets import QMessageBox

            history = (f"the history of its {plural(runs, 'run')} is deleted" if runs else "it has no runs")
            answer = QMessageBox.question(
                self, "Remove the pipeline",
                f"Stop listing {name}? Its file stays where it is ({self.pipeline.get('path')}); {history}.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.client.write(lambda store: data.remove(store, name), None,
                          lambda exc: show_error(self, "Cannot remove the pipeline", exc), changes="pipelines")

    # ------------------------------------------------------------------ triggers
    def fire_triggers(self) -> None:
        """While the window is open its pipelines' triggers fire here, as ``modelyard agent`` fires
        them: claim what is due (exactly once across agents and windows on this store), record the
        runs, and run each as a ``pipeline.run`` job on the window's runner."""
        if self.client is None or self._firing:
            return
        interval_s = self.trigger_timer.interval() / 1000  # type: ignore[attr-defined]
        self._firing = True
        self.client.write(lambda store: data.fire_triggers(store, interval_s), self._triggers_fired,
                          self._triggers_failed)

    def _triggers_fired(self, started: list[tuple[str, int | None, str | None, str]]) -> None:
        self._firing = False
        ran = False
        for name, run_id, error, kind in started:
            if run_id is not None and self.runner is not None:
                self.start_job(data.run_spec(name, run_id, TRIGGER_WORDS.get(kind, kind)))  # type: ignore[attr-defined]
                ran = True
            elif error and error not in self._told and self.client is not None:
                self._told.add(error)  # a broken trigger is said once, not every pass
                self.client.message.emit(error, 15_000)
        if ran and self.client is not None:
            self.client.notify("pipelines")
        elif self.isVisible():  # type: ignore[attr-defined]
            self.refresh()  # type: ignore[attr-defined]  # runs an agent started elsewhere show up too

    def _triggers_failed(self, error: Exception) -> None:
        self._firing = False
        text = f"Pipeline triggers: {error}"
        if text not in self._told and self.client is not None:
            self._told.add(text)
            self.client.message.emit(text, 15_000)

    # ------------------------------------------------------------------ drops
    def _drop_files(self, event: Any) -> list[Path]:
        return accepted(local_files(event.mimeData()), PIPELINE_SUFFIXES)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if self._drop_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt's name
        if self._drop_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        files = self._drop_files(event)
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_files(files)
