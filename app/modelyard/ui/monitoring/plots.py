"""The Monitoring panel's charts: one feature's reference and batch overlaid, and the timeline
of drift scores and the model's metric across checks (pyqtgraph, imported on first use)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

REFERENCE_COLOUR = "#8c959f"
BATCH_COLOUR = "#1f6feb"
SERIES_COLOURS = ("#1f6feb", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#9a6700", "#0a7ea4", "#bf3989",
                  "#57606a", "#116329")


def style(plot: Any, widget: QWidget) -> None:
    from PySide6.QtGui import QPalette

    pal = widget.palette()
    plot.setBackground(pal.color(QPalette.ColorRole.Base))
    fg = pal.color(QPalette.ColorRole.Text)
    for axis in ("left", "bottom"):
        ax = plot.getAxis(axis)
        ax.setPen(fg)
        ax.setTextPen(fg)


def overlay_plot(parent: QWidget) -> Any:
    """The chart one feature's distributions are drawn on."""
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
    style(plot, parent)
    return plot


def draw_overlay(plot: Any, f: dict[str, Any]) -> None:
    """Feature ``f``'s reference and batch histograms (or category shares) as bars on ``plot``."""
    import pyqtgraph as pg

    plot.clear()
    legend = plot.plotItem.legend
    if legend is not None:
        legend.clear()
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


def timeline_plots(parent: QWidget, styled: QWidget) -> tuple[Any, Any]:
    """The two linked timeline charts: drift score per feature, and the model's metric."""
    import pyqtgraph as pg

    scores = pg.PlotWidget(parent)
    scores.setObjectName("scoresTimeline")
    metric = pg.PlotWidget(parent)
    metric.setObjectName("metricTimeline")
    for p in (scores, metric):
        p.setMenuEnabled(False)
        p.hideButtons()
        p.showGrid(x=False, y=True, alpha=0.25)
        style(p, styled)
    scores.addLegend(offset=(-10, 10), labelTextSize="8pt")
    scores.setLabel("left", "drift score")
    metric.setLabel("left", "metric")
    metric.setLabel("bottom", "check")
    for p in (scores, metric):
        p.getAxis("left").enableAutoSIPrefix(False)
    metric.setXLink(scores)
    return scores, metric


def draw_timeline(scores: Any, metric: Any, data: dict[str, Any]) -> dict[str, list[float]]:
    """Draw :func:`modelyard.core.monitoring.drift.timeline`'s ``data``; returns the drift score
    series per feature."""
    import pyqtgraph as pg

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
    series: dict[str, list[float]] = {}
    for i, name in enumerate(names):
        ys = [(c.get("scores") or {}).get(name) for c in checks]
        ys = [float("nan") if y is None else float(y) for y in ys]
        series[name] = ys
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        scores.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6, symbolBrush=colour,
                    name=name, connect="finite")
    threshold = (data.get("threshold") if isinstance(data.get("threshold"), (int, float)) else None)
    if threshold is not None:
        scores.addLine(y=threshold, pen=pg.mkPen("#cf222e", style=Qt.PenStyle.DashLine))
    mys = [c.get("metric") for c in checks]
    metric.setLabel("left", data.get("metric") or "metric")
    if any(v is not None for v in mys):
        vals = [float("nan") if v is None else float(v) for v in mys]
        metric.plot(xs, vals, pen=pg.mkPen(BATCH_COLOUR, width=2), symbol="o", symbolBrush=BATCH_COLOUR,
                    connect="finite")
        recorded = next((c.get("metric_recorded") for c in checks if c.get("metric_recorded") is not None), None)
        if recorded is not None:
            metric.addLine(y=float(recorded), pen=pg.mkPen(REFERENCE_COLOUR, style=Qt.PenStyle.DashLine))
    return series
