"""The Jobs dock in the window: collapsed to a status-bar strip when idle, opened by a new job or
a failure, pinned by the user; elapsed time and a busy bar; a log (or a sentence) for every job; an
export's saved notice with Show in folder."""

from __future__ import annotations

import re

import pytest
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.ui.common import saved_notice
from modelyard.ui.common.settings import open_settings
from modelyard.ui.jobs.dock import COL_DURATION, COL_PROGRESS, COL_TITLE
from modelyard.ui.jobs.strip import COLLAPSE_MS, PINNED_KEY, STRIP_MAX_WIDTH
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

QUIET = "ui_jobfns:quiet"


def _window(qtbot, store) -> MainWindow:
    w = MainWindow(store, open_settings())
    qtbot.addWidget(w)
    w.resize(1024, 640)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


@pytest.fixture
def window(qtbot, store):
    w = _window(qtbot, store)
    yield w
    if w.isVisible():
        w.settings.setValue("confirm/quit_with_jobs", "false")
        w.close()


def _run(qtbot, window, spec: JobSpec):
    with qtbot.waitSignal(window.runner.job_finished, timeout=10_000) as done:
        handle = window.start_job(spec)
    return handle, done.args[1]


def _ctrl_j(qtbot, window) -> None:
    qtbot.keyClick(window, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)


def test_the_dock_is_a_strip_when_idle_opens_for_a_job_and_collapses_after_it_succeeded(qtbot, window):
    assert not window.jobs_dock.isVisible(), "nothing runs: the panels get the height"
    assert window.jobs_strip.isVisible() and window.jobs_strip.full_text() == "Jobs: none yet"
    handle = window.start_job(JobSpec("ui_jobfns:ticking", "Import churn.csv", {"seconds": 0.6}))
    assert window.jobs_dock.isVisible(), "a new job opens the dock"
    assert window.jobs_panel._selected_id() == handle.job_id
    qtbot.waitUntil(lambda: window.jobs_strip.full_text().startswith("Jobs: 1 running · Import churn.csv 0:0"))
    qtbot.waitUntil(lambda: not handle.running, timeout=5000)
    assert window.jobs_dock.isVisible(), "the finished job stays in view a moment"
    qtbot.waitUntil(lambda: not window.jobs_dock.isVisible(), timeout=COLLAPSE_MS + 3000)
    assert window.jobs_strip.full_text() == "Jobs: 1 recent · last: Import churn.csv succeeded"
    # clicking the strip opens the dock: the user's choice, it stays open after the next job
    qtbot.mouseClick(window.jobs_strip, Qt.MouseButton.LeftButton)
    assert window.jobs_dock.isVisible() and window.dock_policy.pinned
    _run(qtbot, window, JobSpec(QUIET, "Export churn@v2"))
    qtbot.wait(COLLAPSE_MS + 500)
    assert window.jobs_dock.isVisible(), "pinned open: no collapsing"
    assert window.jobs_strip.full_text() == "Jobs: 2 recent · last: Export churn@v2 succeeded"
    # Ctrl+J (View › Jobs) closes it and unpins it
    _ctrl_j(qtbot, window)
    assert not window.jobs_dock.isVisible() and not window.dock_policy.pinned


def test_a_failure_opens_the_dock_and_keeps_it_open(qtbot, window):
    handle = window.start_job(JobSpec("ui_jobfns:fail_after", "Import churn.csv", {"seconds": 0.8}))
    assert window.jobs_dock.isVisible()
    _ctrl_j(qtbot, window)  # the user hides it while the job runs
    assert not window.jobs_dock.isVisible()
    qtbot.waitUntil(lambda: not handle.running, timeout=5000)
    qtbot.waitUntil(window.jobs_dock.isVisible, timeout=2000)
    assert "churned" in window.jobs_panel.model.row(handle.job_id).error
    qtbot.wait(COLLAPSE_MS + 500)
    assert window.jobs_dock.isVisible(), "a failure stays in view until the user closes the dock"
    assert window.jobs_strip.full_text() == "Jobs: 1 recent · last: Import churn.csv failed"


def test_the_users_choice_to_keep_the_dock_open_is_remembered(qtbot, store, window):
    _ctrl_j(qtbot, window)
    assert window.jobs_dock.isVisible() and open_settings().value(PINNED_KEY) == "true"
    window.close()
    again = _window(qtbot, store)
    assert again.jobs_dock.isVisible() and again.dock_policy.pinned
    again.jobs_dock.close()  # the dock's own close button
    assert open_settings().value(PINNED_KEY) == "false"
    again.close()
    third = _window(qtbot, store)
    assert not third.jobs_dock.isVisible()
    third.close()


