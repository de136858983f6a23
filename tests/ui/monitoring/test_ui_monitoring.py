"""The Monitoring panel driven as a user drives it: drop a batch on a model, read the check, the
feature overlay and the timeline, see the badges turn to drift, retrain, and watch a folder."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from factories import churn_frame, drifted_batch, write_batch
from factories import settle as settle_window
from factories import settle_panel as settle
from factories import train_churn_model as train_model
from modelyard.core.monitoring import drift
from modelyard.core.registry import versions as registry
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow
from modelyard.ui.monitoring.panel import MonitoringPanel
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox


@pytest.fixture
def window(qtbot, store, monkeypatch):
    errors: list[str] = []
    for where in ("monitoring.panel", "registry.panel", "registry.changes", "registry.version_actions"):
        monkeypatch.setattr(f"modelyard.ui.{where}.show_error",
                            lambda parent, title, exc: errors.append(f"{title}: {exc}"))
    w = MainWindow(store, open_settings())
    w.shown_errors = errors
    w.settings.setValue("confirm/quit_with_jobs", "false")  # teardown of a failed test must not prompt
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def panel_of(window) -> MonitoringPanel:
    panel = next(p for p in window.panels if isinstance(p, MonitoringPanel))
    window.show_panel(window.panels.index(panel))
    panel.refresh()
    settle(panel)
    return panel


def drop_on_model(panel: MonitoringPanel, path: Path, row: int = 0) -> None:
    """A real drag of a file over the models table, dropped on the model in ``row``."""
    view = panel.models_view
    rect = view.visualRect(view.model().index(row, 0))
    point = QPointF(view.viewport().mapTo(panel, rect.center()))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted(), "the panel refused the drag"
    QApplication.sendEvent(panel, QDragMoveEvent(point.toPoint(), Qt.DropAction.CopyAction, mime,
                                                 Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(panel, QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                             Qt.KeyboardModifier.NoModifier))


def wait_jobs(qtbot, window, n: int, timeout: int = 60_000) -> list:
    def done() -> bool:
        return len([h for h in window.runner.handles() if h.outcome is not None]) >= n and not window.runner.running()
    qtbot.waitUntil(done, timeout=timeout)
    QApplication.processEvents()
    return [h.outcome for h in window.runner.handles()]


def status_cell(panel, row: int = 0) -> str:
    m = panel.models_model
    return m.data(m.index(row, 2))


def test_drop_a_batch_see_the_check_overlay_timeline_badges_and_retrain_a_challenger(
        qtbot, window, store, tmp_path):
    train_model(store)
    registry.register(store, registry.get_version(store, "churn@champion").run_id, "other")
    panel = panel_of(window)
    assert panel.models_model.rowCount() == 2 and status_cell(panel, 0) == "—"

    # a drifted batch dropped on "churn" (row 0): the check runs as a job and shows up
    drop_on_model(panel, write_batch(tmp_path, drifted_batch(), "march.csv"), row=0)
    [outcome] = wait_jobs(qtbot, window, 1)
    assert outcome.ok, outcome.error
    qtbot.waitUntil(lambda: panel.checks_model.rowCount() == 1, timeout=5000)
    assert panel.model_name == "churn" and panel.check["verdict"] == "drift"
    assert drift.list_checks(store, "other") == []  # the model under the pointer took it

    # the summary: features sorted by drift score, drifting ones first, with test and threshold
    fm = panel.features_model
    rows = [[fm.data(fm.index(r, c)) for c in range(fm.columnCount())] for r in range(fm.rowCount())]
    names = [r[0] for r in rows]
    assert set(names) >= {"age", "plan", "visits"}
    assert rows[0][7] == "drift" and rows[0][0] in ("age", "plan")
    assert all(r[2] for r in rows if r[7] in ("drift", "ok")) and all(r[6] != "—" for r in rows if r[7] == "drift")
    assert "DRIFT" in panel.findings.text()

    # a feature's overlay: reference and batch bars on one plot
    age_row = names.index("age")
    panel.features_view.selectRow(age_row)
    qtbot.waitUntil(lambda: panel.overlay_plot is not None, timeout=3000)
    bars = [i for i in panel.overlay_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 2 and "age" in panel.feature_title.text()

    # badges: Monitoring and Registry say drift
    assert status_cell(panel, 0) == "drift"
    reg = window.registry_panel
    reg.refresh()
    rm = reg.models_model
    assert rm.data(rm.index(rm.row_of("churn"), 3)) == "drift"

    # two more checks: an unshifted batch, and the drifted one again -> the timeline has three points
    drop_on_model(panel, write_batch(tmp_path, churn_frame(400, seed=7), "april.csv"), row=0)
    wait_jobs(qtbot, window, 2)
    drop_on_model(panel, write_batch(tmp_path, drifted_batch(seed=3), "may.csv"), row=0)
    wait_jobs(qtbot, window, 3)
    qtbot.waitUntil(lambda: panel.checks_model.rowCount() == 3, timeout=5000)
    verdicts = [c["verdict"] for c in panel.checks_model.rows]  # newest first
    assert verdicts[0] == "drift" and verdicts[1] == "ok"
    panel.tabs.setCurrentWidget(panel.timeline_tab)
    qtbot.waitUntil(lambda: panel.timeline_plots is not None, timeout=3000)
    series = panel.timeline_series["age"]
    assert len(series) == 3 and series[1] < series[0] and series[1] < series[2]
    assert not any(math.isnan(v) for v in series)

    # retrain from the latest (drifted) check: a challenger, the champion stays
    panel.tabs.setCurrentIndex(0)
    panel.checks_view.selectRow(0)
    assert panel.retrain_button.isEnabled()

    def choose_batch() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "retrainBox":
            next(b for b in box.buttons() if b.objectName() == "retrainBatch").click()
        else:
            QTimer.singleShot(20, choose_batch)

    QTimer.singleShot(0, choose_batch)
    qtbot.mouseClick(panel.retrain_button, Qt.MouseButton.LeftButton)
    outcomes = wait_jobs(qtbot, window, 4, timeout=120_000)
    assert outcomes[-1].ok, outcomes[-1].error
    model = registry.get_model(store, "churn")
    assert model.aliases == {"champion": 1, "challenger": 2}
    assert "vs champion churn@v1" in registry.timeline(store, "churn")[0]["comment"]
    settle_window(qtbot, window)
    assert reg.version is not None and reg.version.ref == "churn@v2"  # the Registry shows the challenger
    assert not window.shown_errors


def test_a_file_written_into_the_watch_folder_is_checked_and_drift_is_notified(qtbot, window, store, tmp_path):
    train_model(store)
    panel = panel_of(window)
    folder = tmp_path / "drops"
    folder.mkdir()
    assert panel.choose_watch_folder(str(folder), comment="nightly export")
    settle(panel)
    assert "watching" in panel.model_facts.text()
    path = write_batch(folder, drifted_batch(), "night.csv")
    old = path.stat().st_mtime - 5  # settled (the watcher waits for files to stop changing)
    import os

    os.utime(path, (old, old))
    panel.watch_timer.setInterval(200)
    qtbot.waitUntil(lambda: len(drift.list_checks(store, "churn")) == 1, timeout=60_000)
    qtbot.waitUntil(lambda: bool(panel.notifications), timeout=30_000)
    title, message = panel.notifications[0]
    assert title == "Drift in churn" and "night.csv" in message
    qtbot.wait(1000)  # more scans: the file is not checked twice
    wait_jobs(qtbot, window, 1)
    assert len(drift.list_checks(store, "churn")) == 1
    assert panel.checks_model.rowCount() == 1
    assert not window.shown_errors


def test_a_refresh_updates_the_models_by_name_and_keeps_the_selection(qtbot, window, store):
    train_model(store)
    registry.register(store, registry.get_version(store, "churn@champion").run_id, "other")
    panel = panel_of(window)
    panel.models_view.selectRow(1)
    settle(panel)
    assert panel.model_name == "other"
    resets: list[bool] = []
    panel.models_model.modelReset.connect(lambda: resets.append(True))
    registry.register(store, registry.get_version(store, "churn@champion").run_id, "another")  # sorts first
    panel.client.notify("models")
    settle(panel)
    assert [r["name"] for r in panel.models_model.rows] == ["another", "churn", "other"]
    assert not resets  # rows inserted by key, not a reset
    selected = panel.models_view.selectionModel().selectedRows()
    assert [i.row() for i in selected] == [2] and panel.model_name == "other"
    assert not window.shown_errors
