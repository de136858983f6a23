"""What a trained run recorded, shown in the run detail: its evaluation plots, its
reproducibility record, and the report of a reproduction.

Every view reads the run's JSON artifacts (see the docstring of
:mod:`modelyard.core.experiments.training.train` for their shapes) through ``store.artifacts``: small files
(at most a few thousand points), read on the main thread when the tab is shown. pyqtgraph is
imported inside the functions that draw, never when this module loads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.experiments.tracking.queries import run_artifact_json
from modelyard.ui.common import theme
from modelyard.ui.common.rows import RowsTableModel

# Distinguishable line colours (one per class or per run), readable on light and dark bases.
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f")
CARD_MIN_WIDTH = 300
CARD_MIN_HEIGHT = 210
TOP_FEATURES = 10


def series_colour(i: int) -> QColor:
    return QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])


# --------------------------------------------------------------------------- plots


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
    plot.setMinimumSize(CARD_MIN_WIDTH - 20, CARD_MIN_HEIGHT - 40)
    return plot


def add_legend(plot: Any, offset: tuple[int, int] = (-8, 8)) -> Any:
    """A legend in a corner: offset's signs pick it ((-8, 8): top right, (-8, -8): bottom right)."""
    legend = plot.addLegend(offset=offset, labelTextSize="8pt")
    legend.setLabelTextColor(plot.palette().color(QPalette.ColorRole.Text))
    base = QColor(plot.palette().color(QPalette.ColorRole.Base))
    base.setAlpha(200)
    legend.setBrush(base)
    return legend


def _pen(colour: QColor | str, width: float = 2, dashed: bool = False) -> Any:
    import pyqtgraph as pg

    return pg.mkPen(QColor(colour), width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)


def _muted(widget: QWidget) -> QColor:
    return widget.palette().color(QPalette.ColorRole.PlaceholderText)


# --------------------------------------------------------------------------- confusion matrix


