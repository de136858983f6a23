"""The Monitoring panel's Live tab: a served model's prediction log in windows.

Charts (pyqtgraph, made on the first report): requests per second, latency p50 and p99, error
rate, input drift per window (the share of features drifting, each bar coloured by the window's
verdict, the rule's share dashed), and realised performance (accuracy, or mean absolute error for
a regression) where labels were joined. Beside them, champion vs challenger on the same traffic:
per route rows, latency, error rate and realised performance, and the agreement of a shadow's
answers with the champion's. A line above says whether the "N of the last M windows" alert holds.

The report (:func:`modelyard.core.monitoring.live.live_report`) is read off the main thread
through the window's client, when the tab is shown, when the window size changes, and every
:data:`REFRESH_MS` while the tab is visible when the log has a new segment (or labels) since.
"""

from __future__ import annotations

import datetime as dt
import html
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from modelyard.ui.common import theme, turns
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import push_button, rows_view
from modelyard.ui.monitoring import plots
from modelyard.ui.monitoring.tables import num

REFRESH_MS = 5000
SHOWN_WINDOWS = 48
WINDOWS = (("Per hour", "hour"), ("Per day", "day"), ("Per 1,000 rows", "1000"), ("Per 10,000 rows", "10000"))
ROUTE_COLOURS = {"champion": plots.BATCH_COLOUR, "challenger": "#bc4c00", "shadow": "#8250df"}
VERDICT_COLOURS = {"ok": "#1a7f37", "warning": "#9a6700", "drift": "#cf222e"}
P99_COLOUR = "#bc4c00"
CHARTS = ("rate", "latency", "errors", "drift", "performance")
MIN_CHART_HEIGHT = 150


def window_label(w: dict[str, Any], kind: str) -> str:
    """A window's start as an axis label: the hour or the day in local time, or its number."""
    if kind not in ("hour", "day"):
        return f"#{w['index'] + 1}"
    try:
        start = dt.datetime.fromisoformat(str(w["start"])).astimezone()
    except (TypeError, ValueError):
        return ""
    return start.strftime("%H:%M" if kind == "hour" else "%b %d")


def _key(colour: str) -> str:
    return f"<span style='color:{colour}'>■</span>"


