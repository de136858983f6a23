"""The Monitoring panel: drift checks per model, their history, one check in detail, retraining.

Left, the registered models with their status badge (the latest check's verdict) and watch
folder. Right, for the selected model: its checks (newest first); for the selected check the
findings, the features sorted by drift score and, for the selected feature, the reference and
batch distributions overlaid (pyqtgraph); a Timeline tab plots every feature's drift score and the
model's metric across checks.

A batch file dropped on a model (or on the panel, for the selected model) or chosen with
**Check a batch…** runs :func:`modelyard.core.monitoring.drift.check_drift_job` as a job. Watch folders are
scanned every few seconds while the app runs (:mod:`modelyard.core.monitoring.watch`, on a background
thread); each new file starts a check, and a check that finds drift raises a desktop notification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobOutcome
from modelyard.ui.common import theme
from modelyard.ui.common.dnd import DATA_SUFFIXES, accepted, local_files
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.widgets import master_detail, rows_view, show_error
from modelyard.ui.monitoring import plots
from modelyard.ui.monitoring.tables import (
    ChecksModel,
    FeaturesModel,
    ModelsModel,
    num,
    when,
)

CHECK_KIND = "drift.check"
RETRAIN_KIND = "monitor.retrain"
WATCH_INTERVAL_MS = 3000
REFRESH_ON = frozenset({"models", "checks", "store"})  # change topics this panel shows


def _drift():  # type: ignore[no-untyped-def]
    from modelyard.core.monitoring import drift

    return drift


def _read_checks(store: Any, name: str, keep: int | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(the model's checks, newest first; the one to show: ``keep`` if still there, else the newest)."""
    drift = _drift()
    checks = drift.list_checks(store, name, limit=500)
    ids = [c["id"] for c in checks]
    shown = keep if keep in ids else (ids[0] if ids else None)
    return checks, (drift.get_check(store, shown) if shown is not None else None)


