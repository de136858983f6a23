"""One column in detail: a full histogram or category bar chart (pyqtgraph) and its statistics.

pyqtgraph is imported when the first detail view is built, not at start-up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.delegates import values_all_differ
from modelyard.ui.datasets.profile_table import fmt_number


class ColumnDetail(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        self.setObjectName("columnDetail")
        self.title = QLabel(self)
        self.title.setObjectName("columnTitle")
        theme.make_heading(self.title, 1.2)
        self.stats = QLabel(self)
        self.stats.setObjectName("columnStats")
        self.stats.setTextFormat(Qt.TextFormat.RichText)
        self.stats.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.stats.setMinimumWidth(200)
        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("columnPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.plot.setMinimumHeight(80)
        self.bars: Any = None
        self.note: Any = None  # a pyqtgraph TextItem in place of a chart that would say nothing
        row = QHBoxLayout()
        row.setSpacing(theme.SPACE_L)
        row.addWidget(self.plot, 1)
        stats_scroll = QScrollArea(self)  # a short window scrolls the statistics instead of clipping the table above
        stats_scroll.setWidget(self.stats)
        stats_scroll.setWidgetResizable(True)
        stats_scroll.setFrameShape(QFrame.Shape.NoFrame)
        stats_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        stats_scroll.setMinimumWidth(self.stats.minimumWidth() + 16)
        row.addWidget(stats_scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_M, theme.SPACE_M, theme.SPACE_M, theme.SPACE_M)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.title)
        layout.addLayout(row, 1)
        self._apply_palette()

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        fg = pal.color(QPalette.ColorRole.Text)
        for axis in ("left", "bottom"):
            ax = self.plot.getAxis(axis)
            ax.setPen(fg)
            ax.setTextPen(fg)

    def show_column(self, profile: dict[str, Any], schema_type: str = "") -> None:
        pg = self._pg
        name = profile.get("name", "")
        self.title.setText(f"{name}  <span style='font-weight:normal'>· {schema_type or profile.get('kind', '')}</span>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.plot.clear()
        self.bars = self.note = None
        self.plot.getAxis("left").setTicks(None)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        bottom = self.plot.getAxis("bottom")
        hist = profile.get("histogram")
        if hist and hist.get("counts"):
            labels = hist["edges"]
            edges = [_position(e) for e in labels]  # a date column's edges are ISO text
            counts = hist["counts"]
            xs = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
            widths = [(b - a) * 0.95 for a, b in zip(edges[:-1], edges[1:])]
            self.bars = pg.BarGraphItem(x=xs, height=counts, width=widths, brush=colour, pen=pg.mkPen(None))
            dates = bool(labels) and isinstance(labels[0], str)
            bottom.enableAutoSIPrefix(not dates)  # no "(x1e+09)" under dates
            if dates:
                last = len(labels) - 1
                shown = sorted({last // 4, last // 2, (3 * last) // 4})
                days_only = edges[-1] - edges[0] > 3 * 86400  # a time of day only where the span is short
                bottom.setTicks([[(edges[i], _date_label(labels[i], days_only)) for i in shown]])
            else:
                bottom.setTicks(None)
            self.plot.setLabel("bottom", name)
        else:
            top = profile.get("top") or []
            if values_all_differ(profile, schema_type):
                self._say_instead_of_a_chart(profile)
                return
            labels = [str(t["value"]) for t in top]
            counts = [t["count"] for t in top]
            self.bars = pg.BarGraphItem(x=list(range(len(top))), height=counts, width=0.8, brush=colour,
                                        pen=pg.mkPen(None))
            fit = self._label_fit(len(labels))
            bottom.setTicks([[(i, fit(label)) for i, label in enumerate(labels)]])
            self.plot.setLabel("bottom", f"{name} (top {len(top)} of {profile.get('distinct', len(top)):,} values)")
        self.plot.addItem(self.bars)
        self.plot.setLabel("left", "rows")
        self.plot.autoRange()
        self.stats.setText(_stats_html(profile))

    def _label_fit(self, n_labels: int) -> Any:
        """A function that cuts a category label to the width one bar has (at least 3 characters)."""
        metrics = self.fontMetrics()
        view = self.plot.getPlotItem().vb
        per_bar = max(view.width(), self.plot.width() * 0.8) / max(n_labels, 1) - 4
        return lambda label: metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(per_bar)) \
            if metrics.horizontalAdvance(label) > per_bar else label

    def _say_instead_of_a_chart(self, profile: dict[str, Any]) -> None:
        """Free text (or any column whose values all differ): a sentence, not one bar per value."""
        pg = self._pg
        distinct = profile.get("distinct") or 0
        length = profile.get("length") or {}
        words = f"Free text: every value differs ({distinct:,} different values)"
        if length.get("min") is not None:
            words += f",\n{length['min']}–{length['max']} characters long"
        words += ".\nThere is no distribution to chart; it is not used as a feature."
        self.note = pg.TextItem(words, color=self.palette().color(QPalette.ColorRole.Text), anchor=(0.5, 0.5))
        self.plot.getAxis("bottom").setTicks([[]])
        self.plot.getAxis("left").setTicks([[]])
        self.plot.setLabel("bottom", profile.get("name", ""))
        self.plot.setLabel("left", "")
        self.plot.addItem(self.note)
        self.note.setPos(0.5, 0.5)
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(0, 1, padding=0)
        self.stats.setText(_stats_html(profile))


def _position(edge: float | str) -> float:
    """A histogram edge as a number: dates (ISO text in the profile) as seconds since 1970."""
    if not isinstance(edge, str):
        return float(edge)
    moment = dt.datetime.fromisoformat(edge)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _date_label(iso: str, days_only: bool = False) -> str:
    day, _, clock = iso.partition("T")
    return day if days_only or not clock or clock.startswith("00:00:00") else f"{day} {clock[:5]}"


def _stats_html(p: dict[str, Any]) -> str:
    rows = [("rows", fmt_number(p.get("count"))),
            ("missing", f"{p.get('missing', 0):,} ({(p.get('missing_share') or 0):.1%})"),
            ("distinct", fmt_number(p.get("distinct")))]
    for key in ("mean", "std", "min", "max"):
        if p.get(key) is not None:
            rows.append((key, fmt_number(p[key])))
    quantiles = p.get("quantiles") or {}
    for q in sorted(quantiles, key=lambda k: float(k.rstrip("%"))):
        rows.append((q, fmt_number(quantiles[q])))
    if p.get("length"):
        rows.append(("length", f"{p['length'].get('min')}–{p['length'].get('max')}, mean {fmt_number(p['length'].get('mean'))}"))
    body = "".join(f"<tr><td style='padding-right:12px'>{k}</td><td align='right'>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"
