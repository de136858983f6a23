"""The Monitoring panel's charts: one feature's reference and batch overlaid, and the timeline
of drift scores and the model's metric across checks (pyqtgraph, imported on first use).

Legends are Qt labels above each chart (:func:`legend_html`), never drawn over the data. The
timeline's x axis shows each batch's date; a point's tooltip names the batch file and the
check's summary; a dashed line marks the drift score a feature drifts at.
"""

from __future__ import annotations

import datetime as dt
import html
from itertools import pairwise
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from modelyard.ui.common import theme

REFERENCE_COLOUR = "#8c959f"
BATCH_COLOUR = "#1f6feb"
THRESHOLD_COLOUR = "#cf222e"
SHARE_COLOUR = "#6e7781"
SERIES_COLOURS = ("#1f6feb", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#9a6700", "#0a7ea4", "#bf3989",
                  "#57606a", "#116329")
MAX_TICKS = 8
TICK_CHARS = 12
CATEGORY_CHARS = 16
MAX_CATEGORY_TICKS = 20


def style(plot: Any, widget: QWidget) -> None:
    theme.style_plot(plot, widget)


def legend_html(entries: list[tuple[str, str]], extra: str = "") -> str:
    """A legend as rich text: a coloured square and a name per entry (names escaped)."""
    parts = [f"<span style='color:{colour}'>■</span>&nbsp;{html.escape(name)}" for name, colour in entries]
    if extra:
        parts.append(extra)
    return "&nbsp;&nbsp; ".join(parts)


