"""The run detail's artifact viewer (text, JSON, images, tables inline; Open; Save as…; big files
in part) and editing a run's tags and note from its Overview (written through the core, audited)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from factories import open_window, settle_panel
from modelyard.core.experiments import tracking
from modelyard.core.experiments.tracking import previews
from modelyard.core.store import models as m
from modelyard.ui.experiments import artifacts as artifacts_ui
from modelyard.ui.experiments.panel import TAB_ARTIFACTS, TAB_OVERVIEW, ExperimentsPanel
from PySide6.QtCore import QBuffer, QByteArray, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QDialogButtonBox
from sqlalchemy import select


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store, (1024, 640))
    yield w
    w.close()


def png_bytes() -> bytes:
    image = QImage(64, 32, QImage.Format.Format_RGB32)
    image.fill(QColor("steelblue"))
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QBuffer.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(data)


def logged_run(store) -> str:
    frame = pd.DataFrame({"x": range(500), "y": [i * 0.5 for i in range(500)], "name": [f"n{i}" for i in range(500)]})
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    with tracking.start_run("churn", store=store, name="script", tags={"team": "risk"}) as run:
        run.log_metric("f1", 0.8)
        run.log_bytes(b"epoch 1 loss 0.5\nepoch 2 loss 0.3\n", "logs/train.txt")
        run.log_bytes(json.dumps({"model": {"depth": 3, "features": ["a", "b"]}, "seed": 7}).encode(), "config.json")
        run.log_bytes(png_bytes(), "plots/blue.png")
        run.log_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20"/></svg>',
                      "plots/box.svg")
        run.log_bytes(frame.to_csv(index=False).encode(), "tables/preds.csv")
        run.log_bytes(parquet.getvalue(), "tables/preds.parquet")
        run.log_bytes(b"x" * 3000 + b"\n", "logs/big.log")
        run.log_bytes(bytes(range(256)), "model/blob.bin")
    return run.id


def show_run(qtbot, window, run_id: str) -> ExperimentsPanel:
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))
    panel.refresh()
    qtbot.waitUntil(lambda: panel.runs_model.row_of(run_id) >= 0, timeout=8000)
    panel.select_run(run_id)
    qtbot.waitUntil(lambda: panel.run is not None and panel.run.id == run_id, timeout=8000)
    return panel


def select_tab(qtbot, panel, index: int) -> None:
    bar = panel.detail_tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    settle_panel(panel)


def view_artifact(qtbot, panel, path: str) -> str:
    """Click ``path`` in the artifacts table; the kind the viewer shows."""
    viewer = panel.artifact_viewer
    row = next(i for i, a in enumerate(panel.artifacts_model.rows) if a.path == path)
    rect = panel.artifacts_view.visualRect(panel.artifacts_model.index(row, 0))
    with qtbot.waitSignal(viewer.shown, timeout=8000) as shown:
        qtbot.mouseClick(panel.artifacts_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    return shown.args[0]


def test_each_kind_of_artifact_is_shown_inline(qtbot, window, store, monkeypatch):
    monkeypatch.setattr(previews, "TEXT_CAP", 1000)
    panel = show_run(qtbot, window, logged_run(store))
    select_tab(qtbot, panel, TAB_ARTIFACTS)
    viewer = panel.artifact_viewer
    assert viewer.current_kind() == "message" and not viewer.open_button.isEnabled()

    assert view_artifact(qtbot, panel, "logs/train.txt") == "text"
    assert viewer.text.toPlainText() == "epoch 1 loss 0.5\nepoch 2 loss 0.3\n" and not viewer.note.isVisible()

    assert view_artifact(qtbot, panel, "config.json") == "json"
    tree = viewer.tree.model()
    top = {tree.index(r, 0).data(): tree.index(r, 1).data() for r in range(tree.rowCount())}
    assert top == {"model": "{2 keys}", "seed": "7"}  # plural(): "{1 key}"

    assert view_artifact(qtbot, panel, "plots/blue.png") == "image"
    assert viewer.image.pixmap().size().width() == 64 and viewer.image.pixmap().size().height() == 32
    assert view_artifact(qtbot, panel, "plots/box.svg") == "image"
    assert viewer.image.pixmap().width() == 40

    for path in ("tables/preds.csv", "tables/preds.parquet"):
        assert view_artifact(qtbot, panel, path) == "table"
        model = viewer.table_model
        assert model.rowCount() == previews.TABLE_ROWS and model.headers == ("x", "y", "name")
        assert model.index(3, 2).data() == "n3" and float(model.index(3, 1).data()) == 1.5
        assert "200" in viewer.note.text()
    assert "of 500 rows" in viewer.note.text()  # parquet knows its row count

    assert view_artifact(qtbot, panel, "logs/big.log") == "text"  # capped, and says so
    assert len(viewer.text.toPlainText()) <= 1000 and "Showing the first" in viewer.note.text()
    assert view_artifact(qtbot, panel, "model/blob.bin") == "message"
    assert "binary" in viewer.message.text()


def test_open_hands_a_named_copy_to_the_desktop_and_save_as_writes_the_file(qtbot, window, store, monkeypatch,
                                                                         tmp_path):
    opened = []
    monkeypatch.setattr(artifacts_ui, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    target = tmp_path / "out" / "my-config.json"
    target.parent.mkdir()
    monkeypatch.setattr(artifacts_ui, "ask_save_path", lambda parent, suggested: str(target))
    panel = show_run(qtbot, window, logged_run(store))
    select_tab(qtbot, panel, TAB_ARTIFACTS)
    view_artifact(qtbot, panel, "config.json")
    viewer = panel.artifact_viewer
    qtbot.mouseClick(viewer.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened), timeout=8000)
    assert opened[0].endswith("/config.json")
    assert json.loads(open(opened[0]).read())["seed"] == 7
    with qtbot.waitSignal(viewer.saved, timeout=8000):
        qtbot.mouseClick(viewer.save_button, Qt.MouseButton.LeftButton)
    assert json.loads(target.read_text())["seed"] == 7
    assert sorted(p.name for p in target.parent.iterdir()) == ["my-config.json"]  # no temporary left
    assert str(target) in viewer.note.text()


def test_edit_a_tag_and_a_note_and_read_them_back_from_the_store(qtbot, window, store):
    run_id = logged_run(store)
    panel = show_run(qtbot, window, run_id)
    select_tab(qtbot, panel, TAB_OVERVIEW)
    assert panel.edit_tags_button.isEnabled()
    # tags: change one, add one, through the dialog
    qtbot.mouseClick(panel.edit_tags_button, Qt.MouseButton.LeftButton)
    dialog = panel.tags_dialog
    qtbot.waitUntil(dialog.isVisible)
    table = dialog.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "team")
    table.item(row, 1).setText("growth")
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    table.item(table.rowCount() - 1, 0).setText("stage")
    table.item(table.rowCount() - 1, 1).setText("baseline")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.run.tags.get("stage") == "baseline", timeout=8000)
    assert tracking.get_run(run_id, store=store).tags["team"] == "growth"
    shown = {panel.tags_model.index(r, 0).data(): panel.tags_model.index(r, 1).data()
             for r in range(panel.tags_model.rowCount())}
    assert shown["team"] == "growth" and shown["stage"] == "baseline"
    # the note: typed, saved, read back; the note is not listed among the tags
    box = panel.note_box
    assert not box.save_button.isEnabled()
    box.edit.setFocus()
    qtbot.keyClicks(box.edit, "Overfits on the islands")
    assert box.save_button.isEnabled()
    qtbot.mouseClick(box.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tracking.run_note(panel.run) == "Overfits on the islands", timeout=8000)
    assert tracking.run_note(tracking.get_run(run_id, store=store)) == "Overfits on the islands"
    assert not box.save_button.isEnabled() and box.status.text() == "Note saved"
    assert tracking.NOTE_TAG not in {panel.tags_model.index(r, 0).data() for r in range(panel.tags_model.rowCount())}
    # both edits are audited, with what changed
    with store.session() as s:
        events = s.scalars(select(m.AuditEvent).where(m.AuditEvent.entity_type == "run", m.AuditEvent.action == "edit")
                           .order_by(m.AuditEvent.id)).all()
        details = [e.details for e in events]
    assert details == [{"tags": {"team": ["risk", "growth"], "stage": [None, "baseline"]}},
                       {"tags": {"note": [None, "Overfits on the islands"]}}]
