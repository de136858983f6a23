"""The evidence a promotion is judged on, as a reviewer reads it: one snapshot document
(docs/governance.md, "The snapshot document") shown as

* a verdict banner: the gates pass, or which fail and why, in words;
* the metrics table: candidate, champion and their difference, each with its interval;
* the group table: each sensitive column's groups (rows, metrics with intervals) and a summary
  row with the gap and ratio between groups, marked where a fairness gate fails;
* charts (pyqtgraph): permutation importance (bars with error bars), partial dependence for the
  top features, the calibration curve against the diagonal;
* the card's review fields (a missing one marked as required before a request).

The view only renders the dict it is given (:meth:`EvidenceView.set_snapshot`): it never reads the
store. pyqtgraph is imported on a thread (:mod:`modelyard.ui.common.warmup`) the first time a
chart is needed; the tables and texts show at once, the charts a moment later.
"""

from __future__ import annotations

import html
import sys
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.registry.card_evidence import (
    failing_fairness,
    interval_text,
    number,
)
from modelyard.core.registry.cards import REVIEW_FIELDS
from modelyard.ui.common import theme, turns
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import rows_view

BAR_COLOUR = "#4c72b0"
LINE_COLOUR = "#1f6feb"
DIAGONAL_COLOUR = "#8c959f"
PDP_CHARTS = 3
IMPORTANCE_BARS = 12
FEATURE_CHARS = 18


def gate_lines(gates: dict[str, Any]) -> list[str]:
    """The gate settings in words, when no report lists them ("accuracy at least 0.8")."""
    out = [f"{k} at least {v}" for k, v in (gates.get("min_metrics") or {}).items()]
    beat = gates.get("beat_champion") or {}
    if beat.get("metric"):
        out.append(f"beat the champion on {beat['metric']}")
    for rule in gates.get("fairness") or []:
        if isinstance(rule, dict):
            if rule.get("max_gap") is not None:
                out.append(f"{rule.get('metric')} gap between groups of {rule.get('column')} at most {rule['max_gap']}")
            if rule.get("min_ratio") is not None:
                out.append(f"{rule.get('metric')} ratio between groups of {rule.get('column')} at least "
                           f"{rule['min_ratio']}")
    return out


def _fail_brush() -> QBrush:
    colour = QColor(theme.status_colour("failed"))
    colour.setAlpha(48)
    return QBrush(colour)


def difference_word(row: dict[str, Any]) -> str:
    """"better", "worse" or "no clear difference": whether the difference's interval excludes 0,
    and in which direction is better for this metric."""
    diff = row.get("difference") or {}
    low, high = number(diff.get("low")), number(diff.get("high"))
    if low is None or high is None:
        return ""
    if low <= 0 <= high:
        return "no clear difference"
    up = low > 0
    return "better" if up == bool(row.get("higher_is_better", True)) else "worse"