class ConfusionModel(QAbstractTableModel):
    """Rows: the actual class; columns: the predicted class. Cells shade with their row share."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.matrix: list[list[int]] = []
        self.normalized: list[list[float]] = []

    def set_matrix(self, data: Mapping[str, Any] | None) -> None:
        self.beginResetModel()
        data = data or {}
        self.labels = [str(x) for x in data.get("labels", [])]
        self.matrix = [list(r) for r in data.get("matrix", [])]
        norm = data.get("normalized")
        if not norm:
            norm = [[(c / s if s else 0.0) for c in row] for row in self.matrix for s in [sum(row)]]
        self.normalized = [list(r) for r in norm]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.matrix)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.labels)

    def share(self, row: int, column: int) -> float:
        try:
            return float(self.normalized[row][column] or 0.0)
        except (IndexError, TypeError, ValueError):
            return 0.0

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if section >= len(self.labels):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.labels[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{'predicted' if orientation == Qt.Orientation.Horizontal else 'actual'}: {self.labels[section]}"
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        share = self.share(r, c)
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self.matrix[r][c]:,}  ·  {share:.0%}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            colour = QColor(theme.status_colour("ok" if r == c else "failed"))
            colour.setAlpha(int(20 + 130 * share))
            return colour
        if role == Qt.ItemDataRole.FontRole and r == c:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"actual {self.labels[r]}, predicted {self.labels[c]}: {self.matrix[r][c]:,} rows "
                    f"({share:.1%} of the actual {self.labels[r]})")
        return None


# --------------------------------------------------------------------------- the Evaluation tab


class _Card(QFrame):
    """A titled box in the evaluation grid."""

    def __init__(self, title: str, body: QWidget, caption: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluationCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_M, theme.SPACE_S, theme.SPACE_M, theme.SPACE_M)
        layout.setSpacing(theme.SPACE_S)
        head = QLabel(title, self)
        theme.make_heading(head, 1.0)
        layout.addWidget(head)
        layout.addWidget(body, 1)
        if caption:
            note = QLabel(caption, self)
            note.setWordWrap(True)
            note.setStyleSheet(f"color: {_muted(self).name()}")
            layout.addWidget(note)
        self.title = title
        self.body = body
        self.setMinimumSize(CARD_MIN_WIDTH, CARD_MIN_HEIGHT)


class EvaluationView(QWidget):
    """The Evaluation tab: confusion matrix, ROC and PR curves (classification) or residual plots
    (regression), and permutation importance, in a grid that reflows with the width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluationView")
        self.cards: list[_Card] = []
        self.plots: dict[str, Any] = {}  # card title -> PlotWidget (for tests and screenshots)
        self.confusion_model: ConfusionModel | None = None
        self.message = QLabel(self)
        self.message.setObjectName("evaluationMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {_muted(self).name()}")
        self.inner = QWidget(self)
        self.grid = QGridLayout(self.inner)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(theme.SPACE_M)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)
        self._columns = 0
        self.run_id: str | None = None

    def clear(self) -> None:
        for card in self.cards:
            self.grid.removeWidget(card)
            card.deleteLater()
        self.cards = []
        self.plots = {}
        self.confusion_model = None
        self._columns = 0

    def show_message(self, text: str) -> None:
        self.clear()
        self.message.setText(text)
        self.message.show()
        self.scroll.hide()

    RECORDS = ("confusion_matrix", "roc_curve", "pr_curve", "residuals", "permutation_importance")

    @classmethod
    def read(cls, store: Any, info: Any) -> dict[str, Any]:
        """The evaluation records of ``info`` (a RunInfo), read from the artifact store: call it off
        the main thread and hand the result to :meth:`show_records`."""
        return {name: run_artifact_json(store, info, f"evaluation/{name}.json") for name in cls.RECORDS}

    def show_run(self, store: Any, info: Any) -> None:
        """Read and draw (on the calling thread: the panel reads off the main one, then calls :meth:`show`)."""
        self.show_records(info, self.read(store, info))

    def show_records(self, info: Any, records: dict[str, Any]) -> None:
        """Draw what ``info`` (a RunInfo) recorded; a message when it recorded no evaluation."""
        self.clear()
        self.run_id = info.id
        confusion, roc, pr, residuals, importance = (records.get(name) for name in self.RECORDS)
        if not any((confusion, roc, pr, residuals, importance)):
            if info.status == "running":
                text = "The run is still training: its evaluation appears when it ends."
            elif info.tags.get("search_trial"):
                text = ("A search trial records only its score. The search's own run holds the evaluation of the "
                        "best parameters.")
            else:
                text = ("This run recorded no evaluation. Runs trained in Modelyard record a confusion matrix, ROC "
                        "and precision-recall curves or residuals, and feature importance.")
            self.show_message(text)
            return
        self.message.hide()
        self.scroll.show()
        builders: list[tuple[str, Any]] = []
        if confusion:
            builders.append(("Confusion matrix", lambda: [self._confusion_card(confusion)]))
        if roc:
            builders.append(("ROC curve", lambda: [self._roc_card(roc)]))
        if pr:
            builders.append(("Precision-recall curve", lambda: [self._pr_card(pr)]))
        if residuals:
            builders.append(("Residuals", lambda: self._residual_cards(residuals)))
        if importance:
            builders.append(("Permutation importance", lambda: [self._importance_card(importance)]))
        for title, build in builders:
            try:
                cards = build()
            except Exception as exc:  # noqa: BLE001 - one unreadable artifact must not blank the tab
                self._drop_strays()
                note = QLabel(f"Cannot draw this record: {type(exc).__name__}: {exc}", self.inner)
                note.setWordWrap(True)
                cards = [_Card(title, note, "", self.inner)]
            for card in cards:
                self._add(card)
        self._reflow(force=True)

    def _drop_strays(self) -> None:
        """Delete widgets a failed card left behind in the grid's holder."""
        keep = set(self.cards)
        for child in self.inner.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if child not in keep:
                child.hide()
                child.deleteLater()

    def _add(self, card: _Card) -> None:
        card.setParent(self.inner)
        self.cards.append(card)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._reflow()

    def _reflow(self, force: bool = False) -> None:
        width = max(self.scroll.viewport().width(), self.width() - 4, 1)
        columns = max(1, min(len(self.cards) or 1, width // (CARD_MIN_WIDTH + theme.SPACE_M)))
        if columns == self._columns and not force:
            return
        self._columns = columns
        for card in self.cards:
            self.grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self.grid.addWidget(card, i // columns, i % columns)
            card.show()
        for c in range(self.grid.columnCount()):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    # -- cards
    def _confusion_card(self, data: Mapping[str, Any]) -> _Card:
        self.confusion_model = ConfusionModel(self)
        self.confusion_model.set_matrix(data)
        view = QTableView(self.inner)
        view.setObjectName("confusionMatrix")
        view.setModel(self.confusion_model)
        view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        view.setShowGrid(True)
        view.setWordWrap(False)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        n = int(data.get("n") or sum(sum(r) for r in self.confusion_model.matrix))
        return _Card("Confusion matrix", view, f"Rows: the actual class; columns: the predicted one ({n:,} test rows).",
                     self.inner)

    def _roc_card(self, data: Mapping[str, Any]) -> _Card:
        plot = make_plot(self.inner, "false positive rate", "true positive rate")
        plot.setObjectName("rocPlot")
        add_legend(plot, (-8, -8))
        plot.plot([0, 1], [0, 1], pen=_pen(_muted(self), 1, dashed=True))
        for i, curve in enumerate(data.get("curves", [])):
            auc = curve.get("auc")
            name = f"{curve.get('label')}" + (f"  AUC {auc:.3f}" if isinstance(auc, (int, float)) else "")
            plot.plot(curve.get("fpr", []), curve.get("tpr", []), pen=_pen(series_colour(i)), name=name)
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.plots["ROC curve"] = plot
        macro = data.get("auc_macro")
        caption = f"Macro AUC {macro:.3f}, one class against the rest." if isinstance(macro, (int, float)) and \
            data.get("kind") == "one_vs_rest" else ""
        return _Card("ROC curve", plot, caption, self.inner)

    def _pr_card(self, data: Mapping[str, Any]) -> _Card:
        plot = make_plot(self.inner, "recall", "precision")
        plot.setObjectName("prPlot")
        add_legend(plot, (8, -8))
        for i, curve in enumerate(data.get("curves", [])):
            ap = curve.get("average_precision")
            name = f"{curve.get('label')}" + (f"  AP {ap:.3f}" if isinstance(ap, (int, float)) else "")
            plot.plot(curve.get("recall", []), curve.get("precision", []), pen=_pen(series_colour(i)), name=name)
            prevalence = curve.get("prevalence")
            if isinstance(prevalence, (int, float)) and len(data.get("curves", [])) == 1:
                plot.plot([0, 1], [prevalence, prevalence], pen=_pen(_muted(self), 1, dashed=True))
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.plots["Precision-recall curve"] = plot
        return _Card("Precision-recall curve", plot, "", self.inner)

    def _residual_cards(self, data: Mapping[str, Any]) -> list[_Card]:
        import numpy as np
        import pyqtgraph as pg

        pts = data.get("points") or {}
        actual = np.asarray(pts.get("actual", []), dtype=float)
        predicted = np.asarray(pts.get("predicted", []), dtype=float)
        residual = np.asarray(pts.get("residual", []), dtype=float)
        highlight = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        dots = QColor(highlight)
        dots.setAlpha(140)
        cards = []
        shown = f"{int(data.get('shown') or len(actual)):,} of {int(data.get('n') or len(actual)):,} test rows"

        fit = make_plot(self.inner, "actual", "predicted")
        fit.setObjectName("predictedPlot")
        if len(actual):
            lo = float(np.nanmin([actual.min(), predicted.min()]))
            hi = float(np.nanmax([actual.max(), predicted.max()]))
            fit.plot([lo, hi], [lo, hi], pen=_pen(_muted(self), 1, dashed=True))
            fit.addItem(pg.ScatterPlotItem(actual, predicted, size=5, pen=None, brush=dots))
        self.plots["Predicted against actual"] = fit
        cards.append(_Card("Predicted against actual", fit, f"The dashed line is a perfect prediction ({shown}).",
                           self.inner))

        res = make_plot(self.inner, "predicted", "actual − predicted")
        res.setObjectName("residualPlot")
        if len(predicted):
            res.addItem(pg.InfiniteLine(pos=0, angle=0, pen=_pen(_muted(self), 1, dashed=True)))
            res.addItem(pg.ScatterPlotItem(predicted, residual, size=5, pen=None, brush=dots))
        self.plots["Residuals"] = res
        summary = data.get("summary") or {}
        caption = ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, (int, float)))
        cards.append(_Card("Residuals", res, caption, self.inner))

        hist = data.get("histogram") or {}
        edges, counts = hist.get("edges") or [], hist.get("counts") or []
        if len(edges) == len(counts) + 1 and counts:
            hp = make_plot(self.inner, "residual", "rows")
            hp.setObjectName("residualHistogram")
            hp.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, pen=pg.mkPen(highlight.darker(120)),
                                       brush=dots))
            self.plots["Residual distribution"] = hp
            cards.append(_Card("Residual distribution", hp, "All test rows.", self.inner))
        return cards

    def _importance_card(self, data: Mapping[str, Any]) -> _Card:
        import pyqtgraph as pg

        features = list(data.get("features", []))[:TOP_FEATURES]
        plot = make_plot(self.inner, f"{data.get('metric', 'score')} lost when shuffled", "")
        plot.setObjectName("importancePlot")
        n = len(features)
        highlight = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        if n:
            import numpy as np

            ys = np.arange(n - 1, -1, -1, dtype=float)  # the most important on top
            means = np.asarray([float(f.get("mean") or 0.0) for f in features])
            stds = np.asarray([float(f.get("std") or 0.0) for f in features])
            plot.addItem(pg.BarGraphItem(x0=[0.0] * n, y=ys, height=0.6, width=means, pen=None, brush=highlight))
            plot.addItem(pg.ErrorBarItem(x=means, y=ys, left=stds, right=stds, beam=0.2,
                                         pen=pg.mkPen(self.palette().color(QPalette.ColorRole.Text))))
            names = [_short(str(f.get("name")), 22) for f in features]
            plot.getAxis("left").setTicks([[(float(y), name) for y, name in zip(ys, names, strict=True)], []])
            plot.showGrid(x=True, y=False, alpha=0.2)
            plot.setYRange(-0.6, n - 0.4, padding=0)
        self.plots["Permutation importance"] = plot
        total = len(data.get("features", []))
        caption = f"Top {n} of {total} features; bars show the mean of {data.get('n_repeats', 5)} shuffles, " \
                  f"whiskers one standard deviation." if total else "No features."
        return _Card("Permutation importance", plot, caption, self.inner)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------- reproducibility record


