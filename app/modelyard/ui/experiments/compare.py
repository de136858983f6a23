"""Compare two or more runs: a param/metric diff table, overlaid metric curves, a
parallel-coordinates plot and a param-against-metric scatter.

The runs are read once when the dialog opens (``tracking.get_run``: a handful of small
queries per run) and metric histories when a curve is drawn. pyqtgraph is imported when a plot
tab is first shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.store import Store
from modelyard.ui.common import theme
from modelyard.ui.experiments.curves import CurveControls
from modelyard.ui.experiments.evaluation import make_plot, series_colour
from modelyard.ui.experiments.runs_table import fmt_metric

MAX_AXES = 10
# Metrics worth an axis by default, best first (test metrics; a search's score).
PREFERRED_METRICS = ("accuracy", "f1_macro", "roc_auc", "balanced_accuracy", "rmse", "r2", "mae", "score",
                     "best_score", "log_loss", "mape")
# Params that describe the data rather than the model: not an axis unless asked for.
BOOKKEEPING_PARAMS = frozenset({"n_train", "n_test", "n_validation", "n_features", "trial"})


def run_label(info: Any) -> str:
    return f"{info.name or 'run'} · {info.id[:6]}"


def swatch(colour: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(colour)
    return QIcon(pixmap)


def as_number(text: Any) -> float | None:
    """A param's text as a number when it is one ("0.5", "12"), else None (also for True/False)."""
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if s.lower() in ("true", "false", "none", "null", ""):
        return None
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- the diff table


@dataclass(frozen=True)
class DiffRow:
    key: str  # "params.C", "metrics.accuracy"
    values: tuple[Any, ...]  # per run, None when the run has no such key
    differs: bool

    def text(self, i: int) -> str:
        v = self.values[i]
        if v is None:
            return "—"
        return fmt_metric(v) if self.key.startswith("metrics.") else str(v)


def diff_rows(runs: list[Any]) -> list[DiffRow]:
    rows: list[DiffRow] = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r, kind)})
        for k in keys:
            values = tuple(getattr(r, kind).get(k) for r in runs)
            rows.append(DiffRow(f"{kind}.{k}", values, _differ(values)))
    return rows


def _differ(values: tuple[Any, ...]) -> bool:
    first = values[0]
    for v in values[1:]:
        if isinstance(first, float) and isinstance(v, float) and math.isnan(first) and math.isnan(v):
            continue
        if v != first:
            return True
    return False


class DiffModel(QAbstractTableModel):
    """Rows: params and metrics; columns: the key, then one per run. Differing rows are shaded."""

    def __init__(self, runs: list[Any], parent: Any = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.all_rows = diff_rows(runs)
        self.rows = list(self.all_rows)
        self.only_differences = False
        self.filter_text = ""

    def set_filter(self, *, only_differences: bool | None = None, text: str | None = None) -> None:
        if only_differences is not None:
            self.only_differences = only_differences
        if text is not None:
            self.filter_text = text.strip().lower()
        self.beginResetModel()
        self.rows = [r for r in self.all_rows if (r.differs or not self.only_differences)
                     and (not self.filter_text or self.filter_text in r.key.lower())]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 1 + len(self.runs)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "Key" if section == 0 else run_label(self.runs[section - 1])
        if role == Qt.ItemDataRole.DecorationRole and section > 0:
            return swatch(series_colour(section - 1))
        if role == Qt.ItemDataRole.ToolTipRole and section > 0:
            r = self.runs[section - 1]
            return f"{r.name or ''} ({r.id}) · {r.experiment} · {r.status}"
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return row.key if col == 0 else row.text(col - 1)
        if role == Qt.ItemDataRole.ToolTipRole and col > 0:
            v = row.values[col - 1]
            return "—" if v is None else repr(v) if isinstance(v, float) else str(v)
        if role == Qt.ItemDataRole.BackgroundRole and row.differs:
            colour = QColor(theme.status_colour("warning"))
            colour.setAlpha(48)
            return colour
        if role == Qt.ItemDataRole.FontRole and row.differs and col == 0:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0 and row.key.startswith("metrics."):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def row_of(self, key: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.key == key), -1)


# --------------------------------------------------------------------------- axes of the plots


