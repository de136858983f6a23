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

import datetime as dt
from itertools import pairwise
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
from modelyard.core.registry import versions as registry
from modelyard.ui.common import theme
from modelyard.ui.common.background import BackgroundReader
from modelyard.ui.common.dnd import DATA_SUFFIXES, accepted, local_files
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.panel import Panel
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import master_detail, rows_view, show_error

CHECK_KIND = "drift.check"
RETRAIN_KIND = "monitor.retrain"
WATCH_INTERVAL_MS = 3000


def _drift():  # type: ignore[no-untyped-def]
    from modelyard.core.monitoring import drift

    return drift


def _when(value: Any, *, short: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone().strftime("%b %d %H:%M" if short else "%Y-%m-%d %H:%M")


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _verdict_cell(verdict: str | None, role: int) -> Any:
    if not verdict:
        return "—" if role == Qt.ItemDataRole.DisplayRole else None
    if role == Qt.ItemDataRole.DisplayRole:
        return verdict
    if role == Qt.ItemDataRole.DecorationRole:
        return theme.status_icon(verdict)
    if role == Qt.ItemDataRole.ForegroundRole:
        return theme.status_colour(verdict)
    return None


# --------------------------------------------------------------------------- table models


class _ModelsModel(RowsTableModel[dict]):
    headers = ("Model", "Checks", "Status", "Last check")

    def cell(self, r: dict, column: int, role: int) -> Any:
        if column == 2 and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole,
                                    Qt.ItemDataRole.ForegroundRole):
            return _verdict_cell(r.get("status"), role)
        if role == Qt.ItemDataRole.DisplayRole:
            return (r["name"], str(r.get("n_checks") or 0), "", _when(r.get("last"), short=True))[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return theme.icon("monitoring")
        if role == Qt.ItemDataRole.ToolTipRole:
            folder = r.get("watch_folder")
            return f"{r['name']}: checks run against {r.get('ref') or 'the champion'}" + (
                f"\nWatching {folder}" if folder else "\nNo watch folder") + "\nDrop a batch file here to check it."
        return None

    def row_of(self, name: str | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r["name"] == name), -1)


