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
    return m.data(m.index(row, m.STATUS))


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
    assert window.runner.handles()[-1].spec.title == "Retrain churn@v1 on may.csv"  # the file, not an id
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


# --------------------------------------------------------------------------- issue 13: refusals, at a glance, next steps

def stored_counts(store) -> tuple[int, ...]:
    from modelyard.core.store import models as m
    from sqlalchemy import func, select

    with store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(model)) or 0
                     for model in (m.DatasetVersion, m.MonitoringCheck, m.Artifact, m.Job))


def test_a_dropped_file_with_none_of_the_models_columns_is_refused_and_nothing_is_stored(
        qtbot, window, store, tmp_path):
    import pandas as pd

    train_model(store)
    panel = panel_of(window)
    before = stored_counts(store)
    foreign = write_batch(tmp_path, pd.DataFrame({"city": ["Oslo", "Lima"] * 20, "sales": range(40)}), "march.csv")
    drop_on_model(panel, foreign, row=0)
    qtbot.waitUntil(lambda: bool(window.shown_errors), timeout=10_000)
    [error] = window.shown_errors
    assert error.startswith("Cannot check the batch: march.csv has none of churn@v1's columns: age, plan, visits — "
                            "check it is a batch of this model's data.")
    settle(panel)
    assert window.runner.handles() == [] and stored_counts(store) == before  # no job, no version, no check
    assert status_cell(panel, 0) == "—"  # the badge did not turn red
    assert panel.checks_stack.currentWidget() is panel.no_checks


def test_the_check_at_a_glance_summary_batch_file_threshold_and_readable_features(qtbot, window, store, tmp_path):
    train_model(store)
    panel = panel_of(window)
    # a model without checks says how to check a batch
    assert panel.checks_stack.currentWidget() is panel.no_checks
    assert "Drop a batch file here or Check a batch…" in panel.no_checks_text.text()
    drop_on_model(panel, write_batch(tmp_path, churn_frame(400, seed=7), "april.csv"), row=0)
    wait_jobs(qtbot, window, 1)
    drop_on_model(panel, write_batch(tmp_path, drifted_batch(), "march.csv"), row=0)
    wait_jobs(qtbot, window, 2)
    qtbot.waitUntil(lambda: panel.checks_model.rowCount() == 2 and panel.check is not None
                    and panel.check.get("batch_file") == "march.csv", timeout=5000)
    assert panel.checks_stack.currentIndex() == 0

    # one line: what moved and why the verdict is what it is
    check = panel.check
    n, drifted = check["n_features"], check["drifted"]
    text = panel.findings.text()
    assert ">DRIFT</b>" in text and (f"{len(drifted)} of {n} features drifted ({len(drifted) / n:.0%}, the rule "
                                     f"is ≥ 50%): {', '.join(drifted)}") in text
    assert len(check["reasons"]) == len(set(check["reasons"]))  # no finding twice
    # the checks table: the batch's file and date
    cm = panel.checks_model
    headers = [cm.headerData(c, Qt.Orientation.Horizontal) for c in range(cm.columnCount())]
    assert headers[:5] == ["When", "Version", "Batch file", "Batch date", "Verdict"]
    assert [cm.data(cm.index(r, 2)) for r in range(2)] == ["march.csv", "april.csv"]
    assert all(cm.data(cm.index(r, 3)) for r in range(2))
    assert cm.data(cm.index(0, 2), Qt.ItemDataRole.ToolTipRole).startswith("DRIFT: ")
    # features: names elide in the middle, whole in the tooltip
    fm = panel.features_model
    assert panel.features_view.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert fm.data(fm.index(0, 0), Qt.ItemDataRole.ToolTipRole).startswith(fm.rows[0]["name"])
    # each feature's effect as a bar against its drift threshold (a dashed tick)
    from modelyard.ui.monitoring.tables import EffectDelegate, effect_threshold

    assert isinstance(panel.features_view.itemDelegateForColumn(5), EffectDelegate)
    assert {effect_threshold(f) for f in fm.rows if f.get("status") == "checked"} == {0.1}
    assert "dashed line at the drift threshold 0.1" in fm.data(fm.index(0, 5), Qt.ItemDataRole.ToolTipRole)

    # the timeline: the threshold as a dashed line, the batches on the axis, a legend beside the data
    panel.tabs.setCurrentWidget(panel.timeline_tab)
    qtbot.waitUntil(lambda: panel.timeline_plots is not None, timeout=5000)
    scores, _metric = panel.timeline_plots
    lines = [i for i in scores.getPlotItem().items if type(i).__name__ == "InfiniteLine"]
    assert [round(line.value(), 3) for line in lines] == [0.1, 0.5]  # a feature's threshold, the dataset rule
    ticks = scores.getAxis("bottom")._tickLevels[0]
    assert len(ticks) == 2 and all(label for _x, label in ticks)
    spots = [i for i in scores.getPlotItem().items if type(i).__name__ == "ScatterPlotItem"]
    assert spots and "march.csv" in spots[0].opts["tip"](x=2, y=0.5, data=panel.timeline_checks[1])
    legend = panel.timeline_legend.text()
    assert "age" in legend and "drifts at a score ≥ 0.1" in legend and "drifts when ≥ 50% of its features" in legend
    assert not window.shown_errors


