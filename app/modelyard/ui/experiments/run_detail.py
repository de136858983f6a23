"""The Experiments panel's run detail: parameters, metrics and tags, the metric chart, the
evaluation and reproducibility tabs and the artifacts of the selected run.

A mixin of :class:`modelyard.ui.experiments.panel.ExperimentsPanel`: the run and its metric
history are read off the main thread through the panel's client.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.experiments.tracking.edits import run_note
from modelyard.ui.common import theme
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import push_button, rows_view, show_error
from modelyard.ui.experiments.artifacts import ArtifactsPane
from modelyard.ui.experiments.curves import CurveControls
from modelyard.ui.experiments.run_notes import (
    NoteBox,
    TagsDialog,
    visible_tags,
    write_edit,
)
from modelyard.ui.experiments.runs_table import RUN_ID_ROLE, fmt_metric

TAB_OVERVIEW, TAB_CHARTS, TAB_EVALUATION, TAB_REPRODUCIBILITY, TAB_ARTIFACTS = range(5)


class _KeyValueModel(RowsTableModel[tuple[str, str]]):
    headers = ("Key", "Value")

    def cell(self, kv: tuple[str, str], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):  # the whole text of an elided cell
            return kv[column]
        return None


def metric_choices(run: Any) -> tuple[list[str], list[str]]:
    """A run's metric keys: those logged at more than one step (curves), then those logged once."""
    steps = getattr(run, "metric_steps", {}) or {}
    series = sorted(k for k in run.metrics if (steps.get(k) or 0) > 0)
    return series, sorted(k for k in run.metrics if k not in series)


