"""Run by test_ui_train_no_block.py in a fresh interpreter (nothing heavy imported): open the
window on a store (argv[1]) holding a dataset, open the Train dialog, choose the new stratified
split, train, with a 5 ms main-thread timer running. Prints, as its last line, JSON:
``{"fresh": bool, "gaps": {phase: largest gap in ms}, "status": str, "error": str | None}``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MODELYARD_CONFIG_DIR", tempfile.mkdtemp(prefix="modelyard-fresh-config-"))


def main(store_root: str) -> dict:
    from held_clock import (
        held_clock,  # waiting for a CPU another process had is not the window's
    )
    from modelyard.core.store import Store
    from modelyard.ui.app import create_application
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.experiments.panel import ExperimentsPanel
    from modelyard.ui.main_window import MainWindow
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    app = create_application()
    fresh = "sklearn" not in sys.modules
    store = Store.open(store_root)
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.resize(1024, 640)
    window.show()
    panel = next(p for p in window.panels if isinstance(p, ExperimentsPanel))
    window.show_panel(window.panels.index(panel))

    def run_until(cond, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)
        return bool(cond())

    run_until(lambda: False, 1.0)  # the window settles
    ticks: list[tuple[float, str]] = []
    phase = ["idle"]
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append((held_clock(), phase[0])))
    timer.start()
    run_until(lambda: False, 1.0)  # the control: the largest gap with nothing to do
    phase[0] = "open the Train dialog"
    button = panel.train_button if panel.stack.currentWidget() is panel.content else panel.empty_train_button
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert run_until(lambda: getattr(panel, "train_dialog", None) is not None and panel.train_dialog.form_ready)
    dialog = panel.train_dialog
    run_until(lambda: False, 0.3)
    phase[0] = "choose a new stratified split"
    dialog.split_combo.setCurrentIndex(dialog.split_combo.findData(-1))
    split = dialog.split_combo.currentText()
    run_until(lambda: False, 0.3)
    phase[0] = "train until the run shows"
    finished: list[tuple] = []
    window.runner.job_finished.connect(lambda *args: finished.append(args))
    QTest.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    assert run_until(lambda: bool(finished), 120)
    run_until(lambda: not window.client.busy and panel.runs_model.rowCount() > 0, 10)
    run_until(lambda: False, 0.5)
    timer.stop()
    gaps: dict[str, float] = {}
    for (a, _), (b, name) in zip(ticks, ticks[1:]):
        gaps[name] = round(max(gaps.get(name, 0.0), (b - a) * 1000), 1)
    outcome = finished[0][1]
    window.close()
    store.close()
    app.processEvents()
    return {"fresh": fresh, "gaps": gaps, "status": outcome.status, "error": outcome.error, "split": split}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