@dataclass
class Axis:
    key: str
    values: list[Any]  # per run: a float, a category text, or None
    categories: list[str] | None  # None: numeric

    @property
    def title(self) -> str:
        return self.key.split(".", 1)[1]

    def position(self, i: int) -> float | None:
        """Run ``i``'s value on this axis, in the axis's own units (a category's index)."""
        v = self.values[i]
        if v is None:
            return None
        if self.categories is not None:
            return float(self.categories.index(str(v)))
        return float(v)

    def bounds(self) -> tuple[float, float]:
        if self.categories is not None:
            return 0.0, float(max(len(self.categories) - 1, 0))
        nums = [float(v) for v in self.values if v is not None]
        return (min(nums), max(nums)) if nums else (0.0, 1.0)

    def normalised(self, i: int) -> float:
        p = self.position(i)
        if p is None:
            return math.nan
        lo, hi = self.bounds()
        return 0.5 if hi == lo else (p - lo) / (hi - lo)

    def label(self, value: float) -> str:
        if self.categories is not None:
            i = round(value)
            return self.categories[i] if 0 <= i < len(self.categories) else ""
        return fmt_metric(value)


def make_axis(runs: list[Any], key: str) -> Axis | None:
    kind, name = key.split(".", 1)
    raw = [getattr(r, kind).get(name) for r in runs]
    if all(v is None for v in raw):
        return None
    if kind == "metrics":
        values = [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v) for v in raw]
        return None if all(v is None for v in values) else Axis(key, values, None)
    nums = [as_number(v) for v in raw]
    if all(n is not None or v is None or str(v) == "None" for n, v in zip(nums, raw, strict=True)) \
            and any(n is not None for n in nums):
        return Axis(key, nums, None)
    cats = sorted({str(v) for v in raw if v is not None})
    return Axis(key, [None if v is None else str(v) for v in raw], cats)


# --------------------------------------------------------------------------- the dialog


