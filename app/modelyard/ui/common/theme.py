"""Visual conventions shared by every panel (see docs/ui.md): icons, status colours, spacing.

Icons are the SVGs in ``resources/icons``; their strokes say ``currentColor``, which is replaced
here with the palette's text colour (or a status colour), so one icon set serves light and dark
palettes. Status colours come in a light and a dark variant chosen from the palette's window
lightness, so they keep their contrast when the system switches scheme.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QWidget

from modelyard.core.common.paths import resource_path

# Spacing scale (px). Panels use these, never ad-hoc numbers.
SPACE_XS, SPACE_S, SPACE_M, SPACE_L, SPACE_XL = 2, 4, 8, 16, 24
ICON_SIZE = QSize(20, 20)
SIDEBAR_ICON_SIZE = QSize(24, 24)

# status -> (light palette colour, dark palette colour)
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "running": ("#1f6feb", "#58a6ff"),
    "queued": ("#6e7781", "#8b949e"),
    "ok": ("#1a7f37", "#3fb950"),
    "succeeded": ("#1a7f37", "#3fb950"),
    "warning": ("#9a6700", "#d29922"),
    "drift": ("#bc4c00", "#f0883e"),
    "failed": ("#cf222e", "#f85149"),
    "error": ("#cf222e", "#f85149"),
    "interrupted": ("#8250df", "#a371f7"),
    "cancelled": ("#6e7781", "#8b949e"),
    "pruned": ("#6e7781", "#8b949e"),  # a search trial Optuna stopped early: not a failure
}
STATUS_ICONS = {
    "running": "running", "queued": "running", "ok": "ok", "succeeded": "ok", "warning": "warning",
    "drift": "drift", "failed": "error", "error": "error", "interrupted": "warning", "cancelled": "cancel",
    "pruned": "stop",
}


def is_dark(palette: QPalette | None = None) -> bool:
    pal = palette or QGuiApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def status_colour(status: str, palette: QPalette | None = None) -> QColor:
    light, dark = STATUS_COLOURS.get(status, STATUS_COLOURS["queued"])
    return QColor(dark if is_dark(palette) else light)


@lru_cache(maxsize=512)
def _svg_bytes(name: str) -> bytes:
    return resource_path("icons", f"{name}.svg").read_bytes()


@lru_cache(maxsize=512)
def _pixmap(name: str, colour: str, size: int, ratio: float) -> QPixmap:
    data = _svg_bytes(name).replace(b"currentColor", colour.encode())
    renderer = QSvgRenderer(QByteArray(data))
    px = int(round(size * ratio))
    pixmap = QPixmap(px, px)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px, px))
    painter.end()
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def icon(name: str, colour: QColor | str | None = None) -> QIcon:
    """An icon from resources/icons drawn in ``colour`` (default: the palette's text colour).

    The disabled state is drawn in the palette's disabled text colour.
    """
    pal = QGuiApplication.palette()
    normal = QColor(colour) if colour is not None else pal.color(QPalette.ColorRole.WindowText)
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    app = QGuiApplication.instance()
    ratio = app.devicePixelRatio() if app is not None else 1.0
    result = QIcon()
    for size in (16, 20, 24, 32, 48):
        result.addPixmap(_pixmap(name, normal.name(), size, ratio), QIcon.Mode.Normal)
        result.addPixmap(_pixmap(name, disabled.name(), size, ratio), QIcon.Mode.Disabled)
    return result


def status_icon(status: str) -> QIcon:
    return icon(STATUS_ICONS.get(status, "info"), status_colour(status))


def make_heading(label: QWidget, scale: float = 1.2) -> None:
    """Bold and ``scale`` times the base size: panel titles and section headings."""
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(True)
    label.setFont(font)


def style_plot(plot: object, widget: QWidget) -> None:
    """A pyqtgraph plot in ``widget``'s palette: its background the palette's base, its left and
    bottom axes (lines and labels) the palette's text colour (light and dark themes alike)."""
    pal = widget.palette()
    plot.setBackground(pal.color(QPalette.ColorRole.Base))  # type: ignore[attr-defined]
    fg = pal.color(QPalette.ColorRole.Text)
    for axis in ("left", "bottom"):
        ax = plot.getAxis(axis)  # type: ignore[attr-defined]
        ax.setPen(fg)
        ax.setTextPen(fg)


def chart(parent: QWidget, name: str, styled: QWidget | None = None, *,
          mouse: tuple[bool, bool] = (False, False)) -> Any:
    """A pyqtgraph plot as the app's charts are made: named ``name``, without the context menu and
    the auto-range button, dragged or zoomed only along the axes ``mouse`` (x, y) allows, a faint
    horizontal grid, numbers on its axes as they are (0.017, not "17 (x0.001)"), in the palette of
    ``styled`` (default ``parent``). Import pyqtgraph off the main thread first (:mod:`.warmup`)."""
    import pyqtgraph as pg

    plot = pg.PlotWidget(parent)
    plot.setObjectName(name)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=mouse[0], y=mouse[1])
    plot.showGrid(x=False, y=True, alpha=0.25)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    style_plot(plot, styled or parent)
    return plot


def clear_cache() -> None:
    """Forget rendered icons (after the palette changes between light and dark)."""
    _pixmap.cache_clear()
