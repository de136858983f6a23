"""The Pipelines panel driven as a user drives it: add a pipeline file (the button, a drop), run
it with a parameter changed and watch its steps change colour, read the history and a step's log,
see a broken file's problems beside the YAML, switch its triggers off, cancel a run, and be told
when a run fails."""

from __future__ import annotations

import pytest
from factories import settle_panel as settle
from panel_driving import click_node, drop_on, fill_run_dialog, names, panel_of
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QPushButton

TWO_STEPS = """
    name: greet
    description: Write a greeting, then read it back
    params:
      greeting: hello
    steps:
      write:
        kind: shell
        params: {command: "sleep 1.5 && echo ${params.greeting} > greeting.txt"}
      read:
        kind: shell
        params: {command: "cat greeting.txt"}
        needs: [write]
"""

SCHEDULED = """
    name: nightly
    triggers:
      - schedule: "0 2 * * *"
    steps:
      hello:
        kind: shell
        params: {command: "echo hello"}
"""


def test_empty_panel_says_what_a_pipeline_is_and_adds_one_with_the_button(qtbot, window, write_pipeline, monkeypatch):
    path = write_pipeline(TWO_STEPS)
    panel = panel_of(window)
    assert panel.stack.currentWidget() is panel.empty
    assert "docs/examples/churn-pipeline/" in panel.empty.body.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), "Pipeline files (*.yml)"))
    button = next(b for b in panel.empty.findChildren(QPushButton) if b.text() == "Add pipeline file…")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: names(panel) == ["greet"], timeout=10_000)
    settle(panel)
    assert panel.stack.currentWidget() is panel.content
    assert panel.title_label.full_text() == "greet"
    assert set(panel.graph.states()) == {"write", "read"}
    assert panel.graph.edges == [("write", "read")]
    assert panel.graph.nodes["read"].rect.left() > panel.graph.nodes["write"].rect.right()  # a column further
    assert panel.run_line.full_text().startswith("Never run")
    window.refresh_icons()  # what a light/dark switch does: the graph is redrawn, the same
    assert panel.graph.edges == [("write", "read")] and panel.graph.states() == {"write": "pending", "read": "pending"}
    assert not window.shown_errors


def test_a_pipeline_file_dropped_on_the_panel_is_added(qtbot, window, write_pipeline):
    first = write_pipeline(TWO_STEPS)
    second = write_pipeline(SCHEDULED, "nightly.yaml")
    panel = panel_of(window)
    panel.add_pipeline_file(first)
    qtbot.waitUntil(lambda: names(panel) == ["greet"], timeout=10_000)
    assert drop_on(panel, [second])
    qtbot.waitUntil(lambda: names(panel) == ["greet", "nightly"], timeout=10_000)
    settle(panel)
    assert panel.pipeline["name"] == "nightly"  # the added pipeline is shown
    assert not window.shown_errors


