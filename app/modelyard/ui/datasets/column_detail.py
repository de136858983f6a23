"""One column in detail: a full histogram or category bar chart (pyqtgraph) and its statistics.

pyqtgraph is imported when the first detail view is built, not at start-up.
"""

from __future__ import annotations

import datetime as dt
import html
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

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.delegates import values_all_differ
from modelyard.ui.datasets.profile_table import fmt_number

TOP_BARS = 12  # categories drawn as bars; the rest are one "other (k categories)" bar
LABEL_MAX_WIDTH = 260  # a category's label on the left axis: at most this wide, and 40 % of the plot


def category_bars(profile: dict[str, Any], most: int = TOP_BARS) -> list[tuple[str, int]]:
    """(label, rows) for the bars of a categorical column: the ``most`` most common values, then
    "other (k categories)" for the rest of the non-missing rows when there are more."""
    top = profile.get("top") or []
    distinct = int(profile.get("distinct") or len(top))
    keep = distinct if distinct <= most + 1 else most  # never "other (1 category)" in place of its bar
    bars = [(str(t["value"]), int(t["count"])) for t in top[:keep]]
    rest_rows = int(profile.get("count") or 0) - int(profile.get("missing") or 0) - sum(n for _v, n in bars)
    rest = distinct - len(bars)
    if rest > 0 and rest_rows > 0:
        bars.append((f"other ({plural(rest, 'category', 'categories')})", rest_rows))
    return bars


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
        self._shown: tuple[dict[str, Any], str] | None = None
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
        theme.style_plot(self.plot, self)

    def show_column(self, profile: dict[str, Any], schema_type: str = "") -> None:
        pg = self._pg
        name = profile.get("name", "")
        self.title.setText(f"{name}  <span style='font-weight:normal'>· {schema_type or profile.get('kind', '')}</span>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self._shown = (profile, schema_type)
        self.plot.clear()
        self.bars = self.note = None
        self.plot.getAxis("left").setTicks(None)
        self.plot.getAxis("left").setWidth(None)
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
            self.plot.setLabel("left", "rows")
        else:
            if values_all_differ(profile, schema_type):
                self._say_instead_of_a_chart(profile)
                return
            self._category_chart(profile, colour)
        self.plot.addItem(self.bars)
        self.plot.autoRange()
        self.stats.setText(_stats_html(profile, schema_type))

    def _category_chart(self, profile: dict[str, Any], colour: Any) -> None:
        """Horizontal bars, most common on top, labels on the left axis where they have room."""
        pg = self._pg
        # as many bars as have a line of text each in the plot's height (labels never overlap)
        room = max(self.plot.height() - 60, 0) // (self.fontMetrics().height() + 4)
        bars = category_bars(profile, max(2, min(TOP_BARS, room - 1)))
        n = len(bars)
        ys = [n - 1 - i for i in range(n)]  # the first (most common) at the top
        self.bars = pg.BarGraphItem(x0=0, y=ys, height=0.8, width=[c for _l, c in bars], brush=colour,
                                    pen=pg.mkPen(None))
        metrics = self.fontMetrics()
        widest = int(min(LABEL_MAX_WIDTH, max(self.plot.width() * 0.4, 60)))
        labels = [metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, widest) for label, _c in bars]
        left = self.plot.getAxis("left")
        left.setTicks([[(y, label) for y, label in zip(ys, labels)]])
        left.setWidth(min(max((metrics.horizontalAdvance(x) for x in labels), default=20), widest) + 12)
        left.setLabel("")
        self.plot.getAxis("bottom").setTicks(None)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        distinct = int(profile.get("distinct") or n)
        named = n - 1 if bars and bars[-1][0].startswith("other (") else n
        shown = f"top {named} of {distinct:,} values" if named < distinct else plural(distinct, "value")
        self.plot.setLabel("bottom", f"rows ({shown})")
        self.plot.setLabel("left", "")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self._shown is not None and not self._shown[0].get("histogram"):  # bars fit the new height
            from PySide6.QtCore import QTimer

            QTimer.singleShot(0, self, lambda: self._shown and self.show_column(*self._shown))

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
        self.stats.setText(_stats_html(profile, "text"))


def _short(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[:limit // 2 - 1] + "…" + text[-(limit // 2 - 1):]


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


def _stats_html(p: dict[str, Any], schema_type: str = "") -> str:
    rows = [("rows", fmt_number(p.get("count"))),
            ("missing", f"{p.get('missing', 0):,} ({(p.get('missing_share') or 0):.1%})"),
            ("distinct", fmt_number(p.get("distinct")))]
    top = p.get("top") or []
    categories = schema_type in ("categorical", "boolean") or (not schema_type and p.get("kind") == "string")
    if categories and top:  # what matters for categories: the most common value and its share
        present = (p.get("count") or 0) - (p.get("missing") or 0)
        share = top[0]["count"] / present if present else 0.0
        rows.append(("most common", html.escape(_short(str(top[0]["value"])))))
        rows.append(("its share", f"{top[0]['count']:,} ({share:.1%})"))
        if p.get("rarest"):
            rows.append(("rarest", f"{html.escape(_short(str(p['rarest']['value'])))} ({p['rarest']['count']:,})"))
    for key in ("mean", "std", "min", "max"):
        if p.get(key) is not None:
            rows.append((key, fmt_number(p[key])))
    quantiles = p.get("quantiles") or {}
    for q in sorted(quantiles, key=lambda k: float(k.rstrip("%"))):
        rows.append((q, fmt_number(quantiles[q])))
    if p.get("length") and not categories:  # free text: how long its values are
        rows.append(("length", f"{p['length'].get('min')}–{p['length'].get('max')}, mean {fmt_number(p['length'].get('mean'))}"))
    body = "".join(f"<tr><td style='padding-right:12px'>{k}</td><td align='right'>{v}</td></tr>" for k, v in rows)
    return f"<table width='100%'>{body}</table>"  # as wide as the box: a long value wraps, never clips
