"""Registry › Stream…: score each line of a JSON Lines file with a model version as it is written.

What ``modelyard predict --stream REF --follow FILE`` does (:mod:`modelyard.core.serving.streaming`),
in the window: choose the events file and where the predictions go, Follow, and watch the
counts, the events per second and the latency per second; Stop ends it. The stream runs on a
thread of its own (it loads the model there too) and hands only numbers to the window: a timer
on the main thread reads a snapshot of its statistics twice a second. pyqtgraph is imported on
a thread (:mod:`modelyard.ui.common.warmup`) before the chart is made.
"""

from __future__ import annotations

import html
import json
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import fit_to_screen

POLL_MS = 500
RATE_COLOUR = "#1f6feb"
MEAN_COLOUR = "#1a7f37"
MAX_COLOUR = "#bc4c00"
MIN_SPAN_S = 10  # the charts' x axis spans at least this many seconds
DOTS_UNTIL_S = 60  # each second a dot while the charts show at most this many
FILTER = "JSON Lines (*.jsonl *.ndjson *.json *.log *.txt);;All files (*)"


def predictions_path(events: str) -> str:
    """``events.jsonl`` -> ``events.predictions.jsonl`` beside it ("" while there is no file name)."""
    p = Path(events)
    if not events or not p.name or events.endswith(("/", "\\")):
        return ""
    return str(p.with_name(p.stem + ".predictions.jsonl"))


