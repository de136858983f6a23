"""The run detail at a small window (1024x640): the Evaluation tab fits (confusion cells show their
text whole, the main plots are seen without scrolling, legends beside the plots, the scroll starts
at the top for each run) and the Charts tab opens on a curve (a metric logged once is a bar)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from factories import open_window, settle_panel
from modelyard.core.datasets import service as ds
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.spec import TrainSpec
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.ui.experiments.confusion import CELL_PADDING
from modelyard.ui.experiments.evaluation import EvaluationView
from modelyard.ui.experiments.panel import TAB_CHARTS, TAB_EVALUATION, ExperimentsPanel
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFont, QFontMetrics


def train(store, dataset: str, n_estimators: int, name: str) -> str:
    """A real training run (in this process: quicker than the window's child process)."""
    spec = TrainSpec(dataset=dataset, model="random_forest", params={"n_estimators": n_estimators},
                     experiment=dataset, split={"test": 0.25, "seed": 0}, run_name=name)
    outcome = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="train",
                                     params={"spec": spec.to_json()}))
    assert outcome.status == "succeeded", outcome.error
    return outcome.result["run_id"]


def add_sample(store, name: str) -> None:
    df, target = ds.sample_frame(name)
    ds.import_frame(store, df, name, target=target)


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store, (1024, 640))
    w.jobs_dock.hide()  # idle: the Jobs dock is a status-bar strip
    yield w
    w.close()


def panel_of(window) -> ExperimentsPanel:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def show_run(qtbot, panel, run_id: str) -> None:
    panel.refresh()
    qtbot.waitUntil(lambda: panel.runs_model.row_of(run_id) >= 0, timeout=8000)
    panel.select_run(run_id)
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == run_id, timeout=8000)
    settle_panel(panel)


def select_tab(qtbot, panel, index: int) -> None:
    bar = panel.detail_tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    settle_panel(panel)


def assert_cells_fit(view) -> None:
    """Every cell's text, line by line, fits its rectangle (measured in the cell's font)."""
    model = view.model()
    assert model.rowCount() and model.columnCount()
    for r in range(model.rowCount()):
        for c in range(model.columnCount()):
            index = model.index(r, c)
            rect: QRect = view.visualRect(index)
            font = model.data(index, Qt.ItemDataRole.FontRole) or QFont(view.font())
            fm = QFontMetrics(font)
            lines = str(model.data(index)).split("\n")
            count, share = model.lines(r, c)
            assert "".join(lines).replace(" · ", "") == count + share  # the whole count and share
            widest = max(fm.horizontalAdvance(line) for line in lines)
            assert widest + 8 <= rect.width(), f"{lines} is {widest} px wide in a {rect.width()} px cell"
            assert fm.lineSpacing() * len(lines) <= rect.height(), f"{lines} in a {rect.height()} px high cell"


# --------------------------------------------------------------------------- the confusion matrix


@pytest.mark.parametrize("width", [240, 330, 700])
def test_a_confusion_cell_shows_its_count_and_share_whole_at_any_width(qtbot, width):
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(width, 420)
    view.show()
    info = SimpleNamespace(id="r1", status="succeeded", tags={})
    view.show_records(info, {"confusion_matrix": {"labels": ["stayed", "churned"],
                                                  "matrix": [[894, 0], [12, 1_203]]}})
    qtbot.waitUntil(lambda: view.confusion_view.isVisible())
    cm = view.confusion_view
    assert_cells_fit(cm)
    one_line = QFontMetrics(cm._cell_font()).horizontalAdvance("1,203 · 99%") + CELL_PADDING
    two = cm.viewport().width() / 2 < one_line
    assert ("\n" in cm.model().data(cm.model().index(0, 0))) == two  # two lines only where one does not fit
    assert cm.model().data(cm.model().index(0, 0)) in ("894 · 100%", "894\n100%")


def test_the_evaluation_fits_a_small_window_and_starts_at_the_top_for_each_run(qtbot, window, store):
    add_sample(store, "iris")
    first = train(store, "iris", 5, "forest-5")
    second = train(store, "iris", 8, "forest-8")
    panel = panel_of(window)
    show_run(qtbot, panel, first)
    select_tab(qtbot, panel, TAB_EVALUATION)
    ev = panel.evaluation
    qtbot.waitUntil(lambda: ev.run_id == first and ev.confusion_model is not None, timeout=8000)
    qtbot.wait(50)  # the grid lays out on the next turn
    assert_cells_fit(ev.confusion_view)
    # the confusion matrix and the ROC curve side by side, whole, in the visible area
    seen = ev.scroll.viewport().rect()
    rects = ev.card_rects()
    for title in ("Confusion matrix", "ROC curve"):
        assert seen.contains(rects[title]), f"{title} {rects[title]} is not whole in the visible {seen}"
    assert rects["Confusion matrix"].top() == rects["ROC curve"].top()
    # the legend is a list beside the plot, not drawn over its curves
    roc_card = next(c for c in ev.cards if c.title == "ROC curve")
    assert roc_card.legend is not None and len(roc_card.legend.entries) == 3
    assert ev.plots["ROC curve"].getPlotItem().legend is None
    # scrolled down to the importance, then another run: its evaluation starts at the top
    bar = ev.scroll.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())
    show_run(qtbot, panel, second)
    qtbot.waitUntil(lambda: ev.run_id == second, timeout=8000)
    assert bar.value() == 0


# --------------------------------------------------------------------------- charts


def test_charts_open_on_a_curve_and_draw_a_metric_logged_once_as_a_bar(qtbot, window, store):
    import pyqtgraph as pg

    with tracking.start_run("churn", store=store, name="script") as run:
        run.log_metrics({"accuracy": 0.91, "f1": 0.88})  # alphabetically first, but one value each
        for step in range(20):
            run.log_metric("val_loss", 1.0 / (step + 1), step=step)
    panel = panel_of(window)
    show_run(qtbot, panel, run.id)
    select_tab(qtbot, panel, TAB_CHARTS)
    assert panel.metric_combo.currentText() == "val_loss"
    qtbot.waitUntil(lambda: panel.plot is not None and bool(panel.plot.listDataItems()), timeout=8000)
    curve = panel.plot.listDataItems()[-1]
    assert len(curve.getOriginalDataset()[0]) == 20
    # a metric logged once: a bar with its value, not a lone dot
    panel.metric_combo.setCurrentText("accuracy")
    settle_panel(panel)
    qtbot.waitUntil(lambda: any(isinstance(i, pg.BarGraphItem) for i in panel.plot.getPlotItem().items), timeout=8000)
    assert not any(isinstance(i, pg.PlotDataItem) for i in panel.plot.listDataItems())  # no dot
    texts = [i.textItem.toPlainText() for i in panel.plot.getPlotItem().items if isinstance(i, pg.TextItem)]
    assert texts == ["0.91"], texts
    # back to the curve: the bar is gone
    panel.metric_combo.setCurrentText("val_loss")
    settle_panel(panel)
    qtbot.waitUntil(lambda: any(isinstance(i, pg.PlotDataItem) for i in panel.plot.listDataItems()), timeout=8000)
    assert not any(isinstance(i, pg.BarGraphItem) for i in panel.plot.getPlotItem().items)
    # the plot is readable at 1024x640: most of the tab
    assert panel.plot.height() >= 150
