"""The Explore tab: a scatter of two columns coloured by the target, and one column's distribution
per class (as Orange's Scatter Plot and Distributions do).

Rows are read off the main thread through the client (a seeded sample of at most 5,000 rows,
core/datasets/explore.py), with everything drawing needs — each row's colour, the legend, a
column's counts per class (explore_data.py); another column's counts are read the same way when
it is chosen. A regression target colours by a ramp in the scatter and by its quartiles in the
distributions. Legends sit beside the plots, never over the points.

The main thread only builds plots and hands arrays to their items, one step per event-loop turn
(a plot built, the scatter drawn, the distribution drawn), and keeps the items: switching a
column gives the same items new data. pyqtgraph is imported by the caller's warm-up before this
view is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.datasets.explore_data import Counts, Prepared, count, prepare

STEP_MS = 4  # between two steps of drawing (see redraw)

class ExploreView(QWidget):
    def __init__(self, client: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        self._client = client
        self.setObjectName("exploreView")
        self.sample: Any = None
        self.version: Any = None
        self.x = QComboBox(self)
        self.x.setObjectName("exploreX")
        self.y = QComboBox(self)
        self.y.setObjectName("exploreY")
        self.dist = QComboBox(self)
        self.dist.setObjectName("exploreDistribution")
        for combo in (self.x, self.y, self.dist):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.currentIndexChanged.connect(lambda _i: self.redraw())
            combo.currentTextChanged.connect(combo.setToolTip)  # a narrow combo elides the name
        self.status = QLabel("Reading the rows…", self)
        self.status.setObjectName("exploreStatus")
        self.prepared: Prepared | None = None
        self.scatter_plot: Any = None  # built once rows are read, one per event-loop turn (see _step)
        self.dist_plot: Any = None
        self.legend = QLabel(self)  # beside the plots: it never covers a point
        self.legend.setObjectName("exploreLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.scatter: list[Any] = []  # the scatter's items now shown (one per colour)
        self.dist_items: list[Any] = []  # the distribution's items now shown (one per class)
        self._points: list[Any] = []  # every scatter item made (reused)
        self._curves: list[Any] = []  # every histogram outline made (reused)
        self._bars: list[Any] = []  # every bar item made (reused)
        self._drawn: dict[str, Any] = {}  # what each plot shows: "scatter" -> (prepared, x, y), "dist" -> ...
        # a short timer, not a zero-delay call: zero-delay calls queued one after another ran back
        # to back, the window's input and timers waiting for all of them
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._step_timer.setInterval(STEP_MS)
        self._step_timer.timeout.connect(self._step)

        controls = QHBoxLayout()
        for label, combo in (("X:", self.x), ("Y:", self.y)):
            controls.addWidget(QLabel(label, self))
            controls.addWidget(combo, 1)
        controls.addSpacing(theme.SPACE_L)
        controls.addWidget(QLabel("Distribution of:", self))
        controls.addWidget(self.dist, 1)
        self.plots = plots = QSplitter(Qt.Orientation.Horizontal, self)
        plots.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(plots, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.status)

    def _plot(self, name: str) -> Any:
        pg = self._pg
        plot = pg.PlotWidget(self, enableMenu=False)
        plot.setObjectName(name)
        plot.hideButtons()
        plot.setMinimumSize(160, 120)
        theme.style_plot(plot, self)
        return plot

    # -- data
    def set_version(self, version: Any) -> None:
        if self.version is not None and version is not None and self.version.id == version.id:
            return
        self.version, self.sample, self.prepared = version, None, None
        self.status.setText("Reading the rows…")
        if version is None or self._client is None:
            return
        version_id = version.id

        def read(store: Any) -> Prepared:
            from modelyard.core.datasets.explore import explore_sample

            sample = explore_sample(store, version_id)
            first = next((c for c in sample.columns if c != sample.target), None)
            return prepare(sample, first)

        self._client.read("datasets.explore", read, self._read, lambda exc: self.status.setText(str(exc)))

    def _read(self, prepared: Prepared) -> None:
        sample = prepared.sample
        if self.version is None or sample.version_id != self.version.id:
            return
        self.sample, self.prepared = sample, prepared
        numeric = [c for c in sample.columns if c in sample.numeric and c != sample.target]
        every = [c for c in sample.columns if c != sample.target]
        for combo, names, pick in ((self.x, numeric, 0), (self.y, numeric, 1), (self.dist, every, 0)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            for i, name in enumerate(names):
                combo.setItemData(i, name, Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(min(pick, len(names) - 1))
            combo.blockSignals(False)
        shown = (f"{plural(sample.sampled, 'row')}, a random sample of {sample.n_rows:,}"
                 if sample.sampled < sample.n_rows else plural(sample.sampled, "row"))
        coloured = f"coloured by {sample.target}" if sample.target else "no target: one colour"
        self.status.setText(f"{shown} · {coloured}")
        self.legend.setText(prepared.legend)
        self.redraw()

    def _count(self, prepared: Prepared, column: str) -> None:
        """Count ``column`` per class on a reading thread; the answer draws it."""
        sample = prepared.sample

        def counted(counts: Counts) -> None:
            prepared.counts[counts.column] = counts
            if prepared is self.prepared:
                self.redraw()

        self._client.read("datasets.explore.counts", lambda _store: count(sample, column), counted,
                          lambda exc: self.status.setText(str(exc)))

    # -- drawing
    def redraw(self) -> None:
        """Bring the plots up to date over the next event-loop turns."""
        if not self._step_timer.isActive():
            self._step_timer.start()

    def _step(self) -> None:
        """One piece of work per event-loop turn: build a plot, draw the scatter, draw the
        distribution (each takes 5-20 ms of the main thread; together they would hold it long)."""
        p = self.prepared
        if p is None:
            return
        # both plots first (adding the second resizes the first); each is made in one turn and
        # shown in the next (its first layout and paint)
        for attr, name in (("scatter_plot", "exploreScatter"), ("dist_plot", "exploreDist")):
            plot = getattr(self, attr)
            if plot is None:
                setattr(self, attr, self._plot(name))
                self.redraw()
                return
            if self.plots.indexOf(plot) < 0:
                self.plots.addWidget(plot)
                self.plots.setSizes([1] * self.plots.count())  # the same width each
                self.redraw()
                return
        scatter = (p, self.x.currentText(), self.y.currentText())
        if self._drawn.get("scatter") != scatter:
            self._drawn["scatter"] = scatter
            self._draw_scatter(p, scatter[1], scatter[2])
            self.redraw()
            return
        column = self.dist.currentText()
        if self._drawn.get("dist") == (p, column):
            return
        counts = p.counts.get(column)
        if counts is None:
            if self._drawn.get("counting") != (p, column):  # not asked for yet
                self._drawn["counting"] = (p, column)
                self._count(p, column)
            return
        self._drawn["dist"] = (p, column)
        self._draw_distribution(p, counts)

    def _draw_scatter(self, p: Prepared, xn: str, yn: str) -> None:
        pg, plot, s = self._pg, self.scatter_plot, p.sample
        shown: list[Any] = []
        if xn in s.numeric and yn in s.numeric:
            plot.setTitle(None)
            x, y = s.numeric[xn], s.numeric[yn]
            # one item per colour (a brush per point made 5,000 symbols one by one: 130 ms on the main thread)
            for rows, colour in zip(p.scatter_rows, p.scatter_colours):
                xs, ys = x[rows], y[rows]
                ok = ~(np.isnan(xs) | np.isnan(ys))
                if not ok.any():
                    continue
                item = self._reuse(self._points, len(shown), plot, lambda: pg.ScatterPlotItem(size=5, pen=None))
                item.setData(x=xs[ok], y=ys[ok], size=5, pen=pg.mkPen(None), brush=pg.mkBrush(colour))
                shown.append(item)
            plot.setLabel("bottom", xn)
            plot.setLabel("left", yn)
        else:
            plot.setTitle("Two numeric columns are needed for a scatter")
        self._hide_rest(self._points, shown)
        self.scatter = shown
        plot.autoRange()

    def _draw_distribution(self, p: Prepared, counts: Counts) -> None:
        pg, plot = self._pg, self.dist_plot
        colours = [QColor(c) for c in p.class_colours]
        shown: list[Any] = []
        bottom = plot.getAxis("bottom")
        if counts.kind == "numeric":
            for k, (per, colour) in enumerate(zip(counts.counts, colours)):
                item = self._reuse(self._curves, k, plot, pg.PlotCurveItem)
                # outlines, not fills: overlaid classes stay visible (and a filled path took ~20 ms to paint)
                item.setData(counts.edges, per, stepMode="center", pen=pg.mkPen(colour, width=2))
                shown.append(item)
            bottom.setTicks(None)
        elif counts.kind == "categorical":
            top = counts.labels
            width = 0.8 / max(len(colours), 1)
            for k, (per, colour) in enumerate(zip(counts.counts, colours)):
                x = np.arange(len(top)) - 0.4 + width * (k + 0.5)
                item = self._reuse(self._bars, k, plot,
                                   lambda: pg.BarGraphItem(x=[], height=[], width=width, pen=pg.mkPen(None)))
                item.setOpts(x=x, height=per, width=width, brush=colour, pen=pg.mkPen(None))
                shown.append(item)
            metrics = self.fontMetrics()
            room = max(plot.width() / max(len(top), 1) - 6, 24)
            bottom.setTicks([[(i, metrics.elidedText(c, Qt.TextElideMode.ElideMiddle, int(room)))
                              for i, c in enumerate(top)]])
        for pool in (self._curves, self._bars):
            self._hide_rest(pool, shown)
        self.dist_items = shown
        plot.setLabel("bottom", counts.column)
        plot.setLabel("left", "rows")
        plot.autoRange()

    @staticmethod
    def _reuse(pool: list[Any], i: int, plot: Any, make: Any) -> Any:
        """The pool's ``i``-th item, made (and added to the plot) the first time."""
        if i == len(pool):
            pool.append(make())
            plot.addItem(pool[i])
        pool[i].setVisible(True)
        return pool[i]

    @staticmethod
    def _hide_rest(pool: list[Any], shown: list[Any]) -> None:
        """Hide the pool's items not shown now (a hidden item is left out of the plot's range)."""
        for item in pool:
            if not any(item is s for s in shown):
                item.setVisible(False)
