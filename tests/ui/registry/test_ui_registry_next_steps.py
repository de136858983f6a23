"""The Registry panel in a small window and its next steps: the header's buttons fit (the rest in
"More"), the versions table keeps its rows and columns, Serve / Export / Monitor from a version
(from the header, the versions' menu and other rooms through ``client.navigate``), exports say
where they wrote, and the gates' line says what is true of the champion."""

from __future__ import annotations

from factories import settle, train_churn_model
from held_clock import held_clock
from modelyard.core.experiments.training.train import TrainSpec
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.registry import versions as registry
from PySide6.QtWidgets import QApplication, QHeaderView
from test_ui_registry import click, make_run, panel_of, when_modal

LONG = "customer-churn-retention-scores"


def train_versions(store, name: str = "churn", n: int = 6) -> list[str]:
    """``n`` versions of ``name``, trained on one dataset and split (so the gates can compare them)."""
    info = train_churn_model(store, name=name, champion=True)
    refs = [info.ref]
    for c in (0.01, 0.1, 1.0, 10.0, 100.0)[: n - 1]:
        spec = TrainSpec(dataset=name, model="logistic_regression", params={"C": c},
                         split={"test": 0.25, "seed": 0}, experiment=name, curves=False)
        out = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="train",
                                     params={"spec": spec.to_json()}))
        assert out.ok, out.error
        refs.append(registry.register(store, out.result["run_id"], name).ref)
    return refs


def test_at_1024x640_the_header_buttons_read_whole_and_the_versions_keep_five_rows(qtbot, window, store):
    train_versions(store, LONG)
    window.resize(1024, 640)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    qtbot.waitUntil(lambda: panel.versions_model.rowCount() == 6, timeout=5000)
    QApplication.processEvents()
    bar = panel.actions_bar
    shown = [b for b in bar.buttons() if b.isVisible()]
    assert panel.serve_button in shown and panel.export_button in shown  # the next steps stay in sight
    for b in shown:  # a button narrower than its text would cut it ("xport bundle.")
        assert b.width() >= b.sizeHint().width(), b.text()
        assert b.geometry().right() <= bar.width()
    hidden = [b for b in bar.buttons() if not b.isVisible()]
    assert hidden == bar.overflowed() and bar.more.isVisible()
    bar.menu.aboutToShow.emit()
    assert [a.text() for a in bar.menu.actions()] == [b.text() for b in hidden]
    # the model's name gives way to the buttons, elided in the middle with the whole name in its tooltip
    title = panel.model_title
    assert title.full_text() == LONG
    assert not title.is_elided() or LONG in title.toolTip()
    # the gates' line is one line: the table below keeps at least five rows
    view = panel.versions_view
    assert view.viewport().height() >= 5 * view.rowHeight(0)
    # every column as wide as its text; only the source (last) may be elided, its tooltip whole
    header = view.horizontalHeader()
    last = panel.versions_model.columnCount() - 1
    assert header.sectionResizeMode(last) == QHeaderView.ResizeMode.Stretch
    for col in range(last):
        assert header.sectionSize(col) >= view.sizeHintForColumn(col), panel.versions_model.headers[col]
        text = panel.versions_model.headers[col]
        assert header.sectionSize(col) >= header.fontMetrics().horizontalAdvance(text)
    assert header.length() <= view.viewport().width()  # nothing is pushed off the right edge
    # the audit timeline fits too: short times and vN, the change and comment share the rest
    panel.tabs.setCurrentWidget(panel.timeline_view)
    qtbot.waitUntil(lambda: panel.timeline_view.isVisible(), timeout=3000)
    QApplication.processEvents()
    tv, th = panel.timeline_view, panel.timeline_view.horizontalHeader()
    assert th.length() <= tv.viewport().width()
    assert all(th.sectionSize(c) >= tv.sizeHintForColumn(c) for c in range(4))
    assert min(th.sectionSize(4), th.sectionSize(5)) >= 110
    panel.tabs.setCurrentWidget(panel.versions_view)
    # at 800x600 fewer buttons show, at their own width (not stretched), with "More" at the right edge
    window.resize(800, 600)
    qtbot.waitUntil(lambda: len([b for b in bar.buttons() if b.isVisible()]) < len(shown), timeout=3000)
    QApplication.processEvents()
    assert panel.serve_button.isVisible()
    for b in (b for b in bar.buttons() if b.isVisible()):
        assert b.width() == b.sizeHint().width(), b.text()
    assert bar.more.geometry().right() >= bar.width() - 2
    panel.tabs.setCurrentWidget(panel.timeline_view)  # too narrow to share: readable widths, scrolled sideways
    qtbot.waitUntil(lambda: panel.timeline_view.horizontalHeader().sectionSize(4) >= 110, timeout=3000)
    panel.tabs.setCurrentWidget(panel.versions_view)
    m = panel.versions_model
    v = m.rows[0]
    assert v.run_id in m.data(m.index(0, last)) and v.run_id in m.data(m.index(0, last), 3)  # ToolTipRole
    assert not window.shown_errors


