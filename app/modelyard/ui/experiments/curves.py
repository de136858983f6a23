"""The controls above every metric-curve plot: which metric, step or time on x, and smoothing."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from modelyard.ui.common import theme

X_AXES = ("step", "time (s)")


class CurveControls(QWidget):
    """A row of: Metric [combo]  X axis [step | time]  Smoothing [0..0.99]. ``changed`` on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, name_prefix: str = "chart",
                 smoothing_tip: str = "Exponential moving average (0: the raw values).") -> None:
        super().__init__(parent)
        self.metric = QComboBox(self)
        self.metric.setObjectName(f"{name_prefix}Metric")
        self.x_axis = QComboBox(self)
        self.x_axis.setObjectName(f"{name_prefix}X")
        self.x_axis.addItems(list(X_AXES))
        self.smoothing = QDoubleSpinBox(self)
        self.smoothing.setObjectName(f"{name_prefix}Smoothing")
        self.smoothing.setRange(0.0, 0.99)
        self.smoothing.setSingleStep(0.1)
        self.smoothing.setDecimals(2)
        self.smoothing.setToolTip(smoothing_tip)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Metric:", self.metric), ("X axis:", self.x_axis), ("Smoothing:", self.smoothing)):
            if row.count():
                row.addSpacing(theme.SPACE_L)
            row.addWidget(QLabel(label, self))
            row.addWidget(widget)
        row.addStretch(1)
        self.metric.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.x_axis.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.smoothing.valueChanged.connect(lambda _v: self.changed.emit())
