"""The Train dialog's choice of where a search runs (issue 17), driven as a user drives it: it opens on
the store's preference (or the user's, from Preferences), is disabled saying why without a search or a
cross-validation, checks a scheduler's address with a one-line message, and gives the training job its
``cluster``; a search started from it on a local Dask cluster of two worker processes fills the runs
table while it runs, and the Jobs dock's Cancel cancels it.

Every wait is bounded; the job's processes (and the cluster's) are checked gone at the end.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import pytest
from factories import settle_panel
from modelyard.core.datasets import service as ds
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training import engine
from modelyard.core.experiments.training.train import runs_of_job
from modelyard.core.jobs.runner import get_job
from modelyard.core.store import Store
from modelyard.ui.common.dialogs import apply_preferences
from modelyard.ui.common.settings import open_settings
from modelyard.ui.experiments.panel import ExperimentsPanel
from modelyard.ui.experiments.train_dialog import TrainDialog
from modelyard.ui.experiments.train_search import NO_FITS_TO_SPREAD
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

JOB_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, store, monkeypatch):
    monkeypatch.delenv(engine.ENV_VAR, raising=False)
    errors: list[str] = []
    monkeypatch.setattr("modelyard.ui.experiments.panel.show_error",
                        lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.settings.setValue("confirm/quit_with_jobs", "false")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def add_sample(store: Store, name: str = "breast_cancer") -> None:
    df, target = ds.sample_frame(name)
    ds.import_frame(store, df, name, target=target)


def open_dialog(qtbot, window: MainWindow) -> tuple[ExperimentsPanel, TrainDialog]:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    button = panel.train_button if panel.stack.currentWidget() is panel.content else panel.empty_train_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    settle_panel(panel, only_client=True)
    dialog = panel.train_dialog
    assert isinstance(dialog, TrainDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.form_ready, timeout=20_000)
    return panel, dialog


def pick(qtbot, combo: QComboBox, text: str) -> None:
    """Choose the item starting with ``text`` with the keyboard (Home, then Down), as a user does."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText().startswith(text):
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText().startswith(text), [combo.itemText(i) for i in range(combo.count())]


def type_into(qtbot, widget, text: str) -> None:
    """Replace a field's text by typing (select all, then keys)."""
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClicks(widget, text)


def shown(widget) -> bool:  # type: ignore[no-untyped-def]
    return widget.isVisibleTo(widget.window())


# --------------------------------------------------------------------------- the choice


def test_the_choice_opens_on_the_stores_preference_and_checks_an_address(qtbot, window, store):
    add_sample(store)
    engine.set_cluster_preference(store, "sched.lab:8786")
    panel, dialog = open_dialog(qtbot, window)
    where = dialog.where

    # no search, no cross-validation: one fit, nothing to spread; the choice says why it is off
    assert not where.isEnabled() and not where.combo.isEnabled()
    assert where.combo.toolTip() == where.address_edit.toolTip() == NO_FITS_TO_SPREAD
    assert dialog.options.where_note.text() == "Needs a search or a cross-validation."
    assert dialog.cluster() is None

    dialog.cv_spin.setFocus()
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Up)  # 2 folds: fits to spread
    assert where.isEnabled() and where.kind() == "address" and shown(where.address_edit)
    assert where.address_edit.text() == "tcp://sched.lab:8786"
    assert dialog.options.where_note.text() == "Default: tcp://sched.lab:8786 (the store's preference)."
    assert dialog.cluster() == "tcp://sched.lab:8786"
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Down)
    assert not where.isEnabled()

    pick(qtbot, dialog.search_combo, "Random search")
    assert where.isEnabled() and dialog.train_button.isEnabled()
    type_into(qtbot, where.address_edit, "nowhere")
    assert not dialog.train_button.isEnabled()
    message = "Runs on: 'nowhere' is not a scheduler's address; give host:port, such as tcp://host:8786."
    assert message in dialog.error_label.text().splitlines() and shown(dialog.error_label)
    assert "border" in where.address_edit.styleSheet()
    where.address_edit.clear()
    assert "Runs on: give the team's Dask scheduler's address, such as tcp://host:8786." in dialog.error_label.text()
    qtbot.keyClicks(where.address_edit, "127.0.0.1:8786")
    assert dialog.train_button.isEnabled() and not shown(dialog.error_label)
    assert dialog.cluster() == "tcp://127.0.0.1:8786" and where.address_edit.styleSheet() == ""

    pick(qtbot, where.combo, "Local Dask cluster")
    assert shown(where.workers_spin) and not shown(where.address_edit)
    type_into(qtbot, where.workers_spin, "3")
    assert dialog.cluster() == "local:3"
    pick(qtbot, where.combo, "Automatic")
    assert dialog.cluster() == "auto" and not shown(where.workers_spin)
    pick(qtbot, where.combo, "This machine")
    assert dialog.cluster() == "serial"

    dialog.reject()  # the job gets the choice: the two tests below start searches with it
    assert window.shown_errors == []