class MonitoringPanel(Panel):
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
        self.timeline_plots: Any = None
        self.notifications: list[tuple[str, str]] = []
        self.tray: Any = None
        self._watch_jobs: dict[int, str] = {}  # job id -> file path, for the notification
        self._watching: set[str] = set()  # paths with a check job in flight
        self._show_check_id: int | None = None  # a check to show once the model's checks are read
        self._selecting = False  # a row selected for the user: the loaded data is shown by the loader
        self._scanning = False  # a scan of the watch folders is in flight
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_INTERVAL_MS)
        self.watch_timer.timeout.connect(self.scan_watch_folders)

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.models_model = ModelsModel(self)
        self.models_view = self._table("monitorModelsTable", self.models_model)
        self.models_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            self.models_view.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.models_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._model_selected(cur.row()))
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(theme.SPACE_M, theme.SPACE_M, 0, theme.SPACE_M)
        hint = QLabel("Drop a batch file on a model to check it for drift.", self)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        ll.addWidget(self.models_view, 1)
        ll.addWidget(hint)

        self.model_title = QLabel(self)
        self.model_title.setObjectName("monitorTitle")
        theme.make_heading(self.model_title, 1.3)
        self.check_button = QPushButton(theme.icon("drift"), "Check a batch…", self)
        self.check_button.setObjectName("checkButton")
        self.check_button.clicked.connect(lambda: self.check_file())
        self.watch_button = QPushButton(theme.icon("folder-open"), "Watch folder…", self)
        self.watch_button.setObjectName("watchButton")
        self.watch_button.clicked.connect(lambda: self.choose_watch_folder())
        self.settings_button = QPushButton(theme.icon("settings"), "Settings…", self)
        self.settings_button.setObjectName("driftSettingsButton")
        self.settings_button.clicked.connect(lambda: self.edit_settings())
        self.report_button = QPushButton("Export report…", self)
        self.report_button.setObjectName("reportButton")
        self.report_button.clicked.connect(lambda: self.export_report())
        self.retrain_button = QPushButton(theme.icon("refresh"), "Retrain…", self)
        self.retrain_button.setObjectName("retrainButton")
        self.retrain_button.setToolTip("Retrain the model's recorded training spec on this batch and register it "
                                       "as challenger")
        self.retrain_button.clicked.connect(lambda: self.retrain())
        head = QHBoxLayout()
        head.addWidget(self.model_title)
        head.addStretch(1)
        for b in (self.check_button, self.watch_button, self.settings_button, self.report_button, self.retrain_button):
            head.addWidget(b)
        self.model_facts = QLabel(self)
        self.model_facts.setObjectName("monitorFacts")
        self.model_facts.setWordWrap(True)
        self.model_facts.setTextFormat(Qt.TextFormat.RichText)

        self.checks_model = ChecksModel(self)
        self.checks_view = self._table("checksTable", self.checks_model)
        header = self.checks_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.checks_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._check_selected(cur.row()))

        self.findings = QLabel(self)
        self.findings.setObjectName("findings")
        self.findings.setWordWrap(True)
        self.findings.setTextFormat(Qt.TextFormat.RichText)
        self.findings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.features_model = FeaturesModel(self)
        self.features_view = self._table("featuresTable", self.features_model)
        fh = self.features_view.horizontalHeader()
        fh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        fh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # the kind and the raw statistic are in the feature's tooltip and above its plot: the
        # table keeps the names readable beside the overlay
        self.features_view.setColumnHidden(1, True)
        self.features_view.setColumnHidden(3, True)
        self.features_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.features_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self._feature_selected(cur.row()))
        self.feature_title = QLabel(self)
        self.feature_title.setObjectName("featureTitle")
        self.feature_title.setWordWrap(True)
        self.feature_title.setTextFormat(Qt.TextFormat.RichText)
        self.plot_holder = QWidget(self)
        self.plot_layout = QVBoxLayout(self.plot_holder)
        self.plot_layout.setContentsMargins(0, 0, 0, 0)
        self.plot_layout.addWidget(self.feature_title)
        detail = QSplitter(Qt.Orientation.Horizontal, self)
        detail.addWidget(self.features_view)
        detail.addWidget(self.plot_holder)
        detail.setStretchFactor(0, 3)
        detail.setStretchFactor(1, 2)
        detail.setSizes([560, 340])
        check_box = QWidget(self)
        cl = QVBoxLayout(check_box)
        cl.setContentsMargins(0, 0, 0, 0)
        findings_scroll = QScrollArea(self)
        findings_scroll.setObjectName("findingsScroll")
        findings_scroll.setWidget(self.findings)
        findings_scroll.setWidgetResizable(True)
        findings_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        findings_scroll.setMaximumHeight(150)
        cl.addWidget(findings_scroll)
        cl.addWidget(detail, 1)
        checks_split = QSplitter(Qt.Orientation.Vertical, self)
        checks_split.addWidget(self.checks_view)
        checks_split.addWidget(check_box)
        checks_split.setStretchFactor(0, 1)
        checks_split.setStretchFactor(1, 3)
        checks_split.setSizes([150, 450])

        self.timeline_tab = QWidget(self)
        self.timeline_layout = QVBoxLayout(self.timeline_tab)
        self.timeline_layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        self.timeline_hint = QLabel("The drift score of each feature, and the model's metric, across checks.", self)
        self.timeline_layout.addWidget(self.timeline_hint)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("monitorTabs")
        self.tabs.addTab(checks_split, "Checks")
        self.tabs.addTab(self.timeline_tab, "Timeline")
        self.tabs.currentChanged.connect(lambda _i: self._tab_changed())

        return master_detail(self, left, [head, self.model_facts, self.tabs], 330)

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
        folder = info.get("watch_folder")
        self.model_facts.setText(
            f"Checks run against <b>{info['ref']}</b> · "
            + (f"watching <b>{folder}</b>" if folder else "no watch folder")
            + f" · {info['n_checks']} check{'s' if info['n_checks'] != 1 else ''}")
        keep = self._show_check_id
        if keep is None and self.check is not None and not changed:
            keep = self.check["id"]
        name = info["name"]
        self.client.read("monitoring.checks", lambda store: _read_checks(store, name, keep),
                         lambda result: self._checks_loaded(name, *result), self._read_failed)
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()

    def _checks_loaded(self, name: str, checks: list[dict[str, Any]], check: dict[str, Any] | None) -> None:
        if name != self.model_name:
            return
        self.checks_model.update_rows(checks)  # by id: the selected check keeps its row
        if check is not None and check["id"] == self._show_check_id:
            self._show_check_id = None
        if check is None:
            self.check = None
            self.features_model.set_rows([])
            self.findings.setText("No checks yet. Drop a batch file on the model, or use <b>Check a batch…</b>.")
            self._update_buttons()
            return
        row = self.checks_model.row_of_key(check["id"])
        if self.checks_view.currentIndex().row() != row:
            self._selecting = True
            try:
                self.checks_view.selectRow(row)
            finally:
                self._selecting = False
        self._check_loaded(check)

    def _update_buttons(self) -> None:
        has_check = self.check is not None
        self.report_button.setEnabled(has_check)
        can_retrain = has_check and self.check.get("verdict") in ("drift", "warning")
        self.retrain_button.setEnabled(bool(can_retrain))

    def _check_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.checks_model.rowCount() or self._selecting:
            return
        self.show_check(self.checks_model.rows[row]["id"])

    def show_check(self, check_id: int) -> None:
        """Read check ``check_id`` off the main thread and show it."""
        assert self.client is not None
        self.client.read("monitoring.check", lambda store: _drift().get_check(store, check_id),
                         self._check_loaded, self._read_failed)

    def _check_loaded(self, check: dict[str, Any]) -> None:
        same = self.check is not None and self.check["id"] == check["id"]
        feature = self.feature["name"] if same and self.feature is not None else None
        self.check = check
        self.findings.setText(self._findings_html(check))
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
        self.check_shown.emit(check["id"])

    def _findings_html(self, c: dict[str, Any]) -> str:
        colour = theme.status_colour(c.get("verdict") or "ok").name()
        share = c.get("drift_share")
        parts = [f"<b style='color:{colour}'>{(c.get('verdict') or '').upper()}</b> · check #{c['id']} of "
                 f"{c.get('ref') or ''} on {c.get('batch_ref') or 'a batch'} · {when(c.get('created_at'))}"
                 + (f" · {share:.0%} of features drifted" if isinstance(share, (int, float)) else "")]
        for reason in c.get("reasons") or []:
            parts.append(f"• {reason}")
        warn = theme.status_colour("warning").name()
        for p in c.get("schema") or []:
            parts.append(f"<span style='color:{warn}'>⚠ {p.get('message')}</span>")
        pred = c.get("prediction") or {}
        if pred and not pred.get("error"):
            row = pred.get("labels") or pred.get("values") or {}
            if row:
                parts.append(f"Prediction drift: {row.get('test', '')} {row.get('effect_name') or ''} "
                             f"{num(row.get('effect'))} → {'drift' if row.get('drift') else 'ok'}")
        perf = c.get("performance") or {}
        for mrow in perf.get("metrics") or []:
            if mrow.get("decides") or mrow.get("degraded"):
                parts.append(f"Performance: {mrow['metric']} {num(mrow.get('batch'))} on this batch vs "
                             f"{num(mrow.get('recorded'))} recorded" + (" — degraded" if mrow.get("degraded") else ""))
        mv = c.get("multivariate") or {}
        if mv.get("auc") is not None:
            parts.append(f"Domain classifier ROC AUC {mv['auc']:.3f} (threshold {mv.get('threshold')}) → "
                         f"{'drift' if mv.get('drift') else 'ok'}")
        for skip in c.get("skipped") or []:
            parts.append(f"<span style='color:gray'>Skipped: {skip}</span>")
        return "<br>".join(parts)

    def _feature_selected(self, row: int) -> None:
        if not 0 <= row < self.features_model.rowCount():
            return
        self.feature = self.features_model.rows[row]
        self.show_feature(self.feature)

    def show_feature(self, f: dict[str, Any]) -> None:
        if self.overlay_plot is None:
            self.overlay_plot = plots.overlay_plot(self.plot_holder)
            self.plot_layout.addWidget(self.overlay_plot, 1)
        self.feature_title.setText(f"<b>{f['name']}</b> · {f.get('reason') or f.get('status') or ''}")
        plots.draw_overlay(self.overlay_plot, f)

    # ------------------------------------------------------------------ timeline
    def _tab_changed(self) -> None:
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()

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
        if self.timeline_plots is None:
            scores, metric = plots.timeline_plots(self.timeline_tab, self)
            self.timeline_hint.hide()
            self.timeline_layout.addWidget(scores, 3)
            self.timeline_layout.addWidget(metric, 2)
        else:
            scores, metric = self.timeline_plots
        self.timeline_series: dict[str, list[float]] = plots.draw_timeline(scores, metric, data)
        self.timeline_checks = data.get("checks") or []
        self.timeline_plots = (scores, metric)

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

            return watch.check_spec_for(store, name, path)

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

            suggested = f"drift-check-{self.check['id']}.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the drift report", suggested, "HTML (*.html)")
            if not path:
                return None
        check_id, target = self.check["id"], path
        self.client.read(f"monitoring.report.{target}",
                         lambda store: reports.export_check_html(store, check_id, target), lambda _r: None,
                         lambda exc: show_error(self, "Cannot export the report", exc))
        return path

    def retrain(self, data: str | None = None) -> JobHandle | None:
        if self.store is None or self.check is None:
            return None
        from modelyard.core.monitoring import retraining

        if data is None:
            box = QMessageBox(QMessageBox.Icon.Question, "Retrain on the new data",
                              f"Retrain {self.check.get('ref')}'s recorded training spec on the data of check "
                              f"#{self.check['id']}, evaluate it and the champion on the same recent rows, and "
                              "register it as <b>challenger</b>. Promotion stays your decision.",
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
            spec = retraining.retrain_spec(self.check["id"], data=data, source="gui")  # plain data: no store
        except ModelyardError as exc:
            show_error(self, "Cannot retrain", exc)
            return None
        return self.start_job(spec)

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
        from PySide6.QtWidgets import QSystemTrayIcon

        if QSystemTrayIcon.isSystemTrayAvailable():
            if self.tray is None:
                self.tray = QSystemTrayIcon(theme.icon("app"), self)
                self.tray.show()
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 10_000)
        if self.client is not None:
            self.client.message.emit(f"{title}: {message}", 15_000)  # the window's status bar
        self.notified.emit(title, message)

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
        elif outcome.status == "failed":
            title = "The drift check failed" if handle.spec.kind == CHECK_KIND else "Retraining failed"
            show_error(self, title, ModelyardError(outcome.error or title, hint=outcome.hint))

    def _retrained(self, result: dict[str, Any]) -> None:
        self.last_retrain = result
        if self.client is not None and result.get("ref"):
            self.client.navigate.emit("registry", ("select_version", result["ref"]))
        box = QMessageBox(QMessageBox.Icon.Information, "Challenger registered",
                          result.get("comparison") or f"{result.get('ref')} is registered as challenger.",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("retrainedBox")
        box.open()

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

    # ------------------------------------------------------------------ life
    def shutdown(self) -> None:
        self.watch_timer.stop()
        if self.tray is not None:
            self.tray.hide()

    def refresh_icons(self) -> None:
        super().refresh_icons()
        self.models_model.layoutChanged.emit()
