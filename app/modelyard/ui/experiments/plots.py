"""Plot helpers shared by the run detail and Compare: a PlotWidget in the palette's colours, series
colours, pens, and a legend drawn beside a plot (never over its curves).

pyqtgraph is imported inside the functions that draw, never when this module loads.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QWidget

# Distinguishable line colours (one per class or per run), readable on light and dark bases.
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f")
PLOT_MIN_WIDTH = 240
PLOT_MIN_HEIGHT = 120


def series_colour(i: int) -> QColor:
    return QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])


def muted(widget: QWidget) -> QColor:
    return widget.palette().color(QPalette.ColorRole.PlaceholderText)


def pen(colour: QColor | str, width: float = 2, dashed: bool = False) -> Any:
    import pyqtgraph as pg

    return pg.mkPen(QColor(colour), width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)


def make_plot(parent: QWidget, x_label: str = "", y_label: str = "") -> Any:
    """A PlotWidget in the palette's colours: Base background, Text axes, a faint grid."""
    import pyqtgraph as pg

    pal = parent.palette()
    text = pal.color(QPalette.ColorRole.Text)
    plot = pg.PlotWidget(parent)
    plot.setBackground(pal.color(QPalette.ColorRole.Base))
    plot.setMenuEnabled(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
        axis.setTextPen(pg.mkPen(text))
        axis.enableAutoSIPrefix(False)  # an importance of 0.017 reads as 0.017, not "17 (x0.001)"
    if x_label:
        plot.setLabel("bottom", x_label, color=text.name())
    if y_label:
        plot.setLabel("left", y_label, color=text.name())
    plot.setMinimumSize(PLOT_MIN_WIDTH, PLOT_MIN_HEIGHT)
    return plot


def add_legend(plot: Any, offset: tuple[int, int] = (-8, 8)) -> Any:
    """A legend inside the plot, in a corner, on the base colour: offset's signs pick the corner
    ((-8, 8): top right, (-8, -8): bottom right). Where curves may pass the corner, prefer
    :class:`LegendList` beside the plot."""
    legend = plot.addLegend(offset=offset, labelTextSize="8pt")
    legend.setLabelTextColor(plot.palette().color(QPalette.ColorRole.Text))
    base = QColor(plot.palette().color(QPalette.ColorRole.Base))
    base.setAlpha(200)
    legend.setBrush(base)
    return legend


class LegendList(QLabel):
    """A legend beside a plot: one coloured line sample and label per series, wrapping across the
    width, so it never covers a curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("legendList")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.entries: list[tuple[str, str]] = []

    def set_entries(self, entries: Sequence[tuple[str, QColor | str]]) -> None:
        """``entries``: (label, colour) per series, in drawing order."""
        self.entries = [(str(label), QColor(colour).name()) for label, colour in entries]
        self.setText("&nbsp;&nbsp; ".join(
            f"<span style='color:{c}'>&#9644;</span>&nbsp;{html.escape(label).replace(' ', '&nbsp;')}"
            for label, c in self.entries))
        self.setToolTip("\n".join(label for label, _ in self.entries))
        self.setVisible(bool(self.entries))