def _short(text: str, n: int = TICK_CHARS) -> str:
    """``text`` elided in the middle to ``n`` characters (axis labels)."""
    return text if len(text) <= n else text[: (n - 1) // 2] + "…" + text[-((n - 1) - (n - 1) // 2):]


def _thin(ticks: list[tuple[float, str]], most: int = MAX_TICKS) -> list[tuple[float, str]]:
    """At most ``most`` labels, evenly spread (the last one kept)."""
    if len(ticks) <= most:
        return ticks
    step = -(-len(ticks) // most)
    kept = ticks[::-1][::step][::-1]
    return kept


def overlay_plot(parent: QWidget) -> Any:
    """The chart one feature's distributions are drawn on."""
    plot = theme.chart(parent, "overlayPlot", mouse=(True, False))
    plot.setMinimumHeight(140)
    return plot


OVERLAY_LEGEND = legend_html([("reference (training data)", REFERENCE_COLOUR), ("batch", BATCH_COLOUR)])


def draw_overlay(plot: Any, f: dict[str, Any]) -> None:
    """Feature ``f``'s reference and batch histograms (or category shares) as bars on ``plot``."""
    import pyqtgraph as pg

    plot.clear()
    hist = f.get("histogram") or {}
    ref_brush, batch_brush = pg.mkBrush(REFERENCE_COLOUR + "aa"), pg.mkBrush(BATCH_COLOUR + "88")
    bottom, left = plot.getAxis("bottom"), plot.getAxis("left")
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
        # categories down the left axis (their names read horizontally, however many), shares across
        cats = [str(c) for c in hist["categories"]][::-1]  # the first category on top
        ys = list(range(len(cats)))
        ref = list(hist.get("reference") or [0] * len(ys))[::-1]
        cur = list(hist.get("batch") or [0] * len(ys))[::-1]
        plot.addItem(pg.BarGraphItem(x0=0, y=[y + 0.2 for y in ys], height=0.4, width=ref, brush=ref_brush,
                                     pen=pg.mkPen(None), name="reference"))
        plot.addItem(pg.BarGraphItem(x0=0, y=[y - 0.2 for y in ys], height=0.4, width=cur, brush=batch_brush,
                                     pen=pg.mkPen(None), name="batch"))
        bottom.setTicks(None)
        left.setTicks([_thin([(y, _short(c, CATEGORY_CHARS)) for y, c in zip(ys, cats, strict=False)],
                             MAX_CATEGORY_TICKS)])
        plot.setLabel("left", "")
        plot.setLabel("bottom", "share of rows")
        plot.setMouseEnabled(x=False, y=True)
        plot.showGrid(x=True, y=False, alpha=0.25)
        plot.autoRange()
        return
    left.setTicks(None)
    plot.setLabel("left", "share of rows")
    plot.setLabel("bottom", "")
    plot.setMouseEnabled(x=True, y=False)
    plot.showGrid(x=False, y=True, alpha=0.25)
    plot.autoRange()


def timeline_plot(parent: QWidget, styled: QWidget, which: str, link_to: Any = None) -> Any:
    """One of the two linked timeline charts: ``"scores"`` (drift score per feature) or ``"metric"``
    (the model's metric, its x axis linked to ``link_to``)."""
    p = theme.chart(parent, f"{which}Timeline", styled, mouse=(True, True))
    p.setMinimumHeight(110)
    p.setLabel("left", "drift score · share" if which == "scores" else "metric")
    if which == "metric":
        p.setLabel("bottom", "batch date")
    if link_to is not None:
        p.setXLink(link_to)
    return p


def batch_date(c: dict[str, Any]) -> str:
    """A check's batch date for an axis (the file's date, else when the check ran)."""
    value = c.get("batch_date") or c.get("created_at")
    if not value:
        return ""
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)[:10]
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone().strftime("%b %d")


def _tip(name: str, c: dict[str, Any], y: float) -> str:
    what = c.get("batch_file") or c.get("batch_ref") or "the batch"
    return f"{name}: drift score {y:.3f}\n{what} · {batch_date(c)}\n{c.get('summary') or ''}".strip()


def draw_timeline(scores: Any, metric: Any, data: dict[str, Any]) -> tuple[dict[str, list[float]], str]:
    """Draw :func:`modelyard.core.monitoring.drift.timeline`'s ``data``; returns the drift score
    series per feature and the legend (rich text) to show above the charts."""
    import pyqtgraph as pg

    checks = data.get("checks") or []
    scores.clear()
    metric.clear()
    xs = list(range(1, len(checks) + 1))
    labels = [batch_date(c) for c in checks]
    by_file = len(set(labels)) < len(labels)  # batches of one day: their files tell them apart
    if by_file:  # as many characters as each label's share of the plot's width holds
        room = scores.width() / max(1, min(len(checks), MAX_TICKS))
        chars = max(TICK_CHARS, int(room / max(1, scores.fontMetrics().averageCharWidth())) - 2)
        labels = [_short(str(c.get("batch_file") or c.get("batch_ref") or ""), chars) for c in checks]
    ticks = [_thin(list(zip(xs, labels, strict=False)))]
    for ax in (scores.getAxis("bottom"), metric.getAxis("bottom")):
        ax.setTicks(ticks)
    metric.setLabel("bottom", "batch file" if by_file else "batch date")
    names = data.get("features") or sorted({n for c in checks for n in (c.get("scores") or {})})
    series: dict[str, list[float]] = {}
    entries: list[tuple[str, str]] = []
    for i, name in enumerate(names):
        ys = [(c.get("scores") or {}).get(name) for c in checks]
        ys = [float("nan") if y is None else float(y) for y in ys]
        series[name] = ys
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        entries.append((name, colour))
        scores.plot(xs, ys, pen=pg.mkPen(colour, width=2), connect="finite")
        spots = [(x, y, c) for x, y, c in zip(xs, ys, checks, strict=False) if y == y]  # not NaN
        if spots:
            scores.addItem(pg.ScatterPlotItem(
                x=[s[0] for s in spots], y=[s[1] for s in spots], data=[s[2] for s in spots], size=7,
                brush=pg.mkBrush(colour), pen=pg.mkPen(None), hoverable=True,
                tip=lambda x, y, data, _n=name: _tip(_n, data, y)))
    extras = []
    threshold = data.get("threshold") if isinstance(data.get("threshold"), (int, float)) else None
    if threshold is not None:
        scores.addItem(pg.InfiniteLine(pos=float(threshold), angle=0,
                                       pen=pg.mkPen(THRESHOLD_COLOUR, width=1.5, style=Qt.PenStyle.DashLine)))
        extras.append(f"<span style='color:{THRESHOLD_COLOUR}'>- - -</span>&nbsp;a feature drifts at a score ≥ "
                      f"{threshold:g}")
    # the dataset verdict: the share of features drifting against the rule, on the same 0..1 axis
    shares = [float("nan") if c.get("drift_share") is None else float(c["drift_share"]) for c in checks]
    if any(v == v for v in shares):
        scores.plot(xs, shares, pen=pg.mkPen(SHARE_COLOUR, width=3), symbol="s", symbolSize=8,
                    symbolBrush=SHARE_COLOUR, symbolPen=None, connect="finite")
        extras.append(f"<span style='color:{SHARE_COLOUR}'>■</span>&nbsp;share of features drifting")
        rule = data.get("rule") if isinstance(data.get("rule"), (int, float)) else None
        if rule is not None:
            scores.addItem(pg.InfiniteLine(pos=float(rule), angle=0,
                                           pen=pg.mkPen(SHARE_COLOUR, width=1.5, style=Qt.PenStyle.DashLine)))
            extras.append(f"<span style='color:{SHARE_COLOUR}'>- - -</span>&nbsp;the batch drifts when ≥ {rule:.0%} "
                          "of its features drift")
    extra = "&nbsp;&nbsp; ".join(extras)
    mys = [c.get("metric") for c in checks]
    metric.setLabel("left", data.get("metric") or "metric")
    if any(v is not None for v in mys):
        vals = [float("nan") if v is None else float(v) for v in mys]
        metric.plot(xs, vals, pen=pg.mkPen(BATCH_COLOUR, width=2), symbol="o", symbolBrush=BATCH_COLOUR,
                    connect="finite")
        recorded = next((c.get("metric_recorded") for c in checks if c.get("metric_recorded") is not None), None)
        if recorded is not None:
            metric.addLine(y=float(recorded), pen=pg.mkPen(REFERENCE_COLOUR, style=Qt.PenStyle.DashLine))
    if xs:
        scores.setXRange(0.6, len(xs) + 0.4, padding=0)
    return series, legend_html(entries, extra)
