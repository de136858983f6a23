"""A tour of the window over a populated store (tests/factories.build_populated_store): show each
panel with something selected, walk every tab in it, and open the dialogs its buttons open.

Qt only (no pytest), so docs/screenshots/make_screenshots.py renders what the acceptance tests
check, with the same steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QTabWidget, QWidget

ROOMS = ("datasets", "experiments", "registry", "monitoring", "pipelines")


# --------------------------------------------------------------------------- waiting


def pump(ms: int) -> None:
    """Run the event loop for ``ms``."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition: Callable[[], Any], timeout_ms: int = 10_000, what: str = "") -> None:
    end = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"waited {timeout_ms} ms for {what or condition}")
        pump(20)


def settle(window: Any, ms: int = 150, timeout_ms: int = 15_000) -> None:
    """``ms`` of the event loop, then until the window's client of the core has answered every
    read and write (and what those answers start), then one more turn for charts built next."""
    pump(ms)
    wait_until(lambda: not window.client.busy, timeout_ms, "the window's reads to answer")
    pump(30)


# --------------------------------------------------------------------------- panels


def panel(window: Any, room: str) -> Any:
    p = window.panel_of(room)
    assert p is not None, f"no {room} panel"
    return p


def show(window: Any, room: str, made: dict[str, Any]) -> Any:
    """Show ``room``'s panel with what a user would look at selected (the richest content)."""
    p = panel(window, room)
    window.show_panel(window.panels.index(p))
    settle(window)
    if room == "datasets":
        from factories import LONG_DATASET

        p.refresh(select=LONG_DATASET)
        settle(window)
    elif room == "experiments":
        p.refresh()
        settle(window)
        wait_until(lambda: p.runs_model.rowCount() > 0, 15_000, "the runs table to fill")
        p.select_run(made["runs"]["forest"])
        settle(window, 300)
    elif room == "registry":
        p.refresh(select="churn")
        settle(window)
        p.select_version(made["versions"]["challenger"])
        settle(window)
    elif room == "monitoring":
        p.refresh(select="churn", check_id=made["checks"]["drifted"])
        settle(window, 300)
    elif room == "pipelines":
        p.refresh(select="churn-weekly", run_id=made["pipeline_runs"][-1])
        settle(window)
        p.select_step("publish")  # the failed step: its state, outputs and log in the Step tab
        settle(window)
        p.tabs.setCurrentIndex(0)
    return p


def _top_tab_widgets(container: QWidget) -> list[QTabWidget]:
    """The visible tab widgets under ``container`` not inside another one under it."""
    out = []
    for tw in container.findChildren(QTabWidget):
        if not tw.isVisible():
            continue
        p = tw.parentWidget()
        nested = False
        while p is not None and p is not container:
            if isinstance(p, QTabWidget):
                nested = True
                break
            p = p.parentWidget()
        if not nested:
            out.append(tw)
    return out


