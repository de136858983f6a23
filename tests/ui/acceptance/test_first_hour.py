"""Acceptance (issue 13), the first hour counted in clicks: drop a CSV on the window → the Import
dialog opens with the target pre-selected → OK → "Train on this dataset…" in the Datasets panel →
the Train dialog is on that version → Train → select the run → "Register model…" → type a name →
Save → Serve in the Registry → the model answers a real HTTP POST. At most 8 clicks (typing the
name aside)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from conftest import close_window, open_window
from factories import churn_frame, drop_files, write_batch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QPushButton,
    QWidget,
)
from tour import panel, settle

MAX_CLICKS = 8
JOB_TIMEOUT_MS = 120_000


class Clicks:
    """qtbot.mouseClick, counted, with what was clicked (for the failure message)."""

    def __init__(self, qtbot: Any) -> None:
        self.qtbot = qtbot
        self.log: list[str] = []

    def click(self, widget: QWidget, what: str, pos: Any = None) -> None:
        assert widget.isVisible(), f"click {len(self.log) + 1} ({what}): {widget!r} is not visible"
        assert widget.isEnabled(), (f"click {len(self.log) + 1} ({what}): '{getattr(widget, 'text', str)()}' "
                                    f"is disabled ({widget.toolTip() or 'no tooltip says why'})")
        self.log.append(what)
        if pos is None:
            self.qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
        else:
            self.qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def until(qtbot: Any, condition: Callable[[], Any], what: str, timeout: int = 15_000) -> None:
    start = time.monotonic()
    try:
        qtbot.waitUntil(condition, timeout=timeout)
    except Exception:
        raise AssertionError(f"waited {time.monotonic() - start:.1f} s for {what}") from None


def button_by(root: QWidget, object_name: str, *texts: str) -> QAbstractButton | None:
    """A visible button under ``root`` named ``object_name``, else one whose text starts with one of
    ``texts`` (the helpers' names may differ: the text is what the user reads)."""
    found = root.findChild(QAbstractButton, object_name)
    if found is not None and found.isVisible():
        return found
    for b in root.findChildren(QAbstractButton):
        label = b.text().replace("&", "").strip()
        if b.isVisible() and any(label.lower().startswith(t.lower()) for t in texts):
            return b
    return None


def on_modal(kind: str | tuple[str, ...], act: Callable[[QDialog], None], state: dict[str, Any], timeout_s: float = 15) -> None:
    """Once a modal dialog of class ``kind`` (a name, or names) shows, call ``act`` on it (inside its own event loop:
    the dialog may be exec()'d). ``state`` gets "seen", "done" or "error" (and "other": a
    different dialog that opened instead)."""
    started = time.monotonic()

    def poll() -> None:
        d = QApplication.activeModalWidget()
        if d is not None and d.isVisible() and type(d).__name__ in ((kind,) if isinstance(kind, str) else kind):
            state["seen"] = True
            try:
                act(d)
                state["done"] = True
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                state["error"] = exc
                d.reject()
            return
        if d is not None and d.isVisible() and isinstance(d, QDialog):
            state["other"] = f"{type(d).__name__} '{d.windowTitle()}'"
        if time.monotonic() - started > timeout_s:
            state["timeout"] = True
            return
        QTimer.singleShot(30, poll)

    QTimer.singleShot(0, poll)


def finish(qtbot: Any, state: dict[str, Any], what: str, timeout: int = 15_000) -> None:
    until(qtbot, lambda: "done" in state or "error" in state or "timeout" in state, what, timeout + 5_000)
    if "error" in state:
        raise state["error"]
    assert "done" in state, f"{what}: no such dialog opened" + (f" ({state['other']} opened instead)"
                                                                if "other" in state else "")


def train_dialog() -> Any:
    return next((w for w in QApplication.topLevelWidgets() if type(w).__name__ == "TrainDialog" and w.isVisible()),
                None)


@pytest.fixture
def window(qtbot, store):
    w = open_window(qtbot, store, (1280, 800))
    yield w
    registry = w.panel_of("registry")
    if getattr(registry, "server", None) is not None:
        registry.stop_serving()
    close_window(w)


@pytest.mark.slow
def test_from_a_dropped_csv_to_a_served_model_in_at_most_eight_clicks(qtbot, window, tmp_path):
    clicks = Clicks(qtbot)
    csv = write_batch(tmp_path, churn_frame(400), "customers-2026.csv")
    datasets, experiments = panel(window, "datasets"), panel(window, "experiments")
    registry = panel(window, "registry")

    # 1. drop the CSV: the Import dialog opens with the target pre-selected; OK
    imported: dict[str, Any] = {}

    def import_ok(dialog: QDialog) -> None:
        until(qtbot, lambda: dialog.findChild(QComboBox, "targetColumn") is not None
              and dialog.findChild(QComboBox, "targetColumn").count() > 1, "the Import dialog to read the file")
        target = dialog.findChild(QComboBox, "targetColumn")
        imported["target"] = target.currentText()
        assert target.currentText() == "churned", \
            f"the Import dialog pre-selected the target {target.currentText()!r}, not 'churned' (a yes/no column)"
        box = dialog.findChild(QDialogButtonBox)
        ok = next((b for b in box.buttons() if box.buttonRole(b) == QDialogButtonBox.ButtonRole.AcceptRole), None)
        assert ok is not None, "the Import dialog has no OK (accept) button"
        until(qtbot, ok.isEnabled, "the Import dialog's OK to enable")
        clicks.click(ok, "Import dialog › OK")

    state: dict[str, Any] = {}
    on_modal("ImportDialog", import_ok, state)
    drop_files(window, [csv])
    finish(qtbot, state, "dropping customers-2026.csv on the window to open the Import dialog")
    until(qtbot, lambda: datasets.version is not None and datasets.version.name == "customers-2026",
          "the imported dataset to show in the Datasets panel", JOB_TIMEOUT_MS)
    settle(window)
    version_id = datasets.version.id

    # 2. "Train on this dataset…" in the Datasets panel; the Train dialog is on that version; Train
    train_on = button_by(datasets, "trainOnDatasetButton", "Train on")
    assert train_on is not None, "the Datasets panel has no visible 'Train on this dataset…' button (trainOnDatasetButton)"
    clicks.click(train_on, "Datasets › Train on this dataset…")
    until(qtbot, lambda: train_dialog() is not None, "'Train on this dataset…' to open the Train dialog")
    dialog = train_dialog()
    until(qtbot, lambda: not dialog.loading_label.isVisible(), "the Train dialog's form to load", 30_000)
    assert dialog.dataset_combo.currentData() == version_id, \
        (f"the Train dialog opened on {dialog.dataset_combo.currentText()!r}, not on the version shown in the "
         f"Datasets panel (customers-2026@v{datasets.version.version}, id {version_id})")
    assert dialog.target_combo.currentText() == "churned", \
        f"the Train dialog's target is {dialog.target_combo.currentText()!r}, not the dataset's 'churned'"
    clicks.click(dialog.train_button, "Train dialog › Train")
    until(qtbot, lambda: window.runner.running_count() == 0 and experiments.runs_model.rowCount() > 0,
          "the training job to end and its run to show", JOB_TIMEOUT_MS)
    settle(window)

    # 3. select the run; "Register model…"; type a name; Save
    view = experiments.runs_view
    rect = view.visualRect(experiments.runs_model.index(0, 0))
    clicks.click(view.viewport(), "Experiments › the run's row", rect.center())
    settle(window)
    register = button_by(experiments, "registerRunButton", "Register")
    assert register is not None, "the Experiments panel has no visible 'Register model…' button (registerRunButton)"

    def name_and_save(dialog: QDialog) -> None:
        edit = next((e for e in dialog.findChildren(QLineEdit) if e.isVisible() and "comment" not in
                     (e.objectName() + e.placeholderText()).lower() and "why" not in e.placeholderText().lower()), None)
        assert edit is not None, f"{type(dialog).__name__} '{dialog.windowTitle()}' has no name field"
        edit.selectAll()
        qtbot.keyClicks(edit, "churn-first-hour")
        save = next((b for b in dialog.findChildren(QPushButton) if b.isVisible() and b.text().replace("&", "")
                     in ("Register", "Save", "OK")), None)
        assert save is not None, f"{type(dialog).__name__} '{dialog.windowTitle()}' has no Register/Save button"
        until(qtbot, save.isEnabled, f"'{save.text()}' to enable after typing a name")
        clicks.click(save, f"{type(dialog).__name__} › {save.text()}")

    state = {}
    on_modal(("ChangeDialog", "RegisterDialog"), name_and_save, state)
    clicks.click(register, "Experiments › Register model…")
    if "done" not in state and "seen" not in state:
        QApplication.processEvents()
    finish(qtbot, state, "'Register model…' to ask for the model's name")
    until(qtbot, lambda: registry.isVisible() and registry.version is not None
          and registry.version.ref == "churn-first-hour@v1", "the Registry to show churn-first-hour@v1")
    settle(window)

    # 4. Serve from the version; a real POST answers
    clicks.click(registry.serve_button, "Registry › Serve")
    until(qtbot, lambda: registry.server is not None, "the server to start", 60_000)
    body = json.dumps({"dataframe_records": [{"age": 61.0, "plan": "pro", "visits": 2}]}).encode()
    request = urllib.request.Request(registry.server.url + "/invocations", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["predictions"][0] in ("yes", "no")
    registry.stop_serving()

    assert len(clicks.log) <= MAX_CLICKS, f"{len(clicks.log)} clicks from the drop to a served model: {clicks.log}"
