"""Registry › Stream…: a followed file gets lines appended; the counts and the chart follow; Stop ends
the stream and the predictions file holds one line per event."""

from __future__ import annotations

import json
from pathlib import Path

from factories import garden_frame, settle, train_registered
from held_clock import held_clock
from modelyard.core.datasets.service import import_frame
from modelyard.core.registry import versions as registry
from modelyard.ui.registry.panel import RegistryPanel
from PySide6.QtCore import Qt


def panel_of(window) -> RegistryPanel:
    panel = next(p for p in window.panels if isinstance(p, RegistryPanel))
    window.show_panel(window.panels.index(panel))
    return panel


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def event_lines(n: int, start: int = 1) -> list[bytes]:
    frame = garden_frame().head(n).drop(columns=["species", "plant_id"])
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    frame.insert(0, "id", range(start, start + n))
    return frame.to_json(orient="records", lines=True).encode().splitlines()


def test_stream_dialog_follows_a_file_with_live_counts_and_chart(qtbot, window, store, tmp_path: Path) -> None:
    import_frame(store, garden_frame(), "garden", target="species")
    info = train_registered(store, "flowers")
    registry.set_alias(store, info.ref, "champion", comment="first")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(event_lines(20)) + b"\n")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    qtbot.waitUntil(lambda: panel.version is not None, timeout=10_000)

    if panel.stream_button.isVisible():
        click(qtbot, panel.stream_button)
    else:  # a narrow bar put it under "More"
        panel.stream_button.click()
    qtbot.waitUntil(lambda: panel.stream_dialog is not None and panel.stream_dialog.isVisible())
    dialog = panel.stream_dialog
    assert not dialog.follow_button.isEnabled()  # no file yet
    qtbot.keyClicks(dialog.events_edit, str(events))
    assert dialog.output_edit.text() == str(tmp_path / "events.predictions.jsonl")
    assert dialog.follow_button.isEnabled()

    started = held_clock()
    click(qtbot, dialog.follow_button)
    held_ms = (held_clock() - started) * 1000
    assert held_ms < 150, f"Follow held the main thread {held_ms:.0f} ms (the model loads on the stream's thread)"
    assert dialog.follow_button.text() == "Stop" and not dialog.events_edit.isEnabled()
    with qtbot.waitSignal(dialog.updated, timeout=30_000, check_params_cb=lambda s: s["predictions"] == 20):
        pass
    assert "20 predictions" in dialog.counts.text() and "0 error lines" in dialog.counts.text()
    assert "Following" in dialog.status.text() and info.ref in dialog.status.text()

    # lines appended (one of them bad): the counts and the chart follow
    with events.open("ab") as fh:
        fh.write(b"\n".join(event_lines(30, start=21)) + b"\n")
        fh.write(b'{"id": 51, "region": "north"}\n')
    with qtbot.waitSignal(dialog.updated, timeout=30_000, check_params_cb=lambda s: s["events"] == 51):
        pass
    assert "50 predictions" in dialog.counts.text() and "1 error line" in dialog.counts.text()
    assert "1 error lines" not in dialog.counts.text()
    assert "Line 51 misses" in dialog.error_label.text() and dialog.error_label.isVisible()
    qtbot.waitUntil(lambda: bool(dialog.curves), timeout=30_000)  # pyqtgraph loaded off the main thread
    # the chart shows whole seconds: the events appear once their second is over
    qtbot.waitUntil(lambda: (ys := dialog.curves["rate"].getData()[1]) is not None and sum(ys) == 51, timeout=10_000)
    assert dialog.curves["max"].getData()[1].max() > 0
    # the first seconds are seen: a lone second is a dot, not a line of no length, and the axis
    # counts whole seconds from the first event (not -0.4 s to 0.4 s around it)
    for name in ("rate", "mean", "max"):
        assert dialog.curves[name].opts["symbol"] is not None, name
    for plot in dialog.plots.values():
        (x0, x1), _ = plot.viewRange()
        assert x1 - x0 >= 10 and x0 <= dialog.curves["rate"].getData()[0][0] < x0 + 1

    with qtbot.waitSignal(dialog.ended, timeout=10_000):
        click(qtbot, dialog.follow_button)
    assert dialog.follow_button.text() == "Follow" and dialog.events_edit.isEnabled()
    assert "Stopped" in dialog.status.text()
    out = [json.loads(x) for x in (tmp_path / "events.predictions.jsonl").read_bytes().splitlines()]
    assert [o["id"] for o in out] == list(range(1, 52))
    assert out[-1]["field"] == "sepal length (cm)" and all("prediction" in o for o in out[:50])
    click(qtbot, dialog.close_button)
    qtbot.waitUntil(lambda: panel.stream_dialog is None)
    assert not window.shown_errors


def test_stream_dialog_says_why_a_stream_cannot_start(qtbot, window, store, tmp_path: Path) -> None:
    import_frame(store, garden_frame(), "garden", target="species")
    train_registered(store, "flowers")
    panel = panel_of(window)
    panel.refresh()
    settle(qtbot, window)
    qtbot.waitUntil(lambda: panel.version is not None, timeout=10_000)
    dialog = panel.open_stream_dialog(str(tmp_path / "events.jsonl"))
    qtbot.waitUntil(dialog.isVisible)
    dialog.output_edit.setText(str(tmp_path / "no-such-folder" / "out.jsonl"))
    click(qtbot, dialog.follow_button)
    assert "no folder" in dialog.status.text() and dialog.run is None
    dialog.output_edit.setText(str(tmp_path / "events.jsonl"))
    click(qtbot, dialog.follow_button)
    assert "other than the events file" in dialog.status.text() and dialog.run is None
    dialog.close()