def test_run_with_a_changed_parameter_shows_the_steps_live_and_a_history_row(qtbot, window, write_pipeline, tmp_path):
    write_pipeline(TWO_STEPS)
    panel = panel_of(window)
    panel.add_pipeline_file(tmp_path / "pipeline.yml")
    qtbot.waitUntil(lambda: names(panel) == ["greet"], timeout=10_000)
    settle(panel)
    seen = fill_run_dialog(qtbot, {"greeting": "bonjour"})
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "param_greeting=hello" in seen  # the default was filled in
    qtbot.waitUntil(lambda: panel.graph.state_of("write") == "running", timeout=20_000)
    assert panel.graph.state_of("read") == "pending"
    assert panel.graph.pulse_timer.isActive()  # a running step pulses
    assert panel.cancel_button.isEnabled()
    click_node(panel, "write")  # the running step: its state and log follow it live
    assert panel.tabs.currentWidget() is panel.step_view and "running" in panel.step_view.title.text()
    qtbot.waitUntil(lambda: "bonjour" in panel.step_view.log.toPlainText(), timeout=10_000)  # its command line
    qtbot.waitUntil(lambda: panel.graph.state_of("read") == "succeeded", timeout=30_000)
    qtbot.waitUntil(lambda: "succeeded" in panel.step_view.title.text(), timeout=10_000)
    assert panel.graph.state_of("write") == "succeeded"
    assert (tmp_path / "greeting.txt").read_text().strip() == "bonjour"
    qtbot.waitUntil(lambda: [r.get("status") for r in panel.runs_model.rows] == ["succeeded"], timeout=10_000)
    settle(panel)
    run = panel.runs_model.rows[0]
    trigger = panel.runs_model.index(0, panel.runs_model.TRIGGER)
    assert panel.runs_model.data(trigger) == "by hand"
    assert panel.runs_model.data(trigger, Qt.ItemDataRole.ToolTipRole) == "started in the window"
    assert "2 succeeded" in panel.runs_model.data(panel.runs_model.index(0, panel.runs_model.COUNTS))
    assert panel.run["params"]["greeting"] == "bonjour"
    assert not panel.cancel_button.isEnabled()
    assert not panel.graph.pulse_timer.isActive()
    # the clicked step's state, outputs and log
    click_node(panel, "read")
    assert panel.tabs.currentWidget() is panel.step_view
    qtbot.waitUntil(lambda: "bonjour" in panel.step_view.log.toPlainText(), timeout=10_000)
    assert "succeeded" in panel.step_view.title.text()
    # the list's last run
    qtbot.waitUntil(lambda: (panel.pipelines_model.rows[0].get("last_run") or {}).get("id") == run["id"],
                    timeout=10_000)
    assert not window.shown_errors


def test_selecting_an_earlier_run_shows_it_in_the_graph(qtbot, window, write_pipeline, tmp_path):
    path = write_pipeline(TWO_STEPS.replace("sleep 1.5 && ", ""))
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["greet"], timeout=10_000)
    settle(panel)
    panel.run_pipeline({}, ask=False)
    qtbot.waitUntil(lambda: [r.get("status") for r in panel.runs_model.rows] == ["succeeded"], timeout=30_000)
    (tmp_path / "greeting.txt").unlink()
    path.write_text(path.read_text().replace("cat greeting.txt", "cat greeting.txt && exit 4"))
    panel.run_pipeline({"greeting": "again"}, ask=False, force=True)
    qtbot.waitUntil(lambda: [r.get("status") for r in panel.runs_model.rows] == ["failed", "succeeded"],
                    timeout=30_000)
    qtbot.waitUntil(lambda: panel.graph.state_of("read") == "failed", timeout=10_000)
    first = panel.runs_model.rows[1]["id"]
    with qtbot.waitSignal(panel.run_shown, check_params_cb=lambda rid: rid == first, timeout=10_000):
        panel.runs_view.selectRow(1)
    assert panel.graph.states() == {"write": "succeeded", "read": "succeeded"}
    # a run that failed raised a desktop notification naming the pipeline and the step
    qtbot.waitUntil(lambda: bool(panel.notifications), timeout=10_000)
    title, message = panel.notifications[0]
    assert "greet" in title and "failed" in title
    assert "read" in message


def test_a_broken_file_shows_its_problems_with_line_and_column_and_clicking_one_goes_there(
        qtbot, window, write_pipeline):
    path = write_pipeline(TWO_STEPS)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["greet"], timeout=10_000)
    settle(panel)
    panel.tabs.setCurrentWidget(panel.file_view)
    qtbot.waitUntil(lambda: "The file is valid" in panel.file_view.verdict.text(), timeout=10_000)
    assert panel.file_view.code.toPlainText().startswith("name: greet")
    assert not panel.file_view.problems_view.isVisible()
    # the file is edited on disk: a misspelt kind on line 10, column 11
    lines = path.read_text().splitlines()
    assert lines[9] == "    kind: shell"
    lines[9] = "    kind: shel"
    path.write_text("\n".join(lines) + "\n")
    qtbot.waitUntil(lambda: bool(panel.file_view.problems), timeout=10_000)
    model = panel.file_view.problems_model
    row = next(i for i, p in enumerate(model.rows) if "shel" in p["message"])
    assert model.data(model.index(row, 0)) == "10:11"
    assert "shell" in model.data(model.index(row, 1))  # the hint names the kinds
    assert "problem" in panel.file_view.verdict.text()
    view = panel.file_view.problems_view
    assert view.isVisible()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(row, 1)).center())
    cursor = panel.file_view.code.textCursor()
    assert (cursor.blockNumber() + 1, cursor.positionInBlock() + 1) == (10, 11)
    assert panel.file_view.code.marked_line == 10
    assert panel.file_view.code.extraSelections()  # the line is highlighted
    assert names(panel) == ["greet"] and panel.pipelines_model.rows[0]["steps"][1]["kind"] == "shell"  # nothing written
    # Run refuses the broken file and says so
    panel.run_pipeline({}, ask=False)
    qtbot.waitUntil(lambda: bool(window.shown_errors), timeout=10_000)
    assert "problem" in window.shown_errors[0]
    assert panel.runs_model.rowCount() == 0