def test_retrain_is_off_without_a_target_and_says_why(qtbot, window, store, tmp_path):
    train_model(store)
    panel = panel_of(window)
    drop_on_model(panel, write_batch(tmp_path, drifted_batch().drop(columns=["churned"]), "may.csv"), row=0)
    wait_jobs(qtbot, window, 1)
    qtbot.waitUntil(lambda: panel.check is not None, timeout=5000)
    assert panel.check["verdict"] == "drift"
    assert not panel.retrain_button.isEnabled()
    assert "has no 'churned' column (the target of churn@v1)" in panel.retrain_button.toolTip()
    # with the target, Retrain… is on and is the last action to go into "More"
    drop_on_model(panel, write_batch(tmp_path, drifted_batch(seed=3), "june.csv"), row=0)
    wait_jobs(qtbot, window, 2)
    qtbot.waitUntil(lambda: panel.check is not None and panel.check.get("batch_file") == "june.csv", timeout=5000)
    assert panel.retrain_button.isEnabled()
    window.resize(800, 600)
    qtbot.waitUntil(lambda: bool(panel.actions.overflowed()), timeout=3000)
    assert panel.retrain_button not in panel.actions.overflowed() and panel.retrain_button.isVisible()
    assert not window.shown_errors


def test_next_steps_monitor_model_and_retrain_check(qtbot, window, store, tmp_path):
    train_model(store)
    registry.register(store, registry.get_version(store, "churn@champion").run_id, "other")
    from factories import check_file

    checked = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    window.show_panel(0)
    # from another room: show "other", which has no checks
    window.client.navigate.emit("monitoring", ("monitor_model", "other"))
    panel = next(p for p in window.panels if isinstance(p, MonitoringPanel))
    qtbot.waitUntil(lambda: panel.model_name == "other" and panel.isVisible(), timeout=5000)
    settle_window(qtbot, window)
    assert panel.checks_stack.currentWidget() is panel.no_checks and "other" in panel.no_checks_text.text()
    assert panel.model_title.full_text() == "other"

    # check -> Retrain…: the check is selected and the retrain question is asked
    asked: list[str] = []

    def cancel() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "retrainBox":
            asked.append(box.text())
            box.button(QMessageBox.StandardButton.Cancel).click()
        else:
            QTimer.singleShot(20, cancel)

    QTimer.singleShot(0, cancel)
    window.client.navigate.emit("monitoring", ("retrain_check", checked["check_id"]))
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    assert panel.model_name == "churn" and panel.check["id"] == checked["check_id"]
    assert "march.csv" in asked[0] and "#" not in asked[0]
    assert not window.shown_errors