class MetricsModel(RowsTableModel[dict]):
    headers = ("Metric", "Candidate", "Champion", "Difference", "Verdict (95%)")

    def cell(self, row: dict, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return str(row.get("metric")) + ("" if row.get("higher_is_better", True) else " (lower is better)")
            if column == 4:
                return difference_word(row)
            return interval_text(row.get(("candidate", "champion", "difference")[column - 1]), compact=True) or "—"
        if role == Qt.ItemDataRole.ForegroundRole and column == 4:
            word = difference_word(row)
            if word in ("better", "worse"):
                return QBrush(theme.status_colour("ok" if word == "better" else "failed"))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class GroupsModel(RowsTableModel[str]):
    """One sensitive column of the evidence: a row per metric, a column per group (each metric with
    its interval), then the gap (best minus worst group) and the ratio (worst over best); the gap
    and ratio of a metric whose fairness gate fails are marked."""

    headers: tuple[str, ...] = ("Metric",)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.column = ""
        self.groups: list[dict[str, Any]] = []
        self.gaps: dict[str, Any] = {}
        self.failing: dict[tuple[str, str], str] = {}

    def set_column(self, col: dict[str, Any], failing: dict[tuple[str, str], str]) -> None:
        groups = [r for r in col.get("rows") or [] if isinstance(r, dict)]
        metrics = list(dict.fromkeys(k for r in groups for k in (r.get("metrics") or {})))
        self.beginResetModel()
        self.column, self.groups, self.gaps = str(col.get("column")), groups, dict(col.get("gaps") or {})
        self.failing = {k: v for k, v in failing.items() if k[0] == self.column}
        n = [r.get("n") for r in groups]
        self.headers = ("Metric", *(f"{r.get('group')} ({x:,})" if isinstance(x, int) else str(r.get("group"))
                                    for r, x in zip(groups, n, strict=True)), "Gap", "Ratio")
        self.rows = metrics
        self.endResetModel()

    def failing_cells(self) -> list[tuple[int, int]]:
        """(row, column) of each gap and ratio cell whose metric breaks a fairness gate."""
        last = len(self.headers) - 1
        return [(i, c) for i, k in enumerate(self.rows) if (self.column, k) in self.failing for c in (last - 1, last)]

    def cell(self, row: str, column: int, role: int) -> Any:
        gap_col = len(self.headers) - 2
        failing = (self.column, row) in self.failing
        g = self.gaps.get(row) or {}
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return row.replace("_", " ")
            if column >= gap_col:
                value = number(g.get("gap" if column == gap_col else "ratio"))
                text = f"{value:.3f}" if value is not None else "—"
                return ("✗ " + text) if failing and column == gap_col else text
            return interval_text((self.groups[column - 1].get("metrics") or {}).get(row), compact=True) or "—"
        if failing and column >= gap_col:
            if role == Qt.ItemDataRole.BackgroundRole:
                return _fail_brush()
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(theme.status_colour("failed"))
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
        if role == Qt.ItemDataRole.ToolTipRole and column >= gap_col:
            tip = (f"{row} by {self.column}: the best group ({g.get('best')}) minus the worst ({g.get('worst')}), "
                   "and the worst divided by the best")
            why = self.failing.get((self.column, row))
            return tip + (f"\nFails its fairness gate: {why}." if why else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _fit_height(view: QTableView) -> None:
    """The table as tall as its rows, and its sideways scroll bar when its columns are wider than
    it (the page scrolls down, not the table; a value is never cut)."""
    view.resizeColumnsToContents()
    view.resizeRowsToContents()
    header = view.horizontalHeader()
    wide = sum(header.sectionSize(i) for i in range(header.count())) > view.viewport().width()
    rows = sum(view.rowHeight(i) for i in range(view.model().rowCount()))
    bar = view.horizontalScrollBar().sizeHint().height() if wide else 0
    view.setFixedHeight(rows + header.height() + bar + 2 * view.frameWidth() + 2)


def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    theme.make_heading(label, 1.1)
    return label


class EvidenceView(QWidget):
    """One snapshot's evidence (see the module's docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidenceView")
        self.snapshot: dict[str, Any] | None = None
        self.failing: dict[tuple[str, str], str] = {}
        self.plots: dict[str, Any] = {}  # name -> pyqtgraph PlotWidget, made on first use
        self._plot_loader: Any = None
        self._plot_poll = QTimer(self)
        self._drawing: turns.Turns | None = None  # the charts' turns still to run
        self._plot_poll.setSingleShot(True)
        self._plot_poll.setInterval(50)
        self._plot_poll.timeout.connect(self._draw_plots)

        self.stack = QStackedWidget(self)
        self.empty = QLabel(self)
        self.empty.setObjectName("evidenceEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.RichText)
        self.empty.setContentsMargins(theme.SPACE_XL, theme.SPACE_XL, theme.SPACE_XL, theme.SPACE_XL)
        self.stack.addWidget(self.empty)

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        # the page wraps its texts to the width; a table wider than the view scrolls sideways itself
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        page = QWidget(self.scroll)
        page.setObjectName("evidencePage")
        lay = QVBoxLayout(page)
        lay.setContentsMargins(theme.SPACE_S, theme.SPACE_S, theme.SPACE_M, theme.SPACE_M)
        lay.setSpacing(theme.SPACE_S)

        self.banner = QLabel(page)
        self.banner.setObjectName("verdictBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setContentsMargins(theme.SPACE_M, theme.SPACE_M, theme.SPACE_M, theme.SPACE_M)
        self.banner.setAutoFillBackground(True)
        self.gates_label = self._text(page, "evidenceGates")
        self.notice = self._text(page, "evidenceNotice")  # no evidence yet: what to do
        lay.addWidget(self.banner)
        lay.addWidget(self.gates_label)
        lay.addWidget(self.notice)

        # what only evidence shows: hidden as a whole when the snapshot has none
        self.evidence_box = QWidget(page)
        box = QVBoxLayout(self.evidence_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(theme.SPACE_S)
        self.rows_label = self._text(self.evidence_box, "evidenceRows")
        box.addWidget(self.rows_label)
        box.addWidget(_heading("Candidate against the champion", self.evidence_box))
        self.metrics_model = MetricsModel(self)
        self.metrics_view = self._table(self.evidence_box, "evidenceMetrics", self.metrics_model)
        box.addWidget(self.metrics_view)

        box.addWidget(_heading("Groups", self.evidence_box))
        self.groups_note = self._text(self.evidence_box, "groupsNote")
        box.addWidget(self.groups_note)
        # one table per sensitive column (a handful): its groups side by side, a row per metric
        self.groups_box = QVBoxLayout()
        self.groups_box.setSpacing(theme.SPACE_S)
        box.addLayout(self.groups_box)
        self.group_views: list[tuple[QLabel, QTableView, GroupsModel]] = []

        box.addWidget(_heading("What the model relies on", self.evidence_box))
        self.importance_note = self._text(self.evidence_box, "importanceNote")
        box.addWidget(self.importance_note)
        self.charts = QGridLayout()
        self.charts.setSpacing(theme.SPACE_M)
        box.addLayout(self.charts)
        self.charts_note = self._text(self.evidence_box, "chartsNote")
        box.addWidget(self.charts_note)
        lay.addWidget(self.evidence_box)

        lay.addWidget(_heading("The card's review fields", page))
        self.card_label = self._text(page, "evidenceCard")
        lay.addWidget(self.card_label)
        lay.addStretch(1)
        self.scroll.setWidget(page)
        self.stack.addWidget(self.scroll)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)
        self.set_snapshot(None)

    # ------------------------------------------------------------------ building blocks
    def _text(self, parent: QWidget, name: str) -> QLabel:
        label = QLabel(parent)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _table(self, parent: QWidget, name: str, model: RowsTableModel) -> QTableView:
        view = rows_view(parent, name, model)
        view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return view

    # ------------------------------------------------------------------ states
    def show_message(self, headline: str, body: str = "") -> None:
        """An empty state: what is (not) here and what to do."""
        self.snapshot = None
        self.empty.setText(f"<p style='font-size:large'><b>{html.escape(headline)}</b></p>"
                           + (f"<p>{html.escape(body)}</p>" if body else ""))
        self.stack.setCurrentWidget(self.empty)

    def show_computing(self, ref: str) -> None:
        """The evidence of ``ref`` is being computed (a job is running)."""
        self.show_message(f"Evidence for {ref} is being computed…",
                          "Its metrics, group table and explanations appear here when the job finishes "
                          "(see the Jobs panel for its progress).")

    def set_snapshot(self, snapshot: dict[str, Any] | None) -> None:
        """Show ``snapshot`` (a snapshot document); None: nothing is selected. Without evidence the
        verdict, the gates and the card still show, with what to do about the evidence."""
        self._stop_drawing()  # charts still being drawn for the snapshot shown before
        if not snapshot:
            self.show_message("Nothing to review yet.",
                              "Select a version or a promotion request to see the evidence it is judged on.")
            return
        self.snapshot = snapshot
        evidence = snapshot.get("evidence") if isinstance(snapshot.get("evidence"), dict) else None
        self.failing = failing_fairness(snapshot.get("gates"), evidence)
        self.banner.setText(self._verdict_html(snapshot))
        self._paint_banner(bool((snapshot.get("gate_report") or {}).get("passed")))
        self.gates_label.setText(self._gates_html(snapshot))
        self.card_label.setText(self._card_html(snapshot.get("card") or {}))
        self.evidence_box.setVisible(evidence is not None)
        self.notice.setVisible(evidence is None)
        self.stack.setCurrentWidget(self.scroll)
        if evidence is None:
            ref = html.escape(str(snapshot.get("candidate") or "this version"))
            self.notice.setText(f"<b>No evidence yet for {ref}.</b> Compute it with Compute evidence in the "
                                f"versions' menu, or <code>modelyard model evidence {ref}</code> (a registration in "
                                "the window computes it). A promotion request needs it.")
            return
        self.rows_label.setText(self._rows_html(snapshot, evidence))
        self.metrics_model.set_rows([r for r in evidence.get("metrics") or [] if isinstance(r, dict)])
        self.metrics_model.headers = ("Metric", "Candidate", f"Champion {evidence.get('champion') or ''}".strip(),
                                      "Difference", "Verdict (95%)")
        self.metrics_model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, 4)
        groups = [g for g in evidence.get("groups") or [] if isinstance(g, dict)]
        self._set_groups(groups)
        self.groups_note.setText(self._groups_html(evidence, groups))
        imp = evidence.get("importance") or {}
        note = (f"How much {html.escape(str(imp.get('metric') or 'the score'))} drops when a feature's values are "
                f"shuffled on the held-out rows (mean of {html.escape(str(imp.get('repeats') or '?'))} repeats, "
                "the whiskers one standard deviation).")
        if imp.get("warning"):
            note += (f"<br><span style='color:{theme.status_colour('warning').name()}'>⚠ "
                     f"{html.escape(str(imp['warning']))}</span>")
        self.importance_note.setText(note)
        self._fit_tables()
        self._draw_plots()

    def _set_groups(self, groups: list[dict[str, Any]]) -> None:
        while len(self.group_views) < len(groups):
            i = len(self.group_views)
            title = QLabel(self.evidence_box)
            title.setObjectName(f"groupTitle{i}")
            model = GroupsModel(self)
            view = self._table(self.evidence_box, f"evidenceGroups{i}", model)
            view.horizontalHeader().setStretchLastSection(False)
            self.groups_box.addWidget(title)
            self.groups_box.addWidget(view)
            self.group_views.append((title, view, model))
        for i, (title, view, model) in enumerate(self.group_views):
            shown = i < len(groups)
            title.setVisible(shown)
            view.setVisible(shown)
            if shown:
                model.set_column(groups[i], self.failing)
                title.setText(f"<b>By {html.escape(model.column)}</b>")

    def _fit_tables(self) -> None:
        _fit_height(self.metrics_view)
        for _title, view, model in self.group_views:
            if view.isVisibleTo(self) and model.rows:
                _fit_height(view)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.stack.currentWidget() is self.scroll:
            QTimer.singleShot(0, self, self._fit_tables)  # after the tables took their new width

    # ------------------------------------------------------------------ texts
    def _verdict_html(self, snapshot: dict[str, Any]) -> str:
        report = snapshot.get("gate_report") or {}
        cand, target = html.escape(str(snapshot.get("candidate"))), html.escape(str(snapshot.get("target")))
        champion = snapshot.get("champion")
        if champion is not None and champion == snapshot.get("candidate") and snapshot.get("target") == "champion":
            move = f"{cand} is the champion"  # nothing to replace: the view shows the champion itself
        else:
            move = f"{cand} → {target}" + (f" (replacing {html.escape(str(champion))})" if champion else "")
        checked, reasons = report.get("checked") or [], report.get("reasons") or []
        if not checked:
            return f"<b>No promotion gates</b> are set for this model · {move}"
        if report.get("passed"):
            return f"<b>✔ The gates pass</b> ({len(checked)} checked) · {move}"
        lines = "".join(f"<br>✗ {html.escape(str(r))}" for r in reasons)
        return (f"<b>✗ The gates block this promotion</b>: {len(reasons)} of {len(checked)} "
                f"{'check fails' if len(checked) == 1 else 'checks fail'} · {move}{lines}")

    def _gates_html(self, snapshot: dict[str, Any]) -> str:
        """The gates as they were set when the snapshot was taken (a replay shows its own, and says so)."""
        checked = (snapshot.get("gate_report") or {}).get("checked") or []
        if not checked:
            checked = gate_lines(snapshot.get("gates") or {})
        when = {"request": "when it was asked", "decision": "when it was decided"}.get(snapshot.get("kind") or "",
                                                                                      "today")
        if not checked:
            return f"<i>Gates {when}:</i> none set."
        return f"<i>Gates {when}:</i> " + " · ".join(html.escape(str(c)) for c in checked)

    def _paint_banner(self, passed: bool) -> None:
        colour = QColor(theme.status_colour("ok" if passed else "failed"))
        back = QColor(colour)
        back.setAlpha(40)
        self.banner.setStyleSheet(f"QLabel#verdictBanner {{ background-color: rgba({back.red()}, {back.green()}, "
                                  f"{back.blue()}, 40); border-left: 4px solid {colour.name()}; }}")

    def _rows_html(self, snapshot: dict[str, Any], evidence: dict[str, Any]) -> str:
        rows = evidence.get("rows") or {}
        n = rows.get("n")
        conf = number(evidence.get("confidence")) or 0.95
        champion = evidence.get("champion")
        text = (f"Measured on {n:,} held-out rows" if isinstance(n, int) else "Measured on the held-out rows")
        if rows.get("split"):
            text += f" ({html.escape(str(rows['split']))})"
        text += (f", against the champion {html.escape(str(champion))} on the same rows" if champion
                 else ", with no champion to compare with")
        n_boot = evidence.get("n_boot")
        text += f"; {conf:.0%} intervals from {f'{n_boot:,}' if isinstance(n_boot, int) else '?'} bootstrap resamples."
        kind = snapshot.get("kind")
        if kind in ("request", "decision"):
            what = "requested" if kind == "request" else "decided"
            text += (f"<br><i>As it was when {what} on {html.escape(str(snapshot.get('at') or '')[:16]).replace('T', ' ')}"
                     + (f" by {html.escape(str(snapshot.get('by')))}" if snapshot.get("by") else "") + ".</i>")
        for note in evidence.get("notes") or []:
            text += f"<br><span style='color:palette(placeholder-text)'>{html.escape(str(note))}</span>"
        return text

    def _groups_html(self, evidence: dict[str, Any], groups: list[dict[str, Any]]) -> str:
        if not groups:
            return ("No sensitive columns were marked, so no group metrics were computed. Mark them in the model's "
                    "gates (sensitive columns) and compute the evidence again.")
        text = ("Each group's metrics with their intervals (the number of rows beside its name); the gap is the best "
                "group minus the worst, the ratio the worst divided by the best.")
        fail = theme.status_colour("failed").name()
        for (column, metric), why in sorted(self.failing.items()):
            text += (f"<br><span style='color:{fail}'><b>✗ {html.escape(metric)} by {html.escape(column)}</b> "
                     f"fails its fairness gate: {html.escape(why)}.</span>")
        return text

    def _card_html(self, card: dict[str, Any]) -> str:
        fail = theme.status_colour("failed").name()
        parts = []
        for key, label in REVIEW_FIELDS.items():
            text = str(card.get(key) or "").strip()
            if text:
                parts.append(f"<b>{label}</b><br>{html.escape(text).replace(chr(10), '<br>')}")
            else:
                parts.append(f"<b>{label}</b> <span style='color:{fail}'>— not written; required before a "
                             "promotion request (Model card tab, Edit notes…)</span>")
        return "<br><br>".join(parts)

    # ------------------------------------------------------------------ charts
    def _draw_plots(self) -> None:
        evidence = (self.snapshot or {}).get("evidence")
        if not isinstance(evidence, dict) or self.stack.currentWidget() is not self.scroll:
            return
        if "pyqtgraph" not in sys.modules or (self._plot_loader is not None and self._plot_loader.is_alive()):
            if self._plot_loader is None:
                from modelyard.ui.common import warmup

                self._plot_loader = warmup.start(("numpy", "pyqtgraph"))
            self.charts_note.setText("Drawing the charts…")
            self._plot_poll.start()
            return
        self.charts_note.setText("")
        imp = [f for f in (evidence.get("importance") or {}).get("features") or [] if isinstance(f, dict)]
        pdp = [p for p in evidence.get("partial_dependence") or [] if isinstance(p, dict)][:PDP_CHARTS]
        cal = evidence.get("calibration") if isinstance(evidence.get("calibration"), dict) else None
        # one chart per turn of the event loop: making a pyqtgraph plot takes 15-40 ms of the main
        # thread, and all of them at once held the window ~100 ms when the tab was shown
        steps: list[Any] = [lambda: self._draw_importance(imp[:IMPORTANCE_BARS])]
        steps += [lambda i=i: self._draw_pdp(i, pdp[i] if i < len(pdp) else None) for i in range(PDP_CHARTS)]
        steps.append(lambda: self._draw_calibration(cal))
        self._stop_drawing()
        self._drawing = turns.in_turns(self, steps)
        missing = [what for what, ok in (("importance", imp), ("partial dependence", pdp), ("calibration", cal))
                   if not ok]
        if missing:
            self.charts_note.setText("Not computed: " + ", ".join(missing)
                                     + (" (a regression has no calibration curve)." if missing == ["calibration"]
                                        and evidence.get("task") == "regression" else "."))

    def _stop_drawing(self) -> None:
        if self._drawing is not None:
            self._drawing.cancel()
            self._drawing = None

    def _new_plot(self, name: str, row: int, column: int, span: int = 1, height: int = 220) -> Any:
        import pyqtgraph as pg

        plot = self.plots.get(name)
        if plot is not None:
            plot.clear()
            return plot
        plot = pg.PlotWidget(self.evidence_box)
        plot.setObjectName(name)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.setMinimumHeight(height)
        plot.setMinimumWidth(200)
        theme.style_plot(plot, self)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.showGrid(x=True, y=True, alpha=0.2)
        self.charts.addWidget(plot, row, column, 1, span)
        self.plots[name] = plot
        return plot

    def _draw_importance(self, features: list[dict[str, Any]]) -> None:
        import pyqtgraph as pg

        plot = self._new_plot("importancePlot", 0, 0, 2, height=max(180, 24 * len(features) + 60))
        plot.setVisible(bool(features))
        if not features:
            return
        names = [str(f.get("feature")) for f in features][::-1]  # the most important on top
        means = [number(f.get("mean")) or 0.0 for f in features][::-1]
        stds = [number(f.get("std")) or 0.0 for f in features][::-1]
        ys = list(range(len(names)))
        plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=means, brush=pg.mkBrush(BAR_COLOUR),
                                     pen=pg.mkPen(None)))
        plot.addItem(pg.ErrorBarItem(x=_array(means), y=_array(ys),
                                     left=_array(stds), right=_array(stds), beam=0.2, pen=pg.mkPen("#57606a")))
        left = plot.getAxis("left")
        shown = [n if len(n) <= FEATURE_CHARS else n[: FEATURE_CHARS - 1] + "…" for n in names]
        left.setWidth(max(plot.fontMetrics().horizontalAdvance(n) for n in shown) + 18)  # never hides a name
        left.setTicks([list(zip(ys, shown, strict=True))])
        plot.setLabel("bottom", "drop of the score when shuffled")
        plot.showGrid(x=True, y=False, alpha=0.2)
        plot.setYRange(-0.6, len(names) - 0.4, padding=0)
        plot.setXRange(min(0.0, min(m - s for m, s in zip(means, stds, strict=True))),
                       max(m + s for m, s in zip(means, stds, strict=True)) * 1.05 or 1.0)
        plot.setToolTip("\n".join(f"{n}: {m:.4f} ± {s:.4f}" for n, m, s in zip(names[::-1], means[::-1], stds[::-1],
                                                                                strict=True)))

    def _draw_pdp(self, i: int, p: dict[str, Any] | None) -> None:
        import pyqtgraph as pg

        plot = self._new_plot(f"pdpPlot{i}", 1 + i // 2, i % 2, height=200)
        plot.setVisible(p is not None)
        if p is None:
            return
        grid, avg = list(p.get("grid") or []), [number(v) for v in p.get("average") or []]
        pts = [(x, y) for x, y in zip(grid, avg, strict=False) if y is not None]
        categorical = p.get("kind") == "categorical" or not all(number(x) is not None for x, _ in pts)
        xs = list(range(len(pts))) if categorical else [float(x) for x, _ in pts]
        ys = [y for _, y in pts]
        plot.plot(xs, ys, pen=pg.mkPen(LINE_COLOUR, width=2), symbol="o", symbolSize=5,
                  symbolBrush=LINE_COLOUR, symbolPen=None)
        bottom = plot.getAxis("bottom")
        chars = 11 if len(pts) >= 3 else 18  # a small chart: names are cut (the tooltip has them whole)
        bottom.setTicks([[(j, str(x) if len(str(x)) <= chars else str(x)[:chars - 1] + "…")
                          for j, (x, _) in enumerate(pts)]] if categorical else None)
        if categorical:  # half a category of room each side: the end labels are not dropped
            plot.setXRange(-1.0, len(pts), padding=0)
        of = p.get("of")
        if str(of or "").startswith("P("):  # a probability on its whole scale: a 0.008 wiggle is not a V
            plot.setYRange(0.0, 1.0, padding=0.05)
        plot.setTitle(html.escape(str(p.get("feature"))), size="10pt")
        plot.setLabel("left", str(of) if of else "prediction")  # "P(yes)" or "predicted price"
        plot.setToolTip(f"Partial dependence on {p.get('feature')}: the average "
                        + (str(of) if of else "prediction")
                        + " when every held-out row gets that value"
                        + ("\n" + ", ".join(f"{x}: {y:.3f}" for x, y in pts) if categorical else ""))

    def _draw_calibration(self, cal: dict[str, Any] | None) -> None:
        import pyqtgraph as pg

        plot = self._new_plot("calibrationPlot", 2, 1, height=200)
        plot.setVisible(cal is not None)
        if cal is None:
            return
        plot.plot([0, 1], [0, 1], pen=pg.mkPen(DIAGONAL_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        xs = [number(v) for v in cal.get("prob_pred") or []]
        ys = [number(v) for v in cal.get("prob_true") or []]
        pts = [(x, y) for x, y in zip(xs, ys, strict=False) if x is not None and y is not None]
        plot.plot([x for x, _ in pts], [y for _, y in pts], pen=pg.mkPen(LINE_COLOUR, width=2), symbol="o",
                  symbolSize=5, symbolBrush=LINE_COLOUR, symbolPen=None)
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(0, 1, padding=0.02)
        brier = number(cal.get("brier"))
        plot.setTitle("Calibration" + (f" · Brier {brier:.3f}" if brier is not None else ""), size="10pt")
        plot.setLabel("bottom", "predicted probability")
        plot.setLabel("left", f"observed share of {cal.get('of')}")
        plot.setToolTip("Predicted probability against the observed share; the dashed diagonal is perfect "
                        "calibration")


def _array(values: list[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=float)
