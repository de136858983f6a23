"""Training from the GUI, driven as a user drives it: the Train dialog (a form generated from the
estimator, preprocessing, CV, search), training jobs in child processes, cancelling, the run's
Evaluation and Reproducibility tabs, comparing runs, and reproducing a run.

Models stay tiny (10 trees, a few trials) and few jobs run: each is a child process (~2-4 s).
"""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any

import pytest
from factories import settle_panel
from held_clock import held_clock
from modelyard.core.datasets import service as ds
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.train import runs_of_job
from modelyard.core.store import Store
from modelyard.ui.common.client import CoreClient
from modelyard.ui.common.settings import open_settings
from modelyard.ui.experiments.panel import (
    TAB_EVALUATION,
    TAB_REPRODUCIBILITY,
    ExperimentsPanel,
)
from modelyard.ui.experiments.train_dialog import LOADING_TEXT, TrainDialog
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

JOB_TIMEOUT_MS = 90_000


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    monkeypatch.setattr("modelyard.ui.experiments.panel.show_error",
                        lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.settings.setValue("confirm/quit_with_jobs", "false")
    w.close()


def add_sample(store: Store, name: str) -> None:
    df, target = ds.sample_frame(name)
    ds.import_frame(store, df, name, target=target)


def panel_of(window: MainWindow) -> ExperimentsPanel:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_train_dialog(qtbot, panel: ExperimentsPanel) -> TrainDialog:
    button = panel.train_button if panel.stack.currentWidget() is panel.content else panel.empty_train_button
    click(qtbot, button)
    settle(panel)
    dialog = panel.train_dialog
    assert isinstance(dialog, TrainDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)
    return dialog


def type_into(qtbot, widget, text: str) -> None:
    """Replace a field's text by typing, as a user does (select all, then keys)."""
    target = widget.lineEdit() if isinstance(widget, QComboBox) else widget
    target.setFocus()
    target.selectAll()
    qtbot.keyClicks(target, text)


def choose(combo: QComboBox, text: str) -> None:
    i = combo.findText(text, Qt.MatchFlag.MatchStartsWith)
    assert i >= 0, f"{text!r} not in {[combo.itemText(j) for j in range(combo.count())]}"
    combo.setCurrentIndex(i)


class Progress:
    """Every progress message of the jobs the window starts (appended from the worker thread)."""

    def __init__(self, window: MainWindow) -> None:
        self.messages: list[str] = []
        window.runner.job_started.connect(self._started)

    def _started(self, handle) -> None:  # type: ignore[no-untyped-def]
        handle.progressed.connect(lambda _f, message: self.messages.append(message))


def run_job_from(qtbot, window: MainWindow, trigger) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    """Do ``trigger`` (which starts one job) and wait until the job ended and the panels saw it."""
    with qtbot.waitSignal(window.runner.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        trigger()
    handle, outcome = finished.args
    return handle, outcome


def shown(widget) -> bool:  # type: ignore[no-untyped-def]
    """Visible once its window is (widgets added to a shown window appear on the next event-loop turn)."""
    return widget.isVisibleTo(widget.window())


def select_tab(qtbot, tabs, index: int) -> None:
    bar = tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert tabs.currentIndex() == index
    for client in CoreClient.instances():  # the tab's records are read off the main thread
        settle(SimpleNamespace(client=client))


# --------------------------------------------------------------------------- the dialog, no training


def test_the_form_is_generated_from_the_estimator_and_bad_values_disable_train(qtbot, window, store):
    add_sample(store, "breast_cancer")
    add_sample(store, "diabetes")
    panel = panel_of(window)
    click(qtbot, panel.empty_train_button)  # no runs yet: the empty state offers training
    settle(panel)
    dialog = panel.train_dialog
    assert dialog.loading_label.text() == LOADING_TEXT and dialog.loading_label.isVisible()
    assert not dialog.train_button.isEnabled()  # until the model's form has loaded
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)

    choose(dialog.dataset_combo, "breast_cancer@v1")
    settle(panel)
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)
    assert dialog.target_combo.currentText() == "diagnosis"  # the schema's target
    assert dialog.task_combo.currentText() == "classification"
    models = [dialog.model_combo.itemData(i) for i in range(dialog.model_combo.count())]
    assert "random_forest" in models and "logistic_regression" in models
    assert "ridge" not in models and "linear_regression" not in models  # regression only
    splits = [dialog.split_combo.itemText(i) for i in range(dialog.split_combo.count())]
    assert splits[-1] == "New stratified 20 % test split, seed 0"
    assert dialog.experiment_combo.currentText() == "breast_cancer"

    # the form: widgets by kind, defaults filled in
    assert dialog.model_key() == "random_forest"
    ed = dialog.editors
    assert isinstance(ed["n_estimators"].widget, QSpinBox) and ed["n_estimators"].widget.value() == 100
    assert ed["n_estimators"].widget.minimum() == 1
    assert isinstance(ed["criterion"].widget, QComboBox) and ed["criterion"].widget.currentText() == "gini"
    assert {ed["criterion"].widget.itemText(i) for i in range(ed["criterion"].widget.count())} == \
        {"gini", "entropy", "log_loss"}
    assert ed["max_depth"].widget.text() == "None" and ed["max_depth"].raw() is None  # nullable int
    assert isinstance(ed["bootstrap"].widget, QCheckBox) and ed["bootstrap"].widget.isChecked()
    assert isinstance(ed["max_features"].widget, QComboBox) and ed["max_features"].widget.isEditable()
    assert isinstance(ed["min_impurity_decrease"].widget, QLineEdit)
    assert dialog.train_button.isEnabled() and dialog.params() == {}

    # a bad value: the coerce_params message inline, Train disabled; fixing it enables Train
    type_into(qtbot, ed["min_impurity_decrease"].widget, "-1")
    assert shown(ed["min_impurity_decrease"].error)
    assert "'min_impurity_decrease'" in ed["min_impurity_decrease"].error.text()
    assert "must be" in ed["min_impurity_decrease"].error.text()
    assert not dialog.train_button.isEnabled()
    assert "1 parameter needs fixing" in dialog.error_label.text()
    type_into(qtbot, ed["min_impurity_decrease"].widget, "0.001")
    assert not shown(ed["min_impurity_decrease"].error) and dialog.train_button.isEnabled()
    type_into(qtbot, ed["max_features"].widget, "0.5")
    type_into(qtbot, ed["n_estimators"].widget, "25")
    qtbot.keyClick(ed["max_depth"].widget, Qt.Key.Key_Up)  # None -> 1
    assert dialog.params() == {"n_estimators": 25, "max_depth": 1, "max_features": 0.5, "min_impurity_decrease": 0.001}
    click(qtbot, dialog.reset_button)
    assert dialog.params() == {}

    # cross-validation steps over 1 fold; the search needs a valid space
    dialog.cv_spin.setFocus()
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Up)
    assert dialog.cv_spin.value() == 2
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Down)
    assert dialog.cv_spin.value() == 0
    choose(dialog.search_combo, "Random search")
    assert dialog.trials_spin.isEnabled() and '"n_estimators"' in dialog.space_edit.text()
    type_into(qtbot, dialog.space_edit, '{"max_depth": [2, 4')
    assert not dialog.train_button.isEnabled() and "not valid JSON" in dialog.error_label.text()
    type_into(qtbot, dialog.space_edit, '{"max_depth": [2, 4]}')
    assert dialog.train_button.isEnabled()
    assert dialog.spec().search == {"method": "random", "trials": 10, "space": {"max_depth": [2, 4]},
                                    "metric": "accuracy"}
    choose(dialog.search_combo, "No search")

    # preprocessing from the schema, collapsed; a step edited through its combo
    assert not dialog.plan_view.isVisible()
    click(qtbot, dialog.preprocess_toggle)
    assert dialog.plan_view.isVisible()
    rows = {r["name"]: r for r in dialog.plan_model.rows}
    assert rows["diagnosis"]["step"] == "target" and rows["mean texture"]["step"] == "numeric"
    row = next(i for i, r in enumerate(dialog.plan_model.rows) if r["name"] == "mean texture")
    index = dialog.plan_model.index(row, 2)
    dialog.plan_view.scrollTo(index)
    rect = dialog.plan_view.visualRect(index)
    qtbot.mouseClick(dialog.plan_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(dialog.plan_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    editor = dialog.plan_view.viewport().findChild(QComboBox)
    assert editor is not None
    assert [editor.itemText(i) for i in range(editor.count())] == ["numeric", "onehot", "ordinal", "drop"]
    editor.setFocus()
    while editor.currentText() != "drop":
        qtbot.keyClick(editor, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: dialog.overrides == {"mean texture": "drop"} and
                    "29 features" in dialog.preprocess_toggle.text(), timeout=3000)
    assert dialog.spec().preprocessing == {"mean texture": "drop"}

    # another target makes it regression: the models and the split follow
    choose(dialog.target_combo, "mean radius")
    assert dialog.task_combo.currentText() == "regression"
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)
    models = [dialog.model_combo.itemData(i) for i in range(dialog.model_combo.count())]
    assert "ridge" in models and "logistic_regression" not in models
    assert dialog.split_combo.itemText(dialog.split_combo.count() - 1) == "New random 20 % test split, seed 0"

    # the other dataset: its own target and task
    choose(dialog.dataset_combo, "diabetes@v1")
    settle(panel)
    assert dialog.target_combo.currentText() == "progression" and dialog.task() == "regression"
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)
    assert dialog.experiment_combo.currentText() == "diabetes"
    click(qtbot, dialog.buttons.button(dialog.buttons.StandardButton.Cancel))
    assert not dialog.isVisible()
    assert window.runner.handles() == [] and window.shown_errors == []


