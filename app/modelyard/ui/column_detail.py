"""One column in detail: a full histogram or category bar chart (pyqtgraph) and its statistics.

pyqtgraph is imported when the first detail view is built, not at start-up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from modelyard.ui import theme
from modelyard.ui.models.profile_table import fmt_number


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
        self.plot.setMinimumHeight(160)
        self.bars: Any = None
        row = QHBoxLayout()
        row.setSpacing(theme.SPACE_L)
        row.addWidget(self.plot, 1)
        row.addWidget(self.stats)
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
                bottom.setTicks([[(edges[i], _date_label(labels[i])) for i in shown]])
            else:
                bottom.setTicks(None)
            self.plot.setLabel("bottom", name)
        else:
            top = profile.get("top") or []
            labels = [str(t["value"]) for t in top]
            counts = [t["count"] for t in top]
            self.bars = pg.BarGraphItem(x=list(range(len(top))), height=counts, width=0.8, brush=colour,
                                        pen=pg.mkPen(None))
            bottom.setTicks([[(i, _short(label)) for i, label in enumerate(labels)]])
            self.plot.setLabel("bottom", f"{name} (top {len(top)} of {profile.get('distinct', len(top)):,} values)")
        self.plot.addItem(self.bars)
        self.plot.setLabel("left", "rows")
        self.plot.autoRange()
        self.stats.setText(_stats_html(profile))


def _position(edge: float | str) -> float:
    """A histogram edge as a number: dates (ISO text in the profile) as seconds since 1970."""
    if not isinstance(edge, str):
        return float(edge)
    moment = dt.datetime.fromisoformat(edge)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _date_label(iso: str) -> str:
    day, _, clock = iso.partition("T")
    return day if not clock or clock.startswith("00:00:00") else f"{day} {clock[:5]}"


def _short(text: str, n: int = 12) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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