def test_monitor_from_the_header_and_the_versions_menu_navigates_with_the_model(qtbot, window, store):
    for acc in (0.8, 0.9):
        registry.register(store, make_run(store, acc), "churn")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version("churn@v1")
    settle(qtbot, window)
    assert window.client.selected.get("model_version") == "churn@v1"  # the shown version is published
    with qtbot.waitSignal(window.client.navigate, timeout=3000) as signal:
        click(qtbot, panel.monitor_button)
    assert signal.args == ["monitoring", ("monitor_model", "churn", "churn@v1")]
    window.navigate("registry")
    panel.select_version("churn@v2")
    settle(qtbot, window)
    menu = panel.versions_menu()
    texts = [a.text() for a in menu.actions()]
    assert {"Serve v2", "Export bundle…", "Monitor"} <= set(texts)
    with qtbot.waitSignal(window.client.navigate, timeout=3000) as signal:
        next(a for a in menu.actions() if a.text() == "Monitor").trigger()
    assert signal.args == ["monitoring", ("monitor_model", "churn", "churn@v2")]


def test_serve_version_through_navigate_before_the_panel_has_loaded(qtbot, window, store):
    refs = train_versions(store, "churn", 2)  # v1 is the champion
    panel = next(p for p in window.panels if p.room == "registry")
    assert panel.version is None  # nothing read yet
    window.client.navigate.emit("registry", ("serve_version", refs[1]))
    try:
        qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
        assert panel.server_ref == "churn@v2"  # the version asked for, not the champion
        settle(qtbot, window)
        assert window.current_panel() is panel and panel.version.ref == "churn@v2"
        assert window.client.selected.get("model_version") == "churn@v2"
        assert panel.serve_button.text() == "Stop serving" and panel.serve_button.isVisible()
        assert "churn@v2" in panel.serving_label.text()
    finally:
        panel.stop_serving()
    qtbot.waitUntil(lambda: panel.serve_button.text() == "Serve", timeout=30_000)  # stopped off the main thread


def test_serving_another_version_stops_the_first_server_then_starts_off_the_main_thread(qtbot, window, store):

    refs = train_versions(store, "churn", 2)
    panel = panel_of(window)
    window.client.navigate.emit("registry", ("serve_version", refs[0]))
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
    first = panel.server.proc
    started = held_clock()
    assert panel.serve_version(refs[1])
    assert (held_clock() - started) * 1000 < 100  # the first server stops on the worker
    assert panel.serve_button.text() == "Stopping…" and not panel.serve_button.isEnabled()
    try:
        qtbot.waitUntil(lambda: panel.server is not None and panel.server_ref == refs[1], timeout=60_000)
        assert first.poll() is not None
        assert panel.serve_button.text() == "Stop serving" and panel.serve_button.isEnabled()
    finally:
        panel.stop_serving()
    qtbot.waitUntil(lambda: panel.serve_button.text() == "Serve", timeout=30_000)
    actions = [e["action"] for e in registry.timeline(store, "churn")[:4]]
    assert actions == ["serve_stop", "serve_start", "serve_stop", "serve_start"]