def test_export_report_says_where_and_the_report_tab_shows_it(qtbot, window, store, tmp_path):
    from factories import check_file

    train_model(store)
    check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    panel = panel_of(window)
    qtbot.waitUntil(lambda: panel.check is not None, timeout=5000)
    target = tmp_path / "out" / "march-drift.html"
    target.parent.mkdir()
    with qtbot.waitSignal(window.client.saved, timeout=10_000) as saved:
        panel.export_report(str(target))
    assert saved.args == ["Drift report churn@v1 on march.csv", str(target)]
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    panel.tabs.setCurrentWidget(panel.report_tab)
    browser = panel.report_tab.browser
    qtbot.waitUntil(lambda: "Drift report: churn@v1 on march.csv" in browser.toPlainText(), timeout=10_000)
    assert "The rule" in browser.toPlainText() and "Performance" in browser.toPlainText()
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QTextDocument

    html = browser.toHtml()
    src = html.split('<img src="', 1)[1].split('"', 1)[0]
    image = browser.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(src))
    assert image is not None and not image.isNull()  # the charts are drawn, not dropped
    assert not window.shown_errors


def test_a_foreign_file_in_the_watch_folder_is_notified_not_checked(qtbot, window, store, tmp_path, monkeypatch):
    import time

    import pandas as pd
    from modelyard.core.monitoring import watch

    train_model(store)
    panel = panel_of(window)
    folder = tmp_path / "drops"
    folder.mkdir()
    assert panel.choose_watch_folder(str(folder), comment="nightly export")
    settle(panel)
    before = stored_counts(store)[:3]
    write_batch(folder, pd.DataFrame({"city": ["Oslo"] * 20}), "night.csv")
    pending = watch.pending_files
    monkeypatch.setattr(watch, "pending_files",  # the file counts as settled (written 10 s ago)
                        lambda store_, name, **kw: pending(store_, name, now=time.time() + 10))
    panel.watch_timer.setInterval(200)
    qtbot.waitUntil(lambda: bool(panel.notifications), timeout=30_000)
    title, message = panel.notifications[0]
    assert title == "Not checked: night.csv"
    assert message == "night.csv has none of churn@v1's columns: age, plan, visits — check it is a batch of this " \
                      "model's data."
    assert stored_counts(store)[:3] == before and status_cell(panel, 0) == "—"
    assert not window.shown_errors  # no dialog over the user's work


def test_monitor_model_with_a_version_shows_that_versions_newest_check(qtbot, window, store, tmp_path):
    from factories import check_file

    train_model(store)
    registry.register(store, registry.get_version(store, "churn@champion").run_id, "churn")  # churn@v2
    on_v1 = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"), ref="churn@v1")
    check_file(store, write_batch(tmp_path, churn_frame(300, seed=9), "april.csv"), ref="churn@v2")
    panel = panel_of(window)
    qtbot.waitUntil(lambda: panel.check is not None, timeout=5000)
    assert panel.check["ref"] == "churn@v2"  # the newest
    panel.monitor_model("churn", "churn@v1")
    qtbot.waitUntil(lambda: panel.check is not None and panel.check["id"] == on_v1["check_id"], timeout=5000)
    assert panel.checks_view.currentIndex().row() == panel.checks_model.row_of_key(on_v1["check_id"])


def test_the_report_page_as_the_browser_shows_it():
    from modelyard.ui.monitoring.report import browsable_html

    page = ('<td class="n">0.5 <span class="muted">ks_d</span></td><style>td.n{white-space:nowrap}</style>'
            '<div class="chart"><svg width="640" height="250" viewBox="0 0 640 250"><rect/></svg></div>')
    shown = browsable_html(page, max_width=400)
    assert '<td class="n">0.5</td>' in shown and "nowrap" not in shown and "<svg" not in shown
    assert '<img src="data:image/svg+xml;base64,' in shown and 'width="400"' in shown