def flatten_record(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """reproducibility.json as (key, value) rows: nested keys dotted, lists joined, the spec as JSON."""
    rows: list[tuple[str, str]] = []

    def fmt(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple)):
            return ", ".join(fmt(v) for v in value)
        return str(value)

    def walk(prefix: str, value: Any) -> None:
        if prefix == "spec":
            rows.append((prefix, json.dumps(value, sort_keys=True)))
        elif isinstance(value, Mapping) and prefix.endswith("counts"):
            rows.append((prefix, ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items())))
        elif isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows.append((prefix, fmt(value)))

    order = ["dataset", "split", "seed", "target", "task", "features", "python", "python_implementation", "platform",
             "system", "machine", "packages", "modelyard", "threads", "git", "spec"]
    for key in order + [k for k in record if k not in order]:
        if key in record:
            walk(key, record[key])
    return rows


class KeyValueModel(RowsTableModel[tuple[str, str]]):
    headers = ("Fact", "Recorded")

    def cell(self, kv: tuple[str, str], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return kv[column]
        return None


class ReproducibilityView(QWidget):
    """The Reproducibility tab: what the run recorded to be retrained exactly, and for a
    reproduction run, its verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reproducibilityView")
        self.verdict = QLabel(self)
        self.verdict.setObjectName("reproductionVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.hide()
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {_muted(self).name()}")
        self.model = KeyValueModel(self)
        self.view = QTableView(self)
        self.view.setObjectName("reproducibilityTable")
        self.view.setModel(self.model)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().resizeSection(0, 200)
        self.view.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addWidget(self.verdict)
        layout.addWidget(self.message)
        layout.addWidget(self.view, 1)

    @staticmethod
    def read(store: Any, info: Any) -> dict[str, Any]:
        """``info``'s reproducibility record and reproduction report (off the main thread)."""
        return {"record": run_artifact_json(store, info, "reproducibility.json"),
                "report": run_artifact_json(store, info, "reproduction.json")}

    def show_run(self, store: Any, info: Any) -> None:
        self.show_records(info, self.read(store, info))

    def show_records(self, info: Any, records: dict[str, Any]) -> None:
        record, report = records.get("record"), records.get("report")
        if report:
            self.verdict.setText(verdict_html(report))
            self.verdict.show()
        else:
            self.verdict.hide()
        if record:
            self.model.set_rows(flatten_record(record))
            self.message.setText("What this run used, recorded so that <b>Reproduce</b> can retrain it and say which "
                                 "fact changed if the result differs.")
            self.message.setTextFormat(Qt.TextFormat.RichText)
            self.view.show()
        else:
            self.model.set_rows([])
            self.view.hide()
            self.message.setText("This run has no reproducibility record: it was not trained by Modelyard"
                                 + (" (a search trial: its search's run holds the record)." if info.tags.get("search_trial")
                                    else " (perhaps logged from a script)."))

    def rows(self) -> dict[str, str]:
        return dict(self.model.rows)


def verdict_html(report: Mapping[str, Any]) -> str:
    ok = bool(report.get("matches"))
    colour = theme.status_colour("ok" if ok else "warning").name()
    head = "Matches" if ok else "Does not match"
    return f"<b style='color:{colour}'>{'✔' if ok else '⚠'} {head}</b> — {report.get('summary', '')}"


# --------------------------------------------------------------------------- the reproduction report


class _MetricRowsModel(RowsTableModel[dict[str, Any]]):
    headers = ("Metric", "Recorded", "Reproduced", "Result")

    def cell(self, m: dict[str, Any], column: int, role: int) -> Any:
        equal = bool(m.get("equal"))
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return str(m.get("key"))
            if column in (1, 2):
                v = m.get("recorded" if column == 1 else "reproduced")
                return "—" if v is None else (f"{v:.10g}" if isinstance(v, float) else str(v))
            if equal:
                return "equal"
            diff = m.get("abs_diff")
            return "differs" + (f" by {diff:.3g}" if isinstance(diff, (int, float)) and math.isfinite(diff) else "")
        if role == Qt.ItemDataRole.DecorationRole and column == 3:
            return theme.status_icon("ok" if equal else "warning")
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            return theme.status_colour("ok" if equal else "warning")
        if role == Qt.ItemDataRole.BackgroundRole and not equal:
            colour = QColor(theme.status_colour("warning"))
            colour.setAlpha(40)
            return colour
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _FactRowsModel(RowsTableModel[dict[str, Any]]):
    headers = ("Fact", "Recorded", "Now")

    def cell(self, d: dict[str, Any], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            v = (d.get("fact"), d.get("recorded"), d.get("now"))[column]
            return "—" if v is None else str(v)
        return None


class ReproductionDialog(QDialog):
    """The result of a reproduce job: metric by metric equal or not, and which recorded facts differ."""

    show_run_requested = Signal(str)

    def __init__(self, result: Mapping[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reproductionDialog")
        self.result_ = dict(result)
        self.matches = bool(result.get("matches"))
        self.setWindowTitle("Reproduction: " + ("matches" if self.matches else "does not match"))
        self.resize(720, 520)
        self.verdict = QLabel(verdict_html(result), self)
        self.verdict.setObjectName("reproductionVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        original, new = str(result.get("run_id") or ""), str(result.get("new_run_id") or "")
        ids = QLabel(f"Recorded run {original[:12]} · reproduced as run {new[:12]}", self)
        ids.setStyleSheet(f"color: {_muted(self).name()}")
        ids.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.metrics_model = _MetricRowsModel(self)
        self.metrics_model.set_rows(sorted(result.get("metrics", []), key=lambda m: (bool(m.get("equal")), m.get("key"))))
        self.metrics_view = self._table(self.metrics_model, "reproductionMetrics")
        self.facts_model = _FactRowsModel(self)
        self.facts_model.set_rows(list(result.get("differences", [])))
        self.facts_view = self._table(self.facts_model, "reproductionFacts")
        facts_title = QLabel("Recorded facts that differ now", self)
        theme.make_heading(facts_title, 1.0)
        self.no_facts = QLabel("None: the data, split, packages and platform are as recorded.", self)
        self.no_facts.setStyleSheet(f"color: {_muted(self).name()}")
        has_facts = bool(result.get("differences"))
        self.facts_view.setVisible(has_facts)
        self.no_facts.setVisible(not has_facts)
        metrics_title = QLabel("Metrics", self)
        theme.make_heading(metrics_title, 1.0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        show = buttons.addButton("Show the new run", QDialogButtonBox.ButtonRole.ActionRole)
        show.setEnabled(bool(new))
        show.clicked.connect(lambda: (self.show_run_requested.emit(new), self.accept()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(theme.SPACE_L, theme.SPACE_L, theme.SPACE_L, theme.SPACE_L)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.verdict)
        layout.addWidget(ids)
        layout.addWidget(metrics_title)
        layout.addWidget(self.metrics_view, 3)
        layout.addWidget(facts_title)
        layout.addWidget(self.facts_view, 1)
        layout.addWidget(self.no_facts)
        layout.addWidget(buttons)

    def _table(self, model: Any, name: str) -> QTableView:
        view = QTableView(self)
        view.setObjectName(name)
        view.setModel(model)
        view.verticalHeader().hide()
        view.verticalHeader().setDefaultSectionSize(22)
        view.setShowGrid(False)
        view.setWordWrap(False)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        return view

    def metric_results(self) -> dict[str, bool]:
        return {str(m.get("key")): bool(m.get("equal")) for m in self.metrics_model.rows}


__all__ = [
    "SERIES_COLOURS",
    "ConfusionModel",
    "EvaluationView",
    "ReproducibilityView",
    "ReproductionDialog",
    "add_legend",
    "flatten_record",
    "make_plot",
    "series_colour",
]

