"""The Registry panel driven as a user drives it: register, aliases with comments, gates, timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from factories import settle
from held_clock import held_clock
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.ui.main_window import MainWindow
from modelyard.ui.registry.dialogs import ChangeDialog, GatesDialog, RegisterDialog
from modelyard.ui.registry.panel import RUN_IDS_MIME, RegistryPanel
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPushButton,
)

X = np.array([[i, i % 3] for i in range(20)], dtype=float)
Y = np.array([0] * 10 + [1] * 10)


def make_run(store: Store, accuracy: float, *, experiment: str = "churn") -> str:
    from sklearn.linear_model import LogisticRegression

    with tracking.start_run(experiment, store=store, spec={"model": "logistic_regression", "split": {"seed": 0}},
                            name=f"acc-{accuracy}") as run:
        run.log_param("model", "logistic_regression")
        run.log_metrics({"accuracy": accuracy, "f1": accuracy - 0.05})
        run.log_model(LogisticRegression().fit(X, Y), input_example=X[:3])
    return run.id


def panel_of(window: MainWindow) -> RegistryPanel:
    panel = next(p for p in window.panels if isinstance(p, RegistryPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def when_modal(qtbot, kind: type, act: Callable[[Any], None]) -> list[Any]:
    """Answer the next modal dialog of ``kind`` (opened by the click that follows) with ``act``."""
    seen: list[Any] = []

    def poll() -> None:
        w = QApplication.activeModalWidget()
        if isinstance(w, kind) and w.isVisible():
            seen.append(w)
            act(w)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)
    return seen


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def comment_and_ok(qtbot, text: str, choice: str | None = None) -> Callable[[ChangeDialog], None]:
    def act(d: ChangeDialog) -> None:
        assert not d.ok_button.isEnabled() or not d.comment_required, "OK must wait for a comment"
        if choice is not None:
            d.choice.setCurrentText(choice)
        qtbot.keyClicks(d.comment, text)
        assert d.ok_button.isEnabled()
        click(qtbot, d.ok_button)
    return act


def version_rows(panel: RegistryPanel) -> list[tuple[str, str, str]]:
    m = panel.versions_model
    return [(m.data(m.index(r, 0)), m.data(m.index(r, 1)), m.data(m.index(r, 2))) for r in range(m.rowCount())]


def test_register_a_run_from_the_panel_and_by_dropping_runs(qtbot, window, store):
    r1, r2 = make_run(store, 0.8), make_run(store, 0.9)
    panel = panel_of(window)
    assert panel.stack.currentWidget() is panel.empty and panel.versions_model.rowCount() == 0

    def register(d: RegisterDialog) -> None:
        d.run_combo.setCurrentIndex(d.run_combo.findData(r1))
        d.name_combo.setCurrentText("churn")
        qtbot.keyClicks(d.comment, "first model")
        click(qtbot, next(b for b in d.buttons.buttons() if b.text() == "Register"))

    seen = when_modal(qtbot, RegisterDialog, register)
    click(qtbot, panel.empty.findChildren(QPushButton)[0])
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert seen, "the Register dialog did not open"
    qtbot.waitUntil(lambda: panel.stack.currentWidget() is panel.content, timeout=3000)
    assert version_rows(panel) == [("v1", "", "")]
    assert registry.get_version(store, "churn@v1").run_id == r1

    # a run dragged from the runs table and dropped on the panel: asks for the name, registers v2
    mime = QMimeData()
    mime.setData(RUN_IDS_MIME, r2.encode())
    point = QPointF(panel.rect().center())
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()
    seen = when_modal(qtbot, ChangeDialog, lambda d: click(qtbot, d.ok_button))
    QApplication.sendEvent(panel, QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                             Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: panel.versions_model.rowCount() == 2, timeout=3000)
    assert seen and seen[0].choice_text() == "churn"
    assert version_rows(panel)[0][0] == "v2" and registry.get_version(store, "churn@v2").run_id == r2
    assert [e["action"] for e in registry.timeline(store, "churn")] == ["register", "register", "create_model"]
    assert not window.shown_errors


def test_move_champion_between_versions_with_comments_and_see_the_audit_timeline(qtbot, window, store):
    for acc in (0.8, 0.9):
        registry.register(store, make_run(store, acc), "churn")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version("churn@v1")
    settle(qtbot, window)

    # the dialog refuses to proceed without a comment; Cancel changes nothing
    seen = when_modal(qtbot, ChangeDialog, lambda d: (d.choice.setCurrentText("champion"),
                                                      setattr(d, "_was_enabled", d.ok_button.isEnabled()),
                                                      d.reject()))
    click(qtbot, panel.alias_button)
    assert seen and seen[0]._was_enabled is False
    assert registry.get_model(store, "churn").aliases == {}

    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "first champion", "champion"))
    click(qtbot, panel.alias_button)
    qtbot.waitUntil(lambda: registry.get_model(store, "churn").aliases == {"champion": 1}, timeout=3000)
    settle(qtbot, window)
    assert ("v1", "champion", "") in version_rows(panel)

    panel.select_version("churn@v2")
    settle(qtbot, window)
    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "better accuracy", "champion"))
    click(qtbot, panel.alias_button)
    qtbot.waitUntil(lambda: registry.get_model(store, "churn").aliases == {"champion": 2}, timeout=3000)
    settle(qtbot, window)
    rows = version_rows(panel)
    assert ("v2", "champion", "") in rows and ("v1", "", "") in rows  # moved off v1

    panel.tabs.setCurrentIndex(1)
    m = panel.timeline_model
    first = [m.data(m.index(0, c)) for c in range(m.columnCount())]
    assert first[1] == "tester" and first[2] == "moved alias champion" and first[3] == "v2"
    assert first[4] == "v1 → v2" and first[5] == "better accuracy"  # in churn's own timeline: its versions
    assert "churn@v1 → churn@v2" in m.data(m.index(0, 4), Qt.ItemDataRole.ToolTipRole)
    assert [m.data(m.index(r, 5)) for r in range(m.rowCount())][:2] == ["better accuracy", "first champion"]


def test_a_failing_gate_blocks_promotion_with_its_reason_and_an_override_is_audited(qtbot, window, store):
    registry.register(store, make_run(store, 0.9), "churn")
    registry.register(store, make_run(store, 0.7), "churn")
    registry.set_alias(store, "churn@v1", "champion", comment="start")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version("churn@v2")
    settle(qtbot, window)

    def gates(d: GatesDialog) -> None:
        d.min_checks["accuracy"].setChecked(True)
        d.min_values["accuracy"].setValue(0.75)
        d.beat_check.setChecked(True)
        d.beat_metric.setCurrentText("accuracy")
        qtbot.keyClicks(d.comment, "team policy")
        click(qtbot, next(b for b in d.buttons.buttons() if d.buttons.buttonRole(b).name == "AcceptRole"))

    when_modal(qtbot, GatesDialog, gates)
    click(qtbot, panel.gates_button)
    qtbot.waitUntil(lambda: registry.get_model(store, "churn").gates is not None, timeout=3000)
    settle(qtbot, window)
    assert registry.get_model(store, "churn").gates == {
        "min_metrics": {"accuracy": 0.75}, "beat_champion": {"metric": "accuracy", "higher_is_better": True}}
    # one line above the versions (their height is the table's); the reasons are in its tooltip and "details"
    assert "would be blocked" in panel.gate_label.text() and "2 reasons" in panel.gate_label.text()
    assert "below the minimum" in panel.gate_label.toolTip()
    details: list[str] = []
    when_modal(qtbot, QMessageBox, lambda box: (details.append(box.text()), box.close()))
    panel.gate_label.linkActivated.emit("details")
    qtbot.waitUntil(lambda: bool(details), timeout=3000)
    assert "accuracy 0.7 of churn@v2 is below the minimum 0.75" in details[0]

    # promoting v2 is blocked: the box names the reasons; Cancel leaves the champion where it was
    blocked: list[str] = []

    def cancel_box(box: QMessageBox) -> None:
        blocked.append(box.text())
        box.button(QMessageBox.StandardButton.Cancel).click()

    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "try v2", "champion"))
    when_modal(qtbot, QMessageBox, cancel_box)
    click(qtbot, panel.alias_button)
    qtbot.waitUntil(lambda: bool(blocked), timeout=3000)
    assert "accuracy 0.7 of churn@v2 is below the minimum 0.75" in blocked[0]
    assert "does not beat the champion churn@v1" in blocked[0]
    assert registry.get_model(store, "churn").aliases == {"champion": 1}

    # Production is gated too; this time the user overrides, and the override is in the timeline
    def override(box: QMessageBox) -> None:
        next(b for b in box.buttons() if b.objectName() == "overrideButton").click()

    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "hotfix, approved by Ana", "Production"))
    when_modal(qtbot, QMessageBox, override)
    click(qtbot, panel.stage_button)
    qtbot.waitUntil(lambda: registry.get_version(store, "churn@v2").stage == "Production", timeout=3000)
    settle(qtbot, window)
    events = registry.timeline(store, "churn")
    assert [e["action"] for e in events[:2]] == ["set_stage", "gate_override"]
    assert events[1]["comment"] == "hotfix, approved by Ana" and events[1]["details"]["reasons"]
    assert ("v2", "", "Production") in version_rows(panel)
    m = panel.timeline_model
    assert m.data(m.index(1, 2)) == "overrode gates"
    assert not window.shown_errors


def test_versions_menu_offers_the_version_actions(qtbot, window, store):
    registry.register(store, make_run(store, 0.8), "churn")
    registry.set_alias(store, "churn@v1", "challenger", comment="try")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    texts = [a.text() for a in panel.versions_menu().actions() if a.text()]
    assert texts[:4] == ["Make v1 champion…", "Set alias…", "Remove alias challenger…", "Change stage…"]
    when_modal(qtbot, ChangeDialog, comment_and_ok(qtbot, "done"))
    next(a for a in panel.versions_menu().actions() if a.text() == "Remove alias challenger…").trigger()
    qtbot.waitUntil(lambda: registry.get_model(store, "churn").aliases == {}, timeout=3000)
    settle(qtbot, window)
    assert registry.timeline(store, "churn")[0]["action"] == "remove_alias"
    assert [a.text() for a in panel.versions_menu().actions() if a.text()][2] == "Change stage…"


def experiments_showing(qtbot, window, n_runs: int):
    from modelyard.ui.experiments.panel import ExperimentsPanel

    exp = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(exp))
    exp.refresh()
    qtbot.waitUntil(lambda: exp.runs_model.rowCount() == n_runs, timeout=10_000)
    return exp


def test_runs_dragged_from_the_runs_table_onto_the_sidebar_registry_item_are_registered(qtbot, window, store):
    run_id = make_run(store, 0.8)
    exp = experiments_showing(qtbot, window, 1)
    view = exp.runs_view
    assert view.dragEnabled()
    # what a drag out of the runs table carries: the runs table model's own mime data
    row = exp.runs_model.row_of(run_id)
    mime = exp.runs_model.mimeData([exp.runs_model.index(row, c) for c in range(exp.runs_model.columnCount())])
    assert bool(exp.runs_model.flags(exp.runs_model.index(row, 0)) & Qt.ItemFlag.ItemIsDragEnabled)
    assert RUN_IDS_MIME in exp.runs_model.mimeTypes() and mime.hasFormat(RUN_IDS_MIME)
    sidebar = window.sidebar
    panel = window.registry_panel
    item_rect = sidebar.visualItemRect(sidebar.item(window.panels.index(panel)))
    point = QPointF(item_rect.center())
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(sidebar.viewport(), enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(sidebar.viewport(), move)
    assert window.current_panel() is panel  # hovering the item during the drag opens the panel
    when_modal(qtbot, ChangeDialog, lambda d: (d.choice.setCurrentText("fraud"), click(qtbot, d.ok_button)))
    QApplication.sendEvent(sidebar.viewport(), QDropEvent(point, Qt.DropAction.CopyAction, mime,
                                                          Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: panel.versions_model.rowCount() == 1, timeout=3000)
    assert registry.get_version(store, "fraud@v1").run_id == run_id


def test_lineage_and_model_card_of_a_trained_version(qtbot, window, store, tmp_path):
    from factories import train_churn_model as train_model
    from modelyard.ui.registry.dialogs import NotesDialog

    info = train_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version(info.ref)
    settle(qtbot, window)
    panel.tabs.setCurrentWidget(panel.lineage_tab)
    qtbot.waitUntil(lambda: panel.lineage_view is not None and bool(panel.lineage_view.nodes), timeout=5000)
    types = {item.node.type for item in panel.lineage_view.nodes.values()}
    assert {"dataset_version", "run", "model_version"} <= types  # (imported from a frame: no file)
    # the graph reads left to right: dataset version, run, model version
    x = {t: min(i.sceneBoundingRect().left() for i in panel.lineage_view.nodes.values() if i.node.type == t)
         for t in ("dataset_version", "run", "model_version")}
    assert x["dataset_version"] < x["run"] < x["model_version"]
    # every node shows its label, drawn in the scene (not only in a tooltip)
    from PySide6.QtWidgets import QGraphicsTextItem

    QApplication.processEvents()
    import gc

    gc.collect()
    shown = {i.toPlainText() for i in panel.lineage_view.scene().items() if isinstance(i, QGraphicsTextItem)}
    assert {item.node.label for item in panel.lineage_view.nodes.values()} <= shown

    panel.tabs.setCurrentWidget(panel.card_tab)
    qtbot.waitUntil(lambda: panel.card_browser is not None, timeout=3000)
    assert "churn@v1" in panel.card_browser.toPlainText()

    def write_notes(d: NotesDialog) -> None:
        d.intended_use.setPlainText("Rank customers for the retention calls.")
        d.notes.setPlainText("<script>alert(1)</script> rare plans are noisy")
        qtbot.keyClicks(d.comment, "with the risk team")
        d.buttons.button(d.buttons.StandardButton.Save).click()

    when_modal(qtbot, NotesDialog, write_notes)
    click(qtbot, panel.edit_notes_button)
    qtbot.waitUntil(lambda: "Rank customers for the retention calls." in panel.card_browser.toPlainText(),
                    timeout=3000)
    settle(qtbot, window)
    assert "<script>alert(1)</script>" in panel.card_browser.toPlainText()  # shown as text, not run
    assert "<script>" not in panel.card_html
    assert registry.timeline(store, "churn")[0]["action"] == "edit_card"
    tm = panel.timeline_model
    assert tm.data(tm.index(0, 4)) == "intended use and notes changed"  # the timeline says what, not raw JSON
    out = panel.export_card(str(tmp_path / "card.html"))
    settle(qtbot, window)
    html = (tmp_path / "card.html").read_text()
    assert out and "Rank customers for the retention calls." in html and "&lt;script&gt;" in html
    assert not window.shown_errors


def test_export_a_bundle_and_import_it_into_a_second_store_through_the_panel(qtbot, window, store, tmp_path,
                                                                             monkeypatch):
    from factories import churn_frame, drop_files
    from factories import train_churn_model as train_model
    from modelyard.ui.registry.dialogs import BundleImportDialog

    train_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    target = tmp_path / "churn-v1.mybundle"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    click(qtbot, panel.export_button)
    qtbot.waitUntil(lambda: not window.runner.running() and target.exists(), timeout=60_000)
    assert registry.timeline(store, "churn")[0]["action"] == "export_bundle"
    # exporting over it again: a path given in code is asked about here; the save dialog asked itself
    before = target.read_bytes()
    asked: list[str] = []
    monkeypatch.setattr("PySide6.QtWidgets.QMessageBox.question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Cancel)
    assert panel.export_bundle(str(target)) is None and len(asked) == 1 and str(target) in asked[0]
    assert target.read_bytes() == before and not window.runner.running()
    click(qtbot, panel.export_button)
    qtbot.waitUntil(lambda: not window.runner.running() and target.read_bytes() != before, timeout=60_000)
    assert len(asked) == 1 and not window.shown_errors

    other = Store.open(tmp_path / "other-store")
    assert window.switch_store(other)
    settle(qtbot, window)
    panel = panel_of(window)
    assert panel.stack.currentWidget() is panel.empty and panel.versions_model.rowCount() == 0
    seen: list[BundleImportDialog] = []
    summaries: list[str] = []

    def accept(d: BundleImportDialog) -> None:
        seen.append(d)
        summaries.append(d.findChild(QLabel, "bundleSummary").text())
        d.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    when_modal(qtbot, BundleImportDialog, accept)
    window.show_panel(0)
    drop_files(window.datasets_panel, [target])  # a bundle dropped on the window goes to the Registry
    qtbot.waitUntil(lambda: bool(seen) and not window.runner.running() and panel.versions_model.rowCount() == 1,
                    timeout=60_000)
    assert "every checksum verified" in summaries[0] and "loads without unpickling" in summaries[0]
    assert window.current_panel() is panel
    imported = registry.get_version(other, "churn@v1")
    assert imported.source == "bundle" and imported.metrics == registry.get_version(store, "churn@v1").metrics
    frame = churn_frame(50, seed=5)[["age", "plan", "visits"]]
    a = registry.load_model(store, "churn@v1").predict(frame)
    b = registry.load_model(other, "churn@v1").predict(frame)
    assert list(a) == list(b)
    assert not window.shown_errors


def test_serve_the_champion_from_the_panel_and_see_its_requests(qtbot, window, store):
    import json
    import urllib.request

    from factories import train_churn_model as train_model

    train_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    click(qtbot, panel.serve_button)
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
    url = panel.server.url
    assert url.startswith("http://127.0.0.1:") and url in panel.serving_label.text()
    assert "churn@champion" in panel.serving_label.text()
    body = json.dumps({"dataframe_records": [{"age": 61.0, "plan": "pro", "visits": 2}]}).encode()
    request = urllib.request.Request(url + "/invocations", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["predictions"] in (["yes"], ["no"])
    qtbot.waitUntil(lambda: "· 1 request" in panel.serving_label.text(), timeout=10_000)
    assert "1 requests" not in panel.serving_label.text()  # names.plural
    assert "latency p50" in panel.serving_label.text()
    # stopping waits for the child to record serve_stop and exit: off the main thread, the button
    # says so (disabled) meanwhile, and a second click does nothing
    child = panel.server.proc
    started = held_clock()
    click(qtbot, panel.serve_button)
    held_ms = (held_clock() - started) * 1000
    assert held_ms < 100, f"Stop serving held the main thread {held_ms:.0f} ms"
    assert panel.serve_button.text() == "Stopping…" and not panel.serve_button.isEnabled()
    click(qtbot, panel.serve_button)
    assert panel.serve_button.text() == "Stopping…"
    qtbot.waitUntil(lambda: panel.serve_button.text() == "Serve", timeout=30_000)
    assert child.poll() is not None  # the child has exited
    assert panel.server is None and panel.serve_button.isEnabled() and not panel.serving_label.isVisible()
    actions = [e["action"] for e in registry.timeline(store, "churn")[:2]]
    assert actions == ["serve_stop", "serve_start"]
    assert not window.shown_errors


def test_closing_the_window_stops_the_server_even_while_it_starts_or_stops(qtbot, window, store):
    from factories import train_churn_model as train_model

    train_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    click(qtbot, panel.serve_button)
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
    served = panel.server.proc
    panel.stop_serving()  # the window closes while the server is stopping
    assert panel.serve_button.text() == "Stopping…"
    window.close()  # closing may wait for it
    assert served.poll() is not None


def test_closing_the_window_while_a_server_starts_leaves_no_server_behind(qtbot, window, store, monkeypatch):
    from factories import train_churn_model as train_model
    from modelyard.core import serving

    train_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    made: list[Any] = []
    original = serving.ServerProcess.start

    def start(self):
        made.append(self)
        return original(self)

    monkeypatch.setattr(serving.ServerProcess, "start", start)
    click(qtbot, panel.serve_button)
    qtbot.waitUntil(lambda: bool(made) and made[0].proc is not None, timeout=30_000)
    window.close()  # before the server said it is ready
    assert made[0].proc.poll() is not None


def test_score_a_file_with_the_selected_version(qtbot, window, store, tmp_path, monkeypatch):
    from factories import churn_frame
    from factories import train_churn_model as train_model
    from modelyard.core.datasets import catalog

    train_model(store)
    path = tmp_path / "to-score.csv"
    churn_frame(80, seed=9).drop(columns=["churned"]).to_csv(path, index=False)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getOpenFileName", lambda *a, **k: (str(path), ""))
    click(qtbot, panel.score_button)
    qtbot.waitUntil(lambda: getattr(panel, "last_scored", None) is not None, timeout=60_000)
    out = panel.last_scored["output"]
    version = catalog.get_version(store, out["dataset_version_id"])
    assert version.n_rows == 80 and "prediction" in [c["name"] for c in version.columns]
    assert out["ref"] in window.statusBar().currentMessage()
    # what marks the predictions as generated (the datasets' "origin"): no source file, the format
    # "predictions", and a "scored" lineage edge from the model version; the timeline names them
    from modelyard.core.store import models as m
    from sqlalchemy import select

    with store.session() as s:
        row = s.get(m.DatasetVersion, out["dataset_version_id"])
        assert row.source_format == "predictions" and row.source_path is None
        assert s.scalar(select(m.LineageEdge.src_type).where(m.LineageEdge.dst_id == str(row.id),
                                                             m.LineageEdge.relation == "scored")) == "model_version"
    settle(qtbot, window)
    tm = panel.timeline_model
    scored = next(r for r in range(tm.rowCount()) if tm.data(tm.index(r, 2)) == "scored data")
    assert out["ref"] in tm.data(tm.index(scored, 4)) and "dataset version" not in tm.data(tm.index(scored, 4))


def test_register_model_from_a_runs_context_menu(qtbot, window, store):
    run_id = make_run(store, 0.8)
    with tracking.start_run("churn", store=store, name="no-model") as bare:
        bare.log_metric("accuracy", 0.5)
    exp = experiments_showing(qtbot, window, 2)
    no_model = next(a for a in exp.context_menu([bare.id]).actions() if a.objectName() == "registerAction")
    assert not no_model.isEnabled() and "logged no model" in no_model.toolTip()
    action = next(a for a in exp.context_menu([run_id]).actions() if a.objectName() == "registerAction")
    assert action.isEnabled() and action.text() == "Register model…"
    seen = when_modal(qtbot, ChangeDialog, lambda d: (d.choice.setCurrentText("churn-model"),
                                                      qtbot.keyClicks(d.comment, "from the runs table"),
                                                      click(qtbot, d.ok_button)))
    action.trigger()
    qtbot.waitUntil(lambda: registry.list_models(store) != [], timeout=5000)
    settle(qtbot, window)
    assert seen and window.current_panel() is window.registry_panel
    version = registry.get_version(store, "churn-model@v1")
    assert version.run_id == run_id
    assert registry.timeline(store, "churn-model")[-1]["comment"] == "from the runs table"