def test_an_invalid_file_is_refused_with_its_problems_and_nothing_is_listed(qtbot, window, write_pipeline):
    path = write_pipeline(TWO_STEPS.replace("needs: [write]", "needs: [wrote]"))
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: bool(window.shown_errors), timeout=10_000)
    assert "pipeline.yml" in window.shown_errors[0] and "nothing was listed" in window.shown_errors[0]
    assert "12:13" in window.shown_errors[0] and "wrote" in window.shown_errors[0]
    settle(panel)
    assert names(panel) == []


def test_switching_triggers_off_persists(qtbot, window, write_pipeline, store):
    path = write_pipeline(SCHEDULED)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["nightly"], timeout=10_000)
    settle(panel)
    box = panel.schedules_box
    assert box.isEnabled() and box.isChecked()
    model = panel.pipelines_model
    assert model.data(model.index(0, model.TRIGGERS)) == "schedule"
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    qtbot.waitUntil(lambda: model.data(model.index(0, model.TRIGGERS)) == "off (schedule)", timeout=10_000)
    from modelyard.ui.pipelines import data

    info, _runs = data.pipeline_detail(store, "nightly")
    assert info["schedules_enabled"] is False
    assert not box.isChecked()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    qtbot.waitUntil(lambda: data.pipeline_detail(store, "nightly")[0]["schedules_enabled"] is True, timeout=10_000)


def test_cancel_stops_a_running_run(qtbot, window, write_pipeline):
    path = write_pipeline("""
        name: slow
        steps:
          wait:
            kind: shell
            params: {command: "sleep 60"}
          after:
            kind: shell
            params: {command: "echo after"}
            needs: [wait]
    """)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["slow"], timeout=10_000)
    settle(panel)
    panel.run_pipeline({}, ask=False)
    qtbot.waitUntil(lambda: panel.graph.state_of("wait") == "running" and panel.cancel_button.isEnabled(),
                    timeout=20_000)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (panel.run or {}).get("status") == "cancelled", timeout=20_000)
    assert panel.graph.state_of("wait") == "cancelled"
    assert panel.graph.state_of("after") in ("skipped", "cancelled")
    assert not panel.notifications  # the user stopped it: no alarm


def test_resume_reruns_the_failed_step_and_what_follows_it_only(qtbot, window, write_pipeline, tmp_path):
    flag = tmp_path / "fixed"
    path = write_pipeline(f"""
        name: flaky
        steps:
          first:
            kind: shell
            params: {{command: "echo first"}}
          fragile:
            kind: shell
            params: {{command: "test -f {flag}"}}
            needs: [first]
          after:
            kind: shell
            params: {{command: "echo after"}}
            needs: [fragile]
    """)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["flaky"], timeout=10_000)
    settle(panel)
    assert not panel.resume_button.isEnabled()  # nothing to resume yet
    panel.run_pipeline({}, ask=False)
    qtbot.waitUntil(lambda: (panel.run or {}).get("status") == "failed", timeout=20_000)
    failed_id = panel.run["id"]
    assert panel.graph.states() == {"first": "succeeded", "fragile": "failed", "after": "skipped"}
    qtbot.waitUntil(panel.resume_button.isEnabled, timeout=5_000)
    flag.write_text("")  # the cause is fixed
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (panel.run or {}).get("id") != failed_id
                    and (panel.run or {}).get("status") == "succeeded", timeout=20_000)
    assert panel.graph.states() == {"first": "cached", "fragile": "succeeded", "after": "succeeded"}
    assert panel.run["resumed_from"] == failed_id
    assert not panel.resume_button.isEnabled()  # a run that succeeded has nothing to resume