def test_after_registering_a_run_the_new_version_is_shown_with_its_next_step(qtbot, window, store):
    from modelyard.ui.registry.dialogs import ChangeDialog

    registry.register(store, make_run(store, 0.8), "churn")
    run_id = make_run(store, 0.9)
    panel = panel_of(window)
    seen = when_modal(qtbot, ChangeDialog, lambda d: (d.choice.setCurrentText("churn"), click(qtbot, d.ok_button)))
    window.client.navigate.emit("registry", ("register_run", run_id))  # the panel has not read anything yet
    qtbot.waitUntil(lambda: registry.get_model(store, "churn").n_versions == 2, timeout=5000)
    settle(qtbot, window)
    assert seen
    assert panel.version is not None and panel.version.ref == "churn@v2"
    assert panel.versions_view.currentIndex().row() == 0  # newest first: v2 is the selected row
    assert panel.next_label.isVisible() and "serve v2" in panel.next_label.text()
    assert "export it as a bundle" in panel.next_label.text()
    with qtbot.waitSignal(window.client.navigate, timeout=3000) as signal:
        panel.next_label.linkActivated.emit("monitor")
    assert signal.args == ["monitoring", ("monitor_model", "churn", "churn@v2")]
    window.navigate("registry")
    panel.select_version("churn@v1")  # another version: the hint was for the new one
    settle(qtbot, window)
    assert not panel.next_label.isVisible()


def test_exports_say_where_they_wrote(qtbot, window, store, tmp_path, monkeypatch):
    train_churn_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    target = tmp_path / "churn-v1.mybundle"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(window.client.saved, timeout=60_000) as signal:
        click(qtbot, panel.export_button)
    assert signal.args == ["Bundle churn@v1", str(target)] and target.exists()

    card = tmp_path / "card.html"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(card), ""))
    with qtbot.waitSignal(window.client.saved, timeout=10_000) as signal:
        click(qtbot, panel.export_card_button)
    assert signal.args == ["Model card churn@v1", str(card.resolve())] and card.exists()
    page = card.read_text()
    assert "modelyard model card" not in page and "Edit notes" not in page  # exported for readers: no how-to
    assert not window.shown_errors


def test_the_gates_line_says_the_champion_is_the_champion(qtbot, window, store):
    refs = train_versions(store, "churn", 2)
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.1}, "beat_champion": {"metric": "accuracy"}},
                       comment="policy")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version(refs[0])  # the champion
    settle(qtbot, window)
    text = panel.gate_label.text()
    assert "v1 is the champion" in text and "passes the gates" not in text
    assert "beating the champion on accuracy applies to the other versions" in panel.gate_label.toolTip()
    panel.select_version(refs[1])
    settle(qtbot, window)
    text = panel.gate_label.text()
    assert "is the champion" not in text and ("passes the gates" in text or "would be blocked" in text)
    assert "min accuracy >= 0.1" in panel.gate_label.toolTip()


def test_the_model_card_in_the_window_offers_edit_notes_not_a_command(qtbot, window, store):
    info = train_churn_model(store)
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    panel.select_version(info.ref)
    settle(qtbot, window)
    panel.tabs.setCurrentWidget(panel.card_tab)
    qtbot.waitUntil(lambda: panel.card_browser is not None and "churn@v1" in panel.card_browser.toPlainText(),
                    timeout=5000)
    text = panel.card_browser.toPlainText()
    assert "Edit notes…" in text and "modelyard model" not in text
    assert panel.edit_notes_button.isVisible() and panel.export_card_button.isVisible()
    assert panel.card_browser.horizontalScrollBar().maximum() == 0 or not \
        panel.card_browser.horizontalScrollBar().isVisible()
