"""The main window driven as a user drives it: clicks, shortcuts, menus, jobs, closing."""

from __future__ import annotations

import multiprocessing

import pytest
from factories import open_window
from modelyard.core.jobs.runner import JobSpec, get_job
from modelyard.ui.common.settings import open_settings
from modelyard.ui.jobs.dock import COL_CANCEL, COL_PROGRESS
from modelyard.ui.main_window import MainWindow
from modelyard.ui.panels import (
    DatasetsPanel,
    ExperimentsPanel,
    MonitoringPanel,
    RegistryPanel,
)
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

TICKING = "ui_jobfns:ticking"


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store, ask_to_quit=True)
    w.activateWindow()
    yield w
    if w.isVisible():
        w.settings.setValue("confirm/quit_with_jobs", "false")
        w.close()


def _click_sidebar(qtbot, window, row: int) -> None:
    rect = window.sidebar.visualItemRect(window.sidebar.item(row))
    qtbot.mouseClick(window.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _job_row(window, job_id):
    return window.jobs_panel.model.row(job_id)


def test_panels_switch_by_sidebar_click_and_shortcut(qtbot, window):
    kinds = [DatasetsPanel, ExperimentsPanel, RegistryPanel, MonitoringPanel]
    assert isinstance(window.stack.currentWidget(), DatasetsPanel)
    for row in (2, 1, 3, 0):
        _click_sidebar(qtbot, window, row)
        assert isinstance(window.stack.currentWidget(), kinds[row])
        assert window.sidebar.currentRow() == row
    for number, kind in zip((3, 4, 2, 1), (RegistryPanel, MonitoringPanel, ExperimentsPanel, DatasetsPanel)):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_0 + number), Qt.KeyboardModifier.ControlModifier)
        assert isinstance(window.stack.currentWidget(), kind), f"Ctrl+{number}"
        assert window.sidebar.currentRow() == number - 1


def test_empty_panels_say_what_they_hold_and_how_to_start(window):
    texts = {type(p).__name__: (p.empty.headline.text(), p.empty.body.text()) for p in window.panels}
    assert "Drop a CSV, Parquet or Excel file" in texts["DatasetsPanel"][1]
    assert "start_run" in texts["ExperimentsPanel"][1]
    assert "Register" in texts["RegistryPanel"][1]
    assert "drift" in texts["MonitoringPanel"][1]
    for panel in window.panels:
        assert panel.stack.currentWidget() is panel.empty
        assert not panel.empty.icon_label.pixmap().isNull()


def test_status_bar_names_the_store_and_counts_running_jobs(qtbot, window, store):
    assert str(store.root) in window.store_label.full_text()
    assert window.jobs_strip.full_text() == "Jobs: none yet"
    handle = window.start_job(JobSpec(TICKING, "Tick", {"seconds": 30}))
    qtbot.waitUntil(lambda: window.jobs_strip.full_text().startswith("Jobs: 1 running · Tick 0:0"), timeout=3000)
    handle.cancel()
    qtbot.waitUntil(lambda: window.jobs_strip.full_text() == "Jobs: 1 recent · last: Tick was cancelled", timeout=5000)


def test_job_reports_progress_and_is_cancelled_by_clicking_its_cancel_cell(qtbot, window, store):
    handle = window.start_job(JobSpec(TICKING, "Slow tick", {"seconds": 20}))
    assert window.jobs_dock.isVisible()
    qtbot.waitUntil(lambda: (_job_row(window, handle.job_id).progress or 0) > 0.005, timeout=5000)
    row = _job_row(window, handle.job_id)
    assert row.status == "running" and row.cancellable
    model = window.jobs_panel.model
    view = window.jobs_panel.view
    i = model._index[handle.job_id]
    assert "%" in view.itemDelegate().__class__.__name__ or model.data(model.index(i, COL_PROGRESS)) > 0
    cell = view.visualRect(model.index(i, COL_CANCEL))
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=cell.center())
    assert blocker.args[0].status == "cancelled"
    record, log = get_job(store, handle.job_id)
    assert record.status == "cancelled"
    assert "ticking started" in log
    qtbot.waitUntil(lambda: _job_row(window, handle.job_id).status == "cancelled", timeout=2000)
    assert not _job_row(window, handle.job_id).cancellable


