"""The Experiments panel's actions on runs: the context menu, training, reproducing, comparing,
registering (through the window's navigate signal), the trash and the CSV export.

A mixin of :class:`modelyard.ui.experiments.panel.ExperimentsPanel`; store reads and writes run
off the main thread through the panel's client.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMenu

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.registry.versions import MODEL_PATH
from modelyard.ui.common import theme
from modelyard.ui.common.background import BackgroundReader
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.widgets import show_error

GLYPH_WIDTH = 22  # the ▾/▸ at the start of a search's name cell: a click there shows or hides its trials


class RunActions:
    """What the user does with runs (a mixin: ``self`` is the panel)."""

    def _context_menu(self, pos: Any) -> None:
        ids = self.selected_run_ids()
        if not ids:
            return
        where = self.runs_view.viewport().mapToGlobal(pos)
        if len(ids) == 1 and (self.run is None or self.run.id != ids[0]) and self.client is not None:
            from modelyard.core.experiments.tracking import get_run

            self.client.read("experiments.menu", lambda store: get_run(ids[0], store=store),
                             lambda run: self.context_menu(ids, run).exec(where), lambda _exc: None)
            return
        self.context_menu(ids).exec(where)

    def context_menu(self, ids: list[str], run: Any = None) -> QMenu:
        """The runs' actions: reproduce (one run), compare (two or more), move to the trash.
        ``run``: the record of the one run (default: the run in the detail if it is that one, else
        read here — the right-click reads it off the main thread first and passes it)."""
        menu = QMenu(self)
        menu.setObjectName("runsContextMenu")
        if len(ids) == 1:
            reproduce = menu.addAction(theme.icon("refresh"), "Reproduce")
            reproduce.setObjectName("reproduceAction")
            if run is None and self.run is not None and self.run.id == ids[0]:
                run = self.run
            if run is None and self.store is not None:  # a caller that did not read it (the right-click does)
                from modelyard.core.experiments.tracking import get_run

                run = get_run(ids[0], store=self.store)
            ok, why = self.can_reproduce(run)
            reproduce.setEnabled(ok)
            reproduce.setToolTip(why)
            reproduce.triggered.connect(lambda: self.reproduce_run(ids[0]))
            register = menu.addAction(theme.icon("registry"), "Register model…")
            register.setObjectName("registerAction")
            has_model = run is not None and any(a.path == MODEL_PATH for a in run.artifacts)
            register.setEnabled(has_model)
            register.setToolTip("Register this run's model as a new version in the Registry" if has_model
                                else "This run logged no model (run.log_model), so there is nothing to register.")
            register.triggered.connect(lambda: self.client.navigate.emit("registry", ("register_run", ids[0])))
            row = self.runs_model.row_of(ids[0])
            if row >= 0 and self.runs_model.trials(row):
                best = self.runs_model.best_child(row)
                register_best = menu.addAction(theme.icon("registry"), "Register best trial…")
                register_best.setObjectName("registerBestAction")
                register_best.setEnabled(best is not None)
                register_best.setToolTip("Register the model of the trial the search chose (★)" if best
                                         else "The search recorded no best trial.")
                register_best.triggered.connect(lambda: self.register_best(ids[0]))
                shown = self.runs_model.run_id(row) not in self.runs_model.collapsed
                toggle = menu.addAction("Hide the trials" if shown else "Show the trials")
                toggle.setObjectName("toggleTrialsAction")
                toggle.triggered.connect(lambda: self.set_trials_shown(ids[0], not shown))
        if len(ids) >= 2:
            compare = menu.addAction(f"Compare {len(ids)} runs")
            compare.setObjectName("compareAction")
            compare.triggered.connect(lambda: self.compare_runs(ids))
        menu.addSeparator()
        delete = menu.addAction(theme.icon("trash"), f"Move {plural(len(ids), 'run')} to the trash")
        delete.triggered.connect(lambda: self.delete_runs(ids))
        menu.setToolTipsVisible(True)
        return menu

    def _visible_selected_ids(self) -> list[str]:
        """The selected runs the table shows (not a collapsed search's trials), in row order."""
        if not hasattr(self, "runs_view") or self.runs_view.selectionModel() is None:
            return []
        rows = sorted({i.row() for i in self.runs_view.selectionModel().selectedRows()})
        return [self.runs_model.run_id(r) for r in rows if not self.runs_view.isRowHidden(r)]

    def _selection_changed(self) -> None:
        n = len(self._visible_selected_ids())
        self.compare_button.setEnabled(n >= 2)
        self.compare_button.setText(f"Compare {n}" if n >= 2 else "Compare")
        self._update_run_buttons()

    def _update_run_buttons(self) -> None:
        """"Register model…" when one finished run with a model is selected; "Register best" on a search."""
        ids = self._visible_selected_ids()
        run = self.run if len(ids) == 1 and self.run is not None and self.run.id == ids[0] else None
        has_model = run is not None and run.status == "succeeded" and any(a.path == MODEL_PATH for a in run.artifacts)
        row = self.runs_model.row_of(ids[0]) if len(ids) == 1 else -1
        best = self.runs_model.best_child(row) if row >= 0 and self.runs_model.trials(row) else None
        self.actions_bar.set_button_hidden(self.register_button, not has_model or best is not None)
        self.actions_bar.set_button_hidden(self.register_best_button, best is None)

    def register_selected(self) -> None:
        """Register the selected run's model (the Registry asks for the name)."""
        ids = self._visible_selected_ids()
        if len(ids) == 1 and self.client is not None:
            self.client.navigate.emit("registry", ("register_run", ids[0]))

    def register_best(self, run_id: str | None = None) -> None:
        """Register the model of the best trial of the search ``run_id`` (default: the selected one)."""
        ids = [run_id] if run_id else self._visible_selected_ids()
        row = self.runs_model.row_of(ids[0]) if len(ids) == 1 else -1
        best = self.runs_model.best_child(row) if row >= 0 else None
        if best is not None and self.client is not None:
            self.client.navigate.emit("registry", ("register_run", best))

    def train_on(self, dataset_version_id: int) -> None:
        """Open the Train dialog on that dataset version (the Datasets panel's next step)."""
        self.open_train_dialog(dataset_ref=int(dataset_version_id))

    # ------------------------------------------------------------------ searches (nested trials)
    def _hide_collapsed(self) -> None:
        hide = set(self.runs_model.hidden_rows())
        for row in getattr(self, "_hidden", set()) - hide:
            if row < self.runs_model.rowCount():
                self.runs_view.setRowHidden(row, False)
        for row in hide:
            self.runs_view.setRowHidden(row, True)
        self._hidden = hide

    def set_trials_shown(self, run_id: str, shown: bool) -> None:
        """Show or hide the trials of the search ``run_id`` (its ▾/▸ arrow)."""
        if shown:
            self.runs_model.collapsed.discard(run_id)
        else:
            self.runs_model.collapsed.add(run_id)
        row = self.runs_model.row_of(run_id)
        if row >= 0:
            name = self.runs_model.columns.index("name")
            self.runs_model.dataChanged.emit(self.runs_model.index(row, name), self.runs_model.index(row, name))
        self._hide_collapsed()
        self._selection_changed()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if (event.type() == QEvent.Type.MouseButtonPress and hasattr(self, "runs_view")
                and watched is self.runs_view.viewport() and event.button() == Qt.MouseButton.LeftButton):
            index = self.runs_view.indexAt(event.position().toPoint())
            if (index.isValid() and self.runs_model.columns[index.column()] == "name"
                    and self.runs_model.trials(index.row())
                    and event.position().x() - self.runs_view.visualRect(index).left() < GLYPH_WIDTH):
                run_id = self.runs_model.run_id(index.row())
                self.set_trials_shown(run_id, run_id in self.runs_model.collapsed)
                return True
        return super().eventFilter(watched, event)

    def _tick_running(self) -> None:
        """Repaint the durations of running runs (they count up to now)."""
        if "duration" not in self.runs_model.columns or not self.runs_model.rowCount():
            return
        col = self.runs_model.columns.index("duration")
        first = self.runs_view.rowAt(0)
        last = self.runs_view.rowAt(self.runs_view.viewport().height() - 1)
        first = max(first, 0)
        last = self.runs_model.rowCount() - 1 if last < 0 else last
        self.runs_model.dataChanged.emit(self.runs_model.index(first, col), self.runs_model.index(last, col))

    # ------------------------------------------------------------------ training, reproducing, comparing
    def open_train_dialog(self, dataset_ref: str | int | None = None) -> None:
        """Open the Train dialog (window-modal, not blocking) once what it offers is read off the
        main thread; its Train button starts the job."""
        if self.store is None or self.client is None:
            return
        from modelyard.ui.experiments.train_dialog import TrainDialog

        experiment = self._selected_experiment()
        if dataset_ref is None and self.client is not None:
            dataset_ref = self.client.selected.get("dataset_version")  # the version the user last looked at

        def read(store: Any) -> dict[str, Any] | None:
            from modelyard.core.datasets import catalog

            names = {d.name for d in catalog.list_datasets(store)}
            if not names:
                return None
            ref = dataset_ref if dataset_ref is not None else (experiment if experiment in names else None)
            return {"ref": ref, "choices": TrainDialog.read_choices(store, ref)}

        self.client.read("experiments.train_dialog", read, self._open_train_dialog,
                         lambda exc: show_error(self, "Cannot read the datasets", exc))

    def _open_train_dialog(self, answer: dict[str, Any] | None) -> Any:
        from modelyard.ui.experiments.train_dialog import TrainDialog

        if answer is None:
            show_error(self, "Nothing to train on", ModelyardError(
                "There are no datasets in this store yet.",
                hint="Import a file (File › Import Dataset) or a sample in the Datasets panel, then train on it."))
            return None
        if self.form_reader is None:
            self.form_reader = BackgroundReader(self)  # outlives the dialogs: closing one never waits
        dialog = TrainDialog(self.store, self, dataset_ref=answer["ref"], reader=self.form_reader,
                             choices=answer["choices"], client=self.client)
        dialog.accepted.connect(self._train_accepted)
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.train_dialog = dialog
        dialog.open()
        return dialog

    def _train_accepted(self) -> None:
        from modelyard.core.experiments.training.spec import train_spec_job

        dialog = self.train_dialog
        if dialog is None:
            return
        try:
            spec, cluster = dialog.spec(), dialog.cluster()
        except ModelyardError as exc:
            show_error(self, "Cannot train", exc)
            return
        handle = self.start_job(train_spec_job(spec, cluster=cluster))  # where its fits run: the dialog's choice
        # its run is recorded as the job starts: show the row then (running, its duration counting)
        # rather than at the next poll of the live refresh
        handle.logged.connect(lambda line: self._live_refresh(force=True) if line.startswith("Run ") else None)

    @staticmethod
    def can_reproduce(run: Any) -> tuple[bool, str]:
        """Whether a run can be retrained from its record, and why not."""
        if run is None:
            return False, "Select a run."
        if run.status == "running":
            return False, "The run is still running; reproduce it once it has finished."
        if not run.spec or "model" not in run.spec:
            if run.parent_id and "search_trial" in run.tags:
                return False, "A search trial is reproduced through its search: select the search's run."
            return False, "This run was not trained by Modelyard (perhaps logged from a script): there is no spec to retrain."
        return True, "Retrain this run from its recorded spec and data, and compare the metrics"

    def reproduce_run(self, run_id: str | None = None) -> JobHandle | None:
        from modelyard.core.experiments.training.reproduce import reproduce_spec

        run_id = run_id or (self.run.id if self.run is not None else None)
        if run_id is None or self.store is None:
            return None
        handle = self.start_job(reproduce_spec(run_id, source="gui"))
        self.reproductions[handle.job_id] = run_id
        return handle

    def compare_runs(self, run_ids: list[str] | None = None) -> None:
        """Open the Compare dialog once the runs are read off the main thread."""
        from modelyard.core.experiments.tracking import get_run

        ids = run_ids or self._visible_selected_ids()
        if len(ids) < 2 or self.store is None or self.client is None:
            return
        self.client.read("experiments.compare", lambda store: [get_run(r, store=store) for r in ids],
                         lambda runs: self._open_compare(ids, runs),
                         lambda exc: show_error(self, "Cannot compare", exc))

    def _open_compare(self, ids: list[str], runs: list[Any]) -> Any:
        from modelyard.ui.experiments.compare import CompareDialog

        try:
            dialog = CompareDialog(self.store, ids, self, runs=runs, client=self.client)
        except ModelyardError as exc:
            show_error(self, "Cannot compare", exc)
            return None
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.compare_dialog = dialog
        dialog.show()
        return dialog

    def show_reproduction(self, result: dict[str, Any]) -> Any:
        from modelyard.ui.experiments.evaluation import ReproductionDialog

        dialog = ReproductionDialog(result, self)
        dialog.show_run_requested.connect(self.select_run)
        dialog.finished.connect(lambda _r, d=dialog: d.deleteLater())
        self.reproduction_dialog = dialog
        dialog.show()
        return dialog

    def select_run(self, run_id: str) -> None:
        """Select ``run_id`` in the table (once it is loaded)."""
        row = self.runs_model.row_of(run_id)
        if row >= 0:
            self.runs_view.selectRow(row)
        else:
            self._select_when_shown = run_id

    def delete_runs(self, run_ids: list[str]) -> None:
        """Move runs to the trash (written off the main thread; the table re-reads on the change)."""
        from modelyard.core.experiments.tracking import delete_run

        def delete(store: Any) -> None:
            for run_id in run_ids:
                delete_run(run_id, store=store)

        self.client.write(delete, None, lambda exc: show_error(self, "Cannot move the runs to the trash", exc),
                          changes="runs")

    def export_csv(self, path: str | None = None) -> str | None:
        """Write the shown (filtered, sorted) runs to ``path`` as CSV, off the main thread."""
        if self.view_table is None or self.client is None:
            return None
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export runs", "runs.csv", "CSV files (*.csv)")
            if not path:
                return None
        frame, target = self.view_table.frame, path

        def failed(exc: Exception) -> None:
            show_error(self, "Cannot export", exc if isinstance(exc, ModelyardError)
                       else ModelyardError(f"Cannot write {target}: {exc}."))

        def write(_store: Any) -> str:
            from modelyard.core.common.outputs import write_replacing

            return str(write_replacing(target, lambda tmp: frame.to_csv(tmp, index=False), what="the runs"))

        client = self.client
        self.client.read(f"experiments.export.{target}", write,
                         lambda written: client.saved.emit(f"{plural(len(frame), 'run')} as CSV", written), failed)
        return path
