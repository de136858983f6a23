"""The Monitoring panel: drift checks per model, their history, one check in detail, retraining.

Left, the registered models with their status badge (the latest check's verdict) and watch
folder. Right, for the selected model: its actions (an :class:`ActionBar`), its checks (newest
first, with each batch's file and date); for the selected check a one-line summary of what moved
and why the verdict, the features sorted by drift score and, for the selected feature, the
reference and batch distributions overlaid (pyqtgraph); a Timeline tab plots every feature's drift
score against the batch dates and the model's metric; a Report tab shows the check's whole report;
a Live tab (:mod:`.live_view`) shows the model's prediction log while it is served.
A model without checks says how to check a batch.

Next steps from other rooms: :meth:`MonitoringPanel.monitor_model` (show a model) and
:meth:`MonitoringPanel.retrain_check` (select a check and start Retrain…).

A batch file dropped on a model (or on the panel, for the selected model) or chosen with
**Check a batch…** runs :func:`modelyard.core.monitoring.drift.check_drift_job` as a job. Watch folders are
scanned every few seconds while the app runs (:mod:`modelyard.core.monitoring.watch`, on a background
thread); each new file starts a check, and a check that finds drift raises a desktop notification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import rights, theme
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
from modelyard.ui.monitoring import plots
from modelyard.ui.monitoring.live_view import LiveView
from modelyard.ui.monitoring.report import ReportView
from modelyard.ui.monitoring.sources import BatchSources
from modelyard.ui.monitoring.tables import (
    ChecksModel,
    EffectDelegate,
    FeaturesModel,
    ModelsModel,
    when,
)
from modelyard.ui.monitoring.texts import findings_text, retrain_state, summary_html

CHECK_KIND = "drift.check"
RETRAIN_KIND = "monitor.retrain"
WATCH_INTERVAL_MS = 3000
REFRESH_ON = frozenset({"models", "checks", "store"})  # change topics this panel shows


def _drift():  # type: ignore[no-untyped-def]
    from modelyard.core.monitoring import drift

    return drift


def _read_check(store: Any, check_id: int) -> tuple[dict[str, Any], str | None]:
    """(check ``check_id`` in full, why it cannot be retrained from or None)."""
    from modelyard.core.monitoring import retraining

    return _drift().get_check(store, check_id), retraining.retrain_blocker(store, check_id)


def _read_checks(store: Any, name: str, keep: int | None, ref: str | None = None
                 ) -> tuple[list[dict[str, Any]], tuple[dict[str, Any], str | None] | None]:
    """(the model's checks, newest first; the one to show: ``keep`` if still there, else the
    newest check of version ``ref`` when given, else the newest; with its retrain blocker)."""
    checks = _drift().list_checks(store, name, limit=500)
    ids = [c["id"] for c in checks]
    of_ref = [c["id"] for c in checks if ref is not None and c.get("ref") == ref]
    shown = keep if keep in ids else (of_ref[0] if of_ref else ids[0] if ids else None)
    return checks, (_read_check(store, shown) if shown is not None else None)


class MonitoringPanel(BatchSources, Panel):
    title = "Monitoring"
    icon_name = "monitoring"
    empty_headline = "Nothing to monitor yet"
    empty_body = (
        "Register a model in the Registry, then drop a new batch of data on it here to see whether the world "
        "still looks like its training data: per-feature drift, prediction drift, performance, and a "
        "domain classifier."
    )

    check_shown = Signal(int)
    notified = Signal(str, str)  # title, message (a desktop notification was raised)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.model_name: str | None = None
        self.check: dict[str, Any] | None = None
        self.feature: dict[str, Any] | None = None
        self.overlay_plot: Any = None
        self.timeline_plots: Any = None  # (scores, metric) plots, once drawn
        self._timeline_made: Any = None  # the same, from when they are made
        self.notifications: list[tuple[str, str]] = []
        self.tray: Any = None
        self._watch_jobs: dict[int, str] = {}  # job id -> file path, for the notification
        self._watching: set[str] = set()  # paths with a check job in flight
        self._show_check_id: int | None = None  # a check to show once the model's checks are read
        self._show_ref: str | None = None  # a version whose newest check to show (monitor_model)
        self._retrain_after: int | None = None  # a check to start Retrain… on once shown (retrain_check)
        self.retrain_blocker: str | None = None  # why the shown check cannot be retrained from
        self._selecting = False  # a row selected for the user: the loaded data is shown by the loader
        self._scanning = False  # a scan of the watch folders is in flight
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_INTERVAL_MS)
        self.watch_timer.timeout.connect(self.scan_watch_folders)

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.models_model = ModelsModel(self)
        self.models_view = self._table("monitorModelsTable", self.models_model)
        mh = self.models_view.horizontalHeader()
        mh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        mh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.models_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        mh.setMinimumSectionSize(mh.fontMetrics().horizontalAdvance("Model") + 24)  # its header stays readable
        self.models_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.models_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._model_selected(cur.row()))
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        hint = QLabel("Drop a batch file on a model to check it for drift.", self)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        ll.addWidget(self.models_view, 1)
        ll.addWidget(hint)

        self.model_title = ElidedLabel("", self)
        self.model_title.setObjectName("monitorTitle")
        theme.make_heading(self.model_title, 1.3)
        self.check_button = push_button(self, "Check a batch…", lambda: self.check_file(), name="checkButton",
                                        icon="drift",
                                        tip="Check a data file against the model's training data (or drop it on the "
                                            "model)")
        self.watch_button = push_button(self, "Watch folder…", lambda: self.choose_watch_folder(), name="watchButton",
                                        icon="folder-open", tip="Check every new file written into a folder")
        self.settings_button = push_button(self, "Settings…", lambda: self.edit_settings(), name="driftSettingsButton",
                                           icon="settings",
                                           tip="Thresholds, the dataset rule, critical and ignored features")
        self.report_button = push_button(self, "Export report…", lambda: self.export_report(), name="reportButton",
                                         tip="Write the selected check's report as one HTML file to send or print")
        self.retrain_button = push_button(self, "Retrain…", lambda: self.retrain(), name="retrainButton",
                                          icon="refresh")
        self.actions = ActionBar(self)
        # the next step after a drifted check, Retrain…, is the last to go into "More"
        for button, priority in ((self.check_button, 2), (self.watch_button, 0), (self.settings_button, 0),
                                 (self.report_button, 1), (self.retrain_button, 3)):
            self.actions.add(button, priority)
        head = QHBoxLayout()
        head.addWidget(self.model_title, 1)
        head.addWidget(self.actions, 0)
        self.model_facts = QLabel(self)
        self.model_facts.setObjectName("monitorFacts")
        self.model_facts.setWordWrap(True)
        self.model_facts.setTextFormat(Qt.TextFormat.RichText)

        self.checks_model = ChecksModel(self)
        self.checks_view = self._table("checksTable", self.checks_model)
        self.checks_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.checks_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.checks_view.verticalHeader().setDefaultSectionSize(22)
        self.checks_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._check_selected(cur.row()))

        self.findings = QLabel(self)
        self.findings.setObjectName("findings")
        self.findings.setWordWrap(True)
        self.findings.setTextFormat(Qt.TextFormat.RichText)
        self.findings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                              | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.findings.linkActivated.connect(lambda _link: self.tabs.setCurrentWidget(self.report_tab))
        self.features_model = FeaturesModel(self)
        self.features_view = self._table("featuresTable", self.features_model)
        self.features_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.features_view.verticalHeader().setDefaultSectionSize(22)
        fh = self.features_view.horizontalHeader()
        fh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        fh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        fh.setMinimumSectionSize(48)
        # the kind, the test, its statistic, p-value and threshold are in the feature's tooltip, above
        # its plot and in the report: the table keeps the names readable beside the overlay
        for col in (1, 2, 3, 4, 6):
            self.features_view.setColumnHidden(col, True)
        self.features_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.features_view.setItemDelegateForColumn(5, EffectDelegate(self.features_view))  # bar, threshold tick
        fh.setSectionResizeMode(5, QHeaderView.ResizeMode.Fixed)
        fh.resizeSection(5, fh.fontMetrics().horizontalAdvance("0.000") + 64)
        self.features_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._feature_selected(cur.row()))
        self.feature_title = QLabel(self)
        self.feature_title.setObjectName("featureTitle")
        self.feature_title.setWordWrap(True)
        self.feature_title.setTextFormat(Qt.TextFormat.RichText)
        self.overlay_legend = QLabel(plots.OVERLAY_LEGEND, self)
        self.overlay_legend.setObjectName("overlayLegend")
        self.overlay_legend.setWordWrap(True)
        self.plot_holder = QWidget(self)
        self.plot_layout = QVBoxLayout(self.plot_holder)
        self.plot_layout.setContentsMargins(0, 0, 0, 0)
        self.plot_layout.setSpacing(2)
        self.plot_layout.addWidget(self.feature_title)
        self.plot_layout.addWidget(self.overlay_legend)
        detail = QSplitter(Qt.Orientation.Horizontal, self)
        detail.addWidget(self.features_view)
        detail.addWidget(self.plot_holder)
        detail.setStretchFactor(0, 1)
        detail.setStretchFactor(1, 1)
        detail.setSizes([420, 480])
        check_box = QWidget(self)
        cl = QVBoxLayout(check_box)
        cl.setContentsMargins(0, theme.SPACE_S, 0, 0)
        cl.addWidget(self.findings)
        cl.addWidget(detail, 1)
        checks_split = QSplitter(Qt.Orientation.Vertical, self)
        checks_split.setObjectName("checksSplit")
        checks_split.addWidget(self.checks_view)
        checks_split.addWidget(check_box)
        checks_split.setChildrenCollapsible(False)
        checks_split.setStretchFactor(0, 2)
        checks_split.setStretchFactor(1, 3)
        checks_split.setSizes([160, 340])

        self.no_checks = QWidget(self)
        self.no_checks.setObjectName("noChecks")
        nl = QVBoxLayout(self.no_checks)
        self.no_checks_text = QLabel(self.no_checks)
        self.no_checks_text.setObjectName("noChecksText")
        self.no_checks_text.setWordWrap(True)
        self.no_checks_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_checks_button = QPushButton(theme.icon("drift"), "Check a batch…", self.no_checks)
        self.no_checks_button.setObjectName("noChecksButton")
        self.no_checks_button.clicked.connect(lambda: self.check_file())
        rights.guard("write", self.no_checks_button, self.check_button, self.watch_button, self.settings_button,
                     self.retrain_button)
        nl.addStretch(1)
        nl.addWidget(self.no_checks_text)
        nl.addWidget(self.no_checks_button, 0, Qt.AlignmentFlag.AlignHCenter)
        nl.addStretch(2)
        self.checks_stack = QStackedWidget(self)
        self.checks_stack.addWidget(checks_split)
        self.checks_stack.addWidget(self.no_checks)

        self.timeline_tab = QWidget(self)
        self.timeline_layout = QVBoxLayout(self.timeline_tab)
        self.timeline_layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        self.timeline_hint = QLabel("The drift score of each feature, and the model's metric, across checks.", self)
        self.timeline_hint.setWordWrap(True)
        self.timeline_legend = QLabel(self)
        self.timeline_legend.setObjectName("timelineLegend")
        self.timeline_legend.setWordWrap(True)
        self.timeline_layout.addWidget(self.timeline_hint)
        self.timeline_layout.addWidget(self.timeline_legend)
        self.report_tab = ReportView(self)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("monitorTabs")
        self.tabs.addTab(self.checks_stack, "Checks")
        self.tabs.addTab(self.timeline_tab, "Timeline")
        self.tabs.addTab(self.report_tab, "Report")
        self.live_tab = LiveView(self)
        self.tabs.addTab(self.live_tab, "Live")
        self.tabs.currentChanged.connect(lambda _i: self._tab_changed())

        return master_detail(self, left, [head, self.model_facts, self.tabs], 300)

    def _table(self, name: str, model: Any) -> QTableView:
        return rows_view(self, name, model)

    # ------------------------------------------------------------------ state
    def has_content(self) -> bool:
        return self.models_model.rowCount() > 0

    def set_store(self, store: Any, runner: Any, client: Any = None) -> None:
        super().set_store(store, runner, client)
        self.watch_timer.start()

    def on_changed(self, topics: frozenset[str]) -> None:
        if topics & REFRESH_ON:
            self.refresh()

    def refresh(self, select: str | None = None, check_id: int | None = None) -> None:
        """Re-read the models (and the selected model's checks) off the main thread. ``select``: the
        model to show; ``check_id``: the check to show once read."""
        if self.store is None or self.client is None:
            return
        from modelyard.core.monitoring.overview import models_overview

        current = select or self.model_name
        if check_id is not None:
            self._show_check_id = check_id
        self.client.read("monitoring.models", lambda store: [r.as_dict() for r in models_overview(store)],
                         lambda rows: self._models_loaded(rows, current), self._read_failed)

    def _read_failed(self, error: Exception) -> None:
        self.model_facts.setText(f"Could not read the store: {error}")

    def _models_loaded(self, rows: list[dict[str, Any]], current: str | None) -> None:
        self.models_model.update_rows(rows)  # by name: the selection stays where it was
        super().refresh()
        if not self.models_model.rowCount():
            self.model_name = None
            return
        row = max(self.models_model.row_of(current), 0)
        self._selecting = True
        try:
            self.models_view.selectRow(row)
        finally:
            self._selecting = False
        self._model_selected(row)

    def _model_selected(self, row: int) -> None:
        if self.store is None or self.client is None or not 0 <= row < self.models_model.rowCount():
            return
        if self._selecting:
            return  # _models_loaded shows the model itself, once
        info = self.models_model.rows[row]
        changed = info["name"] != self.model_name
        self.model_name = info["name"]
        self.model_title.setText(info["name"])
        fm = self.model_title.fontMetrics()  # the name keeps room; the actions overflow into "More" first
        self.model_title.setMinimumWidth(min(fm.horizontalAdvance(info["name"]) + 8, fm.horizontalAdvance("M") * 12))
        folder = info.get("watch_folder")
        self.model_facts.setText(
            f"Checks run against <b>{info['ref']}</b> · "
            + (f"watching <b>{folder}</b>" if folder else "no watch folder")
            + f" · {plural(int(info.get('n_checks') or 0), 'check')}"
            + (f", the last {when(info.get('last'), short=True)}" if info.get("last") else ""))
        keep = self._show_check_id
        if keep is None and self.check is not None and not changed and self._show_ref is None:
            keep = self.check["id"]
        name, ref = info["name"], self._show_ref
        self.client.read("monitoring.checks", lambda store: _read_checks(store, name, keep, ref),
                         lambda result: self._checks_loaded(name, *result), self._read_failed)
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()
        elif self.tabs.currentWidget() is self.live_tab:
            self.show_live()

    def _checks_loaded(self, name: str, checks: list[dict[str, Any]],
                       shown: tuple[dict[str, Any], str | None] | None) -> None:
        if name != self.model_name:
            return
        self._show_ref = None
        self.checks_model.update_rows(checks)  # by id: the selected check keeps its row
        self.checks_view.resizeColumnsToContents()  # rows changed in place: dates and file names read whole
        check = shown[0] if shown is not None else None
        if check is not None and check["id"] == self._show_check_id:
            self._show_check_id = None
        if check is None:
            self.check = None
            self.retrain_blocker = None
            self.features_model.set_rows([])
            self.findings.setText("")
            self.no_checks_text.setText(f"No checks of {name} yet. Drop a batch file here or Check a batch… to "
                                        "see whether new data still looks like the data it was trained on.")
            self.checks_stack.setCurrentWidget(self.no_checks)
            self.report_tab.show_text("No check to report on yet.")
            self._update_buttons()
            return
        self.checks_stack.setCurrentIndex(0)
        row = self.checks_model.row_of_key(check["id"])
        if self.checks_view.currentIndex().row() != row:
            self._selecting = True
            try:
                self.checks_view.selectRow(row)
            finally:
                self._selecting = False
        self._check_loaded(*shown)  # type: ignore[misc]

    def _update_buttons(self) -> None:
        has_check = self.check is not None
        self.report_button.setEnabled(has_check)
        can, why = retrain_state(self.check, self.retrain_blocker)
        self.retrain_button.setEnabled(can)
        self.retrain_button.setToolTip(why)
        self.retrain_button.setDefault(can and (self.check or {}).get("verdict") == "drift")

    def _check_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.checks_model.rowCount() or self._selecting:
            return
        self.show_check(self.checks_model.rows[row]["id"])

    def show_check(self, check_id: int) -> None:
        """Read check ``check_id`` (and whether it can be retrained from) off the main thread and show it."""
        assert self.client is not None
        self.client.read("monitoring.check", lambda store: _read_check(store, check_id),
                         lambda result: self._check_loaded(*result), self._read_failed)

    def _check_loaded(self, check: dict[str, Any], blocker: str | None = None) -> None:
        same = self.check is not None and self.check["id"] == check["id"]
        feature = self.feature["name"] if same and self.feature is not None else None
        self.check = check
        self.retrain_blocker = blocker
        self.findings.setText(summary_html(check))
        self.findings.setToolTip(findings_text(check))
        feats = [f for f in check.get("features") or []]
        target = check.get("target")
        if target:
            feats.append({**target, "name": f"{target['name']} (target)"})
        self.features_model.set_rows(feats)  # another check's features: a new list
        if feats:
            row = next((i for i, f in enumerate(feats) if f["name"] == feature), 0)
            self.features_view.selectRow(row)
            self._feature_selected(row)
        self._update_buttons()
        if self.tabs.currentWidget() is self.report_tab:
            self.show_report()
        self.check_shown.emit(check["id"])
        if self._retrain_after == check["id"]:
            self._retrain_after = None
            if self.retrain_button.isEnabled():
                QTimer.singleShot(0, lambda: self.retrain())
            else:
                show_error(self, "Cannot retrain", ModelyardError(self.retrain_button.toolTip()))

    def _feature_selected(self, row: int) -> None:
        if not 0 <= row < self.features_model.rowCount():
            return
        self.feature = self.features_model.rows[row]
        self.show_feature(self.feature)

    def show_feature(self, f: dict[str, Any]) -> None:
        if self.overlay_plot is None:
            self.overlay_plot = plots.overlay_plot(self.plot_holder)
            self.plot_layout.addWidget(self.overlay_plot, 1)
        import html

        self.feature_title.setText(f"<b>{html.escape(f['name'])}</b> · "
                                   f"{html.escape(f.get('reason') or f.get('status') or '')}")
        plots.draw_overlay(self.overlay_plot, f)

    # ------------------------------------------------------------------ timeline
    def _tab_changed(self) -> None:
        if self.tabs.currentWidget() is not self.live_tab:
            self.live_tab.stop()
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()
        elif self.tabs.currentWidget() is self.report_tab:
            self.show_report()
        elif self.tabs.currentWidget() is self.live_tab:
            self.show_live()

    def show_live(self) -> None:
        """Show the selected model's prediction log in the Live tab (read off the main thread)."""
        if self.client is not None and self.model_name is not None:
            self.live_tab.load(self.client, self.model_name)

    def show_report(self) -> None:
        """Show the selected check's whole report in the Report tab (built off the main thread)."""
        if self.client is None or self.check is None:
            return
        self.report_tab.load(self.client, self.check["id"], self._read_failed)

    def show_timeline(self) -> None:
        """Read the selected model's timeline off the main thread and draw it."""
        if self.store is None or self.client is None or self.model_name is None:
            return
        name = self.model_name
        self.client.read("monitoring.timeline", lambda store: _drift().timeline(store, name),
                         lambda data: self._timeline_loaded(name, data), self._read_failed)

    def _timeline_loaded(self, name: str, data: dict[str, Any]) -> None:
        if name != self.model_name:
            return
        if self._timeline_made is None:
            # each plot is made in a turn of its own and drawn in a later one: one long turn held the window
            scores = plots.timeline_plot(self.timeline_tab, self, "scores")
            self.timeline_hint.hide()
            self.timeline_layout.addWidget(scores, 3)
            QTimer.singleShot(4, self, lambda: self._make_metric_plot(name, data, scores))
            return
        self._draw_timeline(name, data)

    def _make_metric_plot(self, name: str, data: dict[str, Any], scores: Any) -> None:
        metric = plots.timeline_plot(self.timeline_tab, self, "metric", link_to=scores)
        self.metric_legend = QLabel(plots.legend_html(
            [("the model's metric on the batch (when it carries the target)", plots.BATCH_COLOUR)],
            f"<span style='color:{plots.REFERENCE_COLOUR}'>- - -</span>&nbsp;recorded on the test set"), self)
        self.metric_legend.setWordWrap(True)
        self.timeline_layout.addWidget(self.metric_legend)
        self.timeline_layout.addWidget(metric, 2)
        self._timeline_made = (scores, metric)
        QTimer.singleShot(4, self, lambda: self._draw_timeline(name, data))

    def _draw_timeline(self, name: str, data: dict[str, Any]) -> None:
        """Draw ``data`` on the timeline's plots; :attr:`timeline_plots` is set once they show it."""
        if name != self.model_name or self._timeline_made is None:
            return
        scores, metric = self._timeline_made
        # the metric plot paints a turn after the scores plot: both painted at once held the window
        # over 100 ms (their items' pictures), each alone about half
        metric.setUpdatesEnabled(False)
        self.timeline_series, legend = plots.draw_timeline(scores, metric, data)
        self.timeline_legend.setText(legend)
        self.timeline_checks = data.get("checks") or []
        QTimer.singleShot(30, self, lambda: self._show_metric_plot(metric))

    def _show_metric_plot(self, metric: Any) -> None:
        metric.setUpdatesEnabled(True)
        metric.update()
        self.timeline_plots = self._timeline_made

    # ------------------------------------------------------------------ next steps from other rooms
    def monitor_model(self, name: str, ref: str | None = None) -> None:
        """Show model ``name`` and its checks (the newest of version ``ref``, e.g. "churn@v2", when
        given); a model without checks says how to check a batch."""
        self._show_ref = ref
        self.tabs.setCurrentIndex(0)
        self.refresh(select=name)

    def retrain_check(self, check_id: int) -> None:
        """Show check ``check_id`` (its model first) and start Retrain… on it."""
        if self.client is None:
            return
        self._retrain_after = int(check_id)
        self.tabs.setCurrentIndex(0)
        self.client.read("monitoring.check_model", lambda store: _drift().get_check(store, int(check_id))["model"],
                         lambda name: self.refresh(select=name, check_id=int(check_id)),
                         lambda exc: show_error(self, "Cannot show the check", exc))

    # ------------------------------------------------------------------ actions
    def check_file(self, path: str | Path | None = None, model: str | None = None) -> None:
        """Check a batch file against ``model`` (default: the selected one) in a job (started once
        its spec is read off the main thread)."""
        if self.store is None or self.client is None:
            return
        name = model or self.model_name
        if name is None:
            show_error(self, "No model", ModelyardError("Register a model before checking batches against it.",
                                                        hint="Register a run in the Registry panel."))
            return
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(
                self, f"Check a batch against {name}", "",
                "Data files (*.csv *.tsv *.txt *.parquet *.pq *.xlsx *.json *.jsonl *.ndjson);;All files (*)")
            if not path:
                return

        def spec_of(store: Any) -> Any:
            from modelyard.core.monitoring import watch

            return watch.check_spec_for(store, name, path, admit=True, source="")  # a foreign file: refused now

        def start(spec: Any) -> None:
            self.model_name = name
            self.start_job(spec)

        self.client.read(f"monitoring.check_file.{path}", spec_of, start,
                         lambda exc: show_error(self, "Cannot check the batch", exc))

    def export_report(self, path: str | None = None) -> str | None:
        """Write the selected check's HTML report to ``path`` (off the main thread)."""
        if self.store is None or self.client is None or self.check is None:
            return None
        from modelyard.core.monitoring import reports

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            stem = Path(self.check.get("batch_file") or "batch").stem
            suggested = f"drift-{self.check.get('model') or 'model'}-{stem}.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the drift report", suggested, "HTML (*.html)")
            if not path:
                return None
        check_id, target = self.check["id"], path
        what = f"Drift report {self.check.get('ref') or ''} on {self.check.get('batch_file') or 'the batch'}"
        client = self.client
        self.client.read(f"monitoring.report.{target}",
                         lambda store: reports.export_check_html(store, check_id, target),
                         lambda written: client.saved.emit(what, str(written)),
                         lambda exc: show_error(self, "Cannot export the report", exc))
        return path

    def retrain(self, data: str | None = None) -> JobHandle | None:
        if self.store is None or self.check is None:
            return None
        from modelyard.core.monitoring import retraining

        if data is None:
            box = QMessageBox(QMessageBox.Icon.Question, "Retrain on the new data",
                              f"Retrain {self.check.get('ref')}'s recorded training spec on "
                              f"{self.check.get('batch_file') or 'the checked batch'}, evaluate it and the champion "
                              "on the same recent rows, and register it as <b>challenger</b>. Promotion stays your "
                              "decision.",
                              QMessageBox.StandardButton.Cancel, self)
            box.setObjectName("retrainBox")
            batch = box.addButton("Train on the batch", QMessageBox.ButtonRole.AcceptRole)
            batch.setObjectName("retrainBatch")
            both = box.addButton("Train on reference + batch", QMessageBox.ButtonRole.AcceptRole)
            both.setObjectName("retrainBoth")
            box.exec()
            clicked = box.clickedButton()
            if clicked not in (batch, both):
                return None
            data = "batch" if clicked is batch else "reference+batch"
        try:
            batch = self.check.get("batch_file") or self.check.get("batch_ref") or "the batch"
            spec = retraining.retrain_spec(  # plain data: no store
                self.check["id"], data=data, source="gui",
                title=f"Retrain {self.check.get('ref')} on {batch}" + (" and its reference" if data != "batch" else ""))
        except ModelyardError as exc:
            show_error(self, "Cannot retrain", exc)
            return None
        return self.start_job(spec)

    def edit_settings(self) -> None:
        """Read the model's drift settings, edit them in a dialog, and write them back (the reads and
        the write off the main thread)."""
        if self.store is None or self.client is None or self.model_name is None:
            return
        name = self.model_name
        features = [f["name"] for f in (self.check or {}).get("features") or []]
        self.client.read("monitoring.settings", lambda store: _drift().get_config(store, name),
                         lambda config: self._edit_settings(name, config, features),
                         lambda exc: show_error(self, "Cannot read the settings", exc))

    def _edit_settings(self, name: str, config: dict[str, Any], features: list[str]) -> None:
        from modelyard.ui.monitoring.dialogs import DriftSettingsDialog

        dialog = DriftSettingsDialog(name, config, features, self)
        if dialog.exec() != DriftSettingsDialog.DialogCode.Accepted:
            return
        new, comment = dialog.config(), dialog.comment_text()
        assert self.client is not None
        self.client.write(lambda store: _drift().set_config(store, name, new, comment=comment), None,
                          lambda exc: show_error(self, "Cannot save the settings", exc), changes="models")

    # ------------------------------------------------------------------ jobs
    def on_job_finished(self, handle: JobHandle | None, outcome: JobOutcome) -> None:
        if handle is None or handle.spec.kind not in (CHECK_KIND, RETRAIN_KIND):
            return
        path = self._watch_jobs.pop(handle.job_id, None)
        if path is not None:
            self._watching.discard(path)
        if outcome.ok:
            result = outcome.result or {}
            if handle.spec.kind == CHECK_KIND:
                # the window's change signal refreshes the other rooms; here: show this check
                self.refresh(select=result.get("model") or self.model_name, check_id=result.get("check_id"))
                if path is not None:
                    from modelyard.core.monitoring import watch

                    note = watch.notification(result, path)
                    if note:
                        self.notify(note["title"], note["message"])
            else:
                self._retrained(result)
        elif outcome.status == "failed" and path is not None:
            # a watched file (e.g. not a batch of this model's data): a notification, not a dialog
            # popping up over whatever the user is doing; the file is tried again once it changes
            self.notify(f"Not checked: {Path(path).name}", (outcome.error or "the check failed").splitlines()[0])
        elif outcome.status == "failed":
            title = "The drift check failed" if handle.spec.kind == CHECK_KIND else "Retraining failed"
            show_error(self, title, ModelyardError(outcome.message, hint=outcome.hint))

    def _retrained(self, result: dict[str, Any]) -> None:
        self.last_retrain = result
        if self.client is not None and result.get("ref"):
            self.client.navigate.emit("registry", ("select_version", result["ref"]))
        box = QMessageBox(QMessageBox.Icon.Information, "Challenger registered",
                          result.get("comparison") or f"{result.get('ref')} is registered as challenger.",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("retrainedBox")
        box.open()

    # ------------------------------------------------------------------ life
    def shutdown(self) -> None:
        self.watch_timer.stop()
        self.live_tab.stop()
        if self.tray is not None:
            self.tray.hide()

    def refresh_icons(self) -> None:
        super().refresh_icons()
        self.models_model.layoutChanged.emit()
        self._restyle_plots()

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        """A theme change: the charts' background and axes follow the new palette."""
        super().changeEvent(event)
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.PaletteChange:
            self._restyle_plots()

    def _restyle_plots(self) -> None:
        for plot in (getattr(self, "overlay_plot", None), *(getattr(self, "_timeline_made", None) or ())):
            if plot is not None:
                plots.style(plot, self)
        if getattr(self, "live_tab", None) is not None:
            self.live_tab.restyle()