def test_closing_the_dialog_while_its_form_loads_returns_at_once(qtbot, window, store):
    add_sample(store, "iris")
    panel = panel_of(window)
    click(qtbot, panel.empty_train_button)
    settle(panel)
    dialog = panel.train_dialog
    assert not dialog.form_ready and panel.form_reader.busy  # param_form runs on the panel's reader
    t0 = time.monotonic()
    click(qtbot, dialog.buttons.button(dialog.buttons.StandardButton.Cancel))
    assert time.monotonic() - t0 < 0.3  # no waiting for scikit-learn to import
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not panel.form_reader.busy, timeout=20_000)  # the late form is dropped quietly
    assert window.runner.handles() == []


# --------------------------------------------------------------------------- training jobs


def test_train_a_classifier_see_its_evaluation_and_reproduce_it(qtbot, window, store):
    add_sample(store, "breast_cancer")
    panel = panel_of(window)
    progress = Progress(window)
    dialog = open_train_dialog(qtbot, panel)
    type_into(qtbot, dialog.editors["n_estimators"].widget, "10")
    dialog.cv_spin.setFocus()
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Up)  # 2 folds
    type_into(qtbot, dialog.run_name_edit, "forest-10")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(held_clock()))
    timer.start()
    handle, outcome = run_job_from(qtbot, window, lambda: click(qtbot, dialog.train_button))
    timer.stop()
    assert outcome.status == "succeeded", outcome.error
    assert handle.spec.kind == "train" and handle.spec.process
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20 and max(gaps) < 0.5, f"the window froze for {max(gaps):.2f} s"
    assert "Cross-validation: fold 1/2" in progress.messages and "Cross-validation: fold 2/2" in progress.messages

    run_id = outcome.result["run_id"]
    info = tracking.get_run(run_id, store=store)
    assert info.name == "forest-10" and info.experiment == "breast_cancer" and info.source_type == "gui"
    assert info.params["n_estimators"] == "10" and info.params["cv"] == "2"
    assert info.spec["params"] == {"n_estimators": 10}
    # the panel shows the new run, selected
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == run_id, timeout=8000)
    assert panel.stack.currentWidget() is panel.content
    assert panel.reproduce_button.isEnabled()

    # Evaluation: the confusion matrix as a shaded table, ROC/PR curves, importance
    select_tab(qtbot, panel.detail_tabs, TAB_EVALUATION)
    ev = panel.evaluation
    cm = ev.confusion_model
    assert cm.rowCount() == cm.columnCount() == 2 and cm.labels == ["benign", "malignant"]
    assert sum(sum(r) for r in cm.matrix) == int(info.params["n_test"])
    diagonal = cm.data(cm.index(0, 0), Qt.ItemDataRole.BackgroundRole)
    off = cm.data(cm.index(0, 1), Qt.ItemDataRole.BackgroundRole)
    assert diagonal.alpha() > off.alpha()  # intensity follows the share
    assert {"ROC curve", "Precision-recall curve", "Permutation importance"} <= set(ev.plots)
    roc_curves = [c for c in ev.plots["ROC curve"].listDataItems() if len(c.getOriginalDataset()[0]) > 2]
    assert len(roc_curves) == 1
    assert "Residuals" not in ev.plots

    # Reproducibility: the record as key/value rows
    select_tab(qtbot, panel.detail_tabs, TAB_REPRODUCIBILITY)
    facts = panel.reproducibility.rows()
    assert facts["dataset.ref"] == "breast_cancer@v1" and facts["seed"] == "0"
    assert facts["split.name"] == info.params["split"] and "packages.scikit-learn" in facts

    # Reproduce: the run's context menu offers it, and so does the button on the run detail
    menu = panel.context_menu([run_id])
    action = next(a for a in menu.actions() if a.objectName() == "reproduceAction")
    assert action.isEnabled()
    handle, outcome = run_job_from(qtbot, window, lambda: click(qtbot, panel.reproduce_button))
    assert handle.spec.kind == "train.reproduce" and outcome.status == "succeeded", outcome.error
    dialog = panel.reproduction_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert dialog.matches and "Matches" in dialog.verdict.text()
    results = dialog.metric_results()
    assert results and all(results.values()) and "accuracy" in results
    assert dialog.facts_model.rowCount() == 0 and dialog.no_facts.isVisible()
    new = tracking.get_run(outcome.result["new_run_id"], store=store)
    assert new.tags["reproduces"] == run_id and new.tags["reproduce_matches"] == "true"
    qtbot.waitUntil(lambda: panel.runs_model.row_of(new.id) >= 0, timeout=8000)
    assert window.shown_errors == []