@pytest.mark.parametrize(("record", "outputs", "room", "target"), [
    ({"type": "dataset_version", "id": "12"}, {"ref": "churn@v1"}, "datasets", ("show_version", 12)),
    ({"type": "run", "id": "ab12"}, {"run_id": "ab12"}, "experiments", ("select_run", "ab12")),
    ({"type": "model_version", "id": "7"}, {"ref": "churn@v2"}, "registry", ("select_version", "churn@v2")),
])
def test_a_steps_records_are_buttons_that_show_them_in_their_panel(qtbot, window, record, outputs, room, target):
    panel = panel_of(window)
    shown = []
    window.client.navigate.disconnect(window.navigate)
    window.client.navigate.connect(lambda r, t: shown.append((r, t)))
    panel.step_view.show_step({"name": "step", "kind": "register", "status": "succeeded", "attempts": 1,
                               "outputs": outputs, "records": [record]}, "")
    button = panel.step_view.record_buttons[0]
    assert button.isEnabled()
    if "ref" in outputs:
        assert outputs["ref"] in button.text()  # "Model version churn@v2", never an internal id
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert shown == [(room, target)]


def test_an_import_step_s_dataset_version_button_shows_it_in_the_datasets_panel(qtbot, window, write_pipeline,
                                                                                tmp_path):
    (tmp_path / "customers.csv").write_text("age,plan,churned\n31,basic,no\n45,pro,yes\n52,team,yes\n",
                                            encoding="utf-8")
    path = write_pipeline("""
        name: load-customers
        steps:
          load:
            kind: import
            params: {path: customers.csv, name: customers}
    """)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["load-customers"], timeout=10_000)
    settle(panel)
    panel.run_pipeline({}, ask=False)
    qtbot.waitUntil(lambda: panel.graph.state_of("load") == "succeeded", timeout=30_000)
    settle(panel)
    click_node(panel, "load")
    qtbot.waitUntil(lambda: bool(panel.step_view.record_buttons), timeout=10_000)
    button = panel.step_view.record_buttons[0]
    assert "customers@v1" in button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    datasets = window.panel_of("datasets")
    qtbot.waitUntil(lambda: window.current_panel() is datasets, timeout=10_000)
    qtbot.waitUntil(lambda: getattr(datasets, "version", None) is not None
                    and getattr(datasets.version, "name", None) == "customers", timeout=15_000)


def test_a_new_file_trigger_fires_while_the_window_is_open(qtbot, window, write_pipeline, tmp_path):
    (tmp_path / "incoming").mkdir()
    path = write_pipeline("""
        name: on-arrival
        params:
          data: none
        triggers:
          - on: new_file
            folder: incoming
            pattern: "*.csv"
            param: data
        steps:
          count:
            kind: shell
            params: {command: "wc -l < ${params.data} > lines.txt"}
    """)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["on-arrival"], timeout=10_000)
    settle(panel)
    assert panel.trigger_timer.isActive()
    (tmp_path / "incoming" / "week.csv").write_text("a\n1\n2\n", encoding="utf-8")
    qtbot.wait(2500)  # the file settles (unchanged for the triggers' settle time)
    panel.fire_triggers()
    qtbot.waitUntil(lambda: [r.get("status") for r in panel.runs_model.rows] == ["succeeded"], timeout=30_000)
    assert (tmp_path / "lines.txt").read_text().strip() == "3"
    assert panel.runs_model.data(panel.runs_model.index(0, panel.runs_model.TRIGGER)) == "new file week.csv"
    assert any(h.spec.title.endswith(", new file)") for h in window.runner.handles())  # the Jobs dock says why
    panel.fire_triggers()  # the same file fires once
    settle(panel)
    qtbot.wait(300)
    settle(panel)
    assert panel.runs_model.rowCount() == 1


def test_remove_stops_listing_the_pipeline_after_asking_and_leaves_its_file(qtbot, window, write_pipeline,
                                                                             monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    path = write_pipeline(SCHEDULED)
    panel = panel_of(window)
    panel.add_pipeline_file(path)
    qtbot.waitUntil(lambda: names(panel) == ["nightly"], timeout=10_000)
    settle(panel)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    settle(panel)
    assert names(panel) == ["nightly"] and "Stop listing nightly?" in asked[0] and "no runs" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: names(panel) == [], timeout=10_000)
    assert panel.stack.currentWidget() is panel.empty
    assert path.exists()