class RunDetail:
    """The detail half of the Experiments panel (a mixin: ``self`` is the panel)."""

    # ------------------------------------------------------------------ building
    def _build_detail(self) -> QWidget:
        self.detail_title = QLabel("Select a run to see its parameters, metrics and curves.", self)
        self.detail_title.setObjectName("runDetailTitle")
        self.detail_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_title.setMinimumWidth(1)  # a narrow window cuts it rather than widening the panel
        self.detail_title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.reproduce_button = push_button(self, "Reproduce", lambda: self.reproduce_run(), name="reproduceButton",
                                            icon="refresh", enabled=False,
                                            tip="Retrain this run from its recorded spec and data, and compare the "
                                                "metrics")
        self.detail_tabs = QTabWidget(self)
        self.params_model = _KeyValueModel(self)
        self.metrics_model = _KeyValueModel(self)
        self.tags_model = _KeyValueModel(self)
        overview = QWidget(self)
        ol = QHBoxLayout(overview)
        ol.setContentsMargins(0, 0, 0, 0)
        self.edit_tags_button = push_button(self, "Edit tags…", lambda: self.edit_tags(), name="editTagsButton",
                                            enabled=False, tip="Add, change or remove this run's tags")
        for title, model in (("Parameters", self.params_model), ("Metrics", self.metrics_model), ("Tags", self.tags_model)):
            box = QVBoxLayout()
            label = QLabel(title, self)
            theme.make_heading(label, 1.0)
            view = rows_view(self, f"{title.lower()}Table", model)
            view.verticalHeader().setDefaultSectionSize(22)
            view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            head = QHBoxLayout()
            head.addWidget(label, 1)
            if title == "Tags":
                head.addWidget(self.edit_tags_button)
            box.addLayout(head)
            box.addWidget(view, 1)
            if title == "Tags":  # the note under the tags (its placeholder says what it is)
                self.note_box = NoteBox(self)
                self.note_box.setEnabled(False)
                self.note_box.save_requested.connect(self.save_note)
                box.addWidget(self.note_box)
            ol.addLayout(box, 1)
        self.detail_tabs.addTab(overview, "Overview")
        self.chart_holder = QWidget(self)
        cl = QVBoxLayout(self.chart_holder)
        cl.setContentsMargins(0, 0, 0, 0)
        self.chart_controls = CurveControls(self, name_prefix="chart",
                                            smoothing_tip="Exponential moving average (0: the raw values; "
                                                          "the raw curve stays faint)")
        self.metric_combo = self.chart_controls.metric
        self.metric_combo.setObjectName("metricCombo")
        self.chart_x = self.chart_controls.x_axis
        self.chart_smoothing = self.chart_controls.smoothing
        self.chart_controls.changed.connect(self._draw_chart)
        cl.addWidget(self.chart_controls)
        self.detail_tabs.addTab(self.chart_holder, "Charts")
        self.evaluation_holder = QWidget(self)
        QVBoxLayout(self.evaluation_holder).setContentsMargins(0, 0, 0, 0)
        self.detail_tabs.addTab(self.evaluation_holder, "Evaluation")
        self.reproducibility_holder = QWidget(self)
        QVBoxLayout(self.reproducibility_holder).setContentsMargins(0, 0, 0, 0)
        self.detail_tabs.addTab(self.reproducibility_holder, "Reproducibility")
        self.artifacts_pane = ArtifactsPane(lambda: self.client, self)
        self.artifacts_model = self.artifacts_pane.model
        self.artifacts_view = self.artifacts_pane.view
        self.artifact_viewer = self.artifacts_pane.viewer
        self.detail_tabs.addTab(self.artifacts_pane, "Artifacts")
        self.detail_tabs.currentChanged.connect(lambda _i: self._show_detail_tab())
        detail = QWidget(self)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, theme.SPACE_S, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.detail_title, 1)
        head.addWidget(self.reproduce_button)
        dl.addLayout(head)
        dl.addWidget(self.detail_tabs, 1)
        return detail

    # ------------------------------------------------------------------ detail
    def _current_run_id(self) -> str | None:
        if not hasattr(self, "runs_view"):
            return None
        idx = self.runs_view.currentIndex()
        return idx.data(RUN_ID_ROLE) if idx.isValid() else None

    def selected_run_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.runs_view.selectionModel().selectedRows()})
        return [self.runs_model.run_id(r) for r in rows]

    def _run_selected(self, index: QModelIndex) -> None:
        if not index.isValid() or self.store is None:
            return
        if self._reselecting and self.run is not None and self.run.id == index.data(RUN_ID_ROLE) \
                and self.run.status != "running" and self.run.status == str(self.runs_model.table.cell(
                    "status", index.row())):
            return  # the same finished run after a live refresh: its detail (and chart) still hold
        if self._detail_later:
            run_id = index.data(RUN_ID_ROLE)
            QTimer.singleShot(0, self, lambda: self._detail_of(run_id))
            return
        self._read_run(index.data(RUN_ID_ROLE))

    def _read_run(self, run_id: str) -> None:
        """Read ``run_id``'s record off the main thread, then show it (if it is still the current run)."""
        from modelyard.core.experiments.tracking import get_run

        self.client.read("experiments.run", lambda store: get_run(run_id, store=store),
                         lambda run: self._run_loaded(run) if self._current_run_id() == run.id else None,
                         lambda _exc: None)  # gone meanwhile (trashed): the table drops it on its next read

    def _run_loaded(self, run: Any) -> None:
        same = self.run is not None and self.run.id == run.id
        self.run = run
        colour = theme.status_colour(run.status).name()
        self.detail_title.setText(f"<b>{html.escape(run.name or run.id[:8])}</b> · {html.escape(run.experiment)} · "
                                  f"<span style='color:{colour}'>{run.status}</span> · {run.id[:8]}")
        self.detail_title.setToolTip(f"{run.name or ''}\nexperiment {run.experiment} · {run.status}\nrun id {run.id}")
        ok, why = self.can_reproduce(run)
        self.reproduce_button.setEnabled(ok)
        self.reproduce_button.setToolTip(why)
        self.artifacts_pane.set_artifacts(list(run.artifacts))
        self.params_model.set_rows(sorted((k, str(v)) for k, v in run.params.items()))
        self.metrics_model.set_rows(sorted((k, fmt_metric(v)) for k, v in run.metrics.items()))
        self.tags_model.set_rows(sorted((k, str(v)) for k, v in visible_tags(run.tags).items()))
        self.edit_tags_button.setEnabled(True)
        self.note_box.setEnabled(True)
        if same:
            self.note_box.set_note(run_note(run))
        else:
            self.note_box.reset(run_note(run))
        current = self.metric_combo.currentText()
        series, single = metric_choices(run)
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(series)
        if series and single:
            self.metric_combo.insertSeparator(len(series))
        self.metric_combo.addItems(single)
        for i in range(self.metric_combo.count()):
            key = self.metric_combo.itemText(i)
            if key:
                self.metric_combo.setItemData(i, "a history of values, by step" if key in series
                                              else "one value", Qt.ItemDataRole.ToolTipRole)
        # the same metric as the last run's, else the first with a history (a curve), else the first value
        if current in series or (current in single and not series):
            self.metric_combo.setCurrentText(current)
        else:
            self.metric_combo.setCurrentIndex(0 if self.metric_combo.count() else -1)
        self.metric_combo.blockSignals(False)
        self._show_detail_tab()

    def _detail_of(self, run_id: str) -> None:
        row = self.runs_model.row_of(run_id)
        if row >= 0 and self._current_run_id() == run_id:
            self._run_selected(self.runs_model.index(row, 0))

    def _show_detail_tab(self) -> None:
        """Draw the current detail tab for the current run (the heavier tabs only when shown)."""
        if not hasattr(self, "detail_tabs"):
            return
        tab = self.detail_tabs.currentIndex()
        if tab == TAB_CHARTS:
            self._draw_chart()
        elif tab == TAB_EVALUATION and self.run is not None and self.store is not None:
            if self.evaluation is None:
                from modelyard.ui.experiments.evaluation import EvaluationView

                self.evaluation = EvaluationView(self.evaluation_holder)
                self.evaluation_holder.layout().addWidget(self.evaluation)
                self.evaluation.show()
            self._read_records(self.evaluation)
        elif tab == TAB_REPRODUCIBILITY and self.run is not None and self.store is not None:
            if self.reproducibility is None:
                from modelyard.ui.experiments.evaluation import ReproducibilityView

                self.reproducibility = ReproducibilityView(self.reproducibility_holder)
                self.reproducibility_holder.layout().addWidget(self.reproducibility)
                self.reproducibility.show()
            self._read_records(self.reproducibility)

    def _read_records(self, view: Any) -> None:
        """Read the run's records for ``view`` (Evaluation, Reproducibility) off the main thread, then draw."""
        run = self.run
        self.client.read(f"experiments.records.{type(view).__name__}", lambda store: view.read(store, run),
                         lambda records: view.show_records(run, records) if self.run is not None
                         and self.run.id == run.id else None, lambda _exc: None)

    def _draw_chart(self) -> None:
        if self.client is None or not hasattr(self, "detail_tabs") or self.detail_tabs.currentIndex() != TAB_CHARTS:
            return
        run_id, key = self._current_run_id(), self.metric_combo.currentText()
        if not run_id or not key:
            return
        from modelyard.core.experiments.tracking import metric_history

        self.client.read("experiments.chart", lambda store: metric_history(run_id, key, store=store, as_numpy=True),
                         lambda history: self._chart_loaded(run_id, key, *history), lambda _exc: None)

    def _chart_loaded(self, run_id: str, key: str, steps: Any, times: Any, values: Any) -> None:
        if (run_id, key) != (self._current_run_id(), self.metric_combo.currentText()):
            return  # another run or metric was chosen meanwhile
        if self.plot is None:
            import pyqtgraph as pg

            self.plot = pg.PlotWidget(self.chart_holder)
            self.plot.setObjectName("metricPlot")
            self.plot.setBackground(self.palette().color(self.palette().ColorRole.Base))
            self.plot.showGrid(x=True, y=True, alpha=0.25)
            self.plot.setMenuEnabled(False)
            for side in ("left", "bottom"):
                self.plot.getAxis(side).enableAutoSIPrefix(False)  # 0.95, not "950 (x0.001)"
            self.chart_holder.layout().addWidget(self.plot, 1)
        self.plot.clear()
        import pyqtgraph as pg

        if len(values) == 1:
            self._draw_value(key, int(steps[0]), float(values[0]))
            return
        self.plot.getAxis("bottom").setTicks(None)
        by_time = self.chart_x.currentIndex() == 1
        xs = (times - times[0]) / 1000.0 if by_time and len(times) else steps
        colour = self.palette().color(self.palette().ColorRole.Highlight)
        weight = self.chart_smoothing.value()
        if weight > 0 and len(values) > 1:
            from modelyard.ui.experiments.compare import smooth

            faint = QColor(colour)
            faint.setAlpha(70)
            raw = self.plot.plot(xs, values, pen=pg.mkPen(faint, width=1))
            raw.setDownsampling(auto=True, method="peak")
            raw.setClipToView(True)
            values = smooth(values, weight)
        item = self.plot.plot(xs, values, pen=pg.mkPen(colour, width=2),
                              symbol="o" if len(values) < 60 else None, symbolSize=5)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        self.plot.setLabel("bottom", "time (s)" if by_time else "step")
        self.plot.setLabel("left", key)

    def _draw_value(self, key: str, step: int, value: float) -> None:
        """A metric logged once: a bar with its value written on it (a lone dot on an empty axis
        read as a broken chart)."""
        import pyqtgraph as pg

        colour = self.palette().color(self.palette().ColorRole.Highlight)
        fill = QColor(colour)
        fill.setAlpha(150)
        self.plot.addItem(pg.BarGraphItem(x=[0], height=[value], width=0.5, brush=fill, pen=pg.mkPen(colour)))
        label = pg.TextItem(fmt_metric(value), color=self.palette().color(self.palette().ColorRole.Text),
                            anchor=(0.5, 1.2 if value >= 0 else -0.2))
        label.setPos(0, value)
        self.plot.addItem(label)
        self.plot.getAxis("bottom").setTicks([[(0, f"{key} (logged once, step {step})")], []])
        self.plot.setLabel("bottom", "")
        self.plot.setLabel("left", key)
        low, high = min(0.0, value), max(0.0, value)
        pad = (high - low) * 0.2 or 1.0
        self.plot.setRange(xRange=(-1, 1), yRange=(low - (pad if low < 0 else 0), high + pad), padding=0)

    # ------------------------------------------------------------------ tags and note
    def edit_tags(self) -> Any:
        """Open the Edit tags dialog for the shown run (window-modal); Save writes the changes."""
        run = self.run
        if run is None or self.client is None:
            return None
        dialog = TagsDialog(run.name or "the run", visible_tags(run.tags), self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda: self._write_run_edit(run.id, tags=dialog.changes()))
        self.tags_dialog = dialog
        dialog.open()
        return dialog

    def save_note(self, text: str) -> None:
        if self.run is not None and self.client is not None:
            self.note_box.status.setText("Saving…")
            self._write_run_edit(self.run.id, note=text)

    def _write_run_edit(self, run_id: str, **edit: Any) -> None:
        if not any(edit.values()) and edit.get("note") is None:
            return  # nothing changed

        def done(_changes: Any) -> None:
            if "note" in edit:
                self.note_box.status.setText("Note saved")
            if self._current_run_id() == run_id:
                self._read_run(run_id)  # show what was written (a live refresh keeps a finished run's detail)

        def failed(exc: Exception) -> None:
            self.note_box.status.setText("")
            show_error(self, "Cannot change the run", exc)

        write_edit(self.client, run_id, on_done=done, on_error=failed, **edit)