def test_train_a_regressor_on_diabetes_and_see_its_residuals(qtbot, window, store):
    add_sample(store, "diabetes")
    panel = panel_of(window)
    dialog = open_train_dialog(qtbot, panel)
    assert dialog.task() == "regression"
    choose(dialog.model_combo, "Ridge regression")
    qtbot.waitUntil(lambda: dialog.form_ready and "alpha" in dialog.editors, timeout=20_000)
    type_into(qtbot, dialog.editors["alpha"].widget, "2.5")
    choose(dialog.split_combo, "New random 20 % test split")
    _, outcome = run_job_from(qtbot, window, lambda: click(qtbot, dialog.train_button))
    assert outcome.status == "succeeded", outcome.error
    info = tracking.get_run(outcome.result["run_id"], store=store)
    assert info.params["model"] == "ridge" and float(info.params["alpha"]) == 2.5
    assert info.params["split"] == "random-test0.2-seed0" and {"rmse", "mae", "r2"} <= set(info.metrics)
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == info.id, timeout=8000)
    select_tab(qtbot, panel.detail_tabs, TAB_EVALUATION)
    ev = panel.evaluation
    assert ev.confusion_model is None
    assert {"Predicted against actual", "Residuals", "Residual distribution", "Permutation importance"} <= set(ev.plots)
    scatter = [i for i in ev.plots["Residuals"].plotItem.items if type(i).__name__ == "ScatterPlotItem"]
    assert scatter and len(scatter[0].data) == int(info.params["n_test"])
    assert window.shown_errors == []