class RoutesModel(RowsTableModel[dict]):
    """Champion vs challenger: one row per route."""

    headers = ("Route", "Rows", "p50 ms", "p99 ms", "Errors", "Labelled", "Realised")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.regression = False

    def cell(self, r: dict, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            lat = r.get("latency_ms") or {}
            perf = r.get("mae") if self.regression else r.get("accuracy")
            err = r.get("error_rate")
            return (r["route"], f"{r.get('rows', 0):,}", num(lat.get("p50"), 1), num(lat.get("p99"), 1),
                    "—" if err is None else f"{err:.1%}", f"{r.get('labelled', 0):,}",
                    "—" if perf is None else (num(perf, 3) if self.regression else f"{perf:.1%}"))[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == 0:
            return QColor(ROUTE_COLOURS.get(r["route"], plots.SHARE_COLOUR))
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return {"champion": "The answers clients got from the champion.",
                    "challenger": "The answers clients got from the challenger (a canary's share).",
                    "shadow": "The challenger's answers to the same requests, never sent to a client."}.get(r["route"])
        return None


class LiveView(QWidget):
    """The Live tab (see the module docstring). ``load(client, name)`` shows a model."""

    drawn = Signal()  # a report was drawn (tests wait on it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("liveView")
        self.client: Any = None
        self.name: str | None = None
        self.report: dict[str, Any] | None = None
        self.charts: dict[str, Any] = {}
        self.titles: dict[str, QLabel] = {}
        self._plot_loader: Any = None  # the thread importing pyqtgraph, the first time
        self._plot_poll = QTimer(self)
        self._plot_poll.setInterval(50)
        self._plot_poll.timeout.connect(self._draw_when_ready)
        self._drawing: turns.Turns | None = None  # the charts' turns still to run
        self._seen_file: int | None = None  # the newest log file the shown report read
        self._reading = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        top = QHBoxLayout()
        self.window_box = QComboBox(self)
        self.window_box.setObjectName("liveWindow")
        for text, value in WINDOWS:
            self.window_box.addItem(text, value)
        self.window_box.setToolTip("How the prediction log is cut into windows: by the hour, by the day, or by rows.")
        self.window_box.currentIndexChanged.connect(lambda _i: self.refresh())
        top.addWidget(self.window_box)
        self.summary = QLabel(self)
        self.summary.setObjectName("liveSummary")
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        top.addWidget(push_button(self, "Refresh", self.refresh, name="liveRefresh", icon="refresh",
                                  tip="Read the prediction log again (it is read every few seconds while shown)."))
        layout.addLayout(top)
        self.alert = QLabel(self)
        self.alert.setObjectName("liveAlert")
        self.alert.setWordWrap(True)
        self.alert.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.alert)
        self.empty = QLabel(self)
        self.empty.setObjectName("liveEmpty")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.empty, 1)
        # the charts and the comparison scroll when the tab is short (a small window, the jobs dock open)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("liveScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.grid_host = QWidget(self.scroll)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.scroll.setWidget(self.grid_host)
        layout.addWidget(self.scroll, 1)
        self.routes_model = RoutesModel(self)
        self.routes_view = rows_view(self, "liveRoutes", self.routes_model)
        self.routes_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.routes_view.horizontalHeader().setStretchLastSection(False)
        self.compare_title = QLabel("<b>Champion vs challenger</b> on the same traffic", self)
        self.agreement = QLabel(self)
        self.agreement.setObjectName("liveAgreement")
        self.agreement.setWordWrap(True)
        self.compare = QWidget(self.grid_host)
        box = QVBoxLayout(self.compare)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.compare_title)
        box.addWidget(self.routes_view)
        box.addWidget(self.agreement)
        self.grid.addWidget(self.compare, 2, 0, 1, 3)
        for c in range(3):
            self.grid.setColumnStretch(c, 1)
        self.grid.setRowStretch(0, 1)
        self.grid.setRowStretch(1, 1)
        self.scroll.hide()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ reading
    @property
    def window(self) -> str:
        return str(self.window_box.currentData())

    def load(self, client: Any, name: str | None) -> None:
        """Show model ``name`` (read off the main thread) and keep it fresh while shown."""
        changed = name != self.name
        self.client, self.name = client, name
        if changed:
            self.report = None
            self.summary.setText(f"Reading the prediction log of {name}…" if name else "")
        self.refresh()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        if self.isVisible():
            self.refresh(force=False)

    def refresh(self, *, force: bool = True) -> None:
        """Read the report again; unless ``force``, only when the log has a new file since the last
        read (the timer's refresh: reading a long log costs seconds of a worker thread)."""
        if self.client is None or self.name is None or self._reading:
            return
        name, window = self.name, self.window
        seen = None if force or self.report is None or self.report.get("model") != name else self._seen_file
        self._reading = True

        def read(store: Any) -> tuple[int | None, dict[str, Any] | None]:
            from modelyard.core.monitoring import live

            newest = live.newest_log_file(store, name)
            if seen is not None and newest == seen:
                return newest, None  # nothing new
            return newest, live.live_report(store, name, window=window, last=SHOWN_WINDOWS)

        self.client.read(f"monitoring.live.{name}", read, lambda got: self._loaded(name, window, *got), self._failed)

    def _failed(self, error: Exception) -> None:
        self._reading = False
        self.summary.setText(f"Could not read the prediction log: {error}")

    # ------------------------------------------------------------------ drawing
    def _loaded(self, name: str, window: str, newest: int | None, report: dict[str, Any] | None) -> None:
        self._reading = False
        if name != self.name or window != self.window or report is None:
            return
        self._seen_file = newest
        self.report = report
        if not report["files"]:
            self.scroll.hide()
            self.alert.clear()
            self.summary.setText("")
            self.empty.setText(
                f"<b>{html.escape(name)} has no prediction log yet.</b><br>Serve it with its requests logged — "
                f"<code>modelyard serve {html.escape(name)} --log</code> (or <code>--log 10%</code> for a share) — "
                "and its traffic, latency, errors, input drift and, once labels are joined with "
                f"<code>modelyard monitor labels FILE --key id</code>, its realised performance show here.")
            self.empty.show()
            self.drawn.emit()
            return
        self.empty.hide()
        self.scroll.show()
        self._summary(report)
        self._draw_when_ready()

    def _draw_when_ready(self) -> None:
        """Draw :attr:`report` once pyqtgraph is loaded (off the main thread), one chart per turn
        of the event loop: making or drawing a pyqtgraph plot takes 15-40 ms of the main thread,
        and all of them at once held the window ~300 ms on a busy machine."""
        if "pyqtgraph" not in sys.modules or (self._plot_loader is not None and self._plot_loader.is_alive()):
            if self._plot_loader is None:
                from modelyard.ui.common import warmup

                self._plot_loader = warmup.start(("numpy", "pyqtgraph"))
            self._plot_poll.start()
            return
        self._plot_poll.stop()
        r = self.report
        if r is None:
            return
        steps: list[Callable[[], None]] = []
        if not self.charts:
            steps += [lambda k=k, i=i: self._make_chart(i, k) for i, k in enumerate(CHARTS)]
        steps += [lambda k=k: self._draw_chart(k, r) for k in CHARTS]
        steps.append(lambda: self._draw_table(r))
        if self._drawing is not None:
            self._drawing.cancel()  # a newer report is drawn instead
        self._drawing = turns.in_turns(self, steps, on_done=self.drawn.emit)

    def _summary(self, r: dict[str, Any]) -> None:
        shown = len(r["windows"])
        more = f" (the newest {shown} shown)" if r["windows_total"] > shown else ""
        served = f" · serving <b>{html.escape(r['served'])}</b>" if r.get("served") else ""
        labels = r["labels"]
        joined = (f" · {labels['matched_rows']:,} labelled" if labels["keys"] else " · no labels joined yet")
        self.summary.setText(f"{r['rows']:,} logged rows in {r['windows_total']} windows of "
                             f"{html.escape(r['window_label'])}{more}{served}{joined}")
        rule = r["alert"]
        rule_text = f"{rule['n']} of the last {rule['m']} windows"
        if rule["alerting"]:
            self.alert.setText(f"{_key(VERDICT_COLOURS['drift'])}&nbsp;<b>Alert:</b> the inputs drifted in "
                               f"{rule['drifted_of_last']} of the last {rule['m']} windows (the rule: {rule_text}).")
        else:
            self.alert.setText(f"{_key(VERDICT_COLOURS['ok'])}&nbsp;No alert: "
                               f"{rule['drifted_of_last']} of the last {rule['m']} windows drifted "
                               f"(alerts at {rule_text}).")

    def _make_chart(self, i: int, key: str) -> None:
        titles = {"rate": "Requests per second",
                  "latency": f"Latency (ms) &nbsp;{_key(plots.BATCH_COLOUR)}&nbsp;p50 {_key(P99_COLOUR)}&nbsp;p99",
                  "errors": "Error rate (%)",
                  "drift": "Features drifting (share) &nbsp;"
                           + " ".join(f"{_key(c)}&nbsp;{v}" for v, c in VERDICT_COLOURS.items()),
                  "performance": "Realised performance"}
        p = theme.chart(self.grid_host, f"live_{key}", self)
        p.setMinimumSize(160, MIN_CHART_HEIGHT)
        p.getAxis("left").setWidth(40)
        if key == "drift":
            p.setToolTip("A bar per window: the share of the model's features whose PSI against the training "
                         "reference passed the threshold; the dashed line is the share a window drifts at.")
        title = QLabel(titles[key], self.grid_host)
        title.setObjectName(f"live_{key}_title")
        title.setWordWrap(True)
        title.setTextFormat(Qt.TextFormat.RichText)
        self.titles[key] = title
        cell = QWidget(self.grid_host)
        box = QVBoxLayout(cell)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(title)
        box.addWidget(p, 1)
        self.charts[key] = p
        self.grid.addWidget(cell, i // 3, i % 3, 1, 2 if key == "performance" else 1)

    def restyle(self) -> None:
        for p in self.charts.values():
            plots.style(p, self)

    def _draw_chart(self, key: str, r: dict[str, Any]) -> None:
        import pyqtgraph as pg

        p = self.charts.get(key)
        if p is None:
            return
        ws = r["windows"]
        xs = list(range(len(ws)))
        labels = [(x, window_label(w, r["window"])) for x, w in zip(xs, ws, strict=True)]
        p.clear()
        room = max(p.width(), self.grid_host.width() // 3) - 40
        widest = p.fontMetrics().horizontalAdvance(max((t for _, t in labels), key=len, default="x")) + 14
        p.getAxis("bottom").setTicks([plots._thin(labels, max(2, room // widest))])

        def series(values: list[Any]) -> list[float]:
            return [float("nan") if v is None else float(v) for v in values]

        def line(ys: list[float], colour: str, name: str) -> None:
            p.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour,
                   symbolPen=None, connect="finite", name=name)

        def from_zero(*columns: list[float], least: float) -> None:
            """A rate, a latency or a share never goes below 0: the axis starts there (an
            auto-range around one window's value drew -0.2 requests/s), with the drift chart's
            5 % margin so that its 0 is labelled (at the very edge pyqtgraph drops it)."""
            top = max((y for ys in columns for y in ys if y == y), default=0.0)
            p.setYRange(0, max(top * 1.15, least), padding=0.05)

        if key == "rate":
            rate = series([w["requests_per_s"] for w in ws])
            line(rate, plots.BATCH_COLOUR, "requests/s")
            from_zero(rate, least=0.01)
        elif key == "latency":
            p50, p99 = (series([w["latency_ms"][q] for w in ws]) for q in ("p50", "p99"))
            line(p50, plots.BATCH_COLOUR, "p50")
            line(p99, P99_COLOUR, "p99")
            from_zero(p50, p99, least=1.0)
        elif key == "errors":
            errors = series([None if w["error_rate"] is None else 100 * w["error_rate"] for w in ws])
            line(errors, VERDICT_COLOURS["drift"], "errors")
            from_zero(errors, least=1.0)
        elif key == "drift":
            shares = [((w.get("drift") or {}).get("share")) for w in ws]
            verdicts = [((w.get("drift") or {}).get("verdict")) for w in ws]
            for verdict, colour in VERDICT_COLOURS.items():
                pts = [(x, v) for x, v, d in zip(xs, shares, verdicts, strict=True) if d == verdict and v is not None]
                if pts:
                    p.addItem(pg.BarGraphItem(x=[q[0] for q in pts], height=[max(q[1], 0.01) for q in pts], width=0.7,
                                              brush=pg.mkBrush(colour), pen=pg.mkPen(None)))
            p.setYRange(0, 1, padding=0.05)
            rule = self._rule_share()
            if rule is not None:
                p.addLine(y=rule, pen=pg.mkPen(plots.SHARE_COLOUR, width=1.5, style=Qt.PenStyle.DashLine))
        elif key == "performance":
            regression = r.get("task") == "regression"
            routes = sorted({k for w in ws for k in w["routes"]},
                            key=lambda k: ("champion", "challenger", "shadow").index(k) if k in ROUTE_COLOURS else 9)
            self.titles["performance"].setText(
                "Realised performance: " + ("mean absolute error" if regression else "accuracy") + " &nbsp;"
                + " ".join(f"{_key(ROUTE_COLOURS.get(k, plots.SHARE_COLOUR))}&nbsp;{k}" for k in routes))
            for route in routes:
                ys = series([((w["routes"].get(route) or {}).get("mae" if regression else "accuracy")) for w in ws])
                if any(y == y for y in ys):
                    line(ys, ROUTE_COLOURS.get(route, plots.SHARE_COLOUR), route)
            if not r["labels"]["keys"]:
                text = pg.TextItem("no labels joined yet", color=plots.SHARE_COLOUR, anchor=(0.5, 0.5))
                p.addItem(text)
                text.setPos(max(len(xs) - 1, 0) / 2, 0.5)
                p.setYRange(0, 1)
        if xs:
            p.setXRange(-0.5, len(xs) - 0.5, padding=0)

    def _draw_table(self, r: dict[str, Any]) -> None:
        self.routes_model.regression = r.get("task") == "regression"
        self.routes_model.set_rows([{"route": k, **v} for k, v in r["routes"].items()])
        agreement = r.get("agreement")
        if agreement:
            self.agreement.setText(f"The shadow agrees with the champion on <b>{agreement['share']:.1%}</b> of "
                                   f"{agreement['pairs']:,} rows answered by both.")
        elif len(r["routes"]) > 1:
            self.agreement.setText("A canary splits the traffic: each request has one answer, so agreement needs "
                                   "a shadow.")
        else:
            self.agreement.setText("Only the champion answered. Serve with <code>--canary challenger=10%</code> or "
                                   "<code>--shadow challenger</code> to compare.")
        rows = self.routes_model.rowCount()
        self.routes_view.setFixedHeight(self.routes_view.horizontalHeader().height()
                                        + rows * self.routes_view.verticalHeader().defaultSectionSize() + 4)

    def _rule_share(self) -> float | None:
        ws = (self.report or {}).get("windows") or []
        for w in ws:
            d = w.get("drift") or {}
            if d.get("verdict") is not None and d.get("features"):
                return None if d.get("rule") is None else float(d["rule"])
        return None