def test_cancel_button_stops_a_child_process_job_at_once(qtbot, window, store):
    spec = JobSpec("ui_jobfns:busy_without_checks", "Crunch", {"seconds": 60}, process=True)
    handle = window.start_job(spec)
    qtbot.waitUntil(lambda: bool(multiprocessing.active_children()), timeout=10000)
    qtbot.waitUntil(lambda: _job_row(window, handle.job_id).message == "crunching", timeout=10000)
    window.jobs_panel.select_job(handle.job_id)
    assert window.jobs_panel.cancel_button.isEnabled()
    with qtbot.waitSignal(handle.finished, timeout=4000) as blocker:
        qtbot.mouseClick(window.jobs_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].status == "cancelled"
    assert not multiprocessing.active_children()
    assert get_job(store, handle.job_id)[0].status == "cancelled"


def test_store_menu_verify_runs_a_real_job_to_success(qtbot, window, store):
    with store.write() as s:
        store.artifacts.put_bytes(b"model bytes", session=s)
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000) as blocker:
        window.action_verify.trigger()
    outcome = blocker.args[1]
    assert outcome.status == "succeeded" and outcome.result["checked"] == 1
    qtbot.waitUntil(lambda: _job_row(window, outcome.job_id).status == "succeeded", timeout=2000)


def test_failing_job_shows_its_error_and_the_app_keeps_working(qtbot, window, store):
    with store.write() as s:
        ref = store.artifacts.put_bytes(b"precious model", session=s)
    store.artifacts.path(ref.sha256).write_bytes(b"tampered")
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000) as blocker:
        window.action_verify.trigger()
    outcome = blocker.args[1]
    assert outcome.status == "failed"
    assert "1 damaged" in outcome.error and ref.sha256[:12] in outcome.error
    window.jobs_panel.select_job(outcome.job_id)
    qtbot.waitUntil(lambda: "1 damaged" in window.jobs_panel.detail.toPlainText(), timeout=2000)
    assert "Traceback" not in window.jobs_panel.detail.toPlainText()
    assert "failed" in window.jobs_panel.detail_title.text()
    # a job raising a user-facing error: its message, not a traceback
    with qtbot.waitSignal(window.runner.job_finished, timeout=5000) as blocker:
        window.start_job(JobSpec("ui_jobfns:refuse", "Import", {"path": "sales.csv"}))
    assert blocker.args[1].error.startswith("sales.csv, row 3")
    # the window still responds
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(window.stack.currentWidget(), ExperimentsPanel)


def test_closing_with_a_running_job_asks_then_cancels_and_leaves_no_thread(qtbot, window, store, monkeypatch):
    handle = window.start_job(JobSpec(TICKING, "Long tick", {"seconds": 60}))
    qtbot.waitUntil(lambda: (_job_row(window, handle.job_id).progress or 0) > 0, timeout=5000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    window.close()
    assert window.isVisible(), "answering No keeps the window and the job"
    assert handle.running and "1 job is still running" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.close()
    assert not window.isVisible()
    assert window.runner.active_thread_count() == 0
    QApplication.processEvents()
    assert get_job(store, handle.job_id)[0].status == "cancelled"


def test_window_geometry_and_last_store_are_remembered(qtbot, store, tmp_path):
    settings = open_settings()
    w = MainWindow(store, settings)
    qtbot.addWidget(w)
    w.show()
    w.resize(760, 590)
    w.move(QPoint(40, 30))
    w.close()
    again = MainWindow(store, open_settings())
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (760, 590)
    assert open_settings().value("stores/last") == str(store.root)
    again.close()


def test_switching_to_a_new_store_updates_every_view(qtbot, window, tmp_path):
    assert window._open_store_at(str(tmp_path / "second"), create=True)
    assert str(tmp_path / "second") in window.store_label.full_text()
    assert window.jobs_panel.store is window.store
    assert all(p.store is window.store for p in window.panels)
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000):
        window.action_verify.trigger()
    assert window.store.info()["counts"]["jobs"] == 1


def test_opening_a_folder_that_is_not_a_store_shows_a_clear_message(qtbot, window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("modelyard.ui.main_window.show_error", lambda parent, title, exc: shown.append(str(exc)))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    before = window.store
    assert not window._open_store_at(str(tmp_path / "photos"), create=True)
    assert "photos" in shown[0] and "not a Modelyard store" in shown[0]
    assert window.store is before


def _dark_palette():
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#1e1e1e"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
                         (QPalette.ColorRole.Base, "#252526"), (QPalette.ColorRole.Text, "#e6e6e6"),
                         (QPalette.ColorRole.Button, "#2d2d2d"), (QPalette.ColorRole.ButtonText, "#e6e6e6")):
        pal.setColor(role, QColor(colour))
    return pal