class _Run:
    """One stream on its own thread; the main thread reads ``stats`` and the fields below only."""

    def __init__(self, store: Any, ref: str, events: str, output: str, *, id_field: str, from_end: bool) -> None:
        from modelyard.core.serving.follow import FollowSource
        from modelyard.core.serving.streaming import StreamStats

        self.stop_event = threading.Event()
        self.stats = StreamStats()
        self.source = FollowSource(events, from_end=from_end, stop=self.stop_event)
        self.started: dict[str, Any] | None = None  # set once the model is loaded
        self.result: dict[str, Any] | None = None
        self.error: Exception | None = None
        self.last_error: str | None = None
        self._args = (store, ref, output, id_field)
        self.thread = threading.Thread(target=self._run, name="modelyard-stream", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from modelyard.core.serving.streaming import run_stream

        store, ref, output, id_field = self._args
        try:
            with open(output, "wb") as out:
                self.result = run_stream(store, ref, self.source, out, id_field=id_field, stats=self.stats,
                                         on_started=self._on_started, on_error_line=self._on_error_line)
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.error = exc

    def _on_started(self, info: dict[str, Any]) -> None:
        self.started = dict(info)

    def _on_error_line(self, line: bytes) -> None:
        try:
            doc = json.loads(line)
            number, message = doc.get("line"), str(doc.get("error"))
            self.last_error = message if f"ine {number} " in message else f"line {number}: {message}"
        except ValueError:
            pass

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.stop_event.set()


class StreamDialog(QDialog):
    """See the module docstring. ``updated`` is emitted after each snapshot is shown (tests wait on it)."""

    updated = Signal(dict)
    ended = Signal(dict)

    def __init__(self, store: Any, ref: str, parent: QWidget | None = None, events: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("streamDialog")
        self.setWindowTitle(f"Stream events through {ref}")
        self.store = store
        self.ref = ref
        self.run: _Run | None = None
        self.plots: dict[str, Any] = {}
        self.curves: dict[str, Any] = {}
        self._plot_loader: Any = None
        self.last: dict[str, Any] = {}

        intro = QLabel(f"Score each line of a JSON Lines file with <b>{html.escape(ref)}</b> as it is written "
                       "(as <code>tail -F</code> follows a file: it survives rotation and truncation). One "
                       "prediction per event goes to the predictions file; a bad line gets an error line there "
                       "and the stream goes on.", self)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.events_edit = QLineEdit(events or "", self)
        self.events_edit.setObjectName("eventsEdit")
        self.events_edit.setPlaceholderText("events.jsonl — one JSON object per line")
        self.events_edit.textChanged.connect(self._events_changed)
        choose = QPushButton("Choose…", self)
        choose.setObjectName("chooseEventsButton")
        choose.clicked.connect(self._choose_events)
        self.output_edit = QLineEdit(predictions_path(events or ""), self)
        self.output_edit.setObjectName("outputEdit")
        self.output_edit.setPlaceholderText("events.predictions.jsonl")
        self._output_touched = False
        self.output_edit.textEdited.connect(lambda _t: setattr(self, "_output_touched", True))
        choose_out = QPushButton("Choose…", self)
        choose_out.setObjectName("chooseOutputButton")
        choose_out.clicked.connect(self._choose_output)
        self.id_edit = QLineEdit("id", self)
        self.id_edit.setObjectName("idFieldEdit")
        self.id_edit.setToolTip("The event field copied to its prediction as 'id'")
        self.id_edit.setMaximumWidth(160)
        self.from_end = QCheckBox("Only lines written from now on", self)
        self.from_end.setObjectName("fromEndCheck")
        self.from_end.setToolTip("Unticked, the file is read from its beginning first")
        form = QFormLayout()
        form.addRow("Events file:", self._row(self.events_edit, choose))
        form.addRow("Predictions to:", self._row(self.output_edit, choose_out))
        form.addRow("Event id field:", self.id_edit)
        form.addRow("", self.from_end)

        self.status = QLabel("", self)
        self.status.setObjectName("streamStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.counts = QLabel("", self)
        self.counts.setObjectName("streamCounts")
        self.counts.setWordWrap(True)
        theme.make_heading(self.counts, 1.05)
        self.error_label = QLabel("", self)
        self.error_label.setObjectName("streamLastError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.error_label.hide()
        self.chart_box = QWidget(self)
        self.chart_box.setObjectName("streamCharts")
        self.chart_layout = QHBoxLayout(self.chart_box)
        self.chart_layout.setContentsMargins(0, 0, 0, 0)
        self.chart_note = QLabel("Events per second and latency appear here while the stream runs.", self.chart_box)
        self.chart_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chart_note.setEnabled(False)
        self.chart_layout.addWidget(self.chart_note)
        self.chart_box.setMinimumHeight(160)

        self.follow_button = QPushButton("Follow", self)
        self.follow_button.setObjectName("followButton")
        self.follow_button.setIcon(theme.icon("play"))
        self.follow_button.setDefault(True)
        self.follow_button.clicked.connect(self.toggle)
        self.close_button = QPushButton("Close", self)
        self.close_button.setObjectName("closeStreamButton")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.follow_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.counts)
        layout.addWidget(self.chart_box, 1)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self._enable()
        self._idle_status()
        fit_to_screen(self, 820, 600, parent)

    @staticmethod
    def _row(edit: QWidget, button: QWidget) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return w

    # ------------------------------------------------------------------ choosing files
    def _choose_events(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The file the events are written to", self.events_edit.text(),
                                              FILTER)
        if path:
            self.events_edit.setText(path)

    def _choose_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write the predictions to", self.output_edit.text(),
                                              "JSON Lines (*.jsonl)")
        if path:
            self.output_edit.setText(path)
            self._output_touched = True

    def _events_changed(self, text: str) -> None:
        if not self._output_touched:
            self.output_edit.setText(predictions_path(text.strip()))
        self._enable()
        self._idle_status()

    def _idle_status(self) -> None:
        if self.run is not None and self.run.running:
            return
        if self.run is None:
            self.status.setText("Follow reads the file, then waits for the lines written to it."
                                if self.events_edit.text().strip() else
                                "Choose the file the events are written to, then Follow.")

    def _enable(self) -> None:
        running = self.run is not None and self.run.running
        self.follow_button.setEnabled(running or bool(self.events_edit.text().strip()))
        for w in (self.events_edit, self.output_edit, self.id_edit, self.from_end):
            w.setEnabled(not running)

    # ------------------------------------------------------------------ running
    def toggle(self) -> None:
        if self.run is not None and self.run.running:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        events = self.events_edit.text().strip()
        output = self.output_edit.text().strip()
        if not events or self.store is None:
            return False
        if not output or Path(output).expanduser().resolve() == Path(events).expanduser().resolve():
            self.status.setText("Choose a predictions file other than the events file.")
            return False
        if not Path(output).expanduser().parent.is_dir():
            self.status.setText(f"There is no folder {html.escape(str(Path(output).parent))} for the predictions.")
            return False
        self._load_plots()
        self.error_label.hide()
        self.run = _Run(self.store, self.ref, str(Path(events).expanduser()), str(Path(output).expanduser()),
                        id_field=self.id_edit.text().strip() or "id", from_end=self.from_end.isChecked())
        self.status.setText(f"Loading <b>{html.escape(self.ref)}</b>…")
        self.follow_button.setText("Stop")
        self.follow_button.setIcon(theme.icon("stop"))
        self._enable()
        self.timer.start()
        return True

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()  # the follower wakes within 0.1 s; the timer notices the end
            self.follow_button.setEnabled(False)
            self.status.setText("Stopping…")

    def _poll(self) -> None:
        run = self.run
        if run is None:
            self.timer.stop()
            return
        snap = run.stats.snapshot(series=True)
        self.last = snap
        if run.started is not None and run.running:
            model = run.started.get("model") or self.ref
            self.status.setText(f"Following <b>{html.escape(self.events_edit.text().strip())}</b> with "
                                f"<b>{html.escape(model)}</b>; predictions to "
                                f"{html.escape(self.output_edit.text().strip())}.")
        self._show(snap)
        if run.last_error:
            self.error_label.setText(f"Last error: {run.last_error}")
            self.error_label.setToolTip(run.last_error)
            self.error_label.show()
        if not run.running:
            self.timer.stop()
            self.follow_button.setText("Follow")
            self.follow_button.setIcon(theme.icon("play"))
            self._enable()
            if run.error is not None:
                from modelyard.core.common.errors import ModelyardError

                text = run.error.message if isinstance(run.error, ModelyardError) else str(run.error)
                self.status.setText(f"The stream stopped: {html.escape(text)}")
            else:
                self.status.setText(f"Stopped. The predictions are in {html.escape(self.output_edit.text().strip())}.")
            self.ended.emit(snap)
        self.updated.emit(snap)

    def _show(self, snap: dict[str, Any]) -> None:
        lat = snap.get("latency_ms") or {}
        parts = [plural(int(snap.get("predictions") or 0), "prediction"),
                 plural(int(snap.get("errors") or 0), "error line")]
        xs, rate, mean, top = self._dense(snap)
        if self.run is not None and self.run.running:
            parts.append(f"{int(rate[-1]) if rate else 0:,} events/s in the last second")
        elif snap.get("events_per_s") is not None:
            parts.append(f"{snap['events_per_s']:,.0f} events/s on average")
        if lat.get("p50") is not None:
            parts.append(f"latency p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms")
        self.counts.setText(" · ".join(parts))
        if self.curves and xs:
            for name, ys, colour in (("rate", rate, RATE_COLOUR), ("mean", mean, MEAN_COLOUR), ("max", top, MAX_COLOUR)):
                # a dot per second while they are few: a lone second is no line at all
                dots = ({"symbol": "o", "symbolSize": 5, "symbolPen": None, "symbolBrush": colour}
                        if len(xs) <= DOTS_UNTIL_S else {"symbol": None})
                self.curves[name].setData(xs, ys, connect="finite", **dots)
            finite = [v for v in top if v == v]
            # from 0 (a dip is not a drop), with a 5 % margin so that the 0 is labelled (as the Live tab's)
            self.plots["rate"].setYRange(0, max(max(rate), 1) * 1.1, padding=0.05)
            self.plots["latency"].setYRange(0, max(finite or [1.0]) * 1.1, padding=0.05)
            for plot in self.plots.values():  # whole seconds from the first event, at least MIN_SPAN_S of them
                plot.setXRange(xs[0], max(xs[-1], xs[0] + MIN_SPAN_S), padding=0.02)

    def _dense(self, snap: dict[str, Any]) -> tuple[list[int], list[int], list[float], list[float]]:
        """Per second from the first event: events (0 in a quiet second), mean and max latency (NaN
        then). While the stream runs the current second is left out: it is not over yet."""
        series = snap.get("series") or []
        if not series:
            return [], [], [], []
        last = series[-1][0]
        if self.run is not None and self.run.running:
            last = min(last, int(snap.get("elapsed_s") or 0) - 1)
        by_second = {s[0]: s for s in series}
        xs = list(range(series[0][0], last + 1))
        nan = float("nan")
        rate = [int(by_second[x][1]) if x in by_second else 0 for x in xs]
        mean = [float(by_second[x][2]) if x in by_second and by_second[x][2] is not None else nan for x in xs]
        top = [float(by_second[x][3]) if x in by_second else nan for x in xs]
        return xs, rate, mean, top

    # ------------------------------------------------------------------ the chart
    def _load_plots(self) -> None:
        if self.plots or self._plot_loader is not None:
            return
        from modelyard.ui.common import warmup

        self._plot_loader = warmup.start(("numpy", "pyqtgraph"))
        self.chart_note.setText("Loading the chart…")
        QTimer.singleShot(50, self, self._build_plots)

    def _build_plots(self) -> None:
        if self.plots:
            return
        if self._plot_loader.is_alive():  # pyqtgraph is still loading on its thread
            QTimer.singleShot(50, self, self._build_plots)
            return
        import pyqtgraph as pg

        self.chart_note.hide()
        latency_title = (f"Latency: <span style='color:{MEAN_COLOUR}'>mean</span>, "
                         f"<span style='color:{MAX_COLOUR}'>max</span> per second")
        for name, title, units in (("rate", "Events per second", "events/s"), ("latency", latency_title, "ms")):
            plot = theme.chart(self.chart_box, f"{name}Plot", self)
            plot.setTitle(title, size="9pt")
            plot.setLabel("bottom", "seconds")
            plot.setLabel("left", units)
            self.chart_layout.addWidget(plot, 1)
            self.plots[name] = plot
        self.curves["rate"] = self.plots["rate"].plot(pen=pg.mkPen(RATE_COLOUR, width=2))
        self.curves["mean"] = self.plots["latency"].plot(pen=pg.mkPen(MEAN_COLOUR, width=2))
        self.curves["max"] = self.plots["latency"].plot(pen=pg.mkPen(MAX_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        if self.last:
            self._show(self.last)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:
        if self.run is not None and self.run.running:
            self.run.stop()  # its thread ends on its own within 0.1 s; nothing here waits for it
        self.timer.stop()
        super().done(result)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self.run is not None and self.run.running:
            self.run.stop()
        self.timer.stop()
        super().closeEvent(event)