def walk_tabs(window: Any, container: QWidget, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Show every tab under ``container`` in turn (nested ones too), yielding each one's path of
    tab names once it shows (``("Evaluation",)``). The first tabs are shown again at the end."""
    if not prefix:
        yield ("as opened",)
    for tw in _top_tab_widgets(container):
        first = tw.currentIndex()
        for i in range(tw.count()):
            if not tw.isTabEnabled(i) or not tw.isTabVisible(i):
                continue
            tw.setCurrentIndex(i)
            settle(window, 250)
            path = (*prefix, tw.tabText(i).replace("&", ""))
            yield path
            yield from walk_tabs(window, tw.widget(i), path)
        tw.setCurrentIndex(first)


# --------------------------------------------------------------------------- dialogs


def visible_dialogs() -> list[QWidget]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def capture_dialog(trigger: Callable[[], Any], on_dialog: Callable[[QDialog], Any], *, settle_ms: int = 400,
                   ready: Callable[[QDialog], bool] | None = None, timeout_ms: int = 15_000) -> dict[str, Any]:
    """Call ``trigger`` (on the next turn of the event loop), wait for the dialog it opens (modal
    or not), let it load (``settle_ms`` and ``ready``), call ``on_dialog(dialog)`` and close it.
    Returns ``{"cls", "title", "size", "text", "result"}``, or ``{"timeout": ...}`` (the dialog
    itself may be deleted once closed)."""
    before = {id(w) for w in visible_dialogs()}
    state: dict[str, Any] = {}
    started = time.monotonic()

    def poll() -> None:
        new = [w for w in visible_dialogs() if id(w) not in before]
        now = time.monotonic()
        if not new:
            if (now - started) * 1000 > timeout_ms:
                state["timeout"] = f"no dialog opened within {timeout_ms} ms"
                return
            QTimer.singleShot(20, poll)
            return
        dialog = new[-1]
        seen = state.setdefault("seen", now)
        loaded = ready is None or ready(dialog)
        if ((now - seen) * 1000 < settle_ms or not loaded) and (now - started) * 1000 < timeout_ms:
            QTimer.singleShot(20, poll)
            return
        state.update(cls=type(dialog).__name__, title=dialog.windowTitle(), size=dialog.size().toTuple(),
                     text=dialog.text() if isinstance(dialog, QMessageBox) else "")
        try:
            state["result"] = on_dialog(dialog)
        finally:
            dialog.reject()
            state["done"] = True

    QTimer.singleShot(0, trigger)
    QTimer.singleShot(10, poll)
    wait_until(lambda: "done" in state or "timeout" in state, timeout_ms + 5_000, "the dialog")
    pump(30)
    return state


def _registry(window: Any, made: dict[str, Any]) -> Any:
    return show(window, "registry", made)


def _train_ready(dialog: QDialog) -> bool:
    label = getattr(dialog, "loading_label", None)
    return label is None or not label.isVisible()


def dialog_openers(work: Path) -> dict[str, tuple[str, Callable[[Any, dict[str, Any]], Callable[[], Any]], Any]]:
    """name -> (the dialog's class, prepare(window, made) -> trigger, ready). ``prepare`` shows
    the panel with what the dialog acts on selected; ``trigger`` is the panel's action (what its
    button calls). File dialogs are left out: what they lead to is opened with a file instead."""

    def import_dialog(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        from factories import penguins_frame

        path = work / "penguins-from-the-field-station.csv"
        if not path.exists():
            penguins_frame(120, seed=11).to_csv(path, index=False)
        p = show(window, "datasets", made)
        return lambda: p.import_with_dialog(path)

    def train(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = show(window, "experiments", made)
        return lambda: p.open_train_dialog()

    def compare(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = show(window, "experiments", made)
        return lambda: p.compare_runs([made["runs"]["baseline"], made["runs"]["forest"]])

    def register(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.register_run()

    def register_run(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.register_run(made["runs"]["regression"])

    def alias(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.set_alias()

    def stage(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.set_stage()

    def gates(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.edit_gates()

    def notes(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.edit_card_notes()

    def bundle_import(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = _registry(window, made)
        return lambda: p.import_bundle(made["bundle"])

    def drift_settings(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = show(window, "monitoring", made)
        return lambda: p.edit_settings()

    def retrain(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = show(window, "monitoring", made)
        return lambda: p.retrain()

    def preferences(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        return window.show_preferences

    def pipeline_run(window: Any, made: dict[str, Any]) -> Callable[[], Any]:
        p = show(window, "pipelines", made)
        return lambda: p.run_pipeline()

    return {
        "import": ("ImportDialog", import_dialog, None),
        "train": ("TrainDialog", train, _train_ready),
        "compare": ("CompareDialog", compare, None),
        "register": ("RegisterDialog", register, None),
        "register-run": ("ChangeDialog", register_run, None),
        "set-alias": ("ChangeDialog", alias, None),
        "stage": ("ChangeDialog", stage, None),
        "gates": ("GatesDialog", gates, None),
        "edit-notes": ("NotesDialog", notes, None),
        "import-bundle": ("BundleImportDialog", bundle_import, None),
        "drift-settings": ("DriftSettingsDialog", drift_settings, None),
        "retrain": ("QMessageBox", retrain, None),
        "preferences": ("PreferencesDialog", preferences, None),
        "pipeline-run": ("RunDialog", pipeline_run, None),
    }


def export_bundle(store: Any, ref: str, path: Path) -> Path:
    """A bundle of ``ref`` (the real export job, in this process) for the import dialog."""
    from modelyard.core import bundles
    from modelyard.core.jobs.runner import JobSpec, run_job

    job = bundles.export_bundle_spec(ref, path)
    outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert outcome.ok, outcome.error
    return path
