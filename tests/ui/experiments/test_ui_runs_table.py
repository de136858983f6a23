"""The runs table tells the truth at a glance: cross-validation columns are the mean over the folds,
a search's trials sit under it with the best one marked, the primary metrics come first, Compare
counts only the rows shown, the detail follows the experiment, a training's row appears when it
starts, and the next steps (Register, Train on a version) are buttons."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
from factories import churn_frame, open_window
from factories import settle_panel as settle
from modelyard.core.datasets import service
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import models as m
from modelyard.ui.experiments.panel import ExperimentsPanel
from modelyard.ui.experiments.runs_table import BEST, RUN_ID_ROLE
from PySide6.QtCore import QPoint, Qt
from sqlalchemy import select


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store, (1280, 800))
    yield w
    w.close()


def panel_of(window) -> ExperimentsPanel:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def cell(panel, row: int, column: str, role=Qt.ItemDataRole.DisplayRole):
    model = panel.runs_model
    return model.data(model.index(row, model.columns.index(column)), role)


def wait_rows(qtbot, panel, n: int, timeout: int = 8000) -> None:
    qtbot.waitUntil(lambda: panel.full is not None and panel.runs_model.rowCount() == n, timeout=timeout)


def click_row(qtbot, panel, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    view = panel.runs_view
    rect = view.visualRect(panel.runs_model.index(row, panel.runs_model.columns.index("start_time")))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def train(store, **spec) -> dict:
    outcome = run_job(store, train_spec_job(TrainSpec(**spec)))
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


@pytest.fixture
def searched(store):
    """A real random search (cross-validated trials) and a plain cross-validated run."""
    service.import_frame(store, churn_frame(300), "churn", target="churned")
    search = train(store, dataset="churn", model="decision_tree", cv=3, experiment="churn", curves=False,
                   search={"method": "random", "trials": 4,
                           "space": {"max_depth": [2, 3, 5, 8], "min_samples_leaf": [1, 5, 20]}})
    single = train(store, dataset="churn", model="logistic_regression", cv=3, experiment="churn", curves=False)
    return search["run_id"], single["run_id"]


def test_a_cv_column_is_the_mean_over_folds_with_the_folds_in_its_tooltip(qtbot, window, store, searched, tmp_path):
    _search, single = searched
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 6)
    assert "metrics.cv_accuracy" in panel.runs_model.columns
    with store.session() as s:
        pk = s.scalar(select(m.Run.id).where(m.Run.uuid == single))
        folds = [v for (v,) in s.execute(select(m.Metric.value).where(
            m.Metric.run_id == pk, m.Metric.key == "cv_accuracy").order_by(m.Metric.step))]
    assert len(folds) == 3 and len(set(folds)) > 1  # three different folds: the last one is not the mean
    row = panel.runs_model.row_of(single)
    mean, std = float(np.mean(folds)), float(np.std(folds))
    assert cell(panel, row, "metrics.cv_accuracy") == f"{mean:.3f} ± {std:.3f}"
    tip = cell(panel, row, "metrics.cv_accuracy", Qt.ItemDataRole.ToolTipRole)
    assert "3 folds" in tip and all(f"{v:.4g}" in tip for v in folds)
    assert panel.view_table.cell("metrics.cv_accuracy", row) == pytest.approx(mean)
    # the header fits its text
    header = panel.runs_view.horizontalHeader()
    col = panel.runs_model.columns.index("metrics.cv_accuracy")
    assert header.sectionSize(col) >= header.fontMetrics().horizontalAdvance("cv_accuracy") + 8
    # the filter and the CSV use the mean too
    panel.filter_edit.setText(f"metrics.cv_accuracy >= {mean - 1e-9} and metrics.cv_accuracy <= {mean + 1e-9}")
    qtbot.waitUntil(lambda: panel.runs_model.rowCount() < 6, timeout=3000)
    shown = [panel.runs_model.run_id(r) for r in range(panel.runs_model.rowCount())]
    assert single in shown  # (a search's trial with the same folds may match too)
    path = tmp_path / "runs.csv"
    panel.export_csv(str(path))
    settle(panel)
    written = {r["run_id"]: r for r in csv.DictReader(path.open())}
    assert set(written) == set(shown)
    assert float(written[single]["metrics.cv_accuracy"]) == pytest.approx(mean)


@pytest.fixture
def registered(monkeypatch):
    """What the Registry panel is asked to register (instead of its name dialog)."""
    from modelyard.ui.registry.panel import RegistryPanel

    asked: list[str] = []
    monkeypatch.setattr(RegistryPanel, "register_run", lambda self, run_id=None, *a, **k: asked.append(run_id))
    return asked


def test_a_search_shows_its_trials_nested_under_it_with_the_best_marked(qtbot, window, store, searched, registered):
    search, _single = searched
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 6)
    model = panel.runs_model
    top = model.row_of(search)
    parent = tracking.get_run(search, store=store)
    best_id = parent.tags["best_trial_run_id"]
    trials = [model.run_id(top + 1 + k) for k in range(model.trials(top))]
    with store.session() as s:
        pk = s.scalar(select(m.Run.id).where(m.Run.uuid == search))
        children = set(s.scalars(select(m.Run.uuid).where(m.Run.parent_run_id == pk)))
    assert len(trials) == 4 and set(trials) == children
    assert all(model.depth(model.row_of(t)) == 1 for t in trials) and model.depth(top) == 0
    best_row = model.row_of(best_id)
    assert best_id in trials and BEST in cell(panel, best_row, "name")
    assert cell(panel, best_row, "name", Qt.ItemDataRole.FontRole).bold()
    assert sum(BEST in cell(panel, model.row_of(t), "name") for t in trials) == 1
    name = cell(panel, top, "name")
    assert "searched:" in name and "max_depth" in name
    # collapse with a click on the arrow, expand again
    view = panel.runs_view
    rect = view.visualRect(model.index(top, model.columns.index("name")))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 6, rect.center().y()))
    assert all(view.isRowHidden(model.row_of(t)) for t in trials)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 6, rect.center().y()))
    assert not any(view.isRowHidden(model.row_of(t)) for t in trials)
    # Register best: a button on the selected search, and in its context menu
    click_row(qtbot, panel, top)
    settle(panel)
    assert not panel.register_best_button.isHidden() and panel.register_button.isHidden()
    asked = []
    panel.client.navigate.connect(lambda room, call: asked.append((room, call)))
    qtbot.mouseClick(panel.register_best_button, Qt.MouseButton.LeftButton)
    assert asked == [("registry", ("register_run", best_id))]
    qtbot.waitUntil(lambda: registered == [best_id], timeout=3000)  # the window asked the Registry
    menu = panel.context_menu([search])
    assert "registerBestAction" in {a.objectName() for a in menu.actions()}


def test_a_regression_shows_r2_and_rmse_first(qtbot, window, store):
    for name, task, metrics in (("reg", "regression", {"r2": 0.8, "rmse": 1.2, "mae": 0.9, "mape": 0.1}),
                                ("reg2", "regression", {"r2": 0.7, "rmse": 1.4, "mae": 1.0, "mape": 0.2})):
        with tracking.start_run("houses", name=name, store=store) as run:
            run.log_params({"task": task})
            run.log_metrics({"aaa_first_alphabetically": 1.0, "fit_time_s": 0.1, "b_metric": 2, "c_metric": 3,
                             "d_metric": 4, "e_metric": 5, **metrics})
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 2)
    metric_columns = [c for c in panel.runs_model.columns if c.startswith("metrics.")]
    assert metric_columns[:4] == ["metrics.r2", "metrics.rmse", "metrics.mae", "metrics.mape"]


def log(store, experiment, name, **metrics):
    with tracking.start_run(experiment, name=name, store=store) as run:
        run.log_metrics(metrics or {"f1": 0.5})
    return run.id


def test_compare_counts_only_the_selected_rows_a_filter_left(qtbot, window, store):
    ids = [log(store, "churn", f"run-{i}", f1=i / 10) for i in range(4)]
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 4)
    for i, run_id in enumerate(ids[:3]):
        click_row(qtbot, panel, panel.runs_model.row_of(run_id),
                  Qt.KeyboardModifier.ControlModifier if i else Qt.KeyboardModifier.NoModifier)
    assert panel.compare_button.isEnabled() and panel.compare_button.text() == "Compare 3"
    panel.filter_edit.setText("metrics.f1 >= 0.2")  # hides run-0 and run-1
    qtbot.waitUntil(lambda: panel.runs_model.rowCount() == 2, timeout=3000)
    settle(panel)
    assert panel._visible_selected_ids() == [ids[2]]
    assert not panel.compare_button.isEnabled() and panel.compare_button.text() == "Compare"


def test_switching_experiment_switches_the_run_detail(qtbot, window, store):
    a = log(store, "alpha", "alpha-run")
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 1)
    with store.write() as w:  # an experiment with no runs yet
        w.add(m.Experiment(name="empty"))
    b = log(store, "beta", "beta-run")
    panel.refresh()
    qtbot.waitUntil(lambda: panel.experiments_model.rowCount() == 4, timeout=5000)
    names = [r[0] for r in panel.experiments_model.rows]
    panel.experiments_view.selectRow(names.index("alpha"))
    wait_rows(qtbot, panel, 1)
    click_row(qtbot, panel, 0)
    settle(panel)
    assert panel.run is not None and panel.run.id == a and a in panel.detail_title.toolTip()
    panel.experiments_view.selectRow(names.index("beta"))
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == b, timeout=5000)
    assert b in panel.detail_title.toolTip() and "alpha-run" not in panel.detail_title.text()
    panel.experiments_view.selectRow(names.index("empty"))
    qtbot.waitUntil(lambda: panel.run is None, timeout=5000)
    assert "Select a run" in panel.detail_title.text() and panel.metrics_model.rowCount() == 0


def test_a_running_run_appears_at_once_with_its_duration_counting(qtbot, window, store):
    panel = panel_of(window)
    panel.refresh()
    settle(panel)
    started, finish = threading.Event(), threading.Event()

    def job() -> None:  # a training that takes a while (its run record is made when it starts)
        with tracking.start_run("first", name="first-run", store=store) as run:
            run.log_param("task", "classification")
            started.set()
            finish.wait(30)

    thread = threading.Thread(target=job)
    thread.start()
    try:
        assert started.wait(10)
        qtbot.waitUntil(lambda: panel.runs_model.rowCount() == 1, timeout=8000)
        assert cell(panel, 0, "status") == "running"
        first = cell(panel, 0, "duration")
        qtbot.wait(1300)
        assert cell(panel, 0, "duration") != first  # it counts up while the run runs
        assert panel._tick.isActive()
    finally:
        finish.set()
        thread.join()
    qtbot.waitUntil(lambda: cell(panel, 0, "status") == "succeeded", timeout=8000)


def test_register_model_is_a_button_for_a_finished_run_with_a_model(qtbot, window, store, searched, registered):
    _search, single = searched
    panel = panel_of(window)
    panel.refresh()
    wait_rows(qtbot, panel, 6)
    assert panel.register_button.isHidden()
    click_row(qtbot, panel, panel.runs_model.row_of(single))
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == single, timeout=5000)
    assert not panel.register_button.isHidden()
    assert panel.client.selected.get("run") == single
    asked = []
    panel.client.navigate.connect(lambda room, call: asked.append((room, call)))
    qtbot.mouseClick(panel.register_button, Qt.MouseButton.LeftButton)
    assert asked == [("registry", ("register_run", single))]
    qtbot.waitUntil(lambda: registered == [single], timeout=3000)
    assert panel.runs_view.currentIndex().data(RUN_ID_ROLE) == single


def test_train_defaults_to_the_dataset_version_the_user_looked_at(qtbot, window, store):
    service.import_frame(store, churn_frame(120), "churn", target="churned")
    other = service.import_frame(store, churn_frame(100, seed=3), "other", target="churned")
    panel = panel_of(window)
    panel.refresh()
    settle(panel)
    version_id = other["dataset_version_id"]
    panel.client.select("dataset_version", version_id)
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.train_dialog is not None and panel.train_dialog.isVisible(), timeout=8000)
    settle(panel)
    assert "other" in panel.train_dialog.dataset_combo.currentText()
    first = panel.train_dialog
    first.reject()
    panel.client.select("dataset_version", None)
    panel.train_on(version_id)  # what the Datasets panel's "Train on this version" asks for
    qtbot.waitUntil(lambda: panel.train_dialog is not first, timeout=8000)
    settle(panel)
    assert panel.train_dialog.isVisible() and "other" in panel.train_dialog.dataset_combo.currentText()
    panel.train_dialog.reject()