def _brightest_pixel(icon) -> int:
    image = icon.pixmap(24, 24).toImage()
    return max(image.pixelColor(x, y).lightness() for x in range(image.width()) for y in range(image.height())
               if image.pixelColor(x, y).alpha() > 200)


def test_icons_follow_a_switch_to_a_dark_palette(qtbot, window):
    from modelyard.ui.common import theme

    light_icon_lightness = _brightest_pixel(window.sidebar.item(0).icon())
    assert light_icon_lightness < 100, "dark strokes on a light palette"
    app = QApplication.instance()
    original = app.palette()
    try:
        app.setPalette(_dark_palette())
        qtbot.waitUntil(lambda: _brightest_pixel(window.sidebar.item(0).icon()) > 180, timeout=2000)
        assert theme.is_dark()
        assert theme.status_colour("failed").name() == "#f85149"
    finally:
        app.setPalette(original)
        qtbot.waitUntil(lambda: _brightest_pixel(window.sidebar.item(0).icon()) < 100, timeout=2000)


# --------------------------------------------------------------------------- the store the window opens on


def _answer_next_box(qtbot, button_text: str, seen: list[str]) -> None:
    """When the next modal message box opens, note its text and click the button labelled ``button_text``."""
    from PySide6.QtCore import QTimer

    def attempt() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, attempt)
            return
        seen.append(box.text() + "\n" + box.informativeText())
        for button in box.buttons():
            if button.text().replace("&", "") == button_text:
                qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
                return
        raise AssertionError(f"no {button_text!r} button in {[b.text() for b in box.buttons()]}")

    QTimer.singleShot(0, attempt)


def test_an_explicit_empty_folder_becomes_a_store_only_when_the_user_says_so(qtbot, tmp_path):
    from modelyard.ui.app import open_start_store

    folder = tmp_path / "typo-store"
    seen: list[str] = []
    _answer_next_box(qtbot, "Cancel", seen)
    assert open_start_store(str(folder), True, None) is None
    assert "There is no Modelyard store in" in seen[0] and str(folder) in seen[0]
    assert not folder.exists(), "declining must leave the location as it was"

    _answer_next_box(qtbot, "Create store", seen)
    store = open_start_store(str(folder), True, None)
    assert store is not None and (folder / "modelyard.db").is_file()
    store.close()
    assert len(seen) == 2


def test_an_explicit_folder_that_is_not_a_store_is_refused_without_a_question(qtbot, tmp_path):
    from modelyard.ui.app import open_start_store

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 not a store")
    seen: list[str] = []
    _answer_next_box(qtbot, "OK", seen)
    assert open_start_store(str(folder), True, None) is None
    assert "No Modelyard store at" in seen[0] and str(folder) in seen[0], seen
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]


def test_the_default_store_is_created_on_first_use_without_a_question(qtbot, tmp_path, monkeypatch):
    import modelyard.ui.app as app_module

    default = tmp_path / "data" / "store"
    monkeypatch.setattr(app_module, "default_store_dir", lambda: default)
    store = app_module.open_start_store(str(default), False, None)
    assert store is not None and (default / "modelyard.db").is_file()
    store.close()


def test_store_menu_removes_unused_files_after_showing_what_they_are(qtbot, window, store):
    """An orphan (a file whose write never committed) is listed first; removed only on 'Remove files'."""
    import os
    import time

    with store.write() as s:
        kept = store.artifacts.put_bytes(b"a model a record uses", session=s)
    orphan = store.artifacts.path("ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a killed write")
    old = time.time() - 7200
    os.utime(orphan, (old, old))

    seen: list[str] = []
    _answer_next_box(qtbot, "Cancel", seen)
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000) as listed:
        window.action_gc.trigger()
    assert listed.args[1].ok and listed.args[1].result["dry_run"] is True
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert "1 file" in seen[0] and "22 B" in seen[0], seen
    assert orphan.exists(), "Cancel removes nothing"

    _answer_next_box(qtbot, "Remove files", seen)
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000):
        window.action_gc.trigger()
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    qtbot.waitUntil(lambda: not orphan.exists(), timeout=10000)
    assert store.artifacts.path(kept.sha256).exists()


def test_store_menu_says_when_there_is_nothing_to_remove(qtbot, window, store):
    seen: list[str] = []
    _answer_next_box(qtbot, "OK", seen)
    with qtbot.waitSignal(window.runner.job_finished, timeout=10000):
        window.action_gc.trigger()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert "No unused files" in seen[0], seen