def test_a_random_search_records_a_parent_and_a_child_run_per_trial_and_compare_shows_the_differences(
        qtbot, window, store):
    add_sample(store, "breast_cancer")
    panel = panel_of(window)
    progress = Progress(window)
    dialog = open_train_dialog(qtbot, panel)
    choose(dialog.model_combo, "Logistic regression")
    qtbot.waitUntil(lambda: dialog.form_ready and "C" in dialog.editors, timeout=20_000)
    choose(dialog.search_combo, "Random search")
    type_into(qtbot, dialog.trials_spin, "3")
    type_into(qtbot, dialog.space_edit, '{"C": {"type": "float", "low": 0.01, "high": 10, "log": true}}')
    dialog.cv_spin.setFocus()
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Up)
    assert dialog.spec().search["trials"] == 3
    handle, outcome = run_job_from(qtbot, window, lambda: click(qtbot, dialog.train_button))
    assert outcome.status == "succeeded", outcome.error
    assert handle.spec.title.startswith("Search logistic_regression")
    runs = runs_of_job(store, outcome.job_id)
    parent = outcome.result["run_id"]
    assert len(runs) == 4 and runs[0]["run_id"] == parent and runs[0]["parent_id"] is None
    children = [r["run_id"] for r in runs[1:]]
    assert all(r["parent_id"] == parent and r["status"] == "succeeded" for r in runs[1:])
    for n in (1, 2, 3):  # per-trial (and per-fold) progress
        assert any(m.startswith(f"Trial {n}/3: fold 2/2") for m in progress.messages), progress.messages
    qtbot.waitUntil(lambda: all(panel.runs_model.row_of(r) >= 0 for r in [parent, *children]), timeout=8000)

    # a trial cannot be reproduced on its own; the search can
    trial = tracking.get_run(children[0], store=store)
    assert panel.can_reproduce(trial)[0] is False and "search" in panel.can_reproduce(trial)[1]

    # select two trials (click, ctrl+click): Compare is enabled
    view = panel.runs_view
    assert not panel.compare_button.isEnabled()
    for i, run_id in enumerate(children[:2]):
        rect = view.visualRect(panel.runs_model.index(panel.runs_model.row_of(run_id), 1))
        modifier = Qt.KeyboardModifier.ControlModifier if i else Qt.KeyboardModifier.NoModifier
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())
    assert sorted(panel.selected_run_ids()) == sorted(children[:2])
    assert panel.compare_button.isEnabled()
    assert "compareAction" in {a.objectName() for a in panel.context_menu(children[:2]).actions()}
    click(qtbot, panel.compare_button)
    settle(panel)
    compare = panel.compare_dialog
    qtbot.waitUntil(compare.isVisible, timeout=3000)
    model = compare.diff_model
    c_row, model_row = model.row_of("params.C"), model.row_of("params.model")
    assert c_row >= 0 and model_row >= 0
    assert model.data(model.index(c_row, 1), Qt.ItemDataRole.BackgroundRole) is not None  # highlighted
    assert model.data(model.index(model_row, 1), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(model_row, 1)) == "logistic_regression"
    click(qtbot, compare.only_differences)
    assert model.row_of("params.model") < 0 and model.row_of("params.C") >= 0
    assert all(r.differs for r in model.rows)

    compare.show_tab("Curves")
    compare.curve_metric.setCurrentText("cv_accuracy")
    settle(panel)
    lines = compare.curve_plot.listDataItems()
    assert len(lines) == 2 and all(len(item.getOriginalDataset()[0]) == 2 for item in lines)  # 2 folds each
    compare.show_tab("Parallel coordinates")
    assert "params.C" in compare.parallel_keys and "metrics.score" in compare.parallel_keys
    polylines = compare.parallel_plot.listDataItems()
    assert len(polylines) == 2 and len(polylines[0].getOriginalDataset()[0]) == len(compare.parallel_axes())
    compare.show_tab("Scatter")
    assert compare.scatter_x.currentText() == "C"
    assert len(compare.scatter_plot.listDataItems()) == 2
    compare.close()
    assert window.shown_errors == []


