"""The Explore tab: a scatter of two columns coloured by the target, and one column's distribution
per class (as Orange's Scatter Plot and Distributions do).

Rows are read off the main thread through the client (a seeded sample of at most 5,000 rows,
core/datasets/explore.py). A regression target colours by a ramp in the scatter and by its
quartiles in the distributions. Legends sit beside the plots, never over the points.
pyqtgraph is imported by the caller's warm-up before this view is built.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPalette
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

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
BINS = 24
RAMP_STEPS = 12  # colours of a regression target's ramp in the scatter


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
        self.scatter_plot: Any = None  # built one per event-loop turn (each ~40 ms): see _add_plots
        self.dist_plot: Any = None
        self.legend = QLabel(self)  # beside the plots: it never covers a point
        self.legend.setObjectName("exploreLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.scatter: Any = None
        self.dist_items: list[Any] = []

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
        QTimer.singleShot(0, self, self._add_plots)

    def _add_plots(self) -> None:
        """One plot per event-loop turn, so building the view never holds the main thread long."""
        if self.scatter_plot is None:
            self.scatter_plot = self._plot("exploreScatter")
            self.plots.addWidget(self.scatter_plot)
            QTimer.singleShot(0, self, self._add_plots)
            return
        self.dist_plot = self._plot("exploreDist")
        self.plots.addWidget(self.dist_plot)
        self.plots.setSizes([1, 1])  # half each
        if self.sample is not None:  # rows read before the plots were there: draw them, in a turn of its own
            QTimer.singleShot(0, self, self.redraw)

    def _plot(self, name: str) -> Any:
        pg = self._pg
        plot = pg.PlotWidget(self)
        plot.setObjectName(name)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMinimumSize(160, 120)
        pal = self.palette()
        plot.setBackground(pal.color(QPalette.ColorRole.Base))
        fg = pal.color(QPalette.ColorRole.Text)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setPen(fg)
            plot.getAxis(axis).setTextPen(fg)
        return plot

    # -- data
    def set_version(self, version: Any) -> None:
        if self.version is not None and version is not None and self.version.id == version.id:
            return
        self.version, self.sample = version, None
        self.status.setText("Reading the rows…")
        if version is None or self._client is None:
            return
        version_id = version.id

        def read(store: Any) -> Any:
            from modelyard.core.datasets.explore import explore_sample

            return explore_sample(store, version_id)

        self._client.read("datasets.explore", read, self._read, lambda exc: self.status.setText(str(exc)))

    def _read(self, sample: Any) -> None:
        if self.version is None or sample.version_id != self.version.id:
            return
        self.sample = sample
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
        self.redraw()

    # -- drawing
    def redraw(self) -> None:
        s = self.sample
        if s is None or self.dist_plot is None:
            return
        names, codes = s.group_names, s.groups  # prepared off the main thread (core/datasets/explore.py)
        colours = [QColor(PALETTE[i % len(PALETTE)]) for i in range(len(names))]
        self._draw_scatter(s, names, codes, colours)
        # the other plot in the next turn: each is drawn and painted on its own
        QTimer.singleShot(0, self, lambda: self.sample is s and self._draw_distribution(s, names, codes, colours))
        items = "".join(f"<span style='color:{c.name()}'>■</span>&nbsp;{html.escape(n)}&nbsp;&nbsp; "
                        for n, c in zip(names, colours))
        if s.task == "regression" and s.target in s.numeric:  # the scatter's ramp, then the quartiles' colours
            t = s.numeric[s.target]
            ramp = self._pg.colormap.get("viridis")
            steps = "".join(f"<span style='color:{ramp.map(k / 7, mode='qcolor').name()}'>■</span>" for k in range(8))
            items = (f"Scatter: {html.escape(s.target)} {float(np.nanmin(t)):.3g}&nbsp;{steps}&nbsp;"
                     f"{float(np.nanmax(t)):.3g}&nbsp;&nbsp;·&nbsp;&nbsp;Distributions: {items}")
        self.legend.setText(items if s.target else "")

    def _draw_scatter(self, s: Any, names: list[str], codes: np.ndarray, colours: list[QColor]) -> None:
        pg = self._pg
        plot = self.scatter_plot
        plot.clear()
        xn, yn = self.x.currentText(), self.y.currentText()
        if xn not in s.numeric or yn not in s.numeric:
            plot.setTitle("Two numeric columns are needed for a scatter")
            return
        plot.setTitle(None)
        x, y = s.numeric[xn], s.numeric[yn]
        ok = ~(np.isnan(x) | np.isnan(y))
        # one item per colour (a brush per point made 5,000 symbols one by one: 130 ms on the main thread)
        if s.task == "regression" and s.target in s.numeric:
            t = s.numeric[s.target]
            ok &= ~np.isnan(t)
            lo, hi = (float(t[ok].min()), float(t[ok].max())) if ok.any() else (0.0, 1.0)
            groups = np.minimum(((t - lo) / ((hi - lo) or 1.0) * RAMP_STEPS).astype(np.int64), RAMP_STEPS - 1)
            ramp = pg.colormap.get("viridis")
            colours = [ramp.map((k + 0.5) / RAMP_STEPS, mode="qcolor") for k in range(RAMP_STEPS)]
        else:
            groups = codes
        self.scatter = []
        for k, colour in enumerate(colours):
            mine = ok & (groups == k)
            if mine.any():
                item = pg.ScatterPlotItem(x=x[mine], y=y[mine], size=5, pen=pg.mkPen(None), brush=pg.mkBrush(colour))
                plot.addItem(item)
                self.scatter.append(item)
        plot.setLabel("bottom", xn)
        plot.setLabel("left", yn)
        plot.autoRange()

    def _draw_distribution(self, s: Any, names: list[str], codes: np.ndarray, colours: list[QColor]) -> None:
        pg = self._pg
        plot = self.dist_plot
        plot.clear()
        self.dist_items = []
        column = self.dist.currentText()
        bottom = plot.getAxis("bottom")
        if column in s.numeric:
            v = s.numeric[column]
            ok = ~np.isnan(v)
            if not ok.any():
                return
            edges = np.histogram_bin_edges(v[ok], bins=BINS)
            for k, colour in enumerate(colours):
                counts, _ = np.histogram(v[ok & (codes == k)], bins=edges)
                # outlines, not fills: overlaid classes stay visible (and a filled path took ~20 ms to paint)
                item = pg.PlotCurveItem(edges, counts, stepMode="center", pen=pg.mkPen(colour, width=2))
                plot.addItem(item)
                self.dist_items.append(item)
            bottom.setTicks(None)
        elif column in s.categorical:
            top, pos = s.categories[column]
            width = 0.8 / max(len(colours), 1)
            for k, colour in enumerate(colours):
                per = np.bincount(pos[(codes == k) & (pos >= 0)], minlength=len(top))
                item = pg.BarGraphItem(x=np.arange(len(top)) - 0.4 + width * (k + 0.5), height=per, width=width,
                                       brush=colour, pen=pg.mkPen(None))
                plot.addItem(item)
                self.dist_items.append(item)
            metrics = self.fontMetrics()
            room = max(plot.width() / max(len(top), 1) - 6, 24)
            bottom.setTicks([[(i, metrics.elidedText(c, Qt.TextElideMode.ElideMiddle, int(room)))
                              for i, c in enumerate(top)]])
        plot.setLabel("bottom", column)
        plot.setLabel("left", "rows")
        plot.autoRange()