def test_a_running_job_shows_its_elapsed_time_and_a_moving_busy_bar_when_progress_is_unknown(qtbot, window):
    handle = window.start_job(JobSpec("ui_jobfns:unknown_length", "Train churn", {"seconds": 30}))
    panel, model = window.jobs_panel, window.jobs_panel.model
    qtbot.waitUntil(lambda: (r := model.row(handle.job_id)) is not None and r.busy
                    and r.message.startswith("Fitting"), timeout=5000)
    i = model._index[handle.job_id]
    duration = model.index(i, COL_DURATION)
    assert re.fullmatch(r"0:0\d", duration.data())
    qtbot.waitUntil(lambda: duration.data() not in ("0:00", ""), timeout=3000)
    assert re.fullmatch(r"0:0[1-9]", duration.data()), "it ticks, as m:ss"
    cell = panel.view.visualRect(model.index(i, COL_PROGRESS))
    first = panel.view.viewport().grab(cell).toImage()
    qtbot.wait(400)
    second = panel.view.viewport().grab(cell).toImage()
    assert first != second, "a busy bar moves (unknown progress is not a bar standing still)"
    assert panel.detail_name.full_text() == "Train churn"
    assert re.fullmatch(r"running 0:\d\d — Fitting RandomForestClassifier on 7,043 rows", panel.detail_title.full_text())
    with qtbot.waitSignal(handle.finished, timeout=5000):
        handle.cancel()
    qtbot.waitUntil(lambda: not panel._pulse.isActive(), timeout=2000)


def test_a_selected_job_always_shows_its_log_or_what_it_did(qtbot, window, store):
    # a job that wrote no log line (an export): a sentence, never a blank box
    handle, outcome = _run(qtbot, window, JobSpec(QUIET, "Export churn@v2", {"path": "/exports/churn.mybundle"}))
    assert outcome.ok
    panel = window.jobs_panel
    panel.select_job(handle.job_id)
    qtbot.waitUntil(lambda: "It wrote no log lines" in panel.detail.toPlainText(), timeout=3000)
    text = panel.detail.toPlainText()
    assert text.startswith("Export churn@v2 succeeded at ") and "path: /exports/churn.mybundle" in text
    # a job of an earlier session (or of the CLI), read from the store: its log
    old = run_job(store, JobSpec("ui_jobfns:ticking", "Import sales.csv", {"seconds": 0.1}))
    panel.refresh()
    qtbot.waitUntil(lambda: panel.model.row(old.job_id) is not None, timeout=5000)
    row = panel.model._index[old.job_id]
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.view.visualRect(panel.model.index(row, COL_TITLE)).center())
    qtbot.waitUntil(lambda: "ticking started" in panel.detail.toPlainText(), timeout=3000)
    # a cancelled job: says so
    handle = window.start_job(JobSpec("ui_jobfns:unknown_length", "Train churn", {"seconds": 30}))
    qtbot.waitUntil(lambda: (r := panel.model.row(handle.job_id)) is not None and r.busy, timeout=5000)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        handle.cancel()
    panel.select_job(handle.job_id)
    qtbot.waitUntil(lambda: "Train churn was cancelled" in panel.detail.toPlainText(), timeout=3000)
    assert panel.detail.toPlainText().startswith("Cancelled by the user.")


def test_long_job_names_elide_in_the_middle_with_the_whole_name_in_the_tooltip(qtbot, window):
    title = "Import customer_churn_march_2024_final_with_all_regions_and_segments.csv"
    handle, _ = _run(qtbot, window, JobSpec(QUIET, title))
    view, model = window.jobs_panel.view, window.jobs_panel.model
    assert view.textElideMode() == Qt.TextElideMode.ElideMiddle
    index = model.index(model._index[handle.job_id], COL_TITLE)
    assert model.data(index, Qt.ItemDataRole.ToolTipRole).startswith(title)


def test_an_export_says_where_it_saved_with_show_in_folder(qtbot, window, tmp_path, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr(saved_notice, "open_folder", opened.append)
    notice = window.saved_notice
    assert not notice.isVisible()
    path = tmp_path / "exports" / "churn.mybundle"
    window.client.saved.emit("Bundle churn@v2", str(path))
    assert notice.isVisible()
    assert notice.text() == f"Bundle churn@v2 saved to {path}"
    assert notice.path_label.full_text() == str(path)
    qtbot.mouseClick(notice.show_button, Qt.MouseButton.LeftButton)
    assert opened == [str(tmp_path / "exports")]
    assert notice._timer.isActive() and notice._timer.interval() == saved_notice.SHOW_MS == 20_000
    notice._timer.setInterval(50)  # what 20 s do, quicker
    notice._timer.start()
    qtbot.waitUntil(lambda: not notice.isVisible(), timeout=2000)


def test_the_window_fits_800x600_with_the_store_path_elided(qtbot, window, tmp_path):
    window.resize(800, 600)
    QApplication.processEvents()
    assert window.width() <= 800 and window.height() <= 600
    assert window.minimumWidth() <= 800 and window.minimumHeight() <= 600
    assert window.sidebar.width() <= 150
    label = window.store_label
    assert label.full_text().startswith("Store: ") and label.width() <= 800
    assert window.jobs_strip.isVisible() and window.jobs_strip.width() <= STRIP_MAX_WIDTH
