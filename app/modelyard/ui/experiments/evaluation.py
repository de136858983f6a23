"""What a trained run recorded, shown in the run detail's Evaluation tab: the confusion matrix,
ROC and precision-recall curves or residual plots, and permutation importance.

Every view reads the run's JSON artifacts (see the docstring of
:mod:`modelyard.core.experiments.training.train` for their shapes) through ``store.artifacts``, off
the main thread (the panel's client calls :meth:`EvaluationView.read`). pyqtgraph is imported inside
the functions that draw, never when this module loads.

The cards fill the tab: as many columns as the width holds, and each row of cards as tall as the
visible area (two rows when it is tall enough), so the first plots are seen without scrolling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import plural
from modelyard.core.experiments.tracking.queries import run_artifact_json
from modelyard.ui.common import theme
from modelyard.ui.experiments.confusion import ConfusionModel, ConfusionView
from modelyard.ui.experiments.plots import (
    SERIES_COLOURS,
    LegendList,
    add_legend,
    make_plot,
    series_colour,
)
from modelyard.ui.experiments.plots import muted as _muted
from modelyard.ui.experiments.plots import pen as _pen
from modelyard.ui.experiments.reproducibility import (  # re-exported: the Reproducibility tab's home
    ReproducibilityView,
    ReproductionDialog,
    flatten_record,
)

CARD_MIN_WIDTH = 280
CARD_MIN_HEIGHT = 190  # below this a card's plot is unreadable: the grid scrolls instead
CARD_PAGE_HEIGHT = 300  # two rows of cards share the visible height only when each gets this much
TOP_FEATURES = 10



# --------------------------------------------------------------------------- the Evaluation tab


class _Card(QFrame):
    """A titled box in the evaluation grid."""

    def __init__(self, title: str, body: QWidget, caption: str = "", parent: QWidget | None = None,
                 legend: LegendList | None = None) -> None:
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
        if legend is not None:
            legend.setParent(self)
            layout.addWidget(legend)
        if caption:
            note = QLabel(caption, self)
            note.setWordWrap(True)
            note.setStyleSheet(f"color: {_muted(self).name()}")
            layout.addWidget(note)
        self.title = title
        self.body = body
        self.legend = legend
        self.setMinimumSize(CARD_MIN_WIDTH, CARD_MIN_HEIGHT)


class EvaluationView(QWidget):
    """The Evaluation tab: confusion matrix, ROC and PR curves (classification) or residual plots
    (regression), and permutation importance, in a grid that reflows with the width and whose rows
    are as tall as the visible area (the first row is seen whole without scrolling)."""

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
        self._row_height = 0
        self.run_id: str | None = None

    def clear(self) -> None:
        for card in self.cards:
            self.grid.removeWidget(card)
            card.deleteLater()
        self.cards = []
        self.plots = {}
        self.confusion_model = None
        self._columns = 0
        self._row_height = 0

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
        if info.id != self.run_id:  # another run: read it from its top, not where the last one was left
            self.scroll.verticalScrollBar().setValue(0)
            self.scroll.horizontalScrollBar().setValue(0)
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
        height = max(self.scroll.height(), 1)
        per_page = 2 if height >= 2 * CARD_PAGE_HEIGHT + theme.SPACE_M else 1
        least = max([CARD_MIN_HEIGHT] + [card.minimumSizeHint().height() for card in self.cards])
        row_height = max(least, (height - theme.SPACE_M * (per_page - 1)) // per_page)
        if (columns, row_height) == (self._columns, self._row_height) and not force:
            return
        self._columns, self._row_height = columns, row_height
        for card in self.cards:
            self.grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            card.setFixedHeight(row_height)
            self.grid.addWidget(card, i // columns, i % columns)
            card.show()
        for c in range(self.grid.columnCount()):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def card_rects(self) -> dict[str, Any]:
        """Each card's rectangle in the scroll area's viewport (for tests: what is seen without scrolling)."""
        viewport = self.scroll.viewport()
        return {card.title: card.geometry().translated(self.inner.pos()) for card in self.cards
                if card.parent() is self.inner and viewport is not None}

    # -- cards
    def _confusion_card(self, data: Mapping[str, Any]) -> _Card:
        self.confusion_model = ConfusionModel(self)
        self.confusion_model.set_matrix(data)
        view = ConfusionView(self.confusion_model, self.inner)
        self.confusion_view = view
        n = int(data.get("n") or sum(sum(r) for r in self.confusion_model.matrix))
        return _Card("Confusion matrix", view, f"Rows: the actual class; columns: the predicted one ({plural(n, 'test row')}).",
                     self.inner)

    def _roc_card(self, data: Mapping[str, Any]) -> _Card:
        plot = make_plot(self.inner, "false positive rate", "true positive rate")
        plot.setObjectName("rocPlot")
        plot.plot([0, 1], [0, 1], pen=_pen(_muted(self), 1, dashed=True))
        entries = []
        for i, curve in enumerate(data.get("curves", [])):
            auc = curve.get("auc")
            entries.append((f"{curve.get('label')}" + (f" AUC {auc:.3f}" if isinstance(auc, (int, float)) else ""),
                            series_colour(i)))
            plot.plot(curve.get("fpr", []), curve.get("tpr", []), pen=_pen(series_colour(i)))
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.plots["ROC curve"] = plot
        macro = data.get("auc_macro")
        caption = f"Macro AUC {macro:.3f}, one class against the rest." if isinstance(macro, (int, float)) and \
            data.get("kind") == "one_vs_rest" else ""
        return _Card("ROC curve", plot, caption, self.inner, legend=self._legend(entries))

    def _pr_card(self, data: Mapping[str, Any]) -> _Card:
        plot = make_plot(self.inner, "recall", "precision")
        plot.setObjectName("prPlot")
        entries = []
        for i, curve in enumerate(data.get("curves", [])):
            ap = curve.get("average_precision")
            entries.append((f"{curve.get('label')}" + (f" AP {ap:.3f}" if isinstance(ap, (int, float)) else ""),
                            series_colour(i)))
            plot.plot(curve.get("recall", []), curve.get("precision", []), pen=_pen(series_colour(i)))
            prevalence = curve.get("prevalence")
            if isinstance(prevalence, (int, float)) and len(data.get("curves", [])) == 1:
                plot.plot([0, 1], [prevalence, prevalence], pen=_pen(_muted(self), 1, dashed=True))
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.plots["Precision-recall curve"] = plot
        return _Card("Precision-recall curve", plot, "", self.inner, legend=self._legend(entries))

    def _legend(self, entries: list[tuple[str, QColor]]) -> LegendList:
        """The curves' names beside the plot (a legend inside it covered the curves of small plots)."""
        legend = LegendList(self.inner)
        legend.set_entries(entries)
        return legend

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
        shown = f"{int(data.get('shown') or len(actual)):,} of {plural(int(data.get('n') or len(actual)), 'test row')}"

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
        caption = f"Top {n} of {plural(total, 'feature')}; bars show the mean of {plural(int(data.get('n_repeats', 5)), 'shuffle')}, " \
                  f"whiskers one standard deviation." if total else "No features."
        return _Card("Permutation importance", plot, caption, self.inner)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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

