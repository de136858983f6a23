"""The Pipelines panel: the pipeline files the store lists, each drawn as a graph coloured by the
state of a run, its runs, a step's outputs and log, and the file beside its problems.

Left, the pipelines (name, steps, triggers, schedules on or off, the last run) with **Add pipeline
file…** (a .yml/.yaml file dropped on the panel is added too) and the selected pipeline's
schedules switch. Centre, the selected pipeline as a graph (:mod:`.graph`) showing the selected
run; while that run is queued or running it is read again every :data:`POLL_MS` and the steps
change colour as they go. Under it: **Runs** (the history; selecting one shows it), **Step** (the
clicked step: state, times, outputs, the records it created, its log) and **File** (the YAML with
its problems, validated whenever the file changes on disk).

**Run…** asks for the parameters and runs the pipeline as a ``pipeline.run`` job on the window's
job runner (:func:`modelyard.core.pipelines.runner.create_run` records it first); **Cancel**
cancels that job. A run that ends failed or blocked raises a desktop notification. While the
window is open, due triggers (schedules, new files, drift) start runs every
:data:`.sources.TRIGGER_INTERVAL_MS` (:func:`modelyard.core.pipelines.triggers.start_due`: exactly once
across windows and agents on one store).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import rights, theme
from modelyard.ui.common.desktop import desktop_notify
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import (
    ActionBar,
    ElidedLabel,
    master_detail,
    push_button,
    rows_view,
    show_error,
)
from modelyard.ui.pipelines import data
from modelyard.ui.pipelines.file_view import FileView
from modelyard.ui.pipelines.graph import PipelineGraph
from modelyard.ui.pipelines.sources import (
    TRIGGER_INTERVAL_MS,
    PipelineSources,
    problems_text,
)
from modelyard.ui.pipelines.step_view import StepView
from modelyard.ui.pipelines.tables import PipelinesModel, RunsModel
from modelyard.ui.pipelines.texts import (
    ACTIVE,
    ALERT_ON,
    RESUMABLE,
    counts_text,
    elapsed,
    trigger_text,
    when,
)

POLL_MS = 300
REFRESH_ON = frozenset({"pipelines", "store"})
NARROW_LIST = 400  # px: a pipelines list narrower than this hides its triggers column (the name comes first)


class PipelinesPanel(PipelineSources, Panel):
    title = "Pipelines"
    icon_name = "pipelines"
    empty_headline = "No pipelines yet"
    empty_body = (
        "A pipeline is a YAML file, kept beside your code, that chains the steps you do by hand — import, "
        "train, gate, register, bundle, check — and runs them in one go, on a schedule or when new data "
        "lands. Add one here (or drop it on this panel); <code>docs/examples/churn-pipeline/</code> has an example."
    )

    run_shown = Signal(int)  # a run was read and drawn (tests wait on it)
    notified = Signal(str, str)  # title, message (a desktop notification was raised)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.empty.add_action("Add pipeline file…", lambda: self.add_pipeline_file(), icon_name="folder-open")
        self.pipeline: dict[str, Any] | None = None  # the selected pipeline (catalog PipelineInfo as a dict)
        self.run: dict[str, Any] | None = None  # the shown run (RunInfo as a dict)
        self.shown_run_id: int | None = None
        self.step_name: str | None = None
        self.notifications: list[tuple[str, str]] = []
        self.tray: Any = None
        self._select_run: int | None = None  # a run to show once the pipeline's runs are read
        self._select_name: str | None = None  # a pipeline to show once the list is read
        self._selecting = False
        self._loading = False  # filling the widgets: their signals are not the user's
        self._firing = False  # a pass over the triggers is in flight
        self._told: set[str] = set()  # a broken trigger's message, said once
        self.trigger_timer = QTimer(self)
        self.trigger_timer.setInterval(TRIGGER_INTERVAL_MS)
        self.trigger_timer.timeout.connect(self.fire_triggers)
        self.poll_timer = QTimer(self)
        self.poll_timer.setSingleShot(True)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(lambda: self.load_run(self.shown_run_id))

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.pipelines_model = PipelinesModel(self)
        self.pipelines_view = rows_view(self, "pipelinesTable", self.pipelines_model)
        ph = self.pipelines_view.horizontalHeader()
        ph.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        ph.setSectionResizeMode(PipelinesModel.NAME, QHeaderView.ResizeMode.Stretch)
        self.pipelines_view.verticalHeader().setDefaultSectionSize(24)
        self.pipelines_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        ph.setMinimumSectionSize(36)
        ph.setSectionResizeMode(PipelinesModel.TRIGGERS, QHeaderView.ResizeMode.Interactive)
        self.pipelines_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.pipelines_view.installEventFilter(self)  # narrow: the name and the last run keep the room
        self.pipelines_view.selectionModel().currentRowChanged.connect(
            lambda cur, _p: self._pipeline_selected(cur.row()))
        self.add_button = push_button(self, "Add pipeline file…", lambda: self.add_pipeline_file(),
                                      name="addPipelineButton", icon="folder-open",
                                      tip="List a pipeline YAML file in this store (or drop it on the panel)")
        self.schedules_box = QCheckBox("Triggers on", self)
        self.schedules_box.setObjectName("schedulesToggle")
        self.schedules_box.setToolTip("When on, the selected pipeline's schedules, new-file and drift triggers start "
                                      "runs by themselves (while the app or `modelyard agent` runs); Run… works "
                                      "either way")
        self.schedules_box.toggled.connect(self._schedules_toggled)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        ll.setSpacing(theme.SPACE_S)
        ll.addWidget(self.pipelines_view, 1)
        row = QHBoxLayout()
        row.addWidget(self.schedules_box)
        row.addStretch(1)
        ll.addLayout(row)
        ll.addWidget(self.add_button)
        hint = QLabel("Or drop a pipeline file here.", self)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        ll.addWidget(hint)

        self.title_label = ElidedLabel("", self)
        self.title_label.setObjectName("pipelineTitle")
        theme.make_heading(self.title_label, 1.3)
        self.run_button = push_button(self, "Run…", lambda: self.run_pipeline(), name="runButton", icon="play",
                                      tip="Run the pipeline now, with its parameters")
        self.cancel_button = push_button(self, "Cancel run", lambda: self.cancel_run(), name="cancelRunButton",
                                         icon="stop", tip="Cancel the shown run (its running steps stop)",
                                         enabled=False)
        self.resume_button = push_button(self, "Resume", lambda: self.resume_run(), name="resumeRunButton",
                                         icon="play", tip="Run the shown run's unfinished steps and what follows "
                                                          "them (the others keep their outputs)", enabled=False)
        self.remove_button = push_button(self, "Remove…", lambda: self.remove_pipeline(), name="removePipelineButton",
                                         icon="trash", tip="Stop listing this pipeline (its file stays where it is; "
                                                           "its run history is deleted)")
        rights.guard("write", self.add_button, self.run_button, self.cancel_button, self.resume_button,
                     self.remove_button)
        self.actions = ActionBar(self)
        self.actions.add(self.run_button, 2)
        self.actions.add(self.cancel_button, 1)
        self.actions.add(self.resume_button, 1)
        self.actions.add(self.remove_button, 0)
        head = QHBoxLayout()
        head.addWidget(self.title_label, 1)
        head.addWidget(self.actions, 0)
        self.facts = QLabel(self)
        self.facts.setObjectName("pipelineFacts")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.PlainText)

        self.run_line = ElidedLabel("", self, Qt.TextElideMode.ElideRight)
        self.run_line.setObjectName("runLine")
        self.graph = PipelineGraph(self)
        self.graph.step_clicked.connect(self._step_clicked)
        graph_box = QWidget(self)
        gl = QVBoxLayout(graph_box)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.setSpacing(theme.SPACE_S)
        gl.addWidget(self.run_line)
        gl.addWidget(self.graph, 1)

        self.runs_model = RunsModel(self)
        self.runs_view = rows_view(self, "pipelineRunsTable", self.runs_model)
        rh = self.runs_view.horizontalHeader()
        rh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        rh.setSectionResizeMode(RunsModel.COUNTS, QHeaderView.ResizeMode.Stretch)
        self.runs_view.verticalHeader().setDefaultSectionSize(22)
        self.runs_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._run_selected(cur.row()))
        self.step_view = StepView(self)
        self.step_view.navigate_requested.connect(self._navigate)
        self.file_view = FileView(self)
        self.file_view.validate_requested.connect(self.validate_file)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("pipelineTabs")
        self.tabs.addTab(self.runs_view, "Runs")
        self.tabs.addTab(self.step_view, "Step")
        self.tabs.addTab(self.file_view, "File")

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setObjectName("pipelineSplit")
        split.addWidget(graph_box)
        split.addWidget(self.tabs)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 300])
        return master_detail(self, left, [head, self.facts, split], 320)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        from PySide6.QtCore import QEvent

        if watched is getattr(self, "pipelines_view", None) and event.type() == QEvent.Type.Resize:
            self._fit_pipelines_columns(event.size().width())
        return super().eventFilter(watched, event)

    def _fit_pipelines_columns(self, width: int) -> None:
        """Below :data:`NARROW_LIST` px the triggers column hides, a little narrower the steps column
        too (the name's tooltip has both)."""
        self.pipelines_view.setColumnHidden(PipelinesModel.TRIGGERS, width < NARROW_LIST)
        self.pipelines_view.setColumnHidden(PipelinesModel.STEPS, width < NARROW_LIST - 100)

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.pipelines_model.rowCount() > 0

    def set_store(self, store: Any, runner: Any, client: Any = None) -> None:
        super().set_store(store, runner, client)
        self._told.clear()
        self.trigger_timer.start()

    def on_changed(self, topics: frozenset[str]) -> None:
        if topics & REFRESH_ON:
            self.refresh()

    def refresh(self, select: str | None = None, run_id: int | None = None) -> None:
        """Re-read the pipelines (and the selected one's runs) off the main thread. ``select``: the
        pipeline to show; ``run_id``: the run to show once read."""
        if self.store is None or self.client is None:
            return
        if run_id is not None:
            self._select_run = int(run_id)
        if select is not None:
            self._select_name = select  # kept until read: a later refresh supersedes this read
        self.client.read("pipelines.list", data.list_pipelines, self._listed, self._read_failed)

    def _read_failed(self, error: Exception) -> None:
        self.facts.setText(f"Could not read the store: {error}")

    def _listed(self, rows: list[dict[str, Any]]) -> None:
        self.pipelines_model.update_rows(rows)
        self.pipelines_view.resizeColumnToContents(PipelinesModel.TRIGGERS)  # up to a limit: the name comes first
        header = self.pipelines_view.horizontalHeader()
        header.resizeSection(PipelinesModel.TRIGGERS, min(header.sectionSize(PipelinesModel.TRIGGERS),
                                                          header.fontMetrics().horizontalAdvance("schedule, new file") + 16))
        super().refresh()
        if not rows:
            self.pipeline, self.run, self.shown_run_id = None, None, None
            self.poll_timer.stop()
            self.file_view.show_file(None)
            return
        current = self._select_name or (self.pipeline or {}).get("name")
        if self._select_name in {r["name"] for r in rows}:
            self._select_name = None
        row = max(self.pipelines_model.row_of(current), 0)
        self._selecting = True
        try:
            self.pipelines_view.selectRow(row)
        finally:
            self._selecting = False
        self._pipeline_selected(row)

    def _pipeline_selected(self, row: int) -> None:
        if self._selecting or self.client is None or not 0 <= row < self.pipelines_model.rowCount():
            return
        info = self.pipelines_model.rows[row]
        changed = info["name"] != (self.pipeline or {}).get("name")
        self.pipeline = info
        if changed:
            self.shown_run_id, self.run, self.step_name = None, None, None
            self.graph.select_step(None)
            self.step_view.show_step(None)
            self.runs_model.set_rows([])
        self._show_pipeline(info)
        if changed or info.get("path") != self.file_view.path:
            self.file_view.show_file(info.get("path"))
        name = info["name"]
        self.client.read("pipelines.detail", lambda store: data.pipeline_detail(store, name),
                         lambda result: self._detail_loaded(name, *result), self._read_failed)

    def _show_pipeline(self, info: dict[str, Any]) -> None:
        self.title_label.setText(info["name"])
        fm = self.title_label.fontMetrics()
        self.title_label.setMinimumWidth(min(fm.horizontalAdvance(info["name"]) + 8, fm.horizontalAdvance("M") * 12))
        steps = info.get("steps") or []
        facts = [info.get("description") or "", plural(len(steps), "step"), str(info.get("path") or "")]
        if info.get("file_changed"):
            facts.append("the file changed since it was listed: the next run reads it again")
        self.facts.setText(" · ".join(f for f in facts if f))
        self._loading = True
        try:
            self.schedules_box.setEnabled(bool(info.get("triggers")))
            self.schedules_box.setChecked(bool(info.get("schedules_enabled", True)))
            self.schedules_box.setText("Triggers on" if info.get("triggers") else "Triggers on (it has none)")
        finally:
            self._loading = False
        if self.run is None:
            self.graph.show_steps([{**s, "status": "pending"} for s in steps])

    def _detail_loaded(self, name: str, info: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        if name != (self.pipeline or {}).get("name"):
            return
        self.pipeline = {**self.pipeline, **info} if self.pipeline else info
        self.runs_model.update_rows(runs)
        ids = [r["id"] for r in runs]
        want = self._select_run if self._select_run in ids else self.shown_run_id if self.shown_run_id in ids \
            else ids[0] if ids else None
        self._select_run = None if self._select_run in ids else self._select_run
        if want is None:
            self.run, self.shown_run_id = None, None
            self.run_line.setText("Never run: Run… runs it now.")
            self.graph.show_steps([{**s, "status": "pending"} for s in info.get("steps") or []])
            self._update_buttons()
            return
        row = self.runs_model.row_of_key(want)
        if self.runs_view.currentIndex().row() != row:
            self._selecting = True
            try:
                self.runs_view.selectRow(row)
            finally:
                self._selecting = False
        if want != self.shown_run_id or self.run is None or self.run.get("status") in ACTIVE \
                or self.runs_model.rows[row].get("status") != self.run.get("status"):
            self.show_run(want)

    # ------------------------------------------------------------------ a run
    def _run_selected(self, row: int) -> None:
        if self._selecting or not 0 <= row < self.runs_model.rowCount():
            return
        self.show_run(self.runs_model.rows[row]["id"])

    def show_run(self, run_id: int) -> None:
        """Show run ``run_id`` in the graph (read off the main thread; polled while it runs)."""
        if self.shown_run_id != run_id:
            self.poll_timer.stop()
        self.shown_run_id = int(run_id)
        self.load_run(self.shown_run_id)

    def load_run(self, run_id: int | None) -> None:
        if run_id is None or self.client is None:
            return
        self.client.read("pipelines.run", lambda store: data.get_run(store, run_id), self._run_loaded,
                         self._read_failed)

    def _run_loaded(self, run: dict[str, Any]) -> None:
        if run.get("id") != self.shown_run_id:
            return
        was_active = self.run is not None and self.run.get("id") == run["id"] and self.run.get("status") in ACTIVE
        self.run = run
        steps = sorted(run.get("steps") or [], key=lambda s: s.get("position", 0))
        self.graph.show_steps(steps)
        self.run_line.setText(self._run_text(run))
        self.run_line.setToolTip(run.get("error") or "")
        row = self.runs_model.row_of_key(run["id"])
        if row >= 0:
            summary = {k: v for k, v in run.items() if k not in ("steps", "params")}
            rows = list(self.runs_model.rows)
            rows[row] = {**rows[row], **summary}
            self.runs_model.update_rows(rows)
        step = self._step(self.step_name)
        if step is not None and step != self.step_view.step:
            self._show_step(step)  # its state, outputs or records changed
        elif step is not None and step.get("status") in ACTIVE + ("pending",):
            self._read_log(step["name"])  # only its log grows
        self._update_buttons()
        active = run.get("status") in ACTIVE
        if active:
            self.poll_timer.start()  # single shot: the next read is asked once this one is shown
        elif was_active:
            self.refresh()  # its end changes the list's last run
        self.run_shown.emit(run["id"])

    @staticmethod
    def _run_text(run: dict[str, Any]) -> str:
        status = run.get("status") or ""
        parts = [f"Run {run['id']} {status}", trigger_text(run.get("trigger"))]
        if run.get("started_at"):
            parts.append(f"started {when(run['started_at'])}")
        if elapsed(run):
            parts.append(elapsed(run))
        counts = run.get("counts") or {}
        if not counts:
            for s in run.get("steps") or []:
                counts[s.get("status") or "pending"] = counts.get(s.get("status") or "pending", 0) + 1
        if counts_text(counts):
            parts.append(counts_text(counts))
        return " · ".join(parts)

    def _step(self, name: str | None) -> dict[str, Any] | None:
        if name is None:
            return None
        source = (self.run or {}).get("steps") or (self.pipeline or {}).get("steps") or []
        return next((s for s in source if s.get("name") == name), None)

    def _step_clicked(self, name: str) -> None:
        self.step_name = name
        step = self._step(name)
        if step is not None:
            self._show_step(step)
            self.tabs.setCurrentWidget(self.step_view)

    def select_step(self, name: str) -> None:
        """Show step ``name`` of the shown run in the Step tab (as clicking its box does)."""
        self.graph.select_step(name)
        self._step_clicked(name)

    def _show_step(self, step: dict[str, Any]) -> None:
        self.step_view.show_step(step if self.run is not None else {**step, "status": "pending"})
        self._read_log(step["name"])

    def _read_log(self, name: str) -> None:
        if self.run is None or self.client is None:
            return
        run_id = self.run["id"]
        self.client.read("pipelines.log", lambda store: data.step_log(store, run_id, name),
                         lambda text: self._log_loaded(run_id, name, text), lambda _exc: None)

    def _log_loaded(self, run_id: int, name: str, text: str) -> None:
        if self.run is not None and self.run["id"] == run_id and self.step_name == name:
            self.step_view.set_log(text)

    def _navigate(self, room: str, target: Any) -> None:
        if self.client is not None:
            self.client.navigate.emit(room, target)

    # ------------------------------------------------------------------ running
    def run_pipeline(self, params: dict[str, Any] | None = None, *, jobs: int = 1, force: bool = False,
                     ask: bool = True) -> None:
        """Run the selected pipeline: ask for its parameters (``ask``), record the run, and run it as
        a job on the window's runner."""
        if self.pipeline is None or self.client is None:
            return
        info = self.pipeline
        if ask:
            from modelyard.ui.pipelines.run_dialog import RunDialog

            dialog = RunDialog(info["name"], dict(info.get("params") or {}), self)
            if dialog.exec() != RunDialog.DialogCode.Accepted:
                return
            params, jobs, force = dialog.params(), dialog.jobs.value(), dialog.force.isChecked()
        name, path, values = info["name"], str(info.get("path") or ""), dict(params or {})
        self.client.write(lambda store: data.create_run(store, name, path, values, jobs, force),
                          lambda run_id: self._run_created(name, run_id), self._run_refused, changes="pipelines")

    def _run_created(self, name: str, run_id: int) -> None:
        self.start_job(data.run_spec(name, run_id))
        self._select_run = run_id
        if (self.pipeline or {}).get("name") == name:
            self.tabs.setCurrentWidget(self.runs_view) if self.tabs.currentWidget() is self.file_view else None
            self.show_run(run_id)

    def _run_refused(self, exc: Exception) -> None:
        if getattr(exc, "problems", None):
            self.tabs.setCurrentWidget(self.file_view)
            if self.file_view.path:
                self.validate_file(self.file_view.path)
        message, hint = problems_text(exc)
        if getattr(exc, "problems", None):
            message = f"The file has {plural(len(exc.problems), 'problem')}: fix it before running."  # type: ignore[attr-defined]
        show_error(self, "Cannot run the pipeline", ModelyardError(message, hint=hint))

    def run_handle(self, run_id: int | None) -> JobHandle | None:
        """This window's running job of run ``run_id``, if any."""
        if self.runner is None or run_id is None:
            return None
        return next((h for h in self.runner.running() if h.spec.kind == data.RUN_KIND
                     and (h.spec.params or {}).get("run_id") == run_id), None)

    def resume_run(self) -> None:
        """Resume the shown run (one that failed, was blocked, cancelled or interrupted) as a new run."""
        run = self.run
        if run is None or self.client is None or run.get("status") not in RESUMABLE:
            return
        name, old_id = str(run.get("pipeline") or ""), int(run["id"])
        self.resume_button.setEnabled(False)
        self.client.write(lambda store: data.create_resume_run(store, old_id),
                          lambda run_id: self._resumed(name, old_id, run_id), self._run_refused, changes="pipelines")

    def _resumed(self, name: str, old_id: int, run_id: int) -> None:
        self.start_job(data.run_spec(name, run_id, f"resumes run {old_id}"))
        self._select_run = run_id
        if (self.pipeline or {}).get("name") == name:
            self.show_run(run_id)

    def cancel_run(self) -> None:
        handle = self.run_handle(self.shown_run_id)
        if handle is not None:
            handle.cancel()
            self.cancel_button.setEnabled(False)
            self.run_line.setText(f"Run {self.shown_run_id}: cancelling…")

    def _update_buttons(self) -> None:
        active = self.run is not None and self.run.get("status") in ACTIVE
        ours = self.run_handle(self.shown_run_id) is not None
        self.cancel_button.setEnabled(active and ours)
        self.cancel_button.setToolTip("Cancel the shown run (its running steps stop)" if ours or not active
                                      else "This run was started by another process (the agent); stop it there")
        self.run_button.setEnabled(self.pipeline is not None)
        resumable = self.run is not None and self.run.get("status") in RESUMABLE
        self.resume_button.setEnabled(resumable)
        self.resume_button.setToolTip(
            f"Resume run {self.run['id']}: its unfinished steps and what follows them run again; the others keep "
            "their outputs" if resumable and self.run else "Resume runs a failed, blocked, cancelled or interrupted "
            "run's unfinished steps; select one in Runs")
        self.remove_button.setEnabled(self.pipeline is not None and not active)
        self.remove_button.setToolTip("Stop listing this pipeline (its file stays where it is; its run history is "
                                      "deleted)" if not active else "Wait for its run to end, or cancel it, first")

    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        if handle is None or handle.spec.kind != data.RUN_KIND or self.client is None:
            return
        run_id = (handle.spec.params or {}).get("run_id")
        if run_id is None:
            return
        if run_id == self.shown_run_id:
            self.load_run(run_id)
        self.client.read(f"pipelines.ended.{run_id}", lambda store: data.get_run(store, run_id), self._run_ended,
                         lambda _exc: None)

    def _run_ended(self, run: dict[str, Any]) -> None:
        status = run.get("status")
        if status not in ALERT_ON:
            return
        failed = next((s for s in run.get("steps") or [] if s.get("status") in ALERT_ON), None)
        where = f"step {failed['name']} {failed.get('status')}" if failed else status
        why = (failed or {}).get("error") or run.get("error") or ""
        first = str(why).splitlines()[0] if why else ""
        self.notify(f"Pipeline {run.get('pipeline') or ''} {status}".replace("  ", " "),
                    f"Run {run['id']}: {where}" + (f": {first}" if first else ""))

    def notify(self, title: str, message: str) -> None:
        self.notifications.append((title, message))
        self.tray = desktop_notify(self, self.tray, title, message, self.client)
        self.notified.emit(title, message)

    # ------------------------------------------------------------------ life
    def refresh_icons(self) -> None:
        super().refresh_icons()
        self.pipelines_model.layoutChanged.emit()
        self.runs_model.layoutChanged.emit()
        self.graph.restyle()

    def shutdown(self) -> None:
        self.trigger_timer.stop()
        self.poll_timer.stop()
        self.graph.stop()
        if self.tray is not None:
            self.tray.hide()