class CompareDialog(QDialog):
    def __init__(self, store: Store, run_ids: list[str], parent: QWidget | None = None, *,
                 runs: list[Any] | None = None, client: Any = None) -> None:
        """``runs``: the runs' records, read off the main thread by the caller (else read here);
        ``client``: the window's client of the core, which then reads the curves off the main thread."""
        super().__init__(parent)
        from modelyard.core.experiments.tracking import get_run

        self.setObjectName("compareDialog")
        self.store = store
        self.client = client
        self.runs = runs if runs is not None else [get_run(r, store=store) for r in run_ids]
        self.setWindowTitle(f"Compare {len(self.runs)} runs")
        self.resize(1000, 640)
        self.curve_plot: Any = None
        self.parallel_plot: Any = None
        self.scatter_plot: Any = None

        differing = sum(1 for r in diff_rows(self.runs) if r.differs)
        title = QLabel(f"<b>{len(self.runs)} runs</b> · {differing} parameters and metrics differ", self)
        title.setObjectName("compareSummary")
        # one legend for every tab: the run colours of the table headers, curves, lines and points
        self.legend = QLabel("&nbsp;&nbsp;&nbsp;".join(
            f"<span style='color:{series_colour(i).name()}'>■</span>&nbsp;{run_label(r)}"
            for i, r in enumerate(self.runs)), self)
        self.legend.setObjectName("compareLegend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("compareTabs")
        self.tabs.addTab(self._build_diff_tab(), "Parameters and metrics")
        self.curves_tab = QWidget(self)
        self.parallel_tab = QWidget(self)
        self.scatter_tab = QWidget(self)
        for w in (self.curves_tab, self.parallel_tab, self.scatter_tab):
            QVBoxLayout(w).setContentsMargins(0, theme.SPACE_S, 0, 0)
        self.tabs.addTab(self.curves_tab, "Curves")
        self.tabs.addTab(self.parallel_tab, "Parallel coordinates")
        self.tabs.addTab(self.scatter_tab, "Scatter")
        self.tabs.currentChanged.connect(self._tab_shown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_L, theme.SPACE_L, theme.SPACE_L, theme.SPACE_L)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(title)
        layout.addWidget(self.legend)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

    # ------------------------------------------------------------------ diff
    def _build_diff_tab(self) -> QWidget:
        self.diff_model = DiffModel(self.runs, self)
        self.diff_view = QTableView(self)
        self.diff_view.setObjectName("diffTable")
        self.diff_view.setModel(self.diff_model)
        self.diff_view.verticalHeader().hide()
        self.diff_view.verticalHeader().setDefaultSectionSize(22)
        self.diff_view.setShowGrid(False)
        self.diff_view.setWordWrap(False)
        self.diff_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.diff_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.diff_view.resizeColumnsToContents()
        header.resizeSection(0, max(200, min(header.sectionSize(0), 280)))
        for i in range(len(self.runs)):
            header.resizeSection(i + 1, max(120, min(header.sectionSize(i + 1), 240)))
        self.only_differences = QCheckBox("Only differences", self)
        self.only_differences.setObjectName("onlyDifferences")
        self.only_differences.toggled.connect(lambda on: self.diff_model.set_filter(only_differences=on))
        self.key_filter = QLineEdit(self)
        self.key_filter.setObjectName("diffFilter")
        self.key_filter.setPlaceholderText("Filter keys (e.g. cv_ or params.)")
        self.key_filter.setClearButtonEnabled(True)
        self.key_filter.textChanged.connect(lambda t: self.diff_model.set_filter(text=t))
        colour = QColor(theme.status_colour("warning"))
        legend = QLabel(f"<span style='background-color: rgba({colour.red()},{colour.green()},{colour.blue()},0.3)'>"
                        "&nbsp;&nbsp;&nbsp;&nbsp;</span> <b>bold</b> rows differ between the runs", self)
        bar = QHBoxLayout()
        bar.addWidget(self.only_differences)
        bar.addWidget(self.key_filter, 1)
        bar.addSpacing(theme.SPACE_L)
        bar.addWidget(legend)
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.diff_view, 1)
        return box

    # ------------------------------------------------------------------ plots, built on first show
    def _tab_shown(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.curves_tab and self.curve_plot is None:
            self._build_curves()
        elif widget is self.parallel_tab and self.parallel_plot is None:
            self._build_parallel()
        elif widget is self.scatter_tab and self.scatter_plot is None:
            self._build_scatter()

    def show_tab(self, name: str) -> None:
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == name:
                self.tabs.setCurrentIndex(i)
                return
        raise KeyError(name)

    def _metric_keys(self) -> list[str]:
        return sorted({k for r in self.runs for k in r.metrics})

    def _param_keys(self) -> list[str]:
        return sorted({k for r in self.runs for k in r.params})

    # -- curves
    def _build_curves(self) -> None:
        controls = CurveControls(self, name_prefix="curve",
                                 smoothing_tip="Exponential moving average of the values (0: the raw values).")
        self.curve_metric, self.curve_x, self.curve_smoothing = controls.metric, controls.x_axis, controls.smoothing
        # series first (more than one step in some run), then single values
        series = sorted({k for r in self.runs for k, step in r.metric_steps.items() if step and step > 0})
        self.curve_metric.addItems(series + [k for k in self._metric_keys() if k not in series])
        self.curve_plot = make_plot(self.curves_tab)
        self.curve_plot.setObjectName("compareCurves")
        self.curves_tab.layout().addWidget(controls)
        self.curves_tab.layout().addWidget(self.curve_plot, 1)
        controls.changed.connect(self.draw_curves)
        self.draw_curves()

    def draw_curves(self) -> None:
        """Read the chosen metric's history of every run (off the main thread with a client), then draw."""
        from modelyard.core.experiments.tracking import metric_history

        key = self.curve_metric.currentText()
        if not key:
            self.curve_plot.clear()
            return
        runs = self.runs

        def read(store: Any) -> dict[str, Any]:
            return {run.id: metric_history(run.id, key, store=store, as_numpy=True)
                    for run in runs if key in run.metrics}

        if self.client is None:
            self._curves_read(key, read(self.store))
        else:
            self.client.read(f"compare.curves.{id(self)}", read, lambda h: self._curves_read(key, h),
                             lambda _exc: None)

    def _curves_read(self, key: str, histories: dict[str, Any]) -> None:
        import numpy as np

        if key != self.curve_metric.currentText():
            return  # another metric was chosen meanwhile
        self.curve_plot.clear()
        by_time = self.curve_x.currentIndex() == 1
        weight = self.curve_smoothing.value()
        for i, run in enumerate(self.runs):
            if run.id not in histories:
                continue
            steps, stamps, values = histories[run.id]
            if not len(values):
                continue
            xs = (stamps - stamps[0]) / 1000.0 if by_time else steps
            ys = smooth(values, weight) if weight > 0 else values
            pen = _pen(series_colour(i))
            self.curve_plot.plot(np.asarray(xs, dtype=float), ys, pen=pen, name=run_label(run),
                                 symbol="o" if len(values) < 40 else None, symbolSize=6,
                                 symbolBrush=series_colour(i), symbolPen=None)
        text = self.palette().color(QPalette.ColorRole.Text).name()
        self.curve_plot.setLabel("bottom", "time (s)" if by_time else "step", color=text)
        self.curve_plot.setLabel("left", key, color=text)

    # -- parallel coordinates
    def default_axes(self) -> list[str]:
        params = []
        for k in self._param_keys():
            if k in BOOKKEEPING_PARAMS:
                continue
            axis = make_axis(self.runs, f"params.{k}")
            if axis is not None and _differ(tuple(axis.values)):
                params.append(f"params.{k}")
        metrics = [f"metrics.{m}" for m in PREFERRED_METRICS if any(m in r.metrics for r in self.runs)]
        params = params[:MAX_AXES - min(len(metrics), 4)]  # keep room for a few metrics
        return params + metrics[:MAX_AXES - len(params)]

    def _build_parallel(self) -> None:
        self.axes_button = QToolButton(self)
        self.axes_button.setObjectName("parallelAxes")
        self.axes_button.setText("Axes")
        self.axes_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.axes_menu = QMenu(self)
        self.axes_button.setMenu(self.axes_menu)
        self.axes_menu.aboutToShow.connect(self._fill_axes_menu)
        self.parallel_keys = self.default_axes()
        note = QLabel("One vertical axis per parameter or metric, scaled from its lowest to its highest value "
                      "among these runs; one line per run.", self)
        note.setStyleSheet(f"color: {self.palette().color(QPalette.ColorRole.PlaceholderText).name()}")
        bar = QHBoxLayout()
        bar.addWidget(self.axes_button)
        bar.addWidget(note, 1)
        self.parallel_plot = make_plot(self.parallel_tab)
        self.parallel_plot.setObjectName("parallelPlot")
        self.parallel_tab.layout().addLayout(bar)
        self.parallel_tab.layout().addWidget(self.parallel_plot, 1)
        self.draw_parallel()

    def _fill_axes_menu(self) -> None:
        self.axes_menu.clear()
        for kind, keys in (("Parameters", self._param_keys()), ("Metrics", self._metric_keys())):
            self.axes_menu.addSection(kind)
            prefix = "params." if kind == "Parameters" else "metrics."
            for k in keys:
                key = prefix + k
                action = QAction(k, self.axes_menu)
                action.setCheckable(True)
                action.setChecked(key in self.parallel_keys)
                action.toggled.connect(lambda on, key=key: self.set_axis(key, on))
                self.axes_menu.addAction(action)

    def set_axis(self, key: str, shown: bool) -> None:
        if shown and key not in self.parallel_keys:
            self.parallel_keys.append(key)
        elif not shown and key in self.parallel_keys:
            self.parallel_keys.remove(key)
        self.draw_parallel()

    def parallel_axes(self) -> list[Axis]:
        return [a for a in (make_axis(self.runs, k) for k in self.parallel_keys) if a is not None]

    def draw_parallel(self) -> None:
        import pyqtgraph as pg

        plot = self.parallel_plot
        plot.clear()
        axes = self.parallel_axes()
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.showGrid(x=False, y=False)
        plot.setMouseEnabled(x=False, y=False)
        if not axes:
            msg = pg.TextItem("Choose some axes (Axes ▾).", color=muted, anchor=(0.5, 0.5))
            plot.addItem(msg)
            msg.setPos(0.5, 0.5)
            plot.setRange(xRange=(0, 1), yRange=(0, 1))
            return
        axis_pen = pg.mkPen(pal.color(QPalette.ColorRole.Mid), width=1.5)
        bottom, top = -0.1, 1.2
        span = ((0.0 - bottom) / (top - bottom), (1.0 - bottom) / (top - bottom))  # the axis from 0 to 1
        for j, ax in enumerate(axes):
            line = pg.InfiniteLine(pos=j, angle=90, pen=axis_pen, movable=False)
            line.setSpan(*span)
            plot.addItem(line)
            title = pg.TextItem(_short(ax.title, 20), color=text, anchor=(0.5, 1.0))
            title.setPos(j, 1.11)
            plot.addItem(title)
            lo, hi = ax.bounds()
            high = pg.TextItem(_short(ax.label(hi), 14), color=muted, anchor=(0.5, 1.0))
            high.setPos(j, 1.02)
            low = pg.TextItem(_short(ax.label(lo), 14), color=muted, anchor=(0.5, 0.0))
            low.setPos(j, -0.02)
            plot.addItem(high)
            plot.addItem(low)
        xs = list(range(len(axes)))
        for i, run in enumerate(self.runs):
            ys = [ax.normalised(i) for ax in axes]
            colour = series_colour(i)
            plot.plot(xs, ys, pen=_pen(colour, 2), connect="finite", symbol="o", symbolSize=7,
                      symbolBrush=colour, symbolPen=None, name=run_label(run))
        plot.setRange(xRange=(-0.4, len(axes) - 0.6), yRange=(bottom, top), padding=0)

    # -- scatter
    def _build_scatter(self) -> None:
        self.scatter_x = QComboBox(self)
        self.scatter_x.setObjectName("scatterX")
        self.scatter_y = QComboBox(self)
        self.scatter_y.setObjectName("scatterY")
        params = [k for k in self._param_keys() if k not in BOOKKEEPING_PARAMS] + \
            [k for k in self._param_keys() if k in BOOKKEEPING_PARAMS]
        self.scatter_x.addItems(params)
        self.scatter_y.addItems(self._metric_keys())
        differing = [k[len("params."):] for k in self.default_axes() if k.startswith("params.")]
        if differing:
            self.scatter_x.setCurrentText(differing[0])
        preferred = next((m for m in PREFERRED_METRICS if m in self._metric_keys()), None)
        if preferred:
            self.scatter_y.setCurrentText(preferred)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Parameter (x):", self))
        bar.addWidget(self.scatter_x)
        bar.addSpacing(theme.SPACE_L)
        bar.addWidget(QLabel("Metric (y):", self))
        bar.addWidget(self.scatter_y)
        bar.addStretch(1)
        self.scatter_plot = make_plot(self.scatter_tab)
        self.scatter_plot.setObjectName("scatterPlot")
        self.scatter_tab.layout().addLayout(bar)
        self.scatter_tab.layout().addWidget(self.scatter_plot, 1)
        self.scatter_x.currentTextChanged.connect(lambda _t: self.draw_scatter())
        self.scatter_y.currentTextChanged.connect(lambda _t: self.draw_scatter())
        self.draw_scatter()

    def draw_scatter(self) -> None:
        plot = self.scatter_plot
        plot.clear()
        x_key, y_key = self.scatter_x.currentText(), self.scatter_y.currentText()
        if not x_key or not y_key:
            return
        x_axis = make_axis(self.runs, f"params.{x_key}")
        y_axis = make_axis(self.runs, f"metrics.{y_key}")
        if x_axis is None or y_axis is None:
            return
        text = self.palette().color(QPalette.ColorRole.Text)
        xs: list[float] = []
        ys: list[float] = []
        for i, run in enumerate(self.runs):
            x, y = x_axis.position(i), y_axis.position(i)
            if x is None or y is None:
                continue
            xs.append(x)
            ys.append(y)
            colour = series_colour(i)
            item = plot.plot([x], [y], pen=None, symbol="o", symbolSize=12, symbolBrush=colour, symbolPen=None,
                             name=run_label(run))
            item.setToolTip(f"{run_label(run)}: {x_key} {x_axis.label(x)}, {y_key} {fmt_metric(y)}")
        bottom = plot.getAxis("bottom")
        if x_axis.categories is not None:
            bottom.setTicks([[(float(i), c) for i, c in enumerate(x_axis.categories)], []])
        else:
            bottom.setTicks(None)
        plot.setLabel("bottom", x_key, color=text.name())
        plot.setLabel("left", y_key, color=text.name())
        if xs:  # room around the points
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            dx = (x1 - x0) or max(abs(x0), 1.0)
            dy = (y1 - y0) or max(abs(y0) * 0.01, 1e-3)
            plot.setRange(xRange=(x0 - 0.1 * dx, x1 + 0.1 * dx), yRange=(y0 - 0.12 * dy, y1 + 0.12 * dy), padding=0)


def smooth(values: Any, weight: float) -> Any:
    """TensorBoard's debiased exponential moving average."""
    import numpy as np

    out = np.empty(len(values), dtype=float)
    last, n = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out[i] = v
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out[i] = last / (1 - weight**n)
    return out


def _pen(colour: QColor, width: float = 2) -> Any:
    import pyqtgraph as pg

    return pg.mkPen(colour, width=width)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


__all__ = ["CompareDialog", "DiffModel", "diff_rows", "make_axis", "smooth"]
