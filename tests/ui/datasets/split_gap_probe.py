"""Run in a fresh process by test_ui_datasets_flow.py: the longest main-thread gap during each
Datasets action, the first stratified split included (scikit-learn not imported before the app's
idle warm-up). Prints one ``action=<seconds>`` line per action."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from held_clock import held_clock
from modelyard.core.datasets import service
from modelyard.core.store import Store
from modelyard.ui.common import warmup
from modelyard.ui.common.settings import open_settings
from modelyard.ui.main_window import MainWindow
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def wait(until, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not until():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        QApplication.processEvents()
        time.sleep(0.002)


class GapWatcher:
    """A 10 ms timer on the main thread; the longest gap between ticks while measuring, on
    tests/held_clock.py's clock (waiting for a CPU another process had is not the window's)."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(held_clock()))

    def measure(self, action, done) -> float:
        self.ticks = [held_clock()]
        self.timer.start()
        action()
        wait(done)
        QTest.qWait(150)
        self.timer.stop()
        return float(np.diff(self.ticks).max())


def main(folder: str) -> None:
    _app = QApplication.instance() or QApplication([])  # noqa: F841 - alive while the probe runs
    store = Store.open(Path(folder) / "store")
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "kind": rng.choice(list("abc"), n),
                          "label": rng.choice(["yes", "no"], n)})
    service.import_frame(store, frame, "probe", target="label")
    csv = Path(folder) / "more.csv"
    frame.to_csv(csv, index=False)
    assert "sklearn" not in sys.modules, "the probe must start without scikit-learn"
    window = MainWindow(store, open_settings())
    window.resize(1024, 640)
    window.show()
    panel = window.datasets_panel
    window.show_panel(window.panels.index(panel))
    wait(lambda: panel.version is not None and not window.client.busy)
    if os.environ.get("PROBE_ONLY") == "warmup":  # the app's idle warm-up itself
        modules = tuple(m for m in warmup.HEAVY_MODULES if m != os.environ.get("PROBE_WARM_WITHOUT"))
        loaders: list = []
        gap = GapWatcher().measure(lambda: loaders.append(warmup.start(modules)),
                                   lambda: bool(loaders) and not loaders[0].is_alive())
        print(f"warmup={gap:.3f}")
        return
    if not os.environ.get("PROBE_NO_WARMUP"):
        modules = warmup.HEAVY_MODULES
        if os.environ.get("PROBE_WARM_WITHOUT"):  # measuring "before": the warm-up without a module
            modules = tuple(m for m in modules if m != os.environ["PROBE_WARM_WITHOUT"])
        # as the app does once its window is idle (ui/app.py); waits for this warm-up's thread:
        # scikit-learn still importing would be measured as the next action's stall
        loader = warmup.start(modules)
        wait(lambda: not loader.is_alive(), 60)
    QTest.qWait(300)
    watch = GapWatcher()
    gaps = {}
    only = os.environ.get("PROBE_ONLY")
    if only == "stratified_split":  # the first thing the user does: nothing loaded by other actions
        panel.tabs.setCurrentWidget(panel.splits_tab)
        panel.split_method.setCurrentText("stratified")
        print(f"stratified_split={watch.measure(lambda: QTest.mouseClick(panel.split_button, Qt.MouseButton.LeftButton), lambda: panel.splits_model.rowCount() == 1 and not window.client.busy):.3f}")
        return
    gaps["column_detail"] = watch.measure(lambda: panel.profile_view.selectRow(1),
                                          lambda: panel.detail is not None and panel.detail.bars is not None)
    gaps["explore"] = watch.measure(lambda: panel.tabs.setCurrentWidget(panel.explore_tab),
                                    lambda: panel.explore is not None and bool(panel.explore.dist_items))
    panel.tabs.setCurrentWidget(panel.splits_tab)
    panel.split_method.setCurrentText("stratified")
    gaps["stratified_split"] = watch.measure(
        lambda: QTest.mouseClick(panel.split_button, Qt.MouseButton.LeftButton),
        lambda: panel.splits_model.rowCount() == 1 and not window.client.busy)
    gaps["import_preview"] = watch.measure(
        lambda: panel.import_files([csv]),
        lambda: panel.import_dialog is not None and panel.import_dialog.preview.model() is not None)
    panel.import_dialog.reject()
    for name, gap in gaps.items():
        print(f"{name}={gap:.3f}", flush=True)
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.close()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