def test_cancelling_a_training_job_keeps_the_window_responsive_and_records_the_run_cancelled(
        qtbot, window, store):
    add_sample(store, "breast_cancer")
    panel = panel_of(window)
    fitting: list[str] = []
    window.runner.job_started.connect(
        lambda h: h.progressed.connect(lambda _f, m: fitting.append(m) if m.startswith("Fitting") else None))
    dialog = open_train_dialog(qtbot, panel)
    type_into(qtbot, dialog.editors["n_estimators"].widget, "20000")  # minutes of work: it must be cancelled
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(held_clock()))
    timer.start()
    with qtbot.waitSignal(window.runner.job_started) as started:
        click(qtbot, dialog.train_button)
    handle = started.args[0]
    qtbot.waitUntil(lambda: bool(fitting), timeout=30_000)  # the run exists and the forest is growing
    jobs = window.jobs_panel
    assert jobs.cancel_button.isEnabled()  # the new job is selected in the Jobs dock
    with qtbot.waitSignal(window.runner.job_finished, timeout=10_000) as finished:
        t0 = time.monotonic()
        click(qtbot, jobs.cancel_button)
    elapsed = time.monotonic() - t0
    timer.stop()
    _, outcome = finished.args
    assert outcome.job_id == handle.job_id and outcome.status == "cancelled"
    assert elapsed < 2.0, f"cancelling took {elapsed:.2f} s"
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20 and max(gaps) < 0.5, f"the window froze for {max(gaps):.2f} s"
    # the panel recorded the killed job's run as cancelled (mark_runs_of_job_cancelled)
    [run] = runs_of_job(store, handle.job_id)
    assert run["status"] == "cancelled"
    info = tracking.get_run(run["run_id"], store=store)
    assert info.error == "Cancelled by the user." and info.end_time is not None

    def shown_status() -> str | None:  # the row may already show the run as running: wait for the update
        row = panel.runs_model.row_of(run["run_id"])
        if row < 0:
            return None
        return panel.runs_model.data(panel.runs_model.index(row, panel.runs_model.columns.index("status")))

    qtbot.waitUntil(lambda: shown_status() == "cancelled", timeout=8000)
    assert window.shown_errors == []


def test_reproduce_is_offered_only_for_runs_trained_by_modelyard(qtbot, window, store):
    with tracking.start_run("scripts", store=store, name="from-a-notebook") as run:
        run.log_param("model", "gbm")
        run.log_metric("f1", 0.9)
    panel = panel_of(window)
    panel.refresh()
    qtbot.waitUntil(lambda: panel.runs_model.row_of(run.id) >= 0, timeout=5000)
    panel.runs_view.selectRow(panel.runs_model.row_of(run.id))
    settle(panel)
    assert panel.run.id == run.id
    assert not panel.reproduce_button.isEnabled() and "not trained by Modelyard" in panel.reproduce_button.toolTip()
    select_tab(qtbot, panel.detail_tabs, TAB_EVALUATION)
    assert shown(panel.evaluation.message) and "recorded no evaluation" in panel.evaluation.message.text()
    assert not shown(panel.evaluation.scroll)
    select_tab(qtbot, panel.detail_tabs, TAB_REPRODUCIBILITY)
    assert not shown(panel.reproducibility.view)
    assert "no reproducibility record" in panel.reproducibility.message.text()





def settle(panel) -> None:
    settle_panel(panel, only_client=True)