@pytest.mark.slow
def test_a_scheduler_that_cannot_be_reached_fails_the_job_naming_it_and_the_dialogs_field(qtbot, window, store):
    add_sample(store)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    _, dialog = open_dialog(qtbot, window)
    pick(qtbot, dialog.search_combo, "Random search")
    pick(qtbot, dialog.where.combo, "Team's Dask scheduler")
    type_into(qtbot, dialog.where.address_edit, address)
    with qtbot.waitSignal(window.runner.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    handle, outcome = finished.args
    assert handle.spec.params["cluster"] == address and outcome.status == "failed"
    assert outcome.error.splitlines()[0] == (f"Cannot reach the Dask scheduler at {address} (from the Train dialog's "
                                             f"Runs on) within {engine.CONNECT_TIMEOUT_S:.0f} s.")
    assert runs_of_job(store, outcome.job_id) == []  # the cluster is checked before any run is recorded


def test_the_choice_opens_on_the_users_preference(qtbot, window, store, monkeypatch):
    add_sample(store)
    engine.set_cluster_preference(store, "tcp://sched.lab:8786")
    monkeypatch.setenv(engine.ENV_VAR, "")  # restored after the test, whatever Preferences sets
    window.settings.setValue("training/cluster", "local:2")  # Preferences › Searches run on
    apply_preferences(window.settings)
    try:
        _, dialog = open_dialog(qtbot, window)
        pick(qtbot, dialog.search_combo, "Grid search")
        assert dialog.where.kind() == "local" and dialog.where.workers_spin.value() == 2
        assert dialog.options.where_note.text() == "Default: local:2 (Preferences or MODELYARD_CLUSTER)."
        assert dialog.cluster() == "local:2"
        dialog.reject()
    finally:
        window.settings.setValue("training/cluster", "")


@pytest.mark.slow
def test_an_optuna_search_with_a_trial_and_a_time_budget(qtbot, window, store):
    add_sample(store)
    _, dialog = open_dialog(qtbot, window)
    assert not shown(dialog.timeout_spin)
    pick(qtbot, dialog.search_combo, "Optuna (TPE)")
    assert dialog.search_method() == "optuna"
    assert shown(dialog.timeout_spin) and dialog.where.isEnabled()
    type_into(qtbot, dialog.trials_spin, "3")
    type_into(qtbot, dialog.timeout_spin, "120")
    type_into(qtbot, dialog.space_edit, '{"max_depth": [2, 4, 8], "n_estimators": {"low": 5, "high": 20}}')
    dialog.cv_spin.setFocus()
    qtbot.keyClick(dialog.cv_spin, Qt.Key.Key_Up)  # folds: what Optuna prunes on
    pick(qtbot, dialog.where.combo, "This machine")
    spec = dialog.spec()
    assert spec.search["method"] == "optuna" and spec.search["trials"] == 3 and spec.search["timeout"] == 120
    with qtbot.waitSignal(window.runner.job_finished, timeout=JOB_TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    _, outcome = finished.args
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["search"]["method"] == "optuna"
    runs = runs_of_job(store, outcome.job_id)
    assert len(runs) == 4 and all(r["status"] != "running" for r in runs)  # the study and its 3 trials
    search = tracking.get_run(outcome.result["run_id"], store=store)
    assert {k: search.spec["search"][k] for k in ("method", "trials", "timeout")} == {
        "method": "optuna", "trials": 3, "timeout": 120}
    assert "search.best_accuracy" in search.metrics  # the study's history, charted on the search's run
    assert window.shown_errors == []


# --------------------------------------------------------------------------- a live search on a local cluster


def trial_rows(panel: ExperimentsPanel, parent: str) -> list[str]:
    """The run ids the runs table shows as trials of the search ``parent``."""
    model = panel.runs_model
    row = model.row_of(parent)
    if row < 0:
        return []
    return [model.run_id(r) for r in range(model.rowCount()) if model.parent_row(r) == row]


def status_shown(panel: ExperimentsPanel, run_id: str) -> Any:
    model = panel.runs_model
    row = model.row_of(run_id)
    return None if row < 0 else model.data(model.index(row, model.columns.index("status")))


@pytest.mark.slow
def test_a_search_on_a_local_cluster_fills_the_runs_table_live_and_cancel_stops_it(qtbot, window, store):
    import psutil

    add_sample(store)
    panel, dialog = open_dialog(qtbot, window)
    pick(qtbot, dialog.search_combo, "Grid search")
    # three quick trials, then big forests that keep both workers busy until the cancel
    type_into(qtbot, dialog.space_edit, '{"n_estimators": [5, 10, 15, 4000, 4000, 4000, 4000]}')
    pick(qtbot, dialog.where.combo, "Local Dask cluster")
    type_into(qtbot, dialog.where.workers_spin, "2")
    assert dialog.cluster() == "local:2"
    lines: list[str] = []
    window.runner.job_started.connect(lambda h: h.logged.connect(lines.append))
    with qtbot.waitSignal(window.runner.job_started, timeout=10_000) as started:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    handle = started.args[0]
    assert handle.spec.params["cluster"] == "local:2"

    qtbot.waitUntil(lambda: any(line.startswith("Run ") for line in lines), timeout=JOB_TIMEOUT_MS)
    parent = re.match(r"Run (\S+) started", next(line for line in lines if line.startswith("Run "))).group(1)
    # the trials appear in the table while the search still runs: not at its end
    qtbot.waitUntil(lambda: len(trial_rows(panel, parent)) >= 2, timeout=JOB_TIMEOUT_MS)
    assert handle.running and status_shown(panel, parent) == "running"
    assert any("on a local cluster of 2 worker processes" in line for line in lines), lines
    job_log = get_job(store, handle.job_id)[1]  # its first line may be said before the test listens
    job_pid = int(re.search(r"^Started in process (\d+)\.$", job_log, re.MULTILINE).group(1))
    job = psutil.Process(job_pid)
    cluster = job.children(recursive=True)
    assert len(cluster) >= 2, cluster  # the local cluster's worker processes

    jobs = window.jobs_panel
    assert jobs.cancel_button.isEnabled()  # the search's job is selected in the Jobs dock
    with qtbot.waitSignal(window.runner.job_finished, timeout=30_000) as finished:
        t0 = time.monotonic()
        qtbot.mouseClick(jobs.cancel_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - t0 < 10
    _, outcome = finished.args
    assert outcome.job_id == handle.job_id and outcome.status == "cancelled"
    runs = runs_of_job(store, handle.job_id)
    assert runs[0]["run_id"] == parent and runs[0]["status"] == "cancelled"
    assert all(r["status"] != "running" for r in runs), runs
    assert 2 <= len(runs) - 1 < 7  # some trials finished, not all: it was cancelled mid-search
    # nothing left running: the job's process and its cluster's workers are gone
    _, alive = psutil.wait_procs([job, *cluster], timeout=20)
    assert alive == [], f"processes left running: {alive}"
    qtbot.waitUntil(lambda: status_shown(panel, parent) == "cancelled", timeout=10_000)
    assert window.shown_errors == []