class _ChecksModel(RowsTableModel[dict]):
    headers = ("#", "When", "Version", "Batch", "Verdict", "Drifted", "Share")

    def cell(self, c: dict, column: int, role: int) -> Any:
        if column == 4:
            return _verdict_cell(c.get("verdict"), role)
        if role == Qt.ItemDataRole.DisplayRole:
            drifted = c.get("drifted") or []
            share = c.get("drift_share")
            return (str(c["id"]), _when(c.get("created_at")), f"v{c.get('version')}", c.get("batch_ref") or "",
                    "", ", ".join(drifted[:4]) + ("…" if len(drifted) > 4 else ""),
                    f"{share:.0%}" if isinstance(share, (int, float)) else "")[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(c.get("reasons") or []) or None
        return None


class _FeaturesModel(RowsTableModel[dict]):
    headers = ("Feature", "Kind", "Test", "Statistic", "p-value", "Effect size", "Threshold", "Drift")

    def cell(self, f: dict, column: int, role: int) -> Any:
        drift = f.get("drift")
        status = f.get("status")
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 7:
                return "drift" if drift else ("ok" if status == "checked" else status or "")
            test = f.get("test") or ""
            effect = f.get("effect")
            return (f["name"] + (" ★" if f.get("critical") else ""), f.get("kind") or "", test,
                    _num(f.get("statistic")) if f.get("statistic") is not None else "—",
                    _num(f.get("p_adjusted", f.get("p_value"))) if f.get("p_value") is not None else "—",
                    _num(effect) if effect is not None else "—",
                    _num(f.get("threshold")), "")[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 7:
            return theme.status_icon("drift" if drift else "ok") if status == "checked" else theme.status_icon("warning")
        if role == Qt.ItemDataRole.ForegroundRole and column == 7:
            return theme.status_colour("drift" if drift else "ok" if status == "checked" else "warning")
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column <= 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            what = {0: f"{f['name']} ({f.get('kind') or 'unknown kind'})",
                    3: f.get("statistic_name"), 5: f.get("effect_name")}.get(column)
            return "\n".join(x for x in (what, f.get("reason")) if x) or None
        return None


# --------------------------------------------------------------------------- plots


class _Plots:
    """The overlay chart of one feature and the timeline charts (pyqtgraph, imported on first use)."""

    @staticmethod
    def overlay(parent: QWidget) -> Any:
        import pyqtgraph as pg

        plot = pg.PlotWidget(parent)
        plot.setObjectName("overlayPlot")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=True, y=False)
        plot.showGrid(x=False, y=True, alpha=0.25)
        legend = plot.addLegend(offset=(-10, 10))
        base = parent.palette().color(parent.backgroundRole())
        legend.setBrush(pg.mkBrush(base.red(), base.green(), base.blue(), 220))  # readable over the bars
        plot.setMinimumHeight(180)
        plot.getAxis("left").enableAutoSIPrefix(False)
        _style(plot, parent)
        return plot


def _style(plot: Any, widget: QWidget) -> None:
    from PySide6.QtGui import QPalette

    pal = widget.palette()
    plot.setBackground(pal.color(QPalette.ColorRole.Base))
    fg = pal.color(QPalette.ColorRole.Text)
    for axis in ("left", "bottom"):
        ax = plot.getAxis(axis)
        ax.setPen(fg)
        ax.setTextPen(fg)


REFERENCE_COLOUR = "#8c959f"
BATCH_COLOUR = "#1f6feb"
SERIES_COLOURS = ("#1f6feb", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#9a6700", "#0a7ea4", "#bf3989",
                  "#57606a", "#116329")


# --------------------------------------------------------------------------- the panel


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
        self.reader = BackgroundReader(self)
        self.watch_reader = BackgroundReader(self)
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_INTERVAL_MS)
        self.watch_timer.timeout.connect(self.scan_watch_folders)

    # ------------------------------------------------------------------ building
    def build_content(self) -> QWidget:
        self.models_model = _ModelsModel(self)
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

        self.checks_model = _ChecksModel(self)
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
        self.features_model = _FeaturesModel(self)
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

    def refresh(self, select: str | None = None) -> None:
        if self.store is None:
            return
        current = select or self.model_name
        self.models_model.set_rows(self._model_rows())
        super().refresh()
        if self.models_model.rowCount():
            row = max(self.models_model.row_of(current), 0)
            self.models_view.selectRow(row)
            self._model_selected(row)
        else:
            self.model_name = None

    def _model_rows(self) -> list[dict[str, Any]]:
        """Models with their check count, latest verdict and watch folder (a few light queries)."""
        assert self.store is not None
        from sqlalchemy import func, select

        from modelyard.core.store import models as m

        models = registry.list_models(self.store)
        with self.store.session() as s:
            rows = s.execute(
                select(m.ModelVersion.model_id, func.count(m.MonitoringCheck.id), func.max(m.MonitoringCheck.created_at))
                .join(m.MonitoringCheck, m.MonitoringCheck.model_version_id == m.ModelVersion.id)
                .group_by(m.ModelVersion.model_id)).all()
            monitoring = dict(s.execute(select(m.RegisteredModel.id, m.RegisteredModel.monitoring)).all())
        counts = {mid: (n, last) for mid, n, last in rows}
        out = []
        for info in models:
            n, last = counts.get(info.id, (0, None))
            status = _drift().model_status(self.store, info.name) if n else None
            champion = info.aliases.get(registry.CHAMPION)
            out.append({"name": info.name, "n_checks": n, "last": last, "status": status,
                        "ref": f"{info.name}@v{champion} (champion)" if champion else f"{info.name}@v{info.latest_version}",
                        "watch_folder": (monitoring.get(info.id) or {}).get("watch_folder")})
        return out

    def _model_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.models_model.rowCount():
            return
        info = self.models_model.rows[row]
        changed = info["name"] != self.model_name
        self.model_name = info["name"]
        self.model_title.setText(info["name"])
        folder = info.get("watch_folder")
        self.model_facts.setText(
            f"Checks run against <b>{info['ref']}</b> · "
            + (f"watching <b>{folder}</b>" if folder else "no watch folder")
            + f" · {info['n_checks']} check{'s' if info['n_checks'] != 1 else ''}")
        checks = _drift().list_checks(self.store, info["name"], limit=500)
        previous = self.check["id"] if self.check is not None and not changed else None
        self.checks_model.set_rows(checks)
        if checks:
            row_to_select = next((i for i, c in enumerate(checks) if c["id"] == previous), 0)
            self.checks_view.selectRow(row_to_select)
            self._check_selected(row_to_select)
        else:
            self.check = None
            self.features_model.set_rows([])
            self.findings.setText("No checks yet. Drop a batch file on the model, or use <b>Check a batch…</b>.")
        self._update_buttons()
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()

    def _update_buttons(self) -> None:
        has_check = self.check is not None
        self.report_button.setEnabled(has_check)
        can_retrain = has_check and self.check.get("verdict") in ("drift", "warning")
        self.retrain_button.setEnabled(bool(can_retrain))

    def _check_selected(self, row: int) -> None:
        if self.store is None or not 0 <= row < self.checks_model.rowCount():
            return
        check_id = self.checks_model.rows[row]["id"]
        self.show_check(check_id)

    def show_check(self, check_id: int) -> None:
        assert self.store is not None
        self.check = _drift().get_check(self.store, check_id)
        self.findings.setText(self._findings_html(self.check))
        feats = [f for f in self.check.get("features") or []]
        target = self.check.get("target")
        if target:
            feats.append({**target, "name": f"{target['name']} (target)"})
        self.features_model.set_rows(feats)
        if feats:
            self.features_view.selectRow(0)
            self._feature_selected(0)
        self._update_buttons()
        self.check_shown.emit(check_id)

    def _findings_html(self, c: dict[str, Any]) -> str:
        colour = theme.status_colour(c.get("verdict") or "ok").name()
        share = c.get("drift_share")
        parts = [f"<b style='color:{colour}'>{(c.get('verdict') or '').upper()}</b> · check #{c['id']} of "
                 f"{c.get('ref') or ''} on {c.get('batch_ref') or 'a batch'} · {_when(c.get('created_at'))}"
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
                             f"{_num(row.get('effect'))} → {'drift' if row.get('drift') else 'ok'}")
        perf = c.get("performance") or {}
        for mrow in perf.get("metrics") or []:
            if mrow.get("decides") or mrow.get("degraded"):
                parts.append(f"Performance: {mrow['metric']} {_num(mrow.get('batch'))} on this batch vs "
                             f"{_num(mrow.get('recorded'))} recorded" + (" — degraded" if mrow.get("degraded") else ""))
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
            self.overlay_plot = _Plots.overlay(self.plot_holder)
            self.plot_layout.addWidget(self.overlay_plot, 1)
        import pyqtgraph as pg

        plot = self.overlay_plot
        plot.clear()
        legend = plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self.feature_title.setText(f"<b>{f['name']}</b> · {f.get('reason') or f.get('status') or ''}")
        hist = f.get("histogram") or {}
        ref_brush, batch_brush = pg.mkBrush(REFERENCE_COLOUR + "aa"), pg.mkBrush(BATCH_COLOUR + "88")
        bottom = plot.getAxis("bottom")
        if hist.get("edges"):
            edges = hist["edges"]
            xs = [(a + b) / 2 for a, b in pairwise(edges)]
            widths = [(b - a) for a, b in pairwise(edges)]
            plot.addItem(pg.BarGraphItem(x=xs, height=hist.get("reference") or [0] * len(xs), width=widths,
                                         brush=ref_brush, pen=pg.mkPen(None), name="reference"))
            plot.addItem(pg.BarGraphItem(x=xs, height=hist.get("batch") or [0] * len(xs), width=widths,
                                         brush=batch_brush, pen=pg.mkPen(None), name="batch"))
            bottom.setTicks(None)
        elif hist.get("categories"):
            cats = [str(c) for c in hist["categories"]]
            xs = list(range(len(cats)))
            plot.addItem(pg.BarGraphItem(x=[x - 0.2 for x in xs], height=hist.get("reference") or [0] * len(xs),
                                         width=0.4, brush=ref_brush, pen=pg.mkPen(None), name="reference"))
            plot.addItem(pg.BarGraphItem(x=[x + 0.2 for x in xs], height=hist.get("batch") or [0] * len(xs),
                                         width=0.4, brush=batch_brush, pen=pg.mkPen(None), name="batch"))
            bottom.setTicks([[(x, c[:12]) for x, c in zip(xs, cats, strict=False)]])
        plot.setLabel("left", "share of rows")
        plot.autoRange()

    # ------------------------------------------------------------------ timeline
    def _tab_changed(self) -> None:
        if self.tabs.currentWidget() is self.timeline_tab:
            self.show_timeline()

    def show_timeline(self) -> None:
        if self.store is None or self.model_name is None:
            return
        import pyqtgraph as pg

        if self.timeline_plots is None:
            scores = pg.PlotWidget(self.timeline_tab)
            scores.setObjectName("scoresTimeline")
            metric = pg.PlotWidget(self.timeline_tab)
            metric.setObjectName("metricTimeline")
            for p in (scores, metric):
                p.setMenuEnabled(False)
                p.hideButtons()
                p.showGrid(x=False, y=True, alpha=0.25)
                _style(p, self)
            scores.addLegend(offset=(-10, 10), labelTextSize="8pt")
            scores.setLabel("left", "drift score")
            metric.setLabel("left", "metric")
            metric.setLabel("bottom", "check")
            for p in (scores, metric):
                p.getAxis("left").enableAutoSIPrefix(False)
            metric.setXLink(scores)
            self.timeline_hint.hide()
            self.timeline_layout.addWidget(scores, 3)
            self.timeline_layout.addWidget(metric, 2)
            self.timeline_plots = (scores, metric)
        scores, metric = self.timeline_plots
        data = _drift().timeline(self.store, self.model_name)
        checks = data.get("checks") or []
        scores.clear()
        if scores.plotItem.legend is not None:
            scores.plotItem.legend.clear()
        metric.clear()
        xs = list(range(1, len(checks) + 1))
        ticks = [[(x, f"#{c['id']}") for x, c in zip(xs, checks, strict=False)]]
        for ax in (scores.getAxis("bottom"), metric.getAxis("bottom")):
            ax.setTicks(ticks)
        names = data.get("features") or sorted({n for c in checks for n in (c.get("scores") or {})})
        self.timeline_series: dict[str, list[float]] = {}
        for i, name in enumerate(names):
            ys = [(c.get("scores") or {}).get(name) for c in checks]
            ys = [float("nan") if y is None else float(y) for y in ys]
            self.timeline_series[name] = ys
            colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
            scores.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6, symbolBrush=colour,
                        name=name, connect="finite")
        threshold = (data.get("threshold") if isinstance(data.get("threshold"), (int, float)) else None)
        if threshold is not None:
            scores.addLine(y=threshold, pen=pg.mkPen("#cf222e", style=Qt.PenStyle.DashLine))
        mys = [c.get("metric") for c in checks]
        metric_name = data.get("metric") or "metric"
        metric.setLabel("left", metric_name)
        if any(v is not None for v in mys):
            vals = [float("nan") if v is None else float(v) for v in mys]
            metric.plot(xs, vals, pen=pg.mkPen(BATCH_COLOUR, width=2), symbol="o", symbolBrush=BATCH_COLOUR,
                        connect="finite")
            recorded = next((c.get("metric_recorded") for c in checks if c.get("metric_recorded") is not None), None)
            if recorded is not None:
                metric.addLine(y=float(recorded), pen=pg.mkPen(REFERENCE_COLOUR, style=Qt.PenStyle.DashLine))
        self.timeline_checks = checks

    # ------------------------------------------------------------------ actions
    def check_file(self, path: str | Path | None = None, model: str | None = None) -> JobHandle | None:
        """Check a batch file against ``model`` (default: the selected one) in a job."""
        if self.store is None:
            return None
        name = model or self.model_name
        if name is None:
            show_error(self, "No model", ModelyardError("Register a model before checking batches against it.",
                                                        hint="Register a run in the Registry panel."))
            return None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(
                self, f"Check a batch against {name}", "",
                "Data files (*.csv *.tsv *.txt *.parquet *.pq *.xlsx *.json *.jsonl *.ndjson);;All files (*)")
            if not path:
                return None
        from modelyard.core.monitoring import watch

        try:
            spec = watch.check_spec_for(self.store, name, path)
        except ModelyardError as exc:
            show_error(self, "Cannot check the batch", exc)
            return None
        self.model_name = name
        return self.start_job(spec)

    def export_report(self, path: str | None = None) -> str | None:
        if self.store is None or self.check is None:
            return None
        from modelyard.core.monitoring import reports

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"drift-check-{self.check['id']}.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the drift report", suggested, "HTML (*.html)")
            if not path:
                return None
        try:
            reports.export_check_html(self.store, self.check["id"], path)
        except (ModelyardError, OSError) as exc:
            show_error(self, "Cannot export the report", exc)
            return None
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
            spec = retraining.retrain_spec(self.check["id"], data=data, source="gui")
        except ModelyardError as exc:
            show_error(self, "Cannot retrain", exc)
            return None
        return self.start_job(spec)

    def choose_watch_folder(self, folder: str | None = None, comment: str | None = None) -> bool:
        if self.store is None or self.model_name is None:
            return False
        from modelyard.core.monitoring import watch

        if folder is None:
            from PySide6.QtWidgets import QFileDialog

            folder = QFileDialog.getExistingDirectory(self, f"Watch a folder for new batches of {self.model_name}")
            if not folder:
                return False
        if comment is None:
            comment = "watch folder chosen in the Monitoring panel"
        try:
            watch.set_watch_folder(self.store, self.model_name, folder or None, comment=comment)
        except ModelyardError as exc:
            show_error(self, "Cannot watch the folder", exc)
            return False
        self.refresh()
        self.scan_watch_folders()
        return True

    def edit_settings(self) -> bool:
        if self.store is None or self.model_name is None:
            return False
        from modelyard.ui.monitoring.dialogs import DriftSettingsDialog

        drift = _drift()
        features = [f["name"] for f in (self.check or {}).get("features") or []]
        dialog = DriftSettingsDialog(self.model_name, drift.get_config(self.store, self.model_name), features, self)
        if dialog.exec() != DriftSettingsDialog.DialogCode.Accepted:
            return False
        try:
            drift.set_config(self.store, self.model_name, dialog.config(), comment=dialog.comment_text())
        except ModelyardError as exc:
            show_error(self, "Cannot save the settings", exc)
            return False
        return True

    # ------------------------------------------------------------------ watch folders
    def scan_watch_folders(self) -> None:
        """Look for new files in every watched folder (on a background thread) and check them."""
        if self.store is None or self.watch_reader.busy:
            return
        store = self.store

        def scan() -> list[tuple[str, str]]:
            from modelyard.core.monitoring import watch

            found = []
            for name, _folder in watch.watched_models(store):
                try:
                    found += [(name, str(p)) for p in watch.pending_files(store, name)]
                except ModelyardError:
                    continue
            return found

        self.watch_reader.submit(scan, self._start_watch_checks, lambda _e: None)

    def _start_watch_checks(self, found: list[tuple[str, str]]) -> None:
        if self.store is None:
            return
        from modelyard.core.monitoring import watch

        for name, path in found:
            if path in self._watching:
                continue
            try:
                spec = watch.check_spec_for(self.store, name, path)
            except ModelyardError:
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
        window = self.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(f"{title}: {message}", 15_000)
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
                name = result.get("model") or self.model_name
                self.refresh(select=name)
                if result.get("check_id") is not None:
                    row = next((i for i, c in enumerate(self.checks_model.rows) if c["id"] == result["check_id"]), -1)
                    if row >= 0:
                        self.checks_view.selectRow(row)
                        self._check_selected(row)
                if path is not None:
                    from modelyard.core.monitoring import watch

                    note = watch.notification(result, path)
                    if note:
                        self.notify(note["title"], note["message"])
            else:
                self._retrained(result)
            self._refresh_registry()
        elif outcome.status == "failed":
            title = "The drift check failed" if handle.spec.kind == CHECK_KIND else "Retraining failed"
            show_error(self, title, ModelyardError(outcome.error or title, hint=outcome.hint))

    def _retrained(self, result: dict[str, Any]) -> None:
        self.last_retrain = result
        window = self.window()
        registry_panel = getattr(window, "registry_panel", None)
        if registry_panel is not None and result.get("ref"):
            registry_panel.select_version(result["ref"])
        box = QMessageBox(QMessageBox.Icon.Information, "Challenger registered",
                          result.get("comparison") or f"{result.get('ref')} is registered as challenger.",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("retrainedBox")
        box.open()

    def _refresh_registry(self) -> None:
        window = self.window()
        registry_panel = getattr(window, "registry_panel", None)
        if registry_panel is not None and registry_panel is not self:
            registry_panel.refresh()

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
        self.reader.close()
        self.watch_reader.close()
        if self.tray is not None:
            self.tray.hide()

    def refresh_icons(self) -> None:
        super().refresh_icons()
        self.models_model.layoutChanged.emit()