def test_a_pipeline_file_dropped_on_the_window_opens_the_pipelines_panel_with_it(qtbot, window, write_pipeline):
    path = write_pipeline(SCHEDULED, "nightly.yml")
    window.show_panel(0)  # the Datasets panel is showing
    assert drop_on(window, [path])
    panel = window.panel_of("pipelines")
    qtbot.waitUntil(lambda: window.current_panel() is panel and names(panel) == ["nightly"], timeout=10_000)
    assert not window.shown_errors


def test_the_run_form_reads_values_as_yaml_and_refuses_one_that_is_not(qtbot):
    from modelyard.ui.pipelines.run_dialog import RunDialog
    from PySide6.QtWidgets import QLineEdit

    dialog = RunDialog("greet", {"greeting": "hello", "share": 0.25, "strict": False, "cols": ["a", "b"]})
    qtbot.addWidget(dialog)
    edits = {k: dialog.findChild(QLineEdit, f"param_{k}") for k in ("greeting", "share", "strict", "cols")}
    assert [e.text() for e in edits.values()] == ["hello", "0.25", "false", "[a, b]"]  # as one would type them
    assert dialog.params() == {}  # nothing changed: the run takes the defaults
    edits["share"].setText("0.3")
    edits["strict"].setText("yes please")
    edits["cols"].setText("[a, b, c]")
    assert dialog.params() == {"share": 0.3, "strict": "yes please", "cols": ["a", "b", "c"]}
    edits["greeting"].setText("[unclosed")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == 0 and dialog.error.isVisibleTo(dialog)
    assert "greeting" in dialog.error.text()


def test_a_graph_too_big_for_its_view_scrolls_to_the_step_that_failed(qtbot):
    from modelyard.ui.pipelines.graph import PipelineGraph

    graph = PipelineGraph()
    qtbot.addWidget(graph)
    graph.resize(420, 160)
    graph.show()
    qtbot.waitExposed(graph)
    steps = [{"name": "fetch", "kind": "shell", "needs": []}]
    steps += [{"name": f"branch-{i}", "kind": "shell", "needs": ["fetch"]} for i in range(10)]
    steps += [{"name": "last-branch-joins", "kind": "shell", "needs": ["branch-9"]}]
    graph.show_steps(steps)
    assert graph.transform().m11() >= 0.66  # names stay readable: it scrolls instead
    failed = [{**s, "status": "failed" if s["name"] == "last-branch-joins" else "succeeded"} for s in steps]
    graph.show_steps(failed)
    centre = graph.node_centre("last-branch-joins").toPoint()
    assert graph.viewport().rect().contains(centre), "the failed step is out of sight"
    assert graph.state_of("last-branch-joins") == "failed"


def test_step_boxes_are_as_wide_as_their_longest_name_needs_up_to_a_limit(qtbot):
    from modelyard.ui.pipelines.graph import MAX_NODE_W, NODE_W, PipelineGraph
    from PySide6.QtGui import QFont, QFontMetrics

    graph = PipelineGraph()
    qtbot.addWidget(graph)
    graph.resize(1000, 300)
    bold = QFont(graph.font())
    bold.setBold(True)
    advance = QFontMetrics(bold).horizontalAdvance
    graph.show_steps([{"name": "prepare", "kind": "shell", "needs": []},
                      {"name": "train-logistic-regression", "kind": "shell", "needs": ["prepare"]}])
    box = graph.nodes["train-logistic-regression"].rect
    assert box.width() - 20 >= advance("train-logistic-regression")  # drawn whole (10 px padding a side)
    assert graph.nodes["prepare"].rect.width() == box.width()  # one width: the columns line up
    graph.show_steps([{"name": "a", "kind": "shell", "needs": []}])
    assert graph.nodes["a"].rect.width() == NODE_W
    graph.show_steps([{"name": "x" * 80, "kind": "shell", "needs": []}])
    assert graph.nodes["x" * 80].rect.width() == MAX_NODE_W
